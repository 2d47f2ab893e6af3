/*
 * cache.c: the engine's life cycle, clock, item memory and LRU membership:
 * creation, workers, allocation with eviction, linking and unlinking. The
 * operations themselves are in ops.c; the flash side in tiered.c.
 *
 * Item memory comes from the item's slab class under the class lock. When a
 * class is out of memory, items are taken from the tails of its LRU (COLD
 * first, then HOT, then WARM): expired items are reclaimed; items someone
 * holds are skipped; an ACTIVE COLD item gets a second round in WARM. With a
 * flash tier, only items whose current version is already on flash (CLEAN)
 * may simply be dropped; a dirty one is queued for the flash writer instead
 * and allocation looks further (and answers TC_BUSY when nothing could be
 * freed). The maintainer cleans COLD tails ahead of need so that this is rare.
 *
 * Reference counting: a linked item holds one reference for the table;
 * every pointer handed out holds one more. Whoever drops the last reference
 * frees the memory (cache_item_free()).
 *
 * Flush: an item is flushed if its CAS is below flush_cas (every flush_all
 * that has taken effect), or if a delayed flush_all is due (now >= flush_at)
 * and the item was last stored or used before that moment.
 */
#include "cache_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define EVICT_TRIES  5   /* items examined per LRU segment tail */
#define ALLOC_ROUNDS 10  /* eviction rounds before giving up */
#define EVICT_BURST  256 /* items queued for flash when eviction meets dirty ones */

/* ---------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------- */

void cache_options_default(struct cache_options *o)
{
    *o = (struct cache_options){
        .mem_limit = 64ULL << 20,
        .item_size_max = 1U << 20,
        .growth_factor = 1.25,
        .chunk_min = 48,
        .page_size = 1U << 20,
        .hashpower_init = 16,
        .hot_lru_pct = 20,
        .warm_lru_pct = 40,
        .flash_sync = CACHE_FLASH_SYNC_INTERVAL,
        .flash_min_ttl = 10,
    };
}

static cache_time_t wall_now(void)
{
    return (cache_time_t)time(NULL);
}

tc_status_e cache_create(const struct cache_options *o, struct cache **out)
{
    if (o->page_size < 4096 || (o->page_size & (o->page_size - 1)) != 0 ||
        o->mem_limit < o->page_size || o->growth_factor <= 1.0 || o->chunk_min < 8 ||
        o->item_size_max < 1 || o->hashpower_init < HT_LOCKPOWER || o->hashpower_init > 32 ||
        o->hot_lru_pct + o->warm_lru_pct > 80 ||
        (o->flash_dir != NULL && o->flash_size > 0 && o->flash_size < (8ULL << 20)))
        return TC_INVALID;

    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return TC_NO_MEMORY;
    c->opts = *o;
    c->pool.mem_limit = o->mem_limit;
    c->pool.page_size = o->page_size;
    c->pool.chunk_max = o->page_size / 2;

    uint32_t sizes[CACHE_MAX_CLASSES];
    /* memcached's first class: its 48-byte item header plus -n. Same sizes. */
    c->nslab = slab_class_sizes(48 + o->chunk_min, o->growth_factor, c->pool.chunk_max,
                                o->page_size, sizes, CACHE_MAX_CLASSES - 1);
    c->large = c->nslab + 1;
    for (unsigned i = 1; i <= c->large; i++) {
        pthread_mutex_init(&c->cls[i].lock, NULL);
        slab_class_init(&c->cls[i].slab, i <= c->nslab ? sizes[i] : 0, o->page_size);
    }
    pthread_mutex_init(&c->workers_lock, NULL);
    pthread_mutex_init(&c->stats_lock, NULL);
    pthread_mutex_init(&c->maint_lock, NULL);
    pthread_cond_init(&c->maint_cond, NULL);
    atomic_init(&c->next_cas, 1);
    c->started = wall_now();
    clock_gettime(CLOCK_MONOTONIC, &c->mono_started);
    atomic_init(&c->now, c->started);
    c->crawl_interval = 1;
    c->crawl_next = c->started + 1;

    tc_status_e st = ht_create(o->hashpower_init, HT_LOCKPOWER, &c->ht);
    if (st == TC_OK && o->flash_dir != NULL && o->flash_size > 0)
        st = tier_open(c, o);
    if (st == TC_OK)
        st = cache_worker_create(c, &c->maint_w);
    if (st == TC_OK && !o->no_maintainer)
        st = maintainer_start(c);
    if (st != TC_OK) {
        cache_destroy(&c);
        return st;
    }
    *out = c;
    return TC_OK;
}

