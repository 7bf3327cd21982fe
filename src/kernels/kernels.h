// kernels: the numerical building blocks of the transformer, forward and backward,
// on plain fp32 row-major arrays. Kernels know shapes, never models or files.
//
// Conventions
// - Argument order: outputs, inputs, weights, dims (llm.c style).
// - Every backward ACCUMULATES (+=) into its gradient outputs, parameter and input
//   gradients alike; the caller zeroes them. That makes residual branches and
//   gradient accumulation free.
// - Tokens are packed: one row of N tokens holds several sequences back to back.
//   cu_seqlens[0..nseq] are the sequence boundaries (cu_seqlens[0] = 0,
//   cu_seqlens[nseq] = N); attention never crosses them. pos[N] are the position ids
//   used by RoPE (restarting at 0 in each sequence for training; offset by the cache
//   length when generating).
// - No allocation inside a kernel: those that need scratch say how much
//   (a *_scratch_floats() function) and take it as an argument.
// - Parallelism: OpenMP inside kernels, GEMMs through k_sgemm (OpenBLAS, or for x W^T
//   under --deterministic, the default, our fixed-order GEMM, cpu_gemm_own.c).
// - Determinism: every kernel's result is independent of the thread count; under
//   --deterministic (the default) the forward ones are also independent of the rows in the call, so a
//   decoded row (k_linear_rows_fwd, k_attention_cache_fwd, k_lmhead_logprob_row) gets the
//   bits of the same row in a training forward (tests/unit/test_det.c).
//
// Backends: struct kernels is the table of these functions; kernels_cpu is the CPU
// one. A CUDA backend later provides another table with the same signatures.
#pragma once
#include <stddef.h>
#include <stdint.h>

// ---- GEMM: C[M,N] = alpha op(A) op(B) + beta C, row-major, op(X) = X^T if transX ----
// The CPU backend runs it on the OpenMP threads with a single-threaded BLAS per
// block of C; the blocks depend on the shape only, so the result does not depend on
// the thread count. Process-wide effects, on the first call from outside a parallel
// region: OpenBLAS is set to 1 thread, and if OpenBLAS fell back to its generic
// "Prescott" kernels on a CPU with AVX-512 or AVX2, OPENBLAS_CORETYPE is set and its
// core selection redone (see cpu_gemm.c). Code outside the kernels that needs a GEMM
// (LoRA, sampler) should call this, not cblas_sgemm. Under --deterministic, the default
// (cpu_tuning.h's k_gemm_set_own), the x W^T case (transA = 0, transB = 1) runs the
// fixed-order GEMM instead, whose elements do not depend on M, N, the tile or the threads.
void k_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
// k_gemm_weights_frozen(1) promises that no GEMM operand B of x W^T changes, nor is freed,
// until the matching k_gemm_weights_frozen(0) (calls nest): the sampler brackets a rollout
// with it, and the fixed-order GEMM then keeps the packed form of each weight a decode
// step (<= 16 rows) reads, instead of packing it per call. Thawing frees them. Call it
// from outside parallel regions.
void k_gemm_weights_frozen(int on);

// ---- linear: y[N,out] = x[N,in] @ W[out,in]^T + b[out]  (torch.nn.Linear layout) ----
// b may be NULL.
void k_linear_fwd(float *y, const float *x, const float *W, const float *b, int N, int in, int out);
// dx[N,in] += dy @ W;  dW[out,in] += dy^T @ x;  db[out] += sum_rows dy.
// Any of dx, dW, db may be NULL (not needed).
void k_linear_bwd(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                  int N, int in, int out);

// ---- embedding: y[N,D] = E[tok[i], :] ----
void k_embedding_fwd(float *y, const int *tok, const float *E, int N, int D);
// dE[tok[i], :] += dy[i, :]   (deterministic: no atomics)
void k_embedding_bwd(float *dE, const float *dy, const int *tok, int N, int D);

