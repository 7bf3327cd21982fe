// kernels/cpu_contrastive.c: the contrastive-estimation token score of "Critical Tokens
// Matter" (papers.md §7.2). Two models' final hidden states h+ and h- (and their
// lm-heads W+ and W-) give next-token logits z+ and z-; the score of target y is its
// probability under softmax((1+γ) z+ - γ z-). Rows are processed in chunks and the
// vocabulary in chunks with an online log-sum-exp, so neither N x V logit matrix exists.
#include <math.h>
#include "kernels/kernels.h"

enum { CE_ROWS = 64, CE_COLS = 4096 };

size_t k_contrastive_scratch_floats(int N, int D, int V) {
    (void)N; (void)D; (void)V;
    return 2 * (size_t)CE_ROWS * CE_COLS;
}

void k_contrastive_prob(float *prob, const float *hp, const float *Wp, const float *hn, const float *Wn, float gamma,
                        const int *targets, int N, int D, int V, float *scratch) {
    float *zp = scratch, *zn = scratch + (size_t)CE_ROWS * CE_COLS;
    for (int r0 = 0; r0 < N; r0 += CE_ROWS) {
        int rows = N - r0 < CE_ROWS ? N - r0 : CE_ROWS;
        double mx[CE_ROWS], sum[CE_ROWS], zt[CE_ROWS];
        for (int i = 0; i < rows; i++) mx[i] = -INFINITY, sum[i] = 0, zt[i] = NAN;
        for (int c0 = 0; c0 < V; c0 += CE_COLS) {
            int cols = V - c0 < CE_COLS ? V - c0 : CE_COLS;
            // z[rows, cols] = h[rows, D] @ W[c0:c0+cols, D]^T for both models
            k_sgemm(0, 1, rows, cols, D, 1.0f, hp + (size_t)r0 * D, D, Wp + (size_t)c0 * D, D, 0.0f, zp, cols);
            k_sgemm(0, 1, rows, cols, D, 1.0f, hn + (size_t)r0 * D, D, Wn + (size_t)c0 * D, D, 0.0f, zn, cols);
#pragma omp parallel for schedule(static)
            for (int i = 0; i < rows; i++) {
                const float *a = zp + (size_t)i * cols, *b = zn + (size_t)i * cols;
                double m = mx[i], s = sum[i];
                for (int j = 0; j < cols; j++) {
                    double z = (1.0 + gamma) * a[j] - gamma * b[j];
                    if (z > m) { s = s * exp(m - z) + 1.0; m = z; }
                    else s += exp(z - m);
                }
                mx[i] = m;
                sum[i] = s;
                int t = targets[r0 + i];
                if (t >= c0 && t < c0 + cols) zt[i] = (1.0 + gamma) * a[t - c0] - gamma * b[t - c0];
            }
        }
        for (int i = 0; i < rows; i++)
            prob[r0 + i] = targets[r0 + i] < 0 ? 0.0f : (float)exp(zt[i] - mx[i] - log(sum[i]));
    }
}
