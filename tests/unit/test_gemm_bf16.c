// tests/unit/test_gemm_bf16.c: the bf16-weight linear kernels (cpu_gemm_bf16*.c), on
// every path this CPU (and this build: the x86-64-v3 build tests the AVX2 path) can run,
// against an fp64 reference computed here from the same bf16 weights.
//
// Tolerances, with u = 2^-24 and S = sum_k |x_k w_k| per output element:
// - exact "widen" paths (scalar, avx2, avx512): |y - ref| <= (K/16 + 5) u S (16 FMA
//   chains of K/16 steps, a 4-level tree, the bias), backward (N + 1) u S; and the three
//   paths give the same bits, the same bits for any row count and thread count.
// - dpbf16 / amx (x rounded to bf16): against the fp64 reference of the bf16-rounded x,
//   |y - ref| <= (K/16 + 5) u S' (S' with rounded x), and against the unrounded x
//   <= 2^-8 S (the rounding of x, relative 2^-9, plus the sum).
// Shapes are odd (K not a multiple of 16 or 32, M and N crossing the 64-wide tiles).
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

typedef struct shape { int M, N, K; } shape;  // y[M,N] = x[M,K] W[N,K]^T

static float bfround(float v) { return st_bf16_to_f32(st_f32_to_bf16(v)); }

// max over elements of |got - ref| / bound, the bound (tol_per_term * S + 1e-30) per element
static double fwd_ratio(const float *y, const float *x, const uint16_t *W, const float *b, shape s, int round_x,
                        double tol_terms) {
    double worst = 0;
    for (int m = 0; m < s.M; m++)
        for (int n = 0; n < s.N; n++) {
            double ref = b ? b[n] : 0, S = b ? fabs(b[n]) : 0;
            for (int k = 0; k < s.K; k++) {
                double xv = round_x ? bfround(x[(long)m * s.K + k]) : x[(long)m * s.K + k];
                double p = xv * st_bf16_to_f32(W[(long)n * s.K + k]);
                ref += p, S += fabs(p);
            }
            double r = fabs(y[(long)m * s.N + n] - ref) / (tol_terms * S + 1e-30);
            if (!(r <= worst)) worst = r;
        }
    return worst;
}

