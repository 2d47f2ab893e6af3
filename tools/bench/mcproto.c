/*
 * mcproto.c: see mcproto.h. Reply lines are recognised by their first word
 * with memcmp; numbers in VALUE lines are parsed with numparse (memcached's
 * own rules), since a server that sends a malformed VALUE line is a
 * protocol failure the bench must report, not guess around.
 */
#include "mcproto.h"

#include <string.h>

#include "numparse.h"

struct word {
    const char *text;
    size_t len;
    enum mcproto_reply_type type;
    int has_msg;
};

static const struct word words[] = {
    {"END", 3, MCPROTO_END, 0},
    {"STORED", 6, MCPROTO_STORED, 0},
    {"NOT_STORED", 10, MCPROTO_NOT_STORED, 0},
    {"EXISTS", 6, MCPROTO_EXISTS, 0},
    {"NOT_FOUND", 9, MCPROTO_NOT_FOUND, 0},
    {"DELETED", 7, MCPROTO_DELETED, 0},
    {"TOUCHED", 7, MCPROTO_TOUCHED, 0},
    {"OK", 2, MCPROTO_OK, 0},
    {"ERROR", 5, MCPROTO_ERROR, 0},
    {"CLIENT_ERROR", 12, MCPROTO_CLIENT_ERROR, 1},
    {"SERVER_ERROR", 12, MCPROTO_SERVER_ERROR, 1},
};

const char *mcproto_reply_name(enum mcproto_reply_type type)
{
    if (type == MCPROTO_VALUE)
        return "VALUE";
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (words[i].type == type)
            return words[i].text;
    }
    return "?";
}

/* The next space-separated token in [*p, end); false if none. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *len)
{
    const char *s = *p;
    while (s < end && *s == ' ')
        s++;
    const char *t = s;
    while (t < end && *t != ' ')
        t++;
    if (t == s)
        return false;
    *tok = s;
    *len = (size_t)(t - s);
    *p = t;
    return true;
}

/* "VALUE <key> <flags> <bytes> [<cas>]" in [line, eol); the data follows eol + 2. */
static ssize_t parse_value(const char *buf, size_t len, const char *eol, struct mcproto_reply *out)
{
    const char *p = buf + 6, *tok;
    size_t tlen;
    uint64_t bytes;
    if (!next_token(&p, eol, &out->key, &out->key_len) || !next_token(&p, eol, &tok, &tlen) ||
        !tc_strtoul32(tok, tlen, &out->flags) || !next_token(&p, eol, &tok, &tlen) ||
        !tc_strtoull(tok, tlen, &bytes) || tok[0] == '-')
        return -1;
    if (next_token(&p, eol, &tok, &tlen) && next_token(&p, eol, &tok, &tlen))
        return -1; /* more than one token after <bytes> */
    size_t header = (size_t)(eol - buf) + 2;
    if (bytes > (uint64_t)1 << 40)
        return -1;
    if (len < header + bytes + 2)
        return 0;
    if (buf[header + bytes] != '\r' || buf[header + bytes + 1] != '\n')
        return -1;
    out->type = MCPROTO_VALUE;
    out->data = buf + header;
    out->data_len = (size_t)bytes;
    return (ssize_t)(header + bytes + 2);
}

ssize_t mcproto_parse_reply(const char *buf, size_t len, struct mcproto_reply *out)
{
    size_t scan = len < MCPROTO_MAX_LINE ? len : MCPROTO_MAX_LINE;
    const char *nl = memchr(buf, '\n', scan);
    if (nl == NULL)
        return len < MCPROTO_MAX_LINE ? 0 : -1;
    if (nl == buf || nl[-1] != '\r')
        return -1;
    const char *eol = nl - 1;
    size_t line_len = (size_t)(eol - buf);
    memset(out, 0, sizeof(*out));
    if (line_len > 6 && memcmp(buf, "VALUE ", 6) == 0)
        return parse_value(buf, len, eol, out);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        const struct word *w = &words[i];
        if (line_len < w->len || memcmp(buf, w->text, w->len) != 0)
            continue;
        if (line_len == w->len) {
            out->type = w->type;
            return (ssize_t)(line_len + 2);
        }
        if (w->has_msg && buf[w->len] == ' ') {
            out->type = w->type;
            out->msg = buf + w->len + 1;
            out->msg_len = line_len - w->len - 1;
            return (ssize_t)(line_len + 2);
        }
    }
    return -1;
}

void mcproto_begin_get(struct buf *out)
{
    buf_append(out, "get", 3);
}

void mcproto_add_key(struct buf *out, const char *key, size_t len)
{
    buf_reserve(out, len + 1);
    out->data[out->len++] = ' ';
    memcpy(out->data + out->len, key, len);
    out->len += len;
}

void mcproto_end_line(struct buf *out)
{
    buf_append(out, "\r\n", 2);
}

char *mcproto_begin_set(struct buf *out, const char *key, size_t key_len, uint32_t flags,
                        uint64_t exptime, size_t len)
{
    buf_reserve(out, key_len + 3 * 21 + 16 + len + 2);
    char *p = out->data + out->len;
    memcpy(p, "set ", 4);
    p += 4;
    memcpy(p, key, key_len);
    p += key_len;
    *p++ = ' ';
    p += tc_u64toa(flags, p);
    *p++ = ' ';
    p += tc_u64toa(exptime, p);
    *p++ = ' ';
    p += tc_u64toa(len, p);
    *p++ = '\r';
    *p++ = '\n';
    char *value = p;
    p[len] = '\r';
    p[len + 1] = '\n';
    out->len = (size_t)(p + len + 2 - out->data);
    return value;
}
