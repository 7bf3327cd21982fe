// tokenizer/bpe_train: the incremental trainer (heap + pair index) learns exactly the
// merges of the naive algorithm (recount every pair after every merge, same tie rule),
// and its files load with tok_load and round-trip text. Bad input: invalid UTF-8, a
// vocabulary smaller than the bytes, a repeated special token.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "test.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

// A corpus with repeats, ties and overlapping pairs ("aaaa", "abab").
static const char *const CORPUS[] = {
    "Ava has 12 apples. She buys 5 more apples. How many apples does Ava have now?",
    "Ava has 12 + 5 = <<12+5=17>>17 apples.\n#### 17",
    "aaaa aaaa aaa abab abab ababab bbbb",
    "The banana bandana band bans bananas; anna and hannah.",
    "Ben sells 6 buttons for $7 each. Ben earns 7 * 6 = 42 dollars.\n#### 42",
};

// ---- the naive reference: words as id arrays, recount everything each step ----
typedef struct { int32_t s[128]; int n; long count; } nword;

static int naive_merges(const char *const *pieces, const long *counts, int nw, int target, int32_t (*out)[2],
                        char **tok, int *ntok) {
    nword *w = calloc((size_t)nw, sizeof *w);
    for (int i = 0; i < nw; i++) {
        w[i].n = (int)strlen(pieces[i]);
        for (int k = 0; k < w[i].n; k++) w[i].s[k] = (unsigned char)pieces[i][k];
        w[i].count = counts[i];
    }
    for (int b = 0; b < 256; b++) { tok[b] = calloc(2, 1); tok[b][0] = (char)b; }
    int n = 256, nm = 0;
    while (n < target) {
        long best = 0;
        int32_t ba = -1, bb = -1;
        // every distinct pair's count (quadratic and fine for a tiny corpus)
        for (int i = 0; i < nw; i++)
            for (int k = 0; k + 1 < w[i].n; k++) {
                int32_t a = w[i].s[k], b = w[i].s[k + 1];
                long c = 0;
                for (int j = 0; j < nw; j++)
                    for (int m = 0; m + 1 < w[j].n; m++) c += (w[j].s[m] == a && w[j].s[m + 1] == b) ? w[j].count : 0;
                if (c > best || (c == best && (a < ba || (a == ba && b < bb)))) { best = c; ba = a; bb = b; }
            }
        if (best < 2) break;
        size_t la = strlen(tok[ba]), lb = strlen(tok[bb]);
        char *s = malloc(la + lb + 1);
        memcpy(s, tok[ba], la);
        memcpy(s + la, tok[bb], lb + 1);
        int id = -1;
        for (int t = 256; t < n; t++)
            if (!strcmp(tok[t], s)) id = t;
        if (id < 0) tok[id = n++] = s;
        else free(s);
        out[nm][0] = ba;
        out[nm][1] = bb;
        nm++;
        for (int i = 0; i < nw; i++) {
            int o = 0;
            for (int k = 0; k < w[i].n; k++) {
                if (k + 1 < w[i].n && w[i].s[k] == ba && w[i].s[k + 1] == bb) { w[i].s[o++] = id; k++; }
                else w[i].s[o++] = w[i].s[k];
            }
            w[i].n = o;
        }
    }
    free(w);
    *ntok = n;
    return nm;
}

// tokenizer.json's merges as id pairs.
static int file_merges(const char *dir, int32_t (*out)[2], int cap, int *nvocab) {
    char path[512];
    tm_error err;
    json_doc *d = json_parse_file(io_join(path, sizeof path, dir, "tokenizer.json"), &err);
    if (!d) return -1;
    const json *m = json_get(json_root(d), "model"), *v = json_get(m, "vocab"), *mg = json_get(m, "merges");
    *nvocab = v->n;
    int n = 0;
    for (int i = 0; i < mg->n && n < cap; i++, n++)
        for (int s = 0; s < 2; s++) {
            const json *e = &mg->items[i].items[s];
            out[n][s] = -1;
            for (int k = 0; k < v->n; k++)
                if (!strcmp(v->keys[k], e->str)) out[n][s] = (int32_t)v->items[k].num;
        }
    json_doc_free(d);
    return n;
}

// The corpus's pieces under Qwen2's split, counted (independent of the trainer's code).
static int pieces_of(char **pieces, long *counts, int cap) {
    static const char RE[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)RE, sizeof RE - 1, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int n = 0;
    for (int i = 0; i < (int)(sizeof CORPUS / sizeof CORPUS[0]); i++)
        for (int rep = 0; rep <= i % 3; rep++) {
            const char *t = CORPUS[i];
            size_t len = strlen(t), pos = 0;
            while (pos < len && pcre2_match(re, (PCRE2_SPTR)t, len, pos, 0, md, NULL) > 0) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                char *p = strndup(t + ov[0], ov[1] - ov[0]);
                int k = 0;
                while (k < n && strcmp(pieces[k], p)) k++;
                if (k < n) { counts[k]++; free(p); }
                else if (n < cap) { pieces[n] = p; counts[n++] = 1; }
                pos = ov[1];
            }
        }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return n;
}

