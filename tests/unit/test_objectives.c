// Hand-computed cases for the objectives (the full autograd comparison is
// tests/oracle/test_objectives.py). Runs under ASan/UBSan too.
#include <math.h>
#include <string.h>
#include "test.h"
#include "objectives/dpo.h"
#include "objectives/kto.h"
#include "objectives/rm.h"
#include "objectives/sft.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (fabs(b) > 1 ? fabs(b) : 1); }

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
    return test_done();
}
