// kernels/cpu_swiglu.c: the SwiGLU gate h = silu(gate) * up, silu(g) = g * sigmoid(g).
// N*F is the largest elementwise tensor of the model, so the exp is vectorized
// (exp512_ps / exp256_ps, cpu_simd.h) rather than one expf call per element.
//
// Backward, with s = sigmoid(g):
//   dup   += dh * g * s
//   dgate += dh * up * s * (1 + g * (1 - s))      (d silu/dg = s + g s (1 - s))
//
// Three paths chosen at run time (cpu_isa.h): AVX-512, AVX2+FMA and plain C. The work is
// elementwise, so each element goes through the same operations in the same order on
// every path (the C path spells the FMA as fmaf and the exp as exp_poly, the one-lane
// copy of the vector exp): all three give the same bits.
#include "kernels/kernels.h"
#include "kernels/cpu_simd.h"

// Blocks of 4096 elements: big enough to amortize scheduling, small enough that the
// static split over threads stays even for any n.
#define SWIGLU_BLOCK 4096L

// Per element, on every path:
//   s = 1 / (1 + exp(0 - g)),  gs = g * s
//   fwd: h = gs * u
//   bwd: dsilu = fma(-gs, s, s + gs)    (= s (1 + g (1 - s)), one rounding for the product)
//        dgate += (dh * u) * dsilu,  dup += dh * gs

static void fwd_c(float *h, const float *gate, const float *up, long i0, long i1) {
    for (long i = i0; i < i1; i++) {
        float g = gate[i], s = 1.0f / (1.0f + exp_poly(0.0f - g));
        h[i] = (g * s) * up[i];
    }
}

static void bwd_c(float *dgate, float *dup, const float *dh, const float *gate, const float *up, long i0, long i1) {
    for (long i = i0; i < i1; i++) {
        float g = gate[i], s = 1.0f / (1.0f + exp_poly(0.0f - g)), gs = g * s;
        float dsilu = fmaf(-gs, s, s + gs);
        dgate[i] = dgate[i] + (dh[i] * up[i]) * dsilu;
        dup[i] = dup[i] + dh[i] * gs;
    }
}

ISA_AVX2 static inline __m256 sigmoid8(__m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp256_ps(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

ISA_AVX2 static void fwd_avx2(float *h, const float *gate, const float *up, long i0, long i1) {
    long i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
        _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), u));
    }
    if (i < i1) {
        __m256i m = tail_mask8((int)(i1 - i));
        __m256 g = _mm256_maskload_ps(gate + i, m), u = _mm256_maskload_ps(up + i, m);
        _mm256_maskstore_ps(h + i, m, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), u));
    }
}

ISA_AVX2 static inline void bwd8(__m256 d, __m256 g, __m256 u, __m256 *dg, __m256 *du) {
    __m256 s = sigmoid8(g), gs = _mm256_mul_ps(g, s);
    __m256 dsilu = _mm256_fnmadd_ps(gs, s, _mm256_add_ps(s, gs));
    *dg = _mm256_mul_ps(_mm256_mul_ps(d, u), dsilu);
    *du = _mm256_mul_ps(d, gs);
}

ISA_AVX2 static void bwd_avx2(float *dgate, float *dup, const float *dh, const float *gate, const float *up, long i0,
                              long i1) {
    long i = i0;
    __m256 dg, du;
    for (; i + 8 <= i1; i += 8) {
        bwd8(_mm256_loadu_ps(dh + i), _mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i), &dg, &du);
        _mm256_storeu_ps(dgate + i, _mm256_add_ps(_mm256_loadu_ps(dgate + i), dg));
        _mm256_storeu_ps(dup + i, _mm256_add_ps(_mm256_loadu_ps(dup + i), du));
    }
    if (i < i1) {
        __m256i m = tail_mask8((int)(i1 - i));
        bwd8(_mm256_maskload_ps(dh + i, m), _mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m),
             &dg, &du);
        _mm256_maskstore_ps(dgate + i, m, _mm256_add_ps(_mm256_maskload_ps(dgate + i, m), dg));
        _mm256_maskstore_ps(dup + i, m, _mm256_add_ps(_mm256_maskload_ps(dup + i, m), du));
    }
}

ISA_AVX512 static void fwd_avx512(float *h, const float *gate, const float *up, long i0, long i1) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask16((int)(i1 - i < 16 ? i1 - i : 16));
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 u = _mm512_maskz_loadu_ps(m, up + i);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp512_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_mul_ps(g, s), u));
    }
}

ISA_AVX512 static void bwd_avx512(float *dgate, float *dup, const float *dh, const float *gate, const float *up,
                                  long i0, long i1) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = i0; i < i1; i += 16) {
        __mmask16 m = tail_mask16((int)(i1 - i < 16 ? i1 - i : 16));
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 u = _mm512_maskz_loadu_ps(m, up + i);
        __m512 d = _mm512_maskz_loadu_ps(m, dh + i);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp512_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        __m512 gs = _mm512_mul_ps(g, s);
        __m512 dsilu = _mm512_fnmadd_ps(gs, s, _mm512_add_ps(s, gs));
        __m512 dg = _mm512_mul_ps(_mm512_mul_ps(d, u), dsilu);
        __m512 du = _mm512_mul_ps(d, gs);
        _mm512_mask_storeu_ps(dgate + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dgate + i), dg));
        _mm512_mask_storeu_ps(dup + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dup + i), du));
    }
}

void k_swiglu_fwd(float *h, const float *gate, const float *up, long n) {
    const int isa = k_isa();
    long nblk = (n + SWIGLU_BLOCK - 1) / SWIGLU_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long blk = 0; blk < nblk; blk++) {
        long i0 = blk * SWIGLU_BLOCK, i1 = i0 + SWIGLU_BLOCK < n ? i0 + SWIGLU_BLOCK : n;
        if (isa == K_ISA_AVX512) fwd_avx512(h, gate, up, i0, i1);
        else if (isa == K_ISA_AVX2) fwd_avx2(h, gate, up, i0, i1);
        else fwd_c(h, gate, up, i0, i1);
    }
}

void k_swiglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, long n) {
    const int isa = k_isa();
    long nblk = (n + SWIGLU_BLOCK - 1) / SWIGLU_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long blk = 0; blk < nblk; blk++) {
        long i0 = blk * SWIGLU_BLOCK, i1 = i0 + SWIGLU_BLOCK < n ? i0 + SWIGLU_BLOCK : n;
        if (isa == K_ISA_AVX512) bwd_avx512(dgate, dup, dh, gate, up, i0, i1);
        else if (isa == K_ISA_AVX2) bwd_avx2(dgate, dup, dh, gate, up, i0, i1);
        else bwd_c(dgate, dup, dh, gate, up, i0, i1);
    }
}
