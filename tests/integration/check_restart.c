/*
 * check_restart.c: warm restart (SPEC §5) on the real binary: what a
 * graceful stop (SIGTERM) or a crash (SIGKILL) leaves for the next start on
 * the same data dir.
 *
 *   round_trip        -m 8 and far more data (TC_RESTART_ITEMS, default
 *                     60000 items of several sizes, flags and expiries):
 *                     after SIGTERM (exit 0) and a restart every key reads
 *                     back with identical bytes, flags and CAS, from the
 *                     very first request; the log says the stop was clean
 *                     and the filter was not rebuilt; stats count every item
 *                     on flash; a new CAS is none of the old ones;
 *   flush             flush_all survives a restart: after SIGTERM, after
 *                     SIGKILL once the flush is known to be on flash, and a
 *                     delayed `flush_all N` pending across a graceful stop
 *                     and across a crash takes effect at its time;
 *   delete_overwrite  deletes and overwrites survive SIGTERM, and SIGKILL
 *                     once the writer has committed them: never the old
 *                     value back; untouched flash items survive the crash;
 *   expired_while_down items that expire while the server is down are
 *                     misses afterwards; longer ones keep their original
 *                     expiry (neither lost nor re-based on the restart);
 *   locked            a second tiercached on the same data dir exits 1 with
 *                     a message, and the first one keeps serving;
 *   damaged           data.mdb truncated, garbage, empty, a foreign LMDB
 *                     environment, a state record or a batch with a byte
 *                     flipped: the server moves the dir aside to
 *                     DIR.corrupt-<unixtime> (log line), starts empty,
 *                     serves, exits 0; a truncated or bit-flipped
 *                     filter.snap: the data is kept and every key is
 *                     still served (the filter is rebuilt);
 *   options_changed   a smaller -m; a smaller -I (big flash items are still
 *                     served, big sets are refused as memcached refuses
 *                     them); a --flash-size below the data (the file is
 *                     shrunk into the budget, the newest items stay, no
 *                     wrong value); a larger --flash-size.
 *
 * "Known to be on flash" (before a SIGKILL): every delete, and every
 * overwrite of a key that may be on flash, queues a flash delete whose
 * carrier (a tombstone or an unlinked heap item) lives until the writer has
 * committed it; a flush or a delayed flush is saved by the first commit
 * that starts after it. So after the last such change a "marker" change of
 * a flash-resident key is made, and the test waits until `stats tiers`
 * shows writer_queue_ops 0 and heap_items 0 in the same snapshot: the
 * marker's transaction, and every one before it, has committed.
 * (writer_queue_ops alone is not enough: the writer takes its batch off the
 * queue before it commits it.)
 *
 * Servers run with -v (the info log lines are checked) on data dirs of
 * their own under /tmp, removed at the end. A guard process per server
 * start kills the server and removes its data dirs if the test dies.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flash_testlib.h"

#define STOP_MS   60000 /* a graceful stop writes RAM to flash: slow under ASan */
#define BATCH     50    /* keys per pipelined batch */
#define SHOW_MAX  5     /* mismatches printed per check */
#define DRAIN_MS  30000 /* waiting for the writer to commit */
#define FLASH_BIG "--flash-size=512m"

/* ---------------------------------------------------------------- servers */

/*
 * A server on a data dir of the test's own (flash_testlib's ft_dir_*: its
 * guard is re-armed for every new server process, and removes the dir's
 * ".corrupt-*" siblings too). The wrappers below add -v to every start and
 * turn failures into test failures.
 */

/* "-v" and the caller's options (NULL-terminated). */
static void build_args(const char **argv, size_t cap, const char *const *opts)
{
    size_t n = 0;
    argv[n++] = "-v";
    for (size_t i = 0; opts != NULL && opts[i] != NULL && n < cap - 1; i++)
        argv[n++] = opts[i];
    argv[n] = NULL;
}

/* A fresh data dir /tmp/tc-restart-<pid>-<tag> (removed first if left over). */
static void rs_init(struct ft_server *s, const char *tag)
{
    char dir[200];
    snprintf(dir, sizeof(dir), "/tmp/tc-restart-%d-%s", (int)getpid(), tag);
    ft_dir_init(s, dir);
}

/* First start (-p 0). */
static void rs_start(struct ft_server *s, const char *const *opts)
{
    const char *argv[40];
    build_args(argv, 40, opts);
    ck_assert_msg(ft_dir_start(s, argv) == 0, "tiercached did not start on %s (log %s)", s->dir,
                  s->ts.log_path);
}

/* The log of a server that has exited: no sanitizer report in it; removed. */
static void log_retire(struct ft_server *s)
{
    ck_assert_msg(ft_log_retire(s->ts.log_path), "a sanitizer report in %s", s->ts.log_path);
}

/* Start again on the same port and data dir; the first request may come
 * right after this returns (the port answers, and the log says it is this
 * server's). */
static void rs_restart(struct ft_server *s, const char *const *opts)
{
    log_retire(s);
    const char *argv[40];
    build_args(argv, 40, opts);
    ck_assert_msg(ft_restart(s, argv) == 0, "tiercached did not restart on %s (log %s)", s->dir,
                  s->ts.log_path);
}

/* SIGTERM: the server must write RAM to flash and exit 0. */
static void rs_term(struct ft_server *s)
{
    int st = ft_signal(s, SIGTERM, STOP_MS);
    char why[80];
    ck_assert_msg(ft_exited_zero(st), "tiercached on %s: %s after SIGTERM (log %s)", s->dir,
                  ft_status_text(st, why, sizeof(why)), s->ts.log_path);
}

static void rs_kill(struct ft_server *s)
{
    int st = ft_signal(s, SIGKILL, 10000);
    char why[80];
    ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "tiercached did not die of SIGKILL but of %s (log %s)",
                  ft_status_text(st, why, sizeof(why)), s->ts.log_path);
}

/* Stop if running, remove the data dirs and the log. */
static void rs_done(struct ft_server *s)
{
    ft_dir_deinit(s);
    log_retire(s);
}

static bool log_has(const struct ft_server *s, const char *needle)
{
    return ts_file_contains(s->ts.log_path, needle);
}

/* The `stats tiers` value `name` (the server must answer). */
static long long tier(const struct ft_server *s, const char *name)
{
    long long v = ft_tier(s->ts.port, name);
    ck_assert_msg(v >= 0, "stats tiers: no %s", name);
    return v;
}

/*
 * Wait until every flash delete and engine state change queued so far has
 * committed (see the top of the file): writer_queue_ops 0 and heap_items 0
 * in one snapshot, and flash not degraded.
 */
