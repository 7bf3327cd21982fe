// cli/flags: declarative flag parsing for commands.
// Accepts --name value, --name=value, and bare --name for booleans. Flags use
// TRL's names with dashes (--learning-rate); underscores are accepted too
// (--learning_rate), so a TRL command line carries over.
#pragma once

// FLAG_LIST: a string flag that may be repeated; the values are joined with commas
// (--data a.jsonl --data b.jsonl is --data a.jsonl,b.jsonl).
typedef enum { FLAG_STR, FLAG_INT, FLAG_FLOAT, FLAG_BOOL, FLAG_LIST } flag_kind;

typedef struct flag {
    const char *name;   // without the leading dashes
    flag_kind kind;
    void *dst;          // const char **, int *, double *, int *
    const char *help;
} flag;

// Set by `--quiet`, which every command accepts: no progress bars (progress_set_quiet)
// and no summary lines; errors and warnings still print.
extern int flags_quiet;

// Parses argv[1..argc) (argv[0] is the command name). Non-flag arguments are
// returned in positional[] (up to *npos on input; the count on output).
// Returns 0 on success, 1 if --help was printed (exit 0), 2 on a usage error
// (already printed).
int flags_parse(const char *cmd, const char *synopsis, const flag *flags, int nflags, int argc,
                char **argv, char **positional, int *npos);

// --config FILE.json: a JSON object whose keys are flag names (TRL's, with dashes or
// underscores) becomes flags placed before the command line's own, so the command line
// wins. Lists become comma-separated values (loss_type: ["sigmoid", "sft"]), booleans
// true/false. Returns a new argv in *out (free with flags_config_free) or -1 with a
// message printed.
typedef struct flags_config {
    int argc;
    char **argv;
    char **owned;  // strings allocated for values
    int n_owned;
} flags_config;
int flags_expand_config(const char *cmd, int argc, char **argv, flags_config *out);
void flags_config_free(flags_config *c);
