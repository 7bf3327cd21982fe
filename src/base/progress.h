// base/progress: a one-line progress bar on stderr with rate and ETA.
// Redraws at most ~10 times a second; prints a final line on finish.
// When stderr is not a terminal it prints a plain line every few seconds instead.
#pragma once
#include <stdint.h>

typedef struct progress {
    const char *label;
    const char *unit;    // "it", "tok", "samples" …
    int64_t total;       // 0 when unknown
    int64_t done;
    double t_start, t_last_draw;
    int tty;
    char extra[160];     // free text shown after the rate, e.g. "loss 2.31"
} progress;

void progress_start(progress *p, const char *label, int64_t total, const char *unit);
void progress_update(progress *p, int64_t done);
void progress_set_extra(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_finish(progress *p);
// Silences every progress bar of the process (`--quiet`); set before work starts.
void progress_set_quiet(int quiet);
// Monotonic wall clock in seconds.
double now_seconds(void);
