// temper grpo: online GRPO with the verifier's reward (train/grpo_trainer.h). Flags carry
// TRL's GRPOConfig names and defaults (dashes or underscores).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "cli/lora_flags.h"
#include "train/grpo_trainer.h"

// "1,0.5" or "1,0,0.5" into the reward weights (accuracy, format[, overlong]; unset: 0).
static int parse_weights(const char *s, double *w) {
    for (int i = 0; i < GRPO_N_REWARD; i++) w[i] = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    char *save, *tok = strtok_r(buf, ",", &save);
    for (; tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = strtod(tok, &end);
        if (end == tok || *end || !isfinite(v) || n >= GRPO_N_REWARD)
            return cli_fail("grpo", "--reward-weights \"%s\": give 2 or 3 finite numbers (accuracy,format[,overlong])", s);
        w[n++] = v;
    }
    if (n < 2) return cli_fail("grpo", "--reward-weights \"%s\": give 2 or 3 finite numbers (accuracy,format[,overlong])", s);
    return 0;
}

int cmd_grpo(int argc, char **argv) {
    grpo_args a;
    grpo_args_default(&a);
    const char *loss_type = "dapo", *scale = "group", *estimator = "k3", *weights = "1,0", *divergence = NULL;
    const char *reh_estimator = "low_var_kl";
    double epsilon_high = -1;
    flag flags[] = {
        {"model", FLAG_STR, &a.model, "policy model directory (Hugging Face layout, with its tokenizer)"},
        {"data", FLAG_STR, &a.data, "prompts JSONL: {\"prompt\"|\"question\"|\"problem\", \"answer\"}"},
        {"output-dir", FLAG_STR, &a.output_dir, "where the model, checkpoints and metrics.jsonl go"},
        {"chat-template", FLAG_STR, &a.chat_template, "chatml|qwen3|llama3|... (default: recognized from the tokenizer; none found: plain text)"},
        {"chat-template-kwargs", FLAG_STR, &a.chat_template_kwargs, "a JSON object of extra chat template variables, e.g. '{\"enable_thinking\": false}'"},
        {"prompt-style", FLAG_STR, &a.prompt_style, "boxed|plain|tora|gsm8k-fewshot|minerva: the prompt as sample/eval build it (default plain)"},
        {"prompt-suffix", FLAG_STR, &a.prompt_suffix, "text appended to string prompts"},
        {"learning-rate", FLAG_FLOAT, &a.learning_rate, "peak learning rate"},
        {"lr-scheduler-type", FLAG_STR, &a.lr_scheduler_type, "linear|cosine|constant|constant_with_warmup"},
        {"warmup-ratio", FLAG_FLOAT, &a.warmup_ratio, "fraction of steps warming up"},
        {"warmup-steps", FLAG_INT, &a.warmup_steps, "warmup steps (overrides the ratio)"},
        {"num-train-epochs", FLAG_FLOAT, &a.num_train_epochs, "passes over the prompts"},
        {"max-steps", FLAG_INT, &a.max_steps, "optimizer steps (overrides epochs when > 0)"},
        {"per-device-train-batch-size", FLAG_INT, &a.per_device_train_batch_size, "completions per micro-batch"},
        {"gradient-accumulation-steps", FLAG_INT, &a.gradient_accumulation_steps, "micro-batches per optimizer step"},
        {"zero", FLAG_INT, &a.zero, "0|1: under mpirun, 1 shards the AdamW state over the ranks (ZeRO-1; the same weights as 0)"},
        {"num-generations", FLAG_INT, &a.num_generations, "completions per prompt (the group)"},
        {"max-prompt-length", FLAG_INT, &a.max_prompt_length, "prompt tokens kept (their end), 0 = all"},
        {"max-completion-length", FLAG_INT, &a.max_completion_length, "new tokens per completion (model and tool tokens)"},
        {"num-iterations", FLAG_INT, &a.num_iterations, "passes over each generation batch (μ)"},
        {"steps-per-generation", FLAG_INT, &a.steps_per_generation, "micro-batches per generation batch (0: --gradient-accumulation-steps)"},
        {"temperature", FLAG_FLOAT, &a.temperature, "sampling temperature T > 0; every log-prob (sampler, policy, reference, rehearsal) is of softmax(logits / T)"},
        {"top-p", FLAG_FLOAT, &a.top_p, "nucleus sampling (1 = off); as TRL, the ratio still uses the full temperature-scaled distribution"},
        {"top-k", FLAG_INT, &a.top_k, "top-k sampling (0 = off); not in the ratio either (TRL)"},
        {"min-p", FLAG_FLOAT, &a.min_p, "min-p sampling (0 = off); not in the ratio either"},
        {"loss-type", FLAG_STR, &loss_type, "grpo|bnpo|dr_grpo|dapo"},
        {"epsilon", FLAG_FLOAT, &a.h.epsilon, "lower clip ε"},
        {"epsilon-high", FLAG_FLOAT, &epsilon_high, "upper clip for clip-higher (-1: the same as --epsilon)"},
        {"delta", FLAG_FLOAT, &a.h.delta, "two-sided (dual) clip δ > 1 + ε_high, 0 = off"},
        {"beta", FLAG_FLOAT, &a.h.beta, "KL coefficient (reverse KL to the initial model; 0 = no reference held)"},
        {"kl-estimator", FLAG_STR, &estimator, "k1|k2|k3|low_var_kl"},
        {"use-bias-correction-kl", FLAG_BOOL, &a.h.kl_bias_correction, "multiply the KL term by the ratio"},
        {"scale-rewards", FLAG_STR, &scale, "group|batch|none"},
        {"reward-weights", FLAG_STR, &weights, "weights of the rewards accuracy,format[,overlong]"},
        {"overlong-buffer-len", FLAG_INT, &a.overlong_buffer_len, "DAPO soft overlong punishment: the last L_c tokens before --max-completion-length (0: a quarter of it)"},
        {"mask-truncated-completions", FLAG_BOOL, &a.mask_truncated_completions, "no loss on completions cut at --max-completion-length"},
        {"dynamic-sampling", FLAG_BOOL, &a.dynamic_sampling, "DAPO: drop groups with equal rewards, sample more prompts"},
        {"max-num-gen-batches", FLAG_INT, &a.max_num_gen_batches, "dynamic sampling: rounds per batch at most"},
        {"tools", FLAG_STR, &a.tools, "none|calculator|python (tool outputs are masked from the loss)"},
        {"max-turns", FLAG_INT, &a.max_turns, "python tool calls per completion"},
        {"tool-timeout", FLAG_FLOAT, &a.tool_timeout, "python tool call timeout (s)"},
        {"weight-decay", FLAG_FLOAT, &a.weight_decay, "AdamW decoupled weight decay"},
        {"adam-beta1", FLAG_FLOAT, &a.adam_beta1, "AdamW beta1"},
        {"adam-beta2", FLAG_FLOAT, &a.adam_beta2, "AdamW beta2"},
        {"adam-epsilon", FLAG_FLOAT, &a.adam_epsilon, "AdamW epsilon"},
        {"max-grad-norm", FLAG_FLOAT, &a.max_grad_norm, "global gradient-norm clip (0 = off)"},
        {"seed", FLAG_INT, &a.seed, "prompt order and sampling seed"},
        {"perturb", FLAG_STR, &a.perturb, "concat|mixup|rotate: prompts with images get them perturbed anew each step (Vision Matters; step s = `temper perturb --seed S+s`)"},
        {"perturb-seed", FLAG_INT, &a.perturb_seed, "the perturbations' seed (default: --seed)"},
        {"freeze-vision-tower", FLAG_BOOL, &a.freeze_vision_tower, "Qwen2.5-VL: train no vision-tower parameter (default: the tower trains, as the paper's GRPO)"},
        {"logging-steps", FLAG_INT, &a.logging_steps, "log metrics every N steps"},
        {"save-steps", FLAG_INT, &a.save_steps, "checkpoint every N steps (0 = never; a multiple of --num-iterations)"},
        {"save-total-limit", FLAG_INT, &a.save_total_limit, "keep at most N checkpoints (0 = all)"},
        {"overwrite-output-dir", FLAG_BOOL, &a.overwrite_output_dir, "reuse a non-empty --output-dir (its checkpoints are deleted)"},
        {"resume-from-checkpoint", FLAG_STR, &a.resume_from_checkpoint, "checkpoint directory to continue from, or true / last"},
        {"quiet", FLAG_BOOL, &a.quiet, "no progress bar; metrics lines on stderr"},
        {"divergence", FLAG_STR, &divergence, "none|reverse_kl (--beta)|forward_kl|js|alpha (DPH-RL, with --rehearsal); default: reverse_kl when --beta > 0"},
        {"rehearsal", FLAG_STR, &a.rehearsal, "R.jsonl from temper rehearsal: stored correct samples of the initial policy"},
        {"divergence-coef", FLAG_FLOAT, &a.rh.coef, "weight of the rehearsal divergence (DPH-RL sft_loss_coeff)"},
        {"divergence-estimator", FLAG_STR, &reh_estimator, "forward_kl's estimator: k1|k2|k3|low_var_kl"},
        {"alpha", FLAG_FLOAT, &a.rh.alpha, "α of the alpha divergence, in (0, 1)"},
        {"rehearsal-batch-size", FLAG_INT, &a.rehearsal_batch_size, "rehearsal samples per step (0: the generation batch's size)"},
        LORA_FLAGS(a.lora),
        {"profile", FLAG_BOOL, &a.profile, "print the share of time per kernel class (GEMM, attention, norms, lm-head), optimizer and the rest at the end"},
        {"bf16", FLAG_BOOL, &a.bf16, "mixed precision: linear layers in bf16 with fp32 accumulation, the sampler's too; fp32 master weights and AdamW state"},
        {"gradient-checkpointing", FLAG_BOOL, &a.gradient_checkpointing, "recompute each layer's activations in the backward: keeps one [tokens, hidden] per layer, about one more forward of time"},
    };
    flags_config cfg;
    if (flags_expand_config("grpo", argc, argv, &cfg)) return 2;
    int rc = flags_parse("grpo", "--model DIR --data prompts.jsonl --output-dir OUT [flags]", flags, sizeof flags / sizeof flags[0],
                         cfg.argc, cfg.argv, NULL, NULL);
    if (rc) { flags_config_free(&cfg); return rc == 1 ? 0 : 2; }
    int lt = grpo_loss_type_parse(loss_type), sc = grpo_scale_parse(scale), ke = kl_estimator_parse(estimator);
    if (lt < 0) rc = cli_fail("grpo", "unknown --loss-type \"%s\" (grpo, bnpo, dr_grpo, dapo)", loss_type) + 1;
    else if (sc < 0) rc = cli_fail("grpo", "unknown --scale-rewards \"%s\" (group, batch, none)", scale) + 1;
    else if (ke < 0) rc = cli_fail("grpo", "unknown --kl-estimator \"%s\" (k1, k2, k3, low_var_kl)", estimator) + 1;
    else if (parse_weights(weights, a.reward_weights)) rc = 2;
    int dv = divergence ? divergence_parse(divergence) : (a.h.beta > 0 ? DIV_REVERSE_KL : DIV_NONE);
    int re = kl_estimator_parse(reh_estimator);
    if (!rc && dv < 0) rc = cli_fail("grpo", "unknown --divergence \"%s\" (none, reverse_kl, forward_kl, js, alpha)", divergence) + 1;
    else if (!rc && re < 0) rc = cli_fail("grpo", "unknown --divergence-estimator \"%s\" (k1, k2, k3, low_var_kl)", reh_estimator) + 1;
    else if (!rc && dv == DIV_REVERSE_KL && !(a.h.beta > 0)) rc = cli_fail("grpo", "--divergence reverse_kl needs --beta > 0") + 1;
    else if (!rc && dv != DIV_REVERSE_KL && a.h.beta > 0)
        rc = cli_fail("grpo", "--beta %g is the reverse-KL coefficient; it does not combine with --divergence %s", a.h.beta, divergence) + 1;
    if (!rc) a.rh.divergence = (divergence_kind)dv;
    if (!rc) a.rh.estimator = (kl_estimator)re;
    if (!rc) {
        a.h.loss_type = (grpo_loss_type)lt;
        a.scale_rewards = sc;
        a.h.estimator = (kl_estimator)ke;
        a.h.epsilon_high = epsilon_high >= 0 ? epsilon_high : a.h.epsilon;
        tm_error err;
        if (grpo_args_check(&a, &err)) rc = cli_fail("grpo", "%s", err.msg) + 1;
        else if (grpo_run(&a, &err)) rc = cli_fail("grpo", "%s", err.msg);
    }
    flags_config_free(&cfg);
    return rc;
}

