// tests/unit/test_gemm_bb16.c: the bf16 x bf16 linear kernels of --bf16 training
// (cpu_gemm_bb16*.c), the forward y = bf(x) W^T + b and the backward dx += bf(dy) W,
// dW += bf(dy)^T bf(x), db += sum dy, on every path this CPU and this build can run (the
// x86-64-v3 build runs scalar and AVX2 only; AMX is reported as a skip where the CPU has
// none), against an fp64 reference computed here from the same bf16-rounded inputs (so
// the check is of the kernels' fp32 accumulation, not of bf16 itself).
//
// Tolerances, with u = 2^-24 and S = sum |a_i b_i| of an output element's terms (rounded
// inputs): forward (K + 3) u (S + |b|) (one chain of at most K + 1 roundings, with the
// even padding, then the bias); dx (N + 3) u (S + |dx0|), dW (M + 3) u (S + |dW0|) (one
// chain that starts at the earlier value dx0 / dW0). AMX pads to 32: K + 34 etc.
// Every path but AMX gives the bits of the scalar path (the one documented order); every
// path gives the same bits for any row count (forward, dx) and thread count, across the
// cache blocks and tiles (shapes cross them).
#include "base/rng.h"
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"
#include "model/safetensors.h"
#include "test.h"
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static rng R;
static const double u = 0x1p-24;

typedef struct shape { int M, N, K; } shape;  // y[M,N] = x[M,K] W[N,K]^T

static double bfr(float v) { return st_bf16_to_f32(st_f32_to_bf16(v)); }

static void fill(float *a, long n, float scale, float base) {
    for (long i = 0; i < n; i++) a[i] = base + scale * rng_normal(&R);
}

typedef struct outs { float *y, *dx, *dW, *db; } outs;

static void run(outs *o, const float *x, const uint16_t *W, const float *b, const float *dy, shape s) {
    k_linear_bb16_fwd(o->y, x, W, b, s.M, s.K, s.N);
    for (long i = 0; i < (long)s.M * s.K; i++) o->dx[i] = 0.5f;
    for (long i = 0; i < (long)s.N * s.K; i++) o->dW[i] = -0.25f;
    for (int i = 0; i < s.N; i++) o->db[i] = 1.0f;
    k_linear_bb16_bwd(o->dx, o->dW, o->db, dy, x, W, s.M, s.K, s.N);
}

