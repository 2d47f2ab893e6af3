/*
 * datadir.c: a stopped tiercached's data dir, read without a server (see
 * include/tiercache/datadir.h; used by tiercache-inspect and
 * tiercache-dump --data-dir).
 *
 * Locking. A server holds an exclusive flock on DIR/tiercached.lock for as
 * long as it runs (flash.c, take_lock). We take the same lock shared and
 * without waiting: it fails while a server runs (TC_BUSY), and a server
 * that starts while we read fails to take its exclusive lock and says the
 * dir is in use. Several readers may share a dir. The lock file is created
 * (empty, as a server would) if it is missing, so that this holds for a
 * copied dir too; on a read-only file system, where no server can write
 * either, we read without it.
 *
 * LMDB. With the flock held nobody writes the environment, so it is opened
 * MDB_RDONLY | MDB_NOLOCK: lock.mdb is neither read nor created, and no
 * reader slot is taken. The map is the data file's size; the file must hold
 * every page the last meta page names (else a read would run off its end:
 * SIGBUS), which is checked first, as the server does. One read
 * transaction lasts as long as the handle: no writer can be waiting on it.
 * Nothing is ever written, and a damaged dir is reported, never moved.
 *
 * Time. The engine's clock (cache_time_t, storage/cache.c wall_now) is
 * plain unix seconds, and records store their expiry and last-use time
 * (atime) in it, as absolute values (batch-relative only in their
 * encoding, which frec_get undoes). So a record's exptime is already unix
 * time, a batch's base time (its first record's atime) dates the batch,
 * and the state record's delayed flush time (flush_at) and shutdown time
 * are unix seconds too. A test engine with a manual clock writes its own
 * notion of "now" there: pass the same notion as `now` to the walk.
 *
 * Liveness, as the engine decides it (cache_record_is_dead): a record is
 * the key's current version iff the index entry hash(key) holds its very
 * location (older versions stay in their batch until it is evicted); it is
 * flushed if its CAS is below the flush boundary, or if a delayed flush is
 * due (now >= flush_at) and the record was last used at or before flush_at;
 * it is expired if its exptime is nonzero and <= now.
 *
 * Memory: the batches are read in place from the map, one at a time; the
 * walk allocates nothing per item.
 */
#include <tiercache/datadir.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "flash_internal.h"
#include "flash_record.h"
#include "hashtable.h"

struct tc_datadir {
    char dir[4096];
    int lock_fd; /* holds the shared flock; -1 on a read-only file system */
    MDB_env *env;
    MDB_txn *txn; /* read-only, for the handle's life */
    MDB_dbi idx, bat, meta;
    struct flash_state_rec state;
    bool deletes_pending;
    uint64_t file_bytes;
};

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *lmdb_text(int rc)
{
    return rc > 0 && rc < 200 ? strerror(rc) : mdb_strerror(rc);
}

/* Take the data dir's lock, shared. TC_OK, TC_BUSY, TC_NOT_FOUND, TC_IO_ERROR. */
static tc_status_e lock_dir(struct tc_datadir *d, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", d->dir, FLASH_LOCK_NAME);
    d->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (d->lock_fd < 0 && errno == ENOENT) {
        /* Never a server here: make the lock file only if there is data to guard. */
        char data[4200];
        snprintf(data, sizeof(data), "%s/%s", d->dir, FLASH_DATA_NAME);
        if (access(data, F_OK) != 0) {
            say(err, errlen, "%s: no data (no %s)", d->dir, FLASH_DATA_NAME);
            return TC_NOT_FOUND;
        }
        d->lock_fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    }
    if (d->lock_fd < 0) {
        if (errno == EROFS)
            return TC_OK; /* no server can write here either */
        if (errno == ENOENT || errno == ENOTDIR) {
            say(err, errlen, "%s: no such data dir", d->dir);
            return TC_NOT_FOUND;
        }
        say(err, errlen, "%s: cannot open the lock file: %s", path, strerror(errno));
        return TC_IO_ERROR;
    }
    if (flock(d->lock_fd, LOCK_SH | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            say(err, errlen, "%s is in use by a running tiercached (pid unknown)", d->dir);
            return TC_BUSY;
        }
        say(err, errlen, "%s: cannot lock %s: %s", d->dir, path, strerror(errno));
        return TC_IO_ERROR;
    }
    return TC_OK;
}

