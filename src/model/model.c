// The transformer: parameter table, forward and backward over packed tokens.
#include "model/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "model/lora.h"
#include "model/vision.h"

#define NONE SIZE_MAX

struct model_acts {
    int cap;              // max tokens
    int ckpt;             // the arena's layout: 1 = checkpointing (one layer's internals, model_set_checkpointing)
    int slot_layer;       // checkpointing: the layer whose internals the slot holds (-1: none)
    float *arena;
    size_t arena_floats;
    // saved per layer (index l * size); under checkpointing only xs is, the rest is one
    // slot (index 0) that the backward refills layer by layer from xs[l] (layer_fwd)
    float *xs;            // [(L+1), N, D] residual stream entering each layer; xs[L] enters the final norm
    float *xs_mid;        // [L, N, D] residual after attention
    float *rstd1, *rstd2; // [L, N]
    float *q, *k, *v;     // [L, N, Hq*d] / [L, N, Hkv*d] after bias, q/k-norm and RoPE
    float *q_pre, *k_pre; // [L, N, ...] before q/k-norm (Qwen3 only)
    float *rstd_q, *rstd_k; // [L, N*Hq] / [L, N*Hkv] (Qwen3 only)
    float *att;           // [L, N, Hq*d] attention output before o_proj
    float *lse;           // [L, N, Hq]
    float *o_out, *f_out; // [L, N, D] attention / MLP outputs before Gemma's post-norms
    float *rstd_po, *rstd_pf; // [L, N] their rstd
    float *gate, *up;     // [L, N, F]
    float *rstd_f;        // [N]
    float *xf;            // [N, D] final normalized hidden (before any temperature)
    float *xf_t;          // [N, D] xf / T, the lm-head's input when T != 1
    float *lm_lse;        // [N]
    float *entropy;       // [N] entropy saved for the backward
    double temperature;   // of the last lm-head forward (its input: xf, or xf_t when T != 1)
    // scratch (not saved)
    float *t_xn;          // [N, D]
    float *t_h;           // [N, F]
    float *d_x, *d_xn;    // [N, D]
    float *d_h, *d_gate, *d_up;  // [N, F]
    float *d_att, *d_q, *d_qpre; // [N, Hq*d]
    float *d_k, *d_v, *d_kpre;   // [N, Hkv*d]
    float *scratch;       // attention / lm-head scratch, sized by the batch's sequence layout
    size_t scratch_floats;
};

