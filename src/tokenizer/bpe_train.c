// tokenizer/bpe_train: byte-level BPE training (see bpe_train.h).
#include "tokenizer/bpe_train.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "tokenizer/tok_internal.h"

// Qwen2's pre-tokenizer regex (also Qwen3's): single digits, letters with one leading
// non-letter, punctuation runs, newlines, spaces.
static const char QWEN2_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static const char *const DEFAULT_SPECIAL[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

struct tok_bpe_trainer {
    pcre2_code *re;
    pcre2_match_data *md;
    tok_strmap words;  // piece bytes → index into count
    int64_t *count;
    int nwords, cap;
    int failed;
};

tok_bpe_trainer *tok_bpe_trainer_new(tm_error *err) {
    tok_bpe_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) { tm_fail(err, "out of memory"); return NULL; }
    int ecode;
    PCRE2_SIZE eoff;
    tr->re = pcre2_compile((PCRE2_SPTR)QWEN2_RE, sizeof QWEN2_RE - 1, PCRE2_UTF | PCRE2_NO_UTF_CHECK | PCRE2_UCP, &ecode,
                           &eoff, NULL);
    if (tr->re) pcre2_jit_compile(tr->re, PCRE2_JIT_COMPLETE);
    tr->md = tr->re ? pcre2_match_data_create_from_pattern(tr->re, NULL) : NULL;
    if (!tr->re || !tr->md || tok_strmap_init(&tr->words, 4096, 1 << 16)) {
        tok_bpe_trainer_free(tr);
        tm_fail(err, "out of memory (BPE trainer)");
        return NULL;
    }
    return tr;
}

void tok_bpe_trainer_free(tok_bpe_trainer *tr) {
    if (!tr) return;
    if (tr->md) pcre2_match_data_free(tr->md);
    if (tr->re) pcre2_code_free(tr->re);
    tok_strmap_free(&tr->words);
    free(tr->count);
    free(tr);
}

static void add_piece(tok_bpe_trainer *tr, const char *s, size_t n) {
    if (!n || tr->failed) return;
    int32_t w = tok_strmap_get(&tr->words, s, n);
    if (w >= 0) { tr->count[w]++; return; }
    if (tr->nwords == tr->cap) {
        int cap = tr->cap ? tr->cap * 2 : 4096;
        int64_t *c = realloc(tr->count, (size_t)cap * sizeof *c);
        if (!c) { tr->failed = 1; return; }
        tr->count = c;
        tr->cap = cap;
    }
    tok_strmap_put(&tr->words, s, n, tr->nwords);
    tr->count[tr->nwords++] = 1;
}

int tok_bpe_trainer_add(tok_bpe_trainer *tr, const char *text, size_t len, tm_error *err) {
    if (tok_utf8_valid_prefix(text, len) != len) return tm_fail(err, "invalid UTF-8 in the training text");
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_jit_match(tr->re, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, tr->md, NULL);
        if (rc == PCRE2_ERROR_JIT_BADOPTION) rc = pcre2_match(tr->re, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, tr->md, NULL);
        if (rc < 0) { add_piece(tr, text + pos, len - pos); break; }  // no more matches: the rest is one piece
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tr->md);
        add_piece(tr, text + pos, ov[0] - pos);  // a gap between matches (Isolated keeps it)
        if (ov[1] == ov[0]) {  // an empty match: step over one character
            size_t k = (size_t)tok_utf8_len((unsigned char)text[ov[0]]);
            add_piece(tr, text + ov[0], k);
            pos = ov[0] + k;
        } else {
            add_piece(tr, text + ov[0], ov[1] - ov[0]);
            pos = ov[1];
        }
    }
    if (tr->failed || tr->words.failed) return tm_fail(err, "out of memory (BPE trainer)");
    return 0;
}

static int is_text_key(const char *k) {
    static const char *const keys[] = {"prompt", "completion", "chosen", "rejected", "question", "answer", "solution",
                                       "problem", "text", "initial_reason_steps", "messages", "content"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i])) return 1;
    return 0;
}

