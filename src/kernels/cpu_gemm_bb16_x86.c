// kernels/cpu_gemm_bb16_x86.c: the AVX2 and AVX-512-BF16 tiles of the bf16 x bf16 linear
// (cpu_gemm_bb16.c has the contract and the orders). Compiled for any x86-64 build
// through target attributes; only called when the CPU has the instructions.
#include <immintrin.h>
#include <string.h>
#include "kernels/cpu_gemm_bb16.h"

#define T2 __attribute__((target("avx2,fma")))
#define TB __attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma")))
#define INL inline __attribute__((always_inline))

// ---- AVX2 + FMA ----

// fp32 rounded to bf16 (nearest even; NaN quiet), as fp32: bb16_r on 8 lanes
T2 static INL __m256 round8(__m256 v) {
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256i u = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), hi);
    __m256i q = _mm256_or_si256(_mm256_and_si256(u, hi), _mm256_set1_epi32(0x00400000));
    return _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}
T2 static INL __m256 widen8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

T2 static INL void fwd2(float *y, const float *x, const uint16_t *W, const float *b, int m, int n, int K, int ldy,
                        const int MR, const int NR) {
    __m256 acc[2][4];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) acc[r][c] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 w[4];
        for (int c = 0; c < NR; c++) w[c] = widen8(W + (long)(n + c) * K + k);
        for (int r = 0; r < MR; r++) {
            __m256 xv = round8(_mm256_loadu_ps(x + (long)(m + r) * K + k));
            for (int c = 0; c < NR; c++) acc[r][c] = _mm256_fmadd_ps(xv, w[c], acc[r][c]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) {
            float s[8];
            _mm256_storeu_ps(s, acc[r][c]);
            for (int j = 0; k + j < K; j++)  // the tail: lane j, as the scalar path
                s[j] = __builtin_fmaf(bb16_r(x[(long)(m + r) * K + k + j]), bb16_widen(W[(long)(n + c) * K + k + j]), s[j]);
            float r4[4], r2[2];
            for (int j = 0; j < 4; j++) r4[j] = s[j] + s[j + 4];
            for (int j = 0; j < 2; j++) r2[j] = r4[j] + r4[j + 2];
            float t = r2[0] + r2[1];
            y[(long)(m + r) * ldy + n + c] = b ? t + b[n + c] : t;
        }
}

T2 void bb16_fwd_tile_avx2(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                           int K, int ldy) {
    int m = m0;
    for (; m + 2 <= m1; m += 2) {
        int n = n0;
        for (; n + 4 <= n1; n += 4) fwd2(y, x, W, b, m, n, K, ldy, 2, 4);
        for (; n < n1; n++) fwd2(y, x, W, b, m, n, K, ldy, 2, 1);
    }
    for (; m < m1; m++) {
        int n = n0;
        for (; n + 4 <= n1; n += 4) fwd2(y, x, W, b, m, n, K, ldy, 1, 4);
        for (; n < n1; n++) fwd2(y, x, W, b, m, n, K, ldy, 1, 1);
    }
}

// dx rows m..m+MR, columns k..k+16: t = sum over n in order
T2 static INL void dx2(float *dx, const float *dy, const uint16_t *W, int m, int k, int N, int K, const int MR) {
    __m256 acc[4][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int n = 0; n < N; n++) {
        __m256 w0 = widen8(W + (long)n * K + k), w1 = widen8(W + (long)n * K + k + 8);
        for (int r = 0; r < MR; r++) {
            __m256 a = _mm256_set1_ps(bb16_r(dy[(long)(m + r) * N + n]));
            acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *d = dx + (long)(m + r) * K + k;
        _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[r][0]));
        _mm256_storeu_ps(d + 8, _mm256_add_ps(_mm256_loadu_ps(d + 8), acc[r][1]));
    }
}

