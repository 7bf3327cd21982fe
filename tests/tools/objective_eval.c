// objective_eval: the C side of the objectives oracle test (tests/oracle/test_objectives.py).
// Reads a JSON request (one object, or an array of them) on stdin, runs the named objective
// and prints one JSON response per request, in order, as a JSON array:
//   {"loss": L, "dlogp": [...], "metrics": {TRL name: value}}   or   {"error": "message"}
// Request fields: "objective" (sft | dpo | kto | kto_z0 | rm), token arrays "logp",
// "ref_logp", "mask", "weight" (absent/null = NULL), "spans" [s0,e0,s1,e1,...]; dpo: "pairs",
// "beta", "loss_weights" {name: w}, "label_smoothing", "length_normalize", "rpo_alpha",
// "form" (sequence|position), "norm" {"pairs", "chosen_tokens", "positions"}; kto: "labels",
// "z0", "desirable_weight", "undesirable_weight", "loss_type", "norm"; sft: "per_sequence",
// "norm"; rm: "r_chosen", "r_rejected", "margin", "center_coef", "norm";
// grpo: "adv", "old_logp", "sampler_logp", "entropy" (token arrays), "loss_type", "epsilon",
// "epsilon_high", "delta", "beta", "kl_estimator", "kl_bias_correction",
// "norm" {"sequences", "tokens", "max_completion_length"};
// grpo_advantages: "rewards" (null = unscorable), "num_generations", "scale_rewards", "std_eps";
// answers {"advantages": [...], "group_all_equal": [...], "metrics": {...}};
// rehearsal: "divergence", "kl_estimator", "alpha", "coef", "norm" (tokens).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "objectives/divergence.h"
#include "objectives/dpo.h"
#include "objectives/grpo.h"
#include "objectives/kto.h"
#include "objectives/rm.h"
#include "objectives/sft.h"

static float *get_floats(const json *o, const char *key, int *n) {
    const json *a = json_get(o, key);
    if (!a || a->type != JSON_ARRAY) { if (n) *n = 0; return NULL; }
    float *v = malloc(sizeof(float) * (size_t)(a->n ? a->n : 1));
    for (int i = 0; i < a->n; i++) v[i] = (float)a->items[i].num;
    if (n) *n = a->n;
    return v;
}

static int *get_ints(const json *o, const char *key, int *n) {
    const json *a = json_get(o, key);
    if (!a || a->type != JSON_ARRAY) { if (n) *n = 0; return NULL; }
    int *v = malloc(sizeof(int) * (size_t)(a->n ? a->n : 1));
    for (int i = 0; i < a->n; i++) v[i] = (int)a->items[i].num;
    if (n) *n = a->n;
    return v;
}

static uint8_t *get_bytes(const json *o, const char *key) {
    const json *a = json_get(o, key);
    if (!a || a->type != JSON_ARRAY) return NULL;
    uint8_t *v = malloc((size_t)(a->n ? a->n : 1));
    for (int i = 0; i < a->n; i++) v[i] = a->items[i].type == JSON_BOOL ? (uint8_t)a->items[i].boolean : a->items[i].num != 0;
    return v;
}

