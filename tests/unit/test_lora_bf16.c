// tests/unit/test_lora_bf16.c: a frozen bf16 base read in place under LoRA
// (model_load_frozen, model/weights.c) against the same model loaded the usual way (the
// file's bf16 converted to fp32, OpenBLAS GEMMs). The two sum in different orders, so
// they agree to fp32 rounding, not bit for bit: on these tiny shapes (K <= 48)
// log-probs within 1e-5 absolute and gradients of A and B within 1e-4 relative (of the
// largest); observed ~1e-7 and ~1e-6. Exact claims: an fp32 file loads as before (no
// weight read in place, the same log-probs bit for bit); the merge of a base read in
// place equals the merge of the converted one bit for bit (the widening is exact); an
// adapter saved from a base read in place loads back bit-identically.
#include <math.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/rng.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/lora.h"
#include "model/model.h"
#include "test.h"

static char tmpdir[256];
static const int ids[12] = {1, 5, 9, 33, 60, 2, 0, 17, 17, 4, 8, 59};

static model_config tiny(model_arch a, int tie) {
    model_config c;
    tm_error err = {0};
    config_preset(&c, a, "tiny", &err);
    c.layers = 2; c.hidden = 32; c.heads = 4; c.kv_heads = 2; c.head_dim = 8; c.ffn = 48; c.vocab = 61;
    c.tie_embeddings = tie;
    return c;
}

static void randomize_b(model *m, uint64_t seed) {
    rng g;
    rng_seed(&g, seed);
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].adapter && strstr(m->params[i].name, "lora_B"))
            for (size_t j = 0; j < m->params[i].numel; j++) m->w[m->params[i].offset + j] = 0.05f * rng_normal(&g);
}

// base (frozen: read in place) + all-linear adapters with random B
static int load_lora(model *m, const char *dir, int frozen, const char *save, tm_error *err) {
    if (frozen ? model_load_frozen(m, dir, err) : model_load(m, dir, err)) return -1;
    lora_config lc;
    lora_config_default(&lc);
    lora_parse_targets(&lc, "all-linear", err);
    snprintf(lc.modules_to_save, sizeof lc.modules_to_save, "%s", save);
    snprintf(lc.base_model, sizeof lc.base_model, "%s", dir);
    if (model_lora_attach(m, &lc, 3, err)) return -1;
    randomize_b(m, 9);
    return 0;
}

static double max_abs(const float *a, const float *b, int n) {
    double w = 0;
    for (int i = 0; i < n; i++) w = fabs((double)a[i] - b[i]) > w || a[i] != a[i] ? fabs((double)a[i] - b[i]) : w;
    return w;
}

