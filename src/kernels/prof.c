// kernels/prof: see prof.h.
#include "kernels/prof.h"
#include <time.h>

static const struct kernels *base_;
static struct kernels prof_;
static double sec_[KPROF_NCLASS];
static long calls_[KPROF_NCLASS];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// One wrapper per timed entry: forward the arguments, add the time to the class.
#define TIMED_VOID(entry, cls, params, args)             \
    static void p_##entry params {                       \
        double t0 = now();                               \
        base_->entry args;                               \
        sec_[cls] += now() - t0, calls_[cls]++;          \
    }

TIMED_VOID(linear_fwd, KPROF_GEMM, (float *y, const float *x, const float *w, const float *b, int n, int i, int o), (y, x, w, b, n, i, o))
TIMED_VOID(linear_bwd, KPROF_GEMM,
           (float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int n, int i, int o),
           (dx, dw, db, dy, x, w, n, i, o))
TIMED_VOID(linear_rows_fwd, KPROF_GEMM, (float *y, const float *x, const float *w, const float *b, int n, int i, int o),
           (y, x, w, b, n, i, o))
TIMED_VOID(sgemm, KPROF_GEMM,
           (int ta, int tb, int m, int n, int k, float al, const float *a, int lda, const float *b, int ldb, float be, float *c, int ldc),
           (ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc))
TIMED_VOID(attention_fwd, KPROF_ATTENTION,
           (float *o, float *lse, const float *q, const float *k, const float *v, const int *cu, int ns, int n, int hq, int hkv, int hd,
            int win, float *s),
           (o, lse, q, k, v, cu, ns, n, hq, hkv, hd, win, s))
TIMED_VOID(attention_bwd, KPROF_ATTENTION,
           (float *dq, float *dk, float *dv, const float *d_o, const float *q, const float *k, const float *v, const float *o,
            const float *lse, const int *cu, int ns, int n, int hq, int hkv, int hd, int win, float *s),
           (dq, dk, dv, d_o, q, k, v, o, lse, cu, ns, n, hq, hkv, hd, win, s))
TIMED_VOID(attention_cache_fwd, KPROF_ATTENTION,
           (float *o, const float *q, const k_kv_span *sp, int n, int hq, int hkv, int hd, int win), (o, q, sp, n, hq, hkv, hd, win))
TIMED_VOID(rmsnorm_fwd, KPROF_NORM, (float *y, float *r, const float *x, const float *w, float ofs, int n, int d, float eps),
           (y, r, x, w, ofs, n, d, eps))
TIMED_VOID(rmsnorm_bwd, KPROF_NORM,
           (float *dx, float *dw, const float *dy, const float *x, const float *w, float ofs, const float *r, int n, int d),
           (dx, dw, dy, x, w, ofs, r, n, d))
TIMED_VOID(lmhead_logprob_fwd, KPROF_LMHEAD,
           (float *lp, float *ent, float *lse, const float *h, const float *w, const int *t, int n, int d, int v, float *s),
           (lp, ent, lse, h, w, t, n, d, v, s))
TIMED_VOID(lmhead_logprob_bwd, KPROF_LMHEAD,
           (float *dh, float *dw, const float *dlp, const float *dent, const float *h, const float *w, const int *t, const float *lse,
            const float *ent, int n, int d, int v, float *s),
           (dh, dw, dlp, dent, h, w, t, lse, ent, n, d, v, s))
TIMED_VOID(contrastive_prob, KPROF_LMHEAD,
           (float *p, const float *hp, const float *wp, const float *hn, const float *wn, float g, const int *t, int n, int d, int v,
            float *s),
           (p, hp, wp, hn, wn, g, t, n, d, v, s))
TIMED_VOID(embedding_fwd, KPROF_OTHER, (float *y, const int *t, const float *w, int n, int d), (y, t, w, n, d))
TIMED_VOID(embedding_bwd, KPROF_OTHER, (float *dw, const float *dy, const int *t, int n, int d), (dw, dy, t, n, d))
TIMED_VOID(rope_fwd, KPROF_OTHER, (float *x, const int *pos, const float *f, int n, int h, int hd), (x, pos, f, n, h, hd))
TIMED_VOID(rope_bwd, KPROF_OTHER, (float *x, const int *pos, const float *f, int n, int h, int hd), (x, pos, f, n, h, hd))
TIMED_VOID(swiglu_fwd, KPROF_OTHER, (float *h, const float *g, const float *u, long n), (h, g, u, n))
TIMED_VOID(swiglu_bwd, KPROF_OTHER, (float *dg, float *du, const float *dh, const float *g, const float *u, long n), (dg, du, dh, g, u, n))
TIMED_VOID(geglu_fwd, KPROF_OTHER, (float *h, const float *g, const float *u, long n), (h, g, u, n))
TIMED_VOID(geglu_bwd, KPROF_OTHER, (float *dg, float *du, const float *dh, const float *g, const float *u, long n), (dg, du, dh, g, u, n))
TIMED_VOID(add_inplace, KPROF_OTHER, (float *y, const float *x, long n), (y, x, n))
TIMED_VOID(zero, KPROF_OTHER, (float *y, long n), (y, n))

const struct kernels *kprof_wrap(const struct kernels *base) {
    if (base == &prof_) return &prof_;  // already wrapped (a model reloaded in place, a second trainer)
    base_ = base;
    prof_ = *base;  // entries not listed here (sizes, capabilities, new ones) pass through
    prof_.name = "profiled";
#define W(entry) prof_.entry = p_##entry
    W(linear_fwd); W(linear_bwd); W(linear_rows_fwd); W(sgemm);
    W(attention_fwd); W(attention_bwd); W(attention_cache_fwd);
    W(rmsnorm_fwd); W(rmsnorm_bwd);
    W(lmhead_logprob_fwd); W(lmhead_logprob_bwd); W(contrastive_prob);
    W(embedding_fwd); W(embedding_bwd); W(rope_fwd); W(rope_bwd);
    W(swiglu_fwd); W(swiglu_bwd); W(geglu_fwd); W(geglu_bwd); W(add_inplace); W(zero);
#undef W
    return &prof_;
}

void kprof_read(double seconds[KPROF_NCLASS], long calls[KPROF_NCLASS]) {
    for (int c = 0; c < KPROF_NCLASS; c++) seconds[c] = sec_[c], calls[c] = calls_[c];
}

void kprof_reset(void) {
    for (int c = 0; c < KPROF_NCLASS; c++) sec_[c] = 0, calls_[c] = 0;
}

const char *kprof_class_name(kprof_class c) {
    static const char *names[KPROF_NCLASS] = {"GEMM", "attention", "norms", "lm-head", "other kernels"};
    return c >= 0 && c < KPROF_NCLASS ? names[c] : "?";
}
