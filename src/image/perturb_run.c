// image/perturb_run: the folder and dataset drivers of `temper perturb` (perturb_run.h).
#include "image/perturb_run.h"
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"

typedef struct img_set {
    char **src;    // input paths
    char **dst;    // output paths
    char **rel;    // --data: the output path as the new JSONL names it
    int n, cap;
} img_set;

static void set_free(img_set *s) {
    for (int i = 0; i < s->n; i++) free(s->src[i]), free(s->dst[i]), free(s->rel[i]);
    free(s->src), free(s->dst), free(s->rel);
    memset(s, 0, sizeof *s);
}

static int set_add(img_set *s, const char *src, tm_error *err) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **a = realloc(s->src, sizeof(char *) * cap);
        if (a) s->src = a;
        char **b = realloc(s->dst, sizeof(char *) * cap);
        if (b) s->dst = b;
        char **c = realloc(s->rel, sizeof(char *) * cap);
        if (c) s->rel = c;
        if (!a || !b || !c) return tm_fail(err, "out of memory");
        s->cap = cap;
    }
    s->src[s->n] = strdup(src);
    s->dst[s->n] = s->rel[s->n] = NULL;
    if (!s->src[s->n]) return tm_fail(err, "out of memory");
    s->n++;
    return 0;
}

static int find(const img_set *s, const char *src) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->src[i], src)) return i;
    return -1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

// Same file (both exist) or same path text.
static int same_path(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    if (realpath(a, ra) && realpath(b, rb)) return !strcmp(ra, rb);
    return !strcmp(a, b);
}

