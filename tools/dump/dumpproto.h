/*
 * dumpproto.h: the protocol pieces tiercache-dump needs, pure (bytes in,
 * structs out; no sockets, no state), so each case is a test on a string:
 *
 *   - a line of `lru_crawler metadump all`, as memcached 1.6 writes it:
 *       key=<url-encoded key> exp=<unix time or -1> la=<unix> cas=<n>
 *       fetch=<yes|no> cls=<n> size=<n>
 *     then END. The key is encoded the way memcached's uriencode() does it:
 *     A-Z a-z 0-9 - . _ ~ as they are, every other byte as %XX (upper case);
 *   - the replies to `mg <key> s v f t c` (VA / EN) and to
 *     `gets k1 k2 ...` (VALUE ... / END), and the error replies
 *     (ERROR, CLIENT_ERROR ..., SERVER_ERROR ...);
 *   - whether a key can be written in the text protocol, and base64 (for
 *     mg's b flag, which fetches a key that cannot).
 *
 * All functions are thread-safe.
 */
#ifndef TC_DUMPPROTO_H
#define TC_DUMPPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DP_KEY_MAX 250
/* The longest reply or metadump line waited for before calling it malformed. */
#define DP_LINE_MAX 4096
/* The largest value accepted in a reply (memcached's -I tops out at 1 GiB). */
#define DP_VALUE_MAX (1ULL << 30)

/* Whether key[0..n) is a valid text-protocol key: 1..250 bytes, none of
 * them a space or a control byte (SPEC section 3). */
bool dp_key_text_ok(const char *key, size_t n);

/*
 * Decode memcached's URL encoding of s[0..n) into out (cap bytes). Returns
 * the decoded length, or -1 if s is malformed (a '%' without two hex
 * digits) or decodes to more than cap bytes.
 */
ssize_t dp_url_decode(const char *s, size_t n, char *out, size_t cap);

/* Base64 (RFC 4648, with padding) of in[0..n) into out, which must hold
 * 4 * ((n + 2) / 3) + 1 bytes. Returns the length (NUL-terminated). */
size_t dp_base64_encode(const void *in, size_t n, char *out);

enum dp_meta_kind {
    DP_META_ITEM,  /* one key */
    DP_META_END,   /* END: the listing is complete */
    DP_META_ERROR, /* the server refused (ERROR, BUSY, CLIENT_ERROR, SERVER_ERROR ...) */
};

/* One metadump line. */
struct dp_meta {
    char key[DP_KEY_MAX + 1]; /* decoded; NUL added for messages only (keys may hold NUL) */
    size_t nkey;
    int64_t exp; /* absolute unix time; -1: never expires */
};

/*
 * Parse one line (without its "\n" or "\r\n"). Returns 0 with *kind (and
 * *m for DP_META_ITEM) filled, or -1 if the line is not a metadump line
 * (no key= or exp=, a bad encoding, an empty or too long key).
 */
int dp_parse_meta_line(const char *line, size_t n, enum dp_meta_kind *kind, struct dp_meta *m);

enum dp_reply_kind {
    DP_VALUE,        /* gets: VALUE ...; mg: VA ... */
    DP_END,          /* gets: END (the end of one gets) */
    DP_MISS,         /* mg: EN */
    DP_ERROR,        /* ERROR: the command is unknown to the server */
    DP_CLIENT_ERROR, /* text in msg */
    DP_SERVER_ERROR, /* text in msg */
};

struct dp_reply {
    enum dp_reply_kind kind;
    const char *key; /* gets VALUE only: points into the buffer */
    size_t nkey;
    uint32_t flags;
    uint64_t cas;
    bool has_ttl; /* mg: a t flag was returned */
    int64_t ttl;  /* mg: remaining seconds, -1 for none */
    const char *data;
    size_t ndata;
    const char *msg; /* error text (the whole line for ERROR) */
    size_t nmsg;
};

/*
 * Parse one reply at buf[0..len): of `gets` (mg == false) or of
 * `mg <key> s v f t c` (mg == true). Returns the bytes the reply spans
 * (> 0) with *r filled (pointers into buf), 0 if more bytes are needed,
 * or -1 if the bytes are not such a reply (the stream is lost).
 */
ssize_t dp_parse_reply(const char *buf, size_t len, bool mg, struct dp_reply *r);

#endif
