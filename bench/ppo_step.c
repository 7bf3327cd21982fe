// bench/ppo_step: temper's side of the `ppo_step` bench lines. The work of bench/grpo_step.c
// (the same generation batch: --prompts random prompts x --generations samples, exactly --new
// tokens, no early stop, through bench/rl_step.h) plus what PPO adds, the way
// train/ppo_trainer.c runs it with a shared value head (a linear head, D weights and a bias, on
// the policy's last hidden state), minus the tokenizer and the verifier:
//   rollout     micro-batches of --micro completions, no gradient: trainer_forward for logπold
//               and V_old = head · hidden at the position predicting each token (TRL recomputes
//               the old log-probs; the KL coefficient is 0 here, as GRPO's β, so no reference);
//   advantages  scores 0/1 from a fixed RNG at the last token, ppo_rewards, ppo_gae (γ 1, λ
//               0.95), ppo_whiten of the advantages over the whole batch;
//   training    one PPO epoch, one mini-batch: micro-batches of --micro completions,
//               trainer_forward (log-probs and entropies), the value head, ppo_loss (clipped
//               policy loss ε 0.2 + 0.1 x clipped value loss ε_v 0.2, normalized over the
//               step's tokens), the head's gradient and dL/d(hidden), trainer_backward_extra;
//               then trainer_step (clip 1.0, AdamW) and the head's clip and AdamW step.
// Prints one JSON line like bench/torch_ppo_step.py (rl_step.h's fields; roll_s = the rollout
// forward, timed as training). lr 3e-6: TRL's PPOConfig.
#include "objectives/ppo.h"
#include "optim/optim.h"
#include "rl_step.h"

typedef struct ppo_bufs {
    int D;
    float *head, *head_g, *head_m, *head_v;          // [D] weights, then the bias
    float *dxf;                                      // [micro tokens, D] dL/d(final hidden)
    int *span;                                       // [2n] the whole batch, packed
    uint8_t *mask;                                   // [N] over the whole batch
    float *old, *val, *rw, *adv, *ret;               // [N] over the whole batch
    double *score;                                   // [n]
    float *adv_b, *ret_b, *val_b, *oval_b, *old_b, *ent_b, *dval_b;  // [micro tokens]
} ppo_bufs;

// V of every token of the trainer's micro-batch (ppo_trainer.c's critic_forward, shared head):
// V_t from the hidden state that predicts token t; 0 at a sequence's first token.
static void values(rl_bench *b, ppo_bufs *p, float *vals) {
    const float *xf = model_last_hidden(&b->m), *w = p->head;
    trainer *t = &b->t;
    for (int s = 0; s < t->bb.n_seqs; s++) {
        int s0 = t->span[2 * s], s1 = t->span[2 * s + 1];
        vals[s0] = 0;
        for (int i = s0 + 1; i < s1; i++) {
            const float *h = xf + (size_t)(i - 1) * p->D;
            double v = w[p->D];
            for (int j = 0; j < p->D; j++) v += (double)h[j] * w[j];
            vals[i] = (float)v;
        }
    }
}

// dL/dV into the head's gradients and dL/d(hidden), then one backward through the trunk with
// the policy's dlogp (ppo_trainer.c's critic_backward).
static void values_backward(rl_bench *b, ppo_bufs *p) {
    trainer *t = &b->t;
    int D = p->D;
    const float *xf = model_last_hidden(&b->m);
    memset(p->dxf, 0, sizeof(float) * (size_t)t->bb.n_tokens * D);
    for (int s = 0; s < t->bb.n_seqs; s++) {
        for (int i = t->span[2 * s] + 1; i < t->span[2 * s + 1]; i++) {
            float g = p->dval_b[i];
            if (g == 0) continue;
            float *dx = p->dxf + (size_t)(i - 1) * D;
            const float *h = xf + (size_t)(i - 1) * D;
            for (int j = 0; j < D; j++) {
                dx[j] = g * p->head[j];
                p->head_g[j] += g * h[j];
            }
            p->head_g[D] += g;
        }
    }
    trainer_backward_extra(t, p->dxf);
}

