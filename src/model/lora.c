// LoRA adapters: the math on plain arrays, attaching to a model, merging (see lora.h).
#include "model/lora.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"
#include "model/model.h"

#define NONE SIZE_MAX

static const char *module_names[LORA_NMOD] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
static const char *module_parent[LORA_NMOD] = {"self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp"};

const char *lora_module_name(lora_module t) { return module_names[t]; }

void lora_config_default(lora_config *c) {
    memset(c, 0, sizeof *c);
    c->r = 16;
    c->alpha = 32;
    c->dropout = 0;
    c->targets = 1u << LORA_Q | 1u << LORA_V;  // PEFT's default for llama / qwen2 / qwen3
}

int lora_parse_targets(lora_config *c, const char *spec, tm_error *err) {
    if (!spec || !*spec) return tm_fail(err, "--lora-target-modules is empty");
    if (!strcmp(spec, "all-linear")) {
        c->targets = (1u << LORA_NMOD) - 1;
        return 0;
    }
    unsigned t = 0;
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        int found = -1;
        for (int k = 0; k < LORA_NMOD; k++)
            if (strlen(module_names[k]) == n && !strncmp(p, module_names[k], n)) found = k;
        if (found < 0) {
            if (n == 7 && !strncmp(p, "lm_head", 7))
                return tm_fail(err, "--lora-target-modules: lm_head is not supported as a LoRA target (use --modules-to-save lm_head)");
            return tm_fail(err, "--lora-target-modules: unknown module \"%.*s\" (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear)",
                           (int)n, p);
        }
        t |= 1u << found;
        if (!e) break;
        p = e + 1;
    }
    if (!t) return tm_fail(err, "--lora-target-modules names no module");
    c->targets = t;
    return 0;
}

int lora_config_check(const lora_config *c, tm_error *err) {
    if (!(c->dropout >= 0 && c->dropout < 1)) return tm_fail(err, "--lora-dropout must be in [0, 1) (got %g)", c->dropout);
    if (c->r < 1 || c->r > 4096) return tm_fail(err, "--lora-r must be in [1, 4096] (got %d)", c->r);
    if (!(c->alpha > 0) || !isfinite(c->alpha)) return tm_fail(err, "--lora-alpha must be positive (got %g)", c->alpha);
    if (!c->targets) return tm_fail(err, "--lora-target-modules names no module");
    return 0;
}

double lora_scale(const lora_config *c) { return c->use_rslora ? c->alpha / sqrt((double)c->r) : c->alpha / c->r; }

// ---- math ----

void lora_linear_fwd(const struct kernels *K, float *y, const float *x, const float *A, const float *B, int N, int in,
                     int out, int r, float s, float *u) {
    K->sgemm(0, 1, N, r, in, 1.0f, x, in, A, in, 0.0f, u, r);      // u = x A^T
    K->sgemm(0, 1, N, out, r, s, u, r, B, r, 1.0f, y, out);         // y += s u B^T
}

void lora_linear_bwd(const struct kernels *K, float *dx, float *dA, float *dB, const float *dy, const float *x,
                     const float *A, const float *B, int N, int in, int out, int r, float s, float *u, float *du) {
    K->sgemm(0, 1, N, r, in, 1.0f, x, in, A, in, 0.0f, u, r);      // u = x A^T (recomputed)
    K->sgemm(0, 0, N, r, out, s, dy, out, B, r, 0.0f, du, r);      // du = s dy B
    if (dB) K->sgemm(1, 0, out, r, N, s, dy, out, u, r, 1.0f, dB, r);  // dB += s dy^T u
    if (dA) K->sgemm(1, 0, r, in, N, 1.0f, du, r, x, in, 1.0f, dA, in); // dA += du^T x
    if (dx) K->sgemm(0, 0, N, in, r, 1.0f, du, r, A, in, 1.0f, dx, in); // dx += du A
}

void lora_init_a(float *A, int r, int in, uint64_t seed) {
    rng g;
    rng_seed(&g, seed);
    double bound = 1.0 / sqrt((double)in);  // kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
    for (size_t i = 0; i < (size_t)r * in; i++) A[i] = (float)((2.0 * rng_double(&g) - 1.0) * bound);
}

