// objectives/divergence: per-token divergence terms for online RL, over token log-probs.
//
// Two uses, one file (both are "how far has πθ moved from a fixed policy", per token):
//
// 1. KL estimators (trainers.md §2.4), for GRPO's β term on the policy's own samples
//    (objectives/grpo.h calls kl_estimate). Per token, δ = logπθ - logπ_ref, r = e^{-δ}:
//      k1          δ                                      d/dδ = 1
//      k2          δ²/2                                   d/dδ = δ
//      k3          e^{-δ} - 1 + δ                          d/dδ = 1 - e^{-δ}    (TRL GRPO: no clamps)
//      low_var_kl  k3 with verl's clamps (core_algos.kl_penalty): -δ clamped to [-20, 20], then
//                  the value clamped to [-10, 10]; d/dδ = 0 where either clamp binds (torch.clamp's
//                  gradient), else as k3. Light-R1, Vision Matters and DPH-RL use this one.
//                  (Names: verl's "k3" is an alias of its clamped low_var_kl; our k3 is TRL's, unclamped.
//                  The input clamp never changes a value: |δ| > 20 already puts k3 above 10.)
//    The gradient is the autograd gradient of the value, which is what TRL and verl back-propagate.
//    What it optimizes, on samples y ~ πθ (the policy's own):
//      E[∇k1] = 0 (k1 is only meaningful as a reward penalty);
//      E[∇k2] = E[δ ∇logπθ] = ∇KL(πθ‖π_ref), the reverse KL;
//      E[∇k3] = E_πθ[(1 - π_ref/πθ) ∇logπθ] = -E_π_ref[∇logπθ] = ∇KL(π_ref‖πθ): k3's VALUE estimates
//      the reverse KL, but its GRADIENT is the forward KL's. We back-propagate it anyway, as TRL and verl
//      do, so that runs reproduce theirs; pick k2 for a reverse-KL gradient.
//
// 2. DPH-RL's divergences on stored samples of the initial policy π0 (papers.md §6.1-6.2, code
//    seamoke/DPH-RL dp_actor.update_policy and core_algos). A rehearsal batch holds tokens y ~ π0
//    (correct samples of prompts π0 already solves) with their π0 log-probs, stored once; no
//    reference model is held. Per token, with l = logπθ - logπ0 and u = πθ/π0 = e^l:
//      forward_kl  the estimator above with the roles swapped (DPH-RL: kl_penalty(logprob = logπ0,
//                  ref_logprob = logπθ, kl_loss_type)), i.e. δ' = logπ0 - logπθ = -l. With low_var_kl
//                  (DPH-RL's scripts, our default) f = u - 1 - log u, clamped as above;
//                  E_π0[f] = KL(π0‖πθ) (mass-covering), df/dl = u - 1. With k1, f = -l: plain NLL of
//                  the π0 samples (SFT rehearsal).
//      js          f = u log u - (u+1) log((u+1)/2)            (DPH-RL js_low_var; no clamps)
//                  E_π0[f] = KL(πθ‖M) + KL(π0‖M) = 2 JS(πθ, π0), M = (πθ+π0)/2;
//                  computed as u·l - (u+1)(softplus(l) - log 2); df/dl = u log(2u/(1+u)) = u (l - softplus(l) + log 2).
//      alpha       f = (u^{1-α} - (1-α)u - α) / (α(α-1)),  α in (0, 1) (DPH-RL alpha_divergence_f,
//                  alpha_coeff default 0.2); df/dl = (u - u^{1-α}) / α.
//    f(1) = 0 and f'(1) = 0 for all three: at θ = θ0 the term and its gradient vanish.
//    Loss over a rehearsal micro-batch (verl agg_loss token-mean, DPH-RL sft_loss_coeff = coef):
//      L = coef · (1/N_tok) Σ_t m_t f(u_t),   dL/dlogπθ_t = coef · m_t · df/dl / N_tok
//    N_tok = the caller's normalizer: active rehearsal tokens of the whole optimizer step, so
//    micro-batches add up exactly (verl: each micro-batch's own token mean divided by the number of
//    micro-batches; equal when they hold equal token counts). N_tok = 0 is taken as 1 (an empty step
//    gives loss 0, as TRL's clamp(min=1)).
//    DPH-RL's alternative "js" mode (k3 of KL(π0‖M) on rehearsal samples, plus a random on-policy
//    k3 KL(πθ‖M) term) is not implemented; js here is the js_low_var generator the paper reports.
#pragma once
#include "base/error.h"
#include "objectives/seqs.h"

typedef enum { KL_K1, KL_K2, KL_K3, KL_LOW_VAR, KL_N_ESTIMATOR } kl_estimator;
typedef enum { DIV_NONE, DIV_REVERSE_KL, DIV_FORWARD_KL, DIV_JS, DIV_ALPHA, DIV_N_KIND } divergence_kind;

// "k1", "k2", "k3", "low_var_kl"; -1 if unknown.
int kl_estimator_parse(const char *name);
const char *kl_estimator_name(kl_estimator e);
// "none", "reverse_kl", "forward_kl", "js", "alpha"; -1 if unknown. reverse_kl is GRPO's β term on
// on-policy samples (objectives/grpo.h); forward_kl, js and alpha are rehearsal_loss below.
int divergence_parse(const char *name);
const char *divergence_name(divergence_kind d);

// The estimator's value at δ = logp - ref_logp; *d gets d value / dδ (= d / dlogp).
double kl_estimate(kl_estimator e, double delta, double *d);

// The generator f for DPH-RL's forward_kl (with estimator e), js and alpha at l = logπθ - logπ0;
// *d gets df/dl. DIV_NONE and DIV_REVERSE_KL are not generators: 0, *d = 0.
double fdiv_generator(divergence_kind f, kl_estimator e, double alpha, double l, double *d);

typedef struct rehearsal_hparams {
    divergence_kind divergence;  // forward_kl, js or alpha
    kl_estimator estimator;      // forward_kl only; default low_var_kl (DPH-RL's scripts)
    double alpha;                // alpha only; in (0, 1), default 0.2
    double coef;                 // DPH-RL sft_loss_coeff (scripts: forward 0.01, js 0.05-0.2)
} rehearsal_hparams;

rehearsal_hparams rehearsal_hparams_default(void);

typedef struct rehearsal_metrics {
    double tokens;     // active rehearsal tokens (Σ m)
    double div_sum;    // Σ m f(u): the divergence estimate is div_sum / tokens (DPH-RL actor/sft_kl_loss)
} rehearsal_metrics;

// b: rehearsal tokens; b->logp = logπθ (the gradient flows here), b->ref_logp = the stored logπ0
// (required), b->mask = the response mask; b->weight must be NULL. norm_tokens: N_tok above.
// *loss gets this call's share of L; dlogp [b->n_tokens] gets dL/dlogp (every entry written).
int rehearsal_loss(const seq_batch *b, const rehearsal_hparams *h, double norm_tokens, double *loss, float *dlogp,
                   rehearsal_metrics *m, tm_error *err);
