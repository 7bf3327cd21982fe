// tokenizer/jinja_eval: renders a parsed template. Scopes follow jinja2: a for loop,
// a macro call and a call block's caller each get a frame; `set` writes to the
// current frame (so a set inside a loop does not leak out: templates use namespace()).
// Errors long-jump back to jinja_render, which frees the render's arena.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tokenizer/jinja_internal.h"

#define MAX_DEPTH 200  // nested macro calls / nested expressions

static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = jalloc(c, sizeof *f);
    f->parent = parent;
    return f;
}
static jv *frame_find(jframe *f, const char *k, size_t kl) {
    for (; f; f = f->parent)
        for (int i = 0; i < f->n; i++)
            if (f->kl[i] == kl && !memcmp(f->k[i], k, kl)) return &f->v[i];
    return NULL;
}
static void frame_set(jctx *c, jframe *f, const char *k, size_t kl, jv v) {
    for (int i = 0; i < f->n; i++)
        if (f->kl[i] == kl && !memcmp(f->k[i], k, kl)) { f->v[i] = v; return; }
    if (f->n == f->cap) {
        int nc = f->cap ? f->cap * 2 : 8;
        const char **nk = jalloc(c, (size_t)nc * sizeof *nk);
        size_t *nkl = jalloc(c, (size_t)nc * sizeof *nkl);
        jv *nv = jalloc(c, (size_t)nc * sizeof *nv);
        if (f->n) {
            memcpy(nk, f->k, (size_t)f->n * sizeof *nk);
            memcpy(nkl, f->kl, (size_t)f->n * sizeof *nkl);
            memcpy(nv, f->v, (size_t)f->n * sizeof *nv);
        }
        f->k = nk; f->kl = nkl; f->v = nv; f->cap = nc;
    }
    f->k[f->n] = k;
    f->kl[f->n] = kl;
    f->v[f->n++] = v;
}

static jv eval(jctx *c, jframe *f, const jnode *x);
static int exec(jctx *c, jframe *f, const jnodes *body, sbuf *out);

// Renders body into a fresh string (block set, macro bodies, filter blocks).
static jv capture(jctx *c, jframe *f, const jnodes *body) {
    sbuf b;
    sbuf_init(&b);
    exec(c, f, body, &b);
    return jv_from_sbuf(c, &b);
}

// ---- calls ----
jv jinja_call(jctx *c, const jnode *at, jv fn, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw, jv *caller) {
    int line = at ? at->line : 0;
    if (fn.t == JV_FUNC) return jb_global(c, at, fn.fn, args, nargs, kw, kwv, nkw);
    if (fn.t != JV_MACRO) jfail(c, line, "cannot call a %s", jv_type_name(fn));
    if (++c->depth > MAX_DEPTH) jfail(c, line, "macro calls nested too deep");
    const jnode *def = fn.m->def;
    jframe *mf = frame_new(c, fn.m->closure);
    const jnodes *ps = &def->list;
    jv varargs = jv_list(c, 0), kwargs = jv_dict(c, 0);
    for (int i = 0; i < nargs; i++) {
        if (i < ps->n) frame_set(c, mf, ps->v[i]->s, ps->v[i]->sn, args[i]);
        else jl_push(c, varargs.l, args[i]);
    }
    for (int i = nargs; i < ps->n; i++) frame_set(c, mf, ps->v[i]->s, ps->v[i]->sn, jv_undef());
    for (int k = 0; k < nkw; k++) {
        int hit = 0;
        for (int i = 0; i < ps->n && !hit; i++)
            if (ps->v[i]->sn == strlen(kw[k]) && !memcmp(ps->v[i]->s, kw[k], ps->v[i]->sn)) {
                frame_set(c, mf, ps->v[i]->s, ps->v[i]->sn, kwv[k]);
                hit = 1;
            }
        if (!hit) jd_set(c, kwargs.d, kw[k], strlen(kw[k]), kwv[k]);
    }
    // defaults, evaluated in the macro's frame for parameters not given
    for (int i = nargs; i < ps->n; i++) {
        if (ps->v[i]->kind != N_KW) continue;
        jv *cur = frame_find(mf, ps->v[i]->s, ps->v[i]->sn);
        int given = 0;
        for (int k = 0; k < nkw; k++)
            if (ps->v[i]->sn == strlen(kw[k]) && !memcmp(ps->v[i]->s, kw[k], ps->v[i]->sn)) given = 1;
        if (!given) *cur = eval(c, mf, ps->v[i]->a);
    }
    frame_set(c, mf, "varargs", 7, varargs);
    frame_set(c, mf, "kwargs", 6, kwargs);
    if (caller) frame_set(c, mf, "caller", 6, *caller);
    jv r = capture(c, mf, &def->list2);
    c->depth--;
    return r;
}