int model_add_param(model *m, const char *name, int ndim, int64_t d0, int64_t d1, int decay, size_t *off) {
    model_param *p = &m->params[m->nparams++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    p->offset = m->numel;
    p->decay = decay;
    p->trainable = 1;
    m->numel += p->numel;
    if (off) *off = p->offset;
    return 0;
}

static int create(model *m, const model_config *c, int with_weights, int mapped, tm_error *err);
int model_create(model *m, const model_config *c, tm_error *err) { return create(m, c, 1, 0, err); }
int model_create_mapped(model *m, const model_config *c, tm_error *err) { return create(m, c, 1, 1, err); }
int model_create_shape(model *m, const model_config *c, tm_error *err) { return create(m, c, 0, 0, err); }

static int create(model *m, const model_config *c, int with_weights, int mapped, tm_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->K = &kernels_cpu;
    m->file_dtype = ST_F32;
    int L = c->layers, D = c->hidden, qd = c->heads * c->head_dim, kvd = c->kv_heads * c->head_dim;
    m->params = calloc((size_t)L * 20 + 4 + (size_t)vision_param_count(c), sizeof *m->params);
    m->layer = calloc((size_t)L, sizeof *m->layer);
    m->inv_freq = malloc(sizeof(float) * (size_t)(c->head_dim / 2));
    if (c->sliding_window) m->inv_freq_local = malloc(sizeof(float) * (size_t)(c->head_dim / 2));
    if (!m->params || !m->layer || !m->inv_freq || (c->sliding_window && !m->inv_freq_local)) {
        model_free(m);
        return tm_fail(err, "out of memory");
    }
    config_rope_inv_freq(c, m->inv_freq);
    if (m->inv_freq_local) config_rope_inv_freq_local(c, m->inv_freq_local);
    char name[96];
    model_add_param(m, "model.embed_tokens.weight", 2, c->vocab, D, 1, &m->off_embed);
    for (int l = 0; l < L; l++) {
        layer_offsets *o = &m->layer[l];
        o->bq = o->bk = o->bv = o->bo = o->q_norm = o->k_norm = o->post_attn_norm = o->post_ff_norm = NONE;
#define P(field, suffix, nd, a, b, decay) \
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), model_add_param(m, name, nd, a, b, decay, &o->field)
        P(attn_norm, "input_layernorm.weight", 1, D, 1, 0);
        P(wq, "self_attn.q_proj.weight", 2, qd, D, 1);
        if (c->attn_bias) P(bq, "self_attn.q_proj.bias", 1, qd, 1, 0);
        P(wk, "self_attn.k_proj.weight", 2, kvd, D, 1);
        if (c->attn_bias) P(bk, "self_attn.k_proj.bias", 1, kvd, 1, 0);
        P(wv, "self_attn.v_proj.weight", 2, kvd, D, 1);
        if (c->attn_bias) P(bv, "self_attn.v_proj.bias", 1, kvd, 1, 0);
        P(wo, "self_attn.o_proj.weight", 2, D, qd, 1);
        if (c->o_bias) P(bo, "self_attn.o_proj.bias", 1, D, 1, 0);
        if (c->qk_norm) {
            P(q_norm, "self_attn.q_norm.weight", 1, c->head_dim, 1, 0);
            P(k_norm, "self_attn.k_norm.weight", 1, c->head_dim, 1, 0);
        }
        if (c->sandwich_norm) {
            P(post_attn_norm, "post_attention_layernorm.weight", 1, D, 1, 0);
            P(mlp_norm, "pre_feedforward_layernorm.weight", 1, D, 1, 0);
            P(post_ff_norm, "post_feedforward_layernorm.weight", 1, D, 1, 0);
        } else {
            P(mlp_norm, "post_attention_layernorm.weight", 1, D, 1, 0);
        }
        P(w_gate, "mlp.gate_proj.weight", 2, c->ffn, D, 1);
        P(w_up, "mlp.up_proj.weight", 2, c->ffn, D, 1);
        P(w_down, "mlp.down_proj.weight", 2, D, c->ffn, 1);
#undef P
    }
    model_add_param(m, "model.norm.weight", 1, D, 1, 0, &m->off_norm);
    m->off_score = NONE;
    if (c->num_labels) model_add_param(m, "score.weight", 2, c->num_labels, D, 1, &m->off_score);  // reward model: no lm-head
    else if (c->tie_embeddings) m->off_lm_head = m->off_embed;
    else model_add_param(m, "lm_head.weight", 2, c->vocab, D, 1, &m->off_lm_head);
    if (model_arch_is_vl(c->arch) && vision_create(m, err)) { model_free(m); return -1; }
    if (!with_weights) return 0;
    m->w = mapped ? model_w_map(m->numel, &m->w_map_bytes) : calloc(m->numel, sizeof(float));
    if (!m->w) {
        size_t n = m->numel;  // model_free clears it
        model_free(m);
        return tm_fail(err, "out of memory for the weights: %zu parameters (%d layers, hidden %d) need %.1f GiB as fp32", n, c->layers,
                       c->hidden, (double)n * 4 / (1 << 30));
    }
    return 0;
}

void model_random_values(const model *m, int i, rng *r, float *dst, size_t n) {
    int is_norm = strstr(m->params[i].name, "norm") != NULL || strstr(m->params[i].name, ".ln_q.") != NULL;  // ln_q: the VL merger's norm
    float one = m->cfg.norm_ofs ? 0.0f : 1.0f;  // the scale is weight + norm_ofs
    for (size_t j = 0; j < n; j++) dst[j] = is_norm ? one : 0.02f * rng_normal(r);
}

void model_init_random(model *m, uint64_t seed) {
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m->nparams; i++) model_random_values(m, i, &r, m->w + m->params[i].offset, m->params[i].numel);
}

const model_param *model_find_param(const model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

void model_free(model *m) {
    if (m->acts) { free(m->acts->arena); free(m->acts->scratch); free(m->acts); }
    free(m->params);
    free(m->layer);
    free(m->inv_freq);
    free(m->inv_freq_local);
    model_w_release(m);
    free(m->g);
    lora_free(m->lora);
    vision_free(m->vis);
    free(m->config_text);
    free(m->source_dir);
    memset(m, 0, sizeof *m);
}

// Gradients exist for the trainable parameters only, packed in parameter order (so a
// full fine-tune has goff == offset; under LoRA only the adapters and modules to save).
int model_enable_grad(model *m, tm_error *err) {
    if (m->g) return 0;
    m->gnumel = 0;
    for (int i = 0; i < m->nparams; i++) {
        model_param *p = &m->params[i];
        if (p->trainable && p->bf16) return tm_fail(err, "internal: %s is read in place (bf16) but trainable", p->name);
        p->goff = p->trainable ? m->gnumel : NONE;
        if (p->trainable) m->gnumel += p->numel;
    }
    m->g = calloc(m->gnumel ? m->gnumel : 1, sizeof(float));
    if (!m->g) return tm_fail(err, "out of memory for gradients (%zu floats)", m->gnumel);
    return 0;
}

void model_zero_grad(model *m) {
    if (m->g) memset(m->g, 0, m->gnumel * sizeof(float));
}

float *model_grad(const model *m, size_t off) {
    if (!m->g || off == NONE) return NULL;
    int lo = 0, hi = m->nparams - 1;  // parameters are in offset order: binary search
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (m->params[mid].offset <= off) lo = mid; else hi = mid - 1;
    }
    const model_param *p = &m->params[lo];
    return p->trainable ? m->g + p->goff + (off - p->offset) : NULL;
}

