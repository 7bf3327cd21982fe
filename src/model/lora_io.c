// PEFT adapter files: adapter_config.json and adapter_model.safetensors (see lora.h).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "model/lora.h"
#include "model/model.h"

static const char *base_override;

void lora_set_base_override(const char *dir) { base_override = dir && *dir ? dir : NULL; }

int lora_is_adapter_dir(const char *dir) {
    char path[4096];
    return dir && *dir && io_exists(io_join(path, sizeof path, dir, "adapter_config.json"));
}

int lora_has_tokenizer(const char *dir) {
    char p1[4096], p2[4096];
    return io_exists(io_join(p1, sizeof p1, dir, "tokenizer.json")) || io_exists(io_join(p2, sizeof p2, dir, "tokenizer.model"));
}

// The adapter tensors and the fully trained modules (modules_to_save), under PEFT's key
// names: "base_model.model." + the HF name (the adapter name "default" is not written).
static const char *peft_key(const model_param *p, char *buf, size_t cap) {
    if (p->adapter) return p->name;
    snprintf(buf, cap, "base_model.model.%s", p->name);
    return buf;
}

static void put_str_list(sbuf *s, const char *comma_list) {
    sbuf_puts(s, "[");
    const char *p = comma_list;
    int first = 1;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            sbuf_puts(s, first ? "" : ", ");
            sbuf_json_str(s, p, n);
            first = 0;
        }
        if (!e) break;
        p = e + 1;
    }
    sbuf_puts(s, "]");
}

int lora_save(const model *m, const char *dir, tm_error *err) {
    const lora_set *l = m->lora;
    if (!l) return tm_fail(err, "internal: lora_save without adapters");
    if (io_mkdirs(dir, err)) return -1;
    const lora_config *c = &l->cfg;
    sbuf s;
    sbuf_init(&s);
    sbuf_puts(&s, "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": ");
    sbuf_json_str(&s, c->base_model, strlen(c->base_model));
    sbuf_puts(&s, ",\n  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n  \"init_lora_weights\": true,\n"
                  "  \"layers_pattern\": null,\n  \"layers_to_transform\": null,\n  \"lora_alpha\": ");
    sbuf_printf(&s, "%.17g", c->alpha);
    sbuf_puts(&s, ",\n  \"lora_dropout\": ");
    sbuf_json_float(&s, c->dropout);
    sbuf_puts(&s, ",\n  \"modules_to_save\": ");
    if (c->modules_to_save[0]) put_str_list(&s, c->modules_to_save);
    else sbuf_puts(&s, "null");
    sbuf_printf(&s, ",\n  \"peft_type\": \"LORA\",\n  \"r\": %d,\n  \"rank_pattern\": {},\n  \"revision\": null,\n  \"target_modules\": [", c->r);
    int first = 1;
    for (int t = 0; t < LORA_NMOD; t++)
        if ((c->targets >> t) & 1) sbuf_printf(&s, "%s\"%s\"", first ? "" : ", ", lora_module_name(t)), first = 0;
    sbuf_printf(&s, "],\n  \"task_type\": \"%s\",\n  \"use_dora\": false,\n  \"use_rslora\": %s\n}\n",
                m->cfg.num_labels ? "SEQ_CLS" : "CAUSAL_LM", c->use_rslora ? "true" : "false");
    char path[4096];
    int rc = sbuf_check(&s, err) ? -1 : io_write_file_atomic(io_join(path, sizeof path, dir, "adapter_config.json"), s.data, s.len, err);
    sbuf_free(&s);
    if (rc) return -1;

    int n = 0;
    for (int i = 0; i < m->nparams; i++) n += m->params[i].adapter || m->params[i].trainable;
    st_out_tensor *ts = calloc((size_t)(n ? n : 1), sizeof *ts);
    char(*names)[128] = calloc((size_t)(n ? n : 1), 128);
    if (!ts || !names) { free(ts); free(names); return tm_fail(err, "out of memory"); }
    n = 0;
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        if (!p->adapter && !p->trainable) continue;
        char buf[128];
        snprintf(names[n], 128, "%s", peft_key(p, buf, sizeof buf));
        ts[n] = (st_out_tensor){names[n], p->ndim, {p->shape[0], p->shape[1], p->shape[2], p->shape[3], p->shape[4]}, m->w + p->offset};
        n++;
    }
    // fp32 always: the exact weights the run trains, so a save round-trips bit for bit
    rc = st_write(io_join(path, sizeof path, dir, "adapter_model.safetensors"), ts, n, ST_F32, err);
    free(ts);
    free(names);
    return rc;
}

