/*
 * check_dump.c: tiercache-dump (SPEC section 6) on the real binaries.
 *
 *   parsers          the pure pieces on strings: memcached's URL encoding of
 *                    metadump keys, metadump lines, mg and gets replies;
 *   memcached        the migration path: a real memcached with thousands of
 *                    items (flags, TTLs, binary values, keys that need URL
 *                    encoding) dumped native and text; the native file read
 *                    back with the dump.h reader, the text file written to a
 *                    fresh memcached's socket; both compared item by item
 *                    (key, value bytes, flags, expiry present or absent);
 *   tiercached       -m 8 with a flash tier filled far beyond RAM: every
 *                    item of both tiers (fails, saying so, while tiercached
 *                    answers ERROR to lru_crawler metadump);
 *   not_torn         a client keeps overwriting keys with self-describing
 *                    versions during the dump: each dumped value is exactly
 *                    one complete version;
 *   data_dir         --data-dir while the server runs: exit 1; after a
 *                    SIGTERM stop: every item;
 *   usage            bad usage exits 2 with one line; an unreachable server
 *                    exits 1 naming it; --help and --version exit 0.
 *
 * Servers are on loopback ports of their own; memcached gets a guard
 * process like tiercached's (flash_testlib), so a failing test never leaves
 * one running. TC_DUMP_ITEMS scales the item counts.
 */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tiercache/dump.h>

#include "dumpproto.h"
#include "flash_testlib.h"

#define TOOL_MS  180000 /* one tiercache-dump run, ASan included */
#define SHOW_MAX 5      /* mismatches printed per check */
#define BATCH    100    /* sets per pipelined batch */

/* ---------------------------------------------------------------- the model */
/* Keys and value bytes: ft_model_key, ft_model_bytes (flash_testlib). */

static size_t model_len(uint64_t i, size_t maxlen)
{
    return i % 10 == 0 ? 0 : (size_t)(ft_mix(i) % maxlen);
}

static uint32_t model_flags(uint64_t i)
{
    return (uint32_t)ft_mix(i * 7 + 1);
}

/* Relative TTL: none for a third, else about an hour. */
static unsigned model_ttl(uint64_t i)
{
    return i % 3 == 0 ? 0 : 3000 + (unsigned)(i % 100);
}

struct model {
    uint64_t n;
    size_t maxlen;
    uint64_t set_at; /* unix time the sets began */
};

/* Set items [0, m->n) on port, pipelined. */
static void model_fill(const struct model *m, int port)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "connect to %d: %s", port, c.err);
    char *v = malloc(m->maxlen + 1);
    ck_assert_ptr_nonnull(v);
    for (uint64_t b = 0; b < m->n; b += BATCH) {
        uint64_t end = b + BATCH < m->n ? b + BATCH : m->n;
        for (uint64_t i = b; i < end; i++) {
            char key[300];
            size_t nk = ft_model_key(i, key);
            size_t nv = model_len(i, m->maxlen);
            ft_model_bytes(i ^ 0xabcdef, v, nv);
            ck_assert_int_eq(ft_sendf(&c, "set %.*s %u %u %zu\r\n", (int)nk, key, model_flags(i),
                                      model_ttl(i), nv),
                             0);
            ck_assert_int_eq(ft_send(&c, v, nv), 0);
            ck_assert_int_eq(ft_send(&c, "\r\n", 2), 0);
        }
        for (uint64_t i = b; i < end; i++)
            ck_assert_msg(ft_expect(&c, "STORED") == 0, "set of item %" PRIu64 ": %s", i, c.err);
    }
    free(v);
    ft_close(&c);
}