void model_set_checkpointing(model *m, int on) { m->checkpointing = on != 0; }

int model_reserve(model *m, int max_tokens, tm_error *err) {
    if (m->acts && m->acts->cap >= max_tokens && m->acts->ckpt == m->checkpointing) return 0;
    if (m->acts && m->acts->cap > max_tokens) max_tokens = m->acts->cap;  // a layout change keeps the capacity
    const model_config *c = &m->cfg;
    // L: layers of internals held; the residual stream xs always keeps all of them
    size_t N = (size_t)max_tokens, L = m->checkpointing ? 1 : (size_t)c->layers, D = (size_t)c->hidden, F = (size_t)c->ffn;
    size_t LX = (size_t)c->layers + 1;
    size_t qd = (size_t)c->heads * c->head_dim, kvd = (size_t)c->kv_heads * c->head_dim;
    size_t Hq = (size_t)c->heads, Hkv = (size_t)c->kv_heads;
    model_acts *a = m->acts ? m->acts : calloc(1, sizeof *a);
    if (!a) return tm_fail(err, "out of memory");
    free(a->arena);
    size_t sizes[] = {
        LX * N * D, L * N * D, L * N, L * N,                   // xs, xs_mid, rstd1, rstd2
        L * N * qd, L * N * kvd, L * N * kvd,                  // q k v
        c->qk_norm ? L * N * qd : 0, c->qk_norm ? L * N * kvd : 0,
        c->qk_norm ? L * N * Hq : 0, c->qk_norm ? L * N * Hkv : 0,
        L * N * qd, L * N * Hq, L * N * F, L * N * F,          // att lse gate up
        c->sandwich_norm ? L * N * D : 0, c->sandwich_norm ? L * N * D : 0,  // o_out f_out
        c->sandwich_norm ? L * N : 0, c->sandwich_norm ? L * N : 0,          // rstd_po rstd_pf
        N, N * D, N * D, N, N,                                 // rstd_f xf xf_t lm_lse entropy
        N * D, N * F, N * D, N * D, N * F, N * F, N * F,       // t_xn t_h d_x d_xn d_h d_gate d_up
        N * qd, N * qd, N * qd, N * kvd, N * kvd, N * kvd,     // d_att d_q d_qpre d_k d_v d_kpre
    };
    float **ptrs[] = {
        &a->xs, &a->xs_mid, &a->rstd1, &a->rstd2, &a->q, &a->k, &a->v, &a->q_pre, &a->k_pre, &a->rstd_q, &a->rstd_k,
        &a->att, &a->lse, &a->gate, &a->up, &a->o_out, &a->f_out, &a->rstd_po, &a->rstd_pf, &a->rstd_f, &a->xf, &a->xf_t, &a->lm_lse, &a->entropy,
        &a->t_xn, &a->t_h, &a->d_x, &a->d_xn, &a->d_h, &a->d_gate, &a->d_up,
        &a->d_att, &a->d_q, &a->d_qpre, &a->d_k, &a->d_v, &a->d_kpre,
    };
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += (sizes[i] + 15) & ~(size_t)15;  // 64-byte aligned slices
    a->arena = aligned_alloc(64, total * sizeof(float));
    if (!a->arena) { free(a->scratch); free(a); m->acts = NULL; return tm_fail(err, "out of memory for activations of %d tokens (%zu MiB)", max_tokens, total * 4 >> 20); }
    memset(a->arena, 0, total * sizeof(float));  // pre-fault the pages now, not in the first step
    float *p = a->arena;
    for (size_t i = 0; i < n; i++) {
        *ptrs[i] = sizes[i] ? p : NULL;
        p += (sizes[i] + 15) & ~(size_t)15;
    }
    a->arena_floats = total;
    a->cap = max_tokens;
    a->ckpt = m->checkpointing;
    a->slot_layer = -1;
    m->acts = a;
    return 0;
}

// The kernels' scratch depends on how the batch splits into sequences (attention pads
// each one to its tile size), so it is sized per batch; it only grows, so a run
// allocates it a few times at most, never per step once the largest layout was seen.
static int reserve_scratch(model *m, const model_batch *b, tm_error *err) {
    const model_config *c = &m->cfg;
    model_acts *a = m->acts;
    size_t att = m->K->attention_scratch_floats(b->cu_seqlens, b->n_seqs, c->heads, c->kv_heads, c->head_dim);
    size_t lm = model_lmhead_scratch_floats(m, b->n_tokens);
    size_t need = att > lm ? att : lm;
    if (need <= a->scratch_floats) return 0;
    free(a->scratch);
    a->scratch = aligned_alloc(64, ((need + 15) & ~(size_t)15) * sizeof(float));
    a->scratch_floats = a->scratch ? need : 0;
    if (!a->scratch) return tm_fail(err, "out of memory for kernel scratch (%zu MiB)", need * 4 >> 20);
    return 0;
}

