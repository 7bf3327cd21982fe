// temper demo: issue 18's pipeline, a script of the public commands. Each stage calls
// the entry point `temper <command>` runs (cmd_task, cmd_sft, cmd_eval, ...) with an
// argv array, in this process: the demo has no training, sampling or grading code of
// its own, so it shows exactly what a user typing the commands gets. Stages:
//   data (task synth: train, validation and test splits), tokenizer train, init;
//   curriculum SFT (levels 1-3, then 1-5 with some Step-DPO-format rows);
//   then each post-training method, every one starting from the SFT model (so each row
//   of the table reads "SFT + this method" against the SFT row): rejection-sampling SFT,
//   KTO, Step-DPO, cDPO, online DPO (2 rounds), multi-turn DPO with the python tool,
//   GRPO with reverse KL, GRPO with DPH-RL's forward KL, PPO;
//   a greedy eval on the held-out test split after each (pass@1 per level, Wilson 95%
//   intervals), pass@8 / maj@8 after SFT and the two GRPO variants; report.md,
//   curves.svg (temper plot), report.html.
// Each command's stdout goes to OUT/logs/STAGE.log; its progress bar stays on stderr,
// and the demo prints a line per stage with the elapsed time and the total ETA. A
// post-training method that fails is named in the report with its error line; the
// others still run.
// --quick: the same pipeline at toy sizes (about a minute on 2 cores); it fails unless
// every stage wrote its outputs and SFT beats the untrained model.
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "cli/demo.h"
#include "cli/flags.h"

#define MARKER ".temper-demo"
#define MAX_ARGS 128

typedef struct demo {
    const char *out;
    int quick, seed;
    double t0;
    double w_done, w_total;  // estimated cost of the stages done / of all (CPU seconds)
    int istage, nstage;
    demo_row rows[DEMO_MAX_ROWS];
    int nrows;
    double stage_secs;       // wall seconds of the last stage
    double metrics_offset;
    int quiet;               // the demo's own --quiet
    char why[1024];          // why the last stage failed (its error line)
    sbuf failures;           // "- METHOD: why" lines for the report
    int nfailed;
} demo;

// An argv under construction (the strings are not copied: they outlive the call).
typedef struct argb {
    char *v[MAX_ARGS];
    int n;
} argb;

static void args_add(argb *a, ...) {
    va_list ap;
    va_start(ap, a);
    for (const char *s; (s = va_arg(ap, const char *));)
        if (a->n < MAX_ARGS - 1) a->v[a->n++] = (char *)s;
    va_end(ap);
    a->v[a->n] = NULL;
}

static void args_add_list(argb *a, const char *const *list) {
    for (; *list; list++)
        if (a->n < MAX_ARGS - 1) a->v[a->n++] = (char *)*list;
    a->v[a->n] = NULL;
}

static void fmt_time(char *b, size_t n, double s) {
    if (s < 0) s = 0;
    snprintf(b, n, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
}

// Runs one command: fn(argv), its stdout in OUT/logs/NAME.log. `weight` is the stage's
// estimated cost, for the ETA. Returns the command's status (0: ok); on failure d->why
// holds the command's error line.
static int stage_argv(demo *d, const char *name, double weight, int (*fn)(int, char **), argb *a) {
    double el = now_seconds() - d->t0;
    double rate = d->w_done > 0 && el > 1 ? el / d->w_done : 0.5;  // wall s per cost unit: 2 cores at first
    char e1[16], e2[16];
    fmt_time(e1, sizeof e1, el);
    fmt_time(e2, sizeof e2, rate * (d->w_total - d->w_done));
    fprintf(stderr, "\n[demo %d/%d] %s: temper %s ...   (elapsed %s, total ETA %s)\n", ++d->istage, d->nstage, name, a->v[0], e1, e2);
    char logp[4096], lname[128];
    snprintf(lname, sizeof lname, "logs/%s.log", name);
    io_join(logp, sizeof logp, d->out, lname);
    fflush(stdout);
    int saved = dup(1), fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0) {
        if (saved >= 0) close(saved);
        if (fd >= 0) close(fd);
        snprintf(d->why, sizeof d->why, "%.400s: cannot open the stage log", logp);
        return cli_fail("demo", "%s", d->why);
    }
    dup2(fd, 1);
    close(fd);
    double t = now_seconds();
    cli_last_error[0] = 0;
    int rc = fn(a->n, a->v);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    d->stage_secs = now_seconds() - t;
    d->w_done += weight;
    flags_quiet = d->quiet;  // a command's --quiet stays with that command
    progress_set_quiet(d->quiet);
    if (rc) {
        snprintf(d->why, sizeof d->why, "%s (exit %d; logs/%s.log)", cli_last_error[0] ? cli_last_error : "failed", rc, name);
        return cli_fail("demo", "stage %s failed (temper %s exited %d); its output: %s", name, a->v[0], rc, logp);
    }
    return 0;
}

// stage(d, name, weight, fn, "cmd", args..., NULL)
static int stage(demo *d, const char *name, double weight, int (*fn)(int, char **), const char *cmd, ...) {
    argb a = {.n = 0};
    a.v[a.n++] = (char *)cmd;
    va_list ap;
    va_start(ap, cmd);
    for (const char *s; (s = va_arg(ap, const char *));)
        if (a.n < MAX_ARGS - 1) a.v[a.n++] = (char *)s;
    va_end(ap);
    a.v[a.n] = NULL;
    return stage_argv(d, name, weight, fn, &a);
}

// The stage wrote this file (or directory)?
static int wrote(demo *d, const char *stage_name, const char *rel) {
    char p[4096];
    io_join(p, sizeof p, d->out, rel);
    if (io_exists(p)) return 0;
    snprintf(d->why, sizeof d->why, "stage %s ran but did not write %s", stage_name, rel);
    return cli_fail("demo", "stage %s ran but did not write %s", stage_name, p);
}

