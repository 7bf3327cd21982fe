// Tests for rollout/ and the KV-cache decode: sampler filters, pass@k and maj@k, the
// KV path's log-probs against model_forward (the trainer's), greedy = argmax of the
// full forward at every step, seeded reproducibility across runs, thread counts and
// batch sizes, and tool-integrated rollouts driven by a scripted fake model.
#include <math.h>
#include <omp.h>
#include <string.h>
#include "model/batch.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "rollout/metrics.h"
#include "rollout/rollout.h"
#include "test.h"
#include "tok_fixture.h"
#include "train/grpo_trainer.h"

// ---------------------------------------------------------------- metrics

static double binom(int n, int k) {
    if (k < 0 || k > n) return 0;
    double r = 1;
    for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
    return r;
}

static int streq(const char *a, const char *b, void *ud) { (void)ud; return !strcmp(a, b); }

static void test_metrics(void) {
    int cases[][3] = {{1, 1, 1}, {1, 0, 1}, {10, 3, 1}, {10, 3, 2}, {10, 3, 5}, {10, 3, 8}, {10, 0, 4}, {16, 1, 16},
                      {16, 15, 2}, {100, 7, 10}, {5, 2, 4}};
    int ok = 1;
    double worst = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = cases[i][0], c = cases[i][1], k = cases[i][2];
        double ref = 1.0 - binom(n - c, k) / binom(n, k), got = pass_at_k(n, c, k);
        if (fabs(ref - got) > worst) worst = fabs(ref - got);
        ok &= fabs(ref - got) < 1e-12;
    }
    CHECK(ok, "pass@k == 1 - C(n-c,k)/C(n,k) on %zu hand cases (max diff %.1e)", sizeof cases / sizeof cases[0], worst);
    CHECK(fabs(pass_at_k(10, 3, 1) - 0.3) < 1e-15, "pass@1 is the fraction correct (3/10)");
    CHECK(fabs(pass_at_k(4, 2, 2) - (1.0 - 1.0 / 6.0)) < 1e-15, "pass@2 with 2 of 4 correct = 5/6");
    CHECK(pass_at_k(8, 6, 3) == 1.0, "pass@k = 1 when fewer than k are wrong");

    const char *a1[] = {"3", "5", "5", "3", NULL};
    CHECK(majority_vote(a1, 5, streq, NULL) == 0, "maj: a 2-2 tie goes to the answer seen first (3)");
    const char *a2[] = {"5", "3", "3", "5", "3"};
    CHECK(majority_vote(a2, 5, streq, NULL) == 1, "maj: 3 beats 5 three votes to two");
    CHECK(majority_vote(a2, 4, streq, NULL) == 0, "maj@4 of the same list: 2-2 tie, first seen (5) wins");
    const char *a3[] = {NULL, NULL, "7"};
    CHECK(majority_vote(a3, 3, streq, NULL) == 2, "maj: missing answers do not vote");
    const char *a4[] = {NULL, NULL};
    CHECK(majority_vote(a4, 2, streq, NULL) == -1, "maj: no answer at all gives -1");
}

// ---------------------------------------------------------------- sampling filters

