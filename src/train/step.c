// The step-level trainer (see step.h).
#include "train/step.h"
#include "dist/dist.h"
#include "kernels/prof.h"
#include "model/lora.h"
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int trainer_open(trainer *t, model *m, const trainer_opts *o, int train, tm_error *err) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->o = *o;
    t->temperature = 1.0;
    int cap_tokens = o->cap_tokens, cap_seqs = o->cap_seqs;
    if (cap_tokens < 1 || cap_seqs < 1) return tm_fail(err, "internal: trainer_open needs positive sizes");
    if (batch_init(&t->bb, cap_tokens, cap_seqs, err)) return -1;
    size_t n = (size_t)cap_tokens;
    t->logp_pos = malloc(sizeof(float) * n);
    t->dlogp_pos = malloc(sizeof(float) * n);
    t->logp_tok = malloc(sizeof(float) * n);
    t->dlogp_tok = malloc(sizeof(float) * n);
    t->ref_tok = malloc(sizeof(float) * n);
    t->weight_tok = malloc(sizeof(float) * n);
    t->mask_tok = malloc(n);
    t->span = malloc(sizeof(int) * 2 * (size_t)cap_seqs);
    t->cap_tokens = cap_tokens;
    t->cap_seqs = cap_seqs;
    if (!t->logp_pos || !t->dlogp_pos || !t->logp_tok || !t->dlogp_tok || !t->ref_tok || !t->weight_tok || !t->mask_tok || !t->span) {
        trainer_close(t);
        return tm_fail(err, "out of memory");
    }
    model_set_checkpointing(m, o->gradient_checkpointing);
    if (o->profile) m->K = kprof_wrap(m->K), t->prof_start = wall();
    if (model_reserve(m, cap_tokens, err) || (o->bf16 && model_bf16_enable(m, err))) { trainer_close(t); return -1; }
    if (train && trainer_enable_train(t, err)) { trainer_close(t); return -1; }
    return 0;
}

int trainer_enable_train(trainer *t, tm_error *err) {
    model_set_checkpointing(t->m, t->o.gradient_checkpointing);  // the model may have been reloaded since trainer_open
    if (t->o.profile) t->m->K = kprof_wrap(t->m->K);
    if (model_enable_grad(t->m, err)) return -1;
    // the model may have been reloaded or grown adapters since trainer_open
    if (t->o.bf16 && model_bf16_enable(t->m, err)) return -1;
    return model_optimizer_init(&t->opt, t->m, t->o.adam, t->o.max_grad_norm, err);
}

void trainer_close(trainer *t) {
    batch_free(&t->bb);
    free(t->logp_pos); free(t->dlogp_pos); free(t->logp_tok); free(t->dlogp_tok); free(t->ref_tok); free(t->weight_tok);
    free(t->mask_tok); free(t->span);
    model_optimizer_free(&t->opt);
    memset(t, 0, sizeof *t);
}

void trainer_set_temperature(trainer *t, double T) { t->temperature = T; }

void trainer_clear(trainer *t) { batch_clear(&t->bb); }

// The buffers are sized for the largest micro-batch, so a sequence that does not fit is
// a bug in that sizing: reported, never written past the end.
int trainer_add(trainer *t, const int32_t *ids, const uint8_t *mask, int len, const float *ref, const float *w,
                tm_error *err) {
    int s = t->bb.n_seqs;
    int start = batch_add(&t->bb, ids, mask, len);
    if (start < 0)
        return tm_fail(err, "internal: a sequence of %d tokens does not fit the batch (%d of %d tokens, %d of %d sequences used)", len,
                       t->bb.n_tokens, t->bb.cap_tokens, t->bb.n_seqs, t->bb.cap_seqs);
    t->span[2 * s] = start;
    t->span[2 * s + 1] = start + len;
    for (int i = 0; i < len; i++) {
        t->mask_tok[start + i] = i > 0 && mask[i];  // the first token has no log-prob
        t->ref_tok[start + i] = ref ? ref[i] : 0.0f;
        t->weight_tok[start + i] = w ? w[i] : 1.0f;
    }
    return 0;
}

int trainer_add_images(trainer *t, int n, const float *pixel_values, int n_patches, int dim, const int *grid_thw,
                       tm_error *err) {
    return batch_add_images(&t->bb, n, pixel_values, n_patches, dim, grid_thw, err);
}