static void wait_committed(const struct ft_server *s)
{
    struct ft_stats *st = malloc(sizeof(*st));
    ck_assert_ptr_nonnull(st);
    long long deadline = ts_now_ms() + DRAIN_MS;
    bool ok = false;
    long long q = -1, heap = -1;
    while (!ok && ts_now_ms() < deadline) {
        char degraded[16] = "";
        if (ft_stats_get(s->ts.port, "stats tiers", st) == 0) {
            q = ft_stats_num(st, "writer_queue_ops");
            heap = ft_stats_num(st, "heap_items");
            ft_stats_str(st, "flash_degraded", degraded, sizeof(degraded));
            ok = q == 0 && heap == 0 && strcmp(degraded, "no") == 0;
        }
        if (!ok)
            ft_pause_ms(10);
    }
    free(st);
    ck_assert_msg(ok,
                  "the writer did not commit within %d ms (writer_queue_ops %lld, heap_items %lld)",
                  DRAIN_MS, q, heap);
}

/* ---------------------------------------------------------------- items */

/* What a key should hold (or held when read). */
struct rec {
    bool present;
    bool corrupt; /* the bytes are not a segment of this key */
    uint64_t ver;
    uint64_t cas;
    uint32_t flags;
    uint32_t len;
};

/* How item i of a key space is made: its length, flags and exptime. */
typedef void (*shape_fn)(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime);

static void key_of(char *out, const char *prefix, long i)
{
    snprintf(out, 64, "%s:%07ld", prefix, i);
}

static uint32_t flags_for(long i, uint64_t ver)
{
    return (uint32_t)ft_mix((uint64_t)i * 131 + ver);
}

/* 1 KB values with flags, no expiry. */
static void shape_1k(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime)
{
    *len = 1000 + (uint32_t)(ver % 7);
    *flags = flags_for(i, ver);
    strcpy(exptime, "0");
}

/*
 * Set keys prefix:from..to-1 to version ver, pipelined; every reply must be
 * STORED. want (indexed by i - from) gets what was set, CAS unknown (0).
 */
static void set_stride(int port, const char *prefix, long from, long to, long step, uint64_t ver,
                       shape_fn shape, struct rec *want)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s", c.err);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (long i = from; i < to; i += BATCH * step) {
        long nb = 0;
        n = 0;
        for (long j = i; j < to && j < i + BATCH * step; j += step, nb++) {
            char key[64], exptime[32];
            uint32_t len, flags;
            key_of(key, prefix, j);
            shape(j, ver, &len, &flags, exptime);
            if (n + len + 200 > cap) {
                while (n + len + 200 > cap)
                    cap *= 2;
                buf = realloc(buf, cap);
                ck_assert_ptr_nonnull(buf);
            }
            n += (size_t)sprintf(buf + n, "set %s %" PRIu32 " %s %" PRIu32 "\r\n", key, flags,
                                 exptime, len);
            ft_seg_make(buf + n, key, strlen(key), ver, len);
            memcpy(buf + n + len, "\r\n", 2);
            n += len + 2;
            if (want != NULL)
                want[j - from] = (struct rec){true, false, ver, 0, flags, len};
        }
        ck_assert_msg(ft_send(&c, buf, n) == 0, "%s", c.err);
        for (long b = 0; b < nb; b++)
            ck_assert_msg(ft_expect(&c, "STORED") == 0, "set %s:%07ld: %s", prefix, i + b * step,
                          c.err);
    }
    free(buf);
    ft_close(&c);
}

static void set_range(int port, const char *prefix, long from, long to, uint64_t ver,
                      shape_fn shape, struct rec *want)
{
    set_stride(port, prefix, from, to, 1, ver, shape, want);
}

/* Read keys prefix:from..to-1 with multi-key gets into got[i - from]. */
static void read_range(int port, const char *prefix, long from, long to, struct rec *got)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s", c.err);
    char req[BATCH * 64 + 16];
    for (long i = from; i < to; i += BATCH) {
        long nb = to - i < BATCH ? to - i : BATCH;
        size_t n = (size_t)sprintf(req, "gets");
        for (long b = 0; b < nb; b++) {
            char key[64];
            key_of(key, prefix, i + b);
            n += (size_t)sprintf(req + n, " %s", key);
            got[i + b - from] = (struct rec){0};
        }
        n += (size_t)sprintf(req + n, "\r\n");
        ck_assert_msg(ft_send(&c, req, n) == 0, "%s", c.err);
        for (;;) {
            struct ft_value v;
            int r = ft_next_value(&c, &v);
            ck_assert_msg(r >= 0, "gets %s:%07ld..: %s", prefix, i, c.err);
            if (r == 0)
                break;
            const char *colon = strrchr(v.key, ':');
            long idx = colon != NULL ? atol(colon + 1) : -1;
            ck_assert_msg(colon != NULL && (size_t)(colon - v.key) == strlen(prefix) &&
                              strncmp(v.key, prefix, strlen(prefix)) == 0 && idx >= i &&
                              idx < i + nb,
                          "gets %s:%07ld..: a value for key %s", prefix, i, v.key);
            struct rec *g = &got[idx - from];
            uint64_t first, last;
            char err[200];
            int segs = ft_value_check(v.data, v.n, v.key, v.nkey, &first, &last, err, sizeof(err));
            *g = (struct rec){true, segs != 1, last, v.cas, v.flags, (uint32_t)v.n};
            if (segs != 1)
                fprintf(stderr, "%s: corrupt value: %s\n", v.key, segs < 0 ? err : "segments");
        }
    }
    ft_close(&c);
}

static const char *rec_text(const struct rec *r, char *out, size_t cap)
{
    if (!r->present)
        snprintf(out, cap, "missing");
    else
        snprintf(out, cap,
                 "%sversion %" PRIu64 ", %" PRIu32 " bytes, flags %" PRIu32 ", cas %" PRIu64,
                 r->corrupt ? "CORRUPT " : "", r->ver, r->len, r->flags, r->cas);
    return out;
}

/* Whether got is exactly want (CAS too, unless want->cas is 0). */
static bool rec_same(const struct rec *want, const struct rec *got)
{
    if (want->present != got->present)
        return false;
    if (!want->present)
        return true;
    return !got->corrupt && want->ver == got->ver && want->len == got->len &&
           want->flags == got->flags && (want->cas == 0 || want->cas == got->cas);
}

/* Count (and show a few) keys where got differs from want. */
static long count_diff(const char *what, const char *prefix, long from, long to,
                       const struct rec *want, const struct rec *got)
{
    long bad = 0;
    for (long i = from; i < to; i++) {
        if (rec_same(&want[i - from], &got[i - from]))
            continue;
        if (bad++ < SHOW_MAX) {
            char a[160], b[160];
            fprintf(stderr, "%s: %s:%07ld: expected %s, got %s\n", what, prefix, i,
                    rec_text(&want[i - from], a, sizeof(a)),
                    rec_text(&got[i - from], b, sizeof(b)));
        }
    }
    return bad;
}

/* Every key of the range reads as missing. */
static void expect_all_missing(const char *what, int port, const char *prefix, long from, long to)
{
    struct rec *got = calloc((size_t)(to - from), sizeof(*got));
    ck_assert_ptr_nonnull(got);
    read_range(port, prefix, from, to, got);
    long hits = 0;
    for (long i = from; i < to; i++) {
        if (got[i - from].present && hits++ < SHOW_MAX)
            fprintf(stderr, "%s: %s:%07ld is back: version %" PRIu64 "\n", what, prefix, i,
                    got[i - from].ver);
    }
    free(got);
    ck_assert_msg(hits == 0, "%s: %ld of %ld keys %s:* are back", what, hits, to - from, prefix);
}

