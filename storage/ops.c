/*
 * ops.c: the engine's operations (engine.h) over both tiers: lookups,
 * stores, deletes, arithmetic, touch and flush.
 *
 * Every operation on a key runs with the key's hash stripe held from the
 * lookup to the last change, flash lookup included, so operations on one
 * key are linearizable across tiers: a reply sent after an operation
 * returns is never contradicted by a later read.
 *
 * A lookup (find) gives the key's current state: a live RAM item, a live
 * flash record (RAM had no entry and the filter said maybe), or nothing (a
 * tombstone, an expired or flushed entry, or a miss). Reads return flash
 * records as heap copies, or bring them back to RAM on their second hit;
 * changes to a flash-resident key build the new version in RAM, where it
 * shadows the flash record until it is itself written back.
 */
#include "cache_internal.h"

#include <stdlib.h>
#include <string.h>

#include "numparse.h"
#include "ops_internal.h"

void find_in(struct cache_worker *w, uint64_t hv, const char *key, size_t nkey, struct found *f,
             bool look_on_flash)
{
    struct cache *c = w->c;
    memset(f, 0, sizeof(*f));
    cache_time_t now = cache_now(c);
    struct item *it = ht_find(c->ht, hv, key, nkey);
    if (it != NULL) {
        if (item_iflags(it) & ITEM_TOMBSTONE) {
            f->entry = it;
            return;
        }
        bool flushed;
        if (!cache_item_is_dead(c, it, now, &flushed)) {
            f->it = f->entry = it;
            return;
        }
        if (flushed)
            WCTR_INC(w->ctr.get_flushed);
        else
            WCTR_INC(w->ctr.get_expired);
        if (!tier_remove_locked(w, it, hv, RM_EXPIRED, false))
            f->entry = it; /* could not leave a tombstone: keep it, it reads as absent */
        else
            f->entry = ht_find(c->ht, hv, key, nkey); /* a tombstone, or NULL */
        return;
    }
    if (!look_on_flash || c->flash == NULL || !flash_maybe(w->fr, hv))
        return;
    tc_status_e st = flash_get(w->fr, hv, key, nkey, &f->rec);
    if (st != TC_OK) {
        /* A read error reads as a miss; a change must still shadow and
         * delete whatever flash may hold (see cache_store, cache_delete). */
        f->flash_error = st != TC_NOT_FOUND;
        atomic_fetch_add_explicit(&c->tc.flash_misses, 1, memory_order_relaxed);
        return;
    }
    if (cache_record_is_dead(c, f->rec.exptime, f->rec.atime, f->rec.cas, now)) {
        flash_reader_end(w->fr);
        atomic_fetch_add_explicit(&c->tc.flash_misses, 1, memory_order_relaxed);
        return;
    }
    f->on_flash = true;
    atomic_fetch_add_explicit(&c->tc.flash_hits, 1, memory_order_relaxed);
}

/* The key's current state in either tier. */
void find_key(struct cache_worker *w, uint64_t hv, const char *key, size_t nkey, struct found *f)
{
    find_in(w, hv, key, nkey, f, true);
}

void found_end(struct cache_worker *w, struct found *f)
{
    if (f->on_flash) {
        flash_reader_end(w->fr);
        f->on_flash = false;
    }
}

bool found_any(const struct found *f)
{
    return f->it != NULL || f->on_flash;
}

uint64_t found_cas(const struct found *f)
{
    return f->it != NULL ? f->it->cas : f->rec.cas;
}

/* The current value, flags and expiry of what was found. */
void found_fields(const struct found *f, const char **value, uint32_t *nbytes, uint32_t *flags,
                  uint32_t *exptime)
{
    if (f->it != NULL) {
        *value = item_data_value(f->it);
        *nbytes = f->it->nbytes;
        *flags = f->it->flags;
        *exptime = item_get_exptime(f->it);
    } else {
        *value = f->rec.value;
        *nbytes = f->rec.nbytes;
        *flags = f->rec.flags;
        *exptime = f->rec.exptime;
    }
}

