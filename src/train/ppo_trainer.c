// Online PPO with a critic (see ppo_trainer.h for its contract).
#include "train/ppo_trainer.h"
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "base/rng.h"
#include "dist/dist.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "rollout/rollout.h"
#include "train/checkpoint.h"
#include "train/online.h"
#include "train/step.h"
#include "train/trainer.h"

void ppo_args_default(ppo_args *a) {
    memset(a, 0, sizeof *a);
    lora_args_default(&a->lora);
    a->lr_scheduler_type = "linear";
    a->tools = "none";
    a->value_head = "shared";
    a->learning_rate = 3e-6;
    a->adam_beta1 = 0.9;
    a->adam_beta2 = 0.999;
    a->adam_epsilon = 1e-8;
    a->max_grad_norm = 1.0;
    a->num_train_epochs = 1.0;
    a->max_steps = -1;
    a->per_device_train_batch_size = 8;
    a->gradient_accumulation_steps = 1;
    a->num_mini_batches = 1;
    a->num_ppo_epochs = 4;
    a->max_prompt_length = 512;
    a->response_length = 53;
    a->temperature = 1.0;
    a->h = ppo_hparams_default();
    a->verifier_weight = 1.0;
    a->reward_model_weight = 1.0;
    a->max_turns = 4;
    a->tool_timeout = 10.0;
    a->seed = 42;
    a->logging_steps = 1;
    a->save_steps = 500;
}

// One rank's rollout batch; under mpirun the whole batch is dist_size() of them, rank r's being
// sequences [r·n, (r+1)·n) of it (ppo_trainer.h).
static int batch_size(const ppo_args *a) { return a->per_device_train_batch_size * a->gradient_accumulation_steps * a->num_mini_batches; }

int ppo_args_check(const ppo_args *a, tm_error *err) {
    if (!a->model || !a->data || !a->output_dir) return tm_fail(err, "--model, --data and --output-dir are required");
    if (lora_args_check(&a->lora, err)) return -1;
    if (!*a->model) return tm_fail(err, "--model is empty");
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
        {"gradient-accumulation-steps", a->gradient_accumulation_steps, 1}, {"num-mini-batches", a->num_mini_batches, 1},
        {"num-ppo-epochs", a->num_ppo_epochs, 1}, {"max-prompt-length", a->max_prompt_length, 0},
        {"response-length", a->response_length, 1}, {"max-turns", a->max_turns, 1}, {"seed", a->seed, 0},
        {"logging-steps", a->logging_steps, 1}, {"save-steps", a->save_steps, 0}, {"save-total-limit", a->save_total_limit, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v < ints[i].lo) return tm_fail(err, "--%s must be at least %ld (got %ld)", ints[i].flag, ints[i].lo, ints[i].v);
    if (!(a->temperature > 0) || !isfinite(a->temperature))
        return tm_fail(err, "--temperature must be a finite number > 0 (got %g)", a->temperature);
    const ppo_hparams *h = &a->h;
    if (!(h->cliprange >= 0 && h->cliprange < 1)) return tm_fail(err, "--cliprange must be in [0, 1) (got %g)", h->cliprange);
    if (!(h->cliprange_value >= 0) || !isfinite(h->cliprange_value)) return tm_fail(err, "--cliprange-value must be a finite number >= 0 (got %g)", h->cliprange_value);
    if (!(h->vf_coef >= 0) || !isfinite(h->vf_coef)) return tm_fail(err, "--vf-coef must be a finite number >= 0 (got %g)", h->vf_coef);
    if (!(h->gamma >= 0 && h->gamma <= 1)) return tm_fail(err, "--gamma must be in [0, 1] (got %g)", h->gamma);
    if (!(h->lam >= 0 && h->lam <= 1)) return tm_fail(err, "--lam must be in [0, 1] (got %g)", h->lam);
    if (!(h->kl_coef >= 0) || !isfinite(h->kl_coef)) return tm_fail(err, "--kl-coef must be a finite number >= 0 (got %g)", h->kl_coef);
    if (!isfinite(a->verifier_weight) || !isfinite(a->reward_model_weight)) return tm_fail(err, "--reward-weights must be finite numbers");
    if (!(a->missing_eos_penalty >= 0) || !isfinite(a->missing_eos_penalty))
        return tm_fail(err, "--missing-eos-penalty must be a finite number >= 0, subtracted from the score (got %g)", a->missing_eos_penalty);
    if (a->zero < 0 || a->zero > 1) return tm_fail(err, "--zero %d: 0 or 1 (ZeRO-1: the AdamW state sharded over ranks)", a->zero);
    if (strcmp(a->value_head, "shared") != 0) return tm_fail(err, "unknown --value-head \"%s\" (shared; or --value-model DIR)", a->value_head);
    if (rollout_tool_from_name(a->tools) < 0) return tm_fail(err, "unknown --tools '%s' (none, calculator, python)", a->tools);
    lr_schedule s;
    if (lr_schedule_parse(a->lr_scheduler_type, &s))
        return tm_fail(err, "unknown --lr-scheduler-type \"%s\" (linear, cosine, constant, constant_with_warmup)", a->lr_scheduler_type);
    return 0;
}

// ---- the rollout batch: B sequences (prompt + completion) in flat token-aligned arrays ----

typedef struct rollout_batch {
    int n, cap_tokens, n_tokens;
    int *span;                   // [2n]
    int *prompt;                 // [n] prompt index
    int32_t *ids;
    uint8_t *mask;               // 1: a token the model sampled
    float *old, *ref, *val, *rw, *adv, *ret;
    float *samp;                 // the sampler's log-probs (0 off the mask): the mismatch metric
    double *score, *verifier, *rm, *non_score, *kl;
    int *eos, *ncalls, *nerrors, *clen;
} rollout_batch;

