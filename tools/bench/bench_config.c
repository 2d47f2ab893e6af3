/*
 * bench_config.c: see bench_config.h.
 *
 * `-s` may be given many times, but the shared option parser keeps one
 * value per option. So servers are taken out of argv first (split_servers),
 * in order, and the rest goes through tc_options_parse(). A spelling the
 * pre-pass does not recognise (an abbreviation such as --serv=, -o
 * server=, -qs) still reaches the table entry and is added last.
 */
#include "bench_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcproto.h"
#include "options.h"

#define OPT(sn, ln, ty, an, hl, dst, ...)                                                          \
    (struct tc_option)                                                                             \
    {                                                                                              \
        .short_name = (sn), .long_name = (ln), .type = (ty), .arg_name = (an), .help = (hl),       \
        .dest = (dst), __VA_ARGS__                                                                 \
    }

#define TABLE_MAX 32

static void defaults(struct bench_config *c)
{
    memset(c, 0, sizeof(*c));
    dist_init(&c->servers, DIST_KETAMA);
    c->distribution = DIST_KETAMA;
    c->threads = 1;
    c->connections = 4;
    c->pipeline = 1;
    c->duration = 10.0;
    c->key_space = 100000;
    c->key_pattern = KEYSPACE_ZIPF;
    c->zipf_alpha = 0.99;
    c->key_prefix = "tcb:";
    c->value_size_spec = "100";
    c->ratio_spec = "9:1";
    c->multiget = 1;
    c->seed = 1;
}

static size_t build_table(struct bench_config *c, const char **last_server, struct tc_option *t)
{
    size_t n = 0;
    t[n++] = OPT('s', "server", TC_OPT_STRING, "HOST:PORT",
                 "a server; repeat it (or use commas) for several; HOST:PORT=NAME gives its ketama "
                 "name",
                 last_server, .default_text = "127.0.0.1:11211");
    t[n++] = OPT(0, "distribution", TC_OPT_ENUM, "D",
                 "which server owns a key: ketama (as libmemcached's weighted ketama and "
                 "twemproxy's ketama with hash md5) or modula (libmemcached's default)",
                 &c->distribution, .choices = dist_mode_names, .default_text = "ketama");
    t[n++] = OPT('t', "threads", TC_OPT_UINT, "N", "client threads, each with its own event loop",
                 &c->threads, .min = 1, .max = 256, .default_text = "1");
    t[n++] = OPT('c', "connections", TC_OPT_UINT, "N", "connections per thread to each server",
                 &c->connections, .min = 1, .max = 10000, .default_text = "4");
    t[n++] = OPT('P', "pipeline", TC_OPT_UINT, "N", "operations in flight per connection",
                 &c->pipeline, .min = 1, .max = 1024, .default_text = "1");
    t[n++] = OPT('d', "duration", TC_OPT_DOUBLE, "SECONDS", "length of the measured phase",
                 &c->duration, .dmin = 0.1, .dmax = 1e6, .default_text = "10");
    t[n++] = OPT('n', "requests", TC_OPT_UINT, "N",
                 "run exactly N operations instead of --duration (0: use --duration)", &c->requests,
                 .min = 0, .max = 1ULL << 50, .default_text = "0");
    t[n++] = OPT('w', "warmup", TC_OPT_DOUBLE, "SECONDS",
                 "run the workload this long first, reported as its own phase", &c->warmup,
                 .dmin = 0.0, .dmax = 1e6, .default_text = "0");
    t[n++] = OPT(0, "fill", TC_OPT_FLAG, NULL,
                 "first set every key once (sequentially, as fast as possible)", &c->fill);
    t[n++] = OPT('k', "key-space", TC_OPT_UINT, "N", "number of distinct keys", &c->key_space,
                 .min = 1, .max = 1ULL << 48, .default_text = "100000");
    t[n++] = OPT(0, "key-pattern", TC_OPT_ENUM, "P", "key popularity", &c->key_pattern,
                 .choices = keyspace_pattern_names, .default_text = "zipf");
    t[n++] = OPT(0, "zipf-alpha", TC_OPT_DOUBLE, "A", "Zipf exponent: higher is more skewed",
                 &c->zipf_alpha, .dmin = 0.01, .dmax = 10.0, .default_text = "0.99");
    t[n++] = OPT(0, "key-prefix", TC_OPT_STRING, "TEXT", "keys are TEXT followed by a number",
                 &c->key_prefix, .default_text = "tcb:");
    t[n++] = OPT(0, "value-size", TC_OPT_STRING, "SPEC",
                 "bytes per value: N, LO-HI (uniform) or SIZE:WEIGHT,... (e.g. 100:90,10k:10)",
                 &c->value_size_spec, .default_text = "100");
    t[n++] = OPT('r', "ratio", TC_OPT_STRING, "GET:SET", "mix of gets and sets", &c->ratio_spec,
                 .default_text = "9:1");
    t[n++] = OPT(0, "multiget", TC_OPT_UINT, "N", "keys per get", &c->multiget, .min = 1,
                 .max = 100, .default_text = "1");
    t[n++] = OPT(0, "ttl", TC_OPT_UINT, "SECONDS", "expiry time of stored items (0: never)",
                 &c->ttl, .min = 0, .max = 60ULL * 60 * 24 * 30, .default_text = "0");
    t[n++] = OPT(0, "protocol", TC_OPT_ENUM, "P",
                 "commands to send: get/set, or the meta commands mg/ms/mn", &c->protocol,
                 .choices = mcproto_protocol_names, .default_text = "classic");
    t[n++] = OPT('R', "rate", TC_OPT_DOUBLE, "OPS",
                 "open loop: offer OPS operations/s in all (0: closed loop)", &c->rate, .dmin = 0.0,
                 .dmax = 1e9, .default_text = "0");
    t[n++] = OPT(0, "seed", TC_OPT_UINT, "N", "random seed (equal seeds, equal key sequences)",
                 &c->seed, .min = 0, .max = UINT64_MAX, .default_text = "1");
    t[n++] = OPT(0, "json", TC_OPT_FLAG, NULL, "print one JSON object as the last line of stdout",
                 &c->json);
    t[n++] = OPT('q', "quiet", TC_OPT_FLAG, NULL, "no progress line and no table (JSON only)",
                 &c->quiet);
    return n;
}

