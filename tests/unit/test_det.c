// Batch-, thread- and ISA-invariance of the forward kernels (issue 15): a decoded row
// (one row per call, against a KV cache) gets the bits of the same row of a many-row
// training call. Each check compares with memcmp, not a tolerance; one check per
// kernel also measures accuracy against an fp64 reference.
#include "kernels/kernels.h"
#include "kernels/cpu_tuning.h"
#include "base/rng.h"
#include "test.h"
#include <math.h>
#include <omp.h>
#include <string.h>

static rng R;

static float *randn(long n, float s) {
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++) x[i] = (float)(rng_normal(&R) * s);
    return x;
}

static int same(const float *a, const float *b, long n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

// ---------------------------------------------------------------- GEMM

// C = alpha A B^T + beta C0 for the whole matrix, then row by row (1-row calls), then a
// column slice: every element must carry the same bits; every ISA path the CPU has too,
// and 1 vs 2 threads.
static void test_gemm(int M, int N, int K, float alpha, float beta) {
    int lda = K + 3, ldb = K + 1, ldc = N + 2;
    float *A = randn((long)M * lda, 1), *B = randn((long)N * ldb, 1), *C0 = randn((long)M * ldc, 1);
    long nc = (long)M * ldc;
    float *C = malloc(sizeof(float) * nc), *Cr = malloc(sizeof(float) * nc), *Ct = malloc(sizeof(float) * nc);
    memcpy(C, C0, sizeof(float) * nc);
    k_sgemm(0, 1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);

    double md = 0, mb = 1e-30;  // accuracy against fp64
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, a = 0;
            for (int k = 0; k < K; k++) {
                s += (double)A[(long)i * lda + k] * B[(long)j * ldb + k];
                a += fabs((double)A[(long)i * lda + k] * B[(long)j * ldb + k]);
            }
            double ref = alpha * s + beta * (double)C0[(long)i * ldc + j];
            double d = fabs(C[(long)i * ldc + j] - ref) / (fabs(alpha) * a + fabs(beta * C0[(long)i * ldc + j]) + 1e-30);
            if (d > md) md = d;
            (void)mb;
        }
    CHECK(md < 1e-6, "gemm M=%d N=%d K=%d alpha=%g beta=%g vs fp64 (max error %.1e of sum |terms|)", M, N, K, alpha, beta, md);

    memcpy(Cr, C0, sizeof(float) * nc);
    for (int i = 0; i < M; i++) k_sgemm(0, 1, 1, N, K, alpha, A + (long)i * lda, lda, B, ldb, beta, Cr + (long)i * ldc, ldc);
    CHECK(same(C, Cr, nc), "gemm M=%d N=%d K=%d: row r of the M-row call == the 1-row call, bit for bit", M, N, K);

    memcpy(Cr, C0, sizeof(float) * nc);
    int j0 = N / 3, nn = N - j0 > 5 ? 5 : N - j0;
    if (nn > 0) {
        for (int i = 0; i < M; i += 3) {
            int m = M - i < 3 ? M - i : 3;
            k_sgemm(0, 1, m, nn, K, alpha, A + (long)i * lda, lda, B + (long)j0 * ldb, ldb, beta, Cr + (long)i * ldc + j0, ldc);
        }
        int ok = 1;
        for (int i = 0; i < M; i++) ok &= same(C + (long)i * ldc + j0, Cr + (long)i * ldc + j0, nn);
        CHECK(ok, "gemm M=%d N=%d K=%d: a 3 x 5 sub-call at column %d gives the same bits", M, N, K, j0);
    }

    int best = k_gemm_set_isa(-1);
    for (int isa = 0; isa <= 2; isa++) {
        if (k_gemm_set_isa(isa) != isa) continue;
        memcpy(Ct, C0, sizeof(float) * nc);
        k_sgemm(0, 1, M, N, K, alpha, A, lda, B, ldb, beta, Ct, ldc);
        CHECK(same(C, Ct, nc), "gemm M=%d N=%d K=%d: the %s path gives the %s path's bits", M, N, K, k_gemm_isa_name(isa),
              k_gemm_isa_name(best));
    }
    k_gemm_set_isa(-1);

    int nt = omp_get_max_threads();
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        memcpy(Ct, C0, sizeof(float) * nc);
        k_sgemm(0, 1, M, N, K, alpha, A, lda, B, ldb, beta, Ct, ldc);
        CHECK(same(C, Ct, nc), "gemm M=%d N=%d K=%d: %d thread(s) give the same bits", M, N, K, t);
    }
    omp_set_num_threads(nt);
    free(A), free(B), free(C0), free(C), free(Cr), free(Ct);
}

