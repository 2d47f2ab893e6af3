/*
 * cache_fixture.c: the fixture and helpers shared by the engine's unit tests
 * (see cache_fixture.h). Compiled into each of check_cache,
 * check_cache_memory, check_cache_expiry and check_maintainer.
 *
 * C, W and T0 belong to the test running now: setup() opens them,
 * open_with() replaces them, teardown() closes them.
 */
#include "cache_fixture.h"

#include <string.h>

struct cache *C;
struct cache_worker *W;
cache_time_t T0;

void close_cache(void)
{
    cache_worker_destroy(&W);
    cache_destroy(&C);
}

void open_with(const struct cache_options *o)
{
    close_cache();
    ck_assert_int_eq(cache_create(o, &C), TC_OK);
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
    T0 = cache_now(C);
}

void test_options(struct cache_options *o)
{
    cache_options_default(o);
    o->manual_clock = true;
    o->no_maintainer = true;
}

void setup(void)
{
    struct cache_options o;
    test_options(&o);
    open_with(&o);
}

void teardown(void)
{
    close_cache();
}

void at(cache_time_t offset)
{
    cache_clock_set(C, T0 + offset);
}

void open_small(uint64_t mem_limit)
{
    struct cache_options o;
    test_options(&o);
    o.mem_limit = mem_limit;
    o.page_size = MIB;
    o.hashpower_init = 12;
    open_with(&o);
}

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

/* Store key=val[0..vlen) with the two-phase API. */
tc_status_e store_n(const char *key, const void *val, size_t vlen, uint32_t flags, cache_time_t exp,
                    enum cache_store_op op, uint64_t cas, uint64_t *cas_out)
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

tc_status_e store(const char *key, const char *val, uint32_t flags, cache_time_t exp,
                  enum cache_store_op op, uint64_t cas, uint64_t *cas_out)
{
    return store_n(key, val, strlen(val), flags, exp, op, cas, cas_out);
}

tc_status_e set(const char *key, const char *val)
{
    return store(key, val, 0, 0, CACHE_SET, 0, NULL);
}

tc_status_e set_exp(const char *key, const char *val, cache_time_t exp)
{
    return store(key, val, 0, exp, CACHE_SET, 0, NULL);
}

/* The value of key as a string (static buffer), or NULL if not found. */
const char *val(const char *key)
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

/* A referenced item (the caller unrefs it), or NULL. */
struct item *ref(const char *key)
{
    struct item *it = NULL;
    if (cache_get(W, key, strlen(key), &it) != TC_OK)
        return NULL;
    return it;
}

uint64_t cas_of(const char *key)
{
    struct item *it = ref(key);
    ck_assert_ptr_nonnull(it);
    uint64_t cas = item_cas(it);
    cache_item_unref(C, it);
    return cas;
}

struct cache_stats stats(void)
{
    struct cache_stats s;
    cache_stats_get(C, &s);
    return s;
}

struct cache_class_stats class_stats(unsigned id)
{
    struct cache_class_stats s;
    ck_assert_int_eq(cache_class_stats_get(C, id, &s), TC_OK);
    return s;
}

/* The class key's item lives in. */
unsigned class_of(const char *key)
{
    struct item *it = ref(key);
    ck_assert_ptr_nonnull(it);
    unsigned id = it->clsid;
    cache_item_unref(C, it);
    return id;
}

tc_status_e arith(const char *key, bool incr, uint64_t delta, uint64_t *value)
{
    return cache_arith(W, key, strlen(key), incr, delta, value, NULL);
}

void fill_pattern(char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)((i * 31 + seed) & 0xff);
}

size_t round_os_page(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}
