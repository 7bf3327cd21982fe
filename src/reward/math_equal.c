// reward/math_equal: equality of two extracted answers.
// Pipeline: normalize both (math_normalize.c) -> fast path: equal strings -> parse both
// into one node arena (math_parse.c) -> compare by type:
//   - scalars: exactly as GMP rationals when both sides evaluate to rationals (0.375 =
//     3/8, 0.\overline{27} = 3/11); otherwise by identity testing at seeded sample
//     points in complex long double, relative tolerance 1e-11. The points cover the
//     whole real line: three with every symbol positive, one with every symbol
//     negative, six with random signs, so |t-1| never equals t-1. A point where either
//     side leaves the reals (a square root or log of a negative) is outside that side's
//     domain and is skipped, unless the answer itself is complex (has i): equality is
//     equality on the common real domain, and at least 3 points must be compared.
//   - tuples in order, sets and bare lists as multisets, matrices entry by entry;
//   - sets of reals (intervals, unions, conditions such as x \ne 4 or |x| \ge 5) as
//     sorted, merged unions of intervals;
//   - equations: a labelled value (x = 5, a+b = 12, (a,b) = (7,-1)) compares by its
//     right side; two equations by proportional lhs - rhs.
// Work is bounded: node count, bignum bits, \sum terms, total node evaluations.
#include <complex.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "reward/math_internal.h"

#define MA_POINTS 10         // sample points for identity testing (see the header comment)
#define MA_MIN_POINTS 3      // points that must be compared for a symbolic "equal"
#define MA_RTOL 1e-11L

typedef long double complex cld;

typedef struct ctx {
    node *nd;
    uint64_t seed;
    long work;     // node evaluations so far (MA_MAX_WORK bounds nested sums)
    int nonreal;   // set when a real input left the reals (sqrt(-2), log(-1))
    int nbind;     // \sum / \prod variables in scope
    struct { const char *name; int len; long k; } bind[4];
} ctx;

// ---------------------------------------------------------------- exact evaluation

static size_t qbits(mpq_t q) { return mpz_sizeinbase(mpq_numref(q), 2) + mpz_sizeinbase(mpq_denref(q), 2); }

// Exact k-th root of a rational, if it is one.
static int q_root(mpq_t r, mpq_t a, unsigned long k) {
    if (mpq_sgn(a) < 0 && k % 2 == 0) return 0;
    mpz_t n, d;
    mpz_init(n);
    mpz_init(d);
    int ok = mpz_root(n, mpq_numref(a), k) && mpz_root(d, mpq_denref(a), k);
    if (ok) { mpz_set(mpq_numref(r), n); mpz_set(mpq_denref(r), d); mpq_canonicalize(r); }
    mpz_clear(n);
    mpz_clear(d);
    return ok;
}

static int bound_value(ctx *c, const node *x, long *k) {
    for (int i = c->nbind - 1; i >= 0; i--)
        if (ma_sym_eq(c->bind[i].name, c->bind[i].len, x->str, x->slen)) { *k = c->bind[i].k; return 1; }
    return 0;
}

static int ev_exact(ctx *c, int id, mpq_t r);

// An exact integer that fits a long: 1, else 0 (or -1 past a bound).
static int ev_long(ctx *c, int id, long *v) {
    mpq_t q;
    mpq_init(q);
    int ok = ev_exact(c, id, q);
    if (ok == 1) {
        if (mpz_cmp_ui(mpq_denref(q), 1) || !mpz_fits_slong_p(mpq_numref(q))) ok = 0;
        else *v = mpz_get_si(mpq_numref(q));
    }
    mpq_clear(q);
    return ok;
}

// \sum_{k=lo}^{hi} body (or \prod) exactly.
static int ev_exact_sum(ctx *c, const node *x, mpq_t r) {
    long lo, hi;
    int ok = ev_long(c, x->b, &lo);
    if (ok == 1) ok = ev_long(c, x->c, &hi);
    if (ok != 1) return ok;
    if (hi - lo >= MA_MAX_TERMS) return -1;
    if (c->nbind >= 4) return 0;
    mpq_set_ui(r, x->op ? 1 : 0, 1);
    mpq_t t;
    mpq_init(t);
    c->bind[c->nbind].name = x->str;
    c->bind[c->nbind].len = x->slen;
    c->nbind++;
    for (long k = lo; k <= hi && ok == 1; k++) {
        c->bind[c->nbind - 1].k = k;
        ok = ev_exact(c, x->a, t);
        if (ok != 1) break;
        if (x->op) mpq_mul(r, r, t); else mpq_add(r, r, t);
        if (qbits(r) > MA_MAX_BITS) ok = -1;
    }
    c->nbind--;
    mpq_clear(t);
    return ok;
}

static int ev_exact_pow(mpq_t r, mpq_t a, mpq_t b) {
    if (mpz_cmp_ui(mpq_denref(b), 1) == 0) {
        if (!mpz_fits_slong_p(mpq_numref(b))) return -1;
        long e = mpz_get_si(mpq_numref(b));
        if ((double)qbits(a) * (double)labs(e) > MA_MAX_BITS) return -1;
        if (e < 0 && mpq_sgn(a) == 0) return 0;
        mpz_pow_ui(mpq_numref(r), mpq_numref(a), (unsigned long)labs(e));
        mpz_pow_ui(mpq_denref(r), mpq_denref(a), (unsigned long)labs(e));
        if (e < 0) mpq_inv(r, r);
        mpq_canonicalize(r);
        return 1;
    }
    if (mpz_cmp_ui(mpq_denref(b), 64) > 0 || mpz_cmpabs_ui(mpq_numref(b), 64) > 0) return 0;
    mpq_t t;
    mpq_init(t);
    int ok = q_root(t, a, mpz_get_ui(mpq_denref(b)));
    if (ok) {
        long e = mpz_get_si(mpq_numref(b));
        if ((double)qbits(t) * (double)labs(e) > MA_MAX_BITS) ok = -1;
        else {
            mpz_pow_ui(mpq_numref(r), mpq_numref(t), (unsigned long)labs(e));
            mpz_pow_ui(mpq_denref(r), mpq_denref(t), (unsigned long)labs(e));
            if (e < 0) { if (mpq_sgn(r) == 0) ok = 0; else mpq_inv(r, r); }
            if (ok == 1) mpq_canonicalize(r);
        }
    }
    mpq_clear(t);
    return ok;
}

