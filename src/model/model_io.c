// Loading and saving Hugging Face model directories.
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/rng.h"
#include "model/lora.h"
#include "model/model.h"

// Files of a model directory that are not weights and travel with it on save.
static const char *passthrough_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja", "chat_template.json",
};

typedef struct shard_set {
    int n;
    st_file files[64];
    char names[64][256];
} shard_set;

static void shards_close(shard_set *s) {
    for (int i = 0; i < s->n; i++) st_close(&s->files[i]);
    s->n = 0;
}

static int shards_add(shard_set *s, const char *dir, const char *name, tm_error *err) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return 0;
    if (s->n == 64) return tm_fail(err, "%s: more than 64 shards", dir);
    if (strchr(name, '/') || strlen(name) >= 256) return tm_fail(err, "%s: bad shard file name \"%s\"", dir, name);
    char path[4096];
    io_join(path, sizeof path, dir, name);
    if (st_open(&s->files[s->n], path, err)) return -1;
    snprintf(s->names[s->n], 256, "%s", name);
    s->n++;
    return 0;
}

static int load_dir(model *m, const char *dir, int as_reward, uint64_t seed, int frozen, tm_error *err);

// Qwen2.5-VL: transformers >= 4.52 names the modules model.language_model.* and model.visual.*
// inside the model, but its save_pretrained reverses _checkpoint_conversion_mapping, so files
// (and the Hub's) hold model.layers.* / visual.*: we write those and read either.
static const char *vl_alt_name(const model *m, const char *name, char *buf, size_t n) {
    if (!model_arch_is_vl(m->cfg.arch)) return NULL;
    if (!strncmp(name, "visual.", 7)) snprintf(buf, n, "model.%s", name);
    else if (!strncmp(name, "model.", 6)) snprintf(buf, n, "model.language_model.%s", name + 6);
    else return NULL;
    return buf;
}

// A PEFT adapter directory loads as its base with the adapters attached (model/lora.h).
int model_load(model *m, const char *dir, tm_error *err) {
    return lora_is_adapter_dir(dir) ? lora_load(m, dir, 0, err) : load_dir(m, dir, 0, 0, 0, err);
}

int model_load_frozen(model *m, const char *dir, tm_error *err) {
    return lora_is_adapter_dir(dir) ? lora_load(m, dir, 1, err) : load_dir(m, dir, 0, 0, 1, err);
}

int model_load_reward(model *m, const char *dir, uint64_t seed, tm_error *err) { return load_dir(m, dir, 1, seed, 0, err); }

// The weights a frozen base reads in place: the linear projections, the embedding and the
// lm-head (tied or not; not a reward model's score head).
static int in_place_kind(const model *m, size_t off) {
    if (off == m->off_embed || off == m->off_lm_head) return !m->cfg.num_labels;
    for (int l = 0; l < m->cfg.layers; l++) {
        const layer_offsets *o = &m->layer[l];
        if (off == o->wq || off == o->wk || off == o->wv || off == o->wo || off == o->w_gate || off == o->w_up || off == o->w_down) return 1;
    }
    return 0;
}

