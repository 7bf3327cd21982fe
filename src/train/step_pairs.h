// train/step_pairs: Step-DPO's data pipeline (papers.md §3.2), `temper step-pairs`.
//
// THE JUDGE IS THE VERIFIER, NOT GPT-4. The paper asks GPT-4o which step of a wrong
// solution is the first wrong one. Here the first wrong step is found by the policy
// itself and the exact verifier (reward/math_answer): from each step prefix, sample
// continuations and check whether any reaches the gold answer. The first prefix from
// which none does marks the wrong step: its last step. (This is a Monte Carlo estimate:
// with few continuations a right step can look wrong; --num-locate trades cost for it.)
//
// INPUT: problems and the model, not a `temper sample` file. The paper's solutions start
// with an opener after the assistant header ("Let's think step by step.\nStep 1:"), which a
// `temper sample` prompt (a user message with a suffix) cannot hold, and the same model
// must continue every step prefix anyway; so the command samples the solutions itself.
//
// Per problem ({"prompt"|"question"|"problem", "answer"}, the `prompts` format):
//   1. error collection: rep solutions from  R + opener,  where R is the question (plus
//      --prompt-suffix) rendered by the chat template as `temper dpo --step-wise` renders
//      a Step-DPO "prompt", and opener = "Let's think step by step.\nStep 1:"; the wrong
//      ones (verifier) are kept, at most max_per_question of them;
//   2. steps: T = opener + solution is cut at every "\nStep <digits>:" label (the paper's
//      split on "\nStep "): step k is the text after its label up to the next "\n";
//      prefix_k = T up to and including the label of step k+1 (prefix_0 = the opener);
//   3. localization: num_locate continuations from each prefix_k, k = 0..K-1, graded on
//      prefix + continuation; the wrong step w is the first k >= 1 from which none is
//      correct, or K when every prefix has a correct continuation (the final step is
//      what went wrong). When none from prefix_0 is correct the problem is out of the
//      policy's reach: no pair (counted as unsolvable);
//   4. rectification: num_correct more continuations from prefix_{w-1}; the correct ones
//      (and the correct localization continuations from that prefix) give chosen = their
//      first step (text.split("\nStep ")[0]), deduplicated, not equal to the rejected;
//   5. rows, the format `temper dpo --step-wise` reads (data/ DATA_STEP):
//        {"prompt": question + suffix, "initial_reason_steps": prefix_{w-1},
//         "chosen": step, "rejected": step w of the wrong solution,
//         "full_chosen": prefix_{w-1} + the correct continuation, "full_rejected": T,
//         "answer": gold, "wrong_step": w, "num_steps": K}
//      one row per distinct chosen step (one wrong step can give several pairs).
//
// Contexts are encoded as one piece (R + prefix), exactly as data/ encodes a Step-DPO
// prompt, so the pairs train on the ids the model was sampled from.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "base/json.h"
#include "reward/math_answer.h"
#include "rollout/rollout.h"

typedef struct step_pairs_opts {
    int rep;               // solutions sampled per problem (paper: 2)
    int max_per_question;  // wrong solutions examined per problem (paper: 1)
    int num_locate;        // continuations per step prefix for localization
    int num_correct;       // extra continuations from the prefix before the wrong step (paper: 20)
    int max_steps;         // solutions with more steps are skipped
    int max_new_tokens;
    int batch;             // trajectories in flight
    sample_params sp;      // paper: temperature 0.8, top_p 0.95
    uint64_t seed;
    const char *opener;    // "Let's think step by step.\nStep 1:"
    const int *stop_ids;
    int nstop_ids;
} step_pairs_opts;
void step_pairs_opts_default(step_pairs_opts *o);
int step_pairs_opts_check(const step_pairs_opts *o, tm_error *err);

typedef struct step_pairs_stats {
    long problems, solutions, wrong, examined, located, unsolvable, too_many_steps, no_correction, pairs;
    long rollouts;         // continuations sampled (solutions included)
} step_pairs_stats;

// Cuts text at its "\nStep <digits>:" labels. start[k] / end[k] (k = 0..K-1) are step k+1's
// content [start, end); step 1 starts at first (the opener's length). Returns K (at most
// cap; K > cap means more steps than fit, only cap filled).
int step_pairs_split(const char *text, size_t len, size_t first, size_t *start, size_t *end, int cap);

// The sampler and verifier of a mining run. be decodes (the model, or a scripted test
// model); t encodes contexts and decodes continuations.
typedef struct step_pairs_ctx {
    const rollout_backend *be;
    tok_tokenizer *tok;
    const step_pairs_opts *o;
    math_extract_opts eo;
    math_equal_opts qo;
    uint64_t calls;        // rollout calls so far: each gets its own seed
} step_pairs_ctx;
void step_pairs_ctx_init(step_pairs_ctx *c, const rollout_backend *be, tok_tokenizer *t, const step_pairs_opts *o);

// Steps 2-5 for one wrong solution (the text after R + opener): appends its rows to out.
// *wrong_step gets w (0 when unsolvable or skipped).
int step_pairs_locate(step_pairs_ctx *c, const char *question, const char *rendered, const char *gold,
                      const char *solution, sbuf *out, int *wrong_step, step_pairs_stats *st, tm_error *err);
// Steps 1-5 for one problem.
int step_pairs_problem(step_pairs_ctx *c, const char *question, const char *rendered, const char *gold, sbuf *out,
                       step_pairs_stats *st, tm_error *err);

typedef struct step_pairs_args {
    const char *model, *data, *out, *chat_template, *prompt_suffix;
    step_pairs_opts o;
    int limit;             // first N problems (0: all)
    int seed;
    int quiet;
} step_pairs_args;
void step_pairs_args_default(step_pairs_args *a);
// Loads the model and the problems, mines every problem, writes out atomically.
int step_pairs_run(const step_pairs_args *a, step_pairs_stats *st, tm_error *err);
