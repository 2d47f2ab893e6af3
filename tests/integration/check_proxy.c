/*
 * check_proxy.c: several tiercached behind twemproxy (nutcracker), and the
 * same servers used directly with client-side ketama (SPEC §7,
 * docs/DEPLOYMENT.md). Each case starts three tiercached (-m 4, a 64 MB
 * flash tier on a data dir of its own under /tmp, so that most of the data
 * is on flash) and a nutcracker in front of them (`distribution: ketama`,
 * `hash: md5`, `auto_eject_hosts: false`; its YAML in a temporary file, on
 * free loopback ports), then drives the built tiercache-bench through it.
 *
 *   ketama   the proxy and tiercache-bench --distribution=ketama send
 *            every key to the same backend: keys set through the proxy are
 *            all found by the bench going to the backends directly, and
 *            keys the bench sets directly are all found through the proxy;
 *            a sample of keys is asked of every backend: each is on
 *            exactly the backend that dist_pick() (the bench's own code)
 *            names, with its value intact. The servers carry twemproxy
 *            names ("127.0.0.1:P:1 cache-a"), and the bench names them
 *            alike (-s 127.0.0.1:P=cache-a).
 *   restart  fill and a mixed load through the proxy (multi-gets too):
 *            every value right, no error, each backend 20-50 % of the
 *            sets. Then, under an open-loop load through the proxy, one
 *            backend is stopped with SIGTERM (it writes RAM to flash and
 *            exits 0) and, while it is down, every key is asked once
 *            through the proxy: the keys that map to it (and only those)
 *            get "SERVER_ERROR Connection refused" at once, the others
 *            hit; nothing is ejected or remapped. It is started again on
 *            the same port and data dir: right away every key it held is
 *            served again, asked of it directly and through the proxy,
 *            values verified, and the load through the proxy never saw a
 *            wrong value. The figures (errors during the outage, stop and
 *            restart times, nutcracker's counters) go to stderr; they are
 *            the ones docs/DEPLOYMENT.md quotes.
 *
 * nutcracker is the Debian package's /usr/sbin/nutcracker (or
 * $NUTCRACKER_BIN); without it the test fails and says how to install it
 * (tools/deps.sh test). nutcracker and the bench are started with
 * PR_SET_PDEATHSIG, so they die with the test process; the tiercached get
 * flash_testlib's guards. Every wait is bounded.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "dist.h"
#include "flash_testlib.h"
#include "verify.h"

#ifndef TIERCACHE_BENCH_BIN
#define TIERCACHE_BENCH_BIN "tiercache-bench"
#endif

#define NSERVERS      3
#define KEYS          30000 /* set through the proxy: ~10 MB per backend, most of it on flash */
#define VALUES        "200-1800"
#define DIRECT_KEYS   3000   /* set by the bench directly (ketama case) */
#define SAMPLE_STEP   97     /* every 97th key is asked of every backend */
#define LOAD_RATE     2000   /* ops/s of the load that runs across the outage */
#define STOP_MS       60000  /* a graceful stop writes RAM to flash: slow under ASan */
#define BENCH_MS      150000 /* the longest a bench run may take */
#define PROXY_TIMEOUT 2000   /* nutcracker's `timeout:` (ms) */

static const char *const server_opts[] = {"-v", "-m", "4", "--flash-size=64m", "-t", "2", NULL};

/* ---------------------------------------------------------------- processes */

/*
 * fork/exec argv[0] with stdout and stderr to files; the child gets
 * SIGKILL when the test process dies (so a failing test leaves nothing
 * running). Returns the pid, or -1.
 */
static pid_t spawn(const char *const *argv, const char *out_path, const char *err_path)
{
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t parent = getpid();
    pid_t pid = out >= 0 && err >= 0 ? fork() : -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    return pid;
}

/* Wait up to timeout_ms for pid; SIGKILL it if it does not exit. The wait status, or -1. */
static int reap(pid_t pid, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        if (ts_now_ms() >= deadline)
            break;
        ft_pause_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* A whole small file into buf (NUL-terminated); "" if unreadable. */
static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
}

