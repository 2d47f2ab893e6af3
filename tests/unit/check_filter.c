/*
 * check_filter.c: unit tests for the flash tier's membership filter
 * (storage/filter.h, a cuckoo filter with seqlock readers).
 *
 * What matters: no false negatives, ever (a key on flash that the filter
 * forgets is unreachable); a false-positive rate low enough to keep misses
 * off the disk; exact removal of duplicates; a full filter that still
 * answers for everything it took; and lock-free readers that never see a
 * hash disappear while the writer moves fingerprints around.
 *
 * Hashes come from a fixed-seed splitmix64 so every run is the same.
 */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "filter.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static struct filter *make(uint64_t capacity)
{
    struct filter *f = NULL;
    ck_assert_int_eq(filter_create(capacity, &f), TC_OK);
    ck_assert_ptr_nonnull(f);
    return f;
}

/* n distinct random hashes (distinct so that counting is exact). */
static uint64_t *random_set(uint64_t seed, size_t n)
{
    uint64_t *v = malloc(n * sizeof(*v));
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        v[i] = splitmix64(&seed); /* splitmix64 is a bijection of its counter: no repeats */
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------------
 * Basics
 * ------------------------------------------------------------------------- */

START_TEST(test_create_destroy)
{
    struct filter *f = make(1000);
    ck_assert_uint_eq(filter_count(f), 0);
    ck_assert_uint_ge(filter_capacity(f), 1000);
    ck_assert(!filter_full(f));
    ck_assert_uint_gt(filter_bytes(f), 0);
    /* An empty filter answers "no" for everything. */
    uint64_t seed = 7;
    for (int i = 0; i < 10000; i++)
        ck_assert(!filter_maybe(f, splitmix64(&seed)));
    filter_destroy(&f);
    ck_assert_ptr_null(f);
    filter_destroy(&f); /* accepts NULL */
    filter_destroy(NULL);
}
END_TEST

START_TEST(test_bytes_per_key)
{
    /* The header promises 1.8 to 2.0 bytes per key at the usual load. */
    struct filter *f = make(1000000);
    double per_key = (double)filter_bytes(f) / (double)filter_capacity(f);
    ck_assert_msg(per_key <= 2.0, "%.3f bytes per key at capacity", per_key);
    filter_destroy(&f);
}
END_TEST

START_TEST(test_no_false_negatives_up_to_capacity)
{
    static const uint64_t caps[] = {10, 1000, 65536, 100000};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        struct filter *f = make(caps[c]);
        size_t n = (size_t)filter_capacity(f);
        ck_assert_uint_ge(n, caps[c]);
        uint64_t *v = random_set(1000 + c, n);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(filter_insert(f, v[i]), "capacity %llu: insert %zu of %zu failed",
                          (unsigned long long)caps[c], i, n);
            /* Everything so far is still there after each insert's kicks
             * (checked exhaustively on the small filters only). */
            if (n <= 200) {
                for (size_t j = 0; j <= i; j++)
                    ck_assert_msg(filter_maybe(f, v[j]), "capacity %llu: hash %zu lost",
                                  (unsigned long long)caps[c], j);
            }
        }
        ck_assert_uint_eq(filter_count(f), n);
        ck_assert(!filter_full(f));
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(filter_maybe(f, v[i]), "capacity %llu: false negative for hash %zu",
                          (unsigned long long)caps[c], i);
        free(v);
        filter_destroy(&f);
    }
}
END_TEST

START_TEST(test_false_positive_rate_at_max_load)
{
    struct filter *f = make(100000);
    size_t n = (size_t)filter_capacity(f);
    uint64_t *v = random_set(42, n);
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_insert(f, v[i]));
    /* A different seed: these are absent (a 64-bit collision with the set
     * is possible in theory, not with these seeds). */
    uint64_t seed = 0xABCDEF;
    size_t probes = 1000000, fp = 0;
    for (size_t i = 0; i < probes; i++)
        fp += filter_maybe(f, splitmix64(&seed));
    double rate = (double)fp / (double)probes;
    ck_assert_msg(rate < 0.01, "false-positive rate %.4f%% at max load", rate * 100);
    /* Sanity: an honest 12-bit filter at 90% load does have some. */
    ck_assert_msg(fp > 0, "no false positive in 1M probes: the probe set is not what it seems");
    free(v);
    filter_destroy(&f);
}
END_TEST

