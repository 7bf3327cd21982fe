#include "objectives/sft.h"
#include <string.h>

double sft_nll(const float *logp, const int *targets, int n, double norm, float *dlogp) {
    double s = 0;
    float d = (float)(-1.0 / norm);
    for (int i = 0; i < n; i++) {
        int on = targets[i] >= 0;
        if (on) s -= logp[i];
        if (dlogp) dlogp[i] = on ? d : 0.0f;
    }
    return s / norm;
}

int sft_loss(const seq_batch *b, int per_sequence, double norm, double *loss, float *dlogp,
             sft_metrics *m, tm_error *err) {
    if (seq_batch_check(b, err)) return -1;
    if (!(norm > 0)) return tm_fail(err, "sft_loss: normalizer must be > 0 (got %g)", norm);
    if (dlogp) memset(dlogp, 0, sizeof(float) * (size_t)b->n_tokens);
    double total = 0, nll = 0, ntok = 0;
    for (int i = 0; i < b->n_seq; i++) {
        double s = 0, raw = 0, n = 0;
        for (int t = b->span[2 * i]; t < b->span[2 * i + 1]; t++) {
            if (b->mask && !b->mask[t]) continue;
            double w = b->weight ? b->weight[t] : 1.0;
            s -= w * b->logp[t];
            raw -= b->logp[t];
            n += 1;
        }
        nll += raw;
        ntok += n;
        if (n == 0) continue;
        double scale = per_sequence ? 1.0 / (n * norm) : 1.0 / norm;
        total += s * scale;
        if (dlogp) seq_add_grad(b, i, -scale, dlogp);
    }
    *loss = total;
    if (m) { m->nll_sum = nll; m->num_tokens = ntok; m->num_seqs = b->n_seq; }
    return 0;
}
