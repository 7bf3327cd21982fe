// base/error: how library functions report failure.
// A function that can fail returns int (0 ok, -1 failed) and fills a tm_error
// whose message names the file, line or tensor and what is wrong. Library code
// never exits; only the CLI decides to quit.
#pragma once
#include <stddef.h>

typedef struct tm_error {
    char msg[1024];
} tm_error;

// Formats the message into err (if err is non-NULL) and returns -1.
int tm_fail(tm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefixes an existing message: "prefix: old message". Returns -1.
int tm_fail_prefix(tm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
