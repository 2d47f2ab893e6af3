/*
 * check_bench_verify.c: verifiable values. What verify_fill() writes,
 * verify_check() accepts; one flipped bit anywhere, a truncated or
 * extended value, another key's value or another version's is rejected.
 * Also the value-size distributions the bench draws lengths from.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sizedist.h"
#include "verify.h"

/* An assertion for hot loops: Check's ck_assert_* costs a write(2) even when it passes. */
#define FAST_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static struct verify_pool *pool;

static void setup(void)
{
    ck_assert_int_eq(verify_create(&pool), TC_OK);
}

static void teardown(void)
{
    verify_destroy(&pool);
    ck_assert_ptr_null(pool);
}

static char *make(const char *key, uint32_t version, size_t len)
{
    char *v = malloc(len + 1);
    ck_assert_ptr_nonnull(v);
    verify_fill(pool, key, strlen(key), version, v, len);
    return v;
}

static bool check(const char *key, uint32_t version, const char *v, size_t len)
{
    return verify_check(pool, key, strlen(key), version, v, len);
}

START_TEST(test_round_trip)
{
    static const size_t lens[] = {1,       2, 7, 8, 9, 100, 4096, (1u << 20) - 3, (1u << 20) + 17,
                                  3u << 20};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *v = make("tcb:12345", 77, lens[i]);
        ck_assert_msg(check("tcb:12345", 77, v, lens[i]), "length %zu", lens[i]);
        for (size_t j = 0; j < lens[i]; j++) { /* printable, so "\r\n" never appears */
            char ch = v[j];
            FAST_ASSERT((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') ||
                            (ch >= 'a' && ch <= 'z'),
                        "byte %zu of a %zu-byte value is 0x%02x", j, lens[i], (unsigned char)ch);
        }
        free(v);
    }
}
END_TEST

/* The bug this exists to catch: one wrong byte must not count as a hit. */
START_TEST(test_every_flipped_bit_is_detected)
{
    const size_t len = 300;
    char *v = make("tcb:1", 5, len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            v[i] ^= (char)(1 << bit);
            FAST_ASSERT(!check("tcb:1", 5, v, len), "flip of bit %d of byte %zu passed", bit, i);
            v[i] ^= (char)(1 << bit);
        }
    }
    ck_assert(check("tcb:1", 5, v, len));
    free(v);
}
END_TEST

START_TEST(test_flips_in_large_values)
{
    const size_t len = (2u << 20) + 1000; /* wraps the 1 MiB pool twice */
    char *v = make("tcb:big", 1, len);
    static const size_t at[] = {
        0, 7, 8, 1u << 19, (1u << 20) - 1, 1u << 20, (1u << 20) + 1, (2u << 20) + 999};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        v[at[i]] ^= 0x20;
        ck_assert_msg(!check("tcb:big", 1, v, len), "flip at %zu passed", at[i]);
        v[at[i]] ^= 0x20;
    }
    ck_assert(check("tcb:big", 1, v, len));
    free(v);
}
END_TEST

START_TEST(test_wrong_key_version_length)
{
    char *v = make("tcb:10", 9, 100);
    ck_assert(!check("tcb:11", 9, v, 100));  /* another key's value */
    ck_assert(!check("tcb:1", 9, v, 100));   /* a key that is a prefix */
    ck_assert(!check("tcb:10", 10, v, 100)); /* flags mangled */
    ck_assert(!check("tcb:10", 9, v, 99));   /* truncated */
    free(v);
    v = make("tcb:10", 9, 101);
    ck_assert(!check("tcb:10", 9, v, 101 - 1));
    free(v);
    char *a = make("tcb:10", 9, 100), *b = make("tcb:10", 9, 101);
    ck_assert(!check("tcb:10", 9, b, 100)); /* a longer value cut to the expected length */
    ck_assert(memcmp(a, b, 100) != 0);
    free(a);
    free(b);
    /* short values carry the key too */
    char *s = make("tcb:3", 1, 8);
    ck_assert(!check("tcb:4", 1, s, 8));
    free(s);
}
END_TEST

/* Another process (another pool) accepts the same bytes: runs can verify each other's data. */
START_TEST(test_pools_agree)
{
    struct verify_pool *other = NULL;
    ck_assert_int_eq(verify_create(&other), TC_OK);
    char *v = make("k", 123456, 5000);
    ck_assert(verify_check(other, "k", 1, 123456, v, 5000));
    verify_destroy(&other);
    verify_destroy(&other); /* NULL is accepted */
    free(v);
}
END_TEST

START_TEST(test_sizedist_specs)
{
    struct sizedist d;
    struct rng r;
    char err[256];
    rng_seed(&r, 1);
    ck_assert_int_eq(sizedist_parse(&d, "100", 1 << 20, err, sizeof(err)), TC_OK);
    for (int i = 0; i < 1000; i++)
        FAST_ASSERT(sizedist_sample(&d, &r) == 100, "a fixed size varied");

    ck_assert_int_eq(sizedist_parse(&d, "64-4k", 1 << 20, err, sizeof(err)), TC_OK);
    ck_assert_uint_eq(d.min, 64);
    ck_assert_uint_eq(d.max, 4096);
    bool saw_lo = false, saw_hi = false;
    for (int i = 0; i < 200000; i++) {
        uint32_t s = sizedist_sample(&d, &r);
        FAST_ASSERT(s >= 64 && s <= 4096, "size %u outside 64-4096", s);
        saw_lo |= s == 64;
        saw_hi |= s == 4096;
    }
    ck_assert(saw_lo && saw_hi);

    ck_assert_int_eq(sizedist_parse(&d, "100:70,1k:25,10k-20k:5", 1 << 20, err, sizeof(err)),
                     TC_OK);
    int n100 = 0, n1k = 0, nbig = 0, total = 1000000;
    for (int i = 0; i < total; i++) {
        uint32_t s = sizedist_sample(&d, &r);
        n100 += s == 100;
        n1k += s == 1024;
        nbig += s >= 10240 && s <= 20480;
    }
    ck_assert_int_eq(n100 + n1k + nbig, total);
    ck_assert_double_eq_tol((double)n100 / total, 0.70, 0.005);
    ck_assert_double_eq_tol((double)n1k / total, 0.25, 0.005);
    ck_assert_double_eq_tol(d.mean, 0.70 * 100 + 0.25 * 1024 + 0.05 * 15360, 1e-6);

    static const char *const bad[] = {"",       "0",  "x",    "10-5", "100:", "100:0",
                                      "100:-1", "2m", "1,,2", "5-",   "-5",   "100:1:2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(sizedist_parse(&d, bad[i], 1 << 20, err, sizeof(err)) == TC_INVALID,
                      "'%s' was accepted", bad[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_verify");
    TCase *tc = tcase_create("verify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_every_flipped_bit_is_detected);
    tcase_add_test(tc, test_flips_in_large_values);
    tcase_add_test(tc, test_wrong_key_version_length);
    tcase_add_test(tc, test_pools_agree);
    tcase_add_test(tc, test_sizedist_specs);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
