// reward/math_extract: finding the final answer in a model's output (the first stage
// of the verifier; math_equal.c is the second). Each extractor looks for one form and
// returns the last one in the text; math_extract tries them in the caller's order.
#include <ctype.h>
#include <string.h>
#include "reward/math_answer.h"

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
            // A NUL byte inside the answer would cut every C-string comparison after
            // this point short ("1\0" "2" would read as 1): such an answer is refused.
            if (memchr(text + *start, 0, *alen)) return 0;
            if (which) *which = o->order[k];
            return 1;
        }
    }
    return 0;
}

