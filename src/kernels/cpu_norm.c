// kernels/cpu_norm.c: RMSNorm (also used per head for Qwen3's q/k norm).
//
// Forward: y = x * rstd * (w + wofs), rstd = 1/sqrt(mean(x^2) + eps); rstd[N] is saved.
// wofs is 0, or 1 for Gemma's RMSNorm (the stored weight is the scale minus one).
// Backward, with u = (w + wofs) * dy and r = rstd:
//   dx_j += r * u_j - x_j * r^3 / D * sum_k(u_k x_k)
//   dw_j += sum_n dy_nj * x_nj * r_n
// The backward's row sums use `omp simd reduction` so gcc vectorizes them without
// -ffast-math; the forward's uses the fixed-order dot (see below).
#include "kernels/kernels.h"
#include "kernels/cpu_gemm_own.h"
#include <math.h>
#include <omp.h>

void k_rmsnorm_ofs_fwd(float *y, float *rstd, const float *x, const float *w, float wofs, int N, int D, float eps) {
    k_gemm_isa();  // picks the dot's ISA path once, outside the parallel region
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (long)n * D;
        float *yr = y + (long)n * D;
        // The fixed-order dot of cpu_gemm_own.c, not `omp simd reduction` (whose order is
        // the compiler's, and may depend on the row's alignment): a decoded row and the
        // same row in a training batch get the same rstd bits.
        float ss = k_dot_fixed(xr, xr, D);
        float r = 1.0f / sqrtf(ss / (float)D + eps);
        rstd[n] = r;
        #pragma omp simd
        for (int j = 0; j < D; j++) yr[j] = xr[j] * r * (w[j] + wofs);
    }
}

void k_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps) {
    k_rmsnorm_ofs_fwd(y, rstd, x, w, 0.0f, N, D, eps);
}

// dx for one row; adds dy * x * rstd into dwacc (may be NULL).
static void rmsnorm_bwd_row(float *dxr, float *dwacc, const float *dyr, const float *xr, const float *w,
                            float wofs, float r, int D) {
    float dot = 0.0f;
    #pragma omp simd reduction(+ : dot)
    for (int j = 0; j < D; j++) dot += (w[j] + wofs) * dyr[j] * xr[j];
    float c = dot * r * r * r / (float)D;
    #pragma omp simd
    for (int j = 0; j < D; j++) dxr[j] += r * (w[j] + wofs) * dyr[j] - c * xr[j];
    if (dwacc) {
        #pragma omp simd
        for (int j = 0; j < D; j++) dwacc[j] += dyr[j] * xr[j] * r;
    }
}

// dw is a sum over rows; two deterministic ways to split it without atomics:
// - D <= SMALL_D (per-head q/k norm, small models): the rows are cut into RCHUNKS
//   fixed chunks, each chunk sums into its own row of a stack buffer while it makes
//   dx (one pass over the data), and the chunk sums are added in order. The chunking
//   depends on N only, so the result does not depend on the thread count.
// - larger D: threads own disjoint column blocks and walk all rows in order (a
//   second, column-blocked pass; each row piece is long enough to stream well).
#define SMALL_D 1024
#define RCHUNKS 16

void k_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                   const float *rstd, int N, int D) {
    k_rmsnorm_ofs_bwd(dx, dw, dy, x, w, 0.0f, rstd, N, D);
}

void k_rmsnorm_ofs_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, float wofs,
                       const float *rstd, int N, int D) {
    if (N <= 0 || D <= 0) return;
    if (dw && D <= SMALL_D) {
        float part[RCHUNKS * SMALL_D];  // 64 KB on the calling thread's stack, shared
        int nch = N < RCHUNKS ? N : RCHUNKS;
        #pragma omp parallel for schedule(static)
        for (int ch = 0; ch < nch; ch++) {
            float *pw = part + (long)ch * D;
            for (int j = 0; j < D; j++) pw[j] = 0.0f;
            int n0 = (int)((long)N * ch / nch), n1 = (int)((long)N * (ch + 1) / nch);
            for (int n = n0; n < n1; n++)
                rmsnorm_bwd_row(dx + (long)n * D, pw, dy + (long)n * D, x + (long)n * D, w, wofs, rstd[n], D);
        }
        for (int ch = 0; ch < nch; ch++)
            for (int j = 0; j < D; j++) dw[j] += part[(long)ch * D + j];
        return;
    }
    #pragma omp parallel
    {
        #pragma omp for schedule(static)
        for (int n = 0; n < N; n++)
            rmsnorm_bwd_row(dx + (long)n * D, NULL, dy + (long)n * D, x + (long)n * D, w, wofs, rstd[n], D);
        if (dw) {
            // About 4 column blocks per thread, whole zmm widths.
            int nt = omp_get_num_threads();
            int bw = (D + 4 * nt - 1) / (4 * nt);
            bw = (bw + 15) / 16 * 16;
            int nblk = (D + bw - 1) / bw;
            #pragma omp for schedule(static)
            for (int blk = 0; blk < nblk; blk++) {
                int c0 = blk * bw, c1 = c0 + bw < D ? c0 + bw : D;
                for (int n = 0; n < N; n++) {
                    const float *xr = x + (long)n * D, *dyr = dy + (long)n * D;
                    float r = rstd[n];
                    #pragma omp simd
                    for (int j = c0; j < c1; j++) dw[j] += dyr[j] * xr[j] * r;
                }
            }
        }
    }
}
