/*
 * check_cache_expiry.c: unit tests for the engine's notion of time
 * (storage/cache.c): touch and gat, exptime conversion (cache_realtime()),
 * expiry at exactly its second, and immediate and delayed flush_all.
 *
 * Engines without a maintainer thread, on a manual clock moved by at()
 * (cache_fixture.c), so every boundary is hit exactly.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "cache_fixture.h"

/* ---------------------------------------------------------------------------
 * touch, gat
 * ------------------------------------------------------------------------- */

START_TEST(test_touch)
{
    ck_assert_int_eq(cache_touch(W, "k", 1, T0 + 5), TC_NOT_FOUND);
    ck_assert_int_eq(store("k", "v", 3, 0, CACHE_SET, 0, NULL), TC_OK);
    uint64_t cas = cas_of("k");
    ck_assert_int_eq(cache_touch(W, "k", 1, T0 + 5), TC_OK);
    struct item *it = ref("k");
    ck_assert_uint_eq(item_exptime(it), T0 + 5);
    ck_assert_uint_eq(item_flags(it), 3);
    ck_assert_mem_eq(item_value(it), "v", 1);
    cache_item_unref(C, it);
    ck_assert_uint_eq(cas_of("k"), cas);
    at(4);
    ck_val("k", "v");
    at(5);
    ck_missing("k");
    ck_assert_int_eq(cache_touch(W, "k", 1, T0 + 50), TC_NOT_FOUND);

    /* Touching to 0 makes an expiring item permanent. */
    ck_assert_int_eq(set_exp("p", "v", T0 + 10), TC_OK);
    ck_assert_int_eq(cache_touch(W, "p", 1, 0), TC_OK);
    at(100000);
    ck_val("p", "v");
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.touch_hits, 2);
    ck_assert_uint_eq(s.touch_misses, 2);
}
END_TEST

START_TEST(test_get_touch)
{
    struct item *it = NULL;
    ck_assert_int_eq(cache_get_touch(W, "k", 1, T0 + 5, &it), TC_NOT_FOUND);
    ck_assert_int_eq(store("k", "val", 8, T0 + 5, CACHE_SET, 0, NULL), TC_OK);
    ck_assert_int_eq(cache_get_touch(W, "k", 1, T0 + 50, &it), TC_OK);
    ck_assert_ptr_nonnull(it);
    ck_assert_mem_eq(item_value(it), "val", 3);
    ck_assert_uint_eq(item_flags(it), 8);
    ck_assert_uint_eq(item_exptime(it), T0 + 50);
    cache_item_unref(C, it);
    at(10);
    ck_val("k", "val");
    at(50);
    ck_missing("k");
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.touch_hits, 1);
    ck_assert_uint_eq(s.touch_misses, 1);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Expiry
 * ------------------------------------------------------------------------- */

START_TEST(test_realtime)
{
    const cache_time_t started = cache_started(C);
    ck_assert_uint_eq(cache_realtime(C, 0), 0);
    ck_assert_uint_eq(cache_realtime(C, 1), T0 + 1);
    ck_assert_uint_eq(cache_realtime(C, 10), T0 + 10);
    ck_assert_uint_eq(cache_realtime(C, CACHE_REALTIME_MAXDELTA), T0 + CACHE_REALTIME_MAXDELTA);
    /* Past 30 days: a unix time; one long gone is 1 ("already expired"). */
    ck_assert_uint_eq(cache_realtime(C, CACHE_REALTIME_MAXDELTA + 1), 1);
    ck_assert_uint_eq(cache_realtime(C, (int64_t)started + 100), started + 100);
    ck_assert_uint_eq(cache_realtime(C, (int64_t)started - 61), started - 61);
    ck_assert_uint_eq(cache_realtime(C, (int64_t)started - 62), 1);
    ck_assert_uint_eq(cache_realtime(C, 4294967296LL + 5), UINT32_MAX);
    /* Negative: expired. */
    ck_assert_uint_eq(cache_realtime(C, -1), 1);
    ck_assert_uint_eq(cache_realtime(C, INT32_MIN), 1);
    /* Relative values follow the clock. */
    at(50);
    ck_assert_uint_eq(cache_realtime(C, 10), T0 + 60);
    ck_assert_uint_eq(cache_now(C), T0 + 50);
}
END_TEST

START_TEST(test_expiry_relative_boundary)
{
    ck_assert_int_eq(set_exp("k", "v", cache_realtime(C, 10)), TC_OK);
    at(9);
    ck_val("k", "v");
    at(10); /* expired at exactly its second */
    ck_missing("k");
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.get_expired, 1);
    ck_assert_uint_eq(s.curr_items, 0);
}
END_TEST

START_TEST(test_expiry_absolute)
{
    ck_assert_int_eq(set_exp("k", "v", cache_realtime(C, (int64_t)T0 + 100)), TC_OK);
    at(99);
    ck_val("k", "v");
    at(100);
    ck_missing("k");
}
END_TEST

START_TEST(test_expiry_negative_and_past)
{
    ck_assert_int_eq(set_exp("neg", "v", cache_realtime(C, -1)), TC_OK);
    ck_missing("neg");
    ck_assert_int_eq(set_exp("past", "v", cache_realtime(C, CACHE_REALTIME_MAXDELTA + 1)), TC_OK);
    ck_missing("past");
    ck_assert_int_eq(set_exp("now", "v", T0), TC_OK);
    ck_missing("now");
    ck_assert_uint_eq(stats().get_expired, 3);
}
END_TEST

