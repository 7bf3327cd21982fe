// Online GRPO (see grpo_trainer.h for its contract).
#include "train/grpo_trainer.h"
#include "dist/dist.h"
#include <errno.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "base/rng.h"
#include "data/data.h"
#include "data/prompt_images.h"
#include "image/image.h"
#include "model/vision.h"
#include "model/model.h"
#include "reward/math_answer.h"
#include "rollout/rollout.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/online.h"
#include "train/step.h"
#include "train/trainer.h"
#include "train/vl_perturb.h"

void grpo_args_default(grpo_args *a) {
    memset(a, 0, sizeof *a);
    lora_args_default(&a->lora);
    a->lr_scheduler_type = "linear";
    a->tools = "none";
    a->learning_rate = 1e-6;
    a->adam_beta1 = 0.9;
    a->adam_beta2 = 0.999;
    a->adam_epsilon = 1e-8;
    a->max_grad_norm = 1.0;
    a->num_train_epochs = 3.0;
    a->max_steps = -1;
    a->perturb_seed = -1;
    a->per_device_train_batch_size = 8;
    a->gradient_accumulation_steps = 1;
    a->num_generations = 8;
    a->max_prompt_length = 512;
    a->max_completion_length = 256;
    a->num_iterations = 1;
    a->temperature = 1.0;
    a->top_p = 1.0;
    a->h = grpo_hparams_default();
    a->scale_rewards = GRPO_SCALE_GROUP;
    a->reward_weights[GRPO_REWARD_ACCURACY] = 1.0;
    a->max_num_gen_batches = 10;
    a->max_turns = 4;
    a->tool_timeout = 10.0;
    a->seed = 42;
    a->logging_steps = 10;
    a->save_steps = 500;
    a->rh = rehearsal_hparams_default();
    a->rh.divergence = DIV_NONE;  // forward_kl, js, alpha only with --rehearsal
}

// Completions per generation batch, and optimizer steps per pass over it.
static int spg_of(const grpo_args *a) { return a->steps_per_generation > 0 ? a->steps_per_generation : a->gradient_accumulation_steps; }
// Data parallel (dist.h): the generation batch and each optimizer step are W times one
// rank's; rank r samples, scores and trains its part of every step (below, rank_part).
static int gen_batch(const grpo_args *a) { return a->per_device_train_batch_size * spg_of(a) * dist_size(); }
static int steps_per_pass(const grpo_args *a) { return spg_of(a) / a->gradient_accumulation_steps; }
// Completions of one optimizer step (all ranks), and this rank's part of each: completion i
// of the generation batch is rank ((i mod S) / (S / W))'s, so every step is split evenly and
// (S / W being a multiple of num_generations) every group lies on one rank.
static int step_size(const grpo_args *a) { return a->per_device_train_batch_size * a->gradient_accumulation_steps * dist_size(); }
static int rank_part(const grpo_args *a) { return a->per_device_train_batch_size * a->gradient_accumulation_steps; }
static int owns(const grpo_args *a, int i) { return (i % step_size(a)) / rank_part(a) == dist_rank(); }

