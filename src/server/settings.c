/*
 * settings.c: the option table of tiercached (see settings.h). memcached's
 * letters and meanings wherever memcached has the same option.
 */
#include "settings.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

const char *const flash_sync_names[] = {"none", "interval", "always", NULL};

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static void defaults(struct server_settings *s)
{
    *s = (struct server_settings){
        .port = 11211,
        .listen = "127.0.0.1",
        .memory_limit = 64 * MIB,
        .conn_limit = 1024,
        .threads = 4,
        .item_size_max = 1 * MIB,
        .data_dir = "./tiercache-data",
        .flash_size = 1 * GIB,
        .flash_sync = FLASH_SYNC_INTERVAL,
        .flash_min_ttl = 10,
        .growth_factor = 1.25,
        .chunk_min = 48,
        .backlog = 1024,
        .reqs_per_event = 20,
        .slab_automove = 1,
        .idle_timeout = 0,
        .max_conn_output = 64 * MIB,
        .max_multiget_keys = 100000,
    };
}

#define OPT(sn, ln, ty, an, hl, dst, ...)                                                          \
    (struct tc_option)                                                                             \
    {                                                                                              \
        .short_name = (sn), .long_name = (ln), .type = (ty), .arg_name = (an), .help = (hl),       \
        .dest = (dst), __VA_ARGS__                                                                 \
    }

static size_t build_table(struct server_settings *s, struct tc_option *t)
{
    size_t n = 0;
    t[n++] = OPT('p', "port", TC_OPT_UINT, "N",
                 "TCP port to listen on (0: pick a free one and print it)", &s->port, .min = 0,
                 .max = 65535, .default_text = "11211");
    t[n++] = OPT('l', "listen", TC_OPT_STRING, "ADDR",
                 "address to bind (memcached binds all; we bind loopback unless told)", &s->listen,
                 .default_text = "127.0.0.1");
    t[n++] = OPT('s', "unix-socket", TC_OPT_STRING, "PATH",
                 "listen on a unix socket instead of TCP", &s->unix_socket);
    t[n++] =
        OPT('m', "memory-limit", TC_OPT_SIZE, "MB",
            "RAM tier budget for items, in megabytes (or with a k/m/g suffix)", &s->memory_limit,
            .min = 1 * MIB, .max = 1ULL << 40, .unit = MIB, .default_text = "64");
    t[n++] = OPT('c', "conn-limit", TC_OPT_UINT, "N", "most simultaneous client connections",
                 &s->conn_limit, .min = 1, .max = 1000000, .default_text = "1024");
    t[n++] = OPT('t', "threads", TC_OPT_UINT, "N", "worker threads", &s->threads, .min = 1,
                 .max = 256, .default_text = "4");
    t[n++] = OPT('I', "max-item-size", TC_OPT_SIZE, "SIZE",
                 "largest value (k/m suffixes; at most half the memory limit)", &s->item_size_max,
                 .min = 1024, .max = 1 * GIB, .unit = 1, .default_text = "1m");
    t[n++] = OPT('U', "udp-port", TC_OPT_UINT, "N", "UDP port: only 0 (UDP is not supported)",
                 &s->udp_port, .min = 0, .max = 0, .default_text = "0");
    t[n++] = OPT('A', "enable-shutdown", TC_OPT_FLAG, NULL, "allow the shutdown command",
                 &s->enable_shutdown);
    t[n++] =
        OPT('v', "verbose", TC_OPT_COUNT, NULL, "more log output (-vv: per-command)", &s->verbose);
    t[n++] = OPT(0, "data-dir", TC_OPT_STRING, "DIR", "flash tier directory (created if missing)",
                 &s->data_dir, .default_text = "./tiercache-data");
    t[n++] = OPT(0, "flash-size", TC_OPT_SIZE, "SIZE",
                 "flash tier budget (k/m/g/t); 0 = RAM only, no data dir", &s->flash_size, .min = 0,
                 .max = 1ULL << 50, .unit = 1, .default_text = "1g");
    t[n++] = OPT(0, "flash-sync", TC_OPT_ENUM, "MODE", "when flash writes are synced to disk",
                 &s->flash_sync, .choices = flash_sync_names, .default_text = "interval");
    t[n++] = OPT(0, "flash-min-ttl", TC_OPT_UINT, "SEC",
                 "items expiring sooner than this are dropped, not demoted", &s->flash_min_ttl,
                 .min = 0, .max = 1ULL << 31, .default_text = "10");
    t[n++] = OPT('f', "growth-factor", TC_OPT_DOUBLE, "F", "slab class size factor",
                 &s->growth_factor, .dmin = 1.01, .dmax = 100.0, .default_text = "1.25");
    t[n++] = OPT('n', "chunk-min", TC_OPT_UINT, "BYTES",
                 "space for key and value in the smallest slab class", &s->chunk_min, .min = 8,
                 .max = 65536, .default_text = "48");
    t[n++] = OPT('b', "backlog", TC_OPT_UINT, "N", "listen backlog", &s->backlog, .min = 1,
                 .max = 1 << 20, .default_text = "1024");
    t[n++] = OPT('R', "reqs-per-event", TC_OPT_UINT, "N",
                 "commands served per connection before serving others", &s->reqs_per_event,
                 .min = 1, .max = 1 << 20, .default_text = "20");
    t[n++] =
        OPT('P', "pid-file", TC_OPT_STRING, "FILE", "write the process id to FILE", &s->pid_file);
    t[n++] = OPT(0, "slab-automove", TC_OPT_UINT, "N",
                 "move slab pages to the classes short of memory as item sizes shift (1), or "
                 "never (0); -o slab_automove=N",
                 &s->slab_automove, .min = 0, .max = 1, .default_text = "1");
    t[n++] = OPT(0, "idle-timeout", TC_OPT_UINT, "SEC",
                 "close a connection idle SEC seconds (no command; not mid-value or while "
                 "replies wait); 0 = never; -o idle_timeout=SEC",
                 &s->idle_timeout, .min = 0, .max = UINT32_MAX, .default_text = "0");
    t[n++] =
        OPT(0, "max-conn-output", TC_OPT_SIZE, "SIZE",
            "unsent replies per connection: gets pause there, and a client that takes "
            "none for the idle timeout (or 10 s) is closed; 0 = no cap",
            &s->max_conn_output, .min = 0, .max = 1ULL << 40, .unit = 1, .default_text = "64m");
    t[n++] = OPT(0, "max-multiget-keys", TC_OPT_UINT, "N",
                 "most keys in one get/gets/gat/gats (more: \"SERVER_ERROR out of memory "
                 "writing get response\"); 0 = no limit",
                 &s->max_multiget_keys, .min = 0, .max = UINT32_MAX, .default_text = "100000");
    return n;
}