// ---- on a model ----

static void module_dims(const model *m, lora_module t, int *in, int *out) {
    const model_config *c = &m->cfg;
    int D = c->hidden, F = c->ffn, qd = c->heads * c->head_dim, kvd = c->kv_heads * c->head_dim;
    switch (t) {
    case LORA_Q: *in = D, *out = qd; break;
    case LORA_K: case LORA_V: *in = D, *out = kvd; break;
    case LORA_O: *in = qd, *out = D; break;
    case LORA_GATE: case LORA_UP: *in = D, *out = F; break;
    default: *in = F, *out = D; break;
    }
}

// Is HF parameter `name` inside one of the comma-separated modules (e.g. "lm_head",
// "embed_tokens", "score")? PEFT matches modules_to_save by the module name's end.
static int in_modules_to_save(const char *list, const char *name) {
    char mod[96];
    snprintf(mod, sizeof mod, "%s", name);
    char *dot = strrchr(mod, '.');  // drop ".weight" / ".bias"
    if (dot) *dot = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        size_t ml = strlen(mod);
        if (n && ml >= n && !strncmp(mod + ml - n, p, n) && (ml == n || mod[ml - n - 1] == '.')) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

void lora_free(lora_set *l) {
    if (!l) return;
    free(l->xd);
    free(l->dxd);
    free(l->offA);
    free(l->offB);
    free(l->u);
    free(l->du);
    free(l);
}

int model_lora_attach(model *m, const lora_config *c, uint64_t seed, tm_error *err) {
    if (m->lora) return tm_fail(err, "the model already has LoRA adapters");
    if (m->g) return tm_fail(err, "internal: LoRA must be attached before gradients are enabled");
    if (lora_config_check(c, err)) return -1;
    int L = m->cfg.layers, nt = 0;
    for (int t = 0; t < LORA_NMOD; t++) nt += (c->targets >> t) & 1;
    lora_set *l = calloc(1, sizeof *l);
    model_param *np = realloc(m->params, sizeof *np * (size_t)(m->nparams + 2 * L * nt));
    if (np) m->params = np;
    if (!l || !np || !(l->offA = malloc(sizeof(size_t) * (size_t)L * LORA_NMOD)) || !(l->offB = malloc(sizeof(size_t) * (size_t)L * LORA_NMOD))) {
        lora_free(l);
        return tm_fail(err, "out of memory");
    }
    l->cfg = *c;
    l->seed = seed;
    l->scale = (float)lora_scale(c);
    l->enabled = 1;
    l->layers = L;
    // freeze the base, except the modules to save (each must name a module of this model)
    int base_params = m->nparams;
    for (int i = 0; i < base_params; i++) m->params[i].trainable = in_modules_to_save(c->modules_to_save, m->params[i].name);
    for (const char *p = c->modules_to_save; *p;) {
        const char *e = strchr(p, ',');
        char one[96];
        snprintf(one, sizeof one, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        int found = 0;
        for (int i = 0; i < base_params && !found; i++) found = in_modules_to_save(one, m->params[i].name);
        if (*one && !found) {
            for (int i = 0; i < base_params; i++) m->params[i].trainable = 1;
            lora_free(l);
            return tm_fail(err, "--modules-to-save: this model has no module \"%s\"%s", one,
                           !strcmp(one, "lm_head") && m->cfg.tie_embeddings ? " (its lm-head is tied to embed_tokens)" : "");
        }
        if (!e) break;
        p = e + 1;
    }
    size_t base_numel = m->numel;
    for (int li = 0; li < L; li++)
        for (int t = 0; t < LORA_NMOD; t++) {
            size_t k = (size_t)li * LORA_NMOD + t;
            l->offA[k] = l->offB[k] = NONE;
            if (!((c->targets >> t) & 1)) continue;
            int in, out;
            module_dims(m, t, &in, &out);
            for (int ab = 0; ab < 2; ab++) {
                model_param *p = &m->params[m->nparams++];
                memset(p, 0, sizeof *p);
                snprintf(p->name, sizeof p->name, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", li, module_parent[t],
                         module_names[t], ab ? 'B' : 'A');
                p->ndim = 2;
                p->shape[0] = ab ? out : c->r;
                p->shape[1] = ab ? c->r : in;
                p->numel = (size_t)p->shape[0] * (size_t)p->shape[1];
                p->offset = m->numel;
                p->decay = 1;  // torch's AdamW decays every parameter of a group; TRL puts lora weights in the decay group
                p->trainable = 1;
                p->adapter = 1;
                m->numel += p->numel;
                (ab ? l->offB : l->offA)[k] = p->offset;
            }
        }
    // the modules to save of a base read in place (bf16) are trained: fp32 copies for them
    int bad = model_w_resize(m, m->numel, err);
    for (int i = 0; i < base_params && !bad; i++)
        if (m->params[i].trainable) bad = model_materialize(m, i, err);
    if (bad) {
        m->nparams = base_params;
        m->numel = base_numel;
        for (int i = 0; i < base_params; i++) m->params[i].trainable = 1;
        lora_free(l);
        return tm_fail_prefix(err, "LoRA adapters");
    }
    // PEFT init: A Kaiming-uniform (one stream per tensor, from seed), B zero
    for (int i = base_params; i < m->nparams; i++) {
        model_param *p = &m->params[i];
        if (strstr(p->name, ".lora_A.")) lora_init_a(m->w + p->offset, (int)p->shape[0], (int)p->shape[1], seed * 1000003u + (uint64_t)i);
        else memset(m->w + p->offset, 0, sizeof(float) * p->numel);
    }
    m->lora = l;
    return 0;
}

int model_lora_enable(model *m, int on) {
    if (!m->lora) return 0;
    int was = m->lora->enabled;
    m->lora->enabled = on;
    return was;
}

int model_lora_merge(model *m, tm_error *err) {
    lora_set *l = m->lora;
    if (!l) return 0;
    if (m->g) return tm_fail(err, "internal: cannot merge LoRA adapters into a model being trained");
    for (int i = 0; i < m->nparams; i++)  // a base read in place (bf16) becomes fp32 for the merge
        if (model_materialize(m, i, err)) return -1;
    for (int li = 0; li < l->layers; li++)
        for (int t = 0; t < LORA_NMOD; t++) {
            size_t k = (size_t)li * LORA_NMOD + t;
            if (l->offA[k] == NONE) continue;
            const layer_offsets *o = &m->layer[li];
            size_t w[LORA_NMOD] = {o->wq, o->wk, o->wv, o->wo, o->w_gate, o->w_up, o->w_down};
            int in, out;
            module_dims(m, t, &in, &out);
            // W[out, in] += s B[out, r] A[r, in], as PEFT's get_delta_weight
            m->K->sgemm(0, 0, out, in, l->cfg.r, l->scale, m->w + l->offB[k], l->cfg.r, m->w + l->offA[k], in, 1.0f,
                        m->w + w[t], in);
        }
    // the adapter tensors are the last parameters: drop them
    int n = 0;
    size_t numel = 0;
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].adapter) {
            m->params[n++] = m->params[i];
            if (m->params[i].offset + m->params[i].numel > numel) numel = m->params[i].offset + m->params[i].numel;
        }
    m->nparams = n;
    m->numel = numel;
    for (int i = 0; i < n; i++) m->params[i].trainable = 1;
    lora_free(l);
    m->lora = NULL;
    return 0;
}

