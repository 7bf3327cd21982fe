// dist internals: the MPI backend (dist_mpi.c, the one file compiled with mpicc's flags)
// as dist.c calls it. Without TEMPER_HAVE_MPI these fail with "built without MPI".
#pragma once
#include <stddef.h>
#include "base/error.h"

int dist_mpi_available(void);
int dist_mpi_init(int *rank, int *size, tm_error *err);
void dist_mpi_finalize(void);
void dist_mpi_abort(int code);
// f64: elements are doubles (else floats). scatter_only: stop after the reduce-scatter.
// gather_only: skip the sum, all-gather the slices as they are.
int dist_mpi_sum(void *x, size_t n, int f64, int scatter_only, int gather_only, double timeout, tm_error *err);
int dist_mpi_broadcast(void *buf, size_t bytes, int root, double timeout, tm_error *err);
int dist_mpi_allgather(const void *mine, void *all, size_t bytes, double timeout, tm_error *err);
int dist_mpi_gather_bytes(const void *mine, size_t bytes, char **all, size_t *lens, double timeout, tm_error *err);