/* Compare one dumped item with the model: 0, or -1 after printing why. */
static int model_check(const struct model *m, const struct tc_dump_item *it, unsigned char *seen,
                       uint64_t now, int *shown)
{
    long long i = ft_model_index(it->key, it->nkey);
    char key[300], *v = NULL;
    const char *why = NULL;
    if (i < 0 || (uint64_t)i >= m->n) {
        why = "a key that was never set";
    } else {
        size_t nk = ft_model_key((uint64_t)i, key);
        size_t nv = model_len((uint64_t)i, m->maxlen);
        v = malloc(nv + 1);
        ck_assert_ptr_nonnull(v);
        ft_model_bytes((uint64_t)i ^ 0xabcdef, v, nv);
        unsigned ttl = model_ttl((uint64_t)i);
        if (nk != it->nkey || memcmp(key, it->key, nk) != 0)
            why = "the key differs";
        else if (it->nbytes != nv || memcmp(v, it->value, nv) != 0)
            why = "the value differs";
        else if (it->flags != model_flags((uint64_t)i))
            why = "the flags differ";
        else if ((ttl == 0) != (it->exptime == 0))
            why = ttl == 0 ? "an expiry on an item without" : "no expiry on an item with one";
        else if (ttl != 0 && (it->exptime + 10 < m->set_at + ttl || it->exptime > now + ttl + 10))
            why = "the expiry is not the one set";
        seen[i] = seen[i] < 255 ? seen[i] + 1 : 255;
    }
    free(v);
    if (why == NULL)
        return 0;
    if ((*shown)++ < SHOW_MAX)
        fprintf(stderr, "dumped item \"%.*s\": %s (flags %u, %u bytes, exptime %" PRIu64 ")\n",
                (int)it->nkey, it->key, why, it->flags, it->nbytes, it->exptime);
    return -1;
}

/* Read a native dump and compare it with the model: every item, once, intact. */
static void check_native(const struct model *m, const char *path)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "cannot open %s", path);
    struct tc_dump_reader *r = NULL;
    struct tc_dump_header hdr;
    char err[256] = "";
    ck_assert_msg(tc_dump_reader_open(fd, &r, &hdr, err, sizeof(err)) == TC_OK, "%s: %s", path,
                  err);
    unsigned char *seen = calloc(m->n, 1);
    ck_assert_ptr_nonnull(seen);
    uint64_t now = (uint64_t)time(NULL), bad = 0, count = 0;
    int shown = 0;
    struct tc_dump_item it;
    tc_status_e st;
    while ((st = tc_dump_next(r, &it)) == TC_OK) {
        count++;
        bad += model_check(m, &it, seen, now, &shown) != 0;
    }
    ck_assert_msg(st == TC_NOT_FOUND, "%s: %s", path, tc_dump_reader_error(r));
    /* A key listed twice (tiercached's walk reports an item that moved from
     * RAM to flash during the listing again: storage/walk.c) is tolerated
     * when both records are a right version; counted and shown. */
    uint64_t missing = 0, twice = 0;
    for (uint64_t i = 0; i < m->n; i++) {
        twice += seen[i] > 1;
        if (!seen[i] && missing++ < SHOW_MAX) {
            char key[300];
            size_t nk = ft_model_key(i, key);
            fprintf(stderr, "%s: item \"%.*s\" is missing\n", path, (int)nk, key);
        }
    }
    if (twice > 0)
        fprintf(stderr, "%s: %" PRIu64 " keys are in the dump twice (the same right value)\n", path,
                twice);
    tc_dump_reader_close(&r);
    close(fd);
    free(seen);
    ck_assert_msg(twice <= m->n / 100, "%s: %" PRIu64 " keys dumped twice", path, twice);
    ck_assert_msg(bad == 0 && missing == 0,
                  "%s: %" PRIu64 " records, %" PRIu64 " wrong, %" PRIu64 " of %" PRIu64
                  " items missing",
                  path, count, bad, missing, m->n);
}