// Forward over the packed batch, then log-probs (and entropies) moved to token alignment.
int trainer_forward(trainer *t, float *entropy_tok, tm_error *err) {
    model_batch mb = batch_view(&t->bb);
    // the entropy of position i is that of the distribution predicting token i + 1
    float *ent_pos = entropy_tok ? t->dlogp_pos : NULL;  // free scratch until the backward
    if (model_forward_temp(t->m, &mb, t->temperature, t->logp_pos, ent_pos, err)) return -1;
    for (int s = 0; s < mb.n_seqs; s++) {
        int start = t->span[2 * s], end = t->span[2 * s + 1];
        t->logp_tok[start] = 0;
        if (entropy_tok) entropy_tok[start] = 0;
        for (int i = start + 1; i < end; i++) {
            t->logp_tok[i] = t->logp_pos[i - 1];
            if (entropy_tok) entropy_tok[i] = ent_pos[i - 1];
        }
    }
    return 0;
}

void trainer_dropout_next(trainer *t) {
    if (!t->m->lora) return;
    if (t->drop_step != t->opt.step || t->drop_forward < 0) t->drop_step = t->opt.step, t->drop_forward = 0;
    model_lora_dropout_next(t->m, (uint64_t)t->drop_step * 1000003u + (uint64_t)t->drop_forward++);
}

seq_batch trainer_view(const trainer *t, int with_ref) {
    seq_batch s = {t->bb.n_tokens, t->logp_tok, with_ref ? t->ref_tok : NULL, t->mask_tok, t->has_weights ? t->weight_tok : NULL,
                   t->bb.n_seqs, t->span};
    return s;
}

void trainer_backward(trainer *t) {
    model_batch mb = batch_view(&t->bb);
    for (int s = 0; s < mb.n_seqs; s++) {
        int start = t->span[2 * s], end = t->span[2 * s + 1];
        for (int i = start + 1; i < end; i++) t->dlogp_pos[i - 1] = t->dlogp_tok[i];
        t->dlogp_pos[end - 1] = 0;
    }
    model_backward(t->m, &mb, t->dlogp_pos, NULL);
}

void trainer_backward_extra(trainer *t, const float *dxf_extra) {
    if (!dxf_extra) { trainer_backward(t); return; }
    model_batch mb = batch_view(&t->bb);
    for (int s = 0; s < mb.n_seqs; s++) {
        int start = t->span[2 * s], end = t->span[2 * s + 1];
        for (int i = start + 1; i < end; i++) t->dlogp_pos[i - 1] = t->dlogp_tok[i];
        t->dlogp_pos[end - 1] = 0;
    }
    model_backward_extra(t->m, &mb, t->dlogp_pos, NULL, dxf_extra);
}

double trainer_lr(const trainer *t, int64_t step) {
    return t->o.adam.lr * lr_multiplier(t->o.schedule, step, t->o.warmup_steps, t->o.total_steps);
}

double trainer_step(trainer *t, int64_t step) {
    double t0 = t->o.profile ? wall() : 0;
    double norm = model_optimizer_step(&t->opt, t->m, trainer_lr(t, step));
    if (t->o.profile) t->prof_opt_s += wall() - t0;
    return norm;
}

void trainer_profile_report(const trainer *t, FILE *f) {
    if (!t->o.profile) return;
    double total = wall() - t->prof_start, sec[KPROF_NCLASS], rest = total - t->prof_opt_s;
    long calls[KPROF_NCLASS];
    kprof_read(sec, calls);
    if (!(total > 0)) return;
    fprintf(f, "temper: profile of %.2f s (wall time since the trainer opened; kernel time from every model it ran)\n", total);
    for (int c = 0; c < KPROF_NCLASS; c++) {
        fprintf(f, "  %-14s %6.1f%%  %9.3f s  %ld calls\n", kprof_class_name((kprof_class)c), 100 * sec[c] / total, sec[c], calls[c]);
        rest -= sec[c];
    }
    fprintf(f, "  %-14s %6.1f%%  %9.3f s\n", "optimizer", 100 * t->prof_opt_s / total, t->prof_opt_s);
    fprintf(f, "  %-14s %6.1f%%  %9.3f s  (data, objectives, sampling loop, saving)\n", "rest", 100 * rest / total, rest);
}

