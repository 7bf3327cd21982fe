// temper online-dpo: iterative online DPO / KTO rounds with the verifier, optionally with
// tools (src/train/online_dpo.h: M-DPO / M-KTO of "Building Math Agents").
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "cli/lora_flags.h"
#include "train/online_dpo.h"

int cmd_online_dpo(int argc, char **argv) {
    online_args a;
    online_args_default(&a, TRAIN_DPO);
    train_args *t = &a.train;
    const char *loss = "dpo", *ref_update = "fixed";
    double beta = -1;
    flag flags[] = {
        {"model", FLAG_STR, &a.model, "starting policy (Hugging Face directory with its tokenizer); the fixed reference"},
        {"data", FLAG_STR, &a.data, "prompts JSONL: {\"prompt\"|\"question\"|\"problem\", \"answer\"}"},
        {"output-dir", FLAG_STR, &a.output_dir, "OUT: round-K/{samples,pairs}.jsonl, data.json, model/, round.json"},
        {"loss", FLAG_STR, &loss, "dpo (M-DPO pairs) | kto (M-KTO: each pair gives a desirable and an undesirable example)"},
        {"rounds", FLAG_INT, &a.rounds, "sample-pair-train rounds"},
        {"epochs-per-round", FLAG_FLOAT, &a.epochs_per_round, "training epochs over each round's pairs"},
        {"ref-update", FLAG_STR, &ref_update, "fixed (the starting --model every round) | round (reset to the last round's policy)"},
        {"num-generations", FLAG_INT, &a.num_generations, "trajectories sampled per prompt each round"},
        {"pairs-per-prompt", FLAG_INT, &a.pairs_per_prompt, "pairs per prompt at most (paper: 1)"},
        {"chat-template", FLAG_STR, &a.chat_template, "chatml|qwen3|llama3|gemma|... (default: recognized from the tokenizer)"},
        {"prompt-style", FLAG_STR, &a.prompt_style, "boxed|plain|tora|gsm8k-fewshot|minerva: the prompt as sample/eval build it (default plain)"},
        {"prompt-suffix", FLAG_STR, &a.prompt_suffix, "text appended to string prompts"},
        {"max-prompt-length", FLAG_INT, &a.max_prompt_length, "prompt tokens kept (their end), 0 = all"},
        {"max-completion-length", FLAG_INT, &a.max_completion_length, "new tokens per trajectory (model and tool tokens)"},
        {"temperature", FLAG_FLOAT, &a.sp.temperature, "sampling temperature (paper: 1)"},
        {"top-p", FLAG_FLOAT, &a.sp.top_p, "nucleus sampling"},
        {"top-k", FLAG_INT, &a.sp.top_k, "top-k sampling (0: off)"},
        {"tools", FLAG_STR, &a.tools, "none|calculator|python (tool outputs masked; python: the paper's trajectory filters)"},
        {"max-turns", FLAG_INT, &a.max_turns, "python tool calls per trajectory (paper: 6)"},
        {"tool-timeout", FLAG_FLOAT, &a.tool_timeout, "python tool call timeout (s)"},
        {"beta", FLAG_FLOAT, &beta, "β of DPO / KTO (default 0.1)"},
        {"rpo-alpha", FLAG_FLOAT, &t->dpo.rpo_alpha, "dpo: NLL weight on the chosen trajectory (the paper's M-DPO + NLL)"},
        {"desirable-weight", FLAG_FLOAT, &t->kto.desirable_weight, "kto: λ_D"},
        {"undesirable-weight", FLAG_FLOAT, &t->kto.undesirable_weight, "kto: λ_U"},
        {"learning-rate", FLAG_FLOAT, &t->learning_rate, "peak learning rate of each round"},
        {"lr-scheduler-type", FLAG_STR, &t->lr_scheduler_type, "linear|cosine|constant|constant_with_warmup (each round)"},
        {"warmup-ratio", FLAG_FLOAT, &t->warmup_ratio, "fraction of a round's steps warming up"},
        {"max-steps", FLAG_INT, &t->max_steps, "optimizer steps per round (overrides --epochs-per-round when > 0)"},
        {"per-device-train-batch-size", FLAG_INT, &t->per_device_train_batch_size, "pairs (kto: examples) per micro-batch"},
        {"gradient-accumulation-steps", FLAG_INT, &t->gradient_accumulation_steps, "micro-batches per optimizer step"},
        {"max-length", FLAG_INT, &t->max_length, "tokens per sequence (longer are cut and counted)"},
        {"weight-decay", FLAG_FLOAT, &t->weight_decay, "AdamW decoupled weight decay"},
        {"max-grad-norm", FLAG_FLOAT, &t->max_grad_norm, "global gradient-norm clip (0 = off)"},
        {"seed", FLAG_INT, &a.seed, "sampling, pairing and data-order seed"},
        {"logging-steps", FLAG_INT, &t->logging_steps, "log metrics every N steps"},
        {"save-steps", FLAG_INT, &t->save_steps, "checkpoint every N steps of a round (0 = never)"},
        {"resume-from-checkpoint", FLAG_STR, &a.resume_from_checkpoint, "true: continue --output-dir at the round and step where it stopped"},
        LORA_FLAGS(a.train.lora),
        {"bf16", FLAG_BOOL, &a.train.bf16, "mixed precision: linear layers in bf16 with fp32 accumulation (sampler and trainer); fp32 master weights and AdamW state"},
        {"gradient-checkpointing", FLAG_BOOL, &a.train.gradient_checkpointing, "recompute each layer's activations in the backward: keeps one [tokens, hidden] per layer, about one more forward of time"},
        {"quiet", FLAG_BOOL, &a.quiet, "no progress bars; metrics lines on stderr"},
    };
    int rc = flags_parse("online-dpo", "--model DIR --data prompts.jsonl --output-dir OUT [--loss dpo|kto] [--rounds R] [flags]", flags,
                         sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!strcmp(loss, "kto")) {
        online_args b = a;  // the KTO trainer's defaults under the flags given
        train_args_default(&b.train, TRAIN_KTO);
        b.train.learning_rate = t->learning_rate, b.train.lr_scheduler_type = t->lr_scheduler_type;
        b.train.warmup_ratio = t->warmup_ratio, b.train.max_steps = t->max_steps;
        b.train.per_device_train_batch_size = t->per_device_train_batch_size;
        b.train.gradient_accumulation_steps = t->gradient_accumulation_steps, b.train.max_length = t->max_length;
        b.train.weight_decay = t->weight_decay, b.train.max_grad_norm = t->max_grad_norm;
        b.train.logging_steps = t->logging_steps, b.train.save_steps = t->save_steps;
        b.train.kto.desirable_weight = t->kto.desirable_weight, b.train.kto.undesirable_weight = t->kto.undesirable_weight;
        b.train.lora = t->lora, b.train.gradient_checkpointing = t->gradient_checkpointing, b.train.bf16 = t->bf16;
        b.method = TRAIN_KTO;
        a = b;
        t = &a.train;
    } else if (strcmp(loss, "dpo")) return cli_fail("online-dpo", "--loss must be dpo or kto (got \"%s\")", loss) + 1;
    if (beta != -1) t->dpo.beta = t->kto.beta = beta;
    if (!strcmp(ref_update, "round")) a.ref_update = ONLINE_REF_ROUND;
    else if (strcmp(ref_update, "fixed")) return cli_fail("online-dpo", "--ref-update must be fixed or round (got \"%s\")", ref_update) + 1;
    t->seed = a.seed;
    tm_error err;
    if (online_run(&a, &err)) return cli_fail("online-dpo", "%s", err.msg);
    return 0;
}
