// train/critical_tokens: cDPO's token scores ("Critical Tokens Matter", papers.md §7.2).
// Two models fine-tuned from the same base, p+ on correct trajectories and p- on
// incorrect ones (both with `temper sft`), score every token of a preference file:
//   s_t = softmax((1+γ) z+_t - γ z-_t)[y_t]
// A low s_t means the negative model explains the token: a critical token. The output
// W.jsonl has, per input line, the token ids the DPO trainer will build for that line
// and a weight per token: rejected w_t = 1 - s_t (the appended EOS gets 1, as the
// released code's `1 - (ce_prob + [0])`), chosen 1 (the code's only_neg default) or
// s_t with --weight-chosen. `temper dpo --token-weights W.jsonl` checks the ids match
// its own tokenization and applies the weights (--cdpo-form sequence|position).
#pragma once
#include "base/error.h"

typedef struct critical_args {
    const char *positive, *negative, *data, *out, *chat_template;
    const char *chat_template_kwargs;  // a JSON object of extra template variables (NULL: none)
    double gamma;          // 1.0 (papers.md: softmax(2 z+ - z-))
    int weight_chosen;     // chosen weights = s_t instead of 1
    int max_length;
} critical_args;

int critical_tokens_run(const critical_args *a, tm_error *err);
