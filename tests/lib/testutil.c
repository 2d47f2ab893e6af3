/*
 * testutil.c: see testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#ifndef TIERCACHED_BIN
#define TIERCACHED_BIN "tiercached"
#endif

long long ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool ts_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* fork/exec with stderr (and stdout) to a log file. */
static pid_t spawn(const char *bin, const char *const *argv, const char *log_path)
{
    /* Truncate the log before the fork: a stale log of an earlier process
     * with the same pid must never be read as this one's. */
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = fork();
    if (pid != 0) {
        if (fd >= 0)
            close(fd);
        return pid;
    }
    if (fd >= 0) {
        dup2(fd, 1); /* dup2 clears close-on-exec on the copies */
        dup2(fd, 2);
        close(fd);
    }
    execvp(bin, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
}

static int build_argv(const char **argv, size_t cap, const char *bin, const char *const *fixed,
                      const char *const *args)
{
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; fixed != NULL && fixed[i] != NULL && n < cap - 1; i++)
        argv[n++] = fixed[i];
    for (size_t i = 0; args != NULL && args[i] != NULL && n < cap - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return (int)n;
}

static void make_log_path(struct tserver *s, const char *what)
{
    static int seq;
    snprintf(s->log_path, sizeof(s->log_path), "/tmp/tc-test-%s-%d-%d.log", what, (int)getpid(),
             seq++);
}

/* Is the process still running? Reaps it if not. */
static bool alive(struct tserver *s)
{
    int st;
    return waitpid(s->pid, &st, WNOHANG) == 0;
}

static bool names_data_dir(const char *const *args)
{
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        if (strncmp(args[i], "--data-dir", 10) == 0)
            return true;
    }
    return false;
}

void ts_remove_tree(const char *dir)
{
    if (dir == NULL || dir[0] == '\0' || strncmp(dir, "/tmp/", 5) != 0)
        return; /* only our own scratch directories */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    int r = system(cmd);
    (void)r;
}

/* Start with a given port (0: any) and s->data_dir. */
static int start_tiercached(struct tserver *s, const char *const *args, int port)
{
    const char *bin = getenv("TIERCACHED_BIN") ? getenv("TIERCACHED_BIN") : TIERCACHED_BIN;
    char portbuf[16], dirbuf[300];
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    snprintf(dirbuf, sizeof(dirbuf), "--data-dir=%s", s->data_dir);
    const char *fixed[] = {"-p", portbuf, s->own_data_dir ? dirbuf : NULL, NULL};
    const char *argv[64];
    build_argv(argv, 64, bin, fixed, args);
    make_log_path(s, "tiercached");
    s->port = 0;
    s->pid = spawn(bin, argv, s->log_path);
    if (s->pid < 0)
        return -1;
    long long deadline = ts_now_ms() + 10000;
    while (ts_now_ms() < deadline) {
        FILE *f = fopen(s->log_path, "r");
        if (f != NULL) {
            char line[512];
            while (fgets(line, sizeof(line), f) != NULL) {
                char *p = strstr(line, "listening on ");
                char *colon = p != NULL ? strrchr(p, ':') : NULL;
                if (colon != NULL)
                    s->port = atoi(colon + 1);
            }
            fclose(f);
        }
        if (s->port > 0 && port == 0)
            return 0;
        if (port != 0) {
            int fd = ts_connect(port);
            if (fd >= 0) {
                close(fd);
                s->port = port;
                return 0;
            }
        }
        if (!alive(s)) {
            fprintf(stderr, "tiercached exited before listening; log %s\n", s->log_path);
            s->pid = -1;
            return -1;
        }
        pause_ms(10);
    }
    fprintf(stderr, "tiercached did not listen within 10 s; log %s\n", s->log_path);
    ts_stop(s);
    return -1;
}

int ts_start_tiercached(struct tserver *s, const char *const *args)
{
    static int seq;
    s->own_data_dir = !names_data_dir(args);
    if (s->own_data_dir)
        snprintf(s->data_dir, sizeof(s->data_dir), "/tmp/tc-test-%d-%d.data", (int)getpid(), seq++);
    else
        s->data_dir[0] = '\0';
    return start_tiercached(s, args, 0);
}

