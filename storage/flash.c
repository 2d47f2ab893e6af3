/*
 * flash.c: the flash tier on LMDB: the environment, starting up on what an
 * earlier run left, reader handles and statistics (see flash.h for the
 * on-disk layout; the writer's side is flash_write.c).
 *
 * Starting up never scans the data. The state record in `meta` says whether
 * the last stop was clean; a clean stop also left a snapshot of the filter
 * (filter.snap, tagged with the LMDB transaction id it matches), which is
 * loaded. Otherwise the filter is rebuilt by the writer thread in the
 * background, a slice at a time, and meanwhile every lookup that misses RAM
 * asks LMDB (correct, only slower). Right after opening, the state is
 * rewritten with clean = 0 and synced, so a crash from then on is known at
 * the next start.
 *
 * Damage. LMDB keeps its file consistent as of the last synced commit; on
 * top of that we check, in constant time, what a crash, a truncation or a
 * stranger's file would break: the environment opens, the file holds every
 * page the meta page names, our databases are there (and nothing else is),
 * the state record has our magic, format and checksum, and the first and
 * last batches check out. On any failure the directory is renamed to
 * DIR.corrupt-<unixtime> (a log line says so) and we start empty: a cache
 * must come back up. lock.mdb is deleted before opening: we hold the data
 * dir's own lock, so no other process uses the environment, and LMDB makes
 * a fresh one (which also forgets stale reader slots).
 *
 * A smaller budget. LMDB maps at least the whole data file, and the file
 * never shrinks by itself. If --flash-size was lowered below the file's
 * size since the last run, the oldest batches are evicted until the data
 * fits the new budget, and the file is replaced by a compacted copy
 * (mdb_env_copy2 with MDB_CP_COMPACT, renamed into place: a crash leaves the
 * old file or the new one). The filter is then rebuilt. Meanwhile the disk
 * holds the old file (which may grow by an eighth while evicting) and the
 * new one.
 *
 * Errors. Every LMDB call goes through LMDB_CALL(), which is also where a
 * test can make the nth call fail. Errors are counted, logged at most every
 * 10 s, and returned as TC_IO_ERROR; TC_NO_MEMORY means "map full".
 */
#include "flash_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "hashtable.h"
#include "log.h"

#define SHRINK_HEADROOM (16U << 20) /* map beyond the file (and 1/8 of it) while shrinking */

/* ---------------------------------------------------------------------------
 * Errors and fault injection
 * ------------------------------------------------------------------------- */

int flash_fault_hit(struct flash *f)
{
    if (!atomic_load_explicit(&f->fault_armed, memory_order_relaxed))
        return 0;
    int err = 0;
    pthread_mutex_lock(&f->fault_lock);
    if (!f->fault_firing && f->fault_nth > 0 && --f->fault_nth == 0)
        f->fault_firing = true;
    if (f->fault_firing) {
        err = f->fault_err;
        if (f->fault_left > 0 && --f->fault_left == 0) {
            f->fault_firing = false;
            atomic_store(&f->fault_armed, false);
        }
    }
    pthread_mutex_unlock(&f->fault_lock);
    return err;
}

void flash_fault_inject(struct flash *f, long nth, int err, long count)
{
    pthread_mutex_lock(&f->fault_lock);
    f->fault_nth = nth;
    f->fault_err = err;
    f->fault_left = count > 0 ? count : -1;
    f->fault_firing = false;
    pthread_mutex_unlock(&f->fault_lock);
    atomic_store(&f->fault_armed, true);
}

void flash_fault_clear(struct flash *f)
{
    atomic_store(&f->fault_armed, false);
    pthread_mutex_lock(&f->fault_lock);
    f->fault_firing = false;
    f->fault_nth = 0;
    pthread_mutex_unlock(&f->fault_lock);
}

static const char *err_text(int rc)
{
    return rc > 0 && rc < 200 ? strerror(rc) : mdb_strerror(rc);
}

tc_status_e flash_translate(struct flash *f, int rc, const char *what)
{
    if (rc == 0)
        return TC_OK;
    if (rc == MDB_NOTFOUND)
        return TC_NOT_FOUND;
    if (rc == MDB_MAP_FULL)
        return TC_NO_MEMORY;
    atomic_fetch_add_explicit(&f->errors, 1, memory_order_relaxed);
    TC_LOG_EVERY(10, TC_LOG_ERROR, "flash: %s failed: %s (errors so far: %llu)", what, err_text(rc),
                 (unsigned long long)atomic_load_explicit(&f->errors, memory_order_relaxed));
    return TC_IO_ERROR;
}

/* ---------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------- */

