/*
 * cache.c: the engine's operations (engine.h): lookups, stores, deletes,
 * arithmetic, flush, and item memory management with eviction.
 *
 * Every operation on a key runs with the key's hash stripe held, from the
 * lookup to the last change, so operations on one key are linearizable: a
 * reply sent after an operation returns can never be contradicted by a
 * later read. Item memory comes from the item's slab class under the class
 * lock; when a class is out of memory, items are evicted from the tails of
 * its LRU (COLD first, then HOT, then WARM), skipping items someone holds.
 *
 * Reference counting: a linked item holds one reference for the table;
 * every pointer handed out holds one more. Whoever drops the last reference
 * frees the chunk (cache_item_free()).
 *
 * Flush: an item is flushed if its CAS is below flush_cas (every flush_all
 * that has taken effect), or if a delayed flush_all is due (now >= flush_at)
 * and the item was last stored or used before that moment.
 */
#include "cache_internal.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "numparse.h"

#define EVICT_TRIES    5  /* items examined per LRU segment tail */
#define ALLOC_ROUNDS   10 /* eviction rounds before giving up */
#define REFCOUNT_LIMIT 60000
#define HT_LOCKPOWER   12

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
        o->hot_lru_pct + o->warm_lru_pct > 80)
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

    tc_status_e st = ht_create(o->hashpower_init, HT_LOCKPOWER, &c->ht);
    if (st != TC_OK) {
        for (unsigned i = 1; i <= c->large; i++)
            pthread_mutex_destroy(&c->cls[i].lock);
        free(c);
        return st;
    }

    atomic_init(&c->next_cas, 1);
    c->started = wall_now();
    clock_gettime(CLOCK_MONOTONIC, &c->mono_started);
    atomic_init(&c->now, c->started);
    c->crawl_interval = 1;
    c->crawl_next = c->started + 1;
    pthread_mutex_init(&c->workers_lock, NULL);
    pthread_mutex_init(&c->stats_lock, NULL);
    pthread_mutex_init(&c->maint_lock, NULL);
    pthread_cond_init(&c->maint_cond, NULL);

    if (!o->no_maintainer && (st = maintainer_start(c)) != TC_OK) {
        cache_destroy(&c);
        return st;
    }
    *out = c;
    return TC_OK;
}

