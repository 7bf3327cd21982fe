// tools/calc: the calculator tool. Exact evaluation of arithmetic with GMP rationals:
// + - * / (also × ÷ and x between numbers is not accepted), parentheses, unary minus,
// powers with integer exponents (^ or **), postfix % (x% = x/100), thousands
// separators and decimals. Division by zero, non-integer exponents and results past
// the size bound are errors (return -1 with a message), never crashes. Precedence is
// Python's: a sign binds looser than a power, so -3**2 = -9, and 2**-1 = 0.5.
#pragma once
#include <stddef.h>
#include "base/error.h"

// Evaluates expr and writes the exact result to out (cap bytes): an integer, a finite
// decimal when the denominator divides a power of ten, else a reduced fraction "a/b".
int calc_eval(const char *expr, char *out, size_t cap, tm_error *err);

// Checks a GSM8K annotation body "48/2=24": 1 if the left side evaluates to the right
// side exactly, 0 if not, -1 if the annotation does not evaluate.
int calc_check_annotation(const char *body, tm_error *err);
