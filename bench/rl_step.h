// bench/rl_step.h: what the grpo_step and ppo_step bench programs share (each bench program
// is one .c file, so this is a header of static functions, like isa.h): the flags, the model
// and its trainer, the random prompts, the generation batch (exactly --new tokens for each of
// --prompts x --generations trajectories, no stop ids, temperature 1, through rollout_run and
// the KV cache, each prompt prefilled once), packing a trajectory into the trainer, the
// warmup-then-best-of-steps loop and the JSON line both print:
//   {"seconds", "gen_s", "roll_s", "fwd_s", "bwd_s", "opt_s", "gen_tok_per_s", "peak_mib", "isa", "blas", ...}
// seconds = gen_s + roll_s + fwd_s + bwd_s + opt_s of one step (roll_s: PPO's no-gradient
// forward of the rollout, 0 for GRPO).
#pragma once
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
#include "rollout/rollout.h"
#include "train/step.h"

typedef struct timing { double gen, roll, fwd, bwd, opt, loss, tokens; } timing;  // tokens: generated (Σ lengths)

typedef struct rl_args { const char *dir; int P, G, T, plen, micro, steps, warmup, warmup_new; } rl_args;

typedef struct rl_bench {
    model m;
    trainer t;
    int P, G, plen, micro;
    int **prompts;
    int *plens;
    rollout_traj *tr;
    int32_t *ids;    // one sequence: prompt + completion
    uint8_t *mask;
} rl_bench;

// The flags of both programs. Returns 0, or 2 (usage) after a message.
static int rl_parse(const char *name, rl_args *a, int argc, char **argv) {
    *a = (rl_args){NULL, 8, 8, 128, 32, 8, 1, 1, 8};
    flag flags[] = {
        {"model", FLAG_STR, &a->dir, ""}, {"prompts", FLAG_INT, &a->P, ""}, {"generations", FLAG_INT, &a->G, ""},
        {"new", FLAG_INT, &a->T, ""}, {"prompt", FLAG_INT, &a->plen, ""}, {"micro", FLAG_INT, &a->micro, ""},
        {"steps", FLAG_INT, &a->steps, ""}, {"warmup", FLAG_INT, &a->warmup, ""}, {"warmup-new", FLAG_INT, &a->warmup_new, ""},
    };
    if (flags_parse(name, NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL) || !a->dir) return 2;
    if (a->P < 1 || a->G < 1 || a->T < 1 || a->plen < 1 || a->micro < 1 || a->steps < 1 || a->warmup < 0 || a->warmup_new < 1) {
        fprintf(stderr, "%s: --prompts, --generations, --new, --prompt, --micro, --steps, --warmup-new must be >= 1\n", name);
        return 2;
    }
    return 0;
}

// Loads the model, opens its trainer (AdamW at lr, weight decay 0, clip 1.0: TRL's configs) for
// micro-batches of a->micro sequences, draws the random prompts (seed 1).
static int rl_open(rl_bench *b, const rl_args *a, double lr, tm_error *err) {
    memset(b, 0, sizeof *b);
    b->P = a->P, b->G = a->G, b->plen = a->plen, b->micro = a->micro;
    if (model_load(&b->m, a->dir, err)) return -1;
    int cap = a->micro * (a->plen + a->T);
    trainer_opts to = {{lr, 0.9, 0.999, 1e-8, 0.0}, 1.0, SCHED_CONSTANT, 0, 1, cap, a->micro, 0, 0, 0, 0, 0};
    if (trainer_open(&b->t, &b->m, &to, 1, err)) return -1;
    b->prompts = calloc((size_t)a->P, sizeof *b->prompts);
    b->plens = malloc(sizeof(int) * (size_t)a->P);
    b->tr = calloc((size_t)a->P * a->G, sizeof *b->tr);
    b->ids = malloc(sizeof(int32_t) * (size_t)(a->plen + a->T));
    b->mask = malloc((size_t)(a->plen + a->T));
    if (!b->prompts || !b->plens || !b->tr || !b->ids || !b->mask) return tm_fail(err, "out of memory");
    rng r;
    rng_seed(&r, 1);
    for (int p = 0; p < a->P; p++) {
        if (!(b->prompts[p] = malloc(sizeof(int) * (size_t)a->plen))) return tm_fail(err, "out of memory");
        b->plens[p] = a->plen;
        for (int i = 0; i < a->plen; i++) b->prompts[p][i] = (int)rng_below(&r, (uint64_t)b->m.cfg.vocab);
    }
    return 0;
}

