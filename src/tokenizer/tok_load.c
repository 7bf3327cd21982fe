// tokenizer: reading tokenizer.json / tokenizer_config.json into a tok_tokenizer.
// Every component is checked against what tok_encode implements; an unknown one is
// an error naming it, so a tokenizer is never half-understood.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "base/io.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/jinja.h"

// Out of memory is reported like any other load error: -1 and a message, which
// tok_load_files prefixes with the file's path.
static int oom(tm_error *err, const char *what) { return tm_fail(err, "out of memory (%s)", what); }

// NULL when out of memory.
static char *xstrndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

// Grows *p to n elements of size elem; *p is unchanged when out of memory (-1).
static int grow_to(void *pp, size_t n, size_t elem) {
    void **p = pp;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    return 0;
}

static int is_type(const json *o, const char *type) {
    const char *t = json_get_str(o, "type", NULL);
    return t && !strcmp(t, type);
}

// Compiles a PCRE2 pattern with Unicode classes (the Oniguruma patterns of
// tokenizer.json use \p{L}, \p{N}, \s with their Unicode meanings).
static pcre2_code *compile_re(const char *pat, size_t len, int literal, tm_error *err) {
    int ecode;
    PCRE2_SIZE eoff;
    uint32_t opts = PCRE2_UTF | PCRE2_NO_UTF_CHECK | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &ecode, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        tm_fail(err, "regex '%s' at offset %zu: %s", pat, (size_t)eoff, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    return re;
}

static const char *GPT2_RE =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int parse_behavior(const char *b, int *out, tm_error *err) {
    if (!b) return tm_fail(err, "Split pre-tokenizer without behavior");
    if (!strcmp(b, "Removed")) *out = SPLIT_REMOVED;
    else if (!strcmp(b, "Isolated")) *out = SPLIT_ISOLATED;
    else if (!strcmp(b, "MergedWithPrevious")) *out = SPLIT_MERGED_PREV;
    else if (!strcmp(b, "MergedWithNext")) *out = SPLIT_MERGED_NEXT;
    else if (!strcmp(b, "Contiguous")) *out = SPLIT_CONTIGUOUS;
    else return tm_fail(err, "unknown split behavior '%s'", b);
    return 0;
}

// A new zeroed step at the end of t->pres; NULL when out of memory.
static tok_pre *add_pre(tok_tokenizer *t) {
    if (grow_to(&t->pres, (size_t)t->npres + 1, sizeof *t->pres)) return NULL;
    tok_pre *p = &t->pres[t->npres++];
    memset(p, 0, sizeof *p);
    return p;
}

static int parse_prepend_scheme(const json *o) {
    const char *s = json_get_str(o, "prepend_scheme", NULL);
    if (s) return !strcmp(s, "never") ? 0 : !strcmp(s, "first") ? 2 : 1;
    return json_get_bool(o, "add_prefix_space", 1) ? 1 : 0;
}

static int load_pre(tok_tokenizer *t, const json *o, tm_error *err) {
    if (!o || o->type == JSON_NULL) return 0;
    if (o->type != JSON_OBJECT) return tm_fail(err, "pre_tokenizer: not an object");
    if (is_type(o, "Sequence")) {
        const json *l = json_get(o, "pretokenizers");
        if (!l || l->type != JSON_ARRAY) return tm_fail(err, "pre_tokenizer Sequence without pretokenizers");
        for (int i = 0; i < l->n; i++)
            if (load_pre(t, &l->items[i], err)) return -1;
        return 0;
    }
    if (t->byte_level) return tm_fail(err, "pre_tokenizer: a step after ByteLevel is not supported");
    if (is_type(o, "Split")) {
        tok_pre *p = add_pre(t);
        if (!p) return oom(err, "pre-tokenizers");
        p->kind = PRE_SPLIT;
        const json *pat = json_get(o, "pattern");
        const json *s = pat ? json_get(pat, "String") : NULL, *r = pat ? json_get(pat, "Regex") : NULL;
        if (s && s->type == JSON_STRING) p->re = compile_re(s->str, s->len, 1, err);
        else if (r && r->type == JSON_STRING) p->re = compile_re(r->str, r->len, 0, err);
        else return tm_fail(err, "Split pre-tokenizer: pattern must be {String} or {Regex}");
        if (!p->re) return -1;
        if (parse_behavior(json_get_str(o, "behavior", NULL), &p->behavior, err)) return -1;
        p->invert = json_get_bool(o, "invert", 0);
        return 0;
    }
    if (is_type(o, "ByteLevel")) {
        if (json_get_bool(o, "add_prefix_space", 0)) {
            tok_pre *p = add_pre(t);
            if (!p) return oom(err, "pre-tokenizers");
            p->kind = PRE_BYTELEVEL_PREFIX;
        }
        if (json_get_bool(o, "use_regex", 1)) {
            tok_pre *p = add_pre(t);
            if (!p) return oom(err, "pre-tokenizers");
            p->kind = PRE_SPLIT;
            p->behavior = SPLIT_ISOLATED;
            if (!(p->re = compile_re(GPT2_RE, strlen(GPT2_RE), 0, err))) return -1;
        }
        t->byte_level = 1;
        return 0;
    }
    if (is_type(o, "Metaspace")) {
        tok_pre *p = add_pre(t);
        if (!p) return oom(err, "pre-tokenizers");
        p->kind = PRE_METASPACE;
        const char *rep = json_get_str(o, "replacement", "\xe2\x96\x81");
        if (!(p->replacement = xstrndup(rep, strlen(rep)))) return oom(err, "Metaspace replacement");
        p->prepend = parse_prepend_scheme(o);
        p->split = json_get_bool(o, "split", 1);
        if (p->split) {
            if (!(p->re = compile_re(rep, strlen(rep), 1, err))) return -1;
            p->behavior = SPLIT_MERGED_NEXT;
        }
        return 0;
    }
    if (is_type(o, "Digits")) {
        tok_pre *p = add_pre(t);
        if (!p) return oom(err, "pre-tokenizers");
        p->kind = PRE_SPLIT;
        p->individual_digits = json_get_bool(o, "individual_digits", 0);
        const char *re = p->individual_digits ? "\\p{N}" : "\\p{N}+";
        p->behavior = SPLIT_ISOLATED;
        if (!(p->re = compile_re(re, strlen(re), 0, err))) return -1;
        return 0;
    }
    return tm_fail(err, "pre_tokenizer type '%s' is not supported", json_get_str(o, "type", "?"));
}

static int load_norm(tok_tokenizer *t, const json *o, tm_error *err) {
    if (!o || o->type == JSON_NULL) return 0;
    if (is_type(o, "Sequence")) {
        const json *l = json_get(o, "normalizers");
        if (!l || l->type != JSON_ARRAY) return tm_fail(err, "normalizer Sequence without normalizers");
        for (int i = 0; i < l->n; i++)
            if (load_norm(t, &l->items[i], err)) return -1;
        return 0;
    }
    tok_norm nm = {0};
    const char *type = json_get_str(o, "type", "?");
    if (!strcmp(type, "NFC")) nm.kind = NORM_NFC;
    else if (!strcmp(type, "NFKC")) nm.kind = NORM_NFKC;
    else if (!strcmp(type, "NFD")) nm.kind = NORM_NFD;
    else if (!strcmp(type, "NFKD")) nm.kind = NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) nm.kind = NORM_LOWERCASE;
    else if (!strcmp(type, "Prepend")) {
        nm.kind = NORM_PREPEND;
        const json *c = json_get(o, "prepend");
        if (!c || c->type != JSON_STRING) return tm_fail(err, "Prepend normalizer without prepend");
        if (!(nm.content = xstrndup(c->str, c->len))) return oom(err, "Prepend normalizer");
    } else if (!strcmp(type, "Replace")) {
        nm.kind = NORM_REPLACE;
        const json *pat = json_get(o, "pattern"), *s = pat ? json_get(pat, "String") : NULL;
        const json *c = json_get(o, "content");
        if (!s || s->type != JSON_STRING || !s->len || !c || c->type != JSON_STRING)
            return tm_fail(err, "Replace normalizer: only a non-empty String pattern is supported");
        nm.pattern = xstrndup(s->str, s->len);
        nm.content = xstrndup(c->str, c->len);
    } else
        return tm_fail(err, "normalizer type '%s' is not supported", type);
    if ((nm.kind == NORM_REPLACE && (!nm.pattern || !nm.content)) ||
        grow_to(&t->norms, (size_t)t->nnorms + 1, sizeof *t->norms)) {
        free(nm.pattern);
        free(nm.content);
        return oom(err, "normalizers");
    }
    t->norms[t->nnorms++] = nm;
    return 0;
}

