/*
 * tiered_fixture.c: the fixture and helpers shared by the unit tests of the
 * engine with a flash tier (see tiered_fixture.h). Compiled into each of
 * check_tiered and check_meta_ops.
 *
 * C, W, T0 and FILLED belong to the test running now: setup() opens the
 * engine on a new directory under the run's root (tiered_run() makes it),
 * restart() reopens it there, teardown() closes it and removes the
 * directory.
 */
#include "tiered_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ROOT[64]; /* made by tiered_run() */
static char DIR_[256];
struct cache *C;
struct cache_worker *W;
cache_time_t T0;
unsigned FILLED;
uint64_t FLASH_SIZE;

/* ---------------------------------------------------------------------------
 * The engine
 * ------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void options(struct cache_options *o)
{
    cache_options_default(o);
    o->manual_clock = true;
    o->no_maintainer = true;
    o->mem_limit = 4 * MIB;
    o->page_size = 1 * MIB;
    o->flash_dir = DIR_;
    o->flash_size = FLASH_SIZE;
    o->flash_sync = CACHE_FLASH_SYNC_NONE;
    o->flash_min_ttl = 10;
}

void engine_open(void)
{
    struct cache_options o;
    options(&o);
    ck_assert_int_eq(cache_create(&o, &C), TC_OK);
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
    T0 = cache_now(C);
}

void engine_close(void)
{
    cache_worker_destroy(&W);
    cache_destroy(&C);
}

void setup(void)
{
    snprintf(DIR_, sizeof(DIR_), "%s/t.XXXXXX", ROOT);
    ck_assert_ptr_nonnull(mkdtemp(DIR_));
    FILLED = 0;
    FLASH_SIZE = 64 * MIB;
    engine_open();
}

void teardown(void)
{
    engine_close();
    nftw(DIR_, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void at(cache_time_t offset)
{
    cache_clock_set(C, T0 + offset);
}

struct cache_tier_stats tier(void)
{
    struct cache_tier_stats s;
    cache_tier_stats_get(C, &s);
    return s;
}

void drain(void)
{
    ck_assert_msg(cache_flash_drain(C, 10000), "the flash writer did not drain in 10 s");
}

/* ---------------------------------------------------------------------------
 * Items
 * ------------------------------------------------------------------------- */

/* The value of version `ver` of a key: every byte value, shifted per key. */
void value_of(const char *key, unsigned ver, char *dst, size_t n)
{
    uint64_t h = ht_hash(key, strlen(key)) + ver;
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)(unsigned char)(i + h);
}

void busy_retry(const char *what, int tries)
{
    ck_assert_msg(tries < 2000, "'%s': TC_BUSY for good", what);
    cache_maintain(C);
    cache_flash_drain(C, 1000);
}

/* Store with the two-phase API; retries while the engine says TC_BUSY (the
 * writer is cleaning), driving the maintainer and the writer meanwhile. */
tc_status_e store_n(const char *key, const void *val, size_t vlen, uint32_t flags, cache_time_t exp,
                    enum cache_store_op op, uint64_t cas, uint64_t *cas_out)
{
    struct item *it = NULL;
    tc_status_e st;
    for (int tries = 0;; tries++) {
        st = cache_alloc(W, key, strlen(key), flags, exp, (uint32_t)vlen, &it);
        if (st != TC_BUSY)
            break;
        ck_assert_msg(tries < 2000, "'%s': TC_BUSY for good", key);
        cache_maintain(C);
        cache_flash_drain(C, 1000);
    }
    if (st != TC_OK)
        return st;
    memcpy(item_value_mut(it), val, vlen);
    for (int tries = 0;; tries++) {
        st = cache_store(W, it, op, cas, cas_out);
        if (st != TC_BUSY)
            break;
        ck_assert_msg(tries < 2000, "'%s': store TC_BUSY for good", key);
        cache_maintain(C);
        cache_flash_drain(C, 1000);
    }
    cache_item_unref(C, it);
    return st;
}

/* Version `ver` of key, VLEN bytes. */
tc_status_e put(const char *key, unsigned ver, uint32_t flags, cache_time_t exp, uint64_t *cas_out)
{
    char v[VLEN];
    value_of(key, ver, v, sizeof(v));
    return store_n(key, v, sizeof(v), flags, exp, CACHE_SET, 0, cas_out);
}

/* A numeric value padded to VLEN with spaces (memcached reads the number
 * up to the first space). */
tc_status_e put_number(const char *key, const char *num, uint64_t *cas_out)
{
    char v[VLEN];
    memset(v, ' ', sizeof(v));
    memcpy(v, num, strlen(num));
    return store_n(key, v, sizeof(v), 42, 0, CACHE_SET, 0, cas_out);
}

/* Does RAM hold an entry for the key? Its iflags, or -1. */
int ram_entry(const char *key)
{
    size_t nkey = strlen(key);
    uint64_t hv = ht_hash(key, nkey);
    ht_lock(C->ht, hv);
    struct item *it = ht_find(C->ht, hv, key, nkey);
    int fl = it != NULL ? item_iflags(it) : -1;
    ht_unlock(C->ht, hv);
    return fl;
}

