// tokenizer: encoding. The order is Hugging Face's: added tokens are cut out of the
// raw text first (leftmost-longest), each remaining piece is normalized, cut again by
// the normalized added tokens, pre-tokenized (regex splits, metaspace), and each
// word goes through BPE (merges by rank, lowest rank and then leftmost first).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "tokenizer/tok_internal.h"

// ---- normalizers ----
static void replace_all(sbuf *out, const char *s, size_t n, const char *pat, const char *rep) {
    size_t pl = strlen(pat), rl = strlen(rep), i = 0, run = 0;
    while (i + pl <= n) {
        if (s[i] == pat[0] && !memcmp(s + i, pat, pl)) {
            sbuf_put(out, s + run, i - run);
            sbuf_put(out, rep, rl);
            i += pl;
            run = i;
        } else
            i++;
    }
    sbuf_put(out, s + run, n - run);
}

static int is_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

// Normalizes s[0..n) into out (cleared first). -1 + "out of memory" when a buffer
// could not grow (checked after each step: the two buffers swap roles).
int tok_normalize(const tok_tokenizer *t, const char *s, size_t n, sbuf *out, tm_error *err) {
    sbuf_clear(out);
    sbuf_put(out, s, n);
    if (sbuf_check(out, err)) return -1;
    sbuf tmp;
    sbuf_init(&tmp);
    for (int k = 0; k < t->nnorms; k++) {
        const tok_norm *nm = &t->norms[k];
        sbuf_clear(&tmp);
        const char *cur = out->data ? out->data : "";
        size_t cl = out->len;
        switch (nm->kind) {
        case NORM_NFC: case NORM_NFKC: case NORM_NFD: case NORM_NFKD: {
            if (is_ascii(cur, cl)) continue;  // ASCII is invariant under every normal form
            int opt = UTF8PROC_STABLE | (nm->kind == NORM_NFD || nm->kind == NORM_NFKD ? UTF8PROC_DECOMPOSE : UTF8PROC_COMPOSE);
            if (nm->kind == NORM_NFKC || nm->kind == NORM_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *r = NULL;
            utf8proc_ssize_t rl = utf8proc_map((const utf8proc_uint8_t *)cur, (utf8proc_ssize_t)cl, &r, (utf8proc_option_t)opt);
            if (rl == UTF8PROC_ERROR_NOMEM) { sbuf_free(&tmp); return tm_fail(err, "normalizer: out of memory"); }
            if (rl < 0) { sbuf_free(&tmp); return tm_fail(err, "normalizer: %s", utf8proc_errmsg(rl)); }
            sbuf_put(&tmp, (const char *)r, (size_t)rl);
            free(r);
            break;
        }
        case NORM_LOWERCASE:
            for (size_t i = 0; i < cl;) {
                int adv;
                uint32_t cp = tok_utf8_decode(cur + i, cl - i, &adv);
                char b[4];
                sbuf_put(&tmp, b, (size_t)tok_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), b));
                i += (size_t)adv;
            }
            break;
        case NORM_REPLACE:
            replace_all(&tmp, cur, cl, nm->pattern, nm->content);
            break;
        case NORM_PREPEND:
            if (!cl) continue;
            sbuf_puts(&tmp, nm->content);
            sbuf_put(&tmp, cur, cl);
            break;
        }
        if (sbuf_check(&tmp, err)) { sbuf_free(&tmp); return -1; }
        sbuf t2 = *out;
        *out = tmp;
        tmp = t2;
    }
    sbuf_free(&tmp);
    return 0;
}

// ---- BPE on one word ----
typedef struct sym { int32_t c; int32_t prev, next; uint8_t gone; } sym;
typedef struct mrg { uint32_t rank; int32_t pos; int32_t id; } mrg;

typedef struct bpe_scratch {
    sym *s;
    size_t scap;
    mrg *h;
    size_t hn, hcap;
    int failed;   // an allocation failed: the words since are wrong, tok_encode reports it
} bpe_scratch;

static inline int mrg_less(const mrg *a, const mrg *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}
static void heap_push(bpe_scratch *w, mrg m) {
    if (w->hn == w->hcap) {
        size_t nc = w->hcap ? w->hcap * 2 : 256;
        mrg *h = realloc(w->h, nc * sizeof *h);
        if (!h) { w->failed = 1; return; }
        w->h = h;
        w->hcap = nc;
    }
    size_t i = w->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!mrg_less(&m, &w->h[p])) break;
        w->h[i] = w->h[p];
        i = p;
    }
    w->h[i] = m;
}
static mrg heap_pop(bpe_scratch *w) {
    mrg top = w->h[0], last = w->h[--w->hn];
    size_t i = 0, n = w->hn;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t c = (l + 1 < n && mrg_less(&w->h[l + 1], &w->h[l])) ? l + 1 : l;
        if (!mrg_less(&w->h[c], &last)) break;
        w->h[i] = w->h[c];
        i = c;
    }
    if (n) w->h[i] = last;
    return top;
}

