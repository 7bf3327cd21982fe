// tokenizer/chat: chat templates. Any chat_template is rendered by the Jinja
// interpreter (tokenizer/jinja.h) with the variables apply_chat_template passes.
// The families in use (ChatML/Qwen, Llama-3, Gemma) are also recognized from the
// template string and rendered here by hand, byte for byte as the Jinja rendering
// (checked against @huggingface/jinja in tests/oracle/test_chat.mjs) and faster; they
// know exactly which bytes belong to which message. Each piece of output is a
// segment tagged with its message and whether it is trained (see tokenizer.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer/jinja.h"
#include "tokenizer/tok_internal.h"

static const struct { const char *name; tok_chat_family f; } NAMES[] = {
    {"chatml", TOK_CHAT_CHATML}, {"qwen2.5", TOK_CHAT_QWEN25}, {"qwen2", TOK_CHAT_QWEN25},
    {"qwen3", TOK_CHAT_QWEN3},   {"llama3", TOK_CHAT_LLAMA3},  {"llama3-base", TOK_CHAT_LLAMA3_BASE},
    {"gemma", TOK_CHAT_GEMMA},   {"jinja", TOK_CHAT_JINJA},
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
    out->tok = t;
    if (name) {
        int f = tok_chat_family_from_name(name);
        if (f < 0) return tm_fail(err, "unknown chat template '%s' (chatml, qwen2.5, qwen3, llama3, llama3-base, gemma, jinja)", name);
        out->family = (tok_chat_family)f;
    } else {
        if (!t->chat_template) return tm_fail(err, "the tokenizer has no chat_template; name one with --chat-template");
        out->family = tok_chat_detect(t->chat_template);
        if (out->family == TOK_CHAT_NONE) out->family = TOK_CHAT_JINJA;
    }
    if (t->chat_kwargs) {
        out->kwargs = json_root(t->chat_kwargs);
        const json *et = json_get(out->kwargs, "enable_thinking");
        if (et && et->type == JSON_BOOL) out->enable_thinking = et->boolean;
    }
    if (out->family == TOK_CHAT_JINJA && !t->chat_jinja)
        return tm_fail(err, "%s", t->chat_jinja_err[0] ? t->chat_jinja_err : "the tokenizer has no chat_template to interpret");
    return 0;
}

int tok_set_chat_kwargs(tok_tokenizer *t, const char *text, tm_error *err) {
    json_doc_free(t->chat_kwargs);
    t->chat_kwargs = NULL;
    if (!text) return 0;
    json_doc *d = json_parse(text, strlen(text), err);
    if (!d) return tm_fail_prefix(err, "--chat-template-kwargs");
    if (json_root(d)->type != JSON_OBJECT) { json_doc_free(d); return tm_fail(err, "--chat-template-kwargs: expected a JSON object"); }
    t->chat_kwargs = d;
    return 0;
}

// ---- the interpreter path ----

// 1 when the conversation must go through the interpreter: the family is
// TOK_CHAT_JINJA, or the kwargs hold something the hand-written families ignore.
static int use_jinja(const tok_chat *c) {
    if (c->family == TOK_CHAT_JINJA) return 1;
    if (!c->kwargs || !c->tok || !c->tok->chat_jinja) return 0;
    for (int i = 0; i < c->kwargs->n; i++)
        if (strcmp(c->kwargs->keys[i], "enable_thinking")) return 1;
    return 0;
}

