/*
 * fb_modes_read.c: the modes that measure reading from flash.
 *
 *   read      get throughput of RAM hits against flash hits. --items keys
 *             are stored through a small RAM tier, so all but the last
 *             ones (about a RAM's worth) end on flash. The RAM set is the
 *             newest half RAM's worth of keys; the flash set is every key
 *             older than twice RAM's worth. The flash set is read once in
 *             order (data into the page cache), then each set is read by
 *             --threads threads for --seconds, every key once per pass, each
 *             pass in a new random order. Why passes: a flash hit is
 *             promoted to RAM when the engine's sketch slot for its hash
 *             (65,536 slots, tier_promote) still holds its tag from its
 *             previous flash hit, and a promoted key then reads as a RAM
 *             hit. Under uniform random reads that is the case for about
 *             65,536 / (flash set) of the hits; reading each key once per
 *             pass, its slot has almost always seen another key since. The
 *             share of gets answered from flash (tier stats) is reported
 *             next to the rates, and promotions.
 *   restart   time to the first hit after a restart. --items keys go to
 *             flash, cache_persist() + cache_destroy() (clean stop), then
 *             cache_create() on the same directory is timed, then the
 *             first get (a key on flash), the time until the filter
 *             answers (a probe of an absent key is a filter negative), and
 *             1,000 random gets. That engine is then destroyed without
 *             cache_persist(): its state record still says "running",
 *             which is how the engine sees a crash (no clean-stop mark, no
 *             filter snapshot), and the same is timed once more.
 */
#include "fb.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PROBES_MAX  200000 /* absent-key probes while waiting for the filter */
#define RANDOM_GETS 1000
#define FILTER_WAIT 600.0 /* seconds */

