/*
 * check_bench_dist.c: which server tiercache-bench sends a key to
 * (tools/bench/dist.c, md5.c).
 *
 *   md5        RFC 1321's test suite, and inputs around the one-block /
 *              two-block boundary (55, 56, 64 bytes);
 *   vectors    the ketama ring against twemproxy itself: for each server
 *              list below, which server owned keys 0..63 was recorded from
 *              nutcracker 0.5.0 (Debian 12; `distribution: ketama`,
 *              `hash: md5`) in front of memcached backends, by setting the
 *              keys through the proxy and asking every backend which keys
 *              it holds (tests/bench/ketama_vectors.py does it again).
 *              libmemcached 1.1.4's memcached_generate_hash() with
 *              MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED gives the same owners
 *              (checked by hand; the script can do it too);
 *   points     160 points per server, except where the float formula that
 *              both compute rounds below 40 hashes (25, 47, 50, 55, 61
 *              servers: 156 each, as in both of them);
 *   consistent removing a server moves only its own keys; three servers
 *              share keys evenly;
 *   names      HOST:PORT=NAME, and the name ketama hashes when none is
 *              given (HOST, or HOST:PORT when the port is not 11211).
 *
 * Every address below is numeric, so resolving it needs no network, and
 * nothing connects anywhere.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "md5.h"

static struct dist d; /* 80 KB of ring: not on the stack */

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

START_TEST(test_md5_rfc1321)
{
    static const char *const cases[][2] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
         "0",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t dg[16];
        char got[33];
        md5_digest(cases[i][0], strlen(cases[i][0]), dg);
        hex(dg, 16, got);
        ck_assert_msg(strcmp(got, cases[i][1]) == 0, "MD5(\"%s\") = %s, want %s", cases[i][0], got,
                      cases[i][1]);
    }
    /* 55, 56 and 64 'x': the padding fits in the block, or takes a second one */
    static const struct {
        size_t n;
        const char *want;
    } runs[] = {{55, "04364420e25c512fd958a70738aa8f72"},
                {56, "668a72d5ba17f08e62dabcafad6db14b"},
                {64, "c1bb4f81d892b2d57947682aeb252456"}};
    char x[64];
    memset(x, 'x', sizeof(x));
    for (size_t i = 0; i < 3; i++) {
        uint8_t dg[16];
        char got[33];
        md5_digest(x, runs[i].n, dg);
        hex(dg, 16, got);
        ck_assert_msg(strcmp(got, runs[i].want) == 0, "MD5 of %zu x: %s", runs[i].n, got);
    }
    /* twemproxy's hash md5: the digest's first four bytes, little-endian */
    ck_assert_uint_eq(dist_md5_hash("a", 1), 0xb975c10cu);
}
END_TEST

/* Server lists, key prefixes, and the owner of keys <prefix>0 .. <prefix>63 per nutcracker
 * (one base-36 digit per key: the server's position in the list). */
static const struct {
    const char *servers;
    const char *prefix;
    const char *owners;
} vectors[] = {
    {"10.0.1.1:11211,10.0.1.2:11211,10.0.1.3:11211",
     "tcb:", "1200020022222002202200200211100120111001010200121000202002211001"},
    {"10.0.1.1:22122,10.0.1.2:22122,10.0.1.3:22123",
     "tcb:", "0100212121120010111122121220202222021000011012201010102101221102"},
    {"127.0.0.1:1=cache-a,127.0.0.1:2=cache-b,127.0.0.1:3=cache-c,127.0.0.1:4=cache-d,"
     "127.0.0.1:5=cache-e",
     "user:session:0123456789abcdef0123456789abcdef0123456789abcdef:",
     "2201033430042014033113322224340242301021213001404121303031413321"},
    {"192.168.0.10,192.168.0.11", "k",
     "0010010110001000001001000100001111000000110100101001000111111001"},
    {"10.0.2.1,10.0.2.2,10.0.2.3,10.0.2.4,10.0.2.5,10.0.2.6,10.0.2.7,10.0.2.8,10.0.2.9,"
     "10.0.2.10,10.0.2.11,10.0.2.12,10.0.2.13,10.0.2.14,10.0.2.15,10.0.2.16,10.0.2.17,"
     "10.0.2.18,10.0.2.19,10.0.2.20,10.0.2.21,10.0.2.22,10.0.2.23,10.0.2.24,10.0.2.25",
     "tcb:", "2n52kb1lmeo0o7gmli604ik8l138fn7ochgk856k70gmmkhi35lmoani2m6kohf9"},
};

START_TEST(test_ketama_vectors)
{
    char err[256];
    for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
        dist_init(&d, DIST_KETAMA);
        ck_assert_msg(dist_add(&d, vectors[v].servers, err, sizeof(err)) == TC_OK, "%s", err);
        for (int i = 0; i < 64; i++) {
            char key[300];
            int n = snprintf(key, sizeof(key), "%s%d", vectors[v].prefix, i);
            char c = vectors[v].owners[i];
            unsigned want = c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
            unsigned got = dist_pick(&d, key, (size_t)n);
            ck_assert_msg(got == want, "list %zu, key %s: server %u (%s), twemproxy chose %u (%s)",
                          v, key, got, d.servers[got].name, want, d.servers[want].name);
        }
    }
}
END_TEST

