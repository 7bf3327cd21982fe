// kernels/cpu_gemm_bb16_amx.c: the AMX-BF16 microkernel of the bf16 x bf16 GEMM
// (cpu_gemm_bb16.c has the contract). Never run on silicon: no machine this project has
// met exposes AMX; tests/unit/test_amx_emu.c runs it on a software model of the tile unit
// (the SDM's semantics), where it gives the other paths' bits. It is compiled in every
// build and chosen only on a CPU whose CPUID reports
// AMX-TILE and AMX-BF16, after Linux granted the tile data (bf16_amx_usable, shared with
// cpu_gemm_bf16_amx.c), and after cpu_gemm_bb16.c's first-use self-check against the
// AVX-512 path passed.
//
// 32 x 32 of C in four 16 x 16 fp32 tiles (tmm0-3), A in two tiles of 16 rows x 32 bf16
// (tmm4-5, ROWS_SWAP panels: a tile row is a panel row, stride Rp), B in two tiles of 16
// pairs x 16 columns (tmm6-7, PAIRS_SWAP panels, stride 32 words). The SDM's TDPBF16PS adds
// each pair's low half first, so the panels put the odd index there: per the SDM this is
// the contract's order (odd, then even, each rounded). Whether the silicon rounds exactly
// so is unverified on hardware (the self-check compares within a tolerance, not bits), and the reduced
// dimension is padded to 32 with zeros.
#include <immintrin.h>
#include <string.h>
#include "kernels/cpu_gemm_bb16.h"

#define TA __attribute__((target("amx-tile,amx-bf16,avx512f")))

typedef struct tile_config {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

TA static void amx_begin(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
}

TA static void amx_end(void) { _tile_release(); }

TA static void uk_amx(int q0, int nq, const void *Av, const void *Bv, int Rp, float *C, long ldc, int zero) {
    const uint16_t *A0 = (const uint16_t *)Av + q0, *A1 = A0 + 16L * Rp;
    const uint32_t *B = (const uint32_t *)Bv + (long)(q0 / 2) * 32;
    long sc = ldc * (long)sizeof(float), sa = (long)Rp * 2;
    if (zero) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    } else {
        _tile_loadd(0, C, sc);
        _tile_loadd(1, C + 16, sc);
        _tile_loadd(2, C + 16 * ldc, sc);
        _tile_loadd(3, C + 16 * ldc + 16, sc);
    }
    for (int k = 0; k < nq; k += 32) {
        const uint32_t *b = B + (long)(k / 2) * 32;
        _tile_loadd(4, A0 + k, sa);
        _tile_loadd(5, A1 + k, sa);
        _tile_loadd(6, b, 128);
        _tile_loadd(7, b + 16, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, C, sc);
    _tile_stored(1, C + 16, sc);
    _tile_stored(2, C + 16 * ldc, sc);
    _tile_stored(3, C + 16 * ldc + 16, sc);
}

const bb16_ops bb16_ops_amx = {32, 32, 32, 512, 128, 256, BB16_ROWS_SWAP, BB16_PAIRS_SWAP, uk_amx, amx_begin, amx_end};
