// tests/unit/test_vl_decode.c: the KV-cache decoder on a Qwen2.5-VL model (model/kv_cache.h's
// vision prefill, rollout/ with images): two image prompts of different grids and a text prompt
// sampled in one run, with a prefill chunk that splits an image's pads across decode calls; the
// log-probs the sampler records against the trainer's packed forward on the same ids and images
// (within 1e-5; bit for bit with the fixed-order GEMM of --deterministic); rope_delta as
// transformers' get_rope_index makes it; a text model refuses image rows. The float64 reference of
// a greedy continuation: tests/oracle/test_vl_generate.py. Small and fast (also the ASan build).
#include "base/rng.h"
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "rollout/rollout.h"
#include "test.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NP = 3, NEW = 5 };

// max |sampler - forward| over the completions; -1 on error
static double run(model *m, int **pp, int *pl, kv_images *kim, int batch, int chunk, const float *pix, int pdim, int *npatch) {
    tm_error err;
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = 2;
    o.batch = batch;
    o.max_new_tokens = NEW;
    o.prefill_chunk = chunk;
    o.sp.temperature = 1.0;
    o.seed = 9;
    o.images = kim;
    rollout_backend be;
    rollout_model_ctx mctx;
    rollout_backend_model(&be, &mctx, m);
    rollout_traj tr[NP * 2];
    memset(tr, 0, sizeof tr);
    if (rollout_run(&be, NULL, (const int *const *)pp, pl, NP, &o, tr, &err)) { fprintf(stderr, "%s\n", err.msg); return -1; }
    batch_builder bb;
    batch_init(&bb, 512, NP * 2, &err);
    int start[NP * 2], ids[256], pads = 0;
    uint8_t tr_[256];
    for (int i = 0; i < NP * 2; i++) {
        int g = i / 2, L = pl[g] + tr[i].len;
        memcpy(ids, pp[g], sizeof(int) * (size_t)pl[g]);
        memcpy(ids + pl[g], tr[i].ids, sizeof(int) * (size_t)tr[i].len);
        for (int t = 0; t < L; t++) tr_[t] = t >= pl[g], pads += t >= pl[g] && ids[t] == m->cfg.image_token_id;
        if (kim[g].n_images) batch_add_images(&bb, kim[g].n_images, kim[g].pixel_values, npatch[g], pdim, kim[g].grid_thw, &err);
        start[i] = batch_add(&bb, ids, tr_, L);
    }
    (void)pix;
    model_batch b = batch_view(&bb);
    float *logp = malloc(sizeof(float) * (size_t)b.n_tokens);
    double worst = 0;
    if (pads || model_forward(m, &b, logp, NULL, &err)) worst = -1;
    for (int i = 0; worst >= 0 && i < NP * 2; i++)
        for (int t = 0; t < tr[i].len; t++) worst = fmax(worst, fabs(tr[i].logp[t] - logp[start[i] + pl[i / 2] + t - 1]));
    for (int i = 0; i < NP * 2; i++) rollout_traj_free(&tr[i]);
    free(logp);
    batch_free(&bb);
    return worst;
}

int main(void) {
    tm_error err;
    model_config c;
    model m;
    int prc = config_preset(&c, ARCH_QWEN2_5_VL, "tiny", &err);
    c.vocab = 512, c.layers = 2;  // small and fast; the vision ids move to the top of the vocabulary
    c.vision_start_token_id = 507, c.vision_end_token_id = 508, c.image_token_id = 509, c.video_token_id = 510;
    if (prc || model_create(&m, &c, &err)) { printf("not ok - tiny qwen2_5_vl: %s\n", err.msg); return 1; }
    model_init_random(&m, 5);
    const int pad = c.image_token_id, vs = c.vision_start_token_id, ve = c.vision_end_token_id;
    const int pdim = 3 * c.vis.temporal_patch * c.vis.patch * c.vis.patch;
    int grid[6] = {1, 4, 6, 1, 2, 4};  // 6 and 2 merged tokens
    int npatch[NP] = {24, 0, 8};
    rng r;
    rng_seed(&r, 3);
    float *pix = malloc(sizeof(float) * 32 * (size_t)pdim);
    for (int i = 0; i < 32 * pdim; i++) pix[i] = rng_normal(&r);
    int p0[] = {11, vs, pad, pad, pad, pad, pad, pad, ve, 12, 13}, p1[] = {21, 22, 23, 24}, p2[] = {31, 32, vs, pad, pad, ve, 33};
    int *pp[NP] = {p0, p1, p2}, pl[NP] = {11, 4, 7};
    kv_images kim[NP] = {{1, pix, grid}, {0, NULL, NULL}, {1, pix + 24 * (size_t)pdim, grid + 3}};

    kv_vision v;
    int rc = kv_prompt_vision(&m, p0, pl[0], &kim[0], &v, &err);
    CHECK(rc == 0 && v.rope_delta == 3 - 6 && v.row[2] == 0 && v.row[7] == 5 && v.row[8] == -1 && v.row[0] == -1,
          "kv_prompt_vision: rope_delta max(h, w) - h*w = -3 for a 2x3 merged grid, pad rows indexed (%s)", rc ? err.msg : "ok");
    kv_vision_free(&v);
    double d = run(&m, pp, pl, kim, 6, 4, pix, pdim, npatch);
    CHECK(d >= 0 && d <= 1e-5, "sampler log-probs == trainer's forward with images (chunk 4 splits the pads), max diff %.2e", d);
    k_gemm_set_own(1);  // --deterministic's fixed-order GEMM
    d = run(&m, pp, pl, kim, 6, 4, pix, pdim, npatch);
    CHECK(d == 0, "--deterministic: bit for bit, batch 6 (diff %.2e)", d);
    d = run(&m, pp, pl, kim, 1, 256, pix, pdim, npatch);
    CHECK(d == 0, "--deterministic: bit for bit, batch 1 (diff %.2e)", d);
    k_gemm_set_own(0);

    model t;
    model_config tc;
    config_preset(&tc, ARCH_QWEN2, "tiny", &err);
    model_create(&t, &tc, &err);
    rc = kv_prompt_vision(&t, p0, pl[0], &kim[0], &v, &err);
    CHECK(rc != 0 && strstr(err.msg, "no vision tower"), "a text model refuses a prompt's images (%s)", err.msg);
    kv_cache kc;
    int caps[1] = {8};
    kv_cache_init(&kc, &t, 1, caps, 2, 1, &err);
    const float *emb[1] = {pix};
    int tok = 1, pos = 0, slot = 0, cp = 0, ps = -1, plen = 0, lr = -1;
    kv_batch kb = {1, &tok, &pos, &slot, &cp, &ps, &plen, &lr, NULL, emb};
    rc = model_decode(&t, &kc, &kb, NULL, &err);
    CHECK(rc != 0 && strstr(err.msg, "no vision tower"), "model_decode on a text model refuses image rows (%s)", err.msg);
    kv_cache_free(&kc);
    model_free(&t);
    free(pix);
    model_free(&m);
    return test_done();
}
