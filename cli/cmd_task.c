// temper task <name>: the built-in tasks. Each lives in its own file (cmd_task_<name>.c).
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

#define TASK_USAGE "usage: temper task synth --level 1..5 --n N --seed S --tools none|calculator|python " \
                   "--split train|validation|test --out F.jsonl\n       temper task visual --n N --seed S --out DIR"

int cmd_task(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "synth")) return cmd_task_synth(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "visual")) return cmd_task_visual(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf(TASK_USAGE "\n");
        return 0;
    }
    return cli_fail("task", TASK_USAGE), 2;
}
