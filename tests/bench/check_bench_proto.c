/*
 * check_bench_proto.c: the bench's client side of the text protocol (reply
 * parsers and request encoders, classic and meta) and its server list
 * (address parsing, key distribution). The parsers are pure, so each case
 * is a string. The meta replies are those memcached 1.6.18 sends to the
 * bench's own requests (mg <key> v f [q k], ms, mn).
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

/* --- meta ------------------------------------------------------------------------ */

static ssize_t parse_meta(const char *s, struct mcproto_reply *r)
{
    return mcproto_parse_meta_reply(s, strlen(s), r);
}

START_TEST(test_meta_value)
{
    struct mcproto_reply r;
    /* mg <key> v f: a hit names no key */
    const char *s = "VA 5 f42\r\nhello\r\n";
    ck_assert_int_eq(parse_meta(s, &r), 17);
    ck_assert_int_eq(r.type, MCPROTO_VA);
    ck_assert_ptr_null(r.key);
    ck_assert_uint_eq(r.flags, 42);
    ck_assert_int_eq((int)r.data_len, 5);
    ck_assert(memcmp(r.data, "hello", 5) == 0);

    /* mg <key> v f q k */
    ck_assert_int_eq(parse_meta("VA 5 f42 ktcb:17\r\nhello\r\n", &r), 25);
    ck_assert_int_eq(r.type, MCPROTO_VA);
    ck_assert_int_eq((int)r.key_len, 6);
    ck_assert(memcmp(r.key, "tcb:17", 6) == 0);
    ck_assert_uint_eq(r.flags, 42);

    /* flags in any order, unknown ones skipped; values may contain CR LF */
    ck_assert_int_eq(parse_meta("VA 4 c99 kab t-1 f4294967295 s4 Oxyz\r\na\r\nb\r\n", &r), 44);
    ck_assert_uint_eq(r.flags, 4294967295u);
    ck_assert_int_eq((int)r.key_len, 2);
    ck_assert_int_eq((int)r.data_len, 4);
    ck_assert(memcmp(r.data, "a\r\nb", 4) == 0);

    /* no flags at all, and an empty value */
    ck_assert_int_eq(parse_meta("VA 3\r\nabc\r\n", &r), 11);
    ck_assert_uint_eq(r.flags, 0);
    ck_assert_ptr_null(r.key);
    ck_assert_int_eq(parse_meta("VA 0 f0\r\n\r\n", &r), 11);
    ck_assert_int_eq((int)r.data_len, 0);
}
END_TEST

START_TEST(test_meta_status_replies)
{
    struct mcproto_reply r;
    static const struct {
        const char *text;
        enum mcproto_reply_type type;
    } cases[] = {
        {"EN\r\n", MCPROTO_EN},
        {"HD\r\n", MCPROTO_HD},
        {"NS\r\n", MCPROTO_NS},
        {"EX\r\n", MCPROTO_EX},
        {"NF\r\n", MCPROTO_NF},
        {"MN\r\n", MCPROTO_MN},
        {"ERROR\r\n", MCPROTO_ERROR},
        /* return flags (c, k, O, b ...) are skipped; a trailing space is harmless */
        {"HD c123 Oabc\r\n", MCPROTO_HD},
        {"NS kfoo\r\n", MCPROTO_NS},
        {"EN Oq1\r\n", MCPROTO_EN},
        {"HD \r\n", MCPROTO_HD},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(parse_meta(cases[i].text, &r) == (ssize_t)strlen(cases[i].text), "'%s'",
                      cases[i].text);
        ck_assert_int_eq(r.type, cases[i].type);
    }
    ck_assert_str_eq(mcproto_reply_name(MCPROTO_VA), "VA");
    ck_assert_str_eq(mcproto_reply_name(MCPROTO_NS), "NS");
    ck_assert_str_eq(mcproto_reply_name(MCPROTO_MN), "MN");
}
END_TEST

/* Error lines as memcached 1.6.18 sends them to meta commands. */
START_TEST(test_meta_errors)
{
    struct mcproto_reply r;
    /* mg of a 300-byte key */
    ck_assert_int_eq(parse_meta("CLIENT_ERROR bad command line format\r\n", &r), 38);
    ck_assert_int_eq(r.type, MCPROTO_CLIENT_ERROR);
    ck_assert_int_eq((int)r.msg_len, 23);
    ck_assert(memcmp(r.msg, "bad command line format", 23) == 0);
    /* ms of a value over -I */
    ck_assert_int_eq(parse_meta("SERVER_ERROR object too large for cache\r\n", &r), 41);
    ck_assert_int_eq(r.type, MCPROTO_SERVER_ERROR);
    ck_assert_int_eq((int)r.msg_len, 26);
    ck_assert(memcmp(r.msg, "object too large for cache", 26) == 0);
    ck_assert_int_eq(parse_meta("SERVER_ERROR\r\n", &r), 14);
    ck_assert_int_eq(r.type, MCPROTO_SERVER_ERROR);
    ck_assert_int_eq((int)r.msg_len, 0);
}
END_TEST

