// kernels/cpu_linear_rows.c: nn.Linear forward for a few rows (decoding).
//
// With N <= 8 rows, y = x W^T is matrix-vector work bound by reading W once. BLAS
// sgemm packs W into its panel format on every call, which reads and writes W again,
// so batch-1 decoding through k_linear_fwd ran at ~2.3x the memory-bandwidth bound
// (bench/bench_generate.sh, small config). Here each thread streams a contiguous
// block of W's rows once and dots each with the N inputs (kept in L1), 16 floats per
// FMA, N accumulators.
//
// That streaming path runs only when the fixed-order GEMM is off (TEMPER_DETERMINISTIC=0:
// the forward GEMMs are OpenBLAS's, whose bits no decode kernel can follow anyway). Its
// order, on every path (cpu_isa.h): 16 lanes, lane l sums w[c] x[c] for c = l, l + 16, ...
// by FMA in c order from +0 (the last partial block of 16 reads zeros), then the one
// 16-lane tree of isa_hsum16_*. AVX-512 keeps the lanes in one zmm, AVX2 in two ymm
// halves, plain C in an array (fmaf): the three give the same bits.
#include "kernels/kernels.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_gemm_own.h"

#define ROWS_MAX 8

int k_linear_rows_max(void) { return ROWS_MAX; }

static void row_c(float *res, const float *w, const float *x, int N, int in) {
    const int in16 = (in + 15) / 16 * 16;
    for (int r = 0; r < N; r++) {
        const float *xr = x + (long)r * in;
        float v[16] = {0};
        for (int c = 0; c < in16; c++) v[c & 15] = c < in ? fmaf(w[c], xr[c], v[c & 15]) : fmaf(0.0f, 0.0f, v[c & 15]);
        res[r] = isa_hsum16_c(v);
    }
}

ISA_AVX2 static void row_avx2(float *res, const float *w, const float *x, int N, int in) {
    __m256 lo[ROWS_MAX], hi[ROWS_MAX];
    for (int r = 0; r < N; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    int c = 0;
    for (; c + 16 <= in; c += 16) {
        __m256 w0 = _mm256_loadu_ps(w + c), w1 = _mm256_loadu_ps(w + c + 8);
        for (int r = 0; r < N; r++) {
            const float *xr = x + (long)r * in + c;
            lo[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr), lo[r]);
            hi[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr + 8), hi[r]);
        }
    }
    if (c < in) {
        __m256i m0 = tail_mask8(in - c), m1 = tail_mask8(in - c - 8);
        __m256 w0 = _mm256_maskload_ps(w + c, m0), w1 = _mm256_maskload_ps(w + c + 8, m1);
        for (int r = 0; r < N; r++) {
            const float *xr = x + (long)r * in + c;
            lo[r] = _mm256_fmadd_ps(w0, _mm256_maskload_ps(xr, m0), lo[r]);
            hi[r] = _mm256_fmadd_ps(w1, _mm256_maskload_ps(xr + 8, m1), hi[r]);
        }
    }
    for (int r = 0; r < N; r++) res[r] = isa_hsum16_avx2(lo[r], hi[r]);
}

ISA_AVX512 static void row_avx512(float *res, const float *w, const float *x, int N, int in) {
    __m512 acc[ROWS_MAX];
    for (int r = 0; r < N; r++) acc[r] = _mm512_setzero_ps();
    int c = 0;
    for (; c + 16 <= in; c += 16) {
        __m512 wv = _mm512_loadu_ps(w + c);
        for (int r = 0; r < N; r++) acc[r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + (long)r * in + c), acc[r]);
    }
    if (c < in) {
        __mmask16 km = tail_mask16(in - c);
        __m512 wv = _mm512_maskz_loadu_ps(km, w + c);
        for (int r = 0; r < N; r++) acc[r] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(km, x + (long)r * in + c), acc[r]);
    }
    for (int r = 0; r < N; r++) res[r] = isa_hsum16_avx512(acc[r]);
}

void k_linear_rows_fwd(float *y, const float *x, const float *W, const float *b, int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    // The fixed-order GEMM (the default) gives each row the bits the trainer's many-row
    // forward gives it, and during a rollout reads W once from its kept packed panels
    // (cpu_gemm_own.c, k_gemm_weights_frozen).
    if (N > ROWS_MAX || k_gemm_own_enabled()) { k_linear_fwd(y, x, W, b, N, in, out); return; }
    const int isa = k_isa();
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const float *w = W + (long)o * in;
        float res[ROWS_MAX];
        if (isa == K_ISA_AVX512) row_avx512(res, w, x, N, in);
        else if (isa == K_ISA_AVX2) row_avx2(res, w, x, N, in);
        else row_c(res, w, x, N, in);
        for (int r = 0; r < N; r++) y[(long)r * out + o] = res[r] + (b ? b[o] : 0.0f);
    }
}
