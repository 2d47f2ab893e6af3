/*
 * slab.h: memory for items, in size classes carved from fixed-size pages,
 * under one byte budget.
 *
 * Classes grow by a factor (memcached's sizes: 96, 120, 152, ... with the
 * defaults) up to half a page; an item too big for the largest class gets a
 * mapping of its own ("large" item), charged to the same budget (which a
 * class's first page may pass, as in memcached: see slab.c). A page, once
 * given to a class, stays with it until the rebalancer (rebalance.c) empties
 * and releases it; memory is taken lazily, one chunk at a time, so resident
 * memory follows what is used.
 *
 * Locking: a struct slab_class is protected by its owner's lock (the class
 * lock in cache.c); the budget (struct slab_pool) is atomic and shared.
 */
#ifndef TC_STORAGE_SLAB_H
#define TC_STORAGE_SLAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/status.h>

struct slab_pool {
    uint64_t mem_limit;        /* bytes */
    _Atomic uint64_t mem_used; /* pages + large mappings */
    _Atomic uint64_t malloc_fails;
    uint32_t page_size;
    uint32_t chunk_max; /* largest slab chunk; bigger items are large */
};

struct slab_class {
    uint32_t size;    /* chunk size */
    uint32_t perslab; /* chunks per page */
    void *freelist;   /* freed chunks, linked through their first word */
    uint64_t nfree;
    char *end_page;    /* not yet carved part of the newest page */
    uint32_t end_free; /* chunks left there */
    uint64_t npages;
    void **pages; /* every page, for teardown */
    uint64_t pages_cap;
    uint64_t nlarge_bytes; /* large class only: bytes mapped */
};

/*
 * Compute the class sizes: class 1 is `min_size`, each next one `factor`
 * times larger (8-byte aligned) until chunk_max / factor, then chunk_max.
 * Fills sizes[1..] and returns the number of slab classes (<= max - 1).
 */
unsigned slab_class_sizes(uint32_t min_size, double factor, uint32_t chunk_max, uint32_t page_size,
                          uint32_t *sizes, unsigned max);

void slab_class_init(struct slab_class *sc, uint32_t size, uint32_t page_size);
/* Free every page of the class. */
void slab_class_deinit(struct slab_class *sc);

/*
 * A chunk from the class: a freed one, else a new one from the current page,
 * else from a new page if the budget allows. NULL if none of those.
 */
void *slab_chunk_alloc(struct slab_pool *pool, struct slab_class *sc);
/* Give a chunk back to its class. */
void slab_chunk_free(struct slab_class *sc, void *chunk);

/* Take the free chunks in [lo, hi) out of the freelist (a page being emptied). */
void slab_freelist_drop_range(struct slab_class *sc, const char *lo, const char *hi);

/* Unmap one page of the class (every chunk of it unused) and refund the
 * budget: the page is gone from the class. */
void slab_page_release(struct slab_pool *pool, struct slab_class *sc, char *page);

/* Whether a new page would fit the budget now (a hint; the allocation decides). */
bool slab_pool_has_room(struct slab_pool *pool, uint64_t bytes);

/* A large item's mapping of `size` bytes, charged to the budget; NULL if over it. */
void *slab_large_alloc(struct slab_pool *pool, struct slab_class *large, size_t size);
/* Unmap a large item's mapping and refund the budget. */
void slab_large_free(struct slab_pool *pool, struct slab_class *large, void *p, size_t size);

#endif
