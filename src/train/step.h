// train/step: the step-level trainer. Every trainer (sft, dpo, kto, reward-model, grpo)
// drives a model through the same open / micro-batch / step / close cycle over examples
// held in memory, whatever produced them (a file, the sampler):
//
//   trainer_open(&t, m, &opts)              gradients, AdamW state, packing buffers, schedule
//   per optimizer step:
//     per micro-batch:
//       trainer_clear(&t)
//       trainer_add(&t, ids, mask, len, ref, weight)     one sequence (token-aligned arrays)
//       trainer_forward(&t)                              policy log-probs, token-aligned
//       seq_batch b = trainer_view(&t, with_ref)        what objectives/ read
//       (objective writes dL/dlogp into t.dlogp_tok)
//       trainer_backward(&t)                             accumulates gradients
//     trainer_step(&t, step)                             clip, AdamW at the schedule's rate
//   trainer_save / trainer_resume                        checkpoints (model, moments, state)
//   trainer_close(&t)
//
// Token alignment: arrays indexed like the sequence's ids; entry t is about token t (its
// log-prob given tokens < t), entry 0 of a sequence is 0 (no prediction). Per-token extras
// a caller attaches (advantages, old or sampler log-probs) use the same indices, offset by
// trainer_span(&t, s) in the packed batch.
//
// Losses must be normalized by the caller over the whole optimizer step (objectives/ take
// step-wide normalizers), so accumulation over micro-batches equals one big batch.
// The model is borrowed, never copied: a sampler can read the same weights between steps.
#pragma once
#include <stdint.h>
#include <stdio.h>
#include "base/error.h"
#include "model/batch.h"
#include "model/model.h"
#include "objectives/seqs.h"
#include "optim/optim.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

typedef struct trainer_opts {
    adamw_hparams adam;         // lr is the peak rate
    double max_grad_norm;       // <= 0: no clipping
    lr_schedule schedule;
    int64_t warmup_steps, total_steps;
    int cap_tokens;             // the largest micro-batch in tokens
    int cap_seqs;               // ... and in sequences
    int reward_head;            // the model is a reward model (model_reward_forward)
    int zero_stage;             // data parallel (dist.h): 1 = ZeRO-1, AdamW state sharded over ranks
    int bf16;                   // --bf16: linear layers in bf16 x bf16, fp32 master weights (model_bf16_enable)
    int gradient_checkpointing; // recompute each layer in the backward (model_set_checkpointing)
    int profile;                // time the kernels by class and the optimizer (trainer_profile_report)
} trainer_opts;

typedef struct trainer {
    model *m;
    trainer_opts o;
    model_optimizer opt;
    batch_builder bb;
    float *logp_pos, *dlogp_pos;   // position-aligned (what the model reads and writes)
    float *logp_tok, *dlogp_tok;   // token-aligned (what the objectives read and write)
    float *ref_tok, *weight_tok;
    int has_weights;               // pass the weights to objectives (else w = 1)
    uint8_t *mask_tok;
    int *span;                     // [2 * cap_seqs]: sequence s is tokens [span[2s], span[2s+1])
    int cap_tokens, cap_seqs;
    int64_t drop_step;             // LoRA dropout keys: the optimizer step and the forward within it
    int drop_forward;
    double temperature;            // log-probs of softmax(logits / T) (1 from trainer_open; trainer_set_temperature)
    double prof_start, prof_opt_s; // --profile: when trainer_open ran, seconds in the optimizer
} trainer;

// Enables gradients on m, allocates the optimizer and buffers, reserves activations
// (with o->gradient_checkpointing: the checkpointed layout).
// train = 0 gives a forward-only trainer (reference log-probs): no gradients, no optimizer.
int trainer_open(trainer *t, model *m, const trainer_opts *o, int train, tm_error *err);
void trainer_close(trainer *t);
// Log-probs (forward and backward) of softmax(logits / T), T > 0: GRPO's sampling temperature.
void trainer_set_temperature(trainer *t, double T);
// Turns a forward-only trainer into a training one (after reference log-probs were
// computed with the same buffers; the model may have been reloaded in place).
int trainer_enable_train(trainer *t, tm_error *err);

void trainer_clear(trainer *t);
// Adds a sequence; mask[i] = token i is trained (i = 0 never is); ref / w may be NULL
// (0 / 1). Errors when the sequence does not fit the sizes given to trainer_open.
int trainer_add(trainer *t, const int32_t *ids, const uint8_t *mask, int len, const float *ref, const float *w,
                tm_error *err);
// Qwen2.5-VL: images whose image-pad tokens the next sequence added holds (in order); a
// sequence with images needs them added before it, once per sequence (DPO: chosen and
// rejected each). The buffers grow as needed.
int trainer_add_images(trainer *t, int n, const float *pixel_values, int n_patches, int dim, const int *grid_thw,
                       tm_error *err);
// Policy log-probs of every added token into logp_tok (token-aligned), at the
// trainer's temperature (trainer_backward differentiates the same). entropy_tok
// (token-aligned, may be NULL) gets the next-token entropy of the position that predicts it.
int trainer_forward(trainer *t, float *entropy_tok, tm_error *err);
// Arms LoRA adapter dropout (model/lora.h) for the next forward, the one whose backward
// follows; its key is (optimizer step, training forward within the step), so a resumed run
// draws the same masks. A no-op without LoRA or with dropout 0.
void trainer_dropout_next(trainer *t);
// The packed batch as objectives read it (with_ref: ref_tok as the reference).
seq_batch trainer_view(const trainer *t, int with_ref);
// Back-propagates dlogp_tok (token-aligned) into the model's gradients.
void trainer_backward(trainer *t);
// The same with dL/d(final hidden) of another head on this forward added (position-aligned
// [n_tokens, hidden]; NULL: none): PPO's value head on the policy's trunk.
void trainer_backward_extra(trainer *t, const float *dxf_extra);

// The learning rate the schedule gives optimizer step `step` (0-based).
double trainer_lr(const trainer *t, int64_t step);
// Clips, updates with trainer_lr(step), zeroes gradients. Returns the norm before clipping.
// One process only: data-parallel trainers call trainer_step_all.
double trainer_step(trainer *t, int64_t step);
// The data-parallel step (every rank calls it; one process: trainer_step). Gradients are
// summed over ranks in rank order (dist.h), so each rank must have normalized its loss
// by the global step's counts; the norm is the global one (each rank's slice's sum of
// squares, summed in rank order), clipping and AdamW as trainer_step. ZeRO-1
// (o.zero_stage 1): the sum is reduce-scattered, each rank updates its slice with its
// shard of the AdamW state, and the weights are all-gathered; the same bits as stage 0.
int trainer_step_all(trainer *t, int64_t step, double *grad_norm, tm_error *err);

// --profile (o->profile): the share of the wall time since trainer_open spent in each kernel
// class (kernels/prof.h: GEMM, attention, norms, lm-head, vision, other kernels: every model that
// runs through the profiled table, the reference and the sampler's decoding included), in
// the optimizer, and in everything else (data, objectives, the sampling loop, saving), as
// a few lines on f. Nothing when profiling is off.
void trainer_profile_report(const trainer *t, FILE *f);

// checkpoint-<st->global_step> under output_dir (keep: checkpoint_save's limit). Every
// rank calls it (ZeRO-1 gathers the AdamW shards); rank 0 alone writes.
int trainer_save(const trainer *t, const char *output_dir, const checkpoint_state *st, int keep, tm_error *err);
// Restores moments, master weights and state from a checkpoint directory.
int trainer_resume(trainer *t, const char *dir, checkpoint_state *st, tm_error *err);