static int set_from_dir(img_set *s, const char *dir, const char *out, tm_error *err) {
    DIR *d = opendir(dir);
    if (!d) return tm_fail(err, "--images %s: cannot open the folder", dir);
    struct dirent *e;
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !img_is_image_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **q = realloc(names, sizeof(char *) * cap);
            if (!q) { rc = tm_fail(err, "out of memory"); break; }
            names = q;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = tm_fail(err, "out of memory"); break; }
        n++;
    }
    closedir(d);
    if (!rc && n == 0) rc = tm_fail(err, "--images %s: no .png, .jpg or .jpeg files", dir);
    if (!rc) qsort(names, (size_t)n, sizeof(char *), cmp_str);
    char p[4096];
    for (int i = 0; i < n && !rc; i++) {
        if (set_add(s, io_join(p, sizeof p, dir, names[i]), err)) rc = -1;
        else if (!(s->dst[i] = strdup(io_join(p, sizeof p, out, names[i])))) rc = tm_fail(err, "out of memory");
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

// Output names under OUT/images: the source's base name, made unique with -<index>.
static int name_outputs(img_set *s, const char *out, tm_error *err) {
    char p[4096], name[1024];
    for (int i = 0; i < s->n; i++) {
        const char *b = base_name(s->src[i]);
        snprintf(name, sizeof name, "%s", b);
        for (int j = 0; j < i; j++)
            if (!strcmp(base_name(s->rel[j]), name)) {
                const char *dot = strrchr(b, '.');
                int stem = dot ? (int)(dot - b) : (int)strlen(b);
                snprintf(name, sizeof name, "%.*s-%d%s", stem, b, i, dot ? dot : "");
                break;
            }
        snprintf(p, sizeof p, "images/%s", name);
        if (!(s->rel[i] = strdup(p)) || !(s->dst[i] = strdup(io_join(p, sizeof p, out, s->rel[i]))))
            return tm_fail(err, "out of memory");
    }
    return 0;
}

// The image paths of one row (TRL: `images` list or `image` string), resolved against dir.
static int row_images(const json *row, const char *dir, const char *where, img_set *s, tm_error *err) {
    const json *v = json_get(row, "images");
    const json *one = v ? NULL : json_get(row, "image");
    if (!v && !one) return 0;
    int n = v ? (v->type == JSON_ARRAY ? v->n : -1) : 1;
    if (n < 0) return tm_fail(err, "%s: `images` must be a list of paths", where);
    char p[4096];
    for (int i = 0; i < n; i++) {
        const json *it = v ? &v->items[i] : one;
        if (it->type != JSON_STRING || !it->len)
            return tm_fail(err, "%s: `%s` must hold image paths (strings)", where, v ? "images" : "image");
        const char *path = it->str[0] == '/' ? it->str : io_join(p, sizeof p, dir, it->str);
        if (find(s, path) < 0 && set_add(s, path, err)) return -1;
    }
    return 0;
}

static int write_draws(FILE *f, const char *draws_out, int i, const img_set *s, const img_draw *d, tm_error *err) {
    fprintf(f, "{\"index\": %d, \"op\": \"%s\", \"file\": ", i, img_op_name(d->op));
    sbuf b;
    sbuf_init(&b);
    sbuf_json_str(&b, s->src[i], strlen(s->src[i]));
    if (d->partner >= 0) {
        sbuf_puts(&b, ", \"partner\": ");
        sbuf_json_str(&b, s->src[d->partner], strlen(s->src[d->partner]));
    }
    if (sbuf_check(&b, err)) return -1;
    fputs(b.data, f);
    sbuf_free(&b);
    switch (d->op) {
    case IMG_OP_MIXUP: fprintf(f, ", \"lambda\": %.17g", d->lambda); break;
    case IMG_OP_ROTATE: fprintf(f, ", \"angle\": %.17g", d->angle); break;
    case IMG_OP_BLUR: fprintf(f, ", \"ksize\": %d", d->ksize); break;
    case IMG_OP_CROP: fprintf(f, ", \"x\": %d, \"y\": %d, \"w\": %d, \"h\": %d", d->crop_x, d->crop_y, d->crop_w, d->crop_h); break;
    case IMG_OP_NOISE: {
        char p[4200];
        snprintf(p, sizeof p, "%s.noise%d.f64", draws_out, i);
        if (io_write_file_atomic(p, d->noise, sizeof(double) * (size_t)d->n_noise, err)) return -1;
        fprintf(f, ", \"noise_file\": \"%s\"", p);  // our own name: no characters to escape
        break;
    }
    case IMG_OP_CONCAT: break;
    }
    fprintf(f, "}\n");
    return 0;
}

// No output may be an input: an output that already exists is resolved and looked up
// among the inputs' resolved paths (sorted once: n log n for big datasets).
static int check_no_overwrite(const img_set *s, tm_error *err) {
    char **real = calloc((size_t)s->n, sizeof(char *)), buf[PATH_MAX];
    if (!real) return tm_fail(err, "out of memory");
    int m = 0, rc = 0;
    for (int i = 0; i < s->n && !rc; i++)
        if (realpath(s->src[i], buf) && !(real[m++] = strdup(buf))) rc = tm_fail(err, "out of memory");
    if (!rc) qsort(real, (size_t)m, sizeof(char *), cmp_str);
    for (int i = 0; i < s->n && !rc; i++) {
        const char *key = buf;
        if (realpath(s->dst[i], buf) && bsearch(&key, real, (size_t)m, sizeof(char *), cmp_str))
            rc = tm_fail(err, "%s: the output would overwrite an original image; choose another --out", s->dst[i]);
    }
    for (int i = 0; i < m; i++) free(real[i]);
    free(real);
    return rc;
}

static int perturb_set(const img_perturb_args *a, const img_set *s, tm_error *err) {
    if (check_no_overwrite(s, err)) return -1;
    FILE *df = NULL;
    if (a->draws_out && !(df = fopen(a->draws_out, "w"))) return tm_fail(err, "%s: cannot write the draws", a->draws_out);
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++) {
        img_rgb out = {0};
        img_draw d = {0};
        rc = img_perturb_one(&out, &d, a->op, &a->opts, a->seed, (const char *const *)s->src, s->n, i, err);
        if (!rc) rc = img_save(&out, s->dst[i], err);
        if (!rc && df) rc = write_draws(df, a->draws_out, i, s, &d, err);
        img_draw_free(&d);
        img_free(&out);
    }
    if (df && fclose(df) && !rc) rc = tm_fail(err, "%s: write failed", a->draws_out);
    return rc;
}

