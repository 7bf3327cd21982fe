// kernels/cpu_gemm_bb16.c: nn.Linear in bf16 x bf16 with fp32 accumulation, the three
// products of --bf16 mixed-precision training (the weight is a bf16 copy of the fp32
// master; activations and output gradients are rounded to bf16, nearest even, as they
// are packed; every sum and every output is fp32):
//   forward   y  = bf(x) W^T (+ b)        k_linear_bb16_fwd
//   backward  dx += bf(dy) W,  dW += bf(dy)^T bf(x),  db += sum_rows dy (fp32, exact dy)
// Each is C[i, j] (+)= sum_r A(i, r) B(j, r) over the reduced index r (forward: k = in;
// dx: n = out; dW: the rows m), computed by one GEMM on packed panels.
//
// The one order, on every path (and so the same bits on every path but AMX, see below):
// bf16 inputs (subnormals flushed to zero, as vdpbf16ps does); R padded with a zero to
// even; each output element is one fp32 chain that starts at 0 (forward) or at the value
// already in dx / dW, and for p = 0, 1, ... adds the product of index 2p+1, then that of
// 2p, each with one rounding (an FMA: the products of two bf16 are exact in fp32). The
// forward then adds b[n]. This is exactly what one vdpbf16ps does per lane (odd half
// first; verified bit for bit on this machine), and what an FMA does on bf16 values
// widened to fp32, so the FMA paths and the vdpbf16ps path agree bit for bit. The order
// depends on R only: never on the row count (decode row or packed batch), the tile an
// element falls in, the cache blocking (a block continues the chain from C) or the
// thread count (tiles of fixed size split I and J; each element is computed by one
// thread). The exception: a chain that passes below 2^-126 is flushed by vdpbf16ps/AMX
// (FTZ) and not by the FMA paths.
//
// Paths (k_bb16_set_path / TEMPER_BB16_GEMM=name):
//   "scalar"       the order spelled out on the unpacked operands (reference, fallback);
//   "avx2"         AVX2 + FMA, 6 x 16 microkernel on panels of bf16 widened to fp32 once;
//   "avx512"       AVX-512F FMA, 12 x 32 microkernel, the same panels;
//   "avx512-bf16"  vdpbf16ps, 12 x 32 microkernel on pair-interleaved bf16 panels;
//   "amx"          AMX-BF16 tiles, 32 x 32 (cpu_gemm_bb16_amx.c): never run on silicon
//                  (no AMX on any development machine); on a software model of the tile
//                  unit (test_amx_emu.c) it gives the other paths' bits. Padded to R multiple of 32; whether the
//                  silicon rounds per the SDM's pseudo-code is unverified, so it is held
//                  to a tolerance, not to the bits of the other paths.
// Automatic choice: amx when the CPU has it and a first-use self-check against the
// avx512 path passes; else, on AVX-512-BF16 CPUs, whichever of avx512-bf16 and avx512
// ran faster in a short timing of the two microkernels at first use (they give the same
// bits, so the choice changes speed only: on Intel Emerald Rapids vdpbf16ps retires at
// half the FMA rate, 16 against 32 multiply-adds per cycle, so avx512 wins there); else
// avx512, avx2, scalar. A build that targets AVX2 only (x86-64-v3) never takes the
// AVX-512 or AMX paths, so it tests the AVX2 one on any machine. The path taken is
// reported once on stderr.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/cpu_gemm_bb16.h"
#include "kernels/cpu_gemm_bf16.h"
#include "kernels/cpu_tuning.h"
#include "kernels/kernels.h"

// ---- scalar: the order spelled out ----

static inline float src_val(const bb16_src *s, long i, long r) {
    long o = i * s->si + r * s->sr;
    return bb16_widen(s->bf ? bb16_ftz(((const uint16_t *)s->p)[o]) : bb16_round(((const float *)s->p)[o]));
}

static void gemm_scalar(float *C, long ldc, int I, int J, int R, bb16_src A, bb16_src B, int zero) {
    #pragma omp parallel for schedule(static) if ((double)I * J * R > 5e5)
    for (int i = 0; i < I; i++)
        for (int j = 0; j < J; j++) {
            float t = zero ? 0.0f : C[(long)i * ldc + j];
            for (int r = 0; r < R; r += 2) {
                int odd = r + 1 < R;
                t = fmaf(odd ? src_val(&A, i, r + 1) : 0.0f, odd ? src_val(&B, j, r + 1) : 0.0f, t);
                t = fmaf(src_val(&A, i, r), src_val(&B, j, r), t);
            }
            C[(long)i * ldc + j] = t;
        }
}

