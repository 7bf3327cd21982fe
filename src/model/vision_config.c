// model/vision_config: Qwen2.5-VL's and Qwen2-VL's config.json fields beyond the Qwen2 language
// model (Qwen2_5_VLConfig / Qwen2_5_VLVisionConfig, Qwen2VLConfig / Qwen2VLVisionConfig names and
// defaults): vision_config, M-RoPE's mrope_section, the vision token ids; the config transformers
// loads; the `init` presets.
#include <string.h>
#include "model/config.h"

static int vl_int(const json *o, const char *key, int def, int *out, const char *path, const char *where, tm_error *err) {
    const json *v = json_get(o, key);
    if (!v || v->type == JSON_NULL) { *out = def; return 0; }
    if (!json_is_int(v) || v->num < 0 || v->num > 1e9)
        return tm_fail(err, "%s: field \"%s%s\" must be a non-negative integer", path, where, key);
    *out = (int)v->num;
    return 0;
}

// rope_scaling {"type": "mrope", "mrope_section": [t, h, w]} (root or text_config; also
// transformers 5's rope_parameters).
static int mrope_fields(model_config *c, const json *root, const char *path, tm_error *err) {
    const json *tc = json_get(root, "text_config");
    const json *srcs[] = {root, tc && tc->type == JSON_OBJECT ? tc : NULL};
    const json *rs = NULL;
    for (int i = 0; i < 2 && !rs; i++) {
        if (!srcs[i]) continue;
        rs = json_get(srcs[i], "rope_scaling");
        if (!rs || rs->type != JSON_OBJECT) rs = json_get(srcs[i], "rope_parameters");
        if (rs && rs->type != JSON_OBJECT) rs = NULL;
    }
    if (!rs) return tm_fail(err, "%s: missing field \"rope_scaling.mrope_section\" (Qwen2.5-VL's M-RoPE bands)", path);
    const json *ms = json_get(rs, "mrope_section");
    if (!ms || ms->type != JSON_ARRAY || ms->n != 3)
        return tm_fail(err, "%s: field \"rope_scaling.mrope_section\" must be a list of 3 integers", path);
    int sum = 0;
    for (int i = 0; i < 3; i++) {
        if (!json_is_int(&ms->items[i]) || ms->items[i].num < 0)
            return tm_fail(err, "%s: field \"rope_scaling.mrope_section\"[%d] must be a non-negative integer", path, i);
        c->mrope_section[i] = (int)ms->items[i].num;
        sum += c->mrope_section[i];
    }
    if (sum != c->head_dim / 2)
        return tm_fail(err, "%s: field \"rope_scaling.mrope_section\" sums to %d, head_dim/2 is %d", path, sum, c->head_dim / 2);
    const char *t = json_get_str(rs, "rope_type", json_get_str(rs, "type", "mrope"));
    if (strcmp(t, "mrope") && strcmp(t, "default"))
        return tm_fail(err, "%s: unsupported field value \"rope_scaling.type\": \"%s\" (Qwen2.5-VL: mrope)", path, t);
    if (json_get(rs, "rope_theta")) c->rope_theta = (float)json_get_num(rs, "rope_theta", c->rope_theta);
    return 0;
}

// Qwen2VLVisionConfig: embed_dim (the tower's width), hidden_size (the language model's),
// mlp_ratio, hidden_act quick_gelu; LayerNorm blocks, no windows.
static int qwen2vl_vision_fields(model_config *c, const json *v, const char *path, tm_error *err) {
    const char *w = "vision_config.";
    int in_ch = 3;
    if (vl_int(v, "depth", 32, &c->vis.depth, path, w, err) || vl_int(v, "embed_dim", 1280, &c->vis.hidden, path, w, err) ||
        vl_int(v, "hidden_size", 3584, &c->vis.out_hidden, path, w, err) || vl_int(v, "num_heads", 16, &c->vis.heads, path, w, err) ||
        vl_int(v, "patch_size", 14, &c->vis.patch, path, w, err) ||
        vl_int(v, "temporal_patch_size", 2, &c->vis.temporal_patch, path, w, err) ||
        vl_int(v, "spatial_merge_size", 2, &c->vis.merge, path, w, err) || vl_int(v, "in_channels", 3, &in_ch, path, w, err))
        return -1;
    if (json_get(v, "in_chans") && vl_int(v, "in_chans", 3, &in_ch, path, w, err)) return -1;
    if (in_ch != 3) return tm_fail(err, "%s: field \"vision_config.in_channels\" is %d, only 3 (RGB) is supported", path, in_ch);
    const json *r = json_get(v, "mlp_ratio");
    double ratio = 4;
    if (r && r->type != JSON_NULL) {
        if (r->type != JSON_NUMBER || !(r->num > 0) || r->num > 1e3)
            return tm_fail(err, "%s: field \"vision_config.mlp_ratio\" must be a positive number", path);
        ratio = r->num;
    }
    c->vis.ffn = (int)(c->vis.hidden * ratio);  // int(embed_dim * mlp_ratio), as VisionMlp is built
    const char *act = json_get_str(v, "hidden_act", "quick_gelu");
    if (strcmp(act, "quick_gelu"))
        return tm_fail(err, "%s: unsupported field value \"vision_config.hidden_act\": \"%s\" (Qwen2-VL: only quick_gelu)", path, act);
    c->vis.window = 0;  // every block attends within the whole image
    c->vis.n_fullatt = 0;
    c->vis.tokens_per_second = 0;
    return 0;
}

