// kernels/cpu_gemm_bb16_x86.c: the AVX2, AVX-512 and AVX-512-BF16 microkernels of the
// bf16 x bf16 GEMM (cpu_gemm_bb16.c has the contract, cpu_gemm_bb16.h the panel formats).
// Each keeps an mr x nr block of C in registers and runs every element's one chain:
// for each pair of reduced indices, the odd one's product, then the even one's, each
// added with one rounding (an FMA; vdpbf16ps does exactly these two steps, odd first).
// Compiled for any x86-64 build through target attributes; called only when the CPU has
// the instructions.
#include <immintrin.h>
#include "kernels/cpu_gemm_bb16.h"

#define T2 __attribute__((target("avx2,fma")))
#define T5 __attribute__((target("avx512f,avx512vl,avx512bw,avx2,fma")))
#define TB __attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma")))

// ---- AVX2 + FMA: 6 x 16, panels of bf16 values widened to fp32 (F32 format) ----

enum { A2_MR = 6, A2_NR = 16 };

// named accumulators: with an array gcc spilled half of them to the stack every step
#define A2_ROW(i) __m256 c##i##0, c##i##1;
#define A2_INIT(i)                                                                                 \
    c##i##0 = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(C + (i) * ldc);                         \
    c##i##1 = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(C + (i) * ldc + 8);
#define A2_STEP(i)                                                                                 \
    {                                                                                              \
        __m256 a = _mm256_broadcast_ss(A + (i));                                                   \
        c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);                                                 \
        c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);                                                 \
    }
#define A2_STORE(i) _mm256_storeu_ps(C + (i) * ldc, c##i##0), _mm256_storeu_ps(C + (i) * ldc + 8, c##i##1);
#define A2_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5)

T2 static void uk_avx2(int q0, int nq, const void *Av, const void *Bv, int Rp, float *C, long ldc, int zero) {
    const float *A = (const float *)Av + (long)q0 * A2_MR, *B = (const float *)Bv + (long)q0 * A2_NR;
    A2_ALL(A2_ROW)
    A2_ALL(A2_INIT)
    for (int q = 0; q < nq; q++, A += A2_MR, B += A2_NR) {
        __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
        A2_ALL(A2_STEP)
    }
    A2_ALL(A2_STORE)
}

const bb16_ops bb16_ops_avx2 = {A2_MR, A2_NR, 2, 256, A2_MR * 16, A2_NR * 8, BB16_F32, BB16_F32, uk_avx2, 0, 0};

// ---- AVX-512F FMA: 12 x 32, F32 panels (the same arithmetic as AVX2, wider) ----

enum { A5_MR = 12, A5_NR = 32 };

T5 static void uk_avx512(int q0, int nq, const void *Av, const void *Bv, int Rp, float *C, long ldc, int zero) {
    const float *A = (const float *)Av + (long)q0 * A5_MR, *B = (const float *)Bv + (long)q0 * A5_NR;
    __m512 c[A5_MR][2];
    for (int i = 0; i < A5_MR; i++)
        for (int v = 0; v < 2; v++) c[i][v] = zero ? _mm512_setzero_ps() : _mm512_loadu_ps(C + i * ldc + 16 * v);
    for (int q = 0; q < nq; q++, A += A5_MR, B += A5_NR) {
        __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);
        for (int i = 0; i < A5_MR; i++) {
            __m512 a = _mm512_set1_ps(A[i]);
            c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
        }
    }
    for (int i = 0; i < A5_MR; i++)
        for (int v = 0; v < 2; v++) _mm512_storeu_ps(C + i * ldc + 16 * v, c[i][v]);
}

const bb16_ops bb16_ops_avx512 = {A5_MR, A5_NR, 2, 256, A5_MR * 8, A5_NR * 8, BB16_F32, BB16_F32, uk_avx512, 0, 0};

// ---- AVX-512-BF16 (vdpbf16ps): 12 x 32, PAIRS panels (half the bytes of F32) ----

