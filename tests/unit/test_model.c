// Tests for model/: config parsing and its errors, safetensors round trips and every
// kind of damaged file, save-then-load bit identity (single file and shards),
// packing independence, and optim/: AdamW against a hand computation, schedules.
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/rng.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "optim/optim.h"
#include "test.h"

static char tmpdir[256];

static model_config tiny_config(model_arch a) {
    model_config c;
    tm_error err;
    config_preset(&c, a, "tiny", &err);
    c.layers = 2; c.hidden = 32; c.heads = 4; c.kv_heads = 2; c.head_dim = 8; c.ffn = 48; c.vocab = 61;
    return c;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

// A safetensors file with a given header and n zero bytes of data.
static void write_st(const char *path, const char *header, size_t data) {
    size_t hl = strlen(header);
    uint8_t *buf = calloc(8 + hl + data, 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    write_bytes(path, buf, 8 + hl + data);
    free(buf);
}

static void test_config_errors(void) {
    const char *cases[][2] = {
        {"{\"architectures\": [\"GPT2LMHeadModel\"]}", "unsupported architecture \"GPT2LMHeadModel\""},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8}", "missing field \"num_hidden_layers\""},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}",
         "\"rope_scaling.rope_type\": \"yarn\""},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"hidden_act\": \"gelu\"}", "\"hidden_act\": \"gelu\""},
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 3, "
         "\"num_key_value_heads\": 2, \"intermediate_size\": 8, \"vocab_size\": 10}", "not a multiple"},
        // what we do not implement is refused by name, never run as another model
        {"{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"use_sliding_window\": true, \"sliding_window\": 4096}",
         "\"use_sliding_window\": true"},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"final_logit_softcapping\": 30.0}", "\"final_logit_softcapping\": 30.0"},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"attn_logit_softcapping\": 50}", "\"attn_logit_softcapping\": 50"},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"hidden_activation\": \"gelu\"}", "\"hidden_activation\": \"gelu\""},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"layer_types\": [\"sliding_attention\", \"chunked_attention\"]}",
         "\"layer_types\"[1]"},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"layer_types\": [\"sliding_attention\"]}", "one type per layer (2)"},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 8}}",
         "\"rope_scaling.rope_type\": \"yarn\""},
        {"{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"vocab_size\": 10, \"rope_parameters\": {\"sliding_attention\": {\"rope_type\": \"linear\", \"factor\": 2}}}",
         "\"rope_parameters.sliding_attention.rope_type\": \"linear\""},
        {"{\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"model_type\": \"gemma3\"}",
         "unsupported architecture \"Gemma3ForConditionalGeneration\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_error err = {0};
        json_doc *d = json_parse(cases[i][0], strlen(cases[i][0]), &err);
        model_config c;
        int rc = config_from_json(&c, json_root(d), "m/config.json", &err);
        CHECK(rc && strstr(err.msg, cases[i][1]) && strstr(err.msg, "m/config.json"), "config error names the field: %s", err.msg);
        json_doc_free(d);
    }
}

