/*
 * mcproto.h: the client side of the memcached text protocol, as much as the
 * bench needs, in its two dialects: the classic commands (`get`, `set`) and
 * the meta commands (`mg`, `ms`, `mn`). For each: request encoders and a
 * pure parser of replies.
 *
 * A parser takes bytes and returns one reply or "need more"; it never
 * reads a socket and keeps no state, so every case is a unit test on a
 * string. Replies they know (memcached doc/protocol.txt):
 *
 *   classic  VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n
 *            END | STORED | NOT_STORED | EXISTS | NOT_FOUND | DELETED |
 *            TOUCHED | OK
 *   meta     VA <bytes> <flag>*\r\n<data>\r\n   (f<flags> and k<key> are read)
 *            EN | HD | NS | EX | NF [<flag>*]     (returned flags are skipped)
 *            MN
 *   both     ERROR | CLIENT_ERROR <msg> | SERVER_ERROR <msg>
 *
 * All functions are thread-safe (no shared state).
 */
#ifndef TC_BENCH_MCPROTO_H
#define TC_BENCH_MCPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* The dialect the bench speaks (--protocol). */
enum mcproto_protocol { MCPROTO_CLASSIC = 0, MCPROTO_META = 1 };

/* Names of the dialects, in enum order, NULL-terminated (for the option table). */
extern const char *const mcproto_protocol_names[];

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
    MCPROTO_VA,           /* meta: a value (mg ... v) */
    MCPROTO_EN,           /* meta: miss */
    MCPROTO_HD,           /* meta: success without a value (stored, deleted) */
    MCPROTO_NS,           /* meta: not stored */
    MCPROTO_EX,           /* meta: exists (CAS mismatch) */
    MCPROTO_NF,           /* meta: not found */
    MCPROTO_MN,           /* meta: the answer to mn, the end of a quiet batch */
};

struct mcproto_reply {
    enum mcproto_reply_type type;
    const char *key; /* VALUE, and VA with a k flag: points into the parsed buffer; else NULL */
    size_t key_len;
    uint32_t flags;   /* VALUE, and VA with an f flag; else 0 */
    const char *data; /* VALUE / VA: the value bytes, in the buffer */
    size_t data_len;
    const char *msg; /* CLIENT_ERROR / SERVER_ERROR text, in the buffer */
    size_t msg_len;
};

/* The longest reply line the parser waits for before calling it malformed. */
#define MCPROTO_MAX_LINE 2048

/*
 * Parse one classic reply from buf[0..len). Returns the bytes it spans
 * (> 0) with *out filled (pointers into buf), 0 if more bytes are needed,
 * or -1 if the bytes are not a classic reply (the stream cannot be
 * resynchronised). Meta replies (VA, HD, ...) are -1 here.
 */
ssize_t mcproto_parse_reply(const char *buf, size_t len, struct mcproto_reply *out);

/*
 * Parse one meta reply, as mcproto_parse_reply() does a classic one (same
 * returns). A VA line's f token must be a number and its k token must not
 * be empty; other returned flags are skipped whatever they are, provided
 * each starts with a letter. Classic replies but the three errors are -1.
 */
ssize_t mcproto_parse_meta_reply(const char *buf, size_t len, struct mcproto_reply *out);

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

/*
 * Append a meta get of one key that asks for the value and the flags:
 * "mg <key> v f\r\n" (answered by VA or EN), or with quiet set
 * "mg <key> v f q k\r\n" (a hit is a VA naming its key, a miss is silent),
 * for a batch that mcproto_meta_noop() closes.
 */
void mcproto_meta_get(struct buf *out, const char *key, size_t len, bool quiet);

/* Append "mn\r\n" (answered by MN once every request before it is answered). */
void mcproto_meta_noop(struct buf *out);

/*
 * Append "ms <key> <len> F<flags> T<ttl>\r\n" and room for the value, as
 * mcproto_begin_set() does (same return and lifetime).
 */
char *mcproto_meta_begin_set(struct buf *out, const char *key, size_t key_len, uint32_t flags,
                             uint64_t ttl, size_t len);

#endif
