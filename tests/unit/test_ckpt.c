// Tests for activation recomputation (model_set_checkpointing, --gradient-checkpointing):
// on tiny Llama / Qwen3 / Gemma 3 models, full and under LoRA (with adapter dropout), the
// log-probs, entropies and every gradient are bit for bit those without it (the backward
// recomputes each layer with the same kernels on the same inputs), a second backward of
// the same forward still is, and the activation arena really shrinks to L + 1 residuals
// plus one layer's internals.
#include <string.h>
#include "model/batch.h"
#include "model/lora.h"
#include "model/model.h"
#include "test.h"

enum { LAYERS = 3 };

static model_config tiny(model_arch a) {
    model_config c;
    tm_error err = {0};
    config_preset(&c, a, "tiny", &err);
    c.layers = LAYERS; c.hidden = 32; c.heads = 4; c.kv_heads = 2; c.head_dim = 8; c.ffn = 48; c.vocab = 61;
    if (a == ARCH_GEMMA3) {  // sliding and full layers
        c.sliding_window = 3;
        c.layer_sliding[0] = 1;
        c.layer_sliding[1] = 0;
        c.layer_sliding[2] = 1;
    }
    return c;
}

static const int ids[12] = {1, 5, 9, 33, 60, 2, 0, 17, 17, 4, 8, 59};

// One model, built the same way every time (random weights, adapters with a random B).
static int build(model *m, model_arch arch, int lora, int ckpt, tm_error *err) {
    model_config c = tiny(arch);
    if (model_create(m, &c, err)) return -1;
    model_init_random(m, 5);
    if (lora) {
        lora_config lc;
        lora_config_default(&lc);
        lc.r = 4;
        lc.alpha = 8;
        lc.dropout = 0.2;
        if (lora_parse_targets(&lc, "all-linear", err) || model_lora_attach(m, &lc, 3, err)) return -1;
        for (int i = 0; i < m->nparams; i++)  // B = 0 would hide A's path
            if (m->params[i].adapter && strstr(m->params[i].name, "lora_B"))
                for (size_t j = 0; j < m->params[i].numel; j++)
                    m->w[m->params[i].offset + j] = 0.01f * (float)((int)((j * 7 + (size_t)i) % 11) - 5);
    }
    model_set_checkpointing(m, ckpt);
    return model_enable_grad(m, err) || model_reserve(m, 64, err) ? -1 : 0;
}

typedef struct run_out {
    float logp[12], ent[12];
    float *g1, *g2;  // gradients after one backward, after a second one of the same forward
    size_t gn, act_bytes;
} run_out;

static int run(model_arch arch, int lora, int ckpt, run_out *o, tm_error *err) {
    model m;
    memset(o, 0, sizeof *o);
    if (build(&m, arch, lora, ckpt, err)) { model_free(&m); return -1; }
    batch_builder bb;
    if (batch_init(&bb, 64, 4, err)) { model_free(&m); return -1; }
    batch_add(&bb, ids, NULL, 7);
    batch_add(&bb, ids + 7, NULL, 5);
    model_batch b = batch_view(&bb);
    float dlogp[12], dent[12];
    for (int i = 0; i < 12; i++) dlogp[i] = (i % 2 ? 1.0f : -0.7f) / 12, dent[i] = 0.05f * (float)(i % 3);
    if (lora) model_lora_dropout_next(&m, 42);
    int rc = model_forward_temp(&m, &b, 0.7, o->logp, o->ent, err);
    o->gn = m.gnumel;
    o->g1 = malloc(m.gnumel * sizeof(float));
    o->g2 = malloc(m.gnumel * sizeof(float));
    if (!rc && o->g1 && o->g2) {
        model_backward(&m, &b, dlogp, dent);
        memcpy(o->g1, m.g, m.gnumel * sizeof(float));
        model_backward(&m, &b, dlogp, dent);
        memcpy(o->g2, m.g, m.gnumel * sizeof(float));
    }
    o->act_bytes = model_activation_bytes(&m);
    batch_free(&bb);
    model_free(&m);
    return rc || !o->g1 || !o->g2 ? -1 : 0;
}

static void test_bitwise(model_arch arch, int lora) {
    tm_error err = {0};
    run_out a, b;
    const char *name = model_arch_name(arch), *mode = lora ? "LoRA all-linear, dropout 0.2" : "full";
    int ok = !run(arch, lora, 0, &a, &err) && !run(arch, lora, 1, &b, &err);
    CHECK(ok, "%s %s: runs (%s)", name, mode, err.msg);
    if (ok) {
        CHECK(!memcmp(a.logp, b.logp, sizeof a.logp) && !memcmp(a.ent, b.ent, sizeof a.ent),
              "%s %s: log-probs and entropies with checkpointing are bit for bit those without", name, mode);
        CHECK(a.gn == b.gn && !memcmp(a.g1, b.g1, a.gn * sizeof(float)),
              "%s %s: every gradient (%zu) with checkpointing is bit for bit the one without", name, mode, a.gn);
        CHECK(!memcmp(a.g2, b.g2, a.gn * sizeof(float)) && memcmp(a.g1, a.g2, a.gn * sizeof(float)),
              "%s %s: a second backward of the same forward too (it recomputes every layer)", name, mode);
        CHECK(b.act_bytes < a.act_bytes, "%s %s: the arena shrinks (%zu -> %zu bytes)", name, mode, a.act_bytes, b.act_bytes);
    }
    free(a.g1); free(a.g2); free(b.g1); free(b.g2);
}

// The arena holds L + 1 residual slices and one layer's internals: growing the model by
// one layer grows the checkpointed arena by exactly one [N, hidden] slice.
static void test_arena_size(void) {
    tm_error err = {0};
    size_t bytes[2][2];
    for (int extra = 0; extra < 2; extra++)
        for (int ck = 0; ck < 2; ck++) {
            model_config c = tiny(ARCH_QWEN3);
            c.layers += extra;
            model m;
            model_create(&m, &c, &err);
            model_set_checkpointing(&m, ck);
            model_reserve(&m, 64, &err);
            bytes[extra][ck] = model_activation_bytes(&m);
            model_free(&m);
        }
    CHECK(bytes[1][1] - bytes[0][1] == 64 * 32 * sizeof(float),
          "checkpointing: one more layer adds one residual slice (%zu bytes)", bytes[1][1] - bytes[0][1]);
    CHECK(bytes[1][0] - bytes[0][0] > 8 * (bytes[1][1] - bytes[0][1]),
          "without: one more layer adds all its internals (%zu bytes)", bytes[1][0] - bytes[0][0]);
    // switching it on after a reserve re-lays the arena out at the same capacity
    model_config c = tiny(ARCH_LLAMA);
    model m;
    model_create(&m, &c, &err);
    model_reserve(&m, 64, &err);
    size_t full = model_activation_bytes(&m);
    model_set_checkpointing(&m, 1);
    int rc = model_reserve(&m, 10, &err);
    size_t small = model_activation_bytes(&m);
    model_set_checkpointing(&m, 0);
    model_reserve(&m, 10, &err);
    CHECK(rc == 0 && small < full && model_activation_bytes(&m) == full,
          "switching checkpointing re-lays the arena out at the same capacity (%zu -> %zu -> %zu)", full, small,
          model_activation_bytes(&m));
    model_free(&m);
}

int main(void) {
    model_arch archs[] = {ARCH_LLAMA, ARCH_QWEN3, ARCH_GEMMA3};
    for (int i = 0; i < 3; i++)
        for (int lora = 0; lora < 2; lora++) test_bitwise(archs[i], lora);
    test_arena_size();
    return test_done();
}
