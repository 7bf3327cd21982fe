// Online GRPO (see grpo_trainer.h for its contract).
#include "train/grpo_trainer.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "base/rng.h"
#include "data/data.h"
#include "model/model.h"
#include "reward/math_answer.h"
#include "rollout/rollout.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/step.h"
#include "train/trainer.h"

void grpo_args_default(grpo_args *a) {
    memset(a, 0, sizeof *a);
    a->lr_scheduler_type = "linear";
    a->tools = "none";
    a->learning_rate = 1e-6;
    a->adam_beta1 = 0.9;
    a->adam_beta2 = 0.999;
    a->adam_epsilon = 1e-8;
    a->max_grad_norm = 1.0;
    a->num_train_epochs = 3.0;
    a->max_steps = -1;
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
}

int grpo_args_check(const grpo_args *a, tm_error *err) {
    if (!a->model || !a->data || !a->output_dir) return tm_fail(err, "--model, --data and --output-dir are required");
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
        {"max-turns", a->max_turns, 1}, {"seed", a->seed, 0}, {"logging-steps", a->logging_steps, 1},
        {"save-steps", a->save_steps, 0}, {"save-total-limit", a->save_total_limit, 0}, {"top-k", a->top_k, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v < ints[i].lo) return tm_fail(err, "--%s must be at least %ld (got %ld)", ints[i].flag, ints[i].lo, ints[i].v);
    long gen = (long)a->per_device_train_batch_size * a->gradient_accumulation_steps;
    if (gen % a->num_generations)
        return tm_fail(err, "the generation batch (--per-device-train-batch-size %d x --gradient-accumulation-steps %d = %ld completions) "
                            "must be a multiple of --num-generations %d",
                       a->per_device_train_batch_size, a->gradient_accumulation_steps, gen, a->num_generations);
    if (a->temperature != 1.0 || a->top_p != 1.0 || a->top_k != 0 || a->min_p != 0.0)
        return tm_fail(err, "--temperature %g --top-p %g --top-k %d --min-p %g: grpo samples from the temperature-1 distribution "
                            "(temperature 1, top-p 1, top-k 0, min-p 0), the one whose log-probs the sampler records and the trainer "
                            "recomputes, so that the importance ratio compares one distribution",
                       a->temperature, a->top_p, a->top_k, a->min_p);
    const grpo_hparams *h = &a->h;
    if (!(h->epsilon >= 0 && h->epsilon < 1)) return tm_fail(err, "--epsilon must be in [0, 1) (got %g)", h->epsilon);
    if (!(h->epsilon_high >= 0) || !isfinite(h->epsilon_high)) return tm_fail(err, "--epsilon-high must be a finite number >= 0 (got %g)", h->epsilon_high);
    if (h->delta != 0 && !(h->delta > 1 + h->epsilon_high && isfinite(h->delta)))
        return tm_fail(err, "--delta must be 0 (off) or above 1 + --epsilon-high (got %g)", h->delta);
    if (!(h->beta >= 0) || !isfinite(h->beta)) return tm_fail(err, "--beta must be a finite number >= 0 (got %g)", h->beta);
    for (int i = 0; i < GRPO_N_REWARD; i++)
        if (!isfinite(a->reward_weights[i])) return tm_fail(err, "--reward-weights must be finite numbers");
    if (rollout_tool_from_name(a->tools) < 0) return tm_fail(err, "unknown --tools '%s' (none, calculator, python)", a->tools);
    if (a->save_steps > 0 && a->save_steps % a->num_iterations)
        return tm_fail(err, "--save-steps %d must be a multiple of --num-iterations %d (checkpoints fall between generation batches)",
                       a->save_steps, a->num_iterations);
    lr_schedule s;
    if (lr_schedule_parse(a->lr_scheduler_type, &s))
        return tm_fail(err, "unknown --lr-scheduler-type \"%s\" (linear, cosine, constant, constant_with_warmup)", a->lr_scheduler_type);
    return 0;
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
} completion;

static void completion_free(completion *c) {
    free(c->ids); free(c->mask); free(c->samp); free(c->ref);
    memset(c, 0, sizeof *c);
}

// ---- the run's state ----

