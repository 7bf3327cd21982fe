// kernels/cpu_simd.h: private helpers shared by the CPU kernels: a vectorized exp
// (glibc's libmvec is only used under -ffast-math, which we do not build with) and
// small AVX-512 utilities. Every user keeps a plain-C path under #ifndef __AVX512F__
// so the library still builds on machines without AVX-512.
#pragma once
#include <math.h>

#ifdef __AVX512F__
#include <immintrin.h>

// exp(x) for 16 floats, Cephes expf polynomial: x = n ln2 + r, |r| <= ln2/2,
// exp(r) by a degree-6 polynomial (about 1-2 ulp), times 2^n via vscalefps.
// - The clamp keeps r finite for x = -inf (masked attention scores); x is the second
//   operand of min/max so that NaN inputs propagate instead of being clamped away.
// - Results below FLT_MIN (x < -87.33) are returned as exactly 0: such denormals are
//   numerically irrelevant next to the other terms of a softmax, and feeding
//   denormals into later FMAs costs microcode assists.
static inline __m512 exp512_ps(__m512 x0) {
    __m512 x = _mm512_min_ps(_mm512_set1_ps(88.72283f), x0);
    x = _mm512_max_ps(_mm512_set1_ps(-88.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    // "not less than" is true for NaN, so NaN survives the flush.
    __mmask16 keep = _mm512_cmp_ps_mask(x0, _mm512_set1_ps(-87.33f), _CMP_NLT_UQ);
    return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

// Mask selecting the first n (0..16) lanes.
static inline __mmask16 tail_mask16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}
#endif

// The scalar counterpart used by the non-AVX-512 paths and for tails where a
// vector would be overkill.
static inline float exp_scalar(float x) { return expf(x); }
