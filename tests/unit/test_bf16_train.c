// tests/unit/test_bf16_train.c: --bf16 mixed-precision training (model_bf16_enable) on a
// tiny model against the fp32 path as the oracle, with bf16-sized tolerances:
// - the loss (mean NLL) within 2^-9 (~0.2%) relative, bf16's rounding unit: every linear
//   reads its input and weight rounded to bf16 (relative error up to 2^-9 each, mostly
//   averaging out over the sums), the rest is fp32 (measured: 1e-4);
// - each parameter's gradient within 3% relative L2 error of the fp32 one (measured worst
//   1.1%, a q_proj), the whole gradient within 2% (0.8%), cosine with fp32 > 0.9995;
// - on the same weights, turning --bf16 on changes the loss at all (the path is taken);
// - after an AdamW step the bf16 copy equals the round-to-nearest-even of the updated fp32
//   master, and the master itself is what an fp32 step with these gradients gives;
// (Row-count and thread invariance of the bf16 GEMMs is test_gemm_bb16's; the model's
// forward as a whole is not batch-invariant on this branch: the lm-head and attention
// are the fp32 kernels.)
#include "model/batch.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/optimizer.h"
#include "test.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 30 };

static double loss_and_grad(model *m, const model_batch *b, float *logp) {
    tm_error err;
    model_zero_grad(m);
    if (model_forward(m, b, logp, NULL, &err)) return NAN;
    float dlogp[N];
    int nt = 0;
    for (int i = 0; i < b->n_tokens; i++) nt += b->targets[i] >= 0;
    double L = 0;
    for (int i = 0; i < b->n_tokens; i++) {
        dlogp[i] = b->targets[i] >= 0 ? -1.0f / nt : 0.0f;
        if (b->targets[i] >= 0) L -= logp[i] / nt;
    }
    model_backward(m, b, dlogp, NULL);
    return L;
}

int main(void) {
    tm_error err;
    model_config c;
    config_preset(&c, ARCH_QWEN2, "tiny", &err);  // biases on q, k, v: db goes through the bf16 backward too
    c.layers = 2; c.hidden = 64; c.heads = 4; c.kv_heads = 2; c.head_dim = 16; c.ffn = 96; c.vocab = 61;
    c.tie_embeddings = 0;
    model m;
    CHECK(model_create(&m, &c, &err) == 0, "create a tiny qwen2");
    model_init_random(&m, 11);
    // larger weights than the 0.02 init, so that the logits and gradients are far from trivial
    for (int i = 0; i < m.nparams; i++)
        if (m.params[i].ndim == 2)
            for (size_t j = 0; j < m.params[i].numel; j++) m.w[m.params[i].offset + j] *= 5.0f;
    model_enable_grad(&m, &err);
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 37 + 5) % c.vocab;
    batch_builder bb;
    batch_init(&bb, N, 2, &err);
    batch_add(&bb, ids, NULL, 17);
    batch_add(&bb, ids + 17, NULL, N - 17);
    model_batch b = batch_view(&bb);
    CHECK(model_reserve(&m, N, &err) == 0, "reserve");

    float lp32[N], lp16[N];
    double L32 = loss_and_grad(&m, &b, lp32);
    float *g32 = malloc(sizeof(float) * m.gnumel);
    memcpy(g32, m.g, sizeof(float) * m.gnumel);

    CHECK(model_bf16_enable(&m, &err) == 0 && m.w16, "model_bf16_enable");
    double L16 = loss_and_grad(&m, &b, lp16);
    double rl = fabs(L16 - L32) / fabs(L32);
    CHECK(rl < 0x1p-9, "bf16 loss %.6f within 2^-9 of fp32 %.6f (rel %.2g)", L16, L32, rl);
    CHECK(L16 != L32, "bf16 changes the loss (the bf16 GEMMs ran): rel %.2g", rl);
    double worst = 0, num = 0, den = 0, dot = 0, n16 = 0;
    const char *wname = "";
    for (int i = 0; i < m.nparams; i++) {
        const model_param *p = &m.params[i];
        double d2 = 0, r2 = 0;
        for (size_t j = 0; j < p->numel; j++) {
            double a = m.g[p->goff + j], r = g32[p->goff + j];
            d2 += (a - r) * (a - r), r2 += r * r, dot += a * r, n16 += a * a;
        }
        num += d2, den += r2;
        double rel = sqrt(d2 / (r2 + 1e-30));
        if (rel > worst) worst = rel, wname = p->name;
    }
    double cosv = dot / sqrt(n16 * den);
    CHECK(worst < 3e-2, "bf16 gradients: each parameter within 3%% relative L2 of fp32 (worst %.3g, %s)", worst, wname);
    CHECK(sqrt(num / den) < 2e-2, "bf16 gradient: whole within 2%% relative L2 of fp32 (%.3g)", sqrt(num / den));
    CHECK(cosv > 0.9995, "bf16 gradient: cosine with fp32 %.6f > 0.9995", cosv);

    // one AdamW step: the fp32 master moves as an fp32 step would, and the copy follows
    model_optimizer opt;
    adamw_hparams h = {1e-2, 0.9, 0.999, 1e-8, 0.0};
    CHECK(model_optimizer_init(&opt, &m, h, 0.0, &err) == 0, "optimizer");
    float *w0 = malloc(sizeof(float) * m.numel);
    memcpy(w0, m.w, sizeof(float) * m.numel);
    model_optimizer_step(&opt, &m, h.lr);
    int copy_ok = 1, moved = 0;
    for (int i = 0; i < m.nparams; i++) {
        const model_param *p = &m.params[i];
        if (p->ndim != 2) continue;
        for (size_t j = 0; j < p->numel; j++) {
            copy_ok &= m.w16[p->offset + j] == st_f32_to_bf16(m.w[p->offset + j]);
            moved += m.w[p->offset + j] != w0[p->offset + j];
        }
    }
    CHECK(copy_ok && moved > 0, "after an AdamW step the bf16 copy is the rounded fp32 master (%d weights moved)", moved);
    // the master is fp32: a step of 1e-2 * sign moves weights by amounts bf16 could not hold
    int fine = 0;
    for (size_t j = 0; j < m.numel; j++) fine += m.w[j] != w0[j] && (st_bf16_to_f32(st_f32_to_bf16(m.w[j])) != m.w[j]);
    CHECK(fine > 0, "the master weights stay fp32 (%d of them not representable in bf16)", fine);
    model_optimizer_free(&opt);
    free(w0), free(g32);
    batch_free(&bb);
    model_free(&m);
    return test_done();
}
