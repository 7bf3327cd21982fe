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
#include "task/prompt.h"
#include "tokenizer/tokenizer.h"

typedef struct online_task {
    tok_tokenizer *tok;
    data_set prompts;
    int stop_ids[16], nstop;
    math_extract_opts eo;
    math_equal_opts qo;
    rollout_tool tool;
    char *obs_pre, *obs_suf;   // python tool: the observation's chat wrapper (NULL: none)
    const char *stop_strs[3];  // the prompt style's stops (few-shot: the next exemplar), the python tool's
    int nstop_strs;
    int longest;               // the longest prompt, in tokens
    int *order, order_epoch;   // this epoch's prompt order (online_next_prompt)
    // Qwen2.5-VL: prompts with images (TRL's "images"/"image" columns) are read through the
    // model's processor (preprocessor_config.json, else Hugging Face's defaults); a prompt's
    // pixels are remade when it is sampled (data/prompt_images.h)
    img_qwen2vl_config icfg;
    int vision;                // the model has a vision tower (icfg is set)
} online_task;

// Where the task comes from (the trainers' flags of the same names).
typedef struct online_task_opts {
    const char *model_dir;      // the tokenizer's directory
    const char *chat_template;  // NULL: the tokenizer's own, if any
    const char *prompt_style;   // task/prompt.h's styles, as sample/eval (NULL: plain)
    const char *prompt_suffix;  // NULL: none
    const char *data;           // prompts file (data/'s `prompts` format)
    const char *tools;          // none | calculator | python
    int max_prompt_length;      // > 0: keep the last max_prompt_length tokens of a prompt
    int need_answer;            // refuse a prompt without a gold "answer" (a verifier reward needs one)
    const char *chat_template_kwargs;  // a JSON object of extra template variables (NULL: none)
    int images;                 // the caller samples prompts with images (grpo); 0: such prompts are refused
} online_task_opts;

// Loads the tokenizer, the prompts, checks their ids against m's vocabulary, the stop tokens,
// the tool and the (strict) verifier options. On failure T holds nothing (online_task_free is
// still safe). The one loader of grpo, ppo, rehearsal and
// online-dpo.
int online_task_load(online_task *T, const model *m, const online_task_opts *o, tm_error *err);
// --prompt-style's value (NULL: plain) is a known style; for the trainers' flag checks, so that a
// bad name fails before any work.
int online_prompt_style_check(const char *name, tm_error *err);
void online_task_free(online_task *T);

// The task's part of the sampler's options: stop ids and strings, the tool, its observation wrapper.
void online_rollout_opts(const online_task *T, rollout_opts *o);

// Fisher-Yates permutation of n prompts for one epoch, from the seed and the epoch.
void online_epoch_order(int *order, int n, int seed, int epoch);
// The prompt index of the k-th prompt drawn (0-based) from the data stream: epochs of
// online_epoch_order permutations, so a resumed run (k = prompts seen) draws the same.
int online_next_prompt(online_task *T, int64_t k, int seed);

// Decodes a completion with tok (special tokens skipped) into text (NULL: not kept) and grades
// it with task_grade (task/grade.h): *found = a final answer can be extracted (eo), *correct =
// the verifier (qo) says it equals gold (0 when gold is NULL).
int online_grade(const tok_tokenizer *tok, const math_extract_opts *eo, const math_equal_opts *qo, const int32_t *ids, int len,
                 const char *gold, sbuf *text, int *found, int *correct, tm_error *err);
