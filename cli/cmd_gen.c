// temper sample / temper eval: generation from a model directory with the KV-cached
// sampler (rollout/), grading with the math verifier (reward/).
//
//   temper sample --model DIR --data F.jsonl --n K [--tools none|calculator|python] [--out F]
//       one JSONL line per sample: prompt and completion text and ids, per-token
//       log-probs, the mask of model tokens, tool calls, extracted answer and verdict
//       ("label": true/false, so the file is KTO data as it is; "prompt"/"completion"
//       are TRL's fields).
//   temper eval --model DIR --data gsm8k|math500|F.jsonl --n K [--output-dir D]
//       pass@1 (mean over samples), unbiased pass@k, maj@k, mean completion length,
//       the fraction with no extractable answer, per subject and level (MATH-500);
//       summary.json and samples.jsonl in --output-dir; a progress bar with ETA.
//
// Prompt rows: {"prompt": str | messages, "answer"}, GSM8K {"question", "answer": "... #### n"},
// MATH-500 {"problem", "answer", "subject", "level", "unique_id"}.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "data/builtin.h"
#include "data/data.h"
#include "model/lora.h"
#include "model/model.h"
#include "reward/math_answer.h"
#include "rollout/eval_report.h"
#include "rollout/metrics.h"
#include "rollout/rollout.h"
#include "tokenizer/tokenizer.h"

// ---------------------------------------------------------------- prompt styles

static const char *BOXED_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}.";

// Chain-of-thought exemplars of Wei et al. (2022), as in lm-evaluation-harness gsm8k-cot.
static const char *GSM8K_SHOTS[][2] = {
    {"There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6."},
    {"If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."},
    {"Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39."},
    {"Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8."},
    {"Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9."},
    {"There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29."},
    {"Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33."},
    {"Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8."},
};

// The 4-shot prompt of Minerva (Lewkowycz et al. 2022) for MATH.
static const char *MINERVA_SHOTS[][2] = {
    {"Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
     "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is correct."},
    {"If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct."},
    {"Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final answer is $16$. I hope it is correct."},
    {"If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct."},
};

typedef enum { STYLE_BOXED, STYLE_PLAIN, STYLE_TORA, STYLE_GSM8K_FEWSHOT, STYLE_MINERVA } prompt_style;

static int style_from_name(const char *s) {
    const char *names[] = {"boxed", "plain", "tora", "gsm8k-fewshot", "minerva"};
    for (int i = 0; i < 5; i++) if (!strcmp(s, names[i])) return i;
    return -1;
}

// Stop strings a style needs (few-shot prompts: the next exemplar's header).
static int style_stops(prompt_style st, const char **out) {
    if (st == STYLE_GSM8K_FEWSHOT) { out[0] = "\n\nQ:"; out[1] = "\nQ:"; return 2; }
    if (st == STYLE_MINERVA) { out[0] = "\n\nProblem:"; out[1] = "\nProblem:"; return 2; }
    return 0;
}

// The prompt text of one question.
static int build_prompt(prompt_style st, const tok_chat *chat, const char *q, sbuf *out, tm_error *err) {
    if (st == STYLE_GSM8K_FEWSHOT) {
        for (size_t i = 0; i < sizeof GSM8K_SHOTS / sizeof GSM8K_SHOTS[0]; i++)
            sbuf_printf(out, "Q: %s\nA: %s\n\n", GSM8K_SHOTS[i][0], GSM8K_SHOTS[i][1]);
        sbuf_printf(out, "Q: %s\nA:", q);
        return 0;
    }
    if (st == STYLE_MINERVA) {
        for (size_t i = 0; i < sizeof MINERVA_SHOTS / sizeof MINERVA_SHOTS[0]; i++)
            sbuf_printf(out, "Problem:\n%s\n\nSolution:\n%s\n\n", MINERVA_SHOTS[i][0], MINERVA_SHOTS[i][1]);
        sbuf_printf(out, "Problem:\n%s\n\nSolution:", q);
        return 0;
    }
    sbuf u;
    sbuf_init(&u);
    sbuf_puts(&u, q);
    if (st == STYLE_BOXED) sbuf_puts(&u, BOXED_SUFFIX);
    if (sbuf_check(&u, err)) { sbuf_free(&u); return -1; }
    int rc = 0;
    if (chat) {
        tok_chat_msg m = {"user", u.data, u.len, NULL, 0};
        tok_chat_render r = {0};
        rc = tok_chat_apply(chat, &m, 1, 1, &r, err);
        if (!rc) sbuf_put(out, r.text.data, r.text.len);
        tok_chat_render_free(&r);
    } else {
        sbuf_put(out, u.data, u.len);
        sbuf_puts(out, "\n");
    }
    sbuf_free(&u);
    return rc;
}

// ---------------------------------------------------------------- problems

