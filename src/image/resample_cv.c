// image/resample_cv: the three OpenCV operations the paper's scripts call on uint8
// images (OpenCV 4's imgproc, its integer arithmetic rewritten here):
//   cv2.resize(INTER_CUBIC), cv2.warpAffine(INTER_LINEAR, BORDER_CONSTANT),
//   cv2.GaussianBlur(ksize, sigmaX=0) (the bit-exact fixed-point path for 8-bit).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "image/image.h"

// ---- resize, INTER_CUBIC ----
// Sample position fx = (dx + 0.5) * src/dst - 0.5 (in float, as OpenCV), taps at
// floor(fx) - 1 .. floor(fx) + 2 clamped to the image, Keys' cubic with A = -0.75,
// weights rounded to 1/2048. The horizontal pass keeps full int precision; the
// vertical pass rounds once at the end ((sum + 2^21) >> 22), saturating to 0..255.

#define CV_COEF_SCALE 2048

static void cv_cubic_coeffs(float x, float c[4]) {
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

static void cv_cubic_table(int in, int out, int *ofs, short *alpha) {
    double scale = 1. / ((double)out / in);
    for (int d = 0; d < out; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        float c[4];
        cv_cubic_coeffs(f, c);
        for (int k = 0; k < 4; k++) {
            int j = s - 1 + k;
            ofs[4 * d + k] = j < 0 ? 0 : j >= in ? in - 1 : j;
            alpha[4 * d + k] = (short)lrintf(c[k] * CV_COEF_SCALE);
        }
    }
}

int img_resize_cv_cubic(img_rgb *dst, const img_rgb *src, int w, int h, tm_error *err) {
    dst->px = NULL;
    if (w <= 0 || h <= 0) return tm_fail(err, "resize to %dx%d: sizes must be positive", w, h);
    if (w == src->w && h == src->h) return img_copy(dst, src, err);  // cv2.resize copies
    int *xo = malloc(sizeof(int) * 4 * (size_t)w), *yo = malloc(sizeof(int) * 4 * (size_t)h);
    short *xa = malloc(sizeof(short) * 4 * (size_t)w), *ya = malloc(sizeof(short) * 4 * (size_t)h);
    int *rows = malloc(sizeof(int) * (size_t)src->h * w * 3);
    int rc = -1;
    if (!xo || !yo || !xa || !ya || !rows) {
        tm_fail(err, "out of memory in resize");
        goto done;
    }
    cv_cubic_table(src->w, w, xo, xa);
    cv_cubic_table(src->h, h, yo, ya);
    for (int y = 0; y < src->h; y++) {
        const uint8_t *in = src->px + (size_t)y * src->w * 3;
        int *out = rows + (size_t)y * w * 3;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                int s = 0;
                for (int k = 0; k < 4; k++) s += in[xo[4 * x + k] * 3 + c] * xa[4 * x + k];
                out[3 * x + c] = s;
            }
    }
    if (img_alloc(dst, w, h, 0, 0, 0, err)) goto done;
    // |row| <= 255 * 2048 * 1.28 and the taps' absolute sum is <= 1.28 * 2048: the sums fit
    // an int, as in OpenCV's VResizeCubic.
    for (int y = 0; y < h; y++) {
        uint8_t *out = dst->px + (size_t)y * w * 3;
        const int *r0 = rows + (size_t)yo[4 * y] * w * 3, *r1 = rows + (size_t)yo[4 * y + 1] * w * 3;
        const int *r2 = rows + (size_t)yo[4 * y + 2] * w * 3, *r3 = rows + (size_t)yo[4 * y + 3] * w * 3;
        const int b0 = ya[4 * y], b1 = ya[4 * y + 1], b2 = ya[4 * y + 2], b3 = ya[4 * y + 3];
        for (int x = 0; x < w * 3; x++) {
            int v = (r0[x] * b0 + r1[x] * b1 + r2[x] * b2 + r3[x] * b3 + (1 << 21)) >> 22;
            out[x] = v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
        }
    }
    rc = 0;
done:
    free(xo), free(yo), free(xa), free(ya), free(rows);
    return rc;
}

