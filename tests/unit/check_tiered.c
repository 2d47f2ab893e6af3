/*
 * check_tiered.c: unit tests for the engine with a flash tier
 * (include/tiercache/engine.h over storage/tiered.c, ops.c, writer.c):
 * small RAM, a flash directory per test, no maintainer thread and a manual
 * clock. Tests drive pre-cleaning with cache_maintain() and wait for the
 * flash writer with cache_flash_drain().
 *
 * What matters: nothing is lost or changed on its way to flash and back
 * (bytes, flags, CAS); every operation on a key that lives on flash answers
 * as it would for a key in RAM; a deleted, overwritten, expired or flushed
 * version is never served again, from either tier, also across a restart;
 * and a failing flash leaves a working RAM cache that recovers by itself.
 *
 * The test engine and its helpers are tiered_fixture.h's: 4 MiB of RAM in
 * 1 MiB pages, 64 MiB of flash. Values of ~1000 bytes all fall in one slab
 * class; a small item stored first gives the small class its page.
 */
#include "tiered_fixture.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------
 * Demotion and reading back
 * ------------------------------------------------------------------------- */

START_TEST(test_fill_beyond_ram_all_readable)
{
    enum { N = 6000 };
    static uint64_t cas[N];
    for (unsigned i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k:%u", i);
        ck_assert_int_eq(put(key, 1, i * 2654435761u, 0, &cas[i]), TC_OK);
        if (i % 64 == 0)
            cache_maintain(C);
    }
    drain();
    struct cache_tier_stats s = tier();
    ck_assert(s.flash_enabled);
    ck_assert(!s.flash_degraded);
    ck_assert_uint_gt(s.demotions, N / 4);
    ck_assert_uint_gt(s.flash_items, N / 4);
    ck_assert_uint_le(s.ram_bytes, 4 * MIB);
    ck_assert_uint_eq(s.io_errors, 0);

    /* Every key reads back exactly; the ones RAM dropped come from flash
     * as heap copies and stay on flash (a first hit does not promote). */
    unsigned on_flash = 0;
    uint64_t hits0 = s.flash_hits;
    struct cache_stats cs0;
    cache_stats_get(C, &cs0);
    for (unsigned i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k:%u", i);
        bool ram = in_ram(key);
        struct got g = get_full(key);
        char want[VLEN];
        value_of(key, 1, want, sizeof(want));
        ck_assert_msg(g.st == TC_OK, "'%s' lost (%s)", key, ram ? "was in RAM" : "on flash");
        ck_assert_msg(g.nval == VLEN && memcmp(g.val, want, VLEN) == 0, "'%s': bytes differ", key);
        ck_assert_uint_eq(g.flags, i * 2654435761u);
        ck_assert_msg(g.cas == cas[i], "'%s': CAS %llu, stored as %llu", key,
                      (unsigned long long)g.cas, (unsigned long long)cas[i]);
        ck_assert_int_eq(g.heap, !ram);
        if (!ram) {
            on_flash++;
            ck_assert_msg(!in_ram(key), "'%s' came to RAM on its first hit", key);
        }
    }
    ck_assert_uint_gt(on_flash, N / 4);
    s = tier();
    ck_assert_uint_eq(s.flash_hits - hits0, on_flash);
    struct cache_stats cs1;
    cache_stats_get(C, &cs1);
    ck_assert_uint_eq(cs1.get_hits - cs0.get_hits, N); /* memcached's get_hits: both tiers */
    ck_assert_uint_eq(cs1.get_misses, cs0.get_misses);
    ck_assert_uint_ge(s.lmdb_lookups, on_flash);
    ck_assert_uint_eq(s.heap_items, 0); /* every copy was released */

    /* A second hit promotes: back in RAM, clean, with the same CAS. (When
     * RAM has no room right now the hit is served as a copy and the key
     * starts over; then clean the tails and hit it twice more.) */
    uint64_t prom0 = tier().promotions;
    unsigned promoted = 0;
    for (unsigned i = 0; i < N && promoted < 50; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k:%u", i);
        if (in_ram(key))
            continue;
        struct got g = get_full(key); /* the second hit */
        for (int tries = 0; tries < 5 && g.heap; tries++) {
            cache_maintain(C);
            drain();
            ck_assert(get_full(key).heap);
            g = get_full(key);
        }
        ck_assert_int_eq(g.st, TC_OK);
        ck_assert_msg(!g.heap && in_ram(key), "'%s' not promoted on its second hits", key);
        ck_assert_uint_eq(g.cas, cas[i]);
        ck_assert_msg(ram_entry(key) & ITEM_CLEAN, "a promoted copy must be clean");
        promoted++;
    }
    ck_assert_uint_eq(promoted, 50);
    ck_assert_uint_eq(tier().promotions - prom0, 50);
}
END_TEST

START_TEST(test_min_ttl_and_misses)
{
    reserve_small_class();
    /* Expiring within flash_min_ttl: never demoted, dropped with RAM. */
    ck_assert_int_eq(put("short", 1, 0, T0 + 5, NULL), TC_OK);
    ck_assert_int_eq(put("long", 1, 7, T0 + 1000, NULL), TC_OK);
    const char *keys[] = {"long", "short"};
    push_out(keys, 2);
    ck_miss("short");
    struct got g = get_full("long");
    ck_assert_int_eq(g.st, TC_OK);
    ck_assert(g.heap);
    ck_assert_uint_eq(g.exp, T0 + 1000);
    ck_assert_uint_eq(g.flags, 7);
    /* A key never stored: no flash read at all for most. */
    uint64_t lookups0 = tier().lmdb_lookups;
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "absent:%d", i);
        ck_miss(key);
    }
    struct cache_tier_stats s = tier();
    ck_assert_uint_lt(s.lmdb_lookups - lookups0, 20);
    ck_assert_uint_ge(s.filter_negatives, 980);
}
END_TEST

