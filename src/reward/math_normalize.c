// reward/math_normalize: rewrites one extracted answer into the form math_parse.c reads.
// Token-aware, never blind substring deletion (Minerva's "ft" turns \infty into \iny):
//   - LaTeX noise goes: $, \left/\right, \!, \, spacing, \displaystyle, %;
//   - spellings become one: \dfrac/\tfrac/\cfrac -> \frac, \leq -> \le, \cdot -> *, ...;
//   - degrees ^\circ, ^{\circ}, U+00B0, \degree become one postfix token \circ (the
//     parser ignores it, except inside a trig function where 60\circ is pi/3);
//   - \text{...}: "and"/"or" become \land/\lor (list separators), a unit tail after content is dropped,
//     anything else is unwrapped; trailing unit words ("5 dollars") are dropped;
//   - unicode: minus, times, pi, sqrt, superscript digits (y³ -> y^{3}), ½, ℝ, ...;
//   - \mathbb{R} becomes (-\infty,\infty);
//   - a whole answer in words: number words ("twelve" -> 12), empty-set phrases ("no
//     real solutions" -> \emptyset), "all real numbers" -> (-\infty,\infty).
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "reward/math_internal.h"

// ---------------------------------------------------------------- string helpers

int mb_put(mbuf *b, const char *p, size_t n, tm_error *err) {
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->s, c);
        if (!q) return tm_fail(err, "math verifier: out of memory for a %zu-byte answer", c);
        b->s = q;
        b->cap = c;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}
int mb_putc(mbuf *b, char c, tm_error *err) { return mb_put(b, &c, 1, err); }
int mb_puts(mbuf *b, const char *p, tm_error *err) { return mb_put(b, p, strlen(p), err); }

int ma_starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

size_t ma_cmd_len(const char *s) {
    size_t n = 0;
    while (isalpha((unsigned char)s[n])) n++;
    return n;
}

size_t ma_group_end(const char *s, size_t i) {
    int d = 0;
    for (size_t k = i; s[k]; k++) {
        if (s[k] == '\\' && s[k + 1]) { k++; continue; }
        if (s[k] == '{') d++;
        else if (s[k] == '}' && --d == 0) return k + 1;
    }
    return 0;
}

// ---------------------------------------------------------------- units and words

static const char *UNIT_WORDS[] = {
    "cm", "mm", "km", "meters", "meter", "metres", "inches", "inch", "feet", "foot", "ft", "yards", "yard",
    "miles", "mile", "units", "unit", "square", "sq", "cubic", "dollars", "dollar", "cents", "cent",
    "degrees", "degree", "hours", "hour", "hrs", "minutes", "minute", "mins", "seconds", "second", "secs",
    "days", "day", "weeks", "week", "years", "year", "months", "month", "pounds", "pound", "lbs",
    "ounces", "oz", "gallons", "gallon", "liters", "liter", "litres", "grams", "gram", "kg", "mph",
    "percent", "pct", "people", "points", "ways", "times", NULL};

static int word_in(const char *w, size_t n, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == n && !strncasecmp(list[i], w, n)) return i;
    return -1;
}

static int has_content(const mbuf *b) {
    for (size_t i = 0; i < b->n; i++)
        if (!isspace((unsigned char)b->s[i])) return 1;
    return 0;
}

// ---------------------------------------------------------------- the rewrite

static int normalize_into(const char *s, mbuf *o, int depth, tm_error *err);

// \text{...} and friends at s[i]: a unit tail after content is dropped, "and"/"or"
// become a comma, anything else is unwrapped (and normalized). *next: where to go on.
static int norm_text(const char *s, size_t i, size_t cl, mbuf *o, int depth, size_t *next, tm_error *err) {
    size_t j = i + 1 + cl;
    while (s[j] == ' ') j++;
    *next = j;
    if (s[j] != '{') return 0;  // \text without a group: drop the command
    size_t e = ma_group_end(s, j);
    if (!e) { *next = strlen(s); return 0; }
    *next = e;
    size_t a = j + 1, z = e - 1;
    while (a < z && isspace((unsigned char)s[a])) a++;
    while (z > a && isspace((unsigned char)s[z - 1])) z--;
    size_t n = z - a, letters = 0, other = 0;
    for (size_t k = a; k < z; k++) {
        if (isalpha((unsigned char)s[k])) letters++;
        else if (s[k] != ' ' && s[k] != '.' && s[k] != '-') other++;
    }
    if (n == 0) return 0;
    if (n == 3 && !strncasecmp(s + a, "and", 3)) return mb_puts(o, "\\land ", err);
    if (n == 2 && !strncasecmp(s + a, "or", 2)) return mb_puts(o, "\\lor ", err);
    if (has_content(o) && letters >= 2 && !other) {
        // a unit: also drop its power (cm^2)
        size_t k = e;
        if (s[k] == '^') {
            if (isdigit((unsigned char)s[k + 1])) k += 2;
            else if (s[k + 1] == '{') { size_t g = ma_group_end(s, k + 1); if (g) k = g; }
        }
        *next = k;
        return 0;
    }
    if (depth >= 8) return 0;
    char *inner = strndup(s + a, n);
    if (!inner) return tm_fail(err, "math verifier: out of memory");
    int rc = normalize_into(inner, o, depth + 1, err);
    free(inner);
    return rc;
}

