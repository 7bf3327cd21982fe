// objectives/ppo: GAE by hand with a tool observation skipped, rewards, whitening, the loss's
// finite-difference gradients, micro-batches adding up, bad inputs. (PyTorch: tests/oracle/test_ppo.py.)
#include <stdlib.h>
#include <string.h>
#include "model/batch.h"
#include "model/config.h"
#include "model/model.h"
#include "objectives/ppo.h"
#include "test.h"

static void test_gae_by_hand(void) {
    // one sequence: prompt token, model tokens 1 2, tool tokens 3 4, model token 5
    uint8_t mask[6] = {0, 1, 1, 0, 0, 1};
    int span[2] = {0, 6};
    float r[6] = {9, 0.5f, -1, 7, 7, 2}, v[6] = {9, 0.1f, 0.2f, 5, 5, 0.4f}, adv[6], ret[6];
    seq_batch b = {6, r, NULL, mask, NULL, 1, span};
    tm_error err;
    double g = 0.9, l = 0.5;
    CHECK(ppo_gae(&b, r, v, g, l, adv, ret, &err) == 0, "gae runs");
    // token 5: δ = 2 - 0.4; token 2: δ = -1 + γ·0.4 - 0.2, A = δ + γλ·A5 (tokens 3, 4 skipped)
    double a5 = 2 - 0.4, a2 = -1 + g * 0.4 - 0.2 + g * l * a5, a1 = 0.5 + g * 0.2 - 0.1 + g * l * a2;
    CHECK(fabs(adv[5] - a5) < 1e-6 && fabs(adv[2] - a2) < 1e-6 && fabs(adv[1] - a1) < 1e-6,
          "gae skips the tool tokens: A = %g %g %g (want %g %g %g)", adv[1], adv[2], adv[5], a1, a2, a5);
    CHECK(adv[0] == 0 && adv[3] == 0 && adv[4] == 0 && ret[3] == 0, "masked tokens get 0");
    CHECK(fabs(ret[2] - (a2 + 0.2)) < 1e-6, "returns = A + V");
}

static void test_rewards(void) {
    uint8_t mask[5] = {0, 1, 1, 0, 0};  // the trajectory ends on a tool observation
    int span[2] = {0, 5};
    float old[5] = {0, -1, -2, 0, 0}, ref[5] = {0, -1.5f, -1, 0, 0}, rw[5];
    seq_batch b = {5, old, ref, mask, NULL, 1, span};
    ppo_hparams h = ppo_hparams_default();
    double score = 3, ns, ks;
    tm_error err;
    CHECK(ppo_rewards(&b, &score, &h, rw, &ns, &ks, &err) == 0, "rewards run");
    CHECK(fabs(rw[1] + 0.05 * 0.5) < 1e-7 && fabs(rw[2] - (0.05 * 1 + 3)) < 1e-6 && rw[3] == 0 && rw[4] == 0,
          "k1 KL reward per model token, the score on the last model token (%g %g %g)", rw[1], rw[2], rw[3]);
    CHECK(fabs(ns - (-0.025 + 0.05)) < 1e-7 && fabs(ks - (0.5 - 1)) < 1e-7, "non-score reward %g and KL %g", ns, ks);
    h.kl_loss = 1;
    ppo_rewards(&b, &score, &h, rw, &ns, &ks, &err);
    CHECK(rw[1] == 0 && rw[2] == 3 && ns == 0, "KL as a loss: no KL reward");
}

static void test_whiten(void) {
    float x[5] = {1, 100, 2, 3, -50};
    uint8_t m[5] = {1, 0, 1, 1, 0};
    CHECK(ppo_whiten(5, m, x, 1) == 3, "whiten counts the active entries");
    // mean 2, unbiased var 1 -> -1, 0, 1
    CHECK(fabs(x[0] + 1) < 1e-4 && fabs(x[2]) < 1e-6 && fabs(x[3] - 1) < 1e-4 && x[1] == 100, "whiten: %g %g %g", x[0], x[2], x[3]);
}

