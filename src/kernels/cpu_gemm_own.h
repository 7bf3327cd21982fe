// kernels/cpu_gemm_own.h: private to the CPU kernels: the fixed-order GEMM of
// cpu_gemm_own.c and the ISA paths it dispatches between (cpu_tuning.h picks one).
#pragma once

enum { K_GEMM_ISA_C = 0, K_GEMM_ISA_AVX2 = 1, K_GEMM_ISA_AVX512 = 2 };

// C[M,N] = alpha A[M,K] B[N,K]^T + beta C (row-major, leading dimensions lda, ldb, ldc),
// each element summed in the one order described in cpu_gemm_own.c.
void k_gemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc);
// The same where B is a weight (k_linear_fwd): while k_gemm_weights_frozen holds, its
// packed panels may be kept between calls.
void k_gemm_nt_weight(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc);
// sum_k a[k] b[k] in a fixed order of its own (16 FMA lanes, then a tree: RMSNorm's).
float k_dot_fixed(const float *a, const float *b, int K);
int k_gemm_isa(void);
// Whether k_sgemm sends x W^T here (cpu_tuning.h's k_gemm_set_own).
int k_gemm_own_enabled(void);
