// optim: AdamW, global gradient-norm clipping and learning-rate schedules, on plain
// arrays. The trainer calls adamw_update once per parameter tensor with that tensor's
// weight decay (0 for norms and biases), so the optimizer knows nothing of models.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct adamw_hparams {
    double lr, beta1, beta2, eps, weight_decay;
} adamw_hparams;

// One AdamW step on n elements, exactly torch.optim.AdamW (decoupled decay
// w -= lr*wd*w first, then bias-corrected Adam with eps added to sqrt(v_hat)).
// step is 1-based (the count including this step).
void adamw_update(float *w, const float *g, float *m, float *v, size_t n, const adamw_hparams *h, double weight_decay,
                  int64_t step);

// L2 norm of g[0..n) accumulated in double.
double grad_norm(const float *g, size_t n);
// Scales g so that its norm is at most max_norm (torch.nn.utils.clip_grad_norm_:
// coefficient max_norm / (norm + 1e-6), only when below 1). Returns the norm before.
double clip_grad_norm(float *g, size_t n, double max_norm);

typedef enum { SCHED_CONSTANT, SCHED_CONSTANT_WITH_WARMUP, SCHED_LINEAR, SCHED_COSINE } lr_schedule;
// Parses Hugging Face's --lr-scheduler-type names. Returns -1 if unknown.
int lr_schedule_parse(const char *name, lr_schedule *s);
// The learning rate multiplier at optimizer step `step` (0-based, as transformers'
// LambdaLR sees it: the first update uses step 0, so warmup starts at lr 0).
double lr_multiplier(lr_schedule s, int64_t step, int64_t warmup_steps, int64_t total_steps);