static int load_dec(tok_tokenizer *t, const json *o, tm_error *err) {
    if (!o || o->type == JSON_NULL) return 0;
    if (is_type(o, "Sequence")) {
        const json *l = json_get(o, "decoders");
        if (!l || l->type != JSON_ARRAY) return tm_fail(err, "decoder Sequence without decoders");
        for (int i = 0; i < l->n; i++)
            if (load_dec(t, &l->items[i], err)) return -1;
        return 0;
    }
    tok_dec d = {0};
    const char *type = json_get_str(o, "type", "?");
    if (!strcmp(type, "ByteLevel")) d.kind = DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) d.kind = DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) d.kind = DEC_FUSE;
    else if (!strcmp(type, "Replace")) {
        d.kind = DEC_REPLACE;
        const json *pat = json_get(o, "pattern"), *s = pat ? json_get(pat, "String") : NULL;
        const json *c = json_get(o, "content");
        if (!s || s->type != JSON_STRING || !s->len || !c || c->type != JSON_STRING)
            return tm_fail(err, "Replace decoder: only a non-empty String pattern is supported");
        d.pattern = xstrndup(s->str, s->len);
        d.content = xstrndup(c->str, c->len);
    } else if (!strcmp(type, "Strip")) {
        d.kind = DEC_STRIP;
        const char *c = json_get_str(o, "content", " ");
        d.content = xstrndup(c, strlen(c));
        d.strip_start = (int)json_get_int(o, "start", 0);
        d.strip_stop = (int)json_get_int(o, "stop", 0);
    } else if (!strcmp(type, "Metaspace")) {
        d.kind = DEC_METASPACE;
        const char *rep = json_get_str(o, "replacement", "\xe2\x96\x81");
        d.pattern = xstrndup(rep, strlen(rep));
        d.prepend = parse_prepend_scheme(o) != 0;
    } else
        return tm_fail(err, "decoder type '%s' is not supported", type);
    int missing = (d.kind == DEC_REPLACE && (!d.pattern || !d.content)) || (d.kind == DEC_STRIP && !d.content) ||
                  (d.kind == DEC_METASPACE && !d.pattern);
    if (missing || grow_to(&t->decs, (size_t)t->ndecs + 1, sizeof *t->decs)) {
        free(d.pattern);
        free(d.content);
        return oom(err, "decoders");
    }
    t->decs[t->ndecs++] = d;
    return 0;
}