int grpo_args_check(const grpo_args *a, tm_error *err) {
    if (!a->model || !a->data || !a->output_dir) return tm_fail(err, "--model, --data and --output-dir are required");
    if (lora_args_check(&a->lora, err)) return -1;
    if (online_prompt_style_check(a->prompt_style, err)) return -1;
    if (!(a->learning_rate >= 0) || !isfinite(a->learning_rate)) return tm_fail(err, "--learning-rate must be a finite number >= 0 (got %g)", a->learning_rate);
    if (!(a->warmup_ratio >= 0 && a->warmup_ratio <= 1)) return tm_fail(err, "--warmup-ratio must be in [0, 1] (got %g)", a->warmup_ratio);
    if (!(a->weight_decay >= 0) || !isfinite(a->weight_decay)) return tm_fail(err, "--weight-decay must be a finite number >= 0 (got %g)", a->weight_decay);
    if (!(a->max_grad_norm >= 0) || !isfinite(a->max_grad_norm)) return tm_fail(err, "--max-grad-norm must be a finite number >= 0 (got %g)", a->max_grad_norm);
    if (!(a->adam_beta1 >= 0 && a->adam_beta1 < 1) || !(a->adam_beta2 >= 0 && a->adam_beta2 < 1))
        return tm_fail(err, "--adam-beta1 and --adam-beta2 must be in [0, 1)");
    if (!(a->adam_epsilon > 0) || !isfinite(a->adam_epsilon)) return tm_fail(err, "--adam-epsilon must be a finite number > 0 (got %g)", a->adam_epsilon);
    if (a->max_steps <= 0 && !(a->num_train_epochs > 0 && isfinite(a->num_train_epochs)))
        return tm_fail(err, "--num-train-epochs must be a finite number > 0 (got %g)", a->num_train_epochs);
    struct { const char *flag; long v, lo; } ints[] = {
        {"max-steps", a->max_steps, -1}, {"warmup-steps", a->warmup_steps, 0},
        {"per-device-train-batch-size", a->per_device_train_batch_size, 1},
        {"gradient-accumulation-steps", a->gradient_accumulation_steps, 1}, {"num-generations", a->num_generations, 1},
        {"max-prompt-length", a->max_prompt_length, 0}, {"max-completion-length", a->max_completion_length, 1},
        {"num-iterations", a->num_iterations, 1}, {"max-num-gen-batches", a->max_num_gen_batches, 1},
        {"max-turns", a->max_turns, 1}, {"overlong-buffer-len", a->overlong_buffer_len, 0}, {"seed", a->seed, 0}, {"logging-steps", a->logging_steps, 1},
        {"save-steps", a->save_steps, 0}, {"save-total-limit", a->save_total_limit, 0}, {"top-k", a->top_k, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v < ints[i].lo) return tm_fail(err, "--%s must be at least %ld (got %ld)", ints[i].flag, ints[i].lo, ints[i].v);
    if (a->steps_per_generation < 0) return tm_fail(err, "--steps-per-generation must be at least 0 (got %d)", a->steps_per_generation);
    if (spg_of(a) % a->gradient_accumulation_steps)
        return tm_fail(err, "--steps-per-generation %d must be a multiple of --gradient-accumulation-steps %d", a->steps_per_generation,
                       a->gradient_accumulation_steps);
    long gen = (long)a->per_device_train_batch_size * spg_of(a);
    if (gen % a->num_generations)
        return tm_fail(err, "the generation batch (--per-device-train-batch-size %d x --steps-per-generation %d = %ld completions) "
                            "must be a multiple of --num-generations %d",
                       a->per_device_train_batch_size, spg_of(a), gen, a->num_generations);
    // sampling at any T > 0 with any filters (TRL allows them too): the log-probs on both
    // sides are of softmax(logits / T) over the whole vocabulary (grpo_trainer.h)
    if (!(a->temperature > 0) || !isfinite(a->temperature))
        return tm_fail(err, "--temperature must be a finite number > 0 (got %g): grpo samples, and its log-probs are of softmax(logits / T)",
                       a->temperature);
    sample_params sp = {a->temperature, a->top_p, a->top_k, a->min_p};
    if (sample_params_check(&sp, err)) return -1;
    const grpo_hparams *h = &a->h;
    if (!(h->epsilon >= 0 && h->epsilon < 1)) return tm_fail(err, "--epsilon must be in [0, 1) (got %g)", h->epsilon);
    if (!(h->epsilon_high >= 0) || !isfinite(h->epsilon_high)) return tm_fail(err, "--epsilon-high must be a finite number >= 0 (got %g)", h->epsilon_high);
    if (h->delta != 0 && !(h->delta > 1 + h->epsilon_high && isfinite(h->delta)))
        return tm_fail(err, "--delta must be 0 (off) or above 1 + --epsilon-high (got %g)", h->delta);
    if (!(h->beta >= 0) || !isfinite(h->beta)) return tm_fail(err, "--beta must be a finite number >= 0 (got %g)", h->beta);
    for (int i = 0; i < GRPO_N_REWARD; i++)
        if (!isfinite(a->reward_weights[i])) return tm_fail(err, "--reward-weights must be finite numbers");
    if (rollout_tool_from_name(a->tools) < 0) return tm_fail(err, "unknown --tools '%s' (none, calculator, python)", a->tools);
    if (a->zero < 0 || a->zero > 1) return tm_fail(err, "--zero %d: 0 or 1 (ZeRO-1: the AdamW state sharded over ranks)", a->zero);
    if (dist_size() > 1) {
        if ((a->per_device_train_batch_size * a->gradient_accumulation_steps) % a->num_generations)
            return tm_fail(err, "under mpirun, --per-device-train-batch-size x --gradient-accumulation-steps (%d) must be a multiple of "
                                "--num-generations (%d): each rank trains whole groups",
                           a->per_device_train_batch_size * a->gradient_accumulation_steps, a->num_generations);
        if (a->dynamic_sampling) return tm_fail(err, "--dynamic-sampling does not run under mpirun yet (one process only)");
        if (a->rehearsal) return tm_fail(err, "--rehearsal does not run under mpirun yet (one process only)");
    }
    if (a->save_steps > 0 && a->save_steps % (a->num_iterations * steps_per_pass(a)))
        return tm_fail(err, "--save-steps %d must be a multiple of %d (--num-iterations x --steps-per-generation / --gradient-accumulation-steps: "
                            "checkpoints fall between generation batches)",
                       a->save_steps, a->num_iterations * steps_per_pass(a));
    int gen_div = a->rh.divergence == DIV_FORWARD_KL || a->rh.divergence == DIV_JS || a->rh.divergence == DIV_ALPHA;
    if (a->rehearsal && !gen_div) return tm_fail(err, "--rehearsal needs --divergence forward_kl, js or alpha (got %s)", divergence_name(a->rh.divergence));
    if (!a->rehearsal && gen_div)
        return tm_fail(err, "--divergence %s is evaluated on stored samples of the initial policy: pass --rehearsal R.jsonl (temper rehearsal)",
                       divergence_name(a->rh.divergence));
    if (!(a->rh.coef >= 0) || !isfinite(a->rh.coef)) return tm_fail(err, "--divergence-coef must be a finite number >= 0 (got %g)", a->rh.coef);
    if (a->rh.divergence == DIV_ALPHA && !(a->rh.alpha > 0 && a->rh.alpha < 1)) return tm_fail(err, "--alpha must be in (0, 1) (got %g)", a->rh.alpha);
    if (a->rehearsal_batch_size < 0) return tm_fail(err, "--rehearsal-batch-size must be at least 0 (got %d)", a->rehearsal_batch_size);
    lr_schedule s;
    if (lr_schedule_parse(a->lr_scheduler_type, &s))
        return tm_fail(err, "unknown --lr-scheduler-type \"%s\" (linear, cosine, constant, constant_with_warmup)", a->lr_scheduler_type);
    return 0;
}

// ---- a sampled prompt's images (Qwen2.5-VL) ----

// The pixels one generation round gave a prompt (perturbed or not) and, under --perturb, its
// ids re-expanded to the perturbed images' token counts; shared by the round and the group's
// completions (refs), which train on the very image they were sampled from.
typedef struct prompt_vis {
    int refs;
    data_prompt_images im;  // im.ids NULL: the prompt's own ids
} prompt_vis;

static void prompt_vis_release(prompt_vis *v) {
    if (v && --v->refs == 0) {
        data_prompt_images_free(&v->im);
        free(v);
    }
}

// ---- one completion of the generation batch ----

typedef struct completion {
    int prompt;               // index into the prompt set
    int32_t *ids;             // prompt + completion
    uint8_t *mask;            // trained tokens (completion model tokens)
    float *samp;              // sampler log-probs, token-aligned (0 elsewhere)
    float *ref;               // reference log-probs (β > 0), token-aligned
    int len, plen;
    int truncated, ncalls, nerrors;
    double reward, r[GRPO_N_REWARD];
    prompt_vis *vis;          // the prompt's images, NULL: none
} completion;

static void completion_free(completion *c) {
    prompt_vis_release(c->vis);
    free(c->ids); free(c->mask); free(c->samp); free(c->ref);
    memset(c, 0, sizeof *c);
}

// ---- the run's state ----

typedef struct grpo_run_state {
    const grpo_args *a;
    model m, ref;
    int have_ref;
    online_task task;         // tokenizer, prompts, stops, tool, verifier options
    trainer t, rt;            // the policy's trainer; the reference's forward-only one
    checkpoint_state st;
    float *adv_b, *old_b, *samp_b, *ent_b;   // per packed token of a micro-batch
    completion *reh;                         // rehearsal samples of π0 (ref = stored log π0)
    int nreh;
    int *reh_order;
    vl_perturb *perturb;                     // --perturb: the prompt file's images as the draw's set
} grpo_run_state;

// A completion into a trainer batch: its prompt's images first (their pads are in its ids).
static int add_completion(trainer *t, const completion *c, const float *ref, tm_error *err) {
    const data_prompt_images *im = c->vis ? &c->vis->im : NULL;
    if (im && im->n_images && trainer_add_images(t, im->n_images, im->pixel_values, im->n_patches, im->dim, im->grid_thw, err)) return -1;
    return trainer_add(t, c->ids, c->mask, c->len, ref, NULL, err);
}

// Prompt k's images for this step's generation: remade from its files, or drawn by --perturb
// (seed + step: what `temper perturb OP --data F --seed S+step` writes for that image), with the
// prompt's ids re-expanded to the perturbed images' token counts.
static int prompt_images(grpo_run_state *R, int k, prompt_vis **out, tm_error *err) {
    const data_example *ex = &R->task.prompts.ex[k];
    *out = NULL;
    if (!ex->n_images) return 0;
    prompt_vis *v = calloc(1, sizeof *v);
    if (!v) return tm_fail(err, "out of memory");
    v->refs = 1;
    *out = v;
    vl_perturb *p = R->perturb;
    if (!p) return data_prompt_images_of_example(ex, &R->task.icfg, &v->im, err);
    const int merge2 = R->task.icfg.merge_size * R->task.icfg.merge_size, pad = R->m.cfg.image_token_id;
    int *counts = calloc((size_t)ex->n_images, sizeof(int)), rc = 0, grow = 0;
    if (!counts) return tm_fail(err, "out of memory");
    for (int j = 0; j < ex->n_images && !rc; j++) {
        img_rgb im = {0};
        img_draw dr = {0};
        img_patches pt = {0};
        rc = img_perturb_one(&im, &dr, p->op, &p->opts, p->seed + (uint64_t)R->st.global_step, (const char *const *)p->set, p->n,
                             p->ex_img[p->ex_start[k] + j], err);
        if (!rc) rc = img_qwen2vl_process(&R->task.icfg, &im, &pt, err);
        if (!rc) rc = data_prompt_images_append(&v->im, &pt, err);
        if (!rc) {
            const int *g = ex->grid_thw + 3 * j;
            counts[j] = pt.grid_thw[0] * pt.grid_thw[1] * pt.grid_thw[2] / merge2;
            grow += counts[j] - g[0] * g[1] * g[2] / merge2;
        }
        img_patches_free(&pt);
        img_draw_free(&dr);
        img_free(&im);
    }
    const data_seq *s = &ex->seq[0];
    if (!rc && !(v->im.ids = malloc(sizeof(int32_t) * (size_t)(ex->prompt_len + grow + 1)))) rc = tm_fail(err, "out of memory");
    if (!rc) {  // image j's run of pads becomes counts[j] pads
        int o = 0;
        for (int i = 0, j = 0; i < ex->prompt_len;) {
            if (s->ids[i] == pad && j < ex->n_images) {
                const int *g = ex->grid_thw + 3 * j;
                for (int c = 0; c < counts[j]; c++) v->im.ids[o++] = pad;
                i += g[0] * g[1] * g[2] / merge2;
                j++;
                continue;
            }
            v->im.ids[o++] = s->ids[i++];
        }
        v->im.len = o;
    }
    free(counts);
    return rc;
}

// The next prompt of the data stream (st.prompts_seen counts those drawn).
static int next_prompt(grpo_run_state *R) { return online_next_prompt(&R->task, R->st.prompts_seen++, R->a->seed); }

// Rewards of one trajectory: the verifier's verdict and an extractable answer.
static int score(grpo_run_state *R, const rollout_traj *tr, const char *gold, completion *c, tm_error *err) {
    int found, correct;
    if (online_grade(R->task.tok, &R->task.eo, &R->task.qo, tr->ids, tr->len, gold, NULL, &found, &correct, err)) return -1;
    c->r[GRPO_REWARD_ACCURACY] = correct;
    c->r[GRPO_REWARD_FORMAT] = found;
    // DAPO's soft overlong punishment
    int lmax = R->a->max_completion_length, lc = R->a->overlong_buffer_len > 0 ? R->a->overlong_buffer_len : lmax / 4;
    if (lc < 1) lc = 1;
    if (lc > lmax) lc = lmax;
    double y = tr->len;
    c->r[GRPO_REWARD_OVERLONG] = y <= lmax - lc ? 0.0 : y <= lmax ? (lmax - lc - y) / lc : -1.0;
    c->reward = 0;
    for (int i = 0; i < GRPO_N_REWARD; i++) c->reward += R->a->reward_weights[i] * c->r[i];
    return 0;
}

void grpo_traj_mask(const rollout_traj *tr, int mask_truncated, uint8_t *mask, float *samp) {
    int keep = !(tr->finish == FINISH_LENGTH && mask_truncated);
    for (int i = 0; i < tr->len; i++) {
        mask[i] = keep && tr->mask[i];  // tool observations (mask 0) are never trained
        samp[i] = tr->mask[i] ? tr->logp[i] : 0.0f;
    }
}

// A trajectory becomes a training sequence: prompt + completion ids, its mask and log-probs.
static int make_completion(grpo_run_state *R, int p, prompt_vis *vis, rollout_traj *tr, completion *c, tm_error *err) {
    const data_example *ex = &R->task.prompts.ex[p];
    const int32_t *pids = vis && vis->im.ids ? vis->im.ids : ex->seq[0].ids;
    int plen = vis && vis->im.ids ? vis->im.len : ex->prompt_len, len = plen + tr->len;
    memset(c, 0, sizeof *c);
    if (vis) vis->refs++, c->vis = vis;
    c->prompt = p;
    c->plen = plen;
    c->len = len;
    c->ids = malloc(sizeof(int32_t) * (size_t)len);
    c->mask = calloc((size_t)len, 1);
    c->samp = calloc((size_t)len, sizeof(float));
    if (!c->ids || !c->mask || !c->samp) return tm_fail(err, "out of memory");
    memcpy(c->ids, pids, sizeof(int32_t) * (size_t)plen);
    c->truncated = tr->finish == FINISH_LENGTH;
    for (int i = 0; i < tr->len; i++) c->ids[plen + i] = tr->ids[i];
    grpo_traj_mask(tr, R->a->mask_truncated_completions, c->mask + plen, c->samp + plen);
    c->ncalls = tr->ncalls;
    for (int k = 0; k < tr->ncalls; k++) c->nerrors += tr->calls[k].status != 0;
    return score(R, tr, ex->answer, c, err);
}

// ---- metrics of one generation batch and one optimizer step ----

typedef struct gen_metrics {
    double n, reward_sum[GRPO_N_REWARD];
    grpo_reward_stats rs;          // over the trained batch
    double len_sum, len_min, len_max, clipped, calls, errors;
    double t_gen, t_score, t_train;
    int rounds, kept_groups, filled_groups, groups;
    // first iteration, over trained tokens: |logπθ - logπ_sampler|, |πθ - π_sampler|, |ρ - 1|
    double reh_tokens, reh_div_sum;   // rehearsal: Σ m and Σ m f(u) over the step's chunk
    double mismatch_tokens, logp_diff_sum, logp_diff_max, prob_diff_sum, prob_diff_max, ratio_dev_sum, ratio_dev_max;
} gen_metrics;

static void put_metric(sbuf *o, const char *name, double v) {
    sbuf_printf(o, ", \"%s\": ", name);
    sbuf_json_float(o, v);
}

// Data parallel: each rank measured its own completions (mismatch = 0) or its own first
// pass (mismatch = 1); the batch's metrics are the sums, minima and maxima over ranks.
static int gen_metrics_reduce(gen_metrics *gm, int mismatch, tm_error *err) {
    int W = dist_size();
    if (W == 1) return 0;
    gen_metrics *all = malloc(sizeof *all * (size_t)W);
    if (!all) return tm_fail(err, "out of memory");
    if (dist_allgather(gm, all, sizeof *gm, err)) { free(all); return -1; }
    gen_metrics s = all[0];
    for (int r = 1; r < W; r++) {
        const gen_metrics *x = &all[r];
        if (!mismatch) {
            s.n += x->n;
            for (int k = 0; k < GRPO_N_REWARD; k++) s.reward_sum[k] += x->reward_sum[k];
            s.len_sum += x->len_sum;
            s.len_min = fmin(s.len_min, x->len_min);
            s.len_max = fmax(s.len_max, x->len_max);
            s.clipped += x->clipped;
            s.calls += x->calls;
            s.errors += x->errors;
            s.t_gen = fmax(s.t_gen, x->t_gen);  // wall time: the slowest rank's
            s.t_score = fmax(s.t_score, x->t_score);
        } else {
            s.mismatch_tokens += x->mismatch_tokens;
            s.logp_diff_sum += x->logp_diff_sum;
            s.prob_diff_sum += x->prob_diff_sum;
            s.ratio_dev_sum += x->ratio_dev_sum;
            s.logp_diff_max = fmax(s.logp_diff_max, x->logp_diff_max);
            s.prob_diff_max = fmax(s.prob_diff_max, x->prob_diff_max);
            s.ratio_dev_max = fmax(s.ratio_dev_max, x->ratio_dev_max);
        }
    }
    if (!mismatch) {
        gm->n = s.n;
        memcpy(gm->reward_sum, s.reward_sum, sizeof s.reward_sum);
        gm->len_sum = s.len_sum, gm->len_min = s.len_min, gm->len_max = s.len_max;
        gm->clipped = s.clipped, gm->calls = s.calls, gm->errors = s.errors, gm->t_gen = s.t_gen, gm->t_score = s.t_score;
    } else {
        gm->mismatch_tokens = s.mismatch_tokens;
        gm->logp_diff_sum = s.logp_diff_sum, gm->prob_diff_sum = s.prob_diff_sum, gm->ratio_dev_sum = s.ratio_dev_sum;
        gm->logp_diff_max = s.logp_diff_max, gm->prob_diff_max = s.prob_diff_max, gm->ratio_dev_max = s.ratio_dev_max;
    }
    free(all);
    return 0;
}

// ---- sampling one generation batch ----

// Samples rounds of prompts until the batch holds P groups (dynamic sampling) or one
// round (otherwise). out gets P * G completions.
static int generate(grpo_run_state *R, completion *out, gen_metrics *gm, tm_error *err) {
    const grpo_args *a = R->a;
    int G = a->num_generations, P = gen_batch(a) / G;
    int kept = 0, rc = 0;
    completion *pool = NULL;   // dropped groups (dynamic sampling), to fill a short batch
    int npool = 0;
    int *pidx = malloc(sizeof(int) * (size_t)P), **pp = malloc(sizeof(int *) * (size_t)P), *pl = malloc(sizeof(int) * (size_t)P);
    rollout_traj *trajs = calloc((size_t)P * G, sizeof *trajs);
    double *rw = malloc(sizeof(double) * (size_t)G);
    float *adv = malloc(sizeof(float) * (size_t)G);
    completion *round = calloc((size_t)P * G, sizeof *round);
    prompt_vis **pv = calloc((size_t)P, sizeof *pv);
    kv_images *kim = calloc((size_t)P, sizeof *kim);
    if (!pv || !kim || !pidx || !pp || !pl || !trajs || !rw || !adv || !round) { rc = tm_fail(err, "out of memory"); goto out; }
    memset(gm, 0, sizeof *gm);
    gm->len_min = INFINITY;
    for (int r = 0; r < (a->dynamic_sampling ? a->max_num_gen_batches : 1) && kept < P; r++) {
        for (int i = 0; i < P; i++) {
            pidx[i] = next_prompt(R);
            pp[i] = R->task.prompts.ex[pidx[i]].seq[0].ids;
            pl[i] = R->task.prompts.ex[pidx[i]].prompt_len;
            prompt_vis_release(pv[i]);
            if ((rc = prompt_images(R, pidx[i], &pv[i], err))) goto out;
            kim[i] = (kv_images){0, NULL, NULL};
            if (pv[i]) {
                kim[i] = (kv_images){pv[i]->im.n_images, pv[i]->im.pixel_values, pv[i]->im.grid_thw};
                if (pv[i]->im.ids) pp[i] = pv[i]->im.ids, pl[i] = pv[i]->im.len;
            }
        }
        rollout_opts o;
        rollout_opts_default(&o);
        o.n = G;
        o.batch = P * G < 256 ? P * G : 256;
        o.max_new_tokens = a->max_completion_length;
        o.sp.temperature = a->temperature;
        o.sp.top_p = a->top_p;
        o.sp.top_k = a->top_k;
        o.sp.min_p = a->min_p;
        // the sampler's RNG state is a function of (seed, step, round): a resumed run draws the same
        o.seed = (uint64_t)a->seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)R->st.global_step << 8 | (uint64_t)r);
        online_rollout_opts(&R->task, &o);  // stops, tool, observation wrapper
        o.max_turns = a->max_turns;
        o.py.timeout_s = a->tool_timeout;
        o.images = kim;
        rollout_backend be;
        rollout_model_ctx mctx;
        rollout_backend_model(&be, &mctx, &R->m);
        double t0 = now_seconds();
        memset(trajs, 0, sizeof *trajs * (size_t)P * G);
        if (dist_size() == 1) {
            rc = rollout_run(&be, R->task.tok, (const int *const *)pp, pl, P, &o, trajs, err);
        } else {
            // this rank's groups: a contiguous run per optimizer step, with the seeds of their
            // indices in the whole batch (rollout_opts.group_base), as one process draws them
            int S = step_size(a), s = rank_part(a), ng = s / G;
            for (int j = 0; !rc && j < P * G / S; j++) {
                int g0 = (j * S + dist_rank() * s) / G;
                o.group_base = g0;
                o.images = kim + g0;
                o.batch = s < 256 ? s : 256;
                rc = rollout_run(&be, R->task.tok, (const int *const *)pp + g0, pl + g0, ng, &o, trajs + (size_t)g0 * G, err);
            }
        }
        double t1 = now_seconds();
        gm->t_gen += t1 - t0;
        for (int i = 0; !rc && i < P * G; i++)
            if (owns(a, i)) rc = make_completion(R, pidx[i / G], pv[i / G], &trajs[i], &round[i], err);
        for (int i = 0; i < P * G; i++) rollout_traj_free(&trajs[i]);
        gm->t_score += now_seconds() - t1;
        gm->rounds++;
        if (rc) goto out;
        for (int i = 0; i < P * G; i++) {
            completion *c = &round[i];
            if (!owns(a, i)) continue;  // another rank's (gen_metrics_reduce adds them)
            int L = c->len - c->plen;
            gm->n++;
            for (int k = 0; k < GRPO_N_REWARD; k++) gm->reward_sum[k] += c->r[k];
            gm->len_sum += L;
            if (L < gm->len_min) gm->len_min = L;
            if (L > gm->len_max) gm->len_max = L;
            gm->clipped += c->truncated;
            gm->calls += c->ncalls;
            gm->errors += c->nerrors;
        }
        for (int g = 0; g < P; g++) {
            completion *grp = round + (size_t)g * G;
            int keep = 1;
            if (a->dynamic_sampling) {
                uint8_t eq = 0;
                for (int s = 0; s < G; s++) rw[s] = grp[s].reward;
                if ((rc = grpo_advantages(G, G, rw, GRPO_SCALE_NONE, 1e-4, adv, &eq, NULL, err))) goto out;
                keep = !eq;
            }
            gm->groups++;
            if (keep && kept < P) {
                memcpy(out + (size_t)kept * G, grp, sizeof *grp * (size_t)G);
                kept++;
            } else if (keep || npool >= P) {
                for (int s = 0; s < G; s++) completion_free(&grp[s]);
            } else {
                completion *np2 = realloc(pool, sizeof *pool * (size_t)(npool + 1) * G);
                if (!np2) { rc = tm_fail(err, "out of memory"); goto out; }
                pool = np2;
                memcpy(pool + (size_t)npool * G, grp, sizeof *grp * (size_t)G);
                npool++;
            }
            memset(grp, 0, sizeof *grp * (size_t)G);  // moved or freed
        }
    }
    gm->kept_groups = kept;
    // a batch still short after the last round is filled with dropped groups (advantage 0)
    int used = 0;
    while (kept < P && used < npool) {
        memcpy(out + (size_t)kept * G, pool + (size_t)used * G, sizeof *pool * (size_t)G);
        kept++, used++, gm->filled_groups++;
    }
    for (int i = used * G; i < npool * G; i++) completion_free(&pool[i]);
    npool = 0;
    if (kept < P) rc = tm_fail(err, "internal: generation batch short (%d of %d groups)", kept, P);
