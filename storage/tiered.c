/*
 * tiered.c: the flash side of the engine: what happens to RAM items when
 * flash is there.
 *
 * The model is write-behind. An item written to flash stays in RAM, marked
 * CLEAN (flash holds this very version); when RAM needs its memory it is
 * simply dropped, and later reads find it on flash. The maintainer keeps
 * the COLD tails of the LRUs clean ahead of need (tier_preclean), queueing
 * dirty items for the writer (DEMOTING: the writer holds a reference, the
 * item stays readable and unchanged in RAM until the commit).
 *
 * The one rule that keeps flash from ever serving an older version: while a
 * key may have a flash record (the filter says maybe) or a queued write
 * (pending[stripe] > 0) that is not its current version, RAM holds an entry
 * for it: the current item, or a tombstone that shadows flash until the
 * writer has deleted the record. So a RAM entry that leaves without a newer
 * version taking its place (delete, expiry, eviction of a dirty item) leaves
 * a tombstone behind, unless flash holds exactly it (CLEAN) and it is being
 * evicted or has expired (then flash's copy is just as good, or as dead).
 *
 * Locks: every function here that touches an item runs with the item's
 * stripe held, except the writer callbacks, which take it themselves.
 */
#include "cache_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define PRECLEAN_MIN    64   /* clean items kept at a pressed class's COLD tail */
#define PRECLEAN_WINDOW 1024 /* ... at most, and the most scanned per round */

static inline unsigned stripe_of(uint64_t hv)
{
    return (unsigned)(hv & (HT_STRIPES - 1));
}

tc_status_e tier_open(struct cache *c, const struct cache_options *o)
{
    struct flash_options fo = {
        .dir = o->flash_dir,
        .size = o->flash_size,
        .sync = o->flash_sync,
        .max_readers = 512,
    };
    tc_status_e st = flash_open(&fo, &c->flash);
    if (st != TC_OK)
        return st;
    /* Warm start: CAS values continue above everything handed out before,
     * and flushes recorded before the stop still hold. */
    struct flash_state fs;
    flash_state_get(c->flash, &fs);
    uint64_t next = fs.cas_lease > 1 ? fs.cas_lease : 1;
    if (fs.fresh || fs.moved_aside || fs.discarded) {
        /* The lease is gone with the old data, while clients may still
         * hold CAS values from before: start above them, at the wall
         * clock in microseconds (no run hands out CAS values faster). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
        next = next > us ? next : us;
    }
    atomic_store(&c->next_cas, next);
    atomic_store(&c->cas_lease, fs.cas_lease);
    atomic_store(&c->flush_cas, fs.flush_cas);
    atomic_store(&c->flush_at, fs.flush_at);
    c->sketch = calloc(1, sizeof(*c->sketch));
    if (c->sketch == NULL)
        return TC_NO_MEMORY;
    c->flash_min_ttl = o->flash_min_ttl;
    c->flash_value_max = flash_value_max(c->flash);
    uint64_t qmax = o->flash_queue_max;
    if (qmax == 0)
        qmax = o->mem_limit / 16 < (64ULL << 20) ? o->mem_limit / 16 : (64ULL << 20);
    if (qmax < (1ULL << 20))
        qmax = 1ULL << 20;
    return writer_start(c, c->flash, qmax, o->flash_sync, &c->writer);
}

void tier_stop_writer(struct cache *c)
{
    writer_stop(&c->writer);
}

void tier_close(struct cache *c)
{
    writer_stop(&c->writer);
    flash_close(&c->flash);
    free(c->sketch);
    c->sketch = NULL;
}

bool tier_usable(const struct cache *c)
{
    return c->flash != NULL && c->writer != NULL && !writer_degraded(c->writer);
}

struct item *tier_heap_item(struct cache *c, const char *key, size_t nkey, uint32_t flags,
                            uint32_t exptime, uint32_t nbytes, uint16_t iflags)
{
    size_t n = item_ntotal(nkey, nbytes);
    struct item *it = malloc(n);
    if (it == NULL)
        return NULL;
    item_init(it, 0, key, nkey, flags, exptime, nbytes, cache_now(c));
    atomic_store_explicit(&it->iflags, (uint16_t)(ITEM_HEAP | iflags), memory_order_relaxed);
    atomic_fetch_add_explicit(&c->tc.heap_items, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->tc.heap_bytes, n, memory_order_relaxed);
    return it;
}

static bool start_demotion(struct cache *c, struct item *it, uint64_t hv, bool spill)
{
    if (c->writer == NULL || (item_iflags(it) & (ITEM_DEMOTING | ITEM_CLEAN)))
        return false;
    item_ref(it);
    item_set_iflag(it, ITEM_DEMOTING);
    c->pending[stripe_of(hv)]++;
    if (!(spill ? writer_enqueue_spill(c->writer, it, hv)
                : writer_enqueue(c->writer, WOP_WRITE, it, hv))) {
        c->pending[stripe_of(hv)]--;
        item_clear_iflag(it, ITEM_DEMOTING);
        item_unref_raw(it); /* we still hold the table's reference: never 0 here */
        return false;
    }
    atomic_fetch_add_explicit(&c->tc.demotions_queued, 1, memory_order_relaxed);
    return true;
}