TB static void uk_dp(int q0, int nq, const void *Av, const void *Bv, int Rp, float *C, long ldc, int zero) {
    const uint32_t *A = (const uint32_t *)Av + (long)(q0 / 2) * A5_MR, *B = (const uint32_t *)Bv + (long)(q0 / 2) * A5_NR;
    __m512 c[A5_MR][2];
    for (int i = 0; i < A5_MR; i++)
        for (int v = 0; v < 2; v++) c[i][v] = zero ? _mm512_setzero_ps() : _mm512_loadu_ps(C + i * ldc + 16 * v);
    for (int p = 0; p < nq / 2; p++, A += A5_MR, B += A5_NR) {
        __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)B), b1 = (__m512bh)_mm512_load_si512((const void *)(B + 16));
        for (int i = 0; i < A5_MR; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)A[i]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], a, b1);
        }
    }
    for (int i = 0; i < A5_MR; i++)
        for (int v = 0; v < 2; v++) _mm512_storeu_ps(C + i * ldc + 16 * v, c[i][v]);
}

const bb16_ops bb16_ops_dp = {A5_MR, A5_NR, 2, 512, A5_MR * 8, A5_NR * 8, BB16_PAIRS, BB16_PAIRS, uk_dp, 0, 0};

// ---- few rows (decode): y = bf(x) W^T straight from W, no packing ----
// The sampler calls the forward with one row at a time; packing all of W for one row cost
// 14x the old kernel. Here 16 outputs j share a vector: each pair of W[j, 2p..2p+1] is
// gathered as one 32-bit word, split into its odd (high) and even (low) bf16, and every
// row's chain takes the odd product, then the even one: the contract's order, so the
// same bits as the packed paths. xr: the rows already rounded to bf16 (M x K).

T5 static inline __m512 ftz16(__m512i w) {  // a bf16 subnormal (exponent 0) -> signed zero
    __mmask16 normal = _mm512_test_epi32_mask(w, _mm512_set1_epi32(0x7f800000));
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(_mm512_and_si512(w, _mm512_set1_epi32((int)0x80000000u)), normal, w));
}

T5 void bb16_rows_avx512(float *y, const float *xr, const uint16_t *W, int M, int K, int N, int j0, int j1) {
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    for (int j = j0; j < j1; j += 16) {
        __mmask16 jm = (__mmask16)(j1 - j >= 16 ? 0xffffu : (1u << (j1 - j)) - 1u);
        __m512i idx = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(j), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                                         _mm512_set1_epi32(K));
        for (int m0 = 0; m0 < M; m0 += 8) {
            int mr = M - m0 < 8 ? M - m0 : 8;
            __m512 acc[8];
            for (int m = 0; m < 8; m++) acc[m] = _mm512_setzero_ps();
            int p = 0;
            for (; 2 * p + 1 < K; p++) {
                __m512i w = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), jm, _mm512_add_epi32(idx, _mm512_set1_epi32(2 * p)), W, 2);
                __m512 wo = ftz16(_mm512_and_si512(w, hi)), we = ftz16(_mm512_slli_epi32(w, 16));
                for (int m = 0; m < mr; m++) {
                    const float *xm = xr + (long)(m0 + m) * K;
                    acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(xm[2 * p + 1]), wo, acc[m]);
                    acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(xm[2 * p]), we, acc[m]);
                }
            }
            if (2 * p < K) {  // K odd: the padded odd product (0 x 0), then the last index
                float wl[16] = {0};
                for (int l = 0; l < 16 && j + l < j1; l++) wl[l] = bb16_widen(bb16_ftz(W[(long)(j + l) * K + 2 * p]));
                __m512 we = _mm512_loadu_ps(wl);
                for (int m = 0; m < mr; m++) {
                    acc[m] = _mm512_fmadd_ps(_mm512_setzero_ps(), _mm512_setzero_ps(), acc[m]);
                    acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(xr[(long)(m0 + m) * K + 2 * p]), we, acc[m]);
                }
            }
            for (int m = 0; m < mr; m++) _mm512_mask_storeu_ps(y + (long)(m0 + m) * N + j, jm, acc[m]);
        }
    }
}