// ---- the packed GEMM ----

// the calling thread's panel buffer, kept between calls (grown, never shrunk)
static _Thread_local struct { void *p; size_t n; } scratch;

static void *scratch_get(size_t n) {
    if (n <= scratch.n) return scratch.p;
    free(scratch.p);
    scratch.p = NULL, scratch.n = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, n)) return NULL;
    scratch.p = p, scratch.n = n;
    return p;
}

static void tile(const bb16_ops *o, float *C, long ldc, int I, int J, int Rp, const char *Ap, size_t pa,
                 const char *Bp, size_t pb, int i0, int j0, int zero) {
    int i1 = i0 + o->mc < I ? i0 + o->mc : I, j1 = j0 + o->nc < J ? j0 + o->nc : J;
    float tmp[BB16_MR_MAX * BB16_NR_MAX] __attribute__((aligned(64)));
    for (int q0 = 0; q0 < Rp; q0 += o->kc) {
        int nq = Rp - q0 < o->kc ? Rp - q0 : o->kc, z = zero && q0 == 0;
        for (int j = j0; j < j1; j += o->nr) {
            const char *b = Bp + (size_t)(j / o->nr) * pb;
            int w = J - j < o->nr ? J - j : o->nr;
            for (int i = i0; i < i1; i += o->mr) {
                const char *a = Ap + (size_t)(i / o->mr) * pa;
                int h = I - i < o->mr ? I - i : o->mr;
                float *c = C + (long)i * ldc + j;
                if (h == o->mr && w == o->nr) {
                    o->uk(q0, nq, a, b, Rp, c, ldc, z);
                    continue;
                }
                // an edge block: through a full-size copy (the lanes past the edge are zeros)
                memset(tmp, 0, sizeof(float) * (size_t)o->mr * o->nr);
                if (!z)
                    for (int r = 0; r < h; r++) memcpy(tmp + r * o->nr, c + (long)r * ldc, sizeof(float) * (size_t)w);
                o->uk(q0, nq, a, b, Rp, tmp, o->nr, z);
                for (int r = 0; r < h; r++) memcpy(c + (long)r * ldc, tmp + r * o->nr, sizeof(float) * (size_t)w);
            }
        }
    }
}

static void gemm(const bb16_ops *o, float *C, long ldc, int I, int J, int R, bb16_src A, bb16_src B, int zero) {
    int Rp = (R + o->rq - 1) / o->rq * o->rq;
    int nI = (I + o->mr - 1) / o->mr, nJ = (J + o->nr - 1) / o->nr;
    size_t pa = bb16_panel_bytes(o->fmt_a, o->mr, Rp), pb = bb16_panel_bytes(o->fmt_b, o->nr, Rp);
    size_t sa = ((size_t)nI * pa + 63) / 64 * 64;
    char *buf = scratch_get(sa + (size_t)nJ * pb);
    if (!buf) {  // out of memory: the same bits, slowly, with no buffer
        gemm_scalar(C, ldc, I, J, R, A, B, zero);
        return;
    }
    const char *Ap = buf, *Bp = buf + sa;
    int par = (double)I * J * R > 5e5, tI = (I + o->mc - 1) / o->mc, tJ = (J + o->nc - 1) / o->nc;
    #pragma omp parallel if (par)
    {
        // an F32 operand with contiguous lanes is packed by blocks of source rows (each read
        // once, whole), any other panel by panel
        int ra = o->fmt_a == BB16_F32 && A.si == 1, rb = o->fmt_b == BB16_F32 && B.si == 1;
        int na = ra ? (Rp + 63) / 64 : nI, nb = rb ? (Rp + 63) / 64 : nJ;
        #pragma omp for schedule(static)
        for (int t = 0; t < na + nb; t++) {
            int a = t < na, u = a ? t : t - na;
            char *d = a ? buf : buf + sa;
            if (a ? ra : rb)
                bb16_pack_rows(d, a ? pa : pb, a ? A : B, a ? o->mr : o->nr, a ? I : J, R, u * 64,
                               u * 64 + 64 < Rp ? u * 64 + 64 : Rp);
            else if (a) bb16_pack(d + (size_t)u * pa, A, u * o->mr, o->mr, I, R, Rp, o->fmt_a);
            else bb16_pack(d + (size_t)u * pb, B, u * o->nr, o->nr, J, R, Rp, o->fmt_b);
        }
        if (o->begin) o->begin();
        // B blocks outer: a thread's consecutive tiles share one
        #pragma omp for schedule(static)
        for (int t = 0; t < tI * tJ; t++)
            tile(o, C, ldc, I, J, Rp, Ap, pa, Bp, pb, (t % tI) * o->mc, (t / tI) * o->nc, zero);
        if (o->end) o->end();
    }
}