out:
    for (int i = 0; round && i < P * G; i++) completion_free(&round[i]);
    for (int i = 0; i < npool * G; i++) completion_free(&pool[i]);
    for (int i = 0; pv && i < P; i++) prompt_vis_release(pv[i]);
    free(pv); free(kim);
    free(pool); free(pidx); free(pp); free(pl); free(trajs); free(rw); free(adv); free(round);
    return rc;
}

// Reference log-probs of every completion under the frozen initial model (β > 0).
static int reference_logps(grpo_run_state *R, completion *c, int n, tm_error *err) {
    int bs = R->a->per_device_train_batch_size;
    for (int i0 = 0; i0 < n; i0 += bs) {
        int i1 = i0 + bs < n ? i0 + bs : n;
        trainer_clear(&R->rt);
        for (int i = i0; i < i1; i++)
            if (add_completion(&R->rt, &c[i], NULL, err)) return -1;
        int adapters = model_lora_enable(R->rt.m, 0);  // under LoRA the reference is the base
        int frc = trainer_forward(&R->rt, NULL, err);
        model_lora_enable(R->rt.m, adapters);
        if (frc) return -1;
        for (int i = i0; i < i1; i++) {
            if (!(c[i].ref = malloc(sizeof(float) * (size_t)c[i].len))) return tm_fail(err, "out of memory");
            memcpy(c[i].ref, R->rt.logp_tok + R->rt.span[2 * (i - i0)], sizeof(float) * (size_t)c[i].len);
        }
    }
    return 0;
}

