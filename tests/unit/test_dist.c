// dist: the collectives (src/dist/dist.h). Run alone it checks the single-process
// implementation (every collective a copy or nothing); tests/cli/test_mpi.sh also runs it
// under `mpirun -np 3`, where it checks the MPI one across ranks: the sums are taken in
// rank order, element by element, so they equal ((x0 + x1) + x2) computed here bit for
// bit, on sizes that leave slices empty (n < ranks) and uneven. Every rank checks; rank 0
// prints each check with the number of ranks that failed it.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dist/dist.h"
#include "test.h"

static int W, me;

// A check every rank evaluates: it passes when it holds on all of them.
static void check_all(int ok, const char *name) {
    double bad = !ok;
    tm_error e;
    if (dist_allreduce_sum_f64(&bad, 1, &e)) bad = -1;
    if (me == 0) CHECK(bad == 0, "%s (%d rank%s; failed on %g)", name, W, W > 1 ? "s" : "", bad);
}

// Values whose float sum depends on the order: large and small of both signs.
static float val32(int r, size_t i) { return (float)((i % 3 == 0 ? 1e8 : 1.0) * ((r + i) % 2 ? -1.0 : 1.0) * (1.0 + 0.37 * r) + 1e-3 * (double)i); }
static double val64(int r, size_t i) { return (i % 5 == 0 ? 1e17 : 1.0) * ((r + i) % 2 ? -1.0 : 1.0) * (1.0 + 0.11 * r) + 1e-7 * (double)i; }

static void sums(size_t n) {
    tm_error e;
    float *x = malloc(sizeof(float) * (n ? n : 1));
    double *d = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = val32(me, i), d[i] = val64(me, i);
    int rc = dist_allreduce_sum_f32(x, n, &e) || dist_allreduce_sum_f64(d, n, &e);
    int ok = !rc;
    for (size_t i = 0; i < n && ok; i++) {
        float s = val32(0, i);
        double t = val64(0, i);
        for (int r = 1; r < W; r++) s += val32(r, i), t += val64(r, i);
        ok = memcmp(&s, &x[i], sizeof s) == 0 && memcmp(&t, &d[i], sizeof t) == 0;
    }
    char name[128];
    snprintf(name, sizeof name, "all-reduce of %zu floats and doubles = the rank-order sum, bit for bit", n);
    check_all(ok, name);

    // ZeRO-1's pair: the reduce-scatter leaves this rank's slice summed and the rest as it
    // was; the all-gather of the slices then gives every rank the whole sum
    for (size_t i = 0; i < n; i++) x[i] = val32(me, i);
    rc = dist_reduce_scatter_sum_f32(x, n, &e);
    size_t lo, hi;
    dist_slice(n, me, &lo, &hi);
    ok = !rc;
    for (size_t i = 0; i < n && ok; i++) {
        float s = val32(0, i);
        for (int r = 1; r < W; r++) s += val32(r, i);
        float want = i >= lo && i < hi ? s : val32(me, i);
        ok = memcmp(&want, &x[i], sizeof want) == 0;
    }
    snprintf(name, sizeof name, "reduce-scatter of %zu floats: own slice [%zu, %zu) summed, the rest untouched", n, lo, hi);
    check_all(ok, name);
    ok = !dist_allgather_slices_f32(x, n, &e);
    for (size_t i = 0; i < n && ok; i++) {
        float s = val32(0, i);
        for (int r = 1; r < W; r++) s += val32(r, i);
        ok = memcmp(&s, &x[i], sizeof s) == 0;
    }
    snprintf(name, sizeof name, "all-gather of the %zu summed slices: the whole sum everywhere", n);
    check_all(ok, name);
    free(x);
    free(d);
}

int main(void) {
    tm_error e;
    if (dist_init(&e)) { printf("not ok - dist_init: %s\n", e.msg); return 1; }
    W = dist_size(), me = dist_rank();
    if (me > 0 && !freopen("/dev/null", "w", stdout)) return 1;  // rank 0 reports for all
    if (!getenv("OMPI_COMM_WORLD_SIZE")) CHECK(W == 1 && me == 0, "without a launcher: one process, rank 0");

    // slices cover [0, n) in rank order, disjoint, sizes differing by at most one
    int ok = 1;
    size_t ns[] = {0, 1, 2, 7, 1000};
    for (int k = 0; k < 5; k++) {
        size_t at = 0;
        for (int r = 0; r < W; r++) {
            size_t lo, hi;
            dist_slice(ns[k], r, &lo, &hi);
            ok &= lo == at && hi >= lo && hi - lo <= ns[k] / (size_t)W + 1;
            at = hi;
        }
        ok &= at == ns[k];
    }
    check_all(ok, "dist_slice: the slices tile [0, n) in rank order");

    sums(0);
    sums(1);
    sums(2);
    sums(100003);

    // broadcast from the last rank
    char buf[64];
    snprintf(buf, sizeof buf, "from rank %d", me);
    ok = !dist_broadcast(buf, sizeof buf, W - 1, &e);
    char want[64];
    snprintf(want, sizeof want, "from rank %d", W - 1);
    check_all(ok && !strcmp(buf, want), "broadcast from the last rank reaches every rank");

    // all-gather of one int per rank
    int *all = malloc(sizeof(int) * (size_t)W), mine = 100 + me;
    ok = !dist_allgather(&mine, all, sizeof mine, &e);
    for (int r = 0; r < W && ok; r++) ok = all[r] == 100 + r;
    free(all);
    check_all(ok, "all-gather: every rank's value, in rank order");

    // variable-length gather to rank 0: rank r sends r + 1 bytes 'a' + r
    char send[64];
    memset(send, 'a' + me, (size_t)me + 1);
    char *got = NULL;
    size_t *lens = calloc((size_t)W, sizeof *lens);
    ok = !dist_gather_bytes(send, (size_t)me + 1, &got, lens, &e);
    if (ok && me == 0) {
        size_t at = 0;
        for (int r = 0; r < W && ok; r++) {
            ok = lens[r] == (size_t)r + 1;
            for (size_t i = 0; i < lens[r] && ok; i++) ok = got[at + i] == 'a' + r;
            at += lens[r];
        }
    } else if (ok) ok = got == NULL;
    free(got);
    free(lens);
    check_all(ok, "gather of variable lengths: rank 0 gets them concatenated in rank order");

    check_all(!dist_barrier(&e), "barrier");
    if (W > 1) check_all(dist_comm_seconds() > 0, "time in collectives is counted");
    int rc = test_done();
    dist_finalize();
    return rc;
}
