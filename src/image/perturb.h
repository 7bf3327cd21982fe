// image/perturb: the Vision Matters perturbations (YutingLi0606/Vision-Matters,
// Visual-Perturbation/*.py), each as the repo's script computes it:
//   concat  cv2 INTER_CUBIC: the partner's height matched to the image's (width
//           int(w2*h1/h2)), both squeezed to half = max(w1, w2')//2 wide, the image left
//   mixup   both letterboxed into 256x256 (PIL LANCZOS to int(w*r) x int(h*r), r =
//           min(256/w, 256/h), pasted centred on white), x = lam*x1 + (1-lam)*x2 in
//           float32 on [0,1] (torchvision ToTensor), back to uint8 by truncation
//           (ToPILImage's mul(255).byte())
//   rotate  cv2.getRotationMatrix2D about (w//2, h//2), canvas expanded to
//           int(h|sin|+w|cos|) x int(h|cos|+w|sin|), cv2.warpAffine bilinear, white fill
//   noise   N(0, std) cast to uint8 as numpy does (truncate, wrap mod 256: -3.7 -> 253),
//           then cv2.add (saturating): the repo's wraparound, kept on purpose
//   blur    cv2.GaussianBlur, ksize drawn from the odd numbers 3..max, sigma from ksize
//   crop    width int(U(0.6,0.9)*w), height int(U(0.6,0.9)*h), position uniform
// Where this departs from the scripts, on purpose: the draws (below); each script reads
// only .png or only .jpg, here all three suffixes are read; a 0-pixel crop or resize
// (possible on images a few pixels wide) becomes 1 pixel. JPEG is decoded by stb_image
// and written by stb_image_write (quality 95, no chroma subsampling): pixels of a JPEG
// input can differ slightly from libjpeg's (cv2.imread), so the oracle uses PNGs.
// The random draws (partner, lambda, angle, noise, ksize, crop) come from our RNG, one
// stream per example seeded from (seed, index), so a run is reproducible and the
// oracle can be handed the very same draws.
#pragma once
#include <stdint.h>
#include "base/rng.h"
#include "image/image.h"

typedef enum { IMG_OP_CONCAT, IMG_OP_MIXUP, IMG_OP_ROTATE, IMG_OP_NOISE, IMG_OP_BLUR, IMG_OP_CROP } img_op;

typedef struct img_perturb_opts {
    double noise_std;          // 25 (the function's default; the script's __main__ uses 300)
    int max_kernel_size;       // 7 (the function's default; __main__ uses 50)
    double lambda_min, lambda_max;  // 0.7, 0.9
    double crop_min, crop_max;      // 0.6, 0.9
    int mixup_size;            // 256
} img_perturb_opts;
void img_perturb_defaults(img_perturb_opts *o);

// One example's random draws.
typedef struct img_draw {
    img_op op;
    int partner;               // concat, mixup: index of the other image
    double lambda;             // mixup
    double angle;              // rotate, degrees in [-180, 180)
    int ksize;                 // blur
    int crop_x, crop_y, crop_w, crop_h;
    double *noise;             // noise: h*w*3 samples, pixel order (owned)
    long n_noise;
} img_draw;

int img_op_parse(const char *name, img_op *op);
const char *img_op_name(img_op op);
// Whether the op takes a partner image from the set.
int img_op_needs_partner(img_op op);

// The per-example stream: seed and index mixed, so examples are independent of order.
void img_example_rng(rng *r, uint64_t seed, uint64_t index);
// Draws example `index`'s parameters (n: the set's size; im: the example's image, for
// the sizes the noise and the crop need).
int img_perturb_draw(img_draw *d, img_op op, const img_perturb_opts *o, rng *r, int index, int n,
                     const img_rgb *im, tm_error *err);
void img_draw_free(img_draw *d);
// Applies the drawn perturbation (partner: NULL unless img_op_needs_partner).
int img_perturb_apply(img_rgb *out, const img_rgb *im, const img_rgb *partner, const img_draw *d,
                      const img_perturb_opts *o, tm_error *err);

// One example of a set of image files, as `temper perturb` and on-the-fly perturbation
// in a trainer both do it: loads paths[index], draws from img_example_rng(seed, index),
// loads the partner when the op takes one, applies. *d keeps the draws (img_draw_free).
int img_perturb_one(img_rgb *out, img_draw *d, img_op op, const img_perturb_opts *o, uint64_t seed,
                    const char *const *paths, int n, int index, tm_error *err);

// The operations one by one.
int img_concat(img_rgb *out, const img_rgb *a, const img_rgb *b, tm_error *err);
int img_letterbox(img_rgb *out, const img_rgb *im, int size, tm_error *err);
int img_mixup(img_rgb *out, const img_rgb *a, const img_rgb *b, double lambda, int size, tm_error *err);
int img_rotate(img_rgb *out, const img_rgb *im, double angle_deg, tm_error *err);
int img_add_noise(img_rgb *out, const img_rgb *im, const double *noise, tm_error *err);
int img_crop(img_rgb *out, const img_rgb *im, int x, int y, int w, int h, tm_error *err);
