// bench/grpo_step: temper's side of the `grpo_step` bench lines. One GRPO generation batch
// and its optimizer step on the model in --model, with the library's own functions, the
// way train/grpo_trainer.c runs them, minus the tokenizer and the verifier (a random model
// has nothing to grade):
//   generation  --prompts random prompts of --prompt tokens, --generations samples each,
//               exactly --new tokens (no stop token: both sides do the same work), at
//               temperature 1 through rollout_run and the KV cache (each prompt prefilled
//               once; its samples share that prefix), the sampler's log-probs recorded;
//   rewards     0/1 from a fixed RNG, group advantages (grpo_advantages, scale group,
//               std eps 1e-4: TRL's);
//   training    micro-batches of --micro completions (prompt + completion, the completion
//               trained): trainer_forward (log-probs and entropies), grpo_loss (dapo, β 0,
//               ε 0.2, old log-probs = the sampler's, normalized over the whole step),
//               trainer_backward; then trainer_step (clip at 1.0, AdamW, zero gradients).
// Prints one JSON line like bench/torch_grpo_step.py (gen_tokens: the tokens generated, to show
// that no trajectory stopped early):
//   {"seconds", "gen_s", "fwd_s", "bwd_s", "opt_s", "gen_tok_per_s", "peak_mib", "isa", "blas", ...}
// seconds = gen_s + fwd_s + bwd_s + opt_s of one step, the best of --steps timed steps after
// --warmup steps of --warmup-new new tokens (those touch every code path and buffer).
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "base/progress.h"
#include "base/rng.h"
#include "cli/flags.h"
#include "cli/omp_wait.h"
#include "isa.h"
#include "model/model.h"
#include "objectives/grpo.h"
#include "rollout/rollout.h"
#include "train/step.h"

typedef struct timing { double gen, fwd, bwd, opt, loss, tokens; } timing;  // tokens: generated (Σ lengths)

typedef struct bench {
    model m;
    trainer t;
    int P, G, plen, micro;
    int **prompts;
    int *plens;
    rollout_traj *tr;
    float *adv;
    double *reward;
    float *adv_b, *old_b, *ent_b;   // per packed token of a micro-batch
    int32_t *ids;                   // one sequence: prompt + completion
    uint8_t *mask;
} bench;

// Exactly `nnew` tokens for each of P x G trajectories (no stop ids), from seed.
static int generate(bench *b, int nnew, uint64_t seed, tm_error *err) {
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = b->G;
    o.batch = b->P * b->G;  // every trajectory in flight at once, as the PyTorch side
    o.max_new_tokens = nnew;
    o.seed = seed;
    rollout_backend be;
    rollout_model_ctx ctx;
    rollout_backend_model(&be, &ctx, &b->m);
    memset(b->tr, 0, sizeof *b->tr * (size_t)b->P * b->G);
    return rollout_run(&be, NULL, (const int *const *)b->prompts, b->plens, b->P, &o, b->tr, err);
}

// One optimizer step over the P x G completions in b->tr (what grpo_trainer.c's train_step does).
static int train(bench *b, timing *tm, tm_error *err) {
    int n = b->P * b->G;
    grpo_hparams h = grpo_hparams_default();  // dapo, β 0, ε 0.2
    grpo_norm z = {n, 0, 0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < b->tr[i].len; k++) z.tokens += b->tr[i].mask[k];
    z.max_completion_length = b->tr[0].len;
    double t0 = now_seconds();
    for (int i0 = 0; i0 < n; i0 += b->micro) {
        int i1 = i0 + b->micro < n ? i0 + b->micro : n;
        trainer *t = &b->t;
        trainer_clear(t);
        for (int i = i0; i < i1; i++) {
            const rollout_traj *tr = &b->tr[i];
            int len = b->plen + tr->len;
            memcpy(b->ids, b->prompts[i / b->G], sizeof(int32_t) * (size_t)b->plen);
            memset(b->mask, 0, (size_t)b->plen);
            memcpy(b->ids + b->plen, tr->ids, sizeof(int32_t) * (size_t)tr->len);
            memcpy(b->mask + b->plen, tr->mask, (size_t)tr->len);
            if (trainer_add(t, b->ids, b->mask, len, NULL, NULL, err)) return -1;
            int s0 = t->span[2 * (i - i0)];
            for (int k = 0; k < len; k++) {
                b->adv_b[s0 + k] = b->adv[i];
                b->old_b[s0 + k] = k < b->plen ? 0.0f : tr->logp[k - b->plen];
            }
        }
        if (trainer_forward(t, b->ent_b, err)) return -1;
        seq_batch sb = trainer_view(t, 0);
        grpo_inputs in = {b->adv_b, b->old_b, NULL, b->ent_b};
        grpo_metrics mm = {0};
        double l;
        if (grpo_loss(&sb, &in, &h, &z, &l, t->dlogp_tok, &mm, err)) return -1;
        tm->loss += l;
        double t1 = now_seconds();
        trainer_backward(t);
        double t2 = now_seconds();
        tm->fwd += t1 - t0;
        tm->bwd += t2 - t1;
        t0 = t2;
    }
    trainer_step(&b->t, 0);
    tm->opt += now_seconds() - t0;
    return 0;
}

static int step(bench *b, int nnew, uint64_t seed, timing *tm, tm_error *err) {
    memset(tm, 0, sizeof *tm);
    double t0 = now_seconds();
    if (generate(b, nnew, seed, err)) return -1;
    tm->gen = now_seconds() - t0;
    int n = b->P * b->G;
    for (int i = 0; i < n; i++) tm->tokens += b->tr[i].len;
    rng r;
    rng_seed(&r, seed + 1);
    for (int i = 0; i < n; i++) b->reward[i] = (double)rng_below(&r, 2);
    int rc = grpo_advantages(n, b->G, b->reward, GRPO_SCALE_GROUP, 1e-4, b->adv, NULL, NULL, err);
    if (!rc) rc = train(b, tm, err);
    for (int i = 0; i < n; i++) rollout_traj_free(&b->tr[i]);
    return rc;
}

