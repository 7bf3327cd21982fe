// temper demo: trains the tiny model from scratch on a built-in toy corpus (byte-level
// arithmetic facts such as "37+48=85") and prints the falling loss. It exercises the
// whole training spine: packing, fused forward, SFT objective, backward, clipping,
// AdamW with warmup + cosine schedule.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/progress.h"
#include "base/rng.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "model/batch.h"
#include "model/model.h"
#include "objectives/sft.h"
#include "train/optimizer.h"

// One toy sequence: arithmetic facts as bytes, newline separated, up to len bytes.
static int toy_sequence(rng *r, int *ids, int len) {
    char buf[512];
    int n = 0;
    while (n < len) {
        int a = (int)rng_below(r, 100), b = (int)rng_below(r, 100);
        char fact[32];
        int k = rng_below(r, 2) ? snprintf(fact, sizeof fact, "%d+%d=%d\n", a, b, a + b)
                                : snprintf(fact, sizeof fact, "%d-%d=%d\n", a + b, b, a);
        if (n + k > len) break;
        memcpy(buf + n, fact, (size_t)k);
        n += k;
    }
    for (int i = 0; i < n; i++) ids[i] = (unsigned char)buf[i];
    return n;
}

int cmd_demo(int argc, char **argv) {
    int steps = 300, batch = 16, seq = 96, seed = 0, log_every = 20;
    double lr = 2e-3;
    const char *out = NULL;
    flag flags[] = {
        {"max-steps", FLAG_INT, &steps, "optimizer steps"},
        {"batch", FLAG_INT, &batch, "sequences per step"},
        {"seq-len", FLAG_INT, &seq, "bytes per sequence (at most 512)"},
        {"learning-rate", FLAG_FLOAT, &lr, "peak learning rate"},
        {"seed", FLAG_INT, &seed, "random seed"},
        {"logging-steps", FLAG_INT, &log_every, "print the loss every N steps"},
        {"output-dir", FLAG_STR, &out, "save the trained model here"},
    };
    int rc = flags_parse("demo", "[flags]", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (seq < 8 || seq > 512 || batch < 1 || steps < 1) return cli_fail("demo", "need 8 <= --seq-len <= 512, --batch >= 1, --max-steps >= 1");
    tm_error err;
    model_config c;
    config_preset(&c, ARCH_LLAMA, "tiny", &err);
    c.vocab = 256;  // bytes
    model m;
    if (model_create(&m, &c, &err) || model_enable_grad(&m, &err) || model_reserve(&m, batch * seq, &err))
        return cli_fail("demo", "%s", err.msg);
    model_init_random(&m, (uint64_t)seed);
    model_optimizer opt;
    adamw_hparams h = {lr, 0.9, 0.95, 1e-8, 0.1};
    if (model_optimizer_init(&opt, &m, h, 1.0, &err)) return cli_fail("demo", "%s", err.msg);
    batch_builder bb;
    if (batch_init(&bb, batch * seq, batch, &err)) return cli_fail("demo", "%s", err.msg);
    float *logp = malloc(sizeof(float) * (size_t)(batch * seq)), *dlogp = malloc(sizeof(float) * (size_t)(batch * seq));
    if (!logp || !dlogp) return cli_fail("demo", "out of memory for %d tokens", batch * seq);
    int ids[512];
    rng r;
    rng_seed(&r, (uint64_t)seed + 1);
    printf("temper demo: training a %.2fM-parameter Llama from scratch on toy arithmetic (%d steps, %d x %d bytes)\n",
           (double)m.numel / 1e6, steps, batch, seq);
    progress pb;
    progress_start(&pb, "demo", steps, "steps");
    double first = 0, last = 0, ema = 0;
    for (int step = 0; step < steps; step++) {
        batch_clear(&bb);
        for (int s = 0; s < batch; s++)  // cannot overflow: the builder holds batch sequences of seq tokens
            if (batch_add(&bb, ids, NULL, toy_sequence(&r, ids, seq)) < 0) return cli_fail("demo", "a sequence does not fit the batch");
        model_batch b = batch_view(&bb);
        int ntrain = 0;
        for (int i = 0; i < b.n_tokens; i++) ntrain += b.targets[i] >= 0;
        if (model_forward(&m, &b, logp, NULL, &err)) return cli_fail("demo", "%s", err.msg);
        double loss = sft_nll(logp, b.targets, b.n_tokens, ntrain, dlogp);
        model_backward(&m, &b, dlogp, NULL);
        double lr_now = lr * lr_multiplier(SCHED_COSINE, step, steps / 10, steps);
        double gnorm = model_optimizer_step(&opt, &m, lr_now);
        ema = step ? 0.9 * ema + 0.1 * loss : loss;
        if (step == 0) first = loss;
        last = loss;
        progress_set_extra(&pb, "loss %.4f", ema);
        progress_update(&pb, step + 1);
        if (step % log_every == 0 || step == steps - 1)
            printf("{\"step\": %d, \"loss\": %.4f, \"grad_norm\": %.4f, \"learning_rate\": %.3g}\n", step + 1, loss, gnorm, lr_now);
    }
    progress_finish(&pb);
    printf("temper demo: loss %.4f -> %.4f (uniform over bytes would be %.4f)\n", first, last, 5.5452);
    int status = 0;
    if (out) {
        if (model_save(&m, out, 0, &err)) status = cli_fail("demo", "%s", err.msg);
        else printf("temper demo: model saved to %s\n", out);
    }
    free(logp);
    free(dlogp);
    batch_free(&bb);
    model_optimizer_free(&opt);
    model_free(&m);
    return status;
}