// Unicode characters with a LaTeX meaning. Superscript digits are handled apart.
static const struct { const char *u, *r; } UNICODE[] = {
    {"\xe2\x88\x92", "-"}, {"\xc3\x97", "*"}, {"\xc3\xb7", "/"}, {"\xcf\x80", "\\pi "},
    {"\xe2\x88\x9a", "\\sqrt"}, {"\xe2\x88\x9e", "\\infty "}, {"\xe2\x89\xa4", "\\le "},
    {"\xe2\x89\xa5", "\\ge "}, {"\xe2\x89\xa0", "\\ne "}, {"\xc2\xb0", "\\circ "}, {"\xc2\xb7", "*"},
    {"\xe2\x88\xaa", "\\cup "}, {"\xe2\x80\x89", " "}, {"\xc2\xa0", " "}, {"\xe2\x8b\x85", "*"},
    {"\xc2\xb1", "\\pm "}, {"\xe2\x88\x93", "\\mp "}, {"\xe2\x88\x85", "\\emptyset "},
    {"\xe2\x84\x9d", "(-\\infty,\\infty)"}, {"\xc2\xbd", "\\frac{1}{2}"}, {"\xc2\xbc", "\\frac{1}{4}"},
    {"\xc2\xbe", "\\frac{3}{4}"}, {"\xe2\x85\x93", "\\frac{1}{3}"}, {"\xe2\x85\x94", "\\frac{2}{3}"}};

// A superscript character at s: its ASCII meaning ('0'..'9', '+', '-', 'n'), else 0.
static char superscript_at(const char *s, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    *len = 2;
    if (u[0] == 0xc2 && u[1] == 0xb9) return '1';
    if (u[0] == 0xc2 && u[1] == 0xb2) return '2';
    if (u[0] == 0xc2 && u[1] == 0xb3) return '3';
    *len = 3;
    if (u[0] == 0xe2 && u[1] == 0x81) {
        if (u[2] == 0xb0) return '0';
        if (u[2] >= 0xb4 && u[2] <= 0xb9) return (char)('4' + (u[2] - 0xb4));
        if (u[2] == 0xba) return '+';
        if (u[2] == 0xbb) return '-';
        if (u[2] == 0xbf) return 'n';
    }
    return 0;
}

// Unicode at s[*i] (c >= 0x80): rewritten into o, *i advanced.
static int norm_unicode(const char *s, size_t *i, mbuf *o, tm_error *err) {
    size_t sl;
    if (superscript_at(s + *i, &sl)) {  // a run of superscripts is one exponent: y³ -> y^{3}
        if (mb_puts(o, "^{", err)) return -1;
        char ch;
        while ((ch = superscript_at(s + *i, &sl))) {
            if (mb_putc(o, ch, err)) return -1;
            *i += sl;
        }
        return mb_putc(o, '}', err);
    }
    for (size_t k = 0; k < sizeof UNICODE / sizeof UNICODE[0]; k++)
        if (ma_starts(s + *i, UNICODE[k].u)) {
            *i += strlen(UNICODE[k].u);
            return mb_puts(o, UNICODE[k].r, err);
        }
    return mb_putc(o, s[(*i)++], err);
}

// ^\circ, ^{\circ}, ^{ \circ } at s[i] == '^': the length, else 0.
static size_t degree_at(const char *s, size_t i) {
    size_t k = i + 1;
    while (s[k] == ' ') k++;
    if (ma_starts(s + k, "\\circ") && !isalpha((unsigned char)s[k + 5])) return k + 5 - i;
    if (s[k] != '{') return 0;
    k++;
    while (s[k] == ' ') k++;
    if (!ma_starts(s + k, "\\circ") || isalpha((unsigned char)s[k + 5])) return 0;
    k += 5;
    while (s[k] == ' ') k++;
    return s[k] == '}' ? k + 1 - i : 0;
}