// The rollout's forward (no gradient): logπold and V_old of every completion, packed into p.
static int rollout_forward(rl_bench *b, ppo_bufs *p, tm_error *err) {
    int n = b->P * b->G, off = 0;
    for (int i0 = 0; i0 < n; i0 += b->micro) {
        int i1 = i0 + b->micro < n ? i0 + b->micro : n;
        trainer *t = &b->t;
        trainer_clear(t);
        for (int i = i0; i < i1; i++) {
            int len;
            if (rl_add(b, i, &len, err) < 0) return -1;
        }
        if (trainer_forward(t, NULL, err)) return -1;
        values(b, p, p->val_b);
        for (int i = i0; i < i1; i++) {
            int p0 = t->span[2 * (i - i0)], len = t->span[2 * (i - i0) + 1] - p0;
            p->span[2 * i] = off, p->span[2 * i + 1] = off + len;
            memcpy(p->old + off, t->logp_tok + p0, sizeof(float) * (size_t)len);
            memcpy(p->val + off, p->val_b + p0, sizeof(float) * (size_t)len);
            memcpy(p->mask + off, t->mask_tok + p0, (size_t)len);
            off += len;
        }
    }
    return off;
}

// Scores, per-token rewards (no KL term), GAE and whitening over the whole batch.
static int advantages(rl_bench *b, ppo_bufs *p, int N, const ppo_hparams *h, uint64_t seed, tm_error *err) {
    int n = b->P * b->G;
    rng r;
    rng_seed(&r, seed + 1);
    for (int i = 0; i < n; i++) p->score[i] = (double)rng_below(&r, 2);
    seq_batch sb = {N, p->old, NULL, p->mask, NULL, n, p->span};
    if (ppo_rewards(&sb, p->score, h, p->rw, NULL, NULL, err)) return -1;
    if (ppo_gae(&sb, p->rw, p->val, h->gamma, h->lam, p->adv, p->ret, err)) return -1;
    ppo_whiten(N, p->mask, p->adv, 1);
    return 0;
}

// One PPO epoch over one mini-batch of all the completions, one optimizer step.
static int train(rl_bench *b, ppo_bufs *p, int N, const ppo_hparams *h, timing *tm, tm_error *err) {
    int n = b->P * b->G;
    double ntok = 0;
    for (int i = 0; i < N; i++) ntok += p->mask[i];  // a sequence's first token is never trained
    double t0 = now_seconds();
    for (int i0 = 0; i0 < n; i0 += b->micro) {
        int i1 = i0 + b->micro < n ? i0 + b->micro : n;
        trainer *t = &b->t;
        trainer_clear(t);
        for (int i = i0; i < i1; i++) {
            int len, s0 = rl_add(b, i, &len, err), g0 = p->span[2 * i];
            if (s0 < 0) return -1;
            memcpy(p->adv_b + s0, p->adv + g0, sizeof(float) * (size_t)len);
            memcpy(p->ret_b + s0, p->ret + g0, sizeof(float) * (size_t)len);
            memcpy(p->oval_b + s0, p->val + g0, sizeof(float) * (size_t)len);
            memcpy(p->old_b + s0, p->old + g0, sizeof(float) * (size_t)len);
        }
        if (trainer_forward(t, p->ent_b, err)) return -1;
        values(b, p, p->val_b);
        seq_batch sb = trainer_view(t, 0);
        ppo_inputs in = {p->adv_b, p->ret_b, p->val_b, p->oval_b, p->old_b, p->ent_b};
        ppo_metrics m;
        double l;
        if (ppo_loss(&sb, &in, h, ntok, &l, t->dlogp_tok, p->dval_b, &m, err)) return -1;
        tm->loss += l;
        double t1 = now_seconds();
        values_backward(b, p);
        double t2 = now_seconds();
        tm->fwd += t1 - t0;
        tm->bwd += t2 - t1;
        t0 = t2;
    }
    trainer_step(&b->t, 0);
    // the head's own clip and AdamW step (ppo_trainer.c's critic_step)
    int D = p->D;
    clip_grad_norm(p->head_g, (size_t)D + 1, 1.0);
    adamw_hparams ah = b->t.o.adam;
    ah.lr = trainer_lr(&b->t, 0);
    adamw_update(p->head, p->head_g, p->head_m, p->head_v, (size_t)D, &ah, 0.0, b->t.opt.step);
    adamw_update(p->head + D, p->head_g + D, p->head_m + D, p->head_v + D, 1, &ah, 0.0, b->t.opt.step);
    memset(p->head_g, 0, sizeof(float) * ((size_t)D + 1));
    tm->opt += now_seconds() - t0;
    return 0;
}