static void test_sampling(void) {
    float z[5] = {0, 0, 0, 0, 0};
    double pr[5] = {0.5, 0.3, 0.15, 0.05, 0.0};
    for (int j = 0; j < 4; j++) z[j] = (float)log(pr[j]);
    z[4] = -INFINITY;
    sample_scratch ss;
    sample_scratch_init(&ss, 5);
    rng r;
    rng_seed(&r, 1);
    struct { sample_params sp; double expect[5]; const char *name; } cases[] = {
        {{1.0, 1.0, 0, 0.0}, {0.5, 0.3, 0.15, 0.05, 0}, "plain"},
        {{1.0, 1.0, 2, 0.0}, {0.625, 0.375, 0, 0, 0}, "top-k 2"},
        {{1.0, 0.7, 0, 0.0}, {0.625, 0.375, 0, 0, 0}, "top-p 0.7 keeps the smallest prefix with mass >= 0.7"},
        {{1.0, 0.9, 3, 0.0}, {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0, 0}, "top-p 0.9 over the top-3 renormalized (0.8/0.95 < 0.9)"},
        {{1.0, 1.0, 0, 0.25}, {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0, 0}, "min-p 0.25 keeps p >= 0.125"}, {{1.0, 1.0, 0, 0.5}, {0.625, 0.375, 0, 0, 0}, "min-p 0.5 keeps p >= 0.25"},
        {{0.5, 1.0, 0, 0.0}, {0.25 / 0.3650, 0.09 / 0.3650, 0.0225 / 0.3650, 0.0025 / 0.3650, 0}, "temperature 0.5 squares the probabilities"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int cnt[5] = {0};
        const int N = 40000;
        for (int i = 0; i < N; i++) cnt[sample_token(z, 5, &cases[c].sp, &r, &ss, NULL)]++;
        double worst = 0;
        for (int j = 0; j < 5; j++) {
            double d = fabs(cnt[j] / (double)N - cases[c].expect[j]);
            if (d > worst) worst = d;
            if (cases[c].expect[j] == 0 && cnt[j]) worst = 1;
        }
        CHECK(worst < 0.012, "sampling %s: frequencies match (max |diff| %.4f over %d draws)", cases[c].name, worst, N);
    }
    sample_params g = {0.0, 1.0, 0, 0.0};
    float lp;
    float zt[4] = {1.0f, 3.0f, 3.0f, -2.0f};
    CHECK(sample_token(zt, 4, &g, &r, &ss, &lp) == 1, "greedy: argmax, lowest id among ties");
    double lse = log(exp(1.0) + 2 * exp(3.0) + exp(-2.0));
    CHECK(fabs(lp - (3.0 - lse)) < 1e-6, "the recorded log-prob is log softmax at temperature 1 (%.6f)", lp);
    // at temperature T the recorded log-prob is log softmax(z / T) over the whole vocabulary
    // (what the trainer recomputes at T; TRL's logits / T), whatever top-k / top-p / min-p kept
    sample_params hot = {0.3, 0.5, 1, 0.0};
    int tok = sample_token(zt, 4, &hot, &r, &ss, &lp);
    double lse3 = log(exp(1.0 / 0.3) + 2 * exp(3.0 / 0.3) + exp(-2.0 / 0.3));
    CHECK(tok == 1 && fabs(lp - (3.0 / 0.3 - lse3)) < 1e-6,
          "temperature 0.3: the recorded log-prob is log softmax(z / 0.3) (%.6f vs %.6f), top-k 1 / top-p 0.5 do not change it", lp,
          3.0 / 0.3 - lse3);
    sample_params warm = {0.7, 1.0, 0, 0.0};
    tok = sample_token(zt, 4, &warm, &r, &ss, &lp);
    double lse7 = log(exp(1.0 / 0.7) + 2 * exp(3.0 / 0.7) + exp(-2.0 / 0.7));
    CHECK(fabs(lp - (zt[tok] / 0.7 - lse7)) < 1e-6 && fabs(lp - (zt[tok] - lse)) > 1e-2,
          "temperature 0.7: log softmax(z / 0.7)[%d] = %.6f, not the temperature-1 %.6f", tok, lp, zt[tok] - lse);
    sample_scratch_free(&ss);
}

// ---------------------------------------------------------------- the model path

static void make_model(model *m, model_arch a, int vocab, uint64_t seed) {
    model_config c;
    tm_error err;
    config_preset(&c, a, "tiny", &err);
    c.layers = 2; c.hidden = 64; c.heads = 4; c.kv_heads = 2; c.head_dim = 16; c.ffn = 96; c.vocab = vocab;
    model_create(m, &c, &err);
    model_init_random(m, seed);
    // larger weights than the 0.02 init, so that distributions are peaked and differences show
    for (int i = 0; i < m->nparams; i++)
        if (!strstr(m->params[i].name, "norm"))
            for (size_t j = 0; j < m->params[i].numel; j++) m->w[m->params[i].offset + j] *= 5.0f;
}

static void make_prompts(int np, int V, int **pp, int *pl, uint64_t seed) {
    rng r;
    rng_seed(&r, seed);
    for (int g = 0; g < np; g++) {
        pl[g] = 3 + (int)rng_below(&r, 20);
        pp[g] = malloc(sizeof(int) * (size_t)pl[g]);
        for (int i = 0; i < pl[g]; i++) pp[g][i] = (int)rng_below(&r, (uint64_t)V);
    }
}

static int run_model(model *m, int *const *pp, const int *pl, int np, rollout_opts *o, rollout_traj *out) {
    rollout_backend be;
    rollout_model_ctx ctx;
    rollout_backend_model(&be, &ctx, m);
    memset(out, 0, sizeof *out * (size_t)np * o->n);
    tm_error err;
    int rc = rollout_run(&be, NULL, (const int *const *)pp, pl, np, o, out, &err);
    if (rc) printf("# rollout_run: %s\n", err.msg);
    return rc;
}

// Full forward over prompt + trajectory; logp at the trajectory's positions.
static void full_logp_temp(model *m, const int *prompt, int plen, const rollout_traj *t, const int *target_override,
                           double T, float *out) {
    int L = plen + t->len;
    int *ids = malloc(sizeof(int) * (size_t)L);
    memcpy(ids, prompt, sizeof(int) * (size_t)plen);
    memcpy(ids + plen, t->ids, sizeof(int) * (size_t)t->len);
    int *tg = malloc(sizeof(int) * (size_t)L), *pos = malloc(sizeof(int) * (size_t)L), cu[2] = {0, L};
    for (int i = 0; i < L; i++) {
        pos[i] = i;
        tg[i] = -1;
        if (i + 1 >= plen && i + 1 < L) tg[i] = target_override ? *target_override : ids[i + 1];
    }
    float *lp = malloc(sizeof(float) * (size_t)L);
    model_batch b = {.n_tokens = L, .n_seqs = 1, .tokens = ids, .targets = tg, .pos = pos, .cu_seqlens = cu};
    tm_error err;
    if (model_forward_temp(m, &b, T, lp, NULL, &err)) printf("# forward: %s\n", err.msg);
    for (int j = 0; j < t->len; j++) out[j] = lp[plen - 1 + j];
    free(ids); free(tg); free(pos); free(lp);
}
static void full_logp(model *m, const int *prompt, int plen, const rollout_traj *t, const int *target_override, float *out) {
    full_logp_temp(m, prompt, plen, t, target_override, 1.0, out);
}

static int tokens_equal(const rollout_traj *a, const rollout_traj *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i].len != b[i].len || memcmp(a[i].ids, b[i].ids, sizeof(int) * (size_t)a[i].len)) return 0;
    return 1;
}