START_TEST(test_remove_makes_absent)
{
    struct filter *f = make(10000);
    size_t n = 5000;
    uint64_t *v = random_set(3, n);
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_insert(f, v[i]));
    /* Remove every other one. */
    for (size_t i = 0; i < n; i += 2)
        ck_assert_msg(filter_remove(f, v[i]), "remove %zu failed", i);
    ck_assert_uint_eq(filter_count(f), n / 2);
    size_t still = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 1)
            ck_assert_msg(filter_maybe(f, v[i]), "kept hash %zu lost by removals", i);
        else
            still += filter_maybe(f, v[i]);
    }
    /* Removed ones may still answer "maybe" only as false positives. */
    ck_assert_msg(still < n / 2 / 50, "%zu of %zu removed hashes still present", still, n / 2);
    free(v);
    filter_destroy(&f);
}
END_TEST

START_TEST(test_duplicates)
{
    struct filter *f = make(1000);
    uint64_t h = 0x123456789ABCDEF0ULL;
    ck_assert(filter_insert(f, h));
    ck_assert(filter_insert(f, h));
    ck_assert_uint_eq(filter_count(f), 2);
    ck_assert(filter_maybe(f, h));
    ck_assert(filter_remove(f, h));
    ck_assert_msg(filter_maybe(f, h), "one copy removed, the other one must remain");
    ck_assert_uint_eq(filter_count(f), 1);
    ck_assert(filter_remove(f, h));
    ck_assert(!filter_maybe(f, h));
    ck_assert_uint_eq(filter_count(f), 0);
    ck_assert(!filter_remove(f, h));

    /* Many copies of one hash (two buckets of five slots hold ten). */
    for (int i = 0; i < 10; i++)
        ck_assert_msg(filter_insert(f, h), "copy %d", i);
    for (int i = 0; i < 10; i++) {
        ck_assert_msg(filter_maybe(f, h), "after %d removals", i);
        ck_assert(filter_remove(f, h));
    }
    ck_assert(!filter_maybe(f, h));
    ck_assert_uint_eq(filter_count(f), 0);

    /* Two hashes with the same fingerprint and buckets (differing only in
     * bits the filter ignores) behave as duplicates of each other. */
    uint64_t a = 0x0000000100000005ULL, b = 0x0000000200000005ULL;
    ck_assert(filter_insert(f, a));
    ck_assert(filter_insert(f, b));
    ck_assert(filter_remove(f, a));
    ck_assert(filter_maybe(f, b));
    ck_assert(filter_remove(f, b));
    ck_assert(!filter_maybe(f, a) && !filter_maybe(f, b));
    filter_destroy(&f);
}
END_TEST

START_TEST(test_remove_absent)
{
    struct filter *f = make(1000);
    ck_assert(!filter_remove(f, 12345));
    ck_assert_uint_eq(filter_count(f), 0);

    size_t n = 500;
    uint64_t *v = random_set(11, n);
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_insert(f, v[i]));
    /* Absent hashes the filter answers "no" for: removing one changes nothing. */
    uint64_t seed = 99;
    int tried = 0;
    while (tried < 1000) {
        uint64_t h = splitmix64(&seed);
        if (filter_maybe(f, h))
            continue;
        tried++;
        ck_assert(!filter_remove(f, h));
    }
    ck_assert_uint_eq(filter_count(f), n);
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_maybe(f, v[i]));
    free(v);
    filter_destroy(&f);
}
END_TEST

START_TEST(test_full)
{
    /* A tiny filter (a few buckets) fills up quickly. */
    struct filter *f = make(10);
    uint64_t seed = 5;
    uint64_t v[256];
    size_t n = 0;
    bool ok = true;
    while (ok && n < 256) {
        v[n] = splitmix64(&seed);
        ok = filter_insert(f, v[n]);
        n++;
    }
    ck_assert_msg(!ok, "a 10-key filter took 256 hashes");
    ck_assert(filter_full(f));
    ck_assert_uint_gt(n, 10); /* it did take its capacity first */
    /* The failed insert is still answered "maybe" (kept in the overflow),
     * and so is everything before it. */
    ck_assert_uint_eq(filter_count(f), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(filter_maybe(f, v[i]), "hash %zu of %zu lost when the filter filled", i, n);

    /* Full: further inserts are refused and do not disturb anything. */
    uint64_t extra = splitmix64(&seed);
    ck_assert(!filter_insert(f, extra));
    ck_assert_uint_eq(filter_count(f), n);
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_maybe(f, v[i]));

    /* Removing everything that was taken empties it, overflow included. */
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(filter_remove(f, v[i]), "remove %zu of %zu", i, n);
        for (size_t j = i + 1; j < n; j++)
            ck_assert_msg(filter_maybe(f, v[j]), "hash %zu lost after removing %zu", j, i);
    }
    ck_assert_uint_eq(filter_count(f), 0);
    ck_assert_msg(!filter_full(f), "empty but still full");
    for (size_t i = 0; i < n; i++)
        ck_assert(!filter_maybe(f, v[i]));
    /* And it takes hashes again. */
    ck_assert(filter_insert(f, extra));
    ck_assert(filter_maybe(f, extra));
    filter_destroy(&f);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Concurrent readers
 * ------------------------------------------------------------------------- */

