// temper score: log-probs of completions under a model. Lines are pre-tokenized
// ({"prompt_input_ids": [...], "completion_input_ids": [...]}, TRL's names) or text in
// the SFT formats (prompt/completion strings or message lists, or messages), tokenized
// with the model directory's tokenizer by the data layer's rules (TRL's: EOS after a
// string completion; in conversations only the assistant's tokens count). Each line is
// written back unchanged with "logprob" (sum over completion tokens) added, and
// "token_logprobs" with --per-token. With a reward model (a *ForSequenceClassification
// directory from `temper reward-model`) each line gets "reward" instead: the score of
// prompt + completion. Lines are packed into batches of --batch-tokens. A pre-tokenized line
// with images (TRL's "images" / "image" paths, absolute or relative to the JSONL's folder, as
// `temper sample` writes them for a Qwen2.5-VL model) is scored with them: its
// prompt_input_ids hold each image's expanded pads.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "data/data.h"
#include "data/prompt_images.h"
#include "image/image.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "model/batch.h"
#include "model/lora.h"
#include "model/model.h"

typedef struct pending {
    char *line;
    int *ids;        // the whole sequence
    uint8_t *mask;   // 1 where the token is scored
    int len;
    int start;       // first position in the batch
} pending;

// Reads a JSON array of token ids. Returns its length or -1 with a message.
static int read_ids(const json *v, const char *key, int vocab, int **out, char *why, size_t whycap) {
    if (!v || v->type != JSON_ARRAY) { snprintf(why, whycap, "\"%s\" must be an array of token ids", key); return -1; }
    int *ids = malloc(sizeof(int) * (size_t)(v->n ? v->n : 1));
    if (!ids) { snprintf(why, whycap, "out of memory"); return -1; }
    for (int i = 0; i < v->n; i++) {
        const json *x = &v->items[i];
        if (!json_is_int(x) || x->num < 0 || x->num >= vocab) {
            snprintf(why, whycap, "\"%s\"[%d] is not a token id in [0, %d)", key, i, vocab);
            free(ids);
            return -1;
        }
        ids[i] = (int)x->num;
    }
    *out = ids;
    return v->n;
}

// The tokenizer for text lines, loaded on first use.
typedef struct text_input {
    const char *model_dir, *template_name;
    tok_tokenizer *tok;
    tok_chat chat;
    int have_chat;
    int no_chat;  // --no-chat-template: string rows as plain text (task/prompt.h's rule)
} text_input;

// A text line (prompt/completion or messages) through the model directory's tokenizer.
static int text_example(text_input *ti, const json *root, const model *m, int **ids, uint8_t **mask, int *n, char *why,
                        size_t whycap) {
    tm_error err;
    if (!ti->tok) {
        ti->tok = tok_load(ti->model_dir, &err);
        if (!ti->tok) { snprintf(why, whycap, "text input needs the model's tokenizer: %.900s", err.msg); return -1; }
        ti->have_chat = !ti->no_chat && tok_chat_for(ti->tok, ti->template_name, &ti->chat, &err) == 0;
        if (ti->template_name && !ti->have_chat) { snprintf(why, whycap, "%.900s", err.msg); return -1; }
    }
    tok_tokenizer *tok = ti->tok;
    tok_chat chat = ti->chat;
    int have_chat = ti->have_chat;
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_SFT;
    o.append_eos = !m->cfg.num_labels;  // as temper reward-model trains: the score sits on the text's last token
    o.chat = have_chat ? &chat : NULL;
    data_example ex;
    if (data_example_from_json(tok, root, &o, &ex, &err)) { snprintf(why, whycap, "%.900s", err.msg); return -1; }
    const data_seq *s = &ex.seq[0];
    int ok = s->len > 1;
    for (int i = 0; ok && i < s->len; i++) ok = s->ids[i] >= 0 && s->ids[i] < m->cfg.vocab;
    if (!ok) {
        snprintf(why, whycap, s->len > 1 ? "a token id is outside the model's vocabulary (%d): tokenizer and model do not match"
                                         : "nothing to score", m->cfg.vocab);
        data_example_free(&ex);
        return -1;
    }
    *n = s->len;
    *ids = malloc(sizeof(int) * (size_t)s->len);
    *mask = malloc((size_t)s->len);
    if (!*ids || !*mask) {
        free(*ids), free(*mask), *ids = NULL, *mask = NULL;
        snprintf(why, whycap, "out of memory");
        data_example_free(&ex);
        return -1;
    }
    for (int i = 0; i < s->len; i++) (*ids)[i] = s->ids[i], (*mask)[i] = s->mask[i];
    (*mask)[0] = 0;  // the first token has no context
    data_example_free(&ex);
    return 0;
}

