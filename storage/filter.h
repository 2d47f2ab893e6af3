/*
 * filter.h: the RAM membership filter of the flash tier: "is this key
 * possibly on flash?" without touching the disk.
 *
 * A cuckoo filter over the key's 64-bit hash. It never answers "no" for a
 * key that was inserted and not removed (no false negatives); it answers
 * "maybe" for about 0.25% of the keys that are absent. Each bucket is one
 * 64-bit word holding five 12-bit fingerprints, so a filter at its usual
 * load (80-90%) costs 1.8 to 2.0 bytes per key.
 *
 * Removal is exact as long as every removed hash was inserted (the flash
 * writer guarantees that: it inserts a key's hash when the key first gets
 * a flash record and removes it when the last record goes).
 *
 * Threads: one writer (the flash writer thread) calls insert/remove; any
 * number of readers call filter_maybe() concurrently without locks (a
 * sequence counter makes a reader retry if it overlapped a change, and
 * after a few retries it answers "maybe", which is always safe).
 */
#ifndef TC_STORAGE_FILTER_H
#define TC_STORAGE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/status.h>

struct filter;

#define FILTER_SLOTS    5    /* fingerprints per bucket */
#define FILTER_MAX_LOAD 0.90 /* the owner should grow the filter past this */

/* A filter for about `capacity` keys at FILTER_MAX_LOAD. TC_OK or TC_NO_MEMORY. */
tc_status_e filter_create(uint64_t capacity, struct filter **out);

/* Accepts NULL; sets *f to NULL. */
void filter_destroy(struct filter **f);

/* False if the key is certainly absent. Any thread. */
bool filter_maybe(const struct filter *f, uint64_t hv);

/*
 * Add a hash. Returns false when the filter is too full to take it; the hash
 * is then still answered "maybe" (kept in a one-entry overflow) but the
 * filter must be replaced by a bigger one before the next insert.
 * Writer thread only.
 */
bool filter_insert(struct filter *f, uint64_t hv);

/* Remove one copy of a hash. Returns false if it was not there. Writer thread only. */
bool filter_remove(struct filter *f, uint64_t hv);

/* Hashes held, and how many it can hold at FILTER_MAX_LOAD. */
uint64_t filter_count(const struct filter *f);
uint64_t filter_capacity(const struct filter *f);

/* True when an insert failed: the owner must rebuild it bigger. */
bool filter_full(const struct filter *f);

/* Bytes of RAM the filter uses. */
size_t filter_bytes(const struct filter *f);

/*
 * Save to `path` atomically (a temporary file, fsync, rename, fsync of the
 * directory), with a magic, a version, the caller's `tag` (what the filter
 * matches) and a checksum. Writer thread, with no insert/remove running.
 * TC_OK or TC_IO_ERROR.
 */
tc_status_e filter_save(const struct filter *f, const char *path, uint64_t tag);

/*
 * Load a filter saved with the same `tag`. TC_NOT_FOUND (no file, or another
 * tag), TC_INVALID (damaged: bad magic, size or checksum), TC_NO_MEMORY.
 */
tc_status_e filter_load(const char *path, uint64_t tag, struct filter **out);

#endif
