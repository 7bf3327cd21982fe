// data/data_image: the image side of a JSONL row (data.h's image_cfg): TRL's "images" /
// "image" columns loaded and run through the Qwen2-VL processor, the placeholders the prompt
// gets, and the image-pad expansion of the built sequences. Internal to data/.
#pragma once
#include "base/json.h"
#include "data/data.h"

// The row's image column: 0 when it has none (*n = 0), else *n images loaded into ex
// (paths, grid_thw; the pixels are dropped, data_example_pixels remakes them). -1 with err naming the image on bad input or no image_cfg.
int data_images_load(const json *row, const data_opts *o, data_example *ex, tm_error *err);
// Appends one <|vision_start|><|image_pad|><|vision_end|> per image, then s[0..n), to out.
void data_images_prefix(int n_images, const char *s, size_t n, sbuf *out);
// Replaces each seq's single image pads by the image's token count (mask 0) and moves
// prompt_len; errors when a seq's pads and the images do not pair up.
int data_images_expand(tok_tokenizer *t, const data_opts *o, data_example *ex, tm_error *err);
