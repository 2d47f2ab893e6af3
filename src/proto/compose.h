/*
 * compose.h: structs to reply bytes. Every line a client can receive from
 * tiercached is produced here, so memcached's exact wording lives in one
 * place. Pure: functions write into the caller's buffer or return static
 * strings.
 */
#ifndef TC_PROTO_COMPOSE_H
#define TC_PROTO_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse.h"
#include "request.h"

struct proto_str {
    const char *s;
    size_t n;
};

/* The full line for a fixed reply, "\r\n" included. */
struct proto_str compose_reply(enum proto_reply r);

/* Largest "VALUE <key> <flags> <bytes> <cas>\r\n" line. */
#define COMPOSE_VALUE_HEADER_MAX (6 + PROTO_KEY_MAX + 1 + 10 + 1 + 10 + 1 + 20 + 2)

/* "VALUE key flags bytes[ cas]\r\n" into buf (COMPOSE_VALUE_HEADER_MAX bytes); returns length. */
size_t compose_value_header(char *buf, const char *key, size_t nkey, uint32_t flags,
                            uint32_t nbytes, bool with_cas, uint64_t cas);

/* "<number>\r\n" (incr/decr) into buf (at least 23 bytes); returns length. */
size_t compose_number(char *buf, uint64_t v);

/* "STAT <name> <value>\r\n" into buf of `cap` bytes; returns length (truncated to fit). */
size_t compose_stat(char *buf, size_t cap, const char *name, const char *value);

/* The full line for an lru_crawler reply, "\r\n" included. */
struct proto_str compose_lru_reply(enum proto_lru_reply r);

/* Largest metadump line: a key escaped to 3 bytes a byte, and the fields. */
#define COMPOSE_METADUMP_LINE_MAX                                                                  \
    (4 + 3 * PROTO_KEY_MAX + 5 + 11 + 4 + 10 + 5 + 20 + 10 + 5 + 3 + 6 + 10 + 1)

/*
 * One `lru_crawler metadump` line, as memcached 1.6 writes it:
 * "key=<key> exp=<exptime|-1> la=<atime> cas=<cas> fetch=<yes|no> cls=<id>
 * size=<bytes>\n" (a bare "\n": memcached ends only "END" with "\r\n"). The
 * key is URI-encoded as memcached does: every byte but letters, digits and
 * "-._~" becomes "%XX" (upper case hex). exptime 0 prints as -1. Writes
 * into buf (COMPOSE_METADUMP_LINE_MAX bytes); returns the length.
 */
size_t compose_metadump_line(char *buf, const char *key, size_t nkey, uint32_t exptime,
                             uint32_t atime, uint64_t cas, bool fetched, unsigned clsid,
                             uint32_t size);

#endif
