// train/checkpoint: what a training run needs to stop and continue exactly.
// <output-dir>/checkpoint-<step>/ holds the Hugging Face model files, the AdamW
// moments (optimizer.safetensors: exp_avg.<param>, exp_avg_sq.<param>, torch's names)
// and trainer_state.json (global_step, epoch, num_tokens, log_history as transformers
// writes it). It is written as checkpoint-<step>.tmp and renamed when complete, so a
// crash leaves either the whole checkpoint or none. A model stored in bf16 or fp16 also
// gets master_weights.safetensors: the exact fp32 weights the run trains (the model
// file keeps the original dtype), so resume is bit-identical for it too. Pruning
// renames a checkpoint out of the checkpoint-* namespace before deleting it.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "model/model.h"
#include "train/optimizer.h"

typedef struct checkpoint_state {
    int64_t global_step;
    double epoch, num_tokens;
    int64_t prompts_seen;  // online trainers: prompts drawn from the data stream (written when > 0)
    double total_loss;     // offline trainers: the sum of the step losses so far, for train_loss (written when != 0)
    char **log;          // log_history entries, one JSON object per string
    int n_log, cap_log;
} checkpoint_state;

int checkpoint_log(checkpoint_state *st, const char *json_line);
void checkpoint_state_free(checkpoint_state *st);
int checkpoint_write_trainer_state(const char *dir, const checkpoint_state *st, tm_error *err);
// Writes output_dir/checkpoint-<global_step> and keeps at most keep checkpoints (0: all).
int checkpoint_save(const char *output_dir, const model *m, const model_optimizer *o, const checkpoint_state *st, int keep,
                    tm_error *err);
// Deletes every checkpoint-* of output_dir (--overwrite-output-dir).
int checkpoint_remove_all(const char *output_dir, tm_error *err);
// Checks that dir looks like a complete checkpoint (before any expensive work).
int checkpoint_check(const char *dir, tm_error *err);
// The newest complete checkpoint directory under output_dir into out; -1 if none.
int checkpoint_latest(const char *output_dir, char *out, size_t cap);
// --resume-from-checkpoint as transformers reads it: "true", "True" or "last" become the
// newest checkpoint of output_dir (into buf); any other value is a directory, returned
// as is; NULL stays NULL. Sets *path; -1 with a message when no checkpoint exists.
int checkpoint_resolve(const char *arg, const char *output_dir, char *buf, size_t cap, const char **path,
                       tm_error *err);
#define CHECKPOINT_MASTER_FILE "master_weights.safetensors"
// Restores the optimizer moments and step, the fp32 master weights (over those
// model_load read from the rounded model file), and the trainer state.
int checkpoint_load_state(const char *dir, model *m, model_optimizer *o, checkpoint_state *st, tm_error *err);