// -1 (and w->failed) when out of memory.
static int sym_reserve(bpe_scratch *w, size_t n) {
    if (n <= w->scap) return 0;
    sym *s = realloc(w->s, n * 2 * sizeof *s);
    if (!s) { w->failed = 1; return -1; }
    w->s = s;
    w->scap = n * 2;
    return 0;
}

// Initial symbols of a word (HF BPE::merge_word), appended to w->s; returns count
// (0 and w->failed when out of memory).
static size_t word_symbols(const tok_tokenizer *t, const char *s, size_t n, bpe_scratch *w, sbuf *tmp) {
    size_t ns = 0;
    if (sym_reserve(w, n + 1)) return 0;
    if (t->byte_level && !t->cont_prefix && !t->end_suffix) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_id[(unsigned char)s[i]];
            if (id < 0) id = t->unk_id;  // HF: a missing byte becomes unk, or vanishes
            if (id < 0) continue;
            w->s[ns++].c = id;
        }
        return ns;
    }
    int32_t unk = -1;  // pending (fused) unk
    for (size_t i = 0; i < n;) {
        size_t cl = t->byte_level ? 1 : (size_t)tok_utf8_len((unsigned char)s[i]);
        if (i + cl > n) cl = n - i;
        int first = i == 0, last = i + cl == n;
        const char *piece = s + i;
        size_t pl = cl;
        if ((!first && t->cont_prefix) || (last && t->end_suffix)) {
            sbuf_clear(tmp);
            if (!first && t->cont_prefix) sbuf_puts(tmp, t->cont_prefix);
            sbuf_put(tmp, s + i, cl);
            if (last && t->end_suffix) sbuf_puts(tmp, t->end_suffix);
            if (tmp->failed) { w->failed = 1; return 0; }
            piece = tmp->data;
            pl = tmp->len;
        }
        int32_t id = tok_strmap_get(&t->vocab, piece, pl);
        if (id >= 0) {
            if (unk >= 0) { w->s[ns++].c = unk; unk = -1; }
            if (sym_reserve(w, ns + 2)) return 0;
            w->s[ns++].c = id;
        } else {
            int done = 0;
            if (t->byte_fallback) {
                int ok = 1;
                for (size_t k = 0; k < pl; k++)
                    if (t->fallback_id[(unsigned char)piece[k]] < 0) ok = 0;
                if (ok) {
                    // HF emits byte tokens without flushing a pending unk first
                    if (sym_reserve(w, ns + pl + 2)) return 0;
                    for (size_t k = 0; k < pl; k++) w->s[ns++].c = t->fallback_id[(unsigned char)piece[k]];
                    done = 1;
                }
            }
            if (!done && t->unk_id >= 0) {
                if (unk >= 0 && !t->fuse_unk) {
                    if (sym_reserve(w, ns + 2)) return 0;
                    w->s[ns++].c = unk;
                }
                unk = t->unk_id;
            }
        }
        i += cl;
    }
    if (unk >= 0) {
        if (sym_reserve(w, ns + 2)) return 0;
        w->s[ns++].c = unk;
    }
    return ns;
}

static void bpe_merge(const tok_tokenizer *t, bpe_scratch *w, size_t ns) {
    sym *s = w->s;
    for (size_t i = 0; i < ns; i++) {
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
        s[i].gone = 0;
    }
    w->hn = 0;
    uint32_t rank;
    int32_t merged;
    for (size_t i = 0; i + 1 < ns; i++)
        if (tok_pairmap_get(&t->merges, s[i].c, s[i + 1].c, &rank, &merged))
            heap_push(w, (mrg){rank, (int32_t)i, merged});
    while (w->hn && !w->failed) {
        mrg top = heap_pop(w);
        sym *a = &s[top.pos];
        if (a->gone || a->next < 0) continue;
        sym *b = &s[a->next];
        // an expired entry: the pair at pos no longer makes this token
        if (!tok_pairmap_get(&t->merges, a->c, b->c, &rank, &merged) || merged != top.id) continue;
        a->c = top.id;
        b->gone = 1;
        a->next = b->next;
        if (b->next >= 0) s[b->next].prev = top.pos;
        if (a->prev >= 0 && tok_pairmap_get(&t->merges, s[a->prev].c, a->c, &rank, &merged))
            heap_push(w, (mrg){rank, a->prev, merged});
        if (a->next >= 0 && tok_pairmap_get(&t->merges, a->c, s[a->next].c, &rank, &merged))
            heap_push(w, (mrg){rank, top.pos, merged});
    }
}