static double per(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

/* ---------------------------------------------------------------------------
 * read
 * ------------------------------------------------------------------------- */

struct read_result {
    double secs, cpu;
    struct fb_counts n;
    uint64_t flash_hits, promotions, lmdb_lookups;
};

/*
 * CPU nanoseconds a load thread spends per get outside the engine, at most
 * (choosing the key and writing its text; this loop also divides).
 */
static double bench_cost_ns(uint64_t span)
{
    struct timespec a, b;
    char key[FB_NKEY];
    uint64_t sum = 0, n = 1000000;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (uint64_t i = 0; i < n; i++) {
        fb_key(key, fb_perm(i % span, span, i / span));
        sum += (unsigned char)key[FB_NKEY - 1];
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    return (ns + (double)(sum & 1) * 1e-9) / (double)n; /* sum: keep the loop */
}

/* Gets of [lo, hi) in random passes for cfg->seconds. */
static bool read_phase(struct cache *c, const struct fb_config *cfg, uint64_t lo, uint64_t hi,
                       struct read_result *r)
{
    struct cache_tier_stats ta, tb;
    struct fb_job job = {
        .op = FB_GET_PERM, .lo = lo, .hi = hi, .vsize = (uint32_t)cfg->value_size, .seed = lo};
    cache_tier_stats_get(c, &ta);
    double cpu0 = fb_cpu_seconds();
    uint64_t t0 = fb_now_ns();
    struct fb_group *g = fb_group_start(c, (unsigned)cfg->threads, &job);
    if (g == NULL)
        return false;
    fb_group_wait(g, cfg->seconds);
    fb_group_join(&g, &r->n); /* stops at once: every count below covers the same gets */
    uint64_t t1 = fb_now_ns();
    double cpu1 = fb_cpu_seconds();
    cache_tier_stats_get(c, &tb);
    r->secs = fb_secs(t0, t1);
    r->cpu = cpu1 - cpu0;
    r->flash_hits = tb.flash_hits - ta.flash_hits;
    r->promotions = tb.promotions - ta.promotions;
    r->lmdb_lookups = tb.lmdb_lookups - ta.lmdb_lookups;
    return true;
}

static void read_report(const char *title, const char *p, const struct read_result *r, uint64_t lo,
                        uint64_t hi)
{
    char key[64];
#define K(name) (snprintf(key, sizeof(key), "%s_%s", p, name), key)
    fb_report_section(title);
    fb_report_u64(K("keys"), "keys in the set", hi - lo, "");
    fb_report_u64(K("gets"), "gets", r->n.ops, "");
    fb_report_num(K("gets_per_sec"), "gets/s", per((double)r->n.ops, r->secs), 0, "");
    fb_report_num(K("flash_hit_frac"), "share answered from flash (flash_hits)",
                  per((double)r->flash_hits, (double)r->n.ops), 4, "");
    fb_report_num(
        K("ram_hit_frac"), "share answered from RAM alone",
        per((double)r->n.ops - (double)r->flash_hits - (double)r->n.misses, (double)r->n.ops), 4,
        "");
    fb_report_u64(K("promotions"), "promotions to RAM", r->promotions, "");
    fb_report_u64(K("lmdb_lookups"), "LMDB lookups", r->lmdb_lookups, "");
    fb_report_u64(K("misses"), "misses", r->n.misses, "");
    fb_report_u64(K("wrong"), "wrong values", r->n.wrong, "");
    fb_report_num(K("cpu_us_per_get"), "process CPU per get", per(r->cpu * 1e6, (double)r->n.ops),
                  3, "us");
#undef K
}

int fb_mode_read(struct fb_config *cfg)
{
    char dir[4200];
    fb_path(cfg, "flash", dir, sizeof(dir));
    struct cache *c = fb_open(cfg, dir, cfg->ram);
    if (c == NULL)
        return 1;
    fb_report_begin(cfg);
    uint32_t vsize = (uint32_t)cfg->value_size;
    uint64_t m = cfg->items;
    uint64_t t0 = fb_now_ns();
    bool ok = fb_fill(c, (unsigned)cfg->threads, 0, m, vsize, NULL) && fb_drain(c, 600);
    uint64_t t1 = fb_now_ns();
    struct cache_tier_stats t;
    cache_tier_stats_get(c, &t);
    uint64_t ram = t.ram_items;
    uint64_t hot_lo = m - ram / 2, flash_hi = m > 2 * ram ? m - 2 * ram : 0;
    if (ok && flash_hi < 2 * ram) {
        fprintf(stderr,
                "tiercache-flashbench: RAM holds %llu items: --items must be at least %llu so "
                "that the flash set is larger than RAM\n",
                (unsigned long long)ram, (unsigned long long)(4 * ram));
        ok = false;
    }
    struct read_result rr = {0}, fr = {0};
    if (ok) {
        fb_report_u64("items", "items stored", m, "");
        fb_report_num("fill_items_per_sec", "fill rate", per((double)m, fb_secs(t0, t1)), 0,
                      "items/s");
        fb_report_u64("ram_items", "items in RAM after the fill", ram, "");
        fb_report_u64("flash_items", "items on flash after the fill", t.flash_items, "");
        /* The flash set, once, in order: its pages into the page cache. */
        struct fb_job warm = {.op = FB_GET_SEQ, .lo = 0, .hi = flash_hi, .vsize = vsize};
        struct fb_group *g = fb_group_start(c, (unsigned)cfg->threads, &warm);
        struct fb_counts wn = {0};
        uint64_t w0 = fb_now_ns();
        if (g != NULL)
            fb_group_wait(g, 0);
        fb_group_join(&g, &wn);
        uint64_t w1 = fb_now_ns();
        fb_report_num("warm_gets_per_sec", "first read of the flash set (in order)",
                      per((double)wn.ops, fb_secs(w0, w1)), 0, "gets/s");
        ok = wn.misses == 0 && wn.wrong == 0 && wn.ops == flash_hi;
        if (!ok)
            fprintf(stderr,
                    "tiercache-flashbench: reading the flash set: %llu misses, %llu "
                    "wrong values\n",
                    (unsigned long long)wn.misses, (unsigned long long)wn.wrong);
    }
    /* RAM first: the flash phase's promotions push RAM items out. */
    if (ok)
        ok = read_phase(c, cfg, hot_lo, m, &rr) && read_phase(c, cfg, 0, flash_hi, &fr);
    if (ok) {
        read_report("RAM-resident set (newest keys, half of RAM)", "ram", &rr, hot_lo, m);
        read_report("flash-resident set (oldest keys)", "flash", &fr, 0, flash_hi);
        fb_report_section("ratio");
        double rram = per((double)rr.n.ops, rr.secs), rflash = per((double)fr.n.ops, fr.secs);
        fb_report_num("flash_over_ram", "flash gets/s / RAM gets/s", per(rflash, rram), 3, "");
        fb_report_num("cpu_ram_over_flash", "CPU per RAM get / CPU per flash get",
                      per(rr.cpu / (double)rr.n.ops, fr.cpu / (double)fr.n.ops), 3, "");
        fb_report_num("bench_ns_per_get", "bench's own CPU per get (key choice, key text)",
                      bench_cost_ns(flash_hi), 1, "ns");
        fb_report_note("goal: flash/RAM >= 0.7; the flash set's data is in the page cache");
        ok = rr.n.misses + rr.n.wrong + fr.n.misses + fr.n.wrong == 0;
    }
    cache_destroy(&c);
    fb_report_end(cfg, ok);
    return ok ? 0 : 1;
}

/* ---------------------------------------------------------------------------
 * restart
 * ------------------------------------------------------------------------- */

struct restart_result {
    double open_s, first_hit_s, filter_s, random_s;
    uint64_t random_hits, flash_items;
    bool hit, filter_ready;
};

/* Wait until a get of an absent key is a filter negative (the filter is loaded). */
static bool wait_filter(struct cache *c, struct cache_worker *w)
{
    struct cache_tier_stats t;
    cache_tier_stats_get(c, &t);
    uint64_t neg0 = t.filter_negatives;
    uint64_t end = fb_now_ns() + (uint64_t)(FILTER_WAIT * 1e9);
    for (uint64_t i = 0; i < PROBES_MAX && fb_now_ns() < end && !atomic_load(&fb_interrupted);
         i++) {
        fb_get_one(c, w, FB_MISS_BASE + i, 0);
        cache_tier_stats_get(c, &t);
        if (t.filter_negatives > neg0)
            return true;
        if (i >= 16)
            fb_sleep_ms(2);
    }
    return false;
}

/* Open the engine on dir and time the first hit, the filter, random gets. */
static struct cache *restart_open(const struct fb_config *cfg, const char *dir, uint64_t n,
                                  struct restart_result *r)
{
    uint32_t vsize = (uint32_t)cfg->value_size;
    memset(r, 0, sizeof(*r));
    if (cfg->cold)
        fb_dir_uncache(dir);
    uint64_t t0 = fb_now_ns();
    struct cache *c = fb_open(cfg, dir, cfg->ram);
    uint64_t t1 = fb_now_ns();
    struct cache_worker *w = NULL;
    if (c == NULL || cache_worker_create(c, &w) != TC_OK) {
        cache_destroy(&c);
        return NULL;
    }
    r->hit = fb_get_one(c, w, n / 2, vsize) > 0;
    uint64_t t2 = fb_now_ns();
    r->filter_ready = wait_filter(c, w);
    uint64_t t3 = fb_now_ns();
    uint64_t rng = 88172645463325252ULL;
    for (int i = 0; i < RANDOM_GETS; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        r->random_hits += fb_get_one(c, w, rng % n, vsize) > 0;
    }
    uint64_t t4 = fb_now_ns();
    cache_worker_destroy(&w);
    struct cache_tier_stats t;
    cache_tier_stats_get(c, &t);
    r->flash_items = t.flash_items;
    r->open_s = fb_secs(t0, t1);
    r->first_hit_s = fb_secs(t0, t2);
    r->filter_s = fb_secs(t0, t3);
    r->random_s = fb_secs(t3, t4);
    return c;
}

static void restart_report(const char *title, const char *p, const struct restart_result *r)
{
    char key[64];
#define K(name) (snprintf(key, sizeof(key), "%s_%s", p, name), key)
    fb_report_section(title);
    fb_report_num(K("open_ms"), "cache_create", r->open_s * 1e3, 2, "ms");
    fb_report_num(K("first_hit_ms"), "first hit (from before cache_create)", r->first_hit_s * 1e3,
                  2, "ms");
    fb_report_num(K("filter_ready_ms"), "filter answering (from before cache_create)",
                  r->filter_ready ? r->filter_s * 1e3 : -1.0, 2, "ms");
    fb_report_u64(K("flash_items"), "items on flash", r->flash_items, "");
    fb_report_num(K("random_get_us"), "then 1,000 random gets, mean",
                  r->random_s * 1e6 / RANDOM_GETS, 2, "us");
    fb_report_u64(K("random_hits"), "... of which hits", r->random_hits, "");
#undef K
}

int fb_mode_restart(struct fb_config *cfg)
{
    char dir[4200];
    fb_path(cfg, "flash", dir, sizeof(dir));
    struct cache *c = fb_open(cfg, dir, cfg->ram);
    if (c == NULL)
        return 1;
    fb_report_begin(cfg);
    uint32_t vsize = (uint32_t)cfg->value_size;
    uint64_t n = cfg->items;
    uint64_t t0 = fb_now_ns();
    bool ok = fb_fill(c, (unsigned)cfg->threads, 0, n, vsize, NULL);
    uint64_t t1 = fb_now_ns();
    uint64_t written = 0;
    tc_status_e st = cache_persist(c, 3600 * 1000L, &written);
    uint64_t t2 = fb_now_ns();
    cache_destroy(&c);
    uint64_t t3 = fb_now_ns();
    if (st != TC_OK) {
        fprintf(stderr, "tiercache-flashbench: cache_persist: %s\n", tc_strerror(st));
        ok = false;
    }
    struct restart_result clean = {0}, crash = {0};
    double unclean_stop_s = 0;
    if (ok) {
        fb_report_u64("items", "items stored", n, "");
        fb_report_u64("value_size", "value size", vsize, "bytes");
        fb_report_num("fill_items_per_sec", "fill rate", per((double)n, fb_secs(t0, t1)), 0,
                      "items/s");
        fb_report_num("persist_ms", "clean stop: cache_persist", fb_secs(t1, t2) * 1e3, 1, "ms");
        fb_report_num("destroy_ms", "clean stop: cache_destroy", fb_secs(t2, t3) * 1e3, 1, "ms");
        fb_report_num("dir_mb", "data dir (du)", (double)fb_dir_disk_bytes(dir) / FB_MB, 1, "MB");
        fb_report_str("page_cache", "page cache at reopen", cfg->cold ? "dropped" : "as left");
        c = restart_open(cfg, dir, n, &clean);
        ok = c != NULL;
    }
    if (ok) {
        uint64_t s0 = fb_now_ns();
        cache_destroy(&c); /* no cache_persist: the next start sees an unclean stop */
        unclean_stop_s = fb_secs(s0, fb_now_ns());
        c = restart_open(cfg, dir, n, &crash);
        ok = c != NULL;
        cache_destroy(&c);
    }
    if (ok) {
        restart_report("after a clean stop (filter snapshot loaded)", "clean", &clean);
        fb_report_num("unclean_stop_ms", "unclean stop (cache_destroy without persist)",
                      unclean_stop_s * 1e3, 1, "ms");
        restart_report("after an unclean stop (filter rebuilt in the background)", "unclean",
                       &crash);
        ok = clean.hit && crash.hit && clean.filter_ready && crash.filter_ready &&
             clean.random_hits == RANDOM_GETS && crash.random_hits == RANDOM_GETS;
        fb_report_note("first hit and filter times count from before cache_create; until the "
                       "filter answers, every RAM miss asks LMDB");
        fb_report_note("the unclean stop is cache_destroy without cache_persist: the state record "
                       "stays \"running\" and no filter snapshot is written, as after a crash "
                       "(what a crash adds: RAM-only items and unsynced commits lost)");
    }
    fb_report_end(cfg, ok);
    return ok ? 0 : 1;
}
