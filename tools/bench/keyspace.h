/*
 * keyspace.h: which key each operation touches, and the key's text.
 *
 * Keys are ids 0..n-1, written as <prefix><decimal id> ("tcb:4711").
 * Popularity patterns:
 *   uniform      every id equally likely
 *   zipf         rank r drawn from Zipf(alpha) (zipf.h); rank 1 is the
 *                hottest. Ranks map to ids through a fixed permutation
 *                (id = (r - 1) * m mod n, m coprime with n), so hot keys
 *                are spread over the id range and over fill order
 *   sequential   0, 1, 2, ... n-1, 0, ... from one counter shared by all
 *                threads: n sequential operations touch every key once
 *
 * keyspace_next() may be called by many threads at once on the same
 * keyspace (the sequential counter is atomic; the rest is read-only).
 */
#ifndef TC_BENCH_KEYSPACE_H
#define TC_BENCH_KEYSPACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "tiercache/status.h"
#include "zipf.h"

enum keyspace_pattern { KEYSPACE_UNIFORM = 0, KEYSPACE_ZIPF = 1, KEYSPACE_SEQUENTIAL = 2 };

/* Names of the patterns, in enum order, NULL-terminated (for the option table). */
extern const char *const keyspace_pattern_names[];

/* Longest key text this module produces (memcached's limit is 250). */
#define KEYSPACE_MAX_KEY 250

struct keyspace {
    uint64_t n;
    enum keyspace_pattern pattern;
    struct zipf zipf;      /* KEYSPACE_ZIPF */
    uint64_t scramble;     /* the rank -> id multiplier, coprime with n */
    _Atomic uint64_t next; /* KEYSPACE_SEQUENTIAL */
    char prefix[KEYSPACE_MAX_KEY - 20 + 1];
    size_t prefix_len;
};

/*
 * Prepare a key space of n keys. alpha is used for KEYSPACE_ZIPF only.
 * Returns TC_OK, or TC_INVALID (n == 0, a bad alpha, a prefix longer than
 * KEYSPACE_MAX_KEY - 20 bytes or containing a space or control character).
 */
tc_status_e keyspace_init(struct keyspace *ks, uint64_t n, enum keyspace_pattern pattern,
                          double alpha, const char *prefix);

/* The next key id for an operation. Thread-safe; r is the caller's. */
uint64_t keyspace_next(struct keyspace *ks, struct rng *r);

/* Write the text of key `id` to buf (KEYSPACE_MAX_KEY bytes); returns its length, no NUL. */
size_t keyspace_format(const struct keyspace *ks, uint64_t id, char *buf);

/* Parse a key text back to its id; false if it is not a key of this space. */
bool keyspace_parse(const struct keyspace *ks, const char *key, size_t len, uint64_t *id);

#endif
