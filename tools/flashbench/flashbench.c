/*
 * flashbench.c: tiercache-flashbench's entry point: an in-process benchmark
 * of the engine with its flash tier (no network, engine.h only).
 *
 *   tiercache-flashbench MODE [options]
 *
 * MODE is one of demote, space, ram, read, restart, shutdown (see usage()
 * and fb_modes_*.c for what each measures and how). The options are one
 * table (tc_options), 0 meaning "the mode's default", which mode_defaults()
 * fills in. The run gets a fresh directory under --dir (default /tmp),
 * removed at exit unless --keep, also after Ctrl-C (the modes stop early
 * and report what they have).
 *
 * Exit status: 0 done; 1 the engine failed, a read returned a wrong value
 * or a miss where a hit was due, or the run was interrupted; 2 bad usage.
 */
#include "fb.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "options.h"

#define OPT(sn, ln, ty, an, hl, dst, ...)                                                          \
    (struct tc_option)                                                                             \
    {                                                                                              \
        .short_name = (sn), .long_name = (ln), .type = (ty), .arg_name = (an), .help = (hl),       \
        .dest = (dst), __VA_ARGS__                                                                 \
    }

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

atomic_bool fb_interrupted;

static const char *const sync_names[] = {"none", "interval", "always", NULL};

struct mode {
    const char *name;
    int (*run)(struct fb_config *cfg);
    uint64_t ram, items, value_size; /* defaults; 0: not used by the mode */
    const char *what;
};

static const struct mode modes[] = {
    {"demote", fb_mode_demote, 16 * MIB, 0, 100,
     "sustained demotion rate: T threads store distinct keys for --seconds into a full RAM tier"},
    {"space", fb_mode_space, 32 * MIB, 0, 0,
     "flash bytes (in use, on disk) per live byte (key + value) for 100 B, 1 KB, 4 KB values"},
    {"ram", fb_mode_ram, 64 * MIB, 4000000, 100,
     "RAM per flash-resident item: filter bytes, tombstones, RSS growth once RAM is full"},
    {"read", fb_mode_read, 64 * MIB, 4000000, 100,
     "get throughput: RAM-resident keys vs flash-resident keys (page cache warm)"},
    {"restart", fb_mode_restart, 64 * MIB, 1000000, 100,
     "time to the first hit after a clean and an unclean stop, with --items on flash"},
    {"shutdown", fb_mode_shutdown, 1024 * MIB, 0, 1024,
     "time of cache_persist (graceful stop) with a full RAM tier of dirty items"},
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static size_t build_table(struct fb_config *c, struct tc_option *t)
{
    size_t n = 0;
    t[n++] = OPT(0, "dir", TC_OPT_STRING, "DIR",
                 "the run's fresh directory (removed at exit) is made in DIR", &c->parent,
                 .default_text = "/tmp");
    t[n++] =
        OPT('m', "ram", TC_OPT_SIZE, "SIZE", "RAM tier budget (-m); a number is megabytes", &c->ram,
            .min = 2 * MIB, .max = 1ULL << 40, .unit = MIB, .default_text = "per mode");
    t[n++] = OPT(0, "flash-size", TC_OPT_SIZE, "SIZE",
                 "flash tier budget (k/m/g/t); a number is megabytes", &c->flash_size,
                 .min = 8 * MIB, .max = 1ULL << 44, .unit = MIB, .default_text = "4g");
    t[n++] = OPT(0, "flash-sync", TC_OPT_ENUM, "MODE", "when flash writes are synced", &c->sync,
                 .choices = sync_names, .default_text = "interval");
    t[n++] = OPT('t', "threads", TC_OPT_UINT, "N", "load threads (stores or gets)", &c->threads,
                 .min = 1, .max = 256, .default_text = "2");
    t[n++] = OPT('d', "seconds", TC_OPT_DOUBLE, "SECONDS", "length of each measured phase",
                 &c->seconds, .dmin = 0.1, .dmax = 1e6, .default_text = "10");
    t[n++] = OPT('w', "warmup", TC_OPT_DOUBLE, "SECONDS",
                 "demote: keep storing this long after RAM is full before measuring", &c->warmup,
                 .dmin = 0.0, .dmax = 1e6, .default_text = "1");
    t[n++] = OPT('n', "items", TC_OPT_UINT, "N",
                 "items to fill (ram: flash items added; space: per size, overrides --live)",
                 &c->items, .min = 1, .max = FB_SIDE_BASE - 1, .default_text = "per mode");
    t[n++] =
        OPT(0, "value-size", TC_OPT_SIZE, "SIZE", "value bytes (space: one more size to measure)",
            &c->value_size, .min = 1, .max = 1000000, .unit = 1, .default_text = "per mode");
    t[n++] = OPT(0, "live", TC_OPT_SIZE, "SIZE",
                 "space: live bytes (key + value) to fill per value size; a number is MB", &c->live,
                 .min = 1 * MIB, .max = 1ULL << 42, .unit = MIB, .default_text = "400m");
    t[n++] = OPT(0, "cold", TC_OPT_FLAG, NULL,
                 "restart: drop the data dir's page cache (fadvise) before each reopen", &c->cold);
    t[n++] = OPT(0, "json", TC_OPT_FLAG, NULL, "also print the figures as one JSON line at the end",
                 &c->json);
    t[n++] = OPT(0, "keep", TC_OPT_FLAG, NULL, "keep the run's directory", &c->keep);
    t[n++] = OPT('v', "verbose", TC_OPT_COUNT, NULL, "engine log messages (-v: info)", &c->verbose);
    return n;
}

static void usage(FILE *out, const struct tc_option *t, size_t n)
{
    tc_options_help(t, n, "tiercache-flashbench MODE [options]", out);
    fprintf(out, "\nModes:\n");
    for (size_t i = 0; i < NMODES; i++)
        fprintf(out, "  %-9s %s\n", modes[i].name, modes[i].what);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&fb_interrupted, true);
}