// apply_chat_template's variables: messages, add_generation_prompt, the special
// tokens, then the kwargs (which may override them). messages_json is a JSON array.
static int render_vars(const tok_chat *c, const char *messages_json, size_t mlen, int gen, sbuf *out, tm_error *err) {
    const tok_tokenizer *t = c->tok;
    sbuf v;
    sbuf_init(&v);
    sbuf_puts(&v, "{\"messages\": ");
    sbuf_put(&v, messages_json, mlen);
    sbuf_printf(&v, ", \"add_generation_prompt\": %s", gen ? "true" : "false");
    const char *names[] = {"bos_token", "eos_token", "pad_token"};
    const char *vals[] = {t->bos_token, t->eos_token, t->pad_token};
    for (int i = 0; i < 3; i++)
        if (vals[i]) { sbuf_printf(&v, ", \"%s\": ", names[i]); sbuf_json_str(&v, vals[i], strlen(vals[i])); }
    if (!c->enable_thinking) sbuf_puts(&v, ", \"enable_thinking\": false");
    for (int i = 0; c->kwargs && i < c->kwargs->n; i++) {
        sbuf_puts(&v, ", ");
        sbuf_json_str(&v, c->kwargs->keys[i], c->kwargs->key_lens[i]);
        sbuf_puts(&v, ": ");
        sbuf_json_value(&v, &c->kwargs->items[i]);
    }
    sbuf_puts(&v, "}");
    if (sbuf_check(&v, err)) { sbuf_free(&v); return -1; }
    // json_get returns the first of duplicate keys; the renderer sets them in order, so later ones win
    json_doc *d = json_parse(v.data, v.len, err);
    sbuf_free(&v);
    if (!d) return -1;
    int rc = jinja_render(t->chat_jinja, json_root(d), c->now, out, err);
    json_doc_free(d);
    return rc;
}

static void msgs_json(sbuf *b, const tok_chat_msg *m, int n) {
    sbuf_puts(b, "[");
    for (int i = 0; i < n; i++) {
        sbuf_puts(b, i ? ", {\"role\": " : "{\"role\": ");
        sbuf_json_str(b, m[i].role, strlen(m[i].role));
        sbuf_puts(b, ", \"content\": ");
        sbuf_json_str(b, m[i].content, m[i].content_len);
        if (m[i].reasoning) {
            sbuf_puts(b, ", \"reasoning_content\": ");
            sbuf_json_str(b, m[i].reasoning, m[i].reasoning_len);
        }
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "]");
}

static int render_msgs(const tok_chat *c, const tok_chat_msg *m, int n, int gen, sbuf *out, tm_error *err) {
    sbuf j;
    sbuf_init(&j);
    msgs_json(&j, m, n);
    int rc = sbuf_check(&j, err) ? -1 : render_vars(c, j.data, j.len, gen, out, err);
    sbuf_free(&j);
    return rc;
}

