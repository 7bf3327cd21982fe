// train/online_dpo: iterative online DPO / KTO rounds (see online_dpo.h).
#include "train/online_dpo.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "dist/dist.h"
#include "base/json.h"
#include "base/progress.h"
#include "base/rng.h"
#include "data/data.h"
#include "model/model.h"
#include "reward/math_answer.h"
#include "train/checkpoint.h"
#include "train/online.h"

void online_args_default(online_args *a, train_method method) {
    memset(a, 0, sizeof *a);
    a->method = method;
    a->ref_update = ONLINE_REF_FIXED;
    a->rounds = 2;
    a->epochs_per_round = 1.0;
    a->num_generations = 8;
    a->pairs_per_prompt = 1;
    a->max_prompt_length = 512;
    a->max_completion_length = 256;
    a->max_turns = 6;       // the paper's horizon
    a->tool_timeout = 20.0; // the paper's executor timeout (s)
    a->tools = "none";
    sample_params_default(&a->sp);
    a->seed = 42;
    train_args_default(&a->train, method);
}

int online_args_check(const online_args *a, tm_error *err) {
    if (!a->model || !a->data || !a->output_dir) return tm_fail(err, "--model, --data and --output-dir are required");
    if (a->method != TRAIN_DPO && a->method != TRAIN_KTO) return tm_fail(err, "--loss must be dpo or kto");
    if (a->rounds < 1) return tm_fail(err, "--rounds must be at least 1 (got %d)", a->rounds);
    if (!(a->epochs_per_round > 0) || !isfinite(a->epochs_per_round))
        return tm_fail(err, "--epochs-per-round must be a finite number > 0 (got %g)", a->epochs_per_round);
    if (a->num_generations < 2) return tm_fail(err, "--num-generations must be at least 2 (a pair needs two samples; got %d)", a->num_generations);
    if (a->pairs_per_prompt < 1) return tm_fail(err, "--pairs-per-prompt must be at least 1 (got %d)", a->pairs_per_prompt);
    if (a->max_prompt_length < 0) return tm_fail(err, "--max-prompt-length must be at least 0 (0: all; got %d)", a->max_prompt_length);
    if (a->max_completion_length < 1) return tm_fail(err, "--max-completion-length must be at least 1 (got %d)", a->max_completion_length);
    if (a->max_turns < 1) return tm_fail(err, "--max-turns must be at least 1 (got %d)", a->max_turns);
    if (!(a->tool_timeout > 0) || !isfinite(a->tool_timeout)) return tm_fail(err, "--tool-timeout must be a finite number > 0 (got %g)", a->tool_timeout);
    if (rollout_tool_from_name(a->tools) < 0) return tm_fail(err, "unknown --tools '%s' (none, calculator, python)", a->tools);
    if (online_prompt_style_check(a->prompt_style, err)) return -1;
    if (a->seed < 0) return tm_fail(err, "--seed must be at least 0 (got %d)", a->seed);
    const char *r = a->resume_from_checkpoint;
    if (r && strcmp(r, "true") && strcmp(r, "True") && strcmp(r, "last"))
        return tm_fail(err, "--resume-from-checkpoint must be true or last (it continues --output-dir; got \"%s\")", r);
    if (sample_params_check(&a->sp, err)) return -1;
    return train_args_check(&a->train, err);
}

// ---- filters and pairs ----

void online_filter(const rollout_traj *tr, int nprompts, int n, rollout_tool tool, uint8_t *keep, online_counts *c) {
    for (int g = 0; g < nprompts; g++)
        for (int s = 0; s < n; s++) {
            int i = g * n + s;
            const rollout_traj *t = &tr[i];
            keep[i] = 1;
            c->samples++;
            if (tool == ROLLOUT_TOOL_PYTHON) {
                // at least one call; ends on the model's turn (the turn limit ends on an
                // observation); the last observation not an error (get_dpo_dataset.py)
                const char *last = t->ncalls ? t->calls[t->ncalls - 1].output : NULL;
                if (!t->ncalls || t->finish == FINISH_MAX_TURNS || (last && strstr(last, "error"))) {
                    keep[i] = 0;
                    c->filtered++;
                    continue;
                }
            }
            for (int j = g * n; j < i && keep[i]; j++)
                if (keep[j] && tr[j].len == t->len && !memcmp(tr[j].ids, t->ids, sizeof(int) * (size_t)t->len)) {
                    keep[i] = 0;
                    c->duplicates++;
                }
        }
}

