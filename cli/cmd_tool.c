// Placeholder until the owning issue lands this command.
#include <stdio.h>
#include "cli/cli.h"
int cmd_tool(int argc, char **argv) { return cli_fail("tool", "not built yet"); }
