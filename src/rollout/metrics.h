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
