// tests/unit/test_amx_emu.c: the AMX paths (cpu_gemm_bb16_amx.c, cpu_gemm_bf16_amx.c) run on
// a software model of the AMX tile unit, since no machine this project has met exposes
// AMX. The model follows the SDM's pseudo-code: LDTILECFG shapes (palette 1, rows <= 16,
// colsb <= 64), TILELOADD/TILESTORED row by row at a byte stride, TILEZERO, and TDPBF16PS
// as, for each row m, pair k and column n, acc += a[m][2k] b[k][2n] then acc += a[m][2k+1]
// b[k][2n+1], each rounded once (the products of two bf16 are exact) with DAZ and FTZ. It
// proves the kernels' tile configuration, panel layouts, strides, edge blocks and cache
// blocking: the AMX bf16 x bf16 GEMM gives the other paths' bits, and the AMX forward of
// the frozen-base linear sums each element in k order. It cannot prove that the silicon
// rounds as the SDM says: that stays with the first-use self-check (cpu_gemm_bb16.c).
// The sources are compiled here with the _tile_* intrinsics replaced by the model; their
// functions keep their AVX-512 target, so this runs where the CPU has AVX-512 (and
// AVX-512-BF16 for the frozen-base forward, which converts x with vcvtne2ps2bf16).
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "test.h"

typedef struct emu_tile {
    int rows, colsb;
    uint8_t d[16 * 64];
} emu_tile;
static _Thread_local emu_tile tmm[8];
static _Thread_local int configured;
static int misuse;  // a tile used unconfigured, or against its shape

static void emu_loadconfig(const void *p) {
    const uint8_t *c = p;  // palette_id, start_row, 14 reserved, colsb[16] (u16), rows[16]
    if (c[0] != 1) misuse = 1;
    for (int t = 0; t < 8; t++) {
        uint16_t cb;
        memcpy(&cb, c + 16 + 2 * t, 2);
        tmm[t].colsb = cb, tmm[t].rows = c[48 + t];
        if (cb > 64 || cb % 4 || c[48 + t] > 16) misuse = 1;
    }
    configured = 1;
}
static void emu_release(void) { configured = 0; }
static emu_tile *tile(int t) {
    if (!configured || t < 0 || t > 7 || !tmm[t].rows) misuse = 1;
    return &tmm[t & 7];
}
static void emu_zero(int t) { memset(tile(t)->d, 0, sizeof tmm[0].d); }
static void emu_loadd(int t, const void *base, long stride) {
    emu_tile *x = tile(t);
    memset(x->d, 0, sizeof x->d);
    for (int r = 0; r < x->rows; r++) memcpy(x->d + r * 64, (const char *)base + r * stride, (size_t)x->colsb);
}
static void emu_stored(int t, void *base, long stride) {
    emu_tile *x = tile(t);
    for (int r = 0; r < x->rows; r++) memcpy((char *)base + r * stride, x->d + r * 64, (size_t)x->colsb);
}
static float flush(float f) { return fpclassify(f) == FP_SUBNORMAL ? copysignf(0.0f, f) : f; }
static float bfv(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return flush(v.f);
}
static void emu_dpbf16ps(int c, int a, int b) {
    emu_tile *C = tile(c), *A = tile(a), *B = tile(b);
    if (A->rows != C->rows || B->rows != A->colsb / 4 || B->colsb != C->colsb) misuse = 1;
    for (int m = 0; m < C->rows; m++)
        for (int k = 0; k < A->colsb / 4; k++)
            for (int n = 0; n < C->colsb / 4; n++) {
                float t;
                memcpy(&t, C->d + m * 64 + 4 * n, 4);
                t = flush(fmaf(bfv(A->d + m * 64 + 4 * k), bfv(B->d + k * 64 + 4 * n), t));
                t = flush(fmaf(bfv(A->d + m * 64 + 4 * k + 2), bfv(B->d + k * 64 + 4 * n + 2), t));
                memcpy(C->d + m * 64 + 4 * n, &t, 4);
            }
}

#undef _tile_loadconfig
#undef _tile_release
#undef _tile_zero
#undef _tile_loadd
#undef _tile_stored
#undef _tile_dpbf16ps
#define _tile_loadconfig(p) emu_loadconfig(p)
#define _tile_release() emu_release()
#define _tile_zero(t) emu_zero(t)
#define _tile_loadd(t, p, s) emu_loadd(t, p, s)
#define _tile_stored(t, p, s) emu_stored(t, p, s)
#define _tile_dpbf16ps(c, a, b) emu_dpbf16ps(c, a, b)
// the library's own AMX symbols stay untouched: these copies get other names
#define bb16_ops_amx bb16_ops_amx_emu
#define bf16_amx_enable emu_bf16_amx_enable
#define bf16_amx_usable emu_bf16_amx_usable
#define bf16_fwd_tile_amx emu_bf16_fwd_tile_amx
#include "kernels/cpu_gemm_bb16_amx.c"
#undef TA
#undef tile_config
#define tile_config tile_config_bf16
#include "kernels/cpu_gemm_bf16_amx.c"
#include "kernels/cpu_tuning.h"