// Loads a directory; with as_reward a causal LM becomes a reward model: its lm-head is
// left out and a score head is initialized (normal(0, 0.02), as transformers does).
// frozen: model_load_frozen (bf16 projections read in place, the files kept mapped).
static int load_dir(model *m, const char *dir, int as_reward, uint64_t seed, int frozen, tm_error *err) {
    char path[4096];
    model_config cfg;
    // "" would join to "/config.json", a file at the root that names nothing the user gave
    if (!dir || !*dir) return tm_fail(err, "the model directory is an empty string (check --model)");
    io_join(path, sizeof path, dir, "config.json");
    size_t cfg_len;
    char *cfg_text = io_read_file(path, &cfg_len, err);
    if (!cfg_text) return -1;
    tm_error jerr;
    json_doc *cd = json_parse(cfg_text, cfg_len, &jerr);
    if (!cd) { free(cfg_text); return tm_fail(err, "%s: %s", path, jerr.msg); }
    int rc = config_from_json(&cfg, json_root(cd), path, err);
    json_doc_free(cd);
    if (rc) { free(cfg_text); return -1; }
    int new_head = as_reward && !cfg.num_labels;
    if (as_reward) cfg.num_labels = 1;
    if ((frozen ? model_create_mapped(m, &cfg, err) : model_create(m, &cfg, err))) { free(cfg_text); return -1; }
    m->config_text = cfg_text;
    m->source_dir = strdup(dir);

    shard_set *sh = calloc(1, sizeof *sh);
    if (!sh) { model_free(m); return tm_fail(err, "out of memory"); }
    char index_path[4096];
    io_join(index_path, sizeof index_path, dir, "model.safetensors.index.json");
    json_doc *idx = NULL;
    const json *weight_map = NULL;
    if (io_exists(index_path)) {
        idx = json_parse_file(index_path, err);
        if (!idx) goto fail;
        weight_map = json_get(json_root(idx), "weight_map");
        if (!weight_map || weight_map->type != JSON_OBJECT) { tm_fail(err, "%s: no \"weight_map\" object", index_path); goto fail; }
    } else if (shards_add(sh, dir, "model.safetensors", err)) {
        goto fail;
    }
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        if (new_head && (size_t)p->offset == m->off_score) {
            rng r;
            rng_seed(&r, seed);
            for (size_t j = 0; j < p->numel; j++) m->w[p->offset + j] = 0.02f * rng_normal(&r);
            continue;
        }
        st_file *f = &sh->files[0];
        if (weight_map) {
            char alt[160];
            const char *an = vl_alt_name(m, p->name, alt, sizeof alt);
            const char *fname = json_get_str(weight_map, p->name, NULL);
            if (!fname && an) fname = json_get_str(weight_map, an, NULL);
            if (!fname) { tm_fail(err, "%s: tensor %s is missing from the weight map", index_path, p->name); goto fail; }
            if (shards_add(sh, dir, fname, err)) goto fail;
            for (int k = 0; k < sh->n; k++) if (!strcmp(sh->names[k], fname)) f = &sh->files[k];
        }
        const st_tensor *t = st_find(f, p->name);
        char alt2[160];
        const char *an2 = vl_alt_name(m, p->name, alt2, sizeof alt2);
        if (!t && an2) t = st_find(f, an2);
        if (!t) { tm_fail(err, "%s: missing tensor %s", f->path, p->name); goto fail; }
        int shape_ok = t->ndim == p->ndim;
        for (int k = 0; k < p->ndim && shape_ok; k++) shape_ok = t->shape[k] == p->shape[k];
        if (!shape_ok) {
            char got[128] = "";
            for (int k = 0; k < t->ndim && k < 8; k++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "", (long long)t->shape[k]);
            char want[128] = "";
            for (int k = 0; k < p->ndim; k++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? ", " : "", (long long)p->shape[k]);
            tm_fail(err, "%s: tensor %s has shape [%s], config.json implies [%s]", f->path, p->name, got, want);
            goto fail;
        }
        const uint8_t *data = f->map + f->data_offset + t->begin;
        if (frozen && t->dtype == ST_BF16 && !((uintptr_t)data & 1) && in_place_kind(m, p->offset)) {
            m->params[i].bf16 = (const uint16_t *)data;  // little-endian, as the file
            m->nbf16++;
        } else if (st_read_f32(f, t, m->w + p->offset, err)) {
            goto fail;
        }
        if (i == 0) m->file_dtype = t->dtype;
    }
    json_doc_free(idx);
    if (m->nbf16) {  // the mappings now belong to the model
        if (!(m->maps = malloc(sizeof(st_file) * (size_t)sh->n))) { tm_fail(err, "out of memory"); goto fail; }
        memcpy(m->maps, sh->files, sizeof(st_file) * (size_t)sh->n);
        m->nmaps = sh->n;
        sh->n = 0;
        model_guard_inplace(m);
    }
    shards_close(sh);
    free(sh);
    return 0;
