/*
 * check_cache.c: unit tests for the engine's basic operations
 * (include/tiercache/engine.h, storage/cache.c, engine_stats.c): creation,
 * reads and writes, incr/decr, item references, CAS uniques and statistics.
 *
 * The other engine tests are check_cache_memory.c (eviction, large items,
 * limits), check_cache_expiry.c (touch, expiry, flush_all) and
 * check_maintainer.c (background work, threads). All share the fixture in
 * cache_fixture.c: engines without a maintainer thread, on a manual clock,
 * so every outcome is deterministic.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_fixture.h"

/* ---------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------- */

START_TEST(test_create_rejects_bad_options)
{
    struct cache_options o;
    struct cache *c = NULL;
#define BAD(field, value)                                                                          \
    do {                                                                                           \
        test_options(&o);                                                                          \
        o.field = value;                                                                           \
        ck_assert_msg(cache_create(&o, &c) == TC_INVALID, #field " = " #value " accepted");        \
    } while (0)
    BAD(page_size, 3000);
    BAD(page_size, 1000000);
    BAD(page_size, 2048);
    BAD(mem_limit, (1u << 20) - 1);
    BAD(growth_factor, 1.0);
    BAD(growth_factor, 0.5);
    BAD(chunk_min, 4);
    BAD(item_size_max, 0);
    BAD(hashpower_init, 11);
    BAD(hashpower_init, 33);
    BAD(hot_lru_pct, 50);
#undef BAD
    test_options(&o);
    o.hot_lru_pct = 40;
    o.warm_lru_pct = 40;
    ck_assert_int_eq(cache_create(&o, &c), TC_OK);
    cache_destroy(&c);
    ck_assert_ptr_null(c);
    cache_destroy(&c);
    cache_destroy(NULL);
    cache_worker_destroy(NULL);
}
END_TEST

/* With memcached's defaults the classes are memcached's. */
START_TEST(test_default_classes)
{
    static const uint32_t want[] = {
        96,    120,    152,    192,    240,    304,    384,    480,    600,    752,
        944,   1184,   1480,   1856,   2320,   2904,   3632,   4544,   5680,   7104,
        8880,  11104,  13880,  17352,  21696,  27120,  33904,  42384,  52984,  66232,
        82792, 103496, 129376, 161720, 202152, 252696, 315872, 394840, 524288,
    };
    const unsigned n = sizeof(want) / sizeof(want[0]);
    ck_assert_uint_eq(cache_class_count(C), n + 1); /* and the large class */
    for (unsigned i = 1; i <= n; i++) {
        struct cache_class_stats k = class_stats(i);
        ck_assert_msg(k.chunk_size == want[i - 1], "class %u: %u, want %u", i, k.chunk_size,
                      want[i - 1]);
        ck_assert_uint_eq(k.chunks_per_page, MIB / want[i - 1]);
    }
    struct cache_class_stats large = class_stats(n + 1);
    ck_assert_uint_eq(large.chunks_per_page, 0);
    struct cache_class_stats dummy;
    ck_assert_int_eq(cache_class_stats_get(C, 0, &dummy), TC_INVALID);
    ck_assert_int_eq(cache_class_stats_get(C, n + 2, &dummy), TC_INVALID);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Reads and writes
 * ------------------------------------------------------------------------- */

START_TEST(test_set_get)
{
    ck_assert_int_eq(store("foo", "bar", 5, 0, CACHE_SET, 0, NULL), TC_OK);
    struct item *it = ref("foo");
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(item_nkey(it), 3);
    ck_assert_mem_eq(item_key(it), "foo", 3);
    ck_assert_uint_eq(item_nbytes(it), 3);
    ck_assert_mem_eq(item_value(it), "bar", 3);
    ck_assert_uint_eq(item_flags(it), 5);
    ck_assert_uint_gt(item_cas(it), 0);
    ck_assert_uint_eq(item_exptime(it), 0);
    cache_item_unref(C, it);
    ck_missing("fo");
    ck_missing("fooo");
    ck_missing("nope");

    /* An empty value. */
    ck_assert_int_eq(set("empty", ""), TC_OK);
    it = ref("empty");
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(item_nbytes(it), 0);
    cache_item_unref(C, it);

    /* Binary keys and values. */
    static const char bkey[] = "k\x01\xff";
    static const char bval[] = "a\0b\r\nc";
    ck_assert_int_eq(store_n(bkey, bval, sizeof(bval) - 1, 0, 0, CACHE_SET, 0, NULL), TC_OK);
    it = ref(bkey);
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(item_nbytes(it), sizeof(bval) - 1);
    ck_assert_mem_eq(item_value(it), bval, sizeof(bval) - 1);
    cache_item_unref(C, it);
}
END_TEST

START_TEST(test_overwrite)
{
    uint64_t c1, c2;
    ck_assert_int_eq(store("k", "one", 1, 0, CACHE_SET, 0, &c1), TC_OK);
    ck_assert_int_eq(store("k", "twotwo", 2, 0, CACHE_SET, 0, &c2), TC_OK);
    ck_assert_uint_gt(c2, c1);
    struct item *it = ref("k");
    ck_assert_ptr_nonnull(it);
    ck_assert_uint_eq(item_nbytes(it), 6);
    ck_assert_mem_eq(item_value(it), "twotwo", 6);
    ck_assert_uint_eq(item_flags(it), 2);
    ck_assert_uint_eq(item_cas(it), c2);
    cache_item_unref(C, it);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.curr_items, 1);
}
END_TEST

START_TEST(test_add)
{
    ck_assert_int_eq(store("k", "first", 1, 0, CACHE_ADD, 0, NULL), TC_OK);
    ck_val("k", "first");
    uint64_t cas = cas_of("k");
    ck_assert_int_eq(store("k", "second", 2, 0, CACHE_ADD, 0, NULL), TC_NOT_STORED);
    ck_val("k", "first");
    ck_assert_uint_eq(cas_of("k"), cas);
    /* add succeeds again once the key is gone. */
    ck_assert_int_eq(cache_delete(W, "k", 1), TC_OK);
    ck_assert_int_eq(store("k", "third", 3, 0, CACHE_ADD, 0, NULL), TC_OK);
    ck_val("k", "third");
}
END_TEST

START_TEST(test_add_over_expired)
{
    ck_assert_int_eq(set_exp("k", "old", T0 + 5), TC_OK);
    at(5);
    ck_assert_int_eq(store("k", "new", 0, 0, CACHE_ADD, 0, NULL), TC_OK);
    ck_val("k", "new");
}
END_TEST

START_TEST(test_replace)
{
    ck_assert_int_eq(store("k", "x", 1, 0, CACHE_REPLACE, 0, NULL), TC_NOT_STORED);
    ck_missing("k");
    ck_assert_int_eq(set("k", "x"), TC_OK);
    ck_assert_int_eq(store("k", "yy", 9, T0 + 100, CACHE_REPLACE, 0, NULL), TC_OK);
    struct item *it = ref("k");
    ck_assert_mem_eq(item_value(it), "yy", 2);
    ck_assert_uint_eq(item_flags(it), 9);
    ck_assert_uint_eq(item_exptime(it), T0 + 100);
    cache_item_unref(C, it);
}
END_TEST

START_TEST(test_append_prepend_keep_flags_and_expiry)
{
    ck_assert_int_eq(store("k", "abc", 1, 0, CACHE_APPEND, 0, NULL), TC_NOT_STORED);
    ck_assert_int_eq(store("k", "abc", 1, 0, CACHE_PREPEND, 0, NULL), TC_NOT_STORED);
    ck_missing("k");

    ck_assert_int_eq(store("k", "abc", 7, T0 + 100, CACHE_SET, 0, NULL), TC_OK);
    uint64_t c0 = cas_of("k"), c1, c2;
    ck_assert_int_eq(store("k", "def", 99, 0, CACHE_APPEND, 0, &c1), TC_OK);
    ck_val("k", "abcdef");
    ck_assert_uint_gt(c1, c0);
    ck_assert_int_eq(store("k", "xy", 98, T0 + 5, CACHE_PREPEND, 0, &c2), TC_OK);
    ck_val("k", "xyabcdef");
    ck_assert_uint_gt(c2, c1);
    struct item *it = ref("k");
    ck_assert_uint_eq(item_flags(it), 7);
    ck_assert_uint_eq(item_exptime(it), T0 + 100);
    ck_assert_uint_eq(item_cas(it), c2);
    cache_item_unref(C, it);
    /* The new item's expiry was ignored: still there after T0 + 5. */
    at(50);
    ck_val("k", "xyabcdef");
    at(100);
    ck_missing("k");
    ck_assert_uint_eq(stats().curr_items, 0);
}
END_TEST

START_TEST(test_append_with_cas)
{
    ck_assert_int_eq(set("k", "a"), TC_OK);
    uint64_t cas = cas_of("k");
    ck_assert_int_eq(store("k", "b", 0, 0, CACHE_APPEND, cas + 1, NULL), TC_EXISTS);
    ck_val("k", "a");
    ck_assert_int_eq(store("k", "b", 0, 0, CACHE_APPEND, cas, NULL), TC_OK);
    ck_val("k", "ab");
    ck_assert_int_eq(store("k", "c", 0, 0, CACHE_PREPEND, cas, NULL), TC_EXISTS);
    ck_assert_int_eq(store("k", "c", 0, 0, CACHE_PREPEND, cas_of("k"), NULL), TC_OK);
    ck_val("k", "cab");
}
END_TEST

START_TEST(test_append_too_large)
{
    struct cache_options o;
    test_options(&o);
    o.item_size_max = 1000;
    open_with(&o);
    char big[601];
    memset(big, 'a', 600);
    big[600] = '\0';
    ck_assert_int_eq(set("k", big), TC_OK);
    memset(big, 'b', 600);
    ck_assert_int_eq(store("k", big, 0, 0, CACHE_APPEND, 0, NULL), TC_TOO_LARGE);
    big[400] = '\0'; /* exactly 1000 together */
    ck_assert_int_eq(store("k", big, 0, 0, CACHE_APPEND, 0, NULL), TC_OK);
    struct item *it = ref("k");
    ck_assert_uint_eq(item_nbytes(it), 1000);
    ck_assert_int_eq(item_value(it)[599], 'a');
    ck_assert_int_eq(item_value(it)[600], 'b');
    cache_item_unref(C, it);
}
END_TEST

START_TEST(test_cas)
{
    ck_assert_int_eq(store("k", "v", 0, 0, CACHE_CAS, 1, NULL), TC_NOT_FOUND);
    ck_missing("k");
    ck_assert_int_eq(store("k", "v1", 3, 0, CACHE_SET, 0, NULL), TC_OK);
    uint64_t c1 = cas_of("k"), c2;
    ck_assert_int_eq(store("k", "v2", 4, 0, CACHE_CAS, c1 + 1, NULL), TC_EXISTS);
    ck_assert_int_eq(store("k", "v2", 4, 0, CACHE_CAS, 0, NULL), TC_EXISTS);
    ck_val("k", "v1");
    ck_assert_int_eq(store("k", "v2", 4, 0, CACHE_CAS, c1, &c2), TC_OK);
    ck_val("k", "v2");
    ck_assert_uint_gt(c2, c1);
    ck_assert_uint_eq(cas_of("k"), c2);
    /* The old CAS is spent. */
    ck_assert_int_eq(store("k", "v3", 4, 0, CACHE_CAS, c1, NULL), TC_EXISTS);
    ck_val("k", "v2");
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.cas_misses, 1);
    ck_assert_uint_eq(s.cas_badval, 3);
    ck_assert_uint_eq(s.cas_hits, 1);
}
END_TEST

