// train/packing: how examples are grouped into the rows a micro-batch takes.
//
// Without packing a row is one example. With TRL's `--packing` (SFTConfig packing=True,
// packing_strategy "bfd"), whole examples are packed once, before training, into rows of at
// most `cap` tokens by best-fit decreasing: longest first, each into the fullest row it still
// fits, a new row when none has room. An epoch then shuffles the rows, and a micro-batch takes
// per_device_train_batch_size rows, so it holds as many examples as fit. Attention never
// crosses examples inside a row (the packed batch keeps each sequence's own positions, as TRL's
// padding-free packing does), so packing changes which examples share a step, not the math of
// any one of them.
#pragma once
#include "base/error.h"

typedef struct train_rows {
    int n;          // rows
    int *start;     // row r holds examples ex[start[r] .. start[r + 1])
    int *ex;
    int max_per_row;
} train_rows;

// One row per example, in order.
int train_rows_single(int nex, train_rows *out, tm_error *err);
// Best-fit-decreasing rows of at most cap tokens; len[i] > cap gets a row of its own.
int train_rows_pack(const int *len, int nex, int cap, train_rows *out, tm_error *err);
void train_rows_free(train_rows *r);
