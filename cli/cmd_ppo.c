// temper ppo: online PPO with a critic (train/ppo_trainer.h). Flags carry TRL's PPOConfig names and
// defaults where TRL has them (dashes or underscores); --use-kl-loss is verl's.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "cli/lora_flags.h"
#include "train/ppo_trainer.h"

int cmd_ppo(int argc, char **argv) {
    ppo_args a;
    ppo_args_default(&a);
    const char *estimator = "k1", *weights = "1,1";
    flag flags[] = {
        {"model", FLAG_STR, &a.model, "policy model directory (Hugging Face layout, with its tokenizer)"},
        {"data", FLAG_STR, &a.data, "prompts JSONL: {\"prompt\"|\"question\"|\"problem\", \"answer\"}"},
        {"output-dir", FLAG_STR, &a.output_dir, "where the model, the critic, checkpoints and metrics.jsonl go"},
        {"value-head", FLAG_STR, &a.value_head, "shared: a value head on the policy's last hidden state (unless --value-model)"},
        {"value-model", FLAG_STR, &a.value_model, "a separate critic: a reward-model directory, or a causal LM given a new score head"},
        {"reward-model", FLAG_STR, &a.reward_model, "a *ForSequenceClassification directory (temper reward-model) scoring prompt + completion"},
        {"reward-weights", FLAG_STR, &weights, "weights of the verifier and the reward model: w_v,w_rm"},
        {"missing-eos-penalty", FLAG_FLOAT, &a.missing_eos_penalty, "subtracted from the score of a completion without EOS (TRL; >= 0)"},
        {"chat-template", FLAG_STR, &a.chat_template, "chatml|qwen3|llama3|... (default: recognized from the tokenizer; none found: plain text)"},
        {"prompt-style", FLAG_STR, &a.prompt_style, "boxed|plain|tora|gsm8k-fewshot|minerva: the prompt as sample/eval build it (default plain)"},
        {"prompt-suffix", FLAG_STR, &a.prompt_suffix, "text appended to string prompts"},
        {"learning-rate", FLAG_FLOAT, &a.learning_rate, "peak learning rate (policy and critic)"},
        {"lr-scheduler-type", FLAG_STR, &a.lr_scheduler_type, "linear|cosine|constant|constant_with_warmup (per PPO step)"},
        {"warmup-ratio", FLAG_FLOAT, &a.warmup_ratio, "fraction of steps warming up"},
        {"warmup-steps", FLAG_INT, &a.warmup_steps, "warmup steps (overrides the ratio)"},
        {"num-train-epochs", FLAG_FLOAT, &a.num_train_epochs, "passes over the prompts"},
        {"max-steps", FLAG_INT, &a.max_steps, "PPO steps (rollout batches; overrides epochs when > 0)"},
        {"per-device-train-batch-size", FLAG_INT, &a.per_device_train_batch_size, "completions per micro-batch"},
        {"gradient-accumulation-steps", FLAG_INT, &a.gradient_accumulation_steps, "micro-batches per mini-batch (optimizer step)"},
        {"num-mini-batches", FLAG_INT, &a.num_mini_batches, "mini-batches per rollout batch"},
        {"num-ppo-epochs", FLAG_INT, &a.num_ppo_epochs, "passes over each rollout batch"},
        {"max-prompt-length", FLAG_INT, &a.max_prompt_length, "prompt tokens kept (their end), 0 = all"},
        {"response-length", FLAG_INT, &a.response_length, "new tokens per completion (model and tool tokens)"},
        {"temperature", FLAG_FLOAT, &a.temperature, "sampling temperature T > 0; log-probs of softmax(logits / T) (default 1)"},
        {"kl-coef", FLAG_FLOAT, &a.h.kl_coef, "KL coefficient to the initial model (0: no reference held)"},
        {"kl-estimator", FLAG_STR, &estimator, "k1|k2|k3|low_var_kl"},
        {"use-kl-loss", FLAG_BOOL, &a.h.kl_loss, "the KL as a loss term (verl) instead of a per-token reward (TRL)"},
        {"cliprange", FLAG_FLOAT, &a.h.cliprange, "policy ratio clip ε"},
        {"cliprange-value", FLAG_FLOAT, &a.h.cliprange_value, "value clip ε_v around the rollout's values"},
        {"vf-coef", FLAG_FLOAT, &a.h.vf_coef, "value loss coefficient"},
        {"gamma", FLAG_FLOAT, &a.h.gamma, "discount γ"},
        {"lam", FLAG_FLOAT, &a.h.lam, "GAE λ"},
        {"tools", FLAG_STR, &a.tools, "none|calculator|python (tool outputs are masked and skipped by GAE)"},
        {"max-turns", FLAG_INT, &a.max_turns, "python tool calls per completion"},
        {"tool-timeout", FLAG_FLOAT, &a.tool_timeout, "python tool call timeout (s)"},
        {"weight-decay", FLAG_FLOAT, &a.weight_decay, "AdamW decoupled weight decay"},
        {"adam-beta1", FLAG_FLOAT, &a.adam_beta1, "AdamW beta1"},
        {"adam-beta2", FLAG_FLOAT, &a.adam_beta2, "AdamW beta2"},
        {"adam-epsilon", FLAG_FLOAT, &a.adam_epsilon, "AdamW epsilon"},
        {"max-grad-norm", FLAG_FLOAT, &a.max_grad_norm, "gradient-norm clip (0 = off; the shared head's apart)"},
        {"zero", FLAG_INT, &a.zero, "0|1: under mpirun, 1 shards the AdamW state over the ranks (ZeRO-1; the same weights as 0)"},
        {"seed", FLAG_INT, &a.seed, "prompt order, sampling and permutation seed"},
        {"logging-steps", FLAG_INT, &a.logging_steps, "log metrics every N PPO steps"},
        {"save-steps", FLAG_INT, &a.save_steps, "checkpoint every N PPO steps (0 = never)"},
        {"save-total-limit", FLAG_INT, &a.save_total_limit, "keep at most N checkpoints (0 = all)"},
        {"overwrite-output-dir", FLAG_BOOL, &a.overwrite_output_dir, "reuse a non-empty --output-dir (its checkpoints are deleted)"},
        {"resume-from-checkpoint", FLAG_STR, &a.resume_from_checkpoint, "checkpoint directory to continue from, or true / last"},
        LORA_FLAGS(a.lora),
        {"profile", FLAG_BOOL, &a.profile, "print the share of time per kernel class (GEMM, attention, norms, lm-head), optimizer and the rest at the end"},
        {"bf16", FLAG_BOOL, &a.bf16, "mixed precision: linear layers in bf16 with fp32 accumulation, the sampler's too; fp32 master weights and AdamW state"},
        {"gradient-checkpointing", FLAG_BOOL, &a.gradient_checkpointing, "recompute each layer's activations in the backward: keeps one [tokens, hidden] per layer, about one more forward of time"},
        {"quiet", FLAG_BOOL, &a.quiet, "no progress bar; metrics lines on stderr"},
    };
    flags_config cfg;
    if (flags_expand_config("ppo", argc, argv, &cfg)) return 2;
    int rc = flags_parse("ppo", "--model DIR --data prompts.jsonl --output-dir OUT [flags]", flags, sizeof flags / sizeof flags[0],
                         cfg.argc, cfg.argv, NULL, NULL);
    if (rc) { flags_config_free(&cfg); return rc == 1 ? 0 : 2; }
    int ke = kl_estimator_parse(estimator);
    char *end;
    a.verifier_weight = strtod(weights, &end);
    int wok = end != weights && *end == ',';
    if (wok) {
        const char *s = end + 1;
        a.reward_model_weight = strtod(s, &end);
        wok = end != s && !*end && isfinite(a.verifier_weight) && isfinite(a.reward_model_weight);
    }
    if (ke < 0) rc = cli_fail("ppo", "unknown --kl-estimator \"%s\" (k1, k2, k3, low_var_kl)", estimator) + 1;
    else if (!wok) rc = cli_fail("ppo", "--reward-weights \"%s\": give 2 finite numbers (verifier,reward_model)", weights) + 1;
    if (!rc) {
        a.h.estimator = (kl_estimator)ke;
        tm_error err;
        if (ppo_args_check(&a, &err)) rc = cli_fail("ppo", "%s", err.msg) + 1;
        else if (ppo_run(&a, &err)) rc = cli_fail("ppo", "%s", err.msg);
    }
    flags_config_free(&cfg);
    return rc;
}
