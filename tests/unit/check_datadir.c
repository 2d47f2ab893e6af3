/*
 * check_datadir.c: unit tests for reading a stopped engine's data dir
 * without a server (include/tiercache/datadir.h, storage/datadir.c).
 *
 * Data dirs are made with the engine itself (4 MiB of RAM, 64 MiB of flash,
 * a manual clock, no maintainer thread), stopped gracefully (cache_persist,
 * then cache_destroy), then read back. What matters: every live item is
 * walked exactly once, with exactly its key, value, flags, CAS and unix
 * expiry; an overwritten key only in its new version; deleted, flushed and
 * expired keys never; a dir an engine holds is refused (and an engine
 * cannot take a dir being read); damage is found and named, never crashes;
 * and reading changes nothing on disk.
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tiercache/datadir.h>
#include <tiercache/engine.h>

#include "damage.h"

#define MIB  (1024u * 1024u)
#define NKEY 10000 /* about 10 MB of values: more than RAM holds, so most are demoted */

static char ROOT[64];
static char DIR_[256];
static struct cache *C;
static struct cache_worker *W;
static cache_time_t T0;

/* What each key "k%05u" should read back as. */
struct want {
    unsigned ver; /* 0: absent */
    uint64_t cas;
    uint32_t flags;
    cache_time_t exp;
    int seen;
};
static struct want WANT[NKEY];

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void engine_open(void)
{
    struct cache_options o;
    cache_options_default(&o);
    o.manual_clock = true;
    o.no_maintainer = true;
    o.mem_limit = 4 * MIB;
    o.page_size = 1 * MIB;
    o.flash_dir = DIR_;
    o.flash_size = 64 * MIB;
    o.flash_sync = CACHE_FLASH_SYNC_NONE;
    o.flash_min_ttl = 10;
    ck_assert_int_eq(cache_create(&o, &C), TC_OK);
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
    T0 = cache_now(C);
}

/* A graceful stop: everything in RAM goes to flash, a clean stop is recorded. */
static void engine_stop(void)
{
    uint64_t written;
    ck_assert_int_eq(cache_persist(C, 30000, &written), TC_OK);
    cache_worker_destroy(&W);
    cache_destroy(&C);
}

static void setup(void)
{
    snprintf(DIR_, sizeof(DIR_), "%s/t.XXXXXX", ROOT);
    ck_assert_ptr_nonnull(mkdtemp(DIR_));
    memset(WANT, 0, sizeof(WANT));
}