// The replacement for command w (cl letters), or NULL to keep it.
static const char *command_rewrite(const char *w, size_t cl) {
    static const struct { const char *name, *rep; } R[] = {
        {"dfrac", "\\frac"}, {"tfrac", "\\frac"}, {"cfrac", "\\frac"}, {"dbinom", "\\binom"},
        {"tbinom", "\\binom"}, {"leq", "\\le "}, {"leqslant", "\\le "}, {"le", "\\le "}, {"geq", "\\ge "},
        {"geqslant", "\\ge "}, {"ge", "\\ge "}, {"neq", "\\ne "}, {"ne", "\\ne "}, {"lt", "<"}, {"gt", ">"},
        {"cdot", "*"}, {"times", "*"}, {"ast", "*"}, {"div", "/"}, {"lvert", "|"}, {"rvert", "|"},
        {"vert", "|"}, {"mid", "|"}, {"lbrace", "\\{"}, {"rbrace", "\\}"}, {"varnothing", "\\emptyset "},
        {"infin", "\\infty "}, {"approx", "="}, {"equiv", "="}, {"colon", ":"}, {"degree", "\\circ "},
        {"circ", "\\circ "}};
    for (size_t k = 0; k < sizeof R / sizeof R[0]; k++)
        if (strlen(R[k].name) == cl && !strncmp(R[k].name, w, cl)) return R[k].rep;
    return NULL;
}

static int cmd_is(const char *w, size_t cl, const char *const *names) { return word_in(w, cl, names) >= 0; }

static const char *const DROP_CMDS[] = {"left", "right", "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "biggl",
                                        "biggr", NULL};
static const char *const SKIP_CMDS[] = {"displaystyle", "limits", "quad", "qquad", "textstyle", "nonumber", NULL};
static const char *const TEXT_CMDS[] = {"text", "textbf", "mbox", "mathrm", "textrm", "mathbf", "textit", "mathit",
                                        "emph", "textnormal", "operatorname", "hbox", NULL};

// A backslash command at s[*i]: rewritten into o, *i advanced.
static int norm_command(const char *s, size_t *i, mbuf *o, int depth, tm_error *err) {
    size_t n = strlen(s);
    char nx = s[*i + 1];
    if (nx == '!' || nx == ',' || nx == ';' || nx == ':' || nx == ' ' || nx == '>' || nx == '%' || nx == '$' ||
        nx == '(' || nx == ')' || nx == '[' || nx == ']') {
        *i += 2;
        return 0;
    }
    size_t cl = ma_cmd_len(s + *i + 1);
    if (cl == 0) {  // \{ \} \\ and friends
        if (mb_putc(o, s[(*i)++], err)) return -1;
        return *i < n ? mb_putc(o, s[(*i)++], err) : 0;
    }
    const char *w = s + *i + 1;
    if (cmd_is(w, cl, DROP_CMDS)) {
        *i += 1 + cl;
        if (s[*i] == '.') (*i)++;  // \left. is an invisible delimiter
        return 0;
    }
    if (cmd_is(w, cl, SKIP_CMDS)) { *i += 1 + cl; return 0; }
    if (cmd_is(w, cl, TEXT_CMDS)) return norm_text(s, *i, cl, o, depth, i, err);
    if (cl == 6 && !strncmp(w, "mathbb", 6)) {  // \mathbb{R}, \mathbb R: the real line
        size_t k = *i + 7;
        while (s[k] == ' ') k++;
        if (ma_starts(s + k, "{R}") || (s[k] == 'R' && !isalpha((unsigned char)s[k + 1]))) {
            *i = k + (s[k] == '{' ? 3 : 1);
            return mb_puts(o, "(-\\infty,\\infty)", err);
        }
    }
    const char *rep = command_rewrite(w, cl);
    *i += 1 + cl;
    if (!rep) return mb_put(o, w - 1, 1 + cl, err);
    if (!strcmp(rep, "\\frac") && s[*i] == '[') {  // \cfrac[l]{..}{..}: drop the alignment
        const char *q = strchr(s + *i, ']');
        if (q) *i = (size_t)(q - s) + 1;
    }
    return mb_puts(o, rep, err);
}

// The word "or" or "and" standing alone at s[i] (joining conditions or items): its
// length and its command (\\lor, \\land), else 0.
static size_t joiner_at(const char *s, size_t i, const char **cmd) {
    if (i > 0 && (isalpha((unsigned char)s[i - 1]) || s[i - 1] == '\\')) return 0;
    size_t n = 0;
    while (isalpha((unsigned char)s[i + n])) n++;
    *cmd = n == 2 ? "\\lor " : "\\land ";
    if ((n == 2 && !strncasecmp(s + i, "or", 2)) || (n == 3 && !strncasecmp(s + i, "and", 3))) return n;
    return 0;
}

