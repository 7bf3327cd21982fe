// reward/math_parse: a normalized answer -> a small tree (scannerless recursive descent).
// Grammar, loosest first: list (items split by , ; "or" "and", a \over b) > relation
// (= < \le \ne \in; conditions on one variable become sets of reals) > union (\cup) >
// sum > term (* / implicit products) > unary (- +) > power (^) > atom (numbers, also
// repeating decimals; symbols; \frac \sqrt \binom functions \sum \prod; groups;
// tuples, intervals, sets, set-builder sets, matrices; postfix ! and degrees).
// Every limit (node count, depth, items, literal length) sets p->err = 2.
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "reward/math_internal.h"

static int newnode(parser *p, int kind) {
    if (p->nn >= p->cap) { p->err = 2; return 0; }
    node *x = &p->nd[p->nn];
    memset(x, 0, sizeof *x);
    x->kind = (unsigned char)kind;
    x->a = x->b = x->c = x->first = x->next = -1;
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
static int parse_term(parser *p);

static const char *NONATOM_CMDS[] = {"cup", "cap", "le", "ge", "ne", "in", "pm", "mp", "to", "right", "end",
                                     "rfloor", "rceil", "}", "setminus", "notin", "subset", "rangle", "over", "circ",
                                     "lor", "land", NULL};

static int cmd_is_nonatom(const char *s) {
    size_t n = ma_cmd_len(s);
    if (n == 0) return 1;  // \{ \} \\ and friends
    for (int k = 0; NONATOM_CMDS[k]; k++)
        if (strlen(NONATOM_CMDS[k]) == n && !strncmp(NONATOM_CMDS[k], s, n)) return 1;
    return 0;
}

static int atom_starts(parser *p) {
    int c = peekc(p);
    if (isdigit(c) || isalpha(c) || c == '(' || c == '{' || c == '.') return 1;
    if (c == '|') return p->abs == 0;  // 2|x|; inside |...| a bar closes it
    if (c == '\\') return !cmd_is_nonatom(p->s + p->i + 1);
    return 0;
}

// One repeated digit group at s: \overline{27}, \overline 3, \bar{3}, or the dot form
// \dot{1}2\dot{3} (from the first dotted digit to the last). Its length, else 0.
static size_t digit_arg(const char *s, size_t k) {  // {ddd} or d at s[k]: the end, else 0
    while (s[k] == ' ') k++;
    if (isdigit((unsigned char)s[k])) return k + 1;
    if (s[k] != '{') return 0;
    size_t j = k + 1;
    while (isdigit((unsigned char)s[j])) j++;
    return j > k + 1 && s[j] == '}' ? j + 1 : 0;
}
static size_t repeat_len(const char *s) {
    size_t k;
    if (ma_starts(s, "\\overline") && !isalpha((unsigned char)s[9])) return digit_arg(s, 9);
    if (ma_starts(s, "\\bar") && !isalpha((unsigned char)s[4])) return digit_arg(s, 4);
    if (!ma_starts(s, "\\dot") || isalpha((unsigned char)s[4]) || !(k = digit_arg(s, 4))) return 0;
    size_t j = k;
    while (isdigit((unsigned char)s[j])) j++;
    if (ma_starts(s + j, "\\dot") && !isalpha((unsigned char)s[j + 4])) {
        size_t e = digit_arg(s, j + 4);
        if (e) return e;
    }
    return k;
}

// A number literal: digits with thousands groups, a decimal part (perhaps repeating:
// 0.41\overline{6}), an exponent.
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
    int places = 0, dec = 0, rep = 0;
    if (s[i] == '.' && (isdigit((unsigned char)s[i + 1]) || repeat_len(s + i + 1))) {
        dec = 1;
        i++;
        while (isdigit((unsigned char)s[i])) { i++; places++; }
        size_t r = repeat_len(s + i);
        if (r) { i += r; rep = 1; dec = 0; }  // exact, not a rounded decimal
    }
    if (!rep && (s[i] == 'e' || s[i] == 'E') &&
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
    p->nd[k].rep = (unsigned char)rep;
    p->i = i;
    // a base-b numeral 1011_2 is its own atom
    if (s[i] == '_' && !dec && !rep) {
        size_t j = i + 1;
        if (s[j] == '{') { size_t g = ma_group_end(s, j); if (!g) { p->err = 1; return 0; } j = g; }
        else if (isalnum((unsigned char)s[j])) j++;
        p->nd[k].kind = N_SYM;
        p->nd[k].slen = (int)(j - st);
        p->i = j;
        return k;
    }
    // a mixed number 2\frac{1}{2} (integer followed by a fraction of integer literals)
    if (!dec && !rep && intlen == (size_t)(i - st)) {
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

// A Greek letter or \pi: part of a function's argument (\cos 2\theta), where another
// command (\sin x \cos x) starts a new factor.
static int at_letter_cmd(parser *p) {
    static const char *const L[] = {"pi", "theta", "alpha", "beta", "gamma", "delta", "phi", "varphi", "omega",
                                    "lambda", "mu", "sigma", "tau", "rho", "psi", "epsilon", "varepsilon", NULL};
    for (int k = 0; L[k]; k++)
        if (at_cmd(p, L[k])) return 1;
    return 0;
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
        if (p->s[p->i] == '(') arg = parse_power(p);
        else arg = parse_arg(p);
        int k = mk2(p, N_FUNC, arg, deg);
        if (p->err) return 0;
        p->nd[k].op = (unsigned char)(deg >= 0 ? F_ROOT : F_SQRT);
        return k;
    }
    skipws(p);
    int trig = f >= F_SIN && f <= F_COT;  // its argument may be in degrees
    p->trig += trig;
    if (p->s[p->i] == '(' || p->s[p->i] == '{') arg = parse_power(p);
    else {  // \sin 2x: an implicit product of powers
        arg = parse_power(p);
        while (!p->err && atom_starts(p) && (peekc(p) != '\\' || at_letter_cmd(p))) arg = mk2(p, N_MUL, arg, parse_power(p));
    }
    p->trig -= trig;
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
        size_t g = ma_group_end(p->s, p->i);
        if (!g) { p->err = 1; return 0; }
        p->i = g;
    }
    int m = newnode(p, N_MATRIX), last = -1, rows = 0, cols = -1, c = 0;
    if (p->err) return 0;
    while (!p->err) {
        skipws(p);
        if (!strncmp(p->s + p->i, "\\end", 4)) {
            p->i += 4;
            size_t g = p->s[p->i] == '{' ? ma_group_end(p->s, p->i) : 0;
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

// After \{ at s[i]: "x :" or "x |" or "x \in D :" opening a set-builder set. Sets
// *after past the separator.
static int setbuilder_at(const char *s, size_t j, size_t *after) {
    while (s[j] == ' ') j++;
    if (!isalpha((unsigned char)s[j]) || isalpha((unsigned char)s[j + 1])) return 0;
    j++;
    while (s[j] == ' ') j++;
    if (ma_starts(s + j, "\\in") && !isalpha((unsigned char)s[j + 3]))  // the domain is the reals here
        while (s[j] && s[j] != ':' && s[j] != '|' && !(s[j] == '\\' && s[j + 1] == '}')) j++;
    if (s[j] != ':' && s[j] != '|') return 0;
    *after = j + 1;
    return 1;
}

// After \{: the empty set \{\}, a set-builder set \{x : x \le 7\} (the set of reals its
// condition describes), or a set of items.
static int parse_braced_set(parser *p) {
    const char *s = p->s;
    skipws(p);
    if (s[p->i] == '\\' && s[p->i + 1] == '}') {
        p->i += 2;
        int r = newnode(p, N_LIST);
        if (!p->err) p->nd[r].open = '{';
        return r;
    }
    size_t after;
    int builder = setbuilder_at(s, p->i, &after);
    if (builder) p->i = after;
    int cnt;
    int l = parse_list(p, '}', &cnt);
    if (p->err) return 0;
    if (!(s[p->i] == '\\' && s[p->i + 1] == '}')) { p->err = 1; return 0; }
    p->i += 2;
    if (builder) return l;
    int r = l;
    if (p->nd[l].kind != N_LIST || cnt == 1) {
        r = newnode(p, N_LIST);
        if (p->err) return 0;
        p->nd[r].first = l;
        p->nd[r].n = 1;
    }
    p->nd[r].open = '{';
    return r;
}

// \sum_{k=a}^{b} body, \prod likewise: one bound letter, the body a term.
static int parse_sum(parser *p) {
    const char *s = p->s;
    int prod = eat_cmd(p, "prod");
    if (!prod) eat_cmd(p, "sum");
    if (peekc(p) != '_') { p->err = 1; return 0; }
    p->i++;
    if (peekc(p) != '{') { p->err = 1; return 0; }
    p->i++;
    skipws(p);
    size_t v = p->i;
    if (!isalpha((unsigned char)s[v]) || isalpha((unsigned char)s[v + 1])) { p->err = 1; return 0; }
    p->i++;
    if (peekc(p) != '=') { p->err = 1; return 0; }
    p->i++;
    int lo = parse_expr(p);
    if (p->err || peekc(p) != '}') { p->err = 1; return 0; }
    p->i++;
    if (peekc(p) != '^') { p->err = 1; return 0; }
    p->i++;
    int hi = parse_arg(p);
    if (p->err) return 0;
    int body = parse_term(p);
    int r = mk2(p, N_SUM, body, lo);
    if (p->err) return 0;
    p->nd[r].c = hi;
    p->nd[r].op = (unsigned char)prod;
    p->nd[r].str = s + v;
    p->nd[r].slen = 1;
    return r;
}

// x degrees inside a trig argument: x * pi / 180
static int degrees(parser *p, int x) {
    int n = newnode(p, N_NUM);
    if (p->err) return 0;
    p->nd[n].str = "180";
    p->nd[n].slen = 3;
    return mk2(p, N_MUL, x, mk2(p, N_DIV, newnode(p, N_PI), n));
}

static int parse_atom(parser *p) {
    if (++p->depth > MA_MAX_DEPTH) { p->err = 2; return 0; }
    int r = 0;
    int c = peekc(p);
    const char *s = p->s;
    if (isdigit(c) || (c == '.' && (isdigit((unsigned char)s[p->i + 1]) || repeat_len(s + p->i + 1))))
        r = parse_number(p);
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
                if (s[p->i] == '{') { size_t g = ma_group_end(s, p->i); if (!g) { p->err = 1; return 0; } p->i = g; }
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
        p->abs++;
        int e = parse_expr(p);
        p->abs--;
        if (p->err) return 0;
        if (peekc(p) != '|') { p->err = 1; return 0; }
        p->i++;
        r = mk2(p, N_FUNC, e, -1);
        p->nd[r].op = F_ABS;
    } else if (c == '\\') {
        if (s[p->i + 1] == '{') {
            p->i += 2;
            r = parse_braced_set(p);
        } else if (at_cmd(p, "sum") || at_cmd(p, "prod")) r = parse_sum(p);
        else if (eat_cmd(p, "frac")) {
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
            size_t g = s[p->i] == '{' ? ma_group_end(s, p->i) : 0;
            if (!g || !strstr(s + p->i, "\\end")) { p->err = 1; return 0; }
            p->i = g;
            r = parse_matrix(p);
        } else {
            size_t fl = 0;
            int f = func_at(s + p->i + 1, &fl);
            size_t cl = ma_cmd_len(s + p->i + 1);
            if (f >= 0 && fl == cl) { p->i += 1 + fl; r = parse_func(p, f); }
            else if (cl == 0 || cmd_is_nonatom(s + p->i + 1)) p->err = 1;
            else {  // \alpha, \theta, ...: a symbol
                size_t st = p->i;
                p->i += 1 + cl;
                if (s[p->i] == '_') {
                    p->i++;
                    if (s[p->i] == '{') { size_t g = ma_group_end(s, p->i); if (!g) { p->err = 1; return 0; } p->i = g; }
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
    while (!p->err) {  // postfix: 5!, 30\circ (degrees)
        if (peekc(p) == '!') { p->i++; r = mk2(p, N_FACT, r, -1); }
        else if (eat_cmd(p, "circ")) { if (p->trig) r = degrees(p, r); }
        else break;
    }
    return p->err ? 0 : r;
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

// A scalar factor of a matrix goes into its entries: 2\begin{pmatrix}1\\2\end{pmatrix}
// is the matrix of 2*1 and 2*2 (k = -1: negate them).
static void scale_matrix(parser *p, int m, int k) {
    int prev = -1;
    for (int e = p->nd[m].first; e >= 0 && !p->err;) {
        int nx = p->nd[e].next;
        int w = k < 0 ? mk2(p, N_NEG, e, -1) : mk2(p, N_MUL, k, e);
        if (p->err) return;
        p->nd[w].mixed = 2;  // 2 * 1 written as 2 (1) is the answer's form, not work left undone
        p->nd[e].next = -1;
        p->nd[w].next = nx;
        if (prev < 0) p->nd[m].first = w; else p->nd[prev].next = w;
        prev = w;
        e = nx;
    }
}

static int mul_node(parser *p, int a, int b) {
    if (p->err) return 0;
    if (p->nd[b].kind == N_MATRIX && MA_IS_SCALAR(p->nd[a].kind)) { scale_matrix(p, b, a); return b; }
    if (p->nd[a].kind == N_MATRIX && MA_IS_SCALAR(p->nd[b].kind)) { scale_matrix(p, a, b); return a; }
    return mk2(p, N_MUL, a, b);
}

static int parse_unary(parser *p) {
    if (++p->depth > MA_MAX_DEPTH) { p->err = 2; return 0; }
    int c = peekc(p), r;
    if (c == '-') {
        p->i++;
        r = parse_unary(p);
        if (!p->err && p->nd[r].kind == N_MATRIX) scale_matrix(p, r, -1);
        else r = mk2(p, N_NEG, r, -1);
    }
    else if (c == '+') { p->i++; r = parse_unary(p); }
    else r = parse_power(p);
    p->depth--;
    return r;
}

static int parse_term(parser *p) {
    int a = parse_unary(p);
    while (!p->err) {
        int c = peekc(p);
        if (c == '*') { p->i++; int b = parse_unary(p); a = mul_node(p, a, b); }
        else if (c == '/') { p->i++; a = mk2(p, N_DIV, a, parse_unary(p)); }
        else if (atom_starts(p)) { int b = parse_power(p); a = mul_node(p, a, b); }
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

// An interval node lo..hi with the given brackets, marked as a condition's set.
static int interval(parser *p, int lo, int hi, char open, char close) {
    int r = newnode(p, N_SEQ);
    if (p->err) return 0;
    p->nd[r].first = lo;
    p->nd[lo].next = hi;
    p->nd[hi].next = -1;
    p->nd[r].n = 2;
    p->nd[r].open = open;
    p->nd[r].close = close;
    p->nd[r].cond = 1;
    return r;
}

static int neg_inf(parser *p) { return mk2(p, N_NEG, newnode(p, N_INF), -1); }

// (-inf, a) u (b, inf), brackets closed when `closed`: the outside of [a, b].
static int outside(parser *p, int a, int b, int closed) {
    int l = interval(p, neg_inf(p), a, '(', closed ? ']' : ')');
    int r = interval(p, b, newnode(p, N_INF), closed ? '[' : '(', ')');
    int u = newnode(p, N_UNION);
    if (p->err) return 0;
    p->nd[u].first = l;
    p->nd[l].next = r;
    p->nd[u].n = 2;
    p->nd[u].cond = 1;
    return u;
}

// A second reference to node b that can sit in another list (list items are linked
// through their own next field, so one node cannot be an item twice): -(-b).
static int ref(parser *p, int b) { return mk2(p, N_NEG, mk2(p, N_NEG, b, -1), -1); }

// |x|, |x - c|, |x + c|, |c + x|: 1 and the center in *c (-1 for 0), else 0.
static int abs_center(parser *p, int id, int *c) {
    node *x = &p->nd[id];
    if (x->kind != N_FUNC || x->op != F_ABS) return 0;
    node *in = &p->nd[x->a];
    *c = -1;
    if (in->kind == N_SYM) return 1;
    if (in->kind == N_SUB && p->nd[in->a].kind == N_SYM) { *c = in->b; return 1; }
    if (in->kind == N_ADD && p->nd[in->a].kind == N_SYM) { *c = mk2(p, N_NEG, in->b, -1); return 1; }
    if (in->kind == N_ADD && p->nd[in->b].kind == N_SYM) { *c = mk2(p, N_NEG, in->a, -1); return 1; }
    return 0;
}

// A condition on one variable as the set of reals it holds on (a "cond" interval or
// union): lo < x < hi, x <= b, b > x, x \ne b, |x - c| < r, |x| >= r. Else -1.
static int condition_set(parser *p, int n, const int *ops, const int *flips, const int *terms) {
    int ineq = 1;
    for (int k = 0; k < n; k++) ineq &= ops[k] == R_LT || ops[k] == R_LE;
    if (ineq && n == 2 && flips[0] == flips[1] && p->nd[terms[1]].kind == N_SYM) {
        int lo = flips[0] ? terms[2] : terms[0], hi = flips[0] ? terms[0] : terms[2];
        int lop = flips[0] ? ops[1] : ops[0], hop = flips[0] ? ops[0] : ops[1];
        return interval(p, lo, hi, lop == R_LT ? '(' : '[', hop == R_LT ? ')' : ']');
    }
    if (n != 1) return -1;
    int sym_left = p->nd[terms[0]].kind == N_SYM, sym_right = p->nd[terms[1]].kind == N_SYM;
    if (ops[0] == R_NE && (sym_left || sym_right)) {
        int b = sym_left ? terms[1] : terms[0];
        return outside(p, b, ref(p, b), 0);
    }
    if (!ineq) return -1;
    int strict = ops[0] == R_LT;
    if (sym_left || sym_right) {
        int bound = sym_left ? terms[1] : terms[0];
        int upper = sym_left ^ flips[0];  // x < b or b > x: b is an upper bound
        if (upper) return interval(p, neg_inf(p), bound, '(', strict ? ')' : ']');
        return interval(p, bound, newnode(p, N_INF), strict ? '(' : '[', ')');
    }
    int c, abs_left = abs_center(p, terms[0], &c);
    if (!abs_left && !abs_center(p, terms[1], &c)) return -1;
    int r = abs_left ? terms[1] : terms[0];
    int lo = c < 0 ? mk2(p, N_NEG, r, -1) : mk2(p, N_SUB, c, r);
    int hi = c < 0 ? ref(p, r) : mk2(p, N_ADD, ref(p, c), r);
    if (p->err) return 0;
    p->nd[lo].mixed = p->nd[hi].mixed = 2;  // c - r and c + r are the answer's ends, not work left undone
    if (abs_left ^ flips[0]) return interval(p, lo, hi, strict ? '(' : '[', strict ? ')' : ']');  // |x-c| < r
    return outside(p, lo, hi, !strict);  // |x-c| > r
}

// a op b [op c]. A condition on one variable becomes a set of reals (so an inequality
// answer equals its interval); a = b = c keeps its ends.
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
    if (n >= 2 && all_eq) {
        int r = mk2(p, N_REL, terms[0], terms[n]);
        if (!p->err) p->nd[r].op = R_EQ;
        return r;
    }
    int set = condition_set(p, n, ops, flips, terms);
    if (p->err) return 0;
    if (set >= 0) return set;
    int r = mk2(p, N_REL, flips[0] ? terms[1] : terms[0], flips[0] ? terms[0] : terms[1]);
    if (!p->err) p->nd[r].op = (unsigned char)ops[0];
    return r;
}

// One item: a relation, or {a \over b}.
static int parse_item(parser *p) {
    int a = parse_rel(p);
    if (p->err || !eat_cmd(p, "over")) return a;
    return mk2(p, N_DIV, a, parse_rel(p));
}

// Items separated by ',' ';' or the words or/and (\lor, \land), until a closing
// bracket. A list joined by "or" or "and" records it in op (1 or, 2 and).
static int parse_list(parser *p, char close, int *count) {
    int first = parse_item(p), last = first, n = 1, joins = 0;
    while (!p->err) {
        int c = peekc(p);
        if (c == ',' || c == ';') p->i++;
        else if (eat_cmd(p, "lor")) joins |= 1;
        else if (eat_cmd(p, "land")) joins |= 2;
        else break;
        if (n >= MA_MAX_ITEMS) { p->err = 2; return 0; }
        int it = parse_item(p);
        if (p->err) return 0;
        p->nd[last].next = it;
        last = it;
        n++;
    }
    if (p->err) return 0;
    *count = n;
    if (n == 1) return first;
    int l = newnode(p, N_LIST);
    if (p->err) return 0;
    p->nd[l].first = first;
    p->nd[l].n = n;
    p->nd[l].op = (unsigned char)joins;
    (void)close;
    return l;
}

int ma_parse(parser *p, const char *s) {
    p->s = s;
    p->i = 0;
    p->depth = 0;
    p->trig = p->abs = 0;
    skipws(p);
    if (!s[p->i]) { p->err = 1; return 0; }
    int cnt;
    int r = parse_list(p, 0, &cnt);
    skipws(p);
    if (!p->err && p->s[p->i]) p->err = 1;
    return p->err ? 0 : r;
}


// ---------------------------------------------------------------- literals

// The digits of a literal in three runs: integer part, fixed decimals, repeated decimals
// (everything from the first \overline/\bar/\dot on). Also reads an exponent.
int ma_num_to_mpq(const node *x, mpq_t r) {
    char digits[1100];  // the parser caps a literal at 1000 characters
    size_t t = 0, fixed = 0, rep = 0;
    long ex = 0;
    int dec = 0, in_rep = 0;
    if (x->slen <= 0 || x->slen > 1000) return x->slen > 0 ? -1 : 0;
    for (int k = 0; k < x->slen; k++) {
        char c = x->str[k];
        if (isdigit((unsigned char)c)) {
            digits[t++] = c;
            if (in_rep) rep++;
            else if (dec) fixed++;
        } else if (c == '.') dec = 1;
        else if (c == '\\' && dec) in_rep = 1;
        else if ((c == 'e' || c == 'E') && !in_rep) { ex = strtol(x->str + k + 1, NULL, 10); break; }
    }
    if (t == 0) return 0;
    digits[t] = 0;
    if (ex > 2000 || ex < -2000) return -1;
    mpz_t z, d;
    mpz_init(z);
    mpz_init(d);
    mpz_set_str(z, digits, 10);
    if (rep) {
        // 0.41(6) = (4166 - 416) / (10^2 * (10^1 - 1)): all digits minus the fixed ones
        digits[t - rep] = 0;
        mpz_set_str(d, t > rep ? digits : "0", 10);
        mpz_sub(z, z, d);
        mpz_ui_pow_ui(d, 10, rep);
        mpz_sub_ui(d, d, 1);
        mpz_t f;
        mpz_init(f);
        mpz_ui_pow_ui(f, 10, fixed);
        mpz_mul(d, d, f);
        mpz_clear(f);
        mpq_set_num(r, z);
        mpq_set_den(r, d);
        mpq_canonicalize(r);
    } else {
        mpq_set_z(r, z);
        long e10 = ex - (long)fixed;
        if (e10) {
            mpz_ui_pow_ui(d, 10, (unsigned long)labs(e10));
            mpq_t q;
            mpq_init(q);
            mpq_set_z(q, d);
            if (e10 > 0) mpq_mul(r, r, q); else mpq_div(r, r, q);
            mpq_clear(q);
        }
    }
    mpz_clear(z);
    mpz_clear(d);
    return 1;
}

int ma_sym_eq(const char *a, int na, const char *b, int nb) {
    int i = 0, j = 0;
    while (1) {
        while (i < na && (a[i] == '{' || a[i] == '}' || a[i] == ' ')) i++;
        while (j < nb && (b[j] == '{' || b[j] == '}' || b[j] == ' ')) j++;
        if (i == na || j == nb) return i == na && j == nb;
        if (a[i++] != b[j++]) return 0;
    }
}
