/*
 * check_metadump.c: `lru_crawler metadump` against the real binaries on
 * loopback.
 *
 * What matters: tiercached lists the same keys as memcached in the same
 * line syntax (times, CAS, class and size masked: they legitimately
 * differ), escaping keys as memcached does; with a flash tier far larger
 * than RAM every live key is listed exactly once and deleted keys never;
 * commands pipelined after a metadump are answered after its END; a slow
 * reader of a large dump does not make the server buffer it (its RSS stays
 * flat); `lru_crawler disable` turns metadump off until `enable`; a client
 * that hangs up mid-dump leaves a working server.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define TIMEOUT_MS 60000

/* ------------------------------------------------------------------ helpers */

struct buf {
    char *p;
    size_t n, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 65536;
        while (nc < b->n + n + 1)
            nc *= 2;
        b->p = realloc(b->p, nc);
        ck_assert_ptr_nonnull(b->p);
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static bool ends_with(const struct buf *b, const char *s)
{
    size_t n = strlen(s);
    return b->n >= n && memcmp(b->p + b->n - n, s, n) == 0;
}

/* Send req and read until the reply ends with `end` (bounded). */
static void exchange(int fd, const char *req, size_t reqlen, const char *end, struct buf *out)
{
    ck_assert_int_eq(ts_send_all(fd, req, reqlen), 0);
    char chunk[65536];
    long long deadline = ts_now_ms() + TIMEOUT_MS;
    while (!ends_with(out, end)) {
        ck_assert_msg(ts_now_ms() < deadline, "no complete reply within %d ms", TIMEOUT_MS);
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        ck_assert_msg(n > 0, "the server closed or failed while we read its reply");
        buf_add(out, chunk, (size_t)n);
    }
}

static void metadump(int port, struct buf *out)
{
    int fd = ts_connect(port);
    ck_assert_int_ge(fd, 0);
    static const char req[] = "lru_crawler metadump all\r\n";
    exchange(fd, req, sizeof(req) - 1, "END\r\n", out);
    close(fd);
}

/* Store n keys "<prefix><i>" with vlen-byte values, pipelined, noreply. */
static void fill(int port, const char *prefix, unsigned from, unsigned n, unsigned vlen)
{
    int fd = ts_connect(port);
    ck_assert_int_ge(fd, 0);
    struct buf b = {0};
    char *val = malloc(vlen + 2);
    ck_assert_ptr_nonnull(val);
    memset(val, 'v', vlen);
    memcpy(val + vlen, "\r\n", 2);
    for (unsigned i = from; i < from + n; i++) {
        char hdr[128];
        int hn = snprintf(hdr, sizeof(hdr), "set %s%u 0 0 %u noreply\r\n", prefix, i, vlen);
        buf_add(&b, hdr, (size_t)hn);
        buf_add(&b, val, vlen + 2);
        if (b.n > (1u << 20) || i + 1 == from + n) {
            ck_assert_int_eq(ts_send_all(fd, b.p, b.n), 0);
            b.n = 0;
        }
    }
    struct buf r = {0};
    exchange(fd, "version\r\n", 9, "\r\n", &r); /* everything before it is done */
    free(r.p);
    free(b.p);
    free(val);
    close(fd);
}

/* Every line but the last ("END\r\n") ends in a bare "\n": split into an array. */
static char **lines_of(struct buf *b, size_t *count)
{
    ck_assert_msg(ends_with(b, "END\r\n"), "the dump does not end with END");
    size_t cap = 1024, n = 0;
    char **v = malloc(cap * sizeof(*v));
    ck_assert_ptr_nonnull(v);
    char *p = b->p, *end = b->p + b->n - 5;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        ck_assert_msg(nl != NULL, "a metadump line without its newline");
        ck_assert_msg(nl == p || nl[-1] != '\r', "a metadump line ends in \\r\\n (memcached: \\n)");
        *nl = '\0';
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof(*v));
            ck_assert_ptr_nonnull(v);
        }
        v[n++] = p;
        p = nl + 1;
    }
    *count = n;
    return v;
}