static void teardown(void)
{
    if (W != NULL)
        cache_worker_destroy(&W);
    if (C != NULL)
        cache_destroy(&C);
    nftw(DIR_, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Version `ver` of key i: its length varies with the key (500..1499 bytes). */
static size_t value_of(unsigned i, unsigned ver, char *dst)
{
    size_t n = 500 + (i * 37u) % 1000;
    uint64_t h = (uint64_t)i * 2654435761u + ver * 977u;
    for (size_t j = 0; j < n; j++)
        dst[j] = (char)(unsigned char)(j + h);
    return n;
}

static void put(unsigned i, unsigned ver, uint32_t flags, cache_time_t exp)
{
    char key[16], val[1600];
    snprintf(key, sizeof(key), "k%05u", i);
    size_t n = value_of(i, ver, val);
    struct item *it = NULL;
    tc_status_e st;
    for (int tries = 0;
         (st = cache_alloc(W, key, strlen(key), flags, exp, (uint32_t)n, &it)) == TC_BUSY;
         tries++) {
        ck_assert_msg(tries < 2000, "'%s': TC_BUSY for good", key);
        cache_maintain(C);
        cache_flash_drain(C, 1000);
    }
    ck_assert_int_eq(st, TC_OK);
    memcpy(item_value_mut(it), val, n);
    uint64_t cas = 0;
    for (int tries = 0; (st = cache_store(W, it, CACHE_SET, 0, &cas)) == TC_BUSY; tries++) {
        ck_assert_msg(tries < 2000, "'%s': store TC_BUSY for good", key);
        cache_maintain(C);
        cache_flash_drain(C, 1000);
    }
    ck_assert_int_eq(st, TC_OK);
    cache_item_unref(C, it);
    WANT[i] = (struct want){.ver = ver, .cas = cas, .flags = flags, .exp = exp};
}

static void del(unsigned i)
{
    char key[16];
    snprintf(key, sizeof(key), "k%05u", i);
    ck_assert_int_eq(cache_delete(W, key, strlen(key)), TC_OK);
    WANT[i].ver = 0;
}

static bool check_item(void *arg, const struct tc_dump_item *it)
{
    (void)arg;
    unsigned i;
    char key[16];
    ck_assert_uint_eq(it->nkey, 6);
    memcpy(key, it->key, 6);
    key[6] = '\0';
    ck_assert_msg(sscanf(key, "k%05u", &i) == 1 && i < NKEY, "unexpected key %s", key);
    struct want *w = &WANT[i];
    ck_assert_msg(w->ver != 0, "%s was walked but is deleted, flushed or expired", key);
    ck_assert_msg(w->seen == 0, "%s walked twice", key);
    w->seen++;
    char val[1600];
    size_t n = value_of(i, w->ver, val);
    ck_assert_msg(it->nbytes == n && memcmp(it->value, val, n) == 0,
                  "%s: wrong value (%u bytes, want version %u of %zu bytes)", key, it->nbytes,
                  w->ver, n);
    ck_assert_uint_eq(it->flags, w->flags);
    ck_assert_uint_eq(it->cas, w->cas);
    ck_assert_uint_eq(it->exptime, w->exp);
    return true;
}

static unsigned count_want(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < NKEY; i++)
        n += WANT[i].ver != 0;
    return n;
}

static void assert_all_seen(void)
{
    for (unsigned i = 0; i < NKEY; i++)
        ck_assert_msg(WANT[i].seen == (WANT[i].ver != 0 ? 1 : 0), "k%05u seen %d times, want %d", i,
                      WANT[i].seen, WANT[i].ver != 0);
}

static struct tc_datadir *open_ok(void)
{
    struct tc_datadir *d = NULL;
    char err[256];
    tc_status_e st = tc_datadir_open(DIR_, &d, err, sizeof(err));
    ck_assert_msg(st == TC_OK, "open %s: %s (%s)", DIR_, tc_strerror(st), err);
    return d;
}

/* ---------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

START_TEST(walk_after_clean_stop)
{
    engine_open();
    for (unsigned i = 0; i < NKEY; i++)
        put(i, 1, i * 7u, i % 3 == 0 ? T0 + 86400 : 0);
    for (unsigned i = 0; i < 100; i++)
        put(i, 2, 99, 0); /* overwritten: only version 2 may come back */
    for (unsigned i = 100; i < 200; i++)
        del(i);
    for (unsigned i = 200; i < 250; i++)
        put(i, 3, 5, T0 + 100); /* expire before the walk's `now` */
    unsigned live_at_stop = count_want();
    engine_stop();

    struct tc_datadir *d = open_ok();
    struct tc_datadir_info info;
    tc_datadir_info(d, &info);
    ck_assert(info.clean);
    ck_assert(!info.deletes_pending);
    ck_assert_uint_eq(info.format_version, 1);
    ck_assert_uint_eq(info.items, live_at_stop);
    ck_assert_uint_gt(info.batches, 0);
    ck_assert_uint_ge(info.oldest, T0);
    ck_assert_uint_le(info.oldest, info.newest);
    ck_assert_uint_le(info.newest, T0 + 10);
    ck_assert_uint_gt(info.stopped_at, 0);
    ck_assert_uint_gt(info.file_bytes, 0);
    ck_assert_uint_gt(info.disk_bytes, 0);
    for (unsigned i = 0; i < NKEY; i++)
        ck_assert_uint_lt(WANT[i].cas, info.cas_high);

    for (unsigned i = 200; i < 250; i++)
        WANT[i].ver = 0; /* expired as of T0 + 200 */
    char err[256];
    ck_assert_int_eq(tc_datadir_walk(d, T0 + 200, check_item, NULL, err, sizeof(err)), TC_OK);
    assert_all_seen();

    struct tc_datadir_check chk;
    ck_assert_int_eq(tc_datadir_check(d, &chk), TC_OK);
    ck_assert_msg(chk.bad_batches == 0 && chk.bad_records == 0 && chk.bad_index == 0,
                  "a sound dir found damaged: %s", chk.first_problem);
    ck_assert_str_eq(chk.first_problem, "");
    ck_assert_uint_eq(chk.batches, info.batches);
    ck_assert_uint_eq(chk.live, live_at_stop);
    ck_assert_uint_eq(chk.records, chk.live + chk.superseded);
    ck_assert_uint_gt(chk.superseded, 0); /* old versions on flash were skipped, not absent */
    tc_datadir_close(&d);
    ck_assert_ptr_null(d);
    tc_datadir_close(&d); /* accepts NULL */
}
END_TEST