typedef struct problem {
    char *line;        // the input row (kept for its other fields)
    char *prompt;      // prompt text
    int *ids, len;
    char *gold;        // NULL when the row has none
    char *subject;
    int level;         // -1 when absent
} problem;

static char *json_text(const json *v) {
    if (!v) return NULL;
    if (v->type == JSON_STRING) return strndup(v->str, v->len);
    if (v->type == JSON_NUMBER) return strdup(v->str);
    return NULL;
}

static int load_problems(tok_tokenizer *t, const char *path, prompt_style st, const tok_chat *chat, int limit,
                         int vocab, problem **out, int *np, tm_error *err) {
    io_lines r;
    if (io_lines_open(&r, path, err)) return -1;
    char *line;
    long len;
    int n = 0, cap = 0, rc = 0;
    problem *ps = NULL;
    while ((limit <= 0 || n < limit) && (len = io_lines_next(&r, &line)) >= 0) {
        size_t a = 0;
        while (a < (size_t)len && (line[a] == ' ' || line[a] == '\t' || line[a] == '\r')) a++;
        if (a == (size_t)len) continue;
        json_doc *d = json_parse(line, (size_t)len, err);
        if (!d) { rc = tm_fail_prefix(err, "%s:%ld", path, r.lineno); break; }
        json *row = json_root(d);
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            problem *np2 = realloc(ps, sizeof *ps * (size_t)cap);
            if (!np2) { json_doc_free(d); rc = tm_fail(err, "out of memory"); break; }
            ps = np2;
        }
        problem *p = &ps[n];
        memset(p, 0, sizeof *p);
        p->level = -1;
        const json *q = json_get(row, "prompt"), *ans = json_get(row, "answer");
        int gsm = 0;
        if (!q && (q = json_get(row, "question"))) gsm = 1;
        if (!q) q = json_get(row, "problem");
        sbuf pt;
        sbuf_init(&pt);
        if (!q) rc = tm_fail(err, "%s:%ld: missing field \"prompt\" (or \"question\" / \"problem\")", path, r.lineno);
        else if (q->type == JSON_STRING) rc = build_prompt(st, chat, q->str, &pt, err);
        else if (q->type == JSON_ARRAY && chat) {
            tok_chat_msg *m = calloc((size_t)q->n + 1, sizeof *m);
            if (!m) rc = tm_fail(err, "out of memory");
            for (int i = 0; i < q->n && m; i++) {
                const char *role = json_get_str(&q->items[i], "role", NULL);
                const json *c = json_get(&q->items[i], "content");
                if (!role || !c || c->type != JSON_STRING) { rc = tm_fail(err, "%s:%ld: prompt[%d] needs role and content", path, r.lineno, i); break; }
                m[i] = (tok_chat_msg){role, c->str, c->len, NULL, 0};
            }
            tok_chat_render cr = {0};
            if (!rc && m && !(rc = tok_chat_apply(chat, m, q->n, 1, &cr, err))) sbuf_put(&pt, cr.text.data, cr.text.len);
            tok_chat_render_free(&cr);
            free(m);
        } else rc = tm_fail(err, "%s:%ld: \"prompt\" must be a string%s", path, r.lineno, chat ? " or a message list" : "");
        if (!rc && ans) {
            if (gsm && ans->type == JSON_STRING) p->gold = data_gsm8k_answer(ans->str);
            else p->gold = json_text(ans);
            if (!p->gold && (gsm ? ans->type == JSON_STRING && strstr(ans->str, "#### ") : ans->type == JSON_STRING || ans->type == JSON_NUMBER))
                rc = tm_fail(err, "out of memory");
        }
        p->subject = json_text(json_get(row, "subject"));
        const json *sj = json_get(row, "subject");
        if (!rc && !p->subject && sj && (sj->type == JSON_STRING || sj->type == JSON_NUMBER)) rc = tm_fail(err, "out of memory");
        const json *lv = json_get(row, "level");
        if (lv && json_is_int(lv)) p->level = (int)lv->num;
        else if (lv && lv->type == JSON_STRING) { const char *s = strpbrk(lv->str, "0123456789"); if (s) p->level = atoi(s); }
        json_doc_free(d);
        if (!rc) rc = sbuf_check(&pt, err);
        if (!rc) {
            tok_ids ids = {0};
            rc = tok_encode(t, pt.data ? pt.data : "", pt.len, 0, &ids, err);
            if (!rc && ids.n == 0) rc = tm_fail(err, "%s:%ld: empty prompt", path, r.lineno);
            for (size_t i = 0; !rc && i < ids.n; i++)
                if (ids.v[i] >= vocab) rc = tm_fail(err, "token id %d is outside the model's vocabulary (%d): tokenizer and model do not match", ids.v[i], vocab);
            p->ids = ids.v;
            p->len = (int)ids.n;
            p->prompt = pt.data ? strdup(pt.data) : strdup("");
            p->line = strndup(line, (size_t)len);
            if (!rc && (!p->prompt || !p->line)) rc = tm_fail(err, "out of memory");
        }
        sbuf_free(&pt);
        n++;
        if (rc) break;
    }
    io_lines_close(&r);
    *out = ps;
    *np = n;
    return rc;
}

