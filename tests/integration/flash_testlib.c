/*
 * flash_testlib.c: see flash_testlib.h.
 */
#include "flash_testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES  (64 * 1024)
#define READ_CHUNK      (256 * 1024)
#define DEFAULT_TIMEOUT 30000
#define ARGS_MAX        48 /* a server's arguments, the terminating NULL included */

/* ---------------------------------------------------------------- servers */

void ft_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long ft_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    return *end == '\0' ? x : dflt;
}

/* Is `pid` still a server of ours, tiercached or memcached (not a
 * recycled pid)? */
static bool is_server(pid_t pid)
{
    char path[64], cmd[512];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    cmd[n] = '\0';
    return strstr(cmd, "tiercached") != NULL || strstr(cmd, "memcached") != NULL;
}

/* rm -rf a data dir of the test's own and its dir.corrupt-* siblings. */
static void remove_dirs(const char *dir)
{
    if (dir[0] == '\0')
        return;
    ts_remove_tree(dir);
    char pat[300];
    snprintf(pat, sizeof(pat), "%s.corrupt-*", dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            ts_remove_tree(g.gl_pathv[i]);
        globfree(&g);
    }
}

/*
 * The guard: a child that blocks reading a pipe whose write end only the
 * test process holds (close-on-exec, so servers do not inherit it). A byte
 * means "released"; EOF means the test process is gone: kill the server
 * and remove its data dir (the test's own with its siblings, or a made-up
 * one). It knows the pid the server had at the fork: a restarted server
 * needs a new guard.
 */
