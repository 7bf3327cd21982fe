// data: JSONL rows → token ids + loss masks (see data.h for the formats, the mask
// rules and the prompt/completion boundary rule).
#include "data/data.h"
#include "base/rng.h"
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include "base/io.h"
#include "task/problems.h"
#include "data/data_image.h"

static const char *FORMAT_NAMES[] = {"sft", "dpo", "kto", "step", "trajectory", "prompts"};

int data_format_from_name(const char *name) {
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, FORMAT_NAMES[i])) return i;
    return -1;
}
const char *data_format_name(data_format f) { return (unsigned)f < 6 ? FORMAT_NAMES[f] : "?"; }

void data_opts_default(data_opts *o) {
    memset(o, 0, sizeof *o);
    o->append_eos = 1;
    o->mix_seed = 42;
    o->wrap_plain = 1;  // the prompt rule (task/prompt.h): a chat template in use renders string rows too
    o->on_bad_line = DATA_BAD_ERROR;
}

void data_example_free(data_example *ex) {
    for (int k = 0; k < 2; k++) { free(ex->seq[k].ids); free(ex->seq[k].mask); }
    free(ex->answer);
    free(ex->grid_thw);
    if (ex->image_paths)
        for (int k = 0; k < ex->n_images; k++) free(ex->image_paths[k]);
    free(ex->image_paths);
    memset(ex, 0, sizeof *ex);
}

// ---- pieces of text after the prompt ----
typedef struct piece { const char *s; size_t n; int train; } piece;
typedef struct plist { piece *p; int n, cap; } plist;
static void padd(plist *l, const char *s, size_t n, int train) {
    if (!n) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->p = realloc(l->p, (size_t)l->cap * sizeof *l->p);
    }
    l->p[l->n++] = (piece){s, n, train};
}

// Prompt ids + pieces (each run of equal mask encoded as one piece) [+ EOS].
static int build_seq(tok_tokenizer *t, const char *prompt, size_t plen, const tok_ids *prompt_ids, const plist *l,
                     int eos, const data_opts *o, data_seq *out, int *bdiff, tm_error *err) {
    tok_ids ids = {0};
    tok_ids_append(&ids, prompt_ids->v, prompt_ids->n);
    uint8_t *mask = NULL;
    size_t mcap = 0;
    sbuf run;
    sbuf_init(&run);
    int rc = 0;
#define GROW_MASK() do { if (ids.n > mcap) { mcap = ids.cap; mask = realloc(mask, mcap); } } while (0)
    GROW_MASK();
    if (ids.n) memset(mask, 0, ids.n);
    for (int i = 0; i < l->n && !rc; ) {
        int train = l->p[i].train;
        sbuf_clear(&run);
        for (; i < l->n && l->p[i].train == train; i++) sbuf_put(&run, l->p[i].s, l->p[i].n);
        size_t before = ids.n;
        rc = tok_encode(t, run.data ? run.data : "", run.len, 0, &ids, err);
        GROW_MASK();
        memset(mask + before, train, ids.n - before);
    }
    if (!rc && eos) {
        if (tok_eos_id(t) < 0) rc = tm_fail(err, "an EOS token is needed after the completion, but the tokenizer has no eos_token");
        else { tok_ids_push(&ids, tok_eos_id(t)); GROW_MASK(); mask[ids.n - 1] = 1; }
    }
#undef GROW_MASK
    if (!rc && o->check_boundary) {
        sbuf all;
        sbuf_init(&all);
        sbuf_put(&all, prompt, plen);
        for (int i = 0; i < l->n; i++) sbuf_put(&all, l->p[i].s, l->p[i].n);
        tok_ids whole = {0};
        rc = tok_encode(t, all.data ? all.data : "", all.len, 0, &whole, err);
        size_t n = ids.n - (eos ? 1 : 0);
        if (!rc && (whole.n != n || memcmp(whole.v, ids.v, n * sizeof *ids.v))) (*bdiff)++;
        tok_ids_free(&whole);
        sbuf_free(&all);
    }
    sbuf_free(&run);
    if (rc) { tok_ids_free(&ids); free(mask); return -1; }
    out->ids = ids.v;
    out->mask = mask;
    out->len = (int)ids.n;
    return 0;
}

