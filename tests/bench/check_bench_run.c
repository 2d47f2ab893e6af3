/*
 * check_bench_run.c: tiercache-bench, the built binary, against tiercached
 * on loopback: a 3-second run whose --json line carries every documented
 * field with sane values; a value corrupted behind the bench's back is
 * reported as a wrong value (and exit 1), never as a hit; two servers share
 * the keys, under ketama (the default) and modula alike, and the two
 * distributions place keys differently; the open loop offers exactly its
 * rate; usage errors exit 2 and
 * an unreachable server exits 1 (SPEC §1). --protocol=meta runs against a
 * real memcached (tiercached may not speak meta yet): the same hits and
 * misses as classic, wrong values caught, error replies counted alike.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "testutil.h"
#include "verify.h"

#ifndef TIERCACHE_BENCH_BIN
#define TIERCACHE_BENCH_BIN "tiercache-bench"
#endif

struct result {
    int status;       /* exit status, or -1 if it did not exit normally */
    char out[65536];  /* stdout */
    char err[4096];   /* stderr */
    const char *json; /* the last line of stdout */
};

/* Run the bench with `args` (bounded by timeout(1) as a backstop); fills *r. */
static void bench(struct result *r, const char *args)
{
    char err_path[64], cmd[1024];
    snprintf(err_path, sizeof(err_path), "/tmp/tc-bench-test-%d.err", (int)getpid());
    snprintf(cmd, sizeof(cmd), "timeout 30 %s %s 2>%s", TIERCACHE_BENCH_BIN, args, err_path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(r->out, 1, sizeof(r->out) - 1, p);
    r->out[n] = '\0';
    int st = pclose(p);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    FILE *e = fopen(err_path, "r");
    size_t m = e != NULL ? fread(r->err, 1, sizeof(r->err) - 1, e) : 0;
    r->err[m] = '\0';
    if (e != NULL)
        fclose(e);
    unlink(err_path);
    while (n > 0 && r->out[n - 1] == '\n')
        r->out[--n] = '\0';
    char *last = strrchr(r->out, '\n');
    r->json = last != NULL ? last + 1 : r->out;
}

/* The number after "name": in the JSON text (the first, i.e. top-level, occurrence). */
static double field(const char *json, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", name);
    const char *p = strstr(json, pat);
    ck_assert_msg(p != NULL, "no field %s in %s", name, json);
    char *end;
    double v = strtod(p + strlen(pat), &end);
    ck_assert_msg(end != p + strlen(pat), "field %s is not a number in %s", name, json);
    return v;
}

static struct result res;

START_TEST(test_json_run)
{
    struct tserver s;
    ck_assert_int_eq(ts_start_tiercached(&s, (const char *const[]){"-t", "2", NULL}), 0);
    char args[256];
    snprintf(args, sizeof(args), "-s 127.0.0.1:%d -d 3 --fill -k 20000 -c 4 --json", s.port);
    bench(&res, args);
    ck_assert_int_eq(ts_stop(&s), 0);
    ck_assert_msg(res.status == 0, "exit %d, stderr: %s", res.status, res.err);

    const char *j = res.json;
    ck_assert_msg(j[0] == '{' && j[strlen(j) - 1] == '}', "last line is not an object: %s", j);
    ck_assert(strstr(j, "\"tool\":\"tiercache-bench\"") != NULL);
    ck_assert(strstr(j, "\"phase\":\"run\"") != NULL);
    ck_assert(strstr(j, "\"phase\":\"fill\"") != NULL);
    double secs = field(j, "seconds");
    ck_assert_msg(secs >= 2.9 && secs < 14.0, "seconds %g", secs);
    ck_assert_double_gt(field(j, "ops"), 0);
    ck_assert_double_gt(field(j, "ops_per_sec"), 0);
    ck_assert_double_gt(field(j, "gets"), 0);
    ck_assert_double_gt(field(j, "sets"), 0);
    /* 20000 values of 100 bytes fit in 64 MB: after --fill every get hits */
    ck_assert_msg(field(j, "hit_ratio") >= 0.99, "hit ratio %g", field(j, "hit_ratio"));
    ck_assert_double_eq(field(j, "wrong_values"), 0);
    ck_assert_double_eq(field(j, "errors"), 0);
    double p50 = field(j, "p50_us"), p90 = field(j, "p90_us"), p99 = field(j, "p99_us");
    double p999 = field(j, "p999_us"), max = field(j, "max_us");
    ck_assert_double_gt(p50, 0);
    ck_assert(p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max);
    ck_assert(field(j, "client_cpu_pct") >= 0);
    /* the human table came first */
    ck_assert(strstr(res.out, "p99 us") != NULL);
}
END_TEST

/* Store bytes the bench did not write; it must call them wrong, not a hit. */
START_TEST(test_wrong_value_is_reported)
{
    struct tserver s;
    ck_assert_int_eq(ts_start_tiercached(&s, NULL), 0);
    int fd = ts_connect(s.port);
    ck_assert_int_ge(fd, 0);
    char reply[256], req[512];
    /* tcb:3: 50 bytes of junk under a plausible version */
    snprintf(req, sizeof(req), "set tcb:3 7 0 50\r\n%050d\r\n", 0);
    ck_assert_int_gt(ts_request(fd, req, reply, sizeof(reply), "\r\n"), 0);
    ck_assert_str_eq(reply, "STORED\r\n");
    /* tcb:4: a correct value, made by the bench's own verifier */
    struct verify_pool *pool = NULL;
    ck_assert_int_eq(verify_create(&pool), TC_OK);
    int n = snprintf(req, sizeof(req), "set tcb:4 99 0 60\r\n");
    verify_fill(pool, "tcb:4", 5, 99, req + n, 60);
    memcpy(req + n + 60, "\r\n", 3);
    verify_destroy(&pool);
    ck_assert_int_gt(ts_request(fd, req, reply, sizeof(reply), "\r\n"), 0);
    ck_assert_str_eq(reply, "STORED\r\n");
    close(fd);

    char args[256];
    snprintf(args, sizeof(args),
             "-s 127.0.0.1:%d -k 10 --key-pattern=sequential -r 1:0 -n 10 -c 1 -q --json", s.port);
    bench(&res, args);
    ck_assert_int_eq(ts_stop(&s), 0);
    ck_assert_msg(res.status == 1, "exit %d (want 1), stderr: %s", res.status, res.err);
    ck_assert_double_eq(field(res.json, "wrong_values"), 1);
    ck_assert_double_eq(field(res.json, "hits"), 1);
    ck_assert_double_eq(field(res.json, "misses"), 8);
    ck_assert_msg(strstr(res.err, "wrong value for key tcb:3") != NULL, "stderr: %s", res.err);
}
END_TEST

/*
 * Both distributions: the keys are shared, every get finds its key. The
 * default is ketama; a second run with the other distribution then
 * misses the keys it places elsewhere (about half), which shows the two
 * really differ.
 */
START_TEST(test_two_servers_share_keys)
{
    static const char *const modes[] = {"", "--distribution=modula"};
    for (int m = 0; m < 2; m++) {
        struct tserver a, b;
        ck_assert_int_eq(ts_start_tiercached(&a, NULL), 0);
        ck_assert_int_eq(ts_start_tiercached(&b, NULL), 0);
        char args[256];
        snprintf(args, sizeof(args),
                 "-s 127.0.0.1:%d -s 127.0.0.1:%d %s -d 1 --fill -k 2000 --multiget 10 -q --json",
                 a.port, b.port, modes[m]);
        bench(&res, args);
        long long items_a = ts_stat(a.port, "stats", "curr_items");
        long long items_b = ts_stat(b.port, "stats", "curr_items");
        ck_assert_msg(res.status == 0, "%s: exit %d, stderr: %s", modes[m], res.status, res.err);
        ck_assert(strstr(res.json, "\"servers\":[\"127.0.0.1:") != NULL);
        ck_assert(strstr(res.json, m == 0 ? "\"distribution\":\"ketama\""
                                          : "\"distribution\":\"modula\"") != NULL);
        ck_assert_int_eq(items_a + items_b, 2000);
        ck_assert_msg(items_a > 700 && items_b > 700, "%s: items %lld / %lld", modes[m], items_a,
                      items_b);
        ck_assert_msg(field(res.json, "hit_ratio") >= 0.99, "%s", res.json);
        ck_assert_double_eq(field(res.json, "wrong_values"), 0);
        snprintf(args, sizeof(args),
                 "-s 127.0.0.1:%d -s 127.0.0.1:%d --distribution=%s -k 2000 "
                 "--key-pattern=sequential -r 1:0 -n 2000 -c 1 -q --json",
                 a.port, b.port, m == 0 ? "modula" : "ketama");
        bench(&res, args);
        ck_assert_int_eq(ts_stop(&a), 0);
        ck_assert_int_eq(ts_stop(&b), 0);
        ck_assert_msg(res.status == 0, "exit %d, stderr: %s", res.status, res.err);
        double hits = field(res.json, "hits");
        ck_assert_msg(hits > 600 && hits < 1400, "the other distribution found %g of 2000", hits);
    }
}
END_TEST

/* Open loop: every scheduled send before the end is either made or counted unsent. */
START_TEST(test_open_loop_rate)
{
    struct tserver s;
    ck_assert_int_eq(ts_start_tiercached(&s, NULL), 0);
    char args[256];
    snprintf(args, sizeof(args), "-s 127.0.0.1:%d -d 1 -R 2000 -c 4 -q --json", s.port);
    bench(&res, args);
    ck_assert_int_eq(ts_stop(&s), 0);
    ck_assert_msg(res.status == 0, "exit %d, stderr: %s", res.status, res.err);
    ck_assert(strstr(res.json, "\"mode\":\"open\"") != NULL);
    double sent = field(res.json, "ops") + field(res.json, "unsent");
    ck_assert_msg(sent >= 1996 && sent <= 2004, "%g operations scheduled in 1 s at 2000/s", sent);
    ck_assert(field(res.json, "send_lag_p50_us") >= 0);
}
END_TEST

/* --- --protocol=meta, against memcached ------------------------------------------- */

/* hits, misses, errors and wrong values of a --json line, as "h/m/e/w". */
static void counts(const char *json, char *out, size_t len)
{
    snprintf(out, len, "%.0f/%.0f/%.0f/%.0f", field(json, "hits"), field(json, "misses"),
             field(json, "errors"), field(json, "wrong_values"));
}

/*
 * Keys 0..999 stored (by ms), then every key of 0..1999 asked once: 1000
 * hits and 1000 misses in both protocols, single gets and multi-gets of 10
 * split over two servers (so some parts are quiet batches of one key).
 */
START_TEST(test_meta_counts_like_classic)
{
    struct tserver a, b;
    ck_assert_int_eq(ts_start_memcached(&a, NULL), 0);
    ck_assert_int_eq(ts_start_memcached(&b, NULL), 0);
    char args[512], got[64];
    snprintf(args, sizeof(args),
             "-s 127.0.0.1:%d -s 127.0.0.1:%d --protocol=meta --fill -k 1000 -r 0:1 -n 1 -q --json",
             a.port, b.port);
    bench(&res, args);
    ck_assert_msg(res.status == 0, "fill: exit %d, stderr: %s", res.status, res.err);
    ck_assert(strstr(res.json, "\"protocol\":\"meta\"") != NULL);
    long long items =
        ts_stat(a.port, "stats", "curr_items") + ts_stat(b.port, "stats", "curr_items");
    ck_assert_int_eq(items, 1000);
    static const char *const runs[] = {"--protocol=meta -n 2000", "--protocol=classic -n 2000",
                                       "--protocol=meta --multiget=10 -n 200",
                                       "--protocol=classic --multiget=10 -n 200",
                                       "--protocol=meta --multiget=10 -n 200 -P 8 -c 2 -t 2"};
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        snprintf(args, sizeof(args),
                 "-s 127.0.0.1:%d -s 127.0.0.1:%d -k 2000 --key-pattern=sequential -r 1:0 %s -q "
                 "--json",
                 a.port, b.port, runs[i]);
        bench(&res, args);
        ck_assert_msg(res.status == 0, "%s: exit %d, stderr: %s", runs[i], res.status, res.err);
        counts(res.json, got, sizeof(got));
        ck_assert_msg(strcmp(got, "1000/1000/0/0") == 0, "%s: hits/misses/errors/wrong %s", runs[i],
                      got);
    }
    ck_assert_int_eq(ts_stop(&a), 0);
    ck_assert_int_eq(ts_stop(&b), 0);
}
END_TEST

