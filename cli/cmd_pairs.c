// temper pairs / temper filter: `temper sample` output → offline-trainer data.
//
//   temper pairs --data samples.jsonl --out pairs.jsonl [--per-prompt K] [--seed S] [--ids] [--gold-as-chosen]
//       reads `temper sample` or `temper grade` rows; groups samples by "prompt" (a string
//       or a message list, written out as it is); each prompt with at least one correct and one
//       incorrect sample gives up to K preference pairs {"prompt", "chosen", "rejected"}
//       (TRL's format, what `temper dpo` reads). Candidates are ordered cDPO/Light-R1
//       style (task/pairs.h): chosen from the most frequent correct "extracted" answer
//       first, rejected from the most frequent incorrect answer first, answers grouped
//       by the verifier as maj@k groups them ("0.5" and "1/2" are one answer).
//       --gold-as-chosen: a prompt with no correct sample takes the data's reference
//       solution as its one chosen candidate ("solution", which `temper sample` copies
//       from MATH rows and GSM8K answers, else "\boxed{<answer>}"), against its incorrect
//       samples; prompts with neither are skipped and counted.
//       --ids also writes "prompt_input_ids", "chosen_input_ids", "rejected_input_ids":
//       the exact sampled ids (`temper sample` writes them), which
//       `temper dpo` trains on without a tokenizer.
//   temper filter --data samples.jsonl --out F.jsonl [--min-pass-rate a] [--max-pass-rate b]
//                 [--correct-only] [--one-per-prompt]
//       per-prompt pass rate = correct / n; keeps the samples of prompts whose rate is in
//       [a, b] (Light-R1's difficulty bands), optionally only correct ones (rejection-
//       sampled SFT data: "prompt"/"completion" is what `temper sft` reads) and only the
//       first kept sample of each prompt. Kept lines are written byte-for-byte.
//
// A sample's verdict is "correct" (or "label" when "correct" is absent); a line without
// either is an error ("file:line: reason"). Outputs are written atomically.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/rng.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "task/pairs.h"
#include "task/problems.h"

typedef struct sample {
    long lineno;
    size_t line_off, line_len;   // the raw line in the samples' text buffer
    char *prompt;                // the prompt as compact JSON (a string or a message list): the group key
    char *completion;            // decoded string (may be NULL for filter)
    char *reference;             // --gold-as-chosen: "solution", else \boxed{gold}; NULL when neither
    char *extracted;             // NULL when null/absent
    int correct;
    char *prompt_ids, *completion_ids;  // compact JSON arrays (--ids), else NULL
    int masked;                  // completion_mask holds zeros (tool output tokens)
    int group;
} sample;

typedef struct group {
    int first;       // index of its first sample
    int *members;
    int n, cap, ncorrect;
} group;

typedef struct sample_set {
    sbuf text;       // all raw lines, back to back
    sample *s;
    int n, cap;
    group *g;
    int ng, gcap;
    int *table;      // open addressing: group index + 1, 0 empty
    size_t tcap;
} sample_set;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// NULL when out of memory.
static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

// The group of prompt, a new one if needed; -1 when out of memory.
static int find_group(sample_set *S, const char *prompt) {
    if ((size_t)(S->ng + 1) * 2 > S->tcap) {
        size_t nc = S->tcap ? S->tcap * 2 : 1024;
        int *t = calloc(nc, sizeof *t);
        if (!t) return -1;
        for (int i = 0; i < S->ng; i++) {
            size_t h = hash_str(S->s[S->g[i].first].prompt) & (nc - 1);
            while (t[h]) h = (h + 1) & (nc - 1);
            t[h] = i + 1;
        }
        free(S->table);
        S->table = t;
        S->tcap = nc;
    }
    size_t h = hash_str(prompt) & (S->tcap - 1);
    while (S->table[h]) {
        int gi = S->table[h] - 1;
        if (!strcmp(S->s[S->g[gi].first].prompt, prompt)) return gi;
        h = (h + 1) & (S->tcap - 1);
    }
    if (S->ng == S->gcap) {
        int nc = S->gcap ? S->gcap * 2 : 64;
        group *ng = realloc(S->g, (size_t)nc * sizeof *ng);
        if (!ng) return -1;
        S->g = ng;
        S->gcap = nc;
    }
    S->table[h] = S->ng + 1;
    memset(&S->g[S->ng], 0, sizeof(group));
    S->g[S->ng].first = S->n;  // the sample being added
    return S->ng++;
}

