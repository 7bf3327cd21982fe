// kernels/cpu_linear_rows.c: nn.Linear forward for a few rows (decoding).
//
// With N <= 8 rows, y = x W^T is matrix-vector work bound by reading W once. BLAS
// sgemm packs W into its panel format on every call, which reads and writes W again,
// so batch-1 decoding through k_linear_fwd ran at ~2.3x the memory-bandwidth bound
// (bench/bench_generate.sh, small config). Here each thread streams a contiguous
// block of W's rows once and dots each with the N inputs (kept in L1), 16 floats per
// FMA, N accumulators.
#include "kernels/kernels.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_gemm_own.h"

#define ROWS_MAX 8

int k_linear_rows_max(void) { return ROWS_MAX; }

void k_linear_rows_fwd(float *y, const float *x, const float *W, const float *b, int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    // The fixed-order GEMM (the default) gives each row the bits the trainer's many-row
    // forward gives it, and during a rollout reads W once from its kept packed panels
    // (cpu_gemm_own.c, k_gemm_weights_frozen).
    if (N > ROWS_MAX || k_gemm_own_enabled()) { k_linear_fwd(y, x, W, b, N, in, out); return; }
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const float *w = W + (long)o * in;
        float res[ROWS_MAX];
#ifdef __AVX512F__
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
        for (int r = 0; r < N; r++) res[r] = _mm512_reduce_add_ps(acc[r]);
#else
        for (int r = 0; r < N; r++) {
            const float *xr = x + (long)r * in;
            float s = 0.0f;
            #pragma omp simd reduction(+ : s)
            for (int c = 0; c < in; c++) s += w[c] * xr[c];
            res[r] = s;
        }
#endif
        for (int r = 0; r < N; r++) y[(long)r * out + o] = res[r] + (b ? b[o] : 0.0f);
    }
}
