#include "objectives/grpo.h"
#include <math.h>
#include <string.h>

// ---- advantages ----------------------------------------------------------------------------------

static const char *const scale_names[GRPO_N_SCALE] = {"group", "batch", "none"};

int grpo_scale_parse(const char *name) {
    for (int i = 0; i < GRPO_N_SCALE; i++)
        if (strcmp(name, scale_names[i]) == 0) return i;
    if (strcmp(name, "true") == 0) return GRPO_SCALE_GROUP;
    if (strcmp(name, "false") == 0) return GRPO_SCALE_NONE;
    return -1;
}

const char *grpo_scale_name(grpo_scale s) { return (unsigned)s < GRPO_N_SCALE ? scale_names[s] : "?"; }

// nanmean and Bessel nanstd of r[0..n): *mean NaN if no value, *std NaN if fewer than 2.
static void nan_mean_std(const double *r, int n, double *mean, double *std) {
    double s = 0, c = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(r[i])) s += r[i], c += 1;
    *mean = c > 0 ? s / c : NAN;
    double v = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(r[i])) v += (r[i] - *mean) * (r[i] - *mean);
    *std = c > 1 ? sqrt(v / (c - 1)) : NAN;
}

// All non-NaN rewards of the group equal (or fewer than two of them).
static int all_equal(const double *r, int n) {
    int seen = 0;
    double first = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(r[i])) continue;
        if (!seen) first = r[i], seen = 1;
        else if (r[i] != first) return 0;
    }
    return 1;
}

int grpo_advantages(int n, int num_generations, const double *reward, grpo_scale scale, double std_eps, float *adv,
                    uint8_t *group_all_equal, grpo_reward_stats *st, tm_error *err) {
    int G = num_generations;
    if (G < 1 || n < 0 || n % G) return tm_fail(err, "grpo: %d rewards do not fill groups of num_generations %d", n, G);
    if ((unsigned)scale >= GRPO_N_SCALE) return tm_fail(err, "grpo: unknown scale_rewards %d", (int)scale);
    if (!(std_eps >= 0)) return tm_fail(err, "grpo: std eps must be >= 0 (got %g)", std_eps);
    for (int i = 0; i < n; i++)
        if (isinf(reward[i])) return tm_fail(err, "grpo: reward %d is infinite", i);

    double bmean, bstd;
    nan_mean_std(reward, n, &bmean, &bstd);
    double batch_std = n > 1 ? bstd : 0;  // TRL: zeros for a batch of one
    grpo_reward_stats s = {0};
    double zero_std = 0;
    for (int g = 0; g < n / G; g++) {
        const double *r = reward + (size_t)g * G;
        double mean, std;
        nan_mean_std(r, G, &mean, &std);
        if (G == 1) std = 0;  // TRL: a group of one has std 0, so A = 0
        if (scale == GRPO_SCALE_BATCH) std = batch_std;
        // torch.isclose(std, 0): |std| <= atol 1e-8; NaN is not close.
        int zero = !isnan(std) && fabs(std) <= 1e-8;
        zero_std += zero * G;
        for (int k = 0; k < G; k++) {
            double a = r[k] - mean;
            if (scale != GRPO_SCALE_NONE) a /= std + std_eps;
            adv[(size_t)g * G + k] = isnan(a) ? 0.0f : (float)a;  // unscorable: no signal
            s.unscorable += isnan(r[k]);
        }
        int eq = all_equal(r, G);
        if (group_all_equal) group_all_equal[g] = (uint8_t)eq;
        s.groups_all_equal += eq;
    }
    s.reward = isnan(bmean) ? 0 : bmean;
    s.reward_std = isnan(bstd) ? 0 : bstd;
    s.frac_reward_zero_std = n > 0 ? zero_std / n : 0;
    if (st) *st = s;
    return 0;
}

// ---- policy loss ---------------------------------------------------------------------------------

