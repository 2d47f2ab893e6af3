/*
 * meta_ops.c: the engine side of memcached's meta commands (engine.h, "The
 * meta protocol"), built from the same pieces as ops.c and with the same
 * rule: one key, one stripe lock, from the lookup to the last change.
 *
 * The meta state of an item (stale, win sent, base64 key) lives in its
 * iflags and goes to flash with it. A change to it is a change to the item:
 * a flash-resident item comes to RAM for it (or, without room, is spilled
 * straight back to flash, as a touch is), and a RAM item's flash copy stops
 * being current.
 */
#include "ops_internal.h"

#include <string.h>

/* Would this mg win? (memcached's ITEM_TOKEN_SENT logic, in flag order.) */
static bool mget_wins(const struct cache_mget *m)
{
    if (m->meta & CACHE_META_WIN_SENT)
        return false;
    if (m->meta & CACHE_META_STALE)
        return true;
    cache_time_t at_r = m->touch && m->recache_after_touch ? m->touch_exptime : m->old_exptime;
    return m->recache && at_r != 0 && at_r < m->recache_time;
}

/* mg on a live RAM item. */
static struct item *mget_ram(struct cache_worker *w, uint64_t hv, struct item *it,
                             struct cache_mget *m)
{
    struct cache *c = w->c;
    item_ref(it);
    m->fetched = (item_iflags(it) & ITEM_FETCHED) != 0;
    m->atime = item_get_atime(it);
    m->old_exptime = item_get_exptime(it);
    m->meta = item_meta(it);
    m->win = mget_wins(m);
    if (m->touch)
        set_exptime(c, it, hv, m->touch_exptime);
    if (m->win && !m->no_win) {
        item_set_iflag(it, ITEM_WIN_SENT);
        changed_in_place(c, it, hv);
    }
    if (!m->no_bump)
        item_bump(w, it);
    return it;
}

/* mg on a live flash record. NULL and *st set if it cannot be served. */
static struct item *mget_flash(struct cache_worker *w, uint64_t hv, struct found *f,
                               struct cache_mget *m, tc_status_e *st)
{
    struct cache *c = w->c;
    struct item *it = NULL;
    m->fetched = (f->rec.mbits & FREC_FETCHED) != 0;
    m->atime = f->rec.atime;
    m->old_exptime = f->rec.exptime;
    m->meta = f->rec.mbits & FREC_META_MASK;
    m->win = mget_wins(m);
    bool record_win = m->win && !m->no_win;
    if (m->touch || record_win) {
        /* A change: the item comes to RAM, dirty, and the flash copy goes;
         * without room it goes straight back to flash in its new form. */
        cache_time_t exptime = m->touch ? m->touch_exptime : f->rec.exptime;
        it = materialize(w, hv, f, exptime, false);
        if (it != NULL) {
            if (record_win)
                item_set_iflag(it, ITEM_WIN_SENT);
            tier_invalidate_locked(c, hv, f->rec.key, f->rec.nkey);
        } else {
            struct flash_item v = f->rec;
            v.exptime = exptime;
            if (record_win)
                v.mbits |= CACHE_META_WIN_SENT;
            it = tier_spill_locked(c, hv, &v, true, f->entry);
            if (it == NULL)
                *st = TC_BUSY;
        }
    } else if (!m->no_bump && tier_promote(c->sketch, hv)) {
        it = materialize(w, hv, f, f->rec.exptime, true);
    }
    if (it == NULL && *st == TC_OK) {
        it = heap_copy(c, &f->rec);
        if (it == NULL)
            *st = TC_NO_MEMORY;
    }
    if (it != NULL && !m->no_bump) {
        item_bump(w, it);
        if (item_iflags(it) & ITEM_HEAP)
            item_set_iflag(it, ITEM_FETCHED);
    }
    return it;
}

/* mg N on a miss: an empty item that this client wins. memcached does not
 * mark it as having a base64 key, even if it came as one. */
