// model/config: the architecture hyperparameters read from a Hugging Face config.json
// (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM), and the presets of
// `temper init`. Anything we do not implement is an error that names the field,
// never a silently different model.
#pragma once
#include "base/error.h"
#include "base/json.h"

typedef enum { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3 } model_arch;

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
    int bos_token_id, eos_token_id;  // -1 when absent
    int num_labels;    // 0: causal LM (lm-head); 1: reward model (*ForSequenceClassification, score head)
} model_config;

const char *model_arch_name(model_arch a);           // "LlamaForCausalLM", ...
const char *model_arch_cls_name(model_arch a);       // "LlamaForSequenceClassification", ...
int model_arch_from_short(const char *s, model_arch *a);  // "llama" | "qwen2" | "qwen3"

// Parses a config.json document; errors name the path and the field.
int config_from_json(model_config *c, const json *root, const char *path, tm_error *err);
int config_load(model_config *c, const char *path, tm_error *err);
// Preset "tiny" or "small" for the given architecture (the bench configs).
int config_preset(model_config *c, model_arch arch, const char *preset, tm_error *err);
// Writes a config.json that transformers loads (used by `temper init`).
void config_to_json(const model_config *c, const char *torch_dtype, sbuf *out);
// Checks internal consistency (heads divide, head_dim even, ...).
int config_validate(const model_config *c, const char *path, tm_error *err);

// RoPE inverse frequencies [head_dim/2], with llama3 scaling when configured.
void config_rope_inv_freq(const model_config *c, float *inv_freq);
