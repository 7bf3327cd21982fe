// kernels/cpu_isa.c: the run-time choice of the hand-written kernels' vector path
// (cpu_isa.h). The fixed-order GEMM (cpu_gemm_own.c) and the bf16 GEMM families
// (cpu_gemm_bf16.c, cpu_gemm_bb16.c) take it as their default and their ceiling.
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu_isa.h"
#include "kernels/cpu_tuning.h"

static const char *const names[] = {"c", "avx2", "avx512"};

int k_isa_supported(int isa) {
    __builtin_cpu_init();
    if (isa == K_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && k_isa_supported(K_ISA_AVX2);
    if (isa == K_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return isa == K_ISA_C;
}

static int best(void) {
    return k_isa_supported(K_ISA_AVX512) ? K_ISA_AVX512 : k_isa_supported(K_ISA_AVX2) ? K_ISA_AVX2 : K_ISA_C;
}

static int cur = -1;

int k_isa_set(int isa) {
    cur = isa >= K_ISA_C && isa <= K_ISA_AVX512 && k_isa_supported(isa) ? isa : best();
    return cur;
}

int k_isa_from_env(const char *var) {
    const char *e = getenv(var);
    for (int i = 0; e && i <= K_ISA_AVX512; i++)
        if (!strcmp(e, names[i])) return i;
    return -1;
}

int k_isa(void) {
    if (cur < 0) k_isa_set(k_isa_from_env("TEMPER_ISA"));
    return cur;
}

const char *k_isa_name(int isa) { return isa >= K_ISA_C && isa <= K_ISA_AVX512 ? names[isa] : "?"; }
