/*
 * walk.c: a resumable walk over every live key of both tiers, for
 * `lru_crawler metadump` (see "Walking every live key" in engine.h).
 *
 * How it works. Two passes, each in slices that the caller asks for one at
 * a time, so no lock and no LMDB transaction is held between slices:
 *
 *   1. RAM: the hash table, a few buckets at a time, each bucket under its
 *      stripe (ht_scan). Every linked item that is live is copied out,
 *      except tombstones and CLEAN items: flash holds a CLEAN item's very
 *      version, and pass 2 reports it from there (so a CLEAN item that
 *      RAM drops during the walk is still reported, once).
 *   2. Flash: the batches in write order (flash_walk_slice): a record the
 *      index still points at, live, becomes a candidate; then, per
 *      candidate, under its key's stripe: if RAM has no entry for the key,
 *      the record is reported if it is still current in a fresh read
 *      transaction (RAM having nothing means flash's latest commit is the
 *      key's current version, see "Never an older version" in
 *      docs/ARCHITECTURE.md); if RAM has the same version CLEAN, RAM's
 *      copy is reported (its access time and fetched mark are the true
 *      ones); anything else in RAM is newer and was pass 1's business.
 *
 * Pass 2 runs to the end of the log as it is then, so an item that leaves
 * RAM for flash during pass 1 (after its bucket was passed or not) is found
 * in a later batch. The one duplicate: a dirty item reported by pass 1,
 * then written to flash and marked CLEAN, is reported again by pass 2.
 *
 * While the hash table grows, ht_scan does nothing and a slice may come
 * back empty; the walk resumes at the same bucket index afterwards, which
 * in the doubled table revisits at worst some buckets (duplicates, never
 * gaps: a bucket's items only move to a higher index).
 *
 * Threads: a walk belongs to one worker (it uses the worker's flash
 * reader) and is advanced on that worker's thread only.
 */
#include <stdlib.h>
#include <string.h>

#include <tiercache/engine.h>

#include "cache_internal.h"
#include "flash_walk.h"

#define WALK_SLICE_MAX     4096  /* entries one slice may ask for */
#define WALK_BUCKETS       16    /* buckets per ht_scan call */
#define WALK_ENTRY_SLACK   64    /* room for the tail of a bucket past `max` */
#define WALK_SLICE_BUCKETS 65536 /* buckets one slice looks at, at most */

enum walk_phase { WALK_RAM, WALK_FLASH, WALK_DONE };

struct cache_walk {
    struct cache_worker *w;
    struct cache *c;
    enum walk_phase phase;
    uint64_t cursor; /* RAM: the next bucket */
    uint64_t pos;    /* flash: the next record's location */
    cache_time_t now;
    struct cache_walk_entry *e; /* this slice's entries */
    size_t n, cap;
    struct flash_cand *cand; /* flash: this slice's candidates */
    size_t ncand, candcap;
    bool nomem;
};

/* A record found current in a slice's transaction, copied out of the map. */
struct flash_cand {
    uint64_t hv, loc;
    struct cache_walk_entry e;
};

tc_status_e cache_walk_create(struct cache_worker *w, struct cache_walk **out)
{
    struct cache_walk *wk = calloc(1, sizeof(*wk));
    if (wk == NULL)
        return TC_NO_MEMORY;
    wk->w = w;
    wk->c = w->c;
    wk->phase = WALK_RAM;
    *out = wk;
    return TC_OK;
}

void cache_walk_destroy(struct cache_walk **wk)
{
    if (wk == NULL || *wk == NULL)
        return;
    free((*wk)->e);
    free((*wk)->cand);
    free(*wk);
    *wk = NULL;
}