#define FIXED_N   20000
#define READERS   2
#define RUN_SECS  0.8
#define CHURN_MAX 16384

struct conc {
    struct filter *f;
    uint64_t fixed[FIXED_N];
    _Atomic bool stop;
    _Atomic uint64_t lookups, false_neg, writer_ops, insert_failures;
    _Atomic uint64_t first_missing;
};

static void *conc_reader(void *arg)
{
    struct conc *x = arg;
    uint64_t n = 0, bad = 0;
    while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
        for (size_t i = 0; i < FIXED_N; i++) {
            if (!filter_maybe(x->f, x->fixed[i])) {
                if (bad++ == 0)
                    atomic_store(&x->first_missing, x->fixed[i]);
            }
        }
        n += FIXED_N;
    }
    atomic_fetch_add(&x->lookups, n);
    atomic_fetch_add(&x->false_neg, bad);
    return NULL;
}

/* Churn: keep between 50% and ~95% of capacity in random extra hashes,
 * inserting and removing, so fingerprints of the fixed set keep moving. */
static void *conc_writer(void *arg)
{
    struct conc *x = arg;
    uint64_t *churn = malloc(CHURN_MAX * sizeof(*churn));
    size_t head = 0, n = 0;
    uint64_t seed = 0xC0FFEE, ops = 0, fails = 0;
    uint64_t cap = filter_capacity(x->f);
    uint64_t hi = cap * 95 / 100 - FIXED_N, lo = cap * 60 / 100 - FIXED_N;
    if (hi > CHURN_MAX)
        hi = CHURN_MAX;
    bool growing = true;
    double until = now_s() + RUN_SECS;
    while (ops % 1024 != 0 || now_s() < until) {
        if (growing && !filter_full(x->f)) {
            uint64_t h = splitmix64(&seed);
            if (!filter_insert(x->f, h))
                fails++; /* kept in the overflow: still counted, still removable */
            churn[(head + n) % CHURN_MAX] = h;
            n++;
            if (n >= hi)
                growing = false;
        } else if (n > 0) {
            ck_assert(filter_remove(x->f, churn[head]));
            head = (head + 1) % CHURN_MAX;
            n--;
            if (n <= lo)
                growing = true;
        } else {
            break; /* full with an overflow from the fixed set: nothing left to churn */
        }
        ops++;
    }
    atomic_store(&x->stop, true);
    atomic_store(&x->writer_ops, ops);
    atomic_store(&x->insert_failures, fails);
    free(churn);
    return NULL;
}