/* Compare what a server holds (mg) with the model: every item. */
static void check_server(const struct model *m, int port)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "connect to %d: %s", port, c.err);
    char *v = malloc(m->maxlen + 1);
    ck_assert_ptr_nonnull(v);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < m->n; i++) {
        char key[300];
        size_t nk = ft_model_key(i, key);
        ck_assert_int_eq(ft_sendf(&c, "mg %.*s v f t\r\n", (int)nk, key), 0);
        const char *line, *data;
        size_t n;
        ck_assert_msg(ft_line(&c, &line, &n) == 0, "mg %s: %s", key, c.err);
        char hdr[256];
        snprintf(hdr, sizeof(hdr), "%.*s", (int)(n < 255 ? n : 255), line);
        size_t len;
        unsigned flags;
        long long ttl;
        if (sscanf(hdr, "VA %zu f%u t%lld", &len, &flags, &ttl) != 3) {
            if (bad++ < SHOW_MAX)
                fprintf(stderr, "item \"%s\" after loading: %s\n", key, hdr);
            continue;
        }
        ck_assert_msg(ft_block(&c, len, &data) == 0, "mg %s: %s", key, c.err);
        size_t nv = model_len(i, m->maxlen);
        ft_model_bytes(i ^ 0xabcdef, v, nv);
        unsigned want_ttl = model_ttl(i);
        bool ok = len == nv && memcmp(data, v, nv) == 0 && flags == model_flags(i) &&
                  (want_ttl == 0 ? ttl == -1 : ttl > (long long)want_ttl - 60 && ttl <= want_ttl);
        if (!ok && bad++ < SHOW_MAX)
            fprintf(stderr, "item \"%s\" after loading: %zu bytes (want %zu), flags %u, ttl %lld\n",
                    key, len, nv, flags, ttl);
    }
    free(v);
    ft_close(&c);
    ck_assert_msg(bad == 0, "%" PRIu64 " of %" PRIu64 " items wrong after loading the text dump",
                  bad, m->n);
}

/* ---------------------------------------------------------------- running the tool */

struct run {
    int status; /* waitpid's */
    char err[4096];
};

/* Run tiercache-dump with args (NULL-terminated), stdout to out_path (or
 * /dev/null), stderr captured into r->err. */
static void run_dump(struct run *r, const char *const *args, const char *out_path)
{
    char errpath[128];
    snprintf(errpath, sizeof(errpath), "/tmp/tc-dump-%d.err", (int)getpid());
    const char *argv[32];
    size_t n = 0;
    argv[n++] = DUMP_BIN;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(out_path != NULL ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execv(DUMP_BIN, (char *const *)argv);
        _exit(127);
    }
    long long deadline = ts_now_ms() + TOOL_MS;
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && ts_now_ms() < deadline)
        ft_pause_ms(20);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        ck_abort_msg("tiercache-dump did not finish within %d s", TOOL_MS / 1000);
    }
    r->status = st;
    r->err[0] = '\0';
    FILE *f = fopen(errpath, "r");
    if (f != NULL) {
        size_t got = fread(r->err, 1, sizeof(r->err) - 1, f);
        r->err[got] = '\0';
        fclose(f);
    }
    unlink(errpath);
}

static int exit_code(const struct run *r)
{
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
}

/* Run and require exit 0. */
static void dump_ok(const char *const *args, const char *out_path)
{
    struct run r;
    run_dump(&r, args, out_path);
    ck_assert_msg(exit_code(&r) == 0, "tiercache-dump exited %d: %s", exit_code(&r), r.err);
    ck_assert_msg(strstr(r.err, " items, ") != NULL, "no summary line: %s", r.err);
}

/* ---------------------------------------------------------------- servers */

/*
 * memcached's crawler lists one LRU after another, and its LRU maintainer
 * moves fresh items from HOT to WARM/COLD meanwhile: with segmented LRUs a
 * listing can miss an item that moved into an LRU already listed. `exact`
 * turns the maintainer off (-o no_lru_maintainer: one LRU per class), so
 * its listing has every item.
 */
static void mc_start_opts(struct ft_server *m, bool exact)
{
    const char *args[] = {"-o", "no_lru_maintainer", NULL};
    ck_assert_msg(ft_start_memcached(m, exact ? args : NULL) == 0, "memcached did not start");
}

