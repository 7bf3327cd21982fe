// Tests for data/: each format's ids and loss masks (the trained span is checked by
// decoding exactly the tokens whose mask is 1), the prompt-prefix rule, bad lines
// reported as file:line with --on-bad-line error|skip, truncation counting.
#include <string.h>
#include "data/data.h"
#include "test.h"
#include "tok_fixture.h"

static tok_tokenizer *T;
static tok_chat CHAT;

// Decodes the tokens of s whose mask equals want.
static char *span(const data_seq *s, int want) {
    tok_ids ids = {0};
    for (int i = 0; i < s->len; i++)
        if (s->mask[i] == want) tok_ids_push(&ids, s->ids[i]);
    sbuf out;
    sbuf_init(&out);
    tm_error err;
    tok_decode(T, ids.v, ids.n, 0, &out, &err);
    if (!out.data) sbuf_put(&out, "", 0);
    tok_ids_free(&ids);
    return out.data;
}

static int row(const char *line, const data_opts *o, data_example *ex, tm_error *err) {
    json_doc *d = json_parse(line, strlen(line), err);
    if (!d) return -1;
    int rc = data_example_from_json(T, json_root(d), o, ex, err);
    json_doc_free(d);
    return rc;
}

static int prefix_ok(const data_example *ex) {
    for (int k = 0; k < ex->nseq; k++) {
        if (ex->seq[k].len < ex->prompt_len) return 0;
        for (int i = 0; i < ex->prompt_len; i++)
            if (ex->seq[k].mask[i] || ex->seq[k].ids[i] != ex->seq[0].ids[i]) return 0;
    }
    return 1;
}

#define EXPECT_SPAN(seq, want_train, text, what)                                  \
    do {                                                                          \
        char *s_ = span(seq, want_train);                                         \
        sbuf q_;                                                                  \
        sbuf_init(&q_);                                                           \
        sbuf_json_str(&q_, s_, strlen(s_));                                       \
        CHECK(!strcmp(s_, text), "%s (got %s)", what, q_.data);                   \
        sbuf_free(&q_);                                                           \
        free(s_);                                                                 \
    } while (0)

