/*
 * check_flash_faults.c: every flash failure path on the real binary, by
 * fault injection (TIERCACHE_FLASH_FAULT=<nth>:<error>[:<count>] makes the
 * server's nth LMDB call and those after it fail) and by a really full map.
 *
 * SPEC §4.7: a full disk or an I/O error degrades to RAM-only service with a
 * log line and a stats counter; it never crashes the server nor returns
 * wrong data; the flash tier never exceeds --flash-size and never fills up
 * into errors. So in every case below: every set answers STORED, every read
 * answers a value that is exactly what was stored or a miss (never an error
 * line, never wrong bytes), and the server exits 0 on SIGTERM. Per case:
 *
 *   write_eio        writes fail for good (EIO from some call on): logged
 *                    once (not once per retry), counted (flash_io_errors,
 *                    flash_degraded yes), sets/gets/deletes keep working
 *                    from RAM;
 *   write_eio_window a few calls fail: the writer comes back (flash_degraded
 *                    no) within its backoff, demotion resumes, and nothing
 *                    written after the recovery is lost;
 *   write_enospc, write_enospc_window  the same with ENOSPC;
 *   map_full_window  MAP_FULL injected: map_full counted, then recovery;
 *   map_full_real    --flash-size 8m and 64 MB of data: flash evicts the
 *                    oldest data, stays within its size, no error anywhere,
 *                    the newest data is all there;
 *   read_eio         LMDB fails while gets read flash-resident keys: the
 *                    gets answer misses, flash_io_errors counts them;
 *   each_call_once   the first write batch is a single item (every other
 *                    item expires too soon to be admitted to flash); for
 *                    each of the first LMDB calls of the process in turn,
 *                    that one call fails: the writer must come back and
 *                    demote again, and the server must stop cleanly.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flash_testlib.h"

#define VLEN        1000
#define BATCH       100
#define RECOVER_MS  40000 /* the writer retries with backoff from 1 s up to 30 s */
#define EACH_CALL_N 10

/* ---------------------------------------------------------------- helpers */

struct tally {
    long stored, refused, hits, misses, wrong;
    char first_refusal[256], first_wrong[256];
};

static void key_of(const char *prefix, long i, char *out)
{
    snprintf(out, 48, "%s:%06ld", prefix, i);
}

static uint32_t flags_of(long i)
{
    return (uint32_t)ft_mix((uint64_t)i) & 0xffff;
}

/* Set keys prefix:from .. prefix:to-1 (1000-byte values, given exptime),
 * pipelined; every reply must be STORED. */
static void write_keys(int port, const char *prefix, long from, long to, const char *exptime,
                       struct tally *t)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "connect: %s", c.err);
    char *buf = malloc(BATCH * (VLEN + 100));
    ck_assert_ptr_nonnull(buf);
    for (long i = from; i < to; i += BATCH) {
        long nb = to - i < BATCH ? to - i : BATCH;
        size_t n = 0;
        for (long b = 0; b < nb; b++) {
            char key[48];
            key_of(prefix, i + b, key);
            n += (size_t)sprintf(buf + n, "set %s %" PRIu32 " %s %d\r\n", key, flags_of(i + b),
                                 exptime, VLEN);
            ft_seg_make(buf + n, key, strlen(key), 1, VLEN);
            memcpy(buf + n + VLEN, "\r\n", 2);
            n += VLEN + 2;
        }
        ck_assert_msg(ft_send(&c, buf, n) == 0, "%s", c.err);
        for (long b = 0; b < nb; b++) {
            const char *line;
            size_t ln;
            ck_assert_msg(ft_line(&c, &line, &ln) == 0, "set %s:%ld: %s", prefix, i + b, c.err);
            if (ln == 6 && memcmp(line, "STORED", 6) == 0) {
                t->stored++;
            } else if (t->refused++ == 0) {
                snprintf(t->first_refusal, sizeof(t->first_refusal), "set %s:%06ld: %.*s", prefix,
                         i + b, (int)(ln > 200 ? 200 : ln), line);
            }
        }
    }
    free(buf);
    ft_close(&c);
}

