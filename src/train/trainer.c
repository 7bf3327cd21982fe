// The offline training loop (see trainer.h for its contract).
#include "train/trainer.h"
#include "dist/dist.h"
#include "train/packing.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "base/rng.h"
#include "base/tfevents.h"
#include "data/data.h"
#include "kernels/kernels.h"
#include "model/batch.h"
#include "model/vision.h"
#include "model/model.h"
#include "objectives/rm.h"
#include "objectives/sft.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/step.h"
#include "train/vl_perturb.h"

void train_args_default(train_args *a, train_method m) {
    memset(a, 0, sizeof *a);
    a->method = m;
    a->perturb_seed = -1;
    lora_args_default(&a->lora);
    a->lr_scheduler_type = "linear";
    a->learning_rate = m == TRAIN_SFT || m == TRAIN_RM ? 2e-5 : 1e-6;  // SFTConfig, RewardConfig / DPOConfig, KTOConfig
    a->adam_beta1 = 0.9;
    a->adam_beta2 = 0.999;
    a->adam_epsilon = 1e-8;
    a->max_grad_norm = 1.0;
    a->num_train_epochs = 3.0;
    a->max_steps = -1;
    a->per_device_train_batch_size = 8;
    a->gradient_accumulation_steps = 1;
    a->max_length = 1024;
    a->max_prompt_length = m == TRAIN_DPO || m == TRAIN_KTO ? 512 : 0;
    a->seed = 42;
    a->logging_steps = 10;
    a->save_steps = 500;
    a->dpo = dpo_hparams_default();
    a->kto = kto_hparams_default();
}

// ---- checking the settings before any work ----

