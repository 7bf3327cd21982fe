// bench/det_gemm.c: the fixed-order GEMM (src/kernels/cpu_gemm_own.c) against OpenBLAS's
// sgemm on the forward's x W^T shapes (tiny, small, a Qwen3-0.6B layer, the lm-head
// chunk), at training rows (2048) and decode rows (1, 4, 16), 1 and 2 threads. Both go
// through k_sgemm (k_gemm_set_own 0/1), alternated in one process, best of --reps each.
// --isa 0|1|2 picks the own GEMM's path (c, avx2, avx512). One line per shape.
// --frozen 1: as in a rollout (k_gemm_weights_frozen), and through k_linear_rows_fwd, the
// decoder's call: the default side then takes its GEMV for <= 8 rows, the deterministic
// side keeps W packed.
#include "kernels/kernels.h"
#include "kernels/cpu_tuning.h"
#include "cli/flags.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// One thread: the thread's CPU time (the machine may be shared); more: wall time.
static double now(void) {
    if (omp_get_max_threads() > 1) return omp_get_wtime();
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int reps = 5, isa = -1, threads = 0, only = -1, frozen = 0;
    flag flags[] = {{"reps", FLAG_INT, &reps, ""}, {"isa", FLAG_INT, &isa, ""}, {"threads", FLAG_INT, &threads, ""},
                    {"rows", FLAG_INT, &only, ""}, {"frozen", FLAG_INT, &frozen, ""}};
    if (flags_parse("det_gemm", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL)) return 2;
    if (threads > 0) omp_set_num_threads(threads);
    k_gemm_set_isa(isa);
    if (frozen) k_gemm_weights_frozen(1);
    static const struct { const char *name; int N, K; } shapes[] = {
        {"tiny qkv", 512, 256},   {"tiny up", 1536, 256},   {"tiny down", 256, 768},  {"tiny head", 2048, 256},
        {"small q", 768, 768},    {"small up", 4096, 768},  {"small down", 768, 2048}, {"small head", 2048, 768},
        {"qwen q", 2048, 1024},   {"qwen up", 6144, 1024},  {"qwen down", 1024, 3072},
    };
    const int rows[] = {2048, 16, 4, 1};
    size_t maxA = 2048L * 3072, maxB = 6144L * 1024, maxC = 2048L * 6144;
    float *A = malloc(4 * maxA), *B = malloc(4 * maxB), *C = malloc(4 * maxC);
    for (size_t i = 0; i < maxA; i++) A[i] = (float)((i * 7919 % 1000) / 1000.0 - 0.5);
    for (size_t i = 0; i < maxB; i++) B[i] = (float)((i * 104729 % 1000) / 1000.0 - 0.5);
    memset(C, 0, 4 * maxC);
    printf("isa %s, %d thread(s), %s\n", k_gemm_isa_name(k_gemm_set_isa(isa)), omp_get_max_threads(), omp_get_max_threads() > 1 ? "wall time" : "thread CPU time");
    double lr = 0, ln = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            int M = rows[r], N = shapes[s].N, K = shapes[s].K;
            if (only >= 0 && M != only) continue;
            double flop = 2.0 * M * N * K, best[2] = {1e30, 1e30};
            int inner = (int)(2e8 / flop) + 1;
            for (int i = 0; i <= reps; i++)
                for (int own = 0; own < 2; own++) {
                    k_gemm_set_own(own);
                    double t0 = now();
                    for (int j = 0; j < inner; j++)
                        if (frozen) k_linear_rows_fwd(C, A, B, NULL, M, K, N);
                        else k_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
                    double t = (now() - t0) / inner;
                    if (i > 0 && t < best[own]) best[own] = t;
                }
            printf("%-11s M=%-4d N=%-4d K=%-4d  openblas %6.1f  own %6.1f GFLOP/s  time ratio %.2f\n", shapes[s].name, M, N,
                   K, flop / best[0] * 1e-9, flop / best[1] * 1e-9, best[1] / best[0]);
            lr += __builtin_log(best[1] / best[0]), ln += 1;
        }
    printf("geometric mean time ratio %.3f\n", __builtin_exp(lr / ln));
    if (frozen) k_gemm_weights_frozen(0);
    free(A), free(B), free(C);
    return 0;
}
