// libFuzzer target: JSONL rows → examples (data/data.h). The first byte picks the
// options, the rest is one line of JSON; a line that parses is built in every format.
// data_example_from_json must return 0 with a consistent example (ids in the
// vocabulary, the prompt masked, lengths within max_length) or -1 with a reason,
// never crash, hang or leak (it owns its partial work on failure, as data_load relies on).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../unit/tok_fixture.h"
#include "data/data.h"

static tok_tokenizer *T;
static tok_chat CHAT;
static const char *DIR_;

static void cleanup(void) {
    tok_free(T);
    fixture_cleanup(DIR_);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    tm_error err = {{0}};
    DIR_ = fixture_dir();
    T = tok_load(DIR_, &err);
    if (!T || tok_chat_for(T, NULL, &CHAT, &err)) {
        fprintf(stderr, "fuzz_jsonl: fixture tokenizer: %s\n", err.msg);
        abort();
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    tm_error err = {{0}};
    json_doc *d = json_parse((const char *)data + 1, size - 1, &err);
    if (!d) return 0;
    int vocab = tok_vocab_size(T);
    for (int f = 0; f < 6; f++) {
        data_opts o;
        data_opts_default(&o);
        o.format = (data_format)f;
        o.chat = (sel & 1) ? NULL : &CHAT;
        o.wrap_plain = (sel >> 1) & 1;
        o.append_eos = !((sel >> 2) & 1);
        o.check_boundary = (sel >> 3) & 1;
        o.max_length = (sel >> 4) & 7;  // 0 (no limit) or 1..7 tokens
        o.prompt_suffix = (sel & 0x80) ? "\nPut the answer in \\boxed{}." : NULL;
        data_example ex;
        err.msg[0] = 0;
        if (data_example_from_json(T, json_root(d), &o, &ex, &err)) {
            if (!err.msg[0]) abort();  // a refusal always says why
            continue;                  // and owns nothing: the leak checker sees any loss
        }
        if (ex.nseq < 1 || ex.nseq > 2) abort();
        if (ex.prompt_len < 0) abort();
        for (int k = 0; k < ex.nseq; k++) {
            const data_seq *s = &ex.seq[k];
            if (s->len < ex.prompt_len && !(o.max_length && s->len == o.max_length)) abort();
            if (o.max_length && s->len > o.max_length) abort();
            for (int i = 0; i < s->len; i++) {
                if (s->ids[i] < 0 || s->ids[i] >= vocab) abort();
                if (s->mask[i] > 1) abort();
                if (i < ex.prompt_len && s->mask[i]) abort();  // the prompt is never trained
            }
        }
        // a prompts row without an answer loads ungraded (task/problems.h); one with an
        // answer keeps it non-empty... or empty: either way it is a string or NULL
        if (f == DATA_PROMPTS && ex.answer && strlen(ex.answer) > (size_t)size) abort();
        data_example_free(&ex);
    }
    json_doc_free(d);
    return 0;
}