/* One request, the whole reply expected to be `want`. */
static void exchange(int port, const char *req, const char *want)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s", c.err);
    ck_assert_msg(ft_send(&c, req, strlen(req)) == 0, "%s", c.err);
    const char *p = want;
    while (*p != '\0') {
        const char *e = strstr(p, "\r\n");
        ck_assert_ptr_nonnull(e);
        char line[256];
        snprintf(line, sizeof(line), "%.*s", (int)(e - p), p);
        ck_assert_msg(ft_expect(&c, line) == 0, "\"%.60s\": %s", req, c.err);
        p = e + 2;
    }
    ft_close(&c);
}

/* A small working check: set, get back, on a fresh connection. */
static void expect_serving(int port, const char *key)
{
    char req[256], want[256];
    snprintf(req, sizeof(req), "set %s 7 0 5\r\nhello\r\nget %s\r\n", key, key);
    snprintf(want, sizeof(want), "STORED\r\nVALUE %s 7 5\r\nhello\r\nEND\r\n", key);
    exchange(port, req, want);
}

static struct rec *recs(long n)
{
    struct rec *r = calloc((size_t)n, sizeof(*r));
    ck_assert_ptr_nonnull(r);
    return r;
}

/* ---------------------------------------------------------------- round_trip */

/* Mostly 1 KB, some 100 B, 5 KB and 100 KB; never, relative and absolute expiry. */
static void shape_mixed(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime)
{
    if (i % 1000 == 999)
        *len = 100000;
    else if (i % 50 == 7)
        *len = 5000;
    else if (i % 10 == 3)
        *len = 100;
    else
        *len = 1000;
    *flags = i % 4 == 0 ? 0 : flags_for(i, ver);
    if (i % 3 == 0)
        strcpy(exptime, "100000"); /* relative: about a day */
    else if (i % 3 == 1)
        sprintf(exptime, "%ld", (long)time(NULL) + 200000); /* absolute */
    else
        strcpy(exptime, "0");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_round_trip)
{
    long n = ft_env_long("TC_RESTART_ITEMS", 60000);
    const char *opts[] = {"-m", "8", "-t", "2", FLASH_BIG, NULL};
    struct ft_server s;
    rs_init(&s, "rt");
    rs_start(&s, opts);
    long long t0 = ts_now_ms();
    set_range(s.ts.port, "rt", 0, n, 1, shape_mixed, NULL);
    struct rec *before = recs(n), *after = recs(n);
    read_range(s.ts.port, "rt", 0, n, before);
    long missing = 0;
    for (long i = 0; i < n; i++)
        missing += !before[i].present || before[i].corrupt;
    ck_assert_msg(missing == 0, "%ld of %ld keys missing or corrupt before the stop", missing, n);
    long long flash_before = tier(&s, "flash_items"), ram_before = tier(&s, "ram_items");
    fprintf(stderr, "round_trip: %ld items set and read in %lld ms (%lld on flash, %lld in RAM)\n",
            n, ts_now_ms() - t0, flash_before, ram_before);
    ck_assert_msg(flash_before > 0 && flash_before < n,
                  "the data should be partly in RAM, partly on flash: flash_items %lld of %ld",
                  flash_before, n);

    long long t1 = ts_now_ms();
    rs_term(&s);
    ck_assert_msg(log_has(&s, "items written to flash"), "no \"stopping: ... written\" log line");
    long long t2 = ts_now_ms();
    rs_restart(&s, opts);
    long long t3 = ts_now_ms();

    /* The first requests, as soon as the port answers: the first key (on
     * flash since long), the last one (in RAM at the stop) and a big one. */
    long probe[] = {0, n - 1, 999 < n ? 999 : 0};
    for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++) {
        struct rec got;
        read_range(s.ts.port, "rt", probe[k], probe[k] + 1, &got);
        ck_assert_msg(
            count_diff("first request", "rt", probe[k], probe[k] + 1, &before[probe[k]], &got) == 0,
            "the first request after the restart did not get key %ld back", probe[k]);
    }
    ck_assert_msg(log_has(&s, "items after a clean stop"), "the log does not say \"clean stop\"");
    ck_assert_msg(!log_has(&s, "rebuilding the filter"),
                  "the filter was rebuilt after a clean stop (snapshot not used)");
    long long flash_after = tier(&s, "flash_items");
    ck_assert_msg(flash_after == n, "after the restart flash_items is %lld, expected %ld",
                  flash_after, n);

    read_range(s.ts.port, "rt", 0, n, after);
    long bad = count_diff("after restart", "rt", 0, n, before, after);
    fprintf(stderr,
            "round_trip: stop %lld ms, restart %lld ms, %ld items compared in %lld ms, %ld "
            "differ\n",
            t2 - t1, t3 - t2, n, ts_now_ms() - t3, bad);
    ck_assert_msg(bad == 0, "%ld of %ld items differ after the restart", bad, n);
    ck_assert_msg(tier(&s, "flash_hits") > 0, "no flash hits counted");

    /* CAS values stay unique across the restart. */
    uint64_t *cas = malloc((size_t)n * sizeof(*cas));
    ck_assert_ptr_nonnull(cas);
    for (long i = 0; i < n; i++)
        cas[i] = before[i].cas;
    qsort(cas, (size_t)n, sizeof(*cas), cmp_u64);
    for (long i = 1; i < n; i++)
        ck_assert_msg(cas[i] != cas[i - 1], "two items share CAS %" PRIu64, cas[i]);
    struct rec fresh[20];
    set_range(s.ts.port, "rtnew", 0, 20, 1, shape_1k, NULL);
    read_range(s.ts.port, "rtnew", 0, 20, fresh);
    for (int i = 0; i < 20; i++) {
        ck_assert(fresh[i].present);
        ck_assert_msg(bsearch(&fresh[i].cas, cas, (size_t)n, sizeof(*cas), cmp_u64) == NULL,
                      "a new item after the restart got CAS %" PRIu64 ", already used before",
                      fresh[i].cas);
    }
    free(cas);
    rs_term(&s);
    free(before);
    free(after);
    rs_done(&s);
}
END_TEST

/* ---------------------------------------------------------------- flush */

/* Wait (bounded) until the wall clock reaches `when`. */
static void wait_until_wall(time_t when)
{
    long long deadline = ts_now_ms() + 30000;
    while (time(NULL) < when && ts_now_ms() < deadline)
        ft_pause_ms(20);
    ck_assert_msg(time(NULL) >= when, "the clock did not reach the time waited for");
}

/*
 * Make a committed marker change: overwrite `key` (which must have a record
 * on flash), then wait until the writer has committed the flash delete that
 * this queues and everything before it.
 */