static void run_case(shape s) {
    long nx = (long)s.M * s.K, nw = (long)s.N * s.K, ny = (long)s.M * s.N;
    float *x = malloc(sizeof(float) * nx), *b = malloc(sizeof(float) * s.N), *dy = malloc(sizeof(float) * ny);
    uint16_t *W = malloc(sizeof(uint16_t) * nw);
    fill(x, nx, 1, 0.3f);
    fill(b, s.N, 1, 0);
    fill(dy, ny, 0.01f, 0);
    for (long i = 0; i < nw; i++) W[i] = st_f32_to_bf16(0.1f * rng_normal(&R));
    outs ref = {0};
    int paths[] = {K_BB16_SCALAR, K_BB16_AVX2, K_BB16_AVX512, K_BB16_DPBF16, K_BB16_AMX};
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
        int p = paths[pi];
        double pad = p == K_BB16_AMX ? 34 : 3;
        const char *name = k_bb16_path_name(p);
        if (k_bb16_set_path(p)) {
            printf("ok - bb16 %s %dx%dx%d # SKIP this CPU or build has no %s\n", name, s.M, s.N, s.K, name);
            continue;
        }
        outs o = {malloc(sizeof(float) * ny), malloc(sizeof(float) * nx), malloc(sizeof(float) * nw), malloc(sizeof(float) * s.N)};
        run(&o, x, W, b, dy, s);
        double wf = 0, wx = 0, ww = 0, wb = 0;
        for (int m = 0; m < s.M; m++)
            for (int n = 0; n < s.N; n++) {
                double r = b[n], S = fabs(b[n]);
                for (int k = 0; k < s.K; k++) {
                    double t = bfr(x[(long)m * s.K + k]) * st_bf16_to_f32(W[(long)n * s.K + k]);
                    r += t, S += fabs(t);
                }
                double e = fabs(o.y[(long)m * s.N + n] - r) / ((s.K + pad) * u * S + 1e-30);
                if (!(e <= wf)) wf = e;
            }
        for (int m = 0; m < s.M; m++)
            for (int k = 0; k < s.K; k++) {
                double r = 0.5, S = 0.5;
                for (int n = 0; n < s.N; n++) {
                    double t = bfr(dy[(long)m * s.N + n]) * st_bf16_to_f32(W[(long)n * s.K + k]);
                    r += t, S += fabs(t);
                }
                double e = fabs(o.dx[(long)m * s.K + k] - r) / ((s.N + pad) * u * S);
                if (!(e <= wx)) wx = e;
            }
        for (int n = 0; n < s.N; n++) {
            for (int k = 0; k < s.K; k++) {
                double r = -0.25, S = 0.25;
                for (int m = 0; m < s.M; m++) {
                    double t = bfr(dy[(long)m * s.N + n]) * bfr(x[(long)m * s.K + k]);
                    r += t, S += fabs(t);
                }
                double e = fabs(o.dW[(long)n * s.K + k] - r) / ((s.M + pad) * u * S);
                if (!(e <= ww)) ww = e;
            }
            double r = 1, S = 1;  // db: fp32 dy, not rounded
            for (int m = 0; m < s.M; m++) r += dy[(long)m * s.N + n], S += fabs(dy[(long)m * s.N + n]);
            double e = fabs(o.db[n] - r) / ((s.M + 2) * u * S);
            if (!(e <= wb)) wb = e;
        }
        CHECK(wf <= 1, "bb16 %s forward %dx%dx%d within (K+%g)u S of fp64 on the bf16 inputs (worst %.3g of the bound)", name, s.M, s.N, s.K, pad, wf);
        CHECK(wx <= 1, "bb16 %s dx += bf(dy) W %dx%dx%d within (N+%g)u S (worst %.3g)", name, s.M, s.N, s.K, pad, wx);
        CHECK(ww <= 1, "bb16 %s dW += bf(dy)^T bf(x) %dx%dx%d within (M+%g)u S (worst %.3g)", name, s.M, s.N, s.K, pad, ww);
        CHECK(wb <= 1, "bb16 %s db += sum dy (fp32) within (M+2)u S (worst %.3g)", name, wb);
        if (p == K_BB16_SCALAR) ref = o;
        else if (p != K_BB16_AMX && ref.y)
            CHECK(!memcmp(o.y, ref.y, sizeof(float) * ny) && !memcmp(o.dx, ref.dx, sizeof(float) * nx) &&
                      !memcmp(o.dW, ref.dW, sizeof(float) * nw) && !memcmp(o.db, ref.db, sizeof(float) * s.N),
                  "bb16 %s %dx%dx%d: y, dx, dW, db the same bits as the scalar path", name, s.M, s.N, s.K);
        // row-count invariance: the last row alone, then 3 and 16 rows from row 1 (the
        // decode row and small batches against the M-row training call; forward and dx)
        int counts[3][2] = {{s.M - 1, 1}, {1, 3}, {1, 16}};
        for (int c = 0; c < 3; c++) {
            int r0 = counts[c][0], nr = counts[c][1];
            if (r0 + nr > s.M) continue;
            float *y1 = malloc(sizeof(float) * s.N * nr), *dx1 = malloc(sizeof(float) * s.K * nr);
            k_linear_bb16_fwd(y1, x + (long)r0 * s.K, W, b, nr, s.K, s.N);
            for (long k = 0; k < (long)s.K * nr; k++) dx1[k] = 0.5f;
            k_linear_bb16_bwd(dx1, NULL, NULL, dy + (long)r0 * s.N, NULL, W, nr, s.K, s.N);
            CHECK(!memcmp(y1, o.y + (long)r0 * s.N, sizeof(float) * s.N * nr) &&
                      !memcmp(dx1, o.dx + (long)r0 * s.K, sizeof(float) * s.K * nr),
                  "bb16 %s %dx%dx%d: rows %d..%d alone (%d rows) give the same forward and dx bits", name, s.M, s.N, s.K,
                  r0, r0 + nr - 1, nr);
            free(y1), free(dx1);
        }
        // thread-count invariance
        outs t = {malloc(sizeof(float) * ny), malloc(sizeof(float) * nx), malloc(sizeof(float) * nw), malloc(sizeof(float) * s.N)};
        int nt = omp_get_max_threads();
        omp_set_num_threads(nt > 1 ? 1 : 2);
        run(&t, x, W, b, dy, s);
        omp_set_num_threads(nt);
        CHECK(!memcmp(t.y, o.y, sizeof(float) * ny) && !memcmp(t.dx, o.dx, sizeof(float) * nx) && !memcmp(t.dW, o.dW, sizeof(float) * nw),
              "bb16 %s %dx%dx%d: %d and %d threads give the same bits", name, s.M, s.N, s.K, nt, nt > 1 ? 1 : 2);
        free(t.y), free(t.dx), free(t.dW), free(t.db);
        if (p != K_BB16_SCALAR) free(o.y), free(o.dx), free(o.dW), free(o.db);
    }
    k_bb16_set_path(K_BB16_AUTO);
    free(ref.y), free(ref.dx), free(ref.dW), free(ref.db);
    free(x), free(b), free(dy), free(W);
}