bool flash_vec_push(struct u64vec *v, uint64_t x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        uint64_t *nv = realloc(v->v, cap * sizeof(*nv));
        if (nv == NULL)
            return false;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

uint64_t flash_used_bytes(struct flash *f, MDB_txn *txn)
{
    uint64_t pages = 2;                               /* the two meta pages */
    MDB_dbi dbis[] = {0, 1, f->idx, f->bat, f->meta}; /* 0: free list, 1: main */
    for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
        MDB_stat st;
        if (mdb_stat(txn, dbis[i], &st) == 0)
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return pages * f->psize;
}

void flash_space_get(struct flash *f, MDB_txn *txn, struct flash_space *sp)
{
    sp->used = flash_used_bytes(f, txn);
    MDB_stat st;
    sp->batches = mdb_stat(txn, f->bat, &st) == 0 ? st.ms_entries : 0;
}

void flash_publish(struct flash *f, const struct flash_space *sp)
{
    atomic_store_explicit(&f->s_items, f->items, memory_order_relaxed);
    atomic_store_explicit(&f->s_bytes, f->bytes, memory_order_relaxed);
    atomic_store_explicit(&f->s_used, sp->used, memory_order_relaxed);
    atomic_store_explicit(&f->s_batches, sp->batches, memory_order_relaxed);
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    if (strlen(dir) >= sizeof(tmp))
        return ENAMETOOLONG;
    strcpy(tmp, dir);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

static void dir_file(const struct flash *f, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", f->o.dir, name);
}

/* ---------------------------------------------------------------------------
 * The state record
 * ------------------------------------------------------------------------- */

static uint32_t state_crc(const struct flash_state_rec *r)
{
    return tc_crc32c(0, r, offsetof(struct flash_state_rec, crc));
}

void flash_state_make(struct flash *f, struct flash_state_rec *r, uint64_t items, uint64_t bytes,
                      bool clean)
{
    memset(r, 0, sizeof(*r));
    r->magic = FLASH_STATE_MAGIC;
    r->format = FLASH_FORMAT;
    r->items = items;
    r->bytes = bytes;
    r->cas_lease = f->e_cas_lease;
    r->flush_cas = f->e_flush_cas;
    r->flush_at = f->e_flush_at;
    r->clean = clean;
    r->shutdown_time = clean ? (uint64_t)time(NULL) : 0;
    r->crc = state_crc(r);
}

static int state_put(struct flash *f, MDB_txn *txn, const struct flash_state_rec *r)
{
    MDB_val k = {5, "state"}, v = {sizeof(*r), (void *)r};
    return LMDB_CALL(f, mdb_put(txn, f->meta, &k, &v, 0));
}

void flash_state_get(struct flash *f, struct flash_state *out)
{
    *out = f->found;
}

void flash_set_engine_state(struct flash *f, uint64_t cas_lease, uint64_t flush_cas,
                            uint32_t flush_at)
{
    f->e_cas_lease = cas_lease;
    f->e_flush_cas = flush_cas;
    f->e_flush_at = flush_at;
}

/* ---------------------------------------------------------------------------
 * Opening, with the integrity checks and moving a bad directory aside
 * ------------------------------------------------------------------------- */

static tc_status_e open_failed(struct flash *f, const char *what, int rc)
{
    tc_log(TC_LOG_ERROR, "flash: cannot open %s: %s: %s", f->o.dir, what,
           rc > 0 && rc < 200 ? strerror(rc) : mdb_strerror(rc));
    return TC_IO_ERROR;
}

static tc_status_e take_lock(struct flash *f)
{
    int rc = mkdir_p(f->o.dir);
    if (rc != 0)
        return open_failed(f, "creating the directory", rc);
    dir_file(f, FLASH_LOCK_NAME, f->path, sizeof(f->path));
    f->lock_fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f->lock_fd < 0)
        return open_failed(f, "the lock file", errno);
    if (flock(f->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return open_failed(f, "locking", errno);
        return TC_BUSY; /* the caller says so: it knows what to do about it */
    }
    return TC_OK;
}

static void close_env(struct flash *f)
{
    if (f->env != NULL)
        mdb_env_close(f->env);
    f->env = NULL;
}

/*
 * The directory failed a check: rename it to DIR.corrupt-<unixtime> and
 * make a fresh one (moving our files one by one if the directory itself
 * cannot be renamed, e.g. a mount point).
 */
static tc_status_e move_aside(struct flash *f, const char *why)
{
    close_env(f);
    char dst[4200];
    snprintf(dst, sizeof(dst), "%s.corrupt-%ld", f->o.dir, (long)time(NULL));
    tc_log(TC_LOG_ERROR, "flash: data dir %s %s: moved aside to %s, starting empty", f->o.dir, why,
           dst);
    if (rename(f->o.dir, dst) == 0) {
        close(f->lock_fd); /* the lock moved with the old directory */
        f->lock_fd = -1;
        tc_status_e st = take_lock(f);
        f->found.moved_aside = true;
        return st;
    }
    if (mkdir(dst, 0755) != 0 && errno != EEXIST)
        return open_failed(f, "moving the damaged data aside", errno);
    static const char *const files[] = {FLASH_DATA_NAME, FLASH_LMDB_LOCK, FLASH_SNAPSHOT_NAME};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char from[4200], to[4300];
        dir_file(f, files[i], from, sizeof(from));
        snprintf(to, sizeof(to), "%s/%s", dst, files[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            return open_failed(f, "moving the damaged data aside", errno);
    }
    f->found.moved_aside = true;
    return TC_OK;
}

/*
 * Open the environment. With `writemap`, LMDB writes pages straight into its
 * map (MDB_WRITEMAP): no page buffers, no pwrite per page, 1.6 to 1.8 times
 * the demotion rate (tiercache-flashbench demote). The file is then sparse,
 * as long as the map; flash_write.c reserves its blocks ahead of use.
 */
static int env_open_mode(struct flash *f, bool writemap)
{
    char lockpath[4200], datapath[4200];
    dir_file(f, FLASH_LMDB_LOCK, lockpath, sizeof(lockpath));
    unlink(lockpath); /* see the top of the file */
    /* The size as found: with MDB_WRITEMAP, opening extends the file to the
     * map, which would hide a truncation. */
    struct stat st;
    dir_file(f, FLASH_DATA_NAME, datapath, sizeof(datapath));
    f->size_found = stat(datapath, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
    int rc;
    if ((rc = mdb_env_create(&f->env)) != 0)
        return rc;
    if ((rc = mdb_env_set_maxdbs(f->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(f->env, (size_t)f->map)) != 0 ||
        (rc = mdb_env_set_maxreaders(f->env, f->o.max_readers + 8)) != 0) {
        close_env(f);
        return rc;
    }
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (writemap ? MDB_WRITEMAP : 0);
    if (f->o.sync != CACHE_FLASH_SYNC_ALWAYS)
        flags |= MDB_NOSYNC;
    if ((rc = mdb_env_open(f->env, f->o.dir, flags, 0644)) != 0) {
        close_env(f);
        return rc;
    }
    f->writemap = writemap;
    f->alloc_end = 0;
    if (writemap) {
        /* Blocks must be reservable ahead of LMDB's writes (flash_write.c):
         * a file system without fallocate gets the write path instead. */
        if ((rc = mdb_env_get_fd(f->env, &f->fd)) != 0)
            return rc;
        if (fallocate(f->fd, 0, 0, 8192) != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
            tc_log(TC_LOG_INFO,
                   "flash: %s cannot reserve blocks (fallocate): writing pages "
                   "with pwrite instead of through the map",
                   f->o.dir);
            close_env(f);
            return env_open_mode(f, false);
        }
    }
    return 0;
}

/*
 * Under ThreadSanitizer, the write path. With MDB_WRITEMAP the writer copies
 * pages with memcpy into the shared map, which TSan sees, but not what orders
 * those copies before a later reader's (LMDB's meta page and reader table,
 * read without a lock in an uninstrumented library): each reuse of a freed
 * page would be reported as a race. The write path hides LMDB's writes from
 * TSan instead, and every race of our own code stays visible.
 */
#if defined(__SANITIZE_THREAD__)
#define TC_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TC_UNDER_TSAN 1
#endif
#endif

static int env_open(struct flash *f)
{
#ifdef TC_UNDER_TSAN
    return env_open_mode(f, false);
#else
    return env_open_mode(f, true);
#endif
}

/* Check a batch at one end of the log (MDB_FIRST or MDB_LAST). */
static bool batch_end_ok(MDB_txn *txn, MDB_dbi bat, MDB_cursor_op where)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, bat, &c) != 0)
        return false;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, where);
    uint32_t count;
    bool ok = rc == MDB_NOTFOUND ||
              (rc == 0 && k.mv_size == 8 && frec_batch_check(v.mv_data, v.mv_size, &count));
    mdb_cursor_close(c);
    return ok;
}

/*
 * Size transactions and the eviction band to the map. A write transaction
 * needs free pages for its batch, for a copy of each index page it touches
 * (up to one per operation) and, since LMDB reuses freed pages only a commit
 * later, as many again for what the previous transaction freed. Small maps
 * get smaller transactions (each at most 1/32 of the map) and a wider
 * reserve; from about 1 GiB the fixed limits and a 10% reserve apply.
 */
static void flash_limits(struct flash *f)
{
    uint64_t size = f->map;
    f->txn_bytes = TXN_MAX_BYTES;
    if (f->txn_bytes > size / 32)
        f->txn_bytes = (size_t)(size / 32);
    f->txn_ops = TXN_MAX_OPS;
    if (f->txn_ops > f->txn_bytes / f->psize)
        f->txn_ops = f->txn_bytes / f->psize;
    if (f->txn_ops < 16)
        f->txn_ops = 16;
    f->value_max = FLASH_VALUE_MAX;
    if (f->value_max > size / 8)
        f->value_max = (size_t)(size / 8);
    /* What one usual transaction may add at the end of the file, and a
     * margin (flash_write reserves more for a batch with a large value). */
    f->ahead = f->txn_bytes + 2 * (uint64_t)f->txn_ops * f->psize + (1U << 20);
    /* dirty pages: the batch, an index page per record written and one per
     * record its eviction drops; x3: the previous transaction's, and margin */
    uint64_t reserve = 3 * ((uint64_t)f->txn_bytes + 2 * (uint64_t)f->txn_ops * f->psize);
    if (reserve < size / 100 * (100 - HIGH_PCT))
        reserve = size / 100 * (100 - HIGH_PCT);
    f->high = size - reserve;
    f->low = f->high - size / 100 * BAND_PCT;
}

uint32_t flash_value_max(struct flash *f)
{
    return (uint32_t)f->value_max;
}

void flash_txn_limits(struct flash *f, size_t *ops, size_t *bytes)
{
    *ops = f->txn_ops;
    *bytes = f->txn_bytes;
}

/*
 * Open our databases and read the state. Returns NULL if all is well, else
 * why the directory must be moved aside (or sets *rc on an I/O failure).
 */
static const char *open_dbs(struct flash *f, int *rc, struct flash_state_rec *state)
{
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(f->env, &info);
    mdb_env_stat(f->env, &est);
    f->psize = est.ms_psize;
    flash_limits(f);
    if (f->size_found < (info.me_last_pgno + 1) * f->psize)
        return "is truncated";

    MDB_txn *txn;
    if ((*rc = mdb_txn_begin(f->env, NULL, 0, &txn)) != 0)
        return NULL;
    const char *bad = NULL;
    MDB_dbi main;
    MDB_stat ms;
    if ((*rc = mdb_dbi_open(txn, NULL, 0, &main)) == 0 && (*rc = mdb_stat(txn, main, &ms)) == 0) {
        bool fresh = ms.ms_entries == 0;
        unsigned create = fresh ? MDB_CREATE : 0;
        int r1 = mdb_dbi_open(txn, "index",
                              create | MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
                              &f->idx);
        int r2 = mdb_dbi_open(txn, "batches", create | MDB_INTEGERKEY, &f->bat);
        int r3 = mdb_dbi_open(txn, "meta", create, &f->meta);
        if (r1 != 0 || r2 != 0 || r3 != 0 || ms.ms_entries > 3) {
            bad = "is not a tiercache data dir";
        } else {
            MDB_val k = {5, "state"}, v;
            int r = mdb_get(txn, f->meta, &k, &v);
            if (r == MDB_NOTFOUND && fresh) {
                f->found.fresh = true;
                memset(state, 0, sizeof(*state));
                state->clean = 1;
            } else if (r != 0 || v.mv_size != sizeof(*state)) {
                bad = "has no valid state record";
            } else {
                memcpy(state, v.mv_data, sizeof(*state));
                if (state->magic != FLASH_STATE_MAGIC || state->crc != state_crc(state))
                    bad = "fails its integrity check (state record)";
                else if (state->format != FLASH_FORMAT)
                    bad = "is from another format version";
                else if (!batch_end_ok(txn, f->bat, MDB_FIRST) ||
                         !batch_end_ok(txn, f->bat, MDB_LAST))
                    bad = "fails its integrity check (a damaged batch)";
            }
        }
        if (bad == NULL && (*rc = mdb_txn_commit(txn)) == 0)
            return NULL;
        if (bad == NULL)
            return NULL; /* *rc says what failed */
    }
    mdb_txn_abort(txn);
    return bad;
}

/* The first batch number to use: one past the last one there. */
static int next_seq(struct flash *f, uint64_t *seq)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return rc;
    *seq = 1;
    if ((rc = mdb_cursor_open(txn, f->bat, &c)) == 0) {
        MDB_val k, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
        if (rc == 0)
            memcpy(seq, k.mv_data, sizeof(*seq)), (*seq)++;
        if (rc == MDB_NOTFOUND)
            rc = 0;
        mdb_cursor_close(c); /* a read-only transaction's abort does not */
    }
    mdb_txn_abort(txn);
    return rc;
}

