// rollout/metrics: what `temper eval` reports from n graded samples per problem.
#pragma once

// Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k) for c correct of n
// samples, computed as a product (no overflow): 1 - prod_{i=n-c+1}^{n} (1 - k/i).
// 1 when n - c < k. Requires 1 <= k <= n.
double pass_at_k(int n, int c, int k);

// Majority vote over answers[0..k) (NULL = no answer, no vote). Answers are grouped
// by eq (e.g. the math verifier's equality, checked against each group's first
// member). The largest group wins; a tie goes to the group whose first member comes
// first. Returns the index of the winning group's first member, -1 when no answer,
// -2 when out of memory.
int majority_vote(const char *const *answers, int k, int (*eq)(const char *a, const char *b, void *ud), void *ud);

// Wilson's score interval of a proportion, x successes in n trials, at the normal
// quantile z (1.959964 for 95%). n <= 0: [0, 1].
void wilson_interval(int x, int n, double z, double *lo, double *hi);

// The interval of the gain p2 - p1 of two proportions measured on the same n items
// (paired: model 1 and model 2 graded on the same problems), Newcombe's square-and-add
// interval built on the two Wilson intervals with the correction for the correlation of
// the pairs (Newcombe 1998, "Improved confidence intervals for the difference between
// binomial proportions based on paired data", method 10). The 2x2 table: n11 both
// right, n10 only the first (model 1) right, n01 only the second right, n00 neither;
// p2 - p1 = (n01 - n10) / n. Narrower than two unpaired intervals when the models
// agree on most items, as a model and its fine-tune do. n = 0: [-1, 1].
void paired_gain_interval(int n11, int n10, int n01, int n00, double z, double *lo, double *hi);
