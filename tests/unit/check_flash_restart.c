/*
 * check_flash_restart.c: the flash store across restarts (part of the
 * check_flash executable; see check_flash.h): what the next open finds after
 * a clean or an unclean stop, the filter snapshot and the background
 * rebuild, the engine state record, damaged or foreign directories moved
 * aside; and the record format itself (flash_record.h, pure functions).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_flash.h"
#include "crc32c.h"
#include "flash_internal.h" /* the state record's layout, to damage it on purpose */
#include "flash_record.h"
#include "hashtable.h"

/* ---------------------------------------------------------------------------
 * Restarts: what the next open finds
 * ------------------------------------------------------------------------- */

static struct flash_state state_now(void)
{
    struct flash_state st;
    flash_state_get(F, &st);
    return st;
}

/* Close F (without recording a clean stop unless asked) and open DIR_ again. */
static void reopen(bool clean)
{
    flash_reader_destroy(&R);
    if (clean)
        ck_assert_int_eq(flash_mark_clean(F), TC_OK);
    flash_close(&F);
    ck_assert_int_eq(open_at(DIR_, SIZE_, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
}

/* Rebuild the filter to the end, `budget` keys a step. */
static void finish_rebuild(size_t budget)
{
    int steps = 0;
    while (flash_rebuild_step(F, budget))
        ck_assert_msg(++steps < 100000, "the filter rebuild does not end");
    ck_assert(!flash_rebuilding(F));
    ck_assert(!stats().filter_rebuilding);
}

/* Every live record reads back and is in the filter; every dead one is
 * gone. Returns how many are live. */
static uint64_t check_all(const struct rec *rs, const bool *live, int n)
{
    uint64_t nlive = 0;
    for (int k = 0; k < n; k++) {
        if (live[k]) {
            nlive++;
            const char *why = differs(R, &rs[k]);
            ck_assert_msg(why == NULL, "%s", why);
            ck_assert_msg(flash_maybe(R, rs[k].hv), "'%s' is on flash but not in the filter",
                          rs[k].key);
        } else {
            ck_gone(&rs[k]);
        }
    }
    return nlive;
}

/* How many of n absent keys the filter answers "maybe" for. */
static int absent_maybes(int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "never-written:%d", i);
        m += flash_maybe(R, ht_hash(key, strlen(key)));
    }
    return m;
}

START_TEST(test_fresh_state)
{
    struct flash_state st = state_now();
    ck_assert(st.fresh);
    ck_assert(!st.moved_aside);
    ck_assert(st.filter_loaded);
    ck_assert_uint_eq(st.items, 0);
    ck_assert(!flash_rebuilding(F));
    ck_assert(!flash_rebuild_step(F, 10)); /* nothing to rebuild */
    /* A directory that was opened once and closed empty is not fresh. */
    reopen(false);
    st = state_now();
    ck_assert(!st.fresh);
    ck_assert(!st.moved_aside);
    ck_assert(!st.clean);
    ck_assert(st.filter_loaded); /* no items: nothing to rebuild */
    ck_assert(!flash_rebuilding(F));
}
END_TEST

enum { RS_N = 900 };

/* 3 batches of 300, then 100 deleted and 50 overwritten: returns the records. */
static struct rec *restart_data(bool *live)
{
    struct rec *rs = calloc(RS_N, sizeof(*rs));
    for (int b = 0; b < 3; b++) {
        ck_assert_int_eq(flash_begin(F), TC_OK);
        for (int i = 0; i < 300; i++) {
            int k = b * 300 + i;
            char key[32];
            snprintf(key, sizeof(key), "restart:%d", k);
            rs[k] = mk(key, (uint32_t)(10 + k % 300));
            rs[k].exptime = k % 3 == 0 ? 0 : 1800000000u + (uint32_t)k;
            ck_assert_int_eq(write_rec(&rs[k], NULL), TC_OK);
            live[k] = true;
        }
        ck_assert_int_eq(flash_commit(F), TC_OK);
    }
    ck_assert_int_eq(flash_begin(F), TC_OK);
    for (int k = 0; k < RS_N; k += 9) {
        ck_assert_int_eq(flash_delete(F, rs[k].hv, rs[k].key, rs[k].nkey), TC_OK);
        live[k] = false;
    }
    for (int k = 1; k < RS_N; k += 18) {
        rs[k].cas = next_cas++;
        rs[k].vseed = rs[k].cas;
        ck_assert_int_eq(write_rec(&rs[k], NULL), TC_OK);
    }
    ck_assert_int_eq(flash_commit(F), TC_OK);
    return rs;
}

