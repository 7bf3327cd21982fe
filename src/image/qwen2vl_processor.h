// image/qwen2vl_processor: Hugging Face's Qwen2VLImageProcessor (the slow, PIL-based one;
// Qwen2.5-VL uses the same class), for one image:
//   smart_resize: height and width rounded (Python's round: half to even) to multiples of
//     factor = patch_size * merge_size (28); if the area exceeds max_pixels, both scaled
//     by beta = sqrt(h*w/max_pixels) and floored to multiples (at least one factor); if
//     under min_pixels, scaled up by sqrt(min_pixels/(h*w)) and ceiled
//   PIL BICUBIC resize to that size (img_resize_pil)
//   rescale: float32(u8 * (1/255) in float64); normalize: (x - mean) / std in float32
//     with CLIP's mean/std
//   patches: the image repeated temporal_patch_size times; pixel_values rows in the order
//     (t, h/merge, w/merge, merge_h, merge_w), each row (channel, temporal, 14, 14):
//     [grid_t*grid_h*grid_w, 3*temporal*patch*patch] = [N, 1176] by default
// image_grid_thw = (1, h/14, w/14).
#pragma once
#include "image/image.h"

typedef struct img_qwen2vl_config {
    long min_pixels, max_pixels;          // 56*56, 28*28*1280 (HF's defaults)
    int patch_size, temporal_patch_size, merge_size;  // 14, 2, 2
    double rescale_factor;                // 1/255
    double image_mean[3], image_std[3];   // OPENAI_CLIP_MEAN / _STD
    int do_resize, do_rescale, do_normalize;
} img_qwen2vl_config;

void img_qwen2vl_defaults(img_qwen2vl_config *c);
// Reads preprocessor_config.json over the defaults: min_pixels / max_pixels (or
// size.shortest_edge / size.longest_edge), patch_size, temporal_patch_size, merge_size,
// image_mean, image_std, rescale_factor, do_resize, do_rescale, do_normalize.
int img_qwen2vl_load_config(img_qwen2vl_config *c, const char *path, tm_error *err);
int img_qwen2vl_smart_resize(int height, int width, int factor, long min_pixels, long max_pixels,
                             int *out_h, int *out_w, tm_error *err);

typedef struct img_patches {
    float *pixel_values;   // [n, dim], malloc'd (img_patches_free)
    int n, dim;
    int grid_thw[3];
} img_patches;
int img_qwen2vl_process(const img_qwen2vl_config *c, const img_rgb *im, img_patches *p, tm_error *err);
void img_patches_free(img_patches *p);
