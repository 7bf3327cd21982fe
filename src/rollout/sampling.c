// rollout/sampling.c: see sampling.h.
#include "rollout/sampling.h"
#include <math.h>
#include <stdlib.h>

void sample_params_default(sample_params *p) {
    p->temperature = 1.0;
    p->top_p = 1.0;
    p->top_k = 0;
    p->min_p = 0.0;
}

int sample_params_check(const sample_params *p, tm_error *err) {
    // NaN fails every comparison, so each test is written to fail on it
    if (!(p->temperature >= 0 && isfinite(p->temperature)))
        return tm_fail(err, "--temperature must be a finite number >= 0 (0: greedy), got %g", p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1)) return tm_fail(err, "--top-p must be in (0, 1] (1: off), got %g", p->top_p);
    if (p->top_k < 0) return tm_fail(err, "--top-k must be >= 0 (0: off), got %d", p->top_k);
    if (!(p->min_p >= 0 && p->min_p <= 1)) return tm_fail(err, "--min-p must be in [0, 1] (0: off), got %g", p->min_p);
    return 0;
}

int sample_scratch_init(sample_scratch *s, int V) {
    s->V = V;
    s->idx = malloc(sizeof(int) * (size_t)V);
    s->p = malloc(sizeof(float) * (size_t)V);
    return s->idx && s->p ? 0 : -1;
}

void sample_scratch_free(sample_scratch *s) {
    free(s->idx);
    free(s->p);
    s->idx = NULL;
    s->p = NULL;
}

float sample_logprob(const float *z, int V, int tok, double T) {
    float mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = z[j] > mx ? z[j] : mx;
    double invT = 1.0 / T, s = 0.0;
    for (int j = 0; j < V; j++) s += exp(((double)z[j] - mx) * invT);
    return (float)(((double)z[tok] - mx) * invT - log(s));
}

static int by_prob_desc(const void *a, const void *b, void *ctx) {
    const float *g_p = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (g_p[i] > g_p[j]) return -1;
    if (g_p[i] < g_p[j]) return 1;
    return i < j ? -1 : i > j;
}

int sample_token(const float *z, int V, const sample_params *sp, rng *r, sample_scratch *s, float *logp) {
    int best = 0;
    for (int j = 1; j < V; j++)
        if (z[j] > z[best]) best = j;
    int tok = best;
    if (sp->temperature > 0.0) {
        // p_j = exp((z_j - z_max) / T), unnormalized; p_max = 1.
        double invT = 1.0 / sp->temperature, total = 0.0;
        float *p = s->p;
        for (int j = 0; j < V; j++) {
            p[j] = (float)exp(((double)z[j] - z[best]) * invT);
            total += p[j];
        }
        int k = sp->top_k > 0 && sp->top_k < V ? sp->top_k : V;
        int filt_p = sp->top_p < 1.0, filt_min = sp->min_p > 0.0;
        if (k == V && !filt_p) {
            if (!filt_min) {  // plain sampling: walk the vocabulary in id order
                double u = rng_double(r) * total, c = 0.0;
                tok = V - 1;
                for (int j = 0; j < V; j++) {
                    c += p[j];
                    if (u < c) { tok = j; break; }
                }
                while (p[tok] == 0.0f && tok > 0) tok--;  // u at the very top: last nonzero
            } else {
                double thr = sp->min_p, sum = 0.0;  // p_max = 1
                for (int j = 0; j < V; j++)
                    if (p[j] >= thr) sum += p[j];
                double u = rng_double(r) * sum, c = 0.0;
                tok = best;
                for (int j = 0; j < V; j++)
                    if (p[j] >= thr) {
                        c += p[j];
                        tok = j;
                        if (u < c) break;
                    }
            }
        } else {
            // Candidates: p_j >= thr. They are the top of the sorted order, so the kept
            // prefix lies among them once there are >= k of them, or they hold >= top_p of
            // the mass of the top-k set (which they then include), or thr reaches 0.
            double thr = 1e-3;
            int nc;
            for (;;) {
                nc = 0;
                double mass = 0.0;
                for (int j = 0; j < V; j++)
                    if (p[j] >= thr) { s->idx[nc++] = j; mass += p[j]; }
                if (thr == 0.0 || nc >= k) break;
                if (filt_p && k == V && mass >= sp->top_p * total) break;
                thr = thr > 1e-30 ? thr * 1e-4 : 0.0;
            }
            qsort_r(s->idx, (size_t)nc, sizeof(int), by_prob_desc, p);
            int keep = nc < k ? nc : k;
            if (filt_p) {
                double mk = 0.0;  // mass of the top-k set
                if (k == V) mk = total;
                else for (int i = 0; i < keep; i++) mk += p[s->idx[i]];
                double c = 0.0, target = sp->top_p * mk;
                int i = 0;
                while (i < keep) {
                    c += p[s->idx[i++]];
                    if (c >= target) break;
                }
                keep = i;
            }
            if (filt_min) {
                int i = 0;
                while (i < keep && p[s->idx[i]] >= sp->min_p) i++;
                keep = i > 0 ? i : 1;
            }
            if (keep < 1) keep = 1;
            double sum = 0.0;
            for (int i = 0; i < keep; i++) sum += p[s->idx[i]];
            double u = rng_double(r) * sum, c = 0.0;
            tok = s->idx[keep - 1];
            for (int i = 0; i < keep; i++) {
                c += p[s->idx[i]];
                if (u < c) { tok = s->idx[i]; break; }
            }
        }
    }
    if (logp) *logp = sample_logprob(z, V, tok, sp->temperature > 0.0 ? sp->temperature : 1.0);
    return tok;
}
