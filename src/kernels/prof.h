// kernels/prof: a timing wrapper around a kernel table (temper <trainer> --profile). The
// wrapped table forwards every call to the base table and adds its wall time to the
// call's class. Every entry of struct kernels has a class or is marked untimed (sizes,
// capabilities, the bf16 path's name): kprof_entries lists them by offset, and
// tests/unit/test_prof.c fails when the table grows an entry that is not listed, so no
// kernel's time falls into "rest" unseen. Nothing is timed unless a caller swaps the
// table in: the plain tables stay as they are (no branch in the hot path).
//
// The counters are process-wide (a kernel table is a plain struct of function pointers,
// with nowhere to keep a context): one profiled run per process, as the CLI does.
#pragma once
#include <stddef.h>
#include "kernels/kernels.h"

typedef enum {
    KPROF_GEMM,       // linear forward/backward (fp32, bf16 read in place, bf16 x bf16), sgemm (LoRA), decode rows
    KPROF_ATTENTION,  // attention forward/backward, cached (decode) attention
    KPROF_NORM,       // RMSNorm and LayerNorm forward/backward
    KPROF_LMHEAD,     // the fused lm-head + log-softmax (fp32 and bf16), the decode row's log-prob, contrastive scores
    KPROF_VISION,     // the vision tower's kernels (cpu_vision.c): segment attention, GELU, angle RoPE (also M-RoPE)
    KPROF_OTHER,      // embedding (fp32, bf16), RoPE, SwiGLU/GeGLU, add, zero
    KPROF_NCLASS
} kprof_class;
#define KPROF_UNTIMED (-1)  // not a computation: a scratch size, a capability, a name

// One entry of struct kernels: its byte offset, its class (or KPROF_UNTIMED) and its name.
typedef struct kprof_entry {
    size_t offset;
    int cls;
    const char *name;
} kprof_entry;
// Every function-pointer entry of struct kernels (all but .name), in table order.
const kprof_entry *kprof_entries(int *n);

// The profiled table over base (kept until the process ends; calling it again with
// another base rewires the same table).
const struct kernels *kprof_wrap(const struct kernels *base);
// Seconds and calls accumulated per class since the start (or kprof_reset).
void kprof_read(double seconds[KPROF_NCLASS], long calls[KPROF_NCLASS]);
void kprof_reset(void);
const char *kprof_class_name(kprof_class c);  // "GEMM", "attention", ...
