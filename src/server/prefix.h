/*
 * prefix.h: per-key-prefix counters, memcached's `stats detail`.
 *
 * A key's prefix is what comes before its first ':'; keys without one are
 * not counted. Counting happens only while `stats detail on` is in effect.
 * `stats detail dump` lists prefixes in memcached's order (256 buckets by
 * MurmurHash3 of the prefix, the newest prefix first in its bucket), so the
 * output is byte for byte memcached's. Thread-safe (one mutex, taken only
 * while detail is on).
 */
#ifndef TC_SERVER_PREFIX_H
#define TC_SERVER_PREFIX_H

#include <stdbool.h>
#include <stddef.h>

struct prefix_stats;

/* NULL on out of memory. */
struct prefix_stats *prefix_stats_create(void);
void prefix_stats_destroy(struct prefix_stats **ps);

void prefix_record_get(struct prefix_stats *ps, const char *key, size_t nkey, bool hit);
void prefix_record_set(struct prefix_stats *ps, const char *key, size_t nkey);
void prefix_record_delete(struct prefix_stats *ps, const char *key, size_t nkey);

/* Forget every prefix (stats reset). */
void prefix_clear(struct prefix_stats *ps);

/* Call emit with each "PREFIX ...\r\n" line. */
typedef void (*prefix_emit_fn)(void *arg, const char *line, size_t len);
void prefix_dump(struct prefix_stats *ps, prefix_emit_fn emit, void *arg);

#endif
