// image/qwen2vl_processor: the Qwen2-VL image processor (see the header).
#include "image/qwen2vl_processor.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"

void img_qwen2vl_defaults(img_qwen2vl_config *c) {
    *c = (img_qwen2vl_config){
        .min_pixels = 56 * 56, .max_pixels = 28 * 28 * 1280,
        .patch_size = 14, .temporal_patch_size = 2, .merge_size = 2,
        .rescale_factor = 1.0 / 255,
        .image_mean = {0.48145466, 0.4578275, 0.40821073},
        .image_std = {0.26862954, 0.26130258, 0.27577711},
        .do_resize = 1, .do_rescale = 1, .do_normalize = 1,
    };
}

static int read_triple(const json *root, const char *key, double out[3], const char *path, tm_error *err) {
    const json *v = json_get(root, key);
    if (!v) return 0;
    if (v->type == JSON_NUMBER) {
        out[0] = out[1] = out[2] = v->num;
        return 0;
    }
    if (v->type != JSON_ARRAY || v->n != 3) return tm_fail(err, "%s: %s must be a number or a list of 3", path, key);
    for (int i = 0; i < 3; i++) {
        if (v->items[i].type != JSON_NUMBER) return tm_fail(err, "%s: %s[%d] must be a number", path, key, i);
        out[i] = v->items[i].num;
    }
    return 0;
}

int img_qwen2vl_load_config(img_qwen2vl_config *c, const char *path, tm_error *err) {
    json_doc *doc = json_parse_file(path, err);
    if (!doc) return -1;
    const json *r = json_root(doc);
    int rc = 0;
    if (r->type != JSON_OBJECT) {
        rc = tm_fail(err, "%s: not a JSON object", path);
        goto done;
    }
    const json *size = json_get(r, "size");
    if (size && size->type == JSON_OBJECT) {
        c->min_pixels = json_get_int(size, "shortest_edge", c->min_pixels);
        c->max_pixels = json_get_int(size, "longest_edge", c->max_pixels);
    }
    c->min_pixels = json_get_int(r, "min_pixels", c->min_pixels);  // these win, as in HF's __init__
    c->max_pixels = json_get_int(r, "max_pixels", c->max_pixels);
    c->patch_size = (int)json_get_int(r, "patch_size", c->patch_size);
    c->temporal_patch_size = (int)json_get_int(r, "temporal_patch_size", c->temporal_patch_size);
    c->merge_size = (int)json_get_int(r, "merge_size", c->merge_size);
    c->rescale_factor = json_get_num(r, "rescale_factor", c->rescale_factor);
    c->do_resize = json_get_bool(r, "do_resize", c->do_resize);
    c->do_rescale = json_get_bool(r, "do_rescale", c->do_rescale);
    c->do_normalize = json_get_bool(r, "do_normalize", c->do_normalize);
    if (read_triple(r, "image_mean", c->image_mean, path, err) || read_triple(r, "image_std", c->image_std, path, err)) {
        rc = -1;
        goto done;
    }
    if (c->patch_size < 1 || c->temporal_patch_size < 1 || c->merge_size < 1 || c->min_pixels < 0 ||
        c->max_pixels < 1 || c->min_pixels > c->max_pixels)
        rc = tm_fail(err, "%s: patch_size, temporal_patch_size, merge_size must be >= 1 and 0 <= min_pixels <= max_pixels", path);
done:
    json_doc_free(doc);
    return rc;
}

int img_qwen2vl_smart_resize(int height, int width, int factor, long min_pixels, long max_pixels,
                             int *out_h, int *out_w, tm_error *err) {
    int lo = height < width ? height : width, hi = height < width ? width : height;
    if (lo < 1 || (double)hi / lo > 200)
        return tm_fail(err, "image %dx%d: the aspect ratio must be at most 200", width, height);
    // Python's round() rounds halves to even; so does rint in the default rounding mode.
    long h = (long)rint((double)height / factor) * factor, w = (long)rint((double)width / factor) * factor;
    if (h * w > max_pixels) {
        double beta = sqrt((double)height * width / (double)max_pixels);
        h = (long)floor(height / beta / factor) * factor;
        w = (long)floor(width / beta / factor) * factor;
        if (h < factor) h = factor;
        if (w < factor) w = factor;
    } else if (h * w < min_pixels) {
        double beta = sqrt((double)min_pixels / ((double)height * width));
        h = (long)ceil(height * beta / factor) * factor;
        w = (long)ceil(width * beta / factor) * factor;
    }
    if (h < factor || w < factor) return tm_fail(err, "image %dx%d resizes to nothing (min_pixels too small)", width, height);
    *out_h = (int)h, *out_w = (int)w;
    return 0;
}

int img_qwen2vl_process(const img_qwen2vl_config *c, const img_rgb *im, img_patches *p, tm_error *err) {
    memset(p, 0, sizeof *p);
    const int ps = c->patch_size, tps = c->temporal_patch_size, m = c->merge_size;
    int h = im->h, w = im->w;
    img_rgb rs = {0};
    const img_rgb *src = im;
    if (c->do_resize) {
        if (img_qwen2vl_smart_resize(im->h, im->w, ps * m, c->min_pixels, c->max_pixels, &h, &w, err)) return -1;
        if (img_resize_pil(&rs, im, w, h, IMG_BICUBIC, err)) return -1;
        src = &rs;
    }
    if (h % (ps * m) || w % (ps * m)) {
        img_free(&rs);
        return tm_fail(err, "image %dx%d is not a multiple of %d (do_resize is off)", w, h, ps * m);
    }
    int gh = h / ps, gw = w / ps;
    p->n = gh * gw;
    p->dim = 3 * tps * ps * ps;
    p->grid_thw[0] = 1, p->grid_thw[1] = gh, p->grid_thw[2] = gw;
    p->pixel_values = malloc(sizeof(float) * (size_t)p->n * p->dim);
    float *plane = malloc(sizeof(float) * (size_t)h * w * 3);
    if (!p->pixel_values || !plane) {
        free(plane);
        img_free(&rs);
        img_patches_free(p);
        return tm_fail(err, "out of memory for %dx%d image patches", w, h);
    }
    float mean[3], stdv[3];
    for (int k = 0; k < 3; k++) mean[k] = (float)c->image_mean[k], stdv[k] = (float)c->image_std[k];
    for (size_t i = 0; i < (size_t)h * w * 3; i++) {
        float v = c->do_rescale ? (float)((double)src->px[i] * c->rescale_factor) : (float)src->px[i];
        if (c->do_normalize) v = (v - mean[i % 3]) / stdv[i % 3];
        plane[i] = v;
    }
    // Row order (h/m, w/m, m, m); inside a row (channel, temporal copy, y, x).
    size_t row = 0;
    for (int bh = 0; bh < gh / m; bh++)
        for (int bw = 0; bw < gw / m; bw++)
            for (int mh = 0; mh < m; mh++)
                for (int mw = 0; mw < m; mw++, row++) {
                    float *out = p->pixel_values + row * p->dim;
                    int y0 = (bh * m + mh) * ps, x0 = (bw * m + mw) * ps;
                    for (int ch = 0; ch < 3; ch++)
                        for (int t = 0; t < tps; t++)
                            for (int y = 0; y < ps; y++)
                                for (int x = 0; x < ps; x++)
                                    *out++ = plane[((size_t)(y0 + y) * w + x0 + x) * 3 + ch];
                }
    free(plane);
    img_free(&rs);
    return 0;
}

void img_patches_free(img_patches *p) {
    free(p->pixel_values);
    p->pixel_values = NULL;
}
