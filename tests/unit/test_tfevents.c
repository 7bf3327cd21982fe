// base/tfevents: CRC-32C against its published check values, and the bytes of one
// scalar event against a hand-encoded Event (the Python oracle, tests/oracle/
// test_tfevents.py, decodes a whole run's file with protobuf).
#include <dirent.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "base/tfevents.h"
#include "test.h"

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

int main(void) {
    CHECK(tfevents_crc32c("123456789", 9) == 0xe3069283u, "crc32c(\"123456789\") = 0xe3069283 (the CRC-32C check value)");
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    CHECK(tfevents_crc32c(zeros, 32) == 0x8a9136aau, "crc32c of 32 zero bytes = 0x8a9136aa (RFC 3720 B.4)");
    CHECK(tfevents_crc32c(ones, 32) == 0x62a8ab43u, "crc32c of 32 0xff bytes = 0x62a8ab43 (RFC 3720 B.4)");

    char dir[] = "/tmp/temper-tfevents-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "a temporary directory");
    tm_tfevents w;
    tm_error err;
    char logdir[256];
    snprintf(logdir, sizeof logdir, "%s/runs/x", dir);
    int rc = tfevents_open(&w, logdir, &err) || tfevents_scalar(&w, "a", 0.5, 3, 1.5, &err) || tfevents_flush(&w, &err);
    CHECK(rc == 0, "open, one scalar, flush (%s)", rc ? err.msg : "");
    tfevents_close(&w);
    CHECK(strstr(w.path, "/runs/x/events.out.tfevents.") != NULL, "the file is named as TensorBoard's writers name it: %s", w.path);
    size_t n = 0;
    uint8_t *f = (uint8_t *)io_read_file(w.path, &n, &err);
    CHECK(f != NULL, "the file reads back");
    if (!f) return test_done();
    // record 1: file_version; record 2: the scalar
    size_t off = 0;
    int records = 0, crc_ok = 1;
    const uint8_t *data[2] = {0};
    uint64_t lens[2] = {0};
    while (off + 12 <= n && records < 2) {
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) len |= (uint64_t)f[off + i] << (8 * i);
        crc_ok &= le32(f + off + 8) == masked(tfevents_crc32c(f + off, 8));
        if (off + 12 + len + 4 > n) break;
        crc_ok &= le32(f + off + 12 + len) == masked(tfevents_crc32c(f + off + 12, len));
        data[records] = f + off + 12;
        lens[records++] = len;
        off += 12 + len + 4;
    }
    CHECK(records == 2 && off == n, "two whole records and nothing else (%d records, %zu of %zu bytes)", records, off, n);
    CHECK(crc_ok, "both masked CRC32Cs of both records check");
    static const char version[] = "brain.Event:2";
    CHECK(records >= 1 && lens[0] == 9 + 2 + 13 && data[0][0] == 0x09 && data[0][9] == 0x1a && data[0][10] == 13 &&
              !memcmp(data[0] + 11, version, 13),
          "record 1: wall_time (field 1, double) and file_version (field 3) \"brain.Event:2\"");
    // Event{wall_time: 1.5, step: 3, summary: {value: [{tag: "a", simple_value: 0.5}]}}
    static const uint8_t want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,  // 1: double 1.5
                                   0x10, 0x03,                             // 2: varint 3
                                   0x2a, 0x0a,                             // 5: Summary, 10 bytes
                                   0x0a, 0x08,                             //   1: Value, 8 bytes
                                   0x0a, 0x01, 'a',                        //     1: tag "a"
                                   0x15, 0, 0, 0, 0x3f};                   //     2: float 0.5
    CHECK(records == 2 && lens[1] == sizeof want && !memcmp(data[1], want, sizeof want),
          "record 2: the scalar's Event, byte for byte as hand-encoded from event.proto / summary.proto");
    free(f);
    unlink(w.path);
    rmdir(logdir);
    snprintf(logdir, sizeof logdir, "%s/runs", dir);
    rmdir(logdir);
    rmdir(dir);
    return test_done();
}
