// Hand-computed cases for the objectives (the full autograd comparison is
// tests/oracle/test_objectives.py). Runs under ASan/UBSan too.
#include <math.h>
#include <string.h>
#include "test.h"
#include "objectives/divergence.h"
#include "objectives/dpo.h"
#include "objectives/grpo.h"
#include "objectives/kto.h"
#include "objectives/rm.h"
#include "objectives/sft.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (fabs(b) > 1 ? fabs(b) : 1); }

static int all_zero(const float *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i] != 0) return 0;
    return 1;
}

// GRPO and DPH-RL edge cases: hand-computed values where autograd's answer is obvious.
static void grpo_checks(void) {
    tm_error err;
    double loss;
    // Advantages: group 0 all correct, group 1 mixed, group 2 all wrong.
    double r[6] = {1, 1, 1, 0, 0, 0};
    float adv[6];
    uint8_t eq[3];
    grpo_reward_stats st;
    CHECK(grpo_advantages(6, 2, r, GRPO_SCALE_GROUP, 1e-4, adv, eq, &st, &err) == 0, "grpo advantages run");
    double a = 0.5 / (sqrt(0.5) + 1e-4);  // std of {1, 0} with Bessel: sqrt(1/2)
    CHECK(adv[0] == 0 && adv[1] == 0 && adv[4] == 0 && adv[5] == 0, "all-equal groups get A = 0 exactly");
    CHECK(near(adv[2], a, 1e-6) && near(adv[3], -a, 1e-6), "mixed group: A = ±0.5 / (sqrt(1/2) + 1e-4)");
    CHECK(eq[0] == 1 && eq[1] == 0 && eq[2] == 1 && st.groups_all_equal == 2, "all-equal flags mark groups 0 and 2 (DAPO drops them)");
    CHECK(near(st.frac_reward_zero_std, 4.0 / 6, 1e-12) && near(st.reward, 0.5, 1e-12), "frac_reward_zero_std 2/3, reward 0.5");
    CHECK(grpo_advantages(6, 2, r, GRPO_SCALE_NONE, 1e-4, adv, eq, &st, &err) == 0 && adv[2] == 0.5f && adv[3] == -0.5f,
          "scale none: A = R - mean (Dr. GRPO)");
    // Batch scaling: the std is the batch's, so all-equal groups still get 0 and frac counts the batch.
    CHECK(grpo_advantages(6, 2, r, GRPO_SCALE_BATCH, 1e-4, adv, eq, &st, &err) == 0 && adv[0] == 0 &&
              near(adv[2], 0.5 / (sqrt(0.3) + 1e-4), 1e-6) && st.frac_reward_zero_std == 0,
          "scale batch: A = (R - mean_g) / (batch std + eps), batch std sqrt(0.3)");
    // Single-sample groups: std 0 (TRL), A = 0, every group flagged.
    double r1[3] = {1, 0, 0.5};
    CHECK(grpo_advantages(3, 1, r1, GRPO_SCALE_GROUP, 1e-4, adv, eq, &st, &err) == 0 && all_zero(adv, 3) && eq[0] && eq[1] &&
              eq[2] && st.frac_reward_zero_std == 1,
          "single-sample groups: A = 0, all flagged, frac_reward_zero_std 1");
    // An unscorable (NaN) reward is left out of its group's statistics and gets A = 0.
    double rn[4] = {NAN, 1, 0, 1};
    CHECK(grpo_advantages(4, 2, rn, GRPO_SCALE_GROUP, 1e-4, adv, eq, &st, &err) == 0 && adv[0] == 0 && adv[1] == 0 &&
              eq[0] == 1 && st.unscorable == 1 && near(st.reward, 2.0 / 3, 1e-12),
          "NaN reward: A = 0, its group (one valid reward) flagged, reward mean over the valid ones");
    CHECK(grpo_advantages(5, 2, r, GRPO_SCALE_GROUP, 1e-4, adv, eq, &st, &err) == -1 && strstr(err.msg, "num_generations"),
          "5 rewards do not fill groups of 2: %s", err.msg);
    CHECK(grpo_advantages(0, 4, r, GRPO_SCALE_GROUP, 1e-4, adv, eq, &st, &err) == 0 && st.reward == 0 && st.frac_reward_zero_std == 0,
          "no rewards: empty batch, zero metrics");

    // Loss: 4 tokens in 2 sequences; token 3 masked (a tool output).
    float lp[4] = {-1, -2, -1, -3}, old[4] = {-1.5f, -2, -1, -1}, ad[4] = {1, 1, -1, -1}, g[4];
    uint8_t mk[4] = {1, 1, 1, 0};
    int sp[4] = {0, 2, 2, 4};
    seq_batch b = {4, lp, NULL, mk, NULL, 2, sp};
    grpo_inputs in = {ad, old, NULL, NULL};
    grpo_hparams h = grpo_hparams_default();
    h.epsilon_high = 0.28;
    grpo_norm nm = {2, 3, 8};
    grpo_metrics m;
    CHECK(grpo_loss(&b, &in, &h, &nm, &loss, g, &m, &err) == 0, "grpo dapo runs");
    // token 0: ρ = e^0.5 > 1.28, A > 0: clipped, -1.28, no gradient; token 1: ρ = 1, -1, gradient -1;
    // token 2: ρ = 1, A = -1: +1, gradient +1. dapo: / 3 tokens.
    CHECK(near(loss, (-1.28 - 1 + 1) / 3, 1e-12) && g[0] == 0 && near(g[1], -1.0 / 3, 1e-7) && near(g[2], 1.0 / 3, 1e-7) && g[3] == 0,
          "dapo: clipped token has no gradient, masked token none, sum / 3 tokens (loss %.9g)", loss);
    CHECK(m.tokens == 3 && m.clip_high == 1 && m.clip_low == 0 && m.clip_region == 1, "clip metrics count the clipped token once");
    h.loss_type = GRPO_LOSS_GRPO;  // per-sequence means: (-1.28 - 1)/2 and 1/1, over 2 sequences
    CHECK(grpo_loss(&b, &in, &h, &nm, &loss, g, NULL, &err) == 0 && near(loss, ((-2.28 / 2) + 1) / 2, 1e-12) && near(g[2], 0.5, 1e-7),
          "grpo: the masked token does not count in its sequence's length");
    h.loss_type = GRPO_LOSS_DR_GRPO;
    CHECK(grpo_loss(&b, &in, &h, &nm, &loss, g, NULL, &err) == 0 && near(loss, -1.28 / 16, 1e-12), "dr_grpo: / (2 sequences × 8)");
    // Dual clip: A < 0 and ρ = e > δ = 2: the loss is capped at δ|A| with no gradient.
    float lpd[1] = {0}, oldd[1] = {-1}, add[1] = {-2};
    int spd[2] = {0, 1};
    seq_batch bd = {1, lpd, NULL, NULL, NULL, 1, spd};
    grpo_inputs ind = {add, oldd, NULL, NULL};
    h.loss_type = GRPO_LOSS_DAPO;
    h.delta = 2;
    grpo_norm n1 = {1, 1, 1};
    CHECK(grpo_loss(&bd, &ind, &h, &n1, &loss, g, &m, &err) == 0 && near(loss, 4, 1e-12) && g[0] == 0,
          "delta: A = -2, ρ = e > δ = 2: loss δ|A| = 4, no gradient");
    h.delta = 0;
    CHECK(grpo_loss(&bd, &ind, &h, &n1, &loss, g, &m, &err) == 0 && near(loss, 2 * exp(1), 1e-9) && near(g[0], 2 * exp(1), 1e-6) &&
              m.clip_low == 0,
          "no delta: A < 0 above 1+ε is not clipped: loss ρ|A|, gradient ρ|A|");
    // Every token masked: loss 0, no gradient, no NaN (dapo with 0 step tokens takes 1).
    uint8_t none[4] = {0, 0, 0, 0};
    b.mask = none;
    grpo_norm n0 = {2, 0, 8};
    h.beta = 0.1;
    float ref[4] = {-9, -9, -9, -9};
    b.ref_logp = ref;
    CHECK(grpo_loss(&b, &in, &h, &n0, &loss, g, &m, &err) == 0 && loss == 0 && all_zero(g, 4) && m.tokens == 0 && m.kl_sum == 0,
          "every token masked: loss 0, zero gradient, zero metrics");
    h.loss_type = GRPO_LOSS_GRPO;
    CHECK(grpo_loss(&b, &in, &h, &n0, &loss, g, &m, &err) == 0 && loss == 0 && all_zero(g, 4), "grpo type, empty masks: 0/max(0,1)");
    // On-policy (old log-probs NULL): ρ = 1, β term with k3 at δ = 0 is 0 with gradient 0.
    b.mask = mk;
    b.ref_logp = lp;
    in.old_logp = NULL;
    h.loss_type = GRPO_LOSS_BNPO;
    CHECK(grpo_loss(&b, &in, &h, &nm, &loss, g, &m, &err) == 0 && near(loss, -1.0 / 3, 1e-12) && near(g[0], -1.0 / 3, 1e-7) &&
              m.kl_sum == 0 && m.clip_region == 0,
          "on-policy: ρ = 1, loss -mean A, k3 at the reference is 0");
    // A zero-length sequence and a sequence of masked tokens count in N_seq but add nothing.
    int spz[4] = {0, 0, 0, 3};
    seq_batch bz = {4, lp, NULL, mk, NULL, 2, spz};
    in.old_logp = old;
    h.beta = 0;
    h.loss_type = GRPO_LOSS_GRPO;
    CHECK(grpo_loss(&bz, &in, &h, &nm, &loss, g, NULL, &err) == 0 && near(loss, (-1.28 - 1 + 1) / 3 / 2, 1e-12),
          "zero-length sequence: counted in N_seq, no tokens");
    b.ref_logp = NULL;
    h.beta = 0.1;
    CHECK(grpo_loss(&b, &in, &h, &nm, &loss, g, NULL, &err) == -1 && strstr(err.msg, "reference"), "beta without reference: %s", err.msg);

    // Metrics merge: sums add, maxima take the max.
    grpo_metrics x = {0}, y = {0};
    x.tokens = 3, x.logp_diff_max = 0.2, x.clip_low = 1;
    y.tokens = 5, y.logp_diff_max = 0.1, y.clip_low = 2, y.prob_diff_max = 0.3;
    grpo_metrics_merge(&x, &y);
    CHECK(x.tokens == 8 && x.clip_low == 3 && x.logp_diff_max == 0.2 && x.prob_diff_max == 0.3, "grpo_metrics_merge");

    // Generators and estimators vanish with zero slope at θ = θ0 / the reference.
    int flat = 1;
    for (int f = DIV_FORWARD_KL; f <= DIV_ALPHA; f++)
        for (int e = 0; e < KL_N_ESTIMATOR; e++) {
            double d, v = fdiv_generator((divergence_kind)f, (kl_estimator)e, 0.3, 0, &d);
            if (fabs(v) > 1e-15 || (fabs(d) > 1e-15 && !(f == DIV_FORWARD_KL && e == KL_K1))) flat = 0;
        }
    CHECK(flat, "f(1) = 0 and f'(1) = 0 for forward_kl (k2, k3, low_var_kl), js and alpha");
    double d, v = kl_estimate(KL_LOW_VAR, -5, &d);
    CHECK(v == 10 && d == 0, "low_var_kl clamps its value at 10 (δ = -5: e^5 - 6) with zero gradient");
    v = kl_estimate(KL_K3, -5, &d);
    CHECK(near(v, exp(5) - 6, 1e-12) && near(d, 1 - exp(5), 1e-12), "k3 (TRL) is not clamped");
    // Rehearsal: empty mask is 0; js at u = e: f = e - (e+1) log((e+1)/2).
    rehearsal_hparams rh = rehearsal_hparams_default();
    rh.divergence = DIV_JS;
    rh.coef = 1;
    float rl[1] = {0}, r0[1] = {-1};
    seq_batch rb = {1, rl, r0, NULL, NULL, 1, spd};
    rehearsal_metrics rm;
    double e = exp(1);
    CHECK(rehearsal_loss(&rb, &rh, 1, &loss, g, &rm, &err) == 0 && near(loss, e - (e + 1) * log((e + 1) / 2), 1e-12) &&
              near(g[0], e * log(2 * e / (1 + e)), 1e-6),
          "js at u = e: value and slope u log(2u/(1+u))");
    uint8_t m0[1] = {0};
    rb.mask = m0;
    CHECK(rehearsal_loss(&rb, &rh, 0, &loss, g, &rm, &err) == 0 && loss == 0 && g[0] == 0 && rm.tokens == 0,
          "rehearsal with every token masked: loss 0");
    rh.divergence = DIV_ALPHA;
    rh.alpha = 0;
    CHECK(rehearsal_loss(&rb, &rh, 1, &loss, g, &rm, &err) == -1 && strstr(err.msg, "alpha"), "alpha 0 rejected: %s", err.msg);
    CHECK(grpo_loss_type_parse("dr_grpo") == GRPO_LOSS_DR_GRPO && grpo_scale_parse("false") == GRPO_SCALE_NONE &&
              kl_estimator_parse("low_var_kl") == KL_LOW_VAR && divergence_parse("js") == DIV_JS && divergence_parse("kl") == -1,
          "names parse");
}