/* Read keys prefix:from .. to-1 with multi-gets: each value must be exactly
 * what was stored, or missing. Returns the hits of this call. */
static long read_keys(int port, const char *prefix, long from, long to, struct tally *t)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "connect: %s", c.err);
    char req[BATCH * 48 + 16];
    long hits = 0;
    for (long i = from; i < to; i += BATCH) {
        long nb = to - i < BATCH ? to - i : BATCH;
        size_t n = (size_t)sprintf(req, "get");
        for (long b = 0; b < nb; b++) {
            char key[48];
            key_of(prefix, i + b, key);
            n += (size_t)sprintf(req + n, " %s", key);
        }
        n += (size_t)sprintf(req + n, "\r\n");
        ck_assert_msg(ft_send(&c, req, n) == 0, "%s", c.err);
        long got = 0;
        for (;;) {
            struct ft_value v;
            int r = ft_next_value(&c, &v);
            ck_assert_msg(r >= 0, "get %s:%06ld..: the reply is not values and END: %s", prefix, i,
                          c.err);
            if (r == 0)
                break;
            got++;
            uint64_t first, last;
            char err[200];
            long idx = atol(strchr(v.key, ':') + 1);
            bool ok =
                strncmp(v.key, prefix, strlen(prefix)) == 0 &&
                ft_value_check(v.data, v.n, v.key, v.nkey, &first, &last, err, sizeof(err)) == 1 &&
                last == 1 && v.n == VLEN && v.flags == flags_of(idx);
            if (!ok && t->wrong++ == 0)
                snprintf(t->first_wrong, sizeof(t->first_wrong),
                         "%.60s: %zu bytes, flags %" PRIu32 " (%s)", v.key, v.n, v.flags,
                         v.n == VLEN ? "wrong version, flags or key" : "wrong length");
        }
        hits += got;
        t->hits += got;
        t->misses += nb - got;
    }
    ft_close(&c);
    return hits;
}

/* set, get, delete, get on a fresh key: RAM must serve it exactly. */
static void serve_check(int port, const char *tag, int round)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s: connect: %s", tag, c.err);
    char key[64], val[VLEN];
    snprintf(key, sizeof(key), "serve:%s:%d", tag, round);
    ft_seg_make(val, key, strlen(key), 1, VLEN);
    ck_assert_int_eq(ft_sendf(&c, "set %s 17 0 %d\r\n", key, VLEN), 0);
    ck_assert_int_eq(ft_send(&c, val, VLEN), 0);
    ck_assert_int_eq(ft_send(&c, "\r\n", 2), 0);
    ck_assert_msg(ft_expect(&c, "STORED") == 0, "%s: set %s: %s", tag, key, c.err);
    ck_assert_int_eq(ft_sendf(&c, "get %s\r\n", key), 0);
    struct ft_value v;
    ck_assert_msg(ft_next_value(&c, &v) == 1, "%s: get %s: %s", tag, key, c.err);
    ck_assert_msg(v.n == VLEN && memcmp(v.data, val, VLEN) == 0 && v.flags == 17,
                  "%s: get %s: wrong value", tag, key);
    ck_assert_msg(ft_expect(&c, "END") == 0, "%s: %s", tag, c.err);
    ck_assert_int_eq(ft_sendf(&c, "delete %s\r\n", key), 0);
    ck_assert_msg(ft_expect(&c, "DELETED") == 0, "%s: delete %s: %s", tag, key, c.err);
    ck_assert_int_eq(ft_sendf(&c, "get %s\r\n", key), 0);
    ck_assert_msg(ft_expect(&c, "END") == 0, "%s: get %s after delete: %s", tag, key, c.err);
    ft_close(&c);
}

static void assert_no_refusal(const struct tally *t, const char *what)
{
    ck_assert_msg(t->refused == 0, "%s: %ld sets refused; the first: %s", what, t->refused,
                  t->first_refusal);
}

static void assert_nothing_wrong(const struct tally *t, const char *what)
{
    ck_assert_msg(t->wrong == 0, "%s: %ld wrong values; the first: %s", what, t->wrong,
                  t->first_wrong);
}

