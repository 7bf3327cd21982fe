// bench/generate: temper's side of the `generate` bench lines. One prompt of --prompt
// random tokens, --batch samples of it (the group shares the prompt's KV prefix),
// --new tokens each (no EOS stop), temperature 1, through rollout_run and the KV
// cache. Prints one JSON line like bench/torch_generate.py:
//   {"tok_per_s", "seconds", "weight_bytes", "memcpy_gbps", "bound_tok_per_s", "isa", "blas"}
// tok_per_s = batch * new / wall time of the whole generation (prefill included).
// The memory-bandwidth bound of batch-1 decoding: every token reads the weights that
// take part (all but the embedding table, the lm-head included) once, so it is at most
// memcpy bandwidth / weight bytes.
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/progress.h"
#include "base/rng.h"
#include "cli/flags.h"
#include "cli/omp_wait.h"
#include "isa.h"
#include "model/model.h"
#include "rollout/rollout.h"

static double memcpy_gbps(void) {
    size_t n = (size_t)256 << 20;
    char *a = malloc(n), *b = malloc(n);
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 0;
    for (int r = 0; r < 4; r++) {
        double t = now_seconds();
        memcpy(b, a, n);
        double g = (double)n / (now_seconds() - t) / 1e9;
        if (g > best) best = g;
    }
    free(a);
    free(b);
    return best;
}

int main(int argc, char **argv) {
    omp_wait_default(argv);  // the CLI's OpenMP wait policy (cli/omp_wait.h)
    const char *dir = NULL;
    int B = 1, T = 128, P = 32, reps = 2;
    flag flags[] = {{"model", FLAG_STR, &dir, ""}, {"batch", FLAG_INT, &B, ""}, {"new", FLAG_INT, &T, ""},
                    {"prompt", FLAG_INT, &P, ""}, {"reps", FLAG_INT, &reps, ""}};
    if (flags_parse("generate", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL) || !dir) return 2;
    tm_error err;
    model m;
    if (model_load(&m, dir, &err)) { fprintf(stderr, "generate: %s\n", err.msg); return 1; }
    int *prompt = malloc(sizeof(int) * (size_t)P);
    rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < P; i++) prompt[i] = (int)rng_below(&r, (uint64_t)m.cfg.vocab);
    const int *pp[1] = {prompt};
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = B;
    o.batch = B;
    o.max_new_tokens = T;
    o.seed = 5;
    rollout_traj *tr = calloc((size_t)B, sizeof *tr);
    double best = 1e30;
    for (int k = 0; k < reps + 1; k++) {  // the first run warms up (page faults, BLAS init)
        rollout_backend be;
        rollout_model_ctx ctx;
        rollout_backend_model(&be, &ctx, &m);
        double t0 = now_seconds();
        if (rollout_run(&be, NULL, pp, &P, 1, &o, tr, &err)) { fprintf(stderr, "generate: %s\n", err.msg); return 1; }
        double t = now_seconds() - t0;
        if (k > 0 && t < best) best = t;
        for (int i = 0; i < B; i++) rollout_traj_free(&tr[i]);
    }
    size_t wb = (m.numel - (m.cfg.tie_embeddings ? 0 : (size_t)m.cfg.vocab * m.cfg.hidden)) * sizeof(float);
    double bw = memcpy_gbps();
    printf("{\"tok_per_s\": %.1f, \"seconds\": %.4f, \"weight_bytes\": %zu, \"memcpy_gbps\": %.2f, \"bound_tok_per_s\": %.1f, "
           "\"threads\": %d, \"isa\": \"%s\", \"blas\": \"OpenBLAS %s\"}\n",
           B * T / best, best, wb, bw, bw * 1e9 / (double)wb, omp_get_max_threads(), BENCH_ISA, openblas_get_corename());
    free(tr);
    free(prompt);
    model_free(&m);
    return 0;
}
