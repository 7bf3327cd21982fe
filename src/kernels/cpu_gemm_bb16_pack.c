// kernels/cpu_gemm_bb16_pack.c: packing one operand panel of the bf16 x bf16 GEMM
// (formats in cpu_gemm_bb16.h). fp32 sources are rounded to bf16 here, once per call, so
// the microkernels only multiply. The loops walk the source along its contiguous axis.
#include <string.h>
#include "kernels/cpu_gemm_bb16.h"

static inline uint16_t val16(const bb16_src *s, long i, long r) {
    long o = i * s->si + r * s->sr;
    return s->bf ? bb16_ftz(((const uint16_t *)s->p)[o]) : bb16_round(((const float *)s->p)[o]);
}

// F32: dst[(r ^ 1) * L + l]
static void pack_f32(float *dst, const bb16_src *s, int l0, int lw, int L, int R, int Rp) {
    memset(dst, 0, sizeof(float) * (size_t)L * Rp);
    if (s->si == 1 && !s->bf) {
        const float *src = (const float *)s->p + l0;
        for (int r = 0; r < R; r++) {
            const float *row = src + (long)r * s->sr;
            float *d = dst + (long)(r ^ 1) * L;
            for (int l = 0; l < lw; l++) d[l] = bb16_widen(bb16_round(row[l]));
        }
    } else if (s->si == 1) {
        const uint16_t *src = (const uint16_t *)s->p + l0;
        for (int r = 0; r < R; r++) {
            const uint16_t *row = src + (long)r * s->sr;
            float *d = dst + (long)(r ^ 1) * L;
            for (int l = 0; l < lw; l++) d[l] = bb16_widen(bb16_ftz(row[l]));
        }
    } else if (s->sr == 1 && !s->bf) {
        for (int l = 0; l < lw; l++) {
            const float *row = (const float *)s->p + (long)(l0 + l) * s->si;
            for (int r = 0; r < R; r++) dst[(long)(r ^ 1) * L + l] = bb16_widen(bb16_round(row[r]));
        }
    } else {
        for (int l = 0; l < lw; l++)
            for (int r = 0; r < R; r++) dst[(long)(r ^ 1) * L + l] = bb16_widen(val16(s, l0 + l, r));
    }
}

void bb16_pack(void *dst, bb16_src s, int l0, int L, int extent, int R, int Rp, int fmt) {
    int lw = extent - l0 < L ? extent - l0 : L;
    if (lw < 0) lw = 0;
    if (fmt == BB16_F32) {
        pack_f32(dst, &s, l0, lw, L, R, Rp);
        return;
    }
    uint16_t *d = dst;
    memset(d, 0, bb16_panel_bytes(fmt, L, Rp));
    // the u16 index of element (l, r): pairs of r side by side in a 32-bit word
    int swap = fmt != BB16_PAIRS;
    if (fmt == BB16_ROWS_SWAP) {
        for (int l = 0; l < lw; l++)
            for (int r = 0; r < R; r++) d[(long)l * Rp + (r ^ swap)] = val16(&s, l0 + l, r);
    } else if (s.si == 1) {
        for (int r = 0; r < R; r++) {
            uint16_t *w = d + ((long)(r >> 1) * L) * 2 + ((r & 1) ^ swap);
            for (int l = 0; l < lw; l++) w[2 * l] = val16(&s, l0 + l, r);
        }
    } else {
        for (int l = 0; l < lw; l++)
            for (int r = 0; r < R; r++) d[((long)(r >> 1) * L + l) * 2 + ((r & 1) ^ swap)] = val16(&s, l0 + l, r);
    }
}
