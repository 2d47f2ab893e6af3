/*
 * check_roundtrip.c: tiercache-dump then tiercache-restore, end to end on
 * the real binaries (SPEC section 6, issue 6's "what must show"):
 *
 *   migration        a real memcached (flags, no TTL, TTLs of an hour and of
 *                    40 days, binary values, keys that metadump must
 *                    URL-encode, a 500 KB value) -> dump -s (native) ->
 *                    restore -s into a fresh tiercached;
 *   online           tiercached -m 8 with a flash tier filled far beyond
 *                    RAM -> dump native -> restore into a second tiercached;
 *                    and the same source -> dump --format=text -> the file's
 *                    bytes written to a third tiercached's socket;
 *   offline          the source stopped with SIGTERM -> dump --data-dir ->
 *                    restore --data-dir into a new dir -> tiercached on it;
 *   into_memcached   tiercached -> dump native -> restore -s into memcached.
 *
 * Every case compares the destination with the source item by item: key,
 * value bytes, flags, expiry present or not and, when present, the same
 * absolute expiry within TTL_SLACK seconds. The source is compared with the
 * model it was filled from first, so a wrong fill cannot pass for a right
 * round trip. Expiry is read with `lru_crawler metadump all` (exp=, absolute)
 * on tiercached, which has no mg yet, and with `mg KEY t` (remaining) on
 * memcached. The destination must hold no key the model lacks.
 *
 * No item expires during the test (the shortest TTL is an hour), and
 * nothing sleeps: every wait is a bounded poll. TC_ROUNDTRIP_ITEMS scales
 * the item counts (default 3000).
 */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dumpproto.h"
#include "flash_testlib.h"

#ifndef DUMP_BIN
#error "DUMP_BIN must name the tiercache-dump binary"
#endif
#ifndef RESTORE_BIN
#error "RESTORE_BIN must name the tiercache-restore binary"
#endif

#define DAY       86400
#define BIG_LEN   (500 * 1024) /* item 1's value */
#define TTL_SLACK 2            /* seconds two readings of one expiry may differ by */
#define TOOL_MS   240000       /* one tool run, ASan included */
#define SHOW_MAX  5            /* mismatches printed per comparison */
#define BATCH     100          /* requests per pipelined batch */

/* ---------------------------------------------------------------- the model */

struct model {
    uint64_t n;
    size_t maxlen;
    int64_t set_at;  /* unix time before the first set */
    int64_t set_end; /* and after the last */
};

static size_t model_len(const struct model *m, uint64_t i)
{
    if (i == 1)
        return BIG_LEN;
    return i % 10 == 0 ? 0 : (size_t)(ft_mix(i) % m->maxlen);
}

static uint32_t model_flags(uint64_t i)
{
    return i % 5 == 0 ? 0 : (uint32_t)ft_mix(i * 7 + 1);
}

/* The exptime a set sends: none for a third, about an hour (relative) for
 * a third, about 40 days for the rest (absolute: memcached reads anything
 * over 30 days as a unix time). */
static int64_t model_exptime(const struct model *m, uint64_t i)
{
    switch (i % 3) {
    case 0:
        return 0;
    case 1:
        return 3600 + (int64_t)(i % 100);
    default:
        return m->set_at + 40 * DAY + (int64_t)(i % 100);
    }
}

/* Set items [0, m->n) on port, pipelined; records when. */
static void model_fill(struct model *m, int port)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "connect to %d: %s", port, c.err);
    char *v = malloc(BIG_LEN > m->maxlen ? BIG_LEN : m->maxlen);
    ck_assert_ptr_nonnull(v);
    m->set_at = (int64_t)time(NULL);
    for (uint64_t b = 0; b < m->n; b += BATCH) {
        uint64_t end = b + BATCH < m->n ? b + BATCH : m->n;
        for (uint64_t i = b; i < end; i++) {
            char key[300];
            size_t nk = ft_model_key(i, key);
            size_t nv = model_len(m, i);
            ft_model_bytes(i ^ 0x5eed, v, nv);
            ck_assert_int_eq(ft_sendf(&c, "set %.*s %u %" PRId64 " %zu\r\n", (int)nk, key,
                                      model_flags(i), model_exptime(m, i), nv),
                             0);
            ck_assert_int_eq(ft_send(&c, v, nv), 0);
            ck_assert_int_eq(ft_send(&c, "\r\n", 2), 0);
        }
        for (uint64_t i = b; i < end; i++)
            ck_assert_msg(ft_expect(&c, "STORED") == 0, "set of item %" PRIu64 " on port %d: %s", i,
                          port, c.err);
    }
    m->set_end = (int64_t)time(NULL);
    free(v);
    ft_close(&c);
}

