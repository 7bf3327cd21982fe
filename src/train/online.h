// train/online: what the online trainers (grpo, ppo) share around the sampler: the task (tokenizer,
// prompts cut to --max-prompt-length keeping their end, stop tokens, tool and its observation
// wrapper, the verifier's options), the per-epoch prompt order, and grading a sampled completion
// with the verifier (reward/math_answer, strict: unevaluated arithmetic is wrong).
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "data/data.h"
#include "model/model.h"
#include "reward/math_answer.h"
#include "rollout/rollout.h"
#include "tokenizer/tokenizer.h"

typedef struct online_task {
    tok_tokenizer *tok;
    data_set prompts;
    int stop_ids[16], nstop;
    math_extract_opts eo;
    math_equal_opts qo;
    rollout_tool tool;
    char *obs_pre, *obs_suf;   // python tool: the observation's chat wrapper (NULL: none)
    int longest;               // the longest prompt, in tokens
} online_task;

// Loads the tokenizer of model_dir, the prompts of data (format `prompts`), checks their ids
// against m's vocabulary; tools: none | calculator | python.
int online_task_load(online_task *T, const model *m, const char *model_dir, const char *chat_template, const char *prompt_suffix,
                     const char *data, int max_prompt_length, const char *tools, tm_error *err);
void online_task_free(online_task *T);

// Fisher-Yates permutation of n prompts for one epoch, from the seed and the epoch.
void online_epoch_order(int *order, int n, int seed, int epoch);

// Decodes a completion with tok and grades it: *found = a final answer can be extracted (eo),
// *correct = the verifier (qo) says it equals gold (0 when gold is NULL).
int online_grade(const tok_tokenizer *tok, const math_extract_opts *eo, const math_equal_opts *qo, const int32_t *ids, int len,
                 const char *gold, int *found, int *correct, tm_error *err);
