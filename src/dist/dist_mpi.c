// dist over MPI: point-to-point messages (MPI_Isend / MPI_Irecv) polled against a
// deadline, so that a missing rank is named instead of waited for forever, and sums
// taken in rank order by the owner of each slice (dist.h). The only file built with
// mpicc's flags; without TEMPER_HAVE_MPI every function reports that MPI is absent.
#include "dist/dist_internal.h"

#ifndef TEMPER_HAVE_MPI

int dist_mpi_available(void) { return 0; }
int dist_mpi_init(int *rank, int *size, tm_error *err) { return tm_fail(err, "temper was built without MPI (no mpicc at build time)"); }
void dist_mpi_finalize(void) {}
void dist_mpi_abort(int code) {}
int dist_mpi_sum(void *x, size_t n, int f64, int scatter_only, int gather_only, double timeout, tm_error *err) {
    return tm_fail(err, "temper was built without MPI");
}
int dist_mpi_broadcast(void *buf, size_t bytes, int root, double timeout, tm_error *err) {
    return tm_fail(err, "temper was built without MPI");
}
int dist_mpi_allgather(const void *mine, void *all, size_t bytes, double timeout, tm_error *err) {
    return tm_fail(err, "temper was built without MPI");
}
int dist_mpi_gather_bytes(const void *mine, size_t bytes, char **all, size_t *lens, double timeout, tm_error *err) {
    return tm_fail(err, "temper was built without MPI");
}

#else

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist/dist.h"

static MPI_Comm comm = MPI_COMM_NULL;
static int me, world;

// A collective's requests, each with the rank at its other end.
enum { MAX_REQ = 4096 };
typedef struct reqs {
    MPI_Request r[MAX_REQ];
    int peer[MAX_REQ];
    int n;
} reqs;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int post_fail(tm_error *err, const char *what, int peer, int rc) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    return tm_fail(err, "dist: %s with rank %d failed on rank %d of %d: %s", what, peer, me, world, s);
}

static int isend(reqs *q, const void *buf, size_t bytes, int peer, int tag, const char *what, tm_error *err) {
    if (q->n == MAX_REQ) return tm_fail(err, "internal: dist: too many requests in %s", what);
    int rc = MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, tag, comm, &q->r[q->n]);
    if (rc != MPI_SUCCESS) return post_fail(err, what, peer, rc);
    q->peer[q->n++] = peer;
    return 0;
}

static int irecv(reqs *q, void *buf, size_t bytes, int peer, int tag, const char *what, tm_error *err) {
    if (q->n == MAX_REQ) return tm_fail(err, "internal: dist: too many requests in %s", what);
    int rc = MPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, tag, comm, &q->r[q->n]);
    if (rc != MPI_SUCCESS) return post_fail(err, what, peer, rc);
    q->peer[q->n++] = peer;
    return 0;
}

// Polls every request until all complete or the deadline passes; a timeout names the
// ranks whose messages never came (or were never taken).
static int wait_all(reqs *q, double timeout, const char *what, tm_error *err) {
    double deadline = now() + timeout;
    long nap = 0;  // ns: 0 while the wait is short, then doubling up to 1 ms
    for (long spin = 0;; spin++) {
        int pending = 0;
        for (int i = 0; i < q->n; i++) {
            if (q->r[i] == MPI_REQUEST_NULL) continue;
            int done = 0, rc = MPI_Test(&q->r[i], &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) return post_fail(err, what, q->peer[i], rc);
            pending += !done;
        }
        if (!pending) { q->n = 0; return 0; }
        if (spin > 200) {
            if (now() > deadline) break;
            // a waiting rank leaves its core to the others (ranks may share cores)
            nap = nap ? (nap < 1000000 ? 2 * nap : nap) : 10000;
            struct timespec ts = {0, nap};
            nanosleep(&ts, NULL);
        }
    }
    char names[256] = "";
    size_t at = 0;
    int seen[MAX_REQ] = {0}, count = 0;
    for (int i = 0; i < q->n; i++) {
        if (q->r[i] == MPI_REQUEST_NULL || seen[q->peer[i]]) continue;
        seen[q->peer[i]] = 1;
        if (count++ < 8 && at < sizeof names - 16) at += (size_t)snprintf(names + at, sizeof names - at, "%s%d", at ? ", " : "", q->peer[i]);
    }
    return tm_fail(err, "dist: %s timed out after %.0f s on rank %d of %d waiting for rank%s %s (TEMPER_DIST_TIMEOUT)", what, timeout, me,
                   world, count > 1 ? "s" : "", names);
}

int dist_mpi_available(void) { return 1; }