static int flush(model *m, batch_builder *bb, pending *p, int np, float *logp, int per_token, FILE *out, tm_error *err) {
    if (!np) return 0;
    model_batch b = batch_view(bb);
    sbuf s, val;
    sbuf_init(&s);
    sbuf_init(&val);
    if (m->cfg.num_labels) {  // a reward model: one "reward" per line (logp holds n_seqs scores)
        if (model_reward_forward(m, &b, logp, err)) return -1;
        for (int i = 0; i < np; i++) {
            sbuf_clear(&s);
            sbuf_clear(&val);
            sbuf_json_float(&val, logp[i]);
            json_line_append(&s, p[i].line, strlen(p[i].line), "reward", val.data);
            fputs(s.data, out);
            fputc('\n', out);
            free(p[i].line); free(p[i].ids); free(p[i].mask);
        }
        sbuf_free(&s);
        sbuf_free(&val);
        batch_clear(bb);
        return 0;
    }
    if (model_forward(m, &b, logp, NULL, err)) return -1;
    for (int i = 0; i < np; i++) {
        double sum = 0;
        // token t is predicted at position t - 1
        for (int t = 1; t < p[i].len; t++) if (p[i].mask[t]) sum += logp[p[i].start + t - 1];
        sbuf_clear(&s);
        sbuf_clear(&val);
        sbuf_json_float(&val, sum);
        json_line_append(&s, p[i].line, strlen(p[i].line), "logprob", val.data);
        if (per_token) {
            sbuf_clear(&val);
            sbuf_puts(&val, "[");
            int first = 1;
            for (int t = 1; t < p[i].len; t++) {
                if (!p[i].mask[t]) continue;
                if (!first) sbuf_puts(&val, ", ");
                first = 0;
                sbuf_json_float(&val, logp[p[i].start + t - 1]);
            }
            sbuf_puts(&val, "]");
            char *line = sbuf_check(&s, err) ? NULL : strdup(s.data);
            if (!line) return err->msg[0] ? -1 : tm_fail(err, "out of memory");
            sbuf_clear(&s);
            json_line_append(&s, line, strlen(line), "token_logprobs", val.data);
            free(line);
        }
        fputs(s.data, out);
        fputc('\n', out);
        free(p[i].line);
        free(p[i].ids);
        free(p[i].mask);
    }
    sbuf_free(&s);
    sbuf_free(&val);
    batch_clear(bb);
    return 0;
}