// TRL's language-modelling rows, {"text": ...}: the text encoded as the tokenizer encodes a
// document (its post-processor's special tokens, e.g. Llama's <bos>), EOS appended unless the
// text already ends with it (as TRL's SFTTrainer does), and every token trained but the first,
// which nothing predicts: prompt_len is 1.
static int build_text(tok_tokenizer *t, const json *text, const data_opts *o, data_example *ex, tm_error *err) {
    if (text->type != JSON_STRING) return tm_fail(err, "\"text\" must be a string");
    tok_ids ids = {0};
    if (tok_encode(t, text->str, text->len, 1, &ids, err)) { tok_ids_free(&ids); return -1; }
    if (o->append_eos) {
        if (tok_eos_id(t) < 0) { tok_ids_free(&ids); return tm_fail(err, "an EOS token is needed after the text, but the tokenizer has no eos_token"); }
        if (!ids.n || ids.v[ids.n - 1] != tok_eos_id(t)) tok_ids_push(&ids, tok_eos_id(t));
    }
    if (ids.failed) { tok_ids_free(&ids); return tm_fail(err, "out of memory"); }
    if (ids.n < 2) { tok_ids_free(&ids); return tm_fail(err, "\"text\" gives %zu token(s): nothing to train on", ids.n); }
    uint8_t *mask = malloc(ids.n);
    if (!mask) { tok_ids_free(&ids); return tm_fail(err, "out of memory"); }
    memset(mask, 1, ids.n);
    mask[0] = 0;
    ex->nseq = 1;
    ex->prompt_len = 1;
    ex->seq[0] = (data_seq){ids.v, mask, (int)ids.n};
    return 0;
}

// ---- JSON → messages (task/prompt.h) ----
static int get_messages(const json *v, const char *field, tok_chat_msg **out, int *n, tm_error *err) {
    return task_messages(v, field, out, n, err);
}

static int msg_equal(const tok_chat_msg *a, const tok_chat_msg *b) {
    return !strcmp(a->role, b->role) && a->content_len == b->content_len && !memcmp(a->content, b->content, a->content_len);
}

// A conversation msgs[0..n) whose first k messages are the prompt: prompt text =
// render(msgs[0..k), generation prompt); pieces = the rest of render(msgs[0..n)).
typedef struct conv { tok_chat_render p, f; } conv;
static void conv_free(conv *c) { tok_chat_render_free(&c->p); tok_chat_render_free(&c->f); }

static int conv_pieces(const data_opts *o, const tok_chat_msg *m, int n, int k, conv *c, plist *l, tm_error *err) {
    if (!o->chat) return tm_fail(err, "message lists need a chat template (the tokenizer has none; pass --chat-template)");
    int has_asst = 0;
    for (int i = k; i < n; i++) has_asst |= !strcmp(m[i].role, "assistant");
    if (!has_asst) return tm_fail(err, "the completion has no assistant message");
    if (tok_chat_apply(o->chat, m, k, 1, &c->p, err)) return -1;
    if (tok_chat_apply(o->chat, m, n, 0, &c->f, err)) return -1;
    size_t pl = c->p.text.len;
    if (c->f.text.len < pl || memcmp(c->f.text.data, c->p.text.data, pl))
        return tm_fail(err, "the chat template does not render the prompt (with its generation prompt) as a prefix of the whole conversation");
    for (int s = 0; s < c->f.nsegs; s++) {
        const tok_chat_seg *g = &c->f.segs[s];
        size_t a = g->off, b = g->off + g->len;
        if (b <= pl) continue;
        if (a < pl) a = pl;
        padd(l, c->f.text.data + a, b - a, g->train);
    }
    return 0;
}

static const json *field(const json *row, const char *name, tm_error *err) {
    const json *v = json_get(row, name);
    if (!v) tm_fail(err, "missing field \"%s\"", name);
    return v;
}

static int finish(const data_opts *o, data_example *ex) {
    for (int k = 0; k < ex->nseq; k++)
        if (o->max_length > 0 && ex->seq[k].len > o->max_length) {
            ex->seq[k].len = o->max_length;
            ex->truncated = 1;
        }
    if (ex->prompt_len > ex->seq[0].len) ex->prompt_len = ex->seq[0].len;
    return 0;
}