static void test_safetensors_damage(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/bad.safetensors", tmpdir);
    struct { const char *header; size_t data; const char *expect; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor a: 8 bytes for F32 of 3 elements"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor a: needs"},
        {"{\"a\":", 0, "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_st(p, cases[i].header, cases[i].data);
        st_file f;
        tm_error err = {0};
        int rc = st_open(&f, p, &err);
        CHECK(rc && strstr(err.msg, cases[i].expect) && strstr(err.msg, "bad.safetensors"), "damaged safetensors rejected: %s", err.msg);
        if (!rc) st_close(&f);
    }
    // header length past the end, and a file too short for the length itself
    uint8_t b[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(p, b, 10);
    st_file f;
    tm_error err = {0};
    CHECK(st_open(&f, p, &err) && strstr(err.msg, "past the end"), "header length past the end: %s", err.msg);
    write_bytes(p, b, 5);
    CHECK(st_open(&f, p, &err) && strstr(err.msg, "truncated"), "5-byte file: %s", err.msg);
}

static void test_dtype_conversions(void) {
    float xs[] = {0.0f, -0.0f, 1.0f, -2.5f, 3.14159265f, 1e-8f, 65504.0f, 1e30f, 6.1e-5f, 1.0f / 3.0f};
    int bf_ok = 1, f16_ok = 1;
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        float b = st_bf16_to_f32(st_f32_to_bf16(xs[i]));
        if (fabsf(b - xs[i]) > fabsf(xs[i]) * (1.0f / 256)) bf_ok = 0;
        if (fabsf(xs[i]) <= 65504.0f && fabsf(xs[i]) >= 6.1e-5f) {
            float h = st_f16_to_f32(st_f32_to_f16(xs[i]));
            if (fabsf(h - xs[i]) > fabsf(xs[i]) * (1.0f / 1024)) f16_ok = 0;
        }
    }
    CHECK(bf_ok, "bf16 round trip within half an ulp");
    CHECK(f16_ok, "f16 round trip within half an ulp");
    CHECK(st_f32_to_bf16(1.00390625f) == 0x3f80 && st_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 rounds to nearest even");
    CHECK(st_f16_to_f32(0x0001) == 5.9604645e-08f, "f16 subnormal decodes");
}

static int parse_config(model_config *c, const char *text, tm_error *err) {
    json_doc *d = json_parse(text, strlen(text), err);
    if (!d) return -1;
    int rc = config_from_json(c, json_root(d), "config.json", err);
    json_doc_free(d);
    return rc;
}

// The config.json files of the models people start from, as published (sizes and all):
// google/gemma-3-1b-it (transformers 4.50) and the same in transformers 5's spelling,
// deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B (Qwen2; Light-R1-1.5B starts from it).
static void test_real_configs(void) {
    const char *gemma =
        "{\"architectures\": [\"Gemma3ForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0, "
        "\"attn_logit_softcapping\": null, \"bos_token_id\": 2, \"cache_implementation\": \"hybrid\", \"eos_token_id\": [1, 106], "
        "\"final_logit_softcapping\": null, \"head_dim\": 256, \"hidden_activation\": \"gelu_pytorch_tanh\", \"hidden_size\": 1152, "
        "\"initializer_range\": 0.02, \"intermediate_size\": 6912, \"max_position_embeddings\": 32768, \"model_type\": \"gemma3_text\", "
        "\"num_attention_heads\": 4, \"num_hidden_layers\": 26, \"num_key_value_heads\": 1, \"pad_token_id\": 0, "
        "\"query_pre_attn_scalar\": 256, \"rms_norm_eps\": 1e-06, \"rope_local_base_freq\": 10000, \"rope_scaling\": null, "
        "\"rope_theta\": 1000000, \"sliding_window\": 512, \"sliding_window_pattern\": 6, \"torch_dtype\": \"bfloat16\", "
        "\"transformers_version\": \"4.50.0.dev0\", \"use_cache\": true, \"vocab_size\": 262144}";
    model_config c;
    tm_error err = {0};
    int rc = parse_config(&c, gemma, &err);
    int full_ok = 1;
    for (int l = 0; l < 26; l++) full_ok &= config_layer_window(&c, l) == ((l + 1) % 6 ? 512 : 0);
    CHECK(rc == 0 && c.arch == ARCH_GEMMA3 && c.head_dim == 256 && c.tie_embeddings && c.qk_norm && c.norm_ofs &&
              c.sandwich_norm && c.gelu_tanh && c.embed_scale && c.attn_scalar == 256 && c.rope_theta == 1e6f &&
              c.rope_local_theta == 1e4f && c.rope_linear_factor == 0 && c.bos_token_id == 2 && c.eos_token_id == 1 && full_ok,
          "gemma-3-1b-it config.json: head_dim 256, tied, layers 5, 11, 17, 23 full, the rest sliding 512 (%s)", rc ? err.msg : "ok");
    // transformers 5 writes layer_types and per-type rope_parameters instead
    const char *gemma5 =
        "{\"architectures\": [\"Gemma3ForCausalLM\"], \"model_type\": \"gemma3_text\", \"hidden_size\": 64, \"num_hidden_layers\": 3, "
        "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 32, \"intermediate_size\": 96, \"vocab_size\": 100, "
        "\"sliding_window\": 16, \"layer_types\": [\"full_attention\", \"sliding_attention\", \"full_attention\"], "
        "\"rope_parameters\": {\"full_attention\": {\"rope_theta\": 1000000.0, \"rope_type\": \"linear\", \"factor\": 8.0}, "
        "\"sliding_attention\": {\"rope_theta\": 20000.0, \"rope_type\": \"default\"}}}";
    rc = parse_config(&c, gemma5, &err);
    CHECK(rc == 0 && c.rope_theta == 1e6f && c.rope_linear_factor == 8.0f && c.rope_local_theta == 2e4f &&
              config_layer_window(&c, 0) == 0 && config_layer_window(&c, 1) == 16 && config_layer_window(&c, 2) == 0,
          "gemma3 config in transformers 5's spelling (layer_types, rope_parameters per layer type) (%s)", rc ? err.msg : "ok");
    const char *r1 =
        "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": 151643, \"eos_token_id\": 151643, "
        "\"hidden_act\": \"silu\", \"hidden_size\": 1536, \"initializer_range\": 0.02, \"intermediate_size\": 8960, "
        "\"max_position_embeddings\": 131072, \"max_window_layers\": 21, \"model_type\": \"qwen2\", \"num_attention_heads\": 12, "
        "\"num_hidden_layers\": 28, \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06, \"rope_theta\": 10000, \"sliding_window\": 4096, "
        "\"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.44.0\", \"use_cache\": true, "
        "\"use_mrope\": false, \"use_sliding_window\": false, \"vocab_size\": 151936}";
    rc = parse_config(&c, r1, &err);
    CHECK(rc == 0 && c.arch == ARCH_QWEN2 && c.attn_bias && !c.o_bias && !c.tie_embeddings && c.head_dim == 128 &&
              c.rope_theta == 10000.0f && c.sliding_window == 0 && config_layer_window(&c, 3) == 0 && c.max_pos == 131072 &&
              c.bos_token_id == 151643,
          "DeepSeek-R1-Distill-Qwen-1.5B config.json: Qwen2, q/k/v biases, untied, rope_theta 10000, no sliding window (%s)",
          rc ? err.msg : "ok");
    const char *q5 =
        "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
        "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 96, \"vocab_size\": 100, "
        "\"layer_types\": [\"full_attention\", \"full_attention\"], \"sliding_window\": null, \"use_sliding_window\": false, "
        "\"rope_parameters\": {\"rope_theta\": 1000000.0, \"rope_type\": \"default\"}}";
    rc = parse_config(&c, q5, &err);
    CHECK(rc == 0 && c.rope_theta == 1e6f && !c.rope_llama3 && c.rope_linear_factor == 0,
          "qwen2 config in transformers 5's spelling (rope_parameters) (%s)", rc ? err.msg : "ok");

    // the embedding multiplier in the weights' dtype, as Gemma3TextScaledWordEmbedding
    config_preset(&c, ARCH_GEMMA3, "tiny", &err);
    c.layers = 1; c.hidden = 1152; c.vocab = 8; c.ffn = 8;
    model m;
    model_create(&m, &c, &err);
    float s32 = model_embed_scale(&m);
    m.file_dtype = ST_BF16;
    float s16 = model_embed_scale(&m);
    CHECK(s32 == sqrtf(1152.0f) && s16 == 34.0f, "gemma3 embedding scale: sqrt(1152) = %.4f in fp32, %.1f in bf16", s32, s16);
    model_free(&m);
}

static double forward_sum(model *m, const model_batch *b, float *logp) {
    tm_error err;
    if (model_forward(m, b, logp, NULL, &err)) return NAN;
    double s = 0;
    for (int i = 0; i < b->n_tokens; i++) s += logp[i];
    return s;
}

static void test_save_load(model_arch arch, int tie) {
    tm_error err;
    model_config c = tiny_config(arch);
    c.tie_embeddings = tie;
    model m, m2, m3;
    CHECK(model_create(&m, &c, &err) == 0, "create %s", model_arch_name(arch));
    model_init_random(&m, 7);
    char dir[512], dir2[512];
    snprintf(dir, sizeof dir, "%s/%s-%d", tmpdir, model_arch_name(arch), tie);
    snprintf(dir2, sizeof dir2, "%s/%s-%d-sharded", tmpdir, model_arch_name(arch), tie);
    CHECK(model_save(&m, dir, 0, &err) == 0, "save %s (%s)", dir, err.msg);
    CHECK(model_save(&m, dir2, 20000, &err) == 0, "save sharded %s (%s)", dir2, err.msg);
    CHECK(model_load(&m2, dir, &err) == 0, "load %s (%s)", dir, err.msg);
    CHECK(model_load(&m3, dir2, &err) == 0, "load sharded %s (%s)", dir2, err.msg);
    int ids[12] = {1, 5, 9, 33, 60, 2, 0, 17, 17, 4, 8, 59};
    batch_builder bb;
    batch_init(&bb, 64, 4, &err);
    batch_add(&bb, ids, NULL, 7);
    batch_add(&bb, ids + 7, NULL, 5);
    model_batch b = batch_view(&bb);
    int pos_ok = b.n_seqs == 2 && b.cu_seqlens[1] == 7 && b.cu_seqlens[2] == 12;
    for (int i = 0; i < 12; i++) pos_ok &= b.pos[i] == (i < 7 ? i : i - 7);
    CHECK(pos_ok, "packing: position ids restart at 0 in each sequence, boundaries in cu_seqlens");
    float l1[12], l2[12], l3[12];
    forward_sum(&m, &b, l1);
    forward_sum(&m2, &b, l2);
    forward_sum(&m3, &b, l3);
    CHECK(!memcmp(l1, l2, sizeof l1) && !memcmp(l1, l3, sizeof l1), "%s tie=%d: saved-then-loaded log-probs are bit-identical", model_arch_name(arch), tie);
    CHECK(m2.numel == m.numel && !memcmp(m.w, m2.w, m.numel * 4), "%s tie=%d: weights bit-identical after reload", model_arch_name(arch), tie);

    // packing: each sequence alone gives the same log-probs as packed together
    batch_builder one;
    batch_init(&one, 64, 4, &err);
    batch_add(&one, ids + 7, NULL, 5);
    model_batch b1 = batch_view(&one);
    float alone[5];
    forward_sum(&m, &b1, alone);
    CHECK(test_rel_err(alone, l1 + 7, 5, 1e-6) < 1e-5, "%s: packed sequence equals the sequence alone (rel %.2g)", model_arch_name(arch),
          test_rel_err(alone, l1 + 7, 5, 1e-6));
    int lp_ok = 1;
    for (int i = 0; i < 12; i++) lp_ok &= l1[i] <= 0 && (i == 6 || i == 11 ? l1[i] == 0 : l1[i] < 0);
    CHECK(lp_ok, "%s: log-probs negative, zero where there is no target", model_arch_name(arch));

    // missing tensor and wrong shape name the tensor
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    const char *name = "model.layers.1.mlp.up_proj.weight";
    st_out_tensor t = {name, 2, {c.ffn, c.hidden + 1}, m.w};
    st_write(p, &t, 1, ST_F32, &err);
    model bad;
    CHECK(model_load(&bad, dir, &err) && strstr(err.msg, "missing tensor model.embed_tokens.weight"), "missing tensor named: %s", err.msg);
    st_out_tensor all[64];
    int n = 0;
    for (int i = 0; i < m.nparams; i++) {
        all[n] = (st_out_tensor){m.params[i].name, m.params[i].ndim, {m.params[i].shape[0], m.params[i].shape[1]}, m.w + m.params[i].offset};
        if (!strcmp(m.params[i].name, name)) all[n].shape[1] = c.hidden - 1;
        n++;
    }
    st_write(p, all, n, ST_F32, &err);
    CHECK(model_load(&bad, dir, &err) && strstr(err.msg, name) && strstr(err.msg, "config.json implies"), "wrong shape named: %s", err.msg);
    // truncated file
    size_t len;
    char *data = io_read_file(p, &len, &err);
    write_bytes(p, data, len - 100);
    free(data);
    CHECK(model_load(&bad, dir, &err) && strstr(err.msg, "out of range"), "truncated checkpoint: %s", err.msg);

    batch_free(&bb);
    batch_free(&one);
    model_free(&m);
    model_free(&m2);
    model_free(&m3);
}

// Log-probs at a sampling temperature (model_forward_temp): log softmax(z / T) and the
// entropy of softmax(z / T) against a float64 computation from the hidden states and the
// lm-head, T = 1 bit-identical to model_forward, and the backward (dL/dz = (1/T) ...)
// against central finite differences in float64 of L = sum c_i logp_i + d_i H_i.
static double temp_loss(model *m, const model_batch *b, double T, const float *c, const float *d, float *lp, float *ent) {
    tm_error err;
    if (model_forward_temp(m, b, T, lp, ent, &err)) return NAN;
    double L = 0;
    for (int i = 0; i < b->n_tokens; i++) L += (double)c[i] * lp[i] + (double)d[i] * ent[i];
    return L;
}

// temp_loss plus a linear head on the final hidden state (model_last_hidden): sum u * h.
static double temp_value_loss(model *m, const model_batch *b, double T, const float *c, const float *d, const float *u, float *lp,
                              float *ent) {
    double L = temp_loss(m, b, T, c, d, lp, ent);
    const float *h = model_last_hidden(m);
    for (size_t i = 0; i < (size_t)b->n_tokens * m->cfg.hidden; i++) L += (double)u[i] * h[i];
    return L;
}

static void test_temperature(void) {
    tm_error err;
    model_config cfg = tiny_config(ARCH_LLAMA);
    cfg.tie_embeddings = 0;
    model m;
    model_create(&m, &cfg, &err);
    model_init_random(&m, 21);
    // larger weights than the 0.02 init, so that the distribution is far from uniform and
    // temperature matters (at 0.02 the logits are ~1e-3 and T would hardly show)
    for (size_t i = 0; i < m.numel; i++) m.w[i] *= 8.0f;
    for (int l = 0; l < cfg.layers; l++) {  // norms back to 1
        for (int j = 0; j < cfg.hidden; j++) m.w[m.layer[l].attn_norm + j] = m.w[m.layer[l].mlp_norm + j] = 1.0f;
    }
    for (int j = 0; j < cfg.hidden; j++) m.w[m.off_norm + j] = 1.0f;
    model_enable_grad(&m, &err);
    enum { N = 14 };
    int ids[N] = {3, 14, 15, 9, 26, 53, 58, 9, 7, 32, 38, 46, 26, 43};
    batch_builder bb;
    batch_init(&bb, N, 2, &err);
    batch_add(&bb, ids, NULL, 8);
    batch_add(&bb, ids + 8, NULL, 6);
    model_batch b = batch_view(&bb);
    const double T = 0.7;
    const int D = cfg.hidden, V = cfg.vocab;
    float lp1[N], lp1b[N], e1[N], e1b[N], lpT[N], eT[N];
    model_forward(&m, &b, lp1, e1, &err);
    model_forward_temp(&m, &b, 1.0, lp1b, e1b, &err);
    CHECK(!memcmp(lp1, lp1b, sizeof lp1) && !memcmp(e1, e1b, sizeof e1), "model_forward_temp at T = 1 is bit-identical to model_forward");
    // float64 reference from the (T = 1) final hidden states and the lm-head
    double ref_lp[N], ref_e[N];
    const float *h = model_last_hidden(&m), *W = model_lm_head(&m);
    for (int i = 0; i < N; i++) {
        double z[64], mx = -INFINITY, s = 0, ez = 0;
        for (int v = 0; v < V; v++) {
            double acc = 0;
            for (int j = 0; j < D; j++) acc += (double)h[(size_t)i * D + j] * W[(size_t)v * D + j];
            z[v] = acc / T;
            mx = fmax(mx, z[v]);
        }
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        double lse = mx + log(s);
        for (int v = 0; v < V; v++) ez += exp(z[v] - lse) * (z[v] - lse);
        ref_lp[i] = b.targets[i] >= 0 ? z[b.targets[i]] - lse : 0;
        ref_e[i] = b.targets[i] >= 0 ? -ez : 0;  // the kernel computes it where there is a target
    }
    model_forward_temp(&m, &b, T, lpT, eT, &err);
    double dl = 0, de = 0, moved = 0;
    for (int i = 0; i < N; i++) {
        dl = fmax(dl, fabs(lpT[i] - ref_lp[i]));
        de = fmax(de, fabs(eT[i] - ref_e[i]));
        moved = fmax(moved, fabs(lpT[i] - lp1[i]));
    }
    CHECK(dl < 2e-5 && de < 2e-5 && moved > 0.05,
          "T = 0.7: log softmax(z / T) and its entropy match float64 (max |diff| %.1e, %.1e; they move %.2f from T = 1)", dl, de, moved);
    // gradient vs central differences, on the final norm (below the lm-head: needs the
    // 1/T on dL/dh), an attention weight, and the lm-head itself
    float c[N], d[N], lp[N], en[N];
    for (int i = 0; i < N; i++) {
        c[i] = b.targets[i] >= 0 ? (float)(0.3 + 0.1 * (i % 5)) * (i % 2 ? 1 : -1) : 0.0f;
        d[i] = (float)(0.05 * ((i * 7) % 5) - 0.1);
    }
    model_zero_grad(&m);
    temp_loss(&m, &b, T, c, d, lp, en);
    model_backward(&m, &b, c, d);
    size_t probe[] = {m.off_norm + 3, m.off_norm + 17, m.layer[1].wq + 40, m.layer[0].w_down + 101, m.off_lm_head + 5 * D + 2,
                      m.off_embed + (size_t)ids[2] * D + 4};
    double worst = 0;
    int nprobe = (int)(sizeof probe / sizeof probe[0]);
    for (int k = 0; k < nprobe; k++) {
        size_t at = probe[k];
        float w0 = m.w[at];
        const double eps = 1e-2;
        m.w[at] = (float)(w0 + eps);
        double Lp = temp_loss(&m, &b, T, c, d, lp, en);
        m.w[at] = (float)(w0 - eps);
        double Lm = temp_loss(&m, &b, T, c, d, lp, en);
        m.w[at] = w0;
        double fd = (Lp - Lm) / ((double)(float)(w0 + eps) - (double)(float)(w0 - eps));
        double rel = fabs(fd - m.g[at]) / fmax(fabs(fd), 1e-2);
        printf("# T = 0.7 gradient probe %d: analytic %.6f finite difference %.6f (rel %.1e)\n", k, m.g[at], fd, rel);
        worst = fmax(worst, rel);
    }
    CHECK(worst < 2e-2, "T = 0.7: dL/dw of sum c*logp + d*entropy matches central differences at %d weights (worst rel %.1e < 2e-2)",
          nprobe, worst);
    // PPO's shared value head: it reads model_last_hidden, the hidden state before the division
    // by T (the same as at T = 1, so the critic does not depend on T), and model_backward_extra
    // takes its dL/dh beside the lm-head's (which carries 1/T). L += sum u * h.
    float h1[N * 64];
    model_forward(&m, &b, lp, en, &err);
    memcpy(h1, model_last_hidden(&m), sizeof(float) * N * D);
    model_forward_temp(&m, &b, T, lp, en, &err);
    CHECK(!memcmp(h1, model_last_hidden(&m), sizeof(float) * N * D), "T = 0.7: model_last_hidden is the hidden state before / T (bit-identical to T = 1)");
    float *u = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N * D; i++) u[i] = (float)(((i * 29) % 13) - 6) / 20.0f;
    model_zero_grad(&m);
    temp_value_loss(&m, &b, T, c, d, u, lp, en);
    model_backward_extra(&m, &b, c, d, u);
    worst = 0;
    for (int k = 0; k < nprobe; k++) {
        size_t at = probe[k];
        float w0 = m.w[at];
        const double eps = 1e-2;
        m.w[at] = (float)(w0 + eps);
        double Lp = temp_value_loss(&m, &b, T, c, d, u, lp, en);
        m.w[at] = (float)(w0 - eps);
        double Lm = temp_value_loss(&m, &b, T, c, d, u, lp, en);
        m.w[at] = w0;
        double fd = (Lp - Lm) / ((double)(float)(w0 + eps) - (double)(float)(w0 - eps));
        double rel = fabs(fd - m.g[at]) / fmax(fabs(fd), 1e-2);
        printf("# T = 0.7 value-head probe %d: analytic %.6f finite difference %.6f (rel %.1e)\n", k, m.g[at], fd, rel);
        worst = fmax(worst, rel);
    }
    CHECK(worst < 2e-2, "T = 0.7: model_backward_extra's dL/dw of sum c*logp + d*entropy + u*h (value head on h before / T) matches "
                        "central differences at %d weights (worst rel %.1e < 2e-2)", nprobe, worst);
    free(u);
    batch_free(&bb);
    model_free(&m);
}