/* Stop the server; returns its wait status (after checking it did not die
 * before). Log and report with assert_exit_zero(), after the test's own
 * checks, so that those come first in a failure report. */
static int stop(struct ft_server *s, const char *what, long long *ms)
{
    ck_assert_msg(ft_alive(s), "%s: tiercached died", what);
    long long t0 = ts_now_ms();
    int status = ft_stop(s);
    *ms = ts_now_ms() - t0;
    if (!ft_exited_zero(status))
        ft_dump_log(s, what);
    return status;
}

static void assert_exit_zero(int status, long long ms, const char *what)
{
    char text[80];
    ck_assert_msg(ft_exited_zero(status), "%s: tiercached did not exit 0 on SIGTERM (%s, %lld ms)",
                  what, ft_status_text(status, text, sizeof(text)), ms);
}

static void stop_cleanly(struct ft_server *s, const char *what)
{
    long long ms;
    int status = stop(s, what, &ms);
    assert_exit_zero(status, ms, what);
}

static const char *const base_args[] = {"-m", "4", "-t", "2", NULL};

/* ---------------------------------------------------------------- writes failing for good */

static void write_fails_for_good(const char *error, const char *log_text)
{
    char spec[64];
    snprintf(spec, sizeof(spec), "300:%s", error); /* some batches succeed first */
    struct ft_server s;
    ck_assert_int_eq(ft_start(&s, spec, base_args), 0);
    int port = s.ts.port;
    struct tally t = {0};

    /* 20 MB through 4 MB of RAM: the writer's calls soon start failing. */
    write_keys(port, "a", 0, 20000, "0", &t);
    assert_no_refusal(&t, "writing while flash fails");
    ck_assert_msg(ft_wait_degraded(port, true, 10000),
                  "flash_degraded did not say yes after the writes failed");
    ck_assert_msg(ft_tier(port, "flash_io_errors") > 0, "flash_io_errors did not count the %s",
                  error);

    /* Keep serving from RAM for a while: long enough for several retries. */
    long long until = ts_now_ms() + 5000;
    int rounds = 0;
    for (; ts_now_ms() < until; rounds++) {
        serve_check(port, error, rounds);
        write_keys(port, "b", (long)rounds * 1000, (long)rounds * 1000 + 1000, "0", &t);
        ft_pause_ms(100);
    }
    assert_no_refusal(&t, "writing while degraded");
    ck_assert_msg(ft_degraded(port) == 1, "flash_degraded went back to no while %s persists",
                  error);

    /* Whatever survived is exactly what was written; the newest is in RAM. */
    read_keys(port, "a", 0, 20000, &t);
    read_keys(port, "b", 0, (long)rounds * 1000 - 1000, &t);
    assert_nothing_wrong(&t, "reading while degraded");
    struct tally recent = {0};
    read_keys(port, "b", (long)rounds * 1000 - 1000, (long)rounds * 1000, &recent);
    assert_nothing_wrong(&recent, "reading while degraded");
    ck_assert_msg(recent.misses == 0, "%ld of the 1000 keys just written are missing",
                  recent.misses);

    /* Logged once: one line for the error, one for going degraded, however
     * many times the writer retried meanwhile. */
    int err_lines = ft_count_lines(s.ts.log_path, log_text);
    int degraded_lines = ft_count_lines(s.ts.log_path, "writes failing");
    long long errors_counted = ft_tier(port, "flash_io_errors");
    long long ms;
    int status = stop(&s, error, &ms);
    ck_assert_msg(err_lines >= 1 && err_lines <= 3,
                  "the log has %d lines with \"%s\" (want it logged once per failing site)",
                  err_lines, log_text);
    ck_assert_msg(degraded_lines == 1,
                  "the log says \"writes failing\" %d times during one failure that lasted 5 s "
                  "(%lld errors counted): it should be logged once, not once per retry",
                  degraded_lines, errors_counted);
    assert_exit_zero(status, ms, error);
}

START_TEST(test_write_eio)
{
    write_fails_for_good("EIO", "Input/output error");
}
END_TEST

START_TEST(test_write_enospc)
{
    write_fails_for_good("ENOSPC", "No space left on device");
}
END_TEST

