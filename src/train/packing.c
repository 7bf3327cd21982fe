// train/packing: rows of examples (see packing.h).
#include "train/packing.h"
#include <stdlib.h>
#include <string.h>

void train_rows_free(train_rows *r) {
    free(r->start);
    free(r->ex);
    memset(r, 0, sizeof *r);
}

static int rows_alloc(int nex, int nrows, train_rows *out, tm_error *err) {
    memset(out, 0, sizeof *out);
    out->start = malloc(sizeof(int) * (size_t)(nrows + 1));
    out->ex = malloc(sizeof(int) * (size_t)(nex ? nex : 1));
    if (!out->start || !out->ex) { train_rows_free(out); return tm_fail(err, "out of memory"); }
    return 0;
}

int train_rows_single(int nex, train_rows *out, tm_error *err) {
    if (rows_alloc(nex, nex, out, err)) return -1;
    for (int i = 0; i < nex; i++) out->start[i] = out->ex[i] = i;
    out->start[nex] = nex;
    out->n = nex;
    out->max_per_row = nex ? 1 : 0;
    return 0;
}

static const int *sort_len;
static int by_len_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_len[x] != sort_len[y]) return sort_len[x] > sort_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;  // ties keep the data order
}

int train_rows_pack(const int *len, int nex, int cap, train_rows *out, tm_error *err) {
    int *order = malloc(sizeof(int) * (size_t)(nex ? nex : 1));
    int *row_of = malloc(sizeof(int) * (size_t)(nex ? nex : 1));   // each example's row
    int *room = malloc(sizeof(int) * (size_t)(nex ? nex : 1));     // each row's free tokens
    int *count = calloc((size_t)(nex ? nex : 1), sizeof(int));     // examples per row
    // rows by free space: head[f] is a row with f free tokens, next[] chains the others
    int *head = malloc(sizeof(int) * (size_t)(cap + 1)), *next = malloc(sizeof(int) * (size_t)(nex ? nex : 1));
    int rc = 0, nrows = 0;
    if (!order || !row_of || !room || !count || !head || !next) { rc = tm_fail(err, "out of memory"); goto done; }
    for (int i = 0; i < nex; i++) order[i] = i;
    sort_len = len;
    qsort(order, (size_t)nex, sizeof *order, by_len_desc);
    for (int f = 0; f <= cap; f++) head[f] = -1;
    for (int k = 0; k < nex; k++) {
        int i = order[k], l = len[i] < 0 ? 0 : len[i], r = -1;
        // best fit: the row with the least free space that still holds l tokens
        for (int f = l; f <= cap && r < 0; f++)
            if (head[f] >= 0) {
                r = head[f];
                head[f] = next[r];
            }
        if (r < 0) { r = nrows++; room[r] = cap; }
        row_of[i] = r;
        count[r]++;
        room[r] = l > room[r] ? 0 : room[r] - l;  // an overlong example fills its own row
        next[r] = head[room[r]];
        head[room[r]] = r;
    }
    if (rows_alloc(nex, nrows, out, err)) { rc = -1; goto done; }
    out->n = nrows;
    out->start[0] = 0;
    for (int r = 0; r < nrows; r++) {
        out->start[r + 1] = out->start[r] + count[r];
        if (count[r] > out->max_per_row) out->max_per_row = count[r];
        count[r] = out->start[r];  // now the next free slot of row r
    }
    // within a row, examples in the order they were packed (longest first)
    for (int k = 0; k < nex; k++) out->ex[count[row_of[order[k]]]++] = order[k];
done:
    free(order), free(row_of), free(room), free(count), free(head), free(next);
    return rc;
}
