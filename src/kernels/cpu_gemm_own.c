// kernels/cpu_gemm_own.c: our own fp32 "NT" GEMM, C[M,N] = alpha A B^T + beta C with A
// [M,K] and B [N,K] both row-major (x W^T: every forward linear layer and the lm-head),
// whose result for each element is the same bits whatever the call around it.
//
// Why: OpenBLAS sums an element's dot product in an order that depends on the tile
// it falls in, the shape of the call and the CPU's kernel, so the sampler's one-row
// decode and the trainer's packed forward agreed only to ~1e-6 (issue 15). RL wants
// them equal: here the order is a property of K alone.
//
// The order (every ISA, every shape, every thread count): one chain of FMAs in k order,
//   s = 0; for k = 0 .. K-1: s = fma(a[k], b[k], s)
// then C = alpha * s (alpha = 1: s itself), then + beta * C_old when beta != 0 (beta = 1:
// + C_old), each a separate rounding. An element never shares a reduction with another
// and K is never split, so any cut of C into tiles or threads gives the same bits: row r
// of an M-row call is the 1-row call of row r, and 1, 2 or 16 threads agree. AVX-512F,
// AVX2+FMA and the portable C path (fmaf) compute exactly this, so the bits are also the
// same on every x86-64 CPU.
//
// Speed: this is the order of the "broadcast" GEMM kernels (OpenBLAS's, BLIS's), which
// keep a tile of C in registers and sum along K with no reduction at the end. B (the
// weight) is packed per call into panels of 16 columns, k-major (Bp[k][16], zero past N),
// into a per-thread buffer sized for L2; each panel block then serves every row of A.
// Micro-tiles: 6 rows x 64 columns (24 zmm accumulators) on AVX-512, 6 x 16 (12 ymm) on
// AVX2. The packing transposes 16 x 16 blocks in registers, so a decode row (M = 1)
// costs about one read of W, as a GEMV does.
//
// (The earlier version summed 16 interleaved lanes and reduced them by a tree: a dot
// product per element, 12-35% slower than OpenBLAS on the training forward. The fixed
// dot of k_dot_fixed below, used by RMSNorm, keeps that order: a single dot vectorizes
// only along K.)
#include <pthread.h>
#include "kernels/kernels.h"
#include "kernels/cpu_gemm_own.h"
#include "kernels/cpu_isa.h"
#include "kernels/cpu_tuning.h"
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PW 16  // columns per packed panel

static float finish(float s, float alpha, float beta, const float *c) {
    float r = alpha == 1.0f ? s : alpha * s;
    if (beta == 0.0f) return r;
    float b = beta == 1.0f ? *c : beta * *c;
    return r + b;
}

// ---------------------------------------------------------------- the GEMM's arguments

typedef struct gemm_args {
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    long lda, ldb, ldc;
} gemm_args;

// ---------------------------------------------------------------- portable C

// Rows [i0, i1) x columns [j0, j1), straight from B: the reference, and the path of a
// CPU without AVX2 (or of a call whose pack buffer could not be had: same bits).
static void block_c(const gemm_args *g, int i0, int i1, int j0, int j1) {
    for (int i = i0; i < i1; i++) {
        const float *a = g->A + (long)i * g->lda;
        for (int j = j0; j < j1; j++) {
            const float *b = g->B + (long)j * g->ldb;
            float s = 0.0f;
            for (int k = 0; k < g->K; k++) s = fmaf(a[k], b[k], s);
            float *c = g->C + (long)i * g->ldc + j;
            *c = finish(s, g->alpha, g->beta, c);
        }
    }
}

// ---------------------------------------------------------------- AVX2 + FMA

#define AVX2 __attribute__((target("avx2,fma")))