static const char *path(demo *d, char *buf, const char *rel) { return io_join(buf, 4096, d->out, rel); }

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

// Lines of a JSONL file (0 if missing); with `key`, only lines containing it.
static int count_lines(demo *d, const char *rel, const char *key) {
    char p[4096];
    FILE *f = fopen(path(d, p, rel), "r");
    if (!f) return 0;
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0)
        if (!key || strstr(line, key)) n++;
    free(line);
    fclose(f);
    return n;
}

// Greedy eval on a test split -> a row of the table; k > 1 adds pass@k / maj@k from a
// sampled eval of the first kprobs problems. `tools`: calculator (the task's) or python.
static int eval_row(demo *d, const char *label, const char *model_rel, const char *tag, double train_secs, int k, int kprobs,
                    const char *max_new, const char *test_rel, const char *tools) {
    char model[4096], test[4096], od[4096], rel[256], summ[4096], seed[16], lim[16], ks[16], name[96];
    path(d, model, model_rel);
    path(d, test, test_rel);
    snprintf(rel, sizeof rel, "eval/%s", tag);
    path(d, od, rel);
    snprintf(seed, sizeof seed, "%d", d->seed);
    snprintf(name, sizeof name, "eval-%s", tag);
    double w = d->quick ? 1 : 15;
    int untrained = !strcmp(tag, "init");
    snprintf(lim, sizeof lim, "%d", d->quick ? 40 : 100);
    if (stage(d, name, untrained ? w / 2 : w, cmd_eval, "eval", "--model", model, "--data", test, "--prompt-style", "plain", "--tools",
              tools, "--n", "1", "--temperature", "0", "--max-new-tokens", max_new, "--seed", seed, "--output-dir", od, "--quiet",
              untrained ? "--limit" : NULL, lim, NULL))
        return -1;
    demo_row *r = &d->rows[d->nrows];
    memset(r, 0, sizeof *r);
    snprintf(r->stage, sizeof r->stage, "%s", label);
    snprintf(r->model, sizeof r->model, "%s", model);
    snprintf(r->test, sizeof r->test, "%s %s", test_rel, tools);
    r->seconds = train_secs;
    snprintf(rel, sizeof rel, "eval/%s/samples.jsonl", tag);
    path(d, r->samples, rel);
    snprintf(rel, sizeof rel, "eval/%s/summary.json", tag);
    if (wrote(d, name, rel) || demo_read_summary(path(d, summ, rel), r, 1)) return -1;
    if (k > 1) {
        snprintf(rel, sizeof rel, "eval/%s-k", tag);
        path(d, od, rel);
        snprintf(ks, sizeof ks, "%d", k);
        snprintf(lim, sizeof lim, "%d", kprobs);
        snprintf(name, sizeof name, "eval-%s-pass%d", tag, k);
        if (stage(d, name, w * k * kprobs / 500.0, cmd_eval, "eval", "--model", model, "--data", test, "--prompt-style", "plain",
                  "--tools", tools, "--n", ks, "--temperature", "0.7", "--max-new-tokens", max_new, "--seed", seed, "--limit", lim,
                  "--output-dir", od, "--quiet", NULL))
            return -1;
        snprintf(rel, sizeof rel, "eval/%s-k/summary.json", tag);
        if (wrote(d, name, rel) || demo_read_summary(path(d, summ, rel), r, k)) return -1;
    }
    if (d->nrows < DEMO_MAX_ROWS - 1) d->nrows++;
    fprintf(stderr, "[demo] %s: greedy pass@1 %.3f on %d held-out problems\n", label, r->pass1, r->problems);
    // an accuracy point on the curves, at the step where this model stands
    char mp[4096];
    FILE *f = fopen(path(d, mp, "metrics.jsonl"), "a");
    if (f) {
        fprintf(f, "{\"step\": %.0f, \"stage\": \"eval-%s\", \"accuracy\": %.4f}\n", d->metrics_offset, tag, r->pass1);
        fclose(f);
    }
    return 0;
}

// Held-out log-likelihood: the sum of the test completions' log-probs under a model
// (temper score); the same tokenizer for every model, so sums compare. NAN on error.
static double score_sum(demo *d, const char *model_rel, const char *tag) {
    char model[4096], test[4096], outp[4096], rel[256], name[64];
    snprintf(rel, sizeof rel, "eval/score-%s.jsonl", tag);
    snprintf(name, sizeof name, "score-%s", tag);
    if (stage(d, name, d->quick ? 0.5 : 3, cmd_score, "score", "--model", path(d, model, model_rel), "--data", path(d, test, "data/test.jsonl"),
              "--out", path(d, outp, rel), "--quiet", NULL) ||
        wrote(d, name, rel))
        return NAN;
    io_lines in;
    tm_error err;
    if (io_lines_open(&in, outp, &err)) { cli_fail("demo", "%s", err.msg); return NAN; }
    char *line;
    long len;
    double sum = 0;
    int n = 0;
    while ((len = io_lines_next(&in, &line)) > 0) {
        json_doc *j = json_parse(line, (size_t)len, &err);
        if (!j) continue;
        sum += json_get_num(json_root(j), "logprob", NAN);
        n++;
        json_doc_free(j);
    }
    io_lines_close(&in);
    fprintf(stderr, "[demo] %s: held-out log-likelihood %.1f over %d completions\n", tag, sum, n);
    return n ? sum : NAN;
}

// ============================================================================
// GRPO hyperparameters: both GRPO stages (reverse KL, and DPH-RL's forward KL on the
// rehearsal set) take exactly these, so they differ only in the divergence. Tune GRPO
// here (and its beta, GRPO_BETA, the reverse-KL coefficient) and nowhere else.
static const char *const grpo_args_full[] = {
    "--num-generations", "8", "--per-device-train-batch-size", "32", "--gradient-accumulation-steps", "2",
    "--max-steps", "40", "--learning-rate", "5e-5", "--temperature", "1.0", NULL};