// linear_rows (the decoder's) against linear_fwd (the trainer's), with a bias.
static void test_linear_rows(int N, int in, int out) {
    float *x = randn((long)N * in, 1), *W = randn((long)out * in, 0.1f), *b = randn(out, 1);
    float *y = malloc(sizeof(float) * (size_t)N * out), *yr = malloc(sizeof(float) * (size_t)N * out);
    k_linear_fwd(y, x, W, b, N, in, out);
    for (int i = 0; i < N; i++) k_linear_rows_fwd(yr + (long)i * out, x + (long)i * in, W, b, 1, in, out);
    int ok = same(y, yr, (long)N * out);
    for (int i = 0; i + 3 <= N; i += 3) k_linear_rows_fwd(yr + (long)i * out, x + (long)i * in, W, b, 3, in, out);
    ok &= same(y, yr, (long)N * out);
    CHECK(ok, "linear_rows (1 and 3 rows) == linear_fwd (%d rows), in=%d out=%d, bit for bit", N, in, out);
    free(x), free(W), free(b), free(y), free(yr);
}

// A rollout freezes the weights (k_gemm_weights_frozen): decode-sized linear calls then
// keep W packed between calls. Rows of 1 and 5 (cache miss, then hits) == the many-row
// forward; after a thaw a changed W is read afresh.
static void test_linear_frozen(int N, int in, int out) {
    float *x = randn((long)N * in, 1), *W = randn((long)out * in, 0.1f), *b = randn(out, 1);
    float *y = malloc(sizeof(float) * (size_t)N * out), *yr = malloc(sizeof(float) * (size_t)N * out);
    k_linear_fwd(y, x, W, b, N, in, out);
    int best = k_gemm_set_isa(-1), ok = 1;
    for (int isa = 1; isa <= 2; isa++) {
        if (k_gemm_set_isa(isa) != isa) continue;
        k_gemm_weights_frozen(1);
        for (int rep = 0; rep < 2; rep++) {
            memset(yr, 0, sizeof(float) * (size_t)N * out);
            for (int i = 0; i < N; i += 5) k_linear_fwd(yr + (long)i * out, x + (long)i * in, W, b, N - i < 5 ? N - i : 5, in, out);
            ok &= same(y, yr, (long)N * out);
            for (int i = 0; i < N; i++) k_linear_rows_fwd(yr + (long)i * out, x + (long)i * in, W, b, 1, in, out);
            ok &= same(y, yr, (long)N * out);
        }
        k_gemm_weights_frozen(0);
    }
    CHECK(ok, "frozen weights (kept packed): rows of 5 and of 1 == linear_fwd (%d rows), in=%d out=%d, bit for bit", N, in, out);
    for (long i = 0; i < (long)out * in; i++) W[i] *= -2.0f;  // an optimizer step, after the rollout
    k_gemm_set_isa(best);
    k_linear_fwd(y, x, W, b, N, in, out);
    k_linear_fwd(yr, x, W, b, 1, in, out);
    CHECK(same(y, yr, out), "after the thaw a changed W is read afresh (in=%d out=%d)", in, out);
    free(x), free(W), free(b), free(y), free(yr);
}

