// temper sft | dpo | kto | reward-model: the offline trainers. Flags carry TRL's names and defaults,
// so a TRL command line carries over (dashes or underscores both work).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "cli/lora_flags.h"
#include "data/data.h"
#include "train/trainer.h"

// The comma-separated items of a list ("a,,b" has two).
static int count_items(const char *list) {
    int n = 0;
    for (const char *c = list; *c; c++) n += *c != ',' && (c == list || c[-1] == ',');
    return n;
}

// Splits "sigmoid,sft" and "1,0.1" into the DPO loss weights: one finite weight per
// loss type when --loss-weights is given.
static int parse_loss_types(const char *types, const char *weights, dpo_hparams *h) {
    char tbuf[256], wbuf[256];
    snprintf(tbuf, sizeof tbuf, "%s", types);
    snprintf(wbuf, sizeof wbuf, "%s", weights ? weights : "");
    for (int i = 0; i < DPO_N_LOSS; i++) h->loss_weight[i] = 0;
    int nt = count_items(types), nw = weights ? count_items(weights) : 0;
    char *ts, *ws, *t = strtok_r(tbuf, ",", &ts), *w = weights ? strtok_r(wbuf, ",", &ws) : NULL;
    if (weights && nw != nt)
        return cli_fail("dpo", "--loss-weights has %d weights for %d loss types (--loss-type %s): give one weight per type", nw, nt, types);
    for (; t; t = strtok_r(NULL, ",", &ts)) {
        int k = dpo_loss_type_parse(t);
        if (k < 0) return cli_fail("dpo", "unknown --loss-type \"%s\" (sigmoid, hinge, ipo, robust, nca_pair, sft)", t);
        double v = 1.0;
        if (w) {
            char *end;
            v = strtod(w, &end);
            if (end == w || *end || !isfinite(v) || v < 0)
                return cli_fail("dpo", "--loss-weights: \"%s\" is not a finite number >= 0", w);
        }
        h->loss_weight[k] += v;
        if (weights) w = strtok_r(NULL, ",", &ws);
    }
    return 0;
}

// Flags that are parsed as text and turned into train_args afterwards.
typedef struct extra_flags {
    const char *loss_type, *loss_weights, *cdpo_form, *on_bad_line, *truncation_mode;
    int length_normalize, per_sequence, step_wise;
    const char *base_model;
} extra_flags;

// A method flag: the trainers it belongs to (a bit per train_method) and the flag.
typedef struct method_flag {
    unsigned methods;
    flag f;
} method_flag;

static const char *const method_names[] = {"sft", "dpo", "kto", "reward-model"};

// "--beta is a flag of dpo and kto, not of sft": said before the generic unknown-flag message,
// so a flag copied from another trainer's command line is named as such.
static int refuse_foreign_flags(const char *cmd, train_method method, const method_flag *own, int nown, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2)) continue;
        const char *name = argv[i] + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        for (int k = 0; k < nown; k++) {
            const char *fn = own[k].f.name;
            size_t j = 0;
            while (j < n && fn[j] && (fn[j] == name[j] || (fn[j] == '-' && name[j] == '_'))) j++;
            if (j != n || fn[j] || (own[k].methods & (1u << method))) continue;
            char list[64] = "";
            for (int m = 0; m < 4; m++)
                if (own[k].methods & (1u << m))
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? " and " : "", method_names[m]);
            cli_fail(cmd, "--%s is a flag of %s, not of %s (see temper %s --help)", fn, list, cmd, cmd);
            return 1;
        }
    }
    return 0;
}

static int finish_and_run(train_method method, const char *cmd, train_args a, const extra_flags *x);