static void rl_close(rl_bench *b) {
    for (int p = 0; b->prompts && p < b->P; p++) free(b->prompts[p]);
    free(b->prompts); free(b->plens); free(b->tr); free(b->ids); free(b->mask);
    trainer_close(&b->t);
    model_free(&b->m);
}

// Exactly `nnew` tokens for each of P x G trajectories (no stop ids), from seed; tm->gen, tm->tokens.
static int rl_generate(rl_bench *b, int nnew, uint64_t seed, timing *tm, tm_error *err) {
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
    double t0 = now_seconds();
    int rc = rollout_run(&be, NULL, (const int *const *)b->prompts, b->plens, b->P, &o, b->tr, err);
    tm->gen = now_seconds() - t0;
    for (int i = 0; !rc && i < b->P * b->G; i++) tm->tokens += b->tr[i].len;
    return rc;
}

static void rl_free_trajs(rl_bench *b) {
    for (int i = 0; i < b->P * b->G; i++) rollout_traj_free(&b->tr[i]);
}

// Adds trajectory i (its prompt + completion, the completion trained) to the trainer's
// micro-batch; *len gets its length. Returns the packed offset of its first token, or -1.
static int rl_add(rl_bench *b, int i, int *len, tm_error *err) {
    const rollout_traj *tr = &b->tr[i];
    *len = b->plen + tr->len;
    memcpy(b->ids, b->prompts[i / b->G], sizeof(int32_t) * (size_t)b->plen);
    memset(b->mask, 0, (size_t)b->plen);
    memcpy(b->ids + b->plen, tr->ids, sizeof(int32_t) * (size_t)tr->len);
    memcpy(b->mask + b->plen, tr->mask, (size_t)tr->len);
    int k = b->t.bb.n_seqs;
    if (trainer_add(&b->t, b->ids, b->mask, *len, NULL, NULL, err)) return -1;
    return b->t.span[2 * k];
}

typedef int (*rl_step_fn)(rl_bench *b, void *ctx, int nnew, uint64_t seed, timing *tm, tm_error *err);

static double rl_total(const timing *t) { return t->gen + t->roll + t->fwd + t->bwd + t->opt; }

// --warmup steps of --warmup-new tokens, then --steps timed steps; prints the best one's JSON line.
static int rl_run(const char *name, rl_bench *b, void *ctx, const rl_args *a, rl_step_fn step) {
    tm_error err;
    timing tm, best = {INFINITY, 0, 0, 0, 0, 0, 0};
    for (int s = 0; s < a->warmup + a->steps; s++) {
        int timed = s >= a->warmup;
        memset(&tm, 0, sizeof tm);
        if (step(b, ctx, timed ? a->T : (a->T < a->warmup_new ? a->T : a->warmup_new), 5 + (uint64_t)s, &tm, &err)) {
            fprintf(stderr, "%s: %s\n", name, err.msg);
            return 1;
        }
        if (timed && rl_total(&tm) < rl_total(&best)) best = tm;
    }
    int n = a->P * a->G;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"seconds\": %.4f, \"gen_s\": %.4f, \"roll_s\": %.4f, \"fwd_s\": %.4f, \"bwd_s\": %.4f, \"opt_s\": %.4f, \"gen_tok_per_s\": %.1f, "
           "\"train_tok_per_s\": %.1f, \"loss\": %.6g, \"gen_tokens\": %.0f, \"prompts\": %d, \"generations\": %d, \"new\": %d, \"prompt\": %d, \"micro\": %d, "
           "\"peak_mib\": %.1f, \"threads\": %d, \"isa\": \"%s\", \"blas\": \"OpenBLAS %s\"}\n",
           rl_total(&best), best.gen, best.roll, best.fwd, best.bwd, best.opt, n * (double)a->T / best.gen,
           n * (double)(a->plen + a->T) / (best.roll + best.fwd + best.bwd + best.opt), best.loss, best.tokens, a->P, a->G, a->T,
           a->plen, a->micro, ru.ru_maxrss / 1024.0, omp_get_max_threads(), BENCH_ISA, openblas_get_corename());
    return 0;
}
