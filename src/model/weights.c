// model/weights.c: where the weights live. Normally every parameter is fp32 in m->w.
// Under LoRA with a bf16 checkpoint (model_load_frozen), the frozen linear projections
// are read in place instead: model_param.bf16 points into the safetensors file's
// read-only mapping (kept open in m->maps for the model's life) and the bf16 kernels use
// it directly, so no fp32 copy exists. m->w keeps its layout (offsets stay the identity
// of a parameter everywhere) but is an anonymous MAP_NORESERVE mapping whose pages
// under an in-place parameter are never touched, so they cost no memory, and are made
// PROT_NONE, so that code reading such a weight as fp32 by mistake faults at once
// instead of computing with zeros.
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "model/model.h"

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

float *model_w_map(size_t numel, size_t *bytes) {
    size_t ps = page_size(), b = (numel * sizeof(float) + ps - 1) / ps * ps;
    if (!b) b = ps;
    void *p = mmap(NULL, b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    *bytes = b;
    return p;
}

void model_w_release(model *m) {
    if (m->w_map_bytes) munmap(m->w, m->w_map_bytes);
    else free(m->w);
    for (int i = 0; i < m->nmaps; i++) st_close(&m->maps[i]);
    free(m->maps);
    m->w = NULL, m->maps = NULL, m->nmaps = 0, m->w_map_bytes = 0;
    free(m->w16);
    m->w16 = NULL;
}

// The pages of m->w lying entirely under parameter p (those it shares with a neighbour stay as they are).
static void protect(model *m, const model_param *p, int prot) {
    if (!m->w_map_bytes) return;
    size_t ps = page_size();
    uintptr_t lo = (uintptr_t)(m->w + p->offset), hi = (uintptr_t)(m->w + p->offset + p->numel);
    lo = (lo + ps - 1) / ps * ps;
    hi = hi / ps * ps;
    if (hi > lo) mprotect((void *)lo, hi - lo, prot);
}

void model_guard_inplace(model *m) {
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].bf16) protect(m, &m->params[i], PROT_NONE);
}

int model_materialize(model *m, int i, tm_error *err) {
    model_param *p = &m->params[i];
    if (!p->bf16) return 0;
    if (m->w_map_bytes) {  // every page it touches readable and writable again (the shared ones already are)
        size_t ps = page_size();
        uintptr_t lo = (uintptr_t)(m->w + p->offset) / ps * ps, hi = (uintptr_t)(m->w + p->offset + p->numel);
        hi = (hi + ps - 1) / ps * ps;
        if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE)) return tm_fail(err, "%s: cannot map fp32 memory for it", p->name);
    }
    float *w = m->w + p->offset;
    for (size_t j = 0; j < p->numel; j++) w[j] = st_bf16_to_f32(p->bf16[j]);
    p->bf16 = NULL;
    m->nbf16--;
    return 0;
}

int model_w_resize(model *m, size_t numel, tm_error *err) {
    // the bf16 copy has the old size: dropped, model_bf16_enable makes it again
    free(m->w16);
    m->w16 = NULL;
    if (!m->w_map_bytes) {
        float *nw = realloc(m->w, sizeof(float) * (numel ? numel : 1));
        if (!nw) return tm_fail(err, "out of memory for %zu weights", numel);
        m->w = nw;
        return 0;
    }
    // a fresh mapping (the guards split the old one, which mremap cannot move), the fp32
    // parameters copied over, the in-place ones guarded again
    size_t bytes;
    float *nw = model_w_map(numel, &bytes);
    if (!nw) return tm_fail(err, "out of address space for %zu weights", numel);
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        if (!p->bf16 && p->offset + p->numel <= m->w_map_bytes / sizeof(float) && p->offset + p->numel <= numel)
            memcpy(nw + p->offset, m->w + p->offset, sizeof(float) * p->numel);
    }
    munmap(m->w, m->w_map_bytes);
    m->w = nw;
    m->w_map_bytes = bytes;
    model_guard_inplace(m);
    return 0;
}

const uint16_t *model_weight_bf16(const model *m, size_t off) {
    if (!m->nbf16) return NULL;
    int lo = 0, hi = m->nparams - 1;  // parameters are in offset order
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (m->params[mid].offset <= off) lo = mid; else hi = mid - 1;
    }
    return m->params[lo].offset == off ? m->params[lo].bf16 : NULL;
}

int model_bf16_enable(model *m, tm_error *err) {
    if (!m->w16) {
        // untouched pages (those of weights read in place) cost no memory
        m->w16 = malloc(sizeof(uint16_t) * (m->numel ? m->numel : 1));
        if (!m->w16) return tm_fail(err, "--bf16: out of memory for the bf16 copy of %zu weights", m->numel);
    }
    model_bf16_refresh(m);
    m->K->bb16_report();
    return 0;
}

