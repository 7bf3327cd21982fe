// Tests for task/: the one problem loader (and that data/'s prompts format agrees with
// it on the two points where they used to differ: the trailing newline of a plain
// prompt, and a missing or numeric answer), prompt styles, grade(completion, gold),
// and the verifier's answer classes that `temper pairs` uses.
#include <string.h>
#include "data/data.h"
#include "task/grade.h"
#include "task/pairs.h"
#include "task/problems.h"
#include "task/prompt.h"
#include "test.h"
#include "tok_fixture.h"

static tok_tokenizer *T;
static tok_chat CHAT;

static int problem(const char *line, const task_prompt_opts *o, task_problem *p, tm_error *err) {
    json_doc *d = json_parse(line, strlen(line), err);
    if (!d) return -1;
    int rc = task_problem_from_json(T, json_root(d), o, p, err);
    json_doc_free(d);
    return rc;
}

static int example(const char *line, const data_opts *o, data_example *ex, tm_error *err) {
    json_doc *d = json_parse(line, strlen(line), err);
    if (!d) return -1;
    int rc = data_example_from_json(T, json_root(d), o, ex, err);
    json_doc_free(d);
    return rc;
}

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && !memcmp(a, b, sizeof *a * (size_t)na);
}

// data/'s prompts format and the problem loader give the same ids and gold.
static int agree(const char *line, const tok_chat *chat, tm_error *err) {
    task_prompt_opts po = {TASK_STYLE_PLAIN, NULL, chat, 0};
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_PROMPTS;
    o.chat = chat;
    task_problem p;
    data_example ex;
    if (problem(line, &po, &p, err)) return 0;
    if (example(line, &o, &ex, err)) { task_problem_free(&p); return 0; }
    int ok = same_ids(p.ids, p.len, ex.seq[0].ids, ex.prompt_len) &&
             ((!p.answer && !ex.answer) || (p.answer && ex.answer && !strcmp(p.answer, ex.answer)));
    task_problem_free(&p);
    data_example_free(&ex);
    return ok;
}

