#include "train/checkpoint.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "model/safetensors.h"

int checkpoint_log(checkpoint_state *st, const char *line) {
    if (st->n_log == st->cap_log) {
        int nc = st->cap_log ? st->cap_log * 2 : 64;
        char **nl = realloc(st->log, sizeof(char *) * (size_t)nc);
        if (!nl) return -1;
        st->log = nl;
        st->cap_log = nc;
    }
    if (!(st->log[st->n_log] = strdup(line))) return -1;
    st->n_log++;
    return 0;
}

void checkpoint_state_free(checkpoint_state *st) {
    for (int i = 0; i < st->n_log; i++) free(st->log[i]);
    free(st->log);
    memset(st, 0, sizeof *st);
}

int checkpoint_write_trainer_state(const char *dir, const checkpoint_state *st, tm_error *err) {
    sbuf s;
    sbuf_init(&s);
    sbuf_printf(&s, "{\n  \"global_step\": %lld,\n  \"epoch\": ", (long long)st->global_step);
    sbuf_json_float(&s, st->epoch);
    sbuf_puts(&s, ",\n  \"num_tokens\": ");
    sbuf_printf(&s, "%.17g", st->num_tokens);
    if (st->prompts_seen > 0) sbuf_printf(&s, ",\n  \"prompts_seen\": %lld", (long long)st->prompts_seen);
    if (st->total_loss != 0) sbuf_printf(&s, ",\n  \"total_loss\": %.17g", st->total_loss);
    sbuf_puts(&s, ",\n  \"log_history\": [");
    for (int i = 0; i < st->n_log; i++) sbuf_printf(&s, "%s\n    %s", i ? "," : "", st->log[i]);
    sbuf_puts(&s, "\n  ]\n}\n");
    char path[4096];
    int rc = sbuf_check(&s, err) ? -1 : io_write_file_atomic(io_join(path, sizeof path, dir, "trainer_state.json"), s.data, s.len, err);
    sbuf_free(&s);
    return rc;
}

