// kernels/cpu_gemm_own.c: our own fp32 "NT" GEMM, C[M,N] = alpha A B^T + beta C with A
// [M,K] and B [N,K] both row-major (x W^T: every forward linear layer and the lm-head),
// whose result for each element is the same bits whatever the call around it.
//
// Why: OpenBLAS sums an element's dot product in an order that depends on the tile
// it falls in, the shape of the call and the CPU's kernel, so the sampler's one-row
// decode and the trainer's packed forward agreed only to ~1e-6 (issue 15). RL wants
// them equal: here the order is a property of K alone.
//
// The order (every ISA, every shape, every thread count):
//   lane l = 0..15 sums a[k] * b[k] for k = l, l + 16, l + 32, ... by FMA, in k order,
//   from +0 (a K tail reads zeros: fma(0, 0, x) = x);
//   s = ((t2[0] + t2[1]) with t2[l] = t4[l] + t4[l+2], t4[l] = t8[l] + t8[l+4],
//        t8[l] = lane[l] + lane[l+8];
//   C = alpha * s (alpha = 1: s itself), then + beta * C_old when beta != 0 (beta = 1:
//   + C_old), each a separate rounding.
// Rows never take part in a reduction, so row r of an M-row call is the 1-row call of
// row r; threads split over M and N only. AVX-512F and AVX2+FMA compute exactly this
// (AVX2 holds the 16 lanes in two ymm), and so does the portable C path (fmaf), so
// the bits are also the same on every x86-64 CPU.
//
// Speed: both operands are read along K as they lie (no packing). A micro-tile is up to
// 16 dots (8 rows of A by 2 of B for many rows; 1 x 8, 2 x 8, ... for the few rows of
// decoding), each a zmm of 16 lanes; the 16 sums of a tile are reduced together by
// shuffles in the order above. The 8 rows of A stay in L1 while the tile sweeps a block
// of B from L2 (each B load feeds 8 FMAs). K is cut into blocks of KC whose lane
// accumulators wait in a per-thread buffer: that keeps the A strip in L1 for any K and
// does not change the order (each lane's chain just continues).
//
// Cost: 9-28% slower than OpenBLAS's AVX-512 sgemm on the forward's shapes (BENCHMARKS.md,
// "deterministic"), so k_sgemm sends x W^T here only under --deterministic. The AVX2 path
// does one dot at a time (right bits, not yet a tuned kernel).
#include "kernels/kernels.h"
#include "kernels/cpu_gemm_own.h"
#include "kernels/cpu_tuning.h"
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>

// ---------------------------------------------------------------- portable C

// Every path: a tile of mr x nr dots (mr * nr <= 16) over k in [k0, k1). first: start
// from zero, else from acc; last: reduce and write C, else leave the 16 lanes of dot
// e = j * mr + i in acc[16 e ..].
typedef struct tile_args {
    float *C;
    long ldc;
    const float *A, *B;
    long lda, ldb;
    int k0, k1, first, last;
    float *acc, alpha, beta;
} tile_args;

static float tree16(const float *v) {
    float t8[8], t4[4], t2[2];
    for (int l = 0; l < 8; l++) t8[l] = v[l] + v[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    for (int l = 0; l < 2; l++) t2[l] = t4[l] + t4[l + 2];
    return t2[0] + t2[1];
}

static float finish(float s, float alpha, float beta, const float *c) {
    float r = alpha == 1.0f ? s : alpha * s;
    if (beta == 0.0f) return r;
    float b = beta == 1.0f ? *c : beta * *c;
    return r + b;
}

static void tile_c(const tile_args *t, int mr, int nr) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            const float *a = t->A + i * t->lda, *b = t->B + j * t->ldb;
            float *v = t->acc + 16 * (j * mr + i);
            if (t->first)
                for (int l = 0; l < 16; l++) v[l] = 0.0f;
            for (int k = t->k0; k < t->k1; k++) v[k & 15] = fmaf(a[k], b[k], v[k & 15]);
            if (t->last) {
                float *c = t->C + i * t->ldc + j;
                *c = finish(tree16(v), t->alpha, t->beta, c);
            }
        }
}

// ---------------------------------------------------------------- AVX2 + FMA

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float tree_avx2(__m256 lo, __m256 hi) {
    __m256 t8 = _mm256_add_ps(lo, hi);
    __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    __m128 t1 = _mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1));
    return _mm_cvtss_f32(t1);
}

