/*
 * check_cache.c: unit tests for the engine (include/tiercache/engine.h,
 * storage/cache.c, maintainer.c, engine_stats.c).
 *
 * Every engine here runs without its maintainer thread and on a manual
 * clock: tests move time with cache_clock_set() and do background work with
 * cache_maintain(), so every outcome is deterministic.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiercache/engine.h>

#include "item.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static struct cache *C;
static struct cache_worker *W;
static cache_time_t T0; /* the engine's clock when it was opened */

static void close_cache(void)
{
    cache_worker_destroy(&W);
    cache_destroy(&C);
}

static void open_with(const struct cache_options *o)
{
    close_cache();
    ck_assert_int_eq(cache_create(o, &C), TC_OK);
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
    T0 = cache_now(C);
}

static void test_options(struct cache_options *o)
{
    cache_options_default(o);
    o->manual_clock = true;
    o->no_maintainer = true;
}

static void setup(void)
{
    struct cache_options o;
    test_options(&o);
    open_with(&o);
}

static void teardown(void)
{
    close_cache();
}

static void at(cache_time_t offset)
{
    cache_clock_set(C, T0 + offset);
}

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

/* Store key=val[0..vlen) with the two-phase API. */
static tc_status_e store_n(const char *key, const void *val, size_t vlen, uint32_t flags,
                           cache_time_t exp, enum cache_store_op op, uint64_t cas,
                           uint64_t *cas_out)
{
    struct item *it = NULL;
    tc_status_e st = cache_alloc(W, key, strlen(key), flags, exp, (uint32_t)vlen, &it);
    if (st != TC_OK)
        return st;
    if (item_nbytes(it) != vlen || item_flags(it) != flags || item_nkey(it) != strlen(key))
        ck_abort_msg("cache_alloc gave an item of the wrong shape");
    memcpy(item_value_mut(it), val, vlen);
    st = cache_store(W, it, op, cas, cas_out);
    cache_item_unref(C, it);
    return st;
}

static tc_status_e store(const char *key, const char *val, uint32_t flags, cache_time_t exp,
                         enum cache_store_op op, uint64_t cas, uint64_t *cas_out)
{
    return store_n(key, val, strlen(val), flags, exp, op, cas, cas_out);
}

static tc_status_e set(const char *key, const char *val)
{
    return store(key, val, 0, 0, CACHE_SET, 0, NULL);
}

static tc_status_e set_exp(const char *key, const char *val, cache_time_t exp)
{
    return store(key, val, 0, exp, CACHE_SET, 0, NULL);
}

/* The value of key as a string (static buffer), or NULL if not found. */
static const char *val(const char *key)
{
    static char buf[8192];
    struct item *it;
    if (cache_get(W, key, strlen(key), &it) != TC_OK)
        return NULL;
    uint32_t n = item_nbytes(it);
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    memcpy(buf, item_value(it), n);
    buf[n] = '\0';
    cache_item_unref(C, it);
    return buf;
}

#define ck_val(key, want)                                                                          \
    do {                                                                                           \
        const char *v_ = val(key);                                                                 \
        ck_assert_msg(v_ != NULL, "'%s' not found, want '%s'", key, want);                         \
        ck_assert_str_eq(v_, want);                                                                \
    } while (0)

#define ck_missing(key)                                                                            \
    do {                                                                                           \
        const char *v_ = val(key);                                                                 \
        ck_assert_msg(v_ == NULL, "'%s' found ('%s'), want none", key, v_);                        \
    } while (0)

/* A referenced item, or NULL. */
static struct item *ref(const char *key)
{
    struct item *it = NULL;
    if (cache_get(W, key, strlen(key), &it) != TC_OK)
        return NULL;
    return it;
}

static uint64_t cas_of(const char *key)
{
    struct item *it = ref(key);
    ck_assert_ptr_nonnull(it);
    uint64_t cas = item_cas(it);
    cache_item_unref(C, it);
    return cas;
}

static struct cache_stats stats(void)
{
    struct cache_stats s;
    cache_stats_get(C, &s);
    return s;
}

static struct cache_class_stats class_stats(unsigned id)
{
    struct cache_class_stats s;
    ck_assert_int_eq(cache_class_stats_get(C, id, &s), TC_OK);
    return s;
}

/* The class an item of this key and value size lives in. */
static unsigned class_of(const char *key)
{
    struct item *it = ref(key);
    ck_assert_ptr_nonnull(it);
    unsigned id = it->clsid;
    cache_item_unref(C, it);
    return id;
}

static tc_status_e arith(const char *key, bool incr, uint64_t delta, uint64_t *value)
{
    return cache_arith(W, key, strlen(key), incr, delta, value, NULL);
}

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

/* ---------------------------------------------------------------------------
 * Memory: eviction, large items, limits
 * ------------------------------------------------------------------------- */

static void open_small(uint64_t mem_limit)
{
    struct cache_options o;
    test_options(&o);
    o.mem_limit = mem_limit;
    o.page_size = MIB;
    o.hashpower_init = 12;
    open_with(&o);
}

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

START_TEST(test_no_memory_in_another_class)
{
    open_small(MIB); /* one page in all */
    ck_assert_int_eq(set("small", "v"), TC_OK);
    struct item *it = NULL;
    /* 1000 bytes is another class, which can get no page and has nothing to evict. */
    ck_assert_int_eq(cache_alloc(W, "big", 3, 0, 0, 1000, &it), TC_NO_MEMORY);
    ck_assert_int_eq(cache_alloc(W, "huge", 4, 0, 0, 600000, &it), TC_NO_MEMORY);
    struct cache_stats s = stats();
    ck_assert_uint_eq(s.store_no_memory, 2);
    ck_assert_uint_le(s.total_malloced, MIB);
    ck_val("small", "v");
    uint64_t oom = 0;
    for (unsigned id = 1; id <= cache_class_count(C); id++)
        oom += class_stats(id).outofmemory;
    ck_assert_uint_eq(oom, 2);
}
END_TEST

static void fill_pattern(char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)((i * 31 + seed) & 0xff);
}

static size_t round_os_page(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

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
        struct cache_stats s;
        cache_stats_get(C, &s);
        if (s.total_malloced > s.limit_maxbytes)
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
    struct cache_stats s = stats();
    ck_assert_uint_le(s.total_malloced, 8 * MIB);
    ck_assert_uint_gt(s.evictions + s.reclaimed, 0);
    /* Every linked item is counted once: the LRUs and the table agree. */
    uint64_t number = 0;
    for (unsigned id = 1; id <= cache_class_count(C); id++)
        number += class_stats(id).number;
    ck_assert_uint_eq(number, s.curr_items);
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

    tc = tcase_create("time");
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

    tc = tcase_create("memory");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_eviction_under_small_limit);
    tcase_add_test(tc, test_no_memory_in_another_class);
    tcase_add_test(tc, test_large_items);
    tcase_add_test(tc, test_large_items_evict_each_other);
    tcase_add_test(tc, test_large_and_small_share_limit);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_alloc_without_store);
    tcase_add_test(tc, test_class_boundaries);
    tcase_add_test(tc, test_alloc_reclaims_expired_first);
    tcase_add_test(tc, test_eviction_second_chance);
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

    tc = tcase_create("maintain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_hash_growth_through_maintain);
    tcase_add_test(tc, test_crawler_reclaims_expired);
    tcase_add_test(tc, test_crawler_reclaims_flushed);
    tcase_add_test(tc, test_lru_segments_through_maintain);
    tcase_add_test(tc, test_concurrent_incr);
    tcase_add_test(tc, test_concurrent_stress);
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
