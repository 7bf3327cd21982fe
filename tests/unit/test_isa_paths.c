// tests/unit/test_isa_paths.c: the vector paths of the lm-head, SwiGLU and decode-row
// kernels (AVX-512, AVX2+FMA, plain C, chosen at run time by k_isa: cpu_isa.h) give the
// same bits. Each path the CPU has runs in this one binary (k_isa_set) and is compared
// with memcmp against the widest path, on odd shapes whose tails leave partial vectors
// (a path the CPU lacks is reported as a skip). Accuracy against fp64 / finite
// differences is test_kernels.c's; the sampler == trainer property per path is
// checked here too (decode row and lm-head row against the many-row forward).
#include <stdint.h>
#include <string.h>
#include "kernels/kernels.h"
#include "kernels/cpu_isa.h"
#include "kernels/cpu_tuning.h"
#include "base/rng.h"
#include "test.h"

static rng R;

static float *randn(long n, float s) {
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!x) exit(1);
    for (long i = 0; i < n; i++) x[i] = (float)(rng_normal(&R) * s);
    return x;
}
static float *zeros(long n) {
    float *x = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!x) exit(1);
    return x;
}
static float *copy(const float *x, long n) {
    float *y = malloc(sizeof(float) * (size_t)n);
    if (!y) exit(1);
    memcpy(y, x, sizeof(float) * (size_t)n);
    return y;
}

// Same bits, except that any NaN equals any NaN (which operand's payload an x86 add
// passes on depends on the operand order the compiler picked, not on the path).
static int same(const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++) {
        uint32_t u, v;
        memcpy(&u, a + i, 4), memcpy(&v, b + i, 4);
        if (u != v && !(a[i] != a[i] && b[i] != b[i])) return 0;
    }
    return 1;
}

static const char *const names[] = {"c", "avx2", "avx512"};
static int best;

// Whether path p runs here; prints the skip line when not.
static int have(int p, const char *what) {
    if (k_isa_supported(p)) return 1;
    printf("ok - %s: %s path == %s path # SKIP this CPU has no %s\n", what, names[p], names[best], names[p]);
    return 0;
}

// ---------------------------------------------------------------- SwiGLU

static void test_swiglu(long n) {
    float *g = randn(n, 3), *u = randn(n, 1), *dh = randn(n, 1), *dg0 = randn(n, 1), *du0 = randn(n, 1);
    // edges of the exp: its clamps and flush, signed zeros, infinities, a NaN
    const float edge[] = {0.0f, -0.0f, 88.0f, -88.0f, 87.4f, -87.4f, 100.0f, -100.0f, 1e-30f, -1e-30f, INFINITY, -INFINITY, NAN, 20.0f, -20.0f};
    for (int i = 0; i < (int)(sizeof edge / sizeof edge[0]) && i < n; i++) g[n - 1 - i] = edge[i];
    float *h[3], *dg[3], *du[3];
    for (int p = K_ISA_AVX512; p >= K_ISA_C; p--) {
        h[p] = dg[p] = du[p] = NULL;
        if (!k_isa_supported(p)) continue;
        k_isa_set(p);
        h[p] = zeros(n), dg[p] = copy(dg0, n), du[p] = copy(du0, n);
        k_swiglu_fwd(h[p], g, u, n);
        k_swiglu_bwd(dg[p], du[p], dh, g, u, n);
    }
    for (int p = K_ISA_C; p < best; p++) {
        char what[64];
        snprintf(what, sizeof what, "swiglu n=%ld", n);
        if (!have(p, what)) continue;
        CHECK(same(h[p], h[best], n), "swiglu fwd n=%ld: %s path == %s path, bit for bit", n, names[p], names[best]);
        CHECK(same(dg[p], dg[best], n) && same(du[p], du[best], n), "swiglu bwd n=%ld (dgate, dup +=): %s path == %s path, bit for bit", n, names[p], names[best]);
    }
    for (int p = 0; p < 3; p++) free(h[p]), free(dg[p]), free(du[p]);
    free(g), free(u), free(dh), free(dg0), free(du0);
}

// ---------------------------------------------------------------- lm-head

typedef struct lm_out {
    float *lp, *ent, *lse, *lp2, *dh, *dW, *dh2, *dhb, *lpb, *entb;
} lm_out;

static void lm_free(lm_out *o) {
    free(o->lp), free(o->ent), free(o->lse), free(o->lp2), free(o->dh), free(o->dW), free(o->dh2), free(o->dhb),
        free(o->lpb), free(o->entb);
}