// 8 x 8 transpose: r[c] (8 k of column c) -> r[k] (8 columns at k).
AVX2 static inline void tr8_avx2(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

AVX2 static void pack_avx2(float *Bp, const float *B, long ldb, int n, int K) {
    const int K8 = K / 8 * 8;
    for (int p = 0; p * PW < n; p++) {
        float *d = Bp + (long)p * K * PW;
        for (int h = 0; h < 2; h++) {  // columns 8 h .. 8 h + 7 of the panel
            const int c0 = p * PW + 8 * h;
            const float *src[8];
            int live[8];
            for (int c = 0; c < 8; c++) live[c] = c0 + c < n, src[c] = B + (long)(live[c] ? c0 + c : 0) * ldb;
            for (int k = 0; k < K8; k += 8) {
                __m256 r[8];
                for (int c = 0; c < 8; c++) r[c] = live[c] ? _mm256_loadu_ps(src[c] + k) : _mm256_setzero_ps();
                tr8_avx2(r);
                for (int kk = 0; kk < 8; kk++) _mm256_storeu_ps(d + (long)(k + kk) * PW + 8 * h, r[kk]);
            }
            for (int k = K8; k < K; k++)
                for (int c = 0; c < 8; c++) d[(long)k * PW + 8 * h + c] = live[c] ? src[c][k] : 0.0f;
        }
    }
}

// One micro-tile: MR rows x one panel (16 columns, nc of them live), over all of K.
AVX2 static inline __attribute__((always_inline)) void tile_avx2_t(const gemm_args *g, const int MR, int i,
                                                                     int j, const float *Bp, int nc) {
    const float *a = g->A + (long)i * g->lda;
    const long lda = g->lda;
    __m256 lo[6], hi[6];
    for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int k = 0; k < g->K; k++) {
        __m256 b0 = _mm256_loadu_ps(Bp + (long)k * PW), b1 = _mm256_loadu_ps(Bp + (long)k * PW + 8);
        #pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * lda + k);
            lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);
            hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);
        }
    }
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc), idx), m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8), idx);
    for (int r = 0; r < MR; r++) {
        float *c = g->C + (long)(i + r) * g->ldc + j;
        __m256 o0 = lo[r], o1 = hi[r];
        if (g->alpha != 1.0f) {
            o0 = _mm256_mul_ps(o0, _mm256_set1_ps(g->alpha));
            o1 = _mm256_mul_ps(o1, _mm256_set1_ps(g->alpha));
        }
        if (g->beta != 0.0f) {
            __m256 c0 = _mm256_maskload_ps(c, m0), c1 = _mm256_maskload_ps(c + 8, m1);
            if (g->beta != 1.0f) {
                c0 = _mm256_mul_ps(c0, _mm256_set1_ps(g->beta));
                c1 = _mm256_mul_ps(c1, _mm256_set1_ps(g->beta));
            }
            o0 = _mm256_add_ps(o0, c0);
            o1 = _mm256_add_ps(o1, c1);
        }
        _mm256_maskstore_ps(c, m0, o0);
        _mm256_maskstore_ps(c + 8, m1, o1);
    }
}

// Rows [i0, i1) x the n columns from j0 whose panels are in Bp.
AVX2 static void block_avx2(const gemm_args *g, int i0, int i1, int j0, int n, const float *Bp) {
    for (int i = i0; i < i1; i += 6)
        for (int p = 0; p * PW < n; p++) {
            const float *bp = Bp + (long)p * g->K * PW;
            int nc = n - p * PW < PW ? n - p * PW : PW, j = j0 + p * PW;
            switch (i1 - i < 6 ? i1 - i : 6) {
            case 1: tile_avx2_t(g, 1, i, j, bp, nc); break;
            case 2: tile_avx2_t(g, 2, i, j, bp, nc); break;
            case 3: tile_avx2_t(g, 3, i, j, bp, nc); break;
            case 4: tile_avx2_t(g, 4, i, j, bp, nc); break;
            case 5: tile_avx2_t(g, 5, i, j, bp, nc); break;
            default: tile_avx2_t(g, 6, i, j, bp, nc); break;
            }
        }
}

// ---------------------------------------------------------------- AVX-512F

#define AVX512 __attribute__((target("avx512f")))

