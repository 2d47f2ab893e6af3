/*
 * metadump.c: the `lru_crawler` commands (memcached 1.6's replies, byte for
 * byte), and `lru_crawler metadump`, which lists every live key of both
 * tiers as memcached lists its items.
 *
 * The listing is a stream (conn_stream): each step takes one slice of the
 * engine's walk (cache_walk_next: a few hundred keys, no lock or LMDB
 * transaction held between slices) and appends its lines. memcached hands
 * the connection to its crawler thread; here the worker itself advances
 * the walk between other connections' events, so a dump of millions of
 * keys costs little memory, never blocks the worker for long, and a client
 * that stops reading only stalls its own walk. Commands pipelined after the
 * metadump are answered after its "END".
 *
 * The other subcommands tune memcached's LRU crawler. Ours (the engine's
 * expiry crawl) paces itself: `crawl` starts a pass now (cache_crawl_now,
 * all classes at once), `sleep` and `tocrawl` answer as memcached does and
 * change nothing. `disable` makes crawl and metadump
 * answer "CLIENT_ERROR lru crawler disabled" until `enable`, as memcached
 * (the expiry crawl keeps running: without it expired items would only go
 * when touched).
 *
 * Threads: the owning worker's.
 */
#include "metadump.h"

#include <stdatomic.h>
#include <stdlib.h>

#include <tiercache/engine.h>

#include "compose.h"
#include "conn.h"
#include "log.h"
#include "server.h"

#define METADUMP_SLICE 256 /* keys per step */

/*
 * memcached's `lru_crawler enable|disable` is process-wide
 * (settings.lru_crawler). One tiercached serves one port per process, so a
 * process-wide flag is the same thing.
 */
static _Atomic bool crawler_disabled;

struct metadump {
    struct cache_walk *walk;
    bool all;         /* every class */
    uint64_t classes; /* else bit n for class n */
};

static void lru_reply(struct conn *c, enum proto_lru_reply r)
{
    struct proto_str s = compose_lru_reply(r);
    conn_write(c, s.s, s.n);
}

static void metadump_release(void *arg)
{
    struct metadump *md = arg;
    cache_walk_destroy(&md->walk);
    free(md);
}

static enum conn_stream_state metadump_step(struct conn *c, void *arg)
{
    struct metadump *md = arg;
    const struct cache_walk_entry *e;
    size_t n;
    bool done;
    tc_status_e st = cache_walk_next(md->walk, METADUMP_SLICE, &e, &n, &done);
    if (st != TC_OK)
        tc_log(TC_LOG_WARN,
               "lru_crawler metadump: the key walk stopped early (%s): the listing "
               "is incomplete",
               tc_strerror(st));
    char line[COMPOSE_METADUMP_LINE_MAX];
    for (size_t i = 0; i < n; i++) {
        if (!md->all && !(md->classes >> e[i].clsid & 1))
            continue;
        size_t len = compose_metadump_line(line, e[i].key, e[i].nkey, e[i].exptime, e[i].atime,
                                           e[i].cas, e[i].fetched, e[i].clsid, e[i].size);
        conn_write(c, line, len);
    }
    if (done || st != TC_OK) {
        conn_reply(c, PROTO_R_END);
        return CONN_STREAM_DONE;
    }
    return n == 0 ? CONN_STREAM_WAIT : CONN_STREAM_MORE;
}

static void metadump_start(struct conn *c, const struct proto_lru *lru)
{
    struct metadump *md = calloc(1, sizeof(*md));
    if (md == NULL || cache_walk_create(conn_worker(c)->cw, &md->walk) != TC_OK) {
        tc_log(TC_LOG_WARN, "lru_crawler metadump: out of memory: closing the connection");
        free(md);
        conn_close_now(c);
        return;
    }
    md->all = lru->all;
    md->classes = lru->classes;
    conn_stream(c, metadump_step, metadump_release, md);
}

void metadump_command(struct conn *c, const struct proto_lru *lru)
{
    bool disabled = atomic_load_explicit(&crawler_disabled, memory_order_relaxed);
    switch (lru->sub) {
    case PROTO_LRU_CRAWL:
    case PROTO_LRU_METADUMP:
        /* memcached's crawler thread writes a metadump straight to the
         * socket, so it refuses one behind replies not yet sent (commands
         * earlier in the same packet, or an earlier metadump's tail); we do
         * as it does, so a client that works with us works with it. */
        if (lru->sub == PROTO_LRU_METADUMP && conn_pending_output(c) > 0)
            lru_reply(c, PROTO_LRU_R_PIPELINED);
        else if (disabled)
            lru_reply(c, PROTO_LRU_R_DISABLED);
        else if (lru->reply != PROTO_LRU_R_NONE)
            lru_reply(c, lru->reply);
        else if (lru->sub == PROTO_LRU_CRAWL) {
            /* Ours crawls every class at once: any class list starts a pass. */
            cache_crawl_now(conn_worker(c)->srv->cache);
            lru_reply(c, PROTO_LRU_R_OK);
        } else
            metadump_start(c, lru);
        return;
    case PROTO_LRU_ENABLE:
        /* memcached cannot start a crawler thread that is running. */
        lru_reply(c, disabled ? PROTO_LRU_R_OK : PROTO_LRU_R_START_FAILED);
        atomic_store_explicit(&crawler_disabled, false, memory_order_relaxed);
        return;
    case PROTO_LRU_DISABLE:
        atomic_store_explicit(&crawler_disabled, true, memory_order_relaxed);
        lru_reply(c, PROTO_LRU_R_OK);
        return;
    case PROTO_LRU_SLEEP:
    case PROTO_LRU_TOCRAWL:
        lru_reply(c, lru->reply != PROTO_LRU_R_NONE ? lru->reply : PROTO_LRU_R_OK);
        return;
    case PROTO_LRU_NONE:
        break;
    }
    lru_reply(c, lru->reply != PROTO_LRU_R_NONE ? lru->reply : PROTO_LRU_R_ERROR);
}
