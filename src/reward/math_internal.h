// reward/math_internal: what the verifier's stages share (not a public API).
//   math_extract.c    finds the answer span in a model's output
//   math_normalize.c  rewrites an answer string: LaTeX noise, units, unicode, words
//   math_parse.c      parses a normalized answer into a small tree of nodes
//   math_equal.c      evaluates and compares two trees by type
// Errors: a function that can run out of memory returns -1 and fills a tm_error.
// Parse failures are not errors: they are verdicts (parser.err).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <gmp.h>
#include "base/error.h"
#include "reward/math_answer.h"

#define MA_MAX_IN 4096      // bytes of one answer after extraction
#define MA_MAX_NODES 4096   // parse tree size (both sides together)
#define MA_MAX_DEPTH 200    // parser recursion
#define MA_MAX_BITS 20000   // bignum size during exact evaluation
#define MA_MAX_ITEMS 256    // items in one tuple/set/matrix
#define MA_MAX_TERMS 10000  // terms of one \sum or \prod
#define MA_MAX_WORK 2000000 // node evaluations per comparison (bounds nested sums)

// ---------------------------------------------------------------- strings

// A growing string. Every put returns 0, or -1 with err filled when out of memory.
typedef struct mbuf {
    char *s;
    size_t n, cap;
} mbuf;

int mb_put(mbuf *b, const char *p, size_t n, tm_error *err);
int mb_putc(mbuf *b, char c, tm_error *err);
int mb_puts(mbuf *b, const char *p, tm_error *err);

int ma_starts(const char *s, const char *prefix);
// Length of the command name at s (s points after the backslash): letters only.
size_t ma_cmd_len(const char *s);
// s[i] == '{': index after the matching '}', or 0 if it is never closed.
size_t ma_group_end(const char *s, size_t i);

// ---------------------------------------------------------------- normalization

// Rewrites one answer into the form the parser reads (see math_normalize.c):
// *out is a new string (free it). Returns 0, or -1 on out of memory.
int ma_normalize(const char *in, char **out, tm_error *err);
// Expands \pm / \mp item by item: "\pm 2, \pm 3i" -> "+2,-2,+3i,-3i". *out is NULL
// when s has no \pm. Returns 0, or -1 on out of memory.
int ma_expand_pm(const char *s, char **out, tm_error *err);
// 1 when s (raw) is one \text{...}-like group: a text answer, compared case-folded.
int ma_is_text_answer(const char *s);

// ---------------------------------------------------------------- parse tree

enum {
    N_NUM, N_SYM, N_PI, N_E, N_I, N_INF, N_ADD, N_SUB, N_MUL, N_DIV, N_POW, N_NEG, N_FUNC, N_FACT, N_SUM,
    N_SEQ, N_LIST, N_UNION, N_MATRIX, N_REL
};
// the scalar kinds are the ones up to N_SUM
#define MA_IS_SCALAR(kind) ((kind) <= N_SUM)
enum { F_SQRT, F_ROOT, F_SIN, F_COS, F_TAN, F_SEC, F_CSC, F_COT, F_ASIN, F_ACOS, F_ATAN, F_SINH, F_COSH,
       F_TANH, F_LN, F_LOG, F_LOGB, F_EXP, F_ABS, F_FLOOR, F_CEIL, F_BINOM };
enum { R_EQ, R_LT, R_LE, R_NE, R_IN };

typedef struct node {
    unsigned char kind, op;
    unsigned char mixed;   // N_ADD: a mixed number 2\frac{1}{2} (1); N_ADD/N_SUB: an interval end c +- r
                           // the parser built from |x - c| < r (2); N_MUL/N_NEG: a matrix
                           // entry times the matrix's scalar factor (2). None is work left undone.
    unsigned char is_dec;  // N_NUM: a terminating decimal literal (0.25)
    unsigned char rep;     // N_NUM: a repeating decimal (0.\overline{3}): exact
    unsigned char cond;    // N_SEQ/N_UNION: a set of reals written as a condition (x > 3)
    char open, close;      // N_SEQ brackets; N_LIST '{' for a braced set
    short places;          // decimal places of a decimal literal
    int a, b, c;           // children (-1 none). N_SUM: a body, b lower, c upper bound
    int first, n;          // list children, linked by next
    int next;
    int rows, cols;        // N_MATRIX
    const char *str;       // N_NUM literal / N_SYM name / N_SUM bound variable
    int slen;
} node;

typedef struct parser {
    const char *s;
    size_t i;
    node *nd;
    int cap;             // nodes in nd (at most MA_MAX_NODES)
    int nn, depth, err;  // err: 1 not math, 2 past a work bound
    int trig;            // inside a trig function's argument: 30^\circ means pi/6
    int abs;             // inside |...|: a bar closes, it does not start a factor
} parser;

// Parses all of s (a normalized answer) into p->nd, continuing after p->nn. Returns
// the root, or 0 with p->err set.
int ma_parse(parser *p, const char *s);
// Converts a number literal (also a repeating decimal) to a rational: 1 ok, 0 not a
// number, -1 past the size bound.
#include <gmp.h>
int ma_num_to_mpq(const node *x, mpq_t r);
// Symbol names compare without braces and spaces: 1011_2 = 1011_{2}, a_{1} = a_1.
int ma_sym_eq(const char *a, int na, const char *b, int nb);