typedef struct argv_ { jv *v; const char **kw; jv *kwv; int n, nkw; } argv_;
static argv_ eval_args(jctx *c, jframe *f, const jnodes *l) {
    argv_ a = {jalloc(c, (size_t)(l->n + 1) * sizeof(jv)), jalloc(c, (size_t)(l->n + 1) * sizeof(char *)),
               jalloc(c, (size_t)(l->n + 1) * sizeof(jv)), 0, 0};
    for (int i = 0; i < l->n; i++) {
        const jnode *x = l->v[i];
        if (x->kind == N_KW) {
            char *k = jalloc(c, x->sn + 1);
            memcpy(k, x->s, x->sn);
            a.kw[a.nkw] = k;
            a.kwv[a.nkw++] = eval(c, f, x->a);
        } else
            a.v[a.n++] = eval(c, f, x);
    }
    return a;
}

static jv eval_call(jctx *c, jframe *f, const jnode *x, jv *caller) {
    argv_ a = eval_args(c, f, &x->list);
    const jnode *fx = x->a;
    if (fx->kind == N_ATTR) {
        jv self = eval(c, f, fx->a);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)fx->sn, fx->s);
        jv *member = (self.t == JV_DICT || self.t == JV_NS) ? jd_get(self.d, fx->s, fx->sn) : NULL;
        if (member && (member->t == JV_MACRO || member->t == JV_FUNC))
            return jinja_call(c, x, *member, a.v, a.n, a.kw, a.kwv, a.nkw, caller);
        int found = 0;
        jv r = jb_method(c, x, self, name, a.v, a.n, a.kw, a.kwv, a.nkw, &found);
        if (!found) jfail(c, x->line, "%s has no method '%s'", jv_type_name(self), name);
        return r;
    }
    jv fn = eval(c, f, fx);
    if (fn.t == JV_UNDEF && fx->kind == N_NAME) jfail(c, x->line, "'%.*s' is undefined", (int)fx->sn, fx->s);
    return jinja_call(c, x, fn, a.v, a.n, a.kw, a.kwv, a.nkw, caller);
}

// ---- expressions ----
static jv get_item(jctx *c, const jnode *at, jv o, jv k) {
    (void)at;
    if ((o.t == JV_DICT || o.t == JV_NS) && k.t == JV_STR) {
        jv *v = jd_get(o.d, k.s.p, k.s.n);
        return v ? *v : jv_undef();
    }
    if ((o.t == JV_LIST || o.t == JV_STR) && (k.t == JV_INT || k.t == JV_BOOL)) {
        int64_t i = k.t == JV_INT ? k.i : k.b;
        int64_t n = o.t == JV_LIST ? o.l->n : (int64_t)ju_len(o.s.p, o.s.n);
        if (i < 0) i += n;
        if (i < 0 || i >= n) return jv_undef();
        if (o.t == JV_LIST) return o.l->v[i];
        size_t a = ju_offset(o.s.p, o.s.n, (size_t)i), b = ju_offset(o.s.p, o.s.n, (size_t)i + 1);
        return jv_cstr(o.s.p + a, b - a);
    }
    if (o.t == JV_STR && k.t == JV_STR && k.s.n == 6 && !memcmp(k.s.p, "length", 6)) return jv_int((int64_t)ju_len(o.s.p, o.s.n));
    if (o.t == JV_LIST && k.t == JV_STR && k.s.n == 6 && !memcmp(k.s.p, "length", 6)) return jv_int(o.l->n);
    return jv_undef();
}

