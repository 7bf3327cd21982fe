// task/pairs: the order in which `temper pairs` takes the samples of one prompt.
//
// The candidates of one side (the correct samples, or the incorrect ones) fall into
// answer classes by the verifier's equality (task_answers_equal: "0.5" and "1/2" are
// one class, as in maj@k; a missing answer is its own class). Classes go by frequency,
// ties by first appearance; within a class a seeded shuffle; an identical completion
// text is kept once. Pair k walks the diagonals of the chosen x rejected grid
// (task_pair_at), so the first pair is (top correct, top incorrect) and K up to
// n_chosen * n_rejected gives distinct pairs (cDPO / Light-R1 style).
#pragma once
#include "base/rng.h"
#include "reward/math_answer.h"

// answers[i] (NULL: none) and texts[i] of n candidates; writes their order (indices
// into 0..n) to out, identical texts once. Returns the count, -1 when out of memory.
int task_side_order(const char *const *answers, const char *const *texts, int n, const math_equal_opts *qo, rng *R,
                    int *out);
// Pair p of nc chosen x nw rejected candidates: *i (chosen), *j (rejected).
void task_pair_at(long p, int nc, int nw, int *i, int *j);
