// bench/kernels_bench.c: throwaway timing of the CPU kernels against plain sgemm of
// the same shapes. Not built by default:
//   make build/libtemper.a
//   gcc -std=c17 -O3 -march=native -fopenmp -D_GNU_SOURCE -I. -Isrc bench/kernels_bench.c
//     build/libtemper.a -lopenblas -lm -o build/kernels_bench
//   OMP_NUM_THREADS=2 ./build/kernels_bench [section]     (section: attn, lmhead, handoff, misc)
//   BENCH_CPU_TIME=1 times with process CPU time instead of wall time.
// Reports the median of several repetitions after one warm-up call.
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
// Process CPU time: on this shared 2-core machine, wall time is at the mercy of other
// jobs; with 1 thread the CPU time is the better measure of the kernel itself.
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int use_cpu_time;
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
#define TIME(reps, ms, stmt)                                           \
    do {                                                              \
        double ts_[64];                                               \
        stmt;                                                         \
        for (int r_ = 0; r_ < (reps); r_++) {                         \
            double t0_ = use_cpu_time ? cpu_now() : now();            \
            stmt;                                                     \
            ts_[r_] = (use_cpu_time ? cpu_now() : now()) - t0_;       \
        }                                                             \
        qsort(ts_, (reps), sizeof(double), cmp_d);                    \
        ms = 1e3 * ts_[(reps) / 2];                                   \
    } while (0)

static float *rnd(long n, float s) {
    float *x = malloc(sizeof(float) * n);
    unsigned u = 12345;
    for (long i = 0; i < n; i++) {
        u = u * 1664525u + 1013904223u;
        x[i] = s * ((float)(u >> 8) / 16777216.0f - 0.5f);
    }
    return x;
}

// ---------------------------------------------------------------- attention

// The alternative design: per (sequence, head) two GEMMs (k_sgemm) from the serial
// region with an L x L score scratch and an OpenMP softmax in between. Forward only;
// its backward would need 4 more GEMMs per block (plus the score recompute).
static void attn_fwd_sgemm(float *out, const float *q, const float *k, const float *v, const int *cu, int nseq,
                           int Hq, int Hkv, int d, float *S) {
    float scale = 1.0f / sqrtf((float)d);
    for (int s = 0; s < nseq; s++) {
        int st = cu[s], L = cu[s + 1] - st;
        for (int h = 0; h < Hq; h++) {
            int kv = h / (Hq / Hkv);
            k_sgemm(0, 1, L, L, d, scale, q + (long)st * Hq * d + h * d, Hq * d,
                        k + (long)st * Hkv * d + kv * d, Hkv * d, 0.0f, S, L);
            #pragma omp parallel for
            for (int i = 0; i < L; i++) {
                float *r = S + (long)i * L, m = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) m = r[j] > m ? r[j] : m;
                for (int j = 0; j <= i; j++) sum += (r[j] = expf(r[j] - m));
                for (int j = 0; j <= i; j++) r[j] /= sum;
                for (int j = i + 1; j < L; j++) r[j] = 0;
            }
            k_sgemm(0, 0, L, d, L, 1.0f, S, L, v + (long)st * Hkv * d + kv * d,
                        Hkv * d, 0.0f, out + (long)st * Hq * d + h * d, Hq * d);
        }
    }
}

