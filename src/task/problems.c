// task/problems: the one problem loader (see problems.h).
#include "task/problems.h"
#include <stdlib.h>
#include <string.h>
#include "base/io.h"

// GSM8K's final answer: after the first "#### ", trimmed, commas removed.
static char *gsm8k_final(const char *sol) {
    const char *p = strstr(sol, "#### ");
    if (!p) return NULL;
    p += 5;
    while (*p == ' ') p++;
    size_t n = strcspn(p, "\n");
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\r')) n--;
    char *a = malloc(n + 1), *o = a;
    if (!a) return NULL;
    for (size_t i = 0; i < n; i++)
        if (p[i] != ',') *o++ = p[i];
    *o = 0;
    return a;
}

int task_row_answer(const json *row, char **out, tm_error *err) {
    *out = NULL;
    const json *a = json_get(row, "answer");
    if (!a || a->type == JSON_NULL) return 0;
    if (a->type != JSON_STRING && a->type != JSON_NUMBER) return tm_fail(err, "\"answer\" must be a string or a number");
    if (memchr(a->str, 0, a->len)) return tm_fail(err, "\"answer\" holds a NUL character");
    int gsm = a->type == JSON_STRING && json_get(row, "question") && !json_get(row, "prompt") && strstr(a->str, "#### ");
    *out = gsm ? gsm8k_final(a->str) : strndup(a->str, a->len);  // a number: its source text, whole
    return *out ? 0 : tm_fail(err, "out of memory");
}

int task_row_gold(const json *row, char **out, tm_error *err) {
    const json *g = json_get(row, "gold");
    if (!g || g->type == JSON_NULL) return task_row_answer(row, out, err);
    *out = NULL;
    if (g->type != JSON_STRING && g->type != JSON_NUMBER) return tm_fail(err, "\"gold\" must be a string or a number");
    // kept whole, a NUL included: task_grade_answer refuses it as a parse failure
    if (!(*out = malloc(g->len + 1))) return tm_fail(err, "out of memory");
    memcpy(*out, g->str, g->len);
    (*out)[g->len] = 0;
    return 0;
}

static char *opt_text(const json *v, int *oom) {
    if (!v || (v->type != JSON_STRING && v->type != JSON_NUMBER)) return NULL;
    char *s = strndup(v->str, v->len);
    if (!s) *oom = 1;
    return s;
}

int task_problem_from_json(tok_tokenizer *t, const json *row, const task_prompt_opts *o, task_problem *p, tm_error *err) {
    memset(p, 0, sizeof *p);
    p->level = -1;
    if (!row || row->type != JSON_OBJECT) return tm_fail(err, "a line must be a JSON object");
    const json *im = json_get(row, "images");
    const char *col = "images";
    if (!im || im->type == JSON_NULL) im = json_get(row, "image"), col = "image";
    if (im && im->type != JSON_NULL && !(im->type == JSON_ARRAY && im->n == 0)) {
        if (im->type != JSON_ARRAY && im->type != JSON_STRING) return tm_fail(err, "\"%s\" must be a path or a list of paths", col);
        int n = im->type == JSON_ARRAY ? im->n : 1;
        if (!(p->images = calloc((size_t)n, sizeof(char *)))) return tm_fail(err, "out of memory");
        p->n_images = n;
        for (int k = 0; k < n; k++) {
            const json *v = im->type == JSON_ARRAY ? &im->items[k] : im;
            if (v->type != JSON_STRING) { task_problem_free(p); return tm_fail(err, "\"%s\"[%d] must be a path (a string)", col, k); }
            if (!(p->images[k] = strndup(v->str, v->len))) { task_problem_free(p); return tm_fail(err, "out of memory"); }
        }
    }
    const json *q = json_get(row, "prompt");
    int gsm = 0;
    if (!q && (q = json_get(row, "question"))) gsm = 1;  // GSM8K
    if (!q) q = json_get(row, "problem");                // MATH / MATH-500
    if (!q) return tm_fail(err, "missing field \"prompt\" (or \"question\" / \"problem\")");
    if (q->type != JSON_STRING && q->type != JSON_ARRAY)
        return tm_fail(err, "\"%s\" must be a string or a message list", gsm ? "question" : json_get(row, "prompt") ? "prompt" : "problem");
    if (task_row_answer(row, &p->answer, err)) { task_problem_free(p); return -1; }
    int oom = 0, rc = 0;
    const json *sol = json_get(row, "solution"), *ans = json_get(row, "answer");
    if (sol && sol->type == JSON_STRING) p->solution = opt_text(sol, &oom);
    else if (gsm && ans && ans->type == JSON_STRING && strstr(ans->str, "#### ")) p->solution = opt_text(ans, &oom);
    p->subject = opt_text(json_get(row, "subject"), &oom);
    const json *lv = json_get(row, "level");
    if (lv && json_is_int(lv)) p->level = (int)lv->num;
    else if (lv && lv->type == JSON_STRING) {  // MATH: "Level 3"
        const char *s = strpbrk(lv->str, "0123456789");
        if (s) p->level = atoi(s);
    }
    sbuf text, pj;
    sbuf_init(&text);
    sbuf_init(&pj);
    const tok_chat *chat = task_style_uses_chat(o->style) ? o->chat : NULL;
    if (q->type == JSON_STRING) {
        sbuf content, qi;
        sbuf_init(&content);
        sbuf_init(&qi);
        for (int k = 0; k < p->n_images; k++) sbuf_puts(&qi, "<|vision_start|><|image_pad|><|vision_end|>");  // as data/'s sft rows
        sbuf_put(&qi, q->str, q->len);
        if ((rc = sbuf_check(&qi, err))) { sbuf_free(&qi); sbuf_free(&content); task_problem_free(p); return -1; }
        task_prompt_content(o->style, q->str, q->len, o->suffix, &content);
        // the data row keeps the question without placeholders (its "images" column brings them
        // back, as sft reads it); the model sees them first in the user turn
        if (!(rc = sbuf_check(&content, err))) sbuf_json_str(&pj, content.data, content.len);
        if (!rc && p->n_images) {
            sbuf_clear(&content);
            task_prompt_content(o->style, qi.data, qi.len, o->suffix, &content);
            rc = sbuf_check(&content, err);
        }
        sbuf_free(&qi);
        if (!rc) rc = task_prompt_render(chat, content.data, content.len, &text, err);
        sbuf_free(&content);
    } else {
        tok_chat_msg *m = NULL;
        int n = 0;
        if (!(rc = task_messages(q, "prompt", &m, &n, err))) {
            sbuf_json_value(&pj, q);
            rc = task_prompt_render_messages(o->chat, m, n, &text, err);
        }
        free(m);
    }
    if (!rc && !(rc = sbuf_check(&text, err)) && !(rc = sbuf_check(&pj, err))) {
        p->text = text.data ? text.data : strdup("");
        p->prompt_json = pj.data;
        text.data = pj.data = NULL;
        if (!p->text) rc = tm_fail(err, "out of memory");
    }
    sbuf_free(&text);
    sbuf_free(&pj);
    if (!rc && oom) rc = tm_fail(err, "out of memory");
    if (!rc && t) {
        tok_ids ids = {0};
        rc = tok_encode(t, p->text, strlen(p->text), 0, &ids, err);
        p->ids = ids.v;
        p->len = (int)ids.n;
        if (!rc && ids.n == 0) rc = tm_fail(err, "empty prompt");
        for (size_t i = 0; !rc && o->vocab > 0 && i < ids.n; i++)
            if (ids.v[i] < 0 || ids.v[i] >= o->vocab)
                rc = tm_fail(err, "token id %d is outside the model's vocabulary (%d): tokenizer and model do not match", ids.v[i], o->vocab);
    }
    if (rc) task_problem_free(p);
    return rc;
}