static void rollout_batch_free(rollout_batch *b) {
    free(b->span); free(b->prompt); free(b->ids); free(b->mask);
    free(b->old); free(b->ref); free(b->val); free(b->rw); free(b->adv); free(b->ret); free(b->samp);
    free(b->score); free(b->verifier); free(b->rm); free(b->non_score); free(b->kl);
    free(b->eos); free(b->ncalls); free(b->nerrors); free(b->clen);
    memset(b, 0, sizeof *b);
}

static int rollout_batch_alloc(rollout_batch *b, int n, int cap_tokens, tm_error *err) {
    memset(b, 0, sizeof *b);
    b->n = n;
    b->cap_tokens = cap_tokens;
    size_t T = (size_t)cap_tokens, N = (size_t)n;
    b->span = malloc(sizeof(int) * 2 * N);
    b->prompt = malloc(sizeof(int) * N);
    b->ids = malloc(sizeof(int32_t) * T);
    b->mask = malloc(T);
    float **f[] = {&b->old, &b->ref, &b->val, &b->rw, &b->adv, &b->ret, &b->samp};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = calloc(T, sizeof(float));
    double **d[] = {&b->score, &b->verifier, &b->rm, &b->non_score, &b->kl};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) *d[i] = calloc(N, sizeof(double));
    int **k[] = {&b->eos, &b->ncalls, &b->nerrors, &b->clen};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) *k[i] = calloc(N, sizeof(int));
    int ok = b->span && b->prompt && b->ids && b->mask;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) ok = ok && *f[i];
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) ok = ok && *d[i];
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) ok = ok && *k[i];
    if (!ok) { rollout_batch_free(b); return tm_fail(err, "out of memory"); }
    return 0;
}

static seq_batch rollout_view(const rollout_batch *b, const float *logp, const float *ref) {
    seq_batch s = {b->n_tokens, logp, ref, b->mask, NULL, b->n, b->span};
    return s;
}

// ---- the run's state ----

typedef struct ppo_state {
    const ppo_args *a;
    online_task task;
    model m, ref, vm, rmod;
    int have_ref, have_rm, separate;   // a frozen reference; a reward model; a value model (else the shared head)
    trainer t, rt, vt, rmt;            // policy; reference, reward model (forward-only); value model
    checkpoint_state st;
    int D;                             // the critic's hidden size
    float *head, *head_g, *head_m, *head_v;   // shared head: [D] weights then the bias
    float *dxf;                        // [cap_tokens, D] dL/d(critic's final hidden)
    float *adv_b, *ret_b, *val_b, *oval_b, *old_b, *ent_b, *dval_b;   // per packed token of a micro-batch
    int cap;                           // tokens of a micro-batch
} ppo_state;

static int next_prompt(ppo_state *R) { return online_next_prompt(&R->task, R->st.prompts_seen++, R->a->seed); }

// ---- sampling and scoring ----

static int generate(ppo_state *R, rollout_batch *B, double *t_gen, tm_error *err) {
    const ppo_args *a = R->a;
    int n = B->n, rc = 0;
    int **pp = malloc(sizeof(int *) * (size_t)n), *pl = malloc(sizeof(int) * (size_t)n);
    rollout_traj *tr = calloc((size_t)n, sizeof *tr);
    if (!pp || !pl || !tr) { free(pp); free(pl); free(tr); return tm_fail(err, "out of memory"); }
    // every rank draws the whole batch's prompts (the cursor stays the same on all) and keeps its own
    int r0 = dist_rank() * n;
    for (int i = 0; i < n * dist_size(); i++) {
        int p = next_prompt(R);
        if (i >= r0 && i < r0 + n) B->prompt[i - r0] = p;
    }
    for (int i = 0; i < n; i++) {
        pp[i] = R->task.prompts.ex[B->prompt[i]].seq[0].ids;
        pl[i] = R->task.prompts.ex[B->prompt[i]].prompt_len;
    }
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = 1;
    o.batch = n < 256 ? n : 256;
    o.max_new_tokens = a->response_length;
    o.sp.temperature = a->temperature;
    o.seed = (uint64_t)a->seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)R->st.global_step << 8);  // resumable: (seed, step)
    o.group_base = r0;  // the seeds of the sequences' indices in the whole batch (one process's)
    online_rollout_opts(&R->task, &o);  // stops, tool, observation wrapper
    o.max_turns = a->max_turns;
    o.py.timeout_s = a->tool_timeout;
    rollout_backend be;
    rollout_model_ctx mctx;
    rollout_backend_model(&be, &mctx, &R->m);
    double t0 = now_seconds();
    rc = rollout_run(&be, R->task.tok, (const int *const *)pp, pl, n, &o, tr, err);
    *t_gen = now_seconds() - t0;
    int off = 0;
    for (int i = 0; !rc && i < n; i++) {
        const data_example *ex = &R->task.prompts.ex[B->prompt[i]];
        int plen = ex->prompt_len, len = plen + tr[i].len;
        if (off + len > B->cap_tokens) { rc = tm_fail(err, "internal: the rollout batch overflows (%d tokens)", off + len); break; }
        B->span[2 * i] = off;
        B->span[2 * i + 1] = off + len;
        memcpy(B->ids + off, ex->seq[0].ids, sizeof(int32_t) * (size_t)plen);
        memset(B->mask + off, 0, (size_t)plen);
        for (int k = 0; k < tr[i].len; k++) {
            B->ids[off + plen + k] = tr[i].ids[k];
            B->mask[off + plen + k] = tr[i].mask[k];
            B->samp[off + plen + k] = tr[i].mask[k] ? tr[i].logp[k] : 0.0f;
        }
        for (int k = 0; k < plen; k++) B->samp[off + k] = 0.0f;
        B->clen[i] = tr[i].len;
        B->eos[i] = tr[i].finish == FINISH_STOP;
        B->ncalls[i] = tr[i].ncalls;
        B->nerrors[i] = 0;
        for (int k = 0; k < tr[i].ncalls; k++) B->nerrors[i] += tr[i].calls[k].status != 0;
        int found, correct;
        rc = online_grade(R->task.tok, &R->task.eo, &R->task.qo, tr[i].ids, tr[i].len, ex->answer, NULL, &found, &correct, err);
        B->verifier[i] = correct;
        off += len;
    }
    B->n_tokens = off;
    for (int i = 0; i < n; i++) rollout_traj_free(&tr[i]);
    free(pp); free(pl); free(tr);
    return rc;
}

