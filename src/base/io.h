// base/io: files. Reading whole files, writing them atomically (temp name + rename,
// so a crash never leaves a half-written file under the real name), directories,
// and a line reader for JSONL that tracks line numbers.
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "base/error.h"

// Reads a whole file into a NUL-terminated malloc'd buffer. *len gets its size.
char *io_read_file(const char *path, size_t *len, tm_error *err);
// Writes data to path via path.tmp.<pid> + fsync + rename.
int io_write_file_atomic(const char *path, const void *data, size_t len, tm_error *err);
// mkdir -p
int io_mkdirs(const char *path, tm_error *err);
int io_exists(const char *path);
int io_is_dir(const char *path);
// Copies src to dst (atomically).
int io_copy_file(const char *src, const char *dst, tm_error *err);
// Joins a directory and a name into out (size cap). Returns out.
char *io_join(char *out, size_t cap, const char *dir, const char *name);

// Line reader: lines without the trailing newline, line numbers from 1.
typedef struct io_lines {
    FILE *f;
    char *buf;
    size_t cap;
    long lineno;
    const char *path;
} io_lines;
int io_lines_open(io_lines *r, const char *path, tm_error *err);
// Returns the line length (>= 0) with *line pointing into the reader's buffer,
// or -1 at end of file.
long io_lines_next(io_lines *r, char **line);
void io_lines_close(io_lines *r);
