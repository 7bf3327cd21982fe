// model/vision: Qwen2.5-VL's vision tower (transformers' Qwen2_5_VisionTransformerPretrainedModel)
// and Qwen2-VL's (Qwen2VisionTransformerPretrainedModel), and the language model's M-RoPE,
// forward and backward, for ARCH_QWEN2_5_VL and ARCH_QWEN2_VL models.
//
// Input: a batch's images as the image processor makes them (src/image/): pixel_values
// [n_patches, 3 * temporal_patch * patch * patch], rows in the processor's order (per image:
// frame, then 2x2 merge units row-major, then the unit's 4 patches), and image_grid_thw
// [n_images, 3] in patches. Image i's embeddings (t*h*w/4 rows) replace, in order, the
// embeddings of the image-pad tokens (image_token_id) of the packed batch, as transformers'
// masked_scatter; the pad tokens' own embeddings get no gradient.
//
// The tower, as transformers computes it:
// - patch embedding: the Conv3d with kernel = stride = patch is a linear map of each row (no bias);
// - the rows are reordered into windows of window_size px (window_size/merge/patch merge units
//   a side, cut at the image's edge), which every layer keeps; blocks at fullatt_block_indexes
//   attend within each frame, the others within each window; no causal mask;
// - 2-D rotary: head_dim/4 frequencies (theta 10000) of the row, then head_dim/4 of the column;
// - blocks: x + proj(attn(rmsnorm1(x))), then + down(silu(gate(.)) * up(.)) of rmsnorm2, all with biases;
// - merger: RMSNorm (ln_q), 4 merged rows concatenated, Linear, exact GELU, Linear; then the
//   window order is undone.
// Qwen2-VL's tower differs in three places: LayerNorm with bias (eps 1e-6) for norm1, norm2 and
// ln_q; the MLP is fc2(QuickGELU(fc1(.))), with biases; no windows (every block attends within
// the whole frame, and the rows stay in the processor's order). The language model is the same.
// M-RoPE: every token has (t, h, w) positions; a text token's three equal its position id plus
// the shift the images before it in its sequence made; an image's tokens sit at
// (p, p + row, p + col) from the next text position p, and the text after it continues at
// p + max(rows, cols) (transformers' get_rope_index; images have temporal position 0).
// Frequency band k of mrope_section turns by position k.
#pragma once
#include "model/model.h"

typedef struct vision_block {
    size_t norm1, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2, norm2_b, gate_w, gate_b, up_w, up_b, down_w, down_b;  // Qwen2-VL: norm*_b, fc1 = gate, fc2 = down, no up
} vision_block;

typedef struct vision vision;

// Number of parameter tensors the tower adds (for the table's size); adds them to the model's
// table (called by model_create before the weights are allocated), under transformers'
// checkpoint names (visual.*).
int vision_param_count(const model_config *c);
int vision_create(model *m, tm_error *err);
void vision_free(vision *v);

// The batch's images through the tower, and their embeddings written over the image-pad rows of
// x [n_tokens, hidden]; fills the M-RoPE angle table (vision_lm_angles). A batch without
// images gets the table only. Errors name the image and what disagrees (grid, token count).
int vision_forward(model *m, const model_batch *b, float *x, tm_error *err);
// The M-RoPE angles [n_tokens, head_dim/2] of the last vision_forward.
const float *vision_lm_angles(const model *m);
// The backward: takes the image-pad rows of d_x (dL/d embeddings), zeroes them there, and
// back-propagates them through the tower into its trainable parameters.
void vision_backward(model *m, const model_batch *b, float *d_x);
// The last forward's image embeddings [n_merged, hidden] in image-token order, and their count.
const float *vision_last_output(const model *m, int *n_merged);
// --freeze-vision-tower: the tower's parameters get no gradient (call before model_enable_grad).
void vision_freeze(model *m);