// Token string of tokenizer.json → the key used in the vocab map: raw bytes in
// byte-level mode (so BPE works on bytes, not on GPT-2's remapped characters), the
// string itself otherwise. A byte-level token with a character outside GPT-2's
// table keeps its UTF-8 (it can never be produced by the pre-tokenizer).
static size_t vocab_key(const tok_tokenizer *t, const char *s, size_t n, char *out) {
    if (!t->byte_level) { memcpy(out, s, n); return n; }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int adv;
        uint32_t cp = tok_utf8_decode(s + i, n - i, &adv);
        int b = tok_cp_to_byte(cp);
        if (b < 0) { memcpy(out, s, n); return n; }
        out[o++] = (char)b;
        i += (size_t)adv;
    }
    return o;
}

static int32_t lookup_token(const tok_tokenizer *t, const char *s, size_t n, char *scratch) {
    size_t k = vocab_key(t, s, n, scratch);
    return tok_strmap_get(&t->vocab, scratch, k);
}

// ---- added-token trie ----
// A new node's index, -1 when out of memory. The arrays grow one by one; cap only
// moves once all four have grown, so a failure leaves the trie as it was.
static int trie_node(tok_trie *tr) {
    if (tr->nnodes == tr->cap) {
        size_t nc = tr->cap ? (size_t)tr->cap * 2 : 256;
        if (grow_to(&tr->child_first, nc, sizeof(int32_t)) || grow_to(&tr->edge_next, nc, sizeof(int32_t)) ||
            grow_to(&tr->edge_byte, nc, 1) || grow_to(&tr->term, nc, sizeof(int32_t)))
            return -1;
        tr->cap = (int)nc;
    }
    int i = tr->nnodes++;
    tr->child_first[i] = -1;
    tr->edge_next[i] = -1;
    tr->edge_byte[i] = 0;
    tr->term[i] = -1;
    return i;
}
// -1 when out of memory.
static int trie_add(tok_trie *tr, const char *s, size_t n, int32_t idx) {
    if (!tr->nnodes && trie_node(tr) < 0) return -1;
    if (!n) return 0;
    tr->first[(unsigned char)s[0]] = 1;
    int node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int c = tr->child_first[node];
        while (c >= 0 && tr->edge_byte[c] != b) c = tr->edge_next[c];
        if (c < 0) {
            if ((c = trie_node(tr)) < 0) return -1;
            tr->edge_byte[c] = b;
            tr->edge_next[c] = tr->child_first[node];
            tr->child_first[node] = c;
        }
        node = c;
    }
    if (tr->term[node] < 0) tr->term[node] = idx;  // first token with this content wins
    return 0;
}
static void trie_free(tok_trie *tr) {
    free(tr->child_first); free(tr->edge_next); free(tr->edge_byte); free(tr->term);
}

