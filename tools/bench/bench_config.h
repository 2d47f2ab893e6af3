/*
 * bench_config.h: tiercache-bench's command line, declared once as an
 * option table (src/common/options.h) from which argv is parsed and --help
 * is printed, then checked and turned into ready-to-use parts: the server
 * list, the key space and the value-size distribution.
 *
 * Parsed once by main() before any thread starts; read-only afterwards.
 */
#ifndef TC_BENCH_CONFIG_H
#define TC_BENCH_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "dist.h"
#include "keyspace.h"
#include "sizedist.h"

/* The largest value the bench writes (memcached's -I can go up to 1 GiB; 64 MiB is plenty). */
#define BENCH_MAX_VALUE (64u << 20)

struct bench_config {
    struct dist servers;  /* -s, in command-line order */
    int distribution;     /* enum dist_mode: which server owns a key */
    uint64_t threads;     /* -t */
    uint64_t connections; /* -c: per thread, to each server */
    uint64_t pipeline;    /* -P: operations in flight per connection */
    double duration;      /* -d: seconds of the measured phase */
    uint64_t requests;    /* -n: operations of the measured phase instead (0: use duration) */
    double warmup;        /* -w: seconds of warm-up before it (0: none) */
    bool fill;            /* --fill: set every key once first */
    uint64_t key_space;   /* -k */
    int key_pattern;      /* enum keyspace_pattern */
    double zipf_alpha;
    const char *key_prefix;
    const char *value_size_spec;
    struct sizedist sizes;
    const char *ratio_spec;
    double get_fraction; /* from -r GET:SET */
    uint64_t multiget;   /* keys per get */
    uint64_t ttl;        /* exptime of every set */
    int protocol;        /* enum mcproto_protocol: classic get/set or meta mg/ms */
    double rate;         /* -R: offered load, ops/s over all connections; 0: closed loop */
    uint64_t seed;
    bool json;
    bool quiet;
    struct keyspace keys; /* built from key_space, key_pattern, zipf_alpha, key_prefix */
};

/*
 * Parse argv into *c. Returns 0 to run; 1 after printing --help or
 * --version to stdout (exit 0); -1 on bad usage, after printing one line
 * naming the problem to stderr (exit 2).
 */
int bench_config_parse(struct bench_config *c, int argc, char **argv);

/* One line describing the workload ("100000 keys zipf(0.99), values 100, get:set 9:1 ..."). */
void bench_config_describe(const struct bench_config *c, char *buf, size_t len);

#endif
