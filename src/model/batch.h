// model/batch: packs sequences into the model's input (model_batch): tokens back to
// back, position ids restarting per sequence, boundaries in cu_seqlens, and the target
// of each position (the next token where that token is trained, else -1).
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "model/model.h"

typedef struct batch_builder {
    int cap_tokens, cap_seqs;
    int n_tokens, n_seqs;
    int *tokens, *targets, *pos, *cu_seqlens;
    // Qwen2.5-VL images, in the order their image-pad tokens were added (batch_add_images)
    int n_images, n_patches, patch_dim, cap_images;
    size_t cap_pix;
    float *pixel_values;
    int *grid_thw;
} batch_builder;

int batch_init(batch_builder *b, int cap_tokens, int cap_seqs, tm_error *err);
void batch_free(batch_builder *b);
void batch_clear(batch_builder *b);
// Adds one sequence of len tokens. trained[t] != 0 means token t is predicted (its
// log-prob is computed at position t-1); trained == NULL trains every token but the
// first. Returns the index of the sequence's first position, or -1 when it does not fit.
int batch_add(batch_builder *b, const int *ids, const uint8_t *trained, int len);
// Adds images (pixel_values [n_patches, dim], grid_thw [n, 3]) whose image-pad tokens the
// next sequence(s) added hold, in order; the buffers grow as needed. -1: out of memory or a
// patch width unlike the batch's.
int batch_add_images(batch_builder *b, int n, const float *pixel_values, int n_patches, int dim, const int *grid_thw,
                     tm_error *err);
model_batch batch_view(const batch_builder *b);