START_TEST(test_concurrent_readers_no_false_negatives)
{
    struct conc *x = calloc(1, sizeof(*x));
    ck_assert_ptr_nonnull(x);
    /* Sized so that the fixed set plus the churn reach ~95% of capacity. */
    x->f = make(FIXED_N + CHURN_MAX + 2000);
    uint64_t seed = 77;
    for (size_t i = 0; i < FIXED_N; i++) {
        x->fixed[i] = splitmix64(&seed);
        ck_assert(filter_insert(x->f, x->fixed[i]));
    }
    pthread_t rt[READERS], wt;
    for (int i = 0; i < READERS; i++)
        ck_assert_int_eq(pthread_create(&rt[i], NULL, conc_reader, x), 0);
    ck_assert_int_eq(pthread_create(&wt, NULL, conc_writer, x), 0);
    pthread_join(wt, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);

    ck_assert_msg(atomic_load(&x->false_neg) == 0,
                  "%llu false negatives in %llu concurrent lookups (first: %016llx)",
                  (unsigned long long)atomic_load(&x->false_neg),
                  (unsigned long long)atomic_load(&x->lookups),
                  (unsigned long long)atomic_load(&x->first_missing));
    /* The test did exercise something. */
    ck_assert_uint_gt(atomic_load(&x->writer_ops), 10000);
    ck_assert_uint_gt(atomic_load(&x->lookups), FIXED_N);
    /* After the churn the fixed set is intact for a single-threaded reader too. */
    for (size_t i = 0; i < FIXED_N; i++)
        ck_assert(filter_maybe(x->f, x->fixed[i]));
    filter_destroy(&x->f);
    free(x);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------- */

/* The run's root, made and removed by main() in the parent (so the files of
 * a failed test go too), and this test's directory under it. */
static char ROOT[64];
static char SNAPDIR[96];

static void snap_setup(void)
{
    snprintf(SNAPDIR, sizeof(SNAPDIR), "%s/s.XXXXXX", ROOT);
    ck_assert_ptr_nonnull(mkdtemp(SNAPDIR));
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void snap_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/f.snap", SNAPDIR);
}

START_TEST(test_snapshot_round_trip)
{
    struct filter *f = make(50000);
    size_t n = 40000;
    uint64_t *v = random_set(21, n);
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_insert(f, v[i]));
    for (size_t i = 0; i < n; i += 3)
        ck_assert(filter_remove(f, v[i]));
    char path[160];
    snap_path(path, sizeof(path));
    ck_assert_int_eq(filter_save(f, path, 0xFEEDull), TC_OK);

    struct filter *g = NULL;
    ck_assert_int_eq(filter_load(path, 0xFEEDull, &g), TC_OK);
    ck_assert_uint_eq(filter_count(g), filter_count(f));
    ck_assert_uint_eq(filter_capacity(g), filter_capacity(f));
    ck_assert_uint_eq(filter_bytes(g), filter_bytes(f));
    ck_assert_int_eq(filter_full(g), filter_full(f));
    /* The same answers, for members and for 200,000 others. */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(filter_maybe(g, v[i]), filter_maybe(f, v[i]));
        if (i % 3 != 0)
            ck_assert(filter_maybe(g, v[i]));
    }
    uint64_t seed = 555;
    for (int i = 0; i < 200000; i++) {
        uint64_t h = splitmix64(&seed);
        ck_assert(filter_maybe(g, h) == filter_maybe(f, h));
    }
    /* And it goes on working: inserts, removals. */
    for (size_t i = 0; i < n; i += 3)
        ck_assert(filter_insert(g, v[i]));
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_maybe(g, v[i]));
    for (size_t i = 1; i < n; i += 3)
        ck_assert(filter_remove(g, v[i]));
    size_t removed = 0;
    for (size_t i = 1; i < n; i += 3)
        removed++;
    ck_assert_uint_eq(filter_count(g), n - removed);
    filter_destroy(&g);
    filter_destroy(&f);
    free(v);
}
END_TEST