/* ---------------------------------------------------------------- a window of failures */

/*
 * Wait until flash works again: flash_degraded no, then new data reaches
 * flash (demotions grow). Keeps writing fresh keys so there is something to
 * demote. Returns the ms it took, or -1.
 */
static long long wait_recovery(int port, const char *prefix, long *next_key, struct tally *t,
                               int timeout_ms)
{
    long long t0 = ts_now_ms(), deadline = t0 + timeout_ms;
    while (ts_now_ms() < deadline) {
        if (ft_degraded(port) != 0) {
            ft_pause_ms(50);
            continue;
        }
        long long d0 = ft_tier(port, "demotions");
        write_keys(port, prefix, *next_key, *next_key + 3000, "0", t);
        *next_key += 3000;
        if (ft_wait_tier_at_least(port, "demotions", d0 + 500, 5000) >= d0 + 500 &&
            ft_degraded(port) == 0)
            return ts_now_ms() - t0;
    }
    return -1;
}

static void write_fails_for_a_while(const char *spec, const char *what, bool expect_degraded)
{
    struct ft_server s;
    ck_assert_int_eq(ft_start(&s, spec, base_args), 0);
    int port = s.ts.port;
    struct tally t = {0};
    write_keys(port, "a", 0, 20000, "0", &t);
    assert_no_refusal(&t, what);
    long long errors = ft_wait_tier_at_least(
        port, expect_degraded ? "flash_io_errors" : "writer_map_full", 1, 10000);
    ck_assert_msg(errors >= 1, "%s: the injected failure was not counted", what);

    long next = 0;
    long long ms = wait_recovery(port, "r", &next, &t, RECOVER_MS);
    if (ms < 0)
        ft_dump_log(&s, what);
    ck_assert_msg(ms >= 0,
                  "%s: the writer did not come back within %d s (flash_degraded %d, demotions "
                  "%lld, writer_queue_ops %lld)",
                  what, RECOVER_MS / 1000, ft_degraded(port), ft_tier(port, "demotions"),
                  ft_tier(port, "writer_queue_ops"));
    fprintf(stderr, "%s: flash works again after %lld ms\n", what, ms);
    assert_no_refusal(&t, what);

    /* Healthy again: nothing written from now on may be lost. */
    write_keys(port, "z", 0, 8000, "0", &t);
    ck_assert_msg(ft_wait_writer_idle(port, 30000), "%s: the writer did not drain", what);
    struct tally after = {0};
    read_keys(port, "z", 0, 8000, &after);
    ck_assert_msg(after.misses == 0 && after.wrong == 0,
                  "%s: after the recovery %ld of 8000 keys are missing, %ld wrong (%s)", what,
                  after.misses, after.wrong, after.first_wrong);
    ck_assert_msg(ft_degraded(port) == 0, "%s: degraded again", what);
    read_keys(port, "a", 0, 20000, &t);
    read_keys(port, "r", 0, next, &t);
    assert_nothing_wrong(&t, what);
    assert_no_refusal(&t, what);
    stop_cleanly(&s, what);
}

START_TEST(test_write_eio_window)
{
    write_fails_for_a_while("300:EIO:3", "EIO window", true);
}
END_TEST

START_TEST(test_write_enospc_window)
{
    write_fails_for_a_while("300:ENOSPC:3", "ENOSPC window", true);
}
END_TEST

START_TEST(test_map_full_window)
{
    write_fails_for_a_while("300:MAP_FULL:3", "MAP_FULL window", false);
}
END_TEST

/* ---------------------------------------------------------------- a really full map */

