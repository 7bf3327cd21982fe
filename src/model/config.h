// model/config: the architecture hyperparameters read from a Hugging Face config.json
// (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM), and the presets of
// `temper init`. Anything we do not implement is an error that names the field,
// never a silently different model.
#pragma once
#include "base/error.h"
#include "base/json.h"

typedef enum { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3, ARCH_GEMMA3, ARCH_QWEN2_5_VL, ARCH_QWEN2_VL, ARCH_COUNT } model_arch;
// Qwen2.5-VL and Qwen2-VL: a Qwen2 language model with M-RoPE and a vision tower (model/vision.h).
static inline int model_arch_is_vl(model_arch a) { return a == ARCH_QWEN2_5_VL || a == ARCH_QWEN2_VL; }

// Layers whose attention kind (sliding or full) a config can name one by one.
#define CONFIG_MAX_LAYERS 1024

typedef struct model_config {
    model_arch arch;
    int hidden;        // hidden_size
    int layers;        // num_hidden_layers
    int heads;         // num_attention_heads
    int kv_heads;      // num_key_value_heads (GQA)
    int head_dim;      // head_dim (default hidden / heads)
    int ffn;           // intermediate_size
    int vocab;         // vocab_size
    int max_pos;       // max_position_embeddings
    float rms_eps;     // rms_norm_eps
    float rope_theta;  // rope_theta
    int tie_embeddings;// tie_word_embeddings
    int attn_bias;     // q/k/v biases (Qwen2 always; Llama with attention_bias)
    int o_bias;        // o_proj bias (Llama with attention_bias)
    int qk_norm;       // per-head RMSNorm on q and k (Qwen3)
    // rope_scaling {"rope_type": "llama3", ...}
    int rope_llama3;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    // rope_scaling {"rope_type": "linear", "factor": f}: inv_freq / f (Gemma 3: global layers only)
    float rope_linear_factor;  // 0: none
    // Gemma 3 (Gemma3ForCausalLM, model_type gemma3_text)
    int norm_ofs;          // every RMSNorm scales by 1 + weight (weights stored minus one)
    int sandwich_norm;     // post_attention_layernorm / post_feedforward_layernorm on each branch's
                           // output, pre_feedforward_layernorm before the MLP
    int gelu_tanh;         // MLP gate activation gelu_pytorch_tanh instead of silu
    int embed_scale;       // embeddings times sqrt(hidden_size), rounded to the weights' dtype
    float attn_scalar;     // query_pre_attn_scalar: scores scaled by attn_scalar^-0.5 (0: head_dim)
    int sliding_window;    // keys within the last sliding_window positions (sliding layers)
    float rope_local_theta;// rope_local_base_freq: RoPE base of the sliding layers (unscaled)
    unsigned char layer_sliding[CONFIG_MAX_LAYERS];  // 1: "sliding_attention", 0: "full_attention"
    int bos_token_id, eos_token_id;  // -1 when absent
    int num_labels;    // 0: causal LM (lm-head); 1: reward model (*ForSequenceClassification, score head)
    // Qwen2.5-VL (ARCH_QWEN2_5_VL) and Qwen2-VL (ARCH_QWEN2_VL): a Qwen2 language model with
    // M-RoPE and a vision tower (model/vision.h); the fields are vision_config's, parsed in
    // model/vision_config.c. Qwen2-VL's names: embed_dim -> hidden, hidden_size -> out_hidden,
    // embed_dim * mlp_ratio -> ffn; it has no windows (window 0: every block attends the image).
    struct {
        int depth, hidden, heads, ffn, out_hidden;  // depth, hidden_size, num_heads, intermediate_size, out_hidden_size
        int patch, temporal_patch, merge, window;   // patch_size, temporal_patch_size, spatial_merge_size, window_size (px)
        int n_fullatt;
        int fullatt[64];                            // fullatt_block_indexes
        int tokens_per_second;
    } vis;
    int mrope_section[3];  // rope_scaling.mrope_section: frequency bands of t, h, w (sum head_dim/2)
    int image_token_id, video_token_id, vision_start_token_id, vision_end_token_id;
} model_config;

const char *model_arch_name(model_arch a);           // "LlamaForCausalLM", ...
const char *model_arch_cls_name(model_arch a);       // "LlamaForSequenceClassification", ...
int model_arch_from_short(const char *s, model_arch *a);  // "llama" | "qwen2" | "qwen3" | "gemma3"

// Parses a config.json document; errors name the path and the field.
int config_from_json(model_config *c, const json *root, const char *path, tm_error *err);
int config_load(model_config *c, const char *path, tm_error *err);
// Preset "tiny" or "small" for the given architecture (the bench configs), or a released
// Qwen3 shape (arch qwen3 only): "qwen3-0.6b", "qwen3-1.7b", "qwen3-8b".
int config_preset(model_config *c, model_arch arch, const char *preset, tm_error *err);
int config_is_qwen3_preset(const char *preset);
// Writes a config.json that transformers loads (used by `temper init`).
void config_to_json(const model_config *c, const char *torch_dtype, sbuf *out);
// Checks internal consistency (heads divide, head_dim even, ...).
int config_validate(const model_config *c, const char *path, tm_error *err);

// RoPE inverse frequencies [head_dim/2] of the full-attention layers, with llama3 or
// linear scaling when configured.
void config_rope_inv_freq(const model_config *c, float *inv_freq);
// Those of Gemma 3's sliding layers: base rope_local_base_freq, never scaled.
void config_rope_inv_freq_local(const model_config *c, float *inv_freq);
// Qwen2.5-VL's config (model/vision_config.c): the vision_config, mrope_section and token ids of
// root (the language model's fields were read by config_from_json); the config.json text; the preset.
int config_vl_fields(model_config *c, const json *root, const char *path, tm_error *err);
void config_vl_to_json(const model_config *c, const char *torch_dtype, sbuf *out);
int config_vl_preset(model_config *c, model_arch arch, const char *preset, tm_error *err);
// The sliding window of layer l (0: full attention).
int config_layer_window(const model_config *c, int l);
