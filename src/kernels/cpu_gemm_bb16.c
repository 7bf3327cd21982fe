// kernels/cpu_gemm_bb16.c: nn.Linear in bf16 x bf16 with fp32 accumulation, the three
// products of --bf16 mixed-precision training (the weight is a bf16 copy of the fp32
// master; activations and output gradients are rounded to bf16, nearest even, as they
// are read; every sum and every output is fp32):
//   forward   y  = bf(x) W^T (+ b)        k_linear_bb16_fwd
//   backward  dx += bf(dy) W,  dW += bf(dy)^T bf(x),  db += sum_rows dy (fp32, exact dy)
//
// Paths, chosen once at run time (k_bb16_set_path / TEMPER_BB16_GEMM=name):
// - "avx512-bf16" (vdpbf16ps): each instruction adds two exact bf16 products per lane to
//   an fp32 accumulator (DAZ/FTZ: denormal inputs and outputs are flushed, as the
//   instruction does; vcvtne2ps2bf16 rounds the fp32 activations). Orders:
//     forward  y[m,n]: 16 lanes, lane j sums the pairs k = 32i+2j, 32i+2j+1 for i = 0, 1, ...
//              (K padded with zeros), then + 8 apart, + 4, + 2, + 1, then + b[n];
//     dx[m,k] += t, t: the pairs n = 2p, 2p+1 for p = 0, 1, ... (N padded with a zero row);
//     dW[n,k] += t, t: the pairs m = 2p, 2p+1 for p = 0, 1, ... (M padded with a zero row).
// - "avx2" (AVX2 + FMA: bf16 widened to fp32, exact, then fp32 FMAs), and "scalar" (the
//   same order spelled out; the same bits as avx2):
//     forward  y[m,n]: 8 partial sums, lane j sums k = j, j+8, ... in increasing k (FMA),
//              then + 4 apart, + 2, + 1, then + b[n];
//     dx[m,k] += t, t = sum over n = 0, 1, ..., N-1 (FMA from 0);
//     dW[n,k] += t, t = sum over m = 0, 1, ..., M-1 (FMA from 0).
// Every order depends on the shape's reduced dimension only: never on the row count of
// the call (forward, dx), the tile an element falls in or the thread count. Tiles split
// the output by fixed sizes and each output element is computed by one thread.
// No AMX path yet (issue 15): on an AMX machine the AVX-512-BF16 path runs.
// Automatic choice: avx512-bf16 when the CPU has it and the build does not target
// AVX2-only (the x86-64-v3 build never takes it, so it tests the AVX2 path on any
// machine), else avx2, else scalar. The choice is reported once on stderr.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "kernels/cpu_gemm_bb16.h"
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"

// ---- scalar tiles: the avx2 order spelled out ----

void bb16_fwd_tile_scalar(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                          int K, int ldy) {
    for (int m = m0; m < m1; m++)
        for (int n = n0; n < n1; n++) {
            const float *xr = x + (long)m * K;
            const uint16_t *wr = W + (long)n * K;
            float s[8] = {0};
            for (int k0 = 0; k0 < K; k0 += 8)
                for (int j = 0; j < 8 && k0 + j < K; j++) s[j] = fmaf(bb16_r(xr[k0 + j]), bb16_widen(wr[k0 + j]), s[j]);
            float r4[4], r2[2];
            for (int j = 0; j < 4; j++) r4[j] = s[j] + s[j + 4];
            for (int j = 0; j < 2; j++) r2[j] = r4[j] + r4[j + 2];
            float r = r2[0] + r2[1];
            y[(long)m * ldy + n] = b ? r + b[n] : r;
        }
}

void bb16_dx_tile_scalar(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N, int K) {
    for (int m = m0; m < m1; m++)
        for (int k = k0; k < k1; k++) {
            float t = 0.0f;
            for (int n = 0; n < N; n++) t = fmaf(bb16_r(dy[(long)m * N + n]), bb16_widen(W[(long)n * K + k]), t);
            dx[(long)m * K + k] += t;
        }
}

void bb16_dw_tile_scalar(float *dW, const float *dy, const float *x, int n0, int n1, int k0, int k1, int M, int N,
                         int K) {
    for (int n = n0; n < n1; n++)
        for (int k = k0; k < k1; k++) {
            float t = 0.0f;
            for (int m = 0; m < M; m++) t = fmaf(bb16_r(dy[(long)m * N + n]), bb16_r(x[(long)m * K + k]), t);
            dW[(long)n * K + k] += t;
        }
}

// ---- dispatch ----

static const char *path_names[] = {"auto", "scalar", "avx2", "avx512-bf16"};

const char *k_bb16_path_name(int path) { return path >= 0 && path <= K_BB16_DPBF16 ? path_names[path] : "?"; }

