// temper grade F.jsonl: reads lines with a gold answer ("gold", else "answer" as the
// problem loader reads it: a GSM8K row's "#### n") and "pred" (an extracted answer) or
// "completion" (a model's output: the answer is extracted first, task_grade's rule),
// writes each line plus "extracted" (null when nothing was found), "correct" and "label"
// (as `temper sample` writes them, so `temper pairs` / `filter` / `kto` read the output)
// and "equal" (the same verdict, the older name), in order, to stdout; a line that
// already holds these fields gets them replaced. The accuracy goes to stderr. Grading is by mathematical equality: 7! counts
// for 5040 unless --allow-unevaluated=false (the policy of RL rewards, where the model
// must do the arithmetic itself). An answer or gold holding a NUL byte is never equal.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "reward/math_answer.h"
#include "task/grade.h"
#include "task/problems.h"

static const char *VERDICT_KEYS[] = {"extracted", "correct", "label", "equal", "verdict"};

static int is_verdict_key(const char *k) {
    for (size_t i = 0; i < sizeof VERDICT_KEYS / sizeof VERDICT_KEYS[0]; i++)
        if (!strcmp(k, VERDICT_KEYS[i])) return 1;
    return 0;
}

static int holds_verdict(const json *o) {
    for (int i = 0; i < o->n; i++)
        if (is_verdict_key(o->keys[i])) return 1;
    return 0;
}

// The row re-serialized without its verdict fields (a regraded sample or graded row).
static void without_verdict(const json *o, sbuf *b) {
    sbuf_puts(b, "{");
    int first = 1;
    for (int i = 0; i < o->n; i++) {
        if (is_verdict_key(o->keys[i])) continue;
        if (!first) sbuf_puts(b, ", ");
        first = 0;
        sbuf_json_str(b, o->keys[i], o->key_lens[i]);
        sbuf_puts(b, ": ");
        sbuf_json_value(b, &o->items[i]);
    }
    sbuf_puts(b, "}");
}

// A numeric or string gold with a NUL inside: its full length, so that task_grade_answer
// sees the NUL and refuses it (strlen would stop there).
static size_t graded_nul(const json *o) {
    const json *g = json_get(o, "gold");
    if (!g || g->type == JSON_NULL) g = json_get(o, "answer");
    return g && (g->type == JSON_STRING || g->type == JSON_NUMBER) && strlen(g->str) != g->len ? g->len - strlen(g->str) : 0;
}

// out = row (a JSON object line) with tail inserted before its closing brace; -1 if the
// row does not end with '}'.
static int close_with(sbuf *out, const sbuf *row, const sbuf *tail) {
    size_t n = row->len;
    while (n && (row->data[n - 1] == ' ' || row->data[n - 1] == '\t' || row->data[n - 1] == '\r')) n--;
    if (!n || row->data[n - 1] != '}') return -1;
    size_t b = n - 1;  // an empty object gets no leading ", "
    size_t a = b;
    while (a && (row->data[a - 1] == ' ' || row->data[a - 1] == '\t')) a--;
    int empty = a && row->data[a - 1] == '{';
    sbuf_put(out, row->data, b);
    sbuf_puts(out, empty ? tail->data + 2 : tail->data);
    sbuf_puts(out, "}");
    return 0;
}

