/*
 * check_numparse.c: unit tests for src/common/numparse.c.
 *
 * The four tc_strto* functions must accept and reject exactly what
 * memcached's safe_strto* (util.c) accept and reject on a NUL-terminated
 * token, and produce the same value, because protocol replies depend on it.
 * The expectations below are what glibc's strto* plus memcached's acceptance
 * rule give for each input.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "numparse.h"

/* A string literal as (pointer, length). */
#define T(lit) (lit), (sizeof(lit) - 1)

/* ---------------------------------------------------------------------------
 * Helpers: parse and report success; the value goes to *v.
 * ------------------------------------------------------------------------- */

static bool u32(const char *s, size_t n, uint32_t *v)
{
    *v = 0xdeadbeef;
    return tc_strtoul32(s, n, v);
}

static bool s32(const char *s, size_t n, int32_t *v)
{
    *v = 0x5eadbeef;
    return tc_strtol32(s, n, v);
}

static bool u64(const char *s, size_t n, uint64_t *v)
{
    *v = 0xdeadbeefULL;
    return tc_strtoull(s, n, v);
}

static bool s64(const char *s, size_t n, int64_t *v)
{
    *v = 0x5eadbeefLL;
    return tc_strtoll(s, n, v);
}

/* ---------------------------------------------------------------------------
 * Plain numbers
 * ------------------------------------------------------------------------- */

START_TEST(test_plain_numbers)
{
    uint32_t a;
    int32_t b;
    uint64_t c;
    int64_t d;

    ck_assert(u32(T("0"), &a));
    ck_assert_uint_eq(a, 0);
    ck_assert(u32(T("123"), &a));
    ck_assert_uint_eq(a, 123);
    ck_assert(u32(T("4294967295"), &a));
    ck_assert_uint_eq(a, UINT32_MAX);

    ck_assert(s32(T("0"), &b));
    ck_assert_int_eq(b, 0);
    ck_assert(s32(T("-123"), &b));
    ck_assert_int_eq(b, -123);
    ck_assert(s32(T("2147483647"), &b));
    ck_assert_int_eq(b, INT32_MAX);
    ck_assert(s32(T("-2147483648"), &b));
    ck_assert_int_eq(b, INT32_MIN);

    ck_assert(u64(T("0"), &c));
    ck_assert_uint_eq(c, 0);
    ck_assert(u64(T("18446744073709551615"), &c));
    ck_assert_uint_eq(c, UINT64_MAX);
    ck_assert(u64(T("000000000000000000000000000042"), &c)); /* leading zeros never overflow */
    ck_assert_uint_eq(c, 42);

    ck_assert(s64(T("9223372036854775807"), &d));
    ck_assert_int_eq(d, INT64_MAX);
    ck_assert(s64(T("-9223372036854775808"), &d));
    ck_assert_int_eq(d, INT64_MIN);
    ck_assert(s64(T("-1"), &d));
    ck_assert_int_eq(d, -1);
}
END_TEST