static double logp_maxdiff(const rollout_traj *a, const rollout_traj *b, int n) {
    double w = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < a[i].len && j < b[i].len; j++) w = fmax(w, fabs(a[i].logp[j] - b[i].logp[j]));
    return w;
}

static void test_model_path(model_arch arch, const char *name) {
    const int V = 61, NP = 5, NS = 3;
    model m;
    make_model(&m, arch, V, 11);
    int *pp[NP], pl[NP];
    make_prompts(NP, V, pp, pl, 5);
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = NS;
    o.batch = 4;  // fewer slots than trajectories: groups span admissions, slots are reused
    o.max_new_tokens = 40;
    o.prefill_chunk = 7;  // prompts are prefilled over several steps, next to decoding rows
    o.seed = 1234;
    int stop = 5;
    o.stop_ids = &stop;
    o.nstop_ids = 1;
    rollout_traj *a = calloc(NP * NS, sizeof *a), *b = calloc(NP * NS, sizeof *b);
    CHECK(run_model(&m, pp, pl, NP, &o, a) == 0, "%s: rollout of %d prompts x %d samples, batch %d", name, NP, NS, o.batch);

    // KV-cache log-probs == the trainer's forward
    double worst = 0;
    int ntok = 0, stopped = 0;
    for (int i = 0; i < NP * NS; i++) {
        float *lp = malloc(sizeof(float) * (size_t)(a[i].len + 1));
        full_logp(&m, pp[a[i].group], pl[a[i].group], &a[i], NULL, lp);
        for (int j = 0; j < a[i].len; j++) worst = fmax(worst, fabs(lp[j] - a[i].logp[j]));
        ntok += a[i].len;
        stopped += a[i].finish == FINISH_STOP;
        free(lp);
    }
    printf("# %s: KV-path vs full-forward log-probs: max |diff| %.3e over %d tokens\n", name, worst, ntok);
    CHECK(worst < 1e-5, "%s: KV-cache log-probs == model_forward log-probs (max |diff| %.2e < 1e-5, %d tokens, fp32)",
          name, worst, ntok);
    // at temperature 0.7 with top-p 0.9: the sampler records log softmax(z / 0.7), which the
    // trainer's forward at 0.7 recomputes (the filters are in neither)
    rollout_traj *h = calloc(NP * NS, sizeof *h);
    rollout_opts oh = o;
    oh.sp.temperature = 0.7;
    oh.sp.top_p = 0.9;
    double worst_t = 0, worst_t1 = 0;
    CHECK(run_model(&m, pp, pl, NP, &oh, h) == 0, "%s: rollout at temperature 0.7, top-p 0.9", name);
    for (int i = 0; i < NP * NS; i++) {
        float *lp = malloc(sizeof(float) * (size_t)(h[i].len + 1)), *lp1 = malloc(sizeof(float) * (size_t)(h[i].len + 1));
        full_logp_temp(&m, pp[h[i].group], pl[h[i].group], &h[i], NULL, 0.7, lp);
        full_logp(&m, pp[h[i].group], pl[h[i].group], &h[i], NULL, lp1);
        for (int j = 0; j < h[i].len; j++) {
            worst_t = fmax(worst_t, fabs(lp[j] - h[i].logp[j]));
            worst_t1 = fmax(worst_t1, fabs(lp1[j] - h[i].logp[j]));
        }
        free(lp); free(lp1);
        rollout_traj_free(&h[i]);
    }
    free(h);
    printf("# %s: T = 0.7: KV-path vs full-forward-at-0.7 log-probs: max |diff| %.3e (vs the T = 1 forward: %.3e)\n", name, worst_t,
           worst_t1);
    CHECK(worst_t < 1e-5 && worst_t1 > 1e-3,
          "%s: T = 0.7: KV-cache log-probs == model_forward_temp(0.7) (max |diff| %.2e < 1e-5; %.2e from the T = 1 ones)", name, worst_t,
          worst_t1);
    int lens_ok = 1;
    for (int i = 0; i < NP * NS; i++) {
        lens_ok &= a[i].len >= 1 && a[i].len <= o.max_new_tokens;
        lens_ok &= (a[i].finish == FINISH_STOP) == (a[i].ids[a[i].len - 1] == stop);
        lens_ok &= a[i].finish == FINISH_STOP || a[i].len == o.max_new_tokens;
    }
    CHECK(lens_ok, "%s: every trajectory ends at the stop token (%d of %d) or at max_new_tokens", name, stopped, NP * NS);

    // seeded: same run again, then 1 thread, then another batch size
    CHECK(run_model(&m, pp, pl, NP, &o, b) == 0 && tokens_equal(a, b, NP * NS) && logp_maxdiff(a, b, NP * NS) == 0,
          "%s: same seed, same tokens and log-probs (bit for bit)", name);
    for (int i = 0; i < NP * NS; i++) rollout_traj_free(&b[i]);
    // 1 thread against 3, with every decode step on all threads (by default a step
    // this small runs on one thread whatever the count, and could not tell them apart)
    int nt = omp_get_max_threads();
    model_decode_set_min_flop_per_thread(0);
    omp_set_num_threads(3);
    int rc = run_model(&m, pp, pl, NP, &o, b);
    for (int i = 0; i < NP * NS && !rc; i++) rollout_traj_free(&a[i]);
    omp_set_num_threads(1);
    if (!rc) rc = run_model(&m, pp, pl, NP, &o, a);
    omp_set_num_threads(nt);
    model_decode_set_min_flop_per_thread(2.56e8);
    CHECK(rc == 0 && tokens_equal(a, b, NP * NS) && logp_maxdiff(a, b, NP * NS) == 0,
          "%s: same tokens and log-probs, bit for bit, with 1 thread as with 3, decode threaded (log-probs differ by %.1e)",
          name, logp_maxdiff(a, b, NP * NS));
    for (int i = 0; i < NP * NS; i++) rollout_traj_free(&b[i]);
    o.batch = 15;
    o.prefill_chunk = 64;
    rc = run_model(&m, pp, pl, NP, &o, b);
    CHECK(rc == 0 && tokens_equal(a, b, NP * NS), "%s: same tokens with batch 15 as with batch 4 (per-sample RNG streams)", name);
    for (int i = 0; i < NP * NS; i++) rollout_traj_free(&b[i]);
    o.seed = 99;
    rc = run_model(&m, pp, pl, NP, &o, b);
    CHECK(rc == 0 && !tokens_equal(a, b, NP * NS), "%s: another seed gives other samples", name);
    int differ = 0;
    for (int g = 0; g < NP; g++)
        for (int s = 1; s < NS; s++) differ |= a[g * NS + s].len != a[g * NS].len || memcmp(a[g * NS + s].ids, a[g * NS].ids, sizeof(int) * (size_t)a[g * NS].len);
    CHECK(differ, "%s: the n samples of a prompt differ from each other", name);
    for (int i = 0; i < NP * NS; i++) { rollout_traj_free(&a[i]); rollout_traj_free(&b[i]); }

    // greedy == argmax of the full forward at every step (one forward per candidate token)
    o.sp.temperature = 0;
    o.batch = 6;
    o.n = 1;
    o.max_new_tokens = 16;
    o.nstop_ids = 0;
    const int NG = 3;  // prompts checked (each costs V full forwards)
    run_model(&m, pp, pl, NG, &o, a);
    int steps = 0, agree = 0;
    double margin_min = INFINITY;
    float **cand = malloc(sizeof(float *) * (size_t)NG);
    for (int i = 0; i < NG; i++) cand[i] = malloc(sizeof(float) * (size_t)V * a[i].len);
    // V forwards of a tiny model: one thread (two threads' barriers dominate such small steps)
    int nth = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int j = 0; j < V; j++) {
        float *lp = malloc(sizeof(float) * 64);
        for (int i = 0; i < NG; i++) {
            full_logp(&m, pp[i], pl[i], &a[i], &j, lp);
            for (int t = 0; t < a[i].len; t++) cand[i][(size_t)t * V + j] = lp[t];
        }
        free(lp);
    }
    omp_set_num_threads(nth);
    for (int i = 0; i < NG; i++)
        for (int t = 0; t < a[i].len; t++) {
            const float *c = cand[i] + (size_t)t * V;
            int am = 0;
            for (int j = 1; j < V; j++) if (c[j] > c[am]) am = j;
            float second = -INFINITY;
            for (int j = 0; j < V; j++) if (j != am && c[j] > second) second = c[j];
            margin_min = fmin(margin_min, c[am] - second);
            steps++;
            agree += am == a[i].ids[t];
        }
    for (int i = 0; i < NG; i++) free(cand[i]);
    free(cand);
    CHECK(agree == steps, "%s: greedy token == argmax of the full forward at %d of %d steps (smallest top-2 gap %.2e)", name,
          agree, steps, margin_min);
    for (int i = 0; i < NG; i++) rollout_traj_free(&a[i]);
    free(a);
    free(b);
    for (int g = 0; g < NP; g++) free(pp[g]);
    model_free(&m);
}

