#include "cli/flags.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_help(const char *cmd, const char *synopsis, const flag *flags, int nflags) {
    printf("usage: temper %s %s\n\nflags:\n", cmd, synopsis ? synopsis : "[flags]");
    for (int i = 0; i < nflags; i++) {
        char def[64] = "";
        switch (flags[i].kind) {
        case FLAG_STR: if (*(const char **)flags[i].dst) snprintf(def, sizeof def, " (default %s)", *(const char **)flags[i].dst); break;
        case FLAG_INT: snprintf(def, sizeof def, " (default %d)", *(int *)flags[i].dst); break;
        case FLAG_FLOAT: snprintf(def, sizeof def, " (default %g)", *(double *)flags[i].dst); break;
        case FLAG_BOOL: break;
        }
        printf("  --%-28s %s%s\n", flags[i].name, flags[i].help ? flags[i].help : "", def);
    }
}

// Compares a flag name with user text, treating '_' and '-' alike.
static int name_eq(const char *a, const char *b, size_t blen) {
    size_t i = 0;
    for (; i < blen && a[i]; i++) {
        char x = a[i] == '_' ? '-' : a[i], y = b[i] == '_' ? '-' : b[i];
        if (x != y) return 0;
    }
    return i == blen && a[i] == 0;
}

int flags_parse(const char *cmd, const char *synopsis, const flag *flags, int nflags, int argc,
                char **argv, char **positional, int *npos) {
    int cap = npos ? *npos : 0, np = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (a[0] != '-' || a[1] != '-' || a[2] == 0) {
            if (np >= cap) { fprintf(stderr, "temper %s: unexpected argument '%s'\n", cmd, a); return 2; }
            positional[np++] = a;
            continue;
        }
        if (!strcmp(a, "--help")) { print_help(cmd, synopsis, flags, nflags); return 1; }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const flag *f = NULL;
        for (int j = 0; j < nflags; j++) if (name_eq(flags[j].name, name, nlen)) f = &flags[j];
        if (!f) { fprintf(stderr, "temper %s: unknown flag '--%.*s' (see temper %s --help)\n", cmd, (int)nlen, name, cmd); return 2; }
        const char *val = eq ? eq + 1 : NULL;
        if (f->kind == FLAG_BOOL && !val) { *(int *)f->dst = 1; continue; }
        if (!val) {
            if (i + 1 >= argc) { fprintf(stderr, "temper %s: --%s needs a value\n", cmd, f->name); return 2; }
            val = argv[++i];
        }
        char *end; errno = 0;
        switch (f->kind) {
        case FLAG_STR: *(const char **)f->dst = val; break;
        case FLAG_INT: {
            long v = strtol(val, &end, 10);
            if (*end || errno || end == val) { fprintf(stderr, "temper %s: --%s expects an integer, got '%s'\n", cmd, f->name, val); return 2; }
            *(int *)f->dst = (int)v; break;
        }
        case FLAG_FLOAT: {
            double v = strtod(val, &end);
            if (*end || errno || end == val) { fprintf(stderr, "temper %s: --%s expects a number, got '%s'\n", cmd, f->name, val); return 2; }
            *(double *)f->dst = v; break;
        }
        case FLAG_BOOL:
            if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "True")) *(int *)f->dst = 1;
            else if (!strcmp(val, "false") || !strcmp(val, "0") || !strcmp(val, "False")) *(int *)f->dst = 0;
            else { fprintf(stderr, "temper %s: --%s expects true or false, got '%s'\n", cmd, f->name, val); return 2; }
            break;
        }
    }
    if (npos) *npos = np;
    return 0;
}