// ---- the critic ----

// V of every token of the trainer's packed micro-batch into vals (token-aligned: V_t from the
// hidden state that predicts token t; 0 at a sequence's first token). The policy's forward must
// have run (shared head); the value model runs its own forward here.
static int critic_forward(ppo_state *R, float *vals, tm_error *err) {
    trainer *t = &R->t;
    const float *xf, *w;
    double bias = 0;
    if (R->separate) {
        trainer_clear(&R->vt);
        for (int s = 0; s < t->bb.n_seqs; s++) {
            int s0 = t->span[2 * s], s1 = t->span[2 * s + 1];
            if (trainer_add(&R->vt, t->bb.tokens + s0, t->mask_tok + s0, s1 - s0, NULL, NULL, err)) return -1;
        }
        model_batch mb = batch_view(&R->vt.bb);
        if (model_forward_hidden(&R->vm, &mb, err)) return -1;
        xf = model_last_hidden(&R->vm);
        w = R->vm.w + R->vm.off_score;
    } else {
        xf = model_last_hidden(&R->m);
        w = R->head;
        bias = R->head[R->D];
    }
    int D = R->D;
    for (int s = 0; s < t->bb.n_seqs; s++) {
        int s0 = t->span[2 * s], s1 = t->span[2 * s + 1];
        vals[s0] = 0;
        for (int i = s0 + 1; i < s1; i++) {
            const float *h = xf + (size_t)(i - 1) * D;
            double v = bias;
            for (int j = 0; j < D; j++) v += (double)h[j] * w[j];
            vals[i] = (float)v;
        }
    }
    return 0;
}

// Back-propagates dL/dV (token-aligned) together with the policy's dlogp: the head's gradients,
// dL/d(hidden) = dV·w at the position before each token, then one backward per trunk.
static void critic_backward(ppo_state *R, const float *dval) {
    trainer *t = &R->t;
    int D = R->D;
    model *cm = R->separate ? &R->vm : &R->m;
    const float *xf = model_last_hidden(cm);
    const float *w = R->separate ? R->vm.w + R->vm.off_score : R->head;
    float *gw = R->separate ? R->vm.g + R->vm.off_score : R->head_g;
    memset(R->dxf, 0, sizeof(float) * (size_t)t->bb.n_tokens * D);
    for (int s = 0; s < t->bb.n_seqs; s++) {
        int s0 = t->span[2 * s], s1 = t->span[2 * s + 1];
        for (int i = s0 + 1; i < s1; i++) {
            float g = dval[i];
            if (g == 0) continue;
            float *dx = R->dxf + (size_t)(i - 1) * D;
            const float *h = xf + (size_t)(i - 1) * D;
            for (int j = 0; j < D; j++) {
                dx[j] = g * w[j];
                gw[j] += g * h[j];
            }
            if (!R->separate) R->head_g[D] += g;
        }
    }
    if (R->separate) {
        trainer_backward(t);
        model_batch mb = batch_view(&R->vt.bb);
        model_backward_hidden(&R->vm, &mb, R->dxf);
    } else {
        trainer_backward_extra(t, R->dxf);
    }
}

// The critic's optimizer step, at the policy's learning rate for this update.
static int critic_step(ppo_state *R, tm_error *err) {
    if (R->separate) {
        double gn;
        return trainer_step_all(&R->vt, R->st.global_step, &gn, err);
    }
    const ppo_args *a = R->a;
    int D = R->D;
    // every rank normalized its value loss by the step's tokens: the head's gradient is the sum
    if (dist_size() > 1 && dist_allreduce_sum_f32(R->head_g, (size_t)D + 1, err)) return -1;
    if (a->max_grad_norm > 0) clip_grad_norm(R->head_g, (size_t)D + 1, a->max_grad_norm);
    adamw_hparams h = R->t.o.adam;
    h.lr = trainer_lr(&R->t, R->st.global_step);
    int64_t step = R->t.opt.step;  // the policy's optimizer has just counted this step
    adamw_update(R->head, R->head_g, R->head_m, R->head_v, (size_t)D, &h, a->weight_decay, step);
    adamw_update(R->head + D, R->head_g + D, R->head_m + D, R->head_v + D, 1, &h, 0.0, step);
    memset(R->head_g, 0, sizeof(float) * ((size_t)D + 1));
    return 0;
}

// value_head/checkpoint-N.safetensors (or OUT/value_head.safetensors): weights and moments.
static int head_save(const ppo_state *R, const char *path, int moments, tm_error *err) {
    int D = R->D;
    st_out_tensor ts[6] = {
        {"v_head.weight", 2, {1, D}, R->head}, {"v_head.bias", 1, {1}, R->head + D},
        {"exp_avg.v_head.weight", 2, {1, D}, R->head_m}, {"exp_avg.v_head.bias", 1, {1}, R->head_m + D},
        {"exp_avg_sq.v_head.weight", 2, {1, D}, R->head_v}, {"exp_avg_sq.v_head.bias", 1, {1}, R->head_v + D},
    };
    return st_write(path, ts, moments ? 6 : 2, ST_F32, err);
}