// 16 x 16 transpose: r[c] (16 k of column c) -> r[k] (16 columns at k).
AVX512 static inline void tr16_avx512(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
    }
    // r[4 q + s]: 128-bit chunk l holds k = 4 l + s of columns 4 q .. 4 q + 3.
    for (int s = 0; s < 4; s++)
        for (int h = 0; h < 2; h++) {
            // chunks (k = s, 4 + s) of columns 8 h .. 8 h + 7, then (8 + s, 12 + s)
            t[8 * h + s] = _mm512_shuffle_f32x4(r[8 * h + s], r[8 * h + 4 + s], _MM_SHUFFLE(1, 0, 1, 0));
            t[8 * h + 4 + s] = _mm512_shuffle_f32x4(r[8 * h + s], r[8 * h + 4 + s], _MM_SHUFFLE(3, 2, 3, 2));
        }
    // t[8 h + s]: chunks [k=s cols 8h..8h+3, k=4+s cols 8h.., k=s cols 8h+4.., k=4+s cols 8h+4..];
    // t[8 h + 4 + s]: the same for k = 8 + s, 12 + s.
    for (int s = 0; s < 4; s++)
        for (int u = 0; u < 2; u++) {
            __m512 x = t[4 * u + s], y = t[8 + 4 * u + s];
            r[8 * u + s] = _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0));      // k = 8 u + s
            r[8 * u + 4 + s] = _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1));  // k = 8 u + 4 + s
        }
}

AVX512 static void pack_avx512(float *Bp, const float *B, long ldb, int n, int K) {
    const int K16 = K / 16 * 16;
    for (int p = 0; p * PW < n; p++) {
        float *d = Bp + (long)p * K * PW;
        const int c0 = p * PW;
        const float *src[16];
        int live[16];
        for (int c = 0; c < 16; c++) live[c] = c0 + c < n, src[c] = B + (long)(live[c] ? c0 + c : 0) * ldb;
        for (int k = 0; k < K16; k += 16) {
            __m512 r[16];
            #pragma GCC unroll 16
            for (int c = 0; c < 16; c++) r[c] = live[c] ? _mm512_loadu_ps(src[c] + k) : _mm512_setzero_ps();
            tr16_avx512(r);
            #pragma GCC unroll 16
            for (int kk = 0; kk < 16; kk++) _mm512_storeu_ps(d + (long)(k + kk) * PW, r[kk]);
        }
        for (int k = K16; k < K; k++)
            for (int c = 0; c < 16; c++) d[(long)k * PW + c] = live[c] ? src[c][k] : 0.0f;
    }
}

// One micro-tile: MR rows x NP panels (the last with nc live columns), over all of K.
AVX512 static inline __attribute__((always_inline)) void tile_avx512_t(const gemm_args *g, const int MR,
                                                                         const int NP, int i, int j, const float *Bp,
                                                                         int nc) {
    const float *a = g->A + (long)i * g->lda;
    const long lda = g->lda, ps = (long)g->K * PW;
    __m512 acc[6][4];
    #pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 4
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    const float *b = Bp;
    for (int k = 0; k < g->K; k++, b += PW) {
        __m512 y[4];
        #pragma GCC unroll 4
        for (int q = 0; q < NP; q++) y[q] = _mm512_loadu_ps(b + q * ps);
        #pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512 x = _mm512_set1_ps(a[r * lda + k]);
            #pragma GCC unroll 4
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_fmadd_ps(x, y[q], acc[r][q]);
        }
    }
    #pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 4
        for (int q = 0; q < NP; q++) {
            const __mmask16 m = q == NP - 1 ? (__mmask16)((1u << nc) - 1u) : (__mmask16)0xffff;
            float *c = g->C + (long)(i + r) * g->ldc + j + q * PW;
            __m512 o = acc[r][q];
            if (g->alpha != 1.0f) o = _mm512_mul_ps(o, _mm512_set1_ps(g->alpha));
            if (g->beta != 0.0f) {
                __m512 old = _mm512_maskz_loadu_ps(m, c);
                if (g->beta != 1.0f) old = _mm512_mul_ps(old, _mm512_set1_ps(g->beta));
                o = _mm512_add_ps(o, old);
            }
            _mm512_mask_storeu_ps(c, m, o);
        }
}