typedef struct enc_ctx {
    tok_tokenizer *t;
    tok_ids *out;
    bpe_scratch w;
    sbuf tmp;
    tm_error *err;
} enc_ctx;

#define CACHE_MAX_WORD 256
#define CACHE_MAX_ENTRIES (1u << 17)

// Remembers word s → ids. The cache only speeds encoding up, so when one of its
// allocations fails it stops growing (cache.failed) and encoding goes on without it.
// An entry is put in the map only once its ids and offsets are stored.
static void cache_word(tok_tokenizer *t, const char *s, size_t n, const int32_t *ids, size_t cnt) {
    if (t->cache.failed || t->cache_n >= CACHE_MAX_ENTRIES) return;
    if (t->cache_n == t->cache_cap) {
        uint32_t nc = t->cache_cap ? t->cache_cap * 2 : 4096;
        uint32_t *off = realloc(t->cache_off, nc * sizeof *off);
        if (off) t->cache_off = off;
        uint32_t *cn = realloc(t->cache_cnt, nc * sizeof *cn);
        if (cn) t->cache_cnt = cn;
        if (!off || !cn) { t->cache.failed = 1; return; }
        t->cache_cap = nc;
    }
    size_t at = t->cache_ids.n;
    tok_ids_append(&t->cache_ids, ids, cnt);
    if (t->cache_ids.failed) { t->cache.failed = 1; return; }
    t->cache_off[t->cache_n] = (uint32_t)at;
    t->cache_cnt[t->cache_n] = (uint32_t)cnt;
    tok_strmap_put(&t->cache, s, n, (int32_t)t->cache_n);  // may fail: then the word is simply not found
    t->cache_n++;
}

static void bpe_word(enc_ctx *c, const char *s, size_t n) {
    tok_tokenizer *t = c->t;
    if (!n) return;
    if (t->ignore_merges) {
        int32_t id = tok_strmap_get(&t->vocab, s, n);
        if (id >= 0) { tok_ids_push(c->out, id); return; }
    }
    int cacheable = n <= CACHE_MAX_WORD;
    if (cacheable) {
        int32_t e = tok_strmap_get(&t->cache, s, n);
        if (e >= 0) {
            tok_ids_append(c->out, t->cache_ids.v + t->cache_off[e], t->cache_cnt[e]);
            return;
        }
    }
    size_t ns = word_symbols(t, s, n, &c->w, &c->tmp);
    size_t start = c->out->n;
    if (ns > 1) bpe_merge(t, &c->w, ns);
    else if (ns == 1) c->w.s[0].gone = 0;
    for (size_t i = 0; i < ns; i++)
        if (ns == 1 || !c->w.s[i].gone) tok_ids_push(c->out, c->w.s[i].c);
    // Only a word encoded without a failure is cached.
    if (cacheable && !c->w.failed && !c->out->failed) cache_word(t, s, n, c->out->v + start, c->out->n - start);
}

// ---- pre-tokenization: step k applied to s, recursing into each piece ----
typedef struct span { size_t a, b; int match; } span;

static int pre_step(enc_ctx *c, int k, const char *s, size_t n, int at_start);

// The spans of one split: on the stack up to 64, then on the heap.
typedef struct spans { span *v; size_t n, cap; span stack[64]; } spans;