// -1 when out of memory.
static int group_add(group *g, int i, int correct) {
    if (g->n == g->cap) {
        int nc = g->cap ? g->cap * 2 : 8;
        int *m = realloc(g->members, (size_t)nc * sizeof *m);
        if (!m) return -1;
        g->members = m;
        g->cap = nc;
    }
    g->members[g->n++] = i;
    g->ncorrect += correct;
    return 0;
}

// The array as compact JSON text; NULL when out of memory.
static char *ids_text(const json *v) {
    sbuf b;
    sbuf_init(&b);
    sbuf_json_value(&b, v);
    char *r = sbuf_check(&b, NULL) ? NULL : dup_n(b.data ? b.data : "", b.len);
    sbuf_free(&b);
    return r;
}

static void sample_free(sample *s) {
    free(s->prompt); free(s->completion); free(s->reference); free(s->extracted); free(s->prompt_ids); free(s->completion_ids);
}

static int ids_ok(const json *v) {
    if (!v || v->type != JSON_ARRAY) return 0;
    for (int i = 0; i < v->n; i++) if (!json_is_int(&v->items[i])) return 0;
    return 1;
}

// The chosen side --gold-as-chosen takes from a row: its reference solution, else its gold
// answer as "\boxed{gold}" (what the verifier reads as that answer); NULL when neither.
static char *reference_of(const json *o, int *oom) {
    const json *sol = json_get(o, "solution");
    char *r = NULL;
    if (sol && sol->type == JSON_STRING) r = dup_n(sol->str, sol->len);
    else {
        char *g = NULL;
        tm_error e;
        if (task_row_gold(o, &g, &e) == 0 && g) {
            sbuf b;
            sbuf_init(&b);
            sbuf_printf(&b, "\\boxed{%s}", g);
            r = sbuf_check(&b, NULL) ? NULL : b.data;
            if (!r) sbuf_free(&b);
            free(g);
        } else if (g || (json_get(o, "gold") || json_get(o, "answer"))) {
            free(g);
            return NULL;  // a gold of the wrong type: no reference
        } else return NULL;
    }
    if (!r) *oom = 1;
    return r;
}

