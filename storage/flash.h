/*
 * flash.h: the flash tier's storage, on LMDB. The only module that sees
 * <lmdb.h>.
 *
 * On disk (one LMDB environment in the data dir):
 *
 *   batches   seq (uint64) -> a batch: the records written by one writer
 *             transaction, appended in seq order (so pages are full and the
 *             oldest batch is the first key: flash eviction drops it whole)
 *   index     hash(key) (uint64) -> location (seq << 24 | offset), sorted
 *             duplicates (two keys may share a hash)
 *   meta      counters and markers
 *
 *   batch:   "TCB3" | u32 count | u32 crc32c(count, rest) | u32 base_time |
 *            u64 base_cas | records...                   (little endian)
 *   record:  u8 nkey | varint vlen | varint flags << 4 | bits | varint exp |
 *            varint atime | varint cas | key | value     (flash_record.h)
 *            exp: 0 never, else zigzag(exptime - base_time) + 1; atime, cas:
 *            zigzag(x - base). Items of one batch are close in time and CAS,
 *            so a 100-byte value's record header is ~8 bytes instead of 19.
 *
 * `hv` arguments are always ht_hash(key): eviction recomputes it from the
 * records it drops, so any other hash would leave stale index entries.
 *
 * Items are looked up by hash, then confirmed by comparing the key in the
 * record. A membership filter in RAM (filter.h) answers most misses without
 * touching LMDB.
 *
 * Threads: readers (one struct flash_reader per worker thread) run short
 * read transactions, reset after every lookup. One writer thread calls the
 * flash_begin .. flash_commit functions. Nothing here takes engine locks.
 */
#ifndef TC_STORAGE_FLASH_H
#define TC_STORAGE_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/engine.h>

#include "flash_record.h"

struct flash;
struct flash_reader;

struct flash_options {
    const char *dir;      /* created if missing */
    uint64_t size;        /* hard bound on the data file, bytes */
    int sync;             /* enum cache_flash_sync */
    unsigned max_readers; /* reader handles that will exist at once */
};

/* (struct flash_item, a record as read or to be written, is in flash_record.h.) */

/* Largest value a record can hold (a small map holds at most 1/8 of its size). */
#define FLASH_VALUE_MAX ((16U << 20) - 1024)

/*
 * Open (creating) the environment in o->dir, keeping what an earlier run
 * left there. Never scans the data: a clean earlier stop left a snapshot of
 * the filter, which is loaded; after a crash the filter is rebuilt by the
 * writer in the background (flash_rebuild_step) while lookups fall through
 * to LMDB. A data dir that is not ours, from another format version, or
 * damaged (unopenable, truncated, a bad batch at either end, a bad state
 * record) is renamed to DIR.corrupt-<unixtime> with a log line, and an empty
 * one is started. Returns TC_OK, TC_BUSY (another process holds the
 * directory), TC_IO_ERROR (logged with the reason).
 */
tc_status_e flash_open(const struct flash_options *o, struct flash **out);

/* What flash_open found, for the engine's warm start. */
struct flash_state {
    bool fresh;         /* nothing was there (or it was moved aside) */
    bool moved_aside;   /* the old data failed its checks and was renamed */
    bool discarded;     /* deletes were pending at the last stop: the old data was dropped */
    bool clean;         /* the last stop was clean */
    bool filter_loaded; /* the filter came from the clean stop's snapshot */
    uint64_t cas_lease; /* every CAS handed out before is below this */
    uint64_t flush_cas; /* items with a smaller CAS are flushed */
    uint32_t flush_at;  /* a pending delayed flush_all, 0 if none */
    uint64_t items;
    uint64_t shutdown_time;
};

void flash_state_get(struct flash *f, struct flash_state *out);

/*
 * Writer thread: the engine values to persist with every following commit
 * (the CAS lease: no CAS at or above it has been handed out; the flush
 * boundary and a pending delayed flush).
 */
void flash_set_engine_state(struct flash *f, uint64_t cas_lease, uint64_t flush_cas,
                            uint32_t flush_at);

/*
 * After the writer has stopped: record a clean stop (the state with its
 * clean mark, then a snapshot of the filter), and sync. TC_OK or TC_IO_ERROR.
 */
tc_status_e flash_mark_clean(struct flash *f);

/*
 * Writer thread: mark the data dir as holding keys that were deleted while
 * flash was failing (the deletes are held in RAM), or clear the mark once
 * they are on flash and synced. A start that finds the mark drops the data:
 * after a crash, or a stop before flash came back, those keys would
 * otherwise be served again. The mark is an empty file, which a full disk
 * can still take.
 */