static struct item *mget_vivify(struct cache_worker *w, uint64_t hv, const struct found *f,
                                const char *key, size_t nkey, struct cache_mget *m, tc_status_e *st)
{
    struct item *it;
    *st = new_item(w, key, nkey, 0, m->vivify_exptime, 0, &it);
    if (*st != TC_OK)
        return NULL;
    if (!m->no_win)
        item_set_iflag(it, ITEM_WIN_SENT);
    if (f->flash_error)
        tier_invalidate_locked(w->c, hv, key, nkey);
    cache_link_locked(w->c, it, hv, f->entry, false);
    m->created = true;
    m->win = true;
    m->atime = item_get_atime(it); /* l: 0 seconds */
    if (!m->no_bump)
        item_bump(w, it); /* memcached bumps after the reply: h says 0, then 1 */
    return it;
}

tc_status_e cache_mget(struct cache_worker *w, const char *key, size_t nkey, struct cache_mget *m,
                       struct item **out)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    struct found f;
    struct item *it = NULL;
    tc_status_e st = TC_OK;

    m->created = m->fetched = m->win = false;
    m->atime = m->old_exptime = 0;
    m->meta = 0;
    ht_lock(c->ht, hv);
    find_key(w, hv, key, nkey, &f);
    if (f.it != NULL && item_refcount(f.it) < REFCOUNT_LIMIT) {
        it = mget_ram(w, hv, f.it, m);
    } else if (f.on_flash) {
        it = mget_flash(w, hv, &f, m, &st);
        found_end(w, &f);
    } else if (f.it == NULL && m->vivify) {
        it = mget_vivify(w, hv, &f, key, nkey, m, &st);
    }
    ht_unlock(c->ht, hv);

    if (it == NULL) {
        if (m->touch)
            WCTR_INC(w->ctr.touch_misses);
        else
            WCTR_INC(w->ctr.get_misses);
        return st == TC_OK ? TC_NOT_FOUND : st;
    }
    count_hit(w, it, m->touch && !m->created);
    *out = it;
    return TC_OK;
}

tc_status_e cache_store_meta(struct cache_worker *w, struct item *it, enum cache_store_op op,
                             uint64_t cas, bool invalidate, bool key_binary, uint64_t *cas_out)
{
    if (key_binary)
        item_set_iflag(it, ITEM_KEY_BINARY);
    return ops_store(w, it, op, cas, invalidate, cas_out);
}

/*
 * md I: the key's item, marked stale (and its win mark cleared, so that
 * the next reader wins), with a new CAS and maybe a new expiry. In place
 * when no one else holds the RAM item; otherwise a new version replaces it
 * (from RAM or flash), spilled to flash if RAM has no room.
 */
static tc_status_e invalidate_locked(struct cache_worker *w, uint64_t hv, struct found *f,
                                     const struct cache_mdelete *d)
{
    struct cache *c = w->c;
    struct item *it = f->it;
    if (it != NULL && item_refcount(it) == 1) {
        if (d->touch)
            atomic_store_explicit(&it->exptime, d->exptime, memory_order_relaxed);
        item_set_iflag(it, ITEM_STALE);
        item_clear_iflag(it, ITEM_WIN_SENT);
        it->cas = atomic_fetch_add_explicit(&c->next_cas, 1, memory_order_relaxed);
        changed_in_place(c, it, hv);
        return TC_OK;
    }
    struct flash_item v;
    if (it != NULL) {
        v = (struct flash_item){.key = it->data,
                                .nkey = it->nkey,
                                .value = item_data_value(it),
                                .nbytes = it->nbytes,
                                .flags = it->flags,
                                .exptime = item_get_exptime(it),
                                .atime = item_get_atime(it),
                                .mbits = item_frec_bits(it)};
    } else {
        v = f->rec;
    }
    if (d->touch)
        v.exptime = d->exptime;
    v.mbits = (uint8_t)((v.mbits | CACHE_META_STALE) & ~CACHE_META_WIN_SENT);

    struct item *nu;
    if (alloc_item(w, v.key, v.nkey, v.flags, v.exptime, v.nbytes, &nu) == TC_OK) {
        memcpy(item_data_value(nu), v.value, v.nbytes);
        item_set_iflag(nu, frec_bits_iflags(v.mbits));
        if (f->on_flash)
            tier_invalidate_locked(c, hv, v.key, v.nkey);
        cache_link_locked(c, nu, hv, f->entry, false);
    } else if ((nu = tier_spill_locked(c, hv, &v, false, f->entry)) == NULL) {
        return TC_BUSY;
    }
    cache_item_unref(c, nu);
    return TC_OK;
}

