// temper demo: issue 18's pipeline, a script of the public commands. Each stage calls
// the entry point `temper <command>` runs (cmd_task, cmd_sft, cmd_eval, ...) with an
// argv array, in this process: the demo has no training, sampling or grading code of
// its own, so it shows exactly what a user typing the commands gets. Stages:
//   data (task synth: train, validation and test splits), tokenizer train, init;
//   curriculum SFT (levels 1-3, then 1-5); GRPO with the verifier reward and reverse KL
//   on the validation prompts; online DPO, 2 rounds; a greedy eval on the held-out test
//   split after each (pass@1 per level, Wilson 95% intervals), pass@8 / maj@8 after
//   SFT and at the end; report.md, curves.svg (temper plot), report.html.
// Each command's stdout goes to OUT/logs/STAGE.log; its progress bar stays on stderr,
// and the demo prints a line per stage with the elapsed time and the total ETA.
// --quick: the same pipeline at toy sizes (under a minute on 2 cores); it fails unless
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
} demo;

static void fmt_time(char *b, size_t n, double s) {
    if (s < 0) s = 0;
    snprintf(b, n, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
}

// Runs one command: fn(argv) with argv given as NULL-terminated strings after the
// command name, its stdout in OUT/logs/NAME.log. `weight` is the stage's estimated cost,
// for the ETA. Returns the command's status (0: ok).
static int stage(demo *d, const char *name, double weight, int (*fn)(int, char **), const char *cmd, ...) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)cmd;
    va_list ap;
    va_start(ap, cmd);
    for (const char *a; (a = va_arg(ap, const char *)) && argc < 63;) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    double el = now_seconds() - d->t0;
    double rate = d->w_done > 0 && el > 1 ? el / d->w_done : 0.5;  // wall s per cost unit: 2 cores at first
    char e1[16], e2[16];
    fmt_time(e1, sizeof e1, el);
    fmt_time(e2, sizeof e2, rate * (d->w_total - d->w_done));
    fprintf(stderr, "\n[demo %d/%d] %s: temper %s ...   (elapsed %s, total ETA %s)\n", ++d->istage, d->nstage, name, cmd, e1, e2);
    char logp[4096], lname[128];
    snprintf(lname, sizeof lname, "logs/%s.log", name);
    io_join(logp, sizeof logp, d->out, lname);
    fflush(stdout);
    int saved = dup(1), fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0) {
        if (saved >= 0) close(saved);
        if (fd >= 0) close(fd);
        return cli_fail("demo", "%s: cannot open the stage log", logp);
    }
    dup2(fd, 1);
    close(fd);
    double t = now_seconds();
    int rc = fn(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    d->stage_secs = now_seconds() - t;
    d->w_done += weight;
    flags_quiet = d->quiet;  // a command's --quiet stays with that command
    progress_set_quiet(d->quiet);
    if (rc) return cli_fail("demo", "stage %s failed (temper %s exited %d); its output: %s", name, cmd, rc, logp);
    return 0;
}

// The stage wrote this file (or directory)?
static int wrote(demo *d, const char *stage_name, const char *rel) {
    char p[4096];
    io_join(p, sizeof p, d->out, rel);
    if (io_exists(p)) return 0;
    return cli_fail("demo", "stage %s ran but did not write %s", stage_name, p);
}

static const char *path(demo *d, char *buf, const char *rel) { return io_join(buf, 4096, d->out, rel); }

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

