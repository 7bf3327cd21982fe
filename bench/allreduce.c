// allreduce: the cost of dist_allreduce_sum_f32 alone (bench/bench_dp.sh runs it under
// mpirun -np 2): N floats summed over the ranks in rank order (src/dist/dist.h), the
// median of --reps calls after a warm-up, as one JSON line from rank 0.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist/dist.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t n = 1 << 22;
    int reps = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--floats")) n = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    tm_error e;
    if (dist_init(&e)) { fprintf(stderr, "allreduce: %s\n", e.msg); return 1; }
    float *x = malloc(sizeof(float) * n);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!x || !t) return 1;
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 7) * 1e-3f;
    for (int r = -1; r < reps; r++) {
        if (dist_barrier(&e)) { fprintf(stderr, "allreduce: %s\n", e.msg); return 1; }
        double t0 = now();
        if (dist_allreduce_sum_f32(x, n, &e)) { fprintf(stderr, "allreduce: %s\n", e.msg); return 1; }
        if (r >= 0) t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    double med = t[reps / 2];
    // bytes each rank sends (and receives): 2 (W - 1) / W of the array
    int w = dist_size();
    double wire = 2.0 * (w - 1) / w * 4.0 * (double)n;
    if (dist_rank() == 0)
        printf("{\"ranks\": %d, \"floats\": %zu, \"ms\": %.3f, \"wire_bytes_per_rank\": %.0f, \"gbytes_per_s\": %.3f}\n", w, n, 1e3 * med, wire,
               wire / med / 1e9);
    free(x);
    free(t);
    dist_finalize();
    return 0;
}
