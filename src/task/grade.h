// task/grade: one grade(completion, gold) for sample, eval, eval --from-samples and
// `temper grade`: the verifier's answer extraction, then exact equality with the gold.
// Also the answer equality that groups answers for maj@k and `temper pairs`.
#pragma once
#include <stddef.h>
#include "base/error.h"
#include "reward/math_answer.h"

typedef struct task_grade_result {
    char *extracted;      // the extracted answer (malloc'd); NULL: none found
    int correct;          // extracted and equal to the gold
    math_verdict verdict; // MATH_EQUAL, MATH_MISMATCH, ... (MATH_MISMATCH when no answer or no gold)
} task_grade_result;

// Grades completion[0..len) against gold (NULL: ungraded, correct = 0). Returns 0, or
// -1 with err filled when out of memory.
int task_grade(const char *completion, size_t len, const char *gold, const math_extract_opts *eo,
               const math_equal_opts *qo, task_grade_result *r, tm_error *err);
// Grades an already-extracted answer pred[0..len); a NUL inside pred or gold (gold_len
// bytes) is a parse failure, never equal. Returns 0 or -1 (out of memory).
int task_grade_answer(const char *pred, size_t len, const char *gold, size_t gold_len, const math_equal_opts *qo,
                      math_verdict *v, tm_error *err);
void task_grade_result_free(task_grade_result *r);

// Answer grouping for maj@k and pairs: b joins a's group when the verifier says b
// equals a (ud: const math_equal_opts *, NULL for defaults). Two missing answers
// (NULL) are one group; NULL never equals an answer.
int task_answers_equal(const char *a, const char *b, void *ud);
