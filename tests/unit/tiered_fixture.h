/*
 * tiered_fixture.h: the fixture and helpers shared by the unit tests of the
 * engine with a flash tier (check_tiered.c, check_meta_ops.c);
 * tiered_fixture.c is compiled into each of them.
 *
 * The test engine: 4 MiB of RAM in 1 MiB pages, FLASH_SIZE (64 MiB unless a
 * test changes it before engine_open()) of flash in a directory of its own
 * per test, no maintainer thread and a manual clock. Tests move time with
 * at(), drive pre-cleaning with cache_maintain() and wait for the flash
 * writer with drain() (bounded: it fails the test after 10 s). Values of
 * VLEN bytes all fall in one slab class; a small item stored first
 * (reserve_small_class()) gives the small class its page before fillers
 * take them all.
 *
 * The fixture keeps one engine C and one worker W open per test; the
 * helpers act on them, hold no reference when they return, and abort the
 * test (via Check) on anything unexpected. Only the test's own thread may
 * call them.
 */
#ifndef TC_TESTS_UNIT_TIERED_FIXTURE_H
#define TC_TESTS_UNIT_TIERED_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include <tiercache/engine.h>

#include "cache_internal.h"
#include "item.h"

#define KIB  1024u
#define MIB  (1024u * 1024u)
#define VLEN 1000 /* value size of the test keys and fillers */

extern struct cache *C;        /* the engine under test */
extern struct cache_worker *W; /* its worker for the test's own thread */
extern cache_time_t T0;        /* the engine's clock when the test began */
extern unsigned FILLED;        /* fillers stored so far (their names are unique per test) */
extern uint64_t FLASH_SIZE;    /* of the next engine_open(); setup() sets 64 MiB */

/* ---------------------------------------------------------------------------
 * The engine
 * ------------------------------------------------------------------------- */

/* Open C and W on the test's flash directory; T0 is the new clock. */
void engine_open(void);

/* Close C and W (no cache_persist()). */
void engine_close(void);

/* Checked fixture: a fresh flash directory and an engine on it; teardown
 * closes the engine and removes the directory. */
void setup(void);
void teardown(void);

/* Set the engine's clock to T0 + offset. */
void at(cache_time_t offset);

/* The engine's tier statistics now. */
struct cache_tier_stats tier(void);

/* Wait until the flash writer has applied everything queued (fails the
 * test after 10 s). */
void drain(void);

/* Stop (with cache_persist() first if clean) and start again on the same
 * directory, the clock where it was (T0 kept). */
void restart(bool clean);

/* Run suite s with a root directory /tmp/<name>.XXXXXX for the tests'
 * flash directories (removed afterwards). Returns main()'s exit status. */
int tiered_run(Suite *s, const char *name);

/* ---------------------------------------------------------------------------
 * Items
 * ------------------------------------------------------------------------- */

/* The value of version `ver` of a key: every byte value, shifted per key. */
void value_of(const char *key, unsigned ver, char *dst, size_t n);

/* A call on `what` answered TC_BUSY (RAM has no room until the writer has
 * cleaned): drive the maintainer and the writer before the next try, and
 * fail the test once `tries` reaches 2000. */
void busy_retry(const char *what, int tries);

/* Store with the two-phase API; retries while the engine says TC_BUSY. */
tc_status_e store_n(const char *key, const void *val, size_t vlen, uint32_t flags, cache_time_t exp,
                    enum cache_store_op op, uint64_t cas, uint64_t *cas_out);

/* Version `ver` of key, VLEN bytes. */
tc_status_e put(const char *key, unsigned ver, uint32_t flags, cache_time_t exp, uint64_t *cas_out);

/* A numeric value padded to VLEN with spaces (memcached reads the number
 * up to the first space), flags 42, no expiry. */
tc_status_e put_number(const char *key, const char *num, uint64_t *cas_out);

/* Does RAM hold an entry for the key? Its iflags, or -1. */
int ram_entry(const char *key);

/* Does RAM hold a live item (not a tombstone) for the key? */
bool in_ram(const char *key);

/* Queue the key's RAM item for the flash writer now (as pre-cleaning would);
 * fails the test if it cannot be queued. */
void demote_now(const char *key);

/* Store `n` more fillers (never read): RAM pressure. */
void fill(unsigned n);

/* Fill until none of keys[] is in RAM any more: they are on flash only
 * (fails the test after 20000 fillers). */
void push_out(const char *const *keys, size_t n);

/* The small class gets its page before the fillers take them all. */
void reserve_small_class(void);

/* What a get returned. */
struct got {
    tc_status_e st;
    bool heap; /* a copy from flash, not a RAM item */
    char val[4096];
    uint32_t nval, flags;
    cache_time_t exp;
    uint64_t cas;
};

/* cache_get() of key, copied out (the reference is dropped). */
struct got get_full(const char *key);

/* The key reads back as version ver with these flags and CAS. */
#define ck_version(key, ver, fl, cas_)                                                             \
    do {                                                                                           \
        struct got g_ = get_full(key);                                                             \
        char w_[VLEN];                                                                             \
        value_of(key, ver, w_, sizeof(w_));                                                        \
        ck_assert_msg(g_.st == TC_OK, "'%s': %s", key, tc_strerror(g_.st));                        \
        ck_assert_msg(g_.nval == VLEN && memcmp(g_.val, w_, VLEN) == 0,                            \
                      "'%s': not the bytes of version %u", key, (unsigned)(ver));                  \
        ck_assert_uint_eq(g_.flags, fl);                                                           \
        ck_assert_uint_eq(g_.cas, cas_);                                                           \
    } while (0)

#define ck_miss(key)                                                                               \
    do {                                                                                           \
        struct got g_ = get_full(key);                                                             \
        ck_assert_msg(g_.st == TC_NOT_FOUND, "'%s' found (%u bytes), want a miss", key, g_.nval);  \
    } while (0)

/* ---------------------------------------------------------------------------
 * RAM without room
 * ------------------------------------------------------------------------- */

/* What pins the VLEN class: references to its RAM items, and its free
 * chunks allocated and held, so that nothing can be allocated or evicted. */
struct pinned {
    struct item **v;
    size_t n, cap;
};

/* Pin every filler in RAM and allocate the class's free chunks (the writer
 * drained first). unpin() releases them all. */
void pin_class(struct pinned *p);
void unpin(struct pinned *p);

#endif
