// image/image: the RGB image, decoding and encoding through libstb.
#include "image/image.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <stb_image.h>
#include <stb_image_write.h>
#include "base/io.h"

int img_alloc(img_rgb *im, int w, int h, uint8_t r, uint8_t g, uint8_t b, tm_error *err) {
    im->w = im->h = 0;
    im->px = NULL;
    if (w <= 0 || h <= 0 || (size_t)w * (size_t)h > ((size_t)1 << 31))
        return tm_fail(err, "image size %dx%d is out of range", w, h);
    uint8_t *p = malloc((size_t)w * h * 3);
    if (!p) return tm_fail(err, "out of memory for a %dx%d image", w, h);
    for (size_t i = 0; i < (size_t)w * h; i++) p[3 * i] = r, p[3 * i + 1] = g, p[3 * i + 2] = b;
    im->w = w, im->h = h, im->px = p;
    return 0;
}

void img_free(img_rgb *im) {
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

int img_copy(img_rgb *dst, const img_rgb *src, tm_error *err) {
    if (img_alloc(dst, src->w, src->h, 0, 0, 0, err)) return -1;
    memcpy(dst->px, src->px, (size_t)src->w * src->h * 3);
    return 0;
}

int img_decode(img_rgb *im, const uint8_t *data, size_t len, const char *name, tm_error *err) {
    im->w = im->h = 0;
    im->px = NULL;
    if (len > (size_t)INT32_MAX) return tm_fail(err, "%s: image file too large", name);
    int w, h, n;
    uint8_t *p = stbi_load_from_memory(data, (int)len, &w, &h, &n, 3);
    if (!p) return tm_fail(err, "%s: cannot decode image (%s)", name, stbi_failure_reason());
    // Own the pixels with malloc so img_free is the one way to release an image.
    if (img_alloc(im, w, h, 0, 0, 0, err)) {
        stbi_image_free(p);
        return tm_fail_prefix(err, "%s", name);
    }
    memcpy(im->px, p, (size_t)w * h * 3);
    stbi_image_free(p);
    return 0;
}

int img_load(img_rgb *im, const char *path, tm_error *err) {
    size_t len;
    char *data = io_read_file(path, &len, err);
    if (!data) return -1;
    int rc = img_decode(im, (const uint8_t *)data, len, path, err);
    free(data);
    return rc;
}

static int ends_with_ci(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++)
        if (tolower((unsigned char)s[n - m + i]) != suf[i]) return 0;
    return 1;
}

int img_is_image_name(const char *name) {
    return ends_with_ci(name, ".png") || ends_with_ci(name, ".jpg") || ends_with_ci(name, ".jpeg");
}

typedef struct membuf { uint8_t *p; size_t n, cap; int failed; } membuf;

static void membuf_write(void *ctx, void *data, int size) {
    membuf *b = ctx;
    if (b->failed || size <= 0) return;
    if (b->n + (size_t)size > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + (size_t)size) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) { b->failed = 1; return; }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

int img_save(const img_rgb *im, const char *path, tm_error *err) {
    membuf b = {0};
    int ok;
    if (ends_with_ci(path, ".jpg") || ends_with_ci(path, ".jpeg"))
        ok = stbi_write_jpg_to_func(membuf_write, &b, im->w, im->h, 3, im->px, 95);
    else
        ok = stbi_write_png_to_func(membuf_write, &b, im->w, im->h, 3, im->px, im->w * 3);
    if (!ok || b.failed) {
        free(b.p);
        return tm_fail(err, "%s: cannot encode a %dx%d image%s", path, im->w, im->h, b.failed ? " (out of memory)" : "");
    }
    int rc = io_write_file_atomic(path, b.p, b.n, err);
    free(b.p);
    return rc;
}