/* Two distinct free loopback ports (both bound at once, then released). */
static void free_ports(int *a, int *b)
{
    int fd[2];
    int *out[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd[i], 0);
        ck_assert_int_eq(bind(fd[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(getsockname(fd[i], (struct sockaddr *)&sa, &len), 0);
        *out[i] = ntohs(sa.sin_port);
    }
    close(fd[0]);
    close(fd[1]);
}

/* ---------------------------------------------------------------- tiercached */

static void servers_start(struct ft_server *s, const char *tag)
{
    for (int i = 0; i < NSERVERS; i++) {
        char dir[200];
        snprintf(dir, sizeof(dir), "/tmp/tc-proxy-%d-%s-%d", (int)getpid(), tag, i);
        ft_dir_init(&s[i], dir);
        ck_assert_msg(ft_dir_start(&s[i], server_opts) == 0, "tiercached %d did not start", i);
    }
}

/* Stop each (SIGTERM: exit 0 expected), remove the data dirs; no sanitizer report in the logs. */
static void servers_stop(struct ft_server *s)
{
    for (int i = 0; i < NSERVERS; i++) {
        int st = ft_signal(&s[i], SIGTERM, STOP_MS);
        char why[80];
        ck_assert_msg(ft_exited_zero(st), "tiercached %d: %s after SIGTERM (log %s)", i,
                      ft_status_text(st, why, sizeof(why)), s[i].ts.log_path);
        ft_dir_deinit(&s[i]);
        ck_assert_msg(ft_log_retire(s[i].ts.log_path), "a sanitizer report in %s",
                      s[i].ts.log_path);
    }
}

/* ---------------------------------------------------------------- nutcracker */

struct proxy {
    pid_t pid;
    int port, stats_port;
    char conf[128], log[128], out[128];
};

static const char *nutcracker_bin(void)
{
    const char *b = getenv("NUTCRACKER_BIN");
    return b != NULL && *b != '\0' ? b : "/usr/sbin/nutcracker";
}

static void proxy_dump(const struct proxy *p, const char *why)
{
    static char text[16384];
    slurp(p->log, text, sizeof(text));
    fprintf(stderr, "---- nutcracker log %s (%s) ----\n%s---- end ----\n", p->log, why, text);
}

/*
 * Write the YAML and start nutcracker on free ports in front of the
 * servers, named names[i] if names is not NULL. Retries (new ports) if it
 * exits before listening: a port may be taken between the probe and its
 * bind. Waits until both its ports answer.
 */
/* Fail the test at once, saying what to install, if there is no nutcracker. */
static void need_nutcracker(void)
{
    const char *bin = nutcracker_bin();
    ck_assert_msg(access(bin, X_OK) == 0,
                  "nutcracker not found at %s: install the Debian package nutcracker "
                  "(tools/deps.sh test does), or set NUTCRACKER_BIN",
                  bin);
}

static void proxy_start(struct proxy *p, const struct ft_server *s, const char *const *names)
{
    const char *bin = nutcracker_bin();
    need_nutcracker();
    memset(p, 0, sizeof(*p));
    snprintf(p->conf, sizeof(p->conf), "/tmp/tc-test-nutcracker-%d.yml", (int)getpid());
    snprintf(p->log, sizeof(p->log), "/tmp/tc-test-nutcracker-%d.log", (int)getpid());
    snprintf(p->out, sizeof(p->out), "/tmp/tc-test-nutcracker-%d.out", (int)getpid());
    for (int attempt = 0; attempt < 5; attempt++) {
        free_ports(&p->port, &p->stats_port);
        FILE *f = fopen(p->conf, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f,
                "tiercache:\n"
                "  listen: 127.0.0.1:%d\n"
                "  hash: md5\n"
                "  distribution: ketama\n"
                "  auto_eject_hosts: false\n"
                "  timeout: %d\n"
                "  server_retry_timeout: 2000\n"
                "  server_failure_limit: 3\n"
                "  servers:\n",
                p->port, PROXY_TIMEOUT);
        for (int i = 0; i < NSERVERS; i++)
            fprintf(f, "   - 127.0.0.1:%d:1%s%s\n", s[i].ts.port, names != NULL ? " " : "",
                    names != NULL ? names[i] : "");
        fclose(f);
        char port[16], iv[] = "100";
        snprintf(port, sizeof(port), "%d", p->stats_port);
        const char *argv[] = {bin,  "-c", p->conf,     "-o", p->log, "-s",
                              port, "-a", "127.0.0.1", "-i", iv,     NULL};
        p->pid = spawn(argv, p->out, p->out);
        ck_assert_int_gt(p->pid, 0);
        long long deadline = ts_now_ms() + 10000;
        bool up = false;
        while (!up && ts_now_ms() < deadline) {
            if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
                p->pid = -1;
                break;
            }
            int a = ts_connect(p->port), b = a >= 0 ? ts_connect(p->stats_port) : -1;
            up = a >= 0 && b >= 0;
            if (a >= 0)
                close(a);
            if (b >= 0)
                close(b);
            if (!up)
                ft_pause_ms(10);
        }
        if (up)
            return;
        if (p->pid > 0) {
            proxy_dump(p, "not listening after 10 s");
            ck_abort_msg("nutcracker did not listen within 10 s");
        }
    }
    proxy_dump(p, "exited at start five times");
    ck_abort_msg("nutcracker did not start (config %s)", p->conf);
}

static void proxy_stop(struct proxy *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        reap(p->pid, 10000);
        p->pid = -1;
    }
    unlink(p->conf);
    unlink(p->log);
    unlink(p->out);
}