/* Load the filter snapshot if it matches the data exactly. */
static bool load_snapshot(struct flash *f)
{
    MDB_envinfo info;
    mdb_env_info(f->env, &info);
    char path[4200];
    dir_file(f, FLASH_SNAPSHOT_NAME, path, sizeof(path));
    struct filter *flt;
    if (filter_load(path, (uint64_t)info.me_last_txnid, &flt) != TC_OK)
        return false;
    struct filter *old = atomic_exchange(&f->filter, flt);
    filter_destroy(&old);
    return true;
}

/* Write the state with clean = 0 and sync: a crash from now on will show. */
static int mark_running(struct flash *f)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    struct flash_state_rec r;
    flash_state_make(f, &r, f->items, f->bytes, false);
    if ((rc = state_put(f, txn, &r)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn)) == 0)
        rc = mdb_env_sync(f->env, 1);
    return rc;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/*
 * The data file is larger than the budget (see the top of the file): evict
 * down to the budget's eviction band, compact, reopen. *shrunk tells
 * whether anything was done. The filter must be in rebuilding mode.
 */
static tc_status_e shrink(struct flash *f, struct flash_state_rec *state, bool *shrunk)
{
    char path[4200], tmpdir[4200], tmpfile[4300];
    struct stat st;
    dir_file(f, FLASH_DATA_NAME, path, sizeof(path));
    if (stat(path, &st) != 0 || (uint64_t)st.st_size <= f->map)
        return TC_OK;
    *shrunk = true;
    tc_log(TC_LOG_WARN,
           "flash: %s holds %llu bytes, more than --flash-size (%llu): dropping the oldest "
           "items and compacting it",
           f->o.dir, (unsigned long long)st.st_size, (unsigned long long)f->o.size);
    /* Evicting copies pages too: room beyond the file while it runs. */
    int rc =
        mdb_env_set_mapsize(f->env, (size_t)st.st_size + SHRINK_HEADROOM + (size_t)st.st_size / 8);
    if (rc != 0)
        return open_failed(f, "growing the map to shrink the data", rc);
    tc_status_e s = flash_evict_down_to(f, f->low);
    if (s != TC_OK)
        return s;
    dir_file(f, "compact.tmp", tmpdir, sizeof(tmpdir));
    snprintf(tmpfile, sizeof(tmpfile), "%s/data.mdb", tmpdir);
    unlink(tmpfile); /* left by a crash during an earlier compaction */
    if (mkdir(tmpdir, 0755) != 0 && errno != EEXIST)
        return open_failed(f, "making a directory to compact into", errno);
    rc = mdb_env_copy2(f->env, tmpdir, MDB_CP_COMPACT);
    if (rc == 0)
        rc = fsync_path(tmpfile, O_RDONLY);
    if (rc != 0) {
        unlink(tmpfile);
        rmdir(tmpdir);
        return open_failed(f, "compacting the data file", rc);
    }
    close_env(f);
    if (rename(tmpfile, path) != 0) {
        rc = errno;
        unlink(tmpfile);
        rmdir(tmpdir);
        return open_failed(f, "replacing the data file by its compacted copy", rc);
    }
    rmdir(tmpdir);
    fsync_path(f->o.dir, O_RDONLY | O_DIRECTORY);
    const char *bad = NULL;
    if ((rc = env_open(f)) != 0 || (bad = open_dbs(f, &rc, state)) != NULL || rc != 0)
        return open_failed(f, bad != NULL ? bad : "reopening the compacted data file", rc);
    f->items = state->items;
    f->bytes = state->bytes;
    if (stat(path, &st) == 0)
        tc_log(TC_LOG_WARN, "flash: %s: compacted to %llu bytes, %llu items", f->o.dir,
               (unsigned long long)st.st_size, (unsigned long long)f->items);
    return TC_OK;
}