// Reads the samples. need_completion: pairs; want_ids: keep the id arrays; want_ref: keep
// each row's reference solution (--gold-as-chosen).
static int load_samples(const char *cmd, const char *path, int need_completion, int want_ids, int want_ref, sample_set *S) {
    tm_error err;
    io_lines r;
    if (io_lines_open(&r, path, &err)) return cli_fail(cmd, "%s", err.msg);
    sbuf_init(&S->text);
    char *line;
    long len;
    int status = 0;
    while ((len = io_lines_next(&r, &line)) >= 0) {
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == (size_t)len) continue;  // blank line
        json_doc *d = json_parse(line, (size_t)len, &err);
        if (!d) { status = cli_fail(cmd, "%s:%ld: %s", path, r.lineno, err.msg); break; }
        json *o = json_root(d);
        json *p = json_get(o, "prompt"), *c = json_get(o, "completion");
        json *v = json_get(o, "correct");
        if (!v || v->type != JSON_BOOL) v = json_get(o, "label");
        const char *why = NULL;
        if (o->type != JSON_OBJECT) why = "not a JSON object";
        else if (!p || (p->type != JSON_STRING && p->type != JSON_ARRAY)) why = "need a \"prompt\" (a string or a message list)";
        else if (need_completion && (!c || c->type != JSON_STRING)) why = "need a string \"completion\"";
        else if (!v || v->type != JSON_BOOL) why = "no verdict: need \"correct\" or \"label\" true/false (sample prompts that have an \"answer\")";
        json *pi = want_ids ? json_get(o, "prompt_input_ids") : NULL, *ci = want_ids ? json_get(o, "completion_input_ids") : NULL;
        if (!why && want_ids && !(ids_ok(pi) && ids_ok(ci)))
            why = "--ids needs integer arrays \"prompt_input_ids\" and \"completion_input_ids\" (temper sample writes them)";
        if (why) { json_doc_free(d); status = cli_fail(cmd, "%s:%ld: %s", path, r.lineno, why); break; }
        if (S->n == S->cap) {
            int nc = S->cap ? S->cap * 2 : 256;
            sample *ns = realloc(S->s, (size_t)nc * sizeof *ns);
            if (!ns) { json_doc_free(d); status = cli_fail(cmd, "%s:%ld: out of memory", path, r.lineno); break; }
            S->s = ns;
            S->cap = nc;
        }
        sample *s = &S->s[S->n];
        memset(s, 0, sizeof *s);
        s->lineno = r.lineno;
        s->line_off = S->text.len;
        s->line_len = (size_t)len;
        sbuf_put(&S->text, line, (size_t)len);
        s->prompt = ids_text(p);  // compact JSON: equal prompts have equal text
        if (c && c->type == JSON_STRING) s->completion = dup_n(c->str, c->len);
        json *e = json_get(o, "extracted");
        if (e && e->type == JSON_STRING) s->extracted = dup_n(e->str, e->len);
        s->correct = v->boolean;
        if (want_ids) {
            s->prompt_ids = ids_text(pi);
            s->completion_ids = ids_text(ci);
            json *m = json_get(o, "completion_mask");
            if (m && m->type == JSON_ARRAY)
                for (int i = 0; i < m->n; i++) if (m->items[i].type == JSON_NUMBER && m->items[i].num == 0) { s->masked = 1; break; }
        }
        int ref_oom = 0;
        if (want_ref) s->reference = reference_of(o, &ref_oom);
        int oom = S->text.failed || ref_oom || !s->prompt || (c && c->type == JSON_STRING && !s->completion) ||
                  (e && e->type == JSON_STRING && !s->extracted) || (want_ids && (!s->prompt_ids || !s->completion_ids));
        json_doc_free(d);  // c and e point into it
        if (!oom) s->group = find_group(S, s->prompt);
        if (oom || s->group < 0 || group_add(&S->g[s->group], S->n, s->correct)) {
            sample_free(s);
            status = cli_fail(cmd, "%s:%ld: out of memory", path, r.lineno);
            break;
        }
        S->n++;
    }
    io_lines_close(&r);
    return status;
}

static void free_samples(sample_set *S) {
    for (int i = 0; i < S->n; i++) sample_free(&S->s[i]);
    for (int i = 0; i < S->ng; i++) free(S->g[i].members);
    free(S->s); free(S->g); free(S->table);
    sbuf_free(&S->text);
}

// The candidates of one side (correct or not) of group g in pair order (task/pairs.h:
// answer classes by the verifier, by frequency, shuffled within a class, identical texts
// once), as sample indices. Returns the count written to out, -1 when out of memory.
static int side_order(const sample_set *S, const group *g, int correct, const math_equal_opts *qo, rng *R, int *out) {
    const char **ans = malloc((size_t)(g->n + 1) * sizeof *ans), **txt = malloc((size_t)(g->n + 1) * sizeof *txt);
    int *idx = malloc((size_t)(g->n + 1) * sizeof *idx), *ord = malloc((size_t)(g->n + 1) * sizeof *ord), n = 0;
    if (!ans || !txt || !idx || !ord) { free(ans); free(txt); free(idx); free(ord); return -1; }
    for (int k = 0; k < g->n; k++) {
        const sample *s = &S->s[g->members[k]];
        if (s->correct != correct) continue;
        ans[n] = s->extracted, txt[n] = s->completion, idx[n++] = g->members[k];
    }
    int m = task_side_order(ans, txt, n, qo, R, ord);
    for (int k = 0; k < m; k++) out[k] = idx[ord[k]];
    free(ans); free(txt); free(idx); free(ord);
    return m;
}

static int write_out(const char *cmd, const char *path, const sbuf *b) {
    tm_error err;
    if (sbuf_check(b, &err)) return cli_fail(cmd, "%s: %s", path, err.msg);
    if (io_write_file_atomic(path, b->data ? b->data : "", b->len, &err)) return cli_fail(cmd, "%s", err.msg);
    return 0;
}