// fwd with and without entropy, bwd with entropy (dh, dW) and without (dh), and the bf16
// weight variant's fwd and bwd.
static void test_lmhead(int N, int D, int V, int rows, int vocab) {
    k_lmhead_set_chunks(rows, vocab);
    float *h = randn((long)N * D, 1), *W = randn((long)V * D, 0.3f), *g = randn(N, 1), *e = randn(N, 0.5f);
    uint16_t *Wb = malloc(sizeof(uint16_t) * (size_t)V * D);
    int *tg = malloc(sizeof(int) * (size_t)N);
    size_t nsc = k_lmhead_bf16_scratch_floats(N, D, V);
    float *scratch = malloc(sizeof(float) * nsc);
    if (!Wb || !tg || !scratch) exit(1);
    for (long i = 0; i < (long)V * D; i++) {
        uint32_t b;
        memcpy(&b, W + i, 4);
        Wb[i] = (uint16_t)(b >> 16);
    }
    for (int i = 0; i < N; i++) tg[i] = i % 5 == 2 ? -1 : (int)rng_below(&R, (uint64_t)V);
    g[0] = 0.0f, e[1] = 0.0f;  // a row with only the entropy's gradient, one with only logp's
    lm_out o[3];
    memset(o, 0, sizeof o);
    for (int p = K_ISA_AVX512; p >= K_ISA_C; p--) {
        if (!k_isa_supported(p)) continue;
        k_isa_set(p);
        lm_out *q = &o[p];
        q->lp = zeros(N), q->ent = zeros(N), q->lse = zeros(N), q->lp2 = zeros(N), q->lpb = zeros(N), q->entb = zeros(N);
        q->dh = zeros((long)N * D), q->dW = zeros((long)V * D), q->dh2 = zeros((long)N * D), q->dhb = zeros((long)N * D);
        k_lmhead_logprob_fwd(q->lp, q->ent, q->lse, h, W, tg, N, D, V, scratch);
        float *lse2 = zeros(N);
        k_lmhead_logprob_fwd(q->lp2, NULL, lse2, h, W, tg, N, D, V, scratch);
        k_lmhead_logprob_bwd(q->dh, q->dW, g, e, h, W, tg, q->lse, q->ent, N, D, V, scratch);
        k_lmhead_logprob_bwd(q->dh2, NULL, g, NULL, h, W, tg, lse2, NULL, N, D, V, scratch);
        float *lseb = zeros(N);
        k_lmhead_bf16_logprob_fwd(q->lpb, q->entb, lseb, h, Wb, tg, N, D, V, scratch);
        k_lmhead_bf16_logprob_bwd(q->dhb, g, e, h, Wb, tg, lseb, q->entb, N, D, V, scratch);
        free(lse2), free(lseb);
    }
    for (int p = K_ISA_C; p < best; p++) {
        char what[96];
        snprintf(what, sizeof what, "lm-head N=%d D=%d V=%d chunks %dx%d", N, D, V, rows, vocab);
        if (!have(p, what)) continue;
        lm_out *q = &o[p], *w = &o[best];
        CHECK(same(q->lp, w->lp, N) && same(q->ent, w->ent, N) && same(q->lse, w->lse, N) && same(q->lp2, w->lp2, N),
              "%s fwd (logp, entropy, lse; and without entropy): %s path == %s path, bit for bit", what, names[p], names[best]);
        CHECK(same(q->dh, w->dh, (long)N * D) && same(q->dW, w->dW, (long)V * D) && same(q->dh2, w->dh2, (long)N * D),
              "%s bwd (dh, dW with entropy; dh without): %s path == %s path, bit for bit", what, names[p], names[best]);
        CHECK(same(q->lpb, w->lpb, N) && same(q->entb, w->entb, N) && same(q->dhb, w->dhb, (long)N * D),
              "%s bf16 W fwd and bwd: %s path == %s path, bit for bit", what, names[p], names[best]);
    }
    // a path whose sums went wrong everywhere alike would pass the above: the widest
    // path's logp must also be a log-probability of the fp32 logits (loosely; the
    // tolerance tests are test_kernels.c's)
    double md = 0;
    for (int i = 0; i < N; i++) {
        if (tg[i] < 0) continue;
        double mx = -INFINITY, s = 0, zt = 0;
        double *z = malloc(sizeof(double) * (size_t)V);
        for (int j = 0; j < V; j++) {
            double a = 0;
            for (int k = 0; k < D; k++) a += (double)h[(long)i * D + k] * W[(long)j * D + k];
            z[j] = a, mx = a > mx ? a : mx;
        }
        for (int j = 0; j < V; j++) s += exp(z[j] - mx);
        zt = z[tg[i]];
        free(z);
        double d = fabs(o[best].lp[i] - (zt - mx - log(s)));
        md = d > md ? d : md;
    }
    CHECK(md < 1e-4, "lm-head N=%d D=%d V=%d (%s path) vs fp64 log-softmax (max |diff| %.1e)", N, D, V, names[best], md);
    for (int p = 0; p < 3; p++) lm_free(&o[p]);
    free(h), free(W), free(g), free(e), free(Wb), free(tg), free(scratch);
    k_lmhead_set_chunks(512, 2048);
}

// ---------------------------------------------------------------- decode rows