static void marker_commit(const struct ft_server *s, const char *prefix, long i)
{
    set_range(s->ts.port, prefix, i, i + 1, 1000, shape_1k, NULL);
    wait_committed(s);
}

/* The marker key reads as missing or as the marker version, never older. */
static void expect_marker(const char *what, int port, const char *prefix, long i)
{
    struct rec got;
    read_range(port, prefix, i, i + 1, &got);
    ck_assert_msg(!got.present || (!got.corrupt && got.ver == 1000),
                  "%s: marker %s:%07ld has version %" PRIu64 " (older than the marker)", what,
                  prefix, i, got.ver);
}

START_TEST(test_flush)
{
    long n = ft_env_long("TC_RESTART_FLUSH_ITEMS", 15000);
    const char *opts[] = {"-m", "8", "-t", "2", FLASH_BIG, "--flash-sync=always", NULL};

    /* 1. flush_all, SIGTERM, restart: nothing comes back; later sets stay. */
    struct ft_server s;
    rs_init(&s, "flush");
    rs_start(&s, opts);
    set_range(s.ts.port, "fl", 0, n, 1, shape_1k, NULL);
    ck_assert_msg(tier(&s, "flash_items") > 0, "nothing went to flash");
    exchange(s.ts.port, "flush_all\r\n", "OK\r\n");
    struct rec later[50];
    set_range(s.ts.port, "later", 0, 50, 1, shape_1k, NULL);
    read_range(s.ts.port, "later", 0, 50, later);
    rs_term(&s);
    rs_restart(&s, opts);
    expect_all_missing("flush_all then SIGTERM", s.ts.port, "fl", 0, n);
    struct rec got[50];
    read_range(s.ts.port, "later", 0, 50, got);
    ck_assert_msg(count_diff("set after flush_all", "later", 0, 50, later, got) == 0,
                  "items set after the flush_all did not survive the restart");

    /* 2. The same with SIGKILL once the flush is committed: all on flash
     * first (a graceful restart), then flush_all and a marker. */
    set_range(s.ts.port, "fk", 0, n, 1, shape_1k, NULL);
    rs_term(&s);
    rs_restart(&s, opts);
    exchange(s.ts.port, "flush_all\r\n", "OK\r\n");
    marker_commit(&s, "fk", 0);
    rs_kill(&s);
    rs_restart(&s, opts);
    ck_assert_msg(log_has(&s, "after an unclean stop"), "the log does not say \"unclean stop\"");
    expect_all_missing("flush_all then SIGKILL", s.ts.port, "fk", 1, n);
    expect_marker("flush_all then SIGKILL", s.ts.port, "fk", 0);
    rs_term(&s);
    rs_done(&s);

    /* 3. A delayed flush_all pending across a graceful stop (g) and across
     * a crash (k), two servers on one clock. */
    struct ft_server g, k;
    rs_init(&g, "dflush-g");
    rs_init(&k, "dflush-k");
    long m = n / 3;
    rs_start(&g, opts);
    rs_start(&k, opts);
    set_range(g.ts.port, "dg", 0, m, 1, shape_1k, NULL);
    set_range(k.ts.port, "dk", 0, m, 1, shape_1k, NULL);
    rs_term(&k); /* all on flash, for the marker */
    rs_restart(&k, opts);
    struct rec *want = recs(m), *seen = recs(m);
    read_range(g.ts.port, "dg", 0, m, want);
    long long t0 = ts_now_ms();
    time_t wall0 = time(NULL);
    exchange(g.ts.port, "flush_all 3\r\n", "OK\r\n");
    exchange(k.ts.port, "flush_all 3\r\n", "OK\r\n");
    time_t wall1 = time(NULL); /* both are due by wall1 + 3 */
    marker_commit(&k, "dk", 0);
    rs_term(&g);
    rs_kill(&k);
    rs_restart(&g, opts);
    rs_restart(&k, opts);
    /* Before it is due (if the restart was quick enough to tell): the
     * server's clock may lag the wall clock by a second, so it is due at
     * wall0 + 2 at the earliest. */
    if (ts_now_ms() - t0 < 1500 && time(NULL) <= wall0 + 1) {
        read_range(g.ts.port, "dg", 0, m, seen);
        ck_assert_msg(count_diff("before the delayed flush", "dg", 0, m, want, seen) == 0,
                      "a delayed flush_all took effect early after a restart");
    } else {
        fprintf(stderr, "flush: restart too slow to look before the delayed flush is due\n");
    }
    /* Once it is due (and the lagging server clock is past it too):
     * flush_all 3 kills what was stored before its second. */
    wait_until_wall(wall1 + 5);
    expect_all_missing("delayed flush_all across SIGTERM", g.ts.port, "dg", 0, m);
    expect_all_missing("delayed flush_all across SIGKILL", k.ts.port, "dk", 1, m);
    expect_marker("delayed flush_all across SIGKILL", k.ts.port, "dk", 0);
    set_range(g.ts.port, "dg", 0, 10, 2, shape_1k, want);
    read_range(g.ts.port, "dg", 0, 10, seen);
    ck_assert_msg(count_diff("set after the delayed flush", "dg", 0, 10, want, seen) == 0,
                  "items set after the delayed flush_all are missing");
    rs_term(&g);
    rs_term(&k);
    free(want);
    free(seen);
    rs_done(&g);
    rs_done(&k);
}
END_TEST

/* ---------------------------------------------------------------- delete_overwrite */

/* Overwrites are version 2, other lengths than version 1. */
static void shape_v2(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime)
{
    *len = 300 + (uint32_t)(i % 500);
    *flags = flags_for(i, ver);
    strcpy(exptime, "0");
}

/* Delete keys i % 3 == 0, overwrite i % 3 == 1 (want updated: CAS unknown). */
static void delete_overwrite(int port, const char *prefix, long n, struct rec *want)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s", c.err);
    for (long i = 0; i < n; i += 3) {
        char key[64];
        key_of(key, prefix, i);
        ck_assert(ft_sendf(&c, "delete %s\r\n", key) == 0);
        ck_assert_msg(ft_expect(&c, "DELETED") == 0, "delete %s: %s", key, c.err);
        want[i].present = false;
    }
    ft_close(&c);
    set_stride(port, prefix, 1, n, 3, 2, shape_v2, &want[1]);
}