/*
 * nutcracker's stats (one JSON object on its stats port, aggregated every
 * 100 ms here): the number after "name": within the object of `server`
 * ("127.0.0.1:P"; NULL: the pool's own counters, which come first). -1 if
 * absent.
 */
static long long proxy_stat(const struct proxy *p, const char *server, const char *name)
{
    static char json[65536];
    int fd = ts_connect(p->stats_port);
    if (fd < 0)
        return -1;
    ssize_t n = ts_recv_until(fd, json, sizeof(json) - 1, NULL, 5000);
    close(fd);
    if (n <= 0)
        return -1;
    json[n] = '\0';
    const char *from = json;
    char pat[128];
    if (server != NULL) {
        snprintf(pat, sizeof(pat), "\"%s\":", server);
        from = strstr(json, pat);
        if (from == NULL)
            return -1;
    }
    snprintf(pat, sizeof(pat), "\"%s\":", name);
    const char *v = strstr(from, pat);
    return v != NULL ? atoll(v + strlen(pat)) : -1;
}

/* ---------------------------------------------------------------- the bench */

struct bench {
    pid_t pid;
    char out[128], err[128];
    char json[16384]; /* the last line of stdout, after bench_wait */
    char errtext[4096];
};

/* Start tiercache-bench with the arguments of fmt (split at spaces). */
__attribute__((format(printf, 2, 3))) static void bench_start(struct bench *b, const char *fmt, ...)
{
    static int seq;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    const char *argv[64];
    int n = 0;
    argv[n++] = TIERCACHE_BENCH_BIN;
    for (char *save = NULL, *t = strtok_r(line, " ", &save); t != NULL && n < 63;
         t = strtok_r(NULL, " ", &save))
        argv[n++] = t;
    argv[n] = NULL;
    snprintf(b->out, sizeof(b->out), "/tmp/tc-test-proxy-bench-%d-%d.out", (int)getpid(), seq);
    snprintf(b->err, sizeof(b->err), "/tmp/tc-test-proxy-bench-%d-%d.err", (int)getpid(), seq++);
    b->pid = spawn(argv, b->out, b->err);
    ck_assert_int_gt(b->pid, 0);
}

