// kernels/cpu_isa.h: private to the CPU kernels: the vector instruction set the
// hand-written kernels run, chosen once at run time, and the target attributes that let
// any x86-64 build (the portable x86-64-v3 default included) carry every path.
//
// A kernel with vector paths defines them as functions marked ISA_AVX2 / ISA_AVX512 and
// dispatches on k_isa() (one branch per call, outside its loops and parallel regions).
// The paths of a kernel give the same bits: the AVX2 path keeps the AVX-512 path's 16
// lanes as two 8-lane halves and sums them in the same tree (isa_hsum16_*), and the
// plain-C path does too where it is cheap (each kernel says). So a result does not depend
// on which CPU of the fleet ran it, and tests compare the paths bit for bit in one binary
// (TEMPER_ISA=avx2 runs the AVX2 paths on an AVX-512 machine).
#pragma once
#include <immintrin.h>
#include "kernels/cpu_tuning.h"  // K_ISA_C, K_ISA_AVX2, K_ISA_AVX512, k_isa_set

#define ISA_AVX2 __attribute__((target("avx2,fma")))
#define ISA_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))

// k_isa() (cpu_tuning.h) is the path in use; call it first outside parallel regions (the
// choice is cached in a plain static).
// The path the environment variable var names (c, avx2 or avx512), or -1 (unset, unknown).
int k_isa_from_env(const char *var);