START_TEST(test_delete_overwrite)
{
    long n = ft_env_long("TC_RESTART_DELETE_ITEMS", 15000);
    const char *opts[] = {"-m", "8", "-t", "2", FLASH_BIG, "--flash-sync=always", NULL};
    struct rec *want = recs(n), *got = recs(n);

    /* Graceful: a mix of RAM and flash items, exact afterwards. */
    struct ft_server s;
    rs_init(&s, "del");
    rs_start(&s, opts);
    set_range(s.ts.port, "dl", 0, n, 1, shape_1k, want);
    delete_overwrite(s.ts.port, "dl", n, want);
    read_range(s.ts.port, "dl", 0, n, got);
    ck_assert_msg(count_diff("before SIGTERM", "dl", 0, n, want, got) == 0,
                  "deletes or overwrites did not take");
    memcpy(want, got, (size_t)n * sizeof(*want)); /* with the CAS values */
    rs_term(&s);
    rs_restart(&s, opts);
    read_range(s.ts.port, "dl", 0, n, got);
    ck_assert_msg(count_diff("deletes and overwrites, SIGTERM", "dl", 0, n, want, got) == 0,
                  "deletes or overwrites were lost in a graceful restart");

    /* Crash: everything on flash (after the graceful restart), some keys
     * brought back to RAM clean (a second read promotes), then deletes and
     * overwrites, committed, SIGKILL. */
    set_range(s.ts.port, "dk", 0, n, 1, shape_1k, NULL);
    rs_term(&s);
    rs_restart(&s, opts);
    read_range(s.ts.port, "dk", 0, n, want);
    for (int pass = 0; pass < 2; pass++)
        read_range(s.ts.port, "dk", 0, n / 2, got);
    struct rec *old = recs(n);
    memcpy(old, want, (size_t)n * sizeof(*want));
    delete_overwrite(s.ts.port, "dk", n, want);
    wait_committed(&s);
    rs_kill(&s);
    rs_restart(&s, opts);
    read_range(s.ts.port, "dk", 0, n, got);
    long back = 0, lost = 0, wrong = 0, kept = 0;
    for (long i = 0; i < n; i++) {
        char a[160], b[160];
        if (i % 3 == 0 && got[i].present) { /* deleted */
            if (back++ < SHOW_MAX)
                fprintf(stderr, "dk:%07ld deleted before the crash, now %s\n", i,
                        rec_text(&got[i], a, sizeof(a)));
        } else if (i % 3 == 1 && got[i].present) { /* overwritten: the new value, or lost */
            kept++;
            if ((got[i].corrupt || got[i].ver != 2 || !rec_same(&want[i], &got[i])) &&
                wrong++ < SHOW_MAX)
                fprintf(stderr, "dk:%07ld overwritten before the crash: expected %s, got %s\n", i,
                        rec_text(&want[i], a, sizeof(a)), rec_text(&got[i], b, sizeof(b)));
        } else if (i % 3 == 2 && !rec_same(&old[i], &got[i])) { /* untouched, on flash */
            if (lost++ < SHOW_MAX)
                fprintf(stderr, "dk:%07ld untouched on flash: expected %s, got %s\n", i,
                        rec_text(&old[i], a, sizeof(a)), rec_text(&got[i], b, sizeof(b)));
        }
    }
    fprintf(stderr,
            "delete_overwrite: after SIGKILL: %ld deleted keys back, %ld overwrites kept (%ld "
            "wrong), %ld untouched keys lost or changed\n",
            back, kept, wrong, lost);
    ck_assert_msg(back == 0, "%ld deleted keys came back after a crash", back);
    ck_assert_msg(wrong == 0, "%ld overwritten keys read an old or wrong value after a crash",
                  wrong);
    ck_assert_msg(lost == 0, "%ld untouched flash items were lost or changed by a crash", lost);
    rs_term(&s);
    free(old);
    free(want);
    free(got);
    rs_done(&s);
}
END_TEST

/* ---------------------------------------------------------------- expired_while_down */

static void shape_ttl(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime,
                      const char *ttl)
{
    shape_1k(i, ver, len, flags, exptime);
    strcpy(exptime, ttl);
}

static void shape_ttl3(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime)
{
    shape_ttl(i, ver, len, flags, exptime, "3");
}

static void shape_ttl7(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime)
{
    shape_ttl(i, ver, len, flags, exptime, "7");
}

static void shape_ttl_long(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime)
{
    shape_ttl(i, ver, len, flags, exptime, "100000");
}

START_TEST(test_expired_while_down)
{
    long n = ft_env_long("TC_RESTART_TTL_ITEMS", 3000);
    const char *opts[] = {"-m", "8", "-t", "2", FLASH_BIG, "--flash-min-ttl=1", NULL};
    struct ft_server s;
    rs_init(&s, "ttl");
    rs_start(&s, opts);
    struct rec *want = recs(n), *got = recs(n);
    /* wall0: no item below expires before wall0 + its TTL. */
    time_t wall0 = time(NULL);
    set_range(s.ts.port, "short", 0, n, 1, shape_ttl3, NULL);
    set_range(s.ts.port, "mid", 0, n, 1, shape_ttl7, want);
    set_range(s.ts.port, "long", 0, n, 1, shape_ttl_long, NULL);
    time_t wall1 = time(NULL); /* ... and every item is gone by wall1 + TTL + 1 */
    rs_term(&s);
    wait_until_wall(wall1 + 4);
    rs_restart(&s, opts);
    expect_all_missing("TTL 3, down until it passed", s.ts.port, "short", 0, n);
    /* The TTL 7 items are still there if the restart beat their expiry. */
    if (time(NULL) + 1 < wall0 + 7) {
        read_range(s.ts.port, "mid", 0, n, got);
        ck_assert_msg(count_diff("TTL 7 after the restart", "mid", 0, n, want, got) == 0,
                      "items with time left were lost in the restart");
    }
    /* They expire at their original time: had the restart re-based their
     * TTL, they would live until at least wall1 + 4 + 6. */
    wait_until_wall(wall1 + 8);
    expect_all_missing("TTL 7, past its original expiry", s.ts.port, "mid", 0, n);
    read_range(s.ts.port, "long", 0, n, got);
    long miss = 0;
    for (long i = 0; i < n; i++)
        miss += !got[i].present || got[i].corrupt || got[i].ver != 1;
    ck_assert_msg(miss == 0, "%ld long-TTL items lost across the restart", miss);
    rs_term(&s);
    free(want);
    free(got);
    rs_done(&s);
}
END_TEST

/* ---------------------------------------------------------------- locked */

/* Run tiercached with args to its exit (bounded); its wait status, -1 if it
 * had to be killed. stderr to log. */