T2 void bb16_dx_tile_avx2(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N, int K) {
    int k = k0;
    for (; k + 16 <= k1; k += 16) {
        int m = m0;
        for (; m + 4 <= m1; m += 4) dx2(dx, dy, W, m, k, N, K, 4);
        for (; m < m1; m++) dx2(dx, dy, W, m, k, N, K, 1);
    }
    if (k < k1) bb16_dx_tile_scalar(dx, dy, W, m0, m1, k, k1, N, K);
}

// dW rows n..n+NR, columns k..k+16: t = sum over m in order
T2 static INL void dw2(float *dW, const float *dy, const float *x, int n, int k, int M, int N, int K, const int NR) {
    __m256 acc[4][2];
    for (int c = 0; c < NR; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
    for (int m = 0; m < M; m++) {
        __m256 x0 = round8(_mm256_loadu_ps(x + (long)m * K + k)), x1 = round8(_mm256_loadu_ps(x + (long)m * K + k + 8));
        for (int c = 0; c < NR; c++) {
            __m256 a = _mm256_set1_ps(bb16_r(dy[(long)m * N + n + c]));
            acc[c][0] = _mm256_fmadd_ps(a, x0, acc[c][0]);
            acc[c][1] = _mm256_fmadd_ps(a, x1, acc[c][1]);
        }
    }
    for (int c = 0; c < NR; c++) {
        float *d = dW + (long)(n + c) * K + k;
        _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[c][0]));
        _mm256_storeu_ps(d + 8, _mm256_add_ps(_mm256_loadu_ps(d + 8), acc[c][1]));
    }
}

T2 void bb16_dw_tile_avx2(float *dW, const float *dy, const float *x, int n0, int n1, int k0, int k1, int M, int N,
                          int K) {
    int k = k0;
    for (; k + 16 <= k1; k += 16) {
        int n = n0;
        for (; n + 4 <= n1; n += 4) dw2(dW, dy, x, n, k, M, N, K, 4);
        for (; n < n1; n++) dw2(dW, dy, x, n, k, M, N, K, 1);
    }
    if (k < k1) bb16_dw_tile_scalar(dW, dy, x, n0, n1, k, k1, M, N, K);
}

// ---- AVX-512-BF16 (vdpbf16ps) ----

static INL __mmask16 mask16(int left) { return left >= 16 ? (__mmask16)0xffffu : left <= 0 ? 0 : (__mmask16)((1u << left) - 1u); }
static INL __mmask32 mask32(int left) { return left >= 32 ? (__mmask32)0xffffffffu : left <= 0 ? 0 : (__mmask32)((1u << left) - 1u); }

// 32 floats from p (the first `left` of them; zeros past) rounded to bf16
TB static INL __m512bh cvt32(const float *p, int left) {
    __m512 lo = _mm512_maskz_loadu_ps(mask16(left), p), hi = _mm512_maskz_loadu_ps(mask16(left - 16), p + 16);
    return _mm512_cvtne2ps_pbh(hi, lo);
}
// (a[i], b[i]) pairs, i = 0..15, from v = [a (16 words) | b (16 words)]
TB static INL __m512i pairs(__m512i v) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                         5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, v);
}
TB static INL float red16v(__m512 s) {
    __m256 lo = _mm512_castps512_ps256(s), hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
    __m256 v = _mm256_add_ps(lo, hi);
    __m128 r4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 r2 = _mm_add_ps(r4, _mm_movehl_ps(r4, r4));
    return _mm_cvtss_f32(_mm_add_ss(r2, _mm_movehdup_ps(r2)));
}

