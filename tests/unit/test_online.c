// Tests for train/online: the one task loader of grpo, ppo, rehearsal and online-dpo builds
// each prompt as sample/eval do (task/problems.h) under every --prompt-style, with the style's
// stop strings; it refuses an unknown style and (need_answer) a prompt without a gold; the
// grader is task_grade's strict rule; the per-epoch prompt order is a reproducible permutation.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "task/problems.h"
#include "train/online.h"
#include "test.h"
#include "tok_fixture.h"

static const char *DIR_;
static char PROMPTS[256];
static tok_tokenizer *TOK;
static tok_chat CHAT;
static int HAVE_CHAT;

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static model fake_model(void) {  // online_task_load reads the vocabulary size and EOS only
    model m;
    memset(&m, 0, sizeof m);
    m.cfg.vocab = 1000;
    m.cfg.eos_token_id = 269;
    return m;
}

static int load(online_task *T, const char *style, const char *suffix, const char *tools, const char *data, int need_answer,
                tm_error *err) {
    model m = fake_model();
    online_task_opts o = {DIR_, NULL, style, suffix, data, tools, 0, need_answer, NULL, 0};
    return online_task_load(T, &m, &o, err);
}

// Every prompt's ids equal the problem loader's under the same style and suffix.
static void test_styles(void) {
    const char *styles[] = {NULL, "plain", "boxed", "tora", "gsm8k-fewshot", "minerva"};
    for (size_t s = 0; s < sizeof styles / sizeof styles[0]; s++) {
        tm_error err = {0};
        online_task T;
        int rc = load(&T, styles[s], " Go.", "none", PROMPTS, 1, &err);
        int st = styles[s] ? task_style_from_name(styles[s]) : TASK_STYLE_PLAIN;
        task_prompt_opts po = {(task_style)st, " Go.", HAVE_CHAT ? &CHAT : NULL, 0};
        int same = rc == 0 && T.prompts.n == 2;
        json_doc *d = NULL;
        const char *rows[2] = {"{\"prompt\": \"hello world\", \"answer\": \"5\"}", "{\"question\": \"12 12\", \"answer\": \"x #### 7\"}"};
        for (int i = 0; same && i < 2; i++) {
            task_problem p;
            d = json_parse(rows[i], strlen(rows[i]), &err);
            same = d && task_problem_from_json(TOK, json_root(d), &po, &p, &err) == 0;
            json_doc_free(d);
            if (!same) break;
            const data_example *e = &T.prompts.ex[i];
            same = e->prompt_len == p.len && !memcmp(e->seq[0].ids, p.ids, sizeof(int32_t) * (size_t)p.len) && e->answer &&
                   !strcmp(e->answer, p.answer);
            task_problem_free(&p);
        }
        const char *want[2];
        int nw = task_style_stops((task_style)st, want);
        int stops = rc == 0 && T.nstop_strs == nw;
        for (int i = 0; stops && i < nw; i++) stops = !strcmp(T.stop_strs[i], want[i]);
        CHECK(same && stops, "--prompt-style %s: the prompts and golds sample/eval build, %d stop strings (%s)",
              styles[s] ? styles[s] : "(default)", nw, rc ? err.msg : "loaded");
        if (!rc) online_task_free(&T);
    }
    // the plain style differs from boxed: the style reaches the prompt
    tm_error err = {0};
    online_task A, B;
    int ra = load(&A, NULL, NULL, "none", PROMPTS, 1, &err), rb = load(&B, "boxed", NULL, "none", PROMPTS, 1, &err);
    CHECK(ra == 0 && rb == 0 && B.prompts.ex[0].prompt_len > A.prompts.ex[0].prompt_len, "boxed prompts are longer than plain (%d > %d tokens)",
          rb ? -1 : B.prompts.ex[0].prompt_len, ra ? -1 : A.prompts.ex[0].prompt_len);
    if (!ra) online_task_free(&A);
    if (!rb) online_task_free(&B);
    // the python tool's stop follows the style's
    online_task P;
    int rp = load(&P, "minerva", NULL, "python", PROMPTS, 1, &err);
    CHECK(rp == 0 && P.nstop_strs == 3 && !strcmp(P.stop_strs[2], "```output"), "minerva + python: the style's 2 stops, then ```output");
    rollout_opts ro;
    rollout_opts_default(&ro);
    if (!rp) online_rollout_opts(&P, &ro);
    CHECK(rp == 0 && ro.tool == ROLLOUT_TOOL_PYTHON && ro.nstop_strs == 3 && ro.stop_strs == P.stop_strs && ro.stop_ids == P.stop_ids &&
          ro.nstop_ids == P.nstop && P.nstop > 0, "online_rollout_opts: the sampler gets the task's stops (%d ids, 3 strings) and tool", rp ? -1 : P.nstop);
    if (!rp) online_task_free(&P);
}