START_TEST(test_restart_unclean)
{
    bool live[RS_N];
    struct rec *rs = restart_data(live);
    struct flash_stats before = stats();
    reopen(false);

    struct flash_state st = state_now();
    ck_assert(!st.fresh);
    ck_assert(!st.clean);
    ck_assert(!st.moved_aside);
    ck_assert(!st.filter_loaded);
    ck_assert_uint_eq(st.items, before.items);
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, before.items);
    ck_assert_uint_eq(s.live_bytes, before.live_bytes);
    ck_assert_uint_eq(s.batches, before.batches);

    /* Until the filter is rebuilt every lookup goes to LMDB: correct, slower. */
    ck_assert(flash_rebuilding(F));
    ck_assert_int_eq(absent_maybes(100), 100);
    ck_assert_uint_ge(stats().filter_bypassed, 100);
    ck_assert_uint_eq(check_all(rs, live, RS_N), before.items);

    /* The rebuild in small steps, with commits in between that add and
     * delete keys on both sides of its cursor. */
    struct rec extra[200];
    bool xlive[200];
    int nx = 0, steps = 0;
    while (flash_rebuild_step(F, 37)) {
        ck_assert_int_lt(++steps, 10000);
        ck_assert_int_eq(flash_begin(F), TC_OK);
        for (int i = 0; i < 4 && nx < 200; i++, nx++) {
            char key[32];
            snprintf(key, sizeof(key), "during:%d", nx);
            extra[nx] = mk(key, 30);
            xlive[nx] = true;
            ck_assert_int_eq(write_rec(&extra[nx], NULL), TC_OK);
        }
        int victim = (steps * 53) % RS_N;
        if (live[victim]) {
            ck_assert_int_eq(flash_delete(F, rs[victim].hv, rs[victim].key, rs[victim].nkey),
                             TC_OK);
            live[victim] = false;
        }
        if (nx > 8 && xlive[nx - 8]) {
            ck_assert_int_eq(
                flash_delete(F, extra[nx - 8].hv, extra[nx - 8].key, extra[nx - 8].nkey), TC_OK);
            xlive[nx - 8] = false;
        }
        ck_assert_int_eq(flash_commit(F), TC_OK);
    }
    ck_assert_int_gt(steps, 5);
    ck_assert(!flash_rebuilding(F));
    /* No false negatives, and the filter counts exactly what is there. */
    uint64_t nlive = check_all(rs, live, RS_N);
    for (int i = 0; i < nx; i++) {
        if (xlive[i]) {
            nlive++;
            ck_rec(&extra[i]);
            ck_assert_msg(flash_maybe(R, extra[i].hv),
                          "'%s' (written during the rebuild) is "
                          "not in the rebuilt filter",
                          extra[i].key);
        } else {
            ck_gone(&extra[i]);
        }
    }
    s = stats();
    ck_assert_uint_eq(s.items, nlive);
    ck_assert_uint_eq(s.filter_items, nlive);
    ck_assert_int_lt(absent_maybes(1000), 20);

    /* New batches continue the sequence: writing works, and so does another restart. */
    struct rec after = mk("after-restart", 100);
    commit_one(&after);
    ck_rec(&after);
    reopen(false);
    ck_assert(flash_rebuilding(F));
    finish_rebuild(1000);
    ck_rec(&after);
    ck_assert_uint_eq(stats().items, nlive + 1);
    free(rs);
}
END_TEST