static int ev_exact_func(const node *x, mpq_t r, mpq_t a, mpq_t b) {
    switch (x->op) {
    case F_SQRT: return q_root(r, a, 2);
    case F_ROOT:  // a is the radicand, b the degree
        if (mpz_cmp_ui(mpq_denref(b), 1) || mpq_sgn(b) <= 0 || mpz_cmp_ui(mpq_numref(b), 64) > 0) return 0;
        return q_root(r, a, mpz_get_ui(mpq_numref(b)));
    case F_ABS: mpq_abs(r, a); return 1;
    case F_FLOOR:
        mpz_fdiv_q(mpq_numref(r), mpq_numref(a), mpq_denref(a));
        mpz_set_ui(mpq_denref(r), 1);
        return 1;
    case F_CEIL:
        mpz_cdiv_q(mpq_numref(r), mpq_numref(a), mpq_denref(a));
        mpz_set_ui(mpq_denref(r), 1);
        return 1;
    case F_BINOM:
        if (mpz_cmp_ui(mpq_denref(a), 1) || mpz_cmp_ui(mpq_denref(b), 1) || mpq_sgn(b) < 0 ||
            !mpz_fits_ulong_p(mpq_numref(b)) || mpz_cmp_ui(mpq_numref(b), 10000) > 0 ||
            mpz_cmpabs_ui(mpq_numref(a), 1000000) > 0)
            return 0;
        mpz_bin_ui(mpq_numref(r), mpq_numref(a), mpz_get_ui(mpq_numref(b)));
        mpz_set_ui(mpq_denref(r), 1);
        return 1;
    }
    return 0;
}

// 1: exactly rational (in r); 0: not (symbols, irrational, complex, undefined); -1: too large.
static int ev_exact(ctx *c, int id, mpq_t r) {
    node *x = &c->nd[id];
    if (++c->work > MA_MAX_WORK) return -1;
    int ok = 0;
    mpq_t a, b;
    switch (x->kind) {
    case N_NUM: return ma_num_to_mpq(x, r);
    case N_SYM: {
        long k;
        if (!bound_value(c, x, &k)) return 0;
        mpq_set_si(r, k, 1);
        return 1;
    }
    case N_SUM: return ev_exact_sum(c, x, r);
    case N_NEG:
        ok = ev_exact(c, x->a, r);
        if (ok == 1) mpq_neg(r, r);
        return ok;
    case N_ADD: case N_SUB: case N_MUL: case N_DIV: case N_POW: break;
    case N_FACT: {
        mpq_init(a);
        ok = ev_exact(c, x->a, a);
        if (ok == 1) {
            if (mpz_cmp_ui(mpq_denref(a), 1) || mpq_sgn(a) < 0) ok = 0;
            else if (mpz_cmp_ui(mpq_numref(a), 1000) > 0) ok = -1;
            else { mpz_fac_ui(mpq_numref(r), mpz_get_ui(mpq_numref(a))); mpz_set_ui(mpq_denref(r), 1); }
        }
        mpq_clear(a);
        return ok;
    }
    case N_FUNC:
        if (x->op == F_SQRT || x->op == F_ABS || x->op == F_FLOOR || x->op == F_CEIL || x->op == F_BINOM ||
            x->op == F_ROOT)
            break;
        return 0;
    default: return 0;
    }
    mpq_init(a);
    mpq_init(b);
    ok = ev_exact(c, x->a, a);
    int two = x->b >= 0 && !(x->kind == N_FUNC && x->op != F_BINOM && x->op != F_ROOT);
    if (ok == 1 && two) ok = ev_exact(c, x->b, b);
    if (ok == 1) {
        switch (x->kind) {
        case N_ADD: mpq_add(r, a, b); break;
        case N_SUB: mpq_sub(r, a, b); break;
        case N_MUL: mpq_mul(r, a, b); break;
        case N_DIV: if (mpq_sgn(b) == 0) ok = 0; else mpq_div(r, a, b); break;
        case N_POW: ok = ev_exact_pow(r, a, b); break;
        case N_FUNC: ok = ev_exact_func(x, r, a, b); break;
        }
    }
    if (ok == 1 && qbits(r) > MA_MAX_BITS) ok = -1;
    mpq_clear(a);
    mpq_clear(b);
    return ok;
}

// ---------------------------------------------------------------- numeric evaluation

static uint64_t name_hash(const char *s, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < n; k++) {
        if (s[k] == '{' || s[k] == '}' || s[k] == ' ') continue;
        h ^= (unsigned char)s[k];
        h *= 1099511628211ULL;
    }
    return h;
}

