// bench/det_forward.c: the cost of --deterministic: model_forward (log-probs of every
// position, the trainer's and `temper score`'s forward) with the forward GEMMs on
// OpenBLAS and on the fixed-order GEMM (src/kernels/cpu_gemm_own.c), alternated in one
// process, best of --reps each. Prints one JSON line.
#include "model/model.h"
#include "model/batch.h"
#include "kernels/cpu_tuning.h"
#include "base/rng.h"
#include "cli/flags.h"
#include "cli/omp_wait.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    omp_wait_default(argv);
    const char *dir = NULL;
    int B = 4, T = 512, reps = 4;
    flag flags[] = {{"model", FLAG_STR, &dir, ""}, {"batch", FLAG_INT, &B, ""}, {"seq", FLAG_INT, &T, ""},
                    {"reps", FLAG_INT, &reps, ""}};
    if (flags_parse("det_forward", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL) || !dir) return 2;
    tm_error err;
    model m;
    batch_builder bb;
    if (model_load(&m, dir, &err) || model_reserve(&m, B * T, &err) || batch_init(&bb, B * T, B, &err)) {
        fprintf(stderr, "det_forward: %s\n", err.msg);
        return 1;
    }
    rng r;
    rng_seed(&r, 1);
    int *ids = malloc(sizeof(int) * (size_t)T);
    uint8_t *tr = malloc((size_t)T);
    float *logp = malloc(sizeof(float) * (size_t)B * T);
    if (!ids || !tr || !logp) return 1;
    for (int t = 0; t < T; t++) tr[t] = 1;
    for (int s = 0; s < B; s++) {
        for (int t = 0; t < T; t++) ids[t] = (int)rng_below(&r, (uint64_t)m.cfg.vocab);
        batch_add(&bb, ids, tr, T);
    }
    model_batch b = batch_view(&bb);
    double best[2] = {1e30, 1e30};
    for (int i = 0; i <= reps; i++)  // the first round warms up
        for (int own = 0; own < 2; own++) {
            k_gemm_set_own(own);
            double t0 = omp_get_wtime();
            if (model_forward(&m, &b, logp, NULL, &err)) { fprintf(stderr, "det_forward: %s\n", err.msg); return 1; }
            double t = omp_get_wtime() - t0;
            if (i > 0 && t < best[own]) best[own] = t;
        }
    printf("{\"openblas_tok_per_s\": %.1f, \"deterministic_tok_per_s\": %.1f, \"time_ratio\": %.3f}\n", B * T / best[0],
           B * T / best[1], best[1] / best[0]);
    return 0;
}