START_TEST(test_restart_clean)
{
    bool live[RS_N];
    struct rec *rs = restart_data(live);
    struct flash_stats before = stats();
    reopen(true);

    struct flash_state st = state_now();
    ck_assert(!st.fresh);
    ck_assert(st.clean);
    ck_assert(st.filter_loaded);
    ck_assert_uint_gt(st.shutdown_time, 0);
    ck_assert(!flash_rebuilding(F)); /* the snapshot is the filter: nothing to rebuild */
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, before.items);
    ck_assert_uint_eq(s.filter_items, before.filter_items);
    ck_assert_uint_eq(check_all(rs, live, RS_N), before.items);
    ck_assert_int_lt(absent_maybes(1000), 20);
    ck_assert_uint_eq(stats().filter_bypassed, 0);

    /* Running again: a stop without the mark is an unclean one. */
    reopen(false);
    st = state_now();
    ck_assert(!st.clean);
    ck_assert(!st.filter_loaded);
    ck_assert(flash_rebuilding(F));
    finish_rebuild(100);
    check_all(rs, live, RS_N);
    free(rs);
}
END_TEST

static void snapshot_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/filter.snap", DIR_);
}

START_TEST(test_restart_snapshot_damaged_or_missing)
{
    bool live[RS_N];
    struct rec *rs = restart_data(live);
    char path[512];
    snapshot_path(path, sizeof(path));

    /* A flipped byte in the snapshot: not loaded, rebuilt instead. */
    flash_reader_destroy(&R);
    ck_assert_int_eq(flash_mark_clean(F), TC_OK);
    flash_close(&F);
    FILE *fp = fopen(path, "r+b");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fseek(fp, 100, SEEK_SET), 0);
    int c = fgetc(fp);
    ck_assert_int_eq(fseek(fp, 100, SEEK_SET), 0);
    fputc(c ^ 0x40, fp);
    fclose(fp);
    ck_assert_int_eq(open_at(DIR_, SIZE_, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
    struct flash_state st = state_now();
    ck_assert(st.clean);
    ck_assert(!st.filter_loaded);
    ck_assert(flash_rebuilding(F));
    check_all(rs, live, RS_N);
    finish_rebuild(500);
    check_all(rs, live, RS_N);

    /* No snapshot at all: the same. */
    flash_reader_destroy(&R);
    ck_assert_int_eq(flash_mark_clean(F), TC_OK);
    flash_close(&F);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(open_at(DIR_, SIZE_, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
    ck_assert(!state_now().filter_loaded);
    ck_assert(flash_rebuilding(F));
    finish_rebuild(500);
    check_all(rs, live, RS_N);
    free(rs);
}
END_TEST

START_TEST(test_restart_stale_snapshot_not_used)
{
    /* Stop 1 (clean) leaves a snapshot; keys written after it, then stop 2
     * (clean, another snapshot). Putting snapshot 1 back must not make the
     * keys of the second run unreachable: it no longer matches the data. */
    struct rec a = mk("stale:a", 100);
    commit_one(&a);
    reopen(true);
    char path[512], saved[600];
    snapshot_path(path, sizeof(path));
    snprintf(saved, sizeof(saved), "%s.first", path);
    ck_assert_int_eq(link(path, saved), 0);

    enum { N = 300 };
    struct rec rs[N];
    bool live[N];
    ck_assert_int_eq(flash_begin(F), TC_OK);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "stale:second:%d", i);
        rs[i] = mk(key, 20);
        live[i] = true;
        ck_assert_int_eq(write_rec(&rs[i], NULL), TC_OK);
    }
    ck_assert_int_eq(flash_commit(F), TC_OK);
    flash_reader_destroy(&R);
    ck_assert_int_eq(flash_mark_clean(F), TC_OK);
    flash_close(&F);
    ck_assert_int_eq(rename(saved, path), 0);

    ck_assert_int_eq(open_at(DIR_, SIZE_, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
    ck_assert(state_now().clean);
    ck_assert_msg(!state_now().filter_loaded, "a snapshot of an older state was loaded");
    check_all(rs, live, N); /* includes "maybe" for each: no false negatives */
    ck_rec(&a);
    ck_assert_uint_eq(stats().items, N + 1);
}
END_TEST

START_TEST(test_restart_engine_state)
{
    struct flash_state st = state_now();
    ck_assert_uint_eq(st.cas_lease, 0);
    ck_assert_uint_eq(st.flush_cas, 0);
    ck_assert_uint_eq(st.flush_at, 0);
    /* Persisted by the next commit... */
    flash_set_engine_state(F, 123456789012ULL, 777, 1800000000u);
    struct rec r = mk("state", 10);
    commit_one(&r);
    reopen(false);
    st = state_now();
    ck_assert_uint_eq(st.cas_lease, 123456789012ULL);
    ck_assert_uint_eq(st.flush_cas, 777);
    ck_assert_uint_eq(st.flush_at, 1800000000u);
    /* ... and by the clean stop, even without a commit. */
    flash_set_engine_state(F, 999999999999ULL, 888, 0);
    reopen(true);
    st = state_now();
    ck_assert(st.clean);
    ck_assert_uint_eq(st.cas_lease, 999999999999ULL);
    ck_assert_uint_eq(st.flush_cas, 888);
    ck_assert_uint_eq(st.flush_at, 0);
    ck_rec(&r);
}
END_TEST

/* ---------------------------------------------------------------------------
 * A damaged or foreign data dir is moved aside
 * ------------------------------------------------------------------------- */

/* The directory DIR_.corrupt-* exists and holds data.mdb. */
/* --flash-size lowered below the data file: the oldest go, the file shrinks. */
START_TEST(test_restart_smaller_budget)
{
    enum { NB = 40, PER = 20, VAL = 20000 }; /* 16 MB in 40 batches */
    close_store();
    open_store(32 * MIB);
    struct rec *rs = fill_batches("shrink", NB, PER, VAL);
    struct flash_stats before = stats();
    ck_assert_uint_gt(before.file_bytes, 12 * MIB);
    flash_reader_destroy(&R);
    ck_assert_int_eq(flash_mark_clean(F), TC_OK);
    flash_close(&F);

    SIZE_ = 8 * MIB;
    ck_assert_int_eq(open_at(DIR_, SIZE_, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
    struct flash_stats s = stats();
    ck_assert_uint_le(s.file_bytes, 8 * MIB);
    ck_assert_uint_le(s.used_bytes, s.evict_above);
    ck_assert_uint_lt(s.items, before.items);
    ck_assert_uint_gt(s.items, 0);
    /* Not the snapshot (it no longer matches): a rebuild. */
    ck_assert(!state_now().filter_loaded);
    finish_rebuild(100);
    /* The oldest batches went whole; every record left reads back exactly. */
    int first_left = -1;
    for (int k = 0; k < NB * PER; k++) {
        tc_status_e st = lookup(R, rs[k].hv, rs[k].key);
        if (st == TC_OK && first_left < 0)
            first_left = k;
        if (first_left >= 0)
            ck_rec(&rs[k]);
        else
            ck_assert_int_eq(st, TC_NOT_FOUND);
    }
    ck_assert_int_eq(first_left % PER, 0);
    ck_assert_uint_eq(s.items, (uint64_t)(NB * PER - first_left));
    /* And it goes on working at the new size, a clean restart included. */
    struct rec r = mk("after-shrink", 100);
    commit_one(&r);
    ck_rec(&r);
    reopen(true);
    ck_assert(state_now().filter_loaded);
    ck_rec(&r);
    ck_rec(&rs[NB * PER - 1]);
    free(rs);
}
END_TEST

static bool moved_aside_exists(void)
{
    char pattern[600];
    snprintf(pattern, sizeof(pattern), "%s.corrupt-", DIR_);
    const char *base = strrchr(pattern, '/') + 1;
    DIR *d = opendir(ROOT);
    ck_assert_ptr_nonnull(d);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, strlen(base)) == 0) {
            char p[900];
            snprintf(p, sizeof(p), "%s/%s/data.mdb", ROOT, e->d_name);
            found = access(p, F_OK) == 0;
        }
    }
    closedir(d);
    return found;
}

static void expect_moved_aside(const char *what)
{
    flash_reader_destroy(&R);
    tc_status_e st = open_at(DIR_, SIZE_, &F);
    ck_assert_msg(st == TC_OK, "%s: open gave %s", what, tc_strerror(st));
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
    struct flash_state fs = state_now();
    ck_assert_msg(fs.moved_aside, "%s: not moved aside", what);
    ck_assert_msg(fs.fresh, "%s: not started empty", what);
    ck_assert_uint_eq(stats().items, 0);
    ck_assert_msg(moved_aside_exists(), "%s: no %s.corrupt-* with the old data", what, DIR_);
    /* And the new one works. */
    struct rec r = mk("after-move", 50);
    commit_one(&r);
    ck_rec(&r);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

START_TEST(test_moved_aside_garbage)
{
    close_store();
    new_dir(DIR_, sizeof(DIR_));
    char path[512];
    snprintf(path, sizeof(path), "%s/data.mdb", DIR_);
    size_t n = 64 * KIB;
    char *junk = malloc(n);
    value_fill(junk, (uint32_t)n, 4242);
    write_file(path, junk, n);
    free(junk);
    expect_moved_aside("random bytes");
}
END_TEST

START_TEST(test_moved_aside_truncated)
{
    struct rec *rs = fill_batches("trunc", 4, 10, 20000);
    free(rs);
    flash_reader_destroy(&R);
    flash_close(&F);
    char path[512];
    snprintf(path, sizeof(path), "%s/data.mdb", DIR_);
    ck_assert_int_eq(truncate(path, 32 * KIB), 0);
    expect_moved_aside("a truncated data file");
}
END_TEST

START_TEST(test_moved_aside_damaged_batch)
{
    /* One batch whose value is a recognizable run of bytes. */
    struct rec r = mk("damaged", 6000);
    r.vseed = 0;
    commit_one(&r);
    flash_reader_destroy(&R);
    flash_close(&F);
    char path[512];
    snprintf(path, sizeof(path), "%s/data.mdb", DIR_);
    FILE *fp = fopen(path, "r+b");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    char *data = malloc((size_t)size);
    fseek(fp, 0, SEEK_SET);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, fp), (size_t)size);
    unsigned char pattern[256];
    for (int i = 0; i < 256; i++)
        pattern[i] = (unsigned char)i;
    char *at = memmem(data, (size_t)size, pattern, sizeof(pattern));
    ck_assert_ptr_nonnull(at);
    long off = (long)(at - data) + 1000;
    fseek(fp, off, SEEK_SET);
    fputc(data[off] ^ 1, fp);
    fclose(fp);
    free(data);
    expect_moved_aside("a damaged batch");
}
END_TEST

/* Rewrite the state record of the closed store at DIR_ with `edit`. */
static void edit_state(void (*edit)(struct flash_state_rec *))
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(env, SIZE_), 0);
    ck_assert_int_eq(mdb_env_open(env, DIR_, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k = {5, "state"}, v;
    ck_assert_int_eq(mdb_get(txn, meta, &k, &v), 0);
    ck_assert_uint_eq(v.mv_size, sizeof(struct flash_state_rec));
    struct flash_state_rec rec;
    memcpy(&rec, v.mv_data, sizeof(rec));
    edit(&rec);
    v.mv_data = &rec;
    ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void other_format(struct flash_state_rec *r)
{
    r->format = FLASH_FORMAT + 1;
    r->crc = tc_crc32c(0, r, offsetof(struct flash_state_rec, crc));
}

static void bad_checksum(struct flash_state_rec *r)
{
    r->items ^= 1;
}

START_TEST(test_moved_aside_bad_state)
{
    struct rec r = mk("state-rec", 10);
    commit_one(&r);
    flash_reader_destroy(&R);
    flash_close(&F);
    edit_state(bad_checksum);
    expect_moved_aside("a state record with a bad checksum");
}
END_TEST

START_TEST(test_moved_aside_other_format)
{
    struct rec r = mk("format", 10);
    commit_one(&r);
    flash_reader_destroy(&R);
    flash_close(&F);
    edit_state(other_format);
    expect_moved_aside("another format version");
}
END_TEST

START_TEST(test_moved_aside_not_ours)
{
    /* Somebody else's LMDB environment. */
    close_store();
    new_dir(DIR_, sizeof(DIR_));
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
    ck_assert_int_eq(mdb_env_open(env, DIR_, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "theirs", MDB_CREATE, &dbi), 0);
    MDB_val k = {3, "key"}, v = {5, "value"};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    SIZE_ = 8 * MIB;
    expect_moved_aside("a foreign LMDB environment");
}
END_TEST

/* ---------------------------------------------------------------------------
 * The record format (flash_record.h), pure
 * ------------------------------------------------------------------------- */

/* Seal n items into a fresh batch of exactly the right size (malloc'd). */
static char *make_batch(const struct flash_item *its, size_t n, size_t *len, size_t *offs)
{
    uint32_t base_time = its[0].atime;
    uint64_t base_cas = its[0].cas;
    size_t total = FREC_BATCH_HDR;
    for (size_t i = 0; i < n; i++) {
        struct frec_packed p = frec_pack(&its[i], base_time, base_cas);
        total += frec_size(&its[i], &p);
    }
    char *b = malloc(total);
    size_t off = FREC_BATCH_HDR;
    for (size_t i = 0; i < n; i++) {
        struct frec_packed p = frec_pack(&its[i], base_time, base_cas);
        offs[i] = off;
        size_t w = frec_put(b + off, &its[i], &p);
        ck_assert_uint_eq(w, frec_size(&its[i], &p));
        off += w;
    }
    ck_assert_uint_eq(off, total);
    frec_batch_seal(b, total, (uint32_t)n, base_time, base_cas);
    *len = total;
    return b;
}

START_TEST(test_record_round_trip)
{
    static char big[70000];
    value_fill(big, sizeof(big), 0);
    char k255[255];
    memset(k255, 'k', sizeof(k255));
    struct flash_item its[] = {
        {"a", 1, "", 0, 0, 0, 1700000000u, 5, 0},
        {"b", 1, big, 300, UINT32_MAX, UINT32_MAX, 0, UINT64_MAX, 7},
        {"c", 1, big, 70000, 0x80000000u, 1, UINT32_MAX, 0, 1},
        {k255, 255, big, 1, 7, 1700000001u, 1699999999u, 6, 2},
        {"d", 1, big, 128, 127, 1700000000u, 1700000000u, (uint64_t)1 << 63, 15},
    };
    size_t n = sizeof(its) / sizeof(its[0]), len, offs[8];
    char *b = make_batch(its, n, &len, offs);
    uint32_t count = 0;
    ck_assert(frec_batch_check(b, len, &count));
    ck_assert_uint_eq(count, n);
    for (size_t i = 0; i < n; i++) {
        struct flash_item got;
        size_t size;
        ck_assert_msg(frec_get(b, len, offs[i], &got, &size), "record %zu does not parse", i);
        ck_assert_uint_eq(offs[i] + size, i + 1 < n ? offs[i + 1] : len);
        ck_assert_uint_eq(got.nkey, its[i].nkey);
        ck_assert(memcmp(got.key, its[i].key, got.nkey) == 0);
        ck_assert_uint_eq(got.nbytes, its[i].nbytes);
        ck_assert(memcmp(got.value, its[i].value, got.nbytes) == 0);
        ck_assert_uint_eq(got.flags, its[i].flags);
        ck_assert_uint_eq(got.exptime, its[i].exptime);
        ck_assert_uint_eq(got.atime, its[i].atime);
        ck_assert_uint_eq(got.cas, its[i].cas);
        ck_assert_uint_eq(got.mbits, its[i].mbits);
    }
    /* Locations: sequence and offset come apart again. */
    uint64_t loc = frec_loc(123456789, FREC_BATCH_MAX);
    ck_assert_uint_eq(frec_loc_seq(loc), 123456789);
    ck_assert_uint_eq(frec_loc_off(loc), FREC_BATCH_MAX);
    free(b);
}
END_TEST

/* Batches written before the meta commands ("TCB2": plain flags, no meta
 * bits) still read: hand-built, as that version wrote them. */
START_TEST(test_record_reads_tcb2)
{
    unsigned char b[FREC_BATCH_HDR + 16];
    memset(b, 0, sizeof(b));
    uint32_t base_time = 1700000000u;
    uint64_t base_cas = 40;
    size_t n = FREC_BATCH_HDR;
    b[n++] = 2;    /* nkey */
    b[n++] = 3;    /* vlen */
    b[n++] = 0x81; /* flags 129, as a plain varint */
    b[n++] = 0x01;
    b[n++] = 0;                /* exp: never */
    b[n++] = 0;                /* atime: base */
    b[n++] = 2;                /* cas: base + 1 */
    memcpy(b + n, "kyabc", 5); /* key, value */
    n += 5;
    uint32_t magic = FREC_BATCH_MAGIC_V2, count = 1, crc;
    memcpy(b, &magic, 4);
    memcpy(b + 4, &count, 4);
    memcpy(b + 12, &base_time, 4);
    memcpy(b + 16, &base_cas, 8);
    crc = tc_crc32c(tc_crc32c(0, b + 4, 4), b + 12, n - 12);
    memcpy(b + 8, &crc, 4);

    uint32_t got_count;
    ck_assert(frec_batch_check((char *)b, n, &got_count));
    ck_assert_uint_eq(got_count, 1);
    struct flash_item got;
    size_t size;
    ck_assert(frec_get((char *)b, n, FREC_BATCH_HDR, &got, &size));
    ck_assert_uint_eq(size, n - FREC_BATCH_HDR);
    ck_assert_uint_eq(got.flags, 129);
    ck_assert_uint_eq(got.mbits, 0);
    ck_assert_uint_eq(got.cas, 41);
    ck_assert(memcmp(got.key, "ky", 2) == 0 && memcmp(got.value, "abc", 3) == 0);
    /* The same bytes under the current magic read the flags as flags << 4 | bits. */
    magic = FREC_BATCH_MAGIC;
    memcpy(b, &magic, 4);
    ck_assert(frec_get((char *)b, n, FREC_BATCH_HDR, &got, &size));
    ck_assert_uint_eq(got.flags, 8);
    ck_assert_uint_eq(got.mbits, 1);
}
END_TEST

START_TEST(test_record_truncated_never_overreads)
{
    char val[300];
    value_fill(val, sizeof(val), 9);
    struct flash_item it = {"truncate-me", 11,    val, sizeof(val), 0xFFFFFF, 1800000000u,
                            1700000000u,   99999, 3};
    size_t len, off;
    char *full = make_batch(&it, 1, &len, &off);
    /* Every shorter batch, in a buffer of exactly that size (ASan watches). */
    for (size_t l = 0; l < len; l++) {
        char *b = malloc(l ? l : 1);
        memcpy(b, full, l);
        struct flash_item got;
        size_t size;
        ck_assert_msg(!frec_get(b, l, FREC_BATCH_HDR, &got, &size),
                      "a record cut at %zu of %zu bytes parsed", l, len);
        free(b);
    }
    struct flash_item got;
    size_t size;
    ck_assert(frec_get(full, len, FREC_BATCH_HDR, &got, &size));
    ck_assert(!frec_get(full, len, len, &got, &size));       /* offset at the end */
    ck_assert(!frec_get(full, len, 3, &got, &size));         /* offset in the header */
    ck_assert(!frec_get(full, len, len + 100, &got, &size)); /* past the end */
    free(full);
}
END_TEST

START_TEST(test_record_garbage_stays_in_bounds)
{
    /* Random bytes at random offsets: whatever parses lies inside the batch. */
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 2000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = FREC_BATCH_HDR + 1 + (size_t)(x % 200);
        char *b = malloc(len);
        value_fill(b, (uint32_t)len, x);
        size_t off = FREC_BATCH_HDR + (size_t)((x >> 20) % (len - FREC_BATCH_HDR));
        struct flash_item got;
        size_t size;
        if (frec_get(b, len, off, &got, &size)) {
            ck_assert(got.key >= b + off && got.key + got.nkey <= b + len);
            ck_assert(got.value >= got.key && got.value + got.nbytes <= b + len);
            ck_assert_uint_le(off + size, len);
            ck_assert_uint_gt(got.nkey, 0);
        }
        free(b);
    }
}
END_TEST

START_TEST(test_batch_check_detects_damage)
{
    char val[100];
    value_fill(val, sizeof(val), 3);
    struct flash_item its[2] = {{"x", 1, val, 100, 1, 0, 1700000000u, 10, 0},
                                {"y", 1, val, 50, 2, 0, 1700000000u, 11, 0}};
    size_t len, offs[2];
    char *b = make_batch(its, 2, &len, offs);
    uint32_t count;
    ck_assert(frec_batch_check(b, len, &count));
    /* The magic and everything from byte 8 on are covered (bytes 4..7, the
     * count, are not: see flash_record.h). */
    for (size_t i = 0; i < len; i++) {
        if (i >= 4 && i < 8)
            continue;
        b[i] ^= 0x10;
        ck_assert_msg(!frec_batch_check(b, len, &count), "a flipped byte %zu of %zu went unseen", i,
                      len);
        b[i] ^= 0x10;
    }
    ck_assert(!frec_batch_check(b, len - 1, &count));
    ck_assert(!frec_batch_check(b, FREC_BATCH_HDR - 1, &count));
    free(b);
}
END_TEST

TCase *flash_restart_tcase(void)
{
    TCase *tc = tcase_create("restart");
    tcase_add_checked_fixture(tc, setup_small, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_fresh_state);
    tcase_add_test(tc, test_restart_unclean);
    tcase_add_test(tc, test_restart_clean);
    tcase_add_test(tc, test_restart_snapshot_damaged_or_missing);
    tcase_add_test(tc, test_restart_stale_snapshot_not_used);
    tcase_add_test(tc, test_restart_engine_state);
    tcase_add_test(tc, test_restart_smaller_budget);
    tcase_add_test(tc, test_moved_aside_garbage);
    tcase_add_test(tc, test_moved_aside_truncated);
    tcase_add_test(tc, test_moved_aside_damaged_batch);
    tcase_add_test(tc, test_moved_aside_bad_state);
    tcase_add_test(tc, test_moved_aside_other_format);
    tcase_add_test(tc, test_moved_aside_not_ours);
    return tc;
}

TCase *flash_record_tcase(void)
{
    TCase *tc = tcase_create("record");
    tcase_add_test(tc, test_record_round_trip);
    tcase_add_test(tc, test_record_reads_tcb2);
    tcase_add_test(tc, test_record_truncated_never_overreads);
    tcase_add_test(tc, test_record_garbage_stays_in_bounds);
    tcase_add_test(tc, test_batch_check_detects_damage);
    return tc;
}
