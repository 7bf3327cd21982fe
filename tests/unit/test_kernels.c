// tests/unit/test_kernels.c: every CPU kernel against a naive double-precision
// reference written here.
//
// - Forward: max|kernel - ref| / max|ref| < 1e-5 (fp32 kernels, fp64 reference).
// - Backward: the kernel's gradient of L = sum(G * output) (G a fixed random upstream
//   gradient) against central finite differences of the fp64 reference,
//   (L(x+h) - L(x-h)) / 2h with h = 1e-4: truncation ~h^2 = 1e-8 and rounding
//   ~1e-16/h are both far below the fp32 error of the kernel, so the tolerance is
//   max|kernel - fd| / max|fd| < 1e-4 (observed values are ~1e-6).
// - Shapes are odd on purpose (D, d, V not multiples of 16 or of the chunk sizes) so
//   every vector tail and chunk tail runs; attention packs sequences of lengths 5, 1
//   and 9 (and 70, 131, 3 to cross the 64-row tiles); lm-head masks some targets.
// - Every backward is called twice on nonzero gradient buffers to check that it
//   accumulates (+=) instead of overwriting.
#include "base/rng.h"
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"
#include "test.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_H 1e-4

static rng R;

static float *randn(long n, float scale) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (long i = 0; i < n; i++) x[i] = scale * rng_normal(&R);
    return x;
}
static double *to_double(const float *x, long n) {
    double *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (long i = 0; i < n; i++) y[i] = x[i];
    return y;
}
static float *to_float(const double *x, long n) {
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (long i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
static float *copy_f(const float *x, long n) {
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}
// a - b elementwise into a new array (the gradient a backward added to buffer b).
static float *diff(const float *a, const float *b, long n) {
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (long i = 0; i < n; i++) y[i] = a[i] - b[i];
    return y;
}
static double rel_err_d(const float *a, const double *b, long n) {
    float *bf = to_float(b, n);
    double e = test_rel_err(a, bf, n, 1e-30);
    free(bf);
    return e;
}

// Central differences of loss(ctx) with respect to x[i] for the sampled i
// (every element when step == 1). Returns max|an - fd| / max|fd| over the samples.
typedef double (*loss_fn)(void *ctx, long i);
static double fd_check(loss_fn loss, void *ctx, double *x, long n, long step, const float *an) {
    double md = 0, mb = 1e-12;
    for (long i = 0; i < n; i += step) {
        double x0 = x[i];
        x[i] = x0 + FD_H;
        double lp = loss(ctx, i);
        x[i] = x0 - FD_H;
        double lm = loss(ctx, i);
        x[i] = x0;
        double fd = (lp - lm) / (2 * FD_H);
        double d = fabs(fd - an[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(fd) > mb) mb = fabs(fd);
    }
    return md / mb;
}

// Checks that a second backward call added the same gradient again:
// (after2 - before) == 2 * (after1 - before).
static double accum_err(const float *before, const float *after1, const float *after2, long n) {
    float *g1 = diff(after1, before, n), *g2 = diff(after2, before, n);
    for (long i = 0; i < n; i++) g1[i] *= 2.0f;
    double e = test_rel_err(g2, g1, n, 1e-30);
    free(g1);
    free(g2);
    return e;
}

// ============================================================== linear

typedef struct {
    int N, in, out, has_b;
    double *x, *W, *b, *G;
} lin_ctx;

static double lin_loss(void *vc, long unused) {
    lin_ctx *c = vc;
    double L = 0;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->out; o++) {
            double y = c->has_b ? c->b[o] : 0;
            for (int i = 0; i < c->in; i++) y += c->x[n * c->in + i] * c->W[o * c->in + i];
            L += c->G[n * c->out + o] * y;
        }
    return L;
}

static void test_linear(int has_b) {
    const int N = 7, in = 19, out = 13;
    float *x = randn(N * in, 1), *W = randn(out * in, 0.5f), *b = randn(out, 1), *G = randn(N * out, 1);
    lin_ctx c = {N, in, out, has_b, to_double(x, N * in), to_double(W, out * in), to_double(b, out),
                 to_double(G, N * out)};
    // forward
    float *y = malloc(sizeof(float) * N * out);
    double *yr = malloc(sizeof(double) * N * out);
    k_linear_fwd(y, x, W, has_b ? b : NULL, N, in, out);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double s = has_b ? c.b[o] : 0;
            for (int i = 0; i < in; i++) s += c.x[n * in + i] * c.W[o * in + i];
            yr[n * out + o] = s;
        }
    {
        double e_ = rel_err_d(y, yr, N * out);
        CHECK(e_ < FWD_TOL, "linear fwd (bias=%d) vs fp64 ref (err %.1e)", has_b, e_);
    }

    // backward, twice onto random nonzero buffers
    float *dx0 = randn(N * in, 1), *dW0 = randn(out * in, 1), *db0 = randn(out, 1);
    float *dx = copy_f(dx0, N * in), *dW = copy_f(dW0, out * in), *db = copy_f(db0, out);
    k_linear_bwd(dx, dW, has_b ? db : NULL, G, x, W, N, in, out);
    float *gx = diff(dx, dx0, N * in), *gW = diff(dW, dW0, out * in), *gb = diff(db, db0, out);
    {
        double e_ = fd_check(lin_loss, &c, c.x, N * in, 1, gx);
        CHECK(e_ < BWD_TOL, "linear bwd dx vs FD (bias=%d) (err %.1e)", has_b, e_);
    }
    {
        double e_ = fd_check(lin_loss, &c, c.W, out * in, 1, gW);
        CHECK(e_ < BWD_TOL, "linear bwd dW vs FD (bias=%d) (err %.1e)", has_b, e_);
    }
    if (has_b) {
        double e_ = fd_check(lin_loss, &c, c.b, out, 1, gb);
        CHECK(e_ < BWD_TOL, "linear bwd db vs FD (err %.1e)", e_);
    } else
        CHECK(test_rel_err(db, db0, out, 1) == 0, "linear bwd with db=NULL leaves db alone");
    float *dx1 = copy_f(dx, N * in), *dW1 = copy_f(dW, out * in), *db1 = copy_f(db, out);
    k_linear_bwd(dx, dW, has_b ? db : NULL, G, x, W, N, in, out);
    CHECK(accum_err(dx0, dx1, dx, N * in) < 1e-6 && accum_err(dW0, dW1, dW, out * in) < 1e-6 &&
          (!has_b || accum_err(db0, db1, db, out) < 1e-6),
          "linear bwd accumulates (+=) (bias=%d)", has_b);

    // NULL dx / NULL dW: the others are still right.
    if (has_b) {
        float *dW2 = copy_f(dW0, out * in), *db2 = copy_f(db0, out);
        k_linear_bwd(NULL, dW2, db2, G, x, W, N, in, out);
        CHECK(test_rel_err(dW2, dW1, out * in, 1) == 0 && test_rel_err(db2, db1, out, 1) == 0,
              "linear bwd with dx=NULL");
        float *dx2 = copy_f(dx0, N * in);
        k_linear_bwd(dx2, NULL, NULL, G, x, W, N, in, out);
        CHECK(test_rel_err(dx2, dx1, N * in, 1) == 0, "linear bwd with dW=NULL, db=NULL");
        free(dW2), free(db2), free(dx2);
    }
    free(x), free(W), free(b), free(G), free(c.x), free(c.W), free(c.b), free(c.G), free(y), free(yr);
    free(dx0), free(dW0), free(db0), free(dx), free(dW), free(db), free(gx), free(gW), free(gb);
    free(dx1), free(dW1), free(db1);
}

// ============================================================== embedding

typedef struct {
    int N, D;
    const int *tok;
    double *E, *G;
} emb_ctx;

static double emb_loss(void *vc, long unused) {
    emb_ctx *c = vc;
    double L = 0;
    for (int n = 0; n < c->N; n++)
        for (int j = 0; j < c->D; j++) L += c->G[n * c->D + j] * c->E[c->tok[n] * c->D + j];
    return L;
}

static void test_embedding(void) {
    const int V = 11, D = 21, N = 9;
    const int tok[9] = {3, 1, 3, 0, 10, 3, 1, 7, 3};  // repeated ids: 3 four times, 1 twice
    float *E = randn(V * D, 1), *G = randn(N * D, 1), *y = malloc(sizeof(float) * N * D);
    k_embedding_fwd(y, tok, E, N, D);
    int same = 1;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < D; j++) same &= y[n * D + j] == E[tok[n] * D + j];
    CHECK(same, "embedding fwd copies rows exactly");
    emb_ctx c = {N, D, tok, to_double(E, V * D), to_double(G, N * D)};
    float *dE0 = randn(V * D, 1), *dE = copy_f(dE0, V * D);
    k_embedding_bwd(dE, G, tok, N, D);
    float *g = diff(dE, dE0, V * D), *dE1 = copy_f(dE, V * D);
    {
        double e_ = fd_check(emb_loss, &c, c.E, V * D, 1, g);
        CHECK(e_ < BWD_TOL, "embedding bwd vs FD (repeated ids) (err %.1e)", e_);
    }
    k_embedding_bwd(dE, G, tok, N, D);
    CHECK(accum_err(dE0, dE1, dE, V * D) < 1e-6, "embedding bwd accumulates (+=)");
    free(E), free(G), free(y), free(c.E), free(c.G), free(dE0), free(dE), free(g), free(dE1);
}

