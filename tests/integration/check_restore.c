/*
 * check_restore.c: tiercache-restore on the real binaries (SPEC §6).
 *
 *   into_servers   a dump written with the library (TTLs short and long, one
 *                  record expired, flags, binary and empty values, a few
 *                  hundred bulk records for the pipeline) restored into
 *                  tiercached and into a real memcached: every live record
 *                  reads back with its bytes and flags, the expired one is
 *                  skipped and counted, and each TTL is kept (relative
 *                  under 30 days, absolute beyond, none): memcached's
 *                  through `mg KEY t`, tiercached's (no mg yet) through
 *                  every record's exp= in `lru_crawler metadump all`;
 *   damaged        a byte flipped in record 6 of 10: records 1..5 are
 *                  restored, nothing after, exit 1, the message names
 *                  record 6 (and metadump lists records 1..5 only);
 *   data_dir       --data-dir into a fresh dir, then tiercached on that dir
 *                  serves every item with its TTL; --data-dir on the dir
 *                  that running server holds: exit 1, "is in use";
 *   usage          --help and --version exit 0; no input, a bad option,
 *                  -s with --data-dir exit 2 with one line.
 *
 * No sleeps: expiry is checked by a record that has already expired and by
 * the TTLs the servers report, never by waiting.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tiercache/dump.h>

#include "flash_testlib.h"

#ifndef RESTORE_BIN
#error "RESTORE_BIN must name the tiercache-restore binary"
#endif

#define NBULK 300
#define DAY   86400

struct rec {
    char key[64];
    char *value;
    uint32_t nbytes;
    uint32_t flags;
    uint64_t exptime;
    bool expired; /* written already expired: must be skipped */
};

struct recset {
    struct rec r[NBULK + 16];
    size_t n;
};

static void add(struct recset *s, const char *key, size_t nbytes, uint32_t flags, uint64_t exptime,
                bool expired)
{
    struct rec *r = &s->r[s->n++];
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->value = malloc(nbytes + 1);
    ck_assert_ptr_nonnull(r->value);
    uint64_t h = ft_hash(key, strlen(key));
    for (size_t i = 0; i < nbytes; i++)
        r->value[i] = (char)(ft_mix(h + i) & 0xff); /* binary: \0, \r, \n included */
    r->nbytes = (uint32_t)nbytes;
    r->flags = flags;
    r->exptime = exptime;
    r->expired = expired;
}

static void recset_free(struct recset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].value);
    s->n = 0;
}

/* The standard set: see the top of the file. */
static void make_set(struct recset *s)
{
    uint64_t now = (uint64_t)time(NULL);
    s->n = 0;
    add(s, "plain", 5, 0, 0, false);
    add(s, "flags", 64, 0xdeadbeef, 0, false);
    add(s, "ttl-hour", 10, 7, now + 3600, false);
    add(s, "ttl-40-days", 10, 8, now + 40 * DAY, false);
    add(s, "expired", 10, 9, now - 1, true);
    add(s, "big", 200000, 1, 0, false);
    add(s, "empty", 0, 2, 0, false);
    for (int i = 0; i < NBULK; i++) {
        char k[32];
        snprintf(k, sizeof(k), "bulk:%d", i);
        add(s, k, (size_t)(i * 37 % 3000), (uint32_t)i, i % 2 ? now + 7200 : 0, false);
    }
}

/* Write the set as a dump at path (a file of the test's own). */
static void write_dump(const char *path, const struct recset *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    struct tc_dump_writer *w = NULL;
    ck_assert_int_eq(tc_dump_writer_open(fd, "check_restore", (uint64_t)time(NULL), &w), TC_OK);
    for (size_t i = 0; i < s->n; i++) {
        struct tc_dump_item it = {
            .key = s->r[i].key,
            .nkey = strlen(s->r[i].key),
            .value = s->r[i].value,
            .nbytes = s->r[i].nbytes,
            .flags = s->r[i].flags,
            .exptime = s->r[i].exptime,
            .cas = i + 1,
        };
        ck_assert_int_eq(tc_dump_put(w, &it), TC_OK);
    }
    ck_assert_int_eq(tc_dump_writer_finish(&w), TC_OK);
    ck_assert_int_eq(close(fd), 0);
}

/*
 * Run tiercache-restore with args (NULL-terminated) and standard input from
 * in_path (NULL: /dev/null), stdout and stderr into out (NUL-terminated).
 * Waits at most 60 s (then kills it and fails). Returns the exit code.
 */
