// tokenizer/jinja_parse: tokens to a syntax tree, by recursive descent following
// jinja2's grammar (parser.py): the precedence, lowest first, is
//   a if b else c  <  or  <  and  <  not  <  comparisons, in, not in  <  + -  <  ~
//   <  * / // %  <  **  <  unary - +  <  postfix . [] () and the filters | and tests is.
// Node operands: N_IF a=cond list=body list2=else; N_FOR a=target b=iterable c=filter
// list=body list2=else; N_SET a=target b=value; N_SETBLOCK a=target list=body;
// N_MACRO s=name list=params (N_NAME or N_KW with default) list2=body; N_CALLBLOCK
// a=call list=caller params list2=body; N_FILTERBLOCK a=filter chain (innermost
// operand NULL) list=body; N_ATTR a.s; N_ITEM a[b]; N_SLICE a[b:c:d]; N_CALL a(list);
// N_FILTER a|s(list); N_TEST a is s(list), op=negated; N_COND a if b else c.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer/jinja_internal.h"

typedef struct parser {
    const jtok *t;
    int i, n;
    jarena *a;
    const char *name;
    tm_error *err;
    int depth;   // nesting of expressions and blocks: bounded, so no input overflows the stack
    jmp_buf jb;  // a syntax error unwinds to jinja_parse, which frees the arena
} parser;
#define MAX_NEST 200

static _Noreturn void pfail(parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pfail(parser *P, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)  // one line, whatever text the message quotes
        if (*p == '\n' || *p == '\r') *p = ' ';
    tm_fail(P->err, "%s line %d: %s", P->name, P->t[P->i].line, msg);
    longjmp(P->jb, 1);
}

static jnode *node(parser *P, int kind) {
    jnode *x = ja_alloc(P->a, sizeof *x);
    if (!x) { tm_fail(P->err, "%s: out of memory", P->name); longjmp(P->jb, 1); }
    x->kind = kind;
    x->line = P->t[P->i].line;
    return x;
}
static void add(parser *P, jnodes *l, jnode *x) {
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 4;
        jnode **nv = ja_alloc(P->a, (size_t)nc * sizeof *nv);
        if (!nv) { tm_fail(P->err, "%s: out of memory", P->name); longjmp(P->jb, 1); }
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
}

static const jtok *cur(parser *P) { return &P->t[P->i]; }
static int is_op(parser *P, const char *op) {
    const jtok *t = cur(P);
    return t->type == T_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n);
}
static int is_name(parser *P, const char *kw) {
    const jtok *t = cur(P);
    return t->type == T_NAME && t->n == strlen(kw) && !memcmp(t->s, kw, t->n);
}
static int accept_op(parser *P, const char *op) { if (!is_op(P, op)) return 0; P->i++; return 1; }
static int accept_name(parser *P, const char *kw) { if (!is_name(P, kw)) return 0; P->i++; return 1; }
static const char *tok_desc(const jtok *t) {
    switch (t->type) {
    case T_EOF: return "end of template";
    case T_ESTMT: return "%}";
    case T_EEXPR: return "}}";
    case T_TEXT: return "text";
    default: return "token";
    }
}
static void expect_op(parser *P, const char *op) {
    if (!accept_op(P, op)) pfail(P, "expected '%s', got %s '%.*s'", op, tok_desc(cur(P)), (int)cur(P)->n, cur(P)->s);
}
static void expect_type(parser *P, int type, const char *what) {
    if (cur(P)->type != type) pfail(P, "expected %s, got %s '%.*s'", what, tok_desc(cur(P)), (int)cur(P)->n, cur(P)->s);
    P->i++;
}
static const jtok *expect_ident(parser *P) {
    if (cur(P)->type != T_NAME) pfail(P, "expected a name, got %s '%.*s'", tok_desc(cur(P)), (int)cur(P)->n, cur(P)->s);
    return &P->t[P->i++];
}

static jnode *expr(parser *P);
static jnode *expr_or(parser *P);
static jnode *unary(parser *P);

static void args(parser *P, jnodes *out) {  // after '(' up to and including ')'
    while (!accept_op(P, ")")) {
        if (out->n) expect_op(P, ",");
        if (accept_op(P, ")")) break;  // trailing comma
        if (cur(P)->type == T_NAME && P->t[P->i + 1].type == T_OP && P->t[P->i + 1].n == 1 && P->t[P->i + 1].s[0] == '=') {
            jnode *k = node(P, N_KW);
            k->s = cur(P)->s;
            k->sn = cur(P)->n;
            P->i += 2;
            k->a = expr(P);
            add(P, out, k);
        } else
            add(P, out, expr(P));
    }
}

