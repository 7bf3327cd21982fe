// rollout/rollout.c: see rollout.h.
#include "rollout/rollout.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "tools/calc.h"

int rollout_tool_from_name(const char *s) {
    if (!strcmp(s, "none")) return ROLLOUT_TOOL_NONE;
    if (!strcmp(s, "calculator") || !strcmp(s, "calc")) return ROLLOUT_TOOL_CALC;
    if (!strcmp(s, "python")) return ROLLOUT_TOOL_PYTHON;
    return -1;
}

const char *rollout_finish_name(rollout_finish f) {
    switch (f) {
    case FINISH_STOP: return "stop";
    case FINISH_STOP_STRING: return "stop_string";
    case FINISH_LENGTH: return "length";
    case FINISH_MAX_TURNS: return "max_turns";
    default: return "none";
    }
}

void rollout_traj_free(rollout_traj *t) {
    for (int i = 0; i < t->ncalls; i++) { free(t->calls[i].code); free(t->calls[i].output); }
    free(t->calls);
    free(t->ids);
    free(t->logp);
    free(t->mask);
    memset(t, 0, sizeof *t);
}

void rollout_opts_default(rollout_opts *o) {
    memset(o, 0, sizeof *o);
    o->n = 1;
    o->batch = 16;
    o->max_new_tokens = 512;
    o->prefill_chunk = 256;
    sample_params_default(&o->sp);
    o->max_turns = 6;
    pysb_opts_default(&o->py);
}

// ---------------------------------------------------------------- model backend

static int model_reserve_cb(void *ctx, int nslots, const int *caps, int max_rows, int max_logit_rows, tm_error *err) {
    rollout_model_ctx *c = ctx;
    if (kv_cache_init(&c->cache, c->m, nslots, caps, max_rows, max_logit_rows, err)) return -1;
    // The weights do not change during a rollout: the GEMM may keep them packed.
    c->m->K->gemm_weights_frozen(1);
    c->frozen = 1;
    return 0;
}
static int model_forward_cb(void *ctx, const kv_batch *b, const int *tag, float *logits, tm_error *err) {
    rollout_model_ctx *c = ctx;
    return model_decode(c->m, &c->cache, b, logits, err);
}
static int model_vision_cb(void *ctx, const int *tokens, int n, const kv_images *im, kv_vision *out, tm_error *err) {
    return kv_prompt_vision(((rollout_model_ctx *)ctx)->m, tokens, n, im, out, err);
}
static void model_release_cb(void *ctx) {
    rollout_model_ctx *c = ctx;
    kv_cache_free(&c->cache);
    if (c->frozen) c->m->K->gemm_weights_frozen(0);
    c->frozen = 0;
}
// The fused lm-head's fold over the same logits the trainer's forward makes (under
// --deterministic, the default, the kernels give a decode row the trainer's bits): the recorded log-prob
// equals the trainer's bit for bit. The engine asks for T = 1 once the cache scales the
// hidden state by 1/T (model_logit_scale_cb), as the trainer does; other T: sample_logprob.
static void model_logit_scale_cb(void *ctx, float s) { ((rollout_model_ctx *)ctx)->cache.logit_scale = s; }
static float model_logprob_cb(void *ctx, const float *z, int tok, double T) {
    const model *m = ((rollout_model_ctx *)ctx)->m;
    if (T == 1.0) return m->K->lmhead_logprob_row(z, m->cfg.vocab, tok, NULL);
    return sample_logprob(z, m->cfg.vocab, tok, T);
}

void rollout_backend_model(rollout_backend *be, rollout_model_ctx *ctx, model *m) {
    memset(ctx, 0, sizeof *ctx);
    memset(be, 0, sizeof *be);
    ctx->m = m;
    be->ctx = ctx;
    be->vocab = m->cfg.vocab;
    be->reserve = model_reserve_cb;
    be->forward = model_forward_cb;
    be->release = model_release_cb;
    be->logprob = model_logprob_cb;
    be->set_logit_scale = model_logit_scale_cb;
    be->prompt_vision = model_vision_cb;
    if (m->vis) {  // a sampled pad would stand for an image the sequence does not have
        ctx->ban[0] = m->cfg.image_token_id, ctx->ban[1] = m->cfg.video_token_id;
        be->ban_ids = ctx->ban;
        be->nban_ids = 2;
    }
}

// ---------------------------------------------------------------- observation wrapper

