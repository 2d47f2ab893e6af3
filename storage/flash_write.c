/*
 * flash_write.c: the writer's side of the flash tier (one thread): write
 * transactions, flash eviction, and the upkeep of the membership filter.
 *
 * Writing. The writer opens a transaction, adds records to an in-memory
 * batch and index entries pointing into it, and at commit appends the batch
 * under the next sequence number (MDB_APPEND: pages are filled completely),
 * evicts the oldest batches if the data passes the high mark, rewrites
 * the state record (counters, the engine's CAS lease and flush boundary),
 * and commits. Filter changes are applied only after a successful commit,
 * so the filter never forgets a key that is on flash. A full map
 * (MDB_MAP_FULL, at a put or at commit) aborts the transaction; the caller
 * makes room with flash_make_room() and retries.
 *
 * Budget. The map size is the budget, so the data file can never grow past
 * it. "Used" is the pages of every database (from mdb_stat, exact and
 * cheap); eviction keeps it in a band below a high mark (90% of the map,
 * lower for small maps: flash_limits() in flash.c), leaving LMDB the free
 * pages a transaction's copy-on-write needs.
 *
 * The filter. When it fills it is rebuilt 12% bigger from the index keys.
 * After an unclean stop it is rebuilt from scratch in slices
 * (flash_rebuild_step) between the writer's batches: all index keys up to
 * a cursor are in the new filter, so a change the writer commits meanwhile
 * goes into it only if its key is at or below the cursor (the rest the scan
 * will see). Lookups answer "maybe" until the new filter is complete.
 */
#include "flash_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "hashtable.h"
#include "log.h"

/*
 * With MDB_WRITEMAP, LMDB writes new pages through the map, and a page in a
 * hole of the sparse file that the disk cannot back would kill the process
 * (SIGBUS) instead of failing a call. So blocks are reserved (fallocate)
 * `extent` bytes, a transaction's worst case, ahead of the end of what LMDB
 * has committed (pages below it are reused from its free list, already
 * backed): f->ahead at the start of every transaction, more when a batch
 * grows past the usual size (a large value). A full disk then fails here,
 * as an I/O error that degrades to RAM-only service.
 */
static tc_status_e reserve_ahead(struct flash *f, uint64_t extent)
{
    if (!f->writemap)
        return TC_OK;
    MDB_envinfo info;
    mdb_env_info(f->env, &info);
    uint64_t map = info.me_mapsize;
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * f->psize + extent;
    if (need > map)
        need = map;
    if (need <= f->alloc_end)
        return TC_OK;
    /* A step beyond the need, so that this is rare; on a nearly full disk,
     * only the need. */
    uint64_t end = need + f->ahead / 2 < map ? need + f->ahead / 2 : map;
    int rc = fallocate(f->fd, 0, (off_t)f->alloc_end, (off_t)(end - f->alloc_end)) == 0 ? 0 : errno;
    if (rc == ENOSPC && end > need) {
        end = need;
        rc = fallocate(f->fd, 0, (off_t)f->alloc_end, (off_t)(end - f->alloc_end)) == 0 ? 0 : errno;
    }
    if (rc != 0)
        return flash_translate(f, rc, "reserving disk space");
    f->alloc_end = end;
    return TC_OK;
}

tc_status_e flash_begin(struct flash *f)
{
    /* First, so that flash_abort() after a failed begin rewinds to here. */
    f->seq_begin = f->seq;
    f->len = FREC_BATCH_HDR;
    f->nrec = 0;
    f->t_items = f->items;
    f->t_bytes = f->bytes;
    f->t_writes = f->t_deletes = f->t_skipped = f->t_ev_items = f->t_ev_batches = 0;
    f->fadd.n = f->fdel.n = 0;
    f->nev_begin = f->nev;
    f->evklen_begin = f->evklen;
    f->wtxn = NULL;
    tc_status_e st = reserve_ahead(f, f->ahead);
    if (st != TC_OK)
        return st;
    int rc = LMDB_CALL(f, mdb_txn_begin(f->env, NULL, 0, &f->wtxn));
    if (rc == 0 && (rc = LMDB_CALL(f, mdb_cursor_open(f->wtxn, f->idx, &f->wcur))) != 0) {
        mdb_txn_abort(f->wtxn);
        f->wtxn = NULL;
    }
    if (rc != 0) {
        f->wtxn = NULL;
        return flash_translate(f, rc, "starting a write transaction");
    }
    return TC_OK;
}

