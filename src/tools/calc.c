// tools/calc: exact arithmetic for the calculator tool (recursive descent over GMP rationals).
// Precedence, loosest first, as in Python: sum (+ -) > product (* / :) > unary (- +) >
// power (^ **, right-associative, its exponent a unary) > primary (number, (sum), x%).
// So -3**2 = -(3**2) = -9 and 2**-1 = 1/2.
#include "tools/calc.h"
#include <ctype.h>
#include <gmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALC_MAX_BITS 100000
#define CALC_MAX_DEPTH 200

typedef struct cp {
    const char *s;
    size_t i;
    int depth;
    tm_error *err;
    int failed;
} cp;

static int fail(cp *p, const char *what) {
    if (!p->failed) tm_fail(p->err, "calc: %s at column %zu", what, p->i + 1);
    p->failed = 1;
    return -1;
}

static void ws(cp *p) { while (isspace((unsigned char)p->s[p->i])) p->i++; }

static int sum(cp *p, mpq_t r);
static int unary(cp *p, mpq_t r);

static int bounded(cp *p, mpq_t r) {
    if (mpz_sizeinbase(mpq_numref(r), 2) + mpz_sizeinbase(mpq_denref(r), 2) > CALC_MAX_BITS)
        return fail(p, "result too large");
    return 0;
}

static int number(cp *p, mpq_t r) {
    const char *s = p->s;
    size_t i = p->i;
    char digits[512];
    size_t n = 0;
    long places = 0;
    int dot = 0;
    while (isdigit((unsigned char)s[i]) || s[i] == '.' || (s[i] == ',' && isdigit((unsigned char)s[i + 1]) && n)) {
        if (s[i] == '.') { if (dot) break; dot = 1; }
        else if (s[i] != ',') {
            if (n >= sizeof digits - 1) return fail(p, "number too long");
            digits[n++] = s[i];
            if (dot) places++;
        }
        i++;
    }
    if (!n) return fail(p, "expected a number");
    digits[n] = 0;
    mpz_set_str(mpq_numref(r), digits, 10);
    mpz_ui_pow_ui(mpq_denref(r), 10, (unsigned long)places);
    mpq_canonicalize(r);
    p->i = i;
    return 0;
}

static int primary(cp *p, mpq_t r) {
    if (++p->depth > CALC_MAX_DEPTH) return fail(p, "expression too deep");
    ws(p);
    char c = p->s[p->i];
    int rc;
    if (c == '(') {
        p->i++;
        rc = sum(p, r);
        ws(p);
        if (!rc && p->s[p->i] != ')') rc = fail(p, "expected ')'");
        else if (!rc) p->i++;
    } else rc = number(p, r);
    p->depth--;
    if (rc) return rc;
    // postfix percent
    ws(p);
    while (p->s[p->i] == '%') {
        p->i++;
        mpz_mul_ui(mpq_denref(r), mpq_denref(r), 100);
        mpq_canonicalize(r);
        ws(p);
    }
    return 0;
}

static int power(cp *p, mpq_t r) {
    if (primary(p, r)) return -1;
    ws(p);
    int star2 = p->s[p->i] == '*' && p->s[p->i + 1] == '*';
    if (p->s[p->i] != '^' && !star2) return 0;
    p->i += star2 ? 2 : 1;
    mpq_t e;
    mpq_init(e);
    int rc = -1;
    if (++p->depth > CALC_MAX_DEPTH) { fail(p, "expression too deep"); goto out; }
    if (unary(p, e)) goto out;  // right-associative: 2**3**2 = 2**9, 2**-1 = 1/2
    p->depth--;
    if (mpz_cmp_ui(mpq_denref(e), 1)) { fail(p, "non-integer exponent"); goto out; }
    if (!mpz_fits_slong_p(mpq_numref(e))) { fail(p, "exponent too large"); goto out; }
    long k = mpz_get_si(mpq_numref(e));
    size_t bits = mpz_sizeinbase(mpq_numref(r), 2) + mpz_sizeinbase(mpq_denref(r), 2);
    if ((double)bits * (double)labs(k) > CALC_MAX_BITS && mpz_cmpabs_ui(mpq_numref(r), 1) != 0) {
        fail(p, "result too large");
        goto out;
    }
    if (k < 0 && mpq_sgn(r) == 0) { fail(p, "division by zero"); goto out; }
    if (mpz_cmpabs_ui(mpq_numref(r), 1) == 0 && mpz_cmp_ui(mpq_denref(r), 1) == 0) {
        if (mpq_sgn(r) < 0 && (k % 2 == 0)) mpq_neg(r, r);
    } else {
        mpz_pow_ui(mpq_numref(r), mpq_numref(r), (unsigned long)labs(k));
        mpz_pow_ui(mpq_denref(r), mpq_denref(r), (unsigned long)labs(k));
        if (k < 0) mpq_inv(r, r);
        mpq_canonicalize(r);
    }
    rc = bounded(p, r);
out:
    mpq_clear(e);
    return rc;
}

// A sign binds looser than a power: -3**2 = -(3**2).
static int unary(cp *p, mpq_t r) {
    ws(p);
    char c = p->s[p->i];
    int uminus = !strncmp(p->s + p->i, "\xe2\x88\x92", 3);  // Unicode minus
    if (c != '-' && c != '+' && !uminus) return power(p, r);
    if (++p->depth > CALC_MAX_DEPTH) return fail(p, "expression too deep");
    p->i += uminus ? 3 : 1;
    int rc = unary(p, r);
    if (!rc && c != '+') mpq_neg(r, r);
    p->depth--;
    return rc;
}