fail:
    json_doc_free(idx);
    shards_close(sh);
    free(sh);
    model_free(m);
    return -1;
}

// The config of a reward model made from a causal LM: the same fields, with the
// sequence-classification architecture and one label.
static int reward_config(const model *m, sbuf *o, tm_error *err) {
    json_doc *d = json_parse(m->config_text, strlen(m->config_text), err);
    if (!d) return -1;
    const json *r = json_root(d);
    sbuf_printf(o, "{\n  \"architectures\": [\"%s\"],\n  \"id2label\": {\"0\": \"LABEL_0\"},\n  \"label2id\": {\"LABEL_0\": 0}",
                model_arch_cls_name(m->cfg.arch));
    for (int i = 0; i < r->n; i++) {
        const char *k = r->keys[i];
        if (!strcmp(k, "architectures") || !strcmp(k, "id2label") || !strcmp(k, "label2id") || !strcmp(k, "num_labels")) continue;
        sbuf_puts(o, ",\n  ");
        sbuf_json_str(o, k, r->key_lens[i]);
        sbuf_puts(o, ": ");
        sbuf_json_value(o, &r->items[i]);
    }
    sbuf_puts(o, "\n}\n");
    json_doc_free(d);
    return 0;
}

// The id of a token named by its text: tokenizer_config.json's added_tokens_decoder,
// else tokenizer.json's added_tokens or its vocabulary; -1 when none has it.
static long token_id_of(const char *src, const json *tcfg, const char *content) {
    const json *dec = json_get(tcfg, "added_tokens_decoder");
    for (int i = 0; dec && dec->type == JSON_OBJECT && i < dec->n; i++) {
        const char *c = json_get_str(&dec->items[i], "content", NULL);
        if (c && !strcmp(c, content)) return strtol(dec->keys[i], NULL, 10);
    }
    char path[4096];
    io_join(path, sizeof path, src, "tokenizer.json");
    tm_error ignored;
    json_doc *d = io_exists(path) ? json_parse_file(path, &ignored) : NULL;
    if (!d) return -1;
    long id = -1;
    const json *added = json_get(json_root(d), "added_tokens");
    for (int i = 0; added && added->type == JSON_ARRAY && i < added->n && id < 0; i++) {
        const char *c = json_get_str(&added->items[i], "content", NULL);
        if (c && !strcmp(c, content)) id = (long)json_get_int(&added->items[i], "id", -1);
    }
    const json *model = json_get(json_root(d), "model");
    const json *vocab = model ? json_get(model, "vocab") : NULL;
    if (id < 0 && vocab && vocab->type == JSON_OBJECT) {
        const json *v = json_get(vocab, content);
        if (v && json_is_int(v)) id = (long)v->num;
    }
    json_doc_free(d);
    return id;
}

// The padding id a config without pad_token_id gets, as a TRL run sets it up: the
// tokenizer's pad token (tokenizer_config.json), else the end-of-sequence token
// (TRL's pad_token = eos_token), else none (-1).
static long pad_id_for(const char *src, const json *cfg) {
    long id = -1;
    char path[4096];
    if (src) {
        io_join(path, sizeof path, src, "tokenizer_config.json");
        tm_error ignored;
        json_doc *t = io_exists(path) ? json_parse_file(path, &ignored) : NULL;
        if (t) {
            const json *pad = json_get(json_root(t), "pad_token");
            const char *content = pad && pad->type == JSON_STRING ? pad->str
                                  : pad && pad->type == JSON_OBJECT ? json_get_str(pad, "content", NULL) : NULL;
            if (content) id = token_id_of(src, json_root(t), content);
            json_doc_free(t);
        }
    }
    if (id >= 0) return id;
    const json *eos = json_get(cfg, "eos_token_id");
    if (eos && eos->type == JSON_ARRAY && eos->n > 0) eos = &eos->items[0];
    return eos && json_is_int(eos) ? (long)eos->num : -1;
}

