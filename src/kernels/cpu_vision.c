// kernels/cpu_vision.c: the operations the Qwen2.5-VL vision tower and M-RoPE add.
// - RoPE with a per-token, per-frequency angle table (the vision tower's 2-D rotary and
//   the language model's 3-D M-RoPE are both "angle[n][i] rotates the pair (i, i + d/2)",
//   with the angle taken from a different position id per frequency band);
// - bidirectional attention within segments (the vision tower's windows and images);
// - exact GELU (erf), the patch merger's activation;
// - QuickGELU, x sigmoid(1.702 x), the activation of Qwen2-VL's vision MLP (transformers'
//   QuickGELUActivation).
#include "kernels/kernels.h"
#include <math.h>
#include <stdlib.h>

static void rope_angle_apply(float *x, const float *ang, int N, int H, int d, float sign) {
    const int half = d / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *a = ang + (long)n * half;
        for (int i = 0; i < half; i++) {
            const float c = cosf(a[i]), s = sign * sinf(a[i]);
            for (int h = 0; h < H; h++) {
                float *p = x + ((long)n * H + h) * d;
                const float x1 = p[i], x2 = p[i + half];
                p[i] = x1 * c - x2 * s;
                p[i + half] = x2 * c + x1 * s;
            }
        }
    }
}

void k_rope_angle_fwd(float *x, const float *ang, int N, int H, int d) { rope_angle_apply(x, ang, N, H, d, 1.0f); }
void k_rope_angle_bwd(float *dx, const float *ang, int N, int H, int d) { rope_angle_apply(dx, ang, N, H, d, -1.0f); }

size_t k_attention_seg_scratch_floats(const int *cu_seqlens, int nseg) {
    size_t mx = 0;
    for (int s = 0; s < nseg; s++) {
        size_t n = (size_t)(cu_seqlens[s + 1] - cu_seqlens[s]);
        if (n > mx) mx = n;
    }
    return 2 * mx * mx;
}

// One segment and head at a time: S = scale Q K^T by GEMM (k_sgemm spreads it over the
// threads), softmax by rows, O = P V. Strided heads: row n of head h starts at (n H + h) d.
void k_attention_seg_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu_seqlens,
                         int nseg, int N, int H, int d, float *scratch) {
    (void)N;
    const float scale = 1.0f / sqrtf((float)d);
    const int ld = H * d;
    for (int s = 0; s < nseg; s++) {
        const int b = cu_seqlens[s], n = cu_seqlens[s + 1] - b;
        if (n <= 0) continue;
        for (int h = 0; h < H; h++) {
            const long o = (long)b * ld + (long)h * d;
            float *S = scratch;
            k_sgemm(0, 1, n, n, d, scale, q + o, ld, k + o, ld, 0.0f, S, n);
#pragma omp parallel for schedule(static)
            for (int i = 0; i < n; i++) {
                float *r = S + (long)i * n, mx = -INFINITY;
                for (int j = 0; j < n; j++) mx = r[j] > mx ? r[j] : mx;
                double sum = 0;
                for (int j = 0; j < n; j++) { r[j] = expf(r[j] - mx); sum += r[j]; }
                const float inv = (float)(1.0 / sum);
                for (int j = 0; j < n; j++) r[j] *= inv;
                lse[(long)(b + i) * H + h] = mx + (float)log(sum);
            }
            k_sgemm(0, 0, n, d, n, 1.0f, S, n, v + o, ld, 0.0f, out + o, ld);
        }
    }
}

// dP = dO V^T; dS = P (dP - rowsum(dO o O)); dQ += scale dS K; dK += scale dS^T Q; dV += P^T dO.
void k_attention_seg_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v,
                         const float *out, const float *lse, const int *cu_seqlens, int nseg, int N, int H, int d,
                         float *scratch) {
    (void)N;
    const float scale = 1.0f / sqrtf((float)d);
    const int ld = H * d;
    for (int s = 0; s < nseg; s++) {
        const int b = cu_seqlens[s], n = cu_seqlens[s + 1] - b;
        if (n <= 0) continue;
        float *P = scratch, *dP = scratch + (size_t)n * n;
        for (int h = 0; h < H; h++) {
            const long o = (long)b * ld + (long)h * d;
            k_sgemm(0, 1, n, n, d, scale, q + o, ld, k + o, ld, 0.0f, P, n);
            k_sgemm(0, 1, n, n, d, 1.0f, dout + o, ld, v + o, ld, 0.0f, dP, n);
#pragma omp parallel for schedule(static)
            for (int i = 0; i < n; i++) {
                const float l = lse[(long)(b + i) * H + h];
                const float *oi = out + o + (long)i * ld, *doi = dout + o + (long)i * ld;
                float delta = 0;
                for (int c = 0; c < d; c++) delta += oi[c] * doi[c];
                float *p = P + (long)i * n, *dp = dP + (long)i * n;
                for (int j = 0; j < n; j++) {
                    p[j] = expf(p[j] - l);
                    dp[j] = p[j] * (dp[j] - delta) * scale;
                }
            }
            k_sgemm(1, 0, n, d, n, 1.0f, P, n, dout + o, ld, 1.0f, dv + o, ld);
            k_sgemm(0, 0, n, d, n, 1.0f, dP, n, k + o, ld, 1.0f, dq + o, ld);
            k_sgemm(1, 0, n, d, n, 1.0f, dP, n, q + o, ld, 1.0f, dk + o, ld);
        }
    }
}

void k_gelu_fwd(float *y, const float *x, long n) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void k_gelu_bwd(float *dx, const float *dy, const float *x, long n) {
    const float c = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);  // 1/sqrt(2 pi)
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        const float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        dx[i] += dy[i] * (cdf + x[i] * c * expf(-0.5f * x[i] * x[i]));
    }
}

void k_quick_gelu_fwd(float *y, const float *x, long n) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

// d/dx x s(a x) = s + a x s (1 - s), a = 1.702
void k_quick_gelu_bwd(float *dx, const float *dy, const float *x, long n) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-1.702f * x[i]));
        dx[i] += dy[i] * (s + 1.702f * x[i] * s * (1.0f - s));
    }
}
