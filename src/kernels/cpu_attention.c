// kernels/cpu_attention.c: causal grouped-query attention over packed sequences,
// flash-attention style: scores are computed in BQ x BK tiles on the stack, the
// forward keeps an online softmax and saves only lse, and the backward recomputes
// the probabilities from lse. Nothing of size N x N (or L x L) is ever stored.
//
// Why hand-written tiles and not one sgemm per (sequence, head) block: the blocks
// are small (L = 256..512, d = 64), half of each score matrix is masked by
// causality, and the sgemm route needs an L x L scratch with a separate softmax pass
// between two GEMMs. bench/kernels_bench.c measured, 2 threads, forward only:
// 8 x 256 tokens, Hq=4, Hkv=2: tiles 3.5 ms, sgemm route 7.5 ms (its 2 GEMMs alone
// 2.7 ms); 4 x 512, Hq=12, Hkv=4: tiles 13.8 ms, sgemm route 41.8 ms (GEMMs alone
// 14.0 ms). Backward with tiles: 5.0 and 24.1 ms. (Shared machine: about +-30%.)
//
// Inputs are first repacked into the scratch (K, V as transposed d x 64 panels; Q,
// K, dO as contiguous 64-row tiles per head, each sequence padded to a multiple of
// 64): tiles read from the original [N, H, d] layout have rows H*d floats apart,
// which maps them onto a quarter of the L1 sets.
//
// Micro-kernels (AVX-512, with plain-C fallbacks):
//   tile_abT:  S[r][j]  = sum_c A[r][c] * BT[c][j]   (4 rows x 64 columns in 16 zmm
//              accumulators; BT is a d x 64 panel of K or V transposed into the
//              scratch once per call, so the inner loop is a broadcast-FMA over 16
//              keys at a time on contiguous memory)
//   rows_acc:  C[r][:] += sum_t A(r,t) * B[t][:]     (4 rows x 64 head dims; A is
//              read through strides, so the same kernel does P V, P^T dO, dS^T Q, dS K)
//
// Backward (per query row i, key j, scale s = 1/sqrt(d), P from lse):
//   Di    = sum_c dO[i][c] * O[i][c]
//   dP_ij = dO_i . V_j
//   dS_ij = P_ij (dP_ij - Di) * s
//   dQ_i += sum_j dS_ij K_j,  dK_j += sum_i dS_ij Q_i,  dV_j += sum_i P_ij dO_i
// The backward runs one task per (sequence, kv head): the task owns dK and dV of that
// head and dQ of the query heads that share it, so there are no races and no atomics.
// Limitation: with fewer such tasks than threads (one sequence, one kv head) the
// backward runs on fewer threads; splitting dQ from dK/dV would fix that at the
// cost of recomputing P.
#include "kernels/kernels.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_attention_tiles.h"
#include <math.h>

#define BQ 64  // query rows per tile
#define BK 64  // keys per tile (tile_abT computes 64 columns at once)

// ---------------------------------------------------------------- micro-kernels

// S[r*lds + j] = sum_{c<d} A[r*lda + c] * BT[c*ldbt + j], r < nr, j < nk <= 64.
// Columns nk..63 of S are written as 0.
void k_att_tile_abT(float *S, int lds, const float *A, long lda, int nr, const float *BT, long ldbt,
                     int nk, int d) {
#ifdef __AVX512F__
    __mmask16 km[4];
    for (int v = 0; v < 4; v++) km[v] = tail_mask16(nk - 16 * v < 0 ? 0 : nk - 16 * v);
    for (int r0 = 0; r0 < nr; r0 += 4) {
        const float *ar[4];
        for (int r = 0; r < 4; r++) ar[r] = A + (long)(r0 + r < nr ? r0 + r : nr - 1) * lda;
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
        for (int c = 0; c < d; c++) {
            const float *b = BT + (long)c * ldbt;
            __m512 bv[4];
            for (int v = 0; v < 4; v++) bv[v] = _mm512_maskz_loadu_ps(km[v], b + 16 * v);
            for (int r = 0; r < 4; r++) {
                __m512 a = _mm512_set1_ps(ar[r][c]);
                for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(a, bv[v], acc[r][v]);
            }
        }
        for (int r = 0; r < 4 && r0 + r < nr; r++)
            for (int v = 0; v < 4; v++) _mm512_storeu_ps(S + (long)(r0 + r) * lds + 16 * v, acc[r][v]);
    }
#else
    for (int r = 0; r < nr; r++) {
        float *s = S + (long)r * lds;
        for (int j = 0; j < 64; j++) s[j] = 0.0f;
        for (int c = 0; c < d; c++) {
            float a = A[(long)r * lda + c];
            const float *b = BT + (long)c * ldbt;
            for (int j = 0; j < nk; j++) s[j] += a * b[j];
        }
    }
#endif
}

