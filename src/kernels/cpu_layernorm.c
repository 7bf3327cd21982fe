// kernels/cpu_layernorm.c: LayerNorm with weight and bias (torch.nn.LayerNorm), Qwen2-VL's
// vision blocks and patch merger.
//
// Forward: mu = mean(x), r = 1/sqrt(mean((x - mu)^2) + eps), y = (x - mu) r w + b; mean[N]
// and rstd[N] are saved. The row sums are in double, in index order (one order for a row alone
// or in a batch, whatever the thread count).
// Backward, with xh = (x - mu) r and g = w dy:
//   dx_j += r (g_j - mean(g) - xh_j mean(g xh))
//   dw_j += sum_n dy_nj xh_nj,  db_j += sum_n dy_nj
// dw and db: threads own disjoint column blocks and walk all rows in order, so the sums do
// not depend on the thread count (no atomics).
#include "kernels/kernels.h"
#include <math.h>
#include <omp.h>

void k_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int N, int D, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (long)n * D;
        float *yr = y + (long)n * D;
        double s = 0, ss = 0;
        for (int j = 0; j < D; j++) s += xr[j];
        const double mu = s / D;
        for (int j = 0; j < D; j++) ss += (xr[j] - mu) * (xr[j] - mu);
        const float m = (float)mu, r = (float)(1.0 / sqrt(ss / D + (double)eps));
        mean[n] = m, rstd[n] = r;
#pragma omp simd
        for (int j = 0; j < D; j++) yr[j] = (xr[j] - m) * r * w[j] + (b ? b[j] : 0.0f);
    }
}

void k_layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *mean,
                     const float *rstd, int N, int D) {
    if (N <= 0 || D <= 0) return;
#pragma omp parallel
    {
        if (dx) {
#pragma omp for schedule(static)
            for (int n = 0; n < N; n++) {
                const float *xr = x + (long)n * D, *dyr = dy + (long)n * D;
                float *dxr = dx + (long)n * D;
                const float m = mean[n], r = rstd[n];
                double sg = 0, sgx = 0;
                for (int j = 0; j < D; j++) {
                    const double g = (double)w[j] * dyr[j];
                    sg += g;
                    sgx += g * ((xr[j] - m) * r);
                }
                const float a = (float)(sg / D), c = (float)(sgx / D);
#pragma omp simd
                for (int j = 0; j < D; j++) dxr[j] += r * (w[j] * dyr[j] - a - (xr[j] - m) * r * c);
            }
        }
        if (dw || db) {
            // about 4 column blocks per thread, whole zmm widths
            const int nt = omp_get_num_threads();
            int bw = (D + 4 * nt - 1) / (4 * nt);
            bw = (bw + 15) / 16 * 16;
            const int nblk = (D + bw - 1) / bw;
#pragma omp for schedule(static)
            for (int blk = 0; blk < nblk; blk++) {
                const int c0 = blk * bw, c1 = c0 + bw < D ? c0 + bw : D;
                for (int n = 0; n < N; n++) {
                    const float *xr = x + (long)n * D, *dyr = dy + (long)n * D;
                    const float m = mean[n], r = rstd[n];
                    if (dw) {
#pragma omp simd
                        for (int j = c0; j < c1; j++) dw[j] += dyr[j] * ((xr[j] - m) * r);
                    }
                    if (db) {
#pragma omp simd
                        for (int j = c0; j < c1; j++) db[j] += dyr[j];
                    }
                }
            }
        }
    }
}
