/*
 * check_meta_ops.c: unit tests for the engine's side of memcached's meta
 * commands (include/tiercache/engine.h, "The meta protocol", over
 * storage/meta_ops.c and ops.c): cache_mget, cache_store_meta,
 * cache_mdelete, cache_marith and cache_peek, on the flash-tier engine of
 * tiered_fixture.h (small RAM, a flash directory per test, manual clock).
 *
 * What matters: each call answers as memcached 1.6.18 does (the W/X/Z
 * logic of mg N, R and a stale item; ms I with an older CAS; md I; ma N and
 * C; h, l and t as they were before the request), and answers the SAME
 * whether the key is in RAM or only on flash. Most tests are loop tests run
 * twice: _i = 0 with the key in RAM, _i = 1 with the key on flash only
 * (written by the writer, then evicted from RAM by fillers, and checked to
 * have no RAM entry before the call); a failure names the run as
 * "test_name:0" or "test_name:1". The meta bits (stale, win sent, binary
 * key) must also survive the trip to flash and a restart, clean or not.
 *
 * memcached's answers were read off memcached 1.6.18 (the probe of
 * docs/META.md); e.g. "mg k N30 h" then "mg k h" answers h0 W, then h1 Z,
 * and "ma" on a stale item keeps X and Z (it changes the number in place).
 */
#include "tiered_fixture.h"

#include <stdio.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum where { IN_RAM = 0, ON_FLASH = 1 }; /* _i of a loop test */

/* Every test starts with the small slab class holding a page, so that
 * small items (created by N, numbers) find room once fillers fill RAM. */
static void meta_setup(void)
{
    setup();
    reserve_small_class();
}

/* ---------------------------------------------------------------------------
 * Putting keys in place
 * ------------------------------------------------------------------------- */

/* Write the key's RAM version to flash now, unless it is on its way
 * already (a spilled or demoting item) or there (clean, or a spilled
 * version the writer has already taken out of RAM). */
static void write_now(const char *key)
{
    int fl = ram_entry(key);
    if (fl >= 0 && !(fl & (ITEM_TOMBSTONE | ITEM_DEMOTING | ITEM_CLEAN)))
        demote_now(key);
    drain();
}

/* Put the keys where the test's run wants them: left in RAM, or written to
 * flash and evicted from RAM (then RAM has no entry for them at all). A key
 * read before (bumped: ACTIVE) would go to WARM and might stay in RAM
 * whatever the fillers do, so setups read with u (no_bump) only. */
static void place(int where, const char *const *keys, size_t n)
{
    if (where == ON_FLASH) {
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(in_ram(keys[i]), "'%s' is not in RAM to start with", keys[i]);
            ck_assert_msg(!(ram_entry(keys[i]) & ITEM_ACTIVE),
                          "'%s' was read (bumped) before place(): it could stay in RAM", keys[i]);
            write_now(keys[i]);
        }
        push_out(keys, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (where == ON_FLASH)
            ck_assert_msg(ram_entry(keys[i]) < 0, "'%s' is not on flash only (RAM flags %#x)",
                          keys[i], (unsigned)ram_entry(keys[i]));
        else
            ck_assert_msg(in_ram(keys[i]), "'%s' is not in RAM", keys[i]);
    }
}

#define ck_flash_only(key)                                                                         \
    ck_assert_msg(ram_entry(key) < 0, "'%s' came to RAM (flags %#x)", key, (unsigned)ram_entry(key))

/* A numeric value padded to VLEN with spaces, with flags and an expiry. */
static tc_status_e put_num(const char *key, const char *num, uint32_t flags, cache_time_t exp,
                           uint64_t *cas_out)
{
    char v[VLEN];
    memset(v, ' ', sizeof(v));
    memcpy(v, num, strlen(num));
    return store_n(key, v, sizeof(v), flags, exp, CACHE_SET, 0, cas_out);
}

/* ---------------------------------------------------------------------------
 * The calls, retried while the engine says TC_BUSY
 * ------------------------------------------------------------------------- */

/* What cache_mget answered: its out fields and the item's, copied. */
struct mg {
    tc_status_e st;
    struct cache_mget m;
    bool heap;
    char val[2 * VLEN];
    uint32_t nval, flags;
    cache_time_t exp;
    uint64_t cas;
};

static struct mg mget(const char *key, const struct cache_mget *in)
{
    struct mg r;
    memset(&r, 0, sizeof(r));
    for (int tries = 0;; tries++) {
        struct item *it = NULL;
        r.m = *in;
        r.st = cache_mget(W, key, strlen(key), &r.m, &it);
        if (r.st == TC_BUSY) {
            busy_retry(key, tries);
            continue;
        }
        if (r.st == TC_OK) {
            ck_assert_ptr_nonnull(it);
            r.heap = (item_iflags(it) & ITEM_HEAP) != 0;
            r.nval = item_nbytes(it);
            ck_assert_uint_le(r.nval, sizeof(r.val));
            memcpy(r.val, item_value(it), r.nval);
            r.flags = item_flags(it);
            r.exp = item_exptime(it);
            r.cas = item_cas(it);
            ck_assert_uint_eq(item_nkey(it), strlen(key));
            ck_assert(memcmp(item_key(it), key, strlen(key)) == 0);
            cache_item_unref(C, it);
        }
        return r;
    }
}

/* A plain mg (no flags that act): a hit bumps the item. */
static struct mg mget_plain(const char *key)
{
    return mget(key, &(struct cache_mget){0});
}

/* mg u: nothing bumped. */
static struct mg mget_nobump(const char *key)
{
    return mget(key, &(struct cache_mget){.no_bump = true});
}

/* ms with its meta extras: the value val[0..vlen), two-phase. */
struct ms {
    const void *val;
    size_t vlen;
    uint32_t flags;
    cache_time_t exp;
    enum cache_store_op op;
    uint64_t cas;
    bool invalidate, key_binary;
};

static tc_status_e mstore(const char *key, const struct ms *r, uint64_t *cas_out)
{
    struct item *it = NULL;
    tc_status_e st;
    for (int tries = 0; (st = cache_alloc(W, key, strlen(key), r->flags, r->exp, (uint32_t)r->vlen,
                                          &it)) == TC_BUSY;
         tries++)
        busy_retry(key, tries);
    if (st != TC_OK)
        return st;
    memcpy(item_value_mut(it), r->val, r->vlen);
    for (int tries = 0; (st = cache_store_meta(W, it, r->op, r->cas, r->invalidate, r->key_binary,
                                               cas_out)) == TC_BUSY;
         tries++)
        busy_retry(key, tries);
    cache_item_unref(C, it);
    return st;
}

static tc_status_e mdelete(const char *key, const struct cache_mdelete *d)
{
    tc_status_e st;
    for (int tries = 0; (st = cache_mdelete(W, key, strlen(key), d)) == TC_BUSY; tries++)
        busy_retry(key, tries);
    return st;
}

static tc_status_e marith(const char *key, struct cache_marith *m)
{
    struct cache_marith in = *m;
    tc_status_e st;
    for (int tries = 0; (st = cache_marith(W, key, strlen(key), m)) == TC_BUSY; tries++) {
        busy_retry(key, tries);
        *m = in;
    }
    return st;
}

/* What cache_peek answered. */
struct pk {
    tc_status_e st;
    struct cache_walk_entry e;
    unsigned meta;
};

static struct pk peek(const char *key)
{
    struct pk p;
    memset(&p, 0, sizeof(p));
    p.st = cache_peek(W, key, strlen(key), &p.e, &p.meta);
    return p;
}