/* Wait for the bench; its exit status (-1: killed or hung), JSON line and stderr into b. */
static int bench_wait(struct bench *b)
{
    int st = reap(b->pid, BENCH_MS);
    static char out[1 << 17];
    slurp(b->out, out, sizeof(out));
    slurp(b->err, b->errtext, sizeof(b->errtext));
    unlink(b->out);
    unlink(b->err);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    char *last = strrchr(out, '\n');
    snprintf(b->json, sizeof(b->json), "%s", last != NULL ? last + 1 : out);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run the bench to the end; it must exit 0. */
__attribute__((format(printf, 2, 3))) static void bench_run(struct bench *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    bench_start(b, "%s", line);
    int st = bench_wait(b);
    ck_assert_msg(st == 0, "tiercache-bench %s: exit %d, stderr: %s", line, st, b->errtext);
}

/* The top-level number "name" of a bench's JSON line. */
static double jnum(const struct bench *b, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", name);
    const char *p = strstr(b->json, pat);
    ck_assert_msg(p != NULL, "no %s in %s", name, b->json);
    return strtod(p + strlen(pat), NULL);
}

/* hits/misses/errors/wrong of a run, as text, for messages and comparisons. */
static const char *hmew(const struct bench *b, char *out, size_t cap)
{
    snprintf(out, cap, "%.0f/%.0f/%.0f/%.0f", jnum(b, "hits"), jnum(b, "misses"), jnum(b, "errors"),
             jnum(b, "wrong_values"));
    return out;
}

/* ---------------------------------------------------------------- keys */

static struct dist ring; /* the bench's own ketama over the three servers */

/* ring := the three servers as the bench and the proxy name them. */
static void ring_build(const struct ft_server *s, const char *const *names)
{
    char err[256];
    dist_init(&ring, DIST_KETAMA);
    for (int i = 0; i < NSERVERS; i++) {
        char spec[160];
        snprintf(spec, sizeof(spec), "127.0.0.1:%d%s%s", s[i].ts.port, names != NULL ? "=" : "",
                 names != NULL ? names[i] : "");
        ck_assert_msg(dist_add(&ring, spec, err, sizeof(err)) == TC_OK, "%s", err);
    }
}

/* How many of the keys <prefix>0 .. <prefix>(n-1) the ring puts on server `idx`. */
static long owned(const char *prefix, long n, unsigned idx)
{
    long c = 0;
    for (long i = 0; i < n; i++) {
        char key[64];
        int k = snprintf(key, sizeof(key), "%s%ld", prefix, i);
        c += dist_pick(&ring, key, (size_t)k) == idx;
    }
    return c;
}

/* "-s 127.0.0.1:P1[=N1] -s ..." for the bench. */
static const char *server_args(const struct ft_server *s, const char *const *names, char *out,
                               size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < NSERVERS; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s-s 127.0.0.1:%d%s%s", i ? " " : "", s[i].ts.port,
                              names != NULL ? "=" : "", names != NULL ? names[i] : "");
    return out;
}

/*
 * Ask every server for every SAMPLE_STEP-th key of <prefix>0..n-1: the key
 * must be on exactly the server the ring names, with the bench's bytes for
 * the version in its flags. Returns the keys checked.
 */
static long check_placement(const struct ft_server *s, const char *prefix, long n)
{
    struct verify_pool *pool = NULL;
    ck_assert_int_eq(verify_create(&pool), TC_OK);
    struct ft_conn c[NSERVERS];
    for (int i = 0; i < NSERVERS; i++)
        ck_assert_msg(ft_open(&c[i], s[i].ts.port) == 0, "%s", c[i].err);
    long checked = 0;
    for (long id = 0; id < n; id += SAMPLE_STEP) {
        char key[64];
        int k = snprintf(key, sizeof(key), "%s%ld", prefix, id);
        unsigned want = dist_pick(&ring, key, (size_t)k);
        for (int i = 0; i < NSERVERS; i++) {
            ck_assert_int_eq(ft_sendf(&c[i], "get %s\r\n", key), 0);
            struct ft_value v;
            int r = ft_next_value(&c[i], &v);
            ck_assert_msg(r >= 0, "get %s on server %d: %s", key, i, c[i].err);
            ck_assert_msg((r == 1) == ((unsigned)i == want),
                          "%s is %s server %d (port %d); ketama puts it on server %u", key,
                          r == 1 ? "on" : "not on", i, s[i].ts.port, want);
            if (r == 1) {
                ck_assert_msg(verify_check(pool, key, (size_t)k, v.flags, v.data, v.n),
                              "server %d: wrong value for %s (%zu bytes, flags %u)", i, key, v.n,
                              v.flags);
                ck_assert_int_eq(ft_next_value(&c[i], &v), 0);
            }
        }
        checked++;
    }
    for (int i = 0; i < NSERVERS; i++)
        ft_close(&c[i]);
    verify_destroy(&pool);
    return checked;
}

