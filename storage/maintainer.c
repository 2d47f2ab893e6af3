/*
 * maintainer.c: the engine's background thread.
 *
 * Each round (cache_maintain()):
 *   1. advances the clock (monotonic time anchored to the wall clock at
 *      start, so a wall clock jump does not expire or revive items);
 *   2. grows the hash table a step at a time when it is too full;
 *   3. keeps each class's LRU segmented: HOT holds at most hot_lru_pct of the
 *      class's items and WARM warm_lru_pct; items leaving HOT go to WARM if
 *      they were hit (ACTIVE), else to COLD; WARM's tail goes to COLD unless
 *      hit, in which case it gets another round in WARM;
 *   4. with a flash tier, keeps the tail of each class's COLD list clean:
 *      dirty items there are queued for the flash writer, so that RAM can
 *      drop them when it needs room (tiered.c);
 *   5. crawls the hash table for expired and flushed items and frees them,
 *      one full pass at a time, passes spaced from 1 s to 60 s depending on
 *      how much the previous pass found;
 *   6. moves slab pages from classes that can spare them to classes short
 *      of memory (rebalance.c).
 * The thread sleeps 1 ms between rounds while there is work, 100 ms when idle,
 * and wakes at once when an operation signals the table needs to grow.
 */
#include "cache_internal.h"

#include <errno.h>
#include <string.h>

#include "log.h"

#define JUGGLE_BUDGET      500  /* items moved per class per round */
#define GROW_BUCKETS       1024 /* buckets migrated per round */
#define CRAWL_BUCKETS      4096 /* buckets crawled per round */
#define CRAWL_INTERVAL_MAX 60

static cache_time_t clock_read(const struct cache *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return c->started + (cache_time_t)(ts.tv_sec - c->mono_started.tv_sec -
                                       (ts.tv_nsec < c->mono_started.tv_nsec ? 1 : 0));
}

/* Move items between segments of one class. Returns true if the budget ran out. */
static bool juggle(struct cache *c, struct cls *k)
{
    int moved = 0;
    pthread_mutex_lock(&k->lock);
    uint64_t total = lru_total(&k->lru);
    uint64_t hot_max = total * c->opts.hot_lru_pct / 100;
    uint64_t warm_max = total * c->opts.warm_lru_pct / 100;

    while (k->lru.count[LRU_HOT] > hot_max && moved < JUGGLE_BUDGET) {
        struct item *it = k->lru.tail[LRU_HOT];
        if (item_iflags(it) & ITEM_ACTIVE) {
            item_clear_iflag(it, ITEM_ACTIVE);
            lru_move(&k->lru, it, LRU_WARM);
            k->ctr.moves_to_warm++;
        } else {
            lru_move(&k->lru, it, LRU_COLD);
            k->ctr.moves_to_cold++;
        }
        moved++;
    }
    while (k->lru.count[LRU_WARM] > warm_max && moved < JUGGLE_BUDGET) {
        struct item *it = k->lru.tail[LRU_WARM];
        if (item_iflags(it) & ITEM_ACTIVE) {
            item_clear_iflag(it, ITEM_ACTIVE);
            lru_move(&k->lru, it, LRU_WARM);
            k->ctr.moves_within_lru++;
        } else {
            lru_move(&k->lru, it, LRU_COLD);
            k->ctr.moves_to_cold++;
        }
        moved++;
    }
    pthread_mutex_unlock(&k->lock);
    if (moved > 0)
        atomic_fetch_add_explicit(&c->juggles, (uint64_t)moved, memory_order_relaxed);
    return moved >= JUGGLE_BUDGET;
}

struct crawl_ctx {
    struct cache *c;
    cache_time_t now;
    uint64_t reclaimed;
};

/* Called with the item's stripe held. */
static void crawl_visit(struct item *it, uint64_t hv, void *arg)
{
    struct crawl_ctx *x = arg;
    if (item_iflags(it) & ITEM_HEAP)
        return; /* tombstones: the flash writer removes them */
    struct cls *k = &x->c->cls[it->clsid];
    bool flushed;
    bool dead = cache_item_is_dead(x->c, it, x->now, &flushed);
    bool fetched = item_iflags(it) & ITEM_FETCHED;
    /* The item may be freed by its removal: read it first. */
    if (dead && !tier_remove_locked(x->c->maint_w, it, hv, RM_EXPIRED, false))
        dead = false; /* no memory for a tombstone: try again next pass */
    pthread_mutex_lock(&k->lock);
    k->ctr.crawler_items_checked++;
    if (dead) {
        k->ctr.crawler_reclaimed++;
        k->ctr.reclaimed++;
        if (!fetched)
            k->ctr.expired_unfetched++;
        x->reclaimed++;
    }
    pthread_mutex_unlock(&k->lock);
}

