// cli/flags: declarative flag parsing for commands.
// Accepts --name value, --name=value, and bare --name for booleans. Flags use
// TRL's names with dashes (--learning-rate); underscores are accepted too
// (--learning_rate), so a TRL command line carries over.
#pragma once

typedef enum { FLAG_STR, FLAG_INT, FLAG_FLOAT, FLAG_BOOL } flag_kind;

typedef struct flag {
    const char *name;   // without the leading dashes
    flag_kind kind;
    void *dst;          // const char **, int *, double *, int *
    const char *help;
} flag;

// Parses argv[1..argc) (argv[0] is the command name). Non-flag arguments are
// returned in positional[] (up to *npos on input; the count on output).
// Returns 0 on success, 1 if --help was printed (exit 0), 2 on a usage error
// (already printed).
int flags_parse(const char *cmd, const char *synopsis, const flag *flags, int nflags, int argc,
                char **argv, char **positional, int *npos);