int tok_normalize(const tok_tokenizer *t, const char *s, size_t n, sbuf *out, tm_error *err);

static int load_added(tok_tokenizer *t, const json *l, tm_error *err) {
    if (!l || l->type == JSON_NULL) return 0;
    if (l->type != JSON_ARRAY) return tm_fail(err, "added_tokens: not an array");
    t->added = calloc((size_t)l->n + 1, sizeof *t->added);
    if (!t->added) return oom(err, "added tokens");
    sbuf nb;
    sbuf_init(&nb);
    for (int i = 0; i < l->n; i++) {
        const json *o = &l->items[i];
        const json *c = json_get(o, "content");
        if (!c || c->type != JSON_STRING || !json_is_int(json_get(o, "id")))
            { sbuf_free(&nb); return tm_fail(err, "added_tokens[%d]: needs content and id", i); }
        tok_added *a = &t->added[t->nadded++];
        if (!(a->content = xstrndup(c->str, c->len))) { sbuf_free(&nb); return oom(err, "added tokens"); }
        a->len = c->len;
        a->id = (int32_t)json_get_int(o, "id", 0);
        a->special = json_get_bool(o, "special", 0);
        a->normalized = json_get_bool(o, "normalized", !a->special);
        a->lstrip = json_get_bool(o, "lstrip", 0);
        a->rstrip = json_get_bool(o, "rstrip", 0);
        a->single_word = json_get_bool(o, "single_word", 0);
        if (a->id < 0) { sbuf_free(&nb); return tm_fail(err, "added_tokens[%d]: negative id", i); }
        int rc;
        if (a->normalized && t->nnorms) {
            sbuf_clear(&nb);
            if (tok_normalize(t, a->content, a->len, &nb, err)) { sbuf_free(&nb); return -1; }
            rc = trie_add(&t->trie_norm, nb.data ? nb.data : "", nb.len, i);
        } else if (a->normalized)
            rc = trie_add(&t->trie_norm, a->content, a->len, i);
        else
            rc = trie_add(&t->trie_raw, a->content, a->len, i);
        if (rc) { sbuf_free(&nb); return oom(err, "added-token trie"); }
    }
    sbuf_free(&nb);
    return 0;
}

static const char *config_token(const json *cfg, const char *key) {
    const json *v = json_get(cfg, key);
    if (!v) return NULL;
    if (v->type == JSON_STRING) return v->str;
    if (v->type == JSON_OBJECT) return json_get_str(v, "content", NULL);
    return NULL;
}

// *dst = a copy of s (when s is non-NULL); -1 when out of memory.
static int copy_opt(char **dst, const char *s, size_t n) {
    if (!s) return 0;
    free(*dst);
    return (*dst = xstrndup(s, n)) ? 0 : -1;
}
static int copy_token(char **dst, const char *s) { return copy_opt(dst, s, s ? strlen(s) : 0); }

static int load_config(tok_tokenizer *t, const char *path, tm_error *err) {
    json_doc *d = json_parse_file(path, err);
    if (!d) return -1;
    const json *r = json_root(d);
    int bad = copy_token(&t->bos_token, config_token(r, "bos_token")) ||
              copy_token(&t->eos_token, config_token(r, "eos_token")) ||
              copy_token(&t->pad_token, config_token(r, "pad_token"));
    const json *ct = json_get(r, "chat_template");
    if (ct && ct->type == JSON_STRING) bad |= copy_opt(&t->chat_template, ct->str, ct->len);
    else if (ct && ct->type == JSON_ARRAY)  // [{name, template}], the "default" one
        for (int i = 0; i < ct->n; i++) {
            const char *name = json_get_str(&ct->items[i], "name", "");
            const json *tp = json_get(&ct->items[i], "template");
            if (!strcmp(name, "default") && tp && tp->type == JSON_STRING)
                bad |= copy_opt(&t->chat_template, tp->str, tp->len);
        }
    json_doc_free(d);
    return bad ? tm_fail(err, "%s: out of memory", path) : 0;
}