void flash_abort(struct flash *f)
{
    if (f->wtxn != NULL)
        mdb_txn_abort(f->wtxn); /* closes the write cursor too */
    f->wtxn = NULL;
    f->wcur = NULL;
    f->seq = f->seq_begin;
    f->nev = f->nev_begin; /* those evictions did not happen */
    f->evklen = f->evklen_begin;
}

/* Read a record during the write transaction (it may be in the open batch). */
static tc_status_e read_at_w(struct flash *f, uint64_t loc, struct flash_item *it, size_t *size)
{
    if (frec_loc_seq(loc) == f->seq) {
        if (!frec_get(f->buf, f->len, frec_loc_off(loc), it, size))
            return TC_IO_ERROR;
        return TC_OK;
    }
    return flash_read_at(f, f->wtxn, loc, it, size);
}

/* Find the key's index entry. TC_OK with *loc and *rec, TC_NOT_FOUND, or an error. */
static tc_status_e find_w(struct flash *f, uint64_t hv, const char *key, size_t nkey, uint64_t *loc,
                          struct flash_item *rec, size_t *size)
{
    MDB_val k = {sizeof(hv), &hv}, v;
    int rc = LMDB_CALL(f, mdb_cursor_get(f->wcur, &k, &v, MDB_SET_KEY));
    while (rc == 0) {
        memcpy(loc, v.mv_data, sizeof(*loc));
        tc_status_e st = read_at_w(f, *loc, rec, size);
        if (st == TC_OK && rec->nkey == nkey && memcmp(rec->key, key, nkey) == 0)
            return TC_OK;
        if (st != TC_OK && st != TC_NOT_FOUND)
            return st;
        rc = LMDB_CALL(f, mdb_cursor_get(f->wcur, &k, &v, MDB_NEXT_DUP));
    }
    return rc == MDB_NOTFOUND ? TC_NOT_FOUND : flash_translate(f, rc, "looking a key up");
}

static tc_status_e idx_del(struct flash *f, uint64_t hv, uint64_t loc)
{
    MDB_val k = {sizeof(hv), &hv}, v = {sizeof(loc), &loc};
    int rc = LMDB_CALL(f, mdb_del(f->wtxn, f->idx, &k, &v));
    return flash_translate(f, rc, "removing an index entry");
}

/* A new batch takes its base time and CAS from its first record. The header
 * gets them now: records of the open batch are read back before it is sealed. */
static void batch_start(struct flash *f, const struct flash_item *first)
{
    f->base_time = first->atime;
    f->base_cas = first->cas;
    frec_batch_start(f->buf, f->base_time, f->base_cas);
}

/* Append the open batch to the batches database and start the next one. */
static tc_status_e seal(struct flash *f)
{
    if (f->nrec == 0)
        return TC_OK;
    frec_batch_seal(f->buf, f->len, f->nrec, f->base_time, f->base_cas);
    uint64_t seq = f->seq;
    MDB_val k = {sizeof(seq), &seq}, v = {f->len, f->buf};
    int rc = LMDB_CALL(f, mdb_put(f->wtxn, f->bat, &k, &v, MDB_APPEND));
    if (rc != 0)
        return flash_translate(f, rc, "appending a batch");
    f->seq++;
    f->len = FREC_BATCH_HDR;
    f->nrec = 0;
    return TC_OK;
}

