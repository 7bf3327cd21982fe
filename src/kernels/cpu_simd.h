// kernels/cpu_simd.h: private helpers shared by the CPU kernels: a vectorized exp
// (glibc's libmvec is only used under -ffast-math, which we do not build with), masks and
// horizontal sums, each for the AVX-512, AVX2 and plain-C paths (cpu_isa.h) with the same
// bits on every path.
#pragma once
#include <math.h>

#include "kernels/cpu_isa.h"

// exp(x), Cephes expf polynomial: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6
// polynomial (about 1-2 ulp), times 2^n. Three versions, lane for lane the same bits:
// 16 lanes (AVX-512: 2^n by vscalefps), 8 lanes (AVX2: 2^n as two exact powers of two,
// 2^h then 2^(n-h), so the one rounding is the last multiply's, as vscalefps's) and one
// (plain C: fmaf, rintf, the same two multiplies).
// - The clamp keeps r finite for x = -inf (masked attention scores); x is the second
//   operand of min/max so that NaN inputs propagate instead of being clamped away.
// - Results below FLT_MIN (x < -87.33) are returned as exactly 0: such denormals are
//   numerically irrelevant next to the other terms of a softmax, and feeding
//   denormals into later FMAs costs microcode assists.
#define EXP_HI 88.72283f
#define EXP_LO (-88.0f)
#define EXP_FLUSH (-87.33f)
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

ISA_AVX512 static inline __m512 exp512_ps(__m512 x0) {
    __m512 x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), x0);
    x = _mm512_max_ps(_mm512_set1_ps(EXP_LO), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    // "not less than" is true for NaN, so NaN survives the flush.
    __mmask16 keep = _mm512_cmp_ps_mask(x0, _mm512_set1_ps(EXP_FLUSH), _CMP_NLT_UQ);
    return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

ISA_AVX2 static inline __m256 exp256_ps(__m256 x0) {
    __m256 x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), x0);
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // n is in [-127, 128]: h = n >> 1 and n - h are in [-64, 64], both exact normal powers
    // of two, and p 2^h is exact (NaN: n's integer is garbage, p is NaN, so is the result)
    __m256i ni = _mm256_cvtps_epi32(n), h = _mm256_srai_epi32(ni, 1), bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    __m256 keep = _mm256_cmp_ps(x0, _mm256_set1_ps(EXP_FLUSH), _CMP_NLT_UQ);
    return _mm256_and_ps(keep, y);
}

// exp256_ps for one float (the plain-C paths and the tails of scalar loops)
static inline float exp_poly(float x0) {
    if (x0 != x0) return x0;
    float x = x0 < EXP_HI ? x0 : EXP_HI;
    x = x > EXP_LO ? x : EXP_LO;
    float n = rintf(x * EXP_LOG2E);
    float r = fmaf(-n, EXP_LN2_HI, x);
    r = fmaf(-n, EXP_LN2_LO, r);
    float p = EXP_P0;
    p = fmaf(p, r, EXP_P1);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    p = fmaf(p, r * r, r + 1.0f);
    int ni = (int)n, h = ni >> 1;
    float y = (p * ldexpf(1.0f, h)) * ldexpf(1.0f, ni - h);
    return x0 < EXP_FLUSH ? 0.0f : y;
}

// Mask selecting the first n (0..16) lanes.
ISA_AVX512 static inline __mmask16 tail_mask16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

// Lanes [0, n) all ones (n clamped to 0..8), for masked loads and stores.
ISA_AVX2 static inline __m256i tail_mask8(int n) {
    int k = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The sum of 16 lanes in one tree on every path: t8[l] = v[l] + v[l + 8], t4[l] = t8[l]
// + t8[l + 4], t2[l] = t4[l] + t4[l + 2], t2[0] + t2[1] (the order of k_dot_fixed and
// of GCC's _mm512_reduce_add_ps). AVX2 keeps lanes 0-7 in lo and 8-15 in hi.
ISA_AVX2 static inline float isa_hsum16_avx2(__m256 lo, __m256 hi) {
    __m256 v = _mm256_add_ps(lo, hi);
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    return _mm_cvtss_f32(_mm_add_ss(a, _mm_movehdup_ps(a)));
}
ISA_AVX512 static inline float isa_hsum16_avx512(__m512 s) {
    return isa_hsum16_avx2(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
}
static inline float isa_hsum16_c(const float v[16]) {
    float t8[8], t4[4], t2[2];
    for (int l = 0; l < 8; l++) t8[l] = v[l] + v[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    for (int l = 0; l < 2; l++) t2[l] = t4[l] + t4[l + 2];
    return t2[0] + t2[1];
}

// glibc's expf: the plain-C paths that need not match the vector paths' bits.
static inline float exp_scalar(float x) { return expf(x); }
