/*
 * check_cache_memory.c: unit tests for the engine's item memory
 * (storage/cache.c, slab.c): eviction under a small limit, out of memory in
 * a class that can get no page, large items with mappings of their own,
 * one budget for pages and large items, size limits, class boundaries, and
 * which items go first (expired ones, then those not hit).
 *
 * Engines without a maintainer thread, on a manual clock (cache_fixture.c).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_fixture.h"

/* ---------------------------------------------------------------------------
 * Memory: eviction, large items, limits
 * ------------------------------------------------------------------------- */

START_TEST(test_eviction_under_small_limit)
{
    open_small(2 * MIB);
    char key[16], value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    /* 54 + 6 + 100 = 160 bytes: the 192-byte class, 5461 per page. */
    const uint64_t capacity = 2 * (MIB / 192);
    const unsigned total = 30000;
    for (unsigned i = 0; i < total; i++) {
        snprintf(key, sizeof(key), "k%05u", i);
        value[0] = (char)('a' + i % 26);
        tc_status_e st = set(key, value);
        if (st != TC_OK)
            ck_abort_msg("set %u: %s", i, tc_strerror(st));
        if (i % 97 == 0) {
            struct cache_stats s = stats();
            if (s.total_malloced > s.limit_maxbytes)
                ck_abort_msg("after %u sets %llu bytes used, limit %llu", i,
                             (unsigned long long)s.total_malloced,
                             (unsigned long long)s.limit_maxbytes);
        }
    }
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.limit_maxbytes, 2 * MIB);
    ck_assert_uint_eq(s.total_malloced, 2 * MIB);
    ck_assert_uint_eq(s.curr_items, capacity);
    ck_assert_uint_eq(s.evictions, total - capacity);
    ck_assert_uint_eq(s.evicted_unfetched, total - capacity);
    ck_assert_uint_eq(s.store_no_memory, 0);
    ck_assert_uint_eq(s.total_items, total);
    unsigned id = class_of("k29999");
    ck_assert_uint_eq(class_stats(id).chunk_size, 192);
    ck_assert_uint_eq(class_stats(id).evicted, total - capacity);
    ck_assert_uint_eq(class_stats(id).total_pages, 2);
    /* The oldest are gone, the newest are there (LRU order). */
    ck_missing("k00000");
    ck_missing("k10000");
    for (unsigned i = total - 100; i < total; i++) {
        snprintf(key, sizeof(key), "k%05u", i);
        value[0] = (char)('a' + i % 26);
        ck_val(key, value);
    }
}
END_TEST

START_TEST(test_first_page_of_a_class_passes_the_budget)
{
    /* As memcached: a class gets its first page even when -m is spent, so
     * every size can be stored; it never gets a second one over -m. */
    open_small(MIB); /* one page in all */
    ck_assert_int_eq(set("small", "v"), TC_OK);
    char big[1001], key[16];
    memset(big, 'b', 1000);
    big[1000] = '\0';
    /* 1000 bytes is another class: its first page, over the budget. */
    for (unsigned i = 0; i < 3000; i++) { /* three pages' worth of them */
        snprintf(key, sizeof(key), "big%u", i);
        ck_assert_int_eq(set(key, big), TC_OK);
    }
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.total_malloced, 2 * MIB);
    ck_assert_uint_gt(s.evictions, 0); /* the big ones evict each other */
    ck_assert_uint_eq(s.store_no_memory, 0);
    ck_val("small", "v");
    ck_val("big2999", big);
    ck_missing("big0");
    /* The first large item (up to a page) passes as well. */
    struct item *it = NULL;
    ck_assert_int_eq(cache_alloc(W, "large", 5, 0, 0, 600000, &it), TC_OK);
    cache_item_unref(C, it);
    ck_assert_uint_eq(stats().store_no_memory, 0);
}
END_TEST

START_TEST(test_large_items)
{
    open_small(4 * MIB);
    const size_t n = 600000; /* above half a page: a large item */
    char *buf = malloc(n);
    fill_pattern(buf, n, 7);
    ck_assert_int_eq(store_n("big", buf, n, 11, 0, CACHE_SET, 0, NULL), TC_OK);
    struct item *it = ref("big");
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(item_nbytes(it), n);
    ck_assert_uint_eq(item_flags(it), 11);
    ck_assert_mem_eq(item_value(it), buf, n);
    ck_assert_uint_eq(it->clsid, cache_class_count(C));
    cache_item_unref(C, it);

    const size_t charged = round_os_page(ITEM_HEADER_SIZE + 3 + n);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.total_malloced, charged);
    ck_assert_uint_eq(s.curr_items, 1);
    ck_assert_uint_eq(s.bytes, ITEM_HEADER_SIZE + 3 + n);
    struct cache_class_stats k = class_stats(cache_class_count(C));
    ck_assert_uint_eq(k.number, 1);
    ck_assert_uint_eq(k.total_pages, 1);

    /* Overwrite: the old mapping is given back. */
    fill_pattern(buf, n, 8);
    ck_assert_int_eq(store_n("big", buf, n, 12, 0, CACHE_SET, 0, NULL), TC_OK);
    ck_assert_uint_eq(stats().total_malloced, charged);
    it = ref("big");
    ck_assert_mem_eq(item_value(it), buf, n);
    cache_item_unref(C, it);

    /* Delete: the budget is refunded. */
    ck_assert_int_eq(cache_delete(W, "big", 3), TC_OK);
    s = stats();
    ck_assert_uint_eq(s.total_malloced, 0);
    ck_assert_uint_eq(s.curr_items, 0);
    ck_assert_uint_eq(s.bytes, 0);
    free(buf);
}
END_TEST