// Qwen2_5_VLVisionConfig: hidden_size (the tower's width), out_hidden_size, intermediate_size,
// SwiGLU (silu), RMSNorm blocks, windows with full attention at fullatt_block_indexes.
static int qwen25vl_vision_fields(model_config *c, const json *v, const char *path, tm_error *err) {
    const char *w = "vision_config.";
    int in_ch = 3;
    if (vl_int(v, "depth", 32, &c->vis.depth, path, w, err) || vl_int(v, "hidden_size", 3584, &c->vis.hidden, path, w, err) ||
        vl_int(v, "num_heads", 16, &c->vis.heads, path, w, err) || vl_int(v, "intermediate_size", 3420, &c->vis.ffn, path, w, err) ||
        vl_int(v, "out_hidden_size", 3584, &c->vis.out_hidden, path, w, err) || vl_int(v, "patch_size", 14, &c->vis.patch, path, w, err) ||
        vl_int(v, "temporal_patch_size", 2, &c->vis.temporal_patch, path, w, err) ||
        vl_int(v, "spatial_merge_size", 2, &c->vis.merge, path, w, err) || vl_int(v, "window_size", 112, &c->vis.window, path, w, err) ||
        vl_int(v, "tokens_per_second", 4, &c->vis.tokens_per_second, path, w, err) ||
        vl_int(v, "in_channels", 3, &in_ch, path, w, err))
        return -1;
    if (json_get(v, "in_chans") && vl_int(v, "in_chans", 3, &in_ch, path, w, err)) return -1;
    if (in_ch != 3) return tm_fail(err, "%s: field \"vision_config.in_channels\" is %d, only 3 (RGB) is supported", path, in_ch);
    const char *act = json_get_str(v, "hidden_act", "silu");
    if (strcmp(act, "silu")) return tm_fail(err, "%s: unsupported field value \"vision_config.hidden_act\": \"%s\" (only silu)", path, act);
    const json *fa = json_get(v, "fullatt_block_indexes");
    if (fa && fa->type != JSON_ARRAY) return tm_fail(err, "%s: field \"vision_config.fullatt_block_indexes\" must be a list", path);
    if (!fa) {
        static const int def[] = {7, 15, 23, 31};
        c->vis.n_fullatt = 4;
        memcpy(c->vis.fullatt, def, sizeof def);
    } else {
        if (fa->n > 64) return tm_fail(err, "%s: field \"vision_config.fullatt_block_indexes\" lists more than 64 blocks", path);
        c->vis.n_fullatt = fa->n;
        for (int i = 0; i < fa->n; i++) {
            if (!json_is_int(&fa->items[i])) return tm_fail(err, "%s: field \"vision_config.fullatt_block_indexes\"[%d] must be an integer", path, i);
            c->vis.fullatt[i] = (int)fa->items[i].num;
        }
    }
    return 0;
}

