/*
 * worker.h: one client thread of the bench: an epoll loop over its own
 * connections that issues operations, parses replies, verifies values and
 * times every operation.
 *
 * A worker owns `connections` clients; a client is one connection to each
 * server (as one libmemcached instance would hold) and keeps up to
 * `pipeline` operations in flight. A multi-get is split by server and
 * completes when every server has answered its part.
 *
 * Load shapes:
 *   closed loop  a client sends its next operation as soon as one completes;
 *                latency is from send to the last reply byte
 *   open loop    (rate > 0) each client has a schedule of send times at
 *                rate / clients per second; an operation that cannot be
 *                sent on time (the pipeline is full) waits, and its latency
 *                still counts from the scheduled time, so a stalled server
 *                shows up in the percentiles instead of silently lowering
 *                the offered load (no coordinated omission)
 *
 * Threads: worker_create/start/join/destroy are called by the main thread;
 * the phase runs on the worker's own thread, which touches nothing shared
 * but the phase's atomics, the read-only config and pool, and its live
 * counters.
 */
#ifndef TC_BENCH_WORKER_H
#define TC_BENCH_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench_config.h"
#include "keyspace.h"
#include "report.h"
#include "tiercache/status.h"
#include "verify.h"

/* A server that leaves an operation unanswered this long has failed. */
#define WORKER_REPLY_TIMEOUT_NS (10ULL * 1000000000ULL)

/* One phase of the run, shared by all workers (set up by the main thread). */
struct bench_phase {
    const char *name;
    uint64_t start_ns;        /* CLOCK_MONOTONIC; every worker starts from it */
    uint64_t end_ns;          /* stop issuing at this time (UINT64_MAX: run max_ops) */
    uint64_t max_ops;         /* stop after this many operations in all (0: no limit) */
    double get_fraction;      /* probability that an operation is a get */
    double rate;              /* open loop: ops/s over every client; 0: closed loop */
    struct keyspace *keys;    /* which keys operations touch */
    _Atomic uint64_t claimed; /* operations issued so far, all workers */
    _Atomic bool stop;        /* stop issuing now (Ctrl-C, or another worker failed) */
};

struct worker;

/*
 * Create worker `index` of `nworkers` and open its connections (blocking,
 * at most 5 s each). Returns TC_OK with *out set, TC_IO_ERROR with a
 * one-line reason in err (a connection failed), or TC_NO_MEMORY.
 * config and pool must outlive the worker.
 */
tc_status_e worker_create(const struct bench_config *config, const struct verify_pool *pool,
                          unsigned index, unsigned nworkers, struct worker **out, char *err,
                          size_t errlen);

/* Close the connections and free the worker; *w becomes NULL. Accepts NULL. */
void worker_destroy(struct worker **w);

/* Start running `phase` on a new thread. TC_OK or TC_IO_ERROR (thread creation failed). */
tc_status_e worker_start(struct worker *w, struct bench_phase *phase);

/* Whether the phase's thread has finished (it may still need a join). */
bool worker_finished(const struct worker *w);

/*
 * Wait for the phase's thread. Returns TC_OK, or TC_IO_ERROR if a server
 * failed (connection lost, malformed reply, no reply for 10 s); then
 * worker_error() says which and how. The phase's measurements stay in
 * worker_stats() until the next worker_start().
 */
tc_status_e worker_join(struct worker *w);

/* The last phase's measurements (valid after worker_join). */
const struct bench_stats *worker_stats(const struct worker *w);

/* The running totals of the phase in progress (any thread may read them). */
const struct bench_live *worker_live(const struct worker *w);

/* Why the last phase failed ("" if it did not). */
const char *worker_error(const struct worker *w);

#endif