tc_status_e cache_mdelete(struct cache_worker *w, const char *key, size_t nkey,
                          const struct cache_mdelete *d)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    struct found f;
    tc_status_e st = TC_OK;

    ht_lock(c->ht, hv);
    find_key(w, hv, key, nkey, &f);
    if (!found_any(&f)) {
        if (f.flash_error && !d->has_cas && !d->invalidate) {
            /* As cache_delete: flash most likely holds it; delete it there. */
            st = tier_tombstone_locked(w, hv, key, nkey) ? TC_OK : TC_NO_MEMORY;
        } else {
            WCTR_INC(w->ctr.delete_misses);
            st = TC_NOT_FOUND;
        }
    } else if (d->has_cas && found_cas(&f) != d->cas) {
        WCTR_INC(w->ctr.delete_misses);
        st = TC_EXISTS;
    } else if (d->invalidate) {
        st = invalidate_locked(w, hv, &f, d);
    } else if (f.it != NULL) {
        unsigned clsid = f.it->clsid;
        if (tier_remove_locked(w, f.it, hv, RM_DELETE, false))
            WCTR_INC(w->ctr.cls[clsid].delete_hits);
        else
            st = TC_NO_MEMORY;
    } else {
        found_end(w, &f);
        st = tier_tombstone_locked(w, hv, key, nkey) ? TC_OK : TC_NO_MEMORY;
    }
    found_end(w, &f);
    ht_unlock(c->ht, hv);
    return st;
}

tc_status_e cache_marith(struct cache_worker *w, const char *key, size_t nkey,
                         struct cache_marith *m)
{
    struct arith_req a = {.incr = m->incr,
                          .delta = m->delta,
                          .cas = m->cas,
                          .set_exptime = m->touch,
                          .exptime = m->touch_exptime,
                          .vivify = m->vivify,
                          .initial = m->initial,
                          .vivify_exptime = m->vivify_exptime};
    struct arith_res r;
    tc_status_e st = ops_arith(w, key, nkey, &a, &r);
    m->value = r.value;
    m->cas_out = r.cas;
    m->created = r.created;
    m->old_exptime = r.exptime_before;
    return st;
}

tc_status_e cache_peek(struct cache_worker *w, const char *key, size_t nkey,
                       struct cache_walk_entry *out, unsigned *meta)
{
    struct cache *c = w->c;
    uint64_t hv = ht_hash(key, nkey);
    struct found f;
    tc_status_e st = TC_OK;

    ht_lock(c->ht, hv);
    find_key(w, hv, key, nkey, &f);
    memset(out, 0, sizeof(*out));
    if (f.it != NULL) {
        struct item *it = f.it;
        memcpy(out->key, it->data, it->nkey);
        out->nkey = it->nkey;
        out->fetched = (item_iflags(it) & ITEM_FETCHED) != 0;
        out->exptime = item_get_exptime(it);
        out->atime = item_get_atime(it);
        out->flags = it->flags;
        out->nbytes = it->nbytes;
        out->cas = it->cas;
        out->clsid = it->clsid;
        *meta = item_meta(it);
    } else if (f.on_flash) {
        memcpy(out->key, f.rec.key, f.rec.nkey);
        out->nkey = (uint8_t)f.rec.nkey;
        out->on_flash = true;
        out->fetched = (f.rec.mbits & FREC_FETCHED) != 0;
        out->exptime = f.rec.exptime;
        out->atime = f.rec.atime;
        out->flags = f.rec.flags;
        out->nbytes = f.rec.nbytes;
        out->cas = f.rec.cas;
        *meta = f.rec.mbits & FREC_META_MASK;
    } else {
        st = TC_NOT_FOUND;
    }
    found_end(w, &f);
    ht_unlock(c->ht, hv);
    if (st == TC_OK) {
        out->size = (uint32_t)item_ntotal(out->nkey, out->nbytes);
        /* A heap or flash item has no class: the one it would take. */
        if (out->clsid == 0)
            out->clsid = (uint8_t)cache_class_for(c, out->size);
    }
    return st;
}
