// TensorBoard event files (see tfevents.h for the format).
#include "base/tfevents.h"
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/io.h"

uint32_t tfevents_crc32c(const void *data, size_t n) {
    // the reflected polynomial 0x82f63b78, one table built on first use
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t masked_crc(const void *data, size_t n) {
    uint32_t c = tfevents_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// ---- the protobuf wire format, just what Event needs ----

typedef struct pb {
    uint8_t buf[1024];
    size_t n;
} pb;

static void pb_bytes(pb *b, const void *p, size_t n) {
    if (b->n + n <= sizeof b->buf) memcpy(b->buf + b->n, p, n);
    b->n += n;  // an overflow shows as n > sizeof buf; callers check
}

static void pb_varint(pb *b, uint64_t v) {
    uint8_t tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_bytes(b, tmp, k);
}

static void pb_le(pb *b, uint64_t v, int bytes) {
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    pb_bytes(b, tmp, (size_t)bytes);
}

// field number f with wire type t (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32)
static void pb_key(pb *b, int f, int t) { pb_varint(b, (uint64_t)(f << 3 | t)); }

static void pb_double(pb *b, int f, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    pb_key(b, f, 1);
    pb_le(b, u, 8);
}

static void pb_float(pb *b, int f, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    pb_key(b, f, 5);
    pb_le(b, u, 4);
}

static void pb_len(pb *b, int f, const void *p, size_t n) {
    pb_key(b, f, 2);
    pb_varint(b, n);
    pb_bytes(b, p, n);
}

static int write_record(tm_tfevents *w, const pb *e, tm_error *err) {
    if (e->n > sizeof e->buf) return tm_fail(err, "%s: an event of %zu bytes is too large", w->path, e->n);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)e->n >> (8 * i));
    uint32_t c1 = masked_crc(len, 8), c2 = masked_crc(e->buf, e->n);
    uint8_t crc[2][4];
    for (int i = 0; i < 4; i++) crc[0][i] = (uint8_t)(c1 >> (8 * i)), crc[1][i] = (uint8_t)(c2 >> (8 * i));
    if (fwrite(len, 1, 8, w->f) != 8 || fwrite(crc[0], 1, 4, w->f) != 4 || fwrite(e->buf, 1, e->n, w->f) != e->n ||
        fwrite(crc[1], 1, 4, w->f) != 4)
        return tm_fail(err, "%s: %s", w->path, strerror(errno));
    return 0;
}

int tfevents_open(tm_tfevents *w, const char *logdir, tm_error *err) {
    memset(w, 0, sizeof *w);
    if (io_mkdirs(logdir, err)) return -1;
    char host[256] = "localhost", name[512];
    gethostname(host, sizeof host - 1);
    double now = (double)time(NULL);
    snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%d.0", (long long)now, host, (int)getpid());
    io_join(w->path, sizeof w->path, logdir, name);
    w->f = fopen(w->path, "wb");
    if (!w->f) return tm_fail(err, "%s: %s", w->path, strerror(errno));
    pb e = {.n = 0};
    static const char version[] = "brain.Event:2";
    pb_double(&e, 1, now);
    pb_len(&e, 3, version, sizeof version - 1);
    if (write_record(w, &e, err) || tfevents_flush(w, err)) { tfevents_close(w); return -1; }
    return 0;
}

int tfevents_scalar(tm_tfevents *w, const char *tag, double value, int64_t step, double wall_time, tm_error *err) {
    size_t tl = strlen(tag);
    if (tl > 512) return tm_fail(err, "%s: tag \"%.40s...\" is longer than 512 bytes", w->path, tag);
    pb v = {.n = 0}, s = {.n = 0}, e = {.n = 0};
    pb_len(&v, 1, tag, tl);
    pb_float(&v, 2, (float)value);
    pb_len(&s, 1, v.buf, v.n);
    pb_double(&e, 1, wall_time);
    pb_key(&e, 2, 0);
    pb_varint(&e, (uint64_t)step);
    pb_len(&e, 5, s.buf, s.n);
    return write_record(w, &e, err);
}

int tfevents_flush(tm_tfevents *w, tm_error *err) {
    if (fflush(w->f)) return tm_fail(err, "%s: %s", w->path, strerror(errno));
    return 0;
}

void tfevents_close(tm_tfevents *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
}