// Greedy eval on the test split -> a row of the table; k > 1 adds pass@k / maj@k from a
// sampled eval of the first kprobs problems.
static int eval_row(demo *d, const char *label, const char *model_rel, const char *tag, double train_secs, int k, int kprobs,
                    const char *max_new) {
    char model[4096], test[4096], od[4096], rel[256], summ[4096], seed[16], lim[16], ks[16], name[96];
    path(d, model, model_rel);
    path(d, test, "data/test.jsonl");
    snprintf(rel, sizeof rel, "eval/%s", tag);
    path(d, od, rel);
    snprintf(seed, sizeof seed, "%d", d->seed);
    snprintf(name, sizeof name, "eval-%s", tag);
    double w = d->quick ? 1 : 15;
    int untrained = !strcmp(tag, "init");
    snprintf(lim, sizeof lim, "%d", d->quick ? 40 : 100);
    if (stage(d, name, untrained ? w / 2 : w, cmd_eval, "eval", "--model", model, "--data", test, "--prompt-style", "plain", "--tools",
              "calculator", "--n", "1", "--temperature", "0", "--max-new-tokens", max_new, "--seed", seed, "--output-dir", od,
              "--quiet", untrained ? "--limit" : NULL, lim, NULL))
        return -1;
    demo_row *r = &d->rows[d->nrows];
    memset(r, 0, sizeof *r);
    snprintf(r->stage, sizeof r->stage, "%s", label);
    snprintf(r->model, sizeof r->model, "%s", model);
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
                  "--tools", "calculator", "--n", ks, "--temperature", "0.7", "--max-new-tokens", max_new, "--seed", seed, "--limit",
                  lim, "--output-dir", od, "--quiet", NULL))
            return -1;
        snprintf(rel, sizeof rel, "eval/%s-k/summary.json", tag);
        if (wrote(d, name, rel) || demo_read_summary(path(d, summ, rel), r, k)) return -1;
    }
    d->nrows++;
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