// ============================================================== rmsnorm

typedef struct {
    int N, D;
    double eps, *x, *w, *G, wofs;  // scale w + wofs (Gemma: wofs 1)
} rms_ctx;

static void rms_ref(double *y, double *rstd, const rms_ctx *c) {
    for (int n = 0; n < c->N; n++) {
        double ss = 0;
        for (int j = 0; j < c->D; j++) ss += c->x[n * c->D + j] * c->x[n * c->D + j];
        double r = 1.0 / sqrt(ss / c->D + c->eps);
        if (rstd) rstd[n] = r;
        for (int j = 0; j < c->D; j++) y[n * c->D + j] = c->x[n * c->D + j] * r * (c->w[j] + c->wofs);
    }
}
static double rms_loss(void *vc, long unused) {
    rms_ctx *c = vc;
    double *y = malloc(sizeof(double) * c->N * c->D), L = 0;
    rms_ref(y, NULL, c);
    for (long i = 0; i < (long)c->N * c->D; i++) L += c->G[i] * y[i];
    free(y);
    return L;
}

// wofs 0 through the plain entry points, 1 (Gemma's 1 + w) through the _ofs ones.
static void test_rmsnorm(int N, int D, float wofs) {
    const float eps = 1e-6f;
    float *x = randn(N * D, 1), *w = randn(D, 1), *G = randn(N * D, 1);
    rms_ctx c = {N, D, eps, to_double(x, N * D), to_double(w, D), to_double(G, N * D), wofs};
    float *y = malloc(sizeof(float) * N * D), *rstd = malloc(sizeof(float) * N);
    double *yr = malloc(sizeof(double) * N * D), *rr = malloc(sizeof(double) * N);
    if (wofs == 0.0f) k_rmsnorm_fwd(y, rstd, x, w, N, D, eps);
    else k_rmsnorm_ofs_fwd(y, rstd, x, w, wofs, N, D, eps);
    rms_ref(yr, rr, &c);
    CHECK(rel_err_d(y, yr, N * D) < FWD_TOL && rel_err_d(rstd, rr, N) < FWD_TOL,
          "rmsnorm fwd y and rstd vs fp64 ref (N=%d D=%d wofs=%g)", N, D, wofs);
    float *dx0 = randn(N * D, 1), *dw0 = randn(D, 1), *dx = copy_f(dx0, N * D), *dw = copy_f(dw0, D);
    if (wofs == 0.0f) k_rmsnorm_bwd(dx, dw, G, x, w, rstd, N, D);
    else k_rmsnorm_ofs_bwd(dx, dw, G, x, w, wofs, rstd, N, D);
    float *gx = diff(dx, dx0, N * D), *gw = diff(dw, dw0, D);
    {
        double e_ = fd_check(rms_loss, &c, c.x, N * D, 1, gx);
        CHECK(e_ < BWD_TOL, "rmsnorm bwd dx vs FD (D=%d wofs=%g) (err %.1e)", D, wofs, e_);
    }
    {
        double e_ = fd_check(rms_loss, &c, c.w, D, 1, gw);
        CHECK(e_ < BWD_TOL, "rmsnorm bwd dw vs FD (D=%d wofs=%g) (err %.1e)", D, wofs, e_);
    }
    float *dx1 = copy_f(dx, N * D), *dw1 = copy_f(dw, D);
    k_rmsnorm_ofs_bwd(dx, dw, G, x, w, wofs, rstd, N, D);
    CHECK(accum_err(dx0, dx1, dx, N * D) < 1e-6 && accum_err(dw0, dw1, dw, D) < 1e-6,
          "rmsnorm bwd accumulates (+=) (D=%d wofs=%g)", D, wofs);
    free(x), free(w), free(G), free(c.x), free(c.w), free(c.G), free(y), free(rstd), free(yr), free(rr);
    free(dx0), free(dw0), free(dx), free(dw), free(gx), free(gw), free(dx1), free(dw1);
}

