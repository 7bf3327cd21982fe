#include "objectives/rm.h"
#include <string.h>
#include "objectives/util.h"

int rm_bt_loss(int n_pairs, const float *r_chosen, const float *r_rejected, const float *margin, double center_coef,
               double norm, double *loss, float *d_chosen, float *d_rejected, rm_metrics *m, tm_error *err) {
    if (!(norm > 0)) return tm_fail(err, "rm: normalizer must be > 0 (got %g)", norm);
    if (n_pairs < 0) return tm_fail(err, "rm: negative pair count");
    rm_metrics mm;
    memset(&mm, 0, sizeof mm);
    mm.n_pairs = n_pairs;
    double total = 0, inv = 1.0 / norm;
    for (int p = 0; p < n_pairs; p++) {
        double rw = r_chosen[p], rl = r_rejected[p];
        double x = rw - rl - (margin ? margin[p] : 0.0);
        double c = rw + rl;
        total += (obj_softplus(-x) + center_coef * c * c) * inv;
        double gx = -obj_sigmoid(-x) * inv, gc = 2 * center_coef * c * inv;
        if (d_chosen) d_chosen[p] = (float)(gx + gc);
        if (d_rejected) d_rejected[p] = (float)(-gx + gc);
        mm.rewards_chosen += rw;
        mm.rewards_rejected += rl;
        mm.rewards_accuracies += rw > rl;
        mm.rewards_margins += rw - rl;
    }
    *loss = total;
    if (m) *m = mm;
    return 0;
}