static void free_problems(problem *ps, int n) {
    for (int i = 0; i < n; i++) { free(ps[i].line); free(ps[i].prompt); free(ps[i].ids); free(ps[i].gold); free(ps[i].subject); }
    free(ps);
}

// ---------------------------------------------------------------- the run

typedef struct graded {
    char *completion;
    char *extracted;   // NULL: no answer
    int correct;
} graded;

typedef struct run {
    const char *cmd;
    tok_tokenizer *t;
    problem *ps;
    int np, n, tool, save_ids;
    math_extract_opts eo;
    math_equal_opts qo;
    rollout_traj *trajs;
    graded *gr;
    int *done;
    int next_write;
    FILE *out;
    progress pg;
    long finished, correct;
    int failed;
    tm_error err;
} run;

static void put_int_array(sbuf *b, const char *key, const int *v, int n) {
    sbuf_printf(b, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_printf(b, i ? ", %d" : "%d", v[i]);
    sbuf_puts(b, "]");
}

static void write_group(run *R, int g) {
    problem *p = &R->ps[g];
    sbuf b;
    sbuf_init(&b);
    for (int s = 0; s < R->n; s++) {
        rollout_traj *tr = &R->trajs[(size_t)g * R->n + s];
        graded *gd = &R->gr[(size_t)g * R->n + s];
        sbuf_clear(&b);
        sbuf_printf(&b, "{\"index\": %d, \"sample\": %d, \"prompt\": ", g, s);
        sbuf_json_str(&b, p->prompt, strlen(p->prompt));
        sbuf_puts(&b, ", \"completion\": ");
        sbuf_json_str(&b, gd->completion, strlen(gd->completion));
        sbuf_puts(&b, ", \"answer\": ");
        if (p->gold) sbuf_json_str(&b, p->gold, strlen(p->gold)); else sbuf_puts(&b, "null");
        sbuf_puts(&b, ", \"extracted\": ");
        if (gd->extracted) sbuf_json_str(&b, gd->extracted, strlen(gd->extracted)); else sbuf_puts(&b, "null");
        if (p->gold) sbuf_printf(&b, ", \"correct\": %s, \"label\": %s", gd->correct ? "true" : "false", gd->correct ? "true" : "false");
        if (p->subject) { sbuf_puts(&b, ", \"subject\": "); sbuf_json_str(&b, p->subject, strlen(p->subject)); }
        if (p->level >= 0) sbuf_printf(&b, ", \"level\": %d", p->level);
        sbuf_printf(&b, ", \"finish_reason\": \"%s\", \"num_tokens\": %d", rollout_finish_name(tr->finish), tr->len);
        if (R->tool != ROLLOUT_TOOL_NONE) {
            sbuf_puts(&b, ", \"tool_calls\": [");
            for (int c = 0; c < tr->ncalls; c++) {
                rollout_call *cl = &tr->calls[c];
                sbuf_puts(&b, c ? ", {\"code\": " : "{\"code\": ");
                sbuf_json_str(&b, cl->code ? cl->code : "", cl->code ? strlen(cl->code) : 0);
                sbuf_puts(&b, ", \"output\": ");
                sbuf_json_str(&b, cl->output ? cl->output : "", cl->output ? strlen(cl->output) : 0);
                sbuf_printf(&b, ", \"status\": %d, \"start\": %d, \"len\": %d}", cl->status, cl->start, cl->len);
            }
            sbuf_puts(&b, "]");
        }
        if (R->save_ids) {
            put_int_array(&b, "prompt_input_ids", p->ids, p->len);
            put_int_array(&b, "completion_input_ids", tr->ids, tr->len);
            sbuf_puts(&b, ", \"completion_logprobs\": [");
            for (int i = 0; i < tr->len; i++) { if (i) sbuf_puts(&b, ", "); sbuf_json_float(&b, tr->logp[i]); }
            sbuf_puts(&b, "]");
            if (R->tool != ROLLOUT_TOOL_NONE) {
                sbuf_puts(&b, ", \"completion_mask\": [");
                for (int i = 0; i < tr->len; i++) sbuf_puts(&b, i ? (tr->mask[i] ? ", 1" : ", 0") : (tr->mask[i] ? "1" : "0"));
                sbuf_puts(&b, "]");
            }
        }
        sbuf_puts(&b, "}\n");
        if (sbuf_check(&b, &R->err)) { R->failed = 1; break; }
        fputs(b.data, R->out);
    }
    sbuf_free(&b);
    fflush(R->out);
}

static void on_group(void *ud, int g, rollout_traj *trajs) {
    run *R = ud;
    problem *p = &R->ps[g];
    for (int s = 0; s < R->n; s++) {
        rollout_traj *tr = &trajs[s];
        graded *gd = &R->gr[(size_t)g * R->n + s];
        sbuf txt;
        sbuf_init(&txt);
        tm_error e;
        if (tok_decode(R->t, tr->ids, (size_t)tr->len, 1, &txt, &e)) { R->failed = 1; snprintf(R->err.msg, sizeof R->err.msg, "%s", e.msg); }
        gd->completion = txt.data ? txt.data : strdup("");
        if (!gd->completion) { R->failed = 1; snprintf(R->err.msg, sizeof R->err.msg, "out of memory"); return; }
        size_t st, al;
        if (math_extract(gd->completion, strlen(gd->completion), &R->eo, &st, &al, NULL) &&
            !(gd->extracted = strndup(gd->completion + st, al))) {
            R->failed = 1;
            snprintf(R->err.msg, sizeof R->err.msg, "out of memory");
            return;
        }
        gd->correct = gd->extracted && p->gold && math_answer_equal(gd->extracted, p->gold, &R->qo);
        R->correct += gd->correct;
    }
    R->done[g] = 1;
    R->finished += R->n;
    while (R->next_write < R->np && R->done[R->next_write]) write_group(R, R->next_write++);
    progress_set_extra(&R->pg, "acc %.1f%%", 100.0 * R->correct / (double)R->finished);
    progress_update(&R->pg, R->finished);
}

// Majority-vote grouping: b joins a's group when the verifier says b equals a.
static int answers_equal(const char *a, const char *b, void *ud) { return math_answer_equal(b, a, ud); }

// ---------------------------------------------------------------- shared command

typedef struct gen_args {
    const char *model_dir, *data, *tools, *style, *chat_name, *stop, *stop_ids, *extract, *out, *output_dir, *from_samples;
    const char *base_model;  // --base-model: the base of an adapter --model (model/lora.h)
    int n, top_k, max_new, seed, batch, max_turns, limit, no_chat, save_ids, chunk, ignore_eos, allow_uneval;
    double temperature, top_p, min_p, tool_timeout;
} gen_args;

static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && r[1] == 'n') { *w++ = '\n'; r++; }
        else if (*r == '\\' && r[1] == 't') { *w++ = '\t'; r++; }
        else *w++ = *r;
    }
    *w = 0;
}