/* The table entry for short option ch or long option name[0..len), or NULL. */
static const struct tc_option *find_opt(const struct tc_option *t, size_t n, char ch,
                                        const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (name == NULL && t[i].short_name == ch && ch != 0)
            return &t[i];
        if (name != NULL && t[i].long_name != NULL && strlen(t[i].long_name) == len &&
            memcmp(t[i].long_name, name, len) == 0)
            return &t[i];
    }
    return NULL;
}

static bool takes_arg(const struct tc_option *o)
{
    return o != NULL && o->type != TC_OPT_FLAG && o->type != TC_OPT_COUNT;
}

/*
 * Move every "-s X", "-sX", "--server=X", "--server X" out of argv into
 * servers, in order, and copy the other arguments to out_argv (argc + 1
 * slots). Arguments of other options are skipped over, never taken for -s.
 * Returns the new argc, or -1 with err set.
 */
static int split_servers(const struct tc_option *t, size_t nt, int argc, char **argv,
                         char **out_argv, struct dist *servers, char *err, size_t errlen)
{
    int n = 0;
    out_argv[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = NULL;
        bool is_server = false;
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                out_argv[n++] = argv[i++];
            break;
        }
        if (strncmp(a, "--", 2) == 0) {
            const char *eq = strchr(a, '=');
            size_t len = eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2);
            const struct tc_option *o = find_opt(t, nt, 0, a + 2, len);
            if (o != NULL && o->short_name == 's') {
                is_server = true;
                value = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            } else if (takes_arg(o) && eq == NULL && i + 1 < argc) {
                out_argv[n++] = argv[i++]; /* the option; its value is copied below */
            }
        } else if (a[0] == '-' && a[1] == 's') {
            is_server = true;
            value = a[2] != '\0' ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
        } else if (a[0] == '-' && a[1] != '\0' && a[1] != '-') {
            /* a cluster of short options: the first that takes a value ends it */
            for (size_t j = 1; a[j] != '\0'; j++) {
                if (takes_arg(find_opt(t, nt, a[j], NULL, 0))) {
                    if (a[j + 1] == '\0' && i + 1 < argc)
                        out_argv[n++] = argv[i++];
                    break;
                }
            }
        }
        if (!is_server) {
            out_argv[n++] = argv[i];
            continue;
        }
        if (value == NULL) {
            snprintf(err, errlen, "option --server needs a value");
            return -1;
        }
        if (dist_add(servers, value, err, errlen) != TC_OK)
            return -1;
    }
    out_argv[n] = NULL;
    return n;
}

