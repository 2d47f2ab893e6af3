/*
 * report.h: what the bench measures per phase, and how it is shown: a
 * table for people, a progress line once a second on a terminal, and one
 * JSON object for scripts.
 *
 * Each worker thread counts into its own `struct bench_stats` (no sharing,
 * no atomics on the hot path) and publishes a few running totals in a
 * `struct bench_live` for the progress line. After a phase the main thread
 * merges the workers' stats and prints them. Everything here runs on the
 * main thread except report_publish() (workers).
 */
#ifndef TC_BENCH_REPORT_H
#define TC_BENCH_REPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"

struct bench_config;

/* One phase's measurements (of one thread, or merged). */
struct bench_stats {
    uint64_t ops;            /* completed operations (a multi-get is one) */
    uint64_t gets, sets;     /* completed operations by kind */
    uint64_t keys_requested; /* keys asked for by gets */
    uint64_t hits;           /* keys returned with the right bytes */
    uint64_t misses;         /* keys not returned */
    uint64_t wrong;          /* keys returned with bytes that fail verification */
    uint64_t errors;         /* error replies (SERVER_ERROR, NOT_STORED, ...) and timeouts */
    uint64_t bytes_out, bytes_in;
    uint64_t unsent;      /* open loop: operations due before the end but never sent */
    struct hist lat_all;  /* nanoseconds, every operation */
    struct hist lat_get;  /* gets only */
    struct hist lat_set;  /* sets only */
    struct hist send_lag; /* open loop: how late the client sent, after the scheduled time */
    double seconds;       /* wall time of the phase (merged: the phase's) */
    double cpu_seconds;   /* user + system CPU of the whole bench process */
    const char *name;     /* "fill", "warmup", "run" */
};

/* Running totals a worker publishes for the progress line (relaxed atomics). */
struct bench_live {
    _Atomic uint64_t ops, keys, hits, errors, wrong;
};

/* A plain copy of running totals (summed over workers). */
struct bench_counts {
    uint64_t ops, keys, hits, errors, wrong;
};

/* Empty stats (the histograms too). */
void report_stats_init(struct bench_stats *s, const char *name);

/* Add src's counts and histograms to dst (seconds and cpu are left alone). */
void report_stats_merge(struct bench_stats *dst, const struct bench_stats *src);

/* Copy a worker's running totals to its live block (called by the worker). */
void report_publish(struct bench_live *live, const struct bench_stats *s);

/* Add a worker's published totals to *sum (called by the main thread while workers run). */
void report_live_add(struct bench_counts *sum, const struct bench_live *live);

/* Print the header: servers, load shape and workload. */
void report_header(FILE *out, const struct bench_config *c);

/* Print one phase as a few table rows. */
void report_phase(FILE *out, const struct bench_stats *s, double rate);

/*
 * Print the JSON object (one line) for the phases, the last being the main
 * one whose fields are also given at the top level.
 */
void report_json(FILE *out, const struct bench_config *c, const struct bench_stats *phases,
                 int nphases);

/*
 * Rewrite the progress line (for a terminal): the phase, its elapsed
 * seconds, rates over the last `interval` seconds from the totals now and
 * then (prev, which is set to now).
 */
void report_progress(FILE *out, const char *phase, double elapsed, const struct bench_counts *now,
                     struct bench_counts *prev, double interval);

#endif