// config.json as saved: the text given, with pad_token_id added when it is missing or
// null and one is known (a *ForSequenceClassification model needs it to find the last
// token of each row in a padded batch); unchanged otherwise.
static int with_pad_token_id(const char *text, const char *src, sbuf *o, tm_error *err) {
    json_doc *d = json_parse(text, strlen(text), err);
    if (!d) return -1;
    const json *r = json_root(d), *pad = json_get(r, "pad_token_id");
    long id = pad && pad->type != JSON_NULL ? -1 : pad_id_for(src, r);
    if (id < 0 || r->type != JSON_OBJECT) {
        sbuf_puts(o, text);
    } else {
        sbuf_puts(o, "{");
        for (int i = 0; i < r->n; i++) {
            if (!strcmp(r->keys[i], "pad_token_id")) continue;
            sbuf_puts(o, i ? ",\n  " : "\n  ");
            sbuf_json_str(o, r->keys[i], r->key_lens[i]);
            sbuf_puts(o, ": ");
            sbuf_json_value(o, &r->items[i]);
        }
        sbuf_printf(o, "%s\n  \"pad_token_id\": %ld\n}\n", r->n ? "," : "", id);
    }
    json_doc_free(d);
    return 0;
}

// generation_config.json as transformers derives it from a model config
// (GenerationConfig.from_model_config: the special token ids, keys sorted), for a
// directory that has none; a causal LM only (a sequence classifier does not generate).
static int write_generation_config(const char *config_text, const char *path, tm_error *err) {
    json_doc *d = json_parse(config_text, strlen(config_text), err);
    if (!d) return -1;
    sbuf s;
    sbuf_init(&s);
    sbuf_puts(&s, "{\n  \"_from_model_config\": true");
    static const char *keys[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    for (int i = 0; i < 3; i++) {
        const json *v = json_get(json_root(d), keys[i]);
        if (!v || v->type == JSON_NULL) continue;
        sbuf_printf(&s, ",\n  \"%s\": ", keys[i]);
        sbuf_json_value(&s, v);
    }
    sbuf_puts(&s, "\n}\n");
    json_doc_free(d);
    int rc = sbuf_check(&s, err) ? -1 : io_write_file_atomic(path, s.data, s.len, err);
    sbuf_free(&s);
    return rc;
}

// model_save_random's weights: model_init_random's values, drawn in table order as written.
typedef struct random_fill {
    const model *m;
    rng r;
    int first;  // the table index of the file's first tensor
} random_fill;

static void fill_random(void *ctx, int tensor, int64_t start, int64_t count, float *dst) {
    random_fill *f = ctx;
    (void)start;  // tensors and chunks come in order: the generator's next values are theirs
    model_random_values(f->m, f->first + tensor, &f->r, dst, (size_t)count);
}

static int save(const model *m, const char *dir, size_t max_shard_bytes, random_fill *rf, tm_error *err);

int model_save(const model *m, const char *dir, size_t max_shard_bytes, tm_error *err) {
    return save(m, dir, max_shard_bytes, NULL, err);
}

int model_save_random(const model *m, const char *dir, uint64_t seed, tm_error *err) {
    random_fill rf = {m, {{0}}, 0};
    rng_seed(&rf.r, seed);
    return save(m, dir, 0, &rf, err);
}

static int save(const model *m, const char *dir, size_t max_shard_bytes, random_fill *rf, tm_error *err) {
    if (io_mkdirs(dir, err)) return -1;
    char path[4096];
    // config.json: the one we were loaded from (as a reward model's when the run made
    // one), or a fresh one; with pad_token_id
    io_join(path, sizeof path, dir, "config.json");
    sbuf base, s;
    sbuf_init(&base);
    sbuf_init(&s);
    int rc = 0;
    if (m->lora) {
        // under LoRA the output is a PEFT adapter directory (lora_save, below): no config.json
    } else {
        if (m->config_text && m->cfg.num_labels && !strstr(m->config_text, "ForSequenceClassification"))
            rc = reward_config(m, &base, err);
        else if (m->config_text)
            sbuf_puts(&base, m->config_text);
        else
            config_to_json(&m->cfg, m->file_dtype == ST_BF16 ? "bfloat16" : m->file_dtype == ST_F16 ? "float16" : "float32", &base);
        if (!rc) rc = sbuf_check(&base, err) || with_pad_token_id(base.data, m->source_dir, &s, err) || sbuf_check(&s, err) ? -1 : 0;
        if (!rc) rc = io_write_file_atomic(path, s.data, s.len, err);
    }
    sbuf_free(&base);
    if (rc) { sbuf_free(&s); return -1; }
    // tokenizer and generation files travel with the model
    if (m->source_dir && strcmp(m->source_dir, dir)) {
        for (size_t i = 0; i < sizeof passthrough_files / sizeof passthrough_files[0]; i++) {
            char src[4096];
            io_join(src, sizeof src, m->source_dir, passthrough_files[i]);
            io_join(path, sizeof path, dir, passthrough_files[i]);
            if (io_exists(src) && io_copy_file(src, path, err)) { sbuf_free(&s); return -1; }
        }
    }
    if (m->lora) {
        sbuf_free(&s);
        return lora_save(m, dir, err);
    }
    io_join(path, sizeof path, dir, "generation_config.json");
    rc = !m->cfg.num_labels && !io_exists(path) ? write_generation_config(s.data, path, err) : 0;
    sbuf_free(&s);
    if (rc) return -1;
    st_out_tensor *ts = calloc((size_t)m->nparams, sizeof *ts);
    if (!ts) return tm_fail(err, "out of memory");
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        ts[i].name = p->name;
        ts[i].ndim = p->ndim;
        for (int k = 0; k < p->ndim; k++) ts[i].shape[k] = p->shape[k];
        ts[i].data = rf ? NULL : m->w + p->offset;
    }
    size_t esize = m->file_dtype == ST_F32 ? 4 : 2;
    size_t total = m->numel * esize;
    char index_path[4096];
    io_join(index_path, sizeof index_path, dir, "model.safetensors.index.json");
    if (!max_shard_bytes || total <= max_shard_bytes) {
        io_join(path, sizeof path, dir, "model.safetensors");
        rc = st_write_fill(path, ts, m->nparams, m->file_dtype, rf ? fill_random : NULL, rf, err);
        if (!rc && io_exists(index_path)) remove(index_path);  // a stale index would shadow the new file
    } else {
        // count shards first: transformers names them model-0000i-of-0000n.safetensors
        int nshards = 0;
        for (int i = 0; i < m->nparams;) {
            size_t bytes = 0;
            int j = i;
            while (j < m->nparams && (j == i || bytes + m->params[j].numel * esize <= max_shard_bytes)) bytes += m->params[j++].numel * esize;
            nshards++;
            i = j;
        }
        sbuf idx;
        sbuf_init(&idx);
        sbuf_printf(&idx, "{\n  \"metadata\": {\"total_size\": %zu},\n  \"weight_map\": {", total);
        int shard = 0;
        for (int i = 0; i < m->nparams && !rc;) {
            size_t bytes = 0;
            int j = i;
            while (j < m->nparams && (j == i || bytes + m->params[j].numel * esize <= max_shard_bytes)) bytes += m->params[j++].numel * esize;
            char name[64];
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", ++shard, nshards);
            io_join(path, sizeof path, dir, name);
            if (rf) rf->first = i;
            rc = st_write_fill(path, ts + i, j - i, m->file_dtype, rf ? fill_random : NULL, rf, err);
            for (int k = i; k < j; k++) sbuf_printf(&idx, "%s\n    \"%s\": \"%s\"", k ? "," : "", m->params[k].name, name);
            i = j;
        }
        sbuf_puts(&idx, "\n  }\n}\n");
        if (!rc) rc = sbuf_check(&idx, err) ? -1 : io_write_file_atomic(index_path, idx.data, idx.len, err);
        sbuf_free(&idx);
    }
    free(ts);
    return rc;
}
