// cli/demo: `temper demo`, issue 18's pipeline. The demo is a script of the public
// commands: each stage calls a cmd_* entry point (the function `temper <command>` runs)
// with an argv array, in this process, so the demo has no training or sampling code of
// its own. demo_report.c turns the eval summaries and the stages' metrics.jsonl into
// report.md, curves.svg (through cmd_plot) and report.html.
#pragma once

#define DEMO_MAX_ROWS 16
#define DEMO_MAX_LEVELS 8

// One row of the results table: a model evaluated on the held-out test split.
typedef struct demo_row {
    char stage[64];       // "SFT (curriculum, 2 stages)"
    char model[4096];      // model directory
    char cmd[256];        // the command that trained it, short
    int problems;         // graded problems of the greedy eval
    double pass1;         // greedy pass@1
    int nlevels;
    int level[DEMO_MAX_LEVELS], level_n[DEMO_MAX_LEVELS];
    double level_pass1[DEMO_MAX_LEVELS];
    int has_k;            // pass@k / maj@k measured (sampled eval)
    int k, k_problems;
    double passk, majk;
    double seconds;       // wall seconds of the stage that trained it
    char samples[4096];   // the greedy eval's samples.jsonl (per-problem "correct"), for the paired gain
    char test[256];       // the test file and tool it was graded with: a gain pairs only rows alike
} demo_row;

// Wilson's 95% interval of a proportion p over n trials.
void demo_wilson(double p, int n, double *lo, double *hi);
// Reads an eval summary.json into the row's numbers (greedy: pass@1 and by_level;
// sampled, k > 1: pass@k and maj@k). Returns -1 with a line on stderr.
int demo_read_summary(const char *path, demo_row *r, int k);
// The per-problem greedy results of an eval's samples.jsonl: (*correct)[index] is 1 or 0
// (sample 0), -1 where the file has no row; *n = 1 + the largest index. Returns -1 with a
// line on stderr.
int demo_read_correct(const char *samples_path, signed char **correct, int *n);
// The gain of model 2 over model 1 on the problems both graded: the 2x2 counts, the gain
// and its paired 95% interval. Returns the number of problems paired (0: none).
int demo_paired_gain(const signed char *c1, int n1, const signed char *c2, int n2, double *gain, double *lo, double *hi);
// Writes report.md and report.html under out, and prints the table. Returns -1 on error.
// Every "SFT + method" row gets its gain over the SFT baseline row graded on the same
// test (the nearest row above it whose stage starts with "SFT" but not "SFT +", with the
// same `test`) with a paired 95% interval (paired_gain_interval: both greedy evals' per-problem
// results from their samples.jsonl, on the same problems) and whether it excludes 0.
int demo_write_report(const char *out, const demo_row *rows, int nrows, const char *command, const char *notes);
// Appends a stage's metrics.jsonl to out/metrics.jsonl with the step shifted by *offset
// and "stage" added; *offset grows by the stage's last step. Missing file: no-op.
int demo_append_metrics(const char *out, const char *stage_dir, const char *stage, double *offset);