/* A quiet batch: hits name their key, misses are silent, MN ends it. */
START_TEST(test_meta_quiet_batch)
{
    struct mcproto_reply r;
    const char *s = "VA 5 f1 ktcb:1\r\nhello\r\n"
                    "CLIENT_ERROR bad command line format\r\n"
                    "VA 3 f2 ktcb:7\r\nabc\r\n"
                    "MN\r\n";
    size_t len = strlen(s), off = 0;
    ssize_t n = mcproto_parse_meta_reply(s, len, &r);
    ck_assert_int_eq(n, 23);
    ck_assert_int_eq(r.type, MCPROTO_VA);
    ck_assert(r.key_len == 5 && memcmp(r.key, "tcb:1", 5) == 0);
    off += (size_t)n;
    n = mcproto_parse_meta_reply(s + off, len - off, &r);
    ck_assert_int_eq(r.type, MCPROTO_CLIENT_ERROR);
    off += (size_t)n;
    n = mcproto_parse_meta_reply(s + off, len - off, &r);
    ck_assert_int_eq(r.type, MCPROTO_VA);
    ck_assert(r.key_len == 5 && memcmp(r.key, "tcb:7", 5) == 0);
    ck_assert_uint_eq(r.flags, 2);
    ck_assert(r.data_len == 3 && memcmp(r.data, "abc", 3) == 0);
    off += (size_t)n;
    n = mcproto_parse_meta_reply(s + off, len - off, &r);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(r.type, MCPROTO_MN);
    ck_assert_uint_eq(off + (size_t)n, len);
    /* an empty batch (every key missed) is MN alone */
    ck_assert_int_eq(parse_meta("MN\r\n", &r), 4);
    ck_assert_int_eq(r.type, MCPROTO_MN);
}
END_TEST

/*
 * Parse a stream as a connection would, with the bytes arriving in two
 * reads split at `cut` (each read's bytes in a buffer of their exact size,
 * so a parser that looked past the end would show under ASan). Appends
 * "<type>:<data>|" per reply to out.
 */
static void parse_stream(const char *s, size_t len, size_t cut, char *out, size_t cap)
{
    struct mcproto_reply r;
    size_t consumed = 0, avail = cut;
    out[0] = '\0';
    for (int read_no = 0; read_no < 2; read_no++) {
        for (;;) {
            size_t n = avail - consumed;
            char *copy = malloc(n + 1);
            memcpy(copy, s + consumed, n);
            ssize_t used = mcproto_parse_meta_reply(copy, n, &r);
            ck_assert_msg(used >= 0, "cut %zu at %zu: rejected", cut, consumed);
            if (used > 0) {
                size_t l = strlen(out);
                snprintf(out + l, cap - l, "%s:%.*s|", mcproto_reply_name(r.type), (int)r.data_len,
                         r.data != NULL ? r.data : "");
                consumed += (size_t)used;
            }
            free(copy);
            if (used == 0 || consumed == avail)
                break;
        }
        avail = len;
    }
    ck_assert_msg(consumed == len, "cut %zu: %zu of %zu bytes consumed", cut, consumed, len);
}

/* Every reply, split at every byte: the same replies, never an error or a partial one. */
START_TEST(test_meta_split_everywhere)
{
    const char *s = "VA 5 f42\r\nhe\r\nl\r\n"
                    "EN\r\n"
                    "HD\r\n"
                    "NS\r\n"
                    "EX\r\n"
                    "NF\r\n"
                    "VA 3 f7 ktcb:99\r\nabc\r\n"
                    "CLIENT_ERROR bad command line format\r\n"
                    "SERVER_ERROR out of memory\r\n"
                    "ERROR\r\n"
                    "HD c12\r\n"
                    "MN\r\n";
    size_t len = strlen(s);
    char whole[1024], split[1024];
    parse_stream(s, len, len, whole, sizeof(whole));
    ck_assert_str_eq(whole, "VA:he\r\nl|EN:|HD:|NS:|EX:|NF:|VA:abc|CLIENT_ERROR:|SERVER_ERROR:|"
                            "ERROR:|HD:|MN:|");
    for (size_t cut = 0; cut <= len; cut++) {
        parse_stream(s, len, cut, split, sizeof(split));
        ck_assert_msg(strcmp(split, whole) == 0, "cut %zu: %s", cut, split);
    }
}
END_TEST