int main(void) {
    rng_seed(&R, 4321);
    // odd shapes: K and N not multiples of 8/16/32, M odd, and all crossing the fixed tiles
    // {100, 270, 530}: more than one 96-row and 256-column tile, and reduced lengths past
    // the 256 / 512 cache blocks (forward K, dx N, dW M alike)
    shape cases[] = {{7, 37, 45}, {70, 130, 100}, {1, 5, 1}, {66, 9, 131}, {33, 64, 300}, {100, 270, 530}, {530, 40, 300}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(cases[i]);
    // the rounding of activations is st_f32_to_bf16's (nearest even): a tie rounds to even;
    // a subnormal is flushed to zero (as vdpbf16ps does, on every path)
    uint16_t W1[1] = {st_f32_to_bf16(1.0f)};
    float xs[5] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-9f), 1.0f + 0x1p-8f + 0x1p-20f, 0x1p-130f}, y;
    // the order: y = ((p1 + p0) + p3) + p2 with p = (2^-24, 1, -1, 2^-24) is exactly 0 (each
    // 1 + 2^-24 ties to 1); increasing k or even-first gives 2^-24
    float x4[4] = {1, 1, 1, 1}, y4;
    uint16_t W4[4] = {st_f32_to_bf16(0x1p-24f), st_f32_to_bf16(1.0f), st_f32_to_bf16(-1.0f), st_f32_to_bf16(0x1p-24f)};
    int ok = 1, ord = 1;
    int paths[] = {K_BB16_SCALAR, K_BB16_AVX2, K_BB16_AVX512, K_BB16_DPBF16, K_BB16_AMX};
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
        if (k_bb16_set_path(paths[pi])) continue;
        for (int i = 0; i < 5; i++) {
            k_linear_bb16_fwd(&y, xs + i, W1, NULL, 1, 1, 1);
            if (y != (i == 4 ? 0.0f : (float)bfr(xs[i]))) ok = 0;
        }
        k_linear_bb16_fwd(&y4, x4, W4, NULL, 1, 4, 1);
        if (paths[pi] != K_BB16_AMX && y4 != 0.0f) ord = 0;
    }
    k_bb16_set_path(K_BB16_AUTO);
    CHECK(ok, "bb16 activations round to nearest even on every path (1+2^-8 -> 1, 1+3*2^-8 -> 1+2^-6), subnormals to 0");
    CHECK(ord, "bb16 every path but amx sums in the documented order (pairs, odd index first)");
    if (k_isa() == K_ISA_AVX2) {
        CHECK(k_bb16_path() == K_BB16_AVX2 && !k_bb16_path_available(K_BB16_DPBF16) && !k_bb16_path_available(K_BB16_AVX512) &&
                  !k_bb16_path_available(K_BB16_AMX),
              "bb16: under the AVX2 kernel path (TEMPER_ISA=avx2 or an AVX2 CPU) auto takes the AVX2 path, never AVX-512, AVX-512-BF16 or AMX (auto: %s)", k_bb16_path_name(k_bb16_path()));
    } else {
        int a = k_bb16_path();
        CHECK(k_bb16_path_available(K_BB16_AMX) ? a == K_BB16_AMX || a == K_BB16_AVX512 || a == K_BB16_DPBF16
              : k_bb16_path_available(K_BB16_DPBF16) ? a == K_BB16_AVX512 || a == K_BB16_DPBF16
              : a == (k_bb16_path_available(K_BB16_AVX512) ? K_BB16_AVX512 : K_BB16_AVX2),
              "bb16: auto takes AMX, or the faster of the AVX-512 paths, or the widest path this CPU has (%s)", k_bb16_path_name(a));
    }
    return test_done();
}
