// model/kv_cache: the KV cache and the incremental forward used by the sampler.
//
// The cache is a set of slots, each with its own capacity (in tokens), allocated once
// from the batch and length limits: a sampler keeps one slot per prompt in flight
// (the prompt's keys and values, computed once and shared by its n samples) and one
// slot per sample (the tokens after the prompt). Nothing is allocated per token.
//
// model_decode runs the same kernels on the same weights as model_forward (embedding,
// RMSNorm, q/k/v/o, RoPE at explicit positions, SwiGLU or Gemma's GeGLU and post-norms),
// with attention against the cache (k_attention_cache_fwd); a sliding-window layer
// (Gemma 3) sees only the last `sliding_window` entries of the concatenated spans. So the log-probs it yields equal the trainer's
// recomputed ones up to float summation order (tests/unit/test_rollout.c: < 1e-5).
// Full logits are made only for the rows that ask for them (one per sequence being
// sampled), never for every row.
#pragma once
#include <stddef.h>
#include "base/error.h"
#include "kernels/kernels.h"
#include "model/model.h"

typedef struct kv_cache {
    int layers, kv_heads, head_dim, nslots;
    int *cap;             // [nslots] tokens each slot holds
    size_t *off;          // [nslots] offset of the slot inside one layer's block (floats)
    size_t layer_floats;  // floats of one layer's block (K and V each)
    float *k, *v;         // [layers][layer_floats]; slot s, head h, token t: off[s] + (h*cap[s] + t)*d
    // scratch of the incremental forward, for up to max_rows rows per call
    int max_rows, max_logit_rows;
    float *x, *xmid, *xn, *q, *qpre, *kk, *kpre, *vv, *att, *gate, *up, *h, *rstd, *rstd_h, *hsel;
    k_kv_span *spans;
    float *ang;           // [max_rows, head_dim/2] the rows' M-RoPE angles (Qwen2.5-VL)
    // model_decode's logits are of the final hidden state times this (0 or 1: plain): the
    // sampler at temperature T sets 1/T, which is what the trainer's forward at T feeds
    // its lm-head (model_forward_temp), so the two make the same logits.
    float logit_scale;
} kv_cache;

// Slots with capacities caps[0..nslots); calls of up to max_rows rows, of which up to
// max_logit_rows want logits.
int kv_cache_init(kv_cache *c, const model *m, int nslots, const int *caps, int max_rows,
                  int max_logit_rows, tm_error *err);
void kv_cache_free(kv_cache *c);
size_t kv_cache_bytes(const kv_cache *c);

// One call's rows. Row i feeds tokens[i] at RoPE position pos[i]; its key and value go
// to slot[i] at index cache_pos[i], and it attends to the first prefix_len[i] entries
// of prefix_slot[i] (-1: none) followed by entries 0..cache_pos[i] of its own slot
// (earlier rows of the same call included, so rows of one slot must come in order).
// logit_row[i] >= 0 asks for the row's logits in logits[logit_row[i] * vocab ...];
// those indices must be 0..k-1 (each once).
//
// Qwen2.5-VL (m->vis): a row whose ang[i] is set rotates by those M-RoPE angles
// [head_dim/2] (an image prompt's rows, from kv_prompt_vision), the others by pos[i] on all
// three axes (text: pos[i] then holds the sequence's position id plus its rope_delta); a
// row whose emb[i] is set takes that [hidden] vector instead of its token's embedding (an
// image-pad row: the vision tower's output). Both arrays may be NULL (none); text models
// refuse them.
typedef struct kv_batch {
    int n;
    const int *tokens, *pos, *slot, *cache_pos, *prefix_slot, *prefix_len, *logit_row;
    const float *const *ang, *const *emb;
} kv_batch;

int model_decode(model *m, kv_cache *c, const kv_batch *b, float *logits, tm_error *err);

// A prompt's images (Qwen2.5-VL), as the image processor makes them (model_batch's fields).
typedef struct kv_images {
    int n_images;
    const float *pixel_values;  // [n_patches, 3 * temporal_patch * patch^2]
    const int *grid_thw;        // [n_images, 3]
} kv_images;

// The vision prefill of one prompt: the tower on its images (vision_forward on the prompt
// alone, as the trainer's forward runs it on the prompt's sequence) gives the image-pad
// rows' embeddings and every prompt row's M-RoPE angles; rope_delta is what the text after
// the prompt adds to its position id (transformers' rope_deltas: each image moves the text
// that follows by max(h, w) - h*w merged tokens).
typedef struct kv_vision {
    int n, hidden, half;
    float *emb;        // [n_pad, hidden] the pads' embeddings, in order
    float *ang;        // [n, head_dim/2]
    int *row;          // [n] the pad's index in emb, -1 for other tokens
    int rope_delta;
} kv_vision;
int kv_prompt_vision(model *m, const int *tokens, int n, const kv_images *im, kv_vision *out, tm_error *err);
void kv_vision_free(kv_vision *v);

// model_decode uses one OpenMP thread per this many FLOP of the step (default 2.56e8:
// small decode steps run on one thread, where a barrier costs more than a second
// core gains). 0 means all threads. For tests of thread invariance; not thread-safe.
void model_decode_set_min_flop_per_thread(double flop);