// Two micro-batches accumulate exactly the gradient of one batch holding both.
static void test_grad_accumulation(void) {
    tm_error err;
    model_config c = tiny_config(ARCH_QWEN2);
    model m;
    model_create(&m, &c, &err);
    model_init_random(&m, 3);
    model_enable_grad(&m, &err);
    int ids[16] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    batch_builder a, b, both;
    batch_init(&a, 16, 2, &err);
    batch_init(&b, 16, 2, &err);
    batch_init(&both, 16, 2, &err);
    batch_add(&a, ids, NULL, 9);
    batch_add(&b, ids + 9, NULL, 7);
    batch_add(&both, ids, NULL, 9);
    batch_add(&both, ids + 9, NULL, 7);
    float logp[16], dlogp[16];
    for (int i = 0; i < 16; i++) dlogp[i] = -1.0f / 14;
    model_batch vb = batch_view(&both), va = batch_view(&a), vbb = batch_view(&b);
    model_forward(&m, &vb, logp, NULL, &err);
    model_backward(&m, &vb, dlogp, NULL);
    float *g1 = malloc(m.numel * 4);
    memcpy(g1, m.g, m.numel * 4);
    model_zero_grad(&m);
    model_forward(&m, &va, logp, NULL, &err);
    model_backward(&m, &va, dlogp, NULL);
    model_forward(&m, &vbb, logp, NULL, &err);
    model_backward(&m, &vbb, dlogp, NULL);
    double rel = test_rel_err(m.g, g1, (long)m.numel, 1e-12);
    CHECK(rel < 1e-6, "gradient accumulation over two micro-batches equals one batch (rel %.2g)", rel);
    free(g1);
    batch_free(&a);
    batch_free(&b);
    batch_free(&both);
    model_free(&m);
}

