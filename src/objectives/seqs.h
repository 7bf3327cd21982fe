// objectives/seqs: the input every sequence-level objective reads.
//
// The model produces one log-prob per token (the log-prob of that token's target);
// the tokens of a micro-batch lie in one flat array, sequences packed or padded as
// the trainer likes. A sequence is a half-open span [start, end) of that array.
// Which tokens count is the mask: for a prompt/completion pair the completion; for
// multi-turn (M-DPO/M-KTO) only the assistant's tokens of every turn, tool outputs
// and user turns masked out of policy and reference terms alike; for Step-DPO only
// the one step s_win / s_lose (the prompt and the correct prefix steps masked, no EOS).
// Those methods are therefore the same objective with different masks: the data
// layer builds the masks, the objective never knows which method it serves.
#pragma once
#include <stdint.h>

typedef struct seq_batch {
    int n_tokens;
    const float *logp;      // [n_tokens] policy log-prob of each token (gradient flows here)
    const float *ref_logp;  // [n_tokens] reference log-probs (detached); NULL = 0 (reference-free)
    const uint8_t *mask;    // [n_tokens] 1 = the token counts; NULL = every token counts
    const float *weight;    // [n_tokens] token weight (cDPO w_t = 1 - s_t); NULL = 1
    int n_seq;
    const int *span;        // [2*n_seq]: sequence i is tokens [span[2i], span[2i+1])
} seq_batch;

// Weighted masked sums of sequence i: *lp = sum_t m_t w_t logp_t, *ref likewise over
// ref_logp, *n = sum_t m_t (the active-token count, unweighted).
static inline void seq_sums(const seq_batch *b, int i, double *lp, double *ref, double *n) {
    double a = 0, r = 0, c = 0;
    for (int t = b->span[2 * i]; t < b->span[2 * i + 1]; t++) {
        if (b->mask && !b->mask[t]) continue;
        double w = b->weight ? b->weight[t] : 1.0;
        a += w * b->logp[t];
        if (b->ref_logp) r += w * b->ref_logp[t];
        c += 1;
    }
    *lp = a; *ref = r; *n = c;
}

// Adds g * m_t * w_t * scale to dlogp over sequence i (the chain rule of seq_sums).
static inline void seq_add_grad(const seq_batch *b, int i, double g, float *dlogp) {
    if (g == 0) return;
    for (int t = b->span[2 * i]; t < b->span[2 * i + 1]; t++) {
        if (b->mask && !b->mask[t]) continue;
        double w = b->weight ? b->weight[t] : 1.0;
        dlogp[t] += (float)(g * w);
    }
}

// Checks spans lie inside [0, n_tokens) and start <= end. 0 ok, -1 with err filled.
struct tm_error;
int seq_batch_check(const seq_batch *b, struct tm_error *err);