// Prompt/completion pairs in any of TRL's shapes, for the completions comp[0..nc).
static int build_pc(tok_tokenizer *t, const data_opts *o, const json *prompt, const json *const *comp, int nc,
                    int implicit, data_example *ex, tm_error *err) {
    int rc = 0;
    ex->nseq = nc;
    int conversational = (prompt && prompt->type == JSON_ARRAY) || (comp[0]->type == JSON_ARRAY);
    if (!conversational && o->wrap_plain && o->chat) conversational = 2;  // strings wrapped into messages
    if (!conversational) {
        if (!prompt || prompt->type != JSON_STRING) return tm_fail(err, "\"prompt\" must be a string");
        tok_ids pids = {0};
        if (tok_encode(t, prompt->str, prompt->len, 0, &pids, err)) return -1;
        ex->prompt_len = (int)pids.n;
        for (int k = 0; k < nc && !rc; k++) {
            if (comp[k]->type != JSON_STRING) { rc = tm_fail(err, "completion %d must be a string like the prompt", k); break; }
            plist l = {0};
            padd(&l, comp[k]->str, comp[k]->len, 1);
            rc = build_seq(t, prompt->str, prompt->len, &pids, &l, o->append_eos, o, &ex->seq[k], &ex->boundary_diff, err);
            free(l.p);
        }
        tok_ids_free(&pids);
        return rc;
    }
    // conversational
    tok_chat_msg *pm = NULL, *cm[2] = {NULL, NULL};
    int np = 0, ncm[2] = {0, 0};
    tok_chat_msg wrapped_p, wrapped_c[2];
    if (prompt && prompt->type == JSON_STRING) {
        wrapped_p = (tok_chat_msg){"user", prompt->str, prompt->len, NULL, 0};
        pm = &wrapped_p;
        np = 1;
    } else if (prompt && get_messages(prompt, "prompt", &pm, &np, err)) return -1;
    for (int k = 0; k < nc && !rc; k++) {
        if (comp[k]->type == JSON_STRING) {
            wrapped_c[k] = (tok_chat_msg){"assistant", comp[k]->str, comp[k]->len, NULL, 0};
            cm[k] = &wrapped_c[k];
            ncm[k] = 1;
        } else
            rc = get_messages(comp[k], k ? "rejected" : (nc == 2 ? "chosen" : "completion"), &cm[k], &ncm[k], err);
    }
    int own_p = prompt && prompt->type == JSON_ARRAY;
    if (!rc && implicit) {
        // TRL's implicit prompt: the common leading messages, ending before an assistant turn
        int c = 0;
        while (c < ncm[0] && c < ncm[1] && msg_equal(&cm[0][c], &cm[1][c])) c++;
        while (c > 0 && !strcmp(cm[0][c - 1].role, "assistant")) c--;
        if (c == 0) rc = tm_fail(err, "chosen and rejected share no leading prompt messages");
        np = c;
    }
    tok_ids pids = {0};
    for (int k = 0; k < nc && !rc; k++) {
        int n = implicit ? ncm[k] : np + ncm[k];
        tok_chat_msg *all = malloc((size_t)(n + 1) * sizeof *all);
        if (implicit) memcpy(all, cm[k], (size_t)n * sizeof *all);
        else {
            if (np) memcpy(all, pm, (size_t)np * sizeof *all);
            memcpy(all + np, cm[k], (size_t)ncm[k] * sizeof *all);
        }
        conv c = {0};
        plist l = {0};
        rc = conv_pieces(o, all, n, np, &c, &l, err);
        if (!rc && k == 0) {
            rc = tok_encode(t, c.p.text.data, c.p.text.len, 0, &pids, err);
            ex->prompt_len = (int)pids.n;
        }
        if (!rc) rc = build_seq(t, c.p.text.data, c.p.text.len, &pids, &l, 0, o, &ex->seq[k], &ex->boundary_diff, err);
        free(l.p);
        conv_free(&c);
        free(all);
    }
    tok_ids_free(&pids);
    if (own_p) free(pm);
    for (int k = 0; k < nc; k++)
        if (cm[k] && cm[k] != &wrapped_c[k]) free(cm[k]);
    return rc;
}

