// task/synth: every problem's solution grades correct against its own answer with the
// project's verifier; calculator annotations and python code compute what they claim;
// the splits share no template and no number draw; generation is deterministic and the
// tools variants ask the same questions.
#include <stdlib.h>
#include <string.h>
#include "task/grade.h"
#include "task/synth.h"
#include "test.h"
#include "tools/calc.h"

enum { PER_LEVEL = 2000, PER_SPLIT = 1500 };

// Every "<<body>>v" annotation: the body evaluates to its right side and v repeats it.
static int annotations_ok(const char *s, int *count) {
    tm_error err;
    for (const char *p = s; (p = strstr(p, "<<")); ) {
        const char *e = strstr(p, ">>"), *eq = e ? memchr(p, '=', (size_t)(e - p)) : NULL;
        if (!e || !eq) return 0;
        char body[128];
        size_t n = (size_t)(e - p - 2);
        if (n >= sizeof body) return 0;
        memcpy(body, p + 2, n);
        body[n] = 0;
        if (calc_check_annotation(body, &err) != 1) return 0;
        size_t vn = (size_t)(e - eq - 1);
        if (strncmp(e + 2, eq + 1, vn)) return 0;
        (*count)++;
        p = e + 2;
    }
    return 1;
}

// Runs the python block exactly: each line "v = expr" over the variables so far (count,
// money), "//" as exact division (the generator only divides evenly, which this checks:
// the calculator returns a fraction otherwise), then "print(v)". Returns the printed value
// in out, or 0 when the code is not of that shape.
static int run_code(const char *turn, char *out, size_t cap) {
    const char *c = strstr(turn, "```python\n");
    if (!c) return 0;
    c += 10;
    char vars[2][32] = {"", ""};
    static const char *const names[2] = {"count", "money"};
    tm_error err;
    while (*c && strncmp(c, "```", 3)) {
        const char *nl = strchr(c, '\n');
        if (!nl) return 0;
        char line[256], expr[512] = "";
        size_t n = (size_t)(nl - c);
        if (n >= sizeof line) return 0;
        memcpy(line, c, n);
        line[n] = 0;
        c = nl + 1;
        if (!strncmp(line, "print(", 6)) {
            for (int v = 0; v < 2; v++)
                if (!strncmp(line + 6, names[v], strlen(names[v])) && vars[v][0]) {
                    snprintf(out, cap, "%s", vars[v]);
                    return !strncmp(c, "```", 3);
                }
            return 0;
        }
        char *eq = strstr(line, " = ");
        if (!eq) return 0;
        *eq = 0;
        int dst = !strcmp(line, "count") ? 0 : !strcmp(line, "money") ? 1 : -1;
        if (dst < 0) return 0;
        size_t k = 0;
        for (const char *p = eq + 3; *p && k + 40 < sizeof expr;) {
            if (!strncmp(p, "//", 2)) { expr[k++] = '/'; p += 2; continue; }
            int hit = 0;
            for (int v = 0; v < 2; v++)
                if (!strncmp(p, names[v], strlen(names[v]))) {
                    if (!vars[v][0]) return 0;
                    k += (size_t)snprintf(expr + k, sizeof expr - k, "(%s)", vars[v]);
                    p += strlen(names[v]);
                    hit = 1;
                }
            if (!hit) expr[k++] = *p++;
        }
        expr[k] = 0;
        if (calc_eval(expr, vars[dst], sizeof vars[dst], &err) || strchr(vars[dst], '/') || strchr(vars[dst], '.')) return 0;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int shared(char **a, int na, char **b, int nb, const char **which) {
    qsort(b, (size_t)nb, sizeof *b, cmp_str);
    for (int i = 0; i < na; i++)
        if (bsearch(&a[i], b, (size_t)nb, sizeof *b, cmp_str)) { *which = a[i]; return 1; }
    return 0;
}

static void check_verifier(void) {
    tm_error err;
    for (int tools = 0; tools < 3; tools++)
        for (int level = 1; level <= SYNTH_MAX_LEVEL; level++) {
            int wrong = 0, bad_anno = 0, bad_code = 0, bad_shape = 0, annos = 0, fail = 0;
            char first[2048] = "";
            rng r;
            rng_seed(&r, 1000u + (unsigned)level);
            for (int i = 0; i < PER_LEVEL; i++) {
                synth_problem p;
                if (synth_generate(&r, level, SYNTH_TRAIN, (synth_tools)tools, 0, &p, &err)) { fail++; snprintf(first, sizeof first, "%s", err.msg); break; }
                task_grade_result g;
                if (task_grade(p.solution, strlen(p.solution), p.answer, NULL, NULL, &g, &err)) { fail++; break; }
                if (!g.correct) {
                    if (!wrong++) snprintf(first, sizeof first, "%s | %s", p.question, p.solution);
                }
                task_grade_result_free(&g);
                // the last line is "#### n", the only answer line
                const char *h = strstr(p.solution, "#### ");
                char tail[48];
                snprintf(tail, sizeof tail, "#### %s", p.answer);
                if (!h || strcmp(h, tail) || strstr(h + 1, "####")) bad_shape++;
                int py = tools == SYNTH_TOOLS_PYTHON && level >= 4;
                if (tools == SYNTH_TOOLS_CALC) {
                    int before = annos;
                    if (!annotations_ok(p.solution, &annos) || annos - before != level) bad_anno++;
                } else if (strstr(p.solution, "<<")) bad_anno++;
                if (py) {
                    char got[64] = "", obs[96];
                    snprintf(obs, sizeof obs, "```output\n%s\n```", p.answer);
                    if (p.nturns != 3 || strcmp(p.turns[1], obs) || !run_code(p.turns[0], got, sizeof got) ||
                        strcmp(got, p.answer) || strstr(p.turns[0], "####"))
                        bad_code++;
                } else if (p.nturns != 1 || strcmp(p.turns[0], p.solution) || strstr(p.solution, "```"))
                    bad_shape++;
                synth_problem_free(&p);
            }
            CHECK(!fail && !wrong && !bad_shape && !bad_anno && !bad_code,
                  "tools %s level %d: %d solutions grade correct against their answers (task_grade), end in '#### n'%s%s",
                  synth_tools_name((synth_tools)tools), level, PER_LEVEL,
                  tools == SYNTH_TOOLS_CALC ? ", one exact <<a op b=c>>c per operation" : "",
                  tools == SYNTH_TOOLS_PYTHON && level >= 4 ? ", python code prints the answer" : "");
            if (fail || wrong || bad_shape || bad_anno || bad_code)
                printf("#   fail %d wrong %d shape %d annotations %d code %d; first: %s\n", fail, wrong, bad_shape, bad_anno, bad_code, first);
        }
}

static void check_disjoint(void) {
    tm_error err;
    for (int level = 1; level <= SYNTH_MAX_LEVEL; level++) {
        char **tmpl[3], **nums[3];
        int ok = 1;
        const char *which = "";
        for (int s = 0; s < 3; s++) {
            tmpl[s] = calloc(PER_SPLIT, sizeof(char *));
            nums[s] = calloc(PER_SPLIT, sizeof(char *));
            rng r;
            rng_seed(&r, 77u + (unsigned)(s * 10 + level));
            for (int i = 0; i < PER_SPLIT; i++) {
                synth_problem p;
                if (synth_generate(&r, level, (synth_split)s, SYNTH_TOOLS_NONE, 0, &p, &err)) { ok = 0; which = "generate failed"; break; }
                tmpl[s][i] = strdup(p.template_id);
                nums[s][i] = strdup(p.numbers);
                if (p.split != (synth_split)s || synth_split_of(p.template_id) != (synth_split)s ||
                    synth_split_of(p.numbers) != (synth_split)s) { ok = 0; which = "split label"; }
                synth_problem_free(&p);
            }
        }
        int nt[3] = {0, 0, 0};
        for (int a = 0; a < 3 && ok; a++)
            for (int b = 0; b < 3 && ok; b++) {
                if (a == b) continue;
                if (shared(tmpl[a], PER_SPLIT, tmpl[b], PER_SPLIT, &which)) ok = 0;
                if (ok && shared(nums[a], PER_SPLIT, nums[b], PER_SPLIT, &which)) ok = 0;
            }
        for (int s = 0; s < 3; s++) {  // distinct templates per split (sorted by shared())
            qsort(tmpl[s], PER_SPLIT, sizeof(char *), cmp_str);
            for (int i = 0; i < PER_SPLIT; i++) nt[s] += !i || strcmp(tmpl[s][i], tmpl[s][i - 1]);
        }
        CHECK(ok && nt[1] >= 2 && nt[2] >= 2,
              "level %d: train / validation / test (%d problems each) share no template and no number draw "
              "(%d / %d / %d distinct templates)", level, PER_SPLIT, nt[0], nt[1], nt[2]);
        if (!ok) printf("#   shared or bad: %s\n", which);
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < PER_SPLIT; i++) { free(tmpl[s][i]); free(nums[s][i]); }
            free(tmpl[s]);
            free(nums[s]);
        }
    }
}

