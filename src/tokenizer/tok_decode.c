// tokenizer: decoding (ids → token strings → the decoder chain → text) and
// incremental decoding for streaming, as Hugging Face's decoders and DecodeStream.
#include <stdlib.h>
#include <string.h>
#include "tokenizer/tok_internal.h"

// A list of token strings. Like sbuf, a failed allocation marks it (failed, or
// buf.failed) and later adds do nothing; a token is only counted once its bytes
// are in buf, so off[i] + len[i] <= buf.len always holds.
typedef struct toklist {
    sbuf buf;
    size_t *off, *len;
    size_t n, cap;
    int failed;
} toklist;

static int tl_failed(const toklist *l) { return l->failed || l->buf.failed; }

static void tl_add(toklist *l, const char *s, size_t n) {
    if (tl_failed(l)) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        size_t *off = realloc(l->off, nc * sizeof *off);
        if (off) l->off = off;
        size_t *len = realloc(l->len, nc * sizeof *len);
        if (len) l->len = len;
        if (!off || !len) { l->failed = 1; return; }
        l->cap = nc;
    }
    size_t at = l->buf.len;
    sbuf_put(&l->buf, s, n);
    if (l->buf.failed) return;
    l->off[l->n] = at;
    l->len[l->n] = n;
    l->n++;
}
// Starts a new token whose bytes the caller appends to l->buf; finished by tl_end.
static void tl_begin(toklist *l) { tl_add(l, "", 0); }
static void tl_end(toklist *l) {
    if (!tl_failed(l)) l->len[l->n - 1] = l->buf.len - l->off[l->n - 1];
}
static const char *tl_str(const toklist *l, size_t i) { return l->buf.data + l->off[i]; }
static void tl_free(toklist *l) {
    sbuf_free(&l->buf);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}
static void tl_swap(toklist *a, toklist *b) {
    toklist t = *a;
    *a = *b;
    *b = t;
}

static void replace_into(sbuf *out, const char *s, size_t n, const char *pat, const char *rep) {
    size_t pl = strlen(pat), i = 0, run = 0;
    while (i + pl <= n) {
        if (!memcmp(s + i, pat, pl)) {
            sbuf_put(out, s + run, i - run);
            sbuf_puts(out, rep);
            i += pl;
            run = i;
        } else
            i++;
    }
    sbuf_put(out, s + run, n - run);
}

