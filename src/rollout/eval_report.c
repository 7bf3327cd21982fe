// rollout/eval_report.c: see eval_report.h.
#include "rollout/eval_report.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rollout/metrics.h"

// pass@k and maj@k of one problem's n samples into *pk, *mj; -1 when out of memory.
static int problem_scores(const eval_sample *s, int n, int k, int (*eq)(const char *, const char *, void *), void *ud,
                          const char **ans, double *pk, double *mj) {
    int c = 0;
    for (int i = 0; i < n; i++) c += s[i].correct, ans[i] = s[i].extracted;
    *pk = pass_at_k(n, c, k);
    int w = majority_vote(ans, k, eq, ud);
    if (w < -1) return -1;
    *mj = w >= 0 && s[w].correct;
    return 0;
}

static void put_num(sbuf *js, const char *key, double v, int first) {
    sbuf_puts(js, first ? "\n  \"" : ",\n  \"");
    sbuf_puts(js, key);
    sbuf_puts(js, "\": ");
    sbuf_json_float(js, v);
}

// by_subject (by_level = 0) or by_level (1): one entry per distinct value, first-seen order.
static int put_groups(const eval_problem *ps, int np, int n, const eval_sample *s, int by_level,
                      int (*eq)(const char *, const char *, void *), void *ud, const char **ans, char *seen, sbuf *js) {
    int any = 0;
    for (int g = 0; g < np; g++) any |= ps[g].gold && (by_level ? ps[g].level >= 0 : ps[g].subject != NULL);
    if (!any) return 0;
    sbuf_printf(js, ",\n  \"%s\": {", by_level ? "by_level" : "by_subject");
    memset(seen, 0, (size_t)np);
    int first = 1;
    for (int g = 0; g < np; g++) {
        if (seen[g] || !ps[g].gold || (by_level ? ps[g].level < 0 : !ps[g].subject)) continue;
        double p1 = 0, mj = 0;
        int cnt = 0;
        for (int h = g; h < np; h++) {
            if (!ps[h].gold || (by_level ? ps[h].level != ps[g].level : !ps[h].subject || strcmp(ps[h].subject, ps[g].subject)))
                continue;
            seen[h] = 1;
            cnt++;
            double a = 0, b = 0;
            if (problem_scores(s + (size_t)h * n, n, 1, eq, ud, ans, &a, &b)) return -1;
            p1 += a;
            if (problem_scores(s + (size_t)h * n, n, n, eq, ud, ans, &a, &b)) return -1;
            mj += b;
        }
        sbuf_puts(js, first ? "\n    " : ",\n    ");
        first = 0;
        if (by_level) sbuf_printf(js, "\"%d\"", ps[g].level);
        else sbuf_json_str(js, ps[g].subject, strlen(ps[g].subject));
        sbuf_printf(js, ": {\"problems\": %d, \"pass@1\": ", cnt);
        sbuf_json_float(js, p1 / cnt);
        sbuf_printf(js, ", \"maj@%d\": ", n);
        sbuf_json_float(js, mj / cnt);
        sbuf_puts(js, "}");
    }
    sbuf_puts(js, "\n  }");
    return 0;
}

int eval_report_json(const eval_problem *ps, int np, int n, const eval_sample *s,
                     int (*eq)(const char *, const char *, void *), void *ud, sbuf *js, tm_error *err) {
    if (np < 1 || n < 1) return tm_fail(err, "eval report: no samples");
    int ks[32], nk = 0;
    for (int k = 1; k < n && nk < 31; k *= 2) ks[nk++] = k;
    ks[nk++] = n;
    double passk[32] = {0}, majk[32] = {0};
    const char **ans = malloc(sizeof(char *) * (size_t)n);
    char *seen = malloc((size_t)np);
    if (!ans || !seen) { free(ans); free(seen); return tm_fail(err, "eval report: out of memory"); }
    long ntok = 0, noans = 0, nsamp = (long)np * n;
    int graded = 0, rc = 0;
    for (int g = 0; g < np && !rc; g++) {
        for (int i = 0; i < n; i++) ntok += s[(size_t)g * n + i].num_tokens, noans += !s[(size_t)g * n + i].extracted;
        if (!ps[g].gold) continue;
        graded++;
        for (int j = 0; j < nk && !rc; j++) {
            double pk = 0, mj = 0;
            rc = problem_scores(s + (size_t)g * n, n, ks[j], eq, ud, ans, &pk, &mj);
            passk[j] += pk, majk[j] += mj;
        }
    }
    char key[32];
    for (int j = 0; j < nk; j++) snprintf(key, sizeof key, "pass@%d", ks[j]), put_num(js, key, graded ? passk[j] / graded : 0.0, j == 0);
    for (int j = 0; j < nk; j++) snprintf(key, sizeof key, "maj@%d", ks[j]), put_num(js, key, graded ? majk[j] / graded : 0.0, 0);
    put_num(js, "mean_completion_tokens", (double)ntok / nsamp, 0);
    put_num(js, "no_answer_fraction", (double)noans / nsamp, 0);
    sbuf_printf(js, ",\n  \"problems\": %d,\n  \"graded_problems\": %d,\n  \"samples\": %ld", np, graded, nsamp);
    if (!rc) rc = put_groups(ps, np, n, s, 0, eq, ud, ans, seen, js);
    if (!rc) rc = put_groups(ps, np, n, s, 1, eq, ud, ans, seen, js);
    free(ans);
    free(seen);
    if (rc) return tm_fail(err, "eval report: out of memory");
    return sbuf_check(js, err);
}
