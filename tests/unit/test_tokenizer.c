// Tests for tokenizer/: BPE merges on a small fixture, added tokens inside text,
// decode round trips, streaming decode never cutting a character, chat rendering
// and its segments, load errors. Byte-exact parity with Hugging Face on the real
// Qwen3/Llama-3/Gemma-3 files is tests/oracle/test_tokenizer.mjs.
#include <string.h>
#include "test.h"
#include "tok_fixture.h"
#include "tokenizer/tokenizer.h"

static int ids_eq(const tok_ids *a, const int32_t *want, size_t n) {
    return a->n == n && !memcmp(a->v, want, n * sizeof *want);
}

static void test_bpe(tok_tokenizer *t) {
    tm_error err = {0};
    tok_ids ids = {0};
    CHECK(tok_encode(t, "hello world", 11, 0, &ids, &err) == 0, "encode hello world (%s)", err.msg);
    int32_t w1[] = {259, 264};  // "hello", " world"
    CHECK(ids_eq(&ids, w1, 2), "merges by rank give 'hello' + ' world' (%zu ids)", ids.n);
    ids.n = 0;
    tok_encode(t, "hi<|im_start|>hello<|im_end|>", 29, 0, &ids, &err);
    int32_t w2[] = {'h', 'i', 268, 259, 269};
    CHECK(ids_eq(&ids, w2, 5), "special tokens written in text become their ids");
    ids.n = 0;
    tok_encode(t, "<|im_start", 10, 0, &ids, &err);
    {
        int special = 0;
        for (size_t i = 0; i < ids.n; i++) special |= ids.v[i] == 268 || ids.v[i] == 269;
        sbuf back = {0};
        tok_decode(t, ids.v, ids.n, 0, &back, &err);
        CHECK(!special && ids.n > 1 && back.len == 10 && !memcmp(back.data, "<|im_start", 10),
              "a partial special token is plain text (%zu ids, no special id, decodes back)", ids.n);
        sbuf_free(&back);
    }
    ids.n = 0;
    tok_encode(t, "123", 3, 0, &ids, &err);
    int32_t w3[] = {'1', '2', '3'};
    CHECK(ids_eq(&ids, w3, 3), "Qwen's regex splits digits one by one (no '12' merge across pieces)");
    ids.n = 0;
    const char *nfd = "e\xcc\x81";  // e + combining acute → é under NFC
    tok_encode(t, nfd, strlen(nfd), 0, &ids, &err);
    int32_t w4[] = {0xc3, 0xa9};
    CHECK(ids_eq(&ids, w4, 2), "NFC normalizer composes e + U+0301");
    ids.n = 0;
    CHECK(tok_encode(t, "\xff\xfe", 2, 0, &ids, &err) == -1 && strstr(err.msg, "UTF-8"), "invalid UTF-8 is refused (%s)", err.msg);
    ids.n = 0;
    CHECK(tok_encode(t, "", 0, 0, &ids, &err) == 0 && ids.n == 0, "empty text gives no ids");

    // decode round trip, including emoji and CJK
    const char *texts[] = {"hello world", "\n\n  x  \n", "中文 😀 👍🏽", "<|im_start|>user\nhi<|im_end|>"};
    for (int i = 0; i < 4; i++) {
        ids.n = 0;
        sbuf out;
        sbuf_init(&out);
        tok_encode(t, texts[i], strlen(texts[i]), 0, &ids, &err);
        tok_decode(t, ids.v, ids.n, 0, &out, &err);
        CHECK(out.len == strlen(texts[i]) && !memcmp(out.data, texts[i], out.len), "decode(encode(x)) == x for text %d", i);
        sbuf_free(&out);
    }
    sbuf out;
    sbuf_init(&out);
    int32_t half[] = {0xe4, 0xb8};  // first two bytes of 中
    tok_decode(t, half, 2, 0, &out, &err);
    CHECK(!strcmp(out.data, "\xef\xbf\xbd"), "a cut character decodes to one U+FFFD (like from_utf8_lossy)");
    sbuf_clear(&out);
    int32_t sp[] = {268, 'h', 269};
    tok_decode(t, sp, 3, 1, &out, &err);
    CHECK(!strcmp(out.data, "h"), "skip_special drops special tokens");
    int32_t badid = 99999;
    CHECK(tok_decode(t, &badid, 1, 0, &out, &err) == -1 && strstr(err.msg, "99999"), "an unknown id is an error (%s)", err.msg);
    sbuf_free(&out);

    // streaming: the pieces concatenate to the text and each piece is valid UTF-8
    const char *s = "a 中文😀 b 👍🏽!";
    ids.n = 0;
    tok_encode(t, s, strlen(s), 0, &ids, &err);
    tok_stream st;
    tok_stream_init(&st, 0);
    sbuf all, piece;
    sbuf_init(&all);
    sbuf_init(&piece);
    int valid = 1;
    for (size_t i = 0; i < ids.n; i++) {
        sbuf_clear(&piece);
        tok_stream_step(t, &st, ids.v[i], &piece, &err);
        if (piece.len && tok_utf8_valid_prefix(piece.data, piece.len) != piece.len) valid = 0;
        if (piece.len) sbuf_put(&all, piece.data, piece.len);
    }
    CHECK(valid, "streaming decode never emits half a character");
    CHECK(all.len == strlen(s) && !memcmp(all.data, s, all.len), "streamed pieces concatenate to the text");
    sbuf_free(&all);
    sbuf_free(&piece);
    tok_stream_free(&st);
    tok_ids_free(&ids);

    CHECK(tok_eos_id(t) == 269 && tok_bos_id(t) == -1, "eos/bos from tokenizer_config.json");
    CHECK(tok_token_id(t, "<|im_end|>") == 269 && tok_token_id(t, "hello") == 259 && tok_token_id(t, "zzz") == -1, "token lookups");
    CHECK(tok_is_special(t, 268) && !tok_is_special(t, 259), "special flags");
    CHECK(tok_vocab_size(t) == 270, "vocab size counts added tokens");
}