// The value of a free symbol at sample point `point`. The points cover the real line
// at several scales, so |x + 40| is told from x + 40 too:
//   0-2 positive in [0.5, 2.5] (where roots and logs are real),
//   3-5 negative in [0.3, 1], [1.5, 4], [6, 60],
//   6-7 a random sign, magnitude in [0.3, 3]; 8-9 a random sign, magnitude in [3, 300].
static long double sym_value(uint64_t seed, const node *x, int point) {
    static const long double lo[] = {0.5L, 0.5L, 0.5L, 0.3L, 1.5L, 6, 0.3L, 0.3L, 3, 3};
    static const long double hi[] = {2.5L, 2.5L, 2.5L, 1, 4, 60, 3, 3, 300, 300};
    rng r;
    rng_seed(&r, seed ^ name_hash(x->str, x->slen) ^ ((uint64_t)(point + 1) * 0x9E3779B97F4A7C15ULL));
    long double u = (long double)rng_double(&r);
    long double m = lo[point] * powl(hi[point] / lo[point], u);  // log-uniform
    if (point < 3) return m;
    if (point < 6) return -m;
    return rng_u64(&r) >> 63 ? m : -m;
}

static cld ev_num(ctx *c, int id, int point);

static cld ev_num_sum(ctx *c, const node *x, int point) {
    cld lo = ev_num(c, x->b, point), hi = ev_num(c, x->c, point);
    long double l = creall(lo), h = creall(hi);
    if (cimagl(lo) != 0 || cimagl(hi) != 0 || l != floorl(l) || h != floorl(h) || fabsl(l) > 1e9L ||
        fabsl(h) > 1e9L || h - l >= MA_MAX_TERMS || c->nbind >= 4)
        return NAN;
    cld acc = x->op ? 1 : 0;
    c->bind[c->nbind].name = x->str;
    c->bind[c->nbind].len = x->slen;
    c->nbind++;
    for (long k = (long)l; k <= (long)h; k++) {
        c->bind[c->nbind - 1].k = k;
        cld t = ev_num(c, x->a, point);
        acc = x->op ? acc * t : acc + t;
    }
    c->nbind--;
    return acc;
}

// A function of a real input that left the reals: note it (outside the real domain).
static cld real_or_note(ctx *c, int real_in, cld v) {
    if (real_in && cimagl(v) != 0) c->nonreal = 1;
    return v;
}

static cld ev_func(ctx *c, const node *x, int point) {
    cld a = ev_num(c, x->a, point);
    long double ra = creall(a);
    int real = cimagl(a) == 0;
    switch (x->op) {
    case F_SQRT: return real && ra >= 0 ? sqrtl(ra) : real_or_note(c, real, csqrtl(a));
    case F_ROOT: {
        cld n = ev_num(c, x->b, point);
        long double rn = creall(n);
        if (real && rn == floorl(rn) && fmodl(rn, 2) != 0 && ra < 0) return -powl(-ra, 1 / rn);
        if (real && ra >= 0) return powl(ra, 1 / rn);
        return real_or_note(c, real, cpowl(a, 1 / n));
    }
    case F_SIN: return csinl(a);
    case F_COS: return ccosl(a);
    case F_TAN: return ctanl(a);
    case F_SEC: return 1 / ccosl(a);
    case F_CSC: return 1 / csinl(a);
    case F_COT: return 1 / ctanl(a);
    case F_ASIN: return real_or_note(c, real, casinl(a));
    case F_ACOS: return real_or_note(c, real, cacosl(a));
    case F_ATAN: return catanl(a);
    case F_SINH: return csinhl(a);
    case F_COSH: return ccoshl(a);
    case F_TANH: return ctanhl(a);
    case F_LN: return real && ra > 0 ? logl(ra) : real_or_note(c, real, clogl(a));
    case F_LOG: return real && ra > 0 ? log10l(ra) : real_or_note(c, real, clogl(a) / logl(10));
    case F_LOGB: {
        cld b = ev_num(c, x->b, point);
        if (real && cimagl(b) == 0 && ra > 0 && creall(b) > 0) return logl(ra) / logl(creall(b));
        return real_or_note(c, real && cimagl(b) == 0, clogl(a) / clogl(b));
    }
    case F_EXP: return cexpl(a);
    case F_ABS: return cabsl(a);
    case F_FLOOR: return floorl(ra);
    case F_CEIL: return ceill(ra);
    case F_BINOM: {
        // n(n-1)...(n-k+1)/k! for a small integer k: a polynomial in n, right for negative
        // and fractional n too (lgamma would lose the sign)
        cld k = ev_num(c, x->b, point);
        long double rk = creall(k);
        if (cimagl(k) != 0 || rk != floorl(rk) || rk < 0 || rk > 200) {
            long double n = ra;
            return tgammal(n + 1) / (tgammal(rk + 1) * tgammal(n - rk + 1));
        }
        cld v = 1;
        for (long j = 0; j < (long)rk; j++) v = v * (a - j) / (j + 1);
        return v;
    }
    }
    return NAN;
}

