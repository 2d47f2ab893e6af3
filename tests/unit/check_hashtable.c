/*
 * check_hashtable.c: unit tests for storage/hashtable.c: find, insert,
 * remove and replace under the stripe lock; incremental growth with every
 * item findable at every step; ht_scan visiting every item exactly once per
 * pass; and readers running while another thread grows the table.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hashtable.h"
#include "item.h"

/* ---------------------------------------------------------------------------
 * Items: key "key<i>", value = the index i (4 bytes) to identify them.
 * ------------------------------------------------------------------------- */

static struct item *mk(uint32_t i)
{
    char key[32];
    int n = snprintf(key, sizeof(key), "key%u", i);
    struct item *it = calloc(1, ITEM_HEADER_SIZE + (size_t)n + sizeof(i));
    item_init(it, 1, key, (size_t)n, 0, 0, sizeof(i), 0);
    memcpy(item_data_value(it), &i, sizeof(i));
    return it;
}

static uint32_t idx_of(struct item *it)
{
    uint32_t i;
    memcpy(&i, item_data_value(it), sizeof(i));
    return i;
}

static uint64_t hv_of(const struct item *it)
{
    return ht_hash(it->data, it->nkey);
}

static void insert(struct hashtable *ht, struct item *it)
{
    uint64_t hv = hv_of(it);
    ht_lock(ht, hv);
    ht_insert(ht, hv, it);
    ht_unlock(ht, hv);
}

static void remove_it(struct hashtable *ht, struct item *it)
{
    uint64_t hv = hv_of(it);
    ht_lock(ht, hv);
    ht_remove(ht, hv, it);
    ht_unlock(ht, hv);
}

static struct item *find_key(struct hashtable *ht, const char *key, size_t nkey)
{
    uint64_t hv = ht_hash(key, nkey);
    ht_lock(ht, hv);
    struct item *it = ht_find(ht, hv, key, nkey);
    ht_unlock(ht, hv);
    return it;
}

static struct item *find_idx(struct hashtable *ht, uint32_t i)
{
    char key[32];
    int n = snprintf(key, sizeof(key), "key%u", i);
    return find_key(ht, key, (size_t)n);
}

/* Index of the first live item that is not found as itself, or -1. */
static long first_missing(struct hashtable *ht, struct item **its, const bool *live, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct item *f = find_idx(ht, i);
        if (live[i] ? f != its[i] : f != NULL)
            return (long)i;
    }
    return -1;
}

/* ---------------------------------------------------------------------------
 * Basic operations
 * ------------------------------------------------------------------------- */

START_TEST(test_create_bounds)
{
    struct hashtable *ht = NULL;
    ck_assert_int_eq(ht_create(4, 5, &ht), TC_INVALID);
    ck_assert_int_eq(ht_create(41, 4, &ht), TC_INVALID);
    ck_assert_int_eq(ht_create(4, 4, &ht), TC_OK);
    ck_assert_uint_eq(ht_hashpower(ht), 4);
    ck_assert_uint_eq(ht_count(ht), 0);
    ck_assert(!ht_is_growing(ht));
    ck_assert_uint_eq(ht_bytes(ht), 16 * sizeof(void *));
    ht_destroy(&ht);
    ck_assert_ptr_null(ht);
    ht_destroy(&ht);
    ht_destroy(NULL);
}
END_TEST

START_TEST(test_hash_is_stable)
{
    ck_assert_uint_eq(ht_hash("abc", 3), ht_hash("abcd", 3));
    ck_assert_uint_ne(ht_hash("abc", 3), ht_hash("abd", 3));
    ck_assert_uint_ne(ht_hash("a", 1), ht_hash("a", 0));
}
END_TEST

