// objectives/rm: Bradley–Terry reward-model loss over scalar rewards (TRL RewardTrainer;
// Tulu 2.5's llama_train_rm). r is the scalar head's output on a sequence's last token.
//
//   L = (1/N) Σ_p -log σ(r_w,p - r_l,p - margin_p)  +  c · (1/N) Σ_p (r_w,p + r_l,p)²
//
// margin: optional per-pair margin (TRL's "margin" column; NULL = 0); c: TRL's
// center_rewards_coefficient (0 = off, TRL default None). N: pairs of the whole optimizer
// step (TRL: the micro-batch mean). Gradients d_chosen[p] = dL/dr_w,p, d_rejected[p] = dL/dr_l,p.
// Metrics (sums over this call's pairs; TRL-style value = sum / n_pairs):
//   rewards/chosen = r_w, rewards/rejected = r_l, rewards/accuracies = 1[r_w > r_l],
//   rewards/margins = r_w - r_l.
#pragma once
#include "base/error.h"

typedef struct rm_metrics {
    double n_pairs, rewards_chosen, rewards_rejected, rewards_accuracies, rewards_margins;
} rm_metrics;

int rm_bt_loss(int n_pairs, const float *r_chosen, const float *r_rejected, const float *margin, double center_coef,
               double norm, double *loss, float *d_chosen, float *d_rejected, rm_metrics *m, tm_error *err);
