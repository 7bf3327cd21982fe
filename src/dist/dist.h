// dist: the collective layer for data parallelism. Rank, world size, all-reduce (sum),
// broadcast, all-gather, gather to rank 0, barrier. Two implementations behind one API:
// MPI (src/dist/dist_mpi.c, built when `mpicc` is present: TEMPER_HAVE_MPI) and a
// single process, where every collective is a copy or nothing.
//
// MPI is started only when the process was launched by an MPI launcher (mpirun / srun
// set OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK): `temper` run by hand never calls
// MPI_Init. dist_init is idempotent; dist_rank / dist_size before it are 0 / 1.
//
// Determinism: the sums are NOT MPI_Allreduce's (whose order MPI leaves open). Every
// element's sum is taken in rank order, ((x_0 + x_1) + x_2) + ..., by the rank that owns
// that element's slice (a direct reduce-scatter: slice r of every rank goes to rank r),
// then the sums are all-gathered. A run is therefore bit-reproducible for a given rank
// count, and each rank sends and receives 2·(W-1)/W of the array, as a ring does.
//
// Failures never hang: every wait polls against a deadline (TEMPER_DIST_TIMEOUT
// seconds, default 1800, NCCL's default) and a timeout names the ranks that did not
// answer. The caller (the CLI) then calls dist_abort, which ends the whole job; when a
// rank dies, mpirun itself ends the job and names the rank.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

// Starts MPI when launched by an MPI launcher (and the build has MPI). Errors when the
// launcher asks for more than one process but this build has no MPI: N copies of a
// single-process run would each write the same output.
int dist_init(tm_error *err);
// MPI_Finalize when dist_init started MPI (after a barrier).
void dist_finalize(void);
// Ends every process of the job (MPI_Abort) when running under MPI; else does nothing.
void dist_abort(int code);

int dist_rank(void);
int dist_size(void);
// 1 when built with MPI support (mpicc found at build time).
int dist_have_mpi(void);

// In-place sums over ranks, in rank order (see above); every rank gets the same bits.
int dist_allreduce_sum_f32(float *x, size_t n, tm_error *err);
int dist_allreduce_sum_f64(double *x, size_t n, tm_error *err);
// ZeRO-1's reduce-scatter: the same rank-ordered sum, but only this rank's slice
// dist_slice(n, rank) of x gets it (the rest of x is left as it was).
int dist_reduce_scatter_sum_f32(float *x, size_t n, tm_error *err);
// Every rank's slice dist_slice(n, r) of x sent to all: the all-gather after ZeRO-1.
int dist_allgather_slices_f32(float *x, size_t n, tm_error *err);
// Slice r of n elements over the world: [n·r/W, n·(r+1)/W).
void dist_slice(size_t n, int r, size_t *lo, size_t *hi);

// bytes of buf from rank root to every rank.
int dist_broadcast(void *buf, size_t bytes, int root, tm_error *err);
// Every rank's `bytes` of mine into all[rank * bytes] on every rank.
int dist_allgather(const void *mine, void *all, size_t bytes, tm_error *err);
// Variable-length gather to rank 0: *all (malloc'ed, rank order, concatenated) and
// lens[W] on rank 0; other ranks get *all = NULL. lens may be NULL.
int dist_gather_bytes(const void *mine, size_t bytes, char **all, size_t *lens, tm_error *err);
int dist_barrier(tm_error *err);

// Seconds spent inside collectives so far (for the benchmark's all-reduce time).
double dist_comm_seconds(void);
