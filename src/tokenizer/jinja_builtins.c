// tokenizer/jinja_builtins: the filters, tests, methods and global functions chat
// templates use. Unknown ones are errors naming the template line.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tokenizer/jinja_internal.h"

#define IS(s) (!strcmp(name, s))

static jv arg(const jv *args, int nargs, int i, const char **kw, const jv *kwv, int nkw, const char *key, jv def) {
    if (i >= 0 && i < nargs) return args[i];
    for (int k = 0; k < nkw; k++)
        if (!strcmp(kw[k], key)) return kwv[k];
    return def;
}
#define ARG(i, key, def) arg(args, nargs, i, kw, kwv, nkw, key, def)

static jv need_str(jctx *c, const jnode *at, jv v, const char *what) {
    if (v.t != JV_STR) jfail(c, at ? at->line : 0, "%s: expected a string, got %s", what, jv_type_name(v));
    return v;
}

// ---- string helpers ----
static int in_chars(uint32_t ch, jv chars) {
    for (size_t i = 0; i < chars.s.n;) {
        int adv;
        if (ju_decode(chars.s.p + i, chars.s.n - i, &adv) == ch) return 1;
        i += (size_t)adv;
    }
    return 0;
}
// strip: which 1 left, 2 right, 3 both; chars none: whitespace.
static jv strip(jv s, int which, jv chars) {
    const char *p = s.s.p;
    size_t a = 0, b = s.s.n;
    int ws = chars.t != JV_STR;
    if (which & 1)
        while (a < b) {
            int adv;
            uint32_t ch = ju_decode(p + a, b - a, &adv);
            if (ws ? !ju_space(ch) : !in_chars(ch, chars)) break;
            a += (size_t)adv;
        }
    if (which & 2)
        while (b > a) {
            size_t q = b - 1;
            while (q > a && ((unsigned char)p[q] & 0xC0) == 0x80) q--;
            int adv;
            uint32_t ch = ju_decode(p + q, b - q, &adv);
            if (ws ? !ju_space(ch) : !in_chars(ch, chars)) break;
            b = q;
        }
    return jv_cstr(p + a, b - a);
}

static jv str_replace(jctx *c, jv s, jv old, jv new_, int64_t count) {
    sbuf b;
    sbuf_init(&b);
    size_t i = 0;
    if (old.s.n == 0) {  // Python inserts new between every character
        for (size_t k = 0; k <= s.s.n; count--) {
            if (count != 0) sbuf_put(&b, new_.s.p, new_.s.n);
            if (k == s.s.n) break;
            int adv;
            ju_decode(s.s.p + k, s.s.n - k, &adv);
            sbuf_put(&b, s.s.p + k, (size_t)adv);
            k += (size_t)adv;
        }
        return jv_from_sbuf(c, &b);
    }
    while (count != 0) {
        const char *m = i <= s.s.n ? memmem(s.s.p + i, s.s.n - i, old.s.p, old.s.n) : NULL;
        if (!m) break;
        sbuf_put(&b, s.s.p + i, (size_t)(m - s.s.p) - i);
        sbuf_put(&b, new_.s.p, new_.s.n);
        i = (size_t)(m - s.s.p) + old.s.n;
        count--;
    }
    sbuf_put(&b, s.s.p + i, s.s.n - i);
    return jv_from_sbuf(c, &b);
}