static void mc_start(struct ft_server *m)
{
    mc_start_opts(m, false);
}

static void mc_stop(struct ft_server *m)
{
    ft_stop(m);
    unlink(m->ts.log_path);
}

static void path_for(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "/tmp/tc-dump-%d-%s", (int)getpid(), what);
}

static long env_items(long dflt)
{
    return ft_env_long("TC_DUMP_ITEMS", dflt);
}

/* ---------------------------------------------------------------- tests */

START_TEST(parsers)
{
    char out[300];
    ck_assert_int_eq(dp_url_decode("a%25b%2Fc~d.e_f-g", 17, out, sizeof(out)), 13);
    ck_assert_int_eq(memcmp(out, "a%b/c~d.e_f-g", 13), 0);
    ck_assert_int_eq(dp_url_decode("caf%C3%a9", 9, out, sizeof(out)), 5);
    ck_assert_int_eq(memcmp(out, "caf\xc3\xa9", 5), 0);
    ck_assert_int_eq(dp_url_decode("%00%20", 6, out, sizeof(out)), 2);
    ck_assert(out[0] == '\0' && out[1] == ' ');
    ck_assert_int_eq(dp_url_decode("bad%2", 5, out, sizeof(out)), -1);
    ck_assert_int_eq(dp_url_decode("bad%zz", 6, out, sizeof(out)), -1);
    ck_assert_int_eq(dp_url_decode("abc", 3, out, 2), -1);

    enum dp_meta_kind k;
    struct dp_meta m;
    const char *l = "key=a%25b exp=-1 la=1795533300 cas=1 fetch=no cls=1 size=79";
    ck_assert_int_eq(dp_parse_meta_line(l, strlen(l), &k, &m), 0);
    ck_assert(k == DP_META_ITEM && m.nkey == 3 && memcmp(m.key, "a%b", 3) == 0 && m.exp == -1);
    l = "key=x exp=1795533400 la=1 cas=2 fetch=yes cls=1 size=66";
    ck_assert_int_eq(dp_parse_meta_line(l, strlen(l), &k, &m), 0);
    ck_assert(k == DP_META_ITEM && m.exp == 1795533400);
    ck_assert_int_eq(dp_parse_meta_line("END", 3, &k, &m), 0);
    ck_assert(k == DP_META_END);
    ck_assert_int_eq(dp_parse_meta_line("ERROR", 5, &k, &m), 0);
    ck_assert(k == DP_META_ERROR);
    ck_assert_int_eq(dp_parse_meta_line("key= exp=1", 10, &k, &m), -1);
    ck_assert_int_eq(dp_parse_meta_line("key=a la=1", 10, &k, &m), -1);

    struct dp_reply r;
    const char *va = "VA 2 s2 f5 t98 c7\r\nhi\r\nEN\r\n";
    ck_assert_int_eq(dp_parse_reply(va, strlen(va), true, &r), 23);
    ck_assert(r.kind == DP_VALUE && r.flags == 5 && r.ttl == 98 && r.cas == 7 && r.ndata == 2);
    ck_assert_int_eq(dp_parse_reply(va + 23, 4, true, &r), 4);
    ck_assert(r.kind == DP_MISS);
    ck_assert_int_eq(dp_parse_reply(va, 20, true, &r), 0); /* need more */
    const char *g = "VALUE k 3 5 9\r\nEND\r\n\r\nEND\r\n";
    ck_assert_int_eq(dp_parse_reply(g, strlen(g), false, &r), 22);
    ck_assert(r.kind == DP_VALUE && r.nkey == 1 && r.flags == 3 && r.cas == 9 && r.ndata == 5);
    ck_assert_int_eq(memcmp(r.data, "END\r\n", 5), 0);
    ck_assert_int_eq(dp_parse_reply("VALUE k x 5\r\n", 13, false, &r), -1);
    ck_assert_int_eq(dp_parse_reply("SERVER_ERROR out of memory\r\n", 28, true, &r), 28);
    ck_assert(r.kind == DP_SERVER_ERROR);

    ck_assert(dp_key_text_ok("a", 1) && !dp_key_text_ok("a b", 3) && !dp_key_text_ok("a\x01", 2));
    char b64[16];
    ck_assert_uint_eq(dp_base64_encode("k x", 3, b64), 4);
    ck_assert_str_eq(b64, "ayB4");
    ck_assert_uint_eq(dp_base64_encode("ab", 2, b64), 4);
    ck_assert_str_eq(b64, "YWI=");
}
END_TEST