size_t model_bytes(const model *m) {
    size_t b = (m->numel + (m->g ? m->gnumel : 0)) * sizeof(float);
    for (int i = 0; m->nbf16 && i < m->nparams; i++)  // read in place: the file's bf16, not fp32
        if (m->params[i].bf16) b -= m->params[i].numel * 2;
    if (m->acts) b += (m->acts->arena_floats + m->acts->scratch_floats) * sizeof(float);
    return b;
}

size_t model_activation_bytes(const model *m) { return m->acts ? m->acts->arena_floats * sizeof(float) : 0; }

int model_check_batch(const model *m, const model_batch *b, tm_error *err) {
    if (b->n_tokens <= 0 || b->n_seqs <= 0) return tm_fail(err, "empty batch");
    if (b->cu_seqlens[0] != 0 || b->cu_seqlens[b->n_seqs] != b->n_tokens)
        return tm_fail(err, "batch boundaries do not cover its %d tokens", b->n_tokens);
    for (int s = 0; s < b->n_seqs; s++)
        if (b->cu_seqlens[s + 1] <= b->cu_seqlens[s]) return tm_fail(err, "batch sequence %d is empty", s);
    for (int i = 0; i < b->n_tokens; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= m->cfg.vocab)
            return tm_fail(err, "token id %d at position %d is outside the vocabulary (%d)", b->tokens[i], i, m->cfg.vocab);
        if (b->targets[i] < -1 || b->targets[i] >= m->cfg.vocab)
            return tm_fail(err, "target id %d at position %d is outside the vocabulary (%d)", b->targets[i], i, m->cfg.vocab);
        if (b->pos[i] < 0) return tm_fail(err, "negative position id at %d", i);
    }
    return 0;
}

// Normalized input of a block: y = rmsnorm(x) with saved rstd (recomputation in the backward
// uses the saved rstd, so it is exactly the forward's value).
static void apply_saved_norm(float *y, const float *x, const float *rstd, const float *w, float wofs, int N, int D) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) y[(size_t)i * D + j] = x[(size_t)i * D + j] * rstd[i] * (w[j] + wofs);
}

float model_embed_scale(const model *m) {
    if (!m->cfg.embed_scale) return 1.0f;
    float s = sqrtf((float)m->cfg.hidden);
    // transformers: embed_scale.to(weight.dtype), so a bf16 Gemma multiplies by bf16(sqrt(D))
    if (m->file_dtype == ST_BF16) return st_bf16_to_f32(st_f32_to_bf16(s));
    if (m->file_dtype == ST_F16) return st_f16_to_f32(st_f32_to_f16(s));
    return s;
}

const float *model_layer_inv_freq(const model *m, int l) {
    return config_layer_window(&m->cfg, l) && m->inv_freq_local ? m->inv_freq_local : m->inv_freq;
}

float model_query_scale(const model *m) {
    const model_config *c = &m->cfg;
    if (!(c->attn_scalar > 0) || c->attn_scalar == (float)c->head_dim) return 1.0f;
    return (float)(sqrt((double)c->head_dim) / sqrt((double)c->attn_scalar));
}

static void scale_inplace(float *x, float s, long n) {
    if (s == 1.0f) return;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) x[i] *= s;
}

// Where layer l's internals live: its own slice, or the one slot under checkpointing.
static size_t slot(const model_acts *a, int l) { return a->ckpt ? 0 : (size_t)l; }

