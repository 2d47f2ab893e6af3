/*
 * rebalance.c: moving slab pages between classes (memcached's slab
 * automove), so that a cache whose item sizes shift over time does not stay
 * stuck with the page split of its past ("slab calcification").
 *
 * The decision, once a second (cache_now() ticks), from the maintainer:
 *   - a class is *needy* when it has evicted (or failed an allocation) in
 *     each of the last NEEDY_SECONDS seconds: it is short of memory now;
 *   - among the needy, the one whose LRU tail is youngest takes; the donor
 *     is the class (with at least two pages, not needy) whose tail is
 *     oldest, if that age is at least AGE_RATIO times the taker's plus
 *     AGE_MARGIN seconds, or any class holding a whole page of free chunks.
 * With a flash tier every class evicts all the time (to flash); then the
 * ages decide, so pages follow where items are read most recently, and
 * nothing moves while the classes age alike.
 *
 * The move: one page at a time. The page is taken out of use (its free
 * chunks leave the freelist; chunks freed later are only marked, see
 * rebalance_chunk_freed), then every item on it leaves RAM as an eviction
 * would take it: a dirty item is first written to flash (so nothing is
 * lost when there is a flash tier) and dropped once clean; an item someone
 * holds is waited for. When every chunk is free the page is unmapped and its
 * budget refunded: the taker's next allocation maps a page of its own size.
 * A move that cannot finish in MOVE_TIMEOUT seconds (a client holding an
 * item for that long) is abandoned and its free chunks go back.
 *
 * Locks: the donor's class lock while scanning its page; item stripes are
 * only try-locked (the lock order is stripe -> class), as the evictor does.
 */
#include "cache_internal.h"

#include <string.h>

#define NEEDY_SECONDS 2   /* seconds in a row with evictions */
#define AGE_RATIO     2   /* the donor's tail is this many times older ... */
#define AGE_MARGIN    2   /* ... plus this many seconds */
#define MOVE_TIMEOUT  10  /* seconds before a stuck move is abandoned */
#define SCAN_BUDGET   512 /* chunks looked at per maintainer round */

/* The age of a class's least recently used item (0 if it has none). */
static uint32_t tail_age(struct cls *k, cache_time_t now)
{
    static const enum lru_seg order[] = {LRU_COLD, LRU_WARM, LRU_HOT};
    for (size_t s = 0; s < sizeof(order) / sizeof(order[0]); s++) {
        struct item *it = k->lru.tail[order[s]];
        if (it != NULL) {
            uint32_t at = item_get_atime(it);
            return now > at ? now - at : 0;
        }
    }
    return 0;
}

/* A page of the donor to empty: not the one still being carved. */
static bool pick_page(struct cls *k, size_t *index)
{
    struct slab_class *sc = &k->slab;
    size_t len = (size_t)sc->size * sc->perslab;
    for (uint64_t n = 0; n < sc->npages; n++) {
        size_t i = (size_t)((k->rb_cursor + n) % sc->npages);
        char *p = sc->pages[i];
        if (sc->end_free > 0 && sc->end_page >= p && sc->end_page < p + len)
            continue;
        k->rb_cursor = i + 1;
        *index = i;
        return true;
    }
    return false;
}

static void start_move(struct cache *c, unsigned src, unsigned dst, cache_time_t now)
{
    struct cls *k = &c->cls[src];
    pthread_mutex_lock(&k->lock);
    size_t i;
    if (k->slab.npages >= 2 && pick_page(k, &i)) {
        struct slab_class *sc = &k->slab;
        k->move_page = sc->pages[i];
        k->move_len = (size_t)sc->size * sc->perslab;
        k->move_scan = 0;
        k->move_free = 0;
        slab_freelist_drop_range(sc, k->move_page, k->move_page + k->move_len);
        c->rb.src = src;
        c->rb.dst = dst;
        c->rb.started = now;
        c->rb.active = true;
    }
    pthread_mutex_unlock(&k->lock);
}

/*
 * Try to free one item of the page being emptied. Class lock held. Returns
 * true if its chunk is free now.
 */
static bool evacuate(struct cache *c, struct cls *k, struct item *it, cache_time_t now)
{
    uint16_t fl = item_iflags(it);
    /* Only an item in the LRU is known to be fully built (we hold the lock
     * its linker held); any other is being filled, or freed soon. */
    if (!(fl & ITEM_IN_LRU) || !(fl & ITEM_LINKED) || item_refcount(it) != 1)
        return false; /* or being read, or written to flash */
    uint64_t hv = ht_hash(it->data, it->nkey);
    if (!ht_trylock(c->ht, hv))
        return false;
    if (item_refcount(it) != 1 || !(item_iflags(it) & ITEM_LINKED)) {
        ht_unlock(c->ht, hv);
        return false;
    }
    bool flushed;
    bool dead = cache_item_is_dead(c, it, now, &flushed);
    if (!dead && tier_usable(c) && !(fl & ITEM_CLEAN) &&
        tier_admit(item_get_exptime(it), now, c->flash_min_ttl, it->nbytes, c->flash_value_max)) {
        tier_start_demotion(c, it, hv); /* dropped on a later round, once clean */
        ht_unlock(c->ht, hv);
        return false;
    }
    if (!tier_remove_locked(c->maint_w, it, hv, dead ? RM_EXPIRED : RM_EVICT, true)) {
        ht_unlock(c->ht, hv);
        return false;
    }
    ht_unlock(c->ht, hv);
    lru_unlink(&k->lru, it);
    k->mem_requested -= item_ntotal(it->nkey, it->nbytes);
    /* Not an eviction for the counters: the decision reads those as "this
     * class is short of memory". */
    if (dead)
        k->ctr.reclaimed++;
    atomic_fetch_add_explicit(&c->rb.evacuated, 1, memory_order_relaxed);
    /* The last reference (tier_remove_locked kept it for reuse): the chunk
     * is now just a free chunk of the page. */
    atomic_store_explicit(&it->iflags, ITEM_FREE_CHUNK, memory_order_relaxed);
    return true;
}