// Thread-count invariance of the trainer's forward and backward: log-probs and every
// gradient bit-identical with 1, 2 and 3 threads, on a model wide enough (hidden 256,
// vocab 3000, 300 tokens) that the GEMMs, attention tiles, lm-head chunks and norms
// all take their threaded paths.
static void test_thread_invariance(model_arch arch) {
    tm_error err;
    model_config c = tiny_config(arch);
    c.hidden = 256; c.heads = 8; c.kv_heads = 4; c.head_dim = 32; c.ffn = 512; c.vocab = 3000;
    c.sliding_window = arch == ARCH_GEMMA3 ? 70 : 0;  // windows that skip and cut key tiles
    c.layer_sliding[1] = 0;
    model m;
    model_create(&m, &c, &err);
    model_init_random(&m, 5);
    model_enable_grad(&m, &err);
    enum { T = 300 };
    int ids[T];
    for (int i = 0; i < T; i++) ids[i] = (i * 37 + 11) % c.vocab;
    batch_builder bb;
    batch_init(&bb, T, 3, &err);
    batch_add(&bb, ids, NULL, 170);
    batch_add(&bb, ids + 170, NULL, 65);
    batch_add(&bb, ids + 235, NULL, 65);
    model_batch b = batch_view(&bb);
    float logp[3][T], dlogp[T];
    float *g[3];
    for (int i = 0; i < T; i++) dlogp[i] = b.targets[i] >= 0 ? -1.0f / T : 0.0f;
    int nt = omp_get_max_threads(), rc = 0, same_lp = 1, same_g = 1;
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(t + 1);
        model_zero_grad(&m);
        rc |= model_forward(&m, &b, logp[t], NULL, &err);
        if (!rc) model_backward(&m, &b, dlogp, NULL);
        g[t] = malloc(m.numel * 4);
        memcpy(g[t], m.g, m.numel * 4);
        if (t) {
            same_lp &= memcmp(logp[t], logp[0], sizeof logp[0]) == 0;
            same_g &= memcmp(g[t], g[0], m.numel * 4) == 0;
        }
    }
    omp_set_num_threads(nt);
    CHECK(rc == 0 && same_lp, "%s: forward log-probs bit-identical with 1, 2 and 3 threads", model_arch_name(arch));
    CHECK(rc == 0 && same_g, "%s: every gradient bit-identical with 1, 2 and 3 threads", model_arch_name(arch));
    for (int t = 0; t < 3; t++) free(g[t]);
    batch_free(&bb);
    model_free(&m);
}