static void test_rmsnorm(int N, int D) {
    float *x = randn((long)N * D, 1), *w = randn(D, 1), *y = malloc(sizeof(float) * (size_t)N * D),
          *yr = malloc(sizeof(float) * (size_t)N * D), rs[64], r1;
    k_rmsnorm_ofs_fwd(y, rs, x, w, 0.0f, N, D, 1e-6f);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        k_rmsnorm_ofs_fwd(yr + (long)i * D, &r1, x + (long)i * D, w, 0.0f, 1, D, 1e-6f);
        ok &= r1 == rs[i];
    }
    CHECK(ok && same(y, yr, (long)N * D), "rmsnorm D=%d: a row alone == the row in %d rows, bit for bit", D, N);
    free(x), free(w), free(y), free(yr);
}

// ---------------------------------------------------------------- attention

// One sequence of L tokens through the training attention (packed after another
// sequence, so it starts mid-batch), then each position decoded against a cache split
// into a prefix span of P keys and the rest, as the sampler's prefix slot and own slot;
// with a sliding window W > 0, the spans lose their front keys as kv_cache.c cuts them.
static void test_attention_cache(int L, int P, int Hq, int Hkv, int d, int W) {
    const int L0 = 37, N = L0 + L;  // a first sequence before ours
    float *q = randn((long)N * Hq * d, 1), *k = randn((long)N * Hkv * d, 1), *v = randn((long)N * Hkv * d, 1);
    int cu[3] = {0, L0, N};
    float *out = malloc(sizeof(float) * (size_t)N * Hq * d), *lse = malloc(sizeof(float) * (size_t)N * Hq);
    float *scratch = malloc(sizeof(float) * k_attention_scratch_floats(cu, 2, Hq, Hkv, d));
    k_attention_win_fwd(out, lse, q, k, v, cu, 2, N, Hq, Hkv, d, W, scratch);
    // the cache: two slots [Hkv][cap][d]
    float *kc = malloc(sizeof(float) * (size_t)Hkv * L * d), *vc = malloc(sizeof(float) * (size_t)Hkv * L * d);
    for (int t = 0; t < L; t++)
        for (int h = 0; h < Hkv; h++) {
            memcpy(kc + ((long)h * L + t) * d, k + ((long)(L0 + t) * Hkv + h) * d, sizeof(float) * (size_t)d);
            memcpy(vc + ((long)h * L + t) * d, v + ((long)(L0 + t) * Hkv + h) * d, sizeof(float) * (size_t)d);
        }
    float *od = malloc(sizeof(float) * (size_t)L * Hq * d);
    k_kv_span *sp = malloc(sizeof(k_kv_span) * 2 * (size_t)L);
    for (int i = 0; i < L; i++) {  // row i sees keys 0..i: prefix [0, P), own [P, i]
        int np = i + 1 < P ? i + 1 : P;
        sp[2 * i] = (k_kv_span){kc, vc, (long)L * d, np, 0};
        sp[2 * i + 1] = (k_kv_span){kc + (long)P * d, vc + (long)P * d, (long)L * d, i + 1 - np, 0};
        int drop = W > 0 ? i + 1 - W : 0;  // as kv_cache.c
        if (drop > 0) sp[2 * i].dropped = drop;
        for (int j = 0; j < 2 && drop > 0; j++) {
            k_kv_span *x = &sp[2 * i + j];
            int dd = drop < x->len ? drop : x->len;
            x->k += (long)dd * d, x->v += (long)dd * d, x->len -= dd, drop -= dd;
        }
    }
    int nt = omp_get_max_threads();
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        memset(od, 0, sizeof(float) * (size_t)L * Hq * d);
        k_attention_cache_fwd(od, q + (long)L0 * Hq * d, sp, 2, L, Hq, Hkv, d);  // all rows in one call
        int all = same(od, out + (long)L0 * Hq * d, (long)L * Hq * d);
        for (int i = 0; i < L; i += 7)  // and some rows alone
            k_attention_cache_fwd(od + (long)i * Hq * d, q + (long)(L0 + i) * Hq * d, sp + 2 * i, 2, 1, Hq, Hkv, d);
        all &= same(od, out + (long)L0 * Hq * d, (long)L * Hq * d);
        CHECK(all, "attention_cache (prefix %d + own span) == training attention, L=%d Hq=%d Hkv=%d d=%d window %d, %d thread(s), bit for bit",
              P, L, Hq, Hkv, d, W, t);
    }
    omp_set_num_threads(nt);
    free(q), free(k), free(v), free(out), free(lse), free(scratch), free(kc), free(vc), free(od), free(sp);
}

