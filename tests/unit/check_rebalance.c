/*
 * check_rebalance.c: a size class that gets no page (every page went to
 * other classes first) is given one by the maintainer: the allocation
 * answers TC_BUSY until then, and TC_OK after, while the item memory stays
 * within the budget.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiercache/engine.h>

#define MIB (1U << 20)

static struct cache *C;
static struct cache_worker *W;

static void open_engine(uint64_t mem)
{
    struct cache_options o;
    cache_options_default(&o);
    o.mem_limit = mem;
    o.page_size = MIB;
    o.no_maintainer = true;
    o.manual_clock = true;
    ck_assert_int_eq(cache_create(&o, &C), TC_OK);
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
}

static void close_engine(void)
{
    cache_worker_destroy(&W);
    cache_destroy(&C);
}

static tc_status_e put(const char *key, uint32_t len, char fill)
{
    struct item *it;
    tc_status_e st = cache_alloc(W, key, strlen(key), 0, 0, len, &it);
    if (st != TC_OK)
        return st;
    memset(item_value_mut(it), fill, len);
    st = cache_store(W, it, CACHE_SET, 0, NULL);
    cache_item_unref(C, it);
    return st;
}

START_TEST(test_starved_class_gets_a_page)
{
    open_engine(4 * MIB);
    char key[32];
    /* 200-byte values fill all four pages of one class. */
    for (int i = 0; i < 40000; i++) {
        snprintf(key, sizeof(key), "a:%d", i);
        ck_assert_int_eq(put(key, 200, 'a'), TC_OK);
    }
    struct cache_stats s;
    cache_stats_get(C, &s);
    ck_assert_uint_eq(s.total_malloced, 4 * MIB);
    ck_assert_uint_gt(s.evictions, 0);

    /* A 3000-byte value is another class, with no page and nothing to evict. */
    ck_assert_int_eq(put("big", 3000, 'b'), TC_BUSY);
    /* The maintainer moves a page over; then the store works. */
    for (int round = 0; round < 10 && put("big", 3000, 'b') == TC_BUSY; round++)
        cache_maintain(C);
    struct item *it;
    ck_assert_int_eq(cache_get(W, "big", 3, &it), TC_OK);
    ck_assert_uint_eq(item_nbytes(it), 3000);
    ck_assert_int_eq(item_value(it)[2999], 'b');
    cache_item_unref(C, it);

    cache_stats_get(C, &s);
    ck_assert_uint_le(s.total_malloced, 4 * MIB); /* moved, not added */
    /* Items of the other class that were not on the moved page are intact. */
    int found = 0;
    for (int i = 39000; i < 40000; i++) {
        snprintf(key, sizeof(key), "a:%d", i);
        if (cache_get(W, key, strlen(key), &it) == TC_OK) {
            ck_assert_int_eq(item_value(it)[0], 'a');
            cache_item_unref(C, it);
            found++;
        }
    }
    ck_assert_int_gt(found, 0);
    close_engine();
}
END_TEST

START_TEST(test_no_donor_means_no_memory)
{
    open_engine(MIB); /* one page in all */
    ck_assert_int_eq(put("small", 10, 's'), TC_OK);
    /* Nobody has two pages to spare: out of memory, not "retry". */
    ck_assert_int_eq(put("big", 3000, 'b'), TC_NO_MEMORY);
    close_engine();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rebalance");
    TCase *tc = tcase_create("pages");
    tcase_add_test(tc, test_starved_class_gets_a_page);
    tcase_add_test(tc, test_no_donor_means_no_memory);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
