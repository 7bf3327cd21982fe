// train/vl_perturb: see vl_perturb.h.
#include "train/vl_perturb.h"
#include <stdlib.h>
#include <string.h>

int vl_perturb_init(vl_perturb *p, const char *op, uint64_t seed, const img_qwen2vl_config *icfg, int pad_id,
                    tm_error *err) {
    memset(p, 0, sizeof *p);
    if (img_op_parse(op, &p->op) || (p->op != IMG_OP_CONCAT && p->op != IMG_OP_MIXUP && p->op != IMG_OP_ROTATE))
        return tm_fail(err, "--perturb: unknown perturbation '%s' (concat, mixup, rotate)", op);
    img_perturb_defaults(&p->opts);
    p->seed = seed;
    p->icfg = icfg;
    p->pad_id = pad_id;
    if (!(p->ex_start = calloc(1, sizeof(int)))) return tm_fail(err, "out of memory");
    p->cap_ex = 0;
    p->cur_k = p->cur_epoch = -1;
    return 0;
}

void vl_perturb_free(vl_perturb *p) {
    for (int i = 0; i < p->n; i++) free(p->set[i]);
    for (int j = 0; j < p->n_pt; j++) img_patches_free(&p->pt[j]);
    free(p->set), free(p->ex_start), free(p->ex_img), free(p->ids), free(p->mask), free(p->pt), free(p->counts);
    memset(p, 0, sizeof *p);
}

static int set_index(vl_perturb *p, const char *path, tm_error *err) {
    for (int i = p->n - 1; i >= 0; i--)  // a row's images are usually new: look from the end
        if (!strcmp(p->set[i], path)) return i;
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        char **s = realloc(p->set, sizeof(char *) * (size_t)cap);
        if (!s) return tm_fail(err, "out of memory");
        p->set = s, p->cap = cap;
    }
    if (!(p->set[p->n] = strdup(path))) return tm_fail(err, "out of memory");
    return p->n++;
}

int vl_perturb_add_example(vl_perturb *p, const data_example *d, tm_error *err) {
    if (p->nex + 1 >= p->cap_ex) {
        int cap = p->cap_ex ? 2 * p->cap_ex : 64;
        int *s = realloc(p->ex_start, sizeof(int) * (size_t)(cap + 1));
        if (!s) return tm_fail(err, "out of memory");
        p->ex_start = s, p->cap_ex = cap;
    }
    int at = p->ex_start[p->nex];
    if (at + d->n_images > p->cap_img) {
        int cap = 2 * (at + d->n_images) + 16;
        int *s = realloc(p->ex_img, sizeof(int) * (size_t)cap);
        if (!s) return tm_fail(err, "out of memory");
        p->ex_img = s, p->cap_img = cap;
    }
    for (int j = 0; j < d->n_images; j++) {
        int i = set_index(p, d->image_paths[j], err);
        if (i < 0) return -1;
        p->ex_img[at + j] = i;
    }
    p->ex_start[++p->nex] = at + d->n_images;
    return 0;
}

int vl_perturb_max_tokens(const vl_perturb *p) {
    long f = (long)p->icfg->patch_size * p->icfg->merge_size;
    return (int)(p->icfg->max_pixels / (f * f));
}

// Perturbs example k's images for epoch (once: a second sequence of the example reuses them).
static int prepare(vl_perturb *p, int k, const data_example *d, int epoch, tm_error *err) {
    if (p->cur_k == k && p->cur_epoch == epoch) return 0;
    for (int j = 0; j < p->n_pt; j++) img_patches_free(&p->pt[j]);
    p->n_pt = 0, p->grow = 0, p->cur_k = -1;
    if (d->n_images > p->cap_pt) {
        img_patches *pt = realloc(p->pt, sizeof *pt * (size_t)d->n_images);
        if (pt) p->pt = pt;
        int *c = realloc(p->counts, sizeof(int) * (size_t)d->n_images);
        if (c) p->counts = c;
        if (!pt || !c) return tm_fail(err, "out of memory");
        p->cap_pt = d->n_images;
    }
    const int merge2 = p->icfg->merge_size * p->icfg->merge_size;
    int rc = 0;
    for (int j = 0; j < d->n_images && !rc; j++) {
        img_rgb im = {0};
        img_draw dr = {0};
        memset(&p->pt[j], 0, sizeof p->pt[j]);
        p->n_pt = j + 1;  // freed by the next prepare or vl_perturb_free, whatever happens below
        rc = img_perturb_one(&im, &dr, p->op, &p->opts, p->seed + (uint64_t)epoch, (const char *const *)p->set, p->n,
                             p->ex_img[p->ex_start[k] + j], err);
        if (!rc) rc = img_qwen2vl_process(p->icfg, &im, &p->pt[j], err);
        if (!rc) {
            const int *g = d->grid_thw + 3 * j, *h = p->pt[j].grid_thw;
            p->counts[j] = h[0] * h[1] * h[2] / merge2;
            p->grow += p->counts[j] - g[0] * g[1] * g[2] / merge2;
        }
        img_draw_free(&dr);
        img_free(&im);
    }
    if (rc) return -1;
    p->cur_k = k, p->cur_epoch = epoch;
    return 0;
}

int vl_perturb_len(vl_perturb *p, int k, const data_example *d, int q, int epoch, tm_error *err) {
    if (!d->n_images) return d->seq[q].len;
    return prepare(p, k, d, epoch, err) ? -1 : d->seq[q].len + p->grow;
}

int vl_perturb_add(vl_perturb *p, trainer *t, int k, const data_example *d, int q, int epoch, const float *ref,
                   tm_error *err) {
    const data_seq *s = &d->seq[q];
    if (!d->n_images) return trainer_add(t, s->ids, s->mask, s->len, ref, NULL, err);
    if (prepare(p, k, d, epoch, err)) return -1;
    const int merge2 = p->icfg->merge_size * p->icfg->merge_size, len = s->len + p->grow;
    for (int j = 0; j < d->n_images; j++)
        if (trainer_add_images(t, 1, p->pt[j].pixel_values, p->pt[j].n, p->pt[j].dim, p->pt[j].grid_thw, err)) return -1;
    if (len > p->cap_tok) {
        int32_t *ids = realloc(p->ids, sizeof(int32_t) * (size_t)len);
        if (ids) p->ids = ids;
        uint8_t *mask = realloc(p->mask, (size_t)len);
        if (mask) p->mask = mask;
        if (!ids || !mask) return tm_fail(err, "out of memory");
        p->cap_tok = len;
    }
    // image j's run of old pads becomes counts[j] pads (prompt: mask 0)
    int o = 0;
    for (int i = 0, j = 0; i < s->len;) {
        if (s->ids[i] == p->pad_id && j < d->n_images) {
            const int *g = d->grid_thw + 3 * j;
            for (int c = 0; c < p->counts[j]; c++) p->ids[o] = p->pad_id, p->mask[o++] = 0;
            i += g[0] * g[1] * g[2] / merge2;
            j++;
            continue;
        }
        p->ids[o] = s->ids[i], p->mask[o++] = s->mask[i];
        i++;
    }
    return trainer_add(t, p->ids, p->mask, o, ref, NULL, err);
}
