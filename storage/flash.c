/*
 * flash.c: the flash tier on LMDB (see flash.h for the on-disk layout).
 *
 * Writing. The writer thread opens a transaction, adds records to an
 * in-memory batch and index entries pointing into it, and at commit
 * appends the batch under the next sequence number (MDB_APPEND: pages are
 * filled completely), evicts the oldest batches if the data passes 90% of
 * the budget, and commits. Filter changes are applied only after a
 * successful commit, so the filter never forgets a key that is on flash.
 * A full map (MDB_MAP_FULL, at a put or at commit) aborts the transaction;
 * the caller makes room with flash_make_room() and retries.
 *
 * Reading. A reader keeps one read-only transaction and one index cursor
 * for its whole life, renewing them for each lookup and resetting them
 * right after, so no reader pins old pages for long.
 *
 * Budget. The map size is the budget, so the data file can never grow past
 * it. "Used" is the pages of every database (from mdb_stat, exact and
 * cheap); eviction keeps it between 85% and 90% of the map, leaving LMDB
 * the free pages its copy-on-write needs.
 *
 * Errors. Every LMDB call goes through LMDB_CALL(), which is also where a
 * test can make the nth call fail. Errors are logged once per site, counted,
 * and returned as TC_IO_ERROR; TC_NO_MEMORY means "map full".
 */
#include "flash.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "filter.h"
#include "hashtable.h"
#include "log.h"

#define BATCH_MAGIC     0x32424354U /* "TCB2" little endian */
#define BATCH_HDR       24
#define LOC_OFFSET_BITS 24
#define BATCH_MAX       ((1U << LOC_OFFSET_BITS) - 1)
#define HIGH_PCT        90
#define LOW_PCT         85
#define FILTER_MIN      65536
#define FILTER_GROWTH   1.12

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
    char path[4096];
    int lock_fd;
    size_t psize;
    _Atomic(struct filter *) filter;
    pthread_mutex_t readers_lock;
    struct flash_reader *readers;

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

    /* statistics */
    _Atomic uint64_t s_items, s_bytes, s_used, s_batches;
    _Atomic uint64_t lookups, hits, negatives, writes, deletes, skipped;
    _Atomic uint64_t ev_items, ev_batches, commits, syncs, errors;

    /* fault injection */
    _Atomic bool fault_armed;
    pthread_mutex_t fault_lock;
    long fault_nth;  /* calls before the first failure */
    long fault_left; /* failures still to give once firing; < 0: forever */
    int fault_err;
    bool fault_firing;
};

/* ---------------------------------------------------------------------------
 * Errors and fault injection
 * ------------------------------------------------------------------------- */

static int fault_hit(struct flash *f)
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

#define LMDB_CALL(f, expr)                                                                         \
    ({                                                                                             \
        int fault_ = fault_hit(f);                                                                 \
        fault_ != 0 ? fault_ : (expr);                                                             \
    })

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

/* Translate an LMDB result; log the first failure of each kind. */
static tc_status_e translate(struct flash *f, int rc, const char *what)
{
    if (rc == 0)
        return TC_OK;
    if (rc == MDB_NOTFOUND)
        return TC_NOT_FOUND;
    if (rc == MDB_MAP_FULL)
        return TC_NO_MEMORY;
    atomic_fetch_add_explicit(&f->errors, 1, memory_order_relaxed);
    TC_LOG_ONCE(TC_LOG_ERROR, "flash: %s failed: %s (further errors are only counted)", what,
                err_text(rc));
    return TC_IO_ERROR;
}

/* ---------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (char)v;
    return n;
}

static bool get_varint(const unsigned char *p, size_t avail, uint64_t *v, size_t *used)
{
    uint64_t r = 0;
    for (size_t i = 0; i < avail && i < 10; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            *v = r;
            *used = i + 1;
            return true;
        }
    }
    return false;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* The fields of a record, as stored relative to its batch's base. */
struct packed {
    uint64_t exp, atime, cas;
};

static struct packed pack(const struct flash_item *it, uint32_t base_time, uint64_t base_cas)
{
    struct packed p;
    p.exp = it->exptime == 0 ? 0 : zigzag((int64_t)it->exptime - base_time) + 1;
    p.atime = zigzag((int64_t)it->atime - base_time);
    p.cas = zigzag((int64_t)(it->cas - base_cas));
    return p;
}

