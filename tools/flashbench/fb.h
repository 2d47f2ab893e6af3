/*
 * fb.h: tiercache-flashbench's shared pieces: its settings, keys and
 * values, groups of load threads, engine and filesystem helpers, and the
 * report (a table on stdout and, with --json, one JSON line at the end).
 *
 * The benchmark runs the engine in process through include/tiercache/
 * engine.h only: no network, no server. Each mode (fb_modes_*.c) builds the
 * engine it needs in a fresh directory, drives it with load threads, reads
 * the engine's own counters (cache_stats_get, cache_tier_stats_get) and the
 * process's memory (/proc/self/status), and reports.
 *
 * Keys are FB_NKEY bytes, "fb:" and a 13-digit zero-padded index, so that a
 * key's bytes are known from its index and "live bytes" (key + value) of N
 * items is N * (FB_NKEY + value size). A value's first 8 bytes are its
 * key's index (little endian), so every read can be checked.
 */
#ifndef TC_FLASHBENCH_FB_H
#define TC_FLASHBENCH_FB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/engine.h>

#define FB_NKEY      16                /* "fb:" + 13 digits */
#define FB_KEY_SPACE 10000000000000ULL /* 10^13 distinct indexes */
#define FB_SIDE_BASE 1000000000000ULL  /* indexes of keys kept apart from the main range */
#define FB_MISS_BASE 9000000000000ULL  /* indexes never stored (probing misses) */
#define FB_BUSY_US   100               /* pause before retrying a TC_BUSY store */
#define FB_MB        (1024.0 * 1024.0)

/* ---------------------------------------------------------------------------
 * Settings (flashbench.c parses them; 0 means "the mode's default")
 * ------------------------------------------------------------------------- */

struct fb_config {
    const char *mode;
    const char *parent;  /* --dir: where the run's own directory is made */
    char run_dir[4096];  /* that directory, removed at exit unless --keep */
    uint64_t ram;        /* --ram, bytes */
    uint64_t flash_size; /* --flash-size, bytes */
    uint64_t threads;
    double seconds;
    double warmup;
    uint64_t items;
    uint64_t value_size;
    uint64_t live; /* space: live bytes per value size */
    int sync;      /* enum cache_flash_sync */
    bool json, keep, cold;
    int verbose;
};

/* Set by SIGINT/SIGTERM: every loop stops early, the run reports what it has. */
extern atomic_bool fb_interrupted;

/* The modes. Each returns the process exit status (0 ok, 1 failure). */
int fb_mode_demote(struct fb_config *cfg);
int fb_mode_space(struct fb_config *cfg);
int fb_mode_ram(struct fb_config *cfg);
int fb_mode_shutdown(struct fb_config *cfg);
int fb_mode_read(struct fb_config *cfg);
int fb_mode_restart(struct fb_config *cfg);

/* ---------------------------------------------------------------------------
 * Keys, values, clocks, memory (fb_util.c)
 * ------------------------------------------------------------------------- */

/* Write key `idx` (< FB_KEY_SPACE) into buf (FB_NKEY bytes, no NUL). */
void fb_key(char *buf, uint64_t idx);

/* Fill a value of `n` bytes for key `idx`: its index, then a fixed pattern. */
void fb_value(char *dst, uint32_t n, uint64_t idx);

/* Overwrite only the index part of a value made by fb_value() (for reuse). */
void fb_value_stamp(char *dst, uint32_t n, uint64_t idx);

/* True if a value read back is the one fb_value() made for `idx`. */
bool fb_value_ok(const char *v, uint32_t n, uint32_t want_n, uint64_t idx);

uint64_t fb_now_ns(void);
double fb_secs(uint64_t from_ns, uint64_t to_ns);
void fb_sleep_ms(long ms);

/* This process's CPU time (user + system, all threads), in seconds. */
double fb_cpu_seconds(void);

/* From /proc/self/status, in bytes; 0 where unavailable. */
struct fb_rss {
    uint64_t vm_rss, rss_anon, rss_file;
};
void fb_rss_get(struct fb_rss *out);

/* ---------------------------------------------------------------------------
 * Directories and engines (fb_util.c)
 * ------------------------------------------------------------------------- */

/* Make cfg->run_dir: a fresh directory under cfg->parent (or /tmp). */
int fb_dir_setup(struct fb_config *cfg);

/* Remove a directory tree (as rm -rf). Accepts a missing path. */
void fb_dir_remove(const char *path);

/* "<run_dir>/<name>" into buf. */
void fb_path(const struct fb_config *cfg, const char *name, char *buf, size_t len);

/* Bytes allocated on disk under path (st_blocks, as du). */
uint64_t fb_dir_disk_bytes(const char *path);

/* Drop the page cache of every file under path (fdatasync + FADV_DONTNEED). */
void fb_dir_uncache(const char *path);

/*
 * Create an engine with RAM budget `ram` and a flash tier in `dir`, with
 * cfg's flash size and sync mode. Prints the reason and returns NULL on
 * failure. Destroy with cache_destroy().
 */
