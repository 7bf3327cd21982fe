// image/perturb: the perturbations and their draws (see perturb.h).
#include "image/perturb.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *op_names[] = {"concat", "mixup", "rotate", "noise", "blur", "crop"};

void img_perturb_defaults(img_perturb_opts *o) {
    *o = (img_perturb_opts){.noise_std = 25, .max_kernel_size = 7, .lambda_min = 0.7, .lambda_max = 0.9,
                            .crop_min = 0.6, .crop_max = 0.9, .mixup_size = 256};
}

int img_op_parse(const char *name, img_op *op) {
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, op_names[i])) {
            *op = (img_op)i;
            return 0;
        }
    return -1;
}

const char *img_op_name(img_op op) { return op_names[op]; }
int img_op_needs_partner(img_op op) { return op == IMG_OP_CONCAT || op == IMG_OP_MIXUP; }

void img_example_rng(rng *r, uint64_t seed, uint64_t index) {
    rng_seed(r, seed * 0x9E3779B97F4A7C15ull + index + 1);
}

int img_perturb_draw(img_draw *d, img_op op, const img_perturb_opts *o, rng *r, int index, int n,
                     const img_rgb *im, tm_error *err) {
    memset(d, 0, sizeof *d);
    d->op = op;
    d->partner = -1;
    if (img_op_needs_partner(op)) {
        if (n < 2) return tm_fail(err, "%s needs at least 2 images in the set (got %d)", op_names[op], n);
        int j = (int)rng_below(r, (uint64_t)n - 1);  // uniform over the others
        d->partner = j >= index ? j + 1 : j;
    }
    switch (op) {
    case IMG_OP_CONCAT: break;
    case IMG_OP_MIXUP: d->lambda = o->lambda_min + (o->lambda_max - o->lambda_min) * rng_double(r); break;
    case IMG_OP_ROTATE: d->angle = -180.0 + 360.0 * rng_double(r); break;
    case IMG_OP_BLUR: {
        int nk = o->max_kernel_size < 3 ? 0 : (o->max_kernel_size - 1) / 2;  // 3, 5, ..., max
        if (nk == 0) return tm_fail(err, "blur: the largest kernel size must be at least 3 (got %d)", o->max_kernel_size);
        d->ksize = 3 + 2 * (int)rng_below(r, (uint64_t)nk);
        break;
    }
    case IMG_OP_CROP: {
        double fw = o->crop_min + (o->crop_max - o->crop_min) * rng_double(r);
        double fh = o->crop_min + (o->crop_max - o->crop_min) * rng_double(r);
        int cw = (int)(fw * im->w), ch = (int)(fh * im->h);
        if (cw > im->w) cw = im->w;
        if (ch > im->h) ch = im->h;
        if (cw < 1) cw = 1;  // the script would write an empty image here
        if (ch < 1) ch = 1;
        d->crop_w = cw, d->crop_h = ch;
        d->crop_x = (int)rng_below(r, (uint64_t)(im->w - cw + 1));
        d->crop_y = (int)rng_below(r, (uint64_t)(im->h - ch + 1));
        break;
    }
    case IMG_OP_NOISE: {
        d->n_noise = (long)im->w * im->h * 3;
        d->noise = malloc(sizeof(double) * (size_t)d->n_noise);
        if (!d->noise) return tm_fail(err, "out of memory for noise");
        // Box-Muller, both outputs of each pair used (the cost is the log and the sincos).
        for (long i = 0; i < d->n_noise; i += 2) {
            double u1 = rng_double(r), u2 = rng_double(r);
            if (u1 < 1e-300) u1 = 1e-300;
            double rad = o->noise_std * sqrt(-2.0 * log(u1)), sn, cs;
            sincos(6.283185307179586 * u2, &sn, &cs);
            d->noise[i] = rad * cs;
            if (i + 1 < d->n_noise) d->noise[i + 1] = rad * sn;
        }
        break;
    }
    }
    return 0;
}

void img_draw_free(img_draw *d) {
    free(d->noise);
    d->noise = NULL;
}

int img_perturb_apply(img_rgb *out, const img_rgb *im, const img_rgb *partner, const img_draw *d,
                      const img_perturb_opts *o, tm_error *err) {
    switch (d->op) {
    case IMG_OP_CONCAT: return img_concat(out, im, partner, err);
    case IMG_OP_MIXUP: return img_mixup(out, im, partner, d->lambda, o->mixup_size, err);
    case IMG_OP_ROTATE: return img_rotate(out, im, d->angle, err);
    case IMG_OP_NOISE:
        if (d->n_noise != (long)im->w * im->h * 3) return tm_fail(err, "noise: drawn for another image size");
        return img_add_noise(out, im, d->noise, err);
    case IMG_OP_BLUR: return img_gaussian_blur_cv(out, im, d->ksize, err);
    case IMG_OP_CROP: return img_crop(out, im, d->crop_x, d->crop_y, d->crop_w, d->crop_h, err);
    }
    return tm_fail(err, "unknown perturbation");
}

int img_perturb_one(img_rgb *out, img_draw *d, img_op op, const img_perturb_opts *o, uint64_t seed,
                    const char *const *paths, int n, int index, tm_error *err) {
    img_rgb im = {0}, partner = {0};
    rng r;
    out->px = NULL;
    memset(d, 0, sizeof *d);
    img_example_rng(&r, seed, (uint64_t)index);
    int rc = img_load(&im, paths[index], err);
    if (!rc) rc = img_perturb_draw(d, op, o, &r, index, n, &im, err);
    if (!rc && d->partner >= 0) rc = img_load(&partner, paths[d->partner], err);
    if (!rc && img_perturb_apply(out, &im, d->partner >= 0 ? &partner : NULL, d, o, err))
        rc = tm_fail_prefix(err, "%s", paths[index]);
    img_free(&im), img_free(&partner);
    return rc;
}

