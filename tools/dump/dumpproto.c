/*
 * dumpproto.c: see dumpproto.h. Pure parsers of what tiercache-dump reads
 * from a server; strict where a lenient reading could turn a lost stream
 * into wrong items (a value length that is not a number ends the dump, it
 * is not guessed around).
 */
#include "dumpproto.h"

#include <string.h>

bool dp_key_text_ok(const char *key, size_t n)
{
    if (n == 0 || n > DP_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

ssize_t dp_url_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o == cap)
            return -1;
        out[o++] = c;
    }
    return (ssize_t)o;
}

size_t dp_base64_encode(const void *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/* A decimal number of s[0..n), digits only, no sign; false on junk or overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The same with an optional leading '-'. */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    bool neg = n > 0 && s[0] == '-';
    uint64_t v;
    if (!parse_u64(s + neg, n - neg, &v) || v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

/* The next space-separated token of s[*pos..n): false at the end. */
static bool next_token(const char *s, size_t n, size_t *pos, const char **tok, size_t *ntok)
{
    size_t i = *pos;
    while (i < n && s[i] == ' ')
        i++;
    if (i == n)
        return false;
    size_t start = i;
    while (i < n && s[i] != ' ')
        i++;
    *tok = s + start;
    *ntok = i - start;
    *pos = i;
    return true;
}

int dp_parse_meta_line(const char *line, size_t n, enum dp_meta_kind *kind, struct dp_meta *m)
{
    if (n == 3 && memcmp(line, "END", 3) == 0) {
        *kind = DP_META_END;
        return 0;
    }
    if (!starts_with(line, n, "key=")) {
        /* Anything else the server says instead of a listing is a refusal:
         * ERROR (no crawler), BUSY (a crawl is running), CLIENT_ERROR ... */
        *kind = DP_META_ERROR;
        return 0;
    }
    bool have_key = false, have_exp = false;
    size_t pos = 0, ntok;
    const char *tok;
    while (next_token(line, n, &pos, &tok, &ntok)) {
        if (starts_with(tok, ntok, "key=")) {
            ssize_t k = dp_url_decode(tok + 4, ntok - 4, m->key, DP_KEY_MAX);
            if (k <= 0)
                return -1;
            m->nkey = (size_t)k;
            m->key[k] = '\0';
            have_key = true;
        } else if (starts_with(tok, ntok, "exp=")) {
            if (!parse_i64(tok + 4, ntok - 4, &m->exp))
                return -1;
            have_exp = true;
        }
    }
    if (!have_key || !have_exp)
        return -1;
    *kind = DP_META_ITEM;
    return 0;
}

/* The end of the line at buf[0..len): the index of its '\n' (the line is
 * buf[0..idx) without a '\r' before it), 0 with *need_more, or -1 if no
 * line ends within DP_LINE_MAX bytes. */
static ssize_t line_end(const char *buf, size_t len, size_t *linelen)
{
    size_t scan = len < DP_LINE_MAX ? len : DP_LINE_MAX;
    const char *nl = memchr(buf, '\n', scan);
    if (nl == NULL)
        return len < DP_LINE_MAX ? 0 : -1;
    size_t l = (size_t)(nl - buf);
    if (l == 0 || buf[l - 1] != '\r')
        return -1;
    *linelen = l - 1;
    return (ssize_t)(l + 1);
}

/* The data block of a VALUE/VA reply: ndata bytes at buf[hdr..], then
 * "\r\n". Returns the reply's full length, 0 (need more) or -1. */
static ssize_t data_block(const char *buf, size_t len, size_t hdr, uint64_t ndata,
                          struct dp_reply *r)
{
    if (ndata > DP_VALUE_MAX)
        return -1;
    size_t total = hdr + (size_t)ndata + 2;
    if (len < total)
        return 0;
    if (buf[total - 2] != '\r' || buf[total - 1] != '\n')
        return -1;
    r->data = buf + hdr;
    r->ndata = (size_t)ndata;
    return (ssize_t)total;
}

static ssize_t parse_error_line(const char *line, size_t ll, ssize_t span, struct dp_reply *r)
{
    if (ll == 5 && memcmp(line, "ERROR", 5) == 0) {
        r->kind = DP_ERROR;
        r->msg = line;
        r->nmsg = ll;
        return span;
    }
    if (starts_with(line, ll, "CLIENT_ERROR")) {
        r->kind = DP_CLIENT_ERROR;
        r->msg = line;
        r->nmsg = ll;
        return span;
    }
    if (starts_with(line, ll, "SERVER_ERROR")) {
        r->kind = DP_SERVER_ERROR;
        r->msg = line;
        r->nmsg = ll;
        return span;
    }
    return -1;
}

/* VALUE <key> <flags> <bytes> [<cas>] */
static ssize_t parse_gets(const char *buf, size_t len, const char *line, size_t ll, ssize_t span,
                          struct dp_reply *r)
{
    if (ll == 3 && memcmp(line, "END", 3) == 0) {
        r->kind = DP_END;
        return span;
    }
    if (!starts_with(line, ll, "VALUE "))
        return parse_error_line(line, ll, span, r);
    const char *tok[5];
    size_t ntok[5], nt = 0, pos = 6;
    while (nt < 5 && next_token(line, ll, &pos, &tok[nt], &ntok[nt]))
        nt++;
    const char *extra;
    size_t nextra;
    if (nt < 3 || nt > 4 || next_token(line, ll, &pos, &extra, &nextra))
        return -1;
    uint64_t flags, nbytes, cas = 0;
    if (!parse_u64(tok[1], ntok[1], &flags) || flags > UINT32_MAX ||
        !parse_u64(tok[2], ntok[2], &nbytes) || (nt == 4 && !parse_u64(tok[3], ntok[3], &cas)))
        return -1;
    r->kind = DP_VALUE;
    r->key = tok[0];
    r->nkey = ntok[0];
    r->flags = (uint32_t)flags;
    r->cas = cas;
    return data_block(buf, len, (size_t)span, nbytes, r);
}

/* VA <bytes> <flag tokens: s<n> f<n> t<n> c<n>> | EN */
static ssize_t parse_mg(const char *buf, size_t len, const char *line, size_t ll, ssize_t span,
                        struct dp_reply *r)
{
    if (ll == 2 && memcmp(line, "EN", 2) == 0) {
        r->kind = DP_MISS;
        return span;
    }
    if (!starts_with(line, ll, "VA "))
        return parse_error_line(line, ll, span, r);
    size_t pos = 3, ntok;
    const char *tok;
    uint64_t nbytes;
    if (!next_token(line, ll, &pos, &tok, &ntok) || !parse_u64(tok, ntok, &nbytes))
        return -1;
    r->kind = DP_VALUE;
    while (next_token(line, ll, &pos, &tok, &ntok)) {
        uint64_t u;
        switch (tok[0]) {
        case 'f':
            if (!parse_u64(tok + 1, ntok - 1, &u) || u > UINT32_MAX)
                return -1;
            r->flags = (uint32_t)u;
            break;
        case 'c':
            if (!parse_u64(tok + 1, ntok - 1, &r->cas))
                return -1;
            break;
        case 't':
            if (!parse_i64(tok + 1, ntok - 1, &r->ttl))
                return -1;
            r->has_ttl = true;
            break;
        default: /* s (the size, as the VA length says), or flags we did not ask for */
            break;
        }
    }
    return data_block(buf, len, (size_t)span, nbytes, r);
}

ssize_t dp_parse_reply(const char *buf, size_t len, bool mg, struct dp_reply *r)
{
    memset(r, 0, sizeof(*r));
    size_t ll = 0;
    ssize_t span = line_end(buf, len, &ll);
    if (span <= 0)
        return span;
    return mg ? parse_mg(buf, len, buf, ll, span, r) : parse_gets(buf, len, buf, ll, span, r);
}