int main(void) {
    tm_error err;
    // DPO sigmoid: Δ_w = 0.5, Δ_l = -1, β 0.1: L = softplus(-0.15), dL/dlogp = ∓β σ(-0.15).
    float lp[4] = {-1, -2, -3, -4}, ref[4] = {-1.5f, -2, -3, -3}, g[4];
    int span[4] = {0, 2, 2, 4}, pair[2] = {0, 1};
    seq_batch b = {4, lp, ref, NULL, NULL, 2, span};
    dpo_hparams h = dpo_hparams_default();
    dpo_norm nm = {1, 1, 1};
    dpo_metrics m;
    double loss;
    CHECK(dpo_loss(&b, 1, pair, &h, &nm, &loss, g, &m, &err) == 0, "dpo sigmoid runs");
    double s = 1 / (1 + exp(0.15));
    CHECK(near(loss, log1p(exp(-0.15)), 1e-12), "dpo sigmoid loss = softplus(-βδ) (%.15g)", loss);
    CHECK(near(g[0], -0.1 * s, 1e-6) && near(g[3], 0.1 * s, 1e-6), "dpo sigmoid gradient = ∓β σ(-βδ)");
    CHECK(m.rewards_accuracies == 1 && near(m.rewards_margins, 0.15, 1e-12) && m.logps_chosen == -3,
          "dpo metrics: accuracy 1, margin 0.15, logps/chosen -3");
    // Every token masked: δ = 0, loss log 2, no gradient.
    uint8_t none[4] = {0, 0, 0, 0};
    b.mask = none;
    h.length_normalize = 1;
    CHECK(dpo_loss(&b, 1, pair, &h, &nm, &loss, g, &m, &err) == 0 && near(loss, log(2.0), 1e-12) &&
              g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0,
          "dpo fully masked pair: loss log 2, zero gradient, length-normalized 0/0 taken as 0");
    b.mask = NULL;
    h.length_normalize = 0;
    // IPO: (δ - 1/(2β))² = (1.5 - 5)² = 12.25, gradient 2(δ - 5) = -7 per chosen token.
    memset(h.loss_weight, 0, sizeof h.loss_weight);
    h.loss_weight[DPO_IPO] = 1;
    CHECK(dpo_loss(&b, 1, pair, &h, &nm, &loss, g, NULL, &err) == 0 && near(loss, 12.25, 1e-12) && near(g[1], -7, 1e-6) &&
              near(g[2], 7, 1e-6),
          "dpo ipo loss 12.25, gradient ∓7");
    // sft term alone: mean NLL of the chosen tokens (1 + 2) / 2.
    memset(h.loss_weight, 0, sizeof h.loss_weight);
    h.rpo_alpha = 1;
    nm.chosen_tokens = 2;
    CHECK(dpo_loss(&b, 1, pair, &h, &nm, &loss, g, NULL, &err) == 0 && near(loss, 1.5, 1e-12) && g[0] == -0.5f && g[2] == 0,
          "rpo_alpha alone is the chosen token NLL");
    CHECK(dpo_loss(&b, 0, pair, &h, &nm, &loss, g, NULL, &err) == 0 && loss == 0, "dpo with no pairs: loss 0");
    h.label_smoothing = 0.7;
    h.loss_weight[DPO_ROBUST] = 1;
    CHECK(dpo_loss(&b, 1, pair, &h, &nm, &loss, g, NULL, &err) == -1 && strstr(err.msg, "label_smoothing"),
          "robust rejects label_smoothing 0.7: %s", err.msg);

    // KTO: Δ = z0 for a desirable sequence: λ_D (1 - σ(0)) = 0.5, gradient -λ β / 4.
    kto_hparams kh = kto_hparams_default();
    uint8_t lab[1] = {1};
    int kspan[2] = {0, 2};
    seq_batch kb = {2, lp, ref, NULL, NULL, 1, kspan};
    kto_metrics km;
    CHECK(kto_loss(&kb, lab, 0.5, &kh, 1, &loss, g, &km, &err) == 0 && near(loss, 0.5, 1e-12) && near(g[0], -0.025, 1e-6) &&
              km.count_chosen == 1 && near(km.rewards_chosen_sum, 0.05, 1e-12),
          "kto desirable at the reference point: loss 0.5, gradient -β/4");
    CHECK(kto_z0(&kb) == 0.5, "kto z0 of one sequence is its log-ratio");
    float lo[2] = {-3, -3};
    seq_batch kb2 = {2, lo, ref, NULL, NULL, 1, kspan};
    CHECK(kto_z0(&kb2) == 0, "kto z0 is clamped at 0");

    // Bradley–Terry: equal rewards give log 2 and ∓1/2.
    float rw[2] = {1, 3}, rl[2] = {1, 3}, dw[2], dl[2];
    rm_metrics rmm;
    CHECK(rm_bt_loss(2, rw, rl, NULL, 0, 2, &loss, dw, dl, &rmm, &err) == 0 && near(loss, log(2.0), 1e-12) && dw[0] == -0.25f &&
              dl[1] == 0.25f && rmm.rewards_accuracies == 0,
          "reward model: equal rewards give log 2, gradient ∓1/(2N)");

    // SFT per token and per sequence.
    uint8_t mk[3] = {1, 0, 1};
    float sl[3] = {-1, -2, -3}, sg[3];
    int sspan[2] = {0, 3};
    seq_batch sb = {3, sl, NULL, mk, NULL, 1, sspan};
    sft_metrics sm;
    CHECK(sft_loss(&sb, 0, 2, &loss, sg, &sm, &err) == 0 && loss == 2 && sg[0] == -0.5f && sg[1] == 0 && sm.num_tokens == 2,
          "sft per token: mean NLL 2 over 2 active tokens");
    CHECK(sft_loss(&sb, 1, 1, &loss, sg, &sm, &err) == 0 && loss == 2 && sg[2] == -0.5f, "sft per sequence: token mean per sequence");
    grpo_checks();
    return test_done();
}