// tests/unit/test_amx_emu.c: the whole packed GEMM on one path's ops (the AMX microkernel
// on a software model of the tile unit)
void bb16_gemm_on(const bb16_ops *o, float *C, long ldc, int I, int J, int R, bb16_src A, bb16_src B, int zero) {
    gemm(o, C, ldc, I, J, R, A, B, zero);
}

// ---- dispatch ----

static const char *path_names[] = {"auto", "scalar", "avx2", "avx512", "avx512-bf16", "amx"};
static const char *const report_names[] = {"auto", "scalar C", "AVX2 (bf16 widened to fp32, FMA)",
                                           "AVX-512 (bf16 widened to fp32, FMA)", "AVX-512-BF16 (vdpbf16ps)",
                                           "AMX-BF16 (tdpbf16ps)"};

const char *k_bb16_path_name(int path) { return path >= 0 && path <= K_BB16_AMX ? path_names[path] : "?"; }

int k_bb16_path_available(int path) {
    bf16_isa c = bf16_isa_caps();  // the same CPU and build caps as the frozen-base kernels
    switch (path) {
    case K_BB16_SCALAR: return 1;
    case K_BB16_AVX2: return c.avx2;
    case K_BB16_AVX512: return c.avx512;
    case K_BB16_DPBF16: return c.dpbf16;
    case K_BB16_AMX: return c.amx;
    default: return 0;
    }
}

static const bb16_ops *ops_of(int path) {
    switch (path) {
    case K_BB16_AVX2: return &bb16_ops_avx2;
    case K_BB16_AVX512: return &bb16_ops_avx512;
    case K_BB16_DPBF16: return &bb16_ops_dp;
    case K_BB16_AMX: return &bb16_ops_amx;
    default: return NULL;
    }
}

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// seconds per multiply-add of a path's microkernel on panels in L1 (best of 3)
static double uk_seconds(const bb16_ops *o) {
    enum { NQ = 128, IT = 200 };
    static float A[BB16_MR_MAX * NQ] __attribute__((aligned(64))), B[BB16_NR_MAX * NQ] __attribute__((aligned(64))),
        C[BB16_MR_MAX * BB16_NR_MAX] __attribute__((aligned(64)));
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = thread_seconds();
        for (int it = 0; it < IT; it++) o->uk(0, NQ, A, B, NQ, C, BB16_NR_MAX, 0);
        double t = (thread_seconds() - t0) / ((double)IT * NQ * o->mr * o->nr);
        if (t < best) best = t;
    }
    return best;
}

// AMX against the avx512 path on one odd shape, within (R + 34) u S per element (the
// chain's roundings and the 32-padding), where S = sum |terms|: 0 when it passes
static int amx_selfcheck(void) {
    enum { I = 45, J = 37, R = 75 };
    static float x[I * R], w[J * R], c1[I * J], c2[I * J];
    unsigned s = 12345;
    for (int i = 0; i < I * R; i++) s = s * 1103515245u + 12345u, x[i] = (float)((int)(s >> 9 & 0xffff) - 32768) / 8192.0f;
    for (int i = 0; i < J * R; i++) s = s * 1103515245u + 12345u, w[i] = (float)((int)(s >> 9 & 0xffff) - 32768) / 8192.0f;
    bb16_src A = {x, 0, R, 1}, B = {w, 0, R, 1};
    gemm(&bb16_ops_amx, c1, J, I, J, R, A, B, 1);
    gemm(&bb16_ops_avx512, c2, J, I, J, R, A, B, 1);
    for (int i = 0; i < I; i++)
        for (int j = 0; j < J; j++) {
            double S = 0;
            for (int r = 0; r < R; r++) S += fabs((double)src_val(&A, i, r) * src_val(&B, j, r));
            if (!(fabs((double)c1[i * J + j] - c2[i * J + j]) <= (R + 34) * 0x1p-24 * S)) return -1;
        }
    return 0;
}

static int chosen = -1, reported;
static char why[160];

int k_bb16_set_path(int path) {
    if (path == K_BB16_AUTO) { chosen = -1; return 0; }
    if (!k_bb16_path_available(path)) return -1;
    chosen = path;
    return 0;
}