void task_problem_free(task_problem *p) {
    free(p->prompt_json);
    free(p->text);
    free(p->ids);
    free(p->answer);
    free(p->solution);
    free(p->subject);
    for (int k = 0; k < p->n_images; k++) free(p->images[k]);
    free(p->images);
    memset(p, 0, sizeof *p);
    p->level = -1;
}

int task_problems_load(tok_tokenizer *t, const char *path, const task_prompt_opts *o, int limit, task_problem **out,
                       int *np, tm_error *err) {
    *out = NULL;
    *np = 0;
    io_lines r;
    if (io_lines_open(&r, path, err)) return -1;
    char *line;
    long len;
    int n = 0, cap = 0, rc = 0;
    task_problem *ps = NULL;
    tm_error e;
    while ((limit <= 0 || n < limit) && (len = io_lines_next(&r, &line)) >= 0) {
        size_t a = 0;
        while (a < (size_t)len && (line[a] == ' ' || line[a] == '\t' || line[a] == '\r')) a++;
        if (a == (size_t)len) continue;
        if (n == cap) {
            int nc = cap ? 2 * cap : 64;
            task_problem *nw = realloc(ps, sizeof *ps * (size_t)nc);
            if (!nw) { rc = tm_fail(err, "%s:%ld: out of memory", path, r.lineno); break; }
            ps = nw;
            cap = nc;
        }
        json_doc *d = json_parse(line, (size_t)len, &e);
        if (!d || task_problem_from_json(t, json_root(d), o, &ps[n], &e)) {
            json_doc_free(d);
            rc = tm_fail(err, "%s:%ld: %s", path, r.lineno, e.msg);
            break;
        }
        json_doc_free(d);
        for (int k = 0; k < ps[n].n_images; k++) {  // relative to the file's folder
            char *im = ps[n].images[k], *slash = strrchr(path, '/'), *j;
            if (im[0] == '/' || !slash) continue;
            if (!(j = malloc((size_t)(slash - path) + strlen(im) + 2))) { rc = -1; break; }
            sprintf(j, "%.*s/%s", (int)(slash - path), path, im);
            free(im);
            ps[n].images[k] = j;
        }
        if (rc) { n++; rc = tm_fail(err, "%s:%ld: out of memory", path, r.lineno); break; }
        ps[n++].line = r.lineno;
    }
    io_lines_close(&r);
    if (rc) { task_problems_free(ps, n); return -1; }
    *out = ps;
    *np = n;
    return 0;
}

void task_problems_free(task_problem *ps, int n) {
    for (int i = 0; i < n; i++) task_problem_free(&ps[i]);
    free(ps);
}
