// tests/unit/test_bf16_rl.c: --bf16 in the RL trainers (grpo, ppo): one optimizer step's loss
// and gradients against the fp32 path as the oracle, on fixed sampled-like sequences (prompt
// tokens masked, a tool token masked, old log-probs off the policy's so that ratios move and
// some clip, advantages of both signs), through the step-level trainer as grpo_run and ppo_run
// drive it (trainer_open with o.bf16, trainer_forward at the sampling temperature, the
// objective, trainer_backward / trainer_backward_extra for PPO's shared value head).
// Tolerances, bf16-sized (bf16 rounds each linear's input and weight to 8 significant bits,
// relative 2^-9 each; weights 5x the init and T = 0.7 make the logits large, so a token's
// log-prob moves by up to a few 1e-2, and the ratios e^(logp - old) with it), each about twice
// what this machine measured (AVX-512-BF16; printed by the checks):
// - the loss within 2^-8 of the fp32 loss's scale (GRPO: Σ m|A|ρ / tokens; PPO: the same plus
//   the value loss) (measured 1.4e-3 and 1.2e-3);
// - each parameter's gradient within 4% relative L2 of fp32 (measured worst 2.1%, a q_proj
//   bias), the whole within 2% (1.1%), cosine > 0.9995 (0.99994);
// - the value head's gradient (PPO) within 4% (2.2%);
// - --bf16 changes the loss at all (the bf16 path ran).
// The sampler's side (its log-probs equal the trainer's bit for bit under --bf16
// --deterministic) is tests/cli/test_bf16_rl.sh.
#include "model/batch.h"
#include "model/model.h"
#include "objectives/grpo.h"
#include "objectives/ppo.h"
#include "train/step.h"
#include "test.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NSEQ = 4, CAP = 64 };
static const int LEN[NSEQ] = {11, 14, 9, 12}, PROMPT[NSEQ] = {4, 5, 3, 4};
static const float ADV[NSEQ] = {1.0f, -0.6f, 0.8f, -1.3f};
static int32_t ids[NSEQ][16];
static uint8_t mask[NSEQ][16];
static float old_seq[NSEQ][16];  // "the sampler's" log-probs, per sequence position

typedef struct {
    double loss, scale;
    float *g;          // the model's gradient (copy)
    float head_g[65];  // PPO: the value head's gradient (w, b)
} result;

