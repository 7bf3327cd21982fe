#include "base/progress.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fmt_time(char *out, size_t cap, double s) {
    if (s < 0 || s != s || s > 1e7) { snprintf(out, cap, "?"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%02d:%02d", t / 60, t % 60);
}

// --quiet: a process-wide switch, set once by the command line before any work starts.
static int quiet_all;
void progress_set_quiet(int quiet) { quiet_all = quiet; }

static void draw(progress *p, int final) {
    if (quiet_all) return;
    double el = now_seconds() - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    fmt_time(elapsed, sizeof elapsed, el);
    fmt_time(eta, sizeof eta, rate > 0 && p->total ? (double)(p->total - p->done) / rate : -1);
    char bar[32] = "";
    if (p->total > 0) {
        int w = 20, fill = (int)((double)p->done / (double)p->total * w);
        if (fill > w) fill = w;
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
    }
    if (p->total > 0)
        fprintf(stderr, "%s%s [%s] %lld/%lld %s, %.2f %s/s, %s elapsed, ETA %s%s%s%s",
                p->tty ? "\r\033[K" : "", p->label, bar, (long long)p->done, (long long)p->total, p->unit, rate,
                p->unit, elapsed, eta, p->extra[0] ? ", " : "", p->extra, (final || !p->tty) ? "\n" : "");
    else
        fprintf(stderr, "%s%s %lld %s, %.2f %s/s, %s elapsed%s%s%s", p->tty ? "\r\033[K" : "", p->label,
                (long long)p->done, p->unit, rate, p->unit, elapsed, p->extra[0] ? ", " : "", p->extra,
                (final || !p->tty) ? "\n" : "");
    fflush(stderr);
}

void progress_start(progress *p, const char *label, int64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit ? unit : "it";
    p->total = total;
    p->tty = isatty(2);
    p->t_start = p->t_last_draw = now_seconds();
}

void progress_update(progress *p, int64_t done) {
    p->done = done;
    double t = now_seconds();
    if (t - p->t_last_draw >= (p->tty ? 0.1 : 10.0)) {
        p->t_last_draw = t;
        draw(p, 0);
    }
}

void progress_set_extra(progress *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->extra, sizeof p->extra, fmt, ap);
    va_end(ap);
}

void progress_finish(progress *p) { draw(p, 1); }