static int run_restore_in(const char *const *args, const char *in_path, char *out, size_t cap)
{
    char logp[] = "/tmp/check_restore_out.XXXXXX";
    int lfd = mkstemp(logp);
    ck_assert_int_ge(lfd, 0);
    const char *argv[32] = {RESTORE_BIN};
    size_t n = 1;
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(lfd, STDOUT_FILENO);
        dup2(lfd, STDERR_FILENO);
        int in = open(in_path != NULL ? in_path : "/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, STDIN_FILENO) < 0)
            _exit(126);
        execv(RESTORE_BIN, (char *const *)argv);
        _exit(127);
    }
    int ws = 0;
    long long deadline = ts_now_ms() + 60000;
    pid_t got;
    while ((got = waitpid(pid, &ws, WNOHANG)) == 0 && ts_now_ms() < deadline)
        ft_pause_ms(5);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &ws, 0);
        ck_abort_msg("tiercache-restore did not finish within 60 s");
    }
    ssize_t k = pread(lfd, out, cap - 1, 0);
    out[k > 0 ? k : 0] = '\0';
    close(lfd);
    unlink(logp);
    ck_assert_msg(WIFEXITED(ws), "tiercache-restore died: status 0x%x; output:\n%s", ws, out);
    ck_assert_msg(strstr(out, "Sanitizer") == NULL && strstr(out, "runtime error") == NULL,
                  "tiercache-restore: a sanitizer report:\n%s", out);
    return WEXITSTATUS(ws);
}

static int run_restore(const char *const *args, char *out, size_t cap)
{
    return run_restore_in(args, NULL, out, cap);
}

/* Every record of s reads back as written (live ones) or is absent
 * (expired ones, and those at index >= upto). */
static void check_contents(int port, const struct recset *s, size_t upto)
{
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, port), 0);
    for (size_t i = 0; i < s->n; i++) {
        const struct rec *r = &s->r[i];
        ck_assert_int_eq(ft_sendf(&c, "get %s\r\n", r->key), 0);
        struct ft_value v;
        int got = ft_next_value(&c, &v);
        ck_assert_msg(got >= 0, "get %s: %s", r->key, c.err);
        if (r->expired || i >= upto) {
            ck_assert_msg(got == 0, "%s should be absent", r->key);
            continue;
        }
        ck_assert_msg(got == 1, "%s is missing", r->key);
        ck_assert_uint_eq(v.flags, r->flags);
        ck_assert_uint_eq(v.n, r->nbytes);
        ck_assert_msg(memcmp(v.data, r->value, r->nbytes) == 0, "%s: wrong bytes", r->key);
        ck_assert_int_eq(ft_next_value(&c, &v), 0);
    }
    ft_close(&c);
}

/* The TTL `mg KEY t` reports: -1 for none; LONG_MIN if the server does not
 * know mg (it answers ERROR). */
static long mg_ttl(int port, const char *key)
{
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, port), 0);
    ck_assert_int_eq(ft_sendf(&c, "mg %s t\r\n", key), 0);
    const char *line;
    size_t n;
    ck_assert_int_eq(ft_line(&c, &line, &n), 0);
    char buf[128];
    snprintf(buf, sizeof(buf), "%.*s", (int)n, line);
    ft_close(&c);
    if (strcmp(buf, "ERROR") == 0)
        return LONG_MIN;
    long t;
    ck_assert_msg(sscanf(buf, "HD t%ld", &t) == 1, "mg %s t: \"%s\"", key, buf);
    return t;
}

/* The TTLs came through on memcached: none, relative (an hour), absolute
 * (40 days), as `mg KEY t` reports them. */
static void check_ttls_mg(int port)
{
    long p = mg_ttl(port, "plain");
    ck_assert_msg(p != LONG_MIN, "memcached on port %d does not know mg", port);
    ck_assert_int_eq(p, -1);
    long h = mg_ttl(port, "ttl-hour");
    ck_assert_msg(h > 3600 - 60 && h <= 3600, "ttl-hour: %ld", h);
    long d = mg_ttl(port, "ttl-40-days");
    ck_assert_msg(d > 40 * DAY - 60 && d <= 40 * DAY, "ttl-40-days: %ld", d);
}

/* A key as `lru_crawler metadump` writes it: URL-encoded, only letters,
 * digits and "-._~" as they are (memcached's uriencode). */
static void url_encode(const char *key, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0' && o + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p) != NULL)
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = '\0';
}