START_TEST(test_map_full_real)
{
    struct ft_server s;
    ck_assert_int_eq(
        ft_start(&s, NULL, (const char *const[]){"-m", "4", "-t", "2", "--flash-size", "8m", NULL}),
        0);
    int port = s.ts.port;
    struct tally t = {0};
    enum { N = 64000 }; /* 64 MB through 4 MB of RAM and 8 MB of flash */
    write_keys(port, "m", 0, N, "0", &t);
    assert_no_refusal(&t, "filling an 8 MB flash tier");
    ck_assert_msg(ft_wait_writer_idle(port, 60000), "the writer did not drain");

    struct ft_stats *st = malloc(sizeof(*st));
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(ft_stats_get(port, "stats tiers", st), 0);
    char degraded[16];
    ft_stats_str(st, "flash_degraded", degraded, sizeof(degraded));
    fprintf(stderr,
            "full map: flash_items %lld flash_used_bytes %lld flash_disk_bytes %lld "
            "flash_evictions %lld flash_evicted_batches %lld writer_map_full %lld "
            "flash_io_errors %lld demotions_failed %lld writer_held_deletes %lld degraded %s\n",
            ft_stats_num(st, "flash_items"), ft_stats_num(st, "flash_used_bytes"),
            ft_stats_num(st, "flash_disk_bytes"), ft_stats_num(st, "flash_evictions"),
            ft_stats_num(st, "flash_evicted_batches"), ft_stats_num(st, "writer_map_full"),
            ft_stats_num(st, "flash_io_errors"), ft_stats_num(st, "demotions_failed"),
            ft_stats_num(st, "writer_held_deletes"), degraded);
    char path[300];
    snprintf(path, sizeof(path), "%s/data.mdb", s.ts.data_dir);
    struct stat sb;
    ck_assert_msg(stat(path, &sb) == 0, "no %s", path);

    /* Oldest data went first; the newest is all there; nothing is wrong. */
    struct tally oldest = {0}, newest = {0};
    read_keys(port, "m", 0, 10000, &oldest);
    read_keys(port, "m", N - 2000, N, &newest);
    read_keys(port, "m", 10000, N - 2000, &t);
    serve_check(port, "fullmap", 0);
    int failing = ft_count_lines(s.ts.log_path, "writes failing");
    char log_path[sizeof(s.ts.log_path)];
    memcpy(log_path, s.ts.log_path, sizeof(log_path));
    long long ms;
    int status = stop(&s, "full map", &ms);

    assert_nothing_wrong(&oldest, "oldest keys");
    assert_nothing_wrong(&newest, "newest keys");
    assert_nothing_wrong(&t, "all keys");
    ck_assert_msg(newest.misses == 0, "%ld of the 2000 newest keys are missing", newest.misses);
    ck_assert_msg(failing == 0,
                  "a full map is not a failure, but flash went degraded %d times (\"writes "
                  "failing\" in the log): RAM dropped %lld items it could not demote "
                  "(ram_dropped_dirty), while flash kept %ld of the 10000 oldest keys",
                  failing, ft_stats_num(st, "ram_dropped_dirty"), oldest.hits);
    ck_assert_msg(oldest.misses >= 9000,
                  "%ld of the 10000 oldest keys are still there: flash did not evict oldest first",
                  oldest.hits);
    ck_assert_msg(ft_stats_num(st, "flash_evictions") > 0 &&
                      ft_stats_num(st, "flash_evicted_batches") > 0,
                  "flash never evicted although 64 MB went through 8 MB");
    ck_assert_msg(ft_stats_num(st, "flash_used_bytes") <= 8LL << 20,
                  "flash_used_bytes %lld is over --flash-size",
                  ft_stats_num(st, "flash_used_bytes"));
    ck_assert_msg(sb.st_size <= 8LL << 20 && (long long)sb.st_blocks * 512 <= 8LL << 20,
                  "the data file is %lld bytes (%lld allocated), over --flash-size 8m",
                  (long long)sb.st_size, (long long)sb.st_blocks * 512);
    ck_assert_msg(strcmp(degraded, "no") == 0 && ft_stats_num(st, "flash_io_errors") == 0,
                  "a full map left flash degraded (%s) or counted I/O errors (%lld)", degraded,
                  ft_stats_num(st, "flash_io_errors"));
    ck_assert_msg(ft_stats_num(st, "writer_held_deletes") == 0,
                  "writer_held_deletes says %lld although flash is not degraded and the writer "
                  "queue is empty",
                  ft_stats_num(st, "writer_held_deletes"));
    /* Stopping writes RAM to flash (SPEC §5); a full flash makes room for it. */
    ck_assert_msg(ft_count_lines(log_path, "could not write everything") == 0,
                  "stopping with a full flash tier lost the RAM tier (log: \"could not write "
                  "everything before stopping\")");
    assert_exit_zero(status, ms, "full map");
    free(st);
}
END_TEST

