// task/grade: extraction + equality, the one grading rule (see grade.h).
#include "task/grade.h"
#include <stdlib.h>
#include <string.h>

int task_grade_answer(const char *pred, size_t len, const char *gold, size_t gold_len, const math_equal_opts *qo,
                      math_verdict *v, tm_error *err) {
    *v = MATH_MISMATCH;
    if (!gold) return 0;
    // a NUL inside pred or gold would cut the C-string comparison short
    if (memchr(pred, 0, len) || memchr(gold, 0, gold_len)) { *v = MATH_PARSE_FAIL; return 0; }
    char *a = strndup(pred, len);
    if (!a) return tm_fail(err, "out of memory");
    int rc = math_answer_check(a, gold, qo, v, err);
    free(a);
    return rc;
}

int task_grade(const char *completion, size_t len, const char *gold, const math_extract_opts *eo,
               const math_equal_opts *qo, task_grade_result *r, tm_error *err) {
    memset(r, 0, sizeof *r);
    r->verdict = MATH_MISMATCH;
    size_t st, al;
    if (!math_extract(completion, len, eo, &st, &al, NULL)) return 0;
    if (!(r->extracted = strndup(completion + st, al))) return tm_fail(err, "out of memory");
    if (gold && task_grade_answer(r->extracted, al, gold, strlen(gold), qo, &r->verdict, err)) {
        task_grade_result_free(r);
        return -1;
    }
    r->correct = r->verdict == MATH_EQUAL;
    return 0;
}

void task_grade_result_free(task_grade_result *r) {
    free(r->extracted);
    memset(r, 0, sizeof *r);
}

int task_answers_equal(const char *a, const char *b, void *ud) {
    if (!a || !b) return a == b;
    return math_answer_equal(b, a, ud);
}
