/*
 * engine.h: the tiercache storage engine, as the server and the tools see it.
 *
 * One `struct cache` owns everything: the slab allocator, the segmented LRU,
 * the hash table, the background maintainer and (later) the flash tier. There
 * is no file-scope state, so a process may open several engines (tests do).
 *
 * Threads: every operation takes a `struct cache_worker`, a per-thread handle
 * that carries that thread's statistics and scratch state. Create one per
 * thread with cache_worker_create() and never share it between threads. The
 * `struct cache` itself may be used from any thread.
 *
 * Items: an item pointer handed out by the engine carries one reference. The
 * holder reads its key and value through the accessors below and drops the
 * reference exactly once with cache_item_unref(), from any thread. While a
 * reference is held the key, value, flags and CAS never change, even if the
 * key is overwritten or deleted meanwhile.
 *
 * Tiers: with a flash directory configured, items leaving RAM go to an
 * LMDB-backed flash tier instead of being lost, and every operation serves
 * both tiers: a read that misses RAM may return an item copied from flash
 * (same bytes, flags and CAS), and a change to a flash-resident key brings
 * it to RAM first. When RAM has no room that can be freed right now (the
 * flash writer is behind), allocations return TC_BUSY: retry shortly.
 *
 * Time: the engine keeps its own clock in unix seconds (`cache_time_t`).
 * Protocol expiry values are converted with cache_realtime(), which follows
 * memcached exactly: 0 never expires, up to 30 days is relative, larger is an
 * absolute unix time, negative is already expired.
 */
#ifndef TIERCACHE_ENGINE_H
#define TIERCACHE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/status.h>

typedef uint32_t cache_time_t; /* unix seconds; 0 in an expiry means "never" */

#define CACHE_KEY_MAX           250     /* longest key, as memcached */
#define CACHE_MAX_CLASSES       63      /* slab classes 1..62; the last one is "large" */
#define CACHE_REALTIME_MAXDELTA 2592000 /* 30 days: larger expiry values are unix times */

struct cache;
struct cache_worker;
struct cache_walk_entry;
struct item;

/* ---------------------------------------------------------------------------
 * Creating and destroying an engine
 * ------------------------------------------------------------------------- */

enum cache_flash_sync {
    CACHE_FLASH_SYNC_NONE = 0,     /* the OS writes back when it likes */
    CACHE_FLASH_SYNC_INTERVAL = 1, /* fsync about once a second */
    CACHE_FLASH_SYNC_ALWAYS = 2,   /* fsync at every writer commit */
};

struct cache_options {
    uint64_t mem_limit;       /* item memory budget in bytes (-m); >= 1 page */
    uint32_t item_size_max;   /* largest value in bytes (-I) */
    double growth_factor;     /* slab class size factor (-f), > 1.0 */
    uint32_t chunk_min;       /* space for key+value in the smallest class (-n) */
    uint32_t page_size;       /* slab page size in bytes, power of two */
    uint32_t hashpower_init;  /* log2 of the initial hash table size */
    uint32_t hot_lru_pct;     /* share of a class's items kept in HOT */
    uint32_t warm_lru_pct;    /* share of a class's items kept in WARM */
    bool manual_clock;        /* tests: the clock moves only with cache_clock_set() */
    bool no_maintainer;       /* tests: no background thread; call cache_maintain() */
    const char *flash_dir;    /* flash tier directory; NULL (or flash_size 0): RAM only */
    uint64_t flash_size;      /* hard bound on the flash data file, bytes (>= 8 MiB) */
    int flash_sync;           /* enum cache_flash_sync */
    uint32_t flash_min_ttl;   /* items expiring sooner are not demoted (seconds) */
    uint64_t flash_queue_max; /* bytes of items queued for the writer (0: automatic) */
    bool no_rebalance;        /* pages stay with their class (memcached -o slab_automove=0) */
};

/* Fill `o` with the defaults (memcached's where memcached has one). */
void cache_options_default(struct cache_options *o);

