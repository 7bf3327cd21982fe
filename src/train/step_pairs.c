// train/step_pairs: Step-DPO pair mining with the verifier as the judge (see step_pairs.h).
#include "task/grade.h"
#include "task/problems.h"
#include "train/step_pairs.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/progress.h"
#include "data/data.h"
#include "model/model.h"

void step_pairs_opts_default(step_pairs_opts *o) {
    memset(o, 0, sizeof *o);
    o->rep = 2;
    o->max_per_question = 1;
    o->num_locate = 8;
    o->num_correct = 20;
    o->max_steps = 32;
    o->max_new_tokens = 512;
    o->batch = 64;
    sample_params_default(&o->sp);
    o->sp.temperature = 0.8;
    o->sp.top_p = 0.95;
    o->opener = "Let's think step by step.\nStep 1:";
}

int step_pairs_opts_check(const step_pairs_opts *o, tm_error *err) {
    if (o->rep < 1) return tm_fail(err, "--rep must be at least 1 (got %d)", o->rep);
    if (o->max_per_question < 1) return tm_fail(err, "--max-per-question must be at least 1 (got %d)", o->max_per_question);
    if (o->num_locate < 1) return tm_fail(err, "--num-locate must be at least 1 (got %d)", o->num_locate);
    if (o->num_correct < 0) return tm_fail(err, "--num-correct must be at least 0 (got %d)", o->num_correct);
    if (o->max_steps < 1) return tm_fail(err, "--max-steps must be at least 1 (got %d)", o->max_steps);
    if (o->max_new_tokens < 1) return tm_fail(err, "--max-new-tokens must be at least 1 (got %d)", o->max_new_tokens);
    if (o->batch < 1) return tm_fail(err, "--batch must be at least 1 (got %d)", o->batch);
    if (!o->opener) return tm_fail(err, "--step-opener must be given");
    return sample_params_check(&o->sp, err);
}

int step_pairs_split(const char *text, size_t len, size_t first, size_t *start, size_t *end, int cap) {
    int k = 0;
    size_t cur = first;
    for (size_t i = first; i + 6 <= len; i++) {
        if (memcmp(text + i, "\nStep ", 6)) continue;
        size_t j = i + 6;
        while (j < len && isdigit((unsigned char)text[j])) j++;
        if (j == i + 6 || j >= len || text[j] != ':') continue;
        if (k < cap) start[k] = cur, end[k] = i;
        k++;
        cur = j + 1;
        i = j;
    }
    if (k < cap) start[k] = cur, end[k] = len;
    return k + 1;
}

void step_pairs_ctx_init(step_pairs_ctx *c, const rollout_backend *be, tok_tokenizer *t, const step_pairs_opts *o) {
    memset(c, 0, sizeof *c);
    c->be = be;
    c->tok = t;
    c->o = o;
    math_extract_opts_default(&c->eo);
    math_equal_opts_default(&c->qo);
}

