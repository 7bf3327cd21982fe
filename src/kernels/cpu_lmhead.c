// kernels/cpu_lmhead.c: fused lm-head + log-softmax + gather (+ entropy).
//
// The N x V logits are never stored. Rows with a target (targets[i] >= 0) are
// gathered into chunks of up to ROWS rows; for each chunk the vocabulary is walked in
// chunks of VOCAB columns: one GEMM makes the ROWS x VOCAB logits in scratch,
// then an OpenMP loop over rows folds them into an online log-sum-exp. Masked rows
// (prompt tokens) cost nothing, which matters for SFT/DPO where they are many.
//
// Online state per row, with running max m:
//   s = sum_j exp(z_j - m)          t = sum_j exp(z_j - m) (z_j - m)
// and when the max moves from m to m':  s <- e^(m-m') s,  t <- e^(m-m') (t + (m-m') s).
// At the end lse = m + log s and the entropy is
//   H = -sum p_j log p_j = lse - sum p_j z_j = log s - t / s,
// computed relative to m, so large logits do not cancel catastrophically.
//
// Backward. With p_j = exp(z_j - lse), g = dL/dlogp, e = dL/dH, target t:
//   dlogp/dz_j = [j == t] - p_j
//   dH/dz_j    = -p_j (z_j - lse + H)
// (from H = lse - sum_k p_k z_k: d lse/dz_j = p_j, d(sum_k p_k z_k)/dz_j
//  = p_j + p_j z_j - p_j sum_k p_k z_k = p_j + p_j (z_j - lse + H), so
//  dH/dz_j = p_j - p_j - p_j (z_j - lse + H); checked by finite differences in
//  tests/unit/test_kernels.c), hence
//   dz_j = g [j == t] - p_j (g + e (z_j - lse + H)).
// The backward recomputes each logits chunk, overwrites it with dz, and makes two
// sgemms: dh_chunk += dz W_chunk and dW_chunk += dz^T h_chunk. Rows whose g and e
// are both zero are skipped.
//
// GEMMs go through k_sgemm, which runs on the same OpenMP threads as the
// elementwise passes, so the per-chunk alternation has no thread-pool hand-over.
//
// The per-row passes (max, exp sums, dlogits) have AVX-512, AVX2+FMA and plain-C paths,
// chosen once per call by k_isa() (cpu_isa.h), that give the same bits (see below). The
// few scalar expf/logf calls per row and chunk (fold_chunk, fold_end) are glibc's on
// every path; glibc itself picks an FMA variant of them on CPUs with FMA, so the C path
// on a CPU without AVX2 could differ from the others there (in the last bit, rarely).
#include "kernels/kernels.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_tuning.h"
#include <math.h>
#include <string.h>

#define ROWS_MAX 1024
// 512 x 2048: bench/kernels_bench.c (1 thread, D = 1024, V = 151936, N = 512) gave
// fwd 1151 ms / bwd 3724 ms against 1197 / 3824 ms for the plain sgemms of the same
// shapes, where 128 x 4096 gave 1496 / 4752 ms: the dW GEMM has K = rows, and
// short K makes it memory-bound. Scratch: 512 * (2048 + 2 D) floats.
static int lm_rows = 512, lm_vocab = 2048;

void k_lmhead_set_chunks(int rows, int vocab) {
    lm_rows = rows < 1 ? 1 : rows > ROWS_MAX ? ROWS_MAX : rows;
    lm_vocab = vocab < 1 ? 1 : vocab;
}

static int min_int(int a, int b) { return a < b ? a : b; }

size_t k_lmhead_scratch_floats(int N, int D, int V) {
    size_t R = (size_t)min_int(N, lm_rows), C = (size_t)min_int(V, lm_vocab);
    // logits chunk, gathered h rows, their dh accumulator, 4 per-row states.
    return R * C + 2 * R * (size_t)D + 4 * R;
}

// Gathers the next rows (from *cursor) whose target is >= 0 and, when `need` is
// given, whose need(i) is true; returns how many (<= R) and leaves their indices in idx.
static int next_rows(int *idx, int *cursor, int R, int N, const int *targets, const float *g,
                     const float *e) {
    int nr = 0;
    while (*cursor < N && nr < R) {
        int i = (*cursor)++;
        if (targets[i] < 0) continue;
        if (g && g[i] == 0.0f && !(e && e[i] != 0.0f)) continue;
        idx[nr++] = i;
    }
    return nr;
}