static jv str_case(jctx *c, jv s, int mode) {  // 0 lower, 1 upper, 2 title, 3 capitalize (ASCII letters)
    char *o = jalloc(c, s.s.n + 1);
    int start = 1;
    for (size_t i = 0; i < s.s.n; i++) {
        char ch = s.s.p[i];
        int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        int up = mode == 1 || (mode == 2 && start && alpha) || (mode == 3 && i == 0);
        if (up && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        else if (!up && mode != 2 && mode != 3 && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        else if (!up && (mode == 2 || mode == 3) && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        if (mode == 1 && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        o[i] = ch;
        start = !(alpha || (ch >= '0' && ch <= '9') || ch == '_' || ((unsigned char)ch & 0x80));
    }
    return jv_cstr(o, s.s.n);
}

static jv split(jctx *c, jv s, jv sep, int64_t maxsplit) {
    jv r = jv_list(c, 0);
    if (sep.t != JV_STR) {  // whitespace runs
        size_t i = 0;
        for (;;) {
            while (i < s.s.n) { int adv; if (!ju_space(ju_decode(s.s.p + i, s.s.n - i, &adv))) break; i += (size_t)adv; }
            if (i >= s.s.n) break;
            if (maxsplit >= 0 && r.l->n == maxsplit) { jl_push(c, r.l, strip(jv_cstr(s.s.p + i, s.s.n - i), 2, jv_none())); break; }
            size_t j = i;
            while (j < s.s.n) { int adv; if (ju_space(ju_decode(s.s.p + j, s.s.n - j, &adv))) break; j += (size_t)adv; }
            jl_push(c, r.l, jv_cstr(s.s.p + i, j - i));
            i = j;
        }
        return r;
    }
    if (!sep.s.n) jfail(c, 0, "split: empty separator");
    size_t i = 0;
    for (;;) {
        const char *m = (maxsplit < 0 || r.l->n < maxsplit) ? memmem(s.s.p + i, s.s.n - i, sep.s.p, sep.s.n) : NULL;
        if (!m) { jl_push(c, r.l, jv_cstr(s.s.p + i, s.s.n - i)); return r; }
        jl_push(c, r.l, jv_cstr(s.s.p + i, (size_t)(m - s.s.p) - i));
        i = (size_t)(m - s.s.p) + sep.s.n;
    }
}

static int starts(jv s, jv p, int end) {
    if (p.s.n > s.s.n) return 0;
    return !memcmp(end ? s.s.p + s.s.n - p.s.n : s.s.p, p.s.p, p.s.n);
}
static int starts_any(jctx *c, const jnode *at, jv s, jv p, int end) {
    if (p.t == JV_STR) return starts(s, p, end);
    if (p.t == JV_LIST) {
        for (int i = 0; i < p.l->n; i++)
            if (starts(s, need_str(c, at, p.l->v[i], "startswith"), end)) return 1;
        return 0;
    }
    jfail(c, at->line, "%s needs a string or a tuple of strings", end ? "endswith" : "startswith");
}

// str.format with {} / {0} / {name} fields
static jv str_format(jctx *c, const jnode *at, jv s, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw) {
    sbuf b;
    sbuf_init(&b);
    int auto_i = 0;
    for (size_t i = 0; i < s.s.n; i++) {
        char ch = s.s.p[i];
        if ((ch == '{' || ch == '}') && i + 1 < s.s.n && s.s.p[i + 1] == ch) { sbuf_put(&b, &ch, 1); i++; continue; }
        if (ch != '{') { sbuf_put(&b, &ch, 1); continue; }
        size_t j = i + 1;
        while (j < s.s.n && s.s.p[j] != '}') j++;
        if (j >= s.s.n) { sbuf_free(&b); jfail(c, at->line, "format: unmatched {"); }
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(j - i - 1), s.s.p + i + 1);
        jv v;
        if (!key[0]) v = auto_i < nargs ? args[auto_i++] : jv_undef();
        else if (key[0] >= '0' && key[0] <= '9') { int k = atoi(key); v = k < nargs ? args[k] : jv_undef(); }
        else v = arg(args, 0, -1, kw, kwv, nkw, key, jv_undef());
        jv_print(c, &b, v);
        i = j;
    }
    return jv_from_sbuf(c, &b);
}

static jv join(jctx *c, const jnode *at, jv list, jv sep, jv attr) {
    if (list.t != JV_LIST) jfail(c, at->line, "join needs a list, got %s", jv_type_name(list));
    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < list.l->n; i++) {
        if (i && sep.t == JV_STR) sbuf_put(&b, sep.s.p, sep.s.n);
        jv v = list.l->v[i];
        if (attr.t == JV_STR && (v.t == JV_DICT || v.t == JV_NS)) { jv *a = jd_get(v.d, attr.s.p, attr.s.n); v = a ? *a : jv_undef(); }
        jv_print(c, &b, v);
    }
    return jv_from_sbuf(c, &b);
}

// ---- tests ----
int jb_test(jctx *c, const jnode *at, const char *name, jv x, const jv *args, int nargs) {
    jv a = nargs ? args[0] : jv_undef();
    if (IS("defined")) return x.t != JV_UNDEF;
    if (IS("undefined")) return x.t == JV_UNDEF;
    if (IS("none")) return x.t == JV_NONE;
    if (IS("string")) return x.t == JV_STR;
    if (IS("number")) return x.t == JV_INT || x.t == JV_FLOAT;
    if (IS("integer")) return x.t == JV_INT;
    if (IS("float")) return x.t == JV_FLOAT;
    if (IS("boolean")) return x.t == JV_BOOL;
    if (IS("true")) return x.t == JV_BOOL && x.b;
    if (IS("false")) return x.t == JV_BOOL && !x.b;
    if (IS("mapping")) return x.t == JV_DICT;
    if (IS("iterable")) return x.t == JV_LIST || x.t == JV_STR || x.t == JV_DICT;
    if (IS("sequence")) return x.t == JV_LIST || x.t == JV_STR || x.t == JV_DICT;
    if (IS("callable")) return x.t == JV_MACRO || x.t == JV_FUNC;
    if (IS("odd") || IS("even")) {
        if (x.t != JV_INT) jfail(c, at->line, "test %s needs an integer, got %s", name, jv_type_name(x));
        return (x.i % 2 != 0) == IS("odd");
    }
    if (IS("divisibleby")) return x.t == JV_INT && a.t == JV_INT && a.i && x.i % a.i == 0;
    if (IS("eq") || IS("equalto") || IS("==") || IS("sameas")) return jv_equal(x, a);
    if (IS("ne")) return !jv_equal(x, a);
    if (IS("lower") || IS("upper")) {
        if (x.t != JV_STR) return 0;
        for (size_t i = 0; i < x.s.n; i++)
            if (IS("lower") ? (x.s.p[i] >= 'A' && x.s.p[i] <= 'Z') : (x.s.p[i] >= 'a' && x.s.p[i] <= 'z')) return 0;
        return 1;
    }
    if (IS("in")) {
        if (a.t == JV_LIST) { for (int i = 0; i < a.l->n; i++) if (jv_equal(x, a.l->v[i])) return 1; return 0; }
        if (a.t == JV_STR && x.t == JV_STR) return x.s.n == 0 || memmem(a.s.p, a.s.n, x.s.p, x.s.n) != NULL;
        if (a.t == JV_DICT && x.t == JV_STR) return jd_get(a.d, x.s.p, x.s.n) != NULL;
        return 0;
    }
    jfail(c, at ? at->line : 0, "unknown test '%s'", name);
}

static jv attr_of(jv v, jv attr) {
    if (attr.t != JV_STR) return v;
    const char *p = attr.s.p, *e = p + attr.s.n;
    while (p < e) {  // dotted paths: "function.name"
        const char *d = memchr(p, '.', (size_t)(e - p));
        size_t n = d ? (size_t)(d - p) : (size_t)(e - p);
        if (v.t == JV_DICT || v.t == JV_NS) { jv *x = jd_get(v.d, p, n); v = x ? *x : jv_undef(); }
        else if (v.t == JV_LIST && n && p[0] >= '0' && p[0] <= '9') { int i = atoi(p); v = i < v.l->n ? v.l->v[i] : jv_undef(); }
        else return jv_undef();
        p += n + (d != NULL);
    }
    return v;
}

static int cmp_sort(jctx *c, const jnode *at, jv a, jv b, int cs) {
    if ((a.t == JV_INT || a.t == JV_FLOAT || a.t == JV_BOOL) && (b.t == JV_INT || b.t == JV_FLOAT || b.t == JV_BOOL)) {
        double x = a.t == JV_INT ? (double)a.i : a.t == JV_BOOL ? a.b : a.f, y = b.t == JV_INT ? (double)b.i : b.t == JV_BOOL ? b.b : b.f;
        return (x > y) - (x < y);
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        if (!cs) { a = str_case(c, a, 0); b = str_case(c, b, 0); }
        int r = memcmp(a.s.p, b.s.p, a.s.n < b.s.n ? a.s.n : b.s.n);
        return r ? (r > 0) - (r < 0) : (a.s.n > b.s.n) - (a.s.n < b.s.n);
    }
    jfail(c, at->line, "cannot sort %s with %s", jv_type_name(a), jv_type_name(b));
}
static void sort_list(jctx *c, const jnode *at, jv *v, int n, jv attr, int idx, int rev, int cs) {
    for (int i = 1; i < n; i++)  // stable insertion sort: lists in templates are short
        for (int j = i; j > 0; j--) {
            jv a = v[j - 1], b = v[j];
            jv ka = idx >= 0 ? a.l->v[idx] : attr_of(a, attr), kb = idx >= 0 ? b.l->v[idx] : attr_of(b, attr);
            int r = cmp_sort(c, at, ka, kb, cs);
            if (rev ? r < 0 : r > 0) { v[j - 1] = b; v[j] = a; }
            else break;
        }
}

// ---- filters ----
jv jb_filter(jctx *c, const jnode *at, const char *name, jv x, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw) {
    int line = at ? at->line : 0;
    if (IS("default") || IS("d")) {
        jv def = ARG(0, "default_value", jv_cstr("", 0));
        int boolean = jv_truthy(ARG(1, "boolean", jv_bool(0)));
        return (x.t == JV_UNDEF || (boolean && !jv_truthy(x))) ? def : x;
    }
    if (IS("safe") || IS("escape") || IS("e") || IS("forceescape")) {
        if (IS("safe")) return x;
        jv s = jv_to_str(c, x);  // HTML escaping, as jinja2's escape
        sbuf b;
        sbuf_init(&b);
        for (size_t i = 0; i < s.s.n; i++) {
            const char *e = NULL;
            switch (s.s.p[i]) {
            case '&': e = "&amp;"; break;
            case '<': e = "&lt;"; break;
            case '>': e = "&gt;"; break;
            case '"': e = "&#34;"; break;
            case '\'': e = "&#39;"; break;
            }
            if (e) sbuf_puts(&b, e); else sbuf_put(&b, &s.s.p[i], 1);
        }
        return jv_from_sbuf(c, &b);
    }
    if (IS("tojson")) {
        jv ind = ARG(0, "indent", jv_none());
        jv sep = ARG(-1, "separators", jv_none());
        const char *is = NULL, *ks = NULL;
        if (sep.t == JV_LIST) {
            if (sep.l->n != 2 || sep.l->v[0].t != JV_STR || sep.l->v[1].t != JV_STR) jfail(c, line, "tojson: separators must be two strings");
            is = jv_str(c, sep.l->v[0].s.p, sep.l->v[0].s.n).s.p;
            ks = jv_str(c, sep.l->v[1].s.p, sep.l->v[1].s.n).s.p;
        }
        sbuf b;
        sbuf_init(&b);
        jv_tojson(c, &b, x, ind.t == JV_INT ? (int)ind.i : -1, 0, is, ks, jv_truthy(ARG(-1, "sort_keys", jv_bool(0))));
        jv r = jv_from_sbuf(c, &b);
        if (jv_truthy(ARG(-1, "ensure_ascii", jv_bool(0)))) {
            sbuf a;
            sbuf_init(&a);
            for (size_t i = 0; i < r.s.n;) {
                int adv;
                uint32_t ch = ju_decode(r.s.p + i, r.s.n - i, &adv);
                if (ch < 0x7f) sbuf_put(&a, r.s.p + i, 1);
                else if (ch < 0x10000) sbuf_printf(&a, "\\u%04x", ch);
                else sbuf_printf(&a, "\\u%04x\\u%04x", 0xD800 + ((ch - 0x10000) >> 10), 0xDC00 + ((ch - 0x10000) & 0x3FF));
                i += (size_t)adv;
            }
            r = jv_from_sbuf(c, &a);
        }
        return r;
    }
    if (IS("string")) return jv_to_str(c, x);
    if (IS("length") || IS("count")) {
        if (x.t == JV_STR) return jv_int((int64_t)ju_len(x.s.p, x.s.n));
        if (x.t == JV_LIST) return jv_int(x.l->n);
        if (x.t == JV_DICT || x.t == JV_NS) return jv_int(x.d->n);
        if (x.t == JV_UNDEF) return jv_int(0);
        jfail(c, line, "length of a %s", jv_type_name(x));
    }
    if (IS("list")) {
        if (x.t == JV_LIST) return x;
        if (x.t == JV_DICT) { jv r = jv_list(c, 0); for (int i = 0; i < x.d->n; i++) jl_push(c, r.l, jv_cstr(x.d->k[i], x.d->kl[i])); return r; }
        if (x.t == JV_STR) {
            jv r = jv_list(c, 0);
            for (size_t i = 0; i < x.s.n;) { int adv; ju_decode(x.s.p + i, x.s.n - i, &adv); jl_push(c, r.l, jv_cstr(x.s.p + i, (size_t)adv)); i += (size_t)adv; }
            return r;
        }
        jfail(c, line, "list of a %s", jv_type_name(x));
    }
    if (IS("first") || IS("last")) {
        if (x.t == JV_LIST) return x.l->n ? x.l->v[IS("first") ? 0 : x.l->n - 1] : jv_undef();
        if (x.t == JV_STR) {
            if (!x.s.n) return jv_undef();
            size_t n = ju_len(x.s.p, x.s.n), k = IS("first") ? 0 : n - 1;
            size_t a = ju_offset(x.s.p, x.s.n, k), b = ju_offset(x.s.p, x.s.n, k + 1);
            return jv_cstr(x.s.p + a, b - a);
        }
        jfail(c, line, "%s of a %s", name, jv_type_name(x));
    }
    if (IS("items")) {
        if (x.t == JV_UNDEF) return jv_list(c, 0);
        if (x.t != JV_DICT && x.t != JV_NS) jfail(c, line, "items of a %s", jv_type_name(x));
        jv r = jv_list(c, x.d->n);
        for (int i = 0; i < x.d->n; i++) {
            jv p = jv_list(c, 2);
            p.l->v[0] = jv_cstr(x.d->k[i], x.d->kl[i]);
            p.l->v[1] = x.d->v[i];
            p.l->n = 2;
            r.l->v[i] = p;
        }
        r.l->n = x.d->n;
        return r;
    }
    if (IS("dictsort")) {
        jv r = jb_filter(c, at, "items", x, NULL, 0, NULL, NULL, 0);
        int by_value = 0;
        jv by = ARG(1, "by", jv_none());
        if (by.t == JV_STR && by.s.n == 5 && !memcmp(by.s.p, "value", 5)) by_value = 1;
        sort_list(c, at, r.l->v, r.l->n, jv_none(), by_value, jv_truthy(ARG(2, "reverse", jv_bool(0))), jv_truthy(ARG(0, "case_sensitive", jv_bool(0))));
        return r;
    }
    if (IS("sort")) {
        if (x.t != JV_LIST) jfail(c, line, "sort of a %s", jv_type_name(x));
        jv r = jv_list(c, x.l->n);
        memcpy(r.l->v, x.l->v, (size_t)x.l->n * sizeof(jv));
        r.l->n = x.l->n;
        sort_list(c, at, r.l->v, r.l->n, ARG(2, "attribute", jv_none()), -1, jv_truthy(ARG(0, "reverse", jv_bool(0))), jv_truthy(ARG(1, "case_sensitive", jv_bool(0))));
        return r;
    }
    if (IS("reverse")) {
        if (x.t == JV_STR) {
            sbuf b;
            sbuf_init(&b);
            for (size_t e = x.s.n; e > 0;) { size_t q = e - 1; while (q > 0 && ((unsigned char)x.s.p[q] & 0xC0) == 0x80) q--; sbuf_put(&b, x.s.p + q, e - q); e = q; }
            return jv_from_sbuf(c, &b);
        }
        if (x.t != JV_LIST) jfail(c, line, "reverse of a %s", jv_type_name(x));
        jv r = jv_list(c, x.l->n);
        for (int i = 0; i < x.l->n; i++) r.l->v[i] = x.l->v[x.l->n - 1 - i];
        r.l->n = x.l->n;
        return r;
    }
    if (IS("unique")) {
        if (x.t != JV_LIST) jfail(c, line, "unique of a %s", jv_type_name(x));
        jv r = jv_list(c, 0);
        for (int i = 0; i < x.l->n; i++) {
            int seen = 0;
            for (int j = 0; j < r.l->n && !seen; j++) seen = jv_equal(r.l->v[j], x.l->v[i]);
            if (!seen) jl_push(c, r.l, x.l->v[i]);
        }
        return r;
    }
    if (IS("join")) return join(c, at, x, ARG(0, "d", jv_cstr("", 0)), ARG(1, "attribute", jv_none()));
    if (IS("selectattr") || IS("rejectattr") || IS("select") || IS("reject")) {
        if (x.t == JV_UNDEF) return jv_list(c, 0);
        if (x.t != JV_LIST) jfail(c, line, "%s of a %s", name, jv_type_name(x));
        int attr = name[6] == 'a', keep = name[0] == 's';
        int off = attr ? 1 : 0;
        jv r = jv_list(c, 0);
        for (int i = 0; i < x.l->n; i++) {
            jv v = attr ? attr_of(x.l->v[i], nargs ? args[0] : jv_none()) : x.l->v[i];
            int t;
            if (nargs > off) {
                jv tn = need_str(c, at, args[off], name);
                char tname[64];
                snprintf(tname, sizeof tname, "%.*s", (int)tn.s.n, tn.s.p);
                t = jb_test(c, at, tname, v, args + off + 1, nargs - off - 1);
            } else
                t = jv_truthy(v);
            if (t == keep) jl_push(c, r.l, x.l->v[i]);
        }
        return r;
    }
    if (IS("map")) {
        if (x.t == JV_UNDEF) return jv_list(c, 0);
        if (x.t != JV_LIST) jfail(c, line, "map of a %s", jv_type_name(x));
        jv at_ = ARG(-1, "attribute", jv_none()), def = ARG(-1, "default", jv_undef());
        jv r = jv_list(c, x.l->n);
        for (int i = 0; i < x.l->n; i++) {
            jv v;
            if (at_.t != JV_NONE) { v = attr_of(x.l->v[i], at_); if (v.t == JV_UNDEF) v = def; }
            else {
                jv fn = need_str(c, at, nargs ? args[0] : jv_none(), "map");
                char fname[64];
                snprintf(fname, sizeof fname, "%.*s", (int)fn.s.n, fn.s.p);
                v = jb_filter(c, at, fname, x.l->v[i], args + 1, nargs ? nargs - 1 : 0, NULL, NULL, 0);
            }
            r.l->v[i] = v;
        }
        r.l->n = x.l->n;
        return r;
    }
    if (IS("int")) {
        if (x.t == JV_INT) return x;
        if (x.t == JV_FLOAT) return jv_int((int64_t)x.f);
        if (x.t == JV_BOOL) return jv_int(x.b);
        if (x.t == JV_STR) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.*s", (int)x.s.n, x.s.p);
            char *e;
            double d = strtod(buf, &e);
            if (e != buf && !*e) return jv_int((int64_t)d);
        }
        return ARG(0, "default", jv_int(0));
    }
    if (IS("float")) {
        if (x.t == JV_FLOAT) return x;
        if (x.t == JV_INT) return jv_float((double)x.i);
        if (x.t == JV_BOOL) return jv_float(x.b);
        if (x.t == JV_STR) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.*s", (int)x.s.n, x.s.p);
            char *e;
            double d = strtod(buf, &e);
            if (e != buf && !*e) return jv_float(d);
        }
        return ARG(0, "default", jv_float(0));
    }
    if (IS("abs")) {
        if (x.t == JV_INT) return jv_int(x.i < 0 ? -x.i : x.i);
        if (x.t == JV_FLOAT) return jv_float(fabs(x.f));
        jfail(c, line, "abs of a %s", jv_type_name(x));
    }
    if (IS("round")) {
        jv p = ARG(0, "precision", jv_int(0));
        double m = pow(10, p.t == JV_INT ? (double)p.i : 0), v = x.t == JV_INT ? (double)x.i : x.f;
        return jv_float(round(v * m) / m);
    }
    if (IS("sum")) {
        if (x.t != JV_LIST) jfail(c, line, "sum of a %s", jv_type_name(x));
        jv acc = ARG(1, "start", jv_int(0));
        for (int i = 0; i < x.l->n; i++) {
            jv v = attr_of(x.l->v[i], ARG(0, "attribute", jv_none()));
            if (acc.t == JV_INT && v.t == JV_INT) acc.i += v.i;
            else acc = jv_float((acc.t == JV_INT ? (double)acc.i : acc.f) + (v.t == JV_INT ? (double)v.i : v.f));
        }
        return acc;
    }
    // string filters
    if (x.t == JV_UNDEF) x = jv_cstr("", 0);
    if (IS("trim")) return strip(need_str(c, at, jv_to_str(c, x), name), 3, ARG(0, "chars", jv_none()));
    if (IS("upper")) return str_case(c, need_str(c, at, x, name), 1);
    if (IS("lower")) return str_case(c, need_str(c, at, x, name), 0);
    if (IS("title")) return str_case(c, need_str(c, at, x, name), 2);
    if (IS("capitalize")) return str_case(c, need_str(c, at, x, name), 3);
    if (IS("replace")) {
        jv o = need_str(c, at, jv_to_str(c, ARG(0, "old", jv_none())), name), n = need_str(c, at, jv_to_str(c, ARG(1, "new", jv_none())), name);
        jv cnt = ARG(2, "count", jv_none());
        return str_replace(c, need_str(c, at, jv_to_str(c, x), name), o, n, cnt.t == JV_INT ? cnt.i : -1);
    }
    if (IS("indent")) {
        jv s = need_str(c, at, jv_to_str(c, x), name), w = ARG(0, "width", jv_int(4));
        int first = jv_truthy(ARG(1, "first", jv_bool(0))), blank = jv_truthy(ARG(2, "blank", jv_bool(0)));
        sbuf pad, b;
        sbuf_init(&pad);
        sbuf_init(&b);
        if (w.t == JV_INT && (w.i > 4096 || w.i < 0)) jfail(c, line, "indent width %lld out of range", (long long)w.i);
        if (w.t == JV_STR) sbuf_put(&pad, w.s.p, w.s.n);
        else for (int64_t i = 0; i < (w.t == JV_INT ? w.i : 4); i++) sbuf_put(&pad, " ", 1);
        for (size_t i = 0; i <= s.s.n;) {
            const char *nl = memchr(s.s.p + i, '\n', s.s.n - i);
            size_t e = nl ? (size_t)(nl - s.s.p) : s.s.n;
            int is_first = i == 0;
            if ((is_first ? first : 1) && (blank || e > i)) sbuf_put(&b, pad.data ? pad.data : "", pad.len);
            sbuf_put(&b, s.s.p + i, e - i);
            if (!nl) break;
            sbuf_put(&b, "\n", 1);
            i = e + 1;
        }
        sbuf_free(&pad);
        return jv_from_sbuf(c, &b);
    }
    if (IS("wordcount")) return jv_int(split(c, need_str(c, at, x, name), jv_none(), -1).l->n);
    jfail(c, line, "unknown filter '%s'", name);
}