// The loss of a small batch at logp / values, for finite differences.
static double loss_at(const float *lp, const float *V, const ppo_hparams *h, float *dl, float *dv, ppo_metrics *m) {
    static const uint8_t mask[7] = {0, 1, 1, 1, 0, 1, 1};
    static const int span[4] = {0, 4, 4, 7};
    static const float old[7] = {0, -1, -0.5f, -2, 0, -0.3f, -1.2f}, ref[7] = {0, -1.2f, -0.4f, -2.5f, 0, -0.1f, -1};
    static const float adv[7] = {0, 1, -0.7f, 0.4f, 0, -1.1f, 0.9f}, ret[7] = {0, 0.5f, 1, -1, 0, 0.2f, 2};
    static const float ov[7] = {0, 0.4f, 0.9f, -0.5f, 0, 0.3f, 1.5f};
    seq_batch b = {7, lp, ref, mask, NULL, 2, span};
    ppo_inputs in = {adv, ret, V, ov, old, NULL};
    double L = 0;
    tm_error err;
    if (ppo_loss(&b, &in, h, 5, &L, dl, dv, m, &err)) return NAN;
    return L;
}

static void test_loss_gradient(void) {
    float lp[7] = {0, -0.95f, -0.9f, -1.5f, 0, -0.31f, -1.19f}, V[7] = {0, 0.45f, 0.5f, -0.1f, 0, 0.3f, 1.9f};
    ppo_hparams h = ppo_hparams_default();
    h.kl_loss = 1;
    h.estimator = KL_K3;
    h.vf_coef = 0.5;
    float dl[7], dv[7], tmp[7];
    ppo_metrics m;
    loss_at(lp, V, &h, dl, dv, &m);
    double worst = 0;
    for (int i = 0; i < 7; i++) {
        for (int which = 0; which < 2; which++) {
            float *x = which ? V : lp;
            float keep = x[i], e = 1e-3f;
            x[i] = keep + e;
            double up = loss_at(lp, V, &h, tmp, tmp, NULL);
            x[i] = keep - e;
            double dn = loss_at(lp, V, &h, tmp, tmp, NULL);
            x[i] = keep;
            double fd = (up - dn) / (2 * e), an = which ? dv[i] : dl[i];
            if (fabs(fd - an) > worst) worst = fabs(fd - an);
        }
    }
    CHECK(worst < 2e-3, "ppo_loss gradients match finite differences (max |diff| %.2g)", worst);
    CHECK(m.tokens == 5 && m.pg_clip >= 1 && m.vf_clip >= 1, "the case clips both (pg %g, vf %g of %g tokens)", m.pg_clip, m.vf_clip, m.tokens);
}

static void test_micro_batches_add_up(void) {
    // two micro-batches with the step's normalizer = one call over both
    uint8_t mask[6] = {0, 1, 1, 0, 1, 1};
    int span[4] = {0, 3, 3, 6}, s1[2] = {0, 3}, s2[2] = {0, 3};
    float lp[6] = {0, -1, -2, 0, -0.5f, -0.7f}, old[6] = {0, -1.3f, -1.8f, 0, -0.4f, -0.9f};
    float adv[6] = {0, 1, -1, 0, 0.5f, 2}, ret[6] = {0, 1, 2, 0, -1, 0.5f}, V[6] = {0, 0.1f, 2.5f, 0, -0.8f, 0.4f}, ov[6] = {0, 0.3f, 2, 0, -1, 0.2f};
    ppo_hparams h = ppo_hparams_default();
    tm_error err;
    seq_batch all = {6, lp, NULL, mask, NULL, 2, span};
    ppo_inputs in = {adv, ret, V, ov, old, NULL};
    double L, L1, L2;
    float d[6], da[3], db[3];
    ppo_loss(&all, &in, &h, 4, &L, d, NULL, NULL, &err);
    seq_batch b1 = {3, lp, NULL, mask, NULL, 1, s1}, b2 = {3, lp + 3, NULL, mask + 3, NULL, 1, s2};
    ppo_inputs i1 = in, i2 = {adv + 3, ret + 3, V + 3, ov + 3, old + 3, NULL};
    ppo_loss(&b1, &i1, &h, 4, &L1, da, NULL, NULL, &err);
    ppo_loss(&b2, &i2, &h, 4, &L2, db, NULL, NULL, &err);
    CHECK(fabs(L - (L1 + L2)) < 1e-12 && d[2] == da[2] && d[5] == db[2], "micro-batches with the step's normalizer add up");
}