// Many short sequences: attention pads each to its tile, so its scratch outgrows the
// single-sequence estimate (a heap overflow once; ASan watches this test).
static void test_many_short_sequences(void) {
    tm_error err;
    model_config c;
    config_preset(&c, ARCH_LLAMA, "tiny", &err);
    c.layers = 1;
    model m;
    model_create(&m, &c, &err);
    model_init_random(&m, 1);
    model_enable_grad(&m, &err);
    batch_builder bb;
    batch_init(&bb, 128, 64, &err);
    int ids[2] = {5, 9};
    int added = 0;
    for (int s = 0; s < 60; s++) added += batch_add(&bb, ids, NULL, 2) == 2 * s;
    // full (64 sequences of 2 fit, 128 tokens): -1 and the builder unchanged
    batch_builder small;
    batch_init(&small, 5, 8, &err);
    int r1 = batch_add(&small, ids, NULL, 2), r2 = batch_add(&small, ids, NULL, 2), r3 = batch_add(&small, ids, NULL, 2);
    CHECK(added == 60 && r1 == 0 && r2 == 2 && r3 == -1 && small.n_tokens == 4 && small.n_seqs == 2,
          "batch_add returns each start, and -1 with nothing written when the tokens do not fit (%d %d %d)", r1, r2, r3);
    batch_free(&small);
    model_batch b = batch_view(&bb);
    float logp[120], dlogp[120];
    for (int i = 0; i < 120; i++) dlogp[i] = b.targets[i] >= 0 ? -1.0f : 0.0f;
    int rc = model_forward(&m, &b, logp, NULL, &err);
    if (!rc) model_backward(&m, &b, dlogp, NULL);
    int same = 1;
    for (int s = 1; s < 60; s++) same &= logp[2 * s] == logp[0];
    CHECK(rc == 0 && same, "60 packed sequences of 2 tokens: identical sequences, identical log-probs (%s)", rc ? err.msg : "ok");
    batch_free(&bb);
    model_free(&m);
}