/* ---------------------------------------------------------------- what a server holds */

struct held {
    bool present;
    bool value_ok; /* the bytes are the model's */
    size_t nbytes;
    uint32_t flags;
    bool exp_seen; /* its expiry was read */
    int64_t exp;   /* absolute unix time; 0: none */
};

struct snap {
    const char *what; /* for messages: "source memcached" ... */
    struct held *h;   /* one per model item */
    uint64_t extra;   /* keys listed that the model does not have */
};

static void snap_init(struct snap *s, const struct model *m, const char *what)
{
    s->what = what;
    s->h = calloc(m->n, sizeof(*s->h));
    ck_assert_ptr_nonnull(s->h);
    s->extra = 0;
}

static void snap_free(struct snap *s)
{
    free(s->h);
    s->h = NULL;
}

/* Values and flags: one get per key, pipelined, every value compared with
 * the model's bytes. */
static void read_values(const struct model *m, int port, struct snap *s)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s: connect: %s", s->what, c.err);
    char *v = malloc(BIG_LEN > m->maxlen ? BIG_LEN : m->maxlen);
    ck_assert_ptr_nonnull(v);
    for (uint64_t b = 0; b < m->n; b += BATCH) {
        uint64_t end = b + BATCH < m->n ? b + BATCH : m->n;
        char key[300];
        for (uint64_t i = b; i < end; i++) {
            size_t nk = ft_model_key(i, key);
            ck_assert_int_eq(ft_sendf(&c, "get %.*s\r\n", (int)nk, key), 0);
        }
        for (uint64_t i = b; i < end; i++) {
            size_t nk = ft_model_key(i, key);
            struct ft_value fv;
            int got = ft_next_value(&c, &fv);
            ck_assert_msg(got >= 0, "%s: get %s: %s", s->what, key, c.err);
            if (got == 0)
                continue;
            ck_assert_msg(fv.nkey == nk && memcmp(fv.key, key, nk) == 0,
                          "%s: get %s answered another key", s->what, key);
            struct held *h = &s->h[i];
            size_t nv = model_len(m, i);
            ft_model_bytes(i ^ 0x5eed, v, nv);
            h->present = true;
            h->nbytes = fv.n;
            h->flags = fv.flags;
            h->value_ok = fv.n == nv && memcmp(fv.data, v, nv) == 0;
            ck_assert_msg(ft_next_value(&c, &fv) == 0, "%s: get %s: no END: %s", s->what, key,
                          c.err);
        }
    }
    free(v);
    ft_close(&c);
}

/* Expiry from `lru_crawler metadump all` (tiercached): exp= is absolute,
 * -1 for none. Keys the model lacks are counted in s->extra. Item lines end
 * in "\n" alone (as memcached's do), END in "\r\n": the whole listing is
 * read first, then split. */
static void read_exp_metadump(const struct model *m, int port, struct snap *s)
{
    int fd = ts_connect(port);
    ck_assert_msg(fd >= 0, "%s: cannot connect to port %d", s->what, port);
    const char req[] = "lru_crawler metadump all\r\n";
    ck_assert_int_eq(ts_send_all(fd, req, sizeof(req) - 1), 0);
    size_t cap = (size_t)m->n * 256 + 65536; /* a line is about 100 bytes */
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    ssize_t got = ts_recv_until(fd, buf, cap, "END\r\n", 60000);
    close(fd);
    ck_assert_msg(got > 0, "%s: no complete metadump listing within 60 s", s->what);
    size_t len = (size_t)got;
    bool ended = false;
    for (size_t off = 0; off < len && !ended;) {
        const char *line = buf + off;
        const char *nl = memchr(line, '\n', len - off);
        ck_assert_msg(nl != NULL, "%s: metadump: a line without an end", s->what);
        size_t n = (size_t)(nl - line);
        off += n + 1;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        enum dp_meta_kind kind;
        struct dp_meta dm;
        ck_assert_msg(dp_parse_meta_line(line, n, &kind, &dm) == 0,
                      "%s: metadump line \"%.*s\" does not parse", s->what,
                      (int)(n < 300 ? n : 300), line);
        ck_assert_msg(kind != DP_META_ERROR, "%s: metadump refused: \"%.*s\"", s->what,
                      (int)(n < 300 ? n : 300), line);
        if (kind == DP_META_END) {
            ended = true;
            break;
        }
        long long i = ft_model_index(dm.key, dm.nkey);
        char key[300];
        if (i < 0 || (uint64_t)i >= m->n || ft_model_key((uint64_t)i, key) != dm.nkey ||
            memcmp(key, dm.key, dm.nkey) != 0) {
            if (s->extra++ < SHOW_MAX)
                fprintf(stderr, "%s: a key the source never had: \"%.*s\"\n", s->what, (int)dm.nkey,
                        dm.key);
            continue;
        }
        s->h[i].exp_seen = true;
        s->h[i].exp = dm.exp < 0 ? 0 : dm.exp;
    }
    free(buf);
    ck_assert_msg(ended, "%s: the metadump listing has no END", s->what);
}

