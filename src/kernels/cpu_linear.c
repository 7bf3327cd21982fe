// kernels/cpu_linear.c: nn.Linear forward and backward on the CPU. The three GEMMs
// go through k_sgemm (OpenBLAS on the OpenMP threads); the bias terms are cheap
// loops parallelized by OpenMP.
#include "kernels/kernels.h"
#include "kernels/cpu_gemm_own.h"
#include <string.h>

void k_linear_fwd(float *y, const float *x, const float *W, const float *b, int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    if (in <= 0) {  // an empty sum: y = b (or 0); BLAS would reject lda = 0
        #pragma omp parallel for
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++) y[(long)n * out + o] = b ? b[o] : 0.0f;
        return;
    }
    float beta = 0.0f;
    if (b) {
        // Seed every row with the bias and let the GEMM accumulate onto it (beta = 1):
        // one pass over y instead of a separate bias pass after the GEMM.
        #pragma omp parallel for
        for (int n = 0; n < N; n++) memcpy(y + (long)n * out, b, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    // W is a weight: the fixed-order GEMM may keep it packed during a rollout.
    if (k_gemm_own_enabled()) k_gemm_nt_weight(N, out, in, 1.0f, x, in, W, in, beta, y, out);
    else k_sgemm(0, 1, N, out, in, 1.0f, x, in, W, in, beta, y, out);
}

void k_linear_bwd(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                  int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    if (in > 0) {
        if (dx)  // dx[N,in] += dy[N,out] @ W[out,in]
            k_sgemm(0, 0, N, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
        if (dW)  // dW[out,in] += dy^T @ x
            k_sgemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
    }
    if (db) {
        // Column sums of dy. Threads own disjoint column blocks and walk the rows in
        // order, so the result is deterministic and needs no scratch or atomics.
        // Blocks of 64 columns keep each row access a whole cache line or more.
        int nblk = (out + 63) / 64;
        #pragma omp parallel for
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * 64, c1 = c0 + 64 < out ? c0 + 64 : out;
            for (int n = 0; n < N; n++) {
                const float *row = dy + (long)n * out;
                #pragma omp simd
                for (int c = c0; c < c1; c++) db[c] += row[c];
            }
        }
    }
}