tc_status_e flash_write(struct flash *f, uint64_t hv, const struct flash_item *it, bool *skipped)
{
    *skipped = false;
    if (it->nbytes > f->value_max || it->nkey == 0 || it->nkey > 255)
        return TC_TOO_LARGE;
    if (f->nrec == 0)
        batch_start(f, it);
    struct frec_packed pk = frec_pack(it, f->base_time, f->base_cas);
    size_t size = frec_size(it, &pk);
    if (f->len + size > FREC_BATCH_MAX) {
        tc_status_e st = seal(f);
        if (st != TC_OK)
            return st;
        batch_start(f, it);
        pk = frec_pack(it, f->base_time, f->base_cas);
        size = frec_size(it, &pk);
    }
    if (f->len + size > f->txn_bytes) {
        tc_status_e st = reserve_ahead(f, f->len + size + f->ahead);
        if (st != TC_OK)
            return st;
    }
    if (f->len + size > f->cap) {
        size_t cap = f->cap;
        while (cap < f->len + size)
            cap *= 2;
        char *nb = realloc(f->buf, cap);
        if (nb == NULL)
            return TC_IO_ERROR;
        f->buf = nb;
        f->cap = cap;
    }

    uint64_t old;
    struct flash_item rec;
    size_t old_size;
    tc_status_e st = find_w(f, hv, it->key, it->nkey, &old, &rec, &old_size);
    if (st == TC_OK) {
        /* The same version (a promoted item, unchanged): nothing to write.
         * A touch keeps the CAS but not the expiry, a recache win (mg W)
         * keeps both but not the meta bits: those are new versions. */
        if (rec.cas == it->cas && rec.exptime == it->exptime && rec.mbits == it->mbits) {
            *skipped = true;
            f->t_skipped++;
            return TC_OK;
        }
        if ((st = idx_del(f, hv, old)) != TC_OK)
            return st;
        f->t_bytes -= old_size;
    } else if (st == TC_NOT_FOUND) {
        if (!flash_vec_push(&f->fadd, hv))
            return TC_IO_ERROR;
        f->t_items++;
    } else {
        return st;
    }

    uint64_t loc = frec_loc(f->seq, f->len);
    frec_put(f->buf + f->len, it, &pk);
    f->len += size;
    f->nrec++;
    MDB_val k = {sizeof(hv), &hv}, v = {sizeof(loc), &loc};
    int rc = LMDB_CALL(f, mdb_put(f->wtxn, f->idx, &k, &v, 0));
    if (rc != 0)
        return flash_translate(f, rc, "adding an index entry");
    f->t_bytes += size;
    f->t_writes++;
    return TC_OK;
}

tc_status_e flash_delete(struct flash *f, uint64_t hv, const char *key, size_t nkey)
{
    uint64_t loc;
    struct flash_item rec;
    size_t size;
    tc_status_e st = find_w(f, hv, key, nkey, &loc, &rec, &size);
    if (st == TC_NOT_FOUND)
        return TC_OK;
    if (st != TC_OK)
        return st;
    if ((st = idx_del(f, hv, loc)) != TC_OK)
        return st;
    if (!flash_vec_push(&f->fdel, hv))
        return TC_IO_ERROR;
    f->t_items--;
    f->t_bytes -= size;
    f->t_deletes++;
    return TC_OK;
}

static bool remember_evicted(struct flash *f, uint64_t hv, const struct flash_item *rec)
{
    if (f->nev == f->evcap) {
        size_t cap = f->evcap ? f->evcap * 2 : 1024;
        struct evicted *ne = realloc(f->ev, cap * sizeof(*ne));
        if (ne == NULL)
            return false;
        f->ev = ne;
        f->evcap = cap;
    }
    if (f->evklen + rec->nkey > f->evkcap) {
        size_t cap = f->evkcap ? f->evkcap * 2 : 65536;
        while (cap < f->evklen + rec->nkey)
            cap *= 2;
        char *nk = realloc(f->evkeys, cap);
        if (nk == NULL)
            return false;
        f->evkeys = nk;
        f->evkcap = cap;
    }
    memcpy(f->evkeys + f->evklen, rec->key, rec->nkey);
    f->ev[f->nev++] = (struct evicted){hv, rec->cas, f->evklen, (uint8_t)rec->nkey};
    f->evklen += rec->nkey;
    return true;
}

/*
 * Drop the oldest batch (never one written in this transaction): remove the
 * index entries still pointing into it, then the batch. Returns TC_OK,
 * TC_NOT_FOUND (nothing old enough to drop), or an error.
 */