// adapter_config.json into a lora_config; refuses what this implementation does not do.
static int read_config(const char *path, lora_config *c, char *base, size_t cap, int *seq_cls, tm_error *err) {
    json_doc *d = json_parse_file(path, err);
    if (!d) return -1;
    const json *r = json_root(d);
    int rc = 0;
    lora_config_default(c);
    const char *type = json_get_str(r, "peft_type", "");
    const json *tm = json_get(r, "target_modules");
    const json *ms = json_get(r, "modules_to_save");
    c->r = (int)json_get_int(r, "r", 8);
    c->alpha = json_get_num(r, "lora_alpha", 8);
    c->dropout = json_get_num(r, "lora_dropout", 0);
    c->use_rslora = json_get_bool(r, "use_rslora", 0);
    snprintf(base, cap, "%s", json_get_str(r, "base_model_name_or_path", ""));
    *seq_cls = !strcmp(json_get_str(r, "task_type", ""), "SEQ_CLS");
    if (strcmp(type, "LORA")) rc = tm_fail(err, "%s: peft_type \"%s\" is not LORA", path, type);
    else if (json_get_bool(r, "fan_in_fan_out", 0)) rc = tm_fail(err, "%s: fan_in_fan_out true is not supported", path);
    else if (json_get_bool(r, "use_dora", 0)) rc = tm_fail(err, "%s: DoRA (use_dora true) is not supported", path);
    else if (strcmp(json_get_str(r, "bias", "none"), "none")) rc = tm_fail(err, "%s: bias \"%s\" is not supported (only none)", path, json_get_str(r, "bias", ""));
    else if (!tm) rc = tm_fail(err, "%s: no target_modules", path);
    else if (tm->type == JSON_STRING) rc = lora_parse_targets(c, tm->str, err);
    else if (tm->type == JSON_ARRAY) {
        sbuf s;
        sbuf_init(&s);
        for (int i = 0; i < tm->n; i++)
            if (tm->items[i].type == JSON_STRING) sbuf_printf(&s, "%s%s", i ? "," : "", tm->items[i].str);
        rc = sbuf_check(&s, err) ? -1 : lora_parse_targets(c, s.data ? s.data : "", err);
        sbuf_free(&s);
    } else rc = tm_fail(err, "%s: target_modules is neither a list nor a string", path);
    if (!rc && ms && ms->type == JSON_ARRAY) {
        size_t len = 0;
        for (int i = 0; i < ms->n && !rc; i++) {
            if (ms->items[i].type != JSON_STRING) continue;
            if (len + ms->items[i].len + 2 > sizeof c->modules_to_save) rc = tm_fail(err, "%s: modules_to_save too long", path);
            else len += (size_t)snprintf(c->modules_to_save + len, sizeof c->modules_to_save - len, "%s%s", len ? "," : "", ms->items[i].str);
        }
    }
    if (!rc && json_get(r, "rank_pattern") && json_get(r, "rank_pattern")->n)
        rc = tm_fail(err, "%s: rank_pattern is not supported", path);
    if (!rc && json_get(r, "alpha_pattern") && json_get(r, "alpha_pattern")->n)
        rc = tm_fail(err, "%s: alpha_pattern is not supported", path);
    json_doc_free(d);
    if (!rc && lora_config_check(c, err)) rc = tm_fail(err, "%s: %s", path, err->msg);
    return rc;
}