/* Every RAM item marked CLEAN has its very version on flash (same CAS and
 * expiry). Checked for fillers [0, n) with the writer idle. Returns how many
 * were clean. */
static unsigned check_clean_invariant(unsigned n)
{
    unsigned clean = 0;
    for (unsigned i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "filler:%u", i);
        size_t nkey = strlen(key);
        uint64_t hv = ht_hash(key, nkey);
        ht_lock(C->ht, hv);
        struct item *it = ht_find(C->ht, hv, key, nkey);
        bool is_clean = it != NULL && (item_iflags(it) & ITEM_CLEAN);
        uint64_t cas = is_clean ? it->cas : 0;
        uint32_t exp = is_clean ? item_get_exptime(it) : 0;
        ht_unlock(C->ht, hv);
        if (!is_clean)
            continue;
        clean++;
        struct flash_item rec;
        tc_status_e st = flash_get(W->fr, hv, key, nkey, &rec);
        ck_assert_msg(st == TC_OK, "'%s' is CLEAN in RAM but not on flash (%s)", key,
                      tc_strerror(st));
        bool same = rec.cas == cas && rec.exptime == exp;
        flash_reader_end(W->fr);
        ck_assert_msg(same, "'%s' is CLEAN in RAM but flash holds another version", key);
    }
    return clean;
}