// Gemma 3 with a sliding window of 3: the KV-cached incremental forward (the sampler's
// path; a prompt in a prefix slot, then one token per call in the sample's own slot, so
// the window cuts across both spans) gives the log-probs of the trainer's forward.
static void test_gemma3_decode(void) {
    tm_error err;
    model_config c = tiny_config(ARCH_GEMMA3);
    c.layers = 7;  // layer 5 full, the others sliding
    c.sliding_window = 3;
    c.attn_scalar = 6;  // scores by 6^-0.5, not head_dim^-0.5
    c.rope_linear_factor = 2;
    model m;
    model_create(&m, &c, &err);
    model_init_random(&m, 21);
    rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < m.nparams; i++)  // norms away from their init (0: scale 1)
        if (strstr(m.params[i].name, "norm"))
            for (size_t j = 0; j < m.params[i].numel; j++) m.w[m.params[i].offset + j] = 0.3f * rng_normal(&r);
    enum { T = 14, P = 5 };
    int ids[T] = {1, 7, 33, 60, 2, 9, 9, 41, 17, 4, 8, 59, 23, 11};
    batch_builder bb;
    batch_init(&bb, T, 1, &err);
    batch_add(&bb, ids, NULL, T);
    model_batch b = batch_view(&bb);
    float full[T];
    int rc = model_forward(&m, &b, full, NULL, &err);

    kv_cache kc;
    int caps[2] = {P, T - P};
    rc |= kv_cache_init(&kc, &m, 2, caps, P, 1, &err);
    float *logits = malloc(sizeof(float) * (size_t)c.vocab);
    float dec[T] = {0};
    for (int t = P - 1; t < T - 1 && !rc; t++) {
        int pos[P], slot[P], cpos[P], pslot[P], plen[P], lrow[P], n = 0;
        if (t == P - 1) {  // the prompt in one call, into the prefix slot
            for (int i = 0; i < P; i++) pos[i] = i, slot[i] = 0, cpos[i] = i, pslot[i] = -1, plen[i] = 0, lrow[i] = i == P - 1 ? 0 : -1;
            n = P;
        } else {
            pos[0] = t, slot[0] = 1, cpos[0] = t - P, pslot[0] = 0, plen[0] = P, lrow[0] = 0;
            n = 1;
        }
        kv_batch kb = {n, t == P - 1 ? ids : ids + t, pos, slot, cpos, pslot, plen, lrow, NULL, NULL};
        rc |= model_decode(&m, &kc, &kb, logits, &err);
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < c.vocab; v++) mx = fmax(mx, logits[v]);
        for (int v = 0; v < c.vocab; v++) z += exp(logits[v] - mx);
        dec[t] = (float)(logits[ids[t + 1]] - mx - log(z));
    }
    double worst = 0;
    for (int t = P - 1; t < T - 1; t++) worst = fmax(worst, fabs(dec[t] - full[t]));
    CHECK(rc == 0 && worst < 1e-5, "gemma3 (window 3, 7 layers): KV-cache decode log-probs == model_forward (max |diff| %.1e) (%s)",
          worst, rc ? err.msg : "ok");
    // and the window matters: without it the same weights give other log-probs
    m.cfg.sliding_window = 1000;
    float wide[T];
    model_forward(&m, &b, wide, NULL, &err);
    double moved = 0;
    for (int t = 0; t < T - 1; t++) moved = fmax(moved, fabs(wide[t] - full[t]));
    CHECK(moved > 1e-3, "gemma3: the sliding window changes the log-probs (max |diff| %.1e without it)", moved);
    free(logits);
    kv_cache_free(&kc);
    batch_free(&bb);
    model_free(&m);
}