// One dot at a time in two ymm (lanes 0-7, 8-15); AVX2 machines get correct bits,
// not yet a fast kernel.
AVX2 static void tile_avx2(const tile_args *t, int mr, int nr) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            const float *a = t->A + i * t->lda, *b = t->B + j * t->ldb;
            float *v = t->acc + 16 * (j * mr + i);
            __m256 lo = t->first ? _mm256_setzero_ps() : _mm256_loadu_ps(v);
            __m256 hi = t->first ? _mm256_setzero_ps() : _mm256_loadu_ps(v + 8);
            int k = t->k0;
            for (; k + 16 <= t->k1; k += 16) {
                lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), lo);
                hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), hi);
            }
            if (k < t->k1) {
                int n = t->k1 - k;
                __m256i ml = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
                __m256i mh = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), idx);
                lo = _mm256_fmadd_ps(_mm256_maskload_ps(a + k, ml), _mm256_maskload_ps(b + k, ml), lo);
                hi = _mm256_fmadd_ps(_mm256_maskload_ps(a + k + 8, mh), _mm256_maskload_ps(b + k + 8, mh), hi);
            }
            if (t->last) {
                float *c = t->C + i * t->ldc + j;
                *c = finish(tree_avx2(lo, hi), t->alpha, t->beta, c);
            } else {
                _mm256_storeu_ps(v, lo);
                _mm256_storeu_ps(v + 8, hi);
            }
        }
}

// ---------------------------------------------------------------- AVX-512F

#define AVX512 __attribute__((target("avx512f")))

// The 16 accumulators v[e] reduced in the order of tree16, all at once: lane 4 c + m of
// the result is the sum of v[4 m + c].
AVX512 static inline __m512 reduce16_avx512(const __m512 *v) {
    __m512 u[8], w[4], z[2];
    #pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {  // t8 (lane l + lane l+8): u[p] = [t8 of v[2p] | t8 of v[2p+1]]
        __m512 lo = _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 hi = _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2));
        u[p] = _mm512_add_ps(lo, hi);
    }
    #pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {  // t4: 128-bit chunk c of w[q] is t4 of v[4q + c]
        __m512 x = _mm512_shuffle_f32x4(u[2 * q], u[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0));
        __m512 y = _mm512_shuffle_f32x4(u[2 * q], u[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1));
        w[q] = _mm512_add_ps(x, y);
    }
    #pragma GCC unroll 2
    for (int s = 0; s < 2; s++) {  // t2: chunk c of z[s] = [t2 of v[8s + c] | t2 of v[8s + 4 + c]]
        __m512 x = _mm512_shuffle_ps(w[2 * s], w[2 * s + 1], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 y = _mm512_shuffle_ps(w[2 * s], w[2 * s + 1], _MM_SHUFFLE(3, 2, 3, 2));
        z[s] = _mm512_add_ps(x, y);
    }
    // t1: chunk c = [v[c], v[4 + c], v[8 + c], v[12 + c]]
    __m512 x = _mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0));
    __m512 y = _mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1));
    return _mm512_add_ps(x, y);
}

// Dot (i, j) of an MR x NR tile is accumulator v[E(i NR + j)], E(L) = 4 (L % 4) + L / 4:
// reduce16_avx512 then leaves it in lane L, so each row of the tile is NR adjacent lanes.
#define E(L) (4 * ((L) & 3) + ((L) >> 2))

