#include "cli/flags.h"
#include "base/json.h"
#include "cli/config_yaml.h"
#include "base/progress.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int flags_quiet;

static void print_help(const char *cmd, const char *synopsis, const flag *flags, int nflags) {
    // a synopsis may spell the whole command line itself ("temper tool python ...")
    if (synopsis && !strncmp(synopsis, "temper ", 7)) printf("usage: %s\n\nflags:\n", synopsis);
    else printf("usage: temper %s %s\n\nflags:\n", cmd, synopsis ? synopsis : "[flags]");
    for (int i = 0; i < nflags; i++) {
        char def[64] = "";
        switch (flags[i].kind) {
        case FLAG_STR: case FLAG_LIST: if (*(const char **)flags[i].dst) snprintf(def, sizeof def, " (default %s)", *(const char **)flags[i].dst); break;
        case FLAG_INT: snprintf(def, sizeof def, " (default %d)", *(int *)flags[i].dst); break;
        case FLAG_FLOAT: snprintf(def, sizeof def, " (default %g)", *(double *)flags[i].dst); break;
        case FLAG_BOOL: break;
        }
        printf("  --%-28s %s%s\n", flags[i].name, flags[i].help ? flags[i].help : "", def);
    }
    int own_quiet = 0;
    for (int i = 0; i < nflags; i++) own_quiet |= !strcmp(flags[i].name, "quiet");
    if (!own_quiet) printf("  --%-28s %s\n", "quiet", "no progress bars or summary lines (errors still print)");
    printf("  --%-28s %s\n", "deterministic",
           "batch- and thread-invariant forward kernels: the sampler's log-probs equal the trainer's bit for bit "
           "(default true; false: OpenBLAS's sgemm for the forward, equal to ~1e-6)");
    printf("  --%-28s %s\n", "config", "FILE.json|FILE.yaml: flags as keys (TRL's names); the command line wins");
}

// Compares a flag name with user text, treating '_' and '-' alike.
static int name_eq(const char *a, const char *b, size_t blen) {
    size_t i = 0;
    for (; i < blen && a[i]; i++) {
        char x = a[i] == '_' ? '-' : a[i], y = b[i] == '_' ? '-' : b[i];
        if (x != y) return 0;
    }
    return i == blen && a[i] == 0;
}

