// bench/train_step: temper's side of `make bench`. Times one training step (forward,
// SFT loss, backward, AdamW) of the model in --model on random tokens, B sequences of
// T tokens packed into one row, and prints one JSON line like bench/torch_train_step.py:
//   {"tok_per_s", "ms_per_step", "cpu_ms_per_step", "peak_mib", "blas", "threads", "gflops", "sgemm_peak_gflops", "isa",
//    "bf16"}
// --bf16: mixed precision as `temper sft --bf16` runs it (model_bf16_enable); "bf16" names
// the bf16 GEMM path taken (avx512-bf16 / avx2 / scalar), "" without.
// gflops counts 6*N*tokens (N = parameters that take part in matmuls: everything but the
// embedding table, the lm-head included) plus attention as PaLM's MFU formula does
// (12 * layers * heads * head_dim * T per token, causality not discounted).
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "base/progress.h"
#include "base/rng.h"
#include "cli/flags.h"
#include "cli/omp_wait.h"
#include "isa.h"
#include "model/batch.h"
#include "model/model.h"
#include "objectives/dpo.h"
#include "objectives/sft.h"
#include "train/optimizer.h"

static double sgemm_peak(void) {
    int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = (float)(i % 13) * 1e-3f;
    // through k_sgemm: the engine's own GEMM path (OpenMP threads over OpenBLAS blocks)
    k_sgemm(0, 1, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t = now_seconds();
        k_sgemm(0, 1, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * (double)n / (now_seconds() - t) / 1e9;
        if (g > best) best = g;
    }
    free(a); free(b); free(c);
    return best;
}

int main(int argc, char **argv) {
    omp_wait_default(argv);  // the CLI's OpenMP wait policy (cli/omp_wait.h)
    const char *dir = NULL;
    int B = 8, T = 256, steps = 5, warmup = 1, seed = 0;
    const char *objective = "sft";
    int bf16 = 0;
    flag flags[] = {
        {"model", FLAG_STR, &dir, ""}, {"batch", FLAG_INT, &B, ""}, {"seq", FLAG_INT, &T, ""},
        {"steps", FLAG_INT, &steps, ""}, {"warmup", FLAG_INT, &warmup, ""}, {"seed", FLAG_INT, &seed, ""},
        {"objective", FLAG_STR, &objective, "sft | dpo (B pairs of chosen/rejected, first half prompt, reference precomputed)"},
        {"bf16", FLAG_BOOL, &bf16, "mixed precision: bf16 GEMMs, fp32 master weights"},
    };
    int dpo = !strcmp(objective, "dpo");
    int nseq = dpo ? 2 * B : B;
    if (flags_parse("train_step", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL) || !dir) return 2;
    tm_error err;
    model m;
    if (model_load(&m, dir, &err) || model_enable_grad(&m, &err) || model_reserve(&m, nseq * T, &err) ||
        (bf16 && model_bf16_enable(&m, &err))) {
        fprintf(stderr, "train_step: %s\n", err.msg);
        return 1;
    }
    model_optimizer opt;
    adamw_hparams h = {1e-5, 0.9, 0.999, 1e-8, 0.0};
    model_optimizer_init(&opt, &m, h, 1.0, &err);
    batch_builder bb;
    batch_init(&bb, nseq * T, nseq, &err);
    rng r;
    rng_seed(&r, (uint64_t)seed);
    int *ids = malloc(sizeof(int) * (size_t)T);
    uint8_t *trained = malloc((size_t)T);
    for (int t = 0; t < T; t++) trained[t] = !dpo || t >= T / 2;  // DPO trains the completion half
    for (int s = 0; s < nseq; s++) {
        // a DPO pair shares its prompt: the rejected row keeps the chosen row's first half
        for (int t = dpo && s % 2 ? T / 2 : 0; t < T; t++) ids[t] = (int)rng_below(&r, (uint64_t)m.cfg.vocab);
        batch_add(&bb, ids, trained, T);
    }
    model_batch b = batch_view(&bb);
    int N = nseq * T;
    float *logp = malloc(sizeof(float) * (size_t)N), *dlogp = malloc(sizeof(float) * (size_t)N);
    float *ref = malloc(sizeof(float) * (size_t)N);
    int *span = malloc(sizeof(int) * 2 * (size_t)nseq), *pair = malloc(sizeof(int) * 2 * (size_t)nseq);
    for (int s = 0; s < nseq; s++) span[2 * s] = s * T, span[2 * s + 1] = (s + 1) * T, pair[s] = s;
    int ntrain = 0;
    for (int i = 0; i < N; i++) ntrain += b.targets[i] >= 0;
    if (dpo) model_forward(&m, &b, ref, NULL, &err);  // reference log-probs, precomputed as the trainer does
    dpo_hparams dh = dpo_hparams_default();
    dpo_norm dn = {B, 0, 0};
    double total = 0, cpu_total = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now_seconds();
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        model_forward(&m, &b, logp, NULL, &err);
        if (dpo) {
            // position-aligned log-probs serve as well as token-aligned ones here: the
            // objective sums them per sequence, and untrained positions hold 0 (the
            // lm-head also ignores their gradient)
            seq_batch sb = {N, logp, ref, NULL, NULL, nseq, span};
            double loss;
            dpo_loss(&sb, B, pair, &dh, &dn, &loss, dlogp, NULL, &err);
        } else {
            sft_nll(logp, b.targets, b.n_tokens, ntrain, dlogp);
        }
        model_backward(&m, &b, dlogp, NULL);
        model_optimizer_step(&opt, &m, h.lr);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        if (s >= warmup) total += now_seconds() - t0, cpu_total += (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
    }
    double ms = total / steps * 1e3, tokens = (double)N;
    const model_config *c = &m.cfg;
    double n_matmul = (double)m.numel - (c->tie_embeddings ? 0 : (double)c->vocab * c->hidden);
    double flops = 6.0 * n_matmul * tokens + 12.0 * c->layers * c->heads * c->head_dim * (double)T * tokens;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"pairs_per_s\": %.3f, \"tok_per_s\": %.1f, \"ms_per_step\": %.1f, \"cpu_ms_per_step\": %.1f, \"bf16\": \"%s\", \"peak_mib\": %.1f, \"blas\": \"OpenBLAS %s (%s)\", \"threads\": %d, "
           "\"gflops\": %.1f, \"sgemm_peak_gflops\": %.1f, \"isa\": \"%s\"}\n",
           B / (ms / 1e3), tokens / (ms / 1e3), ms, cpu_total / steps * 1e3, bf16 ? m.K->bb16_report() : "", ru.ru_maxrss / 1024.0, openblas_get_corename(), openblas_get_config(),
           omp_get_max_threads(), flops / (ms / 1e3) / 1e9, sgemm_peak(), BENCH_ISA);
    free(ids); free(trained); free(logp); free(dlogp); free(ref); free(span); free(pair);
    batch_free(&bb);
    model_optimizer_free(&opt);
    model_free(&m);
    return 0;
}
