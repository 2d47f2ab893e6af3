/*
 * dist.c: see dist.h. Names are resolved once, at startup, with
 * getaddrinfo (first address returned); the bench never resolves again.
 *
 * The ketama ring, for n servers of weight 1:
 *
 *   per server  pct = 1/n (as a float), points = floor(pct * 160 / 4 * n) * 4
 *               (float arithmetic, as libmemcached and twemproxy compute
 *               it: a rounding below 40 would cost a server 4 points in
 *               both of them, so it must here too)
 *   the points  for i in 0 .. points/4 - 1: d = MD5("<name>-<i>"), and
 *               four points d[0..3], d[4..7], d[8..11], d[12..15], each
 *               read little-endian
 *   a key       h = MD5(key)[0..3] little-endian; the first point with
 *               value >= h (binary search), or the first point of all
 *
 *   0 ------ p1(s2) ---- p2(s0) -------- h ---- p3(s1) ---- ... ---- 2^32-1
 *                                        `--> s1
 */
#include "dist.h"

#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md5.h"

#define KETAMA_DEFAULT_PORT 11211 /* left out of a server's ketama name */

const char *const dist_mode_names[] = {"modula", "ketama", NULL};

static int point_cmp(const void *a, const void *b)
{
    const struct dist_point *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t dist_md5_hash(const char *data, size_t len)
{
    uint8_t digest[16];
    md5_digest(data, len, digest);
    return le32(digest);
}

/* Rebuild the ring from the server list (ketama), or empty it. */
static void build_ring(struct dist *d)
{
    d->npoints = 0;
    if (d->mode != DIST_KETAMA || d->n == 0)
        return;
    /* libmemcached's and twemproxy's expression, types included (weight 1 each) */
    float pct = (float)1 / (float)d->n;
    uint32_t points =
        (uint32_t)(floorf((float)(pct * DIST_POINTS / 4 * (float)d->n + 0.0000000001)) * 4);
    if (points > DIST_POINTS)
        points = DIST_POINTS;
    for (unsigned s = 0; s < d->n; s++) {
        for (uint32_t i = 0; i < points / 4; i++) {
            char host[DIST_MAX_NAME + 16];
            int len = snprintf(host, sizeof(host), "%s-%u", d->servers[s].ketama_name, i);
            uint8_t digest[16];
            md5_digest(host, (size_t)len, digest);
            for (int x = 0; x < 4; x++)
                d->ring[d->npoints++] = (struct dist_point){le32(digest + 4 * x), s};
        }
    }
    qsort(d->ring, d->npoints, sizeof(d->ring[0]), point_cmp);
}

void dist_init(struct dist *d, enum dist_mode mode)
{
    memset(d, 0, sizeof(*d));
    d->mode = mode;
}

void dist_set_mode(struct dist *d, enum dist_mode mode)
{
    d->mode = mode;
    build_ring(d);
}

/* Resolve one "HOST[:PORT][=NAME]" (n bytes) into the next server slot. */
static tc_status_e add_one(struct dist *d, const char *spec, size_t n, char *err, size_t errlen)
{
    char text[128], host[128];
    const char *port = "11211";
    const char *eq = memchr(spec, '=', n);
    const char *name = NULL;
    size_t name_len = 0;
    if (eq != NULL) {
        name = eq + 1;
        name_len = n - (size_t)(name - spec);
        n = (size_t)(eq - spec);
        if (name_len == 0 || name_len > DIST_MAX_NAME) {
            snprintf(err, errlen, "--server: the NAME of '%.*s=%.*s' must be 1 to %d bytes", (int)n,
                     spec, (int)name_len, name, DIST_MAX_NAME);
            return TC_INVALID;
        }
    }
    if (n == 0 || n >= sizeof(text)) {
        snprintf(err, errlen, "--server: '%.*s' is not HOST:PORT", (int)n, spec);
        return TC_INVALID;
    }
    if (d->n == DIST_MAX_SERVERS) {
        snprintf(err, errlen, "--server: at most %d servers", DIST_MAX_SERVERS);
        return TC_INVALID;
    }
    memcpy(text, spec, n);
    text[n] = '\0';
    memcpy(host, text, n + 1);
    if (host[0] == '[') { /* [v6]:port */
        char *close = strchr(host, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            snprintf(err, errlen, "--server: '%s' is not [ADDR]:PORT", text);
            return TC_INVALID;
        }
        if (close[1] == ':')
            port = close + 2;
        *close = '\0';
        memmove(host, host + 1, strlen(host + 1) + 1);
    } else {
        char *colon = strrchr(host, ':');
        if (colon != NULL && strchr(host, ':') != colon) {
            snprintf(err, errlen, "--server: '%s': write IPv6 addresses as [ADDR]:PORT", text);
            return TC_INVALID;
        }
        if (colon != NULL) {
            *colon = '\0';
            port = colon + 1;
        }
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (host[0] == '\0' || port[0] == '\0' || *end != '\0' || p < 1 || p > 65535) {
        snprintf(err, errlen, "--server: '%s' is not HOST:PORT (port 1..65535)", text);
        return TC_INVALID;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "--server: cannot resolve '%s': %s", host, gai_strerror(rc));
        return TC_INVALID;
    }
    struct dist_server *s = &d->servers[d->n++];
    memcpy(s->name, text, n + 1);
    if (name != NULL)
        snprintf(s->ketama_name, sizeof(s->ketama_name), "%.*s", (int)name_len, name);
    else if (p == KETAMA_DEFAULT_PORT)
        snprintf(s->ketama_name, sizeof(s->ketama_name), "%.*s", DIST_MAX_NAME, host);
    else
        snprintf(s->ketama_name, sizeof(s->ketama_name), "%.*s:%ld", DIST_MAX_NAME - 6, host, p);
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return TC_OK;
}

tc_status_e dist_add(struct dist *d, const char *spec, char *err, size_t errlen)
{
    for (;;) {
        const char *comma = strchr(spec, ',');
        size_t n = comma != NULL ? (size_t)(comma - spec) : strlen(spec);
        tc_status_e st = add_one(d, spec, n, err, errlen);
        if (st != TC_OK || comma == NULL) {
            build_ring(d);
            return st;
        }
        spec = comma + 1;
    }
}

/* Bob Jenkins' one-at-a-time hash, as libmemcached's MEMCACHED_HASH_DEFAULT. */
static uint32_t one_at_a_time(const char *key, size_t len)
{
    uint32_t h = 0;
    for (size_t i = 0; i < len; i++) {
        h += (unsigned char)key[i];
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}

unsigned dist_pick(const struct dist *d, const char *key, size_t len)
{
    if (d->n <= 1)
        return 0;
    switch (d->mode) {
    case DIST_MODULA:
        return one_at_a_time(key, len) % d->n;
    case DIST_KETAMA: {
        uint32_t h = dist_md5_hash(key, len);
        unsigned lo = 0, hi = d->npoints; /* the first point >= h is in [lo, hi] */
        while (lo < hi) {
            unsigned mid = lo + (hi - lo) / 2;
            if (d->ring[mid].value < h)
                lo = mid + 1;
            else
                hi = mid;
        }
        return d->ring[lo == d->npoints ? 0 : lo].server;
    }
    }
    return 0;
}