/* Deletes were pending when the last run ended (flash_mark_unsafe): drop
 * the data, which may hold deleted keys. */
static void discard_if_unsafe(struct flash *f)
{
    char mark[4200];
    dir_file(f, FLASH_UNSAFE_NAME, mark, sizeof(mark));
    if (access(mark, F_OK) != 0)
        return;
    tc_log(TC_LOG_WARN,
           "flash: data dir %s: deletes were pending when the last run ended (flash was "
           "failing), so its data may hold deleted keys: starting empty",
           f->o.dir);
    static const char *const files[] = {FLASH_DATA_NAME, FLASH_LMDB_LOCK, FLASH_SNAPSHOT_NAME};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[4200];
        dir_file(f, files[i], path, sizeof(path));
        unlink(path);
    }
    unlink(mark);
    fsync_path(f->o.dir, O_RDONLY | O_DIRECTORY);
    f->found.discarded = true;
}

tc_status_e flash_open(const struct flash_options *o, struct flash **out)
{
    struct flash *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return TC_NO_MEMORY;
    f->o = *o;
    f->lock_fd = -1;
    /* The map leaves room under the budget for the file system's own blocks
     * of a large, sparse, gradually reserved file (its extent tree). */
    uint64_t margin = o->size / 512 > (64U << 10) ? o->size / 512 : (64U << 10);
    f->map = (o->size - margin) & ~(uint64_t)4095;
    pthread_mutex_init(&f->readers_lock, NULL);
    pthread_mutex_init(&f->fault_lock, NULL);
    tc_status_e st = take_lock(f);
    struct flash_state_rec state;
    int rc = 0;
    if (st == TC_OK)
        discard_if_unsafe(f);

    /* Open and check; on damage move aside and try once more, empty. */
    for (int attempt = 0; st == TC_OK && attempt < 2; attempt++) {
        const char *bad = NULL;
        rc = env_open(f);
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED ||
            rc == MDB_PAGE_NOTFOUND || rc == EINVAL)
            bad = "cannot be opened by LMDB";
        else if (rc == 0 && (bad = open_dbs(f, &rc, &state)) == NULL && rc == 0)
            break;
        if (bad == NULL || attempt == 1) {
            st = open_failed(f, bad != NULL ? bad : "opening the environment", rc);
            break;
        }
        st = move_aside(f, bad);
        memset(&f->found, 0, sizeof(f->found));
        f->found.moved_aside = true;
    }
    if (st != TC_OK)
        goto fail;

    f->found.clean = state.clean == 1;
    f->found.cas_lease = state.cas_lease;
    f->found.flush_cas = state.flush_cas;
    f->found.flush_at = state.flush_at;
    f->found.items = state.items;
    f->found.shutdown_time = state.shutdown_time;
    f->items = state.items;
    f->bytes = state.bytes;
    f->e_cas_lease = state.cas_lease;
    f->e_flush_cas = state.flush_cas;
    f->e_flush_at = state.flush_at;
    if ((rc = next_seq(f, &f->seq)) != 0) {
        st = open_failed(f, "reading the batches", rc);
        goto fail;
    }

    struct filter *flt;
    uint64_t cap = (uint64_t)((double)f->items * FILTER_GROWTH);
    if (filter_create(cap > FILTER_MIN ? cap : FILTER_MIN, &flt) != TC_OK) {
        st = TC_NO_MEMORY;
        goto fail;
    }
    atomic_store(&f->filter, flt);
    bool shrunk = false;
    atomic_store(&f->rebuilding, true); /* while shrinking: no filter upkeep */
    if ((st = shrink(f, &state, &shrunk)) != TC_OK)
        goto fail;
    atomic_store(&f->rebuilding, false);
    f->found.items = f->items;
    if (f->items == 0)
        f->found.filter_loaded = true; /* nothing to know */
    else if (f->found.clean && !shrunk && load_snapshot(f))
        f->found.filter_loaded = true;
    else
        atomic_store(&f->rebuilding, true); /* the writer rebuilds it */

    if ((rc = mark_running(f)) != 0) {
        st = open_failed(f, "recording the start", rc);
        goto fail;
    }
    MDB_txn *txn;
    if (mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn) == 0) {
        struct flash_space sp;
        flash_space_get(f, txn, &sp);
        mdb_txn_abort(txn);
        flash_publish(f, &sp);
    }
    f->cap = 1 << 20;
    f->buf = malloc(f->cap);
    if (f->buf == NULL) {
        st = TC_NO_MEMORY;
        goto fail;
    }
    if (f->found.fresh)
        tc_log(TC_LOG_INFO, "flash: %s: new data dir", o->dir);
    else
        tc_log(TC_LOG_INFO, "flash: %s: %llu items after a%s stop%s", o->dir,
               (unsigned long long)f->items, f->found.clean ? " clean" : "n unclean",
               f->found.filter_loaded ? "" : "; rebuilding the filter in the background");
    *out = f;
    return TC_OK;

