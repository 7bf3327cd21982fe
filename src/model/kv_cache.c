// model/kv_cache.c: see kv_cache.h.
#include "model/kv_cache.h"
#include "model/lora.h"
#include "model/vision.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX

static float *falloc(size_t n) {
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

int kv_cache_init(kv_cache *c, const model *m, int nslots, const int *caps, int max_rows,
                  int max_logit_rows, tm_error *err) {
    memset(c, 0, sizeof *c);
    if (nslots <= 0 || max_rows <= 0) return tm_fail(err, "kv cache: need at least one slot and one row");
    const model_config *cfg = &m->cfg;
    if (cfg->head_dim > m->K->attention_cache_max_head_dim())
        return tm_fail(err, "kv cache: head_dim %d is larger than the decode kernel's %d", cfg->head_dim,
                       m->K->attention_cache_max_head_dim());
    c->layers = cfg->layers;
    c->kv_heads = cfg->kv_heads;
    c->head_dim = cfg->head_dim;
    c->nslots = nslots;
    c->cap = malloc(sizeof(int) * (size_t)nslots);
    c->off = malloc(sizeof(size_t) * (size_t)nslots);
    if (!c->cap || !c->off) { kv_cache_free(c); return tm_fail(err, "out of memory"); }
    size_t per_tok = (size_t)cfg->kv_heads * cfg->head_dim;
    for (int s = 0; s < nslots; s++) {
        if (caps[s] < 0) { kv_cache_free(c); return tm_fail(err, "kv cache: negative capacity"); }
        c->cap[s] = caps[s];
        c->off[s] = c->layer_floats;
        c->layer_floats += ((size_t)caps[s] * per_tok + 15) & ~(size_t)15;
    }
    c->k = falloc((size_t)cfg->layers * c->layer_floats);
    c->v = falloc((size_t)cfg->layers * c->layer_floats);
    size_t R = (size_t)max_rows, D = (size_t)cfg->hidden, F = (size_t)cfg->ffn;
    size_t qd = (size_t)cfg->heads * cfg->head_dim, kvd = per_tok;
    c->max_rows = max_rows;
    c->max_logit_rows = max_logit_rows;
    c->x = falloc(R * D);
    c->xmid = falloc(R * D);
    c->xn = falloc(R * D);
    c->q = falloc(R * qd);
    c->qpre = falloc(R * qd);
    c->kk = falloc(R * kvd);
    c->kpre = falloc(R * kvd);
    c->vv = falloc(R * kvd);
    c->att = falloc(R * qd);
    c->gate = falloc(R * F);
    c->up = falloc(R * F);
    c->h = falloc(R * F);
    c->rstd = falloc(R);
    c->rstd_h = falloc(R * (size_t)cfg->heads);
    c->hsel = falloc((size_t)(max_logit_rows > 0 ? max_logit_rows : 1) * D);
    c->spans = malloc(sizeof(k_kv_span) * R * 2);
    c->ang = falloc(R * (size_t)(cfg->head_dim / 2));
    if (!c->ang || !c->k || !c->v || !c->x || !c->xmid || !c->xn || !c->q || !c->qpre || !c->kk || !c->kpre || !c->vv ||
        !c->att || !c->gate || !c->up || !c->h || !c->rstd || !c->rstd_h || !c->hsel || !c->spans) {
        size_t mib = kv_cache_bytes(c) >> 20;
        kv_cache_free(c);
        return tm_fail(err, "out of memory for the KV cache (%d slots, about %zu MiB)", nslots, mib);
    }
    return 0;
}

void kv_cache_free(kv_cache *c) {
    free(c->cap); free(c->off); free(c->k); free(c->v);
    free(c->x); free(c->xmid); free(c->xn); free(c->q); free(c->qpre); free(c->kk); free(c->kpre); free(c->vv);
    free(c->att); free(c->gate); free(c->up); free(c->h); free(c->rstd); free(c->rstd_h); free(c->hsel);
    free(c->spans); free(c->ang);
    memset(c, 0, sizeof *c);
}

size_t kv_cache_bytes(const kv_cache *c) {
    return 2 * (size_t)c->layers * c->layer_floats * sizeof(float);
}

static int decode_rows(model *m, kv_cache *c, const kv_batch *b, float *logits, tm_error *err);

// A decoding step of a small model is a few MFLOP spread over ~15 parallel regions
// per layer; there the fork/join (and, on a busy machine, a descheduled partner
// thread at every barrier) costs more than the second thread gains: measured on the
// 2-core dev machine, tiny model, batch 1: 841 tok/s on 1 thread, 41 tok/s on 2
// (load ~4); batch 16: 2988 vs 32-2018 tok/s depending on the load. A second thread
// joins from ~512 MFLOP per call (the small config at batch >= 2). The result does
// not depend on the thread count (every kernel cuts its work by shape, test_rollout).
static double decode_min_flop_per_thread = 2.56e8;

void model_decode_set_min_flop_per_thread(double flop) { decode_min_flop_per_thread = flop; }

int model_decode(model *m, kv_cache *c, const kv_batch *b, float *logits, tm_error *err) {
    int nt = omp_get_max_threads();
    double flop = 2.0 * (double)b->n * (double)m->numel;
    int want = decode_min_flop_per_thread > 0 ? (int)(flop / decode_min_flop_per_thread) : nt;
    want = want < 1 ? 1 : want > nt ? nt : want;
    if (want == nt) return decode_rows(m, c, b, logits, err);
    omp_set_num_threads(want);
    int rc = decode_rows(m, c, b, logits, err);
    omp_set_num_threads(nt);
    return rc;
}

// The linear layers of a decoding step: few rows stream the weights once
// (k_linear_rows_fwd), more go through the backend's GEMM like the trainer. A weight read
// in place as bf16 (model_load_frozen), or any under --bf16, goes to the trainer's kernel.
static void lin(const model *m, float *y, const float *x, const float *W, const float *b, int N, int in, int out) {
    const struct kernels *K = m->K;
    if (m->w16 || model_weight_bf16(m, (size_t)(W - m->w))) model_linear_fwd(m, y, x, W, b, N, in, out);
    else if (N <= K->linear_rows_max()) K->linear_rows_fwd(y, x, W, b, N, in, out);
    else K->linear_fwd(y, x, W, b, N, in, out);
}

// The lm-head stays fp32 under --bf16, as the trainer's fused lm-head (model_lmhead_fwd) does,
// so the sampler's log-probs are the trainer's: only a head read in place is bf16 (widened).
static void lin_head(const model *m, float *y, const float *x, int N, int D, int V) {
    const struct kernels *K = m->K;
    const float *W = m->w + m->off_lm_head;
    const uint16_t *h = model_weight_bf16(m, m->off_lm_head);
    if (h) K->linear_bf16_fwd(y, x, h, NULL, N, D, V);
    else if (N <= K->linear_rows_max()) K->linear_rows_fwd(y, x, W, NULL, N, D, V);
    else K->linear_fwd(y, x, W, NULL, N, D, V);
}

static int decode_rows(model *m, kv_cache *c, const kv_batch *b, float *logits, tm_error *err) {
    const model_config *cf = &m->cfg;
    const struct kernels *K = m->K;
    const int N = b->n, D = cf->hidden, F = cf->ffn, Hq = cf->heads, Hkv = cf->kv_heads, hd = cf->head_dim;
    const int qd = Hq * hd, kvd = Hkv * hd, V = cf->vocab;
    const float *W = m->w;
    if (N <= 0) return 0;
    if (N > c->max_rows) return tm_fail(err, "decode: %d rows, the cache was sized for %d", N, c->max_rows);
    int nlog = 0;
    for (int i = 0; i < N; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= V)
            return tm_fail(err, "decode: token id %d outside the vocabulary (%d)", b->tokens[i], V);
        int s = b->slot[i];
        if (s < 0 || s >= c->nslots || b->cache_pos[i] < 0 || b->cache_pos[i] >= c->cap[s])
            return tm_fail(err, "decode: row %d writes slot %d index %d, outside the cache", i, s, b->cache_pos[i]);
        int ps = b->prefix_slot ? b->prefix_slot[i] : -1;
        if (ps >= 0 && (ps >= c->nslots || b->prefix_len[i] > c->cap[ps]))
            return tm_fail(err, "decode: row %d reads %d entries of slot %d", i, b->prefix_len[i], ps);
        if (b->logit_row && b->logit_row[i] >= 0) nlog++;
    }
    if (nlog > c->max_logit_rows) return tm_fail(err, "decode: %d logit rows, sized for %d", nlog, c->max_logit_rows);
    const int half = hd / 2;
    if (!m->vis)
        for (int i = 0; i < N; i++)
            if ((b->ang && b->ang[i]) || (b->emb && b->emb[i]))
                return tm_fail(err, "decode: row %d carries image embeddings or M-RoPE angles, but the model has no vision tower", i);
    if (m->vis) {
        // M-RoPE: the angles of the trainer's table (vision.c's lm_angles), a text row's from
        // its shifted position on all three axes, in the same fp32 product
        for (int i = 0; i < N; i++) {
            float *a = c->ang + (size_t)i * half;
            if (b->ang && b->ang[i]) memcpy(a, b->ang[i], sizeof(float) * (size_t)half);
            else
                for (int j = 0; j < half; j++) a[j] = (float)b->pos[i] * m->inv_freq[j];
        }
    }
    if (lora_reserve(m, N, err)) return -1;  // LoRA adapters (model/lora.h) apply in decoding too
    const size_t ND = (size_t)N * D;
    const float nofs = cf->norm_ofs ? 1.0f : 0.0f, qs = model_query_scale(m), es = model_embed_scale(m);

    model_embedding_fwd(m, c->x, b->tokens, W + m->off_embed, N, D);
    if (es != 1.0f)
        for (size_t i = 0; i < ND; i++) c->x[i] *= es;
    if (b->emb)  // image-pad rows: the tower's output over the embedding (as vision_forward)
        for (int i = 0; i < N; i++)
            if (b->emb[i]) memcpy(c->x + (size_t)i * D, b->emb[i], sizeof(float) * (size_t)D);
    for (int l = 0; l < cf->layers; l++) {
        const layer_offsets *o = &m->layer[l];
        const float *inv_freq = model_layer_inv_freq(m, l);
        const int window = config_layer_window(cf, l);
        float *Kc = c->k + (size_t)l * c->layer_floats, *Vc = c->v + (size_t)l * c->layer_floats;
        K->rmsnorm_fwd(c->xn, c->rstd, c->x, W + o->attn_norm, nofs, N, D, cf->rms_eps);
        if (cf->qk_norm) {
            lin(m, c->qpre, c->xn, W + o->wq, o->bq == NONE ? NULL : W + o->bq, N, D, qd);
            lora_fwd(m, l, LORA_Q, c->qpre, c->xn, N, D, qd);
            lin(m, c->kpre, c->xn, W + o->wk, o->bk == NONE ? NULL : W + o->bk, N, D, kvd);
            lora_fwd(m, l, LORA_K, c->kpre, c->xn, N, D, kvd);
            K->rmsnorm_fwd(c->q, c->rstd_h, c->qpre, W + o->q_norm, nofs, N * Hq, hd, cf->rms_eps);
            K->rmsnorm_fwd(c->kk, c->rstd_h, c->kpre, W + o->k_norm, nofs, N * Hkv, hd, cf->rms_eps);
        } else {
            lin(m, c->q, c->xn, W + o->wq, o->bq == NONE ? NULL : W + o->bq, N, D, qd);
            lora_fwd(m, l, LORA_Q, c->q, c->xn, N, D, qd);
            lin(m, c->kk, c->xn, W + o->wk, o->bk == NONE ? NULL : W + o->bk, N, D, kvd);
            lora_fwd(m, l, LORA_K, c->kk, c->xn, N, D, kvd);
        }
        lin(m, c->vv, c->xn, W + o->wv, o->bv == NONE ? NULL : W + o->bv, N, D, kvd);
        lora_fwd(m, l, LORA_V, c->vv, c->xn, N, D, kvd);
        if (m->vis) {
            K->rope_angle_fwd(c->q, c->ang, N, Hq, hd);
            K->rope_angle_fwd(c->kk, c->ang, N, Hkv, hd);
        } else {
            K->rope_fwd(c->q, b->pos, inv_freq, N, Hq, hd);
            K->rope_fwd(c->kk, b->pos, inv_freq, N, Hkv, hd);
        }
        if (qs != 1.0f)
            for (size_t i = 0; i < (size_t)N * qd; i++) c->q[i] *= qs;
        for (int i = 0; i < N; i++) {
            int s = b->slot[i];
            for (int h = 0; h < Hkv; h++) {
                size_t at = c->off[s] + ((size_t)h * c->cap[s] + b->cache_pos[i]) * hd;
                memcpy(Kc + at, c->kk + ((size_t)i * Hkv + h) * hd, sizeof(float) * (size_t)hd);
                memcpy(Vc + at, c->vv + ((size_t)i * Hkv + h) * hd, sizeof(float) * (size_t)hd);
            }
        }
        for (int i = 0; i < N; i++) {
            k_kv_span *sp = &c->spans[2 * i];
            int ps = b->prefix_slot ? b->prefix_slot[i] : -1, s = b->slot[i];
            if (ps >= 0) {
                sp[0] = (k_kv_span){Kc + c->off[ps], Vc + c->off[ps], (long)c->cap[ps] * hd, b->prefix_len[i], 0};
            } else {
                sp[0] = (k_kv_span){Kc, Vc, 0, 0, 0};
            }
            sp[1] = (k_kv_span){Kc + c->off[s], Vc + c->off[s], (long)c->cap[s] * hd, b->cache_pos[i] + 1, 0};
            if (window > 0) {
                // Sliding layer: only the last `window` keys of the concatenation (the
                // query's own included) are visible, as in the trainer's mask.
                int drop = sp[0].len + sp[1].len - window;
                if (drop > 0) sp[0].dropped = drop;  // the kernel aligns its key tiles as the trainer's
                for (int j = 0; j < 2 && drop > 0; j++) {
                    int d = drop < sp[j].len ? drop : sp[j].len;
                    sp[j].k += (long)d * hd;
                    sp[j].v += (long)d * hd;
                    sp[j].len -= d;
                    drop -= d;
                }
            }
        }
        K->attention_cache_fwd(c->att, c->q, c->spans, 2, N, Hq, Hkv, hd);
        if (cf->sandwich_norm) {  // Gemma: post-norms on both branches' outputs
            lin(m, c->xn, c->att, W + o->wo, o->bo == NONE ? NULL : W + o->bo, N, qd, D);
            lora_fwd(m, l, LORA_O, c->xn, c->att, N, qd, D);
            K->rmsnorm_fwd(c->xmid, c->rstd, c->xn, W + o->post_attn_norm, nofs, N, D, cf->rms_eps);
        } else {
            lin(m, c->xmid, c->att, W + o->wo, o->bo == NONE ? NULL : W + o->bo, N, qd, D);
            lora_fwd(m, l, LORA_O, c->xmid, c->att, N, qd, D);
        }
        K->add_inplace(c->xmid, c->x, (long)ND);
        K->rmsnorm_fwd(c->xn, c->rstd, c->xmid, W + o->mlp_norm, nofs, N, D, cf->rms_eps);
        lin(m, c->gate, c->xn, W + o->w_gate, NULL, N, D, F);
        lora_fwd(m, l, LORA_GATE, c->gate, c->xn, N, D, F);
        lin(m, c->up, c->xn, W + o->w_up, NULL, N, D, F);
        lora_fwd(m, l, LORA_UP, c->up, c->xn, N, D, F);
        if (cf->gelu_tanh) K->geglu_fwd(c->h, c->gate, c->up, (long)N * F);
        else K->swiglu_fwd(c->h, c->gate, c->up, (long)N * F);
        if (cf->sandwich_norm) {
            lin(m, c->xn, c->h, W + o->w_down, NULL, N, F, D);
            lora_fwd(m, l, LORA_DOWN, c->xn, c->h, N, F, D);
            K->rmsnorm_fwd(c->x, c->rstd, c->xn, W + o->post_ff_norm, nofs, N, D, cf->rms_eps);
        } else {
            lin(m, c->x, c->h, W + o->w_down, NULL, N, F, D);
            lora_fwd(m, l, LORA_DOWN, c->x, c->h, N, F, D);
        }
        K->add_inplace(c->x, c->xmid, (long)ND);
    }
    if (!nlog || !logits) return 0;
    // Final norm only for the rows that want logits, gathered in logit_row order.
    for (int i = 0; i < N; i++) {
        int r = b->logit_row[i];
        if (r < 0) continue;
        if (r >= nlog) return tm_fail(err, "decode: logit_row %d is not in 0..%d", r, nlog - 1);
        memcpy(c->xn + (size_t)r * D, c->x + (size_t)i * D, sizeof(float) * (size_t)D);
    }
    K->rmsnorm_fwd(c->hsel, c->rstd, c->xn, W + m->off_norm, nofs, nlog, D, cf->rms_eps);
    if (c->logit_scale != 0.0f && c->logit_scale != 1.0f)  // as model_forward_temp's h * (1/T)
        for (size_t i = 0; i < (size_t)nlog * D; i++) c->hsel[i] *= c->logit_scale;
    lin_head(m, logits, c->hsel, nlog, D, V);
    return 0;
}

