// kernels/cpu_gemm_bf16_amx.c: the AMX-BF16 forward tile of the bf16-weight linear
// (cpu_gemm_bf16.c has the contract). Never run on silicon (no machine this project has
// met exposes AMX); tests/unit/test_amx_emu.c runs it on a software model of the tile
// unit, where each element is one chain in k order. It is reachable only by asking for
// the "amx" path by name (k_bf16_set_path / TEMPER_BF16_GEMM=amx) on a CPU reporting
// amx-tile and amx-bf16, after the kernel granted the tile data state. x is rounded to
// bf16 as in the dpbf16 path; products are summed in fp32 in the order of the AMX unit.
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "kernels/cpu_gemm_bf16.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

// Linux refuses AMX instructions (SIGILL) until the process asked for the state.
int bf16_amx_enable(void) {
    static int state;  // 0 not asked, 1 granted, -1 refused; first asked from the serial region
    if (!state) state = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 1 : -1;
    return state == 1 ? 0 : -1;
}

// AMX-TILE and AMX-BF16 from CPUID leaf 7 (EDX bits 24 and 22): clang's
// __builtin_cpu_supports knows no AMX feature names, gcc's and clang's <cpuid.h> agree.
int bf16_amx_usable(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (d >> 24 & 1) && (d >> 22 & 1) && bf16_amx_enable() == 0;
}

#define TA __attribute__((target("amx-tile,amx-bf16,avx512f,avx512vl,avx512bw,avx512bf16")))

typedef struct tile_config {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

// tmm0 = C [16 rows x 16 fp32], tmm1 = A (x) [16 rows x 32 bf16], tmm2 = B (W, pairs of
// k interleaved: row i holds W[n][k+2i], W[n][k+2i+1] for the 16 n) [16 rows x 64 bytes]
TA void bf16_fwd_tile_amx(float *y, const float *x, const uint16_t *W, const float *b, int m0, int m1, int n0, int n1,
                          int K, int ldy) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 3; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
    uint16_t xa[16][32] __attribute__((aligned(64)));
    uint32_t wb[16][16] __attribute__((aligned(64)));
    float c[16][16] __attribute__((aligned(64)));
    for (int m = m0; m < m1; m += 16) {
        int mr = m1 - m < 16 ? m1 - m : 16;
        for (int n = n0; n < n1; n += 16) {
            int nr = n1 - n < 16 ? n1 - n : 16;
            _tile_zero(0);
            for (int k = 0; k < K; k += 32) {
                int kw = K - k < 32 ? K - k : 32;
                memset(xa, 0, sizeof xa);
                memset(wb, 0, sizeof wb);
                for (int r = 0; r < mr; r++) {
                    float xt[32] = {0};
                    memcpy(xt, x + (long)(m + r) * K + k, sizeof(float) * (size_t)kw);
                    __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xt + 16), _mm512_loadu_ps(xt));
                    _mm512_storeu_si512(xa[r], (__m512i)v);
                }
                for (int cc = 0; cc < nr; cc++)
                    for (int j = 0; j < kw; j++)
                        wb[j / 2][cc] |= (uint32_t)W[(long)(n + cc) * K + k + j] << (16 * (j & 1));
                _tile_loadd(1, xa, 64);
                _tile_loadd(2, wb, 64);
                _tile_dpbf16ps(0, 1, 2);
            }
            _tile_stored(0, c, 64);
            for (int r = 0; r < mr; r++)
                for (int cc = 0; cc < nr; cc++) y[(long)(m + r) * ldy + n + cc] = b ? c[r][cc] + b[n + cc] : c[r][cc];
        }
    }
    _tile_release();
}
