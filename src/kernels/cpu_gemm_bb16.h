// kernels/cpu_gemm_bb16.h: private to cpu_gemm_bb16*.c. The tiles of each instruction-set
// path of the bf16 x bf16 linear (--bf16 training; cpu_gemm_bb16.c has the contract and
// the summation orders).
#pragma once
#include <stdint.h>

// y[m, n] (+)= sum_k bf(x[m, k]) W[n, k] (+ b[n]), m in [m0, m1), n in [n0, n1)
typedef void (*bb16_fwd_tile)(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0,
                              int n1, int K, int ldy);
// dx[m, k] += sum_n bf(dy[m, n]) W[n, k], m in [m0, m1), k in [k0, k1)
typedef void (*bb16_dx_tile)(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N,
                             int K);
// dW[n, k] += sum_m bf(dy[m, n]) bf(x[m, k]), n in [n0, n1), k in [k0, k1), all M rows
typedef void (*bb16_dw_tile)(float *dW, const float *dy, const float *x, int n0, int n1, int k0, int k1, int M, int N,
                             int K);

void bb16_fwd_tile_scalar(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
void bb16_dx_tile_scalar(float *, const float *, const uint16_t *, int, int, int, int, int, int);
void bb16_dw_tile_scalar(float *, const float *, const float *, int, int, int, int, int, int, int);
void bb16_fwd_tile_avx2(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
void bb16_dx_tile_avx2(float *, const float *, const uint16_t *, int, int, int, int, int, int);
void bb16_dw_tile_avx2(float *, const float *, const float *, int, int, int, int, int, int, int);
void bb16_fwd_tile_dp(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
void bb16_dx_tile_dp(float *, const float *, const uint16_t *, int, int, int, int, int, int);
void bb16_dw_tile_dp(float *, const float *, const float *, int, int, int, int, int, int, int);

// fp32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN): the rounding of
// st_f32_to_bf16 (model/safetensors.c), which kernels cannot include
static inline uint16_t bb16_round(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float bb16_widen(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
// f rounded to bf16, as fp32
static inline float bb16_r(float f) { return bb16_widen(bb16_round(f)); }