/* ---------------------------------------------------------------- reads failing */

/*
 * Only "p:" keys may go to flash (the filler expires before --flash-min-ttl),
 * so the writer's calls are few and done before the reads start; the fault
 * starts at call READ_FAULT_AT, past them, and from then on every LMDB call
 * fails: the reads of flash-resident keys meet it.
 */
#define READ_FAULT_AT 4000
#define PRECIOUS      400

static void push_out(int port, long *seq, int mb)
{
    struct tally t = {0};
    write_keys(port, "fill", *seq, *seq + mb * 1000, "3600", &t);
    *seq += mb * 1000;
    assert_no_refusal(&t, "filler");
}

START_TEST(test_read_eio)
{
    char spec[64];
    snprintf(spec, sizeof(spec), "%d:EIO", READ_FAULT_AT);
    struct ft_server s;
    ck_assert_int_eq(
        ft_start(&s, spec,
                 (const char *const[]){"-m", "4", "-t", "2", "--flash-min-ttl", "100000", NULL}),
        0);
    int port = s.ts.port;
    struct tally t = {0};
    long seq = 0;
    write_keys(port, "p", 0, PRECIOUS, "0", &t);
    push_out(port, &seq, 8);
    ck_assert_msg(ft_wait_writer_idle(port, 30000), "the writer did not drain");
    ck_assert_msg(ft_wait_tier_eq(port, "flash_items", PRECIOUS, 10000),
                  "flash_items is %lld, not the %d admissible keys", ft_tier(port, "flash_items"),
                  PRECIOUS);
    ck_assert_msg(ft_tier(port, "flash_io_errors") == 0,
                  "the fault fired before the reads started (raise READ_FAULT_AT)");

    /* Read the keys from flash (pushing them out again after each round,
     * as the second hit brings them back to RAM) until the fault fires. */
    long long deadline = ts_now_ms() + 30000;
    int rounds = 0;
    while (ft_tier(port, "flash_io_errors") == 0 && ts_now_ms() < deadline) {
        struct tally r = {0};
        read_keys(port, "p", 0, PRECIOUS, &r);
        assert_nothing_wrong(&r, "reading before and while the fault fires");
        if (ft_tier(port, "flash_io_errors") == 0)
            ck_assert_msg(r.misses == 0, "%ld keys missing before any error", r.misses);
        if (++rounds % 2 == 0)
            push_out(port, &seq, 6);
    }
    ck_assert_msg(ft_tier(port, "flash_io_errors") > 0, "the reads never met the fault");

    /* Failing reads: misses, counted, never an error reply or wrong bytes. */
    push_out(port, &seq, 6);
    long long e0 = ft_tier(port, "flash_io_errors");
    struct tally r = {0};
    read_keys(port, "p", 0, PRECIOUS, &r);
    long long e1 = ft_tier(port, "flash_io_errors");
    fprintf(stderr,
            "read faults: %d rounds before the fault; then %ld hits, %ld misses, %lld new errors\n",
            rounds, r.hits, r.misses, e1 - e0);
    assert_nothing_wrong(&r, "reading while every read fails");
    ck_assert_msg(r.misses > 0, "no get missed while every LMDB read fails");
    ck_assert_msg(e1 > e0, "failed reads were not counted in flash_io_errors");
    serve_check(port, "readfail", 0);
    ck_assert_msg(ft_count_lines(s.ts.log_path, "Input/output error") >= 1,
                  "the read errors were not logged");
    stop_cleanly(&s, "read faults");
}
END_TEST

/* ---------------------------------------------------------------- each call, once */

