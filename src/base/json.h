// base/json: a small JSON reader (DOM in one arena) and a string builder for writing.
//
// Reading: json_parse() returns a document whose nodes all live in one arena and
// are freed together by json_doc_free(). Strings are decoded UTF-8 with an explicit
// length (they may contain NUL from \u0000) and are also NUL-terminated.
// Numbers keep their source text, so integers of any size and the exact decimal
// a user wrote survive (the verifier needs "0.50" to stay "0.50").
// Objects keep keys in file order; json_get() is a linear scan (fine for the small
// objects of config files and JSONL lines; index big objects yourself).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json json;
struct json {
    json_type type;
    int boolean;          // JSON_BOOL
    double num;           // JSON_NUMBER, as a double
    const char *str;      // JSON_STRING: decoded, NUL-terminated; JSON_NUMBER: source text
    size_t len;           // byte length of str
    int n;                // JSON_ARRAY / JSON_OBJECT: number of items
    json *items;          // the n values
    const char **keys;    // JSON_OBJECT: the n keys (decoded, NUL-terminated)
    size_t *key_lens;     // JSON_OBJECT: their byte lengths
};

typedef struct json_doc json_doc;

// Parses text[0..len). On error returns NULL and err says "line L, column C: reason".
json_doc *json_parse(const char *text, size_t len, tm_error *err);
json *json_root(json_doc *doc);
void json_doc_free(json_doc *doc);

// Reads and parses a whole file; errors are prefixed with the path.
json_doc *json_parse_file(const char *path, tm_error *err);

// Lookups; all return NULL / the default when absent or of another type.
json *json_get(const json *obj, const char *key);
const char *json_get_str(const json *obj, const char *key, const char *def);
double json_get_num(const json *obj, const char *key, double def);
int64_t json_get_int(const json *obj, const char *key, int64_t def);
int json_get_bool(const json *obj, const char *key, int def);
// 1 if v is a JSON number holding an integer value exactly representable in int64.
int json_is_int(const json *v);

// ---- writing ----
// A growable string. Appends never fail one by one: a failed allocation marks the
// buffer (failed, with the size it wanted) and later appends do nothing, so whoever
// finishes the text checks once with sbuf_check (-1 + "out of memory", the library's
// one error policy) before using it.
typedef struct sbuf {
    char *data;
    size_t len, cap;
    int failed;
    size_t want;
} sbuf;

void sbuf_init(sbuf *b);
void sbuf_free(sbuf *b);
void sbuf_clear(sbuf *b);
int sbuf_check(const sbuf *b, tm_error *err);
void sbuf_put(sbuf *b, const char *s, size_t n);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Appends s[0..n) as a quoted, escaped JSON string.
void sbuf_json_str(sbuf *b, const char *s, size_t n);
// Appends a float the way Python's json.dumps would for an fp32 value
// (shortest repr that round-trips the float; "NaN"/"Infinity" for non-finite).
void sbuf_json_float(sbuf *b, double v);
// Appends a JSON value (re-serialized compactly).
void sbuf_json_value(sbuf *b, const json *v);

// Appends `, "key": <raw value text>` before the closing brace of a JSON object line,
// keeping the user's bytes of the line unchanged. line must be an object; trailing
// whitespace is dropped. Returns -1 if the line does not end with '}'.
int json_line_append(sbuf *out, const char *line, size_t len, const char *key, const char *raw_value);