// DPH-RL's divergence on stored π0 samples: the step's chunk of the rehearsal set (a
// permutation per pass from the seed; chunk = the optimizer step), in its own micro-batches
// (as DPH-RL: a micro-batch is either on-policy or rehearsal), gradients added to the step's.
static int rehearsal_term(grpo_run_state *R, double *loss, gen_metrics *gm, tm_error *err) {
    const grpo_args *a = R->a;
    int rb = a->rehearsal_batch_size > 0 ? a->rehearsal_batch_size : a->per_device_train_batch_size * a->gradient_accumulation_steps;  // one step's
    int bs = a->per_device_train_batch_size;
    int *pick = malloc(sizeof(int) * (size_t)rb);
    if (!pick) return tm_fail(err, "out of memory");
    int epoch = -1;
    for (int j = 0; j < rb; j++) {
        int64_t k = R->st.global_step * (int64_t)rb + j;
        int e = (int)(k / R->nreh);
        if (e != epoch) { online_epoch_order(R->reh_order, R->nreh, a->seed + 7919, e); epoch = e; }
        pick[j] = R->reh_order[k % R->nreh];
    }
    double ntok = 0;
    for (int j = 0; j < rb; j++)
        for (int i = 1; i < R->reh[pick[j]].len; i++) ntok += R->reh[pick[j]].mask[i];
    int rc = 0;
    for (int j0 = 0; j0 < rb && !rc; j0 += bs) {
        int j1 = j0 + bs < rb ? j0 + bs : rb;
        trainer_clear(&R->t);
        for (int j = j0; j < j1 && !rc; j++) {
            const completion *c = &R->reh[pick[j]];
            rc = trainer_add(&R->t, c->ids, c->mask, c->len, c->ref, NULL, err);
        }
        if (rc || (rc = trainer_forward(&R->t, NULL, err))) break;
        seq_batch sb = trainer_view(&R->t, 1);
        rehearsal_metrics m = {0};
        double l = 0;
        if ((rc = rehearsal_loss(&sb, &a->rh, ntok, &l, R->t.dlogp_tok, &m, err))) break;
        *loss += l;
        gm->reh_tokens += m.tokens;
        gm->reh_div_sum += m.div_sum;
        trainer_backward(&R->t);
    }
    free(pick);
    return rc;
}

