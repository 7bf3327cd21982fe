// image/image: an 8-bit RGB image, PNG/JPEG decoding and encoding (Debian's libstb:
// stb_image, stb_image_write), and the resamplers and filters the perturbations and
// the Qwen2-VL image processor need, each written to give what its Python reference
// gives:
//   img_resize_pil     Pillow's Image.resize (BILINEAR, BICUBIC, LANCZOS): separable
//                      support-scaled filters, 22-bit fixed point, uint8 between passes
//   img_resize_cv_cubic  OpenCV's cv2.resize(INTER_CUBIC) on uint8 (A = -0.75, 4 taps,
//                      11-bit coefficients, edge pixels replicated, no antialiasing)
//   img_warp_affine_cv OpenCV's cv2.warpAffine(INTER_LINEAR, BORDER_CONSTANT) on uint8:
//                      coordinates in 1/32 pixel, 15-bit weights, as OpenCV rounds them
//   img_gaussian_blur_cv OpenCV's cv2.GaussianBlur(ksize, sigma 0) on uint8: its bit-exact
//                      8.8 fixed-point kernel, BORDER_REFLECT_101
// Pixels are row-major RGB (3 bytes a pixel). OpenCV code works on BGR; every operation
// here treats the channels alike, so the order does not change a result.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef struct img_rgb {
    int w, h;
    uint8_t *px;   // w*h*3 bytes, owned (img_free)
} img_rgb;

// Allocates a w x h image filled with the colour (r, g, b).
int img_alloc(img_rgb *im, int w, int h, uint8_t r, uint8_t g, uint8_t b, tm_error *err);
void img_free(img_rgb *im);
int img_copy(img_rgb *dst, const img_rgb *src, tm_error *err);

// Decodes a PNG or JPEG (any channel count: grey and alpha become RGB as PIL's
// convert('RGB') does, alpha dropped). A truncated or corrupt file fails with
// "PATH: cannot decode image (reason)".
int img_load(img_rgb *im, const char *path, tm_error *err);
int img_decode(img_rgb *im, const uint8_t *data, size_t len, const char *name, tm_error *err);
// Encodes by the extension of path (.jpg/.jpeg: JPEG quality 95, OpenCV's imwrite
// default; anything else: PNG) and writes atomically.
int img_save(const img_rgb *im, const char *path, tm_error *err);
// 1 if the name ends in .png, .jpg or .jpeg (any case).
int img_is_image_name(const char *name);

typedef enum { IMG_BILINEAR, IMG_BICUBIC, IMG_LANCZOS } img_filter;
int img_resize_pil(img_rgb *dst, const img_rgb *src, int w, int h, img_filter f, tm_error *err);
int img_resize_cv_cubic(img_rgb *dst, const img_rgb *src, int w, int h, tm_error *err);
// m: the forward 2x3 matrix (source -> destination), as passed to cv2.warpAffine
// without WARP_INVERSE_MAP; fill: the constant border colour.
int img_warp_affine_cv(img_rgb *dst, const img_rgb *src, const double m[6], int w, int h,
                       const uint8_t fill[3], tm_error *err);
// ksize odd >= 1, sigma derived from it (sigmaX = 0).
int img_gaussian_blur_cv(img_rgb *dst, const img_rgb *src, int ksize, tm_error *err);