// ---- methods: x.name(args) ----
jv jb_method(jctx *c, const jnode *at, jv self, const char *name, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw, int *found) {
    *found = 1;
    int line = at ? at->line : 0;
    if (self.t == JV_STR) {
        if (IS("strip")) return strip(self, 3, ARG(0, "chars", jv_none()));
        if (IS("lstrip")) return strip(self, 1, ARG(0, "chars", jv_none()));
        if (IS("rstrip")) return strip(self, 2, ARG(0, "chars", jv_none()));
        if (IS("upper")) return str_case(c, self, 1);
        if (IS("lower")) return str_case(c, self, 0);
        if (IS("title")) return str_case(c, self, 2);
        if (IS("capitalize")) return str_case(c, self, 3);
        if (IS("split")) {
            jv m = ARG(1, "maxsplit", jv_int(-1));
            return split(c, self, ARG(0, "sep", jv_none()), m.t == JV_INT ? m.i : -1);
        }
        if (IS("startswith") || IS("endswith")) return jv_bool(starts_any(c, at, self, ARG(0, "prefix", jv_none()), IS("endswith")));
        if (IS("replace")) {
            jv cnt = ARG(2, "count", jv_int(-1));
            return str_replace(c, self, need_str(c, at, ARG(0, "old", jv_none()), name), need_str(c, at, ARG(1, "new", jv_none()), name), cnt.t == JV_INT ? cnt.i : -1);
        }
        if (IS("format")) return str_format(c, at, self, args, nargs, kw, kwv, nkw);
        if (IS("join")) return join(c, at, ARG(0, "iterable", jv_none()), self, jv_none());
        if (IS("find") || IS("count")) {
            jv sub = need_str(c, at, ARG(0, "sub", jv_none()), name);
            if (IS("find")) {
                const char *m = sub.s.n ? memmem(self.s.p, self.s.n, sub.s.p, sub.s.n) : self.s.p;
                return jv_int(m ? (int64_t)ju_len(self.s.p, (size_t)(m - self.s.p)) : -1);
            }
            int64_t k = 0;
            for (size_t i = 0; sub.s.n && i + sub.s.n <= self.s.n;) {
                const char *m = memmem(self.s.p + i, self.s.n - i, sub.s.p, sub.s.n);
                if (!m) break;
                k++;
                i = (size_t)(m - self.s.p) + sub.s.n;
            }
            return jv_int(k);
        }
        if (IS("isdigit") || IS("isspace") || IS("isalpha")) {
            if (!self.s.n) return jv_bool(0);
            for (size_t i = 0; i < self.s.n; i++) {
                char ch = self.s.p[i];
                int ok = IS("isdigit") ? (ch >= '0' && ch <= '9') : IS("isspace") ? (ch == ' ' || (ch >= 9 && ch <= 13))
                                                                    : ((ch | 32) >= 'a' && (ch | 32) <= 'z');
                if (!ok) return jv_bool(0);
            }
            return jv_bool(1);
        }
    }
    if (self.t == JV_DICT || self.t == JV_NS) {
        if (IS("get")) {
            jv k = ARG(0, "key", jv_none());
            jv *v = k.t == JV_STR ? jd_get(self.d, k.s.p, k.s.n) : NULL;
            return v ? *v : ARG(1, "default", jv_none());
        }
        if (IS("items")) return jb_filter(c, at, "items", self, NULL, 0, NULL, NULL, 0);
        if (IS("keys") || IS("values")) {
            jv r = jv_list(c, self.d->n);
            for (int i = 0; i < self.d->n; i++) r.l->v[i] = IS("keys") ? jv_cstr(self.d->k[i], self.d->kl[i]) : self.d->v[i];
            r.l->n = self.d->n;
            return r;
        }
        if (IS("update")) {
            jv o = ARG(0, "other", jv_none());
            if (o.t == JV_DICT) for (int i = 0; i < o.d->n; i++) jd_set(c, self.d, o.d->k[i], o.d->kl[i], o.d->v[i]);
            for (int k = 0; k < nkw; k++) jd_set(c, self.d, kw[k], strlen(kw[k]), kwv[k]);
            return jv_none();
        }
    }
    if (self.t == JV_LIST) {
        if (IS("append")) { jl_push(c, self.l, ARG(0, "x", jv_none())); return jv_none(); }
        if (IS("pop")) {
            if (!self.l->n) jfail(c, line, "pop from an empty list");
            jv i = ARG(0, "index", jv_int(-1));
            int64_t k = i.t == JV_INT ? i.i : -1;
            if (k < 0) k += self.l->n;
            if (k < 0 || k >= self.l->n) jfail(c, line, "pop index out of range");
            jv r = self.l->v[k];
            memmove(self.l->v + k, self.l->v + k + 1, (size_t)(self.l->n - k - 1) * sizeof(jv));
            self.l->n--;
            return r;
        }
        if (IS("index")) {
            jv v = ARG(0, "x", jv_none());
            for (int i = 0; i < self.l->n; i++) if (jv_equal(self.l->v[i], v)) return jv_int(i);
            jfail(c, line, "index: value not in the list");
        }
    }
    *found = 0;
    return jv_undef();
}