START_TEST(test_no_expiry)
{
    ck_assert_int_eq(set_exp("k", "v", cache_realtime(C, 0)), TC_OK);
    at(10u * 365 * 24 * 3600);
    ck_val("k", "v");
}
END_TEST

START_TEST(test_expired_item_not_usable)
{
    uint64_t v;
    ck_assert_int_eq(set_exp("a", "1", T0 + 5), TC_OK);
    ck_assert_int_eq(set_exp("b", "1", T0 + 5), TC_OK);
    ck_assert_int_eq(set_exp("c", "1", T0 + 5), TC_OK);
    ck_assert_int_eq(set_exp("d", "1", T0 + 5), TC_OK);
    at(5);
    ck_assert_int_eq(arith("a", true, 1, &v), TC_NOT_FOUND);
    ck_assert_int_eq(cache_touch(W, "b", 1, 0), TC_NOT_FOUND);
    ck_assert_int_eq(cache_delete(W, "c", 1), TC_NOT_FOUND);
    ck_assert_int_eq(store("d", "x", 0, 0, CACHE_REPLACE, 0, NULL), TC_NOT_STORED);
    ck_assert_int_eq(store("d", "x", 0, 0, CACHE_APPEND, 0, NULL), TC_NOT_STORED);
    ck_assert_uint_eq(stats().curr_items, 0);
}
END_TEST

/* ---------------------------------------------------------------------------
 * flush_all
 * ------------------------------------------------------------------------- */

START_TEST(test_flush_immediate)
{
    ck_assert_int_eq(set("a", "1"), TC_OK);
    ck_assert_int_eq(set("b", "2"), TC_OK);
    cache_flush(W, 0);
    ck_missing("a");
    ck_missing("b");
    ck_assert_int_eq(set("c", "3"), TC_OK);
    ck_val("c", "3");
    /* A time not in the future is now too. */
    cache_flush(W, T0);
    ck_missing("c");
    ck_assert_int_eq(set("d", "4"), TC_OK);
    at(10);
    cache_flush(W, T0 + 3);
    ck_missing("d");
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.flush_cmds, 3);
    ck_assert_uint_eq(s.get_flushed, 4);
    ck_assert_uint_eq(s.curr_items, 0);
}
END_TEST

START_TEST(test_flush_delayed)
{
    ck_assert_int_eq(set("a", "1"), TC_OK);
    cache_flush(W, T0 + 10);
    ck_val("a", "1");
    at(5);
    ck_assert_int_eq(set("b", "2"), TC_OK);
    at(9);
    ck_val("a", "1"); /* a use before the due time does not save it */
    ck_val("b", "2");
    at(10);
    ck_missing("a");
    ck_missing("b");
    /* memcached's rule: the due second itself is flushed too. */
    ck_assert_int_eq(set("early", "0"), TC_OK);
    ck_missing("early");
    at(11);
    ck_assert_int_eq(set("c", "3"), TC_OK);
    at(15);
    ck_assert_int_eq(set("d", "4"), TC_OK);
    at(20);
    ck_val("c", "3");
    ck_val("d", "4");
    at(1000);
    ck_val("c", "3");
}
END_TEST

/* The clock may jump past the due time in one step. */
START_TEST(test_flush_delayed_clock_jumps)
{
    ck_assert_int_eq(set("a", "1"), TC_OK);
    cache_flush(W, T0 + 10);
    at(500);
    ck_missing("a");
    ck_assert_int_eq(set("b", "2"), TC_OK);
    at(501);
    ck_val("b", "2");
}
END_TEST

START_TEST(test_flush_later_call_replaces_pending)
{
    ck_assert_int_eq(set("a", "1"), TC_OK);
    cache_flush(W, T0 + 10);
    cache_flush(W, T0 + 20);
    at(10);
    ck_val("a", "1");
    at(19);
    ck_val("a", "1");
    at(20);
    ck_missing("a");

    /* An immediate flush replaces a pending delayed one. */
    ck_assert_int_eq(set("x", "1"), TC_OK);
    cache_flush(W, T0 + 30);
    at(21);
    ck_assert_int_eq(set("y", "1"), TC_OK);
    cache_flush(W, 0);
    ck_missing("x");
    ck_missing("y");
    ck_assert_int_eq(set("z", "1"), TC_OK);
    at(30);
    ck_val("z", "1");
}
END_TEST

static Suite *cache_expiry_suite(void)
{
    Suite *s = suite_create("cache_expiry");
    TCase *tc = tcase_create("time");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_touch);
    tcase_add_test(tc, test_get_touch);
    tcase_add_test(tc, test_realtime);
    tcase_add_test(tc, test_expiry_relative_boundary);
    tcase_add_test(tc, test_expiry_absolute);
    tcase_add_test(tc, test_expiry_negative_and_past);
    tcase_add_test(tc, test_no_expiry);
    tcase_add_test(tc, test_expired_item_not_usable);
    tcase_add_test(tc, test_flush_immediate);
    tcase_add_test(tc, test_flush_delayed);
    tcase_add_test(tc, test_flush_delayed_clock_jumps);
    tcase_add_test(tc, test_flush_later_call_replaces_pending);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cache_expiry_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