/* A VA whose bytes or flags were not written by the bench is wrong, never a hit. */
START_TEST(test_meta_wrong_value_is_reported)
{
    struct tserver s;
    ck_assert_int_eq(ts_start_memcached(&s, NULL), 0);
    int fd = ts_connect(s.port);
    ck_assert_int_ge(fd, 0);
    char reply[256], req[512];
    snprintf(req, sizeof(req), "set tcb:3 7 0 50\r\n%050d\r\n", 0);
    ck_assert_int_gt(ts_request(fd, req, reply, sizeof(reply), "\r\n"), 0);
    ck_assert_str_eq(reply, "STORED\r\n");
    struct verify_pool *pool = NULL;
    ck_assert_int_eq(verify_create(&pool), TC_OK);
    int n = snprintf(req, sizeof(req), "set tcb:4 99 0 60\r\n");
    verify_fill(pool, "tcb:4", 5, 99, req + n, 60);
    memcpy(req + n + 60, "\r\n", 3);
    /* tcb:5: the right bytes under the wrong flags */
    int m = snprintf(req + n + 62, sizeof(req) - (size_t)n - 62, "set tcb:5 98 0 60\r\n");
    verify_fill(pool, "tcb:5", 5, 99, req + n + 62 + m, 60);
    memcpy(req + n + 62 + m + 60, "\r\n", 3);
    verify_destroy(&pool);
    ck_assert_int_gt(ts_request(fd, req, reply, sizeof(reply), "STORED\r\nSTORED\r\n"), 0);
    close(fd);

    static const char *const shapes[] = {"-n 10", "--multiget=5 -n 2", "--multiget=10 -n 1"};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        char args[256], got[64];
        snprintf(args, sizeof(args),
                 "-s 127.0.0.1:%d --protocol=meta -k 10 --key-pattern=sequential -r 1:0 %s -c 1 "
                 "-q --json",
                 s.port, shapes[i]);
        bench(&res, args);
        ck_assert_msg(res.status == 1, "%s: exit %d (want 1), stderr: %s", shapes[i], res.status,
                      res.err);
        counts(res.json, got, sizeof(got));
        ck_assert_msg(strcmp(got, "1/7/0/2") == 0, "%s: hits/misses/errors/wrong %s", shapes[i],
                      got);
        ck_assert_msg(strstr(res.err, "wrong value for key tcb:3") != NULL, "stderr: %s", res.err);
        ck_assert_msg(strstr(res.err, "wrong value for key tcb:5") != NULL, "stderr: %s", res.err);
    }
    ck_assert_int_eq(ts_stop(&s), 0);
}
END_TEST