// ---- globals ----
int jb_is_global(const char *name) {
    return IS("range") || IS("namespace") || IS("raise_exception") || IS("strftime_now") || IS("dict");
}

jv jb_global(jctx *c, const jnode *at, const char *name, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw) {
    int line = at ? at->line : 0;
    if (IS("raise_exception")) {
        jv m = jv_to_str(c, ARG(0, "message", jv_cstr("", 0)));
        jfail(c, line, "raise_exception: %.*s", (int)m.s.n, m.s.p);
    }
    if (IS("namespace") || IS("dict")) {
        jv r = jv_dict(c, 0);
        if (IS("namespace")) r.t = JV_NS;
        if (nargs && (args[0].t == JV_DICT || args[0].t == JV_NS))
            for (int i = 0; i < args[0].d->n; i++) jd_set(c, r.d, args[0].d->k[i], args[0].d->kl[i], args[0].d->v[i]);
        for (int k = 0; k < nkw; k++) jd_set(c, r.d, kw[k], strlen(kw[k]), kwv[k]);
        return r;
    }
    if (IS("range")) {
        int64_t a = 0, b, s = 1;
        for (int i = 0; i < nargs; i++) if (args[i].t != JV_INT) jfail(c, line, "range needs integers");
        if (nargs == 1) b = args[0].i;
        else if (nargs >= 2) { a = args[0].i; b = args[1].i; if (nargs > 2) s = args[2].i; }
        else jfail(c, line, "range needs an argument");
        if (s == 0) jfail(c, line, "range step must not be zero");
        jv r = jv_list(c, 0);
        for (int64_t i = a; s > 0 ? i < b : i > b; i += s) {
            if (r.l->n > 1000000) jfail(c, line, "range too long");
            jl_push(c, r.l, jv_int(i));
        }
        return r;
    }
    if (IS("strftime_now")) {
        jv f = need_str(c, at, ARG(0, "format", jv_none()), name);
        char fmt[256], out[512];
        snprintf(fmt, sizeof fmt, "%.*s", (int)f.s.n, f.s.p);
        time_t t = (time_t)c->now;
        struct tm tm;
        localtime_r(&t, &tm);
        size_t n = strftime(out, sizeof out, fmt, &tm);
        return jv_str(c, out, n);
    }
    jfail(c, line, "unknown function '%s'", name);
}
