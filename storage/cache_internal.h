/*
 * cache_internal.h: the engine's private state, shared by cache.c (the
 * operations), maintainer.c (background work) and stats.c.
 *
 * Lock order: hash stripe -> class lock. Code holding a class lock that needs
 * an item's stripe (eviction) only try-locks it and skips the item on
 * failure, so the order is never inverted into a wait.
 */
#ifndef TC_STORAGE_CACHE_INTERNAL_H
#define TC_STORAGE_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <tiercache/engine.h>

#include "flash.h"
#include "hashtable.h"
#include "item.h"
#include "lru.h"
#include "slab.h"
#include "tier.h"
#include "writer.h"

#define HT_LOCKPOWER 12
#define HT_STRIPES   (1U << HT_LOCKPOWER)

/* Counters a class keeps under its lock (cache_class_stats names). */
struct cls_counters {
    uint64_t evicted, evicted_nonzero, outofmemory, reclaimed;
    uint64_t expired_unfetched, evicted_unfetched, evicted_active;
    uint64_t crawler_reclaimed, crawler_items_checked, lrutail_reflocked;
    uint64_t moves_to_cold, moves_to_warm, moves_within_lru, direct_reclaims;
    uint32_t evicted_time; /* age of the last evicted item, seconds */
};

/* One slab class: its memory, its LRU, its counters, one lock for all. */
struct cls {
    alignas(64) pthread_mutex_t lock;
    struct slab_class slab;
    struct lru lru;
    uint64_t mem_requested; /* sum of item_ntotal() of linked items */
    struct cls_counters ctr;
    /* rebalance.c */
    char *move_page;     /* the page being emptied for another class, or NULL */
    size_t move_len;     /* its chunk bytes */
    size_t move_scan;    /* next chunk to look at */
    size_t move_free;    /* chunks found free in a row */
    uint64_t rb_cursor;  /* next page to consider giving */
    uint64_t rb_evicted; /* evictions + allocation failures at the last decision */
    unsigned rb_streak;  /* decisions in a row that saw new evictions */
};

/* The page mover's state (rebalance.c), the maintainer's only. */
struct rebalancer {
    _Atomic bool active; /* a page of class src is being emptied for dst */
    unsigned src, dst;
    cache_time_t started; /* of the move under way */
    cache_time_t decided; /* the second of the last decision */
    _Atomic uint64_t moved, abandoned, evacuated;
};

/* Counters a worker keeps for itself: single writer, relaxed atomics so
 * that readers summing them are race-free. */
typedef _Atomic uint64_t wctr_t;

struct worker_class_counters {
    wctr_t get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits, cas_badval, touch_hits,
        hits_to_hot, hits_to_warm, hits_to_cold;
};

struct worker_counters {
    wctr_t get_misses, get_expired, get_flushed, touch_misses, delete_misses, incr_misses,
        decr_misses, cas_misses, store_too_large, store_no_memory, flush_cmds;
    wctr_t flash_get_hits; /* gets served from flash (no slab class) */
    struct worker_class_counters cls[CACHE_MAX_CLASSES];
};

/* Bump a single-writer counter without a locked instruction. */
#define WCTR_ADD(ctr, n)                                                                           \
    atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (n),        \
                          memory_order_relaxed)
#define WCTR_INC(ctr) WCTR_ADD(ctr, 1)
#define WCTR_GET(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)

struct cache_worker {
    struct cache *c;
    struct cache_worker *next, *prev; /* in c->workers */
    struct flash_reader *fr;          /* NULL when RAM only */
    struct worker_counters ctr;
};

/* Counters of the tiering (relaxed atomics, any thread). */
struct tier_counters {
    _Atomic uint64_t flash_hits, flash_misses, promotions, materialized;
    _Atomic uint64_t demotions_queued, dropped_clean, dropped_dirty, tombstones, busy;
    _Atomic uint64_t invalidations, spills;
    _Atomic uint64_t heap_items, heap_bytes;
};

struct cache {
    struct cache_options opts;
    struct slab_pool pool;
    unsigned nslab; /* slab classes are 1..nslab */
    unsigned large; /* the large class id, nslab + 1 */
    struct cls cls[CACHE_MAX_CLASSES];
    struct hashtable *ht;

    _Atomic uint64_t next_cas;  /* the next CAS to hand out */
    _Atomic uint64_t flush_cas; /* items with a smaller CAS are flushed */
    _Atomic uint32_t flush_at;  /* a pending delayed flush_all, 0 if none */
    _Atomic uint32_t now;
    cache_time_t started;
    struct timespec mono_started;
    _Atomic uint64_t total_items;

    /* maintainer */
    pthread_t maint;
    bool maint_running;
    pthread_mutex_t maint_lock;
    pthread_cond_t maint_cond;
    bool maint_stop;
    uint64_t crawl_cursor;
    bool crawl_active;
    uint64_t crawl_reclaimed_pass;
    cache_time_t crawl_next;
    uint32_t crawl_interval;
    _Atomic bool crawl_requested; /* cache_crawl_now(): start a pass at the next round */
    struct rebalancer rb;
    _Atomic uint64_t crawler_starts, juggles;