/* A large value: every prefix is "need more", the whole is one reply. */
START_TEST(test_meta_large_value)
{
    struct mcproto_reply r;
    size_t vlen = 1 << 20;
    char *s = malloc(vlen + 64);
    int h = snprintf(s, 64, "VA %zu f3 kbig\r\n", vlen);
    memset(s + h, 'v', vlen);
    memcpy(s + h + vlen, "\r\nMN\r\n", 6);
    size_t total = (size_t)h + vlen + 2;
    for (size_t n = 0; n < total; n += n < 64 ? 1 : 4093)
        ck_assert_int_eq(mcproto_parse_meta_reply(s, n, &r), 0);
    ck_assert_int_eq(mcproto_parse_meta_reply(s, total - 1, &r), 0);
    ck_assert_int_eq(mcproto_parse_meta_reply(s, total + 4, &r), (ssize_t)total);
    ck_assert_int_eq(r.type, MCPROTO_VA);
    ck_assert_int_eq((int)r.data_len, (int)vlen);
    ck_assert_int_eq(mcproto_parse_meta_reply(s + total, 4, &r), 4);
    ck_assert_int_eq(r.type, MCPROTO_MN);
    free(s);
}
END_TEST

START_TEST(test_meta_malformed)
{
    struct mcproto_reply r;
    static const char *const bad[] = {
        "VA\r\n",
        "VA \r\n",
        "VA x f1\r\n",
        "VA -1 f1\r\n",
        "VA +1 f1\r\n",
        "VA 1 fx\r\na\r\n",
        "VA 1 f\r\na\r\n",
        "VA 1 k\r\na\r\n",
        "VA 1 1\r\na\r\n",
        "VA 2 f1\r\nabXY",
        "VA 1 f-1\r\na\r\n",
        "HDX\r\n",
        "HD 5\r\n",
        "ENX\r\n",
        "EN\n",
        "MN c1\r\n",
        "MNX\r\n",
        "hd\r\n",
        "\r\n",
        "END\r\n",
        "STORED\r\n",
        "NOT_FOUND\r\n",
        "VALUE k 1 2\r\nab\r\n",
        "SERVER_ERRORx\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse_meta(bad[i], &r) == -1, "'%s' was not rejected", bad[i]);
    /* and the classic parser takes no meta reply */
    static const char *const meta_only[] = {"HD\r\n", "EN\r\n", "MN\r\n", "NS\r\n",
                                            "VA 1 f1\r\na\r\n"};
    for (size_t i = 0; i < sizeof(meta_only) / sizeof(meta_only[0]); i++)
        ck_assert_msg(parse(meta_only[i], &r) == -1, "classic took '%s'", meta_only[i]);
    /* a line that never ends is malformed once it passes the longest line */
    char *junk = malloc(MCPROTO_MAX_LINE);
    memcpy(junk, "VA 1 ", 5);
    memset(junk + 5, 'k', MCPROTO_MAX_LINE - 5);
    ck_assert_int_eq(mcproto_parse_meta_reply(junk, MCPROTO_MAX_LINE, &r), -1);
    ck_assert_int_eq(mcproto_parse_meta_reply(junk, MCPROTO_MAX_LINE - 1, &r), 0);
    free(junk);
}
END_TEST

START_TEST(test_meta_encoders)
{
    struct buf b;
    buf_init(&b);
    mcproto_meta_get(&b, "tcb:1", 5, false);
    mcproto_meta_get(&b, "a", 1, true);
    mcproto_meta_get(&b, "bc", 2, true);
    mcproto_meta_noop(&b);
    char *v = mcproto_meta_begin_set(&b, "key", 3, 4294967295u, 60, 3);
    memcpy(v, "xyz", 3);
    v = mcproto_meta_begin_set(&b, "k", 1, 0, 0, 0);
    const char *want = "mg tcb:1 v f\r\n"
                       "mg a v f q k\r\nmg bc v f q k\r\nmn\r\n"
                       "ms key 3 F4294967295 T60\r\nxyz\r\n"
                       "ms k 0 F0 T0\r\n\r\n";
    ck_assert_int_eq((int)buf_pending(&b), (int)strlen(want));
    ck_assert(memcmp(b.data + b.off, want, strlen(want)) == 0);
    buf_consume(&b, buf_pending(&b));
    /* a large value grows the buffer */
    v = mcproto_meta_begin_set(&b, "k", 1, 0, 0, 1 << 20);
    memset(v, 'q', 1 << 20);
    ck_assert_int_eq((int)buf_pending(&b), (int)strlen("ms k 1048576 F0 T0\r\n") + (1 << 20) + 2);
    ck_assert(memcmp(b.data + b.off + buf_pending(&b) - 3, "q\r\n", 3) == 0);
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
    TCase *tm = tcase_create("meta");
    tcase_add_test(tm, test_meta_value);
    tcase_add_test(tm, test_meta_status_replies);
    tcase_add_test(tm, test_meta_errors);
    tcase_add_test(tm, test_meta_quiet_batch);
    tcase_add_test(tm, test_meta_split_everywhere);
    tcase_add_test(tm, test_meta_large_value);
    tcase_add_test(tm, test_meta_malformed);
    tcase_add_test(tm, test_meta_encoders);
    suite_add_tcase(s, tm);
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
