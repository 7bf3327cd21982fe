// objectives/kto: Kahneman-Tversky Optimization over token log-probs (TRL KTOTrainer).
//
// Each sequence y is a completion with a label (desirable or undesirable), log-ratio
//   Δ(y) = Σ_t m_t w_t (logp_t - ref_logp_t)      (summed, as TRL; multi-turn M-KTO = masks)
// and z0 is the batch reference point, an input: TRL estimates it from mismatched
// prompt/completion pairs (x_i, y_{i-1}: completion of the previous row, cyclic) as
//   z0 = clamp_min( mean_i Δ(y'_i | x_i), 0 )           (kto_z0 below; detached, no gradient)
// computed per micro-batch (and averaged over ranks). The trainer runs the mismatched
// forward; the objective only uses the number.
//
// Per-sequence losses (λ_D = desirable_weight, λ_U = undesirable_weight, TRL defaults β 0.1, λ 1):
//   kto                desirable  λ_D (1 - σ(β(Δ - z0)))      undesirable  λ_U (1 - σ(β(z0 - Δ)))
//   apo_zero_unpaired  desirable  λ_D (1 - σ(βΔ))             undesirable  λ_U σ(βΔ)     (z0 unused)
//   L = (1/N) Σ_i ℓ_i,  N = the caller's normalizer: sequences of the whole optimizer step
//   (TRL: nanmean over the micro-batch, N = its size).
//
// Metrics with TRL's names (sums; TRL logs sum/count exactly like this):
//   rewards/chosen = Σ_desirable βΔ / count/chosen, rewards/rejected likewise over undesirable,
//   rewards/margins = rewards/chosen - rewards/rejected, logps/chosen|rejected = Σ_t m w logp
//   summed per sequence, averaged over its class; kl = z0.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "objectives/seqs.h"

typedef enum { KTO_LOSS_KTO, KTO_LOSS_APO_ZERO_UNPAIRED } kto_loss_type;

typedef struct kto_hparams {
    double beta;                // 0.1
    double desirable_weight;    // λ_D, 1.0
    double undesirable_weight;  // λ_U, 1.0
    kto_loss_type loss_type;    // kto
} kto_hparams;

kto_hparams kto_hparams_default(void);

typedef struct kto_metrics {
    double count_chosen, count_rejected;
    double rewards_chosen_sum, rewards_rejected_sum;
    double logps_chosen_sum, logps_rejected_sum;
    double kl;
} kto_metrics;

// z0 = clamp_min(mean_i Δ_i, 0) over the sequences of a batch of mismatched completions;
// 0 for an empty batch.
double kto_z0(const seq_batch *mismatched);

// desirable[i] = 1 for a desirable (label True) sequence i. dlogp [b->n_tokens], every entry written.
int kto_loss(const seq_batch *b, const uint8_t *desirable, double z0, const kto_hparams *h, double norm,
             double *loss, float *dlogp, kto_metrics *m, tm_error *err);