START_TEST(test_insert_find_remove)
{
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(8, 4, &ht), TC_OK);
    struct item *a = mk(1), *b = mk(2);
    ck_assert_ptr_null(find_idx(ht, 1));
    insert(ht, a);
    insert(ht, b);
    ck_assert_uint_eq(ht_count(ht), 2);
    ck_assert_ptr_eq(find_idx(ht, 1), a);
    ck_assert_ptr_eq(find_idx(ht, 2), b);
    ck_assert_ptr_null(find_idx(ht, 3));
    /* Keys compare by length too: "key1" is not "key10" nor "key". */
    ck_assert_ptr_null(find_key(ht, "key10", 5));
    ck_assert_ptr_null(find_key(ht, "key", 3));
    remove_it(ht, a);
    ck_assert_uint_eq(ht_count(ht), 1);
    ck_assert_ptr_null(find_idx(ht, 1));
    ck_assert_ptr_eq(find_idx(ht, 2), b);
    remove_it(ht, b);
    ck_assert_uint_eq(ht_count(ht), 0);
    ck_assert_ptr_null(find_idx(ht, 2));
    ht_destroy(&ht);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_replace)
{
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(4, 2, &ht), TC_OK);
    struct item *its[40];
    for (uint32_t i = 0; i < 40; i++)
        insert(ht, its[i] = mk(i)); /* 40 items in 16 buckets: chains */
    struct item *nu = mk(17);
    uint64_t hv = hv_of(nu);
    ht_lock(ht, hv);
    ht_replace(ht, hv, its[17], nu);
    ht_unlock(ht, hv);
    ck_assert_uint_eq(ht_count(ht), 40);
    ck_assert_ptr_eq(find_idx(ht, 17), nu);
    for (uint32_t i = 0; i < 40; i++)
        if (i != 17)
            ck_assert_ptr_eq(find_idx(ht, i), its[i]);
    /* The new one can be removed like any other. */
    remove_it(ht, nu);
    ck_assert_ptr_null(find_idx(ht, 17));
    ck_assert_uint_eq(ht_count(ht), 39);
    ht_destroy(&ht);
    for (uint32_t i = 0; i < 40; i++)
        free(its[i]);
    free(nu);
}
END_TEST

/* One bucket, one stripe: every item in one chain; remove from each position. */
START_TEST(test_single_chain)
{
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(0, 0, &ht), TC_OK);
    enum { N = 20 };
    struct item *its[N];
    bool live[N];
    for (uint32_t i = 0; i < N; i++) {
        insert(ht, its[i] = mk(i));
        live[i] = true;
    }
    ck_assert_int_eq(first_missing(ht, its, live, N), -1);
    static const uint32_t order[] = {0, 19, 10, 1, 18, 5};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        remove_it(ht, its[order[k]]);
        live[order[k]] = false;
        ck_assert_int_eq(first_missing(ht, its, live, N), -1);
        ck_assert_uint_eq(ht_count(ht), N - k - 1);
    }
    ht_destroy(&ht);
    for (uint32_t i = 0; i < N; i++)
        free(its[i]);
}
END_TEST

START_TEST(test_trylock)
{
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(4, 2, &ht), TC_OK);
    ht_lock(ht, 1);
    ck_assert(!ht_trylock(ht, 1));
    ck_assert(!ht_trylock(ht, 5)); /* same stripe: 5 & 3 == 1 */
    ck_assert(ht_trylock(ht, 2));
    ht_unlock(ht, 2);
    ht_unlock(ht, 1);
    ck_assert(ht_trylock(ht, 5));
    ht_unlock(ht, 5);
    ht_destroy(&ht);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Growth
 * ------------------------------------------------------------------------- */

START_TEST(test_needs_grow_threshold)
{
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(4, 2, &ht), TC_OK);
    struct item *its[25];
    for (uint32_t i = 0; i < 25; i++) {
        ck_assert(!ht_needs_grow(ht)); /* up to 1.5 x 16 = 24 items */
        insert(ht, its[i] = mk(i));
    }
    ck_assert(ht_needs_grow(ht));
    ck_assert(!ht_is_growing(ht));
    ck_assert(ht_grow_step(ht, 1)); /* not growing: nothing to do */
    ht_destroy(&ht);
    for (uint32_t i = 0; i < 25; i++)
        free(its[i]);
}
END_TEST

