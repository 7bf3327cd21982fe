// reward/math_answer: extraction and exact equality of math answers.
// Pipeline for equality: normalize (token-aware rewrite of LaTeX noise, units,
// percent, text wrappers) -> parse (scannerless recursive descent into a small
// tree) -> compare by type. Scalars compare exactly as GMP rationals when both
// sides evaluate to rationals; otherwise by identity testing at seeded random
// points in complex long double with relative tolerance 1e-11. Every stage is
// bounded (see the MA_* limits), so the work per call is bounded too.
#include "reward/math_answer.h"
#include <complex.h>
#include <ctype.h>
#include <gmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/rng.h"

#define MA_MAX_IN 4096      // bytes of one answer after extraction
#define MA_MAX_NODES 4096   // parse tree size
#define MA_MAX_DEPTH 200    // parser recursion
#define MA_MAX_BITS 20000   // bignum size during exact evaluation
#define MA_MAX_ITEMS 256    // items in one tuple/set/matrix
#define MA_POINTS 5         // sample points for identity testing
#define MA_RTOL 1e-11L

// ======================================================================
// small string builder (local: the verifier must not allocate per char)
typedef struct { char *s; size_t n, cap; int oom; } buf;
static void b_put(buf *b, const char *p, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->s, c);
        if (!q) { b->oom = 1; return; }
        b->s = q; b->cap = c;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void b_putc(buf *b, char c) { b_put(b, &c, 1); }
static void b_puts(buf *b, const char *p) { b_put(b, p, strlen(p)); }

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

// ======================================================================
// extraction

void math_extract_opts_default(math_extract_opts *o) {
    o->n = 4;
    o->order[0] = MATH_EXTRACT_BOXED;
    o->order[1] = MATH_EXTRACT_ANSWER_IS;
    o->order[2] = MATH_EXTRACT_HASH;
    o->order[3] = MATH_EXTRACT_TOOL_OUTPUT;
}

const char *math_extractor_name(math_extractor e) {
    switch (e) {
    case MATH_EXTRACT_BOXED: return "boxed";
    case MATH_EXTRACT_ANSWER_IS: return "answer";
    case MATH_EXTRACT_HASH: return "hash";
    case MATH_EXTRACT_TOOL_OUTPUT: return "tool";
    case MATH_EXTRACT_LAST_NUMBER: return "last";
    }
    return "?";
}

int math_extract_opts_parse(math_extract_opts *o, const char *spec) {
    o->n = 0;
    const char *p = spec;
    while (*p) {
        const char *q = p;
        while (*q && *q != ',') q++;
        size_t n = (size_t)(q - p);
        int found = -1;
        for (int e = 0; e <= MATH_EXTRACT_LAST_NUMBER; e++) {
            const char *nm = math_extractor_name((math_extractor)e);
            if (strlen(nm) == n && !strncmp(nm, p, n)) found = e;
        }
        if (found < 0 || o->n >= 8) return -1;
        o->order[o->n++] = (math_extractor)found;
        p = *q ? q + 1 : q;
    }
    return o->n ? 0 : -1;
}

static int trim_span(const char *t, size_t *s, size_t *e) {
    while (*s < *e && isspace((unsigned char)t[*s])) (*s)++;
    while (*e > *s && isspace((unsigned char)t[*e - 1])) (*e)--;
    return *e > *s;
}

// Last occurrence of needle in t[from..to), or (size_t)-1.
static size_t last_of(const char *t, size_t from, size_t to, const char *needle, int icase) {
    size_t m = strlen(needle);
    if (to < from + m) return (size_t)-1;
    for (size_t i = to - m + 1; i-- > from;)
        if (icase ? !strncasecmp(t + i, needle, m) : !memcmp(t + i, needle, m)) return i;
    return (size_t)-1;
}

// 1 found, 0 none, -1 an unterminated final box.
static int ex_boxed(const char *t, size_t from, size_t to, size_t *s, size_t *l) {
    size_t best = (size_t)-1, blen = 0;
    const char *names[] = {"\\boxed", "\\fbox"};
    for (int k = 0; k < 2; k++) {
        size_t pos = to;
        while (1) {
            size_t i = last_of(t, from, pos, names[k], 0);
            if (i == (size_t)-1) break;
            size_t j = i + strlen(names[k]);
            // \boxedfoo is another command
            if (j < to && isalpha((unsigned char)t[j])) { pos = i; continue; }
            if (best == (size_t)-1 || i > best) { best = i; blen = strlen(names[k]); }
            break;
        }
    }
    if (best == (size_t)-1) return 0;
    size_t j = best + blen;
    while (j < to && (t[j] == ' ' || t[j] == '\t')) j++;
    if (j < to && t[j] == '{') {
        int depth = 0;
        for (size_t k = j; k < to; k++) {
            if (t[k] == '\\' && k + 1 < to) { k++; continue; }
            if (t[k] == '{') depth++;
            else if (t[k] == '}' && --depth == 0) {
                size_t a = j + 1, e = k;
                if (!trim_span(t, &a, &e)) return 0;
                *s = a; *l = e - a;
                return 1;
            }
        }
        return -1;
    }
    // "\boxed 5": up to whitespace, '$' or end
    size_t a = j, e = j;
    while (e < to && !isspace((unsigned char)t[e]) && t[e] != '$') e++;
    while (e > a && (t[e - 1] == '.' || t[e - 1] == ',')) e--;
    if (e == a) return 0;
    *s = a; *l = e - a;
    return 1;
}

// Cleans an answer phrase tail: stops at the end of the sentence or line.
static int sentence_span(const char *t, size_t a, size_t to, size_t *s, size_t *l) {
    while (a < to && (t[a] == ' ' || t[a] == ':' || t[a] == '\t' || t[a] == '*')) a++;
    size_t e = a;
    int dollars = 0;
    while (e < to && t[e] != '\n') {
        if (t[e] == '$') dollars++;
        // sentence end: ". " or "." at the end, outside math
        if (t[e] == '.' && !(dollars & 1) && (e + 1 >= to || isspace((unsigned char)t[e + 1]))) break;
        e++;
    }
    // strip a Minerva tail and markdown
    size_t h = last_of(t, a, e, "I hope it is correct", 1);
    if (h != (size_t)-1) e = h;
    while (e > a && (isspace((unsigned char)t[e - 1]) || t[e - 1] == '.' || t[e - 1] == '*')) e--;
    if (!trim_span(t, &a, &e)) return 0;
    *s = a; *l = e - a;
    return 1;
}

static int ex_answer_is(const char *t, size_t from, size_t to, size_t *s, size_t *l) {
    const char *phr[] = {"final answer is", "answer is", "final answer:", "answer:"};
    size_t best = (size_t)-1, bl = 0;
    for (int k = 0; k < 4; k++) {
        size_t i = last_of(t, from, to, phr[k], 1);
        if (i != (size_t)-1 && (best == (size_t)-1 || i + strlen(phr[k]) > best + bl)) {
            best = i; bl = strlen(phr[k]);
        }
    }
    if (best == (size_t)-1) return 0;
    return sentence_span(t, best + bl, to, s, l);
}

static int ex_hash(const char *t, size_t from, size_t to, size_t *s, size_t *l) {
    size_t i = last_of(t, from, to, "####", 0);
    if (i == (size_t)-1) return 0;
    size_t a = i + 4, e = a;
    while (e < to && t[e] != '\n') e++;
    while (e > a && (isspace((unsigned char)t[e - 1]) || t[e - 1] == '.')) e--;
    if (!trim_span(t, &a, &e)) return 0;
    *s = a; *l = e - a;
    return 1;
}

static int is_num_start(const char *t, size_t i, size_t to) {
    return isdigit((unsigned char)t[i]) || (t[i] == '.' && i + 1 < to && isdigit((unsigned char)t[i + 1]));
}

static int ex_last_number(const char *t, size_t from, size_t to, size_t *s, size_t *l) {
    size_t i = to;
    while (i > from && !isdigit((unsigned char)t[i - 1])) i--;
    if (i == from) return 0;
    size_t e = i, a = i;
    while (a > from && (isdigit((unsigned char)t[a - 1]) || t[a - 1] == '.' ||
                        (t[a - 1] == ',' && a >= from + 2 && isdigit((unsigned char)t[a - 2]))))
        a--;
    while (a < e && !is_num_start(t, a, to)) a++;
    if (a > from && t[a - 1] == '-') a--;
    // a fraction a/b ends here: take it whole
    if (a >= from + 2 && t[a - 1] == '/' && isdigit((unsigned char)t[a - 2])) {
        size_t b = a - 1;
        while (b > from && isdigit((unsigned char)t[b - 1])) b--;
        a = b;
    }
    *s = a; *l = e - a;
    return e > a;
}

static int ex_tool(const char *t, size_t from, size_t to, size_t *s, size_t *l) {
    size_t i = last_of(t, from, to, "```output", 0);
    if (i == (size_t)-1) return 0;
    size_t j = last_of(t, i + 9, to, "```", 0);
    if (j == (size_t)-1) return 0;
    size_t a = j + 3;
    int r = ex_boxed(t, a, to, s, l);
    if (r) return r > 0;
    if (ex_answer_is(t, a, to, s, l)) return 1;
    return ex_last_number(t, a, to, s, l);
}

