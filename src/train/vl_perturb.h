// train/vl_perturb: --perturb concat|mixup|rotate on the fly (Vision Matters): each epoch a
// training example's images are perturbed anew, then run through the Qwen2-VL processor, and
// the example's image-pad runs re-expanded to the perturbed images' token counts.
//
// The set the perturbations draw partners from is the training data's images, each path
// once, in the order the examples name them: the set `temper perturb --data F.jsonl` uses.
// Image i of the set in epoch e is img_perturb_one(op, seed + e, set, i): with one --data file
// (no weights), epoch e's images are exactly what `temper perturb OP --data F --seed S+e` writes.
// The draw depends on (seed, epoch, image) only: not on the order, the batch or the rank.
// Every sequence of an example (DPO's chosen and rejected) sees the same perturbed images, as
// the paper's offline-perturbed folders give one image per prompt: the example's patches are
// made once per (example, epoch) and kept for its next sequence.
#pragma once
#include "data/data.h"
#include "image/perturb.h"
#include "train/step.h"

typedef struct vl_perturb {
    img_op op;
    img_perturb_opts opts;
    uint64_t seed;
    const img_qwen2vl_config *icfg;
    int pad_id;
    char **set;               // image paths, each once
    int n, cap;
    int *ex_start, *ex_img;   // example k's images are set[ex_img[ex_start[k] .. ex_start[k + 1])]
    int nex, cap_ex, cap_img;
    // the prepared example: its perturbed images' patches and token counts
    int cur_k, cur_epoch;     // -1: none
    img_patches *pt;
    int *counts, n_pt, cap_pt, grow;
    int32_t *ids;             // scratch: one re-expanded sequence
    uint8_t *mask;
    int cap_tok;
} vl_perturb;

// op: concat, mixup or rotate. Examples are then added in the trainer's order.
int vl_perturb_init(vl_perturb *p, const char *op, uint64_t seed, const img_qwen2vl_config *icfg, int pad_id,
                    tm_error *err);
int vl_perturb_add_example(vl_perturb *p, const data_example *d, tm_error *err);
void vl_perturb_free(vl_perturb *p);
// The most image tokens one perturbed image can take (the processor's max_pixels).
int vl_perturb_max_tokens(const vl_perturb *p);
// The length of sequence q of example k (d) with its images perturbed for epoch.
int vl_perturb_len(vl_perturb *p, int k, const data_example *d, int q, int epoch, tm_error *err);
// Adds sequence q of example k (d) to t with its images perturbed for epoch. ref: the
// per-token reference log-probs of the re-expanded sequence (vl_perturb_len long), or NULL.
int vl_perturb_add(vl_perturb *p, trainer *t, int k, const data_example *d, int q, int epoch, const float *ref,
                   tm_error *err);