static int normalize_into(const char *s, mbuf *o, int depth, tm_error *err) {
    size_t i = 0, n = strlen(s);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int rc = 0;
        size_t k;
        const char *word;
        if (c == '$' || c == '%') { i++; continue; }
        if (c == '~') { rc = mb_putc(o, ' ', err); i++; }
        else if (c == '{' && s[i + 1] == ',' && s[i + 2] == '}') { rc = mb_putc(o, ',', err); i += 3; }
        else if (c == '^' && (k = degree_at(s, i))) { rc = mb_puts(o, "\\circ ", err); i += k; }
        else if (c >= 0x80) rc = norm_unicode(s, &i, o, err);
        else if (c == '\\') rc = norm_command(s, &i, o, depth, err);
        else if (isalpha(c) && (k = joiner_at(s, i, &word))) { rc = mb_puts(o, word, err); i += k; }
        else rc = mb_putc(o, s[i++], err);
        if (rc) return -1;
    }
    return 0;
}

// Drops trailing unit words ("5 dollars", "12 square feet") and punctuation.
static void strip_tail(mbuf *o) {
    if (!o->s) return;
    for (int round = 0; round < 4; round++) {
        while (o->n && (isspace((unsigned char)o->s[o->n - 1]) || o->s[o->n - 1] == '.' ||
                        o->s[o->n - 1] == ';' || (o->s[o->n - 1] == ',' && o->n > 1)))
            o->s[--o->n] = 0;
        size_t e = o->n, a = e;
        while (a > 0 && isalpha((unsigned char)o->s[a - 1])) a--;
        if (a == e || a == 0 || word_in(o->s + a, e - a, UNIT_WORDS) < 0) break;
        size_t k = a;
        while (k > 0 && o->s[k - 1] == ' ') k--;
        if (k == a) break;  // glued to the previous token: "5ft" may be 5*f*t... keep
        char p = k ? o->s[k - 1] : 0;
        if (!(isdigit((unsigned char)p) || p == '}' || p == ')' || isalpha((unsigned char)p))) break;
        o->n = k;
        o->s[k] = 0;
    }
}

// ---------------------------------------------------------------- whole answers in words

static const char *const SMALL[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                                    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                                    "seventeen", "eighteen", "nineteen", NULL};
static const char *const TENS[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                                   "ninety", NULL};

// "twelve", "twenty-five", "one hundred and five", "three thousand": the value, or -1.
static long number_words(const char *s) {
    long total = 0, cur = 0;
    int words = 0, last_small = 0;
    size_t i = 0;
    while (s[i]) {
        while (s[i] == ' ' || s[i] == '-') i++;
        if (!s[i]) break;
        size_t n = 0;
        while (isalpha((unsigned char)s[i + n])) n++;
        if (!n) return -1;
        int k;
        if ((k = word_in(s + i, n, SMALL)) >= 0) { if (last_small) return -1; cur += k; last_small = 1; }
        else if ((k = word_in(s + i, n, TENS)) >= 2) { if (cur % 100) return -1; cur += 10 * k; last_small = 0; }
        else if (n == 7 && !strncasecmp(s + i, "hundred", 7)) { if (!cur || cur >= 100) return -1; cur *= 100; last_small = 0; }
        else if (n == 8 && !strncasecmp(s + i, "thousand", 8)) { if (!cur) return -1; total += cur * 1000; cur = 0; last_small = 0; }
        else if (n == 7 && !strncasecmp(s + i, "million", 7)) { if (!cur) return -1; total += cur * 1000000; cur = 0; last_small = 0; }
        else if (n == 3 && !strncasecmp(s + i, "and", 3) && words) { i += n; continue; }
        else return -1;
        if (total > 1000000000L) return -1;
        words++;
        i += n;
    }
    return words ? total + cur : -1;
}

static const char *const EMPTY_PHRASES[] = {"no solution", "no solutions", "no real solution", "no real solutions",
                                            "no real roots", "no roots", "no real values", "no real numbers",
                                            "empty set", "the empty set", "there are no solutions",
                                            "there are no real solutions", NULL};
static const char *const ALL_REALS[] = {"all real numbers", "all reals", "all real values", "all real x",
                                        "all x", NULL};