TB static INL void fwdp(float *y, const float *x, const uint16_t *W, const float *b, int m, int n, int K, int ldy,
                        const int MR, const int NR) {
    __m512 acc[4][4];
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) acc[r][c] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 32) {
        __mmask32 wm = mask32(K - k);
        __m512bh w[4];
        for (int c = 0; c < NR; c++) w[c] = (__m512bh)_mm512_maskz_loadu_epi16(wm, W + (long)(n + c) * K + k);
        for (int r = 0; r < MR; r++) {
            __m512bh xv = cvt32(x + (long)(m + r) * K + k, K - k);
            for (int c = 0; c < NR; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xv, w[c]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) {
            float t = red16v(acc[r][c]);
            y[(long)(m + r) * ldy + n + c] = b ? t + b[n + c] : t;
        }
}

TB void bb16_fwd_tile_dp(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                         int K, int ldy) {
    int m = m0;
    for (; m + 4 <= m1; m += 4) {
        int n = n0;
        for (; n + 4 <= n1; n += 4) fwdp(y, x, W, b, m, n, K, ldy, 4, 4);
        for (; n < n1; n++) fwdp(y, x, W, b, m, n, K, ldy, 4, 1);
    }
    for (; m < m1; m++) {
        int n = n0;
        for (; n + 4 <= n1; n += 4) fwdp(y, x, W, b, m, n, K, ldy, 1, 4);
        for (; n < n1; n++) fwdp(y, x, W, b, m, n, K, ldy, 1, 1);
    }
}

enum { NC = 256 };  // dy columns rounded to bf16 per chunk (even: the pairs stay n = 2p, 2p+1)

// dx rows m..m+MR, columns k..k+16*KV (kw of them valid): pairs of n in order
TB static INL void dxp(float *dx, const float *dy, const uint16_t *W, int m, int k, int kw, int N, int K, const int MR) {
    enum { KV = 4 };
    __m512 acc[6][KV];
    uint32_t dyb[6][NC / 2] __attribute__((aligned(64)));
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < KV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int nc = 0; nc < N; nc += NC) {
        int nw = N - nc < NC ? N - nc : NC;
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < nw; j += 32)
                _mm512_store_si512((__m512i *)&dyb[r][j / 2], (__m512i)cvt32(dy + (long)(m + r) * N + nc + j, nw - j));
        for (int p = 0; p < (nw + 1) / 2; p++) {
            int n = nc + 2 * p;
            const uint16_t *w0 = W + (long)n * K + k, *w1 = w0 + K;
            int has1 = n + 1 < N;
            __m512bh w[KV];
            for (int v = 0; v < KV; v++) {
                __mmask16 km = mask16(kw - 16 * v);
                __m256i a = _mm256_maskz_loadu_epi16(km, w0 + 16 * v);
                __m256i c = has1 ? _mm256_maskz_loadu_epi16(km, w1 + 16 * v) : _mm256_setzero_si256();
                w[v] = (__m512bh)pairs(_mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1));
            }
            for (int r = 0; r < MR; r++) {
                __m512bh a = (__m512bh)_mm512_set1_epi32((int)dyb[r][p]);
                for (int v = 0; v < KV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, w[v]);
            }
        }
    }
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < KV; v++) {
            __mmask16 km = mask16(kw - 16 * v);
            float *d = dx + (long)(m + r) * K + k + 16 * v;
            _mm512_mask_storeu_ps(d, km, _mm512_add_ps(_mm512_maskz_loadu_ps(km, d), acc[r][v]));
        }
}

TB void bb16_dx_tile_dp(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N, int K) {
    for (int k = k0; k < k1; k += 64) {
        int kw = k1 - k < 64 ? k1 - k : 64, m = m0;
        for (; m + 6 <= m1; m += 6) dxp(dx, dy, W, m, k, kw, N, K, 6);
        for (; m + 2 <= m1; m += 2) dxp(dx, dy, W, m, k, kw, N, K, 2);
        for (; m < m1; m++) dxp(dx, dy, W, m, k, kw, N, K, 1);
    }
}

// dW tile: x[:, k0..k1) and dy[:, n0..n1) are packed, 64 rows at a time, into pairs of
// rows (m = 2p, 2p+1: the two bf16 of one 32-bit word, ready for vdpbf16ps), and the tile's
// sums are parked in `park` between row chunks (parking does not change a value: each
// element still sums the pairs p = 0, 1, ... in order, as the contract says).
enum { DW_MC = 64, DW_NMAX = 32, DW_KMAX = 128 };

