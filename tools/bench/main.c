/*
 * main.c: tiercache-bench's entry point. Parses the options, opens every
 * worker's connections, runs the phases one after another (fill with
 * --fill, warmup with -w, then the measured run), each on all workers at
 * once, shows a progress line once a second on a terminal, and prints each
 * phase's figures and, with --json, one JSON line at the very end.
 *
 * Exit codes (SPEC §1): 0 done; 1 a runtime failure (cannot connect, a
 * server failed mid-run, a wrong value was returned, or Ctrl-C); 2 bad
 * usage. The main thread only starts, watches and joins the workers.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_config.h"
#include "keyspace.h"
#include "report.h"
#include "verify.h"
#include "worker.h"

#define WATCH_STEP_NS 50000000ULL /* how often the main thread looks at the workers */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* User + system CPU seconds of this process (all threads). */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct run {
    struct bench_config *c; /* the keys' sequential counter is updated by the workers */
    struct worker **workers;
    unsigned nworkers;
    bool progress; /* a live line on stderr */
};

/* Wait for every worker to finish the phase, showing progress meanwhile. */
static void watch(const struct run *r, struct bench_phase *ph)
{
    struct bench_counts prev = {0};
    uint64_t next_tick = ph->start_ns + 1000000000ULL, last_tick = ph->start_ns;
    for (;;) {
        unsigned finished = 0;
        for (unsigned i = 0; i < r->nworkers; i++)
            finished += worker_finished(r->workers[i]);
        if (finished == r->nworkers)
            break;
        if (interrupted)
            atomic_store(&ph->stop, true);
        struct timespec step = {0, (long)WATCH_STEP_NS};
        nanosleep(&step, NULL);
        uint64_t now = now_ns();
        if (r->progress && now >= next_tick) {
            struct bench_counts sum = {0};
            for (unsigned i = 0; i < r->nworkers; i++)
                report_live_add(&sum, worker_live(r->workers[i]));
            report_progress(stderr, ph->name, (double)(now - ph->start_ns) / 1e9, &sum, &prev,
                            (double)(now - last_tick) / 1e9);
            last_tick = now;
            next_tick += 1000000000ULL;
        }
    }
    if (r->progress)
        fprintf(stderr, "\r\033[K");
}

/*
 * Run one phase on every worker, for `seconds` (or until ph->max_ops),
 * merging the measurements into *out. Returns 0, or -1 after printing why
 * the phase failed.
 */
static int run_phase(const struct run *r, struct bench_phase *ph, double seconds,
                     struct bench_stats *out)
{
    report_stats_init(out, ph->name);
    double cpu0 = cpu_seconds();
    ph->start_ns = now_ns();
    ph->end_ns = seconds > 0 ? ph->start_ns + (uint64_t)(seconds * 1e9) : UINT64_MAX;
    unsigned started = 0;
    int rc = 0;
    for (; started < r->nworkers; started++) {
        if (worker_start(r->workers[started], ph) != TC_OK) {
            fprintf(stderr, "tiercache-bench: cannot start a thread\n");
            atomic_store(&ph->stop, true);
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        watch(r, ph);
    for (unsigned i = 0; i < started; i++) {
        if (worker_join(r->workers[i]) != TC_OK && rc == 0) {
            fprintf(stderr, "tiercache-bench: %s\n", worker_error(r->workers[i]));
            rc = -1;
        }
        report_stats_merge(out, worker_stats(r->workers[i]));
    }
    out->seconds = (double)(now_ns() - ph->start_ns) / 1e9;
    out->cpu_seconds = cpu_seconds() - cpu0;
    return rc;
}

/* Run the phases; returns the process exit status. */
static int run_all(const struct run *r, struct bench_stats *results)
{
    struct bench_config *c = r->c;
    struct keyspace fill_keys;
    struct bench_phase phases[3];
    double seconds[3];
    int n = 0;
    if (c->fill) {
        if (keyspace_init(&fill_keys, c->key_space, KEYSPACE_SEQUENTIAL, 0, c->key_prefix) != TC_OK)
            return 1; /* cannot happen: the same prefix passed bench_config_parse() */
        phases[n] =
            (struct bench_phase){.name = "fill", .max_ops = c->key_space, .keys = &fill_keys};
        seconds[n++] = 0;
    }
    if (c->warmup > 0) {
        phases[n] = (struct bench_phase){
            .name = "warmup", .get_fraction = c->get_fraction, .rate = c->rate, .keys = &c->keys};
        seconds[n++] = c->warmup;
    }
    phases[n] = (struct bench_phase){.name = "run",
                                     .max_ops = c->requests,
                                     .get_fraction = c->get_fraction,
                                     .rate = c->rate,
                                     .keys = &c->keys};
    seconds[n++] = c->requests > 0 ? 0 : c->duration;

    if (!c->quiet)
        report_header(stdout, c);
    int done = 0;
    for (; done < n; done++) {
        atomic_init(&phases[done].claimed, 0);
        atomic_init(&phases[done].stop, false);
        int rc = run_phase(r, &phases[done], seconds[done], &results[done]);
        if (!c->quiet) {
            report_phase(stdout, &results[done], phases[done].rate);
            fflush(stdout);
        }
        if (rc != 0)
            return 1;
        if (interrupted) {
            done++;
            break;
        }
    }
    if (c->json)
        report_json(stdout, c, results, done);
    uint64_t wrong = 0;
    for (int i = 0; i < done; i++)
        wrong += results[i].wrong;
    if (wrong > 0) {
        fprintf(stderr,
                "tiercache-bench: %llu wrong values: the server returned bytes that differ "
                "from what was stored\n",
                (unsigned long long)wrong);
        return 1;
    }
    if (interrupted) {
        fprintf(stderr, "tiercache-bench: interrupted\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_config config;
    int r = bench_config_parse(&config, argc, argv);
    if (r > 0)
        return 0;
    if (r < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);

    struct verify_pool *pool = NULL;
    struct bench_stats *results = calloc(3, sizeof(*results));
    struct worker **workers = calloc(config.threads, sizeof(*workers));
    if (results == NULL || workers == NULL || verify_create(&pool) != TC_OK) {
        fprintf(stderr, "tiercache-bench: out of memory\n");
        return 1;
    }
    int status = 0;
    for (unsigned i = 0; i < config.threads && status == 0; i++) {
        char err[256] = "";
        if (worker_create(&config, pool, i, (unsigned)config.threads, &workers[i], err,
                          sizeof(err)) != TC_OK) {
            fprintf(stderr, "tiercache-bench: %s\n", err);
            status = 1;
        }
    }
    if (status == 0) {
        struct sigaction sa = {.sa_handler = on_interrupt};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        struct run run = {.c = &config,
                          .workers = workers,
                          .nworkers = (unsigned)config.threads,
                          .progress = !config.quiet && isatty(2)};
        status = run_all(&run, results);
    }
    for (unsigned i = 0; i < config.threads; i++)
        worker_destroy(&workers[i]);
    free(workers);
    free(results);
    verify_destroy(&pool);
    return status;
}