static size_t common_prefix(const sbuf *a, const sbuf *b) {
    size_t n = a->len < b->len ? a->len : b->len, i = 0;
    while (i < n && a->data[i] == b->data[i]) i++;
    return i;
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

static void seg(tok_chat_render *r, int msg, int train, const char *s, size_t n);

// An interpreted template says nothing of which bytes belong to which message, so
// they are found by rendering prefixes of the conversation: message i spans from the
// end of what messages 0..i-1 render (as far as that agrees with the full rendering)
// to the end of what 0..i render. An assistant turn is trained from where the
// generation prompt of 0..i-1 ends up to its end, less the newlines after its
// end-of-turn token (as the hand-written families). A template that rewrites earlier
// turns when later ones come (Qwen3 drops old reasoning) gives the changed bytes to
// the later message, untrained. Costs 2n+1 renders.
// How far the rendering of m[0..k) agrees with the full one (at least prev). A
// refused prefix gives prev; out of memory sets *rc.
static size_t prefix_end(const tok_chat *c, const tok_chat_msg *m, int k, int gen, const sbuf *full, sbuf *part,
                         size_t prev, int *rc, tm_error *err) {
    tm_error e = {0};
    sbuf_clear(part);
    if (render_msgs(c, m, k, gen, part, &e) || part->failed) {
        if (part->failed || strstr(e.msg, "out of memory")) *rc = tm_fail(err, "out of memory rendering a conversation");
        return prev;
    }
    size_t p = common_prefix(part, full);
    return p < prev ? prev : p;
}

static int render_jinja_segs(const tok_chat *c, const tok_chat_msg *m, int n, int gen, tok_chat_render *r, tm_error *err) {
    sbuf full, part;
    sbuf_init(&full);
    sbuf_init(&part);
    int rc = render_msgs(c, m, n, gen, &full, err);
    if (!rc && !full.len) { sbuf_free(&full); return 0; }  // nothing rendered: no segments
    size_t prev = 0;
    // A prefix the template refuses (raise_exception on a conversation it finds
    // incomplete) tells nothing: its bytes go to the next message.
    for (int i = 0; !rc && i < n; i++) {
        size_t end = prefix_end(c, m, i + 1, 0, &full, &part, prev, &rc, err);
        size_t train_from = end;
        if (!strcmp(m[i].role, "assistant")) {
            size_t p = prefix_end(c, m, i, 1, &full, &part, prev, &rc, err);
            train_from = p > end ? end : p;
        }
        size_t train_to = end;
        while (train_to > train_from && full.data[train_to - 1] == '\n') train_to--;
        seg(r, i, 0, full.data + prev, train_from - prev);
        seg(r, i, 1, full.data + train_from, train_to - train_from);
        seg(r, i, 0, full.data + train_to, end - train_to);
        prev = end;
    }
    if (!rc) seg(r, -1, 0, full.data + prev, full.len - prev);
    sbuf_free(&full);
    sbuf_free(&part);
    return rc;
}

int tok_chat_render_json(const tok_chat *c, const json *messages, int gen, sbuf *out, tm_error *err) {
    if (!messages || messages->type != JSON_ARRAY) return tm_fail(err, "expected a JSON array of messages");
    // fields the hand-written families do not know (tool_calls, ...) need the interpreter
    int extra = 0;
    for (int i = 0; i < messages->n && !extra; i++)
        for (int k = 0; messages->items[i].type == JSON_OBJECT && k < messages->items[i].n; k++)
            if (strcmp(messages->items[i].keys[k], "role") && strcmp(messages->items[i].keys[k], "content") &&
                strcmp(messages->items[i].keys[k], "reasoning_content"))
                extra = 1;
    for (int i = 0; i < messages->n; i++)
        if (json_get(&messages->items[i], "content") && json_get(&messages->items[i], "content")->type != JSON_STRING) extra = 1;
    if (c->tok && c->tok->chat_jinja && (use_jinja(c) || (extra && tok_chat_detect(c->tok->chat_template) == c->family))) {
        sbuf j;
        sbuf_init(&j);
        sbuf_json_value(&j, messages);
        int rc = sbuf_check(&j, err) ? -1 : render_vars(c, j.data, j.len, gen, out, err);
        sbuf_free(&j);
        return rc;
    }
    // a named family the tokenizer's template is not: role, content, reasoning_content
    tok_chat_msg *m = calloc((size_t)messages->n + 1, sizeof *m);
    if (!m) return tm_fail(err, "out of memory");
    for (int i = 0; i < messages->n; i++) {
        const json *ct = json_get(&messages->items[i], "content"), *rs = json_get(&messages->items[i], "reasoning_content");
        m[i].role = json_get_str(&messages->items[i], "role", NULL);
        if (!m[i].role || !ct || ct->type != JSON_STRING) { free(m); return tm_fail(err, "message %d: each message needs a string role and content", i); }
        m[i].content = ct->str;
        m[i].content_len = ct->len;
        if (rs && rs->type == JSON_STRING) { m[i].reasoning = rs->str; m[i].reasoning_len = rs->len; }
    }
    tok_chat_render r = {0};
    int rc = tok_chat_apply(c, m, messages->n, gen, &r, err);
    if (!rc) sbuf_put(out, r.text.data, r.text.len);
    tok_chat_render_free(&r);
    free(m);
    return rc;
}

int tok_chat_apply(const tok_chat *c, const tok_chat_msg *m, int n, int gen, tok_chat_render *r, tm_error *err) {
    for (int i = 0; i < n; i++)
        if (!m[i].role || !m[i].content) return tm_fail(err, "message %d: role and content are required", i);
    if (!r->text.data) sbuf_put(&r->text, "", 0);
    if (r->text.failed) r->failed = 1;
    int rc;
    if (use_jinja(c)) {
        if (!c->tok || !c->tok->chat_jinja) return tm_fail(err, "no chat template to interpret");
        rc = render_jinja_segs(c, m, n, gen, r, err);
        if (!rc && r->failed) rc = tm_fail(err, "out of memory rendering a conversation of %d messages", n);
        return rc;
    }
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