static int head_load(ppo_state *R, const char *path, tm_error *err) {
    st_file f;
    if (st_open(&f, path, err)) return -1;
    const char *names[6] = {"v_head.weight", "v_head.bias", "exp_avg.v_head.weight", "exp_avg.v_head.bias", "exp_avg_sq.v_head.weight",
                            "exp_avg_sq.v_head.bias"};
    float *dst[6] = {R->head, R->head + R->D, R->head_m, R->head_m + R->D, R->head_v, R->head_v + R->D};
    int rc = 0;
    for (int i = 0; i < 6 && !rc; i++) {
        const st_tensor *t = st_find(&f, names[i]);
        if (!t || t->numel != (i % 2 ? 1 : R->D)) rc = tm_fail(err, "%s: %s is missing or has the wrong size", path, names[i]);
        else rc = st_read_f32(&f, t, dst[i], err);
    }
    st_close(&f);
    return rc;
}

// Where the critic of checkpoint dir ck lives: <parent>/value_head/<name>.safetensors or
// <parent>/value_model/<name>.
static void critic_path(const ppo_state *R, const char *ck, char *out, size_t cap) {
    char a[4096], b[4096], sub[4200];
    snprintf(a, sizeof a, "%s", ck);
    snprintf(b, sizeof b, "%s", ck);
    size_t n = strlen(a);
    while (n > 1 && a[n - 1] == '/') a[--n] = 0, b[n] = 0;
    snprintf(sub, sizeof sub, "%s/%s", dirname(a), R->separate ? "value_model" : "value_head");
    if (R->separate) io_join(out, cap, sub, basename(b));
    else {
        char name[4200];
        snprintf(name, sizeof name, "%s.safetensors", basename(b));
        io_join(out, cap, sub, name);
    }
}

static int critic_save_checkpoint(ppo_state *R, tm_error *err) {
    const ppo_args *a = R->a;
    char dir[4096];
    io_join(dir, sizeof dir, a->output_dir, R->separate ? "value_model" : "value_head");
    if (dist_rank() == 0 && io_mkdirs(dir, err)) return -1;
    if (R->separate) return trainer_save(&R->vt, dir, &R->st, a->save_total_limit, err);  // every rank (ZeRO-1 gathers)
    if (dist_rank() != 0) return 0;
    char name[64], path[4200];
    snprintf(name, sizeof name, "checkpoint-%lld.safetensors", (long long)R->st.global_step);
    return head_save(R, io_join(path, sizeof path, dir, name), 1, err);
}

// ---- the forward passes of the rollout phase (no gradients) ----

// logπold, V_old (and the rollout entropy metric) from the policy and critic; logπref; the reward model.
static int rollout_forward(ppo_state *R, rollout_batch *B, tm_error *err) {
    int bs = R->a->per_device_train_batch_size;
    for (int i0 = 0; i0 < B->n; i0 += bs) {
        int i1 = i0 + bs < B->n ? i0 + bs : B->n;
        trainer *t = &R->t;
        trainer_clear(t);
        for (int i = i0; i < i1; i++) {
            int s0 = B->span[2 * i];
            if (trainer_add(t, B->ids + s0, B->mask + s0, B->span[2 * i + 1] - s0, NULL, NULL, err)) return -1;
        }
        if (trainer_forward(t, NULL, err) || critic_forward(R, R->val_b, err)) return -1;
        for (int i = i0; i < i1; i++) {
            int s0 = B->span[2 * i], len = B->span[2 * i + 1] - s0, p0 = t->span[2 * (i - i0)];
            memcpy(B->old + s0, t->logp_tok + p0, sizeof(float) * (size_t)len);
            memcpy(B->val + s0, R->val_b + p0, sizeof(float) * (size_t)len);
        }
        if (R->have_ref) {
            trainer_clear(&R->rt);
            for (int i = i0; i < i1; i++) {
                int s0 = B->span[2 * i];
                if (trainer_add(&R->rt, B->ids + s0, B->mask + s0, B->span[2 * i + 1] - s0, NULL, NULL, err)) return -1;
            }
            int adapters = model_lora_enable(R->rt.m, 0);  // under LoRA the reference is the base
            int frc = trainer_forward(&R->rt, NULL, err);
            model_lora_enable(R->rt.m, adapters);
            if (frc) return -1;
            for (int i = i0; i < i1; i++) {
                int s0 = B->span[2 * i], len = B->span[2 * i + 1] - s0;
                memcpy(B->ref + s0, R->rt.logp_tok + R->rt.span[2 * (i - i0)], sizeof(float) * (size_t)len);
            }
        }
        if (R->have_rm) {
            trainer_clear(&R->rmt);
            for (int i = i0; i < i1; i++) {
                int s0 = B->span[2 * i];
                if (trainer_add(&R->rmt, B->ids + s0, B->mask + s0, B->span[2 * i + 1] - s0, NULL, NULL, err)) return -1;
            }
            model_batch mb = batch_view(&R->rmt.bb);
            if (model_reward_forward(&R->rmod, &mb, R->val_b, err)) return -1;  // val_b: scratch here
            for (int i = i0; i < i1; i++) B->rm[i] = R->val_b[i - i0];
        }
    }
    return 0;
}

// ---- one update's optimizer steps ----

typedef struct update_metrics {
    double micro, approxkl, clipfrac, pg, vf, vclip, entropy, ratio, ratio_sq, vpred, verr;
    double grad_norm, loss;
    int steps;
} update_metrics;

static void add_micro(update_metrics *u, const ppo_metrics *m) {
    if (m->tokens <= 0) return;
    double T = m->tokens, r = m->ratio_sum / T;
    u->micro += 1;
    u->approxkl += m->approxkl_sum / T;
    u->clipfrac += m->pg_clip / T;
    u->pg += m->pg_sum / T;
    u->vf += m->vf_sum / T;
    u->vclip += m->vf_clip / T;
    u->entropy += m->entropy_sum / T;
    u->ratio += r;
    u->ratio_sq += r * r;
    u->vpred += m->vpred_sum / T;
    u->verr += m->verr_sum / T;
}