int cmd_demo(int argc, char **argv) {
    demo D = {0};
    demo *d = &D;
    d->out = "demo-out";
    int keep = 0;
    flag flags[] = {
        {"quick", FLAG_BOOL, &d->quick, "the same pipeline at toy sizes (under a minute on 2 cores); fails unless every stage ran and SFT beats the untrained model"},
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

    const int Q = d->quick;
    char seed[16], seed1[16];
    snprintf(seed, sizeof seed, "%d", d->seed);
    snprintf(seed1, sizeof seed1, "%d", d->seed + 1);
    // sizes: full (measured in docs/demo-plan.md) | quick
    const char *n_sft1 = Q ? "800" : "8000", *n_sft2 = Q ? "300" : "8000", *n_test = Q ? "40" : "500";
    const char *lv1 = Q ? "1-2" : "1-3", *lv2 = Q ? "1-2" : "1-5", *lvt = Q ? "1-2" : "1-5";
    const char *n_rl = Q ? "32" : "1000", *n_dpo = Q ? "16" : "200";
    const char *steps1 = Q ? "120" : "350", *steps2 = Q ? "20" : "300", *bs = Q ? "8" : "16";
    const char *grpo_steps = Q ? "2" : "40", *max_new = Q ? "64" : "160";
    // estimated CPU seconds per stage, for the ETA (full: measured; quick: guessed)
    double w_sft1 = Q ? 20 : 190, w_sft2 = Q ? 4 : 170, w_grpo = Q ? 4 : 220, w_dpo = Q ? 4 : 120, w_eval = Q ? 1 : 15;
    int K = Q ? 4 : 8, kprobs = Q ? 20 : 100;
    d->nstage = 20;  // data 5, tokenizer, init, 4 evals + 2 sampled + 2 scores, sft 2, grpo, online-dpo, plot
    d->w_total = 5 + w_sft1 + w_sft2 + w_grpo + w_dpo + w_eval * (0.5 + 3) + 2 * w_eval * K * kprobs / 500.0;
    d->t0 = now_seconds();
    fprintf(stderr, "temper demo%s: a tiny Llama learns GSM8K-style word problems from scratch, then post-training; output in %s/\n",
            Q ? " --quick" : "", d->out);

    // 1. data: curriculum SFT files, the held-out test split, validation prompts for RL
    if (stage(d, "data-sft1", 1, cmd_task, "task", "synth", "--level", lv1, "--n", n_sft1, "--seed", seed, "--tools", "calculator",
              "--out", path(d, p, "data/sft1.jsonl"), NULL) ||
        stage(d, "data-sft2", 1, cmd_task, "task", "synth", "--level", lv2, "--n", n_sft2, "--seed", seed1, "--tools", "calculator",
              "--out", path(d, p, "data/sft2.jsonl"), NULL) ||
        stage(d, "data-test", 0.5, cmd_task, "task", "synth", "--level", lvt, "--n", n_test, "--seed", seed, "--split", "test",
              "--tools", "calculator", "--out", path(d, p, "data/test.jsonl"), NULL) ||
        stage(d, "data-prompts", 0.5, cmd_task, "task", "synth", "--level", lv2, "--n", n_rl, "--seed", seed, "--split", "validation",
              "--tools", "calculator", "--out", path(d, p, "data/prompts.jsonl"), NULL) ||
        stage(d, "data-dpo-prompts", 0.5, cmd_task, "task", "synth", "--level", lv2, "--n", n_dpo, "--seed", seed1, "--split",
              "validation", "--tools", "calculator", "--out", path(d, p, "data/dpo-prompts.jsonl"), NULL))
        return 1;

    // 2. tokenizer and model
    snprintf(q, sizeof q, "%s,%s", path(d, p, "data/sft1.jsonl"), path(d, r2, "data/sft2.jsonl"));
    char tok[4096], init[4096];
    path(d, tok, "tokenizer");
    path(d, init, "models/init");
    if (stage(d, "tokenizer", 2, cmd_tokenizer, "tokenizer", "train", "--data", q, "--vocab-size", "1024", "--out", tok, NULL) ||
        wrote(d, "tokenizer", "tokenizer/tokenizer.json") ||
        stage(d, "init", 0.5, cmd_init, "init", "--preset", "tiny", "--tokenizer", tok, "--seed", seed, "--out", init, NULL) ||
        wrote(d, "init", "models/init/config.json"))
        return 1;
    if (eval_row(d, "untrained (init)", "models/init", "init", 0, 0, 0, max_new)) return 1;
    double ll_init = score_sum(d, "models/init", "init");
    if (isnan(ll_init)) return 1;

    // 3. curriculum SFT: easy levels first, then all (Light-R1's two stages, small)
    char sft1[4096], sft2[4096];
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
    if (stage(d, "sft-2", w_sft2, cmd_sft, "sft", "--model", sft1, "--data", path(d, p, "data/sft2.jsonl"), "--output-dir", sft2,
              "--max-steps", steps2, "--per-device-train-batch-size", bs, "--learning-rate", Q ? "2e-4" : "1e-3", "--warmup-steps", Q ? "2" : "20",
              "--lr-scheduler-type", "cosine", "--save-steps", "0", "--logging-steps", "10", "--seed", seed, "--overwrite-output-dir",
              NULL) ||
        wrote(d, "sft-2", "models/sft-2/model.safetensors"))
        return 1;
    secs += d->stage_secs;
    if (demo_append_metrics(d->out, sft2, "sft-2", &d->metrics_offset)) return 1;
    if (eval_row(d, Q ? "SFT (curriculum: L1-2, then L1-2)" : "SFT (curriculum: L1-3, then L1-5)", "models/sft-2", "sft", secs, K,
                 kprobs, max_new))
        return 1;
    double ll_sft = score_sum(d, "models/sft-2", "sft");
    if (isnan(ll_sft)) return 1;

    // The RL and preference stages: a failure here still ends in a report of the stages
    // that ran (make demo stays useful); --quick fails on it.
    int post_failed = 0;
    do {
        // 4. GRPO: verifier reward, reverse KL to the SFT model, validation prompts
        char grpo[4096];
        path(d, grpo, "models/grpo");
        if (stage(d, "grpo", w_grpo, cmd_grpo, "grpo", "--model", sft2, "--data", path(d, p, "data/prompts.jsonl"), "--output-dir", grpo,
                  "--prompt-style", "plain", "--tools", "calculator", "--beta", "0.04", "--num-generations", Q ? "4" : "8",
                  "--per-device-train-batch-size", Q ? "8" : "32", "--gradient-accumulation-steps", "2", "--max-steps", grpo_steps,
                  "--learning-rate", "5e-5", "--temperature", "1.0", "--max-completion-length", max_new, "--logging-steps", "1",
                  "--save-steps", "0", "--seed", seed, "--overwrite-output-dir", NULL) ||
            wrote(d, "grpo", "models/grpo/model.safetensors"))
            { post_failed = 1; break; }
        secs = d->stage_secs;
        if (demo_append_metrics(d->out, grpo, "grpo", &d->metrics_offset)) { post_failed = 1; break; }
        if (eval_row(d, "+ GRPO (verifier reward, reverse KL)", "models/grpo", "grpo", secs, 0, 0, max_new)) { post_failed = 1; break; }

        // 5. online DPO, 2 rounds of sample / grade / pair / train, from the GRPO model
        char odpo[4096];
        path(d, odpo, "models/online-dpo");
        if (stage(d, "online-dpo", w_dpo, cmd_online_dpo, "online-dpo", "--model", grpo, "--data", path(d, p, "data/dpo-prompts.jsonl"),
                  "--output-dir", odpo, "--rounds", "2", "--num-generations", Q ? "4" : "8", "--prompt-style", "plain", "--tools",
                  "calculator", "--learning-rate", "5e-5", "--max-completion-length", max_new, "--temperature", "1.0", "--seed", seed,
                  "--logging-steps", "1", NULL) ||
            wrote(d, "online-dpo", "models/online-dpo/round-1/round.json"))
            { post_failed = 1; break; }
        // a round with no pairs trains nothing: the last policy is the last round that trained
        const char *odpo_final = io_exists(path(d, p, "models/online-dpo/round-2/model/model.safetensors")) ? "models/online-dpo/round-2/model"
                                 : io_exists(path(d, p, "models/online-dpo/round-1/model/model.safetensors")) ? "models/online-dpo/round-1/model"
                                                                                                               : "models/grpo";
        secs = d->stage_secs;
        char rd[4096];
        for (int k = 1; k <= 2; k++) {
            char rel[64], nm[32];
            snprintf(rel, sizeof rel, "models/online-dpo/round-%d/model", k);
            snprintf(nm, sizeof nm, "online-dpo-%d", k);
            if (demo_append_metrics(d->out, path(d, rd, rel), nm, &d->metrics_offset)) { post_failed = 1; break; }
        }
        if (eval_row(d, "+ online DPO (2 rounds)", odpo_final, "online-dpo", secs, K, kprobs, max_new)) { post_failed = 1; break; }

    } while (0);
    // 6. the report: curves through `temper plot`, the table, the HTML page
    if (stage(d, "plot", 0.5, cmd_plot, "plot", path(d, p, "metrics.jsonl"), "--keys", "loss,reward,accuracy", "--out",
              path(d, q, "curves.svg"), NULL) ||
        wrote(d, "plot", "curves.svg"))
        return 1;
    char command[256];
    snprintf(command, sizeof command, "temper demo%s --seed %d", Q ? " --quick" : "", d->seed);
    char notes[1024];
    snprintf(notes, sizeof notes, "%s%s", post_failed ? "A post-training stage failed (its log is under logs/): the table stops before it.\n" : "",
             "Stages not run by the demo yet (the commands exist): rejection-sampling SFT, Step-DPO, KTO, cDPO, "
                        "multi-turn DPO on python trajectories, GRPO with forward KL (DPH-RL), PPO.");
    if (demo_write_report(d->out, d->rows, d->nrows, command, notes) || wrote(d, "report", "report.md") ||
        wrote(d, "report", "report.html"))
        return 1;
    char el[16];
    fmt_time(el, sizeof el, now_seconds() - d->t0);
    fprintf(stderr, "temper demo: done in %s; %s/report.md, %s/curves.svg, %s/report.html\n", el, d->out, d->out, d->out);
    if (post_failed && Q) return cli_fail("demo", "--quick: a post-training stage failed");
    // the checks: SFT beats the untrained model on the held-out problems: a higher
    // likelihood of their solutions and a higher greedy pass@1 (--quick's 2-minute SFT
    // may solve none: there pass@1 must not fall)
    if (!(ll_sft > ll_init)) return cli_fail("demo", "SFT did not beat the untrained model: held-out log-likelihood %.1f vs %.1f", ll_sft, ll_init);
    if (Q ? !(d->rows[1].pass1 >= d->rows[0].pass1) : !(d->rows[1].pass1 > d->rows[0].pass1))
        return cli_fail("demo", "SFT did not beat the untrained model: pass@1 %.3f vs %.3f", d->rows[1].pass1, d->rows[0].pass1);
    return 0;
}
