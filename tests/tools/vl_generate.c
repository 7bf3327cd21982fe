// vl_generate: the C side of the Qwen2.5-VL generation tests (tests/oracle/test_vl_generate.py).
// Loads a model and the prompts of T.json ({"prompts": [[ids]...], "n_images": [k...]}: prompt i
// holds the next k images of IN.safetensors, pixel_values [n_patches, 3*2*14*14] and
// image_grid_thw [n_images, 3] as F32), samples --max-new-tokens tokens for each (EOS ignored;
// greedy at --temperature 0) with the KV-cache sampler (src/rollout/, --batch trajectories in
// flight, one decode call prefilling several image prompts), then recomputes the completions'
// log-probs with the trainer's packed forward (all sequences and their images in one batch).
// Writes gen [n, N] (ids), samp_logp [n, N] (what the sampler recorded) and fwd_logp [n, N].
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "cli/flags.h"
#include "model/batch.h"
#include "model/model.h"
#include "rollout/rollout.h"

static int die(const char *msg) { fprintf(stderr, "vl_generate: %s\n", msg); return 1; }

int main(int argc, char **argv) {
    const char *model_dir = NULL, *tokens = NULL, *images = NULL, *out = NULL;
    int N = 8, batch = 16, chunk = 256;
    double temperature = 0, seed = 1;
    flag flags[] = {
        {"model", FLAG_STR, &model_dir, ""}, {"tokens", FLAG_STR, &tokens, ""}, {"images", FLAG_STR, &images, ""},
        {"out", FLAG_STR, &out, ""}, {"max-new-tokens", FLAG_INT, &N, ""}, {"batch", FLAG_INT, &batch, ""},
        {"prefill-chunk", FLAG_INT, &chunk, ""}, {"temperature", FLAG_FLOAT, &temperature, ""}, {"seed", FLAG_FLOAT, &seed, ""},
    };
    int rc = flags_parse("vl_generate", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model_dir || !tokens || !out) return die("--model, --tokens and --out are required");
    tm_error err;
    model m;
    if (model_load(&m, model_dir, &err)) return die(err.msg);
    json_doc *d = json_parse_file(tokens, &err);
    if (!d) return die(err.msg);
    json *jp = json_get(json_root(d), "prompts"), *jn = json_get(json_root(d), "n_images");
    if (!jp || jp->type != JSON_ARRAY || !jn || jn->n != jp->n) return die("tokens file needs \"prompts\" and \"n_images\"");
    const int np = jp->n;
    int **pp = calloc((size_t)np, sizeof *pp), *pl = calloc((size_t)np, sizeof *pl), *nimg = calloc((size_t)np, sizeof *nimg);
    for (int i = 0; i < np; i++) {
        pl[i] = jp->items[i].n;
        pp[i] = malloc(sizeof(int) * (size_t)pl[i]);
        for (int t = 0; t < pl[i]; t++) pp[i][t] = (int)jp->items[i].items[t].num;
        nimg[i] = (int)jn->items[i].num;
    }
    json_doc_free(d);
    float *pix = NULL, *gridf = NULL;
    int grid[3 * 64], total_img = 0, pdim = 3 * m.cfg.vis.temporal_patch * m.cfg.vis.patch * m.cfg.vis.patch;
    if (images) {
        st_file sf;
        if (st_open(&sf, images, &err)) return die(err.msg);
        const st_tensor *tp = st_find(&sf, "pixel_values"), *tg = st_find(&sf, "image_grid_thw");
        if (!tp || !tg || tg->numel % 3 || tg->numel > 3 * 64) return die("images file needs pixel_values and image_grid_thw");
        pix = malloc(sizeof(float) * (size_t)tp->numel);
        gridf = malloc(sizeof(float) * (size_t)tg->numel);
        if (st_read_f32(&sf, tp, pix, &err) || st_read_f32(&sf, tg, gridf, &err)) return die(err.msg);
        for (int i = 0; i < tg->numel; i++) grid[i] = (int)gridf[i];
        total_img = (int)(tg->numel / 3);
        st_close(&sf);
    }
    kv_images *kim = calloc((size_t)np, sizeof *kim);
    int *patch0 = calloc((size_t)np + 1, sizeof *patch0), *img0 = calloc((size_t)np + 1, sizeof *img0);
    for (int i = 0, im = 0, pt = 0; i < np; i++) {
        img0[i] = im, patch0[i] = pt;
        if (im + nimg[i] > total_img) return die("more images named than the images file holds");
        kim[i] = (kv_images){nimg[i], pix + (size_t)pt * pdim, grid + 3 * im};
        for (int k = 0; k < nimg[i]; k++, im++) pt += grid[3 * im] * grid[3 * im + 1] * grid[3 * im + 2];
        img0[i + 1] = im, patch0[i + 1] = pt;
    }
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = 1;
    o.batch = batch;
    o.max_new_tokens = N;
    o.prefill_chunk = chunk;
    o.sp.temperature = temperature;
    o.seed = (uint64_t)seed;
    o.images = kim;
    rollout_backend be;
    rollout_model_ctx mctx;
    rollout_backend_model(&be, &mctx, &m);
    rollout_traj *tr = calloc((size_t)np, sizeof *tr);
    if (rollout_run(&be, NULL, (const int *const *)pp, pl, np, &o, tr, &err)) return die(err.msg);
    // the trainer's forward: every sequence (prompt + completion) and its images, packed
    int total = 0;
    for (int i = 0; i < np; i++) total += pl[i] + tr[i].len;
    batch_builder bb;
    if (batch_init(&bb, total, np, &err)) return die(err.msg);
    int *ids = malloc(sizeof(int) * (size_t)total);
    uint8_t *trained = malloc((size_t)total);
    int *start = malloc(sizeof(int) * (size_t)np);
    for (int i = 0; i < np; i++) {
        int L = pl[i] + tr[i].len;
        memcpy(ids, pp[i], sizeof(int) * (size_t)pl[i]);
        memcpy(ids + pl[i], tr[i].ids, sizeof(int) * (size_t)tr[i].len);
        for (int t = 0; t < L; t++) trained[t] = t >= pl[i];
        if (nimg[i] && batch_add_images(&bb, nimg[i], kim[i].pixel_values, patch0[i + 1] - patch0[i], pdim, kim[i].grid_thw, &err))
            return die(err.msg);
        start[i] = batch_add(&bb, ids, trained, L);
    }
    model_batch b = batch_view(&bb);
    float *logp = malloc(sizeof(float) * (size_t)total);
    if (model_forward_temp(&m, &b, temperature > 0 ? temperature : 1.0, logp, NULL, &err)) return die(err.msg);
    float *gen = calloc((size_t)np * N, sizeof(float)), *samp = calloc((size_t)np * N, sizeof(float)), *fwd = calloc((size_t)np * N, sizeof(float));
    for (int i = 0; i < np; i++)
        for (int t = 0; t < tr[i].len && t < N; t++) {
            gen[(size_t)i * N + t] = (float)tr[i].ids[t];
            samp[(size_t)i * N + t] = tr[i].logp[t];
            fwd[(size_t)i * N + t] = logp[start[i] + pl[i] + t - 1];  // position p predicts token p + 1
        }
    st_out_tensor ts[3] = {{"gen", 2, {np, N}, gen}, {"samp_logp", 2, {np, N}, samp}, {"fwd_logp", 2, {np, N}, fwd}};
    if (st_write(out, ts, 3, ST_F32, &err)) return die(err.msg);
    for (int i = 0; i < np; i++) { rollout_traj_free(&tr[i]); free(pp[i]); }
    free(tr); free(pp); free(pl); free(nimg); free(kim); free(patch0); free(img0); free(pix); free(gridf);
    free(ids); free(trained); free(start); free(logp); free(gen); free(samp); free(fwd);
    batch_free(&bb);
    model_free(&m);
    return 0;
}