static jnode *primary(parser *P) {
    const jtok *t = cur(P);
    jnode *x;
    switch (t->type) {
    case T_NAME:
        x = node(P, N_LIT);
        P->i++;
#define KW(w) (t->n == sizeof w - 1 && !memcmp(t->s, w, t->n))
        if (KW("true") || KW("True")) x->lit = jv_bool(1);
        else if (KW("false") || KW("False")) x->lit = jv_bool(0);
        else if (KW("none") || KW("None")) x->lit = jv_none();
        else { x->kind = N_NAME; x->s = t->s; x->sn = t->n; }
#undef KW
        return x;
    case T_STR: {
        x = node(P, N_LIT);
        // adjacent literals concatenate: 'a' 'b'
        size_t n = 0;
        int k;
        for (k = P->i; P->t[k].type == T_STR; k++) n += P->t[k].n;
        char *s = ja_alloc(P->a, n + 1);
        if (!s) pfail(P, "out of memory");
        n = 0;
        for (; P->i < k; P->i++) { memcpy(s + n, P->t[P->i].s, P->t[P->i].n); n += P->t[P->i].n; }
        x->lit = jv_cstr(s, n);
        return x;
    }
    case T_INT: x = node(P, N_LIT); x->lit = jv_int(t->i); P->i++; return x;
    case T_FLOAT: x = node(P, N_LIT); x->lit = jv_float(t->f); P->i++; return x;
    case T_OP:
        if (accept_op(P, "(")) {
            x = node(P, N_TUPLE);
            if (accept_op(P, ")")) return x;
            jnode *e = expr(P);
            if (accept_op(P, ")")) return e;
            add(P, &x->list, e);
            while (accept_op(P, ",")) {
                if (is_op(P, ")")) break;
                add(P, &x->list, expr(P));
            }
            expect_op(P, ")");
            return x;
        }
        if (accept_op(P, "[")) {
            x = node(P, N_LIST);
            while (!accept_op(P, "]")) {
                if (x->list.n) expect_op(P, ",");
                if (accept_op(P, "]")) break;
                add(P, &x->list, expr(P));
            }
            return x;
        }
        if (accept_op(P, "{")) {
            x = node(P, N_DICT);
            while (!accept_op(P, "}")) {
                if (x->list.n) expect_op(P, ",");
                if (accept_op(P, "}")) break;
                add(P, &x->list, expr(P));
                expect_op(P, ":");
                add(P, &x->list2, expr(P));
            }
            return x;
        }
        break;
    default: break;
    }
    if (t->type == T_ESTMT || t->type == T_EEXPR || t->type == T_EOF) pfail(P, "unexpected %s", tok_desc(t));
    pfail(P, "unexpected %s '%.*s'", tok_desc(t), (int)t->n, t->s);
}

// Tests that take one argument without parentheses: `x is divisibleby 3`.
static int test_takes_arg(const char *s, size_t n) {
    static const char *w[] = {"divisibleby", "sameas", "eq", "equalto", "ne", "lt", "gt", "le", "ge", "in"};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (strlen(w[i]) == n && !memcmp(w[i], s, n)) return 1;
    return 0;
}

static jnode *postfix(parser *P, jnode *x) {
    for (;;) {
        if (accept_op(P, ".")) {
            jnode *y = node(P, N_ATTR);
            if (cur(P)->type == T_INT) {  // x.0 is x[0]
                y->kind = N_ITEM;
                y->b = node(P, N_LIT);
                y->b->lit = jv_int(cur(P)->i);
                P->i++;
            } else {
                const jtok *t = expect_ident(P);
                y->s = t->s;
                y->sn = t->n;
            }
            y->a = x;
            x = y;
        } else if (accept_op(P, "[")) {
            jnode *y = node(P, N_ITEM), *e[3] = {NULL, NULL, NULL};
            int k = 0, slice = 0;
            for (;;) {
                if (!is_op(P, ":") && !is_op(P, "]")) e[k] = expr(P);
                if (k < 2 && accept_op(P, ":")) { slice = 1; k++; continue; }
                break;
            }
            expect_op(P, "]");
            y->a = x;
            if (slice) { y->kind = N_SLICE; y->b = e[0]; y->c = e[1]; y->d = e[2]; }
            else if (!e[0]) pfail(P, "empty subscript");
            else y->b = e[0];
            x = y;
        } else if (accept_op(P, "(")) {
            jnode *y = node(P, N_CALL);
            y->a = x;
            args(P, &y->list);
            x = y;
        } else if (accept_op(P, "|")) {
            jnode *y = node(P, N_FILTER);
            const jtok *t = expect_ident(P);
            y->s = t->s;
            y->sn = t->n;
            y->a = x;
            if (accept_op(P, "(")) args(P, &y->list);
            x = y;
        } else if (is_name(P, "is")) {
            P->i++;
            jnode *y = node(P, N_TEST);
            y->op = accept_name(P, "not");
            const jtok *t = expect_ident(P);
            y->s = t->s;
            y->sn = t->n;
            y->a = x;
            if (accept_op(P, "(")) args(P, &y->list);
            else if (test_takes_arg(t->s, t->n) && cur(P)->type != T_ESTMT && cur(P)->type != T_EEXPR)
                add(P, &y->list, postfix(P, primary(P)));
            x = y;
        } else
            return x;
    }
}

