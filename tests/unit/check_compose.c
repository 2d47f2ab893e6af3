/*
 * check_compose.c: unit tests for src/proto/compose.c: the exact bytes of
 * every fixed reply (memcached 1.6's wording), VALUE headers, numbers and
 * STAT lines.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"

static void ck_reply_bytes(enum proto_reply r, const char *want)
{
    struct proto_str s = compose_reply(r);
    ck_assert_ptr_nonnull(s.s);
    ck_assert_msg(s.n == strlen(want) && memcmp(s.s, want, s.n) == 0,
                  "reply %d is '%.*s' (%zu bytes), want '%s'", (int)r, (int)s.n, s.s, s.n, want);
}

START_TEST(test_reply_texts)
{
    ck_reply_bytes(PROTO_R_STORED, "STORED\r\n");
    ck_reply_bytes(PROTO_R_NOT_STORED, "NOT_STORED\r\n");
    ck_reply_bytes(PROTO_R_EXISTS, "EXISTS\r\n");
    ck_reply_bytes(PROTO_R_NOT_FOUND, "NOT_FOUND\r\n");
    ck_reply_bytes(PROTO_R_DELETED, "DELETED\r\n");
    ck_reply_bytes(PROTO_R_TOUCHED, "TOUCHED\r\n");
    ck_reply_bytes(PROTO_R_OK, "OK\r\n");
    ck_reply_bytes(PROTO_R_END, "END\r\n");
    ck_reply_bytes(PROTO_R_RESET, "RESET\r\n");
    ck_reply_bytes(PROTO_R_MN, "MN\r\n");
    ck_reply_bytes(PROTO_R_ERROR, "ERROR\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_FORMAT, "CLIENT_ERROR bad command line format\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_BAD_COMMAND_LINE, "CLIENT_ERROR bad command line\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_DATA_CHUNK, "CLIENT_ERROR bad data chunk\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_EXPTIME, "CLIENT_ERROR invalid exptime argument\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_DELTA, "CLIENT_ERROR invalid numeric delta argument\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_NON_NUMERIC,
                   "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_DELETE_USAGE,
                   "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_SHUTDOWN_MODE, "CLIENT_ERROR invalid shutdown mode\r\n");
    ck_reply_bytes(PROTO_R_CLIENT_ERROR_STATS_DETAIL,
                   "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
    ck_reply_bytes(PROTO_R_ERROR_SHUTDOWN_DISABLED, "ERROR: shutdown not enabled\r\n");
    ck_reply_bytes(PROTO_R_SERVER_ERROR_TOO_LARGE, "SERVER_ERROR object too large for cache\r\n");
    ck_reply_bytes(PROTO_R_SERVER_ERROR_OOM_STORE, "SERVER_ERROR out of memory storing object\r\n");
    ck_reply_bytes(PROTO_R_SERVER_ERROR_OOM, "SERVER_ERROR out of memory\r\n");
    ck_reply_bytes(PROTO_R_SERVER_ERROR_LINE_TOO_LONG, "SERVER_ERROR command line too long\r\n");
    ck_reply_bytes(PROTO_R_SERVER_ERROR_OOM_GET,
                   "SERVER_ERROR out of memory writing get response\r\n");
    ck_reply_bytes(PROTO_R_SERVER_ERROR_OOM_READ, "SERVER_ERROR out of memory reading request\r\n");
}
END_TEST

START_TEST(test_reply_none_is_empty)
{
    struct proto_str s = compose_reply(PROTO_R_NONE);
    ck_assert_ptr_nonnull(s.s);
    ck_assert_uint_eq(s.n, 0);
}
END_TEST

/* Every reply has a text: one CRLF-terminated line, no NUL, no stray CR/LF. */
START_TEST(test_every_reply_is_one_line)
{
    for (int r = PROTO_R_NONE + 1; r < PROTO_R_COUNT; r++) {
        struct proto_str s = compose_reply((enum proto_reply)r);
        ck_assert_msg(s.s != NULL && s.n >= 4, "reply %d has no text", r);
        ck_assert_msg(memcmp(s.s + s.n - 2, "\r\n", 2) == 0, "reply %d lacks CRLF", r);
        ck_assert_msg(memchr(s.s, '\0', s.n) == NULL, "reply %d has a NUL", r);
        ck_assert_msg(memchr(s.s, '\n', s.n - 1) == NULL && memchr(s.s, '\r', s.n - 2) == NULL,
                      "reply %d has an inner line break", r);
        /* An unknown reply is answered as ERROR, so a mapped one must not be. */
        if (r != PROTO_R_ERROR)
            ck_assert_msg(strncmp(s.s, "ERROR\r\n", s.n) != 0, "reply %d is ERROR", r);
    }
}
END_TEST

START_TEST(test_reply_out_of_range)
{
    struct proto_str s = compose_reply(PROTO_R_COUNT);
    ck_assert_uint_eq(s.n, 7);
    ck_assert_mem_eq(s.s, "ERROR\r\n", 7);
    s = compose_reply((enum proto_reply)1000);
    ck_assert_mem_eq(s.s, "ERROR\r\n", 7);
}
END_TEST

/* ---------------------------------------------------------------------------
 * VALUE headers
 * ------------------------------------------------------------------------- */

static void ck_header(const char *key, size_t nkey, uint32_t flags, uint32_t nbytes, bool with_cas,
                      uint64_t cas, const char *want)
{
    /* Exactly COMPOSE_VALUE_HEADER_MAX bytes on the heap: ASan catches overruns. */
    char *buf = malloc(COMPOSE_VALUE_HEADER_MAX);
    size_t n = compose_value_header(buf, key, nkey, flags, nbytes, with_cas, cas);
    ck_assert_msg(n == strlen(want) && memcmp(buf, want, n) == 0, "header '%.*s', want '%s'",
                  (int)n, buf, want);
    free(buf);
}