int cmd_grade(int argc, char **argv) {
    const char *extract = "boxed,answer,hash,tool";
    int approx = 0, allow_uneval = 1, reason = 0;
    flag flags[] = {
        {"extract", FLAG_STR, &extract, "extractors in order: boxed,answer,hash,tool,last"},
        {"approx", FLAG_BOOL, &approx, "gold answers are rounded decimals: accept within half a unit of the last place"},
        {"allow-unevaluated", FLAG_BOOL, &allow_uneval,
         "grade by mathematical equality: 7!, 2+3, \\cos 60^\\circ count as 5040, 5, 1/2 (default true; =false refuses "
         "them as RL rewards do)"},
        {"reason", FLAG_BOOL, &reason, "also add \"verdict\" (equal, mismatch, parse-fail, too-large, unevaluated, no-answer)"},
    };
    char *pos[4];
    int npos = 4;
    int rc = flags_parse("grade", "temper grade [flags] F.jsonl  (F = - for stdin)", flags, 4, argc, argv, pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (npos != 1) return cli_fail("grade", "expected one input file (see temper grade --help)") + 1;
    math_extract_opts eo;
    if (math_extract_opts_parse(&eo, extract)) return cli_fail("grade", "bad --extract '%s'", extract) + 1;
    math_equal_opts qo;
    math_equal_opts_default(&qo);
    qo.approx = approx;
    qo.allow_unevaluated = allow_uneval;

    io_lines r;
    tm_error err;
    if (!strcmp(pos[0], "-")) {
        memset(&r, 0, sizeof r);
        r.f = stdin;
        r.path = "<stdin>";
    } else if (io_lines_open(&r, pos[0], &err)) return cli_fail("grade", "%s", err.msg);
    char *line;
    long n;
    long total = 0, correct = 0, none = 0;
    sbuf out, val, tail;
    sbuf_init(&out);
    sbuf_init(&val);
    sbuf_init(&tail);
    int status = 0;
    while ((n = io_lines_next(&r, &line)) >= 0) {
        size_t k = 0;
        while (k < (size_t)n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == (size_t)n) continue;
        json_doc *d = json_parse(line, (size_t)n, &err);
        if (!d) { status = cli_fail("grade", "%s:%ld: %s", r.path, r.lineno, err.msg); break; }
        json *o = json_root(d);
        json *p = json_get(o, "pred"), *c = json_get(o, "completion");
        char *gold = NULL;
        if (o->type != JSON_OBJECT || task_row_gold(o, &gold, &err) || !gold ||
            (!(p && p->type == JSON_STRING) && !(c && c->type == JSON_STRING))) {
            free(gold);
            json_doc_free(d);
            status = cli_fail("grade", "%s:%ld: need \"gold\" (or \"answer\") and a string \"pred\" or \"completion\"", r.path, r.lineno);
            break;
        }
        const char *ans = NULL;
        size_t alen = 0;
        if (p && p->type == JSON_STRING) { ans = p->str; alen = p->len; }
        else {
            size_t st;
            if (math_extract(c->str, c->len, &eo, &st, &alen, NULL)) ans = c->str + st;
        }
        math_verdict v = MATH_MISMATCH;
        if (ans && task_grade_answer(ans, alen, gold, strlen(gold) + graded_nul(o), &qo, &v, &err)) {
            free(gold);
            json_doc_free(d);
            status = cli_fail("grade", "%s:%ld: %s", r.path, r.lineno, err.msg);
            break;
        }
        free(gold);
        int eq = v == MATH_EQUAL;
        total++;
        correct += eq;
        none += !ans;
        // the graded row: the input (its bytes kept unless it holds verdict fields from an
        // earlier grading or sample, which are replaced) + extracted, correct, label, equal
        sbuf_clear(&out);
        sbuf_clear(&val);
        if (holds_verdict(o)) without_verdict(o, &val);
        else sbuf_put(&val, line, (size_t)n);
        sbuf_clear(&tail);
        sbuf_puts(&tail, ", \"extracted\": ");
        if (ans) sbuf_json_str(&tail, ans, alen); else sbuf_puts(&tail, "null");
        sbuf_printf(&tail, ", \"correct\": %s, \"label\": %s, \"equal\": %s", eq ? "true" : "false", eq ? "true" : "false",
                    eq ? "true" : "false");
        if (reason) sbuf_printf(&tail, ", \"verdict\": \"%s\"", ans ? math_verdict_name(v) : "no-answer");
        if (sbuf_check(&val, &err) || sbuf_check(&tail, &err) || close_with(&out, &val, &tail)) {
            json_doc_free(d);
            status = cli_fail("grade", "%s:%ld: %s", r.path, r.lineno, err.msg[0] ? err.msg : "not a JSON object line");
            break;
        }
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
        json_doc_free(d);
    }
    io_lines_close(&r);
    sbuf_free(&out);
    sbuf_free(&val);
    sbuf_free(&tail);
    fflush(stdout);
    if (!status)
        fprintf(stderr, "accuracy: %ld/%ld = %.4f (no answer: %ld)\n", correct, total, total ? (double)correct / total : 0.0, none);
    return status;
}