static void check_determinism(void) {
    tm_error err;
    int same = 1, same_q = 1;
    for (int level = 1; level <= SYNTH_MAX_LEVEL; level++)
        for (int i = 0; i < 50; i++) {
            synth_problem p[3];
            for (int t = 0; t < 3; t++) {
                rng r;
                rng_seed(&r, 5u * (unsigned)i + (unsigned)level);
                synth_generate(&r, level, SYNTH_TEST, (synth_tools)t, 0, &p[t], &err);
            }
            synth_problem q;
            rng r;
            rng_seed(&r, 5u * (unsigned)i + (unsigned)level);
            synth_generate(&r, level, SYNTH_TEST, SYNTH_TOOLS_CALC, 0, &q, &err);
            if (strcmp(q.solution, p[1].solution) || strcmp(q.question, p[1].question)) same = 0;
            if (strcmp(p[0].question, p[1].question) || strcmp(p[0].question, p[2].question) ||
                strcmp(p[0].answer, p[2].answer))
                same_q = 0;
            for (int t = 0; t < 3; t++) synth_problem_free(&p[t]);
            synth_problem_free(&q);
        }
    CHECK(same, "the same seed gives the same problem");
    CHECK(same_q, "none / calculator / python variants ask the same questions with the same answers");

    synth_problem p;
    rng r;
    rng_seed(&r, 1);
    CHECK(synth_generate(&r, 0, SYNTH_TRAIN, SYNTH_TOOLS_NONE, 0, &p, &err) == -1 && strstr(err.msg, "level 0"),
          "level 0 is refused: %s", err.msg);
    CHECK(synth_tools_from_name("calculator") == SYNTH_TOOLS_CALC && synth_tools_from_name("calc") == -1 &&
          synth_split_from_name("validation") == SYNTH_VALIDATION, "tools and split names");
}

