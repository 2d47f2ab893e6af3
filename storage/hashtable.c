/*
 * hashtable.c: chained hash table with striped locks and incremental
 * doubling (see hashtable.h for the contract).
 *
 * How growth works. While growing there are two bucket arrays: `old`
 * (2^(hp-1) buckets) and `primary` (2^hp). Old buckets below `migrated` have
 * been split into primary[b] and primary[b + oldsize]; the rest still live in
 * `old`. A key whose old bucket is b is looked up in `primary` if b <
 * migrated, else in `old[b]`. Bucket b is split under the stripe of b, and
 * every key of b (old or new position) maps to that stripe, so a reader holding
 * its key's stripe always sees bucket b either entirely split or entirely not.
 * `migrated` is atomic because stripes other than the reader's advance it.
 *
 * Swapping the arrays at the start and the end of growth is done with every
 * stripe held, which is rare (once per doubling) and brief.
 */
#include "hashtable.h"
#include "item.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

struct hashtable {
    struct item **primary;
    struct item **old;         /* non-NULL while growing */
    unsigned hashpower;        /* of primary */
    _Atomic uint64_t migrated; /* old buckets already split */
    _Atomic uint64_t count;
    _Atomic bool growing;
    unsigned lockpower;
    pthread_mutex_t *locks;
};

uint64_t ht_hash(const char *key, size_t nkey)
{
    return XXH3_64bits(key, nkey);
}

static inline pthread_mutex_t *stripe(struct hashtable *ht, uint64_t hv)
{
    return &ht->locks[hv & ((1ULL << ht->lockpower) - 1)];
}

void ht_lock(struct hashtable *ht, uint64_t hv)
{
    pthread_mutex_lock(stripe(ht, hv));
}

void ht_unlock(struct hashtable *ht, uint64_t hv)
{
    pthread_mutex_unlock(stripe(ht, hv));
}

bool ht_trylock(struct hashtable *ht, uint64_t hv)
{
    return pthread_mutex_trylock(stripe(ht, hv)) == 0;
}

tc_status_e ht_create(unsigned hashpower, unsigned lockpower, struct hashtable **out)
{
    if (lockpower > hashpower || hashpower > 40)
        return TC_INVALID;
    struct hashtable *ht = calloc(1, sizeof(*ht));
    if (ht == NULL)
        return TC_NO_MEMORY;
    ht->hashpower = hashpower;
    ht->lockpower = lockpower;
    ht->primary = calloc((size_t)1 << hashpower, sizeof(struct item *));
    ht->locks = calloc((size_t)1 << lockpower, sizeof(pthread_mutex_t));
    if (ht->primary == NULL || ht->locks == NULL) {
        free(ht->primary);
        free(ht->locks);
        free(ht);
        return TC_NO_MEMORY;
    }
    for (size_t i = 0; i < ((size_t)1 << lockpower); i++)
        pthread_mutex_init(&ht->locks[i], NULL);
    *out = ht;
    return TC_OK;
}

void ht_destroy(struct hashtable **htp)
{
    if (htp == NULL || *htp == NULL)
        return;
    struct hashtable *ht = *htp;
    for (size_t i = 0; i < ((size_t)1 << ht->lockpower); i++)
        pthread_mutex_destroy(&ht->locks[i]);
    free(ht->locks);
    free(ht->primary);
    free(ht->old);
    free(ht);
    *htp = NULL;
}

/* The bucket slot a key lives in now. Caller holds the key's stripe. */
static struct item **bucket_for(struct hashtable *ht, uint64_t hv)
{
    if (ht->old != NULL) {
        uint64_t ob = hv & ((1ULL << (ht->hashpower - 1)) - 1);
        if (ob >= atomic_load_explicit(&ht->migrated, memory_order_acquire))
            return &ht->old[ob];
    }
    return &ht->primary[hv & ((1ULL << ht->hashpower) - 1)];
}

static bool key_equal(const struct item *it, const char *key, size_t nkey)
{
    return it->nkey == nkey && memcmp(it->data, key, nkey) == 0;
}

struct item *ht_find(struct hashtable *ht, uint64_t hv, const char *key, size_t nkey)
{
    for (struct item *it = *bucket_for(ht, hv); it != NULL; it = it->h_next) {
        if (key_equal(it, key, nkey))
            return it;
    }
    return NULL;
}

void ht_insert(struct hashtable *ht, uint64_t hv, struct item *it)
{
    struct item **b = bucket_for(ht, hv);
    it->h_next = *b;
    *b = it;
    atomic_fetch_add_explicit(&ht->count, 1, memory_order_relaxed);
}

