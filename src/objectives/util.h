// objectives/util: numerically stable scalar helpers shared by the objectives.
#pragma once
#include <math.h>

// log(1 + e^x) without overflow; softplus(-x) = -log σ(x).
static inline double obj_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
// σ(x) without overflow.
static inline double obj_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