// The question of a step row rendered as the model sees it (the prompt rule).
static int question_prompt(const data_opts *o, const char *q, size_t qn, sbuf *out, tm_error *err) {
    return task_prompt_render(o->chat, q, qn, out, err);
}

static int get_label(const json *v, int *label, tm_error *err) {
    if (v->type == JSON_BOOL) *label = v->boolean;
    else if (json_is_int(v) && (v->num == 0 || v->num == 1)) *label = (int)v->num;
    else return tm_fail(err, "\"label\" must be true or false");
    return 0;
}

// Reads a JSON array of token ids into a new array; its length, or -1 with err filled.
static int ids_field(const json *row, const char *key, int32_t **out, tm_error *err) {
    const json *v = json_get(row, key);
    if (!v || v->type != JSON_ARRAY) return tm_fail(err, "missing array field \"%s\"", key);
    *out = malloc(sizeof(int32_t) * (size_t)(v->n + 1));
    if (!*out) return tm_fail(err, "out of memory");
    for (int i = 0; i < v->n; i++) {
        if (!json_is_int(&v->items[i]) || v->items[i].num < 0 || v->items[i].num > 2147483647.0) {
            free(*out);
            return tm_fail(err, "\"%s\"[%d] is not a token id", key, i);
        }
        (*out)[i] = (int32_t)v->items[i].num;
    }
    return v->n;
}

// An optional "<side>_mask" beside "<side>_input_ids" (completion, chosen, rejected):
// 0/1 per completion token, 0 for tokens not to train (tool observations, as `temper
// sample` and `temper online-dpo` write them). Without it every token is trained.
static int ids_mask(const json *row, const char *ids_key, int n, uint8_t *mask, tm_error *err) {
    char key[64];
    snprintf(key, sizeof key, "%.*s_mask", (int)(strlen(ids_key) - strlen("_input_ids")), ids_key);
    const json *v = json_get(row, key);
    if (!v) return 0;
    if (v->type != JSON_ARRAY || v->n != n) return tm_fail(err, "\"%s\" must be an array of %d 0/1 values (one per \"%s\" token)", key, n, ids_key);
    for (int i = 0; i < n; i++) {
        if (!json_is_int(&v->items[i]) || (v->items[i].num != 0 && v->items[i].num != 1))
            return tm_fail(err, "\"%s\"[%d] must be 0 or 1", key, i);
        mask[i] = v->items[i].num == 1;
    }
    return 0;
}

// Pre-tokenized rows with TRL's column names (prompt_input_ids + completion_input_ids,
// or chosen_input_ids / rejected_input_ids) are taken as they are: no tokenizer, no EOS
// added, the completion (or chosen/rejected) ids trained.
static int from_ids(const json *row, const data_opts *o, data_example *ex, tm_error *err) {
    int32_t *p;
    int np = ids_field(row, "prompt_input_ids", &p, err);
    if (np < 0) return -1;
    const char *keys[2] = {"completion_input_ids", NULL};
    if (o->format == DATA_DPO || o->format == DATA_STEP) keys[0] = "chosen_input_ids", keys[1] = "rejected_input_ids";
    ex->prompt_len = np;
    ex->nseq = keys[1] ? 2 : 1;
    int rc = 0;
    for (int k = 0; k < ex->nseq && !rc; k++) {
        int32_t *c;
        int nc = ids_field(row, keys[k], &c, err);
        if (nc < 0) { rc = -1; break; }
        if (nc == 0) { free(c); rc = tm_fail(err, "\"%s\" is empty", keys[k]); break; }
        data_seq *q = &ex->seq[k];
        q->len = np + nc;
        q->ids = malloc(sizeof(int32_t) * (size_t)q->len);
        q->mask = calloc((size_t)q->len, 1);
        if (!q->ids || !q->mask) { free(c); rc = tm_fail(err, "out of memory"); break; }
        memcpy(q->ids, p, sizeof(int32_t) * (size_t)np);
        memcpy(q->ids + np, c, sizeof(int32_t) * (size_t)nc);
        memset(q->mask + np, 1, (size_t)nc);
        free(c);
        if ((rc = ids_mask(row, keys[k], nc, q->mask + np, err))) break;
    }
    free(p);
    return rc;
}