int rollout_obs_wrapper(const tok_chat *c, char **prefix, char **suffix, tm_error *err) {
    static const char A[] = "\x01" "ASSISTANT" "\x01", O[] = "\x01" "OBSERVATION" "\x01";
    tok_chat_msg m[3] = {{"user", "Q", 1, NULL, 0}, {"assistant", A, sizeof A - 1, NULL, 0}, {"user", O, sizeof O - 1, NULL, 0}};
    tok_chat_render r = {0};
    if (tok_chat_apply(c, m, 3, 1, &r, err)) { tok_chat_render_free(&r); return -1; }
    const char *a = strstr(r.text.data, A), *ob = a ? strstr(a, O) : NULL;
    if (!a || !ob) {
        tok_chat_render_free(&r);
        return tm_fail(err, "chat template %s: cannot locate the turns of a rendered conversation", tok_chat_family_name(c->family));
    }
    a += sizeof A - 1;
    *prefix = strndup(a, (size_t)(ob - a));
    *suffix = strdup(ob + sizeof O - 1);
    tok_chat_render_free(&r);
    if (!*prefix || !*suffix) {
        free(*prefix); free(*suffix);
        *prefix = *suffix = NULL;
        return tm_fail(err, "out of memory");
    }
    return 0;
}

// ---------------------------------------------------------------- the engine

typedef enum { SEQ_FREE = 0, SEQ_WAIT_PROMPT, SEQ_RUN, SEQ_EXEC } seq_phase;

typedef struct seq {
    seq_phase phase;
    int group, sample, slot;
    rollout_traj *tr;
    int cached;          // tokens of tr in the cache
    int feed_to;         // tokens fed this step (set while building rows)
    sbuf turn;           // decoded text of the current model turn
    tok_stream ts;
    rng r;
    pysb *sb;
    char *code;          // pending python code (SEQ_EXEC)
} seq;

typedef struct group {
    int pslot;           // prefix slot, -1 while not admitted
    int cached;          // prompt tokens in the cache
    int started, finished;
    int ready;           // logits of the last prompt token are in glogits
    int fed_to;
    kv_vision vis;       // its images' prefill (vis.n == 0: none)
} group;

typedef struct engine {
    const rollout_backend *be;
    tok_tokenizer *t;
    const rollout_opts *o;
    const int *const *prompts;
    const int *plen;
    int np, V, B, G;
    rollout_traj *out;
    seq *seqs;           // [B], seq i uses sample slot G + i
    group *groups;       // [np]
    sample_params sp;    // o->sp, at temperature 1 when the backend scales the logits by 1/T
    int *pfree;          // prefix slot in use by group (or -1), [G]
    float *glogits;      // [G][V] by prefix slot
    float *logits;       // [B + G][V]
    sample_scratch ss;
    pysb_pool pool;
    int have_pool;
    int maxstop;
} engine;

static int traj_push(rollout_traj *t, int id, float lp, int mask) {
    if (t->len == t->cap) {
        int nc = t->cap ? 2 * t->cap : 64;
        int *ids = realloc(t->ids, sizeof(int) * (size_t)nc);
        if (ids) t->ids = ids;
        float *lp2 = realloc(t->logp, sizeof(float) * (size_t)nc);
        if (lp2) t->logp = lp2;
        uint8_t *m = realloc(t->mask, (size_t)nc);
        if (m) t->mask = m;
        if (!ids || !lp2 || !m) return -1;
        t->cap = nc;
    }
    t->ids[t->len] = id;
    t->logp[t->len] = lp;
    t->mask[t->len] = (uint8_t)mask;
    t->len++;
    return 0;
}

static uint64_t seq_seed(uint64_t seed, int group, int sample, int n) {
    uint64_t x = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)((int64_t)group * n + sample + 1));
    x ^= x >> 31;
    return x * 0xBF58476D1CE4E5B9ull;
}

static void seq_finish(engine *e, seq *s, rollout_finish why, tm_error *err) {
    s->tr->finish = why;
    if (s->sb) { pysb_pool_release(&e->pool, s->sb, err); s->sb = NULL; }
    free(s->code);
    s->code = NULL;
    sbuf_free(&s->turn);
    tok_stream_free(&s->ts);
    group *g = &e->groups[s->group];
    g->finished++;
    s->phase = SEQ_FREE;
    if (g->finished == e->o->n) {
        e->pfree[g->pslot] = -1;
        kv_vision_free(&g->vis);
        if (e->o->on_group) e->o->on_group(e->o->ud, s->group, e->out + (size_t)s->group * e->o->n);
    }
}

