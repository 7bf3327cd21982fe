// temper tokenize: text to token ids and back with a model directory's tokenizer.
//   stdin lines → stdout lines. A line that starts with '"' is a JSON string (so
//   newlines and any byte can be written); any other line is taken literally.
//   --ids (default): one JSON array of ids per input text.
//   --text: input lines are JSON arrays of ids; output one JSON string per line.
//   --chat: input lines are JSON arrays of {"role","content"} messages, rendered
//           with the chat template (--chat-template NAME to force one) and encoded;
//           --render prints the rendered text (a JSON string) instead of ids.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "tokenizer/tokenizer.h"

// 1 with a line, 0 at the end, -1 on a read error or out of memory (errno says which).
static int read_line(char **buf, size_t *cap, FILE *f, size_t *len) {
    errno = 0;
    ssize_t n = getline(buf, cap, f);
    if (n < 0) return feof(f) && errno != ENOMEM ? 0 : -1;
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r')) n--;
    (*buf)[n] = 0;
    *len = (size_t)n;
    return 1;
}

int cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *tmpl = NULL, *kwargs = NULL;
    int ids_mode = 0, text_mode = 0, chat = 0, render = 0, add_special = 0, gen = 0, skip_special = 0,
        no_think = 0, stats = 0;
    flag flags[] = {
        {"tokenizer", FLAG_STR, &dir, "model directory with tokenizer.json (required)"},
        {"ids", FLAG_BOOL, &ids_mode, "text in, JSON arrays of ids out (the default)"},
        {"text", FLAG_BOOL, &text_mode, "JSON arrays of ids in, JSON strings out"},
        {"chat", FLAG_BOOL, &chat, "input lines are JSON message lists: apply the chat template"},
        {"chat-template", FLAG_STR, &tmpl, "chatml|qwen2.5|qwen3|llama3|llama3-base|gemma (default: recognized from tokenizer_config.json)"},
        {"add-generation-prompt", FLAG_BOOL, &gen, "with --chat: end with the assistant header"},
        {"no-thinking", FLAG_BOOL, &no_think, "with --chat (Qwen3): enable_thinking=false"},
        {"chat-template-kwargs", FLAG_STR, &kwargs, "with --chat: extra template variables, a JSON object ('{\"enable_thinking\": false}', tools, ...)"},
        {"render", FLAG_BOOL, &render, "with --chat: print the rendered text instead of ids"},
        {"add-special-tokens", FLAG_BOOL, &add_special, "apply the tokenizer's post-processor (e.g. Gemma's <bos>)"},
        {"skip-special-tokens", FLAG_BOOL, &skip_special, "with --text: drop special tokens"},
        {"stats", FLAG_BOOL, &stats, "print load time and throughput to stderr"},
    };
    int rc = flags_parse("tokenize", "--tokenizer DIR [--ids|--text|--chat] < in > out", flags,
                         (int)(sizeof flags / sizeof flags[0]), argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!dir) return cli_fail("tokenize", "--tokenizer DIR is required"), 2;
    if (ids_mode + text_mode + chat > 1) return cli_fail("tokenize", "choose one of --ids, --text, --chat"), 2;

    tm_error err = {0};
    double t0 = now_seconds();
    tok_tokenizer *t = tok_load(dir, &err);
    if (!t) return cli_fail("tokenize", "%s", err.msg);
    double t_load = now_seconds() - t0;
    tok_chat ch = {0};
    if (tok_set_chat_kwargs(t, kwargs, &err) || (chat && tok_chat_for(t, tmpl, &ch, &err))) { tok_free(t); return cli_fail("tokenize", "%s", err.msg); }
    if (no_think) ch.enable_thinking = 0;
    if (getenv("SOURCE_DATE_EPOCH")) ch.now = strtoll(getenv("SOURCE_DATE_EPOCH"), NULL, 10);  // strftime_now, reproducibly

    char *line = NULL;
    size_t cap = 0, len;
    long lineno = 0;
    sbuf out, txt;
    sbuf_init(&out);
    sbuf_init(&txt);
    tok_ids ids = {0};
    size_t bytes = 0, ntok = 0;
    double t_work = 0;
    int status = 0, got;
    while ((got = read_line(&line, &cap, stdin, &len)) > 0) {
        lineno++;
        sbuf_clear(&out);
        ids.n = 0;
        json_doc *d = NULL;
        if (text_mode || chat || (len && line[0] == '"')) {
            d = json_parse(line, len, &err);
            if (!d) { status = cli_fail("tokenize", "<stdin>:%ld: %s", lineno, err.msg); break; }
        }
        const json *v = d ? json_root(d) : NULL;
        double t1 = now_seconds();
        if (text_mode) {
            if (v->type != JSON_ARRAY) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: expected a JSON array of ids", lineno); break; }
            for (int i = 0; i < v->n; i++) {
                if (!json_is_int(&v->items[i])) { status = -1; break; }
                tok_ids_push(&ids, (int32_t)v->items[i].num);
            }
            if (status) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: ids must be integers", lineno); break; }
            if (ids.failed) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: out of memory", lineno); break; }
            sbuf_clear(&txt);
            if (tok_decode(t, ids.v, ids.n, skip_special, &txt, &err)) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: %s", lineno, err.msg); break; }
            sbuf_json_str(&out, txt.data, txt.len);
        } else {
            const char *s = line;
            size_t n = len;
            if (chat) {
                if (v->type != JSON_ARRAY) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: expected a JSON array of messages", lineno); break; }
                sbuf_clear(&txt);
                if (tok_chat_render_json(&ch, v, gen, &txt, &err)) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: %s", lineno, err.msg); break; }
                if (sbuf_check(&txt, &err)) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: %s", lineno, err.msg); break; }
                s = txt.data ? txt.data : "";
                n = txt.len;
            } else if (v) {
                if (v->type != JSON_STRING) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: expected a JSON string", lineno); break; }
                s = v->str;
                n = v->len;
            }
            if (render) sbuf_json_str(&out, s, n);
            else {
                if (tok_encode(t, s, n, add_special, &ids, &err)) { json_doc_free(d); status = cli_fail("tokenize", "<stdin>:%ld: %s", lineno, err.msg); break; }
                sbuf_put(&out, "[", 1);
                for (size_t i = 0; i < ids.n; i++) sbuf_printf(&out, i ? ",%d" : "%d", (int)ids.v[i]);
                sbuf_put(&out, "]", 1);
            }
            bytes += n;
            ntok += ids.n;
        }
        t_work += now_seconds() - t1;
        json_doc_free(d);
        sbuf_put(&out, "\n", 1);
        if (sbuf_check(&out, &err)) { status = cli_fail("tokenize", "<stdin>:%ld: %s", lineno, err.msg); break; }
        fwrite(out.data, 1, out.len, stdout);
    }
    if (!status && got < 0) status = cli_fail("tokenize", "reading <stdin>: %s", strerror(errno));
    if (stats && !status)
        fprintf(stderr, "tokenize: load %.3f s, %zu bytes -> %zu tokens in %.3f s (%.2f MB/s)\n", t_load, bytes, ntok,
                t_work, t_work > 0 ? (double)bytes / t_work / 1e6 : 0.0);
    free(line);
    sbuf_free(&out);
    sbuf_free(&txt);
    tok_ids_free(&ids);
    tok_free(t);
    return status ? 1 : 0;
}