// The strings of a text field: the string itself, or the text fields of the objects
// (messages) and the strings of an array under it.
static int add_value(tok_bpe_trainer *tr, const json *v, tm_error *err) {
    if (v->type == JSON_STRING) return tok_bpe_trainer_add(tr, v->str, v->len, err);
    if (v->type == JSON_ARRAY) {
        for (int i = 0; i < v->n; i++)
            if (add_value(tr, &v->items[i], err)) return -1;
    } else if (v->type == JSON_OBJECT) {
        for (int i = 0; i < v->n; i++)
            if (is_text_key(v->keys[i]) && add_value(tr, &v->items[i], err)) return -1;
    }
    return 0;
}

int tok_bpe_trainer_add_jsonl(tok_bpe_trainer *tr, const char *path, tm_error *err) {
    io_lines r;
    if (io_lines_open(&r, path, err)) return -1;
    char *line;
    long n;
    int rc = 0;
    while (!rc && (n = io_lines_next(&r, &line)) >= 0) {
        size_t k = 0;
        while (k < (size_t)n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == (size_t)n) continue;
        json_doc *d = json_parse(line, (size_t)n, err);
        json *row = d ? json_root(d) : NULL;
        if (!d) rc = -1;
        else if (row->type != JSON_OBJECT) rc = tm_fail(err, "not a JSON object");
        else rc = add_value(tr, row, err);
        json_doc_free(d);
        if (rc) tm_fail_prefix(err, "%s:%ld", path, r.lineno);
    }
    io_lines_close(&r);
    return rc;
}

void tok_bpe_train_opts_default(tok_bpe_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->vocab_size = 1024;
    o->min_frequency = 2;
}

// ---------------------------------------------------------------- training

typedef struct { int64_t count; int32_t a, b; } hent;
typedef struct {
    int64_t count;
    int *words;   // pieces that held the pair when it was counted (some may no longer)
    int nw, cw;
    int last;     // the last piece appended (skips immediate repeats)
} pinfo;

typedef struct {
    tok_pairmap map;  // (a, b) → index into p (stored as "merged")
    pinfo *p;
    int np, cp;
    hent *heap;
    size_t nh, ch;
    int failed;
} pairs;