int ts_restart_tiercached(struct tserver *s, const char *const *args)
{
    int port = s->port;
    s->pid = -1;
    /* The old process may still be releasing the port: try it a few times. */
    for (int attempt = 0; attempt < 50; attempt++) {
        if (start_tiercached(s, args, port) == 0)
            return 0;
        pause_ms(100);
    }
    return -1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int ts_start_memcached(struct tserver *s, const char *const *args)
{
    const char *bin = getenv("MEMCACHED_BIN") ? getenv("MEMCACHED_BIN") : "/usr/bin/memcached";
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "memcached not found at %s (apt-get install memcached)\n", bin);
        return -1;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = free_port();
        char portbuf[16];
        snprintf(portbuf, sizeof(portbuf), "%d", port);
        const char *fixed[] = {"-p", portbuf, "-l", "127.0.0.1", "-U", "0", "-u", "root", NULL};
        const char *argv[64];
        build_argv(argv, 64, bin, fixed, args);
        make_log_path(s, "memcached");
        s->data_dir[0] = '\0';
        s->own_data_dir = false;
        s->port = port;
        s->pid = spawn(bin, argv, s->log_path);
        if (s->pid < 0)
            return -1;
        long long deadline = ts_now_ms() + 10000;
        while (ts_now_ms() < deadline && alive(s)) {
            int fd = ts_connect(port);
            if (fd >= 0) {
                close(fd);
                return 0;
            }
            pause_ms(10);
        }
        if (alive(s))
            ts_stop(s);
        /* The port was taken between our probe and memcached's bind: retry. */
    }
    fprintf(stderr, "memcached did not start; log %s\n", s->log_path);
    return -1;
}

int ts_signal_wait(struct tserver *s, int sig, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    long long deadline = ts_now_ms() + timeout_ms;
    int st;
    while (ts_now_ms() < deadline) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = -1;
            return st;
        }
        if (r < 0) {
            s->pid = -1;
            return -1;
        }
        pause_ms(5);
    }
    return -1;
}

int ts_stop(struct tserver *s)
{
    int st = -1;
    if (s->pid > 0) {
        st = ts_signal_wait(s, SIGTERM, 10000);
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            s->pid = -1;
            st = -1;
        }
    }
    if (s->own_data_dir) {
        ts_remove_tree(s->data_dir);
        s->own_data_dir = false;
    }
    return st;
}

int ts_connect(int port)
{
    return ts_connect_opts(port, 0, false);
}

int ts_connect_opts(int port, int rcvbuf, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0) /* before connect(): it sets the window offered */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nonblock)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int ts_send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static bool ends_with(const char *buf, size_t n, const char *t)
{
    size_t tn = strlen(t);
    return n >= tn && memcmp(buf + n - tn, t, tn) == 0;
}

ssize_t ts_recv_until(int fd, char *buf, size_t cap, const char *terminator, int timeout_ms)
{
    size_t got = 0;
    long long deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        if (terminator != NULL && ends_with(buf, got, terminator))
            break;
        long long left = deadline - ts_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (got == cap)
            return -1;
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && terminator == NULL && errno == ECONNRESET)
            break;
        if (n < 0)
            return -1;
        if (n == 0) {
            if (terminator == NULL)
                break;
            return -1;
        }
        got += (size_t)n;
    }
    if (got < cap)
        buf[got] = '\0';
    return (ssize_t)got;
}

ssize_t ts_exchange(int port, const void *req, size_t n, char *out, size_t cap, int timeout_ms)
{
    int fd = ts_connect(port);
    if (fd < 0)
        return -1;
    if (ts_send_all(fd, req, n) != 0) {
        close(fd);
        return -1;
    }
    shutdown(fd, SHUT_WR);
    ssize_t r = ts_recv_until(fd, out, cap, NULL, timeout_ms);
    close(fd);
    return r;
}

ssize_t ts_request(int fd, const char *req, char *out, size_t cap, const char *terminator)
{
    if (ts_send_all(fd, req, strlen(req)) != 0)
        return -1;
    return ts_recv_until(fd, out, cap, terminator, 10000);
}

long long ts_stat(int port, const char *command, const char *name)
{
    char req[128];
    snprintf(req, sizeof(req), "%s\r\n", command);
    static char out[1 << 16];
    int fd = ts_connect(port);
    if (fd < 0)
        return -1;
    ssize_t n = ts_request(fd, req, out, sizeof(out) - 1, "END\r\n");
    close(fd);
    if (n < 0)
        return -1;
    char needle[160];
    snprintf(needle, sizeof(needle), "STAT %s ", name);
    char *p = strstr(out, needle);
    return p != NULL ? atoll(p + strlen(needle)) : -1;
}
