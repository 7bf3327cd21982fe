// cli/demo_report: the demo's table (report.md, report.html, stdout) from the eval
// summaries, and one metrics.jsonl over all stages for `temper plot`.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "cli/demo.h"
#include "rollout/metrics.h"

void demo_wilson(double p, int n, double *lo, double *hi) {
    if (n <= 0) { *lo = 0, *hi = 1; return; }
    const double z = 1.959964, z2 = z * z;
    double den = 1 + z2 / n, mid = (p + z2 / (2.0 * n)) / den;
    double half = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / den;
    *lo = fmax(0, mid - half), *hi = fmin(1, mid + half);
}

int demo_read_summary(const char *path, demo_row *r, int k) {
    tm_error err;
    json_doc *d = json_parse_file(path, &err);
    if (!d) { fprintf(stderr, "temper demo: %s: %s\n", path, err.msg); return -1; }
    json *j = json_root(d);
    int graded = (int)json_get_int(j, "graded_problems", 0);
    if (k <= 1) {
        r->problems = graded;
        r->pass1 = json_get_num(j, "pass@1", NAN);
        json *bl = json_get(j, "by_level");
        r->nlevels = 0;
        for (int i = 0; bl && bl->type == JSON_OBJECT && i < bl->n && r->nlevels < DEMO_MAX_LEVELS; i++) {
            int li = r->nlevels++;
            r->level[li] = atoi(bl->keys[i]);
            r->level_n[li] = (int)json_get_int(&bl->items[i], "problems", 0);
            r->level_pass1[li] = json_get_num(&bl->items[i], "pass@1", NAN);
        }
    } else {
        char pk[32], mk[32];
        snprintf(pk, sizeof pk, "pass@%d", k);
        snprintf(mk, sizeof mk, "maj@%d", k);
        r->has_k = 1, r->k = k, r->k_problems = graded;
        r->passk = json_get_num(j, pk, NAN);
        r->majk = json_get_num(j, mk, NAN);
    }
    json_doc_free(d);
    if (isnan(k <= 1 ? r->pass1 : r->passk)) { fprintf(stderr, "temper demo: %s: no pass@%d\n", path, k); return -1; }
    return 0;
}

int demo_read_correct(const char *samples_path, signed char **correct, int *n) {
    *correct = NULL, *n = 0;
    tm_error err;
    io_lines in;
    if (io_lines_open(&in, samples_path, &err)) { fprintf(stderr, "temper demo: %s\n", err.msg); return -1; }
    signed char *c = NULL;
    int cap = 0, rc = 0, lineno = 0;
    char *line;
    long len;
    while ((len = io_lines_next(&in, &line)) >= 0) {
        lineno++;
        if (!len) continue;
        json_doc *d = json_parse(line, (size_t)len, &err);
        if (!d) { fprintf(stderr, "temper demo: %s:%d: %s\n", samples_path, lineno, err.msg); rc = -1; break; }
        json *j = json_root(d);
        int64_t idx = json_get_int(j, "index", -1), smp = json_get_int(j, "sample", 0);
        json *cj = json_get(j, "correct");
        int ok = idx >= 0 && idx < (1 << 24) && cj && cj->type == JSON_BOOL;
        if (ok && smp == 0) {
            if (idx >= cap) {
                int nc = cap ? cap : 256;
                while (nc <= idx) nc *= 2;
                signed char *g = realloc(c, (size_t)nc);
                if (!g) { json_doc_free(d); fprintf(stderr, "temper demo: out of memory\n"); rc = -1; break; }
                memset(g + cap, -1, (size_t)(nc - cap));
                c = g, cap = nc;
            }
            c[idx] = (signed char)(cj->boolean != 0);
            if ((int)idx + 1 > *n) *n = (int)idx + 1;
        }
        json_doc_free(d);
        if (!ok) { fprintf(stderr, "temper demo: %s:%d: need an \"index\" and a boolean \"correct\"\n", samples_path, lineno); rc = -1; break; }
    }
    io_lines_close(&in);
    if (rc) { free(c); *n = 0; return -1; }
    *correct = c;
    return 0;
}

