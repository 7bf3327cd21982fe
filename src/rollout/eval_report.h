// rollout/eval_report: the numbers `temper eval` reports, from graded samples.
//
// Input: np problems (gold answer or NULL when ungraded, subject or NULL, level or -1)
// and n graded samples of each, sample s of problem g at [g * n + s]. Output: the
// metric fields of summary.json, appended to an sbuf as JSON members
// ("pass@1": ..., no braces), in this order:
//   pass@k and maj@k for k = 1, 2, 4, ... < n, and n: unbiased pass@k averaged over the
//     graded problems; maj@k = the first k samples' majority answer (grouped by eq, the
//     verifier's equality) is correct;
//   mean_completion_tokens, no_answer_fraction over all samples; problems,
//     graded_problems, samples;
//   by_subject / by_level (when any problem has one): {"problems", "pass@1",
//     "maj@n"} per value, over the graded problems, in first-seen order.
#pragma once
#include "base/error.h"
#include "base/json.h"

typedef struct eval_problem {
    const char *gold;     // NULL: not graded (no answer in the data)
    const char *subject;  // NULL when absent
    int level;            // -1 when absent
} eval_problem;

typedef struct eval_sample {
    int correct;
    const char *extracted;  // NULL: no answer found
    int num_tokens;         // completion tokens (model and tool tokens)
} eval_sample;

int eval_report_json(const eval_problem *ps, int np, int n, const eval_sample *s,
                     int (*eq)(const char *a, const char *b, void *ud), void *ud, sbuf *js, tm_error *err);