fail:
    flash_close(&f);
    return st;
}

void flash_close(struct flash **fp)
{
    if (fp == NULL || *fp == NULL)
        return;
    struct flash *f = *fp;
    if (f->wtxn != NULL)
        mdb_txn_abort(f->wtxn);
    if (f->env != NULL) {
        mdb_env_sync(f->env, 1);
        mdb_env_close(f->env);
    }
    struct filter *flt = atomic_load(&f->filter);
    filter_destroy(&flt);
    filter_destroy(&f->rb_filter);
    if (f->lock_fd >= 0)
        close(f->lock_fd); /* releases the flock */
    free(f->buf);
    free(f->fadd.v);
    free(f->fdel.v);
    free(f->ev);
    free(f->evkeys);
    pthread_mutex_destroy(&f->readers_lock);
    pthread_mutex_destroy(&f->fault_lock);
    free(f);
    *fp = NULL;
}

tc_status_e flash_mark_clean(struct flash *f)
{
    MDB_txn *txn;
    int rc = LMDB_CALL(f, mdb_txn_begin(f->env, NULL, 0, &txn));
    if (rc != 0)
        return flash_translate(f, rc, "recording a clean stop");
    struct flash_state_rec r;
    flash_state_make(f, &r, f->items, f->bytes, true);
    if ((rc = state_put(f, txn, &r)) != 0) {
        mdb_txn_abort(txn);
        return flash_translate(f, rc, "recording a clean stop");
    }
    if ((rc = flash_txn_commit(f, txn)) != 0 || (rc = LMDB_CALL(f, mdb_env_sync(f->env, 1))) != 0)
        return flash_translate(f, rc, "recording a clean stop");
    /* The filter snapshot, tagged with the transaction it matches. A crash
     * while writing it leaves the old file or none: the next start rebuilds. */
    if (!atomic_load(&f->rebuilding)) {
        MDB_envinfo info;
        mdb_env_info(f->env, &info);
        char path[4200];
        dir_file(f, FLASH_SNAPSHOT_NAME, path, sizeof(path));
        if (filter_save(atomic_load(&f->filter), path, (uint64_t)info.me_last_txnid) != TC_OK)
            tc_log(TC_LOG_WARN, "flash: cannot save the filter snapshot: the next start will "
                                "rebuild it");
    }
    return TC_OK;
}

