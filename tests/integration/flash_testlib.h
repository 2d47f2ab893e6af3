/*
 * flash_testlib.h: shared helpers of the flash-tier integration tests
 * (check_flash_*.c), on top of tests/lib/testutil.h:
 *
 *   - a buffered client connection that reads lines and value blocks with a
 *     deadline, and parses retrieval replies structurally (a value may hold
 *     any bytes, "END\r\n" included);
 *   - `stats` snapshots that any thread may take (ts_stat() is not
 *     thread-safe and reads numbers only; flash_degraded is yes/no), and
 *     bounded polls on them;
 *   - self-describing values: a value is one or more segments
 *     "<key>|<version>|<length>|<payload>", the payload derived from key and
 *     version, so any reader can tell whose value it got, which version, and
 *     whether a single byte is wrong;
 *   - a guard process per server: Check ends a failing or timed-out test with
 *     _exit or SIGKILL, which would leave tiercached running; the guard kills
 *     it (and removes its scratch data dir) when the test process goes away.
 *
 * Every wait here is bounded; a helper that gives up says why in `err`.
 */
#ifndef TC_FLASH_TESTLIB_H
#define TC_FLASH_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "testutil.h"

/* ---------------------------------------------------------------- servers */

struct ft_server {
    struct tserver ts;
    pid_t guard_pid; /* the guard process, or -1 */
    int guard_fd;    /* write end of the guard's pipe */
};

/*
 * Start tiercached with `args` (NULL-terminated) and, if fault_spec is not
 * NULL, TIERCACHE_FLASH_FAULT=fault_spec in its environment (only its:
 * the variable is unset again right after the start). Starts a guard.
 * Returns 0 or -1 (reason on stderr).
 */
int ft_start(struct ft_server *s, const char *fault_spec, const char *const *args);

/*
 * Stop with SIGTERM (SIGKILL after 10 s), release the guard, remove the
 * scratch data dir. Returns the wait status (ts_stop()), -1 if it had to be
 * killed.
 */
int ft_stop(struct ft_server *s);

/* Whether a wait status says "exited with status 0". */
bool ft_exited_zero(int status);

/* A wait status from ft_stop() in words ("exit status 1", "signal 11",
 * "hung on SIGTERM, killed"), into out. Returns out. */
const char *ft_status_text(int status, char *out, size_t cap);

/* Whether the server process is still running (reaps it if not). */
bool ft_alive(struct ft_server *s);

/* Lines of the file at `path` that contain `needle` (0 if unreadable). */
int ft_count_lines(const char *path, const char *needle);

/* Print the server's log to stderr (for failure reports). */
void ft_dump_log(const struct ft_server *s, const char *why);

/* An environment knob: the integer value of `name`, or `dflt`. */
long ft_env_long(const char *name, long dflt);

/* Sleep a few milliseconds (between two polls of a bounded wait). */
void ft_pause_ms(int ms);

/* ---------------------------------------------------------------- connections */

struct ft_conn {
    int fd;
    char *buf;
    size_t cap, head, tail; /* unread bytes: buf[head, tail) */
    int timeout_ms;         /* per read call; 30 s unless changed */
    bool broken;            /* timed out, closed or out of step: replies can no longer be matched */
    char err[512];          /* why the last call failed */
};

/* Connect to 127.0.0.1:port. 0 or -1. */
int ft_open(struct ft_conn *c, int port);
void ft_close(struct ft_conn *c);

/* Send bytes / a formatted string. 0 or -1. */
int ft_send(struct ft_conn *c, const void *p, size_t n);
__attribute__((format(printf, 2, 3))) int ft_sendf(struct ft_conn *c, const char *fmt, ...);

/*
 * Read one line. *line points into the connection's buffer (valid until the
 * next read call), *n is its length without the "\r\n". 0 or -1 (timeout,
 * EOF, or a line longer than 64 KiB; see c->err).
 */
int ft_line(struct ft_conn *c, const char **line, size_t *n);

/* Read exactly n bytes followed by "\r\n" (a value block). 0 or -1. */
int ft_block(struct ft_conn *c, size_t n, const char **p);

/* Read one line and compare it with `want` (without "\r\n"). 0 or -1 (c->err). */
int ft_expect(struct ft_conn *c, const char *want);

/* One value of a retrieval reply; data points into the connection's buffer. */
struct ft_value {
    char key[256];
    size_t nkey;
    uint32_t flags;
    bool has_cas;
    uint64_t cas;
    const char *data;
    size_t n;
};

/*
 * Read the next piece of a get/gets/gat/gats reply: 1 and *v for a VALUE,
 * 0 for END, -1 for anything else (the line is quoted in c->err).
 */
int ft_next_value(struct ft_conn *c, struct ft_value *v);

/* ---------------------------------------------------------------- stats */

struct ft_stats {
    char text[32768];
    size_t n;
};

/* Run `command` (e.g. "stats tiers") on a connection of its own. 0 or -1. */
int ft_stats_get(int port, const char *command, struct ft_stats *st);

/* A numeric STAT value, or -1 if absent. */
long long ft_stats_num(const struct ft_stats *st, const char *name);

/* A STAT value as text into out (""), false if absent. */
bool ft_stats_str(const struct ft_stats *st, const char *name, char *out, size_t cap);

/* One `stats tiers` number (a fresh connection), -1 on failure. Thread-safe. */
long long ft_tier(int port, const char *name);

/* Whether `stats tiers` says flash_degraded yes (-1: no answer). */
int ft_degraded(int port);

/*
 * Poll `stats tiers` every 20 ms until `name` >= at_least, at most
 * timeout_ms. Returns the last value seen (so the caller can compare), or
 * -1 if the stats never answered.
 */
long long ft_wait_tier_at_least(int port, const char *name, long long at_least, int timeout_ms);

/* Poll until `name` == value. Returns true if reached. */
bool ft_wait_tier_eq(int port, const char *name, long long value, int timeout_ms);

/* Poll until flash_degraded is `want` (true: yes). Returns true if reached. */
bool ft_wait_degraded(int port, bool want, int timeout_ms);

/* Poll until the writer queue is empty and no delete is held back (held
 * deletes only exist while flash is degraded: a writer that is not degraded
 * counts as idle whatever writer_held_deletes says). */
bool ft_wait_writer_idle(int port, int timeout_ms);

/* ---------------------------------------------------------------- values */

/* A 64-bit hash of bytes (FNV-1a), and splitmix64, for derived data. */
uint64_t ft_hash(const void *p, size_t n);
uint64_t ft_mix(uint64_t x);

/* A fast per-thread random generator. */
struct ft_rng {
    uint64_t s;
};
uint64_t ft_rand(struct ft_rng *r);
/* Uniform in [lo, hi]. */
uint64_t ft_range(struct ft_rng *r, uint64_t lo, uint64_t hi);

/* The smallest segment for a key of nkey bytes (its header with a 20-digit
 * version and a 7-digit length). */
size_t ft_seg_min(size_t nkey);

/*
 * Write the segment of (key, version) of exactly `len` bytes (len >=
 * ft_seg_min(nkey)) at out. The payload is binary, derived from key and
 * version.
 */
void ft_seg_make(char *out, const char *key, size_t nkey, uint64_t version, size_t len);

/*
 * Check a value made of segments of `key`: every segment is intact and
 * names this key, versions strictly increase from segment to segment.
 * Returns the number of segments (>= 1) with the first and last versions,
 * or -1 with the reason in err.
 */
int ft_value_check(const char *v, size_t n, const char *key, size_t nkey, uint64_t *first,
                   uint64_t *last, char *err, size_t errcap);

#endif
