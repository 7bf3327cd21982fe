// task/synth: a generator of GSM8K-style arithmetic word problems, the task of
// `temper demo` (and of anyone who wants a task with an exact verifier and no download).
//
// A problem is a little story about a person and their objects or money: a start
// sentence, then a chain of operations (add, take away, times as many, a simple
// fraction of, share equally, sell at a price, earn at a rate), then a question. The
// level is the number of arithmetic operations, 1 to 5. Every number in the story and
// every intermediate result is a positive integer below 1000 (fractions such as 3/4
// are operands whose denominators divide the amount).
//
// The solution (GSM8K's format): one sentence per operation, then "#### n". With
//   SYNTH_TOOLS_NONE        each step is written "12 * 3/4 = 9";
//   SYNTH_TOOLS_CALC        each step is a GSM8K calculator annotation, "12 * 3/4 =
//                           <<12*3/4=9>>9", so the rollout's calculator tool (which
//                           completes "<<12*3/4=" with "9>>") reproduces it exactly;
//   SYNTH_TOOLS_PYTHON      at levels 4 and 5, three turns (ToRA's format, as the rollout's
//                           python tool makes them): an assistant turn ending with a
//                           closed ```python block, the observation "```output\nn\n```"
//                           (a user turn in a chat template: rollout_obs_wrapper), and an
//                           assistant turn "The answer is n.\n#### n"; levels 1-3 are
//                           written as with NONE.
// With step labels (synth_opts.step_labels, `--step-labels`), a NONE or CALC solution is
// written in Step-DPO's format, which `temper step-pairs` cuts into steps:
//   "Let's think step by step.\nStep 1: <sentence>\nStep 2: <sentence>\n#### n".
// The same seed, split and level give the same questions whatever the tools.
//
// SPLITS. A template is the choice of start and operations and of each one's phrasing
// (its id reads like "has1.add0.frac1"); the number draw is the tuple of numbers in the
// story. Both are assigned to a split by a fixed hash (80% train, 10% validation, 10%
// test), and a problem of split s uses only a template AND a number draw that hash to s
// (rejection sampling). So no template and no number tuple is shared between splits,
// whatever the seeds (tests/unit/test_synth.c checks it).
//
// Rows (synth_row_json), one JSON object per line, readable by every command:
//   {"prompt": question, "completion": solution, "answer": "n", "level": L,
//    "split": "...", "tools": "...", "template": "...", "numbers": "12,3/4", "id": "..."}
// sft reads prompt/completion; sample, eval, grpo and the `prompts` format read
// prompt/answer (task/problems.h), eval reports per "level". The python variant's
// completion is a message list [assistant, user (the output), assistant], so the
// observation is masked in training as the rollout masks it.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "base/json.h"
#include "base/rng.h"

typedef enum { SYNTH_TOOLS_NONE = 0, SYNTH_TOOLS_CALC, SYNTH_TOOLS_PYTHON } synth_tools;
typedef enum { SYNTH_TRAIN = 0, SYNTH_VALIDATION, SYNTH_TEST } synth_split;
enum { SYNTH_MAX_LEVEL = 5 };

int synth_tools_from_name(const char *s);  // "none" | "calculator" | "python"; -1 if unknown
const char *synth_tools_name(synth_tools t);
int synth_split_from_name(const char *s);  // "train" | "validation" | "test"; -1 if unknown
const char *synth_split_name(synth_split s);

// The split a template id or a number draw belongs to (the fixed hash above).
synth_split synth_split_of(const char *key);

typedef struct synth_problem {
    int level;
    synth_split split;
    synth_tools tools;
    char template_id[96];
    char numbers[128];   // the number draw, e.g. "23,4,3/4"
    char *question;
    char *answer;        // the integer answer, e.g. "17"
    char *solution;      // the whole solution as plain text (python: the three turns joined as the
                         // rollout joins them without a chat template: "\n" + output block + "\n")
    int nturns;          // 1, or 3 for a python solution
    char *turns[3];      // assistant, user (the tool output), assistant
} synth_problem;

// One problem of the given level (1..SYNTH_MAX_LEVEL) and split, drawn from r;
// step_labels: Step-DPO's "Step k:" format (above).
int synth_generate(rng *r, int level, synth_split split, synth_tools tools, int step_labels, synth_problem *p,
                   tm_error *err);
void synth_problem_free(synth_problem *p);

// The problem as one JSONL row (see above), without the newline, appended to out.
void synth_row_json(const synth_problem *p, long index, sbuf *out);

typedef struct synth_opts {
    int level_lo, level_hi;  // levels lo..hi, round-robin (problem i has level lo + i % (hi - lo + 1))
    long n;                  // problems in all
    uint64_t seed;
    synth_tools tools;
    synth_split split;
    int step_labels;         // solutions as "Let's think step by step.\nStep 1: ..." (Step-DPO)
    const char *out;         // the JSONL file (written atomically), or "-" for stdout
} synth_opts;

// Writes o->n rows to o->out. The problems depend on seed, split and levels only.
int synth_write(const synth_opts *o, tm_error *err);