static jnode *unary(parser *P) {
    if (accept_op(P, "-") || accept_op(P, "+")) {
        if (++P->depth > MAX_NEST) pfail(P, "expression nested too deep");
        int neg = P->t[P->i - 1].s[0] == '-';
        jnode *x = node(P, N_NEG);
        x->a = unary(P);
        P->depth--;
        return neg ? x : x->a;
    }
    return postfix(P, primary(P));
}

static jnode *bin(parser *P, int op, jnode *a, jnode *b) {
    jnode *x = node(P, N_BIN);
    x->op = op;
    x->a = a;
    x->b = b;
    return x;
}
static jnode *expr_pow(parser *P) {
    jnode *x = unary(P);
    while (accept_op(P, "**")) x = bin(P, OP_POW, x, unary(P));
    return x;
}
static jnode *expr_mul(parser *P) {
    jnode *x = expr_pow(P);
    for (;;) {
        if (accept_op(P, "*")) x = bin(P, OP_MUL, x, expr_pow(P));
        else if (accept_op(P, "//")) x = bin(P, OP_FLOORDIV, x, expr_pow(P));
        else if (accept_op(P, "/")) x = bin(P, OP_DIV, x, expr_pow(P));
        else if (accept_op(P, "%")) x = bin(P, OP_MOD, x, expr_pow(P));
        else return x;
    }
}
static jnode *expr_cat(parser *P) {
    jnode *x = expr_mul(P);
    while (accept_op(P, "~")) x = bin(P, OP_CAT, x, expr_mul(P));
    return x;
}
static jnode *expr_add(parser *P) {
    jnode *x = expr_cat(P);
    for (;;) {
        if (accept_op(P, "+")) x = bin(P, OP_ADD, x, expr_cat(P));
        else if (accept_op(P, "-")) x = bin(P, OP_SUB, x, expr_cat(P));
        else return x;
    }
}
static jnode *expr_cmp(parser *P) {
    jnode *x = expr_add(P);
    for (;;) {
        static const struct { const char *s; int op; } ops[] = {
            {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE}, {"<", OP_LT}, {">", OP_GT}};
        int op = -1;
        for (size_t k = 0; k < sizeof ops / sizeof ops[0] && op < 0; k++)
            if (accept_op(P, ops[k].s)) op = ops[k].op;
        if (op < 0 && accept_name(P, "in")) op = OP_IN;
        if (op < 0 && is_name(P, "not") && P->t[P->i + 1].type == T_NAME && P->t[P->i + 1].n == 2 &&
            !memcmp(P->t[P->i + 1].s, "in", 2)) {
            P->i += 2;
            op = OP_NOTIN;
        }
        if (op < 0) return x;
        x = bin(P, op, x, expr_add(P));
    }
}
static jnode *expr_not(parser *P) {
    if (accept_name(P, "not")) {
        if (++P->depth > MAX_NEST) pfail(P, "expression nested too deep");
        jnode *x = node(P, N_NOT);
        x->a = expr_not(P);
        P->depth--;
        return x;
    }
    return expr_cmp(P);
}
static jnode *expr_and(parser *P) {
    jnode *x = expr_not(P);
    while (accept_name(P, "and")) {
        jnode *y = node(P, N_AND);
        y->a = x;
        y->b = expr_not(P);
        x = y;
    }
    return x;
}
static jnode *expr_or(parser *P) {
    jnode *x = expr_and(P);
    while (accept_name(P, "or")) {
        jnode *y = node(P, N_OR);
        y->a = x;
        y->b = expr_and(P);
        x = y;
    }
    return x;
}
static jnode *expr(parser *P) {
    if (++P->depth > MAX_NEST) pfail(P, "expression nested too deep");
    jnode *x = expr_or(P);
    while (accept_name(P, "if")) {
        jnode *y = node(P, N_COND);
        y->b = expr_or(P);
        y->a = x;
        if (accept_name(P, "else")) y->c = expr(P);
        x = y;
    }
    P->depth--;
    return x;
}

