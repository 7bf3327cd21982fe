// train/grpo_trainer: online GRPO (`temper grpo`; under mpirun each rank samples, scores and
// trains its part of every step, docs/distributed.md). Per generation batch:
//   1. prompts from --data (the `prompts` format of data/: {"prompt"|"question"|"problem",
//      "answer"}) in a per-epoch permutation from --seed;
//   2. --num-generations completions each with rollout_run, from the CURRENT weights (the
//      sampler reads the trainer's model in place: no copy, no synchronisation);
//   3. rewards: the verifier's correctness (reward/math_answer, strict: unevaluated
//      arithmetic is wrong) and a format reward (an extractable final answer), weighted
//      by --reward-weights accuracy,format (default 1,0);
//   4. group advantages (objectives/grpo.h grpo_advantages, --scale-rewards, std eps 1e-4);
//      --dynamic-sampling drops groups whose rewards are all equal and samples more prompts
//      until the batch is full, at most --max-num-gen-batches rounds (then the batch is
//      filled with dropped groups, whose advantage is 0);
//   5. --num-iterations optimizer steps over that batch (TRL: each iteration is a step),
//      each over gradient-accumulation micro-batches of --per-device-train-batch-size
//      completions, with grpo_loss normalized over the whole step.
// The generation batch is per_device_train_batch_size × steps_per_generation completions
// (TRL; steps_per_generation defaults to gradient_accumulation_steps and must be a multiple
// of it), so it holds that / num_generations prompts, which must be whole. An optimizer step
// takes per_device_train_batch_size × gradient_accumulation_steps of them in order, so a
// generation batch gives steps_per_generation / gradient_accumulation_steps × num_iterations
// optimizer steps; advantages are computed over the whole generation batch.
//
// Temperature: every log-prob of the run is of softmax(logits / T) at the sampling
// temperature T = --temperature (> 0; default 1, TRL's): the sampler's (rollout records them
// for every model token), the trainer's (model_forward_temp; the gradient is that of
// log softmax(z / T)), the reference's (β > 0) and the rehearsal's stored log π0 (temper
// rehearsal --temperature, which must equal grpo's). As in TRL (_get_per_token_logps_and_
// entropies divides the logits by the temperature; top-k / top-p are not applied there),
// --top-p, --top-k and --min-p shape what is sampled but not the ratio: it uses the full
// temperature-scaled distribution. (vLLM's processed_logprobs, which TRL asks for its
// importance-sampling correction, are after those filters; ours are before, the ones the
// trainer recomputes.)
//
// Old log-probs are the sampler's. The trainer's first forward of each generation batch
// (its first optimizer step, before any update from it) recomputes them: the difference is
// logged as the sampler/trainer mismatch (sampling/sampling_logp_difference/mean|max and
// training/rollout_probs_diff_*), and the first iteration's ratio |ρ - 1| as
// sampling/ratio_minus_one/mean|max. They agree to ~1e-6 (tests/cli/test_grpo.sh measures
// it at T = 1 and T = 0.7), not bit for bit: the sampler's KV-cached decode and the
// trainer's packed forward sum in different orders.
// Under --deterministic they agree bit for bit, with --bf16 too (the sampler decodes with the
// trainer's bf16 GEMMs): tests/cli/test_deterministic.sh, tests/cli/test_bf16_rl.sh.
//
// Masks: prompt tokens and tool observations (--tools calculator|python) are never
// trained; --mask-truncated-completions also drops completions cut at
// --max-completion-length (their tokens still count in nothing).
// β > 0 holds a frozen copy of the initial --model as the reference (never otherwise).
//
// Metrics (TRL's names): every --logging-steps steps a metrics.jsonl line holding, as TRL's
// GRPOTrainer.log, the mean of each metric over the steps since the last line (loss too);
// grad_norm is the last step's, learning_rate the current one, num_tokens cumulative.
//
// Resume: a checkpoint is written only between generation batches (--save-steps must be
// a multiple of --num-iterations); trainer_state.json records the prompts drawn so far;
// the sampler's RNG is seeded from (--seed, step, round), so its state is a function of
// the checkpoint's step and a resumed run is bit-identical to an uninterrupted one.
//
// DPH-RL rehearsal (papers.md §6): grpo_rehearsal_run samples k completions per prompt from π0
// (--model), and splits the prompts by how many are correct: those with at least
// solved_threshold correct ("D_pef", solved) give their correct samples to the rehearsal file
// (token ids, mask, and the sampler's log π0 per token, at the sampling temperature); the others
// ("D_exp") go to exp_output as a prompts file for GRPO. (DPH-RL samples the solved prompts once
// more; the correct samples among the k are samples of π0 as well.) grpo --rehearsal R.jsonl adds,
// to every optimizer step, rehearsal_loss (objectives/divergence.h: forward_kl, js or alpha, × coef)
// over a chunk of rehearsal_batch_size stored samples, chosen by a per-pass permutation from the
// seed and the step (so resume needs no extra state). No reference model is held for it.
#pragma once
#include "model/lora.h"
#include <stdint.h>
#include "base/error.h"
#include "objectives/divergence.h"
#include "objectives/grpo.h"

