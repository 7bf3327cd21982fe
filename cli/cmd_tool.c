// temper tool python < code.py   runs one sandboxed python call and prints what the model would see.
// temper tool calc "48/2"        evaluates an expression exactly.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "tools/calc.h"
#include "tools/python.h"

static char *read_stdin(void) {
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    size_t k;
    while (s && (k = fread(s + n, 1, cap - n - 1, stdin)) > 0) {
        n += k;
        if (n + 1 == cap) { char *t = realloc(s, cap *= 2); if (!t) { free(s); return NULL; } s = t; }
    }
    if (s) s[n] = 0;
    return s;
}

int cmd_tool(int argc, char **argv) {
    double timeout = 10;
    int mem_mb = 2048, out_limit = 16384;
    const char *mode = NULL;
    flag flags[] = {
        {"timeout", FLAG_FLOAT, &timeout, "python: wall-clock seconds per call"},
        {"memory-mb", FLAG_INT, &mem_mb, "python: address-space limit in MiB"},
        {"output-limit", FLAG_INT, &out_limit, "python: bytes of output kept"},
        {"sandbox", FLAG_STR, &mode, "python: auto, bwrap or unshare"},
    };
    char *pos[8];
    int npos = 8;
    int rc = flags_parse("tool", "temper tool python [flags] < code.py | temper tool calc EXPR", flags, 4, argc, argv, pos, &npos);
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
    char *code = read_stdin();
    if (!code) return cli_fail("tool", "cannot read stdin");
    pysb_opts o;
    pysb_opts_default(&o);
    o.timeout_s = timeout;
    o.mem_bytes = (size_t)mem_mb << 20;
    o.output_limit = (size_t)out_limit;
    o.mode = mode && strcmp(mode, "auto") ? mode : NULL;
    pysb *sb = pysb_open(&o, &err);
    if (!sb) { free(code); return cli_fail("tool", "%s", err.msg); }
    pysb_result r;
    if (pysb_run(sb, code, &r, &err)) { pysb_close(sb); free(code); return cli_fail("tool", "%s", err.msg); }
    char *t = pysb_result_text(&r);
    fputs(t ? t : "", stdout);
    if (t && *t && t[strlen(t) - 1] != '\n') fputc('\n', stdout);
    static const char *names[] = {"ok", "error", "timeout", "crash"};
    fprintf(stderr, "[%s sandbox: %s, %.3f s]\n", pysb_mode(sb), names[r.status], r.seconds);
    int status = r.status == PYSB_OK ? 0 : 1;
    free(t);
    pysb_result_free(&r);
    pysb_close(sb);
    free(code);
    return status;
}