// Max-heap order: more frequent first, then the smaller pair (Hugging Face's tie rule).
static int above(const hent *x, const hent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static void heap_push(pairs *P, int64_t count, int32_t a, int32_t b) {
    if (P->failed) return;
    if (P->nh == P->ch) {
        size_t c = P->ch ? P->ch * 2 : 4096;
        hent *h = realloc(P->heap, c * sizeof *h);
        if (!h) { P->failed = 1; return; }
        P->heap = h;
        P->ch = c;
    }
    size_t i = P->nh++;
    P->heap[i] = (hent){count, a, b};
    while (i && above(&P->heap[i], &P->heap[(i - 1) / 2])) {
        hent t = P->heap[i]; P->heap[i] = P->heap[(i - 1) / 2]; P->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static hent heap_pop(pairs *P) {
    hent top = P->heap[0];
    P->heap[0] = P->heap[--P->nh];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < P->nh && above(&P->heap[l], &P->heap[m])) m = l;
        if (r < P->nh && above(&P->heap[r], &P->heap[m])) m = r;
        if (m == i) break;
        hent t = P->heap[i]; P->heap[i] = P->heap[m]; P->heap[m] = t;
        i = m;
    }
    return top;
}

static int pair_index(const pairs *P, int32_t a, int32_t b) {
    uint32_t rank;
    int32_t idx;
    return tok_pairmap_get(&P->map, a, b, &rank, &idx) ? idx : -1;
}

// count(a, b) += delta; a positive delta records piece w as a holder. Returns the index.
static int pair_add(pairs *P, int32_t a, int32_t b, int64_t delta, int w) {
    if (P->failed) return -1;
    int i = pair_index(P, a, b);
    if (i < 0) {
        if (P->np == P->cp) {
            int c = P->cp ? P->cp * 2 : 4096;
            pinfo *p = realloc(P->p, (size_t)c * sizeof *p);
            if (!p) { P->failed = 1; return -1; }
            P->p = p;
            P->cp = c;
        }
        i = P->np++;
        P->p[i] = (pinfo){0, NULL, 0, 0, -1};
        tok_pairmap_put(&P->map, a, b, 0, i);
        if (P->map.failed) { P->failed = 1; return -1; }
    }
    pinfo *q = &P->p[i];
    q->count += delta;
    if (delta > 0 && q->last != w) {
        if (q->nw == q->cw) {
            int c = q->cw ? q->cw * 2 : 4;
            int *ws = realloc(q->words, (size_t)c * sizeof *ws);
            if (!ws) { P->failed = 1; return -1; }
            q->words = ws;
            q->cw = c;
        }
        q->words[q->nw++] = w;
        q->last = w;
    }
    return i;
}

typedef struct {
    uint32_t *off, *len;  // token bytes in blob
    int32_t (*merge)[2];  // merges[k] = (left, right)
    int n, nmerge, cmerge;
    sbuf blob;
} vocab;

static void token_str(const vocab *v, int id, sbuf *out) {  // in GPT-2's byte-level alphabet
    const unsigned char *s = (const unsigned char *)v->blob.data + v->off[id];
    for (uint32_t i = 0; i < v->len[id]; i++) {
        char u[4];
        sbuf_put(out, u, (size_t)tok_utf8_encode(tok_byte_to_cp[s[i]], u));
    }
}

static int write_files(const vocab *v, const tok_bpe_train_opts *o, const char *const *special, int nspecial,
                       const char *dir, tm_error *err) {
    sbuf j;
    sbuf_init(&j);
    sbuf_puts(&j, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    for (int i = 0; i < nspecial; i++) {
        sbuf_printf(&j, "%s\n    {\"id\": %d, \"content\": ", i ? "," : "", v->n + i);
        sbuf_json_str(&j, special[i], strlen(special[i]));
        sbuf_puts(&j, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}");
    }
    sbuf_puts(&j, "\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": ");
    sbuf_json_str(&j, QWEN2_RE, sizeof QWEN2_RE - 1);
    sbuf_puts(&j, "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                  "\"trim_offsets\": false, \"use_regex\": false}]},\n  \"post_processor\": null,\n"
                  "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false},\n"
                  "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": \"\", "
                  "\"end_of_word_suffix\": \"\", \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,\n"
                  "    \"vocab\": {");
    sbuf t;
    sbuf_init(&t);
    for (int i = 0; i < v->n; i++) {
        sbuf_clear(&t);
        token_str(v, i, &t);
        sbuf_puts(&j, i ? ", " : "");
        sbuf_json_str(&j, t.data ? t.data : "", t.len);
        sbuf_printf(&j, ": %d", i);
    }
    sbuf_puts(&j, "},\n    \"merges\": [");
    for (int k = 0; k < v->nmerge; k++) {
        sbuf_puts(&j, k ? ", [" : "[");
        for (int s = 0; s < 2; s++) {
            sbuf_clear(&t);
            token_str(v, v->merge[k][s], &t);
            sbuf_json_str(&j, t.data ? t.data : "", t.len);
            sbuf_puts(&j, s ? "]" : ", ");
        }
    }
    sbuf_puts(&j, "]\n  }\n}\n");
    sbuf_free(&t);

    sbuf c;
    sbuf_init(&c);
    sbuf_puts(&c, "{\n  \"add_bos_token\": false,\n  \"add_prefix_space\": false,\n  \"added_tokens_decoder\": {");
    for (int i = 0; i < nspecial; i++) {
        sbuf_printf(&c, "%s\n    \"%d\": {\"content\": ", i ? "," : "", v->n + i);
        sbuf_json_str(&c, special[i], strlen(special[i]));
        sbuf_puts(&c, ", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, \"special\": true}");
    }
    // EOS: the end of a ChatML turn when it is one of the special tokens, else the last
    // special token; pad: the first.
    const char *eos = special[nspecial - 1];
    for (int i = 0; i < nspecial; i++)
        if (!strcmp(special[i], "<|im_end|>")) eos = special[i];
    sbuf_puts(&c, "\n  },\n  \"bos_token\": null,\n  \"eos_token\": ");
    sbuf_json_str(&c, eos, strlen(eos));
    sbuf_puts(&c, ",\n  \"pad_token\": ");
    sbuf_json_str(&c, special[0], strlen(special[0]));
    sbuf_puts(&c, ",\n  \"unk_token\": null,\n  \"clean_up_tokenization_spaces\": false,\n  \"model_max_length\": 4096,\n"
                  "  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"chat_template\": ");
    sbuf_json_str(&c, CHATML_TEMPLATE, sizeof CHATML_TEMPLATE - 1);
    sbuf_puts(&c, "\n}\n");
    (void)o;

    char path[4096];
    int rc = sbuf_check(&j, err) || sbuf_check(&c, err) || io_mkdirs(dir, err) ||
             io_write_file_atomic(io_join(path, sizeof path, dir, "tokenizer.json"), j.data, j.len, err) ||
             io_write_file_atomic(io_join(path, sizeof path, dir, "tokenizer_config.json"), c.data, c.len, err) ? -1 : 0;
    sbuf_free(&j);
    sbuf_free(&c);
    return rc;
}

int tok_bpe_train_save(tok_bpe_trainer *tr, const tok_bpe_train_opts *o, const char *dir, int *vocab_out,
                       tm_error *err) {
    const char *const *special = o->special ? o->special : DEFAULT_SPECIAL;
    int nspecial = o->special ? o->nspecial : 3;
    if (nspecial < 1) return tm_fail(err, "the tokenizer needs at least one special token (its EOS)");
    if (o->vocab_size < 256 + nspecial)
        return tm_fail(err, "--vocab-size %d is below 256 bytes + %d special tokens", o->vocab_size, nspecial);
    if (o->min_frequency < 1) return tm_fail(err, "--min-frequency must be at least 1 (got %d)", o->min_frequency);
    for (int i = 0; i < nspecial; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(special[i], special[k])) return tm_fail(err, "special token '%s' is listed twice", special[i]);
    int target = o->vocab_size - nspecial, nw = tr->nwords, rc = 0;

    // pieces as symbol arrays (bytes at first), all in one buffer
    size_t total = 0;
    for (int w = 0; w < nw; w++) total += tr->words.ent[w].len;
    int32_t *sym = malloc((total + 1) * sizeof *sym);
    uint32_t *woff = malloc(((size_t)nw + 1) * sizeof *woff), *wlen = malloc(((size_t)nw + 1) * sizeof *wlen);
    int *stamp = malloc(((size_t)nw + 1) * sizeof *stamp);
    vocab v = {0};
    sbuf_init(&v.blob);
    v.off = malloc((size_t)target * sizeof *v.off);
    v.len = malloc((size_t)target * sizeof *v.len);
    tok_strmap known = {0};
    pairs P = {0};
    if (!sym || !woff || !wlen || !stamp || !v.off || !v.len || tok_strmap_init(&known, (uint32_t)target, 1 << 16) ||
        tok_pairmap_init(&P.map, 1 << 14)) {
        rc = tm_fail(err, "out of memory (BPE training)");
        goto done;
    }
    size_t at = 0;
    for (int w = 0; w < nw; w++) {
        const tok_strent *e = &tr->words.ent[w];
        woff[w] = (uint32_t)at;
        wlen[w] = e->len;
        stamp[w] = -1;
        for (uint32_t i = 0; i < e->len; i++) sym[at++] = (unsigned char)tr->words.blob[e->off + i];
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        v.off[b] = (uint32_t)v.blob.len;
        v.len[b] = 1;
        sbuf_put(&v.blob, &c, 1);
        tok_strmap_put(&known, &c, 1, b);
    }
    v.n = 256;
    for (int w = 0; w < nw; w++)
        for (uint32_t i = 0; i + 1 < wlen[w]; i++) pair_add(&P, sym[woff[w] + i], sym[woff[w] + i + 1], tr->count[w], w);
    // one heap entry per pair to start with (the map's keys give the pairs)
    for (uint32_t s = 0; s <= P.map.mask; s++)
        if (P.map.keys[s] != UINT64_MAX) {
            int32_t a = (int32_t)(P.map.keys[s] >> 32), b = (int32_t)(uint32_t)P.map.keys[s];
            heap_push(&P, P.p[P.map.merged[s]].count, a, b);
        }

    while (v.n < target && P.nh && !P.failed) {
        hent top = heap_pop(&P);
        int pi = pair_index(&P, top.a, top.b);
        int64_t now = pi >= 0 ? P.p[pi].count : 0;
        if (now != top.count) {  // stale: a fresher entry exists, or the count went down
            if (now > 0 && now < top.count) heap_push(&P, now, top.a, top.b);
            continue;
        }
        if (now < o->min_frequency) break;
        // the merged token: an existing id when the same bytes were made before
        size_t la = v.len[top.a], lb = v.len[top.b], nb = la + lb;
        char *bytes = malloc(nb);
        if (!bytes) { P.failed = 1; break; }
        memcpy(bytes, v.blob.data + v.off[top.a], la);
        memcpy(bytes + la, v.blob.data + v.off[top.b], lb);
        int32_t id = tok_strmap_get(&known, bytes, nb);
        if (id < 0) {
            id = v.n++;
            v.off[id] = (uint32_t)v.blob.len;
            v.len[id] = (uint32_t)nb;
            sbuf_put(&v.blob, bytes, nb);
            tok_strmap_put(&known, bytes, nb, id);
        }
        free(bytes);
        if (!v.blob.data || known.failed) { P.failed = 1; break; }
        if (v.nmerge == v.cmerge) {  // merges that remake known bytes add no id, so count them apart
            int c = v.cmerge ? v.cmerge * 2 : 1024;
            int32_t (*m)[2] = realloc(v.merge, (size_t)c * sizeof *m);
            if (!m) { P.failed = 1; break; }
            v.merge = m;
            v.cmerge = c;
        }
        v.merge[v.nmerge][0] = top.a;
        v.merge[v.nmerge][1] = top.b;
        int mno = v.nmerge++;
        // the pieces that hold (a, b): take their pairs out, merge, put them back
        int nwp = P.p[pi].nw;
        int *ws = P.p[pi].words;
        P.p[pi].words = NULL;
        P.p[pi].nw = P.p[pi].cw = 0;
        P.p[pi].last = -1;
        for (int k = 0; k < nwp && !P.failed; k++) {
            int w = ws[k];
            if (stamp[w] == mno) continue;
            stamp[w] = mno;
            int32_t *s = sym + woff[w];
            uint32_t n = wlen[w], i;
            for (i = 0; i + 1 < n; i++)
                if (s[i] == top.a && s[i + 1] == top.b) break;
            if (i + 1 >= n) continue;
            int64_t c = tr->count[w];
            for (i = 0; i + 1 < n; i++) pair_add(&P, s[i], s[i + 1], -c, w);
            uint32_t out = 0;
            for (i = 0; i < n; i++) {
                if (i + 1 < n && s[i] == top.a && s[i + 1] == top.b) { s[out++] = id; i++; }
                else s[out++] = s[i];
            }
            wlen[w] = n = out;
            for (i = 0; i + 1 < n; i++) {
                int q = pair_add(&P, s[i], s[i + 1], c, w);
                if (q >= 0) heap_push(&P, P.p[q].count, s[i], s[i + 1]);
            }
        }
        free(ws);
    }
    if (P.failed || known.failed || sbuf_check(&v.blob, err)) { rc = tm_fail(err, "out of memory (BPE training)"); goto done; }
    rc = write_files(&v, o, special, nspecial, dir, err);
    if (!rc && vocab_out) *vocab_out = v.n + nspecial;
done:
    for (int i = 0; i < P.np; i++) free(P.p[i].words);
    free(P.p);
    free(P.heap);
    tok_pairmap_free(&P.map);
    tok_strmap_free(&known);
    free(sym); free(woff); free(wlen); free(stamp);
    free(v.off); free(v.len); free(v.merge);
    sbuf_free(&v.blob);
    return rc;
}
