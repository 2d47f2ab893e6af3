/*
 * engine_stats.c: the engine's statistics (cache_stats_get() and friends).
 *
 * Counters only grow; `stats reset` records their values as a baseline that
 * later reads subtract, so a reset never races with the threads counting.
 * Gauges (item counts, bytes, memory) are never reset.
 */
#include "cache_internal.h"

#include <stdlib.h>
#include <string.h>

/* clang-format off: one counter per line */
/* The counter fields of struct cache_stats (reset by `stats reset`). */
#define GLOBAL_COUNTERS(X)                                                                         \
    X(get_hits)                                                                                    \
    X(get_misses)                                                                                  \
    X(get_expired)                                                                                 \
    X(get_flushed)                                                                                 \
    X(touch_hits)                                                                                  \
    X(touch_misses)                                                                                \
    X(delete_hits)                                                                                 \
    X(delete_misses)                                                                               \
    X(incr_hits)                                                                                   \
    X(incr_misses)                                                                                 \
    X(decr_hits)                                                                                   \
    X(decr_misses)                                                                                 \
    X(cas_hits)                                                                                    \
    X(cas_misses)                                                                                  \
    X(cas_badval)                                                                                  \
    X(set_cmds)                                                                                    \
    X(store_too_large)                                                                             \
    X(store_no_memory)                                                                             \
    X(flush_cmds)                                                                                  \
    X(total_items)                                                                                 \
    X(evictions)                                                                                   \
    X(reclaimed)                                                                                   \
    X(expired_unfetched)                                                                           \
    X(evicted_unfetched)                                                                           \
    X(evicted_active)                                                                              \
    X(crawler_reclaimed)                                                                           \
    X(crawler_items_checked)                                                                       \
    X(lrutail_reflocked)                                                                           \
    X(moves_to_cold)                                                                               \
    X(moves_to_warm)                                                                               \
    X(moves_within_lru)                                                                            \
    X(direct_reclaims)                                                                             \
    X(malloc_fails)                                                                                \
    X(lru_crawler_starts)                                                                          \
    X(lru_maintainer_juggles)                                                                      \
    X(slabs_moved)                                                                                 \
    X(slab_reassign_abandoned)                                                                     \
    X(slab_reassign_evictions)

/* The counter fields of struct cache_class_stats. */
#define CLASS_COUNTERS(X)                                                                          \
    X(get_hits)                                                                                    \
    X(cmd_set)                                                                                     \
    X(delete_hits)                                                                                 \
    X(incr_hits)                                                                                   \
    X(decr_hits)                                                                                   \
    X(cas_hits)                                                                                    \
    X(cas_badval)                                                                                  \
    X(touch_hits)                                                                                  \
    X(evicted)                                                                                     \
    X(evicted_nonzero)                                                                             \
    X(outofmemory)                                                                                 \
    X(reclaimed)                                                                                   \
    X(expired_unfetched)                                                                           \
    X(evicted_unfetched)                                                                           \
    X(evicted_active)                                                                              \
    X(crawler_reclaimed)                                                                           \
    X(crawler_items_checked)                                                                       \
    X(lrutail_reflocked)                                                                           \
    X(moves_to_cold)                                                                               \
    X(moves_to_warm)                                                                               \
    X(moves_within_lru)                                                                            \
    X(direct_reclaims)                                                                             \
    X(hits_to_hot)                                                                                 \
    X(hits_to_warm)                                                                                \
    X(hits_to_cold)
/* clang-format on */

unsigned cache_class_count(const struct cache *c)
{
    return c->large;
}

/* Raw (not rebased) statistics of one class, given the workers' sums. */
static void class_raw(struct cache *c, unsigned id, const struct worker_counters *wc,
                      struct cache_class_stats *o)
{
    struct cls *k = &c->cls[id];
    const struct worker_class_counters *w = &wc->cls[id];
    memset(o, 0, sizeof(*o));
    cache_time_t now = cache_now(c);

