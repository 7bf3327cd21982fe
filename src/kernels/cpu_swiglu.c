// kernels/cpu_swiglu.c: the SwiGLU gate h = silu(gate) * up, silu(g) = g * sigmoid(g).
// N*F is the largest elementwise tensor of the model, so the exp is vectorized
// (AVX-512 exp512_ps) rather than one expf call per element.
//
// Backward, with s = sigmoid(g):
//   dup   += dh * g * s
//   dgate += dh * up * s * (1 + g * (1 - s))      (d silu/dg = s + g s (1 - s))
#include "kernels/kernels.h"
#include "kernels/cpu_simd.h"

// Blocks of 4096 elements: big enough to amortize scheduling, small enough that the
// static split over threads stays even for any n.
#define SWIGLU_BLOCK 4096L

void k_swiglu_fwd(float *h, const float *gate, const float *up, long n) {
    long nblk = (n + SWIGLU_BLOCK - 1) / SWIGLU_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long blk = 0; blk < nblk; blk++) {
        long i0 = blk * SWIGLU_BLOCK, i1 = i0 + SWIGLU_BLOCK < n ? i0 + SWIGLU_BLOCK : n;
        long i = i0;
#ifdef __AVX512F__
        const __m512 one = _mm512_set1_ps(1.0f);
        for (; i < i1; i += 16) {
            __mmask16 m = tail_mask16((int)(i1 - i));
            __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
            __m512 u = _mm512_maskz_loadu_ps(m, up + i);
            __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp512_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
            _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_mul_ps(g, s), u));
        }
#endif
        for (; i < i1; i++) {
            float s = 1.0f / (1.0f + exp_scalar(-gate[i]));
            h[i] = gate[i] * s * up[i];
        }
    }
}

void k_swiglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, long n) {
    long nblk = (n + SWIGLU_BLOCK - 1) / SWIGLU_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long blk = 0; blk < nblk; blk++) {
        long i0 = blk * SWIGLU_BLOCK, i1 = i0 + SWIGLU_BLOCK < n ? i0 + SWIGLU_BLOCK : n;
        long i = i0;
#ifdef __AVX512F__
        const __m512 one = _mm512_set1_ps(1.0f);
        for (; i < i1; i += 16) {
            __mmask16 m = tail_mask16((int)(i1 - i));
            __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
            __m512 u = _mm512_maskz_loadu_ps(m, up + i);
            __m512 d = _mm512_maskz_loadu_ps(m, dh + i);
            __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp512_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
            __m512 gs = _mm512_mul_ps(g, s);
            // dsilu = s * (1 + g (1 - s)) = s + gs - gs*s
            __m512 dsilu = _mm512_fnmadd_ps(gs, s, _mm512_add_ps(s, gs));
            __m512 dg = _mm512_mul_ps(_mm512_mul_ps(d, u), dsilu);
            __m512 du = _mm512_mul_ps(d, gs);
            _mm512_mask_storeu_ps(dgate + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dgate + i), dg));
            _mm512_mask_storeu_ps(dup + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dup + i), du));
        }
#endif
        for (; i < i1; i++) {
            float g = gate[i], s = 1.0f / (1.0f + exp_scalar(-g));
            dgate[i] += dh[i] * up[i] * s * (1.0f + g * (1.0f - s));
            dup[i] += dh[i] * g * s;
        }
    }
}
