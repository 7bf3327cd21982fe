// Tests for `temper init`'s Qwen3 presets and the streamed random init: the presets have
// the released models' parameter counts (Qwen3-0.6B 596,049,920 with tied embeddings;
// Qwen3-8B 8,190,735,360 with its own lm_head; Qwen3-1.7B: the card says 1.7B, tied, and
// 1,720,574,976 is this table's count, pinned here) and config.json fields; model_save_random
// writes byte for byte what model_init_random + model_save write (bf16, f32),
// without ever holding the weights.
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "model/model.h"
#include "test.h"

static void test_shapes(void) {
    struct { const char *name; size_t numel; int tie, layers, hidden, ffn, heads; } want[] = {
        {"qwen3-0.6b", 596049920u, 1, 28, 1024, 3072, 16},
        {"qwen3-1.7b", 1720574976u, 1, 28, 2048, 6144, 16},
        {"qwen3-8b", 8190735360u, 0, 36, 4096, 12288, 32},
    };
    for (int i = 0; i < 3; i++) {
        tm_error err = {0};
        model_config c;
        int rc = config_preset(&c, ARCH_QWEN3, want[i].name, &err);
        model m;
        rc = rc || model_create_shape(&m, &c, &err);
        CHECK(rc == 0 && m.w == NULL, "%s: the table without weights (%s)", want[i].name, err.msg);
        if (rc) continue;
        CHECK(m.numel == want[i].numel, "%s: %zu parameters (released: %zu)", want[i].name, m.numel, want[i].numel);
        sbuf s;
        sbuf_init(&s);
        config_to_json(&c, "bfloat16", &s);
        json_doc *d = json_parse(s.data, s.len, &err);
        const json *r = d ? json_root(d) : NULL;
        CHECK(r && json_get_int(r, "num_hidden_layers", 0) == want[i].layers && json_get_int(r, "hidden_size", 0) == want[i].hidden &&
                  json_get_int(r, "intermediate_size", 0) == want[i].ffn && json_get_int(r, "num_attention_heads", 0) == want[i].heads &&
                  json_get_int(r, "num_key_value_heads", 0) == 8 && json_get_int(r, "head_dim", 0) == 128 &&
                  json_get_int(r, "vocab_size", 0) == 151936 && json_get_num(r, "rope_theta", 0) == 1e6 &&
                  fabs(json_get_num(r, "rms_norm_eps", 0) - 1e-6) < 1e-12 && json_get_bool(r, "tie_word_embeddings", -1) == want[i].tie &&
                  m.layer[0].q_norm != SIZE_MAX,
              "%s: config.json has the released fields (Qwen3ForCausalLM, q/k norms, tie %d)", want[i].name, want[i].tie);
        if (d) json_doc_free(d);
        sbuf_free(&s);
        model_free(&m);
    }
    tm_error err = {0};
    model_config c;
    CHECK(config_preset(&c, ARCH_LLAMA, "qwen3-0.6b", &err) != 0 && strstr(err.msg, "--arch qwen3"),
          "a qwen3 preset with another architecture is refused: %s", err.msg);
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    tm_error err;
    char *x = io_read_file(a, &na, &err), *y = io_read_file(b, &nb, &err);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static void test_streamed(const char *tmp, st_dtype dt) {
    tm_error err = {0};
    model_config c;
    config_preset(&c, ARCH_QWEN3, "tiny", &err);
    c.layers = 2, c.vocab = 300;
    model held, shape;
    char a[512], b[512], fa[600], fb[600];
    snprintf(a, sizeof a, "%s/held-%d", tmp, (int)dt);
    snprintf(b, sizeof b, "%s/streamed-%d", tmp, (int)dt);
    if (model_create(&held, &c, &err) || model_create_shape(&shape, &c, &err)) { CHECK(0, "create (%s)", err.msg); return; }
    model_init_random(&held, 11);
    held.file_dtype = shape.file_dtype = dt;
    int rc = model_save(&held, a, 0, &err) || model_save_random(&shape, b, 11, &err);
    snprintf(fa, sizeof fa, "%s/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/model.safetensors", b);
    CHECK(!rc && same_file(fa, fb), "dtype %d: model_save_random writes model_init_random + model_save's weights byte for byte (%s)",
          (int)dt, err.msg);
    snprintf(fa, sizeof fa, "%s/config.json", a);
    snprintf(fb, sizeof fb, "%s/config.json", b);
    CHECK(!rc && same_file(fa, fb), "dtype %d: and the same config.json", (int)dt);
    model_free(&held);
    model_free(&shape);
}

int main(void) {
    test_shapes();
    char tmp[] = "/tmp/temper-presets.XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    test_streamed(tmp, ST_BF16);
    test_streamed(tmp, ST_F32);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    return test_done();
}