// One optimizer step over the batch: micro-batches, grpo_loss, backward, AdamW.
static int train_step(grpo_run_state *R, completion *c, int n, const float *adv, int first_pass, grpo_metrics *gmx,
                      gen_metrics *gm, double *loss_out, double *gnorm, tm_error *err) {
    const grpo_args *a = R->a;
    int bs = a->per_device_train_batch_size;
    grpo_norm z = {0, 0, a->max_completion_length};
    z.sequences = (double)n * dist_size();  // every rank trains n of the step's completions
    for (int i = 0; i < n; i++)
        for (int k = 1; k < c[i].len; k++) z.tokens += c[i].mask[k];
    if (dist_allreduce_sum_f64(&z.tokens, 1, err)) return -1;  // the step's, before any loss
    double loss = 0;
    memset(gmx, 0, sizeof *gmx);
    for (int i0 = 0; i0 < n; i0 += bs) {
        int i1 = i0 + bs < n ? i0 + bs : n;
        trainer *t = &R->t;
        trainer_clear(t);
        for (int i = i0; i < i1; i++)
            if (add_completion(t, &c[i], c[i].ref, err)) return -1;
        for (int i = i0; i < i1; i++) {
            int s0 = t->span[2 * (i - i0)];
            for (int k = 0; k < c[i].len; k++) {
                R->adv_b[s0 + k] = adv[i];
                R->old_b[s0 + k] = c[i].samp[k];
            }
        }
        trainer_dropout_next(t);  // LoRA dropout: this forward's backward follows
        if (trainer_forward(t, R->ent_b, err)) return -1;
        seq_batch sb = trainer_view(t, R->have_ref);
        if (first_pass) {
            // the weights that sampled are the weights that recompute: the sampler/trainer
            // mismatch, and the first ratio ρ = e^(logπθ - logπ_sampler), which should be 1
            for (int k = 0; k < sb.n_tokens; k++)
                if (sb.mask[k]) {
                    double lp = sb.logp[k], s = R->old_b[k];
                    double d = fabs(lp - s), pd = fabs(exp(lp) - exp(s)), rd = fabs(exp(lp - s) - 1.0);
                    gm->mismatch_tokens++;
                    gm->logp_diff_sum += d;
                    gm->prob_diff_sum += pd;
                    gm->ratio_dev_sum += rd;
                    if (d > gm->logp_diff_max) gm->logp_diff_max = d;
                    if (pd > gm->prob_diff_max) gm->prob_diff_max = pd;
                    if (rd > gm->ratio_dev_max) gm->ratio_dev_max = rd;
                }
        }
        grpo_inputs in = {R->adv_b, R->old_b, NULL, R->ent_b};
        grpo_metrics mm = {0};
        double l = 0;
        if (grpo_loss(&sb, &in, &a->h, &z, &l, t->dlogp_tok, &mm, err)) return -1;
        loss += l;
        grpo_metrics_merge(gmx, &mm);
        trainer_backward(t);
    }
    if (R->nreh && rehearsal_term(R, &loss, gm, err)) return -1;
    if (dist_size() > 1) {
        // every rank's loss is normalized by the step's counts: the step's loss is the sum
        if (dist_allreduce_sum_f64(&loss, 1, err)) return -1;
        grpo_metrics *all = malloc(sizeof *all * (size_t)dist_size());
        if (!all) return tm_fail(err, "out of memory");
        int grc = dist_allgather(gmx, all, sizeof *gmx, err);
        if (!grc) {
            *gmx = all[0];
            for (int r = 1; r < dist_size(); r++) grpo_metrics_merge(gmx, &all[r]);
        }
        free(all);
        if (grc || (first_pass && gen_metrics_reduce(gm, 1, err))) return -1;
    }
    if (trainer_step_all(&R->t, R->st.global_step, gnorm, err)) return -1;
    *loss_out = loss;
    return 0;
}

// ---- the logging window ----
//
// As TRL's GRPOTrainer: every metric is recorded at each optimizer step (the generation
// metrics, reward to time/scoring, are those of the step's generation batch) and a log line
// carries their mean over the steps since the last line; so does "loss" (transformers'
// Trainer logs the mean loss over the window). grad_norm is the last step's and learning_rate
// the current one, as in transformers; num_tokens is cumulative. TRL averages every key the
// same way, so completions/min_length and the */max metrics are means of per-step minima
// and maxima. A resume restarts the window at the checkpoint (as transformers' tr_loss), so
// its lines equal the uninterrupted run's when --save-steps is a multiple of --logging-steps.

static const char *const metric_names[] = {
    "loss", "tokens_per_second", "reward", "reward_std", "frac_reward_zero_std", "rewards/accuracy/mean", "rewards/format/mean",
    "rewards/overlong/mean", "accuracy", "kl", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean",
    "completions/mean_length", "completions/min_length", "completions/max_length", "completions/clipped_ratio",
    "tools/calls_per_trajectory", "tools/errors_per_trajectory", "sampling/sampling_logp_difference/mean",
    "sampling/sampling_logp_difference/max", "training/rollout_probs_diff_mean", "training/rollout_probs_diff_max",
    "sampling/ratio_minus_one/mean", "sampling/ratio_minus_one/max", "rehearsal/divergence", "dynamic_sampling/rounds",
    "dynamic_sampling/kept_groups", "dynamic_sampling/filled_groups", "time/generation", "time/scoring", "time/training",
};
enum { N_METRICS = sizeof metric_names / sizeof metric_names[0] };

typedef struct metric_window {
    double sum[N_METRICS];
    int cnt[N_METRICS];
    double grad_norm;  // of the last step
} metric_window;

static void win_put(metric_window *w, const char *name, double v) {
    for (int k = 0; k < N_METRICS; k++)
        if (!strcmp(metric_names[k], name)) { w->sum[k] += v; w->cnt[k]++; return; }
}

// One optimizer step's metrics into the window.
static void window_add(grpo_run_state *R, metric_window *w, double loss, double gnorm, const gen_metrics *gm, const grpo_metrics *x,
                       double tps) {
    const grpo_args *a = R->a;
    w->grad_norm = gnorm;
    win_put(w, "loss", loss);
    win_put(w, "tokens_per_second", tps);
    win_put(w, "reward", gm->rs.reward);
    win_put(w, "reward_std", gm->rs.reward_std);
    win_put(w, "frac_reward_zero_std", gm->rs.frac_reward_zero_std);
    win_put(w, "rewards/accuracy/mean", gm->reward_sum[GRPO_REWARD_ACCURACY] / gm->n);
    win_put(w, "rewards/format/mean", gm->reward_sum[GRPO_REWARD_FORMAT] / gm->n);
    if (a->reward_weights[GRPO_REWARD_OVERLONG] != 0) win_put(w, "rewards/overlong/mean", gm->reward_sum[GRPO_REWARD_OVERLONG] / gm->n);
    win_put(w, "accuracy", gm->reward_sum[GRPO_REWARD_ACCURACY] / gm->n);
    double T = x->tokens > 0 ? x->tokens : 1;
    if (a->h.beta > 0) win_put(w, "kl", x->kl_sum / T);
    win_put(w, "entropy", x->entropy_sum / T);
    win_put(w, "clip_ratio/low_mean", x->clip_low / T);
    win_put(w, "clip_ratio/high_mean", x->clip_high / T);
    win_put(w, "clip_ratio/region_mean", x->clip_region / T);
    win_put(w, "completions/mean_length", gm->len_sum / gm->n);
    win_put(w, "completions/min_length", gm->len_min);
    win_put(w, "completions/max_length", gm->len_max);
    win_put(w, "completions/clipped_ratio", gm->clipped / gm->n);
    if (R->task.tool != ROLLOUT_TOOL_NONE) {
        win_put(w, "tools/calls_per_trajectory", gm->calls / gm->n);
        win_put(w, "tools/errors_per_trajectory", gm->errors / gm->n);
    }
    if (gm->mismatch_tokens > 0) {
        double M = gm->mismatch_tokens;
        win_put(w, "sampling/sampling_logp_difference/mean", gm->logp_diff_sum / M);
        win_put(w, "sampling/sampling_logp_difference/max", gm->logp_diff_max);
        win_put(w, "training/rollout_probs_diff_mean", gm->prob_diff_sum / M);
        win_put(w, "training/rollout_probs_diff_max", gm->prob_diff_max);
        win_put(w, "sampling/ratio_minus_one/mean", gm->ratio_dev_sum / M);
        win_put(w, "sampling/ratio_minus_one/max", gm->ratio_dev_max);
    }
    if (R->nreh && gm->reh_tokens > 0) win_put(w, "rehearsal/divergence", gm->reh_div_sum / gm->reh_tokens);
    if (a->dynamic_sampling) {
        win_put(w, "dynamic_sampling/rounds", gm->rounds);
        win_put(w, "dynamic_sampling/kept_groups", gm->kept_groups);
        win_put(w, "dynamic_sampling/filled_groups", gm->filled_groups);
    }
    win_put(w, "time/generation", gm->t_gen);
    win_put(w, "time/scoring", gm->t_score);
    win_put(w, "time/training", gm->t_train);
}

// The log line of the window (means of what it holds), which is then emptied.
static void window_line(grpo_run_state *R, metric_window *w, sbuf *o, double epoch, double ntok) {
    sbuf_clear(o);
    sbuf_printf(o, "{\"step\": %lld, \"epoch\": ", (long long)R->st.global_step);
    sbuf_json_float(o, epoch);
    for (int k = 0; k < N_METRICS; k++) {
        if (k == 1) {  // after the loss, as transformers writes them
            put_metric(o, "grad_norm", w->grad_norm);
            put_metric(o, "learning_rate", trainer_lr(&R->t, R->st.global_step));
            put_metric(o, "num_tokens", ntok);
        }
        if (w->cnt[k]) put_metric(o, metric_names[k], w->sum[k] / w->cnt[k]);
    }
    sbuf_puts(o, "}");
    memset(w, 0, sizeof *w);
}

// ---- the run ----

