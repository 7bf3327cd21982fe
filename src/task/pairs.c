// task/pairs: answer classes by the verifier, and the pair order (see pairs.h).
#include "task/pairs.h"
#include <stdlib.h>
#include <string.h>
#include "task/grade.h"

int task_side_order(const char *const *answers, const char *const *texts, int n, const math_equal_opts *qo, rng *R,
                    int *out) {
    int m = n ? n : 1, nout = 0, nc = 0;
    int *cls = malloc((size_t)m * sizeof *cls), *cnt = calloc((size_t)m, sizeof *cnt), *rep = malloc((size_t)m * sizeof *rep),
        *used = calloc((size_t)m, sizeof *used);
    if (!cls || !cnt || !rep || !used) { free(cls); free(cnt); free(rep); free(used); return -1; }
    for (int k = 0; k < n; k++) {
        int c = 0;
        while (c < nc && !task_answers_equal(answers[rep[c]], answers[k], (void *)qo)) c++;
        if (c == nc) rep[nc++] = k;
        cls[k] = c;
        cnt[c]++;
    }
    for (int t = 0; t < nc; t++) {
        int best = -1;
        for (int c = 0; c < nc; c++) if (!used[c] && (best < 0 || cnt[c] > cnt[best])) best = c;
        used[best] = 1;
        int start = nout;
        for (int k = 0; k < n; k++) {
            if (cls[k] != best) continue;
            int dup = 0;
            for (int j = start; j < nout && !dup; j++) dup = !strcmp(texts[out[j]], texts[k]);
            if (!dup) out[nout++] = k;
        }
        for (int j = nout - 1; j > start; j--) {  // Fisher-Yates within the class
            int r = start + (int)rng_below(R, (uint64_t)(j - start + 1));
            int t2 = out[j]; out[j] = out[r]; out[r] = t2;
        }
    }
    free(cls); free(cnt); free(rep); free(used);
    return nout;
}

void task_pair_at(long p, int nc, int nw, int *i, int *j) {
    // pair p = (i, (i + d) mod nw) with i = p mod nc, d = p / nc
    *i = (int)(p % nc);
    *j = (int)((*i + p / nc) % nw);
}
