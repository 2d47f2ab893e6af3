/*
 * buf.h: a growable byte buffer with a read offset, for the bench's
 * per-connection input and output.
 *
 *   data: [ consumed | pending: data+off .. data+len | free: up to cap ]
 *
 * Output: requests are appended at len, write(2) consumes from off.
 * Input: read(2) appends at len, the reply parser consumes from off.
 * A buffer belongs to one connection and so to one thread; no locking.
 * Allocation failure ends the process with status 1 and a message: a
 * benchmark that cannot allocate its buffers has nothing left to measure.
 */
#ifndef TC_BENCH_BUF_H
#define TC_BENCH_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t off, len, cap;
};

/* An empty buffer (nothing allocated yet). */
void buf_init(struct buf *b);

/* Free the memory; the buffer is empty again and may be reused. */
void buf_deinit(struct buf *b);

/* Make room for n more bytes after len (moving pending bytes to the front first if that helps). */
void buf_reserve(struct buf *b, size_t n);

/* Append n bytes. */
void buf_append(struct buf *b, const void *p, size_t n);

/* The number of pending bytes. */
static inline size_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}

/* Mark n pending bytes consumed; an emptied buffer restarts at offset 0. */
static inline void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

#endif
