/*
 * dist.h: the servers under test and which one owns each key.
 *
 * Several servers (-s repeated) are loaded the way a memcached client
 * library or a proxy shards: the client hashes the key and picks a server;
 * servers never talk to each other. Two distributions (--distribution):
 *
 *   ketama  (the default) consistent hashing as libmemcached's weighted
 *           ketama (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED) and twemproxy's
 *           `distribution: ketama` with `hash: md5` place keys: every
 *           server of weight 1 gets 160 points on a ring of 32-bit values
 *           (how many exactly comes from their float formula, kept here
 *           as they write it), four points per MD5 digest of
 *           "<name>-<i>", i = 0, 1, ...; a key goes to the first point at
 *           or after the first four bytes (little-endian) of MD5(key),
 *           wrapping past the top. A server's <name> is the NAME of
 *           "-s HOST:PORT=NAME" (twemproxy's "host:port:weight NAME"), or
 *           else "HOST:PORT" as written, just "HOST" when PORT is 11211 (as
 *           both do). Adding or removing a server moves only the keys of
 *           the points it adds or takes away.
 *   modula  libmemcached's default: Bob Jenkins' one-at-a-time hash of the
 *           key, modulo the server count (adding a server moves most keys).
 *
 * Two points with the same value (about one ring in 40,000 for three
 * servers has such a pair) go to the server listed first, as in
 * libmemcached; twemproxy's choice then depends on its qsort. Weights are
 * not supported: every server weighs 1.
 *
 * A `struct dist` is filled by dist_init(), dist_add() and dist_set_mode()
 * (each keeps the ring up to date) on one thread, and is read-only
 * afterwards: every thread may then call dist_pick() on it.
 */
#ifndef TC_BENCH_DIST_H
#define TC_BENCH_DIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tiercache/status.h"

#define DIST_MAX_SERVERS 64
#define DIST_MAX_NAME    80  /* a ketama name (twemproxy truncates "<name>-<i>" at 85 bytes) */
#define DIST_POINTS      160 /* ketama points per server of weight 1 */

enum dist_mode {
    DIST_MODULA = 0, /* one_at_a_time(key) % nservers */
    DIST_KETAMA = 1, /* the MD5 ring of libmemcached and twemproxy */
};

/* Names of the modes, in enum order, NULL-terminated (for the option table). */
extern const char *const dist_mode_names[];

struct dist_server {
    char name[128];                      /* HOST[:PORT] as given, e.g. "127.0.0.1:11211" */
    char ketama_name[DIST_MAX_NAME + 1]; /* what its ring points are hashed from */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* One point of the ketama ring. */
struct dist_point {
    uint32_t value;
    uint32_t server; /* index into servers[] */
};

struct dist {
    enum dist_mode mode;
    unsigned n;
    struct dist_server servers[DIST_MAX_SERVERS];
    unsigned npoints; /* ketama: points in ring[], sorted by value then server */
    struct dist_point ring[DIST_MAX_SERVERS * DIST_POINTS];
};

/* An empty server list with the given mode. */
void dist_init(struct dist *d, enum dist_mode mode);

/* Change the mode (the ring is built or dropped to match). */
void dist_set_mode(struct dist *d, enum dist_mode mode);

/*
 * Add the servers of `spec`: one or more comma-separated HOST[:PORT][=NAME]
 * ([v6addr]:PORT for IPv6; the port defaults to 11211; NAME, up to
 * DIST_MAX_NAME bytes, is the server's ketama name), resolved now.
 * Returns TC_OK, or TC_INVALID with a one-line reason in err (a malformed
 * spec, a name that does not resolve, more than DIST_MAX_SERVERS).
 */
tc_status_e dist_add(struct dist *d, const char *spec, char *err, size_t errlen);

/* The index of the server that owns `key` (0 when there is one server). */
unsigned dist_pick(const struct dist *d, const char *key, size_t len);

/* The first four bytes of MD5(data), little-endian: twemproxy's `hash: md5`. */
uint32_t dist_md5_hash(const char *data, size_t len);

#endif