// Reward functions, weighted by --reward-weights accuracy,format[,overlong]:
//   accuracy  1 if the verifier says the extracted answer equals the gold, else 0
//   format    1 if a final answer can be extracted, else 0
//   overlong  DAPO's soft overlong punishment on the completion length |y| (tokens after the
//             prompt), with L_max = max_completion_length, L_c = overlong_buffer_len:
//             0 if |y| <= L_max - L_c, (L_max - L_c - |y|) / L_c up to L_max, -1 beyond
enum { GRPO_REWARD_ACCURACY, GRPO_REWARD_FORMAT, GRPO_REWARD_OVERLONG, GRPO_N_REWARD };

typedef struct grpo_args {
    const char *model, *data, *output_dir, *resume_from_checkpoint;
    const char *chat_template;       // NULL: recognized from the tokenizer (none: plain text prompts)
    const char *chat_template_kwargs;// a JSON object of extra template variables (NULL: none)
    const char *prompt_style;        // task/prompt.h's styles, as sample/eval (NULL: plain)
    const char *prompt_suffix;       // appended to string prompts (NULL: none)
    const char *lr_scheduler_type;   // linear
    const char *tools;               // none | calculator | python
    double learning_rate, warmup_ratio, weight_decay, max_grad_norm;
    double adam_beta1, adam_beta2, adam_epsilon, num_train_epochs;
    int warmup_steps, max_steps;
    int per_device_train_batch_size, gradient_accumulation_steps;
    int zero;                        // --zero 1: under mpirun, AdamW state sharded over ranks (ZeRO-1)
    int num_generations, max_prompt_length, max_completion_length, num_iterations;
    int steps_per_generation;        // micro-batches per generation batch (0: gradient_accumulation_steps)
    double temperature, top_p, min_p;
    int top_k;
    grpo_hparams h;
    int scale_rewards;               // grpo_scale
    double reward_weights[GRPO_N_REWARD];
    int overlong_buffer_len;         // L_c of the overlong reward (0: a quarter of max_completion_length)
    int mask_truncated_completions, dynamic_sampling, max_num_gen_batches;
    int max_turns;
    double tool_timeout;
    int seed, logging_steps, save_steps, save_total_limit;
    int quiet, overwrite_output_dir;
    int gradient_checkpointing;      // recompute each layer's activations in the backward
    int profile;                     // --profile: the share of time per kernel class at the end (stderr)
    int bf16;                        // --bf16: bf16 GEMMs in the trainer, the reference and the sampler; fp32 master weights
    const char *rehearsal;           // R.jsonl from temper rehearsal; NULL: none
    rehearsal_hparams rh;            // divergence forward_kl | js | alpha, estimator, alpha, coef
    int rehearsal_batch_size;        // stored samples per step (0: the generation batch's size)
    lora_args lora;                  // --use-peft, --lora-*: adapters trained, base frozen; the β reference is the
                                     // policy with the adapters off (no second model)
    // Qwen2.5-VL prompts with images: --perturb concat|mixup|rotate redraws them for every
    // optimizer step's generation batch (step s = `temper perturb OP --data F --seed S+s`, the set
    // being the prompt file's images); the rollouts and their training see the same image
    const char *perturb;             // NULL: none
    int perturb_seed;                // -1: --seed
    int freeze_vision_tower;         // the tower gets no gradient (default: trained, as the paper's GRPO)
} grpo_args;

// TRL's current GRPOConfig defaults (learning rate 1e-6, 8 generations, batch 8, 256 new
// tokens, loss dapo, β 0, ε 0.2, scale group, 1 iteration, logging every 10 steps).
void grpo_args_default(grpo_args *a);
int grpo_args_check(const grpo_args *a, tm_error *err);
int grpo_run(const grpo_args *a, tm_error *err);

// The training mask and sampler log-probs of a trajectory's tokens (tokens after the
// prompt): mask 1 where the model sampled the token, 0 on tool observations (calculator
// results, python outputs and their wrapper), and 0 everywhere for a completion cut at the
// length limit when mask_truncated; samp is the sampler's log-prob there, 0 on tool tokens.
struct rollout_traj;
void grpo_traj_mask(const struct rollout_traj *tr, int mask_truncated, uint8_t *mask, float *samp);

typedef struct grpo_rehearsal_args {
    const char *model, *data, *output, *exp_output, *chat_template, *prompt_style, *prompt_suffix;
    const char *chat_template_kwargs;
    const char *tools;   // none | calculator | python: π0 samples as grpo --tools samples the policy (outputs masked)
    int k, solved_threshold, max_completion_length, max_prompt_length, seed;
    double temperature;  // sampling T of π0; the stored log π0 are of softmax(logits / T) (default 1)
} grpo_rehearsal_args;
void grpo_rehearsal_args_default(grpo_rehearsal_args *a);
int grpo_rehearsal_run(const grpo_rehearsal_args *a, tm_error *err);
