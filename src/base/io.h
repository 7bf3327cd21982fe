// base/io: files. Reading whole files, writing them atomically (temp name + rename,
// so a crash never leaves a half-written file under the real name), directories,
// and a line reader for JSONL that tracks line numbers.
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "base/error.h"

// Reads a whole file into a NUL-terminated malloc'd buffer. *len gets its size.
char *io_read_file(const char *path, size_t *len, tm_error *err);
// The one atomic writer: data goes to path.tmp.<pid>; commit flushes and fsyncs it,
// renames it to path and fsyncs the directory, so after a crash or power loss path
// holds either its old content or the whole new one. abort removes the temporary.
// A path that exists and is not a regular file (/dev/stdout, a FIFO, a terminal) is
// written directly: renaming over it would replace the device with a file.
typedef struct io_atomic {
    FILE *f;               // write here between open and commit
    int direct;            // 1: f is path itself (not a regular file), no temporary
    char path[4096], tmp[4200];
} io_atomic;
int io_atomic_open(io_atomic *w, const char *path, tm_error *err);
int io_atomic_commit(io_atomic *w, tm_error *err);
void io_atomic_abort(io_atomic *w);
// Writes a whole buffer through io_atomic.
int io_write_file_atomic(const char *path, const void *data, size_t len, tm_error *err);
// fsync of a directory (after creating, renaming or removing entries in it).
int io_fsync_dir(const char *dir, tm_error *err);
// mkdir -p
int io_mkdirs(const char *path, tm_error *err);
int io_exists(const char *path);
int io_is_dir(const char *path);
// Copies src to dst (atomically).
int io_copy_file(const char *src, const char *dst, tm_error *err);
// Joins a directory and a name into out (size cap). Returns out.
char *io_join(char *out, size_t cap, const char *dir, const char *name);

// Line reader: lines without the trailing newline (and without a UTF-8 byte order
// mark at the start of the file), line numbers from 1.
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