int main(void) {
    tm_error err;
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/temper-bpe-train-%d", (int)getpid());
    tok_bpe_trainer *tr = tok_bpe_trainer_new(&err);
    int rc = 0;
    for (int i = 0; i < (int)(sizeof CORPUS / sizeof CORPUS[0]) && !rc; i++)
        for (int rep = 0; rep <= i % 3 && !rc; rep++) rc = tok_bpe_trainer_add(tr, CORPUS[i], strlen(CORPUS[i]), &err);
    CHECK(!rc, "the corpus is pre-tokenized and counted");
    enum { MERGES = 60 };
    tok_bpe_train_opts o;
    tok_bpe_train_opts_default(&o);
    o.vocab_size = 256 + MERGES + 3;
    int V = 0;
    rc = tok_bpe_train_save(tr, &o, dir, &V, &err);
    CHECK(!rc && V == o.vocab_size, "trained to --vocab-size %d (got %d) %s", o.vocab_size, V, rc ? err.msg : "");

    static char *pieces[512];
    static long counts[512];
    int np = pieces_of(pieces, counts, 512);
    static int32_t want[MERGES * 2][2], got[MERGES * 2][2];
    static char *tok[1024];
    int ntok = 0, nvocab = 0;
    int nwant = naive_merges((const char *const *)pieces, counts, np, 256 + MERGES, want, tok, &ntok);
    int ngot = file_merges(dir, got, MERGES * 2, &nvocab);
    int same = nwant == ngot && ngot > 0;
    int at = -1;
    for (int i = 0; same && i < ngot; i++)
        if (got[i][0] != want[i][0] || got[i][1] != want[i][1]) { same = 0; at = i; }
    CHECK(same && nvocab == ntok, "the heap trainer's %d merges are the naive recount's, in order (%d vs %d; first difference at %d)",
          ngot, ngot, nwant, at);

    // loads, encodes a trained word as one token, round-trips text, special ids at the end
    tok_tokenizer *t = tok_load(dir, &err);
    CHECK(t != NULL, "tok_load reads the trained directory %s", t ? "" : err.msg);
    if (t) {
        const char *text = "Ava has 12 apples. Héllo 😀\n\n#### 17<|im_end|>";
        tok_ids ids = {0};
        sbuf back;
        sbuf_init(&back);
        int e1 = tok_encode(t, text, strlen(text), 0, &ids, &err);
        int e2 = e1 ? -1 : tok_decode(t, ids.v, ids.n, 0, &back, &err);
        CHECK(!e1 && !e2 && back.len == strlen(text) && !memcmp(back.data, text, back.len) &&
                  ids.v[ids.n - 1] == tok_token_id(t, "<|im_end|>") && tok_eos_id(t) == V - 1 && tok_pad_id(t) == V - 3,
              "decode(encode(text)) is the text; <|im_end|> is EOS (id %d), <|endoftext|> pad", V - 1);
        tok_ids one = {0};
        tok_encode(t, " apples", 7, 0, &one, &err);
        CHECK(one.n == 1, "a frequent word (' apples') is one token (%zu)", one.n);
        tok_ids_free(&one);
        tok_ids_free(&ids);
        sbuf_free(&back);
        tok_free(t);
    }

    // bad input
    CHECK(tok_bpe_trainer_add(tr, "ab\xff", 3, &err) == -1 && strstr(err.msg, "UTF-8"), "invalid UTF-8 is refused: %s", err.msg);
    o.vocab_size = 258;
    CHECK(tok_bpe_train_save(tr, &o, dir, NULL, &err) == -1 && strstr(err.msg, "258"), "a vocabulary below 256 + 3 is refused: %s", err.msg);
    static const char *const twice[] = {"<|a|>", "<|a|>"};
    o.vocab_size = 300;
    o.special = twice;
    o.nspecial = 2;
    CHECK(tok_bpe_train_save(tr, &o, dir, NULL, &err) == -1 && strstr(err.msg, "twice"), "a repeated special token is refused: %s", err.msg);
    char bad[256];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    io_write_file_atomic(bad, "{\"prompt\": \"x\"}\n[1]\n", 20, &err);
    CHECK(tok_bpe_trainer_add_jsonl(tr, bad, &err) == -1 && strstr(err.msg, "bad.jsonl:2"), "a JSONL line that is not an object names file:line: %s", err.msg);

    tok_bpe_trainer_free(tr);
    for (int i = 0; i < np; i++) free(pieces[i]);
    for (int i = 0; i < ntok; i++) free(tok[i]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    return test_done();
}