static void run_case(shape s) {
    long nx = (long)s.M * s.K, nw = (long)s.N * s.K, ny = (long)s.M * s.N;
    float *x = malloc(sizeof(float) * nx), *b = malloc(sizeof(float) * s.N), *dy = malloc(sizeof(float) * ny);
    uint16_t *W = malloc(sizeof(uint16_t) * nw);
    for (long i = 0; i < nx; i++) x[i] = rng_normal(&R);
    for (long i = 0; i < nw; i++) W[i] = st_f32_to_bf16(0.1f * rng_normal(&R));
    for (int i = 0; i < s.N; i++) b[i] = rng_normal(&R);
    for (long i = 0; i < ny; i++) dy[i] = rng_normal(&R);
    const double u = 0x1p-24;
    float *yref = NULL, *dxref = NULL;  // the first exact path's output, for bit equality
    int paths[] = {K_BF16_SCALAR, K_BF16_AVX2, K_BF16_AVX512, K_BF16_DPBF16, K_BF16_AMX};
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
        int p = paths[pi];
        const char *name = k_bf16_path_name(p);
        if (k_bf16_set_path(p)) {
            printf("ok - bf16 %s %dx%dx%d # SKIP this CPU or build has no %s\n", name, s.M, s.N, s.K, name);
            continue;
        }
        int exact = p <= K_BF16_AVX512;
        float *y = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * s.N);
        k_linear_bf16_fwd(y, x, W, b, s.M, s.K, s.N);
        if (exact) {
            double r = fwd_ratio(y, x, W, b, s, 0, (s.K / 16.0 + 5) * u);
            CHECK(r <= 1, "bf16 %s forward %dx%dx%d within (K/16+5)u S of fp64 (worst %.3g of the bound)", name, s.M, s.N, s.K, r);
            if (!yref) {
                yref = y;
                y = NULL;
            } else {
                CHECK(!memcmp(y, yref, sizeof(float) * ny), "bf16 %s forward %dx%dx%d: the same bits as the scalar path", name, s.M, s.N, s.K);
            }
            const float *yy = y ? y : yref;
            // row-count invariance: the last row alone
            k_linear_bf16_fwd(y1, x + (long)(s.M - 1) * s.K, W, b, 1, s.K, s.N);
            CHECK(!memcmp(y1, yy + (long)(s.M - 1) * s.N, sizeof(float) * s.N), "bf16 %s forward: row %d alone gives the same bits", name, s.M - 1);
            // thread-count invariance
            float *yt = malloc(sizeof(float) * ny);
            int nt = omp_get_max_threads();
            omp_set_num_threads(1);
            k_linear_bf16_fwd(yt, x, W, b, s.M, s.K, s.N);
            omp_set_num_threads(nt > 1 ? nt : 2);
            CHECK(!memcmp(yt, yy, sizeof(float) * ny), "bf16 %s forward: 1 thread and %d threads give the same bits", name, nt > 1 ? nt : 2);
            omp_set_num_threads(nt);
            free(yt);

            // backward, twice onto a nonzero dx: it accumulates
            float *dx = malloc(sizeof(float) * nx);
            for (long i = 0; i < nx; i++) dx[i] = 1.0f;
            k_linear_bf16_bwd(dx, dy, W, s.M, s.K, s.N);
            k_linear_bf16_bwd(dx, dy, W, s.M, s.K, s.N);
            double worst = 0;
            for (int m = 0; m < s.M; m++)
                for (int k = 0; k < s.K; k++) {
                    double ref = 0, S = 0;
                    for (int n = 0; n < s.N; n++) {
                        double pr = (double)dy[(long)m * s.N + n] * st_bf16_to_f32(W[(long)n * s.K + k]);
                        ref += pr, S += fabs(pr);
                    }
                    double got = dx[(long)m * s.K + k];
                    double r = fabs(got - (1.0 + 2.0 * ref)) / (2.0 * (s.N + 3) * u * (S + 1.0));
                    if (!(r <= worst)) worst = r;
                }
            CHECK(worst <= 1, "bf16 %s backward %dx%dx%d accumulates dy W within (N+3)u (S+1) of fp64 (worst %.3g)", name, s.M, s.N, s.K, worst);
            if (!dxref) dxref = dx, dx = NULL;
            else CHECK(!memcmp(dx, dxref, sizeof(float) * nx), "bf16 %s backward: the same bits as the scalar path", name);
            free(dx);
        } else {
            double r = fwd_ratio(y, x, W, b, s, 1, (s.K / 16.0 + 5) * u);
            CHECK(r <= 1, "bf16 %s forward %dx%dx%d within (K/16+5)u S of fp64 with x rounded to bf16 (worst %.3g)", name, s.M, s.N, s.K, r);
            double r2 = fwd_ratio(y, x, W, b, s, 0, 0x1p-8);
            CHECK(r2 <= 1, "bf16 %s forward %dx%dx%d within 2^-8 S of fp64 with x unrounded (worst %.3g)", name, s.M, s.N, s.K, r2);
        }
        free(y);
        free(y1);
    }
    k_bf16_set_path(K_BF16_AUTO);
    free(yref);
    free(dxref);
    free(x), free(b), free(dy), free(W);
}