static uint32_t rng = 12345;
static float rnd(void) {
    rng = rng * 1103515245u + 12345u;
    return (float)((int)(rng >> 9 & 0xffff) - 32768) / 8192.0f;
}
static int same(const float *a, const float *b, long n) { return !memcmp(a, b, sizeof(float) * (size_t)n); }

// one product of the bb16 GEMM, C (+)= A B^T over R, on the AMX model and on AVX-512 FMA
static void bb16_case(const char *what, int I, int J, int R, int a_t, int b_bf, int zero, int threads) {
    long na = (long)I * R, nb = (long)J * R;
    float *A = malloc(sizeof(float) * na), *Bf = malloc(sizeof(float) * nb), *c1 = malloc(sizeof(float) * I * J),
          *c2 = malloc(sizeof(float) * I * J);
    uint16_t *Bh = malloc(2 * nb);
    for (long i = 0; i < na; i++) A[i] = rnd();
    for (long i = 0; i < nb; i++) Bf[i] = rnd(), Bh[i] = bb16_round(Bf[i]);
    for (long i = 0; i < (long)I * J; i++) c1[i] = c2[i] = zero ? NAN : rnd();
    // A as rows (x: element (i, r) at i R + r) or transposed (dy^T in dW: at r I + i)
    bb16_src sa = a_t ? (bb16_src){A, 0, 1, I} : (bb16_src){A, 0, R, 1};
    bb16_src sb = b_bf ? (bb16_src){Bh, 1, R, 1} : (bb16_src){Bf, 0, R, 1};
    omp_set_num_threads(threads);
    misuse = 0;
    bb16_gemm_on(&bb16_ops_amx_emu, c1, J, I, J, R, sa, sb, zero);
    bb16_gemm_on(&bb16_ops_avx512, c2, J, I, J, R, sa, sb, zero);
    omp_set_num_threads(1);
    CHECK(!misuse && same(c1, c2, (long)I * J), "amx model: bb16 %s %dx%dx%d (%s, %d threads) gives the AVX-512 path's bits", what,
          I, J, R, zero ? "from 0" : "continuing C", threads);
    free(A), free(Bf), free(Bh), free(c1), free(c2);
}

int main(void) {
    if (!k_isa_supported(K_ISA_AVX512)) {
        printf("ok - amx model # SKIP this CPU has no AVX-512 (the modelled kernels keep their AVX-512 target)\n");
        return test_done();
    }
    bb16_case("forward (x, W bf16)", 45, 37, 75, 0, 1, 1, 1);
    bb16_case("forward, full tiles", 64, 64, 64, 0, 1, 1, 1);
    bb16_case("dW (dy^T, x)", 70, 33, 300, 1, 0, 0, 2);
    bb16_case("dx, R past one cache block", 33, 70, 600, 0, 1, 0, 2);
    bb16_case("one row (decode)", 1, 300, 96, 0, 1, 1, 1);

    if (!__builtin_cpu_supports("avx512bf16")) {
        printf("ok - amx model: frozen-base forward # SKIP this CPU has no AVX-512-BF16\n");
        return test_done();
    }
    // the frozen-base forward: y[m, n] = sum over k in order of bf(x) W (one chain), + b
    enum { M = 37, N = 21, K = 70 };
    float x[M * K], b[N], y[M * N], ref[M * N];
    uint16_t W[N * K];
    for (int i = 0; i < M * K; i++) x[i] = rnd();
    for (int i = 0; i < N * K; i++) W[i] = bb16_round(rnd());
    for (int i = 0; i < N; i++) b[i] = rnd();
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float t = 0.0f;
            for (int k = 0; k < K; k++) t = flush(fmaf(bb16_widen(bb16_round(x[m * K + k])), bb16_widen(W[n * K + k]), t));
            ref[m * N + n] = t + b[n];
        }
    misuse = 0;
    emu_bf16_fwd_tile_amx(y, x, W, b, 0, M, 0, N, K, N);
    CHECK(!misuse && same(y, ref, M * N), "amx model: the frozen-base forward %dx%dx%d sums each element in k order (x rounded to bf16), + b", M, N, K);
    return test_done();
}
