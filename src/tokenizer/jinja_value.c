// tokenizer/jinja_value: the arena, runtime values, printing and tojson.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer/jinja_internal.h"

// ---- arena ----
struct jchunk { jchunk *next; size_t cap; };
#define JA_ALIGN 16
void *ja_alloc(jarena *a, size_t n) {
    n = (n + JA_ALIGN - 1) & ~(size_t)(JA_ALIGN - 1);
    if (!a->head || a->used + n > a->cap) {
        size_t cap = n > 32768 ? n : 32768;
        jchunk *c = malloc(sizeof(jchunk) + JA_ALIGN + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->cap = cap;
        a->total += cap;
        a->head = c;
        a->used = 0;
        a->cap = cap;
    }
    char *base = (char *)a->head + ((sizeof(jchunk) + JA_ALIGN - 1) & ~(size_t)(JA_ALIGN - 1));
    void *p = base + a->used;
    a->used += n;
    memset(p, 0, n);
    return p;
}
void ja_free(jarena *a) {
    for (jchunk *c = a->head, *n; c; c = n) { n = c->next; free(c); }
    memset(a, 0, sizeof *a);
}

void jfail(jctx *c, int line, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)  // one line, even for raise_exception('a\nb')
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (line > 0) tm_fail(c->err, "%s line %d: %s", c->t->name, line, msg);
    else tm_fail(c->err, "%s: %s", c->t->name, msg);
    longjmp(c->jb, 1);
}
void *jalloc(jctx *c, size_t n) {
    if (c->a.total > JINJA_MAX_ARENA) jfail(c, 0, "the template uses more than %zu MB", JINJA_MAX_ARENA >> 20);
    void *p = ja_alloc(&c->a, n);
    if (!p) jfail(c, 0, "out of memory");
    return p;
}

// ---- UTF-8 ----
uint32_t ju_decode(const char *p, size_t n, int *adv) {
    const unsigned char *s = (const unsigned char *)p;
    uint32_t c = s[0];
    int k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if ((size_t)k > n || (k > 1 && c < 0xC0)) { *adv = 1; return c; }
    if (k == 2) c &= 0x1F; else if (k == 3) c &= 0x0F; else if (k == 4) c &= 0x07;
    for (int i = 1; i < k; i++) c = c << 6 | (s[i] & 0x3F);
    *adv = k;
    return c;
}
size_t ju_len(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)p[i] & 0xC0) != 0x80;
    return k;
}
size_t ju_offset(const char *p, size_t n, size_t cp) {
    size_t i = 0, k = 0;
    for (; i < n; i++) {
        if (((unsigned char)p[i] & 0xC0) != 0x80) { if (k == cp) return i; k++; }
    }
    return n;
}
int ju_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

// ---- values ----
jv jv_str(jctx *c, const char *p, size_t n) {
    char *s = jalloc(c, n + 1);
    if (n) memcpy(s, p, n);
    return jv_cstr(s, n);
}
jv jv_list(jctx *c, int cap) {
    jv v = {JV_LIST, {0}};
    v.l = jalloc(c, sizeof *v.l);
    if (cap > 0) { v.l->v = jalloc(c, (size_t)cap * sizeof(jv)); v.l->cap = cap; }
    return v;
}
jv jv_dict(jctx *c, int cap) {
    jv v = {JV_DICT, {0}};
    v.d = jalloc(c, sizeof *v.d);
    if (cap > 0) {
        v.d->k = jalloc(c, (size_t)cap * sizeof(char *));
        v.d->kl = jalloc(c, (size_t)cap * sizeof(size_t));
        v.d->v = jalloc(c, (size_t)cap * sizeof(jv));
        v.d->cap = cap;
    }
    return v;
}
void jl_push(jctx *c, jlist *l, jv v) {
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 4;
        jv *nv = jalloc(c, (size_t)nc * sizeof *nv);
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
}
jv *jd_get(const jdict *d, const char *k, size_t kl) {
    for (int i = 0; i < d->n; i++)
        if (d->kl[i] == kl && !memcmp(d->k[i], k, kl)) return &d->v[i];
    return NULL;
}
void jd_set(jctx *c, jdict *d, const char *k, size_t kl, jv v) {
    jv *old = jd_get(d, k, kl);
    if (old) { *old = v; return; }
    if (d->n == d->cap) {
        int nc = d->cap ? d->cap * 2 : 4;
        const char **nk = jalloc(c, (size_t)nc * sizeof *nk);
        size_t *nkl = jalloc(c, (size_t)nc * sizeof *nkl);
        jv *nv = jalloc(c, (size_t)nc * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, (size_t)d->n * sizeof *nk);
            memcpy(nkl, d->kl, (size_t)d->n * sizeof *nkl);
            memcpy(nv, d->v, (size_t)d->n * sizeof *nv);
        }
        d->k = nk; d->kl = nkl; d->v = nv; d->cap = nc;
    }
    d->k[d->n] = k;
    d->kl[d->n] = kl;
    d->v[d->n++] = v;
}