// Removes a flat directory (checkpoints hold files only).
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(io_join(p, sizeof p, dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

// Deletes output_dir/name without ever showing a half-deleted directory under that
// name: it is first renamed out of the checkpoint-* namespace (to .trash-<name>, which
// checkpoint_latest never picks), the rename made durable, and only then emptied. A
// crash in between leaves a .trash-* leftover, removed by the next save.
static int discard(const char *output_dir, const char *name, tm_error *err) {
    char from[4096], trash[4096], tname[300];
    snprintf(tname, sizeof tname, ".trash-%s", name);
    io_join(from, sizeof from, output_dir, name);
    io_join(trash, sizeof trash, output_dir, tname);
    remove_dir(trash);
    if (rename(from, trash)) return errno == ENOENT ? 0 : tm_fail(err, "%s: cannot move it aside to delete it: %s", from, strerror(errno));
    if (io_fsync_dir(output_dir, err)) return -1;
    remove_dir(trash);
    return 0;
}

// Removes the leftovers of interrupted deletions (.trash-*).
static void remove_trash(const char *output_dir) {
    DIR *d = opendir(output_dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, ".trash-checkpoint-", 18)) remove_dir(io_join(p, sizeof p, output_dir, e->d_name));
    closedir(d);
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

// The steps of the complete checkpoints (checkpoint-<step>, not .tmp) in a directory,
// ascending. Returns their count.
static int list_checkpoints(const char *output_dir, long *steps, int cap) {
    DIR *d = opendir(output_dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        char *end;
        if (strncmp(e->d_name, "checkpoint-", 11)) continue;
        long s = strtol(e->d_name + 11, &end, 10);
        if (*end == 0 && end != e->d_name + 11) steps[n++] = s;
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof steps[0], cmp_long);
    return n;
}

int checkpoint_resolve(const char *arg, const char *output_dir, char *buf, size_t cap, const char **path,
                       tm_error *err) {
    *path = arg;
    if (!arg || (strcmp(arg, "true") && strcmp(arg, "True") && strcmp(arg, "last"))) return 0;
    if (!output_dir || checkpoint_latest(output_dir, buf, cap))
        return tm_fail(err, "--resume-from-checkpoint %s: no checkpoint-* directory in %s", arg,
                       output_dir ? output_dir : "(no --output-dir)");
    *path = buf;
    return 0;
}

int checkpoint_latest(const char *output_dir, char *out, size_t cap) {
    long steps[4096];
    int n = list_checkpoints(output_dir, steps, 4096);
    if (!n) return -1;
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%ld", steps[n - 1]);
    io_join(out, cap, output_dir, name);
    return 0;
}

static int prune(const char *output_dir, int keep, tm_error *err) {
    if (keep <= 0) return 0;
    long steps[4096];
    int n = list_checkpoints(output_dir, steps, 4096);
    for (int i = 0; i + keep < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-%ld", steps[i]);
        if (discard(output_dir, name, err)) return -1;
    }
    return 0;
}

int checkpoint_remove_all(const char *output_dir, tm_error *err) {
    remove_trash(output_dir);
    long steps[4096];
    int n = list_checkpoints(output_dir, steps, 4096);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-%ld", steps[i]);
        if (discard(output_dir, name, err)) return -1;
    }
    return 0;
}

// Writes the fp32 master weights when the model's own file rounds them (bf16/fp16).
static int save_master(const char *dir, const model *m, tm_error *err);

int checkpoint_save(const char *output_dir, const model *m, const model_optimizer *o, const checkpoint_state *st, int keep,
                    tm_error *err) {
    char name[64], dir[4096], tmp[4200], path[4300];
    snprintf(name, sizeof name, "checkpoint-%lld", (long long)st->global_step);
    io_join(dir, sizeof dir, output_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    remove_dir(tmp);  // leftovers of a crash
    remove_trash(output_dir);
    if (model_save(m, tmp, 0, err)) return -1;
    int n = 2 * m->nparams;
    st_out_tensor *ts = calloc((size_t)n, sizeof *ts);
    char(*names)[128] = calloc((size_t)n, 128);
    if (!ts || !names) { free(ts); free(names); return tm_fail(err, "out of memory"); }
    int nt = 0;  // the trainable parameters have AdamW state (all, or the adapters under LoRA)
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        if (!p->trainable) continue;
        for (int k = 0; k < 2; k++, nt++) {
            snprintf(names[nt], 128, "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
            ts[nt] = (st_out_tensor){names[nt], p->ndim, {p->shape[0], p->shape[1], p->shape[2], p->shape[3], p->shape[4]}, (k ? o->v : o->m) + p->goff};
        }
    }
    int rc = st_write(io_join(path, sizeof path, tmp, "optimizer.safetensors"), ts, nt, ST_F32, err);
    free(ts);
    free(names);
    if (rc || save_master(tmp, m, err) || checkpoint_write_trainer_state(tmp, st, err) || io_fsync_dir(tmp, err)) return -1;
    if (discard(output_dir, name, err)) return -1;  // the same step saved before (a rerun)
    if (rename(tmp, dir)) return tm_fail(err, "%s: rename failed: %s", dir, strerror(errno));
    if (io_fsync_dir(output_dir, err)) return -1;
    return prune(output_dir, keep, err);
}

// The model's file holds its original dtype (what a Hugging Face user expects); a
// bf16 or fp16 file rounds away updates smaller than half a unit in the last place
// (2^-9 relative for bf16), so the exact fp32 weights the run trains go beside it.
static int save_master(const char *dir, const model *m, tm_error *err) {
    if (m->file_dtype == ST_F32 || m->lora) return 0;  // model.safetensors (adapter_model.safetensors under LoRA: fp32) is exact
    st_out_tensor *ts = calloc((size_t)m->nparams, sizeof *ts);
    if (!ts) return tm_fail(err, "out of memory");
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        ts[i] = (st_out_tensor){p->name, p->ndim, {p->shape[0], p->shape[1], p->shape[2], p->shape[3], p->shape[4]}, m->w + p->offset};
    }
    char path[4096];
    int rc = st_write(io_join(path, sizeof path, dir, CHECKPOINT_MASTER_FILE), ts, m->nparams, ST_F32, err);
    free(ts);
    return rc;
}

// Restores the fp32 master weights over the rounded ones model_load read.
static int load_master(const char *dir, model *m, tm_error *err) {
    char path[4096];
    io_join(path, sizeof path, dir, CHECKPOINT_MASTER_FILE);
    if (!io_exists(path)) {
        if (m->file_dtype == ST_F32 || m->lora) return 0;
        fprintf(stderr, "temper: %s: no %s; resuming from the rounded %s weights (not bit-identical)\n", dir, CHECKPOINT_MASTER_FILE,
                m->file_dtype == ST_BF16 ? "bf16" : "fp16");
        return 0;
    }
    st_file f;
    if (st_open(&f, path, err)) return -1;
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        const st_tensor *t = st_find(&f, p->name);
        if (!t || t->numel != (int64_t)p->numel || t->dtype != ST_F32) { st_close(&f); return tm_fail(err, "%s: missing or misshapen tensor %s", path, p->name); }
        if (st_read_f32(&f, t, m->w + p->offset, err)) { st_close(&f); return -1; }
    }
    st_close(&f);
    return 0;
}

