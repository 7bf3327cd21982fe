// perturb bench: images per second of each Vision Matters perturbation, in memory
// (decoded images in, perturbed images out; the per-example draws included, the PNG
// decoding and encoding not), one thread. bench/perturb_ref.py times the repo's
// Python (OpenCV / Pillow / PyTorch) on the same images; bench/bench_perturb.sh prints
// both side by side.
//   build/bench/perturb --dir D [--n 16] [--width 448] [--height 336] [--seconds 1]
// Times are CPU time of this process (one thread), steadier than wall time on a shared machine.
// writes the n test images to D (for the reference) and prints one line per op:
//   <op> <images/s>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "base/io.h"
#include "cli/flags.h"
#include "image/perturb.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int n = 16, w = 448, h = 336;
    double seconds = 1;
    flag fl[] = {
        {"dir", FLAG_STR, &dir, "folder for the test images"},
        {"n", FLAG_INT, &n, "images"},
        {"width", FLAG_INT, &w, "image width"},
        {"height", FLAG_INT, &h, "image height"},
        {"seconds", FLAG_FLOAT, &seconds, "time per op"},
    };
    if (flags_parse("perturb", "--dir D", fl, 5, argc, argv, NULL, NULL) || !dir || n < 2) return 2;
    tm_error err;
    if (io_mkdirs(dir, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    img_rgb *ims = calloc((size_t)n, sizeof *ims);
    rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < n; i++) {
        // Sizes vary a little (concat resizes the partner's height), content is gradients + noise.
        int wi = w - (i % 4) * 8, hi = h - (i % 3) * 8;
        if (img_alloc(&ims[i], wi, hi, 0, 0, 0, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        for (int y = 0; y < hi; y++)
            for (int x = 0; x < wi; x++) {
                uint8_t *p = ims[i].px + ((size_t)y * wi + x) * 3;
                p[0] = (uint8_t)(x * 255 / wi), p[1] = (uint8_t)(y * 255 / hi), p[2] = (uint8_t)rng_below(&r, 256);
            }
        char path[4200];
        snprintf(path, sizeof path, "%s/im%02d.png", dir, i);
        if (img_save(&ims[i], path, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    }
    img_perturb_opts o;
    img_perturb_defaults(&o);
    for (int op = 0; op < 6; op++) {
        long done = 0;
        double t0 = now_seconds(), t;
        do {
            for (int i = 0; i < n; i++, done++) {
                rng er;
                img_example_rng(&er, 7, (uint64_t)done);
                img_draw d;
                img_rgb out;
                if (img_perturb_draw(&d, (img_op)op, &o, &er, i, n, &ims[i], &err) ||
                    img_perturb_apply(&out, &ims[i], d.partner >= 0 ? &ims[d.partner] : NULL, &d, &o, &err))
                    return fprintf(stderr, "%s\n", err.msg), 1;
                img_draw_free(&d);
                img_free(&out);
            }
            t = now_seconds();
        } while (t - t0 < seconds);
        printf("%s %.1f\n", img_op_name((img_op)op), done / (t - t0));
    }
    for (int i = 0; i < n; i++) img_free(&ims[i]);
    free(ims);
    return 0;
}