static void shuffle(int *v, int n, rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1);
        int t = v[i]; v[i] = v[j]; v[j] = t;
    }
}

int online_pairs(const int *correct, const uint8_t *keep, int nprompts, int n, int per_prompt, uint64_t seed, int *pairs,
                 online_counts *c) {
    rng r;
    rng_seed(&r, seed);
    int np = 0;
    int *C = malloc(sizeof(int) * 2 * (size_t)n), *W = C + n;
    if (!C) return -1;
    for (int g = 0; g < nprompts; g++) {
        int nc = 0, nw = 0;
        for (int s = 0; s < n; s++) {
            int i = g * n + s;
            if (!keep[i]) continue;
            if (correct[i]) C[nc++] = i;
            else W[nw++] = i;
        }
        c->prompts++;
        if (!nc && !nw) { c->prompts_none_kept++; continue; }
        if (!nw) { c->prompts_all_correct++; continue; }
        if (!nc) { c->prompts_all_wrong++; continue; }
        c->prompts_both++;
        shuffle(C, nc, &r);
        shuffle(W, nw, &r);
        // pair p = (C[i], W[(i + d) mod nw]), i = p mod nc, d = p / nc: distinct for p < nc * nw
        int k = per_prompt < nc * nw ? per_prompt : nc * nw;
        for (int p = 0; p < k; p++) {
            int i = p % nc, d = p / nc;
            pairs[2 * np] = C[i];
            pairs[2 * np + 1] = W[(i + d) % nw];
            np++;
        }
    }
    free(C);
    c->pairs += np;
    return np;
}

// ---- one round's data ----

typedef struct round_task {
    model m;
    online_task t;  // tokenizer, prompts, stops, tool, verifier options
} round_task;

static void task_free(round_task *T) {
    online_task_free(&T->t);
    model_free(&T->m);
}

// The policy and its task, loaded as `temper grpo` loads them (train/online.h).
static int task_load(const online_args *a, const char *policy, round_task *T, tm_error *err) {
    if (model_load(&T->m, policy, err)) return -1;
    if (a->train.bf16 && model_bf16_enable(&T->m, err)) return -1;  // --bf16: the sampler runs the trainer's bf16 GEMMs
    online_task_opts o = {policy, a->chat_template, a->prompt_style, a->prompt_suffix, a->data, a->tools, a->max_prompt_length, 0, NULL, 0};
    return online_task_load(&T->t, &T->m, &o, err);
}

// The trajectory's text (special tokens skipped) and the verifier's verdict (online_grade).
static int grade(round_task *T, const rollout_traj *tr, const char *gold, sbuf *text, int *correct, tm_error *err) {
    int found;
    return online_grade(T->t.tok, &T->t.eo, &T->t.qo, tr->ids, tr->len, gold, text, &found, correct, err);
}

