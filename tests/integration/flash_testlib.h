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
 *   - a guard process per server process: Check ends a failing or
 *     timed-out test with _exit or SIGKILL, which would leave tiercached
 *     running; the guard kills it (and removes its scratch data dir) when
 *     the test process goes away. A restarted server gets a new guard for
 *     its new pid;
 *   - servers on a data dir of the test's own, which outlives each server
 *     process (warm restarts, check_restart*.c): started on a new port
 *     (ft_dir_start) or again on the same one (ft_restart), stopped with
 *     the signal the test chooses (ft_signal).
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
    char dir[256];   /* the test's own data dir (ft_dir_init), or "" */
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

/*
 * A real memcached (the oracle) on a free port with `args` (NULL-terminated,
 * may be NULL), guarded like ft_start()'s tiercached. 0, or -1. Stop it
 * with ft_stop().
 */
int ft_start_memcached(struct ft_server *s, const char *const *args);

/*
 * Prepare s for servers on `dir`, a data dir of the test's own (under /tmp,
 * shorter than 256 bytes) that outlives each server process. Nothing runs
 * yet. Removes what an earlier run left at dir and at dir.corrupt-* (where
 * the server moves a damaged data dir aside); the caller may then fill dir
 * before the first ft_dir_start(). End with ft_dir_deinit().
 */
void ft_dir_init(struct ft_server *s, const char *dir);

/*
 * Start tiercached on s->dir with `args` (NULL-terminated, may be NULL;
 * --data-dir is added, -p 0 too: a new port every time, in one attempt),
 * and a guard that kills it and removes s->dir and its .corrupt-* siblings
 * if the test process goes away. Returns 0, or -1 (reason on stderr): s has
 * no dir, its previous process still runs (see ft_signal()), too many
 * arguments, or the server did not start.
 */
int ft_dir_start(struct ft_server *s, const char *const *args);

/*
 * Start the same server again, on the same port and data dir (its own or a
 * made-up one), with new `args` (NULL-terminated, may be NULL; neither -p
 * nor the data dir, which are added). Its previous process must have
 * exited: ft_signal() (ft_stop() would remove a made-up data dir).
 * Retries while the old process's port is still being released, then waits
 * until the new process's log says it listens on that port (the port
 * answering could be another process's). The new pid gets a guard. The
 * first request may come right after this returns. Returns 0, or -1 (the
 * reason and the log on stderr); a process that did start is guarded even
 * then, and ft_signal() or ft_dir_deinit() ends it.
 */
int ft_restart(struct ft_server *s, const char *const *args);

/*
 * Send `sig` and wait up to timeout_ms for the exit; SIGKILL if it did not
 * exit. Releases the guard; the data dir and the log stay. Returns the wait
 * status, or -1 if the server had to be killed or was not running.
 */
int ft_signal(struct ft_server *s, int sig, int timeout_ms);

/*
 * End what ft_dir_init() began: SIGKILL the server if it still runs,
 * release the guard, remove s->dir and its .corrupt-* siblings. The log
 * stays (ft_log_retire()).
 */
void ft_dir_deinit(struct ft_server *s);

/*
 * The log at `path` of a server that has exited: if it holds no sanitizer
 * report (ASan's "Sanitizer", UBSan's "runtime error"), remove it, set path
 * to "" and return true; otherwise keep it and return false. An empty path
 * returns true.
 */
bool ft_log_retire(char *path);

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

/*
 * The dump tests' model keys and values. Key i ("plain:#i", "pct%/+&=?#i",
 * "utf\xc3\xa9-#i", "t~._-#i": three in four need URL encoding in a
 * metadump line) into out; returns its length. ft_model_index gives back i
 * from such a key (the digits after its last '#'), or -1.
 */
size_t ft_model_key(uint64_t i, char *out);
long long ft_model_index(const char *key, size_t n);

/* n pseudo-random bytes from `seed` (\r\n, NUL and "END" may all occur). */
void ft_model_bytes(uint64_t seed, char *out, size_t n);

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
