/*
 * mcconn.c: see mcconn.h. The socket is non-blocking from the connect on;
 * callers poll c->fd themselves (the pipeline watches two connections at
 * once). Buffers are compacted before they grow, so a steady stream of
 * small replies runs in a constant 64 KiB.
 */
#include "mcconn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECV_CHUNK (64 * 1024)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Split "HOST:PORT" / "[V6]:PORT" into host and port. false if malformed. */
static bool split_hostport(const char *hp, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    const char *h = hp;
    size_t hlen;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (close == NULL || close[1] != ':')
            return false;
        h = hp + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL)
            return false;
        hlen = (size_t)(colon - hp);
    }
    size_t plen = strlen(colon + 1);
    if (hlen == 0 || hlen >= hcap || plen == 0 || plen >= pcap)
        return false;
    for (size_t i = 0; i < plen; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return false;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return true;
}

/* Non-blocking connect to one address, waiting at most timeout_ms. The
 * socket (non-blocking) or -1 with errno set. */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int rc;
        do {
            rc = poll(&p, 1, timeout_ms);
        } while (rc < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc == 0) {
            close(fd);
            errno = ETIMEDOUT;
            return -1;
        }
        if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            int e = rc < 0 ? errno : soerr != 0 ? soerr : errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    int one = 1;
    /* Only latency is lost if this fails; the pipeline still works. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int mc_connect(struct mc_conn *c, const char *hostport, int timeout_ms, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    snprintf(c->name, sizeof(c->name), "%s", hostport);
    char host[256], port[16];
    if (!split_hostport(hostport, host, sizeof(host), port, sizeof(port))) {
        snprintf(err, errlen, "server %s: not HOST:PORT", hostport);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "server %s: cannot resolve %s: %s", hostport, host,
                 gai_strerror(gai));
        return -1;
    }
    int e = 0;
    for (struct addrinfo *ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
        c->fd = connect_one(ai, timeout_ms);
        if (c->fd < 0)
            e = errno;
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(err, errlen, "server %s: cannot connect: %s", hostport, strerror(e));
        return -1;
    }
    return 0;
}

void mc_close(struct mc_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_cap = c->in_head = c->in_tail = 0;
    c->out_cap = c->out_head = c->out_tail = 0;
}

/* Make room for `need` more bytes at the tail of a buffer: compact, then grow. */
static int reserve(char **buf, size_t *cap, size_t *head, size_t *tail, size_t need)
{
    if (*head > 0 && *cap - *tail < need) {
        memmove(*buf, *buf + *head, *tail - *head);
        *tail -= *head;
        *head = 0;
    }
    if (*cap - *tail >= need)
        return 0;
    size_t ncap = *cap != 0 ? *cap : RECV_CHUNK;
    while (ncap - *tail < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    char *nb = realloc(*buf, ncap);
    if (nb == NULL)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

int mc_queue(struct mc_conn *c, const void *p, size_t n)
{
    if (reserve(&c->out, &c->out_cap, &c->out_head, &c->out_tail, n) != 0)
        return -1;
    memcpy(c->out + c->out_tail, p, n);
    c->out_tail += n;
    return 0;
}

size_t mc_unsent(const struct mc_conn *c)
{
    return c->out_tail - c->out_head;
}

int mc_send_some(struct mc_conn *c, char *err, size_t errlen)
{
    while (c->out_head < c->out_tail) {
        ssize_t w = send(c->fd, c->out + c->out_head, c->out_tail - c->out_head, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            snprintf(err, errlen, "server %s: send failed: %s", c->name, strerror(errno));
            return -1;
        }
        c->out_head += (size_t)w;
    }
    c->out_head = c->out_tail = 0;
    return 0;
}

ssize_t mc_recv_some(struct mc_conn *c, char *err, size_t errlen)
{
    if (reserve(&c->in, &c->in_cap, &c->in_head, &c->in_tail, RECV_CHUNK) != 0) {
        snprintf(err, errlen, "server %s: out of memory for a reply", c->name);
        return -1;
    }
    for (;;) {
        /* read(), not recv(): the listing may be replayed from a file (dump.c) */
        ssize_t r = read(c->fd, c->in + c->in_tail, c->in_cap - c->in_tail);
        if (r > 0) {
            c->in_tail += (size_t)r;
            return r;
        }
        if (r == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        snprintf(err, errlen, "server %s: receive failed: %s", c->name, strerror(errno));
        return -1;
    }
}

const char *mc_in(const struct mc_conn *c, size_t *len)
{
    *len = c->in_tail - c->in_head;
    return c->in + c->in_head;
}

void mc_consume(struct mc_conn *c, size_t n)
{
    c->in_head += n;
    if (c->in_head == c->in_tail)
        c->in_head = c->in_tail = 0;
}

int mc_request_line(struct mc_conn *c, const char *req, char *line, size_t cap, int timeout_ms,
                    char *err, size_t errlen)
{
    if (mc_queue(c, req, strlen(req)) != 0) {
        snprintf(err, errlen, "server %s: out of memory", c->name);
        return -1;
    }
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (mc_send_some(c, err, errlen) != 0)
            return -1;
        size_t len;
        const char *in = mc_in(c, &len);
        const char *nl = len > 0 ? memchr(in, '\n', len) : NULL;
        if (nl != NULL) {
            size_t l = (size_t)(nl - in);
            size_t keep = l > 0 && in[l - 1] == '\r' ? l - 1 : l;
            if (keep >= cap)
                keep = cap - 1;
            memcpy(line, in, keep);
            line[keep] = '\0';
            mc_consume(c, l + 1);
            return 0;
        }
        if (c->eof) {
            snprintf(err, errlen, "server %s: closed the connection", c->name);
            return -1;
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "server %s: no reply within %d ms", c->name, timeout_ms);
            return -1;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN | (mc_unsent(c) > 0 ? POLLOUT : 0)};
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            snprintf(err, errlen, "server %s: poll failed: %s", c->name, strerror(errno));
            return -1;
        }
        if (mc_recv_some(c, err, errlen) < 0)
            return -1;
    }
}
