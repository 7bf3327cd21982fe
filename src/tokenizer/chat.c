// tokenizer/chat: chat templates without Jinja. The families in use (ChatML/Qwen,
// Llama-3, Gemma) are recognized from tokenizer_config.json's chat_template and
// rendered here byte for byte as transformers' Jinja rendering (checked against
// @huggingface/jinja in tests/oracle/test_chat.mjs). Each piece of output is a
// segment tagged with its message and whether it is trained (see tokenizer.h).
#include <stdlib.h>
#include <string.h>
#include "tokenizer/tok_internal.h"

static const struct { const char *name; tok_chat_family f; } NAMES[] = {
    {"chatml", TOK_CHAT_CHATML}, {"qwen2.5", TOK_CHAT_QWEN25}, {"qwen2", TOK_CHAT_QWEN25},
    {"qwen3", TOK_CHAT_QWEN3},   {"llama3", TOK_CHAT_LLAMA3},  {"llama3-base", TOK_CHAT_LLAMA3_BASE},
    {"gemma", TOK_CHAT_GEMMA},
};

int tok_chat_family_from_name(const char *name) {
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcmp(NAMES[i].name, name)) return (int)NAMES[i].f;
    return -1;
}
const char *tok_chat_family_name(tok_chat_family f) {
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].f == f) return NAMES[i].name;
    return "none";
}