int lora_reserve(model *m, int n, tm_error *err) {
    lora_set *l = m->lora;
    if (!l) return 0;
    l->drop_active = 0;
    if (l->cap >= n) return 0;
    const model_config *c = &m->cfg;
    size_t wide = (size_t)c->hidden;
    if ((size_t)c->ffn > wide) wide = (size_t)c->ffn;
    if ((size_t)c->heads * c->head_dim > wide) wide = (size_t)c->heads * c->head_dim;
    size_t nd = l->cfg.dropout > 0 ? (size_t)n * wide : 0;
    free(l->u), free(l->du), free(l->xd), free(l->dxd);
    l->xd = l->dxd = NULL;
    l->u = malloc(sizeof(float) * (size_t)n * l->cfg.r);
    l->du = malloc(sizeof(float) * (size_t)n * l->cfg.r);
    if (nd) l->xd = malloc(sizeof(float) * nd), l->dxd = malloc(sizeof(float) * nd);
    l->cap = l->u && l->du && (!nd || (l->xd && l->dxd)) ? n : 0;
    if (!l->cap) return tm_fail(err, "out of memory for LoRA scratch (%d tokens)", n);
    return 0;
}

int lora_begin_forward(model *m, int n, tm_error *err) {
    lora_set *l = m->lora;
    if (!l) return 0;
    int armed = l->drop_armed && l->cfg.dropout > 0;
    uint64_t key = l->drop_key_next;
    l->drop_armed = 0;
    if (lora_reserve(m, n, err)) return -1;
    l->drop_active = armed;
    l->drop_key = key;
    return 0;
}

