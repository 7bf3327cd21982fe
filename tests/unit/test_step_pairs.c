// Step-DPO pair mining (train/step_pairs) with a scripted model: the model's next
// token is a function of the prompt text it is given, so a wrong step can be planted
// and the miner must find exactly that step, without any real model.
#include <string.h>
#include "data/data.h"
#include "test.h"
#include "tok_fixture.h"
#include "train/step_pairs.h"

// ---------------------------------------------------------------- a scripted model

// The backend keeps each KV slot's tokens (rollout writes prompt tokens to a prompt slot
// and generated ones to sample slots), so for every logits row it knows the prompt and
// how many tokens were generated; the completion is script(prompt text) then EOS.
typedef struct script_be {
    tok_tokenizer *t;
    const char *(*script)(const char *prompt);
    int V, eos, nslots;
    int **buf;
    long asked;  // logits rows answered
} script_be;

static int sb_reserve(void *ctx, int nslots, const int *caps, int max_rows, int max_logit_rows, tm_error *err) {
    script_be *s = ctx;
    s->nslots = nslots;
    s->buf = calloc((size_t)nslots, sizeof *s->buf);
    if (!s->buf) return tm_fail(err, "out of memory");
    for (int i = 0; i < nslots; i++)
        if (!(s->buf[i] = calloc((size_t)caps[i] + 1, sizeof(int)))) return tm_fail(err, "out of memory");
    return 0;
}

static void sb_release(void *ctx) {
    script_be *s = ctx;
    for (int i = 0; s->buf && i < s->nslots; i++) free(s->buf[i]);
    free(s->buf);
    s->buf = NULL;
}

static int sb_forward(void *ctx, const kv_batch *b, const int *tag, float *logits, tm_error *err) {
    script_be *s = ctx;
    for (int i = 0; i < b->n; i++) s->buf[b->slot[i]][b->cache_pos[i]] = b->tokens[i];
    for (int i = 0; i < b->n; i++) {
        int r = b->logit_row[i];
        if (r < 0) continue;
        const int *p;
        int plen, gen;
        if (tag[r] < 0) p = s->buf[b->slot[i]], plen = b->cache_pos[i] + 1, gen = 0;
        else p = s->buf[b->prefix_slot[i]], plen = b->prefix_len[i], gen = b->cache_pos[i] + 1;
        sbuf txt;
        sbuf_init(&txt);
        if (tok_decode(s->t, p, (size_t)plen, 0, &txt, err)) return -1;
        const char *c = s->script(txt.data ? txt.data : "");
        tok_ids ids = {0};
        if (tok_encode(s->t, c, strlen(c), 0, &ids, err)) return -1;
        int next = gen < (int)ids.n ? ids.v[gen] : s->eos;
        float *z = logits + (size_t)r * s->V;
        for (int j = 0; j < s->V; j++) z[j] = -10.0f;
        z[next] = 10.0f;
        tok_ids_free(&ids);
        sbuf_free(&txt);
        s->asked++;
    }
    return 0;
}

static int ends_with(const char *s, const char *e) {
    size_t a = strlen(s), b = strlen(e);
    return a >= b && !memcmp(s + a - b, e, b);
}

// 2 + 3*4 = 14. A prefix holding a wrong step is continued wrongly; any other prefix is
// continued correctly from the step whose label it ends with.
static const char *arith(const char *p) {
    if (strstr(p, "= 15") || strstr(p, "2*3+4")) return " So the answer is \\boxed{15}.";
    if (ends_with(p, "Step 4:")) return " The answer is \\boxed{14}.";
    if (ends_with(p, "Step 3:")) return " 2+12 = 14.\nStep 4: The answer is \\boxed{14}.";
    if (ends_with(p, "Step 2:")) return " 3*4 = 12.\nStep 3: 2+12 = 14.\nStep 4: The answer is \\boxed{14}.";
    return " Multiply first.\nStep 2: 3*4 = 12.\nStep 3: 2+12 = 14.\nStep 4: The answer is \\boxed{14}.";
}

// Never right: every problem is out of reach.
static const char *hopeless(const char *p) { return " It is \\boxed{0}."; }

// ---------------------------------------------------------------- tests

static void test_split(void) {
    const char *t = "Let's think step by step.\nStep 1: a\nStep 2: b\nStep x: c\nStep 10: d";
    size_t first = strlen("Let's think step by step.\nStep 1:"), s0[8], s1[8];
    int K = step_pairs_split(t, strlen(t), first, s0, s1, 8);
    CHECK(K == 3 && !strncmp(t + s0[0], " a", s1[0] - s0[0]) && s1[0] - s0[0] == 2 &&
              !strncmp(t + s0[1], " b\nStep x: c", s1[1] - s0[1]) && !strcmp(t + s0[2], " d") && s1[2] == strlen(t),
          "split: steps cut at \"\\nStep <digits>:\" labels (Step 10 too), \"Step x:\" is no label (K=%d)", K);
    K = step_pairs_split("no steps", 8, 0, s0, s1, 8);
    CHECK(K == 1 && s0[0] == 0 && s1[0] == 8, "split: a solution without labels is one step");
    K = step_pairs_split(t, strlen(t), first, s0, s1, 2);
    CHECK(K == 3, "split: more steps than fit is reported (K=%d > cap 2)", K);
}

typedef struct planted {
    const char *name, *solution;
    int step;              // the planted first wrong step
    const char *rejected, *chosen;
} planted;