// One optimizer step's forward, objective and backward (no update) in fp32 or bf16.
// ppo = 0: grpo_loss (dapo, ε 0.2/0.28, β 0.04 against a fixed reference); 1: ppo_loss with
// the shared value head V = w·h + b on the policy's final hidden state.
static int step(model *m, int bf16, int ppo, const float *head, result *r, tm_error *err) {
    trainer t;
    trainer_opts o = {.adam = {1e-3, 0.9, 0.999, 1e-8, 0.0}, .max_grad_norm = 1.0, .total_steps = 1, .cap_tokens = CAP, .cap_seqs = NSEQ, .bf16 = bf16};
    if (trainer_open(&t, m, &o, 1, err)) return -1;
    trainer_set_temperature(&t, 0.7);
    model_zero_grad(m);
    for (int s = 0; s < NSEQ; s++)
        if (trainer_add(&t, ids[s], mask[s], LEN[s], NULL, NULL, err)) return trainer_close(&t), -1;
    float adv[CAP], old[CAP], ref[CAP], ent[CAP], dval[CAP], vals[CAP], ret[CAP], oval[CAP];
    for (int s = 0; s < NSEQ; s++)
        for (int k = 0; k < LEN[s]; k++) {
            int i = t.span[2 * s] + k;
            adv[i] = ADV[s] * (1.0f + 0.05f * (float)(k % 3));
            old[i] = old_seq[s][k];
            ref[i] = old_seq[s][k] - 0.02f * (float)((k % 5) - 2);
            t.ref_tok[i] = ref[i];
            ret[i] = 0.5f * ADV[s];
            oval[i] = 0.1f * (float)((k % 4) - 1);
        }
    if (trainer_forward(&t, ent, err)) return trainer_close(&t), -1;
    seq_batch sb = trainer_view(&t, 1);
    double scale = 0, ntok = 0;
    for (int i = 0; i < sb.n_tokens; i++)
        if (sb.mask[i]) scale += fabs(adv[i]) * exp(sb.logp[i] - old[i]), ntok++;
    r->scale = scale / ntok;
    if (!ppo) {
        grpo_hparams h = grpo_hparams_default();
        h.epsilon_high = 0.28, h.beta = 0.04;
        grpo_norm z = {NSEQ, ntok, 12};
        grpo_inputs in = {adv, old, NULL, ent};
        grpo_metrics mm = {0};
        if (grpo_loss(&sb, &in, &h, &z, &r->loss, t.dlogp_tok, &mm, err)) return trainer_close(&t), -1;
        trainer_backward(&t);
    } else {
        const int D = m->cfg.hidden;
        const float *xf = model_last_hidden(m);
        for (int s = 0; s < NSEQ; s++) {  // V_t from the hidden state before token t, as ppo_trainer's critic
            int s0 = t.span[2 * s], s1 = t.span[2 * s + 1];
            vals[s0] = 0;
            for (int i = s0 + 1; i < s1; i++) {
                double v = head[D];
                for (int j = 0; j < D; j++) v += (double)xf[(size_t)(i - 1) * D + j] * head[j];
                vals[i] = (float)v;
            }
        }
        ppo_hparams h = {0.2, 0.2, 0.1, 1.0, 0.95, 0.0, KL_K1, 0};
        ppo_inputs in = {adv, ret, vals, oval, old, ent};
        ppo_metrics mm = {0};
        if (ppo_loss(&sb, &in, &h, ntok, &r->loss, t.dlogp_tok, dval, &mm, err)) return trainer_close(&t), -1;
        float *dxf = calloc((size_t)sb.n_tokens * D, sizeof(float));
        memset(r->head_g, 0, sizeof r->head_g);
        for (int s = 0; s < NSEQ; s++)
            for (int i = t.span[2 * s] + 1; i < t.span[2 * s + 1]; i++) {
                for (int j = 0; j < D; j++) {
                    dxf[(size_t)(i - 1) * D + j] = dval[i] * head[j];
                    r->head_g[j] += dval[i] * xf[(size_t)(i - 1) * D + j];
                }
                r->head_g[D] += dval[i];
            }
        trainer_backward_extra(&t, dxf);
        free(dxf);
        double vs = 0;  // the value loss's scale joins the policy's
        for (int i = 0; i < sb.n_tokens; i++)
            if (sb.mask[i]) vs += 0.1 * 0.5 * (vals[i] - ret[i]) * (vals[i] - ret[i]);
        r->scale += vs / ntok;
    }
    r->g = malloc(sizeof(float) * m->gnumel);
    memcpy(r->g, m->g, sizeof(float) * m->gnumel);
    trainer_close(&t);
    // the next run starts from the fp32 path again
    free(m->w16);
    m->w16 = NULL;
    return 0;
}

static void compare(const model *m, const char *what, const result *a, const result *b) {
    double rl = fabs(b->loss - a->loss) / a->scale;
    CHECK(rl < 0x1p-8, "%s: bf16 loss %.7f within 2^-8 of fp32 %.7f, relative to the loss's scale %.4f (%.2g)", what, b->loss, a->loss,
          a->scale, rl);
    CHECK(b->loss != a->loss, "%s: --bf16 changes the loss (the bf16 GEMMs ran)", what);
    double worst = 0, num = 0, den = 0, dot = 0, n16 = 0;
    const char *wname = "";
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        double d2 = 0, r2 = 0;
        for (size_t j = 0; j < p->numel; j++) {
            double x = b->g[p->goff + j], r = a->g[p->goff + j];
            d2 += (x - r) * (x - r), r2 += r * r, dot += x * r, n16 += x * x;
        }
        num += d2, den += r2;
        double rel = sqrt(d2 / (r2 + 1e-30));
        if (rel > worst) worst = rel, wname = p->name;
    }
    CHECK(den > 0 && worst < 4e-2, "%s: each parameter's gradient within 4%% relative L2 of fp32 (worst %.3g, %s)", what, worst, wname);
    CHECK(sqrt(num / den) < 2e-2, "%s: the whole gradient within 2%% relative L2 of fp32 (%.3g)", what, sqrt(num / den));
    CHECK(dot / sqrt(n16 * den) > 0.9995, "%s: gradient cosine with fp32 %.6f > 0.9995", what, dot / sqrt(n16 * den));
}