int math_extract(const char *text, size_t len, const math_extract_opts *o, size_t *start, size_t *alen,
                 math_extractor *which) {
    math_extract_opts d;
    if (!o) { math_extract_opts_default(&d); o = &d; }
    for (int k = 0; k < o->n; k++) {
        int r = 0;
        switch (o->order[k]) {
        case MATH_EXTRACT_BOXED: r = ex_boxed(text, 0, len, start, alen); if (r < 0) return 0; break;
        case MATH_EXTRACT_ANSWER_IS: r = ex_answer_is(text, 0, len, start, alen); break;
        case MATH_EXTRACT_HASH: r = ex_hash(text, 0, len, start, alen); break;
        case MATH_EXTRACT_TOOL_OUTPUT: r = ex_tool(text, 0, len, start, alen); break;
        case MATH_EXTRACT_LAST_NUMBER: r = ex_last_number(text, 0, len, start, alen); break;
        }
        if (r > 0) {
            if (which) *which = o->order[k];
            return 1;
        }
    }
    return 0;
}

// ======================================================================
// normalization

static const char *UNIT_WORDS[] = {
    "cm", "mm", "km", "meters", "meter", "metres", "inches", "inch", "feet", "foot", "ft", "yards", "yard",
    "miles", "mile", "units", "unit", "square", "sq", "cubic", "dollars", "dollar", "cents", "cent",
    "degrees", "degree", "hours", "hour", "hrs", "minutes", "minute", "mins", "seconds", "second", "secs",
    "days", "day", "weeks", "week", "years", "year", "months", "month", "pounds", "pound", "lbs",
    "ounces", "oz", "gallons", "gallon", "liters", "liter", "litres", "grams", "gram", "kg", "mph",
    "percent", "pct", "people", "points", "ways", "times", NULL};

static int is_unit_word(const char *w, size_t n) {
    for (int i = 0; UNIT_WORDS[i]; i++)
        if (strlen(UNIT_WORDS[i]) == n && !strncasecmp(UNIT_WORDS[i], w, n)) return 1;
    return 0;
}

static size_t cmd_len(const char *s) {  // s points after '\'
    size_t n = 0;
    while (isalpha((unsigned char)s[n])) n++;
    return n;
}

// Reads a {...} group starting at s[i] == '{'; returns index after '}' or 0 if unbalanced.
static size_t group_end(const char *s, size_t i) {
    int d = 0;
    for (size_t k = i; s[k]; k++) {
        if (s[k] == '\\' && s[k + 1]) { k++; continue; }
        if (s[k] == '{') d++;
        else if (s[k] == '}' && --d == 0) return k + 1;
    }
    return 0;
}

static int has_content(const buf *b) {
    for (size_t i = 0; i < b->n; i++)
        if (!isspace((unsigned char)b->s[i])) return 1;
    return 0;
}

static void normalize_into(const char *s, buf *o, int depth);

// \text{...} and friends: a unit tail after content is dropped, "and"/"or" become
// a comma, anything else is unwrapped.
static size_t norm_text(const char *s, size_t i, size_t cl, buf *o, int depth) {
    size_t j = i + 1 + cl;
    while (s[j] == ' ') j++;
    if (s[j] != '{') return j;  // \text without a group: drop the command
    size_t e = group_end(s, j);
    if (!e) return strlen(s);
    size_t a = j + 1, z = e - 1;
    while (a < z && isspace((unsigned char)s[a])) a++;
    while (z > a && isspace((unsigned char)s[z - 1])) z--;
    size_t n = z - a, letters = 0, other = 0;
    for (size_t k = a; k < z; k++) {
        if (isalpha((unsigned char)s[k])) letters++;
        else if (s[k] != ' ' && s[k] != '.' && s[k] != '-') other++;
    }
    if (n == 0) return e;
    if ((n == 3 && !strncasecmp(s + a, "and", 3)) || (n == 2 && !strncasecmp(s + a, "or", 2))) {
        b_putc(o, ',');
        return e;
    }
    if (has_content(o) && letters >= 2 && !other) {
        // a unit: also drop its power (cm^2)
        size_t k = e;
        if (s[k] == '^') {
            if (isdigit((unsigned char)s[k + 1])) k += 2;
            else if (s[k + 1] == '{') { size_t g = group_end(s, k + 1); if (g) k = g; }
        }
        return k;
    }
    char *inner = malloc(n + 1);
    if (!inner) { o->oom = 1; return e; }
    memcpy(inner, s + a, n);
    inner[n] = 0;
    if (depth < 8) normalize_into(inner, o, depth + 1);
    free(inner);
    return e;
}

static void normalize_into(const char *s, buf *o, int depth) {
    size_t i = 0, n = strlen(s);
    while (i < n && !o->oom) {
        unsigned char c = (unsigned char)s[i];
        if (c == '$' || c == '%') { i++; continue; }
        if (c == '~') { b_putc(o, ' '); i++; continue; }
        if (c == '{' && s[i + 1] == ',' && s[i + 2] == '}') { b_putc(o, ','); i += 3; continue; }
        if (c == '^') {  // degrees
            size_t k = i + 1;
            while (s[k] == ' ') k++;
            if (starts(s + k, "\\circ")) { i = k + 5; continue; }
            if (starts(s + k, "{\\circ}")) { i = k + 7; continue; }
            if (starts(s + k, "{ \\circ }")) { i = k + 9; continue; }
        }
        if (c >= 0x80) {  // a few Unicode math characters
            static const struct { const char *u, *r; } U[] = {
                {"\xe2\x88\x92", "-"}, {"\xc3\x97", "*"}, {"\xc3\xb7", "/"}, {"\xcf\x80", "\\pi "},
                {"\xe2\x88\x9a", "\\sqrt"}, {"\xe2\x88\x9e", "\\infty "}, {"\xe2\x89\xa4", "\\le "},
                {"\xe2\x89\xa5", "\\ge "}, {"\xc2\xb0", ""}, {"\xc2\xb7", "*"}, {"\xe2\x88\xaa", "\\cup "},
                {"\xe2\x80\x89", " "}, {"\xc2\xa0", " "}, {"\xe2\x8b\x85", "*"}, {"\xc2\xb1", "\\pm "}};
            int hit = 0;
            for (size_t k = 0; k < sizeof U / sizeof U[0]; k++)
                if (starts(s + i, U[k].u)) { b_puts(o, U[k].r); i += strlen(U[k].u); hit = 1; break; }
            if (!hit) b_putc(o, s[i++]);
            continue;
        }
        if (c != '\\') { b_putc(o, s[i++]); continue; }
        // commands
        char nx = s[i + 1];
        if (nx == '!' || nx == ',' || nx == ';' || nx == ':' || nx == ' ' || nx == '>' || nx == '%' || nx == '$') {
            i += 2;
            continue;
        }
        if (nx == '(' || nx == ')' || nx == '[' || nx == ']') { i += 2; continue; }
        size_t cl = cmd_len(s + i + 1);
        if (cl == 0) { b_putc(o, s[i++]); if (i < n) b_putc(o, s[i++]); continue; }
        const char *w = s + i + 1;
#define IS(x) (cl == strlen(x) && !strncmp(w, x, cl))
        if (IS("left") || IS("right") || IS("bigl") || IS("bigr") || IS("Bigl") || IS("Bigr") || IS("big") ||
            IS("Big") || IS("biggl") || IS("biggr")) {
            i += 1 + cl;
            if (s[i] == '.') i++;  // \left. is an invisible delimiter
            continue;
        }
        if (IS("displaystyle") || IS("limits") || IS("quad") || IS("qquad") || IS("circ") || IS("degree") ||
            IS("textstyle") || IS("nonumber")) {
            i += 1 + cl;
            continue;
        }
        if (IS("text") || IS("textbf") || IS("mbox") || IS("mathrm") || IS("textrm") || IS("mathbf") ||
            IS("textit") || IS("mathit") || IS("emph") || IS("textnormal") || IS("operatorname") || IS("hbox")) {
            i = norm_text(s, i, cl, o, depth);
            continue;
        }
        const char *rep = NULL;
        if (IS("dfrac") || IS("tfrac") || IS("cfrac")) rep = "\\frac";
        else if (IS("dbinom") || IS("tbinom")) rep = "\\binom";
        else if (IS("leq") || IS("leqslant") || IS("le")) rep = "\\le ";
        else if (IS("geq") || IS("geqslant") || IS("ge")) rep = "\\ge ";
        else if (IS("neq") || IS("ne")) rep = "\\ne ";
        else if (IS("lt")) rep = "<";
        else if (IS("gt")) rep = ">";
        else if (IS("cdot") || IS("times") || IS("ast")) rep = "*";
        else if (IS("div")) rep = "/";
        else if (IS("lvert") || IS("rvert") || IS("vert") || IS("mid")) rep = "|";
        else if (IS("lbrace")) rep = "\\{";
        else if (IS("rbrace")) rep = "\\}";
        else if (IS("varnothing")) rep = "\\emptyset ";
        else if (IS("infin")) rep = "\\infty ";
        else if (IS("approx") || IS("equiv")) rep = "=";
        else if (IS("colon")) rep = ":";
#undef IS
        if (rep) { b_puts(o, rep); i += 1 + cl; continue; }
        b_put(o, s + i, 1 + cl);
        i += 1 + cl;
    }
}