// ---------------------------------------------------------------- scripted model + tools

typedef struct script_model {
    int V, ntraj, n;
    int **tok;   // per trajectory: the token stream it "generates"
    int *len, *cur;
    int overrun;
} script_model;

static int sm_reserve(void *ctx, int nslots, const int *caps, int max_rows, int max_logit_rows, tm_error *err) { return 0; }
static void sm_release(void *ctx) {}
static int sm_forward(void *ctx, const kv_batch *b, const int *tag, float *logits, tm_error *err) {
    script_model *s = ctx;
    for (int i = 0; i < b->n; i++) {
        int r = b->logit_row[i];
        if (r < 0) continue;
        int t = tag[r] >= 0 ? tag[r] : (-tag[r] - 1) * s->n;
        float *z = logits + (size_t)r * s->V;
        for (int j = 0; j < s->V; j++) z[j] = -10.0f;
        int k = s->cur[t]++;
        if (k >= s->len[t]) { if (!s->overrun++) printf("# script %d asked for token %d of %d\n", t, k, s->len[t]); z[0] = 10.0f; }
        else z[s->tok[t][k]] = 10.0f;
    }
    return 0;
}

typedef struct piece { const char *text; int mask; } piece;

static void enc(tok_tokenizer *t, const char *s, tok_ids *out) {
    tm_error err;
    tok_encode(t, s, strlen(s), 0, out, &err);
}