START_TEST(from_memcached)
{
    struct ft_server src, dst;
    mc_start_opts(&src, true);
    struct model m = {
        .n = (uint64_t)env_items(4000), .maxlen = 3000, .set_at = (uint64_t)time(NULL)};
    model_fill(&m, src.ts.port);

    char server[64], native[128], text[128];
    snprintf(server, sizeof(server), "127.0.0.1:%d", src.ts.port);
    path_for(native, sizeof(native), "mc.dump");
    path_for(text, sizeof(text), "mc.txt");
    dump_ok((const char *[]){"-s", server, "-o", native, NULL}, NULL);
    check_native(&m, native);
    /* -o - and --format=text: the commands on standard output. */
    dump_ok((const char *[]){"-s", server, "-o", "-", "--format=text", "--window=7", NULL}, text);

    /* Load the text dump into a fresh memcached: the file's bytes as they are. */
    mc_start(&dst);
    int fd = open(text, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    char *bytes = malloc((size_t)sb.st_size + 1);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_int_eq(read(fd, bytes, (size_t)sb.st_size), sb.st_size);
    close(fd);
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, dst.ts.port), 0);
    /* Everything is sent before any reply is read: the replies ("STORED",
     * 8 bytes per item, 32 KB here) fit in the socket buffers, so this
     * cannot deadlock at this size (a larger file would need a reader). */
    size_t off = 0, stored = 0;
    while (off < (size_t)sb.st_size) {
        size_t chunk = (size_t)sb.st_size - off < 65536 ? (size_t)sb.st_size - off : 65536;
        ck_assert_int_eq(ft_send(&c, bytes + off, chunk), 0);
        off += chunk;
    }
    ck_assert_int_eq(ft_send(&c, "mn\r\n", 4), 0);
    for (;;) {
        const char *line;
        size_t n;
        ck_assert_msg(ft_line(&c, &line, &n) == 0, "loading the text dump: %s", c.err);
        if (n == 2 && memcmp(line, "MN", 2) == 0)
            break;
        ck_assert_msg(n == 6 && memcmp(line, "STORED", 6) == 0,
                      "loading the text dump: memcached answered \"%.*s\"", (int)n, line);
        stored++;
    }
    ft_close(&c);
    free(bytes);
    ck_assert_uint_eq(stored, m.n);
    check_server(&m, dst.ts.port);

    unlink(native);
    unlink(text);
    mc_stop(&dst);
    mc_stop(&src);
}
END_TEST

/*
 * --rate=N: at most N items a second, all of them still dumped. Only the
 * lower bound on the time is checked (a budget of N x elapsed time, plus
 * one, makes 300 items at 200/s take at least 1.49 s, however fast the
 * machine); how close to it the dump comes depends on the machine.
 */
START_TEST(rate_limited)
{
    struct ft_server src;
    mc_start_opts(&src, true);
    struct model m = {.n = 300, .maxlen = 100, .set_at = (uint64_t)time(NULL)};
    model_fill(&m, src.ts.port);
    char server[64], native[128];
    snprintf(server, sizeof(server), "127.0.0.1:%d", src.ts.port);
    path_for(native, sizeof(native), "rate.dump");
    long long t0 = ts_now_ms();
    dump_ok((const char *[]){"-s", server, "--rate=200", "-o", native, NULL}, NULL);
    long long took = ts_now_ms() - t0;
    ck_assert_msg(took >= 1490, "300 items at --rate=200 took %lld ms (at least 1490 expected)",
                  took);
    check_native(&m, native);
    unlink(native);
    mc_stop(&src);
}
END_TEST