static int load_post(tok_tokenizer *t, const json *o, tm_error *err) {
    if (!o || o->type == JSON_NULL || is_type(o, "ByteLevel")) return 0;
    if (is_type(o, "Sequence")) {
        const json *l = json_get(o, "processors");
        for (int i = 0; l && i < l->n; i++)
            if (load_post(t, &l->items[i], err)) return -1;
        return 0;
    }
    if (!is_type(o, "TemplateProcessing"))
        return tm_fail(err, "post_processor type '%s' is not supported", json_get_str(o, "type", "?"));
    const json *single = json_get(o, "single"), *sp = json_get(o, "special_tokens");
    int seen_seq = 0;
    for (int i = 0; single && i < single->n; i++) {
        const json *it = &single->items[i];
        if (json_get(it, "Sequence")) { seen_seq = 1; continue; }
        const json *st = json_get(it, "SpecialToken");
        const char *id = st ? json_get_str(st, "id", NULL) : NULL;
        const json *e = id ? json_get(sp, id) : NULL, *ids = e ? json_get(e, "ids") : NULL;
        if (!ids || ids->type != JSON_ARRAY) return tm_fail(err, "TemplateProcessing: special token '%s' without ids", id ? id : "?");
        for (int k = 0; k < ids->n; k++)
            tok_ids_push(seen_seq ? &t->post_post : &t->post_pre, (int32_t)ids->items[k].num);
    }
    if (t->post_pre.failed || t->post_post.failed) return oom(err, "TemplateProcessing");
    return 0;
}

// One entry of model.merges: "a b" (older files) or ["a", "b"]. Returns -1 if neither.
static int merge_strings(const json *e, const char **a, size_t *al, const char **b, size_t *bl) {
    if (e->type == JSON_STRING) {
        const char *sp = memchr(e->str, ' ', e->len);
        if (!sp) return -1;
        *a = e->str; *al = (size_t)(sp - e->str); *b = sp + 1; *bl = e->len - *al - 1;
        return 0;
    }
    if (e->type == JSON_ARRAY && e->n == 2 && e->items[0].type == JSON_STRING && e->items[1].type == JSON_STRING) {
        *a = e->items[0].str; *al = e->items[0].len; *b = e->items[1].str; *bl = e->items[1].len;
        return 0;
    }
    return -1;
}