// ---- RMSNorm: y = x * rstd * w,  rstd = 1/sqrt(mean(x^2) + eps), over rows of D ----
// Saves rstd[N] for the backward. (Qwen3's per-head q/k norm is this with N*H rows of
// head_dim.)
void k_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps);
// dw may be NULL (frozen norm weight).
void k_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                   const float *rstd, int N, int D);
// The same with the scale w + wofs (wofs = 1: Gemma's RMSNorm, whose weight stores the
// scale minus one); dw still accumulates dL/dw. The table's entries are these.
void k_rmsnorm_ofs_fwd(float *y, float *rstd, const float *x, const float *w, float wofs, int N, int D, float eps);
void k_rmsnorm_ofs_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, float wofs,
                       const float *rstd, int N, int D);

// ---- RoPE, Hugging Face "rotate_half" convention, in place on x[N, H, d] ----
// For i < d/2: angle = pos[n] * inv_freq[i];
//   x'[i]       = x[i] * cos - x[i + d/2] * sin
//   x'[i + d/2] = x[i + d/2] * cos + x[i] * sin
// inv_freq[d/2] is computed by the model (rope_theta, llama3 scaling).
void k_rope_fwd(float *x, const int *pos, const float *inv_freq, int N, int H, int d);
// The backward of a rotation is the inverse rotation; in place on dx[N, H, d].
void k_rope_bwd(float *dx, const int *pos, const float *inv_freq, int N, int H, int d);

// ---- causal grouped-query attention over packed sequences ----
// q[N, Hq, d], k[N, Hkv, d], v[N, Hkv, d] -> out[N, Hq, d]; query head h uses kv head
// h / (Hq / Hkv). Scores scaled by 1/sqrt(d); token i attends to j in
// [start of its sequence, i]. Saves lse[N, Hq] (log-sum-exp of the scaled scores)
// so the backward recomputes probabilities instead of storing N x N matrices.
size_t k_attention_scratch_floats(const int *cu_seqlens, int nseq, int Hq, int Hkv, int d);
void k_attention_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                     const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, float *scratch);
// dq, dk, dv accumulate (+=).
void k_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                     const float *k, const float *v, const float *out, const float *lse,
                     const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, float *scratch);
// The same with a sliding window (Gemma 3's local layers): token i attends to j in
// [max(start of its sequence, i - window + 1), i]; window <= 0 means none. The
// table's entries are these.
void k_attention_win_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                         const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, int window, float *scratch);
void k_attention_win_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                         const float *k, const float *v, const float *out, const float *lse,
                         const int *cu_seqlens, int nseq, int N, int Hq, int Hkv, int d, int window,
                         float *scratch);

// ---- attention of new query tokens against a KV cache (cpu_attention_cache.c) ----
// A span of cached keys/values: for kv head h, row t is k[h * head_stride + t * d]
// (v likewise); len rows are visible.
// dropped (read on a row's first span only): keys of the sequence before that span's
// first row that the row does not see (a sliding window cut them off); the kernel then
// cuts its key tiles where the training attention does, from the sequence start.
typedef struct k_kv_span {
    const float *k, *v;
    long head_stride;
    int len;
    int dropped;
} k_kv_span;
// q[N, Hq, d] -> out[N, Hq, d]. Row n attends to the keys of spans[n*nspan .. n*nspan+nspan)
// concatenated in that order (the caller makes the lengths causal). Scores scaled by
// 1/sqrt(d); query head h uses kv head h / (Hq / Hkv). No scratch; d <= the value below.
void k_attention_cache_fwd(float *out, const float *q, const k_kv_span *spans, int nspan, int N, int Hq, int Hkv,
                           int d);
int k_attention_cache_max_head_dim(void);

// ---- linear forward for a few rows (cpu_linear_rows.c): decoding ----
// Same contract as k_linear_fwd; N <= k_linear_rows_max() streams W once (GEMV-like),
// larger N falls back to k_linear_fwd.
void k_linear_rows_fwd(float *y, const float *x, const float *W, const float *b, int N, int in, int out);
int k_linear_rows_max(void);

// ---- SwiGLU: h[n] = silu(gate[n]) * up[n]  (n = N * F elements) ----
void k_swiglu_fwd(float *h, const float *gate, const float *up, long n);
void k_swiglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, long n);