// The task (train/online.h's loader; the reward needs every prompt's gold answer); the
// policy model must be loaded. *longest gets the longest prompt.
static int load_task(grpo_run_state *R, const char *model_dir, const char *chat_template, const char *chat_kwargs, const char *prompt_style,
                     const char *prompt_suffix, const char *data, int max_prompt_length, const char *tools, int *longest,
                     tm_error *err) {
    online_task_opts o = {model_dir, chat_template, prompt_style, prompt_suffix, data, tools, max_prompt_length, 1, chat_kwargs, 1};
    if (online_task_load(&R->task, &R->m, &o, err)) return -1;
    *longest = R->task.longest;
    return 0;
}

// An integer array field of a rehearsal row into a new array of n (or *n when -1) items.
static int read_ints(const json *row, const char *key, int *n, int32_t **out, uint8_t **bytes) {
    const json *v = json_get(row, key);
    if (!v || v->type != JSON_ARRAY || (*n >= 0 && v->n != *n)) return -1;
    *n = v->n;
    if (out && !(*out = malloc(sizeof(int32_t) * (size_t)(v->n + 1)))) return -2;
    if (bytes && !(*bytes = malloc((size_t)v->n + 1))) return -2;
    for (int i = 0; i < v->n; i++) {
        if (!json_is_int(&v->items[i])) return -1;
        if (out) (*out)[i] = (int32_t)v->items[i].num;
        if (bytes) (*bytes)[i] = v->items[i].num != 0;
    }
    return 0;
}

// R.jsonl rows: prompt_input_ids, completion_input_ids, completion_logprobs, completion_mask.
static int load_rehearsal(grpo_run_state *R, const char *path, tm_error *err) {
    io_lines in;
    if (io_lines_open(&in, path, err)) return -1;
    char *text;
    long len;
    int rc = 0, cap = 0;
    while (!rc && (len = io_lines_next(&in, &text)) >= 0) {
        if (!len) continue;
        tm_error jerr;
        json_doc *d = data_parse_line(text, (size_t)len, &jerr);
        if (!d) { rc = tm_fail(err, "%s:%ld: %s", path, in.lineno, jerr.msg); break; }
        const json *row = json_root(d);
        if (R->nreh == cap) {
            cap = cap ? 2 * cap : 64;
            completion *nr = realloc(R->reh, sizeof *nr * (size_t)cap);
            if (!nr) { json_doc_free(d); rc = tm_fail(err, "out of memory"); break; }
            R->reh = nr;
        }
        completion *c = &R->reh[R->nreh++];
        memset(c, 0, sizeof *c);
        int32_t *p = NULL, *q = NULL;
        uint8_t *qm = NULL;
        int np = -1, nq = -1, e = read_ints(row, "prompt_input_ids", &np, &p, NULL);
        if (!e) e = read_ints(row, "completion_input_ids", &nq, &q, NULL);
        if (!e) e = read_ints(row, "completion_mask", &nq, NULL, &qm);
        const json *lp = json_get(row, "completion_logprobs");
        if (!e && (!lp || lp->type != JSON_ARRAY || lp->n != nq)) e = -1;
        // log π0 is of softmax(logits / T): the stored T must be the policy's (rows without one: 1)
        const json *tj = json_get(row, "temperature");
        double rt = tj && tj->type == JSON_NUMBER ? tj->num : 1.0;
        if (!e && (float)rt != (float)R->a->temperature) {
            free(p); free(q); free(qm);
            json_doc_free(d);
            rc = tm_fail(err, "%s:%ld: the stored log π0 are at temperature %g but --temperature is %g (temper rehearsal --temperature %g "
                              "writes them at the same one)", path, in.lineno, rt, R->a->temperature, R->a->temperature);
            break;
        }
        if (!e && np < 1) e = -1;
        if (!e) {
            c->len = np + nq;
            c->plen = np;
            c->ids = malloc(sizeof(int32_t) * (size_t)c->len);
            c->mask = calloc((size_t)c->len, 1);
            c->ref = calloc((size_t)c->len, sizeof(float));
            if (!c->ids || !c->mask || !c->ref) e = -2;
        }
        if (!e) {
            memcpy(c->ids, p, sizeof(int32_t) * (size_t)np);
            memcpy(c->ids + np, q, sizeof(int32_t) * (size_t)nq);
            for (int i = 0; i < nq; i++) {
                c->mask[np + i] = qm[i];
                c->ref[np + i] = (float)lp->items[i].num;
            }
            for (int i = 0; i < c->len && !rc; i++)
                if (c->ids[i] < 0 || c->ids[i] >= R->m.cfg.vocab)
                    rc = tm_fail(err, "%s:%ld: token id %d is outside the model's vocabulary (%d)", path, in.lineno, c->ids[i], R->m.cfg.vocab);
        }
        free(p); free(q); free(qm);
        json_doc_free(d);
        if (e == -2) rc = tm_fail(err, "out of memory");
        else if (e) rc = tm_fail(err, "%s:%ld: a rehearsal row needs prompt_input_ids (non-empty), completion_input_ids, "
                                      "completion_logprobs and completion_mask of one length (temper rehearsal writes them)", path, in.lineno);
    }
    io_lines_close(&in);
    if (!rc && R->nreh == 0) rc = tm_fail(err, "%s: no rehearsal samples", path);
    if (!rc && !(R->reh_order = malloc(sizeof(int) * (size_t)R->nreh))) rc = tm_fail(err, "out of memory");
    return rc;
}

static int setup(grpo_run_state *R, tm_error *err) {
    const grpo_args *a = R->a;
    // under LoRA a checkpoint holds the adapters only: the policy is the base plus those
    int peft = a->lora.use_peft || lora_is_adapter_dir(a->model);
    const char *from = a->resume_from_checkpoint && !peft ? a->resume_from_checkpoint : a->model;
    if (peft ? model_load_frozen(&R->m, from, err) : model_load(&R->m, from, err)) return -1;  // a bf16 base read in place
    if (model_lora_prepare(&R->m, &a->lora, a->model, peft ? a->resume_from_checkpoint : NULL, (uint64_t)a->seed, err)) return -1;
    int longest;
    if (load_task(R, a->model, a->chat_template, a->chat_template_kwargs, a->prompt_style, a->prompt_suffix, a->data, a->max_prompt_length, a->tools, &longest, err)) return -1;
    if (a->rehearsal && load_rehearsal(R, a->rehearsal, err)) return -1;
    if (a->freeze_vision_tower) {
        if (!R->m.vis) return tm_fail(err, "--freeze-vision-tower: %s is not a vision-language model", a->model);
        vision_freeze(&R->m);
    }
    int extra = 0;  // --perturb: room for each image at the processor's largest
    if (a->perturb) {
        if (!R->m.vis) return tm_fail(err, "--perturb: %s is not a vision-language model", a->model);
        if (!(R->perturb = calloc(1, sizeof *R->perturb))) return tm_fail(err, "out of memory");
        uint64_t ps = a->perturb_seed >= 0 ? (uint64_t)a->perturb_seed : (uint64_t)a->seed;
        if (vl_perturb_init(R->perturb, a->perturb, ps, &R->task.icfg, R->m.cfg.image_token_id, err)) return -1;
        for (int i = 0; i < R->task.prompts.n; i++) {
            const data_example *d = &R->task.prompts.ex[i];
            if (vl_perturb_add_example(R->perturb, d, err)) return -1;
            if (d->n_images * vl_perturb_max_tokens(R->perturb) > extra) extra = d->n_images * vl_perturb_max_tokens(R->perturb);
        }
        if (!R->perturb->n) return tm_fail(err, "--perturb: the prompts have no images");
        if (a->quiet < 1 && dist_rank() == 0)
            fprintf(stderr, "temper: --perturb %s (seed %llu): %d images, drawn anew each step\n", a->perturb, (unsigned long long)ps, R->perturb->n);
    }
    int bs = a->per_device_train_batch_size;
    int per_seq = longest + extra + a->max_completion_length;
    for (int i = 0; i < R->nreh; i++) if (R->reh[i].len > per_seq) per_seq = R->reh[i].len;
    int cap = bs * per_seq;
    lr_schedule sched;
    lr_schedule_parse(a->lr_scheduler_type, &sched);
    trainer_opts to = {{a->learning_rate, a->adam_beta1, a->adam_beta2, a->adam_epsilon, a->weight_decay}, a->max_grad_norm, sched, 0, 0,
                       cap, bs, 0, a->zero, a->bf16, a->gradient_checkpointing, a->profile};
    if (trainer_open(&R->t, &R->m, &to, 1, err)) return -1;
    trainer_set_temperature(&R->t, a->temperature);  // policy and rehearsal log-probs at the sampling T
    R->adv_b = malloc(sizeof(float) * (size_t)cap);
    R->old_b = malloc(sizeof(float) * (size_t)cap);
    R->ent_b = malloc(sizeof(float) * (size_t)cap);
    if (!R->adv_b || !R->old_b || !R->ent_b) return tm_fail(err, "out of memory");
    if (a->h.beta > 0) {
        // the frozen reference: the initial policy, even when resuming
        // (under LoRA: the policy itself with the adapters off, see reference_logps)
        if (R->m.lora ? trainer_open(&R->rt, &R->m, &to, 0, err)
                      : model_load(&R->ref, a->model, err) || trainer_open(&R->rt, &R->ref, &to, 0, err))
            return -1;
        trainer_set_temperature(&R->rt, a->temperature);  // the reference's too (TRL)
        R->have_ref = 1;
    }
    return 0;
}