static tc_status_e evict_oldest(struct flash *f)
{
    MDB_cursor *c;
    int rc = LMDB_CALL(f, mdb_cursor_open(f->wtxn, f->bat, &c));
    if (rc != 0)
        return flash_translate(f, rc, "opening a batch cursor");
    MDB_val k, v;
    rc = LMDB_CALL(f, mdb_cursor_get(c, &k, &v, MDB_FIRST));
    tc_status_e st = flash_translate(f, rc, "finding the oldest batch");
    uint64_t seq = 0;
    if (st == TC_OK) {
        memcpy(&seq, k.mv_data, sizeof(seq));
        if (seq >= f->seq_begin)
            st = TC_NOT_FOUND;
    }
    if (st == TC_OK) {
        /* The batch is in the map and stays valid until we delete it. */
        const char *b = v.mv_data;
        size_t len = v.mv_size, off = FREC_BATCH_HDR, size;
        struct flash_item rec;
        while (st == TC_OK && off < len && frec_get(b, len, off, &rec, &size)) {
            uint64_t hv = ht_hash(rec.key, rec.nkey);
            uint64_t loc = frec_loc(seq, off);
            MDB_val ik = {sizeof(hv), &hv}, iv = {sizeof(loc), &loc};
            rc = LMDB_CALL(f, mdb_del(f->wtxn, f->idx, &ik, &iv));
            if (rc == 0) {
                f->t_items--;
                f->t_bytes -= size;
                if (!flash_vec_push(&f->fdel, hv) || !remember_evicted(f, hv, &rec))
                    st = TC_IO_ERROR;
                f->t_ev_items++;
            } else if (rc != MDB_NOTFOUND) {
                st = flash_translate(f, rc,
                                     "removing an evicted index entry"); /* superseded: fine */
            }
            off += size;
        }
        if (st == TC_OK) {
            rc = LMDB_CALL(f, mdb_cursor_del(c, 0));
            st = flash_translate(f, rc, "dropping a batch");
            if (st == TC_OK)
                f->t_ev_batches++;
        }
    }
    mdb_cursor_close(c);
    return st;
}

tc_status_e flash_evict_to(struct flash *f, uint64_t target)
{
    while (flash_used_bytes(f, f->wtxn) > target) {
        tc_status_e st = evict_oldest(f);
        if (st == TC_NOT_FOUND)
            return TC_OK; /* nothing older left; the commit may still hit the bound */
        if (st != TC_OK)
            return st;
    }
    return TC_OK;
}

/* Readers may be inside the old filter: wait until each has left it. */
static void readers_quiesce(struct flash *f)
{
    pthread_mutex_lock(&f->readers_lock);
    for (struct flash_reader *r = f->readers; r != NULL; r = r->next) {
        uint64_t g = atomic_load(&r->gen);
        if (g & 1) {
            while (atomic_load_explicit(&r->gen, memory_order_acquire) == g)
                sched_yield();
        }
    }
    pthread_mutex_unlock(&f->readers_lock);
}

/* Replace the filter by one built from the index, with room to grow. */
static tc_status_e filter_rebuild(struct flash *f)
{
    uint64_t cap = (uint64_t)((double)f->items * FILTER_GROWTH);
    if (cap < FILTER_MIN)
        cap = FILTER_MIN;
    for (int attempt = 0; attempt < 4; attempt++, cap = cap * 3 / 2) {
        struct filter *nf;
        if (filter_create(cap, &nf) != TC_OK)
            return TC_NO_MEMORY;
        MDB_txn *txn;
        MDB_cursor *c = NULL;
        int rc = LMDB_CALL(f, mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn));
        if (rc != 0) {
            filter_destroy(&nf);
            return flash_translate(f, rc, "starting a filter rebuild");
        }
        rc = LMDB_CALL(f, mdb_cursor_open(txn, f->idx, &c));
        MDB_val k, v;
        bool ok = rc == 0;
        if (ok)
            rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (ok && rc == 0) {
            uint64_t hv;
            memcpy(&hv, k.mv_data, sizeof(hv));
            ok = filter_insert(nf, hv);
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            ok = false;
        if (c != NULL)
            mdb_cursor_close(c); /* a read-only transaction's abort does not */
        mdb_txn_abort(txn);
        if (!ok) {
            filter_destroy(&nf);
            if (rc != 0 && rc != MDB_NOTFOUND)
                return flash_translate(f, rc, "rebuilding the filter");
            continue; /* too full: try bigger */
        }
        struct filter *old = atomic_exchange(&f->filter, nf);
        readers_quiesce(f);
        filter_destroy(&old);
        return TC_OK;
    }
    return TC_NO_MEMORY;
}