void ht_remove(struct hashtable *ht, uint64_t hv, struct item *it)
{
    for (struct item **pp = bucket_for(ht, hv); *pp != NULL; pp = &(*pp)->h_next) {
        if (*pp == it) {
            *pp = it->h_next;
            it->h_next = NULL;
            atomic_fetch_sub_explicit(&ht->count, 1, memory_order_relaxed);
            return;
        }
    }
}

void ht_replace(struct hashtable *ht, uint64_t hv, struct item *old, struct item *nu)
{
    for (struct item **pp = bucket_for(ht, hv); *pp != NULL; pp = &(*pp)->h_next) {
        if (*pp == old) {
            nu->h_next = old->h_next;
            *pp = nu;
            old->h_next = NULL;
            return;
        }
    }
}

uint64_t ht_count(const struct hashtable *ht)
{
    return atomic_load_explicit(&ht->count, memory_order_relaxed);
}

bool ht_is_growing(const struct hashtable *ht)
{
    return atomic_load_explicit(&ht->growing, memory_order_relaxed);
}

bool ht_needs_grow(const struct hashtable *ht)
{
    if (ht_is_growing(ht) || ht->hashpower >= 32)
        return false;
    uint64_t buckets = 1ULL << ht->hashpower;
    return ht_count(ht) > buckets + buckets / 2;
}

static void lock_all(struct hashtable *ht)
{
    for (size_t i = 0; i < ((size_t)1 << ht->lockpower); i++)
        pthread_mutex_lock(&ht->locks[i]);
}

static void unlock_all(struct hashtable *ht)
{
    for (size_t i = 0; i < ((size_t)1 << ht->lockpower); i++)
        pthread_mutex_unlock(&ht->locks[i]);
}

tc_status_e ht_grow_start(struct hashtable *ht)
{
    if (ht_is_growing(ht))
        return TC_OK;
    struct item **nu = calloc((size_t)1 << (ht->hashpower + 1), sizeof(struct item *));
    if (nu == NULL)
        return TC_NO_MEMORY;
    lock_all(ht);
    ht->old = ht->primary;
    ht->primary = nu;
    ht->hashpower++;
    atomic_store_explicit(&ht->migrated, 0, memory_order_release);
    atomic_store_explicit(&ht->growing, true, memory_order_relaxed);
    unlock_all(ht);
    return TC_OK;
}

bool ht_grow_step(struct hashtable *ht, size_t nbuckets)
{
    if (!ht_is_growing(ht))
        return true;
    uint64_t oldsize = 1ULL << (ht->hashpower - 1);
    uint64_t newmask = (1ULL << ht->hashpower) - 1;
    uint64_t b = atomic_load_explicit(&ht->migrated, memory_order_relaxed);
    for (size_t n = 0; n < nbuckets && b < oldsize; n++, b++) {
        ht_lock(ht, b);
        struct item *it = ht->old[b];
        while (it != NULL) {
            struct item *next = it->h_next;
            uint64_t hv = ht_hash(it->data, it->nkey);
            struct item **dst = &ht->primary[hv & newmask];
            it->h_next = *dst;
            *dst = it;
            it = next;
        }
        ht->old[b] = NULL;
        atomic_store_explicit(&ht->migrated, b + 1, memory_order_release);
        ht_unlock(ht, b);
    }
    if (b < oldsize)
        return false;

    lock_all(ht);
    free(ht->old);
    ht->old = NULL;
    atomic_store_explicit(&ht->growing, false, memory_order_relaxed);
    unlock_all(ht);
    return true;
}

unsigned ht_hashpower(const struct hashtable *ht)
{
    return ht->hashpower;
}

uint64_t ht_bytes(const struct hashtable *ht)
{
    uint64_t b = (1ULL << ht->hashpower) * sizeof(struct item *);
    if (ht->old != NULL)
        b += (1ULL << (ht->hashpower - 1)) * sizeof(struct item *);
    return b;
}

bool ht_scan(struct hashtable *ht, uint64_t *cursor, size_t nbuckets, ht_visit_fn visit, void *arg)
{
    if (ht_is_growing(ht))
        return false;
    uint64_t size = 1ULL << ht->hashpower;
    uint64_t b = *cursor;
    for (size_t n = 0; n < nbuckets && b < size; n++, b++) {
        ht_lock(ht, b);
        struct item *it = ht->primary[b];
        while (it != NULL) {
            struct item *next = it->h_next;
            visit(it, ht_hash(it->data, it->nkey), arg);
            it = next;
        }
        ht_unlock(ht, b);
    }
    if (b >= size) {
        *cursor = 0;
        return true;
    }
    *cursor = b;
    return false;
}
