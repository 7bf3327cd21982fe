// kernels/cpu_gemm_bf16.c: nn.Linear with bf16 weights read in place (a frozen base
// under LoRA: the weight is the safetensors file's own bytes, never converted to fp32).
// Activations and accumulation are fp32.
//
// Paths, chosen once at run time (k_bf16_set_path / TEMPER_BF16_GEMM=name override):
// - "avx512", "avx2", "scalar": the exact "widen" paths. W's bf16 is widened to fp32
//   (a 16-bit shift: exact) and multiplied by the fp32 x in fp32 FMAs, so each product
//   is the exact product of x and the bf16 weight, rounded once with the sum, as in an
//   fp32 GEMM on the fp32 conversion of the file. The three paths use one summation
//   order and give the same bits:
//     forward  y[m,n]: 16 partial sums, s[j] += x[m,k] W[n,k] for k = j, j+16, j+32, ...
//              in increasing k (FMA; a K that is not a multiple of 16 is padded with
//              zeros), then s[j] + s[j+8] (8 sums), + 4 apart, + 2 apart, + 1 apart, then
//              + b[n];
//     backward dx[m,k] += t, t = sum over n = 0, 1, ..., N-1 of dy[m,n] W[n,k] (FMA from 0).
//   The order depends on K (forward) or N (backward) only: never on the row count, the
//   tile an element falls in, or the thread count; tiles split M and N (K and M in the
//   backward) by fixed sizes, and every element is computed by one thread.
// - "dpbf16" (forward only, AVX-512-BF16 vdpbf16ps): x is rounded to bf16 (nearest even)
//   first, then pairs of bf16 products are summed in fp32. Faster, but x loses its low 16
//   bits: relative error ~2^-9 per product (test_gemm_bf16 states the bound it checks).
//   Not used unless asked for; the backward of this path is the exact one.
// - "amx" (forward only, AMX-BF16 _tile_dpbf16ps, x rounded to bf16 as for dpbf16): never
//   run on silicon (no development machine exposes AMX); on a software model of the tile
//   unit (test_amx_emu.c) each element is one chain in k order. It is only chosen when
//   asked for by name on a CPU that reports amx-bf16, after the kernel granted the tile
//   state (arch_prctl).
// Automatic choice: the widest exact path the CPU has, capped by the kernels' run-time
// path k_isa() (TEMPER_ISA=avx2 never picks AVX-512 paths, so it tests the AVX2 one on any
// machine).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu_gemm_bf16.h"
#include "kernels/cpu_isa.h"
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"

// ---- scalar paths: the reference order, spelled out ----

static float red16(const float s[16]) {
    float r8[8], r4[4], r2[2];
    for (int j = 0; j < 8; j++) r8[j] = s[j] + s[j + 8];
    for (int j = 0; j < 4; j++) r4[j] = r8[j] + r8[j + 4];
    for (int j = 0; j < 2; j++) r2[j] = r4[j] + r4[j + 2];
    return r2[0] + r2[1];
}

void bf16_fwd_tile_scalar(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                          int K, int ldy) {
    for (int m = m0; m < m1; m++)
        for (int n = n0; n < n1; n++) {
            const float *xr = x + (long)m * K;
            const uint16_t *wr = W + (long)n * K;
            float s[16] = {0};
            for (int k0 = 0; k0 < K; k0 += 16)
                for (int j = 0; j < 16; j++) {
                    int k = k0 + j;
                    s[j] = k < K ? fmaf(xr[k], bf16_widen(wr[k]), s[j]) : fmaf(0.0f, 0.0f, s[j]);
                }
            float r = red16(s);
            y[(long)m * ldy + n] = b ? r + b[n] : r;
        }
}

void bf16_bwd_tile_scalar(float *dx, const float *dy, const uint16_t *W, int m0, int m1, int k0, int k1, int N, int K) {
    for (int m = m0; m < m1; m++)
        for (int k = k0; k < k1; k++) {
            float t = 0.0f;
            for (int n = 0; n < N; n++) t = fmaf(dy[(long)m * N + n], bf16_widen(W[(long)n * K + k]), t);
            dx[(long)m * K + k] += t;
        }
}

// ---- dispatch ----

static const char *path_names[] = {"auto", "scalar", "avx2", "avx512", "dpbf16", "amx"};

const char *k_bf16_path_name(int path) { return path >= 0 && path <= K_BF16_AMX ? path_names[path] : "?"; }

