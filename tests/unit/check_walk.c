/*
 * check_walk.c: unit tests for the engine's walk over every live key
 * (cache_walk_*, storage/walk.c and storage/flash_walk.c), the engine of
 * `lru_crawler metadump`.
 *
 * What matters: every live key is walked exactly once whether it is in RAM
 * only, on flash only, or in both (CLEAN); deleted, expired, flushed and
 * overwritten versions are never reported (an overwritten key appears once,
 * with its newest CAS); and changes between slices never bring back a key
 * deleted before the walk started.
 *
 * The engine: 4 MiB of RAM, 64 MiB of flash, manual clock, no maintainer
 * thread (tests call cache_maintain and cache_flash_drain), as check_tiered.
 */
#include <check.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tiercache/engine.h>

#include "cache_internal.h"

#define MIB  (1024u * 1024u)
#define VLEN 1000
#define NKEY 12000 /* ~12 MB of values: three times RAM */

static char ROOT[64];
static char DIR_[256];
static struct cache *C;
static struct cache_worker *W;
static cache_time_t T0;

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void engine_open(bool flash)
{
    struct cache_options o;
    cache_options_default(&o);
    o.manual_clock = true;
    o.no_maintainer = true;
    o.mem_limit = 4 * MIB;
    o.page_size = 1 * MIB;
    if (flash) {
        snprintf(DIR_, sizeof(DIR_), "%s/t.XXXXXX", ROOT);
        ck_assert_ptr_nonnull(mkdtemp(DIR_));
        o.flash_dir = DIR_;
        o.flash_size = 64 * MIB;
        o.flash_sync = CACHE_FLASH_SYNC_NONE;
        o.flash_min_ttl = 10;
    } else {
        o.flash_dir = NULL;
        o.flash_size = 0;
    }
    ck_assert_int_eq(cache_create(&o, &C), TC_OK);
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
    T0 = cache_now(C);
}

static void setup_flash(void)
{
    engine_open(true);
}

static void setup_ram(void)
{
    DIR_[0] = '\0';
    engine_open(false);
}

