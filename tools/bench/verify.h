/*
 * verify.h: verifiable values: the bytes of every value the bench stores
 * are a function of (key, version, length), so every hit can be checked.
 *
 * The bench stores each value with the item's 32-bit flags set to a random
 * version. On a hit, the reply carries key, flags and length, so the
 * expected bytes can be recomputed with no per-key state and regardless of
 * which run, thread or value-size setting stored the item: a flipped,
 * missing or extra byte, a value of another key or a mangled flags field is
 * a "wrong value", never a hit. (A stale but intact older version verifies:
 * this checks integrity, not freshness.)
 *
 * Layout of a value of length len:
 *
 *   +----------------------+-----------------------------------------+
 *   | tag: min(len, 8)     | pool[(off + i) mod 1 MiB], i = 8..len-1 |
 *   | bytes from           | a slice of a fixed pseudo-random pool   |
 *   | hash(key, ver, len)  | of 1 MiB, off = hash(key, ver, len)     |
 *   +----------------------+-----------------------------------------+
 *
 * Every byte is printable ([0-9A-Za-z]) so a value can be read in a
 * `telnet` session. The pool is generated from a constant seed, identical
 * in every process, and read cyclically, so any length verifies whatever
 * settings wrote it. A `struct verify_pool` is read-only after creation and
 * shared by all threads.
 */
#ifndef TC_BENCH_VERIFY_H
#define TC_BENCH_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tiercache/status.h"

struct verify_pool;

/*
 * Create the pool (1 MiB). Returns TC_OK with *out set (free it with
 * verify_destroy), or TC_NO_MEMORY.
 */
tc_status_e verify_create(struct verify_pool **out);

/* Free a pool and set *p to NULL; accepts NULL and *p == NULL. */
void verify_destroy(struct verify_pool **p);

/* Write the len bytes of the value of (key, version) to dst. Thread-safe. */
void verify_fill(const struct verify_pool *p, const char *key, size_t keylen, uint32_t version,
                 char *dst, size_t len);

/* Whether `data` (len bytes) is exactly the value of (key, version). Thread-safe. */
bool verify_check(const struct verify_pool *p, const char *key, size_t keylen, uint32_t version,
                  const char *data, size_t len);

#endif
