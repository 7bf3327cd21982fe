// train/trainer: the offline training loop shared by `temper sft`, `temper dpo` and
// `temper kto`, and `temper reward-model` (Bradley-Terry on a score head). It composes the layers: data (token ids + masks) -> packed batches ->
// model forward -> objective (a pure function of token log-probs) -> model backward ->
// optimizer step; plus reference log-probs, evaluation, metrics JSONL, checkpoints and
// resume.
//
// Semantics a TRL user can rely on:
// - Flags and defaults are TRL's (SFTConfig / DPOConfig / KTOConfig over
//   TrainingArguments); see train_args_default().
// - Losses are normalized over the whole optimizer step (tokens, pairs or sequences of
//   all gradient_accumulation_steps micro-batches), so accumulation over k
//   micro-batches gives exactly the gradient of one batch k times larger.
// - Reference log-probs are always computed once, before training, from --ref-model
//   (default: the initial --model), and cached per example: numerically what TRL's
//   --precompute-ref-log-probs does, and no second model is held during training.
// - The data order is a permutation per epoch from --seed; a checkpoint records the
//   step, so --resume-from-checkpoint continues bit-identically.
// - Every logging step appends one line to <output-dir>/metrics.jsonl (the entries of
//   transformers' log_history: step, epoch, loss, grad_norm, learning_rate and the
//   method's metrics with TRL's names); `temper plot` draws it.
// - --output-dir must be empty (or new) unless the run resumes from one of its
//   checkpoints or --overwrite-output-dir is given (which deletes its checkpoints), so
//   two runs never mix; it must not be the --model or --ref-model directory. It, the
//   data and --resume-from-checkpoint are checked before any expensive work.
// - Long examples: the prompt is cut to --max-prompt-length first (keeping its end,
//   or its start with --truncation-mode keep_start), then every sequence to
//   --max-length; examples left with no trained token are dropped. Both counts are
//   printed and logged in the first metrics.jsonl entry.
// - The last entry of metrics.jsonl is transformers' end-of-training one: train_runtime,
//   train_samples_per_second, train_steps_per_second (over the steps this process ran)
//   and train_loss (the mean step loss of the whole run). --report-to tensorboard also
//   writes every entry as TensorBoard scalars (train/<key>, eval/<key>), as transformers'
//   TensorBoardCallback does.
// - Checkpoints are <output-dir>/checkpoint-<step>/: a Hugging Face model directory
//   plus optimizer.safetensors and trainer_state.json, written under a temporary name
//   and renamed, so a crash never leaves a half-written checkpoint. The last step always
//   gets one (with --save-steps > 0), so a finished run can be extended with
//   --max-steps N --resume-from-checkpoint. Model directories get generation_config.json
//   and pad_token_id in config.json (model_save).
#pragma once
#include "base/error.h"
#include "objectives/dpo.h"
#include "objectives/kto.h"
#include "model/lora.h"

typedef enum { TRAIN_SFT, TRAIN_DPO, TRAIN_KTO, TRAIN_RM } train_method;

typedef struct train_args {
    train_method method;
    const char *model, *data, *eval_data, *output_dir, *ref_model, *resume_from_checkpoint;
    const char *data_weights;        // one weight per --data file (comma-separated), NULL: all of each
    const char *dataset_format;      // NULL: the method's (sft, dpo, kto); also trajectory, step
    const char *chat_template;       // NULL: recognized from the tokenizer
    int no_chat_template;            // string rows as plain text even if the tokenizer has a template
    const char *chat_template_kwargs;// a JSON object of extra template variables (NULL: none)
    const char *token_weights;       // dpo: cDPO per-token weights from `temper critical-tokens`
    const char *lr_scheduler_type;   // linear
    double learning_rate, warmup_ratio, weight_decay, max_grad_norm;
    double adam_beta1, adam_beta2, adam_epsilon, num_train_epochs;
    int warmup_steps, max_steps;
    int per_device_train_batch_size, gradient_accumulation_steps;
    int max_length, max_prompt_length;
    int seed, logging_steps, eval_steps, save_steps, save_total_limit;
    int on_bad_line;                 // DATA_BAD_ERROR / DATA_BAD_SKIP
    int sft_per_sequence;            // SFT: average per sequence instead of per token
    double center_rewards_coefficient; // reward model: TRL's auxiliary (r_w + r_l)^2 term, 0 = off
    dpo_hparams dpo;
    kto_hparams kto;
    int quiet;                       // no progress bar
    int bf16;                        // --bf16: mixed precision (bf16 GEMMs, fp32 master weights and AdamW state)
    int overwrite_output_dir;        // a non-empty --output-dir is refused without it (or a resume from it)
    int keep_start;                  // --truncation-mode keep_start: long prompts keep their start (default: end)
    int zero;                        // --zero 1: under mpirun, AdamW state sharded over ranks (ZeRO-1)
    int packing;                     // sft: pack whole examples into rows of max_length tokens (train/packing.h)
    const char *perturb;             // sft/dpo on image rows: concat|mixup|rotate per example per epoch (train/vl_perturb.h), NULL: none
    int perturb_seed;                // its seed (-1: --seed)
    int freeze_vision_tower;         // Qwen2.5-VL: the vision tower's parameters get no gradient (model/vision.h)
    int gradient_checkpointing;      // recompute each layer's activations in the backward (less memory, ~1 more forward)
    int profile;                     // --profile: the share of time per kernel class at the end (stderr)
    lora_args lora;                  // --use-peft and the --lora-* flags: adapters trained, base frozen; the
                                     // reference (dpo, kto) is the base with the adapters off
    const char *report_to;           // --report-to: none|jsonl|tensorboard|all, comma-separated (NULL: jsonl);
                                     // metrics.jsonl is always written, tensorboard adds event files
                                     // under <output-dir>/runs/<date>_<host>/ (TRL's default logging_dir)
} train_args;

void train_args_default(train_args *a, train_method m);
// Every numeric setting within its range; the message names the flag and the range.
int train_args_check(const train_args *a, tm_error *err);
int train_run(const train_args *a, tm_error *err);
// --output-dir before anything is loaded (every trainer): not the model or reference
// directory, creatable and writable, and empty unless resuming from one of its own
// checkpoints or overwrite is set (then its checkpoints are deleted).
int train_prepare_output_dir(const char *out, const char *model_dir, const char *ref_dir, const char *resume,
                             int overwrite, tm_error *err);