// ============================================================== rope

typedef struct {
    int N, H, d;
    const int *pos;
    const float *inv_freq;
    double *x, *G;
} rope_ctx;

// All rows, or only the (token, head) row `only` when only >= 0.
static void rope_ref(double *y, const rope_ctx *c, long only) {
    int half = c->d / 2;
    for (int n = 0; n < c->N; n++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < half; i++) {
                if (only >= 0 && only != (long)n * c->H + h) continue;
                // The angle is an fp32 product, as in transformers; the trig is fp64.
                double ang = (double)((float)c->pos[n] * c->inv_freq[i]);
                long o = ((long)n * c->H + h) * c->d;
                double x1 = c->x[o + i], x2 = c->x[o + i + half];
                y[o + i] = x1 * cos(ang) - x2 * sin(ang);
                y[o + i + half] = x2 * cos(ang) + x1 * sin(ang);
            }
}
// Only the perturbed element's (token, head) row changes, so the loss is summed over
// that row alone (same finite difference, d times cheaper).
static double rope_loss(void *vc, long idx) {
    rope_ctx *c = vc;
    long n = (long)c->N * c->H * c->d, r0 = idx / c->d * c->d;
    double *y = malloc(sizeof(double) * n), L = 0;
    rope_ref(y, c, idx / c->d);
    for (long i = r0; i < r0 + c->d; i++) L += c->G[i] * y[i];
    free(y);
    return L;
}

static void test_rope(int d) {
    const int N = 7, H = 3;
    const int pos[7] = {0, 1, 2, 3, 0, 1, 17};  // two packed sequences, one offset position
    long n = (long)N * H * d;
    float *inv_freq = malloc(sizeof(float) * (d / 2));
    for (int i = 0; i < d / 2; i++) inv_freq[i] = powf(10000.0f, -2.0f * i / d);
    float *x = randn(n, 1), *G = randn(n, 1);
    rope_ctx c = {N, H, d, pos, inv_freq, to_double(x, n), to_double(G, n)};
    double *yr = malloc(sizeof(double) * n);
    float *y = copy_f(x, n);
    k_rope_fwd(y, pos, inv_freq, N, H, d);
    rope_ref(yr, &c, -1);
    {
        double e_ = rel_err_d(y, yr, n);
        CHECK(e_ < FWD_TOL, "rope fwd vs fp64 ref (d=%d) (err %.1e)", d, e_);
    }
    float *g = copy_f(G, n);
    k_rope_bwd(g, pos, inv_freq, N, H, d);  // in place: dL/dy -> dL/dx
    {
        double e_ = fd_check(rope_loss, &c, c.x, n, 1, g);
        CHECK(e_ < BWD_TOL, "rope bwd vs FD (d=%d) (err %.1e)", d, e_);
    }
    free(inv_freq), free(x), free(G), free(c.x), free(c.G), free(yr), free(y), free(g);
}

// ============================================================== attention

typedef struct {
    const int *cu;
    int nseq, N, Hq, Hkv, d;
    double *q, *k, *v, *G;
    int window;  // sliding window (0: none): token i sees j > i - window
} att_ctx;

// The first key token i sees in the sequence starting at s0.
static int att_first(const att_ctx *c, int s0, int i) {
    return c->window > 0 && i - c->window + 1 > s0 ? i - c->window + 1 : s0;
}

static int seq_of(const int *cu, int nseq, long t) {
    int s = 0;
    while (s + 1 < nseq && cu[s + 1] <= t) s++;
    return s;
}

// out and lse for the tokens of sequence `only` (all sequences when only < 0).
static void att_ref(double *out, double *lse, const att_ctx *c, int only) {
    int grp = c->Hq / c->Hkv, d = c->d;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc(sizeof(double) * (c->N > 0 ? c->N : 1));
    for (int s = 0; s < c->nseq; s++) {
        if (only >= 0 && s != only) continue;
        for (int i = c->cu[s]; i < c->cu[s + 1]; i++)
            for (int h = 0; h < c->Hq; h++) {
                int kv = h / grp;
                const double *qi = c->q + ((long)i * c->Hq + h) * d;
                double m = -INFINITY;
                for (int j = att_first(c, c->cu[s], i); j <= i; j++) {
                    const double *kj = c->k + ((long)j * c->Hkv + kv) * d;
                    double sc = 0;
                    for (int e = 0; e < d; e++) sc += qi[e] * kj[e];
                    p[j] = sc * scale;
                    if (p[j] > m) m = p[j];
                }
                double sum = 0;
                for (int j = att_first(c, c->cu[s], i); j <= i; j++) sum += (p[j] = exp(p[j] - m));
                if (lse) lse[(long)i * c->Hq + h] = m + log(sum);
                double *o = out + ((long)i * c->Hq + h) * d;
                for (int e = 0; e < d; e++) o[e] = 0;
                for (int j = att_first(c, c->cu[s], i); j <= i; j++) {
                    double pj = p[j] / sum;
                    const double *vj = c->v + ((long)j * c->Hkv + kv) * d;
                    for (int e = 0; e < d; e++) o[e] += pj * vj[e];
                }
            }
    }
    free(p);
}