// TRL/transformers names of flags that temper spells otherwise, accepted on the command line
// and in a config file.
static const char *const key_alias[][2] = {
    {"model_name_or_path", "model"},
    {"dataset_name", "data"},
    {"dataset_path", "data"},
};
int flags_parse(const char *cmd, const char *synopsis, const flag *flags, int nflags, int argc,
                char **argv, char **positional, int *npos) {
    // --config for every command: its values must outlive the command, so the expansion is
    // kept for the life of the process (a static, still reachable at exit)
    static flags_config expanded;
    for (int i = 1; i < argc && !expanded.argv; i++)
        if (!strcmp(argv[i], "--config") || !strncmp(argv[i], "--config=", 9)) {
            if (flags_expand_config(cmd, argc, argv, &expanded)) return 2;
            return flags_parse(cmd, synopsis, flags, nflags, expanded.argc, expanded.argv, positional, npos);
        }
    int cap = npos ? *npos : 0, np = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (a[0] != '-' || a[1] != '-' || a[2] == 0) {
            if (np >= cap) { fprintf(stderr, "temper %s: unexpected argument '%s'\n", cmd, a); return 2; }
            positional[np++] = a;
            continue;
        }
        if (!strcmp(a, "--help")) { print_help(cmd, synopsis, flags, nflags); return 1; }
        if (!strcmp(a, "--quiet") || !strcasecmp(a, "--quiet=true")) {
            if (i + 1 < argc && !strcasecmp(argv[i + 1], "false")) { i++; continue; }
            if (i + 1 < argc && !strcasecmp(argv[i + 1], "true")) i++;
            flags_quiet = 1;
            progress_set_quiet(1);
            // a command with its own --quiet flag sees it too
            for (int j = 0; j < nflags; j++) if (!strcmp(flags[j].name, "quiet")) *(int *)flags[j].dst = 1;
            continue;
        }
        if (!strcmp(a, "--deterministic") || !strcasecmp(a, "--deterministic=true") || !strcasecmp(a, "--deterministic=false")) {
            int on = strcasecmp(a, "--deterministic=false") != 0;
            if (on && i + 1 < argc && !strcasecmp(argv[i + 1], "false")) i++, on = 0;
            else if (on && i + 1 < argc && !strcasecmp(argv[i + 1], "true")) i++;
            // the kernels read it at their first GEMM (src/kernels/cpu_gemm.c): the CLI
            // never calls a kernel itself. On is the default.
            setenv("TEMPER_DETERMINISTIC", on ? "1" : "0", 1);
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const flag *f = NULL;
        for (int j = 0; j < nflags; j++) if (name_eq(flags[j].name, name, nlen)) f = &flags[j];
        // TRL's names for the same thing (--model_name_or_path is --model)
        for (size_t k = 0; !f && k < sizeof key_alias / sizeof key_alias[0]; k++)
            if (name_eq(key_alias[k][0], name, nlen))
                for (int j = 0; j < nflags; j++) if (!strcmp(flags[j].name, key_alias[k][1])) f = &flags[j];
        if (!f) { fprintf(stderr, "temper %s: unknown flag '--%.*s' (see temper %s --help)\n", cmd, (int)nlen, name, cmd); return 2; }
        const char *val = eq ? eq + 1 : NULL;
        if (f->kind == FLAG_BOOL && !val) {
            // TRL's spelling, --packing true / --packing False, as well as a bare --packing
            const char *nx = i + 1 < argc ? argv[i + 1] : "";
            if (!strcasecmp(nx, "true") || !strcasecmp(nx, "false")) val = argv[++i];
            else { *(int *)f->dst = 1; continue; }
        }
        if (!val) {
            if (i + 1 >= argc) { fprintf(stderr, "temper %s: --%s needs a value\n", cmd, f->name); return 2; }
            val = argv[++i];
        }
        char *end; errno = 0;
        switch (f->kind) {
        case FLAG_STR: *(const char **)f->dst = val; break;
        case FLAG_LIST: {
            // the first occurrence replaces the default, later ones append
            static char *joined[64];
            static int njoined;
            const char **dst = (const char **)f->dst;
            int again = 0;
            for (int k = 1; k < i - (eq ? 0 : 1); k++) {
                const char *b = argv[k];
                again |= b[0] == '-' && b[1] == '-' && name_eq(f->name, b + 2, strcspn(b + 2, "="));
            }
            if (!again || !*dst) { *dst = val; break; }
            if (njoined == 64) { fprintf(stderr, "temper %s: --%s given too many times\n", cmd, f->name); return 2; }
            char *j = malloc(strlen(*dst) + strlen(val) + 2);
            if (!j) { fprintf(stderr, "temper %s: out of memory\n", cmd); return 2; }
            sprintf(j, "%s,%s", *dst, val);
            *dst = joined[njoined++] = j;  // kept for the life of the process
            break;
        }
        case FLAG_INT: {
            long v = strtol(val, &end, 10);
            if (*end || errno || end == val) { fprintf(stderr, "temper %s: --%s expects an integer, got '%s'\n", cmd, f->name, val); return 2; }
            if (v < INT_MIN || v > INT_MAX) { fprintf(stderr, "temper %s: --%s: %s is out of range (at most %d)\n", cmd, f->name, val, INT_MAX); return 2; }
            *(int *)f->dst = (int)v; break;
        }
        case FLAG_FLOAT: {
            double v = strtod(val, &end);
            if (*end || errno || end == val) { fprintf(stderr, "temper %s: --%s expects a number, got '%s'\n", cmd, f->name, val); return 2; }
            // no flag means anything by nan or inf; each command checks its own range
            if (!isfinite(v)) { fprintf(stderr, "temper %s: --%s expects a finite number, got '%s'\n", cmd, f->name, val); return 2; }
            *(double *)f->dst = v; break;
        }
        case FLAG_BOOL:
            if (!strcasecmp(val, "true") || !strcmp(val, "1")) *(int *)f->dst = 1;
            else if (!strcasecmp(val, "false") || !strcmp(val, "0")) *(int *)f->dst = 0;
            else { fprintf(stderr, "temper %s: --%s expects true or false, got '%s'\n", cmd, f->name, val); return 2; }
            break;
        }
    }
    if (npos) *npos = np;
    return 0;
}

// Config keys that choose something temper has no choice about (a TRL YAML file carries them;
// refusing the file would make the user edit it, ignoring them silently would hide a
// difference: they are named on stderr).
static const char *const key_ignored[] = {
    "bf16", "fp16", "tf32", "torch_dtype", "dtype", "attn_implementation",
    "gradient_checkpointing_kwargs", "use_liger_kernel", "push_to_hub", "hub_model_id", "hub_strategy",
    "hub_private_repo", "log_level", "logging_strategy", "logging_first_step", "save_strategy",
    "eval_strategy", "evaluation_strategy", "do_eval", "do_train", "report_to", "run_name",
    "model_revision", "trust_remote_code", "dataset_config", "dataset_train_split", "dataset_test_split",
    "ddp_timeout", "dataloader_num_workers", "use_vllm", "vllm_mode", "remove_unused_columns",
    "precompute_ref_log_probs",  // temper always computes the references once, for the examples the run draws
};