static cld ev_num(ctx *c, int id, int point) {
    node *x = &c->nd[id];
    if (++c->work > MA_MAX_WORK) return NAN;
    switch (x->kind) {
    case N_NUM: {
        mpq_t q;
        mpq_init(q);
        int ok = ma_num_to_mpq(x, q);
        long double v = ok == 1 ? (long double)mpq_get_d(q) : NAN;
        mpq_clear(q);
        return v;
    }
    case N_SYM: {
        long k;
        if (bound_value(c, x, &k)) return (long double)k;
        return sym_value(c->seed, x, point);
    }
    case N_PI: return 3.14159265358979323846264338327950288L;
    case N_E: return 2.71828182845904523536028747135266250L;
    case N_I: return I;
    case N_INF: return INFINITY;
    case N_NEG: return -ev_num(c, x->a, point);
    case N_ADD: return ev_num(c, x->a, point) + ev_num(c, x->b, point);
    case N_SUB: return ev_num(c, x->a, point) - ev_num(c, x->b, point);
    case N_MUL: return ev_num(c, x->a, point) * ev_num(c, x->b, point);
    case N_DIV: {
        cld d = ev_num(c, x->b, point);
        if (d == 0) return NAN;
        return ev_num(c, x->a, point) / d;
    }
    case N_POW: {
        cld a = ev_num(c, x->a, point), b = ev_num(c, x->b, point);
        int real = cimagl(a) == 0 && cimagl(b) == 0;
        if (real) {
            long double ra = creall(a), rb = creall(b);
            if (ra >= 0 || rb == floorl(rb)) return powl(ra, rb);
        }
        return real_or_note(c, real, cpowl(a, b));
    }
    case N_FACT: return tgammal(creall(ev_num(c, x->a, point)) + 1);
    case N_SUM: return ev_num_sum(c, x, point);
    case N_FUNC: return ev_func(c, x, point);
    default: return NAN;
    }
}

// 1 equal, 0 unequal, -1 unknown (non-finite)
static int cld_eq(cld a, cld b, long double atol) {
    int fa = isfinite(creall(a)) && isfinite(cimagl(a)), fb = isfinite(creall(b)) && isfinite(cimagl(b));
    if (!fa || !fb) {
        if (isinf(creall(a)) && isinf(creall(b)) && !isnan(cimagl(a)) && !isnan(cimagl(b)))
            return (creall(a) > 0) == (creall(b) > 0);
        return -1;
    }
    long double d = cabsl(a - b), m = fmaxl(cabsl(a), cabsl(b));
    return d <= MA_RTOL * m || d <= atol;
}

// ---------------------------------------------------------------- tree queries

// Free symbols of id (bound \sum variables excluded), added to out[] once each.
static void collect_syms(ctx *c, int id, const node **out, int *n, int cap) {
    if (id < 0) return;
    node *x = &c->nd[id];
    if (x->kind == N_SYM) {
        long k;
        if (bound_value(c, x, &k)) return;
        for (int j = 0; j < *n; j++)
            if (ma_sym_eq(out[j]->str, out[j]->slen, x->str, x->slen)) return;
        if (*n < cap) out[(*n)++] = x;
        return;
    }
    if (x->kind == N_SUM) {
        collect_syms(c, x->b, out, n, cap);
        collect_syms(c, x->c, out, n, cap);
        if (c->nbind >= 4) return;
        c->bind[c->nbind].name = x->str;
        c->bind[c->nbind].len = x->slen;
        c->nbind++;
        collect_syms(c, x->a, out, n, cap);
        c->nbind--;
        return;
    }
    collect_syms(c, x->a, out, n, cap);
    if (x->kind != N_FUNC || x->op == F_BINOM || x->op == F_ROOT || x->op == F_LOGB) collect_syms(c, x->b, out, n, cap);
    for (int k = x->first; k >= 0; k = c->nd[k].next) collect_syms(c, k, out, n, cap);
}

static int count_syms(ctx *c, int id) {
    const node *s[8];
    int n = 0;
    collect_syms(c, id, s, &n, 8);
    return n;
}

static int has_kind(ctx *c, int id, int kind) {
    if (id < 0) return 0;
    node *x = &c->nd[id];
    if (x->kind == kind) return 1;
    if (has_kind(c, x->a, kind) || has_kind(c, x->b, kind) || has_kind(c, x->c, kind)) return 1;
    for (int k = x->first; k >= 0; k = c->nd[k].next)
        if (has_kind(c, k, kind)) return 1;
    return 0;
}

static int is_literal(ctx *c, int id) {
    node *x = &c->nd[id];
    if (x->kind == N_NUM) return 1;
    if (x->kind == N_NEG) return is_literal(c, x->a);
    if (x->kind == N_DIV) return c->nd[x->a].kind == N_NUM && c->nd[x->b].kind == N_NUM;
    if (x->kind == N_ADD && x->mixed) return 1;
    return 0;
}

// Work left undone on constants: 2+3, 4*5, 5!, \sum_{k=1}^{20} k, \cos 60^\circ, \log_2 8
// (powers like 2^{100}, k*10^n, radicals and mixed numbers are forms, not work).
static int has_uneval(ctx *c, int id) {
    if (id < 0) return 0;
    node *x = &c->nd[id];
    switch (x->kind) {
    case N_ADD: case N_SUB:
        if (x->mixed) return 0;
        if (is_literal(c, x->a) && is_literal(c, x->b)) return 1;
        break;
    case N_MUL:  // (a scalar factor the parser moved into a matrix is a form: mixed)
        if (!x->mixed && is_literal(c, x->a) && is_literal(c, x->b)) return 1;
        break;
    case N_FACT:
        if (is_literal(c, x->a)) return 1;
        break;
    case N_SUM: return 1;
    case N_FUNC:
        if (x->op >= F_SIN && x->op <= F_EXP && !count_syms(c, x->a)) return 1;
        break;
    default: break;
    }
    if (has_uneval(c, x->a)) return 1;
    if (x->kind != N_FUNC && has_uneval(c, x->b)) return 1;
    for (int k = x->first; k >= 0; k = c->nd[k].next)
        if (has_uneval(c, k)) return 1;
    return 0;
}

// decimal literal gold: its places, else -1
static int decimal_places(ctx *c, int id) {
    node *x = &c->nd[id];
    if (x->kind == N_NEG) return decimal_places(c, x->a);
    if (x->kind == N_NUM && x->is_dec) return x->places;
    return -1;
}

