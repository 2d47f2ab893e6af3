/*
 * check_bench_histogram.c: the log-linear latency histogram. Buckets tile
 * the value range without gaps, each narrower than 2^-HIST_SUB_BITS of its
 * values, and every percentile it reports lies within that error of the
 * exact percentile of the recorded values (computed here by sorting).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "hist.h"
#include "rng.h"

/* An assertion for hot loops: Check's ck_assert_* costs a write(2) even when it passes. */
#define FAST_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static struct hist *new_hist(void)
{
    struct hist *h = malloc(sizeof(*h));
    ck_assert_ptr_nonnull(h);
    hist_init(h);
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact percentile as hist_percentile defines it: the value of rank ceil(p% * n). */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
    double want = p / 100.0 * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

/* Record values, then compare every interesting percentile with the exact one. */
static void check_percentiles(uint64_t *values, size_t n)
{
    struct hist *h = new_hist();
    for (size_t i = 0; i < n; i++)
        hist_record(h, values[i]);
    qsort(values, n, sizeof(*values), cmp_u64);
    static const double ps[] = {1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        uint64_t exact = exact_percentile(values, n, ps[i]);
        uint64_t got = hist_percentile(h, ps[i]);
        ck_assert_msg(got >= exact, "p%g: %llu below the exact %llu", ps[i],
                      (unsigned long long)got, (unsigned long long)exact);
        ck_assert_msg((double)(got - exact) <= (double)exact / (1 << HIST_SUB_BITS),
                      "p%g: %llu is more than 1/%d above the exact %llu", ps[i],
                      (unsigned long long)got, 1 << HIST_SUB_BITS, (unsigned long long)exact);
    }
    ck_assert_uint_eq(hist_percentile(h, 0), values[0]);
    ck_assert_uint_eq(hist_percentile(h, 100), values[n - 1]);
    ck_assert_uint_eq(h->min, values[0]);
    ck_assert_uint_eq(h->max, values[n - 1]);
    ck_assert_uint_eq(h->count, n);
    free(h);
}

START_TEST(test_buckets_tile_the_range)
{
    uint64_t prev_hi = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        uint64_t lo, hi;
        hist_bucket_range(i, &lo, &hi);
        FAST_ASSERT(i == 0 || lo == prev_hi + 1, "bucket %u: gap or overlap", i);
        FAST_ASSERT(hi >= lo, "bucket %u: empty", i);
        FAST_ASSERT(hist_index(lo) == i && hist_index(hi) == i, "bucket %u: bounds map elsewhere",
                    i);
        FAST_ASSERT((double)(hi - lo + 1) <= 1.0 + (double)lo / (1 << HIST_SUB_BITS),
                    "bucket %u: wider than 1/%d of its values", i, 1 << HIST_SUB_BITS);
        prev_hi = hi;
    }
    ck_assert_uint_eq(prev_hi, HIST_MAX_VALUE);
    ck_assert_uint_eq(hist_index(UINT64_MAX), HIST_BUCKETS - 1); /* clamped */
}
END_TEST

START_TEST(test_small_values_are_exact)
{
    struct hist *h = new_hist();
    for (uint64_t v = 0; v < 256; v++)
        hist_record(h, v);
    for (int p = 1; p <= 100; p++) {
        uint64_t rank = (uint64_t)ceil(p / 100.0 * 256);
        ck_assert_uint_eq(hist_percentile(h, p), rank - 1);
    }
    free(h);
}
END_TEST

START_TEST(test_uniform_percentiles)
{
    size_t n = 1000000;
    uint64_t *v = malloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = i + 1;
    check_percentiles(v, n);
    free(v);
}
END_TEST

/* Latency-like data: log-normal around 50 us with a heavy tail to seconds. */
START_TEST(test_lognormal_percentiles)
{
    size_t n = 500000;
    uint64_t *v = malloc(n * sizeof(*v));
    struct rng r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < n; i++) {
        double u1 = rng_double(&r) + 1e-12, u2 = rng_double(&r);
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        v[i] = (uint64_t)(50000.0 * exp(1.2 * z)) + (i % 1000 == 0 ? 2000000000ULL : 0);
    }
    check_percentiles(v, n);
    free(v);
}
END_TEST

START_TEST(test_merge_and_mean)
{
    struct hist *a = new_hist(), *b = new_hist(), *all = new_hist();
    struct rng r;
    rng_seed(&r, 2);
    for (int i = 0; i < 100000; i++) {
        uint64_t x = rng_below(&r, 10000000);
        hist_record(i % 3 ? a : b, x);
        hist_record(all, x);
    }
    hist_merge(a, b);
    ck_assert_uint_eq(a->count, all->count);
    ck_assert_uint_eq(a->min, all->min);
    ck_assert_uint_eq(a->max, all->max);
    ck_assert_uint_eq(a->sum, all->sum);
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        FAST_ASSERT(a->counts[i] == all->counts[i], "bucket %u differs after merge", i);
    ck_assert_double_eq_tol(hist_mean(all), (double)all->sum / 100000.0, 1e-6);
    free(a);
    free(b);
    free(all);
}
END_TEST

START_TEST(test_empty_and_clamped)
{
    struct hist *h = new_hist();
    ck_assert_uint_eq(hist_percentile(h, 50), 0);
    ck_assert_double_eq(hist_mean(h), 0.0);
    hist_record(h, HIST_MAX_VALUE * 4);
    ck_assert_uint_eq(h->max, HIST_MAX_VALUE * 4); /* max stays exact */
    ck_assert_uint_eq(hist_percentile(h, 50), HIST_MAX_VALUE * 4);
    free(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_histogram");
    TCase *tc = tcase_create("histogram");
    tcase_add_test(tc, test_buckets_tile_the_range);
    tcase_add_test(tc, test_small_values_are_exact);
    tcase_add_test(tc, test_uniform_percentiles);
    tcase_add_test(tc, test_lognormal_percentiles);
    tcase_add_test(tc, test_merge_and_mean);
    tcase_add_test(tc, test_empty_and_clamped);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