/*
 * A new unlinked item (refcount 1) in RAM. Returns TC_OK, TC_BUSY (room is
 * coming: retry), TC_NO_MEMORY.
 */
tc_status_e alloc_item(struct cache_worker *w, const char *key, size_t nkey, uint32_t flags,
                       cache_time_t exptime, uint32_t nbytes, struct item **out)
{
    struct cache *c = w->c;
    unsigned clsid;
    bool busy;
    struct item *it = cache_alloc_chunk(w, item_ntotal(nkey, nbytes), &clsid, &busy);
    if (it == NULL)
        return busy ? TC_BUSY : TC_NO_MEMORY;
    uint16_t large = item_iflags(it) & ITEM_LARGE;
    item_init(it, (uint8_t)clsid, key, nkey, flags, exptime, nbytes, cache_now(c));
    if (large)
        atomic_store_explicit(&it->iflags, large, memory_order_relaxed);
    *out = it;
    return TC_OK;
}

/* alloc_item() for a new value, which must keep within -I: or TC_TOO_LARGE. */
tc_status_e new_item(struct cache_worker *w, const char *key, size_t nkey, uint32_t flags,
                     cache_time_t exptime, uint32_t nbytes, struct item **out)
{
    if (nkey == 0 || nkey > CACHE_KEY_MAX || nbytes > w->c->opts.item_size_max)
        return TC_TOO_LARGE;
    return alloc_item(w, key, nkey, flags, exptime, nbytes, out);
}

/*
 * Bring a flash record into RAM with its own CAS and access time (clean if
 * nothing about it changes). Stripe held. NULL if RAM has no room now.
 */
struct item *materialize(struct cache_worker *w, uint64_t hv, const struct found *f,
                         cache_time_t exptime, bool clean)
{
    struct item *it;
    const struct flash_item *r = &f->rec;
    /* Not new_item(): a record stored under a larger -I (an earlier run's)
     * is still the key's value. */
    if (alloc_item(w, r->key, r->nkey, r->flags, exptime, r->nbytes, &it) != TC_OK)
        return NULL;
    memcpy(item_data_value(it), r->value, r->nbytes);
    it->cas = r->cas;
    atomic_store_explicit(&it->atime, r->atime, memory_order_relaxed);
    if (r->mbits != 0)
        item_set_iflag(it, frec_bits_iflags(r->mbits));
    if (clean)
        item_set_iflag(it, ITEM_CLEAN);
    cache_link_locked(w->c, it, hv, f->entry, true);
    atomic_fetch_add_explicit(&w->c->tc.promotions, 1, memory_order_relaxed);
    return it;
}

/* A heap copy of a flash record, for a reader (not linked). */
struct item *heap_copy(struct cache *c, const struct flash_item *r)
{
    struct item *it = tier_heap_item(c, r->key, r->nkey, r->flags, r->exptime, r->nbytes,
                                     frec_bits_iflags(r->mbits));
    if (it == NULL)
        return NULL;
    memcpy(item_data_value(it), r->value, r->nbytes);
    it->cas = r->cas;
    atomic_store_explicit(&it->atime, r->atime, memory_order_relaxed);
    return it;
}

/* ---------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------- */

/* Record a use of a live item: fetched, active, access time. */
void item_bump(struct cache_worker *w, struct item *it)
{
    cache_time_t now = cache_now(w->c);
    item_set_iflag(it, ITEM_ACTIVE | ITEM_FETCHED);
    if (item_get_atime(it) != now)
        atomic_store_explicit(&it->atime, now, memory_order_relaxed);
}

/* A change in place (expiry, incr): flash's copy no longer matches it. */
void changed_in_place(struct cache *c, struct item *it, uint64_t hv)
{
    uint16_t fl = item_iflags(it);
    if (fl & ITEM_DEMOTING)
        item_set_iflag(it, ITEM_REDIRTY); /* the write in flight may hold either version */
    if (fl & ITEM_CLEAN)
        item_clear_iflag(it, ITEM_CLEAN);
    if (fl & (ITEM_CLEAN | ITEM_DEMOTING))
        tier_invalidate_locked(c, hv, it->data, it->nkey);
}