int main(int argc, char **argv) {
    omp_wait_default(argv);  // the CLI's OpenMP wait policy (cli/omp_wait.h)
    const char *dir = NULL;
    int P = 8, G = 8, T = 128, plen = 32, micro = 8, steps = 1, warmup = 1, warmup_new = 8;
    flag flags[] = {
        {"model", FLAG_STR, &dir, ""}, {"prompts", FLAG_INT, &P, ""}, {"generations", FLAG_INT, &G, ""},
        {"new", FLAG_INT, &T, ""}, {"prompt", FLAG_INT, &plen, ""}, {"micro", FLAG_INT, &micro, ""},
        {"steps", FLAG_INT, &steps, ""}, {"warmup", FLAG_INT, &warmup, ""}, {"warmup-new", FLAG_INT, &warmup_new, ""},
    };
    if (flags_parse("grpo_step", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL) || !dir) return 2;
    if (P < 1 || G < 1 || T < 1 || plen < 1 || micro < 1 || steps < 1 || warmup < 0 || warmup_new < 1) {
        fprintf(stderr, "grpo_step: --prompts, --generations, --new, --prompt, --micro, --steps, --warmup-new must be >= 1\n");
        return 2;
    }
    tm_error err;
    bench b;
    memset(&b, 0, sizeof b);
    b.P = P, b.G = G, b.plen = plen, b.micro = micro;
    if (model_load(&b.m, dir, &err)) { fprintf(stderr, "grpo_step: %s\n", err.msg); return 1; }
    int n = P * G, cap = micro * (plen + T);
    trainer_opts to = {{1e-6, 0.9, 0.999, 1e-8, 0.0}, 1.0, SCHED_CONSTANT, 0, 1, cap, micro, 0};  // TRL's GRPOConfig
    if (trainer_open(&b.t, &b.m, &to, 1, &err)) { fprintf(stderr, "grpo_step: %s\n", err.msg); return 1; }
    b.prompts = calloc((size_t)P, sizeof *b.prompts);
    b.plens = malloc(sizeof(int) * (size_t)P);
    b.tr = calloc((size_t)n, sizeof *b.tr);
    b.adv = malloc(sizeof(float) * (size_t)n);
    b.reward = malloc(sizeof(double) * (size_t)n);
    b.adv_b = malloc(sizeof(float) * (size_t)cap);
    b.old_b = malloc(sizeof(float) * (size_t)cap);
    b.ent_b = malloc(sizeof(float) * (size_t)cap);
    b.ids = malloc(sizeof(int32_t) * (size_t)(plen + T));
    b.mask = malloc((size_t)(plen + T));
    if (!b.prompts || !b.plens || !b.tr || !b.adv || !b.reward || !b.adv_b || !b.old_b || !b.ent_b || !b.ids || !b.mask) {
        fprintf(stderr, "grpo_step: out of memory\n");
        return 1;
    }
    rng r;
    rng_seed(&r, 1);
    for (int p = 0; p < P; p++) {
        if (!(b.prompts[p] = malloc(sizeof(int) * (size_t)plen))) { fprintf(stderr, "grpo_step: out of memory\n"); return 1; }
        b.plens[p] = plen;
        for (int i = 0; i < plen; i++) b.prompts[p][i] = (int)rng_below(&r, (uint64_t)b.m.cfg.vocab);
    }
    timing tm, best = {INFINITY, 0, 0, 0, 0, 0};
    for (int s = 0; s < warmup + steps; s++) {
        int timed = s >= warmup;
        if (step(&b, timed ? T : (T < warmup_new ? T : warmup_new), 5 + (uint64_t)s, &tm, &err)) {
            fprintf(stderr, "grpo_step: %s\n", err.msg);
            return 1;
        }
        if (timed && tm.gen + tm.fwd + tm.bwd + tm.opt < best.gen + best.fwd + best.bwd + best.opt) best = tm;
    }
    double total = best.gen + best.fwd + best.bwd + best.opt;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"seconds\": %.4f, \"gen_s\": %.4f, \"fwd_s\": %.4f, \"bwd_s\": %.4f, \"opt_s\": %.4f, \"gen_tok_per_s\": %.1f, "
           "\"train_tok_per_s\": %.1f, \"loss\": %.6g, \"gen_tokens\": %.0f, \"prompts\": %d, \"generations\": %d, \"new\": %d, \"prompt\": %d, \"micro\": %d, "
           "\"peak_mib\": %.1f, \"threads\": %d, \"isa\": \"%s\", \"blas\": \"OpenBLAS %s\"}\n",
           total, best.gen, best.fwd, best.bwd, best.opt, n * (double)T / best.gen, n * (double)(plen + T) / (best.fwd + best.bwd + best.opt),
           best.loss, best.tokens, P, G, T, plen, micro, ru.ru_maxrss / 1024.0, omp_get_max_threads(), BENCH_ISA, openblas_get_corename());
    for (int p = 0; p < P; p++) free(b.prompts[p]);
    free(b.prompts); free(b.plens); free(b.tr); free(b.adv); free(b.reward);
    free(b.adv_b); free(b.old_b); free(b.ent_b); free(b.ids); free(b.mask);
    trainer_close(&b.t);
    model_free(&b.m);
    return 0;
}
