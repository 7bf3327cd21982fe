#include "objectives/ppo.h"
#include <math.h>
#include <string.h>

ppo_hparams ppo_hparams_default(void) {
    ppo_hparams h = {0.2, 0.2, 0.1, 1.0, 0.95, 0.05, KL_K1, 0};
    return h;
}

static int check(const seq_batch *b, const ppo_hparams *h, tm_error *err) {
    if (seq_batch_check(b, err)) return -1;
    if ((unsigned)h->estimator >= KL_N_ESTIMATOR) return tm_fail(err, "ppo: unknown KL estimator %d", (int)h->estimator);
    if (!(h->cliprange >= 0 && h->cliprange < 1)) return tm_fail(err, "ppo: cliprange %g outside [0, 1)", h->cliprange);
    if (!(h->cliprange_value >= 0) || !isfinite(h->cliprange_value))
        return tm_fail(err, "ppo: cliprange_value %g must be a finite number >= 0", h->cliprange_value);
    if (!(h->vf_coef >= 0) || !isfinite(h->vf_coef)) return tm_fail(err, "ppo: vf_coef %g must be a finite number >= 0", h->vf_coef);
    if (!(h->gamma >= 0 && h->gamma <= 1)) return tm_fail(err, "ppo: gamma %g outside [0, 1]", h->gamma);
    if (!(h->lam >= 0 && h->lam <= 1)) return tm_fail(err, "ppo: lam %g outside [0, 1]", h->lam);
    if (!(h->kl_coef >= 0) || !isfinite(h->kl_coef)) return tm_fail(err, "ppo: kl_coef %g must be a finite number >= 0", h->kl_coef);
    return 0;
}

int ppo_rewards(const seq_batch *b, const double *scores, const ppo_hparams *h, float *rewards, double *non_score,
                double *kl_sum, tm_error *err) {
    if (check(b, h, err)) return -1;
    memset(rewards, 0, sizeof(float) * (size_t)b->n_tokens);
    for (int i = 0; i < b->n_seq; i++) {
        int s = b->span[2 * i], e = b->span[2 * i + 1], last = -1;
        double ns = 0, ks = 0;
        for (int t = s; t < e; t++) {
            if (b->mask && !b->mask[t]) continue;
            last = t;
            if (!b->ref_logp) continue;
            double d, k = kl_estimate(h->estimator, (double)b->logp[t] - b->ref_logp[t], &d);
            ks += k;
            if (!h->kl_loss) {
                rewards[t] = (float)(-h->kl_coef * k);
                ns += rewards[t];
            }
        }
        if (last >= 0) rewards[last] = (float)((double)rewards[last] + scores[i]);
        if (non_score) non_score[i] = ns;
        if (kl_sum) kl_sum[i] = ks;
    }
    return 0;
}

int ppo_gae(const seq_batch *b, const float *rewards, const float *values, double gamma, double lam, float *adv, float *ret,
            tm_error *err) {
    if (seq_batch_check(b, err)) return -1;
    if (!(gamma >= 0 && gamma <= 1) || !(lam >= 0 && lam <= 1)) return tm_fail(err, "ppo: gamma %g and lam %g must be in [0, 1]", gamma, lam);
    for (int i = 0; i < b->n_seq; i++) {
        int s = b->span[2 * i], e = b->span[2 * i + 1];
        double next_v = 0, next_a = 0;
        for (int t = e - 1; t >= s; t--) {
            if (b->mask && !b->mask[t]) {  // a tool observation or the prompt: skipped, carried through
                adv[t] = ret[t] = 0;
                continue;
            }
            double delta = rewards[t] + gamma * next_v - values[t];
            double a = delta + gamma * lam * next_a;
            adv[t] = (float)a;
            ret[t] = (float)(a + values[t]);
            next_v = values[t];
            next_a = a;
        }
    }
    return 0;
}

int ppo_whiten(int n, const uint8_t *mask, float *x, int shift_mean) {
    double s = 0, c = 0;
    for (int i = 0; i < n; i++)
        if (!mask || mask[i]) s += x[i], c += 1;
    if (c == 0) return 0;
    double mean = s / c, v = 0;
    for (int i = 0; i < n; i++)
        if (!mask || mask[i]) v += (x[i] - mean) * (x[i] - mean);
    double scale = c > 1 ? 1.0 / sqrt(v / c * (c / (c - 1)) + 1e-8) : 1.0;
    for (int i = 0; i < n; i++)
        if (!mask || mask[i]) x[i] = (float)((x[i] - mean) * scale + (shift_mean ? 0 : mean));
    return (int)c;
}