static int gen_main(const char *cmd, gen_args *A, int is_eval) {
    tm_error err;
    model m;
    if (!A->model_dir || !A->data) return cli_fail(cmd, "--model and --data are required (see temper %s --help)", cmd) + 1;
    int st = style_from_name(A->style);
    if (st < 0) return cli_fail(cmd, "unknown --prompt-style '%s' (boxed, plain, tora, gsm8k-fewshot, minerva)", A->style) + 1;
    if (!A->tools) A->tools = st == STYLE_TORA ? "python" : "none";
    int tool = rollout_tool_from_name(A->tools);
    if (tool < 0) return cli_fail(cmd, "unknown --tools '%s' (none, calculator, python)", A->tools) + 1;
    if (A->n < 1 || A->max_new < 1 || A->batch < 1 || A->max_turns < 1)
        return cli_fail(cmd, "--n, --max-new-tokens, --batch and --max-turns must be >= 1") + 1;
    sample_params sp = {A->temperature, A->top_p, A->top_k, A->min_p};
    if (sample_params_check(&sp, &err)) return cli_fail(cmd, "%s", err.msg) + 1;  // before any work
    char pathbuf[4096];
    const char *path = data_builtin_path(A->data, pathbuf, sizeof pathbuf, &err);
    if (!path) return cli_fail(cmd, "%s", err.msg);
    lora_set_base_override(A->base_model);
    if (model_load(&m, A->model_dir, &err)) return cli_fail(cmd, "%s", err.msg);
    // a PEFT adapter directory may come without tokenizer files: then its base's
    tok_tokenizer *t = tok_load(m.lora && !lora_has_tokenizer(A->model_dir) ? m.source_dir : A->model_dir, &err);
    if (!t) { model_free(&m); return cli_fail(cmd, "%s", err.msg); }
    tok_chat chat;
    int have_chat = 0;
    if (!A->no_chat && st != STYLE_GSM8K_FEWSHOT && st != STYLE_MINERVA) {
        if (tok_chat_for(t, A->chat_name, &chat, &err) == 0) have_chat = 1;
        else if (A->chat_name) { tok_free(t); model_free(&m); return cli_fail(cmd, "%s", err.msg); }
    }
    problem *ps = NULL;
    int np = 0, status = 0;
    if (load_problems(t, path, (prompt_style)st, have_chat ? &chat : NULL, A->limit, m.cfg.vocab, &ps, &np, &err)) {
        status = cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    if (np == 0) { status = cli_fail(cmd, "%s: no prompts", path); goto out; }

    // stops: EOS ids and end-of-turn tokens; the style's and the user's strings
    int stop_ids[64];
    int nsid = tok_stop_ids(t, m.cfg.eos_token_id, m.cfg.vocab, stop_ids, 16);
    if (A->stop_ids) {
        for (char *s = (char *)A->stop_ids; *s && nsid < 60;) {
            char *e;
            long v = strtol(s, &e, 10);
            if (e == s || v < 0 || v >= m.cfg.vocab) { status = cli_fail(cmd, "bad --stop-token-ids '%s'", A->stop_ids); goto out; }
            stop_ids[nsid++] = (int)v;
            s = *e == ',' ? e + 1 : e;
        }
    }
    const char *stops[8];
    int nss = style_stops((prompt_style)st, stops);
    char *user_stop = A->stop ? strdup(A->stop) : NULL;
    if (A->stop && !user_stop) { status = cli_fail(cmd, "out of memory"); goto out; }
    if (user_stop) { unescape(user_stop); stops[nss++] = user_stop; }
    if (tool == ROLLOUT_TOOL_PYTHON) stops[nss++] = "```output";

    rollout_opts o;
    rollout_opts_default(&o);
    o.n = A->n;
    o.batch = A->batch;
    o.max_new_tokens = A->max_new;
    o.prefill_chunk = A->chunk;
    o.sp.temperature = A->temperature;
    o.sp.top_p = A->top_p;
    o.sp.top_k = A->top_k;
    o.sp.min_p = A->min_p;
    o.seed = (uint64_t)A->seed;
    o.stop_ids = stop_ids;
    o.nstop_ids = A->ignore_eos ? 0 : nsid;
    o.stop_strs = stops;
    o.nstop_strs = nss;
    o.tool = (rollout_tool)tool;
    o.max_turns = A->max_turns;
    o.py.timeout_s = A->tool_timeout;
    char *pre = NULL, *suf = NULL;
    if (tool == ROLLOUT_TOOL_PYTHON && have_chat && rollout_obs_wrapper(&chat, &pre, &suf, &err)) {
        status = cli_fail(cmd, "%s", err.msg);
        free(user_stop);
        goto out;
    }
    o.obs_prefix = pre;
    o.obs_suffix = suf;

    run R;
    memset(&R, 0, sizeof R);
    R.cmd = cmd;
    R.t = t;
    R.ps = ps;
    R.np = np;
    R.n = A->n;
    R.tool = tool;
    R.save_ids = A->save_ids || !is_eval;
    if (math_extract_opts_parse(&R.eo, A->extract)) { status = cli_fail(cmd, "bad --extract '%s'", A->extract) + 1; goto out2; }
    math_equal_opts_default(&R.qo);
    R.qo.allow_unevaluated = A->allow_uneval;  // eval: mathematical equality; sample (rewards): strict
    R.trajs = calloc((size_t)np * A->n, sizeof *R.trajs);
    R.gr = calloc((size_t)np * A->n, sizeof *R.gr);
    R.done = calloc((size_t)np, sizeof *R.done);
    if (!R.trajs || !R.gr || !R.done) { status = cli_fail(cmd, "out of memory for %d x %d samples", np, A->n); goto out2; }
    char outpath[1200];
    if (is_eval) {
        if (A->output_dir) {
            if (io_mkdirs(A->output_dir, &err)) { status = cli_fail(cmd, "%s", err.msg); goto out2; }
            R.out = fopen(io_join(outpath, sizeof outpath, A->output_dir, "samples.jsonl"), "w");
        } else R.out = fopen("/dev/null", "w");
    } else R.out = !A->out || !strcmp(A->out, "-") ? stdout : fopen(A->out, "w");
    if (!R.out) { status = cli_fail(cmd, "cannot write the output"); goto out2; }
    int **pp = malloc(sizeof(int *) * (size_t)np), *pl = malloc(sizeof(int) * (size_t)np);
    if (!pp || !pl) { free(pp); free(pl); status = cli_fail(cmd, "out of memory"); goto out3; }
    for (int i = 0; i < np; i++) pp[i] = ps[i].ids, pl[i] = ps[i].len;
    o.on_group = on_group;
    o.ud = &R;
    rollout_backend be;
    rollout_model_ctx mctx;
    rollout_backend_model(&be, &mctx, &m);
    progress_start(&R.pg, cmd, (int64_t)np * A->n, "samples");
    double t0 = now_seconds();
    int rc = rollout_run(&be, t, (const int *const *)pp, pl, np, &o, R.trajs, &err);
    double secs = now_seconds() - t0;
    progress_finish(&R.pg);
    free(pp);
    free(pl);
    if (rc) { status = cli_fail(cmd, "%s", err.msg); goto out3; }
    if (R.failed) { status = cli_fail(cmd, "%s", R.err.msg); goto out3; }

    // metrics
    long gen_tok = 0;
    eval_problem *ep = calloc((size_t)np, sizeof *ep);
    eval_sample *es = calloc((size_t)np * A->n, sizeof *es);
    if (!ep || !es) { free(ep); free(es); status = cli_fail(cmd, "out of memory"); goto out3; }
    for (int g = 0; g < np; g++) {
        ep[g] = (eval_problem){ps[g].gold, ps[g].subject, ps[g].level};
        for (int s = 0; s < A->n; s++) {
            size_t k = (size_t)g * A->n + s;
            es[k] = (eval_sample){R.gr[k].correct, R.gr[k].extracted, R.trajs[k].len};
            for (int i = 0; i < R.trajs[k].len; i++) gen_tok += R.trajs[k].mask[i];
        }
    }
    sbuf js;
    sbuf_init(&js);
    sbuf_puts(&js, "{");
    rc = eval_report_json(ep, np, A->n, es, answers_equal, &R.qo, &js, &err);
    double pass1 = 0;
    int graded_np = 0;
    for (int g = 0; g < np; g++)
        if (ps[g].gold) {
            graded_np++;
            for (int s = 0; s < A->n; s++) pass1 += (double)es[(size_t)g * A->n + s].correct / A->n;
        }
    free(ep);
    free(es);
    if (rc) { sbuf_free(&js); status = cli_fail(cmd, "%s", err.msg); goto out3; }
    sbuf_puts(&js, ",\n  \"seconds\": ");
    sbuf_json_float(&js, secs);
    sbuf_puts(&js, ",\n  \"generated_tokens_per_second\": ");
    sbuf_json_float(&js, secs > 0 ? gen_tok / secs : 0.0);
    sbuf_puts(&js, ",\n  \"settings\": {\"model\": ");
    sbuf_json_str(&js, A->model_dir, strlen(A->model_dir));
    sbuf_puts(&js, ", \"data\": ");
    sbuf_json_str(&js, path, strlen(path));
    sbuf_printf(&js, ", \"n\": %d, \"temperature\": ", A->n);
    sbuf_json_float(&js, A->temperature);
    sbuf_puts(&js, ", \"top_p\": ");
    sbuf_json_float(&js, A->top_p);
    sbuf_printf(&js, ", \"top_k\": %d, \"min_p\": ", A->top_k);
    sbuf_json_float(&js, A->min_p);
    sbuf_printf(&js, ", \"max_new_tokens\": %d, \"seed\": %d, \"prompt_style\": \"%s\", \"tools\": \"%s\", \"max_turns\": %d, "
                     "\"chat_template\": \"%s\", \"limit\": %d, \"extract\": ",
                A->max_new, A->seed, A->style, A->tools, A->max_turns, have_chat ? tok_chat_family_name(chat.family) : "none", A->limit);
    sbuf_json_str(&js, A->extract, strlen(A->extract));
    sbuf_puts(&js, "}\n}\n");
    if (sbuf_check(&js, &err)) { sbuf_free(&js); status = cli_fail(cmd, "%s", err.msg); goto out3; }
    if (is_eval) {
        fprintf(stderr, "%s", js.data);
        if (A->output_dir &&
            io_write_file_atomic(io_join(outpath, sizeof outpath, A->output_dir, "summary.json"), js.data, js.len, &err))
            status = cli_fail(cmd, "%s", err.msg);
    } else {
        fprintf(stderr, "temper sample: %ld samples of %d prompts, %.1f%% correct, %.0f tok/s\n", (long)np * A->n, np,
                graded_np ? 100.0 * pass1 / graded_np : 0.0, secs > 0 ? gen_tok / secs : 0.0);
    }
    sbuf_free(&js);
out3:
    if (R.out && R.out != stdout) fclose(R.out);
out2:
    for (long i = 0; i < (long)np * A->n; i++) {
        if (R.trajs) rollout_traj_free(&R.trajs[i]);
        if (R.gr) { free(R.gr[i].completion); free(R.gr[i].extracted); }
    }
    free(R.trajs);
    free(R.gr);
    free(R.done);
    free(pre);
    free(suf);
    free(user_stop);
out:
    free_problems(ps, np);
    tok_free(t);
    model_free(&m);
    return status;
}

// `temper eval --from-samples F`: the summary of an earlier eval's samples.jsonl,
// regraded by today's verifier (each line's completion against its answer).
static int eval_from_samples(const char *cmd, const gen_args *A) {
    tm_error err;
    io_lines r;
    if (io_lines_open(&r, A->from_samples, &err)) return cli_fail(cmd, "%s", err.msg);
    math_extract_opts eo;
    math_equal_opts qo;
    if (math_extract_opts_parse(&eo, A->extract)) { io_lines_close(&r); return cli_fail(cmd, "bad --extract '%s'", A->extract) + 1; }
    math_equal_opts_default(&qo);
    qo.allow_unevaluated = A->allow_uneval;
    typedef struct { int g, s, ntok, level; char *gold, *subject, *extracted; int correct; } row;
    row *rows = NULL;
    int nr = 0, cap = 0, np = 0, n = 0, status = 0;
    char *line;
    long len;
    while ((len = io_lines_next(&r, &line)) >= 0) {
        if (len == 0) continue;
        json_doc *d = json_parse(line, (size_t)len, &err);
        if (!d) { status = cli_fail(cmd, "%s:%ld: %s", A->from_samples, r.lineno, err.msg); break; }
        const json *o = json_root(d), *gold = json_get(o, "answer");
        const char *comp = json_get_str(o, "completion", NULL), *subj = json_get_str(o, "subject", NULL);
        int g = (int)json_get_int(o, "index", -1), sm = (int)json_get_int(o, "sample", -1);
        if (!comp || g < 0 || sm < 0 || g > 10000000 || sm > 100000) {
            json_doc_free(d);
            status = cli_fail(cmd, "%s:%ld: a samples.jsonl line needs index, sample and completion", A->from_samples, r.lineno);
            break;
        }
        if (nr == cap) {
            row *nw = realloc(rows, sizeof *rows * (size_t)(cap = cap ? 2 * cap : 256));
            if (!nw) { json_doc_free(d); status = cli_fail(cmd, "out of memory"); break; }
            rows = nw;
        }
        row *w = &rows[nr++];
        memset(w, 0, sizeof *w);
        w->g = g, w->s = sm, w->level = (int)json_get_int(o, "level", -1);
        w->ntok = (int)json_get_int(o, "num_tokens", 0);
        w->gold = gold && gold->type == JSON_STRING ? strndup(gold->str, gold->len) : gold && gold->type == JSON_NUMBER ? strdup(gold->str) : NULL;
        w->subject = subj ? strdup(subj) : NULL;
        size_t st, al;
        if (math_extract(comp, strlen(comp), &eo, &st, &al, NULL)) w->extracted = strndup(comp + st, al);
        w->correct = w->extracted && w->gold && math_answer_equal(w->extracted, w->gold, &qo);
        json_doc_free(d);
        if (g + 1 > np) np = g + 1;
        if (sm + 1 > n) n = sm + 1;
    }
    io_lines_close(&r);
    eval_problem *ep = NULL;
    eval_sample *es = NULL;
    char *have = NULL;
    if (!status && nr == 0) status = cli_fail(cmd, "%s: no samples", A->from_samples);
    if (!status) {
        ep = calloc((size_t)np, sizeof *ep), es = calloc((size_t)np * n, sizeof *es), have = calloc((size_t)np * n, 1);
        if (!ep || !es || !have) status = cli_fail(cmd, "out of memory");
    }
    for (int i = 0; !status && i < nr; i++) {
        size_t k = (size_t)rows[i].g * n + rows[i].s;
        if (have[k]) { status = cli_fail(cmd, "%s: index %d sample %d appears twice", A->from_samples, rows[i].g, rows[i].s); break; }
        have[k] = 1;
        es[k] = (eval_sample){rows[i].correct, rows[i].extracted, rows[i].ntok};
        ep[rows[i].g] = (eval_problem){rows[i].gold, rows[i].subject, rows[i].level};
    }
    for (size_t k = 0; !status && k < (size_t)np * n; k++)
        if (!have[k]) status = cli_fail(cmd, "%s: index %zu has no sample %zu (every problem needs the same n samples)",
                                        A->from_samples, k / (size_t)n, k % (size_t)n);
    if (!status) {
        sbuf js;
        sbuf_init(&js);
        sbuf_puts(&js, "{");
        if (eval_report_json(ep, np, n, es, answers_equal, &qo, &js, &err)) status = cli_fail(cmd, "%s", err.msg);
        else {
            sbuf_puts(&js, ",\n  \"settings\": {\"from_samples\": ");
            sbuf_json_str(&js, A->from_samples, strlen(A->from_samples));
            sbuf_puts(&js, ", \"extract\": ");
            sbuf_json_str(&js, A->extract, strlen(A->extract));
            sbuf_puts(&js, "}\n}\n");
            char outpath[1200];
            fprintf(stderr, "%s", js.data);
            if (A->output_dir && (io_mkdirs(A->output_dir, &err) ||
                                  io_write_file_atomic(io_join(outpath, sizeof outpath, A->output_dir, "summary.json"), js.data, js.len, &err)))
                status = cli_fail(cmd, "%s", err.msg);
        }
        sbuf_free(&js);
    }
    for (int i = 0; i < nr; i++) free(rows[i].gold), free(rows[i].subject), free(rows[i].extracted);
    free(rows), free(ep), free(es), free(have);
    return status;
}

#define GEN_FLAGS(A)                                                                                                    \
    {"model", FLAG_STR, &A.model_dir, "model directory (Hugging Face layout, with tokenizer files), or a PEFT adapter directory"}, \
    {"base-model", FLAG_STR, &A.base_model, "the base of an adapter --model, instead of its base_model_name_or_path"}, \
    {"data", FLAG_STR, &A.data, "JSONL of prompts ({prompt, answer}, GSM8K, MATH-500 rows), or gsm8k | math500"},     \
    {"n", FLAG_INT, &A.n, "samples per prompt"},                                                                       \
    {"temperature", FLAG_FLOAT, &A.temperature, "sampling temperature (0 = greedy)"},                                 \
    {"top-p", FLAG_FLOAT, &A.top_p, "nucleus sampling mass (1 = off)"},                                                \
    {"top-k", FLAG_INT, &A.top_k, "keep the k most likely tokens (0 = off)"},                                          \
    {"min-p", FLAG_FLOAT, &A.min_p, "keep tokens with p >= min_p * p_max (0 = off)"},                                   \
    {"max-new-tokens", FLAG_INT, &A.max_new, "tokens after the prompt (model and tool tokens together)"},              \
    {"seed", FLAG_INT, &A.seed, "random seed (sample s of prompt i has its own stream)"},                              \
    {"batch", FLAG_INT, &A.batch, "sequences decoded at once (KV cache slots)"},                                       \
    {"prefill-chunk", FLAG_INT, &A.chunk, "prompt tokens prefilled per step next to the decoding rows"},                \
    {"stop", FLAG_STR, &A.stop, "a stop string (\\n for newline)"},                                                    \
    {"stop-token-ids", FLAG_STR, &A.stop_ids, "extra stop token ids, comma separated (EOS and end-of-turn are always)"}, \
    {"tools", FLAG_STR, &A.tools, "none | calculator | python (default python for --prompt-style tora, else none)"},   \
    {"max-turns", FLAG_INT, &A.max_turns, "python tool calls per trajectory"},                                         \
    {"tool-timeout", FLAG_FLOAT, &A.tool_timeout, "seconds per python call"},                                          \
    {"prompt-style", FLAG_STR, &A.style, "boxed | plain | tora | gsm8k-fewshot | minerva"},                            \
    {"chat-template", FLAG_STR, &A.chat_name, "override the tokenizer's chat template (chatml, qwen3, llama3, gemma, ...)"}, \
    {"no-chat-template", FLAG_BOOL, &A.no_chat, "prompts as plain text even if the tokenizer has a template"},          \
    {"extract", FLAG_STR, &A.extract, "answer extractors in order: boxed,answer,hash,tool,last"},                       \
    {"limit", FLAG_INT, &A.limit, "only the first N prompts"},                                                         \
    {"ignore-eos", FLAG_BOOL, &A.ignore_eos, "do not stop at EOS / end-of-turn tokens (benchmarks)"}

static void gen_defaults(gen_args *A, int is_eval) {
    memset(A, 0, sizeof *A);
    A->n = 1;
    A->temperature = is_eval ? 0.6 : 1.0;
    A->top_p = 1.0;
    A->max_new = 1024;
    A->batch = 16;
    A->chunk = 256;
    A->max_turns = 6;
    A->tool_timeout = 10.0;
    A->style = "boxed";
    A->extract = "boxed,answer,hash,tool";
}

int cmd_sample(int argc, char **argv) {
    gen_args A;
    gen_defaults(&A, 0);
    A.out = "-";
    flag flags[] = {GEN_FLAGS(A), {"out", FLAG_STR, &A.out, "output JSONL (- for stdout)"}};
    int rc = flags_parse("sample", "temper sample --model DIR --data F.jsonl --n K [flags]", flags,
                         sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    return gen_main("sample", &A, 0);
}

int cmd_eval(int argc, char **argv) {
    gen_args A;
    gen_defaults(&A, 1);
    A.allow_uneval = 1;
    flag flags[] = {GEN_FLAGS(A), {"output-dir", FLAG_STR, &A.output_dir, "write summary.json and samples.jsonl here"},
                    {"allow-unevaluated", FLAG_BOOL, &A.allow_uneval,
                     "grade by mathematical equality: 7! counts as 5040 (default true; =false refuses it as RL rewards do)"},
                    {"save-ids", FLAG_BOOL, &A.save_ids, "samples.jsonl also gets token ids and log-probs"},
                    {"from-samples", FLAG_STR, &A.from_samples, "no sampling: regrade an earlier samples.jsonl and summarize it"}};
    int rc = flags_parse("eval", "temper eval --model DIR --data gsm8k|math500|F.jsonl --n K [flags]", flags,
                         sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (A.from_samples) return eval_from_samples("eval", &A);
    return gen_main("eval", &A, 1);
}
