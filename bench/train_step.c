// bench/train_step: temper's side of `make bench`. Times one training step (forward,
// SFT loss, backward, AdamW) of the model in --model on random tokens, B sequences of
// T tokens packed into one row, and prints one JSON line like bench/torch_train_step.py:
//   {"tok_per_s", "ms_per_step", "cpu_s_per_step", "peak_mib", "act_mib", "blas", "threads", "gflops", "sgemm_peak_gflops", "isa",
//    "cpu_ms_per_step", "bf16"}
// --lora-r R: LoRA on every linear projection (all-linear, alpha 2R, base frozen and, from a
// bf16 file, read in place as the trainers do (model_load_frozen); the DPO
// reference is the base with the adapters off, precomputed as the trainer does);
// --gradient-checkpointing: the checkpointed activation layout (act_mib is the arena).
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
#include "model/lora.h"
#include "model/model.h"
#include "objectives/dpo.h"
#include "objectives/sft.h"
#include "train/optimizer.h"

static double cpu_seconds(void) {  // user + system time of the process (all threads)
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// The resident peak from a point on: VmHWM after resetting it to the current RSS (Linux's
// /proc/self/clear_refs "5"); -1 where that is not possible.
static int rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}
static double vm_hwm_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = -1024;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = atof(line + 6);
    if (f) fclose(f);
    return kib / 1024;
}

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
    int B = 8, T = 256, steps = 5, warmup = 1, seed = 0, lora_r = 0, ckpt = 0, no_sgemm = 0;
    const char *objective = "sft";
    int bf16 = 0;
    flag flags[] = {
        {"model", FLAG_STR, &dir, ""}, {"batch", FLAG_INT, &B, ""}, {"seq", FLAG_INT, &T, ""},
        {"steps", FLAG_INT, &steps, ""}, {"warmup", FLAG_INT, &warmup, ""}, {"seed", FLAG_INT, &seed, ""},
        {"objective", FLAG_STR, &objective, "sft | dpo (B pairs of chosen/rejected, first half prompt, reference precomputed)"},
        {"bf16", FLAG_BOOL, &bf16, "mixed precision: bf16 GEMMs, fp32 master weights"},
        {"lora-r", FLAG_INT, &lora_r, "LoRA rank on all linear projections (0: full fine-tune)"},
        {"gradient-checkpointing", FLAG_BOOL, &ckpt, "recompute each layer in the backward"},
        {"no-sgemm-peak", FLAG_BOOL, &no_sgemm, "skip the sgemm peak measurement"},
    };
    if (flags_parse("train_step", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL) || !dir) return 2;
    int dpo = !strcmp(objective, "dpo");  // after the flags (read before them, --objective dpo ran an SFT step)
    int nseq = dpo ? 2 * B : B;
    tm_error err;
    model m;
    lora_config lc;
    lora_config_default(&lc);
    lc.r = lora_r, lc.alpha = 2.0 * lora_r;
    int bad = (lora_r > 0 ? model_load_frozen(&m, dir, &err) : model_load(&m, dir, &err)) || (lora_r > 0 && (lora_parse_targets(&lc, "all-linear", &err) || model_lora_attach(&m, &lc, 1, &err)));
    if (!bad) model_set_checkpointing(&m, ckpt);
    if (bad || model_enable_grad(&m, &err) || model_reserve(&m, nseq * T, &err) || (bf16 && model_bf16_enable(&m, &err))) {
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
    int reset_ok = rss_reset();  // step_peak_mib: from here (the model loaded) to the end
    if (dpo) {  // reference log-probs, precomputed as the trainer does (under LoRA: the base, adapters off)
        int was = model_lora_enable(&m, 0);
        model_forward(&m, &b, ref, NULL, &err);
        model_lora_enable(&m, was);
    }
    dpo_hparams dh = dpo_hparams_default();
    dpo_norm dn = {B, 0, 0};
    double total = 0, cpu = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now_seconds(), c0 = cpu_seconds();
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
        if (s >= warmup) total += now_seconds() - t0, cpu += cpu_seconds() - c0;
    }
    double ms = total / steps * 1e3, tokens = (double)N;
    const model_config *c = &m.cfg;
    double n_matmul = (double)m.numel - (c->tie_embeddings ? 0 : (double)c->vocab * c->hidden);  // (LoRA: counts the adapters too)
    double flops = 6.0 * n_matmul * tokens + 12.0 * c->layers * c->heads * c->head_dim * (double)T * tokens;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"pairs_per_s\": %.3f, \"tok_per_s\": %.1f, \"ms_per_step\": %.1f, \"cpu_s_per_step\": %.2f, \"peak_mib\": %.1f, \"step_peak_mib\": %.1f, \"act_mib\": %.1f, "
           "\"blas\": \"OpenBLAS %s (%s)\", \"threads\": %d, \"gflops\": %.1f, \"sgemm_peak_gflops\": %.1f, \"isa\": \"%s\", \"cpu_ms_per_step\": %.1f, \"bf16\": \"%s\"}\n",
           B / (ms / 1e3), tokens / (ms / 1e3), ms, cpu / steps, ru.ru_maxrss / 1024.0, reset_ok ? vm_hwm_mib() : -1.0,
           model_activation_bytes(&m) / 1048576.0,
           openblas_get_corename(), openblas_get_config(), omp_get_max_threads(), flops / (ms / 1e3) / 1e9, no_sgemm ? 0.0 : sgemm_peak(),
           BENCH_ISA, cpu / steps * 1e3, bf16 ? m.K->bb16_report() : "");
    free(ids); free(trained); free(logp); free(dlogp); free(ref); free(span); free(pair);
    batch_free(&bb);
    model_optimizer_free(&opt);
    model_free(&m);
    return 0;
}