static int span_push(spans *l, size_t a, size_t b, int match) {
    if (l->n == l->cap) {
        size_t nc = l->cap * 2;
        span *nv = l->v == l->stack ? malloc(nc * sizeof *nv) : realloc(l->v, nc * sizeof *nv);
        if (!nv) return -1;
        if (l->v == l->stack) memcpy(nv, l->stack, sizeof l->stack);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (span){a, b, match};
    return 0;
}

static int split_step(enc_ctx *c, int k, const tok_pre *p, const char *s, size_t n, int at_start) {
    spans L;
    L.v = L.stack;
    L.n = 0;
    L.cap = sizeof L.stack / sizeof L.stack[0];
    int rc = 0;
#define PUSH(A, B, M) do { if (span_push(&L, (A), (B), (M))) goto oom; } while (0)
    size_t prev = 0, pos = 0;
    pcre2_match_data *md = c->t->md;
    while (pos <= n) {
        int rc = pcre2_jit_match(p->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_BADOPTION)
            rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms != prev) PUSH(prev, ms, 0);
        PUSH(ms, me, 1);
        prev = me;
        if (me == ms) {  // empty match: step over one character
            if (me >= n) break;
            pos = me + (size_t)tok_utf8_len((unsigned char)s[me]);
        } else
            pos = me;
    }
    if (prev != n) PUSH(prev, n, 0);
#undef PUSH
    span *sp = L.v;
    size_t nsp = L.n;
    if (p->invert)
        for (size_t i = 0; i < nsp; i++) sp[i].match = !sp[i].match;
    // Hugging Face's SplitDelimiterBehavior folds
    size_t m = 0;
    int prev_match = 0;
    switch (p->behavior) {
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < nsp; i++) sp[i].match = 0;
        m = nsp;
        break;
    case SPLIT_REMOVED:
        m = nsp;
        break;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < nsp; i++) {
            if (sp[i].match == prev_match && m) sp[m - 1].b = sp[i].b;
            else sp[m++] = (span){sp[i].a, sp[i].b, 0};
            prev_match = sp[i].match;
        }
        break;
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < nsp; i++) {
            if (sp[i].match && !prev_match && m) sp[m - 1].b = sp[i].b;
            else sp[m++] = (span){sp[i].a, sp[i].b, 0};
            prev_match = sp[i].match;
        }
        break;
    case SPLIT_MERGED_NEXT: {
        // fold from the right, then the list is in reverse order
        span *r = malloc((nsp + 1) * sizeof *r);
        if (!r) goto oom;
        for (size_t ii = nsp; ii-- > 0;) {
            if (sp[ii].match && !prev_match && m) r[m - 1].a = sp[ii].a;
            else r[m++] = (span){sp[ii].a, sp[ii].b, 0};
            prev_match = sp[ii].match;
        }
        for (size_t i = 0; i < m; i++) sp[i] = r[m - 1 - i];
        free(r);
        break;
    }
    }
    for (size_t i = 0; i < m && !rc; i++) {
        if (sp[i].match || sp[i].b == sp[i].a) continue;
        rc = pre_step(c, k + 1, s + sp[i].a, sp[i].b - sp[i].a, at_start && sp[i].a == 0);
    }
    goto done;
oom:
    rc = tm_fail(c->err, "out of memory splitting a text of %zu bytes", n);
done:
    if (L.v != L.stack) free(L.v);
    return rc;
}

static int pre_step(enc_ctx *c, int k, const char *s, size_t n, int at_start) {
    tok_tokenizer *t = c->t;
    if (!n) return 0;
    if (k == t->npres) { bpe_word(c, s, n); return 0; }
    const tok_pre *p = &t->pres[k];
    switch (p->kind) {
    case PRE_SPLIT:
        return split_step(c, k, p, s, n, at_start);
    case PRE_BYTELEVEL_PREFIX: {
        if (s[0] == ' ') return pre_step(c, k + 1, s, n, at_start);
        char *b = malloc(n + 1);
        if (!b) return tm_fail(c->err, "out of memory encoding a word of %zu bytes", n);
        b[0] = ' ';
        memcpy(b + 1, s, n);
        int rc = pre_step(c, k + 1, b, n + 1, at_start);
        free(b);
        return rc;
    }
    case PRE_METASPACE: {
        sbuf b;
        sbuf_init(&b);
        size_t rl = strlen(p->replacement);
        int starts = n >= rl && !memcmp(s, p->replacement, rl);
        // The prefix is checked on the text after spaces became the replacement.
        int starts_after = starts || s[0] == ' ';
        if (!starts_after && (p->prepend == 1 || (p->prepend == 2 && at_start))) sbuf_puts(&b, p->replacement);
        replace_all(&b, s, n, " ", p->replacement);
        int rc;
        if (sbuf_check(&b, c->err)) rc = -1;
        else if (p->split) rc = split_step(c, k, p, b.data, b.len, at_start);
        else rc = pre_step(c, k + 1, b.data, b.len, at_start);
        sbuf_free(&b);
        return rc;
    }
    }
    return 0;
}

// ---- added tokens ----
static int is_ws(uint32_t cp) {
    return (cp >= 9 && cp <= 13) || cp == 32 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}