int config_vl_fields(model_config *c, const json *root, const char *path, tm_error *err) {
    const json *v = json_get(root, "vision_config");
    if (!v || v->type != JSON_OBJECT) return tm_fail(err, "%s: missing field \"vision_config\"", path);
    if (c->arch == ARCH_QWEN2_VL ? qwen2vl_vision_fields(c, v, path, err) : qwen25vl_vision_fields(c, v, path, err)) return -1;
    const json *tc = json_get(root, "text_config");
    const json *ids = tc && tc->type == JSON_OBJECT && json_get(tc, "image_token_id") ? tc : root;
    if (vl_int(ids, "image_token_id", 151655, &c->image_token_id, path, "", err) ||
        vl_int(ids, "video_token_id", 151656, &c->video_token_id, path, "", err) ||
        vl_int(ids, "vision_start_token_id", 151652, &c->vision_start_token_id, path, "", err) ||
        vl_int(ids, "vision_end_token_id", 151653, &c->vision_end_token_id, path, "", err))
        return -1;
    if (mrope_fields(c, root, path, err)) return -1;
    const model_config *k = c;
    if (k->vis.depth <= 0 || k->vis.hidden <= 0 || k->vis.heads <= 0 || k->vis.ffn <= 0 || k->vis.patch <= 0 || k->vis.merge <= 0 ||
        k->vis.temporal_patch <= 0)
        return tm_fail(err, "%s: vision_config sizes must be positive", path);
    if (k->vis.hidden % k->vis.heads || (k->vis.hidden / k->vis.heads) % 4)
        return tm_fail(err, "%s: vision_config: hidden_size / num_heads must be a multiple of 4 (2-D rotary)", path);
    if (k->vis.out_hidden != k->hidden)
        return tm_fail(err, "%s: field \"vision_config.%s\" is %d, the language model's hidden_size is %d", path,
                       k->arch == ARCH_QWEN2_VL ? "hidden_size" : "out_hidden_size", k->vis.out_hidden, k->hidden);
    if (k->arch == ARCH_QWEN2_5_VL && k->vis.window / k->vis.merge / k->vis.patch < 1)
        return tm_fail(err, "%s: field \"vision_config.window_size\" %d is smaller than one merged patch (%d px)", path, k->vis.window,
                       k->vis.merge * k->vis.patch);
    if (k->image_token_id >= k->vocab) return tm_fail(err, "%s: image_token_id %d is outside the vocabulary (%d)", path, k->image_token_id, k->vocab);
    return 0;
}

