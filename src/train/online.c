// What the online trainers share (see online.h).
#include "train/online.h"
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "base/rng.h"

int online_task_load(online_task *T, const model *m, const char *model_dir, const char *chat_template, const char *prompt_suffix,
                     const char *data, int max_prompt_length, const char *tools, tm_error *err) {
    memset(T, 0, sizeof *T);
    if (!(T->tok = tok_load(model_dir, err))) return -1;
    tok_chat chat;
    int have_chat = tok_chat_for(T->tok, chat_template, &chat, err) == 0;
    if (chat_template && !have_chat) return -1;
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_PROMPTS;
    o.chat = have_chat ? &chat : NULL;
    o.prompt_suffix = prompt_suffix;
    if (data_load(T->tok, data, &o, &T->prompts, err)) return -1;
    if (T->prompts.n == 0) return tm_fail(err, "%s: no prompts", data);
    for (int i = 0; i < T->prompts.n; i++) {
        data_example *e = &T->prompts.ex[i];
        if (max_prompt_length > 0 && e->prompt_len > max_prompt_length) {  // keep the end (TRL's left truncation)
            int cut = e->prompt_len - max_prompt_length;
            memmove(e->seq[0].ids, e->seq[0].ids + cut, sizeof(int32_t) * (size_t)max_prompt_length);
            e->prompt_len = e->seq[0].len = max_prompt_length;
        }
        for (int k = 0; k < e->prompt_len; k++)
            if (e->seq[0].ids[k] < 0 || e->seq[0].ids[k] >= m->cfg.vocab)
                return tm_fail(err, "%s:%ld: token id %d is outside the model's vocabulary (%d)", data, e->line, e->seq[0].ids[k], m->cfg.vocab);
        if (e->prompt_len > T->longest) T->longest = e->prompt_len;
    }
    T->nstop = tok_stop_ids(T->tok, m->cfg.eos_token_id, m->cfg.vocab, T->stop_ids, 16);  // EOS and end-of-turn tokens
    int tool = rollout_tool_from_name(tools);
    if (tool < 0) return tm_fail(err, "unknown --tools '%s' (none, calculator, python)", tools);
    T->tool = (rollout_tool)tool;
    if (T->tool == ROLLOUT_TOOL_PYTHON && have_chat && rollout_obs_wrapper(&chat, &T->obs_pre, &T->obs_suf, err)) return -1;
    math_extract_opts_default(&T->eo);
    math_equal_opts_default(&T->qo);  // strict: the reward wants the computed answer
    return 0;
}

void online_task_free(online_task *T) {
    free(T->obs_pre);
    free(T->obs_suf);
    data_set_free(&T->prompts);
    tok_free(T->tok);
    memset(T, 0, sizeof *T);
}

void online_epoch_order(int *order, int n, int seed, int epoch) {
    rng r;
    rng_seed(&r, (uint64_t)seed * 1000003u + (uint64_t)epoch);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

int online_grade(const tok_tokenizer *tok, const math_extract_opts *eo, const math_equal_opts *qo, const int32_t *ids, int len,
                 const char *gold, int *found, int *correct, tm_error *err) {
    sbuf txt;
    sbuf_init(&txt);
    *found = *correct = 0;
    if (tok_decode(tok, ids, (size_t)len, 1, &txt, err) || sbuf_check(&txt, err)) { sbuf_free(&txt); return -1; }
    const char *s = txt.data ? txt.data : "";
    size_t st, al;
    *found = math_extract(s, strlen(s), eo, &st, &al, NULL);
    int rc = 0;
    if (*found && gold) {
        char *pred = strndup(s + st, al);
        math_verdict v;
        if (!pred) rc = tm_fail(err, "out of memory");
        else if (!(rc = math_answer_check(pred, gold, qo, &v, err))) *correct = v == MATH_EQUAL;
        free(pred);
    }
    sbuf_free(&txt);
    return rc;
}
