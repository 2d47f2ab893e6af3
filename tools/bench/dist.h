/*
 * dist.h: the servers under test and which one owns each key.
 *
 * Several servers (-s repeated) are loaded the way a memcached client
 * library shards: the client hashes the key and picks a server; servers
 * never talk to each other. Today's mode is DIST_MODULA, libmemcached's
 * default: Jenkins one-at-a-time hash of the key, modulo the server count.
 * A consistent-hashing mode (ketama, as libmemcached and twemproxy do it) is
 * a later addition: a new enum value, its continuum built in dist_init(),
 * and a branch in dist_pick(); callers do not change.
 *
 * A `struct dist` is read-only after dist_init(); every thread may call
 * dist_pick() on it.
 */
#ifndef TC_BENCH_DIST_H
#define TC_BENCH_DIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tiercache/status.h"

#define DIST_MAX_SERVERS 64

enum dist_mode {
    DIST_MODULA = 0, /* one_at_a_time(key) % nservers */
};

struct dist_server {
    char name[128]; /* as given on the command line, e.g. "127.0.0.1:11211" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct dist {
    enum dist_mode mode;
    unsigned n;
    struct dist_server servers[DIST_MAX_SERVERS];
};

/* An empty server list with the given mode. */
void dist_init(struct dist *d, enum dist_mode mode);

/*
 * Add the servers of `spec`: one or more comma-separated HOST[:PORT]
 * ([v6addr]:PORT for IPv6; the port defaults to 11211), resolved now.
 * Returns TC_OK, or TC_INVALID with a one-line reason in err (a malformed
 * spec, a name that does not resolve, more than DIST_MAX_SERVERS).
 */
tc_status_e dist_add(struct dist *d, const char *spec, char *err, size_t errlen);

/* The index of the server that owns `key` (0 when there is one server). */
unsigned dist_pick(const struct dist *d, const char *key, size_t len);

#endif
