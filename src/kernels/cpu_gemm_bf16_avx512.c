// kernels/cpu_gemm_bf16_avx512.c: the AVX-512 tiles of the bf16-weight linear
// (cpu_gemm_bf16.c has the contract): the exact "widen" forward and backward, and the
// vdpbf16ps forward (x rounded to bf16). Compiled for any x86-64 build through target
// attributes; only called when the CPU has the instructions.
#include <immintrin.h>
#include <string.h>
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

// The forward tile walks W in groups of NR rows. Each group's rows are widened once, KC
// columns at a time, into an fp32 buffer (in L1 / L2) that every row of x in the tile then
// reads, MR rows at a time with the MR x NR accumulators (16 lanes each) in registers. An
// element's 16 lanes are parked in `park` between column chunks; parking a float does not
// change it and KC is a multiple of 16, so lane j still sums k = j, j+16, ... in order, as
// the scalar path. Past K, x is loaded as zeros and the buffer holds zeros.
enum { FM = 64, KC = 1024, NRMAX = 8 };

T5 static inline __attribute__((always_inline)) void fwd_rows(float (*park)[NRMAX][16], const float (*wb)[KC], const float *x, int m0,
                                                               int r, int kc, int kw, int K, const int MR, const int NR) {
    __m512 acc[2][NRMAX];
    for (int i = 0; i < MR; i++)
        for (int c = 0; c < NR; c++) acc[i][c] = _mm512_load_ps(park[r + i][c]);
    int k = 0;
    for (; k + 16 <= kw; k += 16) {
        for (int i = 0; i < MR; i++) {
            __m512 xv = _mm512_loadu_ps(x + (long)(m0 + r + i) * K + kc + k);
            for (int c = 0; c < NR; c++) acc[i][c] = _mm512_fmadd_ps(xv, _mm512_load_ps(wb[c] + k), acc[i][c]);
        }
    }
    if (k < kw) {
        __mmask16 km = (__mmask16)((1u << (kw - k)) - 1u);
        for (int i = 0; i < MR; i++) {
            __m512 xv = _mm512_maskz_loadu_ps(km, x + (long)(m0 + r + i) * K + kc + k);
            for (int c = 0; c < NR; c++) acc[i][c] = _mm512_fmadd_ps(xv, _mm512_load_ps(wb[c] + k), acc[i][c]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int c = 0; c < NR; c++) _mm512_store_ps(park[r + i][c], acc[i][c]);
}

T5 static inline __attribute__((always_inline)) void fwd_group(float *y, const float *x, const uint16_t *W, const float *b,
                                                                int m0, int rows, int n, int K, int ldy, const int NR) {
    float park[FM][NRMAX][16] __attribute__((aligned(64)));
    float wb[NRMAX][KC] __attribute__((aligned(64)));
    for (int r = 0; r < rows; r++) memset(park[r], 0, sizeof park[r]);
    for (int kc = 0; kc < K; kc += KC) {
        const int kw = K - kc < KC ? K - kc : KC, nv = (kw + 15) / 16;
        for (int c = 0; c < NR; c++)
            for (int v = 0; v < nv; v++) {
                int left = kw - 16 * v;
                __mmask16 km = (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1u);
                _mm512_store_ps(wb[c] + 16 * v, _mm512_castsi512_ps(_mm512_slli_epi32(
                    _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(km, W + (long)(n + c) * K + kc + 16 * v)), 16)));
            }
        int r = 0;
        for (; r + 2 <= rows; r += 2) fwd_rows(park, (const float (*)[KC])wb, x, m0, r, kc, kw, K, 2, NR);
        for (; r < rows; r++) fwd_rows(park, (const float (*)[KC])wb, x, m0, r, kc, kw, K, 1, NR);
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < NR; c++) {
            float s = red16v(_mm512_load_ps(park[r][c]));
            y[(long)(m0 + r) * ldy + n + c] = b ? s + b[n + c] : s;
        }
}

T5 void bf16_fwd_tile_avx512(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                             int K, int ldy) {
    for (int m = m0; m < m1; m += FM) {
        int rows = m1 - m < FM ? m1 - m : FM, n = n0;
        for (; n + 8 <= n1; n += 8) fwd_group(y, x, W, b, m, rows, n, K, ldy, 8);
        for (; n < n1; n++) fwd_group(y, x, W, b, m, rows, n, K, ldy, 1);
    }
}

// dx[m0..m1, k0..k1) += sum_n dy[m, n] W[n, k]. The tile (at most 64 rows x 128 columns,
// cpu_gemm_bf16.c) walks n in chunks of BN rows: each chunk's W panel is widened once into
// an fp32 buffer (in L1) and reused by every row of the tile, and each element's running
// sum t is parked in tacc between chunks. Parking a float does not change it, so the
// order is still one FMA chain over n = 0, 1, ..., N-1 per element, as the scalar path.
enum { BM = 64, BK = 128, BN = 64 };

// rows of the tile against VW vectors (16 columns each) of the widened panel; VW is a
// constant after inlining, so the accumulators stay in registers
T5 static inline __attribute__((always_inline)) void bwd_panel(float (*tacc)[BK], float (*wbuf)[BK], const float *dy, int m0,
                                                                int rows, int nb, int nn, int N, int v0, const int VW) {
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        __m512 a[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < VW; j++) a[i][j] = _mm512_load_ps(tacc[r + i] + 16 * (v0 + j));
        const float *d0 = dy + (long)(m0 + r) * N + nb;
        for (int n = 0; n < nn; n++) {
            __m512 w[4];
            for (int j = 0; j < VW; j++) w[j] = _mm512_load_ps(wbuf[n] + 16 * (v0 + j));
            for (int i = 0; i < 4; i++) {
                __m512 d = _mm512_set1_ps(d0[(long)i * N + n]);
                for (int j = 0; j < VW; j++) a[i][j] = _mm512_fmadd_ps(d, w[j], a[i][j]);
            }
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < VW; j++) _mm512_store_ps(tacc[r + i] + 16 * (v0 + j), a[i][j]);
    }
    for (; r < rows; r++) {
        __m512 a[4];
        for (int j = 0; j < VW; j++) a[j] = _mm512_load_ps(tacc[r] + 16 * (v0 + j));
        const float *d0 = dy + (long)(m0 + r) * N + nb;
        for (int n = 0; n < nn; n++) {
            __m512 d = _mm512_set1_ps(d0[n]);
            for (int j = 0; j < VW; j++) a[j] = _mm512_fmadd_ps(d, _mm512_load_ps(wbuf[n] + 16 * (v0 + j)), a[j]);
        }
        for (int j = 0; j < VW; j++) _mm512_store_ps(tacc[r] + 16 * (v0 + j), a[j]);
    }
}