static void test_planted(void) {
    const char *dir = fixture_dir();
    tm_error err;
    tok_tokenizer *t = tok_load(dir, &err);
    if (!t) { CHECK(0, "fixture tokenizer: %s", err.msg); return; }
    tok_chat chat;
    tok_chat_for(t, NULL, &chat, &err);
    int eos = tok_token_id(t, "<|im_end|>");
    script_be sb = {t, arith, tok_vocab_size(t), eos, 0, NULL, 0};
    rollout_backend be = {&sb, sb.V, sb_reserve, sb_forward, sb_release, NULL, NULL, NULL, NULL, 0};
    step_pairs_opts o;
    step_pairs_opts_default(&o);
    o.num_locate = 3;
    o.num_correct = 2;
    o.max_new_tokens = 160;  // the fixture tokenizer spends about a token per byte
    o.stop_ids = &eos;
    o.nstop_ids = 1;
    step_pairs_ctx c;
    step_pairs_ctx_init(&c, &be, t, &o);
    const char *q = "What is 2+3*4?";
    const char *R = "<|im_start|>user\nWhat is 2+3*4?<|im_end|>\n<|im_start|>assistant\n";
    planted cases[] = {
        {"a middle step", " We need 2+3*4.\nStep 2: 3*4 = 12.\nStep 3: 2+12 = 15.\nStep 4: The answer is \\boxed{15}.", 3,
         " 2+12 = 15.", " 2+12 = 14."},
        {"the first step", " We need 2*3+4.\nStep 2: 2*3 = 6.\nStep 3: 6+4 = 10.\nStep 4: The answer is \\boxed{10}.", 1,
         " We need 2*3+4.", " Multiply first."},
        {"the last step (every prefix can still be completed)",
         " We need 2+3*4.\nStep 2: 3*4 = 12.\nStep 3: 2+12 = 14.\nStep 4: The answer is \\boxed{15}.", 4,
         " The answer is \\boxed{15}.", " The answer is \\boxed{14}."},
    };
    for (int i = 0; i < 3; i++) {
        planted *p = &cases[i];
        sbuf out;
        sbuf_init(&out);
        step_pairs_stats st = {0};
        int w = -1;
        int rc = step_pairs_locate(&c, q, R, "14", p->solution, &out, &w, &st, &err);
        CHECK(rc == 0 && w == p->step, "planted wrong step in %s: found step %d (planted %d)%s%s", p->name, w, p->step,
              rc ? ": " : "", rc ? err.msg : "");
        // the row: the Step-DPO fields, the planted step as rejected, the correction as chosen
        json_doc *d = out.len ? data_parse_line(out.data, strcspn(out.data, "\n"), &err) : NULL;
        json *row = d ? json_root(d) : NULL;
        const char *irs = row ? json_get_str(row, "initial_reason_steps", "") : "";
        int ok = row && !strcmp(json_get_str(row, "prompt", ""), q) && !strcmp(json_get_str(row, "rejected", ""), p->rejected) &&
                 !strcmp(json_get_str(row, "chosen", ""), p->chosen) && json_get_int(row, "wrong_step", 0) == p->step &&
                 !strcmp(json_get_str(row, "answer", ""), "14");
        char label[32];
        snprintf(label, sizeof label, "Step %d:", p->step);
        CHECK(ok && st.pairs == 1 && ends_with(irs, label) && !strncmp(irs, o.opener, strlen(o.opener)),
              "planted %s: one pair, rejected = the planted step, chosen = the correction, prefix ends with \"%s\" (%ld pairs)",
              p->name, label, st.pairs);
        if (i == 0) {
            // what temper dpo --step-wise reads: prompt ids = encode(R + initial_reason_steps), the context sampled from
            data_opts dop;
            data_opts_default(&dop);
            dop.format = DATA_STEP;
            dop.chat = &chat;
            data_example ex;
            tok_ids want = {0};
            sbuf ctx;
            sbuf_init(&ctx);
            sbuf_puts(&ctx, R);
            sbuf_puts(&ctx, irs);
            tok_encode(t, ctx.data, ctx.len, 0, &want, &err);
            int r2 = row ? data_example_from_json(t, row, &dop, &ex, &err) : -1;
            CHECK(r2 == 0 && ex.prompt_len == (int)want.n && !memcmp(ex.seq[0].ids, want.v, sizeof(int) * want.n) &&
                      ex.seq[0].len > ex.prompt_len && ex.seq[1].len > ex.prompt_len,
                  "the row loads as Step-DPO data, its prompt ids are the context the corrections were sampled from%s%s",
                  r2 ? ": " : "", r2 ? err.msg : "");
            if (!r2) data_example_free(&ex);
            tok_ids_free(&want);
            sbuf_free(&ctx);
        }
        if (d) json_doc_free(d);
        sbuf_free(&out);
    }
    // out of reach: no prefix has a correct continuation
    sb.script = hopeless;
    sbuf out;
    sbuf_init(&out);
    step_pairs_stats st = {0};
    int w = -1;
    int rc = step_pairs_locate(&c, q, R, "14", cases[0].solution, &out, &w, &st, &err);
    CHECK(rc == 0 && w == 0 && st.unsolvable == 1 && out.len == 0, "no correct continuation from the start: unsolvable, no pair");
    // error collection: the solutions the policy writes are graded; a right one is not mined
    sb.script = arith;
    rc = step_pairs_problem(&c, q, R, "14", &out, &st, &err);
    CHECK(rc == 0 && st.problems == 1 && st.solutions == o.rep && st.wrong == 0 && out.len == 0,
          "error collection: correct solutions are not mined (%ld wrong of %ld)", st.wrong, st.solutions);
    rc = step_pairs_problem(&c, q, R, "15", &out, &st, &err);
    CHECK(rc == 0 && st.wrong == 1 && st.examined == 2, "error collection: at most --max-per-question wrong solutions examined (%ld)", st.examined - 1);
    sbuf_free(&out);
    tok_free(t);
    fixture_cleanup(dir);
}

int main(void) {
    test_split();
    test_planted();
    return test_done();
}
