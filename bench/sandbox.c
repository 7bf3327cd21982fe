// sandbox bench: latency of a trivial call to a warm python sandbox (tools/python).
// Prints "sandbox: <calls/s>, p50 <ms>, p99 <ms>" and a detail line.
//   build/bench/sandbox [--calls 500] [--warmup 20] [--mode auto|bwrap|unshare]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/progress.h"
#include "cli/flags.h"
#include "tools/python.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int calls = 500, warmup = 20;
    const char *mode = NULL, *code = "x = 1 + 1\nx";
    flag fl[] = {
        {"calls", FLAG_INT, &calls, "timed calls"},
        {"warmup", FLAG_INT, &warmup, "untimed calls first (the interpreter warms up)"},
        {"mode", FLAG_STR, &mode, "auto, bwrap or unshare"},
        {"code", FLAG_STR, &code, "the code of each call"},
    };
    char *pos[1];
    int npos = 0;
    int fr = flags_parse("sandbox", "[--calls N] [--warmup N] [--mode M]", fl, 4, argc, argv, pos, &npos);
    if (fr) return fr == 1 ? 0 : 2;
    if (calls < 1) calls = 1;
    pysb_opts o;
    pysb_opts_default(&o);
    o.mode = mode;
    tm_error err;
    double t_open = now_seconds();
    pysb *sb = pysb_open(&o, &err);
    if (!sb) { fprintf(stderr, "sandbox: %s\n", err.msg); return 1; }
    double first = 0;
    for (int i = 0; i < warmup; i++) {
        pysb_result r;
        double a = now_seconds();
        if (pysb_run(sb, code, &r, &err)) { fprintf(stderr, "sandbox: %s\n", err.msg); return 1; }
        if (i == 0) first = now_seconds() - a;
        pysb_result_free(&r);
    }
    double open_s = now_seconds() - t_open;
    double *lat = malloc((size_t)calls * sizeof *lat);
    int bad = 0;
    double t0 = now_seconds();
    for (int i = 0; i < calls; i++) {
        pysb_result r;
        double a = now_seconds();
        if (pysb_run(sb, code, &r, &err)) { fprintf(stderr, "sandbox: %s\n", err.msg); return 1; }
        lat[i] = now_seconds() - a;
        if (r.status != PYSB_OK || strcmp(r.output, "2\n")) bad++;
        pysb_result_free(&r);
    }
    double t = now_seconds() - t0;
    qsort(lat, (size_t)calls, sizeof *lat, cmp_double);
    printf("sandbox: %.0f calls/s, p50 %.2f ms, p99 %.2f ms\n", calls / t, lat[calls / 2] * 1e3,
           lat[(calls * 99) / 100] * 1e3);
    printf("  mode %s, %d calls of %zu bytes after %d warm-up calls (open + warm-up %.2f s, first call %.1f ms), %d wrong outputs\n",
           pysb_mode(sb), calls, strlen(code), warmup, open_s, first * 1e3, bad);
    pysb_close(sb);
    free(lat);
    return bad != 0;
}
