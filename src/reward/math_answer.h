// reward/math_answer: the exact math verifier. Extraction of a final answer from a
// model's output, and equality of a predicted answer with a gold answer.
// Numbers are exact GMP rationals (a decimal is the rational it spells: 0.375 = 3/8);
// radicals, pi and symbolic expressions are compared by evaluation at seeded random
// points in long double; structure (tuples, intervals, sets, matrices, equations)
// is compared by type. Thread-safe and reentrant: no globals. The work per call is
// bounded (input length, node count, bignum size, factorial and exponent caps), so
// garbage input cannot hang or crash it. The stages live in math_extract.c,
// math_normalize.c, math_parse.c and math_equal.c (see their header comments).
// Policies:
//   - `%`, units, `\text{}` unit tails, `^\circ`, `\$` are ignored: 20\% = 20
//     (but inside a trig function degrees count: \cos 60^\circ = 1/2).
//   - a decimal equals an exact value only if exactly equal, unless opts.approx is
//     set and the gold is itself a decimal: then |pred-gold| <= 0.5e-d (d = gold's places).
//     A repeating decimal (0.\overline{27}, 0.\dot{6}, 0.41\overline{6}) is exact.
//   - symbolic answers are equal when they agree at sample points covering the real
//     line (negative values included), so |t-1| is not t-1.
//   - conditions (x < -3 or x > 3, |x| \ge 5, x \ne 4, \{x : x \le 7\}, \mathbb{R})
//     compare as sets of reals with intervals and unions.
//   - a labelled prediction (a+b = 12, g(t) = t^2-3, (a,b) = (7,-1)) compares by its
//     right-hand side with a gold that is not an equation.
//   - unevaluated work (2+3, 7!, \sum_{k=1}^{20} k, \cos 60^\circ for a rational gold) is
//     refused unless opts.allow_unevaluated: the default suits RL rewards (the model
//     must compute); evaluation (temper eval, temper grade) sets it.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef enum {
    MATH_EXTRACT_BOXED,        // last \boxed{...} / \boxed x / \fbox{...}
    MATH_EXTRACT_ANSWER_IS,    // "The (final) answer is ...", "Answer: ..."
    MATH_EXTRACT_HASH,         // GSM8K "#### n" (the last one)
    MATH_EXTRACT_TOOL_OUTPUT,  // the answer stated after the last ```output block
    MATH_EXTRACT_LAST_NUMBER,  // the last number in the text (evaluation only: hackable)
} math_extractor;

typedef struct math_extract_opts {
    math_extractor order[8];  // tried in this order; the first that finds something wins
    int n;
} math_extract_opts;

// Default (reward) order: boxed, answer-is, ####, tool output. No last-number fallback.
void math_extract_opts_default(math_extract_opts *o);
// Parses "boxed,answer,hash,tool,last" into o. Returns 0, or -1 on an unknown name.
int math_extract_opts_parse(math_extract_opts *o, const char *spec);

// Finds the final answer in text[0..len). Returns 1 and the trimmed span
// text[*start .. *start + *alen) when found, 0 for "no answer" (also for a final
// \boxed{ that is never closed: a truncated generation scores 0, and for a span with
// a NUL byte in it, which no C-string comparison could read whole).
int math_extract(const char *text, size_t len, const math_extract_opts *o, size_t *start, size_t *alen,
                 math_extractor *which);

typedef struct math_equal_opts {
    int approx;             // gold is a rounded decimal: accept within half a unit of its last place
    int allow_unevaluated;  // accept "2+3" for gold "5"
    uint64_t seed;          // sample points for symbolic identity testing
} math_equal_opts;

void math_equal_opts_default(math_equal_opts *o);

typedef enum {
    MATH_EQUAL = 1,
    MATH_MISMATCH = 0,
    MATH_PARSE_FAIL = -1,   // one side is neither math nor comparable text
    MATH_TOO_LARGE = -2,    // input or evaluation exceeded the work bounds
    MATH_UNEVALUATED = -3,  // pred is arithmetic left undone for an evaluated gold
    MATH_ERROR = -4,        // out of memory (math_answer_compare only; see math_answer_check)
} math_verdict;

// Compares pred and gold (both already-extracted answers) and sets *verdict; only
// MATH_EQUAL means equal. NULL opts means defaults. Returns 0, or -1 with err filled
// when out of memory. (GMP itself aborts when it cannot allocate; its numbers are
// bounded by MA_MAX_BITS, so that needs a nearly exhausted heap.)
int math_answer_check(const char *pred, const char *gold, const math_equal_opts *o, math_verdict *verdict,
                      tm_error *err);
// The same, returning the verdict; out of memory reads as MATH_ERROR (never equal).
math_verdict math_answer_compare(const char *pred, const char *gold, const math_equal_opts *o);
// 1 if equal, else 0.
int math_answer_equal(const char *pred, const char *gold, const math_equal_opts *o);
const char *math_verdict_name(math_verdict v);
const char *math_extractor_name(math_extractor e);