bool in_ram(const char *key)
{
    int fl = ram_entry(key);
    return fl >= 0 && !(fl & ITEM_TOMBSTONE);
}

/* Queue the key's RAM item for the flash writer now (as pre-cleaning would). */
void demote_now(const char *key)
{
    size_t nkey = strlen(key);
    uint64_t hv = ht_hash(key, nkey);
    ht_lock(C->ht, hv);
    struct item *it = ht_find(C->ht, hv, key, nkey);
    bool queued = it != NULL && tier_start_demotion(C, it, hv);
    ht_unlock(C->ht, hv);
    ck_assert_msg(queued, "'%s' could not be queued for flash", key);
}

/* Store `n` more fillers (never read): RAM pressure. */
void fill(unsigned n)
{
    for (unsigned i = 0; i < n; i++, FILLED++) {
        char key[32];
        snprintf(key, sizeof(key), "filler:%u", FILLED);
        ck_assert_int_eq(put(key, 0, 0, 0, NULL), TC_OK);
        if (FILLED % 64 == 0)
            cache_maintain(C);
    }
}

/* Fill until none of keys[] is in RAM any more: they are on flash only. */
void push_out(const char *const *keys, size_t n)
{
    for (int round = 0; round < 40; round++) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += in_ram(keys[i]);
        if (left == 0) {
            drain();
            return;
        }
        fill(500);
    }
    char left[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (in_ram(keys[i]))
            snprintf(left + strlen(left), sizeof(left) - strlen(left), " %s (flags %#x)", keys[i],
                     (unsigned)ram_entry(keys[i]));
    }
    ck_abort_msg("keys stay in RAM after 20000 fillers:%s", left);
}

struct got get_full(const char *key)
{
    struct got g;
    memset(&g, 0, sizeof(g));
    struct item *it = NULL;
    g.st = cache_get(W, key, strlen(key), &it);
    if (g.st == TC_OK) {
        g.heap = (item_iflags(it) & ITEM_HEAP) != 0;
        g.nval = item_nbytes(it);
        ck_assert_uint_le(g.nval, sizeof(g.val));
        memcpy(g.val, item_value(it), g.nval);
        g.flags = item_flags(it);
        g.exp = item_exptime(it);
        g.cas = item_cas(it);
        ck_assert_uint_eq(item_nkey(it), strlen(key));
        ck_assert(memcmp(item_key(it), key, strlen(key)) == 0);
        cache_item_unref(C, it);
    }
    return g;
}

/* The small class gets its page before the fillers take them all. */
void reserve_small_class(void)
{
    ck_assert_int_eq(store_n("small", "x", 1, 0, 0, CACHE_SET, 0, NULL), TC_OK);
}

/* Stop (with cache_persist() first if clean) and start again on the same
 * directory, the clock where it was. */
void restart(bool clean)
{
    if (clean) {
        uint64_t written = 0;
        ck_assert_int_eq(cache_persist(C, 10000, &written), TC_OK);
    }
    cache_time_t t0 = T0, now = cache_now(C);
    engine_close();
    engine_open();
    cache_clock_set(C, now);
    T0 = t0;
}

/* ---------------------------------------------------------------------------
 * RAM without room
 * ------------------------------------------------------------------------- */

static void pin(struct pinned *p, struct item *it)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->v = realloc(p->v, p->cap * sizeof(*p->v));
        ck_assert_ptr_nonnull(p->v);
    }
    p->v[p->n++] = it;
}

void pin_class(struct pinned *p)
{
    drain(); /* nothing in flight: every item of the class is evictable */
    for (unsigned i = 0; i < FILLED; i++) {
        char key[32];
        snprintf(key, sizeof(key), "filler:%u", i);
        struct item *it;
        if (in_ram(key) && cache_get(W, key, strlen(key), &it) == TC_OK)
            pin(p, it);
    }
    tc_status_e st = TC_OK;
    for (int i = 0; i < 20000 && st == TC_OK; i++) {
        struct item *it;
        st = cache_alloc(W, "pad", 3, 0, 0, VLEN, &it);
        if (st == TC_OK)
            pin(p, it);
    }
    ck_assert_msg(st == TC_NO_MEMORY, "the class could not be filled: %s", tc_strerror(st));
}

void unpin(struct pinned *p)
{
    for (size_t i = 0; i < p->n; i++)
        cache_item_unref(C, p->v[i]);
    free(p->v);
    *p = (struct pinned){0};
}

/* ---------------------------------------------------------------------------
 * main()
 * ------------------------------------------------------------------------- */

int tiered_run(Suite *s, const char *name)
{
    snprintf(ROOT, sizeof(ROOT), "/tmp/%s.XXXXXX", name);
    if (mkdtemp(ROOT) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(ROOT, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