bf16_isa bf16_isa_caps(void) {
    // The kernels' run-time path (k_isa(): TEMPER_ISA=avx2 runs the AVX2 paths on an
    // AVX-512 machine) caps the automatic and the forced choice alike.
    const int cap512 = k_isa() >= K_ISA_AVX512;
    __builtin_cpu_init();
    bf16_isa c = {0};
    c.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    c.avx512 = cap512 && c.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw");
    c.dpbf16 = c.avx512 && __builtin_cpu_supports("avx512bf16");
    c.amx = c.avx512 && bf16_amx_usable();
    return c;
}

int k_bf16_path_available(int path) {
    bf16_isa c = bf16_isa_caps();
    switch (path) {
    case K_BF16_SCALAR: return 1;
    case K_BF16_AVX2: return c.avx2;
    case K_BF16_AVX512: return c.avx512;
    case K_BF16_DPBF16: return c.dpbf16;
    case K_BF16_AMX: return c.amx;
    default: return 0;
    }
}

static int chosen = -1;

int k_bf16_set_path(int path) {
    if (path == K_BF16_AUTO) { chosen = -1; return 0; }
    if (!k_bf16_path_available(path)) return -1;
    chosen = path;
    return 0;
}

int k_bf16_path(void) {
    if (chosen >= 0) return chosen;
    const char *env = getenv("TEMPER_BF16_GEMM");
    for (int p = K_BF16_SCALAR; env && p <= K_BF16_AMX; p++)
        if (!strcmp(env, path_names[p]) && k_bf16_path_available(p)) return chosen = p;
    chosen = k_bf16_path_available(K_BF16_AVX512) ? K_BF16_AVX512 : k_bf16_path_available(K_BF16_AVX2) ? K_BF16_AVX2 : K_BF16_SCALAR;
    return chosen;
}

// ---- drivers: fixed tiles over the OpenMP threads ----

enum { FWD_MB = 64, FWD_NB = 64, BWD_MB = 64, BWD_KB = 128 };

void k_linear_bf16_fwd(float *y, const float *x, const uint16_t *W, const float *b, int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    if (in <= 0) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++) y[(long)n * out + o] = b ? b[o] : 0.0f;
        return;
    }
    int path = k_bf16_path();
    bf16_fwd_tile f = path == K_BF16_AVX512 ? bf16_fwd_tile_avx512 : path == K_BF16_AVX2 ? bf16_fwd_tile_avx2
                      : path == K_BF16_DPBF16 ? bf16_fwd_tile_dpbf16 : path == K_BF16_AMX ? bf16_fwd_tile_amx
                      : bf16_fwd_tile_scalar;
    int nm = (N + FWD_MB - 1) / FWD_MB, nn = (out + FWD_NB - 1) / FWD_NB;
    // W blocks outer: consecutive tiles of a thread share the block, kept in cache
    #pragma omp parallel for schedule(static) if ((double)N * out * in > 5e5)
    for (int t = 0; t < nm * nn; t++) {
        int bn = t / nm, bm = t % nm;
        int m0 = bm * FWD_MB, m1 = m0 + FWD_MB < N ? m0 + FWD_MB : N;
        int n0 = bn * FWD_NB, n1 = n0 + FWD_NB < out ? n0 + FWD_NB : out;
        f(y, x, W, b, m0, m1, n0, n1, in, out);
    }
}

void k_linear_bf16_bwd(float *dx, const float *dy, const uint16_t *W, int N, int in, int out) {
    if (N <= 0 || in <= 0 || out <= 0 || !dx) return;
    int path = k_bf16_path();
    bf16_bwd_tile f = path == K_BF16_AVX2 ? bf16_bwd_tile_avx2 : path == K_BF16_SCALAR ? bf16_bwd_tile_scalar
                      : bf16_bwd_tile_avx512;  // dpbf16 / amx: the exact AVX-512 backward
    int nm = (N + BWD_MB - 1) / BWD_MB, nk = (in + BWD_KB - 1) / BWD_KB;
    #pragma omp parallel for schedule(static) if ((double)N * out * in > 5e5)
    for (int t = 0; t < nm * nk; t++) {
        int bk = t / nm, bm = t % nm;
        int m0 = bm * BWD_MB, m1 = m0 + BWD_MB < N ? m0 + BWD_MB : N;
        int k0 = bk * BWD_KB, k1 = k0 + BWD_KB < in ? k0 + BWD_KB : in;
        f(dx, dy, W, m0, m1, k0, k1, out, in);
    }
}

void k_embedding_bf16_fwd(float *y, const int *tok, const uint16_t *E, int N, int D) {
    #pragma omp parallel for schedule(static) if ((long)N * D > 1 << 16)
    for (int i = 0; i < N; i++) {
        const uint16_t *e = E + (long)tok[i] * D;
        for (int j = 0; j < D; j++) y[(long)i * D + j] = bf16_widen(e[j]);
    }
}
