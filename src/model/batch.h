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
} batch_builder;

int batch_init(batch_builder *b, int cap_tokens, int cap_seqs, tm_error *err);
void batch_free(batch_builder *b);
void batch_clear(batch_builder *b);
// Adds one sequence of len tokens. trained[t] != 0 means token t is predicted (its
// log-prob is computed at position t-1); trained == NULL trains every token but the
// first. Returns the index of the sequence's first position, or -1 when it does not fit.
int batch_add(batch_builder *b, const int *ids, const uint8_t *trained, int len);
model_batch batch_view(const batch_builder *b);
