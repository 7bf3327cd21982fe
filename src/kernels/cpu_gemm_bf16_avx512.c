// kernels/cpu_gemm_bf16_avx512.c: the AVX-512 tiles of the bf16-weight linear
// (cpu_gemm_bf16.c has the contract): the exact "widen" forward and backward, and the
// vdpbf16ps forward (x rounded to bf16). Compiled for any x86-64 build through target
// attributes; only called when the CPU has the instructions.
#include <immintrin.h>
#include "kernels/cpu_gemm_bf16.h"

#define T5 __attribute__((target("avx512f,avx512vl,avx512bw,avx2,fma")))
#define TB __attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma")))

T5 static inline __m512 widen16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

// the 16 lanes summed in cpu_gemm_bf16.c's order: + 8 apart, + 4, + 2, + 1
T5 static inline float red16v(__m512 s) {
    __m256 lo = _mm512_castps512_ps256(s), hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
    __m256 v = _mm256_add_ps(lo, hi);
    __m128 r4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 r2 = _mm_add_ps(r4, _mm_movehl_ps(r4, r4));
    return _mm_cvtss_f32(_mm_add_ss(r2, _mm_movehdup_ps(r2)));
}

T5 static inline __attribute__((always_inline)) void fwd_block(float *y, const float *x, const uint16_t *W,
                                                                const float *b, int m, int n, int K, int ldy,
                                                                const int MR, const int NR) {
    __m512 acc[4][4];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) acc[r][c] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 w[4];
        for (int c = 0; c < NR; c++) w[c] = widen16(W + (long)(n + c) * K + k);
        for (int r = 0; r < MR; r++) {
            __m512 xv = _mm512_loadu_ps(x + (long)(m + r) * K + k);
            for (int c = 0; c < NR; c++) acc[r][c] = _mm512_fmadd_ps(xv, w[c], acc[r][c]);
        }
    }
    if (k < K) {  // zero-padded tail (masked loads read zeros past K)
        __mmask16 km = (__mmask16)((1u << (K - k)) - 1u);
        __m512 w[4];
        for (int c = 0; c < NR; c++)
            w[c] = _mm512_castsi512_ps(_mm512_slli_epi32(
                _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(km, W + (long)(n + c) * K + k)), 16));
        for (int r = 0; r < MR; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(km, x + (long)(m + r) * K + k);
            for (int c = 0; c < NR; c++) acc[r][c] = _mm512_fmadd_ps(xv, w[c], acc[r][c]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) {
            float s = red16v(acc[r][c]);
            y[(long)(m + r) * ldy + n + c] = b ? s + b[n + c] : s;
        }
}

T5 void bf16_fwd_tile_avx512(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                             int K, int ldy) {
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        int m = m0;
        for (; m + 4 <= m1; m += 4) fwd_block(y, x, W, b, m, n, K, ldy, 4, 4);
        for (; m < m1; m++) fwd_block(y, x, W, b, m, n, K, ldy, 1, 4);
    }
    for (; n < n1; n++) {
        int m = m0;
        for (; m + 4 <= m1; m += 4) fwd_block(y, x, W, b, m, n, K, ldy, 4, 1);
        for (; m < m1; m++) fwd_block(y, x, W, b, m, n, K, ldy, 1, 1);
    }
}

// dx[m.., k..k+64) += sum_n dy[m, n] W[n, k..]: 4 rows x 64 columns in registers
T5 void bf16_bwd_tile_avx512(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N, int K) {
    int k = k0;
    for (; k + 64 <= k1; k += 64) {
        int m = m0;
        for (; m + 4 <= m1; m += 4) {
            __m512 a[4][4];
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 4; j++) a[r][j] = _mm512_setzero_ps();
            for (int n = 0; n < N; n++) {
                __m512 w[4];
                for (int j = 0; j < 4; j++) w[j] = widen16(W + (long)n * K + k + 16 * j);
                for (int r = 0; r < 4; r++) {
                    __m512 d = _mm512_set1_ps(dy[(long)(m + r) * N + n]);
                    for (int j = 0; j < 4; j++) a[r][j] = _mm512_fmadd_ps(d, w[j], a[r][j]);
                }
            }
            for (int r = 0; r < 4; r++)
                for (int j = 0; j < 4; j++) {
                    float *p = dx + (long)(m + r) * K + k + 16 * j;
                    _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), a[r][j]));
                }
        }
        for (; m < m1; m++) {
            __m512 a[4];
            for (int j = 0; j < 4; j++) a[j] = _mm512_setzero_ps();
            for (int n = 0; n < N; n++) {
                __m512 d = _mm512_set1_ps(dy[(long)m * N + n]);
                for (int j = 0; j < 4; j++) a[j] = _mm512_fmadd_ps(d, widen16(W + (long)n * K + k + 16 * j), a[j]);
            }
            for (int j = 0; j < 4; j++) {
                float *p = dx + (long)m * K + k + 16 * j;
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), a[j]));
            }
        }
    }
    for (; k < k1; k += 16) {  // 16 columns at a time, the last ones masked
        int w16 = k1 - k < 16 ? k1 - k : 16;
        __mmask16 km = (__mmask16)((1u << w16) - 1u);
        for (int m = m0; m < m1; m++) {
            __m512 a = _mm512_setzero_ps();
            for (int n = 0; n < N; n++) {
                __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(
                    _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(km, W + (long)n * K + k)), 16));
                a = _mm512_fmadd_ps(_mm512_set1_ps(dy[(long)m * N + n]), w, a);
            }
            float *p = dx + (long)m * K + k;
            _mm512_mask_storeu_ps(p, km, _mm512_add_ps(_mm512_maskz_loadu_ps(km, p), a));
        }
    }
}

// ---- vdpbf16ps: x rounded to bf16, pairs of products summed per lane ----

TB static inline __attribute__((always_inline)) void dp_block(float *y, const float *x, const uint16_t *W,
                                                               const float *b, int m, int n, int K, int ldy,
                                                               const int MR, const int NR) {
    __m512 acc[4][4];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) acc[r][c] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 32) {
        int full = k + 32 <= K;
        __mmask32 wm = full ? 0xffffffffu : (__mmask32)((1ull << (K - k)) - 1u);
        __mmask16 m0 = full ? 0xffff : (__mmask16)(K - k >= 16 ? 0xffff : (1u << (K - k)) - 1u);
        __mmask16 m1 = full ? 0xffff : (__mmask16)(K - k <= 16 ? 0 : (1u << (K - k - 16)) - 1u);
        __m512bh w[4];
        for (int c = 0; c < NR; c++) w[c] = (__m512bh)_mm512_maskz_loadu_epi16(wm, W + (long)(n + c) * K + k);
        for (int r = 0; r < MR; r++) {
            const float *xr = x + (long)(m + r) * K + k;
            __m512bh xb = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, xr + 16), _mm512_maskz_loadu_ps(m0, xr));
            for (int c = 0; c < NR; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xb, w[c]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) {
            float s = red16v(acc[r][c]);
            y[(long)(m + r) * ldy + n + c] = b ? s + b[n + c] : s;
        }
}

TB void bf16_fwd_tile_dpbf16(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                             int K, int ldy) {
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        int m = m0;
        for (; m + 4 <= m1; m += 4) dp_block(y, x, W, b, m, n, K, ldy, 4, 4);
        for (; m < m1; m++) dp_block(y, x, W, b, m, n, K, ldy, 1, 4);
    }
    for (; n < n1; n++)
        for (int m = m0; m < m1; m++) dp_block(y, x, W, b, m, n, K, ldy, 1, 1);
}