static int contains_decimal(ctx *c, int id) {
    if (id < 0) return 0;
    node *x = &c->nd[id];
    if (x->kind == N_NUM) return x->is_dec;
    return contains_decimal(c, x->a) || contains_decimal(c, x->b);
}

// ---------------------------------------------------------------- scalars

typedef struct cmpopts { int approx, allow_uneval; } cmpopts;

// |p - g| <= 0.5 * 10^-places
static int within_half_unit(mpq_t p, mpq_t g, int places) {
    mpq_t d, t;
    mpq_init(d);
    mpq_init(t);
    mpq_sub(d, p, g);
    mpq_abs(d, d);
    mpz_ui_pow_ui(mpq_denref(t), 10, (unsigned long)places);
    mpz_mul_ui(mpq_denref(t), mpq_denref(t), 2);
    mpz_set_ui(mpq_numref(t), 1);
    mpq_canonicalize(t);
    int ok = mpq_cmp(d, t) <= 0;
    mpq_clear(d);
    mpq_clear(t);
    return ok;
}

// Identity testing of p and g (see the header comment): 1 equal, 0 not.
static int same_function(ctx *c, int p, int g, int nsyms, long double atol) {
    int complex_answer = has_kind(c, p, N_I) || has_kind(c, g, N_I);
    int compared = 0;
    for (int k = 0; k < (nsyms ? MA_POINTS : 1); k++) {
        c->nonreal = 0;
        cld a = ev_num(c, p, k), b = ev_num(c, g, k);
        if (nsyms && c->nonreal && !complex_answer) continue;  // outside a side's real domain
        int r = cld_eq(a, b, atol);
        if (r == 0) return 0;
        compared += r == 1;
    }
    return compared >= (nsyms ? MA_MIN_POINTS : 1);
}

static math_verdict scalar_eq(ctx *c, int p, int g, const cmpopts *o) {
    mpq_t qp, qg;
    mpq_init(qp);
    mpq_init(qg);
    int ep = ev_exact(c, p, qp), eg = ev_exact(c, g, qg);
    math_verdict v = MATH_MISMATCH;
    int gplaces = o->approx ? decimal_places(c, g) : -1;
    if (ep == 1 && eg == 1) {
        if (mpq_equal(qp, qg) || (gplaces >= 0 && within_half_unit(qp, qg, gplaces))) v = MATH_EQUAL;
        if (v == MATH_EQUAL && !o->allow_uneval && has_uneval(c, p) && !has_uneval(c, g)) v = MATH_UNEVALUATED;
        goto done;
    }
    if (ep < 0 || eg < 0) { v = MATH_TOO_LARGE; goto done; }
    // one side exact, the other not: a decimal pred is never equal to an irrational gold
    if (ep == 1 && contains_decimal(c, p) && gplaces < 0) goto done;
    {
        // identity testing over the union of both sides' symbols (sin^2 x + cos^2 x = 1)
        const node *syms[64];
        int ns = 0;
        collect_syms(c, p, syms, &ns, 64);
        collect_syms(c, g, syms, &ns, 64);
        long double atol = gplaces >= 0 ? 0.5L * powl(10, -gplaces) : 1e-16L;
        if (same_function(c, p, g, ns, atol)) v = MATH_EQUAL;
        if (c->work > MA_MAX_WORK) v = MATH_TOO_LARGE;
        if (v == MATH_EQUAL && !o->allow_uneval && eg == 1 && has_uneval(c, p) && !has_uneval(c, g)) v = MATH_UNEVALUATED;
    }
done:
    mpq_clear(qp);
    mpq_clear(qg);
    return v;
}

// ---------------------------------------------------------------- structures

static math_verdict val_eq(ctx *c, int p, int g, const cmpopts *o, int depth);

// A name built from symbols only: x, a+b, ab, g(t) (parsed g*t), \angle B, h^{-1}(x).
// No numbers and no other powers: 2x = 3 and x^2 = 4 state x, they do not name a value.
static int is_name(ctx *c, int id) {
    node *x = &c->nd[id];
    switch (x->kind) {
    case N_SYM: return 1;
    case N_ADD: case N_SUB: case N_MUL: return is_name(c, x->a) && is_name(c, x->b);
    case N_POW: {  // h^{-1}: an inverse function's name
        node *e = &c->nd[x->b];
        return c->nd[x->a].kind == N_SYM && e->kind == N_NEG && c->nd[e->a].kind == N_NUM &&
               c->nd[e->a].slen == 1 && c->nd[e->a].str[0] == '1';
    }
    default: return 0;
    }
}

// The left side of "lhs = value" names the value: a symbol (x = 5), and on the
// prediction's side also a name (a+b = 12, g(t) = t^2-3, h^{-1}(x) = ..., \angle B =
// 65) or a tuple of symbols ((a,b) = (7,-1)). A gold equation such as x^2+y^2 = 25 is
// an answer in itself, so only a symbol label is dropped from a gold.
static int is_label(ctx *c, int id, int pred) {
    node *x = &c->nd[id];
    if (x->kind == N_SYM) return 1;
    if (!pred) return 0;
    if (MA_IS_SCALAR(x->kind)) return is_name(c, id);
    if (x->kind != N_SEQ || x->open != '(') return 0;
    for (int k = x->first; k >= 0; k = c->nd[k].next)
        if (c->nd[k].kind != N_SYM) return 0;
    return 1;
}

static int unwrap_label(ctx *c, int id, int pred) {
    node *x = &c->nd[id];
    if (x->kind != N_REL) return id;
    if (x->op == R_EQ && is_label(c, x->a, pred)) return x->b;
    if (x->op == R_IN && c->nd[x->a].kind == N_SYM) return x->b;
    return id;
}