// Layer l's forward from the residual stream x = xs[l]. xnext receives xs[l + 1]; NULL is the
// backward's recomputation under checkpointing, which refills the slot with the same kernels
// on the same inputs (so bit for bit the forward's values) and skips what the backward does
// not read (the MLP's down projection unless Gemma's post-norm needs its output).
static void layer_fwd(model *m, const model_batch *b, int l, float *xnext) {
    const model_config *c = &m->cfg;
    const struct kernels *K = m->K;
    model_acts *a = m->acts;
    const int N = b->n_tokens, D = c->hidden, F = c->ffn, Hq = c->heads, Hkv = c->kv_heads, hd = c->head_dim;
    const int qd = Hq * hd, kvd = Hkv * hd;
    const size_t ND = (size_t)N * D, s = slot(a, l);
    const float *W = m->w;
    const float nofs = c->norm_ofs ? 1.0f : 0.0f, qs = model_query_scale(m);
    const layer_offsets *o = &m->layer[l];
    const float *x = a->xs + l * ND;
    float *xmid = a->xs_mid + s * ND;
    float *q = a->q + s * N * qd, *k = a->k + s * N * kvd, *v = a->v + s * N * kvd;
    float *att = a->att + s * N * qd, *lse = a->lse + s * N * Hq;
    float *gate = a->gate + s * N * F, *up = a->up + s * N * F;

    const float *inv_freq = model_layer_inv_freq(m, l);
    const int window = config_layer_window(c, l);
    K->rmsnorm_fwd(a->t_xn, a->rstd1 + s * N, x, W + o->attn_norm, nofs, N, D, c->rms_eps);
    if (c->qk_norm) {
        float *qp = a->q_pre + s * N * qd, *kp = a->k_pre + s * N * kvd;
        model_linear_fwd(m, qp, a->t_xn, W + o->wq, o->bq == NONE ? NULL : W + o->bq, N, D, qd);
        lora_fwd(m, l, LORA_Q, qp, a->t_xn, N, D, qd);
        model_linear_fwd(m, kp, a->t_xn, W + o->wk, o->bk == NONE ? NULL : W + o->bk, N, D, kvd);
        lora_fwd(m, l, LORA_K, kp, a->t_xn, N, D, kvd);
        K->rmsnorm_fwd(q, a->rstd_q + s * N * Hq, qp, W + o->q_norm, nofs, N * Hq, hd, c->rms_eps);
        K->rmsnorm_fwd(k, a->rstd_k + s * N * Hkv, kp, W + o->k_norm, nofs, N * Hkv, hd, c->rms_eps);
    } else {
        model_linear_fwd(m, q, a->t_xn, W + o->wq, o->bq == NONE ? NULL : W + o->bq, N, D, qd);
        lora_fwd(m, l, LORA_Q, q, a->t_xn, N, D, qd);
        model_linear_fwd(m, k, a->t_xn, W + o->wk, o->bk == NONE ? NULL : W + o->bk, N, D, kvd);
        lora_fwd(m, l, LORA_K, k, a->t_xn, N, D, kvd);
    }
    model_linear_fwd(m, v, a->t_xn, W + o->wv, o->bv == NONE ? NULL : W + o->bv, N, D, kvd);
    lora_fwd(m, l, LORA_V, v, a->t_xn, N, D, kvd);
    if (m->vis) {
        K->rope_angle_fwd(q, vision_lm_angles(m), N, Hq, hd);
        K->rope_angle_fwd(k, vision_lm_angles(m), N, Hkv, hd);
    } else {
        K->rope_fwd(q, b->pos, inv_freq, N, Hq, hd);
        K->rope_fwd(k, b->pos, inv_freq, N, Hkv, hd);
    }
    scale_inplace(q, qs, (long)N * qd);
    K->attention_fwd(att, lse, q, k, v, b->cu_seqlens, b->n_seqs, N, Hq, Hkv, hd, window, a->scratch);
    if (c->sandwich_norm) {  // Gemma: xmid = x + post_attention_layernorm(o_proj(att))
        float *oo = a->o_out + s * ND;
        model_linear_fwd(m, oo, att, W + o->wo, o->bo == NONE ? NULL : W + o->bo, N, qd, D);
        lora_fwd(m, l, LORA_O, oo, att, N, qd, D);
        K->rmsnorm_fwd(xmid, a->rstd_po + s * N, oo, W + o->post_attn_norm, nofs, N, D, c->rms_eps);
    } else {
        model_linear_fwd(m, xmid, att, W + o->wo, o->bo == NONE ? NULL : W + o->bo, N, qd, D);
        lora_fwd(m, l, LORA_O, xmid, att, N, qd, D);
    }
    K->add_inplace(xmid, x, (long)ND);

    K->rmsnorm_fwd(a->t_xn, a->rstd2 + s * N, xmid, W + o->mlp_norm, nofs, N, D, c->rms_eps);
    model_linear_fwd(m, gate, a->t_xn, W + o->w_gate, NULL, N, D, F);
    lora_fwd(m, l, LORA_GATE, gate, a->t_xn, N, D, F);
    model_linear_fwd(m, up, a->t_xn, W + o->w_up, NULL, N, D, F);
    lora_fwd(m, l, LORA_UP, up, a->t_xn, N, D, F);
    if (!xnext && !c->sandwich_norm) return;  // recomputation: the backward reads no more
    if (c->gelu_tanh) K->geglu_fwd(a->t_h, gate, up, (long)N * F);
    else K->swiglu_fwd(a->t_h, gate, up, (long)N * F);
    if (c->sandwich_norm) {  // Gemma: xnext = xmid + post_feedforward_layernorm(down(h))
        float *fo = a->f_out + s * ND;
        model_linear_fwd(m, fo, a->t_h, W + o->w_down, NULL, N, F, D);
        lora_fwd(m, l, LORA_DOWN, fo, a->t_h, N, F, D);
        if (!xnext) {  // recomputation: only rstd_pf is read (d_xn is free until the backward's first use)
            K->rmsnorm_fwd(a->d_xn, a->rstd_pf + s * N, fo, W + o->post_ff_norm, nofs, N, D, c->rms_eps);
            return;
        }
        K->rmsnorm_fwd(xnext, a->rstd_pf + s * N, fo, W + o->post_ff_norm, nofs, N, D, c->rms_eps);
    } else {
        model_linear_fwd(m, xnext, a->t_h, W + o->w_down, NULL, N, F, D);
        lora_fwd(m, l, LORA_DOWN, xnext, a->t_h, N, F, D);
    }
    K->add_inplace(xnext, xmid, (long)ND);
}

