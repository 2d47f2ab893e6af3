/*
 * fb_modes_write.c: the modes that measure writing to flash.
 *
 *   demote    sustained demotion rate. Threads store distinct keys into an
 *             engine whose RAM is full, so every store pushes an item out
 *             of RAM, which must reach flash first (write-behind: the
 *             maintainer cleans COLD tails ahead of need; a dirty tail
 *             makes the store wait with TC_BUSY). Measured over --seconds
 *             after RAM has filled and --warmup more: stores/s, and the
 *             writer's written items/s (cache_tier_stats.demotions) as a
 *             mean and as the slowest and fastest second.
 *   space     flash bytes per live byte. N items of one value size are
 *             stored through a small RAM tier, cache_persist() puts the
 *             rest on flash too, then: flash_used_bytes (LMDB pages in use)
 *             and flash_disk_bytes (data.mdb's allocated blocks) over the
 *             live bytes, key + value of every item flash holds
 *             (flash_items * (FB_NKEY + value size), all keys being
 *             FB_NKEY bytes). The engine's flash_bytes counts whole
 *             records (varint header + key + value) and is shown apart.
 *   ram       RAM per flash-resident item. Fill RAM, then store --items
 *             more so that they all end on flash; the engine's per-item
 *             RAM for flash items is its membership filter (filter_bytes)
 *             and, for deleted or overwritten keys only, tombstones (heap
 *             items, none here); the process's RSS growth over the second
 *             fill is given too, split into anonymous memory and file
 *             pages (LMDB's map of data.mdb: page cache, not engine RAM).
 *   shutdown  cache_persist() with a full RAM tier of dirty items: the
 *             graceful stop's cost (every RAM item written to flash), and
 *             cache_destroy() after it (clean-stop record, filter snapshot).
 */
#include "fb.h"

#include <stdio.h>
#include <string.h>