static math_verdict multiset_eq(ctx *c, int p, int g, const cmpopts *o, int depth) {
    node *x = &c->nd[p], *y = &c->nd[g];
    if (x->n != y->n) return MATH_MISMATCH;
    unsigned char used[MA_MAX_ITEMS] = {0};
    for (int i = x->first; i >= 0; i = c->nd[i].next) {
        int found = 0, j = y->first;
        for (int k = 0; j >= 0 && !found; j = c->nd[j].next, k++)
            if (!used[k] && val_eq(c, i, j, o, depth + 1) == MATH_EQUAL) { used[k] = 1; found = 1; }
        if (!found) return MATH_MISMATCH;
    }
    return MATH_EQUAL;
}

static math_verdict ordered_eq(ctx *c, int p, int g, const cmpopts *o, int depth) {
    node *x = &c->nd[p], *y = &c->nd[g];
    if (x->n != y->n) return MATH_MISMATCH;
    for (int i = x->first, j = y->first; i >= 0 && j >= 0; i = c->nd[i].next, j = c->nd[j].next) {
        math_verdict v = val_eq(c, i, j, o, depth + 1);
        if (v != MATH_EQUAL) return v == MATH_UNEVALUATED ? v : MATH_MISMATCH;
    }
    return MATH_EQUAL;
}

// lhs-rhs of two equations proportional (same solution set for linear/polynomial forms)
static math_verdict equation_eq(ctx *c, node *x, node *y) {
    const node *s1[64], *s2[64];
    int n1 = 0, n2 = 0;
    collect_syms(c, x->a, s1, &n1, 64);
    collect_syms(c, x->b, s1, &n1, 64);
    collect_syms(c, y->a, s2, &n2, 64);
    collect_syms(c, y->b, s2, &n2, 64);
    if (n1 != n2) return MATH_MISMATCH;
    for (int i = 0; i < n1; i++) {
        int f = 0;
        for (int j = 0; j < n2 && !f; j++) f = ma_sym_eq(s1[i]->str, s1[i]->slen, s2[j]->str, s2[j]->slen);
        if (!f) return MATH_MISMATCH;
    }
    int complex_answer = has_kind(c, x->a, N_I) || has_kind(c, x->b, N_I) || has_kind(c, y->a, N_I) ||
                         has_kind(c, y->b, N_I);
    cld ratio = 0;
    int good = 0;
    for (int k = 0; k < MA_POINTS; k++) {
        c->nonreal = 0;
        cld d1 = ev_num(c, x->a, k) - ev_num(c, x->b, k), d2 = ev_num(c, y->a, k) - ev_num(c, y->b, k);
        if (c->nonreal && !complex_answer) continue;
        if (!isfinite(creall(d1)) || !isfinite(creall(d2))) continue;
        if (cabsl(d1) < 1e-14L && cabsl(d2) < 1e-14L) { good++; continue; }
        if (cabsl(d1) < 1e-14L || cabsl(d2) < 1e-14L) return MATH_MISMATCH;
        cld r = d1 / d2;
        if (good == 0 || ratio == 0) ratio = r;
        else if (cld_eq(r, ratio, 0) != 1) return MATH_MISMATCH;
        good++;
    }
    return good >= MA_MIN_POINTS ? MATH_EQUAL : MATH_MISMATCH;
}

// ---------------------------------------------------------------- sets of reals

typedef struct iv {
    int lo, hi;        // endpoint nodes
    char lc, hc;       // '(' '[' and ')' ']'
    long double l, h;  // their values, for sorting and merging
} iv;

#define MA_MAX_IVS 32

static long double real_value(ctx *c, int id) {
    cld v = ev_num(c, id, 0);
    return cimagl(v) == 0 ? creall(v) : NAN;
}

static int realset_add(ctx *c, iv *out, int *n, int lo, int hi, char lc, char hc) {
    if (*n >= MA_MAX_IVS) return 0;
    iv t = {lo, hi, lc, hc, real_value(c, lo), real_value(c, hi)};
    if (isnan(t.l) || isnan(t.h) || t.l > t.h) return 0;
    out[(*n)++] = t;
    return 1;
}

static int intersect(iv *a, const iv *b) {
    if (b->l > a->l || (b->l == a->l && b->lc == '(')) { a->l = b->l; a->lo = b->lo; a->lc = b->lc; }
    if (b->h < a->h || (b->h == a->h && b->hc == ')')) { a->h = b->h; a->hi = b->hi; a->hc = b->hc; }
    return a->l < a->h || (a->l == a->h && a->lc == '[' && a->hc == ']');
}

// id as a union of intervals in out[0..*n): an interval (a, b], a union, a set of
// points, the empty set, a list of conditions joined by "or" (a union) or "and" (an
// intersection). Returns 1, or 0 when id is not a set of reals.
static int to_realset(ctx *c, int id, iv *out, int *n) {
    node *x = &c->nd[id];
    if (x->kind == N_REL && x->op == R_IN && c->nd[x->a].kind == N_SYM) return to_realset(c, x->b, out, n);
    if (x->kind == N_SEQ && x->n == 2 && (x->open == '(' || x->open == '[') && (x->close == ')' || x->close == ']'))
        return realset_add(c, out, n, x->first, c->nd[x->first].next, x->open, x->close);
    if (x->kind == N_UNION || (x->kind == N_LIST && !(x->op & 2) && x->open != '{')) {
        for (int k = x->first; k >= 0; k = c->nd[k].next)
            if (!to_realset(c, k, out, n)) return 0;
        return 1;
    }
    if (x->kind == N_LIST && x->open == '{') {  // {1, 2}: points
        for (int k = x->first; k >= 0; k = c->nd[k].next)
            if (!MA_IS_SCALAR(c->nd[k].kind) || !realset_add(c, out, n, k, k, '[', ']')) return 0;
        return 1;
    }
    if (x->kind == N_LIST) {  // joined by "and": intersect single intervals
        iv acc, one[MA_MAX_IVS];
        int first = 1;
        for (int k = x->first; k >= 0; k = c->nd[k].next) {
            int m = 0;
            if (!to_realset(c, k, one, &m) || m != 1) return 0;
            if (first) acc = one[0];
            else if (!intersect(&acc, &one[0])) return 1;  // empty
            first = 0;
        }
        if (*n >= MA_MAX_IVS) return 0;
        out[(*n)++] = acc;
        return 1;
    }
    return 0;
}