int dist_mpi_init(int *rank, int *size, tm_error *err) {
    int provided, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return tm_fail(err, "dist: MPI_Init failed (code %d)", rc);
    // errors come back as codes (reported, then the CLI aborts the job) instead of
    // MPI's default of killing the job from inside the library
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (MPI_Comm_dup(MPI_COMM_WORLD, &comm) != MPI_SUCCESS) return tm_fail(err, "dist: MPI_Comm_dup failed");
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &world);
    if (world > MAX_REQ / 4) return tm_fail(err, "dist: %d processes; at most %d are supported", world, MAX_REQ / 4);
    *rank = me;
    *size = world;
    return 0;
}

void dist_mpi_finalize(void) {
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    MPI_Finalize();
}

void dist_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code ? code : 1); }

enum { TAG_SCATTER = 11, TAG_GATHER = 12, TAG_BCAST = 13, TAG_ALLGATHER = 14, TAG_LEN = 15, TAG_BYTES = 16 };

// Elements of one slice per round: a round's scratch (W slices) stays near 2^24 elements,
// so a 7B gradient goes in rounds of 64 MB, not as one 28 GB copy.
// TEMPER_DIST_ROUND (elements) overrides it: tests/cli/test_mpi.sh makes rounds small
// to cover the multi-round path on small arrays.
static size_t round_elems(void) {
    const char *v = getenv("TEMPER_DIST_ROUND");
    if (v && atol(v) > 0) return (size_t)atol(v);
    size_t r = ((size_t)1 << 24) / (size_t)world;
    return r < 65536 ? 65536 : r;
}

int dist_mpi_sum(void *x, size_t n, int f64, int scatter_only, int gather_only, double timeout, tm_error *err) {
    size_t es = f64 ? sizeof(double) : sizeof(float);
    char *base = x;
    // the slices are those of the whole array (dist_slice(n, r)), cut into rounds
    size_t lo_all[MAX_REQ / 4 + 1];
    for (int r = 0; r <= world; r++) lo_all[r] = (size_t)((unsigned __int128)n * (unsigned)r / (unsigned)world);
    size_t longest = 0;
    for (int r = 0; r < world; r++)
        if (lo_all[r + 1] - lo_all[r] > longest) longest = lo_all[r + 1] - lo_all[r];
    size_t cap = round_elems(), rounds = (longest + cap - 1) / cap;
    size_t step = rounds ? (longest + rounds - 1) / rounds : 0;
    char *scratch = NULL;
    if (!gather_only && rounds) {
        scratch = malloc(es * step * (size_t)world);
        if (!scratch) return tm_fail(err, "dist: out of memory for an all-reduce round of %zu elements", step * (size_t)world);
    }
    reqs *q = malloc(sizeof *q);
    if (!q) { free(scratch); return tm_fail(err, "out of memory"); }
    q->n = 0;
    int rc = -1;
    for (size_t k = 0; k < rounds; k++) {
        // round k covers elements [lo_all[r] + k·step, min(+step, lo_all[r+1])) of every slice r
        size_t off[MAX_REQ / 4], len[MAX_REQ / 4];
        for (int r = 0; r < world; r++) {
            size_t a = lo_all[r] + k * step, b = lo_all[r + 1];
            off[r] = a < b ? a : b;
            len[r] = a < b ? (b - a < step ? b - a : step) : 0;
        }
        if (!gather_only) {
            // everyone's copy of my slice in, my copies of theirs out
            for (int r = 0; r < world; r++) {
                if (r == me || !len[me]) continue;
                if (irecv(q, scratch + es * step * (size_t)r, es * len[me], r, TAG_SCATTER, "all-reduce", err)) goto out;
            }
            for (int r = 0; r < world; r++) {
                if (r == me || !len[r]) continue;
                if (isend(q, base + es * off[r], es * len[r], r, TAG_SCATTER, "all-reduce", err)) goto out;
            }
            if (wait_all(q, timeout, "all-reduce", err)) goto out;
            // the sum in rank order, element by element
            if (f64) {
                double *mine = (double *)(base + es * off[me]);
                const double *src[MAX_REQ / 4];
                for (int r = 0; r < world; r++) src[r] = r == me ? mine : (const double *)(scratch + es * step * (size_t)r);
                for (size_t i = 0; i < len[me]; i++) {
                    double acc = src[0][i];
                    for (int r = 1; r < world; r++) acc += src[r][i];
                    mine[i] = acc;
                }
            } else {
                float *mine = (float *)(base + es * off[me]);
                const float *src[MAX_REQ / 4];
                for (int r = 0; r < world; r++) src[r] = r == me ? mine : (const float *)(scratch + es * step * (size_t)r);
                for (size_t i = 0; i < len[me]; i++) {
                    float acc = src[0][i];
                    for (int r = 1; r < world; r++) acc += src[r][i];
                    mine[i] = acc;
                }
            }
        }
        if (!scatter_only) {
            for (int r = 0; r < world; r++) {
                if (r == me || !len[r]) continue;
                if (irecv(q, base + es * off[r], es * len[r], r, TAG_GATHER, "all-gather", err)) goto out;
            }
            if (len[me])
                for (int r = 0; r < world; r++) {
                    if (r == me) continue;
                    if (isend(q, base + es * off[me], es * len[me], r, TAG_GATHER, "all-gather", err)) goto out;
                }
            if (wait_all(q, timeout, scatter_only ? "reduce-scatter" : "all-reduce", err)) goto out;
        }
    }
    rc = 0;
out:
    free(scratch);
    free(q);
    return rc;
}