int grpo_run(const grpo_args *args, tm_error *err) {
    grpo_args resolved = *args;
    const grpo_args *a = &resolved;
    char latest[4096];
    if (checkpoint_resolve(args->resume_from_checkpoint, args->output_dir, latest, sizeof latest,
                           &resolved.resume_from_checkpoint, err))
        return -1;
    if (grpo_args_check(a, err)) return -1;
    if (!*a->model) return tm_fail(err, "--model is empty");
    if (a->resume_from_checkpoint && checkpoint_check(a->resume_from_checkpoint, err)) return -1;
    int rank = dist_rank();  // rank 0 alone writes (dist.h)
    if (rank == 0 && train_prepare_output_dir(a->output_dir, a->model, NULL, a->resume_from_checkpoint, a->overwrite_output_dir, err))
        return -1;

    grpo_run_state R;
    memset(&R, 0, sizeof R);
    R.a = a;
    int rc = -1;
    FILE *metrics = NULL;
    completion *batch = NULL;
    float *adv = NULL;
    double *rw = NULL;
    sbuf line;
    sbuf_init(&line);
    int G = a->num_generations, nb = gen_batch(a), P = nb / G, per_step = step_size(a), part = rank_part(a);
    if (setup(&R, err)) goto done;

    int64_t gens_per_epoch = (R.task.prompts.n + P - 1) / P;
    int64_t total = a->max_steps > 0 ? a->max_steps
                                     : (int64_t)ceil(a->num_train_epochs * (double)gens_per_epoch) * a->num_iterations * steps_per_pass(a);
    R.t.o.total_steps = total;
    R.t.o.warmup_steps = a->warmup_steps > 0 ? a->warmup_steps : (int64_t)ceil(a->warmup_ratio * (double)total);
    if (a->resume_from_checkpoint) {
        if (trainer_resume(&R.t, a->resume_from_checkpoint, &R.st, err)) goto done;
        fprintf(stderr, "temper: resuming from %s at step %lld\n", a->resume_from_checkpoint, (long long)R.st.global_step);
    }
    char metrics_path[4096];
    io_join(metrics_path, sizeof metrics_path, a->output_dir, "metrics.jsonl");
    if (rank == 0) {
        io_atomic w;
        if (io_atomic_open(&w, metrics_path, err)) goto done;
        for (int i = 0; i < R.st.n_log; i++) fprintf(w.f, "%s\n", R.st.log[i]);
        if (io_atomic_commit(&w, err)) goto done;
        metrics = fopen(metrics_path, "a");
        if (!metrics) { tm_fail(err, "%s: %s", metrics_path, strerror(errno)); goto done; }
    }
    batch = calloc((size_t)nb, sizeof *batch);
    adv = malloc(sizeof(float) * (size_t)nb);
    rw = malloc(sizeof(double) * (size_t)nb);
    if (!batch || !adv || !rw) { tm_fail(err, "out of memory"); goto done; }

    progress pb;
    progress_start(&pb, "grpo", total, "steps");
    metric_window win;
    memset(&win, 0, sizeof win);
    while (R.st.global_step < total) {
        gen_metrics gm;
        if (generate(&R, batch, &gm, err) || gen_metrics_reduce(&gm, 0, err)) goto done;
        // every rank gets every reward (0 + another rank's: exact), so the advantages and
        // their statistics are the whole batch's on every rank
        for (int i = 0; i < nb; i++) rw[i] = batch[i].reward;
        if (dist_allreduce_sum_f64(rw, (size_t)nb, err)) goto done;
        if (grpo_advantages(nb, G, rw, (grpo_scale)a->scale_rewards, 1e-4, adv, NULL, &gm.rs, err)) goto done;
        double t0 = now_seconds();
        for (int j = 0; R.have_ref && j < nb / per_step; j++)
            if (reference_logps(&R, batch + (size_t)j * per_step + (size_t)rank * part, part, err)) goto done;
        for (int step = 0; step < a->num_iterations * steps_per_pass(a) && R.st.global_step < total; step++) {
            int off = (step % steps_per_pass(a)) * per_step + rank * part;  // this rank's part of this step's slice
            grpo_metrics x;
            double loss = 0, gnorm = 0, ts = now_seconds();
            gm.reh_tokens = gm.reh_div_sum = 0;
            // the mismatch is measured before any update from this batch: on its first step
            if (train_step(&R, batch + off, part, adv + off, step == 0, &x, &gm, &loss, &gnorm, err)) goto done;
            gm.t_train = now_seconds() - (step == 0 ? t0 : ts);
            if (!isfinite(loss)) { tm_fail(err, "step %lld: the loss is %f; stopping (the last checkpoint is intact)", (long long)R.st.global_step + 1, loss); goto done; }
            R.st.global_step++;
            R.st.num_tokens += x.tokens;
            double ep = (double)R.st.prompts_seen / (double)R.task.prompts.n;
            R.st.epoch = ep;
            int last = R.st.global_step == total;
            progress_set_extra(&pb, "reward %.3f acc %.3f", gm.rs.reward, gm.reward_sum[GRPO_REWARD_ACCURACY] / gm.n);
            if (!a->quiet) progress_update(&pb, R.st.global_step);
            window_add(&R, &win, loss, gnorm, &gm, &x, x.tokens / (gm.t_gen + gm.t_score + gm.t_train));
            if (R.st.global_step % a->logging_steps == 0 || last) {
                window_line(&R, &win, &line, ep, R.st.num_tokens);
                if (sbuf_check(&line, err)) goto done;
                if (metrics) {
                    fprintf(metrics, "%s\n", line.data);
                    fflush(metrics);
                }
                if (checkpoint_log(&R.st, line.data)) { tm_fail(err, "out of memory"); goto done; }
                if (a->quiet || !pb.tty) fprintf(stderr, "%s\n", line.data);
            }
        }
        for (int i = 0; i < nb; i++) completion_free(&batch[i]);
        if (a->save_steps > 0 && R.st.global_step % a->save_steps == 0 && R.st.global_step < total)
            if (trainer_save(&R.t, a->output_dir, &R.st, a->save_total_limit, err)) goto done;
    }
    if (!a->quiet) progress_finish(&pb);
    if (rank == 0 && (model_save(&R.m, a->output_dir, 0, err) || checkpoint_write_trainer_state(a->output_dir, &R.st, err))) goto done;
    fprintf(stderr, "temper: trained %lld steps; model saved to %s (metrics: %s)\n", (long long)R.st.global_step, a->output_dir, metrics_path);
    trainer_profile_report(&R.t, stderr);
    rc = 0;
done:
    if (metrics) fclose(metrics);
    for (int i = 0; batch && i < nb; i++) completion_free(&batch[i]);
    free(batch); free(adv); free(rw);
    sbuf_free(&line);
    free(R.adv_b); free(R.old_b); free(R.ent_b); free(R.reh_order);
    for (int i = 0; i < R.nreh; i++) completion_free(&R.reh[i]);
    free(R.reh);
    trainer_close(&R.t);
    trainer_close(&R.rt);
    checkpoint_state_free(&R.st);
    if (R.perturb) vl_perturb_free(R.perturb);
    free(R.perturb);
    online_task_free(&R.task);
    model_free(&R.m);
    model_free(&R.ref);
    return rc;
}

// ---- temper rehearsal: π0's samples, split by how often π0 solves a prompt ----

void grpo_rehearsal_args_default(grpo_rehearsal_args *a) {
    memset(a, 0, sizeof *a);
    a->k = 8;
    a->solved_threshold = 8;
    a->max_completion_length = 256;
    a->max_prompt_length = 512;
    a->seed = 42;
    a->temperature = 1.0;
    a->tools = "none";
}

