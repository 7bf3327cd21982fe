#include "model/safetensors.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/io.h"
#include "base/json.h"

static const struct { const char *name; st_dtype dt; int size; } dtypes[] = {
    {"F32", ST_F32, 4}, {"BF16", ST_BF16, 2}, {"F16", ST_F16, 2},
    // known but not loadable as weights; sizes still let us validate offsets
    {"F64", ST_OTHER, 8}, {"I64", ST_OTHER, 8}, {"I32", ST_OTHER, 4}, {"I16", ST_OTHER, 2}, {"I8", ST_OTHER, 1},
    {"U8", ST_OTHER, 1}, {"BOOL", ST_OTHER, 1}, {"U16", ST_OTHER, 2}, {"U32", ST_OTHER, 4}, {"U64", ST_OTHER, 8},
    {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

static void free_tensors(st_file *f) {
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->ntensors = 0;
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

int st_parse(st_file *f, const uint8_t *buf, size_t buf_size, size_t file_size, const char *path, tm_error *err) {
    f->tensors = NULL;
    f->ntensors = 0;
    if (file_size < 8 || buf_size < 8) return tm_fail(err, "%s: truncated safetensors file (%zu bytes, no header size)", path, file_size);
    uint64_t hs = 0;
    for (int i = 7; i >= 0; i--) hs = hs << 8 | buf[i];
    if (hs > file_size - 8) return tm_fail(err, "%s: header length %llu runs past the end of the file (%zu bytes)", path, (unsigned long long)hs, file_size);
    if (hs > buf_size - 8) return tm_fail(err, "%s: header truncated", path);
    if (hs > 100u << 20) return tm_fail(err, "%s: header length %llu is implausibly large", path, (unsigned long long)hs);
    tm_error jerr;
    json_doc *d = json_parse((const char *)buf + 8, (size_t)hs, &jerr);
    if (!d) return tm_fail(err, "%s: header is not valid JSON: %s", path, jerr.msg);
    json *r = json_root(d);
    if (r->type != JSON_OBJECT) { json_doc_free(d); return tm_fail(err, "%s: header is not a JSON object", path); }
    uint64_t data_size = file_size - 8 - hs;
    f->tensors = calloc((size_t)r->n + 1, sizeof(st_tensor));
    if (!f->tensors) { json_doc_free(d); return tm_fail(err, "%s: out of memory", path); }
    int rc = 0;
    for (int i = 0; i < r->n && !rc; i++) {
        const char *name = r->keys[i];
        json *v = &r->items[i];
        if (!strcmp(name, "__metadata__")) continue;
        st_tensor *t = &f->tensors[f->ntensors];
        if (v->type != JSON_OBJECT) { rc = tm_fail(err, "%s: tensor %s: entry is not an object", path, name); break; }
        const char *dt = json_get_str(v, "dtype", NULL);
        json *shape = json_get(v, "shape"), *off = json_get(v, "data_offsets");
        if (!dt || !shape || shape->type != JSON_ARRAY || !off || off->type != JSON_ARRAY || off->n != 2) {
            rc = tm_fail(err, "%s: tensor %s: needs dtype, shape and data_offsets [begin, end]", path, name);
            break;
        }
        int size = 0;
        for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
            if (!strcmp(dt, dtypes[k].name)) { t->dtype = dtypes[k].dt; size = dtypes[k].size; }
        if (!size) { rc = tm_fail(err, "%s: tensor %s: unknown dtype \"%.20s\"", path, name, dt); break; }
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt);
        if (shape->n > 8) { rc = tm_fail(err, "%s: tensor %s: more than 8 dimensions", path, name); break; }
        t->ndim = shape->n;
        int64_t numel = 1;
        for (int k = 0; k < shape->n; k++) {
            json *s = &shape->items[k];
            if (!json_is_int(s) || s->num < 0 || s->num > 1e15) { rc = tm_fail(err, "%s: tensor %s: bad shape", path, name); break; }
            t->shape[k] = (int64_t)s->num;
            if (t->shape[k] && numel > INT64_MAX / 16 / t->shape[k]) { rc = tm_fail(err, "%s: tensor %s: shape too large", path, name); break; }
            numel *= t->shape[k];
        }
        if (rc) break;
        t->numel = numel;
        json *b = &off->items[0], *e = &off->items[1];
        if (!json_is_int(b) || !json_is_int(e) || b->num < 0 || e->num < b->num) {
            rc = tm_fail(err, "%s: tensor %s: bad data_offsets", path, name);
            break;
        }
        t->begin = (uint64_t)b->num;
        t->end = (uint64_t)e->num;
        if (t->end > data_size) {
            rc = tm_fail(err, "%s: tensor %s: data_offsets [%llu, %llu] out of range (data section is %llu bytes; file truncated?)",
                         path, name, (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_size);
            break;
        }
        if (t->end - t->begin != (uint64_t)numel * (uint64_t)size) {
            rc = tm_fail(err, "%s: tensor %s: %llu bytes for %s of %lld elements", path, name,
                         (unsigned long long)(t->end - t->begin), dt, (long long)numel);
            break;
        }
        t->name = strdup(name);
        if (!t->name) { rc = tm_fail(err, "%s: out of memory", path); break; }
        f->ntensors++;
    }
    json_doc_free(d);
    if (!rc && f->ntensors > 1) {
        // overlap check: sort by begin
        st_tensor **order = malloc((size_t)f->ntensors * sizeof *order);
        if (!order) rc = tm_fail(err, "%s: out of memory", path);
        else {
            for (int i = 0; i < f->ntensors; i++) order[i] = &f->tensors[i];
            qsort(order, (size_t)f->ntensors, sizeof *order, cmp_begin);
            const st_tensor *reach = NULL;  // the tensor reaching furthest so far
            for (int i = 0; i < f->ntensors && !rc; i++) {
                const st_tensor *t = order[i];
                if (t->end == t->begin) continue;  // empty tensors occupy nothing
                if (reach && t->begin < reach->end)
                    rc = tm_fail(err, "%s: tensors %s and %s overlap", path, reach->name, t->name);
                if (!reach || t->end > reach->end) reach = t;
            }
            free(order);
        }
    }
    if (!rc) {  // duplicate names
        for (int i = 0; i < f->ntensors && !rc; i++)
            for (int j = i + 1; j < f->ntensors && !rc && f->ntensors < 5000; j++)
                if (!strcmp(f->tensors[i].name, f->tensors[j].name)) rc = tm_fail(err, "%s: tensor %s appears twice", path, f->tensors[i].name);
    }
    if (rc) { free_tensors(f); return -1; }
    f->data_offset = 8 + (size_t)hs;
    return 0;
}

int st_open(st_file *f, const char *path, tm_error *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tm_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) { close(fd); return tm_fail(err, "%s: %s", path, strerror(errno)); }
    size_t size = (size_t)st.st_size;
    if (size < 8) { close(fd); return tm_fail(err, "%s: truncated safetensors file (%zu bytes, no header size)", path, size); }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) { close(fd); return tm_fail(err, "%s: mmap failed: %s", path, strerror(errno)); }
    if (st_parse(f, map, size, size, path, err)) { munmap(map, size); close(fd); return -1; }
    f->fd = fd;
    f->map = map;
    f->size = size;
    f->path = strdup(path);
    return 0;
}

void st_close(st_file *f) {
    if (f->map) munmap((void *)f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    free_tensors(f);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t st_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1);  // round to nearest even, as torch does
    return (uint16_t)(u >> 16);
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else {  // subnormal: normalize
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) u = sign | 0x7f800000u | man << 13;
    else u = sign | (exp + 112) << 23 | man << 13;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t st_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - exp;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)exp << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *dst, tm_error *err) {
    const uint8_t *src = f->map + f->data_offset + t->begin;
    switch (t->dtype) {
    case ST_F32: memcpy(dst, src, (size_t)t->numel * 4); return 0;
    case ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = st_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return 0;
    case ST_F16:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = st_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return 0;
    default: return tm_fail(err, "%s: tensor %s: dtype %s cannot be loaded as weights (F32, BF16, F16)", f->path, t->name, t->dtype_name);
    }
}

