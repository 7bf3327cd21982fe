#include "train/critical_tokens.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "data/data.h"
#include "kernels/kernels.h"
#include "model/batch.h"
#include "model/model.h"

// Forward of one example's sequences through a model, hidden states only (no target
// is trained, so the lm-head does no work).
static int hidden_of(model *m, batch_builder *bb, const data_example *d, tm_error *err) {
    batch_clear(bb);
    for (int q = 0; q < d->nseq; q++) {
        uint8_t *zero = calloc((size_t)d->seq[q].len, 1);
        if (!zero) return tm_fail(err, "out of memory");
        int start = batch_add(bb, d->seq[q].ids, zero, d->seq[q].len);
        free(zero);
        if (start < 0) return tm_fail(err, "line %ld: %d tokens do not fit the batch (%d)", d->line, d->seq[q].len, bb->cap_tokens);
    }
    model_batch b = batch_view(bb);
    float *logp = malloc(sizeof(float) * (size_t)b.n_tokens);
    if (!logp) return tm_fail(err, "out of memory");
    int rc = model_forward(m, &b, logp, NULL, err);
    free(logp);
    return rc;
}

static void put_array_int(sbuf *o, const char *key, const int32_t *v, int n) {
    sbuf_printf(o, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_printf(o, "%s%d", i ? ", " : "", v[i]);
    sbuf_puts(o, "]");
}

static void put_array_float(sbuf *o, const char *key, const float *v, int n) {
    sbuf_printf(o, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        if (i) sbuf_puts(o, ", ");
        sbuf_json_float(o, v[i]);
    }
    sbuf_puts(o, "]");
}

int critical_tokens_run(const critical_args *a, tm_error *err) {
    int rc = -1;
    model mp = {0}, mn = {0};
    tok_tokenizer *tok = NULL;
    data_set ds = {0};
    batch_builder bb = {0};
    float *scratch = NULL, *prob = NULL, *w = NULL;
    int *targets = NULL;
    io_atomic out = {0};
    sbuf line;
    sbuf_init(&line);
    if (model_load(&mp, a->positive, err) || model_load(&mn, a->negative, err)) goto done;
    if (mp.cfg.vocab != mn.cfg.vocab || mp.cfg.hidden != mn.cfg.hidden)
        { tm_fail(err, "%s and %s differ in vocabulary or hidden size", a->positive, a->negative); goto done; }
    if (!(tok = tok_load(a->positive, err))) goto done;
    if (tok_set_chat_kwargs(tok, a->chat_template_kwargs, err)) goto done;
    tok_chat chat;
    int have_chat = tok_chat_for(tok, a->chat_template, &chat, err) == 0;
    if (a->chat_template && !have_chat) goto done;
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_DPO;
    o.chat = have_chat ? &chat : NULL;
    o.max_length = a->max_length;
    if (data_load(tok, a->data, &o, &ds, err)) goto done;
    int longest = 1;
    for (int i = 0; i < ds.n; i++) {
        int l = ds.ex[i].seq[0].len + ds.ex[i].seq[1].len;
        if (l > longest) longest = l;
    }
    if (batch_init(&bb, longest, 2, err)) goto done;
    int V = mp.cfg.vocab, D = mp.cfg.hidden;
    scratch = malloc(sizeof(float) * mp.K->contrastive_scratch_floats(longest, D, V));
    prob = malloc(sizeof(float) * (size_t)longest);
    w = malloc(sizeof(float) * (size_t)longest);
    targets = malloc(sizeof(int) * (size_t)longest);
    if (!scratch || !prob || !w || !targets) { tm_fail(err, "out of memory"); goto done; }
    if (io_atomic_open(&out, a->out, err)) goto done;
    int32_t eos = tok_eos_id(tok);
    progress pb;
    progress_start(&pb, "critical tokens", ds.n, "pairs");
    for (int i = 0; i < ds.n; i++) {
        data_example *d = &ds.ex[i];
        if (hidden_of(&mp, &bb, d, err)) goto done;
        if (hidden_of(&mn, &bb, d, err)) goto done;
        int n = bb.n_tokens;
        // position t-1 predicts token t, within each sequence
        for (int q = 0, start = 0; q < d->nseq; start += d->seq[q].len, q++)
            for (int t = 0; t < d->seq[q].len; t++)
                targets[start + t] = t + 1 < d->seq[q].len ? d->seq[q].ids[t + 1] : -1;
        mp.K->contrastive_prob(prob, model_last_hidden(&mp), model_lm_head(&mp), model_last_hidden(&mn), model_lm_head(&mn),
                           (float)a->gamma, targets, n, D, V, scratch);
        sbuf_clear(&line);
        sbuf_printf(&line, "{\"line\": %ld", d->line);
        const char *names[2] = {"chosen", "rejected"};
        for (int q = 0, start = 0; q < 2; start += d->seq[q].len, q++) {
            const data_seq *s = &d->seq[q];
            for (int t = 0; t < s->len; t++) {
                double st = prob[start + (t ? t - 1 : 0)];  // the score of token t
                if (t == 0) w[t] = 1.0f;  // the first token has no score (and is never trained)
                else if (q == 0) w[t] = a->weight_chosen ? (float)st : 1.0f;
                else w[t] = (float)(1.0 - st);
            }
            // the appended EOS: weight 1, as the released code (its scores stop before EOS)
            if (q == 1 && s->len > 1 && s->ids[s->len - 1] == eos && s->mask[s->len - 1]) w[s->len - 1] = 1.0f;
            char key[64];
            snprintf(key, sizeof key, "%s_input_ids", names[q]);
            put_array_int(&line, key, s->ids, s->len);
            snprintf(key, sizeof key, "%s_weights", names[q]);
            put_array_float(&line, key, w, s->len);
        }
        sbuf_puts(&line, "}\n");
        if (sbuf_check(&line, err)) goto done;
        if (fwrite(line.data, 1, line.len, out.f) != line.len) { tm_fail(err, "%s: write failed: %s", out.tmp, strerror(errno)); goto done; }
        progress_update(&pb, i + 1);
    }
    progress_finish(&pb);
    if (io_atomic_commit(&out, err)) goto done;
    rc = 0;
done:
    io_atomic_abort(&out);  // nothing left to remove after a commit
    sbuf_free(&line);
    free(scratch); free(prob); free(w); free(targets);
    batch_free(&bb);
    data_set_free(&ds);
    tok_free(tok);
    model_free(&mp);
    model_free(&mn);
    return rc;
}