static const char *const grpo_args_quick[] = {
    "--num-generations", "4", "--per-device-train-batch-size", "8", "--gradient-accumulation-steps", "2",
    "--max-steps", "2", "--learning-rate", "5e-5", "--temperature", "1.0", NULL};
#define GRPO_BETA "0.04"
#define W_GRPO_FULL 200  // its CPU seconds (measured: 201 s with forward KL), for the ETA
// ============================================================================

// Sizes and budgets of the post-training stages: full (measured in docs/demo-plan.md) | quick.
typedef struct sizes {
    const char *max_new, *seed;
    const char *n_sample, *n_step, *steps_small, *steps_rs, *steps_pref, *bs_pref;
    const char *n_locate, *reh_data, *k_reh, *ppo_steps, *ppo_bs;
    int K, kprobs;
    double w_sample, w_rs, w_kto, w_cdpo, w_step, w_odpo, w_mt, w_reh, w_grpo, w_ppo, w_eval;
} sizes;

// Records a failed method for the report (and keeps going).
static void method_failed(demo *d, const char *method) {
    sbuf_printf(&d->failures, "- %s: %s\n", method, d->why[0] ? d->why : "failed");
    d->nfailed++;
    d->why[0] = 0;
}

// Each method below starts from models/sft-2 and ends in a row of the table.

// Rejection-sampling SFT: sample the SFT model on the validation prompts, keep the
// correct samples of prompts it does not always solve, fine-tune on them. The samples
// (correct and not, labelled) also feed KTO and cDPO.
static int m_rs_sft(demo *d, const sizes *z) {
    char sft2[4096], p[4096], q[4096], o[4096];
    path(d, sft2, "models/sft-2");
    if (stage(d, "sample", z->w_sample, cmd_sample, "sample", "--model", sft2, "--data", path(d, p, "data/prompts.jsonl"), "--limit",
              z->n_sample, "--n", "4", "--temperature", "0.8", "--tools", "calculator", "--prompt-style", "plain", "--max-new-tokens",
              z->max_new, "--seed", z->seed, "--out", path(d, q, "data/samples.jsonl"), "--quiet", NULL) ||
        wrote(d, "sample", "data/samples.jsonl") ||
        stage(d, "rs-filter", 0.5, cmd_filter, "filter", "--data", q, "--correct-only", "--max-pass-rate", "0.9", "--out",
              path(d, p, "data/rs-sft.jsonl"), "--quiet", NULL) ||
        wrote(d, "rs-filter", "data/rs-sft.jsonl"))
        return -1;
    fprintf(stderr, "[demo] samples: %d of %d correct; %d kept for rejection-sampling SFT\n", count_lines(d, "data/samples.jsonl", "\"correct\": true"),
            count_lines(d, "data/samples.jsonl", NULL), count_lines(d, "data/rs-sft.jsonl", NULL));
    if (stage(d, "rs-sft", z->w_rs, cmd_sft, "sft", "--model", sft2, "--data", p, "--output-dir", path(d, o, "models/rs-sft"), "--max-steps",
              z->steps_rs, "--per-device-train-batch-size", z->bs_pref, "--learning-rate", "3e-4", "--warmup-steps", "2",
              "--lr-scheduler-type", "cosine", "--save-steps", "0", "--logging-steps", "2", "--seed", z->seed, "--overwrite-output-dir",
              NULL) ||
        wrote(d, "rs-sft", "models/rs-sft/model.safetensors"))
        return -1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, o, "rs-sft", &d->metrics_offset)) return -1;
    return eval_row(d, "SFT + rejection-sampling SFT", "models/rs-sft", "rs-sft", secs, 0, 0, z->max_new, "data/test.jsonl", "calculator");
}

// KTO on the labelled self-samples (correct: desirable, wrong: undesirable), the
// desirable weight set so that lambda_D n_D = lambda_U n_U (the KTO paper's advice for
// imbalanced data: the SFT model's samples are mostly wrong).
static int m_kto(demo *d, const sizes *z) {
    char sft2[4096], p[4096], o[4096], wd[32];
    path(d, sft2, "models/sft-2");
    int n = count_lines(d, "data/samples.jsonl", NULL), nd = count_lines(d, "data/samples.jsonl", "\"correct\": true");
    snprintf(wd, sizeof wd, "%.3f", nd > 0 && n > nd ? fmin(10.0, (double)(n - nd) / nd) : 1.0);
    if (wrote(d, "kto", "data/samples.jsonl") ||
        stage(d, "kto", z->w_kto, cmd_kto, "kto", "--model", sft2, "--data", path(d, p, "data/samples.jsonl"), "--output-dir",
              path(d, o, "models/kto"), "--max-steps", z->steps_pref, "--per-device-train-batch-size", z->bs_pref, "--learning-rate", "5e-5",
              "--beta", "0.1", "--desirable-weight", wd, "--warmup-steps", "2", "--save-steps", "0", "--logging-steps", "2", "--seed", z->seed,
              "--overwrite-output-dir", NULL) ||
        wrote(d, "kto", "models/kto/model.safetensors"))
        return -1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, o, "kto", &d->metrics_offset)) return -1;
    return eval_row(d, "SFT + KTO (labelled self-samples)", "models/kto", "kto", secs, 0, 0, z->max_new, "data/test.jsonl", "calculator");
}

