// image/resample_pil: Pillow's Image.resize for 8-bit images (libImaging/Resample.c's
// algorithm, written anew). Each axis has its own filter table: the filter's support
// is stretched by the scale when shrinking (so downscaling averages, antialiased),
// taps are normalized to sum 1, then turned into 22-bit fixed point. The horizontal
// pass runs first and stores uint8 (rounded and clipped), the vertical pass reads it.
// The order of the floating-point operations follows Pillow's, so the integer taps,
// and the pixels, come out the same.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "image/image.h"

#define PIL_PRECISION_BITS (32 - 8 - 2)

static double filter_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_bicubic(double x) {
    const double a = -0.5;  // Pillow's choice (OpenCV uses -0.75)
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double filter_lanczos(double x) {
    if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
    return 0.0;
}

// Fixed-point taps for one axis: bounds[2*i] = first input index, bounds[2*i+1] = count,
// taps in k[i*ksize ...]. Returns ksize, or -1 on out of memory.
static int pil_coeffs(int in_size, int out_size, img_filter f, int **bounds_out, int **k_out) {
    double (*filter)(double) = f == IMG_BILINEAR ? filter_bilinear : f == IMG_BICUBIC ? filter_bicubic : filter_lanczos;
    double support0 = f == IMG_BILINEAR ? 1.0 : f == IMG_BICUBIC ? 2.0 : 3.0;
    double in0 = 0.0, in1 = in_size;
    double scale = (in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = support0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *kk = malloc(sizeof(double) * (size_t)out_size * ksize);
    int *bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    int *k = malloc(sizeof(int) * (size_t)out_size * ksize);
    if (!kk || !bounds || !k) {
        free(kk), free(bounds), free(k);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *w = &kk[(size_t)xx * ksize];
        int x;
        for (x = 0; x < xmax; x++) {
            double v = filter((x + xmin - center + 0.5) * ss);
            w[x] = v;
            ww += v;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) w[x] /= ww;
        for (; x < ksize; x++) w[x] = 0;
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * ksize; i++)
        k[i] = kk[i] < 0 ? (int)(-0.5 + kk[i] * (1 << PIL_PRECISION_BITS)) : (int)(0.5 + kk[i] * (1 << PIL_PRECISION_BITS));
    free(kk);
    *bounds_out = bounds;
    *k_out = k;
    return ksize;
}

static inline uint8_t clip8(int v) {
    v >>= PIL_PRECISION_BITS;  // arithmetic shift: floor, as Pillow's table lookup
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

int img_resize_pil(img_rgb *dst, const img_rgb *src, int w, int h, img_filter f, tm_error *err) {
    dst->px = NULL;
    if (w <= 0 || h <= 0) return tm_fail(err, "resize to %dx%d: sizes must be positive", w, h);
    if (w == src->w && h == src->h) return img_copy(dst, src, err);  // Image.resize returns a copy
    int *bh = NULL, *kh = NULL, *bv = NULL, *kv = NULL, ksh = 0, ksv = 0;
    int need_h = w != src->w, need_v = h != src->h;
    if (need_h && (ksh = pil_coeffs(src->w, w, f, &bh, &kh)) < 0) return tm_fail(err, "out of memory in resize");
    if (need_v && (ksv = pil_coeffs(src->h, h, f, &bv, &kv)) < 0) {
        free(bh), free(kh);
        return tm_fail(err, "out of memory in resize");
    }
    // Rows the vertical pass reads (all of them when there is no vertical pass).
    int y0 = 0, y1 = src->h;
    if (need_v) y0 = bv[0], y1 = bv[2 * h - 2] + bv[2 * h - 1];
    img_rgb tmp = {0};
    int rc = -1;
    if (need_h) {
        if (img_alloc(&tmp, w, y1 - y0, 0, 0, 0, err)) goto done;
        for (int y = y0; y < y1; y++) {
            const uint8_t *in = src->px + (size_t)y * src->w * 3;
            uint8_t *out = tmp.px + (size_t)(y - y0) * w * 3;
            for (int x = 0; x < w; x++) {
                int xmin = bh[2 * x], xn = bh[2 * x + 1];
                const int *k = kh + (size_t)x * ksh;
                int s0 = 1 << (PIL_PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (int i = 0; i < xn; i++) {
                    const uint8_t *p = in + (size_t)(xmin + i) * 3;
                    s0 += p[0] * k[i], s1 += p[1] * k[i], s2 += p[2] * k[i];
                }
                out[3 * x] = clip8(s0), out[3 * x + 1] = clip8(s1), out[3 * x + 2] = clip8(s2);
            }
        }
    }
    const img_rgb *mid = need_h ? &tmp : src;  // rows y0..y1 of the source's height
    int mid_y0 = need_h ? y0 : 0;
    if (!need_v) {
        *dst = tmp;
        tmp.px = NULL;
        rc = 0;
        goto done;
    }
    if (img_alloc(dst, w, h, 0, 0, 0, err)) goto done;
    for (int y = 0; y < h; y++) {
        int ymin = bv[2 * y] - mid_y0, yn = bv[2 * y + 1];
        const int *k = kv + (size_t)y * ksv;
        uint8_t *out = dst->px + (size_t)y * w * 3;
        for (int x = 0; x < w * 3; x++) {
            int s = 1 << (PIL_PRECISION_BITS - 1);
            for (int i = 0; i < yn; i++) s += mid->px[(size_t)(ymin + i) * w * 3 + x] * k[i];
            out[x] = clip8(s);
        }
    }
    rc = 0;
done:
    img_free(&tmp);
    free(bh), free(kh), free(bv), free(kv);
    return rc;
}