START_TEST(test_flash_wraps_around)
{
    /* 8 MiB of flash, 20 MB written: flash evicts its oldest batches. RAM
     * copies whose flash records went lose their CLEAN mark (they are the
     * only copy again), and nothing reads back wrong. */
    engine_close();
    FLASH_SIZE = 8 * MIB;
    engine_open();
    unsigned clean_seen = 0;
    for (int round = 0; round < 10; round++) {
        fill(2000);
        drain();
        clean_seen += check_clean_invariant(FILLED);
    }
    struct cache_tier_stats s = tier();
    ck_assert_uint_gt(s.flash_evictions, 0);
    ck_assert_uint_le(s.flash_used_bytes, 8 * MIB);
    ck_assert_uint_eq(s.io_errors, 0);
    /* Flash eviction keeps a reserve so that the map seldom fills: a full
     * map costs an aborted batch and an extra eviction (a batch needs
     * contiguous pages, which a fragmented free list may lack, so it can
     * happen), and four in a row put the writer in degraded mode. */
    ck_assert_msg(!s.flash_degraded && s.demotions_failed == 0 && s.map_full * 100 <= s.batches,
                  "the map filled %llu times in %llu batches (degraded now: %d, %llu demotions "
                  "failed) although flash eviction keeps a reserve",
                  (unsigned long long)s.map_full, (unsigned long long)s.batches, s.flash_degraded,
                  (unsigned long long)s.demotions_failed);
    ck_assert_uint_gt(clean_seen, 0);
    /* What is still there reads back exactly; the newest fillers all are. */
    unsigned found = 0;
    for (unsigned i = 0; i < FILLED; i++) {
        char key[32];
        snprintf(key, sizeof(key), "filler:%u", i);
        struct got g = get_full(key);
        if (g.st != TC_OK) {
            ck_assert_msg(i < FILLED - 2000, "'%s', one of the newest, is gone", key);
            continue;
        }
        found++;
        char want[VLEN];
        value_of(key, 0, want, sizeof(want));
        ck_assert_msg(g.nval == VLEN && memcmp(g.val, want, VLEN) == 0, "'%s': bytes differ", key);
    }
    ck_assert_uint_lt(found, FILLED);
    ck_assert_uint_gt(found, 4000);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Every operation on a flash-resident key, next to the same on a RAM key
 * ------------------------------------------------------------------------- */

enum op {
    OP_GET,
    OP_GAT,
    OP_TOUCH,
    OP_ADD,
    OP_REPLACE,
    OP_CAS_OK,
    OP_CAS_BAD,
    OP_APPEND,
    OP_PREPEND,
    OP_INCR,
    OP_DECR,
    OP_DELETE,
    OP_COUNT
};

static const char *const OP_NAMES[OP_COUNT] = {"get",     "gat",  "touch",  "add",
                                               "replace", "cas",  "badcas", "append",
                                               "prepend", "incr", "decr",   "delete"};

static bool numeric(enum op o)
{
    return o == OP_INCR || o == OP_DECR;
}

/* What an operation answered and what the key reads as afterwards. */
struct outcome {
    tc_status_e st;
    uint64_t number; /* incr/decr */
    bool cas_changed;
    struct got after;
};

static struct outcome run_op(enum op o, const char *key, uint64_t cas)
{
    struct outcome r;
    memset(&r, 0, sizeof(r));
    struct item *it = NULL;
    uint64_t cas_out = 0;
    size_t nkey = strlen(key);
    switch (o) {
    case OP_GET:
        r.st = cache_get(W, key, nkey, &it);
        break;
    case OP_GAT:
        r.st = cache_get_touch(W, key, nkey, T0 + 5000, &it);
        break;
    case OP_TOUCH:
        r.st = cache_touch(W, key, nkey, T0 + 6000);
        break;
    case OP_ADD:
        r.st = store_n(key, "added", 5, 1, 0, CACHE_ADD, 0, &cas_out);
        break;
    case OP_REPLACE:
        r.st = store_n(key, "replaced", 8, 2, 0, CACHE_REPLACE, 0, &cas_out);
        break;
    case OP_CAS_OK:
        r.st = store_n(key, "swapped", 7, 3, 0, CACHE_CAS, cas, &cas_out);
        break;
    case OP_CAS_BAD:
        r.st = store_n(key, "swapped", 7, 3, 0, CACHE_CAS, cas + 1000000, &cas_out);
        break;
    case OP_APPEND:
        r.st = store_n(key, "+tail", 5, 9, 0, CACHE_APPEND, 0, &cas_out);
        break;
    case OP_PREPEND:
        r.st = store_n(key, "head+", 5, 9, 0, CACHE_PREPEND, 0, &cas_out);
        break;
    case OP_INCR:
        r.st = cache_arith(W, key, nkey, true, 5, &r.number, &cas_out);
        break;
    case OP_DECR:
        r.st = cache_arith(W, key, nkey, false, 10, &r.number, &cas_out);
        break;
    case OP_DELETE:
        r.st = cache_delete(W, key, nkey);
        break;
    default:
        ck_abort();
    }
    if (it != NULL) {
        ck_assert_uint_eq(item_cas(it), cas); /* reads never change the CAS */
        cache_item_unref(C, it);
    }
    r.after = get_full(key);
    r.cas_changed = r.after.st == TC_OK && r.after.cas != cas;
    return r;
}

static void prepare_key(enum op o, const char *prefix, char *key, size_t len, uint64_t *cas)
{
    snprintf(key, len, "%s:%s", prefix, OP_NAMES[o]);
    if (numeric(o)) {
        ck_assert_int_eq(put_number(key, "100", cas), TC_OK);
    } else {
        /* The same value for both keys of a pair. */
        char v[VLEN];
        value_of("op", 7, v, sizeof(v));
        ck_assert_int_eq(store_n(key, v, sizeof(v), 1234, T0 + 100000, CACHE_SET, 0, cas), TC_OK);
    }
}

/* The value without the trailing spaces of an in-place incr (memcached pads). */
static uint32_t trimmed(const struct got *g)
{
    uint32_t n = g->nval;
    while (n > 0 && g->val[n - 1] == ' ')
        n--;
    return n;
}

START_TEST(test_ops_on_flash_key_as_on_ram_key)
{
    reserve_small_class();
    char fkeys[OP_COUNT][40], rkeys[OP_COUNT][40];
    uint64_t fcas[OP_COUNT], rcas[OP_COUNT];
    const char *fk[OP_COUNT];
    for (int o = 0; o < OP_COUNT; o++) {
        prepare_key((enum op)o, "flash", fkeys[o], sizeof(fkeys[o]), &fcas[o]);
        fk[o] = fkeys[o];
    }
    push_out(fk, OP_COUNT);
    for (int o = 0; o < OP_COUNT; o++)
        prepare_key((enum op)o, "ram", rkeys[o], sizeof(rkeys[o]), &rcas[o]);

    for (int o = 0; o < OP_COUNT; o++) {
        const char *name = OP_NAMES[o];
        ck_assert_msg(!in_ram(fkeys[o]) && in_ram(rkeys[o]),
                      "%s: the keys are not where they "
                      "should be",
                      name);
        uint64_t hits0 = tier().flash_hits;
        struct outcome f = run_op((enum op)o, fkeys[o], fcas[o]);
        ck_assert_msg(tier().flash_hits > hits0, "%s: the operation did not see flash", name);
        struct outcome r = run_op((enum op)o, rkeys[o], rcas[o]);

        ck_assert_msg(f.st == r.st, "%s: %s on a flash key, %s on a RAM key", name,
                      tc_strerror(f.st), tc_strerror(r.st));
        ck_assert_msg(f.after.st == r.after.st,
                      "%s: then a get: %s on the flash key, %s on the "
                      "RAM key",
                      name, tc_strerror(f.after.st), tc_strerror(r.after.st));
        ck_assert_msg(f.cas_changed == r.cas_changed, "%s: the CAS %s on the flash key only", name,
                      f.cas_changed ? "changed" : "stayed");
        if (numeric((enum op)o)) {
            ck_assert_uint_eq(f.number, r.number);
            ck_assert_uint_eq(f.number, o == OP_INCR ? 105 : 90);
            ck_assert_uint_eq(trimmed(&f.after), trimmed(&r.after));
            ck_assert(memcmp(f.after.val, r.after.val, trimmed(&r.after)) == 0);
        } else if (f.after.st == TC_OK) {
            ck_assert_msg(f.after.nval == r.after.nval &&
                              memcmp(f.after.val, r.after.val, f.after.nval) == 0,
                          "%s: the values differ afterwards (%u and %u bytes)", name, f.after.nval,
                          r.after.nval);
        }
        if (f.after.st == TC_OK) {
            ck_assert_msg(f.after.flags == r.after.flags, "%s: flags %u vs %u", name, f.after.flags,
                          r.after.flags);
            ck_assert_msg(f.after.exp == r.after.exp, "%s: exptime %u vs %u", name, f.after.exp,
                          r.after.exp);
        }
    }
}
END_TEST

START_TEST(test_ops_on_flash_key_exact_results)
{
    reserve_small_class();
    const char *keys[] = {"e:get",    "e:gat",    "e:touch",   "e:add",  "e:rep", "e:cas",
                          "e:badcas", "e:append", "e:prepend", "e:incr", "e:decr"};
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    uint64_t cas[N];
    for (size_t i = 0; i < N; i++) {
        if (i >= 9)
            ck_assert_int_eq(put_number(keys[i], "100", &cas[i]), TC_OK);
        else
            ck_assert_int_eq(put(keys[i], 3, 77, T0 + 100000, &cas[i]), TC_OK);
    }
    push_out(keys, N);
    char v3[VLEN];

    /* get: a copy with the same bytes, flags, expiry and CAS. */
    struct got g = get_full("e:get");
    ck_assert_int_eq(g.st, TC_OK);
    ck_assert(g.heap);
    value_of("e:get", 3, v3, VLEN);
    ck_assert(g.nval == VLEN && memcmp(g.val, v3, VLEN) == 0);
    ck_assert_uint_eq(g.flags, 77);
    ck_assert_uint_eq(g.exp, T0 + 100000);
    ck_assert_uint_eq(g.cas, cas[0]);

    /* gat: the new expiry, the same CAS. */
    struct item *it;
    ck_assert_int_eq(cache_get_touch(W, "e:gat", 5, T0 + 500, &it), TC_OK);
    ck_assert_uint_eq(item_exptime(it), T0 + 500);
    ck_assert_uint_eq(item_cas(it), cas[1]);
    ck_assert_uint_eq(item_flags(it), 77);
    cache_item_unref(C, it);
    g = get_full("e:gat");
    ck_assert_uint_eq(g.exp, T0 + 500);

    /* touch: the new expiry holds (and the old one on flash does not come back). */
    ck_assert_int_eq(cache_touch(W, "e:touch", 7, T0 + 300), TC_OK);
    g = get_full("e:touch");
    ck_assert_uint_eq(g.exp, T0 + 300);
    ck_assert_uint_eq(g.cas, cas[2]);

    /* add: exists. */
    ck_assert_int_eq(store_n("e:add", "new", 3, 0, 0, CACHE_ADD, 0, NULL), TC_NOT_STORED);
    value_of("e:add", 3, v3, VLEN);
    g = get_full("e:add");
    ck_assert(g.nval == VLEN && memcmp(g.val, v3, VLEN) == 0);

    /* replace: stored, a new CAS. */
    uint64_t nc = 0;
    ck_assert_int_eq(store_n("e:rep", "new", 3, 5, 0, CACHE_REPLACE, 0, &nc), TC_OK);
    ck_assert_uint_gt(nc, cas[4]);
    g = get_full("e:rep");
    ck_assert(g.nval == 3 && memcmp(g.val, "new", 3) == 0);
    ck_assert_uint_eq(g.cas, nc);
    ck_assert_uint_eq(g.flags, 5);

    /* cas: the flash record's CAS matches; another does not. */
    ck_assert_int_eq(store_n("e:badcas", "x", 1, 0, 0, CACHE_CAS, cas[6] + 1, NULL), TC_EXISTS);
    ck_assert_int_eq(store_n("e:cas", "x", 1, 0, 0, CACHE_CAS, cas[5], &nc), TC_OK);
    g = get_full("e:cas");
    ck_assert(g.nval == 1 && g.val[0] == 'x');
    value_of("e:badcas", 3, v3, VLEN);
    g = get_full("e:badcas");
    ck_assert(g.nval == VLEN && memcmp(g.val, v3, VLEN) == 0);
    ck_assert_uint_eq(g.cas, cas[6]);

    /* append/prepend: the old bytes around the new, old flags and expiry kept. */
    ck_assert_int_eq(store_n("e:append", "TAIL", 4, 999, T0 + 7, CACHE_APPEND, 0, NULL), TC_OK);
    g = get_full("e:append");
    value_of("e:append", 3, v3, VLEN);
    ck_assert_uint_eq(g.nval, VLEN + 4);
    ck_assert(memcmp(g.val, v3, VLEN) == 0 && memcmp(g.val + VLEN, "TAIL", 4) == 0);
    ck_assert_uint_eq(g.flags, 77);
    ck_assert_uint_eq(g.exp, T0 + 100000);
    ck_assert_int_eq(store_n("e:prepend", "HEAD", 4, 999, T0 + 7, CACHE_PREPEND, 0, NULL), TC_OK);
    g = get_full("e:prepend");
    value_of("e:prepend", 3, v3, VLEN);
    ck_assert_uint_eq(g.nval, VLEN + 4);
    ck_assert(memcmp(g.val, "HEAD", 4) == 0 && memcmp(g.val + 4, v3, VLEN) == 0);
    ck_assert_uint_eq(g.flags, 77);
    ck_assert_uint_eq(g.exp, T0 + 100000);

    /* incr/decr: the number, a new CAS, flags kept. */
    uint64_t v = 0;
    ck_assert_int_eq(cache_arith(W, "e:incr", 6, true, 5, &v, &nc), TC_OK);
    ck_assert_uint_eq(v, 105);
    ck_assert_uint_gt(nc, cas[9]);
    g = get_full("e:incr");
    ck_assert(g.nval >= 3 && memcmp(g.val, "105", 3) == 0);
    ck_assert_uint_eq(g.flags, 42);
    ck_assert_int_eq(cache_arith(W, "e:decr", 6, false, 1000, &v, NULL), TC_OK);
    ck_assert_uint_eq(v, 0);
    g = get_full("e:decr");
    ck_assert(g.nval >= 1 && g.val[0] == '0');

    /* The changes are what flash holds: after a clean restart (RAM empty)
     * every key reads from flash. */
    restart(true);
    ck_assert_uint_eq(get_full("e:gat").exp, T0 + 500);
    ck_assert_uint_eq(get_full("e:touch").exp, T0 + 300);
    g = get_full("e:rep");
    ck_assert(g.st == TC_OK && g.nval == 3 && memcmp(g.val, "new", 3) == 0);
    ck_assert_uint_eq(get_full("e:append").nval, VLEN + 4);
    ck_assert_uint_eq(get_full("e:prepend").nval, VLEN + 4);
    g = get_full("e:incr");
    ck_assert(g.st == TC_OK && memcmp(g.val, "105", 3) == 0);
    g = get_full("e:cas");
    ck_assert(g.st == TC_OK && g.nval == 1 && g.val[0] == 'x');
    at(301);
    ck_miss("e:touch"); /* its new, earlier expiry */
}
END_TEST

/* ---------------------------------------------------------------------------
 * Old versions never come back
 * ------------------------------------------------------------------------- */

START_TEST(test_delete_flash_key)
{
    uint64_t cas;
    ck_assert_int_eq(put("gone", 1, 0, 0, &cas), TC_OK);
    ck_assert_int_eq(put("stays", 1, 0, 0, NULL), TC_OK);
    const char *keys[] = {"gone", "stays"};
    push_out(keys, 2);
    struct cache_tier_stats s0 = tier();
    ck_assert_int_eq(cache_delete(W, "gone", 4), TC_OK);
    ck_miss("gone");
    ck_assert_uint_eq(tier().tombstones, s0.tombstones + 1);
    ck_assert_int_eq(cache_delete(W, "gone", 4), TC_NOT_FOUND);
    drain();
    ck_miss("gone");
    ck_assert_msg(ram_entry("gone") < 0, "the tombstone outlived the flash delete");
    struct cache_tier_stats s = tier();
    ck_assert_uint_eq(s.flash_items, s0.flash_items - 1);
    ck_assert_uint_gt(s.flash_deletes, s0.flash_deletes);
    ck_assert_uint_eq(s.held_deletes, 0);
    ck_assert_int_eq(get_full("stays").st, TC_OK);
    /* A new version of the key is a new key. */
    ck_assert_int_eq(store_n("gone", "again", 5, 0, 0, CACHE_ADD, 0, NULL), TC_OK);
    struct got g = get_full("gone");
    ck_assert(g.st == TC_OK && g.nval == 5 && memcmp(g.val, "again", 5) == 0);
}
END_TEST

START_TEST(test_newer_ram_version_deleted)
{
    const char *keys[] = {"twice"};
    ck_assert_int_eq(put("twice", 1, 0, 0, NULL), TC_OK);
    push_out(keys, 1);
    uint64_t cas2;
    ck_assert_int_eq(put("twice", 2, 0, 0, &cas2), TC_OK); /* RAM: v2, flash: v1 */
    ck_version("twice", 2, 0, cas2);
    ck_assert_int_eq(cache_delete(W, "twice", 5), TC_OK);
    ck_miss("twice");
    drain();
    ck_miss("twice");
    fill(3000);
    drain();
    ck_miss("twice");
}
END_TEST

START_TEST(test_newer_ram_version_expires)
{
    const char *keys[] = {"exp:a", "exp:b"};
    ck_assert_int_eq(put("exp:a", 1, 0, 0, NULL), TC_OK);
    ck_assert_int_eq(put("exp:b", 1, 0, 0, NULL), TC_OK);
    push_out(keys, 2);
    ck_assert_int_eq(put("exp:a", 2, 0, T0 + 50, NULL), TC_OK);
    ck_assert_int_eq(put("exp:b", 2, 0, T0 + 50, NULL), TC_OK);
    at(60);
    /* Noticed by a read... */
    ck_miss("exp:a");
    /* ... or by the crawler. */
    for (int i = 0; i < 1000 && cache_maintain(C); i++)
        ;
    ck_miss("exp:b");
    drain();
    ck_miss("exp:a");
    ck_miss("exp:b");
}
END_TEST

START_TEST(test_newer_ram_version_evicted)
{
    /* v2 expires within flash_min_ttl, so it cannot go to flash: RAM drops
     * it under pressure. v1 on flash is older than what was acknowledged. */
    const char *keys[] = {"evict:k"};
    ck_assert_int_eq(put("evict:k", 1, 0, 0, NULL), TC_OK);
    push_out(keys, 1);
    ck_assert_int_eq(put("evict:k", 2, 0, T0 + 5, NULL), TC_OK);
    push_out(keys, 1);
    ck_miss("evict:k");
    drain();
    ck_miss("evict:k");
}
END_TEST

START_TEST(test_flush_all)
{
    const char *keys[] = {"fl:a", "fl:b"};
    ck_assert_int_eq(put("fl:a", 1, 0, 0, NULL), TC_OK);
    ck_assert_int_eq(put("fl:b", 1, 0, 0, NULL), TC_OK);
    push_out(keys, 2);
    ck_assert_int_eq(put("fl:ram", 1, 0, 0, NULL), TC_OK);
    cache_flush(W, 0);
    ck_miss("fl:a");
    ck_miss("fl:b");
    ck_miss("fl:ram");
    uint64_t cas;
    ck_assert_int_eq(put("fl:after", 1, 0, 0, &cas), TC_OK);
    ck_version("fl:after", 1, 0, cas);
    drain();
    ck_miss("fl:b");
    /* A delayed flush covers flash items too. */
    const char *more[] = {"fl:c"};
    ck_assert_int_eq(put("fl:c", 1, 0, 0, &cas), TC_OK);
    push_out(more, 1);
    cache_flush(W, T0 + 20);
    at(19);
    ck_version("fl:c", 1, 0, cas);
    at(20);
    ck_miss("fl:c");
}
END_TEST

START_TEST(test_flash_item_expires)
{
    const char *keys[] = {"ttl"};
    uint64_t cas;
    ck_assert_int_eq(put("ttl", 1, 3, T0 + 100, &cas), TC_OK);
    push_out(keys, 1);
    at(99);
    struct got g = get_full("ttl");
    ck_assert_int_eq(g.st, TC_OK);
    ck_assert(g.heap);
    ck_assert_uint_eq(g.exp, T0 + 100);
    at(100);
    ck_miss("ttl");
    ck_assert_int_eq(cache_touch(W, "ttl", 3, T0 + 1000), TC_NOT_FOUND);
    ck_assert_int_eq(store_n("ttl", "x", 1, 0, 0, CACHE_REPLACE, 0, NULL), TC_NOT_STORED);
    ck_assert_int_eq(store_n("ttl", "x", 1, 0, 0, CACHE_ADD, 0, NULL), TC_OK);
}
END_TEST

/* ---------------------------------------------------------------------------
 * RAM without room
 * ------------------------------------------------------------------------- */

/*
 * memcached changes an item in place for touch, gat and incr: no memory
 * needed. On a flash item with RAM full and nothing evictable, those must
 * still work (the new version goes straight to flash), never answer
 * "out of memory", and a touch that expires the item must make it a miss.
 */
START_TEST(test_ops_on_flash_key_without_ram)
{
    const char *keys[] = {"nr:touch", "nr:gat", "nr:incr", "nr:expire"};
    uint64_t cas_t, cas_g, cas_i;
    ck_assert_int_eq(put("nr:touch", 1, 7, T0 + 100, &cas_t), TC_OK);
    ck_assert_int_eq(put("nr:gat", 1, 8, T0 + 100, &cas_g), TC_OK);
    ck_assert_int_eq(put_number("nr:incr", "41", &cas_i), TC_OK);
    ck_assert_int_eq(put("nr:expire", 1, 0, 0, NULL), TC_OK);
    push_out(keys, 4);
    struct pinned p = {0};
    pin_class(&p);
    uint64_t spills0 = tier().spills;

    ck_assert_int_eq(cache_touch(W, "nr:touch", 8, T0 + 5000), TC_OK);
    struct item *it;
    ck_assert_int_eq(cache_get_touch(W, "nr:gat", 6, T0 + 6000, &it), TC_OK);
    ck_assert_uint_eq(item_cas(it), cas_g);
    ck_assert_uint_eq(item_exptime(it), T0 + 6000);
    cache_item_unref(C, it);
    uint64_t v = 0, cas_i2 = 0;
    ck_assert_int_eq(cache_arith(W, "nr:incr", 7, true, 1, &v, &cas_i2), TC_OK);
    ck_assert_uint_eq(v, 42);
    ck_assert_uint_ne(cas_i2, cas_i);
    ck_assert_int_eq(cache_touch(W, "nr:expire", 9, T0 - 1), TC_OK);
    ck_assert_uint_eq(tier().spills, spills0 + 4);

    /* Served at once, and again once the writer has them on flash (RAM
     * still full: their RAM copies are gone). */
    for (int round = 0; round < 2; round++) {
        struct got g = get_full("nr:touch");
        ck_assert_int_eq(g.st, TC_OK);
        ck_assert_uint_eq(g.exp, T0 + 5000);
        ck_version("nr:touch", 1, 7, cas_t);
        g = get_full("nr:gat");
        ck_assert_uint_eq(g.exp, T0 + 6000);
        ck_version("nr:gat", 1, 8, cas_g);
        g = get_full("nr:incr");
        ck_assert_int_eq(g.st, TC_OK);
        ck_assert_uint_eq(g.cas, cas_i2);
        ck_assert_uint_eq(g.nval, VLEN);
        ck_assert(memcmp(g.val, "42 ", 3) == 0);
        ck_miss("nr:expire");
        drain();
        for (size_t i = 0; i < 4; i++)
            ck_assert_msg(ram_entry(keys[i]) < 0 || (ram_entry(keys[i]) & ITEM_TOMBSTONE),
                          "%s still in RAM after the writer drained (flags %#x)", keys[i],
                          (unsigned)ram_entry(keys[i]));
    }
    ck_assert_uint_eq(tier().heap_items, 0);
    unpin(&p);

    /* On flash for good: a restart serves the new expiries and values. */
    restart(true);
    struct got g = get_full("nr:touch");
    ck_assert_int_eq(g.st, TC_OK);
    ck_assert_uint_eq(g.exp, T0 + 5000);
    ck_assert_uint_eq(g.cas, cas_t);
    g = get_full("nr:incr");
    ck_assert(g.st == TC_OK && memcmp(g.val, "42 ", 3) == 0);
    ck_miss("nr:expire");
}
END_TEST

/* ---------------------------------------------------------------------------
 * A failing flash
 * ------------------------------------------------------------------------- */

/* Poll until cond() or `ms` passed (no maintainer rounds: they would queue
 * new demotions). */
static bool wait_for(bool (*cond)(void), long ms)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (cond())
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (el > ms)
            return false;
        cache_flash_drain(C, 50);
        struct timespec pause = {0, 20 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static bool degraded(void)
{
    return tier().flash_degraded;
}

static char CLEAN_KEY[32]; /* deleted while flash fails: its tombstone is held */

/* Out of degraded mode, and the held delete applied (its tombstone gone). */
static bool recovered(void)
{
    return !tier().flash_degraded && ram_entry(CLEAN_KEY) < 0;
}

#define problem(buf, ...) snprintf((buf) + strlen(buf), sizeof(buf) - strlen(buf), __VA_ARGS__)

/* A key whose RAM copy is clean (its version is on flash too). */
static bool find_clean(char *out, size_t len)
{
    for (unsigned i = FILLED; i-- > 0;) {
        snprintf(out, len, "filler:%u", i);
        int fl = ram_entry(out);
        if (fl >= 0 && (fl & ITEM_CLEAN))
            return true;
    }
    return false;
}

START_TEST(test_degraded_and_recovery)
{
    reserve_small_class();
    const char *keys[] = {"deg:a", "deg:b", "deg:c"};
    uint64_t cas_c;
    ck_assert_int_eq(put("deg:a", 1, 0, 0, NULL), TC_OK);
    ck_assert_int_eq(put("deg:b", 1, 0, 0, NULL), TC_OK);
    ck_assert_int_eq(put("deg:c", 1, 0, 0, &cas_c), TC_OK);
    push_out(keys, 3);
    ck_assert(find_clean(CLEAN_KEY, sizeof(CLEAN_KEY)));
    /* The writer's last transaction before the failure wrote a record. */
    ck_assert_int_eq(put("deg:last", 1, 0, 0, NULL), TC_OK);
    demote_now("deg:last");
    drain();
    ck_assert(ram_entry("deg:last") & ITEM_CLEAN);

    /* Every LMDB call fails from now on. */
    cache_flash_fault_inject(C, 1, EIO, 0);
    ck_assert_int_eq(cache_delete(W, CLEAN_KEY, strlen(CLEAN_KEY)), TC_OK);
    fill(500); /* demotions, which fail */
    ck_assert_msg(wait_for(degraded, 3000), "the writer did not notice the failing flash");
    struct cache_tier_stats s = tier();
    ck_assert_uint_gt(s.io_errors, 0);

    /* RAM goes on: sets (even under pressure) and gets work. */
    for (int i = 0; i < 3000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "deg:new:%d", i);
        ck_assert_int_eq(put(key, 1, 0, 0, NULL), TC_OK);
    }
    uint64_t cas_n;
    ck_assert_int_eq(put("deg:fresh", 1, 5, 0, &cas_n), TC_OK);
    ck_version("deg:fresh", 1, 5, cas_n);
    s = tier();
    ck_assert(s.flash_degraded);
    ck_assert_uint_ge(s.held_deletes, 1);

    /* Deletes of flash keys read as misses (the tombstones are held). */
    ck_miss(CLEAN_KEY);
    tc_status_e del_a = cache_delete(W, "deg:a", 5);
    ck_assert_msg(del_a == TC_OK || del_a == TC_NOT_FOUND, "delete in degraded mode: %s",
                  tc_strerror(del_a));
    ck_miss("deg:a");

    /* Flash comes back: the writer recovers by itself (retries back off
     * from 1 s) and applies the held deletes. */
    cache_flash_fault_inject(C, 0, 0, 0);
    if (!wait_for(recovered, 8000)) {
        s = tier();
        ck_abort_msg("no recovery within 8 s of the fault clearing (degraded %d, tombstone of "
                     "%s still linked: %d, %llu I/O errors)",
                     s.flash_degraded, CLEAN_KEY, ram_entry(CLEAN_KEY) >= 0,
                     (unsigned long long)s.io_errors);
    }
    char problems[1024] = "";
    if (get_full(CLEAN_KEY).st != TC_NOT_FOUND)
        problem(problems, "\n%s, deleted while flash was failing, is back", CLEAN_KEY);
    if (get_full("deg:a").st != TC_NOT_FOUND)
        problem(problems,
                "\ndeg:a (on flash only), deleted while flash was failing (the delete said %s), "
                "is back after the recovery",
                tc_strerror(del_a));
    struct got g = get_full("deg:c"); /* untouched flash keys are still there */
    if (g.st != TC_OK || g.cas != cas_c)
        problem(problems, "\ndeg:c (untouched, on flash) %s after the recovery", tc_strerror(g.st));
    s = tier();
    if (s.held_deletes != 0)
        problem(problems, "\nstats: held_deletes %llu after the held deletes were applied",
                (unsigned long long)s.held_deletes);

    /* And flash takes writes again. */
    uint64_t errors = s.io_errors, demoted = s.demotions;
    fill(3000);
    drain();
    s = tier();
    if (s.flash_degraded || s.io_errors != errors || s.demotions <= demoted)
        problem(problems,
                "\nwrites after the recovery: degraded %d, %llu new I/O errors, %llu new "
                "demotions",
                s.flash_degraded, (unsigned long long)(s.io_errors - errors),
                (unsigned long long)(s.demotions - demoted));
    ck_assert_msg(problems[0] == '\0', "after flash came back:%s", problems);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Restarts on the same directory
 * ------------------------------------------------------------------------- */

START_TEST(test_restart_clean_keeps_everything)
{
    enum { N = 3000 };
    static uint64_t cas[N];
    uint64_t max_cas = 0;
    for (unsigned i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "warm:%u", i);
        ck_assert_int_eq(put(key, 1, i, 0, &cas[i]), TC_OK);
        if (cas[i] > max_cas)
            max_cas = cas[i];
        if (i % 64 == 0)
            cache_maintain(C);
    }
    restart(true);
    for (unsigned i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "warm:%u", i);
        ck_version(key, 1, i, cas[i]);
    }
    uint64_t nc;
    ck_assert_int_eq(put("warm:new", 1, 0, 0, &nc), TC_OK);
    ck_assert_msg(nc > max_cas, "CAS %llu after the restart, %llu before", (unsigned long long)nc,
                  (unsigned long long)max_cas);
    ck_assert_uint_eq(tier().io_errors, 0);
}
END_TEST