START_TEST(from_tiercached)
{
    struct ft_server s;
    const char *args[] = {"-m", "8", "-t", "2", "--flash-size=256m", NULL};
    ck_assert_int_eq(ft_start(&s, NULL, args), 0);
    /* About 40 MB of values: most of them can only be on flash. */
    struct model m = {
        .n = (uint64_t)env_items(4000) * 10, .maxlen = 2000, .set_at = (uint64_t)time(NULL)};
    model_fill(&m, s.ts.port);
    ck_assert_msg(ft_wait_writer_idle(s.ts.port, 60000), "the flash writer never went idle");
    long long on_flash = ft_tier(s.ts.port, "flash_items");
    ck_assert_msg(on_flash > (long long)m.n / 2, "only %lld of %" PRIu64 " items on flash",
                  on_flash, m.n);

    char server[64], native[128];
    snprintf(server, sizeof(server), "127.0.0.1:%d", s.ts.port);
    path_for(native, sizeof(native), "tc.dump");
    struct run r;
    run_dump(&r, (const char *[]){"-s", server, "-o", native, NULL}, NULL);
    ck_assert_msg(strstr(r.err, "does not support `lru_crawler metadump all`") == NULL,
                  "tiercached does not answer lru_crawler metadump yet (it answered ERROR): "
                  "the online dump of tiercached cannot work until it does: %s",
                  r.err);
    ck_assert_msg(exit_code(&r) == 0, "tiercache-dump exited %d: %s", exit_code(&r), r.err);
    check_native(&m, native);
    unlink(native);
    ck_assert_msg(ft_exited_zero(ft_stop(&s)), "tiercached did not exit 0");
}
END_TEST

/* ---- not_torn: a writer overwrites HOT keys with versioned values */

#define HOT 64

struct writer {
    int port;
    atomic_bool stop;
    atomic_ullong sets;
    char err[1024];
};

static void hot_key(int j, char *out)
{
    sprintf(out, "hot:%d", j);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct ft_conn c;
    if (ft_open(&c, w->port) != 0) {
        snprintf(w->err, sizeof(w->err), "writer: %s", c.err);
        return NULL;
    }
    static char v[20000];
    struct ft_rng rng = {.s = 42};
    for (uint64_t version = 1; !atomic_load(&w->stop); version++) {
        for (int j = 0; j < HOT; j++) {
            char key[32];
            hot_key(j, key);
            size_t len = ft_seg_min(strlen(key)) + (size_t)ft_range(&rng, 0, 15000);
            ft_seg_make(v, key, strlen(key), version, len);
            if (ft_sendf(&c, "set %s %d 0 %zu\r\n", key, j, len) != 0 || ft_send(&c, v, len) != 0 ||
                ft_send(&c, "\r\n", 2) != 0) {
                snprintf(w->err, sizeof(w->err), "writer: %s", c.err);
                ft_close(&c);
                return NULL;
            }
        }
        for (int j = 0; j < HOT; j++) {
            if (ft_expect(&c, "STORED") != 0) {
                snprintf(w->err, sizeof(w->err), "writer: %s", c.err);
                ft_close(&c);
                return NULL;
            }
        }
        atomic_fetch_add(&w->sets, HOT);
    }
    ft_close(&c);
    return NULL;
}

