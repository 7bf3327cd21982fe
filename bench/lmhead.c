// bench/lmhead: the fused lm-head + log-softmax (k_lmhead_logprob_fwd/bwd, through the
// kernel table) against plain k_sgemm calls of the same shapes (full N x V logits, the
// bound to reach), in GFLOP/s. Process CPU time, best of --reps after one warm-up: on
// a shared machine, CPU time with 1 thread measures the kernel, not the neighbours.
//   OMP_NUM_THREADS=1 build/bench/lmhead [--rows 2048] [--dim 256] [--vocab 151936] [--reps 3]
// Prints one JSON line: fwd/bwd ms and GFLOP/s, and the sgemm's. The backward's flops
// are its three GEMMs (the logits recomputed, dh, dW: 6 N D V), and so are the sgemm's.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "cli/flags.h"
#include "isa.h"
#include "kernels/kernels.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
#define BEST(reps, out, stmt)                                 \
    do {                                                      \
        stmt;                                                 \
        out = 1e30;                                           \
        for (int r_ = 0; r_ < (reps); r_++) {                 \
            double t0_ = cpu_now();                           \
            stmt;                                             \
            double d_ = cpu_now() - t0_;                      \
            if (d_ < out) out = d_;                           \
        }                                                     \
    } while (0)

static float *rnd(long n, float s, unsigned u) {
    float *x = malloc(sizeof(float) * n);
    if (!x) exit(1);
    for (long i = 0; i < n; i++) {
        u = u * 1664525u + 1013904223u;
        x[i] = s * ((float)(u >> 8) / 16777216.0f - 0.5f);
    }
    return x;
}

int main(int argc, char **argv) {
    int N = 2048, D = 256, V = 151936, reps = 3, sgemm = 1;
    flag flags[] = {
        {"rows", FLAG_INT, &N, "N, rows with a target"}, {"dim", FLAG_INT, &D, "D, hidden size"},
        {"vocab", FLAG_INT, &V, "V"}, {"reps", FLAG_INT, &reps, "best of"},
        {"sgemm", FLAG_INT, &sgemm, "1: also time the plain sgemms"},
    };
    if (flags_parse("lmhead", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL)) return 2;
    const struct kernels *kb = &kernels_cpu;
    float *h = rnd((long)N * D, 1, 1), *W = rnd((long)V * D, 0.2f, 2), *dlogp = rnd(N, 1, 3), *dent = rnd(N, 1, 4);
    float *logp = calloc(N, 4), *ent = calloc(N, 4), *lse = calloc(N, 4), *dh = calloc((long)N * D, 4),
          *dW = calloc((long)V * D, 4), *scratch = calloc(kb->lmhead_scratch_floats(N, D, V), 4);
    int *tg = malloc(sizeof(int) * N);
    if (!logp || !ent || !lse || !dh || !dW || !scratch || !tg) return 1;
    for (int i = 0; i < N; i++) tg[i] = (int)((i * 7919L) % V);
    double tf, tb, t1 = 0, t2 = 0, t3 = 0;
    BEST(reps, tf, kb->lmhead_logprob_fwd(logp, ent, lse, h, W, tg, N, D, V, scratch));
    BEST(reps, tb, kb->lmhead_logprob_bwd(dh, dW, dlogp, dent, h, W, tg, lse, ent, N, D, V, scratch));
    if (sgemm) {
        float *Z = malloc(sizeof(float) * N * (long)V);
        if (!Z) return 1;
        BEST(reps, t1, k_sgemm(0, 1, N, V, D, 1, h, D, W, D, 0, Z, V));
        BEST(reps, t2, k_sgemm(0, 0, N, D, V, 1, Z, V, W, D, 1, dh, D));
        BEST(reps, t3, k_sgemm(1, 0, V, D, N, 1, Z, V, h, D, 1, dW, D));
        free(Z);
    }
    double gf = 2.0 * N * D * (double)V / 1e9;
    printf("{\"N\": %d, \"D\": %d, \"V\": %d, \"fwd_ms\": %.1f, \"fwd_gflops\": %.1f, \"bwd_ms\": %.1f, "
           "\"bwd_gflops\": %.1f, \"sgemm_fwd_ms\": %.1f, \"sgemm_fwd_gflops\": %.1f, \"sgemm_bwd_ms\": %.1f, "
           "\"sgemm_bwd_gflops\": %.1f, \"isa\": \"%s\"}\n",
           N, D, V, 1e3 * tf, gf / tf, 1e3 * tb, 3 * gf / tb, 1e3 * t1, sgemm ? gf / t1 : 0, 1e3 * (t1 + t2 + t3),
           sgemm ? 3 * gf / (t1 + t2 + t3) : 0, BENCH_ISA);
    free(h), free(W), free(dlogp), free(dent), free(logp), free(ent), free(lse), free(dh), free(dW), free(scratch),
        free(tg);
    return 0;
}