typedef struct grpo_run_state {
    const grpo_args *a;
    model m, ref;
    int have_ref;
    tok_tokenizer *tok;
    data_set prompts;
    trainer t, rt;            // the policy's trainer; the reference's forward-only one
    checkpoint_state st;
    int *order, order_epoch;
    int stop_ids[16], nstop;
    math_extract_opts eo;
    math_equal_opts qo;
    rollout_tool tool;
    char *obs_pre, *obs_suf;
    float *adv_b, *old_b, *samp_b, *ent_b;   // per packed token of a micro-batch
} grpo_run_state;

// Fisher-Yates permutation of the prompts for one epoch (from the seed and the epoch).
static void epoch_order(int *order, int n, int seed, int epoch) {
    rng r;
    rng_seed(&r, (uint64_t)seed * 1000003u + (uint64_t)epoch);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

// The next prompt of the data stream (st.prompts_seen counts those drawn).
static int next_prompt(grpo_run_state *R) {
    int n = R->prompts.n;
    int64_t k = R->st.prompts_seen++;
    int epoch = (int)(k / n);
    if (epoch != R->order_epoch) { epoch_order(R->order, n, R->a->seed, epoch); R->order_epoch = epoch; }
    return R->order[k % n];
}

// Rewards of one trajectory: the verifier's verdict and an extractable answer.
static int score(grpo_run_state *R, const rollout_traj *tr, const char *gold, completion *c, tm_error *err) {
    sbuf txt;
    sbuf_init(&txt);
    if (tok_decode(R->tok, tr->ids, (size_t)tr->len, 1, &txt, err)) { sbuf_free(&txt); return -1; }
    if (sbuf_check(&txt, err)) { sbuf_free(&txt); return -1; }
    const char *s = txt.data ? txt.data : "";
    size_t st, al;
    int found = math_extract(s, strlen(s), &R->eo, &st, &al, NULL);
    int correct = 0;
    if (found && gold) {
        char *pred = strndup(s + st, al);
        if (!pred) { sbuf_free(&txt); return tm_fail(err, "out of memory"); }
        math_verdict v;
        if (math_answer_check(pred, gold, &R->qo, &v, err)) { free(pred); sbuf_free(&txt); return -1; }
        correct = v == MATH_EQUAL;
        free(pred);
    }
    sbuf_free(&txt);
    c->r[GRPO_REWARD_ACCURACY] = correct;
    c->r[GRPO_REWARD_FORMAT] = found;
    c->reward = 0;
    for (int i = 0; i < GRPO_N_REWARD; i++) c->reward += R->a->reward_weights[i] * c->r[i];
    return 0;
}

// A trajectory becomes a training sequence: prompt + completion ids, its mask and log-probs.
static int make_completion(grpo_run_state *R, int p, rollout_traj *tr, completion *c, tm_error *err) {
    const data_example *ex = &R->prompts.ex[p];
    int plen = ex->prompt_len, len = plen + tr->len;
    memset(c, 0, sizeof *c);
    c->prompt = p;
    c->plen = plen;
    c->len = len;
    c->ids = malloc(sizeof(int32_t) * (size_t)len);
    c->mask = calloc((size_t)len, 1);
    c->samp = calloc((size_t)len, sizeof(float));
    if (!c->ids || !c->mask || !c->samp) return tm_fail(err, "out of memory");
    memcpy(c->ids, ex->seq[0].ids, sizeof(int32_t) * (size_t)plen);
    c->truncated = tr->finish == FINISH_LENGTH;
    int keep = !(c->truncated && R->a->mask_truncated_completions);
    for (int i = 0; i < tr->len; i++) {
        c->ids[plen + i] = tr->ids[i];
        c->mask[plen + i] = keep && tr->mask[i];
        c->samp[plen + i] = tr->mask[i] ? tr->logp[i] : 0.0f;
    }
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
    double mismatch_tokens, logp_diff_sum, logp_diff_max, prob_diff_sum, prob_diff_max, ratio_dev_sum, ratio_dev_max;
} gen_metrics;

static void put_metric(sbuf *o, const char *name, double v) {
    sbuf_printf(o, ", \"%s\": ", name);
    sbuf_json_float(o, v);
}

// ---- sampling one generation batch ----

// Samples rounds of prompts until the batch holds P groups (dynamic sampling) or one
// round (otherwise). out gets P * G completions.
static int generate(grpo_run_state *R, completion *out, gen_metrics *gm, tm_error *err) {
    const grpo_args *a = R->a;
    int G = a->num_generations, P = a->per_device_train_batch_size * a->gradient_accumulation_steps / G;
    int kept = 0, rc = 0;
    completion *pool = NULL;   // dropped groups (dynamic sampling), to fill a short batch
    int npool = 0;
    int *pidx = malloc(sizeof(int) * (size_t)P), **pp = malloc(sizeof(int *) * (size_t)P), *pl = malloc(sizeof(int) * (size_t)P);
    rollout_traj *trajs = calloc((size_t)P * G, sizeof *trajs);
    double *rw = malloc(sizeof(double) * (size_t)G);
    float *adv = malloc(sizeof(float) * (size_t)G);
    completion *round = calloc((size_t)P * G, sizeof *round);
    if (!pidx || !pp || !pl || !trajs || !rw || !adv || !round) { rc = tm_fail(err, "out of memory"); goto out; }
    memset(gm, 0, sizeof *gm);
    gm->len_min = INFINITY;
    for (int r = 0; r < (a->dynamic_sampling ? a->max_num_gen_batches : 1) && kept < P; r++) {
        for (int i = 0; i < P; i++) {
            pidx[i] = next_prompt(R);
            pp[i] = R->prompts.ex[pidx[i]].seq[0].ids;
            pl[i] = R->prompts.ex[pidx[i]].prompt_len;
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
        o.stop_ids = R->stop_ids;
        o.nstop_ids = R->nstop;
        const char *stops[1] = {"```output"};
        if (R->tool == ROLLOUT_TOOL_PYTHON) { o.stop_strs = stops; o.nstop_strs = 1; }
        o.tool = R->tool;
        o.max_turns = a->max_turns;
        o.py.timeout_s = a->tool_timeout;
        o.obs_prefix = R->obs_pre;
        o.obs_suffix = R->obs_suf;
        rollout_backend be;
        rollout_model_ctx mctx;
        rollout_backend_model(&be, &mctx, &R->m);
        double t0 = now_seconds();
        memset(trajs, 0, sizeof *trajs * (size_t)P * G);
        rc = rollout_run(&be, R->tok, (const int *const *)pp, pl, P, &o, trajs, err);
        double t1 = now_seconds();
        gm->t_gen += t1 - t0;
        for (int i = 0; !rc && i < P * G; i++) rc = make_completion(R, pidx[i / G], &trajs[i], &round[i], err);
        for (int i = 0; i < P * G; i++) rollout_traj_free(&trajs[i]);
        gm->t_score += now_seconds() - t1;
        gm->rounds++;
        if (rc) goto out;
        for (int i = 0; i < P * G; i++) {
            completion *c = &round[i];
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
            if (trainer_add(&R->rt, c[i].ids, c[i].mask, c[i].len, NULL, NULL, err)) return -1;
        if (trainer_forward(&R->rt, NULL, err)) return -1;
        for (int i = i0; i < i1; i++) {
            if (!(c[i].ref = malloc(sizeof(float) * (size_t)c[i].len))) return tm_fail(err, "out of memory");
            memcpy(c[i].ref, R->rt.logp_tok + R->rt.span[2 * (i - i0)], sizeof(float) * (size_t)c[i].len);
        }
    }
    return 0;
}

// One optimizer step over the batch: micro-batches, grpo_loss, backward, AdamW.
static int train_step(grpo_run_state *R, completion *c, int n, const float *adv, int first_pass, grpo_metrics *gmx,
                      gen_metrics *gm, double *loss_out, double *gnorm, tm_error *err) {
    const grpo_args *a = R->a;
    int bs = a->per_device_train_batch_size;
    grpo_norm z = {0, 0, a->max_completion_length};
    z.sequences = n;
    for (int i = 0; i < n; i++)
        for (int k = 1; k < c[i].len; k++) z.tokens += c[i].mask[k];
    double loss = 0;
    memset(gmx, 0, sizeof *gmx);
    for (int i0 = 0; i0 < n; i0 += bs) {
        int i1 = i0 + bs < n ? i0 + bs : n;
        trainer *t = &R->t;
        trainer_clear(t);
        for (int i = i0; i < i1; i++)
            if (trainer_add(t, c[i].ids, c[i].mask, c[i].len, c[i].ref, NULL, err)) return -1;
        for (int i = i0; i < i1; i++) {
            int s0 = t->span[2 * (i - i0)];
            for (int k = 0; k < c[i].len; k++) {
                R->adv_b[s0 + k] = adv[i];
                R->old_b[s0 + k] = c[i].samp[k];
            }
        }
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
    *gnorm = trainer_step(&R->t, R->st.global_step);
    *loss_out = loss;
    return 0;
}

static void write_line(grpo_run_state *R, sbuf *o, double epoch, double loss, double gnorm, double ntok, const gen_metrics *gm,
                       const grpo_metrics *x, double tps) {
    const grpo_args *a = R->a;
    sbuf_clear(o);
    sbuf_printf(o, "{\"step\": %lld, \"epoch\": ", (long long)R->st.global_step);
    sbuf_json_float(o, epoch);
    put_metric(o, "loss", loss);
    put_metric(o, "grad_norm", gnorm);
    put_metric(o, "learning_rate", trainer_lr(&R->t, R->st.global_step));
    put_metric(o, "num_tokens", ntok);
    put_metric(o, "tokens_per_second", tps);
    put_metric(o, "reward", gm->rs.reward);
    put_metric(o, "reward_std", gm->rs.reward_std);
    put_metric(o, "frac_reward_zero_std", gm->rs.frac_reward_zero_std);
    put_metric(o, "rewards/accuracy/mean", gm->reward_sum[GRPO_REWARD_ACCURACY] / gm->n);
    put_metric(o, "rewards/format/mean", gm->reward_sum[GRPO_REWARD_FORMAT] / gm->n);
    put_metric(o, "accuracy", gm->reward_sum[GRPO_REWARD_ACCURACY] / gm->n);
    double T = x->tokens > 0 ? x->tokens : 1;
    if (a->h.beta > 0) put_metric(o, "kl", x->kl_sum / T);
    put_metric(o, "entropy", x->entropy_sum / T);
    put_metric(o, "clip_ratio/low_mean", x->clip_low / T);
    put_metric(o, "clip_ratio/high_mean", x->clip_high / T);
    put_metric(o, "clip_ratio/region_mean", x->clip_region / T);
    put_metric(o, "completions/mean_length", gm->len_sum / gm->n);
    put_metric(o, "completions/min_length", gm->len_min);
    put_metric(o, "completions/max_length", gm->len_max);
    put_metric(o, "completions/clipped_ratio", gm->clipped / gm->n);
    if (R->tool != ROLLOUT_TOOL_NONE) {
        put_metric(o, "tools/calls_per_trajectory", gm->calls / gm->n);
        put_metric(o, "tools/errors_per_trajectory", gm->errors / gm->n);
    }
    if (gm->mismatch_tokens > 0) {
        double M = gm->mismatch_tokens;
        put_metric(o, "sampling/sampling_logp_difference/mean", gm->logp_diff_sum / M);
        put_metric(o, "sampling/sampling_logp_difference/max", gm->logp_diff_max);
        put_metric(o, "training/rollout_probs_diff_mean", gm->prob_diff_sum / M);
        put_metric(o, "training/rollout_probs_diff_max", gm->prob_diff_max);
        put_metric(o, "sampling/ratio_minus_one/mean", gm->ratio_dev_sum / M);
        put_metric(o, "sampling/ratio_minus_one/max", gm->ratio_dev_max);
    }
    if (a->dynamic_sampling) {
        put_metric(o, "dynamic_sampling/rounds", gm->rounds);
        put_metric(o, "dynamic_sampling/kept_groups", gm->kept_groups);
        put_metric(o, "dynamic_sampling/filled_groups", gm->filled_groups);
    }
    put_metric(o, "time/generation", gm->t_gen);
    put_metric(o, "time/scoring", gm->t_score);
    put_metric(o, "time/training", gm->t_train);
    sbuf_puts(o, "}");
}

// ---- the run ----

static int setup(grpo_run_state *R, tm_error *err) {
    const grpo_args *a = R->a;
    const char *from = a->resume_from_checkpoint ? a->resume_from_checkpoint : a->model;
    if (model_load(&R->m, from, err)) return -1;
    if (!(R->tok = tok_load(a->model, err))) return -1;
    tok_chat chat;
    int have_chat = tok_chat_for(R->tok, a->chat_template, &chat, err) == 0;
    if (a->chat_template && !have_chat) return -1;
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_PROMPTS;
    o.chat = have_chat ? &chat : NULL;
    o.prompt_suffix = a->prompt_suffix;
    if (data_load(R->tok, a->data, &o, &R->prompts, err)) return -1;
    if (R->prompts.n == 0) return tm_fail(err, "%s: no prompts", a->data);
    int longest = 0;
    for (int i = 0; i < R->prompts.n; i++) {
        data_example *e = &R->prompts.ex[i];
        if (a->max_prompt_length > 0 && e->prompt_len > a->max_prompt_length) {  // keep the end (TRL's left truncation)
            int cut = e->prompt_len - a->max_prompt_length;
            memmove(e->seq[0].ids, e->seq[0].ids + cut, sizeof(int32_t) * (size_t)a->max_prompt_length);
            e->prompt_len = e->seq[0].len = a->max_prompt_length;
        }
        for (int k = 0; k < e->prompt_len; k++)
            if (e->seq[0].ids[k] < 0 || e->seq[0].ids[k] >= R->m.cfg.vocab)
                return tm_fail(err, "%s:%ld: token id %d is outside the model's vocabulary (%d)", a->data, e->line, e->seq[0].ids[k], R->m.cfg.vocab);
        if (e->prompt_len > longest) longest = e->prompt_len;
    }
    // stops: EOS and end-of-turn tokens
    int cand_ids[2] = {tok_eos_id(R->tok), R->m.cfg.eos_token_id};
    for (int i = 0; i < 2; i++)
        if (cand_ids[i] >= 0 && cand_ids[i] < R->m.cfg.vocab) R->stop_ids[R->nstop++] = cand_ids[i];
    const char *cand[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>"};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        int id = tok_token_id(R->tok, cand[i]);
        if (id >= 0 && id < R->m.cfg.vocab) R->stop_ids[R->nstop++] = id;
    }
    R->tool = (rollout_tool)rollout_tool_from_name(a->tools);
    if (R->tool == ROLLOUT_TOOL_PYTHON && have_chat && rollout_obs_wrapper(&chat, &R->obs_pre, &R->obs_suf, err)) return -1;
    math_extract_opts_default(&R->eo);
    math_equal_opts_default(&R->qo);  // strict: the reward wants the computed answer

    int bs = a->per_device_train_batch_size;
    int cap = bs * (longest + a->max_completion_length);
    lr_schedule sched;
    lr_schedule_parse(a->lr_scheduler_type, &sched);
    trainer_opts to = {{a->learning_rate, a->adam_beta1, a->adam_beta2, a->adam_epsilon, a->weight_decay}, a->max_grad_norm, sched, 0, 0,
                       cap, bs, 0};
    if (trainer_open(&R->t, &R->m, &to, 1, err)) return -1;
    R->adv_b = malloc(sizeof(float) * (size_t)cap);
    R->old_b = malloc(sizeof(float) * (size_t)cap);
    R->ent_b = malloc(sizeof(float) * (size_t)cap);
    R->order = malloc(sizeof(int) * (size_t)R->prompts.n);
    R->order_epoch = -1;
    if (!R->adv_b || !R->old_b || !R->ent_b || !R->order) return tm_fail(err, "out of memory");
    if (a->h.beta > 0) {
        // the frozen reference: the initial policy, even when resuming
        if (model_load(&R->ref, a->model, err) || trainer_open(&R->rt, &R->ref, &to, 0, err)) return -1;
        R->have_ref = 1;
    }
    return 0;
}

int grpo_run(const grpo_args *args, tm_error *err) {
    grpo_args resolved = *args;
    const grpo_args *a = &resolved;
    char latest[4096];
    const char *r = args->resume_from_checkpoint;
    if (r && (!strcmp(r, "true") || !strcmp(r, "True") || !strcmp(r, "last"))) {
        if (!args->output_dir || checkpoint_latest(args->output_dir, latest, sizeof latest))
            return tm_fail(err, "--resume-from-checkpoint %s: no checkpoint-* directory in %s", r, args->output_dir ? args->output_dir : "(no --output-dir)");
        resolved.resume_from_checkpoint = latest;
    }
    if (grpo_args_check(a, err)) return -1;
    if (!*a->model) return tm_fail(err, "--model is empty");
    if (a->resume_from_checkpoint && checkpoint_check(a->resume_from_checkpoint, err)) return -1;
    if (train_prepare_output_dir(a->output_dir, a->model, NULL, a->resume_from_checkpoint, a->overwrite_output_dir, err)) return -1;

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
    int G = a->num_generations, nb = a->per_device_train_batch_size * a->gradient_accumulation_steps, P = nb / G;
    if (setup(&R, err)) goto done;

    int64_t gens_per_epoch = (R.prompts.n + P - 1) / P;
    int64_t total = a->max_steps > 0 ? a->max_steps : (int64_t)ceil(a->num_train_epochs * (double)gens_per_epoch) * a->num_iterations;
    R.t.o.total_steps = total;
    R.t.o.warmup_steps = a->warmup_steps > 0 ? a->warmup_steps : (int64_t)ceil(a->warmup_ratio * (double)total);
    if (a->resume_from_checkpoint) {
        if (trainer_resume(&R.t, a->resume_from_checkpoint, &R.st, err)) goto done;
        fprintf(stderr, "temper: resuming from %s at step %lld\n", a->resume_from_checkpoint, (long long)R.st.global_step);
    }
    char metrics_path[4096];
    io_join(metrics_path, sizeof metrics_path, a->output_dir, "metrics.jsonl");
    {
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
    while (R.st.global_step < total) {
        gen_metrics gm;
        if (generate(&R, batch, &gm, err)) goto done;
        for (int i = 0; i < nb; i++) rw[i] = batch[i].reward;
        if (grpo_advantages(nb, G, rw, (grpo_scale)a->scale_rewards, 1e-4, adv, NULL, &gm.rs, err)) goto done;
        double t0 = now_seconds();
        if (R.have_ref && reference_logps(&R, batch, nb, err)) goto done;
        for (int it = 0; it < a->num_iterations && R.st.global_step < total; it++) {
            grpo_metrics x;
            double loss, gnorm, ts = now_seconds();
            if (train_step(&R, batch, nb, adv, it == 0, &x, &gm, &loss, &gnorm, err)) goto done;
            gm.t_train = now_seconds() - (it == 0 ? t0 : ts);
            if (!isfinite(loss)) { tm_fail(err, "step %lld: the loss is %f; stopping (the last checkpoint is intact)", (long long)R.st.global_step + 1, loss); goto done; }
            R.st.global_step++;
            R.st.num_tokens += x.tokens;
            double ep = (double)R.st.prompts_seen / (double)R.prompts.n;
            R.st.epoch = ep;
            int last = R.st.global_step == total;
            progress_set_extra(&pb, "reward %.3f acc %.3f", gm.rs.reward, gm.reward_sum[GRPO_REWARD_ACCURACY] / gm.n);
            if (!a->quiet) progress_update(&pb, R.st.global_step);
            if (R.st.global_step % a->logging_steps == 0 || last) {
                write_line(&R, &line, ep, loss, gnorm, R.st.num_tokens, &gm, &x, x.tokens / (gm.t_gen + gm.t_score + gm.t_train));
                if (sbuf_check(&line, err)) goto done;
                fprintf(metrics, "%s\n", line.data);
                fflush(metrics);
                if (checkpoint_log(&R.st, line.data)) { tm_fail(err, "out of memory"); goto done; }
                if (a->quiet || !pb.tty) fprintf(stderr, "%s\n", line.data);
            }
        }
        for (int i = 0; i < nb; i++) completion_free(&batch[i]);
        if (a->save_steps > 0 && R.st.global_step % a->save_steps == 0 && R.st.global_step < total)
            if (trainer_save(&R.t, a->output_dir, &R.st, a->save_total_limit, err)) goto done;
    }
    if (!a->quiet) progress_finish(&pb);
    if (model_save(&R.m, a->output_dir, 0, err)) goto done;
    if (checkpoint_write_trainer_state(a->output_dir, &R.st, err)) goto done;
    fprintf(stderr, "temper: trained %lld steps; model saved to %s (metrics: %s)\n", (long long)R.st.global_step, a->output_dir, metrics_path);
    rc = 0;
done:
    if (metrics) fclose(metrics);
    for (int i = 0; batch && i < nb; i++) completion_free(&batch[i]);
    free(batch); free(adv); free(rw);
    sbuf_free(&line);
    free(R.adv_b); free(R.old_b); free(R.ent_b); free(R.order);
    free(R.obs_pre); free(R.obs_suf);
    trainer_close(&R.t);
    trainer_close(&R.rt);
    checkpoint_state_free(&R.st);
    data_set_free(&R.prompts);
    tok_free(R.tok);
    model_free(&R.m);
    model_free(&R.ref);
    return rc;
}