static jv eval_slice(jctx *c, jframe *f, const jnode *x) {
    jv o = eval(c, f, x->a);
    if (o.t != JV_LIST && o.t != JV_STR) jfail(c, x->line, "cannot slice a %s", jv_type_name(o));
    int64_t n = o.t == JV_LIST ? o.l->n : (int64_t)ju_len(o.s.p, o.s.n), se[3];
    int has[3];
    const jnode *ex[3] = {x->b, x->c, x->d};
    for (int k = 0; k < 3; k++) {
        jv v = ex[k] ? eval(c, f, ex[k]) : jv_none();
        has[k] = v.t != JV_NONE && v.t != JV_UNDEF;
        if (has[k] && v.t != JV_INT) jfail(c, x->line, "slice indices must be integers");
        se[k] = has[k] ? v.i : 0;
    }
    int64_t step = has[2] ? se[2] : 1;
    if (step == 0) jfail(c, x->line, "slice step cannot be zero");
    int64_t start, stop;
    if (step > 0) {
        start = !has[0] ? 0 : se[0] < 0 ? (se[0] + n < 0 ? 0 : se[0] + n) : (se[0] > n ? n : se[0]);
        stop = !has[1] ? n : se[1] < 0 ? (se[1] + n < 0 ? 0 : se[1] + n) : (se[1] > n ? n : se[1]);
    } else {
        start = !has[0] ? n - 1 : se[0] < 0 ? (se[0] + n < -1 ? -1 : se[0] + n) : (se[0] > n - 1 ? n - 1 : se[0]);
        stop = !has[1] ? -1 : se[1] < 0 ? (se[1] + n < -1 ? -1 : se[1] + n) : (se[1] > n - 1 ? n - 1 : se[1]);
    }
    if (o.t == JV_LIST) {
        jv r = jv_list(c, 0);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) jl_push(c, r.l, o.l->v[i]);
        return r;
    }
    sbuf b;
    sbuf_init(&b);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        size_t a = ju_offset(o.s.p, o.s.n, (size_t)i), e = ju_offset(o.s.p, o.s.n, (size_t)i + 1);
        sbuf_put(&b, o.s.p + a, e - a);
    }
    return jv_from_sbuf(c, &b);
}

static double num(jv v) { return v.t == JV_INT ? (double)v.i : v.t == JV_BOOL ? v.b : v.f; }
static int is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }

static int compare(jctx *c, const jnode *x, jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) { int64_t p = a.t == JV_INT ? a.i : a.b, q = b.t == JV_INT ? b.i : b.b; return (p > q) - (p < q); }
        double p = num(a), q = num(b);
        return (p > q) - (p < q);
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        int r = memcmp(a.s.p, b.s.p, a.s.n < b.s.n ? a.s.n : b.s.n);
        return r ? (r > 0) - (r < 0) : (a.s.n > b.s.n) - (a.s.n < b.s.n);
    }
    jfail(c, x->line, "cannot compare %s with %s", jv_type_name(a), jv_type_name(b));
}

