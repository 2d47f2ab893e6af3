/*
 * log.h: one-line log messages on stderr, with a process-wide level.
 *
 * Levels follow memcached's -v/-vv: errors and warnings always, info with
 * -v, debug (per-connection events) with -vv. Messages are one line each,
 * prefixed with the program name given to tc_log_init(). Thread-safe: each
 * message is written with a single write(2).
 */
#ifndef TC_LOG_H
#define TC_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

enum tc_log_level {
    TC_LOG_ERROR = 0,
    TC_LOG_WARN = 1,
    TC_LOG_INFO = 2,
    TC_LOG_DEBUG = 3,
};

/* Set the program name used as prefix (kept by pointer; pass a literal). */
void tc_log_init(const char *progname);

/* Messages above `level` are dropped. Default TC_LOG_WARN. */
void tc_log_set_level(int level);
int tc_log_get_level(void);

/* Log a message (no trailing newline needed). */
void tc_log(enum tc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log only the first time this call site runs (for errors that may repeat). */
#define TC_LOG_ONCE(level, ...)                                                                    \
    do {                                                                                           \
        static atomic_flag tc_once_ = ATOMIC_FLAG_INIT;                                            \
        if (!atomic_flag_test_and_set(&tc_once_))                                                  \
            tc_log(level, __VA_ARGS__);                                                            \
    } while (0)

/*
 * True at most once every `seconds` for a given `last` (a per-site
 * timestamp, initially 0): for errors that repeat while a condition lasts,
 * so the log shows it continues without being flooded.
 */
bool tc_log_due(_Atomic long long *last, int seconds);

/* Log at most once every `seconds` from this call site. */
#define TC_LOG_EVERY(seconds, level, ...)                                                          \
    do {                                                                                           \
        static _Atomic long long tc_last_;                                                         \
        if (tc_log_due(&tc_last_, seconds))                                                        \
            tc_log(level, __VA_ARGS__);                                                            \
    } while (0)

#endif
