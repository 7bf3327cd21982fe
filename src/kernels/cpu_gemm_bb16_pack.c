// kernels/cpu_gemm_bb16_pack.c: packing one operand panel of the bf16 x bf16 GEMM
// (formats in cpu_gemm_bb16.h). fp32 sources are rounded to bf16 here, once per call, so
// the microkernels only multiply. The loops walk the source along its contiguous axis.
#include <string.h>
#include "kernels/cpu_gemm_bb16.h"

static inline uint16_t val16(const bb16_src *s, long i, long r) {
    long o = i * s->si + r * s->sr;
    return s->bf ? bb16_ftz(((const uint16_t *)s->p)[o]) : bb16_round(((const float *)s->p)[o]);
}

// bb16_round / bb16_ftz as fp32 bits (h << 16), without branches so that loops vectorize
static inline uint32_t round32(uint32_t u) {
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    r = (u & 0x7fffffffu) > 0x7f800000u ? (u & 0xffff0000u) | 0x00400000u : r;
    return (r & 0x7f800000u) ? r : r & 0x80000000u;
}
static inline uint32_t ftz32(uint16_t h) {
    uint32_t r = (uint32_t)h << 16;
    return (r & 0x7f800000u) ? r : r & 0x80000000u;
}

enum { TB = 16 };  // the transposing packs go through TB x TB blocks

// F32: dst[(r ^ 1) * L + l] (as fp32 bits)
static void pack_f32(uint32_t *dst, const bb16_src *s, int l0, int lw, int L, int R, int Rp) {
    if (lw < L || R < Rp) memset(dst, 0, sizeof(float) * (size_t)L * Rp);
    if (s->si == 1) {  // lanes contiguous: row by row
        for (int r = 0; r < R; r++) {
            uint32_t *d = dst + (long)(r ^ 1) * L;
            if (s->bf) {
                const uint16_t *row = (const uint16_t *)s->p + l0 + (long)r * s->sr;
                for (int l = 0; l < lw; l++) d[l] = ftz32(row[l]);
            } else {
                const uint32_t *row = (const uint32_t *)s->p + l0 + (long)r * s->sr;
                for (int l = 0; l < lw; l++) d[l] = round32(row[l]);
            }
        }
        return;
    }
    // r contiguous (s->sr == 1, or any other stride): TB lanes x TB r converted into a
    // block along the source rows, then written out transposed
    uint32_t blk[TB][TB];
    for (int lb = 0; lb < lw; lb += TB) {
        int nl = lw - lb < TB ? lw - lb : TB;
        for (int rb = 0; rb < R; rb += TB) {
            int nr = R - rb < TB ? R - rb : TB;
            for (int l = 0; l < nl; l++) {
                long o = (long)(l0 + lb + l) * s->si + (long)rb * s->sr;
                if (s->bf && s->sr == 1) {
                    const uint16_t *row = (const uint16_t *)s->p + o;
                    for (int r = 0; r < nr; r++) blk[l][r] = ftz32(row[r]);
                } else if (s->sr == 1) {
                    const uint32_t *row = (const uint32_t *)s->p + o;
                    for (int r = 0; r < nr; r++) blk[l][r] = round32(row[r]);
                } else {
                    for (int r = 0; r < nr; r++) blk[l][r] = s->bf ? ftz32(((const uint16_t *)s->p)[o + (long)r * s->sr])
                                                                  : round32(((const uint32_t *)s->p)[o + (long)r * s->sr]);
                }
            }
            for (int r = 0; r < nr; r++) {
                uint32_t *d = dst + (long)((rb + r) ^ 1) * L + lb;
                for (int l = 0; l < nl; l++) d[l] = blk[l][r];
            }
        }
    }
}

// All panels of an F32 operand whose lanes are contiguous (si == 1), rows r0 .. r1 - 1 of
// the Rp: each source row is read once, start to end, and split into the panels.
void bb16_pack_rows(void *dst, size_t panel_bytes, bb16_src s, int L, int extent, int R, int r0, int r1) {
    int np = (extent + L - 1) / L;
    for (int r = r0; r < r1; r++) {
        uint32_t *d = (uint32_t *)dst + (long)(r ^ 1) * L;
        const uint16_t *h = (const uint16_t *)s.p + (long)r * s.sr;
        const uint32_t *f = (const uint32_t *)s.p + (long)r * s.sr;
        for (int P = 0; P < np; P++, d = (uint32_t *)((char *)d + panel_bytes)) {
            int l0 = P * L, lw = r >= R ? 0 : extent - l0 < L ? extent - l0 : L;
            if (s.bf)
                for (int l = 0; l < lw; l++) d[l] = ftz32(h[l0 + l]);
            else
                for (int l = 0; l < lw; l++) d[l] = round32(f[l0 + l]);
            for (int l = lw; l < L; l++) d[l] = 0;
        }
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