void cache_destroy(struct cache **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    struct cache *c = *cp;
    maintainer_stop(c);

    /* Large items are individual mappings: unmap the linked ones. */
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
 * Item memory
 * ------------------------------------------------------------------------- */

static unsigned class_for(const struct cache *c, size_t ntotal)
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

bool cache_item_is_dead(const struct cache *c, const struct item *it, cache_time_t now,
                        bool *flushed)
{
    *flushed = false;
    uint32_t exp = item_get_exptime(it);
    if (exp != 0 && exp <= now)
        return true;
    if (it->cas < atomic_load_explicit(&c->flush_cas, memory_order_relaxed)) {
        *flushed = true;
        return true;
    }
    uint32_t due = atomic_load_explicit(&c->flush_at, memory_order_relaxed);
    if (due != 0 && now >= due && item_get_atime(it) <= due) {
        *flushed = true;
        return true;
    }
    return false;
}

void cache_item_free(struct cache *c, struct item *it)
{
    struct cls *k = &c->cls[it->clsid];
    pthread_mutex_lock(&k->lock);
    if (item_iflags(it) & ITEM_LARGE)
        slab_large_free(&c->pool, &k->slab, it, item_ntotal(it->nkey, it->nbytes));
    else
        slab_chunk_free(&k->slab, it);
    pthread_mutex_unlock(&k->lock);
}

void cache_item_unref(struct cache *c, struct item *it)
{
    if (it != NULL && item_unref_raw(it) == 0)
        cache_item_free(c, it);
}

/*
 * Take an item out of the table and its LRU. Caller holds the item's stripe;
 * the table's reference is dropped (the item is freed if it was the last).
 */
void cache_unlink_locked(struct cache *c, struct item *it, uint64_t hv)
{
    struct cls *k = &c->cls[it->clsid];
    ht_remove(c->ht, hv, it);
    pthread_mutex_lock(&k->lock);
    lru_unlink(&k->lru, it);
    k->mem_requested -= item_ntotal(it->nkey, it->nbytes);
    pthread_mutex_unlock(&k->lock);
    item_clear_iflag(it, ITEM_LINKED);
    cache_item_unref(c, it);
}

/* Put a new item in the table and at the head of HOT with a fresh CAS.
 * Caller holds the stripe. */
static void link_locked(struct cache *c, struct item *it, uint64_t hv)
{
    struct cls *k = &c->cls[it->clsid];
    it->cas = atomic_fetch_add_explicit(&c->next_cas, 1, memory_order_relaxed);
    atomic_store_explicit(&it->atime, cache_now(c), memory_order_relaxed);
    item_ref(it);
    item_set_iflag(it, ITEM_LINKED);
    ht_insert(c->ht, hv, it);
    pthread_mutex_lock(&k->lock);
    lru_link(&k->lru, it, LRU_HOT);
    k->mem_requested += item_ntotal(it->nkey, it->nbytes);
    pthread_mutex_unlock(&k->lock);
    atomic_fetch_add_explicit(&c->total_items, 1, memory_order_relaxed);
    if (ht_needs_grow(c->ht))
        maintainer_wake(c);
}

/*
 * Free one chunk of class `k` by evicting (or reclaiming an expired item)
 * from the LRU tails. Caller holds k->lock. Returns the victim, now unlinked
 * and owned by the caller (refcount 1), or NULL. Items someone holds and
 * items whose stripe is busy are skipped; an active COLD item gets a second
 * chance in WARM instead.
 */
static struct item *evict_locked(struct cache *c, struct cls *k)
{
    static const enum lru_seg order[] = {LRU_COLD, LRU_HOT, LRU_WARM};
    cache_time_t now = cache_now(c);
    for (size_t s = 0; s < sizeof(order) / sizeof(order[0]); s++) {
        struct item *it = k->lru.tail[order[s]];
        for (int tries = 0; it != NULL && tries < EVICT_TRIES; tries++) {
            struct item *prev = it->prev;
            if (item_refcount(it) != 1) {
                k->ctr.lrutail_reflocked++;
                it = prev;
                continue;
            }
            bool flushed;
            bool dead = cache_item_is_dead(c, it, now, &flushed);
            if (!dead && order[s] == LRU_COLD && (item_iflags(it) & ITEM_ACTIVE)) {
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
            ht_remove(c->ht, hv, it);
            ht_unlock(c->ht, hv);
            lru_unlink(&k->lru, it);
            k->mem_requested -= item_ntotal(it->nkey, it->nbytes);
            uint8_t fl = item_iflags(it);
            item_clear_iflag(it, ITEM_LINKED);
            if (dead) {
                k->ctr.reclaimed++;
                if (!(fl & ITEM_FETCHED))
                    k->ctr.expired_unfetched++;
            } else {
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
            return it;
        }
    }
    return NULL;
}

/* Memory for an item of `ntotal` bytes, evicting if needed. Returns the
 * chunk and its class, or NULL (counted as outofmemory). */
static struct item *alloc_chunk(struct cache *c, size_t ntotal, unsigned *clsid)
{
    unsigned id = class_for(c, ntotal);
    struct cls *k = &c->cls[id];
    struct item *it = NULL;
    *clsid = id;

    pthread_mutex_lock(&k->lock);
    if (id == c->large) {
        for (int round = 0; it == NULL && round < ALLOC_ROUNDS * 4; round++) {
            it = slab_large_alloc(&c->pool, &k->slab, ntotal);
            if (it != NULL)
                break;
            /* Make room by evicting large items; their memory goes back to
             * the budget when their last reference is dropped. */
            struct item *victim = evict_locked(c, k);
            if (victim == NULL)
                break;
            slab_large_free(&c->pool, &k->slab, victim, item_ntotal(victim->nkey, victim->nbytes));
        }
        if (it != NULL)
            atomic_store_explicit(&it->iflags, ITEM_LARGE, memory_order_relaxed);
    } else {
        it = slab_chunk_alloc(&c->pool, &k->slab);
        for (int round = 0; it == NULL && round < ALLOC_ROUNDS; round++)
            it = evict_locked(c, k);
        if (it != NULL)
            atomic_store_explicit(&it->iflags, 0, memory_order_relaxed);
    }
    if (it == NULL)
        k->ctr.outofmemory++;
    pthread_mutex_unlock(&k->lock);
    return it;
}

/* Allocate and initialise an unlinked item (refcount 1). */
static tc_status_e new_item(struct cache *c, const char *key, size_t nkey, uint32_t flags,
                            cache_time_t exptime, uint32_t nbytes, struct item **out)
{
    if (nkey == 0 || nkey > CACHE_KEY_MAX || nbytes > c->opts.item_size_max)
        return TC_TOO_LARGE;
    unsigned clsid;
    struct item *it = alloc_chunk(c, item_ntotal(nkey, nbytes), &clsid);
    if (it == NULL)
        return TC_NO_MEMORY;
    uint8_t large = item_iflags(it) & ITEM_LARGE;
    item_init(it, (uint8_t)clsid, key, nkey, flags, exptime, nbytes, cache_now(c));
    if (large)
        atomic_store_explicit(&it->iflags, large, memory_order_relaxed);
    *out = it;
    return TC_OK;
}

tc_status_e cache_alloc(struct cache_worker *w, const char *key, size_t nkey, uint32_t flags,
                        cache_time_t exptime, uint32_t nbytes, struct item **out)
{
    tc_status_e st = new_item(w->c, key, nkey, flags, exptime, nbytes, out);
    if (st == TC_TOO_LARGE)
        WCTR_INC(w->ctr.store_too_large);
    else if (st == TC_NO_MEMORY)
        WCTR_INC(w->ctr.store_no_memory);
    return st;
}

/* ---------------------------------------------------------------------------
 * Lookups
 * ------------------------------------------------------------------------- */

/*
 * The live item for a key, with the stripe held, or NULL. An expired or
 * flushed item found on the way is unlinked and counted.
 */
static struct item *find_live(struct cache_worker *w, uint64_t hv, const char *key, size_t nkey)
{
    struct cache *c = w->c;
    struct item *it = ht_find(c->ht, hv, key, nkey);
    if (it == NULL)
        return NULL;
    bool flushed;
    if (cache_item_is_dead(c, it, cache_now(c), &flushed)) {
        if (flushed)
            WCTR_INC(w->ctr.get_flushed);
        else
            WCTR_INC(w->ctr.get_expired);
        cache_unlink_locked(c, it, hv);
        return NULL;
    }
    return it;
}

/* Record a use of a live item: fetched, active, access time. */
static void bump(struct cache_worker *w, struct item *it)
{
    cache_time_t now = cache_now(w->c);
    item_set_iflag(it, ITEM_ACTIVE | ITEM_FETCHED);
    if (item_get_atime(it) != now)
        atomic_store_explicit(&it->atime, now, memory_order_relaxed);
}

static void count_hit(struct cache_worker *w, const struct item *it)
{
    struct worker_class_counters *cc = &w->ctr.cls[it->clsid];
    WCTR_INC(cc->get_hits);
    switch (item_lru(it)) {
    case LRU_HOT:
        WCTR_INC(cc->hits_to_hot);
        break;
    case LRU_WARM:
        WCTR_INC(cc->hits_to_warm);
        break;
    default:
        WCTR_INC(cc->hits_to_cold);
        break;
    }
}

static tc_status_e get_common(struct cache_worker *w, const char *key, size_t nkey, bool touch,
                              cache_time_t exptime, struct item **out)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    ht_lock(c->ht, hv);
    struct item *it = find_live(w, hv, key, nkey);
    if (it != NULL && item_refcount(it) >= REFCOUNT_LIMIT)
        it = NULL; /* as memcached: a hopelessly shared item reads as a miss */
    if (it != NULL) {
        item_ref(it);
        if (touch)
            atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
        bump(w, it);
    }
    ht_unlock(c->ht, hv);

    if (it == NULL) {
        if (touch)
            WCTR_INC(w->ctr.touch_misses);
        else
            WCTR_INC(w->ctr.get_misses);
        return TC_NOT_FOUND;
    }
    if (touch)
        WCTR_INC(w->ctr.cls[it->clsid].touch_hits);
    else
        count_hit(w, it);
    *out = it;
    return TC_OK;
}

tc_status_e cache_get(struct cache_worker *w, const char *key, size_t nkey, struct item **out)
{
    return get_common(w, key, nkey, false, 0, out);
}

tc_status_e cache_get_touch(struct cache_worker *w, const char *key, size_t nkey,
                            cache_time_t exptime, struct item **out)
{
    return get_common(w, key, nkey, true, exptime, out);
}

tc_status_e cache_touch(struct cache_worker *w, const char *key, size_t nkey, cache_time_t exptime)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    ht_lock(c->ht, hv);
    struct item *it = find_live(w, hv, key, nkey);
    if (it != NULL) {
        atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
        bump(w, it);
        WCTR_INC(w->ctr.cls[it->clsid].touch_hits);
    } else {
        WCTR_INC(w->ctr.touch_misses);
    }
    ht_unlock(c->ht, hv);
    return it != NULL ? TC_OK : TC_NOT_FOUND;
}

/* ---------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------- */

/* append/prepend: a new item holding old and new bytes, with old's flags
 * and expiry. Caller holds the stripe. */
static tc_status_e concat(struct cache *c, struct item *old, struct item *add, bool append,
                          struct item **out)
{
    uint64_t total = (uint64_t)old->nbytes + add->nbytes;
    if (total > c->opts.item_size_max)
        return TC_TOO_LARGE;
    struct item *nu;
    tc_status_e st =
        new_item(c, old->data, old->nkey, old->flags, item_get_exptime(old), (uint32_t)total, &nu);
    if (st != TC_OK)
        return st;
    char *dst = item_data_value(nu);
    const struct item *first = append ? old : add;
    const struct item *second = append ? add : old;
    memcpy(dst, first->data + first->nkey, first->nbytes);
    memcpy(dst + first->nbytes, second->data + second->nkey, second->nbytes);
    *out = nu;
    return TC_OK;
}

tc_status_e cache_store(struct cache_worker *w, struct item *it, enum cache_store_op op,
                        uint64_t cas, uint64_t *cas_out)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(it->data, it->nkey);
    struct item *to_link = it;
    struct item *combined = NULL;
    tc_status_e st = TC_OK;

    WCTR_INC(w->ctr.cls[it->clsid].cmd_set);
    ht_lock(c->ht, hv);
    struct item *old = find_live(w, hv, it->data, it->nkey);
    switch (op) {
    case CACHE_SET:
        break;
    case CACHE_ADD:
        if (old != NULL) {
            /* memcached refreshes the existing item's recency on a failed add. */
            atomic_store_explicit(&old->atime, cache_now(c), memory_order_relaxed);
            st = TC_NOT_STORED;
        }
        break;
    case CACHE_REPLACE:
        if (old == NULL)
            st = TC_NOT_STORED;
        break;
    case CACHE_CAS:
        if (old == NULL) {
            WCTR_INC(w->ctr.cas_misses);
            st = TC_NOT_FOUND;
        } else if (old->cas != cas) {
            WCTR_INC(w->ctr.cls[old->clsid].cas_badval);
            st = TC_EXISTS;
        } else {
            WCTR_INC(w->ctr.cls[old->clsid].cas_hits);
        }
        break;
    case CACHE_APPEND:
    case CACHE_PREPEND:
        if (old == NULL)
            st = TC_NOT_STORED;
        else if (cas != 0 && cas != old->cas)
            st = TC_EXISTS;
        else if ((st = concat(c, old, it, op == CACHE_APPEND, &combined)) == TC_OK)
            to_link = combined;
        break;
    }

    if (st == TC_OK) {
        if (old != NULL)
            cache_unlink_locked(c, old, hv);
        link_locked(c, to_link, hv);
        if (cas_out != NULL)
            *cas_out = to_link->cas;
    }
    ht_unlock(c->ht, hv);
    if (combined != NULL)
        cache_item_unref(c, combined);
    return st;
}