static void bench_attention(int nseq, int L, int Hq, int Hkv, int d) {
    int N = nseq * L, *cu = malloc(sizeof(int) * (nseq + 1));
    for (int s = 0; s <= nseq; s++) cu[s] = s * L;
    long nq = (long)N * Hq * d, nk = (long)N * Hkv * d;
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *dout = rnd(nq, 1);
    float *out = calloc(nq, 4), *lse = calloc((long)N * Hq, 4), *dq = calloc(nq, 4), *dk = calloc(nk, 4),
          *dv = calloc(nk, 4);
    float *scratch = calloc(k_attention_scratch_floats(cu, nseq, Hq, Hkv, d), 4), *S = calloc((long)L * L, 4);
    // Useful (causal) flops: 2 matmuls forward, 5 in the backward (QK^T recompute,
    // dO V^T, P^T dO, dS^T Q, dS K), each 2 d flops per visible (query, key) pair.
    double pairs = (double)nseq * Hq * L * (L + 1) / 2;
    double ff = 4 * d * pairs, fb = 10 * d * pairs;
    double tf, tb, ts, tg;
    TIME(9, tf, k_attention_fwd(out, lse, q, k, v, cu, nseq, N, Hq, Hkv, d, scratch));
    TIME(9, tb, k_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse, cu, nseq, N, Hq, Hkv, d, scratch));
    TIME(9, ts, attn_fwd_sgemm(out, q, k, v, cu, nseq, Hq, Hkv, d, S));
    // The GEMMs alone of the sgemm design (full L x L, as sgemm cannot skip the
    // masked half): 2 forward.
    TIME(9, tg, for (int s = 0; s < nseq; s++) for (int h = 0; h < Hq; h++) {
        k_sgemm(0, 1, L, L, d, 1.0f, q + (long)s * L * Hq * d + h * d, Hq * d,
                    k + (long)s * L * Hkv * d, Hkv * d, 0.0f, S, L);
        k_sgemm(0, 0, L, d, L, 1.0f, S, L, v + (long)s * L * Hkv * d, Hkv * d,
                    0.0f, out + (long)s * L * Hq * d + h * d, Hq * d);
    });
    printf("attention %dx%d Hq=%d Hkv=%d d=%d: fwd %.2f ms (%.0f GFLOP/s causal), bwd %.2f ms (%.0f GFLOP/s)\n", nseq,
           L, Hq, Hkv, d, tf, ff / tf / 1e6, tb, fb / tb / 1e6);
    printf("    sgemm-per-(seq,head) design: fwd %.2f ms; its 2 GEMMs alone %.2f ms\n", ts, tg);
    free(cu), free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv), free(scratch),
        free(S);
}

// ---------------------------------------------------------------- lm-head

static void bench_lmhead(int N, int D, int V, int rows, int vocab, int reps) {
    k_lmhead_set_chunks(rows, vocab);
    float *h = rnd((long)N * D, 1), *W = rnd((long)V * D, 0.2f), *dlogp = rnd(N, 1), *dent = rnd(N, 1);
    float *logp = calloc(N, 4), *ent = calloc(N, 4), *lse = calloc(N, 4), *dh = calloc((long)N * D, 4),
          *dW = calloc((long)V * D, 4);
    int *tg = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tg[i] = (i * 7919) % V;
    float *scratch = calloc(k_lmhead_scratch_floats(N, D, V), 4);
    double tf, tb;
    TIME(reps, tf, k_lmhead_logprob_fwd(logp, ent, lse, h, W, tg, N, D, V, scratch));
    TIME(reps, tb, k_lmhead_logprob_bwd(dh, dW, dlogp, dent, h, W, tg, lse, ent, N, D, V, scratch));
    double gf = 2.0 * N * D * V / 1e9;
    printf("lmhead N=%d D=%d V=%d chunks %dx%d: fwd %.1f ms (%.0f GFLOP/s), bwd %.1f ms (%.0f GFLOP/s)\n", N, D, V,
           rows, vocab, tf, gf / tf * 1e3, tb, 3 * gf / tb * 1e3);
    free(h), free(W), free(dlogp), free(dent), free(logp), free(ent), free(lse), free(dh), free(dW), free(tg),
        free(scratch);
    k_lmhead_set_chunks(512, 2048);
}