int main(void) {
    rng_seed(&R, 1234);
    shape cases[] = {{7, 37, 45}, {70, 130, 100}, {5, 67, 16}, {66, 9, 131}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(cases[i]);
    // no bias, and an empty sum
    float x[6] = {1, 2, 3, 4, 5, 6}, y[4] = {9, 9, 9, 9}, b[2] = {0.5f, -1};
    uint16_t W[6] = {st_f32_to_bf16(1), st_f32_to_bf16(-2), st_f32_to_bf16(0.5f), st_f32_to_bf16(0.25f), 0, st_f32_to_bf16(4)};
    k_linear_bf16_fwd(y, x, W, NULL, 2, 3, 2);
    CHECK(y[0] == 1 - 4 + 1.5f && y[1] == 0.25f + 12 && y[2] == 4 - 10 + 3 && y[3] == 1 + 24, "bf16 forward without bias, small exact case");
    k_linear_bf16_fwd(y, x, W, b, 2, 0, 2);
    CHECK(y[0] == 0.5f && y[1] == -1 && y[2] == 0.5f && y[3] == -1, "bf16 forward with in = 0 gives the bias");
    // the automatic choice: exact, and never AVX-512 in a build that targets AVX2 only
    int auto_path = k_bf16_path();
    CHECK(auto_path == K_BF16_SCALAR || auto_path == K_BF16_AVX2 || auto_path == K_BF16_AVX512, "automatic bf16 path is an exact one (%s)", k_bf16_path_name(auto_path));
    if (k_isa() == K_ISA_AVX2)
        CHECK(auto_path == K_BF16_AVX2 && k_bf16_set_path(K_BF16_AVX512) == -1, "under the AVX2 kernel path (TEMPER_ISA=avx2 or an AVX2 CPU) bf16 runs the AVX2 path (%s) and refuses avx512", k_bf16_path_name(auto_path));
    // the bf16 lm-head: the fp32 kernel on the widened W, bit for bit (forward and dh)
    {
        enum { NL = 37, DL = 40, VL = 301 };
        k_lmhead_set_chunks(16, 64);  // several row and vocabulary chunks
        float *h = malloc(sizeof(float) * NL * DL), *Wf = malloc(sizeof(float) * VL * DL);
        uint16_t *Wb = malloc(2 * VL * DL);
        int tg[NL];
        for (int i = 0; i < NL * DL; i++) h[i] = rng_normal(&R);
        for (int i = 0; i < VL * DL; i++) Wb[i] = st_f32_to_bf16(0.3f * rng_normal(&R)), Wf[i] = st_bf16_to_f32(Wb[i]);
        for (int i = 0; i < NL; i++) tg[i] = i % 5 == 0 ? -1 : (int)rng_below(&R, VL);
        float lp[2][NL], en[2][NL], ls[2][NL], g[NL], ge[NL];
        for (int i = 0; i < NL; i++) g[i] = rng_normal(&R), ge[i] = rng_normal(&R);
        float *sc = malloc(sizeof(float) * k_lmhead_bf16_scratch_floats(NL, DL, VL));
        float *dh0 = calloc(NL * DL, sizeof(float)), *dh1 = calloc(NL * DL, sizeof(float));
        k_lmhead_logprob_fwd(lp[0], en[0], ls[0], h, Wf, tg, NL, DL, VL, sc);
        k_lmhead_logprob_bwd(dh0, NULL, g, ge, h, Wf, tg, ls[0], en[0], NL, DL, VL, sc);
        k_lmhead_bf16_logprob_fwd(lp[1], en[1], ls[1], h, Wb, tg, NL, DL, VL, sc);
        k_lmhead_bf16_logprob_bwd(dh1, g, ge, h, Wb, tg, ls[1], en[1], NL, DL, VL, sc);
        CHECK(!memcmp(lp[0], lp[1], sizeof lp[0]) && !memcmp(en[0], en[1], sizeof en[0]) && !memcmp(dh0, dh1, sizeof(float) * NL * DL),
              "bf16 lm-head: log-probs, entropy and dh equal the fp32 kernel's on the widened W bit for bit");
        k_lmhead_set_chunks(512, 2048);
        free(h), free(Wf), free(Wb), free(sc), free(dh0), free(dh1);
    }
    // the embedding gather widens exactly
    int tok[2] = {1, 0};
    float e[6];
    k_embedding_bf16_fwd(e, tok, W, 2, 3);
    CHECK(e[0] == 0.25f && e[1] == 0 && e[2] == 4 && e[3] == 1 && e[4] == -2 && e[5] == 0.5f, "bf16 embedding gather");
    return test_done();
}