START_TEST(test_restart_unclean_never_older_versions)
{
    reserve_small_class();
    const char *keys[] = {"u:set",  "u:setclean", "u:del",     "u:touch",
                          "u:incr", "u:append",   "u:replace", "u:keep"};
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    uint64_t keep_cas = 0;
    for (size_t i = 0; i < N; i++) {
        if (strcmp(keys[i], "u:incr") == 0)
            ck_assert_int_eq(put_number(keys[i], "100", NULL), TC_OK);
        else
            ck_assert_int_eq(put(keys[i], 1, 0, 0, i == N - 1 ? &keep_cas : NULL), TC_OK);
    }
    push_out(keys, N);
    /* u:setclean comes back to RAM, clean (a second hit). */
    ck_assert_int_eq(get_full("u:setclean").st, TC_OK);
    ck_assert_int_eq(get_full("u:setclean").st, TC_OK);
    ck_assert_msg(ram_entry("u:setclean") >= 0 && (ram_entry("u:setclean") & ITEM_CLEAN),
                  "u:setclean not promoted clean");

    /* Change each one; the new versions stay in RAM only. */
    ck_assert_int_eq(put("u:set", 2, 0, 0, NULL), TC_OK);
    ck_assert_int_eq(put("u:setclean", 2, 0, 0, NULL), TC_OK);
    ck_assert_int_eq(cache_delete(W, "u:del", 5), TC_OK);
    ck_assert_int_eq(cache_touch(W, "u:touch", 7, T0 + 30), TC_OK);
    uint64_t v;
    ck_assert_int_eq(cache_arith(W, "u:incr", 6, true, 1, &v, NULL), TC_OK);
    ck_assert_int_eq(store_n("u:append", "++", 2, 0, 0, CACHE_APPEND, 0, NULL), TC_OK);
    ck_assert_int_eq(store_n("u:replace", "r", 1, 0, 0, CACHE_REPLACE, 0, NULL), TC_OK);
    drain();

    /* A stop without cache_persist (as after a crash, once the writer has
     * applied its queue): RAM is lost, flash is what the next run has. */
    restart(false);
    struct {
        const char *key;
        unsigned old_ver;
    } olds[] = {{"u:set", 1},   {"u:setclean", 1}, {"u:del", 1},
                {"u:touch", 1}, {"u:append", 1},   {"u:replace", 1}};
    char bad[512] = "";
    for (size_t i = 0; i < sizeof(olds) / sizeof(olds[0]); i++) {
        struct got g = get_full(olds[i].key);
        char old[VLEN];
        value_of(olds[i].key, olds[i].old_ver, old, VLEN);
        if (g.st == TC_OK && g.nval == VLEN && memcmp(g.val, old, VLEN) == 0)
            snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " %s", olds[i].key);
    }
    struct got g = get_full("u:incr");
    if (g.st == TC_OK && memcmp(g.val, "100", 3) == 0)
        snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " u:incr");
    ck_assert_msg(bad[0] == '\0', "the version before the change came back after the restart:%s",
                  bad);
    ck_version("u:keep", 1, 0, keep_cas);
}
END_TEST

