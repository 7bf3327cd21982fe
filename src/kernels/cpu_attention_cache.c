// kernels/cpu_attention_cache.c: attention of new query tokens against cached keys and
// values (decoding, chunked prefill, appended tool observations).
//
// Each query row reads the concatenation of up to `nspan` spans of cache (for the
// sampler: the prompt's prefix slot, shared by the n samples of a group, then the
// sample's own slot). A span holds, per kv head, `len` rows of d floats, rows d
// floats apart and heads `head_stride` floats apart. Causality is the caller's: it
// sets each row's visible lengths.
//
// One task per (row, kv head), for the query heads that share the kv head. The task
// walks the visible keys in tiles of 64 counted from the first key, exactly as the
// training attention (cpu_attention.c) walks a sequence: each tile's keys are copied
// into the training kernel's layout (K transposed into a d x 64 panel, V as 64 rows)
// and go through the training kernel's micro-kernels (cpu_attention_tiles.h), so a
// decoded row gets the bits of the same row of a training forward (issue 15) and
// the result does not depend on the thread count. The copy costs about what the score
// tile does; it is what buys the equality.
//
// Sliding windows: the caller drops keys from the front of the spans and says how many
// (the first span's `dropped`); the tiles still start at multiples of 64 from the
// sequence start, with the dropped keys' columns masked, as in training.
#include "kernels/kernels.h"
#include "kernels/cpu_attention_tiles.h"
#include <math.h>

#define BK K_ATT_BK
#define QCH 8     // query heads per pass (a group larger than this takes several passes)
#define DMAX 256  // largest head_dim: the key and value tiles live on the stack

int k_attention_cache_max_head_dim(void) { return DMAX; }

// The key at index t of the concatenation of spans sp[0..nspan), for kv head g.
static void span_row(const k_kv_span *sp, int nspan, int g, int t, int d, const float **kr, const float **vr) {
    for (int s = 0; s < nspan; s++) {
        if (t < sp[s].len) {
            long off = (long)g * sp[s].head_stride + (long)t * d;
            *kr = sp[s].k + off;
            *vr = sp[s].v + off;
            return;
        }
        t -= sp[s].len > 0 ? sp[s].len : 0;
    }
}

void k_attention_cache_fwd(float *out, const float *q, const k_kv_span *spans, int nspan, int N, int Hq, int Hkv,
                           int d) {
    if (N <= 0) return;
    const int qpg = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)d);
    #pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int n = 0; n < N; n++)
        for (int g = 0; g < Hkv; g++) {
            const k_kv_span *sp = spans + (long)n * nspan;
            // Key t of the visible concatenation sits at column off + t of the tiles.
            int L = 0, off = nspan > 0 && sp[0].dropped > 0 ? sp[0].dropped % BK : 0;
            for (int s = 0; s < nspan; s++) L += sp[s].len > 0 ? sp[s].len : 0;
            float kT[DMAX * BK], vP[BK * DMAX], S[QCH * BK], m[QCH], l[QCH];
            for (int j0 = 0; j0 < qpg; j0 += QCH) {
                int nq = qpg - j0 < QCH ? qpg - j0 : QCH;
                const float *qt = q + ((long)n * Hq + g * qpg + j0) * d;
                float *ot = out + ((long)n * Hq + g * qpg + j0) * d;
                for (int r = 0; r < nq; r++) {
                    m[r] = -INFINITY;
                    l[r] = 0.0f;
                    for (int c = 0; c < d; c++) ot[r * d + c] = 0.0f;
                }
                for (int kj0 = 0; kj0 < off + L; kj0 += BK) {
                    int nk = off + L - kj0 < BK ? off + L - kj0 : BK;
                    if (j0 == 0 || qpg > QCH) {  // the tile in the training kernel's layout
                        for (int j = 0; j < BK; j++) {
                            const float *kr = NULL, *vr = NULL;
                            if (j < nk && kj0 + j >= off) span_row(sp, nspan, g, kj0 + j - off, d, &kr, &vr);
                            for (int c = 0; c < d; c++) {
                                kT[c * BK + j] = kr ? kr[c] : 0.0f;
                                vP[j * d + c] = vr ? vr[c] : 0.0f;
                            }
                        }
                    }
                    k_att_tile_abT(S, BK, qt, d, nq, kT, BK, nk, d);
                    for (int r = 0; r < nq; r++) {
                        float *sr = S + r * BK;
                        for (int j = 0; j < nk; j++) sr[j] = kj0 + j >= off ? sr[j] * scale : -INFINITY;
                        k_att_softmax_step(sr, nk, &m[r], &l[r], ot + r * d, d);
                    }
                    k_att_rows_acc(ot, d, nq, S, BK, 1, nk, vP, d, d);
                }
                for (int r = 0; r < nq; r++) {
                    float inv = 1.0f / l[r];
                    for (int c = 0; c < d; c++) ot[r * d + c] *= inv;
                }
            }
        }
}