static void apply_decoder(const tok_dec *d, toklist *in, toklist *out) {
    out->n = 0;
    sbuf_clear(&out->buf);
    switch (d->kind) {
    case DEC_BYTELEVEL: {
        sbuf bytes;
        sbuf_init(&bytes);
        for (size_t i = 0; i < in->n; i++) {
            const char *s = tl_str(in, i);
            size_t n = in->len[i], start = bytes.len;
            int ok = 1;
            for (size_t k = 0; k < n;) {
                int adv;
                uint32_t cp = tok_utf8_decode(s + k, n - k, &adv);
                int b = tok_cp_to_byte(cp);
                if (b < 0) { ok = 0; break; }
                char c = (char)b;
                sbuf_put(&bytes, &c, 1);
                k += (size_t)adv;
            }
            if (!ok) {  // a token outside GPT-2's table decodes to its own bytes
                bytes.len = start;
                sbuf_put(&bytes, s, n);
            }
        }
        if (bytes.failed) out->failed = 1;
        tl_begin(out);
        tok_utf8_lossy(&out->buf, bytes.data ? bytes.data : "", bytes.len);
        tl_end(out);
        sbuf_free(&bytes);
        break;
    }
    case DEC_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            tl_begin(out);
            replace_into(&out->buf, tl_str(in, i), in->len[i], d->pattern, d->content);
            tl_end(out);
        }
        break;
    case DEC_BYTEFALLBACK: {
        sbuf pend;
        sbuf_init(&pend);
        for (size_t i = 0; i <= in->n; i++) {
            const char *s = i < in->n ? tl_str(in, i) : NULL;
            int byte = -1;
            if (s && in->len[i] == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') {
                char hex[3] = {s[3], s[4], 0}, *end;
                long v = strtol(hex, &end, 16);
                if (*end == 0 && ((hex[0] >= '0' && hex[0] <= '9') || (hex[0] >= 'A' && hex[0] <= 'F') || (hex[0] >= 'a' && hex[0] <= 'f'))) byte = (int)v;
            }
            if (byte >= 0) {
                char c = (char)byte;
                sbuf_put(&pend, &c, 1);
                if (pend.failed) out->failed = 1;
                continue;
            }
            if (pend.len) {
                if (tok_utf8_valid_prefix(pend.data, pend.len) == pend.len)
                    tl_add(out, pend.data, pend.len);
                else
                    for (size_t k = 0; k < pend.len; k++) tl_add(out, "\xEF\xBF\xBD", 3);
                sbuf_clear(&pend);
            }
            if (s) tl_add(out, s, in->len[i]);
        }
        sbuf_free(&pend);
        break;
    }
    case DEC_FUSE:
        tl_begin(out);
        for (size_t i = 0; i < in->n; i++) sbuf_put(&out->buf, tl_str(in, i), in->len[i]);
        tl_end(out);
        break;
    case DEC_STRIP: {
        int adv;
        uint32_t ch = tok_utf8_decode(d->content, strlen(d->content), &adv);
        for (size_t i = 0; i < in->n; i++) {
            const char *s = tl_str(in, i);
            size_t n = in->len[i], a = 0, b = n;
            for (int k = 0; k < d->strip_start && a < n; k++) {
                uint32_t cp = tok_utf8_decode(s + a, n - a, &adv);
                if (cp != ch) break;
                a += (size_t)adv;
            }
            for (int k = 0; k < d->strip_stop && b > a; k++) {
                size_t q = b - 1;
                while (q > a && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
                if (tok_utf8_decode(s + q, b - q, &adv) != ch) break;
                b = q;
            }
            tl_add(out, s + a, b - a);
        }
        break;
    }
    case DEC_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            tl_begin(out);
            replace_into(&out->buf, tl_str(in, i), in->len[i], d->pattern, i == 0 && d->prepend ? "" : " ");
            tl_end(out);
        }
        break;
    }
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special, sbuf *out, tm_error *err) {
    toklist a = {0}, b = {0};
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab_size || !t->id_tok[id]) {
            tl_free(&a);
            return tm_fail(err, "decode: id %d is not in the vocabulary (size %d)", (int)id, t->vocab_size);
        }
        if (skip_special && t->id_special[id]) continue;
        tl_add(&a, t->id_tok[id], t->id_tok_len[id]);
    }
    if (!t->ndecs) {  // HF joins tokens with spaces when there is no decoder
        for (size_t i = 0; i < a.n; i++) {
            if (i) sbuf_put(out, " ", 1);
            sbuf_put(out, tl_str(&a, i), a.len[i]);
        }
    } else {
        for (int k = 0; k < t->ndecs; k++) {
            apply_decoder(&t->decs[k], &a, &b);
            tl_swap(&a, &b);
        }
        if (!tl_failed(&a) && !tl_failed(&b))
            for (size_t i = 0; i < a.n; i++) sbuf_put(out, tl_str(&a, i), a.len[i]);
    }
    if (!out->data) sbuf_put(out, "", 0);
    if (tl_failed(&a) || tl_failed(&b)) rc = tm_fail(err, "out of memory decoding %zu ids", n);
    else rc = sbuf_check(out, err);
    tl_free(&a);
    tl_free(&b);
    return rc;
}

// ---- streaming (Hugging Face's DecodeStream::step) ----
void tok_stream_init(tok_stream *s, int skip_special) {
    memset(s, 0, sizeof *s);
    s->skip_special = skip_special;
    sbuf_init(&s->a);
    sbuf_init(&s->b);
}

int tok_stream_step(const tok_tokenizer *t, tok_stream *s, int32_t id, sbuf *out, tm_error *err) {
    tok_ids_push(&s->ids, id);
    if (s->ids.failed) return tm_fail(err, "out of memory decoding a stream of %zu ids", s->ids.n);
    sbuf_clear(&s->a);
    sbuf_clear(&s->b);
    if (tok_decode(t, s->ids.v + s->prefix, s->read - s->prefix, s->skip_special, &s->a, err)) return -1;
    if (tok_decode(t, s->ids.v + s->prefix, s->ids.n - s->prefix, s->skip_special, &s->b, err)) return -1;
    // Wait while the new text ends inside a character (decoded as U+FFFD).
    if (s->b.len > s->a.len &&
        !(s->b.len >= 3 && !memcmp(s->b.data + s->b.len - 3, "\xEF\xBF\xBD", 3))) {
        sbuf_put(out, s->b.data + s->a.len, s->b.len - s->a.len);
        if (sbuf_check(out, err)) return -1;
        // keep only the ids still needed as left context
        size_t keep_from = s->read;
        memmove(s->ids.v, s->ids.v + keep_from, (s->ids.n - keep_from) * sizeof *s->ids.v);
        s->ids.n -= keep_from;
        s->prefix = 0;
        s->read = s->ids.n;
    }
    return 0;
}

void tok_stream_free(tok_stream *s) {
    tok_ids_free(&s->ids);
    sbuf_free(&s->a);
    sbuf_free(&s->b);
}