// cDPO: pairs of the self-samples; a model fine-tuned on correct samples and one on
// wrong ones score each rejected token (critical tokens); DPO with those weights.
static int m_cdpo(demo *d, const sizes *z) {
    char sft2[4096], p[4096], q[4096], o[4096], pos[4096], neg[4096], w[4096];
    path(d, sft2, "models/sft-2");
    path(d, pos, "models/cdpo-positive");
    path(d, neg, "models/cdpo-negative");
    if (stage(d, "cdpo-pairs", 0.5, cmd_pairs, "pairs", "--data", path(d, p, "data/samples.jsonl"), "--out", path(d, q, "data/pairs.jsonl"),
              "--seed", z->seed, "--quiet", NULL) ||
        wrote(d, "cdpo-pairs", "data/pairs.jsonl") ||
        stage(d, "cdpo-wrong", 0.5, cmd_filter, "filter", "--data", p, "--max-pass-rate", "0", "--out", path(d, o, "data/wrong.jsonl"),
              "--quiet", NULL) ||
        stage(d, "cdpo-positive", z->w_cdpo / 4, cmd_sft, "sft", "--model", sft2, "--data", path(d, p, "data/rs-sft.jsonl"), "--output-dir",
              pos, "--max-steps", z->steps_small, "--per-device-train-batch-size", z->bs_pref, "--learning-rate", "3e-4", "--save-steps",
              "0", "--logging-steps", "2", "--seed", z->seed, "--overwrite-output-dir", NULL) ||
        stage(d, "cdpo-negative", z->w_cdpo / 4, cmd_sft, "sft", "--model", sft2, "--data", o, "--output-dir", neg, "--max-steps",
              z->steps_small, "--per-device-train-batch-size", z->bs_pref, "--learning-rate", "3e-4", "--save-steps", "0",
              "--logging-steps", "2", "--seed", z->seed, "--overwrite-output-dir", NULL) ||
        stage(d, "cdpo-critical-tokens", z->w_cdpo / 8, cmd_critical_tokens, "critical-tokens", "--positive", pos, "--negative", neg,
              "--data", q, "--out", path(d, w, "data/token-weights.jsonl"), "--quiet", NULL) ||
        wrote(d, "cdpo-critical-tokens", "data/token-weights.jsonl"))
        return -1;
    fprintf(stderr, "[demo] cDPO: %d pairs\n", count_lines(d, "data/pairs.jsonl", NULL));
    if (stage(d, "cdpo", z->w_cdpo * 3 / 8, cmd_dpo, "dpo", "--model", sft2, "--data", q, "--token-weights", w, "--output-dir",
              path(d, o, "models/cdpo"), "--max-steps", z->steps_pref, "--per-device-train-batch-size", z->bs_pref, "--learning-rate",
              "5e-5", "--beta", "0.1", "--warmup-steps", "2", "--save-steps", "0", "--logging-steps", "2", "--seed", z->seed,
              "--overwrite-output-dir", NULL) ||
        wrote(d, "cdpo", "models/cdpo/model.safetensors"))
        return -1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, o, "cdpo", &d->metrics_offset)) return -1;
    return eval_row(d, "SFT + cDPO (critical-token weights)", "models/cdpo", "cdpo", secs, 0, 0, z->max_new, "data/test.jsonl", "calculator");
}

// Step-DPO: the SFT model's own wrong step-by-step solutions, the first wrong step
// located by the verifier, corrections sampled from the prefix before it; DPO on the
// steps. Stage-2 SFT saw some rows in this format ("Let's think step by step.\nStep 1:").
static int m_step_dpo(demo *d, const sizes *z) {
    char sft2[4096], p[4096], q[4096], o[4096];
    path(d, sft2, "models/sft-2");
    if (stage(d, "step-pairs", z->w_step / 2, cmd_step_pairs, "step-pairs", "--model", sft2, "--data", path(d, p, "data/step-prompts.jsonl"),
              "--out", path(d, q, "data/step-pairs.jsonl"), "--limit", z->n_step, "--num-locate", z->n_locate, "--num-correct", z->n_locate,
              "--max-new-tokens", z->max_new, "--seed", z->seed, "--quiet", NULL) ||
        wrote(d, "step-pairs", "data/step-pairs.jsonl"))
        return -1;
    // at most 3 passes over the pairs: mining finds few (9 in the full run), and 20 steps
    // of 16 over 9 pairs overfit them (-7 points, docs/demo-plan.md)
    int npairs = count_lines(d, "data/step-pairs.jsonl", NULL), bsz = atoi(z->bs_pref), cap = atoi(z->steps_pref);
    int nsteps = (3 * npairs + bsz - 1) / bsz;
    char steps[16];
    snprintf(steps, sizeof steps, "%d", nsteps < 1 ? 1 : nsteps > cap ? cap : nsteps);
    fprintf(stderr, "[demo] Step-DPO: %d step pairs, %s steps\n", npairs, steps);
    if (stage(d, "step-dpo", z->w_step / 2, cmd_dpo, "dpo", "--model", sft2, "--data", q, "--dataset-format", "step", "--output-dir",
              path(d, o, "models/step-dpo"), "--max-steps", steps, "--per-device-train-batch-size", z->bs_pref, "--learning-rate",
              "5e-5", "--beta", "0.1", "--warmup-steps", "2", "--save-steps", "0", "--logging-steps", "2", "--seed", z->seed,
              "--overwrite-output-dir", NULL) ||
        wrote(d, "step-dpo", "models/step-dpo/model.safetensors"))
        return -1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, o, "step-dpo", &d->metrics_offset)) return -1;
    return eval_row(d, "SFT + Step-DPO", "models/step-dpo", "step-dpo", secs, 0, 0, z->max_new, "data/test.jsonl", "calculator");
}

