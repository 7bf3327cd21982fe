#include "data/builtin.h"
#include "base/io.h"
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TEMPER_DATADIR
#define TEMPER_DATADIR "/usr/local/share/temper/data"
#endif

static const char *builtin_file(const char *name) {
    if (!strcmp(name, "gsm8k")) return "gsm8k/test.jsonl";
    if (!strcmp(name, "gsm8k-train")) return "gsm8k/train.jsonl";
    if (!strcmp(name, "math500")) return "math500/test.jsonl";
    return NULL;
}

const char *data_builtin_path(const char *name, char *out, size_t cap, tm_error *err) {
    const char *file = builtin_file(name);
    if (!file || io_exists(name)) return name;  // a file of that name in the working folder wins
    char exe[4096] = "", bindir[4096] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        snprintf(bindir, sizeof bindir, "%s", dirname(exe));
    }
    char root[3][4200];
    snprintf(root[0], sizeof root[0], "%s/../share/temper/data", bindir);
    snprintf(root[1], sizeof root[1], "%s/../data", bindir);
    snprintf(root[2], sizeof root[2], "%s", TEMPER_DATADIR);
    const char *roots[4] = {getenv("TEMPER_DATA"), bindir[0] ? root[0] : NULL, bindir[0] ? root[1] : NULL, root[2]};
    for (int i = 0; i < 4; i++) {
        if (!roots[i] || !roots[i][0]) continue;
        snprintf(out, cap, "%s/%s", roots[i], file);
        if (io_exists(out)) return out;
    }
    tm_fail(err, "--data %s: %s not found under $TEMPER_DATA, %s/.., or %s (make install puts it there)",
            name, file, bindir[0] ? bindir : "the binary's folder", TEMPER_DATADIR);
    return NULL;
}