// C[r*ldc + :d] += sum_{t<nt} A[r*ars + t*ats] * B[t*ldb + :d], r < nr.
void k_att_rows_acc(float *C, long ldc, int nr, const float *A, int ars, int ats, int nt,
                     const float *B, long ldb, int d) {
#ifdef __AVX512F__
    for (int r0 = 0; r0 < nr; r0 += 4) {
        const float *ar[4];
        for (int r = 0; r < 4; r++) ar[r] = A + (long)(r0 + r < nr ? r0 + r : nr - 1) * ars;
        for (int c0 = 0; c0 < d; c0 += 64) {
            __mmask16 cm[4];
            for (int v = 0; v < 4; v++) cm[v] = tail_mask16(d - c0 - 16 * v < 0 ? 0 : d - c0 - 16 * v);
            __m512 acc[4][4];
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
            for (int t = 0; t < nt; t++) {
                const float *b = B + (long)t * ldb + c0;
                __m512 bv[4];
                for (int v = 0; v < 4; v++) bv[v] = _mm512_maskz_loadu_ps(cm[v], b + 16 * v);
                for (int r = 0; r < 4; r++) {
                    __m512 a = _mm512_set1_ps(ar[r][(long)t * ats]);
                    for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(a, bv[v], acc[r][v]);
                }
            }
            for (int r = 0; r < 4 && r0 + r < nr; r++) {
                float *c = C + (long)(r0 + r) * ldc + c0;
                for (int v = 0; v < 4; v++)
                    _mm512_mask_storeu_ps(c + 16 * v, cm[v],
                                          _mm512_add_ps(_mm512_maskz_loadu_ps(cm[v], c + 16 * v), acc[r][v]));
            }
        }
    }
#else
    for (int r = 0; r < nr; r++) {
        float *c = C + (long)r * ldc;
        for (int t = 0; t < nt; t++) {
            float a = A[(long)r * ars + (long)t * ats];
            const float *b = B + (long)t * ldb;
            for (int i = 0; i < d; i++) c[i] += a * b[i];
        }
    }
#endif
}

// p[j] = exp(p[j] - m) for j < n; returns the sum.
float k_att_exp_shift_sum(float *p, int n, float m) {
#ifdef __AVX512F__
    __m512 mv = _mm512_set1_ps(m), sum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 km = tail_mask16(n - j);
        __m512 e = exp512_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(km, p + j), mv));
        e = _mm512_maskz_mov_ps(km, e);
        _mm512_mask_storeu_ps(p + j, km, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
#else
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        p[j] = exp_scalar(p[j] - m);
        sum += p[j];
    }
    return sum;
#endif
}

// One row of a score tile into the row's online softmax (max m, sum l) and its output
// row o (rescaled when the max moves); s becomes the tile's probabilities.
void k_att_softmax_step(float *sr, int nk, float *m, float *l, float *o, int d) {
    float mx = *m;
    #pragma omp simd reduction(max : mx)
    for (int j = 0; j < nk; j++) mx = sr[j] > mx ? sr[j] : mx;
    if (mx == -INFINITY) {
        // A sliding window can hide this whole tile from the row (its window starts in a
        // later tile): the row takes nothing from it.
        for (int j = 0; j < nk; j++) sr[j] = 0.0f;
        return;
    }
    // Without a window the diagonal key is in the first tile, so mx is finite from here
    // on; with one, the first tile with a visible key makes it so.
    float corr = *m == -INFINITY ? 0.0f : expf(*m - mx);
    *l = *l * corr + k_att_exp_shift_sum(sr, nk, mx);
    *m = mx;
    if (corr != 1.0f)
        for (int c = 0; c < d; c++) o[c] *= corr;
}

