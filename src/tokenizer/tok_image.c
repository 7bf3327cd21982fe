// tokenizer/tok_image: the image placeholders of Qwen2-VL / Qwen2.5-VL prompts.
#include <string.h>
#include "tokenizer/tokenizer.h"

int tok_expand_image_pads(const int32_t *ids, size_t n, int32_t pad_id, const int *n_tokens, int n_images, tok_ids *out,
                          tm_error *err) {
    int img = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != pad_id) {
            tok_ids_push(out, ids[i]);
            continue;
        }
        if (img == n_images)
            return tm_fail(err, "the prompt has more image placeholders (token %d) than the row's %d image(s)", pad_id, n_images);
        if (n_tokens[img] <= 0) return tm_fail(err, "image %d has %d embeddings (its grid is empty)", img, n_tokens[img]);
        for (int k = 0; k < n_tokens[img]; k++) tok_ids_push(out, pad_id);
        img++;
    }
    if (img != n_images)
        return tm_fail(err, "the prompt has %d image placeholder(s) (token %d) for the row's %d image(s)", img, pad_id, n_images);
    if (out->failed) return tm_fail(err, "out of memory");
    return 0;
}