static int run(train_method method, const char *cmd, int argc, char **argv) {
    train_args a;
    train_args_default(&a, method);
    extra_flags x = {"sigmoid", NULL, "sequence", "error", "keep_end", 0, 0, 0, NULL};
    flag common[] = {
        {"model", FLAG_STR, &a.model, "policy model directory (Hugging Face layout, with its tokenizer)"},
        {"data", FLAG_LIST, &a.data, "training JSONL; several files mix: --data a.jsonl --data b.jsonl, or a,b"},
        {"data-weights", FLAG_STR, &a.data_weights, "one weight w per --data file: floor(w·n) of its n examples (a seeded subset; w > 1 repeats)"},
        {"eval-data", FLAG_STR, &a.eval_data, "evaluation JSONL"},
        {"output-dir", FLAG_STR, &a.output_dir, "where the model, checkpoints and metrics.jsonl go"},
        {"dataset-format", FLAG_STR, &a.dataset_format, "sft|trajectory (sft), dpo|step (dpo), kto|trajectory (kto)"},
        {"chat-template", FLAG_STR, &a.chat_template, "chatml|qwen3|llama3|gemma|... (default: recognized from the tokenizer)"},
        {"no-chat-template", FLAG_BOOL, &a.no_chat_template, "string prompts/completions as plain text even if the tokenizer has a template"},
        {"chat-template-kwargs", FLAG_STR, &a.chat_template_kwargs, "a JSON object of extra chat template variables, e.g. '{\"enable_thinking\": false}'"},
        {"learning-rate", FLAG_FLOAT, &a.learning_rate, "peak learning rate"},
        {"lr-scheduler-type", FLAG_STR, &a.lr_scheduler_type, "linear|cosine|constant|constant_with_warmup"},
        {"warmup-ratio", FLAG_FLOAT, &a.warmup_ratio, "fraction of steps warming up"},
        {"warmup-steps", FLAG_INT, &a.warmup_steps, "warmup steps (overrides the ratio)"},
        {"num-train-epochs", FLAG_FLOAT, &a.num_train_epochs, "epochs"},
        {"max-steps", FLAG_INT, &a.max_steps, "optimizer steps (overrides epochs when > 0)"},
        {"per-device-train-batch-size", FLAG_INT, &a.per_device_train_batch_size, "examples per micro-batch"},
        {"gradient-accumulation-steps", FLAG_INT, &a.gradient_accumulation_steps, "micro-batches per optimizer step"},
        {"zero", FLAG_INT, &a.zero, "0|1: under mpirun, 1 shards the AdamW state over the ranks (ZeRO-1; the same weights as 0)"},
        {"max-length", FLAG_INT, &a.max_length, "tokens per sequence (longer are cut and counted)"},
        {"max-prompt-length", FLAG_INT, &a.max_prompt_length, "prompt tokens kept (cut before --max-length), 0 = all"},
        {"truncation-mode", FLAG_STR, &x.truncation_mode, "keep_end|keep_start: which part of a long prompt is kept"},
        {"weight-decay", FLAG_FLOAT, &a.weight_decay, "AdamW decoupled weight decay (not on norms and biases)"},
        {"adam-beta1", FLAG_FLOAT, &a.adam_beta1, "AdamW beta1"},
        {"adam-beta2", FLAG_FLOAT, &a.adam_beta2, "AdamW beta2"},
        {"adam-epsilon", FLAG_FLOAT, &a.adam_epsilon, "AdamW epsilon"},
        {"max-grad-norm", FLAG_FLOAT, &a.max_grad_norm, "global gradient-norm clip (0 = off)"},
        {"bf16", FLAG_BOOL, &a.bf16, "mixed precision: linear layers in bf16 with fp32 accumulation; fp32 master weights and AdamW state"},
        {"seed", FLAG_INT, &a.seed, "data order seed"},
        {"logging-steps", FLAG_INT, &a.logging_steps, "log metrics every N steps"},
        {"eval-steps", FLAG_INT, &a.eval_steps, "evaluate every N steps (default: logging steps)"},
        {"save-steps", FLAG_INT, &a.save_steps, "checkpoint every N steps (0 = never)"},
        {"save-total-limit", FLAG_INT, &a.save_total_limit, "keep at most N checkpoints (0 = all)"},
        {"overwrite-output-dir", FLAG_BOOL, &a.overwrite_output_dir, "reuse a non-empty --output-dir (its checkpoints are deleted)"},
        {"resume-from-checkpoint", FLAG_STR, &a.resume_from_checkpoint, "checkpoint directory to continue from, or true / last: the newest in --output-dir"},
        {"on-bad-line", FLAG_STR, &x.on_bad_line, "error|skip"},
        {"quiet", FLAG_BOOL, &a.quiet, "no progress bar; metrics lines on stderr"},
        LORA_FLAGS(a.lora),
        {"profile", FLAG_BOOL, &a.profile, "print the share of time per kernel class (GEMM, attention, norms, lm-head), optimizer and the rest at the end"},
        {"gradient-checkpointing", FLAG_BOOL, &a.gradient_checkpointing, "recompute each layer's activations in the backward: keeps one [tokens, hidden] per layer, about one more forward of time"},
        {"base-model", FLAG_STR, &x.base_model, "the base of an adapter --model, instead of its base_model_name_or_path"},
        {"report-to", FLAG_STR, &a.report_to, "none|jsonl|tensorboard|all: tensorboard adds event files in OUT/runs/ (metrics.jsonl is always written)"},
    };
    // Method flags: each belongs to the trainers named beside it; any other trainer refuses
    // it as an unknown flag (sft --beta is a mistake, not a no-op) and its --help omits it.
    enum { SFT = 1 << TRAIN_SFT, DPO = 1 << TRAIN_DPO, KTO = 1 << TRAIN_KTO, RM = 1 << TRAIN_RM };
    method_flag own[] = {
        {DPO | KTO, {"beta", FLAG_FLOAT, method == TRAIN_KTO ? &a.kto.beta : &a.dpo.beta, "β of the DPO/KTO objective"}},
        {DPO | KTO, {"ref-model", FLAG_STR, &a.ref_model, "reference model directory (default: the initial --model)"}},
        {DPO | KTO, {"loss-type", FLAG_STR, &x.loss_type, method == TRAIN_KTO ? "kto|apo_zero_unpaired" : "sigmoid|hinge|ipo|robust|nca_pair|sft, comma-separated to combine"}},
        {DPO, {"loss-weights", FLAG_STR, &x.loss_weights, "weights of the combined loss types"}},
        {DPO, {"label-smoothing", FLAG_FLOAT, &a.dpo.label_smoothing, "conservative DPO ε"}},
        {DPO, {"length-normalize", FLAG_BOOL, &x.length_normalize, "token-mean log-probs (SimPO-style)"}},
        {DPO, {"rpo-alpha", FLAG_FLOAT, &a.dpo.rpo_alpha, "weight of the NLL on chosen responses (RPO)"}},
        {DPO, {"token-weights", FLAG_STR, &a.token_weights, "per-token weights W.jsonl from temper critical-tokens (cDPO)"}},
        {DPO, {"cdpo-form", FLAG_STR, &x.cdpo_form, "with token weights: sequence (paper) | position (released code)"}},
        {DPO, {"step-wise", FLAG_BOOL, &x.step_wise, "Step-DPO data (same as --dataset-format step)"}},
        {KTO, {"desirable-weight", FLAG_FLOAT, &a.kto.desirable_weight, "λ_D"}},
        {KTO, {"undesirable-weight", FLAG_FLOAT, &a.kto.undesirable_weight, "λ_U"}},
        {RM, {"center-rewards-coefficient", FLAG_FLOAT, &a.center_rewards_coefficient, "weight of (r_w + r_l)^2"}},
        {SFT, {"packing", FLAG_BOOL, &a.packing, "true|false: pack whole examples into rows of --max-length tokens (TRL's bfd); a micro-batch takes --per-device-train-batch-size rows"}},
        {SFT | DPO, {"perturb", FLAG_STR, &a.perturb, "concat|mixup|rotate: rows with images get their images perturbed anew each epoch (Vision Matters; epoch e = `temper perturb --seed S+e`; dpo: one image for chosen and rejected, the references see it too)"}},
        {SFT | DPO, {"perturb-seed", FLAG_INT, &a.perturb_seed, "the perturbations' seed (default: --seed)"}},
        {SFT | DPO | KTO, {"freeze-vision-tower", FLAG_BOOL, &a.freeze_vision_tower, "Qwen2.5-VL: train no vision-tower parameter (LoRA freezes it anyway)"}},
        {SFT, {"per-sequence", FLAG_BOOL, &x.per_sequence, "average the loss per sequence instead of per token"}},
    };
    enum { NCOMMON = sizeof common / sizeof common[0], NOWN = sizeof own / sizeof own[0] };
    flag flags[NCOMMON + NOWN];
    int nflags = 0;
    for (int i = 0; i < NCOMMON; i++) flags[nflags++] = common[i];
    for (int i = 0; i < NOWN; i++)
        if (own[i].methods & (1u << method)) flags[nflags++] = own[i].f;
    flags_config cfg;
    if (flags_expand_config(cmd, argc, argv, &cfg)) return 2;
    if (refuse_foreign_flags(cmd, method, own, NOWN, cfg.argc, cfg.argv)) { flags_config_free(&cfg); return 2; }
    int rc = flags_parse(cmd, "--model DIR --data F.jsonl --output-dir OUT [--config F.json] [flags]", flags,
                         nflags, cfg.argc, cfg.argv, NULL, NULL);
    if (rc) { flags_config_free(&cfg); return rc == 1 ? 0 : 2; }
    rc = finish_and_run(method, cmd, a, &x);
    flags_config_free(&cfg);  // flag values point into it until the run is over
    return rc;
}

