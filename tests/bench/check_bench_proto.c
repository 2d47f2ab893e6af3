/*
 * check_bench_proto.c: the bench's client side of the text protocol (reply
 * parser and request encoders) and its server list (address parsing, key
 * distribution). The parser is pure, so each case is a string.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "mcproto.h"

static ssize_t parse(const char *s, struct mcproto_reply *r)
{
    return mcproto_parse_reply(s, strlen(s), r);
}

START_TEST(test_value_reply)
{
    struct mcproto_reply r;
    const char *s = "VALUE tcb:1 42 5\r\nhello\r\nEND\r\n";
    ck_assert_int_eq(parse(s, &r), 25);
    ck_assert_int_eq(r.type, MCPROTO_VALUE);
    ck_assert_int_eq((int)r.key_len, 5);
    ck_assert(memcmp(r.key, "tcb:1", 5) == 0);
    ck_assert_uint_eq(r.flags, 42);
    ck_assert_int_eq((int)r.data_len, 5);
    ck_assert(memcmp(r.data, "hello", 5) == 0);
    ck_assert_int_eq(parse(s + 25, &r), 5);
    ck_assert_int_eq(r.type, MCPROTO_END);

    /* gets adds a CAS; values may contain CR LF */
    ck_assert_int_eq(parse("VALUE k 0 4 99\r\na\r\nb\r\n", &r), 22);
    ck_assert_int_eq((int)r.data_len, 4);
    ck_assert_int_eq(parse("VALUE k 4294967295 0\r\n\r\n", &r), 24);
    ck_assert_uint_eq(r.flags, 4294967295u);
}
END_TEST

/* Every prefix of a reply is "need more", never an error or a wrong answer. */
START_TEST(test_need_more)
{
    struct mcproto_reply r;
    const char *s = "VALUE tcb:1 42 5\r\nhello\r\n";
    for (size_t n = 0; n < strlen(s); n++)
        ck_assert_int_eq(mcproto_parse_reply(s, n, &r), 0);
    ck_assert_int_eq(mcproto_parse_reply("STORED\r", 7, &r), 0);
}
END_TEST

START_TEST(test_simple_replies)
{
    struct mcproto_reply r;
    static const struct {
        const char *text;
        enum mcproto_reply_type type;
    } cases[] = {
        {"STORED\r\n", MCPROTO_STORED},   {"NOT_STORED\r\n", MCPROTO_NOT_STORED},
        {"EXISTS\r\n", MCPROTO_EXISTS},   {"NOT_FOUND\r\n", MCPROTO_NOT_FOUND},
        {"DELETED\r\n", MCPROTO_DELETED}, {"TOUCHED\r\n", MCPROTO_TOUCHED},
        {"OK\r\n", MCPROTO_OK},           {"ERROR\r\n", MCPROTO_ERROR},
        {"END\r\n", MCPROTO_END},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(parse(cases[i].text, &r), (ssize_t)strlen(cases[i].text));
        ck_assert_int_eq(r.type, cases[i].type);
    }
    ck_assert_int_eq(parse("SERVER_ERROR out of memory storing object\r\n", &r), 43);
    ck_assert_int_eq(r.type, MCPROTO_SERVER_ERROR);
    ck_assert_int_eq((int)r.msg_len, 28);
    ck_assert(memcmp(r.msg, "out of memory storing object", 28) == 0);
    ck_assert_int_eq(parse("CLIENT_ERROR bad data chunk\r\n", &r), 29);
    ck_assert_int_eq(r.type, MCPROTO_CLIENT_ERROR);
}
END_TEST