// Drops trailing unit words ("5 dollars", "12 square feet") and punctuation.
static void strip_tail(buf *o) {
    for (int round = 0; round < 4; round++) {
        while (o->n && (isspace((unsigned char)o->s[o->n - 1]) || o->s[o->n - 1] == '.' ||
                        o->s[o->n - 1] == ';' || (o->s[o->n - 1] == ',' && o->n > 1)))
            o->s[--o->n] = 0;
        size_t e = o->n, a = e;
        while (a > 0 && isalpha((unsigned char)o->s[a - 1])) a--;
        if (a == e || a == 0 || !is_unit_word(o->s + a, e - a)) break;
        size_t k = a;
        while (k > 0 && o->s[k - 1] == ' ') k--;
        if (k == a) break;  // glued to the previous token: "5ft" may be 5*f*t... keep
        char p = k ? o->s[k - 1] : 0;
        if (!(isdigit((unsigned char)p) || p == '}' || p == ')' || isalpha((unsigned char)p))) break;
        o->n = k;
        o->s[k] = 0;
    }
}

// Leading/trailing wrappers: spaces, a whole \boxed{...}.
static char *normalize(const char *in) {
    buf o = {0};
    normalize_into(in, &o, 0);
    strip_tail(&o);
    if (o.oom) { free(o.s); return NULL; }
    if (!o.s) { o.s = calloc(1, 1); if (!o.s) return NULL; }
    // unwrap \boxed{...} / \fbox{...} covering the whole answer
    char *p = o.s;
    while (isspace((unsigned char)*p)) p++;
    for (int k = 0; k < 4; k++) {
        size_t skip = starts(p, "\\boxed") ? 6 : starts(p, "\\fbox") ? 5 : 0;
        if (!skip) break;
        char *q = p + skip;
        while (*q == ' ') q++;
        if (*q != '{') break;
        size_t e = group_end(q, 0);
        if (!e || q[e] != 0) break;
        q[e - 1] = 0;
        p = q + 1;
    }
    if (p != o.s) memmove(o.s, p, strlen(p) + 1);
    return o.s;
}

// ======================================================================
// parse tree

enum {
    N_NUM, N_SYM, N_PI, N_E, N_I, N_INF, N_ADD, N_SUB, N_MUL, N_DIV, N_POW, N_NEG, N_FUNC, N_FACT,
    N_SEQ, N_LIST, N_UNION, N_MATRIX, N_REL
};
enum { F_SQRT, F_ROOT, F_SIN, F_COS, F_TAN, F_SEC, F_CSC, F_COT, F_ASIN, F_ACOS, F_ATAN, F_SINH, F_COSH,
       F_TANH, F_LN, F_LOG, F_LOGB, F_EXP, F_ABS, F_FLOOR, F_CEIL, F_BINOM };
enum { R_EQ, R_LT, R_LE, R_NE, R_IN };

typedef struct node {
    unsigned char kind, op, mixed, is_dec;
    char open, close;
    short places;     // decimal places of a decimal literal
    int a, b;         // children (-1 none)
    int first, n;     // list children via next
    int next;
    int rows, cols;
    const char *str;  // NUM digits / SYM name
    int slen;
} node;

typedef struct parser {
    const char *s;
    size_t i;
    node *nd;
    int nn, depth, err;
} parser;

static int newnode(parser *p, int kind) {
    if (p->nn >= MA_MAX_NODES) { p->err = 2; return 0; }
    node *x = &p->nd[p->nn];
    memset(x, 0, sizeof *x);
    x->kind = (unsigned char)kind;
    x->a = x->b = x->first = x->next = -1;
    return p->nn++;
}
static int mk2(parser *p, int kind, int a, int b) {
    int k = newnode(p, kind);
    p->nd[k].a = a;
    p->nd[k].b = b;
    return k;
}