// Loss restricted to the sequence holding the perturbed element's token (the others
// do not change, so the finite difference is the same and much cheaper).
static long att_fd_token_stride;  // floats per token of the array being perturbed
static double att_loss(void *vc, long idx) {
    att_ctx *c = vc;
    int s = seq_of(c->cu, c->nseq, idx / att_fd_token_stride);
    long n = (long)c->N * c->Hq * c->d;
    double *o = malloc(sizeof(double) * n), L = 0;
    att_ref(o, NULL, c, s);
    for (long i = (long)c->cu[s] * c->Hq * c->d; i < (long)c->cu[s + 1] * c->Hq * c->d; i++) L += c->G[i] * o[i];
    free(o);
    return L;
}

// Analytic fp64 gradients (standard softmax-attention backward), used to check the
// large case in full; the small cases check the kernel against finite differences.
static void att_ref_bwd(double *dq, double *dk, double *dv, const att_ctx *c) {
    int grp = c->Hq / c->Hkv, d = c->d;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc(sizeof(double) * c->N), *dp = malloc(sizeof(double) * c->N);
    for (int s = 0; s < c->nseq; s++)
        for (int i = c->cu[s]; i < c->cu[s + 1]; i++)
            for (int h = 0; h < c->Hq; h++) {
                int kv = h / grp;
                const double *qi = c->q + ((long)i * c->Hq + h) * d, *gi = c->G + ((long)i * c->Hq + h) * d;
                double m = -INFINITY, sum = 0, Di = 0;
                for (int j = att_first(c, c->cu[s], i); j <= i; j++) {
                    double sc = 0;
                    for (int e = 0; e < d; e++) sc += qi[e] * c->k[((long)j * c->Hkv + kv) * d + e];
                    p[j] = sc * scale;
                    if (p[j] > m) m = p[j];
                }
                for (int j = att_first(c, c->cu[s], i); j <= i; j++) sum += exp(p[j] - m);
                for (int j = att_first(c, c->cu[s], i); j <= i; j++) {
                    p[j] = exp(p[j] - m) / sum;
                    dp[j] = 0;
                    for (int e = 0; e < d; e++) dp[j] += gi[e] * c->v[((long)j * c->Hkv + kv) * d + e];
                    Di += p[j] * dp[j];
                }
                for (int j = att_first(c, c->cu[s], i); j <= i; j++) {
                    double ds = p[j] * (dp[j] - Di) * scale;
                    for (int e = 0; e < d; e++) {
                        long kj = ((long)j * c->Hkv + kv) * d + e;
                        dq[((long)i * c->Hq + h) * d + e] += ds * c->k[kj];
                        dk[kj] += ds * qi[e];
                        dv[kj] += p[j] * gi[e];
                    }
                }
            }
    free(p), free(dp);
}