tc_status_e flash_mark_unsafe(struct flash *f, bool unsafe)
{
    char mark[4200];
    dir_file(f, FLASH_UNSAFE_NAME, mark, sizeof(mark));
    int rc = 0;
    if (unsafe) {
        int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            rc = errno;
        else
            close(fd);
    } else if (unlink(mark) != 0 && errno != ENOENT) {
        rc = errno;
    }
    if (rc == 0)
        rc = fsync_path(f->o.dir, O_RDONLY | O_DIRECTORY);
    if (rc != 0) {
        tc_log(TC_LOG_ERROR, "flash: cannot %s %s: %s", unsafe ? "create" : "remove", mark,
               strerror(rc));
        return TC_IO_ERROR;
    }
    return TC_OK;
}

/* ---------------------------------------------------------------------------
 * Readers
 * ------------------------------------------------------------------------- */

tc_status_e flash_reader_create(struct flash *f, struct flash_reader **out)
{
    struct flash_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return TC_NO_MEMORY;
    r->f = f;
    pthread_mutex_lock(&f->readers_lock);
    r->next = f->readers;
    if (f->readers != NULL)
        f->readers->prev = r;
    f->readers = r;
    pthread_mutex_unlock(&f->readers_lock);
    *out = r;
    return TC_OK;
}