/* After a commit: apply the filter changes of the transaction. */
/* During a rebuild: the changes of a commit, for keys the scan has passed. */
static void filter_apply_rebuilding(struct flash *f)
{
    if (f->rb_filter == NULL || !f->rb_has_cursor)
        return;
    for (size_t i = 0; i < f->fadd.n; i++) {
        if (f->fadd.v[i] <= f->rb_cursor && !filter_insert(f->rb_filter, f->fadd.v[i])) {
            filter_destroy(&f->rb_filter); /* too small after all: start over bigger */
            f->rb_started = false;
            return;
        }
    }
    for (size_t i = 0; i < f->fdel.n; i++) {
        if (f->fdel.v[i] <= f->rb_cursor)
            filter_remove(f->rb_filter, f->fdel.v[i]);
    }
}

bool flash_rebuild_step(struct flash *f, size_t budget)
{
    if (!atomic_load(&f->rebuilding))
        return false;
    if (!f->rb_started) {
        uint64_t cap = (uint64_t)((double)f->items * FILTER_GROWTH * (f->rb_filter_grow + 1));
        if (filter_create(cap > FILTER_MIN ? cap : FILTER_MIN, &f->rb_filter) != TC_OK)
            return true; /* try again later */
        f->rb_started = true;
        f->rb_has_cursor = false;
    }
    MDB_txn *txn;
    MDB_cursor *c;
    if (mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn) != 0)
        return true;
    if (mdb_cursor_open(txn, f->idx, &c) != 0) {
        mdb_txn_abort(txn);
        return true;
    }
    MDB_val k, v;
    int rc;
    uint64_t from = f->rb_cursor + 1;
    if (!f->rb_has_cursor) {
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    } else if (f->rb_cursor == UINT64_MAX) {
        rc = MDB_NOTFOUND;
    } else {
        k.mv_size = sizeof(from);
        k.mv_data = &from;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    size_t n = 0;
    while (rc == 0 && n < budget) {
        uint64_t hv;
        memcpy(&hv, k.mv_data, sizeof(hv));
        /* Every duplicate of a key at once, so the cursor is a key boundary. */
        do {
            if (!filter_insert(f->rb_filter, hv)) {
                filter_destroy(&f->rb_filter);
                f->rb_started = false;
                f->rb_filter_grow++;
                mdb_cursor_close(c);
                mdb_txn_abort(txn);
                return true;
            }
            n++;
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
        } while (rc == 0);
        f->rb_cursor = hv;
        f->rb_has_cursor = true;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP);
    }
    mdb_cursor_close(c); /* a read-only transaction's abort does not */
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND)
        return true;
    /* Complete: it replaces the empty filter, and lookups use it again. */
    struct filter *old = atomic_exchange(&f->filter, f->rb_filter);
    f->rb_filter = NULL;
    atomic_store(&f->rebuilding, false);
    readers_quiesce(f);
    filter_destroy(&old);
    tc_log(TC_LOG_INFO, "flash: filter rebuilt (%llu keys)", (unsigned long long)f->items);
    return false;
}

static void filter_apply(struct flash *f)
{
    if (atomic_load(&f->rebuilding)) {
        filter_apply_rebuilding(f);
        return;
    }
    struct filter *flt = atomic_load(&f->filter);
    bool rebuild = false;
    for (size_t i = 0; i < f->fadd.n && !rebuild; i++)
        rebuild = !filter_insert(flt, f->fadd.v[i]);
    if (!rebuild) {
        for (size_t i = 0; i < f->fdel.n; i++)
            filter_remove(flt, f->fdel.v[i]);
    }
    /* A failed insert means the filter lost track: the rebuild reads the
     * committed index, which holds every change of this transaction. */
    if (rebuild || filter_count(flt) >= filter_capacity(flt)) {
        if (filter_rebuild(f) != TC_OK)
            TC_LOG_ONCE(TC_LOG_ERROR, "flash: cannot grow the membership filter: misses will "
                                      "read flash");
    }
}

void flash_drain_evicted(struct flash *f, flash_evicted_fn cb, void *arg)
{
    for (size_t i = 0; cb != NULL && i < f->nev; i++)
        cb(arg, f->ev[i].hv, f->evkeys + f->ev[i].koff, f->ev[i].nkey, f->ev[i].cas);
    f->nev = 0;
    f->evklen = 0;
}