// Online DPO, 2 rounds of sample / grade / pair / train on calculator trajectories
// (each calculator result is a tool turn, masked from the loss).
static int m_online_dpo(demo *d, const sizes *z) {
    char sft2[4096], p[4096], o[4096], rd[4096];
    path(d, sft2, "models/sft-2");
    if (stage(d, "online-dpo", z->w_odpo, cmd_online_dpo, "online-dpo", "--model", sft2, "--data", path(d, p, "data/dpo-prompts.jsonl"),
              "--output-dir", path(d, o, "models/online-dpo"), "--rounds", "2", "--num-generations", d->quick ? "4" : "8", "--prompt-style",
              "plain", "--tools", "calculator", "--learning-rate", "5e-5", "--max-completion-length", z->max_new, "--temperature", "1.0",
              "--seed", z->seed, "--logging-steps", "1", NULL) ||
        wrote(d, "online-dpo", "models/online-dpo/round-1/round.json"))
        return -1;
    // a round with no pairs trains nothing: the last policy is the last round that trained
    const char *fin = io_exists(path(d, p, "models/online-dpo/round-2/model/model.safetensors"))   ? "models/online-dpo/round-2/model"
                      : io_exists(path(d, p, "models/online-dpo/round-1/model/model.safetensors")) ? "models/online-dpo/round-1/model"
                                                                                                   : "models/sft-2";
    double secs = d->stage_secs;
    for (int k = 1; k <= 2; k++) {
        char rel[64], nm[32];
        snprintf(rel, sizeof rel, "models/online-dpo/round-%d/model", k);
        snprintf(nm, sizeof nm, "online-dpo-%d", k);
        if (demo_append_metrics(d->out, path(d, rd, rel), nm, &d->metrics_offset)) return -1;
    }
    return eval_row(d, "SFT + online DPO (2 rounds, calculator turns masked)", fin, "online-dpo", secs, 0, 0, z->max_new, "data/test.jsonl",
                    "calculator");
}

// Multi-turn DPO on python trajectories (the tool outputs masked): the SFT model has
// seen python rows at levels 4-5 (stage 2); one round of online DPO with the python
// tool on level 4-5 prompts, evaluated with the python tool on the level 4-5 test
// problems (python-tool rows of the same split).
static int m_multiturn(demo *d, const sizes *z) {
    char sft2[4096], p[4096], o[4096];
    path(d, sft2, "models/sft-2");
    if (stage(d, "multi-turn-dpo", z->w_mt, cmd_online_dpo, "online-dpo", "--model", sft2, "--data", path(d, p, "data/py-prompts.jsonl"),
              "--output-dir", path(d, o, "models/multi-turn-dpo"), "--rounds", "1", "--num-generations", "4", "--prompt-style", "plain",
              "--tools", "python", "--max-turns", "2", "--learning-rate", "5e-5", "--max-completion-length", z->max_new, "--temperature",
              "1.0", "--seed", z->seed, "--logging-steps", "1", NULL) ||
        wrote(d, "multi-turn-dpo", "models/multi-turn-dpo/round-1/round.json"))
        return -1;
    const char *fin = io_exists(path(d, p, "models/multi-turn-dpo/round-1/model/model.safetensors")) ? "models/multi-turn-dpo/round-1/model"
                                                                                                     : "models/sft-2";
    fprintf(stderr, "[demo] multi-turn DPO: %d python trajectory pairs%s\n", count_lines(d, "models/multi-turn-dpo/round-1/pairs.jsonl", NULL),
            strcmp(fin, "models/sft-2") ? "" : " (none: the SFT model is evaluated)");
    double secs = d->stage_secs;
    char rd[4096];
    if (demo_append_metrics(d->out, path(d, rd, "models/multi-turn-dpo/round-1/model"), "multi-turn-dpo", &d->metrics_offset)) return -1;
    // the SFT model with the python tool on the same problems: the row to compare with
    if (eval_row(d, "SFT, python tool (L4-5)", "models/sft-2", "sft-python", 0, 0, 0, z->max_new, "data/test-py.jsonl", "python")) return -1;
    return eval_row(d, "SFT + multi-turn DPO (python tool, L4-5)", fin, "multi-turn-dpo", secs, 0, 0, z->max_new, "data/test-py.jsonl",
                    "python");
}

// GRPO with the verifier reward and reverse KL to the SFT model (grpo_args, GRPO_BETA).
static int m_grpo(demo *d, const sizes *z) {
    char sft2[4096], p[4096], o[4096];
    path(d, sft2, "models/sft-2");
    argb a = {.n = 0};
    args_add(&a, "grpo", "--model", sft2, "--data", path(d, p, "data/prompts.jsonl"), "--output-dir", path(d, o, "models/grpo"),
             "--prompt-style", "plain", "--tools", "calculator", "--max-completion-length", z->max_new, "--logging-steps", "1",
             "--save-steps", "0", "--seed", z->seed, "--overwrite-output-dir", NULL);
    args_add_list(&a, d->quick ? grpo_args_quick : grpo_args_full);
    args_add(&a, "--beta", GRPO_BETA, NULL);
    if (stage_argv(d, "grpo", z->w_grpo, cmd_grpo, &a) || wrote(d, "grpo", "models/grpo/model.safetensors")) return -1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, o, "grpo", &d->metrics_offset)) return -1;
    return eval_row(d, "SFT + GRPO (verifier reward, reverse KL)", "models/grpo", "grpo", secs, z->K, z->kprobs, z->max_new, "data/test.jsonl",
                    "calculator");
}

// DPH-RL: the SFT model's correct samples of prompts it solves (temper rehearsal) are
// kept, and GRPO (the same arguments) holds the policy to them by forward KL in place
// of reverse KL: mass-covering, meant to keep pass@k.
static int m_grpo_fkl(demo *d, const sizes *z) {
    char sft2[4096], p[4096], q[4096], o[4096];
    path(d, sft2, "models/sft-2");
    if (stage(d, "rehearsal", z->w_reh, cmd_rehearsal, "rehearsal", "--model", sft2, "--data", path(d, p, z->reh_data), "--output",
              path(d, q, "data/rehearsal.jsonl"), "--k", z->k_reh, "--solved-threshold", d->quick ? "1" : "3", "--prompt-style", "plain", "--tools", "calculator",
              "--max-completion-length", z->max_new, "--temperature", "1.0", "--seed", z->seed, "--quiet", NULL) ||
        wrote(d, "rehearsal", "data/rehearsal.jsonl"))
        return -1;
    fprintf(stderr, "[demo] rehearsal: %d stored correct samples\n", count_lines(d, "data/rehearsal.jsonl", NULL));
    argb a = {.n = 0};
    args_add(&a, "grpo", "--model", sft2, "--data", path(d, p, "data/prompts.jsonl"), "--output-dir", path(d, o, "models/grpo-fkl"),
             "--prompt-style", "plain", "--tools", "calculator", "--max-completion-length", z->max_new, "--logging-steps", "1",
             "--save-steps", "0", "--seed", z->seed, "--overwrite-output-dir", NULL);
    args_add_list(&a, d->quick ? grpo_args_quick : grpo_args_full);
    args_add(&a, "--beta", "0", "--divergence", "forward_kl", "--rehearsal", q, NULL);
    if (stage_argv(d, "grpo-fkl", z->w_grpo, cmd_grpo, &a) || wrote(d, "grpo-fkl", "models/grpo-fkl/model.safetensors")) return -1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, o, "grpo-fkl", &d->metrics_offset)) return -1;
    return eval_row(d, "SFT + GRPO (DPH-RL: forward KL on rehearsal)", "models/grpo-fkl", "grpo-fkl", secs, z->K, z->kprobs, z->max_new,
                    "data/test.jsonl", "calculator");
}