void flash_reader_destroy(struct flash_reader **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    struct flash_reader *r = *rp;
    struct flash *f = r->f;
    if (r->cur != NULL)
        mdb_cursor_close(r->cur);
    if (r->txn != NULL)
        mdb_txn_abort(r->txn);
    pthread_mutex_lock(&f->readers_lock);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        f->readers = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&f->readers_lock);
    free(r);
    *rp = NULL;
}

bool flash_maybe(struct flash_reader *r, uint64_t hv)
{
    struct flash *f = r->f;
    /* seq_cst pairs with the writer's exchange-then-read in readers_quiesce(). */
    if (atomic_load_explicit(&f->rebuilding, memory_order_acquire)) {
        /* After a crash, until the writer has rebuilt the filter: ask LMDB. */
        atomic_fetch_add_explicit(&f->bypassed, 1, memory_order_relaxed);
        return true;
    }
    atomic_fetch_add(&r->gen, 1);
    struct filter *flt = atomic_load(&f->filter);
    bool maybe = filter_maybe(flt, hv);
    atomic_fetch_add_explicit(&r->gen, 1, memory_order_release);
    if (!maybe)
        atomic_fetch_add_explicit(&f->negatives, 1, memory_order_relaxed);
    return maybe;
}

tc_status_e flash_reader_begin(struct flash_reader *r, const char *what)
{
    struct flash *f = r->f;
    int rc;
    if (r->txn == NULL) {
        rc = LMDB_CALL(f, mdb_txn_begin(f->env, NULL, MDB_RDONLY, &r->txn));
        if (rc == 0 && (rc = LMDB_CALL(f, mdb_cursor_open(r->txn, f->idx, &r->cur))) != 0) {
            mdb_txn_abort(r->txn);
            r->txn = NULL;
        }
    } else {
        rc = LMDB_CALL(f, mdb_txn_renew(r->txn));
        if (rc == 0 && (rc = LMDB_CALL(f, mdb_cursor_renew(r->txn, r->cur))) != 0)
            mdb_txn_reset(r->txn);
    }
    if (rc != 0)
        return flash_translate(f, rc, what);
    r->open = true;
    return TC_OK;
}

void flash_reader_end(struct flash_reader *r)
{
    if (r->open) {
        mdb_txn_reset(r->txn);
        r->open = false;
    }
}