static void gather_rows(float *Hc, const float *h, const int *idx, int nr, int D) {
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < nr; r++) memcpy(Hc + (long)r * D, h + (long)idx[r] * D, (size_t)D * sizeof(float));
}

// ---------------------------------------------------------------- the per-row passes
//
// Three paths chosen at run time (cpu_isa.h), the same bits on each: every pass works on
// 16 lanes (AVX-512: one zmm; AVX2: two ymm halves, lanes 0-7 and 8-15; plain C: arrays),
// lane l takes the elements j = l, l + 16, ... in order, the last partial block of 16
// reads zeros into its dead lanes exactly as the AVX-512 masked loads do, the exp is
// exp512_ps / exp256_ps / exp_poly (lane for lane the same bits) and the lanes are summed
// by the one 16-lane tree (isa_hsum16_*). The C path spells the FMAs as fmaf.

// The max of 16 lanes, m = v > m ? v : m per lane (what vmaxps computes, NaN and signed
// zeros included), then a tree of the same form (lanes l and l + 8, + 4, + 2, + 1).
static float max16_c(const float v[16]) {
    float t[16];
    memcpy(t, v, sizeof t);
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) t[l] = t[l + w] > t[l] ? t[l + w] : t[l];
    return t[0];
}

static float row_max_c(const float *z, int n) {
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = -INFINITY;
    for (int j = 0; j < n; j++) v[j & 15] = z[j] > v[j & 15] ? z[j] : v[j & 15];
    return max16_c(v);
}

ISA_AVX2 static float row_max_avx2(const float *z, int n) {
    __m256 lo = _mm256_set1_ps(-INFINITY), hi = lo;
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        lo = _mm256_max_ps(_mm256_loadu_ps(z + j), lo);
        hi = _mm256_max_ps(_mm256_loadu_ps(z + j + 8), hi);
    }
    if (j < n) {
        __m256i m0 = tail_mask8(n - j), m1 = tail_mask8(n - j - 8);
        __m256 ninf = _mm256_set1_ps(-INFINITY);
        lo = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_maskload_ps(z + j, m0), _mm256_castsi256_ps(m0)), lo);
        hi = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_maskload_ps(z + j + 8, m1), _mm256_castsi256_ps(m1)), hi);
    }
    float v[16];
    _mm256_storeu_ps(v, lo);
    _mm256_storeu_ps(v + 8, hi);
    return max16_c(v);
}

ISA_AVX512 static float row_max_avx512(const float *z, int n) {
    __m512 mv = _mm512_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 16 <= n; j += 16) mv = _mm512_max_ps(_mm512_loadu_ps(z + j), mv);
    if (j < n) mv = _mm512_max_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask16(n - j), z + j), mv);
    float v[16];
    _mm512_storeu_ps(v, mv);
    return max16_c(v);
}

// Adds sum_j exp(z_j - m) to *s and, if t != NULL, sum_j exp(z_j - m) (z_j - m) to *t.
// Per lane: x = z - m (a dead lane: 0 - m), e = exp(x) (a dead lane: 0), s += e,
// t = fma(e, x, t).
static void exp_sums_c(const float *z, int n, float m, float *s, float *t) {
    float sv[16] = {0}, tv[16] = {0};
    const int n16 = (n + 15) / 16 * 16;
    for (int j = 0; j < n16; j++) {
        int l = j & 15;
        float x = (j < n ? z[j] : 0.0f) - m, e = j < n ? exp_poly(x) : 0.0f;
        sv[l] = sv[l] + e;
        if (t) tv[l] = fmaf(e, x, tv[l]);
    }
    *s += isa_hsum16_c(sv);
    if (t) *t += isa_hsum16_c(tv);
}