int main(int argc, char **argv)
{
    tc_log_init("tiercache-flashbench");
    struct fb_config cfg = {.threads = 2,
                            .seconds = 10.0,
                            .warmup = 1.0,
                            .flash_size = 4 * GIB,
                            .live = 400 * MIB,
                            .sync = CACHE_FLASH_SYNC_INTERVAL};
    struct tc_option table[24];
    size_t ntable = build_table(&cfg, table);

    const struct mode *m = NULL;
    if (argc >= 2) {
        for (size_t i = 0; i < NMODES; i++) {
            if (strcmp(argv[1], modes[i].name) == 0)
                m = &modes[i];
        }
    }
    if (m == NULL) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout, table, ntable);
            return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
            printf("tiercache-flashbench %s\n", TC_VERSION);
            return 0;
        }
        fprintf(stderr, "tiercache-flashbench: %s%s\n\n",
                argc >= 2 ? "unknown mode: " : "a mode is needed", argc >= 2 ? argv[1] : "");
        usage(stderr, table, ntable);
        return 2;
    }
    char err[256];
    switch (tc_options_parse(table, ntable, argc - 1, argv + 1, err, sizeof(err))) {
    case TC_OPTIONS_OK:
        break;
    case TC_OPTIONS_HELP:
        usage(stdout, table, ntable);
        return 0;
    case TC_OPTIONS_VERSION:
        printf("tiercache-flashbench %s\n", TC_VERSION);
        return 0;
    case TC_OPTIONS_ERROR:
        fprintf(stderr, "tiercache-flashbench: %s\n", err);
        return 2;
    }
    cfg.mode = m->name;
    if (cfg.ram == 0)
        cfg.ram = m->ram;
    if (cfg.items == 0)
        cfg.items = m->items;
    if (cfg.value_size == 0)
        cfg.value_size = m->value_size;
    tc_log_set_level(cfg.verbose > 0 ? TC_LOG_INFO : TC_LOG_WARN);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (fb_dir_setup(&cfg) != 0)
        return 1;
    int rc = m->run(&cfg);
    if (!cfg.keep)
        fb_dir_remove(cfg.run_dir);
    else
        fprintf(stderr, "tiercache-flashbench: kept %s\n", cfg.run_dir);
    return atomic_load(&fb_interrupted) ? 1 : rc;
}