static int load_tokenizer_json(tok_tokenizer *t, const json *r, tm_error *err) {
    const json *m = json_get(r, "model");
    if (!m || m->type != JSON_OBJECT) return tm_fail(err, "no model");
    const char *mtype = json_get_str(m, "type", "BPE");
    if (strcmp(mtype, "BPE")) return tm_fail(err, "model type '%s' is not supported (only BPE)", mtype);
    const json *dropout = json_get(m, "dropout");
    if (dropout && dropout->type == JSON_NUMBER && dropout->num != 0)
        return tm_fail(err, "BPE dropout is not supported");

    if (load_norm(t, json_get(r, "normalizer"), err)) return tm_fail_prefix(err, "normalizer");
    if (load_pre(t, json_get(r, "pre_tokenizer"), err)) return tm_fail_prefix(err, "pre_tokenizer");
    if (load_dec(t, json_get(r, "decoder"), err)) return tm_fail_prefix(err, "decoder");
    if (load_post(t, json_get(r, "post_processor"), err)) return tm_fail_prefix(err, "post_processor");

    t->byte_fallback = json_get_bool(m, "byte_fallback", 0);
    t->fuse_unk = json_get_bool(m, "fuse_unk", 0);
    t->ignore_merges = json_get_bool(m, "ignore_merges", 0);
    const char *p = json_get_str(m, "continuing_subword_prefix", NULL);
    if (p && *p && !(t->cont_prefix = xstrndup(p, strlen(p)))) return oom(err, "model");
    p = json_get_str(m, "end_of_word_suffix", NULL);
    if (p && *p && !(t->end_suffix = xstrndup(p, strlen(p)))) return oom(err, "model");

    const json *v = json_get(m, "vocab");
    if (!v || v->type != JSON_OBJECT) return tm_fail(err, "model.vocab: not an object");
    size_t total = 0;
    for (int i = 0; i < v->n; i++) total += v->key_lens[i] + 1;
    if (tok_strmap_init(&t->vocab, (uint32_t)v->n + 1024, total + 4096)) return oom(err, "vocabulary");
    int maxid = -1;
    char *key = NULL;
    size_t keycap = 0;
    for (int i = 0; i < v->n; i++) {
        if (!json_is_int(&v->items[i])) { free(key); return tm_fail(err, "model.vocab['%s']: id is not an integer", v->keys[i]); }
        int64_t id = (int64_t)v->items[i].num;
        if (id < 0 || id > INT32_MAX) { free(key); return tm_fail(err, "model.vocab['%s']: bad id", v->keys[i]); }
        if (v->key_lens[i] + 1 > keycap) {
            keycap = v->key_lens[i] * 2 + 64;
            if (grow_to(&key, keycap, 1)) { free(key); return oom(err, "vocabulary"); }
        }
        size_t k = vocab_key(t, v->keys[i], v->key_lens[i], key);
        tok_strmap_put(&t->vocab, key, k, (int32_t)id);
        if (id > maxid) maxid = (int)id;
    }
    free(key);
    if (t->vocab.failed) return oom(err, "vocabulary");
    const json *added = json_get(r, "added_tokens");
    for (int i = 0; added && added->type == JSON_ARRAY && i < added->n; i++) {
        int64_t id = json_get_int(&added->items[i], "id", -1);
        if (id > maxid) maxid = (int)id;
    }
    t->vocab_size = maxid + 1;
    size_t nv = (size_t)t->vocab_size + 1;  // + 1: never a zero-size allocation
    t->id_tok = calloc(nv, sizeof *t->id_tok);
    t->id_tok_len = calloc(nv, sizeof *t->id_tok_len);
    t->id_special = calloc(nv, 1);
    t->id_added = calloc(nv, 1);
    t->id_blob = malloc(total + 1);
    if (!t->id_tok || !t->id_tok_len || !t->id_special || !t->id_added || !t->id_blob)
        return oom(err, "vocabulary");
    for (int i = 0, off = 0; i < v->n; i++) {
        int id = (int)v->items[i].num;
        t->id_tok[id] = memcpy(t->id_blob + off, v->keys[i], v->key_lens[i] + 1);
        t->id_tok_len[id] = (uint32_t)v->key_lens[i];
        off += (int)v->key_lens[i] + 1;
    }

    const char *unk = json_get_str(m, "unk_token", NULL);
    t->unk_id = unk ? tok_strmap_get(&t->vocab, unk, strlen(unk)) : -1;
    if (unk && t->unk_id < 0) return tm_fail(err, "unk_token '%s' is not in the vocabulary", unk);
    for (int b = 0; b < 256; b++) {
        char one = (char)b;
        t->byte_id[b] = t->byte_level ? tok_strmap_get(&t->vocab, &one, 1) : -1;
        char fb[8];
        snprintf(fb, sizeof fb, "<0x%02X>", b);
        t->fallback_id[b] = t->byte_level ? -1 : tok_strmap_get(&t->vocab, fb, 6);
    }

    const json *mg = json_get(m, "merges");
    if (!mg || mg->type != JSON_ARRAY) return tm_fail(err, "model.merges: not an array");
    if (tok_pairmap_init(&t->merges, (uint32_t)mg->n + 16)) return oom(err, "merges");
    // The merges are resolved to ids in blocks, with the block's 3 lookups per merge
    // (a, b, a+b) done together by tok_strmap_get_many so that their cache misses overlap.
    enum { MB = 256 };
    char *blk = NULL;                       // the block's keys, a's then b's bytes per merge
    size_t blkcap = 0;
    size_t off[MB], ka[MB], kb[MB], lens[3 * MB];
    const char *keys[3 * MB];
    int32_t ids[3 * MB];
    for (int i0 = 0; i0 < mg->n; i0 += MB) {
        int c = mg->n - i0 < MB ? mg->n - i0 : MB;
        size_t used = 0;
        for (int j = 0; j < c; j++) {
            const char *a, *b;
            size_t al, bl;
            if (merge_strings(&mg->items[i0 + j], &a, &al, &b, &bl)) {
                free(blk);
                if (mg->items[i0 + j].type == JSON_STRING)
                    return tm_fail(err, "merges[%d]: '%s' is not 'a b'", i0 + j, mg->items[i0 + j].str);
                return tm_fail(err, "merges[%d]: not a pair", i0 + j);
            }
            if (used + al + bl + 1 > blkcap) {
                blkcap = (used + al + bl + 1) * 2 + 4096;
                if (grow_to(&blk, blkcap, 1)) { free(blk); return oom(err, "merges"); }
            }
            off[j] = used;
            ka[j] = vocab_key(t, a, al, blk + used);
            kb[j] = vocab_key(t, b, bl, blk + used + ka[j]);
            used += ka[j] + kb[j];
        }
        for (int j = 0; j < c; j++) {
            keys[3 * j] = blk + off[j];
            lens[3 * j] = ka[j];
            keys[3 * j + 1] = blk + off[j] + ka[j];
            lens[3 * j + 1] = kb[j];
            keys[3 * j + 2] = blk + off[j];
            lens[3 * j + 2] = ka[j] + kb[j];
        }
        tok_strmap_get_many(&t->vocab, keys, lens, 3 * c, ids);
        for (int j = 0; j < c; j++) {
            int32_t ia = ids[3 * j], ib = ids[3 * j + 1], im = ids[3 * j + 2];
            if (ia < 0 || ib < 0 || im < 0) {
                const char *a = "", *b = "";
                size_t al = 0, bl = 0;
                merge_strings(&mg->items[i0 + j], &a, &al, &b, &bl);
                free(blk);
                return tm_fail(err, "merges[%d]: '%.*s' + '%.*s' uses a token that is not in the vocabulary", i0 + j,
                               (int)al, a, (int)bl, b);
            }
            tok_pairmap_put(&t->merges, ia, ib, (uint32_t)(i0 + j), im);
        }
    }
    free(blk);
    if (t->merges.failed) return oom(err, "merges");
    if (load_added(t, added, err)) return tm_fail_prefix(err, "added_tokens");
    for (int i = 0; i < t->nadded; i++) {
        tok_added *a = &t->added[i];
        t->id_tok[a->id] = a->content;
        t->id_tok_len[a->id] = (uint32_t)a->len;
        t->id_added[a->id] = 1;
        t->id_special[a->id] = (uint8_t)a->special;
    }
    return 0;
}

