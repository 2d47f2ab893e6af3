/*
 * mcproto.c: see mcproto.h. Reply lines are recognised by their first word
 * with memcmp, in one table whose entries say which dialect they belong to
 * and what may follow the word; numbers in VALUE and VA lines are parsed
 * with numparse (memcached's own rules), since a server that sends a
 * malformed value line is a protocol failure the bench must report, not
 * guess around.
 */
#include "mcproto.h"

#include <string.h>

#include "numparse.h"

const char *const mcproto_protocol_names[] = {"classic", "meta", NULL};

enum dialect { CLASSIC = 1, META = 2 };

enum tail {
    TAIL_NONE,  /* the word is the whole line */
    TAIL_MSG,   /* the word alone, or followed by " <message>" */
    TAIL_FLAGS, /* the word alone, or followed by " <flag>*" (meta return flags) */
};

struct word {
    const char *text;
    size_t len;
    enum mcproto_reply_type type;
    enum tail tail;
    unsigned dialects;
};

static const struct word words[] = {
    {"END", 3, MCPROTO_END, TAIL_NONE, CLASSIC},
    {"STORED", 6, MCPROTO_STORED, TAIL_NONE, CLASSIC},
    {"NOT_STORED", 10, MCPROTO_NOT_STORED, TAIL_NONE, CLASSIC},
    {"EXISTS", 6, MCPROTO_EXISTS, TAIL_NONE, CLASSIC},
    {"NOT_FOUND", 9, MCPROTO_NOT_FOUND, TAIL_NONE, CLASSIC},
    {"DELETED", 7, MCPROTO_DELETED, TAIL_NONE, CLASSIC},
    {"TOUCHED", 7, MCPROTO_TOUCHED, TAIL_NONE, CLASSIC},
    {"OK", 2, MCPROTO_OK, TAIL_NONE, CLASSIC},
    {"ERROR", 5, MCPROTO_ERROR, TAIL_NONE, CLASSIC | META},
    {"CLIENT_ERROR", 12, MCPROTO_CLIENT_ERROR, TAIL_MSG, CLASSIC | META},
    {"SERVER_ERROR", 12, MCPROTO_SERVER_ERROR, TAIL_MSG, CLASSIC | META},
    {"EN", 2, MCPROTO_EN, TAIL_FLAGS, META},
    {"HD", 2, MCPROTO_HD, TAIL_FLAGS, META},
    {"NS", 2, MCPROTO_NS, TAIL_FLAGS, META},
    {"EX", 2, MCPROTO_EX, TAIL_FLAGS, META},
    {"NF", 2, MCPROTO_NF, TAIL_FLAGS, META},
    {"MN", 2, MCPROTO_MN, TAIL_NONE, META},
};

const char *mcproto_reply_name(enum mcproto_reply_type type)
{
    if (type == MCPROTO_VALUE)
        return "VALUE";
    if (type == MCPROTO_VA)
        return "VA";
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

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Find the first line of buf[0..len): 1 with *eol at its "\r\n", 0 if it
 * is not complete yet, -1 if it cannot be a reply line (a bare "\n", an
 * empty line, or longer than MCPROTO_MAX_LINE).
 */
static int find_line(const char *buf, size_t len, const char **eol)
{
    size_t scan = len < MCPROTO_MAX_LINE ? len : MCPROTO_MAX_LINE;
    const char *nl = memchr(buf, '\n', scan);
    if (nl == NULL)
        return len < MCPROTO_MAX_LINE ? 0 : -1;
    if (nl == buf || nl[-1] != '\r' || nl - 1 == buf)
        return -1;
    *eol = nl - 1;
    return 1;
}

/*
 * The data block of a value reply whose header line ends at eol: <bytes>
 * bytes and "\r\n" after it. Returns the whole reply's length, 0 if more
 * bytes are needed, -1 if the block is not closed by "\r\n".
 */
static ssize_t value_block(const char *buf, size_t len, const char *eol, uint64_t bytes,
                           struct mcproto_reply *out)
{
    size_t header = (size_t)(eol - buf) + 2;
    if (bytes > (uint64_t)1 << 40)
        return -1;
    if (len < header + bytes + 2)
        return 0;
    if (buf[header + bytes] != '\r' || buf[header + bytes + 1] != '\n')
        return -1;
    out->data = buf + header;
    out->data_len = (size_t)bytes;
    return (ssize_t)(header + bytes + 2);
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
    out->type = MCPROTO_VALUE;
    return value_block(buf, len, eol, bytes, out);
}

/* "VA <bytes> <flag>*" in [line, eol): f<flags> and k<key> are kept, other flags skipped. */
static ssize_t parse_va(const char *buf, size_t len, const char *eol, struct mcproto_reply *out)
{
    const char *p = buf + 3, *tok;
    size_t tlen;
    uint64_t bytes;
    if (!next_token(&p, eol, &tok, &tlen) || tok[0] < '0' || tok[0] > '9' ||
        !tc_strtoull(tok, tlen, &bytes))
        return -1;
    while (next_token(&p, eol, &tok, &tlen)) {
        if (!is_letter(tok[0]))
            return -1;
        if (tok[0] == 'f' && (tlen < 2 || tok[1] < '0' || tok[1] > '9' ||
                              !tc_strtoul32(tok + 1, tlen - 1, &out->flags)))
            return -1;
        if (tok[0] == 'k') {
            if (tlen < 2)
                return -1;
            out->key = tok + 1;
            out->key_len = tlen - 1;
        }
    }
    out->type = MCPROTO_VA;
    return value_block(buf, len, eol, bytes, out);
}

/* The reply of `dialect` that is the whole line [buf, eol), or -1. */
static ssize_t parse_word(const char *buf, const char *eol, unsigned dialect,
                          struct mcproto_reply *out)
{
    size_t line_len = (size_t)(eol - buf);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        const struct word *w = &words[i];
        if (!(w->dialects & dialect) || line_len < w->len || memcmp(buf, w->text, w->len) != 0)
            continue;
        if (line_len > w->len && (w->tail == TAIL_NONE || buf[w->len] != ' '))
            continue;
        out->type = w->type;
        if (w->tail == TAIL_MSG && line_len > w->len) {
            out->msg = buf + w->len + 1;
            out->msg_len = line_len - w->len - 1;
        }
        if (w->tail == TAIL_FLAGS) {
            const char *p = buf + w->len, *tok;
            size_t tlen;
            while (next_token(&p, eol, &tok, &tlen)) {
                if (!is_letter(tok[0]))
                    return -1;
            }
        }
        return (ssize_t)(line_len + 2);
    }
    return -1;
}

