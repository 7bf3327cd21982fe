// kernels/cpu_attention_tiles.h: private to the CPU kernels: the micro-kernels of the
// training attention (cpu_attention.c), shared with the KV-cache attention
// (cpu_attention_cache.c) so that a decoded query row goes through the same operations
// in the same order as the same row of a training forward, and gets the same bits.
#pragma once

#define K_ATT_BK 64  // keys per tile; tiles start at multiples of it from the sequence's start

// S[r*lds + j] = sum_{c<d} A[r*lda + c] * BT[c*ldbt + j], r < nr, j < nk <= 64.
void k_att_tile_abT(float *S, int lds, const float *A, long lda, int nr, const float *BT, long ldbt, int nk, int d);
// C[r*ldc + :d] += sum_{t<nt} A[r*ars + t*ats] * B[t*ldb + :d], r < nr.
void k_att_rows_acc(float *C, long ldc, int nr, const float *A, int ars, int ats, int nt, const float *B, long ldb,
                    int d);
// p[j] = exp(p[j] - m) for j < n; returns the sum.
float k_att_exp_shift_sum(float *p, int n, float m);
// One row of scaled, masked scores of a tile into the row's online softmax.
void k_att_softmax_step(float *sr, int nk, float *m, float *l, float *o, int d);
