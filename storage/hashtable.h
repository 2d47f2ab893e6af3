/*
 * hashtable.h: the key -> item index, chained, with striped locks and
 * incremental growth.
 *
 * Locking: the table has 2^lockpower mutexes ("stripes"). A key's stripe is
 * the low bits of its hash; every operation on a key (find, insert, remove)
 * is done with that stripe held, through ht_lock()/ht_unlock(). Because the
 * table size is a power of two never smaller than the stripe count, all the
 * items of a bucket, before and after a doubling, share one stripe; growth
 * therefore moves one bucket at a time under that bucket's stripe, while
 * every other key stays available.
 *
 * Growth: when the item count passes 1.5 x the bucket count, ht_needs_grow()
 * says so; the maintainer calls ht_grow_start() and then ht_grow_step() until
 * it returns true. Only one thread may drive growth.
 */
#ifndef TC_STORAGE_HASHTABLE_H
#define TC_STORAGE_HASHTABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/status.h>

struct item;
struct hashtable;

/* Create a table of 2^hashpower buckets and 2^lockpower stripes (lockpower <= hashpower). */
tc_status_e ht_create(unsigned hashpower, unsigned lockpower, struct hashtable **out);
/* Free the table (not the items). Accepts NULL; sets *ht to NULL. */
void ht_destroy(struct hashtable **ht);

/* The 64-bit hash of a key (XXH3). */
uint64_t ht_hash(const char *key, size_t nkey);

void ht_lock(struct hashtable *ht, uint64_t hv);
void ht_unlock(struct hashtable *ht, uint64_t hv);
/* Returns true if the stripe was taken. */
bool ht_trylock(struct hashtable *ht, uint64_t hv);

/* With the key's stripe held: the item with this key, or NULL. */
struct item *ht_find(struct hashtable *ht, uint64_t hv, const char *key, size_t nkey);
/* With the stripe held: add an item whose key is not in the table. */
void ht_insert(struct hashtable *ht, uint64_t hv, struct item *it);
/* With the stripe held: remove this item (must be in the table). */
void ht_remove(struct hashtable *ht, uint64_t hv, struct item *it);
/* With the stripe held: put `nu` where `old` was (same key). */
void ht_replace(struct hashtable *ht, uint64_t hv, struct item *old, struct item *nu);

/* Items in the table (approximate while others insert). */
uint64_t ht_count(const struct hashtable *ht);

bool ht_needs_grow(const struct hashtable *ht);
bool ht_is_growing(const struct hashtable *ht);
/* Begin doubling. Takes every stripe briefly. Returns TC_NO_MEMORY if the new array cannot be had.
 */
tc_status_e ht_grow_start(struct hashtable *ht);
/* Move up to `nbuckets` old buckets. Returns true when growth is complete. */
bool ht_grow_step(struct hashtable *ht, size_t nbuckets);

unsigned ht_hashpower(const struct hashtable *ht);
/* Bytes used by the bucket arrays. */
uint64_t ht_bytes(const struct hashtable *ht);

/*
 * Visit the items of up to `nbuckets` buckets from *cursor on, each bucket
 * with its stripe held; `visit` may remove the item it is given (and only
 * that one). *cursor advances; it is reset to 0 and true is returned when a
 * full pass is complete. Does nothing (returns false) while growing.
 */
typedef void (*ht_visit_fn)(struct item *it, uint64_t hv, void *arg);
bool ht_scan(struct hashtable *ht, uint64_t *cursor, size_t nbuckets, ht_visit_fn visit, void *arg);

#endif