static void new_turn(seq *s) {
    sbuf_clear(&s->turn);
    tok_stream_free(&s->ts);
    memset(&s->ts, 0, sizeof s->ts);
    tok_stream_init(&s->ts, 0);
}

// Appends tool tokens (mask 0). Returns 1 when they did not all fit (trajectory full).
static int append_obs(engine *e, seq *s, const char *text, size_t len, tm_error *err, int *rc) {
    tok_ids ids = {0};
    if (tok_encode(e->t, text, len, 0, &ids, err)) { *rc = -1; tok_ids_free(&ids); return 1; }
    int full = 0;
    for (size_t i = 0; i < ids.n; i++) {
        if (s->tr->len >= e->o->max_new_tokens) { full = 1; break; }
        if (traj_push(s->tr, ids.v[i], 0.0f, 0)) { *rc = tm_fail(err, "out of memory"); break; }
    }
    tok_ids_free(&ids);
    return full;
}

static rollout_call *add_call(rollout_traj *t) {
    rollout_call *c = realloc(t->calls, sizeof *c * (size_t)(t->ncalls + 1));
    if (!c) return NULL;
    t->calls = c;
    c = &t->calls[t->ncalls++];
    memset(c, 0, sizeof *c);
    return c;
}

// A ```python block closed in the turn text: *out = its code (malloc'd), or NULL when
// there is none. -1 when out of memory.
static int closed_python_block(const char *text, char **out) {
    *out = NULL;
    const char *open = strstr(text, "```python");
    if (!open) return 0;
    const char *nl = strchr(open, '\n');
    if (!nl) return 0;
    const char *code = nl + 1, *close;
    if (!strncmp(code, "```", 3)) close = code;
    else {
        const char *c = strstr(code, "\n```");
        if (!c) return 0;
        close = c + 1;
    }
    size_t n = (size_t)(close - code);
    if (n && code[n - 1] == '\n') n--;
    return (*out = strndup(code, n)) ? 0 : -1;
}

// The model sampled tok for s: record it and decide what happens next.
static int on_token(engine *e, seq *s, int tok, float lp, tm_error *err) {
    const rollout_opts *o = e->o;
    rollout_traj *tr = s->tr;
    if (traj_push(tr, tok, lp, 1)) return tm_fail(err, "out of memory");
    for (int i = 0; i < o->nstop_ids; i++)
        if (tok == o->stop_ids[i]) { seq_finish(e, s, FINISH_STOP, err); return 0; }
    size_t before = s->turn.len;
    if (e->t && tok_stream_step(e->t, &s->ts, tok, &s->turn, err)) return -1;
    const char *text = s->turn.data ? s->turn.data : "";
    if (o->tool == ROLLOUT_TOOL_PYTHON && s->turn.len > before && !strstr(text, "boxed")) {
        char *code;
        if (closed_python_block(text, &code)) return tm_fail(err, "out of memory");
        if (code) {
            s->code = code;
            s->phase = SEQ_EXEC;
            return 0;
        }
    }
    if (o->tool == ROLLOUT_TOOL_CALC && s->turn.len > before && text[s->turn.len - 1] == '=') {
        const char *lt = NULL, *gt = NULL;
        for (const char *p = text; (p = strstr(p, "<<")); p += 2) lt = p;
        for (const char *p = text; (p = strstr(p, ">>")); p += 2) gt = p;
        if (lt && (!gt || gt < lt)) {
            char *expr = strndup(lt + 2, (size_t)(text + s->turn.len - 1 - (lt + 2)));
            if (!expr) return tm_fail(err, "out of memory");
            char val[256];
            tm_error ce;
            int ok = !strchr(expr, '=') && calc_eval(expr, val, sizeof val - 2, &ce) == 0;
            rollout_call *c = add_call(tr);
            if (!c) { free(expr); return tm_fail(err, "out of memory"); }
            c->code = expr;  // the trajectory owns it now
            c->start = tr->len;
            c->status = ok ? 0 : 1;
            if (!(c->output = strdup(ok ? val : ""))) return tm_fail(err, "out of memory");
            if (ok) {
                strcat(val, ">>");
                int rc = 0, full = append_obs(e, s, val, strlen(val), err, &rc);
                if (rc) return -1;
                c->len = tr->len - c->start;
                sbuf_puts(&s->turn, val);
                if (sbuf_check(&s->turn, err)) return -1;
                tok_stream_free(&s->ts);
                memset(&s->ts, 0, sizeof s->ts);
                tok_stream_init(&s->ts, 0);
                if (full) { seq_finish(e, s, FINISH_LENGTH, err); return 0; }
            }
        }
    }
    if (s->turn.len > before) {
        size_t from = before > (size_t)e->maxstop ? before - (size_t)e->maxstop : 0;
        for (int i = 0; i < o->nstop_strs; i++)
            if (strstr(text + from, o->stop_strs[i])) { seq_finish(e, s, FINISH_STOP_STRING, err); return 0; }
    }
    if (tr->len >= o->max_new_tokens) { seq_finish(e, s, FINISH_LENGTH, err); return 0; }
    return 0;
}