int k_bb16_path_available(int path) {
#if defined(__AVX2__) && !defined(__AVX512F__)
    const int cap512 = 0;  // the x86-64-v3 build: the AVX2 path, whatever the CPU
#else
    const int cap512 = 1;
#endif
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    switch (path) {
    case K_BB16_SCALAR: return 1;
    case K_BB16_AVX2: return avx2;
    case K_BB16_DPBF16:
        return cap512 && avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
    default: return 0;
    }
}

static int chosen = -1, reported;

int k_bb16_set_path(int path) {
    if (path == K_BB16_AUTO) { chosen = -1; return 0; }
    if (!k_bb16_path_available(path)) return -1;
    chosen = path;
    return 0;
}

int k_bb16_path(void) {
    if (chosen < 0) {
        const char *env = getenv("TEMPER_BB16_GEMM");
        for (int p = K_BB16_SCALAR; env && chosen < 0 && p <= K_BB16_DPBF16; p++)
            if (!strcmp(env, path_names[p]) && k_bb16_path_available(p)) chosen = p;
        if (chosen < 0)
            chosen = k_bb16_path_available(K_BB16_DPBF16) ? K_BB16_DPBF16
                     : k_bb16_path_available(K_BB16_AVX2) ? K_BB16_AVX2 : K_BB16_SCALAR;
    }
    return chosen;
}

static const char *const report_names[] = {"auto", "scalar C", "AVX2 (bf16 widened to fp32, FMA)", "AVX-512-BF16"};

const char *k_bb16_report(void) {
    int p = k_bb16_path();
    if (!reported) {
        reported = 1;
        fprintf(stderr, "temper: bf16 GEMM on %s\n", report_names[p]);
    }
    return path_names[p];
}

// ---- drivers: fixed tiles over the OpenMP threads ----

enum { FWD_MB = 64, FWD_NB = 64, DX_MB = 64, DX_KB = 128, DW_NB = 32, DW_KB = 128 };

void k_linear_bb16_fwd(float *y, const float *x, const uint16_t *W, const float *b, int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    int path = k_bb16_path();
    bb16_fwd_tile f = path == K_BB16_DPBF16 ? bb16_fwd_tile_dp : path == K_BB16_AVX2 ? bb16_fwd_tile_avx2
                                                                                      : bb16_fwd_tile_scalar;
    int nm = (N + FWD_MB - 1) / FWD_MB, nn = (out + FWD_NB - 1) / FWD_NB;
    #pragma omp parallel for schedule(static) if ((double)N * out * in > 5e5)
    for (int t = 0; t < nm * nn; t++) {
        int bn = t / nm, bm = t % nm;
        int m0 = bm * FWD_MB, m1 = m0 + FWD_MB < N ? m0 + FWD_MB : N;
        int n0 = bn * FWD_NB, n1 = n0 + FWD_NB < out ? n0 + FWD_NB : out;
        f(y, x, W, b, m0, m1, n0, n1, in, out);
    }
}

void k_linear_bb16_bwd(float *dx, float *dW, float *db, const float *dy, const float *x, const uint16_t *W, int N,
                       int in, int out) {
    if (N <= 0 || in <= 0 || out <= 0) return;
    int path = k_bb16_path();
    if (dx) {
        bb16_dx_tile f = path == K_BB16_DPBF16 ? bb16_dx_tile_dp : path == K_BB16_AVX2 ? bb16_dx_tile_avx2
                                                                                        : bb16_dx_tile_scalar;
        int nm = (N + DX_MB - 1) / DX_MB, nk = (in + DX_KB - 1) / DX_KB;
        #pragma omp parallel for schedule(static) if ((double)N * out * in > 5e5)
        for (int t = 0; t < nm * nk; t++) {
            int bk = t / nm, bm = t % nm;
            int m0 = bm * DX_MB, m1 = m0 + DX_MB < N ? m0 + DX_MB : N;
            int k0 = bk * DX_KB, k1 = k0 + DX_KB < in ? k0 + DX_KB : in;
            f(dx, dy, W, m0, m1, k0, k1, out, in);
        }
    }
    if (dW) {
        bb16_dw_tile f = path == K_BB16_DPBF16 ? bb16_dw_tile_dp : path == K_BB16_AVX2 ? bb16_dw_tile_avx2
                                                                                        : bb16_dw_tile_scalar;
        int nn = (out + DW_NB - 1) / DW_NB, nk = (in + DW_KB - 1) / DW_KB;
        #pragma omp parallel for schedule(static) if ((double)N * out * in > 5e5)
        for (int t = 0; t < nn * nk; t++) {
            int bn = t / nk, bk = t % nk;
            int n0 = bn * DW_NB, n1 = n0 + DW_NB < out ? n0 + DW_NB : out;
            int k0 = bk * DW_KB, k1 = k0 + DW_KB < in ? k0 + DW_KB : in;
            f(dW, dy, x, n0, n1, k0, k1, N, out, in);
        }
    }
    if (db) k_linear_bwd(NULL, NULL, db, dy, x, NULL, N, in, out);
}
