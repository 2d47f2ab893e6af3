/*
 * log.c: see log.h. The level is a relaxed atomic so any thread may log
 * while another changes the verbosity (the `verbosity` command).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "tiercache";
static atomic_int log_level = TC_LOG_WARN;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void tc_log_init(const char *progname)
{
    log_progname = progname;
}

void tc_log_set_level(int level)
{
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int tc_log_get_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

void tc_log(enum tc_log_level level, const char *fmt, ...)
{
    if ((int)level > tc_log_get_level())
        return;

    char line[1024];
    int n = snprintf(line, sizeof(line), "%s: %s: ", log_progname, level_names[level]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

bool tc_log_due(_Atomic long long *last, int seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec + 1; /* never 0, the "not yet" value */
    long long prev = atomic_load_explicit(last, memory_order_relaxed);
    if (prev != 0 && now - prev < seconds)
        return false;
    return atomic_compare_exchange_strong(last, &prev, now); /* one thread wins */
}
