// rollout/sampling: choosing the next token from a row of logits, and the log-prob
// (at the sampling temperature) the trainer will recompute.
//
// Order of the filters (Hugging Face's and vLLM's): temperature, then top-k, then
// top-p on the distribution renormalized over the top-k survivors, then min-p
// (p >= min_p * p_max). Every filter keeps a prefix of the tokens sorted by
// probability, so the kept set is the shortest of the three prefixes; it is found
// without sorting the whole vocabulary (candidates above a threshold are sorted, the
// threshold lowered until they provably contain the kept set). Ties sort by id.
// temperature 0 is greedy: the argmax, the lowest id among equal maxima.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "base/rng.h"

typedef struct sample_params {
    double temperature;  // 0 = greedy
    double top_p;        // 1 = off
    int top_k;           // 0 = off
    double min_p;        // 0 = off
} sample_params;

void sample_params_default(sample_params *p);  // temperature 1, top_p 1, top_k 0, min_p 0
// Each parameter within its range (the message names the flag and the range).
int sample_params_check(const sample_params *p, tm_error *err);

// Scratch for sample_token: 2 * V floats' worth (ints and floats).
typedef struct sample_scratch {
    int *idx;
    float *p;
    int V;
} sample_scratch;
int sample_scratch_init(sample_scratch *s, int V);
void sample_scratch_free(sample_scratch *s);

// Picks a token from z[0..V) with r (one uniform draw when not greedy). *logp gets
// log softmax(z / T)[token] at the sampling temperature T (T = 1 when greedy): the
// log-prob that model_forward_temp recomputes at T, i.e. TRL's and verl's trainer-side
// log-probs (logits / T over the whole vocabulary). top-k, top-p and min-p do not change
// it: it is NOT vLLM's processed_logprobs, which are taken after those filters
// (renormalized over the kept tokens), nor its default raw_logprobs (temperature 1).
int sample_token(const float *z, int V, const sample_params *sp, rng *r, sample_scratch *s, float *logp);
// log softmax(z / T)[tok] (double accumulation); T > 0.
float sample_logprob(const float *z, int V, int tok, double T);