int trainer_step_all(trainer *t, int64_t step, double *grad_norm, tm_error *err) {
    int world = dist_size();
    if (world == 1) {
        *grad_norm = trainer_step(t, step);
        return 0;
    }
    model *m = t->m;
    size_t n = m->gnumel, lo, hi;
    dist_slice(n, dist_rank(), &lo, &hi);
    int zero = t->o.zero_stage >= 1;
    // the first sharded step (after a resume filled the whole state): keep this rank's slice
    if (zero && !t->opt.sharded && model_optimizer_shard(&t->opt, lo, hi, err)) return -1;
    if ((zero ? dist_reduce_scatter_sum_f32 : dist_allreduce_sum_f32)(m->g, n, err)) return -1;
    // the global norm from each rank's slice, summed in rank order: the same bits with or
    // without ZeRO (whose ranks hold only their slice of the summed gradient)
    double ss = 0, *all = malloc(sizeof(double) * (size_t)world);
    if (!all) return tm_fail(err, "out of memory");
    for (size_t i = lo; i < hi; i++) ss += (double)m->g[i] * m->g[i];
    if (dist_allgather(&ss, all, sizeof ss, err)) { free(all); return -1; }
    double total = 0;
    for (int r = 0; r < world; r++) total += all[r];
    free(all);
    double norm = sqrt(total);
    size_t a = zero ? lo : 0, b = zero ? hi : n;
    if (t->o.max_grad_norm > 0) {  // clip_grad_norm's rule (optim.h)
        double coef = t->o.max_grad_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float c = (float)coef;
            for (size_t i = a; i < b; i++) m->g[i] *= c;
        }
    }
    model_optimizer_update_range(&t->opt, m, trainer_lr(t, step), a, b);
    if (zero) {
        // the updated slice travels in the gradient array (zeroed below anyway), in
        // gradient order, then every trainable weight is read back from it
        for (int i = 0; i < m->nparams; i++) {
            const model_param *p = &m->params[i];
            if (!p->trainable) continue;
            size_t s0 = p->goff > lo ? p->goff : lo, s1 = p->goff + p->numel < hi ? p->goff + p->numel : hi;
            if (s0 < s1) memcpy(m->g + s0, m->w + p->offset + (s0 - p->goff), sizeof(float) * (s1 - s0));
        }
        if (dist_allgather_slices_f32(m->g, n, err)) return -1;
        for (int i = 0; i < m->nparams; i++) {
            const model_param *p = &m->params[i];
            if (p->trainable) memcpy(m->w + p->offset, m->g + p->goff, sizeof(float) * p->numel);
        }
    }
    model_bf16_refresh(m);  // --bf16: the GEMMs' copy follows the updated master (a no-op without)
    model_zero_grad(m);
    *grad_norm = norm;
    return 0;
}

int trainer_save(const trainer *t, const char *output_dir, const checkpoint_state *st, int keep, tm_error *err) {
    if (!t->opt.sharded) return dist_rank() == 0 ? checkpoint_save(output_dir, t->m, &t->opt, st, keep, err) : 0;
    // ZeRO-1: the shards, concatenated in rank order, are the whole state (dist_slice)
    size_t bytes = sizeof(float) * (t->opt.hi - t->opt.lo);
    char *m_all = NULL, *v_all = NULL;
    int rc = -1;
    if (dist_gather_bytes(t->opt.m, bytes, &m_all, NULL, err) || dist_gather_bytes(t->opt.v, bytes, &v_all, NULL, err)) goto out;
    if (dist_rank() == 0) {
        model_optimizer full = t->opt;
        full.m = (float *)m_all;
        full.v = (float *)v_all;
        full.lo = 0;
        full.hi = t->m->gnumel;
        full.sharded = 0;
        if (checkpoint_save(output_dir, t->m, &full, st, keep, err)) goto out;
    }
    rc = 0;
out:
    free(m_all);
    free(v_all);
    return rc;
}

int trainer_resume(trainer *t, const char *dir, checkpoint_state *st, tm_error *err) {
    if (checkpoint_load_state(dir, t->m, &t->opt, st, err)) return -1;
    model_bf16_refresh(t->m);  // the master weights changed (a no-op without --bf16)
    return 0;
}
