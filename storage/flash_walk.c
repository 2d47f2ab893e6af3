/*
 * flash_walk.c: slices of the flash log in write order (see flash_walk.h).
 *
 * A record is current when the index holds (hash(key) -> its location):
 * overwriting or deleting a key removes its old index entry in the same
 * transaction that writes the new one, so a superseded record is skipped
 * with one B-tree lookup and no key comparison.
 *
 * Each call opens the reader's transaction (renewing the handle, as
 * flash_get does) and resets it before returning: no transaction outlives a
 * call, and no MDB_val outlives its transaction.
 */
#include "flash_walk.h"

#include <string.h>

#include "flash_internal.h"
#include "hashtable.h"
#include "log.h"

/* In the open transaction: does the index map hv to loc? */
static int index_has(struct flash_reader *r, uint64_t hv, uint64_t loc, bool *has)
{
    MDB_val k = {sizeof(hv), &hv}, v = {sizeof(loc), &loc};
    int rc = LMDB_CALL(r->f, mdb_cursor_get(r->cur, &k, &v, MDB_GET_BOTH));
    *has = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

tc_status_e flash_walk_current(struct flash_reader *r, uint64_t hv, uint64_t loc, bool *current)
{
    *current = false;
    tc_status_e st = flash_reader_begin(r, "starting a read transaction (key walk)");
    if (st != TC_OK)
        return st;
    int rc = index_has(r, hv, loc, current);
    flash_reader_end(r);
    return rc == 0 ? TC_OK : flash_translate(r->f, rc, "looking a key up (key walk)");
}

tc_status_e flash_walk_slice(struct flash_reader *r, uint64_t *pos, size_t max, flash_walk_fn fn,
                             void *arg, bool *done)
{
    struct flash *f = r->f;
    *done = false;
    tc_status_e st = flash_reader_begin(r, "starting a read transaction (key walk)");
    if (st != TC_OK)
        return st;
    MDB_cursor *bc;
    int rc = LMDB_CALL(f, mdb_cursor_open(r->txn, f->bat, &bc));
    if (rc != 0) {
        flash_reader_end(r);
        return flash_translate(f, rc, "opening a cursor (key walk)");
    }
    uint64_t seq = frec_loc_seq(*pos);
    size_t off = frec_loc_off(*pos);
    MDB_val k = {sizeof(seq), &seq}, v;
    rc = LMDB_CALL(f, mdb_cursor_get(bc, &k, &v, MDB_SET_RANGE));
    size_t seen = 0;
    while (rc == 0 && seen < max) {
        uint64_t at;
        memcpy(&at, k.mv_data, sizeof(at));
        if (at != seq || off < FREC_BATCH_HDR) {
            /* A new batch (or ours was evicted meanwhile): from its start. */
            seq = at;
            off = FREC_BATCH_HDR;
        }
        const char *batch = v.mv_data;
        size_t len = v.mv_size;
        while (off < len && seen < max) {
            struct flash_item it;
            size_t size;
            if (!frec_get(batch, len, off, &it, &size) || size == 0) {
                TC_LOG_ONCE(TC_LOG_ERROR,
                            "flash: a record does not parse (batch %llu offset %zu): the key "
                            "walk skips the rest of the batch",
                            (unsigned long long)seq, off);
                off = len;
                break;
            }
            seen++;
            uint64_t loc = frec_loc(seq, off);
            uint64_t hv = ht_hash(it.key, it.nkey);
            bool has;
            if ((rc = index_has(r, hv, loc, &has)) != 0)
                break;
            if (has)
                fn(arg, hv, loc, &it);
            off += size;
        }
        if (rc != 0)
            break;
        if (off < len)
            break; /* the budget ran out inside this batch */
        /* Batch done: the next one starts at seq + 1. */
        seq++;
        off = 0;
        rc = LMDB_CALL(f, mdb_cursor_get(bc, &k, &v, MDB_NEXT));
    }
    mdb_cursor_close(bc);
    flash_reader_end(r);
    if (rc == MDB_NOTFOUND) {
        *done = true;
        rc = 0;
    }
    if (rc != 0)
        return flash_translate(f, rc, "reading batches (key walk)");
    *pos = frec_loc(seq, off);
    return TC_OK;
}