// ---- GeGLU (Gemma): h[n] = gelu_tanh(gate[n]) * up[n], GELU's tanh approximation ----
void k_geglu_fwd(float *h, const float *gate, const float *up, long n);
void k_geglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, long n);

// ---- fused lm-head + log-softmax + gather (+ entropy) ----
// For each position i with targets[i] >= 0:
//   z = h[i,:] @ W^T  (W is [V, D], the lm_head / tied embedding)
//   logp[i] = z[targets[i]] - logsumexp(z)
//   entropy[i] = -sum_j p_j log p_j     (only if entropy != NULL)
// Positions with targets[i] < 0 get logp = 0 (and entropy = 0) and no gradient.
// The N x V logits are never stored: rows are processed in chunks and the vocabulary
// in chunks with an online log-sum-exp; lse[N] is saved for the backward, which
// recomputes each chunk's logits.
size_t k_lmhead_scratch_floats(int N, int D, int V);
void k_lmhead_logprob_fwd(float *logp, float *entropy, float *lse, const float *h, const float *W,
                          const int *targets, int N, int D, int V, float *scratch);
// Given dL/dlogp[N] and optionally dL/dentropy[N] (NULL when entropy was not used;
// then entropy may be NULL too): dh[N,D] += dL/dh, dW[V,D] += dL/dW. dW may be NULL.
// dentropy needs the entropy saved by the forward (it is ignored if entropy is NULL).
// The forward's log-prob (and entropy, if not NULL) for one row of logits z[V] already
// made, folded in the forward's vocabulary chunks and order: for the same logits, the
// same bits as k_lmhead_logprob_fwd. The sampler's log-probs come from here.
float k_lmhead_logprob_row(const float *z, int V, int target, float *entropy);
void k_lmhead_logprob_bwd(float *dh, float *dW, const float *dlogp, const float *dentropy,
                          const float *h, const float *W, const int *targets, const float *lse,
                          const float *entropy, int N, int D, int V, float *scratch);

// ---- contrastive estimation (cDPO's critical-token score, papers.md §7.2) ----
// prob[i] = softmax((1+gamma) * hp[i] Wp^T - gamma * hn[i] Wn^T)[targets[i]], 0 where
// targets[i] < 0. hp, hn [N, D]; Wp, Wn [V, D]. Chunked: no N x V logits.
size_t k_contrastive_scratch_floats(int N, int D, int V);
void k_contrastive_prob(float *prob, const float *hp, const float *Wp, const float *hn, const float *Wn, float gamma,
                        const int *targets, int N, int D, int V, float *scratch);

// ---- elementwise helpers ----
void k_add_inplace(float *y, const float *x, long n);     // y += x
void k_zero(float *y, long n);

// ---- bf16 weights read in place (cpu_gemm_bf16*.c): a frozen base under LoRA ----
// W is bf16 [out, in] row-major (the raw 16-bit patterns, as a safetensors file stores
// them); x, y, dy, dx and b are fp32, and so is every sum. The default path widens W to
// fp32 exactly and runs fp32 FMAs in an order fixed by the shape alone (the same for any
// row count and thread count; cpu_gemm_bf16.c spells it out).
// y[N,out] = x[N,in] @ W^T + b   (b may be NULL)
void k_linear_bf16_fwd(float *y, const float *x, const uint16_t *W, const float *b, int N, int in, int out);
// dx[N,in] += dy[N,out] @ W. No dW: the weight is frozen.
void k_linear_bf16_bwd(float *dx, const float *dy, const uint16_t *W, int N, int in, int out);
// y[N,D] = E[tok[i], :] widened to fp32
void k_embedding_bf16_fwd(float *y, const int *tok, const uint16_t *E, int N, int D);
// The fused lm-head with a bf16 W (cpu_lmhead.c): each vocabulary chunk is widened into
// the scratch (hence the larger size) and then the fp32 path runs, so the results are
// those of k_lmhead_logprob_* on the widened W, bit for bit. No dW (frozen).
size_t k_lmhead_bf16_scratch_floats(int N, int D, int V);
void k_lmhead_bf16_logprob_fwd(float *logp, float *entropy, float *lse, const float *h, const uint16_t *W,
                               const int *targets, int N, int D, int V, float *scratch);