// temper rehearsal: DPH-RL's pre-sampling from the initial policy.
int cmd_rehearsal(int argc, char **argv) {
    grpo_rehearsal_args a;
    grpo_rehearsal_args_default(&a);
    flag flags[] = {
        {"model", FLAG_STR, &a.model, "the initial policy π0"},
        {"data", FLAG_STR, &a.data, "prompts JSONL: {\"prompt\"|\"question\"|\"problem\", \"answer\"}"},
        {"output", FLAG_STR, &a.output, "R.jsonl: correct samples of solved prompts with their log π0 (for grpo --rehearsal)"},
        {"exp-output", FLAG_STR, &a.exp_output, "the unsolved prompts' rows, as they are (grpo's --data)"},
        {"k", FLAG_INT, &a.k, "samples per prompt"},
        {"solved-threshold", FLAG_INT, &a.solved_threshold, "correct samples (of --k) for a prompt to count as solved"},
        {"max-completion-length", FLAG_INT, &a.max_completion_length, "new tokens per sample"},
        {"max-prompt-length", FLAG_INT, &a.max_prompt_length, "prompt tokens kept (their end), 0 = all"},
        {"chat-template", FLAG_STR, &a.chat_template, "as grpo's"},
        {"chat-template-kwargs", FLAG_STR, &a.chat_template_kwargs, "as grpo's"},
        {"prompt-style", FLAG_STR, &a.prompt_style, "as grpo's"},
        {"prompt-suffix", FLAG_STR, &a.prompt_suffix, "as grpo's"},
        {"seed", FLAG_INT, &a.seed, "sampling seed"},
        {"temperature", FLAG_FLOAT, &a.temperature, "sampling temperature of π0; the stored log π0 are at it (grpo --temperature must match)"},
        {"tools", FLAG_STR, &a.tools, "none|calculator|python: as grpo's --tools (the tool runs; its outputs are masked in the stored samples)"},
    };
    int rc = flags_parse("rehearsal", "--model DIR --data prompts.jsonl --output R.jsonl [--exp-output P.jsonl] [flags]", flags,
                         sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    tm_error err;
    if (grpo_rehearsal_run(&a, &err)) return cli_fail("rehearsal", "%s", err.msg);
    return 0;
}