static int same_key(const char *a, const char *b) { return name_eq(a, b, strlen(b)); }

// The flag a config key sets, or NULL when the key is one temper ignores (said on stderr).
static const char *config_key(const char *cmd, const char *key) {
    for (size_t i = 0; i < sizeof key_alias / sizeof key_alias[0]; i++)
        if (same_key(key_alias[i][0], key)) return key_alias[i][1];
    // bf16 is a flag of the trainers (--bf16 mixed precision); the others ignore the key
    if (same_key("bf16", key) && (!strcmp(cmd, "sft") || !strcmp(cmd, "dpo") || !strcmp(cmd, "kto") || !strcmp(cmd, "reward-model") ||
                                  !strcmp(cmd, "grpo") || !strcmp(cmd, "ppo")))
        return key;
    for (size_t i = 0; i < sizeof key_ignored / sizeof key_ignored[0]; i++)
        if (same_key(key_ignored[i], key)) {
            fprintf(stderr, "temper %s: config key '%s' has no meaning in temper; ignored\n", cmd, key);
            return NULL;
        }
    return key;
}

int flags_expand_config(const char *cmd, int argc, char **argv, flags_config *out) {
    memset(out, 0, sizeof *out);
    const char *path = NULL;
    int at = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) { path = argv[i + 1]; at = i; break; }
        if (!strncmp(argv[i], "--config=", 9)) { path = argv[i] + 9; at = i; break; }
    }
    int skip = at < 0 ? 0 : strchr(argv[at], '=') ? 1 : 2;
    tm_error err;
    json_doc *d = NULL;
    const json *r = NULL;
    if (path) {
        size_t pl = strlen(path);
        int yaml = (pl > 5 && !strcmp(path + pl - 5, ".yaml")) || (pl > 4 && !strcmp(path + pl - 4, ".yml"));
        if (yaml) {
            sbuf text;
            sbuf_init(&text);
            if (!config_yaml_to_json(path, &text, &err)) {
                d = json_parse(text.data, text.len, &err);
                if (!d) snprintf(err.msg, sizeof err.msg, "%s: YAML: not a plain mapping of settings", path);
            }
            sbuf_free(&text);
        } else {
            d = json_parse_file(path, &err);
        }
        if (!d) { fprintf(stderr, "temper %s: %s\n", cmd, err.msg); return -1; }
        r = json_root(d);
        if (r->type != JSON_OBJECT) { json_doc_free(d); fprintf(stderr, "temper %s: %s: not a JSON object\n", cmd, path); return -1; }
    }
    int n = r ? r->n : 0;
    out->argv = calloc((size_t)(argc + n + 1), sizeof(char *));
    out->owned = calloc((size_t)(n + 1), sizeof(char *));
    if (!out->argv || !out->owned) { json_doc_free(d); fprintf(stderr, "temper %s: out of memory\n", cmd); return -1; }
    out->argv[out->argc++] = argv[0];
    for (int i = 0; i < n; i++) {
        const json *v = &r->items[i];
        if (v->type == JSON_NULL) continue;  // null: leave the default
        const char *key = config_key(cmd, r->keys[i]);
        if (!key) continue;
        // one "--key=value" argument: booleans then parse like any value
        sbuf val;
        sbuf_init(&val);
        sbuf_printf(&val, "--%s=", key);
        switch (v->type) {
        case JSON_STRING: sbuf_put(&val, v->str, v->len); break;
        case JSON_NUMBER: sbuf_put(&val, v->str, v->len); break;
        case JSON_BOOL: sbuf_puts(&val, v->boolean ? "true" : "false"); break;
        case JSON_ARRAY:
            for (int k = 0; k < v->n; k++) {
                if (k) sbuf_puts(&val, ",");
                if (v->items[k].type == JSON_STRING || v->items[k].type == JSON_NUMBER) sbuf_put(&val, v->items[k].str, v->items[k].len);
            }
            break;
        case JSON_OBJECT: sbuf_json_value(&val, v); break;  // e.g. chat_template_kwargs: {enable_thinking: false}
        default: break;
        }
        out->argv[out->argc++] = out->owned[out->n_owned++] = val.data;
    }
    for (int i = 1; i < argc; i++) {
        if (i >= at && i < at + skip) continue;
        out->argv[out->argc++] = argv[i];
    }
    json_doc_free(d);
    return 0;
}

void flags_config_free(flags_config *c) {
    for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
    free(c->owned);
    free(c->argv);
    memset(c, 0, sizeof *c);
}
