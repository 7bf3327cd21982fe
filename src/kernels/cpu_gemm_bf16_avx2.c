// kernels/cpu_gemm_bf16_avx2.c: the AVX2 + FMA tiles of the bf16-weight linear
// (cpu_gemm_bf16.c has the contract). Compiled for any x86-64 build through the target
// attribute and only called when the CPU has AVX2 and FMA. The forward keeps each
// output's 16 partial sums in two 8-lane registers (lanes 0-7 and 8-15), so its order
// and its bits are those of the scalar and AVX-512 paths.
#include <immintrin.h>
#include "kernels/cpu_gemm_bf16.h"

#define T2 __attribute__((target("avx2,fma")))

T2 static inline __m256 widen8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

// r8 = lo + hi, then + 4 apart, + 2 apart, + 1 apart (cpu_gemm_bf16.c's red16)
T2 static inline float red2x8(__m256 lo, __m256 hi) {
    __m256 v = _mm256_add_ps(lo, hi);
    __m128 r4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 r2 = _mm_add_ps(r4, _mm_movehl_ps(r4, r4));
    return _mm_cvtss_f32(_mm_add_ss(r2, _mm_movehdup_ps(r2)));
}

// MR x rows by NR weight rows, all of K
T2 static inline __attribute__((always_inline)) void fwd_block(float *y, const float *x, const uint16_t *W,
                                                                const float *b, int m, int n, int K, int ldy,
                                                                const int MR, const int NR) {
    __m256 lo[4][2], hi[4][2];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) lo[r][c] = hi[r][c] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m256 wl[2], wh[2];
        for (int c = 0; c < NR; c++) wl[c] = widen8(W + (long)(n + c) * K + k), wh[c] = widen8(W + (long)(n + c) * K + k + 8);
        for (int r = 0; r < MR; r++) {
            __m256 xl = _mm256_loadu_ps(x + (long)(m + r) * K + k), xh = _mm256_loadu_ps(x + (long)(m + r) * K + k + 8);
            for (int c = 0; c < NR; c++) lo[r][c] = _mm256_fmadd_ps(xl, wl[c], lo[r][c]), hi[r][c] = _mm256_fmadd_ps(xh, wh[c], hi[r][c]);
        }
    }
    if (k < K) {  // zero-padded tail
        float xt[4][16] = {{0}};
        uint16_t wt[2][16] = {{0}};
        for (int r = 0; r < MR; r++)
            for (int j = 0; k + j < K; j++) xt[r][j] = x[(long)(m + r) * K + k + j];
        for (int c = 0; c < NR; c++)
            for (int j = 0; k + j < K; j++) wt[c][j] = W[(long)(n + c) * K + k + j];
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++) {
                lo[r][c] = _mm256_fmadd_ps(_mm256_loadu_ps(xt[r]), widen8(wt[c]), lo[r][c]);
                hi[r][c] = _mm256_fmadd_ps(_mm256_loadu_ps(xt[r] + 8), widen8(wt[c] + 8), hi[r][c]);
            }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) {
            float s = red2x8(lo[r][c], hi[r][c]);
            y[(long)(m + r) * ldy + n + c] = b ? s + b[n + c] : s;
        }
}

T2 void bf16_fwd_tile_avx2(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                           int K, int ldy) {
    int n = n0;
    for (; n + 2 <= n1; n += 2) {
        int m = m0;
        for (; m + 2 <= m1; m += 2) fwd_block(y, x, W, b, m, n, K, ldy, 2, 2);
        for (; m < m1; m++) fwd_block(y, x, W, b, m, n, K, ldy, 1, 2);
    }
    for (; n < n1; n++)
        for (int m = m0; m < m1; m++) fwd_block(y, x, W, b, m, n, K, ldy, 1, 1);
}

// dx[m.., k..k+32) += sum_n dy[m, n] W[n, k..]: 2 rows x 32 columns in registers
T2 void bf16_bwd_tile_avx2(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N, int K) {
    int k = k0;
    for (; k + 32 <= k1; k += 32) {
        int m = m0;
        for (; m + 2 <= m1; m += 2) {
            __m256 a0[4], a1[4];
            for (int j = 0; j < 4; j++) a0[j] = a1[j] = _mm256_setzero_ps();
            for (int n = 0; n < N; n++) {
                __m256 d0 = _mm256_broadcast_ss(dy + (long)m * N + n), d1 = _mm256_broadcast_ss(dy + (long)(m + 1) * N + n);
                for (int j = 0; j < 4; j++) {
                    __m256 w = widen8(W + (long)n * K + k + 8 * j);
                    a0[j] = _mm256_fmadd_ps(d0, w, a0[j]);
                    a1[j] = _mm256_fmadd_ps(d1, w, a1[j]);
                }
            }
            for (int j = 0; j < 4; j++) {
                float *p0 = dx + (long)m * K + k + 8 * j, *p1 = p0 + K;
                _mm256_storeu_ps(p0, _mm256_add_ps(_mm256_loadu_ps(p0), a0[j]));
                _mm256_storeu_ps(p1, _mm256_add_ps(_mm256_loadu_ps(p1), a1[j]));
            }
        }
        if (m < m1) bf16_bwd_tile_scalar(dx, dy, W, m, m1, k, k + 32, N, K);
    }
    if (k < k1) bf16_bwd_tile_scalar(dx, dy, W, m0, m1, k, k1, N, K);
}