#define CHUNK ((size_t)1 << 30)

int dist_mpi_broadcast(void *buf, size_t bytes, int root, double timeout, tm_error *err) {
    reqs *q = malloc(sizeof *q);
    if (!q) return tm_fail(err, "out of memory");
    q->n = 0;
    int rc = -1;
    for (size_t at = 0; at < bytes || (at == 0 && bytes == 0); at += CHUNK) {
        size_t len = bytes - at < CHUNK ? bytes - at : CHUNK;
        if (me == root) {
            for (int r = 0; r < world; r++)
                if (r != root && isend(q, (char *)buf + at, len, r, TAG_BCAST, "broadcast", err)) goto out;
        } else if (irecv(q, (char *)buf + at, len, root, TAG_BCAST, "broadcast", err)) goto out;
        if (wait_all(q, timeout, "broadcast", err)) goto out;
        if (bytes == 0) break;
    }
    rc = 0;
out:
    free(q);
    return rc;
}

int dist_mpi_allgather(const void *mine, void *all, size_t bytes, double timeout, tm_error *err) {
    if (bytes > CHUNK) return tm_fail(err, "internal: dist_allgather of %zu bytes per rank (at most %zu)", bytes, CHUNK);
    reqs *q = malloc(sizeof *q);
    if (!q) return tm_fail(err, "out of memory");
    q->n = 0;
    int rc = -1;
    memmove((char *)all + bytes * (size_t)me, mine, bytes);
    for (int r = 0; r < world; r++) {
        if (r == me) continue;
        if (irecv(q, (char *)all + bytes * (size_t)r, bytes, r, TAG_ALLGATHER, "all-gather", err)) goto out;
        if (isend(q, (const char *)all + bytes * (size_t)me, bytes, r, TAG_ALLGATHER, "all-gather", err)) goto out;
    }
    rc = wait_all(q, timeout, "all-gather", err);
out:
    free(q);
    return rc;
}

int dist_mpi_gather_bytes(const void *mine, size_t bytes, char **all, size_t *lens, double timeout, tm_error *err) {
    *all = NULL;
    if (bytes > CHUNK) return tm_fail(err, "internal: dist_gather_bytes of %zu bytes from one rank (at most %zu)", bytes, CHUNK);
    reqs *q = malloc(sizeof *q);
    uint64_t *len = calloc((size_t)world, sizeof *len);
    if (!q || !len) { free(q); free(len); return tm_fail(err, "out of memory"); }
    q->n = 0;
    int rc = -1;
    uint64_t my = bytes;
    if (me != 0) {
        if (isend(q, &my, sizeof my, 0, TAG_LEN, "gather", err) || (bytes && isend(q, mine, bytes, 0, TAG_BYTES, "gather", err)) ||
            wait_all(q, timeout, "gather", err))
            goto out;
        rc = 0;
        goto out;
    }
    len[0] = my;
    for (int r = 1; r < world; r++)
        if (irecv(q, &len[r], sizeof len[r], r, TAG_LEN, "gather", err)) goto out;
    if (wait_all(q, timeout, "gather", err)) goto out;
    size_t total = 0;
    for (int r = 0; r < world; r++) {
        if (len[r] > CHUNK) { tm_fail(err, "dist: gather: rank %d sends %llu bytes (at most %zu)", r, (unsigned long long)len[r], CHUNK); goto out; }
        total += len[r];
    }
    char *buf = malloc(total ? total : 1);
    if (!buf) { tm_fail(err, "out of memory gathering %zu bytes", total); goto out; }
    memcpy(buf, mine, bytes);
    size_t at = len[0];
    for (int r = 1; r < world; r++) {
        if (len[r] && irecv(q, buf + at, len[r], r, TAG_BYTES, "gather", err)) { free(buf); goto out; }
        at += len[r];
    }
    if (wait_all(q, timeout, "gather", err)) { free(buf); goto out; }
    if (lens)
        for (int r = 0; r < world; r++) lens[r] = len[r];
    *all = buf;
    rc = 0;
out:
    free(q);
    free(len);
    return rc;
}

#endif
