/*
 * check_tier.c: unit tests for the tier policy (storage/tier.h): which
 * items may be demoted to flash (tier_admit) and which flash hits come back
 * to RAM (tier_promote).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "tier.h"

#define NOW     1700000000u
#define MIN_TTL 10u
#define MAX     1000u

/* ---------------------------------------------------------------------------
 * tier_admit
 * ------------------------------------------------------------------------- */

START_TEST(test_admit_never_expiring)
{
    ck_assert(tier_admit(0, NOW, MIN_TTL, 100, MAX));
    ck_assert(tier_admit(0, NOW, MIN_TTL, 0, MAX)); /* an empty value too */
    ck_assert(tier_admit(0, 0, 0, 0, 0));
    ck_assert(tier_admit(0, NOW, UINT32_MAX, 100, MAX)); /* no TTL to fall short of */
}
END_TEST

START_TEST(test_admit_expiring_beyond_min_ttl)
{
    ck_assert(tier_admit(NOW + MIN_TTL, NOW, MIN_TTL, 100, MAX)); /* exactly min_ttl left */
    ck_assert(tier_admit(NOW + MIN_TTL + 1, NOW, MIN_TTL, 100, MAX));
    ck_assert(tier_admit(NOW + 86400, NOW, MIN_TTL, 100, MAX));
    ck_assert(tier_admit(UINT32_MAX, NOW, MIN_TTL, 100, MAX));
    /* min_ttl 0: anything still alive goes. */
    ck_assert(tier_admit(NOW + 1, NOW, 0, 100, MAX));
}
END_TEST

START_TEST(test_admit_expiring_within_min_ttl)
{
    ck_assert(!tier_admit(NOW + MIN_TTL - 1, NOW, MIN_TTL, 100, MAX));
    ck_assert(!tier_admit(NOW + 1, NOW, MIN_TTL, 100, MAX));
    /* A huge min_ttl is not an overflow. */
    ck_assert(!tier_admit(NOW + 86400, NOW, UINT32_MAX - 1, 100, MAX));
    ck_assert(!tier_admit(UINT32_MAX, NOW, UINT32_MAX - NOW + 1, 100, MAX));
    ck_assert(tier_admit(UINT32_MAX, NOW, UINT32_MAX - NOW, 100, MAX));
}
END_TEST

START_TEST(test_admit_already_expired)
{
    ck_assert(!tier_admit(NOW, NOW, MIN_TTL, 100, MAX)); /* expires this second */
    ck_assert(!tier_admit(NOW, NOW, 0, 100, MAX));
    ck_assert(!tier_admit(NOW - 1, NOW, MIN_TTL, 100, MAX));
    ck_assert(!tier_admit(NOW - 1, NOW, 0, 100, MAX)); /* no wrap-around to "far future" */
    ck_assert(!tier_admit(1, NOW, 0, 100, MAX));       /* cache_realtime's "long past" */
}
END_TEST

START_TEST(test_admit_too_large)
{
    ck_assert(tier_admit(0, NOW, MIN_TTL, MAX, MAX)); /* exactly the limit fits */
    ck_assert(!tier_admit(0, NOW, MIN_TTL, MAX + 1, MAX));
    ck_assert(!tier_admit(NOW + 86400, NOW, MIN_TTL, MAX + 1, MAX));
    ck_assert(!tier_admit(0, NOW, MIN_TTL, UINT32_MAX, MAX));
    ck_assert(!tier_admit(0, NOW, 0, 1, 0));
}
END_TEST

/* ---------------------------------------------------------------------------
 * tier_promote
 * ------------------------------------------------------------------------- */

static struct tier_sketch *sketch(void)
{
    struct tier_sketch *s = calloc(1, sizeof(*s));
    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(test_promote_second_hit)
{
    struct tier_sketch *s = sketch();
    uint64_t h = 0x0123456789ABCDEFULL;
    ck_assert_msg(!tier_promote(s, h), "first hit must not promote");
    ck_assert_msg(tier_promote(s, h), "second hit must promote");
    /* Promoted: the memory of it is spent; it starts over. */
    ck_assert(!tier_promote(s, h));
    ck_assert(tier_promote(s, h));
    /* Hashes whose tag bits are all zero are remembered too. */
    ck_assert(!tier_promote(s, 0));
    ck_assert(tier_promote(s, 0));
    ck_assert(!tier_promote(s, UINT64_MAX));
    ck_assert(tier_promote(s, UINT64_MAX));
    free(s);
}
END_TEST

START_TEST(test_promote_independent_hashes)
{
    struct tier_sketch *s = sketch();
    /* Distinct slots (bits 24..39) and tags (bits 48..63). */
    uint64_t a = 0x1111000001000000ULL, b = 0x2222000002000000ULL, c = 0x3333000003000000ULL;
    ck_assert(!tier_promote(s, a));
    ck_assert(!tier_promote(s, b));
    ck_assert(!tier_promote(s, c));
    ck_assert(tier_promote(s, b));
    ck_assert(tier_promote(s, a));
    ck_assert(tier_promote(s, c));

    /* Many random hashes, each seen once, then again: the second hits
     * promote (apart from the few that share a slot with a later one). */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    enum { N = 1000 };
    uint64_t hs[N];
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        hs[i] = x;
        ck_assert_msg(!tier_promote(s, hs[i]), "first hit of hash %d promoted", i);
    }
    int promoted = 0;
    for (int i = 0; i < N; i++)
        promoted += tier_promote(s, hs[i]);
    /* 1000 keys in 65536 slots: about 8 collide. */
    ck_assert_msg(promoted >= N - 50, "only %d of %d second hits promoted", promoted, N);
    free(s);
}
END_TEST

START_TEST(test_promote_one_key_does_not_promote_another)
{
    struct tier_sketch *s = sketch();
    /* Same slot, different tags: b's first hit is not a's second. */
    uint64_t a = 0x1111000001000000ULL, b = 0x2222000001000000ULL;
    ck_assert(!tier_promote(s, a));
    ck_assert_msg(!tier_promote(s, b), "a different hash in the same slot was promoted");
    ck_assert(tier_promote(s, b));
    free(s);
}
END_TEST

static Suite *tier_suite(void)
{
    Suite *s = suite_create("tier");
    TCase *tc = tcase_create("admit");
    tcase_add_test(tc, test_admit_never_expiring);
    tcase_add_test(tc, test_admit_expiring_beyond_min_ttl);
    tcase_add_test(tc, test_admit_expiring_within_min_ttl);
    tcase_add_test(tc, test_admit_already_expired);
    tcase_add_test(tc, test_admit_too_large);
    suite_add_tcase(s, tc);

    tc = tcase_create("promote");
    tcase_add_test(tc, test_promote_second_hit);
    tcase_add_test(tc, test_promote_independent_hashes);
    tcase_add_test(tc, test_promote_one_key_does_not_promote_another);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tier_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
