// kernels/prof: a timing wrapper around a kernel table (temper <trainer> --profile). The
// wrapped table forwards every call to the base table and adds its wall time to the
// call's class; entries it does not know pass through untimed, so a backend that grows
// new entries keeps working. Nothing is timed unless a caller swaps the table in: the
// plain tables stay as they are (no branch in the hot path).
//
// The counters are process-wide (a kernel table is a plain struct of function pointers,
// with nowhere to keep a context): one profiled run per process, as the CLI does.
#pragma once
#include "kernels/kernels.h"

typedef enum {
    KPROF_GEMM,       // linear forward/backward, sgemm (LoRA's adapters), rows
    KPROF_ATTENTION,  // attention forward/backward, cached attention
    KPROF_NORM,       // RMSNorm forward/backward
    KPROF_LMHEAD,     // the fused lm-head + log-softmax, contrastive scores
    KPROF_OTHER,      // embedding, RoPE, SwiGLU/GeGLU, add, zero
    KPROF_NCLASS
} kprof_class;

// The profiled table over base (kept until the process ends; calling it again with
// another base rewires the same table).
const struct kernels *kprof_wrap(const struct kernels *base);
// Seconds and calls accumulated per class since the start (or kprof_reset).
void kprof_read(double seconds[KPROF_NCLASS], long calls[KPROF_NCLASS]);
void kprof_reset(void);
const char *kprof_class_name(kprof_class c);  // "GEMM", "attention", ...