START_TEST(test_delete)
{
    ck_assert_int_eq(cache_delete(W, "k", 1), TC_NOT_FOUND);
    ck_assert_int_eq(set("k", "v"), TC_OK);
    ck_assert_int_eq(set("k2", "v"), TC_OK);
    ck_assert_int_eq(cache_delete(W, "k", 1), TC_OK);
    ck_missing("k");
    ck_val("k2", "v");
    ck_assert_int_eq(cache_delete(W, "k", 1), TC_NOT_FOUND);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.delete_hits, 1);
    ck_assert_uint_eq(s.delete_misses, 2);
    ck_assert_uint_eq(s.curr_items, 1);
}
END_TEST

/* ---------------------------------------------------------------------------
 * incr / decr
 * ------------------------------------------------------------------------- */

START_TEST(test_incr_decr)
{
    uint64_t v = 99;
    ck_assert_int_eq(arith("n", true, 1, &v), TC_NOT_FOUND);
    ck_assert_int_eq(arith("n", false, 1, &v), TC_NOT_FOUND);
    ck_assert_int_eq(set("n", "10"), TC_OK);
    ck_assert_int_eq(arith("n", true, 5, &v), TC_OK);
    ck_assert_uint_eq(v, 15);
    ck_val("n", "15");
    ck_assert_int_eq(arith("n", false, 3, &v), TC_OK);
    ck_assert_uint_eq(v, 12);
    ck_val("n", "12");
    ck_assert_int_eq(arith("n", true, 0, &v), TC_OK);
    ck_assert_uint_eq(v, 12);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.incr_hits, 2);
    ck_assert_uint_eq(s.incr_misses, 1);
    ck_assert_uint_eq(s.decr_hits, 1);
    ck_assert_uint_eq(s.decr_misses, 1);
}
END_TEST

