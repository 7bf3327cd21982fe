// model/model: a Llama / Qwen2 / Qwen3 / Gemma 3 decoder in fp32 that maps packed tokens to
// per-position log-probs of given targets, and back-propagates dL/dlogp.
//
// Memory: parameters, their gradients and the optimizer state are each one flat
// array in the order of `params` (so AdamW is one loop and zero-grad one memset);
// activations live in one arena sized by model_reserve() for a maximum token count,
// so a training step allocates nothing.
//
// The lm-head is fused with log-softmax and the gather of the target (kernels), so
// N x V logits never exist. Cheap activations (the normalized inputs of each block,
// the SwiGLU / GeGLU product) are recomputed in the backward instead of stored; Gemma 3's
// post-norms keep their inputs (the attention and MLP outputs) and rstd.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "base/rng.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/safetensors.h"

// One parameter tensor: its Hugging Face name and where it lives in the flat arrays.
typedef struct model_param {
    char name[96];
    int ndim;
    int64_t shape[5];  // ndim used; the vision tower's Conv3d patch embedding is 5-D
    size_t offset, numel;
    int decay;  // weight decay applies (matrices yes; norms and biases no)
    int trainable;  // has a gradient and AdamW state (all, except the frozen base under LoRA)
    int adapter;    // a LoRA tensor (model/lora.h): saved in the adapter files, not model.safetensors
    size_t goff;    // offset in the gradient / optimizer arrays (trainable only)
    const uint16_t *bf16;  // frozen base read in place (model_load_frozen): its bf16 data in the file's
                           // mapping, and m->w holds nothing for it (those pages are not even mapped
                           // readable); NULL when the parameter is fp32 in m->w
} model_param;

// Offsets of one layer's tensors inside the flat arrays (SIZE_MAX when absent).
typedef struct layer_offsets {
    // mlp_norm is the norm before the MLP (post_attention_layernorm in Llama/Qwen,
    // pre_feedforward_layernorm in Gemma 3); post_attn_norm / post_ff_norm are Gemma 3's
    // norms of the attention and MLP outputs (post_attention_layernorm,
    // post_feedforward_layernorm).
    size_t attn_norm, wq, wk, wv, wo, bq, bk, bv, bo, q_norm, k_norm, mlp_norm, w_gate, w_up, w_down;
    size_t post_attn_norm, post_ff_norm;
} layer_offsets;

// A packed batch: n_tokens tokens holding n_seqs sequences back to back.
typedef struct model_batch {
    int n_tokens, n_seqs;
    const int *tokens;      // [n_tokens]
    const int *targets;     // [n_tokens] token whose log-prob is wanted at each position, -1 for none
    const int *pos;         // [n_tokens] position ids, restarting per sequence
    const int *cu_seqlens;  // [n_seqs + 1] sequence boundaries
    // Qwen2.5-VL (model/vision.h): the images whose embeddings replace the image-pad tokens, in order
    int n_images;
    const float *pixel_values;    // [n_patches, 3 * temporal_patch * patch^2]
    const int *image_grid_thw;    // [n_images, 3]
} model_batch;

typedef struct model_acts model_acts;

typedef struct model {
    model_config cfg;
    int nparams;
    model_param *params;
    layer_offsets *layer;   // [layers]
    size_t off_embed, off_norm, off_lm_head;  // off_lm_head == off_embed when tied
    size_t off_score;       // reward models: score.weight [1, hidden] (SIZE_MAX otherwise)
    size_t numel;           // total parameter count
    float *w;               // [numel] fp32 master weights
    float *g;               // [gnumel] gradients of the trainable parameters (NULL until model_enable_grad)
    size_t gnumel;          // trainable parameter count (numel unless LoRA froze the base)
    struct lora_set *lora;  // LoRA adapters (model/lora.h), NULL without
    float *inv_freq;        // [head_dim/2] full-attention layers
    float *inv_freq_local;  // [head_dim/2] Gemma 3's sliding layers (rope_local_base_freq); NULL otherwise
    st_dtype file_dtype;    // dtype of the loaded checkpoint; saves use it too
    char *config_text;      // the config.json we were loaded from, written back unchanged
    char *source_dir;       // where tokenizer files are copied from on save
    const struct kernels *K;
    model_acts *acts;
    // A frozen base read in place (model_load_frozen): the files stay mapped while any
    // parameter's bf16 points into them; m->w is then an anonymous MAP_NORESERVE mapping
    // of w_map_bytes whose in-place parts are never touched (no memory) and PROT_NONE.
    struct st_file *maps;
    int nmaps, nbf16;       // open mappings; parameters read in place
    size_t w_map_bytes;     // 0: m->w is malloc'ed
    struct vision *vis;     // Qwen2.5-VL's vision tower and M-RoPE (model/vision.h), NULL for text models
    // --bf16 mixed precision (model_bf16_enable): a bf16 copy [numel] of the fp32 weights
    // (round to nearest even) that the linear layers read through the backend's bf16 x bf16
    // kernels; NULL: fp32 GEMMs. The optimizer updates w, then refreshes this copy.
    uint16_t *w16;
    int checkpointing;      // activation recomputation (model_set_checkpointing)
} model;