jv jv_from_json(jctx *c, const json *j) {
    if (!j) return jv_undef();
    switch (j->type) {
    case JSON_NULL: return jv_none();
    case JSON_BOOL: return jv_bool(j->boolean);
    case JSON_NUMBER:
        if (json_is_int(j) && !strpbrk(j->str, ".eE")) return jv_int((int64_t)j->num);
        return jv_float(j->num);
    case JSON_STRING: return jv_cstr(j->str, j->len);  // the JSON document outlives the render
    case JSON_ARRAY: {
        jv v = jv_list(c, j->n);
        for (int i = 0; i < j->n; i++) v.l->v[i] = jv_from_json(c, &j->items[i]);
        v.l->n = j->n;
        return v;
    }
    case JSON_OBJECT: {
        jv v = jv_dict(c, j->n);
        for (int i = 0; i < j->n; i++) jd_set(c, v.d, j->keys[i], j->key_lens[i], jv_from_json(c, &j->items[i]));
        return v;
    }
    }
    return jv_undef();
}

int jv_truthy(jv v) {
    switch (v.t) {
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0;
    case JV_STR: return v.s.n > 0;
    case JV_LIST: return v.l->n > 0;
    case JV_DICT: return v.d->n > 0;
    case JV_NS: case JV_MACRO: case JV_FUNC: return 1;
    default: return 0;
    }
}

static int equal_at(jv a, jv b, int depth);
int jv_equal(jv a, jv b) { return equal_at(a, b, 0); }
static int equal_at(jv a, jv b, int depth) {
    if (depth > 200) return 0;  // lists nested this deep are not compared
    int an = a.t == JV_INT || a.t == JV_FLOAT || a.t == JV_BOOL, bn = b.t == JV_INT || b.t == JV_FLOAT || b.t == JV_BOOL;
    if (an && bn) {
        if (a.t == JV_INT && b.t == JV_INT) return a.i == b.i;
        double x = a.t == JV_INT ? (double)a.i : a.t == JV_BOOL ? a.b : a.f;
        double y = b.t == JV_INT ? (double)b.i : b.t == JV_BOOL ? b.b : b.f;
        return x == y;
    }
    if ((a.t == JV_NONE || a.t == JV_UNDEF) && (b.t == JV_NONE || b.t == JV_UNDEF)) return a.t == b.t;
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JV_STR: return a.s.n == b.s.n && !memcmp(a.s.p, b.s.p, a.s.n);
    case JV_LIST:
        if (a.l->n != b.l->n) return 0;
        for (int i = 0; i < a.l->n; i++)
            if (!equal_at(a.l->v[i], b.l->v[i], depth + 1)) return 0;
        return 1;
    case JV_DICT:
        if (a.d->n != b.d->n) return 0;
        for (int i = 0; i < a.d->n; i++) {
            jv *o = jd_get(b.d, a.d->k[i], a.d->kl[i]);
            if (!o || !equal_at(a.d->v[i], *o, depth + 1)) return 0;
        }
        return 1;
    case JV_NS: return a.d == b.d;
    case JV_MACRO: return a.m == b.m;
    case JV_FUNC: return a.fn == b.fn;
    default: return 0;
    }
}

const char *jv_type_name(jv v) {
    static const char *n[] = {"undefined", "none", "boolean", "integer", "float", "string", "list", "dict", "namespace", "macro", "function"};
    return n[v.t];
}

// Floats print as Python's repr: 1.0, 0.5, 1e+20.
static void print_float(sbuf *b, double f) {
    if (isnan(f)) { sbuf_puts(b, "nan"); return; }
    if (isinf(f)) { sbuf_puts(b, f < 0 ? "-inf" : "inf"); return; }
    char s[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(s, sizeof s, "%.*g", p, f);
        if (strtod(s, NULL) == f) break;
    }
    sbuf_puts(b, s);
    if (!strpbrk(s, ".eEn")) sbuf_puts(b, ".0");
}

void jv_print(jctx *c, sbuf *b, jv v) {
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: sbuf_puts(b, "None"); return;
    case JV_BOOL: sbuf_puts(b, v.b ? "True" : "False"); return;
    case JV_INT: sbuf_printf(b, "%lld", (long long)v.i); return;
    case JV_FLOAT: print_float(b, v.f); return;
    case JV_STR: sbuf_put(b, v.s.p, v.s.n); return;
    case JV_LIST: case JV_DICT: case JV_NS:
        // @huggingface/jinja prints containers as JSON; Python would print their repr.
        jv_tojson(c, b, v, -1, 0, NULL, NULL, 0);
        return;
    case JV_MACRO: case JV_FUNC: sbuf_puts(b, "<function>"); return;
    }
}