// F.jsonl rewritten: each row's image column points at the perturbed files.
static int rewrite_data(const img_perturb_args *a, const img_set *s, const char *dir, img_perturb_summary *sum, tm_error *err) {
    io_lines in;
    if (io_lines_open(&in, a->data, err)) return -1;
    sbuf o;
    sbuf_init(&o);
    char *line, p[4096];
    long len;
    int rc = 0;
    while (!rc && (len = io_lines_next(&in, &line)) >= 0) {
        if (len == 0) continue;
        tm_error e;
        json_doc *doc = json_parse(line, (size_t)len, &e);
        if (!doc) { rc = tm_fail(err, "%s:%ld: %s", a->data, in.lineno, e.msg); break; }
        const json *row = json_root(doc);
        sbuf_puts(&o, "{");
        for (int k = 0; k < row->n; k++) {
            if (k) sbuf_puts(&o, ", ");
            sbuf_json_str(&o, row->keys[k], row->key_lens[k]);
            sbuf_puts(&o, ": ");
            const json *v = &row->items[k];
            int is_list = !strcmp(row->keys[k], "images"), is_one = !strcmp(row->keys[k], "image") && !json_get(row, "images");
            if (is_list || is_one) {
                if (is_list) sbuf_puts(&o, "[");
                int n = is_list ? v->n : 1;
                for (int i = 0; i < n; i++) {
                    const json *it = is_list ? &v->items[i] : v;
                    const char *path = it->str[0] == '/' ? it->str : io_join(p, sizeof p, dir, it->str);
                    int idx = find(s, path);
                    if (i) sbuf_puts(&o, ", ");
                    sbuf_json_str(&o, s->rel[idx], strlen(s->rel[idx]));
                }
                if (is_list) sbuf_puts(&o, "]");
            } else {
                sbuf_json_value(&o, v);
            }
        }
        sbuf_puts(&o, "}\n");
        sum->n_rows++;
        json_doc_free(doc);
    }
    io_lines_close(&in);
    if (!rc && !sbuf_check(&o, err)) rc = io_write_file_atomic(sum->data_out, o.data, o.len, err);
    else if (!rc) rc = -1;
    sbuf_free(&o);
    return rc;
}

int img_perturb_run(const img_perturb_args *a, img_perturb_summary *sum, tm_error *err) {
    memset(sum, 0, sizeof *sum);
    if (!a->out) return tm_fail(err, "--out is required");
    if (!!a->images == !!a->data) return tm_fail(err, "give one of --images DIR or --data F.jsonl");
    img_set s = {0};
    int rc = 0;
    char dir[4096];
    if (a->images) {
        if (same_path(a->images, a->out)) return tm_fail(err, "--out %s is the --images folder: the originals would be overwritten", a->out);
        rc = set_from_dir(&s, a->images, a->out, err);
        if (!rc) rc = io_mkdirs(a->out, err);
    } else {
        snprintf(dir, sizeof dir, "%s", a->data);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        io_lines in;
        if (io_lines_open(&in, a->data, err)) return -1;
        char *line, where[4200];
        long len;
        while (!rc && (len = io_lines_next(&in, &line)) >= 0) {
            if (len == 0) continue;
            snprintf(where, sizeof where, "%s:%ld", a->data, in.lineno);
            tm_error e;
            json_doc *doc = json_parse(line, (size_t)len, &e);
            if (!doc) { rc = tm_fail(err, "%s: %s", where, e.msg); break; }
            if (json_root(doc)->type != JSON_OBJECT) rc = tm_fail(err, "%s: a row must be a JSON object", where);
            else rc = row_images(json_root(doc), dir, where, &s, err);
            json_doc_free(doc);
        }
        io_lines_close(&in);
        if (!rc && s.n == 0) rc = tm_fail(err, "%s: no row has an `images` or `image` column", a->data);
        char img_dir[4200];
        snprintf(img_dir, sizeof img_dir, "%s/images", a->out);
        io_join(sum->data_out, sizeof sum->data_out, a->out, base_name(a->data));
        if (!rc && same_path(sum->data_out, a->data))
            rc = tm_fail(err, "%s: the output would overwrite the dataset; choose another --out", sum->data_out);
        if (!rc) rc = name_outputs(&s, a->out, err);
        if (!rc) rc = io_mkdirs(img_dir, err);
    }
    if (!rc) rc = perturb_set(a, &s, err);
    if (!rc && a->data) rc = rewrite_data(a, &s, dir, sum, err);
    sum->n_images = s.n;
    set_free(&s);
    return rc;
}