void model_bf16_refresh(model *m) {
    if (!m->w16) return;
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        if (p->bf16 || p->ndim != 2) continue;  // read in place already; norms and biases stay fp32
        const float *src = m->w + p->offset;
        uint16_t *dst = m->w16 + p->offset;
        long n = (long)p->numel;
        #pragma omp parallel for schedule(static) if (n > 1 << 16)
        for (long j = 0; j < n; j++) dst[j] = st_f32_to_bf16(src[j]);
    }
}

// --bf16: the linear layers run in bf16 x bf16 (W the copy, or the file's bf16 when read in place)
void model_linear_fwd(const model *m, float *y, const float *x, const float *W, const float *b, int N, int in, int out) {
    const uint16_t *h = model_weight_bf16(m, (size_t)(W - m->w));
    if (m->w16) m->K->linear_bb16_fwd(y, x, h ? h : m->w16 + (W - m->w), b, N, in, out);
    else if (h) m->K->linear_bf16_fwd(y, x, h, b, N, in, out);
    else m->K->linear_fwd(y, x, W, b, N, in, out);
}

void model_linear_bwd(const model *m, float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                      int N, int in, int out) {
    const uint16_t *h = model_weight_bf16(m, (size_t)(W - m->w));
    if (m->w16) {
        m->K->linear_bb16_bwd(dx, dW, db, dy, x, h ? h : m->w16 + (W - m->w), N, in, out);
        return;
    }
    if (!h) {
        m->K->linear_bwd(dx, dW, db, dy, x, W, N, in, out);
        return;
    }
    // frozen: dW is NULL (model_grad of a frozen parameter; model_enable_grad refuses a
    // trainable in-place one)
    if (dx) m->K->linear_bf16_bwd(dx, dy, h, N, in, out);
    if (db) m->K->linear_bwd(NULL, NULL, db, dy, x, NULL, N, in, out);
}

void model_embedding_fwd(const model *m, float *y, const int *tok, const float *E, int N, int D) {
    const uint16_t *h = model_weight_bf16(m, (size_t)(E - m->w));
    if (h) m->K->embedding_bf16_fwd(y, tok, h, N, D);
    else m->K->embedding_fwd(y, tok, E, N, D);
}

// The fused lm-head on the weight at W (m->w + m->off_lm_head): bf16 in place or fp32.
size_t model_lmhead_scratch_floats(const model *m, int N) {
    const struct kernels *K = m->K;
    return model_weight_bf16(m, m->off_lm_head) ? K->lmhead_bf16_scratch_floats(N, m->cfg.hidden, m->cfg.vocab)
                                                : K->lmhead_scratch_floats(N, m->cfg.hidden, m->cfg.vocab);
}

void model_lmhead_fwd(const model *m, float *logp, float *entropy, float *lse, const float *h, const float *W,
                      const int *targets, int N, int D, int V, float *scratch) {
    const uint16_t *w = model_weight_bf16(m, (size_t)(W - m->w));
    if (w) m->K->lmhead_bf16_logprob_fwd(logp, entropy, lse, h, w, targets, N, D, V, scratch);
    else m->K->lmhead_logprob_fwd(logp, entropy, lse, h, W, targets, N, D, V, scratch);
}

void model_lmhead_bwd(const model *m, float *dh, float *dW, const float *dlogp, const float *dentropy, const float *h,
                      const float *W, const int *targets, const float *lse, const float *entropy, int N, int D, int V,
                      float *scratch) {
    const uint16_t *w = model_weight_bf16(m, (size_t)(W - m->w));
    if (w) m->K->lmhead_bf16_logprob_bwd(dh, dlogp, dentropy, h, w, targets, lse, entropy, N, D, V, scratch);
    else m->K->lmhead_logprob_bwd(dh, dW, dlogp, dentropy, h, W, targets, lse, entropy, N, D, V, scratch);
}

void model_lm_head_mean(const model *m, double *wbar) {
    const int D = m->cfg.hidden, V = m->cfg.vocab;
    const uint16_t *w = model_weight_bf16(m, m->off_lm_head);
    const float *W = m->w + m->off_lm_head;
    for (int d = 0; d < D; d++) wbar[d] = 0;
    for (int j = 0; j < V; j++)
        for (int d = 0; d < D; d++) wbar[d] += w ? st_bf16_to_f32(w[(size_t)j * D + d]) : W[(size_t)j * D + d];
    for (int d = 0; d < D; d++) wbar[d] /= V;
}
