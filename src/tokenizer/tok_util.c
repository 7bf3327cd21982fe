// tokenizer: hash tables for the vocabulary, merges and word cache; UTF-8 helpers;
// GPT-2's byte↔unicode table.
#include <stdlib.h>
#include <string.h>
#include "tokenizer/tok_internal.h"

// The growable arrays and maps here mark themselves failed when an allocation fails
// (see tok_ids in tokenizer.h): later writes do nothing, and the function that
// finishes the structure reports "out of memory" once.
static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t first, int *failed) {
    if (*failed) return -1;
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : first;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) { *failed = 1; return -1; }
    *p = q;
    *cap = nc;
    return 0;
}

void tok_ids_push(tok_ids *a, int32_t id) {
    if (grow((void **)&a->v, &a->cap, a->n + 1, sizeof *a->v, 64, &a->failed)) return;
    a->v[a->n++] = id;
}
void tok_ids_append(tok_ids *a, const int32_t *ids, size_t n) {
    if (grow((void **)&a->v, &a->cap, a->n + n, sizeof *a->v, 64, &a->failed)) return;
    if (n) memcpy(a->v + a->n, ids, n * sizeof *ids);
    a->n += n;
}
void tok_ids_free(tok_ids *a) {
    free(a->v);
    memset(a, 0, sizeof *a);
}

// ---- string map ----
static uint64_t str_hash(const char *k, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, k + i, 8);
        h = (h ^ tok_pair_hash(w)) * 0x9E3779B97F4A7C15ULL;
    }
    uint64_t w = 0;
    memcpy(&w, k + i, n - i);
    h = (h ^ tok_pair_hash(w ^ n)) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

int tok_strmap_init(tok_strmap *m, uint32_t expected, size_t blob_bytes) {
    memset(m, 0, sizeof *m);
    uint32_t slots = 16;
    while (slots < expected * 2) slots <<= 1;
    m->slots = calloc(slots, sizeof *m->slots);
    m->mask = slots - 1;
    m->cap = expected > 16 ? expected : 16;
    m->ent = malloc(m->cap * sizeof *m->ent);
    m->blob_cap = blob_bytes > 4096 ? blob_bytes : 4096;
    m->blob = malloc(m->blob_cap);
    if (!m->slots || !m->ent || !m->blob) { tok_strmap_free(m); m->failed = 1; return -1; }
    return 0;
}
void tok_strmap_free(tok_strmap *m) {
    free(m->slots); free(m->ent); free(m->blob);
    memset(m, 0, sizeof *m);
}
static void strmap_grow(tok_strmap *m) {
    uint32_t slots = (m->mask + 1) * 2;
    uint64_t *ns = calloc(slots, sizeof *m->slots);
    if (!ns) { m->failed = 1; return; }  // still a valid table, only fuller
    free(m->slots);
    m->slots = ns;
    m->mask = slots - 1;
    for (uint32_t e = 0; e < m->n; e++) {
        uint64_t h = str_hash(m->blob + m->ent[e].off, m->ent[e].len);
        uint32_t i = (uint32_t)h & m->mask;
        while (m->slots[i]) i = (i + 1) & m->mask;
        m->slots[i] = (h >> 32 << 32) | (e + 1);
    }
}
static int32_t strmap_get_h(const tok_strmap *m, const char *k, size_t n, uint64_t h) {
    uint64_t tag = h >> 32 << 32;
    uint32_t i = (uint32_t)h & m->mask;
    for (;;) {
        uint64_t s = m->slots[i];
        if (!s) return -1;
        if ((s & 0xFFFFFFFF00000000ULL) == tag) {
            const tok_strent *e = &m->ent[(uint32_t)s - 1];
            if (e->len == n && !memcmp(m->blob + e->off, k, n)) return e->val;
        }
        i = (i + 1) & m->mask;
    }
}
int32_t tok_strmap_get(const tok_strmap *m, const char *k, size_t n) {
    if (!m->slots) return -1;
    return strmap_get_h(m, k, n, str_hash(k, n));
}
// A big table's lookups are cache misses (slot, entry, key bytes), taken one after
// another by tok_strmap_get. Here all slots of a group are prefetched, then the
// entries of the first probes, then their key bytes, so the misses overlap; loading
// Gemma 3's 515k merges (1.5M lookups) is several times faster this way.
void tok_strmap_get_many(const tok_strmap *m, const char *const *k, const size_t *n, int count, int32_t *out) {
    enum { G = 32 };
    uint64_t h[G];
    for (int g = 0; g < count; g += G) {
        int c = count - g < G ? count - g : G;
        if (!m->slots) { for (int j = 0; j < c; j++) out[g + j] = -1; continue; }
        for (int j = 0; j < c; j++) {
            h[j] = str_hash(k[g + j], n[g + j]);
            __builtin_prefetch(&m->slots[(uint32_t)h[j] & m->mask]);
        }
        for (int j = 0; j < c; j++) {
            uint64_t s = m->slots[(uint32_t)h[j] & m->mask];
            if (s) __builtin_prefetch(&m->ent[(uint32_t)s - 1]);
        }
        for (int j = 0; j < c; j++) {
            uint64_t s = m->slots[(uint32_t)h[j] & m->mask];
            if (s) __builtin_prefetch(m->blob + m->ent[(uint32_t)s - 1].off);
        }
        for (int j = 0; j < c; j++) out[g + j] = strmap_get_h(m, k[g + j], n[g + j], h[j]);
    }
}
void tok_strmap_put(tok_strmap *m, const char *k, size_t n, int32_t v) {
    if (m->failed || !m->slots) return;
    uint64_t h = str_hash(k, n), tag = h >> 32 << 32;
    uint32_t i = (uint32_t)h & m->mask;
    for (;;) {
        uint64_t s = m->slots[i];
        if (!s) break;
        if ((s & 0xFFFFFFFF00000000ULL) == tag) {
            tok_strent *e = &m->ent[(uint32_t)s - 1];
            if (e->len == n && !memcmp(m->blob + e->off, k, n)) { e->val = v; return; }
        }
        i = (i + 1) & m->mask;
    }
    size_t cap = m->cap;
    if (grow((void **)&m->ent, &cap, (size_t)m->n + 1, sizeof *m->ent, 1024, &m->failed)) return;
    m->cap = (uint32_t)cap;
    if (grow((void **)&m->blob, &m->blob_cap, m->blob_len + n + 1, 1, 65536, &m->failed)) return;
    memcpy(m->blob + m->blob_len, k, n);
    m->blob[m->blob_len + n] = 0;
    m->ent[m->n] = (tok_strent){(uint32_t)m->blob_len, (uint32_t)n, v};
    m->blob_len += n + 1;
    m->slots[i] = tag | ++m->n;
    if ((uint64_t)m->n * 2 > m->mask + 1) strmap_grow(m);
}