int model_forward_hidden(model *m, const model_batch *b, tm_error *err) {
    if (model_check_batch(m, b, err)) return -1;
    if (model_reserve(m, b->n_tokens, err) || reserve_scratch(m, b, err) || lora_begin_forward(m, b->n_tokens, err)) return -1;
    const model_config *c = &m->cfg;
    model_acts *a = m->acts;
    const int N = b->n_tokens, D = c->hidden;
    const size_t ND = (size_t)N * D;
    const float nofs = c->norm_ofs ? 1.0f : 0.0f;
    model_embedding_fwd(m, a->xs, b->tokens, m->w + m->off_embed, N, D);
    scale_inplace(a->xs, model_embed_scale(m), (long)ND);
    if (m->vis && vision_forward(m, b, a->xs, err)) return -1;  // Qwen2.5-VL: images over their pad tokens, M-RoPE
    for (int l = 0; l < c->layers; l++) layer_fwd(m, b, l, a->xs + (size_t)(l + 1) * ND);
    a->slot_layer = c->layers - 1;  // under checkpointing the slot holds the last layer, which the backward starts with
    m->K->rmsnorm_fwd(a->xf, a->rstd_f, a->xs + (size_t)c->layers * ND, m->w + m->off_norm, nofs, N, D, c->rms_eps);
    return 0;
}

int model_forward(model *m, const model_batch *b, float *logp, float *entropy, tm_error *err) {
    return model_forward_temp(m, b, 1.0, logp, entropy, err);
}

// z / T = W (h / T): the final hidden state divided by T (into xf_t; xf keeps h for other
// heads, e.g. PPO's value head) before the fused lm-head gives log-softmax(z / T) without
// ever holding the logits, and the kernel's backward, fed h / T, accumulates dL/dW = sum_t
// dL/d(z_t/T) (h_t / T)^T, which is the gradient through z / T; only dL/dh needs the extra
// 1 / T (model_backward_extra). T = 1 feeds xf itself.
static const float *lm_input(const model_acts *a) { return a->temperature != 1.0 ? a->xf_t : a->xf; }

int model_forward_temp(model *m, const model_batch *b, double temperature, float *logp, float *entropy, tm_error *err) {
    if (m->cfg.num_labels) return tm_fail(err, "this is a reward model (score head): it has no lm-head log-probs");
    if (!(temperature > 0) || !isfinite(temperature))
        return tm_fail(err, "the log-prob temperature must be a finite number > 0 (got %g)", temperature);
    if (model_forward_hidden(m, b, err)) return -1;
    model_acts *a = m->acts;
    a->temperature = temperature;
    if (temperature != 1.0) {
        const float invT = (float)(1.0 / temperature);
        const size_t n = (size_t)b->n_tokens * m->cfg.hidden;
        for (size_t i = 0; i < n; i++) a->xf_t[i] = a->xf[i] * invT;
    }
    model_lmhead_fwd(m, logp, entropy ? a->entropy : NULL, a->lm_lse, lm_input(a), m->w + m->off_lm_head, b->targets,
                             b->n_tokens, m->cfg.hidden, m->cfg.vocab, a->scratch);
    if (entropy) memcpy(entropy, a->entropy, sizeof(float) * (size_t)b->n_tokens);
    return 0;
}

// Reward models: one score per sequence from its last token's final hidden state
// (as transformers' *ForSequenceClassification with num_labels 1).
int model_reward_forward(model *m, const model_batch *b, float *rewards, tm_error *err) {
    if (!m->cfg.num_labels) return tm_fail(err, "not a reward model (no score head)");
    if (model_forward_hidden(m, b, err)) return -1;
    const int D = m->cfg.hidden;
    const float *w = m->w + m->off_score;
    for (int s = 0; s < b->n_seqs; s++) {
        const float *h = m->acts->xf + (size_t)(b->cu_seqlens[s + 1] - 1) * D;
        double r = 0;
        for (int j = 0; j < D; j++) r += (double)h[j] * w[j];
        rewards[s] = (float)r;
    }
    return 0;
}

const float *model_last_hidden(const model *m) { return m->acts ? m->acts->xf : NULL; }
const float *model_lm_head(const model *m) { return m->w + m->off_lm_head; }

void model_backward(model *m, const model_batch *b, const float *dlogp, const float *dentropy) {
    model_backward_extra(m, b, dlogp, dentropy, NULL);
}