static void put_array(sbuf *out, const char *key, const float *v, int n) {
    sbuf_printf(out, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_printf(out, "%s%.9g", i ? ", " : "", (double)v[i]);
    sbuf_puts(out, "]");
}

static void put_metric(sbuf *out, int *first, const char *name, double v) {
    sbuf_printf(out, "%s\"%s\": %.17g", *first ? "" : ", ", name, v);
    *first = 0;
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

// grpo: the clipped surrogate with its KL term and metrics.
static int run_grpo(const json *rq, const seq_batch *b, double *loss, float *dlogp, sbuf *met, int *first, tm_error *err) {
    grpo_hparams h = grpo_hparams_default();
    int lt = grpo_loss_type_parse(json_get_str(rq, "loss_type", "dapo"));
    int ke = kl_estimator_parse(json_get_str(rq, "kl_estimator", "k3"));
    if (lt < 0 || ke < 0) return tm_fail(err, "unknown loss type or KL estimator");
    h.loss_type = (grpo_loss_type)lt;
    h.estimator = (kl_estimator)ke;
    h.epsilon = json_get_num(rq, "epsilon", h.epsilon);
    h.epsilon_high = json_get_num(rq, "epsilon_high", h.epsilon);
    h.delta = json_get_num(rq, "delta", 0);
    h.beta = json_get_num(rq, "beta", 0);
    h.kl_bias_correction = json_get_bool(rq, "kl_bias_correction", 0);
    const json *nj = json_get(rq, "norm");
    grpo_norm nm = {json_get_num(nj, "sequences", 0), json_get_num(nj, "tokens", 0), json_get_num(nj, "max_completion_length", 0)};
    grpo_inputs in = {get_floats(rq, "adv", NULL), get_floats(rq, "old_logp", NULL), get_floats(rq, "sampler_logp", NULL),
                      get_floats(rq, "entropy", NULL)};
    grpo_metrics m;
    int rc = grpo_loss(b, &in, &h, &nm, loss, dlogp, &m, err);
    if (!rc) {
        put_metric(met, first, "num_tokens", m.tokens);
        put_metric(met, first, "clip_ratio/low_mean", safe_div(m.clip_low, m.tokens));
        put_metric(met, first, "clip_ratio/high_mean", safe_div(m.clip_high, m.tokens));
        put_metric(met, first, "clip_ratio/region_mean", safe_div(m.clip_region, m.tokens));
        if (b->ref_logp) put_metric(met, first, "kl", safe_div(m.kl_sum, m.tokens));
        if (in.entropy) put_metric(met, first, "entropy", safe_div(m.entropy_sum, m.tokens));
        if (in.sampler_logp) {
            put_metric(met, first, "sampling/sampling_logp_difference/mean", safe_div(m.logp_diff_sum, m.mismatch_tokens));
            put_metric(met, first, "sampling/sampling_logp_difference/max", m.logp_diff_max);
            put_metric(met, first, "training/rollout_probs_diff_mean", safe_div(m.prob_diff_sum, m.mismatch_tokens));
            put_metric(met, first, "training/rollout_probs_diff_max", m.prob_diff_max);
        }
    }
    free((void *)in.adv); free((void *)in.old_logp); free((void *)in.sampler_logp); free((void *)in.entropy);
    return rc;
}

// rehearsal: DPH-RL's generator functions on stored π0 samples.
static int run_rehearsal(const json *rq, const seq_batch *b, double *loss, float *dlogp, sbuf *met, int *first, tm_error *err) {
    rehearsal_hparams h = rehearsal_hparams_default();
    int dv = divergence_parse(json_get_str(rq, "divergence", "forward_kl"));
    int ke = kl_estimator_parse(json_get_str(rq, "kl_estimator", "low_var_kl"));
    if (dv < 0 || ke < 0) return tm_fail(err, "unknown divergence or KL estimator");
    h.divergence = (divergence_kind)dv;
    h.estimator = (kl_estimator)ke;
    h.alpha = json_get_num(rq, "alpha", h.alpha);
    h.coef = json_get_num(rq, "coef", h.coef);
    rehearsal_metrics m;
    int rc = rehearsal_loss(b, &h, json_get_num(rq, "norm", 0), loss, dlogp, &m, err);
    if (!rc) {
        put_metric(met, first, "num_tokens", m.tokens);
        put_metric(met, first, "divergence", safe_div(m.div_sum, m.tokens));
    }
    return rc;
}

// grpo_advantages: its own answer shape (no token arrays).
static int run_advantages(const json *rq, sbuf *out, tm_error *err) {
    const json *a = json_get(rq, "rewards");
    int n = a && a->type == JSON_ARRAY ? a->n : 0, G = (int)json_get_num(rq, "num_generations", 1);
    int sc = grpo_scale_parse(json_get_str(rq, "scale_rewards", "group"));
    if (sc < 0) return tm_fail(err, "unknown scale_rewards");
    double *r = malloc(sizeof(double) * (size_t)(n ? n : 1));
    float *adv = malloc(sizeof(float) * (size_t)(n ? n : 1));
    uint8_t *eq = malloc((size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) r[i] = a->items[i].type == JSON_NULL ? NAN : a->items[i].num;
    grpo_reward_stats st;
    int rc = grpo_advantages(n, G, r, (grpo_scale)sc, json_get_num(rq, "std_eps", 1e-4), adv, eq, &st, err);
    if (!rc) {
        int first = 1, ng = G > 0 ? n / G : 0;
        sbuf_puts(out, "{\"loss\": 0");
        put_array(out, "advantages", adv, n);
        sbuf_puts(out, ", \"group_all_equal\": [");
        for (int g = 0; g < ng; g++) sbuf_printf(out, "%s%d", g ? ", " : "", eq[g]);
        sbuf_puts(out, "], \"metrics\": {");
        put_metric(out, &first, "reward", st.reward);
        put_metric(out, &first, "reward_std", st.reward_std);
        put_metric(out, &first, "frac_reward_zero_std", st.frac_reward_zero_std);
        put_metric(out, &first, "groups_all_equal", st.groups_all_equal);
        put_metric(out, &first, "unscorable", st.unscorable);
        sbuf_puts(out, "}}");
    }
    free(r); free(adv); free(eq);
    return rc;
}

static void run_one(const json *rq, sbuf *out) {
    const char *obj = json_get_str(rq, "objective", "");
    int n_tok = 0, n_span = 0;
    seq_batch b;
    memset(&b, 0, sizeof b);
    float *logp = get_floats(rq, "logp", &n_tok), *ref = get_floats(rq, "ref_logp", NULL);
    float *weight = get_floats(rq, "weight", NULL);
    uint8_t *mask = get_bytes(rq, "mask");
    int *spans = get_ints(rq, "spans", &n_span);
    b.n_tokens = n_tok; b.logp = logp ? logp : (float[1]){0}; b.ref_logp = ref; b.mask = mask; b.weight = weight;
    b.n_seq = n_span / 2; b.span = spans;
    float *dlogp = malloc(sizeof(float) * (size_t)(n_tok ? n_tok : 1));
    tm_error err = {{0}};
    double loss = 0;
    int rc = 0, first = 1;
    sbuf met;
    sbuf_init(&met);
    if (strcmp(obj, "sft") == 0) {
        sft_metrics m;
        rc = sft_loss(&b, json_get_bool(rq, "per_sequence", 0), json_get_num(rq, "norm", 1), &loss, dlogp, &m, &err);
        if (!rc) {
            put_metric(&met, &first, "num_tokens", m.num_tokens);
            put_metric(&met, &first, "nll", safe_div(m.nll_sum, m.num_tokens));
        }
    } else if (strcmp(obj, "dpo") == 0) {
        dpo_hparams h = dpo_hparams_default();
        h.beta = json_get_num(rq, "beta", h.beta);
        const json *lw = json_get(rq, "loss_weights");
        if (lw && lw->type == JSON_OBJECT) {
            memset(h.loss_weight, 0, sizeof h.loss_weight);
            for (int i = 0; i < lw->n; i++) {
                int t = dpo_loss_type_parse(lw->keys[i]);
                if (t < 0) { rc = tm_fail(&err, "unknown loss type %s", lw->keys[i]); break; }
                h.loss_weight[t] = lw->items[i].num;
            }
        }
        h.label_smoothing = json_get_num(rq, "label_smoothing", 0);
        h.length_normalize = json_get_bool(rq, "length_normalize", 0);
        h.rpo_alpha = json_get_num(rq, "rpo_alpha", 0);
        h.form = strcmp(json_get_str(rq, "form", "sequence"), "position") == 0 ? DPO_FORM_POSITION : DPO_FORM_SEQUENCE;
        const json *nj = json_get(rq, "norm");
        dpo_norm nm = {json_get_num(nj, "pairs", 0), json_get_num(nj, "chosen_tokens", 0), json_get_num(nj, "positions", 0)};
        int np = 0;
        int *pairs = get_ints(rq, "pairs", &np);
        dpo_metrics m;
        if (!rc) rc = dpo_loss(&b, np / 2, pairs ? pairs : (int[1]){0}, &h, &nm, &loss, dlogp, &m, &err);
        if (!rc) {
            double n = m.n_pairs;
            put_metric(&met, &first, "rewards/chosen", safe_div(m.rewards_chosen, n));
            put_metric(&met, &first, "rewards/rejected", safe_div(m.rewards_rejected, n));
            put_metric(&met, &first, "rewards/accuracies", safe_div(m.rewards_accuracies, n));
            put_metric(&met, &first, "rewards/margins", safe_div(m.rewards_margins, n));
            put_metric(&met, &first, "logps/chosen", safe_div(m.logps_chosen, n));
            put_metric(&met, &first, "logps/rejected", safe_div(m.logps_rejected, n));
            put_metric(&met, &first, "nll_loss", safe_div(m.nll_sum, m.chosen_tokens));
        }
        free(pairs);
    } else if (strcmp(obj, "kto") == 0 || strcmp(obj, "kto_z0") == 0) {
        if (strcmp(obj, "kto_z0") == 0) {
            rc = seq_batch_check(&b, &err);
            if (!rc) loss = kto_z0(&b);
            memset(dlogp, 0, sizeof(float) * (size_t)(n_tok ? n_tok : 1));
        } else {
            kto_hparams h = kto_hparams_default();
            h.beta = json_get_num(rq, "beta", h.beta);
            h.desirable_weight = json_get_num(rq, "desirable_weight", h.desirable_weight);
            h.undesirable_weight = json_get_num(rq, "undesirable_weight", h.undesirable_weight);
            if (strcmp(json_get_str(rq, "loss_type", "kto"), "apo_zero_unpaired") == 0) h.loss_type = KTO_LOSS_APO_ZERO_UNPAIRED;
            uint8_t *labels = get_bytes(rq, "labels");
            kto_metrics m;
            rc = kto_loss(&b, labels ? labels : (uint8_t[1]){0}, json_get_num(rq, "z0", 0), &h, json_get_num(rq, "norm", 1),
                          &loss, dlogp, &m, &err);
            if (!rc) {
                double rc_ = safe_div(m.rewards_chosen_sum, m.count_chosen), rr = safe_div(m.rewards_rejected_sum, m.count_rejected);
                put_metric(&met, &first, "rewards/chosen", rc_);
                put_metric(&met, &first, "rewards/rejected", rr);
                put_metric(&met, &first, "rewards/margins", rc_ - rr);
                put_metric(&met, &first, "logps/chosen", safe_div(m.logps_chosen_sum, m.count_chosen));
                put_metric(&met, &first, "logps/rejected", safe_div(m.logps_rejected_sum, m.count_rejected));
                put_metric(&met, &first, "kl", m.kl);
                put_metric(&met, &first, "count/chosen", m.count_chosen);
                put_metric(&met, &first, "count/rejected", m.count_rejected);
            }
            free(labels);
        }
    } else if (strcmp(obj, "rm") == 0) {
        int n = 0;
        float *rw = get_floats(rq, "r_chosen", &n), *rl = get_floats(rq, "r_rejected", NULL), *mg = get_floats(rq, "margin", NULL);
        float *dw = malloc(sizeof(float) * (size_t)(n ? n : 1)), *dl = malloc(sizeof(float) * (size_t)(n ? n : 1));
        rm_metrics m;
        rc = rm_bt_loss(n, rw, rl, mg, json_get_num(rq, "center_coef", 0), json_get_num(rq, "norm", 1), &loss, dw, dl, &m, &err);
        if (!rc) {
            sbuf_printf(out, "{\"loss\": %.17g", loss);
            put_array(out, "d_chosen", dw, n);
            put_array(out, "d_rejected", dl, n);
            sbuf_puts(out, ", \"metrics\": {");
            put_metric(out, &first, "rewards/chosen", safe_div(m.rewards_chosen, m.n_pairs));
            put_metric(out, &first, "rewards/rejected", safe_div(m.rewards_rejected, m.n_pairs));
            put_metric(out, &first, "rewards/accuracies", safe_div(m.rewards_accuracies, m.n_pairs));
            put_metric(out, &first, "rewards/margins", safe_div(m.rewards_margins, m.n_pairs));
            sbuf_puts(out, "}}");
        }
        free(rw); free(rl); free(mg); free(dw); free(dl);
        if (!rc) goto done;
    } else if (strcmp(obj, "grpo") == 0) {
        rc = run_grpo(rq, &b, &loss, dlogp, &met, &first, &err);
    } else if (strcmp(obj, "rehearsal") == 0) {
        rc = run_rehearsal(rq, &b, &loss, dlogp, &met, &first, &err);
    } else if (strcmp(obj, "grpo_advantages") == 0) {
        rc = run_advantages(rq, out, &err);
        if (!rc) goto done;
    } else {
        rc = tm_fail(&err, "unknown objective \"%s\"", obj);
    }
    if (rc) {
        sbuf_puts(out, "{\"error\": ");
        sbuf_json_str(out, err.msg, strlen(err.msg));
        sbuf_puts(out, "}");
    } else {
        sbuf_printf(out, "{\"loss\": %.17g", loss);
        put_array(out, "dlogp", dlogp, n_tok);
        sbuf_puts(out, ", \"metrics\": {");
        if (met.len) sbuf_put(out, met.data, met.len);
        sbuf_puts(out, "}}");
    }
done:
    sbuf_free(&met);
    free(logp); free(ref); free(weight); free(mask); free(spans); free(dlogp);
}

int main(void) {
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t r;
    while ((r = fread(text + len, 1, cap - len, stdin)) > 0) {
        len += r;
        if (len == cap) text = realloc(text, cap *= 2);
    }
    tm_error err;
    json_doc *d = json_parse(text, len, &err);
    if (!d) { fprintf(stderr, "objective_eval: %s\n", err.msg); return 2; }
    const json *root = json_root(d);
    sbuf out;
    sbuf_init(&out);
    sbuf_puts(&out, "[");
    if (root->type == JSON_ARRAY) {
        for (int i = 0; i < root->n; i++) {
            if (i) sbuf_puts(&out, ",\n");
            run_one(&root->items[i], &out);
        }
    } else {
        run_one(root, &out);
    }
    sbuf_puts(&out, "]\n");
    fwrite(out.data, 1, out.len, stdout);
    sbuf_free(&out);
    json_doc_free(d);
    free(text);
    return 0;
}
