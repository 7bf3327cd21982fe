// What the online trainers share (see online.h).
#include "train/online.h"
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/rng.h"
#include "task/grade.h"

static int task_load(online_task *T, const model *m, const online_task_opts *to, tm_error *err) {
    const char *data = to->data;
    const int maxp = to->max_prompt_length;
    if (online_prompt_style_check(to->prompt_style, err)) return -1;
    int style = to->prompt_style ? task_style_from_name(to->prompt_style) : TASK_STYLE_PLAIN;
    if (!(T->tok = tok_load(to->model_dir, err))) return -1;
    if (tok_set_chat_kwargs(T->tok, to->chat_template_kwargs, err)) return -1;
    tok_chat chat;
    int have_chat = tok_chat_for(T->tok, to->chat_template, &chat, err) == 0;
    if (to->chat_template && !have_chat) return -1;
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_PROMPTS;
    o.chat = have_chat ? &chat : NULL;
    o.prompt_style = to->prompt_style;
    o.prompt_suffix = to->prompt_suffix;
    img_qwen2vl_defaults(&T->icfg);
    if (m->vis) {
        char pp[4096];
        io_join(pp, sizeof pp, to->model_dir, "preprocessor_config.json");
        if (io_exists(pp) && img_qwen2vl_load_config(&T->icfg, pp, err)) return -1;
        T->vision = 1;
        o.image_cfg = &T->icfg;
        o.image_pad_id = m->cfg.image_token_id;
    }
    if (data_load(T->tok, data, &o, &T->prompts, err)) return -1;
    if (T->prompts.n == 0) return tm_fail(err, "%s: no prompts", data);
    for (int i = 0; i < T->prompts.n; i++) {
        data_example *e = &T->prompts.ex[i];
        if (to->need_answer && !e->answer) return tm_fail(err, "%s:%ld: no \"answer\": the reward needs a gold answer", data, e->line);
        if (e->n_images && !to->images)
            return tm_fail(err, "%s:%ld: a prompt with images, which this command does not sample yet (grpo, sample and eval do)", data, e->line);
        if (maxp > 0 && e->prompt_len > maxp && e->n_images)
            return tm_fail(err, "%s:%ld: --max-prompt-length %d would cut this prompt's image tokens (%d tokens): raise it", data, e->line, maxp, e->prompt_len);
        if (maxp > 0 && e->prompt_len > maxp) {  // keep the end (TRL's left truncation)
            int cut = e->prompt_len - maxp;
            memmove(e->seq[0].ids, e->seq[0].ids + cut, sizeof(int32_t) * (size_t)maxp);
            e->prompt_len = e->seq[0].len = maxp;
        }
        for (int k = 0; k < e->prompt_len; k++)
            if (e->seq[0].ids[k] < 0 || e->seq[0].ids[k] >= m->cfg.vocab)
                return tm_fail(err, "%s:%ld: token id %d is outside the model's vocabulary (%d)", data, e->line, e->seq[0].ids[k], m->cfg.vocab);
        if (e->prompt_len > T->longest) T->longest = e->prompt_len;
    }
    T->nstop = tok_stop_ids(T->tok, m->cfg.eos_token_id, m->cfg.vocab, T->stop_ids, 16);  // EOS and end-of-turn tokens
    int tool = rollout_tool_from_name(to->tools);
    if (tool < 0) return tm_fail(err, "unknown --tools '%s' (none, calculator, python)", to->tools);
    T->tool = (rollout_tool)tool;
    if (T->tool == ROLLOUT_TOOL_PYTHON && have_chat && rollout_obs_wrapper(&chat, &T->obs_pre, &T->obs_suf, err)) return -1;
    T->nstop_strs = task_style_stops((task_style)style, T->stop_strs);
    if (T->tool == ROLLOUT_TOOL_PYTHON) T->stop_strs[T->nstop_strs++] = "```output";  // the code block is run here
    math_extract_opts_default(&T->eo);
    math_equal_opts_default(&T->qo);  // strict: the reward wants the computed answer
    T->order_epoch = -1;
    if (!(T->order = malloc(sizeof(int) * (size_t)T->prompts.n))) return tm_fail(err, "out of memory");
    return 0;
}

int online_task_load(online_task *T, const model *m, const online_task_opts *to, tm_error *err) {
    memset(T, 0, sizeof *T);
    if (!task_load(T, m, to, err)) return 0;
    online_task_free(T);  // a failed load holds nothing
    return -1;
}

int online_prompt_style_check(const char *name, tm_error *err) {
    if (name && task_style_from_name(name) < 0)
        return tm_fail(err, "unknown --prompt-style '%s' (boxed, plain, tora, gsm8k-fewshot, minerva)", name);
    return 0;
}

void online_task_free(online_task *T) {
    free(T->order);
    free(T->obs_pre);
    free(T->obs_suf);
    data_set_free(&T->prompts);
    tok_free(T->tok);
    memset(T, 0, sizeof *T);
}

void online_rollout_opts(const online_task *T, rollout_opts *o) {
    o->stop_ids = T->stop_ids;
    o->nstop_ids = T->nstop;
    o->stop_strs = T->stop_strs;
    o->nstop_strs = T->nstop_strs;
    o->tool = T->tool;
    o->obs_prefix = T->obs_pre;
    o->obs_suffix = T->obs_suf;
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
                 const char *gold, sbuf *text, int *found, int *correct, tm_error *err) {
    sbuf own, *txt = text ? text : &own;
    if (text) sbuf_clear(text);
    else sbuf_init(&own);
    *found = *correct = 0;
    int rc = tok_decode(tok, ids, (size_t)len, 1, txt, err) || sbuf_check(txt, err) ? -1 : 0;
    if (!rc) {  // the task layer's one grading rule
        const char *s = txt->data ? txt->data : "";
        task_grade_result g;
        if (!(rc = task_grade(s, strlen(s), gold, eo, qo, &g, err))) {
            *found = g.extracted != NULL;
            *correct = g.correct;
            task_grade_result_free(&g);
        }
    }
    if (!text) sbuf_free(&own);
    return rc;
}

int online_next_prompt(online_task *T, int64_t k, int seed) {
    int n = T->prompts.n, epoch = (int)(k / n);
    if (epoch != T->order_epoch) { online_epoch_order(T->order, n, seed, epoch); T->order_epoch = epoch; }
    return T->order[k % n];
}