static int iv_cmp(const void *a, const void *b) {
    const iv *x = a, *y = b;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->lc == '(') - (y->lc == '(');  // closed first
}

// Sorts and merges overlapping or touching intervals.
static void realset_canon(iv *s, int *n) {
    qsort(s, (size_t)*n, sizeof *s, iv_cmp);
    int m = 0;
    for (int k = 0; k < *n; k++) {
        if (m > 0) {
            iv *t = &s[m - 1];
            int touch = s[k].l < t->h || (s[k].l == t->h && (t->hc == ']' || s[k].lc == '['));
            if (touch) {
                if (s[k].h > t->h || (s[k].h == t->h && s[k].hc == ']')) { t->h = s[k].h; t->hi = s[k].hi; t->hc = s[k].hc; }
                continue;
            }
        }
        s[m++] = s[k];
    }
    *n = m;
}

// A condition (x > 3), a union, or the empty set next to one: compare as sets of reals.
static int is_realset_form(ctx *c, int id) {
    node *x = &c->nd[id];
    if (x->cond || x->kind == N_UNION) return 1;
    if (x->kind == N_REL && x->op == R_IN) return is_realset_form(c, x->b);
    if (x->kind != N_LIST || x->open == '{') return 0;
    for (int k = x->first; k >= 0; k = c->nd[k].next)
        if (c->nd[k].cond) return 1;
    return 0;
}

static math_verdict realset_eq(ctx *c, int p, int g, const cmpopts *o, int depth) {
    iv a[MA_MAX_IVS], b[MA_MAX_IVS];
    int na = 0, nb = 0;
    if (!to_realset(c, p, a, &na) || !to_realset(c, g, b, &nb)) return MATH_MISMATCH;
    realset_canon(a, &na);
    realset_canon(b, &nb);
    if (na != nb) return MATH_MISMATCH;
    for (int k = 0; k < na; k++) {
        if (a[k].lc != b[k].lc || a[k].hc != b[k].hc) return MATH_MISMATCH;
        if (val_eq(c, a[k].lo, b[k].lo, o, depth + 1) != MATH_EQUAL) return MATH_MISMATCH;
        if (val_eq(c, a[k].hi, b[k].hi, o, depth + 1) != MATH_EQUAL) return MATH_MISMATCH;
    }
    return MATH_EQUAL;
}

static math_verdict val_eq(ctx *c, int p, int g, const cmpopts *o, int depth) {
    if (depth > 50) return MATH_TOO_LARGE;
    node *x = &c->nd[p], *y = &c->nd[g];
    if (x->kind == N_REL && y->kind != N_REL) { p = unwrap_label(c, p, 1); x = &c->nd[p]; }
    if (y->kind == N_REL && x->kind != N_REL) { g = unwrap_label(c, g, 0); y = &c->nd[g]; }
    if (is_realset_form(c, p) || is_realset_form(c, g)) return realset_eq(c, p, g, o, depth);
    if (x->kind == N_LIST && x->n == 1 && y->kind != N_LIST) return val_eq(c, x->first, g, o, depth + 1);
    if (y->kind == N_LIST && y->n == 1 && x->kind != N_LIST) return val_eq(c, p, y->first, o, depth + 1);
    if (MA_IS_SCALAR(x->kind) && MA_IS_SCALAR(y->kind)) return scalar_eq(c, p, g, o);
    if (x->kind != y->kind) return MATH_MISMATCH;
    switch (x->kind) {
    case N_LIST: return multiset_eq(c, p, g, o, depth);
    case N_SEQ:
        if (x->open != y->open || x->close != y->close) return MATH_MISMATCH;
        return ordered_eq(c, p, g, o, depth);
    case N_MATRIX:
        if (x->rows != y->rows || x->cols != y->cols) return MATH_MISMATCH;
        return ordered_eq(c, p, g, o, depth);
    case N_REL:
        if (x->op != y->op) return MATH_MISMATCH;
        if (x->op == R_EQ) {
            node *xa = &c->nd[x->a], *ya = &c->nd[y->a];
            if (xa->kind == N_SYM && ya->kind == N_SYM && ma_sym_eq(xa->str, xa->slen, ya->str, ya->slen))
                return val_eq(c, x->b, y->b, o, depth + 1);
            if (MA_IS_SCALAR(xa->kind) && MA_IS_SCALAR(c->nd[x->b].kind) && MA_IS_SCALAR(ya->kind) &&
                MA_IS_SCALAR(c->nd[y->b].kind))
                return equation_eq(c, x, y);
            return MATH_MISMATCH;
        }
        if (val_eq(c, x->a, y->a, o, depth + 1) == MATH_EQUAL && val_eq(c, x->b, y->b, o, depth + 1) == MATH_EQUAL)
            return MATH_EQUAL;
        return MATH_MISMATCH;
    default: return MATH_MISMATCH;
    }
}