/* Expiry from `mg KEY t` (memcached): the remaining TTL, -1 for none,
 * turned into an absolute time with the clock at the reply. Extra keys are
 * found by comparing curr_items with the model. */
static void read_exp_mg(const struct model *m, int port, struct snap *s)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s: connect: %s", s->what, c.err);
    for (uint64_t b = 0; b < m->n; b += BATCH) {
        uint64_t end = b + BATCH < m->n ? b + BATCH : m->n;
        char key[300];
        for (uint64_t i = b; i < end; i++) {
            size_t nk = ft_model_key(i, key);
            ck_assert_int_eq(ft_sendf(&c, "mg %.*s t\r\n", (int)nk, key), 0);
        }
        for (uint64_t i = b; i < end; i++) {
            const char *line;
            size_t n;
            ck_assert_msg(ft_line(&c, &line, &n) == 0, "%s: mg: %s", s->what, c.err);
            if (n == 2 && memcmp(line, "EN", 2) == 0)
                continue;
            char buf[128];
            snprintf(buf, sizeof(buf), "%.*s", (int)(n < 127 ? n : 127), line);
            long long t;
            ck_assert_msg(sscanf(buf, "HD t%lld", &t) == 1, "%s: mg t: \"%s\"", s->what, buf);
            s->h[i].exp_seen = true;
            s->h[i].exp = t == -1 ? 0 : (int64_t)time(NULL) + t;
        }
    }
    ft_close(&c);
    long long items = ts_stat(port, "stats", "curr_items");
    ck_assert_msg(items >= 0, "%s: no curr_items", s->what);
    s->extra = (uint64_t)items > m->n ? (uint64_t)items - m->n : 0;
}

enum kind { TIERCACHED, MEMCACHED };

static void snapshot(const struct model *m, int port, enum kind k, struct snap *s)
{
    read_values(m, port, s);
    if (k == TIERCACHED)
        read_exp_metadump(m, port, s);
    else
        read_exp_mg(m, port, s);
}

/* ---------------------------------------------------------------- comparing */

static void show(int *shown, const char *what, uint64_t i, const char *why, const struct held *h)
{
    if ((*shown)++ >= SHOW_MAX)
        return;
    char key[300];
    ft_model_key(i, key);
    fprintf(stderr,
            "%s: item \"%s\": %s (present %d, value %s, %zu bytes, flags %u, exp %" PRId64 ")\n",
            what, key, why, h->present, h->value_ok ? "right" : "wrong", h->nbytes, h->flags,
            h->exp);
}

/* The source holds exactly the model: every item, its bytes and flags, and
 * an expiry that is the one set. */