ssize_t mcproto_parse_reply(const char *buf, size_t len, struct mcproto_reply *out)
{
    const char *eol;
    int found = find_line(buf, len, &eol);
    if (found <= 0)
        return found;
    memset(out, 0, sizeof(*out));
    if (eol - buf > 6 && memcmp(buf, "VALUE ", 6) == 0)
        return parse_value(buf, len, eol, out);
    return parse_word(buf, eol, CLASSIC, out);
}

ssize_t mcproto_parse_meta_reply(const char *buf, size_t len, struct mcproto_reply *out)
{
    const char *eol;
    int found = find_line(buf, len, &eol);
    if (found <= 0)
        return found;
    memset(out, 0, sizeof(*out));
    if (eol - buf > 3 && memcmp(buf, "VA ", 3) == 0)
        return parse_va(buf, len, eol, out);
    return parse_word(buf, eol, META, out);
}

/* --- classic requests ---------------------------------------------------------- */

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

/*
 * Close a storage command line written up to p (room reserved), place the
 * "\r\n" after the len value bytes, and return where the value goes.
 */
static char *finish_store(struct buf *out, char *p, size_t len)
{
    *p++ = '\r';
    *p++ = '\n';
    char *value = p;
    p[len] = '\r';
    p[len + 1] = '\n';
    out->len = (size_t)(p + len + 2 - out->data);
    return value;
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
    return finish_store(out, p, len);
}

/* --- meta requests --------------------------------------------------------------- */

void mcproto_meta_get(struct buf *out, const char *key, size_t len, bool quiet)
{
    static const char plain[] = " v f\r\n", batch[] = " v f q k\r\n";
    size_t tail = quiet ? sizeof(batch) - 1 : sizeof(plain) - 1;
    buf_reserve(out, 3 + len + tail);
    char *p = out->data + out->len;
    memcpy(p, "mg ", 3);
    memcpy(p + 3, key, len);
    memcpy(p + 3 + len, quiet ? batch : plain, tail);
    out->len += 3 + len + tail;
}

void mcproto_meta_noop(struct buf *out)
{
    buf_append(out, "mn\r\n", 4);
}

char *mcproto_meta_begin_set(struct buf *out, const char *key, size_t key_len, uint32_t flags,
                             uint64_t ttl, size_t len)
{
    buf_reserve(out, key_len + 3 * 21 + 16 + len + 2);
    char *p = out->data + out->len;
    memcpy(p, "ms ", 3);
    p += 3;
    memcpy(p, key, key_len);
    p += key_len;
    *p++ = ' ';
    p += tc_u64toa(len, p);
    memcpy(p, " F", 2);
    p += 2;
    p += tc_u64toa(flags, p);
    memcpy(p, " T", 2);
    p += 2;
    p += tc_u64toa(ttl, p);
    return finish_store(out, p, len);
}
