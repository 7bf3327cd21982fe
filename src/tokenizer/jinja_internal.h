// tokenizer/jinja internals: tokens, the syntax tree, runtime values and the arena
// both live in. Shared by jinja_lex.c, jinja_parse.c, jinja_value.c, jinja_eval.c and
// jinja_builtins.c; nothing here is part of the library's API.
#pragma once
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include "tokenizer/jinja.h"

// ---- arena: everything of one parse or one render, freed at once ----
typedef struct jchunk jchunk;
typedef struct jarena {
    jchunk *head;
    size_t used, cap;
    size_t total;  // bytes of all chunks
} jarena;
void *ja_alloc(jarena *a, size_t n);  // zeroed; NULL when out of memory
void ja_free(jarena *a);

// ---- tokens ----
enum { T_TEXT, T_BSTMT, T_ESTMT, T_BEXPR, T_EEXPR, T_NAME, T_STR, T_INT, T_FLOAT, T_OP, T_EOF };
typedef struct jtok {
    int type, line;
    const char *s;  // T_TEXT, T_NAME, T_STR (decoded), T_OP
    size_t n;
    int64_t i;      // T_INT
    double f;       // T_FLOAT
} jtok;
typedef struct jtoks {
    jtok *v;
    int n, cap;
} jtoks;
// Cuts src into tokens (whitespace control applied to the text tokens). -1 + err.
int jinja_lex(const char *src, size_t len, const char *name, jarena *a, jtoks *out, tm_error *err);

// ---- values ----
typedef enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS, JV_MACRO, JV_FUNC } jv_type;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jnode jnode;
typedef struct jv {
    jv_type t;
    union {
        int b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;
        jlist *l;
        jdict *d;               // JV_DICT, JV_NS
        struct jmacro *m;       // JV_MACRO: a macro or a call block's caller
        const char *fn;         // JV_FUNC: a global function's name
    };
} jv;
struct jlist { jv *v; int n, cap; };
typedef struct jframe jframe;
typedef struct jmacro { const jnode *def; jframe *closure; } jmacro;  // def: list=params, list2=body
struct jdict { const char **k; size_t *kl; jv *v; int n, cap; };

// ---- syntax tree ----
enum {
    // statements
    N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK, N_BREAK, N_CONTINUE,
    // expressions
    N_LIT, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_KW, N_FILTER, N_TEST,
    N_NOT, N_NEG, N_BIN, N_AND, N_OR, N_COND,
};
// binary operators (N_BIN op)
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CAT, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };
typedef struct jnodes { jnode **v; int n, cap; } jnodes;
struct jnode {
    int kind, line, op;    // op: N_BIN operator; N_TEST: 1 when negated
    const char *s;         // N_TEXT text, N_NAME/N_ATTR/N_KW/N_FILTER/N_TEST/N_MACRO name
    size_t sn;
    jv lit;                // N_LIT
    jnode *a, *b, *c, *d;  // operands, see jinja_parse.c
    jnodes list, list2;    // bodies, items, arguments (N_KW for keywords), parameters
};

struct jinja_tmpl {
    jarena arena;
    char *name;
    jnodes body;
};

// ---- rendering ----
struct jframe {
    jframe *parent;
    const char **k;
    size_t *kl;
    jv *v;
    int n, cap;
};
typedef struct jctx {
    jarena a;
    jmp_buf jb;  // errors unwind to jinja_render, which frees the arena: no leak, one exit
    tm_error *err;
    const jinja_tmpl *t;
    jframe *root;
    int64_t now;
    int depth;
    long steps;  // statements run and loop iterations, bounded by JINJA_MAX_STEPS
} jctx;

// Bounds that no chat template comes near, so that a hostile template (one downloaded
// with a model) fails with an error instead of hanging or exhausting memory.
#define JINJA_MAX_STEPS 2000000L          // statements + loop iterations per render
#define JINJA_MAX_STR ((size_t)16 << 20)   // bytes of one string value or of the output
#define JINJA_MAX_ARENA ((size_t)256 << 20) // bytes of all values of one render

_Noreturn void jfail(jctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *jalloc(jctx *c, size_t n);  // fails the render when out of memory

jv jv_str(jctx *c, const char *p, size_t n);  // copies
static inline jv jv_cstr(const char *p, size_t n) { jv v = {JV_STR, {0}}; v.s.p = p; v.s.n = n; return v; }
static inline jv jv_int(int64_t i) { jv v = {JV_INT, {0}}; v.i = i; return v; }
static inline jv jv_float(double f) { jv v = {JV_FLOAT, {0}}; v.f = f; return v; }
static inline jv jv_bool(int b) { jv v = {JV_BOOL, {0}}; v.b = !!b; return v; }
static inline jv jv_none(void) { jv v = {JV_NONE, {0}}; return v; }
static inline jv jv_undef(void) { jv v = {JV_UNDEF, {0}}; return v; }
jv jv_list(jctx *c, int cap);
jv jv_dict(jctx *c, int cap);
void jl_push(jctx *c, jlist *l, jv v);
void jd_set(jctx *c, jdict *d, const char *k, size_t kl, jv v);
jv *jd_get(const jdict *d, const char *k, size_t kl);
jv jv_from_json(jctx *c, const json *j);
int jv_truthy(jv v);
int jv_equal(jv a, jv b);
const char *jv_type_name(jv v);
// Appends the value as {{ v }} prints it.
void jv_print(jctx *c, sbuf *b, jv v);
jv jv_to_str(jctx *c, jv v);
// tojson: indent < 0 for none; separators NULL for the defaults.
void jv_tojson(jctx *c, sbuf *b, jv v, int indent, int depth, const char *item_sep, const char *key_sep, int sort_keys);
jv jv_from_sbuf(jctx *c, sbuf *b);  // copies the text into the arena and frees b

// UTF-8 helpers (code points, as Python's str)
size_t ju_len(const char *p, size_t n);
size_t ju_offset(const char *p, size_t n, size_t cp);  // byte offset of code point cp
int ju_space(uint32_t c);                               // JavaScript's \s (trim, split)
uint32_t ju_decode(const char *p, size_t n, int *adv);

// builtins (jinja_builtins.c)
jv jb_filter(jctx *c, const jnode *at, const char *name, jv x, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw);
int jb_test(jctx *c, const jnode *at, const char *name, jv x, const jv *args, int nargs);
jv jb_method(jctx *c, const jnode *at, jv self, const char *name, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw, int *found);
jv jb_global(jctx *c, const jnode *at, const char *name, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw);
int jb_is_global(const char *name);
// Calls a macro value (jinja_eval.c), for filters such as map that call back.
jv jinja_call(jctx *c, const jnode *at, jv fn, const jv *args, int nargs, const char **kw, const jv *kwv, int nkw, jv *caller);
