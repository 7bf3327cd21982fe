// A small byte-level BPE tokenizer written to a temp directory, for the tokenizer and
// data unit tests (the real Qwen/Llama/Gemma files are exercised by tests/oracle).
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "tokenizer/tok_internal.h"

static void fixture_tok_str(sbuf *b, const char *raw) {  // raw bytes → GPT-2 chars, JSON-quoted
    sbuf s;
    sbuf_init(&s);
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        char u[4];
        sbuf_put(&s, u, (size_t)tok_utf8_encode(tok_byte_to_cp[*p], u));
    }
    sbuf_json_str(b, s.data, s.len);
    sbuf_free(&s);
}

// Writes DIR/tokenizer.json (+ tokenizer_config.json with a ChatML template) and
// returns DIR (static buffer).
static const char *fixture_dir(void) {
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/temper-tok-fixture-%d", (int)getpid());
    tm_error err;
    io_mkdirs(dir, &err);
    static const char *merges[][2] = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"},
                                      {" w", "or"}, {" wor", "l"}, {" worl", "d"}, {"\n", "\n"}, {"1", "2"}};
    sbuf b;
    sbuf_init(&b);
    sbuf_puts(&b, "{\"version\":\"1.0\",\"added_tokens\":[");
    const char *added[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    int nbase = 256 + (int)(sizeof merges / sizeof merges[0]);
    for (int i = 0; i < 3; i++)
        sbuf_printf(&b, "%s{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}",
                    i ? "," : "", nbase + i, added[i]);
    sbuf_puts(&b, "],\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":");
    const char *re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    sbuf_json_str(&b, re, strlen(re));
    sbuf_puts(&b, "},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]},"
                  "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (int c = 0; c < 256; c++) {
        char raw[2] = {(char)c, 0};
        if (c) sbuf_puts(&b, ",");
        if (c == 0) { char u[4]; int n = tok_utf8_encode(tok_byte_to_cp[0], u); sbuf_json_str(&b, u, (size_t)n); }
        else fixture_tok_str(&b, raw);
        sbuf_printf(&b, ":%d", c);
    }
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        char cat[32];
        snprintf(cat, sizeof cat, "%s%s", merges[i][0], merges[i][1]);
        sbuf_puts(&b, ",");
        fixture_tok_str(&b, cat);
        sbuf_printf(&b, ":%d", 256 + (int)i);
    }
    sbuf_puts(&b, "},\"merges\":[");
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        sbuf_puts(&b, i ? ",[" : "[");
        fixture_tok_str(&b, merges[i][0]);
        sbuf_puts(&b, ",");
        fixture_tok_str(&b, merges[i][1]);
        sbuf_puts(&b, "]");
    }
    sbuf_puts(&b, "]}}");
    char p[512];
    io_write_file_atomic(io_join(p, sizeof p, dir, "tokenizer.json"), b.data, b.len, &err);
    sbuf_clear(&b);
    const char *tmpl = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    sbuf_puts(&b, "{\"eos_token\":\"<|im_end|>\",\"bos_token\":null,\"chat_template\":");
    sbuf_json_str(&b, tmpl, strlen(tmpl));
    sbuf_puts(&b, "}");
    io_write_file_atomic(io_join(p, sizeof p, dir, "tokenizer_config.json"), b.data, b.len, &err);
    sbuf_free(&b);
    return dir;
}

static void fixture_cleanup(const char *dir) {
    char p[512];
    unlink(io_join(p, sizeof p, dir, "tokenizer.json"));
    unlink(io_join(p, sizeof p, dir, "tokenizer_config.json"));
    rmdir(dir);
}
