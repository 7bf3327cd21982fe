// temper plot RUN_DIR | METRICS.jsonl: draws a run's metrics.jsonl (one JSON object per
// line with "step") as an SVG next to it,
// one panel per metric, step on the x axis.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "cli/cli.h"
#include "data/data.h"
#include "cli/flags.h"

#define MAX_KEYS 8

typedef struct series {
    char key[64];
    double *x, *y;
    int n, cap;
} series;

static int push(series *s, double x, double y) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        double *nx = realloc(s->x, sizeof(double) * (size_t)cap);
        if (nx) s->x = nx;
        double *ny = nx ? realloc(s->y, sizeof(double) * (size_t)cap) : NULL;
        if (ny) s->y = ny;
        if (!nx || !ny) return -1;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return 0;
}

int cmd_plot(int argc, char **argv) {
    const char *out = NULL, *keys = "loss,eval_loss";
    char *pos[1];
    int npos = 1;
    flag flags[] = {
        {"out", FLAG_STR, &out, "output SVG (default: next to the metrics file, metrics.svg)"},
        {"keys", FLAG_STR, &keys, "comma-separated metric names"},
    };
    int rc = flags_parse("plot", "RUN_DIR|METRICS.jsonl [--keys loss,rewards/accuracies] [--out F.svg]", flags, 2, argc, argv, pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (npos != 1) return cli_fail("plot", "give one run directory or metrics.jsonl file");
    char run_file[4096];
    if (io_is_dir(pos[0])) pos[0] = io_join(run_file, sizeof run_file, pos[0], "metrics.jsonl");  // a run directory
    series s[MAX_KEYS] = {0};
    int nk = 0;
    char kbuf[512], *save;
    snprintf(kbuf, sizeof kbuf, "%s", keys);
    for (char *k = strtok_r(kbuf, ",", &save); k && nk < MAX_KEYS; k = strtok_r(NULL, ",", &save)) snprintf(s[nk++].key, 64, "%s", k);
    io_lines in;
    tm_error err;
    if (io_lines_open(&in, pos[0], &err)) return cli_fail("plot", "%s", err.msg);
    char *line;
    long len;
    while ((len = io_lines_next(&in, &line)) >= 0) {
        if (!len) continue;
        json_doc *d = data_parse_line(line, (size_t)len, &err);
        if (!d) {
            long lineno = in.lineno;  // io_lines_close clears it
            io_lines_close(&in);
            for (int k = 0; k < nk; k++) { free(s[k].x); free(s[k].y); }
            return cli_fail("plot", "%s:%ld: %s", pos[0], lineno, err.msg);
        }
        json *r = json_root(d);
        double step = json_get_num(r, "step", NAN);
        int oom = 0;
        for (int k = 0; k < nk; k++) {
            json *v = json_get(r, s[k].key);
            if (v && v->type == JSON_NUMBER && isfinite(v->num) && isfinite(step)) oom |= push(&s[k], step, v->num);
        }
        json_doc_free(d);
        if (oom) {
            io_lines_close(&in);
            for (int k = 0; k < nk; k++) { free(s[k].x); free(s[k].y); }
            return cli_fail("plot", "out of memory");
        }
    }
    io_lines_close(&in);
    char def[4096];
    if (!out) {
        snprintf(def, sizeof def, "%s", pos[0]);
        char *dot = strrchr(def, '.');
        if (dot) *dot = 0;
        strncat(def, ".svg", sizeof def - strlen(def) - 1);
        out = def;
    }
    int shown = 0;
    for (int k = 0; k < nk; k++) shown += s[k].n > 0;
    if (!shown) return cli_fail("plot", "%s: none of the keys %s has a value", pos[0], keys);
    const int W = 640, H = 200, L = 60, R = 20, T = 30, B = 30;
    sbuf o;
    sbuf_init(&o);
    sbuf_printf(&o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n"
                    "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H * shown);
    int panel = 0;
    for (int k = 0; k < nk; k++) {
        if (!s[k].n) continue;
        double x0 = s[k].x[0], x1 = x0, y0 = s[k].y[0], y1 = y0;
        for (int i = 0; i < s[k].n; i++) {
            x0 = fmin(x0, s[k].x[i]); x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, s[k].y[i]); y1 = fmax(y1, s[k].y[i]);
        }
        if (x1 == x0) x1 = x0 + 1;
        if (y1 == y0) { y1 += 0.5; y0 -= 0.5; }
        int top = panel * H;
        sbuf_printf(&o, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", L, top + 18, s[k].key);
        sbuf_printf(&o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", L, top + T, W - L - R, H - T - B);
        sbuf_printf(&o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.4g</text>\n", L - 4, top + T + 10, y1);
        sbuf_printf(&o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.4g</text>\n", L - 4, top + H - B, y0);
        sbuf_printf(&o, "<text x=\"%d\" y=\"%d\">step %.0f</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.0f</text>\n", L,
                    top + H - B + 14, x0, W - R, top + H - B + 14, x1);
        sbuf_puts(&o, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
        for (int i = 0; i < s[k].n; i++) {
            double px = L + (s[k].x[i] - x0) / (x1 - x0) * (W - L - R);
            double py = top + T + (1 - (s[k].y[i] - y0) / (y1 - y0)) * (H - T - B);
            sbuf_printf(&o, "%.1f,%.1f ", px, py);
        }
        sbuf_puts(&o, "\"/>\n");
        panel++;
    }
    sbuf_puts(&o, "</svg>\n");
    rc = io_write_file_atomic(out, o.data, o.len, &err);
    sbuf_free(&o);
    for (int k = 0; k < nk; k++) { free(s[k].x); free(s[k].y); }
    if (rc) return cli_fail("plot", "%s", err.msg);
    if (!flags_quiet) fprintf(stderr, "temper plot: %s\n", out);
    return 0;
}
