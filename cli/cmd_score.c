// temper score: log-probs of completions under a model, for pre-tokenized JSONL
// ({"prompt_input_ids": [...], "completion_input_ids": [...]}, TRL's names). Each line
// is written back unchanged with "logprob" (sum over completion tokens) added, and
// "token_logprobs" with --per-token. Lines are packed into batches of --batch-tokens.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "model/batch.h"
#include "model/model.h"

typedef struct pending {
    char *line;
    int *ids;     // prompt ++ completion
    int plen, clen;
    int start;    // first position in the batch
} pending;

// Reads a JSON array of token ids. Returns its length or -1 with a message.
static int read_ids(const json *v, const char *key, int vocab, int **out, char *why, size_t whycap) {
    if (!v || v->type != JSON_ARRAY) { snprintf(why, whycap, "\"%s\" must be an array of token ids", key); return -1; }
    int *ids = malloc(sizeof(int) * (size_t)(v->n ? v->n : 1));
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

static int flush(model *m, batch_builder *bb, pending *p, int np, float *logp, int per_token, FILE *out, tm_error *err) {
    if (!np) return 0;
    model_batch b = batch_view(bb);
    if (model_forward(m, &b, logp, NULL, err)) return -1;
    sbuf s, val;
    sbuf_init(&s);
    sbuf_init(&val);
    for (int i = 0; i < np; i++) {
        double sum = 0;
        // completion token t sits at position plen + t, predicted from position plen + t - 1
        for (int t = 0; t < p[i].clen; t++) sum += logp[p[i].start + p[i].plen + t - 1];
        sbuf_clear(&s);
        sbuf_clear(&val);
        sbuf_json_float(&val, sum);
        json_line_append(&s, p[i].line, strlen(p[i].line), "logprob", val.data);
        if (per_token) {
            sbuf_clear(&val);
            sbuf_puts(&val, "[");
            for (int t = 0; t < p[i].clen; t++) {
                if (t) sbuf_puts(&val, ", ");
                sbuf_json_float(&val, logp[p[i].start + p[i].plen + t - 1]);
            }
            sbuf_puts(&val, "]");
            char *line = strdup(s.data);
            sbuf_clear(&s);
            json_line_append(&s, line, strlen(line), "token_logprobs", val.data);
            free(line);
        }
        fputs(s.data, out);
        fputc('\n', out);
        free(p[i].line);
        free(p[i].ids);
    }
    sbuf_free(&s);
    sbuf_free(&val);
    batch_clear(bb);
    return 0;
}

int cmd_score(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *out_path = "-";
    int per_token = 0, batch_tokens = 8192;
    flag flags[] = {
        {"model", FLAG_STR, &model_dir, "model directory (Hugging Face layout)"},
        {"data", FLAG_STR, &data, "JSONL with prompt_input_ids and completion_input_ids"},
        {"out", FLAG_STR, &out_path, "output JSONL (- for stdout)"},
        {"per-token", FLAG_BOOL, &per_token, "also write token_logprobs"},
        {"batch-tokens", FLAG_INT, &batch_tokens, "tokens per forward pass"},
    };
    int rc = flags_parse("score", "--model DIR --data F.jsonl --out OUT.jsonl", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model_dir || !data) return cli_fail("score", "--model and --data are required");
    tm_error err;
    model m;
    if (model_load(&m, model_dir, &err)) return cli_fail("score", "%s", err.msg);
    io_lines in;
    if (io_lines_open(&in, data, &err)) { model_free(&m); return cli_fail("score", "%s", err.msg); }
    char tmp_path[4096] = "";
    FILE *out = stdout;
    if (strcmp(out_path, "-")) {
        snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%d", out_path, (int)getpid());
        out = fopen(tmp_path, "w");
        if (!out) { io_lines_close(&in); model_free(&m); return cli_fail("score", "%s: %s", tmp_path, strerror(errno)); }
    }
    batch_builder bb = {0};
    int cap_seqs = 1024, np = 0, status = 0;
    pending *p = calloc((size_t)cap_seqs, sizeof *p);
    float *logp = NULL;
    int logp_cap = 0;
    progress pb;
    progress_start(&pb, "score", 0, "lines");
    char *line;
    long len, nlines = 0;
    while (!status && (len = io_lines_next(&in, &line)) >= 0) {
        if (len == 0) continue;
        tm_error jerr;
        json_doc *d = json_parse(line, (size_t)len, &jerr);
        if (!d) { status = cli_fail("score", "%s:%ld: %s", data, in.lineno, jerr.msg); break; }
        char why[256];
        int *pi = NULL, *ci = NULL;
        int plen = read_ids(json_get(json_root(d), "prompt_input_ids"), "prompt_input_ids", m.cfg.vocab, &pi, why, sizeof why);
        int clen = plen < 0 ? -1 : read_ids(json_get(json_root(d), "completion_input_ids"), "completion_input_ids", m.cfg.vocab, &ci, why, sizeof why);
        json_doc_free(d);
        if (plen >= 0 && clen == 0) snprintf(why, sizeof why, "\"completion_input_ids\" is empty");
        if (plen == 0 && clen > 0) snprintf(why, sizeof why, "\"prompt_input_ids\" is empty (the first completion token has no context)");
        if (plen <= 0 || clen <= 0) {
            free(pi); free(ci);
            status = cli_fail("score", "%s:%ld: %s", data, in.lineno, why);
            break;
        }
        int n = plen + clen;
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
        int *ids = malloc(sizeof(int) * (size_t)n);
        memcpy(ids, pi, sizeof(int) * (size_t)plen);
        memcpy(ids + plen, ci, sizeof(int) * (size_t)clen);
        free(pi); free(ci);
        p[np] = (pending){strdup(line), ids, plen, clen, 0};
        p[np].start = batch_add_pair(&bb, ids, plen, ids + plen, clen);
        np++;
        progress_update(&pb, ++nlines);
    }
    if (!status && flush(&m, &bb, p, np, logp, per_token, out, &err)) status = cli_fail("score", "%s", err.msg);
    else if (status) for (int i = 0; i < np; i++) { free(p[i].line); free(p[i].ids); }
    progress_finish(&pb);
    free(p);
    free(logp);
    batch_free(&bb);
    io_lines_close(&in);
    model_free(&m);
    if (out != stdout) {
        if (fclose(out) || status) { unlink(tmp_path); return status ? status : cli_fail("score", "%s: write failed", out_path); }
        if (rename(tmp_path, out_path)) { unlink(tmp_path); return cli_fail("score", "%s: %s", out_path, strerror(errno)); }
    }
    return status;
}