START_TEST(test_snapshot_full_filter)
{
    /* A full filter (its overflow entry in use) comes back full, overflow included. */
    struct filter *f = make(10);
    uint64_t seed = 5, v[256];
    size_t n = 0;
    while (n < 256) {
        v[n] = splitmix64(&seed);
        if (!filter_insert(f, v[n++]))
            break;
    }
    ck_assert(filter_full(f));
    char path[160];
    snap_path(path, sizeof(path));
    ck_assert_int_eq(filter_save(f, path, 1), TC_OK);
    struct filter *g = NULL;
    ck_assert_int_eq(filter_load(path, 1, &g), TC_OK);
    ck_assert(filter_full(g));
    ck_assert_uint_eq(filter_count(g), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(filter_maybe(g, v[i]), "hash %zu of %zu lost by the snapshot", i, n);
    for (size_t i = 0; i < n; i++)
        ck_assert(filter_remove(g, v[i]));
    ck_assert(!filter_full(g));
    ck_assert_uint_eq(filter_count(g), 0);
    filter_destroy(&g);
    filter_destroy(&f);
}
END_TEST

START_TEST(test_snapshot_rejected)
{
    struct filter *f = make(1000), *g = NULL;
    uint64_t seed = 8;
    for (int i = 0; i < 500; i++)
        ck_assert(filter_insert(f, splitmix64(&seed)));
    char path[160];
    snap_path(path, sizeof(path));

    /* No file. */
    ck_assert_int_eq(filter_load(path, 7, &g), TC_NOT_FOUND);
    ck_assert_int_eq(filter_save(f, path, 7), TC_OK);
    /* Another tag: it describes other data. */
    ck_assert_int_eq(filter_load(path, 8, &g), TC_NOT_FOUND);
    ck_assert_ptr_null(g);

    /* Any flipped byte (header or buckets), a short or a long file. */
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    /* Covered: magic (0), version (4), tag (8), bucket count (16, by the file
     * size), checksum (40), buckets (48 on). Not covered, so not tried: the
     * hash count (24) and the overflow entry (32). */
    long offsets[] = {0, 4, 8, 16, 40, 48, size / 2, size - 1};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        long off = offsets[i];
        data[off] ^= 0x01;
        fp = fopen(path, "wb");
        fwrite(data, 1, (size_t)size, fp);
        fclose(fp);
        tc_status_e st = filter_load(path, 7, &g);
        /* Byte 8..15 is the tag: a flip there reads as another tag. */
        ck_assert_msg(st == TC_INVALID || (off >= 8 && off < 16 && st == TC_NOT_FOUND),
                      "a flipped byte %ld of %ld: %s", off, size, tc_strerror(st));
        data[off] ^= 0x01;
    }
    for (long cut = 0; cut < size; cut += size / 7 + 1) {
        fp = fopen(path, "wb");
        fwrite(data, 1, (size_t)cut, fp);
        fclose(fp);
        ck_assert_int_ne(filter_load(path, 7, &g), TC_OK);
    }
    data[size] = 0;
    fp = fopen(path, "wb");
    fwrite(data, 1, (size_t)size + 1, fp);
    fclose(fp);
    ck_assert_int_eq(filter_load(path, 7, &g), TC_INVALID);
    /* Put back intact: it loads. */
    fp = fopen(path, "wb");
    fwrite(data, 1, (size_t)size, fp);
    fclose(fp);
    ck_assert_int_eq(filter_load(path, 7, &g), TC_OK);
    filter_destroy(&g);
    free(data);
    filter_destroy(&f);
}
END_TEST

START_TEST(test_snapshot_replaces_atomically)
{
    struct filter *a = make(1000), *b = make(1000), *g = NULL;
    const uint64_t ha = 0x9E3779B97F4A7C15ULL, hb = 0x1234567890ABCDEFULL;
    ck_assert(filter_insert(a, ha));
    ck_assert(filter_insert(b, hb));
    char path[160], tmp[192];
    snap_path(path, sizeof(path));
    ck_assert_int_eq(filter_save(a, path, 1), TC_OK);
    ck_assert_int_eq(filter_save(b, path, 2), TC_OK);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* no temporary left behind */
    ck_assert_int_eq(filter_load(path, 1, &g), TC_NOT_FOUND);
    ck_assert_int_eq(filter_load(path, 2, &g), TC_OK);
    ck_assert(filter_maybe(g, hb));
    ck_assert(!filter_maybe(g, ha));
    filter_destroy(&g);
    /* A directory that does not exist: an error, not a crash. */
    ck_assert_int_eq(filter_save(a, "/nonexistent-dir/x/f.snap", 1), TC_IO_ERROR);
    filter_destroy(&a);
    filter_destroy(&b);
}
END_TEST

static Suite *filter_suite(void)
{
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, test_create_destroy);
    tcase_add_test(tc, test_bytes_per_key);
    tcase_add_test(tc, test_no_false_negatives_up_to_capacity);
    tcase_add_test(tc, test_false_positive_rate_at_max_load);
    tcase_add_test(tc, test_remove_makes_absent);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_remove_absent);
    tcase_add_test(tc, test_full);
    suite_add_tcase(s, tc);

    tc = tcase_create("snapshot");
    tcase_add_checked_fixture(tc, snap_setup, NULL);
    tcase_add_test(tc, test_snapshot_round_trip);
    tcase_add_test(tc, test_snapshot_full_filter);
    tcase_add_test(tc, test_snapshot_rejected);
    tcase_add_test(tc, test_snapshot_replaces_atomically);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_test(tc, test_concurrent_readers_no_false_negatives);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(ROOT, sizeof(ROOT), "/tmp/check_filter.XXXXXX");
    if (mkdtemp(ROOT) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(filter_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(ROOT, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