void k_lmhead_bf16_logprob_bwd(float *dh, const float *dlogp, const float *dentropy, const float *h, const uint16_t *W,
                               const int *targets, const float *lse, const float *entropy, int N, int D, int V,
                               float *scratch);
// ---- vision (cpu_vision.c): Qwen2.5-VL's vision tower and M-RoPE ----
// RoPE by an angle table ang[N, d/2] (rotate_half layout, in place on x[N, H, d]): the pair
// (i, i + d/2) of token n turns by ang[n][i]. The vision tower's 2-D rotary and M-RoPE fill
// the table from different position ids per frequency band. The backward turns back.
void k_rope_angle_fwd(float *x, const float *ang, int N, int H, int d);
void k_rope_angle_bwd(float *dx, const float *ang, int N, int H, int d);
// Bidirectional attention within segments [cu_seqlens[s], cu_seqlens[s+1]) (no causal
// mask; q, k, v [N, H, d] with H heads each), scores scaled by 1/sqrt(d); saves lse[N, H].
// Scratch: k_attention_seg_scratch_floats (2 x the longest segment squared).
size_t k_attention_seg_scratch_floats(const int *cu_seqlens, int nseg);
void k_attention_seg_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu_seqlens,
                         int nseg, int N, int H, int d, float *scratch);
void k_attention_seg_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v,
                         const float *out, const float *lse, const int *cu_seqlens, int nseg, int N, int H, int d,
                         float *scratch);
// Exact GELU, y = x Phi(x) (torch.nn.GELU()); the backward accumulates dx += dy GELU'(x).
void k_gelu_fwd(float *y, const float *x, long n);
void k_gelu_bwd(float *dx, const float *dy, const float *x, long n);
// QuickGELU, y = x sigmoid(1.702 x) (Qwen2-VL's vision MLP); the backward accumulates.
void k_quick_gelu_fwd(float *y, const float *x, long n);
void k_quick_gelu_bwd(float *dx, const float *dy, const float *x, long n);
// LayerNorm with weight and bias (b may be NULL) over rows of D (cpu_layernorm.c); saves
// mean[N] and rstd[N]. The backward accumulates into dx, dw, db (each may be NULL).
void k_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int N, int D, float eps);
void k_layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *mean,
                     const float *rstd, int N, int D);

// ---- bf16 x bf16 linear, fp32 accumulation (cpu_gemm_bb16*.c): --bf16 training ----
// W is a bf16 copy [out, in] of an fp32 master weight; x and dy are fp32 and rounded to
// bf16 (nearest even) as the kernels read them; sums and outputs are fp32. Each output
// element is one fp32 chain in one order that depends on the shape's reduced dimension
// only (not on the row count, tile, thread count or path; AMX excepted): cpu_gemm_bb16.c.
// y[N,out] = bf(x) @ W^T + b   (b may be NULL)
void k_linear_bb16_fwd(float *y, const float *x, const uint16_t *W, const float *b, int N, int in, int out);
// dx[N,in] += bf(dy) @ W;  dW[out,in] += bf(dy)^T @ bf(x) (each chain starts at the value
// already there);  db[out] += sum_rows dy (fp32). Any of dx, dW, db may be NULL.
void k_linear_bb16_bwd(float *dx, float *dW, float *db, const float *dy, const float *x, const uint16_t *W, int N,
                       int in, int out);
// The path these kernels take (amx, avx512-bf16, avx512, avx2, scalar); the first call
// also reports it on stderr, once per process ("temper: bf16 GEMM on ...").
const char *k_bb16_report(void);

