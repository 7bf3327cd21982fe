// grad_dump: the C side of the PyTorch parity test (tests/oracle/test_parity.py).
// Loads a model, packs the sequences of T.json into one row, computes per-token
// log-probs, the mean NLL, every parameter's gradient, and the parameters after one
// AdamW step, and writes them all to a safetensors file:
//   logprobs [N], loss [1], grad.<name>, step.<name>
// --model may be a PEFT adapter directory: then only the trainable tensors (lora_A/B
// and modules_to_save) have grad.* and step.* entries.
// --temperature T: log-probs of softmax(logits / T) (model_forward_temp); --entropy-coef c:
// loss = (-sum logp + c * sum entropy) / n_targets, and entropy [N] is written too;
// --value-coef v: PPO's shared value head V_t = u . h_t on the final hidden state before / T
// (u_j = ((7j mod 11) - 5) / 8), loss += v * sum V / n_targets through model_backward_extra,
// and values [N] is written too.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "cli/flags.h"
#include "model/batch.h"
#include "model/lora.h"
#include "model/model.h"
#include "objectives/sft.h"
#include "train/optimizer.h"

static int die(const char *msg) { fprintf(stderr, "grad_dump: %s\n", msg); return 1; }

int main(int argc, char **argv) {
    const char *model_dir = NULL, *tokens = NULL, *out = NULL;
    double lr = 1e-3, wd = 0.0, b1 = 0.9, b2 = 0.999, eps = 1e-8, temperature = 1.0, ent_coef = 0.0, val_coef = 0.0;
    int dropout_key = -1;
    flag flags[] = {
        {"model", FLAG_STR, &model_dir, ""}, {"tokens", FLAG_STR, &tokens, ""}, {"out", FLAG_STR, &out, ""},
        {"lr", FLAG_FLOAT, &lr, ""}, {"weight-decay", FLAG_FLOAT, &wd, ""}, {"beta1", FLAG_FLOAT, &b1, ""},
        {"beta2", FLAG_FLOAT, &b2, ""}, {"eps", FLAG_FLOAT, &eps, ""},
        {"dropout-key", FLAG_INT, &dropout_key, "LoRA: arm adapter dropout with this key for the forward (model/lora.h)"},
        {"temperature", FLAG_FLOAT, &temperature, ""}, {"entropy-coef", FLAG_FLOAT, &ent_coef, ""},
        {"value-coef", FLAG_FLOAT, &val_coef, ""},
    };
    int rc = flags_parse("grad_dump", NULL, flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model_dir || !tokens || !out) return die("--model, --tokens and --out are required");
    tm_error err;
    model m;
    if (model_load(&m, model_dir, &err) || model_enable_grad(&m, &err)) return die(err.msg);
    json_doc *d = json_parse_file(tokens, &err);
    if (!d) return die(err.msg);
    json *seqs = json_get(json_root(d), "sequences");
    if (!seqs || seqs->type != JSON_ARRAY) return die("tokens file needs \"sequences\"");
    int total = 0;
    for (int s = 0; s < seqs->n; s++) total += seqs->items[s].n;
    batch_builder bb;
    batch_init(&bb, total, seqs->n, &err);
    int *ids = malloc(sizeof(int) * (size_t)total);
    for (int s = 0; s < seqs->n; s++) {
        for (int t = 0; t < seqs->items[s].n; t++) ids[t] = (int)seqs->items[s].items[t].num;
        batch_add(&bb, ids, NULL, seqs->items[s].n);
    }
    json_doc_free(d);
    model_batch b = batch_view(&bb);
    float *logp = malloc(sizeof(float) * (size_t)total), *dlogp = malloc(sizeof(float) * (size_t)total);
    float *ent = malloc(sizeof(float) * (size_t)total), *dent = malloc(sizeof(float) * (size_t)total);
    if (dropout_key >= 0) model_lora_dropout_next(&m, (uint64_t)dropout_key);
    if (model_forward_temp(&m, &b, temperature, logp, ent_coef != 0 ? ent : NULL, &err)) return die(err.msg);
    int ntrain = 0;
    for (int i = 0; i < total; i++) ntrain += b.targets[i] >= 0;
    double l = sft_nll(logp, b.targets, total, ntrain, dlogp);
    for (int i = 0; i < total; i++) {
        int t = b.targets[i] >= 0;
        if (ent_coef != 0 && t) l += ent_coef * ent[i] / ntrain;
        dent[i] = t ? (float)(ent_coef / ntrain) : 0.0f;
        if (ent_coef != 0 && !t) ent[i] = 0.0f;
    }
    const int D = m.cfg.hidden;
    float *vals = calloc((size_t)total, sizeof(float)), *dxf = calloc((size_t)total * D, sizeof(float));
    if (val_coef != 0) {
        const float *h = model_last_hidden(&m);
        for (int i = 0; i < total; i++) {
            double v = 0;
            for (int j = 0; j < D; j++) {
                float u = (float)((j * 7) % 11 - 5) / 8.0f;
                v += (double)h[(size_t)i * D + j] * u;
                dxf[(size_t)i * D + j] = (float)(val_coef * u / ntrain);
            }
            vals[i] = (float)v;
            l += val_coef * v / ntrain;
        }
    }
    float loss = (float)l;
    model_backward_extra(&m, &b, dlogp, ent_coef != 0 ? dent : NULL, val_coef != 0 ? dxf : NULL);
    float *grads = malloc(sizeof(float) * m.gnumel);
    memcpy(grads, m.g, sizeof(float) * m.gnumel);
    model_optimizer opt;
    adamw_hparams h = {lr, b1, b2, eps, wd};
    model_optimizer_init(&opt, &m, h, 0.0, &err);
    model_optimizer_step(&opt, &m, lr);
    int n = 2 + 2 * m.nparams + (ent_coef != 0) + (val_coef != 0);
    st_out_tensor *ts = calloc((size_t)n, sizeof *ts);
    char (*names)[128] = calloc((size_t)n, 128);
    ts[0] = (st_out_tensor){"logprobs", 1, {total}, logp};
    ts[1] = (st_out_tensor){"loss", 1, {1}, &loss};
    int nt = 2;
    for (int i = 0; i < m.nparams; i++) {
        const model_param *p = &m.params[i];
        if (!p->trainable) continue;
        for (int k = 0; k < 2; k++, nt++) {
            st_out_tensor *t = &ts[nt];
            snprintf(names[nt], 128, "%s.%s", k ? "step" : "grad", p->name);
            t->name = names[nt];
            t->ndim = p->ndim;
            for (int d = 0; d < p->ndim; d++) t->shape[d] = p->shape[d];
            t->data = k ? m.w + p->offset : grads + p->goff;
        }
    }
    if (ent_coef != 0) ts[nt++] = (st_out_tensor){"entropy", 1, {total}, ent};
    if (val_coef != 0) ts[nt++] = (st_out_tensor){"values", 1, {total}, vals};
    if (st_write(out, ts, nt, ST_F32, &err)) return die(err.msg);
    free(ts); free(names); free(grads); free(logp); free(dlogp); free(ent); free(dent); free(ids); free(vals); free(dxf);
    batch_free(&bb);
    model_optimizer_free(&opt);
    model_free(&m);
    return 0;
}
