// kernels/cpu_gemm_bf16.h: private to cpu_gemm_bf16*.c. The tile functions of each
// instruction-set path of the bf16-weight GEMMs (see cpu_gemm_bf16.c for the contract
// and the summation order they share).
#pragma once
#include <stdint.h>

// y[m, n] = sum_k x[m, k] W[n, k] (+ b[n]) for m in [m0, m1), n in [n0, n1); ldy = row stride of y.
typedef void (*bf16_fwd_tile)(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0,
                              int n1, int K, int ldy);
// dx[m, k] += sum_n dy[m, n] W[n, k] for m in [m0, m1), k in [k0, k1).
typedef void (*bf16_bwd_tile)(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N,
                              int K);

void bf16_fwd_tile_scalar(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
void bf16_bwd_tile_scalar(float *, const float *, const uint16_t *, int, int, int, int, int, int);
void bf16_fwd_tile_avx2(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
void bf16_bwd_tile_avx2(float *, const float *, const uint16_t *, int, int, int, int, int, int);
void bf16_fwd_tile_avx512(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
void bf16_bwd_tile_avx512(float *, const float *, const uint16_t *, int, int, int, int, int, int);
void bf16_fwd_tile_dpbf16(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
void bf16_fwd_tile_amx(float *, const float *, const uint16_t *, const float *, int, int, int, int, int, int);
// AMX needs the kernel's permission for the tile data state once per process: 0 when granted.
int bf16_amx_enable(void);
// 1 when CPUID reports AMX-TILE and AMX-BF16 and Linux granted the tile data state
// (also used by the bf16 x bf16 GEMM, cpu_gemm_bb16_amx.c).
int bf16_amx_usable(void);
// What this CPU and this build (the x86-64-v3 build has no AVX-512) can run, for both
// bf16 GEMM families (cpu_gemm_bf16.c, cpu_gemm_bb16.c).
typedef struct { int avx2, avx512, dpbf16, amx; } bf16_isa;
bf16_isa bf16_isa_caps(void);

// bf16 bits -> fp32 (exact)
static inline float bf16_widen(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