START_TEST(test_incr_wraps)
{
    uint64_t v;
    ck_assert_int_eq(set("n", "18446744073709551615"), TC_OK);
    ck_assert_int_eq(arith("n", true, 1, &v), TC_OK);
    ck_assert_uint_eq(v, 0);
    /* In place: same length, space padded. */
    ck_val("n", "0                   ");
    ck_assert_int_eq(set("m", "18446744073709551610"), TC_OK);
    ck_assert_int_eq(arith("m", true, 10, &v), TC_OK);
    ck_assert_uint_eq(v, 4);
    ck_assert_int_eq(arith("m", true, UINT64_MAX, &v), TC_OK);
    ck_assert_uint_eq(v, 3);
}
END_TEST

START_TEST(test_decr_floors_at_zero)
{
    uint64_t v;
    ck_assert_int_eq(set("n", "5"), TC_OK);
    ck_assert_int_eq(arith("n", false, 10, &v), TC_OK);
    ck_assert_uint_eq(v, 0);
    ck_val("n", "0");
    ck_assert_int_eq(arith("n", false, 1, &v), TC_OK);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(set("m", "7"), TC_OK);
    ck_assert_int_eq(arith("m", false, UINT64_MAX, &v), TC_OK);
    ck_assert_uint_eq(v, 0);
}
END_TEST

