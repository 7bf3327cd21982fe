// Placeholder until the owning issue lands this command.
#include <stdio.h>
#include "cli/cli.h"
int cmd_data(int argc, char **argv) { return cli_fail("data", "not built yet"); }