/* Open the environment read-only and check it holds every page it names. */
static tc_status_e open_env(struct tc_datadir *d, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", d->dir, FLASH_DATA_NAME);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            say(err, errlen, "%s: no data (no %s)", d->dir, FLASH_DATA_NAME);
            return TC_NOT_FOUND;
        }
        say(err, errlen, "%s: %s", path, strerror(errno));
        return TC_IO_ERROR;
    }
    if (!S_ISREG(st.st_mode)) {
        say(err, errlen, "%s is not a regular file: not a tiercache data dir", path);
        return TC_INVALID;
    }
    if (st.st_size == 0) {
        say(err, errlen, "%s: no data (%s is empty)", d->dir, FLASH_DATA_NAME);
        return TC_NOT_FOUND;
    }
    d->file_bytes = (uint64_t)st.st_size;
    int rc = mdb_env_create(&d->env);
    if (rc == 0 && (rc = mdb_env_set_maxdbs(d->env, 4)) == 0)
        rc = mdb_env_set_mapsize(d->env, (size_t)st.st_size);
    if (rc != 0) {
        say(err, errlen, "%s: cannot set up LMDB: %s", d->dir, lmdb_text(rc));
        return TC_IO_ERROR;
    }
    rc = mdb_env_open(d->env, d->dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS | MDB_NORDAHEAD, 0644);
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED ||
        rc == MDB_PAGE_NOTFOUND || rc == EINVAL || rc == ENOENT) {
        say(err, errlen, "%s is not a tiercache data dir (LMDB cannot open %s: %s)", d->dir, path,
            lmdb_text(rc));
        return TC_INVALID;
    }
    if (rc != 0) {
        say(err, errlen, "%s: cannot open %s: %s", d->dir, path, lmdb_text(rc));
        return TC_IO_ERROR;
    }
    MDB_envinfo info;
    MDB_stat est;
    if ((rc = mdb_env_info(d->env, &info)) != 0 || (rc = mdb_env_stat(d->env, &est)) != 0) {
        say(err, errlen, "%s: cannot read LMDB's meta page: %s", path, lmdb_text(rc));
        return TC_IO_ERROR;
    }
    if ((uint64_t)(info.me_last_pgno + 1) * est.ms_psize > (uint64_t)st.st_size) {
        say(err, errlen, "%s is damaged: %s is truncated (%llu bytes, its last page ends at %llu)",
            d->dir, path, (unsigned long long)st.st_size,
            (unsigned long long)(info.me_last_pgno + 1) * est.ms_psize);
        return TC_INVALID;
    }
    return TC_OK;
}

/* Open our three databases and read the state record (see open_dbs in flash.c). */
static tc_status_e open_dbs(struct tc_datadir *d, char *err, size_t errlen)
{
    int rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &d->txn);
    if (rc != 0) {
        say(err, errlen, "%s: cannot start a read transaction: %s", d->dir, lmdb_text(rc));
        return TC_IO_ERROR;
    }
    MDB_dbi main;
    MDB_stat ms;
    if ((rc = mdb_dbi_open(d->txn, NULL, 0, &main)) != 0 ||
        (rc = mdb_stat(d->txn, main, &ms)) != 0) {
        say(err, errlen, "%s: cannot read LMDB's main database: %s", d->dir, lmdb_text(rc));
        return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ? TC_INVALID : TC_IO_ERROR;
    }
    if (ms.ms_entries == 0) {
        say(err, errlen, "%s: no data (the environment is empty)", d->dir);
        return TC_NOT_FOUND;
    }
    int r1 = mdb_dbi_open(d->txn, "index",
                          MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, &d->idx);
    int r2 = mdb_dbi_open(d->txn, "batches", MDB_INTEGERKEY, &d->bat);
    int r3 = mdb_dbi_open(d->txn, "meta", 0, &d->meta);
    if (r1 != 0 || r2 != 0 || r3 != 0 || ms.ms_entries > 3) {
        say(err, errlen, "%s is not a tiercache data dir (its databases are not ours)", d->dir);
        return TC_INVALID;
    }
    MDB_val k = {5, "state"}, v;
    rc = mdb_get(d->txn, d->meta, &k, &v);
    if (rc != 0 || v.mv_size != sizeof(d->state)) {
        say(err, errlen, "%s is not a tiercache data dir (no valid state record)", d->dir);
        return rc == 0 || rc == MDB_NOTFOUND ? TC_INVALID : TC_IO_ERROR;
    }
    memcpy(&d->state, v.mv_data, sizeof(d->state));
    uint32_t crc = tc_crc32c(0, &d->state, offsetof(struct flash_state_rec, crc));
    if (d->state.magic != FLASH_STATE_MAGIC || d->state.crc != crc) {
        say(err, errlen, "%s is damaged: its state record fails its checksum", d->dir);
        return TC_INVALID;
    }
    if (d->state.format != FLASH_FORMAT) {
        say(err, errlen, "%s is of format version %u; this build reads version %u", d->dir,
            d->state.format, FLASH_FORMAT);
        return TC_INVALID;
    }
    return TC_OK;
}