START_TEST(test_incr_non_numeric)
{
    static const char *const bad[] = {"abc", "", "-5", "12a", "1.5", "0x10", " ", "+"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        ck_assert_int_eq(set("n", bad[i]), TC_OK);
        ck_assert_msg(arith("n", true, 1, &v) == TC_NON_NUMERIC, "incr on '%s'", bad[i]);
        ck_assert_msg(arith("n", false, 1, &v) == TC_NON_NUMERIC, "decr on '%s'", bad[i]);
        ck_val("n", bad[i]);
    }
    /* Past 64 bits is not a number either. */
    uint64_t v;
    ck_assert_int_eq(set("n", "18446744073709551616"), TC_OK);
    ck_assert_int_eq(arith("n", true, 1, &v), TC_NON_NUMERIC);
}
END_TEST

START_TEST(test_incr_number_rules)
{
    /* memcached reads the value with strtoull: leading whitespace is fine and
     * whitespace ends the number. */
    uint64_t v;
    ck_assert_int_eq(set("n", " 5"), TC_OK);
    ck_assert_int_eq(arith("n", true, 1, &v), TC_OK);
    ck_assert_uint_eq(v, 6);
    ck_val("n", "6 ");
    ck_assert_int_eq(set("n", "12 abc"), TC_OK);
    ck_assert_int_eq(arith("n", true, 1, &v), TC_OK);
    ck_assert_uint_eq(v, 13);
    ck_val("n", "13    ");
    ck_assert_int_eq(set("n", "+7"), TC_OK);
    ck_assert_int_eq(arith("n", false, 1, &v), TC_OK);
    ck_assert_uint_eq(v, 6);
    ck_val("n", "6 ");
    ck_assert_int_eq(set("n", "0000000000000000000000000001"), TC_OK);
    ck_assert_int_eq(arith("n", true, 1, &v), TC_OK);
    ck_assert_uint_eq(v, 2);
    ck_val("n", "2                           ");
}
END_TEST

