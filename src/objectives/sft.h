// objectives/sft: negative log-likelihood of the trained tokens.
// Pure function over arrays: no model, no files, no threads.
#pragma once

// loss = -(1/norm) * sum of logp[i] over positions with targets[i] >= 0;
// dlogp[i] = -1/norm there and 0 elsewhere. norm is the count of trained tokens of
// the whole optimizer step (so accumulated micro-batches sum to the big-batch
// gradient), or the number of sequences for per-sequence averaging.
double sft_nll(const float *logp, const int *targets, int n, double norm, float *dlogp);
