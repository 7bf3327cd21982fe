#include "model/batch.h"
#include <stdlib.h>
#include <string.h>

int batch_init(batch_builder *b, int cap_tokens, int cap_seqs, tm_error *err) {
    memset(b, 0, sizeof *b);
    b->cap_tokens = cap_tokens;
    b->cap_seqs = cap_seqs;
    b->tokens = malloc(sizeof(int) * (size_t)cap_tokens);
    b->targets = malloc(sizeof(int) * (size_t)cap_tokens);
    b->pos = malloc(sizeof(int) * (size_t)cap_tokens);
    b->cu_seqlens = calloc((size_t)cap_seqs + 1, sizeof(int));
    if (!b->tokens || !b->targets || !b->pos || !b->cu_seqlens) { batch_free(b); return tm_fail(err, "out of memory"); }
    return 0;
}

void batch_free(batch_builder *b) {
    free(b->tokens);
    free(b->targets);
    free(b->pos);
    free(b->cu_seqlens);
    free(b->pixel_values);
    free(b->grid_thw);
    memset(b, 0, sizeof *b);
}

void batch_clear(batch_builder *b) {
    b->n_tokens = b->n_seqs = 0;
    b->n_images = b->n_patches = 0;
    b->cu_seqlens[0] = 0;
}

int batch_add(batch_builder *b, const int *ids, const uint8_t *trained, int len) {
    if (len <= 0 || b->n_tokens + len > b->cap_tokens || b->n_seqs >= b->cap_seqs) return -1;
    int start = b->n_tokens;
    for (int t = 0; t < len; t++) {
        b->tokens[start + t] = ids[t];
        b->pos[start + t] = t;
        int next_trained = t + 1 < len && (trained ? trained[t + 1] : 1);
        b->targets[start + t] = next_trained ? ids[t + 1] : -1;
    }
    b->n_tokens += len;
    b->cu_seqlens[++b->n_seqs] = b->n_tokens;
    return start;
}

int batch_add_images(batch_builder *b, int n, const float *pixel_values, int n_patches, int dim, const int *grid_thw,
                     tm_error *err) {
    if (n <= 0) return 0;
    if (b->n_images && dim != b->patch_dim) return tm_fail(err, "an image's patches have %d values, the batch's %d", dim, b->patch_dim);
    size_t need = ((size_t)b->n_patches + (size_t)n_patches) * (size_t)dim;
    if (need > b->cap_pix) {
        float *p = realloc(b->pixel_values, sizeof(float) * need);
        if (!p) return tm_fail(err, "out of memory (%zu image values)", need);
        b->pixel_values = p, b->cap_pix = need;
    }
    if (b->n_images + n > b->cap_images) {
        int cap = (b->n_images + n) * 2;
        int *g = realloc(b->grid_thw, sizeof(int) * 3 * (size_t)cap);
        if (!g) return tm_fail(err, "out of memory");
        b->grid_thw = g, b->cap_images = cap;
    }
    memcpy(b->pixel_values + (size_t)b->n_patches * (size_t)dim, pixel_values, sizeof(float) * (size_t)n_patches * (size_t)dim);
    memcpy(b->grid_thw + 3 * b->n_images, grid_thw, sizeof(int) * 3 * (size_t)n);
    b->n_images += n;
    b->n_patches += n_patches;
    b->patch_dim = dim;
    return 0;
}

model_batch batch_view(const batch_builder *b) {
    model_batch v = {.n_tokens = b->n_tokens, .n_seqs = b->n_seqs, .tokens = b->tokens, .targets = b->targets, .pos = b->pos, .cu_seqlens = b->cu_seqlens,
                     .n_images = b->n_images, .pixel_values = b->pixel_values, .image_grid_thw = b->grid_thw};
    return v;
}