static size_t record_size(const struct flash_item *it, const struct packed *p)
{
    return 1 + varint_len(it->nbytes) + varint_len(it->flags) + varint_len(p->exp) +
           varint_len(p->atime) + varint_len(p->cas) + it->nkey + it->nbytes;
}

static size_t record_put(char *dst, const struct flash_item *it, const struct packed *p)
{
    size_t n = 0;
    dst[n++] = (char)it->nkey;
    n += put_varint(dst + n, it->nbytes);
    n += put_varint(dst + n, it->flags);
    n += put_varint(dst + n, p->exp);
    n += put_varint(dst + n, p->atime);
    n += put_varint(dst + n, p->cas);
    memcpy(dst + n, it->key, it->nkey);
    n += it->nkey;
    memcpy(dst + n, it->value, it->nbytes);
    return n + it->nbytes;
}

/* Parse the record at `off` of a batch of `len` bytes; false if it does not fit. */
static bool record_get(const char *batch, size_t len, size_t off, struct flash_item *it,
                       size_t *size)
{
    if (len < BATCH_HDR || off < BATCH_HDR || off >= len)
        return false;
    uint32_t base_time;
    uint64_t base_cas;
    memcpy(&base_time, batch + 12, 4);
    memcpy(&base_cas, batch + 16, 8);
    const unsigned char *p = (const unsigned char *)batch + off;
    size_t avail = len - off, n = 1, used;
    uint64_t f[5]; /* vlen, flags, exp, atime, cas */
    it->nkey = p[0];
    for (int i = 0; i < 5; i++) {
        if (n >= avail || !get_varint(p + n, avail - n, &f[i], &used))
            return false;
        n += used;
    }
    if (f[0] > UINT32_MAX || f[1] > UINT32_MAX)
        return false;
    it->nbytes = (uint32_t)f[0];
    it->flags = (uint32_t)f[1];
    it->exptime = f[2] == 0 ? 0 : (uint32_t)((int64_t)base_time + unzigzag(f[2] - 1));
    it->atime = (uint32_t)((int64_t)base_time + unzigzag(f[3]));
    it->cas = base_cas + (uint64_t)unzigzag(f[4]);
    if (it->nkey == 0 || avail - n < it->nkey || avail - n - it->nkey < it->nbytes)
        return false;
    it->key = (const char *)p + n;
    it->value = (const char *)p + n + it->nkey;
    *size = n + it->nkey + it->nbytes;
    return true;
}

static inline uint64_t loc_make(uint64_t seq, size_t off)
{
    return seq << LOC_OFFSET_BITS | off;
}

static inline uint64_t loc_seq(uint64_t loc)
{
    return loc >> LOC_OFFSET_BITS;
}

static inline size_t loc_off(uint64_t loc)
{
    return (size_t)(loc & BATCH_MAX);
}

static bool vec_push(struct u64vec *v, uint64_t x)
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

/* ---------------------------------------------------------------------------
 * Open and close
 * ------------------------------------------------------------------------- */

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

static tc_status_e open_failed(struct flash *f, const char *what, int rc)
{
    tc_log(TC_LOG_ERROR, "flash: cannot open %s: %s: %s", f->o.dir, what, err_text(rc));
    return TC_IO_ERROR;
}

