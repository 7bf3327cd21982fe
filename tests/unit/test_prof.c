// tests/unit/test_prof.c: --profile's kernel table (kernels/prof.h) gives every entry of
// struct kernels a class or marks it untimed, so no kernel's time lands in "rest":
// - the entry list covers each function-pointer slot of the table exactly once (a kernel
//   added to struct kernels without a class fails here);
// - the wrapped table replaces every timed entry and passes the untimed ones through;
// - a call through each timed entry adds one call to the class this test expects (the bf16
//   GEMMs and the frozen-base bf16 linear to GEMM, the bf16 lm-head and the decode row's
//   log-prob to lm-head, the vision kernels to vision, ...) and to no other, and the result
//   is the base kernel's.
#include "kernels/prof.h"
#include "test.h"
#include <string.h>

enum { BUF = 4096 };
static float *buf[20];
static uint16_t w16[BUF];
static int tok[4] = {0, 1, 0, 0}, cu[2] = {0, 1};

typedef void (*fn)(void);

static const kprof_entry *find(const kprof_entry *e, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(e[i].name, name)) return &e[i];
    return NULL;
}

// Calls the entry named `name` through the profiled table P and checks that exactly one call
// was added, to class `want` (which must also be the class the entry list gives it).
static void call(const struct kernels *P, const kprof_entry *e, int n, const char *name, kprof_class want) {
    double s0[KPROF_NCLASS], s1[KPROF_NCLASS];
    long c0[KPROF_NCLASS], c1[KPROF_NCLASS];
    kprof_read(s0, c0);
    float *const *b = buf;
    const int N = 1, D = 2, V = 2, H = 1, d = 2;
    float *scr = buf[19];
    k_kv_span sp = {buf[3], buf[4], d, 1, 0};
    if (!strcmp(name, "linear_fwd")) P->linear_fwd(b[0], b[1], b[2], b[3], N, D, D);
    else if (!strcmp(name, "linear_bwd")) P->linear_bwd(b[0], b[1], b[2], b[3], b[4], b[5], N, D, D);
    else if (!strcmp(name, "embedding_fwd")) P->embedding_fwd(b[0], tok, b[1], N, D);
    else if (!strcmp(name, "embedding_bwd")) P->embedding_bwd(b[0], b[1], tok, N, D);
    else if (!strcmp(name, "rmsnorm_fwd")) P->rmsnorm_fwd(b[0], b[1], b[2], b[3], 0.0f, N, D, 1e-6f);
    else if (!strcmp(name, "rmsnorm_bwd")) P->rmsnorm_bwd(b[0], b[1], b[2], b[3], b[4], 0.0f, b[5], N, D);
    else if (!strcmp(name, "rope_fwd")) P->rope_fwd(b[0], tok, b[1], N, H, d);
    else if (!strcmp(name, "rope_bwd")) P->rope_bwd(b[0], tok, b[1], N, H, d);
    else if (!strcmp(name, "attention_fwd")) P->attention_fwd(b[0], b[1], b[2], b[3], b[4], cu, 1, N, H, H, d, 0, scr);
    else if (!strcmp(name, "attention_bwd"))
        P->attention_bwd(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], cu, 1, N, H, H, d, 0, scr);
    else if (!strcmp(name, "swiglu_fwd")) P->swiglu_fwd(b[0], b[1], b[2], D);
    else if (!strcmp(name, "swiglu_bwd")) P->swiglu_bwd(b[0], b[1], b[2], b[3], b[4], D);
    else if (!strcmp(name, "geglu_fwd")) P->geglu_fwd(b[0], b[1], b[2], D);
    else if (!strcmp(name, "geglu_bwd")) P->geglu_bwd(b[0], b[1], b[2], b[3], b[4], D);
    else if (!strcmp(name, "lmhead_logprob_fwd")) P->lmhead_logprob_fwd(b[0], b[1], b[2], b[3], b[4], tok, N, D, V, scr);
    else if (!strcmp(name, "lmhead_logprob_bwd"))
        P->lmhead_logprob_bwd(b[0], b[1], b[2], NULL, b[3], b[4], tok, b[5], NULL, N, D, V, scr);
    else if (!strcmp(name, "sgemm")) P->sgemm(0, 1, N, D, D, 1.0f, b[0], D, b[1], D, 0.0f, b[2], D);
    else if (!strcmp(name, "attention_cache_fwd")) P->attention_cache_fwd(b[0], b[1], &sp, 1, N, H, H, d);
    else if (!strcmp(name, "linear_rows_fwd")) P->linear_rows_fwd(b[0], b[1], b[2], NULL, N, D, D);
    else if (!strcmp(name, "contrastive_prob")) P->contrastive_prob(b[0], b[1], b[2], b[3], b[4], 0.5f, tok, N, D, V, scr);
    else if (!strcmp(name, "add_inplace")) P->add_inplace(b[0], b[1], D);
    else if (!strcmp(name, "zero")) P->zero(b[0], D);
    else if (!strcmp(name, "linear_bf16_fwd")) P->linear_bf16_fwd(b[0], b[1], w16, NULL, N, D, D);
    else if (!strcmp(name, "linear_bf16_bwd")) P->linear_bf16_bwd(b[0], b[1], w16, N, D, D);
    else if (!strcmp(name, "embedding_bf16_fwd")) P->embedding_bf16_fwd(b[0], tok, w16, N, D);
    else if (!strcmp(name, "lmhead_bf16_logprob_fwd")) P->lmhead_bf16_logprob_fwd(b[0], b[1], b[2], b[3], w16, tok, N, D, V, scr);
    else if (!strcmp(name, "lmhead_bf16_logprob_bwd"))
        P->lmhead_bf16_logprob_bwd(b[0], b[1], NULL, b[2], w16, tok, b[3], NULL, N, D, V, scr);
    else if (!strcmp(name, "rope_angle_fwd")) P->rope_angle_fwd(b[0], b[1], N, H, d);
    else if (!strcmp(name, "rope_angle_bwd")) P->rope_angle_bwd(b[0], b[1], N, H, d);
    else if (!strcmp(name, "attention_seg_fwd")) P->attention_seg_fwd(b[0], b[1], b[2], b[3], b[4], cu, 1, N, H, d, scr);
    else if (!strcmp(name, "attention_seg_bwd"))
        P->attention_seg_bwd(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], cu, 1, N, H, d, scr);
    else if (!strcmp(name, "gelu_fwd")) P->gelu_fwd(b[0], b[1], D);
    else if (!strcmp(name, "gelu_bwd")) P->gelu_bwd(b[0], b[1], b[2], D);
    else if (!strcmp(name, "quick_gelu_fwd")) P->quick_gelu_fwd(b[0], b[1], D);
    else if (!strcmp(name, "quick_gelu_bwd")) P->quick_gelu_bwd(b[0], b[1], b[2], D);
    else if (!strcmp(name, "layernorm_fwd")) P->layernorm_fwd(b[0], b[1], b[2], b[3], b[4], b[5], N, D, 1e-6f);
    else if (!strcmp(name, "layernorm_bwd")) P->layernorm_bwd(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], N, D);
    else if (!strcmp(name, "lmhead_logprob_row")) (void)P->lmhead_logprob_row(b[0], V, 1, NULL);
    else if (!strcmp(name, "linear_bb16_fwd")) P->linear_bb16_fwd(b[0], b[1], w16, NULL, N, D, D);
    else if (!strcmp(name, "linear_bb16_bwd")) P->linear_bb16_bwd(b[0], b[1], b[2], b[3], b[4], w16, N, D, D);
    else {
        CHECK(0, "%s: this test does not know how to call it (add it above, with the class it must have)", name);
        return;
    }
    kprof_read(s1, c1);
    int only = 1;
    for (int c = 0; c < KPROF_NCLASS; c++) only &= c1[c] - c0[c] == (c == (int)want) && s1[c] >= s0[c];
    const kprof_entry *x = find(e, n, name);
    CHECK(only && x && x->cls == (int)want, "%s: one call is timed as %s (listed as %s)", name, kprof_class_name(want),
          x ? (x->cls < 0 ? "untimed" : kprof_class_name((kprof_class)x->cls)) : "nothing");
}