int lora_load(model *m, const char *dir, int frozen, tm_error *err) {
    char path[4096], base[4096];
    lora_config c;
    int seq_cls;
    if (read_config(io_join(path, sizeof path, dir, "adapter_config.json"), &c, base, sizeof base, &seq_cls, err)) return -1;
    const char *use = base_override ? base_override : base;
    if (!*use) return tm_fail(err, "%s: no base_model_name_or_path; pass --base-model DIR", path);
    if (!io_is_dir(use))
        return tm_fail(err, "%s: its base \"%s\" is not a local directory; pass --base-model DIR", path, use);
    if (lora_is_adapter_dir(use)) return tm_fail(err, "%s: its base %s is itself an adapter directory", path, use);
    // a reward model's adapter (task SEQ_CLS) goes on the base made a reward model; its score
    // head comes from the adapter file (modules_to_save)
    if (seq_cls ? model_load_reward(m, use, 0, err) : frozen ? model_load_frozen(m, use, err) : model_load(m, use, err)) return -1;
    snprintf(c.base_model, sizeof c.base_model, "%s", use);
    if (model_lora_attach(m, &c, 0, err) || lora_read_weights(m, dir, err)) { model_free(m); return -1; }
    return 0;
}

int lora_read_weights(model *m, const char *dir, tm_error *err) {
    char path[4096];
    st_file f;
    if (st_open(&f, io_join(path, sizeof path, dir, "adapter_model.safetensors"), err)) return -1;
    int rc = 0;
    for (int i = 0; i < m->nparams && !rc; i++) {
        const model_param *p = &m->params[i];
        if (!p->adapter && !p->trainable) continue;
        char buf[128];
        const char *key = peft_key(p, buf, sizeof buf);
        const st_tensor *t = st_find(&f, key);
        if (!t) rc = tm_fail(err, "%s: missing tensor %s", path, key);
        else if (t->ndim != p->ndim || t->shape[0] != p->shape[0] || (p->ndim > 1 && t->shape[1] != p->shape[1]))
            rc = tm_fail(err, "%s: tensor %s has the wrong shape (r %d)", path, key, m->lora->cfg.r);
        else rc = st_read_f32(&f, t, m->w + p->offset, err);
    }
    st_close(&f);
    return rc;
}

void lora_args_default(lora_args *a) {
    memset(a, 0, sizeof *a);
    a->r = 16;
    a->alpha = 32;
    a->dropout = 0.05;  // TRL's ModelConfig
}

int lora_args_check(const lora_args *a, tm_error *err) {
    if (!a->use_peft) return 0;
    lora_config c;
    lora_config_default(&c);
    c.r = a->r;
    c.alpha = a->alpha;
    c.dropout = a->dropout;
    if (a->target_modules && lora_parse_targets(&c, a->target_modules, err)) return -1;
    if (a->modules_to_save && strlen(a->modules_to_save) + 7 >= sizeof c.modules_to_save) return tm_fail(err, "--modules-to-save is too long");
    return lora_config_check(&c, err);
}

int model_lora_prepare(model *m, const lora_args *a, const char *model_dir, const char *resume_dir, uint64_t seed, tm_error *err) {
    if (!a->use_peft && !m->lora) return 0;
    if (!m->lora) {
        lora_config c;
        lora_config_default(&c);
        c.r = a->r;
        c.alpha = a->alpha;
        c.use_rslora = a->use_rslora;
        c.dropout = a->dropout;
        if (a->target_modules && lora_parse_targets(&c, a->target_modules, err)) return -1;
        const char *save = a->modules_to_save ? a->modules_to_save : "";
        // a reward model's new score head is trained fully (PEFT adds it to modules_to_save for SEQ_CLS)
        int add_score = m->cfg.num_labels && !strstr(save, "score");
        if (strlen(save) + 7 >= sizeof c.modules_to_save) return tm_fail(err, "--modules-to-save is too long");
        snprintf(c.modules_to_save, sizeof c.modules_to_save, "%s%s%s", save, add_score && *save ? "," : "", add_score ? "score" : "");
        char abs[PATH_MAX];
        snprintf(c.base_model, sizeof c.base_model, "%s", realpath(model_dir, abs) ? abs : model_dir);
        if (model_lora_attach(m, &c, seed, err)) return -1;
    }
    m->lora->seed = seed;  // dropout streams (an adapter loaded from a directory keeps its lora_dropout)
    return resume_dir ? lora_read_weights(m, resume_dir, err) : 0;
}
