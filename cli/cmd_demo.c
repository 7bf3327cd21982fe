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
#include "model/model.h"
#include "objectives/sft.h"
#include "train/step.h"

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
    if (model_create(&m, &c, &err)) return cli_fail("demo", "%s", err.msg);
    model_init_random(&m, (uint64_t)seed);
    // the step-level trainer every trainer uses: packing, forward, backward, clipping,
    // AdamW on a warmup + cosine schedule
    trainer t;
    trainer_opts o = {{lr, 0.9, 0.95, 1e-8, 0.1}, 1.0, SCHED_COSINE, steps / 10, steps, batch * seq, batch, 0, 0, 0, 0, 0};
    if (trainer_open(&t, &m, &o, 1, &err)) { model_free(&m); return cli_fail("demo", "%s", err.msg); }
    int ids[512];
    uint8_t ones[512];
    memset(ones, 1, sizeof ones);
    rng r;
    rng_seed(&r, (uint64_t)seed + 1);
    printf("temper demo: training a %.2fM-parameter Llama from scratch on toy arithmetic (%d steps, %d x %d bytes)\n",
           (double)m.numel / 1e6, steps, batch, seq);
    progress pb;
    progress_start(&pb, "demo", steps, "steps");
    double first = 0, last = 0, ema = 0;
    for (int step = 0; step < steps; step++) {
        trainer_clear(&t);
        double ntrain = 0;
        for (int s = 0; s < batch; s++) {
            int n = toy_sequence(&r, ids, seq);
            if (trainer_add(&t, ids, ones, n, NULL, NULL, &err)) { model_free(&m); return cli_fail("demo", "%s", err.msg); }
            ntrain += n - 1;
        }
        double loss = 0;
        int bad = trainer_forward(&t, NULL, &err);
        seq_batch sb = trainer_view(&t, 0);  // the packed batch with its fresh log-probs
        if (bad || sft_loss(&sb, 0, ntrain, &loss, t.dlogp_tok, NULL, &err)) {
            trainer_close(&t);
            model_free(&m);
            return cli_fail("demo", "%s", err.msg);
        }
        trainer_backward(&t);
        double lr_now = trainer_lr(&t, step);
        double gnorm = trainer_step(&t, step);
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
    trainer_close(&t);
    model_free(&m);
    return status;
}