START_TEST(test_grow_every_item_findable_each_step)
{
    enum { N = 300, EXTRA = 100 };
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(4, 2, &ht), TC_OK);
    struct item *its[N + EXTRA];
    bool live[N + EXTRA] = {false};
    for (uint32_t i = 0; i < N; i++) {
        insert(ht, its[i] = mk(i));
        live[i] = true;
    }
    for (uint32_t i = N; i < N + EXTRA; i++)
        its[i] = mk(i);
    uint64_t count = N;
    uint32_t next_extra = N;
    unsigned grows = 0;

    while (ht_needs_grow(ht)) {
        unsigned hp = ht_hashpower(ht);
        ck_assert_int_eq(ht_grow_start(ht), TC_OK);
        grows++;
        ck_assert(ht_is_growing(ht));
        ck_assert(!ht_needs_grow(ht));
        ck_assert_uint_eq(ht_hashpower(ht), hp + 1);
        ck_assert_uint_eq(ht_bytes(ht), ((1ULL << (hp + 1)) + (1ULL << hp)) * sizeof(void *));
        ck_assert_int_eq(ht_grow_start(ht), TC_OK); /* again while growing: no-op */
        ck_assert_uint_eq(ht_hashpower(ht), hp + 1);
        ck_assert_int_eq(first_missing(ht, its, live, N + EXTRA), -1);

        /* One old bucket per step; check everything after each step and
         * change the table between steps. */
        uint64_t steps = 0;
        bool done = false;
        while (!done) {
            done = ht_grow_step(ht, 1);
            steps++;
            long miss = first_missing(ht, its, live, N + EXTRA);
            ck_assert_msg(miss == -1, "grow %u step %llu: item %ld misplaced", grows,
                          (unsigned long long)steps, miss);
            ck_assert_uint_eq(ht_count(ht), count);
            if (next_extra < N + EXTRA && steps % 3 == 0) {
                insert(ht, its[next_extra]);
                live[next_extra++] = true;
                count++;
            }
            if (steps % 5 == 0) {
                uint32_t victim = (uint32_t)((steps * 7919) % N);
                if (live[victim]) {
                    remove_it(ht, its[victim]);
                    live[victim] = false;
                    count--;
                }
            }
        }
        ck_assert_uint_eq(steps, 1ULL << hp); /* one step per old bucket */
        ck_assert(!ht_is_growing(ht));
        ck_assert_uint_eq(ht_bytes(ht), (1ULL << (hp + 1)) * sizeof(void *));
        ck_assert_int_eq(first_missing(ht, its, live, N + EXTRA), -1);
        ck_assert_uint_eq(ht_count(ht), count);
    }
    ck_assert_uint_ge(grows, 3); /* 16 -> 32 -> 64 -> 128 -> 256 */
    ck_assert_uint_ge(ht_hashpower(ht), 8);
    ht_destroy(&ht);
    for (uint32_t i = 0; i < N + EXTRA; i++)
        free(its[i]);
}
END_TEST

START_TEST(test_grow_in_big_steps)
{
    enum { N = 5000 };
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(6, 3, &ht), TC_OK);
    struct item **its = calloc(N, sizeof(*its));
    bool *live = calloc(N, sizeof(*live));
    for (uint32_t i = 0; i < N; i++) {
        insert(ht, its[i] = mk(i));
        live[i] = true;
        if (ht_needs_grow(ht)) {
            ck_assert_int_eq(ht_grow_start(ht), TC_OK);
            while (!ht_grow_step(ht, 7))
                ;
        }
    }
    ck_assert_int_eq(first_missing(ht, its, live, N), -1);
    ck_assert_uint_eq(ht_count(ht), N);
    ck_assert_uint_eq(ht_hashpower(ht), 12); /* 5000 <= 1.5 * 4096 */
    ht_destroy(&ht);
    for (uint32_t i = 0; i < N; i++)
        free(its[i]);
    free(its);
    free(live);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Scans
 * ------------------------------------------------------------------------- */