int st_write(const char *path, const st_out_tensor *ts, int n, st_dtype dtype, tm_error *err) {
    return st_write_fill(path, ts, n, dtype, NULL, NULL, err);
}

int st_write_fill(const char *path, const st_out_tensor *ts, int n, st_dtype dtype, st_fill_fn fill, void *ctx, tm_error *err) {
    int esize = dtype == ST_F32 ? 4 : 2;
    const char *dname = dtype == ST_F32 ? "F32" : dtype == ST_BF16 ? "BF16" : "F16";
    sbuf h;
    sbuf_init(&h);
    sbuf_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int k = 0; k < ts[i].ndim; k++) numel *= ts[i].shape[k];
        sbuf_puts(&h, ",");
        sbuf_json_str(&h, ts[i].name, strlen(ts[i].name));
        sbuf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dname);
        for (int k = 0; k < ts[i].ndim; k++) sbuf_printf(&h, "%s%lld", k ? "," : "", (long long)ts[i].shape[k]);
        sbuf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + (uint64_t)numel * esize));
        off += (uint64_t)numel * esize;
    }
    sbuf_puts(&h, "}");
    while (h.len % 8) sbuf_puts(&h, " ");  // data section starts 8-byte aligned, as the reference writer does

    if (sbuf_check(&h, err)) { sbuf_free(&h); return tm_fail_prefix(err, "%s", path); }
    io_atomic w;
    if (io_atomic_open(&w, path, err)) { sbuf_free(&h); return -1; }
    FILE *fp = w.f;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h.data, 1, h.len, fp) == h.len;
    sbuf_free(&h);
    enum { CHUNK = 1 << 16 };
    static _Thread_local uint16_t half[CHUNK];
    static _Thread_local float chunk[CHUNK];  // a filled tensor's values, one chunk at a time
    for (int i = 0; i < n && ok; i++) {
        int64_t numel = 1;
        for (int k = 0; k < ts[i].ndim; k++) numel *= ts[i].shape[k];
        if (dtype == ST_F32 && !fill) { ok = fwrite(ts[i].data, 4, (size_t)numel, fp) == (size_t)numel; continue; }
        for (int64_t s = 0; s < numel && ok; s += CHUNK) {
            int64_t m = numel - s < CHUNK ? numel - s : CHUNK;
            const float *src = ts[i].data + s;
            if (fill) fill(ctx, i, s, m, chunk), src = chunk;
            if (dtype == ST_F32) { ok = fwrite(src, 4, (size_t)m, fp) == (size_t)m; continue; }
            for (int64_t j = 0; j < m; j++) half[j] = dtype == ST_BF16 ? st_f32_to_bf16(src[j]) : st_f32_to_f16(src[j]);
            ok = fwrite(half, 2, (size_t)m, fp) == (size_t)m;
        }
    }
    if (!ok) { int e = errno; io_atomic_abort(&w); return tm_fail(err, "%s: write failed: %s", path, strerror(e)); }
    return io_atomic_commit(&w, err);
}