    /* flash tier (NULL when RAM only) */
    struct flash *flash;
    struct writer *writer;
    struct tier_sketch *sketch;
    uint32_t flash_min_ttl;
    uint32_t flash_value_max;     /* larger values are not demoted (flash_value_max()) */
    uint32_t pending[HT_STRIPES]; /* queued writes per stripe, under the stripe's lock */
    struct cache_worker *maint_w; /* the maintainer's and crawler's own handle */
    struct tier_counters tc;
    _Atomic uint64_t cas_lease; /* persisted: no CAS at or above it was handed out before */
    _Atomic bool state_dirty;   /* flush state changed: the writer should persist it */
    bool clean_stop;            /* cache_persist() ran: record a clean stop at destroy */

    /* workers and statistics */
    pthread_mutex_t workers_lock;
    struct cache_worker *workers;
    struct worker_counters retired; /* counters of destroyed workers */
    pthread_mutex_t stats_lock;
    struct cache_stats base; /* counters at the last `stats reset` */
    struct cache_class_stats cbase[CACHE_MAX_CLASSES];
};

/* Why a RAM item leaves RAM without a newer version taking its place. */
enum removal { RM_DELETE, RM_EXPIRED, RM_EVICT };

/* cache.c: memory, linking, eviction */
bool cache_item_is_dead(const struct cache *c, const struct item *it, cache_time_t now,
                        bool *flushed);
bool cache_record_is_dead(const struct cache *c, uint32_t exptime, uint32_t atime, uint64_t cas,
                          cache_time_t now);
void cache_unlink_locked(struct cache *c, struct item *it, uint64_t hv);
void cache_item_free(struct cache *c, struct item *it);
void cache_clock_tick(struct cache *c, cache_time_t now);
/* The slab class (or the large class) an item of ntotal bytes belongs to. */
unsigned cache_class_for(const struct cache *c, size_t ntotal);
struct item *cache_alloc_chunk(struct cache_worker *w, size_t ntotal, unsigned *clsid, bool *busy);
void cache_link_locked(struct cache *c, struct item *it, uint64_t hv, struct item *prev,
                       bool keep_cas);

/* tiered.c: the flash side of the engine */
struct item *tier_heap_item(struct cache *c, const char *key, size_t nkey, uint32_t flags,
                            uint32_t exptime, uint32_t nbytes, uint16_t iflags);
bool tier_remove_locked(struct cache_worker *w, struct item *it, uint64_t hv, enum removal why,
                        bool reuse);
bool tier_tombstone_locked(struct cache_worker *w, uint64_t hv, const char *key, size_t nkey);
void tier_invalidate_locked(struct cache *c, uint64_t hv, const char *key, size_t nkey);
bool tier_may_be_on_flash(struct cache_worker *w, uint64_t hv);
bool tier_usable(const struct cache *c);
bool tier_start_demotion(struct cache *c, struct item *it, uint64_t hv);

/*
 * A new version of a key for which RAM has no room now, when memcached would
 * need none (a touch, gat or incr changes its item in place): a heap item,
 * linked in place of `prev` (the key's entry, may be NULL) and queued for
 * flash at once; its write replaces the key's record there, and then the
 * writer takes it out of RAM (cache_flash_done). v gives its fields (key,
 * value, flags, expiry, access time, and the CAS if keep_cas). Stripe held.
 * NULL if flash is failing or malloc fails. The reference returned is the
 * caller's.
 */
struct item *tier_spill_locked(struct cache *c, uint64_t hv, const struct flash_item *v,
                               bool keep_cas, struct item *prev);
bool tier_preclean(struct cache *c, struct cls *k);
unsigned tier_preclean_locked(struct cache *c, struct cls *k, unsigned want);
void cache_flash_done(struct cache *c, const struct wop *op, bool ok);
void cache_flash_evicted(struct cache *c, uint64_t hv, const char *key, size_t nkey, uint64_t cas);
tc_status_e tier_open(struct cache *c, const struct cache_options *o);
void tier_stop_writer(struct cache *c);
void tier_close(struct cache *c);

/* rebalance.c: one round of page moving (maintainer); true while a move runs */
bool rebalance_maintain(struct cache *c, cache_time_t now);
/* cache_item_free (class lock held): a chunk of the page being emptied is
 * only marked free. Returns true if it was such a chunk. */
bool rebalance_chunk_freed(struct cls *k, struct item *it);

/* maintainer.c */
tc_status_e maintainer_start(struct cache *c);
void maintainer_stop(struct cache *c);
void maintainer_wake(struct cache *c);

/* Sum of the workers' counters into `out` (zeroed first). */
void cache_workers_sum(struct cache *c, struct worker_counters *out);

#endif