START_TEST(test_incr_in_place_and_new_item)
{
    uint64_t v, c0, c1, c2, c3;
    ck_assert_int_eq(store("n", "100", 42, T0 + 1000, CACHE_SET, 0, &c0), TC_OK);
    /* Shorter: in place, padded with spaces. */
    ck_assert_int_eq(cache_arith(W, "n", 1, false, 1, &v, &c1), TC_OK);
    ck_assert_uint_eq(v, 99);
    ck_val("n", "99 ");
    ck_assert_uint_gt(c1, c0);
    ck_assert_uint_eq(cas_of("n"), c1);
    /* Same length: in place. */
    ck_assert_int_eq(cache_arith(W, "n", 1, true, 1, &v, &c2), TC_OK);
    ck_assert_uint_eq(v, 100);
    ck_val("n", "100");
    ck_assert_uint_gt(c2, c1);
    /* Longer: a new item, keeping flags and expiry. */
    ck_assert_int_eq(cache_arith(W, "n", 1, true, 900, &v, &c3), TC_OK);
    ck_assert_uint_eq(v, 1000);
    ck_val("n", "1000");
    ck_assert_uint_gt(c3, c2);
    struct item *it = ref("n");
    ck_assert_uint_eq(item_nbytes(it), 4);
    ck_assert_uint_eq(item_flags(it), 42);
    ck_assert_uint_eq(item_exptime(it), T0 + 1000);
    ck_assert_uint_eq(item_cas(it), c3);
    cache_item_unref(C, it);
    ck_assert_uint_eq(stats().curr_items, 1);
    at(1000);
    ck_missing("n");
}
END_TEST

/* A reader's reference pins the bytes: incr must not rewrite them in place. */
START_TEST(test_incr_while_referenced)
{
    uint64_t v;
    ck_assert_int_eq(set("n", "10"), TC_OK);
    struct item *held = ref("n");
    ck_assert_ptr_nonnull(held);
    uint64_t cas = item_cas(held);
    ck_assert_int_eq(arith("n", true, 5, &v), TC_OK);
    ck_assert_uint_eq(v, 15);
    ck_assert_uint_eq(item_nbytes(held), 2);
    ck_assert_mem_eq(item_value(held), "10", 2);
    ck_assert_uint_eq(item_cas(held), cas);
    ck_val("n", "15");
    cache_item_unref(C, held);
    ck_assert_int_eq(arith("n", true, 1, &v), TC_OK);
    ck_val("n", "16");
}
END_TEST

/* ---------------------------------------------------------------------------
 * References
 * ------------------------------------------------------------------------- */

START_TEST(test_ref_across_overwrite)
{
    ck_assert_int_eq(store("k", "old", 1, 0, CACHE_SET, 0, NULL), TC_OK);
    struct item *held = ref("k");
    uint64_t cas = item_cas(held);
    ck_assert_int_eq(store("k", "newer", 2, 0, CACHE_SET, 0, NULL), TC_OK);
    ck_val("k", "newer");
    ck_assert_uint_eq(item_nbytes(held), 3);
    ck_assert_mem_eq(item_value(held), "old", 3);
    ck_assert_uint_eq(item_flags(held), 1);
    ck_assert_uint_eq(item_cas(held), cas);
    ck_assert_mem_eq(item_key(held), "k", 1);
    /* Other stores reuse freed chunks; the held one must not be among them. */
    char key[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "x%d", i);
        ck_assert_int_eq(set(key, "zzz"), TC_OK);
        ck_assert_int_eq(cache_delete(W, key, strlen(key)), TC_OK);
    }
    ck_assert_mem_eq(item_value(held), "old", 3);
    cache_item_unref(C, held);
    ck_val("k", "newer");
    ck_assert_uint_eq(stats().curr_items, 1);
}
END_TEST

START_TEST(test_ref_across_delete)
{
    ck_assert_int_eq(store("k", "value", 4, 0, CACHE_SET, 0, NULL), TC_OK);
    struct item *held = ref("k");
    struct item *held2 = ref("k");
    ck_assert_ptr_eq(held, held2);
    ck_assert_int_eq(cache_delete(W, "k", 1), TC_OK);
    ck_missing("k");
    ck_assert_mem_eq(item_value(held), "value", 5);
    ck_assert_uint_eq(item_flags(held), 4);
    cache_item_unref(C, held2);
    ck_assert_mem_eq(item_value(held), "value", 5);
    cache_item_unref(C, held);
    ck_assert_uint_eq(stats().curr_items, 0);
    cache_item_unref(C, NULL);
}
END_TEST