int cmd_pairs(int argc, char **argv) {
    const char *data = NULL, *out = NULL;
    int per_prompt = 1, seed = 0, ids = 0, gold_chosen = 0;
    flag flags[] = {
        {"data", FLAG_STR, &data, "samples JSONL from temper sample (needs \"correct\"/\"label\")"},
        {"out", FLAG_STR, &out, "output JSONL of {\"prompt\", \"chosen\", \"rejected\"}"},
        {"per-prompt", FLAG_INT, &per_prompt, "at most K pairs per prompt"},
        {"seed", FLAG_INT, &seed, "shuffle seed within an answer class"},
        {"ids", FLAG_BOOL, &ids, "also write prompt/chosen/rejected_input_ids (the sampled ids)"},
        {"gold-as-chosen", FLAG_BOOL, &gold_chosen,
         "a prompt with no correct sample takes its reference \"solution\" (else \\boxed{answer}) as the chosen side"},
    };
    int npos = 0;
    int rc = flags_parse("pairs", "--data samples.jsonl --out pairs.jsonl [--per-prompt K] [--seed S] [--ids] [--gold-as-chosen]",
                         flags, (int)(sizeof flags / sizeof flags[0]), argc, argv, NULL, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!data || !out) return cli_fail("pairs", "--data and --out are required (see temper pairs --help)") + 1;
    if (per_prompt < 1) return cli_fail("pairs", "--per-prompt must be >= 1, got %d", per_prompt) + 1;
    if (gold_chosen && ids)
        return cli_fail("pairs", "--gold-as-chosen and --ids do not go together: a reference solution has no sampled ids") + 1;
    sample_set S = {0};
    if (load_samples("pairs", data, 1, ids, gold_chosen, &S)) { free_samples(&S); return 1; }
    rng R;
    rng_seed(&R, (uint64_t)(int64_t)seed);
    math_equal_opts qo;  // answer classes as maj@k groups them: "0.5" and "1/2" are one
    math_equal_opts_default(&qo);
    sbuf b;
    sbuf_init(&b);
    int with_pairs = 0, all_correct = 0, all_wrong = 0, masked = 0, from_gold = 0, no_ref = 0;
    long npairs = 0;
    int *C = malloc((size_t)(S.n ? S.n : 1) * sizeof *C), *W = malloc((size_t)(S.n ? S.n : 1) * sizeof *W);
    int oom = !C || !W;
    for (int gi = 0; gi < S.ng && !oom; gi++) {
        group *g = &S.g[gi];
        if (g->ncorrect == g->n) { all_correct++; continue; }
        if (g->ncorrect == 0) all_wrong++;
        const char *ref = NULL;  // --gold-as-chosen: the data's reference solution is the one chosen candidate
        if (g->ncorrect == 0 && gold_chosen)
            for (int k = 0; k < g->n && !ref; k++) ref = S.s[g->members[k]].reference;
        if (g->ncorrect == 0 && !ref) { no_ref += gold_chosen; continue; }
        int nc = ref ? 1 : side_order(&S, g, 1, &qo, &R, C), nw = side_order(&S, g, 0, &qo, &R, W);
        if (nc < 0 || nw < 0) { oom = 1; break; }
        long total = (long)nc * nw, k = per_prompt < total ? per_prompt : total;
        with_pairs++;
        from_gold += ref != NULL;
        for (long p = 0; p < k; p++) {
            int i, j;
            task_pair_at(p, nc, nw, &i, &j);
            const sample *ch = ref ? NULL : &S.s[C[i]], *rj = &S.s[W[j]];
            const char *chosen = ref ? ref : ch->completion;
            sbuf_puts(&b, "{\"prompt\": ");
            sbuf_puts(&b, rj->prompt);
            sbuf_puts(&b, ", \"chosen\": ");
            sbuf_json_str(&b, chosen, strlen(chosen));
            sbuf_puts(&b, ", \"rejected\": ");
            sbuf_json_str(&b, rj->completion, strlen(rj->completion));
            if (ids) {
                sbuf_printf(&b, ", \"prompt_input_ids\": %s, \"chosen_input_ids\": %s, \"rejected_input_ids\": %s",
                            ch->prompt_ids, ch->completion_ids, rj->completion_ids);
                masked += ch->masked + rj->masked;
            }
            sbuf_puts(&b, "}\n");
            npairs++;
        }
    }
    free(C); free(W);
    rc = oom ? cli_fail("pairs", "out of memory pairing %d samples", S.n) : write_out("pairs", out, &b);
    if (!rc && !flags_quiet) {
        fprintf(stderr, "temper pairs: %d samples, %d prompts: %d with pairs (%ld pairs), %d all-correct, %d all-wrong -> %s\n",
                S.n, S.ng, with_pairs, npairs, all_correct, all_wrong, out);
        if (gold_chosen)
            fprintf(stderr, "temper pairs: --gold-as-chosen: %d all-wrong prompts paired with their reference solution, %d without one skipped\n",
                    from_gold, no_ref);
        if (masked)
            fprintf(stderr, "temper pairs: warning: %d paired completions hold tool-output tokens (completion_mask 0); "
                            "pre-tokenized rows carry no mask, so dpo trains them\n", masked);
    }
    sbuf_free(&b);
    free_samples(&S);
    return rc;
}