static int contains(jctx *c, const jnode *x, jv item, jv in) {
    if (in.t == JV_UNDEF) return 0;
    if (in.t == JV_LIST) {
        for (int i = 0; i < in.l->n; i++)
            if (jv_equal(item, in.l->v[i])) return 1;
        return 0;
    }
    if (in.t == JV_STR && item.t == JV_STR)
        return item.s.n == 0 || (item.s.n <= in.s.n && memmem(in.s.p, in.s.n, item.s.p, item.s.n) != NULL);
    if ((in.t == JV_DICT || in.t == JV_NS) && item.t == JV_STR) return jd_get(in.d, item.s.p, item.s.n) != NULL;
    jfail(c, x->line, "'in' needs a list, string or dict on the right, not %s", jv_type_name(in));
}

static jv arith(jctx *c, const jnode *x, jv a, jv b) {
    int op = x->op;
    if (op == OP_CAT) {
        sbuf s;
        sbuf_init(&s);
        jv_print(c, &s, a);
        jv_print(c, &s, b);
        return jv_from_sbuf(c, &s);
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) jfail(c, x->line, "an operand is undefined");
    if (op == OP_ADD && a.t == JV_LIST && b.t == JV_LIST) {
        jv r = jv_list(c, a.l->n + b.l->n);
        memcpy(r.l->v, a.l->v, (size_t)a.l->n * sizeof(jv));
        memcpy(r.l->v + a.l->n, b.l->v, (size_t)b.l->n * sizeof(jv));
        r.l->n = a.l->n + b.l->n;
        return r;
    }
    if (op == OP_ADD && (a.t == JV_STR || b.t == JV_STR)) {
        if (a.t == JV_NONE || b.t == JV_NONE) jfail(c, x->line, "cannot add none and a string");
        return arith(c, &(jnode){.kind = N_BIN, .line = x->line, .op = OP_CAT}, a, b);
    }
    if (op == OP_MUL && ((a.t == JV_STR && b.t == JV_INT) || (a.t == JV_INT && b.t == JV_STR))) {
        jv s = a.t == JV_STR ? a : b;
        int64_t k = a.t == JV_INT ? a.i : b.i;
        if (k > 0 && s.s.n && (uint64_t)k > JINJA_MAX_STR / s.s.n) jfail(c, x->line, "a string longer than %zu bytes", JINJA_MAX_STR);
        sbuf r;
        sbuf_init(&r);
        for (int64_t i = 0; i < k && !r.failed; i++) sbuf_put(&r, s.s.p, s.s.n);
        return jv_from_sbuf(c, &r);
    }
    if (!is_num(a) || !is_num(b))
        jfail(c, x->line, "unsupported operand types %s and %s", jv_type_name(a), jv_type_name(b));
    int ints = a.t != JV_FLOAT && b.t != JV_FLOAT;
    int64_t p = a.t == JV_INT ? a.i : a.t == JV_BOOL ? a.b : 0, q = b.t == JV_INT ? b.i : b.t == JV_BOOL ? b.b : 0, r;
    double u = num(a), v = num(b);
    switch (op) {
    case OP_ADD: if (ints && !__builtin_add_overflow(p, q, &r)) return jv_int(r); return jv_float(u + v);
    case OP_SUB: if (ints && !__builtin_sub_overflow(p, q, &r)) return jv_int(r); return jv_float(u - v);
    case OP_MUL: if (ints && !__builtin_mul_overflow(p, q, &r)) return jv_int(r); return jv_float(u * v);
    case OP_DIV: if (v == 0) jfail(c, x->line, "division by zero"); return jv_float(u / v);
    case OP_FLOORDIV:
        if (v == 0) jfail(c, x->line, "division by zero");
        if (ints && !(p == INT64_MIN && q == -1)) { r = p / q; if ((p % q != 0) && ((p < 0) != (q < 0))) r--; return jv_int(r); }
        return jv_float(__builtin_floor(u / v));
    case OP_MOD:
        if (v == 0) jfail(c, x->line, "modulo by zero");
        if (ints && !(p == INT64_MIN && q == -1)) { r = p % q; if (r && ((r < 0) != (q < 0))) r += q; return jv_int(r); }
        { double m = __builtin_fmod(u, v); if (m != 0 && ((m < 0) != (v < 0))) m += v; return jv_float(m); }
    case OP_POW:
        if (ints && q >= 0) {
            int64_t acc = 1;
            int ov = 0;
            for (int64_t i = 0; i < q && !ov; i++) ov = __builtin_mul_overflow(acc, p, &acc);
            if (!ov) return jv_int(acc);
        }
        return jv_float(__builtin_pow(u, v));
    }
    jfail(c, x->line, "bad operator");
}

