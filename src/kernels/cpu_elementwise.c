// kernels/cpu_elementwise.c: the trivial elementwise helpers (residual adds, zeroing).
// Memory-bound, so a plain OpenMP simd loop is all they need.
#include "kernels/kernels.h"
#include <string.h>

void k_add_inplace(float *y, const float *x, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) y[i] += x[i];
}

void k_zero(float *y, long n) {
    // Parallel so that first touch spreads pages over both threads' caches.
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i += 16384) {
        long m = n - i < 16384 ? n - i : 16384;
        memset(y + i, 0, (size_t)m * sizeof(float));
    }
}