static int run_to_exit(const char *const *args, const char *log, int timeout_ms)
{
    const char *bin = getenv("TIERCACHED_BIN") ? getenv("TIERCACHED_BIN") : TIERCACHED_BIN_PATH;
    const char *argv[40];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; args[i] != NULL && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = fork();
    if (pid == 0) {
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    ck_assert_msg(pid > 0, "fork failed");
    long long deadline = ts_now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (ts_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        ft_pause_ms(10);
    }
}

START_TEST(test_locked)
{
    const char *opts[] = {"-m", "8", "-t", "2", FLASH_BIG, NULL};
    struct ft_server s;
    rs_init(&s, "lock");
    rs_start(&s, opts);
    struct rec want[100], got[100];
    set_range(s.ts.port, "lk", 0, 100, 1, shape_1k, want);

    char log[200];
    snprintf(log, sizeof(log), "/tmp/tc-restart-%d-second.log", (int)getpid());
    char dirarg[300];
    snprintf(dirarg, sizeof(dirarg), "--data-dir=%s", s.dir);
    const char *second[] = {"-p", "0", "-v", dirarg, "-m", "8", FLASH_BIG, NULL};
    int st = run_to_exit(second, log, 20000);
    char why[80];
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1,
                  "a second tiercached on the same data dir: %s, expected exit status 1",
                  ft_status_text(st, why, sizeof(why)));
    ck_assert_msg(ts_file_contains(log, "is in use by another process"),
                  "the second tiercached does not say the data dir is in use (log %s)", log);
    ck_assert_msg(!ts_file_contains(log, "listening on"), "the second tiercached listened");
    unlink(log);

    /* The first one still serves, its data intact, and restarts clean. */
    ck_assert_msg(waitpid(s.ts.pid, NULL, WNOHANG) == 0, "the first server is gone");
    read_range(s.ts.port, "lk", 0, 100, got);
    ck_assert_msg(count_diff("first server", "lk", 0, 100, want, got) == 0,
                  "the first server lost data to the second one's attempt");
    expect_serving(s.ts.port, "lk:after");
    rs_term(&s);
    rs_restart(&s, opts);
    ck_assert_msg(log_has(&s, "items after a clean stop"), "no clean stop after the attempt");
    read_range(s.ts.port, "lk", 0, 100, got);
    ck_assert_msg(count_diff("after restart", "lk", 0, 100, want, got) == 0,
                  "data lost across the restart after the second server's attempt");
    rs_term(&s);
    rs_done(&s);
}
END_TEST

/* ---------------------------------------------------------------- hangup */

/* SIGHUP (a closed terminal, a stray kill -HUP) does not stop the server:
 * left to its default it would kill it without the graceful stop, losing
 * what was only in RAM. */
START_TEST(test_sighup_ignored)
{
    const char *opts[] = {"-m", "8", "-t", "2", FLASH_BIG, NULL};
    struct ft_server s;
    rs_init(&s, "hup");
    rs_start(&s, opts);
    struct rec want[50], got[50];
    set_range(s.ts.port, "hup", 0, 50, 1, shape_1k, want);
    ck_assert_int_eq(kill(s.ts.pid, SIGHUP), 0);
    expect_serving(s.ts.port, "hup:after"); /* a round trip after the signal was delivered */
    ck_assert_msg(waitpid(s.ts.pid, NULL, WNOHANG) == 0, "SIGHUP stopped the server");
    read_range(s.ts.port, "hup", 0, 50, got);
    ck_assert_int_eq(count_diff("after SIGHUP", "hup", 0, 50, want, got), 0);
    rs_term(&s); /* and it still stops cleanly */
    rs_restart(&s, opts);
    ck_assert_msg(log_has(&s, "items after a clean stop"), "no clean stop after SIGHUP");
    rs_term(&s);
    rs_done(&s);
}
END_TEST

/* ---------------------------------------------------------------- damaged */

static void path_in(char *out, size_t cap, const struct ft_server *s, const char *name)
{
    snprintf(out, cap, "%s/%s", s->dir, name);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void truncate_half(const char *path)
{
    off_t n = file_size(path);
    ck_assert_msg(n > 0, "%s: no such file", path);
    ck_assert_msg(truncate(path, n / 2) == 0, "truncate %s: %s", path, strerror(errno));
}

/* Overwrite the whole file with pseudo-random bytes. */
static void scramble(const char *path, uint64_t seed)
{
    off_t n = file_size(path);
    ck_assert_msg(n > 0, "%s: no such file", path);
    FILE *f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    struct ft_rng r = {seed};
    for (off_t i = 0; i < n; i += 8) {
        uint64_t x = ft_rand(&r);
        fwrite(&x, 1, (size_t)(n - i < 8 ? n - i : 8), f);
    }
    fclose(f);
}

/* Flip the bits of a few bytes in the middle of a file. */
static void flip_middle(const char *path)
{
    off_t n = file_size(path);
    ck_assert_msg(n > 64, "%s: too small", path);
    int fd = open(path, O_RDWR);
    ck_assert(fd >= 0);
    for (off_t at = n / 2; at < n / 2 + 16; at += 4) {
        unsigned char b;
        ck_assert(pread(fd, &b, 1, at) == 1);
        b ^= 0xff;
        ck_assert(pwrite(fd, &b, 1, at) == 1);
    }
    close(fd);
}

static void lmdb_ok(int rc, const char *what)
{
    ck_assert_msg(rc == 0, "%s: %s", what, mdb_strerror(rc));
}

/* Cut data.mdb to half of the pages LMDB uses: the file itself is sparse
 * and as long as the map (MDB_WRITEMAP), so half of its size may hold every
 * page in use. */
static void truncate_data_half(const char *dir, const char *path)
{
    MDB_env *env;
    MDB_envinfo info;
    MDB_stat st;
    lmdb_ok(mdb_env_create(&env), "mdb_env_create");
    lmdb_ok(mdb_env_open(env, dir, MDB_RDONLY, 0644), "mdb_env_open");
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    mdb_env_close(env);
    off_t used = (off_t)(info.me_last_pgno + 1) * st.ms_psize;
    ck_assert_msg(used > 4 * (off_t)st.ms_psize, "%s: only %lld bytes in use", path,
                  (long long)used);
    ck_assert_msg(truncate(path, used / 2) == 0, "truncate %s: %s", path, strerror(errno));
}

/* An LMDB environment of someone else's in the data dir. */
static void make_foreign_env(const char *dir)
{
    ck_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    MDB_env *env;
    MDB_txn *txn;
    lmdb_ok(mdb_env_create(&env), "mdb_env_create");
    lmdb_ok(mdb_env_set_maxdbs(env, 4), "mdb_env_set_maxdbs");
    lmdb_ok(mdb_env_set_mapsize(env, 16 << 20), "mdb_env_set_mapsize");
    lmdb_ok(mdb_env_open(env, dir, 0, 0644), "mdb_env_open");
    lmdb_ok(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
    const char *names[] = {"users", "orders"};
    for (int d = 0; d < 2; d++) {
        MDB_dbi dbi;
        lmdb_ok(mdb_dbi_open(txn, names[d], MDB_CREATE, &dbi), "mdb_dbi_open");
        for (int i = 0; i < 500; i++) {
            char k[32], v[200];
            snprintf(k, sizeof(k), "%s-%05d", names[d], i);
            memset(v, 'a' + i % 26, sizeof(v));
            MDB_val kv = {strlen(k), k}, vv = {sizeof(v), v};
            lmdb_ok(mdb_put(txn, dbi, &kv, &vv, 0), "mdb_put");
        }
    }
    lmdb_ok(mdb_txn_commit(txn), "mdb_txn_commit");
    mdb_env_close(env);
}

/* Rewrite one record of a stopped server's data: `db` (flags as the server
 * opens it), key `key` or (NULL) the last one, a byte in its middle flipped. */
static void flip_record(const char *dir, const char *db, unsigned flags, const char *key)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    lmdb_ok(mdb_env_create(&env), "mdb_env_create");
    lmdb_ok(mdb_env_set_maxdbs(env, 4), "mdb_env_set_maxdbs");
    lmdb_ok(mdb_env_open(env, dir, 0, 0644), "mdb_env_open");
    lmdb_ok(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
    lmdb_ok(mdb_dbi_open(txn, db, flags, &dbi), "mdb_dbi_open");
    lmdb_ok(mdb_cursor_open(txn, dbi, &cur), "mdb_cursor_open");
    MDB_val k = {key != NULL ? strlen(key) : 0, (void *)key}, v;
    lmdb_ok(mdb_cursor_get(cur, &k, &v, key != NULL ? MDB_SET_KEY : MDB_LAST), "mdb_cursor_get");
    char *copy = malloc(v.mv_size);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size / 2] ^= 0x5a;
    MDB_val nv = {v.mv_size, copy};
    lmdb_ok(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), "mdb_cursor_put");
    mdb_cursor_close(cur);
    lmdb_ok(mdb_txn_commit(txn), "mdb_txn_commit");
    mdb_env_close(env);
    free(copy);
}