T5 void bf16_bwd_tile_avx512(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N, int K) {
    if (m1 - m0 > BM || k1 - k0 > BK) {  // larger tiles than the driver makes: in pieces
        for (int m = m0; m < m1; m += BM)
            for (int k = k0; k < k1; k += BK)
                bf16_bwd_tile_avx512(dx, dy, W, m, m + BM < m1 ? m + BM : m1, k, k + BK < k1 ? k + BK : k1, N, K);
        return;
    }
    float tacc[BM][BK] __attribute__((aligned(64)));
    float wbuf[BN][BK] __attribute__((aligned(64)));
    const int rows = m1 - m0, kw = k1 - k0, nv = (kw + 15) / 16;  // 16-column vectors, the last masked
    const __mmask16 last = (__mmask16)(kw % 16 ? (1u << (kw % 16)) - 1u : 0xffffu);
    for (int r = 0; r < rows; r++) memset(tacc[r], 0, sizeof(float) * 16 * (size_t)nv);
    for (int nb = 0; nb < N; nb += BN) {
        const int nn = N - nb < BN ? N - nb : BN;
        for (int n = 0; n < nn; n++)
            for (int v = 0; v < nv; v++) {
                __mmask16 km = v == nv - 1 ? last : 0xffff;
                _mm512_store_ps(wbuf[n] + 16 * v, _mm512_castsi512_ps(_mm512_slli_epi32(
                    _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(km, W + (long)(nb + n) * K + k0 + 16 * v)), 16)));
            }
        int v0 = 0;
        for (; v0 + 4 <= nv; v0 += 4) bwd_panel(tacc, wbuf, dy, m0, rows, nb, nn, N, v0, 4);
        for (; v0 < nv; v0++) bwd_panel(tacc, wbuf, dy, m0, rows, nb, nn, N, v0, 1);
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) {
            __mmask16 km = v == nv - 1 ? last : 0xffff;
            float *p = dx + (long)(m0 + r) * K + k0 + 16 * v;
            _mm512_mask_storeu_ps(p, km, _mm512_add_ps(_mm512_maskz_loadu_ps(km, p), _mm512_load_ps(tacc[r] + 16 * v)));
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
