// bench/bb16_gemm: the three GEMMs of a linear layer (forward y = x W^T, dx = dy W,
// dW = dy^T x) of --bf16 training (k_linear_bb16_*) on each path this CPU has, beside the
// fp32 ones (k_linear_fwd/bwd: OpenBLAS) in the same run. Process CPU time, best of 3;
// one line per shape and path:
//   bb16_gemm M=2048 in=768 out=2048 avx512: fwd 110.2 dx 105.1 dW 104.0 GFLOP/s (fp32 OpenBLAS 126.4 129.4 122.6)
//   build/bench/bb16_gemm [--rows M]   shapes: the small preset's (768x768, 768x2048, 2048x768)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int M = argc > 2 && !strcmp(argv[1], "--rows") ? atoi(argv[2]) : 2048;
    int shapes[3][2] = {{768, 768}, {768, 2048}, {2048, 768}};
    int paths[] = {-1, K_BB16_AMX, K_BB16_DPBF16, K_BB16_AVX512, K_BB16_AVX2};
    for (int s = 0; s < 3; s++) {
        int in = shapes[s][0], out = shapes[s][1];
        float *x = malloc(sizeof(float) * M * in), *W = malloc(sizeof(float) * out * in), *y = malloc(sizeof(float) * M * out),
              *dy = malloc(sizeof(float) * M * out), *dx = malloc(sizeof(float) * M * in), *dW = malloc(sizeof(float) * out * in);
        uint16_t *W16 = malloc(sizeof(uint16_t) * out * in);
        if (!x || !W || !y || !dy || !dx || !dW || !W16) return fprintf(stderr, "bb16_gemm: out of memory\n"), 1;
        srand(1);
        for (long i = 0; i < (long)M * in; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
        for (long i = 0; i < (long)out * in; i++) {
            W[i] = (float)rand() / RAND_MAX - 0.5f;
            uint32_t u;
            memcpy(&u, &W[i], sizeof u);
            W16[i] = (uint16_t)(u >> 16);
        }
        for (long i = 0; i < (long)M * out; i++) dy[i] = (float)rand() / RAND_MAX - 0.5f;
        double f32[3] = {0};
        for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
            int p = paths[pi];
            if (p >= 0 && k_bb16_set_path(p)) continue;
            double best[3] = {1e30, 1e30, 1e30};
            for (int r = -1; r < 3; r++) {  // r = -1: a warm-up call, not timed
                double t0 = cpu_now();
                if (p < 0) k_linear_fwd(y, x, W, NULL, M, in, out);
                else k_linear_bb16_fwd(y, x, W16, NULL, M, in, out);
                double t1 = cpu_now();
                if (p < 0) k_linear_bwd(dx, NULL, NULL, dy, x, W, M, in, out);
                else k_linear_bb16_bwd(dx, NULL, NULL, dy, x, W16, M, in, out);
                double t2 = cpu_now();
                if (p < 0) k_linear_bwd(NULL, dW, NULL, dy, x, W, M, in, out);
                else k_linear_bb16_bwd(NULL, dW, NULL, dy, x, W16, M, in, out);
                double t3 = cpu_now(), t[3] = {t1 - t0, t2 - t1, t3 - t2};
                for (int j = 0; j < 3; j++)
                    if (r >= 0 && t[j] < best[j]) best[j] = t[j];
            }
            double gf = 2.0 * M * in * out * 1e-9;
            if (p < 0) {
                for (int j = 0; j < 3; j++) f32[j] = gf / best[j];
                continue;
            }
            printf("bb16_gemm M=%d in=%d out=%d %s: fwd %.1f dx %.1f dW %.1f GFLOP/s (fp32 OpenBLAS %.1f %.1f %.1f)\n", M, in,
                   out, k_bb16_path_name(p), gf / best[0], gf / best[1], gf / best[2], f32[0], f32[1], f32[2]);
        }
        k_bb16_set_path(K_BB16_AUTO);
        free(x), free(W), free(y), free(dy), free(dx), free(dW), free(W16);
    }
    return 0;
}