int demo_paired_gain(const signed char *c1, int n1, const signed char *c2, int n2, double *gain, double *lo, double *hi) {
    int t[2][2] = {{0, 0}, {0, 0}}, n = 0;  // t[model 1 right][model 2 right]
    for (int i = 0; i < n1 && i < n2; i++)
        if (c1[i] >= 0 && c2[i] >= 0) t[c1[i]][c2[i]]++, n++;
    if (!n) { *gain = *lo = *hi = NAN; return 0; }
    *gain = (double)(t[0][1] - t[1][0]) / n;
    paired_gain_interval(t[1][1], t[1][0], t[0][1], t[0][0], 1.959963984540054, lo, hi);
    return n;
}

// The gain of each "SFT + method" row over its baseline: the nearest row above it that is
// an SFT model itself ("SFT (curriculum...)", "SFT, python tool") graded on the same test
// file with the same tool (the python rows have their own test set). NAN where none.
typedef struct gain_col { double g[DEMO_MAX_ROWS], lo[DEMO_MAX_ROWS], hi[DEMO_MAX_ROWS]; int any; } gain_col;

static int is_baseline(const demo_row *r) { return !strncmp(r->stage, "SFT", 3) && strncmp(r->stage, "SFT +", 5) && r->samples[0]; }

static int gains(const demo_row *rows, int nrows, gain_col *gc) {
    memset(gc, 0, sizeof *gc);
    for (int i = 0; i < DEMO_MAX_ROWS; i++) gc->g[i] = gc->lo[i] = gc->hi[i] = NAN;
    for (int i = 0; i < nrows; i++) {
        if (strncmp(rows[i].stage, "SFT +", 5) || !rows[i].samples[0]) continue;
        int base = -1;
        for (int j = i - 1; j >= 0 && base < 0; j--)
            if (is_baseline(&rows[j]) && !strcmp(rows[j].test, rows[i].test)) base = j;
        if (base < 0) continue;
        signed char *cb, *ci;
        int nb, ni;
        if (demo_read_correct(rows[base].samples, &cb, &nb)) return -1;
        if (demo_read_correct(rows[i].samples, &ci, &ni)) { free(cb); return -1; }
        if (demo_paired_gain(cb, nb, ci, ni, &gc->g[i], &gc->lo[i], &gc->hi[i])) gc->any = 1;
        free(cb), free(ci);
    }
    return 0;
}

// "0.186 [0.154, 0.222]"
static void cell(sbuf *b, double p, int n) {
    double lo, hi;
    if (isnan(p)) { sbuf_puts(b, "-"); return; }
    demo_wilson(p, n, &lo, &hi);
    sbuf_printf(b, "%.3f [%.3f, %.3f]", p, lo, hi);
}

static int all_levels(const demo_row *rows, int nrows, int *lv) {
    int n = 0;
    for (int i = 0; i < nrows; i++)
        for (int l = 0; l < rows[i].nlevels; l++) {
            int seen = 0;
            for (int j = 0; j < n; j++) seen |= lv[j] == rows[i].level[l];
            if (!seen && n < DEMO_MAX_LEVELS) lv[n++] = rows[i].level[l];
        }
    return n;
}

static double level_p(const demo_row *r, int level, int *n) {
    for (int l = 0; l < r->nlevels; l++)
        if (r->level[l] == level) { *n = r->level_n[l]; return r->level_pass1[l]; }
    *n = 0;
    return NAN;
}