// window > 0: the sliding-window entry points (Gemma 3's local layers).
static void test_attention(const int *cu, int nseq, int Hq, int Hkv, int d, int full_fd, int window) {
    int N = cu[nseq];
    long nq = (long)N * Hq * d, nk = (long)N * Hkv * d;
    float *q = randn(nq, 1), *k = randn(nk, 1), *v = randn(nk, 1), *G = randn(nq, 1);
    att_ctx c = {cu, nseq, N, Hq, Hkv, d, to_double(q, nq), to_double(k, nk), to_double(v, nk), to_double(G, nq), window};
    float *scratch = malloc(sizeof(float) * k_attention_scratch_floats(cu, nseq, Hq, Hkv, d));
    float *out = malloc(sizeof(float) * nq), *lse = malloc(sizeof(float) * N * Hq);
    double *outr = malloc(sizeof(double) * nq), *lser = malloc(sizeof(double) * N * Hq);
    if (window) k_attention_win_fwd(out, lse, q, k, v, cu, nseq, N, Hq, Hkv, d, window, scratch);
    else k_attention_fwd(out, lse, q, k, v, cu, nseq, N, Hq, Hkv, d, scratch);
    att_ref(outr, lser, &c, -1);
    char shape[96];
    snprintf(shape, sizeof shape, "N=%d nseq=%d Hq=%d Hkv=%d d=%d window=%d", N, nseq, Hq, Hkv, d, window);
    {
        double e_ = rel_err_d(out, outr, nq);
        CHECK(e_ < FWD_TOL, "attention fwd out vs fp64 ref (%s) (err %.1e)", shape, e_);
    }
    {
        double e_ = rel_err_d(lse, lser, (long)N * Hq);
        CHECK(e_ < FWD_TOL, "attention fwd lse vs fp64 ref (%s) (err %.1e)", shape, e_);
    }

    float *dq0 = randn(nq, 1), *dk0 = randn(nk, 1), *dv0 = randn(nk, 1);
    float *dq = copy_f(dq0, nq), *dk = copy_f(dk0, nk), *dv = copy_f(dv0, nk);
    if (window) k_attention_win_bwd(dq, dk, dv, G, q, k, v, out, lse, cu, nseq, N, Hq, Hkv, d, window, scratch);
    else k_attention_bwd(dq, dk, dv, G, q, k, v, out, lse, cu, nseq, N, Hq, Hkv, d, scratch);
    float *gq = diff(dq, dq0, nq), *gk = diff(dk, dk0, nk), *gv = diff(dv, dv0, nk);
    // Full FD on small cases; on the large one, every 547th element by FD (15 to 30
    // per tensor) and all of them against the analytic fp64 backward.
    long step = full_fd ? 1 : 547;
    att_fd_token_stride = (long)Hq * d;
    {
        double e_ = fd_check(att_loss, &c, c.q, nq, step, gq);
        CHECK(e_ < BWD_TOL, "attention bwd dq vs FD (%s) (err %.1e)", shape, e_);
    }
    att_fd_token_stride = (long)Hkv * d;
    {
        double e_ = fd_check(att_loss, &c, c.k, nk, step, gk);
        CHECK(e_ < BWD_TOL, "attention bwd dk vs FD (%s) (err %.1e)", shape, e_);
    }
    {
        double e_ = fd_check(att_loss, &c, c.v, nk, step, gv);
        CHECK(e_ < BWD_TOL, "attention bwd dv vs FD (%s) (err %.1e)", shape, e_);
    }
    if (!full_fd) {
        double *rq = calloc(nq, sizeof(double)), *rk = calloc(nk, sizeof(double)), *rv = calloc(nk, sizeof(double));
        att_ref_bwd(rq, rk, rv, &c);
        CHECK(rel_err_d(gq, rq, nq) < BWD_TOL && rel_err_d(gk, rk, nk) < BWD_TOL && rel_err_d(gv, rv, nk) < BWD_TOL,
              "attention bwd dq dk dv vs analytic fp64 ref, all elements (%s)", shape);
        free(rq), free(rk), free(rv);
    }
    float *dq1 = copy_f(dq, nq), *dk1 = copy_f(dk, nk), *dv1 = copy_f(dv, nk);
    if (window) k_attention_win_bwd(dq, dk, dv, G, q, k, v, out, lse, cu, nseq, N, Hq, Hkv, d, window, scratch);
    else k_attention_bwd(dq, dk, dv, G, q, k, v, out, lse, cu, nseq, N, Hq, Hkv, d, scratch);
    {
        double eq = accum_err(dq0, dq1, dq, nq), ek = accum_err(dk0, dk1, dk, nk), ev = accum_err(dv0, dv1, dv, nk);
        // Without AVX-512 the tiles add into dq/dk/dv one key block at a time, so the
        // second call's rounding differs from the first's by up to ~1e-6 on the large
        // case (measured 1.2e-6 on x86-64-v3); an overwrite instead of += is off by O(1).
        CHECK(eq < 1e-5 && ek < 1e-5 && ev < 1e-5, "attention bwd accumulates (+=) (%s) (err %.1e %.1e %.1e)", shape, eq, ek, ev);
    }
    free(q), free(k), free(v), free(G), free(c.q), free(c.k), free(c.v), free(c.G), free(scratch);
    free(out), free(lse), free(outr), free(lser), free(dq0), free(dk0), free(dv0), free(dq), free(dk), free(dv);
    free(gq), free(gk), free(gv), free(dq1), free(dk1), free(dv1);
}

// ============================================================== swiglu

static double silu_d(double g) { return g / (1 + exp(-g)); }

static void test_swiglu(void) {
    const long n = 4096 + 37;  // crosses the 4096-element block, 16-lane tail
    float *g = randn(n, 3), *u = randn(n, 1), *G = randn(n, 1), *h = malloc(sizeof(float) * n);
    g[0] = -100.0f, g[1] = 100.0f, g[2] = -87.5f, g[3] = 0.0f;  // saturated and edge values
    double *hr = malloc(sizeof(double) * n);
    for (long i = 0; i < n; i++) hr[i] = silu_d(g[i]) * u[i];
    k_swiglu_fwd(h, g, u, n);
    {
        double e_ = rel_err_d(h, hr, n);
        CHECK(e_ < FWD_TOL, "swiglu fwd vs fp64 ref (err %.1e)", e_);
    }
    // Elementwise, so element i's finite difference involves only element i.
    float *dg0 = randn(n, 1), *du0 = randn(n, 1), *dg = copy_f(dg0, n), *du = copy_f(du0, n);
    k_swiglu_bwd(dg, du, G, g, u, n);
    float *gg = diff(dg, dg0, n), *gu = diff(du, du0, n);
    float *fg = malloc(sizeof(float) * n), *fu = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) {
        double gi = g[i], ui = u[i];
        fg[i] = (float)(G[i] * (silu_d(gi + FD_H) - silu_d(gi - FD_H)) * ui / (2 * FD_H));
        fu[i] = (float)(G[i] * silu_d(gi) * ((ui + FD_H) - (ui - FD_H)) / (2 * FD_H));
    }
    {
        double e_ = test_rel_err(gg, fg, n, 1e-12);
        CHECK(e_ < BWD_TOL, "swiglu bwd dgate vs FD (err %.1e)", e_);
    }
    {
        double e_ = test_rel_err(gu, fu, n, 1e-12);
        CHECK(e_ < BWD_TOL, "swiglu bwd dup vs FD (err %.1e)", e_);
    }
    float *dg1 = copy_f(dg, n), *du1 = copy_f(du, n);
    k_swiglu_bwd(dg, du, G, g, u, n);
    CHECK(accum_err(dg0, dg1, dg, n) < 1e-6 && accum_err(du0, du1, du, n) < 1e-6, "swiglu bwd accumulates (+=)");
    free(g), free(u), free(G), free(h), free(hr), free(dg0), free(du0), free(dg), free(du);
    free(gg), free(gu), free(fg), free(fu), free(dg1), free(du1);
}

// ============================================================== geglu (Gemma)

// PyTorch's gelu(approximate="tanh"), in fp64
static double gelu_tanh_d(double g) { return 0.5 * g * (1 + tanh(sqrt(2 / M_PI) * (g + 0.044715 * g * g * g))); }