/*
 * Create an engine. On success *out owns it; destroy with cache_destroy().
 * Returns TC_OK, TC_INVALID (an option out of range), TC_NO_MEMORY, TC_BUSY
 * (the flash directory is held by another process), TC_IO_ERROR (the flash
 * directory cannot be opened; logged). Starts the maintainer thread unless
 * o->no_maintainer, and the flash writer thread if there is a flash tier.
 */
tc_status_e cache_create(const struct cache_options *o, struct cache **out);

/*
 * Stop the maintainer and free everything. Every worker handle must have been
 * destroyed and every item reference dropped first. Accepts NULL and *c ==
 * NULL; sets *c to NULL.
 */
void cache_destroy(struct cache **c);

/* A per-thread handle. Returns TC_OK or TC_NO_MEMORY. */
tc_status_e cache_worker_create(struct cache *c, struct cache_worker **out);

/* Fold the worker's counters into the engine's and free it. Accepts NULL. */
void cache_worker_destroy(struct cache_worker **w);

/* ---------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------- */

/* The engine's current time (unix seconds, advanced by the maintainer). */
cache_time_t cache_now(const struct cache *c);

/* Tests with manual_clock: set the engine's time. */
void cache_clock_set(struct cache *c, cache_time_t now);

/* memcached's realtime(): a protocol expiry value to an absolute expiry. */
cache_time_t cache_realtime(const struct cache *c, int64_t exptime);

/* The unix time at which the engine was created (memcached's process start). */
cache_time_t cache_started(const struct cache *c);

/* ---------------------------------------------------------------------------
 * Items
 * ------------------------------------------------------------------------- */

const char *item_key(const struct item *it);
size_t item_nkey(const struct item *it);
const char *item_value(const struct item *it);
uint32_t item_nbytes(const struct item *it);
uint32_t item_flags(const struct item *it);
uint64_t item_cas(const struct item *it);
cache_time_t item_exptime(const struct item *it);

/*
 * The meta protocol's per-item state (memcached's ITEM_STALE, ITEM_TOKEN_SENT
 * and ITEM_KEY_BINARY), kept on flash with the item. Unlike the fields
 * above it can change while a reference is held: the meta operations below
 * return a snapshot taken under the key's lock.
 */
#define CACHE_META_STALE      1u /* invalidated (md I, ms I): reads report X, one client wins */
#define CACHE_META_WIN_SENT   2u /* a client has been told it won the recache (W) */
#define CACHE_META_KEY_BINARY 4u /* stored under a base64 ('b') key: echoed encoded */

/*
 * The value bytes of an item obtained from cache_alloc() and not yet stored:
 * the caller fills exactly item_nbytes() bytes before cache_store().
 */
char *item_value_mut(struct item *it);

/* Drop one reference. Any thread. Accepts NULL. */
void cache_item_unref(struct cache *c, struct item *it);

/* ---------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------- */

/*
 * Look a key up. On TC_OK *out holds a reference to the live item (marked as
 * fetched and recently used). Returns TC_OK or TC_NOT_FOUND (absent, expired
 * or flushed: the expired/flushed item is reclaimed on the way).
 */
tc_status_e cache_get(struct cache_worker *w, const char *key, size_t nkey, struct item **out);

/* As cache_get, and set the item's expiry to `exptime` (gat/gats). */
tc_status_e cache_get_touch(struct cache_worker *w, const char *key, size_t nkey,
                            cache_time_t exptime, struct item **out);

/* Set a live item's expiry. Returns TC_OK, TC_NOT_FOUND, TC_BUSY (a flash
 * item could not be brought to RAM yet; retry). cache_get_touch() may also
 * return TC_BUSY. */
tc_status_e cache_touch(struct cache_worker *w, const char *key, size_t nkey, cache_time_t exptime);

/* ---------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------- */

