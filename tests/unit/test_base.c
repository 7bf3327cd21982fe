// Tests for base/: JSON parsing and writing, the JSONL line append, RNG determinism.
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"
#include "base/rng.h"
#include "test.h"

static void test_parse(void) {
    tm_error err = {0};
    const char *t = "{\"a\": [1, -2.5e3, true, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"big\": 12345678901234567890, \"a\": 7}";
    json_doc *d = json_parse(t, strlen(t), &err);
    CHECK(d != NULL, "json parses a nested object (%s)", err.msg);
    if (!d) return;
    json *r = json_root(d);
    CHECK(json_get_int(r, "a", 0) == 7, "json duplicate key: last wins");
    CHECK(!strcmp(json_get_str(r, "s", ""), "x\xc3\xa9\xf0\x9f\x98\x80\n"), "json decodes \\u escapes and surrogate pairs");
    json *big = json_get(r, "big");
    CHECK(big && !strcmp(big->str, "12345678901234567890"), "json keeps number source text");
    CHECK(r->items[0].n == 4 && r->items[0].items[1].num == -2500.0, "json array items");
    json_doc_free(d);

    const char *bad[] = {"{", "{\"a\" 1}", "[1,]", "\"abc", "01", "{\"a\":1} x", "[1 2]", "tru", "-", "1.", "\"\\x\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_doc *b = json_parse(bad[i], strlen(bad[i]), &err);
        CHECK(b == NULL && strstr(err.msg, "line 1, column"), "json rejects %s with a located error (%s)", bad[i], err.msg);
        json_doc_free(b);
    }
    json_doc *m = json_parse("{\n  \"a\": 1,\n  \"b\": ]\n}", 20, &err);
    CHECK(m == NULL && strstr(err.msg, "line 3"), "json error names the line (%s)", err.msg);
}

static void test_write(void) {
    sbuf b;
    sbuf_init(&b);
    sbuf_json_str(&b, "a\"b\\c\n\x01", 7);
    CHECK(!strcmp(b.data, "\"a\\\"b\\\\c\\n\\u0001\""), "sbuf_json_str escapes (%s)", b.data);
    sbuf_clear(&b);
    sbuf_json_float(&b, -1.5f);
    sbuf_puts(&b, " ");
    sbuf_json_float(&b, 0.1f);
    sbuf_puts(&b, " ");
    sbuf_json_float(&b, 3.0);
    CHECK(!strcmp(b.data, "-1.5 0.1 3.0"), "sbuf_json_float shortest round-trip (%s)", b.data);
    sbuf_clear(&b);
    const char *line = "{\"prompt\": \"x\"}  ";
    CHECK(json_line_append(&b, line, strlen(line), "logprob", "-1.25") == 0 &&
              !strcmp(b.data, "{\"prompt\": \"x\", \"logprob\": -1.25}"),
          "json_line_append keeps the user's bytes (%s)", b.data);
    sbuf_clear(&b);
    CHECK(json_line_append(&b, "{}", 2, "k", "1") == 0 && !strcmp(b.data, "{\"k\": 1}"), "json_line_append on {}");
    sbuf_free(&b);
}

static void test_rng(void) {
    rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    int same = 1;
    double mean = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t x = rng_u64(&a), y = rng_u64(&b);
        same &= x == y;
        mean += rng_float(&a);
        rng_float(&b);
    }
    CHECK(same, "rng same seed, same stream");
    CHECK(fabs(mean / 10000 - 0.5) < 0.02, "rng uniform mean %.4f", mean / 10000);
}

// The atomic writer and the line reader: a committed file holds the whole new text
// and no temporary is left; an aborted one leaves the old file; a missing directory
// is an error naming the path; a UTF-8 byte order mark is not part of line 1.
static void test_io(void) {
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/temper-test-io-%d", (int)getpid());
    tm_error err;
    CHECK(io_mkdirs(dir, &err) == 0, "io_mkdirs %s", dir);
    snprintf(path, sizeof path, "%s/f.txt", dir);
    CHECK(io_write_file_atomic(path, "old\n", 4, &err) == 0, "io_write_file_atomic writes");
    io_atomic w;
    int rc = io_atomic_open(&w, path, &err);
    if (!rc) fputs("new", w.f);
    if (!rc) io_atomic_abort(&w);
    char *t = io_read_file(path, NULL, &err);
    CHECK(!rc && t && !strcmp(t, "old\n") && !io_exists(w.tmp), "io_atomic_abort keeps the old file and removes the temporary");
    free(t);
    rc = io_atomic_open(&w, path, &err);
    if (!rc) fputs("{\"a\": 1}\n", w.f);
    rc = rc ? rc : io_atomic_commit(&w, &err);
    t = io_read_file(path, NULL, &err);
    CHECK(!rc && t && !strcmp(t, "{\"a\": 1}\n") && !io_exists(w.tmp), "io_atomic_commit replaces the file, no temporary left");
    free(t);
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/f.txt", dir);
    CHECK(io_write_file_atomic(nodir, "x", 1, &err) != 0 && strstr(err.msg, "no/such/f.txt"), "a missing directory is an error naming it (%s)", err.msg);
    io_write_file_atomic(path, "\xef\xbb\xbf{\"a\": 1}\n{\"b\": 2}\n", 22, &err);
    io_lines in;
    char *line;
    long n1 = -1, n2 = -1;
    if (!io_lines_open(&in, path, &err)) {
        n1 = io_lines_next(&in, &line);
        int first = n1 == 8 && !strcmp(line, "{\"a\": 1}");
        n2 = io_lines_next(&in, &line);
        CHECK(first && n2 == 8 && in.lineno == 2, "io_lines drops a UTF-8 byte order mark from line 1 only (%ld, %ld)", n1, n2);
        io_lines_close(&in);
    }
    unlink(path);
    // not a regular file: written in place, never renamed over (a device stays a device)
    struct stat st;
    rc = io_write_file_atomic("/dev/null", "x\n", 2, &err);
    CHECK(!rc && stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "io_write_file_atomic to /dev/null keeps the device (%s)", rc ? err.msg : "");
    rc = io_atomic_open(&w, "/dev/null", &err);
    if (!rc) io_atomic_abort(&w);
    CHECK(!rc && stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "io_atomic_abort on a device removes nothing");
    char link[160];
    snprintf(link, sizeof link, "%s/link.txt", dir);
    io_write_file_atomic(path, "old\n", 4, &err);
    rc = symlink("f.txt", link);
    rc = rc ? rc : io_write_file_atomic(link, "new\n", 4, &err);
    t = io_read_file(path, NULL, &err);
    CHECK(!rc && lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && t && !strcmp(t, "new\n"), "a symlink stays a link; its target gets the new content");
    free(t);
    unlink(link);
    unlink(path);
    CHECK(io_write_file_atomic(dir, "x", 1, &err) != 0 && strstr(err.msg, "is a directory"), "a directory as the output is an error naming it (%s)", err.msg);
    rmdir(dir);
}

int main(void) {
    test_io();
    test_parse();
    test_write();
    test_rng();
    return test_done();
}
