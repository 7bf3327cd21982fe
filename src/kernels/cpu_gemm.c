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
// thread in a fixed order. On the shared
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
// AVX-512 (or AVX2 + FMA) and the user did not set OPENBLAS_CORETYPE, we redo
// OpenBLAS's core selection with SkylakeX (or Haswell). gotoblas_dynamic_quit/init are
// exported by DYNAMIC_ARCH builds; weak references keep other builds linking, where
// this is skipped.
#include "kernels/kernels.h"
#include "kernels/cpu_gemm_own.h"
#include "kernels/cpu_tuning.h"
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
    if (!core || strcmp(core, "Prescott") != 0) return;
    const char *want = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "Haswell" : NULL;
    if (!want) return;
    gotoblas_dynamic_quit();
    setenv("OPENBLAS_CORETYPE", want, 1);
    gotoblas_dynamic_init();
}

// OpenBLAS's threading controls, declared here because some cblas.h (another BLAS
// chosen by update-alternatives) lack them; the library we link is OpenBLAS.
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);

// The blocks C is cut into: along its longer side, at multiples of 16 rows (or
// columns), about 8 of them but never under 64 or over 512 wide. The cut depends on
// the shape alone, never on the thread count, and each block is one single-threaded
// OpenBLAS call of the same shape whoever computes it, so every element of C is the
// same for 1, 2 or 16 threads (OpenBLAS's micro-kernels sum an element's dot product
// in an order that depends on where the element sits in the call's tile grid, so a
// split that followed the thread count would change the last bits; on its Haswell
// kernels it did, by ~1e-7 relative). The price is a panel packed per block instead of
// per thread: the small training step still runs at 84% of the 2-thread sgemm peak
// (BENCHMARKS.md, train_step small).
// -1: not decided yet: on at first use unless TEMPER_DETERMINISTIC=0 is in the
// environment (what the CLI's --deterministic false sets). On by default since the
// fixed-order GEMM became as fast as OpenBLAS's sgemm on the forward's shapes
// (BENCHMARKS.md, "deterministic").
static int gemm_own = -1;

void k_gemm_set_own(int on) { gemm_own = on != 0; }
int k_gemm_own_enabled(void) {
    if (gemm_own < 0) {
        const char *e = getenv("TEMPER_DETERMINISTIC");
        gemm_own = !(e && !strcmp(e, "0"));
    }
    return gemm_own;
}

static int gemm_block(int big) {
    int b = (big / 8 + 15) / 16 * 16;
    return b < 64 ? 64 : b > 512 ? 512 : b;
}

void k_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // C = beta C; BLAS would reject the leading dimensions of empty A, B
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
        return;
    }
    // x W^T (every forward linear layer, the lm-head's logits): our fixed-order GEMM,
    // whose elements do not depend on the shape of the call (cpu_gemm_own.c).
    if (!transA && transB && k_gemm_own_enabled()) {
        k_gemm_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int serial = omp_in_parallel();
    if (!serial) {  // both touch process-wide OpenBLAS state
        blas_pick_core();
        if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    }
    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    int rows = M >= N, big = rows ? M : N, bs = gemm_block(big), nb = (big + bs - 1) / bs;
    // Below ~1 MFLOP the fork/join costs more than it saves.
    if (omp_get_max_threads() == 1 || (double)M * N * K < 5e5) serial = 1;
    #pragma omp parallel for schedule(static, 1) if (!serial && nb > 1)
    for (int blk = 0; blk < nb; blk++) {
        int lo = blk * bs, n = big - lo < bs ? big - lo : bs;
        if (rows) {  // rows lo..lo+n of C, and of op(A)
            const float *a = transA ? A + lo : A + (long)lo * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, n, N, K, alpha, a, lda, B, ldb, beta, C + (long)lo * ldc, ldc);
        } else {  // columns lo..lo+n of C, and of op(B)
            const float *b = transB ? B + (long)lo * ldb : B + lo;
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
        }
    }
}