static void check_source(const struct model *m, const struct snap *s)
{
    uint64_t bad = 0;
    int shown = 0;
    for (uint64_t i = 0; i < m->n; i++) {
        const struct held *h = &s->h[i];
        int64_t e = model_exptime(m, i);
        const char *why = NULL;
        if (!h->present)
            why = "missing";
        else if (!h->value_ok)
            why = "the value is not the one set";
        else if (h->flags != model_flags(i))
            why = "the flags are not the ones set";
        else if (!h->exp_seen)
            why = "not in the key listing";
        else if ((e == 0) != (h->exp == 0))
            why = e == 0 ? "an expiry on an item set without" : "no expiry on an item set with one";
        else if (e != 0 && e < 30 * DAY &&
                 (h->exp < m->set_at + e - TTL_SLACK || h->exp > m->set_end + e + TTL_SLACK))
            why = "the expiry is not the one set (an hour)";
        else if (e >= 30 * DAY && (h->exp < e - TTL_SLACK || h->exp > e + TTL_SLACK))
            why = "the expiry is not the one set (40 days)";
        if (why != NULL) {
            bad++;
            show(&shown, s->what, i, why, h);
        }
    }
    ck_assert_msg(bad == 0 && s->extra == 0,
                  "%s: %" PRIu64 " of %" PRIu64 " items not as set, %" PRIu64 " extra keys",
                  s->what, bad, m->n, s->extra);
}

/* The destination holds what the source held: item by item. */
static void check_same(const struct model *m, const struct snap *src, const struct snap *dst)
{
    uint64_t bad = 0;
    int shown = 0;
    for (uint64_t i = 0; i < m->n; i++) {
        const struct held *a = &src->h[i], *b = &dst->h[i];
        const char *why = NULL;
        if (!b->present)
            why = "missing";
        else if (!b->value_ok || b->nbytes != a->nbytes)
            why = "the value differs";
        else if (b->flags != a->flags)
            why = "the flags differ";
        else if (!b->exp_seen)
            why = "its expiry could not be read";
        else if ((a->exp == 0) != (b->exp == 0))
            why = a->exp == 0 ? "an expiry on an item without" : "no expiry on an item with one";
        else if (b->exp > a->exp + TTL_SLACK || b->exp < a->exp - TTL_SLACK)
            why = "another expiry";
        if (why != NULL) {
            bad++;
            show(&shown, dst->what, i, why, b);
            if (shown <= SHOW_MAX)
                fprintf(stderr, "  in the %s: flags %u, %zu bytes, exp %" PRId64 "\n", src->what,
                        a->flags, a->nbytes, a->exp);
        }
    }
    ck_assert_msg(bad == 0 && dst->extra == 0,
                  "%s: %" PRIu64 " of %" PRIu64 " items differ from the %s, %" PRIu64 " extra keys",
                  dst->what, bad, m->n, src->what, dst->extra);
}

/* ---------------------------------------------------------------- running the tools */

/*
 * Run bin with args (NULL-terminated), stdout and stderr into out
 * (NUL-terminated). Waits at most TOOL_MS, then kills it and fails.
 * Returns the exit code; a sanitizer report fails the test.
 */
static int run_tool(const char *bin, const char *const *args, char *out, size_t cap)
{
    char logp[] = "/tmp/check_roundtrip_out.XXXXXX";
    int lfd = mkstemp(logp);
    ck_assert_int_ge(lfd, 0);
    const char *argv[32] = {bin};
    size_t n = 1;
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(lfd, STDOUT_FILENO) < 0 ||
            dup2(lfd, STDERR_FILENO) < 0)
            _exit(126);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int ws = 0;
    long long deadline = ts_now_ms() + TOOL_MS;
    pid_t got;
    while ((got = waitpid(pid, &ws, WNOHANG)) == 0 && ts_now_ms() < deadline)
        ft_pause_ms(10);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &ws, 0);
    }
    ssize_t k = pread(lfd, out, cap - 1, 0);
    out[k > 0 ? k : 0] = '\0';
    close(lfd);
    unlink(logp);
    ck_assert_msg(got != 0, "%s did not finish within %d s: %s", bin, TOOL_MS / 1000, out);
    ck_assert_msg(WIFEXITED(ws), "%s died: status 0x%x; output:\n%s", bin, ws, out);
    ck_assert_msg(strstr(out, "Sanitizer") == NULL && strstr(out, "runtime error") == NULL,
                  "%s: a sanitizer report:\n%s", bin, out);
    return WEXITSTATUS(ws);
}

/* Run tiercache-dump, require exit 0; returns the item count its summary
 * line gives. */
static uint64_t dump_ok(const char *const *args)
{
    char out[8192];
    int rc = run_tool(DUMP_BIN, args, out, sizeof(out));
    ck_assert_msg(rc == 0, "tiercache-dump exited %d: %s", rc, out);
    const char *p = strstr(out, "tiercache-dump: ");
    unsigned long long items = 0;
    ck_assert_msg(p != NULL && sscanf(p, "tiercache-dump: %llu items", &items) == 1,
                  "no summary line: %s", out);
    return items;
}