tc_status_e flash_open(const struct flash_options *o, struct flash **out)
{
    struct flash *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return TC_NO_MEMORY;
    f->o = *o;
    f->lock_fd = -1;
    pthread_mutex_init(&f->readers_lock, NULL);
    pthread_mutex_init(&f->fault_lock, NULL);
    tc_status_e st = TC_IO_ERROR;
    int rc;

    if ((rc = mkdir_p(o->dir)) != 0) {
        st = open_failed(f, "creating the directory", rc);
        goto fail;
    }
    snprintf(f->path, sizeof(f->path), "%s/tiercached.lock", o->dir);
    f->lock_fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f->lock_fd < 0) {
        st = open_failed(f, "the lock file", errno);
        goto fail;
    }
    if (flock(f->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        st = errno == EWOULDBLOCK ? TC_BUSY : open_failed(f, "locking", errno);
        if (st == TC_BUSY)
            tc_log(TC_LOG_ERROR, "flash: data dir %s is in use by another tiercached", o->dir);
        goto fail;
    }

    if ((rc = mdb_env_create(&f->env)) != 0 || (rc = mdb_env_set_maxdbs(f->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(f->env, (size_t)o->size)) != 0 ||
        (rc = mdb_env_set_maxreaders(f->env, o->max_readers + 8)) != 0) {
        st = open_failed(f, "setting up LMDB", rc);
        goto fail;
    }
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (o->sync != CACHE_FLASH_SYNC_ALWAYS)
        flags |= MDB_NOSYNC;
    if ((rc = mdb_env_open(f->env, o->dir, flags, 0644)) != 0) {
        st = open_failed(f, "mdb_env_open", rc);
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(f->env, &dead);
    MDB_envinfo info;
    mdb_env_info(f->env, &info);
    MDB_stat est;
    mdb_env_stat(f->env, &est);
    f->psize = est.ms_psize;
    if (info.me_mapsize < o->size && (rc = mdb_env_set_mapsize(f->env, (size_t)o->size)) != 0) {
        st = open_failed(f, "resizing the map", rc);
        goto fail;
    }

    MDB_txn *txn;
    if ((rc = mdb_txn_begin(f->env, NULL, 0, &txn)) != 0) {
        st = open_failed(f, "the first transaction", rc);
        goto fail;
    }
    if ((rc =
             mdb_dbi_open(txn, "index",
                          MDB_CREATE | MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
                          &f->idx)) != 0 ||
        (rc = mdb_dbi_open(txn, "batches", MDB_CREATE | MDB_INTEGERKEY, &f->bat)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &f->meta)) != 0 ||
        /* Not yet persistent across restarts: start empty. */
        (rc = mdb_drop(txn, f->idx, 0)) != 0 || (rc = mdb_drop(txn, f->bat, 0)) != 0 ||
        (rc = mdb_drop(txn, f->meta, 0)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        if (rc != 0)
            st = open_failed(f, "the databases", rc);
        goto fail;
    }
    f->seq = 1;

    struct filter *flt;
    uint64_t cap = o->size / 2048 > FILTER_MIN ? o->size / 2048 : FILTER_MIN;
    if (filter_create(cap, &flt) != TC_OK) {
        st = TC_NO_MEMORY;
        goto fail;
    }
    atomic_store(&f->filter, flt);
    f->cap = 1 << 20;
    f->buf = malloc(f->cap);
    if (f->buf == NULL) {
        st = TC_NO_MEMORY;
        goto fail;
    }
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
    atomic_fetch_add(&r->gen, 1);
    struct filter *flt = atomic_load(&f->filter);
    bool maybe = filter_maybe(flt, hv);
    atomic_fetch_add_explicit(&r->gen, 1, memory_order_release);
    if (!maybe)
        atomic_fetch_add_explicit(&f->negatives, 1, memory_order_relaxed);
    return maybe;
}

static tc_status_e reader_begin(struct flash_reader *r)
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
        return translate(f, rc, "starting a read transaction");
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
static tc_status_e read_at(struct flash *f, MDB_txn *txn, uint64_t loc, struct flash_item *it,
                           size_t *size)
{
    uint64_t seq = loc_seq(loc);
    MDB_val k = {sizeof(seq), &seq}, v;
    int rc = LMDB_CALL(f, mdb_get(txn, f->bat, &k, &v));
    if (rc != 0)
        return rc == MDB_NOTFOUND ? TC_NOT_FOUND : translate(f, rc, "reading a batch");
    if (!record_get(v.mv_data, v.mv_size, loc_off(loc), it, size)) {
        atomic_fetch_add_explicit(&f->errors, 1, memory_order_relaxed);
        TC_LOG_ONCE(TC_LOG_ERROR,
                    "flash: a record does not parse (batch %llu offset %zu): "
                    "treated as a miss",
                    (unsigned long long)seq, loc_off(loc));
        return TC_IO_ERROR;
    }
    return TC_OK;
}

tc_status_e flash_get(struct flash_reader *r, uint64_t hv, const char *key, size_t nkey,
                      struct flash_item *out)
{
    struct flash *f = r->f;
    atomic_fetch_add_explicit(&f->lookups, 1, memory_order_relaxed);
    tc_status_e st = reader_begin(r);
    if (st != TC_OK)
        return st;
    MDB_val k = {sizeof(hv), &hv}, v;
    int rc = LMDB_CALL(f, mdb_cursor_get(r->cur, &k, &v, MDB_SET_KEY));
    while (rc == 0) {
        uint64_t loc;
        memcpy(&loc, v.mv_data, sizeof(loc));
        size_t size;
        st = read_at(f, r->txn, loc, out, &size);
        if (st == TC_OK && out->nkey == nkey && memcmp(out->key, key, nkey) == 0) {
            atomic_fetch_add_explicit(&f->hits, 1, memory_order_relaxed);
            return TC_OK;
        }
        if (st == TC_IO_ERROR)
            break;
        rc = LMDB_CALL(f, mdb_cursor_get(r->cur, &k, &v, MDB_NEXT_DUP));
    }
    if (st != TC_IO_ERROR)
        st = rc == MDB_NOTFOUND ? TC_NOT_FOUND : translate(f, rc, "looking a key up");
    flash_reader_end(r);
    return st;
}

/* ---------------------------------------------------------------------------
 * The writer
 * ------------------------------------------------------------------------- */

tc_status_e flash_begin(struct flash *f)
{
    int rc = LMDB_CALL(f, mdb_txn_begin(f->env, NULL, 0, &f->wtxn));
    if (rc == 0 && (rc = LMDB_CALL(f, mdb_cursor_open(f->wtxn, f->idx, &f->wcur))) != 0) {
        mdb_txn_abort(f->wtxn);
        f->wtxn = NULL;
    }
    if (rc != 0) {
        f->wtxn = NULL;
        return translate(f, rc, "starting a write transaction");
    }
    f->seq_begin = f->seq;
    f->len = BATCH_HDR;
    f->nrec = 0;
    f->t_items = f->items;
    f->t_bytes = f->bytes;
    f->fadd.n = f->fdel.n = 0;
    f->nev_begin = f->nev;
    f->evklen_begin = f->evklen;
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
    if (loc_seq(loc) == f->seq) {
        if (!record_get(f->buf, f->len, loc_off(loc), it, size))
            return TC_IO_ERROR;
        return TC_OK;
    }
    return read_at(f, f->wtxn, loc, it, size);
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
    return rc == MDB_NOTFOUND ? TC_NOT_FOUND : translate(f, rc, "looking a key up");
}

static tc_status_e idx_del(struct flash *f, uint64_t hv, uint64_t loc)
{
    MDB_val k = {sizeof(hv), &hv}, v = {sizeof(loc), &loc};
    int rc = LMDB_CALL(f, mdb_del(f->wtxn, f->idx, &k, &v));
    return translate(f, rc, "removing an index entry");
}

/* Append the open batch to the batches database and start the next one. */
static tc_status_e seal(struct flash *f)
{
    if (f->nrec == 0)
        return TC_OK;
    uint32_t magic = BATCH_MAGIC, count = f->nrec;
    memcpy(f->buf, &magic, 4);
    memcpy(f->buf + 4, &count, 4);
    memcpy(f->buf + 12, &f->base_time, 4);
    memcpy(f->buf + 16, &f->base_cas, 8);
    uint32_t crc = tc_crc32c(0, f->buf + 12, f->len - 12);
    memcpy(f->buf + 8, &crc, 4);
    uint64_t seq = f->seq;
    MDB_val k = {sizeof(seq), &seq}, v = {f->len, f->buf};
    int rc = LMDB_CALL(f, mdb_put(f->wtxn, f->bat, &k, &v, MDB_APPEND));
    if (rc != 0)
        return translate(f, rc, "appending a batch");
    f->seq++;
    f->len = BATCH_HDR;
    f->nrec = 0;
    return TC_OK;
}

tc_status_e flash_write(struct flash *f, uint64_t hv, const struct flash_item *it, bool *skipped)
{
    *skipped = false;
    if (it->nbytes > FLASH_VALUE_MAX || it->nkey == 0 || it->nkey > 255)
        return TC_TOO_LARGE;
    if (f->nrec == 0) {
        f->base_time = it->atime;
        f->base_cas = it->cas;
    }
    struct packed pk = pack(it, f->base_time, f->base_cas);
    size_t size = record_size(it, &pk);
    if (f->len + size > BATCH_MAX) {
        tc_status_e st = seal(f);
        if (st != TC_OK)
            return st;
        f->base_time = it->atime;
        f->base_cas = it->cas;
        pk = pack(it, f->base_time, f->base_cas);
        size = record_size(it, &pk);
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
        if (rec.cas == it->cas) {
            *skipped = true;
            atomic_fetch_add_explicit(&f->skipped, 1, memory_order_relaxed);
            return TC_OK;
        }
        if ((st = idx_del(f, hv, old)) != TC_OK)
            return st;
        f->t_bytes -= old_size;
    } else if (st == TC_NOT_FOUND) {
        if (!vec_push(&f->fadd, hv))
            return TC_IO_ERROR;
        f->t_items++;
    } else {
        return st;
    }

    uint64_t loc = loc_make(f->seq, f->len);
    record_put(f->buf + f->len, it, &pk);
    f->len += size;
    f->nrec++;
    MDB_val k = {sizeof(hv), &hv}, v = {sizeof(loc), &loc};
    int rc = LMDB_CALL(f, mdb_put(f->wtxn, f->idx, &k, &v, 0));
    if (rc != 0)
        return translate(f, rc, "adding an index entry");
    f->t_bytes += size;
    atomic_fetch_add_explicit(&f->writes, 1, memory_order_relaxed);
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
    if (!vec_push(&f->fdel, hv))
        return TC_IO_ERROR;
    f->t_items--;
    f->t_bytes -= size;
    atomic_fetch_add_explicit(&f->deletes, 1, memory_order_relaxed);
    return TC_OK;
}

/* Pages used by every database, in bytes, as the write transaction sees them. */
static uint64_t used_bytes(struct flash *f, MDB_txn *txn)
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
        return translate(f, rc, "opening a batch cursor");
    MDB_val k, v;
    rc = LMDB_CALL(f, mdb_cursor_get(c, &k, &v, MDB_FIRST));
    tc_status_e st = translate(f, rc, "finding the oldest batch");
    uint64_t seq = 0;
    if (st == TC_OK) {
        memcpy(&seq, k.mv_data, sizeof(seq));
        if (seq >= f->seq_begin)
            st = TC_NOT_FOUND;
    }
    if (st == TC_OK) {
        /* The batch is in the map and stays valid until we delete it. */
        const char *b = v.mv_data;
        size_t len = v.mv_size, off = BATCH_HDR, size;
        struct flash_item rec;
        while (st == TC_OK && off < len && record_get(b, len, off, &rec, &size)) {
            uint64_t hv = ht_hash(rec.key, rec.nkey);
            uint64_t loc = loc_make(seq, off);
            MDB_val ik = {sizeof(hv), &hv}, iv = {sizeof(loc), &loc};
            rc = LMDB_CALL(f, mdb_del(f->wtxn, f->idx, &ik, &iv));
            if (rc == 0) {
                f->t_items--;
                f->t_bytes -= size;
                if (!vec_push(&f->fdel, hv) || !remember_evicted(f, hv, &rec))
                    st = TC_IO_ERROR;
                atomic_fetch_add_explicit(&f->ev_items, 1, memory_order_relaxed);
            } else if (rc != MDB_NOTFOUND) {
                st = translate(f, rc, "removing an evicted index entry"); /* superseded: fine */
            }
            off += size;
        }
        if (st == TC_OK) {
            rc = LMDB_CALL(f, mdb_cursor_del(c, 0));
            st = translate(f, rc, "dropping a batch");
            if (st == TC_OK)
                atomic_fetch_add_explicit(&f->ev_batches, 1, memory_order_relaxed);
        }
    }
    mdb_cursor_close(c);
    return st;
}

/* Evict until at most `pct`% of the budget is used. */
static tc_status_e evict_to(struct flash *f, unsigned pct)
{
    uint64_t target = f->o.size / 100 * pct;
    while (used_bytes(f, f->wtxn) > target) {
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
        MDB_cursor *c;
        int rc = LMDB_CALL(f, mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn));
        if (rc != 0) {
            filter_destroy(&nf);
            return translate(f, rc, "starting a filter rebuild");
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
        mdb_txn_abort(txn); /* also closes the cursor */
        if (!ok) {
            filter_destroy(&nf);
            if (rc != 0 && rc != MDB_NOTFOUND)
                return translate(f, rc, "rebuilding the filter");
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
static void filter_apply(struct flash *f)
{
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

static void publish(struct flash *f, MDB_txn *txn)
{
    atomic_store_explicit(&f->s_items, f->items, memory_order_relaxed);
    atomic_store_explicit(&f->s_bytes, f->bytes, memory_order_relaxed);
    if (txn != NULL) {
        atomic_store_explicit(&f->s_used, used_bytes(f, txn), memory_order_relaxed);
        MDB_stat st;
        if (mdb_stat(txn, f->bat, &st) == 0)
            atomic_store_explicit(&f->s_batches, st.ms_entries, memory_order_relaxed);
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
    uint64_t live[2] = {f->t_items, f->t_bytes};
    MDB_val k = {4, "live"}, v = {sizeof(live), live};
    int rc = LMDB_CALL(f, mdb_put(f->wtxn, f->meta, &k, &v, 0));
    if (rc == 0)
        publish(f, f->wtxn);
    if (rc == 0)
        rc = LMDB_CALL(f, mdb_txn_commit(f->wtxn));
    else
        mdb_txn_abort(f->wtxn);
    f->wtxn = NULL;
    f->wcur = NULL;
    if (rc != 0) {
        f->seq = f->seq_begin;
        f->nev = f->nev_begin;
        f->evklen = f->evklen_begin;
        return translate(f, rc, "committing");
    }
    f->items = f->t_items;
    f->bytes = f->t_bytes;
    publish(f, NULL);
    atomic_fetch_add_explicit(&f->commits, 1, memory_order_relaxed);
    if (f->o.sync == CACHE_FLASH_SYNC_ALWAYS)
        atomic_fetch_add_explicit(&f->syncs, 1, memory_order_relaxed);
    filter_apply(f);
    return TC_OK;
}

tc_status_e flash_commit(struct flash *f)
{
    tc_status_e st = seal(f);
    if (st == TC_OK && used_bytes(f, f->wtxn) > f->o.size / 100 * HIGH_PCT)
        st = evict_to(f, LOW_PCT);
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
    uint64_t target = f->o.size / 100 * (100 - pct);
    while (st == TC_OK && used_bytes(f, f->wtxn) > target)
        st = evict_oldest(f);
    f->seq_begin = f->seq;
    if (st != TC_OK && st != TC_NOT_FOUND) {
        flash_abort(f);
        return st;
    }
    return commit(f);
}

tc_status_e flash_sync(struct flash *f)
{
    int rc = LMDB_CALL(f, mdb_env_sync(f->env, 1));
    if (rc == 0)
        atomic_fetch_add_explicit(&f->syncs, 1, memory_order_relaxed);
    return translate(f, rc, "syncing");
}

void flash_stats_get(struct flash *f, struct flash_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->items = atomic_load_explicit(&f->s_items, memory_order_relaxed);
    o->live_bytes = atomic_load_explicit(&f->s_bytes, memory_order_relaxed);
    o->used_bytes = atomic_load_explicit(&f->s_used, memory_order_relaxed);
    o->batches = atomic_load_explicit(&f->s_batches, memory_order_relaxed);
    o->map_bytes = f->o.size;
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
    o->writes = atomic_load_explicit(&f->writes, memory_order_relaxed);
    o->deletes = atomic_load_explicit(&f->deletes, memory_order_relaxed);
    o->skipped_clean = atomic_load_explicit(&f->skipped, memory_order_relaxed);
    o->evicted_items = atomic_load_explicit(&f->ev_items, memory_order_relaxed);
    o->evicted_batches = atomic_load_explicit(&f->ev_batches, memory_order_relaxed);
    o->commits = atomic_load_explicit(&f->commits, memory_order_relaxed);
    o->syncs = atomic_load_explicit(&f->syncs, memory_order_relaxed);
    o->errors = atomic_load_explicit(&f->errors, memory_order_relaxed);
}