// Runs the pending python calls and appends their observations.
static int run_tools(engine *e, tm_error *err) {
    const rollout_opts *o = e->o;
    int n = 0;
    for (int i = 0; i < e->B; i++) n += e->seqs[i].phase == SEQ_EXEC;
    if (!n) return 0;
    pysb **sbs = calloc((size_t)n, sizeof *sbs);
    const char **codes = calloc((size_t)n, sizeof *codes);
    pysb_result *res = calloc((size_t)n, sizeof *res);
    seq **who = calloc((size_t)n, sizeof *who);
    int rc = 0, k = 0;
    if (!sbs || !codes || !res || !who) rc = tm_fail(err, "out of memory");
    for (int i = 0; !rc && i < e->B; i++) {
        seq *s = &e->seqs[i];
        if (s->phase != SEQ_EXEC) continue;
        if (!s->sb && !(s->sb = pysb_pool_acquire(&e->pool))) { rc = tm_fail(err, "no free python sandbox"); break; }
        sbs[k] = s->sb;
        codes[k] = s->code;
        who[k++] = s;
    }
    if (!rc && pysb_run_many(sbs, codes, res, k, err)) rc = -1;
    for (int j = 0; !rc && j < k; j++) {
        seq *s = who[j];
        rollout_traj *tr = s->tr;
        char *txt = res[j].status == PYSB_TIMEOUT ? strdup("Timeout Error") : pysb_result_text(&res[j]);
        if (!txt) { rc = tm_fail(err, "out of memory"); break; }
        size_t tl = strlen(txt);
        while (tl && (txt[tl - 1] == '\n' || txt[tl - 1] == ' ')) txt[--tl] = 0;
        rollout_call *c = add_call(tr);
        if (!c) { free(txt); rc = tm_fail(err, "out of memory"); break; }
        c->code = s->code;
        s->code = NULL;
        c->status = (int)res[j].status;
        c->start = tr->len;
        int last = tr->ncalls >= o->max_turns;
        sbuf obs;
        sbuf_init(&obs);
        sbuf_puts(&obs, o->obs_prefix ? o->obs_prefix : "\n");
        sbuf_puts(&obs, "```output\n");
        sbuf_puts(&obs, txt);
        if (last) {
            char *t2 = malloc(tl + 40);
            if (!t2) { free(txt); sbuf_free(&obs); rc = tm_fail(err, "out of memory"); break; }
            memcpy(t2, txt, tl);
            strcpy(t2 + tl, "\nReach max function call limit.");
            free(txt);
            txt = t2;
            sbuf_puts(&obs, "\nReach max function call limit.");
        }
        sbuf_puts(&obs, "\n```");
        sbuf_puts(&obs, o->obs_suffix ? o->obs_suffix : "\n");
        c->output = txt;
        if (sbuf_check(&obs, err)) { sbuf_free(&obs); rc = -1; break; }
        int full = append_obs(e, s, obs.data, obs.len, err, &rc);
        sbuf_free(&obs);
        c->len = tr->len - c->start;
        if (rc) break;
        s->phase = SEQ_RUN;
        new_turn(s);
        if (full) seq_finish(e, s, FINISH_LENGTH, err);
        else if (last) seq_finish(e, s, FINISH_MAX_TURNS, err);
    }
    for (int j = 0; j < k; j++) pysb_result_free(&res[j]);
    free(sbs); free(codes); free(res); free(who);
    return rc;
}