void model_lora_dropout_next(model *m, uint64_t key) {
    if (!m->lora) return;
    m->lora->drop_armed = 1;
    m->lora->drop_key_next = key;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t lora_dropout_stream(uint64_t seed, uint64_t key, int layer, int t) {
    return mix64(mix64(mix64(seed) ^ key) ^ ((uint64_t)layer * LORA_NMOD + (uint64_t)t));
}

int lora_dropout_keep(uint64_t stream, uint64_t idx, double p) {
    return (double)(mix64(stream ^ mix64(idx)) >> 11) * 0x1.0p-53 >= p;
}

// xd = m ∘ x / (1 - p) for the projection's input [N, in]
static void dropout_apply(float *xd, const float *x, uint64_t stream, double p, int N, int in) {
    const float keep_scale = (float)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < in; i++) {
            size_t k = (size_t)n * in + i;
            xd[k] = lora_dropout_keep(stream, k, p) ? x[k] * keep_scale : 0.0f;
        }
}

void lora_fwd(model *m, int layer, lora_module t, float *y, const float *x, int N, int in, int out) {
    lora_set *l = m->lora;
    size_t k = (size_t)layer * LORA_NMOD + t;
    if (!l || !l->enabled || l->offA[k] == NONE) return;
    if (l->drop_active) {
        dropout_apply(l->xd, x, lora_dropout_stream(l->seed, l->drop_key, layer, t), l->cfg.dropout, N, in);
        x = l->xd;
    }
    lora_linear_fwd(m->K, y, x, m->w + l->offA[k], m->w + l->offB[k], N, in, out, l->cfg.r, l->scale, l->u);
}

void lora_bwd(model *m, int layer, lora_module t, float *dx, const float *dy, const float *x, int N, int in, int out) {
    lora_set *l = m->lora;
    size_t k = (size_t)layer * LORA_NMOD + t;
    if (!l || !l->enabled || l->offA[k] == NONE) return;
    if (!l->drop_active) {
        lora_linear_bwd(m->K, dx, model_grad(m, l->offA[k]), model_grad(m, l->offB[k]), dy, x, m->w + l->offA[k],
                        m->w + l->offB[k], N, in, out, l->cfg.r, l->scale, l->u, l->du);
        return;
    }
    // the forward's mask regenerated: the adapter saw xd = m ∘ x / (1 - p), and
    // dL/dx = m ∘ dL/dxd / (1 - p)
    uint64_t stream = lora_dropout_stream(l->seed, l->drop_key, layer, t);
    double p = l->cfg.dropout;
    dropout_apply(l->xd, x, stream, p, N, in);
    memset(l->dxd, 0, sizeof(float) * (size_t)N * in);
    lora_linear_bwd(m->K, dx ? l->dxd : NULL, model_grad(m, l->offA[k]), model_grad(m, l->offB[k]), dy, l->xd,
                    m->w + l->offA[k], m->w + l->offB[k], N, in, out, l->cfg.r, l->scale, l->u, l->du);
    if (!dx) return;
    const float keep_scale = (float)(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < in; i++) {
            size_t e = (size_t)n * in + i;
            if (lora_dropout_keep(stream, e, p)) dx[e] += l->dxd[e] * keep_scale;
        }
}