START_TEST(test_large_items_evict_each_other)
{
    open_small(4 * MIB);
    const size_t n = 600000;
    const size_t charged = round_os_page(ITEM_HEADER_SIZE + 2 + n);
    const unsigned fit = (unsigned)(4 * MIB / charged); /* 6 */
    char *buf = malloc(n);
    char key[8];
    for (unsigned i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "b%u", i);
        fill_pattern(buf, n, i);
        ck_assert_int_eq(store_n(key, buf, n, 0, 0, CACHE_SET, 0, NULL), TC_OK);
        ck_assert_uint_le(stats().total_malloced, 4 * MIB);
    }
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.curr_items, fit);
    ck_assert_uint_eq(s.evictions, 10 - fit);
    ck_assert_uint_eq(s.total_malloced, fit * charged);
    for (unsigned i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "b%u", i);
        struct item *it = ref(key);
        if (i < 10 - fit) {
            ck_assert_ptr_null(it);
            continue;
        }
        ck_assert_ptr_nonnull(it);
        fill_pattern(buf, n, i);
        ck_assert_mem_eq(item_value(it), buf, n);
        cache_item_unref(C, it);
    }
    free(buf);
}
END_TEST

/* Pages and large items draw on one budget, which is never exceeded. */
START_TEST(test_large_and_small_share_limit)
{
    open_small(2 * MIB);
    const size_t n = 600000;
    char *buf = malloc(n);
    fill_pattern(buf, n, 1);
    ck_assert_int_eq(store_n("big1", buf, n, 0, 0, CACHE_SET, 0, NULL), TC_OK);
    char key[16], value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    for (unsigned i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%05u", i);
        ck_assert_int_eq(set(key, value), TC_OK);
    }
    struct cache_stats s = stats();
    ck_assert_uint_le(s.total_malloced, 2 * MIB);
    ck_assert_uint_gt(s.evictions, 0);
    /* Only one page fits next to the large item. */
    ck_assert_uint_eq(class_stats(class_of("k19999")).total_pages, 1);
    /* A second large item must evict the first (the pages stay). */
    ck_assert_int_eq(store_n("big2", buf, n, 0, 0, CACHE_SET, 0, NULL), TC_OK);
    ck_assert_uint_le(stats().total_malloced, 2 * MIB);
    ck_assert_ptr_null(ref("big1"));
    struct item *it = ref("big2");
    ck_assert_ptr_nonnull(it);
    ck_assert_mem_eq(item_value(it), buf, n);
    cache_item_unref(C, it);
    free(buf);
}
END_TEST

START_TEST(test_too_large)
{
    struct item *it = NULL;
    const uint32_t max = 1u << 20; /* the default item_size_max */
    char key[CACHE_KEY_MAX + 2];
    memset(key, 'k', sizeof(key));
    ck_assert_int_eq(cache_alloc(W, "k", 1, 0, 0, max + 1, &it), TC_TOO_LARGE);
    ck_assert_int_eq(cache_alloc(W, key, CACHE_KEY_MAX + 1, 0, 0, 1, &it), TC_TOO_LARGE);
    ck_assert_int_eq(cache_alloc(W, key, 0, 0, 0, 1, &it), TC_TOO_LARGE);
    ck_assert_uint_eq(stats().store_too_large, 3);
    /* The limits themselves are fine. */
    ck_assert_int_eq(cache_alloc(W, key, CACHE_KEY_MAX, 0, 0, 1, &it), TC_OK);
    item_value_mut(it)[0] = 'x';
    ck_assert_int_eq(cache_store(W, it, CACHE_SET, 0, NULL), TC_OK);
    cache_item_unref(C, it);
    ck_assert_int_eq(cache_alloc(W, "k", 1, 0, 0, max, &it), TC_OK);
    memset(item_value_mut(it), 'x', max);
    ck_assert_int_eq(cache_store(W, it, CACHE_SET, 0, NULL), TC_OK);
    cache_item_unref(C, it);
    it = ref("k");
    ck_assert_uint_eq(item_nbytes(it), max);
    cache_item_unref(C, it);
    key[CACHE_KEY_MAX] = '\0';
    ck_val(key, "x");
}
END_TEST