struct visits {
    unsigned *seen; /* by item index */
    struct hashtable *ht;
    bool remove_odd;
    unsigned calls;
    bool bad_hv;
};

static void visit(struct item *it, uint64_t hv, void *arg)
{
    struct visits *v = arg;
    v->calls++;
    if (hv != hv_of(it))
        v->bad_hv = true;
    uint32_t i = idx_of(it);
    v->seen[i]++;
    if (v->remove_odd && i % 2 == 1)
        ht_remove(v->ht, hv, it); /* the stripe is held */
}

START_TEST(test_scan_visits_each_once)
{
    enum { N = 1000 };
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(8, 4, &ht), TC_OK);
    struct item *its[N];
    for (uint32_t i = 0; i < N; i++)
        insert(ht, its[i] = mk(i));
    unsigned seen[N];
    struct visits v = {.seen = seen, .ht = ht};

    for (int pass = 0; pass < 2; pass++) {
        memset(seen, 0, sizeof(seen));
        v.calls = 0;
        uint64_t cursor = 0;
        unsigned calls = 0;
        while (!ht_scan(ht, &cursor, 3, visit, &v)) {
            calls++;
            ck_assert_uint_eq(cursor, calls * 3ULL);
        }
        ck_assert_uint_eq(cursor, 0);
        ck_assert_uint_eq(calls, 256 / 3); /* the last call completes the pass */
        ck_assert_uint_eq(v.calls, N);
        ck_assert(!v.bad_hv);
        for (uint32_t i = 0; i < N; i++)
            ck_assert_msg(seen[i] == 1, "pass %d: item %u visited %u times", pass, i, seen[i]);
    }
    /* One call for the whole table. */
    memset(seen, 0, sizeof(seen));
    uint64_t cursor = 0;
    ck_assert(ht_scan(ht, &cursor, 1 << 20, visit, &v));
    for (uint32_t i = 0; i < N; i++)
        ck_assert_uint_eq(seen[i], 1);
    ht_destroy(&ht);
    for (uint32_t i = 0; i < N; i++)
        free(its[i]);
}
END_TEST

START_TEST(test_scan_visitor_may_remove)
{
    enum { N = 500 };
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(5, 2, &ht), TC_OK); /* 32 buckets: long chains */
    struct item *its[N];
    bool live[N];
    for (uint32_t i = 0; i < N; i++) {
        insert(ht, its[i] = mk(i));
        live[i] = true;
    }
    unsigned seen[N];
    memset(seen, 0, sizeof(seen));
    struct visits v = {.seen = seen, .ht = ht, .remove_odd = true};
    uint64_t cursor = 0;
    while (!ht_scan(ht, &cursor, 5, visit, &v))
        ;
    for (uint32_t i = 0; i < N; i++) {
        ck_assert_uint_eq(seen[i], 1);
        live[i] = i % 2 == 0;
    }
    ck_assert_uint_eq(ht_count(ht), N / 2);
    ck_assert_int_eq(first_missing(ht, its, live, N), -1);
    ht_destroy(&ht);
    for (uint32_t i = 0; i < N; i++)
        free(its[i]);
}
END_TEST

