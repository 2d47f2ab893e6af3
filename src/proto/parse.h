/*
 * parse.h: the memcached text protocol, bytes to struct request. Pure: no
 * I/O, no allocation, no global state; every case is a unit test on a
 * string.
 *
 * Reading a command is two steps, as in memcached:
 *   1. proto_next_line() finds the next command line in the bytes received
 *      so far, or says to wait for more, or says the line is hopeless.
 *   2. proto_parse() turns the line into a request, following memcached
 *      1.6's process_command_ascii() token for token, quirks included.
 * The data block of a storage command (vlen bytes and "\r\n") is not part
 * of the line; the caller reads it after step 2.
 */
#ifndef TC_PROTO_PARSE_H
#define TC_PROTO_PARSE_H

#include <stddef.h>

#include "request.h"

enum proto_line {
    PROTO_LINE_OK,        /* *line_len and *consumed are set */
    PROTO_LINE_NEED_MORE, /* no newline yet */
    PROTO_LINE_CLOSE,     /* no newline in over 2048 bytes and not a get: close, as memcached */
};

/*
 * Find the next line in buf[0..len). On PROTO_LINE_OK the line is
 * buf[0..*line_len) without its "\n" (and without a "\r" before it, unless
 * the line is just "\r"), and *consumed bytes (through the "\n") are used.
 * A get/gets line may be longer than 2048 bytes without a newline yet
 * (memcached lets multigets grow); the caller bounds that.
 */
enum proto_line proto_next_line(const char *buf, size_t len, size_t *line_len, size_t *consumed);

/*
 * Split like memcached's tokenize_command(): on single spaces, at most
 * max - 1 tokens, then a terminal token (length 0) whose `s` is NULL when
 * the whole line was split, else the unsplit remainder. Returns the number
 * of tokens including the terminal one.
 */
size_t proto_tokenize(const char *s, size_t n, struct proto_token *tokens, size_t max);

/* Parse one command line (as returned by proto_next_line) into *req. */
void proto_parse(const char *line, size_t len, struct request *req);

/*
 * Iterate over the keys of a get-family request: returns 1 and sets *key
 * while keys remain, 0 at the end. *pos starts at req->keys.
 */
int proto_next_key(const char **pos, const char *end, struct proto_token *key);

/*
 * `lru_crawler <sub> [arg]`, parsed on its own (the walk it starts is a
 * streamed reply, not a struct request). memcached 1.6's
 * process_lru_crawler_command(): "crawl"/"metadump" take a class list
 * ("all", for metadump also "hash", or comma-separated ids 1..63, empty
 * items ignored, numbers read with safe_strtoul's 32-bit rules), "sleep"
 * and "tocrawl" a number, "enable"/"disable" nothing; any other shape is
 * ERROR.
 */
enum proto_lru_sub {
    PROTO_LRU_NONE = 0, /* only `reply` applies */
    PROTO_LRU_CRAWL,
    PROTO_LRU_METADUMP,
    PROTO_LRU_ENABLE,
    PROTO_LRU_DISABLE,
    PROTO_LRU_SLEEP,
    PROTO_LRU_TOCRAWL,
};

/* The replies of lru_crawler; texts in compose.c (compose_lru_reply). */
enum proto_lru_reply {
    PROTO_LRU_R_NONE = 0,
    PROTO_LRU_R_OK,
    PROTO_LRU_R_ERROR,
    PROTO_LRU_R_BADCLASS,
    PROTO_LRU_R_DISABLED,
    PROTO_LRU_R_BAD_FORMAT,
    PROTO_LRU_R_SLEEP_TOO_LONG,
    PROTO_LRU_R_UNKNOWN_ERROR,
    PROTO_LRU_R_START_FAILED,
    PROTO_LRU_R_BUSY,
    PROTO_LRU_R_NOTSTARTED,
    PROTO_LRU_R_PIPELINED,
    PROTO_LRU_R_COUNT
};

#define PROTO_LRU_MAX_CLASS 63 /* memcached's MAX_NUMBER_OF_SLAB_CLASSES - 1 */

struct proto_lru {
    enum proto_lru_sub sub;
    /* Checked after the server's own checks (a disabled crawler answers
     * that first, as memcached): an error found in the argument, or NONE. */
    enum proto_lru_reply reply;
    bool all;         /* crawl/metadump: every class ("all" or "hash") */
    uint64_t classes; /* crawl/metadump: bit n set for class id n */
    uint32_t value;   /* sleep (microseconds), tocrawl */
};

/*
 * If the line is an lru_crawler command, parse it into *out and return
 * true; otherwise return false (the line is for proto_parse()). Pure.
 */
bool proto_parse_lru(const char *line, size_t len, struct proto_lru *out);

#endif