int cmd_filter(int argc, char **argv) {
    const char *data = NULL, *out = NULL;
    double lo = 0.0, hi = 1.0;
    int correct_only = 0, one = 0;
    flag flags[] = {
        {"data", FLAG_STR, &data, "samples JSONL from temper sample (needs \"correct\"/\"label\")"},
        {"out", FLAG_STR, &out, "output JSONL: the kept lines, unchanged"},
        {"min-pass-rate", FLAG_FLOAT, &lo, "keep prompts with pass rate >= a"},
        {"max-pass-rate", FLAG_FLOAT, &hi, "keep prompts with pass rate <= b"},
        {"correct-only", FLAG_BOOL, &correct_only, "keep only correct samples (rejection-sampled SFT data)"},
        {"one-per-prompt", FLAG_BOOL, &one, "keep only the first kept sample of each prompt"},
    };
    int npos = 0;
    int rc = flags_parse("filter",
                         "--data samples.jsonl --out F.jsonl [--min-pass-rate a] [--max-pass-rate b] [--correct-only] [--one-per-prompt]",
                         flags, 6, argc, argv, NULL, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!data || !out) return cli_fail("filter", "--data and --out are required (see temper filter --help)") + 1;
    if (!(lo >= 0 && hi <= 1 && lo <= hi)) return cli_fail("filter", "need 0 <= --min-pass-rate <= --max-pass-rate <= 1, got [%g, %g]", lo, hi) + 1;
    sample_set S = {0};
    if (load_samples("filter", data, 0, 0, 0, &S)) { free_samples(&S); return 1; }
    int *taken = calloc((size_t)(S.ng ? S.ng : 1), sizeof *taken);
    if (!taken) { free_samples(&S); return cli_fail("filter", "out of memory"); }
    int kept_prompts = 0, all_correct = 0, all_wrong = 0;
    long kept = 0;
    for (int gi = 0; gi < S.ng; gi++) {
        const group *g = &S.g[gi];
        double rate = (double)g->ncorrect / g->n;
        // a tolerance so that --max-pass-rate 0.3333 style bands and 2/3 == 0.6666... behave
        int in = rate >= lo - 1e-12 && rate <= hi + 1e-12;
        taken[gi] = in ? 0 : -1;
        if (in) kept_prompts++;
        all_correct += g->ncorrect == g->n;
        all_wrong += g->ncorrect == 0;
    }
    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < S.n; i++) {
        const sample *s = &S.s[i];
        if (taken[s->group] < 0) continue;
        if (correct_only && !s->correct) continue;
        if (one && taken[s->group]) continue;
        taken[s->group] = 1;
        sbuf_put(&b, S.text.data + s->line_off, s->line_len);
        sbuf_puts(&b, "\n");
        kept++;
    }
    rc = write_out("filter", out, &b);
    if (!rc && !flags_quiet)
        fprintf(stderr, "temper filter: %d samples, %d prompts (%d all-correct, %d all-wrong); %d prompts with pass rate in [%g, %g]; kept %ld samples -> %s\n",
                S.n, S.ng, all_correct, all_wrong, kept_prompts, lo, hi, kept, out);
    sbuf_free(&b);
    free(taken);
    free_samples(&S);
    return rc;
}
