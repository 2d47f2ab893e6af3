/*
 * compose.c: reply texts and line builders (see compose.h). The texts are
 * memcached 1.6's, byte for byte.
 */
#include "compose.h"

#include <stdio.h>
#include <string.h>

#include "numparse.h"

#define S(text)                                                                                    \
    {                                                                                              \
        text "\r\n", sizeof(text "\r\n") - 1                                                       \
    }

static const struct proto_str replies[PROTO_R_COUNT] = {
    [PROTO_R_NONE] = {"", 0},
    [PROTO_R_STORED] = S("STORED"),
    [PROTO_R_NOT_STORED] = S("NOT_STORED"),
    [PROTO_R_EXISTS] = S("EXISTS"),
    [PROTO_R_NOT_FOUND] = S("NOT_FOUND"),
    [PROTO_R_DELETED] = S("DELETED"),
    [PROTO_R_TOUCHED] = S("TOUCHED"),
    [PROTO_R_OK] = S("OK"),
    [PROTO_R_END] = S("END"),
    [PROTO_R_RESET] = S("RESET"),
    [PROTO_R_MN] = S("MN"),
    [PROTO_R_ERROR] = S("ERROR"),
    [PROTO_R_CLIENT_ERROR_FORMAT] = S("CLIENT_ERROR bad command line format"),
    [PROTO_R_CLIENT_ERROR_BAD_COMMAND_LINE] = S("CLIENT_ERROR bad command line"),
    [PROTO_R_CLIENT_ERROR_DATA_CHUNK] = S("CLIENT_ERROR bad data chunk"),
    [PROTO_R_CLIENT_ERROR_EXPTIME] = S("CLIENT_ERROR invalid exptime argument"),
    [PROTO_R_CLIENT_ERROR_DELTA] = S("CLIENT_ERROR invalid numeric delta argument"),
    [PROTO_R_CLIENT_ERROR_NON_NUMERIC] =
        S("CLIENT_ERROR cannot increment or decrement non-numeric value"),
    [PROTO_R_CLIENT_ERROR_DELETE_USAGE] =
        S("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"),
    [PROTO_R_CLIENT_ERROR_SHUTDOWN_MODE] = S("CLIENT_ERROR invalid shutdown mode"),
    [PROTO_R_CLIENT_ERROR_STATS_DETAIL] = S("CLIENT_ERROR usage: stats detail on|off|dump"),
    [PROTO_R_ERROR_SHUTDOWN_DISABLED] = S("ERROR: shutdown not enabled"),
    [PROTO_R_SERVER_ERROR_TOO_LARGE] = S("SERVER_ERROR object too large for cache"),
    [PROTO_R_SERVER_ERROR_OOM_STORE] = S("SERVER_ERROR out of memory storing object"),
    [PROTO_R_SERVER_ERROR_OOM] = S("SERVER_ERROR out of memory"),
    [PROTO_R_SERVER_ERROR_LINE_TOO_LONG] = S("SERVER_ERROR command line too long"),
    [PROTO_R_SERVER_ERROR_OOM_GET] = S("SERVER_ERROR out of memory writing get response"),
    [PROTO_R_SERVER_ERROR_OOM_READ] = S("SERVER_ERROR out of memory reading request"),
};

struct proto_str compose_reply(enum proto_reply r)
{
    if ((unsigned)r >= PROTO_R_COUNT || replies[r].s == NULL)
        return replies[PROTO_R_ERROR];
    return replies[r];
}

static size_t u32toa(uint32_t v, char *buf)
{
    return tc_u64toa(v, buf);
}

size_t compose_value_header(char *buf, const char *key, size_t nkey, uint32_t flags,
                            uint32_t nbytes, bool with_cas, uint64_t cas)
{
    char *p = buf;
    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, key, nkey);
    p += nkey;
    *p++ = ' ';
    p += u32toa(flags, p);
    *p++ = ' ';
    p += u32toa(nbytes, p);
    if (with_cas) {
        *p++ = ' ';
        p += tc_u64toa(cas, p);
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - buf);
}

size_t compose_number(char *buf, uint64_t v)
{
    size_t n = tc_u64toa(v, buf);
    buf[n++] = '\r';
    buf[n++] = '\n';
    return n;
}

size_t compose_stat(char *buf, size_t cap, const char *name, const char *value)
{
    if (cap == 0)
        return 0;
    int n = snprintf(buf, cap, "STAT %s %s\r\n", name, value);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static const struct proto_str lru_replies[PROTO_LRU_R_COUNT] = {
    [PROTO_LRU_R_NONE] = {"", 0},
    [PROTO_LRU_R_OK] = S("OK"),
    [PROTO_LRU_R_ERROR] = S("ERROR"),
    [PROTO_LRU_R_BADCLASS] = S("BADCLASS invalid class id"),
    [PROTO_LRU_R_DISABLED] = S("CLIENT_ERROR lru crawler disabled"),
    [PROTO_LRU_R_BAD_FORMAT] = S("CLIENT_ERROR bad command line format"),
    [PROTO_LRU_R_SLEEP_TOO_LONG] = S("CLIENT_ERROR sleep must be one second or less"),
    [PROTO_LRU_R_UNKNOWN_ERROR] = S("ERROR an unknown error happened"),
    [PROTO_LRU_R_START_FAILED] = S("ERROR failed to start lru crawler thread"),
    [PROTO_LRU_R_BUSY] = S("BUSY currently processing crawler request"),
    [PROTO_LRU_R_NOTSTARTED] = S("NOTSTARTED no items to crawl"),
    [PROTO_LRU_R_PIPELINED] = S("ERROR cannot pipeline other commands before metadump"),
};

struct proto_str compose_lru_reply(enum proto_lru_reply r)
{
    if ((unsigned)r >= PROTO_LRU_R_COUNT || lru_replies[r].s == NULL)
        return lru_replies[PROTO_LRU_R_ERROR];
    return lru_replies[r];
}

/* memcached's uriencode(): unreserved characters (RFC 3986) stay as they are. */
static size_t uri_encode(char *dst, const char *src, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *p = dst;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (plain) {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    return (size_t)(p - dst);
}

static char *put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

size_t compose_metadump_line(char *buf, const char *key, size_t nkey, uint32_t exptime,
                             uint32_t atime, uint64_t cas, bool fetched, unsigned clsid,
                             uint32_t size)
{
    if (nkey > PROTO_KEY_MAX)
        nkey = PROTO_KEY_MAX;
    char *p = put(buf, "key=");
    p += uri_encode(p, key, nkey);
    p = put(p, " exp=");
    if (exptime == 0)
        p = put(p, "-1");
    else
        p += tc_u64toa(exptime, p);
    p = put(p, " la=");
    p += tc_u64toa(atime, p);
    p = put(p, " cas=");
    p += tc_u64toa(cas, p);
    p = put(p, fetched ? " fetch=yes cls=" : " fetch=no cls=");
    p += tc_u64toa(clsid, p);
    p = put(p, " size=");
    p += tc_u64toa(size, p);
    *p++ = '\n';
    return (size_t)(p - buf);
}
