/*
 * check_rebalance.c: slab pages move to where the items now are
 * (storage/rebalance.c), the engine driven by hand: manual clock, no
 * maintainer thread, cache_maintain() called as the thread would.
 *
 * The scene, "slab calcification": 8 MiB of RAM first filled with small
 * items, so every page belongs to the small class; then the workload turns
 * to 10 KB values over a key set of ~4 MB that is read in a cycle (set on a
 * miss). Without page moves the big class keeps its single page and a
 * cyclic reader of a set four times larger than its memory never hits. With
 * them, pages leave the idle small class and the hit ratio recovers.
 */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tiercache/engine.h>
#include <tiercache/status.h>

#define MIB       (1024u * 1024u)
#define SMALL_LEN 100
#define BIG_LEN   10000
#define BIG_KEYS  400 /* ~4 MB of big values: half the RAM */
#define SECONDS   40  /* of the big workload */

static struct cache *C;
static struct cache_worker *W;
static cache_time_t T0;
static char DIR_[256];
static unsigned NSMALL; /* small keys stored */

static void open_engine(bool rebalance, bool flash)
{
    struct cache_options o;
    cache_options_default(&o);
    o.manual_clock = true;
    o.no_maintainer = true;
    o.mem_limit = 8 * MIB;
    o.page_size = 1 * MIB;
    o.no_rebalance = !rebalance;
    if (flash) {
        snprintf(DIR_, sizeof(DIR_), "/tmp/check_rebalance.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(DIR_));
        o.flash_dir = DIR_;
        o.flash_size = 256 * MIB;
        o.flash_sync = CACHE_FLASH_SYNC_NONE;
        o.flash_min_ttl = 0;
    } else {
        DIR_[0] = '\0';
    }
    ck_assert_int_eq(cache_create(&o, &C), TC_OK);
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
    T0 = cache_now(C);
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void close_engine(void)
{
    cache_worker_destroy(&W);
    cache_destroy(&C);
    if (DIR_[0] != '\0')
        nftw(DIR_, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The maintainer's work for one second, then the clock moves on. */
static void tick(cache_time_t second)
{
    cache_clock_set(C, T0 + second);
    for (int i = 0; i < 20000 && cache_maintain(C); i++)
        if (i % 256 == 255)
            cache_flash_drain(C, 1000);
    cache_flash_drain(C, 5000);
}

static void value_of(const char *key, char *v, size_t n)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++)
        v[i] = key[i % kl] ^ (char)i;
}

/* set, retrying while the engine is busy (the flash writer catching up). */
static tc_status_e set(const char *key, size_t vlen)
{
    static char v[BIG_LEN];
    value_of(key, v, vlen);
    struct item *it = NULL;
    tc_status_e st = TC_BUSY;
    for (int tries = 0; tries < 5000 && st == TC_BUSY; tries++) {
        st = cache_alloc(W, key, strlen(key), 0, 0, (uint32_t)vlen, &it);
        if (st == TC_BUSY) {
            cache_maintain(C);
            cache_flash_drain(C, 100);
        }
    }
    if (st != TC_OK)
        return st;
    memcpy(item_value_mut(it), v, vlen);
    st = cache_store(W, it, CACHE_SET, 0, NULL);
    cache_item_unref(C, it);
    return st;
}

/* get; true on a hit with the right bytes (a wrong value fails the test). */
static bool get(const char *key, size_t vlen)
{
    struct item *it;
    if (cache_get(W, key, strlen(key), &it) != TC_OK)
        return false;
    static char v[BIG_LEN];
    value_of(key, v, vlen);
    ck_assert_uint_eq(item_nbytes(it), vlen);
    ck_assert_msg(memcmp(item_value(it), v, vlen) == 0, "'%s': wrong value", key);
    cache_item_unref(C, it);
    return true;
}

/* Fill RAM with small items: every page goes to the small class. */
static void fill_small(void)
{
    char key[32];
    for (NSMALL = 0; NSMALL < 8 * MIB / SMALL_LEN; NSMALL++) {
        snprintf(key, sizeof(key), "small:%u", NSMALL);
        ck_assert_int_eq(set(key, SMALL_LEN), TC_OK);
    }
    tick(1);
}

/* One second of the big workload: read every big key in order, set on a
 * miss. Returns that second's hit ratio. */
static double big_second(void)
{
    unsigned hits = 0;
    char key[32];
    for (unsigned i = 0; i < BIG_KEYS; i++) {
        snprintf(key, sizeof(key), "big:%u", i);
        if (get(key, BIG_LEN))
            hits++;
        else
            ck_assert_int_eq(set(key, BIG_LEN), TC_OK);
    }
    return (double)hits / BIG_KEYS;
}

/* Run the big workload; returns the hit ratio of its last 5 seconds. */
static double run_big(unsigned *first_good)
{
    double last = 0;
    *first_good = 0;
    for (unsigned s = 0; s < SECONDS; s++) {
        double r = big_second();
        if (r > 0.9 && *first_good == 0)
            *first_good = s + 1;
        if (s >= SECONDS - 5)
            last += r / 5;
        tick(2 + s);
    }
    return last;
}

static struct cache_stats stats(void)
{
    struct cache_stats s;
    cache_stats_get(C, &s);
    return s;
}

START_TEST(test_without_moves_the_big_class_starves)
{
    open_engine(false, false);
    fill_small();
    unsigned first_good;
    double r = run_big(&first_good);
    ck_assert_msg(r < 0.3, "hit ratio %.2f without page moves: the scene does not starve", r);
    ck_assert_uint_eq(stats().slabs_moved, 0);
    close_engine();
}
END_TEST

START_TEST(test_pages_move_and_the_hit_ratio_recovers)
{
    open_engine(true, false);
    fill_small();
    unsigned first_good;
    double r = run_big(&first_good);
    struct cache_stats s = stats();
    printf("RAM only: hit ratio %.3f over the last 5 s, above 0.9 from second %u, %llu pages "
           "moved, %llu items evacuated\n",
           r, first_good, (unsigned long long)s.slabs_moved,
           (unsigned long long)s.slab_reassign_evictions);
    ck_assert_msg(r > 0.9, "hit ratio %.2f with page moves", r);
    ck_assert_uint_ge(s.slabs_moved, 3);
    ck_assert(!s.slab_reassign_running || s.slabs_moved > 0);
    /* The budget holds: pages given back before others are taken. */
    ck_assert_uint_le(s.total_malloced, 8 * MIB + 2 * MIB /* first pages over the budget */);
    close_engine();
}
END_TEST

/* With a flash tier the items of the emptied pages go to flash first:
 * every small key is still there, RAM or flash. */
START_TEST(test_with_flash_nothing_is_lost)
{
    open_engine(true, true);
    fill_small();
    unsigned first_good;
    double r = run_big(&first_good);
    struct cache_stats s = stats();
    struct cache_tier_stats ts;
    cache_tier_stats_get(C, &ts);
    printf("flash: hit ratio %.3f over the last 5 s, above 0.9 from second %u, %llu pages moved, "
           "%llu items evacuated\n",
           r, first_good, (unsigned long long)s.slabs_moved,
           (unsigned long long)s.slab_reassign_evictions);
    ck_assert_msg(r > 0.9, "hit ratio %.2f with page moves and flash", r);
    ck_assert_uint_ge(s.slabs_moved, 3);
    char key[32];
    unsigned missing = 0;
    for (unsigned i = 0; i < NSMALL; i++) {
        snprintf(key, sizeof(key), "small:%u", i);
        if (!get(key, SMALL_LEN))
            missing++;
    }
    ck_assert_msg(missing == 0, "%u of %u small keys lost", missing, NSMALL);
    ck_assert_uint_eq(ts.dropped_dirty, 0);
    close_engine();
}
END_TEST

/* A held item keeps its page: the move waits, then gives up, and the class
 * keeps working. */
START_TEST(test_a_held_item_stalls_then_abandons_the_move)
{
    open_engine(true, false);
    fill_small();
    /* Hold a reference to every small item that is still there. */
    char key[32];
    static struct item *held[8 * MIB / SMALL_LEN];
    unsigned nheld = 0;
    for (unsigned i = 0; i < NSMALL; i++) {
        snprintf(key, sizeof(key), "small:%u", i);
        if (cache_get(W, key, strlen(key), &held[nheld]) == TC_OK)
            nheld++;
    }
    ck_assert_uint_gt(nheld, 0);
    for (unsigned s = 0; s < 30; s++) {
        big_second();
        tick(2 + s);
    }
    struct cache_stats st = stats();
    ck_assert_uint_eq(st.slabs_moved, 0);
    ck_assert_uint_ge(st.slab_reassign_abandoned, 1);
    for (unsigned i = 0; i < nheld; i++)
        cache_item_unref(C, held[i]);
    /* Released: now pages can move. */
    unsigned first_good;
    double r = run_big(&first_good);
    ck_assert_msg(r > 0.9, "hit ratio %.2f after the references went", r);
    /* Every small item that was held is still intact or gone, never wrong
     * (get() checks the bytes). */
    for (unsigned i = 0; i < NSMALL; i++) {
        snprintf(key, sizeof(key), "small:%u", i);
        get(key, SMALL_LEN);
    }
    close_engine();
}
END_TEST

/* ---------------------------------------------------------------------------
 * Threads: clients storing and reading shifting sizes while the maintainer
 * thread moves pages under them (ThreadSanitizer runs this too).
 * ------------------------------------------------------------------------- */

struct client {
    unsigned id;
    unsigned phase_ms;
    unsigned long reads, hits;
    tc_status_e failed;
};

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct cache_worker *w;
    if (cache_worker_create(C, &w) != TC_OK) {
        cl->failed = TC_NO_MEMORY;
        return NULL;
    }
    static const size_t sizes[] = {100, 3000, 10000, 600};
    char v[BIG_LEN]; /* each thread its own */
    char key[48];
    long long start = ms_now();
    for (unsigned n = 0;; n++) {
        long long el = ms_now() - start;
        if (el >= 4 * cl->phase_ms)
            break;
        size_t vlen = sizes[el / cl->phase_ms];
        snprintf(key, sizeof(key), "t%u:%zu:%u", cl->id, vlen, n % 500);
        struct item *it;
        cl->reads++;
        if (cache_get(w, key, strlen(key), &it) == TC_OK) {
            cl->hits++;
            char want[BIG_LEN];
            value_of(key, want, vlen);
            if (item_nbytes(it) != vlen || memcmp(item_value(it), want, vlen) != 0) {
                cl->failed = TC_INVALID; /* a wrong value: the worst outcome */
                fprintf(stderr, "key %s: nbytes %u want %zu, key in item %.*s\n", key,
                        item_nbytes(it), vlen, (int)item_nkey(it), item_key(it));
            }
            cache_item_unref(C, it);
            continue;
        }
        tc_status_e st = cache_alloc(w, key, strlen(key), 0, 0, (uint32_t)vlen, &it);
        if (st == TC_BUSY || st == TC_NO_MEMORY)
            continue;
        if (st != TC_OK) {
            cl->failed = st;
            break;
        }
        value_of(key, v, vlen);
        memcpy(item_value_mut(it), v, vlen);
        cache_store(w, it, CACHE_SET, 0, NULL);
        cache_item_unref(C, it);
    }
    cache_worker_destroy(&w);
    return NULL;
}

START_TEST(test_moves_under_concurrent_clients)
{
    struct cache_options o;
    cache_options_default(&o);
    o.mem_limit = 8 * MIB;
    o.page_size = 1 * MIB;
    o.no_rebalance = getenv("RB_OFF") != NULL;
    ck_assert_int_eq(cache_create(&o, &C), TC_OK);
    DIR_[0] = '\0';
    ck_assert_int_eq(cache_worker_create(C, &W), TC_OK);
    struct client cl[2] = {{.id = 0, .phase_ms = 2500}, {.id = 1, .phase_ms = 2500}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(cl[i].failed == TC_OK, "client %d: %s", i, tc_strerror(cl[i].failed));
    struct cache_stats s = stats();
    printf("threads: %llu pages moved, %llu abandoned, hit ratios %.2f %.2f\n",
           (unsigned long long)s.slabs_moved, (unsigned long long)s.slab_reassign_abandoned,
           (double)cl[0].hits / (double)cl[0].reads, (double)cl[1].hits / (double)cl[1].reads);
    ck_assert_uint_ge(s.slabs_moved, 1);
    close_engine();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rebalance");
    TCase *tc = tcase_create("rebalance");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_without_moves_the_big_class_starves);
    tcase_add_test(tc, test_pages_move_and_the_hit_ratio_recovers);
    tcase_add_test(tc, test_with_flash_nothing_is_lost);
    tcase_add_test(tc, test_a_held_item_stalls_then_abandons_the_move);
    tcase_add_test(tc, test_moves_under_concurrent_clients);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