/* Give the page's free chunks back to the class: the move is abandoned. */
static void abandon(struct cls *k)
{
    struct slab_class *sc = &k->slab;
    for (size_t off = 0; off + sc->size <= k->move_len; off += sc->size) {
        struct item *it = (struct item *)(k->move_page + off);
        if (item_iflags(it) & ITEM_FREE_CHUNK)
            slab_chunk_free(sc, it);
    }
    k->move_page = NULL;
    k->move_len = 0;
}

/* One round of the move in progress. Returns true while it goes on. */
static bool step_move(struct cache *c, cache_time_t now)
{
    struct cls *k = &c->cls[c->rb.src];
    struct slab_class *sc = &k->slab;
    bool more = true;
    pthread_mutex_lock(&k->lock);
    if (now - c->rb.started > MOVE_TIMEOUT) {
        abandon(k);
        atomic_fetch_add_explicit(&c->rb.abandoned, 1, memory_order_relaxed);
        c->rb.active = false;
        pthread_mutex_unlock(&k->lock);
        return false;
    }
    /* Scan on from where the last round stopped; done once the chunks
     * found free in a row cover the whole page. */
    size_t nchunks = sc->perslab;
    for (size_t looked = 0; looked < SCAN_BUDGET && k->move_free < nchunks; looked++) {
        struct item *it = (struct item *)(k->move_page + k->move_scan * sc->size);
        k->move_scan = (k->move_scan + 1) % nchunks;
        if ((item_iflags(it) & ITEM_FREE_CHUNK) || evacuate(c, k, it, now))
            k->move_free++;
        else
            k->move_free = 0;
    }
    if (k->move_free >= nchunks) {
        slab_page_release(&c->pool, sc, k->move_page);
        k->move_page = NULL;
        k->move_len = 0;
        atomic_fetch_add_explicit(&c->rb.moved, 1, memory_order_relaxed);
        c->rb.active = false;
        more = false;
    }
    pthread_mutex_unlock(&k->lock);
    return more;
}

/* Once a second: who is short of memory, and who can give. */
static void decide(struct cache *c, cache_time_t now)
{
    unsigned taker = 0, donor = 0;
    uint32_t taker_age = UINT32_MAX, donor_age = 0;
    for (unsigned id = 1; id <= c->large; id++) {
        struct cls *k = &c->cls[id];
        pthread_mutex_lock(&k->lock);
        uint64_t ev = k->ctr.evicted + k->ctr.outofmemory;
        k->rb_streak = ev != k->rb_evicted ? k->rb_streak + 1 : 0;
        k->rb_evicted = ev;
        uint32_t age = tail_age(k, now);
        uint64_t npages = k->slab.npages;
        uint64_t nfree = k->slab.nfree;
        uint32_t perslab = k->slab.perslab;
        pthread_mutex_unlock(&k->lock);
        if (k->rb_streak >= NEEDY_SECONDS) {
            if (age < taker_age) {
                taker = id;
                taker_age = age;
            }
            continue;
        }
        if (id == c->large || npages < 2)
            continue;
        if (perslab > 0 && nfree >= perslab) {
            donor = id; /* a page's worth of free chunks: the cheapest to give */
            donor_age = UINT32_MAX;
        } else if (age > donor_age) {
            donor = id;
            donor_age = age;
        }
    }
    if (taker == 0 || donor == 0 || donor == taker)
        return;
    if (donor_age != UINT32_MAX && donor_age < taker_age * AGE_RATIO + AGE_MARGIN)
        return;
    start_move(c, donor, taker, now);
}

bool rebalance_maintain(struct cache *c, cache_time_t now)
{
    if (c->opts.no_rebalance)
        return false;
    if (c->rb.active)
        return step_move(c, now);
    if (now == c->rb.decided)
        return false;
    c->rb.decided = now;
    decide(c, now);
    return c->rb.active;
}

bool rebalance_chunk_freed(struct cls *k, struct item *it)
{
    char *p = (char *)it;
    if (k->move_page == NULL || p < k->move_page || p >= k->move_page + k->move_len)
        return false;
    atomic_store_explicit(&it->iflags, ITEM_FREE_CHUNK, memory_order_relaxed);
    return true;
}