static void test_arch(model_arch arch, int tie) {
    tm_error err = {0};
    const char *an = model_arch_name(arch);
    model_config c = tiny(arch, tie);
    model m0;
    model_create(&m0, &c, &err);
    model_init_random(&m0, 21);
    char dir[300], fdir[300], adir[300];
    snprintf(dir, sizeof dir, "%s/%s%d_bf16", tmpdir, an, tie);
    snprintf(fdir, sizeof fdir, "%s/%s%d_f32", tmpdir, an, tie);
    snprintf(adir, sizeof adir, "%s/%s%d_adapter", tmpdir, an, tie);
    m0.file_dtype = ST_BF16;
    CHECK(model_save(&m0, dir, 0, &err) == 0, "%s: save a bf16 checkpoint (%s)", an, err.msg);
    char sdir[300];
    snprintf(sdir, sizeof sdir, "%s/%s%d_shards", tmpdir, an, tie);
    CHECK(model_save(&m0, sdir, 8000, &err) == 0, "%s: save a sharded bf16 checkpoint (%s)", an, err.msg);
    m0.file_dtype = ST_F32;
    CHECK(model_save(&m0, fdir, 0, &err) == 0, "%s: save an fp32 checkpoint (%s)", an, err.msg);
    model_free(&m0);

    model mf, mb;
    CHECK(load_lora(&mf, dir, 0, "", &err) == 0, "%s: load converted + LoRA (%s)", an, err.msg);
    CHECK(load_lora(&mb, dir, 1, "", &err) == 0, "%s: load read in place + LoRA (%s)", an, err.msg);
    int want = 7 * c.layers + (tie ? 1 : 2);
    CHECK(mb.nbf16 == want && mf.nbf16 == 0, "%s tie=%d: %d weights read in place (want %d: the projections, %s)", an, tie, mb.nbf16,
          want, tie ? "the tied embedding / lm-head" : "the embedding and the lm-head");
    CHECK(model_bytes(&mb) < model_bytes(&mf), "%s: model_bytes counts bf16 for them (%zu < %zu)", an, model_bytes(&mb), model_bytes(&mf));
    batch_builder bb;
    batch_init(&bb, 64, 4, &err);
    batch_add(&bb, ids, NULL, 7);
    batch_add(&bb, ids + 7, NULL, 5);
    model_batch b = batch_view(&bb);
    int N = b.n_tokens;
    float lf[64], lb[64], dl[64];
    rng g;
    rng_seed(&g, 5);
    for (int i = 0; i < N; i++) dl[i] = rng_normal(&g);
    CHECK(model_enable_grad(&mf, &err) == 0 && model_enable_grad(&mb, &err) == 0, "%s: gradients (%s)", an, err.msg);
    CHECK(mf.gnumel == mb.gnumel, "%s: the same trainable parameters (%zu)", an, mb.gnumel);
    model_forward(&mf, &b, lf, NULL, &err);
    model_forward(&mb, &b, lb, NULL, &err);
    double d = max_abs(lb, lf, N);
    CHECK(d <= 1e-5, "%s: LoRA log-probs, base read in place vs converted: max abs diff %.2g <= 1e-5", an, d);
    model_zero_grad(&mf), model_zero_grad(&mb);
    model_backward(&mf, &b, dl, NULL);
    model_backward(&mb, &b, dl, NULL);
    double r = test_rel_err(mb.g, mf.g, (long)mf.gnumel, 1e-6);
    CHECK(r <= 1e-4, "%s: gradients of A and B, read in place vs converted: rel err %.2g <= 1e-4", an, r);
    model_lora_enable(&mf, 0), model_lora_enable(&mb, 0);
    model_forward(&mf, &b, lf, NULL, &err);
    model_forward(&mb, &b, lb, NULL, &err);
    d = max_abs(lb, lf, N);
    CHECK(d <= 1e-5, "%s: adapters off (the reference), read in place vs converted: max abs diff %.2g", an, d);
    model_lora_enable(&mf, 1), model_lora_enable(&mb, 1);

    // decoding (the sampler of GRPO / PPO) reads the same weights
    kv_cache kf, kb2;
    int cap = 8;
    double dd = 0;
    if (kv_cache_init(&kf, &mf, 1, &cap, 1, 1, &err) == 0 && kv_cache_init(&kb2, &mb, 1, &cap, 1, 1, &err) == 0) {
        for (int t = 0; t < 6; t++) {
            int slot = 0, row = 0, prefix = -1, plen = 0;
            kv_batch kb = {1, &ids[t], &t, &slot, &t, &prefix, &plen, &row, NULL, NULL};
            float zf[61], zb[61];
            model_decode(&mf, &kf, &kb, zf, &err);
            model_decode(&mb, &kb2, &kb, zb, &err);
            double e = max_abs(zb, zf, c.vocab);
            dd = e > dd ? e : dd;
        }
        kv_cache_free(&kf);
        kv_cache_free(&kb2);
    }
    CHECK(dd <= 1e-5, "%s: decoding logits, read in place vs converted: max abs diff %.2g", an, dd);

    // the adapter saves without an fp32 base and loads back bit-identically
    CHECK(model_save(&mb, adir, 0, &err) == 0, "%s: save the adapter of a base read in place (%s)", an, err.msg);
    model ma;
    memset(&ma, 0, sizeof ma);
    int same = model_load(&ma, adir, &err) == 0;
    for (int i = 0; same && i < mb.nparams; i++)
        if (mb.params[i].adapter) {
            const model_param *q = model_find_param(&ma, mb.params[i].name);
            same = q && !memcmp(ma.w + q->offset, mb.w + mb.params[i].offset, sizeof(float) * q->numel);
        }
    CHECK(same, "%s: adapter saved (%s) from a base read in place round-trips bit for bit", an, err.msg);
    if (ma.w) model_free(&ma);
    model_free(&mf);
    model_free(&mb);

    // merge: the base read in place is widened (exactly) first, so both merges agree bit for bit
    model gf, gb;
    CHECK(load_lora(&gf, dir, 0, "", &err) == 0 && load_lora(&gb, dir, 1, "", &err) == 0, "%s: loads for merging", an);
    CHECK(model_lora_merge(&gf, &err) == 0 && model_lora_merge(&gb, &err) == 0, "%s: merge (%s)", an, err.msg);
    CHECK(gb.nbf16 == 0 && gf.numel == gb.numel && !memcmp(gf.w, gb.w, sizeof(float) * gf.numel),
          "%s: merged weights of a base read in place equal the converted one's bit for bit", an);
    model_free(&gf);
    model_free(&gb);

    // a module to save is trained: its weights are converted to fp32 then
    if (!tie) {
        CHECK(load_lora(&gb, dir, 1, "embed_tokens", &err) == 0, "%s: LoRA + modules_to_save embed_tokens (%s)", an, err.msg);
        CHECK(gb.nbf16 == 7 * c.layers + 1 && !model_weight_bf16(&gb, gb.off_embed) && model_enable_grad(&gb, &err) == 0,
              "%s: the module to save is fp32 and trainable, the projections and the lm-head stay in place", an);
        model_free(&gb);
    }

    // shards: each file stays mapped; the same weights, the same log-probs bit for bit
    CHECK(load_lora(&gf, dir, 1, "", &err) == 0 && load_lora(&gb, sdir, 1, "", &err) == 0, "%s: sharded load read in place (%s)", an, err.msg);
    model_forward(&gf, &b, lf, NULL, &err);
    model_forward(&gb, &b, lb, NULL, &err);
    CHECK(gb.nmaps > 1 && gb.nbf16 == gf.nbf16 && !memcmp(lf, lb, sizeof(float) * N),
          "%s: %d shards read in place give the single file's log-probs bit for bit", an, gb.nmaps);
    model_free(&gf);
    model_free(&gb);

    // an fp32 file: nothing is read in place, the log-probs are the usual ones bit for bit
    CHECK(load_lora(&gf, fdir, 0, "", &err) == 0 && load_lora(&gb, fdir, 1, "", &err) == 0, "%s: fp32 loads", an);
    model_forward(&gf, &b, lf, NULL, &err);
    model_forward(&gb, &b, lb, NULL, &err);
    CHECK(gb.nbf16 == 0 && !memcmp(lf, lb, sizeof(float) * N), "%s: an fp32 file loads as before (bit-identical log-probs)", an);
    model_free(&gf);
    model_free(&gb);
    batch_free(&bb);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/temper_test_lora_bf16_%d", (int)getpid());
    tm_error err = {0};
    io_mkdirs(tmpdir, &err);
    test_arch(ARCH_QWEN3, 1);
    test_arch(ARCH_QWEN2, 0);   // biases on q/k/v, untied embedding read in place
    test_arch(ARCH_GEMMA3, 1);  // post-norms, GeGLU, embedding scale
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) return 1;
    return test_done();
}