/* ---------------------------------------------------------------- cases */

START_TEST(test_ketama_matches_proxy)
{
    static const char *const names[NSERVERS] = {"cache-a", "cache-b", "cache-c"};
    struct ft_server s[NSERVERS];
    struct proxy p;
    struct bench b;
    char srv[512], got[64];
    need_nutcracker();
    servers_start(s, "ketama");
    proxy_start(&p, s, names);
    ring_build(s, names);
    server_args(s, names, srv, sizeof(srv));

    /* keys set through the proxy ... */
    bench_run(&b, "-s 127.0.0.1:%d -k %d --value-size=%s --fill -n 1 -r 1:0 -q --json", p.port,
              KEYS, VALUES);
    ck_assert_msg(strstr(b.errtext, "error reply") == NULL, "fill through the proxy: %s",
                  b.errtext);
    /* ... are all found where client-side ketama looks for them */
    bench_run(&b,
              "%s --distribution=ketama -k %d --key-pattern=sequential -r 1:0 -n %d -c 2 -q --json",
              srv, KEYS, KEYS);
    char want[64];
    snprintf(want, sizeof(want), "%d/0/0/0", KEYS);
    ck_assert_msg(strcmp(hmew(&b, got, sizeof(got)), want) == 0,
                  "direct ketama gets of the proxy's keys: hits/misses/errors/wrong %s", got);
    /* (modula, by contrast, looks elsewhere for most of them) */
    bench_run(&b,
              "%s --distribution=modula -k %d --key-pattern=sequential -r 1:0 -n %d -c 2 -q --json",
              srv, KEYS, KEYS);
    ck_assert_msg(jnum(&b, "hits") < 0.5 * KEYS, "modula found %s", hmew(&b, got, sizeof(got)));
    long sampled = check_placement(s, "tcb:", KEYS);

    /* keys the bench sets directly are all found through the proxy */
    bench_run(&b, "%s --key-prefix=kc: -k %d --fill -n 1 -r 1:0 -q --json", srv, DIRECT_KEYS);
    ck_assert_msg(strstr(b.json, "\"distribution\":\"ketama\"") != NULL, "%s", b.json);
    bench_run(&b,
              "-s 127.0.0.1:%d --key-prefix=kc: -k %d --key-pattern=sequential -r 1:0 -n %d "
              "--multiget=10 -q --json",
              p.port, DIRECT_KEYS, DIRECT_KEYS / 10);
    snprintf(want, sizeof(want), "%d/0/0/0", DIRECT_KEYS);
    ck_assert_msg(strcmp(hmew(&b, got, sizeof(got)), want) == 0,
                  "proxy gets of the bench's keys: hits/misses/errors/wrong %s", got);
    sampled += check_placement(s, "kc:", DIRECT_KEYS);
    fprintf(stderr,
            "check_proxy ketama: %d keys set through nutcracker all found by direct ketama, "
            "%d set directly all found through nutcracker, %ld asked of every backend\n",
            KEYS, DIRECT_KEYS, sampled);
    proxy_stop(&p);
    servers_stop(s);
}
END_TEST