/* The line with times, CAS, class and size replaced by '#': what must match. */
static void mask(const char *line, char *out, size_t cap)
{
    char key[1024], exp[32], fetch[8];
    unsigned long long la, cas, cls, size;
    int n = sscanf(line, "key=%1023s exp=%31s la=%llu cas=%llu fetch=%7s cls=%llu size=%llu", key,
                   exp, &la, &cas, fetch, &cls, &size);
    ck_assert_msg(n == 7, "a metadump line out of shape: '%s'", line);
    ck_assert_msg(strcmp(fetch, "yes") == 0 || strcmp(fetch, "no") == 0, "bad fetch in '%s'", line);
    snprintf(out, cap, "key=%s exp=%s la=# cas=# fetch=%s cls=# size=#", key,
             strcmp(exp, "-1") == 0 ? "-1" : "#", fetch);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ------------------------------------------------------------------ tests */

/* Keys with bytes memcached escapes: % ? & = / + : unicode and controls. */
static const char *const SPECIAL_KEYS[] = {
    "plain",       "with%percent",  "q?x=1&y=2",
    "a/b+c:d",     "utf8-\xc3\xa9", "tilde~dot.under_score-dash",
    "ctl\x01\x7f", "quote\"'<>",    "hash#bang!",
    "\xff\xfe",
};
#define NSPECIAL (sizeof(SPECIAL_KEYS) / sizeof(SPECIAL_KEYS[0]))

static void load_specials(int port)
{
    int fd = ts_connect(port);
    ck_assert_int_ge(fd, 0);
    for (size_t i = 0; i < NSPECIAL; i++) {
        char req[512];
        int n = snprintf(req, sizeof(req), "set %s %zu %d %zu\r\n%0*zu\r\n", SPECIAL_KEYS[i], i,
                         i % 3 == 0 ? 1000 : 0, i * 10 + 1, (int)(i * 10 + 1), i);
        struct buf r = {0};
        exchange(fd, req, (size_t)n, "\r\n", &r);
        ck_assert_str_eq(r.p, "STORED\r\n");
        free(r.p);
    }
    struct buf r = {0};
    exchange(fd, "get plain\r\n", 11, "END\r\n", &r); /* fetch=yes for one */
    free(r.p);
    close(fd);
}

START_TEST(test_same_keys_and_syntax_as_memcached)
{
    struct tserver mc, tc;
    ck_assert_int_eq(ts_start_memcached(&mc, NULL), 0);
    const char *const targs[] = {"--flash-size=0", NULL};
    ck_assert_int_eq(ts_start_tiercached(&tc, targs), 0);
    load_specials(mc.port);
    load_specials(tc.port);
    fill(mc.port, "n", 0, 500, 100);
    fill(tc.port, "n", 0, 500, 100);

    struct buf bm = {0}, bt = {0};
    metadump(mc.port, &bm);
    metadump(tc.port, &bt);
    /* The escaping, spelled out. */
    ck_assert_ptr_nonnull(strstr(bt.p, "key=with%25percent "));
    ck_assert_ptr_nonnull(strstr(bt.p, "key=q%3Fx%3D1%26y%3D2 "));
    ck_assert_ptr_nonnull(strstr(bt.p, "key=utf8-%C3%A9 "));
    ck_assert_ptr_nonnull(strstr(bt.p, "key=ctl%01%7F "));
    ck_assert_ptr_nonnull(strstr(bt.p, "key=tilde~dot.under_score-dash "));
    size_t nm, nt;
    char **lm = lines_of(&bm, &nm), **lt = lines_of(&bt, &nt);
    ck_assert_uint_eq(nm, NSPECIAL + 500);
    ck_assert_uint_eq(nt, nm);
    char **mm = malloc(nm * sizeof(*mm)), **mt = malloc(nt * sizeof(*mt));
    for (size_t i = 0; i < nm; i++) {
        char tmp[2048];
        mask(lm[i], tmp, sizeof(tmp));
        mm[i] = strdup(tmp);
        mask(lt[i], tmp, sizeof(tmp));
        mt[i] = strdup(tmp);
    }
    qsort(mm, nm, sizeof(*mm), cmp_str);
    qsort(mt, nt, sizeof(*mt), cmp_str);
    for (size_t i = 0; i < nm; i++)
        ck_assert_msg(strcmp(mm[i], mt[i]) == 0, "memcached '%s' vs tiercached '%s'", mm[i], mt[i]);
    for (size_t i = 0; i < nm; i++) {
        free(mm[i]);
        free(mt[i]);
    }
    free(mm);
    free(mt);
    free(lm);
    free(lt);
    free(bm.p);
    free(bt.p);
    ts_stop(&mc);
    ts_stop(&tc);
}
END_TEST

#define NFLASH 40000

/* Wait (bounded) until the flash writer has nothing queued, twice in a row. */
static void settle(int port)
{
    long long deadline = ts_now_ms() + 30000;
    int quiet = 0;
    while (quiet < 3) {
        ck_assert_msg(ts_now_ms() < deadline, "the flash writer did not settle in 30 s");
        long long q = ts_stat(port, "stats tiers", "writer_queue_ops");
        ck_assert_int_ge(q, 0);
        quiet = q == 0 ? quiet + 1 : 0;
        usleep(100000);
    }
}

START_TEST(test_flash_every_live_key_once)
{
    struct tserver tc;
    const char *const args[] = {"-m", "8", "--flash-size=256m", NULL};
    ck_assert_int_eq(ts_start_tiercached(&tc, args), 0);
    fill(tc.port, "f", 0, NFLASH, 1000); /* 40 MB: five times RAM */
    int fd = ts_connect(tc.port);
    ck_assert_int_ge(fd, 0);
    struct buf b = {0};
    for (unsigned i = 0; i < NFLASH; i += 7) {
        char req[64];
        int n = snprintf(req, sizeof(req), "delete f%u noreply\r\n", i);
        buf_add(&b, req, (size_t)n);
    }
    struct buf r = {0};
    buf_add(&b, "version\r\n", 9);
    exchange(fd, b.p, b.n, "\r\n", &r);
    ck_assert_ptr_nonnull(strstr(r.p, "VERSION"));
    close(fd);
    settle(tc.port);
    long long flash_items = ts_stat(tc.port, "stats tiers", "flash_items");
    ck_assert_msg(flash_items > NFLASH / 2, "only %lld items on flash", flash_items);

    struct buf d = {0};
    metadump(tc.port, &d);
    size_t n;
    char **lines = lines_of(&d, &n);
    unsigned char *count = calloc(NFLASH, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned k;
        ck_assert_msg(sscanf(lines[i], "key=f%u ", &k) == 1 && k < NFLASH, "stray line '%s'",
                      lines[i]);
        count[k]++;
    }
    for (unsigned i = 0; i < NFLASH; i++) {
        unsigned want = i % 7 == 0 ? 0 : 1;
        ck_assert_msg(count[i] == want, "key f%u listed %u times, want %u", i, count[i], want);
    }
    free(count);
    free(lines);
    free(d.p);
    free(r.p);
    free(b.p);
    ts_stop(&tc);
}
END_TEST

START_TEST(test_pipelined_after_metadump)
{
    struct tserver tc;
    ck_assert_int_eq(ts_start_tiercached(&tc, NULL), 0);
    fill(tc.port, "p", 0, 3000, 10);
    int fd = ts_connect(tc.port);
    ck_assert_int_ge(fd, 0);
    static const char req[] = "lru_crawler metadump all\r\nget p7\r\n";
    struct buf out = {0};
    exchange(fd, req, sizeof(req) - 1, "VALUE p7 0 10\r\nvvvvvvvvvv\r\nEND\r\n", &out);
    char *end = strstr(out.p, "END\r\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_ptr_eq(end + 5, out.p + out.n - strlen("VALUE p7 0 10\r\nvvvvvvvvvv\r\nEND\r\n"));
    size_t lines = 0;
    for (char *p = out.p; p < end; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, 3000);
    free(out.p);
    close(fd);
    ts_stop(&tc);
}
END_TEST

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    ck_assert_int_gt(kb, 0);
    return kb;
}

#define NBIG 300000

START_TEST(test_slow_reader_keeps_memory_flat)
{
    struct tserver tc;
    const char *const args[] = {"--flash-size=0", NULL};
    /* Under AddressSanitizer freed memory sits in a quarantine (256 MB by
     * default) and stays resident: keep it small for this server, so RSS
     * measures what the server holds. No effect on a normal build. */
    const char *old = getenv("ASAN_OPTIONS");
    char *saved = old != NULL ? strdup(old) : NULL;
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=1", old != NULL ? old : "",
             old != NULL && old[0] != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    int started = ts_start_tiercached(&tc, args);
    if (saved != NULL)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);
    ck_assert_int_eq(started, 0);
    fill(tc.port, "big-key-with-some-length-", 0, NBIG, 20);
    /* One small dump first, so whatever a dump allocates once is counted
     * in the baseline. */
    int fd0 = ts_connect(tc.port);
    struct buf r0 = {0};
    exchange(fd0, "lru_crawler metadump 63\r\n", 25, "END\r\n", &r0);
    close(fd0);
    free(r0.p);
    long before = rss_kb(tc.pid);

    int fd = ts_connect(tc.port);
    ck_assert_int_ge(fd, 0);
    static const char req[] = "lru_crawler metadump all\r\n";
    ck_assert_int_eq(ts_send_all(fd, req, sizeof(req) - 1), 0);
    char chunk[8192], tail[8] = {0};
    size_t total = 0, lines = 0;
    long peak = before;
    long long deadline = ts_now_ms() + 120000;
    for (unsigned reads = 0;; reads++) {
        ck_assert_msg(ts_now_ms() < deadline, "the slow dump took over 120 s");
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        ck_assert_msg(n > 0, "the server closed during the dump");
        total += (size_t)n;
        for (ssize_t i = 0; i < n; i++)
            lines += chunk[i] == '\n';
        size_t keep = (size_t)n < 5 ? (size_t)n : 5;
        memmove(tail, tail + keep, 5 - keep);
        memcpy(tail + 5 - keep, chunk + n - (ssize_t)keep, keep);
        if (memcmp(tail, "END\r\n", 5) == 0)
            break;
        if (reads % 16 == 0) {
            long now = rss_kb(tc.pid);
            if (now > peak)
                peak = now;
            usleep(20000); /* a reader slower than the server */
        }
    }
    ck_assert_uint_eq(lines, NBIG + 1);
    ck_assert_msg(peak - before < 4096,
                  "RSS grew by %ld kB during a slow %zu-byte dump (before %ld kB)", peak - before,
                  total, before);
    close(fd);
    ts_stop(&tc);
}
END_TEST