// Assignment and loop targets: a name, ns.attr, or names separated by commas.
static jnode *target(parser *P, int allow_attr) {
    const jtok *t = expect_ident(P);
    jnode *x = node(P, N_NAME);
    x->s = t->s;
    x->sn = t->n;
    if (allow_attr && accept_op(P, ".")) {
        jnode *y = node(P, N_ATTR);
        const jtok *u = expect_ident(P);
        y->a = x;
        y->s = u->s;
        y->sn = u->n;
        return y;
    }
    if (!is_op(P, ",")) return x;
    jnode *tu = node(P, N_TUPLE);
    add(P, &tu->list, x);
    while (accept_op(P, ",")) {
        t = expect_ident(P);
        jnode *y = node(P, N_NAME);
        y->s = t->s;
        y->sn = t->n;
        add(P, &tu->list, y);
    }
    return tu;
}

static void params(parser *P, jnodes *out) {  // (a, b=1, ...)
    expect_op(P, "(");
    while (!accept_op(P, ")")) {
        if (out->n) expect_op(P, ",");
        const jtok *t = expect_ident(P);
        jnode *x = node(P, N_NAME);
        x->s = t->s;
        x->sn = t->n;
        if (accept_op(P, "=")) { x->kind = N_KW; x->a = expr(P); }
        add(P, out, x);
    }
}

static const char *body(parser *P, jnodes *out, const char *const *ends, int open_line);

// After `{% KEYWORD`, up to and including its %} and its end tag.
static jnode *statement(parser *P, const jtok *kw) {
#define KW(w) (kw->n == sizeof w - 1 && !memcmp(kw->s, w, kw->n))
    jnode *x;
    if (KW("if") || KW("elif")) {
        x = node(P, N_IF);
        x->a = expr(P);
        expect_type(P, T_ESTMT, "%}");
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        const char *e = body(P, &x->list, ends, x->line);
        if (!strcmp(e, "elif")) {
            P->i--;  // the elif keyword starts a nested if
            jnode *y = statement(P, &P->t[P->i++]);
            add(P, &x->list2, y);
        } else if (!strcmp(e, "else")) {
            expect_type(P, T_ESTMT, "%}");
            static const char *const ends2[] = {"endif", NULL};
            body(P, &x->list2, ends2, x->line);
            expect_type(P, T_ESTMT, "%}");
        } else
            expect_type(P, T_ESTMT, "%}");
        return x;
    }
    if (KW("for")) {
        x = node(P, N_FOR);
        x->a = target(P, 0);
        if (!accept_name(P, "in")) pfail(P, "expected 'in' in a for loop");
        x->b = expr_or(P);
        if (accept_name(P, "if")) x->c = expr_or(P);
        accept_name(P, "recursive");
        expect_type(P, T_ESTMT, "%}");
        static const char *const ends[] = {"else", "endfor", NULL};
        const char *e = body(P, &x->list, ends, x->line);
        expect_type(P, T_ESTMT, "%}");
        if (!strcmp(e, "else")) {
            static const char *const ends2[] = {"endfor", NULL};
            body(P, &x->list2, ends2, x->line);
            expect_type(P, T_ESTMT, "%}");
        }
        return x;
    }
    if (KW("set")) {
        x = node(P, N_SET);
        x->a = target(P, 1);
        if (accept_op(P, "=")) {
            x->b = expr(P);
            if (is_op(P, ",")) {  // set a = 1, 2
                jnode *tu = node(P, N_TUPLE);
                add(P, &tu->list, x->b);
                while (accept_op(P, ",")) add(P, &tu->list, expr(P));
                x->b = tu;
            }
            expect_type(P, T_ESTMT, "%}");
            return x;
        }
        x->kind = N_SETBLOCK;
        expect_type(P, T_ESTMT, "%}");
        static const char *const ends[] = {"endset", NULL};
        body(P, &x->list, ends, x->line);
        expect_type(P, T_ESTMT, "%}");
        return x;
    }
    if (KW("macro")) {
        x = node(P, N_MACRO);
        const jtok *t = expect_ident(P);
        x->s = t->s;
        x->sn = t->n;
        params(P, &x->list);
        expect_type(P, T_ESTMT, "%}");
        static const char *const ends[] = {"endmacro", NULL};
        body(P, &x->list2, ends, x->line);
        if (cur(P)->type == T_NAME) P->i++;  // {% endmacro name %}
        expect_type(P, T_ESTMT, "%}");
        return x;
    }
    if (KW("call")) {
        x = node(P, N_CALLBLOCK);
        if (is_op(P, "(")) params(P, &x->list);
        x->a = expr(P);
        if (x->a->kind != N_CALL) pfail(P, "{%% call %%} needs a macro call");
        expect_type(P, T_ESTMT, "%}");
        static const char *const ends[] = {"endcall", NULL};
        body(P, &x->list2, ends, x->line);
        expect_type(P, T_ESTMT, "%}");
        return x;
    }
    if (KW("filter")) {
        x = node(P, N_FILTERBLOCK);
        jnode *f = NULL;
        do {
            jnode *y = node(P, N_FILTER);
            const jtok *t = expect_ident(P);
            y->s = t->s;
            y->sn = t->n;
            y->a = f;
            if (accept_op(P, "(")) args(P, &y->list);
            f = y;
        } while (accept_op(P, "|"));
        x->a = f;
        expect_type(P, T_ESTMT, "%}");
        static const char *const ends[] = {"endfilter", NULL};
        body(P, &x->list, ends, x->line);
        expect_type(P, T_ESTMT, "%}");
        return x;
    }
    if (KW("break") || KW("continue")) {
        x = node(P, KW("break") ? N_BREAK : N_CONTINUE);
        expect_type(P, T_ESTMT, "%}");
        return x;
    }
    if (KW("generation") || KW("endgeneration")) {  // TRL's assistant mask markers: no output
        expect_type(P, T_ESTMT, "%}");
        return NULL;
    }
    P->i--;
    if (kw->n > 3 && !memcmp(kw->s, "end", 3)) pfail(P, "unexpected {%% %.*s %%}", (int)kw->n, kw->s);
    pfail(P, "unknown statement '%.*s'", (int)kw->n, kw->s);
#undef KW
}