/* The key's meta bits as cache_peek sees them (it must be live). */
static unsigned meta_of(const char *key)
{
    struct pk p = peek(key);
    ck_assert_msg(p.st == TC_OK, "'%s': %s", key, tc_strerror(p.st));
    return p.meta;
}

static uint64_t cas_now(const char *key)
{
    struct pk p = peek(key);
    ck_assert_msg(p.st == TC_OK, "'%s': %s", key, tc_strerror(p.st));
    return p.e.cas;
}

#define STALE_WON (CACHE_META_STALE | CACHE_META_WIN_SENT)

/* md I, then an mg that wins: stale with a win sent (memcached's X and Z).
 * The mg is u (no bump), so that the key can still be place()d. */
static void make_stale_won(const char *key)
{
    ck_assert_int_eq(mdelete(key, &(struct cache_mdelete){.invalidate = true}), TC_OK);
    struct mg r = mget_nobump(key);
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_msg(r.m.win && (r.m.meta & STALE_WON) == CACHE_META_STALE, "'%s': win %d, meta %#x",
                  key, r.m.win, r.m.meta);
    ck_assert_uint_eq(meta_of(key) & STALE_WON, STALE_WON);
}

/* The bytes of version ver of key. */
static bool is_version(const char *key, unsigned ver, const char *val, uint32_t nval)
{
    char want[VLEN];
    value_of(key, ver, want, sizeof(want));
    return nval == VLEN && memcmp(val, want, VLEN) == 0;
}

/* A number padded with spaces to VLEN. */
static bool is_number(const char *num, const char *val, uint32_t nval)
{
    size_t n = strlen(num);
    if (nval != VLEN || memcmp(val, num, n) != 0)
        return false;
    for (size_t i = n; i < nval; i++)
        if (val[i] != ' ')
            return false;
    return true;
}

/* ---------------------------------------------------------------------------
 * mg
 * ------------------------------------------------------------------------- */

START_TEST(test_mget_hit_and_miss)
{
    uint64_t cas;
    ck_assert_int_eq(put("mg:hit", 1, 5, T0 + 1000, &cas), TC_OK);
    const char *keys[] = {"mg:hit"};
    place(_i, keys, 1);
    at(20);
    struct cache_stats s0;
    cache_stats_get(C, &s0);

    struct mg r = mget_plain("mg:hit");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_msg(is_version("mg:hit", 1, r.val, r.nval), "not the bytes stored");
    ck_assert_uint_eq(r.flags, 5);
    ck_assert_uint_eq(r.exp, T0 + 1000);
    ck_assert_uint_eq(r.cas, cas);
    ck_assert(!r.m.created);
    ck_assert(!r.m.win);
    ck_assert_uint_eq(r.m.meta, 0);
    ck_assert(!r.m.fetched);
    ck_assert_uint_eq(r.m.atime, T0);
    ck_assert_uint_eq(r.m.old_exptime, T0 + 1000);

    /* A miss creates nothing. */
    r = mget_plain("mg:absent");
    ck_assert_int_eq(r.st, TC_NOT_FOUND);
    ck_assert(!r.m.created && !r.m.win);
    ck_assert_int_lt(ram_entry("mg:absent"), 0);
    ck_assert_int_eq(peek("mg:absent").st, TC_NOT_FOUND);

    struct cache_stats s1;
    cache_stats_get(C, &s1);
    ck_assert_uint_eq(s1.get_hits - s0.get_hits, 1);
    ck_assert_uint_eq(s1.get_misses - s0.get_misses, 1);

    /* The hit lost nothing: the same version again, also after a restart. */
    r = mget_plain("mg:hit");
    ck_assert(r.st == TC_OK && is_version("mg:hit", 1, r.val, r.nval));
    ck_assert_uint_eq(r.cas, cas);
    restart(true);
    ck_version("mg:hit", 1, 5, cas);

    /* Expired: a miss. */
    at(1000);
    ck_assert_int_eq(mget_plain("mg:hit").st, TC_NOT_FOUND);
}
END_TEST

/* h and l are what they were before the request; u leaves them. (memcached
 * updates l only from a second hit on, so l is checked where both agree:
 * after two hits in the same second.) */
START_TEST(test_mget_fetched_and_atime_before_request)
{
    ck_assert_int_eq(put("mg:ha", 1, 0, T0 + 1000, NULL), TC_OK);
    const char *keys[] = {"mg:ha"};
    place(_i, keys, 1);

    at(10);
    struct mg r = mget_nobump("mg:ha");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert(!r.m.fetched);
    ck_assert_uint_eq(r.m.atime, T0);
    at(15);
    r = mget_nobump("mg:ha");
    ck_assert(!r.m.fetched);
    ck_assert_uint_eq(r.m.atime, T0);
    if (_i == ON_FLASH)
        ck_flash_only("mg:ha"); /* u brings nothing to RAM */

    at(20);
    r = mget_plain("mg:ha");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_msg(!r.m.fetched, "h1 on the first read");
    ck_assert_uint_eq(r.m.atime, T0);
    bool first_read_in_ram = in_ram("mg:ha"); /* promoted by the first read? */
    r = mget_plain("mg:ha");
    ck_assert_int_eq(r.st, TC_OK);
    if (_i == ON_FLASH && !first_read_in_ram) {
        /* A read served from flash is not written back (a write per read
         * would cost more than h and l are worth; docs/META.md): they stay
         * as the record has them until the item comes back to RAM. */
        ck_assert(!r.m.fetched);
        ck_assert_uint_eq(r.m.atime, T0);
        return;
    }
    ck_assert_msg(r.m.fetched, "h0 on the second read (the first read was not recorded)");

    at(30);
    r = mget_nobump("mg:ha");
    ck_assert(r.m.fetched);
    ck_assert_uint_eq(r.m.atime, T0 + 20);
    at(40);
    r = mget_nobump("mg:ha");
    ck_assert(r.m.fetched);
    ck_assert_uint_eq(r.m.atime, T0 + 20);
    ck_assert_msg(is_version("mg:ha", 1, r.val, r.nval), "not the bytes stored");
}
END_TEST

START_TEST(test_mget_touch)
{
    uint64_t cas;
    ck_assert_int_eq(put("mg:t", 1, 3, T0 + 1000, &cas), TC_OK);
    ck_assert_int_eq(put("mg:t0", 1, 4, 0, NULL), TC_OK);
    const char *keys[] = {"mg:t", "mg:t0"};
    place(_i, keys, 2);
    at(5);

    struct mg r = mget("mg:t", &(struct cache_mget){.touch = true, .touch_exptime = T0 + 50});
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.old_exptime, T0 + 1000);
    ck_assert_uint_eq(r.exp, T0 + 50);
    ck_assert_uint_eq(r.cas, cas); /* a touch keeps the CAS */
    ck_assert_uint_eq(r.flags, 3);
    ck_assert(!r.m.win && !r.m.created);
    ck_assert_uint_eq(r.m.meta, 0);
    ck_assert_msg(is_version("mg:t", 1, r.val, r.nval), "not the bytes stored");
    if (_i == ON_FLASH) /* a change: in RAM now, or spilled */
        ck_assert_int_ge(ram_entry("mg:t"), 0);
    ck_assert_uint_eq(peek("mg:t").e.exptime, T0 + 50);

    r = mget("mg:t0", &(struct cache_mget){.touch = true, .touch_exptime = T0 + 70});
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.old_exptime, 0);
    ck_assert_uint_eq(r.exp, T0 + 70);

    /* The new expiries are what flash keeps too. */
    restart(true);
    at(49);
    ck_version("mg:t", 1, 3, cas);
    ck_assert_uint_eq(get_full("mg:t").exp, T0 + 50);
    ck_assert_uint_eq(get_full("mg:t0").exp, T0 + 70);
    at(50);
    ck_miss("mg:t");
    at(70);
    ck_miss("mg:t0");
}
END_TEST