enum damage {
    DM_TRUNCATE,   /* data.mdb cut to half its size */
    DM_GARBAGE,    /* data.mdb overwritten with random bytes */
    DM_EMPTY,      /* data.mdb of 0 bytes */
    DM_FOREIGN,    /* another application's LMDB environment */
    DM_STATE,      /* our state record with a byte flipped */
    DM_BATCH,      /* the last batch with a byte flipped */
    DM_SNAP_TRUNC, /* filter.snap cut to half */
    DM_SNAP_FLIP,  /* filter.snap with bytes flipped */
};

static const char *const damage_names[] = {"truncated", "garbage", "empty",      "foreign",
                                           "state",     "batch",   "snap-trunc", "snap-flip"};

/* Whether a DIR.corrupt-<unixtime> exists with a time in [t0, t1]. */
static bool moved_aside(const struct ft_server *s, time_t t0, time_t t1)
{
    char pat[300];
    snprintf(pat, sizeof(pat), "%s.corrupt-*", s->dir);
    glob_t g;
    bool found = false;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            long t = atol(g.gl_pathv[i] + strlen(s->dir) + strlen(".corrupt-"));
            found |= t >= (long)t0 && t <= (long)t1;
        }
        globfree(&g);
    }
    return found;
}

static void damaged_case(enum damage d)
{
    const long n = 3000;
    const char *opts[] = {"-m", "8", "-t", "2", "--flash-size=64m", NULL};
    const char *name = damage_names[d];
    struct ft_server s;
    char tag[32], path[300];
    snprintf(tag, sizeof(tag), "dmg-%s", name);
    rs_init(&s, tag);
    struct rec *want = NULL, *got = recs(n);
    if (d == DM_FOREIGN) {
        make_foreign_env(s.dir);
    } else {
        /* A real data dir: 3 MB, partly demoted, then a graceful stop. */
        want = recs(n);
        rs_start(&s, opts);
        set_range(s.ts.port, "dm", 0, n, 1, shape_1k, NULL);
        read_range(s.ts.port, "dm", 0, n, want);
        rs_term(&s);
        ck_assert_msg(log_has(&s, "items written to flash"), "%s: no graceful stop", name);
    }
    path_in(path, sizeof(path), &s, "data.mdb");
    switch (d) {
    case DM_TRUNCATE:
        truncate_data_half(s.dir, path);
        break;
    case DM_GARBAGE:
        scramble(path, 42);
        break;
    case DM_EMPTY:
        ck_assert(truncate(path, 0) == 0);
        break;
    case DM_FOREIGN:
        break;
    case DM_STATE:
        flip_record(s.dir, "meta", 0, "state");
        break;
    case DM_BATCH:
        flip_record(s.dir, "batches", MDB_INTEGERKEY, NULL);
        break;
    case DM_SNAP_TRUNC:
        path_in(path, sizeof(path), &s, "filter.snap");
        truncate_half(path);
        break;
    case DM_SNAP_FLIP:
        path_in(path, sizeof(path), &s, "filter.snap");
        flip_middle(path);
        break;
    }

    time_t t0 = time(NULL);
    if (d == DM_FOREIGN)
        rs_start(&s, opts);
    else
        rs_restart(&s, opts);
    time_t t1 = time(NULL);
    if (d == DM_SNAP_TRUNC || d == DM_SNAP_FLIP) {
        /* The data is sound: kept, every key served while and after the
         * filter is rebuilt. */
        ck_assert_msg(!moved_aside(&s, 0, t1 + 1), "%s: the data dir was moved aside", name);
        read_range(s.ts.port, "dm", 0, n, got);
        ck_assert_msg(count_diff(name, "dm", 0, n, want, got) == 0,
                      "%s: keys lost or changed with a damaged filter snapshot", name);
        expect_all_missing(name, s.ts.port, "none", 0, 200);
    } else if (d == DM_EMPTY && !log_has(&s, "moved aside")) {
        /* An empty file may be taken as a new environment: then empty. */
        expect_all_missing(name, s.ts.port, "dm", 0, n);
    } else {
        ck_assert_msg(log_has(&s, "moved aside to"), "%s: no \"moved aside\" log line (log %s)",
                      name, s.ts.log_path);
        ck_assert_msg(moved_aside(&s, t0, t1), "%s: no %s.corrupt-<time> directory", name, s.dir);
        expect_all_missing(name, s.ts.port, "dm", 0, n);
    }
    expect_serving(s.ts.port, "dm:new");
    rs_term(&s);
    /* And the dir it runs on now is sound. */
    rs_restart(&s, opts);
    ck_assert_msg(log_has(&s, "after a clean stop"), "%s: the next start is not a clean one", name);
    ck_assert_msg(!log_has(&s, "moved aside"), "%s: moved aside again", name);
    exchange(s.ts.port, "get dm:new\r\n", "VALUE dm:new 7 5\r\nhello\r\nEND\r\n");
    rs_term(&s);
    fprintf(stderr, "damaged %s: ok\n", name);
    free(want);
    free(got);
    rs_done(&s);
}

START_TEST(test_damaged)
{
    damaged_case((enum damage)_i);
}
END_TEST

/* ---------------------------------------------------------------- options_changed */

static void shape_big(long i, uint64_t ver, uint32_t *len, uint32_t *flags, char *exptime)
{
    *len = 300000 + (uint32_t)i;
    *flags = flags_for(i, ver);
    strcpy(exptime, "0");
}