static tc_status_e commit(struct flash *f)
{
    struct flash_state_rec r;
    flash_state_make(f, &r, f->t_items, f->t_bytes, false);
    MDB_val k = {5, "state"}, v = {sizeof(r), &r};
    struct flash_space sp;
    int rc = LMDB_CALL(f, mdb_put(f->wtxn, f->meta, &k, &v, 0));
    if (rc == 0) {
        flash_space_get(f, f->wtxn, &sp); /* published only if it commits */
        rc = flash_txn_commit(f, f->wtxn);
    } else {
        mdb_txn_abort(f->wtxn);
    }
    f->wtxn = NULL;
    f->wcur = NULL;
    if (rc != 0) {
        f->seq = f->seq_begin;
        f->nev = f->nev_begin;
        f->evklen = f->evklen_begin;
        return flash_translate(f, rc, "committing");
    }
    f->items = f->t_items;
    f->bytes = f->t_bytes;
    flash_publish(f, &sp);
    atomic_fetch_add_explicit(&f->writes, f->t_writes, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->deletes, f->t_deletes, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->skipped, f->t_skipped, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->ev_items, f->t_ev_items, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->ev_batches, f->t_ev_batches, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->commits, 1, memory_order_relaxed);
    if (f->o.sync == CACHE_FLASH_SYNC_ALWAYS)
        atomic_fetch_add_explicit(&f->syncs, 1, memory_order_relaxed);
    filter_apply(f);
    return TC_OK;
}

tc_status_e flash_commit(struct flash *f)
{
    tc_status_e st = seal(f);
    if (st == TC_OK && flash_used_bytes(f, f->wtxn) > f->high)
        st = flash_evict_to(f, f->low);
    if (st != TC_OK) {
        flash_abort(f);
        return st;
    }
    return commit(f);
}

tc_status_e flash_make_room(struct flash *f, unsigned pct)
{
    tc_status_e st = flash_begin(f);
    if (st != TC_OK)
        return st;
    f->seq_begin = UINT64_MAX; /* every batch is old enough here */
    /* pct of what is used now, not of the map: a map full of free but
     * scattered pages (a batch needs contiguous ones) is already under any
     * fixed mark, and evicting nothing would fail every retry. */
    uint64_t used = flash_used_bytes(f, f->wtxn);
    uint64_t target = used / 100 * (100 - pct);
    if (target > f->map / 100 * (100 - pct))
        target = f->map / 100 * (100 - pct);
    while (st == TC_OK && flash_used_bytes(f, f->wtxn) > target)
        st = evict_oldest(f);
    f->seq_begin = f->seq;
    if (st != TC_OK && st != TC_NOT_FOUND) {
        flash_abort(f);
        return st;
    }
    if ((st = commit(f)) != TC_OK)
        return st;
    /* LMDB reuses the pages a transaction freed only once a later one has
     * committed: commit once more (the state record) so that the retry that
     * follows finds the room made here. The room is made either way: a
     * failure here only means the retry may need another round. */
    if (flash_begin(f) == TC_OK && commit(f) != TC_OK)
        tc_log(TC_LOG_DEBUG, "flash: the commit after making room failed");
    return TC_OK;
}

tc_status_e flash_evict_down_to(struct flash *f, uint64_t target)
{
    for (;;) {
        tc_status_e st = flash_begin(f);
        if (st != TC_OK)
            return st;
        /* Each evicted record dirties an index page: bound a transaction. */
        bool more = true;
        while (st == TC_OK && f->t_ev_items < EVICT_TXN_RECORDS &&
               (more = flash_used_bytes(f, f->wtxn) > target))
            st = evict_oldest(f);
        if (st == TC_NOT_FOUND) {
            st = TC_OK;
            more = false;
        }
        if (st != TC_OK) {
            flash_abort(f);
            return st;
        }
        if ((st = commit(f)) != TC_OK)
            return st;
        flash_drain_evicted(f, NULL, NULL);
        if (!more)
            return TC_OK;
    }
}

tc_status_e flash_sync(struct flash *f)
{
    int rc = LMDB_CALL(f, mdb_env_sync(f->env, 1));
    if (rc == 0)
        atomic_fetch_add_explicit(&f->syncs, 1, memory_order_relaxed);
    return flash_translate(f, rc, "syncing");
}