tc_status_e tc_datadir_open(const char *dir, struct tc_datadir **out, char *err, size_t errlen)
{
    *out = NULL;
    say(err, errlen, "%s", "");
    if (dir == NULL || dir[0] == '\0') {
        say(err, errlen, "no data dir given");
        return TC_INVALID;
    }
    struct tc_datadir *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        say(err, errlen, "%s: out of memory", dir);
        return TC_NO_MEMORY;
    }
    d->lock_fd = -1;
    if (strlen(dir) >= sizeof(d->dir) - 64) {
        say(err, errlen, "%.64s...: path too long", dir);
        free(d);
        return TC_INVALID;
    }
    strcpy(d->dir, dir);
    struct stat st;
    tc_status_e s = TC_OK;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        say(err, errlen, "%s: no such data dir", dir);
        s = TC_NOT_FOUND;
    }
    if (s == TC_OK)
        s = lock_dir(d, err, errlen);
    if (s == TC_OK)
        s = open_env(d, err, errlen);
    if (s == TC_OK)
        s = open_dbs(d, err, errlen);
    if (s != TC_OK) {
        tc_datadir_close(&d);
        return s;
    }
    char mark[4200];
    snprintf(mark, sizeof(mark), "%s/%s", dir, FLASH_UNSAFE_NAME);
    d->deletes_pending = access(mark, F_OK) == 0;
    *out = d;
    return TC_OK;
}

void tc_datadir_close(struct tc_datadir **dp)
{
    if (dp == NULL || *dp == NULL)
        return;
    struct tc_datadir *d = *dp;
    if (d->txn != NULL)
        mdb_txn_abort(d->txn);
    if (d->env != NULL)
        mdb_env_close(d->env);
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* releases the flock */
    free(d);
    *dp = NULL;
}

/* ---------------------------------------------------------------------------
 * Facts
 * ------------------------------------------------------------------------- */

/* The base time of the batch at one end of the log, 0 if none or unreadable. */
static uint64_t batch_time(struct tc_datadir *d, MDB_cursor_op where)
{
    MDB_cursor *c;
    if (mdb_cursor_open(d->txn, d->bat, &c) != 0)
        return 0;
    MDB_val k, v;
    uint32_t t = 0;
    if (mdb_cursor_get(c, &k, &v, where) == 0 && v.mv_size >= FREC_BATCH_HDR)
        memcpy(&t, (const char *)v.mv_data + 12, 4);
    mdb_cursor_close(c);
    return t;
}