ISA_AVX2 static void exp_sums_avx2(const float *z, int n, float m, float *s, float *t) {
    __m256 mv = _mm256_set1_ps(m), s0 = _mm256_setzero_ps(), s1 = s0, t0 = s0, t1 = s0;
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 x0 = _mm256_sub_ps(_mm256_loadu_ps(z + j), mv), x1 = _mm256_sub_ps(_mm256_loadu_ps(z + j + 8), mv);
        __m256 e0 = exp256_ps(x0), e1 = exp256_ps(x1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
        if (t) {
            t0 = _mm256_fmadd_ps(e0, x0, t0);
            t1 = _mm256_fmadd_ps(e1, x1, t1);
        }
    }
    if (j < n) {
        __m256i m0 = tail_mask8(n - j), m1 = tail_mask8(n - j - 8);
        __m256 x0 = _mm256_sub_ps(_mm256_maskload_ps(z + j, m0), mv), x1 = _mm256_sub_ps(_mm256_maskload_ps(z + j + 8, m1), mv);
        __m256 e0 = _mm256_and_ps(_mm256_castsi256_ps(m0), exp256_ps(x0));
        __m256 e1 = _mm256_and_ps(_mm256_castsi256_ps(m1), exp256_ps(x1));
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
        if (t) {
            t0 = _mm256_fmadd_ps(e0, x0, t0);
            t1 = _mm256_fmadd_ps(e1, x1, t1);
        }
    }
    *s += isa_hsum16_avx2(s0, s1);
    if (t) *t += isa_hsum16_avx2(t0, t1);
}

ISA_AVX512 static void exp_sums_avx512(const float *z, int n, float m, float *s, float *t) {
    __m512 mv = _mm512_set1_ps(m), sv = _mm512_setzero_ps(), tv = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 km = tail_mask16(n - j);
        __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(km, z + j), mv);
        __m512 e = _mm512_maskz_mov_ps(km, exp512_ps(x));
        sv = _mm512_add_ps(sv, e);
        if (t) tv = _mm512_fmadd_ps(e, x, tv);
    }
    *s += isa_hsum16_avx512(sv);
    if (t) *t += isa_hsum16_avx512(tv);
}

// z[j] <- -p_j (g + e (z_j - lse + H)),  p_j = exp(z_j - lse)   (a = g + e H)
// Per element: x = z - lse, z = 0 - exp(x) * fma(e, x, a).
static void dlogits_row_c(float *z, int n, float lse, float a, float e) {
    for (int j = 0; j < n; j++) {
        float x = z[j] - lse;
        z[j] = 0.0f - exp_poly(x) * fmaf(e, x, a);
    }
}

ISA_AVX2 static void dlogits_row_avx2(float *z, int n, float lse, float a, float e) {
    __m256 lv = _mm256_set1_ps(lse), av = _mm256_set1_ps(a), ev = _mm256_set1_ps(e);
    for (int j = 0; j < n; j += 8) {
        __m256i km = tail_mask8(n - j);
        __m256 x = _mm256_sub_ps(_mm256_maskload_ps(z + j, km), lv);
        __m256 dz = _mm256_mul_ps(exp256_ps(x), _mm256_fmadd_ps(ev, x, av));
        _mm256_maskstore_ps(z + j, km, _mm256_sub_ps(_mm256_setzero_ps(), dz));
    }
}

ISA_AVX512 static void dlogits_row_avx512(float *z, int n, float lse, float a, float e) {
    __m512 lv = _mm512_set1_ps(lse), av = _mm512_set1_ps(a), ev = _mm512_set1_ps(e);
    for (int j = 0; j < n; j += 16) {
        __mmask16 km = tail_mask16(n - j);
        __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(km, z + j), lv);
        __m512 p = exp512_ps(x);
        __m512 dz = _mm512_mul_ps(p, _mm512_fmadd_ps(ev, x, av));
        _mm512_mask_storeu_ps(z + j, km, _mm512_sub_ps(_mm512_setzero_ps(), dz));
    }
}

static float row_max(int isa, const float *z, int n) {
    return isa == K_ISA_AVX512 ? row_max_avx512(z, n) : isa == K_ISA_AVX2 ? row_max_avx2(z, n) : row_max_c(z, n);
}

static void exp_sums(int isa, const float *z, int n, float m, float *s, float *t) {
    if (isa == K_ISA_AVX512) exp_sums_avx512(z, n, m, s, t);
    else if (isa == K_ISA_AVX2) exp_sums_avx2(z, n, m, s, t);
    else exp_sums_c(z, n, m, s, t);
}

static void dlogits_row(int isa, float *z, int n, float lse, float a, float e) {
    if (isa == K_ISA_AVX512) dlogits_row_avx512(z, n, lse, a, e);
    else if (isa == K_ISA_AVX2) dlogits_row_avx2(z, n, lse, a, e);
    else dlogits_row_c(z, n, lse, a, e);
}

