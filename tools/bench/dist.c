/*
 * dist.c: see dist.h. Names are resolved once, at startup, with
 * getaddrinfo (first address returned); the bench never resolves again.
 */
#include "dist.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dist_init(struct dist *d, enum dist_mode mode)
{
    memset(d, 0, sizeof(*d));
    d->mode = mode;
}

/* Resolve one "HOST[:PORT]" (n bytes) into the next server slot. */
static tc_status_e add_one(struct dist *d, const char *spec, size_t n, char *err, size_t errlen)
{
    char text[128], host[128];
    const char *port = "11211";
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
        if (st != TC_OK || comma == NULL)
            return st;
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
    }
    return 0;
}
