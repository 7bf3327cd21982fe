// kernels/cpu_rope.c: rotary position embedding, Hugging Face "rotate_half" layout:
// the pair (x[i], x[i + d/2]) is rotated by angle pos * inv_freq[i].
// The angle is formed in fp32 (pos * inv_freq) like transformers does, so our cos/sin
// match its tables. cos/sin depend only on (token, i): they are computed once per
// token, in blocks of 64 frequencies on the stack, and reused for every head.
// The backward is the same rotation by -angle (a rotation's inverse is its transpose).
#include "kernels/kernels.h"
#include <math.h>

#define ROPE_FBLOCK 64

static void rope_apply(float *x, const int *pos, const float *inv_freq, int N, int H, int d, float sign) {
    int half = d / 2;
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float c[ROPE_FBLOCK], s[ROPE_FBLOCK];
        for (int i0 = 0; i0 < half; i0 += ROPE_FBLOCK) {
            int m = half - i0 < ROPE_FBLOCK ? half - i0 : ROPE_FBLOCK;
            for (int i = 0; i < m; i++) {
                float ang = (float)pos[n] * inv_freq[i0 + i];
                c[i] = cosf(ang);
                s[i] = sign * sinf(ang);
            }
            for (int h = 0; h < H; h++) {
                float *a = x + ((long)n * H + h) * d + i0, *b = a + half;
                #pragma omp simd
                for (int i = 0; i < m; i++) {
                    float x1 = a[i], x2 = b[i];
                    a[i] = x1 * c[i] - x2 * s[i];
                    b[i] = x2 * c[i] + x1 * s[i];
                }
            }
        }
    }
}

void k_rope_fwd(float *x, const int *pos, const float *inv_freq, int N, int H, int d) {
    rope_apply(x, pos, inv_freq, N, H, d, 1.0f);
}

void k_rope_bwd(float *dx, const int *pos, const float *inv_freq, int N, int H, int d) {
    rope_apply(dx, pos, inv_freq, N, H, d, -1.0f);
}