// One mini-batch (indices idx[0..n)): micro-batches, ppo_loss, backward, the optimizer steps.
static int train_minibatch(ppo_state *R, rollout_batch *B, const int *idx, int n, update_metrics *u, tm_error *err) {
    const ppo_args *a = R->a;
    int bs = a->per_device_train_batch_size;
    double ntok = 0, loss = 0;
    for (int k = 0; k < n; k++)
        for (int i = B->span[2 * idx[k]] + 1; i < B->span[2 * idx[k] + 1]; i++) ntok += B->mask[i];
    if (dist_allreduce_sum_f64(&ntok, 1, err)) return -1;  // the mini-batch's over all ranks, before any loss
    for (int k0 = 0; k0 < n; k0 += bs) {
        int k1 = k0 + bs < n ? k0 + bs : n;
        trainer *t = &R->t;
        trainer_clear(t);
        for (int k = k0; k < k1; k++) {
            int s0 = B->span[2 * idx[k]];
            if (trainer_add(t, B->ids + s0, B->mask + s0, B->span[2 * idx[k] + 1] - s0, R->have_ref ? B->ref + s0 : NULL, NULL, err)) return -1;
        }
        for (int k = k0; k < k1; k++) {
            int s0 = B->span[2 * idx[k]], len = B->span[2 * idx[k] + 1] - s0, p0 = t->span[2 * (k - k0)];
            memcpy(R->adv_b + p0, B->adv + s0, sizeof(float) * (size_t)len);
            memcpy(R->ret_b + p0, B->ret + s0, sizeof(float) * (size_t)len);
            memcpy(R->oval_b + p0, B->val + s0, sizeof(float) * (size_t)len);
            memcpy(R->old_b + p0, B->old + s0, sizeof(float) * (size_t)len);
        }
        trainer_dropout_next(t);  // LoRA dropout: this forward's backward follows
        if (trainer_forward(t, R->ent_b, err) || critic_forward(R, R->val_b, err)) return -1;
        seq_batch sb = trainer_view(t, R->have_ref);
        ppo_inputs in = {R->adv_b, R->ret_b, R->val_b, R->oval_b, R->old_b, R->ent_b};
        ppo_metrics m;
        double l;
        if (ppo_loss(&sb, &in, &a->h, ntok, &l, t->dlogp_tok, R->dval_b, &m, err)) return -1;
        loss += l;
        add_micro(u, &m);
        critic_backward(R, R->dval_b);
    }
    double gn;
    if (trainer_step_all(&R->t, R->st.global_step, &gn, err) || critic_step(R, err)) return -1;
    u->grad_norm += gn;
    u->loss += loss;
    u->steps++;
    return 0;
}

static int train_update(ppo_state *R, rollout_batch *B, update_metrics *u, tm_error *err) {
    const ppo_args *a = R->a;
    int n = B->n, mb = n / a->num_mini_batches, rc = 0;
    int *perm = malloc(sizeof(int) * (size_t)n);
    if (!perm) return tm_fail(err, "out of memory");
    memset(u, 0, sizeof *u);
    for (int e = 0; e < a->num_ppo_epochs && !rc; e++) {
        // TRL: a fresh permutation per PPO epoch; here from (seed, step, epoch) for resume
        rng r;
        rng_seed(&r, ((uint64_t)a->seed * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)R->st.global_step * 1000003u + (uint64_t)e + 1));
        for (int i = 0; i < n; i++) perm[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint64_t)i + 1);
            int tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
        }
        for (int s = 0; s < a->num_mini_batches && !rc; s++) rc = train_minibatch(R, B, perm + s * mb, mb, u, err);
    }
    free(perm);
    return rc;
}

// ---- logging ----

static void put_metric(sbuf *o, const char *name, double v) {
    sbuf_printf(o, ", \"%s\": ", name);
    sbuf_json_float(o, v);
}

enum { WS_KL, WS_ENT, WS_NS, WS_SC, WS_VER, WS_RM, WS_EOS, WS_LEN, WS_CALLS, WS_ERRS, WS_DSUM, WS_DN, WS_N, WS_SUMS,
       WS_DMAX = WS_SUMS, WS_TGEN, WS_TTRAIN, WS_ALL };  // sums over ranks, then maxima

// Data parallel: each rank's sums into the whole batch's, added in rank order (maxima: the largest).
static int reduce_ranks(double *v, int nsum, int nall, tm_error *err) {
    int W = dist_size();
    if (W == 1) return 0;
    double *all = malloc(sizeof(double) * (size_t)nall * (size_t)W);
    if (!all) return tm_fail(err, "out of memory");
    if (dist_allgather(v, all, sizeof(double) * (size_t)nall, err)) { free(all); return -1; }
    for (int k = 0; k < nall; k++) {
        v[k] = all[k];
        for (int r = 1; r < W; r++) v[k] = k < nsum ? v[k] + all[(size_t)r * nall + k] : fmax(v[k], all[(size_t)r * nall + k]);
    }
    free(all);
    return 0;
}

// The update's metrics summed over ranks (grad_norm is the global one already, steps the same).
static int update_metrics_reduce(update_metrics *u, tm_error *err) {
    double v[12] = {u->micro, u->approxkl, u->clipfrac, u->pg, u->vf, u->vclip, u->entropy, u->ratio, u->ratio_sq, u->vpred, u->verr, u->loss};
    if (reduce_ranks(v, 12, 12, err)) return -1;
    u->micro = v[0], u->approxkl = v[1], u->clipfrac = v[2], u->pg = v[3], u->vf = v[4], u->vclip = v[5];
    u->entropy = v[6], u->ratio = v[7], u->ratio_sq = v[8], u->vpred = v[9], u->verr = v[10], u->loss = v[11];
    return 0;
}