jv jv_from_sbuf(jctx *c, sbuf *b) {
    if (b->failed) { sbuf_free(b); jfail(c, 0, "out of memory"); }
    if (b->len > JINJA_MAX_STR) { sbuf_free(b); jfail(c, 0, "a string longer than %zu bytes", JINJA_MAX_STR); }
    jv v = jv_str(c, b->data ? b->data : "", b->len);
    sbuf_free(b);
    return v;
}

jv jv_to_str(jctx *c, jv v) {
    if (v.t == JV_STR) return v;
    sbuf b;
    sbuf_init(&b);
    jv_print(c, &b, v);
    return jv_from_sbuf(c, &b);
}

// A JSON string as JavaScript's JSON.stringify writes it: non-ASCII kept
// (ensure_ascii=False, as transformers' tojson), control characters as \uXXXX.
static void json_str(sbuf *b, const char *s, size_t n) {
    sbuf_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *e = NULL;
        char u[8];
        if (ch == '"') e = "\\\"";
        else if (ch == '\\') e = "\\\\";
        else if (ch == '\n') e = "\\n";
        else if (ch == '\r') e = "\\r";
        else if (ch == '\t') e = "\\t";
        else if (ch == '\b') e = "\\b";
        else if (ch == '\f') e = "\\f";
        else if (ch < 0x20) { snprintf(u, sizeof u, "\\u%04x", ch); e = u; }
        if (e) {
            sbuf_put(b, s + i - run, run);
            run = 0;
            sbuf_puts(b, e);
        } else
            run++;
    }
    sbuf_put(b, s + n - run, run);
    sbuf_put(b, "\"", 1);
}

static void indent_to(sbuf *b, int indent, int depth) {
    sbuf_put(b, "\n", 1);
    for (int i = 0; i < indent * depth; i++) sbuf_put(b, " ", 1);
}

void jv_tojson(jctx *c, sbuf *b, jv v, int indent, int depth, const char *item_sep, const char *key_sep, int sort_keys) {
    if (!item_sep) item_sep = indent > 0 ? "," : ", ";
    if (!key_sep) key_sep = ": ";
    if (depth > 200) jfail(c, 0, "tojson: nesting too deep");
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: sbuf_puts(b, "null"); return;
    case JV_BOOL: sbuf_puts(b, v.b ? "true" : "false"); return;
    case JV_INT: sbuf_printf(b, "%lld", (long long)v.i); return;
    case JV_FLOAT:
        if (!isfinite(v.f)) { sbuf_puts(b, "null"); return; }  // JSON.stringify
        if (v.f == floor(v.f) && fabs(v.f) < 1e21) { sbuf_printf(b, "%.0f", v.f); return; }
        {
            char s[40];
            for (int p = 1; p <= 17; p++) {
                snprintf(s, sizeof s, "%.*g", p, v.f);
                if (strtod(s, NULL) == v.f) break;
            }
            char *e = strchr(s, 'e');  // JavaScript writes 1e-7 where C writes 1e-07
            if (e) {
                char *d = e + 2;
                while (*d == '0' && d[1]) memmove(d, d + 1, strlen(d));
            }
            sbuf_puts(b, s);
        }
        return;
    case JV_STR: json_str(b, v.s.p, v.s.n); return;
    case JV_LIST:
        sbuf_put(b, "[", 1);
        for (int i = 0; i < v.l->n; i++) {
            if (i) sbuf_puts(b, item_sep);
            if (indent > 0) indent_to(b, indent, depth + 1);
            jv_tojson(c, b, v.l->v[i], indent, depth + 1, item_sep, key_sep, sort_keys);
        }
        if (indent > 0 && v.l->n) indent_to(b, indent, depth);
        sbuf_put(b, "]", 1);
        return;
    case JV_DICT: case JV_NS: {
        int n = v.d->n, *ord = jalloc(c, (size_t)(n + 1) * sizeof *ord);
        for (int i = 0; i < n; i++) ord[i] = i;
        if (sort_keys)  // insertion sort: objects are small
            for (int i = 1; i < n; i++)
                for (int j = i; j > 0; j--) {
                    const char *x = v.d->k[ord[j - 1]], *y = v.d->k[ord[j]];
                    size_t xl = v.d->kl[ord[j - 1]], yl = v.d->kl[ord[j]];
                    int r = memcmp(x, y, xl < yl ? xl : yl);
                    if (r > 0 || (r == 0 && xl > yl)) { int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t; }
                    else break;
                }
        sbuf_put(b, "{", 1);
        for (int k = 0; k < n; k++) {
            int i = ord[k];
            if (k) sbuf_puts(b, item_sep);
            if (indent > 0) indent_to(b, indent, depth + 1);
            json_str(b, v.d->k[i], v.d->kl[i]);
            sbuf_puts(b, key_sep);
            jv_tojson(c, b, v.d->v[i], indent, depth + 1, item_sep, key_sep, sort_keys);
        }
        if (indent > 0 && n) indent_to(b, indent, depth);
        sbuf_put(b, "}", 1);
        return;
    }
    default: jfail(c, 0, "tojson: cannot serialize a %s", jv_type_name(v));
    }
}