// Script = the model pieces (mask 1) of the expected trajectory; expected ids = all pieces.
static int check_traj(tok_tokenizer *t, const rollout_traj *tr, const piece *pc, int np, const char *name) {
    tok_ids ids = {0};
    sbuf mask;
    sbuf_init(&mask);
    for (int i = 0; i < np; i++) {
        size_t before = ids.n;
        enc(t, pc[i].text, &ids);
        for (size_t k = before; k < ids.n; k++) sbuf_put(&mask, pc[i].mask ? "\1" : "\0", 1);
    }
    int ok = tr->len == (int)ids.n && !memcmp(tr->ids, ids.v, sizeof(int) * ids.n) && !memcmp(tr->mask, mask.data, ids.n);
    if (!ok) {
        sbuf got;
        sbuf_init(&got);
        tm_error err;
        tok_decode(t, tr->ids, (size_t)tr->len, 0, &got, &err);
        printf("# %s: got %d tokens: %s\n", name, tr->len, got.data ? got.data : "");
        sbuf_free(&got);
    }
    for (int k = 0; ok && k < tr->len; k++) ok = tr->mask[k] ? tr->logp[k] > -1e-3f : tr->logp[k] == 0.0f;
    tok_ids_free(&ids);
    sbuf_free(&mask);
    return ok;
}

