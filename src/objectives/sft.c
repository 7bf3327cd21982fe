#include "objectives/sft.h"

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
