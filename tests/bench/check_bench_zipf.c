/*
 * check_bench_zipf.c: the Zipf generator draws ranks with the frequencies
 * of the Zipf distribution (chi-square against the exact probabilities for
 * small n, head frequencies for a billion keys), and the key space built on
 * it names, parses and covers keys as documented.
 *
 * Seeds are fixed, so every run draws the same numbers: the thresholds
 * below are far from the observed statistics, and the tests cannot flake.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"
#include "zipf.h"

/* An assertion for hot loops: Check's ck_assert_* costs a write(2) even when it passes. */
#define FAST_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* sum_{i=1..n} i^-alpha: exact up to 10^6 terms, then the midpoint integral. */
static double harmonic(uint64_t n, double alpha)
{
    const uint64_t exact = 1000000;
    double h = 0.0;
    uint64_t m = n < exact ? n : exact;
    for (uint64_t i = m; i >= 1; i--)
        h += pow((double)i, -alpha);
    if (n > m) {
        double a = (double)m + 0.5, b = (double)n + 0.5;
        h += fabs(alpha - 1.0) < 1e-12 ? log(b / a)
                                       : (pow(b, 1 - alpha) - pow(a, 1 - alpha)) / (1 - alpha);
    }
    return h;
}

/* Chi-square statistic of `draws` ranks of Zipf(n, alpha) against the exact pmf. */
static double chi_square(uint64_t n, double alpha, uint64_t draws, uint64_t seed)
{
    struct zipf z;
    struct rng r;
    ck_assert_int_eq(zipf_init(&z, n, alpha), TC_OK);
    rng_seed(&r, seed);
    uint64_t *count = calloc(n + 1, sizeof(*count));
    ck_assert_ptr_nonnull(count);
    for (uint64_t i = 0; i < draws; i++) {
        uint64_t k = zipf_sample(&z, &r);
        FAST_ASSERT(k >= 1 && k <= n, "rank %llu out of [1, %llu]", (unsigned long long)k,
                    (unsigned long long)n);
        count[k]++;
    }
    double h = harmonic(n, alpha), chi = 0.0;
    for (uint64_t k = 1; k <= n; k++) {
        double expected = (double)draws * pow((double)k, -alpha) / h;
        double d = (double)count[k] - expected;
        chi += d * d / expected;
    }
    free(count);
    return chi;
}

/*
 * 99 degrees of freedom: the 99.9th percentile of chi-square is 148.2. A
 * generator off by even 1 % in the head lands far above it at 10^6 draws.
 */
START_TEST(test_frequencies_match_pmf)
{
    static const double alphas[] = {0.5, 0.8, 0.99, 1.0, 1.2, 2.0, 3.0};
    for (size_t i = 0; i < sizeof(alphas) / sizeof(alphas[0]); i++) {
        double chi = chi_square(100, alphas[i], 1000000, 42 + i);
        ck_assert_msg(chi < 148.2, "alpha %g: chi-square %.1f over 99 dof", alphas[i], chi);
    }
}
END_TEST

/* A wrong exponent must fail the same test: the check has teeth. */
START_TEST(test_chi_square_detects_wrong_alpha)
{
    struct zipf z;
    struct rng r;
    const uint64_t n = 100, draws = 1000000;
    ck_assert_int_eq(zipf_init(&z, n, 0.95), TC_OK);
    rng_seed(&r, 7);
    uint64_t count[101] = {0};
    for (uint64_t i = 0; i < draws; i++)
        count[zipf_sample(&z, &r)]++;
    double h = harmonic(n, 0.99), chi = 0.0;
    for (uint64_t k = 1; k <= n; k++) {
        double expected = (double)draws * pow((double)k, -0.99) / h;
        chi += ((double)count[k] - expected) * ((double)count[k] - expected) / expected;
    }
    ck_assert_msg(chi > 148.2, "Zipf(0.95) passed for Zipf(0.99): chi-square %.1f", chi);
}
END_TEST

/* A billion keys: O(1) setup, and the head has the probabilities it must. */
START_TEST(test_huge_key_space_head)
{
    const uint64_t n = 1000000000ULL, draws = 1000000;
    struct zipf z;
    struct rng r;
    ck_assert_int_eq(zipf_init(&z, n, 0.99), TC_OK);
    rng_seed(&r, 3);
    uint64_t rank1 = 0, top10 = 0, top1000 = 0, max = 0;
    for (uint64_t i = 0; i < draws; i++) {
        uint64_t k = zipf_sample(&z, &r);
        FAST_ASSERT(k >= 1 && k <= n, "rank %llu out of range", (unsigned long long)k);
        rank1 += k == 1;
        top10 += k <= 10;
        top1000 += k <= 1000;
        if (k > max)
            max = k;
    }
    double h = harmonic(n, 0.99);
    double p1 = 1.0 / h, p10 = harmonic(10, 0.99) / h, p1000 = harmonic(1000, 0.99) / h;
    /* tolerances are > 8 standard deviations of a binomial count */
    ck_assert_double_eq_tol((double)rank1 / draws, p1, 0.0025);
    ck_assert_double_eq_tol((double)top10 / draws, p10, 0.004);
    ck_assert_double_eq_tol((double)top1000 / draws, p1000, 0.004);
    ck_assert_uint_gt(max, n / 1000); /* the tail is reached, too */
}
END_TEST

