// bench/isa.h: the vector ISA this bench program (and the library, built with the same
// CFLAGS) was compiled for, for the "isa" field of its JSON line. temper's kernels have
// AVX-512 paths (#ifdef __AVX512F__) and plain C that the compiler vectorizes for the
// -march it is given; none uses AMX.
#pragma once

#if defined(__AVX512F__)
#define BENCH_ISA "AVX-512"
#elif defined(__AVX2__)
#define BENCH_ISA "AVX2"
#else
#define BENCH_ISA "x86-64 baseline"
#endif