static int example_from_json(tok_tokenizer *t, const json *row, const data_opts *o, const json *vprompt, data_example *ex,
                             tm_error *err) {
    ex->label = -1;
    if (!row || row->type != JSON_OBJECT) return tm_fail(err, "a line must be a JSON object");
    int rc = 0;
    if (json_get(row, "prompt_input_ids") && o->format != DATA_PROMPTS && o->format != DATA_TRAJECTORY) {
        const json *lab = json_get(row, "label");
        if (o->format == DATA_KTO && !lab) return tm_fail(err, "missing field \"label\"");
        if (lab && o->format == DATA_KTO && get_label(lab, &ex->label, err)) return -1;
        if (from_ids(row, o, ex, err)) { data_example_free(ex); return -1; }
        return finish(o, ex);
    }
    if (!t) return tm_fail(err, "text data needs a tokenizer (tokenizer.json in the model directory), or pre-tokenized *_input_ids fields");
    switch (o->format) {
    case DATA_SFT: case DATA_TRAJECTORY: case DATA_KTO: {
        const json *msgs = json_get(row, "messages"), *lab = json_get(row, "label");
        if (o->format == DATA_KTO && !lab) return tm_fail(err, "missing field \"label\"");
        if (lab && (o->format != DATA_SFT) && get_label(lab, &ex->label, err)) return -1;
        if (msgs && !json_get(row, "completion")) {
            tok_chat_msg *m;
            int n;
            if (get_messages(msgs, "messages", &m, &n, err)) return -1;
            int k = 0;
            while (k < n && strcmp(m[k].role, "assistant")) k++;
            if (k == n) { free(m); return tm_fail(err, "messages: no assistant message to train on"); }
            conv c = {0};
            plist l = {0};
            tok_ids pids = {0};
            ex->nseq = 1;
            rc = conv_pieces(o, m, n, k, &c, &l, err);
            if (!rc) rc = tok_encode(t, c.p.text.data, c.p.text.len, 0, &pids, err);
            ex->prompt_len = (int)pids.n;
            if (!rc) rc = build_seq(t, c.p.text.data, c.p.text.len, &pids, &l, 0, o, &ex->seq[0], &ex->boundary_diff, err);
            tok_ids_free(&pids);
            free(l.p);
            conv_free(&c);
            free(m);
            break;
        }
        if (o->format == DATA_TRAJECTORY) return tm_fail(err, "missing field \"messages\"");
        const json *text = json_get(row, "text");
        if (o->format == DATA_SFT && text && !json_get(row, "prompt") && !json_get(row, "completion")) {
            rc = build_text(t, text, o, ex, err);
            break;
        }
        const json *p = field(row, "prompt", err), *c = p ? field(row, "completion", err) : NULL;
        if (!c) return -1;
        rc = build_pc(t, o, vprompt ? vprompt : p, &c, 1, 0, ex, err);
        break;
    }
    case DATA_DPO: {
        const json *p = json_get(row, "prompt"), *c[2];
        if (!(c[0] = field(row, "chosen", err)) || !(c[1] = field(row, "rejected", err))) return -1;
        rc = build_pc(t, o, vprompt ? vprompt : p, c, 2, p == NULL, ex, err);
        break;
    }
    case DATA_STEP: {
        const json *p = field(row, "prompt", err), *s = p ? field(row, "initial_reason_steps", err) : NULL;
        const json *c[2] = {s ? field(row, "chosen", err) : NULL, NULL};
        if (c[0]) c[1] = field(row, "rejected", err);
        if (!c[1]) return -1;
        if (p->type != JSON_STRING || s->type != JSON_STRING || c[0]->type != JSON_STRING || c[1]->type != JSON_STRING)
            return tm_fail(err, "prompt, initial_reason_steps, chosen and rejected must be strings");
        sbuf pt;
        sbuf_init(&pt);
        rc = question_prompt(o, p->str, p->len, &pt, err);
        sbuf_put(&pt, s->str, s->len);  // the correct steps so far continue the prompt
        tok_ids pids = {0};
        if (!rc) rc = tok_encode(t, pt.data, pt.len, 0, &pids, err);
        ex->prompt_len = (int)pids.n;
        ex->nseq = 2;
        for (int k = 0; k < 2 && !rc; k++) {
            plist l = {0};
            padd(&l, c[k]->str, c[k]->len, 1);
            rc = build_seq(t, pt.data, pt.len, &pids, &l, 0, o, &ex->seq[k], &ex->boundary_diff, err);  // a step is not an end: no EOS
            free(l.p);
        }
        tok_ids_free(&pids);
        sbuf_free(&pt);
        break;
    }
    case DATA_PROMPTS: {
        // the one problem loader (task/problems.h): the same prompt and gold as sample/eval
        int st = o->prompt_style ? task_style_from_name(o->prompt_style) : TASK_STYLE_PLAIN;
        if (st < 0) return tm_fail(err, "unknown prompt style '%s' (boxed, plain, tora, gsm8k-fewshot, minerva)", o->prompt_style);
        task_prompt_opts po = {(task_style)st, o->prompt_suffix, o->chat, 0};
        task_problem pr;
        if (task_problem_from_json(t, row, &po, &pr, err)) return -1;
        ex->answer = pr.answer;
        pr.answer = NULL;
        ex->nseq = 1;
        ex->prompt_len = ex->seq[0].len = pr.len;
        ex->seq[0].ids = pr.ids;
        pr.ids = NULL;
        ex->seq[0].mask = calloc((size_t)pr.len + 1, 1);
        task_problem_free(&pr);
        if (!ex->seq[0].mask) rc = tm_fail(err, "out of memory");
        break;
    }
    default:
        return tm_fail(err, "unknown format");
    }
    if (rc) { data_example_free(ex); return -1; }
    return finish(o, ex);
}

