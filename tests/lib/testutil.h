/*
 * testutil.h: helpers for integration tests: start tiercached or a real
 * memcached on a loopback port of their own, talk to them, stop them.
 *
 * Every wait is bounded (no sleep-and-hope): a helper that times out
 * returns an error, and the test fails with a message instead of hanging.
 */
#ifndef TC_TESTUTIL_H
#define TC_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tserver {
    pid_t pid;
    int port;
    char log_path[256]; /* the server's stderr */
    char data_dir[256]; /* tiercached's --data-dir, made up unless given; "" for memcached */
    bool own_data_dir;  /* made up here: removed by ts_stop() */
};

/*
 * Start tiercached (the binary of this build, TIERCACHED_BIN) with -p 0 and
 * the given extra arguments (NULL-terminated, may be NULL), wait until it
 * listens. Unless the arguments name a --data-dir, the server gets a fresh
 * one of its own under /tmp, removed by ts_stop(). Returns 0 or -1 (with a
 * reason on stderr).
 */
int ts_start_tiercached(struct tserver *s, const char *const *args);

/* Start /usr/bin/memcached (or $MEMCACHED_BIN) on a free port, wait until it answers. */
int ts_start_memcached(struct tserver *s, const char *const *args);

/* SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status as waitpid gives it.
 * Removes a data dir that ts_start_tiercached() made up. */
int ts_stop(struct tserver *s);

/* Start tiercached again with the same data dir and port (after a stop or a kill). */
int ts_restart_tiercached(struct tserver *s, const char *const *args);

/* rm -rf a directory (tests' own data dirs). */
void ts_remove_tree(const char *dir);

/* Send a signal and wait up to timeout_ms for the exit; returns the wait status or -1. */
int ts_signal_wait(struct tserver *s, int sig, int timeout_ms);

/* A blocking TCP connection to 127.0.0.1:port (5 s timeout), TCP_NODELAY; -1 on failure. */
int ts_connect(int port);

/* ts_connect with a receive buffer of rcvbuf bytes (0: the default) and,
 * if nonblock, O_NONBLOCK. */
int ts_connect_opts(int port, int rcvbuf, bool nonblock);

/* Write all bytes; 0 or -1. */
int ts_send_all(int fd, const void *buf, size_t n);

/*
 * Read until the data received ends with `terminator` (or, if terminator
 * is NULL, until EOF), at most cap bytes, waiting at most timeout_ms in all.
 * Returns the bytes read (NUL-terminated if room), or -1 on timeout/error.
 */
ssize_t ts_recv_until(int fd, char *buf, size_t cap, const char *terminator, int timeout_ms);

/*
 * One request/response exchange on a fresh connection: send, half-close,
 * read to EOF. Returns bytes read or -1.
 */
ssize_t ts_exchange(int port, const void *req, size_t n, char *out, size_t cap, int timeout_ms);

/* A request on an open connection, reply read until `terminator`. Returns length or -1. */
ssize_t ts_request(int fd, const char *req, char *out, size_t cap, const char *terminator);

/* The value of "STAT <name> " from a `stats` reply on a fresh connection, or -1. */
long long ts_stat(int port, const char *command, const char *name);

/* Milliseconds from a monotonic clock. */
long long ts_now_ms(void);

/* Whether the file at path contains `needle` (for log checks). */
bool ts_file_contains(const char *path, const char *needle);

#endif