void set_exptime(struct cache *c, struct item *it, uint64_t hv, cache_time_t exptime)
{
    atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
    changed_in_place(c, it, hv);
}

void count_hit(struct cache_worker *w, const struct item *it, bool touch)
{
    if (item_iflags(it) & ITEM_HEAP) {
        /* A copy from flash, or a spilled version: a hit like any other,
         * of no slab class (a touch counts in the class it would be in). */
        if (touch)
            WCTR_INC(
                w->ctr.cls[cache_class_for(w->c, item_ntotal(it->nkey, it->nbytes))].touch_hits);
        else
            WCTR_INC(w->ctr.flash_get_hits);
        return;
    }
    struct worker_class_counters *cc = &w->ctr.cls[it->clsid];
    if (touch) {
        WCTR_INC(cc->touch_hits);
        return;
    }
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
    struct found f;
    struct item *it = NULL;
    tc_status_e st = TC_OK;

    ht_lock(c->ht, hv);
    find_key(w, hv, key, nkey, &f);
    if (f.it != NULL && item_refcount(f.it) < REFCOUNT_LIMIT) {
        it = f.it;
        item_ref(it);
        if (touch)
            set_exptime(c, it, hv, exptime);
        item_bump(w, it);
    } else if (f.on_flash) {
        if (touch) {
            /* The new expiry is a change: the item comes to RAM, dirty, and
             * the flash copy (old expiry) goes. */
            it = materialize(w, hv, &f, exptime, false);
            if (it != NULL) {
                tier_invalidate_locked(c, hv, key, nkey);
            } else {
                /* No room in RAM: memcached's touch needs none. */
                struct flash_item v = f.rec;
                v.exptime = exptime;
                it = tier_spill_locked(c, hv, &v, true, f.entry);
            }
            st = it != NULL ? TC_OK : TC_BUSY;
        } else if (tier_promote(c->sketch, hv)) {
            it = materialize(w, hv, &f, f.rec.exptime, true);
        }
        if (it != NULL) {
            item_bump(w, it); /* materialize's reference is the caller's */
        } else if (!touch) {
            it = heap_copy(c, &f.rec);
            st = it != NULL ? TC_OK : TC_NO_MEMORY;
        }
        if (it != NULL && (item_iflags(it) & ITEM_HEAP))
            item_set_iflag(it, ITEM_FETCHED);
        found_end(w, &f);
    }
    ht_unlock(c->ht, hv);

    if (it == NULL) {
        if (touch)
            WCTR_INC(w->ctr.touch_misses);
        else
            WCTR_INC(w->ctr.get_misses);
        return st == TC_OK ? TC_NOT_FOUND : st;
    }
    count_hit(w, it, touch);
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
    struct item *it;
    tc_status_e st = get_common(w, key, nkey, true, exptime, &it);
    if (st == TC_OK)
        cache_item_unref(w->c, it);
    return st;
}

/* ---------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------- */

tc_status_e cache_alloc(struct cache_worker *w, const char *key, size_t nkey, uint32_t flags,
                        cache_time_t exptime, uint32_t nbytes, struct item **out)
{
    tc_status_e st = new_item(w, key, nkey, flags, exptime, nbytes, out);
    if (st == TC_TOO_LARGE)
        WCTR_INC(w->ctr.store_too_large);
    else if (st == TC_NO_MEMORY)
        WCTR_INC(w->ctr.store_no_memory);
    return st;
}

/* append/prepend: a new item holding old and new bytes, with the old flags
 * and expiry. Stripe held. */