void config_vl_to_json(const model_config *c, const char *torch_dtype, sbuf *o) {
    const int q2 = c->arch == ARCH_QWEN2_VL;
    sbuf_printf(o, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", model_arch_name(c->arch), q2 ? "qwen2_vl" : "qwen2_5_vl");
    sbuf_printf(o, "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n", c->hidden, c->layers, c->heads);
    sbuf_printf(o, "  \"num_key_value_heads\": %d,\n  \"intermediate_size\": %d,\n", c->kv_heads, c->ffn);
    sbuf_printf(o, "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": ", c->vocab, c->max_pos);
    sbuf_json_float(o, c->rms_eps);
    sbuf_puts(o, ",\n  \"rope_theta\": ");
    sbuf_json_float(o, c->rope_theta);
    sbuf_printf(o, ",\n  \"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [%d, %d, %d]},\n", c->mrope_section[0],
                c->mrope_section[1], c->mrope_section[2]);
    sbuf_printf(o, "  \"tie_word_embeddings\": %s,\n  \"hidden_act\": \"silu\",\n", c->tie_embeddings ? "true" : "false");
    sbuf_puts(o, "  \"use_sliding_window\": false,\n  \"attention_dropout\": 0.0,\n  \"initializer_range\": 0.02,\n  \"use_cache\": true,\n");
    if (c->bos_token_id >= 0) sbuf_printf(o, "  \"bos_token_id\": %d,\n", c->bos_token_id);
    if (c->eos_token_id >= 0) sbuf_printf(o, "  \"eos_token_id\": %d,\n", c->eos_token_id);
    sbuf_printf(o, "  \"image_token_id\": %d,\n  \"video_token_id\": %d,\n  \"vision_start_token_id\": %d,\n  \"vision_end_token_id\": %d,\n",
                c->image_token_id, c->video_token_id, c->vision_start_token_id, c->vision_end_token_id);
    if (q2) {  // Qwen2VLVisionConfig's names: hidden_size is the language model's width
        sbuf_printf(o, "  \"vision_config\": {\n    \"depth\": %d,\n    \"embed_dim\": %d,\n    \"hidden_size\": %d,\n", c->vis.depth,
                    c->vis.hidden, c->vis.out_hidden);
        sbuf_printf(o, "    \"num_heads\": %d,\n    \"mlp_ratio\": ", c->vis.heads);
        sbuf_json_float(o, (float)c->vis.ffn / (float)c->vis.hidden);
        sbuf_printf(o, ",\n    \"hidden_act\": \"quick_gelu\",\n    \"in_chans\": 3,\n    \"in_channels\": 3,\n    \"patch_size\": %d,\n",
                    c->vis.patch);
        sbuf_printf(o, "    \"spatial_patch_size\": %d,\n    \"temporal_patch_size\": %d,\n    \"spatial_merge_size\": %d\n  },\n",
                    c->vis.patch, c->vis.temporal_patch, c->vis.merge);
        sbuf_printf(o, "  \"torch_dtype\": \"%s\"\n}\n", torch_dtype);
        return;
    }
    sbuf_printf(o, "  \"vision_config\": {\n    \"depth\": %d,\n    \"hidden_size\": %d,\n    \"num_heads\": %d,\n", c->vis.depth,
                c->vis.hidden, c->vis.heads);
    sbuf_printf(o, "    \"intermediate_size\": %d,\n    \"out_hidden_size\": %d,\n    \"hidden_act\": \"silu\",\n", c->vis.ffn,
                c->vis.out_hidden);
    sbuf_printf(o, "    \"in_chans\": 3,\n    \"patch_size\": %d,\n    \"spatial_patch_size\": %d,\n    \"temporal_patch_size\": %d,\n",
                c->vis.patch, c->vis.patch, c->vis.temporal_patch);
    sbuf_printf(o, "    \"spatial_merge_size\": %d,\n    \"window_size\": %d,\n    \"tokens_per_second\": %d,\n", c->vis.merge,
                c->vis.window, c->vis.tokens_per_second);
    sbuf_puts(o, "    \"fullatt_block_indexes\": [");
    for (int i = 0; i < c->vis.n_fullatt; i++) sbuf_printf(o, "%s%d", i ? ", " : "", c->vis.fullatt[i]);
    sbuf_printf(o, "]\n  },\n  \"torch_dtype\": \"%s\"\n}\n", torch_dtype);
}

// tiny: the Qwen2 tiny language model (4 layers, d 256) and a 4-block vision tower of
// width 64 with full attention at blocks 1 and 3 and 2x2-merged-patch windows (56 px);
// small: the small language model (12 layers, d 768) and an 8-block tower of width 256,
// 112-px windows as the real model. The vision ids sit at the top of the vocabulary.
// Qwen2-VL (arch ARCH_QWEN2_VL): the same sizes with mlp_ratio 2 (ffn = 2 x width), LayerNorm
// blocks and no windows.
int config_vl_preset(model_config *c, model_arch arch, const char *preset, tm_error *err) {
    if (config_preset(c, ARCH_QWEN2, preset, err)) return -1;
    c->arch = arch;
    int small = !strcmp(preset, "small");
    c->vis.depth = small ? 8 : 4;
    c->vis.hidden = small ? 256 : 64;
    c->vis.heads = 4;
    c->vis.ffn = small ? 512 : 128;
    c->vis.out_hidden = c->hidden;
    c->vis.patch = 14;
    c->vis.temporal_patch = 2;
    c->vis.merge = 2;
    c->vis.window = small ? 112 : 56;
    c->vis.tokens_per_second = 2;
    c->vis.n_fullatt = 2;
    c->vis.fullatt[0] = small ? 3 : 1;
    c->vis.fullatt[1] = small ? 7 : 3;
    if (arch == ARCH_QWEN2_VL) c->vis.window = 0, c->vis.n_fullatt = 0, c->vis.tokens_per_second = 0;
    // M-RoPE bands in the ratio of Qwen2.5-VL's [16, 24, 24] (of head_dim/2 = 64)
    int half = c->head_dim / 2;
    c->mrope_section[0] = half / 4;
    c->mrope_section[1] = c->mrope_section[2] = (half - half / 4) / 2;
    c->mrope_section[0] += half - c->mrope_section[0] - 2 * c->mrope_section[1];
    c->vision_start_token_id = c->vocab - 5;
    c->vision_end_token_id = c->vocab - 4;
    c->image_token_id = c->vocab - 3;
    c->video_token_id = c->vocab - 2;
    return 0;
}