void model_reward_backward(model *m, const model_batch *b, const float *drewards) {
    model_acts *a = m->acts;
    const int D = m->cfg.hidden;
    const float *w = m->w + m->off_score;
    float *gw = model_grad(m, m->off_score);  // NULL: frozen
    m->K->zero(a->d_xn, (long)b->n_tokens * D);
    for (int s = 0; s < b->n_seqs; s++) {
        size_t last = (size_t)(b->cu_seqlens[s + 1] - 1) * D;
        for (int j = 0; j < D; j++) {
            a->d_xn[last + j] = drewards[s] * w[j];
            if (gw) gw[j] += drewards[s] * a->xf[last + j];
        }
    }
    model_backward_hidden(m, b, a->d_xn);
}

// The lm-head's part (dL/d(h/T), times 1/T for dL/dh when T != 1: see model_forward_temp),
// then the other head's dL/dh added (it read h itself, before the division by T), then one
// pass through the trunk (PPO's value head on the policy's hidden states).
void model_backward_extra(model *m, const model_batch *b, const float *dlogp, const float *dentropy, const float *dxf_extra) {
    model_acts *a = m->acts;
    const size_t n = (size_t)b->n_tokens * m->cfg.hidden;
    m->K->zero(a->d_xn, (long)n);
    model_lmhead_bwd(m, a->d_xn, model_grad(m, m->off_lm_head), dlogp, dentropy, lm_input(a), m->w + m->off_lm_head, b->targets,
                             a->lm_lse, dentropy ? a->entropy : NULL, b->n_tokens, m->cfg.hidden, m->cfg.vocab, a->scratch);
    if (a->temperature != 1.0) {
        const float invT = (float)(1.0 / a->temperature);
        for (size_t i = 0; i < n; i++) a->d_xn[i] *= invT;
    }
    if (dxf_extra) m->K->add_inplace(a->d_xn, dxf_extra, (long)n);
    model_backward_hidden(m, b, a->d_xn);
}

