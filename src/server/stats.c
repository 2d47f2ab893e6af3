/*
 * stats.c: `stats`, `stats settings`, `stats items`, `stats slabs`,
 * `stats sizes`, `stats conns`, `stats detail`, `stats reset` (see stats.h).
 * Lines are built in a growable buffer and written at once.
 */
#include "stats.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "compose.h"
#include "conn.h"
#include "prefix.h"
#include "server.h"
#include "settings.h"

struct out {
    struct conn *c;
};

static void stat_line(struct out *o, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void stat_line(struct out *o, const char *name, const char *fmt, ...)
{
    char value[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    char line[256];
    conn_write(o->c, line, compose_stat(line, sizeof(line), name, value));
}

#define U(name, v) stat_line(o, name, "%llu", (unsigned long long)(v))

/* The tier lines, shared by `stats` and `stats tiers`. */
static void tiers(struct out *o, struct server *srv)
{
    struct cache_tier_stats t;
    cache_tier_stats_get(srv->cache, &t);
    stat_line(o, "flash_enabled", "%s", t.flash_enabled ? "yes" : "no");
    stat_line(o, "flash_degraded", "%s", t.flash_degraded ? "yes" : "no");
    U("ram_items", t.ram_items);
    U("ram_bytes", t.ram_bytes);
    U("ram_limit_bytes", t.ram_limit);
    U("flash_items", t.flash_items);
    U("flash_bytes", t.flash_bytes);
    U("flash_used_bytes", t.flash_used_bytes);
    U("flash_disk_bytes", t.flash_disk_bytes);
    U("flash_limit_bytes", t.flash_limit);
    U("flash_batches", t.flash_batches);
    U("demotions", t.demotions);
    U("demotions_skipped_clean", t.demotions_skipped_clean);
    U("demotions_failed", t.demotions_failed);
    U("promotions", t.promotions);
    U("flash_hits", t.flash_hits);
    U("flash_misses", t.flash_misses);
    U("filter_negatives", t.filter_negatives);
    U("filter_items", t.filter_items);
    U("filter_bytes", t.filter_bytes);
    U("lmdb_lookups", t.lmdb_lookups);
    U("flash_evictions", t.flash_evictions);
    U("flash_evicted_batches", t.flash_evicted_batches);
    U("flash_deletes", t.flash_deletes);
    U("ram_dropped_clean", t.dropped_clean);
    U("ram_dropped_dirty", t.dropped_dirty);
    U("tombstones", t.tombstones);
    U("ram_busy", t.busy);
    U("writer_queue_ops", t.queue_ops);
    U("writer_queue_bytes", t.queue_bytes);
    U("writer_held_deletes", t.held_deletes);
    U("writer_batches", t.batches);
    U("writer_batch_ops", t.batch_ops);
    U("writer_batch_max", t.batch_max);
    U("writer_map_full", t.map_full);
    U("flash_syncs", t.syncs);
    U("flash_io_errors", t.io_errors);
    U("heap_items", t.heap_items);
    U("heap_bytes", t.heap_bytes);
    U("spills", t.spills);
}

/* The workers' counters, summed. */
static void worker_totals_get(struct server *srv, struct worker_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker_stats *ws = &srv->workers[i].st;
        t->bytes_read += SCTR_GET(ws->bytes_read);
        t->bytes_written += SCTR_GET(ws->bytes_written);
        t->conn_yields += SCTR_GET(ws->conn_yields);
        t->cmd_meta += SCTR_GET(ws->cmd_meta);
        t->idle_kicks += SCTR_GET(ws->idle_kicks);
        t->conn_output_closes += SCTR_GET(ws->conn_output_closes);
        t->get_too_many_keys += SCTR_GET(ws->get_too_many_keys);
    }
}

/* The counters since the last `stats reset`. */
static void worker_totals_since_reset(struct server *srv, struct worker_totals *t)
{
    worker_totals_get(srv, t);
    pthread_mutex_lock(&srv->base_lock);
    struct worker_totals b = srv->base_workers;
    pthread_mutex_unlock(&srv->base_lock);
    t->bytes_read -= b.bytes_read;
    t->bytes_written -= b.bytes_written;
    t->conn_yields -= b.conn_yields;
    t->cmd_meta -= b.cmd_meta;
    t->idle_kicks -= b.idle_kicks;
    t->conn_output_closes -= b.conn_output_closes;
    t->get_too_many_keys -= b.get_too_many_keys;
}

static void general(struct out *o, struct server *srv)
{
    struct cache_stats cs;
    cache_stats_get(srv->cache, &cs);
    struct worker_totals wt;
    worker_totals_since_reset(srv, &wt);
    uint64_t rbufs = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        rbufs += SCTR_GET(srv->workers[i].st.read_buf_count);
    cache_time_t now = cache_now(srv->cache);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    U("pid", (unsigned long)getpid());
    U("uptime", now - srv->started);
    U("time", now);
    stat_line(o, "version", "%s-tiercache-%s", "1.6.18", TC_VERSION);
    stat_line(o, "libevent", "%s", event_get_version());
    U("pointer_size", 8 * sizeof(void *));
    stat_line(o, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    stat_line(o, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    U("max_connections", srv->set->conn_limit);
    U("curr_connections", atomic_load(&srv->curr_conns));
    U("total_connections", atomic_load(&srv->total_conns) - atomic_load(&srv->base_total_conns));
    U("rejected_connections",
      atomic_load(&srv->rejected_conns) - atomic_load(&srv->base_rejected_conns));
    U("connection_structures", atomic_load(&srv->curr_conns));
    U("read_buf_count", rbufs);
    U("cmd_get", cs.get_hits + cs.get_misses);
    U("cmd_set", cs.set_cmds);
    U("cmd_flush", cs.flush_cmds);
    U("cmd_touch", cs.touch_hits + cs.touch_misses);
    U("cmd_meta", wt.cmd_meta); /* memcached 1.6.18 counts `me` only */
    U("get_hits", cs.get_hits);
    U("get_misses", cs.get_misses);
    U("get_expired", cs.get_expired);
    U("get_flushed", cs.get_flushed);
    U("delete_misses", cs.delete_misses);
    U("delete_hits", cs.delete_hits);
    U("incr_misses", cs.incr_misses);
    U("incr_hits", cs.incr_hits);
    U("decr_misses", cs.decr_misses);
    U("decr_hits", cs.decr_hits);
    U("cas_misses", cs.cas_misses);
    U("cas_hits", cs.cas_hits);
    U("cas_badval", cs.cas_badval);
    U("touch_hits", cs.touch_hits);
    U("touch_misses", cs.touch_misses);
    U("store_too_large", cs.store_too_large);
    U("store_no_memory", cs.store_no_memory);
    U("auth_cmds", 0);
    U("auth_errors", 0);
    U("idle_kicks", wt.idle_kicks);
    U("bytes_read", wt.bytes_read);
    U("bytes_written", wt.bytes_written);
    U("limit_maxbytes", cs.limit_maxbytes);
    U("accepting_conns", 1);
    U("listen_disabled_num",
      atomic_load(&srv->listen_disabled_num) - atomic_load(&srv->base_listen_disabled));
    U("threads", srv->nworkers);
    U("conn_yields", wt.conn_yields);
    U("hash_power_level", cs.hash_power_level);
    U("hash_bytes", cs.hash_bytes);
    U("hash_is_expanding", cs.hash_is_expanding ? 1 : 0);
    /* memcached's slab mover counters; evictions_nomem counts the items a
     * page move took out of RAM (to flash first when there is a tier) */
    U("slab_reassign_rescues", 0);
    U("slab_reassign_chunk_rescues", 0);
    U("slab_reassign_evictions_nomem", cs.slab_reassign_evictions);
    U("slab_reassign_inline_reclaim", 0);
    U("slab_reassign_busy_items", 0);
    U("slab_reassign_busy_deletes", 0);
    U("slab_reassign_running", cs.slab_reassign_running ? 1 : 0);
    U("slabs_moved", cs.slabs_moved);
    U("lru_crawler_starts", cs.lru_crawler_starts);
    U("lru_maintainer_juggles", cs.lru_maintainer_juggles);
    U("malloc_fails", cs.malloc_fails);
    U("bytes", cs.bytes);
    U("curr_items", cs.curr_items);
    U("total_items", cs.total_items);
    U("expired_unfetched", cs.expired_unfetched);
    U("evicted_unfetched", cs.evicted_unfetched);
    U("evicted_active", cs.evicted_active);
    U("evictions", cs.evictions);
    U("reclaimed", cs.reclaimed);
    U("crawler_reclaimed", cs.crawler_reclaimed);
    U("crawler_items_checked", cs.crawler_items_checked);
    U("lrutail_reflocked", cs.lrutail_reflocked);
    U("moves_to_cold", cs.moves_to_cold);
    U("moves_to_warm", cs.moves_to_warm);
    U("moves_within_lru", cs.moves_within_lru);
    U("direct_reclaims", cs.direct_reclaims);
    U("total_malloced", cs.total_malloced);
    /* ours: the other connection limits (idle_kicks is above, where memcached has it) */
    U("conn_output_closes", wt.conn_output_closes);
    U("get_too_many_keys", wt.get_too_many_keys);
    U("slab_reassign_abandoned", cs.slab_reassign_abandoned); /* moves given up (items held) */
    tiers(o, srv);
}

static void items(struct out *o, struct server *srv)
{
    unsigned n = cache_class_count(srv->cache);
    for (unsigned id = 1; id <= n; id++) {
        struct cache_class_stats k;
        if (cache_class_stats_get(srv->cache, id, &k) != TC_OK || k.number == 0)
            continue;
        char name[64];
#define I(field, v)                                                                                \
    do {                                                                                           \
        snprintf(name, sizeof(name), "items:%u:%s", id, field);                                    \
        U(name, v);                                                                                \
    } while (0)
        I("number", k.number);
        I("number_hot", k.number_hot);
        I("number_warm", k.number_warm);
        I("number_cold", k.number_cold);
        I("age_hot", k.age_hot);
        I("age_warm", k.age_warm);
        I("age", k.age);
        I("mem_requested", k.mem_requested);
        I("evicted", k.evicted);
        I("evicted_nonzero", k.evicted_nonzero);
        I("evicted_time", k.evicted_time);
        I("outofmemory", k.outofmemory);
        I("tailrepairs", 0);
        I("reclaimed", k.reclaimed);
        I("expired_unfetched", k.expired_unfetched);
        I("evicted_unfetched", k.evicted_unfetched);
        I("evicted_active", k.evicted_active);
        I("crawler_reclaimed", k.crawler_reclaimed);
        I("crawler_items_checked", k.crawler_items_checked);
        I("lrutail_reflocked", k.lrutail_reflocked);
        I("moves_to_cold", k.moves_to_cold);
        I("moves_to_warm", k.moves_to_warm);
        I("moves_within_lru", k.moves_within_lru);
        I("direct_reclaims", k.direct_reclaims);
        I("hits_to_hot", k.hits_to_hot);
        I("hits_to_warm", k.hits_to_warm);
        I("hits_to_cold", k.hits_to_cold);
        I("hits_to_temp", 0);
#undef I
    }
}

static void slabs(struct out *o, struct server *srv)
{
    unsigned n = cache_class_count(srv->cache);
    unsigned active = 0;
    for (unsigned id = 1; id <= n; id++) {
        struct cache_class_stats k;
        if (cache_class_stats_get(srv->cache, id, &k) != TC_OK || k.total_pages == 0)
            continue;
        active++;
        char name[64];
#define S(field, v)                                                                                \
    do {                                                                                           \
        snprintf(name, sizeof(name), "%u:%s", id, field);                                          \
        U(name, v);                                                                                \
    } while (0)
        S("chunk_size", k.chunk_size);
        S("chunks_per_page", k.chunks_per_page);
        S("total_pages", k.total_pages);
        S("total_chunks", k.total_chunks);
        S("used_chunks", k.used_chunks);
        S("free_chunks", k.free_chunks);
        S("free_chunks_end", k.free_chunks_end);
        S("get_hits", k.get_hits);
        S("cmd_set", k.cmd_set);
        S("delete_hits", k.delete_hits);
        S("incr_hits", k.incr_hits);
        S("decr_hits", k.decr_hits);
        S("cas_hits", k.cas_hits);
        S("cas_badval", k.cas_badval);
        S("touch_hits", k.touch_hits);
#undef S
    }
    struct cache_stats cs;
    cache_stats_get(srv->cache, &cs);
    U("active_slabs", active);
    U("total_malloced", cs.total_malloced);
}

static void settings_emit(void *arg, const char *name, const char *value)
{
    stat_line(arg, name, "%s", value);
}

static void conns_emit(void *arg, int fd, const char *addr, const char *state, uint32_t idle)
{
    struct out *o = arg;
    char name[64];
    snprintf(name, sizeof(name), "%d:addr", fd);
    stat_line(o, name, "%s", addr);
    snprintf(name, sizeof(name), "%d:state", fd);
    stat_line(o, name, "%s", state);
    snprintf(name, sizeof(name), "%d:secs_since_last_cmd", fd);
    U(name, idle);
}

static void emit_raw(void *arg, const char *line, size_t len)
{
    conn_write(arg, line, len);
}

void stats_write(struct conn *c, enum proto_stats_kind kind)
{
    struct server *srv = conn_worker(c)->srv;
    struct out o = {.c = c};
    switch (kind) {
    case PROTO_STATS_GENERAL:
        general(&o, srv);
        break;
    case PROTO_STATS_RESET:
        cache_stats_reset(srv->cache);
        prefix_clear(srv->prefix);
        atomic_store(&srv->base_total_conns, atomic_load(&srv->total_conns));
        atomic_store(&srv->base_rejected_conns, atomic_load(&srv->rejected_conns));
        atomic_store(&srv->base_listen_disabled, atomic_load(&srv->listen_disabled_num));
        {
            struct worker_totals now;
            worker_totals_get(srv, &now);
            pthread_mutex_lock(&srv->base_lock);
            srv->base_workers = now;
            pthread_mutex_unlock(&srv->base_lock);
        }
        conn_reply(c, PROTO_R_RESET);
        return;
    case PROTO_STATS_SETTINGS:
        settings_report(srv->set, atomic_load(&srv->verbosity), srv->port, settings_emit, &o);
        break;
    case PROTO_STATS_ITEMS:
        items(&o, srv);
        break;
    case PROTO_STATS_SLABS:
        slabs(&o, srv);
        break;
    case PROTO_STATS_SIZES:
        stat_line(&o, "sizes_status", "disabled");
        break;
    case PROTO_STATS_CONNS:
        /* Only this worker's connections can be read safely from here. */
        conn_foreach(conn_worker(c), conns_emit, &o);
        break;
    case PROTO_STATS_TIERS:
        tiers(&o, srv);
        break;
    case PROTO_STATS_DETAIL_ON:
    case PROTO_STATS_DETAIL_OFF:
        atomic_store(&srv->detail_enabled, kind == PROTO_STATS_DETAIL_ON);
        conn_reply(c, PROTO_R_OK);
        return;
    case PROTO_STATS_DETAIL_DUMP:
        prefix_dump(srv->prefix, emit_raw, c);
        break;
    }
    conn_reply(c, PROTO_R_END);
}
