// temper task visual: the built-in visual math task (src/image/visual_task.h).
#include <stdio.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "image/visual_task.h"

int cmd_task_visual(int argc, char **argv) {
    const char *out = NULL;
    int n = 100, seed = 0;
    flag flags[] = {
        {"n", FLAG_INT, &n, "examples (kinds cycle dots, bars, clock)"},
        {"seed", FLAG_INT, &seed, "the same seed gives the same images and answers"},
        {"out", FLAG_STR, &out, "folder: images/visual_NNNNN.png and visual.jsonl (images, prompt, answer, kind)"},
    };
    int rc = flags_parse("task visual", "temper task visual --n N --seed S --out DIR", flags,
                         (int)(sizeof flags / sizeof flags[0]), argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!out) return cli_fail("task visual", "--out DIR is required"), 2;
    if (n < 1) return cli_fail("task visual", "--n must be at least 1 (got %d)", n), 2;
    char path[4300];
    tm_error err;
    if (visual_task_write(out, n, (uint64_t)(int64_t)seed, path, sizeof path, &err)) return cli_fail("task visual", "%s", err.msg);
    if (!flags_quiet) printf("task visual: %d examples -> %s\n", n, path);
    return 0;
}