tc_status_e cache_delete(struct cache_worker *w, const char *key, size_t nkey)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    ht_lock(c->ht, hv);
    struct item *it = find_live(w, hv, key, nkey);
    if (it != NULL) {
        WCTR_INC(w->ctr.cls[it->clsid].delete_hits);
        cache_unlink_locked(c, it, hv);
    } else {
        WCTR_INC(w->ctr.delete_misses);
    }
    ht_unlock(c->ht, hv);
    return it != NULL ? TC_OK : TC_NOT_FOUND;
}

tc_status_e cache_arith(struct cache_worker *w, const char *key, size_t nkey, bool incr,
                        uint64_t delta, uint64_t *value, uint64_t *cas_out)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    tc_status_e st = TC_OK;

    ht_lock(c->ht, hv);
    struct item *it = find_live(w, hv, key, nkey);
    uint64_t v = 0;
    unsigned clsid = it != NULL ? it->clsid : 0;
    if (it == NULL) {
        st = TC_NOT_FOUND;
    } else if (it->nbytes == 0 || (item_iflags(it) & ITEM_LARGE) ||
               !tc_strtoull(item_data_value(it), it->nbytes, &v)) {
        /* memcached keeps items over 512 KiB in chunks and calls them non-numeric. */
        st = TC_NON_NUMERIC;
    } else {
        if (incr)
            v += delta;
        else
            v = delta > v ? 0 : v - delta;
        char buf[24];
        size_t len = tc_u64toa(v, buf);
        if (len <= it->nbytes && item_refcount(it) == 1) {
            /* Nobody else holds it: rewrite in place, space padded, as memcached. */
            memcpy(item_data_value(it), buf, len);
            memset(item_data_value(it) + len, ' ', it->nbytes - len);
            it->cas = atomic_fetch_add_explicit(&c->next_cas, 1, memory_order_relaxed);
            bump(w, it);
            if (cas_out != NULL)
                *cas_out = it->cas;
        } else {
            struct item *nu;
            st = new_item(c, it->data, it->nkey, it->flags, item_get_exptime(it), (uint32_t)len,
                          &nu);
            if (st == TC_OK) {
                memcpy(item_data_value(nu), buf, len);
                cache_unlink_locked(c, it, hv);
                link_locked(c, nu, hv);
                if (cas_out != NULL)
                    *cas_out = nu->cas;
                cache_item_unref(c, nu);
            } else {
                st = TC_NO_MEMORY;
            }
        }
    }
    ht_unlock(c->ht, hv);

    if (st == TC_NOT_FOUND) {
        if (incr)
            WCTR_INC(w->ctr.incr_misses);
        else
            WCTR_INC(w->ctr.decr_misses);
    } else if (st == TC_OK) {
        if (incr)
            WCTR_INC(w->ctr.cls[clsid].incr_hits);
        else
            WCTR_INC(w->ctr.cls[clsid].decr_hits);
        *value = v;
    }
    return st;
}

void cache_flush(struct cache_worker *w, cache_time_t when)
{
    struct cache *c = w->c;
    WCTR_INC(w->ctr.flush_cmds);
    if (when == 0 || when < cache_now(c)) {
        uint64_t boundary = atomic_load_explicit(&c->next_cas, memory_order_acquire);
        uint64_t cur = atomic_load_explicit(&c->flush_cas, memory_order_relaxed);
        while (cur < boundary && !atomic_compare_exchange_weak(&c->flush_cas, &cur, boundary))
            ;
        atomic_store_explicit(&c->flush_at, 0, memory_order_release);
    } else {
        atomic_store_explicit(&c->flush_at, when, memory_order_release);
    }
}