/* Chunk sizes decide the class: the boundaries are inclusive. */
START_TEST(test_class_boundaries)
{
    struct item *it;
    const unsigned large = cache_class_count(C);
    /* key "k": ntotal = header + 1 + nbytes */
    const uint32_t base = (uint32_t)ITEM_HEADER_SIZE + 1;
    static const struct {
        uint32_t ntotal;
        unsigned clsid;
    } cases[] = {{96, 1}, {97, 2}, {120, 2}, {121, 3}, {394840, 38}, {394841, 39}, {524288, 39}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(cache_alloc(W, "k", 1, 0, 0, cases[i].ntotal - base, &it), TC_OK);
        ck_assert_msg(it->clsid == cases[i].clsid, "ntotal %u in class %u, want %u",
                      cases[i].ntotal, it->clsid, cases[i].clsid);
        cache_item_unref(C, it);
    }
    ck_assert_int_eq(cache_alloc(W, "k", 1, 0, 0, 524289 - base, &it), TC_OK);
    ck_assert_uint_eq(it->clsid, large);
    cache_item_unref(C, it);
    /* A page for each of classes 1, 2, 3, 38 and 39; the large mapping went back. */
    ck_assert_uint_eq(stats().total_malloced, 5 * MIB);
}
END_TEST

/* Expired items at the LRU tail are reclaimed before anything live is evicted. */
START_TEST(test_alloc_reclaims_expired_first)
{
    open_small(MIB);
    char key[16], value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    const unsigned capacity = MIB / 192;
    for (unsigned i = 0; i < capacity; i++) {
        snprintf(key, sizeof(key), "e%05u", i);
        ck_assert_int_eq(set_exp(key, value, T0 + 5), TC_OK);
    }
    at(10);
    for (unsigned i = 0; i < capacity; i++) {
        snprintf(key, sizeof(key), "n%05u", i);
        ck_assert_int_eq(set(key, value), TC_OK);
    }
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.evictions, 0);
    ck_assert_uint_eq(s.reclaimed, capacity);
    ck_assert_uint_eq(s.expired_unfetched, capacity);
    ck_assert_uint_eq(s.curr_items, capacity);
    ck_val("n00000", value);
}
END_TEST

/* An item hit while in COLD gets a second chance in WARM instead of eviction. */
START_TEST(test_eviction_second_chance)
{
    open_small(MIB);
    char key[16], value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    const unsigned capacity = MIB / 192;
    for (unsigned i = 0; i < capacity; i++) {
        snprintf(key, sizeof(key), "k%05u", i);
        ck_assert_int_eq(set(key, value), TC_OK);
    }
    for (int round = 0; cache_maintain(C) && round < 100; round++)
        ;
    unsigned id = class_of("k05000"); /* in HOT: the hit does not matter */
    struct cache_class_stats k = class_stats(id);
    ck_assert_uint_eq(k.number_cold, capacity - capacity * 20 / 100);
    ck_val("k00000", value); /* the COLD tail, now active */
    for (unsigned i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "n%05u", i);
        ck_assert_int_eq(set(key, value), TC_OK);
    }
    k = class_stats(id);
    ck_assert_uint_eq(k.evicted, 100);
    ck_assert_uint_eq(k.moves_to_warm, 1);
    ck_assert_uint_eq(k.evicted_active, 0);
    ck_val("k00000", value);
    ck_missing("k00001");
    ck_missing("k00100");
    ck_val("k00101", value);
}
END_TEST

/* An allocated item that is never stored is simply freed by its unref. */
START_TEST(test_alloc_without_store)
{
    open_small(MIB);
    for (int i = 0; i < 20000; i++) {
        struct item *it = NULL;
        ck_assert_int_eq(cache_alloc(W, "k", 1, 0, 0, 100, &it), TC_OK);
        cache_item_unref(C, it);
    }
    ck_missing("k");
    ck_assert_uint_eq(stats().curr_items, 0);
    ck_assert_uint_le(stats().total_malloced, MIB);
}
END_TEST

static Suite *cache_memory_suite(void)
{
    Suite *s = suite_create("cache_memory");
    TCase *tc = tcase_create("memory");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_eviction_under_small_limit);
    tcase_add_test(tc, test_first_page_of_a_class_passes_the_budget);
    tcase_add_test(tc, test_large_items);
    tcase_add_test(tc, test_large_items_evict_each_other);
    tcase_add_test(tc, test_large_and_small_share_limit);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_alloc_without_store);
    tcase_add_test(tc, test_class_boundaries);
    tcase_add_test(tc, test_alloc_reclaims_expired_first);
    tcase_add_test(tc, test_eviction_second_chance);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cache_memory_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