static void skipws(parser *p) { while (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r') p->i++; }
static int peekc(parser *p) { skipws(p); return (unsigned char)p->s[p->i]; }
static int at_cmd(parser *p, const char *c) {  // \c not followed by a letter
    skipws(p);
    size_t n = strlen(c);
    return p->s[p->i] == '\\' && !strncmp(p->s + p->i + 1, c, n) && !isalpha((unsigned char)p->s[p->i + 1 + n]);
}
static int eat_cmd(parser *p, const char *c) {
    if (!at_cmd(p, c)) return 0;
    p->i += 1 + strlen(c);
    return 1;
}

static int parse_list(parser *p, char close, int *count);
static int parse_rel(parser *p);
static int parse_expr(parser *p);
static int parse_power(parser *p);
static int parse_unary(parser *p);

static const char *NONATOM_CMDS[] = {"cup", "cap", "le", "ge", "ne", "in", "pm", "mp", "to", "right", "end",
                                     "rfloor", "rceil", "}", "setminus", "notin", "subset", "rangle", NULL};

static int cmd_is_nonatom(const char *s) {
    size_t n = cmd_len(s);
    if (n == 0) return 1;  // \{ \} \\ and friends
    for (int k = 0; NONATOM_CMDS[k]; k++)
        if (strlen(NONATOM_CMDS[k]) == n && !strncmp(NONATOM_CMDS[k], s, n)) return 1;
    return 0;
}

static int atom_starts(parser *p) {
    int c = peekc(p);
    if (isdigit(c) || isalpha(c) || c == '(' || c == '{' || c == '.') return 1;
    if (c == '\\') return !cmd_is_nonatom(p->s + p->i + 1);
    return 0;
}

// A number literal: digits with thousands groups, a decimal part, an exponent.
static int parse_number(parser *p) {
    const char *s = p->s;
    size_t st = p->i, i = p->i;
    while (isdigit((unsigned char)s[i])) i++;
    size_t intlen = i - st;
    // thousands groups: ",ddd" (also ", ddd" is a list, not a group)
    if (intlen >= 1 && intlen <= 3)
        while (s[i] == ',' && isdigit((unsigned char)s[i + 1]) && isdigit((unsigned char)s[i + 2]) &&
               isdigit((unsigned char)s[i + 3]) && !isdigit((unsigned char)s[i + 4]))
            i += 4;
    int places = 0, dec = 0;
    if (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        dec = 1;
        i++;
        while (isdigit((unsigned char)s[i])) { i++; places++; }
    }
    if ((s[i] == 'e' || s[i] == 'E') &&
        (isdigit((unsigned char)s[i + 1]) || ((s[i + 1] == '-' || s[i + 1] == '+') && isdigit((unsigned char)s[i + 2])))) {
        i += 2;
        while (isdigit((unsigned char)s[i])) i++;
    }
    if (i - st > 1000) { p->err = 2; return 0; }
    int k = newnode(p, N_NUM);
    p->nd[k].str = s + st;
    p->nd[k].slen = (int)(i - st);
    p->nd[k].is_dec = (unsigned char)dec;
    p->nd[k].places = (short)places;
    p->i = i;
    // a base-b numeral 1011_2 is its own atom
    if (s[i] == '_' && !dec) {
        size_t j = i + 1;
        if (s[j] == '{') { size_t g = group_end(s, j); if (!g) { p->err = 1; return 0; } j = g; }
        else if (isalnum((unsigned char)s[j])) j++;
        p->nd[k].kind = N_SYM;
        p->nd[k].slen = (int)(j - st);
        p->i = j;
        return k;
    }
    // a mixed number 2\frac{1}{2} (integer followed by a fraction of integer literals)
    if (!dec && intlen == (size_t)(i - st)) {
        size_t j = i;
        while (s[j] == ' ') j++;
        if (!strncmp(s + j, "\\frac", 5)) {
            size_t q = j + 5, d1a, d1b, d2a, d2b;
            while (s[q] == ' ') q++;
            if (s[q] == '{') { d1a = q + 1; while (isdigit((unsigned char)s[q + 1])) q++; if (s[q + 1] != '}') return k; d1b = q + 1; q += 2; }
            else if (isdigit((unsigned char)s[q])) { d1a = q; d1b = q + 1; q++; }
            else return k;
            while (s[q] == ' ') q++;
            if (s[q] == '{') { d2a = q + 1; while (isdigit((unsigned char)s[q + 1])) q++; if (s[q + 1] != '}') return k; d2b = q + 1; q += 2; }
            else if (isdigit((unsigned char)s[q])) { d2a = q; d2b = q + 1; q++; }
            else return k;
            if (d1b == d1a || d2b == d2a) return k;
            int n1 = newnode(p, N_NUM), n2 = newnode(p, N_NUM);
            if (p->err) return 0;
            p->nd[n1].str = s + d1a; p->nd[n1].slen = (int)(d1b - d1a);
            p->nd[n2].str = s + d2a; p->nd[n2].slen = (int)(d2b - d2a);
            int f = mk2(p, N_DIV, n1, n2);
            int m = mk2(p, N_ADD, k, f);
            if (p->err) return 0;
            p->nd[m].mixed = 1;
            p->i = q;
            return m;
        }
    }
    return k;
}

// A braced group {...} parsed as a list (one item: the item), or one character/command.
static int parse_arg(parser *p) {
    skipws(p);
    char c = p->s[p->i];
    if (c == '{') {
        p->i++;
        int cnt;
        int r = parse_list(p, '}', &cnt);
        if (p->err) return 0;
        if (p->s[p->i] != '}') { p->err = 1; return 0; }
        p->i++;
        return r;
    }
    if (isdigit((unsigned char)c)) {
        int k = newnode(p, N_NUM);
        p->nd[k].str = p->s + p->i;
        p->nd[k].slen = 1;
        p->i++;
        return k;
    }
    if (isalpha((unsigned char)c)) {
        int k = newnode(p, N_SYM);
        if (c == 'e') p->nd[k].kind = N_E;
        if (c == 'i') p->nd[k].kind = N_I;
        p->nd[k].str = p->s + p->i;
        p->nd[k].slen = 1;
        p->i++;
        return k;
    }
    if (c == '\\') return parse_power(p);
    p->err = 1;
    return 0;
}

static const struct { const char *name; int f; } FUNCS[] = {
    {"arcsin", F_ASIN}, {"arccos", F_ACOS}, {"arctan", F_ATAN}, {"sinh", F_SINH}, {"cosh", F_COSH},
    {"tanh", F_TANH}, {"sin", F_SIN}, {"cos", F_COS}, {"tan", F_TAN}, {"sec", F_SEC}, {"csc", F_CSC},
    {"cot", F_COT}, {"ln", F_LN}, {"log", F_LOG}, {"exp", F_EXP}, {"sqrt", F_SQRT}};

static int func_at(const char *s, size_t *len) {
    for (size_t k = 0; k < sizeof FUNCS / sizeof FUNCS[0]; k++) {
        size_t n = strlen(FUNCS[k].name);
        if (!strncmp(s, FUNCS[k].name, n)) { *len = n; return FUNCS[k].f; }
    }
    return -1;
}

static int parse_func(parser *p, int f) {
    int base = -1, power = -1;
    if (f == F_LOG && p->s[p->i] == '_') { p->i++; base = parse_arg(p); f = F_LOGB; }
    skipws(p);
    if (p->s[p->i] == '^' && f != F_SQRT) { p->i++; power = parse_arg(p); }
    if (p->err) return 0;
    int arg;
    if (f == F_SQRT) {
        int deg = -1;
        skipws(p);
        if (p->s[p->i] == '[') {
            p->i++;
            int cnt;
            deg = parse_list(p, ']', &cnt);
            if (p->err || p->s[p->i] != ']') { p->err = 1; return 0; }
            p->i++;
        }
        skipws(p);
        if (p->s[p->i] == '(' ) arg = parse_power(p);
        else arg = parse_arg(p);
        int k = mk2(p, N_FUNC, arg, deg);
        if (p->err) return 0;
        p->nd[k].op = (unsigned char)(deg >= 0 ? F_ROOT : F_SQRT);
        return k;
    }
    skipws(p);
    if (p->s[p->i] == '(' || p->s[p->i] == '{') arg = parse_power(p);
    else {  // \sin 2x: an implicit product of powers
        arg = parse_power(p);
        while (!p->err && atom_starts(p) && peekc(p) != '\\') arg = mk2(p, N_MUL, arg, parse_power(p));
    }
    int k = mk2(p, N_FUNC, arg, base);
    if (p->err) return 0;
    p->nd[k].op = (unsigned char)f;
    if (power >= 0) k = mk2(p, N_POW, k, power);
    return k;
}

static int parse_matrix(parser *p) {
    // after \begin{env}
    skipws(p);
    if (p->s[p->i] == '{') {  // array column spec
        size_t g = group_end(p->s, p->i);
        if (!g) { p->err = 1; return 0; }
        p->i = g;
    }
    int m = newnode(p, N_MATRIX), last = -1, rows = 0, cols = -1, c = 0;
    if (p->err) return 0;
    while (!p->err) {
        skipws(p);
        if (!strncmp(p->s + p->i, "\\end", 4)) {
            p->i += 4;
            size_t g = p->s[p->i] == '{' ? group_end(p->s, p->i) : 0;
            if (!g) { p->err = 1; return 0; }
            p->i = g;
            break;
        }
        if (!p->s[p->i]) { p->err = 1; return 0; }
        int cell = parse_rel(p);
        if (p->err) return 0;
        if (last < 0) p->nd[m].first = cell; else p->nd[last].next = cell;
        last = cell;
        p->nd[m].n++;
        c++;
        skipws(p);
        if (p->s[p->i] == '&') { p->i++; continue; }
        if (p->s[p->i] == '\\' && p->s[p->i + 1] == '\\') {
            p->i += 2;
            if (cols < 0) cols = c; else if (cols != c) { p->err = 1; return 0; }
            rows++; c = 0;
            skipws(p);
            if (!strncmp(p->s + p->i, "\\end", 4)) continue;
            continue;
        }
    }
    if (c) { if (cols < 0) cols = c; else if (cols != c) { p->err = 1; return 0; } rows++; }
    p->nd[m].rows = rows;
    p->nd[m].cols = cols;
    return m;
}

static int parse_atom(parser *p) {
    if (++p->depth > MA_MAX_DEPTH) { p->err = 2; return 0; }
    int r = 0;
    int c = peekc(p);
    const char *s = p->s;
    if (isdigit(c) || (c == '.' && isdigit((unsigned char)s[p->i + 1]))) r = parse_number(p);
    else if (isalpha(c)) {
        size_t fl = 0;
        int f = func_at(s + p->i, &fl);
        size_t run = 0;
        while (isalpha((unsigned char)s[p->i + run])) run++;
        if (f >= 0) { p->i += fl; r = parse_func(p, f); }
        else if (run >= 4) p->err = 1;  // a word: this is text, not math
        else {
            size_t st = p->i++;
            int k = newnode(p, c == 'e' ? N_E : c == 'i' ? N_I : N_SYM);
            if (s[p->i] == '_') {  // x_1, a_{n}
                p->nd[k].kind = N_SYM;
                p->i++;
                if (s[p->i] == '{') { size_t g = group_end(s, p->i); if (!g) { p->err = 1; return 0; } p->i = g; }
                else if (s[p->i]) p->i++;
            }
            while (s[p->i] == '\'') p->i++;
            p->nd[k].str = s + st;
            p->nd[k].slen = (int)(p->i - st);
            r = k;
        }
    } else if (c == '(' || c == '[') {
        p->i++;
        int cnt;
        int l = parse_list(p, 0, &cnt);
        if (p->err) return 0;
        char cl = s[p->i];
        if (cl != ')' && cl != ']') { p->err = 1; return 0; }
        p->i++;
        if (cnt == 1 && ((c == '(' && cl == ')') || (c == '[' && cl == ']'))) r = l;
        else {
            r = l;
            if (p->nd[l].kind != N_LIST || cnt == 1) { r = newnode(p, N_LIST); p->nd[r].first = l; p->nd[r].n = 1; }
            p->nd[r].kind = N_SEQ;
            p->nd[r].open = (char)c;
            p->nd[r].close = cl;
        }
    } else if (c == '{') {
        p->i++;
        int cnt;
        r = parse_list(p, '}', &cnt);
        if (p->err) return 0;
        if (s[p->i] != '}') { p->err = 1; return 0; }
        p->i++;
    } else if (c == '|') {
        p->i++;
        int e = parse_expr(p);
        if (p->err) return 0;
        if (peekc(p) != '|') { p->err = 1; return 0; }
        p->i++;
        r = mk2(p, N_FUNC, e, -1);
        p->nd[r].op = F_ABS;
    } else if (c == '\\') {
        if (s[p->i + 1] == '{') {
            p->i += 2;
            int cnt;
            int l = parse_list(p, '}', &cnt);
            if (p->err) return 0;
            if (!(s[p->i] == '\\' && s[p->i + 1] == '}')) { p->err = 1; return 0; }
            p->i += 2;
            r = l;
            if (p->nd[l].kind != N_LIST || cnt == 1) { r = newnode(p, N_LIST); p->nd[r].first = l; p->nd[r].n = 1; }
            p->nd[r].open = '{';
        } else if (eat_cmd(p, "frac")) {
            int a = parse_arg(p);
            int b = parse_arg(p);
            r = mk2(p, N_DIV, a, b);
        } else if (eat_cmd(p, "binom")) {
            int a = parse_arg(p);
            int b = parse_arg(p);
            r = mk2(p, N_FUNC, a, b);
            p->nd[r].op = F_BINOM;
        } else if (eat_cmd(p, "pi")) r = newnode(p, N_PI);
        else if (eat_cmd(p, "infty")) r = newnode(p, N_INF);
        else if (eat_cmd(p, "emptyset")) { r = newnode(p, N_LIST); p->nd[r].open = '{'; }
        else if (eat_cmd(p, "lfloor") || eat_cmd(p, "lceil")) {
            int fl = s[p->i - 1] == 'r';
            int e = parse_expr(p);
            if (!eat_cmd(p, fl ? "rfloor" : "rceil")) { p->err = 1; return 0; }
            r = mk2(p, N_FUNC, e, -1);
            p->nd[r].op = (unsigned char)(fl ? F_FLOOR : F_CEIL);
        } else if (eat_cmd(p, "begin")) {
            size_t g = s[p->i] == '{' ? group_end(s, p->i) : 0;
            if (!g || !strstr(s + p->i, "\\end")) { p->err = 1; return 0; }
            p->i = g;
            r = parse_matrix(p);
        } else {
            size_t fl = 0;
            int f = func_at(s + p->i + 1, &fl);
            size_t cl = cmd_len(s + p->i + 1);
            if (f >= 0 && fl == cl) { p->i += 1 + fl; r = parse_func(p, f); }
            else if (cl == 0 || cmd_is_nonatom(s + p->i + 1)) p->err = 1;
            else {  // \alpha, \theta, ...: a symbol
                size_t st = p->i;
                p->i += 1 + cl;
                if (s[p->i] == '_') {
                    p->i++;
                    if (s[p->i] == '{') { size_t g = group_end(s, p->i); if (!g) { p->err = 1; return 0; } p->i = g; }
                    else if (s[p->i]) p->i++;
                }
                r = newnode(p, N_SYM);
                p->nd[r].str = s + st;
                p->nd[r].slen = (int)(p->i - st);
            }
        }
    } else p->err = 1;
    p->depth--;
    if (p->err) return 0;
    while (peekc(p) == '!') { p->i++; r = mk2(p, N_FACT, r, -1); }
    return r;
}

static int parse_power(parser *p) {
    int b = parse_atom(p);
    if (p->err) return 0;
    if (peekc(p) == '^') {
        p->i++;
        skipws(p);
        int e;
        if (p->s[p->i] == '-' || p->s[p->i] == '(') e = parse_unary(p);
        else e = parse_arg(p);
        if (p->err) return 0;
        b = mk2(p, N_POW, b, e);
    }
    return b;
}

static int parse_unary(parser *p) {
    if (++p->depth > MA_MAX_DEPTH) { p->err = 2; return 0; }
    int c = peekc(p), r;
    if (c == '-') { p->i++; r = mk2(p, N_NEG, parse_unary(p), -1); }
    else if (c == '+') { p->i++; r = parse_unary(p); }
    else r = parse_power(p);
    p->depth--;
    return r;
}

static int parse_term(parser *p) {
    int a = parse_unary(p);
    while (!p->err) {
        int c = peekc(p);
        if (c == '*') { p->i++; a = mk2(p, N_MUL, a, parse_unary(p)); }
        else if (c == '/') { p->i++; a = mk2(p, N_DIV, a, parse_unary(p)); }
        else if (atom_starts(p)) a = mk2(p, N_MUL, a, parse_power(p));
        else break;
    }
    return a;
}

static int parse_expr(parser *p) {
    int a = parse_term(p);
    while (!p->err) {
        int c = peekc(p);
        if (c == '+') { p->i++; a = mk2(p, N_ADD, a, parse_term(p)); }
        else if (c == '-') { p->i++; a = mk2(p, N_SUB, a, parse_term(p)); }
        else break;
    }
    return a;
}

static int parse_union(parser *p) {
    int a = parse_expr(p);
    if (p->err || !at_cmd(p, "cup")) return a;
    int u = newnode(p, N_UNION), last = a;
    p->nd[u].first = a;
    p->nd[u].n = 1;
    while (!p->err && eat_cmd(p, "cup")) {
        int b = parse_expr(p);
        if (p->err) return 0;
        p->nd[last].next = b;
        last = b;
        p->nd[u].n++;
    }
    return u;
}

static int rel_op(parser *p, int *op, int *flip) {
    int c = peekc(p);
    *flip = 0;
    if (c == '=') { p->i++; *op = R_EQ; return 1; }
    if (c == '<') { p->i++; if (p->s[p->i] == '=') { p->i++; *op = R_LE; } else *op = R_LT; return 1; }
    if (c == '>') { p->i++; if (p->s[p->i] == '=') { p->i++; *op = R_LE; } else *op = R_LT; *flip = 1; return 1; }
    if (eat_cmd(p, "le")) { *op = R_LE; return 1; }
    if (eat_cmd(p, "ge")) { *op = R_LE; *flip = 1; return 1; }
    if (eat_cmd(p, "ne")) { *op = R_NE; return 1; }
    if (eat_cmd(p, "in")) { *op = R_IN; return 1; }
    return 0;
}

// a op b [op c]; a chain lo < x < hi with a symbol in the middle becomes an interval,
// and x < hi / x >= lo too (so an inequality answer equals its interval).
static int parse_rel(parser *p) {
    int a = parse_union(p);
    int ops[3], flips[3], terms[4], n = 0;
    terms[0] = a;
    int op, flip;
    while (!p->err && n < 3 && rel_op(p, &op, &flip)) {
        ops[n] = op;
        flips[n] = flip;
        terms[++n] = parse_union(p);
    }
    if (p->err || n == 0) return a;
    int all_eq = 1;
    for (int k = 0; k < n; k++) all_eq &= ops[k] == R_EQ;
    if (n >= 2 && all_eq) { int r = mk2(p, N_REL, terms[0], terms[n]); p->nd[r].op = R_EQ; return r; }
    int ineq = 1;
    for (int k = 0; k < n; k++) ineq &= ops[k] == R_LT || ops[k] == R_LE;
    if (ineq && n == 2 && flips[0] == flips[1] && p->nd[terms[1]].kind == N_SYM) {
        int lo = flips[0] ? terms[2] : terms[0], hi = flips[0] ? terms[0] : terms[2];
        int lop = flips[0] ? ops[1] : ops[0], hop = flips[0] ? ops[0] : ops[1];
        int r = mk2(p, N_SEQ, -1, -1);
        p->nd[r].first = lo; p->nd[lo].next = hi; p->nd[hi].next = -1; p->nd[r].n = 2;
        p->nd[r].open = lop == R_LT ? '(' : '[';
        p->nd[r].close = hop == R_LT ? ')' : ']';
        return r;
    }
    if (ineq && n == 1 && (p->nd[terms[0]].kind == N_SYM || p->nd[terms[1]].kind == N_SYM)) {
        int sym_left = p->nd[terms[0]].kind == N_SYM;
        int bound = sym_left ? terms[1] : terms[0];
        int upper = sym_left ^ flips[0];  // x < b or b > x: b is an upper bound
        int inf = newnode(p, N_INF);
        int other = upper ? mk2(p, N_NEG, inf, -1) : inf;
        int r = mk2(p, N_SEQ, -1, -1);
        int lo = upper ? other : bound, hi = upper ? bound : other;
        p->nd[r].first = lo; p->nd[lo].next = hi; p->nd[hi].next = -1; p->nd[r].n = 2;
        p->nd[r].open = upper ? '(' : (ops[0] == R_LT ? '(' : '[');
        p->nd[r].close = upper ? (ops[0] == R_LT ? ')' : ']') : ')';
        return r;
    }
    int r = mk2(p, N_REL, flips[0] ? terms[1] : terms[0], flips[0] ? terms[0] : terms[1]);
    if (!p->err) p->nd[r].op = (unsigned char)ops[0];
    return r;
}

// Items separated by ',' or ';' until `close` (or ')'/']' when close is 0).
static int parse_list(parser *p, char close, int *count) {
    int first = parse_rel(p), last = first, n = 1;
    while (!p->err) {
        int c = peekc(p);
        if (c != ',' && c != ';') break;
        p->i++;
        if (n >= MA_MAX_ITEMS) { p->err = 2; return 0; }
        int it = parse_rel(p);
        if (p->err) return 0;
        p->nd[last].next = it;
        last = it;
        n++;
    }
    if (p->err) return 0;
    *count = n;
    if (n == 1) return first;
    int l = newnode(p, N_LIST);
    p->nd[l].first = first;
    p->nd[l].n = n;
    (void)close;
    return l;
}

static int parse_all(parser *p, const char *s) {
    p->s = s;
    p->i = 0;
    p->depth = 0;
    skipws(p);
    if (!s[p->i]) { p->err = 1; return 0; }
    int cnt;
    int r = parse_list(p, 0, &cnt);
    skipws(p);
    if (!p->err && p->s[p->i]) p->err = 1;
    return p->err ? 0 : r;
}

// ======================================================================
// evaluation

typedef struct ctx {
    node *nd;
    uint64_t seed;
    int too_large;
} ctx;

static int num_to_mpq(const node *x, mpq_t r) {
    char tmp[1100];
    size_t t = 0;
    long places = 0, ex = 0;
    int dec = 0;
    for (int k = 0; k < x->slen; k++) {
        char c = x->str[k];
        if (isdigit((unsigned char)c)) { tmp[t++] = c; if (dec) places++; }
        else if (c == '.') dec = 1;
        else if (c == 'e' || c == 'E') { ex = strtol(x->str + k + 1, NULL, 10); break; }
    }
    if (t == 0) return 0;
    tmp[t] = 0;
    if (ex > 2000 || ex < -2000) return -1;
    mpz_t z;
    mpz_init(z);
    mpz_set_str(z, tmp, 10);
    mpq_set_z(r, z);
    long e10 = ex - places;
    if (e10) {
        mpz_ui_pow_ui(z, 10, (unsigned long)labs(e10));
        mpq_t q;
        mpq_init(q);
        mpq_set_z(q, z);
        if (e10 > 0) mpq_mul(r, r, q); else mpq_div(r, r, q);
        mpq_clear(q);
    }
    mpz_clear(z);
    return 1;
}

static size_t qbits(mpq_t q) { return mpz_sizeinbase(mpq_numref(q), 2) + mpz_sizeinbase(mpq_denref(q), 2); }

// Exact k-th root of a rational, if it is one.
static int q_root(mpq_t r, mpq_t a, unsigned long k) {
    if (mpq_sgn(a) < 0 && k % 2 == 0) return 0;
    mpz_t n, d;
    mpz_init(n);
    mpz_init(d);
    int ok = mpz_root(n, mpq_numref(a), k) && mpz_root(d, mpq_denref(a), k);
    if (ok) { mpz_set(mpq_numref(r), n); mpz_set(mpq_denref(r), d); mpq_canonicalize(r); }
    mpz_clear(n);
    mpz_clear(d);
    return ok;
}

// 1: exactly rational (in r); 0: not (symbols, irrational, complex, undefined); -1: too large.
static int ev_exact(ctx *c, int id, mpq_t r) {
    node *x = &c->nd[id];
    int ok = 0;
    mpq_t a, b;
    switch (x->kind) {
    case N_NUM: return num_to_mpq(x, r);
    case N_NEG:
        ok = ev_exact(c, x->a, r);
        if (ok == 1) mpq_neg(r, r);
        return ok;
    case N_ADD: case N_SUB: case N_MUL: case N_DIV: case N_POW: break;
    case N_FACT: {
        mpq_init(a);
        ok = ev_exact(c, x->a, a);
        if (ok == 1) {
            if (mpz_cmp_ui(mpq_denref(a), 1) || mpq_sgn(a) < 0) ok = 0;
            else if (mpz_cmp_ui(mpq_numref(a), 1000) > 0) ok = -1;
            else { mpz_fac_ui(mpq_numref(r), mpz_get_ui(mpq_numref(a))); mpz_set_ui(mpq_denref(r), 1); }
        }
        mpq_clear(a);
        return ok;
    }
    case N_FUNC:
        if (x->op == F_SQRT || x->op == F_ABS || x->op == F_FLOOR || x->op == F_CEIL || x->op == F_BINOM ||
            x->op == F_ROOT) break;
        return 0;
    default: return 0;
    }
    mpq_init(a);
    mpq_init(b);
    ok = ev_exact(c, x->a, a);
    if (ok == 1 && x->b >= 0 && !(x->kind == N_FUNC && x->op != F_BINOM && x->op != F_ROOT)) ok = ev_exact(c, x->b, b);
    if (ok == 1) {
        switch (x->kind) {
        case N_ADD: mpq_add(r, a, b); break;
        case N_SUB: mpq_sub(r, a, b); break;
        case N_MUL: mpq_mul(r, a, b); break;
        case N_DIV:
            if (mpq_sgn(b) == 0) ok = 0; else mpq_div(r, a, b);
            break;
        case N_POW: {
            if (mpz_cmp_ui(mpq_denref(b), 1) == 0) {
                if (!mpz_fits_slong_p(mpq_numref(b))) { ok = -1; break; }
                long e = mpz_get_si(mpq_numref(b));
                size_t bits = qbits(a);
                if ((double)bits * (double)labs(e) > MA_MAX_BITS) { ok = -1; break; }
                if (e < 0 && mpq_sgn(a) == 0) { ok = 0; break; }
                mpz_pow_ui(mpq_numref(r), mpq_numref(a), (unsigned long)labs(e));
                mpz_pow_ui(mpq_denref(r), mpq_denref(a), (unsigned long)labs(e));
                if (e < 0) mpq_inv(r, r);
                mpq_canonicalize(r);
            } else if (mpz_cmp_ui(mpq_denref(b), 64) <= 0 && mpz_cmpabs_ui(mpq_numref(b), 64) <= 0) {
                mpq_t t;
                mpq_init(t);
                ok = q_root(t, a, mpz_get_ui(mpq_denref(b)));
                if (ok) {
                    long e = mpz_get_si(mpq_numref(b));
                    if ((double)qbits(t) * (double)labs(e) > MA_MAX_BITS) ok = -1;
                    else {
                        mpz_pow_ui(mpq_numref(r), mpq_numref(t), (unsigned long)labs(e));
                        mpz_pow_ui(mpq_denref(r), mpq_denref(t), (unsigned long)labs(e));
                        if (e < 0) { if (mpq_sgn(r) == 0) ok = 0; else mpq_inv(r, r); }
                        if (ok == 1) mpq_canonicalize(r);
                    }
                }
                mpq_clear(t);
            } else ok = 0;
            break;
        }
        case N_FUNC:
            switch (x->op) {
            case F_SQRT: ok = q_root(r, a, 2); break;
            case F_ROOT:  // a is the radicand, b the degree
                if (mpz_cmp_ui(mpq_denref(b), 1) || mpq_sgn(b) <= 0 || mpz_cmp_ui(mpq_numref(b), 64) > 0) ok = 0;
                else ok = q_root(r, a, mpz_get_ui(mpq_numref(b)));
                break;
            case F_ABS: mpq_abs(r, a); break;
            case F_FLOOR: mpz_fdiv_q(mpq_numref(r), mpq_numref(a), mpq_denref(a)); mpz_set_ui(mpq_denref(r), 1); break;
            case F_CEIL: mpz_cdiv_q(mpq_numref(r), mpq_numref(a), mpq_denref(a)); mpz_set_ui(mpq_denref(r), 1); break;
            case F_BINOM:
                if (mpz_cmp_ui(mpq_denref(a), 1) || mpz_cmp_ui(mpq_denref(b), 1) || mpq_sgn(b) < 0 ||
                    !mpz_fits_ulong_p(mpq_numref(b)) || mpz_cmp_ui(mpq_numref(b), 10000) > 0 ||
                    mpz_cmpabs_ui(mpq_numref(a), 1000000) > 0)
                    ok = 0;
                else { mpz_bin_ui(mpq_numref(r), mpq_numref(a), mpz_get_ui(mpq_numref(b))); mpz_set_ui(mpq_denref(r), 1); }
                break;
            }
            break;
        }
    }
    if (ok == 1 && qbits(r) > MA_MAX_BITS) ok = -1;
    mpq_clear(a);
    mpq_clear(b);
    return ok;
}

typedef long double complex cld;

// Symbol names compare without braces and spaces: 1011_2 = 1011_{2}, a_{1} = a_1.
static int sym_eq(const char *a, int na, const char *b, int nb) {
    int i = 0, j = 0;
    while (1) {
        while (i < na && (a[i] == '{' || a[i] == '}' || a[i] == ' ')) i++;
        while (j < nb && (b[j] == '{' || b[j] == '}' || b[j] == ' ')) j++;
        if (i == na || j == nb) return i == na && j == nb;
        if (a[i++] != b[j++]) return 0;
    }
}

static uint64_t name_hash(const char *s, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < n; k++) {
        if (s[k] == '{' || s[k] == '}' || s[k] == ' ') continue;
        h ^= (unsigned char)s[k];
        h *= 1099511628211ULL;
    }
    return h;
}

static long double sym_value(ctx *c, const node *x, int point) {
    rng r;
    rng_seed(&r, c->seed ^ name_hash(x->str, x->slen) ^ ((uint64_t)point * 0x9E3779B97F4A7C15ULL));
    return 0.55L + 1.9L * (long double)rng_double(&r);
}

static cld ev_num(ctx *c, int id, int point) {
    node *x = &c->nd[id];
    switch (x->kind) {
    case N_NUM: {
        mpq_t q;
        mpq_init(q);
        int ok = num_to_mpq(x, q);
        long double v = ok == 1 ? (long double)mpq_get_d(q) : NAN;
        mpq_clear(q);
        return v;
    }
    case N_SYM: return sym_value(c, x, point);
    case N_PI: return 3.14159265358979323846264338327950288L;
    case N_E: return 2.71828182845904523536028747135266250L;
    case N_I: return I;
    case N_INF: return INFINITY;
    case N_NEG: return -ev_num(c, x->a, point);
    case N_ADD: return ev_num(c, x->a, point) + ev_num(c, x->b, point);
    case N_SUB: return ev_num(c, x->a, point) - ev_num(c, x->b, point);
    case N_MUL: return ev_num(c, x->a, point) * ev_num(c, x->b, point);
    case N_DIV: {
        cld d = ev_num(c, x->b, point);
        if (d == 0) return NAN;
        return ev_num(c, x->a, point) / d;
    }
    case N_POW: {
        cld a = ev_num(c, x->a, point), b = ev_num(c, x->b, point);
        if (cimagl(a) == 0 && cimagl(b) == 0) {
            long double ra = creall(a), rb = creall(b);
            if (ra >= 0 || rb == floorl(rb)) return powl(ra, rb);
        }
        return cpowl(a, b);
    }
    case N_FACT: {
        cld a = ev_num(c, x->a, point);
        return tgammal(creall(a) + 1);
    }
    case N_FUNC: {
        cld a = ev_num(c, x->a, point);
        long double ra = creall(a);
        int real = cimagl(a) == 0;
        switch (x->op) {
        case F_SQRT: return real && ra >= 0 ? sqrtl(ra) : csqrtl(a);
        case F_ROOT: {
            cld n = ev_num(c, x->b, point), v = a;
            long double rn = creall(n), rv = creall(v);
            if (rn == floorl(rn) && fmodl(rn, 2) != 0 && rv < 0) return -powl(-rv, 1 / rn);
            if (rv >= 0) return powl(rv, 1 / rn);
            return cpowl(v, 1 / n);
        }
        case F_SIN: return csinl(a);
        case F_COS: return ccosl(a);
        case F_TAN: return ctanl(a);
        case F_SEC: return 1 / ccosl(a);
        case F_CSC: return 1 / csinl(a);
        case F_COT: return 1 / ctanl(a);
        case F_ASIN: return casinl(a);
        case F_ACOS: return cacosl(a);
        case F_ATAN: return catanl(a);
        case F_SINH: return csinhl(a);
        case F_COSH: return ccoshl(a);
        case F_TANH: return ctanhl(a);
        case F_LN: return real && ra > 0 ? logl(ra) : clogl(a);
        case F_LOG: return real && ra > 0 ? log10l(ra) : clogl(a) / logl(10);
        case F_LOGB: {
            cld b = ev_num(c, x->b, point);
            return clogl(a) / clogl(b);
        }
        case F_EXP: return cexpl(a);
        case F_ABS: return cabsl(a);
        case F_FLOOR: return floorl(ra);
        case F_CEIL: return ceill(ra);
        case F_BINOM: {
            long double n = ra, k = creall(ev_num(c, x->b, point));
            return expl(lgammal(n + 1) - lgammal(k + 1) - lgammal(n - k + 1));
        }
        }
        return NAN;
    }
    default: return NAN;
    }
}

// 1 equal, 0 unequal, -1 unknown (non-finite)
static int cld_eq(cld a, cld b, long double atol) {
    int fa = isfinite(creall(a)) && isfinite(cimagl(a)), fb = isfinite(creall(b)) && isfinite(cimagl(b));
    if (!fa || !fb) {
        if (isinf(creall(a)) && isinf(creall(b)) && !isnan(cimagl(a)) && !isnan(cimagl(b)))
            return (creall(a) > 0) == (creall(b) > 0);
        return -1;
    }
    long double d = cabsl(a - b), m = fmaxl(cabsl(a), cabsl(b));
    return d <= MA_RTOL * m || d <= atol;
}

static void collect_syms(ctx *c, int id, const node **out, int *n, int cap) {
    if (id < 0) return;
    node *x = &c->nd[id];
    if (x->kind == N_SYM) {
        for (int k = 0; k < *n; k++)
            if (sym_eq(out[k]->str, out[k]->slen, x->str, x->slen)) return;
        if (*n < cap) out[(*n)++] = x;
        return;
    }
    collect_syms(c, x->a, out, n, cap);
    if (x->kind != N_FUNC || x->op == F_BINOM || x->op == F_ROOT || x->op == F_LOGB) collect_syms(c, x->b, out, n, cap);
    for (int k = x->first; k >= 0; k = c->nd[k].next) collect_syms(c, k, out, n, cap);
}

static __attribute__((unused)) int same_syms(ctx *c, int a, int b) {
    const node *sa[64], *sb[64];
    int na = 0, nb = 0;
    collect_syms(c, a, sa, &na, 64);
    collect_syms(c, b, sb, &nb, 64);
    if (na != nb) return 0;
    for (int i = 0; i < na; i++) {
        int f = 0;
        for (int j = 0; j < nb && !f; j++) f = sym_eq(sa[i]->str, sa[i]->slen, sb[j]->str, sb[j]->slen);
        if (!f) return 0;
    }
    return 1;
}

static int is_literal(ctx *c, int id) {
    node *x = &c->nd[id];
    if (x->kind == N_NUM) return 1;
    if (x->kind == N_NEG) return is_literal(c, x->a);
    if (x->kind == N_DIV) return c->nd[x->a].kind == N_NUM && c->nd[x->b].kind == N_NUM;
    if (x->kind == N_ADD && x->mixed) return 1;
    return 0;
}

// Arithmetic left undone on literals: 2+3, 4*5, 5!  (powers like 2^{100}, k*10^n and mixed
// numbers are forms, not work)
static int has_uneval(ctx *c, int id) {
    if (id < 0) return 0;
    node *x = &c->nd[id];
    switch (x->kind) {
    case N_ADD: case N_SUB:
        if (x->mixed) return 0;
        if (is_literal(c, x->a) && is_literal(c, x->b)) return 1;
        break;
    case N_MUL:
        if (is_literal(c, x->a) && is_literal(c, x->b)) return 1;
        break;
    case N_FACT:
        if (is_literal(c, x->a)) return 1;
        break;
    default: break;
    }
    if (has_uneval(c, x->a)) return 1;
    if (x->kind != N_FUNC && has_uneval(c, x->b)) return 1;
    for (int k = x->first; k >= 0; k = c->nd[k].next)
        if (has_uneval(c, k)) return 1;
    return 0;
}

static int is_scalar(int kind) { return kind <= N_FACT; }

// decimal literal gold: its places, else -1
static int decimal_places(ctx *c, int id) {
    node *x = &c->nd[id];
    if (x->kind == N_NEG) return decimal_places(c, x->a);
    if (x->kind == N_NUM && x->is_dec) return x->places;
    return -1;
}

static int contains_decimal(ctx *c, int id) {
    if (id < 0) return 0;
    node *x = &c->nd[id];
    if (x->kind == N_NUM) return x->is_dec;
    return contains_decimal(c, x->a) || contains_decimal(c, x->b);
}

typedef struct cmpopts { int approx, allow_uneval; } cmpopts;

static math_verdict scalar_eq(ctx *c, int p, int g, const cmpopts *o) {
    mpq_t qp, qg;
    mpq_init(qp);
    mpq_init(qg);
    int ep = ev_exact(c, p, qp), eg = ev_exact(c, g, qg);
    math_verdict v = MATH_MISMATCH;
    int gplaces = o->approx ? decimal_places(c, g) : -1;
    if (ep == 1 && eg == 1) {
        if (mpq_equal(qp, qg)) v = MATH_EQUAL;
        else if (gplaces >= 0) {  // |p - g| <= 0.5 * 10^-places
            mpq_t d, t;
            mpq_init(d);
            mpq_init(t);
            mpq_sub(d, qp, qg);
            mpq_abs(d, d);
            mpz_ui_pow_ui(mpq_denref(t), 10, (unsigned long)gplaces);
            mpz_mul_ui(mpq_denref(t), mpq_denref(t), 2);
            mpz_set_ui(mpq_numref(t), 1);
            mpq_canonicalize(t);
            if (mpq_cmp(d, t) <= 0) v = MATH_EQUAL;
            mpq_clear(d);
            mpq_clear(t);
        }
        if (v == MATH_EQUAL && !o->allow_uneval && has_uneval(c, p) && !has_uneval(c, g)) v = MATH_UNEVALUATED;
        goto done;
    }
    if (ep < 0 || eg < 0) { v = MATH_TOO_LARGE; goto done; }
    // one side exact, the other not: a decimal pred is never equal to an irrational gold
    if (ep == 1 && contains_decimal(c, p) && gplaces < 0) goto done;
    {
        // identity testing over the union of both sides' symbols (sin^2 x + cos^2 x = 1)
        const node *syms[64];
        int ns = 0;
        collect_syms(c, p, syms, &ns, 64);
        collect_syms(c, g, syms, &ns, 64);
        long double atol = gplaces >= 0 ? 0.5L * powl(10, -gplaces) : 1e-16L;
        int good = 0;
        for (int k = 0; k < MA_POINTS; k++) {
            int r = cld_eq(ev_num(c, p, k), ev_num(c, g, k), atol);
            if (r == 0) goto done;
            if (r == 1) good++;
            if (!ns) break;
        }
        if (good >= (ns ? 2 : 1)) v = MATH_EQUAL;
        if (v == MATH_EQUAL && !o->allow_uneval && eg == 1 && has_uneval(c, p) && !has_uneval(c, g)) v = MATH_UNEVALUATED;
    }
done:
    mpq_clear(qp);
    mpq_clear(qg);
    return v;
}

static math_verdict val_eq(ctx *c, int p, int g, const cmpopts *o, int depth);

static int unwrap_assign(ctx *c, int id) {
    node *x = &c->nd[id];
    if (x->kind == N_REL && (x->op == R_EQ || x->op == R_IN) && c->nd[x->a].kind == N_SYM) return x->b;
    return id;
}

static math_verdict multiset_eq(ctx *c, int p, int g, const cmpopts *o, int depth) {
    node *x = &c->nd[p], *y = &c->nd[g];
    if (x->n != y->n) return MATH_MISMATCH;
    unsigned char used[MA_MAX_ITEMS] = {0};
    for (int i = x->first; i >= 0; i = c->nd[i].next) {
        int found = 0, j = y->first;
        for (int k = 0; j >= 0 && !found; j = c->nd[j].next, k++)
            if (!used[k] && val_eq(c, i, j, o, depth + 1) == MATH_EQUAL) { used[k] = 1; found = 1; }
        if (!found) return MATH_MISMATCH;
    }
    return MATH_EQUAL;
}

static math_verdict ordered_eq(ctx *c, int p, int g, const cmpopts *o, int depth) {
    node *x = &c->nd[p], *y = &c->nd[g];
    if (x->n != y->n) return MATH_MISMATCH;
    for (int i = x->first, j = y->first; i >= 0 && j >= 0; i = c->nd[i].next, j = c->nd[j].next) {
        math_verdict v = val_eq(c, i, j, o, depth + 1);
        if (v != MATH_EQUAL) return v == MATH_UNEVALUATED ? v : MATH_MISMATCH;
    }
    return MATH_EQUAL;
}

// lhs-rhs of two equations proportional (same solution set for linear/polynomial forms)
static math_verdict equation_eq(ctx *c, node *x, node *y) {
    // build nothing: evaluate differences directly
    const node *s1[64], *s2[64];
    int n1 = 0, n2 = 0;
    collect_syms(c, x->a, s1, &n1, 64); collect_syms(c, x->b, s1, &n1, 64);
    collect_syms(c, y->a, s2, &n2, 64); collect_syms(c, y->b, s2, &n2, 64);
    if (n1 != n2) return MATH_MISMATCH;
    for (int i = 0; i < n1; i++) {
        int f = 0;
        for (int j = 0; j < n2 && !f; j++) f = sym_eq(s1[i]->str, s1[i]->slen, s2[j]->str, s2[j]->slen);
        if (!f) return MATH_MISMATCH;
    }
    cld ratio = 0;
    int good = 0;
    for (int k = 0; k < MA_POINTS; k++) {
        cld d1 = ev_num(c, x->a, k) - ev_num(c, x->b, k), d2 = ev_num(c, y->a, k) - ev_num(c, y->b, k);
        if (!isfinite(creall(d1)) || !isfinite(creall(d2))) continue;
        if (cabsl(d1) < 1e-14L && cabsl(d2) < 1e-14L) { good++; continue; }
        if (cabsl(d1) < 1e-14L || cabsl(d2) < 1e-14L) return MATH_MISMATCH;
        cld r = d1 / d2;
        if (good == 0 || ratio == 0) ratio = r;
        else if (cld_eq(r, ratio, 0) != 1) return MATH_MISMATCH;
        good++;
    }
    return good >= 2 ? MATH_EQUAL : MATH_MISMATCH;
}

static math_verdict val_eq(ctx *c, int p, int g, const cmpopts *o, int depth) {
    if (depth > 50) return MATH_TOO_LARGE;
    node *x = &c->nd[p], *y = &c->nd[g];
    if (x->kind == N_REL && y->kind != N_REL) { p = unwrap_assign(c, p); x = &c->nd[p]; }
    if (y->kind == N_REL && x->kind != N_REL) { g = unwrap_assign(c, g); y = &c->nd[g]; }
    if (x->kind == N_LIST && x->n == 1 && y->kind != N_LIST) return val_eq(c, x->first, g, o, depth + 1);
    if (y->kind == N_LIST && y->n == 1 && x->kind != N_LIST) return val_eq(c, p, y->first, o, depth + 1);
    if (is_scalar(x->kind) && is_scalar(y->kind)) return scalar_eq(c, p, g, o);
    if (x->kind != y->kind) return MATH_MISMATCH;
    switch (x->kind) {
    case N_LIST: case N_UNION: return multiset_eq(c, p, g, o, depth);
    case N_SEQ:
        if (x->open != y->open || x->close != y->close) return MATH_MISMATCH;
        return ordered_eq(c, p, g, o, depth);
    case N_MATRIX:
        if (x->rows != y->rows || x->cols != y->cols) return MATH_MISMATCH;
        return ordered_eq(c, p, g, o, depth);
    case N_REL:
        if (x->op != y->op) return MATH_MISMATCH;
        if (x->op == R_EQ) {
            node *xa = &c->nd[x->a], *ya = &c->nd[y->a];
            if (xa->kind == N_SYM && ya->kind == N_SYM && sym_eq(xa->str, xa->slen, ya->str, ya->slen))
                return val_eq(c, x->b, y->b, o, depth + 1);
            if (is_scalar(xa->kind) && is_scalar(c->nd[x->b].kind) && is_scalar(ya->kind) && is_scalar(c->nd[y->b].kind))
                return equation_eq(c, x, y);
            return MATH_MISMATCH;
        }
        if (val_eq(c, x->a, y->a, o, depth + 1) == MATH_EQUAL && val_eq(c, x->b, y->b, o, depth + 1) == MATH_EQUAL)
            return MATH_EQUAL;
        return MATH_MISMATCH;
    default: return MATH_MISMATCH;
    }
}

// ======================================================================
// entry points

void math_equal_opts_default(math_equal_opts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 0x7e3a9e5c0ffeeULL;
}

const char *math_verdict_name(math_verdict v) {
    switch (v) {
    case MATH_EQUAL: return "equal";
    case MATH_MISMATCH: return "mismatch";
    case MATH_PARSE_FAIL: return "parse-fail";
    case MATH_TOO_LARGE: return "too-large";
    case MATH_UNEVALUATED: return "unevaluated";
    }
    return "?";
}

// Text comparison key: no spaces, braces or \text, case-folded, "(C)" -> "c".
static void text_key(const char *s, buf *o) {
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c) || c == '{' || c == '}') continue;
        b_putc(o, (char)tolower(c));
    }
    if (o->s && o->n == 3 && o->s[0] == '(' && o->s[2] == ')') { o->s[0] = o->s[1]; o->s[1] = 0; o->n = 1; }
}

