// dist: the public collective API (dist.h). One process: every collective is a copy or
// nothing, so a trainer calls them unconditionally. Under an MPI launcher: dist_mpi.c.
#include "dist/dist.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist/dist_internal.h"

static int g_inited, g_mpi, g_rank, g_size = 1;
static double g_comm_seconds;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The launcher's process count: OpenMPI's mpirun, MPICH / Slurm PMI, PMIx. 0: not launched by one.
static int launcher_size(void) {
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : 1;
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

int dist_have_mpi(void) { return dist_mpi_available(); }

int dist_init(tm_error *err) {
    if (g_inited) return 0;
    g_inited = 1;
    int n = launcher_size();
    if (n == 0) return 0;  // run by hand: one process, MPI never touched
    if (!dist_mpi_available()) {
        if (n > 1)
            return tm_fail(err, "launched as %d processes (mpirun), but this temper was built without MPI: install libopenmpi-dev and "
                                "rebuild (make), or run without mpirun", n);
        return 0;
    }
    if (dist_mpi_init(&g_rank, &g_size, err)) return -1;
    g_mpi = 1;
    return 0;
}

void dist_finalize(void) {
    if (!g_mpi) return;
    tm_error e;
    dist_barrier(&e);
    dist_mpi_finalize();
    g_mpi = 0;
    g_rank = 0;
    g_size = 1;
}

void dist_abort(int code) {
    if (g_mpi) dist_mpi_abort(code);
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }

static double timeout_seconds(void) {
    const char *v = getenv("TEMPER_DIST_TIMEOUT");
    double t = v && *v ? atof(v) : 0;
    return t > 0 ? t : 1800;
}

void dist_slice(size_t n, int r, size_t *lo, size_t *hi) {
    unsigned __int128 w = (unsigned)g_size;
    *lo = (size_t)((unsigned __int128)n * (unsigned)r / w);
    *hi = (size_t)((unsigned __int128)n * (unsigned)(r + 1) / w);
}

// Every collective below: one process returns at once; MPI time is counted.
#define TIMED(call)                                  \
    do {                                             \
        double t0_ = now();                          \
        int rc_ = (call);                            \
        g_comm_seconds += now() - t0_;               \
        return rc_;                                  \
    } while (0)

int dist_allreduce_sum_f32(float *x, size_t n, tm_error *err) {
    if (g_size == 1) return 0;
    TIMED(dist_mpi_sum(x, n, 0, 0, 0, timeout_seconds(), err));
}

int dist_allreduce_sum_f64(double *x, size_t n, tm_error *err) {
    if (g_size == 1) return 0;
    TIMED(dist_mpi_sum(x, n, 1, 0, 0, timeout_seconds(), err));
}

int dist_reduce_scatter_sum_f32(float *x, size_t n, tm_error *err) {
    if (g_size == 1) return 0;
    TIMED(dist_mpi_sum(x, n, 0, 1, 0, timeout_seconds(), err));
}

int dist_allgather_slices_f32(float *x, size_t n, tm_error *err) {
    if (g_size == 1) return 0;
    TIMED(dist_mpi_sum(x, n, 0, 0, 1, timeout_seconds(), err));
}

int dist_broadcast(void *buf, size_t bytes, int root, tm_error *err) {
    if (g_size == 1) return 0;
    TIMED(dist_mpi_broadcast(buf, bytes, root, timeout_seconds(), err));
}

int dist_allgather(const void *mine, void *all, size_t bytes, tm_error *err) {
    if (g_size == 1) {
        memmove(all, mine, bytes);
        return 0;
    }
    TIMED(dist_mpi_allgather(mine, all, bytes, timeout_seconds(), err));
}

int dist_gather_bytes(const void *mine, size_t bytes, char **all, size_t *lens, tm_error *err) {
    if (g_size == 1) {
        *all = malloc(bytes ? bytes : 1);
        if (!*all) return tm_fail(err, "out of memory");
        memcpy(*all, mine, bytes);
        if (lens) lens[0] = bytes;
        return 0;
    }
    TIMED(dist_mpi_gather_bytes(mine, bytes, all, lens, timeout_seconds(), err));
}

int dist_barrier(tm_error *err) {
    if (g_size == 1) return 0;
    char one = 0, *all = malloc((size_t)g_size);
    if (!all) return tm_fail(err, "out of memory");
    int rc = dist_allgather(&one, all, 1, err);
    free(all);
    return rc;
}

double dist_comm_seconds(void) { return g_comm_seconds; }