// ---- warpAffine, INTER_LINEAR, constant border ----
// OpenCV inverts the matrix, then maps each destination pixel to a source position in
// 1/1024 pixel (AB_BITS 10), adds half of 1/32 and keeps 1/32 pixel (INTER_BITS 5).
// The bilinear weights at that 1/32 grid are exact integers over 2^15; a tap outside
// the source reads the fill colour.

int img_warp_affine_cv(img_rgb *dst, const img_rgb *src, const double m_in[6], int w, int h,
                       const uint8_t fill[3], tm_error *err) {
    if (img_alloc(dst, w, h, fill[0], fill[1], fill[2], err)) return -1;
    double M[6];
    memcpy(M, m_in, sizeof M);
    double D = M[0] * M[4] - M[1] * M[3];
    D = D != 0 ? 1. / D : 0;
    double A11 = M[4] * D, A22 = M[0] * D;
    M[0] = A11; M[1] *= -D;
    M[3] *= -D; M[4] = A22;
    double b1 = -M[0] * M[2] - M[1] * M[5];
    double b2 = -M[3] * M[2] - M[4] * M[5];
    M[2] = b1; M[5] = b2;
    int *adelta = malloc(sizeof(int) * 2 * (size_t)w);
    if (!adelta) {
        img_free(dst);
        return tm_fail(err, "out of memory in rotate");
    }
    int *bdelta = adelta + w;
    for (int x = 0; x < w; x++) {
        adelta[x] = (int)lrint(M[0] * x * 1024);
        bdelta[x] = (int)lrint(M[3] * x * 1024);
    }
    const int sw = src->w, sh = src->h;
    for (int y = 0; y < h; y++) {
        int X0 = (int)lrint((M[1] * y + M[2]) * 1024) + 16;
        int Y0 = (int)lrint((M[4] * y + M[5]) * 1024) + 16;
        uint8_t *out = dst->px + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            int X = (X0 + adelta[x]) >> 5, Y = (Y0 + bdelta[x]) >> 5;
            int sx = X >> 5, sy = Y >> 5, tx = X & 31, ty = Y & 31;
            if (sx >= sw || sx + 1 < 0 || sy >= sh || sy + 1 < 0) continue;  // fill colour
            int wt[4] = {(32 - ty) * (32 - tx) * 32, (32 - ty) * tx * 32, ty * (32 - tx) * 32, ty * tx * 32};
            const uint8_t *p[4];
            if (sx >= 0 && sy >= 0 && sx + 1 < sw && sy + 1 < sh) {  // inside: the common case
                p[0] = src->px + ((size_t)sy * sw + sx) * 3;
                p[1] = p[0] + 3, p[2] = p[0] + (size_t)sw * 3, p[3] = p[2] + 3;
            } else {
                for (int k = 0; k < 4; k++) {
                    int xx = sx + (k & 1), yy = sy + (k >> 1);
                    p[k] = xx >= 0 && xx < sw && yy >= 0 && yy < sh ? src->px + ((size_t)yy * sw + xx) * 3 : fill;
                }
            }
            for (int c = 0; c < 3; c++) {
                int s = p[0][c] * wt[0] + p[1][c] * wt[1] + p[2][c] * wt[2] + p[3][c] * wt[3];
                int v = (s + (1 << 14)) >> 15;
                out[3 * x + c] = v > 255 ? 255 : (uint8_t)v;
            }
        }
    }
    free(adelta);
    return 0;
}

// ---- GaussianBlur, sigma from ksize ----
// OpenCV's kernel: fixed binomial-like tables for ksize 3..9, else exp(-x^2/(2 s^2)) with
// s = 0.15 ksize + 0.35, normalized; then to 8.8 fixed point with error diffusion from
// the outside in (the centre takes what is left, so the taps sum to 256 exactly).
// Row pass: uint8 x 8.8 -> 8.8, exact. Column pass: 8.8 x 8.8 -> 16.16, rounded once.