// Plain sgemm of the lm-head shapes (full N x V logits), the bound to compare to.
static void bench_lmhead_sgemm(int N, int D, int V, int reps) {
    float *h = rnd((long)N * D, 1), *W = rnd((long)V * D, 0.2f), *Z = calloc((long)N * V, 4),
          *dh = calloc((long)N * D, 4), *dW = calloc((long)V * D, 4);
    double t1, t2, t3;
    TIME(reps, t1, k_sgemm(0, 1, N, V, D, 1, h, D, W, D, 0, Z, V));
    TIME(reps, t2, k_sgemm(0, 0, N, D, V, 1, Z, V, W, D, 1, dh, D));
    TIME(reps, t3, k_sgemm(1, 0, V, D, N, 1, Z, V, h, D, 1, dW, D));
    double gf = 2.0 * N * D * V / 1e9;
    printf("sgemm lmhead shapes N=%d D=%d V=%d: logits %.1f ms (%.0f GFLOP/s), dh %.1f ms, dW %.1f ms; fwd-equiv %.1f, "
           "bwd-equiv %.1f ms\n",
           N, D, V, t1, gf / t1 * 1e3, t2, t3, t1, t1 + t2 + t3);
    free(h), free(W), free(Z), free(dh), free(dW);
}

// ---------------------------------------------------------------- thread pools

void openblas_set_num_threads(int);
char *openblas_get_corename(void);

static void omp_pass(float *c, int M, int N) {
    #pragma omp parallel for
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) c[(long)i * N + j] = expf(c[(long)i * N + j] * 1e-3f);
}

// One lm-head-like step: a GEMM then an OpenMP pass over its output, repeated.
// A: OpenBLAS's own 2 threads for the GEMM (two thread pools taking turns);
// B: k_sgemm, i.e. the GEMM split over the OpenMP threads (one pool).
static void bench_handoff(int M, int N, int K, int iters) {
    float *a = rnd((long)M * K, 1), *b = rnd((long)N * K, 1), *c = calloc((long)M * N, 4);
    double ta, tb, tg;
    openblas_set_num_threads(omp_get_max_threads());
    TIME(5, tg, for (int it = 0; it < iters; it++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N));
    TIME(5, ta, for (int it = 0; it < iters; it++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
        omp_pass(c, M, N);
    });
    double tk;
    TIME(5, tk, for (int it = 0; it < iters; it++) k_sgemm(0, 1, M, N, K, 1, a, K, b, K, 0, c, N));
    TIME(5, tb, for (int it = 0; it < iters; it++) {
        k_sgemm(0, 1, M, N, K, 1, a, K, b, K, 0, c, N);
        omp_pass(c, M, N);
    });
    double gf = 2.0 * M * N * K * iters / 1e9;
    printf("gemm %dx%dx%d x%d: OpenBLAS threads: gemm only %.1f ms (%.0f GFLOP/s), + OpenMP pass %.1f ms | "
           "k_sgemm (OpenMP split): gemm only %.1f ms (%.0f GFLOP/s), + OpenMP pass %.1f ms\n",
           M, N, K, iters, tg, gf / tg * 1e3, ta, tk, gf / tk * 1e3, tb);
    free(a), free(b), free(c);
}

// ---------------------------------------------------------------- the rest