static void test_chat(tok_tokenizer *t) {
    tm_error err = {0};
    tok_chat c;
    CHECK(tok_chat_for(t, NULL, &c, &err) == 0 && c.family == TOK_CHAT_CHATML, "ChatML template recognized");
    tok_chat_msg m[] = {{"system", "S", 1, NULL, 0}, {"user", "Q", 1, NULL, 0}, {"assistant", "A", 1, NULL, 0}};
    tok_chat_render r = {0};
    tok_chat_apply(&c, m, 3, 0, &r, &err);
    const char *want = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n";
    CHECK(!strcmp(r.text.data, want), "ChatML render");
    sbuf tr;
    sbuf_init(&tr);
    size_t total = 0;
    for (int i = 0; i < r.nsegs; i++) {
        total += r.segs[i].len;
        if (r.segs[i].train) sbuf_put(&tr, r.text.data + r.segs[i].off, r.segs[i].len);
    }
    CHECK(total == r.text.len, "segments cover the rendering");
    CHECK(tr.data && !strcmp(tr.data, "A<|im_end|>"), "trained segments: assistant content and <|im_end|> (got %s)", tr.data);
    sbuf_free(&tr);
    tok_chat_render_free(&r);
    tok_chat_apply(&c, m, 2, 1, &r, &err);
    CHECK(r.text.len > 22 && !strcmp(r.text.data + r.text.len - 22, "<|im_start|>assistant\n"), "generation prompt");
    tok_chat_render_free(&r);

    CHECK(tok_chat_detect("{{ bos_token }}<start_of_turn>") == TOK_CHAT_GEMMA, "detects Gemma");
    CHECK(tok_chat_detect("<|start_header_id|>{% if add_generation_prompt %}") == TOK_CHAT_LLAMA3, "detects Llama-3");
    CHECK(tok_chat_detect("Cutting Knowledge Date <|start_header_id|>") == TOK_CHAT_NONE, "Llama-3.1 is not mistaken for Llama-3");
    CHECK(tok_chat_detect("{{ messages }}") == TOK_CHAT_NONE, "unknown templates are not guessed");
    CHECK(tok_chat_for(t, "nope", &c, &err) == -1 && strstr(err.msg, "nope"), "unknown template name is an error");

    tok_chat g = {.family = TOK_CHAT_GEMMA, .bos_token = "<bos>", .enable_thinking = 1};
    tok_chat_msg bad[] = {{"user", "a", 1, NULL, 0}, {"user", "b", 1, NULL, 0}};
    CHECK(tok_chat_apply(&g, bad, 2, 0, &r, &err) == -1 && strstr(err.msg, "alternate"), "Gemma refuses non-alternating roles");
    tok_chat_render_free(&r);
    tok_chat_msg gm[] = {{"system", "S", 1, NULL, 0}, {"user", " Q ", 3, NULL, 0}, {"assistant", "A\n", 2, NULL, 0}};
    tok_chat_apply(&g, gm, 3, 1, &r, &err);
    CHECK(!strcmp(r.text.data, "<bos><start_of_turn>user\nS\n\nQ<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n<start_of_turn>model\n"),
          "Gemma: system folded into the first user turn, content trimmed");
    tok_chat_render_free(&r);
}