// The backend table.
struct kernels {
    const char *name;
    void (*linear_fwd)(float *, const float *, const float *, const float *, int, int, int);
    void (*linear_bwd)(float *, float *, float *, const float *, const float *, const float *, int, int, int);
    void (*embedding_fwd)(float *, const int *, const float *, int, int);
    void (*embedding_bwd)(float *, const float *, const int *, int, int);
    void (*rmsnorm_fwd)(float *, float *, const float *, const float *, float, int, int, float);
    void (*rmsnorm_bwd)(float *, float *, const float *, const float *, const float *, float, const float *, int, int);
    void (*rope_fwd)(float *, const int *, const float *, int, int, int);
    void (*rope_bwd)(float *, const int *, const float *, int, int, int);
    void (*attention_fwd)(float *, float *, const float *, const float *, const float *, const int *, int, int, int, int, int, int, float *);
    void (*attention_bwd)(float *, float *, float *, const float *, const float *, const float *, const float *, const float *, const float *, const int *, int, int, int, int, int, int, float *);
    void (*swiglu_fwd)(float *, const float *, const float *, long);
    void (*swiglu_bwd)(float *, float *, const float *, const float *, const float *, long);
    void (*geglu_fwd)(float *, const float *, const float *, long);
    void (*geglu_bwd)(float *, float *, const float *, const float *, const float *, long);
    void (*lmhead_logprob_fwd)(float *, float *, float *, const float *, const float *, const int *, int, int, int, float *);
    void (*lmhead_logprob_bwd)(float *, float *, const float *, const float *, const float *, const float *, const int *, const float *, const float *, int, int, int, float *);
    void (*sgemm)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
    void (*gemm_weights_frozen)(int);
    size_t (*attention_scratch_floats)(const int *, int, int, int, int);
    size_t (*lmhead_scratch_floats)(int, int, int);
    void (*attention_cache_fwd)(float *, const float *, const k_kv_span *, int, int, int, int, int);
    int (*attention_cache_max_head_dim)(void);
    void (*linear_rows_fwd)(float *, const float *, const float *, const float *, int, int, int);
    int (*linear_rows_max)(void);
    size_t (*contrastive_scratch_floats)(int, int, int);
    void (*contrastive_prob)(float *, const float *, const float *, const float *, const float *, float, const int *, int,
                             int, int, float *);
    void (*add_inplace)(float *, const float *, long);
    void (*zero)(float *, long);
    void (*linear_bf16_fwd)(float *, const float *, const uint16_t *, const float *, int, int, int);
    void (*linear_bf16_bwd)(float *, const float *, const uint16_t *, int, int, int);
    void (*embedding_bf16_fwd)(float *, const int *, const uint16_t *, int, int);
    size_t (*lmhead_bf16_scratch_floats)(int, int, int);
    void (*lmhead_bf16_logprob_fwd)(float *, float *, float *, const float *, const uint16_t *, const int *, int, int, int,
                                    float *);
    void (*lmhead_bf16_logprob_bwd)(float *, const float *, const float *, const float *, const uint16_t *, const int *,
                                    const float *, const float *, int, int, int, float *);
    void (*rope_angle_fwd)(float *, const float *, int, int, int);
    void (*rope_angle_bwd)(float *, const float *, int, int, int);
    size_t (*attention_seg_scratch_floats)(const int *, int);
    void (*attention_seg_fwd)(float *, float *, const float *, const float *, const float *, const int *, int, int, int, int, float *);
    void (*attention_seg_bwd)(float *, float *, float *, const float *, const float *, const float *, const float *, const float *,
                              const float *, const int *, int, int, int, int, float *);
    void (*gelu_fwd)(float *, const float *, long);
    void (*gelu_bwd)(float *, const float *, const float *, long);
    void (*quick_gelu_fwd)(float *, const float *, long);
    void (*quick_gelu_bwd)(float *, const float *, const float *, long);
    void (*layernorm_fwd)(float *, float *, float *, const float *, const float *, const float *, int, int, float);
    void (*layernorm_bwd)(float *, float *, float *, const float *, const float *, const float *, const float *, const float *, int,
                          int);
    float (*lmhead_logprob_row)(const float *, int, int, float *);
    void (*linear_bb16_fwd)(float *, const float *, const uint16_t *, const float *, int, int, int);
    void (*linear_bb16_bwd)(float *, float *, float *, const float *, const float *, const uint16_t *, int, int, int);
    const char *(*bb16_report)(void);
};
extern const struct kernels kernels_cpu;
