// libFuzzer target: the JSON reader (base/json.h). Any byte string is either refused
// with an error message or parsed; a parsed document re-serialized with
// sbuf_json_value must parse again to an equal document, and re-serializing that one
// must give the same bytes (the writer is a fixed point after one round).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"

static int json_same(const json *a, const json *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER:  // numbers keep their source text
    case JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (a->n != b->n) return 0;
        for (int i = 0; i < a->n; i++) {
            if (a->type == JSON_OBJECT &&
                (a->key_lens[i] != b->key_lens[i] || memcmp(a->keys[i], b->keys[i], a->key_lens[i])))
                return 0;
            if (!json_same(&a->items[i], &b->items[i])) return 0;
        }
        return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tm_error err = {{0}};
    json_doc *d = json_parse((const char *)data, size, &err);
    if (!d) {
        if (!err.msg[0]) abort();  // a refusal always says why
        return 0;
    }
    sbuf s1, s2;
    sbuf_init(&s1);
    sbuf_init(&s2);
    sbuf_json_value(&s1, json_root(d));
    json_doc *d2 = json_parse(s1.data, s1.len, &err);
    if (!d2) abort();                                   // the writer's output must parse
    if (!json_same(json_root(d), json_root(d2))) abort();
    sbuf_json_value(&s2, json_root(d2));
    if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len)) abort();
    json_doc_free(d2);
    json_doc_free(d);
    sbuf_free(&s1);
    sbuf_free(&s2);
    return 0;
}