/* A large item's memory is refunded when the last reference goes, not before. */
START_TEST(test_ref_keeps_large_memory_until_unref)
{
    open_small(4 * MIB);
    const size_t n = 700000;
    char *buf = malloc(n);
    fill_pattern(buf, n, 3);
    ck_assert_int_eq(store_n("big", buf, n, 0, 0, CACHE_SET, 0, NULL), TC_OK);
    uint64_t used = stats().total_malloced;
    ck_assert_uint_eq(used, round_os_page(ITEM_HEADER_SIZE + 3 + n));
    struct item *held = ref("big");
    ck_assert_int_eq(cache_delete(W, "big", 3), TC_OK);
    ck_assert_uint_eq(stats().total_malloced, used);
    ck_assert_mem_eq(item_value(held), buf, n);
    cache_item_unref(C, held);
    ck_assert_uint_eq(stats().total_malloced, 0);
    free(buf);
}
END_TEST

START_TEST(test_ref_blocks_eviction)
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
    ck_assert_uint_eq(stats().evictions, 0);
    struct item *held = ref("k00000"); /* the LRU tail */
    ck_assert_ptr_nonnull(held);
    for (unsigned i = capacity; i < 3 * capacity; i++) {
        snprintf(key, sizeof(key), "k%05u", i);
        ck_assert_int_eq(set(key, value), TC_OK);
    }
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.evictions, 2 * capacity);
    ck_assert_uint_gt(s.lrutail_reflocked, 0);
    ck_assert_mem_eq(item_value(held), value, 100);
    ck_val("k00000", value); /* never evicted while held */
    ck_missing("k00001");
    cache_item_unref(C, held);
    ck_assert_uint_le(s.total_malloced, MIB);
}
END_TEST

/* ---------------------------------------------------------------------------
 * CAS
 * ------------------------------------------------------------------------- */

START_TEST(test_cas_unique_and_growing)
{
    uint64_t last = 0, cas;
    char key[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i % 50);
        ck_assert_int_eq(store(key, "v", 0, 0, CACHE_SET, 0, &cas), TC_OK);
        ck_assert_uint_gt(cas, last);
        ck_assert_uint_eq(cas_of(key), cas);
        last = cas;
    }
    ck_assert_int_eq(store("k0", "w", 0, 0, CACHE_APPEND, 0, &cas), TC_OK);
    ck_assert_uint_gt(cas, last);
    last = cas;
    ck_assert_int_eq(store("k0", "w", 0, 0, CACHE_PREPEND, 0, &cas), TC_OK);
    ck_assert_uint_gt(cas, last);
    last = cas;
    uint64_t v;
    ck_assert_int_eq(set("n", "1"), TC_OK);
    last = cas_of("n");
    ck_assert_int_eq(cache_arith(W, "n", 1, true, 1, &v, &cas), TC_OK);
    ck_assert_uint_gt(cas, last);
    ck_assert_uint_eq(cas_of("n"), cas);
    /* Every live item has its own. */
    uint64_t seen[51];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        seen[i] = cas_of(key);
        for (int j = 0; j < i; j++)
            ck_assert_uint_ne(seen[i], seen[j]);
    }
}
END_TEST

/* ---------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------- */

