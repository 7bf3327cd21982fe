#include "train/optimizer.h"
#include <stdlib.h>
#include <string.h>

int model_optimizer_init(model_optimizer *o, const model *mdl, adamw_hparams h, double max_grad_norm, tm_error *err) {
    memset(o, 0, sizeof *o);
    o->h = h;
    o->max_grad_norm = max_grad_norm;
    // state for the trainable parameters only (mdl->gnumel, set by model_enable_grad)
    size_t n = mdl->g ? mdl->gnumel : mdl->numel;
    o->m = calloc(n ? n : 1, sizeof(float));
    o->v = calloc(n ? n : 1, sizeof(float));
    if (!o->m || !o->v) { model_optimizer_free(o); return tm_fail(err, "out of memory for optimizer state"); }
    o->hi = n;
    return 0;
}

void model_optimizer_free(model_optimizer *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

double model_optimizer_step(model_optimizer *o, model *mdl, double lr) {
    double norm = clip_grad_norm(mdl->g, mdl->gnumel, o->max_grad_norm);
    adamw_hparams h = o->h;
    h.lr = lr;
    o->step++;
    for (int i = 0; i < mdl->nparams; i++) {
        const model_param *p = &mdl->params[i];
        if (!p->trainable) continue;  // frozen (the base under LoRA)
        adamw_update(mdl->w + p->offset, mdl->g + p->goff, o->m + p->goff, o->v + p->goff, p->numel, &h,
                     p->decay ? h.weight_decay : 0.0, o->step);
    }
    model_zero_grad(mdl);
    model_bf16_refresh(mdl);  // --bf16: the GEMMs' copy follows the fp32 master (else a no-op)
    return norm;
}

int model_optimizer_shard(model_optimizer *o, size_t lo, size_t hi, tm_error *err) {
    size_t n = hi - lo;
    float *m = malloc(sizeof(float) * (n ? n : 1)), *v = malloc(sizeof(float) * (n ? n : 1));
    if (!m || !v) { free(m); free(v); return tm_fail(err, "out of memory for the optimizer state's shard"); }
    memcpy(m, o->m + lo - o->lo, sizeof(float) * n);
    memcpy(v, o->v + lo - o->lo, sizeof(float) * n);
    free(o->m);
    free(o->v);
    o->m = m;
    o->v = v;
    o->lo = lo;
    o->hi = hi;
    o->sharded = 1;
    return 0;
}

void model_optimizer_update_range(model_optimizer *o, model *mdl, double lr, size_t lo, size_t hi) {
    adamw_hparams h = o->h;
    h.lr = lr;
    o->step++;
    for (int i = 0; i < mdl->nparams; i++) {
        const model_param *p = &mdl->params[i];
        if (!p->trainable) continue;
        size_t a = p->goff > lo ? p->goff : lo, b = p->goff + p->numel < hi ? p->goff + p->numel : hi;
        if (a >= b) continue;
        adamw_update(mdl->w + p->offset + (a - p->goff), mdl->g + a, o->m + (a - o->lo), o->v + (a - o->lo), b - a, &h,
                     p->decay ? h.weight_decay : 0.0, o->step);
    }
}
