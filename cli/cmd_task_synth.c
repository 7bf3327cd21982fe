// temper task synth: write GSM8K-style word problems (src/task/synth.h) as JSONL.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "task/synth.h"

// "3", "1-5" or "1..5" into lo..hi; -1 if it is neither.
static int parse_levels(const char *s, int *lo, int *hi) {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s) return -1;
    if (*end == '-' || !strncmp(end, "..", 2)) {
        const char *t = end + (*end == '-' ? 1 : 2);
        b = strtol(t, &end, 10);
        if (end == t) return -1;
    }
    if (*end || a < 1 || b > SYNTH_MAX_LEVEL || a > b) return -1;
    *lo = (int)a;
    *hi = (int)b;
    return 0;
}

int cmd_task_synth(int argc, char **argv) {
    const char *level = "1-5", *tools = "none", *split = "train";
    synth_opts o = {0};
    int n = 1000, seed = 0;
    flag flags[] = {
        {"level", FLAG_STR, &level, "a level 1..5, or a range 1-3 / 1..3 (round-robin over the range)"},
        {"n", FLAG_INT, &n, "problems in all"},
        {"seed", FLAG_INT, &seed, "the same seed, split and levels give the same problems"},
        {"tools", FLAG_STR, &tools, "none|calculator (<<a*b=c>> steps)|python (a ```python block at levels 4-5)"},
        {"split", FLAG_STR, &split, "train|validation|test: disjoint by template and by number draw"},
        {"step-labels", FLAG_BOOL, &o.step_labels, "solutions as \"Let's think step by step.\\nStep 1: ...\" (Step-DPO's format, for temper step-pairs)"},
        {"out", FLAG_STR, &o.out, "the JSONL file to write (prompt, completion, answer, level, ...); - for stdout"},
    };
    int rc = flags_parse("task synth", "temper task synth --level 1..5 --n N --out F.jsonl", flags,
                         (int)(sizeof flags / sizeof flags[0]), argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!o.out) return cli_fail("task", "--out F.jsonl is required");
    if (parse_levels(level, &o.level_lo, &o.level_hi))
        return cli_fail("task", "--level '%s' is not a level 1..%d or a range like 1-%d", level, SYNTH_MAX_LEVEL, SYNTH_MAX_LEVEL), 2;
    int t = synth_tools_from_name(tools), s = synth_split_from_name(split);
    if (t < 0) return cli_fail("task", "--tools '%s' is not none, calculator or python", tools), 2;
    if (s < 0) return cli_fail("task", "--split '%s' is not train, validation or test", split), 2;
    if (n < 1) return cli_fail("task", "--n must be at least 1 (got %d)", n), 2;
    if (seed < 0) return cli_fail("task", "--seed must be at least 0 (got %d)", seed), 2;
    o.n = n;
    o.seed = (uint64_t)seed;
    o.tools = (synth_tools)t;
    o.split = (synth_split)s;
    tm_error err;
    if (synth_write(&o, &err)) return cli_fail("task", "%s", err.msg);
    if (!flags_quiet && strcmp(o.out, "-")) fprintf(stderr, "wrote %d %s problems (levels %d-%d, tools %s) to %s\n", n, split, o.level_lo, o.level_hi, tools, o.out);
    return 0;
}