static void test_adamw(void) {
    float w[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.1f, -0.2f, 0.0f}, m[3] = {0}, v[3] = {0};
    adamw_hparams h = {0.01, 0.9, 0.999, 1e-8, 0.1};
    adamw_update(w, g, m, v, 3, &h, 0.1, 1);
    // step 1: m_hat = g, v_hat = g^2, update = lr * g/(|g|+eps) after decay w*(1-lr*wd)
    double e0 = 1.0 * (1 - 0.001) - 0.01 * 0.1 / (0.1 + 1e-8);
    double e2 = 0.5 * (1 - 0.001);
    CHECK(fabs(w[0] - e0) < 1e-6 && fabs(w[2] - e2) < 1e-7, "AdamW first step by hand (%.7f vs %.7f)", w[0], e0);
    adamw_update(w, g, m, v, 3, &h, 0.1, 2);
    double m2 = 0.9 * 0.01 + 0.1 * 0.1, v2 = 0.999 * 0.00001 + 0.001 * 0.01;
    double e0b = e0 * (1 - 0.001) - 0.01 / (1 - 0.81) * m2 / (sqrt(v2) / sqrt(1 - 0.998001) + 1e-8);
    CHECK(fabs(w[0] - e0b) < 1e-6, "AdamW second step with bias correction (%.7f vs %.7f)", w[0], e0b);
    float gg[4] = {3, 4, 0, 0};
    double n = clip_grad_norm(gg, 4, 1.0);
    CHECK(fabs(n - 5) < 1e-6 && fabs(gg[0] - 0.6) < 1e-6 && fabs(gg[1] - 0.8) < 1e-6, "clip_grad_norm scales to max norm");
    CHECK(lr_multiplier(SCHED_LINEAR, 0, 10, 110) == 0 && lr_multiplier(SCHED_LINEAR, 5, 10, 110) == 0.5 &&
              fabs(lr_multiplier(SCHED_LINEAR, 60, 10, 110) - 0.5) < 1e-12 && lr_multiplier(SCHED_LINEAR, 110, 10, 110) == 0,
          "linear schedule with warmup (transformers' get_linear_schedule_with_warmup)");
    CHECK(fabs(lr_multiplier(SCHED_COSINE, 60, 10, 110) - 0.5) < 1e-12 && fabs(lr_multiplier(SCHED_COSINE, 10, 10, 110) - 1) < 1e-12,
          "cosine schedule");
    CHECK(lr_multiplier(SCHED_CONSTANT, 0, 10, 110) == 1 && lr_multiplier(SCHED_CONSTANT_WITH_WARMUP, 2, 10, 110) == 0.2, "constant schedules");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/temper-test-model-%d", (int)getpid());
    tm_error err;
    io_mkdirs(tmpdir, &err);
    test_config_errors();
    test_safetensors_damage();
    test_dtype_conversions();
    test_save_load(ARCH_LLAMA, 0);
    test_save_load(ARCH_QWEN2, 0);
    test_save_load(ARCH_QWEN3, 1);
    test_save_load(ARCH_GEMMA3, 1);
    test_real_configs();
    test_gemma3_decode();
    test_grad_accumulation();
    test_temperature();
    test_many_short_sequences();
    test_thread_invariance(ARCH_QWEN3);
    test_thread_invariance(ARCH_GEMMA3);
    test_adamw();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_done();
}