static int choose_auto(void) {
    if (k_bb16_path_available(K_BB16_AMX)) {
        if (!amx_selfcheck()) return K_BB16_AMX;
        snprintf(why, sizeof why, "; AMX present but its self-check against AVX-512 failed");
    }
    if (k_bb16_path_available(K_BB16_DPBF16)) {
        double dp = uk_seconds(&bb16_ops_dp), fma = uk_seconds(&bb16_ops_avx512);
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, "; vdpbf16ps ran at %.2fx the FMA rate here", fma / dp);
        return dp < fma ? K_BB16_DPBF16 : K_BB16_AVX512;
    }
    return k_bb16_path_available(K_BB16_AVX512) ? K_BB16_AVX512
           : k_bb16_path_available(K_BB16_AVX2) ? K_BB16_AVX2 : K_BB16_SCALAR;
}

int k_bb16_path(void) {
    if (chosen < 0) {
        const char *env = getenv("TEMPER_BB16_GEMM");
        for (int p = K_BB16_SCALAR; env && chosen < 0 && p <= K_BB16_AMX; p++)
            if (!strcmp(env, path_names[p]) && k_bb16_path_available(p)) chosen = p;
        if (chosen < 0) chosen = choose_auto();
    }
    return chosen;
}

const char *k_bb16_report(void) {
    int p = k_bb16_path();
    if (!reported) {
        reported = 1;
        fprintf(stderr, "temper: bf16 GEMM on %s%s\n", report_names[p], why);
    }
    return path_names[p];
}

// ---- the three products ----

static void run(float *C, long ldc, int I, int J, int R, bb16_src A, bb16_src B, int zero) {
    const bb16_ops *o = ops_of(k_bb16_path());
    if (o) gemm(o, C, ldc, I, J, R, A, B, zero);
    else gemm_scalar(C, ldc, I, J, R, A, B, zero);
}

// Fewer rows than this go through bb16_rows_avx512 (no packing of W) on the AVX-512 paths
// (not AMX, whose bits may differ: its sampler and trainer stay on one kernel).
enum { ROWS_MAX = 48 };

static int rows_fwd(float *y, const float *x, const uint16_t *W, int N, int in, int out) {
    float *xr = malloc(sizeof(float) * (size_t)N * in);
    if (!xr) return -1;
    for (long i = 0; i < (long)N * in; i++) xr[i] = bb16_widen(bb16_round(x[i]));
    int nb = (out + 255) / 256;
    #pragma omp parallel for schedule(static) if ((double)N * out * in > 5e5)
    for (int b = 0; b < nb; b++) bb16_rows_avx512(y, xr, W, N, in, out, b * 256, b * 256 + 256 < out ? b * 256 + 256 : out);
    free(xr);
    return 0;
}

void k_linear_bb16_fwd(float *y, const float *x, const uint16_t *W, const float *b, int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    if (in <= 0) {
        for (long i = 0; i < (long)N * out; i++) y[i] = 0.0f;
    } else if (N < ROWS_MAX && (k_bb16_path() == K_BB16_AVX512 || k_bb16_path() == K_BB16_DPBF16) &&
               rows_fwd(y, x, W, N, in, out) == 0) {
        // a few rows (the sampler's decode): straight from W, the same bits
    } else {
        run(y, out, N, out, in, (bb16_src){x, 0, in, 1}, (bb16_src){W, 1, in, 1}, 1);
    }
    if (!b) return;
    #pragma omp parallel for schedule(static) if ((long)N * out > 1 << 16)
    for (int m = 0; m < N; m++)
        for (int n = 0; n < out; n++) y[(long)m * out + n] += b[n];
}

void k_linear_bb16_bwd(float *dx, float *dW, float *db, const float *dy, const float *x, const uint16_t *W, int N,
                       int in, int out) {
    if (N <= 0 || in <= 0 || out <= 0) return;
    // dx[m, k] += sum_n dy[m, n] W[n, k]
    if (dx) run(dx, in, N, in, out, (bb16_src){dy, 0, out, 1}, (bb16_src){W, 1, 1, in}, 0);
    // dW[n, k] += sum_m dy[m, n] x[m, k]
    if (dW) run(dW, in, out, in, N, (bb16_src){dy, 0, 1, out}, (bb16_src){x, 0, 1, in}, 0);
    if (db) k_linear_bwd(NULL, NULL, db, dy, x, NULL, N, in, out);
}
