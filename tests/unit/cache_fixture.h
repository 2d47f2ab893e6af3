/*
 * cache_fixture.h: the fixture and helpers shared by the engine's unit tests
 * (check_cache.c, check_cache_memory.c, check_cache_expiry.c,
 * check_maintainer.c); cache_fixture.c is compiled into each of them.
 *
 * Every engine opened here runs without its maintainer thread and on a
 * manual clock: tests move time with at() (cache_clock_set()) and do
 * background work with cache_maintain(), so every outcome is deterministic.
 * The fixture keeps one engine C and one worker W open per test; the helpers
 * act on them, hold no reference when they return, and abort the test (via
 * Check) on anything unexpected. Only the test's own thread may call them,
 * except where a test creates workers of its own.
 */
#ifndef TC_TESTS_UNIT_CACHE_FIXTURE_H
#define TC_TESTS_UNIT_CACHE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include <tiercache/engine.h>

#include "item.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

extern struct cache *C;        /* the engine under test */
extern struct cache_worker *W; /* its worker for the test's own thread */
extern cache_time_t T0;        /* the engine's clock when it was opened */

/* ---------------------------------------------------------------------------
 * Fixture
 * ------------------------------------------------------------------------- */

/* Destroy C and W (either may be NULL). */
void close_cache(void);

/* Replace C and W by a new engine with options o; T0 is its clock. */
void open_with(const struct cache_options *o);

/* Defaults, manual clock, no maintainer thread. */
void test_options(struct cache_options *o);

/* A small engine: test_options() with mem_limit, 1 MiB pages, hashpower 12. */
void open_small(uint64_t mem_limit);

/* Checked fixture: an engine with test_options(), and its teardown. */
void setup(void);
void teardown(void);

/* Set the engine's clock to T0 + offset. */
void at(cache_time_t offset);

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

/* Store key=val[0..vlen) with the two-phase API. */
tc_status_e store_n(const char *key, const void *val, size_t vlen, uint32_t flags, cache_time_t exp,
                    enum cache_store_op op, uint64_t cas, uint64_t *cas_out);

/* store_n() of a string value. */
tc_status_e store(const char *key, const char *val, uint32_t flags, cache_time_t exp,
                  enum cache_store_op op, uint64_t cas, uint64_t *cas_out);

/* A plain set, without or with an expiry time. */
tc_status_e set(const char *key, const char *val);
tc_status_e set_exp(const char *key, const char *val, cache_time_t exp);

/* The value of key as a string (static buffer), or NULL if not found. */
const char *val(const char *key);

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

/* A referenced item (the caller unrefs it), or NULL. */
struct item *ref(const char *key);

/* The CAS unique of key, which must exist. */
uint64_t cas_of(const char *key);

/* The engine's statistics, and those of class id (which must exist). */
struct cache_stats stats(void);
struct cache_class_stats class_stats(unsigned id);

/* The class key's item lives in; key must exist. */
unsigned class_of(const char *key);

/* incr (or decr) key by delta; *value is the result. */
tc_status_e arith(const char *key, bool incr, uint64_t delta, uint64_t *value);

/* n bytes of a pattern that depends on seed. */
void fill_pattern(char *buf, size_t n, unsigned seed);

/* n rounded up to whole 4 KiB pages: what a large item is charged. */
size_t round_os_page(size_t n);

#endif
