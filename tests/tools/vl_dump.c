// vl_dump: the C side of the Qwen2.5-VL parity test (tests/oracle/test_vl.py).
// Loads a model, packs the sequences of T.json into one row with the images of IN.safetensors
// (pixel_values [n_patches, 3*2*14*14], image_grid_thw [n_images, 3] stored as F32), computes
// per-token log-probs (a position whose next token is an image pad has no target), the mean NLL
// and the gradients, and writes: vision_out [n_merged, hidden] (the tower's image embeddings),
// logprobs [N], loss [1], grad.<name> for every trainable parameter.
// --freeze-vision-tower: the tower's parameters get no gradient.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "cli/flags.h"
#include "model/batch.h"
#include "model/model.h"
#include "model/vision.h"
#include "objectives/sft.h"

static int die(const char *msg) { fprintf(stderr, "vl_dump: %s\n", msg); return 1; }

int main(int argc, char **argv) {
    const char *model_dir = NULL, *tokens = NULL, *images = NULL, *out = NULL;
    int freeze = 0;
    flag flags[] = {
        {"model", FLAG_STR, &model_dir, ""}, {"tokens", FLAG_STR, &tokens, ""}, {"images", FLAG_STR, &images, ""},
        {"out", FLAG_STR, &out, ""}, {"freeze-vision-tower", FLAG_BOOL, &freeze, ""},
    };
    int rc = flags_parse("vl_dump", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model_dir || !tokens || !out) return die("--model, --tokens and --out are required");
    tm_error err;
    model m;
    if (model_load(&m, model_dir, &err)) return die(err.msg);
    if (freeze) vision_freeze(&m);
    if (model_enable_grad(&m, &err)) return die(err.msg);
    json_doc *d = json_parse_file(tokens, &err);
    if (!d) return die(err.msg);
    json *seqs = json_get(json_root(d), "sequences");
    if (!seqs || seqs->type != JSON_ARRAY) return die("tokens file needs \"sequences\"");
    int total = 0;
    for (int s = 0; s < seqs->n; s++) total += seqs->items[s].n;
    batch_builder bb;
    if (batch_init(&bb, total, seqs->n, &err)) return die(err.msg);
    int *ids = malloc(sizeof(int) * (size_t)total);
    uint8_t *trained = malloc((size_t)total);
    for (int s = 0; s < seqs->n; s++) {
        for (int t = 0; t < seqs->items[s].n; t++) {
            ids[t] = (int)seqs->items[s].items[t].num;
            trained[t] = t > 0 && ids[t] != m.cfg.image_token_id;
        }
        batch_add(&bb, ids, trained, seqs->items[s].n);
    }
    json_doc_free(d);
    model_batch b = batch_view(&bb);
    float *pix = NULL, *gridf = NULL;
    int grid[3 * 64];
    st_file sf;
    if (images) {
        if (st_open(&sf, images, &err)) return die(err.msg);
        const st_tensor *tp = st_find(&sf, "pixel_values"), *tg = st_find(&sf, "image_grid_thw");
        if (!tp || !tg || tg->numel % 3 || tg->numel > 3 * 64) return die("images file needs pixel_values and image_grid_thw");
        pix = malloc(sizeof(float) * (size_t)tp->numel);
        gridf = malloc(sizeof(float) * (size_t)tg->numel);
        if (st_read_f32(&sf, tp, pix, &err) || st_read_f32(&sf, tg, gridf, &err)) return die(err.msg);
        for (int i = 0; i < tg->numel; i++) grid[i] = (int)gridf[i];
        b.n_images = (int)(tg->numel / 3);
        b.pixel_values = pix;
        b.image_grid_thw = grid;
        st_close(&sf);
    }
    float *logp = malloc(sizeof(float) * (size_t)total), *dlogp = malloc(sizeof(float) * (size_t)total);
    if (model_forward(&m, &b, logp, NULL, &err)) return die(err.msg);
    int ntrain = 0;
    for (int i = 0; i < total; i++) ntrain += b.targets[i] >= 0;
    float loss = (float)sft_nll(logp, b.targets, total, ntrain, dlogp);
    int nm = 0;
    const float *vo = vision_last_output(&m, &nm);
    model_backward(&m, &b, dlogp, NULL);
    int n = 3 + m.nparams;
    st_out_tensor *ts = calloc((size_t)n, sizeof *ts);
    char (*names)[128] = calloc((size_t)n, 128);
    ts[0] = (st_out_tensor){"logprobs", 1, {total}, logp};
    ts[1] = (st_out_tensor){"loss", 1, {1}, &loss};
    int nt = 2;
    if (nm) ts[nt++] = (st_out_tensor){"vision_out", 2, {nm, m.cfg.hidden}, vo};
    for (int i = 0; i < m.nparams; i++) {
        const model_param *p = &m.params[i];
        if (!p->trainable) continue;
        st_out_tensor *t = &ts[nt];
        snprintf(names[nt], 128, "grad.%s", p->name);
        t->name = names[nt];
        t->ndim = p->ndim;
        for (int k = 0; k < p->ndim; k++) t->shape[k] = p->shape[k];
        t->data = m.g + p->goff;
        nt++;
    }
    if (st_write(out, ts, nt, ST_F32, &err)) return die(err.msg);
    free(ts); free(names); free(logp); free(dlogp); free(ids); free(trained); free(pix); free(gridf);
    batch_free(&bb);
    model_free(&m);
    return 0;
}