TB static INL void dw_pairs(uint32_t *dst, const float *r0, const float *r1, int w) {
    for (int v = 0; v < w; v += 16) {
        __mmask16 km = mask16(w - v);
        __m512 a = _mm512_maskz_loadu_ps(km, r0 + v), c = r1 ? _mm512_maskz_loadu_ps(km, r1 + v) : _mm512_setzero_ps();
        _mm512_store_si512((__m512i *)(dst + v), pairs((__m512i)_mm512_cvtne2ps_pbh(c, a)));
    }
}

TB static INL void dw_block(float (*park)[DW_KMAX], const uint32_t (*xp)[DW_KMAX], const uint32_t (*dp)[DW_NMAX], int np,
                            int c0, int kv0, const int NR) {
    __m512 acc[8][2];
    for (int c = 0; c < NR; c++)
        for (int v = 0; v < 2; v++) acc[c][v] = _mm512_load_ps(park[c0 + c] + kv0 + 16 * v);
    for (int p = 0; p < np; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512((const __m512i *)(xp[p] + kv0));
        __m512bh b1 = (__m512bh)_mm512_load_si512((const __m512i *)(xp[p] + kv0 + 16));
        for (int c = 0; c < NR; c++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)dp[p][c0 + c]);
            acc[c][0] = _mm512_dpbf16_ps(acc[c][0], a, b0);
            acc[c][1] = _mm512_dpbf16_ps(acc[c][1], a, b1);
        }
    }
    for (int c = 0; c < NR; c++)
        for (int v = 0; v < 2; v++) _mm512_store_ps(park[c0 + c] + kv0 + 16 * v, acc[c][v]);
}

TB void bb16_dw_tile_dp(float *dW, const float *dy, const float *x, int n0, int n1, int k0, int k1, int M, int N, int K) {
    float park[DW_NMAX][DW_KMAX] __attribute__((aligned(64)));
    uint32_t xp[DW_MC / 2][DW_KMAX] __attribute__((aligned(64)));
    uint32_t dp[DW_MC / 2][DW_NMAX] __attribute__((aligned(64)));
    const int nw = n1 - n0, kw = k1 - k0, kv = (kw + 31) / 32 * 32;  // the caller's tiles: nw <= 32, kw <= 128
    memset(park, 0, sizeof park);
    memset(xp, 0, sizeof xp);  // columns past kw stay 0 (masked loads), so the padded sums are 0
    for (int mc = 0; mc < M; mc += DW_MC) {
        int rows = M - mc < DW_MC ? M - mc : DW_MC, np = (rows + 1) / 2;
        for (int p = 0; p < np; p++) {
            int m = mc + 2 * p, has1 = m + 1 < M;
            dw_pairs(xp[p], x + (long)m * K + k0, has1 ? x + (long)(m + 1) * K + k0 : NULL, kw);
            dw_pairs(dp[p], dy + (long)m * N + n0, has1 ? dy + (long)(m + 1) * N + n0 : NULL, nw);
        }
        for (int c = 0; c < nw;) {
            int r = nw - c >= 8 ? 8 : nw - c >= 4 ? 4 : 1;
            for (int k = 0; k < kv; k += 32) {
                if (r == 8) dw_block(park, (const uint32_t (*)[DW_KMAX])xp, (const uint32_t (*)[DW_NMAX])dp, np, c, k, 8);
                else if (r == 4) dw_block(park, (const uint32_t (*)[DW_KMAX])xp, (const uint32_t (*)[DW_NMAX])dp, np, c, k, 4);
                else dw_block(park, (const uint32_t (*)[DW_KMAX])xp, (const uint32_t (*)[DW_NMAX])dp, np, c, k, 1);
            }
            c += r;
        }
    }
    for (int c = 0; c < nw; c++)
        for (int v = 0; v < kw; v += 16) {
            __mmask16 km = mask16(kw - v);
            float *d = dW + (long)(n0 + c) * K + k0 + v;
            _mm512_mask_storeu_ps(d, km, _mm512_add_ps(_mm512_maskz_loadu_ps(km, d), _mm512_load_ps(park[c] + v)));
        }
}