// The table as Markdown (html = 0) or an HTML <table> (html = 1).
static void table(sbuf *b, const demo_row *rows, int nrows, const gain_col *gc, int html) {
    int lv[DEMO_MAX_LEVELS], nl = all_levels(rows, nrows, lv);
    int kk = 0;
    for (int i = 0; i < nrows; i++) if (rows[i].has_k) kk = rows[i].k;
    const char *c0 = html ? "<tr><th>" : "| ", *cs = html ? "</th><th>" : " | ", *ce = html ? "</th></tr>\n" : " |\n";
    sbuf_puts(b, html ? "<table id=\"results\">\n<thead>" : "");
    sbuf_printf(b, "%sstage%spass@1 (greedy) [95%% CI]%sproblems", c0, cs, cs);
    if (gc->any) sbuf_printf(b, "%sgain vs SFT [95%% CI, paired]%sgain excludes 0", cs, cs);
    for (int l = 0; l < nl; l++) sbuf_printf(b, "%sL%d", cs, lv[l]);
    if (kk) sbuf_printf(b, "%spass@%d%smaj@%d", cs, kk, cs, kk);
    sbuf_printf(b, "%swall s%s", cs, ce);
    if (html) sbuf_puts(b, "</thead>\n<tbody>\n");
    else {
        sbuf_puts(b, "|---|---|---|");
        if (gc->any) sbuf_puts(b, "---|---|");
        for (int l = 0; l < nl; l++) sbuf_puts(b, "---|");
        if (kk) sbuf_puts(b, "---|---|");
        sbuf_puts(b, "---|\n");
    }
    const char *d0 = html ? "<tr><td>" : "| ", *ds = html ? "</td><td>" : " | ", *de = html ? "</td></tr>\n" : " |\n";
    for (int i = 0; i < nrows; i++) {
        const demo_row *r = &rows[i];
        sbuf_printf(b, "%s%s%s", d0, r->stage, ds);
        cell(b, r->pass1, r->problems);
        sbuf_printf(b, "%s%d", ds, r->problems);
        if (gc->any) {
            if (isnan(gc->g[i])) sbuf_printf(b, "%s-%s-", ds, ds);
            else sbuf_printf(b, "%s%+.3f [%+.3f, %+.3f]%s%s", ds, gc->g[i], gc->lo[i], gc->hi[i], ds,
                             gc->lo[i] > 0 ? "yes: a gain" : gc->hi[i] < 0 ? "yes: a loss" : "no");
        }
        for (int l = 0; l < nl; l++) {
            int n;
            double p = level_p(r, lv[l], &n);
            sbuf_puts(b, ds);
            if (isnan(p)) sbuf_puts(b, "-");
            else sbuf_printf(b, "%.2f", p);
        }
        if (kk) {
            sbuf_puts(b, ds);
            if (r->has_k) cell(b, r->passk, r->k_problems); else sbuf_puts(b, "-");
            sbuf_puts(b, ds);
            if (r->has_k) cell(b, r->majk, r->k_problems); else sbuf_puts(b, "-");
        }
        sbuf_printf(b, "%s%.0f%s", ds, r->seconds, de);
    }
    if (html) sbuf_puts(b, "</tbody>\n</table>\n");
}