int img_concat(img_rgb *out, const img_rgb *a, const img_rgb *b, tm_error *err) {
    img_rgb b2 = {0}, a3 = {0}, b3 = {0};
    int rc = -1;
    out->px = NULL;
    if (b->h != a->h) {
        int w2 = (int)(b->w * ((double)a->h / b->h));
        if (w2 < 1) w2 = 1;
        if (img_resize_cv_cubic(&b2, b, w2, a->h, err)) goto done;
    } else if (img_copy(&b2, b, err)) goto done;
    int half = (a->w > b2.w ? a->w : b2.w) / 2;
    if (half < 1) half = 1;
    if (img_resize_cv_cubic(&a3, a, half, a->h, err) || img_resize_cv_cubic(&b3, &b2, half, a->h, err)) goto done;
    if (img_alloc(out, 2 * half, a->h, 0, 0, 0, err)) goto done;
    for (int y = 0; y < a->h; y++) {
        memcpy(out->px + (size_t)y * out->w * 3, a3.px + (size_t)y * half * 3, (size_t)half * 3);
        memcpy(out->px + ((size_t)y * out->w + half) * 3, b3.px + (size_t)y * half * 3, (size_t)half * 3);
    }
    rc = 0;
done:
    img_free(&b2), img_free(&a3), img_free(&b3);
    return rc;
}

int img_letterbox(img_rgb *out, const img_rgb *im, int size, tm_error *err) {
    double r = fmin((double)size / im->w, (double)size / im->h);
    int nw = (int)(im->w * r), nh = (int)(im->h * r);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    img_rgb small = {0};
    if (img_resize_pil(&small, im, nw, nh, IMG_LANCZOS, err)) return -1;
    if (img_alloc(out, size, size, 255, 255, 255, err)) {
        img_free(&small);
        return -1;
    }
    int x0 = (size - nw) / 2, y0 = (size - nh) / 2;
    for (int y = 0; y < nh; y++)
        memcpy(out->px + ((size_t)(y0 + y) * size + x0) * 3, small.px + (size_t)y * nw * 3, (size_t)nw * 3);
    img_free(&small);
    return 0;
}

int img_mixup(img_rgb *out, const img_rgb *a, const img_rgb *b, double lambda, int size, tm_error *err) {
    img_rgb la = {0}, lb = {0};
    out->px = NULL;
    if (img_letterbox(&la, a, size, err) || img_letterbox(&lb, b, size, err) ||
        img_alloc(out, size, size, 0, 0, 0, err)) {
        img_free(&la), img_free(&lb);
        return -1;
    }
    // torch: float32 tensors, the float64 scalars lam and 1 - lam rounded to float32.
    float l1 = (float)lambda, l2 = (float)(1.0 - lambda);
    for (size_t i = 0; i < (size_t)size * size * 3; i++) {
        float x1 = (float)la.px[i] / 255.0f, x2 = (float)lb.px[i] / 255.0f;
        float m = x1 * l1 + x2 * l2;
        float v = m * 255.0f;
        out->px[i] = v >= 255.0f ? 255 : v <= 0.0f ? 0 : (uint8_t)v;  // byte(): truncation
    }
    img_free(&la), img_free(&lb);
    return 0;
}

int img_rotate(img_rgb *out, const img_rgb *im, double angle_deg, tm_error *err) {
    int w = im->w, h = im->h, cx = w / 2, cy = h / 2;
    double a = angle_deg * (M_PI / 180);
    double alpha = cos(a), beta = sin(a);
    double m[6] = {alpha, beta, (1 - alpha) * cx - beta * cy, -beta, alpha, beta * cx + (1 - alpha) * cy};
    double c = fabs(m[0]), s = fabs(m[1]);
    int nw = (int)((h * s) + (w * c)), nh = (int)((h * c) + (w * s));
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    m[2] += ((double)nw / 2) - cx;
    m[5] += ((double)nh / 2) - cy;
    static const uint8_t white[3] = {255, 255, 255};
    return img_warp_affine_cv(out, im, m, nw, nh, white, err);
}

// numpy's float64 -> uint8 cast on x86: truncate toward zero to int32, keep the low byte.
static inline uint8_t np_cast_u8(double v) {
    double t = trunc(v);
    if (!(t > -2147483649.0 && t < 2147483648.0)) return 0;  // cvttsd2si's 0x80000000
    return (uint8_t)((uint32_t)(int32_t)t & 255u);
}

int img_add_noise(img_rgb *out, const img_rgb *im, const double *noise, tm_error *err) {
    if (img_alloc(out, im->w, im->h, 0, 0, 0, err)) return -1;
    for (size_t i = 0; i < (size_t)im->w * im->h * 3; i++) {
        int v = im->px[i] + np_cast_u8(noise[i]);
        out->px[i] = v > 255 ? 255 : (uint8_t)v;
    }
    return 0;
}

int img_crop(img_rgb *out, const img_rgb *im, int x, int y, int w, int h, tm_error *err) {
    if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > im->w || y + h > im->h)
        return tm_fail(err, "crop %dx%d at (%d,%d) is outside the %dx%d image", w, h, x, y, im->w, im->h);
    if (img_alloc(out, w, h, 0, 0, 0, err)) return -1;
    for (int r = 0; r < h; r++)
        memcpy(out->px + (size_t)r * w * 3, im->px + ((size_t)(y + r) * im->w + x) * 3, (size_t)w * 3);
    return 0;
}
