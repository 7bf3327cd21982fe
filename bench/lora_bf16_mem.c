// bench/lora_bf16_mem: peak resident memory and time of one LoRA DPO step on a bf16
// checkpoint, with the frozen base read in place (--in-place 1, model_load_frozen) or
// converted to fp32 as before (--in-place 0), and the bf16 kernels' speed.
//   lora_bf16_mem --make qwen3-0.6b|qwen3-1.7b|small --out DIR   writes a random bf16 model of that shape
//   lora_bf16_mem --model DIR --in-place 1 --tokens 512          one JSON line:
// {"in_place", "file_mib", "peak_mib" (VmHWM after the step), "load_peak_mib" (after load + attach),
//  "model_bytes_mib" (model_bytes: weights as stored, gradients, activations), "adapter_mib" (A, B, their gradients and AdamW state), "ms_step", "bf16_path"}
// The step: the reference forward (adapters off), the policy forward and backward (adapters
// on), as DPO under LoRA does; the tokens are 2 pairs (4 sequences) of --tokens/4 each.
// --gemm 1 instead times the bf16 forward GEMM of each path on the shape M x N x K given by
// --m --n --k against k_sgemm on the widened weights (fp32 OpenBLAS), in one JSON line per path.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "base/progress.h"
#include "base/rng.h"
#include "cli/flags.h"
#include "kernels/cpu_tuning.h"
#include "model/batch.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/safetensors.h"

static double vm_hwm_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    if (f) fclose(f);
    return kb / 1024;
}

