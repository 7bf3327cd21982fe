// temper grade F.jsonl: reads lines with "gold" and "pred" (an extracted answer) or
// "completion" (a model's output: the answer is extracted first), writes each line
// unchanged plus "extracted" (null when nothing was found) and "equal", in order, to
// stdout; the accuracy goes to stderr. Grading is by mathematical equality: 7! counts
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
    sbuf out, val;
    sbuf_init(&out);
    sbuf_init(&val);
    int status = 0;
    while ((n = io_lines_next(&r, &line)) >= 0) {
        size_t k = 0;
        while (k < (size_t)n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == (size_t)n) continue;
        json_doc *d = json_parse(line, (size_t)n, &err);
        if (!d) { status = cli_fail("grade", "%s:%ld: %s", r.path, r.lineno, err.msg); break; }
        json *o = json_root(d);
        json *g = json_get(o, "gold"), *p = json_get(o, "pred"), *c = json_get(o, "completion");
        // a numeric gold is its source text, whole (the parser keeps it NUL-terminated)
        const char *gold = NULL;
        if (g && (g->type == JSON_STRING || g->type == JSON_NUMBER)) gold = g->str;
        if (!gold || o->type != JSON_OBJECT || (!(p && p->type == JSON_STRING) && !(c && c->type == JSON_STRING))) {
            json_doc_free(d);
            status = cli_fail("grade", "%s:%ld: need \"gold\" and a string \"pred\" or \"completion\"", r.path, r.lineno);
            break;
        }
        const char *ans = NULL;
        size_t alen = 0;
        if (p && p->type == JSON_STRING) { ans = p->str; alen = p->len; }
        else {
            size_t s;
            if (math_extract(c->str, c->len, &eo, &s, &alen, NULL)) ans = c->str + s;
        }
        math_verdict v = MATH_MISMATCH;
        sbuf_clear(&out);
        sbuf_clear(&val);
        if (ans) {
            if (task_grade_answer(ans, alen, gold, g->len, &qo, &v, &err)) {
                json_doc_free(d);
                status = cli_fail("grade", "%s:%ld: %s", r.path, r.lineno, err.msg);
                break;
            }
            sbuf_json_str(&val, ans, alen);
        } else {
            none++;
            sbuf_puts(&val, "null");
        }
        int eq = v == MATH_EQUAL;
        total++;
        correct += eq;
        json_line_append(&out, line, (size_t)n, "extracted", val.data);
        sbuf_clear(&val);
        sbuf_put(&val, out.data, out.len);
        sbuf_clear(&out);
        json_line_append(&out, val.data, val.len, "equal", eq ? "true" : "false");
        if (reason) {
            sbuf_clear(&val);
            sbuf_put(&val, out.data, out.len);
            sbuf_clear(&out);
            char q[32];
            snprintf(q, sizeof q, "\"%s\"", ans ? math_verdict_name(v) : "no-answer");
            json_line_append(&out, val.data, val.len, "verdict", q);
        }
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
        json_doc_free(d);
    }
    io_lines_close(&r);
    sbuf_free(&out);
    sbuf_free(&val);
    fflush(stdout);
    if (!status)
        fprintf(stderr, "accuracy: %ld/%ld = %.4f (no answer: %ld)\n", correct, total, total ? (double)correct / total : 0.0, none);
    return status;
}