START_TEST(test_options_changed)
{
    long n = ft_env_long("TC_RESTART_OPT_ITEMS", 30000); /* 1 KB each */
    const long nbig = 8, nnew = 2000;
    struct ft_server s;
    rs_init(&s, "opts");
    struct rec *want = recs(n), *got = recs(n), *bwant = recs(nbig), *bgot = recs(nbig);
    struct rec *nwant = recs(nnew), *ngot = recs(nnew);

    const char *first[] = {"-m", "32", "-t", "2", "--flash-size=64m", NULL};
    rs_start(&s, first);
    set_range(s.ts.port, "big", 0, nbig, 1, shape_big, NULL);
    set_range(s.ts.port, "old", 0, n, 1, shape_1k, NULL);
    read_range(s.ts.port, "big", 0, nbig, bwant);
    read_range(s.ts.port, "old", 0, n, want);
    rs_term(&s);

    /* A smaller -m: everything is still served (from flash). */
    const char *small_m[] = {"-m", "4", "-t", "2", "--flash-size=64m", NULL};
    rs_restart(&s, small_m);
    read_range(s.ts.port, "old", 0, n, got);
    ck_assert_msg(count_diff("-m 4", "old", 0, n, want, got) == 0, "-m 32 -> 4: items lost");
    read_range(s.ts.port, "big", 0, nbig, bgot);
    ck_assert_msg(count_diff("-m 4", "big", 0, nbig, bwant, bgot) == 0,
                  "-m 32 -> 4: big items lost");
    rs_term(&s);

    /* A smaller -I: big flash items are still served; big sets are refused
     * (and, as memcached does, the refused set drops the key's old value,
     * for good); new items land in RAM, the newest batches at the stop. */
    const char *small_i[] = {"-m", "32", "-I", "128k", "-t", "2", "--flash-size=64m", NULL};
    rs_restart(&s, small_i);
    read_range(s.ts.port, "big", 0, nbig, bgot);
    ck_assert_msg(count_diff("-I 128k", "big", 0, nbig, bwant, bgot) == 0,
                  "-I 1m -> 128k: items larger than the new -I are not served from flash");
    {
        struct ft_conn c;
        ck_assert_msg(ft_open(&c, s.ts.port) == 0, "%s", c.err);
        size_t len = 200000;
        char *buf = malloc(len + 100);
        ck_assert_ptr_nonnull(buf);
        int h = sprintf(buf, "set big:%07d 0 0 %zu\r\n", 0, len);
        memset(buf + h, 'x', len);
        memcpy(buf + h + len, "\r\nget big:0000000\r\n", 19);
        ck_assert(ft_send(&c, buf, (size_t)h + len + 19) == 0);
        ck_assert_msg(ft_expect(&c, "SERVER_ERROR object too large for cache") == 0,
                      "a set over the new -I: %s", c.err);
        ck_assert_msg(ft_expect(&c, "END") == 0,
                      "after a refused set the key should be gone, as in memcached: %s", c.err);
        free(buf);
        ft_close(&c);
    }
    bwant[0].present = false;
    set_range(s.ts.port, "new", 0, nnew, 1, shape_1k, NULL);
    read_range(s.ts.port, "new", 0, nnew, nwant);
    rs_term(&s);

    /* A --flash-size below the data: shrunk into the budget at the start;
     * the newest items are all there, older ones may be gone, none wrong. */
    const char *small_f[] = {"-m", "8", "-t", "2", "--flash-size=16m", NULL};
    char path[300];
    path_in(path, sizeof(path), &s, "data.mdb");
    off_t before = file_size(path);
    rs_restart(&s, small_f);
    off_t after = file_size(path);
    fprintf(stderr, "options_changed: data.mdb %lld -> %lld bytes for --flash-size=16m\n",
            (long long)before, (long long)after);
    ck_assert_msg(before > (16 << 20), "the data (%lld bytes) should exceed 16m for this test",
                  (long long)before);
    ck_assert_msg(log_has(&s, "more than --flash-size"), "no \"more than --flash-size\" log line");
    ck_assert_msg(log_has(&s, "compacted to"), "no \"compacted to\" log line");
    ck_assert_msg(after > 0 && after <= (16 << 20), "data.mdb is %lld bytes, over 16m",
                  (long long)after);
    ck_assert_msg(tier(&s, "flash_disk_bytes") <= tier(&s, "flash_limit_bytes"),
                  "flash_disk_bytes over flash_limit_bytes");
    read_range(s.ts.port, "new", 0, nnew, ngot);
    ck_assert_msg(count_diff("--flash-size 16m, newest", "new", 0, nnew, nwant, ngot) == 0,
                  "shrinking lost some of the newest items");
    read_range(s.ts.port, "old", 0, n, got);
    long kept = 0, wrong = 0;
    for (long i = 0; i < n; i++) {
        if (!got[i].present)
            continue;
        kept++;
        if (!rec_same(&want[i], &got[i]) && wrong++ < SHOW_MAX) {
            char a[160], b[160];
            fprintf(stderr, "old:%07ld: expected %s, got %s\n", i, rec_text(&want[i], a, sizeof(a)),
                    rec_text(&got[i], b, sizeof(b)));
        }
    }
    fprintf(stderr, "options_changed: %ld of %ld old items kept in 16m\n", kept, n);
    ck_assert_msg(wrong == 0, "%ld wrong values after shrinking", wrong);
    ck_assert_msg(kept < n, "all old items kept in a budget smaller than the data?");
    read_range(s.ts.port, "big", 0, nbig, bgot);
    for (long i = 0; i < nbig; i++)
        ck_assert_msg(!bgot[i].present || (i > 0 && rec_same(&bwant[i], &bgot[i])),
                      "big:%07ld wrong after shrinking", i);
    rs_term(&s);

    /* A larger --flash-size: nothing more is lost, and the new budget holds
     * more than the old one without evicting. */
    memcpy(want, got, (size_t)n * sizeof(*want));
    const char *large_f[] = {"-m", "8", "-t", "2", "--flash-size=128m", NULL};
    rs_restart(&s, large_f);
    ck_assert_msg(tier(&s, "flash_limit_bytes") == 128LL << 20, "flash_limit_bytes is not 128m");
    read_range(s.ts.port, "old", 0, n, got);
    ck_assert_msg(count_diff("--flash-size 128m", "old", 0, n, want, got) == 0,
                  "growing the budget lost or changed items");
    read_range(s.ts.port, "new", 0, nnew, ngot);
    ck_assert_msg(count_diff("--flash-size 128m, newest", "new", 0, nnew, nwant, ngot) == 0,
                  "growing the budget lost some of the newest items");
    set_range(s.ts.port, "more", 0, 24000, 1, shape_1k, NULL);
    ck_assert_msg(tier(&s, "flash_evictions") == 0,
                  "24 MB more in a 128m budget evicted flash items");
    rs_term(&s);
    free(want);
    free(got);
    free(bwant);
    free(bgot);
    free(nwant);
    free(ngot);
    rs_done(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("restart");
    struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        {"round_trip", test_round_trip},
        {"flush", test_flush},
        {"delete_overwrite", test_delete_overwrite},
        {"expired_while_down", test_expired_while_down},
        {"locked", test_locked},
        {"sighup_ignored", test_sighup_ignored},
        {"options_changed", test_options_changed},
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_add_test(tc, tests[i].test);
        suite_add_tcase(s, tc);
    }
    TCase *tc = tcase_create("damaged");
    tcase_add_loop_test(tc, test_damaged, 0, (int)(sizeof(damage_names) / sizeof(damage_names[0])));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