static void test_geglu(void) {
    const long n = 4096 + 37;  // crosses the 4096-element block, 16-lane tail
    float *g = randn(n, 3), *u = randn(n, 1), *G = randn(n, 1), *h = malloc(sizeof(float) * n);
    g[0] = -100.0f, g[1] = 100.0f, g[2] = -10.0f, g[3] = 0.0f;  // saturated and edge values
    double *hr = malloc(sizeof(double) * n);
    for (long i = 0; i < n; i++) hr[i] = gelu_tanh_d(g[i]) * u[i];
    k_geglu_fwd(h, g, u, n);
    {
        double e_ = rel_err_d(h, hr, n);
        CHECK(e_ < FWD_TOL, "geglu fwd vs fp64 ref (err %.1e)", e_);
    }
    // Elementwise, so element i's finite difference involves only element i.
    float *dg0 = randn(n, 1), *du0 = randn(n, 1), *dg = copy_f(dg0, n), *du = copy_f(du0, n);
    k_geglu_bwd(dg, du, G, g, u, n);
    float *gg = diff(dg, dg0, n), *gu = diff(du, du0, n);
    float *fg = malloc(sizeof(float) * n), *fu = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) {
        double gi = g[i], ui = u[i];
        fg[i] = (float)(G[i] * (gelu_tanh_d(gi + FD_H) - gelu_tanh_d(gi - FD_H)) * ui / (2 * FD_H));
        fu[i] = (float)(G[i] * gelu_tanh_d(gi) * ((ui + FD_H) - (ui - FD_H)) / (2 * FD_H));
    }
    {
        double e_ = test_rel_err(gg, fg, n, 1e-12);
        CHECK(e_ < BWD_TOL, "geglu bwd dgate vs FD (err %.1e)", e_);
    }
    {
        double e_ = test_rel_err(gu, fu, n, 1e-12);
        CHECK(e_ < BWD_TOL, "geglu bwd dup vs FD (err %.1e)", e_);
    }
    float *dg1 = copy_f(dg, n), *du1 = copy_f(du, n);
    k_geglu_bwd(dg, du, G, g, u, n);
    CHECK(accum_err(dg0, dg1, dg, n) < 1e-6 && accum_err(du0, du1, du, n) < 1e-6, "geglu bwd accumulates (+=)");
    free(g), free(u), free(G), free(h), free(hr), free(dg0), free(du0), free(dg), free(du);
    free(gg), free(gu), free(fg), free(fu), free(dg1), free(du1);
}

// ============================================================== lm-head

typedef struct {
    int N, D, V;
    const int *tg;
    double *h, *W, *gl, *ge;  // ge == NULL: no entropy term
} lm_ctx;

// logp, entropy and lse of row i, fp64, straight from the definitions.
static void lm_ref_row(const lm_ctx *c, int i, double *logp, double *H, double *lse) {
    if (c->tg[i] < 0) {
        *logp = *H = *lse = 0;
        return;
    }
    double *z = calloc(c->V, sizeof(double)), m = -INFINITY, s = 0;
    for (int j = 0; j < c->V; j++) {
        z[j] = 0;
        for (int e = 0; e < c->D; e++) z[j] += c->h[(long)i * c->D + e] * c->W[(long)j * c->D + e];
        if (z[j] > m) m = z[j];
    }
    for (int j = 0; j < c->V; j++) s += exp(z[j] - m);
    *lse = m + log(s);
    *logp = z[c->tg[i]] - *lse;
    *H = 0;
    for (int j = 0; j < c->V; j++) {
        double lp = z[j] - *lse;
        *H -= exp(lp) * lp;
    }
    free(z);
}

static int lm_fd_row_only;  // perturbing h: only that row's loss changes
static double lm_loss(void *vc, long idx) {
    lm_ctx *c = vc;
    double L = 0, lp, H, lse;
    for (int i = 0; i < c->N; i++) {
        if (lm_fd_row_only && i != idx / c->D) continue;
        lm_ref_row(c, i, &lp, &H, &lse);
        L += c->gl[i] * lp + (c->ge ? c->ge[i] * H : 0);
    }
    return L;
}

