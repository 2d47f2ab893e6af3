/*
 * meta.h: memcached's meta commands (mg, ms, md, ma, mn, me), one command
 * line to struct meta_request. Pure: no I/O, no allocation, no global
 * state; the only memory written is the caller's request and key buffer.
 *
 * The parser follows memcached 1.6.18's proto_text.c (process_m*_command,
 * _meta_flag_preparse, process_meta_command) check for check and in the same
 * order, because the reply to a malformed line is the first (or, inside the
 * flag loop, the last) error memcached meets. Every error below was read off
 * the real memcached 1.6.18; docs/META.md has the probe script and the table.
 *
 * What is left to the caller (the execution layer): the item lookup and
 * every reply code (HD/VA/EN/NF/NS/EX/MN/ME), turning T/N/R into absolute
 * times (memcached's realtime()), echoing the flags in request order (walk
 * `flags` token by token), re-encoding a binary key for 'k', and for ms
 * reading (or, on error, discarding) the data block.
 */
#ifndef TC_PROTO_META_H
#define TC_PROTO_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

enum meta_cmd {
    META_CMD_MG = 1, /* get */
    META_CMD_MS,     /* set; a data block of vlen bytes and "\r\n" follows */
    META_CMD_MD,     /* delete */
    META_CMD_MA,     /* arithmetic */
    META_CMD_MN,     /* no-op: always "MN\r\n", whatever follows */
    META_CMD_ME,     /* debug */
};

/*
 * Parse errors. The comment is the exact reply memcached 1.6.18 sends; the
 * caller (compose) owns the text. Where two commands word the same problem
 * differently, they get two values.
 */
enum meta_err {
    META_OK = 0,
    META_ERR_ERROR,           /* "ERROR\r\n": mg/ms/md/ma without a key */
    META_ERR_BAD_FORMAT,      /* "CLIENT_ERROR bad command line format\r\n" */
    META_ERR_FLAGS_TOO_LONG,  /* mg: "CLIENT_ERROR options flags are too long\r\n" */
    META_ERR_FLAGS_TOO_LONG2, /* ms/md/ma: "CLIENT_ERROR options flags too long\r\n" */
    META_ERR_INVALID_FLAG,    /* mg/ms: "CLIENT_ERROR invalid flag\r\n" */
    META_ERR_DUPLICATE_FLAG,  /* mg/ms: "CLIENT_ERROR duplicate flag\r\n" */
    META_ERR_INVALID_OR_DUP,  /* md/ma, any flag error: "CLIENT_ERROR invalid or duplicate flag\r\n"
                               */
    META_ERR_BAD_TOKEN,       /* "CLIENT_ERROR bad token in command line format\r\n" */
    META_ERR_BAD_DELTA,       /* "CLIENT_ERROR invalid numeric delta value\r\n" */
    META_ERR_BAD_INITIAL,     /* "CLIENT_ERROR invalid numeric initial value\r\n" */
    META_ERR_M_LENGTH,        /* "CLIENT_ERROR incorrect length for M token\r\n" */
    META_ERR_KEY_DECODE,      /* "CLIENT_ERROR error decoding key\r\n" */
    META_ERR_MS_MODE,         /* "CLIENT_ERROR invalid mode for ms M token\r\n" */
    META_ERR_MA_MODE,         /* "CLIENT_ERROR invalid mode for ma M token\r\n" */
    META_ERR_OPAQUE_TOO_LONG, /* "CLIENT_ERROR opaque token too long\r\n" */
    META_ERR_COUNT
};

/* The flag letters memcached 1.6.18 knows (the same set for mg/ms/md/ma:
 * one shared pre-parse accepts them all; a command ignores the ones it does
 * not use). Anything else is an invalid flag. */
#define META_FLAGS_KNOWN "bcfhklqstuvCDFIJLMNOPRT"

/* Bit of flag letter c (A-Z, a-z) in meta_request.flags. */
#define META_FLAG(c) ((uint64_t)1 << ((c) >= 'a' ? 26 + ((c) - 'a') : ((c) - 'A')))

#define META_OPAQUE_MAX 32 /* memcached's MFLAG_MAX_OPAQUE_LENGTH: the token with its 'O' */
#define META_MAX_TOKENS 19 /* command, key, [datalen,] flags: more is "too long" */
#define META_KEYBUF_MIN PROTO_KEY_MAX /* enough for any decoded base64 key */

struct meta_request {
    enum meta_cmd cmd;
    enum meta_err err; /* META_OK, or the reply to send instead of running it */
    /* ms only: the data length was read before the error, so the caller
     * must discard vlen + 2 bytes after the line, as memcached swallows
     * them. False for errors found before the length (those bytes are then
     * read as the next command, as memcached does). */
    bool swallow;

    struct proto_token key_raw; /* the key as on the line (the base64 text for 'b') */
    struct proto_token key;     /* the key to look up: key_raw, or the decoded bytes in keybuf */
    bool key_binary;            /* 'b' (me: a "b" third token) decoded the key */

    uint32_t vlen; /* ms: bytes of data that follow, without "\r\n" */

    /* The flag tokens, from the first one to the end of the line, for
     * replies that echo flags in request order (proto_next_key walks it). */
    const char *flags;
    const char *flags_end;

    uint64_t present;          /* META_FLAG(c) for every flag given */
    struct proto_token opaque; /* O: the text after 'O' (0..31 bytes), verbatim */
    int32_t ttl;               /* T: relative or absolute, as sent (safe_strtol) */
    int32_t vivify_ttl;        /* N */
    int32_t recache_ttl;       /* R */
    uint32_t client_flags;     /* F: low 32 bits, as memcached's safe_strtoul */
    uint64_t compare_cas;      /* C */
    uint64_t delta;            /* D: default 1 */
    uint64_t initial;          /* J: default 0 */
    char mode;                 /* M: the mode letter, 0 if absent (ms: E A P R S; ma: I + D -) */
};

/*
 * Parse one command line (without "\r\n"; it ends at an embedded NUL, as
 * memcached's strlen() makes it). Returns false if the first token is not
 * a meta command (the line is for proto_parse()); otherwise fills *req and
 * returns true, with req->err saying whether to run it.
 *
 * keybuf (keybuf_len >= META_KEYBUF_MIN) receives a base64-decoded key;
 * req->key and req->key_raw point into keybuf and line, which must outlive
 * the request. Never fails otherwise; bad input is an err, never a crash.
 */
bool meta_parse(const char *line, size_t len, char *keybuf, size_t keybuf_len,
                struct meta_request *req);

/*
 * memcached's base64_decode(): characters outside the alphabet are skipped,
 * the alphabet characters (with '=') must come in groups of four, decoding
 * stops after the first group with padding, three or four '=' in it are an
 * error. Returns the decoded length (0 on error, or if out_len is under 3
 * bytes per group of 4 digits, padding included).
 */
size_t meta_base64_decode(const char *src, size_t len, char *out, size_t out_len);

/* Standard base64 with '=' padding, as memcached's base64_encode() writes a
 * binary key back ('k' with 'b'). out needs META_BASE64_LEN(len) bytes;
 * returns the length written. */
#define META_BASE64_LEN(n) (((n) + 2) / 3 * 4)
size_t meta_base64_encode(const char *src, size_t len, char *out);

#endif
