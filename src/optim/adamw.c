#include <math.h>
#include <string.h>
#include "optim/optim.h"

void adamw_update(float *w, const float *g, float *m, float *v, size_t n, const adamw_hparams *h, double weight_decay,
                  int64_t step) {
    const float b1 = (float)h->beta1, b2 = (float)h->beta2, eps = (float)h->eps;
    const float decay = (float)(1.0 - h->lr * weight_decay);
    const double bc1 = 1.0 - pow(h->beta1, (double)step), bc2 = 1.0 - pow(h->beta2, (double)step);
    const float step_size = (float)(h->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float wi = w[i] * decay;
        w[i] = wi - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

double grad_norm(const float *g, size_t n) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double clip_grad_norm(float *g, size_t n, double max_norm) {
    double norm = grad_norm(g, n);
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float c = (float)coef;
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < n; i++) g[i] *= c;
        }
    }
    return norm;
}

int lr_schedule_parse(const char *name, lr_schedule *s) {
    static const struct { const char *n; lr_schedule s; } names[] = {
        {"constant", SCHED_CONSTANT}, {"constant_with_warmup", SCHED_CONSTANT_WITH_WARMUP},
        {"linear", SCHED_LINEAR}, {"cosine", SCHED_COSINE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].n)) { *s = names[i].s; return 0; }
    return -1;
}

double lr_multiplier(lr_schedule s, int64_t step, int64_t warmup, int64_t total) {
    // transformers' constant schedule has no warmup at all
    if (s == SCHED_CONSTANT) return 1.0;
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    if (s == SCHED_CONSTANT_WITH_WARMUP) return 1.0;
    double span = (double)(total - warmup > 1 ? total - warmup : 1);
    double progress = (double)(step - warmup) / span;
    if (s == SCHED_LINEAR) return progress >= 1 ? 0.0 : 1.0 - progress;
    // cosine with num_cycles = 0.5
    double c = 0.5 * (1.0 + cos(M_PI * progress));
    return c > 0 ? c : 0.0;
}