static int is_word_char(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}
static uint32_t last_cp(const char *s, size_t n) {
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i > 0) i--;
    int adv;
    return tok_utf8_decode(s + i, n - i, &adv);
}

// Longest added token starting at s[i]; returns its index or -1, *len its length.
static int trie_match(const tok_trie *tr, const char *s, size_t n, size_t i, size_t *len) {
    int node = 0, best = -1;
    for (size_t j = i; j < n; j++) {
        int c = tr->child_first[node];
        uint8_t b = (uint8_t)s[j];
        while (c >= 0 && tr->edge_byte[c] != b) c = tr->edge_next[c];
        if (c < 0) break;
        node = c;
        if (tr->term[node] >= 0) { best = tr->term[node]; *len = j + 1 - i; }
    }
    return best;
}

typedef int (*piece_fn)(enc_ctx *c, const char *s, size_t n, int at_start);

// Cuts s by the added tokens of trie tr (HF AddedVocabulary::find_matches); the ids
// of matches go to the output, the text between them to fn.
static int split_added(enc_ctx *c, const tok_trie *tr, const char *s, size_t n, int at_start, piece_fn fn) {
    if (!tr->nnodes) return fn(c, s, n, at_start);
    size_t start_off = 0, i = 0;
    while (i < n) {
        if (!tr->first[(unsigned char)s[i]]) { i++; continue; }
        size_t ml = 0;
        int ai = trie_match(tr, s, n, i, &ml);
        if (ai < 0) { i++; continue; }
        const tok_added *a = &c->t->added[ai];
        size_t ms = i, me = i + ml;
        if (a->single_word) {
            int sp_before = ms == 0 || !is_word_char(last_cp(s, ms));
            int adv;
            int sp_after = me == n || !is_word_char(tok_utf8_decode(s + me, n - me, &adv));
            if (!sp_before || !sp_after) { i = me; continue; }
        }
        if (a->lstrip) {
            size_t ns = ms;
            while (ns > 0) {
                size_t q = ns;
                while (q > 0 && ((unsigned char)s[q - 1] & 0xC0) == 0x80) q--;
                if (q > 0) q--;
                int adv;
                if (!is_ws(tok_utf8_decode(s + q, ns - q, &adv))) break;
                ns = q;
            }
            ms = ns > start_off ? ns : start_off;
        }
        if (a->rstrip) {
            while (me < n) {
                int adv;
                if (!is_ws(tok_utf8_decode(s + me, n - me, &adv))) break;
                me += (size_t)adv;
            }
        }
        if (start_off < ms && fn(c, s + start_off, ms - start_off, at_start && start_off == 0)) return -1;
        tok_ids_push(c->out, a->id);
        start_off = me;
        i = me;
    }
    if (start_off < n) return fn(c, s + start_off, n - start_off, at_start && start_off == 0);
    return 0;
}

static int after_norm_piece(enc_ctx *c, const char *s, size_t n, int at_start) {
    return pre_step(c, 0, s, n, at_start);
}

static int raw_piece(enc_ctx *c, const char *s, size_t n, int at_start) {
    if (!c->t->nnorms) return split_added(c, &c->t->trie_norm, s, n, at_start, after_norm_piece);
    sbuf nb;
    sbuf_init(&nb);
    int rc = tok_normalize(c->t, s, n, &nb, c->err);
    if (!rc) rc = split_added(c, &c->t->trie_norm, nb.data ? nb.data : "", nb.len, at_start, after_norm_piece);
    sbuf_free(&nb);
    return rc;
}

int tok_encode(tok_tokenizer *t, const char *text, size_t len, int add_special, tok_ids *out, tm_error *err) {
    size_t valid = tok_utf8_valid_prefix(text, len);
    if (valid != len) return tm_fail(err, "text is not valid UTF-8 (byte %zu)", valid);
    enc_ctx c = {.t = t, .out = out, .err = err};
    sbuf_init(&c.tmp);
    if (add_special) tok_ids_append(out, t->post_pre.v, t->post_pre.n);
    int rc = split_added(&c, &t->trie_raw, text, len, 1, raw_piece);
    if (add_special) tok_ids_append(out, t->post_post.v, t->post_post.n);
    if (!rc && (out->failed || c.w.failed || c.tmp.failed))
        rc = tm_fail(err, "out of memory encoding a text of %zu bytes", len);
    free(c.w.s);
    free(c.w.h);
    sbuf_free(&c.tmp);
    return rc;
}
