#include "objectives/dpo.h"
#include <math.h>
#include <string.h>
#include "objectives/util.h"

static const char *const loss_names[DPO_N_LOSS] = {"sigmoid", "hinge", "ipo", "robust", "nca_pair", "sft"};

dpo_hparams dpo_hparams_default(void) {
    dpo_hparams h;
    memset(&h, 0, sizeof h);
    h.beta = 0.1;
    h.loss_weight[DPO_SIGMOID] = 1.0;
    h.form = DPO_FORM_SEQUENCE;
    return h;
}

int dpo_loss_type_parse(const char *name) {
    for (int i = 0; i < DPO_N_LOSS; i++)
        if (strcmp(name, loss_names[i]) == 0) return i;
    return -1;
}

const char *dpo_loss_type_name(dpo_loss_type t) { return (unsigned)t < DPO_N_LOSS ? loss_names[t] : "?"; }

// Δ(y) of sequence i as the loss sees it, and the factor d Δ / d(m w logp_t).
static double seq_logratio(const seq_batch *b, int i, int norm_len, double *lp_out, double *scale) {
    double lp, ref, n;
    seq_sums(b, i, &lp, &ref, &n);
    double c = 1.0;
    if (norm_len) c = n > 0 ? 1.0 / n : 0.0;
    *lp_out = lp * c;
    *scale = c;
    return (lp - ref) * c;
}

// The sft term: W * (1/N) Σ_{chosen t} m_t (-logp_t), raw log-probs. Adds to dlogp.
static double chosen_nll(const seq_batch *b, int i, double *ntok) {
    double s = 0, n = 0;
    for (int t = b->span[2 * i]; t < b->span[2 * i + 1]; t++) {
        if (b->mask && !b->mask[t]) continue;
        s -= b->logp[t];
        n += 1;
    }
    *ntok = n;
    return s;
}

static void chosen_nll_grad(const seq_batch *b, int i, double g, float *dlogp) {
    for (int t = b->span[2 * i]; t < b->span[2 * i + 1]; t++) {
        if (b->mask && !b->mask[t]) continue;
        dlogp[t] += (float)(-g);
    }
}

// -(1-ε) log σ(x) - ε log σ(-x) and its derivative in x.
static double smoothed_logsig(double x, double eps, double *d) {
    *d = -(1 - eps) * obj_sigmoid(-x) + eps * obj_sigmoid(x);
    return (1 - eps) * obj_softplus(-x) + eps * obj_softplus(x);
}