START_TEST(test_scan_does_nothing_while_growing)
{
    enum { N = 100 };
    struct hashtable *ht;
    ck_assert_int_eq(ht_create(4, 2, &ht), TC_OK);
    struct item *its[N];
    for (uint32_t i = 0; i < N; i++)
        insert(ht, its[i] = mk(i));
    unsigned seen[N];
    memset(seen, 0, sizeof(seen));
    struct visits v = {.seen = seen, .ht = ht};
    ck_assert_int_eq(ht_grow_start(ht), TC_OK);
    ht_grow_step(ht, 3);
    uint64_t cursor = 2;
    ck_assert(!ht_scan(ht, &cursor, 100, visit, &v));
    ck_assert_uint_eq(cursor, 2);
    ck_assert_uint_eq(v.calls, 0);
    while (!ht_grow_step(ht, 4))
        ;
    /* After growth a full pass sees every item once. */
    cursor = 0;
    while (!ht_scan(ht, &cursor, 4, visit, &v))
        ;
    for (uint32_t i = 0; i < N; i++)
        ck_assert_uint_eq(seen[i], 1);
    ht_destroy(&ht);
    for (uint32_t i = 0; i < N; i++)
        free(its[i]);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Readers while another thread grows the table
 * ------------------------------------------------------------------------- */

enum { CN = 4000 };

struct conc {
    struct hashtable *ht;
    struct item **its;
    atomic_bool stop;
    atomic_ulong misses;
    atomic_ulong lookups;
};

static void *reader(void *arg)
{
    struct conc *x = arg;
    uint32_t i = 0;
    while (!atomic_load(&x->stop)) {
        if (find_idx(x->ht, i) != x->its[i])
            atomic_fetch_add(&x->misses, 1);
        atomic_fetch_add(&x->lookups, 1);
        i = (i + 7) % CN;
    }
    return NULL;
}

/* Wait (bounded) until the readers have done a few more lookups. */
static void wait_lookups(struct conc *x)
{
    unsigned long target = atomic_load(&x->lookups) + 3;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&x->lookups) < target) {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &t);
        ck_assert_msg(t.tv_sec - t0.tv_sec < 30, "the reader threads make no progress");
    }
}

START_TEST(test_readers_during_growth)
{
    struct conc x = {0};
    ck_assert_int_eq(ht_create(4, 4, &x.ht), TC_OK);
    x.its = calloc(CN, sizeof(*x.its));
    for (uint32_t i = 0; i < CN; i++)
        insert(x.ht, x.its[i] = mk(i));
    pthread_t th[3];
    for (int t = 0; t < 3; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, reader, &x), 0);
    unsigned grows = 0;
    while (ht_needs_grow(x.ht)) {
        ck_assert_int_eq(ht_grow_start(x.ht), TC_OK);
        grows++;
        do /* let the readers look up between steps, however loaded the machine */
            wait_lookups(&x);
        while (!ht_grow_step(x.ht, 1));
    }
    atomic_store(&x.stop, true);
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    ck_assert_uint_eq(grows, 8); /* 16 buckets to 4096 */
    ck_assert_uint_gt(atomic_load(&x.lookups), 0);
    ck_assert_msg(atomic_load(&x.misses) == 0, "%lu lookups failed during growth",
                  atomic_load(&x.misses));
    ht_destroy(&x.ht);
    for (uint32_t i = 0; i < CN; i++)
        free(x.its[i]);
    free(x.its);
}
END_TEST

static Suite *hashtable_suite(void)
{
    Suite *s = suite_create("hashtable");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_create_bounds);
    tcase_add_test(tc, test_hash_is_stable);
    tcase_add_test(tc, test_insert_find_remove);
    tcase_add_test(tc, test_replace);
    tcase_add_test(tc, test_single_chain);
    tcase_add_test(tc, test_trylock);
    suite_add_tcase(s, tc);

    tc = tcase_create("growth");
    tcase_add_test(tc, test_needs_grow_threshold);
    tcase_add_test(tc, test_grow_every_item_findable_each_step);
    tcase_add_test(tc, test_grow_in_big_steps);
    tcase_add_test(tc, test_readers_during_growth);
    suite_add_tcase(s, tc);

    tc = tcase_create("scan");
    tcase_add_test(tc, test_scan_visits_each_once);
    tcase_add_test(tc, test_scan_visitor_may_remove);
    tcase_add_test(tc, test_scan_does_nothing_while_growing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hashtable_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