static void test_refusals(void) {
    tm_error err = {0};
    online_task T;
    CHECK(load(&T, "nope", NULL, "none", PROMPTS, 0, &err) == -1 && strstr(err.msg, "--prompt-style"), "unknown style: %s", err.msg);
    char path[300];
    snprintf(path, sizeof path, "%s/noanswer.jsonl", DIR_);
    write_file(path, "{\"prompt\": \"hello\", \"answer\": \"1\"}\n{\"prompt\": \"world\"}\n");
    CHECK(load(&T, NULL, NULL, "none", path, 1, &err) == -1 && strstr(err.msg, "noanswer.jsonl:2") && strstr(err.msg, "answer"),
          "need_answer: a prompt without a gold fails naming file:line (%s)", err.msg);
    int rc = load(&T, NULL, NULL, "none", path, 0, &err);
    CHECK(rc == 0 && T.prompts.n == 2 && !T.prompts.ex[1].answer, "without need_answer it loads, ungraded");
    if (!rc) online_task_free(&T);
    CHECK(load(&T, NULL, NULL, "hammer", PROMPTS, 0, &err) == -1 && strstr(err.msg, "--tools"), "unknown tool: %s", err.msg);
}

static void test_grade_and_order(void) {
    tm_error err = {0};
    online_task T;
    if (load(&T, NULL, NULL, "none", PROMPTS, 1, &err)) { CHECK(0, "load: %s", err.msg); return; }
    struct { const char *text, *gold; int found, correct; } cases[] = {
        {"so \\boxed{5}", "5", 1, 1}, {"so \\boxed{6}", "5", 1, 0}, {"so \\boxed{2+3}", "5", 1, 0},  // strict
        {"no answer here", "5", 0, 0}, {"so \\boxed{5}", NULL, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tok_ids ids = {0};
        sbuf text;
        sbuf_init(&text);
        int found = -1, correct = -1;
        int rc = tok_encode(TOK, cases[i].text, strlen(cases[i].text), 0, &ids, &err);
        if (!rc) rc = online_grade(T.tok, &T.eo, &T.qo, ids.v, (int)ids.n, cases[i].gold, &text, &found, &correct, &err);
        CHECK(rc == 0 && found == cases[i].found && correct == cases[i].correct && text.data && !strcmp(text.data, cases[i].text),
              "online_grade(\"%s\", gold %s): found %d correct %d, the text kept", cases[i].text, cases[i].gold ? cases[i].gold : "none", found,
              correct);
        sbuf_free(&text);
        tok_ids_free(&ids);
    }
    // epochs: each a permutation; the k-th draw depends on k and the seed only
    int seen[2][2] = {{0}};
    int a[6];
    for (int k = 0; k < 6; k++) a[k] = online_next_prompt(&T, k, 3);
    for (int k = 0; k < 4; k++) seen[k / 2][a[k]]++;
    int again = online_next_prompt(&T, 1, 3) == a[1] && online_next_prompt(&T, 5, 3) == a[5];
    CHECK(seen[0][0] == 1 && seen[0][1] == 1 && seen[1][0] == 1 && seen[1][1] == 1 && again,
          "online_next_prompt: each epoch a permutation, a draw reproducible from (k, seed)");
    online_task_free(&T);
}

int main(void) {
    DIR_ = fixture_dir();
    tm_error err = {0};
    TOK = tok_load(DIR_, &err);
    CHECK(TOK != NULL, "fixture tokenizer (%s)", err.msg);
    if (!TOK) return test_done();
    HAVE_CHAT = tok_chat_for(TOK, NULL, &CHAT, &err) == 0;
    snprintf(PROMPTS, sizeof PROMPTS, "%s/prompts.jsonl", DIR_);
    write_file(PROMPTS, "{\"prompt\": \"hello world\", \"answer\": \"5\"}\n{\"question\": \"12 12\", \"answer\": \"x #### 7\"}\n");
    test_styles();
    test_refusals();
    test_grade_and_order();
    tok_free(TOK);
    char path[300];
    snprintf(path, sizeof path, "%s/noanswer.jsonl", DIR_);
    unlink(path);
    unlink(PROMPTS);
    fixture_cleanup(DIR_);
    return test_done();
}
