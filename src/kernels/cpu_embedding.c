// kernels/cpu_embedding.c: token embedding lookup and its scatter-add backward.
// Token ids are trusted to lie in [0, V): the model validates them at the input.
#include "kernels/kernels.h"
#include <string.h>

void k_embedding_fwd(float *y, const int *tok, const float *E, int N, int D) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++)
        memcpy(y + (long)n * D, E + (long)tok[n] * D, (size_t)D * sizeof(float));
}

void k_embedding_bwd(float *dE, const float *dy, const int *tok, int N, int D) {
    // Repeated token ids make a row-parallel scatter racy. Instead each thread owns a
    // block of columns and visits the tokens in order: no atomics, no scratch, and
    // the summation order (hence the result) does not depend on the thread count.
    int bw = 64;
    int nblk = (D + bw - 1) / bw;
    #pragma omp parallel for
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * bw, c1 = c0 + bw < D ? c0 + bw : D;
        for (int n = 0; n < N; n++) {
            float *dst = dE + (long)tok[n] * D;
            const float *src = dy + (long)n * D;
            #pragma omp simd
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}