START_TEST(test_stats_counts)
{
    uint64_t v;
    struct item *it;
    ck_assert_int_eq(set("a", "hello"), TC_OK);
    ck_assert_int_eq(set("b", "x"), TC_OK);
    ck_val("a", "hello");
    ck_missing("zz");
    ck_assert_int_eq(cache_delete(W, "b", 1), TC_OK);
    ck_assert_int_eq(cache_delete(W, "zz", 2), TC_NOT_FOUND);
    ck_assert_int_eq(set("n", "1"), TC_OK);
    ck_assert_int_eq(arith("n", true, 1, &v), TC_OK);
    ck_assert_int_eq(arith("zz", true, 1, &v), TC_NOT_FOUND);
    ck_assert_int_eq(arith("n", false, 1, &v), TC_OK);
    ck_assert_int_eq(arith("zz", false, 1, &v), TC_NOT_FOUND);
    ck_assert_int_eq(cache_touch(W, "a", 1, 0), TC_OK);
    ck_assert_int_eq(cache_touch(W, "zz", 2, 0), TC_NOT_FOUND);
    ck_assert_int_eq(cache_get_touch(W, "a", 1, 0, &it), TC_OK);
    cache_item_unref(C, it);
    uint64_t cas = cas_of("a"); /* a get hit */
    ck_assert_int_eq(store("a", "hello", 0, 0, CACHE_CAS, cas, NULL), TC_OK);
    ck_assert_int_eq(store("a", "hello", 0, 0, CACHE_CAS, cas, NULL), TC_EXISTS);
    ck_assert_int_eq(store("zz", "hello", 0, 0, CACHE_CAS, cas, NULL), TC_NOT_FOUND);
    cache_flush(W, T0 + 1000);

    struct cache_stats s = stats();
    ck_assert_uint_eq(s.get_hits, 2);
    ck_assert_uint_eq(s.get_misses, 1);
    ck_assert_uint_eq(s.delete_hits, 1);
    ck_assert_uint_eq(s.delete_misses, 1);
    ck_assert_uint_eq(s.incr_hits, 1);
    ck_assert_uint_eq(s.incr_misses, 1);
    ck_assert_uint_eq(s.decr_hits, 1);
    ck_assert_uint_eq(s.decr_misses, 1);
    ck_assert_uint_eq(s.touch_hits, 2);
    ck_assert_uint_eq(s.touch_misses, 1);
    ck_assert_uint_eq(s.cas_hits, 1);
    ck_assert_uint_eq(s.cas_badval, 1);
    ck_assert_uint_eq(s.cas_misses, 1);
    ck_assert_uint_eq(s.set_cmds, 6);
    ck_assert_uint_eq(s.flush_cmds, 1);
    ck_assert_uint_eq(s.curr_items, 2);
    ck_assert_uint_eq(s.total_items, 4); /* a, b, n, a again; incr/decr were in place */
    ck_assert_uint_eq(s.bytes, (ITEM_HEADER_SIZE + 1 + 5) + (ITEM_HEADER_SIZE + 1 + 1));
    ck_assert_uint_eq(s.limit_maxbytes, 64 * MIB);
    ck_assert_uint_eq(s.total_malloced, MIB); /* one page of the first class */
    ck_assert_uint_eq(s.active_slabs, 1);
    ck_assert_uint_eq(s.hash_power_level, 16);
    ck_assert_uint_eq(s.hash_bytes, (1u << 16) * sizeof(void *));
    ck_assert(!s.hash_is_expanding);
    ck_assert_uint_eq(s.evictions, 0);
}
END_TEST

START_TEST(test_stats_reset)
{
    ck_assert_int_eq(set("a", "hello"), TC_OK);
    ck_assert_int_eq(set("b", "world"), TC_OK);
    ck_val("a", "hello");
    ck_missing("zz");
    cache_flush(W, T0 + 100);
    struct cache_stats before = stats();
    cache_stats_reset(C);
    struct cache_stats s = stats();
    /* Counters start over... */
    ck_assert_uint_eq(s.get_hits, 0);
    ck_assert_uint_eq(s.get_misses, 0);
    ck_assert_uint_eq(s.set_cmds, 0);
    ck_assert_uint_eq(s.total_items, 0);
    ck_assert_uint_eq(s.flush_cmds, 0);
    /* ...gauges do not. */
    ck_assert_uint_eq(s.curr_items, 2);
    ck_assert_uint_eq(s.bytes, before.bytes);
    ck_assert_uint_eq(s.total_malloced, before.total_malloced);
    ck_assert_uint_eq(s.limit_maxbytes, before.limit_maxbytes);
    ck_assert_uint_eq(s.hash_power_level, before.hash_power_level);

    ck_val("a", "hello");
    ck_val("b", "world");
    ck_missing("zz");
    ck_assert_int_eq(set("c", "!"), TC_OK);
    s = stats();
    ck_assert_uint_eq(s.get_hits, 2);
    ck_assert_uint_eq(s.get_misses, 1);
    ck_assert_uint_eq(s.set_cmds, 1);
    ck_assert_uint_eq(s.total_items, 1);
    ck_assert_uint_eq(s.curr_items, 3);

    /* Class counters are rebased too. */
    unsigned id = class_of("a"); /* one more hit */
    struct cache_class_stats k = class_stats(id);
    ck_assert_uint_eq(k.get_hits, 3);
    ck_assert_uint_eq(k.cmd_set, 1);
    ck_assert_uint_eq(k.number, 3);
    cache_stats_reset(C);
    k = class_stats(id);
    ck_assert_uint_eq(k.get_hits, 0);
    ck_assert_uint_eq(k.cmd_set, 0);
    ck_assert_uint_eq(k.number, 3);
    ck_assert_uint_eq(k.used_chunks, 3);
}
END_TEST

