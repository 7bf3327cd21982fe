#include "objectives/kto.h"
#include <string.h>
#include "objectives/util.h"

kto_hparams kto_hparams_default(void) {
    kto_hparams h = {0.1, 1.0, 1.0, KTO_LOSS_KTO};
    return h;
}

double kto_z0(const seq_batch *b) {
    if (b->n_seq == 0) return 0;
    double s = 0;
    for (int i = 0; i < b->n_seq; i++) {
        double lp, ref, n;
        seq_sums(b, i, &lp, &ref, &n);
        s += lp - ref;
    }
    s /= b->n_seq;
    return s > 0 ? s : 0;
}

int kto_loss(const seq_batch *b, const uint8_t *desirable, double z0, const kto_hparams *h, double norm,
             double *loss, float *dlogp, kto_metrics *m, tm_error *err) {
    if (seq_batch_check(b, err)) return -1;
    if (!(h->beta > 0)) return tm_fail(err, "kto: beta must be > 0 (got %g)", h->beta);
    if (!(norm > 0)) return tm_fail(err, "kto: normalizer must be > 0 (got %g)", norm);
    if (h->loss_type != KTO_LOSS_KTO && h->loss_type != KTO_LOSS_APO_ZERO_UNPAIRED)
        return tm_fail(err, "kto: unknown loss type %d", (int)h->loss_type);
    if (dlogp) memset(dlogp, 0, sizeof(float) * (size_t)b->n_tokens);
    kto_metrics mm;
    memset(&mm, 0, sizeof mm);
    mm.kl = z0;
    double beta = h->beta, total = 0, inv = 1.0 / norm;
    int apo = h->loss_type == KTO_LOSS_APO_ZERO_UNPAIRED;
    for (int i = 0; i < b->n_seq; i++) {
        double lp, ref, n;
        seq_sums(b, i, &lp, &ref, &n);
        double delta = lp - ref, l, g;
        double ref_pt = apo ? 0.0 : z0;
        if (desirable[i]) {
            double s = obj_sigmoid(beta * (delta - ref_pt));
            l = h->desirable_weight * (1 - s);
            g = -h->desirable_weight * beta * s * (1 - s);
            mm.count_chosen += 1;
            mm.rewards_chosen_sum += beta * delta;
            mm.logps_chosen_sum += lp;
        } else {
            if (apo) {
                double s = obj_sigmoid(beta * delta);
                l = h->undesirable_weight * s;
                g = h->undesirable_weight * beta * s * (1 - s);
            } else {
                double s = obj_sigmoid(beta * (z0 - delta));
                l = h->undesirable_weight * (1 - s);
                g = h->undesirable_weight * beta * s * (1 - s);
            }
            mm.count_rejected += 1;
            mm.rewards_rejected_sum += beta * delta;
            mm.logps_rejected_sum += lp;
        }
        total += l * inv;
        if (dlogp) seq_add_grad(b, i, g * inv, dlogp);
    }
    *loss = total;
    if (m) *m = mm;
    return 0;
}