// A strip of MR rows of C over ncols columns, in tiles of MR x NR dots (MR * NR <= 16;
// constants after inlining, so the accumulators stay in zmm). A K block [k0, k1) at a
// time: the lane accumulators of tile tl wait in acc[256 tl ..] between blocks.
AVX512 static inline __attribute__((always_inline)) void strip_avx512_t(const tile_args *t, const int MR, const int NR,
                                                                         int ncols) {
    const long lda = t->lda, ldb = t->ldb, ldc = t->ldc;
    const int k0 = t->k0, k1 = t->k1, kf = k0 + (k1 - k0) / 16 * 16;
    const __mmask16 km = (__mmask16)((1u << (k1 - kf)) - 1u);
    const float *a[8];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) a[i] = t->A + i * lda;
    for (int j = 0, tl = 0; j < ncols; j += NR, tl++) {
        const int nr = ncols - j < NR ? ncols - j : NR;
        float *acc = t->acc + 256L * tl;
        const float *b[8];
        #pragma GCC unroll 16
        for (int jj = 0; jj < NR; jj++) b[jj] = t->B + (j + (jj < nr ? jj : 0)) * ldb;
        __m512 v[16];
        #pragma GCC unroll 16
        for (int L = 0; L < 16; L++)
            v[E(L)] = t->first || L >= MR * NR ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + 16 * L);
        for (int k = k0; k < kf; k += 16) {
            __m512 y[8];
            #pragma GCC unroll 16
            for (int jj = 0; jj < NR; jj++) y[jj] = _mm512_loadu_ps(b[jj] + k);
            #pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                __m512 x = _mm512_loadu_ps(a[i] + k);
                __asm__("" : "+v"(x));  // one load of x for its NR FMAs, not one folded into each
                #pragma GCC unroll 16
                for (int jj = 0; jj < NR; jj++) v[E(i * NR + jj)] = _mm512_fmadd_ps(x, y[jj], v[E(i * NR + jj)]);
            }
        }
        if (kf < k1) {
            __m512 y[8];
            #pragma GCC unroll 16
            for (int jj = 0; jj < NR; jj++) y[jj] = _mm512_maskz_loadu_ps(km, b[jj] + kf);
            #pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                __m512 x = _mm512_maskz_loadu_ps(km, a[i] + kf);
                #pragma GCC unroll 16
                for (int jj = 0; jj < NR; jj++) v[E(i * NR + jj)] = _mm512_fmadd_ps(x, y[jj], v[E(i * NR + jj)]);
            }
        }
        if (!t->last) {
            #pragma GCC unroll 16
            for (int L = 0; L < MR * NR; L++) _mm512_storeu_ps(acc + 16 * L, v[E(L)]);
            continue;
        }
        __m512 r = reduce16_avx512(v);
        if (t->alpha != 1.0f) r = _mm512_mul_ps(r, _mm512_set1_ps(t->alpha));
        // Row i is lanes [i NR, i NR + nr): a masked store at C's row shifted back by i NR
        // lanes puts them in place (masked-off lanes are never touched).
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const __mmask16 m = (__mmask16)(((1u << nr) - 1u) << (i * NR));
            float *c = (float *)((uintptr_t)(t->C + i * ldc + j) - sizeof(float) * (size_t)(i * NR));
            __m512 o = r;
            if (t->beta != 0.0f) {
                __m512 old = _mm512_maskz_loadu_ps(m, c);
                if (t->beta != 1.0f) old = _mm512_mul_ps(old, _mm512_set1_ps(t->beta));
                o = _mm512_add_ps(r, old);
            }
            _mm512_mask_storeu_ps(c, m, o);
        }
    }
}
#undef E

AVX512 static void strip_avx512(const tile_args *t, int mr, int ncols) {
    switch (mr) {
    case 1:  // k_dot_fixed's single dot, or a decoded row
        if (ncols == 1) strip_avx512_t(t, 1, 1, 1);
        else strip_avx512_t(t, 1, 8, ncols);
        break;
    case 2: strip_avx512_t(t, 2, 8, ncols); break;
    case 3: strip_avx512_t(t, 3, 5, ncols); break;
    case 4: strip_avx512_t(t, 4, 4, ncols); break;
    case 5: strip_avx512_t(t, 5, 3, ncols); break;
    case 6: strip_avx512_t(t, 6, 2, ncols); break;
    case 7: strip_avx512_t(t, 7, 2, ncols); break;
    default: strip_avx512_t(t, 8, 2, ncols); break;
    }
}

// The portable and AVX2 paths: tiles of mr x 2.
static void strip_tiles(void (*tile)(const tile_args *, int, int), const tile_args *t, int mr, int ncols) {
    for (int j = 0, tl = 0; j < ncols; j += 2, tl++) {
        tile_args u = *t;
        u.C += j;
        u.B += j * t->ldb;
        u.acc += 256L * tl;
        tile(&u, mr, ncols - j < 2 ? ncols - j : 2);
    }
}
static void strip_c(const tile_args *t, int mr, int ncols) { strip_tiles(tile_c, t, mr, ncols); }
AVX2 static void strip_avx2(const tile_args *t, int mr, int ncols) { strip_tiles(tile_avx2, t, mr, ncols); }

// ---------------------------------------------------------------- dispatch