static double per(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

/* ---------------------------------------------------------------------------
 * demote
 * ------------------------------------------------------------------------- */

struct sample {
    uint64_t ns;
    struct fb_counts n;
    struct cache_tier_stats t;
    double cpu;
};

static void sample_take(struct cache *c, struct fb_group *g, struct sample *s)
{
    s->ns = fb_now_ns();
    fb_group_counts(g, &s->n);
    cache_tier_stats_get(c, &s->t);
    s->cpu = fb_cpu_seconds();
}

static void demote_report(const struct fb_config *cfg, const struct sample *a,
                          const struct sample *b, double sec_min, double sec_max, uint64_t qmax_ops,
                          uint64_t qmax_bytes)
{
    double secs = fb_secs(a->ns, b->ns);
    uint64_t stores = b->n.ops - a->n.ops;
    uint64_t demoted = b->t.demotions - a->t.demotions;
    uint64_t batches = b->t.batches - a->t.batches;
    double thread_s = secs * (double)cfg->threads;
    double cpu = b->cpu - a->cpu;
    double load_cpu = (double)(b->n.cpu_ns - a->n.cpu_ns) / 1e9;

    fb_report_section("measured interval");
    fb_report_num("seconds", "length", secs, 2, "s");
    fb_report_u64("value_size", "value size", cfg->value_size, "bytes");
    fb_report_u64("stores", "stores", stores, "");
    fb_report_num("stores_per_sec", "stores/s", per((double)stores, secs), 0, "items/s");
    fb_report_u64("demotions", "demotions (items written to flash)", demoted, "");
    fb_report_num("demotions_per_sec", "demotions/s (mean)", per((double)demoted, secs), 0,
                  "items/s");
    fb_report_num("demotions_per_sec_min", "demotions/s (slowest whole second)", sec_min, 0,
                  "items/s");
    fb_report_num("demotions_per_sec_max", "demotions/s (fastest whole second)", sec_max, 0,
                  "items/s");
    fb_report_num("demoted_mb_per_sec", "demoted key+value bytes/s",
                  per((double)demoted * (double)(FB_NKEY + cfg->value_size), secs) / FB_MB, 1,
                  "MB/s");
    fb_report_u64("demotions_skipped_clean", "writes skipped (already on flash)",
                  b->t.demotions_skipped_clean - a->t.demotions_skipped_clean, "");
    fb_report_u64("demotions_failed", "writes failed",
                  b->t.demotions_failed - a->t.demotions_failed, "");
    fb_report_u64("dropped_clean", "clean items dropped from RAM",
                  b->t.dropped_clean - a->t.dropped_clean, "");
    fb_report_u64("dropped_dirty", "dirty items dropped (lost)",
                  b->t.dropped_dirty - a->t.dropped_dirty, "");

    fb_report_section("keeping up");
    fb_report_u64("busy_retries", "TC_BUSY retries (storing threads)", b->n.busy - a->n.busy, "");
    fb_report_num("busy_wait_frac", "share of thread time paused on TC_BUSY",
                  per((double)(b->n.busy_ns - a->n.busy_ns) / 1e9, thread_s), 3, "");
    fb_report_u64("store_errors", "stores failed otherwise", b->n.errors - a->n.errors, "");
    fb_report_u64("queue_ops_end", "writer queue at the end", b->t.queue_ops, "ops");
    fb_report_u64("queue_bytes_end", "writer queue at the end (bytes)", b->t.queue_bytes, "bytes");
    fb_report_u64("queue_ops_max", "writer queue, largest sampled", qmax_ops, "ops");
    fb_report_u64("queue_bytes_max", "writer queue, largest sampled (bytes)", qmax_bytes, "bytes");
    fb_report_u64("batches", "writer transactions", batches, "");
    fb_report_num("batch_ops_mean", "operations per transaction",
                  per((double)(b->t.batch_ops - a->t.batch_ops), (double)batches), 0, "");
    fb_report_u64("flash_evictions", "flash items evicted (budget reached)",
                  b->t.flash_evictions - a->t.flash_evictions, "");
    fb_report_u64("map_full", "LMDB map-full retries", b->t.map_full - a->t.map_full, "");
    fb_report_num("flash_used_mb", "flash in use at the end", (double)b->t.flash_used_bytes / FB_MB,
                  1, "MB");

    fb_report_section("CPU");
    fb_report_num("cpu_cores", "process CPU (cores)", per(cpu, secs), 2, "");
    fb_report_num("load_cpu_cores", "storing threads' CPU (cores)", per(load_cpu, secs), 2, "");
    fb_report_num("engine_cpu_cores", "writer + maintainer CPU (cores)", per(cpu - load_cpu, secs),
                  2, "");
    fb_report_num("cpu_us_per_demotion", "process CPU per demotion",
                  per(cpu * 1e6, (double)demoted), 2, "us");
    fb_report_note("goal: >= 200,000 demotions/s sustained for 100-byte values");
}

int fb_mode_demote(struct fb_config *cfg)
{
    char dir[4200];
    fb_path(cfg, "flash", dir, sizeof(dir));
    struct cache *c = fb_open(cfg, dir, cfg->ram);
    if (c == NULL)
        return 1;
    fb_report_begin(cfg);
    struct fb_job job = {.op = FB_STORE, .lo = 0, .hi = 0, .vsize = (uint32_t)cfg->value_size};
    struct fb_group *g = fb_group_start(c, (unsigned)cfg->threads, &job);
    bool ok = g != NULL;
    uint64_t t0 = fb_now_ns();
    while (ok && !fb_ram_full(c) && !fb_group_done(g) && !atomic_load(&fb_interrupted))
        fb_sleep_ms(5);
    double fill_s = fb_secs(t0, fb_now_ns());
    if (ok) {
        fb_report_num("ram_fill_seconds", "RAM filled after", fill_s, 2, "s");
        fb_group_wait(g, cfg->warmup);
    }

    struct sample a, b, prev;
    double sec_min = 0, sec_max = 0;
    uint64_t qmax_ops = 0, qmax_bytes = 0;
    if (ok) {
        sample_take(c, g, &a);
        prev = a;
        b = a;
        uint64_t end = a.ns + (uint64_t)(cfg->seconds * 1e9);
        bool first = true;
        while (!atomic_load(&fb_interrupted) && !fb_group_done(g) && b.ns < end) {
            uint64_t next = prev.ns + 1000000000ULL < end ? prev.ns + 1000000000ULL : end;
            while (fb_now_ns() < next && !atomic_load(&fb_interrupted))
                fb_sleep_ms(next - fb_now_ns() > 20000000ULL ? 10 : 1);
            sample_take(c, g, &b);
            if (b.t.queue_ops > qmax_ops)
                qmax_ops = b.t.queue_ops;
            if (b.t.queue_bytes > qmax_bytes)
                qmax_bytes = b.t.queue_bytes;
            double s = fb_secs(prev.ns, b.ns);
            if (s > 0.9) { /* whole seconds only: the last piece may be short */
                double r = (double)(b.t.demotions - prev.t.demotions) / s;
                sec_min = first || r < sec_min ? r : sec_min;
                sec_max = first || r > sec_max ? r : sec_max;
                first = false;
            }
            prev = b;
        }
        demote_report(cfg, &a, &b, sec_min, sec_max, qmax_ops, qmax_bytes);
        ok = b.n.errors == 0;
    }
    fb_group_join(&g, NULL);
    cache_destroy(&c);
    fb_report_end(cfg, ok);
    return ok ? 0 : 1;
}

/* ---------------------------------------------------------------------------
 * space
 * ------------------------------------------------------------------------- */

static bool space_one(struct fb_config *cfg, uint32_t vsize)
{
    char dir[4200], title[128];
    snprintf(title, sizeof(title), "%u-byte values", vsize);
    snprintf(dir, sizeof(dir), "%s/space-%u", cfg->run_dir, vsize);
    uint64_t n = cfg->items != 0 ? cfg->items : cfg->live / (FB_NKEY + vsize);
    struct cache *c = fb_open(cfg, dir, cfg->ram);
    if (c == NULL)
        return false;
    fb_report_object_begin(title);
    uint64_t t0 = fb_now_ns();
    struct fb_counts cnt;
    bool ok = fb_fill(c, (unsigned)cfg->threads, 0, n, vsize, &cnt);
    uint64_t t1 = fb_now_ns();
    uint64_t written = 0;
    tc_status_e st = cache_persist(c, 600000, &written);
    uint64_t t2 = fb_now_ns();
    if (st != TC_OK) {
        fprintf(stderr, "tiercache-flashbench: cache_persist: %s\n", tc_strerror(st));
        ok = false;
    }
    struct cache_tier_stats t;
    cache_tier_stats_get(c, &t);
    double live = (double)t.flash_items * (double)(FB_NKEY + vsize);

    fb_report_u64("value_size", "value size", vsize, "bytes");
    fb_report_u64("items", "items stored", cnt.ops, "");
    fb_report_num("fill_items_per_sec", "fill rate", per((double)cnt.ops, fb_secs(t0, t1)), 0,
                  "items/s");
    fb_report_num("persist_seconds", "cache_persist", fb_secs(t1, t2), 2, "s");
    fb_report_u64("flash_items", "items on flash", t.flash_items, "");
    fb_report_u64("flash_evictions", "items evicted from flash", t.flash_evictions, "");
    fb_report_num("live_mb", "live bytes (key + value) on flash", live / FB_MB, 1, "MB");
    fb_report_num("record_mb", "record bytes (flash_bytes)", (double)t.flash_bytes / FB_MB, 1,
                  "MB");
    fb_report_num("used_mb", "LMDB pages in use (flash_used_bytes)",
                  (double)t.flash_used_bytes / FB_MB, 1, "MB");
    fb_report_num("disk_mb", "data.mdb on disk (flash_disk_bytes)",
                  (double)t.flash_disk_bytes / FB_MB, 1, "MB");
    fb_report_num("record_per_live", "record bytes / live byte", per((double)t.flash_bytes, live),
                  3, "");
    fb_report_num("used_per_live", "in use / live byte", per((double)t.flash_used_bytes, live), 3,
                  "");
    fb_report_num("disk_per_live", "on disk / live byte", per((double)t.flash_disk_bytes, live), 3,
                  "");
    cache_destroy(&c);
    uint64_t du = fb_dir_disk_bytes(dir);
    fb_report_num("dir_mb", "data dir after a clean stop (du)", (double)du / FB_MB, 1, "MB");
    fb_report_num("dir_per_live", "data dir / live byte", per((double)du, live), 3, "");
    fb_report_object_end();
    if (t.flash_items + t.flash_evictions < n)
        fb_report_note("%llu items stored but %llu on flash and %llu evicted",
                       (unsigned long long)n, (unsigned long long)t.flash_items,
                       (unsigned long long)t.flash_evictions);
    fb_dir_remove(dir);
    return ok && t.flash_items > 0;
}

int fb_mode_space(struct fb_config *cfg)
{
    uint32_t sizes[4] = {100, 1024, 4096};
    size_t nsizes = 3;
    if (cfg->value_size != 0 && cfg->value_size != 100 && cfg->value_size != 1024 &&
        cfg->value_size != 4096)
        sizes[nsizes++] = (uint32_t)cfg->value_size;
    fb_report_begin(cfg);
    bool ok = true;
    fb_report_array_begin("sizes");
    for (size_t i = 0; i < nsizes && ok && !atomic_load(&fb_interrupted); i++)
        ok = space_one(cfg, sizes[i]);
    fb_report_array_end();
    fb_report_note("live byte = key + value; goal: on disk / live byte <= 1.5");
    fb_report_end(cfg, ok);
    return ok ? 0 : 1;
}

/* ---------------------------------------------------------------------------
 * ram
 * ------------------------------------------------------------------------- */

struct ram_point {
    struct fb_rss rss;
    struct cache_tier_stats t;
    struct cache_stats s;
};

static void ram_point(struct cache *c, struct ram_point *p)
{
    fb_wait_hash(c);
    fb_sleep_ms(200); /* let the maintainer and writer settle */
    cache_tier_stats_get(c, &p->t);
    cache_stats_get(c, &p->s);
    fb_rss_get(&p->rss);
}

/* RSS growth per flash item between two points; keys get prefix p. */
static void ram_rss_rows(const char *p, const char *what, const struct ram_point *a,
                         const struct ram_point *b)
{
    char key[64], label[96];
    double added = (double)b->t.flash_items - (double)a->t.flash_items;
#define ROW(k, l, field)                                                                           \
    do {                                                                                           \
        snprintf(key, sizeof(key), "%s_%s", p, k);                                                 \
        snprintf(label, sizeof(label), "%s, %s", l, what);                                         \
        fb_report_num(key, label, per((double)b->rss.field - (double)a->rss.field, added), 2,      \
                      "bytes");                                                                    \
    } while (0)
    ROW("rss_per_item", "VmRSS / flash item", vm_rss);
    ROW("rss_anon_per_item", "RssAnon / flash item", rss_anon);
    ROW("rss_file_per_item", "RssFile / flash item", rss_file);
#undef ROW
}

int fb_mode_ram(struct fb_config *cfg)
{
    char dir[4200];
    fb_path(cfg, "flash", dir, sizeof(dir));
    struct cache *c = fb_open(cfg, dir, cfg->ram);
    if (c == NULL)
        return 1;
    fb_report_begin(cfg);
    uint32_t vsize = (uint32_t)cfg->value_size;
    unsigned nt = (unsigned)cfg->threads;
    uint64_t next, half = FB_SIDE_BASE + cfg->items / 2, end = FB_SIDE_BASE + cfg->items;
    struct ram_point a, m, b;
    /* RAM full, then the added items in two halves: the second half's
     * growth is free of fixed costs reached in the first. */
    bool ok = fb_fill_ram(c, nt, 0, vsize, 600, &next, NULL) && fb_drain(c, 600);
    if (ok) {
        ram_point(c, &a);
        ok = fb_fill(c, nt, FB_SIDE_BASE, half, vsize, NULL) && fb_drain(c, 600);
    }
    if (ok) {
        ram_point(c, &m);
        ok = fb_fill(c, nt, half, end, vsize, NULL) && fb_drain(c, 600);
    }
    if (ok) {
        ram_point(c, &b);
        double items = (double)b.t.flash_items;
        fb_report_section("flash items");
        fb_report_u64("value_size", "value size", vsize, "bytes");
        fb_report_u64("flash_items", "items on flash", b.t.flash_items, "");
        fb_report_num("flash_items_added", "added since RAM was full",
                      (double)b.t.flash_items - (double)a.t.flash_items, 0, "");
        fb_report_u64("ram_items", "items in RAM", b.t.ram_items, "");
        fb_report_section("engine RAM for flash items (at the end)");
        fb_report_u64("filter_bytes", "membership filter", b.t.filter_bytes, "bytes");
        fb_report_num("filter_bytes_per_item", "filter bytes / flash item",
                      per((double)b.t.filter_bytes, items), 3, "bytes");
        fb_report_u64("heap_items", "heap items (tombstones, copies)", b.t.heap_items, "");
        fb_report_num("heap_bytes_per_item", "heap bytes / flash item",
                      per((double)b.t.heap_bytes, items), 3, "bytes");
        fb_report_num("hash_bytes_delta", "hash table growth",
                      (double)b.s.hash_bytes - (double)a.s.hash_bytes, 0, "bytes");
        fb_report_num("engine_bytes_per_item", "engine RAM / flash item",
                      per((double)(b.t.filter_bytes + b.t.heap_bytes), items), 3, "bytes");
        fb_report_section("process RSS growth per flash item added");
        ram_rss_rows("all", "all added", &a, &b);
        ram_rss_rows("half2", "second half", &m, &b);
        fb_report_num("rss_mb_end", "VmRSS at the end", (double)b.rss.vm_rss / FB_MB, 1, "MB");
        fb_report_note("goal: <= 2 bytes of RAM per flash item (extstore: ~70 + key)");
        fb_report_note("RssFile counts data.mdb pages this process touched through LMDB's map "
                       "(page cache, reclaimable), not memory the engine allocates");
        fb_report_note("RssAnon includes fixed costs (LMDB's page buffers, the writer's queue, "
                       "malloc's free lists): the second half's figure leaves most of them out");
        fb_report_note("the filter grows in 12%% steps, so its bytes per item depend on where in a "
                       "step a point falls");
    }
    cache_destroy(&c);
    fb_report_end(cfg, ok);
    return ok ? 0 : 1;
}

/* ---------------------------------------------------------------------------
 * shutdown
 * ------------------------------------------------------------------------- */

int fb_mode_shutdown(struct fb_config *cfg)
{
    char dir[4200];
    fb_path(cfg, "flash", dir, sizeof(dir));
    struct cache *c = fb_open(cfg, dir, cfg->ram);
    if (c == NULL)
        return 1;
    fb_report_begin(cfg);
    uint32_t vsize = (uint32_t)cfg->value_size;
    uint64_t next;
    uint64_t t0 = fb_now_ns();
    bool ok = fb_fill_ram(c, (unsigned)cfg->threads, 0, vsize, 3600, &next, NULL);
    uint64_t t1 = fb_now_ns();
    struct cache_tier_stats a, b;
    cache_tier_stats_get(c, &a);
    uint64_t written = 0;
    tc_status_e st = cache_persist(c, 3600 * 1000L, &written);
    uint64_t t2 = fb_now_ns();
    cache_tier_stats_get(c, &b);
    cache_destroy(&c);
    uint64_t t3 = fb_now_ns();
    if (st != TC_OK) {
        fprintf(stderr, "tiercache-flashbench: cache_persist: %s\n", tc_strerror(st));
        ok = false;
    }
    double persist_s = fb_secs(t1, t2);
    double bytes = (double)written * (double)(FB_NKEY + vsize);
    fb_report_u64("value_size", "value size", vsize, "bytes");
    fb_report_num("fill_seconds", "filling RAM took", fb_secs(t0, t1), 2, "s");
    fb_report_u64("ram_items", "items in RAM", a.ram_items, "");
    fb_report_num("ram_mb", "RAM item bytes", (double)a.ram_bytes / FB_MB, 1, "MB");
    fb_report_u64("demoted_while_filling", "items written to flash while filling", a.demotions, "");
    fb_report_u64("written", "items cache_persist queued", written, "");
    fb_report_u64("demotions", "items the writer wrote meanwhile", b.demotions - a.demotions, "");
    fb_report_num("persist_seconds", "cache_persist", persist_s, 3, "s");
    fb_report_num("persist_items_per_sec", "persist rate", per((double)written, persist_s), 0,
                  "items/s");
    fb_report_num("persist_mb_per_sec", "persist rate (key + value)", per(bytes, persist_s) / FB_MB,
                  1, "MB/s");
    fb_report_num("destroy_seconds", "cache_destroy after it", fb_secs(t2, t3), 3, "s");
    fb_report_num("stop_seconds", "graceful stop in all", fb_secs(t1, t3), 3, "s");
    fb_report_num("dir_mb", "data dir after the stop (du)", (double)fb_dir_disk_bytes(dir) / FB_MB,
                  1, "MB");
    fb_report_end(cfg, ok);
    return ok ? 0 : 1;
}
