// image/visual_task: rendering and writing the visual task (see the header).
#include "image/visual_task.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "image/perturb.h"

typedef struct colour { const char *name; uint8_t rgb[3]; } colour;
static const colour palette[] = {
    {"red", {220, 40, 40}}, {"blue", {40, 80, 220}}, {"green", {40, 170, 60}},
    {"orange", {240, 150, 30}}, {"purple", {140, 60, 180}},
};
#define NPALETTE 5

static void put(img_rgb *im, int x, int y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(im->px + ((size_t)y * im->w + x) * 3, c, 3);
}

static void disc(img_rgb *im, double cx, double cy, double r, const uint8_t c[3]) {
    for (int y = (int)(cy - r) - 1; y <= (int)(cy + r) + 1; y++)
        for (int x = (int)(cx - r) - 1; x <= (int)(cx + r) + 1; x++)
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) put(im, x, y, c);
}

static void rect(img_rgb *im, int x0, int y0, int x1, int y1, const uint8_t c[3]) {
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) put(im, x, y, c);
}

// A segment of the given thickness: pixels within thick/2 of it.
static void segment(img_rgb *im, double x0, double y0, double x1, double y1, double thick, const uint8_t c[3]) {
    double dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy, h = thick / 2;
    int xa = (int)fmin(x0, x1) - (int)h - 1, xb = (int)fmax(x0, x1) + (int)h + 1;
    int ya = (int)fmin(y0, y1) - (int)h - 1, yb = (int)fmax(y0, y1) + (int)h + 1;
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            double t = l2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / l2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = x0 + t * dx - x, ey = y0 + t * dy - y;
            if (ex * ex + ey * ey <= h * h) put(im, x, y, c);
        }
}

static int pick(rng *r, int lo, int hi) { return lo + (int)rng_below(r, (uint64_t)(hi - lo + 1)); }

static void render_dots(img_rgb *im, visual_example *ex, rng *r) {
    int target = pick(r, 0, 2), counts[3];
    for (int k = 0; k < 3; k++) counts[k] = k == target ? pick(r, 1, 9) : pick(r, 0, 5);
    double xs[32], ys[32];
    int placed = 0;
    const double rad = 9, gap = 2 * rad + 6;
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < counts[k]; j++) {
            double x = 0, y = 0;
            for (int tries = 0; tries < 10000; tries++) {  // 23 dots at most: always room
                x = 16 + rng_double(r) * (VISUAL_SIZE - 32), y = 16 + rng_double(r) * (VISUAL_SIZE - 32);
                int ok = 1;
                for (int q = 0; q < placed && ok; q++) ok = (x - xs[q]) * (x - xs[q]) + (y - ys[q]) * (y - ys[q]) >= gap * gap;
                if (ok) break;
            }
            xs[placed] = x, ys[placed] = y, placed++;
            disc(im, x, y, rad, palette[k].rgb);
        }
    ex->kind = "dots";
    ex->answer = counts[target];
    snprintf(ex->prompt, sizeof ex->prompt, "How many %s dots are there in the image?", palette[target].name);
}

static void render_bars(img_rgb *im, visual_example *ex, rng *r) {
    static const uint8_t grid[3] = {200, 200, 200}, axis[3] = {0, 0, 0};
    const int base = 204, unit = 20, bw = 28;
    for (int j = 1; j <= 9; j++) rect(im, 12, base - unit * j, VISUAL_SIZE - 12, base - unit * j + 1, grid);
    int k = pick(r, 3, 5), order[NPALETTE] = {0, 1, 2, 3, 4};
    for (int i = NPALETTE - 1; i > 0; i--) {  // distinct colours: a shuffled palette
        int j = (int)rng_below(r, (uint64_t)i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    int heights[NPALETTE], step = (VISUAL_SIZE - 40) / k;
    for (int i = 0; i < k; i++) {
        heights[i] = pick(r, 1, 9);
        int x = 24 + i * step + (step - bw) / 2;
        rect(im, x, base - unit * heights[i], x + bw, base, palette[order[i]].rgb);
    }
    rect(im, 12, base, VISUAL_SIZE - 12, base + 2, axis);
    int q = pick(r, 0, k - 1);
    ex->kind = "bars";
    ex->answer = heights[q];
    snprintf(ex->prompt, sizeof ex->prompt,
             "In this bar chart each grey gridline marks one unit. How tall is the %s bar?", palette[order[q]].name);
}

static void render_clock(img_rgb *im, visual_example *ex, rng *r) {
    static const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255}, hand[3] = {180, 20, 20};
    const double c = VISUAL_SIZE / 2.0, R = 96;
    disc(im, c, c, R, black);
    disc(im, c, c, R - 4, white);
    for (int h = 0; h < 12; h++) {
        double a = h * M_PI / 6;
        segment(im, c + sin(a) * (R - 16), c - cos(a) * (R - 16), c + sin(a) * (R - 6), c - cos(a) * (R - 6), h % 3 ? 3 : 5, black);
    }
    int hour = pick(r, 1, 12);
    double a = hour * M_PI / 6;
    segment(im, c, c, c + sin(a) * (R - 26), c - cos(a) * (R - 26), 6, hand);
    disc(im, c, c, 5, black);
    ex->kind = "clock";
    ex->answer = hour;
    snprintf(ex->prompt, sizeof ex->prompt, "This clock has a single red hand. Which hour (1 to 12) does it point to?");
}

int visual_render(img_rgb *im, visual_example *ex, uint64_t seed, int i, tm_error *err) {
    if (img_alloc(im, VISUAL_SIZE, VISUAL_SIZE, 255, 255, 255, err)) return -1;
    rng r;
    img_example_rng(&r, seed, (uint64_t)i);
    switch (i % 3) {
    case 0: render_dots(im, ex, &r); break;
    case 1: render_bars(im, ex, &r); break;
    default: render_clock(im, ex, &r); break;
    }
    return 0;
}

int visual_task_write(const char *out, int n, uint64_t seed, char *jsonl_path, size_t cap, tm_error *err) {
    char dir[4200], p[4400], rel[64];
    snprintf(dir, sizeof dir, "%s/images", out);
    if (n < 1) return tm_fail(err, "--n must be at least 1 (got %d)", n);
    if (io_mkdirs(dir, err)) return -1;
    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < n; i++) {
        img_rgb im;
        visual_example ex;
        if (visual_render(&im, &ex, seed, i, err)) {
            sbuf_free(&b);
            return -1;
        }
        snprintf(rel, sizeof rel, "images/visual_%05d.png", i);
        snprintf(p, sizeof p, "%s/%s", out, rel);
        int rc = img_save(&im, p, err);
        img_free(&im);
        if (rc) {
            sbuf_free(&b);
            return -1;
        }
        sbuf_puts(&b, "{\"images\": [");
        sbuf_json_str(&b, rel, strlen(rel));
        sbuf_puts(&b, "], \"prompt\": ");
        sbuf_json_str(&b, ex.prompt, strlen(ex.prompt));
        sbuf_printf(&b, ", \"answer\": \"%d\", \"kind\": \"%s\"}\n", ex.answer, ex.kind);
    }
    snprintf(jsonl_path, cap, "%s/visual.jsonl", out);
    int rc = sbuf_check(&b, err) ? -1 : io_write_file_atomic(jsonl_path, b.data, b.len, err);
    sbuf_free(&b);
    return rc;
}