/* Dump `port` while the writer runs; every hot key's value is one version. */
static void dump_while_writing(int port, const char *tag)
{
    struct writer w = {.port = port};
    for (int j = 0; j < HOT; j++) {
        char key[32], v[256];
        hot_key(j, key);
        size_t len = ft_seg_min(strlen(key));
        ft_seg_make(v, key, strlen(key), 0, len);
        struct ft_conn c;
        ck_assert_int_eq(ft_open(&c, port), 0);
        ck_assert_int_eq(ft_sendf(&c, "set %s %d 0 %zu\r\n", key, j, len), 0);
        ck_assert_int_eq(ft_send(&c, v, len), 0);
        ck_assert_int_eq(ft_send(&c, "\r\n", 2), 0);
        ck_assert_int_eq(ft_expect(&c, "STORED"), 0);
        ft_close(&c);
    }
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
    /* The dump must overlap real overwrites: wait until some happened. */
    long long deadline = ts_now_ms() + 30000;
    while (atomic_load(&w.sets) < 4 * HOT && w.err[0] == '\0' && ts_now_ms() < deadline)
        ft_pause_ms(5);
    char server[64], native[128];
    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    path_for(native, sizeof(native), tag);
    unsigned long long before = atomic_load(&w.sets);
    struct run r;
    run_dump(&r, (const char *[]){"-s", server, "-o", native, "--window=4", NULL}, NULL);
    unsigned long long during = atomic_load(&w.sets) - before;
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    ck_assert_msg(w.err[0] == '\0', "%s", w.err);
    ck_assert_msg(exit_code(&r) == 0, "tiercache-dump exited %d: %s", exit_code(&r), r.err);
    ck_assert_msg(before >= 4 * HOT, "the writer made only %llu sets", before);

    int fd = open(native, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct tc_dump_reader *rd = NULL;
    struct tc_dump_header hdr;
    char err[256] = "";
    ck_assert_msg(tc_dump_reader_open(fd, &rd, &hdr, err, sizeof(err)) == TC_OK, "%s", err);
    struct tc_dump_item it;
    int hot_seen = 0;
    tc_status_e st;
    while ((st = tc_dump_next(rd, &it)) == TC_OK) {
        if (it.nkey < 4 || memcmp(it.key, "hot:", 4) != 0)
            continue;
        hot_seen++;
        uint64_t first, last;
        char why[256];
        int segs =
            ft_value_check(it.value, it.nbytes, it.key, it.nkey, &first, &last, why, sizeof(why));
        ck_assert_msg(segs == 1, "%.*s: not one whole version (%d segments): %s", (int)it.nkey,
                      it.key, segs, segs < 0 ? why : "");
        ck_assert_uint_eq(it.flags, (unsigned)atoi(it.key + 4));
    }
    ck_assert_msg(st == TC_NOT_FOUND, "%s", tc_dump_reader_error(rd));
    tc_dump_reader_close(&rd);
    close(fd);
    unlink(native);
    /* The listing may miss a key overwritten while it is crawled (the new
     * version can land behind the crawler): not every hot key must be in
     * the dump, but those that are must be whole, and some must be. */
    ck_assert_msg(hot_seen > 0, "no overwritten key in the dump");
    fprintf(stderr, "not_torn (%s): %llu overwrites during the dump, %d of %d hot keys in it\n",
            tag, during, hot_seen, HOT);
}

START_TEST(not_torn_memcached)
{
    struct ft_server src;
    mc_start(&src);
    struct model m = {
        .n = (uint64_t)env_items(4000) * 2, .maxlen = 2000, .set_at = (uint64_t)time(NULL)};
    model_fill(&m, src.ts.port);
    dump_while_writing(src.ts.port, "torn-mc.dump");
    mc_stop(&src);
}
END_TEST

START_TEST(not_torn_tiercached)
{
    struct ft_server s;
    const char *args[] = {"-m", "8", "-t", "2", "--flash-size=256m", NULL};
    ck_assert_int_eq(ft_start(&s, NULL, args), 0);
    struct model m = {
        .n = (uint64_t)env_items(4000) * 5, .maxlen = 2000, .set_at = (uint64_t)time(NULL)};
    model_fill(&m, s.ts.port);
    dump_while_writing(s.ts.port, "torn-tc.dump");
    ck_assert_msg(ft_exited_zero(ft_stop(&s)), "tiercached did not exit 0");
}
END_TEST

START_TEST(data_dir)
{
    struct ft_server s;
    char dir[128], native[128], arg[200];
    path_for(dir, sizeof(dir), "dd");
    path_for(native, sizeof(native), "dd.dump");
    ft_dir_init(&s, dir);
    const char *args[] = {"-m", "8", "-t", "2", "--flash-size=256m", NULL};
    ck_assert_int_eq(ft_dir_start(&s, args), 0);
    struct model m = {
        .n = (uint64_t)env_items(4000) * 5, .maxlen = 2000, .set_at = (uint64_t)time(NULL)};
    model_fill(&m, s.ts.port);
    snprintf(arg, sizeof(arg), "--data-dir=%s", dir);

    /* Held by the running server: refused, with a reason, nothing written. */
    struct run r;
    run_dump(&r, (const char *[]){arg, "-o", native, NULL}, NULL);
    ck_assert_msg(exit_code(&r) == 1, "exit %d while the server runs: %s", exit_code(&r), r.err);
    ck_assert_msg(strlen(r.err) > 20, "no reason given: \"%s\"", r.err);
    ck_assert_msg(access(native, F_OK) != 0, "a dump file was left behind");

    int st = ft_signal(&s, SIGTERM, 60000);
    ck_assert_msg(ft_exited_zero(st), "tiercached did not exit 0 on SIGTERM");
    dump_ok((const char *[]){arg, "-o", native, NULL}, NULL);
    check_native(&m, native);
    unlink(native);
    ft_dir_deinit(&s);
    ft_log_retire(s.ts.log_path);
}
END_TEST

START_TEST(usage)
{
    struct run r;
    const char *const bad[][6] = {
        {NULL},
        {"-s", "127.0.0.1:1", NULL},       /* no -o */
        {"-o", "-", "--format=xml", NULL}, /* no such format */
        {"-o", "-", "--bogus", NULL},      /* no such option */
        {"-o", "-", "-s", "x:1", "--data-dir=/x", NULL},
        {"-o", "-", "extra", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_dump(&r, bad[i], NULL);
        ck_assert_msg(exit_code(&r) == 2, "case %zu: exit %d: %s", i, exit_code(&r), r.err);
        char *nl = strchr(r.err, '\n');
        ck_assert_msg(nl != NULL && nl[1] == '\0' && strlen(r.err) > 10,
                      "case %zu: not one line: \"%s\"", i, r.err);
    }
    run_dump(&r, (const char *[]){"--help", NULL}, NULL);
    ck_assert_int_eq(exit_code(&r), 0);
    run_dump(&r, (const char *[]){"--version", NULL}, NULL);
    ck_assert_int_eq(exit_code(&r), 0);

    /* A port nobody listens on: a memcached started and stopped frees one. */
    struct ft_server gone;
    mc_start(&gone);
    int port = gone.ts.port;
    mc_stop(&gone);
    char server[64], out[128];
    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    path_for(out, sizeof(out), "unreachable.dump");
    run_dump(&r, (const char *[]){"-s", server, "-o", out, NULL}, NULL);
    ck_assert_msg(exit_code(&r) == 1, "exit %d: %s", exit_code(&r), r.err);
    ck_assert_msg(strstr(r.err, server) != NULL, "the message does not name %s: %s", server, r.err);
    ck_assert_msg(access(out, F_OK) != 0, "a dump file was left behind");
}
END_TEST

static Suite *dump_suite(void)
{
    Suite *s = suite_create("dump");
    TCase *tc = tcase_create("dump");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, parsers);
    tcase_add_test(tc, usage);
    tcase_add_test(tc, from_memcached);
    tcase_add_test(tc, rate_limited);
    tcase_add_test(tc, not_torn_memcached);
    tcase_add_test(tc, from_tiercached);
    tcase_add_test(tc, not_torn_tiercached);
    tcase_add_test(tc, data_dir);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dump_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