static tc_status_e concat(struct cache_worker *w, const struct found *f, struct item *add,
                          bool append, struct item **out)
{
    const char *value;
    uint32_t nbytes, flags, exptime;
    found_fields(f, &value, &nbytes, &flags, &exptime);
    uint64_t total = (uint64_t)nbytes + add->nbytes;
    if (total > w->c->opts.item_size_max)
        return TC_TOO_LARGE;
    struct item *nu;
    tc_status_e st = new_item(w, add->data, add->nkey, flags, exptime, (uint32_t)total, &nu);
    if (st != TC_OK)
        return st;
    char *dst = item_data_value(nu);
    if (append) {
        memcpy(dst, value, nbytes);
        memcpy(dst + nbytes, item_data_value(add), add->nbytes);
    } else {
        memcpy(dst, item_data_value(add), add->nbytes);
        memcpy(dst + add->nbytes, value, nbytes);
    }
    *out = nu;
    return TC_OK;
}

tc_status_e ops_store(struct cache_worker *w, struct item *it, enum cache_store_op op, uint64_t cas,
                      bool invalidate, uint64_t *cas_out)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(it->data, it->nkey);
    struct item *to_link = it;
    struct item *combined = NULL;
    tc_status_e st = TC_OK;
    struct found f;

    ht_lock(c->ht, hv);
    /* A plain set does not care what flash holds: the new version shadows it. */
    find_in(w, hv, it->data, it->nkey, &f, op != CACHE_SET);
    bool exists = found_any(&f);
    switch (op) {
    case CACHE_SET:
        break;
    case CACHE_ADD:
        if (exists) {
            /* memcached refreshes the existing item's recency on a failed add. */
            if (f.it != NULL)
                atomic_store_explicit(&f.it->atime, cache_now(c), memory_order_relaxed);
            st = TC_NOT_STORED;
        }
        break;
    case CACHE_REPLACE:
        if (!exists)
            st = TC_NOT_STORED;
        break;
    case CACHE_CAS:
        if (!exists) {
            WCTR_INC(w->ctr.cas_misses);
            st = TC_NOT_FOUND;
        } else if (invalidate && cas != 0 && cas < found_cas(&f)) {
            /* ms I with an older CAS: memcached stores the value anyway,
             * marked stale, keeping the current expiry and win mark. */
            const char *value;
            uint32_t nbytes, flags, exptime;
            found_fields(&f, &value, &nbytes, &flags, &exptime);
            unsigned meta = f.it != NULL ? item_meta(f.it) : f.rec.mbits & FREC_META_MASK;
            atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
            item_set_iflag(it, ITEM_STALE | (meta & CACHE_META_WIN_SENT ? ITEM_WIN_SENT : 0));
            WCTR_INC(w->ctr.cls[it->clsid].cas_hits);
        } else if (found_cas(&f) != cas) {
            WCTR_INC(w->ctr.cls[it->clsid].cas_badval);
            st = TC_EXISTS;
        } else {
            WCTR_INC(w->ctr.cls[it->clsid].cas_hits);
        }
        break;
    case CACHE_APPEND:
    case CACHE_PREPEND:
        if (!exists)
            st = TC_NOT_STORED;
        else if (cas != 0 && cas != found_cas(&f))
            st = TC_EXISTS;
        else if ((st = concat(w, &f, it, op == CACHE_APPEND, &combined)) == TC_OK)
            to_link = combined;
        break;
    }
    bool on_flash = f.on_flash || f.flash_error;
    found_end(w, &f);
    if (st == TC_OK) {
        WCTR_INC(w->ctr.cls[it->clsid].cmd_set);
        /* A newer version in RAM shadows any flash record of the key, and
         * the record is deleted so that a crash cannot bring it back. */
        if (on_flash || (op == CACHE_SET && f.entry == NULL && tier_may_be_on_flash(w, hv)))
            tier_invalidate_locked(c, hv, it->data, it->nkey);
        cache_link_locked(c, to_link, hv, f.entry, false);
        if (cas_out != NULL)
            *cas_out = to_link->cas;
    } else if (st != TC_BUSY) {
        WCTR_INC(w->ctr.cls[it->clsid].cmd_set);
    }
    ht_unlock(c->ht, hv);
    if (combined != NULL)
        cache_item_unref(c, combined);
    return st;
}

tc_status_e cache_store(struct cache_worker *w, struct item *it, enum cache_store_op op,
                        uint64_t cas, uint64_t *cas_out)
{
    return ops_store(w, it, op, cas, false, cas_out);
}

