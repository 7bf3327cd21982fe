// tokenizer/jinja_lex: template text to tokens, with apply_chat_template's whitespace
// control: trim_blocks (the newline after %} or #} is dropped), lstrip_blocks (spaces
// and tabs between a line start and {% or {# are dropped), `{%-`/`{{-`/`{#-` (the text
// before loses its trailing whitespace), `-%}`/`-}}`/`-#}` (the text after loses its
// leading whitespace), and one trailing newline of the template dropped.
#include <stdlib.h>
#include <string.h>
#include "tokenizer/jinja_internal.h"

typedef struct lexer {
    const char *s, *name;
    size_t n, i;
    int line;
    jarena *a;
    jtoks *out;
    tm_error *err;
} lexer;

static int push(lexer *L, int type, const char *s, size_t n, int line) {
    jtoks *o = L->out;
    if (o->n == o->cap) {
        int nc = o->cap ? o->cap * 2 : 256;
        jtok *nv = ja_alloc(L->a, (size_t)nc * sizeof *nv);
        if (!nv) return tm_fail(L->err, "%s: out of memory", L->name);
        if (o->n) memcpy(nv, o->v, (size_t)o->n * sizeof *nv);
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = (jtok){type, line, s, n, 0, 0};
    return 0;
}

static int lex_fail(lexer *L, const char *what) {
    return tm_fail(L->err, "%s line %d: %s", L->name, L->line, what);
}

// Advances i to j, counting lines.
static void advance(lexer *L, size_t j) {
    for (; L->i < j; L->i++)
        if (L->s[L->i] == '\n') L->line++;
}

static void skip_space(lexer *L) {
    while (L->i < L->n) {
        int adv;
        uint32_t c = ju_decode(L->s + L->i, L->n - L->i, &adv);
        if (!ju_space(c)) break;
        advance(L, L->i + (size_t)adv);
    }
}

// Trailing whitespace of the last text token goes (`{%-`); the token goes if empty.
static void strip_last_text(lexer *L, int js_ws) {
    jtoks *o = L->out;
    if (!o->n || o->v[o->n - 1].type != T_TEXT) return;
    jtok *t = &o->v[o->n - 1];
    while (t->n) {
        size_t q = t->n - 1;
        while (q > 0 && ((unsigned char)t->s[q] & 0xC0) == 0x80) q--;
        int adv;
        uint32_t c = ju_decode(t->s + q, t->n - q, &adv);
        if (js_ws ? !ju_space(c) : (c != ' ' && c != '\t')) break;
        t->n = q;
    }
    if (!t->n) o->n--;
}

static int lex_string(lexer *L, char q) {
    int line = L->line;
    size_t j = L->i + 1;
    sbuf b;
    sbuf_init(&b);
    for (;;) {
        if (j >= L->n) { sbuf_free(&b); return lex_fail(L, "unterminated string"); }
        char c = L->s[j];
        if (c == q) break;
        if (c == '\\' && j + 1 < L->n) {
            char e = L->s[j + 1];
            const char *m = strchr("nrtbfv'\"\\", e);
            static const char out[] = "\n\r\t\b\f\v'\"\\";
            if (e && m) { sbuf_put(&b, &out[m - "nrtbfv'\"\\"], 1); j += 2; continue; }
            if (e == 'x' || e == 'u') {
                int w = e == 'x' ? 2 : 4;
                uint32_t cp = 0;
                size_t k;
                for (k = 0; k < (size_t)w && j + 2 + k < L->n; k++) {
                    char h = L->s[j + 2 + k];
                    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (d < 0) break;
                    cp = cp * 16 + (uint32_t)d;
                }
                if (k != (size_t)w) { sbuf_free(&b); return lex_fail(L, "invalid \\x or \\u escape"); }
                char u[4];
                int un = cp < 0x80 ? (u[0] = (char)cp, 1)
                       : cp < 0x800 ? (u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), 2)
                       : (u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 63)), u[2] = (char)(0x80 | (cp & 63)), 3);
                sbuf_put(&b, u, (size_t)un);
                j += 2 + (size_t)w;
                continue;
            }
            sbuf_put(&b, &L->s[j], 2);  // unknown escapes stay as written, as in Python
            j += 2;
            continue;
        }
        sbuf_put(&b, &c, 1);
        j++;
    }
    if (b.failed) { sbuf_free(&b); return tm_fail(L->err, "%s: out of memory", L->name); }
    char *s = ja_alloc(L->a, b.len + 1);
    if (!s) { sbuf_free(&b); return tm_fail(L->err, "%s: out of memory", L->name); }
    if (b.len) memcpy(s, b.data, b.len);
    size_t n = b.len;
    sbuf_free(&b);
    advance(L, j + 1);
    return push(L, T_STR, s, n, line);
}