int dpo_loss(const seq_batch *b, int n_pairs, const int *pair, const dpo_hparams *h, const dpo_norm *norm,
             double *loss, float *dlogp, dpo_metrics *m, tm_error *err) {
    if (seq_batch_check(b, err)) return -1;
    if (!(h->beta > 0)) return tm_fail(err, "dpo: beta must be > 0 (got %g)", h->beta);
    double eps = h->label_smoothing;
    if (!(eps >= 0 && eps < 0.5) && !(eps >= 0 && eps <= 1 && h->loss_weight[DPO_ROBUST] == 0))
        return tm_fail(err, "dpo: label_smoothing %g outside [0, 0.5) (robust) or [0, 1]", eps);
    double w_sft = h->loss_weight[DPO_SFT] + h->rpo_alpha;
    int position = h->form == DPO_FORM_POSITION;
    if (position) {
        for (int k = 0; k < DPO_N_LOSS; k++)
            if (k != DPO_SIGMOID && k != DPO_SFT && h->loss_weight[k] != 0)
                return tm_fail(err, "dpo: the position form of token weights takes only sigmoid and sft, not %s",
                               loss_names[k]);
        if (h->length_normalize) return tm_fail(err, "dpo: the position form does not length-normalize");
        if (!(norm->positions > 0)) return tm_fail(err, "dpo: position form needs norm.positions > 0");
    } else if (!(norm->pairs > 0)) {
        return tm_fail(err, "dpo: norm.pairs must be > 0 (got %g)", norm->pairs);
    }
    if (w_sft != 0 && !(norm->chosen_tokens > 0))
        return tm_fail(err, "dpo: the sft term needs norm.chosen_tokens > 0");
    for (int p = 0; p < 2 * n_pairs; p++)
        if (pair[p] < 0 || pair[p] >= b->n_seq) return tm_fail(err, "dpo: pair %d names sequence %d of %d", p / 2, pair[p], b->n_seq);

    if (dlogp) memset(dlogp, 0, sizeof(float) * (size_t)b->n_tokens);
    dpo_metrics mm;
    memset(&mm, 0, sizeof mm);
    mm.n_pairs = n_pairs;
    double beta = h->beta, total = 0;
    for (int p = 0; p < n_pairs; p++) {
        int cw = pair[2 * p], cl = pair[2 * p + 1];
        double lpw, lpl, sw, sl;
        double dw = seq_logratio(b, cw, h->length_normalize, &lpw, &sw);
        double dl = seq_logratio(b, cl, h->length_normalize, &lpl, &sl);
        double rw = beta * dw, rl = beta * dl;
        mm.rewards_chosen += rw;
        mm.rewards_rejected += rl;
        mm.rewards_accuracies += rw > rl;
        mm.rewards_margins += rw - rl;
        mm.logps_chosen += lpw;
        mm.logps_rejected += lpl;
        double ntok, nll = chosen_nll(b, cw, &ntok);
        mm.nll_sum += nll;
        mm.chosen_tokens += ntok;
        if (w_sft != 0) {
            double g = w_sft / norm->chosen_tokens;
            total += g * nll;
            if (dlogp) chosen_nll_grad(b, cw, g, dlogp);
        }
        if (position) {
            double wsig = h->loss_weight[DPO_SIGMOID];
            if (wsig == 0) continue;
            int ws = b->span[2 * cw], wn = b->span[2 * cw + 1] - ws;
            int ls = b->span[2 * cl], ln = b->span[2 * cl + 1] - ls;
            int K = wn > ln ? wn : ln;
            double inv = wsig / norm->positions;
            for (int k = 0; k < K; k++) {
                double cwk = 0, clk = 0, uw = 0, ul = 0;
                if (k < wn && (!b->mask || b->mask[ws + k])) {
                    cwk = b->weight ? b->weight[ws + k] : 1.0;
                    uw = cwk * (b->logp[ws + k] - (b->ref_logp ? b->ref_logp[ws + k] : 0.0));
                }
                if (k < ln && (!b->mask || b->mask[ls + k])) {
                    clk = b->weight ? b->weight[ls + k] : 1.0;
                    ul = clk * (b->logp[ls + k] - (b->ref_logp ? b->ref_logp[ls + k] : 0.0));
                }
                double d, l = smoothed_logsig(beta * (uw - ul), eps, &d);
                total += inv * l;
                if (dlogp) {
                    double g = inv * d * beta;
                    if (cwk != 0) dlogp[ws + k] += (float)(g * cwk);
                    if (clk != 0) dlogp[ls + k] -= (float)(g * clk);
                }
            }
            continue;
        }
        // Sequence form: ℓ(Δ_w, Δ_l) and its partials.
        double delta = dw - dl, x = beta * delta;
        double lp = 0, gw = 0, gl = 0, d;
        const double *W = h->loss_weight;
        if (W[DPO_SIGMOID] != 0) {
            lp += W[DPO_SIGMOID] * smoothed_logsig(x, eps, &d);
            gw += W[DPO_SIGMOID] * d * beta;
            gl -= W[DPO_SIGMOID] * d * beta;
        }
        if (W[DPO_HINGE] != 0) {
            double a = 1 - x;
            lp += W[DPO_HINGE] * (a > 0 ? a : 0);
            d = a > 0 ? -beta : 0;
            gw += W[DPO_HINGE] * d;
            gl -= W[DPO_HINGE] * d;
        }
        if (W[DPO_IPO] != 0) {
            double a = delta - 1 / (2 * beta);
            lp += W[DPO_IPO] * a * a;
            gw += W[DPO_IPO] * 2 * a;
            gl -= W[DPO_IPO] * 2 * a;
        }
        if (W[DPO_ROBUST] != 0) {
            double c = 1 / (1 - 2 * eps);
            lp += W[DPO_ROBUST] * c * ((1 - eps) * obj_softplus(-x) - eps * obj_softplus(x));
            d = c * (-(1 - eps) * obj_sigmoid(-x) - eps * obj_sigmoid(x)) * beta;
            gw += W[DPO_ROBUST] * d;
            gl -= W[DPO_ROBUST] * d;
        }
        if (W[DPO_NCA_PAIR] != 0) {
            lp += W[DPO_NCA_PAIR] * (obj_softplus(-rw) + 0.5 * obj_softplus(rw) + 0.5 * obj_softplus(rl));
            gw += W[DPO_NCA_PAIR] * beta * (-obj_sigmoid(-rw) + 0.5 * obj_sigmoid(rw));
            gl += W[DPO_NCA_PAIR] * beta * 0.5 * obj_sigmoid(rl);
        }
        double inv = 1.0 / norm->pairs;
        total += lp * inv;
        if (dlogp) {
            seq_add_grad(b, cw, gw * sw * inv, dlogp);
            seq_add_grad(b, cl, gl * sl * inv, dlogp);
        }
    }
    *loss = total;
    if (m) *m = mm;
    return 0;
}