/* A key whose last version expired (in RAM, or as a flash record): N makes
 * an empty item and wins; the next N finds it and sees Z. */
START_TEST(test_mget_vivify)
{
    uint64_t old_cas;
    ck_assert_int_eq(put("mv:k", 1, 9, T0 + 100, &old_cas), TC_OK);
    ck_assert_int_eq(put("mv:b", 1, 9, T0 + 100, NULL), TC_OK);
    const char *keys[] = {"mv:k", "mv:b"};
    place(_i, keys, 2);
    at(100);
    ck_assert_int_eq(mget_plain("mv:k").st, TC_NOT_FOUND); /* no N: nothing made */
    ck_assert_int_eq(peek("mv:k").st, TC_NOT_FOUND);

    struct cache_mget viv = {.vivify = true, .vivify_exptime = T0 + 400};
    struct mg r = mget("mv:k", &viv);
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert(r.m.created);
    ck_assert(r.m.win);
    ck_assert_uint_eq(r.m.meta, 0);
    ck_assert(!r.m.fetched);
    ck_assert_uint_eq(r.m.old_exptime, 0);
    ck_assert_uint_eq(r.nval, 0);
    ck_assert_uint_eq(r.flags, 0);
    ck_assert_uint_eq(r.exp, T0 + 400);
    ck_assert_uint_gt(r.cas, old_cas);
    uint64_t cas = r.cas;
    ck_assert_uint_eq(meta_of("mv:k"), CACHE_META_WIN_SENT);

    at(101);
    r = mget("mv:k", &viv);
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert(!r.m.created);
    ck_assert(!r.m.win);
    ck_assert_uint_eq(r.m.meta, CACHE_META_WIN_SENT);
    ck_assert_uint_eq(r.m.old_exptime, T0 + 400);
    ck_assert_uint_eq(r.exp, T0 + 400); /* N does not change an existing item */
    ck_assert_uint_eq(r.cas, cas);
    ck_assert_uint_eq(r.nval, 0);

    /* memcached does not mark a created item as having a base64 key. */
    r = mget("mv:b",
             &(struct cache_mget){.vivify = true, .vivify_exptime = T0 + 400, .key_binary = true});
    ck_assert(r.st == TC_OK && r.m.created && r.m.win);
    ck_assert_uint_eq(meta_of("mv:b"), CACHE_META_WIN_SENT);

    /* A store replaces the item and its win mark. */
    ck_assert_int_eq(store_n("mv:k", "new", 3, 0, 0, CACHE_SET, 0, NULL), TC_OK);
    r = mget_plain("mv:k");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.meta, 0);
    ck_assert(!r.m.win);
}
END_TEST

/* memcached bumps the item mg N created (h1 on the next mg, as
 * "mg k N30 h" then "mg k h" answers on memcached 1.6.18). */
START_TEST(test_mget_vivify_then_hit_reports_fetched)
{
    struct mg r = mget("mv:h", &(struct cache_mget){.vivify = true, .vivify_exptime = T0 + 400});
    ck_assert(r.st == TC_OK && r.m.created);
    ck_assert(!r.m.fetched);
    r = mget_plain("mv:h");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_msg(r.m.fetched, "h0 after the mg N that created the item (memcached: h1)");
}
END_TEST