// ---------------------------------------------------------------- lm-head

// The fused lm-head's log-probs and entropies == logits of one row (decode's lm-head,
// linear_rows) folded by k_lmhead_logprob_row.
static void test_lmhead_row(int N, int D, int V) {
    float *h = randn((long)N * D, 1), *W = randn((long)V * D, 0.2f);
    int *tg = malloc(sizeof(int) * (size_t)N);
    for (int i = 0; i < N; i++) tg[i] = i == 2 ? -1 : (int)rng_below(&R, (uint64_t)V);
    float *lp = malloc(sizeof(float) * (size_t)N), *ent = malloc(sizeof(float) * (size_t)N), *lse = malloc(sizeof(float) * (size_t)N);
    float *scratch = malloc(sizeof(float) * k_lmhead_scratch_floats(N, D, V)), *z = malloc(sizeof(float) * (size_t)V);
    k_lmhead_logprob_fwd(lp, ent, lse, h, W, tg, N, D, V, scratch);
    int ok = 1;
    double md = 0;
    for (int i = 0; i < N; i++) {
        if (tg[i] < 0) continue;
        k_linear_rows_fwd(z, h + (long)i * D, W, NULL, 1, D, V);
        float e, l = k_lmhead_logprob_row(z, V, tg[i], &e);
        ok &= l == lp[i] && e == ent[i] && k_lmhead_logprob_row(z, V, tg[i], NULL) == lp[i];
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < V; j++) s += exp(z[j] - mx);
        double ref = z[tg[i]] - mx - log(s);
        if (fabs(ref - l) > md) md = fabs(ref - l);
    }
    CHECK(ok, "lm-head N=%d D=%d V=%d: decode logits + lmhead_logprob_row == fused forward (log-prob, entropy), bit for bit", N, D, V);
    CHECK(md < 1e-4, "lmhead_logprob_row vs fp64 log-softmax of the same logits (max |diff| %.1e)", md);
    free(h), free(W), free(tg), free(lp), free(ent), free(lse), free(scratch), free(z);
}

int main(void) {
    rng_seed(&R, 99);
    k_gemm_set_own(1);  // what --deterministic turns on
    test_gemm(13, 37, 77, 1.0f, 0.0f);
    test_gemm(33, 70, 300, 1.0f, 1.0f);     // bias-style accumulate
    test_gemm(9, 21, 1100, 0.75f, -0.5f);   // K over one K block (512), alpha, beta
    test_gemm(70, 130, 48, 1.0f, 0.0f);     // threaded (row and column blocks)
    test_gemm(1, 1, 1, 1.0f, 0.0f);
    test_linear_rows(11, 100, 45);
    test_linear_frozen(12, 70, 150);
    test_rmsnorm(9, 300);
    test_rmsnorm(5, 16);
    test_attention_cache(150, 70, 4, 2, 24, 0);  // several tiles, a tile across the two spans
    test_attention_cache(66, 64, 2, 2, 64, 0);   // the prefix ends on a tile edge
    test_attention_cache(20, 3, 3, 1, 16, 0);    // one tile, multi-query
    test_attention_cache(150, 70, 4, 2, 24, 50);  // sliding window: through the prefix, then the own span
    test_attention_cache(200, 10, 2, 1, 16, 128);
    test_lmhead_row(7, 40, 5000);  // 3 vocabulary chunks of 2048
    k_lmhead_set_chunks(512, 64);  // many chunks, and a tail chunk
    test_lmhead_row(5, 33, 1000);
    k_lmhead_set_chunks(512, 2048);
    return test_done();
}