/* memcached refuses a value over -I with SERVER_ERROR: an error, in either protocol. */
START_TEST(test_meta_error_replies)
{
    struct tserver s;
    ck_assert_int_eq(ts_start_memcached(&s, NULL), 0);
    for (int meta = 0; meta < 2; meta++) {
        char args[256], got[64];
        snprintf(args, sizeof(args),
                 "-s 127.0.0.1:%d --protocol=%s -r 0:1 -n 4 -c 1 --value-size=2m -q --json", s.port,
                 meta ? "meta" : "classic");
        bench(&res, args);
        ck_assert_msg(res.status == 0, "exit %d, stderr: %s", res.status, res.err);
        counts(res.json, got, sizeof(got));
        ck_assert_msg(strcmp(got, "0/0/4/0") == 0, "hits/misses/errors/wrong %s", got);
        ck_assert(strstr(res.err, "error reply 'SERVER_ERROR object too large") != NULL);
    }
    ck_assert_int_eq(ts_stop(&s), 0);
}
END_TEST

START_TEST(test_usage_and_failures)
{
    bench(&res, "--help");
    ck_assert_int_eq(res.status, 0);
    ck_assert(strstr(res.out, "Usage: tiercache-bench") != NULL);
    ck_assert(strstr(res.out, "--duration=SECONDS") != NULL);
    bench(&res, "--version");
    ck_assert_int_eq(res.status, 0);
    ck_assert(strncmp(res.out, "tiercache-bench ", 16) == 0);

    static const char *const bad[] = {"--bogus",
                                      "-d abc",
                                      "--value-size=0",
                                      "--ratio=0:0",
                                      "-s host:0",
                                      "--key-pattern=x",
                                      "--multiget=1000",
                                      "extra-argument",
                                      "-t 0",
                                      "--protocol=binary",
                                      "--distribution=random",
                                      "-s 127.0.0.1:1="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bench(&res, bad[i]);
        ck_assert_msg(res.status == 2, "'%s': exit %d", bad[i], res.status);
        size_t len = strlen(res.err);
        ck_assert_msg(len > 0 && strchr(res.err, '\n') == res.err + len - 1,
                      "'%s': stderr is not one line: %s", bad[i], res.err);
    }

    /* a port nobody listens on: bind one, close it, connect there */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    char args[64];
    snprintf(args, sizeof(args), "-s 127.0.0.1:%d -d 1", ntohs(sa.sin_port));
    bench(&res, args);
    ck_assert_int_eq(res.status, 1);
    ck_assert_msg(strstr(res.err, "cannot connect") != NULL, "stderr: %s", res.err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_run");
    TCase *tc = tcase_create("run");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_json_run);
    tcase_add_test(tc, test_wrong_value_is_reported);
    tcase_add_test(tc, test_two_servers_share_keys);
    tcase_add_test(tc, test_open_loop_rate);
    tcase_add_test(tc, test_usage_and_failures);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("meta");
    tcase_set_timeout(tm, 30);
    tcase_add_test(tm, test_meta_counts_like_classic);
    tcase_add_test(tm, test_meta_wrong_value_is_reported);
    tcase_add_test(tm, test_meta_error_replies);
    suite_add_tcase(s, tm);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
