// train/ppo_trainer: online PPO with a critic (`temper ppo`, also under mpirun: below; TRL's experimental
// PPOTrainer, Tulu 2.5's llama_train_ppo.py; trainers.md §2.5, papers.md §2.4). One update (a
// "step", as TRL counts them: global_step, the learning-rate schedule and the logs advance per update):
//   1. batch = per_device_train_batch_size × gradient_accumulation_steps × num_mini_batches prompts
//      from --data (a per-epoch permutation from --seed), one completion each, sampled by rollout_run
//      from the CURRENT weights (no copy); tools (--tools calculator|python) append observations
//      whose tokens are masked (m = 0) from every loss and skipped by GAE;
//   2. score_i = w_v·verifier_i + w_rm·RM_i (--reward-weights w_v,w_rm; the verifier's 1/0 on the
//      extracted answer; RM = the score head of a *ForSequenceClassification --reward-model on prompt +
//      completion), minus --missing-eos-penalty when the completion did not end with a stop token
//      (TRL: a positive amount subtracted; Tulu 2.5 instead sets the score to -10);
//   3. a forward pass without gradients gives logπold and V_old (the critic) of every token, and,
//      when --kl-coef > 0, logπref under a frozen copy of the initial --model;
//   4. objectives/ppo: per-token rewards (-kl_coef·kl_t as a reward term, TRL; or --use-kl-loss: a
//      loss term, verl), GAE (--gamma, --lam), returns = A + V_old, A whitened over the batch;
//   5. --num-ppo-epochs passes over the batch, each in a fresh permutation (from the seed, the step
//      and the pass), cut into num_mini_batches mini-batches, each an optimizer step over
//      gradient-accumulation micro-batches with ppo_loss normalized by the mini-batch's active tokens.
//
// The critic (V_t: the value before token t is sampled, read off the hidden state that predicts it):
//   --value-head shared (default)  V = w·h + b on the policy's final hidden state h; one backward
//                                  through the trunk carries both losses (Tulu: "a single joint
//                                  backward"). w, b start at 0; AdamW at the policy's rate, their
//                                  gradient norm clipped apart from the policy's.
//   --value-model DIR              a separate model with a score head (model_load_reward: a reward-model
//                                  directory as it is, or a causal LM with a new head), V = score·h of
//                                  its own trunk (TRL's and Tulu's value model, initialized from the RM);
//                                  its own AdamW at the policy's rate.
// Sampling at --temperature T (top-p 1, top-k 0): the policy's, old and reference log-probs are
// all of softmax(logits / T), the distribution sampled (TRL's); the shared value head reads the
// hidden state before the division by T, so the critic does not depend on T.
//
// Outputs: the policy in --output-dir; the critic beside it (value_head.safetensors, or value_model/,
// a *ForSequenceClassification directory). Checkpoints: the critic's state (weights and AdamW moments)
// is written first, under value_head/checkpoint-N.safetensors or value_model/checkpoint-N/, then the
// policy's checkpoint-N (which commits it); resume reads the critic from beside the checkpoint it
// resumes, and the prompt cursor from trainer_state.json. The sampler's and the permutations' RNGs
// are functions of (seed, step), so a resumed run is bit-identical to an uninterrupted one.
//
// Data parallel (`mpirun -np W temper ppo`, src/dist): the batch is W times one rank's; rank r
// samples, scores and trains sequences [r·n, (r+1)·n) of it (n = one rank's batch), seeded by their
// indices in the whole batch, so the samples are one process's. GAE is per sequence (local); the
// whitening's mean and variance, each mini-batch's token count, the shared head's gradients (the
// value model's: trainer_step_all) and the metrics are the whole batch's, summed over ranks. Each
// rank permutes its own n sequences per PPO epoch (TRL: local_batch_size), so mini-batch k is the
// union of every rank's k-th slice: with --num-mini-batches 1 a step equals one process's with the
// same global batch (to rounding); with more, the mini-batches are cut differently.
//
// Metrics (one line per logged update, TRL's names): objective/kl (Σ_t kl_t per completion, batch
// mean), objective/entropy (Σ_t -logπold), objective/non_score_reward, objective/rlhf_reward,
// objective/scores, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg, loss/value_avg,
// val/clipfrac_avg, policy/entropy_avg, val/ratio, val/ratio_var (the *_avg and val/ratio are means
// of the micro-batches' token means, ratio_var their variance, as TRL), val/num_eos_tokens, lr,
// episode; also val/vpred, val/error, accuracy (the verifier's mean), rewards/verifier/mean,
// rewards/reward_model/mean, completions/mean_length, tools/*, time/*.
#pragma once
#include "base/error.h"
#include "model/lora.h"
#include "objectives/ppo.h"

typedef struct ppo_args {
    const char *model, *data, *output_dir, *resume_from_checkpoint;
    const char *chat_template, *prompt_style, *prompt_suffix, *lr_scheduler_type, *tools;
    const char *value_head;          // "shared" (used unless value_model is set)
    const char *value_model;         // critic directory; NULL: the shared head
    const char *reward_model;        // *ForSequenceClassification directory; NULL: the verifier only
    double learning_rate, warmup_ratio, weight_decay, max_grad_norm;
    double adam_beta1, adam_beta2, adam_epsilon, num_train_epochs;
    int warmup_steps, max_steps;
    int per_device_train_batch_size, gradient_accumulation_steps, num_mini_batches, num_ppo_epochs;
    int max_prompt_length, response_length;
    double temperature;
    ppo_hparams h;
    double verifier_weight, reward_model_weight;
    double missing_eos_penalty;      // subtracted from the score of a completion without a stop token
    int max_turns;
    double tool_timeout;
    int seed, logging_steps, save_steps, save_total_limit;
    int quiet, overwrite_output_dir;
    int gradient_checkpointing;      // recompute each layer's activations in the backward (policy and critic)
    int profile;                     // --profile: the share of time per kernel class at the end (stderr)
    int bf16;                        // --bf16: bf16 GEMMs in the policy, sampler, critic, reference and RM; fp32 master weights
    int zero;                        // --zero 1: under mpirun, AdamW state sharded over ranks (ZeRO-1)
    lora_args lora;                  // --use-peft, --lora-*: adapters trained, base frozen; the KL reference is
                                     // the policy with the adapters off (no second model)
} ppo_args;

// TRL's PPOConfig defaults where they apply (lr 3e-6, 4 PPO epochs, 1 mini-batch, kl_coef 0.05 k1,
// cliprange 0.2, cliprange_value 0.2, vf_coef 0.1, γ 1, λ 0.95, response_length 53); temperature 1 (TRL: 0.7).
void ppo_args_default(ppo_args *a);
int ppo_args_check(const ppo_args *a, tm_error *err);
int ppo_run(const ppo_args *a, tm_error *err);
