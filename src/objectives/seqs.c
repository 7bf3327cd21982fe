#include "objectives/seqs.h"
#include "base/error.h"

int seq_batch_check(const seq_batch *b, tm_error *err) {
    if (!b || !b->logp || (b->n_seq > 0 && !b->span) || b->n_tokens < 0 || b->n_seq < 0)
        return tm_fail(err, "seq_batch: missing arrays");
    for (int i = 0; i < b->n_seq; i++) {
        int s = b->span[2 * i], e = b->span[2 * i + 1];
        if (s < 0 || e < s || e > b->n_tokens)
            return tm_fail(err, "seq_batch: sequence %d spans [%d, %d) outside [0, %d)", i, s, e, b->n_tokens);
    }
    return 0;
}