START_TEST(test_ketama_points)
{
    char err[256], spec[32];
    dist_init(&d, DIST_KETAMA);
    for (unsigned n = 1; n <= DIST_MAX_SERVERS; n++) {
        snprintf(spec, sizeof(spec), "10.1.%u.%u:%u", n / 200, n % 200 + 1, 20000 + n);
        ck_assert_msg(dist_add(&d, spec, err, sizeof(err)) == TC_OK, "%s", err);
        bool short_ring = n == 25 || n == 47 || n == 50 || n == 55 || n == 61;
        ck_assert_msg(d.npoints == n * (short_ring ? 156 : 160), "%u servers: %u points", n,
                      d.npoints);
        for (unsigned i = 1; i < d.npoints; i++)
            ck_assert(d.ring[i - 1].value <= d.ring[i].value);
    }
    ck_assert_msg(dist_add(&d, "10.2.0.1", err, sizeof(err)) == TC_INVALID, "65 servers taken");
    /* modula needs no ring; back to ketama builds it again */
    dist_set_mode(&d, DIST_MODULA);
    ck_assert_uint_eq(d.npoints, 0);
    dist_set_mode(&d, DIST_KETAMA);
    ck_assert_uint_eq(d.npoints, 64 * 160);
}
END_TEST

START_TEST(test_ketama_consistent)
{
    static struct dist three;
    char err[256], key[32];
    dist_init(&d, DIST_KETAMA);
    ck_assert_int_eq(dist_add(&d, "10.0.1.1,10.0.1.2,10.0.1.3,10.0.1.4", err, sizeof(err)), TC_OK);
    dist_init(&three, DIST_KETAMA);
    ck_assert_int_eq(dist_add(&three, "10.0.1.1,10.0.1.2,10.0.1.4", err, sizeof(err)), TC_OK);
    static const unsigned index_in_three[4] = {0, 1, 99, 2};
    unsigned moved = 0, count[3] = {0};
    for (int i = 0; i < 30000; i++) {
        int n = snprintf(key, sizeof(key), "tcb:%d", i);
        unsigned was = dist_pick(&d, key, (size_t)n), now = dist_pick(&three, key, (size_t)n);
        count[now]++;
        if (was == 2)
            moved++;
        else
            ck_assert_msg(index_in_three[was] == now, "%s left %s for %s", key, d.servers[was].name,
                          three.servers[now].name);
    }
    ck_assert_msg(moved > 30000 / 4 - 1500 && moved < 30000 / 4 + 1500, "%u keys moved", moved);
    for (int s = 0; s < 3; s++)
        ck_assert_msg(count[s] > 8500 && count[s] < 11500, "server %d got %u of 30000", s,
                      count[s]);
}
END_TEST

START_TEST(test_server_names)
{
    char err[256];
    dist_init(&d, DIST_KETAMA);
    ck_assert_int_eq(dist_add(&d, "127.0.0.1:11211,127.0.0.1:22122,127.0.0.1", err, sizeof(err)),
                     TC_OK);
    ck_assert_int_eq(dist_add(&d, "[::1]:22122,127.0.0.1:5=cache-a:1", err, sizeof(err)), TC_OK);
    ck_assert_uint_eq(d.n, 5);
    ck_assert_str_eq(d.servers[0].ketama_name, "127.0.0.1");
    ck_assert_str_eq(d.servers[1].ketama_name, "127.0.0.1:22122");
    ck_assert_str_eq(d.servers[2].name, "127.0.0.1");
    ck_assert_str_eq(d.servers[2].ketama_name, "127.0.0.1");
    ck_assert_str_eq(d.servers[3].ketama_name, "::1:22122");
    ck_assert_str_eq(d.servers[4].name, "127.0.0.1:5");
    ck_assert_str_eq(d.servers[4].ketama_name, "cache-a:1");
    char longname[DIST_MAX_NAME + 16];
    int n = snprintf(longname, sizeof(longname), "127.0.0.1:1=");
    memset(longname + n, 'n', DIST_MAX_NAME + 1);
    longname[n + DIST_MAX_NAME + 1] = '\0';
    static const char *const bad[] = {"127.0.0.1:1=", "=name", "127.0.0.1:0=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(dist_add(&d, bad[i], err, sizeof(err)) == TC_INVALID, "'%s' taken", bad[i]);
    ck_assert_int_eq(dist_add(&d, longname, err, sizeof(err)), TC_INVALID);
    ck_assert_msg(strstr(err, "NAME") != NULL, "%s", err);
    longname[n + DIST_MAX_NAME] = '\0';
    ck_assert_int_eq(dist_add(&d, longname, err, sizeof(err)), TC_OK);
    ck_assert_uint_eq(d.npoints, 6 * 160);
    /* a key's server depends on the names only, not on the addresses */
    static struct dist other;
    dist_init(&other, DIST_KETAMA);
    ck_assert_int_eq(dist_add(&other, "10.9.9.9:7=cache-a,10.9.9.8:8=cache-b", err, sizeof(err)),
                     TC_OK);
    dist_init(&d, DIST_KETAMA);
    ck_assert_int_eq(dist_add(&d, "127.0.0.1:1=cache-a,127.0.0.1:2=cache-b", err, sizeof(err)),
                     TC_OK);
    for (int i = 0; i < 1000; i++) {
        char key[32];
        int k = snprintf(key, sizeof(key), "tcb:%d", i);
        ck_assert_uint_eq(dist_pick(&d, key, (size_t)k), dist_pick(&other, key, (size_t)k));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_dist");
    TCase *tc = tcase_create("dist");
    tcase_add_test(tc, test_md5_rfc1321);
    tcase_add_test(tc, test_ketama_vectors);
    tcase_add_test(tc, test_ketama_points);
    tcase_add_test(tc, test_ketama_consistent);
    tcase_add_test(tc, test_server_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
