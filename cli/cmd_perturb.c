// temper perturb: the Vision Matters image perturbations over a folder or a dataset
// (src/image/perturb_run.h).
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "image/perturb_run.h"

int cmd_perturb(int argc, char **argv) {
    img_perturb_args a = {0};
    img_perturb_defaults(&a.opts);
    int seed = 0;
    char *pos[2];
    int npos = 2;
    flag flags[] = {
        {"images", FLAG_STR, &a.images, "folder of .png/.jpg/.jpeg images (each one an example; partners drawn from it)"},
        {"data", FLAG_STR, &a.data, "dataset JSONL with TRL's `images` (list) or `image` column; rewritten under --out"},
        {"out", FLAG_STR, &a.out, "output folder (never the input's)"},
        {"seed", FLAG_INT, &seed, "seed of the per-example draws"},
        {"noise-std", FLAG_FLOAT, &a.opts.noise_std, "noise: standard deviation (the script's __main__ uses 300)"},
        {"max-kernel-size", FLAG_INT, &a.opts.max_kernel_size, "blur: kernel sizes drawn from the odd numbers 3..this (__main__ uses 50)"},
        {"lambda-min", FLAG_FLOAT, &a.opts.lambda_min, "mixup: lambda ~ U(min, max)"},
        {"lambda-max", FLAG_FLOAT, &a.opts.lambda_max, "mixup: lambda ~ U(min, max)"},
        {"draws-out", FLAG_STR, &a.draws_out, "(for the oracle test) write each example's draws as JSONL"},
    };
    int rc = flags_parse("perturb", "concat|mixup|rotate|noise|blur|crop (--images DIR | --data F.jsonl) --out DIR [--seed S]",
                         flags, sizeof flags / sizeof flags[0], argc, argv, pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (npos != 1 || img_op_parse(pos[0], &a.op))
        return cli_fail("perturb", "give one operation: concat, mixup, rotate, noise, blur or crop");
    if (!a.out || !!a.images == !!a.data) return cli_fail("perturb", "--out and one of --images or --data are required");
    if (!(a.opts.noise_std >= 0)) return cli_fail("perturb", "--noise-std must be >= 0 (got %g)", a.opts.noise_std);
    if (a.opts.max_kernel_size < 3 || a.opts.max_kernel_size > 127)
        return cli_fail("perturb", "--max-kernel-size must be in 3..127 (got %d)", a.opts.max_kernel_size);
    if (!(a.opts.lambda_min >= 0 && a.opts.lambda_min <= a.opts.lambda_max && a.opts.lambda_max <= 1))
        return cli_fail("perturb", "--lambda-min and --lambda-max need 0 <= min <= max <= 1");
    a.seed = (uint64_t)(int64_t)seed;
    img_perturb_summary s;
    tm_error err;
    if (img_perturb_run(&a, &s, &err)) return cli_fail("perturb", "%s", err.msg);
    if (!flags_quiet) {
        if (a.data) printf("perturb %s: %d images of %d rows -> %s\n", pos[0], s.n_images, s.n_rows, s.data_out);
        else printf("perturb %s: %d images -> %s\n", pos[0], s.n_images, a.out);
    }
    return 0;
}