// PPO: the verifier as the reward, a value head on the policy (shared), GAE.
static int m_ppo(demo *d, const sizes *z) {
    char sft2[4096], p[4096], o[4096];
    path(d, sft2, "models/sft-2");
    if (stage(d, "ppo", z->w_ppo, cmd_ppo, "ppo", "--model", sft2, "--data", path(d, p, "data/prompts.jsonl"), "--output-dir",
              path(d, o, "models/ppo"), "--value-head", "shared", "--prompt-style", "plain", "--tools", "calculator", "--max-steps",
              z->ppo_steps, "--per-device-train-batch-size", z->ppo_bs, "--num-ppo-epochs", "2", "--learning-rate", "2e-5", "--kl-coef",
              "0.05", "--response-length", z->max_new, "--temperature", "1.0", "--logging-steps", "1", "--save-steps", "0", "--seed",
              z->seed, "--overwrite-output-dir", NULL) ||
        wrote(d, "ppo", "models/ppo/model.safetensors"))
        return -1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, o, "ppo", &d->metrics_offset)) return -1;
    return eval_row(d, "SFT + PPO (verifier reward)", "models/ppo", "ppo", secs, 0, 0, z->max_new, "data/test.jsonl", "calculator");
}

int cmd_demo(int argc, char **argv) {
    demo D = {0};
    demo *d = &D;
    d->out = "demo-out";
    int keep = 0;
    flag flags[] = {
        {"quick", FLAG_BOOL, &d->quick, "the same pipeline at toy sizes (about a minute on 2 cores); fails unless every stage ran and SFT beats the untrained model"},
        {"seed", FLAG_INT, &d->seed, "seed of the data, the model and every stage: the same seed gives the same table"},
        {"out", FLAG_STR, &d->out, "output directory (data, models, evals, logs, report.md, curves.svg, report.html)"},
        {"keep", FLAG_BOOL, &keep, "reuse a non-empty --out that is not an earlier demo's (default: refuse)"},
    };
    int rc = flags_parse("demo", "[--quick] [--seed S] [--out DIR]", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    d->quiet = flags_quiet;
    tm_error err;
    char p[4096], q[4096], r2[4096];
    // A fresh output directory: an earlier demo's (it has the marker) is removed.
    if (io_is_dir(d->out)) {
        if (io_exists(path(d, p, MARKER))) {
            if (nftw(d->out, rm_entry, 16, FTW_DEPTH | FTW_PHYS)) return cli_fail("demo", "%s: cannot remove the earlier demo", d->out);
        } else if (!keep) {
            return cli_fail("demo", "--out %s exists and is not an earlier demo's output: choose another --out", d->out);
        }
    }
    if (io_mkdirs(path(d, p, "logs"), &err) || io_mkdirs(path(d, p, "data"), &err) || io_mkdirs(path(d, p, "eval"), &err) ||
        io_write_file_atomic(path(d, p, MARKER), "temper demo output\n", 19, &err))
        return cli_fail("demo", "%s", err.msg);
    sbuf_init(&d->failures);

    const int Q = d->quick;
    char seed[16], seed1[16], seed2[16];
    snprintf(seed, sizeof seed, "%d", d->seed);
    snprintf(seed1, sizeof seed1, "%d", d->seed + 1);
    snprintf(seed2, sizeof seed2, "%d", d->seed + 2);
    // sizes: full (measured in docs/demo-plan.md) | quick
    const char *n_sft1 = Q ? "800" : "8000", *n_sft2 = Q ? "300" : "8000", *n_test = Q ? "40" : "500";
    const char *lv1 = Q ? "1-2" : "1-3", *lv2 = Q ? "1-2" : "1-5", *lvt = Q ? "1-2" : "1-5";
    const char *n_rl = Q ? "32" : "1000", *n_dpo = Q ? "16" : "120";
    const char *n_step_sft = Q ? "100" : "1500", *n_py = Q ? "100" : "1000", *n_py_test = Q ? "10" : "100", *n_py_prompts = Q ? "8" : "48";
    const char *steps1 = Q ? "120" : "350", *steps2 = Q ? "20" : "300", *bs = Q ? "8" : "16";
    sizes z = {
        .max_new = Q ? "64" : "160", .seed = seed,
        .n_sample = Q ? "32" : "200", .n_step = Q ? "32" : "48", .steps_small = Q ? "2" : "15", .steps_rs = Q ? "4" : "40",
        .steps_pref = Q ? "2" : "20", .bs_pref = Q ? "4" : "16", .n_locate = Q ? "8" : "4", .reh_data = Q ? "data/prompts.jsonl" : "data/dpo-prompts.jsonl", .k_reh = Q ? "16" : "4",
        .ppo_steps = Q ? "1" : "8", .ppo_bs = Q ? "8" : "32",
        .K = Q ? 4 : 8, .kprobs = Q ? 20 : 100,
        // CPU seconds per stage, for the ETA (full: measured, docs/demo-plan.md; quick: guessed)
        .w_sample = Q ? 2 : 23, .w_rs = Q ? 1 : 16, .w_kto = Q ? 1 : 26, .w_cdpo = Q ? 2 : 36, .w_step = Q ? 3 : 44,
        .w_odpo = Q ? 4 : 40, .w_mt = Q ? 3 : 10, .w_reh = Q ? 1 : 8, .w_grpo = Q ? 4 : W_GRPO_FULL, .w_ppo = Q ? 2 : 38,
        .w_eval = Q ? 1 : 15,
    };
    double w_sft1 = Q ? 20 : 190, w_sft2 = Q ? 4 : 170;
    // stages: data 10, tokenizer, init, eval + score (init), sft 2, eval + pass@k + score
    // (sft); rs-sft 4 (sample, filter, sft, eval), kto 2, cdpo 7 (pairs, filter, 2 sft,
    // critical-tokens, dpo, eval), step-dpo 3, online-dpo 2, multi-turn 3, grpo 3
    // (with pass@k), grpo-fkl 4 (rehearsal), ppo 2; plot
    d->nstage = 10 + 2 + 2 + 2 + 3 + 4 + 2 + 7 + 3 + 2 + 3 + 3 + 4 + 2 + 1;
    double w_passk = z.w_eval * z.K * z.kprobs / 500.0, w_score = Q ? 0.5 : 3;
    d->w_total = 7 + w_sft1 + w_sft2 + z.w_eval * (0.5 + 1 + 10) + 3 * w_passk + 2 * w_score + z.w_sample + z.w_rs + z.w_kto +
                 z.w_cdpo + z.w_step + z.w_odpo + z.w_mt + z.w_reh + 2 * z.w_grpo + z.w_ppo;
    d->t0 = now_seconds();
    fprintf(stderr, "temper demo%s: a tiny Llama learns GSM8K-style word problems from scratch, then post-training; output in %s/\n",
            Q ? " --quick" : "", d->out);

    // 1. data: curriculum SFT files (stage 2 with Step-DPO-format and python rows), the
    // held-out test split, validation prompts for the post-training stages
    if (stage(d, "data-sft1", 1, cmd_task, "task", "synth", "--level", lv1, "--n", n_sft1, "--seed", seed, "--tools", "calculator",
              "--out", path(d, p, "data/sft1.jsonl"), NULL) ||
        stage(d, "data-sft2", 1, cmd_task, "task", "synth", "--level", lv2, "--n", n_sft2, "--seed", seed1, "--tools", "calculator",
              "--out", path(d, p, "data/sft2.jsonl"), NULL) ||
        stage(d, "data-step-sft", 0.5, cmd_task, "task", "synth", "--level", lv2, "--n", n_step_sft, "--seed", seed2, "--tools", "calculator",
              "--step-labels", "--out", path(d, p, "data/step-sft.jsonl"), NULL) ||
        stage(d, "data-py", 0.5, cmd_task, "task", "synth", "--level", "4-5", "--n", n_py, "--seed", seed, "--tools", "python", "--out",
              path(d, p, "data/py.jsonl"), NULL) ||
        stage(d, "data-test", 0.5, cmd_task, "task", "synth", "--level", lvt, "--n", n_test, "--seed", seed, "--split", "test",
              "--tools", "calculator", "--out", path(d, p, "data/test.jsonl"), NULL) ||
        stage(d, "data-test-py", 0.5, cmd_task, "task", "synth", "--level", "4-5", "--n", n_py_test, "--seed", seed, "--split", "test",
              "--tools", "python", "--out", path(d, p, "data/test-py.jsonl"), NULL) ||
        stage(d, "data-prompts", 0.5, cmd_task, "task", "synth", "--level", lv2, "--n", n_rl, "--seed", seed, "--split", "validation",
              "--tools", "calculator", "--out", path(d, p, "data/prompts.jsonl"), NULL) ||
        stage(d, "data-dpo-prompts", 0.5, cmd_task, "task", "synth", "--level", lv2, "--n", n_dpo, "--seed", seed1, "--split",
              "validation", "--tools", "calculator", "--out", path(d, p, "data/dpo-prompts.jsonl"), NULL) ||
        stage(d, "data-step-prompts", 0.5, cmd_task, "task", "synth", "--level", Q ? "1" : "2-5", "--n", z.n_step, "--seed", seed2,
              "--split", "validation", "--tools", "calculator", "--step-labels", "--out", path(d, p, "data/step-prompts.jsonl"), NULL) ||
        stage(d, "data-py-prompts", 0.5, cmd_task, "task", "synth", "--level", "4-5", "--n", n_py_prompts, "--seed", seed, "--split",
              "validation", "--tools", "python", "--out", path(d, p, "data/py-prompts.jsonl"), NULL))
        return 1;

    // 2. tokenizer and model
    char tok[4096], init[4096], tdata[16384];
    snprintf(tdata, sizeof tdata, "%s,%s,%s,%s", path(d, p, "data/sft1.jsonl"), path(d, q, "data/sft2.jsonl"), path(d, r2, "data/step-sft.jsonl"),
             path(d, tok, "data/py.jsonl"));
    path(d, tok, "tokenizer");
    path(d, init, "models/init");
    if (stage(d, "tokenizer", 2, cmd_tokenizer, "tokenizer", "train", "--data", tdata, "--vocab-size", "1024", "--out", tok, NULL) ||
        wrote(d, "tokenizer", "tokenizer/tokenizer.json") ||
        stage(d, "init", 0.5, cmd_init, "init", "--preset", "tiny", "--tokenizer", tok, "--seed", seed, "--out", init, NULL) ||
        wrote(d, "init", "models/init/config.json"))
        return 1;
    if (eval_row(d, "untrained (init)", "models/init", "init", 0, 0, 0, z.max_new, "data/test.jsonl", "calculator")) return 1;
    double ll_init = score_sum(d, "models/init", "init");
    if (isnan(ll_init)) return 1;

    // 3. curriculum SFT: easy levels first, then all (Light-R1's two stages, small); stage
    // 2 mixes in the Step-DPO-format rows and the python rows the later stages need
    char sft1[4096], sft2[4096], mix[16384];
    path(d, sft1, "models/sft-1");
    path(d, sft2, "models/sft-2");
    if (stage(d, "sft-1", w_sft1, cmd_sft, "sft", "--model", init, "--data", path(d, p, "data/sft1.jsonl"), "--output-dir", sft1,
              "--max-steps", steps1, "--per-device-train-batch-size", bs, "--learning-rate", Q ? "2e-3" : "1.5e-3", "--warmup-steps",
              Q ? "6" : "30", "--lr-scheduler-type", "cosine", "--save-steps", "0", "--logging-steps", "10", "--seed", seed,
              "--overwrite-output-dir", NULL) ||
        wrote(d, "sft-1", "models/sft-1/model.safetensors"))
        return 1;
    double secs = d->stage_secs;
    if (demo_append_metrics(d->out, sft1, "sft-1", &d->metrics_offset)) return 1;
    snprintf(mix, sizeof mix, "%s,%s,%s", path(d, p, "data/sft2.jsonl"), path(d, q, "data/step-sft.jsonl"), path(d, r2, "data/py.jsonl"));
    if (stage(d, "sft-2", w_sft2, cmd_sft, "sft", "--model", sft1, "--data", mix, "--output-dir", sft2, "--max-steps", steps2,
              "--per-device-train-batch-size", bs, "--learning-rate", Q ? "2e-4" : "1e-3", "--warmup-steps", Q ? "2" : "20",
              "--lr-scheduler-type", "cosine", "--save-steps", "0", "--logging-steps", "10", "--seed", seed, "--overwrite-output-dir", NULL) ||
        wrote(d, "sft-2", "models/sft-2/model.safetensors"))
        return 1;
    secs += d->stage_secs;
    if (demo_append_metrics(d->out, sft2, "sft-2", &d->metrics_offset)) return 1;
    if (eval_row(d, Q ? "SFT (curriculum: L1-2, then L1-2)" : "SFT (curriculum: L1-3, then L1-5)", "models/sft-2", "sft", secs, z.K,
                 z.kprobs, z.max_new, "data/test.jsonl", "calculator"))
        return 1;
    double ll_sft = score_sum(d, "models/sft-2", "sft");
    if (isnan(ll_sft)) return 1;

    // 4. the post-training methods, each from the SFT model. A method that fails is
    // named in the report with its error line, and the others still run.
    static const struct {
        const char *name;
        int (*run)(demo *, const sizes *);
    } methods[] = {
        {"rejection-sampling SFT", m_rs_sft}, {"KTO", m_kto}, {"cDPO", m_cdpo}, {"Step-DPO", m_step_dpo}, {"online DPO", m_online_dpo},
        {"multi-turn DPO (python)", m_multiturn}, {"GRPO (reverse KL)", m_grpo}, {"GRPO (forward KL, DPH-RL)", m_grpo_fkl}, {"PPO", m_ppo},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        d->why[0] = 0;
        if (methods[i].run(d, &z)) method_failed(d, methods[i].name);
    }

    // 5. the report: curves through `temper plot`, the table, the HTML page
    if (stage(d, "plot", 0.5, cmd_plot, "plot", path(d, p, "metrics.jsonl"), "--keys", "loss,reward,accuracy", "--out",
              path(d, q, "curves.svg"), NULL) ||
        wrote(d, "plot", "curves.svg")) {
        sbuf_free(&d->failures);
        return 1;
    }
    char command[256];
    snprintf(command, sizeof command, "temper demo%s --seed %d", Q ? " --quick" : "", d->seed);
    sbuf notes;
    sbuf_init(&notes);
    sbuf_puts(&notes, "Every \"SFT + ...\" row starts from the SFT model (the methods are not chained): compare each with the SFT row. "
                      "pass@k / maj@k: samples at temperature 0.7 of the first test problems, for SFT and the two GRPO variants. "
                      "The python-tool rows are the level 4-5 test problems with the python tool: compare them with each other.\n");
    if (d->nfailed) {
        sbuf_printf(&notes, "%d method(s) failed (their logs are under logs/); the table has no row for them:\n", d->nfailed);
        if (d->failures.data) sbuf_puts(&notes, d->failures.data);
    }
    rc = sbuf_check(&notes, &err) ? -1 : demo_write_report(d->out, d->rows, d->nrows, command, notes.data);
    sbuf_free(&notes);
    if (rc || wrote(d, "report", "report.md") || wrote(d, "report", "report.html")) {
        sbuf_free(&d->failures);
        return 1;
    }
    char el[16];
    fmt_time(el, sizeof el, now_seconds() - d->t0);
    fprintf(stderr, "temper demo: done in %s; %s/report.md, %s/curves.svg, %s/report.html\n", el, d->out, d->out, d->out);
    if (d->nfailed) fprintf(stderr, "temper demo: %d method(s) failed:\n%s", d->nfailed, d->failures.data ? d->failures.data : "");
    sbuf_free(&d->failures);
    if (d->nfailed && Q) return cli_fail("demo", "--quick: %d post-training method(s) failed", d->nfailed);
    // the checks: SFT beats the untrained model on the held-out problems: a higher
    // likelihood of their solutions and a higher greedy pass@1 (--quick's 2-minute SFT
    // may solve none: there pass@1 must not fall)
    if (!(ll_sft > ll_init)) return cli_fail("demo", "SFT did not beat the untrained model: held-out log-likelihood %.1f vs %.1f", ll_sft, ll_init);
    if (Q ? !(d->rows[1].pass1 >= d->rows[0].pass1) : !(d->rows[1].pass1 > d->rows[0].pass1))
        return cli_fail("demo", "SFT did not beat the untrained model: pass@1 %.3f vs %.3f", d->rows[1].pass1, d->rows[0].pass1);
    return 0;
}
