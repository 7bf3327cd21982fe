// tokenizer/jinja: a Jinja interpreter for the subset Hugging Face chat templates use.
//
// What is supported: text with {{ }}, {% %}, {# #} and the whitespace control of
// apply_chat_template (trim_blocks, lstrip_blocks, `{%-`, `-%}`, one trailing newline
// dropped); statements if/elif/else, for (tuple targets, `if` filter, else, loop.*,
// break/continue), set (also `set ns.x`, block set), macro, call, filter blocks;
// expressions with Python's operators, `~`, `in`, `is` tests, ternaries, slices,
// list/dict literals; the filters, tests and string/dict methods templates use;
// namespace(), range(), raise_exception(), strftime_now().
//
// The reference is @huggingface/jinja (what transformers.js renders with; byte-identical
// on the real templates in tests/oracle/test_jinja.mjs), which agrees with Python's
// jinja2 on everything templates do. Where the two differ we follow Python
// (str.strip(chars) takes its argument).
//
// A parsed template is read-only and may be rendered by several threads at once.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "base/json.h"

typedef struct jinja_tmpl jinja_tmpl;

// Parses src[0..len). name appears in every error ("chat_template line 3: ...").
// A syntax error returns NULL and fills err.
jinja_tmpl *jinja_parse(const char *src, size_t len, const char *name, tm_error *err);
void jinja_free(jinja_tmpl *t);
const char *jinja_name(const jinja_tmpl *t);

// Renders with the members of the JSON object vars as the template's variables
// (NULL: none), appending to out. now is the time strftime_now() formats (seconds
// since the epoch, local time; 0: the current time). A runtime error (raise_exception,
// a type error, out of memory) returns -1 with "NAME line L: message" in err; out then
// holds a partial rendering.
int jinja_render(const jinja_tmpl *t, const json *vars, int64_t now, sbuf *out, tm_error *err);
