// kernels/cpu_tuning.h: knobs of the CPU kernels that tests and benchmarks turn.
// Not part of the backend interface (kernels.h); the model never needs them.
#pragma once

// Row and vocabulary chunk of the fused lm-head (defaults 512 and 2048; rows are
// clamped to [1, 1024], vocab to >= 1). k_lmhead_scratch_floats() depends on them,
// so size the scratch after changing them. Not thread-safe: set once at start-up.
void k_lmhead_set_chunks(int rows, int vocab);

// The path of the bf16-weight linear kernels (cpu_gemm_bf16.c): auto (the widest exact
// path the CPU and the build allow), or one by name; the environment variable
// TEMPER_BF16_GEMM=scalar|avx2|avx512|dpbf16|amx does the same at first use.
// k_bf16_set_path returns -1 (and changes nothing) when the path cannot run here.
enum { K_BF16_AUTO, K_BF16_SCALAR, K_BF16_AVX2, K_BF16_AVX512, K_BF16_DPBF16, K_BF16_AMX };
int k_bf16_set_path(int path);
int k_bf16_path(void);
int k_bf16_path_available(int path);
const char *k_bf16_path_name(int path);

// The ISA path of the fixed-order GEMM (cpu_gemm_own.c): 0 portable C, 1 AVX2+FMA,
// 2 AVX-512F. Picked at first use as the best the CPU has; setting one the CPU lacks
// (or -1) picks the best; TEMPER_OWN_GEMM=c|avx2|avx512 in the environment picks one at
// first use. Returns the path now in use. Every path gives the same bits.
int k_gemm_set_isa(int isa);
const char *k_gemm_isa_name(int isa);
// 1 sends the forward GEMMs (x W^T) to the fixed-order GEMM (cpu_gemm_own.c), 0 to
// OpenBLAS. Default 1; TEMPER_DETERMINISTIC=0 in the environment (the CLI's
// --deterministic false sets it) makes it 0. Not thread-safe: set at start-up.
void k_gemm_set_own(int on);

// The path of the bf16 x bf16 linear kernels (cpu_gemm_bb16.c, --bf16 training): auto
// (amx where the CPU has it and it passes its self-check, else the faster of avx512-bf16
// and avx512 as timed at first use, else avx2, else scalar) or one by name;
// TEMPER_BB16_GEMM=scalar|avx2|avx512|avx512-bf16|amx does the same at first use. All
// paths but amx give the same bits.
enum { K_BB16_AUTO, K_BB16_SCALAR, K_BB16_AVX2, K_BB16_AVX512, K_BB16_DPBF16, K_BB16_AMX };
int k_bb16_set_path(int path);
int k_bb16_path(void);
int k_bb16_path_available(int path);
const char *k_bb16_path_name(int path);

// The vector path of the hand-written kernels (cpu_isa.h), numbered as the fixed-order
// GEMM's paths above. k_isa() picks at first use the widest the CPU has, or the one
// TEMPER_ISA=c|avx2|avx512 names; k_isa_set picks one (one the CPU lacks, or -1: the
// widest) and returns the path now in use. Every kernel's paths give the same bits, so
// this changes speed only; tests run the AVX2 paths on an AVX-512 machine with it.
enum { K_ISA_C = 0, K_ISA_AVX2 = 1, K_ISA_AVX512 = 2 };
int k_isa(void);
int k_isa_set(int isa);
int k_isa_supported(int isa);
const char *k_isa_name(int isa);