static bool count_and_stop(void *arg, const struct tc_dump_item *it)
{
    (void)it;
    unsigned *n = arg;
    return ++*n < 10;
}

START_TEST(walk_stops_when_told)
{
    engine_open();
    for (unsigned i = 0; i < 50; i++)
        put(i, 1, 0, 0);
    engine_stop();
    struct tc_datadir *d = open_ok();
    unsigned n = 0;
    ck_assert_int_eq(tc_datadir_walk(d, T0, count_and_stop, &n, NULL, 0), TC_OK);
    ck_assert_uint_eq(n, 10);
    tc_datadir_close(&d);
}
END_TEST

START_TEST(flushed_items_absent)
{
    engine_open();
    for (unsigned i = 0; i < 8000; i++)
        put(i, 1, 0, 0); /* most of them on flash by now */
    cache_flush(W, 0);
    for (unsigned i = 0; i < 8000; i++)
        WANT[i].ver = 0;
    for (unsigned i = 8000; i < 9000; i++)
        put(i, 1, 1, 0);
    cache_clock_set(C, T0 + 5);
    cache_flush(W, T0 + 50); /* delayed: pending at the stop */
    engine_stop();

    struct tc_datadir *d = open_ok();
    struct tc_datadir_info info;
    tc_datadir_info(d, &info);
    ck_assert_uint_gt(info.flush_cas, 0);
    ck_assert_uint_eq(info.flush_at, T0 + 50);
    ck_assert_uint_gt(info.items, 1000); /* flushed records are still on file */
    /* Before the delayed flush: everything stored after flush_all 0. */
    ck_assert_int_eq(tc_datadir_walk(d, T0 + 10, check_item, NULL, NULL, 0), TC_OK);
    assert_all_seen();
    /* After it: nothing (all were stored before it). */
    for (unsigned i = 0; i < NKEY; i++)
        WANT[i].ver = WANT[i].seen = 0;
    ck_assert_int_eq(tc_datadir_walk(d, T0 + 60, check_item, NULL, NULL, 0), TC_OK);
    tc_datadir_close(&d);
}
END_TEST

START_TEST(busy_while_engine_holds_it)
{
    engine_open();
    put(1, 1, 0, 0);
    struct tc_datadir *d = (struct tc_datadir *)1;
    char err[256];
    ck_assert_int_eq(tc_datadir_open(DIR_, &d, err, sizeof(err)), TC_BUSY);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, DIR_) != NULL && strstr(err, "in use") != NULL, "err: %s", err);
    engine_stop();

    /* And the other way round: no engine on a dir being read. */
    d = open_ok();
    struct cache_options o;
    cache_options_default(&o);
    o.manual_clock = true;
    o.no_maintainer = true;
    o.mem_limit = 4 * MIB;
    o.flash_dir = DIR_;
    o.flash_size = 64 * MIB;
    struct cache *c2 = NULL;
    ck_assert_int_eq(cache_create(&o, &c2), TC_BUSY);
    ck_assert_ptr_null(c2);
    /* Two readers may share it. */
    struct tc_datadir *d2 = open_ok();
    tc_datadir_close(&d2);
    tc_datadir_close(&d);
}
END_TEST