/* Holds the stripe of a key queued for the writer, so that the writer,
 * having committed, waits in cache_flash_done() until released. */
struct stripe_holder {
    const char *key;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool queued, release;
};

static void *hold_stripe(void *arg)
{
    struct stripe_holder *h = arg;
    size_t nkey = strlen(h->key);
    uint64_t hv = ht_hash(h->key, nkey);
    ht_lock(C->ht, hv);
    struct item *it = ht_find(C->ht, hv, h->key, nkey);
    ck_assert(it != NULL && tier_start_demotion(C, it, hv));
    pthread_mutex_lock(&h->lock);
    h->queued = true;
    pthread_cond_broadcast(&h->cond);
    while (!h->release)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    /* The stopping thread sets the writer's stop flag at once; this margin
     * makes sure it has before the writer can go on. */
    struct timespec margin = {0, 300 * 1000000L};
    nanosleep(&margin, NULL);
    ht_unlock(C->ht, hv);
    return NULL;
}

static uint64_t BATCHES0;

static bool writer_committed(void)
{
    return tier().batches > BATCHES0;
}

START_TEST(test_restart_after_flush)
{
    /* flush_all is persisted by the writer (a state commit). A stop right
     * after it, even one that is not clean, must not bring flushed items
     * back: the writer has to persist the new boundary before it stops.
     * Made deterministic: the flush and the stop both happen while the
     * writer is busy finishing a batch. */
    const char *keys[] = {"rf:a"};
    ck_assert_int_eq(put("rf:a", 1, 0, 0, NULL), TC_OK);
    push_out(keys, 1);
    ck_assert_int_eq(put("rf:busy", 1, 0, 0, NULL), TC_OK);
    BATCHES0 = tier().batches;

    struct stripe_holder h = {.key = "rf:busy"};
    pthread_mutex_init(&h.lock, NULL);
    pthread_cond_init(&h.cond, NULL);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hold_stripe, &h), 0);
    pthread_mutex_lock(&h.lock);
    while (!h.queued)
        pthread_cond_wait(&h.cond, &h.lock);
    pthread_mutex_unlock(&h.lock);
    ck_assert_msg(wait_for(writer_committed, 5000), "the writer did not take the batch");

    cache_flush(W, 0); /* the writer is inside its batch: it cannot persist this yet */
    ck_miss("rf:a");
    pthread_mutex_lock(&h.lock);
    h.release = true;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.lock);
    cache_time_t t0 = T0, now = cache_now(C);
    engine_close(); /* stop without cache_persist() */
    pthread_join(t, NULL);
    pthread_mutex_destroy(&h.lock);
    pthread_cond_destroy(&h.cond);
    engine_open();
    cache_clock_set(C, now);
    T0 = t0;

    ck_miss("rf:a");
    for (unsigned i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof(key), "filler:%u", i);
        ck_miss(key);
    }
}
END_TEST