static int step(rl_bench *b, void *ctx, int nnew, uint64_t seed, timing *tm, tm_error *err) {
    ppo_bufs *p = ctx;
    ppo_hparams h = ppo_hparams_default();  // TRL's: ε 0.2, ε_v 0.2, vf_coef 0.1, γ 1, λ 0.95
    h.kl_coef = 0;                          // no reference model (as grpo_step's β 0)
    if (rl_generate(b, nnew, seed, tm, err)) return -1;
    double t0 = now_seconds();
    int N = rollout_forward(b, p, err), rc = N < 0;
    if (!rc) rc = advantages(b, p, N, &h, seed, err);
    tm->roll = now_seconds() - t0;
    if (!rc) rc = train(b, p, N, &h, tm, err);
    rl_free_trajs(b);
    return rc;
}

int main(int argc, char **argv) {
    omp_wait_default(argv);  // the CLI's OpenMP wait policy (cli/omp_wait.h)
    rl_args a;
    if (rl_parse("ppo_step", &a, argc, argv)) return 2;
    tm_error err;
    rl_bench b;
    if (rl_open(&b, &a, 3e-6, &err)) { fprintf(stderr, "ppo_step: %s\n", err.msg); return 1; }
    int n = a.P * a.G, cap = a.micro * (a.plen + a.T), N = n * (a.plen + a.T);
    ppo_bufs p;
    memset(&p, 0, sizeof p);
    p.D = b.m.cfg.hidden;
    size_t hn = (size_t)p.D + 1;
    // the head starts at 0 in the trainer; small random weights here so that V and its gradient are not trivially 0
    p.head = calloc(hn, sizeof(float)), p.head_g = calloc(hn, sizeof(float));
    p.head_m = calloc(hn, sizeof(float)), p.head_v = calloc(hn, sizeof(float));
    p.dxf = malloc(sizeof(float) * (size_t)cap * (size_t)p.D);
    p.span = malloc(sizeof(int) * 2 * (size_t)n);
    p.mask = malloc((size_t)N);
    p.score = malloc(sizeof(double) * (size_t)n);
    float **whole[] = {&p.old, &p.val, &p.rw, &p.adv, &p.ret};
    float **micro[] = {&p.adv_b, &p.ret_b, &p.val_b, &p.oval_b, &p.old_b, &p.ent_b, &p.dval_b};
    int ok = p.head && p.head_g && p.head_m && p.head_v && p.dxf && p.span && p.mask && p.score;
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) ok &= (*whole[i] = malloc(sizeof(float) * (size_t)N)) != NULL;
    for (size_t i = 0; i < sizeof micro / sizeof micro[0]; i++) ok &= (*micro[i] = calloc((size_t)cap, sizeof(float))) != NULL;
    int rc = 1;
    if (!ok) fprintf(stderr, "ppo_step: out of memory\n");
    else {
        rng r;
        rng_seed(&r, 2);
        for (int j = 0; j < p.D; j++) p.head[j] = (float)(0.02 * ((double)rng_below(&r, 2001) / 1000.0 - 1.0));
        rc = rl_run("ppo_step", &b, &p, &a, step);
    }
    free(p.head); free(p.head_g); free(p.head_m); free(p.head_v); free(p.dxf); free(p.span); free(p.mask); free(p.score);
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) free(*whole[i]);
    for (size_t i = 0; i < sizeof micro / sizeof micro[0]; i++) free(*micro[i]);
    rl_close(&b);
    return rc;
}
