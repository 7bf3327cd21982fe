#include "objectives/divergence.h"
#include <math.h>
#include <string.h>
#include "objectives/util.h"

static const char *const est_names[KL_N_ESTIMATOR] = {"k1", "k2", "k3", "low_var_kl"};
static const char *const div_names[DIV_N_KIND] = {"none", "reverse_kl", "forward_kl", "js", "alpha"};

int kl_estimator_parse(const char *name) {
    for (int i = 0; i < KL_N_ESTIMATOR; i++)
        if (strcmp(name, est_names[i]) == 0) return i;
    return -1;
}

const char *kl_estimator_name(kl_estimator e) { return (unsigned)e < KL_N_ESTIMATOR ? est_names[e] : "?"; }

int divergence_parse(const char *name) {
    for (int i = 0; i < DIV_N_KIND; i++)
        if (strcmp(name, div_names[i]) == 0) return i;
    return -1;
}

const char *divergence_name(divergence_kind d) { return (unsigned)d < DIV_N_KIND ? div_names[d] : "?"; }

double kl_estimate(kl_estimator e, double delta, double *d) {
    switch (e) {
    case KL_K1:
        *d = 1;
        return delta;
    case KL_K2:
        *d = delta;
        return 0.5 * delta * delta;
    case KL_K3: {
        double r = exp(-delta);
        *d = 1 - r;
        return r - 1 + delta;
    }
    case KL_LOW_VAR: {
        // verl: kl = clamp(ref - logp, -20, 20); v = clamp(e^kl - kl - 1, -10, 10).
        double kl = -delta, dkl = -1;  // d kl / dδ
        if (kl < -20 || kl > 20) {
            kl = kl < -20 ? -20 : 20;
            dkl = 0;
        }
        double r = exp(kl), v = r - kl - 1;
        if (v < -10 || v > 10) {
            *d = 0;
            return v < -10 ? -10 : 10;
        }
        *d = (r - 1) * dkl;
        return v;
    }
    default:
        *d = 0;
        return 0;
    }
}

double fdiv_generator(divergence_kind f, kl_estimator e, double alpha, double l, double *d) {
    switch (f) {
    case DIV_FORWARD_KL: {
        // δ' = logπ0 - logπθ = -l, so df/dl = -d estimate/dδ'.
        double dd, v = kl_estimate(e, -l, &dd);
        *d = -dd;
        return v;
    }
    case DIV_JS: {
        double u = exp(l), sp = obj_softplus(l) - M_LN2;  // log((1+u)/2)
        *d = u * (l - sp);
        return u * l - (u + 1) * sp;
    }
    case DIV_ALPHA: {
        double u = exp(l), v = exp((1 - alpha) * l);  // u^{1-α}
        *d = (u - v) / alpha;
        return (v - (1 - alpha) * u - alpha) / (alpha * (alpha - 1));
    }
    default:
        *d = 0;
        return 0;
    }
}

rehearsal_hparams rehearsal_hparams_default(void) {
    rehearsal_hparams h = {DIV_FORWARD_KL, KL_LOW_VAR, 0.2, 0.01};
    return h;
}

int rehearsal_loss(const seq_batch *b, const rehearsal_hparams *h, double norm_tokens, double *loss, float *dlogp,
                   rehearsal_metrics *m, tm_error *err) {
    if (seq_batch_check(b, err)) return -1;
    if (h->divergence != DIV_FORWARD_KL && h->divergence != DIV_JS && h->divergence != DIV_ALPHA)
        return tm_fail(err, "rehearsal: divergence %s is not a generator function (forward_kl, js or alpha)",
                       divergence_name(h->divergence));
    if ((unsigned)h->estimator >= KL_N_ESTIMATOR) return tm_fail(err, "rehearsal: unknown KL estimator %d", (int)h->estimator);
    if (h->divergence == DIV_ALPHA && !(h->alpha > 0 && h->alpha < 1))
        return tm_fail(err, "rehearsal: alpha must be in (0, 1) (got %g)", h->alpha);
    if (!b->ref_logp) return tm_fail(err, "rehearsal: the stored π0 log-probs (ref_logp) are missing");
    if (b->weight) return tm_fail(err, "rehearsal: token weights are not part of DPH-RL's loss");
    if (!(norm_tokens >= 0) || !isfinite(h->coef)) return tm_fail(err, "rehearsal: bad normalizer %g or coef %g", norm_tokens, h->coef);

    if (dlogp) memset(dlogp, 0, sizeof(float) * (size_t)b->n_tokens);
    double scale = h->coef / (norm_tokens > 1 ? norm_tokens : 1), sum = 0, ntok = 0;
    for (int i = 0; i < b->n_seq; i++) {
        for (int t = b->span[2 * i]; t < b->span[2 * i + 1]; t++) {
            if (b->mask && !b->mask[t]) continue;
            double d, f = fdiv_generator(h->divergence, h->estimator, h->alpha, (double)b->logp[t] - b->ref_logp[t], &d);
            sum += f;
            ntok += 1;
            if (dlogp) dlogp[t] += (float)(scale * d);
        }
    }
    *loss = scale * sum;
    if (m) {
        m->tokens = ntok;
        m->div_sum = sum;
    }
    return 0;
}