int cmd_score(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *out_path = "-", *template_name = NULL, *base_model = NULL;
    int no_chat = 0;
    int per_token = 0, batch_tokens = 8192;
    flag flags[] = {
        {"model", FLAG_STR, &model_dir, "model directory (Hugging Face layout), or a PEFT adapter directory"},
        {"base-model", FLAG_STR, &base_model, "the base of an adapter --model, instead of its base_model_name_or_path"},
        {"data", FLAG_STR, &data, "JSONL with prompt_input_ids and completion_input_ids"},
        {"out", FLAG_STR, &out_path, "output JSONL (- for stdout)"},
        {"per-token", FLAG_BOOL, &per_token, "also write token_logprobs"},
        {"batch-tokens", FLAG_INT, &batch_tokens, "tokens per forward pass"},
        {"chat-template", FLAG_STR, &template_name, "chat template for message lists (default: recognized from the tokenizer)"},
        {"no-chat-template", FLAG_BOOL, &no_chat, "string prompts/completions as plain text even if the tokenizer has a template"},
    };
    int rc = flags_parse("score", "--model DIR --data F.jsonl --out OUT.jsonl", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model_dir || !data) return cli_fail("score", "--model and --data are required");
    if (batch_tokens < 1) return cli_fail("score", "--batch-tokens must be at least 1 (got %d)", batch_tokens);
    tm_error err;
    model m;
    lora_set_base_override(base_model);
    if (model_load(&m, model_dir, &err)) return cli_fail("score", "%s", err.msg);
    io_lines in;
    if (io_lines_open(&in, data, &err)) { model_free(&m); return cli_fail("score", "%s", err.msg); }
    io_atomic aw = {0};
    FILE *out = stdout;
    if (strcmp(out_path, "-")) {
        if (io_atomic_open(&aw, out_path, &err)) { io_lines_close(&in); model_free(&m); return cli_fail("score", "%s", err.msg); }
        out = aw.f;
    }
    text_input ti = {model_dir, template_name, NULL, {0}, 0, no_chat};
    img_qwen2vl_config icfg;  // a vision model's processor, for lines with images
    img_qwen2vl_defaults(&icfg);
    char ppath[4096], ddir[4096];
    io_join(ppath, sizeof ppath, model_dir, "preprocessor_config.json");
    if (m.vis && io_exists(ppath) && img_qwen2vl_load_config(&icfg, ppath, &err)) { io_lines_close(&in); model_free(&m); return cli_fail("score", "%s", err.msg); }
    snprintf(ddir, sizeof ddir, "%s", data);
    char *slash = strrchr(ddir, '/');
    if (slash) *slash = 0;
    else snprintf(ddir, sizeof ddir, ".");
    data_prompt_images im = {0};
    batch_builder bb = {0};
    int cap_seqs = 1024, np = 0, status = 0;
    pending *p = calloc((size_t)cap_seqs, sizeof *p);
    if (!p) status = cli_fail("score", "out of memory");
    float *logp = NULL;
    int logp_cap = 0;
    progress pb;
    progress_start(&pb, "score", 0, "lines");
    char *line;
    long len, nlines = 0;
    while (!status && (len = io_lines_next(&in, &line)) >= 0) {
        if (len == 0) continue;
        tm_error jerr;
        json_doc *d = data_parse_line(line, (size_t)len, &jerr);
        if (!d) { status = cli_fail("score", "%s:%ld: %s", data, in.lineno, jerr.msg); break; }
        char why[1024];
        int *ids = NULL, n = -1;
        uint8_t *mask = NULL;
        json *root = json_root(d);
        data_prompt_images_free(&im);
        const json *jim = json_get(root, "images");
        if (!jim || jim->type == JSON_NULL) jim = json_get(root, "image");
        if (jim && jim->type != JSON_NULL && json_get(root, "prompt_input_ids")) {
            int ni = jim->type == JSON_ARRAY ? jim->n : 1, bad = 0;
            if (!m.vis) { snprintf(why, sizeof why, "the line has images but the model has no vision tower (a Qwen2.5-VL model reads them)"); bad = 1; }
            for (int k = 0; !bad && k < ni; k++) {
                const json *v = jim->type == JSON_ARRAY ? &jim->items[k] : jim;
                char path[4096];
                img_rgb rgb = {0};
                img_patches pt = {0};
                tm_error e = {0};
                if (v->type != JSON_STRING) { snprintf(why, sizeof why, "\"images\"[%d] must be a path", k); bad = 1; break; }
                if (v->str[0] == '/') snprintf(path, sizeof path, "%s", v->str);
                else io_join(path, sizeof path, ddir, v->str);
                if (img_load(&rgb, path, &e) || img_qwen2vl_process(&icfg, &rgb, &pt, &e) || data_prompt_images_append(&im, &pt, &e)) {
                    snprintf(why, sizeof why, "image %.600s: %.400s", path, e.msg);
                    bad = 1;
                }
                img_patches_free(&pt);
                img_free(&rgb);
            }
            if (bad) {
                json_doc_free(d);
                status = cli_fail("score", "%s:%ld: %s", data, in.lineno, why);
                break;
            }
        }
        if (json_get(root, "prompt_input_ids")) {
            int *pi = NULL, *ci = NULL;
            int plen = read_ids(json_get(root, "prompt_input_ids"), "prompt_input_ids", m.cfg.vocab, &pi, why, sizeof why);
            int clen = plen < 0 ? -1 : read_ids(json_get(root, "completion_input_ids"), "completion_input_ids", m.cfg.vocab, &ci, why, sizeof why);
            if (plen >= 0 && clen == 0) snprintf(why, sizeof why, "\"completion_input_ids\" is empty");
            if (plen == 0 && clen > 0) snprintf(why, sizeof why, "\"prompt_input_ids\" is empty (the first completion token has no context)");
            if (plen > 0 && clen > 0) {
                n = plen + clen;
                ids = malloc(sizeof(int) * (size_t)n);
                mask = calloc((size_t)n, 1);
                if (!ids || !mask) {
                    free(ids), free(mask), free(pi), free(ci), json_doc_free(d);
                    status = cli_fail("score", "out of memory");
                    break;
                }
                memcpy(ids, pi, sizeof(int) * (size_t)plen);
                memcpy(ids + plen, ci, sizeof(int) * (size_t)clen);
                memset(mask + plen, 1, (size_t)clen);
            }
            free(pi);
            free(ci);
        } else if (text_example(&ti, root, &m, &ids, &mask, &n, why, sizeof why)) {
            n = -1;
        }
        json_doc_free(d);
        if (n < 0) {
            status = cli_fail("score", "%s:%ld: %s", data, in.lineno, why);
            break;
        }
        int need = n > batch_tokens ? n : batch_tokens;
        if (!bb.tokens || bb.cap_tokens < need) {
            // flush what we have before growing, so positions stay valid
            if (np && flush(&m, &bb, p, np, logp, per_token, out, &err)) { status = cli_fail("score", "%s", err.msg); break; }
            np = 0;
            batch_free(&bb);
            if (batch_init(&bb, need, cap_seqs, &err)) { status = cli_fail("score", "%s", err.msg); break; }
        }
        if (bb.n_tokens + n > bb.cap_tokens || np == cap_seqs) {
            if (flush(&m, &bb, p, np, logp, per_token, out, &err)) { status = cli_fail("score", "%s", err.msg); break; }
            np = 0;
        }
        if (logp_cap < bb.cap_tokens) { free(logp); logp_cap = bb.cap_tokens; logp = malloc(sizeof(float) * (size_t)logp_cap); }
        if (im.n_images && batch_add_images(&bb, im.n_images, im.pixel_values, im.n_patches, im.dim, im.grid_thw, &err)) {
            free(ids), free(mask);
            status = cli_fail("score", "%s", err.msg);
            break;
        }
        p[np] = (pending){strdup(line), ids, mask, n, 0};
        p[np].start = batch_add(&bb, ids, mask, n);  // cannot be full: flushed above
        if (!logp || !p[np].line || p[np].start < 0) {
            free(p[np].line), free(ids), free(mask);
            status = cli_fail("score", "out of memory");
            break;
        }
        np++;
        progress_update(&pb, ++nlines);
    }
    if (!status && flush(&m, &bb, p, np, logp, per_token, out, &err)) status = cli_fail("score", "%s", err.msg);
    else if (status) for (int i = 0; i < np; i++) { free(p[i].line); free(p[i].ids); free(p[i].mask); }
    if (!status) progress_finish(&pb);
    free(p);
    free(logp);
    data_prompt_images_free(&im);
    batch_free(&bb);
    io_lines_close(&in);
    model_free(&m);
    tok_free(ti.tok);
    if (out != stdout) {
        if (status) { io_atomic_abort(&aw); return status; }
        if (io_atomic_commit(&aw, &err)) return cli_fail("score", "%s", err.msg);
    }
    return status;
}