json_doc *data_parse_line(const char *line, size_t len, tm_error *err) {
    tm_error e;
    json_doc *d = json_parse(line, len, &e);
    size_t a = 0;
    while (a < len && (line[a] == ' ' || line[a] == '\t')) a++;
    if (d && json_root(d)->type == JSON_OBJECT) return d;
    if (d) {
        const char *what = json_root(d)->type == JSON_ARRAY ? "a JSON array" : "a JSON value that is not an object";
        json_doc_free(d);
        tm_fail(err, "expected one JSON object per line (JSONL), found %s", what);
        return NULL;
    }
    // within one line, "line 1, " says nothing: the caller names the file's line
    const char *msg = !strncmp(e.msg, "line 1, ", 8) ? e.msg + 8 : e.msg;
    // a lone "{" or "[", or a line opening an array, is what pretty-printed JSON looks like
    size_t b = len;
    while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t' || line[b - 1] == '\r')) b--;
    if (a < len && (line[a] == '[' || (b - a == 1 && (line[a] == '{' || line[a] == ']' || line[a] == '}'))))
        tm_fail(err, "expected one JSON object per line (JSONL); this line is not a whole object (a pretty-printed JSON file? "
                     "jq -c converts one): %s",
                msg);
    else
        tm_fail(err, "invalid JSON: %s", msg);
    return NULL;
}

int data_example_from_json(tok_tokenizer *t, const json *row, const data_opts *o, data_example *ex, tm_error *err) {
    memset(ex, 0, sizeof *ex);
    if (row && row->type == JSON_OBJECT && data_images_load(row, o, ex, err)) { data_example_free(ex); return -1; }
    if (!ex->n_images) return example_from_json(t, row, o, NULL, ex, err);
    // images: the prompt (a string) gets the vision placeholders first in its user turn
    int n_images = ex->n_images, n_patches = ex->n_patches, dim = ex->patch_dim;
    int *grid = ex->grid_thw;
    char **paths = ex->image_paths;
    const json *p = json_get(row, "prompt");
    if (o->format != DATA_SFT && o->format != DATA_DPO && o->format != DATA_PROMPTS) { data_example_free(ex); return tm_fail(err, "rows with images are read by sft, dpo and the prompts of grpo (for now)"); }
    if (!t) { data_example_free(ex); return tm_fail(err, "rows with images need a tokenizer (tokenizer.json in the model directory)"); }
    if (o->format == DATA_PROMPTS || !p || p->type != JSON_STRING) {
        // prompts: task_problem_from_json places the vision placeholders itself (sample/eval's rule)
        // conversational rows name their images by {"type": "image"} content parts (task_messages)
        memset(ex, 0, sizeof *ex);
        int rc = example_from_json(t, row, o, NULL, ex, err);
        ex->n_images = n_images, ex->n_patches = n_patches, ex->patch_dim = dim, ex->grid_thw = grid;
        ex->image_paths = paths;
        if (rc || data_images_expand(t, o, ex, err)) { data_example_free(ex); return -1; }
        return 0;
    }
    sbuf ps;
    sbuf_init(&ps);
    data_images_prefix(n_images, p->str, p->len, &ps);
    if (sbuf_check(&ps, err)) { sbuf_free(&ps); data_example_free(ex); return -1; }
    json vp = *p;
    vp.str = ps.data;
    vp.len = ps.len;
    memset(ex, 0, sizeof *ex);  // the images are held aside while the text is built
    int rc = example_from_json(t, row, o, &vp, ex, err);
    sbuf_free(&ps);
    ex->n_images = n_images, ex->n_patches = n_patches, ex->patch_dim = dim, ex->grid_thw = grid;
    ex->image_paths = paths;
    if (rc || data_images_expand(t, o, ex, err)) { data_example_free(ex); return -1; }
    return 0;
}

