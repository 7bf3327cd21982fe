// kernels/cpu_table.c: the CPU backend's function table.
#include "kernels/kernels.h"

const struct kernels kernels_cpu = {
    .name = "cpu",
    .linear_fwd = k_linear_fwd,
    .linear_bwd = k_linear_bwd,
    .embedding_fwd = k_embedding_fwd,
    .embedding_bwd = k_embedding_bwd,
    .rmsnorm_fwd = k_rmsnorm_fwd,
    .rmsnorm_bwd = k_rmsnorm_bwd,
    .rope_fwd = k_rope_fwd,
    .rope_bwd = k_rope_bwd,
    .attention_fwd = k_attention_fwd,
    .attention_bwd = k_attention_bwd,
    .swiglu_fwd = k_swiglu_fwd,
    .swiglu_bwd = k_swiglu_bwd,
    .lmhead_logprob_fwd = k_lmhead_logprob_fwd,
    .lmhead_logprob_bwd = k_lmhead_logprob_bwd,
    .sgemm = k_sgemm,
};
