// rollout/metrics.c: see metrics.h.
#include "rollout/metrics.h"
#include <math.h>
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

void wilson_interval(int x, int n, double z, double *lo, double *hi) {
    if (n <= 0) { *lo = 0, *hi = 1; return; }
    double p = (double)x / n, z2 = z * z;
    double den = 1 + z2 / n, mid = (p + z2 / (2.0 * n)) / den;
    double half = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / den;
    *lo = fmax(0, mid - half), *hi = fmin(1, mid + half);
}

void paired_gain_interval(int n11, int n10, int n01, int n00, double z, double *lo, double *hi) {
    double n = (double)n11 + n10 + n01 + n00;
    if (n <= 0) { *lo = -1, *hi = 1; return; }
    int x1 = n11 + n10, x2 = n11 + n01, N = n11 + n10 + n01 + n00;
    double p1 = x1 / n, p2 = x2 / n, l1, u1, l2, u2;
    wilson_interval(x1, N, z, &l1, &u1);
    wilson_interval(x2, N, z, &l2, &u2);
    // phi: the correlation of the two outcomes over the items, with Newcombe's
    // continuity correction (a positive ad - bc is lowered by n/2, not below 0);
    // 0 when a margin is empty
    double m = (double)x1 * (N - x1) * (double)x2 * (N - x2), A = (double)n11 * n00 - (double)n10 * n01, phi = 0;
    if (m > 0) phi = (A > n / 2 ? A - n / 2 : A < 0 ? A : 0) / sqrt(m);
    double d = p2 - p1, a1 = p1 - l1, b1 = u1 - p1, a2 = p2 - l2, b2 = u2 - p2;
    *lo = d - sqrt(fmax(0, a2 * a2 + b1 * b1 - 2 * phi * a2 * b1));
    *hi = d + sqrt(fmax(0, b2 * b2 + a1 * a1 - 2 * phi * b2 * a1));
}
