/*
 * client.c: the concurrency test's protocol client. A connection reads into
 * a growing buffer (up to IN_CAP_MAX) and every wait is a poll with a
 * deadline, so a server that stops answering fails the test instead of
 * hanging it; sending reads replies meanwhile so a long pipeline cannot
 * deadlock. Also the reply line parsers, and opening (with the -c check)
 * and closing connections in the many ways the churn case needs.
 * A connection belongs to one thread.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "concurrency.h"
#include "testutil.h"

/* ---------------------------------------------------------------------------
 * Connections: buffered, non-blocking, every wait bounded
 * ------------------------------------------------------------------------- */

static int in_space(struct conn *c)
{
    if (c->pos == c->len) {
        c->pos = c->len = 0;
    } else if (c->pos > 0 && c->len == c->cap) {
        memmove(c->in, c->in + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len < c->cap)
        return 0;
    if (c->cap >= IN_CAP_MAX) {
        c->err = ENOBUFS;
        return -1;
    }
    size_t nc = c->cap ? c->cap * 2 : 65536;
    char *p = realloc(c->in, nc);
    if (p == NULL) {
        c->err = ENOMEM;
        return -1;
    }
    c->in = p;
    c->cap = nc;
    return 0;
}

/* One recv of what is there. RD_OK, RD_EOF, RD_ERR, or 1 for nothing yet. */
static int recv_some(struct conn *c)
{
    if (in_space(c) != 0)
        return RD_ERR;
    ssize_t n = recv(c->fd, c->in + c->len, c->cap - c->len, MSG_DONTWAIT);
    if (n > 0) {
        c->len += (size_t)n;
        return RD_OK;
    }
    if (n == 0)
        return RD_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 1;
    c->err = errno;
    return RD_ERR;
}

/* Wait for more input, until deadline. */
static int conn_fill(struct conn *c, long long deadline)
{
    for (;;) {
        long long left = deadline - ts_now_ms();
        if (left <= 0)
            return RD_TIMEOUT;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            c->err = errno;
            return RD_ERR;
        }
        if (r == 0)
            return RD_TIMEOUT;
        r = recv_some(c);
        if (r <= 0)
            return r;
    }
}

/* Send everything, reading replies meanwhile so neither side can block the other. */
int conn_send(struct conn *c, const char *p, size_t n, long long deadline)
{
    while (n > 0) {
        long long left = deadline - ts_now_ms();
        if (left <= 0)
            return RD_TIMEOUT;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN | POLLOUT};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            c->err = errno;
            return RD_ERR;
        }
        if (r == 0)
            return RD_TIMEOUT;
        if (pf.revents & POLLIN) {
            r = recv_some(c);
            if (r < 0)
                return r;
        }
        if (pf.revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                c->err = errno;
                return RD_ERR;
            }
        }
    }
    return RD_OK;
}

/* The next line, without its "\r\n"; valid until the next conn_ call. */
int conn_line(struct conn *c, char **line, size_t *n, long long deadline)
{
    size_t scanned = 0;
    for (;;) {
        char *s = c->in + c->pos;
        size_t avail = c->len - c->pos;
        size_t from = scanned > 0 ? scanned - 1 : 0;
        char *nl = avail > from ? memmem(s + from, avail - from, "\r\n", 2) : NULL;
        if (nl != NULL) {
            *line = s;
            *n = (size_t)(nl - s);
            c->pos += *n + 2;
            return RD_OK;
        }
        if (avail > 65536) {
            c->err = EPROTO;
            return RD_ERR;
        }
        scanned = avail;
        int r = conn_fill(c, deadline);
        if (r != RD_OK)
            return r;
    }
}

/* n bytes of value and their "\r\n". 1 if the "\r\n" is missing. */
int conn_value(struct conn *c, size_t n, char **data, long long deadline)
{
    while (c->len - c->pos < n + 2) {
        int r = conn_fill(c, deadline);
        if (r != RD_OK)
            return r;
    }
    *data = c->in + c->pos;
    c->pos += n + 2;
    return memcmp(*data + n, "\r\n", 2) == 0 ? RD_OK : 1;
}

int rd_fail(struct thr *t, struct conn *c, int r)
{
    char b[400];
    size_t have = c->len - c->pos;
    esc(b, sizeof(b), c->in + c->pos, have);
    if (r == RD_TIMEOUT)
        return report(t, "no complete reply within %d ms (have %zu bytes: \"%s\")", REPLY_MS, have,
                      b);
    if (r == RD_EOF)
        return report(t, "the server closed the connection (have %zu bytes: \"%s\")", have, b);
    return report(t, "connection error: %s (have %zu bytes: \"%s\")", strerror(c->err), have, b);
}

void conn_drop(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->pos = c->len = 0;
}

/* ---------------------------------------------------------------------------
 * Reply lines
 * ------------------------------------------------------------------------- */

bool line_is(const char *line, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(line, s, n) == 0;
}

bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    return n > 0 && n <= 20 && parse_counter(s, n, out) && s[n - 1] != ' ';
}

/* "VALUE <key> <flags> <bytes>[ <cas>]" exactly. */
bool parse_value_line(const char *line, size_t n, bool with_cas, char *key, uint32_t *flags,
                      uint64_t *bytes, uint64_t *cas)
{
    const char *tok[6];
    size_t tl[6];
    size_t nt = 0, i = 0;
    while (i < n && nt < 6) {
        size_t j = i;
        while (j < n && line[j] != ' ')
            j++;
        if (j == i)
            return false; /* empty token: double space */
        tok[nt] = line + i;
        tl[nt++] = j - i;
        i = j < n ? j + 1 : j;
        if (j < n && i == n)
            return false; /* trailing space */
    }
    uint64_t f;
    if (i != n || nt != (with_cas ? 5u : 4u) || !line_is(tok[0], tl[0], "VALUE") || tl[1] > 250 ||
        !parse_u64(tok[2], tl[2], &f) || f > UINT32_MAX || !parse_u64(tok[3], tl[3], bytes))
        return false;
    if (with_cas && !parse_u64(tok[4], tl[4], cas))
        return false;
    memcpy(key, tok[1], tl[1]);
    key[tl[1]] = '\0';
    *flags = (uint32_t)f;
    return true;
}

/* ---------------------------------------------------------------------------
 * Connections opened and closed
 * ------------------------------------------------------------------------- */

/* 0: open; 1: turned away (past -c); -1: failed. */
int conn_open(struct thr *t, struct conn *c)
{
    c->pos = c->len = 0;
    c->fd = ts_connect(G.port);
    t->cc = c;
    t->ce = NULL;
    if (c->fd < 0)
        return report(t, "cannot connect to port %d: %s", G.port, strerror(errno));
    t->n_connects++;
    if (G.cc->conn_limit == 0)
        return 0;
    /* Past -c the server answers "ERROR Too many open connections" and closes. */
    long long deadline = ts_now_ms() + REPLY_MS;
    char *line = NULL;
    size_t ln = 0;
    int r = conn_send(c, "version\r\n", 9, deadline);
    if (r == RD_OK)
        r = conn_line(c, &line, &ln, deadline);
    char b[400];
    if (r == RD_OK && ln > 8 && memcmp(line, "VERSION ", 8) == 0)
        return 0;
    if (r == RD_OK && !line_is(line, ln, "ERROR Too many open connections"))
        return report(t, "first reply on a new connection: \"%s\"", esc(b, sizeof(b), line, ln));
    if (r == RD_OK) {
        r = conn_fill(c, deadline);
        if (r == RD_OK)
            return report(t, "bytes after \"ERROR Too many open connections\": \"%s\"",
                          esc(b, sizeof(b), c->in + c->pos, c->len - c->pos));
    }
    if (r == RD_TIMEOUT)
        return rd_fail(t, c, r);
    if (r == RD_ERR && c->err != ECONNRESET && c->err != EPIPE)
        return rd_fail(t, c, r);
    conn_drop(c);
    t->n_rejected++;
    return 1;
}

void conn_close_some_way(struct thr *t, struct conn *c)
{
    long long deadline = ts_now_ms() + REPLY_MS;
    char buf[20100];
    t->n_closes++;
    switch (rn(t, 6)) {
    case 0: { /* quit: the server closes */
        int r = conn_send(c, "quit\r\n", 6, deadline);
        while (r == RD_OK)
            r = conn_fill(c, deadline);
        if (c->pos != c->len) {
            char b[400];
            report(t, "bytes after quit: \"%s\"",
                   esc(b, sizeof(b), c->in + c->pos, c->len - c->pos));
        } else if (r == RD_TIMEOUT) {
            report(t, "the server did not close the connection after quit within %d ms", REPLY_MS);
        }
        break;
    }
    case 1: /* plain close */
        break;
    case 2: { /* reset */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        break;
    }
    case 3: { /* a multiget whose replies are never read */
        size_t o = (size_t)snprintf(buf, sizeof(buf), "get");
        for (int i = 0; i < 20; i++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, " s:%u", rn(t, G.cc->nshared));
        memcpy(buf + o, "\r\n", 2);
        conn_send(c, buf, o + 2, deadline);
        if (rn(t, 2)) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        break;
    }
    case 4: { /* a value cut short (never stored: x: keys must never hit) */
        size_t n = 1000 + rn(t, 19000);
        size_t o = (size_t)snprintf(buf, sizeof(buf), "set x:%d 0 0 %zu\r\n", t->id, n);
        size_t part = rn(t, (unsigned)n);
        memset(buf + o, 'y', part);
        conn_send(c, buf, o + part, deadline);
        break;
    }
    default: { /* a command line cut short */
        int n = snprintf(buf, sizeof(buf), "get s:%u s:", rn(t, G.cc->nshared));
        conn_send(c, buf, (size_t)n, deadline);
        break;
    }
    }
    conn_drop(c);
}