static int sample_for(engine *e, seq *s, float *z, tm_error *err) {
    float lp;
    const rollout_backend *be = e->be;
    float kept[8];
    int nb = be->nban_ids < 8 ? be->nban_ids : 8;
    for (int i = 0; i < nb; i++)
        if (be->ban_ids[i] >= 0 && be->ban_ids[i] < e->V) kept[i] = z[be->ban_ids[i]], z[be->ban_ids[i]] = -INFINITY;
    int tok = sample_token(z, e->V, &e->sp, &s->r, &e->ss, be->logprob ? NULL : &lp);
    for (int i = nb - 1; i >= 0; i--)  // the log-prob is of the full distribution, as the trainer's
        if (be->ban_ids[i] >= 0 && be->ban_ids[i] < e->V) z[be->ban_ids[i]] = kept[i];
    if (nb && !be->logprob) lp = sample_logprob(z, e->V, tok, e->sp.temperature > 0.0 ? e->sp.temperature : 1.0);
    if (be->logprob) lp = be->logprob(be->ctx, z, tok, e->sp.temperature > 0.0 ? e->sp.temperature : 1.0);
    return on_token(e, s, tok, lp, err);
}

int rollout_run(const rollout_backend *be, tok_tokenizer *t, const int *const *prompts, const int *plen,
                int nprompts, const rollout_opts *o, rollout_traj *out, tm_error *err) {
    if (nprompts <= 0) return 0;
    if (!t && (o->tool != ROLLOUT_TOOL_NONE || o->nstop_strs))
        return tm_fail(err, "rollout: tools and stop strings need a tokenizer");
    if (o->n < 1 || o->batch < 1 || o->max_new_tokens < 1 || o->max_turns < 1)
        return tm_fail(err, "rollout: n, batch, max_new_tokens and max_turns must be >= 1");
    if (sample_params_check(&o->sp, err)) return -1;
    engine E = {0}, *e = &E;
    e->be = be; e->t = t; e->o = o; e->prompts = prompts; e->plen = plen; e->np = nprompts; e->out = out;
    e->V = be->vocab;
    // A backend that divides the final hidden state by T before its lm-head (as the
    // trainer's forward at temperature T does) returns logits / T itself: sampling then
    // runs at temperature 1, and the recorded log-probs are the trainer's, bit for bit
    // under --deterministic.
    e->sp = o->sp;
    const int scale_logits = be->set_logit_scale && o->sp.temperature > 0.0 && o->sp.temperature != 1.0;
    if (scale_logits) e->sp.temperature = 1.0;
    e->B = o->batch < nprompts * o->n ? o->batch : nprompts * o->n;
    e->G = (e->B + o->n - 1) / o->n + 1;
    if (e->G > nprompts) e->G = nprompts;
    int maxp = 1;
    for (int g = 0; g < nprompts; g++) {
        if (plen[g] < 1) return tm_fail(err, "rollout: prompt %d is empty", g);
        if (plen[g] > maxp) maxp = plen[g];
    }
    for (int i = 0; i < o->nstop_strs; i++)
        if ((int)strlen(o->stop_strs[i]) > e->maxstop) e->maxstop = (int)strlen(o->stop_strs[i]);
    int chunk = o->prefill_chunk > 0 ? o->prefill_chunk : 256;
    int max_rows = e->B + chunk, max_logit = e->B + e->G;
    int nslots = e->G + e->B, rc = 0;
    int *caps = malloc(sizeof(int) * (size_t)nslots);
    e->seqs = calloc((size_t)e->B, sizeof *e->seqs);
    e->groups = calloc((size_t)nprompts, sizeof *e->groups);
    e->pfree = malloc(sizeof(int) * (size_t)e->G);
    e->glogits = malloc(sizeof(float) * (size_t)e->G * e->V);
    e->logits = malloc(sizeof(float) * (size_t)max_logit * e->V);
    int *rows = malloc(sizeof(int) * 8 * (size_t)max_rows);  // tokens pos slot cache_pos pslot plen logit_row tag
    int *tags = malloc(sizeof(int) * (size_t)max_logit);
    int *lowner = malloc(sizeof(int) * (size_t)max_logit);  // >= 0 seq index, < 0 -(prefix slot + 1)
    const float **R_ang = calloc((size_t)max_rows, sizeof *R_ang), **R_emb = calloc((size_t)max_rows, sizeof *R_emb);
    if (!R_ang || !R_emb || !caps || !e->seqs || !e->groups || !e->pfree || !e->glogits || !e->logits || !rows || !tags || !lowner ||
        sample_scratch_init(&e->ss, e->V)) {
        rc = tm_fail(err, "out of memory for %d sequences of %d tokens", e->B, o->max_new_tokens);
        goto done;
    }
    for (int i = 0; i < e->G; i++) caps[i] = maxp, e->pfree[i] = -1;
    for (int i = 0; i < e->B; i++) caps[e->G + i] = o->max_new_tokens;
    for (int g = 0; g < nprompts; g++) e->groups[g].pslot = -1;
    if (be->reserve(be->ctx, nslots, caps, max_rows, max_logit, err)) { rc = -1; goto done; }
    if (be->set_logit_scale) be->set_logit_scale(be->ctx, scale_logits ? (float)(1.0 / o->sp.temperature) : 1.0f);
    if (o->tool == ROLLOUT_TOOL_PYTHON) {
        if (pysb_pool_open(&e->pool, e->B, &o->py, err)) { rc = -1; goto released; }
        e->have_pool = 1;
    }

    int next_g = 0, next_s = 0;
    for (;;) {
        // admit trajectories into free slots, in order (group by group)
        for (int i = 0; i < e->B && next_g < nprompts && !rc; i++) {
            seq *s = &e->seqs[i];
            if (s->phase != SEQ_FREE) continue;
            group *g = &e->groups[next_g];
            if (g->pslot < 0) {
                int ps = -1;
                for (int k = 0; k < e->G; k++) if (e->pfree[k] < 0) { ps = k; break; }
                if (ps < 0) break;
                e->pfree[ps] = next_g;
                g->pslot = ps;
                const kv_images *im = o->images ? &o->images[next_g] : NULL;
                if (im && im->n_images > 0) {
                    if (!be->prompt_vision) { rc = tm_fail(err, "rollout: prompt %d has images, which this backend does not read", next_g); break; }
                    if (be->prompt_vision(be->ctx, e->prompts[next_g], e->plen[next_g], im, &g->vis, err)) {
                        tm_error e2 = *err;
                        rc = tm_fail(err, "prompt %d: %s", next_g, e2.msg);
                        break;
                    }
                }
            }
            memset(s, 0, sizeof *s);
            s->group = next_g;
            s->sample = next_s;
            s->slot = e->G + i;
            s->tr = &out[(size_t)next_g * o->n + next_s];
            s->tr->group = next_g;
            s->tr->sample = next_s;
            sbuf_init(&s->turn);
            tok_stream_init(&s->ts, 0);
            rng_seed(&s->r, seq_seed(o->seed, o->group_base + next_g, next_s, o->n));
            g->started++;
            s->phase = SEQ_WAIT_PROMPT;
            if (g->ready) {
                s->phase = SEQ_RUN;
                if (sample_for(e, s, e->glogits + (size_t)g->pslot * e->V, err)) rc = -1;
            }
            if (++next_s == o->n) next_s = 0, next_g++;
        }
        if (rc) break;
        // rows: decoding first (one per running trajectory), then observations and prompts
        int nr = 0, nl = 0, budget = chunk;
        int *R_tok = rows, *R_pos = rows + max_rows, *R_slot = rows + 2 * max_rows, *R_cp = rows + 3 * max_rows;
        int *R_ps = rows + 4 * max_rows, *R_pl = rows + 5 * max_rows, *R_lr = rows + 6 * max_rows;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < e->B; i++) {
                seq *s = &e->seqs[i];
                if (s->phase != SEQ_RUN) continue;
                int pending = s->tr->len - s->cached;
                if ((pass == 0) != (pending == 1)) continue;
                int take = pending;
                if (pass == 1) { take = pending < budget ? pending : budget; budget -= take; }
                if (take <= 0) { s->feed_to = s->cached; continue; }
                int P = e->plen[s->group];
                for (int k = 0; k < take; k++) {
                    int j = s->cached + k;
                    R_tok[nr] = s->tr->ids[j];
                    R_pos[nr] = P + j + e->groups[s->group].vis.rope_delta;  // M-RoPE: after the images
                    R_ang[nr] = R_emb[nr] = NULL;
                    R_slot[nr] = s->slot;
                    R_cp[nr] = j;
                    R_ps[nr] = e->groups[s->group].pslot;
                    R_pl[nr] = P;
                    R_lr[nr] = -1;
                    if (k == take - 1 && j + 1 == s->tr->len) {
                        R_lr[nr] = nl;
                        tags[nl] = s->group * o->n + s->sample;
                        lowner[nl++] = i;
                    }
                    nr++;
                }
                s->feed_to = s->cached + take;
            }
        for (int gi = 0; gi < nprompts && budget > 0; gi++) {
            group *g = &e->groups[gi];
            if (g->pslot < 0 || g->ready || g->cached == e->plen[gi]) continue;
            int take = e->plen[gi] - g->cached < budget ? e->plen[gi] - g->cached : budget;
            budget -= take;
            for (int k = 0; k < take; k++) {
                int j = g->cached + k;
                R_tok[nr] = e->prompts[gi][j];
                R_pos[nr] = j;
                const kv_vision *gv = &g->vis;
                R_ang[nr] = gv->n ? gv->ang + (size_t)j * gv->half : NULL;
                R_emb[nr] = gv->n && gv->row[j] >= 0 ? gv->emb + (size_t)gv->row[j] * gv->hidden : NULL;
                R_slot[nr] = g->pslot;
                R_cp[nr] = j;
                R_ps[nr] = -1;
                R_pl[nr] = 0;
                R_lr[nr] = -1;
                if (j + 1 == e->plen[gi]) {
                    R_lr[nr] = nl;
                    tags[nl] = -(gi + 1);
                    lowner[nl++] = -(g->pslot + 1);
                }
                nr++;
            }
            g->fed_to = g->cached + take;
        }
        if (nr == 0) {
            int busy = 0;
            for (int i = 0; i < e->B; i++) busy |= e->seqs[i].phase != SEQ_FREE;
            if (!busy && next_g >= nprompts) break;
            rc = tm_fail(err, "rollout: nothing to compute but trajectories are unfinished (scheduler bug)");
            break;
        }
        kv_batch kb = {nr, R_tok, R_pos, R_slot, R_cp, R_ps, R_pl, R_lr, R_ang, R_emb};
        if (be->forward(be->ctx, &kb, tags, e->logits, err)) { rc = -1; break; }
        for (int i = 0; i < e->B; i++)
            if (e->seqs[i].phase == SEQ_RUN) e->seqs[i].cached = e->seqs[i].feed_to;
        for (int gi = 0; gi < nprompts; gi++) {
            group *g = &e->groups[gi];
            if (g->pslot >= 0 && !g->ready && g->fed_to > g->cached) g->cached = g->fed_to;
        }
        // prompts completed this step first (their waiting samples draw their first token),
        // then the running trajectories, in slot order: deterministic for a given batch size
        for (int r = 0; r < nl && !rc; r++) {
            if (lowner[r] >= 0) continue;
            int ps = -lowner[r] - 1, gi = e->pfree[ps];
            group *g = &e->groups[gi];
            memcpy(e->glogits + (size_t)ps * e->V, e->logits + (size_t)r * e->V, sizeof(float) * (size_t)e->V);
            g->ready = 1;
            for (int i = 0; i < e->B && !rc; i++) {
                seq *s = &e->seqs[i];
                if (s->phase == SEQ_WAIT_PROMPT && s->group == gi) {
                    s->phase = SEQ_RUN;
                    if (sample_for(e, s, e->glogits + (size_t)ps * e->V, err)) rc = -1;
                    lowner[r] = -1000000;  // consumed
                }
            }
        }
        for (int r = 0; r < nl && !rc; r++) {
            if (lowner[r] < 0) continue;
            seq *s = &e->seqs[lowner[r]];
            if (s->phase == SEQ_RUN && sample_for(e, s, e->logits + (size_t)r * e->V, err)) rc = -1;
        }
        if (!rc && run_tools(e, err)) rc = -1;
        if (rc) break;
    }
    if (e->have_pool) pysb_pool_close(&e->pool);
released:
    be->release(be->ctx);
done:
    if (e->seqs)
        for (int i = 0; i < e->B; i++) {
            seq *s = &e->seqs[i];
            if (s->phase == SEQ_FREE) continue;
            sbuf_free(&s->turn);
            tok_stream_free(&s->ts);
            free(s->code);
        }
    if (e->groups)
        for (int g = 0; g < nprompts; g++) kv_vision_free(&e->groups[g].vis);
    sample_scratch_free(&e->ss);
    free(R_ang); free(R_emb);
    free(caps); free(e->seqs); free(e->groups); free(e->pfree); free(e->glogits); free(e->logits);
    free(rows); free(tags); free(lowner);
    return rc;
}