/* "G:S" into the fraction of gets. */
static bool parse_ratio(const char *s, double *get_fraction)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return false;
    unsigned long long g = strtoull(s, &end, 10);
    if (*end != ':' || end[1] < '0' || end[1] > '9')
        return false;
    unsigned long long w = strtoull(end + 1, &end, 10);
    if (*end != '\0' || g + w == 0 || g > 1000000000 || w > 1000000000)
        return false;
    *get_fraction = (double)g / (double)(g + w);
    return true;
}

/* Checks across options, and building the parts. Returns false with err set. */
static bool finish(struct bench_config *c, char *err, size_t errlen)
{
    if (!parse_ratio(c->ratio_spec, &c->get_fraction)) {
        snprintf(err, errlen, "--ratio: '%s' is not GET:SET (e.g. 9:1, 1:0)", c->ratio_spec);
        return false;
    }
    if (sizedist_parse(&c->sizes, c->value_size_spec, BENCH_MAX_VALUE, err, errlen) != TC_OK)
        return false;
    if (keyspace_init(&c->keys, c->key_space, (enum keyspace_pattern)c->key_pattern, c->zipf_alpha,
                      c->key_prefix) != TC_OK) {
        snprintf(err, errlen,
                 "--key-prefix: '%s' must be at most %d bytes, no spaces or control characters",
                 c->key_prefix, KEYSPACE_MAX_KEY - 20);
        return false;
    }
    if (c->servers.n == 0 && dist_add(&c->servers, "127.0.0.1:11211", err, errlen) != TC_OK)
        return false;
    dist_set_mode(&c->servers, (enum dist_mode)c->distribution);
    if (c->threads * c->connections * c->servers.n > 100000) {
        snprintf(err, errlen, "--threads x --connections x servers is over 100000 connections");
        return false;
    }
    return true;
}

int bench_config_parse(struct bench_config *c, int argc, char **argv)
{
    struct tc_option table[TABLE_MAX];
    const char *last_server = NULL;
    char err[256] = "";
    defaults(c);
    size_t n = build_table(c, &last_server, table);

    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (args == NULL) {
        fprintf(stderr, "tiercache-bench: out of memory\n");
        return -1;
    }
    int nargs = split_servers(table, n, argc, argv, args, &c->servers, err, sizeof(err));
    enum tc_options_result r =
        nargs < 0 ? TC_OPTIONS_ERROR : tc_options_parse(table, n, nargs, args, err, sizeof(err));
    free(args);
    switch (r) {
    case TC_OPTIONS_HELP:
        tc_options_help(table, n, "tiercache-bench [OPTIONS]", stdout);
        printf("\nLoad generator for memcached-protocol servers (tiercached, memcached, ...).\n"
               "Every value is verifiable: a hit whose bytes do not match what was set is\n"
               "counted as a wrong value, not a hit. Phases: fill (--fill), warmup (-w),\n"
               "run. Exit status: 0 done, 1 a server failed (connection lost, malformed\n"
               "replies, no reply for 10 s) or returned wrong values, 2 bad usage.\n");
        return 1;
    case TC_OPTIONS_VERSION:
        printf("tiercache-bench %s\n", TC_VERSION);
        return 1;
    case TC_OPTIONS_ERROR:
        fprintf(stderr, "tiercache-bench: %s (see --help)\n", err);
        return -1;
    case TC_OPTIONS_OK:
        break;
    }
    if (last_server != NULL && dist_add(&c->servers, last_server, err, sizeof(err)) != TC_OK) {
        fprintf(stderr, "tiercache-bench: %s (see --help)\n", err);
        return -1;
    }
    if (!finish(c, err, sizeof(err))) {
        fprintf(stderr, "tiercache-bench: %s (see --help)\n", err);
        return -1;
    }
    return 0;
}

void bench_config_describe(const struct bench_config *c, char *buf, size_t len)
{
    char pattern[64];
    if (c->key_pattern == KEYSPACE_ZIPF)
        snprintf(pattern, sizeof(pattern), "zipf(%g)", c->zipf_alpha);
    else
        snprintf(pattern, sizeof(pattern), "%s", keyspace_pattern_names[c->key_pattern]);
    snprintf(buf, len,
             "%llu keys %s, values %s B (mean %.0f), get:set %s, multiget %llu, ttl %llu, "
             "seed %llu, protocol %s",
             (unsigned long long)c->key_space, pattern, c->value_size_spec, c->sizes.mean,
             c->ratio_spec, (unsigned long long)c->multiget, (unsigned long long)c->ttl,
             (unsigned long long)c->seed, mcproto_protocol_names[c->protocol]);
}