static void put_ids(sbuf *b, const char *key, const int *v, int n) {
    sbuf_printf(b, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_printf(b, i ? ", %d" : "%d", v[i]);
    sbuf_puts(b, "]");
}

static void put_mask(sbuf *b, const char *key, const uint8_t *m, int n) {
    sbuf_printf(b, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_puts(b, i ? (m[i] ? ", 1" : ", 0") : (m[i] ? "1" : "0"));
    sbuf_puts(b, "]");
}

static void put_text(sbuf *b, const char *key, const char *s) {
    sbuf_printf(b, ", \"%s\": ", key);
    sbuf_json_str(b, s, strlen(s));
}

// One trajectory as a training side: "<side>_input_ids", "<side>_mask" and its text.
static void put_side(sbuf *b, const char *side, const rollout_traj *t, const char *text) {
    char k[64];
    snprintf(k, sizeof k, "%s_input_ids", side);
    put_ids(b, k, t->ids, t->len);
    snprintf(k, sizeof k, "%s_mask", side);
    put_mask(b, k, t->mask, t->len);
    put_text(b, side, text);
}

// Samples, grades, filters and pairs round K from policy; writes samples.jsonl, pairs.jsonl
// and (last, marking the data complete) data.json under rdir.
static int sample_round(const online_args *a, int K, const char *policy, const char *rdir, online_counts *c, tm_error *err) {
    round_task T;
    memset(&T, 0, sizeof T);
    memset(c, 0, sizeof *c);
    const int chunk = 32, n = a->num_generations;
    // a prompt has at most (n/2)^2 distinct (correct, incorrect) pairs
    const int ppp = a->pairs_per_prompt < n * n / 4 ? a->pairs_per_prompt : n * n / 4;
    int rc = -1;
    rollout_traj *tr = calloc((size_t)chunk * n, sizeof *tr);
    int *correct = calloc((size_t)chunk * n, sizeof *correct), *pairs = malloc(sizeof(int) * 2 * (size_t)chunk * ppp);
    uint8_t *keep = calloc((size_t)chunk * n, 1);
    char **text = calloc((size_t)chunk * n, sizeof *text);
    const int **pp = malloc(sizeof *pp * (size_t)chunk);
    int *pl = malloc(sizeof *pl * (size_t)chunk);
    sbuf samples, rows, t1;
    sbuf_init(&samples);
    sbuf_init(&rows);
    sbuf_init(&t1);
    if (!tr || !correct || !pairs || !keep || !text || !pp || !pl) { tm_fail(err, "out of memory"); goto done; }
    if (task_load(a, policy, &T, err)) goto done;
    progress pb;
    char label[32];
    snprintf(label, sizeof label, "round %d: sample", K);
    if (!a->quiet) progress_start(&pb, label, T.t.prompts.n, "prompts");
    // under mpirun (dist.h) rank r samples a contiguous block of the chunks, each with the
    // chunk's own seed and batch as one process does; rank 0 gathers the text in rank order
    int nchunks = (T.t.prompts.n + chunk - 1) / chunk, world = dist_size(), rank = dist_rank();
    int c0 = (int)((int64_t)nchunks * rank / world), c1 = (int)((int64_t)nchunks * (rank + 1) / world);
    for (int p0 = c0 * chunk; p0 < T.t.prompts.n && p0 < c1 * chunk; p0 += chunk) {
        int np = p0 + chunk <= T.t.prompts.n ? chunk : T.t.prompts.n - p0, total = np * n;
        for (int i = 0; i < np; i++) pp[i] = T.t.prompts.ex[p0 + i].seq[0].ids, pl[i] = T.t.prompts.ex[p0 + i].prompt_len;
        rollout_opts o;
        rollout_opts_default(&o);
        o.n = n;
        o.batch = total < 256 ? total : 256;
        o.max_new_tokens = a->max_completion_length;
        o.sp = a->sp;
        // a function of (seed, round, chunk): a round sampled again draws the same
        o.seed = (uint64_t)a->seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)K << 32) ^ (uint64_t)p0;
        online_rollout_opts(&T.t, &o);  // stops, tool, observation wrapper
        o.max_turns = a->max_turns;
        o.py.timeout_s = a->tool_timeout;
        rollout_backend be;
        rollout_model_ctx mctx;
        rollout_backend_model(&be, &mctx, &T.m);
        memset(tr, 0, sizeof *tr * (size_t)total);
        int r = rollout_run(&be, T.t.tok, pp, pl, np, &o, tr, err);
        for (int i = 0; !r && i < total; i++) {
            r = grade(&T, &tr[i], T.t.prompts.ex[p0 + i / n].answer, &t1, &correct[i], err);
            if (!r && !(text[i] = strdup(t1.data ? t1.data : ""))) r = tm_fail(err, "out of memory");
            c->correct += correct[i];
        }
        int npairs = 0;
        if (!r) {
            online_filter(tr, np, n, T.t.tool, keep, c);
            npairs = online_pairs(correct, keep, np, n, ppp, (uint64_t)a->seed * 31u + (uint64_t)K * 1000003u + (uint64_t)p0, pairs, c);
            if (npairs < 0) r = tm_fail(err, "out of memory");
        }
        for (int i = 0; !r && i < total; i++) {
            const rollout_traj *t = &tr[i];
            const data_example *e = &T.t.prompts.ex[p0 + i / n];
            sbuf_printf(&samples, "{\"round\": %d, \"prompt_index\": %d, \"sample\": %d", K, p0 + i / n, i % n);
            put_ids(&samples, "prompt_input_ids", e->seq[0].ids, e->prompt_len);
            put_ids(&samples, "completion_input_ids", t->ids, t->len);
            put_mask(&samples, "completion_mask", t->mask, t->len);
            sbuf_puts(&samples, ", \"completion_logprobs\": [");
            for (int k = 0; k < t->len; k++) { if (k) sbuf_puts(&samples, ", "); sbuf_json_float(&samples, t->logp[k]); }
            sbuf_puts(&samples, "]");
            put_text(&samples, "completion", text[i]);
            if (e->answer) put_text(&samples, "answer", e->answer);
            sbuf_printf(&samples, ", \"correct\": %s, \"kept\": %s, \"finish\": \"%s\", \"num_tool_calls\": %d}\n",
                        correct[i] ? "true" : "false", keep[i] ? "true" : "false", rollout_finish_name(t->finish), t->ncalls);
        }
        for (int q = 0; !r && q < npairs; q++) {
            int ci = pairs[2 * q], wi = pairs[2 * q + 1], g = p0 + ci / n;
            const data_example *e = &T.t.prompts.ex[g];
            if (a->method == TRAIN_DPO) {
                sbuf_printf(&rows, "{\"round\": %d, \"prompt_index\": %d", K, g);
                put_ids(&rows, "prompt_input_ids", e->seq[0].ids, e->prompt_len);
                put_side(&rows, "chosen", &tr[ci], text[ci]);
                put_side(&rows, "rejected", &tr[wi], text[wi]);
                sbuf_puts(&rows, "}\n");
            } else
                for (int side = 0; side < 2; side++) {  // M-KTO: each pair gives a desirable and an undesirable example
                    int i = side ? wi : ci;
                    sbuf_printf(&rows, "{\"round\": %d, \"prompt_index\": %d", K, g);
                    put_ids(&rows, "prompt_input_ids", e->seq[0].ids, e->prompt_len);
                    put_side(&rows, "completion", &tr[i], text[i]);
                    sbuf_printf(&rows, ", \"label\": %s}\n", side ? "false" : "true");
                }
        }
        for (int i = 0; i < total; i++) { rollout_traj_free(&tr[i]); free(text[i]); text[i] = NULL; }
        if (r) goto done;
        if (!a->quiet) progress_update(&pb, p0 + np);
    }
    if (!a->quiet) progress_finish(&pb);
    char path[4096];
    if (sbuf_check(&samples, err) || sbuf_check(&rows, err)) goto done;
    if (world > 1) {
        // the counts are sums; the lines, rank 0's in chunk order
        double cnt[] = {c->prompts, c->samples, c->correct, c->filtered, c->duplicates, c->prompts_both, c->prompts_all_correct,
                        c->prompts_all_wrong, c->prompts_none_kept, c->pairs};
        if (dist_allreduce_sum_f64(cnt, sizeof cnt / sizeof *cnt, err)) goto done;
        long *f[] = {&c->prompts, &c->samples, &c->correct, &c->filtered, &c->duplicates, &c->prompts_both, &c->prompts_all_correct,
                     &c->prompts_all_wrong, &c->prompts_none_kept, &c->pairs};
        for (size_t i = 0; i < sizeof f / sizeof *f; i++) *f[i] = (long)cnt[i];
        sbuf *mine[2] = {&samples, &rows};
        for (int k = 0; k < 2; k++) {
            char *all = NULL;
            size_t *lens = calloc((size_t)world, sizeof *lens), total = 0;
            if (!lens) { tm_fail(err, "out of memory"); goto done; }
            int grc = dist_gather_bytes(mine[k]->data ? mine[k]->data : "", mine[k]->len, &all, lens, err);
            for (int r = 0; r < world; r++) total += lens[r];
            free(lens);
            if (grc) { free(all); goto done; }
            sbuf_clear(mine[k]);
            if (rank == 0 && total) sbuf_put(mine[k], all, total);
            free(all);
            if (sbuf_check(mine[k], err)) goto done;
        }
        if (rank > 0) {  // rank 0 writes the round's files; the others wait for them (the caller's barrier)
            rc = 0;
            goto done;
        }
    }
    if (io_write_file_atomic(io_join(path, sizeof path, rdir, "samples.jsonl"), samples.data ? samples.data : "", samples.len, err)) goto done;
    if (io_write_file_atomic(io_join(path, sizeof path, rdir, "pairs.jsonl"), rows.data ? rows.data : "", rows.len, err)) goto done;
    sbuf_clear(&t1);
    sbuf_printf(&t1, "{\"round\": %d, \"policy\": ", K);
    sbuf_json_str(&t1, policy, strlen(policy));
    sbuf_printf(&t1, ", \"prompts\": %ld, \"samples\": %ld, \"accuracy\": ", c->prompts, c->samples);
    sbuf_json_float(&t1, c->samples ? (double)c->correct / (double)c->samples : 0.0);
    sbuf_printf(&t1, ", \"filtered\": %ld, \"duplicates\": %ld, \"prompts_both\": %ld, \"prompts_all_correct\": %ld, "
                     "\"prompts_all_wrong\": %ld, \"prompts_none_kept\": %ld, \"pairs\": %ld}\n",
                c->filtered, c->duplicates, c->prompts_both, c->prompts_all_correct, c->prompts_all_wrong, c->prompts_none_kept, c->pairs);
    if (sbuf_check(&t1, err)) goto done;
    if (io_write_file_atomic(io_join(path, sizeof path, rdir, "data.json"), t1.data, t1.len, err)) goto done;
    rc = 0;
done:
    for (int i = 0; tr && i < chunk * n; i++) rollout_traj_free(&tr[i]);
    for (int i = 0; text && i < chunk * n; i++) free(text[i]);
    free(tr); free(correct); free(pairs); free(keep); free(text); free(pp); free(pl);
    sbuf_free(&samples); sbuf_free(&rows); sbuf_free(&t1);
    task_free(&T);
    return rc;
}