static const char *const loss_names[GRPO_N_LOSS] = {"grpo", "bnpo", "dr_grpo", "dapo"};

grpo_hparams grpo_hparams_default(void) {
    grpo_hparams h = {GRPO_LOSS_DAPO, 0.2, 0.2, 0.0, 0.0, KL_K3, 0};
    return h;
}

int grpo_loss_type_parse(const char *name) {
    for (int i = 0; i < GRPO_N_LOSS; i++)
        if (strcmp(name, loss_names[i]) == 0) return i;
    return -1;
}

const char *grpo_loss_type_name(grpo_loss_type t) { return (unsigned)t < GRPO_N_LOSS ? loss_names[t] : "?"; }

void grpo_metrics_merge(grpo_metrics *acc, const grpo_metrics *m) {
    acc->sequences += m->sequences;
    acc->tokens += m->tokens;
    acc->clip_low += m->clip_low;
    acc->clip_high += m->clip_high;
    acc->clip_region += m->clip_region;
    acc->kl_sum += m->kl_sum;
    acc->entropy_sum += m->entropy_sum;
    acc->mismatch_tokens += m->mismatch_tokens;
    acc->logp_diff_sum += m->logp_diff_sum;
    acc->prob_diff_sum += m->prob_diff_sum;
    if (m->logp_diff_max > acc->logp_diff_max) acc->logp_diff_max = m->logp_diff_max;
    if (m->prob_diff_max > acc->prob_diff_max) acc->prob_diff_max = m->prob_diff_max;
}

static int check_hparams(const seq_batch *b, const grpo_inputs *in, const grpo_hparams *h, const grpo_norm *norm,
                         tm_error *err) {
    if (seq_batch_check(b, err)) return -1;
    if (!in || !in->adv) return tm_fail(err, "grpo: the advantages are missing");
    if ((unsigned)h->loss_type >= GRPO_N_LOSS) return tm_fail(err, "grpo: unknown loss type %d", (int)h->loss_type);
    if ((unsigned)h->estimator >= KL_N_ESTIMATOR) return tm_fail(err, "grpo: unknown KL estimator %d", (int)h->estimator);
    if (!(h->epsilon >= 0 && h->epsilon < 1)) return tm_fail(err, "grpo: epsilon %g outside [0, 1)", h->epsilon);
    if (!(h->epsilon_high >= 0)) return tm_fail(err, "grpo: epsilon_high %g must be >= 0", h->epsilon_high);
    if (!(h->delta >= 0)) return tm_fail(err, "grpo: delta %g must be > 0 (or 0: off)", h->delta);
    if (!(h->beta >= 0)) return tm_fail(err, "grpo: beta %g must be >= 0", h->beta);
    if (h->beta > 0 && !b->ref_logp) return tm_fail(err, "grpo: beta %g needs the reference log-probs", h->beta);
    int per_seq = h->loss_type == GRPO_LOSS_GRPO || h->loss_type == GRPO_LOSS_DR_GRPO;
    if (per_seq && b->n_seq > 0 && !(norm->sequences > 0))
        return tm_fail(err, "grpo: loss type %s needs norm.sequences > 0 (got %g)", loss_names[h->loss_type], norm->sequences);
    if (h->loss_type == GRPO_LOSS_DR_GRPO && !(norm->max_completion_length > 0))
        return tm_fail(err, "grpo: dr_grpo needs norm.max_completion_length > 0 (got %g)", norm->max_completion_length);
    if (!per_seq && !(norm->tokens >= 0)) return tm_fail(err, "grpo: norm.tokens must be >= 0 (got %g)", norm->tokens);
    return 0;
}

