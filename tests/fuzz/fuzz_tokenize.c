// libFuzzer target: tokenizer encode → decode with the fixture tokenizer (byte-level
// BPE, NFC normalizer, ChatML special tokens). Invalid UTF-8 must be refused with an
// error, never crash. Valid UTF-8 that is already NFC must decode back to exactly the
// input bytes (special-token strings included, decoded with skip_special = 0), and
// streaming decode (tok_stream_step) must produce the same bytes in total (less a
// trailing U+FFFD, which the stream holds back as a possible half character). Input that
// NFC changes must still encode, and decode to valid UTF-8.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "../unit/tok_fixture.h"

static tok_tokenizer *T;
static const char *DIR_;

static void cleanup(void) {
    tok_free(T);
    fixture_cleanup(DIR_);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    tm_error err = {{0}};
    DIR_ = fixture_dir();
    T = tok_load(DIR_, &err);
    if (!T) {
        fprintf(stderr, "fuzz_tokenize: fixture tokenizer: %s\n", err.msg);
        abort();
    }
    atexit(cleanup);
    return 0;
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static int is_nfc(const uint8_t *s, size_t n) {
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t m = utf8proc_map(s, (utf8proc_ssize_t)n, &out, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    int same = m >= 0 && (size_t)m == n && !memcmp(out, s, n);
    free(out);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;  // BPE is quadratic in a word's length; keep runs fast
    const char *text = (const char *)data;
    tm_error err = {{0}};
    tok_ids ids = {0};
    int rc = tok_encode(T, text, size, (int)(size & 1), &ids, &err);
    int valid = valid_utf8(data, size);
    if (!valid) {
        if (rc == 0) abort();  // invalid UTF-8 is refused
        tok_ids_free(&ids);
        return 0;
    }
    if (rc) abort();  // every valid string encodes
    sbuf out;
    sbuf_init(&out);
    if (tok_decode(T, ids.v, ids.n, 0, &out, &err)) abort();
    if (!valid_utf8((const uint8_t *)out.data, out.len)) abort();
    if (is_nfc(data, size)) {
        if (out.len != size || (size && memcmp(out.data, data, size))) abort();
        // streaming decode yields the same bytes in total
        tok_stream st;
        tok_stream_init(&st, 0);
        sbuf s;
        sbuf_init(&s);
        for (size_t i = 0; i < ids.n; i++)
            if (tok_stream_step(T, &st, ids.v[i], &s, &err)) abort();
        // the stream holds back a trailing U+FFFD (it may be half a character, as in
        // Hugging Face's DecodeStream), so it yields a prefix, all of it otherwise
        int held = size >= 3 && !memcmp(data + size - 3, "\xef\xbf\xbd", 3);
        if (s.len > size || (s.len && memcmp(s.data, data, s.len))) abort();
        if (!held && s.len != size) abort();
        sbuf_free(&s);
        tok_stream_free(&st);
    }
    sbuf_free(&out);
    tok_ids_free(&ids);
    return 0;
}