/* Only the n bytes given are read: the token need not be NUL-terminated. */
START_TEST(test_length_is_honoured)
{
    uint32_t a;
    int32_t b;
    uint64_t c;
    int64_t d;
    const char *s = "12345x";
    ck_assert(u32(s, 3, &a));
    ck_assert_uint_eq(a, 123);
    ck_assert(s32(s, 2, &b));
    ck_assert_int_eq(b, 12);
    ck_assert(u64(s, 5, &c));
    ck_assert_uint_eq(c, 12345);
    ck_assert(s64(s, 1, &d));
    ck_assert_int_eq(d, 1);
    /* ... and the byte after them is not looked at: "12345x" with 6 is junk. */
    ck_assert(!u64(s, 6, &c));

    /* A buffer with no terminator at all (ASan would catch a read past it). */
    char *heap = malloc(4);
    memcpy(heap, "4321", 4);
    ck_assert(u64(heap, 4, &c));
    ck_assert_uint_eq(c, 4321);
    ck_assert(s64(heap, 4, &d));
    ck_assert_int_eq(d, 4321);
    free(heap);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Whitespace
 * ------------------------------------------------------------------------- */

START_TEST(test_leading_whitespace_accepted)
{
    uint32_t a;
    int32_t b;
    uint64_t c;
    int64_t d;
    ck_assert(u32(T("\t5"), &a));
    ck_assert_uint_eq(a, 5);
    ck_assert(u32(T(" \t\n\v\f\r7"), &a));
    ck_assert_uint_eq(a, 7);
    ck_assert(s32(T("\t-5"), &b));
    ck_assert_int_eq(b, -5);
    ck_assert(u64(T("  9"), &c));
    ck_assert_uint_eq(c, 9);
    ck_assert(s64(T("\n-9"), &d));
    ck_assert_int_eq(d, -9);
    /* Whitespace between the sign and the digits is not allowed (strtoul). */
    ck_assert(!u64(T("- 5"), &c));
    ck_assert(!s64(T("+ 5"), &d));
}
END_TEST

START_TEST(test_trailing_whitespace_ends_number)
{
    uint32_t a;
    int32_t b;
    uint64_t c;
    int64_t d;
    ck_assert(u32(T("5 "), &a));
    ck_assert_uint_eq(a, 5);
    ck_assert(u32(T("5\tx"), &a)); /* the first whitespace ends it: what follows is ignored */
    ck_assert_uint_eq(a, 5);
    ck_assert(s32(T("-5\r\n"), &b));
    ck_assert_int_eq(b, -5);
    ck_assert(s32(T("6\vjunk"), &b));
    ck_assert_int_eq(b, 6);
    ck_assert(u64(T("12\r"), &c));
    ck_assert_uint_eq(c, 12);
    ck_assert(u64(T("12\fzz"), &c));
    ck_assert_uint_eq(c, 12);
    ck_assert(s64(T("-12\n?"), &d));
    ck_assert_int_eq(d, -12);
}
END_TEST

/*
 * A value that only fits negated is refused when the token holds a '-'
 * anywhere: memcached 1.6.18 uses strchr() on the whole token, even past
 * the whitespace that ended the number (checked against a real memcached
 * by the differential test, case set_flags_u64_max_tab_minus).
 */
START_TEST(test_minus_anywhere_in_token_refuses_huge_values)
{
    uint64_t c;
    uint32_t a;
    ck_assert(!u64(T("18446744073709551615\t-"), &c));
    ck_assert(!u64(T("9223372036854775808\t-1"), &c));
    ck_assert(u64(T("9223372036854775807\t-1"), &c)); /* fits as signed: no check */
    ck_assert_uint_eq(c, 9223372036854775807ULL);
    /* strtoul is 64-bit too, so the 32-bit parser inherits the rule. */
    ck_assert(!u32(T("18446744073709551615\t-"), &a));
    ck_assert(u32(T("18446744073709551615\t"), &a));
    ck_assert_uint_eq(a, UINT32_MAX);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Signs
 * ------------------------------------------------------------------------- */

START_TEST(test_plus_sign_accepted)
{
    uint32_t a;
    int32_t b;
    uint64_t c;
    int64_t d;
    ck_assert(u32(T("+5"), &a));
    ck_assert_uint_eq(a, 5);
    ck_assert(s32(T("+5"), &b));
    ck_assert_int_eq(b, 5);
    ck_assert(u64(T("+18446744073709551615"), &c));
    ck_assert_uint_eq(c, UINT64_MAX);
    ck_assert(s64(T("+9223372036854775807"), &d));
    ck_assert_int_eq(d, INT64_MAX);
}
END_TEST

START_TEST(test_minus_one_rejected_as_unsigned)
{
    uint32_t a;
    uint64_t c;
    ck_assert(!u32(T("-1"), &a));
    ck_assert(!u64(T("-1"), &c));
    ck_assert(!u64(T("-5"), &c));
    ck_assert(!u32(T("-4294967295"), &a));
    ck_assert(!u64(T("-9223372036854775808"), &c));
    ck_assert(!u64(T("\t-1"), &c));
}
END_TEST

START_TEST(test_minus_zero_accepted)
{
    uint32_t a;
    int32_t b;
    uint64_t c;
    int64_t d;
    ck_assert(u32(T("-0"), &a));
    ck_assert_uint_eq(a, 0);
    ck_assert(s32(T("-0"), &b));
    ck_assert_int_eq(b, 0);
    ck_assert(u64(T("-0"), &c));
    ck_assert_uint_eq(c, 0);
    ck_assert(s64(T("-0"), &d));
    ck_assert_int_eq(d, 0);
    ck_assert(u64(T("-000"), &c));
    ck_assert_uint_eq(c, 0);
}
END_TEST

/*
 * strtoull negates: "-18446744073709551615" is 1, which is not negative as a
 * signed number, so memcached's '-' check does not run and 1 is accepted.
 */
START_TEST(test_negated_huge_unsigned_wraps_like_strtoull)
{
    uint64_t c;
    ck_assert(u64(T("-18446744073709551615"), &c));
    ck_assert_uint_eq(c, 1);
    ck_assert(u64(T("-9223372036854775809"), &c));
    ck_assert_uint_eq(c, 9223372036854775807ULL);
}
END_TEST

/* ---------------------------------------------------------------------------
 * 32-bit truncation
 * ------------------------------------------------------------------------- */

START_TEST(test_strtoul32_truncates)
{
    uint32_t a;
    ck_assert(u32(T("4294967296"), &a));
    ck_assert_uint_eq(a, 0);
    ck_assert(u32(T("4294967297"), &a));
    ck_assert_uint_eq(a, 1);
    ck_assert(u32(T("8589934597"), &a)); /* 2 * 2^32 + 5 */
    ck_assert_uint_eq(a, 5);
    ck_assert(u32(T("18446744073709551615"), &a));
    ck_assert_uint_eq(a, UINT32_MAX);
}
END_TEST

START_TEST(test_strtol32_truncates)
{
    int32_t b;
    ck_assert(s32(T("4294967297"), &b));
    ck_assert_int_eq(b, 1);
    ck_assert(s32(T("2147483648"), &b));
    ck_assert_int_eq(b, INT32_MIN);
    ck_assert(s32(T("4294967295"), &b));
    ck_assert_int_eq(b, -1);
    ck_assert(s32(T("-2147483649"), &b));
    ck_assert_int_eq(b, INT32_MAX);
    ck_assert(s32(T("-4294967297"), &b));
    ck_assert_int_eq(b, -1);
    ck_assert(s32(T("9223372036854775807"), &b));
    ck_assert_int_eq(b, -1);
    ck_assert(s32(T("-9223372036854775808"), &b));
    ck_assert_int_eq(b, 0);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Overflow
 * ------------------------------------------------------------------------- */

START_TEST(test_overflow_rejected)
{
    uint32_t a;
    int32_t b;
    uint64_t c;
    int64_t d;
    /* Past 64 bits: ERANGE in strtoul/strtoull. */
    ck_assert(!u64(T("18446744073709551616"), &c));
    ck_assert(!u64(T("99999999999999999999999"), &c));
    ck_assert(!u32(T("18446744073709551616"), &a));
    ck_assert(!u64(T("-18446744073709551616"), &c));
    /* Past the signed 64-bit range: ERANGE in strtol/strtoll. */
    ck_assert(!s64(T("9223372036854775808"), &d));
    ck_assert(!s64(T("-9223372036854775809"), &d));
    ck_assert(!s64(T("18446744073709551616"), &d));
    ck_assert(!s32(T("9223372036854775808"), &b));
    ck_assert(!s32(T("-9223372036854775809"), &b));
    /* The overflow is detected even when followed by whitespace. */
    ck_assert(!u64(T("18446744073709551616 "), &c));
    ck_assert(!s64(T("9223372036854775808\t"), &d));
}
END_TEST

/* ---------------------------------------------------------------------------
 * Junk and empty tokens
 * ------------------------------------------------------------------------- */

START_TEST(test_trailing_junk_rejected)
{
    static const char *const junk[] = {"5x", "5.0", "0x10", "5-", "5+", "12a ", "1e3", "5_"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        uint32_t a;
        int32_t b;
        uint64_t c;
        int64_t d;
        size_t n = strlen(junk[i]);
        ck_assert_msg(!u32(junk[i], n, &a), "strtoul32 accepted '%s'", junk[i]);
        ck_assert_msg(!s32(junk[i], n, &b), "strtol32 accepted '%s'", junk[i]);
        ck_assert_msg(!u64(junk[i], n, &c), "strtoull accepted '%s'", junk[i]);
        ck_assert_msg(!s64(junk[i], n, &d), "strtoll accepted '%s'", junk[i]);
    }
}
END_TEST

START_TEST(test_no_digits_rejected)
{
    static const char *const bad[] = {"", " ", "\t", "+", "-", "+-1", "--1", "x", "x5", " -"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t a;
        int32_t b;
        uint64_t c;
        int64_t d;
        size_t n = strlen(bad[i]);
        ck_assert_msg(!u32(bad[i], n, &a), "strtoul32 accepted '%s'", bad[i]);
        ck_assert_msg(!s32(bad[i], n, &b), "strtol32 accepted '%s'", bad[i]);
        ck_assert_msg(!u64(bad[i], n, &c), "strtoull accepted '%s'", bad[i]);
        ck_assert_msg(!s64(bad[i], n, &d), "strtoll accepted '%s'", bad[i]);
    }
    /* An empty token whose buffer continues with digits is still empty. */
    uint64_t c;
    ck_assert(!u64("123", 0, &c));
}
END_TEST

/* ---------------------------------------------------------------------------
 * Differential: random tokens against glibc's strto* and memcached's rule.
 *
 * ref_*() restate memcached's acceptance rule on top of the C library: the
 * conversion must consume something, must not overflow (ERANGE), must stop
 * at whitespace or at the end of the token, and (unsigned only) a result
 * that is negative as a signed number is refused if a '-' was consumed.
 * ------------------------------------------------------------------------- */

static bool ref_ull(const char *str, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(str, &end, 10);
    *out = 0;
    if (errno == ERANGE || end == str || !(*end == '\0' || isspace((unsigned char)*end)))
        return false;
    if ((long long)v < 0 && strchr(str, '-') != NULL)
        return false;
    *out = v;
    return true;
}

static bool ref_ll(const char *str, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(str, &end, 10);
    *out = 0;
    if (errno == ERANGE || end == str || !(*end == '\0' || isspace((unsigned char)*end)))
        return false;
    *out = v;
    return true;
}

START_TEST(test_random_tokens_match_libc)
{
    static const char alphabet[] = "0123456789012345678901234567890123456789 \t\r\n-+x.";
    static const char *const seeds[] = {"18446744073709551615", "18446744073709551616",
                                        "9223372036854775807",  "9223372036854775808",
                                        "4294967295",           "4294967296",
                                        "2147483647",           "2147483648"};
    uint64_t rng = 88172645463325252ULL;
    for (int iter = 0; iter < 200000; iter++) {
        char tok[40];
        size_t n = 0;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if (rng % 3 == 0) {
            /* Near the interesting boundaries, with a prefix and a suffix. */
            const char *seed = seeds[(rng >> 8) % (sizeof(seeds) / sizeof(seeds[0]))];
            if ((rng >> 16) % 4 == 0)
                tok[n++] = (rng >> 20) % 2 ? '-' : '+';
            memcpy(tok + n, seed, strlen(seed));
            n += strlen(seed);
            size_t extra = (rng >> 24) % 4;
            for (size_t i = 0; i < extra; i++)
                tok[n++] = alphabet[(rng >> (28 + 6 * i)) % (sizeof(alphabet) - 1)];
        } else {
            size_t len = (rng >> 8) % 24;
            uint64_t r = rng;
            for (size_t i = 0; i < len; i++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                tok[n++] = alphabet[(r >> 33) % (sizeof(alphabet) - 1)];
            }
        }
        tok[n] = '\0';

        uint64_t want_u, got_u;
        int64_t want_s, got_s;
        uint32_t got_u32;
        int32_t got_s32;
        bool ok_u = ref_ull(tok, &want_u);
        bool ok_s = ref_ll(tok, &want_s);
        /* Plain tests, not ck_assert: this runs 800,000 checks. */
        if (tc_strtoull(tok, n, &got_u) != ok_u || (ok_u && got_u != want_u))
            ck_abort_msg("tc_strtoull disagrees with strtoull on '%s'", tok);
        if (tc_strtoll(tok, n, &got_s) != ok_s || (ok_s && got_s != want_s))
            ck_abort_msg("tc_strtoll disagrees with strtoll on '%s'", tok);
        /* 32-bit: memcached's strtoul/strtol are 64-bit on LP64, truncated. */
        if (tc_strtoul32(tok, n, &got_u32) != ok_u || (ok_u && got_u32 != (uint32_t)want_u))
            ck_abort_msg("tc_strtoul32 disagrees on '%s'", tok);
        if (tc_strtol32(tok, n, &got_s32) != ok_s ||
            (ok_s && got_s32 != (int32_t)(uint32_t)(uint64_t)want_s))
            ck_abort_msg("tc_strtol32 disagrees on '%s'", tok);
    }
}
END_TEST

/* ---------------------------------------------------------------------------
 * tc_u64toa
 * ------------------------------------------------------------------------- */

static void check_u64toa(uint64_t v, const char *want)
{
    char buf[32];
    memset(buf, 'X', sizeof(buf));
    size_t n = tc_u64toa(v, buf);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_mem_eq(buf, want, n);
    ck_assert_msg(buf[n] == 'X', "tc_u64toa wrote past the digits");
}

START_TEST(test_u64toa)
{
    check_u64toa(0, "0");
    check_u64toa(1, "1");
    check_u64toa(9, "9");
    check_u64toa(10, "10");
    check_u64toa(100, "100");
    check_u64toa(1234567890, "1234567890");
    check_u64toa(UINT32_MAX, "4294967295");
    check_u64toa(10000000000000000000ULL, "10000000000000000000");
    check_u64toa(UINT64_MAX, "18446744073709551615");
}
END_TEST

START_TEST(test_u64toa_round_trips)
{
    uint64_t v = 1;
    for (int i = 0; i < 200; i++) {
        char buf[24];
        size_t n = tc_u64toa(v, buf);
        uint64_t back;
        ck_assert(tc_strtoull(buf, n, &back));
        ck_assert_uint_eq(back, v);
        v = v * 6364136223846793005ULL + 1442695040888963407ULL;
    }
}
END_TEST

/* ---------------------------------------------------------------------------
 * tc_parse_size
 * ------------------------------------------------------------------------- */

static uint64_t size_ok(const char *s, uint64_t unit)
{
    uint64_t v = 0xdead;
    ck_assert_msg(tc_parse_size(s, unit, &v), "tc_parse_size rejected '%s'", s);
    return v;
}

START_TEST(test_parse_size_suffixes)
{
    ck_assert_uint_eq(size_ok("1k", 1), 1024);
    ck_assert_uint_eq(size_ok("1K", 1), 1024);
    ck_assert_uint_eq(size_ok("3m", 1), 3ULL << 20);
    ck_assert_uint_eq(size_ok("3M", 1), 3ULL << 20);
    ck_assert_uint_eq(size_ok("2g", 1), 2ULL << 30);
    ck_assert_uint_eq(size_ok("2G", 1), 2ULL << 30);
    ck_assert_uint_eq(size_ok("5t", 1), 5ULL << 40);
    ck_assert_uint_eq(size_ok("5T", 1), 5ULL << 40);
    ck_assert_uint_eq(size_ok("0k", 1), 0);
    /* A suffix overrides the unit. */
    ck_assert_uint_eq(size_ok("64k", 1ULL << 20), 64ULL << 10);
    ck_assert_uint_eq(size_ok("1g", 1ULL << 20), 1ULL << 30);
}
END_TEST

START_TEST(test_parse_size_unit)
{
    ck_assert_uint_eq(size_ok("64", 1ULL << 20), 64ULL << 20);
    ck_assert_uint_eq(size_ok("1024", 1), 1024);
    ck_assert_uint_eq(size_ok("7", 1000), 7000);
    ck_assert_uint_eq(size_ok("0", 1ULL << 20), 0);
    ck_assert_uint_eq(size_ok("18446744073709551615", 1), UINT64_MAX);
}
END_TEST

START_TEST(test_parse_size_overflow)
{
    uint64_t v;
    ck_assert(!tc_parse_size("18446744073709551616", 1, &v));
    ck_assert(!tc_parse_size("99999999999999999999999", 1, &v));
    ck_assert(!tc_parse_size("18446744073709551615", 2, &v));
    ck_assert(!tc_parse_size("17592186044416", 1ULL << 20, &v)); /* 2^44 * 2^20 = 2^64 */
    ck_assert_uint_eq(size_ok("17592186044415", 1ULL << 20), 17592186044415ULL << 20);
    ck_assert(!tc_parse_size("16777216t", 1, &v)); /* 2^24 * 2^40 = 2^64 */
    ck_assert_uint_eq(size_ok("16777215t", 1), 16777215ULL << 40);
    ck_assert(!tc_parse_size("17179869184g", 1, &v)); /* 2^34 * 2^30 */
}
END_TEST

START_TEST(test_parse_size_junk)
{
    static const char *const bad[] = {"",    "k",   "m",   "12x", "1.5m", "-1",   "+1",
                                      " 1",  "1 ",  "1kk", "m1",  "1km",  "0x10", "1b",
                                      "1e3", "1 k", "\t1", "1\n", "k1k",  "1p"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 42;
        ck_assert_msg(!tc_parse_size(bad[i], 1, &v), "tc_parse_size accepted '%s'", bad[i]);
    }
}
END_TEST

static Suite *numparse_suite(void)
{
    Suite *s = suite_create("numparse");
    TCase *tc = tcase_create("strto");
    tcase_add_test(tc, test_plain_numbers);
    tcase_add_test(tc, test_length_is_honoured);
    tcase_add_test(tc, test_leading_whitespace_accepted);
    tcase_add_test(tc, test_trailing_whitespace_ends_number);
    tcase_add_test(tc, test_minus_anywhere_in_token_refuses_huge_values);
    tcase_add_test(tc, test_plus_sign_accepted);
    tcase_add_test(tc, test_minus_one_rejected_as_unsigned);
    tcase_add_test(tc, test_minus_zero_accepted);
    tcase_add_test(tc, test_negated_huge_unsigned_wraps_like_strtoull);
    tcase_add_test(tc, test_strtoul32_truncates);
    tcase_add_test(tc, test_strtol32_truncates);
    tcase_add_test(tc, test_overflow_rejected);
    tcase_add_test(tc, test_trailing_junk_rejected);
    tcase_add_test(tc, test_no_digits_rejected);
    tcase_add_test(tc, test_random_tokens_match_libc);
    suite_add_tcase(s, tc);

    tc = tcase_create("u64toa");
    tcase_add_test(tc, test_u64toa);
    tcase_add_test(tc, test_u64toa_round_trips);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse_size");
    tcase_add_test(tc, test_parse_size_suffixes);
    tcase_add_test(tc, test_parse_size_unit);
    tcase_add_test(tc, test_parse_size_overflow);
    tcase_add_test(tc, test_parse_size_junk);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(numparse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