// A whole answer that is words only: its mathematical spelling, or NULL.
static const char *words_rewrite(const char *s, char *num, size_t cap) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '.' || s[n - 1] == ' ')) n--;
    for (size_t k = 0; k < n; k++)
        if (!isalpha((unsigned char)s[k]) && s[k] != ' ' && s[k] != '-') return NULL;
    if (word_in(s, n, EMPTY_PHRASES) >= 0) return "\\emptyset";
    if (word_in(s, n, ALL_REALS) >= 0) return "(-\\infty,\\infty)";
    char w[64];
    if (n >= sizeof w) return NULL;
    memcpy(w, s, n);
    w[n] = 0;
    long v = number_words(w);
    if (v < 0) return NULL;
    snprintf(num, cap, "%ld", v);
    return num;
}

int ma_normalize(const char *in, char **out, tm_error *err) {
    mbuf o = {0};
    *out = NULL;
    if (normalize_into(in, &o, 0, err) || mb_put(&o, "", 0, err)) { free(o.s); return -1; }
    strip_tail(&o);
    // unwrap \boxed{...} / \fbox{...} covering the whole answer
    char *p = o.s;
    while (isspace((unsigned char)*p)) p++;
    for (int k = 0; k < 4; k++) {
        size_t skip = ma_starts(p, "\\boxed") ? 6 : ma_starts(p, "\\fbox") ? 5 : 0;
        if (!skip) break;
        char *q = p + skip;
        while (*q == ' ') q++;
        if (*q != '{') break;
        size_t e = ma_group_end(q, 0);
        if (!e || q[e] != 0) break;
        q[e - 1] = 0;
        p = q + 1;
    }
    char num[32];
    const char *w = words_rewrite(p, num, sizeof num);
    if (w) {
        *out = strdup(w);
        free(o.s);
        return *out ? 0 : tm_fail(err, "math verifier: out of memory");
    }
    if (p != o.s) memmove(o.s, p, strlen(p) + 1);
    *out = o.s;
    return 0;
}

// ---------------------------------------------------------------- \pm

static size_t pm_at(const char *s, size_t i) {
    if ((ma_starts(s + i, "\\pm") || ma_starts(s + i, "\\mp")) && !isalpha((unsigned char)s[i + 3])) return 3;
    return 0;
}

// item s[a..e) with each \pm replaced by sign (and \mp by the other sign)
static int put_signed(mbuf *o, const char *s, size_t a, size_t e, char sign, tm_error *err) {
    for (size_t i = a; i < e; i++) {
        if (pm_at(s, i)) {
            char c = s[i + 1] == 'p' ? sign : (sign == '+' ? '-' : '+');
            if (mb_putc(o, c, err)) return -1;
            i += 2;
        } else if (mb_putc(o, s[i], err)) return -1;
    }
    return 0;
}

int ma_expand_pm(const char *s, char **out, tm_error *err) {
    *out = NULL;
    int any = 0;
    for (size_t i = 0; s[i] && !any; i++) any = pm_at(s, i) > 0;
    if (!any) return 0;
    mbuf o = {0};
    size_t a = 0;
    int depth = 0;
    for (size_t i = 0;; i++) {
        char c = s[i];
        if (c == '(' || c == '[' || c == '{') depth++;
        else if (c == ')' || c == ']' || c == '}') depth--;
        if (c && !((c == ',' || c == ';') && depth == 0)) continue;
        // one top-level item s[a..i): with a \pm it is two items
        int pm = 0;
        for (size_t k = a; k < i && !pm; k++) pm = pm_at(s, k) > 0;
        if (a && mb_putc(&o, ',', err)) goto fail;
        if (!pm) { if (mb_put(&o, s + a, i - a, err)) goto fail; }
        else if (put_signed(&o, s, a, i, '+', err) || mb_putc(&o, ',', err) || put_signed(&o, s, a, i, '-', err))
            goto fail;
        if (!c) break;
        a = i + 1;
    }
    if (mb_put(&o, "", 0, err)) goto fail;
    *out = o.s;
    return 0;
fail:
    free(o.s);
    return -1;
}

int ma_is_text_answer(const char *s) {
    static const char *const T[] = {"\\text{", "\\textbf{", "\\mbox{", "\\mathrm{", "\\textrm{", "\\textit{", NULL};
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '$') i++;
    for (int k = 0; T[k]; k++) {
        if (!ma_starts(s + i, T[k])) continue;
        size_t e = ma_group_end(s, i + strlen(T[k]) - 1);
        if (!e) return 0;
        while (s[e] == ' ' || s[e] == '$' || s[e] == '.') e++;
        return s[e] == 0;
    }
    return 0;
}
