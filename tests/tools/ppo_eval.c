// ppo_eval: the C side of the PPO oracle test (tests/oracle/test_ppo.py). Reads a JSON array of
// requests on stdin; for each runs objectives/ppo.h's whole pipeline as the trainer does:
//   rewards = ppo_rewards(old_logp, ref_logp, scores)
//   adv, ret = ppo_gae(rewards, old_values); adv_white = ppo_whiten(adv, mask)
//   loss, dlogp, dvalue = ppo_loss(logp, values, old_values, ret, adv_white, old_logp, ref_logp)
// and prints a JSON array of {"rewards", "adv", "ret", "adv_white", "loss", "dlogp", "dvalue",
// "metrics"} (or {"error"}). Request fields: token arrays "logp", "old_logp", "ref_logp" (null =
// none), "values", "old_values", "entropy", "mask"; "spans" [s0,e0,...]; "scores" [n_seq];
// "cliprange", "cliprange_value", "vf_coef", "gamma", "lam", "kl_coef", "kl_estimator", "kl_loss",
// "norm_tokens".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "objectives/ppo.h"

static float *floats(const json *o, const char *key) {
    const json *a = json_get(o, key);
    if (!a || a->type != JSON_ARRAY) return NULL;
    float *v = malloc(sizeof(float) * (size_t)(a->n ? a->n : 1));
    for (int i = 0; v && i < a->n; i++) v[i] = (float)a->items[i].num;
    return v;
}

static void put(sbuf *o, const char *key, const float *v, int n) {
    sbuf_printf(o, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_printf(o, "%s%.9g", i ? ", " : "", (double)v[i]);
    sbuf_puts(o, "]");
}

static void one(const json *rq, sbuf *out) {
    tm_error err = {0};
    const json *lp = json_get(rq, "logp"), *sp = json_get(rq, "spans"), *mk = json_get(rq, "mask"), *sc = json_get(rq, "scores");
    int n = lp ? lp->n : 0, ns = sp ? sp->n / 2 : 0;
    int *span = malloc(sizeof(int) * (size_t)(2 * ns + 1));
    uint8_t *mask = malloc((size_t)n + 1);
    double *scores = malloc(sizeof(double) * (size_t)(ns + 1));
    for (int i = 0; i < 2 * ns; i++) span[i] = (int)sp->items[i].num;
    for (int i = 0; i < n; i++) mask[i] = mk->items[i].num != 0;
    for (int i = 0; i < ns; i++) scores[i] = sc->items[i].num;
    float *logp = floats(rq, "logp"), *old = floats(rq, "old_logp"), *ref = floats(rq, "ref_logp");
    float *val = floats(rq, "values"), *oval = floats(rq, "old_values"), *ent = floats(rq, "entropy");
    size_t nb = sizeof(float) * (size_t)(n + 1);
    float *rw = malloc(nb), *adv = malloc(nb), *ret = malloc(nb), *aw = malloc(nb), *dl = malloc(nb), *dv = malloc(nb);
    ppo_hparams h = ppo_hparams_default();
    h.cliprange = json_get_num(rq, "cliprange", h.cliprange);
    h.cliprange_value = json_get_num(rq, "cliprange_value", h.cliprange_value);
    h.vf_coef = json_get_num(rq, "vf_coef", h.vf_coef);
    h.gamma = json_get_num(rq, "gamma", h.gamma);
    h.lam = json_get_num(rq, "lam", h.lam);
    h.kl_coef = json_get_num(rq, "kl_coef", h.kl_coef);
    h.estimator = (kl_estimator)kl_estimator_parse(json_get_str(rq, "kl_estimator", "k1"));
    h.kl_loss = json_get_bool(rq, "kl_loss", 0);
    seq_batch old_b = {n, old, ref, mask, NULL, ns, span}, cur = {n, logp, ref, mask, NULL, ns, span};
    ppo_inputs in = {aw, ret, val, oval, old, ent};
    ppo_metrics m;
    double loss = 0;
    int rc = ppo_rewards(&old_b, scores, &h, rw, NULL, NULL, &err);
    if (!rc) rc = ppo_gae(&old_b, rw, oval, h.gamma, h.lam, adv, ret, &err);
    if (!rc) {
        memcpy(aw, adv, sizeof(float) * (size_t)n);
        ppo_whiten(n, mask, aw, 1);
        rc = ppo_loss(&cur, &in, &h, json_get_num(rq, "norm_tokens", 0), &loss, dl, dv, &m, &err);
    }
    if (rc) {
        sbuf_puts(out, "{\"error\": ");
        sbuf_json_str(out, err.msg, strlen(err.msg));
        sbuf_puts(out, "}");
    } else {
        sbuf_printf(out, "{\"loss\": %.17g", loss);
        put(out, "rewards", rw, n);
        put(out, "adv", adv, n);
        put(out, "ret", ret, n);
        put(out, "adv_white", aw, n);
        put(out, "dlogp", dl, n);
        put(out, "dvalue", dv, n);
        sbuf_printf(out, ", \"metrics\": {\"tokens\": %.17g, \"pg_sum\": %.17g, \"vf_sum\": %.17g, \"kl_sum\": %.17g, \"pg_clip\": %.17g, "
                         "\"vf_clip\": %.17g, \"approxkl_sum\": %.17g, \"ratio_sum\": %.17g, \"entropy_sum\": %.17g}}",
                    m.tokens, m.pg_sum, m.vf_sum, m.kl_sum, m.pg_clip, m.vf_clip, m.approxkl_sum, m.ratio_sum, m.entropy_sum);
    }
    free(span); free(mask); free(scores); free(logp); free(old); free(ref); free(val); free(oval); free(ent);
    free(rw); free(adv); free(ret); free(aw); free(dl); free(dv);
}

int main(void) {
    sbuf in, out;
    sbuf_init(&in);
    sbuf_init(&out);
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) sbuf_put(&in, buf, k);
    tm_error err;
    json_doc *d = json_parse(in.data ? in.data : "", in.len, &err);
    if (!d) { fprintf(stderr, "ppo_eval: %s\n", err.msg); return 1; }
    const json *r = json_root(d);
    sbuf_puts(&out, "[");
    for (int i = 0; i < r->n; i++) {
        if (i) sbuf_puts(&out, ",\n");
        one(&r->items[i], &out);
    }
    sbuf_puts(&out, "]\n");
    fputs(out.data, stdout);
    json_doc_free(d);
    sbuf_free(&in);
    sbuf_free(&out);
    return 0;
}