// Per-architecture constants of the forward, shared with the decoder (kv_cache.c):
// the embedding multiplier (Gemma 3: sqrt(hidden) rounded to the weights' dtype, as
// transformers' Gemma3TextScaledWordEmbedding; else 1), the RoPE table of layer l, and
// the factor on q that turns the kernels' 1/sqrt(head_dim) into Gemma's
// query_pre_attn_scalar^-0.5 (1 for the others).
float model_embed_scale(const model *m);
const float *model_layer_inv_freq(const model *m, int l);
float model_query_scale(const model *m);

// Builds the parameter table for a config and allocates zeroed weights.
int model_create(model *m, const model_config *c, tm_error *err);
// The table alone (m->w NULL): for model_save_random, which writes weights it never holds.
int model_create_shape(model *m, const model_config *c, tm_error *err);
// Random init (normal(0, 0.02) for matrices and biases, ones for norms (zeros for
// Gemma's, whose scale is 1 + weight)), deterministic in seed.
void model_init_random(model *m, uint64_t seed);
// The next n values of parameter i in that init, drawn from r (model_init_random draws the
// parameters in table order from one generator seeded with seed).
void model_random_values(const model *m, int i, rng *r, float *dst, size_t n);
// Loads a Hugging Face directory (config.json + model.safetensors or sharded index).
int model_load(model *m, const char *dir, tm_error *err);
// As model_load, for a model that is trained under LoRA only (model_lora_attach or
// model_lora_prepare follows, freezing the base): in a bf16 checkpoint the weights of the
// linear projections (and an untied embedding) are used where the file's mapping has them,
// bf16, through the bf16 kernels, and never converted to fp32, so the resident memory is
// about the file's size plus what training adds. Other dtypes load as model_load does.
// A module made trainable later (--modules-to-save) or a merge converts its weights then
// (model_materialize).
int model_load_frozen(model *m, const char *dir, tm_error *err);
// Converts parameter i, read in place, to fp32 in m->w (a no-op for the others).
int model_materialize(model *m, int i, tm_error *err);
// Grows m->w to numel floats (new parameters appended: LoRA), keeping its contents.
int model_w_resize(model *m, size_t numel, tm_error *err);
// The linear layers and the embedding as the model runs them. W / E point into m->w at a
// weight's offset; a weight read in place goes to the backend's bf16 kernels instead (its
// gradient dW must then be NULL: it is frozen). Same contracts as the kernels.
void model_linear_fwd(const model *m, float *y, const float *x, const float *W, const float *b, int N, int in, int out);
void model_linear_bwd(const model *m, float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                      int N, int in, int out);
void model_embedding_fwd(const model *m, float *y, const int *tok, const float *E, int N, int D);
void model_lmhead_fwd(const model *m, float *logp, float *entropy, float *lse, const float *h, const float *W,
                      const int *targets, int N, int D, int V, float *scratch);
void model_lmhead_bwd(const model *m, float *dh, float *dW, const float *dlogp, const float *dentropy, const float *h,
                      const float *W, const int *targets, const float *lse, const float *entropy, int N, int D, int V,
                      float *scratch);
size_t model_lmhead_scratch_floats(const model *m, int N);
// wbar[D] = the mean over the vocabulary of the lm-head's rows, in double (DPO's logit metrics)
void model_lm_head_mean(const model *m, double *wbar);
// --bf16: allocates m->w16 (if absent) and fills it from m->w; from then on every linear
// layer runs in bf16 x bf16 with fp32 accumulation (the lm-head, norms, attention and
// embedding stay fp32). Reports the kernel path once on stderr.
int model_bf16_enable(model *m, tm_error *err);
// Refreshes m->w16 from the fp32 master m->w (after an optimizer step or a reload).
void model_bf16_refresh(model *m);
// The bf16 data of the weight at offset off when it is read in place, else NULL.
const uint16_t *model_weight_bf16(const model *m, size_t off);
// model_create with m->w an anonymous MAP_NORESERVE mapping (model_load_frozen).
int model_create_mapped(model *m, const model_config *c, tm_error *err);
// weights.c internals: such a mapping of numel floats (its size in *bytes); m->w and the
// file mappings released; the in-place parameters' pages of m->w made PROT_NONE.
float *model_w_map(size_t numel, size_t *bytes);
void model_w_release(model *m);
void model_guard_inplace(model *m);
// Loads a reward model: a *ForSequenceClassification directory as it is, or a causal LM
// whose lm-head is dropped for a new score head (seeded). Saved as the former.
int model_load_reward(model *m, const char *dir, uint64_t seed, tm_error *err);
// Writes a Hugging Face directory: config.json, model.safetensors (or shards of at most
// max_shard_bytes with model.safetensors.index.json; 0 = never shard), and the tokenizer
// files of the directory the model came from. Every file is written atomically.
int model_save(const model *m, const char *dir, size_t max_shard_bytes, tm_error *err);
// model_init_random(m, seed) then model_save(m, dir, 0, err), byte for byte, for a model
// made by model_create_shape: each tensor is generated while it is written, so memory
// stays one chunk however large the model (an 8B model's fp32 weights would be 32 GB).
int model_save_random(const model *m, const char *dir, uint64_t seed, tm_error *err);
void model_free(model *m);