    pthread_mutex_lock(&k->lock);
    o->chunk_size = k->slab.size;
    o->chunks_per_page = k->slab.perslab;
    if (id == c->large) {
        o->total_pages = (k->slab.nlarge_bytes + c->pool.page_size - 1) / c->pool.page_size;
        o->used_chunks = lru_total(&k->lru);
        o->total_chunks = o->used_chunks;
    } else {
        o->total_pages = k->slab.npages;
        o->total_chunks = k->slab.npages * k->slab.perslab;
        o->free_chunks = k->slab.nfree + k->slab.end_free;
        o->free_chunks_end = k->slab.end_free;
        o->used_chunks = o->total_chunks - o->free_chunks;
    }
    o->number_hot = k->lru.count[LRU_HOT];
    o->number_warm = k->lru.count[LRU_WARM];
    o->number_cold = k->lru.count[LRU_COLD];
    o->number = o->number_hot + o->number_warm + o->number_cold;
    struct item *t;
    if ((t = k->lru.tail[LRU_HOT]) != NULL && now > item_get_atime(t))
        o->age_hot = now - item_get_atime(t);
    if ((t = k->lru.tail[LRU_WARM]) != NULL && now > item_get_atime(t))
        o->age_warm = now - item_get_atime(t);
    if ((t = k->lru.tail[LRU_COLD]) != NULL && now > item_get_atime(t))
        o->age = now - item_get_atime(t);
    o->mem_requested = k->mem_requested;
    const struct cls_counters *x = &k->ctr;
    o->evicted = x->evicted;
    o->evicted_nonzero = x->evicted_nonzero;
    o->evicted_time = x->evicted_time;
    o->outofmemory = x->outofmemory;
    o->reclaimed = x->reclaimed;
    o->expired_unfetched = x->expired_unfetched;
    o->evicted_unfetched = x->evicted_unfetched;
    o->evicted_active = x->evicted_active;
    o->crawler_reclaimed = x->crawler_reclaimed;
    o->crawler_items_checked = x->crawler_items_checked;
    o->lrutail_reflocked = x->lrutail_reflocked;
    o->moves_to_cold = x->moves_to_cold;
    o->moves_to_warm = x->moves_to_warm;
    o->moves_within_lru = x->moves_within_lru;
    o->direct_reclaims = x->direct_reclaims;
    pthread_mutex_unlock(&k->lock);

    o->get_hits = WCTR_GET(w->get_hits);
    o->cmd_set = WCTR_GET(w->cmd_set);
    o->delete_hits = WCTR_GET(w->delete_hits);
    o->incr_hits = WCTR_GET(w->incr_hits);
    o->decr_hits = WCTR_GET(w->decr_hits);
    o->cas_hits = WCTR_GET(w->cas_hits);
    o->cas_badval = WCTR_GET(w->cas_badval);
    o->touch_hits = WCTR_GET(w->touch_hits);
    o->hits_to_hot = WCTR_GET(w->hits_to_hot);
    o->hits_to_warm = WCTR_GET(w->hits_to_warm);
    o->hits_to_cold = WCTR_GET(w->hits_to_cold);
}

