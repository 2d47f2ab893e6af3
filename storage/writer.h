/*
 * writer.h: the flash writer thread: the only thread that writes to LMDB.
 *
 * Operations queue up in order (a FIFO guarded by a mutex that callers take
 * while holding the key's hash stripe, so the queue order of two operations
 * on one key is the order in which they happened). The thread takes up to
 * WRITER_BATCH_OPS operations at a time and applies them in one LMDB
 * transaction, then reports each result back to the engine
 * (cache_flash_done) and each record flash eviction dropped
 * (cache_flash_evicted).
 *
 *   WRITE(item)     put the item on flash (the item is DEMOTING and stays
 *                   readable in RAM meanwhile)
 *   DELETE(tomb)    remove the key from flash (the tombstone shadows it in RAM
 *                   meanwhile)
 *
 * Failures: a full map evicts and retries; an I/O error (or any LMDB
 * failure) puts the writer in a degraded state: writes are refused (their
 * items simply stay dirty in RAM), deletes are held and retried with
 * backoff, and the engine treats flash as unusable until a retry succeeds.
 */
#ifndef TC_STORAGE_WRITER_H
#define TC_STORAGE_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include <tiercache/engine.h>

struct cache;
struct flash;
struct item;
struct writer;

enum wop_type { WOP_WRITE = 0, WOP_DELETE = 1 };

struct wop {
    struct item *it;
    uint64_t hv;
    uint8_t type;
};

struct writer_stats {
    uint64_t queue_ops; /* queued or being written: 0 once everything queued is done */
    uint64_t queue_bytes, held_deletes;
    uint64_t batches, batch_ops, batch_max;
    uint64_t written, skipped_clean, deleted, failed;
    uint64_t retries, map_full;
    bool degraded;
};

/* Start the thread. `queue_max` bounds the bytes of queued writes. */
tc_status_e writer_start(struct cache *c, struct flash *f, uint64_t queue_max, int sync_mode,
                         struct writer **out);

/* Apply everything queued, sync, and stop. Accepts NULL; sets *w to NULL. */
void writer_stop(struct writer **w);

/*
 * Queue an operation; the queue takes over one reference to `it`. The caller
 * holds the key's stripe. A WRITE is refused (false, no reference taken)
 * when the queue is full or the writer is degraded; a DELETE is always
 * accepted.
 */
bool writer_enqueue(struct writer *w, enum wop_type type, struct item *it, uint64_t hv);

/*
 * Queue the WRITE of a spilled item (tiered.c, tier_spill_locked): allowed
 * up to twice the queue's normal bound, so that a touch or an incr of a
 * flash item works while demotions fill the queue. Refused when degraded.
 */
bool writer_enqueue_spill(struct writer *w, struct item *it, uint64_t hv);

/* Whether a WRITE would be accepted now. */
bool writer_accepts(struct writer *w);

/* Whether flash writes are failing (the engine then treats flash as RAM-less). */
bool writer_degraded(struct writer *w);

/* Wake the thread (e.g. the engine is short of clean items). */
void writer_kick(struct writer *w);

/*
 * Wait until everything queued before the call has been applied (or
 * refused, if flash is failing), at most timeout_ms. Returns true if so.
 * Any thread but the writer's.
 */
bool writer_drain(struct writer *w, long timeout_ms);

/*
 * Wait until everything queued before the call has been applied (or
 * refused, if flash is failing), at most timeout_ms. Returns true if so.
 * Any thread but the writer's.
 */
bool writer_drain(struct writer *w, long timeout_ms);

void writer_stats_get(struct writer *w, struct writer_stats *out);

#endif
