// objectives/dpo: the DPO family over token log-probs, with TRL's formulas and metric names.
//
// Input: a seq_batch (policy and reference log-prob per token, masks, optional token
// weights, sequence spans) and n_pairs pairs (chosen sequence index, rejected index).
// Output: the loss, dL/dlogp for every token (the model back-propagates it), metrics.
//
// Per sequence y (mask m_t, weight w_t, active-token count n_y = sum_t m_t):
//   s(y)   = sum_t m_t w_t logp_t          (policy; TRL's summed "logps")
//   s_r(y) = sum_t m_t w_t ref_logp_t      (reference; 0 when ref_logp is NULL: reference-free)
//   with length_normalize both are divided by n_y (token means; SimPO-style length-normalized
//   log-probs, TRL's "sigmoid_norm"; TRL <= 0.28 does this for "ipo" too: the trainer sets the
//   flag for ipo to reproduce that; n_y = 0 gives 0)
//   Δ(y) = s(y) - s_r(y)   (log-ratio),  δ = Δ(y_w) - Δ(y_l),  r_w = βΔ(y_w), r_l = βΔ(y_l)
//
// Per-pair losses ℓ_k (TRL DPOTrainer; ε = label_smoothing):
//   sigmoid  -(1-ε) log σ(βδ) - ε log σ(-βδ)          (ε > 0: conservative DPO "cDPO", TRL <= 0.28)
//   hinge    relu(1 - βδ)                                (SLiC)
//   ipo      (δ - 1/(2β))²
//   robust   [-(1-ε) log σ(βδ) + ε log σ(-βδ)] / (1-2ε)  (rDPO, TRL <= 0.28; ε in [0, 0.5))
//   nca_pair -log σ(r_w) - ½ log σ(-r_w) - ½ log σ(-r_l) (Light-R1's DPO stage)
//   sft      token NLL of the chosen responses (TRL: F.cross_entropy over all chosen
//            completion tokens); not a per-pair term, see below
//
// Combined loss (TRL `loss_type=[...]`, `loss_weights=[...]`; rpo_alpha adds to the sft weight,
// as TRL <= 0.28 `rpo_alpha` = TRL's ["sigmoid","sft"] with weights [1, α]):
//   L = (1/N_pairs) Σ_pairs Σ_k W_k ℓ_k  +  W_sft · (1/N_tok) Σ_{chosen t} m_t (-logp_t)
// N_pairs and N_tok are the caller's normalizers: the pairs, and the active chosen tokens, of
// the whole optimizer step, so micro-batches of one step add up to the big-batch gradient
// exactly. (TRL's per-micro-batch mean is N = this micro-batch's count.) The sft term uses
// the raw token log-probs: no weights, no length normalization.
//
// cDPO token weights ("Critical Tokens Matter", papers.md §7.3), two forms:
//   DPO_FORM_SEQUENCE (the paper): the weights enter s(y), s_r(y) above, so
//       ℓ = -log σ(β Σ_t m w (lp - ref)(y_w) - β Σ_t m w (lp - ref)(y_l)); any loss type works.
//   DPO_FORM_POSITION (the released code, CDPOTrainer.dpo_loss): chosen and rejected tokens are
//       paired by their offset k from the start of their spans (spans should start at the same
//       prompt position, as TRL's padded tensors do), u_k(y) = m w (lp - ref) at offset k (0 past
//       the end or where masked), z_k = u_k(y_w) - u_k(y_l), and
//       L = (1/N_pos) Σ_pairs Σ_{k < max(|y_w|,|y_l|)} [-(1-ε) log σ(βz_k) - ε log σ(-βz_k)]
//         + the sft term.
//       N_pos is the caller's: the released code takes the mean over B×(T-1) padded positions;
//       positions past both spans add the constant log 2 there and nothing here (same gradient).
//       Only sigmoid (with label smoothing) and sft combine with this form; no length_normalize.
//
// Multi-turn DPO (M-DPO) and Step-DPO are this objective with their masks (objectives/seqs.h).
//
// Metrics (TRL names; each a sum over this call's pairs: TRL's value = sum / n_pairs):
//   rewards/chosen = r_w, rewards/rejected = r_l (always β·Δ, whatever the loss type),
//   rewards/accuracies = 1[r_w > r_l], rewards/margins = r_w - r_l,
//   logps/chosen = s(y_w), logps/rejected = s(y_l) (policy, weighted and length-normalized as used);
//   nll_loss = the token NLL of the chosen responses (sum; TRL's value = nll_sum / chosen_tokens).
//   logits/chosen|rejected need the vocabulary logits: the model side logs them, not this.
#pragma once
#include "base/error.h"
#include "objectives/seqs.h"

typedef enum { DPO_SIGMOID, DPO_HINGE, DPO_IPO, DPO_ROBUST, DPO_NCA_PAIR, DPO_SFT, DPO_N_LOSS } dpo_loss_type;
typedef enum { DPO_FORM_SEQUENCE, DPO_FORM_POSITION } dpo_weight_form;

typedef struct dpo_hparams {
    double beta;                      // TRL default 0.1
    double loss_weight[DPO_N_LOSS];   // weight of each loss type; 0 = off. TRL default: sigmoid 1
    double label_smoothing;           // ε for sigmoid (conservative DPO) and robust; default 0
    int length_normalize;             // token-mean log-probs (sigmoid_norm / SimPO-style / TRL ipo)
    double rpo_alpha;                 // RPO: adds α to the sft weight; default 0 (TRL None)
    dpo_weight_form form;             // how token weights enter (cDPO); default SEQUENCE
} dpo_hparams;

// TRL's defaults: β 0.1, sigmoid with weight 1, no smoothing, sums.
dpo_hparams dpo_hparams_default(void);
// Parses a TRL loss-type name ("sigmoid", "hinge", "ipo", "robust", "nca_pair", "sft"); -1 if unknown.
int dpo_loss_type_parse(const char *name);
const char *dpo_loss_type_name(dpo_loss_type t);

typedef struct dpo_norm {
    double pairs;          // pairs of the whole optimizer step
    double chosen_tokens;  // active chosen tokens of the step (sft / rpo term); unused if W_sft = 0
    double positions;      // DPO_FORM_POSITION: positions of the step (B×(T-1) in the released code)
} dpo_norm;

typedef struct dpo_metrics {
    double n_pairs;
    double rewards_chosen, rewards_rejected, rewards_accuracies, rewards_margins;
    double logps_chosen, logps_rejected;
    double nll_sum, chosen_tokens;   // nll_loss = nll_sum / chosen_tokens
} dpo_metrics;

// pair[2p], pair[2p+1]: the chosen and rejected sequence indices of pair p in b.
// *loss gets L (this call's share of the step's loss); dlogp [b->n_tokens] gets dL/dlogp
// (every entry written). Returns 0, or -1 with err filled for bad input (unknown form
// combination, ε outside its range, β <= 0, a normalizer <= 0 that is needed, bad spans).
int dpo_loss(const seq_batch *b, int n_pairs, const int *pair, const dpo_hparams *h, const dpo_norm *norm,
             double *loss, float *dlogp, dpo_metrics *m, tm_error *err);
