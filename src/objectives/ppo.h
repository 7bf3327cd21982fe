// objectives/ppo: PPO with a critic over token log-probs and token values (trainers.md §2.5; TRL
// experimental PPOTrainer.train, verl core_algos compute_gae_advantage_return / compute_value_loss,
// Tulu 2.5's llama_train_ppo.py, papers.md §2.4). Knows no model.
//
// Token alignment as everywhere (objectives/seqs.h): entry t of a sequence is about token t; m_t
// (the seq_batch mask) is 1 on the tokens the model sampled, 0 on the prompt and on tool
// observations. A value V_t is the critic's estimate before token t is sampled (TRL: the value
// head's output at the position that predicts token t).
//
// ---- Per-token rewards (ppo_rewards) ------------------------------------------------------------
//   kl_t = kl_estimate(estimator, logπold_t - logπref_t)   (k1: TRL's -logr; k3: (e^logr - 1) - logr)
//   r_t  = -kl_coef · kl_t on m_t = 1 (when the KL is a reward term; 0 when it is a loss term)
//   r_T += score_i at the sequence's last token with m = 1 (TRL: the last real token; with tool
//          observations the last token the model sampled, so that GAE does not skip it)
// Non-score reward of a sequence = Σ_t r_t - score (TRL objective/non_score_reward, summed over tokens).
//
// ---- GAE (ppo_gae) -------------------------------------------------------------------------------
// Backwards over each sequence, skipping m = 0 tokens (verl: tool observations carry the next value
// and the running advantage through, untouched):
//   δ_t = r_t + γ·V_next - V_t,   A_t = δ_t + γλ·A_next,   returns_t = A_t + V_t
// V_next, A_next: those of the next token with m = 1 (0 beyond the end). Entries with m = 0 get 0.
//
// ---- Whitening (ppo_whiten) ----------------------------------------------------------------------
// TRL/verl masked_whiten over the active tokens of the whole batch: mean, var = Bessel-corrected
// masked variance (n/(n-1)), x ← (x - mean)·rsqrt(var + 1e-8) (+ mean when not shift_mean).
// Fewer than two active tokens: x ← x - mean (no scaling; TRL would divide by 0).
//
// ---- Loss (ppo_loss) -----------------------------------------------------------------------------
// Per active token, with ρ = exp(logπθ - logπold), A the (whitened) advantage, R the return, V the
// critic's current value and V_old the rollout's:
//   pg_t = max(-A·ρ, -A·clip(ρ, 1 - ε, 1 + ε))                          (ε = cliprange)
//   vf_t = 0.5·max((V - R)², (clip(V, V_old - ε_v, V_old + ε_v) - R)²)   (ε_v = cliprange_value)
//   kl_t = kl_estimate(estimator, logπθ - logπref)   only when the KL is a loss term (kl_loss)
//   L    = (1/N_tok) Σ m (pg_t + vf_coef·vf_t + kl_coef·kl_t)
// N_tok: the caller's normalizer, the active tokens of the whole optimizer step (so micro-batches
// add up; TRL's masked_mean per micro-batch equals this for one micro-batch). Gradients are
// autograd's: torch.max splits a tie evenly, clamp passes the gradient only inside its range.
// Metrics (sums over this call's active tokens; divide by tokens): pg_clip (-A·clip > -A·ρ, TRL
// policy/clipfrac), vf_clip ((clipped - R)² > (V - R)², val/clipfrac), approxkl 0.5·(logπθ - logπold)²
// (policy/approxkl), ρ, pg and vf terms, entropy (given), V (val/vpred), (V - R)² (val/error), kl.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "objectives/divergence.h"
#include "objectives/seqs.h"

typedef struct ppo_hparams {
    double cliprange;         // ε, TRL 0.2
    double cliprange_value;   // ε_v, TRL 0.2 (verl, OpenRLHF 0.5)
    double vf_coef;           // TRL 0.1
    double gamma, lam;        // TRL 1, 0.95
    double kl_coef;           // TRL 0.05
    kl_estimator estimator;   // TRL k1
    int kl_loss;              // 1: the KL is a loss term (verl use_kl_loss); 0: a reward term (TRL)
} ppo_hparams;

// TRL's PPOConfig defaults.
ppo_hparams ppo_hparams_default(void);

// rewards [n_tokens] from b (logp = logπold of the rollout, ref_logp = logπref; NULL ref_logp: no
// KL term), scores [n_seq]. non_score [n_seq] (may be NULL) gets each sequence's Σ of KL rewards;
// kl_sum [n_seq] (may be NULL) its Σ_t m kl_t (TRL objective/kl before the batch mean). A sequence
// without an active token gets no score.
int ppo_rewards(const seq_batch *b, const double *scores, const ppo_hparams *h, float *rewards, double *non_score,
                double *kl_sum, tm_error *err);

// GAE over every sequence of b (b->mask = m; logp unused). adv and ret [n_tokens] (0 where m = 0).
int ppo_gae(const seq_batch *b, const float *rewards, const float *values, double gamma, double lam, float *adv, float *ret,
            tm_error *err);

// Masked whitening of x [n] in place (mask NULL: all). Returns the number of active entries.
int ppo_whiten(int n, const uint8_t *mask, float *x, int shift_mean);

typedef struct ppo_inputs {
    const float *adv;        // A_t (required)
    const float *ret;        // R_t (required)
    const float *values;     // V_t, the critic now (required; the gradient flows here)
    const float *old_values; // V_old (required)
    const float *old_logp;   // logπold (required)
    const float *entropy;    // for the entropy metric only; NULL = none
} ppo_inputs;

typedef struct ppo_metrics {
    double tokens;                      // Σ m
    double pg_sum, vf_sum, kl_sum;      // Σ m pg_t, Σ m vf_t, Σ m kl_t (kl_loss)
    double pg_clip, vf_clip;            // token counts
    double approxkl_sum, ratio_sum, entropy_sum, vpred_sum, verr_sum;
} ppo_metrics;

void ppo_metrics_merge(ppo_metrics *acc, const ppo_metrics *m);

// b: logp = logπθ, ref_logp = logπref (required when kl_loss and kl_coef > 0), mask = m. *loss gets
// L; dlogp and dvalue [n_tokens] get dL/dlogπθ and dL/dV (every entry written; either may be NULL).
int ppo_loss(const seq_batch *b, const ppo_inputs *in, const ppo_hparams *h, double norm_tokens, double *loss, float *dlogp,
             float *dvalue, ppo_metrics *m, tm_error *err);