/*
 * The TTLs came through on tiercached, which has no mg: every record's
 * exp= in `lru_crawler metadump all` (an absolute unix time, -1 for none)
 * is the one the dump holds, within a couple of seconds (the restore sends
 * the remaining TTL, relative under 30 days). Expired records and those at
 * index >= upto are not listed.
 */
static void check_ttls_metadump(int port, const struct recset *s, size_t upto)
{
    int fd = ts_connect(port);
    ck_assert_msg(fd >= 0, "cannot connect to tiercached on port %d", port);
    const char req[] = "lru_crawler metadump all\r\n";
    ck_assert_int_eq(ts_send_all(fd, req, sizeof(req) - 1), 0);
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    buf[0] = '\n'; /* so that every line, the first too, follows a '\n' */
    ssize_t got = ts_recv_until(fd, buf + 1, cap - 1, "END\r\n", 30000);
    close(fd);
    ck_assert_msg(got > 0, "tiercached on port %d: no complete metadump within 30 s", port);
    for (size_t i = 0; i < s->n; i++) {
        const struct rec *r = &s->r[i];
        char enc[200], needle[220];
        url_encode(r->key, enc, sizeof(enc));
        snprintf(needle, sizeof(needle), "\nkey=%s exp=", enc);
        const char *at = strstr(buf, needle);
        if (r->expired || i >= upto) {
            ck_assert_msg(at == NULL, "%s is listed by metadump but should be absent", r->key);
            continue;
        }
        ck_assert_msg(at != NULL, "%s is not listed by metadump", r->key);
        long long exp;
        ck_assert_msg(sscanf(at + strlen(needle), "%lld", &exp) == 1, "%s: a bad exp=", r->key);
        if (r->exptime == 0) {
            ck_assert_msg(exp == -1, "%s: exp=%lld, want -1 (none)", r->key, exp);
        } else {
            long long want = (long long)r->exptime;
            ck_assert_msg(exp >= want - 2 && exp <= want + 2, "%s: exp=%lld, want %lld (+-2 s)",
                          r->key, exp, want);
        }
    }
    free(buf);
}

static void dump_path(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "/tmp/check_restore.%d.%s.dump", (int)getpid(), what);
}

/* ---------------------------------------------------------------- tests */

START_TEST(into_servers)
{
    static struct recset s;
    make_set(&s);
    char path[128], out[8192], server[64];
    dump_path(path, sizeof(path), "servers");
    write_dump(path, &s);
    char want[128];
    snprintf(want, sizeof(want), "restored %zu, expired 1, failed 0", s.n - 1);

    struct ft_server t;
    ck_assert_int_eq(ft_start(&t, NULL, NULL), 0);
    snprintf(server, sizeof(server), "127.0.0.1:%d", t.ts.port);
    const char *a1[] = {"-s", server, "-i", path, NULL};
    ck_assert_msg(run_restore(a1, out, sizeof(out)) == 0, "into tiercached: %s", out);
    ck_assert_msg(strstr(out, want) != NULL, "into tiercached: %s", out);
    check_contents(t.ts.port, &s, s.n);
    check_ttls_metadump(t.ts.port, &s, s.n);
    ck_assert(ft_exited_zero(ft_stop(&t)));

    struct tserver m;
    ck_assert_int_eq(ts_start_memcached(&m, NULL), 0);
    snprintf(server, sizeof(server), "127.0.0.1:%d", m.port);
    /* From standard input this time, with a tiny window. */
    const char *a2[] = {"-s", server, "--window=3", "-i", "-", NULL};
    ck_assert_msg(run_restore_in(a2, path, out, sizeof(out)) == 0, "into memcached: %s", out);
    ck_assert_msg(strstr(out, want) != NULL, "into memcached: %s", out);
    check_contents(m.port, &s, s.n);
    check_ttls_mg(m.port);
    ts_stop(&m);
    unlink(path);
    recset_free(&s);
}
END_TEST