START_TEST(test_edges)
{
    struct zipf z;
    struct rng r;
    rng_seed(&r, 1);
    ck_assert_int_eq(zipf_init(&z, 0, 0.99), TC_INVALID);
    ck_assert_int_eq(zipf_init(&z, 10, 0.0), TC_INVALID);
    ck_assert_int_eq(zipf_init(&z, 10, -1.0), TC_INVALID);
    ck_assert_int_eq(zipf_init(&z, 1, 0.99), TC_OK);
    for (int i = 0; i < 1000; i++)
        FAST_ASSERT(zipf_sample(&z, &r) == 1, "n = 1 gave another rank");
    ck_assert_int_eq(zipf_init(&z, 2, 50.0), TC_OK); /* extreme skew: almost always rank 1 */
    for (int i = 0; i < 1000; i++)
        FAST_ASSERT(zipf_sample(&z, &r) <= 2, "rank above n = 2");
}
END_TEST

/* Zipf ranks map to distinct ids: each id's frequency is one rank's. */
START_TEST(test_keyspace_zipf_is_a_permutation)
{
    struct keyspace ks;
    struct rng r;
    const uint64_t n = 1000;
    ck_assert_int_eq(keyspace_init(&ks, n, KEYSPACE_ZIPF, 1.2, "k:"), TC_OK);
    rng_seed(&r, 5);
    uint64_t *count = calloc(n, sizeof(*count));
    for (int i = 0; i < 2000000; i++) {
        uint64_t id = keyspace_next(&ks, &r);
        FAST_ASSERT(id < n, "id %llu out of range", (unsigned long long)id);
        count[id]++;
    }
    /* sorted counts must follow the Zipf shape: the hottest id has rank 1's share */
    uint64_t hottest = 0;
    for (uint64_t i = 0; i < n; i++)
        hottest = count[i] > hottest ? count[i] : hottest;
    double p1 = 1.0 / harmonic(n, 1.2);
    ck_assert_double_eq_tol((double)hottest / 2000000.0, p1, 0.003);
    free(count);
}
END_TEST

START_TEST(test_keyspace_names_and_sequence)
{
    struct keyspace ks;
    struct rng r;
    char key[KEYSPACE_MAX_KEY];
    uint64_t id;
    rng_seed(&r, 1);
    ck_assert_int_eq(keyspace_init(&ks, 50, KEYSPACE_SEQUENTIAL, 0, "tcb:"), TC_OK);
    for (uint64_t i = 0; i < 120; i++)
        FAST_ASSERT(keyspace_next(&ks, &r) == i % 50, "sequential key %llu", (unsigned long long)i);
    size_t len = keyspace_format(&ks, 42, key);
    ck_assert_int_eq((int)len, 6);
    ck_assert(memcmp(key, "tcb:42", 6) == 0);
    ck_assert(keyspace_parse(&ks, key, len, &id));
    ck_assert_uint_eq(id, 42);
    ck_assert(!keyspace_parse(&ks, "tcb:50", 6, &id)); /* outside the space */
    ck_assert(!keyspace_parse(&ks, "tcx:42", 6, &id));
    ck_assert(!keyspace_parse(&ks, "tcb:4a", 6, &id));
    ck_assert(!keyspace_parse(&ks, "tcb:", 4, &id));
    ck_assert_int_eq(keyspace_init(&ks, 10, KEYSPACE_UNIFORM, 0, "bad prefix"), TC_INVALID);
    ck_assert_int_eq(keyspace_init(&ks, 0, KEYSPACE_UNIFORM, 0, "p"), TC_INVALID);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_zipf");
    TCase *tc = tcase_create("zipf");
    tcase_add_test(tc, test_frequencies_match_pmf);
    tcase_add_test(tc, test_chi_square_detects_wrong_alpha);
    tcase_add_test(tc, test_huge_key_space_head);
    tcase_add_test(tc, test_edges);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("keyspace");
    tcase_add_test(tk, test_keyspace_zipf_is_a_permutation);
    tcase_add_test(tk, test_keyspace_names_and_sequence);
    suite_add_tcase(s, tk);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
