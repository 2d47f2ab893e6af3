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