static int write_line(ppo_state *R, sbuf *o, const rollout_batch *B, const update_metrics *u, double lr, double t_gen, double t_train,
                      tm_error *err) {
    const ppo_args *a = R->a;
    double kl = 0, ent = 0, ns = 0, sc = 0, ver = 0, rmv = 0, eos = 0, len = 0, calls = 0, errs = 0;
    double dsum = 0, dmax = 0, dn = 0;  // |log π_sampler - log πold| on sampled tokens (both at T)
    for (int i = 0; i < B->n; i++) {
        kl += B->kl[i];
        ns += B->non_score[i];
        sc += B->score[i];
        ver += B->verifier[i];
        rmv += B->rm[i];
        eos += B->eos[i];
        len += B->clen[i];
        calls += B->ncalls[i];
        errs += B->nerrors[i];
        for (int t = B->span[2 * i]; t < B->span[2 * i + 1]; t++)
            if (B->mask[t]) {
                ent -= B->old[t];
                double d = fabs((double)B->old[t] - B->samp[t]);
                dsum += d;
                dn++;
                if (d > dmax) dmax = d;
            }
    }
    double v[WS_ALL] = {kl, ent, ns, sc, ver, rmv, eos, len, calls, errs, dsum, dn, B->n, dmax, t_gen, t_train};
    if (reduce_ranks(v, WS_SUMS, WS_ALL, err)) return -1;  // wall times: the slowest rank's
    kl = v[WS_KL], ent = v[WS_ENT], ns = v[WS_NS], sc = v[WS_SC], ver = v[WS_VER], rmv = v[WS_RM], eos = v[WS_EOS], len = v[WS_LEN];
    calls = v[WS_CALLS], errs = v[WS_ERRS], dsum = v[WS_DSUM], dn = v[WS_DN], dmax = v[WS_DMAX], t_gen = v[WS_TGEN], t_train = v[WS_TTRAIN];
    double n = v[WS_N];
    double M = u->micro > 0 ? u->micro : 1;
    double rmean = u->ratio / M, rvar = u->micro > 1 ? (u->ratio_sq - u->micro * rmean * rmean) / (u->micro - 1) : 0;
    sbuf_clear(o);
    sbuf_printf(o, "{\"step\": %lld, \"episode\": %lld, \"epoch\": ", (long long)R->st.global_step, (long long)R->st.prompts_seen);
    sbuf_json_float(o, R->st.epoch);
    put_metric(o, "loss", u->loss / (u->steps ? u->steps : 1));
    put_metric(o, "grad_norm", u->grad_norm / (u->steps ? u->steps : 1));
    put_metric(o, "lr", lr);
    put_metric(o, "objective/kl", kl / n);
    put_metric(o, "objective/entropy", ent / n);
    put_metric(o, "objective/non_score_reward", ns / n);
    put_metric(o, "objective/rlhf_reward", (sc + ns) / n);
    put_metric(o, "objective/scores", sc / n);
    put_metric(o, "policy/approxkl_avg", u->approxkl / M);
    put_metric(o, "policy/clipfrac_avg", u->clipfrac / M);
    put_metric(o, "loss/policy_avg", u->pg / M);
    put_metric(o, "loss/value_avg", u->vf / M);
    put_metric(o, "val/clipfrac_avg", u->vclip / M);
    put_metric(o, "policy/entropy_avg", u->entropy / M);
    put_metric(o, "val/ratio", rmean);
    put_metric(o, "val/ratio_var", rvar < 0 ? 0 : rvar);
    put_metric(o, "val/num_eos_tokens", eos);
    put_metric(o, "val/vpred", u->vpred / M);
    put_metric(o, "val/error", u->verr / M);
    put_metric(o, "accuracy", ver / n);
    put_metric(o, "rewards/verifier/mean", ver / n);
    if (R->have_rm) put_metric(o, "rewards/reward_model/mean", rmv / n);
    put_metric(o, "completions/mean_length", len / n);
    if (R->task.tool != ROLLOUT_TOOL_NONE) {
        put_metric(o, "tools/calls_per_trajectory", calls / n);
        put_metric(o, "tools/errors_per_trajectory", errs / n);
    }
    put_metric(o, "sampling/sampling_logp_difference/mean", dn > 0 ? dsum / dn : 0);
    put_metric(o, "sampling/sampling_logp_difference/max", dmax);
    put_metric(o, "time/generation", t_gen);
    put_metric(o, "time/training", t_train);
    sbuf_puts(o, "}");
    (void)a;
    return 0;
}

// ---- setup ----