/* Restore and require none expired, none failed. Whether every item came
 * through is for the item-by-item comparison, which names the missing. */
static void restore_ok(const char *const *args, uint64_t n)
{
    char out[8192];
    int rc = run_tool(RESTORE_BIN, args, out, sizeof(out));
    ck_assert_msg(rc == 0, "tiercache-restore exited %d: %s", rc, out);
    unsigned long long restored = 0, expired = 0, failed = 0;
    const char *p = strstr(out, "restored ");
    ck_assert_msg(p != NULL && sscanf(p, "restored %llu, expired %llu, failed %llu", &restored,
                                      &expired, &failed) == 3,
                  "no summary line: %s", out);
    ck_assert_msg(expired == 0 && failed == 0, "%s", out);
    if (restored < n)
        fprintf(stderr, "%" PRIu64 " items, %s", n, out);
}

/* ---------------------------------------------------------------- servers */

/* memcached's LRU maintainer moves items between LRUs while the crawler
 * lists them, and a moved item can be missed (check_dump.c says more):
 * a source memcached runs without it, so its listing has every item. */
static void mc_start(struct ft_server *m, bool source)
{
    const char *args[] = {"-o", "no_lru_maintainer", NULL};
    ck_assert_msg(ft_start_memcached(m, source ? args : NULL) == 0, "memcached did not start");
}

static void mc_stop(struct ft_server *m)
{
    ft_stop(m);
    unlink(m->ts.log_path);
}

/* Stop a tiercached: it must exit 0 and its log hold no sanitizer report
 * (the log is removed unless it does). */
static void tc_stop(struct ft_server *s)
{
    int port = s->ts.port;
    ck_assert_msg(ft_exited_zero(ft_stop(s)), "tiercached on port %d did not exit 0", port);
    ck_assert_msg(ft_log_retire(s->ts.log_path),
                  "tiercached on port %d: a sanitizer report in its log %s", port, s->ts.log_path);
}

/* The same after a SIGTERM of a server on a dir of the test's own. */
static void tc_term(struct ft_server *s, const char *what)
{
    int st = ft_signal(s, SIGTERM, 60000);
    ck_assert_msg(ft_exited_zero(st), "%s did not exit 0 on SIGTERM", what);
    ck_assert_msg(ft_log_retire(s->ts.log_path), "%s: a sanitizer report in its log %s", what,
                  s->ts.log_path);
}

static void path_for(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "/tmp/check_roundtrip.%d.%s", (int)getpid(), what);
}

static void server_arg(char *out, size_t cap, int port)
{
    snprintf(out, cap, "127.0.0.1:%d", port);
}

static uint64_t env_items(uint64_t mult)
{
    return (uint64_t)ft_env_long("TC_ROUNDTRIP_ITEMS", 3000) * mult;
}

/* Small RAM, a flash tier: a source whose items are mostly on flash. */
static const char *const small_ram[] = {"-m", "8", "-t", "2", "--flash-size=256m", NULL};
static const char *const roomy[] = {"--flash-size=256m", NULL};

/* Fill a small-RAM tiercached far beyond its RAM and let flash settle. */
static void fill_flash_source(struct model *m, int port)
{
    model_fill(m, port);
    ck_assert_msg(ft_wait_writer_idle(port, 60000), "the flash writer never went idle");
    long long on_flash = ft_tier(port, "flash_items");
    ck_assert_msg(on_flash > (long long)m->n / 2, "only %lld of %" PRIu64 " items on flash",
                  on_flash, m->n);
}

struct sender {
    int fd;
    const char *bytes;
    size_t n;
    int rc;
};

static void *sender_main(void *arg)
{
    struct sender *w = arg;
    w->rc = ts_send_all(w->fd, w->bytes, w->n) == 0 && ts_send_all(w->fd, "version\r\n", 9) == 0
                ? 0
                : -1;
    return NULL;
}

/* Write the file at path to port's socket as it is, then `version`: every
 * reply before VERSION must be STORED. Returns how many were. The bytes go
 * from a thread of their own while this one reads the replies: a server
 * stops reading a client that does not read its replies. */