// With the fixed-order GEMM off (TEMPER_DETERMINISTIC=0), k_linear_rows_fwd runs its own
// 16-lane dot: every path the same bits, and close to fp64.
static void test_rows_own_off(int N, int in, int out) {
    float *x = randn((long)N * in, 1), *W = randn((long)out * in, 0.2f), *b = randn(out, 1), *y[3] = {0};
    k_gemm_set_own(0);
    for (int p = K_ISA_AVX512; p >= K_ISA_C; p--) {
        if (!k_isa_supported(p)) continue;
        k_isa_set(p);
        y[p] = zeros((long)N * out);
        k_linear_rows_fwd(y[p], x, W, b, N, in, out);
    }
    k_gemm_set_own(1);
    double md = 0;
    for (int r = 0; r < N; r++)
        for (int o = 0; o < out; o++) {
            double s = b[o], a = fabs(b[o]);
            for (int c = 0; c < in; c++) s += (double)x[(long)r * in + c] * W[(long)o * in + c], a += fabs((double)x[(long)r * in + c] * W[(long)o * in + c]);
            double d = fabs(y[best][(long)r * out + o] - s) / (a + 1e-30);
            md = d > md ? d : md;
        }
    CHECK(md < 1e-6, "linear_rows (fixed-order GEMM off) N=%d in=%d out=%d, %s path vs fp64 (max error %.1e of sum |terms|)", N, in, out, names[best], md);
    for (int p = K_ISA_C; p < best; p++) {
        char what[96];
        snprintf(what, sizeof what, "linear_rows (fixed-order GEMM off) N=%d in=%d out=%d", N, in, out);
        if (!have(p, what)) continue;
        CHECK(same(y[p], y[best], (long)N * out), "%s: %s path == %s path, bit for bit", what, names[p], names[best]);
    }
    for (int p = 0; p < 3; p++) free(y[p]);
    free(x), free(W), free(b);
}

// The sampler == trainer property on every path: with the fixed-order GEMM (the default),
// a decode row of the linear layer and of the lm-head (k_linear_rows_fwd, then
// k_lmhead_logprob_row) gets the bits of the many-row training forward of the same path.
static void test_decode_rows(int N, int D, int V) {
    float *h = randn((long)N * D, 1), *W = randn((long)V * D, 0.2f);
    int *tg = malloc(sizeof(int) * (size_t)N);
    for (int i = 0; i < N; i++) tg[i] = (int)rng_below(&R, (uint64_t)V);
    float *lp = zeros(N), *ent = zeros(N), *lse = zeros(N), *Z = zeros((long)N * V), *Zr = zeros((long)N * V);
    float *scratch = malloc(sizeof(float) * k_lmhead_scratch_floats(N, D, V));
    int gbest = k_gemm_set_isa(-1);
    for (int p = K_ISA_AVX512; p >= K_ISA_C; p--) {
        char what[96];
        snprintf(what, sizeof what, "decode rows N=%d D=%d V=%d", N, D, V);
        if (!k_isa_supported(p)) {
            printf("ok - %s: %s path # SKIP this CPU has no %s\n", what, names[p], names[p]);
            continue;
        }
        k_isa_set(p), k_gemm_set_isa(p);
        k_linear_fwd(Z, h, W, NULL, N, D, V);
        for (int i = 0; i < N; i++) k_linear_rows_fwd(Zr + (long)i * V, h + (long)i * D, W, NULL, 1, D, V);
        k_lmhead_logprob_fwd(lp, ent, lse, h, W, tg, N, D, V, scratch);
        int ok = 1;
        for (int i = 0; i < N; i++) {
            float e, l = k_lmhead_logprob_row(Zr + (long)i * V, V, tg[i], &e);
            ok &= l == lp[i] && e == ent[i];
        }
        CHECK(same(Z, Zr, (long)N * V), "%s, %s path: linear_rows (1 row) == linear_fwd (%d rows), bit for bit", what, names[p], N);
        CHECK(ok, "%s, %s path: lmhead_logprob_row of the decode logits == fused lm-head (logp, entropy), bit for bit", what, names[p]);
    }
    k_gemm_set_isa(gbest);
    free(h), free(W), free(tg), free(lp), free(ent), free(lse), free(Z), free(Zr), free(scratch);
}

int main(void) {
    rng_seed(&R, 7);
    k_gemm_set_own(1);
    best = k_isa_set(-1);
    if (best == K_ISA_C) printf("ok - isa paths: only the plain-C path runs here # SKIP this CPU has no AVX2\n");
    test_swiglu(4096 + 4096 + 45);  // two blocks and a tail block of 45 (2 x 16 + 13; 5 x 8 + 5)
    test_swiglu(7);
    test_lmhead(13, 19, 1000 + 37, 4, 100);  // row chunks of 4; vocabulary chunks of 100 (6 x 16 + 4), the last 37
    test_lmhead(6, 16, 333, 512, 2048);      // one chunk, V = 20 x 16 + 13
    test_rows_own_off(1, 77, 19);
    test_rows_own_off(3, 16, 9);
    test_rows_own_off(8, 5, 33);
    test_rows_own_off(5, 200, 7);
    test_decode_rows(3, 37, 150);
    k_isa_set(best);
    return test_done();
}