static void test_formats(void) {
    tm_error err = {0};
    data_opts o;
    data_opts_default(&o);
    o.chat = &CHAT;
    data_example ex;

    o.format = DATA_SFT;
    CHECK(row("{\"prompt\":\"Q: 1+1?\",\"completion\":\" 2\"}", &o, &ex, &err) == 0, "sft prompt/completion strings (%s)", err.msg);
    EXPECT_SPAN(&ex.seq[0], 1, " 2<|im_end|>", "sft strings: completion + EOS trained");
    EXPECT_SPAN(&ex.seq[0], 0, "<|im_start|>user\nQ: 1+1?<|im_end|>\n<|im_start|>assistant\n\n",
                "sft strings with a chat template: a user message and the assistant's reply (the prompt rule)");
    CHECK(prefix_ok(&ex), "sft prompt ids are a prefix, masked");
    data_example_free(&ex);
    data_opts plain = o;
    plain.chat = NULL;  // no template (--no-chat-template): plain text, EOS appended (TRL)
    CHECK(row("{\"prompt\":\"Q: 1+1?\",\"completion\":\" 2\"}", &plain, &ex, &err) == 0, "sft strings without a template");
    EXPECT_SPAN(&ex.seq[0], 0, "Q: 1+1?", "sft strings without a template: the prompt as it is");
    EXPECT_SPAN(&ex.seq[0], 1, " 2<|im_end|>", "sft strings without a template: completion + EOS");
    data_example_free(&ex);

    const char *msgs = "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Q\"},"
                       "{\"role\":\"assistant\",\"content\":\"A1\"},{\"role\":\"user\",\"content\":\"Q2\"},{\"role\":\"assistant\",\"content\":\"A2\"}]}";
    CHECK(row(msgs, &o, &ex, &err) == 0, "sft messages (%s)", err.msg);
    EXPECT_SPAN(&ex.seq[0], 1, "A1<|im_end|>A2<|im_end|>", "sft messages: every assistant turn and its <|im_end|> trained");
    EXPECT_SPAN(&ex.seq[0], 0,
                "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n\n",
                "sft messages: system, user, headers and newlines masked");
    CHECK(prefix_ok(&ex) && ex.seq[0].mask[ex.prompt_len] == 1, "sft messages: prompt ends where training starts");
    data_example_free(&ex);

    o.format = DATA_DPO;
    CHECK(row("{\"prompt\":[{\"role\":\"user\",\"content\":\"Q\"}],\"chosen\":[{\"role\":\"assistant\",\"content\":\"good\"}],"
              "\"rejected\":[{\"role\":\"assistant\",\"content\":\"bad\"}]}", &o, &ex, &err) == 0, "dpo conversational (%s)", err.msg);
    CHECK(ex.nseq == 2 && prefix_ok(&ex), "dpo: chosen and rejected share the prompt ids");
    EXPECT_SPAN(&ex.seq[0], 1, "good<|im_end|>", "dpo chosen trained span");
    EXPECT_SPAN(&ex.seq[1], 1, "bad<|im_end|>", "dpo rejected trained span");
    data_example_free(&ex);
    CHECK(row("{\"chosen\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"good\"}],"
              "\"rejected\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"bad\"}]}", &o, &ex, &err) == 0,
          "dpo implicit prompt (%s)", err.msg);
    EXPECT_SPAN(&ex.seq[1], 0, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n\n", "dpo implicit prompt = common leading messages");
    data_example_free(&ex);
    CHECK(row("{\"prompt\":\"P\",\"chosen\":\" a\",\"rejected\":\" b\"}", &o, &ex, &err) == 0 && prefix_ok(&ex), "dpo strings");
    EXPECT_SPAN(&ex.seq[1], 1, " b<|im_end|>", "dpo strings: EOS appended to each completion");
    data_example_free(&ex);

    o.format = DATA_KTO;
    CHECK(row("{\"prompt\":\"P\",\"completion\":\" c\",\"label\":false}", &o, &ex, &err) == 0 && ex.label == 0, "kto label false");
    data_example_free(&ex);
    CHECK(row("{\"prompt\":\"P\",\"completion\":\" c\"}", &o, &ex, &err) == -1 && strstr(err.msg, "label"), "kto without label is refused (%s)", err.msg);

    o.format = DATA_STEP;
    CHECK(row("{\"prompt\":\"Q\",\"initial_reason_steps\":\"Step 1: x\\nStep 2:\",\"chosen\":\" good\",\"rejected\":\" bad\"}", &o, &ex, &err) == 0,
          "step-dpo row (%s)", err.msg);
    EXPECT_SPAN(&ex.seq[0], 0, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nStep 1: x\nStep 2:", "step: prompt = template(question) + initial steps");
    EXPECT_SPAN(&ex.seq[0], 1, " good", "step: only the step is trained, no EOS");
    CHECK(prefix_ok(&ex), "step: shared prompt prefix");
    data_example_free(&ex);

    o.format = DATA_TRAJECTORY;
    CHECK(row("{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"```python\\nprint(1)\\n```\"},"
              "{\"role\":\"tool\",\"content\":\"1\"},{\"role\":\"assistant\",\"content\":\"\\\\boxed{1}\"}],\"label\":true}", &o, &ex, &err) == 0,
          "trajectory (%s)", err.msg);
    EXPECT_SPAN(&ex.seq[0], 1, "```python\nprint(1)\n```<|im_end|>\\boxed{1}<|im_end|>", "trajectory: assistant turns trained, tool output masked");
    CHECK(ex.label == 1, "trajectory label");
    data_example_free(&ex);

    o.format = DATA_PROMPTS;
    CHECK(row("{\"question\":\"How many?\",\"answer\":\"so 1,000 + 5\\n#### 1,005\"}", &o, &ex, &err) == 0 && !strcmp(ex.answer, "1005"),
          "GSM8K reader: answer after ####, commas removed");
    EXPECT_SPAN(&ex.seq[0], 0, "<|im_start|>user\nHow many?<|im_end|>\n<|im_start|>assistant\n", "prompts: question in the chat template with generation prompt");
    data_example_free(&ex);
    CHECK(row("{\"problem\":\"Find x.\",\"solution\":\"...\",\"answer\":\"\\\\frac{1}{2}\"}", &o, &ex, &err) == 0 && !strcmp(ex.answer, "\\frac{1}{2}"),
          "MATH-500 reader keeps the answer string");
    data_example_free(&ex);
    // one loader with sample/eval (task/problems.h): an answer without "#### " is taken whole
    CHECK(row("{\"question\":\"q\",\"answer\":\"42\"}", &o, &ex, &err) == 0 && !strcmp(ex.answer, "42"), "GSM8K-style row without ####: the answer whole");
    data_example_free(&ex);

    o.format = DATA_SFT;
    o.max_length = 3;
    CHECK(row("{\"prompt\":\"hello world hello\",\"completion\":\" world\"}", &o, &ex, &err) == 0 && ex.truncated && ex.seq[0].len == 3,
          "max_length cuts and flags the example");
    data_example_free(&ex);
    o.max_length = 0;
    CHECK(row("{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"}]}", &o, &ex, &err) == -1 && strstr(err.msg, "assistant"), "messages without an assistant turn refused");
    CHECK(row("{\"prompt\":\"a\",\"completion\":5}", &o, &ex, &err) == -1, "non-string completion refused");
    data_opts raw = o;
    raw.chat = NULL;
    CHECK(row(msgs, &raw, &ex, &err) == -1 && strstr(err.msg, "chat template"), "messages without a chat template refused (%s)", err.msg);
}

// TRL's language-modelling rows: {"text"} is encoded as a document (post-processor tokens),
// EOS appended once, every token trained but the first.
static void test_text_rows(void) {
    tm_error err = {0};
    data_opts o;
    data_opts_default(&o);
    o.chat = &CHAT;
    o.format = DATA_SFT;
    data_example ex;
    CHECK(row("{\"text\":\"one two three\"}", &o, &ex, &err) == 0, "sft text row (%s)", err.msg);
    tok_ids want = {0};
    tok_encode(T, "one two three", 13, 1, &want, &err);
    tok_ids_push(&want, tok_eos_id(T));
    int same = ex.nseq == 1 && ex.seq[0].len == (int)want.n && !memcmp(ex.seq[0].ids, want.v, want.n * sizeof *want.v);
    CHECK(same, "text row: ids = encode(text, special tokens) + EOS (%d vs %zu ids)", ex.seq[0].len, want.n);
    int masked = ex.prompt_len == 1 && ex.seq[0].mask[0] == 0;
    for (int i = 1; i < ex.seq[0].len; i++) masked &= ex.seq[0].mask[i] == 1;
    CHECK(masked, "text row: every token trained but the first (prompt_len %d)", ex.prompt_len);
    data_example_free(&ex);
    tok_ids_free(&want);
    CHECK(row("{\"text\":\"done<|im_end|>\"}", &o, &ex, &err) == 0 && ex.seq[0].ids[ex.seq[0].len - 2] != tok_eos_id(T),
          "text row ending with EOS: not doubled");
    data_example_free(&ex);
    CHECK(row("{\"text\":3}", &o, &ex, &err) == -1 && strstr(err.msg, "\"text\" must be a string"), "text row: a number is refused (%s)", err.msg);
    CHECK(row("{\"text\":\"\"}", &o, &ex, &err) == -1 && strstr(err.msg, "nothing to train"), "text row: empty text is refused (%s)", err.msg);
    o.format = DATA_DPO;
    CHECK(row("{\"text\":\"a\"}", &o, &ex, &err) == -1, "a text row is not a DPO row");
}

static void test_files(void) {
    tm_error err = {0};
    const char *path = "/tmp/temper-data-test.jsonl";
    const char *text = "{\"prompt\":\"a\",\"completion\":\" b\"}\n\n{\"prompt\":\"a\"}\nnot json\n{\"prompt\":\"c\",\"completion\":\" d\"}\n";
    io_write_file_atomic(path, text, strlen(text), &err);
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_SFT;
    data_set ds;
    CHECK(data_load(T, path, &o, &ds, &err) == -1 && strstr(err.msg, "temper-data-test.jsonl:3: missing field \"completion\""),
          "bad line error names file:line (%s)", err.msg);
    o.on_bad_line = DATA_BAD_SKIP;
    CHECK(data_load(T, path, &o, &ds, &err) == 0 && ds.n == 2 && ds.skipped == 2 && ds.lines == 4, "skip: 2 loaded, 2 skipped and counted");
    CHECK(ds.n == 2 && ds.ex[1].line == 5, "examples keep their line numbers");
    CHECK(strstr(ds.first_skip, ":3:") != NULL, "the first skipped line is reported (%s)", ds.first_skip);
    data_set_free(&ds);
    unlink(path);
    CHECK(data_load(T, "/nonexistent.jsonl", &o, &ds, &err) == -1, "missing file is an error");
    CHECK(data_format_from_name("dpo") == DATA_DPO && data_format_from_name("x") == -1, "format names");
}

int main(void) {
    const char *dir = fixture_dir();
    tm_error err = {0};
    T = tok_load(dir, &err);
    CHECK(T != NULL, "fixture tokenizer (%s)", err.msg);
    if (!T) return test_done();
    tok_chat_for(T, NULL, &CHAT, &err);
    test_formats();
    test_text_rows();
    test_files();
    tok_free(T);
    fixture_cleanup(dir);
    return test_done();
}
