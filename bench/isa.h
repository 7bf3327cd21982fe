// bench/isa.h: the vector path temper's hand-written kernels take in this run (chosen at
// run time, cpu_isa.c: the widest the CPU has, or TEMPER_ISA), for the "isa" field of a
// bench program's JSON line. The bf16 GEMMs report their own path (AMX and AVX-512-BF16
// included) on stderr.
#pragma once
#include "kernels/cpu_tuning.h"

static inline const char *bench_isa(void) {
    int isa = k_isa();
    return isa == K_ISA_AVX512 ? "AVX-512" : isa == K_ISA_AVX2 ? "AVX2" : "x86-64 baseline";
}
#define BENCH_ISA bench_isa()