/* Blocks taken by the regular files of the dir (data.mdb may be sparse). */
static uint64_t disk_bytes(const char *dir)
{
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        struct stat st;
        if (fstatat(dirfd(dh), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512;
    }
    closedir(dh);
    return total;
}

void tc_datadir_info(struct tc_datadir *d, struct tc_datadir_info *out)
{
    memset(out, 0, sizeof(*out));
    const struct flash_state_rec *s = &d->state;
    out->format_version = s->format;
    out->clean = s->clean == 1;
    out->deletes_pending = d->deletes_pending;
    out->items = s->items;
    out->bytes = s->bytes;
    out->cas_high = s->cas_lease;
    out->flush_cas = s->flush_cas;
    out->flush_at = s->flush_at;
    out->stopped_at = out->clean ? s->shutdown_time : 0;
    MDB_stat st;
    if (mdb_stat(d->txn, d->bat, &st) == 0)
        out->batches = st.ms_entries;
    out->oldest = batch_time(d, MDB_FIRST);
    out->newest = batch_time(d, MDB_LAST);
    out->file_bytes = d->file_bytes;
    out->disk_bytes = disk_bytes(d->dir);
}

/* ---------------------------------------------------------------------------
 * Walking the batches
 * ------------------------------------------------------------------------- */

/* Whether the index's entry for the record's key holds this location. */
static int is_current(MDB_cursor *ic, const struct flash_item *rec, uint64_t loc, bool *current)
{
    uint64_t hv = ht_hash(rec->key, rec->nkey);
    MDB_val k = {sizeof(hv), &hv}, v = {sizeof(loc), &loc};
    int rc = mdb_cursor_get(ic, &k, &v, MDB_GET_BOTH);
    *current = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static bool is_dead(const struct flash_state_rec *s, const struct flash_item *rec, uint64_t now)
{
    if (rec->exptime != 0 && rec->exptime <= now)
        return true;
    if (rec->cas < s->flush_cas)
        return true;
    return s->flush_at != 0 && now >= s->flush_at && rec->atime <= s->flush_at;
}

/*
 * Called for every record of a batch that checks out; return false to stop.
 * `current`: the index points at it.
 */
typedef bool (*record_fn)(void *arg, const struct flash_item *rec, bool current);

/*
 * Go through the batches in seq order. A batch that fails its check, or
 * whose records do not parse, is reported through on_bad (which returns
 * false to stop there) with a description. Returns 0 or an LMDB error.
 */
struct batch_walk {
    struct tc_datadir *d;
    record_fn on_record;
    bool (*on_bad)(void *arg, bool whole_batch, const char *what);
    void *arg;
    uint64_t batches;
};

static int walk_batches(struct batch_walk *w)
{
    struct tc_datadir *d = w->d;
    MDB_cursor *bc, *ic;
    int rc = mdb_cursor_open(d->txn, d->bat, &bc);
    if (rc != 0)
        return rc;
    if ((rc = mdb_cursor_open(d->txn, d->idx, &ic)) != 0) {
        mdb_cursor_close(bc);
        return rc;
    }
    MDB_val k, v;
    bool go = true;
    char what[200];
    for (rc = mdb_cursor_get(bc, &k, &v, MDB_FIRST); go && rc == 0;
         rc = mdb_cursor_get(bc, &k, &v, MDB_NEXT)) {
        uint64_t seq = 0;
        if (k.mv_size == sizeof(seq))
            memcpy(&seq, k.mv_data, sizeof(seq));
        w->batches++;
        const char *b = v.mv_data;
        uint32_t count;
        if (k.mv_size != sizeof(seq) || !frec_batch_check(b, v.mv_size, &count)) {
            snprintf(what, sizeof(what), "batch %llu (%zu bytes): wrong magic or checksum",
                     (unsigned long long)seq, v.mv_size);
            go = w->on_bad(w->arg, true, what);
            continue;
        }
        size_t off = FREC_BATCH_HDR, size;
        uint32_t n = 0;
        struct flash_item rec;
        while (go && off < v.mv_size) {
            if (!frec_get(b, v.mv_size, off, &rec, &size)) {
                snprintf(what, sizeof(what), "batch %llu, record %u at offset %zu does not parse",
                         (unsigned long long)seq, n + 1, off);
                go = w->on_bad(w->arg, false, what);
                break;
            }
            bool current;
            if ((rc = is_current(ic, &rec, frec_loc(seq, off), &current)) != 0)
                goto out;
            go = w->on_record(w->arg, &rec, current);
            off += size;
            n++;
        }
        if (go && off >= v.mv_size && n != count) {
            snprintf(what, sizeof(what), "batch %llu holds %u records, its header says %u",
                     (unsigned long long)seq, n, count);
            go = w->on_bad(w->arg, false, what);
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(ic);
    mdb_cursor_close(bc);
    return rc;
}

struct walk_state {
    const struct flash_state_rec *s;
    uint64_t now;
    tc_datadir_item_fn cb;
    void *arg;
    char bad[256];
};

static bool walk_record(void *arg, const struct flash_item *rec, bool current)
{
    struct walk_state *ws = arg;
    if (!current || is_dead(ws->s, rec, ws->now))
        return true;
    struct tc_dump_item it = {
        .key = rec->key,
        .nkey = rec->nkey,
        .value = rec->value,
        .nbytes = rec->nbytes,
        .flags = rec->flags,
        .exptime = rec->exptime,
        .cas = rec->cas,
    };
    return ws->cb(ws->arg, &it);
}

static bool walk_bad(void *arg, bool whole_batch, const char *what)
{
    (void)whole_batch;
    struct walk_state *ws = arg;
    snprintf(ws->bad, sizeof(ws->bad), "%s", what);
    return false;
}

tc_status_e tc_datadir_walk(struct tc_datadir *d, uint64_t now, tc_datadir_item_fn cb, void *arg,
                            char *err, size_t errlen)
{
    say(err, errlen, "%s", "");
    struct walk_state ws = {.s = &d->state, .now = now, .cb = cb, .arg = arg};
    struct batch_walk w = {.d = d, .on_record = walk_record, .on_bad = walk_bad, .arg = &ws};
    int rc = walk_batches(&w);
    if (rc != 0) {
        say(err, errlen, "%s: reading the batches failed: %s", d->dir, lmdb_text(rc));
        return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ? TC_INVALID : TC_IO_ERROR;
    }
    if (ws.bad[0] != '\0') {
        say(err, errlen, "%s is damaged: %s", d->dir, ws.bad);
        return TC_INVALID;
    }
    return TC_OK;
}

/* ---------------------------------------------------------------------------
 * The full check
 * ------------------------------------------------------------------------- */

static void problem(struct tc_datadir_check *c, const char *what)
{
    if (c->first_problem[0] == '\0')
        snprintf(c->first_problem, sizeof(c->first_problem), "%s", what);
}

static bool check_record(void *arg, const struct flash_item *rec, bool current)
{
    (void)rec;
    struct tc_datadir_check *c = arg;
    c->records++;
    if (current)
        c->live++;
    else
        c->superseded++;
    return true;
}

static bool check_bad(void *arg, bool whole_batch, const char *what)
{
    struct tc_datadir_check *c = arg;
    if (whole_batch)
        c->bad_batches++;
    else
        c->bad_records++;
    problem(c, what);
    return true;
}

/*
 * Every index entry must name a record of its key. Those in batches that
 * check out were counted live by the batch pass (a location holds one
 * record, whose key has one hash), so entries beyond that count are bad;
 * this pass finds which, for the description, and counts entries when the
 * batch pass could not vouch for them.
 */
static int check_index(struct tc_datadir *d, struct tc_datadir_check *c)
{
    MDB_stat st;
    int rc = mdb_stat(d->txn, d->idx, &st);
    if (rc != 0)
        return rc;
    if (st.ms_entries <= c->live)
        return 0;
    c->bad_index = st.ms_entries - c->live;
    if (c->first_problem[0] != '\0')
        return 0;
    MDB_cursor *ic;
    if ((rc = mdb_cursor_open(d->txn, d->idx, &ic)) != 0)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(ic, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(ic, &k, &v, MDB_NEXT)) {
        uint64_t hv, loc;
        memcpy(&hv, k.mv_data, sizeof(hv));
        memcpy(&loc, v.mv_data, sizeof(loc));
        uint64_t seq = frec_loc_seq(loc);
        MDB_val bk = {sizeof(seq), &seq}, bv;
        struct flash_item rec;
        size_t size;
        const char *why = NULL;
        int r = mdb_get(d->txn, d->bat, &bk, &bv);
        if (r == MDB_NOTFOUND)
            why = "its batch is not there";
        else if (r != 0) {
            rc = r;
            break;
        } else if (!frec_get(bv.mv_data, bv.mv_size, frec_loc_off(loc), &rec, &size))
            why = "no record parses there";
        else if (ht_hash(rec.key, rec.nkey) != hv)
            why = "the record there has another key";
        if (why != NULL) {
            char what[200];
            snprintf(what, sizeof(what), "index entry %016llx -> batch %llu offset %zu: %s",
                     (unsigned long long)hv, (unsigned long long)seq, frec_loc_off(loc), why);
            problem(c, what);
            break;
        }
    }
    mdb_cursor_close(ic);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (c->first_problem[0] == '\0')
        problem(c, "index entries point into damaged batches or between records");
    return 0;
}

tc_status_e tc_datadir_check(struct tc_datadir *d, struct tc_datadir_check *out)
{
    memset(out, 0, sizeof(*out));
    struct batch_walk w = {.d = d, .on_record = check_record, .on_bad = check_bad, .arg = out};
    int rc = walk_batches(&w);
    out->batches = w.batches;
    if (rc == 0)
        rc = check_index(d, out);
    if (rc != 0) {
        char what[200];
        snprintf(what, sizeof(what), "reading the data failed: %s", lmdb_text(rc));
        problem(out, what);
        return TC_IO_ERROR;
    }
    return TC_OK;
}