int main(void) {
    int n;
    const kprof_entry *e = kprof_entries(&n);
    // 1. the list covers every function-pointer slot of struct kernels once
    CHECK(offsetof(struct kernels, name) == 0, "struct kernels starts with its name");
    size_t first = sizeof(const char *), slots = (sizeof(struct kernels) - first) / sizeof(fn);
    int covered = 1;
    for (size_t s = 0; s < slots; s++) {
        int hits = 0;
        for (int i = 0; i < n; i++) hits += e[i].offset == first + s * sizeof(fn);
        if (hits != 1) {
            covered = 0;
            printf("# slot %zu of struct kernels (byte %zu) is listed %d times in kprof_entries\n", s, first + s * sizeof(fn), hits);
        }
    }
    CHECK(covered && (size_t)n == slots && first + slots * sizeof(fn) == sizeof(struct kernels),
          "kprof_entries lists each of the %zu kernel-table entries once (%d listed)", slots, n);

    // 2. the wrapped table: timed entries replaced, untimed ones passed through
    const struct kernels *P = kprof_wrap(&kernels_cpu);
    int swapped = 1, through = 1, ntimed = 0;
    for (int i = 0; i < n; i++) {
        int same = !memcmp((const char *)P + e[i].offset, (const char *)&kernels_cpu + e[i].offset, sizeof(fn));
        if (e[i].cls >= 0) swapped &= !same, ntimed++;
        else through &= same;
        if (e[i].cls >= 0 ? same : !same) printf("# %s: %s\n", e[i].name, same ? "not wrapped" : "wrapped but listed untimed");
    }
    CHECK(swapped, "kprof_wrap times all %d timed entries", ntimed);
    CHECK(through, "kprof_wrap passes the %d untimed entries (sizes, capabilities, the bf16 path's name) through", n - ntimed);
    CHECK(P->linear_rows_max() == kernels_cpu.linear_rows_max() && kprof_wrap(P) == P, "untimed entries answer as the base's; wrapping twice is one wrap");

    // 3. each timed entry counts in its class
    size_t sz[] = {BUF, kernels_cpu.attention_scratch_floats(cu, 1, 1, 1, 2), kernels_cpu.lmhead_scratch_floats(1, 2, 2),
                   kernels_cpu.lmhead_bf16_scratch_floats(1, 2, 2), kernels_cpu.contrastive_scratch_floats(1, 2, 2),
                   kernels_cpu.attention_seg_scratch_floats(cu, 1)};
    size_t nscr = 0;  // the scratch, buf[19]: the largest any kernel here asks for
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) nscr = sz[i] > nscr ? sz[i] : nscr;
    for (int i = 0; i < 20; i++) {
        size_t len = i == 19 ? nscr : BUF;
        buf[i] = malloc(sizeof(float) * len);
        for (size_t j = 0; j < len; j++) buf[i][j] = 0.125f * (float)((j % 5) + 1);
    }
    for (int j = 0; j < BUF; j++) w16[j] = 0x3e00;  // bf16 0.125
    static const struct { const char *name; kprof_class c; } want[] = {
        {"linear_fwd", KPROF_GEMM}, {"linear_bwd", KPROF_GEMM}, {"sgemm", KPROF_GEMM}, {"linear_rows_fwd", KPROF_GEMM},
        {"linear_bf16_fwd", KPROF_GEMM}, {"linear_bf16_bwd", KPROF_GEMM}, {"linear_bb16_fwd", KPROF_GEMM}, {"linear_bb16_bwd", KPROF_GEMM},
        {"attention_fwd", KPROF_ATTENTION}, {"attention_bwd", KPROF_ATTENTION}, {"attention_cache_fwd", KPROF_ATTENTION},
        {"rmsnorm_fwd", KPROF_NORM}, {"rmsnorm_bwd", KPROF_NORM}, {"layernorm_fwd", KPROF_NORM}, {"layernorm_bwd", KPROF_NORM},
        {"quick_gelu_fwd", KPROF_VISION}, {"quick_gelu_bwd", KPROF_VISION},
        {"lmhead_logprob_fwd", KPROF_LMHEAD}, {"lmhead_logprob_bwd", KPROF_LMHEAD}, {"lmhead_bf16_logprob_fwd", KPROF_LMHEAD},
        {"lmhead_bf16_logprob_bwd", KPROF_LMHEAD}, {"lmhead_logprob_row", KPROF_LMHEAD}, {"contrastive_prob", KPROF_LMHEAD},
        {"rope_angle_fwd", KPROF_VISION}, {"rope_angle_bwd", KPROF_VISION}, {"attention_seg_fwd", KPROF_VISION},
        {"attention_seg_bwd", KPROF_VISION}, {"gelu_fwd", KPROF_VISION}, {"gelu_bwd", KPROF_VISION},
        {"embedding_fwd", KPROF_OTHER}, {"embedding_bwd", KPROF_OTHER}, {"embedding_bf16_fwd", KPROF_OTHER},
        {"rope_fwd", KPROF_OTHER}, {"rope_bwd", KPROF_OTHER}, {"swiglu_fwd", KPROF_OTHER}, {"swiglu_bwd", KPROF_OTHER},
        {"geglu_fwd", KPROF_OTHER}, {"geglu_bwd", KPROF_OTHER}, {"add_inplace", KPROF_OTHER}, {"zero", KPROF_OTHER},
    };
    int nw = (int)(sizeof want / sizeof want[0]);
    for (int i = 0; i < nw; i++) call(P, e, n, want[i].name, want[i].c);
    int known = 1;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < nw; j++) k |= !strcmp(want[j].name, e[i].name);
        if (e[i].cls >= 0 && !k) known = 0, printf("# timed entry %s has no expected class in this test\n", e[i].name);
    }
    CHECK(known && nw == ntimed, "every timed entry (%d) has its class checked here (%d)", ntimed, nw);

    // the profiled call gives the base kernel's result
    float y0[4], y1[4];
    kernels_cpu.linear_bb16_fwd(y0, buf[1], w16, NULL, 1, 2, 2);
    P->linear_bb16_fwd(y1, buf[1], w16, NULL, 1, 2, 2);
    CHECK(!memcmp(y0, y1, sizeof(float) * 2), "a profiled call returns the base kernel's result");
    kprof_reset();
    double s[KPROF_NCLASS];
    long c[KPROF_NCLASS];
    kprof_read(s, c);
    long tot = 0;
    for (int k = 0; k < KPROF_NCLASS; k++) tot += c[k];
    CHECK(tot == 0 && !strcmp(kprof_class_name(KPROF_VISION), "vision"), "kprof_reset clears the counters; the vision class is named");
    for (int i = 0; i < 20; i++) free(buf[i]);
    return test_done();
}
