// temper tokenizer train --data F.jsonl[,G...] --vocab-size N --out DIR: a byte-level BPE
// tokenizer trained on the text of JSONL files (src/tokenizer/bpe_train.h).
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "tokenizer/bpe_train.h"

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "train")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            printf("usage: temper tokenizer train --data F.jsonl[,G.jsonl] --vocab-size N --out DIR\n");
            return 0;
        }
        return cli_fail("tokenizer", "usage: temper tokenizer train --data F.jsonl --vocab-size N --out DIR (see temper tokenizer train --help)"), 2;
    }
    const char *data = NULL, *out = NULL;
    tok_bpe_train_opts o;
    tok_bpe_train_opts_default(&o);
    flag flags[] = {
        {"data", FLAG_LIST, &data, "JSONL files whose text fields (prompt, completion, messages, ...) are the corpus"},
        {"vocab-size", FLAG_INT, &o.vocab_size, "all ids: 256 bytes + merges + 3 special tokens (<|endoftext|>, <|im_start|>, <|im_end|>)"},
        {"min-frequency", FLAG_INT, &o.min_frequency, "pairs seen fewer times are not merged"},
        {"out", FLAG_STR, &out, "directory for tokenizer.json and tokenizer_config.json (ChatML template)"},
    };
    int rc = flags_parse("tokenizer train", "temper tokenizer train --data F.jsonl --vocab-size N --out DIR", flags,
                         (int)(sizeof flags / sizeof flags[0]), argc - 1, argv + 1, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!data || !out) return cli_fail("tokenizer", "--data and --out are required"), 2;
    if (o.vocab_size < 259) return cli_fail("tokenizer", "--vocab-size must be at least 259 (256 bytes + 3 special tokens; got %d)", o.vocab_size), 2;
    if (o.min_frequency < 1) return cli_fail("tokenizer", "--min-frequency must be at least 1 (got %d)", o.min_frequency), 2;
    tm_error err;
    clock_t t0 = clock();
    tok_bpe_trainer *tr = tok_bpe_trainer_new(&err);
    if (!tr) return cli_fail("tokenizer", "%s", err.msg);
    char files[8192];
    snprintf(files, sizeof files, "%s", data);
    int vocab = 0;
    rc = 0;
    for (char *save = NULL, *f = strtok_r(files, ",", &save); f && !rc; f = strtok_r(NULL, ",", &save))
        rc = tok_bpe_trainer_add_jsonl(tr, f, &err);
    if (!rc) rc = tok_bpe_train_save(tr, &o, out, &vocab, &err);
    tok_bpe_trainer_free(tr);
    if (rc) return cli_fail("tokenizer", "%s", err.msg);
    if (!flags_quiet)
        fprintf(stderr, "wrote %s/tokenizer.json: %d ids (%.2f s CPU)\n", out, vocab, (double)(clock() - t0) / CLOCKS_PER_SEC);
    return 0;
}