enum cache_store_op {
    CACHE_SET,
    CACHE_ADD,     /* only if absent */
    CACHE_REPLACE, /* only if present */
    CACHE_APPEND,  /* only if present: old value + new bytes; keeps old flags and expiry */
    CACHE_PREPEND, /* only if present: new bytes + old value; keeps old flags and expiry */
    CACHE_CAS,     /* only if present with the given CAS */
};

/*
 * Allocate an unlinked item for a store: the caller fills item_value_mut()
 * with `nbytes` bytes, then calls cache_store(), then drops its reference.
 * May evict to make room. Returns TC_OK (*out set), TC_TOO_LARGE (nbytes is
 * above the item size limit or nkey is 0 or above CACHE_KEY_MAX), TC_BUSY
 * (no room yet: the flash writer is still cleaning items; retry in a
 * millisecond or so), or TC_NO_MEMORY (nothing can be evicted).
 */
tc_status_e cache_alloc(struct cache_worker *w, const char *key, size_t nkey, uint32_t flags,
                        cache_time_t exptime, uint32_t nbytes, struct item **out);

/*
 * Store an item from cache_alloc() under its key. `cas` is the client's CAS
 * for CACHE_CAS (and, when nonzero, a precondition for APPEND/PREPEND).
 * On TC_OK the item is live with a fresh CAS, returned in *cas_out if not NULL.
 * Returns TC_OK, TC_NOT_STORED, TC_EXISTS (CAS mismatch), TC_NOT_FOUND (CAS
 * on a missing key), TC_NO_MEMORY (append/prepend could not get room for the
 * combined value), TC_TOO_LARGE (the combined value is above the limit),
 * TC_BUSY (append/prepend: no room yet; retry later with the same item).
 * The caller keeps its reference either way and drops it afterwards.
 */
tc_status_e cache_store(struct cache_worker *w, struct item *it, enum cache_store_op op,
                        uint64_t cas, uint64_t *cas_out);

/* Delete a key. Returns TC_OK, TC_NOT_FOUND, TC_NO_MEMORY (a flash-resident
 * key needs a small RAM marker until flash forgets it, and none could be
 * had). */
tc_status_e cache_delete(struct cache_worker *w, const char *key, size_t nkey);

/*
 * incr/decr with memcached's semantics: the value must be a decimal number
 * (leading whitespace allowed, trailing whitespace ends it); incr wraps at
 * 2^64, decr stops at 0. The new value is written in place (space padded, as
 * memcached does) when it fits and nobody else holds the item, else into a
 * new item. The new value goes to *value. Returns TC_OK, TC_NOT_FOUND,
 * TC_NON_NUMERIC, TC_NO_MEMORY, TC_BUSY (retry).
 */
tc_status_e cache_arith(struct cache_worker *w, const char *key, size_t nkey, bool incr,
                        uint64_t delta, uint64_t *value, uint64_t *cas_out);

/*
 * flush_all. when == 0 or a past time: every item stored so far is invalid
 * now. Otherwise every item stored or used at or before the second `when`
 * is invalid from that second on (memcached's rule, so the current second
 * counts). A later call replaces a pending one.
 */
void cache_flush(struct cache_worker *w, cache_time_t when);

/* ---------------------------------------------------------------------------
 * The meta protocol (mg, ms, md, ma, me): memcached's semantics, both tiers
 *
 * Each call is one step under the key's lock, like the calls above. Where a
 * meta command's flags act in the order they are written (T, N and R of mg;
 * T and N of ma), the caller resolves the order and passes the outcome.
 * ------------------------------------------------------------------------- */