static void global_raw(struct cache *c, const struct worker_counters *wc, struct cache_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->get_misses = WCTR_GET(wc->get_misses);
    o->get_expired = WCTR_GET(wc->get_expired);
    o->get_flushed = WCTR_GET(wc->get_flushed);
    o->touch_misses = WCTR_GET(wc->touch_misses);
    o->delete_misses = WCTR_GET(wc->delete_misses);
    o->incr_misses = WCTR_GET(wc->incr_misses);
    o->decr_misses = WCTR_GET(wc->decr_misses);
    o->cas_misses = WCTR_GET(wc->cas_misses);
    o->store_too_large = WCTR_GET(wc->store_too_large);
    o->store_no_memory = WCTR_GET(wc->store_no_memory);
    o->flush_cmds = WCTR_GET(wc->flush_cmds);
    o->get_hits = WCTR_GET(wc->flash_get_hits);

    for (unsigned id = 1; id <= c->large; id++) {
        struct cache_class_stats k;
        class_raw(c, id, wc, &k);
        o->get_hits += k.get_hits;
        o->touch_hits += k.touch_hits;
        o->delete_hits += k.delete_hits;
        o->incr_hits += k.incr_hits;
        o->decr_hits += k.decr_hits;
        o->cas_hits += k.cas_hits;
        o->cas_badval += k.cas_badval;
        o->set_cmds += k.cmd_set;
        o->curr_items += k.number;
        o->bytes += k.mem_requested;
        o->evictions += k.evicted;
        o->reclaimed += k.reclaimed;
        o->expired_unfetched += k.expired_unfetched;
        o->evicted_unfetched += k.evicted_unfetched;
        o->evicted_active += k.evicted_active;
        o->crawler_reclaimed += k.crawler_reclaimed;
        o->crawler_items_checked += k.crawler_items_checked;
        o->lrutail_reflocked += k.lrutail_reflocked;
        o->moves_to_cold += k.moves_to_cold;
        o->moves_to_warm += k.moves_to_warm;
        o->moves_within_lru += k.moves_within_lru;
        o->direct_reclaims += k.direct_reclaims;
        if (k.total_pages > 0)
            o->active_slabs++;
    }
    o->total_items = atomic_load_explicit(&c->total_items, memory_order_relaxed);
    o->limit_maxbytes = c->pool.mem_limit;
    o->total_malloced = atomic_load_explicit(&c->pool.mem_used, memory_order_relaxed);
    o->malloc_fails = atomic_load_explicit(&c->pool.malloc_fails, memory_order_relaxed);
    /* Any stripe excludes a change of table size; stripe 0 will do. */
    ht_lock(c->ht, 0);
    o->hash_power_level = ht_hashpower(c->ht);
    o->hash_bytes = ht_bytes(c->ht);
    o->hash_is_expanding = ht_is_growing(c->ht);
    ht_unlock(c->ht, 0);
    o->lru_crawler_starts = atomic_load_explicit(&c->crawler_starts, memory_order_relaxed);
    o->lru_maintainer_juggles = atomic_load_explicit(&c->juggles, memory_order_relaxed);
    o->slabs_moved = atomic_load_explicit(&c->rb.moved, memory_order_relaxed);
    o->slab_reassign_abandoned = atomic_load_explicit(&c->rb.abandoned, memory_order_relaxed);
    o->slab_reassign_evictions = atomic_load_explicit(&c->rb.evacuated, memory_order_relaxed);
}

void cache_stats_get(struct cache *c, struct cache_stats *out)
{
    struct worker_counters *wc = malloc(sizeof(*wc));
    if (wc == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    cache_workers_sum(c, wc);
    global_raw(c, wc, out);
    free(wc);
    pthread_mutex_lock(&c->stats_lock);
#define X(f) out->f -= c->base.f;
    GLOBAL_COUNTERS(X)
#undef X
    pthread_mutex_unlock(&c->stats_lock);
    out->slab_reassign_running = atomic_load_explicit(&c->rb.active, memory_order_relaxed);
}

tc_status_e cache_class_stats_get(struct cache *c, unsigned clsid, struct cache_class_stats *out)
{
    if (clsid < 1 || clsid > c->large)
        return TC_INVALID;
    struct worker_counters *wc = malloc(sizeof(*wc));
    if (wc == NULL)
        return TC_NO_MEMORY;
    cache_workers_sum(c, wc);
    class_raw(c, clsid, wc, out);
    free(wc);
    pthread_mutex_lock(&c->stats_lock);
#define X(f) out->f -= c->cbase[clsid].f;
    CLASS_COUNTERS(X)
#undef X
    pthread_mutex_unlock(&c->stats_lock);
    return TC_OK;
}

void cache_stats_reset(struct cache *c)
{
    struct worker_counters *wc = malloc(sizeof(*wc));
    if (wc == NULL)
        return;
    cache_workers_sum(c, wc);
    struct cache_stats g;
    global_raw(c, wc, &g);
    struct cache_class_stats k[CACHE_MAX_CLASSES];
    for (unsigned id = 1; id <= c->large; id++)
        class_raw(c, id, wc, &k[id]);
    free(wc);

    pthread_mutex_lock(&c->stats_lock);
    c->base = g;
    for (unsigned id = 1; id <= c->large; id++)
        c->cbase[id] = k[id];
    pthread_mutex_unlock(&c->stats_lock);
}
