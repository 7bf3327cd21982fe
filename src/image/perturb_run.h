// image/perturb_run: `temper perturb` over a folder of images or a dataset's images.
//   --images DIR   every .png/.jpg/.jpeg in DIR (sorted by name) is one example; the
//                  perturbed image goes to OUT/<same name>; partners are drawn from DIR
//   --data F.jsonl the images a dataset's rows name (TRL's vision columns: `images`, a
//                  list of paths, or `image`, one path; relative paths are read from
//                  F's folder) are the set, each perturbed once, written to
//                  OUT/images/<name>; OUT/<F's name> is F with those columns rewritten
//                  to the new files (paths relative to OUT). Other columns are kept.
// Originals are never overwritten: OUT must not be the input folder and no output
// path may be an input file. Each example's draws come from img_example_rng(seed,
// index), index = its place in the set. draws_out (optional, for the oracle test):
// a JSONL line per example with its draws; the noise op's samples go to a raw
// little-endian float64 file beside it (named in the line).
#pragma once
#include <stdint.h>
#include "image/perturb.h"

typedef struct img_perturb_args {
    img_op op;
    const char *images, *data, *out, *draws_out;
    uint64_t seed;
    img_perturb_opts opts;
} img_perturb_args;

typedef struct img_perturb_summary {
    int n_images, n_rows;
    char data_out[4096];   // the rewritten dataset (--data)
} img_perturb_summary;

int img_perturb_run(const img_perturb_args *a, img_perturb_summary *s, tm_error *err);