const model_param *model_find_param(const model *m, const char *name);
// Adds a parameter to the table before the weights exist (model_create and its parts, e.g.
// model/vision.c); its offset goes to *off.
int model_add_param(model *m, const char *name, int ndim, int64_t d0, int64_t d1, int decay, size_t *off);
// The gradient of the parameter element at weight offset off, NULL when that parameter
// is frozen, off is SIZE_MAX (absent) or gradients are not enabled.
float *model_grad(const model *m, size_t off);
// Allocates the gradient array (zeroed) for the trainable parameters.
int model_enable_grad(model *m, tm_error *err);
void model_zero_grad(model *m);
// Sizes the activation arena for batches of up to max_tokens tokens (and sequences of
// up to max_tokens). Safe to call again with a larger size.
int model_reserve(model *m, int max_tokens, tm_error *err);
// Activation recomputation (TRL's --gradient-checkpointing): the arena keeps only the
// residual stream entering each layer (L + 1 slices of [N, hidden]) plus one layer's
// internals; the backward recomputes layer l's forward from its input before its
// backward, with the same kernels on the same inputs, so gradients are bit for bit those
// without it, at the cost of about one more forward. Takes effect at the next
// model_reserve (or forward), which re-lays the arena out when the setting changed.
void model_set_checkpointing(model *m, int on);
// Bytes held by weights, gradients and activations (for reports).
size_t model_bytes(const model *m);
// Bytes of the activation arena alone (0 before model_reserve).
size_t model_activation_bytes(const model *m);

// Checks a batch against the model (token ids in range, boundaries consistent).
int model_check_batch(const model *m, const model_batch *b, tm_error *err);
// Forward: logp[i] = log p(targets[i] | tokens[..i]) (0 where targets[i] < 0);
// entropy[i] of the next-token distribution when entropy != NULL.
int model_forward(model *m, const model_batch *b, float *logp, float *entropy, tm_error *err);
// The same at a sampling temperature T > 0 (TRL's and verl's logits / T): logp[i] =
// log softmax(z_i / T)[targets[i]] and entropy[i] that of softmax(z_i / T), over the whole
// vocabulary (no top-k / top-p). model_backward then differentiates these (dL/dz = (1/T) *
// the softmax(z/T) terms). model_last_hidden stays the final hidden state itself (not / T),
// so that another head reading it (PPO's value head) does not depend on T.
int model_forward_temp(model *m, const model_batch *b, double temperature, float *logp, float *entropy, tm_error *err);
// The final normalized hidden states [n_tokens, hidden] of the last forward (the
// lm-head's input), valid until the next forward; and the lm-head matrix [vocab, hidden]
// (read it through model_linear_fwd / model_lm_head_mean: it may be bf16 read in place,
// model_load_frozen, and then its fp32 slots are not mapped).
const float *model_last_hidden(const model *m);
const float *model_lm_head(const model *m);
// The trunk alone: everything up to the final norm (model_last_hidden), for heads other
// than the lm-head; model_backward_hidden takes dL/d(final hidden) [n_tokens, hidden].
int model_forward_hidden(model *m, const model_batch *b, tm_error *err);
void model_backward_hidden(model *m, const model_batch *b, const float *dxf);
// Reward models (cfg.num_labels == 1): rewards[s] = score head on the last token of
// sequence s; the backward takes dL/drewards [n_seqs].
int model_reward_forward(model *m, const model_batch *b, float *rewards, tm_error *err);
void model_reward_backward(model *m, const model_batch *b, const float *drewards);
// Backward of the last forward (at its temperature): accumulates into m->g given dL/dlogp
// (and dL/dentropy, which requires that the forward computed entropy).
void model_backward(model *m, const model_batch *b, const float *dlogp, const float *dentropy);
// model_backward plus dxf_extra [n_tokens, hidden], dL/d(final hidden) of another head read off the
// same forward (PPO's value head on model_last_hidden, before the division by T), in one pass
// through the trunk; the lm-head's part carries the forward's 1/T as model_backward's does.
void model_backward_extra(model *m, const model_batch *b, const float *dlogp, const float *dentropy, const float *dxf_extra);