START_TEST(test_backend_restart)
{
    struct ft_server s[NSERVERS];
    struct proxy p;
    struct bench b, load;
    char got[64], px[32];
    need_nutcracker();
    servers_start(s, "restart");
    proxy_start(&p, s, NULL);
    ring_build(s, NULL);
    snprintf(px, sizeof(px), "-s 127.0.0.1:%d", p.port);

    /* fill and a mixed load through the proxy: every value right, no error */
    bench_run(&b, "%s -k %d --value-size=%s --fill -d 2 --key-pattern=uniform -c 4 -q --json", px,
              KEYS, VALUES);
    ck_assert_msg(strstr(b.errtext, "error reply") == NULL && jnum(&b, "errors") == 0 &&
                      jnum(&b, "wrong_values") == 0 && jnum(&b, "hit_ratio") == 1.0,
                  "fill + 9:1 through the proxy: %s %s", b.json, b.errtext);
    bench_run(&b, "%s -k %d --key-pattern=uniform -r 1:0 -n 2000 --multiget=10 -P 4 -q --json", px,
              KEYS);
    ck_assert_msg(jnum(&b, "errors") == 0 && jnum(&b, "wrong_values") == 0 &&
                      jnum(&b, "hit_ratio") == 1.0,
                  "multi-gets of 10 through the proxy: %s", b.json);
    long long sets[NSERVERS], total = 0;
    for (int i = 0; i < NSERVERS; i++) {
        sets[i] = ts_stat(s[i].ts.port, "stats", "cmd_set");
        total += sets[i];
    }
    for (int i = 0; i < NSERVERS; i++)
        ck_assert_msg(sets[i] >= total / 5 && sets[i] <= total / 2,
                      "server %d got %lld of %lld sets through the proxy", i, sets[i], total);
    long long flash_items = ft_tier(s[1].ts.port, "flash_items");
    ck_assert_msg(flash_items > 0, "nothing on flash on server 1 (%lld)", flash_items);

    /* a load through the proxy across the outage (open loop, LOAD_RATE ops/s) */
    const unsigned victim = 1;
    long long gets0 = ts_stat(s[victim].ts.port, "stats", "cmd_get");
    bench_start(&load, "%s -k %d --value-size=%s --key-pattern=uniform -R %d -d 12 -c 2 -q --json",
                px, KEYS, VALUES, LOAD_RATE);
    long long deadline = ts_now_ms() + 10000;
    while (ts_stat(s[victim].ts.port, "stats", "cmd_get") <= gets0 && ts_now_ms() < deadline)
        ft_pause_ms(10);

    long long t_stop = ts_now_ms();
    int st = ft_signal(&s[victim], SIGTERM, STOP_MS);
    long long t_down = ts_now_ms();
    char why[80];
    ck_assert_msg(ft_exited_zero(st), "tiercached %u: %s after SIGTERM (log %s)", victim,
                  ft_status_text(st, why, sizeof(why)), s[victim].ts.log_path);
    ck_assert_msg(ts_file_contains(s[victim].ts.log_path, "written to flash"),
                  "the stop did not write RAM to flash (log %s)", s[victim].ts.log_path);
    ck_assert_msg(ft_log_retire(s[victim].ts.log_path), "a sanitizer report in %s",
                  s[victim].ts.log_path);

    /* while it is down: its keys (and only its) fail at once, nothing is remapped */
    long mine = owned("tcb:", KEYS, victim);
    bench_run(&b, "%s -k %d --key-pattern=sequential -r 1:0 -n %d -c 2 -q --json", px, KEYS, KEYS);
    char want[64];
    snprintf(want, sizeof(want), "%ld/%ld/%ld/0", KEYS - mine, mine, mine);
    ck_assert_msg(strcmp(hmew(&b, got, sizeof(got)), want) == 0,
                  "gets through the proxy with server %u down: hits/misses/errors/wrong %s, want "
                  "%s (its keys fail, the others hit)",
                  victim, got, want);
    ck_assert_msg(strstr(b.errtext, "SERVER_ERROR Connection refused") != NULL, "stderr: %s",
                  b.errtext);
    double down_p99 = jnum(&b, "p99_us");
    ck_assert_int_eq(proxy_stat(&p, NULL, "server_ejects"), 0);

    /* warm restart on the same port and data dir */
    long long t_restart = ts_now_ms();
    ck_assert_msg(ft_restart(&s[victim], server_opts) == 0, "tiercached %u did not restart",
                  victim);
    long long t_up = ts_now_ms();
    /* at once: every key it held, asked of it directly ... */
    bench_run(&b, "-s 127.0.0.1:%d -k %d --key-pattern=sequential -r 1:0 -n %d -c 2 -q --json",
              s[victim].ts.port, KEYS, KEYS);
    snprintf(want, sizeof(want), "%ld/%ld/0/0", mine, KEYS - mine);
    ck_assert_msg(strcmp(hmew(&b, got, sizeof(got)), want) == 0,
                  "gets of every key from the restarted server: hits/misses/errors/wrong %s, "
                  "want %s (all %ld of its keys)",
                  got, want, mine);
    long long flash_hits = ft_tier(s[victim].ts.port, "flash_hits");
    /* ... and through the proxy */
    bench_run(&b, "%s -k %d --key-pattern=sequential -r 1:0 -n %d -c 2 -q --json", px, KEYS, KEYS);
    snprintf(want, sizeof(want), "%d/0/0/0", KEYS);
    ck_assert_msg(strcmp(hmew(&b, got, sizeof(got)), want) == 0,
                  "gets through the proxy after the restart: hits/misses/errors/wrong %s", got);
    long sampled = check_placement(s, "tcb:", KEYS);

    /* the load that ran across it: errors for the victim's keys, never a wrong value */
    int lst = bench_wait(&load);
    ck_assert_msg(lst == 0, "the load across the outage: exit %d, stderr: %s", lst, load.errtext);
    ck_assert_msg(jnum(&load, "wrong_values") == 0, "%s", load.json);
    ck_assert_msg(jnum(&load, "errors") > 0, "no error during the outage? %s", load.json);
    long long fwd = proxy_stat(&p, NULL, "forward_error");
    char vname[32];
    snprintf(vname, sizeof(vname), "127.0.0.1:%d", s[victim].ts.port);
    fprintf(stderr,
            "check_proxy restart: server %u (%ld of %d keys) stopped in %lld ms (SIGTERM to exit "
            "0), down %lld ms, restarted in %lld ms; with it down, %ld gets of its keys through "
            "nutcracker got SERVER_ERROR Connection refused (p99 %.0f us over all gets), the "
            "other %ld hit; right after the restart it served all %ld of its keys (%lld flash "
            "hits), and nutcracker all %d; the %d ops/s load across the outage: %.0f ops, %.0f "
            "errors, %.0f misses, %.0f wrong values, p99 %.0f us; nutcracker: forward_error "
            "%lld, server_ejects %lld, %s server_err %lld server_eof %lld; %ld keys asked of "
            "every backend\n",
            victim, mine, KEYS, t_down - t_stop, t_up - t_down, t_up - t_restart, mine, down_p99,
            KEYS - mine, mine, flash_hits, KEYS, LOAD_RATE, jnum(&load, "ops"),
            jnum(&load, "errors"), jnum(&load, "misses"), jnum(&load, "wrong_values"),
            jnum(&load, "p99_us"), fwd, proxy_stat(&p, NULL, "server_ejects"), vname,
            proxy_stat(&p, vname, "server_err"), proxy_stat(&p, vname, "server_eof"), sampled);
    ck_assert_msg(fwd >= mine, "nutcracker counted %lld forward errors, fewer than %ld", fwd, mine);
    proxy_stop(&p);
    servers_stop(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tk = tcase_create("ketama");
    tcase_add_test(tk, test_ketama_matches_proxy);
    suite_add_tcase(s, tk);
    TCase *tr = tcase_create("restart");
    tcase_add_test(tr, test_backend_restart);
    suite_add_tcase(s, tr);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