START_TEST(test_value_header)
{
    ck_header("foo", 3, 0, 5, false, 0, "VALUE foo 0 5\r\n");
    ck_header("foo", 3, 0, 5, true, 123, "VALUE foo 0 5 123\r\n");
    ck_header("k", 1, 42, 0, false, 0, "VALUE k 42 0\r\n");
    ck_header("k", 1, 42, 0, true, 0, "VALUE k 42 0 0\r\n");
    ck_header("k", 1, 4294967295u, 4294967295u, true, UINT64_MAX,
              "VALUE k 4294967295 4294967295 18446744073709551615\r\n");
    ck_header("k", 1, 10, 100, true, 1000, "VALUE k 10 100 1000\r\n");
    /* Only nkey bytes of the key are used. */
    ck_header("keyXYZ", 3, 1, 2, false, 0, "VALUE key 1 2\r\n");
}
END_TEST

START_TEST(test_value_header_max)
{
    char key[PROTO_KEY_MAX + 1];
    memset(key, 'k', PROTO_KEY_MAX);
    key[PROTO_KEY_MAX] = '\0';
    char want[COMPOSE_VALUE_HEADER_MAX + 1];
    int n = snprintf(want, sizeof(want), "VALUE %s 4294967295 4294967295 18446744073709551615\r\n",
                     key);
    ck_assert_int_eq(n, COMPOSE_VALUE_HEADER_MAX); /* the maximum is exact */
    ck_header(key, PROTO_KEY_MAX, 4294967295u, 4294967295u, true, UINT64_MAX, want);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Numbers
 * ------------------------------------------------------------------------- */

static void ck_number(uint64_t v, const char *want)
{
    char buf[23];
    memset(buf, 'X', sizeof(buf));
    size_t n = compose_number(buf, v);
    ck_assert_msg(n == strlen(want) && memcmp(buf, want, n) == 0, "number '%.*s', want '%s'",
                  (int)n, buf, want);
}

START_TEST(test_number)
{
    ck_number(0, "0\r\n");
    ck_number(1, "1\r\n");
    ck_number(42, "42\r\n");
    ck_number(4294967296ULL, "4294967296\r\n");
    ck_number(UINT64_MAX, "18446744073709551615\r\n");
}
END_TEST

/* ---------------------------------------------------------------------------
 * STAT lines
 * ------------------------------------------------------------------------- */

START_TEST(test_stat_line)
{
    char buf[128];
    size_t n = compose_stat(buf, sizeof(buf), "pid", "1234");
    ck_assert_uint_eq(n, strlen("STAT pid 1234\r\n"));
    ck_assert_mem_eq(buf, "STAT pid 1234\r\n", n);
    n = compose_stat(buf, sizeof(buf), "version", "1.6.18-tiercache-0.1.0");
    ck_assert_mem_eq(buf, "STAT version 1.6.18-tiercache-0.1.0\r\n", n);
    ck_assert_uint_eq(n, strlen("STAT version 1.6.18-tiercache-0.1.0\r\n"));
    n = compose_stat(buf, sizeof(buf), "empty", "");
    ck_assert_uint_eq(n, strlen("STAT empty \r\n"));
    ck_assert_mem_eq(buf, "STAT empty \r\n", n);
}
END_TEST

START_TEST(test_stat_line_exact_fit_and_truncation)
{
    const char *full = "STAT pid 1234\r\n"; /* 15 bytes */
    char buf[32];
    /* 16 bytes: the line and its NUL fit. */
    size_t n = compose_stat(buf, 16, "pid", "1234");
    ck_assert_uint_eq(n, 15);
    ck_assert_mem_eq(buf, full, 15);
    /* 15 bytes: one byte short; the result says what was written. */
    memset(buf, 'X', sizeof(buf));
    n = compose_stat(buf, 15, "pid", "1234");
    ck_assert_uint_eq(n, 14);
    ck_assert_mem_eq(buf, full, 14);
    ck_assert_msg(buf[15] == 'X', "wrote past cap");
    n = compose_stat(buf, 10, "pid", "1234");
    ck_assert_uint_eq(n, 9);
    ck_assert_mem_eq(buf, "STAT pid ", 9);
    n = compose_stat(buf, 1, "pid", "1234");
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* A zero-byte buffer holds nothing: the length written is 0. */
START_TEST(test_stat_line_zero_cap)
{
    char buf[4] = "XXX";
    size_t n = compose_stat(buf, 0, "pid", "1234");
    ck_assert_uint_eq(n, 0);
    ck_assert_mem_eq(buf, "XXX", 4);
}
END_TEST

static Suite *compose_suite(void)
{
    Suite *s = suite_create("compose");
    TCase *tc = tcase_create("replies");
    tcase_add_test(tc, test_reply_texts);
    tcase_add_test(tc, test_reply_none_is_empty);
    tcase_add_test(tc, test_every_reply_is_one_line);
    tcase_add_test(tc, test_reply_out_of_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("lines");
    tcase_add_test(tc, test_value_header);
    tcase_add_test(tc, test_value_header_max);
    tcase_add_test(tc, test_number);
    tcase_add_test(tc, test_stat_line);
    tcase_add_test(tc, test_stat_line_exact_fit_and_truncation);
    tcase_add_test(tc, test_stat_line_zero_cap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(compose_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
