/*
 * buf.c: see buf.h. Capacity doubles (at least 16 KiB), so appending is
 * amortised O(1); pending bytes move to the front only when that frees
 * enough room, so a large value arriving in pieces is moved at most once
 * per doubling.
 */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void buf_deinit(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    size_t pending = b->len - b->off;
    if (b->off > 0 && b->cap - pending >= n) {
        memmove(b->data, b->data + b->off, pending);
        b->off = 0;
        b->len = pending;
        return;
    }
    size_t cap = b->cap < 16384 ? 16384 : b->cap;
    while (cap - pending < n)
        cap *= 2;
    char *data = malloc(cap);
    if (data == NULL) {
        fprintf(stderr, "tiercache-bench: out of memory (a %zu byte buffer)\n", cap);
        exit(1);
    }
    if (pending > 0)
        memcpy(data, b->data + b->off, pending);
    free(b->data);
    b->data = data;
    b->off = 0;
    b->len = pending;
    b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
