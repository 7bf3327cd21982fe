// rollout/metrics.c: see metrics.h.
#include "rollout/metrics.h"
#include <stdlib.h>

double pass_at_k(int n, int c, int k) {
    if (k < 1 || k > n || c < 0) return 0.0;
    if (n - c < k) return 1.0;
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / i;
    return 1.0 - prod;
}

int majority_vote(const char *const *answers, int k, int (*eq)(const char *, const char *, void *), void *ud) {
    int *rep = malloc(sizeof(int) * (size_t)(k > 0 ? k : 1)), *cnt = calloc((size_t)(k > 0 ? k : 1), sizeof(int));
    int ng = 0, best = -1;
    if (!rep || !cnt) { free(rep); free(cnt); return -2; }
    for (int i = 0; i < k; i++) {
        if (!answers[i]) continue;
        int g = 0;
        while (g < ng && !eq(answers[rep[g]], answers[i], ud)) g++;
        if (g == ng) rep[ng++] = i;
        cnt[g]++;
    }
    for (int g = 0; g < ng; g++)
        if (best < 0 || cnt[g] > cnt[best]) best = g;  // strict: earlier group wins ties
    int r = best < 0 ? -1 : rep[best];
    free(rep);
    free(cnt);
    return r;
}