static int is_mul(cp *p, int *div) {
    ws(p);
    const char *s = p->s + p->i;
    if (s[0] == '*' && s[1] != '*') { *div = 0; return 1; }
    if (s[0] == '/' || s[0] == ':') { *div = 1; return 1; }
    if (!strncmp(s, "\xc3\x97", 2)) { *div = 0; return 2; }
    if (!strncmp(s, "\xc3\xb7", 2)) { *div = 1; return 2; }
    return 0;
}

static int product(cp *p, mpq_t r) {
    if (unary(p, r)) return -1;
    mpq_t b;
    mpq_init(b);
    int div, n, rc = 0;
    while ((n = is_mul(p, &div))) {
        p->i += (size_t)n;
        if ((rc = unary(p, b))) break;
        if (div) {
            if (mpq_sgn(b) == 0) { rc = fail(p, "division by zero"); break; }
            mpq_div(r, r, b);
        } else mpq_mul(r, r, b);
        if ((rc = bounded(p, r))) break;
    }
    mpq_clear(b);
    return rc;
}

static int sum(cp *p, mpq_t r) {
    if (++p->depth > CALC_MAX_DEPTH) return fail(p, "expression too deep");
    if (product(p, r)) return -1;
    mpq_t b;
    mpq_init(b);
    int rc = 0;
    while (1) {
        ws(p);
        char c = p->s[p->i];
        int uminus = !strncmp(p->s + p->i, "\xe2\x88\x92", 3);
        if (c != '+' && c != '-' && !uminus) break;
        p->i += uminus ? 3 : 1;
        if ((rc = product(p, b))) break;
        if (c == '+') mpq_add(r, r, b); else mpq_sub(r, r, b);
        if ((rc = bounded(p, r))) break;
    }
    mpq_clear(b);
    p->depth--;
    return rc;
}

static int eval_q(const char *expr, mpq_t r, tm_error *err) {
    cp p = {.s = expr, .err = err};
    if (strlen(expr) > 10000) return tm_fail(err, "calc: expression too long");
    if (sum(&p, r)) return -1;
    ws(&p);
    if (p.s[p.i]) return fail(&p, "unexpected character");
    return 0;
}

static void format_q(mpq_t r, char *out, size_t cap) {
    // finite decimal when the denominator is 2^a 5^b
    mpz_t den, t;
    mpz_init_set(den, mpq_denref(r));
    mpz_init(t);
    unsigned long twos = 0, fives = 0;
    while (mpz_divisible_ui_p(den, 2)) { mpz_divexact_ui(den, den, 2); twos++; }
    while (mpz_divisible_ui_p(den, 5)) { mpz_divexact_ui(den, den, 5); fives++; }
    char *s;
    if (mpz_cmp_ui(den, 1) == 0 && (twos || fives)) {
        unsigned long places = twos > fives ? twos : fives;
        mpz_ui_pow_ui(t, 10, places);
        mpz_mul(t, t, mpq_numref(r));
        mpz_divexact(t, t, mpq_denref(r));
        int neg = mpz_sgn(t) < 0;
        mpz_abs(t, t);
        char *digits = mpz_get_str(NULL, 10, t);
        size_t n = strlen(digits);
        size_t need = n + places + 4;
        s = malloc(need);
        size_t k = 0;
        if (neg) s[k++] = '-';
        if (n <= places) {
            s[k++] = '0';
            s[k++] = '.';
            for (size_t z = n; z < places; z++) s[k++] = '0';
            memcpy(s + k, digits, n);
            k += n;
        } else {
            memcpy(s + k, digits, n - places);
            k += n - places;
            s[k++] = '.';
            memcpy(s + k, digits + n - places, places);
            k += places;
        }
        s[k] = 0;
        free(digits);
    } else s = mpq_get_str(NULL, 10, r);
    snprintf(out, cap, "%s", s);
    free(s);
    mpz_clear(den);
    mpz_clear(t);
}

int calc_eval(const char *expr, char *out, size_t cap, tm_error *err) {
    mpq_t r;
    mpq_init(r);
    int rc = eval_q(expr, r, err);
    if (!rc) {
        format_q(r, out, cap);
        if (strlen(out) + 1 >= cap) rc = tm_fail(err, "calc: result does not fit in %zu bytes", cap);
    }
    mpq_clear(r);
    return rc;
}

int calc_check_annotation(const char *body, tm_error *err) {
    const char *eq = strrchr(body, '=');
    if (!eq) return tm_fail(err, "calc: annotation has no '='");
    size_t n = (size_t)(eq - body);
    char *lhs = malloc(n + 1);
    if (!lhs) return tm_fail(err, "calc: out of memory");
    memcpy(lhs, body, n);
    lhs[n] = 0;
    mpq_t a, b;
    mpq_init(a);
    mpq_init(b);
    int rc = eval_q(lhs, a, err);
    if (!rc) rc = eval_q(eq + 1, b, err);
    if (!rc) rc = mpq_equal(a, b) ? 1 : 0;
    mpq_clear(a);
    mpq_clear(b);
    free(lhs);
    return rc;
}