struct cache_mget {
    /* in */
    bool no_bump; /* u: leave the recency and the fetched mark alone */
    bool touch;   /* T: an existing item takes touch_exptime */
    cache_time_t touch_exptime;
    bool vivify;                 /* N: on a miss, create an empty item (flags 0) */
    cache_time_t vivify_exptime; /* its expiry (N's, or T's if T comes after N) */
    bool key_binary;             /* the key was base64 ('b'): a created item remembers */
    bool recache;                /* R: win if the expiry is before recache_time */
    cache_time_t recache_time;
    bool recache_after_touch; /* R comes after T: it sees T's expiry */
    bool no_win;              /* the reply will fail: record no win (memcached's order) */
    /* out, on TC_OK */
    bool created;             /* N made the item (it then wins) */
    bool fetched;             /* read before this request (h) */
    cache_time_t atime;       /* last access before this request (l) */
    cache_time_t old_exptime; /* the expiry before T and N (0 if created) */
    unsigned meta;            /* CACHE_META_* before this request (X, Z, key echo) */
    bool win;                 /* W: this client won; the item now says a win was sent */
};

/*
 * mg. On TC_OK *out holds a reference to the item as it is after the
 * request (expiry changed by T or N). A win is: a created item; R with a
 * nonzero expiry before recache_time and no win sent yet; or a stale item
 * with no win sent yet. Returns TC_OK, TC_NOT_FOUND, TC_BUSY (T or a win on
 * a flash item, or N, needs RAM: retry), TC_NO_MEMORY.
 */
tc_status_e cache_mget(struct cache_worker *w, const char *key, size_t nkey, struct cache_mget *m,
                       struct item **out);

/*
 * ms: cache_store() with memcached's meta extras. `invalidate` (I) with
 * CACHE_CAS: a CAS below the item's stores the value all the same, marked
 * stale, with the current expiry. `key_binary`: the item remembers that
 * its key came base64-encoded.
 */
tc_status_e cache_store_meta(struct cache_worker *w, struct item *it, enum cache_store_op op,
                             uint64_t cas, bool invalidate, bool key_binary, uint64_t *cas_out);

struct cache_mdelete {
    bool has_cas; /* C: only if the item's CAS is `cas` (else TC_EXISTS) */
    uint64_t cas;
    bool invalidate; /* I: keep the item but mark it stale, with a new CAS */
    bool touch;      /* with I: a new expiry */
    cache_time_t exptime;
};

/* md. Returns TC_OK, TC_NOT_FOUND, TC_EXISTS, TC_BUSY (I on a flash item:
 * retry), TC_NO_MEMORY. */
tc_status_e cache_mdelete(struct cache_worker *w, const char *key, size_t nkey,
                          const struct cache_mdelete *d);

struct cache_marith {
    /* in */
    bool incr;
    uint64_t delta;
    uint64_t cas; /* C: nonzero: only if the item's CAS is this */
    bool touch;   /* T: an existing item takes touch_exptime */
    cache_time_t touch_exptime;
    bool vivify;                 /* N: a missing key is created with `initial` */
    uint64_t initial;            /* J */
    cache_time_t vivify_exptime; /* its expiry (N's, or T's if T comes after N) */
    /* out, on TC_OK */
    uint64_t value, cas_out;
    bool created;
    cache_time_t old_exptime; /* the expiry before T and N (0 if created) */
};

/* ma. Returns TC_OK, TC_NOT_FOUND, TC_EXISTS (CAS), TC_NON_NUMERIC,
 * TC_NO_MEMORY, TC_BUSY. */
tc_status_e cache_marith(struct cache_worker *w, const char *key, size_t nkey,
                         struct cache_marith *m);

/*
 * me: what the engine knows about a live key, without using it (no bump,
 * nothing brought to RAM). *meta gets its CACHE_META_* bits. Returns TC_OK,
 * TC_NOT_FOUND.
 */
tc_status_e cache_peek(struct cache_worker *w, const char *key, size_t nkey,
                       struct cache_walk_entry *out, unsigned *meta);

/* ---------------------------------------------------------------------------
 * Maintenance and statistics
 * ------------------------------------------------------------------------- */

/*
 * One round of background work (LRU juggling, hash table growth, expired
 * item crawling). The maintainer thread calls it; tests without one may.
 * Returns true if there is more work pending right now.
 */
bool cache_maintain(struct cache *c);

/*
 * Start a pass of the expiry crawl now rather than when its pacing says
 * (memcached's `lru_crawler crawl`): expired and flushed items are freed
 * without waiting for a client to meet them. Returns at once.
 */
