/*
 * flash_internal.h: the flash module's private state, shared by flash.c
 * (environment, recovery, readers, statistics) and flash_write.c (the
 * writer's transactions, eviction, the filter's upkeep), and by datadir.c,
 * which reads a stopped server's data dir. They are the only files that
 * see <lmdb.h>.
 */
#ifndef TC_STORAGE_FLASH_INTERNAL_H
#define TC_STORAGE_FLASH_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "filter.h"
#include "flash.h"
#include "flash_record.h"

/* The files of a data dir. */
#define FLASH_LOCK_NAME     "tiercached.lock" /* flock: a server exclusive, readers shared */
#define FLASH_DATA_NAME     "data.mdb"
#define FLASH_LMDB_LOCK     "lock.mdb"
#define FLASH_SNAPSHOT_NAME "filter.snap"
#define FLASH_UNSAFE_NAME   "deletes-pending"

#define FLASH_FORMAT      1           /* the data dir format this build reads and writes */
#define FLASH_STATE_MAGIC 0x534d4354U /* "TCMS" */
#define HIGH_PCT          90          /* eviction starts above this much of the map */
#define BAND_PCT          5           /* and frees this much more */
#define TXN_MAX_OPS       2048
#define TXN_MAX_BYTES     (4U << 20)
#define EVICT_TXN_RECORDS 1000 /* records one eviction-only transaction drops at most */
#define FILTER_MIN        65536
#define FILTER_GROWTH     1.12

/*
 * The "state" record of the meta database, rewritten by every commit.
 * Little endian, checksummed.
 */
struct flash_state_rec {
    uint32_t magic;
    uint32_t format;
    uint64_t items, bytes;  /* live records and their bytes */
    uint64_t cas_lease;     /* every CAS handed out so far is below this */
    uint64_t flush_cas;     /* items with a smaller CAS are flushed */
    uint32_t flush_at;      /* a pending delayed flush_all, 0 if none */
    uint32_t clean;         /* 1: written by a clean shutdown */
    uint64_t shutdown_time; /* unix time of that shutdown */
    uint32_t crc;           /* crc32c of everything above */
    uint32_t pad;
};

struct flash_reader {
    struct flash *f;
    MDB_txn *txn;
    MDB_cursor *cur;
    bool open;
    _Atomic uint64_t gen; /* odd while it reads the filter */
    struct flash_reader *next, *prev;
};

struct u64vec {
    uint64_t *v;
    size_t n, cap;
};

struct evicted {
    uint64_t hv, cas;
    size_t koff; /* into evkeys */
    uint8_t nkey;
};

struct flash {
    MDB_env *env;
    MDB_dbi idx, bat, meta;
    struct flash_options o;
    uint64_t map; /* LMDB's map size: o.size less a margin (flash_open) */
    char path[4096];
    int lock_fd;
    size_t psize;
    /* sized to the map (flash_limits): a transaction, with the pages it
     * copies and those the previous one freed, must fit above `high` */
    uint64_t high, low; /* eviction band, bytes used */
    size_t txn_ops, txn_bytes, value_max;
    /* MDB_WRITEMAP: disk blocks reserved up to alloc_end, `ahead` beyond
     * what LMDB may write next (see reserve_ahead in flash_write.c) */
    bool writemap;
    int fd;
    uint64_t size_found; /* data.mdb's size before opening, UINT64_MAX if none */
    uint64_t alloc_end, ahead;
    _Atomic(struct filter *) filter;
    pthread_mutex_t readers_lock;
    struct flash_reader *readers;
    struct flash_state found; /* as found at open */

    /* filter rebuild after an unclean stop (writer thread); while it runs,
     * every lookup goes to LMDB */
    _Atomic bool rebuilding;
    struct filter *rb_filter;
    uint64_t rb_cursor; /* every index key <= rb_cursor is in rb_filter */
    bool rb_started, rb_has_cursor;
    unsigned rb_filter_grow; /* restarts because the new filter was too small */

    /* values the engine wants persisted (writer thread) */
    uint64_t e_cas_lease, e_flush_cas;
    uint32_t e_flush_at;

    /* writer state */
    MDB_txn *wtxn;
    MDB_cursor *wcur;
    uint64_t seq, seq_begin; /* batch being built; first seq of the txn */
    char *buf;
    size_t len, cap;
    uint32_t nrec;
    uint32_t base_time; /* of the open batch: its first record's */
    uint64_t base_cas;
    struct u64vec fadd, fdel;
    struct evicted *ev; /* records dropped by eviction, reported after commit */
    size_t nev, evcap, nev_begin;
    char *evkeys;
    size_t evklen, evkcap, evklen_begin;
    uint64_t items, bytes, t_items, t_bytes;
    /* counted in the transaction, added to the statistics when it commits */
    uint64_t t_writes, t_deletes, t_skipped, t_ev_items, t_ev_batches;

    /* statistics */
    _Atomic uint64_t s_items, s_bytes, s_used, s_batches;
    _Atomic uint64_t lookups, hits, negatives, bypassed, writes, deletes, skipped;
    _Atomic uint64_t ev_items, ev_batches, commits, syncs, errors;

    /* fault injection */
    _Atomic bool fault_armed;
    pthread_mutex_t fault_lock;
    long fault_nth;  /* calls before the first failure */
    long fault_left; /* failures still to give once firing; < 0: forever */
    int fault_err;
    bool fault_firing;
};

/* Every LMDB call goes through here, so a test can make the nth one fail. */
int flash_fault_hit(struct flash *f);
#define LMDB_CALL(f, expr)                                                                         \
    ({                                                                                             \
        int fault_ = flash_fault_hit(f);                                                           \
        fault_ != 0 ? fault_ : (expr);                                                             \
    })

/* An LMDB result as a status; logs the first failure, counts every one. */
tc_status_e flash_translate(struct flash *f, int rc, const char *what);

/* Open (renew) the reader's read transaction and index cursor; `what`
 * names the operation in an error. TC_OK or TC_IO_ERROR. */
tc_status_e flash_reader_begin(struct flash_reader *r, const char *what);

/* Read the record at `loc` in a transaction. */
tc_status_e flash_read_at(struct flash *f, MDB_txn *txn, uint64_t loc, struct flash_item *it,
                          size_t *size);

/* Pages in use by every database, in bytes, as `txn` sees them. */
uint64_t flash_used_bytes(struct flash *f, MDB_txn *txn);

/* Space figures of a transaction, read before it commits. */
struct flash_space {
    uint64_t used, batches;
};
void flash_space_get(struct flash *f, MDB_txn *txn, struct flash_space *sp);

/* Publish counters for flash_stats_get after a commit (sp: the committed
 * transaction's space figures). */
void flash_publish(struct flash *f, const struct flash_space *sp);

/* Commit `txn`; an injected fault aborts it instead. Either way it is gone,
 * as after a real failed mdb_txn_commit. */
static inline int flash_txn_commit(struct flash *f, MDB_txn *txn)
{
    int rc = flash_fault_hit(f);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* The state record as it should be written now. */
void flash_state_make(struct flash *f, struct flash_state_rec *r, uint64_t items, uint64_t bytes,
                      bool clean);

bool flash_vec_push(struct u64vec *v, uint64_t x);

/* flash_write.c: evict the oldest batches until at most `target` bytes are used. */
tc_status_e flash_evict_to(struct flash *f, uint64_t target);

/* The same outside a write transaction, in as many transactions as it takes
 * (at start, when the budget shrank). */
tc_status_e flash_evict_down_to(struct flash *f, uint64_t target);

#endif
