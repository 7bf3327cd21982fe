// A recursive-descent JSON parser into one arena, and a small string builder.
#include "base/json.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"

// ---- arena: big blocks, bump allocation, freed together ----
typedef struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(16) char data[];
} block;

struct json_doc {
    block *blocks;
    json root;
};

static void *doc_alloc(json_doc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    block *b = d->blocks;
    if (!b || b->used + n > b->cap) {
        size_t cap = n > (1 << 20) ? n : (1 << 20);
        block *nb = malloc(sizeof(block) + cap);
        if (!nb) return NULL;
        nb->used = 0;
        nb->cap = cap;
        nb->next = b;
        d->blocks = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

typedef struct parser {
    const char *s, *end, *p;
    json_doc *doc;
    tm_error *err;
    int depth;
    // scratch stack reused for array/object items before they are copied into the arena
    json *stack;
    const char **kstack;
    size_t *klstack;
    size_t sp, scap;
} parser;

static int perr(parser *ps, const char *what) {
    int line = 1, col = 1;
    for (const char *q = ps->s; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') { line++; col = 1; } else col++;
    }
    return tm_fail(ps->err, "line %d, column %d: %s", line, col, what);
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int push(parser *ps, const json *v, const char *key, size_t klen) {
    if (ps->sp == ps->scap) {
        size_t nc = ps->scap ? ps->scap * 2 : 256;
        json *ns = realloc(ps->stack, nc * sizeof *ns);
        if (!ns) return -1;
        ps->stack = ns;
        const char **nk = realloc(ps->kstack, nc * sizeof *nk);
        if (!nk) return -1;
        ps->kstack = nk;
        size_t *nl = realloc(ps->klstack, nc * sizeof *nl);
        if (!nl) return -1;
        ps->klstack = nl;
        ps->scap = nc;
    }
    ps->stack[ps->sp] = *v;
    ps->kstack[ps->sp] = key;
    ps->klstack[ps->sp] = klen;
    ps->sp++;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *ps, const char *q, unsigned *out) {
    if (ps->end - q < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Parses a string starting at the opening quote; result is NUL-terminated in the arena.
static int parse_string(parser *ps, const char **out, size_t *outlen) {
    const char *q = ps->p + 1;
    // first pass: find the end and whether there are escapes
    const char *e = q;
    int esc = 0;
    while (e < ps->end && *e != '"') {
        if ((unsigned char)*e < 0x20) { ps->p = e; return perr(ps, "control character in string"); }
        if (*e == '\\') { esc = 1; e++; }
        e++;
    }
    if (e >= ps->end) { ps->p = e; return perr(ps, "unterminated string"); }
    size_t n = (size_t)(e - q);
    char *o = doc_alloc(ps->doc, n + 1);
    if (!o) return perr(ps, "out of memory");
    if (!esc) {
        memcpy(o, q, n);
        o[n] = 0;
        *out = o;
        *outlen = n;
        ps->p = e + 1;
        return 0;
    }
    size_t k = 0;
    while (q < e) {
        if (*q != '\\') { o[k++] = *q++; continue; }
        q++;
        switch (*q) {
        case '"': o[k++] = '"'; q++; break;
        case '\\': o[k++] = '\\'; q++; break;
        case '/': o[k++] = '/'; q++; break;
        case 'b': o[k++] = '\b'; q++; break;
        case 'f': o[k++] = '\f'; q++; break;
        case 'n': o[k++] = '\n'; q++; break;
        case 'r': o[k++] = '\r'; q++; break;
        case 't': o[k++] = '\t'; q++; break;
        case 'u': {
            unsigned cp;
            if (read_hex4(ps, q + 1, &cp)) { ps->p = q; return perr(ps, "bad \\u escape"); }
            q += 5;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (q + 1 < e && q[0] == '\\' && q[1] == 'u' && !read_hex4(ps, q + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    q += 6;
                } else cp = 0xFFFD;  // lone surrogate: replacement character, as Python's json does not but HF files never contain
            } else if (cp >= 0xDC00 && cp < 0xE000) cp = 0xFFFD;
            k += put_utf8(o + k, cp);  // at most 6 source bytes -> at most 4 output bytes
            break;
        }
        default: ps->p = q; return perr(ps, "bad escape in string");
        }
    }
    o[k] = 0;
    *out = o;
    *outlen = k;
    ps->p = e + 1;
    return 0;
}

static int parse_value(parser *ps, json *v);

static int parse_container(parser *ps, json *v, int is_obj) {
    char close = is_obj ? '}' : ']';
    size_t base = ps->sp;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            const char *key = NULL;
            size_t klen = 0;
            skip_ws(ps);
            if (is_obj) {
                if (ps->p >= ps->end || *ps->p != '"') return perr(ps, "expected a string key");
                if (parse_string(ps, &key, &klen)) return -1;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') return perr(ps, "expected ':'");
                ps->p++;
            }
            json item;
            if (parse_value(ps, &item)) return -1;
            if (push(ps, &item, key, klen)) return perr(ps, "out of memory");
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
            if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
            return perr(ps, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    size_t n = ps->sp - base;
    memset(v, 0, sizeof *v);
    v->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
    v->n = (int)n;
    if (n) {
        v->items = doc_alloc(ps->doc, n * sizeof(json));
        if (!v->items) return perr(ps, "out of memory");
        memcpy(v->items, ps->stack + base, n * sizeof(json));
        if (is_obj) {
            v->keys = doc_alloc(ps->doc, n * sizeof(char *));
            v->key_lens = doc_alloc(ps->doc, n * sizeof(size_t));
            if (!v->keys || !v->key_lens) return perr(ps, "out of memory");
            memcpy(v->keys, ps->kstack + base, n * sizeof(char *));
            memcpy(v->key_lens, ps->klstack + base, n * sizeof(size_t));
        }
    }
    ps->sp = base;
    return 0;
}

static int parse_number(parser *ps, json *v) {
    const char *q = ps->p;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end || !(*q >= '0' && *q <= '9')) return perr(ps, "invalid value");
    if (*q == '0') q++;
    else while (q < ps->end && *q >= '0' && *q <= '9') q++;
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) { ps->p = q; return perr(ps, "digit expected after '.'"); }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) { ps->p = q; return perr(ps, "digit expected in exponent"); }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    size_t n = (size_t)(q - ps->p);
    char *t = doc_alloc(ps->doc, n + 1);
    if (!t) return perr(ps, "out of memory");
    memcpy(t, ps->p, n);
    t[n] = 0;
    memset(v, 0, sizeof *v);
    v->type = JSON_NUMBER;
    v->str = t;
    v->len = n;
    v->num = strtod(t, NULL);
    ps->p = q;
    return 0;
}

static int literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return 0;
    ps->p += n;
    return 1;
}

static int parse_value(parser *ps, json *v) {
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end of input");
    if (++ps->depth > 512) return perr(ps, "nesting deeper than 512");
    int rc = 0;
    memset(v, 0, sizeof *v);
    switch (*ps->p) {
    case '{': rc = parse_container(ps, v, 1); break;
    case '[': rc = parse_container(ps, v, 0); break;
    case '"': v->type = JSON_STRING; rc = parse_string(ps, &v->str, &v->len); break;
    case 't': if (literal(ps, "true")) { v->type = JSON_BOOL; v->boolean = 1; } else rc = perr(ps, "invalid value"); break;
    case 'f': if (literal(ps, "false")) { v->type = JSON_BOOL; } else rc = perr(ps, "invalid value"); break;
    case 'n': if (literal(ps, "null")) { v->type = JSON_NULL; } else rc = perr(ps, "invalid value"); break;
    // Python's json writes these for non-finite floats; accept them on input.
    case 'N': if (literal(ps, "NaN")) { v->type = JSON_NUMBER; v->num = NAN; v->str = "NaN"; v->len = 3; } else rc = perr(ps, "invalid value"); break;
    case 'I': if (literal(ps, "Infinity")) { v->type = JSON_NUMBER; v->num = INFINITY; v->str = "Infinity"; v->len = 8; } else rc = perr(ps, "invalid value"); break;
    default: rc = parse_number(ps, v); break;
    }
    ps->depth--;
    return rc;
}

json_doc *json_parse(const char *text, size_t len, tm_error *err) {
    json_doc *d = calloc(1, sizeof *d);
    if (!d) { tm_fail(err, "out of memory"); return NULL; }
    parser ps = {.s = text, .end = text + len, .p = text, .doc = d, .err = err};
    int rc = parse_value(&ps, &d->root);
    if (!rc) {
        skip_ws(&ps);
        if (ps.p != ps.end) rc = perr(&ps, "trailing characters after the JSON value");
    }
    free(ps.stack);
    free(ps.kstack);
    free(ps.klstack);
    if (rc) { json_doc_free(d); return NULL; }
    return d;
}

json *json_root(json_doc *doc) { return &doc->root; }

void json_doc_free(json_doc *doc) {
    if (!doc) return;
    for (block *b = doc->blocks, *n; b; b = n) { n = b->next; free(b); }
    free(doc);
}

json_doc *json_parse_file(const char *path, tm_error *err) {
    size_t n;
    char *text = io_read_file(path, &n, err);
    if (!text) return NULL;
    json_doc *d = json_parse(text, n, err);
    free(text);
    if (!d) tm_fail_prefix(err, "%s", path);
    return d;
}

json *json_get(const json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    // last occurrence wins, as in Python's json
    for (int i = obj->n - 1; i >= 0; i--)
        if (obj->key_lens[i] == kl && !memcmp(obj->keys[i], key, kl)) return &obj->items[i];
    return NULL;
}

const char *json_get_str(const json *obj, const char *key, const char *def) {
    json *v = json_get(obj, key);
    return v && v->type == JSON_STRING ? v->str : def;
}

double json_get_num(const json *obj, const char *key, double def) {
    json *v = json_get(obj, key);
    return v && v->type == JSON_NUMBER ? v->num : def;
}

int json_is_int(const json *v) {
    return v && v->type == JSON_NUMBER && isfinite(v->num) && v->num == floor(v->num) && fabs(v->num) < 9.2e18;
}

int64_t json_get_int(const json *obj, const char *key, int64_t def) {
    json *v = json_get(obj, key);
    return json_is_int(v) ? (int64_t)v->num : def;
}

int json_get_bool(const json *obj, const char *key, int def) {
    json *v = json_get(obj, key);
    return v && v->type == JSON_BOOL ? v->boolean : def;
}

// ---- writing ----
void sbuf_init(sbuf *b) { memset(b, 0, sizeof *b); }
void sbuf_free(sbuf *b) { free(b->data); memset(b, 0, sizeof *b); }
void sbuf_clear(sbuf *b) { b->len = 0; if (b->data) b->data[0] = 0; }

// A failed allocation marks the buffer (b->failed) instead of failing each append;
// appends to a marked buffer do nothing, and its owner checks sbuf_check once.
static int sbuf_reserve(sbuf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1) nc *= 2;
    char *nd = realloc(b->data, nc);
    if (!nd) { b->failed = 1; b->want = b->len + extra + 1; return -1; }
    b->data = nd;
    b->cap = nc;
    return 0;
}

int sbuf_check(const sbuf *b, tm_error *err) {
    return b->failed ? tm_fail(err, "out of memory building a text of %zu bytes", b->want) : 0;
}

void sbuf_put(sbuf *b, const char *s, size_t n) {
    if (sbuf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void sbuf_puts(sbuf *b, const char *s) { sbuf_put(b, s, strlen(s)); }

void sbuf_printf(sbuf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0 && !sbuf_reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void sbuf_json_str(sbuf *b, const char *s, size_t n) {
    sbuf_reserve(b, n + 2);
    sbuf_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sbuf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': sbuf_put(b, "\\\"", 2); break;
        case '\\': sbuf_put(b, "\\\\", 2); break;
        case '\n': sbuf_put(b, "\\n", 2); break;
        case '\r': sbuf_put(b, "\\r", 2); break;
        case '\t': sbuf_put(b, "\\t", 2); break;
        case '\b': sbuf_put(b, "\\b", 2); break;
        case '\f': sbuf_put(b, "\\f", 2); break;
        default: sbuf_printf(b, "\\u%04x", c); break;
        }
    }
    sbuf_put(b, s + run, n - run);
    sbuf_put(b, "\"", 1);
}

void sbuf_json_float(sbuf *b, double v) {
    if (isnan(v)) { sbuf_puts(b, "NaN"); return; }
    if (isinf(v)) { sbuf_puts(b, v > 0 ? "Infinity" : "-Infinity"); return; }
    // shortest %.{p}g that round-trips the value as a float
    char buf[40];
    for (int p = 6; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if ((float)strtod(buf, NULL) == (float)v) break;
    }
    // make sure it reads back as a float in JSON consumers that care ("1" -> "1.0")
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    sbuf_puts(b, buf);
}

void sbuf_json_value(sbuf *b, const json *v) {
    switch (v->type) {
    case JSON_NULL: sbuf_puts(b, "null"); break;
    case JSON_BOOL: sbuf_puts(b, v->boolean ? "true" : "false"); break;
    case JSON_NUMBER: sbuf_put(b, v->str, v->len); break;
    case JSON_STRING: sbuf_json_str(b, v->str, v->len); break;
    case JSON_ARRAY:
        sbuf_puts(b, "[");
        for (int i = 0; i < v->n; i++) {
            if (i) sbuf_puts(b, ", ");
            sbuf_json_value(b, &v->items[i]);
        }
        sbuf_puts(b, "]");
        break;
    case JSON_OBJECT:
        sbuf_puts(b, "{");
        for (int i = 0; i < v->n; i++) {
            if (i) sbuf_puts(b, ", ");
            sbuf_json_str(b, v->keys[i], v->key_lens[i]);
            sbuf_puts(b, ": ");
            sbuf_json_value(b, &v->items[i]);
        }
        sbuf_puts(b, "}");
        break;
    }
}

int json_line_append(sbuf *out, const char *line, size_t len, const char *key, const char *raw_value) {
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r' || line[len - 1] == '\n')) len--;
    if (!len || line[len - 1] != '}') return -1;
    // is the object empty? look back past whitespace for '{'
    size_t k = len - 1;
    while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t')) k--;
    int empty = k > 0 && line[k - 1] == '{';
    sbuf_put(out, line, len - 1);
    if (!empty) sbuf_puts(out, ", ");
    sbuf_json_str(out, key, strlen(key));
    sbuf_puts(out, ": ");
    sbuf_puts(out, raw_value);
    sbuf_puts(out, "}");
    return 0;
}
