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
// --warmup steps of --warmup-new new tokens (those touch every code path and buffer). The
// flags, generation, packing and that loop are bench/rl_step.h's (shared with ppo_step.c).
#include "objectives/grpo.h"
#include "rl_step.h"

typedef struct grpo_bufs {
    float *adv;
    double *reward;
    float *adv_b, *old_b, *ent_b;   // per packed token of a micro-batch
} grpo_bufs;

// One optimizer step over the P x G completions in b->tr (what grpo_trainer.c's train_step does).
static int train(rl_bench *b, grpo_bufs *g, timing *tm, tm_error *err) {
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
            int len, s0 = rl_add(b, i, &len, err);
            if (s0 < 0) return -1;
            for (int k = 0; k < len; k++) {
                g->adv_b[s0 + k] = g->adv[i];
                g->old_b[s0 + k] = k < b->plen ? 0.0f : b->tr[i].logp[k - b->plen];
            }
        }
        if (trainer_forward(t, g->ent_b, err)) return -1;
        seq_batch sb = trainer_view(t, 0);
        grpo_inputs in = {g->adv_b, g->old_b, NULL, g->ent_b};
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

static int step(rl_bench *b, void *ctx, int nnew, uint64_t seed, timing *tm, tm_error *err) {
    grpo_bufs *g = ctx;
    if (rl_generate(b, nnew, seed, tm, err)) return -1;
    int n = b->P * b->G;
    rng r;
    rng_seed(&r, seed + 1);
    for (int i = 0; i < n; i++) g->reward[i] = (double)rng_below(&r, 2);
    int rc = grpo_advantages(n, b->G, g->reward, GRPO_SCALE_GROUP, 1e-4, g->adv, NULL, NULL, err);
    if (!rc) rc = train(b, g, tm, err);
    rl_free_trajs(b);
    return rc;
}

int main(int argc, char **argv) {
    omp_wait_default(argv);  // the CLI's OpenMP wait policy (cli/omp_wait.h)
    rl_args a;
    if (rl_parse("grpo_step", &a, argc, argv)) return 2;
    tm_error err;
    rl_bench b;
    if (rl_open(&b, &a, 1e-6, &err)) { fprintf(stderr, "grpo_step: %s\n", err.msg); return 1; }  // TRL's GRPOConfig lr
    int n = a.P * a.G, cap = a.micro * (a.plen + a.T);
    grpo_bufs g = {malloc(sizeof(float) * (size_t)n), malloc(sizeof(double) * (size_t)n), malloc(sizeof(float) * (size_t)cap),
                   malloc(sizeof(float) * (size_t)cap), malloc(sizeof(float) * (size_t)cap)};
    int rc = 1;
    if (!g.adv || !g.reward || !g.adv_b || !g.old_b || !g.ent_b) fprintf(stderr, "grpo_step: out of memory\n");
    else rc = rl_run("grpo_step", &b, &g, &a, step);
    free(g.adv); free(g.reward); free(g.adv_b); free(g.old_b); free(g.ent_b);
    rl_close(&b);
    return rc;
}
