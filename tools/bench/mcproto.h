/*
 * mcproto.h: the client side of the memcached text protocol, as much as the
 * bench needs: encoders for `get` and `set`, and a pure parser of replies.
 *
 * The parser takes bytes and returns one reply or "need more"; it never
 * reads a socket and keeps no state, so every case is a unit test on a
 * string. Replies it knows (memcached doc/protocol.txt):
 *
 *   VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n
 *   END | STORED | NOT_STORED | EXISTS | NOT_FOUND | DELETED | TOUCHED | OK
 *   ERROR | CLIENT_ERROR <msg> | SERVER_ERROR <msg>
 *
 * All functions are thread-safe (no shared state).
 */
#ifndef TC_BENCH_MCPROTO_H
#define TC_BENCH_MCPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

enum mcproto_reply_type {
    MCPROTO_VALUE,
    MCPROTO_END,
    MCPROTO_STORED,
    MCPROTO_NOT_STORED,
    MCPROTO_EXISTS,
    MCPROTO_NOT_FOUND,
    MCPROTO_DELETED,
    MCPROTO_TOUCHED,
    MCPROTO_OK,
    MCPROTO_ERROR,        /* "ERROR": unknown command */
    MCPROTO_CLIENT_ERROR, /* msg holds the text after "CLIENT_ERROR " */
    MCPROTO_SERVER_ERROR, /* msg holds the text after "SERVER_ERROR " */
};

struct mcproto_reply {
    enum mcproto_reply_type type;
    const char *key; /* MCPROTO_VALUE: points into the parsed buffer */
    size_t key_len;
    uint32_t flags;
    const char *data; /* MCPROTO_VALUE: the value bytes, in the buffer */
    size_t data_len;
    const char *msg; /* CLIENT_ERROR / SERVER_ERROR text, in the buffer */
    size_t msg_len;
};

/* The longest reply line the parser waits for before calling it malformed. */
#define MCPROTO_MAX_LINE 2048

/*
 * Parse one reply from buf[0..len). Returns the bytes it spans (> 0) with
 * *out filled (pointers into buf), 0 if more bytes are needed, or -1 if
 * the bytes are not a memcached reply (the stream cannot be resynchronised).
 */
ssize_t mcproto_parse_reply(const char *buf, size_t len, struct mcproto_reply *out);

/* A short name for a reply type ("STORED"), for messages. */
const char *mcproto_reply_name(enum mcproto_reply_type type);

/* Append "get" to out; follow with mcproto_add_key() per key and mcproto_end_line(). */
void mcproto_begin_get(struct buf *out);

/* Append " <key>". */
void mcproto_add_key(struct buf *out, const char *key, size_t len);

/* Append "\r\n". */
void mcproto_end_line(struct buf *out);

/*
 * Append "set <key> <flags> <exptime> <len>\r\n", reserve room for the
 * value and the closing "\r\n", and return where the caller writes the len
 * value bytes (valid until the next append to out). The "\r\n" after the
 * value is already in place.
 */
char *mcproto_begin_set(struct buf *out, const char *key, size_t key_len, uint32_t flags,
                        uint64_t exptime, size_t len);

#endif
