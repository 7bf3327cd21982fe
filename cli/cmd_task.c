// temper task <name>: the built-in tasks. Each lives in its own file (cmd_task_<name>.c).
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

int cmd_task(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "visual")) return cmd_task_visual(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: temper task visual --n N --seed S --out DIR\n");
        return 0;
    }
    return cli_fail("task", "usage: temper task visual --n N --seed S --out DIR"), 2;
}