// *id = the token's id or -1 when absent; returns -1 only when out of memory.
static int token_id(const tok_tokenizer *t, const char *token, int32_t *id) {
    size_t n = strlen(token);
    for (int i = 0; i < t->nadded; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, token, n)) { *id = t->added[i].id; return 0; }
    char small[256], *key = n < sizeof small ? small : malloc(n + 1);
    if (!key) return -1;
    *id = lookup_token(t, token, n, key);
    if (key != small) free(key);
    return 0;
}

int tok_stop_ids(const tok_tokenizer *t, int model_eos, int vocab, int *out, int cap) {
    static const char *const turn_end[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>",
                                           "<|end_of_text|>", "<eos>", "</s>"};
    int cand[2 + sizeof turn_end / sizeof turn_end[0]], nc = 0, n = 0;
    cand[nc++] = tok_eos_id(t);
    cand[nc++] = model_eos;
    for (size_t i = 0; i < sizeof turn_end / sizeof turn_end[0]; i++) cand[nc++] = tok_token_id(t, turn_end[i]);
    for (int i = 0; i < nc && n < cap; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= out[j] == cand[i];
        if (cand[i] >= 0 && cand[i] < vocab && !dup) out[n++] = cand[i];
    }
    return n;
}

int32_t tok_token_id(const tok_tokenizer *t, const char *token) {
    int32_t id = -1;
    token_id(t, token, &id);  // out of memory (a token over 255 bytes) reads as absent
    return id;
}

// Parses chat_template once, here. A template that does not parse does not stop the
// tokenizer from loading (encoding does not need it): tok_chat_for reports the error.
static int parse_chat_template(tok_tokenizer *t, const char *name, tm_error *err) {
    if (!t->chat_template) return 0;
    tm_error e = {0};
    t->chat_jinja = jinja_parse(t->chat_template, strlen(t->chat_template), name, &e);
    if (!t->chat_jinja) {
        if (strstr(e.msg, "out of memory")) return tm_fail(err, "%s", e.msg);
        snprintf(t->chat_jinja_err, sizeof t->chat_jinja_err, "%s", e.msg);
    }
    return 0;
}

