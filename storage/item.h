/*
 * item.h: the in-memory item, private to the engine.
 *
 * An item is one contiguous chunk: a 54-byte header, then the key, then the
 * value. There is no NUL after the key and no "\r\n" after the value (the
 * protocol layer adds what it needs), so an item is 5 bytes smaller than
 * memcached's for the same key and value.
 *
 *   0        8        16       24       32     36     40     44     48  50  52 53 54
 *   +--------+--------+--------+--------+------+------+------+------+---+---+--+--+------+--------+
 *   | h_next |  prev  |  next  |  cas   |exptim|atime |nbytes|flags |ref|ifl|cl|nk| key  | value  |
 *   +--------+--------+--------+--------+------+------+------+------+---+---+--+--+------+--------+
 *
 * iflags holds the state bits below and, in its top two bits, the LRU
 * segment the item is in.
 *
 * Who may touch what:
 *   h_next            under the item's hash stripe lock (hashtable.c)
 *   prev, next        under its class lock (lru.c, cache.c)
 *   refcount          atomic: 1 for being linked + 1 per holder; 0 frees it
 *   iflags            atomic bit operations; the LRU bits change under the
 *                     class lock and are read racily for statistics
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

#include "flash_record.h"

enum item_iflag {
    ITEM_LINKED = 1 << 0,     /* in the hash table (and an LRU list, unless HEAP) */
    ITEM_ACTIVE = 1 << 1,     /* hit since it last moved in the LRU */
    ITEM_FETCHED = 1 << 2,    /* hit at least once since it was stored */
    ITEM_LARGE = 1 << 3,      /* its own mapping, not a slab chunk */
    ITEM_DEMOTING = 1 << 4,   /* queued for the flash writer, which holds a reference */
    ITEM_CLEAN = 1 << 5,      /* flash holds this very version (same CAS, same expiry) */
    ITEM_HEAP = 1 << 6,       /* malloc'd (tombstone, flash copy, in-flight write), no LRU */
    ITEM_TOMBSTONE = 1 << 7,  /* "deleted": shadows flash until the flash delete commits */
    ITEM_REDIRTY = 1 << 8,    /* changed (touched) while DEMOTING: do not mark clean */
    ITEM_FREE_CHUNK = 1 << 9, /* not an item: a free slab chunk (set under the class lock) */
    /* The meta protocol's state (CACHE_META_* << ITEM_META_SHIFT), kept
     * with the item on flash too (flash_record.h). */
    ITEM_STALE = CACHE_META_STALE << 10,           /* invalidated: readers see X, one wins */
    ITEM_WIN_SENT = CACHE_META_WIN_SENT << 10,     /* a client was told it won (W) */
    ITEM_KEY_BINARY = CACHE_META_KEY_BINARY << 10, /* stored under a base64 key */
    /* In its class's LRU lists (set and cleared under the class lock): a
     * holder of that lock who sees it knows the item is fully built. */
    ITEM_IN_LRU = 1 << 13,
};

#define ITEM_META_SHIFT 10
#define ITEM_META_MASK  (7U << ITEM_META_SHIFT)

#define ITEM_LRU_SHIFT 14
#define ITEM_LRU_MASK  (3U << ITEM_LRU_SHIFT)

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
    _Atomic uint16_t iflags; /* enum item_iflag | LRU segment << ITEM_LRU_SHIFT */
    uint8_t clsid;           /* 0 for heap items */
    uint8_t nkey;
    char data[]; /* key, then value */
};

_Static_assert(offsetof(struct item, data) == 54, "the item header is 54 bytes");

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

static inline uint16_t item_iflags(const struct item *it)
{
    return atomic_load_explicit(&it->iflags, memory_order_relaxed);
}

static inline void item_set_iflag(struct item *it, uint16_t f)
{
    if ((item_iflags(it) & f) != f)
        atomic_fetch_or_explicit(&it->iflags, f, memory_order_relaxed);
}

static inline void item_clear_iflag(struct item *it, uint16_t f)
{
    if ((item_iflags(it) & f) != 0)
        atomic_fetch_and_explicit(&it->iflags, (uint16_t)~f, memory_order_relaxed);
}

static inline uint32_t item_get_exptime(const struct item *it)
{
    return atomic_load_explicit(&it->exptime, memory_order_relaxed);
}

static inline uint32_t item_get_atime(const struct item *it)
{
    return atomic_load_explicit(&it->atime, memory_order_relaxed);
}

/* The item's CACHE_META_* bits. */
static inline unsigned item_meta(const struct item *it)
{
    return (item_iflags(it) & ITEM_META_MASK) >> ITEM_META_SHIFT;
}

/* The bits a flash record keeps of an item (flash_record.h mbits), and back. */
static inline uint8_t item_frec_bits(const struct item *it)
{
    return (uint8_t)(item_meta(it) | (item_iflags(it) & ITEM_FETCHED ? FREC_FETCHED : 0));
}

static inline uint16_t frec_bits_iflags(uint8_t mbits)
{
    return (uint16_t)(((mbits & FREC_META_MASK) << ITEM_META_SHIFT) |
                      (mbits & FREC_FETCHED ? ITEM_FETCHED : 0));
}

static inline enum lru_seg item_lru(const struct item *it)
{
    return (enum lru_seg)((item_iflags(it) & ITEM_LRU_MASK) >> ITEM_LRU_SHIFT);
}

/* Record the LRU segment, and that the item is in a list (class lock held). */
static inline void item_set_lru(struct item *it, enum lru_seg seg)
{
    uint16_t old = item_iflags(it);
    uint16_t nu;
    do {
        nu = (uint16_t)((old & ~ITEM_LRU_MASK) | ((unsigned)seg << ITEM_LRU_SHIFT) | ITEM_IN_LRU);
    } while (!atomic_compare_exchange_weak_explicit(&it->iflags, &old, nu, memory_order_relaxed,
                                                    memory_order_relaxed));
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
