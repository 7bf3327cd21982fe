// temper tokenizer train: placeholder while bpe_train lands.
#include "cli/cli.h"
int cmd_tokenizer(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("tokenizer", "not yet"); }