// ---- the vision prefill of one prompt ----

void kv_vision_free(kv_vision *v) {
    free(v->emb); free(v->ang); free(v->row);
    memset(v, 0, sizeof *v);
}

int kv_prompt_vision(model *m, const int *tokens, int n, const kv_images *im, kv_vision *out, tm_error *err) {
    memset(out, 0, sizeof *out);
    if (!m->vis) return tm_fail(err, "the prompt has images but the model has no vision tower (a Qwen2.5-VL model reads them)");
    const model_config *cf = &m->cfg;
    const int D = cf->hidden, half = cf->head_dim / 2, ms = cf->vis.merge;
    int *pos = malloc(sizeof(int) * (size_t)n), cu[2] = {0, n};
    float *x = malloc(sizeof(float) * (size_t)n * D);
    out->ang = malloc(sizeof(float) * (size_t)n * half);
    out->row = malloc(sizeof(int) * (size_t)n);
    int rc = 0;
    if (!pos || !x || !out->ang || !out->row) rc = tm_fail(err, "out of memory");
    for (int i = 0; !rc && i < n; i++) pos[i] = i;
    model_batch b = {0};
    b.n_tokens = n, b.n_seqs = 1, b.tokens = tokens, b.pos = pos, b.cu_seqlens = cu;
    b.n_images = im ? im->n_images : 0, b.pixel_values = im ? im->pixel_values : NULL, b.image_grid_thw = im ? im->grid_thw : NULL;
    if (!rc) rc = vision_forward(m, &b, x, err);
    int nm = 0;
    const float *emb = rc ? NULL : vision_last_output(m, &nm);
    if (!rc && !(out->emb = malloc(sizeof(float) * ((size_t)nm * D + 1)))) rc = tm_fail(err, "out of memory");
    if (!rc) {
        memcpy(out->emb, emb, sizeof(float) * (size_t)nm * D);
        memcpy(out->ang, vision_lm_angles(m), sizeof(float) * (size_t)n * half);
        for (int i = 0, k = 0; i < n; i++) out->row[i] = tokens[i] == cf->image_token_id ? k++ : -1;
        for (int i = 0; i < b.n_images; i++) {  // as vision.c's lm_angles: text after an image moves by max(h, w) - h*w
            const int t = b.image_grid_thw[3 * i], lh = b.image_grid_thw[3 * i + 1] / ms, lw = b.image_grid_thw[3 * i + 2] / ms;
            out->rope_delta += (lh > lw ? lh : lw) - t * lh * lw;
        }
        out->n = n, out->hidden = D, out->half = half;
    }
    free(pos);
    free(x);
    if (rc) kv_vision_free(out);
    return rc;
}