/* One run: LMDB call `nth` fails once. Returns NULL or what went wrong. */
static const char *one_call_fails(int nth, char *why, size_t cap)
{
    char spec[32];
    snprintf(spec, sizeof(spec), "%d:EIO:1", nth);
    struct ft_server s;
    ck_assert_int_eq(
        ft_start(&s, spec,
                 (const char *const[]){"-m", "4", "-t", "2", "--flash-min-ttl", "100000", NULL}),
        0);
    int port = s.ts.port;
    struct tally t = {0};
    long seq = 0;
    const char *res = NULL;

    /* The first batch: one admissible item; then read it (read calls). */
    write_keys(port, "one", 0, 1, "0", &t);
    push_out(port, &seq, 6);
    for (int i = 0; i < 3; i++)
        read_keys(port, "one", 0, 1, &t);
    ft_wait_tier_at_least(port, "flash_io_errors", 1, 2000);

    /* The writer must come back and write a new item to flash. */
    long long deadline = ts_now_ms() + RECOVER_MS;
    bool recovered = false;
    for (int attempt = 1; !recovered && ts_now_ms() < deadline; attempt++) {
        if (ft_degraded(port) != 0) {
            ft_pause_ms(50);
            continue;
        }
        long long d0 = ft_tier(port, "demotions");
        write_keys(port, "two", attempt, attempt + 1, "0", &t);
        push_out(port, &seq, 6);
        if (ft_wait_tier_at_least(port, "demotions", d0 + 1, 5000) > d0) {
            struct tally r = {0};
            long long h0 = ft_tier(port, "flash_hits");
            read_keys(port, "two", attempt, attempt + 1, &r);
            recovered = r.hits == 1 && r.wrong == 0 && ft_tier(port, "flash_hits") > h0;
        }
    }
    read_keys(port, "one", 0, 1, &t);
    if (!recovered) {
        snprintf(why, cap,
                 "call %d failing once: the writer never demoted again (flash_degraded %d, "
                 "demotions %lld, flash_io_errors %lld, writer_queue_ops %lld)",
                 nth, ft_degraded(port), ft_tier(port, "demotions"),
                 ft_tier(port, "flash_io_errors"), ft_tier(port, "writer_queue_ops"));
        res = why;
    } else if (t.refused > 0 || t.wrong > 0) {
        snprintf(why, cap,
                 "call %d failing once: %ld refused sets (%.150s), %ld wrong values (%.150s)", nth,
                 t.refused, t.first_refusal, t.wrong, t.first_wrong);
        res = why;
    }
    if (res != NULL)
        ft_dump_log(&s, res);
    long long t0 = ts_now_ms();
    int status = ft_stop(&s);
    if (!ft_exited_zero(status)) {
        size_t n = res != NULL ? strlen(why) : 0;
        char text[80];
        snprintf(why + n, cap - n, "%scall %d failing once: no clean exit on SIGTERM (%s, %lld ms)",
                 res != NULL ? "; " : "", nth, ft_status_text(status, text, sizeof(text)),
                 ts_now_ms() - t0);
        res = why;
    }
    return res;
}

START_TEST(test_each_call_once)
{
    char why[EACH_CALL_N][512];
    int failed = 0;
    char summary[4096] = "";
    for (int nth = 1; nth <= EACH_CALL_N; nth++) {
        long long t0 = ts_now_ms();
        const char *r = one_call_fails(nth, why[nth - 1], sizeof(why[0]));
        fprintf(stderr, "LMDB call %d fails once: %s (%lld ms)\n", nth, r ? r : "recovered",
                ts_now_ms() - t0);
        if (r != NULL) {
            failed++;
            size_t n = strlen(summary);
            snprintf(summary + n, sizeof(summary) - n, "\n  %s", r);
        }
    }
    ck_assert_msg(failed == 0, "%d of %d positions fail:%s", failed, EACH_CALL_N, summary);
}
END_TEST

int main(void)
{
    /* One case per failure path, so that CK_RUN_CASE=<name> runs just one. */
    const struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        {"write_eio", test_write_eio},
        {"write_eio_window", test_write_eio_window},
        {"write_enospc", test_write_enospc},
        {"write_enospc_window", test_write_enospc_window},
        {"map_full_window", test_map_full_window},
        {"map_full_real", test_map_full_real},
        {"read_eio", test_read_eio},
        {"each_call_once", test_each_call_once},
    };
    Suite *s = suite_create("flash_faults");
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_add_test(tc, tests[i].test);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
