// kernels/cpu_gemm.c: the one door to BLAS. Every GEMM of the CPU kernels goes
// through k_sgemm, which splits the output over the OpenMP threads and has each
// thread call a single-threaded cblas_sgemm on its block.
//
// Why not let OpenBLAS thread itself: the kernels alternate GEMMs with OpenMP loops
// (linear -> rmsnorm -> linear, or lm-head logits -> online softmax per vocab chunk).
// OpenBLAS's pthread workers spin (with sched_yield) for a while after each call and
// libgomp's workers spin after each parallel region, so with two pools every
// hand-over has more runnable threads than the machine's 2 cores. With one pool
// (OpenMP) there is no hand-over at all, and each output element is computed by one
// thread in a fixed order (deterministic for a given thread count). On the shared
// development machine (load 4-6 from other jobs) bench/kernels_bench.c `handoff`
// could not separate the two designs from the noise; this is the robust choice.
//
// OpenBLAS is switched to 1 thread by every call from the serial region (a cheap
// check). That is process-wide: code outside the kernels should call k_sgemm too.
//
// Core type: Debian 12's OpenBLAS 0.3.21 does not recognize this machine's CPU
// (family 6, model 207) and falls back to its generic SSE3 "Prescott" kernels:
// sgemm 1024^3 runs at 28 GFLOP/s per core instead of 143 with its AVX-512
// "SkylakeX" kernels. So on first use, if OpenBLAS picked Prescott on a CPU with
// AVX-512F and the user did not set OPENBLAS_CORETYPE, we redo OpenBLAS's core
// selection with SkylakeX (gotoblas_dynamic_quit/init are exported by DYNAMIC_ARCH
// builds; weak references keep other builds linking, where this is skipped).
#include "kernels/kernels.h"
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

char *openblas_get_corename(void) __attribute__((weak));
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));

static void blas_pick_core(void) {
    static int done;
    if (done) return;
    done = 1;
    if (getenv("OPENBLAS_CORETYPE") || !openblas_get_corename || !gotoblas_dynamic_init ||
        !gotoblas_dynamic_quit)
        return;
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0 || !__builtin_cpu_supports("avx512f")) return;
    gotoblas_dynamic_quit();
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    gotoblas_dynamic_init();
}

void k_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // C = beta C; BLAS would reject the leading dimensions of empty A, B
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
        return;
    }
    if (!omp_in_parallel()) {  // both touch process-wide OpenBLAS state
        blas_pick_core();
        if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    }
    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    // Below ~1 MFLOP the fork/join costs more than it saves.
    if (omp_in_parallel() || omp_get_max_threads() == 1 || (double)M * N * K < 5e5) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    #pragma omp parallel
    {
        // Split the longer side of C into one contiguous block per thread, at multiples
        // of 16 (the micro-kernel width) so that no thread gets a ragged edge it need not.
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int big = M >= N ? M : N;
        int units = (big + 15) / 16;
        int u0 = (int)((long)units * t / nt), u1 = (int)((long)units * (t + 1) / nt);
        int lo = u0 * 16, hi = u1 * 16 < big ? u1 * 16 : big;
        if (hi > lo) {
            if (M >= N) {  // rows lo..hi of C, and of op(A)
                const float *a = transA ? A + lo : A + (long)lo * lda;
                cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, N, K, alpha, a, lda, B, ldb, beta,
                            C + (long)lo * ldc, ldc);
            } else {  // columns lo..hi of C, and of op(B)
                const float *b = transB ? B + (long)lo * ldb : B + lo;
                cblas_sgemm(CblasRowMajor, ta, tb, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
            }
        }
    }
}