static int push_example(data_set *s, data_example *ex) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        data_example *g = realloc(s->ex, (size_t)cap * sizeof *g);
        if (!g) return -1;
        s->ex = g;
        s->cap = cap;
    }
    if (ex->truncated) s->truncated++;
    s->ex[s->n++] = *ex;
    return 0;
}

static int copy_example(const data_example *a, data_example *b) {
    *b = *a;
    b->answer = NULL;
    b->grid_thw = NULL;
    b->image_paths = NULL;
    for (int k = 0; k < 2; k++) b->seq[k].ids = NULL, b->seq[k].mask = NULL;
    if (a->n_images) {
        if (!(b->image_paths = calloc((size_t)a->n_images, sizeof(char *)))) { data_example_free(b); return -1; }
        for (int k = 0; k < a->n_images; k++)
            if (!(b->image_paths[k] = strdup(a->image_paths[k]))) { data_example_free(b); return -1; }
        b->grid_thw = malloc(sizeof(int) * 3 * (size_t)a->n_images);
        if (!b->grid_thw) { data_example_free(b); return -1; }
        memcpy(b->grid_thw, a->grid_thw, sizeof(int) * 3 * (size_t)a->n_images);
    }
    for (int k = 0; k < a->nseq; k++) {
        size_t n = (size_t)a->seq[k].len;
        b->seq[k].ids = malloc(n * sizeof *b->seq[k].ids + 1);
        b->seq[k].mask = malloc(n + 1);
        if (!b->seq[k].ids || !b->seq[k].mask) { data_example_free(b); return -1; }
        memcpy(b->seq[k].ids, a->seq[k].ids, n * sizeof *b->seq[k].ids);
        memcpy(b->seq[k].mask, a->seq[k].mask, n);
    }
    if (a->answer && !(b->answer = strdup(a->answer))) { data_example_free(b); return -1; }
    return 0;
}

// Appends the examples of one file to out (file: its index in the --data list).
static int load_one(tok_tokenizer *t, const char *path, int file, const data_opts *o_in, data_set *out, tm_error *err) {
    // image paths are relative to the file's folder
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    data_opts lo = *o_in;
    lo.image_dir = dir;
    const data_opts *o = &lo;
    io_lines r;
    if (io_lines_open(&r, path, err)) return -1;
    char *line;
    long len;
    tm_error e = {0};
    while ((len = io_lines_next(&r, &line)) >= 0) {
        size_t a = 0;
        while (a < (size_t)len && (line[a] == ' ' || line[a] == '\t' || line[a] == '\r')) a++;
        if (a == (size_t)len) continue;  // blank line
        out->lines++;
        json_doc *d = data_parse_line(line, (size_t)len, &e);
        data_example ex;
        int rc = d ? data_example_from_json(t, json_root(d), o, &ex, &e) : -1;
        json_doc_free(d);
        if (rc) {
            if (o->on_bad_line == DATA_BAD_SKIP) {
                if (!out->skipped) {
                    int w = snprintf(out->first_skip, sizeof out->first_skip, "%s:%ld: ", path, r.lineno);
                    if (w > 0 && (size_t)w < sizeof out->first_skip)
                        snprintf(out->first_skip + w, sizeof out->first_skip - (size_t)w, "%.900s", e.msg);
                }
                out->skipped++;
                continue;
            }
            tm_fail(err, "%s:%ld: %s", path, r.lineno, e.msg);
            io_lines_close(&r);
            return -1;
        }
        ex.line = r.lineno;
        ex.file = file;
        if (push_example(out, &ex)) {
            data_example_free(&ex);
            io_lines_close(&r);
            return tm_fail(err, "%s:%ld: out of memory", path, r.lineno);
        }
    }
    io_lines_close(&r);
    return 0;
}