// Parses statements into out until `{% END` for one of ends (NULL: until the end of
// the template). Returns the end keyword found, its %} not yet consumed.
static const char *body(parser *P, jnodes *out, const char *const *ends, int open_line) {
    for (;;) {
        const jtok *t = cur(P);
        if (t->type == T_EOF) {
            if (!ends) return "";
            int k = 0;
            while (ends[k + 1]) k++;
            tm_fail(P->err, "%s line %d: missing {%% %s %%} of the block opened here", P->name, open_line, ends[k]);
            longjmp(P->jb, 1);
        }
        if (t->type == T_TEXT) {
            jnode *x = node(P, N_TEXT);
            x->s = t->s;
            x->sn = t->n;
            add(P, out, x);
            P->i++;
        } else if (t->type == T_BEXPR) {
            P->i++;
            jnode *x = node(P, N_OUT);
            x->a = expr(P);
            expect_type(P, T_EEXPR, "}}");
            add(P, out, x);
        } else if (t->type == T_BSTMT) {
            P->i++;
            const jtok *kw = expect_ident(P);
            for (int k = 0; ends && ends[k]; k++)
                if (kw->n == strlen(ends[k]) && !memcmp(kw->s, ends[k], kw->n)) return ends[k];
            if (++P->depth > MAX_NEST) pfail(P, "blocks nested too deep");
            jnode *x = statement(P, kw);
            P->depth--;
            if (x) add(P, out, x);
        } else
            pfail(P, "unexpected %s", tok_desc(t));
    }
}

jinja_tmpl *jinja_parse(const char *src, size_t len, const char *name, tm_error *err) {
    jinja_tmpl *volatile T = calloc(1, sizeof *T);
    if (!T) { tm_fail(err, "%s: out of memory", name); return NULL; }
    T->name = strdup(name ? name : "template");
    if (!T->name) { free(T); tm_fail(err, "%s: out of memory", name); return NULL; }
    jtoks toks = {0};
    if (jinja_lex(src, len, T->name, &T->arena, &toks, err)) { jinja_free(T); return NULL; }
    parser P;
    memset(&P, 0, sizeof P);
    P.t = toks.v;
    P.n = toks.n;
    P.a = &T->arena;
    P.name = T->name;
    P.err = err;
    if (setjmp(P.jb)) { jinja_free(T); return NULL; }
    body(&P, &T->body, NULL, 0);
    return T;
}

void jinja_free(jinja_tmpl *t) {
    if (!t) return;
    ja_free(&t->arena);
    free(t->name);
    free(t);
}
const char *jinja_name(const jinja_tmpl *t) { return t->name; }