// ---------------------------------------------------------------- entry points

void math_equal_opts_default(math_equal_opts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 0x7e3a9e5c0ffeeULL;
}

const char *math_verdict_name(math_verdict v) {
    switch (v) {
    case MATH_EQUAL: return "equal";
    case MATH_MISMATCH: return "mismatch";
    case MATH_PARSE_FAIL: return "parse-fail";
    case MATH_TOO_LARGE: return "too-large";
    case MATH_UNEVALUATED: return "unevaluated";
    case MATH_ERROR: return "error";
    }
    return "?";
}

// Text comparison key: no spaces, braces or \text, case-folded, "(C)" -> "c".
static int text_key(const char *s, mbuf *o, tm_error *err) {
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c) || c == '{' || c == '}') continue;
        if (mb_putc(o, (char)tolower(c), err)) return -1;
    }
    if (o->s && o->n == 3 && o->s[0] == '(' && o->s[2] == ')') { o->s[0] = o->s[1]; o->s[1] = 0; o->n = 1; }
    return 0;
}

// 1 equal as text, 0 not, -1 out of memory.
static int text_equal(const char *a, const char *b, tm_error *err) {
    mbuf x = {0}, y = {0};
    int rc = text_key(a, &x, err) || text_key(b, &y, err) ? -1 : 0;
    if (!rc) rc = x.n == y.n && (x.n == 0 || !memcmp(x.s, y.s, x.n));
    free(x.s);
    free(y.s);
    return rc;
}

// Words that are answers, not products of symbols: "No" is \text{no}, not N*o.
static int answer_word(const char *s) {
    static const char *const W[] = {"yes", "no", "true", "false", "none", "neither", "both", "even", "odd",
                                    "always", "never", "sometimes", NULL};
    for (int k = 0; W[k]; k++)
        if (!strcasecmp(s, W[k])) return 1;
    return 0;
}

static int squeeze_equal(const char *a, const char *b) {
    while (1) {
        while (isspace((unsigned char)*a)) a++;
        while (isspace((unsigned char)*b)) b++;
        if (*a != *b) return 0;
        if (!*a) return 1;
        a++, b++;
    }
}

int math_answer_check(const char *pred, const char *gold, const math_equal_opts *opts, math_verdict *verdict,
                      tm_error *err) {
    math_equal_opts d;
    if (!opts) { math_equal_opts_default(&d); opts = &d; }
    *verdict = MATH_PARSE_FAIL;
    if (!pred || !gold) return 0;
    if (strlen(pred) > MA_MAX_IN || strlen(gold) > MA_MAX_IN) { *verdict = MATH_TOO_LARGE; return 0; }
    char *np = NULL, *ng = NULL, *xp = NULL, *xg = NULL;
    node *nodes = NULL;
    int rc = -1, t;
    if (ma_normalize(pred, &np, err) || ma_normalize(gold, &ng, err)) goto out;
    if (!*np || !*ng) { rc = 0; goto out; }
    if (squeeze_equal(np, ng)) { *verdict = MATH_EQUAL; rc = 0; goto out; }
    // a text answer (\text{No}) or an answer word compares case-folded
    if (ma_is_text_answer(pred) || ma_is_text_answer(gold) || (answer_word(np) && answer_word(ng))) {
        if ((t = text_equal(np, ng, err)) < 0) goto out;
        if (t) { *verdict = MATH_EQUAL; rc = 0; goto out; }
    }
    // \pm items expanded; then one node arena for both sides, sized by their length (a
    // node takes at least one character, except the few the parser adds per construct)
    if (ma_expand_pm(np, &xp, err) || ma_expand_pm(ng, &xg, err)) goto out;
    const char *sp = xp ? xp : np, *sg = xg ? xg : ng;
    size_t want = 4 * (strlen(sp) + strlen(sg)) + 64;
    int cap = want < MA_MAX_NODES ? (int)want : MA_MAX_NODES;
    nodes = malloc(sizeof(node) * (size_t)cap);
    if (!nodes) { tm_fail(err, "math verifier: out of memory for the parse tree"); goto out; }
    rc = 0;
    parser pp = {.nd = nodes, .cap = cap}, pg;
    int rp = ma_parse(&pp, sp);
    int perr = pp.err;
    pg = pp;  // same arena, continue numbering
    pg.err = 0;
    int rg = perr ? 0 : ma_parse(&pg, sg);
    if (perr || pg.err) {
        math_verdict v = MATH_PARSE_FAIL;
        if (perr == 2 || pg.err == 2) v = MATH_TOO_LARGE;
        if ((t = text_equal(np, ng, err)) < 0) { rc = -1; goto out; }
        if (t) v = MATH_EQUAL;
        else if (v != MATH_TOO_LARGE) v = (perr && pg.err) ? MATH_MISMATCH : MATH_PARSE_FAIL;
        *verdict = v;
        goto out;
    }
    ctx c = {.nd = nodes, .seed = opts->seed};
    cmpopts co = {.approx = opts->approx, .allow_uneval = opts->allow_unevaluated};
    *verdict = val_eq(&c, rp, rg, &co, 0);
out:
    free(nodes);
    free(np);
    free(ng);
    free(xp);
    free(xg);
    return rc;
}

math_verdict math_answer_compare(const char *pred, const char *gold, const math_equal_opts *o) {
    math_verdict v;
    tm_error err;
    return math_answer_check(pred, gold, o, &v, &err) ? MATH_ERROR : v;
}

int math_answer_equal(const char *pred, const char *gold, const math_equal_opts *o) {
    return math_answer_compare(pred, gold, o) == MATH_EQUAL;
}