tok_tokenizer *tok_load_files(const char *path, const char *config_path, tm_error *err) {
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { tm_fail(err, "%s: out of memory", path); return NULL; }
    t->bos_id = t->eos_id = t->pad_id = t->unk_id = -1;
    json_doc *d = json_parse_file(path, err);
    if (!d) { tok_free(t); return NULL; }
    int rc = load_tokenizer_json(t, json_root(d), err);
    json_doc_free(d);
    if (rc) { tm_fail_prefix(err, "%s", path); tok_free(t); return NULL; }
    if (config_path && load_config(t, config_path, err)) { tok_free(t); return NULL; }
    if (parse_chat_template(t, "chat_template", err)) { tok_free(t); return NULL; }
    if ((t->bos_token && token_id(t, t->bos_token, &t->bos_id)) || (t->eos_token && token_id(t, t->eos_token, &t->eos_id)) ||
        (t->pad_token && token_id(t, t->pad_token, &t->pad_id))) {
        tm_fail(err, "%s: out of memory", path);
        tok_free(t);
        return NULL;
    }
    tok_strmap_init(&t->cache, 4096, 65536);  // the word cache is optional: a failed one stays empty
    if (!(t->md = pcre2_match_data_create(8, NULL))) { tm_fail(err, "%s: out of memory", path); tok_free(t); return NULL; }
    return t;
}

tok_tokenizer *tok_load(const char *dir, tm_error *err) {
    char p1[4096], p2[4096];
    io_join(p1, sizeof p1, dir, "tokenizer.json");
    io_join(p2, sizeof p2, dir, "tokenizer_config.json");
    if (!io_exists(p1)) { tm_fail(err, "%s: no tokenizer.json in this directory", dir); return NULL; }
    tok_tokenizer *t = tok_load_files(p1, io_exists(p2) ? p2 : NULL, err);
    // chat_template.jinja, when present, is the template (transformers saves it there since 4.43)
    char p3[4096];
    io_join(p3, sizeof p3, dir, "chat_template.jinja");
    if (t && io_exists(p3)) {
        size_t n;
        char *src = io_read_file(p3, &n, err);
        if (!src) { tok_free(t); return NULL; }
        free(t->chat_template);
        t->chat_template = src;
        jinja_free(t->chat_jinja);
    json_doc_free(t->chat_kwargs);
        t->chat_jinja = NULL;
        t->chat_jinja_err[0] = 0;
        if (parse_chat_template(t, "chat_template.jinja", err)) { tok_free(t); return NULL; }
    }
    return t;
}

void tok_free(tok_tokenizer *t) {
    if (!t) return;
    tok_strmap_free(&t->vocab);
    tok_pairmap_free(&t->merges);
    free(t->cont_prefix); free(t->end_suffix);
    free(t->id_blob);
    free(t->id_tok); free(t->id_tok_len); free(t->id_special); free(t->id_added);
    for (int i = 0; i < t->nadded; i++) free(t->added[i].content);
    free(t->added);
    trie_free(&t->trie_raw);
    trie_free(&t->trie_norm);
    for (int i = 0; i < t->nnorms; i++) { free(t->norms[i].pattern); free(t->norms[i].content); }
    free(t->norms);
    for (int i = 0; i < t->npres; i++) { if (t->pres[i].re) pcre2_code_free(t->pres[i].re); free(t->pres[i].replacement); }
    free(t->pres);
    for (int i = 0; i < t->ndecs; i++) { free(t->decs[i].pattern); free(t->decs[i].content); }
    free(t->decs);
    tok_ids_free(&t->post_pre);
    tok_ids_free(&t->post_post);
    free(t->bos_token); free(t->eos_token); free(t->pad_token); free(t->chat_template);
    jinja_free(t->chat_jinja);
    tok_strmap_free(&t->cache);
    tok_ids_free(&t->cache_ids);
    free(t->cache_off); free(t->cache_cnt);
    if (t->md) pcre2_match_data_free(t->md);
    free(t);
}

int tok_vocab_size(const tok_tokenizer *t) { return t->vocab_size; }
const char *tok_id_to_token(const tok_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->vocab_size ? t->id_tok[id] : NULL;
}
int tok_is_special(const tok_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->vocab_size && t->id_special[id];
}
int32_t tok_bos_id(const tok_tokenizer *t) { return t->bos_id; }
int32_t tok_eos_id(const tok_tokenizer *t) { return t->eos_id; }
int32_t tok_pad_id(const tok_tokenizer *t) { return t->pad_id; }
const char *tok_bos_token(const tok_tokenizer *t) { return t->bos_token; }
const char *tok_eos_token(const tok_tokenizer *t) { return t->eos_token; }
const char *tok_chat_template_source(const tok_tokenizer *t) { return t->chat_template; }