START_TEST(test_class_stats)
{
    ck_assert_int_eq(set("a", "1"), TC_OK);
    ck_assert_int_eq(set("b", "2"), TC_OK);
    ck_assert_int_eq(set("c", "3"), TC_OK);
    ck_assert_int_eq(set("b", "22"), TC_OK);
    ck_assert_int_eq(cache_delete(W, "c", 1), TC_OK);
    ck_val("a", "1");
    ck_val("a", "1");
    unsigned id = class_of("a"); /* a third hit */
    ck_assert_uint_eq(id, 1);
    struct cache_class_stats k = class_stats(id);
    ck_assert_uint_eq(k.chunk_size, 96);
    ck_assert_uint_eq(k.chunks_per_page, MIB / 96);
    ck_assert_uint_eq(k.total_pages, 1);
    ck_assert_uint_eq(k.total_chunks, MIB / 96);
    ck_assert_uint_eq(k.used_chunks, 2);
    ck_assert_uint_eq(k.free_chunks, MIB / 96 - 2);
    ck_assert_uint_eq(k.number, 2);
    ck_assert_uint_eq(k.number_hot, 2);
    ck_assert_uint_eq(k.cmd_set, 4);
    ck_assert_uint_eq(k.get_hits, 3);
    ck_assert_uint_eq(k.hits_to_hot, 3);
    ck_assert_uint_eq(k.delete_hits, 1);
    ck_assert_uint_eq(k.mem_requested, (ITEM_HEADER_SIZE + 2) + (ITEM_HEADER_SIZE + 3));
    /* Other classes are untouched. */
    struct cache_class_stats k2 = class_stats(2);
    ck_assert_uint_eq(k2.total_pages, 0);
    ck_assert_uint_eq(k2.number, 0);
    ck_assert_uint_eq(k2.cmd_set, 0);
}
END_TEST

START_TEST(test_worker_counters_survive_destroy)
{
    ck_assert_int_eq(set("a", "1"), TC_OK);
    struct cache_worker *w2;
    ck_assert_int_eq(cache_worker_create(C, &w2), TC_OK);
    struct item *it;
    ck_assert_int_eq(cache_get(w2, "a", 1, &it), TC_OK);
    cache_item_unref(C, it);
    ck_assert_int_eq(cache_get(w2, "b", 1, &it), TC_NOT_FOUND);
    ck_assert_uint_eq(stats().get_hits, 1);
    cache_worker_destroy(&w2);
    ck_assert_ptr_null(w2);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.get_hits, 1);
    ck_assert_uint_eq(s.get_misses, 1);
    ck_assert_uint_eq(s.set_cmds, 1);
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("basic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_create_rejects_bad_options);
    tcase_add_test(tc, test_default_classes);
    tcase_add_test(tc, test_set_get);
    tcase_add_test(tc, test_overwrite);
    tcase_add_test(tc, test_add);
    tcase_add_test(tc, test_add_over_expired);
    tcase_add_test(tc, test_replace);
    tcase_add_test(tc, test_append_prepend_keep_flags_and_expiry);
    tcase_add_test(tc, test_append_with_cas);
    tcase_add_test(tc, test_append_too_large);
    tcase_add_test(tc, test_cas);
    tcase_add_test(tc, test_delete);
    suite_add_tcase(s, tc);

    tc = tcase_create("arith");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_incr_decr);
    tcase_add_test(tc, test_incr_wraps);
    tcase_add_test(tc, test_decr_floors_at_zero);
    tcase_add_test(tc, test_incr_non_numeric);
    tcase_add_test(tc, test_incr_number_rules);
    tcase_add_test(tc, test_incr_in_place_and_new_item);
    tcase_add_test(tc, test_incr_while_referenced);
    suite_add_tcase(s, tc);

    tc = tcase_create("references");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ref_across_overwrite);
    tcase_add_test(tc, test_ref_across_delete);
    tcase_add_test(tc, test_ref_keeps_large_memory_until_unref);
    tcase_add_test(tc, test_ref_blocks_eviction);
    tcase_add_test(tc, test_cas_unique_and_growing);
    suite_add_tcase(s, tc);

    tc = tcase_create("stats");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_stats_counts);
    tcase_add_test(tc, test_stats_reset);
    tcase_add_test(tc, test_class_stats);
    tcase_add_test(tc, test_worker_counters_survive_destroy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cache_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