tc_status_e cache_delete(struct cache_worker *w, const char *key, size_t nkey)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    struct found f;
    tc_status_e st = TC_OK;

    ht_lock(c->ht, hv);
    find_key(w, hv, key, nkey, &f);
    if (f.it != NULL) {
        unsigned clsid = f.it->clsid;
        if (tier_remove_locked(w, f.it, hv, RM_DELETE, false))
            WCTR_INC(w->ctr.cls[clsid].delete_hits);
        else
            st = TC_NO_MEMORY;
    } else if (f.on_flash || f.flash_error) {
        /* Only on flash (RAM has no entry): a tombstone shadows it until the
         * writer has removed the record. If flash could not be read, the
         * key is most likely there (the filter said so): delete it all the
         * same, so that it cannot come back when flash does. */
        found_end(w, &f);
        st = tier_tombstone_locked(w, hv, key, nkey) ? TC_OK : TC_NO_MEMORY;
    } else {
        WCTR_INC(w->ctr.delete_misses);
        st = TC_NOT_FOUND;
    }
    ht_unlock(c->ht, hv);
    return st;
}

/*
 * The result of an incr or decr when RAM has no room for it: memcached
 * changes the number in place, without memory, so it goes straight to flash
 * instead (tier_spill_locked). TC_OK, or TC_BUSY if flash cannot take it.
 */
static tc_status_e arith_spill(struct cache_worker *w, uint64_t hv, const struct found *f,
                               const char *key, size_t nkey, uint32_t flags, uint32_t exptime,
                               uint8_t mbits, const char *num, size_t len, uint32_t nlen,
                               unsigned *clsid, uint64_t *cas_out)
{
    char *value = malloc(nlen ? nlen : 1);
    if (value == NULL)
        return TC_NO_MEMORY;
    memcpy(value, num, len);
    memset(value + len, ' ', nlen - len);
    struct flash_item v = {.key = key,
                           .nkey = nkey,
                           .value = value,
                           .nbytes = nlen,
                           .flags = flags,
                           .exptime = exptime,
                           .atime = cache_now(w->c),
                           .mbits = mbits};
    struct item *it = tier_spill_locked(w->c, hv, &v, false, f->entry);
    free(value);
    if (it == NULL)
        return TC_BUSY;
    *clsid = cache_class_for(w->c, item_ntotal(nkey, nlen));
    if (cas_out != NULL)
        *cas_out = it->cas;
    cache_item_unref(w->c, it);
    return TC_OK;
}

/* ma N: a missing key created with the initial value (stripe held). */
static tc_status_e arith_vivify(struct cache_worker *w, uint64_t hv, struct found *f,
                                const char *key, size_t nkey, const struct arith_req *a,
                                struct arith_res *r)
{
    char buf[24];
    size_t len = tc_u64toa(a->initial, buf);
    struct item *nu;
    tc_status_e st = new_item(w, key, nkey, 0, a->vivify_exptime, (uint32_t)len, &nu);
    if (st != TC_OK)
        return st;
    memcpy(item_data_value(nu), buf, len);
    if (f->flash_error)
        tier_invalidate_locked(w->c, hv, key, nkey);
    cache_link_locked(w->c, nu, hv, f->entry, false);
    r->created = true;
    r->value = a->initial;
    r->cas = nu->cas;
    r->exptime_before = 0;
    cache_item_unref(w->c, nu);
    return TC_OK;
}