tc_status_e flash_mark_unsafe(struct flash *f, bool unsafe);

/* Writer thread: rebuild the filter by up to `budget` index keys. True while
 * more remains (lookups meanwhile go to LMDB). */
bool flash_rebuild_step(struct flash *f, size_t budget);
bool flash_rebuilding(struct flash *f);

/* Close; readers must be destroyed first. Accepts NULL; sets *f to NULL. */
void flash_close(struct flash **f);

/* ---- readers (any worker thread, one handle per thread) ---- */

tc_status_e flash_reader_create(struct flash *f, struct flash_reader **out);
void flash_reader_destroy(struct flash_reader **r);

/* Filter check: false if the key is certainly not on flash. Counts a filter negative. */
bool flash_maybe(struct flash_reader *r, uint64_t hv);

/*
 * Look up a key. On TC_OK *out points into the map; call flash_reader_end()
 * when done with it. Returns TC_OK, TC_NOT_FOUND, TC_IO_ERROR (counted and
 * logged once; the caller treats it as a miss).
 */
tc_status_e flash_get(struct flash_reader *r, uint64_t hv, const char *key, size_t nkey,
                      struct flash_item *out);

/* End the read transaction of the last flash_get. */
void flash_reader_end(struct flash_reader *r);

/* ---- the writer (one thread) ---- */

/* Called for every record dropped by flash eviction, after the commit. */
typedef void (*flash_evicted_fn)(void *arg, uint64_t hv, const char *key, size_t nkey,
                                 uint64_t cas);

/* Start a write transaction. TC_OK or TC_IO_ERROR. */
tc_status_e flash_begin(struct flash *f);

/* The largest value this store takes (FLASH_VALUE_MAX, or less for a small map). */
uint32_t flash_value_max(struct flash *f);

/* How much one transaction should carry at most, for this map size. */
void flash_txn_limits(struct flash *f, size_t *ops, size_t *bytes);

/*
 * Write an item (replacing the key's older record, if any). *skipped is set
 * when a record with the same key, CAS and expiry is already current
 * (nothing written). Returns TC_OK, TC_TOO_LARGE, TC_NO_MEMORY (the map is full:
 * abort, make room, retry), TC_IO_ERROR.
 */
tc_status_e flash_write(struct flash *f, uint64_t hv, const struct flash_item *it, bool *skipped);

/* Remove a key's record if there is one. TC_OK, TC_NO_MEMORY, TC_IO_ERROR. */
tc_status_e flash_delete(struct flash *f, uint64_t hv, const char *key, size_t nkey);

/*
 * Seal the batch, evict the oldest batches if over budget, commit (syncing
 * in "always" mode), then update the filter. Returns TC_OK, TC_NO_MEMORY
 * (aborted: map full), TC_IO_ERROR (aborted).
 */
tc_status_e flash_commit(struct flash *f);

/* Abandon the transaction. */
void flash_abort(struct flash *f);

/* Evict the oldest batches until `pct` percent of what is used is free (and
 * at least `pct` percent of the budget), in a transaction of its own, after
 * a batch met MDB_MAP_FULL. TC_OK, TC_IO_ERROR. */
tc_status_e flash_make_room(struct flash *f, unsigned pct);

/* Report (then forget) the records dropped by committed evictions. */
void flash_drain_evicted(struct flash *f, flash_evicted_fn cb, void *arg);

/* fsync the environment (interval mode, shutdown). */
tc_status_e flash_sync(struct flash *f);

/* ---- statistics and testing ---- */

struct flash_stats {
    uint64_t items, live_bytes; /* records and their bytes */
    uint64_t used_bytes, file_bytes, map_bytes;
    uint64_t evict_above; /* a commit evicts when used_bytes passes this */
    uint64_t batches;
    uint64_t filter_items, filter_bytes;
    uint64_t lookups, hits, filter_negatives, filter_bypassed;
    bool filter_rebuilding;
    uint64_t writes, deletes, skipped_clean;
    uint64_t evicted_items, evicted_batches;
    uint64_t commits, syncs, errors;
};

/* Any thread. */
void flash_stats_get(struct flash *f, struct flash_stats *out);

/*
 * Fault injection (tests): from the nth LMDB call on (counting from now),
 * `count` calls fail with `err` (an errno value or an MDB_* code); count 0:
 * every call fails until flash_fault_clear(). Any thread.
 */
void flash_fault_inject(struct flash *f, long nth, int err, long count);
void flash_fault_clear(struct flash *f);

#endif