int main(void) {
    tm_error err;
    model_config c;
    config_preset(&c, ARCH_QWEN2, "tiny", &err);
    c.layers = 2; c.hidden = 64; c.heads = 4; c.kv_heads = 2; c.head_dim = 16; c.ffn = 96; c.vocab = 61;
    c.tie_embeddings = 0;
    model m;
    CHECK(model_create(&m, &c, &err) == 0, "create a tiny qwen2");
    model_init_random(&m, 5);
    for (int i = 0; i < m.nparams; i++)  // weights far from the 0.02 init: logits and gradients far from trivial
        if (m.params[i].ndim == 2)
            for (size_t j = 0; j < m.params[i].numel; j++) m.w[m.params[i].offset + j] *= 5.0f;
    for (int s = 0; s < NSEQ; s++)
        for (int k = 0; k < LEN[s]; k++) {
            ids[s][k] = (k * 29 + s * 13 + 7) % c.vocab;
            mask[s][k] = k >= PROMPT[s] && !(s == 1 && k == 8);  // prompt and one tool token untrained
        }
    // "sampler" log-probs: the fp32 policy's at T = 0.7, moved by up to ±0.3 so that ratios
    // move and some clip (ε 0.2)
    {
        trainer t;
        trainer_opts o = {.adam = {1e-3, 0.9, 0.999, 1e-8, 0.0}, .total_steps = 1, .cap_tokens = CAP, .cap_seqs = NSEQ};
        CHECK(trainer_open(&t, &m, &o, 0, &err) == 0, "a forward-only trainer");
        trainer_set_temperature(&t, 0.7);
        for (int s = 0; s < NSEQ; s++) trainer_add(&t, ids[s], mask[s], LEN[s], NULL, NULL, &err);
        CHECK(trainer_forward(&t, NULL, &err) == 0, "the sampler's log-probs");
        for (int s = 0; s < NSEQ; s++)
            for (int k = 0; k < LEN[s]; k++) old_seq[s][k] = t.logp_tok[t.span[2 * s] + k] + 0.3f * (float)((k * 7 + s) % 5 - 2) / 2;
        trainer_close(&t);
    }
    CHECK(model_enable_grad(&m, &err) == 0, "gradients");
    float head[65];
    for (int j = 0; j <= c.hidden; j++) head[j] = 0.05f * (float)((j * 11) % 7 - 3);

    result a = {0}, b = {0};
    CHECK(step(&m, 0, 0, head, &a, &err) == 0 && step(&m, 1, 0, head, &b, &err) == 0, "grpo step fp32 and bf16 (%s)", err.msg);
    if (a.g && b.g) compare(&m, "grpo (dapo, beta 0.04, T 0.7)", &a, &b);
    free(a.g), free(b.g);
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    CHECK(step(&m, 0, 1, head, &a, &err) == 0 && step(&m, 1, 1, head, &b, &err) == 0, "ppo step fp32 and bf16 (%s)", err.msg);
    if (a.g && b.g) {
        compare(&m, "ppo (shared value head, T 0.7)", &a, &b);
        double d2 = 0, r2 = 0;
        for (int j = 0; j <= c.hidden; j++) d2 += (b.head_g[j] - a.head_g[j]) * (b.head_g[j] - a.head_g[j]), r2 += a.head_g[j] * a.head_g[j];
        CHECK(r2 > 0 && sqrt(d2 / r2) < 4e-2, "ppo: the value head's gradient within 4%% relative L2 of fp32 (%.3g)", sqrt(d2 / r2));
    }
    free(a.g), free(b.g);
    model_free(&m);
    return test_done();
}