/* Teardown: gather linked heap items (their ->next is free to use). */
static void collect_heap(struct item *it, uint64_t hv, void *arg)
{
    (void)hv;
    struct item **list = arg;
    if (item_iflags(it) & ITEM_HEAP) {
        it->next = *list;
        *list = it;
    }
}

void cache_destroy(struct cache **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    struct cache *c = *cp;
    maintainer_stop(c);
    tier_stop_writer(c);               /* the writer applies what is queued, then stops */
    cache_worker_destroy(&c->maint_w); /* its flash reader goes before the flash env */
    if (c->clean_stop && c->flash != NULL) {
        /* Exact values now that nothing runs: the next start continues here. */
        flash_set_engine_state(c->flash, atomic_load(&c->next_cas), atomic_load(&c->flush_cas),
                               atomic_load(&c->flush_at));
        if (flash_mark_clean(c->flash) != TC_OK)
            tc_log(TC_LOG_ERROR, "flash: cannot record the clean stop: the next start will "
                                 "rebuild the filter");
    }
    tier_close(c);

    /* Linked heap items (tombstones) are not in any LRU: gather and free
     * them; slab items go with their pages, large ones are unmapped below. */
    if (c->ht != NULL) {
        while (ht_is_growing(c->ht))
            ht_grow_step(c->ht, 1 << 20);
        struct item *heap = NULL;
        uint64_t cursor = 0;
        while (!ht_scan(c->ht, &cursor, 1 << 16, collect_heap, &heap))
            ;
        while (heap != NULL) {
            struct item *next = heap->next;
            free(heap);
            heap = next;
        }
    }
    struct cls *lg = &c->cls[c->large];
    for (int seg = 0; seg < LRU_NSEGS; seg++) {
        struct item *it = lg->lru.head[seg];
        while (it != NULL) {
            struct item *next = it->next;
            slab_large_free(&c->pool, &lg->slab, it, item_ntotal(it->nkey, it->nbytes));
            it = next;
        }
    }
    for (unsigned i = 1; i <= c->large; i++) {
        slab_class_deinit(&c->cls[i].slab);
        pthread_mutex_destroy(&c->cls[i].lock);
    }
    ht_destroy(&c->ht);
    pthread_mutex_destroy(&c->workers_lock);
    pthread_mutex_destroy(&c->stats_lock);
    pthread_mutex_destroy(&c->maint_lock);
    pthread_cond_destroy(&c->maint_cond);
    free(c);
    *cp = NULL;
}

tc_status_e cache_worker_create(struct cache *c, struct cache_worker **out)
{
    struct cache_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return TC_NO_MEMORY;
    w->c = c;
    if (c->flash != NULL && flash_reader_create(c->flash, &w->fr) != TC_OK) {
        free(w);
        return TC_NO_MEMORY;
    }
    pthread_mutex_lock(&c->workers_lock);
    w->next = c->workers;
    if (c->workers != NULL)
        c->workers->prev = w;
    c->workers = w;
    pthread_mutex_unlock(&c->workers_lock);
    *out = w;
    return TC_OK;
}

static void counters_add(struct worker_counters *dst, const struct worker_counters *src)
{
    /* Both structs are arrays of wctr_t; add them element by element. */
    const wctr_t *s = (const wctr_t *)src;
    wctr_t *d = (wctr_t *)dst;
    for (size_t i = 0; i < sizeof(*src) / sizeof(wctr_t); i++)
        WCTR_ADD(d[i], WCTR_GET(s[i]));
}

void cache_worker_destroy(struct cache_worker **wp)
{
    if (wp == NULL || *wp == NULL)
        return;
    struct cache_worker *w = *wp;
    struct cache *c = w->c;
    flash_reader_destroy(&w->fr);
    pthread_mutex_lock(&c->workers_lock);
    counters_add(&c->retired, &w->ctr);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        c->workers = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&c->workers_lock);
    free(w);
    *wp = NULL;
}