static uint64_t send_file(const char *path, int port)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "cannot open %s", path);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    char *bytes = malloc((size_t)sb.st_size + 1);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_int_eq(read(fd, bytes, (size_t)sb.st_size), sb.st_size);
    close(fd);
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, port), 0);
    struct sender w = {.fd = c.fd, .bytes = bytes, .n = (size_t)sb.st_size};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, sender_main, &w), 0);
    uint64_t stored = 0;
    bool ok = true;
    char why[600] = "";
    for (;;) {
        const char *line;
        size_t n;
        if (ft_line(&c, &line, &n) != 0) {
            snprintf(why, sizeof(why), "%s", c.err);
            ok = false;
            break;
        }
        if (n >= 8 && memcmp(line, "VERSION ", 8) == 0)
            break;
        if (n != 6 || memcmp(line, "STORED", 6) != 0) {
            snprintf(why, sizeof(why), "reply %" PRIu64 " is \"%.*s\"", stored + 1,
                     (int)(n < 100 ? n : 100), line);
            ok = false;
            break;
        }
        stored++;
    }
    /* On failure the connection goes first, so a blocked sender returns. */
    if (!ok)
        shutdown(c.fd, SHUT_RDWR);
    pthread_join(th, NULL);
    ft_close(&c);
    free(bytes);
    ck_assert_msg(ok, "loading %s into port %d: %s", path, port, why);
    ck_assert_msg(w.rc == 0, "sending %s to port %d failed", path, port);
    return stored;
}

/* ---------------------------------------------------------------- tests */

START_TEST(migration)
{
    struct ft_server src;
    mc_start(&src, true);
    struct model m = {.n = env_items(1), .maxlen = 3000};
    model_fill(&m, src.ts.port);
    struct snap s0;
    snap_init(&s0, &m, "source memcached");
    snapshot(&m, src.ts.port, MEMCACHED, &s0);
    check_source(&m, &s0);

    char server[64], native[128];
    server_arg(server, sizeof(server), src.ts.port);
    path_for(native, sizeof(native), "mc.dump");
    /* memcached's crawler skips an item whose lock is held as it passes:
     * the tool lists every key before it fetches any (spool_listing in
     * tools/dump/dump.c), so an idle memcached is dumped whole, every time. */
    uint64_t got = dump_ok((const char *[]){"-s", server, "-o", native, NULL});
    ck_assert_msg(got == m.n,
                  "the dump of an idle memcached holds %" PRIu64 " of %" PRIu64 " items", got, m.n);
    mc_stop(&src);

    struct ft_server dst;
    ck_assert_int_eq(ft_start(&dst, NULL, roomy), 0);
    server_arg(server, sizeof(server), dst.ts.port);
    restore_ok((const char *[]){"-s", server, "-i", native, NULL}, m.n);
    struct snap s1;
    snap_init(&s1, &m, "tiercached restored from memcached");
    snapshot(&m, dst.ts.port, TIERCACHED, &s1);
    check_same(&m, &s0, &s1);
    tc_stop(&dst);
    unlink(native);
    snap_free(&s0);
    snap_free(&s1);
}
END_TEST

START_TEST(online)
{
    struct ft_server src;
    ck_assert_int_eq(ft_start(&src, NULL, small_ram), 0);
    /* About 30 MB of values through 8 MB of RAM. */
    struct model m = {.n = env_items(7), .maxlen = 3000};
    fill_flash_source(&m, src.ts.port);
    struct snap s0;
    snap_init(&s0, &m, "source tiercached");
    snapshot(&m, src.ts.port, TIERCACHED, &s0);
    check_source(&m, &s0);
    /* Reading the source may have moved items between tiers: let that
     * settle, as a listing can miss an item moved while it runs. */
    ck_assert_msg(ft_wait_writer_idle(src.ts.port, 60000), "the flash writer never went idle");

    char server[64], native[128], text[128];
    server_arg(server, sizeof(server), src.ts.port);
    path_for(native, sizeof(native), "tc.dump");
    path_for(text, sizeof(text), "tc.txt");
    dump_ok((const char *[]){"-s", server, "-o", native, NULL});
    ck_assert_msg(ft_wait_writer_idle(src.ts.port, 60000), "the flash writer never went idle");
    dump_ok((const char *[]){"-s", server, "-o", text, "--format=text", NULL});
    tc_stop(&src);

    struct ft_server dst;
    ck_assert_int_eq(ft_start(&dst, NULL, roomy), 0);
    server_arg(server, sizeof(server), dst.ts.port);
    restore_ok((const char *[]){"-s", server, "-i", native, NULL}, m.n);
    struct snap s1;
    snap_init(&s1, &m, "tiercached restored from the native dump");
    snapshot(&m, dst.ts.port, TIERCACHED, &s1);
    check_same(&m, &s0, &s1);
    tc_stop(&dst);

    struct ft_server dst3;
    ck_assert_int_eq(ft_start(&dst3, NULL, roomy), 0);
    uint64_t stored = send_file(text, dst3.ts.port);
    ck_assert_msg(stored >= m.n, "%" PRIu64 " sets stored of %" PRIu64 " items", stored, m.n);
    struct snap s2;
    snap_init(&s2, &m, "tiercached loaded from the text dump");
    snapshot(&m, dst3.ts.port, TIERCACHED, &s2);
    check_same(&m, &s0, &s2);
    tc_stop(&dst3);

    unlink(native);
    unlink(text);
    snap_free(&s0);
    snap_free(&s1);
    snap_free(&s2);
}
END_TEST

