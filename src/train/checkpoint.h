// train/checkpoint: what a training run needs to stop and continue exactly.
// <output-dir>/checkpoint-<step>/ holds the Hugging Face model files, the AdamW
// moments (optimizer.safetensors: exp_avg.<param>, exp_avg_sq.<param>, torch's names)
// and trainer_state.json (global_step, epoch, num_tokens, log_history as transformers
// writes it). It is written as checkpoint-<step>.tmp and renamed when complete, so a
// crash leaves either the whole checkpoint or none.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "model/model.h"
#include "train/optimizer.h"

typedef struct checkpoint_state {
    int64_t global_step;
    double epoch, num_tokens;
    char **log;          // log_history entries, one JSON object per string
    int n_log, cap_log;
} checkpoint_state;

int checkpoint_log(checkpoint_state *st, const char *json_line);
void checkpoint_state_free(checkpoint_state *st);
int checkpoint_write_trainer_state(const char *dir, const checkpoint_state *st, tm_error *err);
// Writes output_dir/checkpoint-<global_step> and keeps at most keep checkpoints (0: all).
int checkpoint_save(const char *output_dir, const model *m, const model_optimizer *o, const checkpoint_state *st, int keep,
                    tm_error *err);
// The newest complete checkpoint directory under output_dir into out; -1 if none.
int checkpoint_latest(const char *output_dir, char *out, size_t cap);
// Restores the optimizer moments and step, and the trainer state, from a checkpoint
// directory (the weights are loaded with model_load).
int checkpoint_load_state(const char *dir, const model *m, model_optimizer *o, checkpoint_state *st, tm_error *err);