// The inside of a {{ }} or {% %} tag, up to and including its end.
static int lex_tag(lexer *L, int stmt) {
    int depth = 0;  // open { of dict literals: their } is not the end of {{ }}
    int start = L->line;
    for (;;) {
        while (L->i < L->n && strchr(" \t\r\n", L->s[L->i])) advance(L, L->i + 1);
        if (L->i >= L->n) { L->line = start; return lex_fail(L, stmt ? "missing %} of the tag opened here" : "missing }} of the tag opened here"); }
        const char *p = L->s + L->i;
        size_t left = L->n - L->i;
        const char *end = stmt ? "%}" : "}}";
        int strip = left >= 3 && p[0] == '-' && !memcmp(p + 1, end, 2);
        if (strip || (left >= 2 && !memcmp(p, end, 2) && (stmt || depth == 0))) {
            if (push(L, stmt ? T_ESTMT : T_EEXPR, end, 2, L->line)) return -1;
            advance(L, L->i + (strip ? 3 : 2));
            if (strip) skip_space(L);
            else if (stmt && L->i < L->n && L->s[L->i] == '\n') advance(L, L->i + 1);  // trim_blocks
            return 0;
        }
        char c = *p;
        if (c == '\'' || c == '"') { if (lex_string(L, c)) return -1; continue; }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t k = 1;
            while (k < left && ((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= '0' && p[k] <= '9') || p[k] == '_')) k++;
            if (push(L, T_NAME, p, k, L->line)) return -1;
            advance(L, L->i + k);
            continue;
        }
        if (c >= '0' && c <= '9') {
            size_t k = 0;
            while (k < left && p[k] >= '0' && p[k] <= '9') k++;
            int is_float = k + 1 < left && p[k] == '.' && p[k + 1] >= '0' && p[k + 1] <= '9' &&
                           !(L->out->n && L->out->v[L->out->n - 1].type == T_OP && L->out->v[L->out->n - 1].s[0] == '.');
            if (is_float) { k++; while (k < left && p[k] >= '0' && p[k] <= '9') k++; }
            if (k < left && (p[k] == 'e' || p[k] == 'E')) {  // 1e5, 2.5e-3
                size_t e = k + 1;
                if (e < left && (p[e] == '+' || p[e] == '-')) e++;
                if (e < left && p[e] >= '0' && p[e] <= '9') {
                    while (e < left && p[e] >= '0' && p[e] <= '9') e++;
                    k = e;
                    is_float = 1;
                }
            }
            if (push(L, is_float ? T_FLOAT : T_INT, p, k, L->line)) return -1;
            jtok *t = &L->out->v[L->out->n - 1];
            char tmp[64];
            size_t m = k < sizeof tmp - 1 ? k : sizeof tmp - 1;
            memcpy(tmp, p, m);
            tmp[m] = 0;
            if (is_float) t->f = strtod(tmp, NULL);
            else t->i = strtoll(tmp, NULL, 10);
            advance(L, L->i + k);
            continue;
        }
        static const char *ops2[] = {"**", "//", "==", "!=", "<=", ">="};
        size_t k = 0;
        for (size_t o = 0; o < sizeof ops2 / sizeof ops2[0]; o++)
            if (left >= 2 && !memcmp(p, ops2[o], 2)) k = 2;
        if (!k && strchr("()[]{},.:|+-*/%~<>=!", c)) k = 1;
        if (!k) return lex_fail(L, "unexpected character in a tag");
        if (c == '{') depth++;
        if (c == '}') depth--;
        if (push(L, T_OP, p, k, L->line)) return -1;
        advance(L, L->i + k);
    }
}

int jinja_lex(const char *src, size_t len, const char *name, jarena *a, jtoks *out, tm_error *err) {
    if (len && src[len - 1] == '\n') len--;  // keep_trailing_newline=False
    lexer L = {src, name, len, 0, 1, a, out, err};
    while (L.i < L.n) {
        // text up to the next tag
        size_t j = L.i;
        while (j < L.n && !(L.s[j] == '{' && j + 1 < L.n && strchr("{%#", L.s[j + 1]))) j++;
        if (j > L.i) {
            int line = L.line;
            size_t start = L.i;
            advance(&L, j);
            if (push(&L, T_TEXT, L.s + start, j - start, line)) return -1;
            // lstrip_blocks: blanks from a line start up to {% or {#
            if (j < L.n && L.s[j + 1] != '{') {
                size_t k = j;
                while (k > start && (L.s[k - 1] == ' ' || L.s[k - 1] == '\t')) k--;
                if (k == 0 || L.s[k - 1] == '\n') strip_last_text(&L, 0);
            }
        }
        if (j >= L.n) break;
        int minus = j + 2 < L.n && L.s[j + 2] == '-';
        if (minus) strip_last_text(&L, 1);
        char kind = L.s[j + 1];
        if (kind == '#') {
            size_t k = j + 2;
            while (k + 1 < L.n && !(L.s[k] == '#' && L.s[k + 1] == '}')) k++;
            if (k + 1 >= L.n) return lex_fail(&L, "unterminated comment");
            int strip = k > j + 2 && L.s[k - 1] == '-';
            advance(&L, k + 2);
            if (strip) skip_space(&L);
            else if (L.i < L.n && L.s[L.i] == '\n') advance(&L, L.i + 1);  // trim_blocks
            continue;
        }
        if (push(&L, kind == '%' ? T_BSTMT : T_BEXPR, L.s + j, 2, L.line)) return -1;
        advance(&L, j + 2 + (size_t)minus);
        if (lex_tag(&L, kind == '%')) return -1;
    }
    return push(&L, T_EOF, "", 0, L.line);
}