// Scale a tile of scores and apply the causal mask: row r is query qi0 + r, column j
// is key kj0 + j (positions within the sequence); keys after the query get -inf, and
// with a sliding window W > 0 so do keys at or before query - W (transformers'
// sliding_window_overlay: kv_idx > q_idx - W).
static void scale_mask(float *S, int nr, int nk, int qi0, int kj0, float scale, int window) {
    for (int r = 0; r < nr; r++) {
        float *s = S + r * BK;
        int lim = qi0 + r - kj0 + 1;  // keys j < lim are visible
        if (lim > nk) lim = nk;
        int lo = window > 0 ? qi0 + r - window + 1 - kj0 : 0;  // and keys j >= lo
        #pragma omp simd
        for (int j = 0; j < nk; j++) s[j] = j < lim && j >= lo ? s[j] * scale : -INFINITY;
    }
}

// The first key tile a query block starting at qi0 can see.
static int first_key_tile(int qi0, int window) {
    if (window <= 0 || qi0 - window + 1 <= 0) return 0;
    return (qi0 - window + 1) / BK * BK;
}

// K and V transposed into key panels: for head h, sequence s and key block b, the
// panel at xT + ((h * Npad) + pstart(s) + b * BK) * d holds [c][j] = x[key j][h][c]
// for the block's (up to) BK keys, zero padded. Each sequence starts at a multiple of
// BK (pstart), so a panel is one contiguous d x BK block: tile_abT then streams
// 16 KB (d = 64) of consecutive memory. With a plain d x N transpose its rows were N
// floats apart, all in the same few L1 sets, and tile_abT ran from L2.
static long padded_tokens(const int *cu, int nseq) {
    long n = 0;
    for (int s = 0; s < nseq; s++) n += (cu[s + 1] - cu[s] + BK - 1) / BK * BK;
    return n;
}
static long pstart(const int *cu, int s) {
    long n = 0;
    for (int o = 0; o < s; o++) n += (cu[o + 1] - cu[o] + BK - 1) / BK * BK;
    return n;
}
static const float *panel(const float *xT, long Npad, int h, long ps, int kj0, int d) {
    return xT + ((long)h * Npad + ps + kj0) * d;
}

// The same padded layout without the transpose: rows [(h * Npad) + pstart(s) + t][d]
// for token t of sequence s. rows_acc's B operand (V, K, Q, dO tiles) then is one
// contiguous 64 x d block instead of 64 rows Hq*d or Hkv*d floats apart, which (like
// the transpose above) mapped a tile onto a quarter of the L1 sets.
static void pack_rows(float *xP, const float *x, const int *cu, int nseq, int H, int d, long Npad) {
    #pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int h = 0; h < H; h++)
        for (int s = 0; s < nseq; s++) {
            int start = cu[s], L = cu[s + 1] - start;
            long ps = pstart(cu, s), Lpad = (L + BK - 1) / BK * BK;
            for (long t = 0; t < Lpad; t++) {
                float *dst = xP + ((long)h * Npad + ps + t) * d;
                const float *src = x + ((long)(start + t) * H + h) * d;
                for (int c = 0; c < d; c++) dst[c] = t < L ? src[c] : 0.0f;
            }
        }
}

static void pack_panels(float *xT, const float *x, const int *cu, int nseq, int H, int d, long Npad) {
    #pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int h = 0; h < H; h++)
        for (int s = 0; s < nseq; s++) {
            int start = cu[s], L = cu[s + 1] - start;
            long ps = pstart(cu, s);
            for (int kj0 = 0; kj0 < L; kj0 += BK) {
                int nk = L - kj0 < BK ? L - kj0 : BK;
                float *dst = (float *)panel(xT, Npad, h, ps, kj0, d);
                for (int c = 0; c < d; c++)
                    for (int j = 0; j < BK; j++)
                        dst[c * BK + j] = j < nk ? x[((long)(start + kj0 + j) * H + h) * d + c] : 0.0f;
            }
        }
}

// ---------------------------------------------------------------- scratch

size_t k_attention_scratch_floats(const int *cu_seqlens, int nseq, int Hq, int Hkv, int d) {
    // The backward's needs (the forward uses less): K and V as transposed panels, K,
    // Q and dO as packed rows, and Di = rowsum(dO * O) for every (token, query head).
    size_t N = nseq > 0 ? (size_t)cu_seqlens[nseq] : 0;
    size_t Npad = nseq > 0 ? (size_t)padded_tokens(cu_seqlens, nseq) : 0;
    return (3 * (size_t)Hkv + 2 * (size_t)Hq) * d * Npad + N * (size_t)Hq;
}

// ---------------------------------------------------------------- scheduling

