// objectives/grpo: GRPO's group advantages and clipped per-token policy loss, over token log-probs
// (TRL GRPOTrainer._generate_and_score_completions / _compute_loss; trainers.md §2.3). Knows no model.
//
// ---- Advantages (grpo_advantages) ----------------------------------------------------------------
// Completions come in groups of G = num_generations consecutive rewards (one prompt each).
// R_i is the (weighted) reward; NaN = unscorable (TRL: every reward function returned None).
//   mean_g = nanmean of the group's rewards
//   std    = group:  nanstd of the group (Bessel: Σ(R - mean)²/(c-1) over the c non-NaN rewards;
//                    NaN if c < 2; 0 when G = 1)
//            batch:  nanstd of the whole batch (0 when it holds one reward)
//            none:   the group's std as above, used only for the zero-std metric (Dr. GRPO)
//   A_i    = R_i - mean_g,  divided by (std + std_eps) unless none;  NaN -> 0.  std_eps: TRL 1e-4
//            (verl 1e-6). A single-sample group thus gets A = 0 (TRL; verl instead uses mean 0, std 1).
// Outputs besides A: group_all_equal[g] = 1 when the group's non-NaN rewards are all equal (max ==
// min, or none/one of them): DAPO's dynamic-sampling filter drops these groups (their A is 0: no
// signal). Metrics with TRL's names: reward = nanmean(R), reward_std = nanstd(R) over the batch (0
// when fewer than 2), frac_reward_zero_std = the fraction of completions whose std (as scaled: group
// or batch) is ≈ 0 (torch.isclose(std, 0): |std| <= 1e-8).
//
// ---- Policy loss (grpo_loss) ---------------------------------------------------------------------
// Per active token t (m_t = completion mask × tool mask: the seq_batch mask), with A_t the token's
// advantage (the sequence's A broadcast by the caller; per-token values work too):
//   ρ_t   = exp(logπθ_t - logπold_t)            (old = logπθ itself, detached, when old_logp is NULL:
//                                                 TRL's num_iterations = 1 shortcut; then ρ = 1)
//   c1    = min(ρ, δ) if delta δ is set, else ρ  (TRL `delta`, INTELLECT-2 two-sided clipping)
//   c2    = clip(ρ, 1 - ε_low, 1 + ε_high)       (ε_low = epsilon, ε_high = epsilon_high: clip-higher)
//   ℓ_t   = -min(c1·A, c2·A) · w_t  +  β · k_t   (w_t = the seq_batch weight: TRL's multipliers of
//                                                 the policy term, the vLLM IS ratio or the entropy mask; 1 if NULL)
//   k_t   = kl_estimate(estimator, logπθ - logπref) (objectives/divergence.h), × ρ_t when
//           kl_bias_correction (TRL use_bias_correction_kl; the gradient flows through ρ too)
// With δ > 1 + ε_high, δ only acts on A < 0 (it caps the loss at δ·|A|), and equals verl's dual clip
// `clip_ratio_c` (verl/DPH-RL: c = 3). Gradient: autograd's, including torch.min's tie rule (inside
// [1-ε_low, 1+ε_high] both terms are ρA: dℓ/dlogπθ = -ρA), and clamp's zero outside its range.
// No clamp of log ρ (verl clamps it to ±20; TRL does not).
//
// Aggregation (L is this call's share of the optimizer step's loss; N_seq, N_tok, L_max are the
// caller's normalizers over the WHOLE optimizer step, so that micro-batches add up exactly):
//   grpo     L = (1/N_seq) Σ_i  Σ_t m ℓ / max(Σ_t m, 1)     (per-sequence token mean; TRL: mean over
//                                                          the micro-batch / GA = this with equal micro-batches)
//   bnpo     L = Σ m ℓ / max(N_tok, 1)                     (TRL: the micro-batch's own token count, / GA;
//                                                          pass N_tok = micro tokens × GA for that)
//   dr_grpo  L = Σ m ℓ / (N_seq · L_max)                   (L_max = max_completion_length; TRL: B_local·L_max·GA)
//   dapo     L = Σ m ℓ / max(N_tok, 1)                     (TRL default: N_tok = num_items_in_batch, the active
//                                                          tokens of the generation batch = the optimizer step)
// So over a whole step bnpo and dapo are the same; they differ only in what TRL passes per micro-batch.
// N_seq counts every sequence of the step, fully masked ones too (TRL's .mean() does).
//
// Metrics (sums over this call's active tokens; TRL's value = sum / tokens over the step, which is
// TRL's global_masked_mean; sum the grpo_metrics of micro-batches with grpo_metrics_merge):
//   clip_ratio/low_mean     c1 < 1 - ε_low and A < 0      clip_ratio/high_mean   c1 > 1 + ε_high and A > 0
//   clip_ratio/region_mean  either                        kl                     k_t (when ref_logp is given)
//   entropy                 H_t (when the caller passes token entropies)       num_tokens   Σ m
//   sampler/trainer mismatch, when the caller passes the sampler's log-probs s_t (old = old_logp, or
//   logπθ when NULL): sampling/sampling_logp_difference/mean|max = |old - s| (TRL),
//   training/rollout_probs_diff_mean|max = |e^old - e^s| (verl).
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "objectives/divergence.h"
#include "objectives/seqs.h"