// The clipped surrogate of one token: ℓ = -min(c1·A, c2·A) and dℓ/dlogπθ (autograd's, torch.min
// splitting a tie evenly). *c1_out gets c1 for the clip metrics.
static double surrogate(double rho, double A, const grpo_hparams *h, double *dl, double *c1_out) {
    double lo = 1 - h->epsilon, hi = 1 + h->epsilon_high;
    double c2 = rho < lo ? lo : rho > hi ? hi : rho;
    double dc2 = rho >= lo && rho <= hi ? rho : 0;  // d c2 / dlogπθ (clamp passes the gradient inside)
    double c1 = rho, dc1 = rho;
    if (h->delta > 0 && rho > h->delta) c1 = h->delta, dc1 = 0;
    double t1 = c1 * A, t2 = c2 * A;
    if (t1 < t2) *dl = -A * dc1;
    else if (t1 > t2) *dl = -A * dc2;
    else *dl = -A * 0.5 * (dc1 + dc2);
    *c1_out = c1;
    return -(t1 < t2 ? t1 : t2);
}

int grpo_loss(const seq_batch *b, const grpo_inputs *in, const grpo_hparams *h, const grpo_norm *norm, double *loss,
              float *dlogp, grpo_metrics *m, tm_error *err) {
    if (check_hparams(b, in, h, norm, err)) return -1;
    if (dlogp) memset(dlogp, 0, sizeof(float) * (size_t)b->n_tokens);
    grpo_metrics mm;
    memset(&mm, 0, sizeof mm);
    mm.sequences = b->n_seq;
    double lo = 1 - h->epsilon, hi = 1 + h->epsilon_high, total = 0;
    for (int i = 0; i < b->n_seq; i++) {
        int s = b->span[2 * i], e = b->span[2 * i + 1];
        double n_i = 0;
        for (int t = s; t < e; t++) n_i += !b->mask || b->mask[t];
        // The per-token factor of this sequence's tokens in L.
        double scale;
        switch (h->loss_type) {
        case GRPO_LOSS_GRPO: scale = 1.0 / ((n_i > 1 ? n_i : 1) * norm->sequences); break;
        case GRPO_LOSS_DR_GRPO: scale = 1.0 / (norm->sequences * norm->max_completion_length); break;
        default: scale = 1.0 / (norm->tokens > 1 ? norm->tokens : 1); break;
        }
        for (int t = s; t < e; t++) {
            if (b->mask && !b->mask[t]) continue;
            double lp = b->logp[t], old = in->old_logp ? in->old_logp[t] : lp;
            double rho = exp(lp - old), A = in->adv[t], w = b->weight ? b->weight[t] : 1.0;
            double dl, c1, l = surrogate(rho, A, h, &dl, &c1);
            l *= w;
            dl *= w;
            if (b->ref_logp) {
                double dk, k = kl_estimate(h->estimator, lp - b->ref_logp[t], &dk);
                if (h->kl_bias_correction) {
                    dk = dk * rho + k * rho;  // d(k ρ) = k' ρ + k ρ
                    k *= rho;
                }
                mm.kl_sum += k;
                if (h->beta > 0) {
                    l += h->beta * k;
                    dl += h->beta * dk;
                }
            }
            total += scale * l;
            if (dlogp) dlogp[t] += (float)(scale * dl);
            int low = c1 < lo && A < 0, high = c1 > hi && A > 0;
            mm.tokens += 1;
            mm.clip_low += low;
            mm.clip_high += high;
            mm.clip_region += low || high;
            if (in->entropy) mm.entropy_sum += in->entropy[t];
            if (in->sampler_logp) {
                double sp = in->sampler_logp[t], d = fabs(old - sp), pd = fabs(exp(old) - exp(sp));
                mm.mismatch_tokens += 1;
                mm.logp_diff_sum += d;
                mm.prob_diff_sum += pd;
                if (d > mm.logp_diff_max) mm.logp_diff_max = d;
                if (pd > mm.prob_diff_max) mm.prob_diff_max = pd;
            }
        }
    }
    *loss = total;
    if (m) *m = mm;
    return 0;
}