START_TEST(offline)
{
    char dir1[128], dir2[128], native[128], arg1[160], arg2[160];
    path_for(dir1, sizeof(dir1), "src.dir");
    path_for(dir2, sizeof(dir2), "dst.dir");
    path_for(native, sizeof(native), "offline.dump");
    snprintf(arg1, sizeof(arg1), "--data-dir=%s", dir1);
    snprintf(arg2, sizeof(arg2), "--data-dir=%s", dir2);
    struct ft_server src, dst;
    ft_dir_init(&src, dir1);
    ft_dir_init(&dst, dir2);
    ck_assert_int_eq(ft_dir_start(&src, small_ram), 0);
    struct model m = {.n = env_items(7), .maxlen = 3000};
    fill_flash_source(&m, src.ts.port);
    struct snap s0;
    snap_init(&s0, &m, "source tiercached");
    snapshot(&m, src.ts.port, TIERCACHED, &s0);
    check_source(&m, &s0);
    tc_term(&src, "the source tiercached");

    dump_ok((const char *[]){arg1, "-o", native, NULL});
    restore_ok((const char *[]){arg2, "--flash-size=256m", "-i", native, NULL}, m.n);
    ck_assert_int_eq(ft_dir_start(&dst, roomy), 0);
    struct snap s1;
    snap_init(&s1, &m, "tiercached on the restored data dir");
    snapshot(&m, dst.ts.port, TIERCACHED, &s1);
    check_same(&m, &s0, &s1);
    tc_term(&dst, "the restored tiercached");

    ft_dir_deinit(&src);
    ft_dir_deinit(&dst);
    unlink(native);
    snap_free(&s0);
    snap_free(&s1);
}
END_TEST

START_TEST(into_memcached)
{
    struct ft_server src;
    ck_assert_int_eq(ft_start(&src, NULL, small_ram), 0);
    struct model m = {.n = env_items(7), .maxlen = 3000};
    fill_flash_source(&m, src.ts.port);
    struct snap s0;
    snap_init(&s0, &m, "source tiercached");
    snapshot(&m, src.ts.port, TIERCACHED, &s0);
    check_source(&m, &s0);
    ck_assert_msg(ft_wait_writer_idle(src.ts.port, 60000), "the flash writer never went idle");

    char server[64], native[128];
    server_arg(server, sizeof(server), src.ts.port);
    path_for(native, sizeof(native), "tc2mc.dump");
    dump_ok((const char *[]){"-s", server, "-o", native, NULL});
    tc_stop(&src);

    struct ft_server dst;
    mc_start(&dst, false);
    server_arg(server, sizeof(server), dst.ts.port);
    restore_ok((const char *[]){"-s", server, "-i", native, NULL}, m.n);
    struct snap s1;
    snap_init(&s1, &m, "memcached restored from tiercached");
    snapshot(&m, dst.ts.port, MEMCACHED, &s1);
    check_same(&m, &s0, &s1);
    mc_stop(&dst);
    unlink(native);
    snap_free(&s0);
    snap_free(&s1);
}
END_TEST

static Suite *roundtrip_suite(void)
{
    Suite *s = suite_create("roundtrip");
    TCase *tc = tcase_create("roundtrip");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, migration);
    tcase_add_test(tc, online);
    tcase_add_test(tc, offline);
    tcase_add_test(tc, into_memcached);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(roundtrip_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
