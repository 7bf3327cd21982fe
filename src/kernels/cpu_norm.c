// kernels/cpu_norm.c: RMSNorm (also used per head for Qwen3's q/k norm).
//
// Forward: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); rstd[N] is saved.
// Backward, with u = w * dy and r = rstd:
//   dx_j += r * u_j - x_j * r^3 / D * sum_k(u_k x_k)
//   dw_j += sum_n dy_nj * x_nj * r_n
// Row sums use `omp simd reduction` so gcc vectorizes them without -ffast-math.
#include "kernels/kernels.h"
#include <math.h>
#include <omp.h>

void k_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (long)n * D;
        float *yr = y + (long)n * D;
        float ss = 0.0f;
        #pragma omp simd reduction(+ : ss)
        for (int j = 0; j < D; j++) ss += xr[j] * xr[j];
        float r = 1.0f / sqrtf(ss / (float)D + eps);
        rstd[n] = r;
        #pragma omp simd
        for (int j = 0; j < D; j++) yr[j] = xr[j] * r * w[j];
    }
}

void k_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                   const float *rstd, int N, int D) {
    #pragma omp parallel
    {
        #pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *xr = x + (long)n * D, *dyr = dy + (long)n * D;
            float *dxr = dx + (long)n * D;
            float r = rstd[n], dot = 0.0f;
            #pragma omp simd reduction(+ : dot)
            for (int j = 0; j < D; j++) dot += w[j] * dyr[j] * xr[j];
            float c = dot * r * r * r / (float)D;
            #pragma omp simd
            for (int j = 0; j < D; j++) dxr[j] += r * w[j] * dyr[j] - c * xr[j];
        }
        // dw is a sum over rows. Threads own disjoint column blocks and walk the rows
        // in order: deterministic, no scratch, no atomics. The block width gives each
        // thread about 4 blocks (16-column minimum, one zmm) so that small D (per-head
        // q/k norm, D = 64..128) still uses every thread.
        if (dw) {
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
