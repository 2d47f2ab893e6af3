/*
 * server.h: the running server: the listener on the main thread, the worker
 * threads with their event loops, and the counters they keep.
 *
 * Threads: main (options, signals, accept, hand-off), one thread per worker
 * (its connections, start to finish), and the engine's own threads. A
 * connection lives on one worker for its whole life; nothing of it is
 * touched by another thread, except through the worker's hand-off queue.
 */
#ifndef TC_SERVER_SERVER_H
#define TC_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <tiercache/engine.h>

#include "settings.h"

struct conn;

/* Single-writer counters of one worker (relaxed atomics, see storage). */
typedef _Atomic uint64_t sctr_t;
#define SCTR_ADD(ctr, n)                                                                           \
    atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (n),        \
                          memory_order_relaxed)
#define SCTR_INC(ctr) SCTR_ADD(ctr, 1)
#define SCTR_GET(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)

struct worker_stats {
    sctr_t bytes_read, bytes_written, conn_yields, cmd_meta;
    sctr_t idle_kicks;         /* closed by --idle-timeout */
    sctr_t conn_output_closes; /* closed at --max-conn-output, not reading */
    sctr_t get_too_many_keys;  /* gets refused by --max-multiget-keys */
    sctr_t read_buf_count;     /* a gauge: buffers allocated now */
};

/* The workers' counters summed (stats.c), and their sums at the last
 * `stats reset`, which reads subtract (counters only grow, as the engine's). */
struct worker_totals {
    uint64_t bytes_read, bytes_written, conn_yields, cmd_meta;
    uint64_t idle_kicks, conn_output_closes, get_too_many_keys;
};

struct worker {
    struct server *srv;
    unsigned id;
    pthread_t thread;
    bool running; /* the thread was started and not yet joined */
    struct event_base *base;
    int notify_fd; /* eventfd: new connections or stop */
    struct event *notify_ev;
    struct event *tick_ev; /* once a second: idle and output limits (conn_check_timeouts) */
    pthread_mutex_t queue_lock;
    struct handoff *queue_head, *queue_tail;
    bool stopping;
    struct cache_worker *cw;
    struct worker_stats st;
    struct conn *conns; /* this worker's connections */
    char **rbuf_cache;  /* idle read buffers, reused between connections */
    unsigned rbuf_cached;
};

struct server {
    struct server_settings *set;
    struct cache *cache;
    struct event_base *base;
    int listen_fd;
    uint16_t port; /* the bound TCP port */
    struct event *listen_ev;
    struct event *resume_ev;
    struct event *sig_ev[3];
    struct worker *workers;
    unsigned nworkers;
    unsigned next_worker;
    cache_time_t started;

    _Atomic uint64_t curr_conns, total_conns, rejected_conns, listen_disabled_num;
    _Atomic uint64_t base_total_conns, base_rejected_conns; /* at `stats reset` */
    _Atomic uint64_t base_listen_disabled;
    pthread_mutex_t base_lock; /* guards base_workers (stats reset vs. stats) */
    struct worker_totals base_workers;
    _Atomic int verbosity;
    _Atomic bool detail_enabled;
    struct prefix_stats *prefix; /* `stats detail` counters */
    _Atomic int exit_code;
};

/*
 * Set up the listener, the engine and the workers from settings. On
 * failure, logs why and returns nonzero (exit code 1 for runtime errors).
 */
int server_init(struct server *srv, struct server_settings *set);

/* Run until SIGTERM/SIGINT or the shutdown command; then stop everything. */
int server_run(struct server *srv);

/* Free what server_init() made. */
void server_deinit(struct server *srv);

/* From any thread: ask the main loop to stop (the shutdown command). */
void server_request_stop(struct server *srv);

#endif