static Suite *tiered_suite(void)
{
    Suite *s = suite_create("tiered");
    TCase *tc = tcase_create("demotion");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fill_beyond_ram_all_readable);
    tcase_add_test(tc, test_min_ttl_and_misses);
    tcase_add_test(tc, test_flash_wraps_around);
    suite_add_tcase(s, tc);

    tc = tcase_create("operations");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ops_on_flash_key_as_on_ram_key);
    tcase_add_test(tc, test_ops_on_flash_key_exact_results);
    suite_add_tcase(s, tc);

    tc = tcase_create("versions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_delete_flash_key);
    tcase_add_test(tc, test_newer_ram_version_deleted);
    tcase_add_test(tc, test_newer_ram_version_expires);
    tcase_add_test(tc, test_newer_ram_version_evicted);
    tcase_add_test(tc, test_flush_all);
    tcase_add_test(tc, test_flash_item_expires);
    tcase_add_test(tc, test_ops_on_flash_key_without_ram);
    suite_add_tcase(s, tc);

    tc = tcase_create("degraded");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_degraded_and_recovery);
    suite_add_tcase(s, tc);

    tc = tcase_create("restart");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_restart_clean_keeps_everything);
    tcase_add_test(tc, test_restart_unclean_never_older_versions);
    tcase_add_test(tc, test_restart_after_flush);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tiered_run(tiered_suite(), "check_tiered");
}