static void teardown(void)
{
    cache_worker_destroy(&W);
    cache_destroy(&C);
    if (DIR_[0] != '\0')
        nftw(DIR_, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Store key i (version ver); retries while the engine is busy cleaning. */
static uint64_t put(unsigned i, unsigned ver, cache_time_t exp)
{
    char key[32], val[VLEN];
    snprintf(key, sizeof(key), "k%05u", i);
    memset(val, 'a' + (int)(ver % 26), sizeof(val));
    struct item *it = NULL;
    tc_status_e st;
    for (int tries = 0;; tries++) {
        st = cache_alloc(W, key, strlen(key), 0, exp, VLEN, &it);
        if (st != TC_BUSY)
            break;
        ck_assert_msg(tries < 2000, "'%s': TC_BUSY for good", key);
        cache_maintain(C);
        cache_flash_drain(C, 1000);
    }
    ck_assert_int_eq(st, TC_OK);
    memcpy(item_value_mut(it), val, VLEN);
    uint64_t cas = 0;
    for (int tries = 0;; tries++) {
        st = cache_store(W, it, CACHE_SET, 0, &cas);
        if (st != TC_BUSY)
            break;
        ck_assert_msg(tries < 2000, "'%s': store TC_BUSY for good", key);
        cache_maintain(C);
        cache_flash_drain(C, 1000);
    }
    ck_assert_int_eq(st, TC_OK);
    cache_item_unref(C, it);
    if (i % 64 == 0)
        cache_maintain(C);
    return cas;
}

static void del(unsigned i)
{
    char key[32];
    snprintf(key, sizeof(key), "k%05u", i);
    ck_assert_int_eq(cache_delete(W, key, strlen(key)), TC_OK);
}

/* What a walk saw of each key. */
struct seen {
    unsigned count[NKEY];
    uint64_t cas[NKEY];
    unsigned on_flash, in_ram, other;
};

static unsigned key_index(const struct cache_walk_entry *e)
{
    char buf[8];
    if (e->nkey != 6 || e->key[0] != 'k')
        return NKEY;
    memcpy(buf, e->key + 1, 5);
    buf[5] = '\0';
    return (unsigned)atoi(buf);
}

/* One slice into *s; returns true when the walk is complete. */
static bool slice(struct cache_walk *wk, size_t max, struct seen *s)
{
    const struct cache_walk_entry *e;
    size_t n;
    bool done;
    ck_assert_int_eq(cache_walk_next(wk, max, &e, &n, &done), TC_OK);
    for (size_t i = 0; i < n; i++) {
        unsigned k = key_index(&e[i]);
        if (k >= NKEY) {
            s->other++;
            continue;
        }
        s->count[k]++;
        s->cas[k] = e[i].cas;
        ck_assert_uint_eq(e[i].nbytes, VLEN);
        ck_assert_uint_eq(e[i].size, (uint32_t)item_ntotal(6, VLEN));
        ck_assert_uint_ge(e[i].clsid, 1);
        if (e[i].on_flash)
            s->on_flash++;
        else
            s->in_ram++;
    }
    return done;
}

static void walk_all(size_t max, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    struct cache_walk *wk;
    ck_assert_int_eq(cache_walk_create(W, &wk), TC_OK);
    for (int slices = 0; !slice(wk, max, s); slices++)
        ck_assert_msg(slices < 1000000, "the walk does not end");
    cache_walk_destroy(&wk);
    ck_assert_ptr_null(wk);
}

START_TEST(test_walk_ram_only)
{
    uint64_t cas[200];
    for (unsigned i = 0; i < 200; i++)
        cas[i] = put(i, 0, i % 10 == 1 ? T0 + 5 : 0);
    for (unsigned i = 0; i < 200; i += 10)
        del(i);                 /* keys 0, 10, 20, ...: deleted */
    cas[7] = put(7, 1, 0);      /* overwritten */
    cache_clock_set(C, T0 + 6); /* keys 1, 11, 21, ...: expired */
    struct seen s;
    walk_all(7, &s);
    for (unsigned i = 0; i < 200; i++) {
        unsigned want = (i % 10 == 0 || i % 10 == 1) ? 0 : 1;
        ck_assert_msg(s.count[i] == want, "key %u walked %u times, want %u", i, s.count[i], want);
        if (want)
            ck_assert_uint_eq(s.cas[i], cas[i]);
    }
    ck_assert_uint_eq(s.on_flash, 0);
    ck_assert_uint_eq(s.other, 0);

    /* flush_all: nothing stored before it is walked. */
    cache_flush(W, 0);
    put(300, 0, 0);
    walk_all(1000, &s);
    ck_assert_uint_eq(s.in_ram, 1);
    ck_assert_uint_eq(s.count[300], 1);
}
END_TEST

START_TEST(test_walk_both_tiers)
{
    static uint64_t cas[NKEY];
    for (unsigned i = 0; i < NKEY; i++)
        cas[i] = put(i, 0, 0);
    ck_assert(cache_flash_drain(C, 10000));
    /* Deleted keys: early ones are on flash only, late ones still in RAM. */
    for (unsigned i = 0; i < NKEY; i += 97)
        del(i);
    /* Overwritten, expiring, and read (promoted) keys. */
    for (unsigned i = 5; i < NKEY; i += 101)
        cas[i] = put(i, 1, 0);
    for (unsigned i = 3; i < NKEY; i += 89)
        if (i % 97 != 0 && i % 101 != 5)
            cas[i] = put(i, 2, T0 + 20);
    for (unsigned i = 11; i < 2000; i += 7) {
        char key[32];
        snprintf(key, sizeof(key), "k%05u", i);
        struct item *it;
        if (cache_get(W, key, strlen(key), &it) == TC_OK)
            cache_item_unref(C, it);
    }
    for (int r = 0; r < 20; r++)
        cache_maintain(C);
    ck_assert(cache_flash_drain(C, 10000));
    cache_clock_set(C, T0 + 21);

    struct cache_tier_stats ts;
    cache_tier_stats_get(C, &ts);
    ck_assert_msg(ts.flash_items > NKEY / 2, "only %llu items reached flash",
                  (unsigned long long)ts.flash_items);

    static struct seen s;
    for (size_t max = 1; max <= 4096; max *= 64) {
        walk_all(max, &s);
        for (unsigned i = 0; i < NKEY; i++) {
            /* Deleted (unless set again after), or set to expire. */
            bool dead = i % 101 != 5 && (i % 97 == 0 || i % 89 == 3);
            unsigned want = dead ? 0 : 1;
            ck_assert_msg(s.count[i] == want, "slices of %zu: key %u walked %u times, want %u", max,
                          i, s.count[i], want);
            if (want)
                ck_assert_msg(s.cas[i] == cas[i], "key %u: an old version was walked", i);
        }
        ck_assert_uint_gt(s.on_flash, NKEY / 2);
        ck_assert_uint_gt(s.in_ram, 100);
        ck_assert_uint_eq(s.other, 0);
    }
}
END_TEST

START_TEST(test_walk_concurrent_changes)
{
    for (unsigned i = 0; i < NKEY; i++)
        put(i, 0, 0);
    ck_assert(cache_flash_drain(C, 10000));
    /* Deleted before the walk starts: never reported, whatever happens. */
    for (unsigned i = 0; i < NKEY; i += 10)
        del(i);
    static struct seen s;
    memset(&s, 0, sizeof(s));
    struct cache_walk *wk;
    ck_assert_int_eq(cache_walk_create(W, &wk), TC_OK);
    unsigned round = 0;
    bool done = false;
    while (!done) {
        done = slice(wk, 50, &s);
        /* Between slices: overwrite and delete other keys, read some
         * (promotions), and let the writer move items between the tiers. */
        unsigned base = (round * 37) % NKEY;
        for (unsigned j = 0; j < 5; j++) {
            unsigned k = (base + j * 13) % NKEY;
            if (k % 10 == 0)
                continue;
            if (k % 10 == 5)
                del(k);
            else if (k % 10 == 7)
                put(k, round, 0);
            else {
                char key[32];
                snprintf(key, sizeof(key), "k%05u", k);
                struct item *it;
                if (cache_get(W, key, strlen(key), &it) == TC_OK)
                    cache_item_unref(C, it);
            }
        }
        if (round % 8 == 0) {
            cache_maintain(C);
            cache_flash_drain(C, 1000);
        }
        round++;
        ck_assert_msg(round < 100000, "the walk does not end");
    }
    cache_walk_destroy(&wk);
    for (unsigned i = 0; i < NKEY; i++) {
        if (i % 10 == 0)
            ck_assert_msg(s.count[i] == 0, "key %u, deleted before the walk, was walked", i);
        else if (i % 10 != 5 && i % 10 != 7)
            ck_assert_msg(s.count[i] >= 1, "key %u, live and unchanged, was not walked", i);
    }
}
END_TEST

START_TEST(test_walk_destroy_midway)
{
    for (unsigned i = 0; i < 3000; i++)
        put(i, 0, 0);
    struct cache_walk *wk;
    ck_assert_int_eq(cache_walk_create(W, &wk), TC_OK);
    static struct seen s;
    memset(&s, 0, sizeof(s));
    ck_assert(!slice(wk, 10, &s));
    cache_walk_destroy(&wk);
    ck_assert_ptr_null(wk);
    cache_walk_destroy(&wk); /* NULL is fine */
}
END_TEST

static Suite *walk_suite(void)
{
    Suite *s = suite_create("walk");
    TCase *r = tcase_create("ram");
    tcase_add_checked_fixture(r, setup_ram, teardown);
    tcase_add_test(r, test_walk_ram_only);
    suite_add_tcase(s, r);
    TCase *f = tcase_create("flash");
    tcase_add_checked_fixture(f, setup_flash, teardown);
    tcase_add_test(f, test_walk_both_tiers);
    tcase_add_test(f, test_walk_concurrent_changes);
    tcase_add_test(f, test_walk_destroy_midway);
    suite_add_tcase(s, f);
    return s;
}

int main(void)
{
    snprintf(ROOT, sizeof(ROOT), "/tmp/check_walk.XXXXXX");
    if (mkdtemp(ROOT) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(walk_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(ROOT, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