int demo_write_report(const char *out, const demo_row *rows, int nrows, const char *command, const char *notes) {
    tm_error err;
    char path[4096];
    gain_col gc;
    if (gains(rows, nrows, &gc)) return -1;
    static const char paired[] = "Gain vs SFT: the stage's greedy pass@1 minus SFT's on the same problems, with "
                                 "Newcombe's paired 95% interval (the two models graded problem by problem); "
                                 "\"excludes 0\" says whether the change is more than chance at that level.";
    sbuf md;
    sbuf_init(&md);
    sbuf_printf(&md, "# temper demo: results\n\nHeld-out test split, greedy pass@1 with Wilson 95%% intervals "
                     "(L1..L5: pass@1 per difficulty level).%s%s\n\nProduced by `%s`.\n\n", gc.any ? " " : "", gc.any ? paired : "", command);
    table(&md, rows, nrows, &gc, 0);
    if (notes && *notes) sbuf_printf(&md, "\n%s\n", notes);
    sbuf_puts(&md, "\nCurves (loss, reward, accuracy over the steps of every stage): curves.svg\n");
    int rc = sbuf_check(&md, &err) || io_write_file_atomic(io_join(path, sizeof path, out, "report.md"), md.data, md.len, &err);
    if (!rc) fputs(md.data, stdout);
    sbuf_free(&md);
    if (rc) { fprintf(stderr, "temper demo: %s\n", err.msg); return -1; }

    sbuf h;
    sbuf_init(&h);
    sbuf_printf(&h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>temper demo</title>\n"
                    "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
                    "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style>\n"
                    "</head><body>\n<h1>temper demo</h1>\n<p>Held-out test split, greedy pass@1 with Wilson 95%% intervals.%s%s "
                    "Produced by <code>%s</code>.</p>\n", gc.any ? " " : "", gc.any ? paired : "", command);
    table(&h, rows, nrows, &gc, 1);
    if (notes && *notes) {
        sbuf_puts(&h, "<p>");
        for (const char *c = notes; *c; c++) {
            if (*c == '<') sbuf_puts(&h, "&lt;");
            else if (*c == '>') sbuf_puts(&h, "&gt;");
            else if (*c == '&') sbuf_puts(&h, "&amp;");
            else if (*c == '\n') sbuf_puts(&h, "<br>\n");
            else sbuf_put(&h, c, 1);
        }
        sbuf_puts(&h, "</p>\n");
    }
    sbuf_puts(&h, "<h2>Curves</h2>\n");
    size_t len;
    char *svg = io_read_file(io_join(path, sizeof path, out, "curves.svg"), &len, &err);
    if (svg) {
        sbuf_put(&h, svg, len);
        free(svg);
    } else {
        sbuf_puts(&h, "<p>(no curves.svg)</p>\n");
    }
    sbuf_puts(&h, "</body></html>\n");
    rc = sbuf_check(&h, &err) || io_write_file_atomic(io_join(path, sizeof path, out, "report.html"), h.data, h.len, &err);
    sbuf_free(&h);
    if (rc) { fprintf(stderr, "temper demo: %s\n", err.msg); return -1; }
    return 0;
}

int demo_append_metrics(const char *out, const char *stage_dir, const char *stage, double *offset) {
    char src[4096], dst[4096];
    io_join(src, sizeof src, stage_dir, "metrics.jsonl");
    io_join(dst, sizeof dst, out, "metrics.jsonl");
    if (!io_exists(src)) return 0;
    tm_error err;
    io_lines in;
    if (io_lines_open(&in, src, &err)) { fprintf(stderr, "temper demo: %s\n", err.msg); return -1; }
    FILE *f = fopen(dst, "a");
    if (!f) { io_lines_close(&in); fprintf(stderr, "temper demo: %s: cannot append\n", dst); return -1; }
    char *line;
    long len;
    double last = 0;
    while ((len = io_lines_next(&in, &line)) >= 0) {
        json_doc *d = len ? json_parse(line, (size_t)len, &err) : NULL;
        if (!d) continue;
        json *r = json_root(d);
        double step = json_get_num(r, "step", NAN);
        if (r->type == JSON_OBJECT && !isnan(step)) {
            last = fmax(last, step);
            sbuf b;
            sbuf_init(&b);
            sbuf_printf(&b, "{\"step\": %.0f, \"stage\": ", *offset + step);
            sbuf_json_str(&b, stage, strlen(stage));
            for (int i = 0; i < r->n; i++) {
                if (!strcmp(r->keys[i], "step") || r->items[i].type != JSON_NUMBER) continue;
                sbuf_puts(&b, ", ");
                sbuf_json_str(&b, r->keys[i], r->key_lens[i]);
                sbuf_puts(&b, ": ");
                sbuf_json_value(&b, &r->items[i]);
            }
            sbuf_puts(&b, "}\n");
            if (b.data) fputs(b.data, f);
            sbuf_free(&b);
        }
        json_doc_free(d);
    }
    io_lines_close(&in);
    int bad = fclose(f);
    *offset += last;
    if (bad) { fprintf(stderr, "temper demo: %s: write failed\n", dst); return -1; }
    return 0;
}