static int setup(ppo_state *R, tm_error *err) {
    const ppo_args *a = R->a;
    // under LoRA a checkpoint holds the adapters only: the policy is the base plus those
    int peft = a->lora.use_peft || lora_is_adapter_dir(a->model);
    const char *from = a->resume_from_checkpoint && !peft ? a->resume_from_checkpoint : a->model;
    if (peft ? model_load_frozen(&R->m, from, err) : model_load(&R->m, from, err)) return -1;  // a bf16 base read in place
    if (model_lora_prepare(&R->m, &a->lora, a->model, peft ? a->resume_from_checkpoint : NULL, (uint64_t)a->seed, err)) return -1;
    online_task_opts tko = {a->model, a->chat_template, a->prompt_style, a->prompt_suffix, a->data, a->tools, a->max_prompt_length, 0, NULL, 0};
    if (online_task_load(&R->task, &R->m, &tko, err)) return -1;
    int bs = a->per_device_train_batch_size;
    R->cap = bs * (R->task.longest + a->response_length);
    lr_schedule sched;
    lr_schedule_parse(a->lr_scheduler_type, &sched);
    trainer_opts to = {{a->learning_rate, a->adam_beta1, a->adam_beta2, a->adam_epsilon, a->weight_decay}, a->max_grad_norm, sched, 0, 0,
                       R->cap, bs, 0, a->zero, a->bf16, a->gradient_checkpointing, a->profile};
    if (trainer_open(&R->t, &R->m, &to, 1, err)) return -1;
    trainer_set_temperature(&R->t, a->temperature);  // log πθ and log πold of softmax(logits / T), as sampled
    R->separate = a->value_model != NULL;
    if (R->separate) {
        char ck[4200];
        const char *vdir = a->value_model;
        if (a->resume_from_checkpoint) { critic_path(R, a->resume_from_checkpoint, ck, sizeof ck); vdir = ck; }
        if (model_load_reward(&R->vm, vdir, (uint64_t)a->seed, err)) return -1;
        if (R->vm.cfg.hidden <= 0) return tm_fail(err, "%s: no hidden size", vdir);
        if (trainer_open(&R->vt, &R->vm, &to, 1, err)) return -1;
        R->vm.file_dtype = ST_F32;  // the critic is saved exactly as it trains
        R->D = R->vm.cfg.hidden;
    } else {
        R->D = R->m.cfg.hidden;
        size_t hn = (size_t)R->D + 1;
        R->head = calloc(hn, sizeof(float));
        R->head_g = calloc(hn, sizeof(float));
        R->head_m = calloc(hn, sizeof(float));
        R->head_v = calloc(hn, sizeof(float));
        if (!R->head || !R->head_g || !R->head_m || !R->head_v) return tm_fail(err, "out of memory");
    }
    size_t cap = (size_t)R->cap;
    R->dxf = malloc(sizeof(float) * cap * (size_t)R->D);
    float **bufs[] = {&R->adv_b, &R->ret_b, &R->val_b, &R->oval_b, &R->old_b, &R->ent_b, &R->dval_b};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (!(*bufs[i] = calloc(cap, sizeof(float)))) return tm_fail(err, "out of memory");
    if (!R->dxf) return tm_fail(err, "out of memory");
    if (a->h.kl_coef > 0) {  // the frozen reference: the initial policy, even when resuming
        // (under LoRA: the policy itself with the adapters off)
        if (R->m.lora ? trainer_open(&R->rt, &R->m, &to, 0, err)
                      : model_load(&R->ref, a->model, err) || trainer_open(&R->rt, &R->ref, &to, 0, err))
            return -1;
        trainer_set_temperature(&R->rt, a->temperature);  // the reference's too (TRL)
        R->have_ref = 1;
    }
    if (a->reward_model) {
        // a causal LM would get a random score head from model_load_reward: refused here
        char cpath[4200];
        size_t clen;
        char *ctext = io_read_file(io_join(cpath, sizeof cpath, a->reward_model, "config.json"), &clen, err);
        if (!ctext) return -1;
        int is_rm = strstr(ctext, "ForSequenceClassification") != NULL;
        free(ctext);
        if (!is_rm) return tm_fail(err, "--reward-model %s: not a *ForSequenceClassification directory (temper reward-model writes one)", a->reward_model);
        if (model_load_reward(&R->rmod, a->reward_model, 0, err)) return -1;
        if (R->rmod.cfg.vocab != R->m.cfg.vocab)
            return tm_fail(err, "--reward-model %s: vocabulary %d differs from the policy's %d", a->reward_model, R->rmod.cfg.vocab, R->m.cfg.vocab);
        if (trainer_open(&R->rmt, &R->rmod, &to, 0, err)) return -1;
        R->have_rm = 1;
    }
    return 0;
}

static void cleanup(ppo_state *R) {
    trainer_close(&R->t); trainer_close(&R->rt); trainer_close(&R->vt); trainer_close(&R->rmt);
    model_free(&R->m); model_free(&R->ref); model_free(&R->vm); model_free(&R->rmod);
    online_task_free(&R->task);
    checkpoint_state_free(&R->st);
    free(R->head); free(R->head_g); free(R->head_m); free(R->head_v); free(R->dxf);
    free(R->adv_b); free(R->ret_b); free(R->val_b); free(R->oval_b); free(R->old_b); free(R->ent_b); free(R->dval_b);
}

// ppo_whiten over the active tokens of every rank's batch: the mean and the Bessel-corrected
// variance of the whole batch (sums over ranks), then ppo_whiten's formula (keep the two alike).
static int whiten_all(int n, const uint8_t *mask, float *x, tm_error *err) {
    if (dist_size() == 1) { ppo_whiten(n, mask, x, 1); return 0; }
    double sc[2] = {0, 0}, v = 0;
    for (int i = 0; i < n; i++)
        if (mask[i]) sc[0] += x[i], sc[1] += 1;
    if (dist_allreduce_sum_f64(sc, 2, err)) return -1;
    double c = sc[1], mean = c > 0 ? sc[0] / c : 0;
    for (int i = 0; i < n; i++)
        if (mask[i]) v += (x[i] - mean) * (x[i] - mean);
    if (dist_allreduce_sum_f64(&v, 1, err)) return -1;
    if (c == 0) return 0;
    double scale = c > 1 ? 1.0 / sqrt(v / c * (c / (c - 1)) + 1e-8) : 1.0;
    for (int i = 0; i < n; i++)
        if (mask[i]) x[i] = (float)((x[i] - mean) * scale);
    return 0;
}

// Scores, per-token rewards, GAE (per sequence) and whitening over the whole batch.
static int advantages(ppo_state *R, rollout_batch *B, tm_error *err) {
    const ppo_args *a = R->a;
    for (int i = 0; i < B->n; i++) {
        double s = a->verifier_weight * B->verifier[i];
        if (R->have_rm) s += a->reward_model_weight * B->rm[i];
        if (!B->eos[i]) s -= a->missing_eos_penalty;
        B->score[i] = s;
    }
    seq_batch sb = rollout_view(B, B->old, R->have_ref ? B->ref : NULL);
    if (ppo_rewards(&sb, B->score, &a->h, B->rw, B->non_score, B->kl, err)) return -1;
    if (ppo_gae(&sb, B->rw, B->val, a->h.gamma, a->h.lam, B->adv, B->ret, err)) return -1;
    return whiten_all(B->n_tokens, B->mask, B->adv, err);
}