static void test_load_errors(void) {
    tm_error err = {0};
    CHECK(tok_load("/nonexistent-dir", &err) == NULL && strstr(err.msg, "tokenizer.json"), "missing directory (%s)", err.msg);
    const char *path = "/tmp/temper-bad-tokenizer.json";
    const char *bad = "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}";
    io_write_file_atomic(path, bad, strlen(bad), &err);
    CHECK(tok_load_files(path, NULL, &err) == NULL && strstr(err.msg, "WordPiece"), "unsupported model type named (%s)", err.msg);
    const char *bad2 = "{\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}";
    io_write_file_atomic(path, bad2, strlen(bad2), &err);
    CHECK(tok_load_files(path, NULL, &err) == NULL && strstr(err.msg, "BertPreTokenizer"), "unsupported pre-tokenizer named (%s)", err.msg);
    const char *bad3 = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}";
    io_write_file_atomic(path, bad3, strlen(bad3), &err);
    CHECK(tok_load_files(path, NULL, &err) == NULL && strstr(err.msg, "merges[0]"), "a merge of unknown tokens is an error (%s)", err.msg);
    unlink(path);
}

// A sentencepiece-style model: ▁ for spaces, byte fallback.
static void test_sentencepiece(void) {
    tm_error err = {0};
    const char *path = "/tmp/temper-sp-tokenizer.json";
    const char *js =
        "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false}],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]},"
        "\"pre_tokenizer\":null,"
        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,\"fuse_unk\":true,"
        "\"vocab\":{\"<unk>\":0,\"<0xC3>\":1,\"<0xA9>\":2,\"\\u2581\":3,\"a\":4,\"b\":5,\"\\u2581a\":6,\"ab\":7,\"\\u2581ab\":8},"
        "\"merges\":[\"\\u2581 a\",\"a b\",\"\\u2581a b\"]}}";
    io_write_file_atomic(path, js, strlen(js), &err);
    tok_tokenizer *t = tok_load_files(path, NULL, &err);
    CHECK(t != NULL, "sentencepiece-style tokenizer loads (%s)", err.msg);
    if (!t) return;
    tok_ids ids = {0};
    tok_encode(t, "ab \xc3\xa9z", 6, 0, &ids, &err);
    int32_t want[] = {8, 3, 1, 2, 0};  // ▁ab ▁ <0xC3> <0xA9> <unk>
    CHECK(ids_eq(&ids, want, 5), "▁ prefix, merges, byte fallback for é, unk for z (%zu ids)", ids.n);
    sbuf out;
    sbuf_init(&out);
    tok_decode(t, ids.v, ids.n, 0, &out, &err);
    CHECK(!strcmp(out.data, "ab \xc3\xa9<unk>"), "decode: ▁→space, bytes fused, leading space stripped (got '%s')", out.data);
    sbuf_free(&out);
    tok_ids_free(&ids);
    tok_free(t);
    unlink(path);
}

// tok_strmap_get_many (the merges' bulk lookup at load) agrees with tok_strmap_get,
// present and absent keys mixed, across more than one group and a growing table.
static void test_strmap_many(void) {
    tok_strmap m;
    tok_strmap_init(&m, 16, 64);
    enum { N = 3000 };
    static char buf[2 * N][16];
    static const char *k[2 * N];
    static size_t n[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        n[i] = (size_t)snprintf(buf[i], sizeof buf[i], "k%d%s", i, i % 3 ? "" : "-long-key");
        k[i] = buf[i];
        if (i % 2 == 0) tok_strmap_put(&m, k[i], n[i], i);
    }
    static int32_t out[2 * N];
    tok_strmap_get_many(&m, k, n, 2 * N, out);
    int bad = 0;
    for (int i = 0; i < 2 * N; i++)
        if (out[i] != (i % 2 == 0 ? i : -1) || out[i] != tok_strmap_get(&m, k[i], n[i])) bad++;
    CHECK(bad == 0, "tok_strmap_get_many agrees with tok_strmap_get on %d keys (%d differ)", 2 * N, bad);
    tok_strmap_free(&m);
    tok_strmap_get_many(&m, k, n, 5, out);  // a freed (empty) table finds nothing
    CHECK(out[0] == -1 && out[4] == -1, "tok_strmap_get_many on an empty table");
}

int main(void) {
    const char *dir = fixture_dir();
    tm_error err = {0};
    tok_tokenizer *t = tok_load(dir, &err);
    CHECK(t != NULL, "fixture tokenizer loads (%s)", err.msg);
    if (t) {
        test_bpe(t);
        test_chat(t);
        tok_free(t);
    }
    test_load_errors();
    test_sentencepiece();
    test_strmap_many();
    fixture_cleanup(dir);
    return test_done();
}