// ---- advantages ----
typedef enum { GRPO_SCALE_GROUP, GRPO_SCALE_BATCH, GRPO_SCALE_NONE, GRPO_N_SCALE } grpo_scale;

// "group", "batch", "none" (TRL also maps true -> group, false -> none: "true", "false"); -1 if unknown.
int grpo_scale_parse(const char *name);
const char *grpo_scale_name(grpo_scale s);

typedef struct grpo_reward_stats {
    double reward;                // nanmean of all rewards (0 if none)
    double reward_std;            // nanstd of all rewards (0 if fewer than 2)
    double frac_reward_zero_std;  // TRL's fraction of completions whose std ≈ 0
    int groups_all_equal;         // Σ group_all_equal
    int unscorable;               // NaN rewards
} grpo_reward_stats;

// n rewards in n / num_generations groups. adv [n] gets A; group_all_equal [n / num_generations]
// (may be NULL); st may be NULL. Returns -1 for n not a multiple of num_generations, num_generations < 1,
// std_eps < 0 or an unknown scale.
int grpo_advantages(int n, int num_generations, const double *reward, grpo_scale scale, double std_eps, float *adv,
                    uint8_t *group_all_equal, grpo_reward_stats *st, tm_error *err);

// ---- policy loss ----
typedef enum { GRPO_LOSS_GRPO, GRPO_LOSS_BNPO, GRPO_LOSS_DR_GRPO, GRPO_LOSS_DAPO, GRPO_N_LOSS } grpo_loss_type;

typedef struct grpo_hparams {
    grpo_loss_type loss_type;   // TRL default dapo
    double epsilon;             // ε_low, 0.2
    double epsilon_high;        // ε_high, 0.2 (TRL: = epsilon when unset; DAPO 0.28)
    double delta;               // two-sided clip δ; 0 = off (TRL None)
    double beta;                // KL coefficient; 0 = no reference policy (TRL default)
    kl_estimator estimator;     // k3 (TRL); low_var_kl = verl's clamped k3
    int kl_bias_correction;     // k_t × ρ_t (TRL use_bias_correction_kl, default off)
} grpo_hparams;

// TRL's current defaults: dapo, ε 0.2/0.2, no δ, β 0, k3.
grpo_hparams grpo_hparams_default(void);
// "grpo", "bnpo", "dr_grpo", "dapo"; -1 if unknown.
int grpo_loss_type_parse(const char *name);
const char *grpo_loss_type_name(grpo_loss_type t);

typedef struct grpo_norm {
    double sequences;              // N_seq: sequences of the step (grpo, dr_grpo)
    double tokens;                 // N_tok: active tokens of the step (bnpo, dapo); 0 is taken as 1
    double max_completion_length;  // L_max (dr_grpo)
} grpo_norm;

// Per-token inputs beyond the seq_batch (all [n_tokens]).
typedef struct grpo_inputs {
    const float *adv;           // A_t (required)
    const float *old_logp;      // logπold; NULL = logπθ detached (ρ = 1)
    const float *sampler_logp;  // the sampler's log-probs, for the mismatch metrics only; NULL = none
    const float *entropy;       // token entropies, for the entropy metric only; NULL = none
} grpo_inputs;

typedef struct grpo_metrics {
    double sequences, tokens;                   // sequences seen; active tokens (num_tokens)
    double clip_low, clip_high, clip_region;    // token counts; / tokens = clip_ratio/*_mean
    double kl_sum;                              // Σ m k_t (ref_logp given); / tokens = kl
    double entropy_sum;                         // Σ m H_t (entropy given); / tokens = entropy
    double mismatch_tokens;                     // tokens with sampler log-probs (sampler_logp given)
    double logp_diff_sum, logp_diff_max;        // Σ and max |old - s|
    double prob_diff_sum, prob_diff_max;        // Σ and max |e^old - e^s|
} grpo_metrics;

// acc += m (sums add, maxima take the max).
void grpo_metrics_merge(grpo_metrics *acc, const grpo_metrics *m);

// b: logp = logπθ (the gradient flows here), ref_logp = logπref (needed when β > 0; also gives the kl
// metric when β = 0), mask = m_t, weight = w_t. *loss gets L; dlogp [b->n_tokens] gets dL/dlogp
// (every entry written). Returns -1 for bad hyperparameters, a missing array, or a needed
// normalizer <= 0.
int grpo_loss(const seq_batch *b, const grpo_inputs *in, const grpo_hparams *h, const grpo_norm *norm, double *loss,
              float *dlogp, grpo_metrics *m, tm_error *err);