static jv eval_bin(jctx *c, jframe *f, const jnode *x) {
    jv a = eval(c, f, x->a), b = eval(c, f, x->b);
    switch (x->op) {
    case OP_EQ: return jv_bool(jv_equal(a, b));
    case OP_NE: return jv_bool(!jv_equal(a, b));
    case OP_LT: return jv_bool(compare(c, x, a, b) < 0);
    case OP_LE: return jv_bool(compare(c, x, a, b) <= 0);
    case OP_GT: return jv_bool(compare(c, x, a, b) > 0);
    case OP_GE: return jv_bool(compare(c, x, a, b) >= 0);
    case OP_IN: return jv_bool(contains(c, x, a, b));
    case OP_NOTIN: return jv_bool(!contains(c, x, a, b));
    default: return arith(c, x, a, b);
    }
}

static jv apply_filter(jctx *c, jframe *f, const jnode *x, jv v) {
    argv_ a = eval_args(c, f, &x->list);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)x->sn, x->s);
    return jb_filter(c, x, name, v, a.v, a.n, a.kw, a.kwv, a.nkw);
}

static jv eval(jctx *c, jframe *f, const jnode *x) {
    if (++c->depth > MAX_DEPTH) jfail(c, x->line, "expression nested too deep");
    jv r;
    switch (x->kind) {
    case N_LIT: r = x->lit; break;
    case N_NAME: {
        jv *v = frame_find(f, x->s, x->sn);
        if (v) { r = *v; break; }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)x->sn, x->s);
        r = jv_undef();
        if (x->sn < sizeof name && jb_is_global(name)) {
            r.t = JV_FUNC;
            r.fn = jalloc(c, x->sn + 1);
            memcpy((char *)r.fn, x->s, x->sn);
        }
        break;
    }
    case N_LIST: case N_TUPLE:
        r = jv_list(c, x->list.n);
        for (int i = 0; i < x->list.n; i++) r.l->v[i] = eval(c, f, x->list.v[i]);
        r.l->n = x->list.n;
        break;
    case N_DICT:
        r = jv_dict(c, x->list.n);
        for (int i = 0; i < x->list.n; i++) {
            jv k = eval(c, f, x->list.v[i]);
            if (k.t != JV_STR) k = jv_to_str(c, k);
            jd_set(c, r.d, k.s.p, k.s.n, eval(c, f, x->list2.v[i]));
        }
        break;
    case N_ATTR: {
        jv o = eval(c, f, x->a);
        r = get_item(c, x, o, jv_cstr(x->s, x->sn));
        break;
    }
    case N_ITEM: r = get_item(c, x, eval(c, f, x->a), eval(c, f, x->b)); break;
    case N_SLICE: r = eval_slice(c, f, x); break;
    case N_CALL: r = eval_call(c, f, x, NULL); break;
    case N_FILTER: r = apply_filter(c, f, x, eval(c, f, x->a)); break;
    case N_TEST: {
        argv_ a = eval_args(c, f, &x->list);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)x->sn, x->s);
        int t = jb_test(c, x, name, eval(c, f, x->a), a.v, a.n);
        r = jv_bool(x->op ? !t : t);
        break;
    }
    case N_NOT: r = jv_bool(!jv_truthy(eval(c, f, x->a))); break;
    case N_NEG: {
        jv v = eval(c, f, x->a);
        if (v.t == JV_INT) r = jv_int(-v.i);
        else if (v.t == JV_FLOAT) r = jv_float(-v.f);
        else jfail(c, x->line, "cannot negate a %s", jv_type_name(v));
        break;
    }
    case N_AND: { jv a = eval(c, f, x->a); r = jv_truthy(a) ? eval(c, f, x->b) : a; break; }
    case N_OR: { jv a = eval(c, f, x->a); r = jv_truthy(a) ? a : eval(c, f, x->b); break; }
    case N_COND: r = jv_truthy(eval(c, f, x->b)) ? eval(c, f, x->a) : x->c ? eval(c, f, x->c) : jv_undef(); break;
    case N_BIN: r = eval_bin(c, f, x); break;
    default: jfail(c, x->line, "not an expression");
    }
    c->depth--;
    return r;
}