void cache_workers_sum(struct cache *c, struct worker_counters *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->workers_lock);
    counters_add(out, &c->retired);
    for (struct cache_worker *w = c->workers; w != NULL; w = w->next)
        counters_add(out, &w->ctr);
    pthread_mutex_unlock(&c->workers_lock);
}

/* ---------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------- */

cache_time_t cache_now(const struct cache *c)
{
    return atomic_load_explicit(&c->now, memory_order_relaxed);
}

cache_time_t cache_started(const struct cache *c)
{
    return c->started;
}

/*
 * Advance the clock. A delayed flush_all kills the items used at or before
 * its second `due`. Once that second is over it is turned into a CAS
 * boundary, taken before the new time is published: items stored until
 * then (with a time <= due) got smaller CAS values than the boundary.
 */
void cache_clock_tick(struct cache *c, cache_time_t now)
{
    uint32_t due = atomic_load_explicit(&c->flush_at, memory_order_acquire);
    if (due != 0 && now > due) {
        uint64_t boundary = atomic_load_explicit(&c->next_cas, memory_order_acquire);
        uint64_t cur = atomic_load_explicit(&c->flush_cas, memory_order_relaxed);
        while (cur < boundary && !atomic_compare_exchange_weak(&c->flush_cas, &cur, boundary))
            ;
        atomic_store_explicit(&c->now, now, memory_order_release);
        uint32_t expect = due;
        atomic_compare_exchange_strong(&c->flush_at, &expect, 0);
        return;
    }
    atomic_store_explicit(&c->now, now, memory_order_release);
}

void cache_clock_set(struct cache *c, cache_time_t now)
{
    cache_clock_tick(c, now);
}

cache_time_t cache_realtime(const struct cache *c, int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1; /* long past: expired */
    if (exptime > CACHE_REALTIME_MAXDELTA) {
        /* memcached: a unix time at or before its process start (which it
         * dates 62 s before the real start) becomes 1, "long past". */
        if (exptime <= (int64_t)c->started - 62)
            return 1;
        return exptime > UINT32_MAX ? UINT32_MAX : (cache_time_t)exptime;
    }
    return cache_now(c) + (cache_time_t)exptime;
}

/* ---------------------------------------------------------------------------
 * Liveness
 * ------------------------------------------------------------------------- */

bool cache_record_is_dead(const struct cache *c, uint32_t exptime, uint32_t atime, uint64_t cas,
                          cache_time_t now)
{
    if (exptime != 0 && exptime <= now)
        return true;
    if (cas < atomic_load_explicit(&c->flush_cas, memory_order_relaxed))
        return true;
    uint32_t due = atomic_load_explicit(&c->flush_at, memory_order_relaxed);
    return due != 0 && now >= due && atime <= due;
}