tok_chat_family tok_chat_detect(const char *src) {
    if (!src) return TOK_CHAT_NONE;
    if (strstr(src, "<|im_start|>")) {
        if (strstr(src, "tools") && !strstr(src, "last_query_index") && !strstr(src, "You are Qwen"))
            return TOK_CHAT_NONE;  // a tool-calling ChatML we do not know
        if (strstr(src, "<think>") && strstr(src, "last_query_index")) return TOK_CHAT_QWEN3;
        if (strstr(src, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")) return TOK_CHAT_QWEN25;
        if (strstr(src, "<think>")) return TOK_CHAT_NONE;
        return TOK_CHAT_CHATML;
    }
    if (strstr(src, "<|start_header_id|>")) {
        if (strstr(src, "Cutting Knowledge Date") || strstr(src, "ipython")) return TOK_CHAT_NONE;  // Llama-3.1+
        return strstr(src, "add_generation_prompt") ? TOK_CHAT_LLAMA3 : TOK_CHAT_LLAMA3_BASE;
    }
    if (strstr(src, "<start_of_turn>")) return TOK_CHAT_GEMMA;
    return TOK_CHAT_NONE;
}

int tok_chat_for(const tok_tokenizer *t, const char *name, tok_chat *out, tm_error *err) {
    memset(out, 0, sizeof *out);
    out->enable_thinking = 1;
    out->bos_token = t->bos_token ? t->bos_token : "";
    if (name) {
        int f = tok_chat_family_from_name(name);
        if (f < 0) return tm_fail(err, "unknown chat template '%s' (chatml, qwen2.5, qwen3, llama3, llama3-base, gemma)", name);
        out->family = (tok_chat_family)f;
        return 0;
    }
    if (!t->chat_template) return tm_fail(err, "the tokenizer has no chat_template; name one with --chat-template");
    out->family = tok_chat_detect(t->chat_template);
    if (out->family == TOK_CHAT_NONE)
        return tm_fail(err, "chat_template not recognized (known: chatml, qwen2.5, qwen3, llama3, gemma); name one with --chat-template");
    return 0;
}

void tok_chat_render_free(tok_chat_render *r) {
    sbuf_free(&r->text);
    free(r->segs);
    memset(r, 0, sizeof *r);
}

// Appends s as (part of) a segment. A failed allocation marks r (r->failed) and
// later appends do nothing; tok_chat_apply reports it.
static void seg(tok_chat_render *r, int msg, int train, const char *s, size_t n) {
    if (!n || r->failed) return;
    int extend = r->nsegs && r->segs[r->nsegs - 1].msg == msg && r->segs[r->nsegs - 1].train == train;
    if (!extend && r->nsegs == r->cap) {
        int nc = r->cap ? r->cap * 2 : 16;
        tok_chat_seg *ns = realloc(r->segs, (size_t)nc * sizeof *ns);
        if (!ns) { r->failed = 1; return; }
        r->segs = ns;
        r->cap = nc;
    }
    size_t at = r->text.len;
    sbuf_put(&r->text, s, n);
    if (r->text.failed) { r->failed = 1; return; }
    if (extend) r->segs[r->nsegs - 1].len += n;
    else r->segs[r->nsegs++] = (tok_chat_seg){at, n, msg, train};
}
static void segs(tok_chat_render *r, int msg, int train, const char *s) { seg(r, msg, train, s, strlen(s)); }

// Python's str.isspace(), which Jinja's trim filter uses through str.strip().
static int py_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
static void trim(const char **s, size_t *n) {
    const char *p = *s;
    size_t a = 0, b = *n;
    while (a < b) {
        int adv;
        if (!py_space(tok_utf8_decode(p + a, b - a, &adv))) break;
        a += (size_t)adv;
    }
    while (b > a) {
        size_t q = b - 1;
        while (q > a && ((unsigned char)p[q] & 0xC0) == 0x80) q--;
        int adv;
        if (!py_space(tok_utf8_decode(p + q, b - q, &adv))) break;
        b = q;
    }
    *s = p + a;
    *n = b - a;
}
static void lstrip_nl(const char **s, size_t *n) { while (*n && **s == '\n') { (*s)++; (*n)--; } }
static void rstrip_nl(const char **s, size_t *n) { (void)s; while (*n && (*s)[*n - 1] == '\n') (*n)--; }

static const char *memmem_last(const char *h, size_t hn, const char *nd) {
    size_t nn = strlen(nd);
    if (hn < nn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (!memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}
static int role_is(const tok_chat_msg *m, const char *r) { return !strcmp(m->role, r); }

static int render_chatml(const tok_chat *c, const tok_chat_msg *m, int n, int gen, tok_chat_render *r, tm_error *err) {
    int qwen3 = c->family == TOK_CHAT_QWEN3, qwen25 = c->family == TOK_CHAT_QWEN25;
    if (qwen25) {
        if (n > 0 && role_is(&m[0], "system")) {
            segs(r, 0, 0, "<|im_start|>system\n");
            seg(r, 0, 0, m[0].content, m[0].content_len);
            segs(r, 0, 0, "<|im_end|>\n");
        } else
            segs(r, -1, 0, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n");
    } else if (qwen3 && n > 0 && role_is(&m[0], "system")) {
        segs(r, 0, 0, "<|im_start|>system\n");
        seg(r, 0, 0, m[0].content, m[0].content_len);
        segs(r, 0, 0, "<|im_end|>\n");
    }
    int last_query = n - 1;
    if (qwen3)
        for (int i = n - 1; i >= 0; i--)
            if (role_is(&m[i], "user")) {
                const char *s = m[i].content;
                size_t l = m[i].content_len;
                int tr = l >= 15 && !memcmp(s, "<tool_response>", 15) && l >= 16 && !memcmp(s + l - 16, "</tool_response>", 16);
                if (!tr) { last_query = i; break; }
            }
    for (int i = 0; i < n; i++) {
        const tok_chat_msg *msg = &m[i];
        int first_sys = (qwen3 || qwen25) && i == 0 && role_is(msg, "system");
        if (first_sys) continue;
        if (role_is(msg, "assistant")) {
            segs(r, i, 0, "<|im_start|>assistant\n");
            const char *content = msg->content, *rc = "";
            size_t cl = msg->content_len, rl = 0;
            if (qwen3) {
                if (msg->reasoning) { rc = msg->reasoning; rl = msg->reasoning_len; }
                else {
                    const char *end = memmem_last(content, cl, "</think>");
                    const char *firstend = memmem(content, cl, "</think>", 8);
                    if (end) {
                        // reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
                        const char *r0 = content;
                        size_t r0l = (size_t)(firstend - content);
                        rstrip_nl(&r0, &r0l);
                        const char *th = memmem_last(r0, r0l, "<think>");
                        if (th) { r0l -= (size_t)(th + 7 - r0); r0 = th + 7; }
                        lstrip_nl(&r0, &r0l);
                        rc = r0; rl = r0l;
                        size_t off = (size_t)(end + 8 - content);
                        content += off; cl -= off;
                        lstrip_nl(&content, &cl);
                    }
                }
                if (i > last_query && (i == n - 1 || rl > 0)) {
                    segs(r, i, 1, "<think>\n");
                    const char *s = rc;
                    size_t sl = rl;
                    lstrip_nl(&s, &sl);
                    rstrip_nl(&s, &sl);
                    seg(r, i, 1, s, sl);
                    segs(r, i, 1, "\n</think>\n\n");
                    lstrip_nl(&content, &cl);
                }
            }
            seg(r, i, 1, content, cl);
            segs(r, i, 1, "<|im_end|>");
            segs(r, i, 0, "\n");
        } else if (role_is(msg, "tool") && (qwen3 || qwen25)) {
            if (i == 0 || !role_is(&m[i - 1], "tool")) segs(r, i, 0, "<|im_start|>user");
            segs(r, i, 0, "\n<tool_response>\n");
            seg(r, i, 0, msg->content, msg->content_len);
            segs(r, i, 0, "\n</tool_response>");
            if (i == n - 1 || !role_is(&m[i + 1], "tool")) segs(r, i, 0, "<|im_end|>\n");
        } else if (qwen3 && !role_is(msg, "user") && !role_is(msg, "system")) {
            continue;  // the Qwen3 template renders nothing for other roles
        } else {
            segs(r, i, 0, "<|im_start|>");
            segs(r, i, 0, msg->role);
            segs(r, i, 0, "\n");
            seg(r, i, 0, msg->content, msg->content_len);
            segs(r, i, 0, "<|im_end|>\n");
        }
    }
    if (gen) {
        segs(r, -1, 0, "<|im_start|>assistant\n");
        if (qwen3 && !c->enable_thinking) segs(r, -1, 0, "<think>\n\n</think>\n\n");
    }
    (void)err;
    return 0;
}

static int render_llama3(const tok_chat *c, const tok_chat_msg *m, int n, int gen, tok_chat_render *r) {
    for (int i = 0; i < n; i++) {
        int tr = role_is(&m[i], "assistant");
        if (i == 0) segs(r, i, 0, c->bos_token ? c->bos_token : "");
        segs(r, i, 0, "<|start_header_id|>");
        segs(r, i, 0, m[i].role);
        segs(r, i, 0, "<|end_header_id|>\n\n");
        const char *s = m[i].content;
        size_t l = m[i].content_len;
        trim(&s, &l);
        seg(r, i, tr, s, l);
        segs(r, i, tr, "<|eot_id|>");
    }
    if (gen || c->family == TOK_CHAT_LLAMA3_BASE) segs(r, -1, 0, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return 0;
}

static int render_gemma(const tok_chat *c, const tok_chat_msg *m, int n, int gen, tok_chat_render *r, tm_error *err) {
    segs(r, -1, 0, c->bos_token ? c->bos_token : "");
    int start = n > 0 && role_is(&m[0], "system") ? 1 : 0;
    for (int i = start; i < n; i++) {
        int k = i - start;
        if (role_is(&m[i], "user") != (k % 2 == 0))
            return tm_fail(err, "Conversation roles must alternate user/assistant/user/assistant/... (message %d is '%s')", i, m[i].role);
        int model = role_is(&m[i], "assistant");
        segs(r, i, 0, "<start_of_turn>");
        segs(r, i, 0, model ? "model" : m[i].role);
        segs(r, i, 0, "\n");
        if (k == 0 && start) {
            seg(r, 0, 0, m[0].content, m[0].content_len);
            segs(r, 0, 0, "\n\n");
        }
        const char *s = m[i].content;
        size_t l = m[i].content_len;
        trim(&s, &l);
        seg(r, i, model, s, l);
        segs(r, i, model, "<end_of_turn>");
        segs(r, i, 0, "\n");
    }
    if (gen) segs(r, -1, 0, "<start_of_turn>model\n");
    return 0;
}

int tok_chat_apply(const tok_chat *c, const tok_chat_msg *m, int n, int gen, tok_chat_render *r, tm_error *err) {
    for (int i = 0; i < n; i++)
        if (!m[i].role || !m[i].content) return tm_fail(err, "message %d: role and content are required", i);
    if (!r->text.data) sbuf_put(&r->text, "", 0);
    if (r->text.failed) r->failed = 1;
    int rc;
    switch (c->family) {
    case TOK_CHAT_CHATML: case TOK_CHAT_QWEN25: case TOK_CHAT_QWEN3:
        rc = render_chatml(c, m, n, gen, r, err);
        break;
    case TOK_CHAT_LLAMA3: case TOK_CHAT_LLAMA3_BASE:
        rc = render_llama3(c, m, n, gen, r);
        break;
    case TOK_CHAT_GEMMA:
        rc = render_gemma(c, m, n, gen, r, err);
        break;
    default:
        return tm_fail(err, "no chat template");
    }
    if (!rc && r->failed) rc = tm_fail(err, "out of memory rendering a conversation of %d messages", n);
    return rc;
}