#define TILE512(MR)                                                                                                    \
    switch (np) {                                                                                                      \
    case 1: tile_avx512_t(g, MR, 1, i, j, bp, nc); break;                                                              \
    case 2: tile_avx512_t(g, MR, 2, i, j, bp, nc); break;                                                              \
    case 3: tile_avx512_t(g, MR, 3, i, j, bp, nc); break;                                                              \
    default: tile_avx512_t(g, MR, 4, i, j, bp, nc); break;                                                             \
    }

AVX512 static void block_avx512(const gemm_args *g, int i0, int i1, int j0, int n, const float *Bp) {
    for (int i = i0; i < i1; i += 6)
        for (int p = 0; p * PW < n; p += 4) {
            const float *bp = Bp + (long)p * g->K * PW;
            int left = n - p * PW, np = left >= 4 * PW ? 4 : (left + PW - 1) / PW;
            int nc = left - (np - 1) * PW < PW ? left - (np - 1) * PW : PW, j = j0 + p * PW;
            switch (i1 - i < 6 ? i1 - i : 6) {
            case 1: TILE512(1) break;
            case 2: TILE512(2) break;
            case 3: TILE512(3) break;
            case 4: TILE512(4) break;
            case 5: TILE512(5) break;
            default: TILE512(6) break;
            }
        }
}
#undef TILE512

// ---------------------------------------------------------------- dispatch

static int isa_cur = -1;

// one the CPU lacks, or -1, gives the kernels' run-time path (cpu_isa.c: the widest the CPU
// has, or TEMPER_ISA)
int k_gemm_set_isa(int isa) {
    isa_cur = isa >= 0 && isa <= K_GEMM_ISA_AVX512 && k_isa_supported(isa) ? isa : k_isa();
    return isa_cur;
}

// TEMPER_OWN_GEMM=c|avx2|avx512 picks the path at first use (benchmarks of the AVX2 path
// on an AVX-512 machine).
int k_gemm_isa(void) {
    if (isa_cur < 0) k_gemm_set_isa(k_isa_from_env("TEMPER_OWN_GEMM"));
    return isa_cur;
}

const char *k_gemm_isa_name(int isa) { return k_isa_name(isa); }

#define L2_BYTES (1L << 20)  // packed panels per block: about half this core's L2

// The pack buffer of the thread running a block: grown, never shrunk, kept for the
// thread's life (a decode step would otherwise allocate per call), and freed when the
// thread exits (a pthread key's destructor: OpenMP ends pool threads when a team shrinks).
// NULL if malloc failed.
static _Thread_local float *pack_buf;
static _Thread_local long pack_cap;
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
static int pack_key_ok;
static void pack_key_init(void) { pack_key_ok = pthread_key_create(&pack_key, free) == 0; }

static float *pack_space(long floats) {
    if (floats <= pack_cap) return pack_buf;
    free(pack_buf);
    pack_buf = aligned_alloc(64, (size_t)(floats * 4 + 63) / 64 * 64);
    pack_cap = pack_buf ? floats : 0;
    pthread_once(&pack_once, pack_key_init);
    if (pack_key_ok) pthread_setspecific(pack_key, pack_buf);
    return pack_buf;
}