bool cache_item_is_dead(const struct cache *c, const struct item *it, cache_time_t now,
                        bool *flushed)
{
    *flushed = false;
    uint32_t exp = item_get_exptime(it);
    if (exp != 0 && exp <= now)
        return true;
    if (cache_record_is_dead(c, 0, item_get_atime(it), it->cas, now)) {
        *flushed = true;
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------------------
 * Item memory
 * ------------------------------------------------------------------------- */

unsigned cache_class_for(const struct cache *c, size_t ntotal)
{
    if (ntotal > c->pool.chunk_max)
        return c->large;
    /* Classes are few and sorted: binary search the first that fits. */
    unsigned lo = 1, hi = c->nslab;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (c->cls[mid].slab.size >= ntotal)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void cache_item_free(struct cache *c, struct item *it)
{
    uint16_t fl = item_iflags(it);
    if (fl & ITEM_HEAP) {
        atomic_fetch_sub_explicit(&c->tc.heap_items, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&c->tc.heap_bytes, item_ntotal(it->nkey, it->nbytes),
                                  memory_order_relaxed);
        free(it);
        return;
    }
    struct cls *k = &c->cls[it->clsid];
    pthread_mutex_lock(&k->lock);
    if (fl & ITEM_LARGE) {
        slab_large_free(&c->pool, &k->slab, it, item_ntotal(it->nkey, it->nbytes));
    } else if (!rebalance_chunk_freed(k, it)) {
        atomic_store_explicit(&it->iflags, ITEM_FREE_CHUNK, memory_order_relaxed);
        slab_chunk_free(&k->slab, it);
    }
    pthread_mutex_unlock(&k->lock);
}

void cache_item_unref(struct cache *c, struct item *it)
{
    if (it != NULL && item_unref_raw(it) == 0)
        cache_item_free(c, it);
}

/*
 * Take an item out of the table (and its LRU). Caller holds the item's
 * stripe; the table's reference is dropped (the item is freed if it was the
 * last). The flash side is the caller's business (tiered.c).
 */
void cache_unlink_locked(struct cache *c, struct item *it, uint64_t hv)
{
    ht_remove(c->ht, hv, it);
    if (!(item_iflags(it) & ITEM_HEAP)) {
        struct cls *k = &c->cls[it->clsid];
        pthread_mutex_lock(&k->lock);
        lru_unlink(&k->lru, it);
        k->mem_requested -= item_ntotal(it->nkey, it->nbytes);
        pthread_mutex_unlock(&k->lock);
    }
    item_clear_iflag(it, ITEM_LINKED);
    cache_item_unref(c, it);
}

/*
 * Put an item in the table (taking the place of `prev`, the key's current
 * entry, if any: a RAM item or a tombstone) and at the head of HOT. A fresh
 * CAS unless keep_cas (an item coming back from flash keeps its own).
 * Caller holds the stripe.
 */
void cache_link_locked(struct cache *c, struct item *it, uint64_t hv, struct item *prev,
                       bool keep_cas)
{
    if (!keep_cas)
        it->cas = atomic_fetch_add_explicit(&c->next_cas, 1, memory_order_relaxed);
    if (prev != NULL) {
        /* Flash holds the version being replaced, or will once its queued
         * write commits: have it deleted there (the delete is queued after
         * the write), so that a crash cannot bring it back. */
        if (item_iflags(prev) & (ITEM_CLEAN | ITEM_DEMOTING))
            tier_invalidate_locked(c, hv, prev->data, prev->nkey);
        cache_unlink_locked(c, prev, hv);
    }
    if (!keep_cas)
        atomic_store_explicit(&it->atime, cache_now(c), memory_order_relaxed);
    item_ref(it);
    item_set_iflag(it, ITEM_LINKED);
    ht_insert(c->ht, hv, it);
    if (!(item_iflags(it) & ITEM_HEAP)) {
        struct cls *k = &c->cls[it->clsid];
        pthread_mutex_lock(&k->lock);
        lru_link(&k->lru, it, LRU_HOT);
        k->mem_requested += item_ntotal(it->nkey, it->nbytes);
        pthread_mutex_unlock(&k->lock);
    }
    if (!(item_iflags(it) & ITEM_HEAP))
        atomic_fetch_add_explicit(&c->total_items, 1, memory_order_relaxed);
    if (ht_needs_grow(c->ht))
        maintainer_wake(c);
}

static void count_eviction(struct cls *k, struct item *it, uint16_t fl, bool dead, cache_time_t now)
{
    if (dead) {
        k->ctr.reclaimed++;
        if (!(fl & ITEM_FETCHED))
            k->ctr.expired_unfetched++;
        return;
    }
    k->ctr.evicted++;
    if (item_get_exptime(it) != 0)
        k->ctr.evicted_nonzero++;
    if (!(fl & ITEM_FETCHED))
        k->ctr.evicted_unfetched++;
    if (fl & ITEM_ACTIVE)
        k->ctr.evicted_active++;
    uint32_t at = item_get_atime(it);
    k->ctr.evicted_time = now > at ? now - at : 0;
}

/*
 * Free one chunk of class `k` from its LRU tails. Caller holds k->lock.
 * Returns the victim, unlinked and owned by the caller (refcount 1), or
 * NULL; *busy is set if dirty items were found that are on their way to
 * flash (room will come: TC_BUSY rather than TC_NO_MEMORY).
 */
static struct item *evict_locked(struct cache_worker *w, struct cls *k, bool *busy)
{
    struct cache *c = w->c;
    static const enum lru_seg order[] = {LRU_COLD, LRU_HOT, LRU_WARM};
    cache_time_t now = cache_now(c);
    bool flash = tier_usable(c);
    for (size_t s = 0; s < sizeof(order) / sizeof(order[0]); s++) {
        struct item *it = k->lru.tail[order[s]];
        for (int tries = 0; it != NULL && tries < EVICT_TRIES; tries++) {
            struct item *prev = it->prev;
            uint16_t fl = item_iflags(it);
            if (item_refcount(it) != 1) {
                /* Being read, or queued for flash (the writer holds it). */
                k->ctr.lrutail_reflocked++;
                if (fl & ITEM_DEMOTING)
                    *busy = true;
                it = prev;
                continue;
            }
            bool flushed;
            bool dead = cache_item_is_dead(c, it, now, &flushed);
            if (!dead && order[s] == LRU_COLD && (fl & ITEM_ACTIVE)) {
                item_clear_iflag(it, ITEM_ACTIVE);
                lru_move(&k->lru, it, LRU_WARM);
                k->ctr.moves_to_warm++;
                it = prev;
                continue;
            }
            uint64_t hv = ht_hash(it->data, it->nkey);
            if (!ht_trylock(c->ht, hv)) {
                it = prev;
                continue;
            }
            /* With the stripe held nobody can take a new reference. */
            if (item_refcount(it) != 1 || !(item_iflags(it) & ITEM_LINKED)) {
                ht_unlock(c->ht, hv);
                it = prev;
                continue;
            }
            if (!dead && flash && !(fl & ITEM_CLEAN) &&
                tier_admit(item_get_exptime(it), now, c->flash_min_ttl, it->nbytes,
                           c->flash_value_max)) {
                /* Dirty: it must reach flash before it may leave RAM. The
                 * cleaner fell behind: queue a burst from the tail now. */
                tier_start_demotion(c, it, hv);
                ht_unlock(c->ht, hv);
                if (!*busy)
                    tier_preclean_locked(c, k, EVICT_BURST);
                *busy = true;
                it = prev;
                continue;
            }
            if (!tier_remove_locked(w, it, hv, dead ? RM_EXPIRED : RM_EVICT, true)) {
                ht_unlock(c->ht, hv);
                it = prev;
                continue;
            }
            ht_unlock(c->ht, hv);
            lru_unlink(&k->lru, it);
            k->mem_requested -= item_ntotal(it->nkey, it->nbytes);
            count_eviction(k, it, fl, dead, now);
            return it;
        }
    }
    return NULL;
}

struct item *cache_alloc_chunk(struct cache_worker *w, size_t ntotal, unsigned *clsid, bool *busy)
{
    struct cache *c = w->c;
    unsigned id = cache_class_for(c, ntotal);
    struct cls *k = &c->cls[id];
    struct item *it = NULL;
    *clsid = id;
    *busy = false;

    pthread_mutex_lock(&k->lock);
    if (id == c->large) {
        for (int round = 0; it == NULL && round < ALLOC_ROUNDS * 4; round++) {
            it = slab_large_alloc(&c->pool, &k->slab, ntotal);
            if (it != NULL)
                break;
            /* Make room by evicting large items; their memory goes back to
             * the budget when their last reference is dropped. */
            struct item *victim = evict_locked(w, k, busy);
            if (victim == NULL)
                break;
            slab_large_free(&c->pool, &k->slab, victim, item_ntotal(victim->nkey, victim->nbytes));
        }
        if (it != NULL)
            atomic_store_explicit(&it->iflags, ITEM_LARGE, memory_order_relaxed);
    } else {
        it = slab_chunk_alloc(&c->pool, &k->slab);
        for (int round = 0, swallowed = 0; it == NULL && round < ALLOC_ROUNDS; round++) {
            it = evict_locked(w, k, busy);
            if (it != NULL && rebalance_chunk_freed(k, it)) {
                /* Its page is being emptied: not for reuse. The eviction did
                 * make progress, so it does not use up a round (within a
                 * bound), and if room is still short the caller retries
                 * (TC_BUSY) rather than failing: the move ends soon. */
                it = NULL;
                *busy = true;
                if (++swallowed < 4 * ALLOC_ROUNDS)
                    round--;
            }
        }
        if (it != NULL)
            atomic_store_explicit(&it->iflags, 0, memory_order_relaxed);
    }
    if (it == NULL) {
        k->ctr.outofmemory++;
        if (*busy)
            atomic_fetch_add_explicit(&c->tc.busy, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&k->lock);
    if (it == NULL && *busy) {
        maintainer_wake(c);
        if (c->writer != NULL)
            writer_kick(c->writer);
    }
    return it;
}
