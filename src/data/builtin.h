// data/builtin: the data sets that ship with temper (data/ in the source tree,
// $(PREFIX)/share/temper/data once installed): GSM8K test/train and MATH-500.
#pragma once
#include <stddef.h>
#include "base/error.h"

// Resolves a --data argument. "gsm8k", "gsm8k-train" and "math500" name the shipped
// files; anything else is returned unchanged (a path; so is a name that exists as a file). The shipped files are looked
// for, in order, under $TEMPER_DATA, next to the running binary (../share/temper/data
// for an installed binary, ../data for build/temper in a source tree) and under the
// install prefix compiled in (TEMPER_DATADIR). Returns the path (out or name), or NULL
// with a message listing where it looked.
const char *data_builtin_path(const char *name, char *out, size_t cap, tm_error *err);
