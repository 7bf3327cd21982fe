// temper critical-tokens: cDPO's per-token weights (see src/train/critical_tokens.h).
#include "cli/cli.h"
#include "cli/flags.h"
#include "train/critical_tokens.h"

int cmd_critical_tokens(int argc, char **argv) {
    critical_args a = {.gamma = 1.0, .max_length = 1024};
    flag flags[] = {
        {"positive", FLAG_STR, &a.positive, "model fine-tuned on correct trajectories (temper sft)"},
        {"negative", FLAG_STR, &a.negative, "model fine-tuned on incorrect trajectories (temper sft)"},
        {"data", FLAG_STR, &a.data, "preference JSONL (prompt/chosen/rejected) to score"},
        {"out", FLAG_STR, &a.out, "W.jsonl for temper dpo --token-weights"},
        {"gamma", FLAG_FLOAT, &a.gamma, "contrast strength: softmax((1+γ) z+ - γ z-)"},
        {"weight-chosen", FLAG_BOOL, &a.weight_chosen, "also weight chosen tokens by their score (default: 1, the code's only_neg)"},
        {"max-length", FLAG_INT, &a.max_length, "as given to temper dpo"},
        {"chat-template", FLAG_STR, &a.chat_template, "as given to temper dpo"},
        {"chat-template-kwargs", FLAG_STR, &a.chat_template_kwargs, "as given to temper dpo"},
    };
    int rc = flags_parse("critical-tokens", "--positive DIR --negative DIR --data F.jsonl --out W.jsonl", flags,
                         sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!a.positive || !a.negative || !a.data || !a.out) return cli_fail("critical-tokens", "--positive, --negative, --data and --out are required");
    if (!(a.gamma >= 0)) return cli_fail("critical-tokens", "--gamma must be a finite number >= 0 (got %g)", a.gamma);
    if (a.max_length < 0) return cli_fail("critical-tokens", "--max-length must be at least 0 (0: no limit; got %d)", a.max_length);
    tm_error err;
    if (critical_tokens_run(&a, &err)) return cli_fail("critical-tokens", "%s", err.msg);
    return 0;
}
