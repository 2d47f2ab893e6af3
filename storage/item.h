/*
 * item.h: the in-memory item, private to the engine.
 *
 * An item is one contiguous chunk: a 54-byte header, then the key, then the
 * value. There is no NUL after the key and no "\r\n" after the value (the
 * protocol layer adds what it needs), so an item is 5 bytes smaller than
 * memcached's for the same key and value.
 *
 *   0        8        16       24       32     36     40     44     48  50 51 52 53 54
 *   +--------+--------+--------+--------+------+------+------+------+---+--+--+--+--+------+--------+
 *   | h_next |  prev  |  next  |  cas   |exptim|atime |nbytes|flags |ref|if|cl|nk|lr| key  | value
 * |
 *   +--------+--------+--------+--------+------+------+------+------+---+--+--+--+--+------+--------+
 *
 * Who may touch what:
 *   h_next            under the item's hash stripe lock (hashtable.c)
 *   prev, next        under its class lock (lru.c, cache.c)
 *   lru               written under the class lock, read racily for statistics
 *   refcount          atomic: 1 for being linked + 1 per holder; 0 frees it
 *   iflags            atomic bit operations
 *   exptime, atime    atomic (relaxed): written under the stripe lock, read by
 *                     the evictor and the crawler
 *   cas, value        written before the item is linked, or in place by incr
 *                     under the stripe lock when no one else holds a reference
 *   nbytes, flags, clsid, nkey, key: fixed from allocation on
 */
#ifndef TC_STORAGE_ITEM_H
#define TC_STORAGE_ITEM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/engine.h>

enum item_iflag {
    ITEM_LINKED = 1 << 0,  /* in the hash table and an LRU list */
    ITEM_ACTIVE = 1 << 1,  /* hit since it last moved in the LRU */
    ITEM_FETCHED = 1 << 2, /* hit at least once since it was stored */
    ITEM_LARGE = 1 << 3,   /* its own mapping, not a slab chunk */
};

enum lru_seg { LRU_HOT = 0, LRU_WARM = 1, LRU_COLD = 2, LRU_NSEGS = 3 };

struct item {
    struct item *h_next;
    struct item *prev;
    struct item *next;
    uint64_t cas;
    _Atomic uint32_t exptime; /* unix seconds, 0 = never */
    _Atomic uint32_t atime;   /* last access, unix seconds */
    uint32_t nbytes;          /* value length */
    uint32_t flags;           /* client flags */
    _Atomic uint16_t refcount;
    _Atomic uint8_t iflags;
    uint8_t clsid;
    uint8_t nkey;
    _Atomic uint8_t lru; /* enum lru_seg, while linked; written under the class lock */
    char data[];         /* key, then value */
};

#define ITEM_HEADER_SIZE offsetof(struct item, data)

/* Bytes an item with this key and value occupies. */
static inline size_t item_ntotal(size_t nkey, size_t nbytes)
{
    return ITEM_HEADER_SIZE + nkey + nbytes;
}

static inline char *item_data_value(struct item *it)
{
    return it->data + it->nkey;
}

static inline uint8_t item_iflags(const struct item *it)
{
    return atomic_load_explicit(&it->iflags, memory_order_relaxed);
}

static inline void item_set_iflag(struct item *it, uint8_t f)
{
    if ((item_iflags(it) & f) != f)
        atomic_fetch_or_explicit(&it->iflags, f, memory_order_relaxed);
}

static inline void item_clear_iflag(struct item *it, uint8_t f)
{
    if ((item_iflags(it) & f) != 0)
        atomic_fetch_and_explicit(&it->iflags, (uint8_t)~f, memory_order_relaxed);
}

static inline uint32_t item_get_exptime(const struct item *it)
{
    return atomic_load_explicit(&it->exptime, memory_order_relaxed);
}

static inline uint32_t item_get_atime(const struct item *it)
{
    return atomic_load_explicit(&it->atime, memory_order_relaxed);
}

static inline enum lru_seg item_lru(const struct item *it)
{
    return (enum lru_seg)atomic_load_explicit(&it->lru, memory_order_relaxed);
}

static inline uint16_t item_refcount(const struct item *it)
{
    return atomic_load_explicit(&it->refcount, memory_order_acquire);
}

/* Take one more reference; the caller already holds one or the stripe lock. */
static inline void item_ref(struct item *it)
{
    atomic_fetch_add_explicit(&it->refcount, 1, memory_order_relaxed);
}

/* Drop one reference; returns the count left (0: the caller must free it). */
static inline uint16_t item_unref_raw(struct item *it)
{
    return (uint16_t)(atomic_fetch_sub_explicit(&it->refcount, 1, memory_order_acq_rel) - 1);
}

/* Initialise a fresh chunk as an unlinked item with one reference. */
void item_init(struct item *it, uint8_t clsid, const char *key, size_t nkey, uint32_t flags,
               uint32_t exptime, uint32_t nbytes, uint32_t now);

#endif
