// tests/unit/test_isa.c: the run-time ISA choice (cpu_isa.c) and the shared vector helpers
// of cpu_simd.h: exp on 16, 8 and 1 lanes gives the same bits, and is within 3 ulp-ish of
// expf; the 16-lane sum has one tree on every path. The kernels' own path-against-path
// checks are in test_kernels.c / test_det.c.
#include <stdint.h>
#include <string.h>
#include "test.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_tuning.h"

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

ISA_AVX512 static void exp16(float *y, const float *x) { _mm512_storeu_ps(y, exp512_ps(_mm512_loadu_ps(x))); }
ISA_AVX2 static void exp8(float *y, const float *x) { _mm256_storeu_ps(y, exp256_ps(_mm256_loadu_ps(x))); }
ISA_AVX512 static float sum16_512(const float *v) { return isa_hsum16_avx512(_mm512_loadu_ps(v)); }
ISA_AVX2 static float sum16_256(const float *v) { return isa_hsum16_avx2(_mm256_loadu_ps(v), _mm256_loadu_ps(v + 8)); }

int main(void) {
    int has2 = k_isa_supported(K_ISA_AVX2), has5 = k_isa_supported(K_ISA_AVX512);
    // the choice: widest by default, a forced path the CPU has is kept, -1 gives the widest
    int best = k_isa_set(-1);
    CHECK(best == (has5 ? K_ISA_AVX512 : has2 ? K_ISA_AVX2 : K_ISA_C), "k_isa picks the widest path the CPU has (%s)", k_isa_name(best));
    CHECK(k_isa_set(K_ISA_C) == K_ISA_C && k_isa() == K_ISA_C, "k_isa_set(c) is kept");
    k_isa_set(best);

    // exp: a sweep of inputs in [-100, 100] and the edges, all three versions bit for bit
    enum { N = 16 * 4096 };
    static float x[N], y1[N], y8[N], y16[N];
    for (int i = 0; i < N; i++) x[i] = -100.0f + 200.0f * (float)i / N + (float)(i % 7) * 1e-4f;
    const float edge[] = {0.0f, -0.0f, 88.72283f, 88.7f, 88.8f, -87.33f, -87.3299f, -87.3301f, -88.0f, -88.5f,
                          INFINITY, -INFINITY, 1e-30f, -1e-30f, 0.5f * 0.6931472f, -0.5f * 0.6931472f};
    memcpy(x, edge, sizeof edge);
    for (int i = 0; i < N; i++) y1[i] = exp_poly(x[i]);
    int same = 1, close = 1;
    double worst = 0;
    if (has2) {
        for (int i = 0; i < N; i += 8) exp8(y8 + i, x + i);
        for (int i = 0; i < N; i++) same &= bits(y8[i]) == bits(y1[i]);
        CHECK(same, "exp: the AVX2 8-lane and the plain-C exp give the same bits on %d inputs", N);
    }
    if (!has2) printf("ok - exp: the AVX2 path # SKIP this CPU has no AVX2+FMA\n");
    if (!has5) printf("ok - exp: the AVX-512 path # SKIP this CPU has no AVX-512\n");
    if (has5) {
        same = 1;
        for (int i = 0; i < N; i += 16) exp16(y16 + i, x + i);
        for (int i = 0; i < N; i++) same &= bits(y16[i]) == bits(y1[i]);
        CHECK(same, "exp: the AVX-512 16-lane and the plain-C exp give the same bits on %d inputs", N);
    }
    for (int i = 0; i < N; i++) {
        double ref = exp((double)x[i]);
        if (x[i] < -87.33f) {
            close &= y1[i] == 0.0f;
        } else if (ref < 3.4e38) {
            double e = fabs(y1[i] - ref) / ref;
            if (e > worst) worst = e;
        }
    }
    CHECK(close && worst < 4 * 0x1p-24, "exp: within 4 u of exp in double (worst %.2g u), 0 below -87.33", worst / 0x1p-24);
    float nan_in = from_bits(0x7fc00001u);
    CHECK(isnan(exp_poly(nan_in)), "exp: NaN stays NaN");

    // the 16-lane sum: one tree (values whose sum depends on the order)
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = (l & 1 ? 1e8f : 1.0f) * (l % 3 ? 1 : -1) + (float)l * 0.37f;
    float c = isa_hsum16_c(v);
    if (has2) CHECK(bits(sum16_256(v)) == bits(c), "hsum16: AVX2 and C trees agree (%.9g)", c);
    if (has5) CHECK(bits(sum16_512(v)) == bits(c), "hsum16: AVX-512 and C trees agree (%.9g)", c);
    return test_done();
}