tc_status_e ops_arith(struct cache_worker *w, const char *key, size_t nkey,
                      const struct arith_req *a, struct arith_res *r)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    tc_status_e st = TC_OK;
    struct found f;
    uint64_t v = 0;
    unsigned clsid = 0;

    memset(r, 0, sizeof(*r));
    ht_lock(c->ht, hv);
    find_key(w, hv, key, nkey, &f);
    const char *cur;
    uint32_t nbytes, flags, exptime;
    if (!found_any(&f)) {
        st = TC_NOT_FOUND;
    } else {
        found_fields(&f, &cur, &nbytes, &flags, &exptime);
        r->exptime_before = exptime;
        /* memcached keeps items over 512 KiB in chunks and calls them
         * non-numeric; it compares the CAS (ma C) after that check and
         * before reading the number. */
        if (nbytes == 0 || item_ntotal(nkey, nbytes) > c->pool.chunk_max)
            st = TC_NON_NUMERIC;
        else if (a->cas != 0 && a->cas != found_cas(&f))
            st = TC_EXISTS;
        else if (!tc_strtoull(cur, nbytes, &v))
            st = TC_NON_NUMERIC;
        if (a->set_exptime)
            exptime = a->exptime;
    }
    if (st == TC_OK) {
        if (a->incr)
            v += a->delta;
        else
            v = a->delta > v ? 0 : v - a->delta;
        char buf[24];
        size_t len = tc_u64toa(v, buf);
        struct item *it = f.it;
        if (it != NULL && len <= it->nbytes && item_refcount(it) == 1) {
            /* Nobody else holds it: rewrite in place, space padded, as memcached. */
            memcpy(item_data_value(it), buf, len);
            memset(item_data_value(it) + len, ' ', it->nbytes - len);
            it->cas = atomic_fetch_add_explicit(&c->next_cas, 1, memory_order_relaxed);
            if (a->set_exptime)
                atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
            changed_in_place(c, it, hv);
            item_bump(w, it);
            clsid = it->clsid;
            r->cas = it->cas;
        } else {
            /* A flash record is the sole copy, as an unshared RAM item
             * would be: the result is padded to the old length likewise. */
            bool in_place = f.on_flash && len <= nbytes;
            uint32_t nlen = in_place ? nbytes : (uint32_t)len;
            /* ... and keeps its meta state, as memcached's in-place change does. */
            uint8_t mbits = in_place ? (uint8_t)(f.rec.mbits & FREC_META_MASK) : 0;
            struct item *nu;
            st = new_item(w, key, nkey, flags, exptime, nlen, &nu);
            if (st == TC_OK) {
                memcpy(item_data_value(nu), buf, len);
                memset(item_data_value(nu) + len, ' ', nlen - len);
                if (mbits != 0)
                    item_set_iflag(nu, frec_bits_iflags(mbits));
                if (f.on_flash)
                    tier_invalidate_locked(c, hv, key, nkey);
                cache_link_locked(c, nu, hv, f.entry, false);
                clsid = nu->clsid;
                r->cas = nu->cas;
                cache_item_unref(c, nu);
            } else if ((st = arith_spill(w, hv, &f, key, nkey, flags, exptime, mbits, buf, len,
                                         nlen, &clsid, &r->cas)) != TC_OK &&
                       st != TC_BUSY) {
                st = TC_NO_MEMORY;
            }
        }
    }
    found_end(w, &f);
    if (st == TC_NOT_FOUND && a->vivify)
        st = arith_vivify(w, hv, &f, key, nkey, a, r);
    ht_unlock(c->ht, hv);

    if (r->created)
        return st;
    if (st == TC_NOT_FOUND) {
        if (a->incr)
            WCTR_INC(w->ctr.incr_misses);
        else
            WCTR_INC(w->ctr.decr_misses);
    } else if (st == TC_OK) {
        if (a->incr)
            WCTR_INC(w->ctr.cls[clsid].incr_hits);
        else
            WCTR_INC(w->ctr.cls[clsid].decr_hits);
        r->value = v;
    }
    return st;
}

tc_status_e cache_arith(struct cache_worker *w, const char *key, size_t nkey, bool incr,
                        uint64_t delta, uint64_t *value, uint64_t *cas_out)
{
    struct arith_req a = {.incr = incr, .delta = delta};
    struct arith_res r;
    tc_status_e st = ops_arith(w, key, nkey, &a, &r);
    if (st == TC_OK) {
        *value = r.value;
        if (cas_out != NULL)
            *cas_out = r.cas;
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
    atomic_store(&c->state_dirty, true); /* the writer persists the new boundary */
    if (c->writer != NULL)
        writer_kick(c->writer);
}