// ---- the rounds ----

// Whether dir holds anything (a missing dir is empty).
static int has_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int any = 0;
    while (!any && (e = readdir(d))) any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return any;
}

// Reads data.json's counts back (a resumed round reports what its sampling found).
static int read_counts(const char *path, online_counts *c, tm_error *err) {
    json_doc *d = json_parse_file(path, err);
    if (!d) return -1;
    json *o = json_root(d);
    memset(c, 0, sizeof *c);
    c->prompts = json_get_int(o, "prompts", 0);
    c->samples = json_get_int(o, "samples", 0);
    c->filtered = json_get_int(o, "filtered", 0);
    c->duplicates = json_get_int(o, "duplicates", 0);
    c->prompts_both = json_get_int(o, "prompts_both", 0);
    c->prompts_all_correct = json_get_int(o, "prompts_all_correct", 0);
    c->prompts_all_wrong = json_get_int(o, "prompts_all_wrong", 0);
    c->prompts_none_kept = json_get_int(o, "prompts_none_kept", 0);
    c->pairs = json_get_int(o, "pairs", 0);
    c->correct = (long)llround(json_get_num(o, "accuracy", 0) * (double)c->samples);
    json_doc_free(d);
    return 0;
}

// Trains round K on rdir/pairs.jsonl from policy into rdir/model (resuming from its newest
// checkpoint when it has one).
static int train_round(const online_args *a, const char *policy, const char *rdir, tm_error *err) {
    char data[4096], out[4096], ckpt[4096];
    train_args t = a->train;
    t.model = policy;
    t.data = io_join(data, sizeof data, rdir, "pairs.jsonl");
    t.output_dir = io_join(out, sizeof out, rdir, "model");
    t.dataset_format = NULL;  // the method's: dpo pairs or kto examples (pre-tokenized)
    // fixed: the starting model every round; round: the round's starting policy (the default)
    t.ref_model = a->ref_update == ONLINE_REF_FIXED && strcmp(policy, a->model) ? a->model : NULL;
    t.num_train_epochs = a->epochs_per_round;
    t.quiet = a->quiet;
    t.resume_from_checkpoint = NULL;
    t.overwrite_output_dir = 1;  // the round's own directory: what a killed run left before a checkpoint
    if (checkpoint_latest(out, ckpt, sizeof ckpt) == 0) {
        t.resume_from_checkpoint = ckpt;
        t.overwrite_output_dir = 0;
    }
    if (dist_barrier(err)) return -1;  // every rank looked before rank 0 may clear the directory
    if (train_run(&t, err)) return tm_fail_prefix(err, "%s", rdir);
    return 0;
}

