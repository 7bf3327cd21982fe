// libFuzzer target: the Jinja interpreter (tokenizer/jinja.h). Any byte string is a
// template: it either fails to parse with a one-line message, or renders (with a chat
// conversation as its variables) to text or to a one-line error; never a crash, a
// hang (renders are bounded by JINJA_MAX_STEPS) or unbounded memory.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "tokenizer/jinja.h"

static const char VARS[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"Q é\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>r</think>A\", \"tool_calls\": [{\"type\": \"function\","
    " \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5}}}]}, {\"role\": \"tool\", \"content\": \"\"}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": [{\"name\": \"f\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_doc *vars;
    tm_error err = {{0}};
    if (!vars && !(vars = json_parse(VARS, sizeof VARS - 1, &err))) abort();
    jinja_tmpl *t = jinja_parse((const char *)data, size, "fuzz", &err);
    if (!t) {
        if (!err.msg[0] || strchr(err.msg, '\n')) abort();  // a refusal says why, on one line
        return 0;
    }
    sbuf out;
    sbuf_init(&out);
    err.msg[0] = 0;
    if (jinja_render(t, json_root(vars), 1721990400, &out, &err) && (!err.msg[0] || strchr(err.msg, '\n'))) abort();
    sbuf_free(&out);
    jinja_free(t);
    return 0;
}