static void test_tools(void) {
    const char *dir = fixture_dir();
    tm_error err;
    tok_tokenizer *t = tok_load(dir, &err);
    if (!t) { CHECK(0, "fixture tokenizer: %s", err.msg); return; }
    tok_chat chat;
    tok_chat_for(t, NULL, &chat, &err);
    char *pre, *suf;
    CHECK(rollout_obs_wrapper(&chat, &pre, &suf, &err) == 0 && !strcmp(pre, "<|im_end|>\n<|im_start|>user\n") &&
              !strcmp(suf, "<|im_end|>\n<|im_start|>assistant\n"),
          "observation wrapper from the ChatML template: close the turn, user turn, reopen the assistant turn");
    int eos = tok_token_id(t, "<|im_end|>");
    int V = tok_vocab_size(t);
    // the expected trajectories, piece by piece (1 = the scripted model writes it)
    #define OBS(x) "<|im_end|>\n<|im_start|>user\n```output\n" x "\n```<|im_end|>\n<|im_start|>assistant\n"
    piece A[] = {{"I will compute.\n```python\nx = 6*7\nprint(x)\n```", 1}, {OBS("42"), 0},
                 {"Keep the state.\n```python\nprint(x + 1)\n```", 1}, {OBS("43"), 0},
                 {"The answer is \\boxed{43}.<|im_end|>", 1}};
    piece C[] = {{"```python\ny = 5\nwhile True: pass\n```", 1}, {OBS("Timeout Error"), 0}, {"```python\nprint(y)\n```", 1},
                 {OBS("NameError: name 'y' is not defined"), 0}, {"Gave up.<|im_end|>", 1}};
    piece D[] = {{"no tool here, then STOP", 1}};
    piece E[] = {{"\\boxed{1} then\n```python\nprint(2)\n```\nmore<|im_end|>", 1}};
    piece F[] = {{"abcdefghij", 1}};
    piece G[] = {{"I think\n```output", 1}};
    const char *scripts[][3] = {
        {"I will compute.\n```python\nx = 6*7\nprint(x)\n```", "Keep the state.\n```python\nprint(x + 1)\n```", "The answer is \\boxed{43}.<|im_end|>"},
        {"```python\nprint(1)\n```", "```python\nprint(2)\n```", "```python\nprint(3)\n```"},
        {"```python\ny = 5\nwhile True: pass\n```", "```python\nprint(y)\n```", "Gave up.<|im_end|>"},
        {"no tool here, then STOP and more", "", ""},
        {"\\boxed{1} then\n```python\nprint(2)\n```\nmore<|im_end|>", "", ""},
        {"abcdefghijklmnopqrstuvwxyz<|im_end|>", "", ""},
        {"I think\n```output\nfake", "", ""},
    };
    const int NT = 7;
    script_model sm = {V, NT, 1, calloc(NT, sizeof(int *)), calloc(NT, sizeof(int)), calloc(NT, sizeof(int)), 0};
    for (int i = 0; i < NT; i++) {
        tok_ids ids = {0};
        for (int k = 0; k < 3; k++) enc(t, scripts[i][k], &ids);
        sm.tok[i] = ids.v;
        sm.len[i] = (int)ids.n;
    }
    rollout_backend be = {&sm, V, sm_reserve, sm_forward, sm_release, NULL, NULL, NULL, NULL, 0};
    tok_ids prompt = {0};
    enc(t, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n", &prompt);
    const int *pp[7];
    int pl[7];
    for (int i = 0; i < NT; i++) pp[i] = prompt.v, pl[i] = (int)prompt.n;
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = 1;
    o.batch = 3;
    o.max_new_tokens = 400;
    o.sp.temperature = 0;
    o.tool = ROLLOUT_TOOL_PYTHON;
    o.max_turns = 3;  // A and C make 2 calls and finish on their own; B calls on and hits the limit at its 3rd
    o.stop_ids = &eos;
    o.nstop_ids = 1;
    const char *stops[] = {"STOP", "```output"};
    o.stop_strs = stops;
    o.nstop_strs = 2;
    o.obs_prefix = pre;
    o.obs_suffix = suf;
    o.py.timeout_s = 1.0;
    rollout_traj out[7];
    memset(out, 0, sizeof out);
    piece B3[] = {{"```python\nprint(1)\n```", 1}, {OBS("1"), 0}, {"```python\nprint(2)\n```", 1}, {OBS("2"), 0},
                  {"```python\nprint(3)\n```", 1}, {OBS("3\nReach max function call limit."), 0}};
    int rc = rollout_run(&be, t, pp, pl, NT, &o, out, &err);
    CHECK(rc == 0, "scripted tool rollout runs (%s)", rc ? err.msg : "ok");
    if (!rc) {
        CHECK(check_traj(t, &out[0], A, 5, "A") && out[0].ncalls == 2 && out[0].finish == FINISH_STOP &&
                  !strcmp(out[0].calls[0].output, "42") && !strcmp(out[0].calls[1].output, "43") &&
                  !strcmp(out[0].calls[0].code, "x = 6*7\nprint(x)"),
              "python: stop at the closed block, run, append the masked observation, continue; state kept across turns (x)");
        CHECK(out[0].mask[out[0].calls[0].start] == 0 && out[0].mask[out[0].calls[0].start - 1] == 1 &&
                  out[0].mask[out[0].calls[0].start + out[0].calls[0].len] == 1,
              "python: the call's token span is exactly the masked observation");
        // what GRPO trains on (grpo_traj_mask): 0 on every tool token, 1 and the sampler's
        // log-prob on every model token; a truncated completion with --mask-truncated-completions: all 0
        for (int k = 0; k < 2; k++) {
            const rollout_traj *tr = &out[k];
            uint8_t *gm = malloc((size_t)tr->len);
            float *gs = malloc(sizeof(float) * (size_t)tr->len);
            grpo_traj_mask(tr, 1, gm, gs);
            int ok = tr->ncalls > 0, zeros = 0, tool_tokens = 0;
            for (int c = 0; c < tr->ncalls; c++) tool_tokens += tr->calls[c].len;
            for (int i = 0; i < tr->len; i++) {
                int in_call = 0;
                for (int c = 0; c < tr->ncalls; c++) in_call |= i >= tr->calls[c].start && i < tr->calls[c].start + tr->calls[c].len;
                ok &= gm[i] == !in_call && gs[i] == (in_call ? 0.0f : tr->logp[i]);
                zeros += !gm[i];
            }
            rollout_traj cut = *tr;
            cut.finish = FINISH_LENGTH;
            grpo_traj_mask(&cut, 1, gm, gs);
            int all0 = 1;
            for (int i = 0; i < tr->len; i++) all0 &= gm[i] == 0;
            grpo_traj_mask(&cut, 0, gm, gs);
            int kept = 0;
            for (int i = 0; i < tr->len; i++) kept += gm[i];
            CHECK(ok && zeros == tool_tokens && tool_tokens > 0 && all0 && kept == tr->len - tool_tokens,
                  "grpo's training mask of trajectory %c: 0 on its %d tool-observation tokens (%d calls), 1 with the sampler's log-prob "
                  "on the %d model tokens; truncated: all 0 with mask_truncated, else the same", 'A' + k, tool_tokens, tr->ncalls,
                  tr->len - tool_tokens);
            free(gm); free(gs);
        }
        CHECK(check_traj(t, &out[1], B3, 6, "B") && out[1].ncalls == 3 && out[1].finish == FINISH_MAX_TURNS && sm.cur[1] == sm.len[1],
              "python: the 3rd call of max-turns 3 gets \"Reach max function call limit.\" and ends the trajectory");
        CHECK(check_traj(t, &out[2], C, 5, "C") && out[2].calls[0].status == PYSB_TIMEOUT && out[2].finish == FINISH_STOP,
              "python: a timeout observes \"Timeout Error\" and restarts the kernel (y is gone next turn)");
        CHECK(check_traj(t, &out[3], D, 1, "D") && out[3].finish == FINISH_STOP_STRING && out[3].ncalls == 0,
              "stop string: generation ends at the token completing \"STOP\"");
        CHECK(check_traj(t, &out[4], E, 1, "E") && out[4].ncalls == 0 && out[4].finish == FINISH_STOP,
              "python: a block in a turn that already has \\boxed is not run (paper's rule)");
        CHECK(check_traj(t, &out[6], G, 1, "G") && out[6].finish == FINISH_STOP_STRING,
              "python: \"```output\" written by the model ends its turn (stop string)");
    }
    for (int i = 0; i < NT; i++) rollout_traj_free(&out[i]);
    (void)F;

    // max_new_tokens (trajectory 0 of a one-prompt run reads script 0: point it at F's)
    o.max_new_tokens = 10;
    o.tool = ROLLOUT_TOOL_NONE;
    int *save = sm.tok[0], savel = sm.len[0];
    sm.tok[0] = sm.tok[5];
    sm.len[0] = sm.len[5];
    memset(sm.cur, 0, sizeof(int) * NT);
    rc = rollout_run(&be, t, pp, pl, 1, &o, out, &err);
    CHECK(rc == 0 && check_traj(t, &out[0], F, 1, "F") && out[0].finish == FINISH_LENGTH,
          "max_new_tokens: 10 tokens, finish \"length\"");
    rollout_traj_free(&out[0]);
    sm.tok[0] = save;
    sm.len[0] = savel;

    // calculator: "<<48/2=" gets "24>>" appended (masked); a failing expression gets nothing
    const char *cs[] = {"She has <<48/2=", " left, <<2/0=", "1>> so #### 24<|im_end|>"};
    tok_ids ids = {0};
    for (int k = 0; k < 3; k++) enc(t, cs[k], &ids);
    free(sm.tok[0]);
    sm.tok[0] = ids.v;
    sm.len[0] = (int)ids.n;
    memset(sm.cur, 0, sizeof(int) * NT);
    o.tool = ROLLOUT_TOOL_CALC;
    o.max_new_tokens = 200;
    rc = rollout_run(&be, t, pp, pl, 1, &o, out, &err);
    piece K[] = {{"She has <<48/2=", 1}, {"24>>", 0}, {" left, <<2/0=", 1}, {"1>> so #### 24<|im_end|>", 1}};
    CHECK(rc == 0 && check_traj(t, &out[0], K, 4, "K") && out[0].ncalls == 2 && !strcmp(out[0].calls[0].code, "48/2") &&
              out[0].calls[1].status == 1 && out[0].calls[1].len == 0,
          "calculator: <<48/2= gets 24>> (masked), <<2/0= gets nothing and the model goes on");
    rollout_traj_free(&out[0]);
    CHECK(!sm.overrun, "the scripted model was never asked past its script");

    for (int i = 0; i < NT; i++) free(sm.tok[i]);
    free(sm.tok); free(sm.len); free(sm.cur);
    tok_ids_free(&prompt);
    free(pre);
    free(suf);
    tok_free(t);
    fixture_cleanup(dir);
}

int main(void) {
    test_metrics();
    test_sampling();
    test_model_path(ARCH_LLAMA, "llama");
    test_model_path(ARCH_QWEN3, "qwen3");
    test_model_path(ARCH_QWEN2, "qwen2");
    test_tools();
    return test_done();
}
