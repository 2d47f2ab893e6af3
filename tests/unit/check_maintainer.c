/*
 * check_maintainer.c: unit tests for the engine's background work
 * (storage/maintainer.c) and for the engine under several threads: hash
 * table growth a step at a time, the crawler reclaiming expired and flushed
 * items, LRU segments, concurrent incr, and a stress run with evictions,
 * growth and expiry while the main thread runs the maintainer.
 *
 * The maintainer thread is off (cache_fixture.c): tests call cache_maintain()
 * themselves and move the manual clock, so every round is theirs to see.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_fixture.h"

/* ---------------------------------------------------------------------------
 * Background work
 * ------------------------------------------------------------------------- */

/* How many of keys "h<i>" for i in [0, n) are missing or wrong. */
static unsigned count_missing(unsigned n)
{
    unsigned missing = 0;
    char key[16];
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "h%u", i);
        struct item *it;
        if (cache_get(W, key, strlen(key), &it) != TC_OK) {
            missing++;
            continue;
        }
        if (item_nbytes(it) != strlen(key) || memcmp(item_value(it), key, strlen(key)) != 0)
            missing++;
        cache_item_unref(C, it);
    }
    return missing;
}

static void put_h(unsigned from, unsigned to)
{
    char key[16];
    for (unsigned i = from; i < to; i++) {
        snprintf(key, sizeof(key), "h%u", i);
        if (set(key, key) != TC_OK)
            ck_abort_msg("set %s failed", key);
    }
}

START_TEST(test_hash_growth_through_maintain)
{
    struct cache_options o;
    test_options(&o);
    o.hashpower_init = 12;
    open_with(&o);
    unsigned n = 6200; /* past 1.5 x 4096 */
    put_h(0, n);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.hash_power_level, 12);
    ck_assert(!s.hash_is_expanding);

    for (unsigned target = 13; target <= 14; target++) {
        ck_assert(cache_maintain(C));
        s = stats();
        ck_assert(s.hash_is_expanding);
        ck_assert_uint_eq(s.hash_power_level, target);
        unsigned rounds = 0;
        while (stats().hash_is_expanding) {
            ck_assert_uint_eq(count_missing(n), 0);
            put_h(n, n + 50); /* writes while growing */
            n += 50;
            cache_maintain(C);
            ck_assert_uint_lt(++rounds, 100);
        }
        ck_assert_uint_ge(rounds, 2); /* it was incremental */
        s = stats();
        ck_assert_uint_eq(s.hash_power_level, target);
        ck_assert_uint_eq(s.hash_bytes, (1u << target) * sizeof(void *));
        ck_assert_uint_eq(count_missing(n), 0);
        ck_assert_uint_eq(s.curr_items, n);
        /* Fill to the next threshold. */
        unsigned next = (1u << target) + (1u << target) / 2 + 1;
        if (n < next) {
            put_h(n, next);
            n = next;
        }
    }
    ck_assert_uint_eq(count_missing(n), 0);
}
END_TEST

START_TEST(test_crawler_reclaims_expired)
{
    char key[16];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "e%u", i);
        ck_assert_int_eq(set_exp(key, "v", T0 + 5), TC_OK);
        snprintf(key, sizeof(key), "p%u", i);
        ck_assert_int_eq(set(key, "v"), TC_OK);
    }
    ck_val("e0", "v"); /* fetched before it expires */
    at(10);
    struct cache_stats s;
    int rounds = 0;
    do {
        cache_maintain(C);
        s = stats();
    } while (s.crawler_reclaimed < 100 && ++rounds < 200);
    ck_assert_uint_eq(s.crawler_reclaimed, 100);
    ck_assert_uint_eq(s.curr_items, 100);
    ck_assert_uint_ge(s.reclaimed, 100);
    ck_assert_uint_eq(s.expired_unfetched, 99);
    ck_assert_uint_ge(s.crawler_items_checked, 200);
    ck_assert_uint_ge(s.lru_crawler_starts, 1);
    ck_assert_uint_eq(s.get_expired, 0); /* nobody had to meet them */
    ck_val("p99", "v");
    ck_missing("e99");
}
END_TEST

/* cache_crawl_now (lru_crawler crawl): a pass starts at the next round,
 * although the crawl's pacing would wait. */