START_TEST(damaged)
{
    static struct recset s;
    uint64_t now = (uint64_t)time(NULL);
    s.n = 0;
    for (int i = 1; i <= 10; i++) {
        char k[16];
        snprintf(k, sizeof(k), "rec%d", i);
        add(&s, k, 100, (uint32_t)i, i % 2 ? now + 600 : 0, false);
    }
    char path[128], out[8192], server[64];
    dump_path(path, sizeof(path), "damaged");
    write_dump(path, &s);
    /* Flip a byte in the middle of record 6's value. Records are laid out
     * after the header; find record 6 by its key. */
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    ck_assert_int_gt(n, 0);
    char *k6 = memmem(buf, (size_t)n, "rec6", 4);
    ck_assert_ptr_nonnull(k6);
    off_t at = (off_t)(k6 - buf) + 4 + 50;
    buf[at] ^= 0x20;
    ck_assert_int_eq(pwrite(fd, buf + at, 1, at), 1);
    close(fd);

    struct ft_server t;
    ck_assert_int_eq(ft_start(&t, NULL, NULL), 0);
    snprintf(server, sizeof(server), "127.0.0.1:%d", t.ts.port);
    const char *a[] = {"-s", server, "-i", path, NULL};
    ck_assert_int_eq(run_restore(a, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "record 6: checksum mismatch") != NULL, "%s", out);
    ck_assert_msg(strstr(out, path) != NULL, "the message names the file: %s", out);
    ck_assert_msg(strstr(out, "restored 5, expired 0, failed 0") != NULL, "%s", out);
    check_contents(t.ts.port, &s, 5);
    check_ttls_metadump(t.ts.port, &s, 5);
    ck_assert(ft_exited_zero(ft_stop(&t)));
    unlink(path);
    recset_free(&s);
}
END_TEST

START_TEST(data_dir)
{
    static struct recset s;
    make_set(&s);
    char path[128], out[8192], dir[128], opt[160];
    dump_path(path, sizeof(path), "datadir");
    write_dump(path, &s);
    snprintf(dir, sizeof(dir), "/tmp/check_restore.%d.dir", (int)getpid());
    struct ft_server t;
    ft_dir_init(&t, dir);
    snprintf(opt, sizeof(opt), "--data-dir=%s", dir);
    const char *a[] = {opt, "--flash-size=64m", "-i", path, NULL};
    ck_assert_msg(run_restore(a, out, sizeof(out)) == 0, "%s", out);
    char want[128];
    snprintf(want, sizeof(want), "restored %zu, expired 1, failed 0", s.n - 1);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);

    const char *sargs[] = {"--flash-size=64m", NULL};
    ck_assert_int_eq(ft_dir_start(&t, sargs), 0);
    check_contents(t.ts.port, &s, s.n);
    check_ttls_metadump(t.ts.port, &s, s.n);

    /* The running server holds the dir: refused, and the server is unharmed. */
    ck_assert_int_eq(run_restore(a, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, dir) != NULL && strstr(out, "is in use") != NULL, "%s", out);
    check_contents(t.ts.port, &s, s.n);
    ck_assert(ft_exited_zero(ft_signal(&t, SIGTERM, 30000)));
    ft_dir_deinit(&t);
    unlink(path);
    recset_free(&s);
}
END_TEST

START_TEST(usage)
{
    char out[8192];
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(run_restore(help, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "--data-dir") != NULL, "%s", out);
    const char *ver[] = {"--version", NULL};
    ck_assert_int_eq(run_restore(ver, out, sizeof(out)), 0);
    ck_assert_msg(strncmp(out, "tiercache-restore ", 18) == 0, "%s", out);

    const char *cases[][6] = {
        {NULL},
        {"-s", "127.0.0.1:1", NULL},
        {"--bogus", "-i", "x", NULL},
        {"-s", "127.0.0.1:1", "--data-dir=/tmp/x", "-i", "x", NULL},
        {"--window=0", "-i", "x", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(run_restore(cases[i], out, sizeof(out)) == 2, "case %zu: %s", i, out);
        ck_assert_msg(strncmp(out, "tiercache-restore: ", 19) == 0 &&
                          strchr(out, '\n') == out + strlen(out) - 1,
                      "case %zu: not one line: %s", i, out);
    }
    /* Not a dump, and a missing file: runtime failures. */
    const char *missing[] = {"-i", "/nonexistent/dump", NULL};
    ck_assert_int_eq(run_restore(missing, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "/nonexistent/dump") != NULL, "%s", out);
    const char *notdump[] = {"-i", "/etc/hostname", NULL};
    ck_assert_int_eq(run_restore(notdump, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "not a tiercache dump") != NULL, "%s", out);
}
END_TEST

static Suite *restore_suite(void)
{
    Suite *s = suite_create("restore");
    TCase *tc = tcase_create("restore");
    tcase_add_test(tc, into_servers);
    tcase_add_test(tc, damaged);
    tcase_add_test(tc, data_dir);
    tcase_add_test(tc, usage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(restore_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