// A bf16 lm-head (a frozen base read in place): each vocabulary chunk of W is widened
// (exactly) into wc before its GEMMs, so the sums are those of the fp32 path on the
// widened weights, bit for bit. Returns the chunk's fp32 rows.
static const float *chunk_of(const float *W, const uint16_t *Wh, float *wc, int c0, int nc, int D) {
    if (!Wh) return W + (long)c0 * D;
    const uint16_t *src = Wh + (long)c0 * D;
    long n = (long)nc * D;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        union { uint32_t u; float f; } v = {(uint32_t)src[i] << 16};
        wc[i] = v.f;
    }
    return wc;
}

// One vocabulary chunk of a row into its online state (m, s, t); t may be NULL.
// Both the fused forward and k_lmhead_logprob_row go through here, chunk by chunk in
// the same order, so a row's log-prob is the same bits whichever computed it.
static void fold_chunk(int isa, float *m_, float *s, float *t, const float *z, int nc) {
    // A NaN logit may be dropped by the max, but it still reaches s via exp.
    float m = *m_, cm = row_max(isa, z, nc), mn = cm > m ? cm : m;
    float tt = t ? *t : 0.0f;
    if (m == -INFINITY) {
        *s = tt = 0.0f;  // first chunk: nothing to rescale
    } else if (mn != m) {
        float a = expf(m - mn);
        tt = a * (tt + (m - mn) * *s);
        *s *= a;
    }
    *m_ = mn;
    exp_sums(isa, z, nc, mn, s, t ? &tt : NULL);
    if (t) *t = tt;
}

// logp of the target whose logit is zt; lse and (if wanted) the entropy.
static float fold_end(float m, float s, float t, float zt, float *lse, float *entropy) {
    float ls = logf(s);
    *lse = m + ls;
    if (entropy) *entropy = ls - t / s;
    return zt - *lse;
}

float k_lmhead_logprob_row(const float *z, int V, int target, float *entropy) {
    if (V <= 0) return 0.0f;
    const int C = min_int(V, lm_vocab), isa = k_isa();
    float m = -INFINITY, s = 0.0f, t = 0.0f, lse;
    for (int c0 = 0; c0 < V; c0 += C) fold_chunk(isa, &m, &s, entropy ? &t : NULL, z + c0, min_int(C, V - c0));
    return fold_end(m, s, t, target >= 0 && target < V ? z[target] : 0.0f, &lse, entropy);
}

static void lm_fwd(float *logp, float *entropy, float *lse, const float *h, const float *W, const uint16_t *Wh,
                   const int *targets, int N, int D, int V, float *scratch) {
    if (N <= 0) return;
    for (int i = 0; i < N; i++)
        if (targets[i] < 0) {
            logp[i] = 0.0f;
            lse[i] = 0.0f;
            if (entropy) entropy[i] = 0.0f;
        }
    if (D <= 0 || V <= 0) return;
    const int R = min_int(N, lm_rows), C = min_int(V, lm_vocab), isa = k_isa();
    float *Z = scratch, *Hc = Z + (long)R * C;
    float *sm = Hc + 2L * R * D, *ss = sm + R, *st = ss + R, *sz = st + R;
    float *wc = sz + R;  // bf16 only: the widened vocabulary chunk
    int idx[ROWS_MAX], cursor = 0, nr;

    while ((nr = next_rows(idx, &cursor, R, N, targets, NULL, NULL)) > 0) {
        gather_rows(Hc, h, idx, nr, D);
        for (int r = 0; r < nr; r++) sm[r] = -INFINITY, ss[r] = st[r] = sz[r] = 0.0f;
        for (int c0 = 0; c0 < V; c0 += C) {
            int nc = min_int(C, V - c0);
            k_sgemm(0, 1, nr, nc, D, 1.0f, Hc, D, chunk_of(W, Wh, wc, c0, nc, D), D, 0.0f, Z, nc);
            #pragma omp parallel for schedule(static)
            for (int r = 0; r < nr; r++) {
                const float *z = Z + (long)r * nc;
                fold_chunk(isa, &sm[r], &ss[r], entropy ? &st[r] : NULL, z, nc);
                int tg = targets[idx[r]];
                if (tg >= c0 && tg < c0 + nc) sz[r] = z[tg - c0];
            }
        }
        for (int r = 0; r < nr; r++) {
            int i = idx[r];
            logp[i] = fold_end(sm[r], ss[r], st[r], sz[r], &lse[i], entropy ? &entropy[i] : NULL);
        }
    }
}