/* Read the record at `loc` in a transaction. */
tc_status_e flash_read_at(struct flash *f, MDB_txn *txn, uint64_t loc, struct flash_item *it,
                          size_t *size)
{
    uint64_t seq = frec_loc_seq(loc);
    MDB_val k = {sizeof(seq), &seq}, v;
    int rc = LMDB_CALL(f, mdb_get(txn, f->bat, &k, &v));
    if (rc != 0)
        return rc == MDB_NOTFOUND ? TC_NOT_FOUND : flash_translate(f, rc, "reading a batch");
    if (!frec_get(v.mv_data, v.mv_size, frec_loc_off(loc), it, size)) {
        atomic_fetch_add_explicit(&f->errors, 1, memory_order_relaxed);
        TC_LOG_ONCE(TC_LOG_ERROR,
                    "flash: a record does not parse (batch %llu offset %zu): "
                    "treated as a miss",
                    (unsigned long long)seq, frec_loc_off(loc));
        return TC_IO_ERROR;
    }
    return TC_OK;
}

tc_status_e flash_get(struct flash_reader *r, uint64_t hv, const char *key, size_t nkey,
                      struct flash_item *out)
{
    struct flash *f = r->f;
    atomic_fetch_add_explicit(&f->lookups, 1, memory_order_relaxed);
    tc_status_e st = flash_reader_begin(r, "starting a read transaction");
    if (st != TC_OK)
        return st;
    MDB_val k = {sizeof(hv), &hv}, v;
    int rc = LMDB_CALL(f, mdb_cursor_get(r->cur, &k, &v, MDB_SET_KEY));
    while (rc == 0) {
        uint64_t loc;
        memcpy(&loc, v.mv_data, sizeof(loc));
        size_t size;
        st = flash_read_at(f, r->txn, loc, out, &size);
        if (st == TC_OK && out->nkey == nkey && memcmp(out->key, key, nkey) == 0) {
            atomic_fetch_add_explicit(&f->hits, 1, memory_order_relaxed);
            return TC_OK;
        }
        if (st == TC_IO_ERROR)
            break;
        rc = LMDB_CALL(f, mdb_cursor_get(r->cur, &k, &v, MDB_NEXT_DUP));
    }
    if (st != TC_IO_ERROR)
        st = rc == MDB_NOTFOUND ? TC_NOT_FOUND : flash_translate(f, rc, "looking a key up");
    flash_reader_end(r);
    return st;
}

/* ---------------------------------------------------------------------------
 * The writer
 * ------------------------------------------------------------------------- */

bool flash_rebuilding(struct flash *f)
{
    return atomic_load_explicit(&f->rebuilding, memory_order_relaxed);
}

void flash_stats_get(struct flash *f, struct flash_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->items = atomic_load_explicit(&f->s_items, memory_order_relaxed);
    o->live_bytes = atomic_load_explicit(&f->s_bytes, memory_order_relaxed);
    o->used_bytes = atomic_load_explicit(&f->s_used, memory_order_relaxed);
    o->batches = atomic_load_explicit(&f->s_batches, memory_order_relaxed);
    o->map_bytes = f->o.size;
    o->evict_above = f->high;
    char path[4200];
    snprintf(path, sizeof(path), "%s/data.mdb", f->o.dir);
    struct stat st;
    if (stat(path, &st) == 0)
        o->file_bytes = (uint64_t)st.st_blocks * 512;
    /* The filter pointer may be swapped by the writer: read it as a reader would. */
    pthread_mutex_lock(&f->readers_lock);
    struct filter *flt = atomic_load(&f->filter);
    o->filter_items = filter_count(flt);
    o->filter_bytes = filter_bytes(flt);
    pthread_mutex_unlock(&f->readers_lock);
    o->lookups = atomic_load_explicit(&f->lookups, memory_order_relaxed);
    o->hits = atomic_load_explicit(&f->hits, memory_order_relaxed);
    o->filter_negatives = atomic_load_explicit(&f->negatives, memory_order_relaxed);
    o->filter_bypassed = atomic_load_explicit(&f->bypassed, memory_order_relaxed);
    o->filter_rebuilding = atomic_load_explicit(&f->rebuilding, memory_order_relaxed);
    o->writes = atomic_load_explicit(&f->writes, memory_order_relaxed);
    o->deletes = atomic_load_explicit(&f->deletes, memory_order_relaxed);
    o->skipped_clean = atomic_load_explicit(&f->skipped, memory_order_relaxed);
    o->evicted_items = atomic_load_explicit(&f->ev_items, memory_order_relaxed);
    o->evicted_batches = atomic_load_explicit(&f->ev_batches, memory_order_relaxed);
    o->commits = atomic_load_explicit(&f->commits, memory_order_relaxed);
    o->syncs = atomic_load_explicit(&f->syncs, memory_order_relaxed);
    o->errors = atomic_load_explicit(&f->errors, memory_order_relaxed);
}