// ---- pair map ----
int tok_pairmap_init(tok_pairmap *m, uint32_t expected) {
    memset(m, 0, sizeof *m);
    uint32_t slots = 16;
    while (slots < expected * 2) slots <<= 1;
    m->keys = malloc((size_t)slots * sizeof *m->keys);
    m->rank = malloc((size_t)slots * sizeof *m->rank);
    m->merged = malloc((size_t)slots * sizeof *m->merged);
    if (!m->keys || !m->rank || !m->merged) { tok_pairmap_free(m); m->failed = 1; return -1; }
    memset(m->keys, 0xff, (size_t)slots * sizeof *m->keys);
    m->mask = slots - 1;
    return 0;
}
void tok_pairmap_free(tok_pairmap *m) {
    free(m->keys); free(m->rank); free(m->merged);
    memset(m, 0, sizeof *m);
}
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    if (m->failed || !m->keys) return;
    if ((uint64_t)(m->n + 1) * 2 > m->mask + 1) {  // grow
        tok_pairmap old = *m;
        if (tok_pairmap_init(m, (old.mask + 1))) { *m = old; m->failed = 1; return; }
        for (uint32_t i = 0; i <= old.mask; i++)
            if (old.keys[i] != UINT64_MAX)
                tok_pairmap_put(m, (int32_t)(old.keys[i] >> 32), (int32_t)(uint32_t)old.keys[i],
                                old.rank[i], old.merged[i]);
        tok_pairmap_free(&old);
    }
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)tok_pair_hash(k) & m->mask;
    while (m->keys[i] != UINT64_MAX && m->keys[i] != k) i = (i + 1) & m->mask;
    if (m->keys[i] == UINT64_MAX) m->n++;
    m->keys[i] = k;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

// ---- GPT-2 bytes_to_unicode ----
const uint16_t tok_byte_to_cp[256] = {
#define R(x) x
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271,
    272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287,
    288, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289,
    290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305,
    306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321,
    322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
#undef R
};

int tok_cp_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp >= 256 && cp <= 323) {
        static int16_t inv[68];
        static int ready;
        if (!ready) {
            for (int b = 0; b < 256; b++)
                if (tok_byte_to_cp[b] >= 256) inv[tok_byte_to_cp[b] - 256] = (int16_t)b;
            ready = 1;
        }
        return inv[cp - 256];
    }
    return -1;
}

// ---- UTF-8 ----
int tok_utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

// Length of a valid UTF-8 sequence at s (1..4), 0 if invalid; *need > 0 when the
// sequence is a valid but truncated prefix.
static int utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return 0;
    // Returns -(valid bytes) when the sequence is cut or broken after k bytes.
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return -i;
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -i;
    }
    return len;
}

size_t tok_utf8_valid_prefix(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        int l = utf8_seq((const unsigned char *)s + i, n - i);
        if (l <= 0) return i;
        i += (size_t)l;
    }
    return n;
}

uint32_t tok_utf8_decode(const char *s, size_t n, int *adv) {
    const unsigned char *u = (const unsigned char *)s;
    int l = utf8_seq(u, n);
    if (l <= 0) { *adv = 1; return 0xFFFD; }
    *adv = l;
    switch (l) {
    case 1: return u[0];
    case 2: return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    case 3: return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    default:
        return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
               ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    }
}

int tok_utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Rust's from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
void tok_utf8_lossy(sbuf *out, const char *s, size_t n) {
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) { i++; continue; }
        int l = utf8_seq((const unsigned char *)s + i, n - i);
        if (l > 0) { i += (size_t)l; continue; }
        sbuf_put(out, s + run, i - run);
        sbuf_put(out, "\xEF\xBF\xBD", 3);
        i += l == 0 ? 1 : (size_t)(-l);
        run = i;
    }
    sbuf_put(out, s + run, n - run);
}