// ---- statements ----
static void assign(jctx *c, jframe *f, const jnode *t, jv v) {
    if (t->kind == N_NAME) { frame_set(c, f, t->s, t->sn, v); return; }
    if (t->kind == N_ATTR) {
        jv o = eval(c, f, t->a);
        if (o.t != JV_NS) jfail(c, t->line, "cannot set an attribute of a %s (only of a namespace)", jv_type_name(o));
        jd_set(c, o.d, t->s, t->sn, v);
        return;
    }
    if (v.t != JV_LIST || v.l->n != t->list.n)
        jfail(c, t->line, "cannot unpack a %s into %d names", jv_type_name(v), t->list.n);
    for (int i = 0; i < t->list.n; i++) frame_set(c, f, t->list.v[i]->s, t->list.v[i]->sn, v.l->v[i]);
}

static int exec_for(jctx *c, jframe *f, const jnode *x, sbuf *out) {
    jv it = eval(c, f, x->b);
    if (it.t == JV_DICT || it.t == JV_NS) {
        jv keys = jv_list(c, it.d->n);
        for (int i = 0; i < it.d->n; i++) keys.l->v[i] = jv_cstr(it.d->k[i], it.d->kl[i]);
        keys.l->n = it.d->n;
        it = keys;
    } else if (it.t == JV_STR) {
        jv chars = jv_list(c, 0);
        for (size_t i = 0; i < it.s.n;) {
            int adv;
            ju_decode(it.s.p + i, it.s.n - i, &adv);
            jl_push(c, chars.l, jv_cstr(it.s.p + i, (size_t)adv));
            i += (size_t)adv;
        }
        it = chars;
    } else if (it.t == JV_UNDEF || it.t == JV_NONE) {
        it = jv_list(c, 0);  // jinja2 iterates an undefined as empty
    } else if (it.t != JV_LIST)
        jfail(c, x->line, "cannot loop over a %s", jv_type_name(it));
    jframe *lf = frame_new(c, f);
    jv items = it;
    if (x->c) {  // for x in xs if cond: the loop counters count the kept items
        items = jv_list(c, 0);
        for (int i = 0; i < it.l->n; i++) {
            if (++c->steps > JINJA_MAX_STEPS) jfail(c, x->line, "the template runs too long (over %ld steps)", JINJA_MAX_STEPS);
            assign(c, lf, x->a, it.l->v[i]);
            if (jv_truthy(eval(c, lf, x->c))) jl_push(c, items.l, it.l->v[i]);
        }
    }
    int n = items.l->n;
    jv loop = jv_dict(c, 9);  // one per loop, updated in place: an iteration allocates nothing
    for (int i = 0; i < n; i++) {
        if (++c->steps > JINJA_MAX_STEPS) jfail(c, x->line, "the template runs too long (over %ld steps)", JINJA_MAX_STEPS);
        jd_set(c, loop.d, "index", 5, jv_int(i + 1));
        jd_set(c, loop.d, "index0", 6, jv_int(i));
        jd_set(c, loop.d, "revindex", 8, jv_int(n - i));
        jd_set(c, loop.d, "revindex0", 9, jv_int(n - i - 1));
        jd_set(c, loop.d, "first", 5, jv_bool(i == 0));
        jd_set(c, loop.d, "last", 4, jv_bool(i == n - 1));
        jd_set(c, loop.d, "length", 6, jv_int(n));
        jd_set(c, loop.d, "previtem", 8, i > 0 ? items.l->v[i - 1] : jv_undef());
        jd_set(c, loop.d, "nextitem", 8, i < n - 1 ? items.l->v[i + 1] : jv_undef());
        frame_set(c, lf, "loop", 4, loop);
        assign(c, lf, x->a, items.l->v[i]);
        int st = exec(c, lf, &x->list, out);
        if (st == 1) break;
    }
    if (n == 0) return exec(c, lf, &x->list2, out);
    return 0;
}