static void bench_misc(int N, int D, int F, int H, int hd) {
    float *x = rnd((long)N * D, 1), *y = calloc((long)N * D, 4), *w = rnd(D, 1), *rstd = calloc(N, 4),
          *dx = calloc((long)N * D, 4), *dw = calloc(D, 4);
    float *g = rnd((long)N * F, 4), *u = rnd((long)N * F, 1), *hh = calloc((long)N * F, 4),
          *dg = calloc((long)N * F, 4), *du = calloc((long)N * F, 4);
    float *W1 = rnd((long)F * D, 0.1f), *y1 = calloc((long)N * F, 4), *dW1 = calloc((long)F * D, 4);
    float *qk = rnd((long)N * H * hd, 1), *inv = malloc(sizeof(float) * hd / 2);
    int *pos = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) pos[i] = i % 512;
    for (int i = 0; i < hd / 2; i++) inv[i] = powf(1e6f, -2.0f * i / hd);
    double t;
    TIME(9, t, k_rmsnorm_fwd(y, rstd, x, w, N, D, 1e-6f));
    printf("rmsnorm fwd N=%d D=%d: %.3f ms\n", N, D, t);
    TIME(9, t, k_rmsnorm_bwd(dx, dw, y, x, w, rstd, N, D));
    printf("rmsnorm bwd: %.3f ms\n", t);
    float *rstd_h = calloc((long)N * H, 4);
    // hh and dg (N*F >= N*H*hd floats) serve as the q-norm output and dx.
    TIME(9, t, k_rmsnorm_fwd(hh, rstd_h, qk, w, N * H, hd, 1e-6f));
    printf("rmsnorm fwd as q-norm (N*H=%d rows, D=%d): %.3f ms\n", N * H, hd, t);
    TIME(9, t, k_rmsnorm_bwd(dg, dw, qk, qk, w, rstd_h, N * H, hd));
    free(rstd_h);
    printf("rmsnorm bwd as q-norm (N*H=%d rows, D=%d): %.3f ms\n", N * H, hd, t);
    TIME(9, t, k_rope_fwd(qk, pos, inv, N, H, hd));
    printf("rope fwd N=%d H=%d d=%d: %.3f ms\n", N, H, hd, t);
    TIME(9, t, k_swiglu_fwd(hh, g, u, (long)N * F));
    printf("swiglu fwd n=%ld: %.3f ms\n", (long)N * F, t);
    TIME(9, t, k_swiglu_bwd(dg, du, hh, g, u, (long)N * F));
    printf("swiglu bwd: %.3f ms\n", t);
    TIME(5, t, k_linear_fwd(y1, x, W1, NULL, N, D, F));
    printf("linear fwd N=%d in=%d out=%d: %.2f ms (%.0f GFLOP/s)\n", N, D, F, t, 2.0 * N * D * F / t / 1e6);
    TIME(5, t, k_linear_bwd(dx, dW1, NULL, y1, x, W1, N, D, F));
    printf("linear bwd: %.2f ms (%.0f GFLOP/s)\n", t, 4.0 * N * D * F / t / 1e6);
    free(x), free(y), free(w), free(rstd), free(dx), free(dw), free(g), free(u), free(hh), free(dg), free(du);
    free(W1), free(y1), free(dW1), free(qk), free(inv), free(pos);
}

int main(int argc, char **argv) {
    const char *sec = argc > 1 ? argv[1] : "all";
    int all = !strcmp(sec, "all");
    use_cpu_time = getenv("BENCH_CPU_TIME") != NULL;
    float one = 1, zero = 0;
    k_sgemm(0, 0, 1, 1, 1, 1, &one, 1, &one, 1, 0, &zero, 1);  // lets k_sgemm fix the OpenBLAS core first
    printf("OpenMP threads %d, OpenBLAS threads %d, OpenBLAS core %s, timing %s\n", omp_get_max_threads(),
           openblas_get_num_threads(), openblas_get_corename(), use_cpu_time ? "process CPU time" : "wall");
    if (all || !strcmp(sec, "attn")) {
        bench_attention(8, 256, 4, 2, 64);
        bench_attention(4, 512, 12, 4, 64);
    }
    if (all || !strcmp(sec, "lmhead")) {
        int N = getenv("BENCH_LMHEAD_N") ? atoi(getenv("BENCH_LMHEAD_N")) : 512, D = 1024, V = 151936;
        bench_lmhead_sgemm(N, D, V, 3);
        const char *ch = getenv("BENCH_LMHEAD_CHUNKS");  // e.g. "128x4096,256x8192"
        if (!ch) ch = "512x2048,128x4096,256x4096";
        for (const char *p = ch; p && *p;) {
            int r = 0, v = 0;
            if (sscanf(p, "%dx%d", &r, &v) == 2) bench_lmhead(N, D, V, r, v, 3);
            p = strchr(p, ',');
            if (p) p++;
        }
        bench_lmhead(16, D, V, 512, 2048, 3);  // few rows
    }
    if (all || !strcmp(sec, "handoff")) {
        bench_handoff(128, 4096, 1024, 10);
        bench_handoff(2048, 1024, 1024, 2);
        bench_handoff(1024, 1024, 1024, 2);
    }
    if (all || !strcmp(sec, "misc")) bench_misc(2048, 1024, 3072, 16, 128);
    return 0;
}
