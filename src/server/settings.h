/*
 * settings.h: tiercached's options, declared once as a table (settings.c)
 * from which the command line is parsed, --help is printed and `stats
 * settings` is answered. Read-only after startup, except `verbosity`.
 */
#ifndef TC_SERVER_SETTINGS_H
#define TC_SERVER_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum flash_sync_mode { FLASH_SYNC_NONE = 0, FLASH_SYNC_INTERVAL = 1, FLASH_SYNC_ALWAYS = 2 };

struct server_settings {
    uint64_t port;
    const char *listen;
    const char *unix_socket;
    uint64_t memory_limit; /* bytes */
    uint64_t conn_limit;
    uint64_t threads;
    uint64_t item_size_max; /* bytes */
    uint64_t udp_port;
    bool enable_shutdown;
    int verbose;
    const char *data_dir;
    uint64_t flash_size;    /* bytes; 0 = RAM only */
    int flash_sync;         /* enum flash_sync_mode */
    uint64_t flash_min_ttl; /* seconds */
    double growth_factor;
    uint64_t chunk_min;
    uint64_t backlog;
    uint64_t reqs_per_event;
    const char *pid_file;
    uint64_t idle_timeout;      /* seconds without a command before a close; 0 = never */
    uint64_t max_conn_output;   /* bytes of unsent replies per connection; 0 = no cap */
    uint64_t max_multiget_keys; /* keys in one get/gets/gat/gats line; 0 = no limit */
    uint64_t slab_automove;     /* 1: slab pages move between classes; 0: never */
};

/* How long a connection at the output cap may go without the client taking
 * a byte before it is closed, when no idle timeout is set (see conn.c). */
#define SETTINGS_OUTPUT_STALL_DEFAULT 10

/* The output stall limit in seconds: the idle timeout if set, else the default. */
uint64_t settings_output_stall_secs(const struct server_settings *s);

/*
 * Parse argv into *s (defaults first). Returns 0 to run, 1 after printing
 * --help or --version (exit 0), -1 on bad usage (a one-line reason was
 * printed to stderr; exit 2).
 */
int settings_parse(struct server_settings *s, int argc, char **argv);

/* One "name value" pair of `stats settings`. */
typedef void (*settings_emit_fn)(void *arg, const char *name, const char *value);

/* Report every setting, memcached's names first (its `stats settings`). */
void settings_report(const struct server_settings *s, int verbosity, uint16_t bound_port,
                     settings_emit_fn emit, void *arg);

extern const char *const flash_sync_names[];

#endif