static jv filter_chain(jctx *c, jframe *f, const jnode *x, jv v) {
    if (x->a) v = filter_chain(c, f, x->a, v);
    return apply_filter(c, f, x, v);
}

// Returns 0, or 1 for break, 2 for continue (passed up to the enclosing loop).
static int exec(jctx *c, jframe *f, const jnodes *body, sbuf *out) {
    for (int i = 0; i < body->n; i++) {
        const jnode *x = body->v[i];
        int st = 0;
        if (++c->steps > JINJA_MAX_STEPS) jfail(c, x->line, "the template runs too long (over %ld steps)", JINJA_MAX_STEPS);
        switch (x->kind) {
        case N_TEXT: sbuf_put(out, x->s, x->sn); break;
        case N_OUT: jv_print(c, out, eval(c, f, x->a)); break;
        case N_IF: st = exec(c, f, jv_truthy(eval(c, f, x->a)) ? &x->list : &x->list2, out); break;
        case N_FOR: st = exec_for(c, f, x, out); break;
        case N_SET: assign(c, f, x->a, eval(c, f, x->b)); break;
        case N_SETBLOCK: assign(c, f, x->a, capture(c, f, &x->list)); break;
        case N_MACRO: {
            jv m = {JV_MACRO, {0}};
            m.m = jalloc(c, sizeof *m.m);
            m.m->def = x;
            m.m->closure = f;
            frame_set(c, f, x->s, x->sn, m);
            break;
        }
        case N_CALLBLOCK: {
            jv caller = {JV_MACRO, {0}};
            caller.m = jalloc(c, sizeof *caller.m);
            caller.m->def = x;
            caller.m->closure = f;
            jv_print(c, out, eval_call(c, f, x->a, &caller));
            break;
        }
        case N_FILTERBLOCK: jv_print(c, out, filter_chain(c, f, x->a, capture(c, f, &x->list))); break;
        case N_BREAK: return 1;
        case N_CONTINUE: return 2;
        }
        if (out->failed) jfail(c, x->line, "out of memory");
        if (out->len > JINJA_MAX_STR) jfail(c, x->line, "output longer than %zu bytes", JINJA_MAX_STR);
        if (st) return st;
    }
    return 0;
}

int jinja_render(const jinja_tmpl *t, const json *vars, int64_t now, sbuf *out, tm_error *err) {
    jctx *c = calloc(1, sizeof *c);
    if (!c) return tm_fail(err, "%s: out of memory", t->name);
    c->err = err;
    c->t = t;
    c->now = now ? now : (int64_t)time(NULL);
    int rc = 0;
    if (setjmp(c->jb)) rc = -1;
    else {
        c->root = frame_new(c, NULL);
        if (vars && vars->type == JSON_OBJECT)
            for (int i = 0; i < vars->n; i++)
                frame_set(c, c->root, vars->keys[i], vars->key_lens[i], jv_from_json(c, &vars->items[i]));
        exec(c, c->root, &t->body, out);
        if (out->failed) jfail(c, 0, "out of memory");
    }
    ja_free(&c->a);
    free(c);
    return rc;
}