struct cache *fb_open(const struct fb_config *cfg, const char *dir, uint64_t ram);

/* Wait until the hash table has finished growing (at most 60 s). */
void fb_wait_hash(struct cache *c);

/* Wait for the flash writer; false (and a message) if it took over `secs`. */
bool fb_drain(struct cache *c, double secs);

/* ---------------------------------------------------------------------------
 * Load threads (fb_load.c)
 * ------------------------------------------------------------------------- */

enum fb_op {
    FB_STORE,    /* set keys lo, lo+1, ... until hi (0: no end) or stopped */
    FB_GET_SEQ,  /* get keys lo .. hi-1 once each */
    FB_GET_PERM, /* get every key of [lo, hi) once per pass, each pass in a new random
                    order, until stopped */
};

struct fb_job {
    enum fb_op op;
    uint64_t lo, hi; /* FB_STORE: hi 0 means no end */
    uint32_t vsize;  /* stored value size; for gets, the size expected back */
    uint64_t seed;   /* FB_GET_PERM: pass p reads in the order chosen by seed + p */
};

/* Counts of a group, summed over its threads. */
struct fb_counts {
    uint64_t ops;     /* completed stores or gets */
    uint64_t hits;    /* gets answered with the right value */
    uint64_t misses;  /* gets answered "not found" */
    uint64_t wrong;   /* gets answered with a value of the wrong size or index */
    uint64_t busy;    /* stores answered TC_BUSY, then retried after FB_BUSY_US */
    uint64_t busy_ns; /* time spent in those pauses */
    uint64_t errors;  /* stores failing otherwise (TC_NO_MEMORY, ...) */
    uint64_t cpu_ns;  /* CPU time of the load threads themselves */
    uint64_t next;    /* FB_STORE: one above the highest index stored */
};

struct fb_group;

/* Start `n` threads running `job` on `c`. NULL (with a message) on failure. */
struct fb_group *fb_group_start(struct cache *c, unsigned n, const struct fb_job *job);

/* The counts so far (threads publish every few hundred operations). */
void fb_group_counts(struct fb_group *g, struct fb_counts *out);

/* True once every thread has finished its job (or was stopped). */
bool fb_group_done(struct fb_group *g);

/* Ask the threads to stop after their current operation. */
void fb_group_stop(struct fb_group *g);

/* Stop, join, give the final counts (may be NULL) and free. Accepts NULL. */
void fb_group_join(struct fb_group **g, struct fb_counts *out);

/* Wait until the group is done, `secs` have passed (0: no limit), or Ctrl-C. */
void fb_group_wait(struct fb_group *g, double secs);

/* Has anything left RAM yet (an eviction, or a clean item dropped)? */
bool fb_ram_full(struct cache *c);

/*
 * Store until RAM is full: the first item has left RAM (an eviction, or a
 * clean item dropped). Runs `n` threads storing keys from `lo` on, stops
 * them, and returns the index above the last one stored (in *next) and the
 * counts. False if RAM did not fill within `limit_s` seconds.
 */
bool fb_fill_ram(struct cache *c, unsigned n, uint64_t lo, uint32_t vsize, double limit_s,
                 uint64_t *next, struct fb_counts *out);

/* Store keys [lo, hi) with n threads; false if any store failed or on Ctrl-C. */
bool fb_fill(struct cache *c, unsigned n, uint64_t lo, uint64_t hi, uint32_t vsize,
             struct fb_counts *out);

/* Position i of a random permutation of [0, n) chosen by seed. */
uint64_t fb_perm(uint64_t i, uint64_t n, uint64_t seed);

/* One get of key idx on worker w: 1 hit (right value), 0 miss, -1 wrong value. */
int fb_get_one(struct cache *c, struct cache_worker *w, uint64_t idx, uint32_t vsize);

/* ---------------------------------------------------------------------------
 * Report (fb_report.c): a table on stdout, and the same figures as JSON
 * ------------------------------------------------------------------------- */

/* Start the report of a mode; the settings go in the JSON and a header line. */
void fb_report_begin(const struct fb_config *cfg);

/* A heading line in the table (nothing in the JSON). */
void fb_report_section(const char *title);

/* A figure: JSON key, table label, value, unit (may be ""). */
void fb_report_u64(const char *key, const char *label, uint64_t v, const char *unit);
void fb_report_num(const char *key, const char *label, double v, int decimals, const char *unit);
void fb_report_str(const char *key, const char *label, const char *v);

/* A JSON array of objects (one per section of the table). */
void fb_report_array_begin(const char *key);
void fb_report_object_begin(const char *title);
void fb_report_object_end(void);
void fb_report_array_end(void);

/* A note under the table (caveats); not in the JSON. */
void fb_report_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Finish: print the JSON line if cfg->json. */
void fb_report_end(const struct fb_config *cfg, bool ok);

#endif