int settings_parse(struct server_settings *s, int argc, char **argv)
{
    struct tc_option table[32];
    defaults(s);
    size_t n = build_table(s, table);
    char err[256] = "";
    switch (tc_options_parse(table, n, argc, argv, err, sizeof(err))) {
    case TC_OPTIONS_HELP:
        tc_options_help(table, n, "tiercached [OPTIONS]", stdout);
        return 1;
    case TC_OPTIONS_VERSION:
        printf("tiercached %s\n", TC_VERSION);
        return 1;
    case TC_OPTIONS_ERROR:
        fprintf(stderr, "tiercached: %s (see --help)\n", err);
        return -1;
    case TC_OPTIONS_OK:
        break;
    }
    if (s->flash_size != 0 && s->flash_size < 8 * MIB) {
        fprintf(stderr, "tiercached: --flash-size must be 0 (RAM only) or at least 8m\n");
        return -1;
    }
    if (s->item_size_max > s->memory_limit / 2) {
        fprintf(stderr,
                "tiercached: --max-item-size (-I) %llu is more than half of the memory "
                "limit (-m) %llu bytes\n",
                (unsigned long long)s->item_size_max, (unsigned long long)s->memory_limit);
        return -1;
    }
    return 0;
}

uint64_t settings_output_stall_secs(const struct server_settings *s)
{
    return s->idle_timeout > 0 ? s->idle_timeout : SETTINGS_OUTPUT_STALL_DEFAULT;
}

void settings_report(const struct server_settings *s, int verbosity, uint16_t bound_port,
                     settings_emit_fn emit, void *arg)
{
    char v[64];
#define EMITU(name, val)                                                                           \
    do {                                                                                           \
        snprintf(v, sizeof(v), "%llu", (unsigned long long)(val));                                 \
        emit(arg, name, v);                                                                        \
    } while (0)
    EMITU("maxbytes", s->memory_limit);
    EMITU("maxconns", s->conn_limit);
    EMITU("tcpport", s->unix_socket != NULL ? 0 : bound_port);
    EMITU("udpport", s->udp_port);
    emit(arg, "inter", s->unix_socket != NULL ? "NULL" : s->listen);
    EMITU("verbosity", (unsigned)verbosity);
    emit(arg, "evictions", "on");
    emit(arg, "domain_socket", s->unix_socket != NULL ? s->unix_socket : "NULL");
    emit(arg, "shutdown_command", s->enable_shutdown ? "yes" : "no");
    snprintf(v, sizeof(v), "%.2f", s->growth_factor);
    emit(arg, "growth_factor", v);
    EMITU("chunk_size", s->chunk_min);
    EMITU("num_threads", s->threads);
    EMITU("reqs_per_event", s->reqs_per_event);
    emit(arg, "cas_enabled", "yes");
    EMITU("tcp_backlog", s->backlog);
    emit(arg, "binding_protocol", "ascii");
    emit(arg, "auth_enabled_sasl", "no");
    emit(arg, "auth_enabled_ascii", "no");
    EMITU("item_size_max", s->item_size_max);
    emit(arg, "maxconns_fast", "yes");
    emit(arg, "slab_reassign", "yes");
    EMITU("slab_automove", s->slab_automove);
    EMITU("slab_chunk_max", 512 * 1024);
    emit(arg, "lru_crawler", "yes");
    emit(arg, "flush_enabled", "yes");
    emit(arg, "dump_enabled", "yes");
    emit(arg, "hash_algorithm", "xxh3");
    emit(arg, "lru_maintainer_thread", "yes");
    emit(arg, "lru_segmented", "yes");
    emit(arg, "hot_lru_pct", "20");
    emit(arg, "warm_lru_pct", "40");
    emit(arg, "temp_lru", "no");
    EMITU("idle_timeout", s->idle_timeout);
    emit(arg, "data_dir", s->flash_size > 0 ? s->data_dir : "NULL");
    EMITU("flash_size", s->flash_size);
    emit(arg, "flash_sync", flash_sync_names[s->flash_sync]);
    EMITU("flash_min_ttl", s->flash_min_ttl);
    EMITU("max_conn_output", s->max_conn_output);
    EMITU("max_multiget_keys", s->max_multiget_keys);
#undef EMITU
}
