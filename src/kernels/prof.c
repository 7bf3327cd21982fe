// kernels/prof: see prof.h.
#include "kernels/prof.h"
#include <stddef.h>
#include <string.h>
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

// One wrapper per timed entry: forward the arguments, add the time to the class (which
// the entry list below reads back as cls_<entry>, so a wrapper and its listed class agree).
#define TIMED_VOID(entry, cls, params, args)             \
    enum { cls_##entry = cls };                          \
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
TIMED_VOID(linear_bf16_fwd, KPROF_GEMM, (float *y, const float *x, const uint16_t *w, const float *b, int n, int i, int o),
           (y, x, w, b, n, i, o))
TIMED_VOID(linear_bf16_bwd, KPROF_GEMM, (float *dx, const float *dy, const uint16_t *w, int n, int i, int o), (dx, dy, w, n, i, o))
TIMED_VOID(linear_bb16_fwd, KPROF_GEMM, (float *y, const float *x, const uint16_t *w, const float *b, int n, int i, int o),
           (y, x, w, b, n, i, o))
TIMED_VOID(linear_bb16_bwd, KPROF_GEMM,
           (float *dx, float *dw, float *db, const float *dy, const float *x, const uint16_t *w, int n, int i, int o),
           (dx, dw, db, dy, x, w, n, i, o))
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
TIMED_VOID(lmhead_bf16_logprob_fwd, KPROF_LMHEAD,
           (float *lp, float *ent, float *lse, const float *h, const uint16_t *w, const int *t, int n, int d, int v, float *s),
           (lp, ent, lse, h, w, t, n, d, v, s))
TIMED_VOID(lmhead_bf16_logprob_bwd, KPROF_LMHEAD,
           (float *dh, const float *dlp, const float *dent, const float *h, const uint16_t *w, const int *t, const float *lse,
            const float *ent, int n, int d, int v, float *s),
           (dh, dlp, dent, h, w, t, lse, ent, n, d, v, s))
TIMED_VOID(contrastive_prob, KPROF_LMHEAD,
           (float *p, const float *hp, const float *wp, const float *hn, const float *wn, float g, const int *t, int n, int d, int v,
            float *s),
           (p, hp, wp, hn, wn, g, t, n, d, v, s))
TIMED_VOID(rope_angle_fwd, KPROF_VISION, (float *x, const float *ang, int n, int h, int d), (x, ang, n, h, d))
TIMED_VOID(rope_angle_bwd, KPROF_VISION, (float *x, const float *ang, int n, int h, int d), (x, ang, n, h, d))
TIMED_VOID(attention_seg_fwd, KPROF_VISION,
           (float *o, float *lse, const float *q, const float *k, const float *v, const int *cu, int ns, int n, int h, int d, float *s),
           (o, lse, q, k, v, cu, ns, n, h, d, s))
TIMED_VOID(attention_seg_bwd, KPROF_VISION,
           (float *dq, float *dk, float *dv, const float *d_o, const float *q, const float *k, const float *v, const float *o,
            const float *lse, const int *cu, int ns, int n, int h, int d, float *s),
           (dq, dk, dv, d_o, q, k, v, o, lse, cu, ns, n, h, d, s))
TIMED_VOID(gelu_fwd, KPROF_VISION, (float *y, const float *x, long n), (y, x, n))
TIMED_VOID(gelu_bwd, KPROF_VISION, (float *dx, const float *dy, const float *x, long n), (dx, dy, x, n))
TIMED_VOID(quick_gelu_fwd, KPROF_VISION, (float *y, const float *x, long n), (y, x, n))
TIMED_VOID(quick_gelu_bwd, KPROF_VISION, (float *dx, const float *dy, const float *x, long n), (dx, dy, x, n))
TIMED_VOID(layernorm_fwd, KPROF_NORM,
           (float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int n, int d, float eps),
           (y, mean, rstd, x, w, b, n, d, eps))
TIMED_VOID(layernorm_bwd, KPROF_NORM,
           (float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *mean, const float *rstd,
            int n, int d),
           (dx, dw, db, dy, x, w, mean, rstd, n, d))
TIMED_VOID(embedding_fwd, KPROF_OTHER, (float *y, const int *t, const float *w, int n, int d), (y, t, w, n, d))
TIMED_VOID(embedding_bwd, KPROF_OTHER, (float *dw, const float *dy, const int *t, int n, int d), (dw, dy, t, n, d))
TIMED_VOID(embedding_bf16_fwd, KPROF_OTHER, (float *y, const int *t, const uint16_t *w, int n, int d), (y, t, w, n, d))
TIMED_VOID(rope_fwd, KPROF_OTHER, (float *x, const int *pos, const float *f, int n, int h, int hd), (x, pos, f, n, h, hd))
TIMED_VOID(rope_bwd, KPROF_OTHER, (float *x, const int *pos, const float *f, int n, int h, int hd), (x, pos, f, n, h, hd))
TIMED_VOID(swiglu_fwd, KPROF_OTHER, (float *h, const float *g, const float *u, long n), (h, g, u, n))
TIMED_VOID(swiglu_bwd, KPROF_OTHER, (float *dg, float *du, const float *dh, const float *g, const float *u, long n), (dg, du, dh, g, u, n))
TIMED_VOID(geglu_fwd, KPROF_OTHER, (float *h, const float *g, const float *u, long n), (h, g, u, n))
TIMED_VOID(geglu_bwd, KPROF_OTHER, (float *dg, float *du, const float *dh, const float *g, const float *u, long n), (dg, du, dh, g, u, n))
TIMED_VOID(add_inplace, KPROF_OTHER, (float *y, const float *x, long n), (y, x, n))
TIMED_VOID(zero, KPROF_OTHER, (float *y, long n), (y, n))

// The decode row's log-prob (once per sampled token): returns a value.
enum { cls_lmhead_logprob_row = KPROF_LMHEAD };
static float p_lmhead_logprob_row(const float *z, int v, int t, float *ent) {
    double t0 = now();
    float r = base_->lmhead_logprob_row(z, v, t, ent);
    sec_[KPROF_LMHEAD] += now() - t0, calls_[KPROF_LMHEAD]++;
    return r;
}

// Every function-pointer entry of the table, in its order: timed (T: its wrapper and class)
// or untimed (U). kprof_wrap installs the wrappers from this list alone.
typedef void (*kprof_fn)(void);
typedef struct {
    kprof_entry e;
    kprof_fn wrapper;  // NULL: untimed, the base's entry passes through
} entry_def;
#define T(entry) {{offsetof(struct kernels, entry), cls_##entry, #entry}, (kprof_fn)p_##entry}
#define U(entry) {{offsetof(struct kernels, entry), KPROF_UNTIMED, #entry}, NULL}
static const entry_def defs_[] = {
    T(linear_fwd), T(linear_bwd), T(embedding_fwd), T(embedding_bwd), T(rmsnorm_fwd), T(rmsnorm_bwd),
    T(rope_fwd), T(rope_bwd), T(attention_fwd), T(attention_bwd),
    T(swiglu_fwd), T(swiglu_bwd), T(geglu_fwd), T(geglu_bwd), T(lmhead_logprob_fwd), T(lmhead_logprob_bwd),
    T(sgemm), U(attention_scratch_floats), U(lmhead_scratch_floats),
    T(attention_cache_fwd), U(attention_cache_max_head_dim), T(linear_rows_fwd), U(linear_rows_max),
    U(contrastive_scratch_floats), T(contrastive_prob), T(add_inplace), T(zero),
    T(linear_bf16_fwd), T(linear_bf16_bwd), T(embedding_bf16_fwd),
    U(lmhead_bf16_scratch_floats), T(lmhead_bf16_logprob_fwd), T(lmhead_bf16_logprob_bwd),
    T(rope_angle_fwd), T(rope_angle_bwd), U(attention_seg_scratch_floats), T(attention_seg_fwd), T(attention_seg_bwd),
    T(gelu_fwd), T(gelu_bwd), T(lmhead_logprob_row), T(linear_bb16_fwd), T(linear_bb16_bwd), U(bb16_report),
    T(quick_gelu_fwd), T(quick_gelu_bwd), T(layernorm_fwd), T(layernorm_bwd), U(gemm_weights_frozen),
};
#undef T
#undef U
enum { NDEF = sizeof defs_ / sizeof defs_[0] };
static kprof_entry entries_[NDEF];

const kprof_entry *kprof_entries(int *n) {
    for (int i = 0; i < NDEF; i++) entries_[i] = defs_[i].e;
    *n = NDEF;
    return entries_;
}

const struct kernels *kprof_wrap(const struct kernels *base) {
    if (base == &prof_) return &prof_;  // already wrapped (a model reloaded in place, a second trainer)
    base_ = base;
    prof_ = *base;  // untimed entries (sizes, capabilities) pass through
    prof_.name = "profiled";
    // each wrapper has its entry's own type (it was converted to kprof_fn and is stored back
    // with the same representation), so every call through the table is well typed
    for (int i = 0; i < NDEF; i++)
        if (defs_[i].wrapper) memcpy((char *)&prof_ + defs_[i].e.offset, &defs_[i].wrapper, sizeof(kprof_fn));
    return &prof_;
}

void kprof_read(double seconds[KPROF_NCLASS], long calls[KPROF_NCLASS]) {
    for (int c = 0; c < KPROF_NCLASS; c++) seconds[c] = sec_[c], calls[c] = calls_[c];
}

void kprof_reset(void) {
    for (int c = 0; c < KPROF_NCLASS; c++) sec_[c] = 0, calls_[c] = 0;
}

const char *kprof_class_name(kprof_class c) {
    static const char *names[KPROF_NCLASS] = {"GEMM", "attention", "norms", "lm-head", "vision", "other kernels"};
    return c >= 0 && c < KPROF_NCLASS ? names[c] : "?";
}