static void test_lmhead(int N, int D, int V, int rows_chunk, int vocab_chunk, int full_fd, float hscale) {
    k_lmhead_set_chunks(rows_chunk, vocab_chunk);
    int *tg = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tg[i] = (int)rng_below(&R, V);
    tg[0] = V - 1, tg[1] = 0;            // the two vocabulary ends (last chunk is a tail)
    tg[2] = -1, tg[N - 1] = -1;          // masked rows, including the last one
    if (N > 7) tg[7] = -1;
    float *h = randn((long)N * D, hscale), *W = randn((long)V * D, 1), *gl = randn(N, 1), *ge = randn(N, 1);
    gl[3] = 0, ge[3] = 0.5f;             // entropy gradient only
    gl[4] = 0, ge[4] = 0;                // no gradient at all: skipped by the backward
    lm_ctx c = {N, D, V, tg, to_double(h, (long)N * D), to_double(W, (long)V * D), to_double(gl, N), NULL};
    float *scratch = malloc(sizeof(float) * k_lmhead_scratch_floats(N, D, V));
    float *logp = malloc(sizeof(float) * N), *ent = malloc(sizeof(float) * N), *lse = malloc(sizeof(float) * N);
    float *logp2 = malloc(sizeof(float) * N), *lse2 = malloc(sizeof(float) * N);
    double *rl = malloc(sizeof(double) * N), *rh = malloc(sizeof(double) * N), *rs = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) lm_ref_row(&c, i, &rl[i], &rh[i], &rs[i]);
    char shape[96];
    snprintf(shape, sizeof shape, "N=%d D=%d V=%d chunks %dx%d", N, D, V, rows_chunk, vocab_chunk);

    k_lmhead_logprob_fwd(logp, ent, lse, h, W, tg, N, D, V, scratch);
    CHECK(rel_err_d(logp, rl, N) < FWD_TOL && rel_err_d(lse, rs, N) < FWD_TOL,
          "lmhead fwd logp, lse vs fp64 ref (%s)", shape);
    {
        double e_ = rel_err_d(ent, rh, N);
        CHECK(e_ < FWD_TOL, "lmhead fwd entropy vs fp64 ref (%s) (err %.1e)", shape, e_);
    }
    k_lmhead_logprob_fwd(logp2, NULL, lse2, h, W, tg, N, D, V, scratch);
    CHECK(test_rel_err(logp2, logp, N, 1e-30) < 1e-6 && test_rel_err(lse2, lse, N, 1e-30) < 1e-6,
          "lmhead fwd without entropy gives the same logp (%s)", shape);
    CHECK(logp[2] == 0 && ent[2] == 0 && logp[N - 1] == 0 && ent[N - 1] == 0,
          "lmhead fwd: masked targets give logp = entropy = 0");

    // With the entropy term (dentropy nonzero) and without it.
    for (int with_ent = 1; with_ent >= 0; with_ent--) {
        c.ge = with_ent ? to_double(ge, N) : NULL;
        long nh = (long)N * D, nw = (long)V * D;
        float *dh0 = randn(nh, 1), *dW0 = randn(nw, 1), *dh = copy_f(dh0, nh), *dW = copy_f(dW0, nw);
        k_lmhead_logprob_bwd(dh, dW, gl, with_ent ? ge : NULL, h, W, tg, lse, with_ent ? ent : NULL, N, D, V, scratch);
        float *gh = diff(dh, dh0, nh), *gw = diff(dW, dW0, nw);
        // Large case: FD on every 53rd h entry and on the first and last W entries (the
        // last is in the vocabulary tail chunk).
        long sh = full_fd ? 1 : 53, sw = full_fd ? 1 : nw - 1;
        lm_fd_row_only = 1;
        {
            double e_ = fd_check(lm_loss, &c, c.h, nh, sh, gh);
            CHECK(e_ < BWD_TOL, "lmhead bwd dh vs FD (entropy=%d, %s) (err %.1e)", with_ent, shape, e_);
        }
        lm_fd_row_only = 0;
        {
            double e_ = fd_check(lm_loss, &c, c.W, nw, sw, gw);
            CHECK(e_ < BWD_TOL, "lmhead bwd dW vs FD (entropy=%d, %s) (err %.1e)", with_ent, shape, e_);
        }
        if (!full_fd) {
            // All elements against the analytic fp64 gradient (the formula that the small
            // cases verify by finite differences).
            double *rgh = calloc(nh, sizeof(double)), *rgw = calloc(nw, sizeof(double));
            for (int i = 0; i < N; i++) {
                if (tg[i] < 0) continue;
                double e = with_ent ? ge[i] : 0;
                for (int j = 0; j < V; j++) {
                    double z = 0;
                    for (int a = 0; a < D; a++) z += c.h[(long)i * D + a] * c.W[(long)j * D + a];
                    double p = exp(z - rs[i]);
                    double dz = (j == tg[i] ? gl[i] : 0) - p * (gl[i] + e * (z - rs[i] + rh[i]));
                    for (int a = 0; a < D; a++) {
                        rgh[(long)i * D + a] += dz * c.W[(long)j * D + a];
                        rgw[(long)j * D + a] += dz * c.h[(long)i * D + a];
                    }
                }
            }
            CHECK(rel_err_d(gh, rgh, nh) < BWD_TOL && rel_err_d(gw, rgw, nw) < BWD_TOL,
                  "lmhead bwd dh, dW vs analytic fp64 ref, all elements (entropy=%d, %s)", with_ent, shape);
            free(rgh), free(rgw);
        }
        // dW = NULL gives the same dh; a second call accumulates.
        float *dh2 = copy_f(dh0, nh);
        k_lmhead_logprob_bwd(dh2, NULL, gl, with_ent ? ge : NULL, h, W, tg, lse, with_ent ? ent : NULL, N, D, V, scratch);
        CHECK(test_rel_err(dh2, dh, nh, 1e-30) == 0, "lmhead bwd with dW=NULL (entropy=%d, %s)", with_ent, shape);
        float *dh1 = copy_f(dh, nh), *dW1 = copy_f(dW, nw);
        k_lmhead_logprob_bwd(dh, dW, gl, with_ent ? ge : NULL, h, W, tg, lse, with_ent ? ent : NULL, N, D, V, scratch);
        CHECK(accum_err(dh0, dh1, dh, nh) < 1e-6 && accum_err(dW0, dW1, dW, nw) < 1e-6,
              "lmhead bwd accumulates (+=) (entropy=%d, %s)", with_ent, shape);
        free(c.ge), free(dh0), free(dW0), free(dh), free(dW), free(gh), free(gw), free(dh2), free(dh1), free(dW1);
    }
    free(tg), free(h), free(W), free(gl), free(ge), free(c.h), free(c.W), free(c.gl), free(scratch);
    free(logp), free(ent), free(lse), free(logp2), free(lse2), free(rl), free(rh), free(rs);
    k_lmhead_set_chunks(512, 2048);
}

// ============================================================== sgemm

// k_sgemm against a naive fp64 product, all four transpose cases, shapes big enough
// for the threaded split (by rows when M >= N, by columns otherwise), odd sizes,
// leading dimensions larger than the rows, alpha and beta.
static void test_sgemm(int M, int N, int K) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
            long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc;
            float *A = randn(na, 1), *B = randn(nb, 1), *C = randn(nc, 1);
            double *Cr = malloc(sizeof(double) * nc);
            const float alpha = 0.75f, beta = -0.5f;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < ldc; j++) {
                    if (j >= N) {  // padding columns must stay untouched
                        Cr[(long)i * ldc + j] = C[(long)i * ldc + j];
                        continue;
                    }
                    double acc = 0;
                    for (int p = 0; p < K; p++)
                        acc += (double)(ta ? A[(long)p * lda + i] : A[(long)i * lda + p]) *
                               (tb ? B[(long)j * ldb + p] : B[(long)p * ldb + j]);
                    Cr[(long)i * ldc + j] = alpha * acc + beta * C[(long)i * ldc + j];
                }
            k_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            {
                double e_ = rel_err_d(C, Cr, nc);
                CHECK(e_ < FWD_TOL, "k_sgemm transA=%d transB=%d M=%d N=%d K=%d vs fp64 ref (err %.1e)", ta, tb, M, N, K, e_);
            }
            free(A), free(B), free(C), free(Cr);
        }
}