static int text_equal(const char *a, const char *b) {
    buf x = {0}, y = {0};
    text_key(a, &x);
    text_key(b, &y);
    int eq = !x.oom && !y.oom && x.n == y.n && (x.n == 0 || !memcmp(x.s, y.s, x.n));
    free(x.s);
    free(y.s);
    return eq;
}

static int squeeze_equal(const char *a, const char *b) {
    while (1) {
        while (isspace((unsigned char)*a)) a++;
        while (isspace((unsigned char)*b)) b++;
        if (*a != *b) return 0;
        if (!*a) return 1;
        a++, b++;
    }
}

static char *replace_pm(const char *s, int sign) {
    buf o = {0};
    for (size_t i = 0; s[i]; i++) {
        if (!strncmp(s + i, "\\pm", 3) && !isalpha((unsigned char)s[i + 3])) { b_putc(&o, sign ? '+' : '-'); i += 2; }
        else if (!strncmp(s + i, "\\mp", 3) && !isalpha((unsigned char)s[i + 3])) { b_putc(&o, sign ? '-' : '+'); i += 2; }
        else b_putc(&o, s[i]);
    }
    if (o.oom) { free(o.s); return NULL; }
    return o.s;
}

static int has_pm(const char *s) {
    const char *p = strstr(s, "\\pm");
    const char *q = strstr(s, "\\mp");
    return (p && !isalpha((unsigned char)p[3])) || (q && !isalpha((unsigned char)q[3]));
}