static void put_ints(sbuf *b, const char *key, const int32_t *v, int n) {
    sbuf_printf(b, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_printf(b, i ? ", %d" : "%d", v[i]);
    sbuf_puts(b, "]");
}

// The input file's lines by line number (1-based), to copy unsolved rows as they were.
static char **read_lines(const char *path, long *n, tm_error *err) {
    io_lines in;
    if (io_lines_open(&in, path, err)) return NULL;
    char **v = NULL, *text;
    long len, cap = 0;
    *n = 0;
    while ((len = io_lines_next(&in, &text)) >= 0) {
        if (in.lineno >= cap) {
            long nc = cap ? 2 * cap : 256;
            while (nc <= in.lineno) nc *= 2;
            char **nv = realloc(v, sizeof *v * (size_t)nc);
            if (!nv) break;
            memset(nv + cap, 0, sizeof *nv * (size_t)(nc - cap));
            v = nv, cap = nc;
        }
        if (!(v[in.lineno] = strndup(text, (size_t)len))) break;
        *n = in.lineno + 1;
    }
    int ok = len < 0;
    io_lines_close(&in);
    if (!ok) {
        for (long i = 0; i < *n; i++) free(v[i]);
        free(v);
        tm_fail(err, "out of memory");
        return NULL;
    }
    return v;
}

int grpo_rehearsal_run(const grpo_rehearsal_args *ra, tm_error *err) {
    if (!ra->model || !ra->data || !ra->output) return tm_fail(err, "--model, --data and --output are required");
    if (online_prompt_style_check(ra->prompt_style, err)) return -1;
    if (ra->k < 1) return tm_fail(err, "--k must be at least 1 (got %d)", ra->k);
    if (ra->solved_threshold < 1 || ra->solved_threshold > ra->k)
        return tm_fail(err, "--solved-threshold must be in [1, --k %d] (got %d)", ra->k, ra->solved_threshold);
    if (ra->max_completion_length < 1) return tm_fail(err, "--max-completion-length must be at least 1 (got %d)", ra->max_completion_length);
    if (!(ra->temperature > 0) || !isfinite(ra->temperature))
        return tm_fail(err, "--temperature must be a finite number > 0 (got %g)", ra->temperature);
    if (rollout_tool_from_name(ra->tools) < 0) return tm_fail(err, "unknown --tools '%s' (none, calculator, python)", ra->tools);
    grpo_args dummy;
    grpo_args_default(&dummy);  // rewards: accuracy only; no truncation masking
    grpo_run_state R;
    memset(&R, 0, sizeof R);
    R.a = &dummy;
    int rc = -1, longest, chunk = 32, k = ra->k;
    long nlines = 0, solved = 0, samples = 0, exp_rows = 0;
    char **lines = NULL;
    rollout_traj *trajs = NULL;
    completion *cs = NULL;
    int **pp = NULL, *pl = NULL;
    io_atomic out = {0}, ex = {0};
    int out_open = 0, ex_open = 0;
    sbuf b;
    sbuf_init(&b);
    if (model_load(&R.m, ra->model, err)) goto done;
    if (load_task(&R, ra->model, ra->chat_template, ra->chat_template_kwargs, ra->prompt_style, ra->prompt_suffix, ra->data, ra->max_prompt_length, ra->tools, &longest, err)) goto done;
    for (int i = 0; i < R.task.prompts.n; i++)
        if (R.task.prompts.ex[i].n_images) { tm_fail(err, "%s:%ld: rehearsal samples no prompts with images yet", ra->data, R.task.prompts.ex[i].line); goto done; }
    if (ra->exp_output && !(lines = read_lines(ra->data, &nlines, err))) goto done;
    trajs = calloc((size_t)chunk * k, sizeof *trajs);
    cs = calloc((size_t)chunk * k, sizeof *cs);
    pp = malloc(sizeof(int *) * (size_t)chunk);
    pl = malloc(sizeof(int) * (size_t)chunk);
    if (!trajs || !cs || !pp || !pl) { tm_fail(err, "out of memory"); goto done; }
    if (io_atomic_open(&out, ra->output, err)) goto done;
    out_open = 1;
    if (ra->exp_output) {
        if (io_atomic_open(&ex, ra->exp_output, err)) goto done;
        ex_open = 1;
    }
    progress pb;
    progress_start(&pb, "rehearsal", R.task.prompts.n, "prompts");
    for (int p0 = 0; p0 < R.task.prompts.n; p0 += chunk) {
        int np = p0 + chunk <= R.task.prompts.n ? chunk : R.task.prompts.n - p0;
        for (int i = 0; i < np; i++) pp[i] = R.task.prompts.ex[p0 + i].seq[0].ids, pl[i] = R.task.prompts.ex[p0 + i].prompt_len;
        rollout_opts o;
        rollout_opts_default(&o);
        o.n = k;
        o.batch = np * k < 256 ? np * k : 256;
        o.max_new_tokens = ra->max_completion_length;
        o.sp.temperature = ra->temperature;  // the log π0 recorded are at it
        o.seed = (uint64_t)ra->seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)p0;
        online_rollout_opts(&R.task, &o);  // stops, and the tool: π0 samples as grpo --tools samples the policy
        rollout_backend be;
        rollout_model_ctx mctx;
        rollout_backend_model(&be, &mctx, &R.m);
        memset(trajs, 0, sizeof *trajs * (size_t)np * k);
        int r = rollout_run(&be, R.task.tok, (const int *const *)pp, pl, np, &o, trajs, err);
        for (int i = 0; !r && i < np * k; i++) r = make_completion(&R, p0 + i / k, NULL, &trajs[i], &cs[i], err);
        for (int i = 0; i < np * k; i++) rollout_traj_free(&trajs[i]);
        for (int i = 0; !r && i < np; i++) {
            completion *g = cs + (size_t)i * k;
            int correct = 0;
            for (int s = 0; s < k; s++) correct += g[s].r[GRPO_REWARD_ACCURACY] > 0;
            const data_example *e = &R.task.prompts.ex[p0 + i];
            if (correct >= ra->solved_threshold) {
                solved++;
                for (int s = 0; s < k; s++) {
                    if (!(g[s].r[GRPO_REWARD_ACCURACY] > 0)) continue;
                    int L = g[s].len - g[s].plen;
                    sbuf_clear(&b);
                    sbuf_printf(&b, "{\"line\": %ld, \"sample\": %d, \"temperature\": ", e->line, s);
                    sbuf_json_float(&b, ra->temperature);  // of the log π0 below (grpo checks it)
                    put_ints(&b, "prompt_input_ids", g[s].ids, g[s].plen);
                    put_ints(&b, "completion_input_ids", g[s].ids + g[s].plen, L);
                    sbuf_puts(&b, ", \"completion_logprobs\": [");
                    for (int t = 0; t < L; t++) { if (t) sbuf_puts(&b, ", "); sbuf_json_float(&b, g[s].samp[g[s].plen + t]); }
                    sbuf_puts(&b, "], \"completion_mask\": [");
                    for (int t = 0; t < L; t++) sbuf_puts(&b, t ? (g[s].mask[g[s].plen + t] ? ", 1" : ", 0") : (g[s].mask[g[s].plen + t] ? "1" : "0"));
                    sbuf_puts(&b, "]");
                    if (e->answer) { sbuf_puts(&b, ", \"answer\": "); sbuf_json_str(&b, e->answer, strlen(e->answer)); }
                    sbuf_puts(&b, "}\n");
                    if ((r = sbuf_check(&b, err))) break;
                    fputs(b.data, out.f);
                    samples++;
                }
            } else if (ex_open && e->line < nlines && lines[e->line]) {
                fprintf(ex.f, "%s\n", lines[e->line]);
                exp_rows++;
            }
        }
        for (int i = 0; i < np * k; i++) completion_free(&cs[i]);
        if (r) goto done;
        progress_update(&pb, p0 + np);
    }
    progress_finish(&pb);
    out_open = 0;
    if (io_atomic_commit(&out, err)) goto done;
    if (ex_open) {
        ex_open = 0;
        if (io_atomic_commit(&ex, err)) goto done;
    }
    fprintf(stderr, "temper rehearsal: %ld of %d prompts solved (>= %d of %d correct): %ld rehearsal samples -> %s", solved, R.task.prompts.n,
            ra->solved_threshold, k, samples, ra->output);
    if (ra->exp_output) fprintf(stderr, "; %ld unsolved prompts -> %s", exp_rows, ra->exp_output);
    fprintf(stderr, "\n");
    rc = 0;
done:
    if (out_open) io_atomic_abort(&out);
    if (ex_open) io_atomic_abort(&ex);
    sbuf_free(&b);
    for (long i = 0; i < nlines; i++) free(lines[i]);
    free(lines);
    free(trajs); free(cs); free(pp); free(pl);
    online_task_free(&R.task);
    model_free(&R.m);
    return rc;
}