// The sequence of rank `rank` when sequences are ordered longest first (ties by
// index). Tasks are handed out in that order under a dynamic schedule, so a long
// sequence never starts last and leaves one thread idle. O(nseq^2) per call, which
// is nothing next to a task's work for the few dozen sequences of a batch.
static int seq_by_rank(const int *cu, int nseq, int rank) {
    for (int s = 0; s < nseq; s++) {
        int Ls = cu[s + 1] - cu[s], r = 0;
        for (int o = 0; o < nseq; o++) {
            int Lo = cu[o + 1] - cu[o];
            r += Lo > Ls || (Lo == Ls && o < s);
        }
        if (r == rank) return s;
    }
    return 0;  // unreachable
}

// ---------------------------------------------------------------- forward

// Tasks are (sequence, query head, query block). Within a sequence they are listed
// from the last (most expensive) query block to the first, so the dynamic schedule
// ends on cheap tasks and the threads finish together.
static int ntasks_fwd(const int *cu, int nseq, int Hq) {
    int n = 0;
    for (int s = 0; s < nseq; s++) n += (cu[s + 1] - cu[s] + BQ - 1) / BQ * Hq;
    return n;
}

void k_attention_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                     const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, float *scratch) {
    k_attention_win_fwd(out, lse, q, k, v, cu_seqlens, nseq, N, Hq, Hkv, d, 0, scratch);
}

void k_attention_win_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                         const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, int window, float *scratch) {
    if (N <= 0 || nseq <= 0) return;
    const long Npad = padded_tokens(cu_seqlens, nseq);
    float *kT = scratch, *vP = scratch + (long)Hkv * d * Npad, *qP = vP + (long)Hkv * d * Npad;
    pack_panels(kT, k, cu_seqlens, nseq, Hkv, d, Npad);
    pack_rows(vP, v, cu_seqlens, nseq, Hkv, d, Npad);
    pack_rows(qP, q, cu_seqlens, nseq, Hq, d, Npad);
    const int grp = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)d);
    const long ldq = (long)Hq * d;
    int ntask = ntasks_fwd(cu_seqlens, nseq, Hq);

    #pragma omp parallel for schedule(dynamic, 1)
    for (int task = 0; task < ntask; task++) {
        // Decode the task index into (sequence, head, query block).
        int s = 0, t = task;
        for (int rank = 0;; rank++) {
            s = seq_by_rank(cu_seqlens, nseq, rank);
            int nt = (cu_seqlens[s + 1] - cu_seqlens[s] + BQ - 1) / BQ * Hq;
            if (t < nt) break;
            t -= nt;
        }
        int start = cu_seqlens[s], L = cu_seqlens[s + 1] - start;
        long ps = pstart(cu_seqlens, s);
        int nqb = (L + BQ - 1) / BQ;
        int qb = nqb - 1 - t / Hq, h = t % Hq, kv = h / grp;
        int qi0 = qb * BQ, nq = L - qi0 < BQ ? L - qi0 : BQ;

        float S[BQ * BK], m[BQ], l[BQ];
        const float *qt = panel(qP, Npad, h, ps, qi0, d);
        float *ot = out + (long)(start + qi0) * ldq + (long)h * d;
        for (int r = 0; r < nq; r++) {
            m[r] = -INFINITY;
            l[r] = 0.0f;
            for (int c = 0; c < d; c++) ot[r * ldq + c] = 0.0f;
        }
        for (int kj0 = first_key_tile(qi0, window); kj0 < qi0 + nq; kj0 += BK) {
            int nk = qi0 + nq - kj0 < BK ? qi0 + nq - kj0 : BK;
            k_att_tile_abT(S, BK, qt, d, nq, panel(kT, Npad, kv, ps, kj0, d), BK, nk, d);
            scale_mask(S, nq, nk, qi0, kj0, scale, window);
            for (int r = 0; r < nq; r++) k_att_softmax_step(S + r * BK, nk, &m[r], &l[r], ot + r * ldq, d);
            k_att_rows_acc(ot, ldq, nq, S, BK, 1, nk, panel(vP, Npad, kv, ps, kj0, d), d, d);
        }
        for (int r = 0; r < nq; r++) {
            float inv = 1.0f / l[r];
            for (int c = 0; c < d; c++) ot[r * ldq + c] *= inv;
            lse[(long)(start + qi0 + r) * Hq + h] = m[r] + logf(l[r]);
        }
    }
}

// ---------------------------------------------------------------- backward

void k_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                     const float *k, const float *v, const float *out, const float *lse,
                     const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, float *scratch) {
    k_attention_win_bwd(dq, dk, dv, dout, q, k, v, out, lse, cu_seqlens, nseq, N, Hq, Hkv, d, 0, scratch);
}