START_TEST(test_crawl_now)
{
    struct cache_stats s;
    int rounds = 0;
    /* Let the paced crawl run its passes until its next one is far off. */
    for (int i = 0; i < 12; i++) {
        at(i);
        while (cache_maintain(C) && ++rounds < 1000)
            ;
    }
    char key[16];
    for (unsigned i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "x%u", i);
        ck_assert_int_eq(set_exp(key, "v", T0 + 13), TC_OK);
    }
    at(14); /* expired, and the pacing's next pass is seconds away */
    uint64_t before = stats().crawler_reclaimed;
    cache_maintain(C);
    ck_assert_uint_eq(stats().crawler_reclaimed, before);
    cache_crawl_now(C);
    rounds = 0;
    do {
        cache_maintain(C);
        s = stats();
    } while (s.crawler_reclaimed < before + 50 && ++rounds < 200);
    ck_assert_uint_eq(s.crawler_reclaimed, before + 50);
    ck_assert_uint_eq(s.get_expired, 0);
}
END_TEST

START_TEST(test_crawler_reclaims_flushed)
{
    char key[16];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "f%u", i);
        ck_assert_int_eq(set(key, "v"), TC_OK);
    }
    cache_flush(W, 0);
    ck_assert_int_eq(set("after", "v"), TC_OK);
    at(10);
    int rounds = 0;
    while (stats().curr_items > 1 && ++rounds < 200)
        cache_maintain(C);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.curr_items, 1);
    ck_assert_uint_eq(s.crawler_reclaimed, 100);
    ck_val("after", "v");
}
END_TEST

START_TEST(test_lru_segments_through_maintain)
{
    char key[16];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%03u", i);
        ck_assert_int_eq(set(key, "v"), TC_OK);
    }
    /* The ten oldest (the HOT tail) are hit. */
    for (unsigned i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%03u", i);
        ck_val(key, "v");
    }
    unsigned id = class_of("k099"); /* the newest: it stays in HOT anyway */
    struct cache_class_stats k = class_stats(id);
    ck_assert_uint_eq(k.number_hot, 100);
    cache_maintain(C);
    k = class_stats(id);
    ck_assert_uint_eq(k.number, 100);
    ck_assert_uint_eq(k.number_hot, 20); /* hot_lru_pct */
    ck_assert_uint_eq(k.number_warm, 10);
    ck_assert_uint_eq(k.number_cold, 70);
    ck_assert_uint_eq(k.moves_to_warm, 10);
    ck_assert_uint_eq(k.moves_to_cold, 70);
    ck_assert_uint_eq(stats().lru_maintainer_juggles, 80);
    for (unsigned i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%03u", i);
        ck_val(key, "v");
    }
}
END_TEST

/* ---------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------- */

enum { THREADS = 4, INCRS = 2000 };

static void *incr_thread(void *arg)
{
    (void)arg;
    struct cache_worker *w;
    if (cache_worker_create(C, &w) != TC_OK)
        return (void *)1;
    uintptr_t bad = 0;
    for (int i = 0; i < INCRS; i++) {
        uint64_t v;
        if (cache_arith(w, "ctr", 3, true, 1, &v, NULL) != TC_OK)
            bad++;
        struct item *it;
        if (cache_get(w, "ctr", 3, &it) == TC_OK) {
            /* Whatever a reader holds is a complete number. */
            uint64_t seen = 0;
            for (uint32_t b = 0; b < item_nbytes(it) && item_value(it)[b] != ' '; b++)
                seen = seen * 10 + (uint64_t)(item_value(it)[b] - '0');
            if (seen == 0 || seen > (uint64_t)THREADS * INCRS)
                bad++;
            cache_item_unref(C, it);
        } else {
            bad++;
        }
    }
    cache_worker_destroy(&w);
    return (void *)bad;
}

START_TEST(test_concurrent_incr)
{
    ck_assert_int_eq(set("ctr", "0"), TC_OK);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, incr_thread, NULL), 0);
    for (int t = 0; t < THREADS; t++) {
        void *bad;
        pthread_join(th[t], &bad);
        ck_assert_ptr_null(bad);
    }
    char want[32];
    snprintf(want, sizeof(want), "%d", THREADS * INCRS);
    ck_val("ctr", want);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.incr_hits, (uint64_t)THREADS * INCRS);
    ck_assert_uint_eq(s.curr_items, 1);
}
END_TEST

/*
 * Several workers hammer a small engine (evictions in several classes, hash
 * growth, expiry) while the main thread moves the clock and runs the
 * maintainer. Every value read must be intact: its bytes are a function of
 * its key and length, so a chunk freed and reused under a reader shows.
 */
enum { STRESS_THREADS = 4, STRESS_OPS = 20000, STRESS_KEYS = 8000 };

static char stress_byte(unsigned key, size_t i)
{
    return (char)('a' + (key * 7 + i) % 26);
}

