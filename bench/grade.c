// grade bench: answer extraction + equality over the MATH-500 gold solutions, one
// thread. Prints "grade: <items/s>" and a detail line.
//   build/bench/grade [--data math500/test.jsonl] [--seconds 3]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "cli/flags.h"
#include "reward/math_answer.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *data = NULL;
    double seconds = 3;
    flag fl[] = {
        {"data", FLAG_STR, &data, "MATH-500 test.jsonl (default: ../shared/data or /work/shared/data)"},
        {"seconds", FLAG_FLOAT, &seconds, "time to run, in seconds (whole passes over the data)"},
    };
    char *pos[1];
    int npos = 0;
    int fr = flags_parse("grade", "[--data F] [--seconds S]", fl, 2, argc, argv, pos, &npos);
    if (fr) return fr == 1 ? 0 : 2;
    const char *cands[] = {data, "../shared/data/math500/test.jsonl", "../../shared/data/math500/test.jsonl",
                           "/work/shared/data/math500/test.jsonl"};
    io_lines r;
    tm_error err;
    int opened = 0;
    for (int i = 0; i < 4 && !opened; i++)
        if (cands[i] && !io_lines_open(&r, cands[i], &err)) opened = 1;
    if (!opened) { fprintf(stderr, "grade: MATH-500 data not found (--data)\n"); return 1; }
    // load everything first: the bench times grading, not JSON parsing
    int n = 0, cap = 0;
    char **sol = NULL, **gold = NULL;
    char *line;
    long len;
    while ((len = io_lines_next(&r, &line)) >= 0) {
        json_doc *d = json_parse(line, (size_t)len, &err);
        if (!d) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 512;
            sol = realloc(sol, (size_t)cap * sizeof *sol);
            gold = realloc(gold, (size_t)cap * sizeof *gold);
        }
        sol[n] = strdup(json_get_str(json_root(d), "solution", ""));
        gold[n] = strdup(json_get_str(json_root(d), "answer", ""));
        n++;
        json_doc_free(d);
    }
    io_lines_close(&r);
    if (!n) { fprintf(stderr, "grade: no items\n"); return 1; }

    math_extract_opts xo;
    math_extract_opts_default(&xo);
    math_equal_opts eo;
    math_equal_opts_default(&eo);
    double *per = malloc((size_t)n * sizeof *per);  // per-item time of the last pass
    long items = 0;
    int equal = 0, verbatim = 0;
    double t0 = now_seconds(), t;
    do {
        equal = verbatim = 0;
        for (int i = 0; i < n; i++) {
            double a = now_seconds();
            size_t s, l;
            int ok = 0;
            if (math_extract(sol[i], strlen(sol[i]), &xo, &s, &l, NULL)) {
                char *pred = strndup(sol[i] + s, l);
                ok = math_answer_equal(pred, gold[i], &eo);
                verbatim += !strcmp(pred, gold[i]);
                free(pred);
            }
            equal += ok;
            per[i] = now_seconds() - a;
        }
        items += n;
        t = now_seconds();
    } while (t - t0 < seconds);
    double rate = (double)items / (t - t0);
    // Every gold solution's boxed answer is the gold string itself, so the pass above
    // mostly takes the verifier's fast path (equal after normalization). Wrong answers
    // take the full path (parse both, compare by type, evaluate): grade each solution
    // against the next item's gold too, to show that cost.
    long items2 = 0;
    int equal2 = 0;
    double u0 = now_seconds(), u;
    do {
        equal2 = 0;
        for (int i = 0; i < n; i++) {
            size_t s, l;
            if (math_extract(sol[i], strlen(sol[i]), &xo, &s, &l, NULL)) {
                char *pred = strndup(sol[i] + s, l);
                equal2 += math_answer_equal(pred, gold[(i + 1) % n], &eo);
                free(pred);
            }
        }
        items2 += n;
        u = now_seconds();
    } while (u - u0 < seconds);
    qsort(per, (size_t)n, sizeof *per, cmp_double);
    printf("grade: %.0f items/s\n", rate);
    printf("  %d MATH-500 solutions x %ld passes, %d/%d equal to gold (%d extracted verbatim), per item p50 %.1f us, p99 %.1f us, max %.1f us\n",
           n, items / n, equal, n, verbatim, per[n / 2] * 1e6, per[(n * 99) / 100] * 1e6, per[n - 1] * 1e6);
    printf("  against the next item's gold (wrong answers, full parse and compare): %.0f items/s, %d/%d equal\n",
           (double)items2 / (u - u0), equal2, n);
    for (int i = 0; i < n; i++) { free(sol[i]); free(gold[i]); }
    free(sol);
    free(gold);
    free(per);
    return 0;
}
