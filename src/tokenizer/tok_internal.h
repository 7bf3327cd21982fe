// tokenizer internals shared by the files of src/tokenizer/ (not a public API).
#pragma once
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdint.h>
#include "tokenizer/tokenizer.h"

// ---- hash tables (tok_hash.c) ----
// Byte string → int32 (the 150k-260k vocabularies, the word cache). Keys are copied
// into the table's own blob.
typedef struct tok_strent { uint32_t off, len; int32_t val; } tok_strent;
typedef struct tok_strmap {
    uint64_t *slots;      // 0 = empty, else (hash >> 32) << 32 | (entry index + 1)
    uint32_t mask;
    uint32_t n, cap;
    tok_strent *ent;
    char *blob;
    size_t blob_len, blob_cap;
    int failed;           // an allocation failed: later puts do nothing (check after building)
} tok_strmap;
int tok_strmap_init(tok_strmap *m, uint32_t expected, size_t blob_bytes);
void tok_strmap_free(tok_strmap *m);
// Inserts or overwrites.
void tok_strmap_put(tok_strmap *m, const char *k, size_t n, int32_t v);
// Returns the value or -1.
int32_t tok_strmap_get(const tok_strmap *m, const char *k, size_t n);
// count lookups at once (out[j] = tok_strmap_get(m, k[j], n[j])), with their cache
// misses overlapped: for bulk work such as resolving the merges at load time.
void tok_strmap_get_many(const tok_strmap *m, const char *const *k, const size_t *n, int count, int32_t *out);

// (a, b) id pair → (rank, merged id).
typedef struct tok_pairmap {
    uint64_t *keys;   // UINT64_MAX = empty
    uint32_t *rank;
    int32_t *merged;
    uint32_t mask, n;
    int failed;       // as tok_strmap's
} tok_pairmap;
int tok_pairmap_init(tok_pairmap *m, uint32_t expected);
void tok_pairmap_free(tok_pairmap *m);
void tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged);
// Returns 1 and fills rank/merged when present.
static inline uint64_t tok_pair_hash(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
}
static inline int tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, uint32_t *rank,
                                  int32_t *merged) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = (uint32_t)tok_pair_hash(k) & m->mask;
    for (;;) {
        uint64_t s = m->keys[i];
        if (s == k) { *rank = m->rank[i]; *merged = m->merged[i]; return 1; }
        if (s == UINT64_MAX) return 0;
        i = (i + 1) & m->mask;
    }
}

// ---- pipeline components ----
enum { NORM_NFC, NORM_NFKC, NORM_NFD, NORM_NFKD, NORM_REPLACE, NORM_PREPEND, NORM_LOWERCASE };
typedef struct tok_norm {
    int kind;
    char *pattern, *content;  // Replace: pattern → content; Prepend: content
} tok_norm;

enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum { PRE_SPLIT, PRE_METASPACE, PRE_DIGITS, PRE_BYTELEVEL_PREFIX };
typedef struct tok_pre {
    int kind;
    pcre2_code *re;           // PRE_SPLIT with a regex (or a literal compiled as one)
    int behavior;
    int invert;
    // Metaspace
    char *replacement;        // "▁"
    int prepend;              // 0 never, 1 always, 2 first
    int split;
    int individual_digits;    // Digits
} tok_pre;

enum { DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE };
typedef struct tok_dec {
    int kind;
    char *pattern, *content;  // Replace
    int strip_start, strip_stop; // Strip (content[0..] is the char)
    int prepend;              // Metaspace: strip the leading space of the first token
} tok_dec;

typedef struct tok_added {
    char *content;
    size_t len;
    int32_t id;
    int special, normalized, lstrip, rstrip, single_word;
} tok_added;

// A byte trie over added-token contents for leftmost-longest matching.
typedef struct tok_trie {
    int32_t *child_first;  // per node: first child edge, -1 none
    int32_t *edge_next;    // per edge (= per child node): next sibling
    uint8_t *edge_byte;    // per child node: its byte
    int32_t *term;         // per node: added index or -1
    int nnodes, cap;
    uint8_t first[256];    // bytes that start some token
} tok_trie;

struct tok_tokenizer {
    // model
    tok_strmap vocab;          // token bytes (raw bytes in byte-level mode) → id
    tok_pairmap merges;
    int byte_level;            // ByteLevel pre-tokenizer present: BPE runs on raw bytes
    int32_t byte_id[256];      // byte-level: id of each single byte token
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;
    int32_t fallback_id[256];  // <0xNN> ids (-1 if missing)
    char *cont_prefix, *end_suffix;

    // id → token string (as in tokenizer.json) and → bytes it decodes to in
    // byte-level mode
    int vocab_size;
    char **id_tok;             // into id_blob, or an added token's content
    char *id_blob;
    uint32_t *id_tok_len;
    uint8_t *id_special;       // added and special
    uint8_t *id_added;

    tok_added *added;
    int nadded;
    tok_trie trie_raw, trie_norm;

    tok_norm *norms;
    int nnorms;
    tok_pre *pres;
    int npres;
    int bl_add_prefix_space;   // ByteLevel add_prefix_space
    tok_dec *decs;
    int ndecs;

    // post-processor (single): ids before and after the sequence
    tok_ids post_pre, post_post;

    // config
    char *bos_token, *eos_token, *pad_token, *chat_template;
    struct jinja_tmpl *chat_jinja;   // chat_template parsed (NULL: none, or chat_jinja_err says why)
    char chat_jinja_err[1024];
    json_doc *chat_kwargs;           // tok_set_chat_kwargs
    int32_t bos_id, eos_id, pad_id;

    // word cache: word bytes → slot in cache_ids
    tok_strmap cache;
    tok_ids cache_ids;
    uint32_t *cache_off, *cache_cnt;
    uint32_t cache_n, cache_cap;

    // scratch
    pcre2_match_data *md;
};

// GPT-2's byte ↔ unicode table.
extern const uint16_t tok_byte_to_cp[256];
int tok_cp_to_byte(uint32_t cp);   // -1 when cp is not in the table

// UTF-8 helpers
int tok_utf8_len(unsigned char c);                         // sequence length from the lead byte (1 on invalid)
size_t tok_utf8_valid_prefix(const char *s, size_t n);     // length of the longest valid prefix
uint32_t tok_utf8_decode(const char *s, size_t n, int *adv);
int tok_utf8_encode(uint32_t cp, char *out);
// Rust's String::from_utf8_lossy: appends s with invalid sequences → U+FFFD.
void tok_utf8_lossy(sbuf *out, const char *s, size_t n);
