// data/data_image: see data_image.h.
#include "data/data_image.h"
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "image/image.h"

#define VISION_PART "<|vision_start|><|image_pad|><|vision_end|>"

static int load_one(const data_opts *o, const char *rel, int k, img_patches *p, char **kept, tm_error *err) {
    char path[4096];
    if (rel[0] == '/' || !o->image_dir || !o->image_dir[0]) snprintf(path, sizeof path, "%s", rel);
    else if (!io_join(path, sizeof path, o->image_dir, rel)) return tm_fail(err, "image %d: path too long", k);
    img_rgb im = {0};
    tm_error e = {0};
    if (!(*kept = strdup(path))) return tm_fail(err, "out of memory");
    if (img_load(&im, path, &e)) return tm_fail(err, "image %d (%s): %s", k, path, e.msg);
    int rc = img_qwen2vl_process(o->image_cfg, &im, p, &e);
    img_free(&im);
    if (rc) return tm_fail(err, "image %d (%s): %s", k, path, e.msg);
    return 0;
}

int data_images_load(const json *row, const data_opts *o, data_example *ex, tm_error *err) {
    const json *v = json_get(row, "images");
    const char *col = "images";
    if (!v || v->type == JSON_NULL) v = json_get(row, "image"), col = "image";
    if (!v || v->type == JSON_NULL || (v->type == JSON_ARRAY && v->n == 0)) return 0;
    int n = v->type == JSON_ARRAY ? v->n : 1;
    if (v->type != JSON_ARRAY && v->type != JSON_STRING) return tm_fail(err, "\"%s\" must be a path or a list of paths", col);
    for (int k = 0; k < n; k++)
        if ((v->type == JSON_ARRAY ? v->items[k].type : v->type) != JSON_STRING)
            return tm_fail(err, "\"%s\"[%d] must be a path (a string)", col, k);
    if (!o->image_cfg)
        return tm_fail(err, "the row has \"%s\", which this command does not read with this model (sft, dpo, grpo, sample and eval read images, with a Qwen2.5-VL model)", col);
    img_patches *p = calloc((size_t)n, sizeof *p);
    ex->grid_thw = malloc(sizeof(int) * 3 * (size_t)n);
    ex->image_paths = calloc((size_t)n, sizeof(char *));
    ex->n_images = n;  // so that data_example_free frees the paths
    if (!p || !ex->grid_thw || !ex->image_paths) { free(p); return tm_fail(err, "out of memory"); }
    int rc = 0, total = 0;
    for (int k = 0; k < n && !rc; k++) {
        rc = load_one(o, v->type == JSON_ARRAY ? v->items[k].str : v->str, k, &p[k], &ex->image_paths[k], err);
        if (!rc) total += p[k].n;
    }
    if (!rc) {
        ex->n_patches = total;
        ex->patch_dim = p[0].dim;
        for (int k = 0; k < n; k++) memcpy(ex->grid_thw + 3 * k, p[k].grid_thw, sizeof(int) * 3);
    }
    for (int k = 0; k < n; k++) img_patches_free(&p[k]);
    free(p);
    return rc;
}

int data_example_pixels(const data_example *ex, const img_qwen2vl_config *c, int k, img_patches *p, tm_error *err) {
    memset(p, 0, sizeof *p);
    img_rgb im = {0};
    tm_error e = {0};
    if (img_load(&im, ex->image_paths[k], &e)) return tm_fail(err, "image %s: %s", ex->image_paths[k], e.msg);
    int rc = img_qwen2vl_process(c, &im, p, &e);
    img_free(&im);
    if (rc) return tm_fail(err, "image %s: %s", ex->image_paths[k], e.msg);
    if (memcmp(p->grid_thw, ex->grid_thw + 3 * k, sizeof(int) * 3)) {
        img_patches_free(p);
        return tm_fail(err, "image %s changed while training (its grid is not the one its tokens were made for)", ex->image_paths[k]);
    }
    return 0;
}

void data_images_prefix(int n_images, const char *s, size_t n, sbuf *out) {
    for (int k = 0; k < n_images; k++) sbuf_puts(out, VISION_PART);
    sbuf_put(out, s, n);
}

int data_images_expand(tok_tokenizer *t, const data_opts *o, data_example *ex, tm_error *err) {
    if (!ex->n_images) return 0;
    int32_t pad = tok_token_id(t, "<|image_pad|>");
    if (pad < 0) return tm_fail(err, "the row has images but the tokenizer has no <|image_pad|> token");
    if (pad != o->image_pad_id)
        return tm_fail(err, "the tokenizer's <|image_pad|> is id %d but the model's image_token_id is %d", pad, o->image_pad_id);
    int *count = malloc(sizeof(int) * (size_t)ex->n_images);
    if (!count) return tm_fail(err, "out of memory");
    int merge2 = o->image_cfg->merge_size * o->image_cfg->merge_size, added = 0;
    for (int k = 0; k < ex->n_images; k++) {
        const int *g = ex->grid_thw + 3 * k;
        count[k] = g[0] * g[1] * g[2] / merge2;
        added += count[k] - 1;
    }
    int rc = 0;
    for (int s = 0; s < ex->nseq && !rc; s++) {
        data_seq *q = &ex->seq[s];
        tok_ids out = {0};
        if (tok_expand_image_pads(q->ids, (size_t)q->len, pad, count, ex->n_images, &out, err)) { rc = -1; break; }
        uint8_t *mask = calloc(out.n + 1, 1);
        if (!mask || out.failed) { tok_ids_free(&out); free(mask); rc = tm_fail(err, "out of memory"); break; }
        // the mask follows the ids: an expanded pad run is prompt (0), other tokens keep theirs
        for (int i = 0, j = 0, k = 0; i < q->len; i++) {
            if (q->ids[i] == pad) { j += count[k++]; continue; }
            mask[j++] = q->mask[i];
        }
        free(q->ids);
        free(q->mask);
        q->ids = out.v;
        q->mask = mask;
        q->len = (int)out.n;
    }
    free(count);
    if (!rc) ex->prompt_len += added;
    return rc;
}