int ppo_run(const ppo_args *args, tm_error *err) {
    ppo_args resolved = *args;
    const ppo_args *a = &resolved;
    char latest[4096];
    if (checkpoint_resolve(args->resume_from_checkpoint, args->output_dir, latest, sizeof latest, &resolved.resume_from_checkpoint, err))
        return -1;
    if (ppo_args_check(a, err)) return -1;
    if (a->resume_from_checkpoint && checkpoint_check(a->resume_from_checkpoint, err)) return -1;
    int rank = dist_rank();  // rank 0 alone writes (dist.h)
    if (rank == 0 && train_prepare_output_dir(a->output_dir, a->model, NULL, a->resume_from_checkpoint, a->overwrite_output_dir, err))
        return -1;

    ppo_state R;
    memset(&R, 0, sizeof R);
    R.a = a;
    int rc = -1, nb = batch_size(a);
    FILE *metrics = NULL;
    rollout_batch B;
    memset(&B, 0, sizeof B);
    sbuf line;
    sbuf_init(&line);
    if (setup(&R, err)) goto done;
    if (rollout_batch_alloc(&B, nb, nb * (R.task.longest + a->response_length), err)) goto done;

    int64_t total = a->max_steps > 0 ? a->max_steps : (int64_t)ceil(a->num_train_epochs * (double)R.task.prompts.n / ((double)nb * dist_size()));
    R.t.o.total_steps = R.vt.o.total_steps = total;
    R.t.o.warmup_steps = R.vt.o.warmup_steps = a->warmup_steps > 0 ? a->warmup_steps : (int64_t)ceil(a->warmup_ratio * (double)total);
    if (a->resume_from_checkpoint) {
        if (trainer_resume(&R.t, a->resume_from_checkpoint, &R.st, err)) goto done;
        char ck[4200];
        critic_path(&R, a->resume_from_checkpoint, ck, sizeof ck);
        checkpoint_state vst;
        memset(&vst, 0, sizeof vst);
        int r = R.separate ? trainer_resume(&R.vt, ck, &vst, err) : head_load(&R, ck, err);
        checkpoint_state_free(&vst);
        if (r) goto done;
        // checkpoint_load_state counts one optimizer step per global step; a PPO step takes
        // num_ppo_epochs x num_mini_batches of them (AdamW's bias correction needs the count)
        R.t.opt.step = R.vt.opt.step = R.st.global_step * a->num_ppo_epochs * a->num_mini_batches;
        fprintf(stderr, "temper: resuming from %s at step %lld (critic: %s)\n", a->resume_from_checkpoint, (long long)R.st.global_step, ck);
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
    progress pb;
    progress_start(&pb, "ppo", total, "steps");
    while (R.st.global_step < total) {
        double t_gen = 0, t0;
        if (generate(&R, &B, &t_gen, err)) goto done;
        t0 = now_seconds();
        if (rollout_forward(&R, &B, err) || advantages(&R, &B, err)) goto done;
        double lr = trainer_lr(&R.t, R.st.global_step);
        update_metrics u;
        if (train_update(&R, &B, &u, err) || update_metrics_reduce(&u, err)) goto done;
        if (!isfinite(u.loss)) { tm_fail(err, "step %lld: the loss is %f; stopping (the last checkpoint is intact)", (long long)R.st.global_step + 1, u.loss); goto done; }
        R.st.global_step++;
        double ntok = 0;
        for (int i = 0; i < B.n_tokens; i++) ntok += B.mask[i];
        if (dist_allreduce_sum_f64(&ntok, 1, err)) goto done;
        R.st.num_tokens += ntok;
        R.st.epoch = (double)R.st.prompts_seen / (double)R.task.prompts.n;
        int last = R.st.global_step == total;
        double sc[2] = {0, B.n};  // the whole batch's mean score
        for (int i = 0; i < B.n; i++) sc[0] += B.score[i];
        if (dist_allreduce_sum_f64(sc, 2, err)) goto done;
        progress_set_extra(&pb, "score %.3f", sc[0] / sc[1]);
        if (!a->quiet) progress_update(&pb, R.st.global_step);
        if (R.st.global_step % a->logging_steps == 0 || last) {
            if (write_line(&R, &line, &B, &u, lr, t_gen, now_seconds() - t0, err) || sbuf_check(&line, err)) goto done;
            if (metrics) {
                fprintf(metrics, "%s\n", line.data);
                fflush(metrics);
            }
            if (checkpoint_log(&R.st, line.data)) { tm_fail(err, "out of memory"); goto done; }
            if (a->quiet || !pb.tty) fprintf(stderr, "%s\n", line.data);
        }
        if (a->save_steps > 0 && R.st.global_step % a->save_steps == 0 && !last) {
            // the critic first: the policy's checkpoint-N commits the pair
            if (critic_save_checkpoint(&R, err) || trainer_save(&R.t, a->output_dir, &R.st, a->save_total_limit, err)) goto done;
        }
    }
    if (!a->quiet) progress_finish(&pb);
    if (rank == 0) {
        char path[4200];
        if (model_save(&R.m, a->output_dir, 0, err)) goto done;
        if (R.separate) {
            if (model_save(&R.vm, io_join(path, sizeof path, a->output_dir, "value_model"), 0, err)) goto done;
        } else if (head_save(&R, io_join(path, sizeof path, a->output_dir, "value_head.safetensors"), 0, err)) goto done;
    }
    if (rank == 0 && checkpoint_write_trainer_state(a->output_dir, &R.st, err)) goto done;
    fprintf(stderr, "temper: trained %lld PPO steps; model saved to %s (metrics: %s)\n", (long long)R.st.global_step, a->output_dir, metrics_path);
    trainer_profile_report(&R.t, stderr);
    rc = 0;
done:
    if (metrics) fclose(metrics);
    sbuf_free(&line);
    rollout_batch_free(&B);
    cleanup(&R);
    return rc;
}
