// Placeholder until the owning issue lands this command.
#include <stdio.h>
#include "cli/cli.h"
int cmd_grade(int argc, char **argv) { return cli_fail("grade", "not built yet"); }
