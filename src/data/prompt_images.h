// data/prompt_images: a prompt's images for the sampler (sample, eval, grpo): the files run
// through the Qwen2-VL processor, their patches in one array, and the prompt's ids with each
// image's single <|image_pad|> expanded to the image's token count (data_image.c's rule).
#pragma once
#include <stdint.h>
#include "data/data.h"
#include "image/qwen2vl_processor.h"
#include "task/problems.h"
#include "tokenizer/tokenizer.h"

typedef struct data_prompt_images {
    int n_images, n_patches, dim;
    float *pixel_values;  // [n_patches, dim]
    int *grid_thw;        // [n_images, 3]
    int32_t *ids;         // the prompt, pads expanded
    int len;
} data_prompt_images;

// p's images (task_problem.images) and ids; the tokenizer's <|image_pad|> must be pad_id.
int data_prompt_images_load(tok_tokenizer *t, const img_qwen2vl_config *c, int pad_id, const task_problem *p,
                            data_prompt_images *out, tm_error *err);
// An example's images (data_example's paths and grids), remade as the trainer does
// (data_example_pixels), into one array; ids/len are left empty.
int data_prompt_images_of_example(const data_example *ex, const img_qwen2vl_config *c, data_prompt_images *out,
                                  tm_error *err);
// Appends one image's patches.
int data_prompt_images_append(data_prompt_images *d, const img_patches *p, tm_error *err);
void data_prompt_images_free(data_prompt_images *d);