static int finish_and_run(train_method method, const char *cmd, train_args a, const extra_flags *x) {
    lora_set_base_override(x->base_model);
    if (!strcmp(x->on_bad_line, "skip")) a.on_bad_line = DATA_BAD_SKIP;
    else if (strcmp(x->on_bad_line, "error")) return cli_fail(cmd, "--on-bad-line must be error or skip");
    a.sft_per_sequence = x->per_sequence;
    if (!strcmp(x->truncation_mode, "keep_start")) a.keep_start = 1;
    else if (strcmp(x->truncation_mode, "keep_end")) return cli_fail(cmd, "--truncation-mode must be keep_end or keep_start");
    if (x->step_wise) a.dataset_format = "step";
    if (method == TRAIN_DPO) {
        if (parse_loss_types(x->loss_type, x->loss_weights, &a.dpo)) return 2;
        a.dpo.length_normalize = x->length_normalize;
        if (!strcmp(x->cdpo_form, "position")) a.dpo.form = DPO_FORM_POSITION;
        else if (strcmp(x->cdpo_form, "sequence")) return cli_fail(cmd, "--cdpo-form must be sequence or position");
    } else if (method == TRAIN_KTO) {
        if (!strcmp(x->loss_type, "apo_zero_unpaired")) a.kto.loss_type = KTO_LOSS_APO_ZERO_UNPAIRED;
        else if (strcmp(x->loss_type, "kto") && strcmp(x->loss_type, "sigmoid")) return cli_fail(cmd, "--loss-type must be kto or apo_zero_unpaired");
    }
    tm_error err;
    if (train_run(&a, &err)) return cli_fail(cmd, "%s", err.msg);
    return 0;
}

int cmd_sft(int argc, char **argv) { return run(TRAIN_SFT, "sft", argc, argv); }
int cmd_dpo(int argc, char **argv) { return run(TRAIN_DPO, "dpo", argc, argv); }
int cmd_kto(int argc, char **argv) { return run(TRAIN_KTO, "kto", argc, argv); }
int cmd_reward_model(int argc, char **argv) { return run(TRAIN_RM, "reward-model", argc, argv); }
