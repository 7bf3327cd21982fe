// task/problems: THE problem loader. One row of a prompts file becomes the prompt the
// model sees (task/prompt.h's rule), its token ids, the gold answer and the reference
// solution. `temper sample|eval`, the `prompts` format of data/ (grpo, rehearsal,
// `data inspect`) and `temper grade` read rows through it, so they agree.
//
// Rows: {"prompt": str | messages, "answer"[, "solution"]}, GSM8K {"question",
// "answer": "... #### n"}, MATH / MATH-500 {"problem", "solution", "answer", "subject",
// "level", "unique_id"}.
//
// The gold answer (task_row_answer):
//   - "answer" as a string, or a number as its source text ("answer": 42 is "42");
//   - in a GSM8K row ("question"), the text after "#### " when there is one (trimmed,
//     commas removed: upstream's extraction); an answer without "#### " is taken whole;
//   - absent (or null): no gold. The row still loads (sample/eval write it ungraded);
//     grpo and rehearsal, whose reward needs a gold, refuse it. Any other type is an error.
// Images (Qwen2.5-VL; TRL's "images" list or "image" string of paths): a string prompt gets
// one <|vision_start|><|image_pad|><|vision_end|> per image before its question, a message
// prompt names them by {"type": "image"} parts; the ids hold one pad per image, which the
// caller expands to the image's token count (data/prompt_images.h: the processor's grid).
// task_problems_load joins relative paths to the file's folder.
// The reference solution: "solution" (MATH), or a GSM8K row's whole "answer" (its worked
// solution ending in "#### n"); NULL otherwise.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "base/json.h"
#include "task/prompt.h"
#include "tokenizer/tokenizer.h"

typedef struct task_prompt_opts {
    task_style style;      // TASK_STYLE_PLAIN for data/'s prompts format
    const char *suffix;    // appended to string prompts after the style's (NULL: none)
    const tok_chat *chat;  // NULL: plain text (the few-shot styles ignore it)
    int vocab;             // > 0: every prompt id must be below it
} task_prompt_opts;

typedef struct task_problem {
    long line;          // 1-based line in the file (0 when built from a row)
    char *prompt_json;  // the prompt as a data row for training: a JSON string (the user
                        // content: question + suffix) or the message list, compact
    char *text;         // the rendered prompt: what the model sees
    int32_t *ids;       // encode(text), one piece
    int len;
    char *answer;       // gold answer; NULL: none
    char *solution;     // reference solution; NULL: none
    char *subject;      // NULL when absent
    int level;          // -1 when absent
    int n_images;       // the row's images (see above), 0 when none
    char **images;      // [n_images] paths
} task_problem;

// The gold answer of a row (see above) into *out (malloc'd, NULL when the row has none).
int task_row_answer(const json *row, char **out, tm_error *err);

// The gold of a graded row (`temper grade`, eval --from-samples): "gold" (a string, or a
// number as its source text) when present, else task_row_answer's rule.
int task_row_gold(const json *row, char **out, tm_error *err);

// Builds a problem from a parsed row. Errors carry no file:line (the loader adds them).
int task_problem_from_json(tok_tokenizer *t, const json *row, const task_prompt_opts *o, task_problem *p, tm_error *err);
void task_problem_free(task_problem *p);

// The first limit (<= 0: all) rows of a JSONL file; blank lines skipped; errors are
// "path:line: reason".
int task_problems_load(tok_tokenizer *t, const char *path, const task_prompt_opts *o, int limit, task_problem **out,
                       int *n, tm_error *err);
void task_problems_free(task_problem *ps, int n);
