#include "base/io.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *io_read_file(const char *path, size_t *len, tm_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { tm_fail(err, "%s: %s", path, strerror(errno)); return NULL; }
    if (fseek(f, 0, SEEK_END)) { fclose(f); tm_fail(err, "%s: cannot seek", path); return NULL; }
    long n = ftell(f);
    rewind(f);
    if (n < 0) { fclose(f); tm_fail(err, "%s: cannot tell size", path); return NULL; }
    char *buf = malloc((size_t)n + 1);
    if (!buf) { fclose(f); tm_fail(err, "%s: out of memory (%ld bytes)", path, n); return NULL; }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f); free(buf); tm_fail(err, "%s: read failed", path); return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

// The directory part of path ("." when it has none) into out.
static void dir_of(char *out, size_t cap, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == path) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

int io_fsync_dir(const char *dir, tm_error *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return tm_fail(err, "%s: %s", dir, strerror(errno));
    // some file systems cannot sync a directory (EINVAL): nothing more can be done there
    int rc = fsync(fd) && errno != EINVAL ? -1 : 0;
    int e = errno;
    close(fd);
    return rc ? tm_fail(err, "%s: sync failed: %s", dir, strerror(e)) : 0;
}

int io_atomic_open(io_atomic *w, const char *path, tm_error *err) {
    memset(w, 0, sizeof *w);
    if ((size_t)snprintf(w->path, sizeof w->path, "%s", path) >= sizeof w->path) return tm_fail(err, "%s: path too long", path);
    struct stat st, lst;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return tm_fail(err, "%s: is a directory, not a file", path);
        int is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
        // /dev/stdout, /proc/self/fd/N and devices or pipes are written in place: a rename
        // would put a file where the link or device was (and `>> log` would be clobbered)
        if (!S_ISREG(st.st_mode) || (is_link && (!strncmp(path, "/dev/", 5) || !strncmp(path, "/proc/", 6)))) {
            w->direct = 1;
            // append: /dev/stdout of a `>> log` or `> log` redirection must not be truncated
            if (!(w->f = fopen(path, "ab"))) return tm_fail(err, "%s: %s", path, strerror(errno));
            return 0;
        }
        // any other link keeps pointing where it did: its target is the file replaced
        char real[PATH_MAX];
        if (is_link && realpath(path, real) && strlen(real) < sizeof w->path) snprintf(w->path, sizeof w->path, "%s", real);
    }
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%d", w->path, (int)getpid());
    if (!(w->f = fopen(w->tmp, "wb"))) return tm_fail(err, "%s: %s", w->tmp, strerror(errno));
    return 0;
}

int io_atomic_commit(io_atomic *w, tm_error *err) {
    if (w->direct) {  // a device or pipe: flush it; there is nothing to rename or sync
        int ok = !ferror(w->f) && fflush(w->f) == 0, e = errno;
        if (fclose(w->f)) ok = 0, e = errno;
        w->f = NULL;
        return ok ? 0 : tm_fail(err, "%s: write failed: %s", w->path, strerror(e));
    }
    int ok = !ferror(w->f) && fflush(w->f) == 0 && fsync(fileno(w->f)) == 0;
    int e = errno;
    if (fclose(w->f)) ok = 0, e = errno;
    w->f = NULL;
    if (!ok) { unlink(w->tmp); return tm_fail(err, "%s: write failed: %s", w->path, strerror(e)); }
    if (rename(w->tmp, w->path)) { e = errno; unlink(w->tmp); return tm_fail(err, "%s: rename failed: %s", w->path, strerror(e)); }
    // the rename is durable only once the directory holding the new name is synced
    char dir[4096];
    dir_of(dir, sizeof dir, w->path);
    return io_fsync_dir(dir, err);
}

void io_atomic_abort(io_atomic *w) {
    if (w->f) { fclose(w->f); if (!w->direct) unlink(w->tmp); }
    w->f = NULL;
}

int io_write_file_atomic(const char *path, const void *data, size_t len, tm_error *err) {
    io_atomic w;
    if (io_atomic_open(&w, path, err)) return -1;
    if (len && fwrite(data, 1, len, w.f) != len) {
        int e = errno;
        io_atomic_abort(&w);
        return tm_fail(err, "%s: write failed: %s", path, strerror(e));
    }
    return io_atomic_commit(&w, err);
}

int io_mkdirs(const char *path, tm_error *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return tm_fail(err, "%s: path too long", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return tm_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!io_is_dir(path)) return tm_fail(err, "%s: exists and is not a directory", path);
    return 0;
}

int io_exists(const char *path) { struct stat st; return stat(path, &st) == 0; }
int io_is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

int io_copy_file(const char *src, const char *dst, tm_error *err) {
    size_t n;
    char *data = io_read_file(src, &n, err);
    if (!data) return -1;
    int rc = io_write_file_atomic(dst, data, n, err);
    free(data);
    return rc;
}

char *io_join(char *out, size_t cap, const char *dir, const char *name) {
    size_t dl = strlen(dir);
    if (dl && dir[dl - 1] == '/') snprintf(out, cap, "%s%s", dir, name);
    else snprintf(out, cap, "%s/%s", dir, name);
    return out;
}

int io_lines_open(io_lines *r, const char *path, tm_error *err) {
    memset(r, 0, sizeof *r);
    r->f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!r->f) return tm_fail(err, "%s: %s", path, strerror(errno));
    r->path = path;
    return 0;
}

long io_lines_next(io_lines *r, char **line) {
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0) return -1;
    r->lineno++;
    // a UTF-8 byte order mark (Windows editors write one) is not part of the first line
    if (r->lineno == 1 && n >= 3 && !memcmp(r->buf, "\xef\xbb\xbf", 3)) {
        memmove(r->buf, r->buf + 3, (size_t)n - 2);
        n -= 3;
    }
    while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r')) r->buf[--n] = 0;
    *line = r->buf;
    return (long)n;
}

void io_lines_close(io_lines *r) {
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}