START_TEST(test_mget_recache)
{
    ck_assert_int_eq(put("rc:k", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(put("rc:never", 1, 0, 0, NULL), TC_OK);
    const char *keys[] = {"rc:k", "rc:never"};
    place(_i, keys, 2);
    at(10);

    /* Not under the threshold (which is strict): no win. */
    struct mg r = mget("rc:k", &(struct cache_mget){.recache = true, .recache_time = T0 + 500});
    ck_assert(r.st == TC_OK && !r.m.win);
    r = mget("rc:k", &(struct cache_mget){.recache = true, .recache_time = T0 + 1000});
    ck_assert(r.st == TC_OK && !r.m.win);
    ck_assert_uint_eq(r.m.meta, 0);
    ck_assert_uint_eq(meta_of("rc:k"), 0);

    /* Under it: the first wins, once. */
    r = mget("rc:k", &(struct cache_mget){.recache = true, .recache_time = T0 + 1001});
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_msg(r.m.win, "no W with the TTL under R's threshold");
    ck_assert_uint_eq(r.m.meta, 0);
    ck_assert_uint_eq(r.exp, T0 + 1000);
    ck_assert_msg(is_version("rc:k", 1, r.val, r.nval), "not the bytes stored");
    if (_i == ON_FLASH) /* a win is a change: in RAM now, or spilled */
        ck_assert_int_ge(ram_entry("rc:k"), 0);
    ck_assert_uint_eq(meta_of("rc:k"), CACHE_META_WIN_SENT);
    r = mget("rc:k", &(struct cache_mget){.recache = true, .recache_time = T0 + 5000});
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert(!r.m.win);
    ck_assert_uint_eq(r.m.meta, CACHE_META_WIN_SENT);

    /* No expiry: R never wins. */
    r = mget("rc:never", &(struct cache_mget){.recache = true, .recache_time = T0 + 100000});
    ck_assert(r.st == TC_OK && !r.m.win);
    ck_assert_uint_eq(meta_of("rc:never"), 0);
}
END_TEST

/* R compares with the expiry T leaves if it comes after T, else with the
 * one before. */
START_TEST(test_mget_recache_after_touch)
{
    const char *keys[] = {"rt:a", "rt:b", "rt:c", "rt:d"};
    ck_assert_int_eq(put("rt:a", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(put("rt:b", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(put("rt:c", 1, 0, T0 + 200, NULL), TC_OK);
    ck_assert_int_eq(put("rt:d", 1, 0, T0 + 200, NULL), TC_OK);
    place(_i, keys, 4);
    at(10);
    struct {
        const char *key;
        cache_time_t touch;
        bool after;
        bool win;
    } cases[] = {{"rt:a", T0 + 100, false, false},
                 {"rt:b", T0 + 100, true, true},
                 {"rt:c", T0 + 1000, true, false},
                 {"rt:d", T0 + 1000, false, true}};
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct mg r =
            mget(cases[i].key, &(struct cache_mget){.touch = true,
                                                    .touch_exptime = cases[i].touch,
                                                    .recache = true,
                                                    .recache_time = T0 + 500,
                                                    .recache_after_touch = cases[i].after});
        ck_assert_int_eq(r.st, TC_OK);
        ck_assert_msg(r.m.win == cases[i].win, "%s: win %d, want %d", cases[i].key, r.m.win,
                      cases[i].win);
        ck_assert_uint_eq(r.exp, cases[i].touch);
        ck_assert_uint_eq(meta_of(cases[i].key), cases[i].win ? CACHE_META_WIN_SENT : 0);
    }
}
END_TEST

/* A failed reply (no_win) records no win: the next reader can win. */
START_TEST(test_mget_no_win)
{
    ck_assert_int_eq(put("nw:stale", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(mdelete("nw:stale", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    ck_assert_int_eq(put("nw:rc", 1, 0, T0 + 1000, NULL), TC_OK);
    const char *keys[] = {"nw:stale", "nw:rc"};
    place(_i, keys, 2);
    at(10);

    struct mg r = mget("nw:stale", &(struct cache_mget){.no_win = true});
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.meta, CACHE_META_STALE);
    ck_assert_uint_eq(meta_of("nw:stale"), CACHE_META_STALE);
    r = mget_plain("nw:stale");
    ck_assert_msg(r.st == TC_OK && r.m.win, "the reader after a failed reply did not win");
    ck_assert_uint_eq(r.m.meta, CACHE_META_STALE);
    ck_assert_uint_eq(meta_of("nw:stale"), STALE_WON);

    struct cache_mget rc = {.recache = true, .recache_time = T0 + 2000, .no_win = true};
    r = mget("nw:rc", &rc);
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(meta_of("nw:rc"), 0);
    rc.no_win = false;
    r = mget("nw:rc", &rc);
    ck_assert(r.st == TC_OK && r.m.win);
    ck_assert_uint_eq(meta_of("nw:rc"), CACHE_META_WIN_SENT);

    /* N with a failed reply: created, but no win recorded; R can win it. */
    r = mget("nw:viv",
             &(struct cache_mget){.vivify = true, .vivify_exptime = T0 + 300, .no_win = true});
    ck_assert(r.st == TC_OK && r.m.created);
    ck_assert_uint_eq(meta_of("nw:viv"), 0);
    r = mget("nw:viv", &(struct cache_mget){.recache = true, .recache_time = T0 + 1000});
    ck_assert(r.st == TC_OK && !r.m.created && r.m.win);
    ck_assert_uint_eq(meta_of("nw:viv"), CACHE_META_WIN_SENT);
}
END_TEST

/* A stale item: the first reader wins (X W), the next see Z X. */
START_TEST(test_mget_stale_item)
{
    uint64_t cas;
    ck_assert_int_eq(put("st:k", 1, 6, T0 + 1000, &cas), TC_OK);
    ck_assert_int_eq(mdelete("st:k", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    uint64_t stale_cas = cas_now("st:k");
    ck_assert_uint_gt(stale_cas, cas);
    const char *keys[] = {"st:k"};
    place(_i, keys, 1);
    at(10);

    struct mg r = mget_plain("st:k");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.meta, CACHE_META_STALE);
    ck_assert_msg(r.m.win, "the first reader of a stale item did not win");
    ck_assert_msg(is_version("st:k", 1, r.val, r.nval), "md I changed the value");
    ck_assert_uint_eq(r.flags, 6);
    ck_assert_uint_eq(r.cas, stale_cas); /* a win keeps the CAS */
    if (_i == ON_FLASH)
        ck_assert_int_ge(ram_entry("st:k"), 0);
    for (int i = 0; i < 3; i++) {
        r = mget_plain("st:k");
        ck_assert_int_eq(r.st, TC_OK);
        ck_assert_uint_eq(r.m.meta, STALE_WON);
        ck_assert(!r.m.win);
    }
    /* R does not win a stale item whose win was sent. */
    r = mget("st:k", &(struct cache_mget){.recache = true, .recache_time = T0 + 5000});
    ck_assert(r.st == TC_OK && !r.m.win);
}
END_TEST

/*
 * A win or a touch on a flash key while RAM has no room (the class pinned,
 * nothing evictable): memcached needs no memory for either, so the new
 * version goes straight back to flash (spilled), and reads see it before
 * and after the writer has it.
 */
START_TEST(test_mget_on_flash_key_without_ram)
{
    uint64_t cas_rc, cas_t;
    ck_assert_int_eq(put("sp:st", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(mdelete("sp:st", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    ck_assert_int_eq(put("sp:rc", 1, 0, T0 + 1000, &cas_rc), TC_OK);
    ck_assert_int_eq(put("sp:t", 1, 0, T0 + 1000, &cas_t), TC_OK);
    const char *keys[] = {"sp:st", "sp:rc", "sp:t"};
    place(ON_FLASH, keys, 3);
    struct pinned p = {0};
    pin_class(&p);
    uint64_t spills0 = tier().spills;

    struct mg r = mget_plain("sp:st");
    ck_assert(r.st == TC_OK && r.m.win);
    r = mget("sp:rc", &(struct cache_mget){.recache = true, .recache_time = T0 + 2000});
    ck_assert(r.st == TC_OK && r.m.win);
    ck_assert_uint_eq(r.cas, cas_rc);
    r = mget("sp:t", &(struct cache_mget){.touch = true, .touch_exptime = T0 + 60});
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.old_exptime, T0 + 1000);
    ck_assert_uint_eq(tier().spills, spills0 + 3);

    for (int round = 0; round < 2; round++) { /* spilled, then on flash */
        r = mget_plain("sp:st");
        ck_assert_int_eq(r.st, TC_OK);
        ck_assert_uint_eq(r.m.meta, STALE_WON);
        ck_assert(!r.m.win);
        ck_assert_msg(is_version("sp:st", 1, r.val, r.nval), "not the bytes stored");
        r = mget("sp:rc", &(struct cache_mget){.recache = true, .recache_time = T0 + 2000});
        ck_assert_uint_eq(r.m.meta, CACHE_META_WIN_SENT);
        ck_assert(!r.m.win);
        ck_assert_uint_eq(r.cas, cas_rc);
        r = mget_nobump("sp:t");
        ck_assert_uint_eq(r.exp, T0 + 60);
        ck_assert_uint_eq(r.cas, cas_t);
        drain();
    }
    for (size_t i = 0; i < NELEM(keys); i++)
        ck_assert_msg(ram_entry(keys[i]) < 0, "%s still in RAM after the writer drained", keys[i]);
    unpin(&p);
}
END_TEST

/* ---------------------------------------------------------------------------
 * ms
 * ------------------------------------------------------------------------- */

START_TEST(test_store_meta_key_binary)
{
    char v[VLEN];
    value_of("kb:k", 1, v, VLEN);
    uint64_t cas;
    ck_assert_int_eq(
        mstore("kb:k", &(struct ms){.val = v, .vlen = VLEN, .exp = T0 + 1000, .key_binary = true},
               &cas),
        TC_OK);
    ck_assert_uint_eq(meta_of("kb:k"), CACHE_META_KEY_BINARY);
    ck_assert_int_eq(put("kb:plain", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_uint_eq(meta_of("kb:plain"), 0);
    const char *keys[] = {"kb:k", "kb:plain"};
    place(_i, keys, 2);

    struct pk p = peek("kb:k");
    ck_assert_int_eq(p.st, TC_OK);
    ck_assert_uint_eq(p.meta, CACHE_META_KEY_BINARY);
    ck_assert_int_eq(p.e.on_flash, _i == ON_FLASH);
    struct mg r = mget_plain("kb:k");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.meta, CACHE_META_KEY_BINARY);
    ck_assert_uint_eq(r.cas, cas);
    ck_assert_uint_eq(meta_of("kb:plain"), 0);

    /* A store without b: the new item's key is not binary. */
    ck_assert_int_eq(mstore("kb:k", &(struct ms){.val = "x", .vlen = 1, .op = CACHE_REPLACE}, NULL),
                     TC_OK);
    ck_assert_uint_eq(meta_of("kb:k"), 0);
    /* b on a key stored without it (on flash in the second run). */
    ck_assert_int_eq(
        mstore("kb:plain", &(struct ms){.val = "y", .vlen = 1, .op = CACHE_SET, .key_binary = true},
               NULL),
        TC_OK);
    ck_assert_uint_eq(meta_of("kb:plain"), CACHE_META_KEY_BINARY);
}
END_TEST

/*
 * ms I C<older>: stored all the same, marked stale, with the current
 * expiry and the current win mark, and a new CAS. Any other CAS that does
 * not match is EX, and without I every mismatch is.
 */
START_TEST(test_store_meta_invalidate)
{
    uint64_t cas;
    ck_assert_int_eq(put("si:k", 1, 0, T0 + 1000, &cas), TC_OK);
    struct mg r = mget(
        "si:k", &(struct cache_mget){.no_bump = true, .recache = true, .recache_time = T0 + 2000});
    ck_assert(r.st == TC_OK && r.m.win);
    ck_assert_int_eq(put("si:nowin", 1, 0, T0 + 1000, NULL), TC_OK);
    uint64_t cas_nowin = cas_now("si:nowin");
    const char *keys[] = {"si:k", "si:nowin"};
    place(_i, keys, 2);
    ck_assert_uint_ge(cas, 2);
    ck_assert_uint_eq(cas_now("si:k"), cas);

    /* Without I: EX. With I and a CAS above: EX. Nothing changes. */
    ck_assert_int_eq(mstore("si:k",
                            &(struct ms){.val = "new", .vlen = 3, .op = CACHE_CAS, .cas = cas - 1},
                            NULL),
                     TC_EXISTS);
    ck_assert_int_eq(
        mstore("si:k",
               &(struct ms){
                   .val = "new", .vlen = 3, .op = CACHE_CAS, .cas = cas + 100, .invalidate = true},
               NULL),
        TC_EXISTS);
    if (_i == ON_FLASH)
        ck_flash_only("si:k");
    struct pk p = peek("si:k");
    ck_assert_uint_eq(p.e.cas, cas);
    ck_assert_uint_eq(p.meta, CACHE_META_WIN_SENT);
    ck_assert_uint_eq(p.e.nbytes, VLEN);

    /* With I and an older CAS: stored, stale, current expiry and win mark. */
    uint64_t nc = 0;
    ck_assert_int_eq(mstore("si:k",
                            &(struct ms){.val = "new",
                                         .vlen = 3,
                                         .flags = 9,
                                         .exp = T0 + 50,
                                         .op = CACHE_CAS,
                                         .cas = cas - 1,
                                         .invalidate = true},
                            &nc),
                     TC_OK);
    ck_assert_uint_gt(nc, cas);
    p = peek("si:k");
    ck_assert_int_eq(p.st, TC_OK);
    ck_assert_uint_eq(p.e.cas, nc);
    ck_assert_uint_eq(p.e.exptime, T0 + 1000);
    ck_assert_uint_eq(p.e.flags, 9);
    ck_assert_uint_eq(p.e.nbytes, 3);
    ck_assert_uint_eq(p.meta, STALE_WON);
    r = mget_plain("si:k");
    ck_assert(r.st == TC_OK && r.nval == 3 && memcmp(r.val, "new", 3) == 0);
    ck_assert_uint_eq(r.m.meta, STALE_WON);
    ck_assert(!r.m.win);

    /* An item with no win sent: stale, and its next reader wins. */
    ck_assert_int_eq(
        mstore(
            "si:nowin",
            &(struct ms){
                .val = "nw", .vlen = 2, .op = CACHE_CAS, .cas = cas_nowin - 1, .invalidate = true},
            NULL),
        TC_OK);
    r = mget_plain("si:nowin");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.meta, CACHE_META_STALE);
    ck_assert(r.m.win);

    /* The matching CAS stores a plain, fresh item (no X, no Z). */
    uint64_t cur = cas_now("si:k");
    ck_assert_int_eq(mstore("si:k",
                            &(struct ms){.val = "ok",
                                         .vlen = 2,
                                         .exp = T0 + 77,
                                         .op = CACHE_CAS,
                                         .cas = cur,
                                         .invalidate = true},
                            &nc),
                     TC_OK);
    p = peek("si:k");
    ck_assert_uint_eq(p.meta, 0);
    ck_assert_uint_eq(p.e.exptime, T0 + 77);
    ck_assert_uint_eq(p.e.cas, nc);

    /* A CAS store on a missing key: NF, even with I. */
    ck_assert_int_eq(
        mstore("si:none",
               &(struct ms){.val = "z", .vlen = 1, .op = CACHE_CAS, .cas = 1, .invalidate = true},
               NULL),
        TC_NOT_FOUND);
}
END_TEST

/* ---------------------------------------------------------------------------
 * md
 * ------------------------------------------------------------------------- */

START_TEST(test_mdelete_plain_and_cas)
{
    uint64_t cas_c;
    ck_assert_int_eq(put("md:del", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(put("md:cas", 1, 2, T0 + 1000, &cas_c), TC_OK);
    const char *keys[] = {"md:del", "md:cas"};
    place(_i, keys, 2);

    ck_assert_int_eq(mdelete("md:del", &(struct cache_mdelete){0}), TC_OK);
    ck_miss("md:del");
    ck_assert_int_eq(mget_plain("md:del").st, TC_NOT_FOUND);
    ck_assert_int_eq(peek("md:del").st, TC_NOT_FOUND);
    ck_assert_int_eq(mdelete("md:del", &(struct cache_mdelete){0}), TC_NOT_FOUND);
    ck_assert_int_eq(mdelete("md:never", &(struct cache_mdelete){0}), TC_NOT_FOUND);
    ck_assert_int_eq(mdelete("md:never", &(struct cache_mdelete){.has_cas = true, .cas = 5}),
                     TC_NOT_FOUND);

    /* C: a mismatch leaves the item as it was (still on flash only). */
    ck_assert_int_eq(mdelete("md:cas", &(struct cache_mdelete){.has_cas = true, .cas = cas_c + 1}),
                     TC_EXISTS);
    ck_assert_int_eq(
        mdelete("md:cas",
                &(struct cache_mdelete){.has_cas = true, .cas = cas_c + 1, .invalidate = true}),
        TC_EXISTS);
    if (_i == ON_FLASH)
        ck_flash_only("md:cas");
    ck_assert_uint_eq(meta_of("md:cas"), 0);
    ck_version("md:cas", 1, 2, cas_c);
    ck_assert_int_eq(mdelete("md:cas", &(struct cache_mdelete){.has_cas = true, .cas = cas_c}),
                     TC_OK);
    ck_miss("md:cas");

    /* Gone for good: after the writer, and after restarts. */
    drain();
    ck_miss("md:del");
    restart(false);
    ck_miss("md:del");
    ck_miss("md:cas");
    restart(true);
    ck_miss("md:del");
    ck_miss("md:cas");
}
END_TEST

/* md I: the item stays, with a new CAS, stale, its win mark cleared; with
 * T a new expiry. */
START_TEST(test_mdelete_invalidate)
{
    uint64_t cas, cas_t;
    ck_assert_int_eq(put("mi:k", 1, 3, T0 + 1000, &cas), TC_OK);
    struct mg r = mget(
        "mi:k", &(struct cache_mget){.no_bump = true, .recache = true, .recache_time = T0 + 2000});
    ck_assert(r.st == TC_OK && r.m.win);
    ck_assert_int_eq(put("mi:t", 1, 4, T0 + 1000, &cas_t), TC_OK);
    const char *keys[] = {"mi:k", "mi:t"};
    place(_i, keys, 2);
    ck_assert_uint_eq(meta_of("mi:k"), CACHE_META_WIN_SENT);

    ck_assert_int_eq(mdelete("mi:k", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    struct pk p = peek("mi:k");
    ck_assert_int_eq(p.st, TC_OK);
    ck_assert_uint_eq(p.meta, CACHE_META_STALE);
    ck_assert_uint_gt(p.e.cas, cas);
    ck_assert_uint_eq(p.e.exptime, T0 + 1000);
    ck_assert_uint_eq(p.e.flags, 3);
    ck_assert_uint_eq(p.e.nbytes, VLEN);
    uint64_t stale_cas = p.e.cas;
    ck_version("mi:k", 1, 3, stale_cas);
    r = mget_plain("mi:k");
    ck_assert(r.st == TC_OK && r.m.win);
    ck_assert_uint_eq(r.m.meta, CACHE_META_STALE);
    r = mget_plain("mi:k");
    ck_assert(r.st == TC_OK && !r.m.win);
    ck_assert_uint_eq(r.m.meta, STALE_WON);
    /* Again: the win mark goes, a new CAS. */
    ck_assert_int_eq(
        mdelete("mi:k",
                &(struct cache_mdelete){.has_cas = true, .cas = stale_cas, .invalidate = true}),
        TC_OK);
    ck_assert_uint_eq(meta_of("mi:k"), CACHE_META_STALE);
    ck_assert_uint_gt(cas_now("mi:k"), stale_cas);

    /* With T. */
    ck_assert_int_eq(
        mdelete("mi:t",
                &(struct cache_mdelete){.invalidate = true, .touch = true, .exptime = T0 + 60}),
        TC_OK);
    p = peek("mi:t");
    ck_assert_uint_eq(p.meta, CACHE_META_STALE);
    ck_assert_uint_eq(p.e.exptime, T0 + 60);
    ck_assert_uint_gt(p.e.cas, cas_t);
    at(59);
    ck_version("mi:t", 1, 4, p.e.cas);
    at(60);
    ck_miss("mi:t");
}
END_TEST

/* md I on a flash key: the invalidated version is what reads see from then
 * on, also after a restart, clean or not; never the version before it. */
START_TEST(test_mdelete_invalidate_across_restarts)
{
    const char *keys[] = {"mr:a", "mr:written", "mr:b"};
    uint64_t old[3], nc[3];
    for (size_t i = 0; i < NELEM(keys); i++)
        ck_assert_int_eq(put(keys[i], 1, 8, T0 + 1000, &old[i]), TC_OK);
    place(_i, keys, NELEM(keys));
    for (size_t i = 0; i < NELEM(keys); i++) {
        ck_assert_int_eq(mdelete(keys[i], &(struct cache_mdelete){.invalidate = true}), TC_OK);
        nc[i] = cas_now(keys[i]);
        ck_assert_uint_gt(nc[i], old[i]);
    }
    write_now("mr:written"); /* its new version reaches flash */
    drain();                 /* and every queued flash delete is applied */

    /* Without cache_persist: RAM is lost. The written version stays; of
     * the others, never the version before the md I. */
    restart(false);
    struct pk p = peek("mr:written");
    ck_assert_int_eq(p.st, TC_OK);
    ck_assert_uint_eq(p.e.cas, nc[1]);
    ck_assert_uint_eq(p.meta, CACHE_META_STALE);
    ck_version("mr:written", 1, 8, nc[1]);
    const char *lost[] = {"mr:a", "mr:b"};
    for (size_t i = 0; i < NELEM(lost); i++) {
        p = peek(lost[i]);
        ck_assert_msg(p.st == TC_NOT_FOUND || p.meta == CACHE_META_STALE,
                      "%s: the version before md I came back (CAS %llu, meta %#x)", lost[i],
                      (unsigned long long)p.e.cas, p.meta);
    }

    /* md I again, then a clean stop: all of it kept. */
    ck_assert_int_eq(mdelete("mr:written", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    uint64_t nc2 = cas_now("mr:written");
    restart(true);
    p = peek("mr:written");
    ck_assert_int_eq(p.st, TC_OK);
    ck_assert_uint_eq(p.e.cas, nc2);
    ck_assert_uint_eq(p.meta, CACHE_META_STALE);
    ck_assert(p.e.on_flash);
    struct mg r = mget_plain("mr:written");
    ck_assert(r.st == TC_OK && r.m.win);
    ck_assert_uint_eq(r.m.meta, CACHE_META_STALE);
    ck_assert_msg(is_version("mr:written", 1, r.val, r.nval), "not the bytes stored");
}
END_TEST

/* md I on a flash key while RAM has no room: spilled to flash, stale. */
START_TEST(test_mdelete_invalidate_flash_key_without_ram)
{
    uint64_t cas;
    ck_assert_int_eq(put("mn:k", 1, 0, T0 + 1000, &cas), TC_OK);
    const char *keys[] = {"mn:k"};
    place(ON_FLASH, keys, 1);
    struct pinned p = {0};
    pin_class(&p);
    uint64_t spills0 = tier().spills;
    ck_assert_int_eq(mdelete("mn:k", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    ck_assert_uint_eq(tier().spills, spills0 + 1);
    uint64_t nc = cas_now("mn:k");
    ck_assert_uint_gt(nc, cas);
    for (int round = 0; round < 2; round++) { /* spilled, then on flash */
        struct pk pk = peek("mn:k");
        ck_assert_int_eq(pk.st, TC_OK);
        ck_assert_uint_eq(pk.e.cas, nc);
        ck_assert_uint_eq(pk.meta, CACHE_META_STALE);
        drain();
    }
    ck_flash_only("mn:k");
    unpin(&p);
    struct mg r = mget_plain("mn:k");
    ck_assert(r.st == TC_OK && r.m.win);
    ck_assert_msg(is_version("mn:k", 1, r.val, r.nval), "not the bytes stored");
}
END_TEST

/* ---------------------------------------------------------------------------
 * ma
 * ------------------------------------------------------------------------- */

START_TEST(test_marith)
{
    const char *keys[] = {"ma:i", "ma:d", "ma:cx", "ma:cm", "ma:t", "ma:x"};
    uint64_t cas[NELEM(keys)];
    for (size_t i = 0; i < NELEM(keys); i++) {
        if (strcmp(keys[i], "ma:x") == 0) {
            ck_assert_int_eq(put_num(keys[i], "abc", 1, 0, &cas[i]), TC_OK);
        } else {
            cache_time_t exp = strcmp(keys[i], "ma:t") == 0 ? T0 + 1000 : 0;
            ck_assert_int_eq(put_num(keys[i], "100", 1, exp, &cas[i]), TC_OK);
        }
    }
    place(_i, keys, NELEM(keys));
    at(5);

    struct cache_marith m = {.incr = true, .delta = 5};
    ck_assert_int_eq(marith("ma:i", &m), TC_OK);
    ck_assert_uint_eq(m.value, 105);
    ck_assert(!m.created);
    ck_assert_uint_eq(m.old_exptime, 0);
    ck_assert_uint_gt(m.cas_out, cas[0]);
    struct mg r = mget_nobump("ma:i");
    ck_assert_msg(is_number("105", r.val, r.nval), "ma:i reads '%.8s' (%u bytes)", r.val, r.nval);
    ck_assert_uint_eq(r.cas, m.cas_out);
    ck_assert_uint_eq(r.flags, 1);

    m = (struct cache_marith){.incr = false, .delta = 1000};
    ck_assert_int_eq(marith("ma:d", &m), TC_OK);
    ck_assert_uint_eq(m.value, 0);
    ck_assert_msg(is_number("0", get_full("ma:d").val, get_full("ma:d").nval), "ma:d is not 0");

    /* C: a mismatch is EX and changes nothing; a match works. */
    m = (struct cache_marith){.incr = true, .delta = 1, .cas = cas[2] + 1000};
    ck_assert_int_eq(marith("ma:cx", &m), TC_EXISTS);
    if (_i == ON_FLASH)
        ck_flash_only("ma:cx");
    r = mget_nobump("ma:cx");
    ck_assert_msg(is_number("100", r.val, r.nval), "ma:cx changed");
    ck_assert_uint_eq(r.cas, cas[2]);
    m = (struct cache_marith){.incr = true, .delta = 1, .cas = cas[3]};
    ck_assert_int_eq(marith("ma:cm", &m), TC_OK);
    ck_assert_uint_eq(m.value, 101);
    m = (struct cache_marith){.incr = true, .delta = 1, .cas = 0}; /* 0: no check */
    ck_assert_int_eq(marith("ma:cm", &m), TC_OK);
    ck_assert_uint_eq(m.value, 102);

    /* T: the new expiry; old_exptime the one before. */
    m = (struct cache_marith){.incr = true, .delta = 1, .touch = true, .touch_exptime = T0 + 77};
    ck_assert_int_eq(marith("ma:t", &m), TC_OK);
    ck_assert_uint_eq(m.value, 101);
    ck_assert_uint_eq(m.old_exptime, T0 + 1000);
    ck_assert_uint_eq(peek("ma:t").e.exptime, T0 + 77);

    /* Not a number; a missing key without N. */
    m = (struct cache_marith){.incr = true, .delta = 1};
    ck_assert_int_eq(marith("ma:x", &m), TC_NON_NUMERIC);
    r = mget_nobump("ma:x");
    ck_assert_msg(is_number("abc", r.val, r.nval), "ma:x changed");
    ck_assert_uint_eq(r.cas, cas[5]);
    m = (struct cache_marith){.incr = true, .delta = 1, .initial = 9};
    ck_assert_int_eq(marith("ma:none", &m), TC_NOT_FOUND);
    ck_assert(!m.created);
    ck_assert_int_eq(peek("ma:none").st, TC_NOT_FOUND);

    /* The results are what flash keeps. */
    restart(true);
    r = mget_nobump("ma:i");
    ck_assert_msg(is_number("105", r.val, r.nval), "ma:i after a restart");
    r = mget_nobump("ma:cm");
    ck_assert_msg(is_number("102", r.val, r.nval), "ma:cm after a restart");
    at(76);
    ck_assert_int_eq(mget_nobump("ma:t").st, TC_OK);
    at(77);
    ck_assert_int_eq(mget_nobump("ma:t").st, TC_NOT_FOUND);
}
END_TEST

/* ma N on a key whose last version expired (in RAM or on flash): created
 * with the initial value (not incremented) and N's expiry. */
START_TEST(test_marith_vivify)
{
    ck_assert_int_eq(put_num("mav:k", "50", 1, T0 + 100, NULL), TC_OK);
    const char *keys[] = {"mav:k"};
    place(_i, keys, 1);
    at(100);
    struct cache_marith m = {.incr = true, .delta = 5, .initial = 7};
    ck_assert_int_eq(marith("mav:k", &m), TC_NOT_FOUND);

    m = (struct cache_marith){
        .incr = true, .delta = 5, .vivify = true, .initial = 7, .vivify_exptime = T0 + 300};
    ck_assert_int_eq(marith("mav:k", &m), TC_OK);
    ck_assert(m.created);
    ck_assert_uint_eq(m.value, 7);
    ck_assert_uint_eq(m.old_exptime, 0);
    ck_assert_uint_ne(m.cas_out, 0);
    struct mg r = mget_nobump("mav:k");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert(r.nval == 1 && r.val[0] == '7');
    ck_assert_uint_eq(r.flags, 0);
    ck_assert_uint_eq(r.exp, T0 + 300);
    ck_assert_uint_eq(r.cas, m.cas_out);
    ck_assert_uint_eq(r.m.meta, 0); /* ma N wins nothing */

    m = (struct cache_marith){
        .incr = true, .delta = 5, .vivify = true, .initial = 7, .vivify_exptime = T0 + 900};
    ck_assert_int_eq(marith("mav:k", &m), TC_OK);
    ck_assert(!m.created);
    ck_assert_uint_eq(m.value, 12);
    ck_assert_uint_eq(m.old_exptime, T0 + 300);
    ck_assert_uint_eq(peek("mav:k").e.exptime, T0 + 300);

    /* decr N: the initial value too. */
    m = (struct cache_marith){.incr = false, .delta = 5, .vivify = true, .initial = 3};
    ck_assert_int_eq(marith("mav:d", &m), TC_OK);
    ck_assert(m.created);
    ck_assert_uint_eq(m.value, 3);
    ck_assert_uint_eq(peek("mav:d").e.exptime, 0);
}
END_TEST

/*
 * memcached changes the number in place, so the item keeps its meta bits:
 * on memcached 1.6.18, "md k I", "mg k" (X W), "ma k", "mg k v" answers
 * "Z X", and a key stored with b still echoes in base64.
 */
START_TEST(test_marith_keeps_meta_bits)
{
    char v[VLEN];
    memset(v, ' ', sizeof(v));
    memcpy(v, "10", 2);
    ck_assert_int_eq(
        mstore("mab:k", &(struct ms){.val = v, .vlen = VLEN, .exp = T0 + 1000, .key_binary = true},
               NULL),
        TC_OK);
    make_stale_won("mab:k");
    ck_assert_uint_eq(meta_of("mab:k"), STALE_WON | CACHE_META_KEY_BINARY);
    const char *keys[] = {"mab:k"};
    place(_i, keys, 1);

    struct cache_marith m = {.incr = true, .delta = 1};
    ck_assert_int_eq(marith("mab:k", &m), TC_OK);
    ck_assert_uint_eq(m.value, 11);
    unsigned meta = meta_of("mab:k");
    ck_assert_msg(meta == (STALE_WON | CACHE_META_KEY_BINARY),
                  "after ma the meta bits are %#x, want %#x (stale, win sent, binary key)", meta,
                  STALE_WON | CACHE_META_KEY_BINARY);
    struct mg r = mget_plain("mab:k");
    ck_assert(r.st == TC_OK && !r.m.win);
}
END_TEST

/* ---------------------------------------------------------------------------
 * me (cache_peek)
 * ------------------------------------------------------------------------- */

START_TEST(test_peek)
{
    uint64_t cas;
    ck_assert_int_eq(put("pk:k", 1, 77, T0 + 1000, &cas), TC_OK);
    const char *keys[] = {"pk:k"};
    place(_i, keys, 1);
    at(5);
    /* The class a RAM item of the same size has. */
    ck_assert_int_eq(put("pk:j", 1, 0, 0, NULL), TC_OK);
    struct pk ref = peek("pk:j");
    ck_assert(ref.st == TC_OK && !ref.e.on_flash && ref.e.clsid != 0);

    for (int i = 0; i < 3; i++) {
        struct pk p = peek("pk:k");
        ck_assert_int_eq(p.st, TC_OK);
        ck_assert_uint_eq(p.e.nkey, 4);
        ck_assert(memcmp(p.e.key, "pk:k", 4) == 0);
        ck_assert_uint_eq(p.e.cas, cas);
        ck_assert_uint_eq(p.e.flags, 77);
        ck_assert_uint_eq(p.e.nbytes, VLEN);
        ck_assert_uint_eq(p.e.exptime, T0 + 1000);
        ck_assert_uint_eq(p.e.atime, T0);
        ck_assert(!p.e.fetched);
        ck_assert_int_eq(p.e.on_flash, _i == ON_FLASH);
        ck_assert_uint_eq(p.e.clsid, ref.e.clsid);
        ck_assert_uint_eq(p.e.size, ref.e.size);
        ck_assert_uint_eq(p.meta, 0);
        if (_i == ON_FLASH)
            ck_flash_only("pk:k"); /* nothing brought to RAM */
    }
    /* The peeks were no use: mg sees the item unread. */
    at(10);
    struct mg r = mget_plain("pk:k");
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert(!r.m.fetched);
    ck_assert_uint_eq(r.m.atime, T0);

    ck_assert_int_eq(peek("pk:none").st, TC_NOT_FOUND);
    at(1000);
    ck_assert_int_eq(peek("pk:k").st, TC_NOT_FOUND);
}
END_TEST

/* ---------------------------------------------------------------------------
 * The meta bits across tiers and restarts
 * ------------------------------------------------------------------------- */

static void ck_stale_won(const char *key, unsigned extra)
{
    struct pk p = peek(key);
    ck_assert_msg(p.st == TC_OK, "'%s': %s", key, tc_strerror(p.st));
    ck_assert_msg(p.meta == (STALE_WON | extra), "'%s': meta %#x, want %#x", key, p.meta,
                  STALE_WON | extra);
    struct mg r = mget_nobump(key);
    ck_assert_int_eq(r.st, TC_OK);
    ck_assert_uint_eq(r.m.meta, STALE_WON | extra);
    ck_assert_msg(!r.m.win, "'%s': a second win", key);
    ck_assert_msg(is_version(key, 1, r.val, r.nval), "'%s': not the bytes stored", key);
}

START_TEST(test_meta_bits_on_flash)
{
    char v[VLEN];
    value_of("mf:b", 1, v, VLEN);
    ck_assert_int_eq(put("mf:s", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(
        mstore("mf:b", &(struct ms){.val = v, .vlen = VLEN, .exp = T0 + 1000, .key_binary = true},
               NULL),
        TC_OK);
    make_stale_won("mf:s");
    make_stale_won("mf:b");
    const char *keys[] = {"mf:s", "mf:b"};
    place(ON_FLASH, keys, 2);
    ck_assert(peek("mf:s").e.on_flash);
    ck_stale_won("mf:s", 0);
    ck_stale_won("mf:b", CACHE_META_KEY_BINARY);
    ck_flash_only("mf:s");

    /* Plain hits (the second brings it to RAM, clean): nothing lost, in
     * RAM, nor on flash once RAM is gone (the copy was clean). */
    for (int i = 0; i < 3; i++) {
        struct mg r = mget_plain("mf:s");
        ck_assert_int_eq(r.st, TC_OK);
        ck_assert_uint_eq(r.m.meta, STALE_WON);
        ck_assert(!r.m.win);
    }
    ck_stale_won("mf:s", 0);
    drain();
    restart(false);
    ck_stale_won("mf:s", 0);
    ck_stale_won("mf:b", CACHE_META_KEY_BINARY);
}
END_TEST

START_TEST(test_meta_bits_after_clean_restart)
{
    ck_assert_int_eq(put("mc:flash", 1, 0, T0 + 1000, NULL), TC_OK);
    make_stale_won("mc:flash");
    const char *keys[] = {"mc:flash"};
    place(ON_FLASH, keys, 1);
    ck_assert_int_eq(put("mc:ram", 1, 0, T0 + 1000, NULL), TC_OK);
    make_stale_won("mc:ram");
    ck_assert(in_ram("mc:ram"));
    ck_assert_int_eq(ram_entry("mc:ram") & (ITEM_CLEAN | ITEM_DEMOTING), 0); /* not on flash */
    restart(true);
    ck_assert_int_lt(ram_entry("mc:ram"), 0);
    ck_stale_won("mc:ram", 0);
    ck_stale_won("mc:flash", 0);
}
END_TEST

START_TEST(test_meta_bits_after_unclean_restart)
{
    /* Won on flash: the version before the win (no win mark) is dropped
     * from flash, so a restart cannot bring it back. */
    ck_assert_int_eq(put("mu:flash", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(mdelete("mu:flash", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    const char *keys[] = {"mu:flash"};
    place(ON_FLASH, keys, 1);
    struct mg w = mget_plain("mu:flash");
    ck_assert(w.st == TC_OK && w.m.win);

    ck_assert_int_eq(put("mu:k", 1, 0, T0 + 1000, NULL), TC_OK);
    make_stale_won("mu:k");
    write_now("mu:k");
    /* Won after it reached flash: the win must not be forgotten by a
     * restart (a second client would win again). */
    ck_assert_int_eq(put("mu:late", 1, 0, T0 + 1000, NULL), TC_OK);
    ck_assert_int_eq(mdelete("mu:late", &(struct cache_mdelete){.invalidate = true}), TC_OK);
    write_now("mu:late");
    ck_assert_uint_eq(meta_of("mu:late"), CACHE_META_STALE);
    struct mg r = mget_plain("mu:late");
    ck_assert(r.st == TC_OK && r.m.win);
    drain();

    restart(false);
    ck_stale_won("mu:k", 0);
    struct pk p = peek("mu:late");
    ck_assert_msg(p.st == TC_NOT_FOUND || p.meta == STALE_WON,
                  "mu:late came back without its win mark (meta %#x)", p.meta);
    r = mget_plain("mu:late");
    ck_assert_msg(r.st == TC_NOT_FOUND || !r.m.win, "mu:late: won twice across a restart");
    p = peek("mu:flash");
    ck_assert_msg(p.st == TC_NOT_FOUND || p.meta == STALE_WON,
                  "mu:flash came back without its win mark (meta %#x)", p.meta);
    r = mget_plain("mu:flash");
    ck_assert_msg(r.st == TC_NOT_FOUND || !r.m.win, "mu:flash: won twice across a restart");
}
END_TEST

static Suite *meta_ops_suite(void)
{
    Suite *s = suite_create("meta_ops");
    TCase *tc = tcase_create("mget");
    tcase_add_checked_fixture(tc, meta_setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_mget_hit_and_miss, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mget_fetched_and_atime_before_request, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mget_touch, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mget_vivify, IN_RAM, ON_FLASH + 1);
    tcase_add_test(tc, test_mget_vivify_then_hit_reports_fetched);
    tcase_add_loop_test(tc, test_mget_recache, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mget_recache_after_touch, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mget_no_win, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mget_stale_item, IN_RAM, ON_FLASH + 1);
    tcase_add_test(tc, test_mget_on_flash_key_without_ram);
    suite_add_tcase(s, tc);

    tc = tcase_create("mstore");
    tcase_add_checked_fixture(tc, meta_setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_store_meta_key_binary, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_store_meta_invalidate, IN_RAM, ON_FLASH + 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("mdelete");
    tcase_add_checked_fixture(tc, meta_setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_mdelete_plain_and_cas, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mdelete_invalidate, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_mdelete_invalidate_across_restarts, IN_RAM, ON_FLASH + 1);
    tcase_add_test(tc, test_mdelete_invalidate_flash_key_without_ram);
    suite_add_tcase(s, tc);

    tc = tcase_create("marith");
    tcase_add_checked_fixture(tc, meta_setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_marith, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_marith_vivify, IN_RAM, ON_FLASH + 1);
    tcase_add_loop_test(tc, test_marith_keeps_meta_bits, IN_RAM, ON_FLASH + 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("peek");
    tcase_add_checked_fixture(tc, meta_setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_peek, IN_RAM, ON_FLASH + 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("tiers");
    tcase_add_checked_fixture(tc, meta_setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_meta_bits_on_flash);
    tcase_add_test(tc, test_meta_bits_after_clean_restart);
    tcase_add_test(tc, test_meta_bits_after_unclean_restart);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tiered_run(meta_ops_suite(), "check_meta_ops");
}
