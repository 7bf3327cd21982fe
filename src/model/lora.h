// model/lora: LoRA adapters on the linear projections, as PEFT defines them.
//
// For a targeted projection y = x W^T (+ b), W [out, in], the adapter adds
//   y += s * (x A^T) B^T,   A [r, in], B [out, r],
// with s = alpha / r (alpha / sqrt(r) with rsLoRA). W + s B A is never formed: the
// forward computes u = x A^T [N, r] and adds s u B^T; the backward recomputes u and
// gives dB += s dy^T u, du = s dy B, dA += du^T x, dx += du A. A and B are stored
// row-major exactly as PEFT's lora_A.weight / lora_B.weight, so files need no
// transposes. Initialization is PEFT's default: A ~ U(-1/sqrt(in), 1/sqrt(in))
// (torch's kaiming_uniform_(a=sqrt(5)) on a [r, in] weight), B = 0, so an attached
// adapter starts as a no-op.
//
// A and B are parameters of the model (model_param with PEFT's key names, appended to
// the flat arrays by model_lora_attach), so the optimizer, gradient clipping and
// checkpoints treat them like any other trainable tensor; the base parameters become
// frozen (no gradient, no AdamW state) except those named in modules_to_save.
// Adapters can be switched off (model_lora_enable(m, 0)): the model is then the base
// bit for bit, which is the reference of DPO/KTO under LoRA (TRL's disable_adapter()).
//
// Dropout on the adapter input (PEFT's lora_dropout p): y += s B A (m ∘ x / (1 - p)),
// m_i ~ Bernoulli(1 - p), only in training forwards: a trainer arms it before the forward
// whose backward follows (model_lora_dropout_next) and every other forward (evaluation,
// reference, old log-probs, sampling) runs without. The mask is a hash of (seed, key,
// layer, projection, element): deterministic, independent of threads, regenerated in the
// backward, and the trainers derive the key from the optimizer step and the micro-batch,
// so a resumed run draws the same masks.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "kernels/kernels.h"

struct model;

typedef enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_NMOD } lora_module;

// The HF module name of a target ("q_proj", ...).
const char *lora_module_name(lora_module t);

typedef struct lora_config {
    int r;
    double alpha, dropout;
    int use_rslora;
    unsigned targets;             // bit (1 << lora_module) per targeted projection
    char modules_to_save[256];    // comma-separated HF module names trained fully ("" = none)
    char base_model[4096];        // base_model_name_or_path written to adapter_config.json
} lora_config;

// PEFT's defaults with TRL's ModelConfig values: r 16, alpha 32, dropout 0, q_proj,v_proj
// (lora_args_default: dropout 0.05, TRL's).
void lora_config_default(lora_config *c);
// "all-linear" (every projection but the lm-head, as PEFT), or comma-separated names
// (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj). Fills c->targets.
int lora_parse_targets(lora_config *c, const char *spec, tm_error *err);
int lora_config_check(const lora_config *c, tm_error *err);
// adapter scale s
double lora_scale(const lora_config *c);

typedef struct lora_set {
    lora_config cfg;
    float scale;
    int enabled;                  // 0: the base model (adapters off)
    int layers;
    size_t *offA, *offB;          // [layers * LORA_NMOD] offsets into model->w; SIZE_MAX when not targeted
    int cap;                      // tokens the scratch holds
    float *u, *du;                // scratch [cap, r]
    float *xd, *dxd;              // dropout scratch [cap, widest input] (dropout > 0 only)
    uint64_t seed;                // dropout streams
    int drop_armed, drop_active;  // armed for the next forward / active in the last one
    uint64_t drop_key_next, drop_key;
} lora_set;

// ---- the math, on plain arrays (exposed for the unit tests) ----
// y[N,out] += s (x A^T) B^T; u [N, r] scratch (holds x A^T afterwards).
void lora_linear_fwd(const struct kernels *K, float *y, const float *x, const float *A, const float *B, int N, int in,
                     int out, int r, float s, float *u);
// dx[N,in] += adapter part of dL/dx (dx may be NULL); dA [r,in] += ; dB [out,r] += .
void lora_linear_bwd(const struct kernels *K, float *dx, float *dA, float *dB, const float *dy, const float *x,
                     const float *A, const float *B, int N, int in, int out, int r, float s, float *u, float *du);