// The same product with 1, 2 and 3 threads, bit for bit: k_sgemm cuts C by its shape
// alone, never by the thread count.
static void test_sgemm_threads(int M, int N, int K, int ta, int tb) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    float *A = randn((long)M * K, 1), *B = randn((long)K * N, 1);
    float *C[3];
    int nt = omp_get_max_threads(), same = 1;
    for (int t = 0; t < 3; t++) {
        C[t] = randn((long)M * N, 1);
        omp_set_num_threads(t + 1);
        k_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C[t], N);
        if (t) same &= memcmp(C[t], C[0], sizeof(float) * (size_t)M * N) == 0;
    }
    omp_set_num_threads(nt);
    CHECK(same, "k_sgemm transA=%d transB=%d M=%d N=%d K=%d: bit-identical with 1, 2 and 3 threads", ta, tb, M, N, K);
    for (int t = 0; t < 3; t++) free(C[t]);
    free(A), free(B);
}

// ============================================================== misc

static void test_elementwise_and_table(void) {
    const long n = 1000;
    float *y = randn(n, 1), *x = randn(n, 1), *y0 = copy_f(y, n);
    k_add_inplace(y, x, n);
    int ok = 1;
    for (long i = 0; i < n; i++) ok &= y[i] == y0[i] + x[i];
    CHECK(ok, "add_inplace");
    k_zero(y, n);
    ok = 1;
    for (long i = 0; i < n; i++) ok &= y[i] == 0.0f;
    CHECK(ok, "zero");
    const struct kernels *K = &kernels_cpu;
    CHECK(K->linear_fwd == k_linear_fwd && K->linear_bwd == k_linear_bwd && K->embedding_fwd == k_embedding_fwd &&
              K->embedding_bwd == k_embedding_bwd && K->rmsnorm_fwd == k_rmsnorm_ofs_fwd &&
              K->rmsnorm_bwd == k_rmsnorm_ofs_bwd && K->rope_fwd == k_rope_fwd && K->rope_bwd == k_rope_bwd &&
              K->attention_fwd == k_attention_win_fwd && K->attention_bwd == k_attention_win_bwd &&
              K->swiglu_fwd == k_swiglu_fwd && K->swiglu_bwd == k_swiglu_bwd &&
              K->geglu_fwd == k_geglu_fwd && K->geglu_bwd == k_geglu_bwd &&
              K->lmhead_logprob_fwd == k_lmhead_logprob_fwd && K->lmhead_logprob_bwd == k_lmhead_logprob_bwd &&
              K->sgemm == k_sgemm && K->attention_scratch_floats == k_attention_scratch_floats &&
              K->lmhead_scratch_floats == k_lmhead_scratch_floats && K->attention_cache_fwd == k_attention_cache_fwd &&
              K->attention_cache_max_head_dim == k_attention_cache_max_head_dim &&
              K->linear_rows_fwd == k_linear_rows_fwd && K->linear_rows_max == k_linear_rows_max &&
              K->contrastive_scratch_floats == k_contrastive_scratch_floats && K->contrastive_prob == k_contrastive_prob &&
              K->add_inplace == k_add_inplace && K->zero == k_zero && K->lmhead_logprob_row == k_lmhead_logprob_row,
          "kernels_cpu table is complete (%s)", K->name);
    free(y), free(x), free(y0);
}

int main(void) {
    rng_seed(&R, 1234);
    test_sgemm(67, 45, 200);   // split by rows
    test_sgemm(40, 133, 101);  // split by columns
    test_sgemm(5, 3, 2);       // below the threading threshold
    test_sgemm_threads(1000, 77, 96, 0, 1);   // rows, ragged blocks
    test_sgemm_threads(45, 3001, 64, 0, 0);   // columns (an lm-head's shape)
    test_sgemm_threads(130, 256, 333, 1, 0);  // a weight gradient's shape
    test_linear(1);
    test_linear(0);
    test_embedding();
    test_rmsnorm(6, 37, 0.0f);
    test_rmsnorm(3, 300, 0.0f);
    test_rmsnorm(2, 1030, 0.0f);  // above SMALL_D: the column-blocked dw path
    test_rmsnorm(6, 37, 1.0f);    // Gemma's 1 + w
    test_rmsnorm(2, 1030, 1.0f);
    test_rope(22);
    test_rope(140);
    const int cu3[4] = {0, 5, 6, 15};  // sequences of lengths 5, 1, 9
    test_attention(cu3, 3, 4, 2, 20, 1, 0);  // GQA, 2 query heads per kv head
    test_attention(cu3, 3, 2, 2, 20, 1, 0);  // plain multi-head
    test_attention(cu3, 3, 3, 1, 20, 1, 0);  // multi-query
    test_attention(cu3, 3, 4, 2, 20, 1, 3);  // sliding window 3, shorter than two sequences
    const int cub[4] = {0, 70, 201, 204};  // lengths 70, 131, 3: several 64-row tiles
    test_attention(cub, 3, 2, 1, 24, 0, 0);
    // windows that start key tiles late (whole tiles skipped), hide whole tiles from some
    // rows of a query block (70 % 64), and one longer than every sequence
    test_attention(cub, 3, 2, 1, 24, 0, 70);
    test_attention(cub, 3, 2, 1, 24, 0, 5);
    test_attention(cub, 3, 2, 1, 24, 0, 1000);
    test_swiglu();
    test_geglu();
    // Small chunks so that rows and vocabulary both span several chunks with tails.
    test_lmhead(11, 13, 53, 4, 16, 1, 1.0f);
    // Default chunks (512 rows, 2048 vocab) with a vocab tail, more rows than a chunk,
    // and logits of size ~20 (stability of the online log-sum-exp).
    test_lmhead(515, 8, 2048 + 37, 512, 2048, 0, 2.5f);
    test_elementwise_and_table();
    return test_done();
}