static void slurp(const char *path, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    *buf = malloc(*len);
    ck_assert_ptr_nonnull(*buf);
    size_t got = 0;
    while (got < *len) {
        ssize_t r = pread(fd, *buf + got, *len - got, (off_t)got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
    close(fd);
}

START_TEST(damaged_batch_found)
{
    engine_open();
    for (unsigned i = 0; i < NKEY; i++)
        put(i, 1, 0, 0);
    engine_stop();

    td_flip_first_batch(DIR_);

    struct tc_datadir *d = open_ok();
    struct tc_datadir_check chk;
    ck_assert_int_eq(tc_datadir_check(d, &chk), TC_OK);
    ck_assert_uint_eq(chk.bad_batches, 1);
    ck_assert_msg(strstr(chk.first_problem, "batch") != NULL, "first problem: %s",
                  chk.first_problem);
    ck_assert_uint_gt(chk.bad_index, 0); /* the bad batch's records are not vouched for */
    char err[256];
    unsigned n = 0;
    ck_assert_int_eq(tc_datadir_walk(d, T0, count_and_stop, &n, err, sizeof(err)), TC_INVALID);
    ck_assert_msg(strstr(err, "batch") != NULL && strstr(err, DIR_) != NULL, "err: %s", err);
    tc_datadir_close(&d);
}
END_TEST

START_TEST(not_a_data_dir)
{
    struct tc_datadir *d = NULL;
    char err[256], path[300];
    /* An empty dir: no data. */
    ck_assert_int_eq(tc_datadir_open(DIR_, &d, err, sizeof(err)), TC_NOT_FOUND);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, DIR_) != NULL, "err: %s", err);
    snprintf(path, sizeof(path), "%s/tiercached.lock", DIR_);
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0); /* nothing was created */
    /* No dir at all. */
    snprintf(path, sizeof(path), "%s/nonesuch", DIR_);
    ck_assert_int_eq(tc_datadir_open(path, &d, err, sizeof(err)), TC_NOT_FOUND);
    ck_assert_int_ne(stat(path, &st), 0); /* nothing was created */
    /* A data.mdb that is not LMDB's. */
    snprintf(path, sizeof(path), "%s/data.mdb", DIR_);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 65536; i++)
        fputc((i * 131) & 0xff, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(tc_datadir_open(DIR_, &d, err, sizeof(err)), TC_INVALID);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, "not a tiercache data dir") != NULL, "err: %s", err);
    ck_assert_int_eq(stat(path, &st), 0); /* left where it was, untouched */
    ck_assert_int_eq(st.st_size, 65536);
    snprintf(path, sizeof(path), "%s/lock.mdb", DIR_);
    ck_assert_int_ne(stat(path, &st), 0); /* LMDB's lock file was not made */
}
END_TEST

START_TEST(reading_changes_nothing)
{
    engine_open();
    for (unsigned i = 0; i < 500; i++)
        put(i, 1, 0, 0);
    engine_stop();
    char path[300], *before, *after;
    size_t nb, na;
    snprintf(path, sizeof(path), "%s/data.mdb", DIR_);
    slurp(path, &before, &nb);
    struct tc_datadir *d = open_ok();
    struct tc_datadir_check chk;
    ck_assert_int_eq(tc_datadir_check(d, &chk), TC_OK);
    ck_assert_int_eq(tc_datadir_walk(d, T0, check_item, NULL, NULL, 0), TC_OK);
    tc_datadir_close(&d);
    slurp(path, &after, &na);
    ck_assert_msg(na == nb && memcmp(before, after, nb) == 0, "data.mdb changed by reading");
    free(before);
    free(after);
    /* And a server still starts on it afterwards, with every item. */
    engine_open();
    char key[16] = "k00007";
    struct item *it = NULL;
    ck_assert_int_eq(cache_get(W, key, strlen(key), &it), TC_OK);
    cache_item_unref(C, it);
    engine_stop();
}
END_TEST

static Suite *datadir_suite(void)
{
    Suite *s = suite_create("datadir");
    TCase *tc = tcase_create("datadir");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, walk_after_clean_stop);
    tcase_add_test(tc, walk_stops_when_told);
    tcase_add_test(tc, flushed_items_absent);
    tcase_add_test(tc, busy_while_engine_holds_it);
    tcase_add_test(tc, damaged_batch_found);
    tcase_add_test(tc, not_a_data_dir);
    tcase_add_test(tc, reading_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(ROOT, sizeof(ROOT), "/tmp/check_datadir.XXXXXX");
    if (mkdtemp(ROOT) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(datadir_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(ROOT, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
