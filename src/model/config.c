#include "model/config.h"
#include <math.h>
#include <string.h>

static const char *arch_names[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Gemma3ForCausalLM",
                                   "Qwen2_5_VLForConditionalGeneration", "Qwen2VLForConditionalGeneration"};
static const char *cls_names[] = {"LlamaForSequenceClassification", "Qwen2ForSequenceClassification",
                                  "Qwen3ForSequenceClassification", "Gemma3TextForSequenceClassification",
                                  "Qwen2_5_VLForSequenceClassification", "Qwen2VLForSequenceClassification"};
static const char *model_types[] = {"llama", "qwen2", "qwen3", "gemma3_text", "qwen2_5_vl", "qwen2_vl"};
static const char *short_names[] = {"llama", "qwen2", "qwen3", "gemma3", "qwen2_5_vl", "qwen2_vl"};

const char *model_arch_name(model_arch a) { return arch_names[a]; }
const char *model_arch_cls_name(model_arch a) { return cls_names[a]; }

int model_arch_from_short(const char *s, model_arch *a) {
    for (int i = 0; i < ARCH_COUNT; i++)
        if (!strcmp(s, short_names[i])) { *a = (model_arch)i; return 0; }
    return -1;
}

// Reads an integer field; required fields missing are an error.
static int get_int(const json *r, const char *key, int def, int required, int *out, const char *path, tm_error *err) {
    json *v = json_get(r, key);
    if (!v || v->type == JSON_NULL) {
        if (required) return tm_fail(err, "%s: missing field \"%s\"", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_int(v)) {
        if (v->type == JSON_NUMBER) return tm_fail(err, "%s: field \"%s\" must be an integer (got %.*s)", path, key, (int)v->len, v->str);
        return tm_fail(err, "%s: field \"%s\" must be an integer", path, key);
    }
    if (v->num < -1 || v->num > 1e9)
        return tm_fail(err, "%s: field \"%s\" is %.*s, outside the supported range -1 .. 1000000000", path, key, (int)v->len, v->str);
    *out = (int)v->num;
    return 0;
}

static int get_float(const json *r, const char *key, float def, float *out, const char *path, tm_error *err) {
    json *v = json_get(r, key);
    if (!v || v->type == JSON_NULL) { *out = def; return 0; }
    if (v->type != JSON_NUMBER) return tm_fail(err, "%s: field \"%s\" must be a number", path, key);
    *out = (float)v->num;
    return 0;
}

// bos/eos may be an int or a list of ints (Llama 3 instruct); we keep the first.
static int first_token_id(const json *r, const char *key) {
    json *v = json_get(r, key);
    if (json_is_int(v)) return (int)v->num;
    if (v && v->type == JSON_ARRAY && v->n > 0 && json_is_int(&v->items[0])) return (int)v->items[0].num;
    return -1;
}

// One RoPE description (rope_scaling, or one of transformers 5's rope_parameters):
// its rope_type (default, linear, llama3) and that type's fields. `field` names it in errors.
static int rope_type_fields(model_config *c, const json *rs, const char *field, const char *path, tm_error *err) {
    const char *t = json_get_str(rs, "rope_type", json_get_str(rs, "type", "default"));
    if (!strcmp(t, "linear")) {
        if (get_float(rs, "factor", 1.0f, &c->rope_linear_factor, path, err)) return -1;
        if (!(c->rope_linear_factor > 0)) return tm_fail(err, "%s: field \"%s.factor\" must be positive", path, field);
    } else if (!strcmp(t, "llama3")) {
        c->rope_llama3 = 1;
        if (get_float(rs, "factor", 8.0f, &c->rope_factor, path, err) ||
            get_float(rs, "low_freq_factor", 1.0f, &c->rope_low_freq_factor, path, err) ||
            get_float(rs, "high_freq_factor", 4.0f, &c->rope_high_freq_factor, path, err) ||
            get_int(rs, "original_max_position_embeddings", 8192, 0, &c->rope_original_max_pos, path, err))
            return -1;
    } else if (strcmp(t, "default")) {
        return tm_fail(err, "%s: unsupported field value \"%s.rope_type\": \"%s\" (supported: linear, llama3)", path, field, t);
    }
    return 0;
}

// RoPE as transformers 4 writes it (rope_theta, rope_scaling, Gemma's rope_local_base_freq)
// or as transformers 5 does: rope_parameters {rope_theta, rope_type, ...}, per layer type
// for Gemma 3 ({"full_attention": {...}, "sliding_attention": {...}}).
static int rope_fields(model_config *c, const json *r, const char *path, tm_error *err) {
    json *rp = json_get(r, "rope_parameters"), *rs = json_get(r, "rope_scaling");
    if (rp && rp->type == JSON_OBJECT) {
        json *full = json_get(rp, "full_attention"), *slide = json_get(rp, "sliding_attention");
        if (!full && !slide) {
            return get_float(rp, "rope_theta", c->rope_theta, &c->rope_theta, path, err) ||
                   rope_type_fields(c, rp, "rope_parameters", path, err);
        }
        if (full && (full->type != JSON_OBJECT || get_float(full, "rope_theta", c->rope_theta, &c->rope_theta, path, err) ||
                     rope_type_fields(c, full, "rope_parameters.full_attention", path, err)))
            return full->type != JSON_OBJECT ? tm_fail(err, "%s: field \"rope_parameters.full_attention\" must be an object", path) : -1;
        if (slide) {
            if (!c->sliding_window) return tm_fail(err, "%s: unsupported field \"rope_parameters.sliding_attention\" (sliding layers are Gemma 3's only)", path);
            if (slide->type != JSON_OBJECT) return tm_fail(err, "%s: field \"rope_parameters.sliding_attention\" must be an object", path);
            const char *t = json_get_str(slide, "rope_type", json_get_str(slide, "type", "default"));
            if (strcmp(t, "default"))
                return tm_fail(err, "%s: unsupported field value \"rope_parameters.sliding_attention.rope_type\": \"%s\" (the sliding layers' RoPE is unscaled)", path, t);
            if (get_float(slide, "rope_theta", c->rope_local_theta, &c->rope_local_theta, path, err)) return -1;
        }
        return 0;
    }
    if (rp && rp->type != JSON_NULL) return tm_fail(err, "%s: field \"rope_parameters\" must be an object or null", path);
    if (rs && rs->type == JSON_OBJECT) return rope_type_fields(c, rs, "rope_scaling", path, err);
    if (rs && rs->type != JSON_NULL) return tm_fail(err, "%s: field \"rope_scaling\" must be an object or null", path);
    return 0;
}

// Gemma 3's own fields (Gemma3TextConfig's names and defaults). What we do not
// implement (logit soft-capping, bidirectional attention, other activations) is refused.
static int gemma3_fields(model_config *c, const json *r, const char *path, tm_error *err) {
    c->norm_ofs = c->sandwich_norm = c->gelu_tanh = c->embed_scale = c->qk_norm = 1;
    const char *act = json_get_str(r, "hidden_activation", "gelu_pytorch_tanh");
    if (strcmp(act, "gelu_pytorch_tanh"))
        return tm_fail(err, "%s: unsupported field value \"hidden_activation\": \"%s\" (only gelu_pytorch_tanh)", path, act);
    static const char *unsupported[] = {"attn_logit_softcapping", "final_logit_softcapping"};
    for (int i = 0; i < 2; i++) {
        json *v = json_get(r, unsupported[i]);
        if (v && v->type != JSON_NULL)
            return tm_fail(err, "%s: unsupported field value \"%s\": %.*s (soft-capping is not implemented; Gemma 3 has null)", path,
                           unsupported[i], (int)v->len, v->str);
    }
    if (json_get_bool(r, "use_bidirectional_attention", 0))
        return tm_fail(err, "%s: unsupported field value \"use_bidirectional_attention\": true", path);
    int pattern;
    if (get_float(r, "query_pre_attn_scalar", 256.0f, &c->attn_scalar, path, err) ||
        get_int(r, "sliding_window", 4096, 0, &c->sliding_window, path, err) ||
        get_int(r, "sliding_window_pattern", 6, 0, &pattern, path, err) ||
        get_float(r, "rope_local_base_freq", 10000.0f, &c->rope_local_theta, path, err))
        return -1;
    if (!(c->attn_scalar > 0)) return tm_fail(err, "%s: field \"query_pre_attn_scalar\" must be positive", path);
    if (c->sliding_window <= 0) return tm_fail(err, "%s: field \"sliding_window\" must be positive", path);
    if (c->layers > CONFIG_MAX_LAYERS) return tm_fail(err, "%s: %d layers, at most %d supported", path, c->layers, CONFIG_MAX_LAYERS);
    json *lt = json_get(r, "layer_types");
    if (lt && lt->type != JSON_NULL) {
        if (lt->type != JSON_ARRAY || lt->n != c->layers)
            return tm_fail(err, "%s: field \"layer_types\" must list one type per layer (%d)", path, c->layers);
        for (int l = 0; l < c->layers; l++) {
            const json *t = &lt->items[l];
            int sliding = t->type == JSON_STRING && !strcmp(t->str, "sliding_attention");
            if (!sliding && !(t->type == JSON_STRING && !strcmp(t->str, "full_attention")))
                return tm_fail(err, "%s: field \"layer_types\"[%d] must be \"sliding_attention\" or \"full_attention\"", path, l);
            c->layer_sliding[l] = (unsigned char)sliding;
        }
    } else {
        // transformers: sliding unless (i + 1) is a multiple of sliding_window_pattern
        if (pattern <= 0) return tm_fail(err, "%s: field \"sliding_window_pattern\" must be positive", path);
        for (int l = 0; l < c->layers; l++) c->layer_sliding[l] = (l + 1) % pattern != 0;
    }
    return 0;
}

int config_from_json(model_config *c, const json *r, const char *path, tm_error *err) {
    memset(c, 0, sizeof *c);
    if (!r || r->type != JSON_OBJECT) return tm_fail(err, "%s: not a JSON object", path);
    json *archs = json_get(r, "architectures");
    const char *arch = NULL;
    if (archs && archs->type == JSON_ARRAY && archs->n > 0 && archs->items[0].type == JSON_STRING) arch = archs->items[0].str;
    const char *mt = json_get_str(r, "model_type", NULL);
    int found = 0;
    for (int i = 0; i < ARCH_COUNT; i++) {
        if ((arch && !strcmp(arch, arch_names[i])) || (!arch && mt && !strcmp(mt, model_types[i]))) {
            c->arch = (model_arch)i;
            found = 1;
        }
        if (arch && !strcmp(arch, cls_names[i])) {
            // a reward model: transformers derives num_labels from id2label (default 2)
            json *labels = json_get(r, "id2label");
            c->num_labels = labels && labels->type == JSON_OBJECT ? labels->n : (int)json_get_int(r, "num_labels", 2);
            if (c->num_labels != 1)
                return tm_fail(err, "%s: unsupported field value: %d labels (reward models have one score, num_labels 1)", path, c->num_labels);
            c->arch = (model_arch)i;
            found = 1;
        }
    }
    if (!found)
        return tm_fail(err, "%s: unsupported architecture \"%s\" (supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM and their ForSequenceClassification reward models; Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration)",
                       path, arch ? arch : mt ? mt : "(none)");
    const json *root = r;
    if (model_arch_is_vl(c->arch)) {  // transformers >= 4.52 nests the language model's fields in text_config
        const json *tc = json_get(r, "text_config");
        if (tc && tc->type == JSON_OBJECT && json_get(tc, "hidden_size")) r = tc;
    }
    if (get_int(r, "hidden_size", 0, 1, &c->hidden, path, err) || get_int(r, "num_hidden_layers", 0, 1, &c->layers, path, err) ||
        get_int(r, "num_attention_heads", 0, 1, &c->heads, path, err) || get_int(r, "intermediate_size", 0, 1, &c->ffn, path, err) ||
        get_int(r, "vocab_size", 0, 1, &c->vocab, path, err) ||
        get_int(r, "num_key_value_heads", c->heads, 0, &c->kv_heads, path, err) ||
        get_int(r, "max_position_embeddings", 2048, 0, &c->max_pos, path, err) ||
        get_float(r, "rms_norm_eps", 1e-6f, &c->rms_eps, path, err) ||
        get_float(r, "rope_theta", c->arch == ARCH_GEMMA3 ? 1e6f : 10000.0f, &c->rope_theta, path, err))
        return -1;
    if (c->heads <= 0) return tm_fail(err, "%s: field \"num_attention_heads\" must be positive", path);
    // Gemma3TextConfig's head_dim defaults to 256, the others' to hidden / heads
    if (get_int(r, "head_dim", c->arch == ARCH_GEMMA3 ? 256 : c->hidden / c->heads, 0, &c->head_dim, path, err)) return -1;
    // LlamaConfig, Qwen2Config, Qwen3Config default to untied, Gemma3TextConfig to tied
    c->tie_embeddings = json_get_bool(r, "tie_word_embeddings", c->arch == ARCH_GEMMA3);
    if (c->arch == ARCH_QWEN2 || model_arch_is_vl(c->arch)) c->attn_bias = 1;
    if (c->arch == ARCH_QWEN3) c->qk_norm = 1;
    // Qwen2 always has q/k/v biases and none on o_proj; Llama and Qwen3 put
    // attention_bias on all four projections.
    if (c->arch != ARCH_QWEN2 && !model_arch_is_vl(c->arch) && json_get_bool(r, "attention_bias", 0)) c->attn_bias = c->o_bias = 1;
    if (json_get_bool(r, "mlp_bias", 0)) return tm_fail(err, "%s: unsupported field value \"mlp_bias\": true", path);
    if (c->arch == ARCH_GEMMA3) {
        if (gemma3_fields(c, r, path, err)) return -1;
    } else {
        const char *act = json_get_str(r, "hidden_act", "silu");
        if (strcmp(act, "silu")) return tm_fail(err, "%s: unsupported field value \"hidden_act\": \"%s\" (only silu)", path, act);
        if (json_get_bool(r, "use_sliding_window", 0))
            return tm_fail(err, "%s: unsupported field value \"use_sliding_window\": true (sliding-window attention is implemented for Gemma 3 only)", path);
    }
    if (model_arch_is_vl(c->arch)) {
        if (config_vl_fields(c, root, path, err)) return -1;
    } else if (rope_fields(c, r, path, err)) {
        return -1;
    }
    c->bos_token_id = first_token_id(root, "bos_token_id");
    c->eos_token_id = first_token_id(root, "eos_token_id");
    return config_validate(c, path, err);
}

int config_validate(const model_config *c, const char *path, tm_error *err) {
    if (c->hidden <= 0 || c->layers <= 0 || c->ffn <= 0 || c->vocab <= 0 || c->head_dim <= 0 || c->kv_heads <= 0)
        return tm_fail(err, "%s: sizes must be positive", path);
    if (c->heads % c->kv_heads) return tm_fail(err, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->heads, c->kv_heads);
    if (c->head_dim % 2) return tm_fail(err, "%s: head_dim %d must be even for RoPE", path, c->head_dim);
    if (!(c->rms_eps > 0) || !(c->rope_theta > 0)) return tm_fail(err, "%s: rms_norm_eps and rope_theta must be positive", path);
    if (c->rope_llama3 && !(c->rope_factor > 0 && c->rope_high_freq_factor > c->rope_low_freq_factor && c->rope_original_max_pos > 0))
        return tm_fail(err, "%s: invalid rope_scaling parameters", path);
    if (c->sliding_window && !(c->rope_local_theta > 0)) return tm_fail(err, "%s: rope_local_base_freq must be positive", path);
    return 0;
}

int config_load(model_config *c, const char *path, tm_error *err) {
    json_doc *d = json_parse_file(path, err);
    if (!d) return -1;
    int rc = config_from_json(c, json_root(d), path, err);
    json_doc_free(d);
    return rc;
}

// Qwen3's released shapes (the Qwen/Qwen3-*B config.json files): head_dim 128 whatever the
// width, 8 KV heads, vocabulary 151936, RoPE base 1e6, eps 1e-6; the two small ones tie the
// embeddings. Random weights in the real shapes are what the memory and speed benches need.
static const struct {
    const char *name;
    int hidden, layers, heads, ffn, tie;
} qwen3_shapes[] = {
    {"qwen3-0.6b", 1024, 28, 16, 3072, 1},
    {"qwen3-1.7b", 2048, 28, 16, 6144, 1},
    {"qwen3-8b", 4096, 36, 32, 12288, 0},
};

int config_is_qwen3_preset(const char *preset) {
    for (size_t i = 0; i < sizeof qwen3_shapes / sizeof qwen3_shapes[0]; i++)
        if (!strcmp(preset, qwen3_shapes[i].name)) return 1;
    return 0;
}

int config_preset(model_config *c, model_arch arch, const char *preset, tm_error *err) {
    if (model_arch_is_vl(arch)) return config_vl_preset(c, arch, preset, err);
    memset(c, 0, sizeof *c);
    c->arch = arch;
    for (size_t i = 0; i < sizeof qwen3_shapes / sizeof qwen3_shapes[0]; i++) {
        if (strcmp(preset, qwen3_shapes[i].name)) continue;
        if (arch != ARCH_QWEN3) return tm_fail(err, "preset %s is a Qwen3 shape: use it with --arch qwen3", preset);
        c->hidden = qwen3_shapes[i].hidden, c->layers = qwen3_shapes[i].layers, c->heads = qwen3_shapes[i].heads;
        c->kv_heads = 8, c->head_dim = 128, c->ffn = qwen3_shapes[i].ffn, c->vocab = 151936;
        c->tie_embeddings = qwen3_shapes[i].tie;
        c->max_pos = 40960, c->rms_eps = 1e-6f, c->rope_theta = 1000000.0f, c->qk_norm = 1;
        c->bos_token_id = 151643, c->eos_token_id = 151645;
        return 0;
    }
    if (!strcmp(preset, "tiny")) {
        c->layers = 4; c->hidden = 256; c->heads = 4; c->kv_heads = 2; c->ffn = 768; c->vocab = 8192;
    } else if (!strcmp(preset, "small")) {
        c->layers = 12; c->hidden = 768; c->heads = 12; c->kv_heads = 4; c->ffn = 2048; c->vocab = 32000;
    } else {
        return tm_fail(err, "unknown preset \"%s\" (tiny, small, qwen3-0.6b, qwen3-1.7b, qwen3-8b)", preset);
    }
    c->head_dim = c->hidden / c->heads;
    c->max_pos = 4096;
    c->rms_eps = 1e-6f;
    c->rope_theta = arch == ARCH_LLAMA ? 500000.0f : 1000000.0f;
    c->attn_bias = arch == ARCH_QWEN2;
    c->qk_norm = arch == ARCH_QWEN3;
    c->bos_token_id = c->eos_token_id = -1;
    if (arch == ARCH_GEMMA3) {
        // Gemma 3's shape of block: 4 norms, q/k norm, GeGLU, 5 sliding layers to 1 full.
        // tiny has 8 layers so that full attention (layer 5) sits between sliding ones.
        if (!strcmp(preset, "tiny")) c->layers = 8;
        c->norm_ofs = c->sandwich_norm = c->gelu_tanh = c->embed_scale = c->qk_norm = 1;
        c->tie_embeddings = 1;
        c->attn_scalar = (float)c->head_dim;
        c->sliding_window = !strcmp(preset, "tiny") ? 128 : 512;
        c->rope_local_theta = 10000.0f;
        for (int l = 0; l < c->layers; l++) c->layer_sliding[l] = (l + 1) % 6 != 0;
    }
    return 0;
}

// Gemma 3's fields as Gemma3TextConfig writes them.
static void gemma3_to_json(const model_config *c, sbuf *o) {
    sbuf_puts(o, "  \"hidden_activation\": \"gelu_pytorch_tanh\",\n  \"query_pre_attn_scalar\": ");
    sbuf_json_float(o, c->attn_scalar);
    sbuf_printf(o, ",\n  \"sliding_window\": %d,\n  \"rope_local_base_freq\": ", c->sliding_window);
    sbuf_json_float(o, c->rope_local_theta);
    sbuf_puts(o, ",\n  \"layer_types\": [");
    for (int l = 0; l < c->layers; l++)
        sbuf_printf(o, "%s\"%s\"", l ? ", " : "", c->layer_sliding[l] ? "sliding_attention" : "full_attention");
    sbuf_puts(o, "],\n  \"attn_logit_softcapping\": null,\n  \"final_logit_softcapping\": null,\n");
}

void config_to_json(const model_config *c, const char *torch_dtype, sbuf *o) {
    if (model_arch_is_vl(c->arch)) { config_vl_to_json(c, torch_dtype, o); return; }
    sbuf_printf(o, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", arch_names[c->arch], model_types[c->arch]);
    sbuf_printf(o, "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n", c->hidden, c->layers, c->heads);
    sbuf_printf(o, "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"intermediate_size\": %d,\n", c->kv_heads, c->head_dim, c->ffn);
    sbuf_printf(o, "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->vocab, c->max_pos);
    sbuf_puts(o, "  \"rms_norm_eps\": ");
    sbuf_json_float(o, c->rms_eps);
    sbuf_puts(o, ",\n  \"rope_theta\": ");
    sbuf_json_float(o, c->rope_theta);
    if (c->rope_llama3) {
        sbuf_printf(o, ",\n  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %g, \"low_freq_factor\": %g, "
                       "\"high_freq_factor\": %g, \"original_max_position_embeddings\": %d}",
                    c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor, c->rope_original_max_pos);
    } else if (c->rope_linear_factor > 0) {
        sbuf_printf(o, ",\n  \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": %g}", c->rope_linear_factor);
    } else {
        sbuf_puts(o, ",\n  \"rope_scaling\": null");
    }
    sbuf_printf(o, ",\n  \"tie_word_embeddings\": %s,\n", c->tie_embeddings ? "true" : "false");
    if (c->arch == ARCH_GEMMA3) gemma3_to_json(c, o);
    else sbuf_puts(o, "  \"hidden_act\": \"silu\",\n");
    if (c->arch != ARCH_QWEN2) sbuf_printf(o, "  \"attention_bias\": %s,\n", c->o_bias ? "true" : "false");
    if (c->arch == ARCH_LLAMA) sbuf_puts(o, "  \"mlp_bias\": false,\n");
    if (c->arch == ARCH_QWEN2 || c->arch == ARCH_QWEN3) sbuf_puts(o, "  \"use_sliding_window\": false,\n");
    if (c->bos_token_id >= 0) sbuf_printf(o, "  \"bos_token_id\": %d,\n", c->bos_token_id);
    if (c->eos_token_id >= 0) sbuf_printf(o, "  \"eos_token_id\": %d,\n", c->eos_token_id);
    sbuf_puts(o, "  \"attention_dropout\": 0.0,\n  \"initializer_range\": 0.02,\n  \"use_cache\": true,\n");
    sbuf_printf(o, "  \"torch_dtype\": \"%s\"\n}\n", torch_dtype);
}

void config_rope_inv_freq(const model_config *c, float *inv_freq) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        // as transformers: computed in float32 from an integer exponent
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        if (c->rope_llama3) {
            // transformers' _compute_llama3_parameters
            float low_wl = (float)c->rope_original_max_pos / c->rope_low_freq_factor;
            float high_wl = (float)c->rope_original_max_pos / c->rope_high_freq_factor;
            float wl = 2.0f * (float)M_PI / f;
            float g = wl > low_wl ? f / c->rope_factor : f;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                float s = ((float)c->rope_original_max_pos / wl - c->rope_low_freq_factor) /
                          (c->rope_high_freq_factor - c->rope_low_freq_factor);
                g = (1 - s) * g / c->rope_factor + s * g;
            }
            f = g;
        }
        if (c->rope_linear_factor > 0) f /= c->rope_linear_factor;  // transformers' linear: inv_freq / factor
        inv_freq[i] = f;
    }
}

void config_rope_inv_freq_local(const model_config *c, float *inv_freq) {
    for (int i = 0; i < c->head_dim / 2; i++)
        inv_freq[i] = 1.0f / powf(c->rope_local_theta, (float)(2 * i) / (float)c->head_dim);
}

int config_layer_window(const model_config *c, int l) {
    return c->sliding_window > 0 && l < CONFIG_MAX_LAYERS && c->layer_sliding[l] ? c->sliding_window : 0;
}
