// bench/vl_step: temper's side of the vl_forward_backward line (bench/bench_vl.sh). Times the
// Qwen2.5-VL forward (vision tower, image embeddings, M-RoPE, language model, fused lm-head)
// and backward of the mean NLL of the text, for one sequence holding one image of --image
// pixels square (random pixel_values; (image/14)^2 patches, a quarter as many image tokens)
// between --text/3 and 2*--text/3 text tokens. Prints one JSON line like
// bench/torch_vl_step.py: {"ms_per_step", "cpu_ms_per_step", "peak_mib", "patches", "tokens", "isa"}.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include "base/progress.h"
#include "base/rng.h"
#include "cli/flags.h"
#include "cli/omp_wait.h"
#include "isa.h"
#include "model/batch.h"
#include "model/model.h"
#include "objectives/sft.h"

// CPU time of the process (all threads): the machine may be shared, so wall time alone misleads.
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    omp_wait_default(argv);
    const char *dir = NULL;
    int image = 448, text = 64, steps = 3, warmup = 1;
    flag flags[] = {
        {"model", FLAG_STR, &dir, ""}, {"image", FLAG_INT, &image, "side in pixels (multiple of 28)"},
        {"text", FLAG_INT, &text, "text tokens"}, {"steps", FLAG_INT, &steps, ""}, {"warmup", FLAG_INT, &warmup, ""},
    };
    int rc = flags_parse("vl_step", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    tm_error err;
    model m;
    if (!dir || model_load(&m, dir, &err) || model_enable_grad(&m, &err)) {
        fprintf(stderr, "vl_step: %s\n", dir ? err.msg : "--model is required");
        return 1;
    }
    const int g = image / 14, np = g * g, ni = np / 4, P = 3 * 2 * 14 * 14, T = text + ni + 2, pre = text / 3;
    int *ids = malloc(sizeof(int) * T), grid[3] = {1, g, g};
    uint8_t *trained = malloc(T);
    float *pix = malloc(sizeof(float) * (size_t)np * P), *lp = malloc(sizeof(float) * T), *dlp = malloc(sizeof(float) * T);
    rng r;
    rng_seed(&r, 1);
    for (long i = 0; i < (long)np * P; i++) pix[i] = rng_normal(&r);
    for (int i = 0; i < T; i++) {
        ids[i] = i < pre ? 100 + i : i == pre ? m.cfg.vision_start_token_id : i <= pre + ni ? m.cfg.image_token_id
                 : i == pre + ni + 1 ? m.cfg.vision_end_token_id : 200 + i;
        trained[i] = i > 0 && ids[i] != m.cfg.image_token_id;
    }
    batch_builder bb;
    if (batch_init(&bb, T, 1, &err) || batch_add(&bb, ids, trained, T) < 0) return 1;
    model_batch b = batch_view(&bb);
    b.n_images = 1, b.pixel_values = pix, b.image_grid_thw = grid;
    int nt = 0;
    for (int i = 0; i < T; i++) nt += b.targets[i] >= 0;
    double total = 0, cpu = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now_seconds(), c0 = cpu_seconds();
        if (model_forward(&m, &b, lp, NULL, &err)) { fprintf(stderr, "vl_step: %s\n", err.msg); return 1; }
        sft_nll(lp, b.targets, T, nt, dlp);
        model_backward(&m, &b, dlp, NULL);
        if (s >= warmup) total += now_seconds() - t0, cpu += cpu_seconds() - c0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"ms_per_step\": %.1f, \"cpu_ms_per_step\": %.1f, \"peak_mib\": %.1f, \"patches\": %d, \"tokens\": %d, \"threads\": %d, \"isa\": \"%s\"}\n",
           1e3 * total / steps, 1e3 * cpu / steps, ru.ru_maxrss / 1024.0, np, T, omp_get_max_threads(), BENCH_ISA);
    batch_free(&bb);
    model_free(&m);
    free(ids), free(trained), free(pix), free(lp), free(dlp);
    return 0;
}