// A ~ U(-1/sqrt(in), 1/sqrt(in)) (torch's distribution, our generator); deterministic in seed.
void lora_init_a(float *A, int r, int in, uint64_t seed);
// Dropout: the stream of one (seed, key, layer, projection), and whether element idx of
// its input is kept (probability 1 - p).
uint64_t lora_dropout_stream(uint64_t seed, uint64_t key, int layer, int t);
int lora_dropout_keep(uint64_t stream, uint64_t idx, double p);

// ---- on a model ----
// Appends A and B for every targeted projection of every layer (PEFT names, PEFT init
// from seed), freezes the base except modules_to_save, and switches the adapters on.
// Must come before model_enable_grad.
int model_lora_attach(struct model *m, const lora_config *c, uint64_t seed, tm_error *err);
// Switches the adapters on (1) or off (0); returns the previous state (0 without LoRA).
int model_lora_enable(struct model *m, int on);
// Folds W += s B A into the base weights and drops the adapters (the model becomes a
// plain model again, every parameter trainable).
int model_lora_merge(struct model *m, tm_error *err);
void lora_free(lora_set *l);

// Model hooks (no-ops when the projection is not targeted or adapters are off):
// y += adapter(x) after the base projection; in the backward dx += adapter part and
// dA, dB accumulated.
void lora_fwd(struct model *m, int layer, lora_module t, float *y, const float *x, int N, int in, int out);
void lora_bwd(struct model *m, int layer, lora_module t, float *dx, const float *dy, const float *x, int N, int in, int out);
// Grows the scratch to n tokens. lora_reserve: for a forward without dropout (decoding);
// lora_begin_forward: a forward whose backward may follow (dropout if armed).
int lora_reserve(struct model *m, int n, tm_error *err);
int lora_begin_forward(struct model *m, int n, tm_error *err);
// Arms adapter dropout (p > 0) for the model's next forward with this key.
void model_lora_dropout_next(struct model *m, uint64_t key);

// ---- the trainers' flags (PEFT / TRL names) ----
typedef struct lora_args {
    int use_peft;                 // --use-peft
    int r;                        // --lora-r (16)
    double alpha, dropout;        // --lora-alpha (32), --lora-dropout (0.05)
    const char *target_modules;   // --lora-target-modules: names or all-linear (NULL: q_proj,v_proj)
    int use_rslora;               // --use-rslora
    const char *modules_to_save;  // --modules-to-save: comma-separated (NULL: none)
} lora_args;
void lora_args_default(lora_args *a);
// The flags' ranges and names (with --use-peft), before any work: rank, alpha, dropout,
// target modules.
int lora_args_check(const lora_args *a, tm_error *err);
// The trainer's policy under LoRA: when --use-peft is set or the model already carries
// adapters (an adapter directory was loaded). Attaches adapters built from the flags when
// the model has none (base_model_name_or_path = model_dir made absolute; a reward model
// saves its score head too, as PEFT's SEQ_CLS does), then, when resuming, reads the
// checkpoint's adapter tensors. Does nothing (returns 0) when LoRA is not in use.
int model_lora_prepare(struct model *m, const lora_args *a, const char *model_dir, const char *resume_dir, uint64_t seed,
                       tm_error *err);

// ---- PEFT files (lora_io.c) ----
// adapter_config.json + adapter_model.safetensors (fp32; lora_A/lora_B and the
// modules_to_save tensors under base_model.model.<HF name>) + the tokenizer files.
int lora_save(const struct model *m, const char *dir, tm_error *err);
// Is dir a PEFT adapter directory (has adapter_config.json)? Does it carry tokenizer files?
int lora_is_adapter_dir(const char *dir);
int lora_has_tokenizer(const char *dir);
// Loads base (base_model_name_or_path, or the --base-model override) + adapter; frozen:
// the base as model_load_frozen loads it (bf16 projections read in place).
int lora_load(struct model *m, const char *dir, int frozen, tm_error *err);
// Reads dir's adapter_model.safetensors into the adapters already attached to m (resume).
int lora_read_weights(struct model *m, const char *dir, tm_error *err);
// --base-model: the base to use for adapter directories instead of their base_model_name_or_path.
void lora_set_base_override(const char *dir);
