// kernels/cpu_geglu.c: Gemma's gated MLP, h = gelu_tanh(gate) * up, with PyTorch's
// tanh approximation of GELU (transformers' "gelu_pytorch_tanh"):
//   gelu_tanh(g) = 0.5 g (1 + tanh(u)),  u = sqrt(2/pi) (g + 0.044715 g^3)
// Backward, with t = tanh(u):
//   d gelu_tanh / dg = 0.5 (1 + t) + 0.5 g (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 g^2)
//   dgate += dh * up * gelu_tanh'(g),  dup += dh * gelu_tanh(g)
// Plain C with tanhf: the same code on AVX-512, AVX2 and generic builds (the MLP's
// GEMMs dominate; this elementwise pass is a few percent of a step).
#include "kernels/kernels.h"
#include <math.h>

#define GEGLU_BLOCK 4096L
#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_C 0.044715f

static inline float gelu_tanh(float g, float *t_out) {
    float t = tanhf(SQRT_2_OVER_PI * (g + GELU_C * g * g * g));
    if (t_out) *t_out = t;
    return 0.5f * g * (1.0f + t);
}

void k_geglu_fwd(float *h, const float *gate, const float *up, long n) {
    long nblk = (n + GEGLU_BLOCK - 1) / GEGLU_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long blk = 0; blk < nblk; blk++) {
        long i1 = (blk + 1) * GEGLU_BLOCK < n ? (blk + 1) * GEGLU_BLOCK : n;
        for (long i = blk * GEGLU_BLOCK; i < i1; i++) h[i] = gelu_tanh(gate[i], NULL) * up[i];
    }
}

void k_geglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, long n) {
    long nblk = (n + GEGLU_BLOCK - 1) / GEGLU_BLOCK;
    #pragma omp parallel for schedule(static)
    for (long blk = 0; blk < nblk; blk++) {
        long i1 = (blk + 1) * GEGLU_BLOCK < n ? (blk + 1) * GEGLU_BLOCK : n;
        for (long i = blk * GEGLU_BLOCK; i < i1; i++) {
            float g = gate[i], t;
            float act = gelu_tanh(g, &t);
            float dact = 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * g * g);
            dgate[i] += dh[i] * up[i] * dact;
            dup[i] += dh[i] * act;
        }
    }
}
