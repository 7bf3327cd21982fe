// Placeholder until the owning issue lands this command.
#include <stdio.h>
#include "cli/cli.h"
int cmd_tokenize(int argc, char **argv) { return cli_fail("tokenize", "not built yet"); }