static void lm_bwd(float *dh, float *dW, const float *dlogp, const float *dentropy, const float *h, const float *W,
                   const uint16_t *Wh, const int *targets, const float *lse, const float *entropy, int N, int D, int V,
                   float *scratch) {
    if (N <= 0 || D <= 0 || V <= 0) return;
    if (!entropy) dentropy = NULL;  // dH/dz needs H; see kernels.h
    const int R = min_int(N, lm_rows), C = min_int(V, lm_vocab), isa = k_isa();
    float *Z = scratch, *Hc = Z + (long)R * C, *dHc = Hc + (long)R * D;
    float *wc = dHc + (long)R * D + 4L * R;  // bf16 only (the layout of k_lmhead_scratch_floats, then C x D)
    int idx[ROWS_MAX], cursor = 0, nr;

    while ((nr = next_rows(idx, &cursor, R, N, targets, dlogp, dentropy)) > 0) {
        gather_rows(Hc, h, idx, nr, D);
        memset(dHc, 0, (size_t)nr * D * sizeof(float));
        for (int c0 = 0; c0 < V; c0 += C) {
            int nc = min_int(C, V - c0);
            const float *Wc = chunk_of(W, Wh, wc, c0, nc, D);
            k_sgemm(0, 1, nr, nc, D, 1.0f, Hc, D, Wc, D, 0.0f, Z, nc);
            #pragma omp parallel for schedule(static)
            for (int r = 0; r < nr; r++) {
                int i = idx[r], tg = targets[i];
                float g = dlogp[i], e = dentropy ? dentropy[i] : 0.0f;
                float *z = Z + (long)r * nc;
                dlogits_row(isa, z, nc, lse[i], g + (dentropy ? e * entropy[i] : 0.0f), e);
                if (tg >= c0 && tg < c0 + nc) z[tg - c0] += g;
            }
            // dh_chunk[nr, D] += dz[nr, nc] @ W_chunk[nc, D]
            k_sgemm(0, 0, nr, D, nc, 1.0f, Z, nc, Wc, D, 1.0f, dHc, D);
            // dW_chunk[nc, D] += dz^T @ h_chunk[nr, D]
            if (dW)
                k_sgemm(1, 0, nc, D, nr, 1.0f, Z, nc, Hc, D, 1.0f, dW + (long)c0 * D, D);
        }
        #pragma omp parallel for schedule(static)
        for (int r = 0; r < nr; r++) {
            float *dst = dh + (long)idx[r] * D;
            const float *src = dHc + (long)r * D;
            #pragma omp simd
            for (int j = 0; j < D; j++) dst[j] += src[j];
        }
    }
}

void k_lmhead_logprob_fwd(float *logp, float *entropy, float *lse, const float *h, const float *W,
                          const int *targets, int N, int D, int V, float *scratch) {
    lm_fwd(logp, entropy, lse, h, W, NULL, targets, N, D, V, scratch);
}

void k_lmhead_logprob_bwd(float *dh, float *dW, const float *dlogp, const float *dentropy,
                          const float *h, const float *W, const int *targets, const float *lse,
                          const float *entropy, int N, int D, int V, float *scratch) {
    lm_bwd(dh, dW, dlogp, dentropy, h, W, NULL, targets, lse, entropy, N, D, V, scratch);
}

size_t k_lmhead_bf16_scratch_floats(int N, int D, int V) {
    return k_lmhead_scratch_floats(N, D, V) + (size_t)min_int(V, lm_vocab) * (size_t)(D > 0 ? D : 0);
}

void k_lmhead_bf16_logprob_fwd(float *logp, float *entropy, float *lse, const float *h, const uint16_t *W,
                               const int *targets, int N, int D, int V, float *scratch) {
    lm_fwd(logp, entropy, lse, h, NULL, W, targets, N, D, V, scratch);
}

void k_lmhead_bf16_logprob_bwd(float *dh, const float *dlogp, const float *dentropy, const float *h, const uint16_t *W,
                               const int *targets, const float *lse, const float *entropy, int N, int D, int V,
                               float *scratch) {
    lm_bwd(dh, NULL, dlogp, dentropy, h, NULL, W, targets, lse, entropy, N, D, V, scratch);
}
