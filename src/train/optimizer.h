// train/optimizer: AdamW state for a model and the optimizer step the trainers share:
// clip the global gradient norm, update every parameter with its own weight decay
// (none for norms and biases), count the step.
#pragma once
#include "base/error.h"
#include "model/model.h"
#include "optim/optim.h"

typedef struct model_optimizer {
    adamw_hparams h;
    double max_grad_norm;  // <= 0: no clipping
    float *m, *v;          // [gnumel], or [hi - lo] when sharded
    int64_t step;          // completed optimizer steps
    size_t lo, hi;         // ZeRO-1: this rank's slice of the gradient index space (m, v hold it only)
    int sharded;
} model_optimizer;

int model_optimizer_init(model_optimizer *o, const model *mdl, adamw_hparams h, double max_grad_norm, tm_error *err);
void model_optimizer_free(model_optimizer *o);
// Clips, updates with learning rate lr (the schedule's value), zeroes the gradients.
// Returns the gradient norm before clipping.
double model_optimizer_step(model_optimizer *o, model *mdl, double lr);
// ZeRO-1: keeps the moments of gradient elements [lo, hi) only (after a resume filled them all).
int model_optimizer_shard(model_optimizer *o, size_t lo, size_t hi, tm_error *err);
// AdamW on gradient elements [lo, hi) (the gradients already summed and clipped); counts
// the step. Neither clips nor zeroes: the data-parallel step (train/step.c) does.
void model_optimizer_update_range(model_optimizer *o, model *mdl, double lr, size_t lo, size_t hi);