bool tier_start_demotion(struct cache *c, struct item *it, uint64_t hv)
{
    return start_demotion(c, it, hv, false);
}

struct item *tier_spill_locked(struct cache *c, uint64_t hv, const struct flash_item *v,
                               bool keep_cas, struct item *prev)
{
    if (!tier_usable(c))
        return NULL;
    struct item *it = tier_heap_item(c, v->key, v->nkey, v->flags, v->exptime, v->nbytes,
                                     frec_bits_iflags(v->mbits));
    if (it == NULL)
        return NULL;
    memcpy(item_data_value(it), v->value, v->nbytes);
    it->cas = v->cas;
    atomic_store_explicit(&it->atime, v->atime, memory_order_relaxed);
    /* Linked first: the delete of prev's flash copy (if any) is queued
     * before this write, which it would otherwise undo. If the writer
     * refuses the write after all (it just became degraded, or is twice its
     * queue bound behind), the item stays in RAM, outside the LRU, until it
     * is replaced or deleted. */
    cache_link_locked(c, it, hv, prev, keep_cas);
    start_demotion(c, it, hv, true);
    atomic_fetch_add_explicit(&c->tc.spills, 1, memory_order_relaxed);
    return it;
}

/* Queue the flash delete that a linked tombstone stands for. */
static void queue_delete(struct cache *c, struct item *tomb, uint64_t hv)
{
    item_ref(tomb); /* the queue's */
    writer_enqueue(c->writer, WOP_DELETE, tomb, hv);
    atomic_fetch_add_explicit(&c->tc.tombstones, 1, memory_order_relaxed);
}

static struct item *new_tombstone(struct cache *c, const char *key, size_t nkey)
{
    return tier_heap_item(c, key, nkey, 0, 0, 0, ITEM_TOMBSTONE);
}

void tier_invalidate_locked(struct cache *c, uint64_t hv, const char *key, size_t nkey)
{
    if (c->writer == NULL)
        return;
    /* An unlinked carrier for the key: the writer deletes the flash record,
     * so that after a crash the old version cannot come back. */
    struct item *carrier = tier_heap_item(c, key, nkey, 0, 0, 0, 0);
    if (carrier == NULL) {
        TC_LOG_ONCE(TC_LOG_WARN, "flash: out of memory for an invalidation: after a crash an "
                                 "overwritten value could reappear");
        return;
    }
    writer_enqueue(c->writer, WOP_DELETE, carrier, hv);
    atomic_fetch_add_explicit(&c->tc.invalidations, 1, memory_order_relaxed);
}

bool tier_may_be_on_flash(struct cache_worker *w, uint64_t hv)
{
    return w->c->flash != NULL && (w->c->pending[stripe_of(hv)] > 0 || flash_maybe(w->fr, hv));
}