// Rows [i0, i1) x columns [j0, j1) against the packed panels Bp of those columns, or, when
// Bp is NULL, pack them first into this thread's buffer.
static void gemm_block(const gemm_args *g, int isa, int i0, int i1, int j0, int j1, const float *Bp) {
    const int n = j1 - j0;
    if (!Bp) {
        float *buf = isa == K_GEMM_ISA_C ? NULL : pack_space((long)(n + PW - 1) / PW * PW * g->K);
        if (!buf) {  // the reference path: same bits, no buffer
            block_c(g, i0, i1, j0, j1);
            return;
        }
        const float *B = g->B + (long)j0 * g->ldb;
        if (isa == K_GEMM_ISA_AVX512) pack_avx512(buf, B, g->ldb, n, g->K);
        else pack_avx2(buf, B, g->ldb, n, g->K);
        Bp = buf;
    }
    if (isa == K_GEMM_ISA_AVX512) block_avx512(g, i0, i1, j0, n, Bp);
    else block_avx2(g, i0, i1, j0, n, Bp);
}

// ---------------------------------------------------------------- packed weights kept

// While the weights are frozen (k_gemm_weights_frozen: the sampler, for one rollout), a
// linear layer's call (k_gemm_nt_weight: B is a weight, never a scratch buffer whose
// contents change under the same pointer) of few rows (a decode step) keeps B's packed panels, keyed by (B, ldb, N, K), and
// later calls on the same B skip the packing: a decode step then reads each weight
// once, as a GEMV does, instead of reading and transposing it. Many-row calls pack per
// call (the packing is ~1% of their work). Capped at CACHE_MAX_BYTES; freed at thaw.
#define CACHE_ROWS 16
#define CACHE_MAX_BYTES (4L << 30)

typedef struct packed_w {
    const float *B;
    long ldb;
    int N, K, isa;
    float *Bp;
} packed_w;

static int frozen;
static packed_w *cache;
static int ncache, capcache, cache_last;
static long cache_bytes;

static void cache_clear(void) {
    for (int i = 0; i < ncache; i++) free(cache[i].Bp);
    free(cache);
    cache = NULL, ncache = capcache = cache_last = 0, cache_bytes = 0;
}

void k_gemm_weights_frozen(int on) {
    frozen += on ? 1 : -1;
    if (frozen <= 0) frozen = 0, cache_clear();
}

// B's panels, packed now if new; NULL when over the cap or out of memory (the caller
// packs per call). Called from the serial region only.
static const float *cache_get(const gemm_args *g, int isa) {
    for (int t = 0; t < ncache; t++) {  // decode steps call the weights in one order: start after the last hit
        packed_w *e = &cache[(cache_last + t) % ncache];
        if (e->B == g->B && e->ldb == g->ldb && e->N == g->N && e->K == g->K && e->isa == isa) {
            cache_last = (int)(e - cache);
            return e->Bp;
        }
    }
    long floats = (long)(g->N + PW - 1) / PW * PW * g->K;
    if (cache_bytes + floats * 4 > CACHE_MAX_BYTES) return NULL;
    if (ncache == capcache) {
        int nc = capcache ? 2 * capcache : 64;
        packed_w *c = realloc(cache, sizeof(packed_w) * (size_t)nc);
        if (!c) return NULL;
        cache = c, capcache = nc;
    }
    float *Bp = aligned_alloc(64, (size_t)(floats * 4 + 63) / 64 * 64);
    if (!Bp) return NULL;
    const int np = (g->N + PW - 1) / PW;
    #pragma omp parallel for schedule(static) if (np > 8)
    for (int p = 0; p < np; p++) {
        int n = g->N - p * PW < PW ? g->N - p * PW : PW;
        const float *B = g->B + (long)p * PW * g->ldb;
        if (isa == K_GEMM_ISA_AVX512) pack_avx512(Bp + (long)p * PW * g->K, B, g->ldb, n, g->K);
        else pack_avx2(Bp + (long)p * PW * g->K, B, g->ldb, n, g->K);
    }
    cache[ncache] = (packed_w){g->B, g->ldb, g->N, g->K, isa, Bp};
    cache_last = ncache++;
    cache_bytes += floats * 4;
    return Bp;
}