static void test_errors(void) {
    tm_error err;
    int span[2] = {0, 2};
    float x[2] = {0, -1};
    uint8_t m[2] = {0, 1};
    seq_batch b = {2, x, NULL, m, NULL, 1, span};
    ppo_hparams h = ppo_hparams_default();
    ppo_inputs in = {x, x, x, x, x, NULL};
    double L;
    h.cliprange = 1.5;
    CHECK(ppo_loss(&b, &in, &h, 1, &L, NULL, NULL, NULL, &err) == -1 && strstr(err.msg, "cliprange"), "bad cliprange: %s", err.msg);
    h = ppo_hparams_default();
    h.kl_loss = 1;
    CHECK(ppo_loss(&b, &in, &h, 1, &L, NULL, NULL, NULL, &err) == -1 && strstr(err.msg, "reference"), "KL loss without reference: %s", err.msg);
    h = ppo_hparams_default();
    in.ret = NULL;
    CHECK(ppo_loss(&b, &in, &h, 1, &L, NULL, NULL, NULL, &err) == -1, "missing returns: %s", err.msg);
    CHECK(ppo_gae(&b, x, x, 1.5, 0.9, x, x, &err) == -1 && strstr(err.msg, "gamma"), "bad gamma: %s", err.msg);
}

// The shared value head's backward: model_backward_extra(dlogp, dxf) in one pass through the trunk
// equals model_backward(dlogp) plus model_backward_hidden(dxf) (the reward heads' tested path), at
// T = 1 and at T = 0.7 (where the lm-head's dL/dh carries 1/T and dxf, of the hidden state before
// the division by T, does not).
static void test_backward_extra(double T) {
    tm_error err;
    model_config c;
    config_preset(&c, ARCH_LLAMA, "tiny", &err);
    c.layers = 2; c.hidden = 32; c.heads = 4; c.kv_heads = 2; c.head_dim = 8; c.ffn = 48; c.vocab = 61;
    model m;
    CHECK(model_create(&m, &c, &err) == 0 && model_enable_grad(&m, &err) == 0, "tiny model");
    model_init_random(&m, 3);
    int ids[9] = {1, 5, 9, 33, 60, 2, 0, 17, 4};
    batch_builder bb;
    batch_init(&bb, 16, 2, &err);
    batch_add(&bb, ids, NULL, 5);
    batch_add(&bb, ids + 5, NULL, 4);
    model_batch b = batch_view(&bb);
    float logp[9], dlogp[9], *dxf = malloc(sizeof(float) * 9 * 32), *g1 = malloc(sizeof(float) * m.numel);
    for (int i = 0; i < 9; i++) dlogp[i] = (float)((i * 37 % 11) - 5) / 7.0f;
    for (int i = 0; i < 9 * 32; i++) dxf[i] = (float)((i * 53 % 17) - 8) / 9.0f;
    model_forward_temp(&m, &b, T, logp, NULL, &err);
    model_zero_grad(&m);
    model_backward(&m, &b, dlogp, NULL);
    model_backward_hidden(&m, &b, dxf);
    memcpy(g1, m.g, sizeof(float) * m.numel);
    model_forward_temp(&m, &b, T, logp, NULL, &err);
    model_zero_grad(&m);
    model_backward_extra(&m, &b, dlogp, NULL, dxf);
    double rel = test_rel_err(m.g, g1, (long)m.numel, 1e-6);
    CHECK(rel < 1e-5, "T = %g: model_backward_extra = model_backward + model_backward_hidden (rel err %.2g over %zu gradients)", T, rel,
          m.numel);
    free(dxf); free(g1);
    batch_free(&bb);
    model_free(&m);
}

int main(void) {
    test_backward_extra(1.0);
    test_backward_extra(0.7);
    test_gae_by_hand();
    test_rewards();
    test_whiten();
    test_loss_gradient();
    test_micro_batches_add_up();
    test_errors();
    return test_done();
}