bool tier_tombstone_locked(struct cache_worker *w, uint64_t hv, const char *key, size_t nkey)
{
    struct cache *c = w->c;
    struct item *tomb = new_tombstone(c, key, nkey);
    if (tomb == NULL)
        return false;
    cache_link_locked(c, tomb, hv, NULL, true);
    queue_delete(c, tomb, hv);
    cache_item_unref(c, tomb); /* ours; the table and the queue keep theirs */
    return true;
}

/* Does removing this RAM entry (with nothing newer in its place) need a tombstone? */
static bool needs_tombstone(struct cache_worker *w, struct item *it, uint64_t hv, enum removal why)
{
    struct cache *c = w->c;
    if (c->flash == NULL)
        return false;
    bool clean = item_iflags(it) & ITEM_CLEAN;
    if (clean && why != RM_DELETE)
        return false; /* flash holds this very version: as good (evict) or as dead (expired) */
    if (clean || c->pending[stripe_of(hv)] > 0)
        return true;
    return flash_maybe(w->fr, hv);
}

bool tier_remove_locked(struct cache_worker *w, struct item *it, uint64_t hv, enum removal why,
                        bool reuse)
{
    struct cache *c = w->c;
    struct item *tomb = NULL;
    if (needs_tombstone(w, it, hv, why)) {
        tomb = new_tombstone(c, it->data, it->nkey);
        if (tomb == NULL)
            return false;
    }
    if (item_iflags(it) & ITEM_CLEAN)
        atomic_fetch_add_explicit(&c->tc.dropped_clean, 1, memory_order_relaxed);
    else if (why == RM_EVICT)
        atomic_fetch_add_explicit(&c->tc.dropped_dirty, 1, memory_order_relaxed);

    if (!reuse) {
        cache_unlink_locked(c, it, hv);
    } else {
        /* The evictor (class lock held) unlinks from the LRU itself and
         * keeps the last reference to reuse the memory. */
        ht_remove(c->ht, hv, it);
        item_clear_iflag(it, ITEM_LINKED);
    }
    if (tomb != NULL) {
        cache_link_locked(c, tomb, hv, NULL, true);
        queue_delete(c, tomb, hv);
        cache_item_unref(c, tomb);
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * Cleaning ahead (maintainer)
 * ------------------------------------------------------------------------- */

unsigned tier_preclean_locked(struct cache *c, struct cls *k, unsigned want)
{
    if (!tier_usable(c))
        return 0;
    cache_time_t now = cache_now(c);
    unsigned queued = 0;
    static const enum lru_seg order[] = {LRU_COLD, LRU_HOT, LRU_WARM};
    for (size_t s = 0; s < 3 && queued < want; s++) {
        uint64_t scanned = 0;
        for (struct item *it = k->lru.tail[order[s]];
             it != NULL && queued < want && scanned < 4 * (uint64_t)want;
             it = it->prev, scanned++) {
            if (item_iflags(it) & (ITEM_CLEAN | ITEM_DEMOTING))
                continue;
            bool flushed;
            if (cache_item_is_dead(c, it, now, &flushed) ||
                !tier_admit(item_get_exptime(it), now, c->flash_min_ttl, it->nbytes,
                            c->flash_value_max))
                continue; /* the evictor just drops these */
            uint64_t hv = ht_hash(it->data, it->nkey);
            if (!ht_trylock(c->ht, hv))
                continue;
            bool ok = true;
            if (item_iflags(it) & ITEM_LINKED)
                ok = tier_start_demotion(c, it, hv);
            ht_unlock(c->ht, hv);
            if (!ok)
                return queued; /* the queue is full */
            queued++;
        }
    }
    return queued;
}

bool tier_preclean(struct cache *c, struct cls *k)
{
    if (!tier_usable(c) || !writer_accepts(c->writer))
        return false;
    pthread_mutex_lock(&k->lock);
    /* Only a class that must evict to allocate needs clean items. */
    bool pressed = k->slab.nfree + k->slab.end_free < PRECLEAN_WINDOW &&
                   !slab_pool_has_room(&c->pool, c->pool.page_size);
    unsigned queued = 0;
    if (pressed) {
        uint64_t target = lru_total(&k->lru) / 16;
        if (target < PRECLEAN_MIN)
            target = PRECLEAN_MIN;
        if (target > PRECLEAN_WINDOW)
            target = PRECLEAN_WINDOW;
        /* How much of the tail is ready (clean or on its way)? */
        uint64_t ready = 0, seen = 0;
        for (struct item *it = k->lru.tail[LRU_COLD]; it != NULL && seen < target;
             it = it->prev, seen++) {
            if (item_iflags(it) & (ITEM_CLEAN | ITEM_DEMOTING))
                ready++;
        }
        if (ready < target)
            queued = tier_preclean_locked(c, k, (unsigned)(target - ready));
    }
    pthread_mutex_unlock(&k->lock);
    return queued > 0;
}

/* ---------------------------------------------------------------------------
 * Writer callbacks (writer thread, no engine lock held on entry)
 * ------------------------------------------------------------------------- */

void cache_flash_done(struct cache *c, const struct wop *op, bool ok)
{
    struct item *it = op->it;
    ht_lock(c->ht, op->hv);
    if (op->type == WOP_WRITE) {
        c->pending[stripe_of(op->hv)]--;
        if (ok && !(item_iflags(it) & ITEM_REDIRTY))
            item_set_iflag(it, ITEM_CLEAN);
        item_clear_iflag(it, ITEM_DEMOTING | ITEM_REDIRTY);
        uint16_t fl = item_iflags(it);
        if ((fl & (ITEM_HEAP | ITEM_LINKED)) == (ITEM_HEAP | ITEM_LINKED)) {
            /* A spilled version (tier_spill_locked), still the key's: once
             * on flash it leaves RAM; changed meanwhile, it goes again. If
             * flash fails it stays, outside the LRU, until replaced. */
            if (fl & ITEM_CLEAN)
                cache_unlink_locked(c, it, op->hv);
            else if (ok)
                start_demotion(c, it, op->hv, true);
        }
    } else if (ok && (item_iflags(it) & ITEM_LINKED)) {
        /* Flash no longer has the key: the tombstone has done its job. */
        cache_unlink_locked(c, it, op->hv);
    }
    ht_unlock(c->ht, op->hv);
    cache_item_unref(c, it);
}

void cache_flash_evicted(struct cache *c, uint64_t hv, const char *key, size_t nkey, uint64_t cas)
{
    ht_lock(c->ht, hv);
    struct item *it = ht_find(c->ht, hv, key, nkey);
    if (it != NULL && !(item_iflags(it) & ITEM_HEAP) && it->cas == cas)
        item_clear_iflag(it, ITEM_CLEAN); /* flash lost its copy: RAM's is the only one */
    ht_unlock(c->ht, hv);
}

/* ---------------------------------------------------------------------------
 * Statistics and testing
 * ------------------------------------------------------------------------- */

void cache_tier_stats_get(struct cache *c, struct cache_tier_stats *o)
{
    memset(o, 0, sizeof(*o));
    struct cache_stats cs;
    cache_stats_get(c, &cs);
    o->ram_items = cs.curr_items;
    o->ram_bytes = cs.bytes;
    o->ram_limit = cs.limit_maxbytes;
    struct tier_counters *t = &c->tc;
    o->flash_hits = atomic_load(&t->flash_hits);
    o->flash_misses = atomic_load(&t->flash_misses);
    o->promotions = atomic_load(&t->promotions);
    o->dropped_clean = atomic_load(&t->dropped_clean);
    o->dropped_dirty = atomic_load(&t->dropped_dirty);
    o->tombstones = atomic_load(&t->tombstones);
    o->busy = atomic_load(&t->busy);
    o->heap_items = atomic_load(&t->heap_items);
    o->heap_bytes = atomic_load(&t->heap_bytes);
    o->spills = atomic_load(&t->spills);
    if (c->flash == NULL)
        return;
    o->flash_enabled = true;
    struct flash_stats fs;
    flash_stats_get(c->flash, &fs);
    struct writer_stats ws;
    writer_stats_get(c->writer, &ws);
    o->flash_degraded = ws.degraded;
    o->flash_items = fs.items;
    o->flash_bytes = fs.live_bytes;
    o->flash_used_bytes = fs.used_bytes;
    o->flash_disk_bytes = fs.file_bytes;
    o->flash_limit = fs.map_bytes;
    o->flash_batches = fs.batches;
    o->demotions = ws.written;
    o->demotions_skipped_clean = ws.skipped_clean;
    o->demotions_failed = ws.failed;
    o->filter_negatives = fs.filter_negatives;
    o->filter_items = fs.filter_items;
    o->filter_bytes = fs.filter_bytes;
    o->lmdb_lookups = fs.lookups;
    o->flash_evictions = fs.evicted_items;
    o->flash_evicted_batches = fs.evicted_batches;
    o->flash_deletes = ws.deleted;
    o->queue_ops = ws.queue_ops;
    o->queue_bytes = ws.queue_bytes;
    o->held_deletes = ws.held_deletes;
    o->batches = ws.batches;
    o->batch_ops = ws.batch_ops;
    o->batch_max = ws.batch_max;
    o->map_full = ws.map_full;
    o->syncs = fs.syncs;
    o->io_errors = fs.errors;
}

void cache_flash_fault_inject(struct cache *c, long nth, int err, long count)
{
    if (c->flash == NULL)
        return;
    if (nth <= 0)
        flash_fault_clear(c->flash);
    else
        flash_fault_inject(c->flash, nth, err, count);
}

bool cache_flash_drain(struct cache *c, long timeout_ms)
{
    return c->writer == NULL || writer_drain(c->writer, timeout_ms);
}

struct persist_ctx {
    struct cache *c;
    cache_time_t now;
    uint64_t queued;
    bool refused;
};

/* Stripe held: queue one item if its current version is not on flash. */
static void persist_visit(struct item *it, uint64_t hv, void *arg)
{
    struct persist_ctx *x = arg;
    struct cache *c = x->c;
    bool flushed;
    uint16_t fl = item_iflags(it);
    if ((fl & (ITEM_TOMBSTONE | ITEM_CLEAN | ITEM_DEMOTING)) || x->refused ||
        cache_item_is_dead(c, it, x->now, &flushed) ||
        !tier_admit(item_get_exptime(it), x->now, 0, it->nbytes, c->flash_value_max))
        return; /* every live item, short-lived ones too: a restart serves what a stop saw */
    if (tier_start_demotion(c, it, hv))
        x->queued++;
    else
        x->refused = true; /* the queue is full: drain, then go over this slice again */
}

tc_status_e cache_persist(struct cache *c, long timeout_ms, uint64_t *written)
{
    *written = 0;
    if (c->flash == NULL)
        return TC_OK;
    maintainer_stop(c);
    while (ht_is_growing(c->ht))
        ht_grow_step(c->ht, 1 << 16);
    struct persist_ctx x = {.c = c, .now = cache_now(c)};
    uint64_t cursor = 0;
    for (bool done = false; !done;) {
        uint64_t slice = cursor;
        x.refused = false;
        done = ht_scan(c->ht, &cursor, 1024, persist_visit, &x);
        if (x.refused) {
            if (writer_degraded(c->writer) || !writer_drain(c->writer, timeout_ms))
                break;
            cursor = slice;
            done = false;
        }
    }
    *written = x.queued;
    if (!writer_drain(c->writer, timeout_ms) || writer_degraded(c->writer)) {
        tc_log(TC_LOG_ERROR, "flash: could not write everything before stopping: RAM-only "
                             "items are lost, and the next start will be an unclean one");
        return TC_IO_ERROR;
    }
    c->clean_stop = true;
    return TC_OK;
}