int checkpoint_load_state(const char *dir, model *m, model_optimizer *o, checkpoint_state *st, tm_error *err) {
    char path[4096];
    st_file f;
    if (st_open(&f, io_join(path, sizeof path, dir, "optimizer.safetensors"), err)) return -1;
    for (int i = 0; i < m->nparams; i++) {
        const model_param *p = &m->params[i];
        if (!p->trainable) continue;
        for (int k = 0; k < 2; k++) {
            char name[128];
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
            const st_tensor *t = st_find(&f, name);
            if (!t || t->numel != (int64_t)p->numel) { st_close(&f); return tm_fail(err, "%s: missing or misshapen tensor %s", path, name); }
            if (st_read_f32(&f, t, (k ? o->v : o->m) + p->goff, err)) { st_close(&f); return -1; }
        }
    }
    st_close(&f);
    if (load_master(dir, m, err)) return -1;
    json_doc *d = json_parse_file(io_join(path, sizeof path, dir, "trainer_state.json"), err);
    if (!d) return -1;
    json *r = json_root(d);
    checkpoint_state_free(st);
    st->global_step = json_get_int(r, "global_step", -1);
    st->epoch = json_get_num(r, "epoch", 0);
    st->num_tokens = json_get_num(r, "num_tokens", 0);
    st->prompts_seen = json_get_int(r, "prompts_seen", 0);
    st->total_loss = json_get_num(r, "total_loss", 0);
    json *hist = json_get(r, "log_history");
    int rc = 0;
    if (st->global_step < 0) rc = tm_fail(err, "%s: no \"global_step\"", path);
    for (int i = 0; !rc && hist && hist->type == JSON_ARRAY && i < hist->n; i++) {
        sbuf s;
        sbuf_init(&s);
        sbuf_json_value(&s, &hist->items[i]);
        if (checkpoint_log(st, s.data)) rc = tm_fail(err, "out of memory");
        sbuf_free(&s);
    }
    json_doc_free(d);
    o->step = st->global_step;
    return rc;
}

int checkpoint_check(const char *dir, tm_error *err) {
    if (!io_is_dir(dir)) return tm_fail(err, "--resume-from-checkpoint %s: %s", dir, io_exists(dir) ? "not a directory" : "no such directory");
    static const char *need[] = {"config.json", "optimizer.safetensors", "trainer_state.json"};
    char path[4096];
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!io_exists(io_join(path, sizeof path, dir, need[i])) &&
            !(i == 0 && io_exists(io_join(path, sizeof path, dir, "adapter_config.json"))))  // a LoRA checkpoint
            return tm_fail(err, "--resume-from-checkpoint %s: no %s (not a complete checkpoint)", dir, need[i]);
    json_doc *d = json_parse_file(io_join(path, sizeof path, dir, "trainer_state.json"), err);
    if (!d) return -1;
    long long step = json_get_int(json_root(d), "global_step", -1);
    json_doc_free(d);
    if (step < 0) return tm_fail(err, "%s: no \"global_step\"", path);
    return 0;
}
