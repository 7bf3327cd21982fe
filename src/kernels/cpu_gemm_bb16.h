// kernels/cpu_gemm_bb16.h: private to cpu_gemm_bb16*.c. The packed-panel GEMM behind the
// bf16 x bf16 linear of --bf16 training (cpu_gemm_bb16.c has the contract and the one
// summation order every path follows): the operand view, the panel formats, the packer
// (cpu_gemm_bb16_pack.c) and each instruction-set path's microkernel.
#pragma once
#include <stddef.h>
#include <stdint.h>

// C[i, j] (+)= sum_r A(i, r) B(j, r): an operand is a view, element (i, r) at
// p[i * si + r * sr], fp32 (rounded to bf16 when packed) or bf16 bits (bf = 1).
typedef struct bb16_src {
    const void *p;
    int bf;
    long si, sr;
} bb16_src;

// Panel formats: L lanes (rows of A or columns of B) by Rp reduced indices (R padded with
// zeros to a multiple of the path's rq).
//   F32        float [q][L], position q holding r = q ^ 1 (each pair's odd index first)
//   PAIRS      uint32 [p][L], low half r = 2p, high half r = 2p + 1 (vdpbf16ps does the
//              high half first)
//   PAIRS_SWAP uint32 [p][L], low half r = 2p + 1, high half r = 2p (AMX B: the SDM's
//              TDPBF16PS does the low half first)
//   ROWS_SWAP  uint16 [L][Rp], pairs swapped as in PAIRS_SWAP (AMX A: tile rows)
enum { BB16_F32, BB16_PAIRS, BB16_PAIRS_SWAP, BB16_ROWS_SWAP };

// Pack lanes l0 .. l0 + L - 1 (those at or past `extent` are zeros) of s into dst.
void bb16_pack(void *dst, bb16_src s, int l0, int L, int extent, int R, int Rp, int fmt);
// All panels of an F32 operand with si == 1, their rows r0 .. r1 - 1 (r1 <= Rp; rows past
// R are zeros), panel_bytes apart.
void bb16_pack_rows(void *dst, size_t panel_bytes, bb16_src s, int L, int extent, int R, int r0, int r1);
// bytes of one panel
static inline size_t bb16_panel_bytes(int fmt, int L, int Rp) { return (size_t)L * Rp * (fmt == BB16_F32 ? 4 : 2); }

// One instruction-set path. uk: C[0..mr, 0..nr) (row stride ldc) continues each element's
// chain over the packed positions q0 .. q0 + nq - 1 of panels A (mr lanes) and B (nr
// lanes), starting from 0 when zero, else from C. begin / end (may be NULL) bracket a
// thread's run of microkernels (AMX: the tile configuration).
typedef struct bb16_ops {
    int mr, nr, rq, kc, mc, nc;  // kc, mc, nc: cache blocks, multiples of rq, mr, nr
    int fmt_a, fmt_b;
    void (*uk)(int q0, int nq, const void *A, const void *B, int Rp, float *C, long ldc, int zero);
    void (*begin)(void);
    void (*end)(void);
} bb16_ops;

// y[m, j] (m < M, j0 <= j < j1, row stride N) = the forward chain, from W directly and the
// rows xr already rounded to bf16 (AVX-512F; the same bits as the packed paths)
void bb16_rows_avx512(float *y, const float *xr, const uint16_t *W, int M, int K, int N, int j0, int j1);

// The packed GEMM of cpu_gemm_bb16.c on the given ops, C (+)= A B^T (tests: the AMX ops on
// a software model of the tile unit, tests/unit/test_amx_emu.c).
void bb16_gemm_on(const bb16_ops *o, float *C, long ldc, int I, int J, int R, bb16_src A, bb16_src B, int zero);

extern const bb16_ops bb16_ops_avx2, bb16_ops_avx512, bb16_ops_dp, bb16_ops_amx;
enum { BB16_MR_MAX = 32, BB16_NR_MAX = 32 };

// fp32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN), then a subnormal is
// flushed to a zero of its sign (what vdpbf16ps and AMX do to their inputs, done here for
// every path so that all give the same bits)
static inline uint16_t bb16_round(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    uint16_t h = (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
    return (h & 0x7f80u) ? h : (uint16_t)(h & 0x8000u);
}
static inline uint16_t bb16_ftz(uint16_t h) { return (h & 0x7f80u) ? h : (uint16_t)(h & 0x8000u); }
static inline float bb16_widen(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