void model_backward_hidden(model *m, const model_batch *b, const float *dxf) {
    const model_config *c = &m->cfg;
    const struct kernels *K = m->K;
    model_acts *a = m->acts;
    const int N = b->n_tokens, D = c->hidden, F = c->ffn, Hq = c->heads, Hkv = c->kv_heads, hd = c->head_dim;
    const int qd = Hq * hd, kvd = Hkv * hd;
    const size_t ND = (size_t)N * D;
    const float *W = m->w;
#define G_(off) model_grad(m, off)  // NULL for a frozen (or absent) parameter
    const float nofs = c->norm_ofs ? 1.0f : 0.0f, qs = model_query_scale(m);

    // final norm: d_x = d(residual stream entering it); dxf is consumed before d_xn is reused
    K->zero(a->d_x, (long)ND);
    K->rmsnorm_bwd(a->d_x, G_(m->off_norm), dxf, a->xs + (size_t)c->layers * ND, W + m->off_norm, nofs, a->rstd_f, N, D);

    for (int l = c->layers - 1; l >= 0; l--) {
        if (a->ckpt && a->slot_layer != l) layer_fwd(m, b, l, NULL);  // refill the slot from xs[l]
        if (a->ckpt) a->slot_layer = l;
        const size_t s = slot(a, l);
        const layer_offsets *o = &m->layer[l];
        const float *x = a->xs + l * ND, *xmid = a->xs_mid + s * ND;
        const float *q = a->q + s * N * qd, *k = a->k + s * N * kvd, *v = a->v + s * N * kvd;
        const float *att = a->att + s * N * qd, *lse = a->lse + s * N * Hq;
        const float *gate = a->gate + s * N * F, *up = a->up + s * N * F;
        const float *rstd1 = a->rstd1 + s * N, *rstd2 = a->rstd2 + s * N;

        const float *inv_freq = model_layer_inv_freq(m, l);
        // The branch outputs' gradients: d_x itself, or (Gemma) through the post-norm
        // into d_xn, which is free until the branch's input gradient is formed.
        const float *dbranch = a->d_x;

        // MLP block: xnext = xmid + down(act(gate(xn2)) * up(xn2)) [post-normed in Gemma]
        if (c->sandwich_norm) {
            K->zero(a->d_xn, (long)ND);
            K->rmsnorm_bwd(a->d_xn, G_(o->post_ff_norm), a->d_x, a->f_out + s * ND, W + o->post_ff_norm, nofs,
                           a->rstd_pf + s * N, N, D);
            dbranch = a->d_xn;
        }
        apply_saved_norm(a->t_xn, xmid, rstd2, W + o->mlp_norm, nofs, N, D);
        if (c->gelu_tanh) K->geglu_fwd(a->t_h, gate, up, (long)N * F);
        else K->swiglu_fwd(a->t_h, gate, up, (long)N * F);
        K->zero(a->d_h, (long)N * F);
        model_linear_bwd(m, a->d_h, G_(o->w_down), NULL, dbranch, a->t_h, W + o->w_down, N, F, D);
        lora_bwd(m, l, LORA_DOWN, a->d_h, dbranch, a->t_h, N, F, D);
        K->zero(a->d_gate, (long)N * F);
        K->zero(a->d_up, (long)N * F);
        if (c->gelu_tanh) K->geglu_bwd(a->d_gate, a->d_up, a->d_h, gate, up, (long)N * F);
        else K->swiglu_bwd(a->d_gate, a->d_up, a->d_h, gate, up, (long)N * F);
        K->zero(a->d_xn, (long)ND);
        model_linear_bwd(m, a->d_xn, G_(o->w_gate), NULL, a->d_gate, a->t_xn, W + o->w_gate, N, D, F);
        lora_bwd(m, l, LORA_GATE, a->d_xn, a->d_gate, a->t_xn, N, D, F);
        model_linear_bwd(m, a->d_xn, G_(o->w_up), NULL, a->d_up, a->t_xn, W + o->w_up, N, D, F);
        lora_bwd(m, l, LORA_UP, a->d_xn, a->d_up, a->t_xn, N, D, F);
        K->rmsnorm_bwd(a->d_x, G_(o->mlp_norm), a->d_xn, xmid, W + o->mlp_norm, nofs, rstd2, N, D);

        // attention block: xmid = x + o_proj(attention(rope(q), rope(k), v)) [post-normed in Gemma]
        dbranch = a->d_x;
        if (c->sandwich_norm) {
            K->zero(a->d_xn, (long)ND);
            K->rmsnorm_bwd(a->d_xn, G_(o->post_attn_norm), a->d_x, a->o_out + s * ND, W + o->post_attn_norm, nofs,
                           a->rstd_po + s * N, N, D);
            dbranch = a->d_xn;
        }
        K->zero(a->d_att, (long)N * qd);
        model_linear_bwd(m, a->d_att, G_(o->wo), G_(o->bo), dbranch, att, W + o->wo, N, qd, D);
        lora_bwd(m, l, LORA_O, a->d_att, dbranch, att, N, qd, D);
        K->zero(a->d_q, (long)N * qd);
        K->zero(a->d_k, (long)N * kvd);
        K->zero(a->d_v, (long)N * kvd);
        K->attention_bwd(a->d_q, a->d_k, a->d_v, a->d_att, q, k, v, att, lse, b->cu_seqlens, b->n_seqs, N, Hq, Hkv, hd,
                         config_layer_window(c, l), a->scratch);
        scale_inplace(a->d_q, qs, (long)N * qd);
        if (m->vis) {
            K->rope_angle_bwd(a->d_q, vision_lm_angles(m), N, Hq, hd);
            K->rope_angle_bwd(a->d_k, vision_lm_angles(m), N, Hkv, hd);
        } else {
            K->rope_bwd(a->d_q, b->pos, inv_freq, N, Hq, hd);
            K->rope_bwd(a->d_k, b->pos, inv_freq, N, Hkv, hd);
        }
        float *dq = a->d_q, *dk = a->d_k;
        if (c->qk_norm) {
            K->zero(a->d_qpre, (long)N * qd);
            K->zero(a->d_kpre, (long)N * kvd);
            K->rmsnorm_bwd(a->d_qpre, G_(o->q_norm), a->d_q, a->q_pre + s * N * qd, W + o->q_norm, nofs,
                           a->rstd_q + s * N * Hq, N * Hq, hd);
            K->rmsnorm_bwd(a->d_kpre, G_(o->k_norm), a->d_k, a->k_pre + s * N * kvd, W + o->k_norm, nofs,
                           a->rstd_k + s * N * Hkv, N * Hkv, hd);
            dq = a->d_qpre;
            dk = a->d_kpre;
        }
        apply_saved_norm(a->t_xn, x, rstd1, W + o->attn_norm, nofs, N, D);
        K->zero(a->d_xn, (long)ND);
        model_linear_bwd(m, a->d_xn, G_(o->wq), G_(o->bq), dq, a->t_xn, W + o->wq, N, D, qd);
        lora_bwd(m, l, LORA_Q, a->d_xn, dq, a->t_xn, N, D, qd);
        model_linear_bwd(m, a->d_xn, G_(o->wk), G_(o->bk), dk, a->t_xn, W + o->wk, N, D, kvd);
        lora_bwd(m, l, LORA_K, a->d_xn, dk, a->t_xn, N, D, kvd);
        model_linear_bwd(m, a->d_xn, G_(o->wv), G_(o->bv), a->d_v, a->t_xn, W + o->wv, N, D, kvd);
        lora_bwd(m, l, LORA_V, a->d_xn, a->d_v, a->t_xn, N, D, kvd);
        K->rmsnorm_bwd(a->d_x, G_(o->attn_norm), a->d_xn, x, W + o->attn_norm, nofs, rstd1, N, D);
    }
    if (m->vis) vision_backward(m, b, a->d_x);  // the image rows' gradient goes to the tower, not the embedding
    if (G_(m->off_embed)) {
        scale_inplace(a->d_x, model_embed_scale(m), (long)ND);
        K->embedding_bwd(G_(m->off_embed), a->d_x, b->tokens, N, D);
    }
#undef G_
}
