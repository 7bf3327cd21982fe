// data/prompt_images: see prompt_images.h.
#include "data/prompt_images.h"
#include <stdlib.h>
#include <string.h>
#include "image/image.h"

void data_prompt_images_free(data_prompt_images *d) {
    free(d->pixel_values); free(d->grid_thw); free(d->ids);
    memset(d, 0, sizeof *d);
}

int data_prompt_images_append(data_prompt_images *d, const img_patches *p, tm_error *err) {
    if (d->n_images && p->dim != d->dim) return tm_fail(err, "image patches of width %d after %d", p->dim, d->dim);
    float *pv = realloc(d->pixel_values, sizeof(float) * ((size_t)(d->n_patches + p->n) * (size_t)p->dim));
    if (!pv) return tm_fail(err, "out of memory");
    d->pixel_values = pv;
    int *g = realloc(d->grid_thw, sizeof(int) * 3 * (size_t)(d->n_images + 1));
    if (!g) return tm_fail(err, "out of memory");
    d->grid_thw = g;
    memcpy(pv + (size_t)d->n_patches * p->dim, p->pixel_values, sizeof(float) * (size_t)p->n * (size_t)p->dim);
    memcpy(g + 3 * d->n_images, p->grid_thw, sizeof(int) * 3);
    d->n_patches += p->n;
    d->dim = p->dim;
    d->n_images++;
    return 0;
}

int data_prompt_images_load(tok_tokenizer *t, const img_qwen2vl_config *c, int pad_id, const task_problem *p,
                            data_prompt_images *out, tm_error *err) {
    memset(out, 0, sizeof *out);
    if (!p->n_images) return 0;
    if (!c) return tm_fail(err, "the prompt has images but the model has no vision tower (a Qwen2.5-VL model reads them)");
    int32_t tpad = tok_token_id(t, "<|image_pad|>");
    if (tpad < 0) return tm_fail(err, "the prompt has images but the tokenizer has no <|image_pad|> token");
    if (tpad != pad_id) return tm_fail(err, "the tokenizer's <|image_pad|> is id %d but the model's image_token_id is %d", tpad, pad_id);
    int rc = 0, merge2 = c->merge_size * c->merge_size;
    int *count = malloc(sizeof(int) * (size_t)p->n_images);
    if (!count) return tm_fail(err, "out of memory");
    for (int k = 0; k < p->n_images && !rc; k++) {
        img_rgb im = {0};
        img_patches pt = {0};
        tm_error e = {0};
        if (img_load(&im, p->images[k], &e) || img_qwen2vl_process(c, &im, &pt, &e)) rc = tm_fail(err, "image %s: %s", p->images[k], e.msg);
        if (!rc) rc = data_prompt_images_append(out, &pt, err);
        if (!rc) count[k] = pt.grid_thw[0] * pt.grid_thw[1] * pt.grid_thw[2] / merge2;
        img_patches_free(&pt);
        img_free(&im);
    }
    if (!rc) {
        int pads = 0;
        for (int i = 0; i < p->len; i++) pads += p->ids[i] == pad_id;
        if (pads != p->n_images) rc = tm_fail(err, "the prompt has %d image(s) but %d <|image_pad|> placeholder(s)", p->n_images, pads);
    }
    tok_ids ids = {0};
    if (!rc && tok_expand_image_pads(p->ids, (size_t)p->len, pad_id, count, p->n_images, &ids, err)) rc = -1;
    if (!rc && ids.failed) rc = tm_fail(err, "out of memory");
    if (!rc) out->ids = ids.v, out->len = (int)ids.n;
    else tok_ids_free(&ids);
    free(count);
    if (rc) data_prompt_images_free(out);
    return rc;
}

int data_prompt_images_of_example(const data_example *ex, const img_qwen2vl_config *c, data_prompt_images *out,
                                  tm_error *err) {
    memset(out, 0, sizeof *out);
    for (int k = 0; k < ex->n_images; k++) {
        img_patches pt;
        if (data_example_pixels(ex, c, k, &pt, err)) { data_prompt_images_free(out); return -1; }
        int rc = data_prompt_images_append(out, &pt, err);
        img_patches_free(&pt);
        if (rc) { data_prompt_images_free(out); return -1; }
    }
    return 0;
}