/* One slice of the expiry crawl. Returns true while a pass is under way. */
static bool crawl(struct cache *c, cache_time_t now)
{
    if (!c->crawl_active) {
        bool asked = atomic_exchange_explicit(&c->crawl_requested, false, memory_order_relaxed);
        if (now < c->crawl_next && !asked)
            return false;
        c->crawl_active = true;
        c->crawl_cursor = 0;
        c->crawl_reclaimed_pass = 0;
        atomic_fetch_add_explicit(&c->crawler_starts, 1, memory_order_relaxed);
    }
    struct crawl_ctx x = {.c = c, .now = now};
    bool done = ht_scan(c->ht, &c->crawl_cursor, CRAWL_BUCKETS, crawl_visit, &x);
    c->crawl_reclaimed_pass += x.reclaimed;
    if (!done)
        return true;

    /* Space passes by what they find: often when they free a lot. */
    uint64_t items = ht_count(c->ht);
    if (c->crawl_reclaimed_pass * 100 > items)
        c->crawl_interval = 1;
    else if (c->crawl_interval < CRAWL_INTERVAL_MAX)
        c->crawl_interval *= 2;
    c->crawl_next = now + c->crawl_interval;
    c->crawl_active = false;
    return false;
}

bool cache_maintain(struct cache *c)
{
    bool more = false;
    if (!c->opts.manual_clock)
        cache_clock_tick(c, clock_read(c));
    cache_time_t now = cache_now(c);

    if (ht_is_growing(c->ht)) {
        more |= !ht_grow_step(c->ht, GROW_BUCKETS);
    } else if (ht_needs_grow(c->ht)) {
        if (ht_grow_start(c->ht) != TC_OK)
            TC_LOG_ONCE(TC_LOG_WARN, "cannot grow the hash table: out of memory");
        else
            more = true;
    }

    for (unsigned i = 1; i <= c->large; i++) {
        more |= juggle(c, &c->cls[i]);
        more |= tier_preclean(c, &c->cls[i]);
    }

    if (!ht_is_growing(c->ht))
        more |= crawl(c, now);
    more |= rebalance_maintain(c, now);
    return more;
}

static void *maintainer_main(void *arg)
{
    struct cache *c = arg;
    pthread_mutex_lock(&c->maint_lock);
    while (!c->maint_stop) {
        pthread_mutex_unlock(&c->maint_lock);
        bool more = cache_maintain(c);
        pthread_mutex_lock(&c->maint_lock);
        if (c->maint_stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long wait_ns = more ? 1000000L : 100000000L;
        until.tv_nsec += wait_ns;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->maint_cond, &c->maint_lock, &until);
    }
    pthread_mutex_unlock(&c->maint_lock);
    return NULL;
}

tc_status_e maintainer_start(struct cache *c)
{
    int err = pthread_create(&c->maint, NULL, maintainer_main, c);
    if (err != 0) {
        tc_log(TC_LOG_ERROR, "cannot start the maintainer thread: %s", strerror(err));
        return TC_NO_MEMORY;
    }
    c->maint_running = true;
    return TC_OK;
}

void maintainer_stop(struct cache *c)
{
    if (!c->maint_running)
        return;
    pthread_mutex_lock(&c->maint_lock);
    c->maint_stop = true;
    pthread_cond_signal(&c->maint_cond);
    pthread_mutex_unlock(&c->maint_lock);
    pthread_join(c->maint, NULL);
    c->maint_running = false;
}

void cache_crawl_now(struct cache *c)
{
    atomic_store_explicit(&c->crawl_requested, true, memory_order_relaxed);
    maintainer_wake(c);
}

void maintainer_wake(struct cache *c)
{
    if (!c->maint_running)
        return;
    pthread_mutex_lock(&c->maint_lock);
    pthread_cond_signal(&c->maint_cond);
    pthread_mutex_unlock(&c->maint_lock);
}