static void test_loader(void) {
    tm_error err = {0};
    task_prompt_opts plain = {TASK_STYLE_PLAIN, NULL, NULL, 0}, chat = {TASK_STYLE_PLAIN, NULL, &CHAT, 0};
    task_problem p;

    // old disagreement 1: sample/eval added "\n" to a plain prompt without a template
    CHECK(problem("{\"prompt\": \"hello world\", \"answer\": \"1\"}", &plain, &p, &err) == 0 && !strcmp(p.text, "hello world"),
          "plain prompt without a chat template: the text itself, no \"\\n\" added (got %s)", p.text ? p.text : err.msg);
    CHECK(p.prompt_json && !strcmp(p.prompt_json, "\"hello world\""), "prompt_json is the user content as a JSON string");
    task_problem_free(&p);
    CHECK(agree("{\"prompt\": \"hello world\", \"answer\": \"1\"}", NULL, &err), "plain: prompts format ids == loader ids (%s)", err.msg);
    CHECK(agree("{\"prompt\": \"hello world\", \"answer\": \"1\"}", &CHAT, &err), "chat: prompts format ids == loader ids (%s)", err.msg);
    CHECK(problem("{\"prompt\": \"Q\", \"answer\": \"1\"}", &chat, &p, &err) == 0 &&
              !strcmp(p.text, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"),
          "with a chat template: one user message and the generation prompt");
    task_problem_free(&p);

    // old disagreement 2: data refused a missing or numeric answer, sample took them
    CHECK(problem("{\"prompt\": \"hello\", \"answer\": 42}", &plain, &p, &err) == 0 && p.answer && !strcmp(p.answer, "42"),
          "a numeric answer is its source text");
    task_problem_free(&p);
    CHECK(problem("{\"prompt\": \"hello\", \"answer\": 1.50}", &plain, &p, &err) == 0 && p.answer && !strcmp(p.answer, "1.50"),
          "a numeric answer keeps its digits (1.50)");
    task_problem_free(&p);
    CHECK(agree("{\"prompt\": \"hello\", \"answer\": 42}", NULL, &err), "numeric answer: prompts format agrees (%s)", err.msg);
    CHECK(problem("{\"prompt\": \"hello\"}", &plain, &p, &err) == 0 && !p.answer, "a missing answer loads, ungraded");
    task_problem_free(&p);
    CHECK(agree("{\"prompt\": \"hello\"}", NULL, &err), "missing answer: prompts format agrees (%s)", err.msg);
    CHECK(problem("{\"prompt\": \"hello\", \"answer\": [1]}", &plain, &p, &err) == -1 && strstr(err.msg, "answer"),
          "an answer that is neither string nor number is an error (%s)", err.msg);

    CHECK(problem("{\"question\": \"How many?\", \"answer\": \"so 1,000 + 5\\n#### 1,005\"}", &plain, &p, &err) == 0 &&
              !strcmp(p.answer, "1005") && p.solution && !strcmp(p.solution, "so 1,000 + 5\n#### 1,005"),
          "GSM8K: gold after ####, commas removed; the whole answer is the reference solution");
    task_problem_free(&p);
    CHECK(problem("{\"problem\": \"Find x.\", \"solution\": \"x = \\\\boxed{2}\", \"answer\": \"2\", \"subject\": \"Algebra\", \"level\": \"Level 3\"}",
                  &plain, &p, &err) == 0 && !strcmp(p.solution, "x = \\boxed{2}") && !strcmp(p.subject, "Algebra") && p.level == 3,
          "MATH: solution, subject, level");
    task_problem_free(&p);
    int rc = problem("{\"prompt\": [{\"role\": \"user\", \"content\": \"Q\"}], \"answer\": \"1\"}", &chat, &p, &err);
    CHECK(rc == 0 &&
              !strcmp(p.prompt_json, "[{\"role\": \"user\", \"content\": \"Q\"}]") && agree("{\"prompt\": [{\"role\": \"user\", \"content\": \"Q\"}]}", &CHAT, &err),
          "message-list prompt: rendered by the template, kept as a list");
    task_problem_free(&p);
    CHECK(problem("{\"prompt\": [{\"role\": \"user\", \"content\": \"Q\"}]}", &plain, &p, &err) == -1 && strstr(err.msg, "chat template"),
          "message-list prompt without a template refused");
    CHECK(problem("{\"answer\": \"1\"}", &plain, &p, &err) == -1 && strstr(err.msg, "prompt"), "a row without a prompt refused");
}

static void test_styles(void) {
    tm_error err = {0};
    task_problem p;
    task_prompt_opts boxed = {TASK_STYLE_BOXED, NULL, NULL, 0}, few = {TASK_STYLE_GSM8K_FEWSHOT, NULL, &CHAT, 0},
                     minerva = {TASK_STYLE_MINERVA, NULL, &CHAT, 0};
    CHECK(problem("{\"prompt\": \"Q\"}", &boxed, &p, &err) == 0 &&
              !strcmp(p.text, "Q\nPlease reason step by step, and put your final answer within \\boxed{}."),
          "boxed style: the instruction after the question");
    task_problem_free(&p);
    CHECK(problem("{\"prompt\": \"Q?\"}", &few, &p, &err) == 0 && !strstr(p.text, "<|im_start|>"), "few-shot styles never use the chat template");
    int shots = 0;
    for (const char *s = p.text ? p.text : ""; (s = strstr(s, "The answer is")); s++) shots++;
    size_t n = p.text ? strlen(p.text) : 0;
    CHECK(shots == 8 && n > 8 && !strcmp(p.text + n - 8, "Q: Q?\nA:"), "gsm8k-fewshot: 8 exemplars, then \"Q: ...\\nA:\"");
    task_problem_free(&p);
    CHECK(problem("{\"prompt\": \"Q?\"}", &minerva, &p, &err) == 0 && strstr(p.text, "Problem:\nQ?\n\nSolution:"), "minerva: Problem/Solution");
    task_problem_free(&p);
    const char *st[2];
    CHECK(task_style_stops(TASK_STYLE_GSM8K_FEWSHOT, st) == 2 && !strcmp(st[1], "\nQ:") && task_style_stops(TASK_STYLE_BOXED, st) == 0,
          "few-shot stop strings");
    CHECK(task_style_from_name("minerva") == TASK_STYLE_MINERVA && task_style_from_name("nope") == -1, "style names");
}

static void test_grade(void) {
    tm_error err = {0};
    math_extract_opts eo;
    math_equal_opts qo;
    math_extract_opts_default(&eo);
    math_equal_opts_default(&qo);
    task_grade_result r;
    const char *c = "so the answer is \\boxed{0.5}.";
    CHECK(task_grade(c, strlen(c), "\\frac{1}{2}", &eo, &qo, &r, &err) == 0 && r.correct && !strcmp(r.extracted, "0.5") &&
              r.verdict == MATH_EQUAL, "grade: boxed 0.5 equals \\frac{1}{2}");
    task_grade_result_free(&r);
    CHECK(task_grade("no idea", 7, "1", &eo, &qo, &r, &err) == 0 && !r.correct && !r.extracted, "grade: no answer is null, wrong");
    CHECK(task_grade(c, strlen(c), NULL, &eo, &qo, &r, &err) == 0 && !r.correct && r.extracted, "grade: no gold, extracted, not correct");
    task_grade_result_free(&r);
    math_verdict v;
    CHECK(task_grade_answer("1\0" "2", 3, "1", 1, &qo, &v, &err) == 0 && v == MATH_PARSE_FAIL, "grade: a NUL in the answer is a parse failure");
    CHECK(task_answers_equal("0.5", "1/2", &qo) && !task_answers_equal("0.5", "2", &qo) && task_answers_equal(NULL, NULL, &qo) &&
              !task_answers_equal(NULL, "1", &qo), "answer classes by the verifier: 0.5 = 1/2");
}

static void test_pairs(void) {
    // "2" appears once, "0.5" and "1/2" are one answer seen twice: that class comes first
    // (with strcmp all three would be classes of one and "2" would lead)
    const char *ans[] = {"2", "0.5", "1/2"}, *txt[] = {"a", "b", "c"};
    math_equal_opts qo;
    math_equal_opts_default(&qo);
    rng R;
    rng_seed(&R, 1);
    int out[3];
    int n = task_side_order(ans, txt, 3, &qo, &R, out);
    CHECK(n == 3 && out[0] != 0 && out[1] != 0 && out[2] == 0, "pairs: 0.5 and 1/2 land in one answer class, ranked first");
    const char *one[] = {"1", "1", "1"}, *dup[] = {"x", "x", "y"};
    n = task_side_order(one, dup, 3, &qo, &R, out);
    CHECK(n == 2, "pairs: an identical completion text counts once in its class");
    int i, j;
    task_pair_at(0, 2, 3, &i, &j);
    int a = i == 0 && j == 0;
    task_pair_at(2, 2, 3, &i, &j);
    CHECK(a && i == 0 && j == 1, "pair order walks the diagonals");
}

// The prompt rule: an sft row's prompt ids are the ids sample/eval feed for the same
// question (plain style), with the chat template and without.
static void test_same_prompt(void) {
    tm_error err = {0};
    for (int c = 0; c < 2; c++) {
        const tok_chat *chat = c ? NULL : &CHAT;
        task_prompt_opts po = {TASK_STYLE_PLAIN, NULL, chat, 0};
        data_opts o;
        data_opts_default(&o);
        o.format = DATA_SFT;
        o.chat = chat;
        task_problem p;
        data_example ex;
        int ok = problem("{\"prompt\": \"hello world\", \"answer\": \"5\"}", &po, &p, &err) == 0;
        ok = ok && example("{\"prompt\": \"hello world\", \"completion\": \" hello\"}", &o, &ex, &err) == 0;
        CHECK(ok && same_ids(p.ids, p.len, ex.seq[0].ids, ex.prompt_len),
              "sft prompt ids == sample/eval prompt ids for the same question (%s)", chat ? "chat template" : "plain text");
        if (ok) data_example_free(&ex);
        task_problem_free(&p);
    }
}

int main(void) {
    const char *dir = fixture_dir();
    tm_error err = {0};
    T = tok_load(dir, &err);
    CHECK(T != NULL, "fixture tokenizer (%s)", err.msg);
    if (!T) return test_done();
    tok_chat_for(T, NULL, &CHAT, &err);
    test_loader();
    test_styles();
    test_grade();
    test_pairs();
    test_same_prompt();
    tok_free(T);
    fixture_cleanup(dir);
    return test_done();
}
