// kernels/cpu_attention_cache.c: attention of new query tokens against cached keys and
// values (decoding, chunked prefill, appended tool observations).
//
// Each query row reads the concatenation of up to `nspan` spans of cache (for the
// sampler: the prompt's prefix slot, shared by the n samples of a group, then the
// sample's own slot). A span holds, per kv head, `len` rows of d floats, rows d
// floats apart and heads `head_stride` floats apart. Causality is the caller's: it
// sets each row's visible lengths.
//
// One task per (row, kv head): the task walks the spans in tiles of 64 keys with an
// online softmax for the Hq/Hkv query heads that share the kv head, so every key and
// value row is read once per task, and the result does not depend on the thread
// count (each output element is computed by one task in a fixed order).
#include "kernels/kernels.h"
#include "kernels/cpu_simd.h"
#include <math.h>

#define TILE 64   // keys per tile
#define QCH 8     // query heads per pass (a group larger than this takes several passes)
#define DMAX 512  // largest head_dim on the stack accumulators

static void exp_tile(float *s, int n, float m) {
#ifdef __AVX512F__
    __m512 mv = _mm512_set1_ps(m);
    for (int j = 0; j < n; j += 16) {
        __mmask16 km = tail_mask16(n - j);
        __m512 e = exp512_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(km, s + j), mv));
        _mm512_mask_storeu_ps(s + j, km, e);
    }
#else
    for (int j = 0; j < n; j++) s[j] = exp_scalar(s[j] - m);
#endif
}

int k_attention_cache_max_head_dim(void) { return DMAX; }

void k_attention_cache_fwd(float *out, const float *q, const k_kv_span *spans, int nspan, int N, int Hq, int Hkv,
                           int d) {
    if (N <= 0) return;
    const int qpg = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)d);
    #pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int n = 0; n < N; n++)
        for (int g = 0; g < Hkv; g++) {
            for (int j0 = 0; j0 < qpg; j0 += QCH) {
                int nq = qpg - j0 < QCH ? qpg - j0 : QCH;
                float acc[QCH][DMAX], mx[QCH], l[QCH], S[QCH][TILE];
                const float *qh[QCH];
                for (int j = 0; j < nq; j++) {
                    qh[j] = q + ((long)n * Hq + g * qpg + j0 + j) * d;
                    mx[j] = -INFINITY;
                    l[j] = 0.0f;
                    for (int c = 0; c < d; c++) acc[j][c] = 0.0f;
                }
                for (int sp = 0; sp < nspan; sp++) {
                    const k_kv_span *s = &spans[(long)n * nspan + sp];
                    if (s->len <= 0) continue;
                    const float *K = s->k + (long)g * s->head_stride, *V = s->v + (long)g * s->head_stride;
                    for (int t0 = 0; t0 < s->len; t0 += TILE) {
                        int nk = s->len - t0 < TILE ? s->len - t0 : TILE;
                        for (int t = 0; t < nk; t++) {
                            const float *kr = K + (long)(t0 + t) * d;
                            for (int j = 0; j < nq; j++) {
                                const float *qr = qh[j];
                                float dot = 0.0f;
                                #pragma omp simd reduction(+ : dot)
                                for (int c = 0; c < d; c++) dot += qr[c] * kr[c];
                                S[j][t] = dot * scale;
                            }
                        }
                        for (int j = 0; j < nq; j++) {
                            float tm = -INFINITY;
                            for (int t = 0; t < nk; t++) tm = S[j][t] > tm ? S[j][t] : tm;
                            float mn = tm > mx[j] ? tm : mx[j];
                            float a = mx[j] == -INFINITY ? 0.0f : expf(mx[j] - mn);
                            exp_tile(S[j], nk, mn);
                            float sum = 0.0f;
                            for (int t = 0; t < nk; t++) sum += S[j][t];
                            l[j] = l[j] * a + sum;
                            mx[j] = mn;
                            if (a != 1.0f) {
                                #pragma omp simd
                                for (int c = 0; c < d; c++) acc[j][c] *= a;
                            }
                        }
                        for (int t = 0; t < nk; t++) {
                            const float *vr = V + (long)(t0 + t) * d;
                            for (int j = 0; j < nq; j++) {
                                float p = S[j][t];
                                float *ac = acc[j];
                                #pragma omp simd
                                for (int c = 0; c < d; c++) ac[c] += p * vr[c];
                            }
                        }
                    }
                }
                for (int j = 0; j < nq; j++) {
                    float *o = out + ((long)n * Hq + g * qpg + j0 + j) * d;
                    float inv = l[j] > 0.0f ? 1.0f / l[j] : 0.0f;
                    for (int c = 0; c < d; c++) o[c] = acc[j][c] * inv;
                }
            }
        }
}