void ppo_metrics_merge(ppo_metrics *acc, const ppo_metrics *m) {
    acc->tokens += m->tokens;
    acc->pg_sum += m->pg_sum;
    acc->vf_sum += m->vf_sum;
    acc->kl_sum += m->kl_sum;
    acc->pg_clip += m->pg_clip;
    acc->vf_clip += m->vf_clip;
    acc->approxkl_sum += m->approxkl_sum;
    acc->ratio_sum += m->ratio_sum;
    acc->entropy_sum += m->entropy_sum;
    acc->vpred_sum += m->vpred_sum;
    acc->verr_sum += m->verr_sum;
}

// max(a, b) and its partial derivatives (torch.max: a tie splits the gradient evenly).
static double max2(double a, double b, double *da, double *db) {
    if (a > b) { *da = 1, *db = 0; return a; }
    if (b > a) { *da = 0, *db = 1; return b; }
    *da = *db = 0.5;
    return a;
}

int ppo_loss(const seq_batch *b, const ppo_inputs *in, const ppo_hparams *h, double norm_tokens, double *loss, float *dlogp,
             float *dvalue, ppo_metrics *m, tm_error *err) {
    if (check(b, h, err)) return -1;
    if (!in || !in->adv || !in->ret || !in->values || !in->old_values || !in->old_logp)
        return tm_fail(err, "ppo: advantages, returns, values, old values and old log-probs are required");
    if (h->kl_loss && h->kl_coef > 0 && !b->ref_logp) return tm_fail(err, "ppo: the KL loss needs the reference log-probs");
    if (!(norm_tokens >= 0)) return tm_fail(err, "ppo: norm_tokens must be >= 0 (got %g)", norm_tokens);
    if (dlogp) memset(dlogp, 0, sizeof(float) * (size_t)b->n_tokens);
    if (dvalue) memset(dvalue, 0, sizeof(float) * (size_t)b->n_tokens);
    double scale = 1.0 / (norm_tokens > 1 ? norm_tokens : 1), lo = 1 - h->cliprange, hi = 1 + h->cliprange, total = 0;
    ppo_metrics mm;
    memset(&mm, 0, sizeof mm);
    for (int i = 0; i < b->n_seq; i++)
        for (int t = b->span[2 * i]; t < b->span[2 * i + 1]; t++) {
            if (b->mask && !b->mask[t]) continue;
            double lp = b->logp[t], diff = lp - in->old_logp[t], rho = exp(diff), A = in->adv[t];
            // policy: max(-Aρ, -A·clip(ρ)); d/dlogπθ of ρ is ρ, of clip(ρ) is ρ inside the range
            double c = rho < lo ? lo : rho > hi ? hi : rho, dc = rho >= lo && rho <= hi ? rho : 0;
            double d1, d2, pg = max2(-A * rho, -A * c, &d1, &d2);
            double dpg = d1 * (-A * rho) + d2 * (-A * dc);
            // value: 0.5·max((V - R)², (clip(V, V_old ± ε_v) - R)²)
            double V = in->values[t], Vo = in->old_values[t], R = in->ret[t];
            double vlo = Vo - h->cliprange_value, vhi = Vo + h->cliprange_value;
            double Vc = V < vlo ? vlo : V > vhi ? vhi : V, dVc = V >= vlo && V <= vhi ? 1 : 0;
            double e1 = (V - R) * (V - R), e2 = (Vc - R) * (Vc - R);
            double g1, g2, vf = 0.5 * max2(e1, e2, &g1, &g2);
            double dvf = 0.5 * (g1 * 2 * (V - R) + g2 * 2 * (Vc - R) * dVc);
            double l = pg + h->vf_coef * vf, dl = dpg;
            if (h->kl_loss && b->ref_logp) {
                double dk, k = kl_estimate(h->estimator, lp - b->ref_logp[t], &dk);
                mm.kl_sum += k;
                l += h->kl_coef * k;
                dl += h->kl_coef * dk;
            }
            total += scale * l;
            if (dlogp) dlogp[t] = (float)(scale * dl);
            if (dvalue) dvalue[t] = (float)(scale * h->vf_coef * dvf);
            mm.tokens += 1;
            mm.pg_sum += pg;
            mm.vf_sum += vf;
            mm.pg_clip += -A * c > -A * rho;
            mm.vf_clip += e2 > e1;
            mm.approxkl_sum += 0.5 * diff * diff;
            mm.ratio_sum += rho;
            if (in->entropy) mm.entropy_sum += in->entropy[t];
            mm.vpred_sum += V;
            mm.verr_sum += e1;
        }
    *loss = total;
    if (m) *m = mm;
    return 0;
}
