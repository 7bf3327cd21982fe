// tests/unit/test.h: the test protocol shared by every test program and script.
// Each check prints one line: "ok - name" or "not ok - name: detail".
// scripts/run-tests counts those lines across all programs; a program's exit status
// is nonzero when any of its checks failed.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int test_failures_, test_count_;

#define CHECK(cond, ...)                                                        \
    do {                                                                       \
        test_count_++;                                                         \
        if (cond) {                                                            \
            printf("ok - ");                                                   \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        } else {                                                               \
            test_failures_++;                                                  \
            printf("not ok - ");                                               \
            printf(__VA_ARGS__);                                               \
            printf("  (%s:%d: %s)\n", __FILE__, __LINE__, #cond);             \
        }                                                                      \
        fflush(stdout);                                                        \
    } while (0)

// Relative error of two arrays: max|a-b| / max(max|b|, floor).
static inline double test_rel_err(const float *a, const float *b, long n, double floor_) {
    double md = 0, mb = floor_;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return md / mb;
}

static inline int test_done(void) {
    fprintf(stderr, "%d checks, %d failed\n", test_count_, test_failures_);
    return test_failures_ ? 1 : 0;
}