int data_list_item(const char *list, int k, char *out, size_t cap) {
    const char *p = list;
    for (int i = 0; i < k && p; i++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
    if (!p) return -1;
    size_t n = strcspn(p, ",");
    if (n >= cap) return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

int data_list_count(const char *list) {
    int n = 1;
    for (const char *c = list; *c; c++) n += *c == ',';
    return n;
}

int data_load(tok_tokenizer *t, const char *paths, const data_opts *o, data_set *out, tm_error *err) {
    memset(out, 0, sizeof *out);
    int nfiles = data_list_count(paths);
    if (o->data_weights && data_list_count(o->data_weights) != nfiles)
        return tm_fail(err, "--data-weights has %d weights for %d --data files: give one weight per file",
                       data_list_count(o->data_weights), nfiles);
    for (int f = 0; f < nfiles; f++) {
        char path[4096], wtxt[64];
        if (data_list_item(paths, f, path, sizeof path) || !path[0]) {
            data_set_free(out);
            return tm_fail(err, "--data: item %d of \"%.200s\" is empty or too long", f + 1, paths);
        }
        double w = 1.0;
        if (o->data_weights) {
            char *end;
            if (data_list_item(o->data_weights, f, wtxt, sizeof wtxt) || (w = strtod(wtxt, &end), end == wtxt || *end) || !(w >= 0) || w > 1e6) {
                data_set_free(out);
                return tm_fail(err, "--data-weights: weight %d (\"%s\") is not a finite number >= 0", f + 1,
                               data_list_item(o->data_weights, f, wtxt, sizeof wtxt) ? "" : wtxt);
            }
        }
        if (nfiles == 1 && w == 1.0) return load_one(t, path, 0, o, out, err) ? (data_set_free(out), -1) : 0;
        data_set one = {0};
        if (load_one(t, path, f, o, &one, err)) { data_set_free(&one); data_set_free(out); return -1; }
        out->lines += one.lines;
        out->skipped += one.skipped;
        if (one.skipped && !out->first_skip[0]) memcpy(out->first_skip, one.first_skip, sizeof out->first_skip);
        // open-r1 / TRL's dataset mixture: a weight w keeps floor(w * n) examples of the
        // file, a random subset (seeded) for w < 1; w > 1 repeats whole copies first
        long want = (long)floor(w * one.n + 1e-9), taken = 0;
        rng r;
        rng_seed(&r, o->mix_seed * 1000003ULL + (uint64_t)f);
        int *perm = malloc((size_t)(one.n ? one.n : 1) * sizeof *perm);
        int rc = perm ? 0 : tm_fail(err, "%s: out of memory", path);
        for (int i = 0; i < one.n && !rc; i++) perm[i] = i;
        for (int i = one.n - 1; i > 0 && !rc; i--) {
            int j = (int)rng_below(&r, (uint64_t)i + 1), x = perm[i];
            perm[i] = perm[j], perm[j] = x;
        }
        for (long c = 0; taken < want && !rc; c++) {
            // a whole copy in file order, then the rest from the seeded permutation
            int whole = want - taken >= one.n;
            for (int i = 0; i < one.n && taken < want && !rc; i++, taken++) {
                data_example ex;
                if (copy_example(&one.ex[whole ? i : perm[i]], &ex) || push_example(out, &ex))
                    rc = tm_fail(err, "%s: out of memory", path);
            }
        }
        free(perm);
        data_set_free(&one);
        if (rc) { data_set_free(out); return -1; }
    }
    return 0;
}

void data_set_free(data_set *s) {
    for (int i = 0; i < s->n; i++) data_example_free(&s->ex[i]);
    free(s->ex);
    memset(s, 0, sizeof *s);
}