void k_attention_win_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                         const float *k, const float *v, const float *out, const float *lse,
                         const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, int window,
                         float *scratch) {
    if (N <= 0 || nseq <= 0) return;
    const long Npad = padded_tokens(cu_seqlens, nseq);
    const long kvsz = (long)Hkv * d * Npad, qsz = (long)Hq * d * Npad;
    float *kT = scratch, *vT = kT + kvsz, *kP = vT + kvsz, *qP = kP + kvsz, *oP = qP + qsz, *Dv = oP + qsz;
    pack_panels(kT, k, cu_seqlens, nseq, Hkv, d, Npad);
    pack_panels(vT, v, cu_seqlens, nseq, Hkv, d, Npad);
    pack_rows(kP, k, cu_seqlens, nseq, Hkv, d, Npad);
    pack_rows(qP, q, cu_seqlens, nseq, Hq, d, Npad);
    pack_rows(oP, dout, cu_seqlens, nseq, Hq, d, Npad);
    const int grp = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)d);
    const long ldq = (long)Hq * d, ldk = (long)Hkv * d;

    #pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)N * Hq; i++) {
        float acc = 0.0f;
        #pragma omp simd reduction(+ : acc)
        for (int c = 0; c < d; c++) acc += dout[i * d + c] * out[i * d + c];
        Dv[i] = acc;
    }

    const int ntask = nseq * Hkv;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int task = 0; task < ntask; task++) {
        int s = seq_by_rank(cu_seqlens, nseq, task / Hkv), kv = task % Hkv;
        int start = cu_seqlens[s], L = cu_seqlens[s + 1] - start;
        long ps = pstart(cu_seqlens, s);
        float P[BQ * BK], dS[BQ * BK];
        for (int kj0 = 0; kj0 < L; kj0 += BK) {
            int nk = L - kj0 < BK ? L - kj0 : BK;
            const float *kt = panel(kP, Npad, kv, ps, kj0, d);
            float *dkt = dk + (long)(start + kj0) * ldk + (long)kv * d;
            float *dvt = dv + (long)(start + kj0) * ldk + (long)kv * d;
            for (int h = kv * grp; h < (kv + 1) * grp; h++) {
                // Query blocks that can see this key block: those ending after kj0 and,
                // with a window, starting before its last key + W.
                int qend = window > 0 && kj0 + nk - 1 + window < L ? kj0 + nk - 1 + window : L;
                for (int qi0 = kj0 / BQ * BQ; qi0 < qend; qi0 += BQ) {
                    int nq = L - qi0 < BQ ? L - qi0 : BQ;
                    const float *qt = panel(qP, Npad, h, ps, qi0, d);
                    const float *dot = panel(oP, Npad, h, ps, qi0, d);
                    float *dqt = dq + (long)(start + qi0) * ldq + (long)h * d;
                    // P = exp(scale * Q K^T - lse), recomputed exactly as in the forward.
                    k_att_tile_abT(P, BK, qt, d, nq, panel(kT, Npad, kv, ps, kj0, d), BK, nk, d);
                    scale_mask(P, nq, nk, qi0, kj0, scale, window);
                    for (int r = 0; r < nq; r++) {
                        float lr = lse[(long)(start + qi0 + r) * Hq + h];
                        k_att_exp_shift_sum(P + r * BK, nk, lr);
                    }
                    // dP = dO V^T, then dS = P (dP - Di) * scale, in place.
                    k_att_tile_abT(dS, BK, dot, d, nq, panel(vT, Npad, kv, ps, kj0, d), BK, nk, d);
                    for (int r = 0; r < nq; r++) {
                        float Di = Dv[(long)(start + qi0 + r) * Hq + h];
                        float *pr = P + r * BK, *ds = dS + r * BK;
                        #pragma omp simd
                        for (int j = 0; j < nk; j++) ds[j] = pr[j] * (ds[j] - Di) * scale;
                    }
                    k_att_rows_acc(dvt, ldk, nk, P, 1, BK, nq, dot, d, d);   // dV += P^T dO
                    k_att_rows_acc(dkt, ldk, nk, dS, 1, BK, nq, qt, d, d);   // dK += dS^T Q
                    k_att_rows_acc(dqt, ldq, nq, dS, BK, 1, nk, kt, d, d);   // dQ += dS K
                }
            }
        }
    }
}