static void guard_start(struct ft_server *s)
{
    int p[2];
    s->guard_pid = -1;
    s->guard_fd = -1;
    if (pipe2(p, O_CLOEXEC) != 0)
        return;
    pid_t g = fork();
    if (g < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    if (g == 0) {
        /* A process group of its own: Check kills the test's group on a
         * timeout, and the guard must outlive the test to clean up. */
        setpgid(0, 0);
        close(p[1]);
        char c;
        ssize_t r;
        do
            r = read(p[0], &c, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1) {
            if (s->ts.pid > 0 && is_server(s->ts.pid))
                kill(s->ts.pid, SIGKILL);
            if (s->dir[0] != '\0') {
                ft_pause_ms(200);
                remove_dirs(s->dir);
            } else if (s->ts.own_data_dir) {
                ft_pause_ms(200);
                ts_remove_tree(s->ts.data_dir);
            }
        }
        _exit(0);
    }
    close(p[0]);
    s->guard_pid = g;
    s->guard_fd = p[1];
}

static void guard_release(struct ft_server *s)
{
    if (s->guard_fd >= 0) {
        ssize_t w = write(s->guard_fd, "q", 1);
        (void)w;
        close(s->guard_fd);
        s->guard_fd = -1;
    }
    if (s->guard_pid > 0) {
        waitpid(s->guard_pid, NULL, 0);
        s->guard_pid = -1;
    }
}

int ft_start(struct ft_server *s, const char *fault_spec, const char *const *args)
{
    memset(s, 0, sizeof(*s));
    s->guard_pid = -1;
    s->guard_fd = -1;
    if (fault_spec != NULL)
        setenv("TIERCACHE_FLASH_FAULT", fault_spec, 1);
    int r = ts_start_tiercached(&s->ts, args);
    if (fault_spec != NULL)
        unsetenv("TIERCACHE_FLASH_FAULT");
    if (r != 0)
        return -1;
    guard_start(s);
    return 0;
}

int ft_start_memcached(struct ft_server *s, const char *const *args)
{
    memset(s, 0, sizeof(*s));
    s->guard_pid = -1;
    s->guard_fd = -1;
    if (ts_start_memcached(&s->ts, args) != 0)
        return -1;
    guard_start(s);
    return 0;
}

int ft_stop(struct ft_server *s)
{
    int st = ts_stop(&s->ts);
    guard_release(s);
    return st;
}

void ft_dir_init(struct ft_server *s, const char *dir)
{
    memset(s, 0, sizeof(*s));
    s->ts.pid = -1;
    s->guard_pid = -1;
    s->guard_fd = -1;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    remove_dirs(s->dir);
}

/*
 * The arguments of a start of s: "--data-dir=<s->dir>" (into dirarg) if s
 * has a dir of the test's own, then args. 0, or -1 if they do not fit.
 */
static int server_args(const struct ft_server *s, char *dirarg, size_t dcap, const char **argv,
                       const char *const *args)
{
    size_t n = 0;
    if (s->dir[0] != '\0') {
        snprintf(dirarg, dcap, "--data-dir=%s", s->dir);
        argv[n++] = dirarg;
    }
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        if (n >= ARGS_MAX - 1) {
            fprintf(stderr, "tiercached: more than %d arguments\n", ARGS_MAX - 1);
            return -1;
        }
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return 0;
}

/* Whether s has no server process; says so on stderr if it has one. */
static bool not_running(const struct ft_server *s, const char *what)
{
    if (s->ts.pid <= 0)
        return true;
    fprintf(stderr, "%s: tiercached (pid %d) still runs\n", what, (int)s->ts.pid);
    return false;
}

int ft_dir_start(struct ft_server *s, const char *const *args)
{
    if (s->dir[0] == '\0') {
        fprintf(stderr, "ft_dir_start: no data dir (ft_dir_init)\n");
        return -1;
    }
    if (!not_running(s, "ft_dir_start"))
        return -1;
    guard_release(s);
    char dirarg[300];
    const char *argv[ARGS_MAX];
    if (server_args(s, dirarg, sizeof(dirarg), argv, args) != 0 ||
        ts_start_tiercached(&s->ts, argv) != 0)
        return -1;
    guard_start(s);
    return 0;
}

int ft_restart(struct ft_server *s, const char *const *args)
{
    if (!not_running(s, "ft_restart"))
        return -1;
    guard_release(s);
    char dirarg[300];
    const char *argv[ARGS_MAX];
    if (server_args(s, dirarg, sizeof(dirarg), argv, args) != 0)
        return -1;
    if (ts_restart_tiercached(&s->ts, argv) != 0) {
        ft_dump_log(s, "did not restart");
        return -1;
    }
    guard_start(s);
    char want[64];
    snprintf(want, sizeof(want), "listening on 127.0.0.1:%d", s->ts.port);
    long long deadline = ts_now_ms() + 10000;
    while (!ts_file_contains(s->ts.log_path, want) && ts_now_ms() < deadline)
        ft_pause_ms(5);
    if (!ts_file_contains(s->ts.log_path, want)) {
        fprintf(stderr, "the restarted tiercached does not say \"%s\"\n", want);
        ft_dump_log(s, "not listening on its port");
        return -1;
    }
    return 0;
}

int ft_signal(struct ft_server *s, int sig, int timeout_ms)
{
    int st = ts_signal_wait(&s->ts, sig, timeout_ms);
    if (s->ts.pid > 0) {
        kill(s->ts.pid, SIGKILL);
        waitpid(s->ts.pid, NULL, 0);
        s->ts.pid = -1;
        st = -1;
    }
    guard_release(s);
    return st;
}

void ft_dir_deinit(struct ft_server *s)
{
    if (s->ts.pid > 0)
        ft_signal(s, SIGKILL, 10000);
    guard_release(s);
    remove_dirs(s->dir);
}

bool ft_log_retire(char *path)
{
    if (path[0] == '\0')
        return true;
    if (ts_file_contains(path, "Sanitizer") || ts_file_contains(path, "runtime error"))
        return false;
    unlink(path);
    path[0] = '\0';
    return true;
}

bool ft_exited_zero(int status)
{
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

const char *ft_status_text(int status, char *out, size_t cap)
{
    if (status == -1)
        snprintf(out, cap, "hung on SIGTERM for 10 s, killed");
    else if (WIFEXITED(status))
        snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, cap, "wait status %d", status);
    return out;
}

bool ft_alive(struct ft_server *s)
{
    if (s->ts.pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(s->ts.pid, &st, WNOHANG);
    if (r == 0)
        return true;
    if (r == s->ts.pid) {
        fprintf(stderr, "tiercached (pid %d) is gone: %s %d\n", (int)s->ts.pid,
                WIFSIGNALED(st) ? "signal" : "exit status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        s->ts.pid = -1;
    }
    return false;
}

int ft_count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

void ft_dump_log(const struct ft_server *s, const char *why)
{
    fprintf(stderr, "---- tiercached log %s (%s) ----\n", s->ts.log_path, why);
    FILE *f = fopen(s->ts.log_path, "r");
    if (f == NULL)
        return;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL && n++ < 200)
        fputs(line, stderr);
    fclose(f);
    fprintf(stderr, "---- end of log ----\n");
}

/* ---------------------------------------------------------------- connections */

int ft_open(struct ft_conn *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->timeout_ms = DEFAULT_TIMEOUT;
    c->fd = ts_connect(port);
    if (c->fd < 0) {
        snprintf(c->err, sizeof(c->err), "cannot connect to port %d", port);
        return -1;
    }
    c->cap = 2 * READ_CHUNK;
    c->buf = malloc(c->cap);
    if (c->buf == NULL) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

void ft_close(struct ft_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

int ft_send(struct ft_conn *c, const void *p, size_t n)
{
    if (ts_send_all(c->fd, p, n) != 0) {
        c->broken = true;
        snprintf(c->err, sizeof(c->err), "send failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int ft_sendf(struct ft_conn *c, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(c->err, sizeof(c->err), "request too long");
        return -1;
    }
    return ft_send(c, tmp, (size_t)n);
}

/* Make room for `want` more bytes after tail, moving unread bytes to the front. */
static int reserve(struct ft_conn *c, size_t want)
{
    if (c->head > 0 && c->cap - c->tail < want) {
        memmove(c->buf, c->buf + c->head, c->tail - c->head);
        c->tail -= c->head;
        c->head = 0;
    }
    if (c->cap - c->tail < want) {
        size_t cap = c->cap;
        while (cap - c->tail < want)
            cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (nb == NULL)
            return -1;
        c->buf = nb;
        c->cap = cap;
    }
    return 0;
}

/* Read more bytes (at least one) before the deadline. */
static int fill(struct ft_conn *c, long long deadline)
{
    c->broken = true; /* until a read succeeds */
    if (reserve(c, READ_CHUNK) != 0) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }
    for (;;) {
        long long left = deadline - ts_now_ms();
        if (left <= 0) {
            snprintf(c->err, sizeof(c->err), "timed out waiting for a reply (%d ms)",
                     c->timeout_ms);
            return -1;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(c->err, sizeof(c->err), "poll: %s", strerror(errno));
            return -1;
        }
        if (r == 0)
            continue;
        ssize_t n = recv(c->fd, c->buf + c->tail, c->cap - c->tail, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(c->err, sizeof(c->err), "connection %s", n == 0 ? "closed" : "failed");
            return -1;
        }
        c->tail += (size_t)n;
        c->broken = false;
        return 0;
    }
}

int ft_line(struct ft_conn *c, const char **line, size_t *n)
{
    long long deadline = ts_now_ms() + c->timeout_ms;
    size_t scanned = 0;
    for (;;) {
        const char *start = c->buf + c->head;
        size_t avail = c->tail - c->head;
        const char *nl = avail > scanned ? memchr(start + scanned, '\n', avail - scanned) : NULL;
        if (nl != NULL) {
            size_t len = (size_t)(nl - start);
            if (len == 0 || start[len - 1] != '\r') {
                c->broken = true;
                snprintf(c->err, sizeof(c->err), "a line ends without \\r: \"%.*s\"",
                         (int)(len > 200 ? 200 : len), start);
                return -1;
            }
            *line = start;
            *n = len - 1;
            c->head += len + 1;
            return 0;
        }
        scanned = avail;
        if (avail > LINE_MAX_BYTES) {
            c->broken = true;
            snprintf(c->err, sizeof(c->err), "no line end in %zu bytes: \"%.100s\"", avail, start);
            return -1;
        }
        if (fill(c, deadline) != 0)
            return -1;
    }
}

int ft_block(struct ft_conn *c, size_t n, const char **p)
{
    long long deadline = ts_now_ms() + c->timeout_ms;
    while (c->tail - c->head < n + 2) {
        if (reserve(c, n + 2 - (c->tail - c->head)) != 0 || fill(c, deadline) != 0)
            return -1;
    }
    const char *start = c->buf + c->head;
    if (start[n] != '\r' || start[n + 1] != '\n') {
        c->broken = true;
        snprintf(c->err, sizeof(c->err), "a value block of %zu bytes is not followed by \\r\\n", n);
        return -1;
    }
    *p = start;
    c->head += n + 2;
    return 0;
}

int ft_expect(struct ft_conn *c, const char *want)
{
    const char *line;
    size_t n;
    if (ft_line(c, &line, &n) != 0)
        return -1;
    if (n != strlen(want) || memcmp(line, want, n) != 0) {
        snprintf(c->err, sizeof(c->err), "expected \"%s\", got \"%.*s\"", want,
                 (int)(n > 300 ? 300 : n), line);
        return -1;
    }
    return 0;
}

int ft_next_value(struct ft_conn *c, struct ft_value *v)
{
    const char *line;
    size_t n;
    if (ft_line(c, &line, &n) != 0)
        return -1;
    if (n == 3 && memcmp(line, "END", 3) == 0)
        return 0;
    char tmp[600];
    if (n < 6 || n >= sizeof(tmp) || memcmp(line, "VALUE ", 6) != 0) {
        snprintf(c->err, sizeof(c->err), "expected VALUE or END, got \"%.*s\"",
                 (int)(n > 300 ? 300 : n), line);
        return -1;
    }
    memcpy(tmp, line, n);
    tmp[n] = '\0';
    char key[256];
    unsigned long flags;
    unsigned long long bytes, cas;
    char extra[8];
    int k = sscanf(tmp + 6, "%255s %lu %llu %llu %7s", key, &flags, &bytes, &cas, extra);
    if (k < 3 || k > 4) {
        c->broken = true;
        snprintf(c->err, sizeof(c->err), "malformed VALUE line \"%.300s\"", tmp);
        return -1;
    }
    snprintf(v->key, sizeof(v->key), "%s", key);
    v->nkey = strlen(key);
    v->flags = (uint32_t)flags;
    v->n = (size_t)bytes;
    v->has_cas = k == 4;
    v->cas = k == 4 ? cas : 0;
    return ft_block(c, v->n, &v->data) == 0 ? 1 : -1;
}

/* ---------------------------------------------------------------- stats */

int ft_stats_get(int port, const char *command, struct ft_stats *st)
{
    st->n = 0;
    st->text[0] = '\0';
    int fd = ts_connect(port);
    if (fd < 0)
        return -1;
    char req[128];
    snprintf(req, sizeof(req), "%s\r\n", command);
    ssize_t n = ts_request(fd, req, st->text, sizeof(st->text) - 1, "END\r\n");
    close(fd);
    if (n < 0)
        return -1;
    st->n = (size_t)n;
    st->text[n] = '\0';
    return 0;
}

static const char *stat_value(const struct ft_stats *st, const char *name)
{
    char needle[160];
    snprintf(needle, sizeof(needle), "STAT %s ", name);
    const char *p = st->text;
    while ((p = strstr(p, needle)) != NULL) {
        if (p == st->text || p[-1] == '\n')
            return p + strlen(needle);
        p++;
    }
    return NULL;
}

long long ft_stats_num(const struct ft_stats *st, const char *name)
{
    const char *v = stat_value(st, name);
    return v != NULL ? atoll(v) : -1;
}

bool ft_stats_str(const struct ft_stats *st, const char *name, char *out, size_t cap)
{
    const char *v = stat_value(st, name);
    if (v == NULL) {
        if (cap > 0)
            out[0] = '\0';
        return false;
    }
    size_t n = strcspn(v, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

long long ft_tier(int port, const char *name)
{
    struct ft_stats *st = malloc(sizeof(*st));
    if (st == NULL)
        return -1;
    long long v = ft_stats_get(port, "stats tiers", st) == 0 ? ft_stats_num(st, name) : -1;
    free(st);
    return v;
}

int ft_degraded(int port)
{
    struct ft_stats *st = malloc(sizeof(*st));
    if (st == NULL)
        return -1;
    char v[16];
    int r = -1;
    if (ft_stats_get(port, "stats tiers", st) == 0 && ft_stats_str(st, "flash_degraded", v, 16))
        r = strcmp(v, "yes") == 0;
    free(st);
    return r;
}

long long ft_wait_tier_at_least(int port, const char *name, long long at_least, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms, v = -1;
    for (;;) {
        long long x = ft_tier(port, name);
        if (x >= 0)
            v = x;
        if (v >= at_least || ts_now_ms() >= deadline)
            return v;
        ft_pause_ms(20);
    }
}

bool ft_wait_tier_eq(int port, const char *name, long long value, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        if (ft_tier(port, name) == value)
            return true;
        if (ts_now_ms() >= deadline)
            return false;
        ft_pause_ms(20);
    }
}

bool ft_wait_degraded(int port, bool want, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        if (ft_degraded(port) == (int)want)
            return true;
        if (ts_now_ms() >= deadline)
            return false;
        ft_pause_ms(20);
    }
}

bool ft_wait_writer_idle(int port, int timeout_ms)
{
    long long deadline = ts_now_ms() + timeout_ms;
    struct ft_stats *st = malloc(sizeof(*st));
    if (st == NULL)
        return false;
    bool ok = false;
    for (;;) {
        char degraded[16];
        if (ft_stats_get(port, "stats tiers", st) == 0 &&
            ft_stats_num(st, "writer_queue_ops") == 0 &&
            (ft_stats_num(st, "writer_held_deletes") == 0 ||
             (ft_stats_str(st, "flash_degraded", degraded, sizeof(degraded)) &&
              strcmp(degraded, "no") == 0))) {
            ok = true;
            break;
        }
        if (ts_now_ms() >= deadline)
            break;
        ft_pause_ms(20);
    }
    free(st);
    return ok;
}

/* ---------------------------------------------------------------- values */

uint64_t ft_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t ft_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t ft_rand(struct ft_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    uint64_t x = r->s;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t ft_range(struct ft_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + ft_rand(r) % (hi - lo + 1);
}

size_t ft_seg_min(size_t nkey)
{
    return nkey + 1 + 20 + 1 + 7 + 1 + 8; /* header, then at least 8 payload bytes */
}

static void payload(char *out, size_t n, const char *key, size_t nkey, uint64_t version)
{
    uint64_t s = ft_mix(ft_hash(key, nkey) ^ ft_mix(version));
    size_t i = 0;
    while (i < n) {
        s = ft_mix(s);
        for (int b = 0; b < 8 && i < n; b++, i++)
            out[i] = (char)(s >> (8 * b));
    }
}

void ft_seg_make(char *out, const char *key, size_t nkey, uint64_t version, size_t len)
{
    char hdr[64];
    int h = snprintf(hdr, sizeof(hdr), "|%" PRIu64 "|%zu|", version, len);
    memcpy(out, key, nkey);
    memcpy(out + nkey, hdr, (size_t)h);
    size_t used = nkey + (size_t)h;
    payload(out + used, len - used, key, nkey, version);
}

/* Parse a decimal number ending at '|'; advances *p. */
static bool parse_num(const char **p, const char *end, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    if (q >= end || *q < '0' || *q > '9')
        return false;
    while (q < end && *q >= '0' && *q <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q >= end || *q != '|')
        return false;
    *p = q + 1;
    *out = v;
    return true;
}

int ft_value_check(const char *v, size_t n, const char *key, size_t nkey, uint64_t *first,
                   uint64_t *last, char *err, size_t errcap)
{
    size_t off = 0;
    int segs = 0;
    uint64_t prev = 0;
    char *expect = NULL;
    size_t expect_cap = 0;
    while (off < n) {
        const char *s = v + off, *end = v + n;
        if ((size_t)(end - s) < nkey + 1 || memcmp(s, key, nkey) != 0 || s[nkey] != '|') {
            snprintf(err, errcap,
                     "segment %d at offset %zu does not start with \"%.*s|\": \"%.*s\"", segs, off,
                     (int)nkey, key, (int)((size_t)(end - s) < 60 ? end - s : 60), s);
            free(expect);
            return -1;
        }
        const char *p = s + nkey + 1;
        uint64_t ver, len;
        if (!parse_num(&p, end, &ver) || !parse_num(&p, end, &len)) {
            snprintf(err, errcap, "segment %d at offset %zu: bad header", segs, off);
            free(expect);
            return -1;
        }
        if (len < (size_t)(p - s) || len > (size_t)(end - s)) {
            snprintf(err, errcap,
                     "segment %d at offset %zu (version %" PRIu64 "): length %" PRIu64
                     " does not fit the %zu bytes left",
                     segs, off, ver, len, (size_t)(end - s));
            free(expect);
            return -1;
        }
        if (expect_cap < len) {
            free(expect);
            expect_cap = len;
            expect = malloc(expect_cap);
            if (expect == NULL) {
                snprintf(err, errcap, "out of memory");
                return -1;
            }
        }
        ft_seg_make(expect, key, nkey, ver, len);
        if (memcmp(expect, s, len) != 0) {
            size_t i = 0;
            while (i < len && expect[i] == s[i])
                i++;
            snprintf(err, errcap,
                     "segment %d (version %" PRIu64 ", %" PRIu64
                     " bytes) differs from what was stored at byte %zu",
                     segs, ver, len, i);
            free(expect);
            return -1;
        }
        if (segs > 0 && ver <= prev) {
            snprintf(err, errcap, "segment %d has version %" PRIu64 " after version %" PRIu64, segs,
                     ver, prev);
            free(expect);
            return -1;
        }
        if (segs == 0)
            *first = ver;
        prev = ver;
        segs++;
        off += len;
    }
    free(expect);
    if (segs == 0) {
        snprintf(err, errcap, "empty value");
        return -1;
    }
    *last = prev;
    return segs;
}

size_t ft_model_key(uint64_t i, char *out)
{
    static const char *const prefix[] = {"plain:", "pct%/+&=?", "utf\xc3\xa9-", "t~._-"};
    return (size_t)sprintf(out, "%s#%" PRIu64, prefix[i % 4], i);
}

long long ft_model_index(const char *key, size_t n)
{
    size_t h = n;
    while (h > 0 && key[h - 1] != '#')
        h--;
    if (h == 0 || h == n || n - h > 18)
        return -1;
    long long v = 0;
    for (size_t i = h; i < n; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        v = v * 10 + (key[i] - '0');
    }
    return v;
}

void ft_model_bytes(uint64_t seed, char *out, size_t n)
{
    uint64_t x = ft_mix(seed);
    for (size_t k = 0; k < n; k++) {
        if (k % 8 == 0)
            x = ft_mix(x);
        out[k] = (char)(x >> (8 * (k % 8)));
    }
}