int online_run(const online_args *a, tm_error *err) {
    if (online_args_check(a, err)) return -1;
    int resume = a->resume_from_checkpoint != NULL;
    // under mpirun rank 0 checks and writes the directories and round files; every rank
    // samples its share and trains (train_run is data parallel); barriers order the files
    int rank = dist_rank();
    if (!resume && rank == 0 && has_entries(a->output_dir))
        return tm_fail(err, "--output-dir %s is not empty: continue it with --resume-from-checkpoint true, or choose a new one", a->output_dir);
    if (resume && !io_is_dir(a->output_dir)) return tm_fail(err, "--resume-from-checkpoint: --output-dir %s does not exist", a->output_dir);
    if (!strcmp(a->output_dir, a->model)) return tm_fail(err, "--output-dir must not be the --model directory");
    if (rank == 0 && io_mkdirs(a->output_dir, err)) return -1;
    if (dist_barrier(err)) return -1;
    char policy[4096];
    snprintf(policy, sizeof policy, "%s", a->model);
    static const char *loss[] = {"sft", "dpo", "kto", "rm"};
    for (int K = 1; K <= a->rounds; K++) {
        char rdir[4096], name[32], path[4096], model_dir[4096];
        snprintf(name, sizeof name, "round-%d", K);
        io_join(rdir, sizeof rdir, a->output_dir, name);
        io_join(model_dir, sizeof model_dir, rdir, "model");
        io_join(path, sizeof path, model_dir, "model.safetensors");
        int trained_model = io_exists(path);
        if (io_exists(io_join(path, sizeof path, rdir, "round.json"))) {
            if (trained_model) snprintf(policy, sizeof policy, "%s", model_dir);
            fprintf(stderr, "temper online-%s: round %d is complete (%s)\n", loss[a->method], K, rdir);
            continue;
        }
        if (rank == 0 && io_mkdirs(rdir, err)) return -1;
        if (dist_barrier(err)) return -1;
        online_counts c;
        if (!io_exists(io_join(path, sizeof path, rdir, "data.json"))) {
            if (sample_round(a, K, policy, rdir, &c, err)) return tm_fail_prefix(err, "round %d", K);
            if (dist_barrier(err)) return -1;  // rank 0 has written pairs.jsonl
        } else if (read_counts(path, &c, err))
            return -1;
        fprintf(stderr, "temper online-%s: round %d from %s: %ld samples of %ld prompts, accuracy %.4f; %ld filtered, %ld duplicates; "
                        "prompts: %ld with both outcomes, %ld only correct, %ld only incorrect, %ld with none kept; %ld pairs\n",
                loss[a->method], K, policy, c.samples, c.prompts, c.samples ? (double)c.correct / (double)c.samples : 0.0, c.filtered,
                c.duplicates, c.prompts_both, c.prompts_all_correct, c.prompts_all_wrong, c.prompts_none_kept, c.pairs);
        int trained = 0;
        if (c.pairs > 0) {
            if (train_round(a, policy, rdir, err)) return -1;
            trained = 1;
        } else
            fprintf(stderr, "temper online-%s: round %d has no pairs: nothing trained, the policy stays %s\n", loss[a->method], K, policy);
        sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "{\"round\": %d, \"loss\": \"%s\", \"policy\": ", K, loss[a->method]);
        sbuf_json_str(&b, policy, strlen(policy));
        const char *ref = a->ref_update == ONLINE_REF_FIXED ? a->model : policy;
        sbuf_puts(&b, ", \"ref_model\": ");
        sbuf_json_str(&b, ref, strlen(ref));
        sbuf_printf(&b, ", \"ref_update\": \"%s\", \"trained\": %s", a->ref_update == ONLINE_REF_FIXED ? "fixed" : "round", trained ? "true" : "false");
        if (trained) {
            sbuf_puts(&b, ", \"model\": ");
            sbuf_json_str(&b, model_dir, strlen(model_dir));
        }
        sbuf_puts(&b, "}\n");
        int rc = sbuf_check(&b, err);
        if (!rc && rank == 0) rc = io_write_file_atomic(io_join(path, sizeof path, rdir, "round.json"), b.data, b.len, err);
        sbuf_free(&b);
        if (rc || dist_barrier(err)) return -1;  // the round's model and files are on disk for every rank
        if (trained) snprintf(policy, sizeof policy, "%s", model_dir);
    }
    fprintf(stderr, "temper online-%s: %d rounds done; the last policy is %s\n", loss[a->method], a->rounds, policy);
    return 0;
}