static int make(const char *shape, const char *out) {
    model_config c;
    tm_error err = {0};
    if (!strcmp(shape, "small")) {
        if (config_preset(&c, ARCH_QWEN3, "small", &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    } else {
        if (config_preset(&c, ARCH_QWEN3, "tiny", &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        int big = !strcmp(shape, "qwen3-1.7b");
        if (!big && strcmp(shape, "qwen3-0.6b")) return fprintf(stderr, "unknown shape %s\n", shape), 2;
        c.layers = 28, c.heads = 16, c.kv_heads = 8, c.head_dim = 128, c.vocab = 151936, c.tie_embeddings = 1;
        c.hidden = big ? 2048 : 1024, c.ffn = big ? 6144 : 3072;
    }
    model m;
    if (model_create(&m, &c, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    model_init_random(&m, 1);
    m.file_dtype = ST_BF16;
    int rc = model_save(&m, out, 0, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    model_free(&m);
    return rc ? 1 : 0;
}

// process CPU time: with one thread (OMP_NUM_THREADS=1) it does not count the time other
// jobs on a shared machine take from us
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int gemm_bench(int M, int N, int K) {
    float *x = malloc(sizeof(float) * M * K), *y = malloc(sizeof(float) * M * N), *wf = malloc(sizeof(float) * N * K);
    uint16_t *w = malloc(2 * (size_t)N * K);
    rng g;
    rng_seed(&g, 1);
    for (long i = 0; i < (long)M * K; i++) x[i] = rng_normal(&g);
    for (long i = 0; i < (long)N * K; i++) w[i] = st_f32_to_bf16(0.02f * rng_normal(&g)), wf[i] = st_bf16_to_f32(w[i]);
    double flop = 2.0 * M * N * K;
    k_sgemm(0, 1, M, N, K, 1, x, K, wf, K, 0, y, N);
    double t = cpu_seconds(), best = 1e30;
    for (int r = 0; r < 3; r++, t = cpu_seconds()) {
        k_sgemm(0, 1, M, N, K, 1, x, K, wf, K, 0, y, N);
        double d = cpu_seconds() - t;
        best = d < best ? d : best;
    }
    double fp32 = best;
    printf("{\"path\": \"sgemm-fp32\", \"m\": %d, \"n\": %d, \"k\": %d, \"ms\": %.2f, \"gflops\": %.1f}\n", M, N, K, fp32 * 1e3, flop / fp32 / 1e9);
    for (int p = K_BF16_SCALAR; p <= K_BF16_AMX; p++) {
        if (k_bf16_set_path(p) || (p == K_BF16_SCALAR && (double)M * N * K > 1e9)) continue;
        k_linear_bf16_fwd(y, x, w, NULL, M, K, N);
        best = 1e30;
        for (int r = 0; r < 3; r++) {
            t = cpu_seconds();
            k_linear_bf16_fwd(y, x, w, NULL, M, K, N);
            double d = cpu_seconds() - t;
            best = d < best ? d : best;
        }
        printf("{\"path\": \"bf16-%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"ms\": %.2f, \"gflops\": %.1f, \"vs_fp32\": %.2f}\n", k_bf16_path_name(p), M, N, K,
               best * 1e3, flop / best / 1e9, fp32 / best);
    }
    // the backward dx = dy W of the widen path
    k_bf16_set_path(K_BF16_AUTO);
    float *dx = calloc((size_t)M * K, sizeof(float));
    double bwd = 1e30, bwd32 = 1e30;
    for (int rep = 0; rep < 4; rep++) {  // the first of each is a warm-up
        t = cpu_seconds();
        k_linear_bf16_bwd(dx, y, w, M, K, N);
        double d = cpu_seconds() - t;
        if (rep) bwd = d < bwd ? d : bwd;
        t = cpu_seconds();
        k_sgemm(0, 0, M, K, N, 1, y, N, wf, K, 1, dx, K);
        d = cpu_seconds() - t;
        if (rep) bwd32 = d < bwd32 ? d : bwd32;
    }
    printf("{\"path\": \"bwd-dx bf16-%s vs fp32\", \"ms\": %.2f, \"fp32_ms\": %.2f, \"vs_fp32\": %.2f}\n", k_bf16_path_name(k_bf16_path()), bwd * 1e3, bwd32 * 1e3,
           bwd32 / bwd);
    free(x), free(y), free(wf), free(w), free(dx);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *mk = NULL, *out = NULL;
    int in_place = 1, tokens = 512, r = 16, gemm = 0, M = 512, N = 1024, K = 1024;
    flag flags[] = {
        {"model", FLAG_STR, &dir, ""}, {"in-place", FLAG_INT, &in_place, ""}, {"tokens", FLAG_INT, &tokens, ""},
        {"lora-r", FLAG_INT, &r, ""}, {"make", FLAG_STR, &mk, ""}, {"out", FLAG_STR, &out, ""},
        {"gemm", FLAG_INT, &gemm, ""}, {"m", FLAG_INT, &M, ""}, {"n", FLAG_INT, &N, ""}, {"k", FLAG_INT, &K, ""},
    };
    if (flags_parse("lora_bf16_mem", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL)) return 2;
    if (mk) return out ? make(mk, out) : 2;
    if (gemm) return gemm_bench(M, N, K);
    if (!dir) return 2;
    tm_error err = {0};
    model m;
    lora_config lc;
    lora_config_default(&lc);
    lc.r = r;
    lora_parse_targets(&lc, "all-linear", &err);
    if ((in_place ? model_load_frozen(&m, dir, &err) : model_load(&m, dir, &err)) || model_lora_attach(&m, &lc, 1, &err) ||
        model_enable_grad(&m, &err) || model_reserve(&m, tokens, &err)) {
        fprintf(stderr, "lora_bf16_mem: %s\n", err.msg);
        return 1;
    }
    // AdamW's two moments for the trainable (adapter) parameters, touched as the optimizer would
    float *mom = calloc(2 * m.gnumel, sizeof(float));
    if (!mom) return 1;
    memset(mom, 0, 2 * m.gnumel * sizeof(float));
    double load_peak = vm_hwm_mib();
    int per = tokens / 4;
    int *ids = malloc(sizeof(int) * per);
    rng g;
    rng_seed(&g, 3);
    batch_builder bb;
    batch_init(&bb, tokens, 4, &err);
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < per; i++) ids[i] = (int)rng_below(&g, (uint64_t)m.cfg.vocab);
        batch_add(&bb, ids, NULL, per);
    }
    model_batch b = batch_view(&bb);
    float *lp = malloc(sizeof(float) * tokens), *dl = malloc(sizeof(float) * tokens);
    for (int i = 0; i < tokens; i++) dl[i] = 1e-3f;
    double t = now_seconds();
    model_lora_enable(&m, 0);
    int rc = model_forward(&m, &b, lp, NULL, &err);  // the reference: the base
    model_lora_enable(&m, 1);
    rc = rc || model_forward(&m, &b, lp, NULL, &err);
    if (!rc) model_backward(&m, &b, dl, NULL);
    double ms = (now_seconds() - t) * 1e3;
    if (rc) return fprintf(stderr, "lora_bf16_mem: %s\n", err.msg), 1;
    struct stat st;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    double file = stat(path, &st) ? -1 : st.st_size / 1048576.0;
    size_t adapters = 0;
    for (int i = 0; i < m.nparams; i++) adapters += m.params[i].adapter ? m.params[i].numel : 0;
    printf("{\"in_place\": %d, \"weights_in_place\": %d, \"file_mib\": %.1f, \"load_peak_mib\": %.1f, \"peak_mib\": %.1f, \"model_bytes_mib\": %.1f, "
           "\"adapter_mib\": %.1f, \"tokens\": %d, \"ms_step\": %.0f, \"threads\": %d, \"bf16_path\": \"%s\"}\n",
           in_place, m.nbf16, file, load_peak, vm_hwm_mib(), (double)model_bytes(&m) / 1048576.0, adapters * 16.0 / 1048576.0, tokens, ms,
           omp_get_max_threads(), k_bf16_path_name(k_bf16_path()));
    return 0;
}