START_TEST(test_disable_enable_and_hangup)
{
    struct tserver tc;
    ck_assert_int_eq(ts_start_tiercached(&tc, NULL), 0);
    fill(tc.port, "h", 0, 20000, 10);
    int fd = ts_connect(tc.port);
    ck_assert_int_ge(fd, 0);
    char out[256];
    ck_assert_int_gt(ts_request(fd, "lru_crawler disable\r\n", out, sizeof(out), "\r\n"), 0);
    ck_assert_str_eq(out, "OK\r\n");
    ck_assert_int_gt(ts_request(fd, "lru_crawler metadump all\r\n", out, sizeof(out), "\r\n"), 0);
    ck_assert_str_eq(out, "CLIENT_ERROR lru crawler disabled\r\n");
    ck_assert_int_gt(ts_request(fd, "lru_crawler enable\r\n", out, sizeof(out), "\r\n"), 0);
    ck_assert_str_eq(out, "OK\r\n");
    ck_assert_int_gt(ts_request(fd, "lru_crawler enable\r\n", out, sizeof(out), "\r\n"), 0);
    ck_assert_str_eq(out, "ERROR failed to start lru crawler thread\r\n");
    /* Hang up in the middle of a dump: the walk is freed, the server serves on. */
    static const char req[] = "lru_crawler metadump all\r\n";
    ck_assert_int_eq(ts_send_all(fd, req, sizeof(req) - 1), 0);
    ck_assert_int_gt(recv(fd, out, sizeof(out), 0), 0);
    close(fd);
    struct buf d = {0};
    metadump(tc.port, &d);
    size_t n;
    char **lines = lines_of(&d, &n);
    ck_assert_uint_eq(n, 20000);
    free(lines);
    free(d.p);
    ck_assert_int_eq(ts_stop(&tc), 0);
}
END_TEST

static Suite *metadump_suite(void)
{
    Suite *s = suite_create("metadump");
    TCase *t = tcase_create("metadump");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_same_keys_and_syntax_as_memcached);
    tcase_add_test(t, test_flash_every_live_key_once);
    tcase_add_test(t, test_pipelined_after_metadump);
    tcase_add_test(t, test_slow_reader_keeps_memory_flat);
    tcase_add_test(t, test_disable_enable_and_hangup);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metadump_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