// strip(t, mr, ncols): rows [0, mr <= 8) of t->A and C against ncols rows of t->B.
typedef void (*strip_fn)(const tile_args *, int, int);
static const struct { strip_fn f; const char *name; } paths[] = {
    [K_GEMM_ISA_C] = {strip_c, "c"},
    [K_GEMM_ISA_AVX2] = {strip_avx2, "avx2"},
    [K_GEMM_ISA_AVX512] = {strip_avx512, "avx512"},
};

static int isa_supported(int isa) {
    if (isa == K_GEMM_ISA_AVX512) return __builtin_cpu_supports("avx512f");
    if (isa == K_GEMM_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return isa == K_GEMM_ISA_C;
}

static int isa_cur = -1;

static int isa_best(void) {
    return isa_supported(K_GEMM_ISA_AVX512) ? K_GEMM_ISA_AVX512
           : isa_supported(K_GEMM_ISA_AVX2) ? K_GEMM_ISA_AVX2 : K_GEMM_ISA_C;
}

int k_gemm_set_isa(int isa) {
    isa_cur = isa >= 0 && isa <= K_GEMM_ISA_AVX512 && isa_supported(isa) ? isa : isa_best();
    return isa_cur;
}

int k_gemm_isa(void) {
    if (isa_cur < 0) isa_cur = isa_best();
    return isa_cur;
}

const char *k_gemm_isa_name(int isa) { return isa >= 0 && isa <= K_GEMM_ISA_AVX512 ? paths[isa].name : "?"; }

#define RB 64     // rows of C per block handed to a thread (a multiple of 8)
#define CBMAX 120 // columns of C per block at most: at most 60 tiles of lane accumulators
#define KC 512    // K block: an 8-row strip of A is 16 KB of L1

// One block of C: rows [i0, i1), columns [j0, j1).
static void gemm_block(strip_fn f, int i0, int i1, int j0, int j1, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    float acc[CBMAX / 2 * 256];  // lane accumulators of one row strip's tiles between K blocks
    for (int i = i0; i < i1; i += 8) {
        int mr = i1 - i < 8 ? i1 - i : 8;
        for (int k0 = 0; k0 < K || k0 == 0; k0 += KC) {
            tile_args t = {.C = C + (long)i * ldc + j0, .ldc = ldc, .A = A + (long)i * lda, .lda = lda,
                           .B = B + (long)j0 * ldb, .ldb = ldb, .k0 = k0, .k1 = K - k0 < KC ? K : k0 + KC,
                           .first = k0 == 0, .last = K - k0 <= KC, .acc = acc, .alpha = alpha, .beta = beta};
            f(&t, mr, j1 - j0);
        }
    }
}

float k_dot_fixed(const float *a, const float *b, int K) {
    float s = 0.0f, acc[256];
    for (int k0 = 0; k0 < K || k0 == 0; k0 += KC) {
        tile_args t = {.C = &s, .ldc = 1, .A = a, .lda = K, .B = b, .ldb = K, .k0 = k0, .k1 = K - k0 < KC ? K : k0 + KC,
                       .first = k0 == 0, .last = K - k0 <= KC, .acc = acc, .alpha = 1.0f, .beta = 0.0f};
        paths[k_gemm_isa()].f(&t, 1, 1);
    }
    return s;
}

void k_gemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const strip_fn f = paths[k_gemm_isa()].f;
    // ~512 KB of B per block (L2), at most CBMAX columns, whole tiles of 8 and 5.
    long cb = K > 0 ? (512L * 1024 / 4) / K : CBMAX;
    cb = cb < 40 ? 40 : cb > CBMAX ? CBMAX : cb / 40 * 40;
    const int nrb = (M + RB - 1) / RB, ncb = (int)((N + cb - 1) / cb);
    const int serial = omp_in_parallel() || omp_get_max_threads() == 1 || (double)M * N * K < 5e5;
    #pragma omp parallel for collapse(2) schedule(static) if (!serial && nrb * ncb > 1)
    for (int cbi = 0; cbi < ncb; cbi++)
        for (int rbi = 0; rbi < nrb; rbi++) {
            int i1 = (rbi + 1) * RB < M ? (rbi + 1) * RB : M, j1 = (int)((cbi + 1) * cb < N ? (cbi + 1) * cb : N);
            gemm_block(f, rbi * RB, i1, (int)(cbi * cb), j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
        }
}