static void gemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc, int weight) {
    if (M <= 0 || N <= 0) return;
    const gemm_args g = {M, N, K > 0 ? K : 0, alpha, beta, A, B, C, lda, ldb, ldc};
    const int isa = K > 0 ? k_gemm_isa() : K_GEMM_ISA_C;
    const int inpar = omp_in_parallel();
    const float *Bp = weight && frozen && !inpar && M <= CACHE_ROWS && isa != K_GEMM_ISA_C ? cache_get(&g, isa) : NULL;
    // How C is cut changes no bits (see the top), so the cut may follow the thread
    // count: column blocks of packed panels that fit L2, as many as a multiple of the
    // threads; row blocks only when there are too few columns to go round.
    const int serial = inpar || omp_get_max_threads() == 1 || (double)M * N * K < 5e5;
    const int nt = serial ? 1 : omp_get_max_threads();
    long cbmax = L2_BYTES / 4 / (K > 0 ? K : 1) / 64 * 64;
    if (cbmax < 64) cbmax = 64;
    int ncb = (int)((N + cbmax - 1) / cbmax);
    ncb = (ncb + nt - 1) / nt * nt;
    int cb = (N + ncb - 1) / ncb;
    cb = (cb + PW - 1) / PW * PW;
    ncb = (N + cb - 1) / cb;
    int nrb = ncb >= nt ? 1 : (nt + ncb - 1) / ncb, rb = (M + nrb - 1) / nrb;
    rb = (rb + 5) / 6 * 6;
    nrb = (M + rb - 1) / rb;
    #pragma omp parallel for collapse(2) schedule(static) if (!serial && ncb * nrb > 1)
    for (int cbi = 0; cbi < ncb; cbi++)
        for (int rbi = 0; rbi < nrb; rbi++) {
            int i1 = (rbi + 1) * rb < M ? (rbi + 1) * rb : M, j1 = (cbi + 1) * cb < N ? (cbi + 1) * cb : N;
            gemm_block(&g, isa, rbi * rb, i1, cbi * cb, j1, Bp ? Bp + (long)cbi * cb * g.K : NULL);
        }
}

void k_gemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc) {
    gemm_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0);
}

void k_gemm_nt_weight(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc) {
    gemm_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1);
}

// ---------------------------------------------------------------- the fixed dot

// k_dot_fixed's order, on every path: lane l = 0..15 sums a[k] * b[k] for k = l, l + 16,
// ... by FMA in k order from +0 (a K tail reads zeros); then t8[l] = lane[l] + lane[l+8],
// t4[l] = t8[l] + t8[l+4], t2[l] = t4[l] + t4[l+2], s = t2[0] + t2[1].

static float dot_c(const float *a, const float *b, int K) {
    float v[16] = {0}, t8[8], t4[4], t2[2];
    for (int k = 0; k < K; k++) v[k & 15] = fmaf(a[k], b[k], v[k & 15]);
    for (int l = 0; l < 8; l++) t8[l] = v[l] + v[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    for (int l = 0; l < 2; l++) t2[l] = t4[l] + t4[l + 2];
    return t2[0] + t2[1];
}

AVX2 static float dot_avx2(const float *a, const float *b, int K) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), hi);
    }
    if (k < K) {
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        int n = K - k;
        __m256i ml = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx), mh = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), idx);
        lo = _mm256_fmadd_ps(_mm256_maskload_ps(a + k, ml), _mm256_maskload_ps(b + k, ml), lo);
        hi = _mm256_fmadd_ps(_mm256_maskload_ps(a + k + 8, mh), _mm256_maskload_ps(b + k + 8, mh), hi);
    }
    __m256 t8 = _mm256_add_ps(lo, hi);
    __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1)));
}

AVX512 static float dot_avx512(const float *a, const float *b, int K) {
    __m512 v = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) v = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), v);
    if (k < K) {
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1u);
        v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), v);
    }
    __m256 t8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1)));
}

float k_dot_fixed(const float *a, const float *b, int K) {
    switch (k_gemm_isa()) {
    case K_GEMM_ISA_AVX512: return dot_avx512(a, b, K);
    case K_GEMM_ISA_AVX2: return dot_avx2(a, b, K);
    default: return dot_c(a, b, K);
    }
}