// Step-DPO's format: the opener, "Step k: " before each of the level's steps, each
// step one line, the same answer line; the labelled solution still grades correct.
static void check_step_labels(void) {
    tm_error err;
    int bad = 0;
    char first[2048] = "";
    for (int tools = 0; tools < 2; tools++)
        for (int level = 1; level <= SYNTH_MAX_LEVEL; level++)
            for (int i = 0; i < 300; i++) {
                rng r, r2;
                rng_seed(&r, 900u + (unsigned)(i * 7 + level));
                r2 = r;
                synth_problem p, q;
                synth_generate(&r, level, SYNTH_TRAIN, (synth_tools)tools, 1, &p, &err);
                synth_generate(&r2, level, SYNTH_TRAIN, (synth_tools)tools, 0, &q, &err);
                // strip the labels from p: it must be q's solution
                sbuf b;
                sbuf_init(&b);
                const char *s = p.solution, *open = "Let's think step by step.\n";
                int ok = !strncmp(s, open, strlen(open)), k = 1;
                s += ok ? strlen(open) : 0;
                while (ok && strncmp(s, "#### ", 5)) {
                    char lab[16];
                    int n = snprintf(lab, sizeof lab, "Step %d: ", k++);
                    const char *nl = strchr(s, '\n');
                    if (strncmp(s, lab, (size_t)n) || !nl) { ok = 0; break; }
                    sbuf_put(&b, s + n, (size_t)(nl + 1 - s - n));
                    s = nl + 1;
                }
                sbuf_puts(&b, s);
                task_grade_result g;
                task_grade(p.solution, strlen(p.solution), p.answer, NULL, NULL, &g, &err);
                if (!ok || k - 1 != level || strcmp(b.data, q.solution) || !g.correct) {
                    if (!bad++) snprintf(first, sizeof first, "%s", p.solution);
                }
                task_grade_result_free(&g);
                sbuf_free(&b);
                synth_problem_free(&p);
                synth_problem_free(&q);
            }
    CHECK(!bad, "step labels: 'Let's think step by step.' then 'Step k: ' on each of the level's steps, graded correct (3000 problems)");
    if (bad) printf("#   %d bad; first: %s\n", bad, first);
}

static void check_row(void) {
    tm_error err;
    rng r;
    rng_seed(&r, 3);
    synth_problem p;
    synth_generate(&r, 5, SYNTH_VALIDATION, SYNTH_TOOLS_PYTHON, 0, &p, &err);
    sbuf b;
    sbuf_init(&b);
    synth_row_json(&p, 7, &b);
    json_doc *d = json_parse(b.data, b.len, &err);
    const json *row = d ? json_root(d) : NULL, *c = row ? json_get(row, "completion") : NULL;
    CHECK(row && !strcmp(json_get_str(row, "prompt", ""), p.question) && !strcmp(json_get_str(row, "answer", ""), p.answer) &&
              c && c->type == JSON_ARRAY && c->n == 3 && !strcmp(json_get_str(&c->items[1], "role", ""), "user") &&
              !strcmp(json_get_str(row, "split", ""), "validation") && !strcmp(json_get_str(row, "id", ""), "synth-validation-7"),
          "a python row parses: prompt, answer, a 3-message completion (assistant, user output, assistant), split, id");
    json_doc_free(d);
    sbuf_free(&b);
    synth_problem_free(&p);
}

int main(void) {
    check_verifier();
    check_disjoint();
    check_determinism();
    check_step_labels();
    check_row();
    return test_done();
}