START_TEST(test_malformed)
{
    struct mcproto_reply r;
    static const char *const bad[] = {
        "STORE\r\n",         "STOREDX\r\n",         "stored\r\n",          "\r\n",
        "STORED\n",          "VALUE k\r\n",         "VALUE k 1\r\n",       "VALUE k x 1\r\n",
        "VALUE k 1 -1\r\n",  "VALUE k 1 2 3 4\r\n", "VALUE k 1 2\r\nabXY", "ENDX\r\n",
        "SERVER_ERRORx\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i], &r) == -1, "'%s' was not rejected", bad[i]);
    /* a line that never ends is malformed once it passes the longest line */
    char *junk = malloc(MCPROTO_MAX_LINE + 1);
    memset(junk, 'x', MCPROTO_MAX_LINE);
    ck_assert_int_eq(mcproto_parse_reply(junk, MCPROTO_MAX_LINE, &r), -1);
    ck_assert_int_eq(mcproto_parse_reply(junk, MCPROTO_MAX_LINE - 1, &r), 0);
    free(junk);
}
END_TEST

START_TEST(test_encoders)
{
    struct buf b;
    buf_init(&b);
    mcproto_begin_get(&b);
    mcproto_add_key(&b, "a", 1);
    mcproto_add_key(&b, "bc", 2);
    mcproto_end_line(&b);
    char *v = mcproto_begin_set(&b, "key", 3, 7, 60, 3);
    memcpy(v, "xyz", 3);
    const char *want = "get a bc\r\nset key 7 60 3\r\nxyz\r\n";
    ck_assert_int_eq((int)buf_pending(&b), (int)strlen(want));
    ck_assert(memcmp(b.data + b.off, want, strlen(want)) == 0);
    buf_consume(&b, buf_pending(&b));
    ck_assert_int_eq((int)b.len, 0);
    /* a large value grows the buffer */
    v = mcproto_begin_set(&b, "k", 1, 0, 0, 1 << 20);
    memset(v, 'q', 1 << 20);
    ck_assert_int_eq((int)buf_pending(&b), (int)strlen("set k 0 0 1048576\r\n") + (1 << 20) + 2);
    buf_deinit(&b);
}
END_TEST

START_TEST(test_server_specs)
{
    struct dist d;
    char err[256];
    dist_init(&d, DIST_MODULA);
    ck_assert_int_eq(dist_add(&d, "127.0.0.1:11211", err, sizeof(err)), TC_OK);
    ck_assert_int_eq(dist_add(&d, "127.0.0.1:1,localhost", err, sizeof(err)), TC_OK);
    ck_assert_int_eq(dist_add(&d, "[::1]:22122", err, sizeof(err)), TC_OK);
    ck_assert_uint_eq(d.n, 4);
    ck_assert_str_eq(d.servers[1].name, "127.0.0.1:1");
    ck_assert_str_eq(d.servers[2].name, "localhost");
    static const char *const bad[] = {"",       ":11211", "host:", "host:0", "host:70000",
                                      "host:x", "::1:5",  "[::1",  "[::1]x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(dist_add(&d, bad[i], err, sizeof(err)) == TC_INVALID, "'%s' accepted",
                      bad[i]);
}
END_TEST

/* libmemcached's modula: one_at_a_time(key) % n; keys spread evenly. */
START_TEST(test_distribution)
{
    struct dist d;
    char err[256];
    dist_init(&d, DIST_MODULA);
    ck_assert_int_eq(dist_add(&d, "127.0.0.1:1", err, sizeof(err)), TC_OK);
    ck_assert_uint_eq(dist_pick(&d, "anything", 8), 0);
    ck_assert_int_eq(dist_add(&d, "127.0.0.1:2,127.0.0.1:3", err, sizeof(err)), TC_OK);
    /* one_at_a_time("a") = 0xca2e9442 (Jenkins' reference) = 3392050242; % 3 = 0 */
    ck_assert_uint_eq(dist_pick(&d, "a", 1), 3392050242u % 3);
    unsigned count[3] = {0};
    char key[32];
    for (int i = 0; i < 30000; i++) {
        int n = snprintf(key, sizeof(key), "tcb:%d", i);
        count[dist_pick(&d, key, (size_t)n)]++;
    }
    for (int s = 0; s < 3; s++)
        ck_assert_msg(count[s] > 9000 && count[s] < 11000, "server %d got %u of 30000", s,
                      count[s]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_proto");
    TCase *tc = tcase_create("proto");
    tcase_add_test(tc, test_value_reply);
    tcase_add_test(tc, test_need_more);
    tcase_add_test(tc, test_simple_replies);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_encoders);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("dist");
    tcase_add_test(td, test_server_specs);
    tcase_add_test(td, test_distribution);
    suite_add_tcase(s, td);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
