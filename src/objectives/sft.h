// objectives/sft: negative log-likelihood of the trained tokens.
// Pure function over arrays: no model, no files, no threads.
#pragma once
#include "base/error.h"
#include "objectives/seqs.h"

// loss = -(1/norm) * sum of logp[i] over positions with targets[i] >= 0;
// dlogp[i] = -1/norm there and 0 elsewhere. norm is the count of trained tokens of
// the whole optimizer step (so accumulated micro-batches sum to the big-batch
// gradient), or the number of sequences for per-sequence averaging.
double sft_nll(const float *logp, const int *targets, int n, double norm, float *dlogp);

// Completion-only SFT over a seq_batch (ref_logp is ignored; weight, when given,
// scales each token's term):
//   per token    (per_sequence = 0): L = (1/norm) sum_i sum_t m_t w_t (-logp_t)
//                                     norm = active tokens of the whole optimizer step
//                                     (TRL SFTTrainer's token mean, exact under accumulation)
//   per sequence (per_sequence = 1): L = (1/norm) sum_i (1/n_i) sum_t m_t w_t (-logp_t)
//                                     n_i = active tokens of sequence i (a fully masked
//                                     sequence adds nothing), norm = sequences of the step
// dlogp[t] = dL/dlogp_t (every entry written; 0 where the token does not count).
typedef struct sft_metrics {
    double nll_sum;    // sum_i sum_t m_t (-logp_t), unweighted: token mean = nll_sum / num_tokens
    double num_tokens; // active tokens in this call (TRL "num_tokens")
    double num_seqs;   // sequences in this call
} sft_metrics;

int sft_loss(const seq_batch *b, int per_sequence, double norm, double *loss, float *dlogp,
             sft_metrics *m, tm_error *err);
