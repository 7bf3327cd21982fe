// temper tool python < code.py   runs one sandboxed python call and prints what the model would see.
// temper tool calc "48/2"        evaluates an expression exactly.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "tools/calc.h"
#include "tools/python.h"

// Reads stdin, at most cap bytes (a NUL byte is code like any other). NULL if there
// is more than cap (*n = cap + 1) or on an error (*n = 0).
static char *read_stdin(size_t cap, size_t *n) {
    size_t have = 0, size = 1 << 16;
    char *s = malloc(size);
    *n = 0;
    while (s) {
        if (have == size - 1) {
            if (have > cap) break;
            char *t = realloc(s, size *= 2);
            if (!t) { free(s); return NULL; }
            s = t;
        }
        size_t k = fread(s + have, 1, size - 1 - have, stdin);
        have += k;
        if (k == 0) break;
    }
    if (!s || ferror(stdin)) { free(s); return NULL; }
    if (have > cap) { free(s); *n = cap + 1; return NULL; }
    s[have] = 0;
    *n = have;
    return s;
}

// A whole number in [lo, hi] for --name, else one line naming the flag and the range.
static int parse_size(const char *name, const char *val, long long lo, long long hi, size_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi)
        return cli_fail("tool", "--%s must be an integer in [%lld, %lld], got '%s'", name, lo, hi, val);
    *out = (size_t)v;
    return 0;
}

static int run_python(pysb_opts *o) {
    tm_error err;
    if (pysb_opts_check(o, &err)) return cli_fail("tool", "%s", err.msg) + 1;
    size_t n;
    char *code = read_stdin(o->max_code_bytes, &n);
    if (!code && n) return cli_fail("tool", "the code on stdin is over --max-code-bytes (%zu bytes)", o->max_code_bytes);
    if (!code) return cli_fail("tool", "cannot read stdin");
    pysb *sb = pysb_open(o, &err);
    if (!sb) { free(code); return cli_fail("tool", "%s", err.msg); }
    pysb_result r;
    if (pysb_run_n(sb, code, n, &r, &err)) { pysb_close(sb); free(code); return cli_fail("tool", "%s", err.msg); }
    size_t tl;
    char *t = pysb_result_text_n(&r, &tl);
    if (t) fwrite(t, 1, tl, stdout);
    if (t && tl && t[tl - 1] != '\n') fputc('\n', stdout);
    static const char *names[] = {"ok", "error", "timeout", "crash"};
    fprintf(stderr, "[%s sandbox: %s, %.3f s]\n", pysb_mode(sb), names[r.status], r.seconds);
    int status = r.status == PYSB_OK ? 0 : 1;
    free(t);
    pysb_result_free(&r);
    pysb_close(sb);
    free(code);
    return status;
}

int cmd_tool(int argc, char **argv) {
    double timeout = 10;
    const char *mem_mb = "2048", *out_limit = "16384", *max_code = "1048576", *mode = NULL;
    flag flags[] = {
        {"timeout", FLAG_FLOAT, &timeout, "python: wall-clock seconds per call, sending the code included (0, 86400]"},
        {"memory-mb", FLAG_STR, &mem_mb, "python: address-space limit in MiB; /tmp and /dev/shm hold half of it each"},
        {"output-limit", FLAG_STR, &out_limit, "python: bytes of output kept"},
        {"max-code-bytes", FLAG_STR, &max_code, "python: longest code accepted"},
        {"sandbox", FLAG_STR, &mode, "python: auto, bwrap or unshare"},
    };
    char *pos[8];
    int npos = 8;
    int rc = flags_parse("tool", "python [flags] < code.py | calc EXPR", flags, 5, argc, argv, pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (npos < 1) return cli_fail("tool", "which tool? python or calc (see temper tool --help)") + 1;
    tm_error err;
    if (!strcmp(pos[0], "calc")) {
        if (npos != 2) return cli_fail("tool", "usage: temper tool calc EXPR") + 1;
        char out[4096];
        if (calc_eval(pos[1], out, sizeof out, &err)) return cli_fail("tool", "%s", err.msg);
        printf("%s\n", out);
        return 0;
    }
    if (strcmp(pos[0], "python")) return cli_fail("tool", "unknown tool '%s' (python, calc)", pos[0]) + 1;
    pysb_opts o;
    pysb_opts_default(&o);
    size_t mb = 0;
    if (parse_size("memory-mb", mem_mb, PYSB_MIN_MEM_MB, PYSB_MAX_MEM_MB, &mb) ||
        parse_size("output-limit", out_limit, 1, PYSB_MAX_OUTPUT, &o.output_limit) ||
        parse_size("max-code-bytes", max_code, 1, PYSB_MAX_CODE, &o.max_code_bytes))
        return 2;
    o.mem_bytes = mb << 20;
    o.timeout_s = timeout;
    o.mode = mode;
    return run_python(&o);
}