// Parses one side; x \pm y becomes the set {x+y, x-y}. extra[] keeps the rewritten strings.
static int parse_side(parser *p, const char *s, char **extra) {
    if (!has_pm(s)) return parse_all(p, s);
    extra[0] = replace_pm(s, 1);
    extra[1] = replace_pm(s, 0);
    if (!extra[0] || !extra[1]) { p->err = 2; return 0; }
    int a = parse_all(p, extra[0]);
    if (p->err) return 0;
    int b = parse_all(p, extra[1]);
    if (p->err) return 0;
    int l = newnode(p, N_LIST);
    if (p->err) return 0;
    p->nd[l].first = a;
    p->nd[a].next = b;
    p->nd[b].next = -1;
    p->nd[l].n = 2;
    return l;
}

math_verdict math_answer_compare(const char *pred, const char *gold, const math_equal_opts *opts) {
    math_equal_opts d;
    if (!opts) { math_equal_opts_default(&d); opts = &d; }
    if (!pred || !gold) return MATH_PARSE_FAIL;
    if (strlen(pred) > MA_MAX_IN || strlen(gold) > MA_MAX_IN) return MATH_TOO_LARGE;
    char *np = normalize(pred), *ng = normalize(gold);
    char *extra[4] = {0};
    node *nodes = NULL;
    math_verdict v = MATH_PARSE_FAIL;
    if (!np || !ng) goto out;
    if (!*np || !*ng) goto out;
    if (squeeze_equal(np, ng)) { v = MATH_EQUAL; goto out; }
    nodes = malloc(sizeof(node) * MA_MAX_NODES);
    if (!nodes) goto out;
    parser pp = {.nd = nodes}, pg;
    int rp = parse_side(&pp, np, extra);
    int perr = pp.err;
    pg = pp;  // same arena, continue numbering
    pg.err = 0;
    int rg = perr ? 0 : parse_side(&pg, ng, extra + 2);
    if (perr || pg.err) {
        if (perr == 2 || pg.err == 2) v = MATH_TOO_LARGE;
        if (text_equal(np, ng)) v = MATH_EQUAL;
        else if (v != MATH_TOO_LARGE) v = (perr && pg.err) ? MATH_MISMATCH : MATH_PARSE_FAIL;
        goto out;
    }
    ctx c = {.nd = nodes, .seed = opts->seed};
    cmpopts co = {.approx = opts->approx, .allow_uneval = opts->allow_unevaluated};
    v = val_eq(&c, rp, rg, &co, 0);
out:
    free(nodes);
    free(np);
    free(ng);
    for (int k = 0; k < 4; k++) free(extra[k]);
    return v;
}

int math_answer_equal(const char *pred, const char *gold, const math_equal_opts *o) {
    return math_answer_compare(pred, gold, o) == MATH_EQUAL;
}