static void *stress_thread(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
    struct cache_worker *w;
    if (cache_worker_create(C, &w) != TC_OK)
        return (void *)1;
    uintptr_t bad = 0;
    char key[16];
    char *buf = malloc(5000);
    for (int op = 0; op < STRESS_OPS; op++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned k = (unsigned)(rng % STRESS_KEYS);
        int nkey = snprintf(key, sizeof(key), "s%u", k);
        unsigned what = (unsigned)((rng >> 20) % 10);
        struct item *it;
        if (what < 5) {
            if (cache_get(w, key, (size_t)nkey, &it) == TC_OK) {
                const char *v = item_value(it);
                for (uint32_t i = 0; i < item_nbytes(it); i++)
                    if (v[i] != stress_byte(k, i)) {
                        bad++;
                        break;
                    }
                cache_item_unref(C, it);
            }
        } else if (what < 9) {
            size_t len = 10 + (size_t)((rng >> 32) % 4990);
            cache_time_t exp = (rng >> 40) % 4 == 0 ? cache_now(C) + 2 : 0;
            tc_status_e st = cache_alloc(w, key, (size_t)nkey, 0, exp, (uint32_t)len, &it);
            if (st == TC_OK) {
                for (size_t i = 0; i < len; i++)
                    buf[i] = stress_byte(k, i);
                memcpy(item_value_mut(it), buf, len);
                st = cache_store(w, it, CACHE_SET, 0, NULL);
                cache_item_unref(C, it);
                if (st != TC_OK)
                    bad++;
            } else if (st != TC_NO_MEMORY) {
                bad++;
            }
        } else {
            cache_delete(w, key, (size_t)nkey);
        }
    }
    free(buf);
    cache_worker_destroy(&w);
    return (void *)bad;
}

/* Item memory over -m by more than memcached allows: one first page per class. */
static bool over_budget(uint64_t page)
{
    struct cache_stats s;
    cache_stats_get(C, &s);
    uint64_t first_pages = 0;
    for (unsigned id = 1; id <= cache_class_count(C); id++)
        first_pages += class_stats(id).total_pages > 0 ? page : 0;
    return s.total_malloced > s.limit_maxbytes + first_pages;
}

START_TEST(test_concurrent_stress)
{
    struct cache_options o;
    test_options(&o);
    o.mem_limit = 8 * MIB;
    o.page_size = MIB;
    o.hashpower_init = 12;
    open_with(&o);
    pthread_t th[STRESS_THREADS];
    for (uintptr_t t = 0; t < STRESS_THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, stress_thread, (void *)(t + 1)), 0);
    /* The main thread is the maintainer and the clock. */
    cache_time_t now = T0;
    uint64_t over = 0;
    void *bad[STRESS_THREADS] = {NULL};
    bool joined[STRESS_THREADS] = {false};
    int done = 0;
    for (int round = 0; done < STRESS_THREADS; round++) {
        if (round % 50 == 0)
            cache_clock_set(C, ++now);
        cache_maintain(C);
        if (over_budget(MIB))
            over++;
        for (int t = 0; t < STRESS_THREADS; t++) {
            if (!joined[t] && pthread_tryjoin_np(th[t], &bad[t]) == 0) {
                joined[t] = true;
                done++;
            }
        }
    }
    for (int t = 0; t < STRESS_THREADS; t++)
        ck_assert_msg(bad[t] == NULL, "thread %d: %lu bad results", t,
                      (unsigned long)(uintptr_t)bad[t]);
    ck_assert_uint_eq(over, 0);
    ck_assert(!over_budget(MIB));
    struct cache_stats s = stats();
    ck_assert_uint_gt(s.evictions + s.reclaimed, 0);
    /* Every linked item is counted once: the LRUs and the table agree. */
    uint64_t number = 0;
    for (unsigned id = 1; id <= cache_class_count(C); id++)
        number += class_stats(id).number;
    ck_assert_uint_eq(number, s.curr_items);
}
END_TEST

static Suite *maintainer_suite(void)
{
    Suite *s = suite_create("maintainer");
    TCase *tc = tcase_create("maintain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_hash_growth_through_maintain);
    tcase_add_test(tc, test_crawler_reclaims_expired);
    tcase_add_test(tc, test_crawler_reclaims_flushed);
    tcase_add_test(tc, test_crawl_now);
    tcase_add_test(tc, test_lru_segments_through_maintain);
    tcase_add_test(tc, test_concurrent_incr);
    tcase_add_test(tc, test_concurrent_stress);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(maintainer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