static void free_texts(char **v, int n) {
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

// n continuations of each context (texts given whole; encoded as one piece each) into
// (*out)[k * n + s], decoded without special tokens.
static int continue_from(step_pairs_ctx *c, char *const *ctx, int nctx, int n, char ***out, tm_error *err) {
    const step_pairs_opts *o = c->o;
    int rc = 0, total = nctx * n;
    tok_ids *ids = calloc((size_t)nctx, sizeof *ids);
    const int **pp = malloc(sizeof *pp * (size_t)nctx);
    int *pl = malloc(sizeof *pl * (size_t)nctx);
    rollout_traj *tr = calloc((size_t)total, sizeof *tr);
    *out = calloc((size_t)total, sizeof **out);
    if (!ids || !pp || !pl || !tr || !*out) { rc = tm_fail(err, "out of memory"); goto done; }
    for (int k = 0; k < nctx && !rc; k++) {
        rc = tok_encode(c->tok, ctx[k], strlen(ctx[k]), 0, &ids[k], err);
        pp[k] = ids[k].v;
        pl[k] = (int)ids[k].n;
    }
    if (rc) goto done;
    rollout_opts ro;
    rollout_opts_default(&ro);
    ro.n = n;
    ro.batch = total < o->batch ? total : o->batch;
    ro.max_new_tokens = o->max_new_tokens;
    ro.sp = o->sp;
    ro.seed = o->seed * 0x9E3779B97F4A7C15ull ^ c->calls++;  // every call draws afresh, reproducibly
    ro.stop_ids = o->stop_ids;
    ro.nstop_ids = o->nstop_ids;
    if ((rc = rollout_run(c->be, c->tok, pp, pl, nctx, &ro, tr, err))) goto done;
    for (int i = 0; i < total && !rc; i++) {
        sbuf s;
        sbuf_init(&s);
        rc = tok_decode(c->tok, tr[i].ids, (size_t)tr[i].len, 1, &s, err);
        if (!rc) rc = sbuf_check(&s, err);
        if (!rc && !((*out)[i] = strdup(s.data ? s.data : ""))) rc = tm_fail(err, "out of memory");
        sbuf_free(&s);
    }
done:
    for (int i = 0; tr && i < total; i++) rollout_traj_free(&tr[i]);
    for (int k = 0; ids && k < nctx; k++) tok_ids_free(&ids[k]);
    free(tr); free(ids); free(pp); free(pl);
    if (rc) { free_texts(*out, total); *out = NULL; }
    return rc;
}

// The verifier's verdict on a + b (the solution text after the prompt): 1 correct.
static int graded(step_pairs_ctx *c, const char *a, size_t alen, const char *b, const char *gold, int *ok, tm_error *err) {
    size_t bl = strlen(b);
    char *t = malloc(alen + bl + 1);
    if (!t) return tm_fail(err, "out of memory");
    memcpy(t, a, alen);
    memcpy(t + alen, b, bl + 1);
    task_grade_result g;
    int rc = task_grade(t, alen + bl, gold, &c->eo, &c->qo, &g, err);  // the task layer's one grading rule
    *ok = !rc && g.correct;
    if (!rc) task_grade_result_free(&g);
    free(t);
    return rc;
}

// The first step of a continuation (Step-DPO's text.split("\nStep ")[0]).
static size_t first_step_len(const char *s) {
    const char *p = strstr(s, "\nStep ");
    return p ? (size_t)(p - s) : strlen(s);
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static char *concat(const char *a, size_t an, const char *b, size_t bn) {
    char *t = malloc(an + bn + 1);
    if (!t) return NULL;
    memcpy(t, a, an);
    memcpy(t + an, b, bn);
    t[an + bn] = 0;
    return t;
}

int step_pairs_locate(step_pairs_ctx *c, const char *question, const char *rendered, const char *gold, const char *solution,
                      sbuf *out, int *wrong_step, step_pairs_stats *st, tm_error *err) {
    const step_pairs_opts *o = c->o;
    *wrong_step = 0;
    st->examined++;
    size_t ol = strlen(o->opener), rl = strlen(rendered);
    char *T = concat(o->opener, ol, solution, strlen(solution));
    if (!T) return tm_fail(err, "out of memory");
    size_t TL = strlen(T);
    int cap = o->max_steps;
    size_t *s0 = malloc(sizeof(size_t) * (size_t)cap), *s1 = malloc(sizeof(size_t) * (size_t)cap);
    char **ctx = calloc((size_t)cap, sizeof *ctx), **cont = NULL, **fix = NULL;
    int rc = 0, K = 0, nctx = 0;
    int *used = NULL;
    if (!s0 || !s1 || !ctx) { rc = tm_fail(err, "out of memory"); goto done; }
    K = step_pairs_split(T, TL, ol, s0, s1, cap);
    if (K > cap) { st->too_many_steps++; goto done; }
    // prefix_k = T[0, s0[k]) ends with the label of step k+1 (prefix_0 = the opener)
    for (int k = 0; k < K; k++, nctx++)
        if (!(ctx[k] = concat(rendered, rl, T, s0[k]))) { rc = tm_fail(err, "out of memory"); goto done; }
    int L = o->num_locate;
    if ((rc = continue_from(c, ctx, K, L, &cont, err))) goto done;
    st->rollouts += (long)K * L;
    int w = 0;
    for (int k = 0; k < K && !w; k++) {
        int any = 0;
        for (int s = 0; s < L && !rc && !any; s++) rc = graded(c, T, s0[k], cont[k * L + s], gold, &any, err);
        if (rc) goto done;
        if (!any) w = k == 0 ? -1 : k;
    }
    if (w < 0) { st->unsolvable++; goto done; }
    if (w == 0) w = K;  // every prefix can still be completed: the last step is the wrong one
    *wrong_step = w;
    st->located++;
    // rectification: continuations from prefix_{w-1}, the localization's first
    int NC = o->num_correct;
    if (NC > 0) {
        if ((rc = continue_from(c, &ctx[w - 1], 1, NC, &fix, err))) goto done;
        st->rollouts += NC;
    }
    const char *rej = T + s0[w - 1];
    size_t rejl = s1[w - 1] - s0[w - 1];
    used = calloc((size_t)(L + NC), sizeof *used);
    if (!used) { rc = tm_fail(err, "out of memory"); goto done; }
    int npairs = 0;
    for (int i = 0; i < L + NC && !rc; i++) {
        const char *cand = i < L ? cont[(w - 1) * L + i] : fix[i - L];
        int ok;
        if ((rc = graded(c, T, s0[w - 1], cand, gold, &ok, err)) || !ok) continue;
        size_t cl = first_step_len(cand);
        if (blank(cand, cl) || (cl == rejl && !memcmp(cand, rej, cl))) continue;
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) {
            const char *o2 = j < L ? cont[(w - 1) * L + j] : fix[j - L];
            dup = used[j] && first_step_len(o2) == cl && !memcmp(o2, cand, cl);
        }
        if (dup) continue;
        used[i] = 1;
        sbuf_puts(out, "{\"prompt\": ");
        sbuf_json_str(out, question, strlen(question));
        sbuf_puts(out, ", \"initial_reason_steps\": ");
        sbuf_json_str(out, T, s0[w - 1]);
        sbuf_puts(out, ", \"chosen\": ");
        sbuf_json_str(out, cand, cl);
        sbuf_puts(out, ", \"rejected\": ");
        sbuf_json_str(out, rej, rejl);
        sbuf_puts(out, ", \"full_chosen\": ");
        char *fc = concat(T, s0[w - 1], cand, strlen(cand));
        if (!fc) { rc = tm_fail(err, "out of memory"); break; }
        sbuf_json_str(out, fc, strlen(fc));
        free(fc);
        sbuf_puts(out, ", \"full_rejected\": ");
        sbuf_json_str(out, T, TL);
        sbuf_puts(out, ", \"answer\": ");
        sbuf_json_str(out, gold, strlen(gold));
        sbuf_printf(out, ", \"wrong_step\": %d, \"num_steps\": %d}\n", w, K);
        npairs++;
    }
    if (!rc) rc = sbuf_check(out, err);
    st->pairs += npairs;
    if (!npairs) st->no_correction++;
done:
    free_texts(cont, K * o->num_locate);
    free_texts(fix, o->num_correct);
    free_texts(ctx, nctx);
    free(used); free(s0); free(s1); free(T);
    return rc;
}

int step_pairs_problem(step_pairs_ctx *c, const char *question, const char *rendered, const char *gold, sbuf *out,
                       step_pairs_stats *st, tm_error *err) {
    const step_pairs_opts *o = c->o;
    st->problems++;
    char *ctx = concat(rendered, strlen(rendered), o->opener, strlen(o->opener));
    if (!ctx) return tm_fail(err, "out of memory");
    char **sol = NULL;
    int rc = continue_from(c, &ctx, 1, o->rep, &sol, err);
    free(ctx);
    if (rc) return -1;
    st->solutions += o->rep;
    st->rollouts += o->rep;
    for (int i = 0, taken = 0; i < o->rep && !rc && taken < o->max_per_question; i++) {
        int ok, w;
        if ((rc = graded(c, o->opener, strlen(o->opener), sol[i], gold, &ok, err)) || ok) continue;
        st->wrong++;
        taken++;
        rc = step_pairs_locate(c, question, rendered, gold, sol[i], out, &w, st, err);
    }
    free_texts(sol, o->rep);
    return rc;
}

void step_pairs_args_default(step_pairs_args *a) {
    memset(a, 0, sizeof *a);
    step_pairs_opts_default(&a->o);
    a->seed = 42;
}

// One problem of the prompts file, read by the one problem loader (task/problems.h, plain
// style): the user content (question + suffix) as the Step-DPO row's "prompt" (`temper dpo
// --step-wise` renders that field as it is), its rendering (the prompt rule), the gold.
static int read_problem(const json *row, const tok_chat *chat, const char *suffix, char **question, char **rendered,
                        char **gold, tm_error *err) {
    task_prompt_opts po = {TASK_STYLE_PLAIN, suffix, chat, 0};
    task_problem p;
    if (task_problem_from_json(NULL, row, &po, &p, err)) return -1;
    int rc = 0;
    json_doc *d = NULL;
    if (p.prompt_json[0] != '"') rc = tm_fail(err, "need a string \"prompt\" (or \"question\" / \"problem\"): step-pairs continues a question");
    else if (!p.answer) rc = tm_fail(err, "missing field \"answer\": step-pairs needs a gold answer");
    else if (!(d = json_parse(p.prompt_json, strlen(p.prompt_json), err))) rc = -1;  // the content, a JSON string
    else if (!(*question = strndup(json_root(d)->str, json_root(d)->len))) rc = tm_fail(err, "out of memory");
    if (!rc) {
        *rendered = p.text;
        *gold = p.answer;
        p.text = p.answer = NULL;
    }
    json_doc_free(d);
    task_problem_free(&p);
    return rc;
}

int step_pairs_run(const step_pairs_args *a, step_pairs_stats *st, tm_error *err) {
    memset(st, 0, sizeof *st);
    if (!a->model || !a->data || !a->out) return tm_fail(err, "--model, --data and --out are required");
    step_pairs_opts o = a->o;
    o.seed = (uint64_t)(int64_t)a->seed;
    if (step_pairs_opts_check(&o, err)) return -1;
    model m;
    memset(&m, 0, sizeof m);
    tok_tokenizer *tok = NULL;
    io_lines in;
    int in_open = 0, rc = -1, stop[16];
    sbuf b;
    sbuf_init(&b);
    if (model_load(&m, a->model, err)) goto done;
    if (!(tok = tok_load(a->model, err))) goto done;
    tok_chat chat;
    int have_chat = tok_chat_for(tok, a->chat_template, &chat, err) == 0;
    if (a->chat_template && !have_chat) goto done;
    o.nstop_ids = tok_stop_ids(tok, m.cfg.eos_token_id, m.cfg.vocab, stop, 16);
    o.stop_ids = stop;
    rollout_backend be;
    rollout_model_ctx mctx;
    rollout_backend_model(&be, &mctx, &m);
    step_pairs_ctx c;
    step_pairs_ctx_init(&c, &be, tok, &o);
    if (io_lines_open(&in, a->data, err)) goto done;
    in_open = 1;
    progress pb;
    if (!a->quiet) progress_start(&pb, "step-pairs", a->limit, "problems");
    char *line;
    long len;
    while ((len = io_lines_next(&in, &line)) >= 0 && (a->limit <= 0 || st->problems < a->limit)) {
        if (blank(line, (size_t)len)) continue;
        json_doc *d = data_parse_line(line, (size_t)len, err);
        if (!d) { tm_fail_prefix(err, "%s:%ld", a->data, in.lineno); goto done; }
        char *q = NULL, *r = NULL, *g = NULL;
        int e = read_problem(json_root(d), have_chat ? &chat : NULL, a->prompt_suffix, &q, &r, &g, err);
        json_doc_free(d);
        if (e) tm_fail_prefix(err, "%s:%ld", a->data, in.lineno);
        else e = step_pairs_problem(&c, q, r, g, &b, st, err);
        free(q); free(r); free(g);
        if (e) goto done;
        if (!a->quiet) progress_update(&pb, st->problems);
    }
    if (!a->quiet) progress_finish(&pb);
    if (sbuf_check(&b, err)) goto done;
    if (io_write_file_atomic(a->out, b.data ? b.data : "", b.len, err)) goto done;
    rc = 0;
done:
    if (in_open) io_lines_close(&in);
    sbuf_free(&b);
    tok_free(tok);
    model_free(&m);
    return rc;
}