void cache_crawl_now(struct cache *c);

struct cache_stats {
    /* per key, as memcached counts them */
    uint64_t get_hits, get_misses, get_expired, get_flushed;
    uint64_t touch_hits, touch_misses;
    uint64_t delete_hits, delete_misses;
    uint64_t incr_hits, incr_misses, decr_hits, decr_misses;
    uint64_t cas_hits, cas_misses, cas_badval;
    uint64_t set_cmds, store_too_large, store_no_memory;
    uint64_t flush_cmds;
    /* items */
    uint64_t curr_items, total_items, bytes;
    uint64_t evictions, reclaimed, expired_unfetched, evicted_unfetched, evicted_active;
    uint64_t crawler_reclaimed, crawler_items_checked, lrutail_reflocked;
    uint64_t moves_to_cold, moves_to_warm, moves_within_lru, direct_reclaims;
    /* memory */
    uint64_t limit_maxbytes, total_malloced, malloc_fails;
    uint32_t active_slabs;
    /* hash table and background work */
    uint32_t hash_power_level;
    uint64_t hash_bytes;
    bool hash_is_expanding;
    uint64_t lru_crawler_starts, lru_maintainer_juggles;
    /* slab pages moved between classes (memcached's slabs_moved), a move
     * under way, moves abandoned (items held too long), items taken out of
     * RAM to empty pages */
    uint64_t slabs_moved, slab_reassign_abandoned, slab_reassign_evictions;
    bool slab_reassign_running;
};

struct cache_class_stats {
    uint32_t chunk_size, chunks_per_page; /* chunks_per_page 0 for the large class */
    uint64_t total_pages, total_chunks, used_chunks, free_chunks, free_chunks_end;
    uint64_t get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits, cas_badval, touch_hits;
    uint64_t number, number_hot, number_warm, number_cold;
    uint32_t age_hot, age_warm, age;
    uint64_t mem_requested;
    uint64_t evicted, evicted_nonzero, evicted_time, outofmemory, reclaimed;
    uint64_t expired_unfetched, evicted_unfetched, evicted_active;
    uint64_t crawler_reclaimed, crawler_items_checked, lrutail_reflocked;
    uint64_t moves_to_cold, moves_to_warm, moves_within_lru, direct_reclaims;
    uint64_t hits_to_hot, hits_to_warm, hits_to_cold;
};

/* Engine-wide statistics, summed over all workers. Any thread. */
void cache_stats_get(struct cache *c, struct cache_stats *out);

/* Number of slab classes in use (class ids are 1..n). */
unsigned cache_class_count(const struct cache *c);

/* Statistics of one class (1..cache_class_count()). Returns TC_INVALID for a bad id. */
tc_status_e cache_class_stats_get(struct cache *c, unsigned clsid, struct cache_class_stats *out);

/* `stats reset`: zero the resettable counters. */
void cache_stats_reset(struct cache *c);

/* The two tiers (`stats tiers`). Zero flash fields when RAM only. */
struct cache_tier_stats {
    bool flash_enabled, flash_degraded;
    uint64_t ram_items, ram_bytes, ram_limit;
    uint64_t flash_items, flash_bytes, flash_used_bytes, flash_disk_bytes, flash_limit;
    uint64_t flash_batches;
    uint64_t demotions, demotions_skipped_clean, demotions_failed, promotions;
    uint64_t flash_hits, flash_misses, filter_negatives, filter_items, filter_bytes, lmdb_lookups;
    uint64_t flash_evictions, flash_evicted_batches, flash_deletes;
    uint64_t dropped_clean, dropped_dirty, tombstones, busy;
    uint64_t queue_ops; /* queued or being written: 0 once everything queued is done */
    uint64_t queue_bytes, held_deletes;
    uint64_t batches, batch_ops, batch_max, map_full, syncs, io_errors;
    uint64_t heap_items, heap_bytes;
    uint64_t spills; /* changed flash items sent straight back to flash: RAM had no room */
};