static void cv_gaussian_kernel_fixed(int n, int *k) {
    static const int t3[] = {64, 128, 64}, t5[] = {16, 64, 96, 64, 16},
                     t7[] = {8, 28, 56, 72, 56, 28, 8}, t9[] = {4, 13, 30, 51, 60, 51, 30, 13, 4};
    const int *t = n == 3 ? t3 : n == 5 ? t5 : n == 7 ? t7 : n == 9 ? t9 : NULL;
    if (n == 1) {
        k[0] = 256;
        return;
    }
    if (t) {
        memcpy(k, t, sizeof(int) * (size_t)n);
        return;
    }
    double sigma = (double)n * 0.15 + 0.35, scale2 = -0.125 / (sigma * sigma);
    int n2 = (n - 1) / 2;
    double v[64], sum = 0;  // n <= 127
    for (int i = 0, x = 1 - n; i < n2; i++, x += 2) {
        v[i] = exp((double)(x * x) * scale2);
        sum += v[i];
    }
    sum *= 2;
    sum += 1;
    double mul = 1. / sum, e = 0;
    int total = 0;
    for (int i = 0; i < n2; i++) {
        double adj = v[i] * mul * 256.0 + e;
        int r = (int)lrint(adj);
        e = adj - r;
        k[i] = k[n - 1 - i] = r;
        total += r;
    }
    k[n2] = 256 - 2 * total;
}

static inline int reflect101(int p, int len) {
    if (len == 1) return 0;
    while (p < 0 || p >= len) {
        if (p < 0) p = -p;
        else p = 2 * len - 2 - p;
    }
    return p;
}

int img_gaussian_blur_cv(img_rgb *dst, const img_rgb *src, int ksize, tm_error *err) {
    dst->px = NULL;
    if (ksize < 1 || ksize % 2 == 0 || ksize > 127) return tm_fail(err, "blur kernel size %d: must be odd, 1..127", ksize);
    int kw = src->w == 1 ? 1 : ksize, kh = src->h == 1 ? 1 : ksize;
    if (kw == 1 && kh == 1) return img_copy(dst, src, err);
    int kx[127], ky[127];
    cv_gaussian_kernel_fixed(kw, kx);
    cv_gaussian_kernel_fixed(kh, ky);
    const int w = src->w, h = src->h, rx = kw / 2, ry = kh / 2, n3 = w * 3;
    // Row sums are at most 255 * 256: they fit 16 bits, as OpenCV's ufixedpoint16.
    uint16_t *rows = malloc(sizeof(uint16_t) * (size_t)n3 * h);
    uint8_t *line = malloc((size_t)(w + 2 * rx) * 3);
    uint32_t *acc = malloc(sizeof(uint32_t) * (size_t)n3);
    if (!rows || !line || !acc || img_alloc(dst, w, h, 0, 0, 0, err)) {
        free(rows), free(line), free(acc);
        return tm_fail(err, "out of memory in blur");
    }
    // Loops run along the row (x*3 + channel) innermost, so the compiler vectorizes them.
    for (int y = 0; y < h; y++) {
        const uint8_t *in = src->px + (size_t)y * n3;
        memcpy(line + rx * 3, in, (size_t)n3);  // the row, then its reflected borders
        for (int i = 0; i < rx; i++) {
            memcpy(line + i * 3, in + reflect101(i - rx, w) * 3, 3);
            memcpy(line + (rx + w + i) * 3, in + reflect101(w + i, w) * 3, 3);
        }
        // The row sum never exceeds 255 * 256 (the taps sum to 256): 16-bit lanes suffice.
        uint16_t *out = rows + (size_t)y * n3;
        for (int x = 0; x < n3; x++) out[x] = 0;
        for (int i = 0; i < kw; i++) {
            const uint8_t *l = line + i * 3;
            const uint16_t k = (uint16_t)kx[i];
            for (int x = 0; x < n3; x++) out[x] = (uint16_t)(out[x] + l[x] * k);
        }
    }
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < n3; x++) acc[x] = 0;
        for (int j = 0; j < kh; j++) {
            const uint16_t *r = rows + (size_t)reflect101(y - ry + j, h) * n3;
            const uint32_t k = (uint32_t)ky[j];
            for (int x = 0; x < n3; x++) acc[x] += r[x] * k;  // <= 65280 * 256: fits 32 bits
        }
        uint8_t *out = dst->px + (size_t)y * n3;
        for (int x = 0; x < n3; x++) {
            uint32_t v = (acc[x] + (1u << 15)) >> 16;
            out[x] = v > 255 ? 255 : (uint8_t)v;
        }
    }
    free(rows), free(line), free(acc);
    return 0;
}