// A real-valued setting in [lo, hi] (open at an end when lo_open / hi_open); NaN and
// infinities never pass.
static int check_range(const char *flag, double v, double lo, int lo_open, double hi, int hi_open, tm_error *err) {
    int ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (ok) return 0;
    char range[96];
    if (isinf(hi)) snprintf(range, sizeof range, "a finite number %s %g", lo_open ? ">" : ">=", lo);
    else snprintf(range, sizeof range, "in %s%g, %g%s", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
    return tm_fail(err, "--%s must be %s (got %g)", flag, range, v);
}

static int check_int(const char *flag, long v, long lo, const char *meaning, tm_error *err) {
    if (v >= lo) return 0;
    return tm_fail(err, "--%s must be at least %ld%s (got %ld)", flag, lo, meaning, v);
}

int train_args_check(const train_args *a, tm_error *err) {
    if (a->zero < 0 || a->zero > 1) return tm_fail(err, "--zero %d: 0 or 1 (ZeRO-1: the AdamW state sharded over ranks)", a->zero);
    if (lora_args_check(&a->lora, err)) return -1;
    const double INF = INFINITY;
    const int OPEN = 1, SHUT = 0;
    int dpo = a->method == TRAIN_DPO, kto = a->method == TRAIN_KTO;
    if (check_range("learning-rate", a->learning_rate, 0, SHUT, INF, OPEN, err) ||
        check_range("warmup-ratio", a->warmup_ratio, 0, SHUT, 1, SHUT, err) ||
        check_range("weight-decay", a->weight_decay, 0, SHUT, INF, OPEN, err) ||
        check_range("max-grad-norm", a->max_grad_norm, 0, SHUT, INF, OPEN, err) ||
        check_range("adam-beta1", a->adam_beta1, 0, SHUT, 1, OPEN, err) ||
        check_range("adam-beta2", a->adam_beta2, 0, SHUT, 1, OPEN, err) ||
        check_range("adam-epsilon", a->adam_epsilon, 0, OPEN, INF, OPEN, err) ||
        (a->max_steps <= 0 && check_range("num-train-epochs", a->num_train_epochs, 0, OPEN, INF, OPEN, err)) ||
        check_int("max-steps", a->max_steps, -1, " (-1: use --num-train-epochs)", err) ||
        check_int("warmup-steps", a->warmup_steps, 0, "", err) ||
        check_int("per-device-train-batch-size", a->per_device_train_batch_size, 1, "", err) ||
        check_int("gradient-accumulation-steps", a->gradient_accumulation_steps, 1, "", err) ||
        check_int("max-length", a->max_length, 2, " (a prompt token and a trained token)", err) ||
        check_int("max-prompt-length", a->max_prompt_length, 0, " (0: the whole prompt)", err) ||
        check_int("logging-steps", a->logging_steps, 1, "", err) ||
        check_int("eval-steps", a->eval_steps, 0, " (0: the logging steps)", err) ||
        check_int("save-steps", a->save_steps, 0, " (0: never)", err) ||
        check_int("save-total-limit", a->save_total_limit, 0, " (0: keep all)", err) ||
        check_int("seed", a->seed, 0, "", err) ||
        check_range("center-rewards-coefficient", a->center_rewards_coefficient, 0, SHUT, INF, OPEN, err))
        return -1;
    if (dpo && (check_range("beta", a->dpo.beta, 0, OPEN, INF, OPEN, err) ||
                check_range("label-smoothing", a->dpo.label_smoothing, 0, SHUT, 0.5, SHUT, err) ||
                check_range("rpo-alpha", a->dpo.rpo_alpha, 0, SHUT, INF, OPEN, err)))
        return -1;
    if (dpo)
        for (int i = 0; i < DPO_N_LOSS; i++)
            if (!isfinite(a->dpo.loss_weight[i]))
                return tm_fail(err, "--loss-weights: the weight of %s is %g; weights must be finite", dpo_loss_type_name((dpo_loss_type)i), a->dpo.loss_weight[i]);
    if (kto && (check_range("beta", a->kto.beta, 0, OPEN, INF, OPEN, err) ||
                check_range("desirable-weight", a->kto.desirable_weight, 0, OPEN, INF, OPEN, err) ||
                check_range("undesirable-weight", a->kto.undesirable_weight, 0, OPEN, INF, OPEN, err)))
        return -1;
    if (a->packing && a->method != TRAIN_SFT) return tm_fail(err, "--packing is for sft (TRL packs SFT data only)");
    return 0;
}

// The real path of a directory, or NULL when it does not exist.
static const char *real_dir(const char *dir, char *out) {
    return dir && realpath(dir, out) ? out : NULL;
}

// --output-dir before anything is loaded: not the input model, not a file, creatable
// and writable, and empty unless the run continues it (a checkpoint of its own) or
// --overwrite-output-dir says to replace it. Two runs in one directory would mix their
// checkpoints, metrics.jsonl and --resume-from-checkpoint last.
int train_prepare_output_dir(const char *out, const char *model_dir, const char *ref_dir, const char *resume,
                             int overwrite, tm_error *err) {
    if (!*out) return tm_fail(err, "--output-dir is empty");
    if (io_exists(out) && !io_is_dir(out)) return tm_fail(err, "--output-dir %s exists and is not a directory", out);
    char ro[PATH_MAX], rm[PATH_MAX];
    const char *inputs[2][2] = {{"--model", model_dir}, {"--ref-model", ref_dir}};
    if (real_dir(out, ro))
        for (int i = 0; i < 2; i++)
            if (real_dir(inputs[i][1], rm) && !strcmp(ro, rm))
                return tm_fail(err, "--output-dir %s is the %s directory: saving would overwrite the model this run reads; choose another directory",
                               out, inputs[i][0]);
    if (io_is_dir(out)) {
        DIR *d = opendir(out);
        if (!d) return tm_fail(err, "--output-dir %s: %s", out, strerror(errno));
        char first[256] = "";
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n++ == 0) snprintf(first, sizeof first, "%s", e->d_name);
        closedir(d);
        // resuming continues this directory's own run
        char parent[PATH_MAX], rr[PATH_MAX];
        int own = 0;
        if (resume && real_dir(resume, rr)) {
            snprintf(parent, sizeof parent, "%s", rr);
            char *slash = strrchr(parent, '/');
            if (slash) *slash = 0;
            own = !strcmp(parent, ro);
        }
        if (n && !own && !overwrite)
            return tm_fail(err, "--output-dir %s is not empty (%ld entries, e.g. %s): a new run there would mix with the old one; "
                                "pass --overwrite-output-dir to replace it, or --resume-from-checkpoint last to continue it",
                           out, n, first);
        if (n && !own && checkpoint_remove_all(out, err)) return -1;
    }
    if (io_mkdirs(out, err)) return -1;
    // a probe file: permission bits alone do not say (root, read-only mounts, ACLs)
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.temper-write-test.%d", out, (int)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return tm_fail(err, "--output-dir %s is not writable: %s", out, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

// ---- examples and their cached reference log-probs ----

static void epoch_order(int *order, int n, int seed, int epoch);

// One training example as the loop sees it: the data layer's sequences plus, per
// sequence, the reference log-prob of each token (ref[s][t] for token t; 0 at t = 0).
// KTO adds the mismatched sequence (this prompt + the previous example's completion)
// whose log-ratio estimates the reference point z0.
typedef struct example {
    data_example d;
    float *ref[2];
    float **ref_ep;     // --perturb: ref_ep[2 epoch + q], sequence q's with epoch's images
    int n_ep;
    float *weight[2];   // cDPO token weights (NULL: 1)
    int32_t *kl_ids;
    uint8_t *kl_mask;
    int kl_len;
    float *kl_ref;
} example;

typedef struct example_set {
    example *ex;
    int n;
    long truncated, dropped;  // examples cut to the length limits; dropped with nothing left to train
    const img_qwen2vl_config *icfg;  // the processor the images were read with (NULL: none)
} example_set;

static void example_set_free(example_set *s) {
    for (int i = 0; i < s->n; i++) {
        data_example_free(&s->ex[i].d);
        free(s->ex[i].ref[0]);
        free(s->ex[i].ref[1]);
        for (int k = 0; s->ex[i].ref_ep && k < 2 * s->ex[i].n_ep; k++) free(s->ex[i].ref_ep[k]);
        free(s->ex[i].ref_ep);
        free(s->ex[i].weight[0]);
        free(s->ex[i].weight[1]);
        free(s->ex[i].kl_ids);
        free(s->ex[i].kl_mask);
        free(s->ex[i].kl_ref);
    }
    free(s->ex);
    memset(s, 0, sizeof *s);
}

// TRL's order for long examples: the prompt is cut to max_prompt tokens first (its end
// kept, or its start with keep_start), then each sequence to max_length (the end of
// the completion goes). Cutting to max_length first would leave a long prompt with no
// completion at all. Returns 1 if anything was cut.
static int truncate_example(data_example *d, int max_prompt, int keep_start, int max_length) {
    int cut_any = 0;
    if (max_prompt > 0 && d->prompt_len > max_prompt) {
        int cut = d->prompt_len - max_prompt;       // tokens removed from the prompt
        int from = keep_start ? max_prompt : 0;     // where the removed run starts
        for (int s = 0; s < d->nseq; s++) {
            data_seq *q = &d->seq[s];
            memmove(q->ids + from, q->ids + from + cut, sizeof(int32_t) * (size_t)(q->len - from - cut));
            memmove(q->mask + from, q->mask + from + cut, (size_t)(q->len - from - cut));
            q->len -= cut;
        }
        d->prompt_len = max_prompt;
        cut_any = 1;
    }
    for (int s = 0; s < d->nseq; s++)
        if (max_length > 0 && d->seq[s].len > max_length) d->seq[s].len = max_length, cut_any = 1;
    if (d->prompt_len > d->seq[0].len) d->prompt_len = d->seq[0].len;
    return cut_any;
}

// KTO's mismatched pairs, as TRL builds them: within each block of batch-size rows in
// file order, row i is paired with the completion of row i-1 (cyclically).
static int build_kl_pairs(example_set *s, int block) {
    for (int b0 = 0; b0 < s->n; b0 += block) {
        int b1 = b0 + block < s->n ? b0 + block : s->n;
        for (int i = b0; i < b1; i++) {
            const data_example *x = &s->ex[i].d, *y = &s->ex[i == b0 ? b1 - 1 : i - 1].d;
            int plen = x->prompt_len, clen = y->seq[0].len - y->prompt_len;
            example *e = &s->ex[i];
            e->kl_len = plen + clen;
            e->kl_ids = malloc(sizeof(int32_t) * (size_t)(e->kl_len ? e->kl_len : 1));
            e->kl_mask = malloc((size_t)(e->kl_len ? e->kl_len : 1));
            if (!e->kl_ids || !e->kl_mask) return -1;
            memcpy(e->kl_ids, x->seq[0].ids, sizeof(int32_t) * (size_t)plen);
            memset(e->kl_mask, 0, (size_t)plen);
            memcpy(e->kl_ids + plen, y->seq[0].ids + y->prompt_len, sizeof(int32_t) * (size_t)clen);
            memcpy(e->kl_mask + plen, y->seq[0].mask + y->prompt_len, (size_t)clen);
        }
    }
    return 0;
}

// An example's images, before each of its sequences (each holds the image pads).
// The pixels are made again from the files (data_example_pixels): bounded memory.
static int add_images(trainer *t, const example_set *s, const data_example *d, tm_error *err) {
    int rc = 0;
    for (int k = 0; k < d->n_images && !rc; k++) {
        img_patches p;
        rc = data_example_pixels(d, s->icfg, k, &p, err);
        if (!rc) rc = trainer_add_images(t, 1, p.pixel_values, p.n, p.dim, p.grid_thw, err);
        img_patches_free(&p);
    }
    return rc;
}

static int load_examples(tok_tokenizer *tok, const tok_chat *chat, const train_args *a, data_format fmt,
                         const char *path, int vocab, const img_qwen2vl_config *icfg, int image_pad_id, example_set *out,
                         tm_error *err) {
    data_opts o;
    data_opts_default(&o);
    o.image_cfg = icfg;
    out->icfg = icfg;
    o.image_pad_id = image_pad_id;
    o.format = fmt;
    o.chat = chat;
    o.max_length = 0;  // the lengths are applied below, prompt first
    o.on_bad_line = a->on_bad_line;
    // a reward model scores the last token of the text itself: no EOS appended, so the
    // score sits where transformers' sequence classifier reads it (last non-pad token)
    if (a->method == TRAIN_RM) o.append_eos = 0;
    if (path == a->data) o.data_weights = a->data_weights, o.mix_seed = (uint64_t)a->seed;
    data_set ds;
    if (data_load(tok, path, &o, &ds, err)) return -1;
    if (ds.skipped) fprintf(stderr, "temper: %s: skipped %ld bad lines (first: %s)\n", path, ds.skipped, ds.first_skip);
    int ds_n = ds.n;
    out->ex = calloc((size_t)(ds.n ? ds.n : 1), sizeof(example));
    if (!out->ex) { data_set_free(&ds); return tm_fail(err, "out of memory"); }
    int kept = 0;
    for (int i = 0; i < ds.n; i++) {
        data_example *d = &ds.ex[i];
        out->truncated += truncate_example(d, a->max_prompt_length, a->keep_start, a->max_length);
        if (d->n_images) {
            // a cut through an image's tokens would leave pads without their image
            int want = 0, bad = 0, merge2 = icfg->merge_size * icfg->merge_size;
            for (int k = 0; k < d->n_images; k++) want += d->grid_thw[3 * k] * d->grid_thw[3 * k + 1] * d->grid_thw[3 * k + 2] / merge2;
            for (int s = 0; s < d->nseq; s++) {
                int have = 0;
                for (int t = 0; t < d->seq[s].len; t++) have += d->seq[s].ids[t] == image_pad_id;
                bad |= have != want;
            }
            if (bad) {
                char file[4096];
                if (data_list_item(path, d->file, file, sizeof file)) snprintf(file, sizeof file, "%s", path);
                tm_fail(err, "%s:%ld: --max-prompt-length / --max-length cut into the image's %d tokens (raise them)", file, d->line, want);
                data_set_free(&ds);
                out->n = kept;
                return -1;
            }
        }
        int trainable = 1;
        for (int s = 0; s < d->nseq; s++) {
            int any = 0;
            for (int t = 1; t < d->seq[s].len; t++) any |= d->seq[s].mask[t];
            trainable &= any;
            for (int t = 0; t < d->seq[s].len; t++)
                if (d->seq[s].ids[t] < 0 || d->seq[s].ids[t] >= vocab) {
                    // the message reads d before data_set_free releases it
                    char file[4096];
                    if (data_list_item(path, d->file, file, sizeof file)) snprintf(file, sizeof file, "%s", path);
                    tm_fail(err, "%s:%ld: token id %d is outside the model's vocabulary (%d): tokenizer and model do not match",
                            file, d->line, d->seq[s].ids[t], vocab);
                    data_set_free(&ds);
                    out->n = kept;  // the caller frees the examples already moved
                    return -1;
                }
        }
        // a sequence with nothing to train (e.g. its completion was cut away) carries no
        // signal and would make a DPO log-ratio meaningless: drop it, loudly
        if (!trainable) {
            char file[4096];
            if (data_list_item(path, d->file, file, sizeof file)) snprintf(file, sizeof file, "%s", path);
            if (!out->dropped)
                fprintf(stderr, "temper: %s:%ld: no trainable tokens left after truncation; example dropped\n", file, d->line);
            out->dropped++;
            data_example_free(d);
            continue;
        }
        out->ex[kept++].d = *d;
        memset(d, 0, sizeof *d);
    }
    out->n = kept;
    data_set_free(&ds);
    if (out->truncated || out->dropped)
        fprintf(stderr, "temper: %s: %ld of %d examples truncated (--max-prompt-length %d, then --max-length %d), %ld dropped with nothing left to train\n",
                path, out->truncated, ds_n, a->max_prompt_length, a->max_length, out->dropped);
    if (!kept) return tm_fail(err, "%s: no usable examples", path);
    return 0;
}

// cDPO: per-token weights from `temper critical-tokens`, matched to examples by input line.
// The file holds the ids it scored; ours may have lost the start of a long prompt
// (--max-prompt-length with the default --truncation-mode keep_end)
// (--max-prompt-length), so the two are aligned at the end and must agree there.
static int load_token_weights(const char *path, example_set *s, tm_error *err) {
    io_lines in;
    if (io_lines_open(&in, path, err)) return -1;
    char *text;
    long len;
    int matched = 0, rc = 0;
    while (!rc && (len = io_lines_next(&in, &text)) >= 0) {
        if (!len) continue;
        tm_error jerr;
        json_doc *d = data_parse_line(text, (size_t)len, &jerr);
        if (!d) { rc = tm_fail(err, "%s:%ld: %s", path, in.lineno, jerr.msg); break; }
        json *r = json_root(d);
        long line = (long)json_get_int(r, "line", -1);
        example *e = NULL;
        for (int i = 0; i < s->n && !e; i++) if (s->ex[i].d.line == line) e = &s->ex[i];
        const char *ids_key[2] = {"chosen_input_ids", "rejected_input_ids"}, *w_key[2] = {"chosen_weights", "rejected_weights"};
        for (int q = 0; e && q < e->d.nseq && !rc; q++) {
            json *ids = json_get(r, ids_key[q]), *w = json_get(r, w_key[q]);
            const data_seq *sq = &e->d.seq[q];
            if (!ids || !w || ids->type != JSON_ARRAY || w->type != JSON_ARRAY || ids->n != w->n || ids->n < sq->len) {
                rc = tm_fail(err, "%s:%ld: \"%s\" and \"%s\" must be equal-length arrays covering the sequence", path, in.lineno, ids_key[q], w_key[q]);
                break;
            }
            int off = ids->n - sq->len;
            for (int t = 0; t < sq->len && !rc; t++)
                if (!json_is_int(&ids->items[off + t]) || (int)ids->items[off + t].num != sq->ids[t])
                    rc = tm_fail(err, "%s:%ld: token %d differs from the trainer's tokenization of data line %ld (same tokenizer, template and --max-length?)",
                                 path, in.lineno, t, line);
            if (rc) break;
            if (!(e->weight[q] = malloc(sizeof(float) * (size_t)sq->len))) { rc = tm_fail(err, "out of memory"); break; }
            for (int t = 0; t < sq->len; t++) e->weight[q][t] = (float)w->items[off + t].num;
        }
        matched += e != NULL;
        json_doc_free(d);
    }
    io_lines_close(&in);
    if (!rc && matched < s->n) rc = tm_fail(err, "%s: weights for %d of %d training examples; every example needs a line", path, matched, s->n);
    return rc;
}

// ---- micro-batches: pack, forward, objective, backward ----

// LM_ROWS positions at a time go through the lm-head for the token metrics.
enum { LM_ROWS = 16 };

// Scratch reused by every micro-batch: the step-level trainer's packing buffers, plus
// the pairing and KTO labels of the micro-batch.

typedef struct step_buffers {
    trainer t;
    int *pair;
    uint8_t *desirable;
    // token metrics (mean_token_accuracy, entropy): the positions asked for, their argmax
    // and entropy, the next-token entropy the forward gives (token-aligned), and the
    // lm-head scratch: LM_ROWS hidden rows and their logits
    int *pos, *argmax;
    double *ent, *wbar;            // wbar: the mean lm-head row (DPO's mean logit)
    float *entropy_tok, *h, *z;
    uint8_t *chosen_seq;           // DPO: packed sequence s is a chosen one
    vl_perturb *perturb;           // --perturb (training micro-batches only), NULL: none
    int epoch;                     // the epoch of the step being run (the perturbations' draw)
} step_buffers;

static int buffers_init(step_buffers *b, model *m, const trainer_opts *o, tm_error *err) {
    memset(b, 0, sizeof *b);
    if (trainer_open(&b->t, m, o, 0, err)) return -1;
    size_t n = (size_t)o->cap_tokens;
    b->pair = malloc(sizeof(int) * 2 * (size_t)o->cap_seqs);
    b->desirable = malloc((size_t)o->cap_seqs);
    b->pos = malloc(sizeof(int) * n);
    b->argmax = malloc(sizeof(int) * n);
    b->ent = malloc(sizeof(double) * n);
    b->entropy_tok = malloc(sizeof(float) * n);
    b->h = malloc(sizeof(float) * LM_ROWS * (size_t)m->cfg.hidden);
    b->z = malloc(sizeof(float) * LM_ROWS * (size_t)m->cfg.vocab);
    b->wbar = malloc(sizeof(double) * (size_t)m->cfg.hidden);
    b->chosen_seq = malloc((size_t)o->cap_seqs);
    if (!b->pair || !b->desirable || !b->pos || !b->argmax || !b->ent || !b->entropy_tok || !b->h || !b->z || !b->wbar ||
        !b->chosen_seq)
        return tm_fail(err, "out of memory");
    return 0;
}

static void buffers_free(step_buffers *b) {
    trainer_close(&b->t);
    free(b->pair);
    free(b->desirable);
    free(b->pos); free(b->argmax); free(b->ent); free(b->entropy_tok); free(b->h); free(b->z);
    free(b->wbar); free(b->chosen_seq);
    memset(b, 0, sizeof *b);
}

// Per-token reference log-probs of every sequence of the examples marked in need (NULL:
// all) under model m. The examples are packed in file order, skipping the others, so a
// run that needs them all packs exactly as before and gets the same bits, and a run and
// its resumption (which mark the same examples) agree bit for bit. *done counts them.
// With --perturb (pert, DPO only) the sequences carry epoch's perturbed images and the
// log-probs go to ref_ep[epoch] (every epoch draws other images, so each has its own).
static int compute_reference(trainer *b, example_set *s, const uint8_t *need, int kl, vl_perturb *pert, int epoch, int n_epochs,
                             int *done, tm_error *err) {
    int todo = 0;
    for (int k = 0; k < s->n; k++) todo += !need || need[k];
    *done = todo;
    progress pb;
    progress_start(&pb, "reference log-probs", todo, "examples");
    int i = 0, counted = 0;
    while (i < s->n) {
        while (i < s->n && need && !need[i]) i++;
        if (i == s->n) break;
        trainer_clear(b);
        int first = i;
        while (i < s->n) {
            if (need && !need[i]) { i++; continue; }
            const example *e = &s->ex[i];
            int need = 0;
            for (int q = 0; q < e->d.nseq; q++) {
                int len = pert ? vl_perturb_len(pert, i, &e->d, q, epoch, err) : e->d.seq[q].len;
                if (len < 0) return -1;
                need += len;
            }
            if (kl) need += e->kl_len;
            if (i > first && (b->bb.n_tokens + need > b->cap_tokens || b->bb.n_seqs + 3 > b->cap_seqs)) break;
            for (int q = 0; q < e->d.nseq; q++)
                if (pert ? vl_perturb_add(pert, b, i, &e->d, q, epoch, NULL, err)
                         : add_images(b, s, &e->d, err) || trainer_add(b, e->d.seq[q].ids, e->d.seq[q].mask, e->d.seq[q].len, NULL, NULL, err))
                    return -1;
            if (kl && e->kl_len > 1 && trainer_add(b, e->kl_ids, e->kl_mask, e->kl_len, NULL, NULL, err)) return -1;
            i++;
        }
        // under LoRA the reference is the base: the same weights with the adapters off
        int adapters = model_lora_enable(b->m, 0);
        int frc = trainer_forward(b, NULL, err);
        model_lora_enable(b->m, adapters);
        if (frc) return -1;
        int sq = 0;
        for (int k = first; k < i; k++) {
            if (need && !need[k]) continue;
            example *e = &s->ex[k];
            counted++;
            if (pert && !e->ref_ep) {
                if (!(e->ref_ep = calloc(2 * (size_t)n_epochs, sizeof(float *)))) return tm_fail(err, "out of memory");
                e->n_ep = n_epochs;
            }
            for (int q = 0; q < e->d.nseq; q++, sq++) {
                int len = b->span[2 * sq + 1] - b->span[2 * sq];
                float **r = pert ? &e->ref_ep[2 * epoch + q] : &e->ref[q];
                *r = malloc(sizeof(float) * (size_t)len);
                if (!*r) return tm_fail(err, "out of memory");
                memcpy(*r, b->logp_tok + b->span[2 * sq], sizeof(float) * (size_t)len);
            }
            if (kl && e->kl_len > 1) {
                e->kl_ref = malloc(sizeof(float) * (size_t)e->kl_len);
                if (!e->kl_ref) return tm_fail(err, "out of memory");
                memcpy(e->kl_ref, b->logp_tok + b->span[2 * sq], sizeof(float) * (size_t)e->kl_len);
                sq++;
            }
        }
        progress_update(&pb, counted);
    }
    progress_finish(&pb);
    return 0;
}

// The examples steps [0, total) draw: every one once the run covers an epoch, else those
// of the first epoch's order up to the last step. Marked from step 0 even when resuming,
// so a resumed run computes the same references, packed the same way, as the whole run.
// Under mpirun (dist.h) only the positions [lo, hi) of each step's examples are this rank's
// (its micro-batches), so each rank computes the references it trains on: the reference
// pass scales with the ranks too.
static uint8_t *examples_drawn(int n, int seed, int64_t total, int64_t steps_per_epoch, int per_step, int lo, int hi) {
    uint8_t *need = calloc((size_t)n, 1);
    int *order = malloc(sizeof(int) * (size_t)n);
    if (!need || !order) { free(need); free(order); return NULL; }
    if (hi - lo < per_step) {
        int cur = -1;
        for (int64_t step = 0; step < total; step++) {
            int epoch = (int)(step / steps_per_epoch);
            if (epoch != cur) { epoch_order(order, n, seed, epoch); cur = epoch; }
            int64_t first = (step % steps_per_epoch) * per_step;
            for (int64_t k = first + lo; k < first + hi && k < n; k++) need[order[k]] = 1;
        }
    } else if (total >= steps_per_epoch) {
        memset(need, 1, (size_t)n);
    } else {
        epoch_order(order, n, seed, 0);
        int64_t upto = total * per_step < n ? total * per_step : n;
        for (int64_t k = 0; k < upto; k++) need[order[k]] = 1;
    }
    free(order);
    return need;
}

// The examples steps [s0, s1) of one epoch draw on this rank (positions [lo, hi) of each step).
static uint8_t *examples_in_steps(int n, int seed, int64_t s0, int64_t s1, int64_t steps_per_epoch, int per_step, int lo, int hi) {
    uint8_t *need = calloc((size_t)n, 1);
    int *order = malloc(sizeof(int) * (size_t)n);
    if (!need || !order) { free(need); free(order); return NULL; }
    epoch_order(order, n, seed, (int)(s0 / steps_per_epoch));
    for (int64_t step = s0; step < s1; step++) {
        int64_t first = (step % steps_per_epoch) * per_step;
        for (int64_t k = first + lo; k < first + hi && k < n; k++) need[order[k]] = 1;
    }
    free(order);
    return need;
}

// ---- metrics of one optimizer step (sums over its micro-batches) ----

typedef struct step_metrics {
    double loss;
    double num_tokens;     // every token of the batch (TRL: the attention mask's sum)
    // TRL's per-micro-batch means, summed here and averaged over the micro-batches of a
    // logging window as TRL averages its metric lists: mean_token_accuracy, entropy,
    // DPO's logits/chosen and logits/rejected
    double acc_sum, acc_n, ent_sum, ent_n, logits_chosen_sum, logits_rejected_sum, logits_n;
    dpo_metrics dpo;
    kto_metrics kto;
    sft_metrics sft;
    rm_metrics rm;
    double kl_sum, kl_count;
} step_metrics;

// Every field of step_metrics, and of the objectives' metric structs inside it, is a
// double sum, so adding two of them is adding them as arrays of doubles.
static void metrics_add(step_metrics *to, const step_metrics *from) {
    _Static_assert(sizeof(step_metrics) % sizeof(double) == 0, "step_metrics holds doubles only");
    double *t = (double *)to;
    const double *f = (const double *)from;
    for (size_t i = 0; i < sizeof *to / sizeof(double); i++) t[i] += f[i];
}

// The normalizers of a set of examples: what the whole optimizer step divides by.
typedef struct step_norm {
    double tokens, seqs, pairs, chosen_tokens;
    double positions;  // cDPO position form: per pair, the longer sequence's length
} step_norm;

static step_norm norm_of(const example_set *s, const int *idx, int n) {
    step_norm z = {0};
    for (int k = 0; k < n; k++) {
        const data_example *d = &s->ex[idx[k]].d;
        for (int q = 0; q < d->nseq; q++) {
            double c = 0;
            for (int t = 1; t < d->seq[q].len; t++) c += d->seq[q].mask[t];
            z.tokens += c;
            if (q == 0) z.chosen_tokens += c;
        }
        z.seqs += d->nseq;
        z.pairs += 1;
        z.positions += d->nseq == 2 && d->seq[1].len > d->seq[0].len ? d->seq[1].len : d->seq[0].len;
    }
    return z;
}

// The lm-head over the last forward's hidden states at positions pos[0..n): per
// position its argmax (the first maximum, as torch.argmax) and, when ent is given, the
// entropy of its next-token distribution. The fused lm-head kernel keeps no logits, so
// the metrics that need them recompute LM_ROWS rows at a time (one more lm-head
// forward over those positions, no backward).
static void lm_head_rows(model *m, step_buffers *b, const int *pos, int n, int *argmax, double *ent) {
    const float *H = model_last_hidden(m), *W = model_lm_head(m);
    int D = m->cfg.hidden, V = m->cfg.vocab;
    for (int i0 = 0; i0 < n; i0 += LM_ROWS) {
        int r = n - i0 < LM_ROWS ? n - i0 : LM_ROWS;
        for (int k = 0; k < r; k++) memcpy(b->h + (size_t)k * D, H + (size_t)pos[i0 + k] * D, sizeof(float) * (size_t)D);
        model_linear_fwd(m, b->z, b->h, W, NULL, r, D, V);  // W may be bf16 read in place
        // rows are independent: the same bits with any number of threads
        #pragma omp parallel for schedule(static)
        for (int k = 0; k < r; k++) {
            const float *z = b->z + (size_t)k * V;
            int best = 0;
            for (int j = 1; j < V; j++) if (z[j] > z[best]) best = j;
            argmax[i0 + k] = best;
            if (!ent) continue;
            // H = log sum e^(z - max) - sum p (z - max), summed in double
            double se = 0, sez = 0;
            float zmax = z[best];
            for (int j = 0; j < V; j++) {
                float d = z[j] - zmax, e = expf(d);
                se += e;
                sez += (double)e * d;
            }
            ent[i0 + k] = log(se) - sez / se;
        }
    }
}

// SFT's token metrics, as TRL's SFTTrainer logs them per micro-batch: entropy, the mean
// over every position of the batch (its attention mask); mean_token_accuracy, the
// fraction of trained tokens that are the argmax of the logits predicting them.
static void sft_token_metrics(model *m, step_buffers *b, step_metrics *out) {
    const batch_builder *bb = &b->t.bb;
    for (int i = 0; i < bb->n_tokens; i++) b->pos[i] = i;
    lm_head_rows(m, b, b->pos, bb->n_tokens, b->argmax, b->ent);
    double ent = 0, right = 0, trained = 0;
    for (int i = 0; i < bb->n_tokens; i++) {
        ent += b->ent[i];
        if (bb->targets[i] >= 0) trained++, right += b->argmax[i] == bb->targets[i];
    }
    if (bb->n_tokens) out->ent_sum += ent / bb->n_tokens, out->ent_n += 1;
    if (trained) out->acc_sum += right / trained, out->acc_n += 1;
}

// DPO's, as TRL's DPOTrainer logs them: entropy, the mean over the completion tokens of
// chosen and rejected (the forward's entropy_tok); logits/chosen and logits/rejected,
// the mean logit (over the vocabulary) at the positions predicting chosen / rejected
// completion tokens, pooled over the micro-batch; mean_token_accuracy on the chosen
// completions. The mean logit of a position is h . mean_j W_j, so it needs no logits.
static void dpo_token_metrics(model *m, step_buffers *b, const uint8_t *chosen_seq, step_metrics *out) {
    const trainer *t = &b->t;
    const batch_builder *bb = &t->bb;
    const float *H = model_last_hidden(m);
    int D = m->cfg.hidden;
    double *wbar = b->wbar;
    model_lm_head_mean(m, wbar);
    double ent = 0, n_ent = 0, lg[2] = {0, 0}, n_lg[2] = {0, 0};
    int n_pos = 0;
    for (int s = 0; s < bb->n_seqs; s++)
        for (int i = t->span[2 * s] + 1; i < t->span[2 * s + 1]; i++) {
            if (!t->mask_tok[i]) continue;
            int c = chosen_seq[s] ? 0 : 1;
            double dot = 0;
            for (int d = 0; d < D; d++) dot += (double)H[(size_t)(i - 1) * D + d] * wbar[d];
            lg[c] += dot, n_lg[c]++;
            ent += b->entropy_tok[i], n_ent++;
            if (c == 0) b->pos[n_pos++] = i - 1;
        }
    lm_head_rows(m, b, b->pos, n_pos, b->argmax, NULL);
    double right = 0;
    for (int k = 0; k < n_pos; k++) right += b->argmax[k] == bb->targets[b->pos[k]];
    if (n_ent) out->ent_sum += ent / n_ent, out->ent_n += 1;
    if (n_pos) out->acc_sum += right / n_pos, out->acc_n += 1;
    out->logits_chosen_sum += n_lg[0] ? lg[0] / n_lg[0] : 0;
    out->logits_rejected_sum += n_lg[1] ? lg[1] / n_lg[1] : 0;
    out->logits_n += 1;
}

// A reward-model micro-batch: scores of chosen and rejected, Bradley-Terry loss.
static int run_micro_rm(const train_args *a, model *m, const example_set *s, const int *idx, int n, const step_norm *z,
                        step_buffers *b, int train, step_metrics *out, tm_error *err) {
    trainer_clear(&b->t);
    for (int k = 0; k < n; k++)
        for (int q = 0; q < 2; q++) {
            const data_seq *sq = &s->ex[idx[k]].d.seq[q];
            if (add_images(&b->t, s, &s->ex[idx[k]].d, err) || trainer_add(&b->t, sq->ids, sq->mask, sq->len, NULL, NULL, err)) return -1;
        }
    model_batch mb = batch_view(&b->t.bb);
    // scores live in the token-aligned buffers: chosen k at [k], rejected at [n + k]
    float *r = b->t.logp_tok, *dr = b->t.dlogp_tok;
    if (train) trainer_dropout_next(&b->t);
    if (model_reward_forward(m, &mb, b->t.logp_pos, err)) return -1;
    for (int k = 0; k < n; k++) r[k] = b->t.logp_pos[2 * k], r[n + k] = b->t.logp_pos[2 * k + 1];
    step_metrics mine = {0};
    if (rm_bt_loss(n, r, r + n, NULL, a->center_rewards_coefficient, z->pairs, &mine.loss, dr, dr + n, &mine.rm, err)) return -1;
    mine.num_tokens = mb.n_tokens;
    metrics_add(out, &mine);
    if (train) {
        for (int k = 0; k < n; k++) b->t.dlogp_pos[2 * k] = dr[k], b->t.dlogp_pos[2 * k + 1] = dr[n + k];
        model_reward_backward(m, &mb, b->t.dlogp_pos);
    }
    return 0;
}

// One micro-batch: forward, objective, and (when train) backward.
static int run_micro(const train_args *a, model *m, const example_set *s, const int *idx, int n, const step_norm *z,
                     step_buffers *b, int train, step_metrics *out, tm_error *err) {
    if (a->method == TRAIN_RM) return run_micro_rm(a, m, s, idx, n, z, b, train, out, err);
    step_metrics mine = {0};
    // KTO: the reference point z0 from this micro-batch's mismatched pairs (policy forward, no backward)
    double z0 = 0;
    if (a->method == TRAIN_KTO && a->kto.loss_type == KTO_LOSS_KTO) {
        trainer_clear(&b->t);
        for (int k = 0; k < n; k++) {
            const example *e = &s->ex[idx[k]];
            if (e->kl_len > 1 && trainer_add(&b->t, e->kl_ids, e->kl_mask, e->kl_len, e->kl_ref, NULL, err)) return -1;
        }
        if (b->t.bb.n_seqs) {
            if (trainer_forward(&b->t, NULL, err)) return -1;
            seq_batch kb = trainer_view(&b->t, 1);
            z0 = kto_z0(&kb);
        }
        mine.kl_sum = z0;
        mine.kl_count = 1;
    }
    trainer_clear(&b->t);
    uint8_t *chosen_seq = b->chosen_seq;  // DPO: the first sequence of each example is the chosen one
    for (int k = 0; k < n; k++) {
        const example *e = &s->ex[idx[k]];
        for (int q = 0; q < e->d.nseq; q++) {
            b->pair[b->t.bb.n_seqs] = b->t.bb.n_seqs;
            if (a->method == TRAIN_DPO) chosen_seq[b->t.bb.n_seqs] = q == 0;
            if (train && b->perturb) {
                const float *ref = e->ref_ep && b->epoch < e->n_ep ? e->ref_ep[2 * b->epoch + q] : NULL;
                if (a->method == TRAIN_DPO && !ref)
                    return tm_fail(err, "--perturb: no reference log-probs for example %d in epoch %d", idx[k], b->epoch);
                if (vl_perturb_add(b->perturb, &b->t, idx[k], &e->d, q, b->epoch, ref, err)) return -1;
            } else if (add_images(&b->t, s, &e->d, err) ||
                       trainer_add(&b->t, e->d.seq[q].ids, e->d.seq[q].mask, e->d.seq[q].len, e->ref[q], e->weight[q], err))
                return -1;
        }
        b->desirable[k] = e->d.label == 1;
    }
    if (train) trainer_dropout_next(&b->t);  // LoRA dropout in the forwards whose backward follows
    if (trainer_forward(&b->t, a->method == TRAIN_DPO ? b->entropy_tok : NULL, err)) return -1;
    if (a->method == TRAIN_SFT) sft_token_metrics(m, b, &mine);
    if (a->method == TRAIN_DPO) dpo_token_metrics(m, b, chosen_seq, &mine);
    seq_batch sb = trainer_view(&b->t, a->method != TRAIN_SFT);
    double loss = 0;
    switch (a->method) {
    case TRAIN_SFT:
        if (sft_loss(&sb, a->sft_per_sequence, a->sft_per_sequence ? z->seqs : z->tokens, &loss, b->t.dlogp_tok, &mine.sft, err)) return -1;
        break;
    case TRAIN_DPO: {
        dpo_norm dn = {z->pairs, z->chosen_tokens, z->positions};
        if (dpo_loss(&sb, n, b->pair, &a->dpo, &dn, &loss, b->t.dlogp_tok, &mine.dpo, err)) return -1;
        break;
    }
    case TRAIN_KTO:
        if (kto_loss(&sb, b->desirable, z0, &a->kto, z->seqs, &loss, b->t.dlogp_tok, &mine.kto, err)) return -1;
        break;
    case TRAIN_RM: break;  // run_micro_rm
    }
    mine.loss = loss;
    mine.num_tokens = sb.n_tokens;
    metrics_add(out, &mine);
    if (train) trainer_backward(&b->t);
    return 0;
}

// Appends the method's metrics (averages, TRL's names) to a JSON object under construction.
static void put_metric(sbuf *o, const char *prefix, const char *name, double v) {
    sbuf_printf(o, ", \"%s%s\": ", prefix, name);
    sbuf_json_float(o, v);
}

// The four pair metrics DPO and the reward model share, from sums over n pairs.
static void put_pair_rewards(sbuf *o, const char *prefix, double n, double chosen, double rejected, double accuracies,
                             double margins) {
    put_metric(o, prefix, "rewards/chosen", chosen / n);
    put_metric(o, prefix, "rewards/rejected", rejected / n);
    put_metric(o, prefix, "rewards/accuracies", accuracies / n);
    put_metric(o, prefix, "rewards/margins", margins / n);
}

static void put_method_metrics(sbuf *o, const train_args *a, const step_metrics *s, const char *prefix) {
    if (s->ent_n > 0) put_metric(o, prefix, "entropy", s->ent_sum / s->ent_n);
    if (s->acc_n > 0) put_metric(o, prefix, "mean_token_accuracy", s->acc_sum / s->acc_n);
    if (s->logits_n > 0) {
        put_metric(o, prefix, "logits/chosen", s->logits_chosen_sum / s->logits_n);
        put_metric(o, prefix, "logits/rejected", s->logits_rejected_sum / s->logits_n);
    }
    if (a->method == TRAIN_DPO && s->dpo.n_pairs > 0) {
        double n = s->dpo.n_pairs;
        put_pair_rewards(o, prefix, n, s->dpo.rewards_chosen, s->dpo.rewards_rejected, s->dpo.rewards_accuracies,
                         s->dpo.rewards_margins);
        put_metric(o, prefix, "logps/chosen", s->dpo.logps_chosen / n);
        put_metric(o, prefix, "logps/rejected", s->dpo.logps_rejected / n);
        if (s->dpo.chosen_tokens > 0 && (a->dpo.loss_weight[DPO_SFT] > 0 || a->dpo.rpo_alpha > 0))
            put_metric(o, prefix, "nll_loss", s->dpo.nll_sum / s->dpo.chosen_tokens);
    }
    if (a->method == TRAIN_RM && s->rm.n_pairs > 0)
        put_pair_rewards(o, prefix, s->rm.n_pairs, s->rm.rewards_chosen, s->rm.rewards_rejected, s->rm.rewards_accuracies,
                         s->rm.rewards_margins);
    if (a->method == TRAIN_KTO) {
        const kto_metrics *k = &s->kto;
        if (k->count_chosen > 0) {
            put_metric(o, prefix, "rewards/chosen", k->rewards_chosen_sum / k->count_chosen);
            put_metric(o, prefix, "logps/chosen", k->logps_chosen_sum / k->count_chosen);
        }
        if (k->count_rejected > 0) {
            put_metric(o, prefix, "rewards/rejected", k->rewards_rejected_sum / k->count_rejected);
            put_metric(o, prefix, "logps/rejected", k->logps_rejected_sum / k->count_rejected);
        }
        if (k->count_chosen > 0 && k->count_rejected > 0)
            put_metric(o, prefix, "rewards/margins", k->rewards_chosen_sum / k->count_chosen - k->rewards_rejected_sum / k->count_rejected);
        if (s->kl_count > 0) put_metric(o, prefix, "kl", s->kl_sum / s->kl_count);
    }
}

// ---- the run ----

static data_format format_for(const train_args *a, tm_error *err, int *ok) {
    *ok = 1;
    const char *name = a->dataset_format ? a->dataset_format : a->method == TRAIN_SFT ? "sft" : a->method == TRAIN_KTO ? "kto" : "dpo";
    int f = data_format_from_name(name);
    int allowed = f >= 0 && ((a->method == TRAIN_SFT && (f == DATA_SFT || f == DATA_TRAJECTORY)) ||
                             ((a->method == TRAIN_DPO || a->method == TRAIN_RM) && (f == DATA_DPO || f == DATA_STEP)) ||
                             (a->method == TRAIN_KTO && (f == DATA_KTO || f == DATA_TRAJECTORY)));
    if (!allowed) {
        *ok = 0;
        tm_fail(err, "--dataset-format %s does not fit this trainer (sft: sft|trajectory, dpo: dpo|step, kto: kto|trajectory)", name);
    }
    return (data_format)(f < 0 ? 0 : f);
}

// Fisher-Yates permutation of 0..n-1 for one epoch, from the seed and the epoch number.
static void epoch_order(int *order, int n, int seed, int epoch) {
    rng r;
    rng_seed(&r, (uint64_t)seed * 1000003u + (uint64_t)epoch);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

static int evaluate(const train_args *a, model *m, const example_set *ev, step_buffers *b, int64_t step, double epoch,
                    sbuf *line, tm_error *err) {
    int bs = a->per_device_train_batch_size;
    int *idx = malloc(sizeof(int) * (size_t)ev->n);
    for (int i = 0; i < ev->n; i++) idx[i] = i;
    step_norm z = norm_of(ev, idx, ev->n);
    step_metrics s = {0};
    int rc = 0;
    for (int i = 0; i < ev->n && !rc; i += bs) rc = run_micro(a, m, ev, idx + i, i + bs <= ev->n ? bs : ev->n - i, &z, b, 0, &s, err);
    free(idx);
    if (rc) return -1;
    // run_micro normalized each micro-batch by the whole set, so the sum is the set's loss
    sbuf_clear(line);
    sbuf_printf(line, "{\"step\": %lld, \"epoch\": ", (long long)step);
    sbuf_json_float(line, epoch);
    put_metric(line, "", "eval_loss", s.loss);
    put_method_metrics(line, a, &s, "eval_");
    sbuf_puts(line, "}");
    return 0;
}

// --report-to as TRL reads it (a comma-separated list): metrics.jsonl is always written;
// tensorboard (or all) adds event files; none and jsonl add nothing.
static int parse_report_to(const char *list, int *tensorboard, tm_error *err) {
    *tensorboard = 0;
    if (!list) return 0;
    char buf[256], *save;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (!strcmp(t, "tensorboard") || !strcmp(t, "all")) *tensorboard = 1;
        else if (strcmp(t, "none") && strcmp(t, "jsonl"))
            return tm_fail(err, "--report-to %s is not supported (none, jsonl, tensorboard, all; metrics.jsonl is always written)", t);
    }
    return 0;
}

// TRL's default logging_dir: <output-dir>/runs/<Mon DD_HH-MM-SS>_<host>.
static void tensorboard_dir(const char *output_dir, char *out, size_t cap) {
    char host[128] = "localhost", stamp[64], name[256];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tmv;
    strftime(stamp, sizeof stamp, "%b%d_%H-%M-%S", localtime_r(&now, &tmv));
    snprintf(name, sizeof name, "runs/%s_%s", stamp, host);
    io_join(out, cap, output_dir, name);
}

// Where each log_history entry goes: metrics.jsonl (flushed), the checkpoint state's
// history, and the TensorBoard file as transformers' TensorBoardCallback writes it
// (every number but step, eval_x as eval/x, anything else as train/x, at the global step).
typedef struct run_log {
    FILE *metrics;
    checkpoint_state *st;
    tm_tfevents tb;
    int tensorboard;
} run_log;

static int emit(run_log *lg, const char *line, tm_error *err) {
    if (lg->metrics) {  // rank 0's (the others keep the history only)
        fprintf(lg->metrics, "%s\n", line);
        fflush(lg->metrics);
    }
    if (checkpoint_log(lg->st, line)) return tm_fail(err, "out of memory");
    if (!lg->tensorboard) return 0;
    json_doc *d = json_parse(line, strlen(line), err);
    if (!d) return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double wall = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    const json *r = json_root(d);
    int rc = 0;
    for (int i = 0; i < r->n && !rc; i++) {
        const char *k = r->keys[i];
        if (r->items[i].type != JSON_NUMBER || !strcmp(k, "step")) continue;
        char tag[256];
        if (!strncmp(k, "eval_", 5)) snprintf(tag, sizeof tag, "eval/%s", k + 5);
        else snprintf(tag, sizeof tag, "train/%s", k);
        rc = tfevents_scalar(&lg->tb, tag, r->items[i].num, lg->st->global_step, wall, err);
    }
    json_doc_free(d);
    return rc ? -1 : tfevents_flush(&lg->tb, err);
}

int train_run(const train_args *args, tm_error *err) {
    // --resume-from-checkpoint true|last: the newest complete checkpoint of --output-dir
    train_args resolved = *args;
    const train_args *a = &resolved;
    char latest[4096];
    if (checkpoint_resolve(args->resume_from_checkpoint, args->output_dir, latest, sizeof latest,
                           &resolved.resume_from_checkpoint, err))
        return -1;
    int ok;
    data_format fmt = format_for(a, err, &ok);
    if (!ok) return -1;
    if (!a->model || !a->data || !a->output_dir) return tm_fail(err, "--model, --data and --output-dir are required");
    if (!*a->model) return tm_fail(err, "--model is empty");
    if (train_args_check(a, err)) return -1;
    int tensorboard;
    if (parse_report_to(a->report_to, &tensorboard, err)) return -1;
    lr_schedule sched;
    if (lr_schedule_parse(a->lr_scheduler_type, &sched))
        return tm_fail(err, "unknown --lr-scheduler-type \"%s\" (linear, cosine, constant, constant_with_warmup)", a->lr_scheduler_type);
    // everything that can be checked is checked before the expensive part (loading,
    // reference log-probs), so a bad directory fails in a second, not after an hour
    if (a->resume_from_checkpoint && checkpoint_check(a->resume_from_checkpoint, err)) return -1;
    // data parallel (dist.h): every rank loads everything and runs the same loop on its
    // share of each global step; rank 0 alone writes
    int world = dist_size(), rank = dist_rank();
    if (rank == 0 &&
        train_prepare_output_dir(a->output_dir, a->model, a->ref_model, a->resume_from_checkpoint, a->overwrite_output_dir, err))
        return -1;

    int rc = -1;
    model m = {0};
    tok_tokenizer *tok = NULL;
    example_set train = {0}, eval = {0};
    step_buffers buf = {0};
    vl_perturb *pert = NULL;
    checkpoint_state st = {0};
    int *order = NULL, *step_ex = NULL, *micro_at = NULL;
    train_rows rows = {0};
    FILE *metrics = NULL;
    run_log lg = {0};
    sbuf line;
    sbuf_init(&line);
    tok_chat chat;
    int have_chat;

    // the reference model is the initial policy unless --ref-model names another
    const char *ref_dir = a->ref_model ? a->ref_model : a->model;
    // under LoRA the policy's base is frozen: a bf16 one is read in place (model_load_frozen);
    // so is this first load when it is the policy too (the reference is the policy, adapters off)
    int frozen_ref = a->method != TRAIN_RM && (a->lora.use_peft || lora_is_adapter_dir(a->model)) && ref_dir == a->model;
    if (a->method == TRAIN_RM ? model_load_reward(&m, a->resume_from_checkpoint && !a->lora.use_peft ? a->resume_from_checkpoint : a->model,
                                                  (uint64_t)a->seed, err)
                              : frozen_ref ? model_load_frozen(&m, ref_dir, err) : model_load(&m, ref_dir, err))
        goto done;
    // without a tokenizer only pre-tokenized data (TRL's *_input_ids columns) can be read
    tok = tok_load(a->model, err);
    if (tok && tok_set_chat_kwargs(tok, a->chat_template_kwargs, err)) goto done;
    have_chat = tok && !a->no_chat_template && tok_chat_for(tok, a->chat_template, &chat, err) == 0;
    if (a->chat_template && !have_chat) goto done;
    // a vision-language model reads rows with images through its processor (preprocessor_config.json, else HF's defaults)
    img_qwen2vl_config icfg;
    img_qwen2vl_defaults(&icfg);
    if (m.vis) {
        char pp[4096];
        io_join(pp, sizeof pp, a->model, "preprocessor_config.json");
        if (io_exists(pp) && img_qwen2vl_load_config(&icfg, pp, err)) goto done;
    }
    if (load_examples(tok, have_chat ? &chat : NULL, a, fmt, a->data, m.cfg.vocab, m.vis ? &icfg : NULL, m.cfg.image_token_id, &train, err))
        goto done;
    if (a->eval_data && load_examples(tok, have_chat ? &chat : NULL, a, fmt, a->eval_data, m.cfg.vocab, m.vis ? &icfg : NULL,
                                      m.cfg.image_token_id, &eval, err))
        goto done;
    int kl = a->method == TRAIN_KTO && a->kto.loss_type == KTO_LOSS_KTO;
    if (kl && (build_kl_pairs(&train, a->per_device_train_batch_size) || (eval.n && build_kl_pairs(&eval, a->per_device_train_batch_size)))) {
        tm_fail(err, "out of memory");
        goto done;
    }

    if (a->token_weights) {
        if (a->method != TRAIN_DPO) { tm_fail(err, "--token-weights is for dpo (cDPO)"); goto done; }
        // the weights name examples by data line, which is one file's numbering
        if (data_list_count(a->data) > 1 || a->data_weights) { tm_fail(err, "--token-weights needs a single --data file, unweighted"); goto done; }
        if (load_token_weights(a->token_weights, &train, err)) goto done;
    }
    // buffers big enough for the largest micro-batch (or reference chunk)
    int longest = 0, bs = a->per_device_train_batch_size;
    example_set *sets[2] = {&train, &eval};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < sets[k]->n; i++) {
            int l = 0;
            for (int q = 0; q < sets[k]->ex[i].d.nseq; q++) l += sets[k]->ex[i].d.seq[q].len;
            if (sets[k]->ex[i].kl_len > l) l = sets[k]->ex[i].kl_len;
            if (l > longest) longest = l;
        }
    // --perturb: the training set's images, in example order; room for the largest perturbed image
    if (a->perturb) {
        if (a->method != TRAIN_SFT && a->method != TRAIN_DPO) { tm_fail(err, "--perturb is for sft and dpo"); goto done; }
        if (a->token_weights) { tm_fail(err, "--perturb with --token-weights: the weights are per token of the unperturbed rows"); goto done; }
        if (!m.vis) { tm_fail(err, "--perturb: %s is not a vision-language model", a->model); goto done; }
        if (a->packing) { tm_fail(err, "--perturb with --packing: a perturbed image changes the row's length; drop one of them"); goto done; }
        uint64_t ps = a->perturb_seed >= 0 ? (uint64_t)a->perturb_seed : (uint64_t)a->seed;
        if (!(pert = calloc(1, sizeof *pert))) { tm_fail(err, "out of memory"); goto done; }
        if (vl_perturb_init(pert, a->perturb, ps, &icfg, m.cfg.image_token_id, err)) goto done;
        int maxtok = vl_perturb_max_tokens(pert);
        for (int i = 0; i < train.n; i++) {
            data_example *d = &train.ex[i].d;
            if (vl_perturb_add_example(pert, d, err)) goto done;
            int l = 0;  // DPO: chosen and rejected, each with the images
            for (int q = 0; q < d->nseq; q++) l += d->seq[q].len + d->n_images * maxtok;
            if (d->n_images && l > longest) longest = l;
        }
        if (!pert->n) { tm_fail(err, "--perturb: the training data has no images"); goto done; }
        fprintf(stderr, "temper: --perturb %s (seed %llu): %d images, drawn anew each epoch\n", a->perturb, (unsigned long long)ps, pert->n);
    }
    // the rows a micro-batch takes: one example each, or --packing's rows of max_length tokens
    if (a->packing) {
        int *len = malloc(sizeof(int) * (size_t)(train.n ? train.n : 1));
        if (!len) { tm_fail(err, "out of memory"); goto done; }
        for (int i = 0; i < train.n; i++) len[i] = train.ex[i].d.seq[0].len;
        int prc = train_rows_pack(len, train.n, a->max_length, &rows, err);
        free(len);
        if (prc) goto done;
    } else if (train_rows_single(train.n, &rows, err)) goto done;
    if (a->packing && a->max_length > longest) longest = a->max_length;
    int seqs = bs * rows.max_per_row;
    int cap_tokens = longest * bs > 8192 ? longest * bs : 8192;
    trainer_opts to = {{a->learning_rate, a->adam_beta1, a->adam_beta2, a->adam_epsilon, a->weight_decay}, a->max_grad_norm, sched, 0, 0,
                       cap_tokens, 3 * (seqs > 64 ? seqs : 64), a->method == TRAIN_RM, a->zero, a->bf16, a->gradient_checkpointing, a->profile};
    if (buffers_init(&buf, &m, &to, err)) goto done;
    buf.perturb = pert;
    buf.t.has_weights = a->token_weights != NULL;

    // the global step: per-device batch × accumulation × ranks rows (one example each unless --packing)
    int per_step = bs * a->gradient_accumulation_steps * world;
    int64_t steps_per_epoch = (rows.n + per_step - 1) / per_step;
    int64_t total = a->max_steps > 0 ? a->max_steps : (int64_t)ceil(a->num_train_epochs * (double)steps_per_epoch);
    int ref_examples = 0;
    if (a->method == TRAIN_DPO || a->method == TRAIN_KTO) {
        // references only for the examples the run's steps draw (--max-steps 3 on a big
        // file needs a few, not all); the eval set is evaluated whole
        int mine = bs * a->gradient_accumulation_steps;  // this rank's rows of each step
        uint8_t *need = examples_drawn(train.n, a->seed, total, steps_per_epoch, per_step, rank * mine, (rank + 1) * mine);
        int eval_done;
        if (!need) { tm_fail(err, "out of memory"); goto done; }
        // (--perturb: the training set's references come per epoch, below)
        int bad = (!pert && compute_reference(&buf.t, &train, need, kl, NULL, 0, 0, &ref_examples, err)) ||
                  (eval.n && compute_reference(&buf.t, &eval, NULL, kl, NULL, 0, 0, &eval_done, err));
        free(need);
        if (bad) goto done;
        if (pert) {
            // --perturb: each epoch's images are others, so each epoch the run reaches gets its
            // references, with those images, from the same reference model (before any step)
            int n_ep = (int)((total + steps_per_epoch - 1) / steps_per_epoch);
            for (int ep = 0; ep < n_ep && !bad; ep++) {
                int64_t s0 = (int64_t)ep * steps_per_epoch, s1 = s0 + steps_per_epoch < total ? s0 + steps_per_epoch : total;
                uint8_t *ne = examples_in_steps(train.n, a->seed, s0, s1, steps_per_epoch, per_step, rank * mine, (rank + 1) * mine);
                int n_done;
                if (!ne) { tm_fail(err, "out of memory"); goto done; }
                bad = compute_reference(&buf.t, &train, ne, 0, pert, ep, n_ep, &n_done, err);
                if (ep == 0) ref_examples = n_done;
                free(ne);
            }
            if (bad) goto done;
        }
        double counted = ref_examples;  // under mpirun: every rank's share, summed
        if (dist_allreduce_sum_f64(&counted, 1, err)) goto done;
        ref_examples = (int)counted;
        fprintf(stderr, "temper: reference log-probs for %d of %d training examples (those the %lld steps draw%s%s)\n", ref_examples,
                train.n, (long long)total, world > 1 ? ", each on the rank that trains it" : "",
                pert ? "; --perturb: again in each later epoch, with its images" : "");
    }
    // the policy: the initial model (already loaded when it is also the reference), or a checkpoint
    // (under LoRA a checkpoint holds the adapters only: the policy is the base plus those)
    int peft = a->lora.use_peft || lora_is_adapter_dir(a->model);
    const char *resume_full = peft ? NULL : a->resume_from_checkpoint;
    if (a->method != TRAIN_RM && (resume_full || (a->ref_model && strcmp(a->ref_model, a->model)))) {
        model_free(&m);
        const char *from = resume_full ? resume_full : a->model;
        if (peft ? model_load_frozen(&m, from, err) : model_load(&m, from, err)) goto done;
        model_set_checkpointing(&m, a->gradient_checkpointing);
        if (model_reserve(&m, cap_tokens, err)) goto done;
    }
    if (model_lora_prepare(&m, &a->lora, a->model, peft ? a->resume_from_checkpoint : NULL, (uint64_t)a->seed, err)) goto done;
    if (a->freeze_vision_tower) {
        if (!m.vis) { tm_fail(err, "--freeze-vision-tower: %s is not a vision-language model (no vision tower)", a->model); goto done; }
        vision_freeze(&m);
    }
    if (trainer_enable_train(&buf.t, err)) goto done;

    int64_t warmup = a->warmup_steps > 0 ? a->warmup_steps : (int64_t)ceil(a->warmup_ratio * (double)total);
    int eval_steps = a->eval_steps > 0 ? a->eval_steps : a->logging_steps;
    buf.t.o.warmup_steps = warmup;
    buf.t.o.total_steps = total;

    char metrics_path[4096];
    io_join(metrics_path, sizeof metrics_path, a->output_dir, "metrics.jsonl");
    if (a->resume_from_checkpoint) {
        if (trainer_resume(&buf.t, a->resume_from_checkpoint, &st, err)) goto done;
        fprintf(stderr, "temper: resuming from %s at step %lld\n", a->resume_from_checkpoint, (long long)st.global_step);
    }
    // metrics.jsonl restarts from the checkpoint's log history, so a resumed run's file
    // is the same as an uninterrupted one's
    if (rank == 0) {
        io_atomic w;
        if (io_atomic_open(&w, metrics_path, err)) goto done;
        for (int i = 0; i < st.n_log; i++) fprintf(w.f, "%s\n", st.log[i]);
        if (io_atomic_commit(&w, err)) goto done;
        metrics = fopen(metrics_path, "a");
        if (!metrics) { tm_fail(err, "%s: %s", metrics_path, strerror(errno)); goto done; }
    }
    lg.metrics = metrics;
    lg.st = &st;
    if (tensorboard && rank == 0) {
        char tb_dir[4096];
        tensorboard_dir(a->output_dir, tb_dir, sizeof tb_dir);
        if (tfevents_open(&lg.tb, tb_dir, err)) goto done;
        lg.tensorboard = 1;
    }

    order = malloc(sizeof(int) * (size_t)(rows.n ? rows.n : 1));
    step_ex = malloc(sizeof(int) * (size_t)(train.n ? train.n : 1));
    micro_at = malloc(sizeof(int) * (size_t)(a->gradient_accumulation_steps * world + 1));
    if (!order || !step_ex || !micro_at) { tm_fail(err, "out of memory"); goto done; }
    progress pb;
    static const char *names[] = {"sft", "dpo", "kto", "reward-model"};
    progress_start(&pb, names[a->method], total, "steps");
    step_metrics window = {0};
    int window_steps = 0;
    double grad_norm_sum = 0, window_start = now_seconds(), run_start = window_start;
    int64_t first_step = st.global_step, samples_run = 0;
    int cur_epoch = -1;
    for (int64_t step = st.global_step; step < total; step++) {
        int epoch = (int)(step / steps_per_epoch);
        if (epoch != cur_epoch) { epoch_order(order, rows.n, a->seed, epoch); cur_epoch = epoch; }
        int first = (int)(step % steps_per_epoch) * per_step;
        int count = first + per_step <= rows.n ? per_step : rows.n - first;
        // the step's examples, row by row; micro-batch j is step_ex[micro_at[j] .. micro_at[j + 1])
        int nex = 0, nmicro = 0;
        for (int k = 0; k < count; k++) {
            if (k % bs == 0) micro_at[nmicro++] = nex;
            int r = order[first + k];
            for (int e = rows.start[r]; e < rows.start[r + 1]; e++) step_ex[nex++] = rows.ex[e];
        }
        micro_at[nmicro] = nex;
        // the normalizers of the whole global step (every rank holds every example, so the
        // counts need no message); this rank runs micro-batches [rank·ga, (rank+1)·ga)
        step_norm z = norm_of(&train, step_ex, nex);
        step_metrics sm = {0};
        int ga = a->gradient_accumulation_steps, j0 = rank * ga, j1 = j0 + ga < nmicro ? j0 + ga : nmicro;
        for (int j = j0; j < j1; j++)
        {
            buf.epoch = epoch;
            if (run_micro(a, &m, &train, step_ex + micro_at[j], micro_at[j + 1] - micro_at[j], &z, &buf, 1, &sm, err)) goto done;
        }
        // every metric is a sum: over ranks it is the global step's
        if (dist_allreduce_sum_f64((double *)&sm, sizeof sm / sizeof(double), err)) goto done;
        double gnorm;
        if (trainer_step_all(&buf.t, step, &gnorm, err)) goto done;
        st.global_step = step + 1;
        st.num_tokens += sm.num_tokens;
        st.total_loss += sm.loss;
        samples_run += count;
        double ep = (double)(step + 1) / (double)steps_per_epoch;
        metrics_add(&window, &sm);  // averaged over the logging window, as transformers logs
        grad_norm_sum += gnorm;
        window_steps++;
        if (!isfinite(sm.loss)) { tm_fail(err, "step %lld: the loss is %f; stopping (the last checkpoint is intact)", (long long)step + 1, sm.loss); goto done; }
        progress_set_extra(&pb, "loss %.4f", sm.loss);
        if (!a->quiet) progress_update(&pb, step + 1);
        int last = step + 1 == total;
        if ((st.global_step % a->logging_steps == 0 || last) && window_steps) {
            sbuf_clear(&line);
            sbuf_printf(&line, "{\"step\": %lld, \"epoch\": ", (long long)st.global_step);
            sbuf_json_float(&line, ep);
            put_metric(&line, "", "loss", window.loss / window_steps);
            put_metric(&line, "", "grad_norm", grad_norm_sum / window_steps);
            // transformers logs the rate the scheduler holds after its step: the next step's
            put_metric(&line, "", "learning_rate", trainer_lr(&buf.t, step + 1));
            put_metric(&line, "", "num_tokens", st.num_tokens);
            put_metric(&line, "", "tokens_per_second", window.num_tokens / (now_seconds() - window_start));
            put_method_metrics(&line, a, &window, "");
            if (st.n_log == 0) {
                // the data as the run saw it, once (transformers has no such entry; the keys are ours)
                sbuf_printf(&line, ", \"train_examples\": %d, \"truncated_examples\": %ld, \"dropped_examples\": %ld", train.n,
                            train.truncated, train.dropped);
                if (a->packing) sbuf_printf(&line, ", \"packed_rows\": %d", rows.n);
                if (a->method == TRAIN_DPO || a->method == TRAIN_KTO) sbuf_printf(&line, ", \"ref_examples\": %d", ref_examples);
            }
            sbuf_puts(&line, "}");
            if (emit(&lg, line.data, err)) goto done;
            if (a->quiet || !pb.tty) fprintf(stderr, "%s\n", line.data);
            memset(&window, 0, sizeof window);
            window_steps = 0;
            grad_norm_sum = 0;
            window_start = now_seconds();
        }
        if (eval.n && (st.global_step % eval_steps == 0 || last)) {
            if (evaluate(a, &m, &eval, &buf, st.global_step, ep, &line, err)) goto done;
            if (emit(&lg, line.data, err)) goto done;
            fprintf(stderr, "%s%s\n", pb.tty ? "\r\033[K" : "", line.data);
        }
        st.epoch = ep;
        // the last step always gets a checkpoint (transformers saves at the end of a run),
        // so a finished run can be extended with its optimizer state
        if (a->save_steps > 0 && (st.global_step % a->save_steps == 0 || last)) {
            if (trainer_save(&buf.t, a->output_dir, &st, a->save_total_limit, err)) goto done;
        }
    }
    if (!a->quiet) progress_finish(&pb);
    // transformers' last log_history entry: the run's speed and its mean step loss (the
    // rates over what this process ran; train_loss over every step, a resumed run's too)
    if (st.global_step > first_step) {
        double runtime = now_seconds() - run_start;
        sbuf_clear(&line);
        sbuf_printf(&line, "{\"step\": %lld, \"epoch\": ", (long long)st.global_step);
        sbuf_json_float(&line, st.epoch);
        put_metric(&line, "", "train_runtime", round(runtime * 1e4) / 1e4);
        put_metric(&line, "", "train_samples_per_second", round((double)samples_run / runtime * 1e3) / 1e3);
        put_metric(&line, "", "train_steps_per_second", round((double)(st.global_step - first_step) / runtime * 1e3) / 1e3);
        put_metric(&line, "", "train_loss", st.total_loss / (double)st.global_step);
        // under mpirun: rank 0's seconds per step inside collectives (the gradient sum, and
        // waiting for the slowest rank), our key
        if (world > 1) put_metric(&line, "", "dist_seconds_per_step", dist_comm_seconds() / (double)(st.global_step - first_step));
        sbuf_puts(&line, "}");
        if (emit(&lg, line.data, err)) goto done;
        if (a->quiet || !pb.tty) fprintf(stderr, "%s\n", line.data);
    }
    if (rank == 0 && model_save(&m, a->output_dir, 0, err)) goto done;
    if (rank == 0 && checkpoint_write_trainer_state(a->output_dir, &st, err)) goto done;
    fprintf(stderr, "temper: trained %lld steps; model saved to %s (metrics: %s)\n", (long long)st.global_step, a->output_dir, metrics_path);
    trainer_profile_report(&buf.t, stderr);
    rc = 0;
done:
    if (lg.tensorboard) tfevents_close(&lg.tb);
    if (metrics) fclose(metrics);
    free(order);
    free(step_ex);
    free(micro_at);
    train_rows_free(&rows);
    sbuf_free(&line);
    checkpoint_state_free(&st);
    buffers_free(&buf);
    if (pert) vl_perturb_free(pert);
    free(pert);
    example_set_free(&train);
    example_set_free(&eval);
    tok_free(tok);
    model_free(&m);
    return rc;
}