static bool grow(void **arr, size_t *cap, size_t want, size_t elem)
{
    if (*cap >= want)
        return true;
    size_t nc = *cap == 0 ? want : *cap;
    while (nc < want)
        nc *= 2;
    void *p = realloc(*arr, nc * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

static struct cache_walk_entry *next_entry(struct cache_walk *wk)
{
    if (wk->n == wk->cap && !grow((void **)&wk->e, &wk->cap, wk->n + 1, sizeof(*wk->e))) {
        wk->nomem = true;
        return NULL;
    }
    return &wk->e[wk->n++];
}

/* An entry from a RAM item (its stripe held). */
static void entry_from_item(const struct cache *c, const struct item *it,
                            struct cache_walk_entry *e)
{
    memcpy(e->key, it->data, it->nkey);
    e->nkey = it->nkey;
    e->fetched = (item_iflags(it) & ITEM_FETCHED) != 0;
    e->on_flash = false;
    e->exptime = item_get_exptime(it);
    e->atime = item_get_atime(it);
    e->flags = it->flags;
    e->nbytes = it->nbytes;
    size_t total = item_ntotal(it->nkey, it->nbytes);
    e->size = (uint32_t)total;
    /* A heap item (a spilled version) has no class: the one it would take. */
    e->clsid = (uint8_t)(it->clsid != 0 ? it->clsid : cache_class_for(c, total));
    e->cas = it->cas;
}

static void ram_visit(struct item *it, uint64_t hv, void *arg)
{
    (void)hv;
    struct cache_walk *wk = arg;
    uint16_t fl = item_iflags(it);
    if (fl & ITEM_TOMBSTONE)
        return;
    if ((fl & ITEM_CLEAN) && wk->c->flash != NULL)
        return; /* reported by the flash pass, from flash's copy of this version */
    bool flushed;
    if (cache_item_is_dead(wk->c, it, wk->now, &flushed))
        return;
    struct cache_walk_entry *e = next_entry(wk);
    if (e != NULL)
        entry_from_item(wk->c, it, e);
}

static void ram_slice(struct cache_walk *wk, size_t max)
{
    /* Bounded in buckets too: a large, nearly empty table (after a
     * flush_all) must not hold the caller for a whole pass. */
    for (size_t b = 0; wk->n < max && !wk->nomem && b < WALK_SLICE_BUCKETS; b += WALK_BUCKETS) {
        if (ht_is_growing(wk->c->ht))
            return; /* ht_scan would do nothing: an empty slice, try again later */
        if (ht_scan(wk->c->ht, &wk->cursor, WALK_BUCKETS, ram_visit, wk)) {
            wk->phase = wk->c->flash != NULL ? WALK_FLASH : WALK_DONE;
            return;
        }
    }
}

static void flash_collect(void *arg, uint64_t hv, uint64_t loc, const struct flash_item *it)
{
    struct cache_walk *wk = arg;
    if (wk->nomem || cache_record_is_dead(wk->c, it->exptime, it->atime, it->cas, wk->now))
        return;
    if (wk->ncand == wk->candcap &&
        !grow((void **)&wk->cand, &wk->candcap, wk->ncand + 1, sizeof(*wk->cand))) {
        wk->nomem = true;
        return;
    }
    struct flash_cand *k = &wk->cand[wk->ncand++];
    k->hv = hv;
    k->loc = loc;
    struct cache_walk_entry *e = &k->e;
    memcpy(e->key, it->key, it->nkey);
    e->nkey = (uint8_t)it->nkey;
    e->fetched = (it->mbits & FREC_FETCHED) != 0;
    e->on_flash = true;
    e->exptime = it->exptime;
    e->atime = it->atime;
    e->flags = it->flags;
    e->nbytes = it->nbytes;
    size_t total = item_ntotal(it->nkey, it->nbytes);
    e->size = (uint32_t)total;
    e->clsid = (uint8_t)cache_class_for(wk->c, total);
    e->cas = it->cas;
}

/* Under the key's stripe: report the candidate if it is the key's current version. */
static tc_status_e flash_confirm(struct cache_walk *wk, const struct flash_cand *k)
{
    struct cache *c = wk->c;
    tc_status_e st = TC_OK;
    ht_lock(c->ht, k->hv);
    struct item *it = ht_find(c->ht, k->hv, k->e.key, k->e.nkey);
    if (it == NULL) {
        bool current;
        st = flash_walk_current(wk->w->fr, k->hv, k->loc, &current);
        if (st == TC_OK && current) {
            struct cache_walk_entry *e = next_entry(wk);
            if (e != NULL)
                *e = k->e;
        }
    } else {
        uint16_t fl = item_iflags(it);
        bool flushed;
        if ((fl & ITEM_CLEAN) && !(fl & ITEM_TOMBSTONE) && it->cas == k->e.cas &&
            item_get_exptime(it) == k->e.exptime && !cache_item_is_dead(c, it, wk->now, &flushed)) {
            struct cache_walk_entry *e = next_entry(wk);
            if (e != NULL) {
                entry_from_item(c, it, e);
                e->on_flash = true;
            }
        }
    }
    ht_unlock(c->ht, k->hv);
    return st;
}

static tc_status_e flash_slice(struct cache_walk *wk, size_t max)
{
    wk->ncand = 0;
    bool done;
    tc_status_e st = flash_walk_slice(wk->w->fr, &wk->pos, max, flash_collect, wk, &done);
    if (st != TC_OK)
        return st;
    for (size_t i = 0; i < wk->ncand && st == TC_OK && !wk->nomem; i++)
        st = flash_confirm(wk, &wk->cand[i]);
    if (done)
        wk->phase = WALK_DONE;
    return st;
}

tc_status_e cache_walk_next(struct cache_walk *wk, size_t max,
                            const struct cache_walk_entry **entries, size_t *n, bool *done)
{
    *entries = NULL;
    *n = 0;
    *done = false;
    if (max == 0)
        max = 1;
    if (max > WALK_SLICE_MAX)
        max = WALK_SLICE_MAX;
    if (!grow((void **)&wk->e, &wk->cap, max + WALK_ENTRY_SLACK, sizeof(*wk->e)))
        return TC_NO_MEMORY;
    wk->n = 0;
    wk->now = cache_now(wk->c);
    tc_status_e st = TC_OK;
    if (wk->phase == WALK_RAM)
        ram_slice(wk, max);
    /* A slice that ends the RAM pass with room left goes on into flash. */
    if (wk->phase == WALK_FLASH && wk->n < max && !wk->nomem) {
        st = flash_slice(wk, max - wk->n);
        if (st != TC_OK)
            wk->phase = WALK_DONE;
    }
    if (wk->nomem) {
        wk->phase = WALK_DONE;
        st = TC_NO_MEMORY;
    }
    *entries = wk->e;
    *n = wk->n;
    *done = wk->phase == WALK_DONE;
    return st;
}