void cache_tier_stats_get(struct cache *c, struct cache_tier_stats *out);

/*
 * Tests: from the nth LMDB call on (counting from now), `count` calls fail
 * with `err` (an errno value such as EIO or ENOSPC, or an LMDB code such as
 * MDB_MAP_FULL = -30792); count 0 means every call until cleared with
 * nth = 0. No effect when RAM only.
 */
void cache_flash_fault_inject(struct cache *c, long nth, int err, long count);

/*
 * Wait until every flash write and delete queued so far has been applied
 * (or refused because flash is failing), at most timeout_ms. Returns true
 * if so (also when RAM only).
 */
bool cache_flash_drain(struct cache *c, long timeout_ms);

/*
 * Graceful stop, first half: write to flash every live RAM item whose
 * current version is not there yet (except items expiring within
 * --flash-min-ttl), wait until the writer has applied everything, and
 * remember to record a clean stop (with a snapshot of the filter, so the next
 * start reads nothing) when the engine is destroyed. Call once no other
 * thread uses the engine. *written gets the number of items queued.
 * Returns TC_OK, or TC_IO_ERROR (flash is failing or the wait timed out:
 * what did not reach flash is lost with RAM, and no clean stop is
 * recorded). RAM only: TC_OK at once.
 */
tc_status_e cache_persist(struct cache *c, long timeout_ms, uint64_t *written);

/*
 * Walking every live key (`lru_crawler metadump`)
 *
 * A walk visits both tiers in slices, so a caller can stream millions of
 * keys without holding a lock or an LMDB read transaction for long: first
 * the RAM hash table (a few buckets at a time, each under its stripe), then
 * flash batch by batch in write order (one short read transaction per
 * slice, then a look at each key under its stripe). A flash record is
 * reported only if it is its key's current version (the index still points
 * at it and RAM holds nothing newer). Expired, flushed and deleted items are
 * never reported.
 *
 * Guarantee: a key that is live and unchanged for the whole walk is
 * reported at least once. A key stored, changed, deleted or moved between
 * the tiers while the walk runs may be reported in either version, not at
 * all, or (rarely: a RAM item written to flash after its bucket was passed)
 * twice; an entry is always one consistent version.
 */
struct cache_walk;

struct cache_walk_entry {
    char key[250];
    uint8_t nkey;
    bool fetched;         /* read since stored (kept on flash too) */
    bool on_flash;        /* reported from the flash pass */
    uint8_t clsid;        /* the slab class the item has (or would take) in RAM */
    cache_time_t exptime; /* absolute unix time, 0 = never */
    cache_time_t atime;   /* last access, unix time */
    uint32_t flags, nbytes;
    uint32_t size; /* its total size as a RAM item (header, key, value) */
    uint64_t cas;
};

/*
 * Start a walk on behalf of worker `w` (the walk uses w's flash reader, so
 * it must be advanced on w's thread only). Returns TC_OK or TC_NO_MEMORY.
 * The walk holds no lock and no transaction between calls.
 */
tc_status_e cache_walk_create(struct cache_worker *w, struct cache_walk **out);

/* End a walk at any point. Accepts NULL; sets *wk to NULL. */
void cache_walk_destroy(struct cache_walk **wk);

/*
 * The next slice: up to `max` entries (at least 1 is asked) into *entries,
 * an array owned by the walk, valid until the next call or destroy; *n gets
 * their count and *done is set once the walk is complete (the entries of
 * that last call still count). A slice can hold no entry without the walk
 * being complete (it passed only empty buckets, or the hash table is
 * growing): call again a bit later. Returns TC_OK, TC_NO_MEMORY (the walk cannot go on), or
 * TC_IO_ERROR (flash could not be read: the walk ends with what RAM had).
 */
tc_status_e cache_walk_next(struct cache_walk *wk, size_t max,
                            const struct cache_walk_entry **entries, size_t *n, bool *done);

#endif
