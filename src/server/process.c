/*
 * process.c: commands against the engine (see process.h). Replies follow
 * memcached 1.6 exactly; where memcached has a quirk we reproduce it and
 * say so next to the code.
 *
 * TC_BUSY from the engine (RAM has no room yet while the flash writer
 * catches up) makes a command return "not done": the connection runs it
 * again a moment later (conn_retry_later), and only after two seconds of
 * that does the client get an out-of-memory error.
 */
#include "process.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "conn.h"
#include "log.h"
#include "parse.h"
#include "prefix.h"
#include "server.h"
#include "stats.h"

static void reply(struct conn *c, bool noreply, enum proto_reply r)
{
    if (!noreply)
        conn_reply(c, r);
}

/*
 * Multigets. Before any key is looked up the line is checked whole: past
 * --max-multiget-keys keys it is refused with memcached's reply for a get
 * it cannot build, and a key over 250 bytes makes memcached's CLIENT_ERROR
 * after the keys before it were looked up (their values dropped, as
 * memcached drops them); whichever comes first in the line decides. A line
 * that passes is served in slices (GET_KEYS_PER_TURN keys or
 * GET_BYTES_PER_TURN bytes of values, whichever comes first), and stops
 * while the connection's unsent output is at --max-conn-output: the rest of
 * it then runs as a stream (conn_stream), after the worker's other
 * connections and as the client reads. Nothing can fail after the first
 * slice, so replies already sent are never taken back.
 */
#define GET_KEYS_PER_TURN  256
#define GET_BYTES_PER_TURN (256u << 10) /* copies of small values: ~50 us */

struct get_job {
    const char *pos, *end; /* keys not looked up yet (in the connection's read buffer) */
    cache_time_t exptime;  /* gat/gats */
    bool touch, with_cas;
};

enum get_progress { GET_DONE, GET_PAUSED, GET_BUSY };

/* Look up keys from job->pos on and append their values, until the line
 * is done, a slice was looked up, or the output reached the cap. GET_BUSY:
 * the engine had no room yet (retry job->pos later). */
static enum get_progress get_keys(struct conn *c, struct get_job *job)
{
    struct worker *w = conn_worker(c);
    size_t cap = (size_t)w->srv->set->max_conn_output;
    size_t start = conn_output_queued(c);
    unsigned looked_up = 0;
    struct proto_token key;
    for (;;) {
        const char *at = job->pos;
        if (!proto_next_key(&job->pos, job->end, &key))
            return GET_DONE;
        size_t queued = conn_output_queued(c);
        if (looked_up == GET_KEYS_PER_TURN || queued - start >= GET_BYTES_PER_TURN ||
            (cap > 0 && queued >= cap)) {
            job->pos = at;
            return GET_PAUSED;
        }
        struct item *it;
        tc_status_e st = job->touch ? cache_get_touch(w->cw, key.s, key.n, job->exptime, &it)
                                    : cache_get(w->cw, key.s, key.n, &it);
        if (st == TC_BUSY && conn_retry_later(c)) {
            job->pos = at;
            return GET_BUSY;
        }
        looked_up++;
        if (atomic_load_explicit(&w->srv->detail_enabled, memory_order_relaxed))
            prefix_record_get(w->srv->prefix, key.s, key.n, st == TC_OK);
        if (st == TC_OK)
            conn_write_value(c, it, job->with_cas);
    }
}

static enum conn_stream_state get_step(struct conn *c, void *arg)
{
    switch (get_keys(c, arg)) {
    case GET_DONE:
        conn_reply(c, PROTO_R_END);
        conn_commit(c);
        return CONN_STREAM_DONE;
    case GET_BUSY:
        return CONN_STREAM_WAIT; /* the same key again in a moment */
    case GET_PAUSED:
        break;
    }
    return CONN_STREAM_YIELD;
}

/* The line has a key over 250 bytes: look up the keys before it (gat
 * touches them), drop every reply not yet sent, then the error. */
static bool get_bad_key(struct conn *c, struct get_job *job)
{
    struct worker *w = conn_worker(c);
    struct proto_token key;
    while (proto_next_key(&job->pos, job->end, &key) && key.n <= PROTO_KEY_MAX) {
        struct item *it;
        tc_status_e st = job->touch ? cache_get_touch(w->cw, key.s, key.n, job->exptime, &it)
                                    : cache_get(w->cw, key.s, key.n, &it);
        if (st == TC_BUSY && conn_retry_later(c))
            return false; /* the whole line runs again */
        if (atomic_load_explicit(&w->srv->detail_enabled, memory_order_relaxed))
            prefix_record_get(w->srv->prefix, key.s, key.n, st == TC_OK);
        if (st == TC_OK)
            cache_item_unref(w->srv->cache, it);
    }
    conn_discard_output(c);
    conn_reply(c, PROTO_R_CLIENT_ERROR_FORMAT);
    return true;
}

static bool process_get(struct conn *c, const struct request *req)
{
    struct worker *w = conn_worker(c);
    struct get_job job = {
        .pos = req->keys,
        .end = req->keys_end,
        .touch = req->cmd == PROTO_CMD_GAT || req->cmd == PROTO_CMD_GATS,
        .with_cas = req->cmd == PROTO_CMD_GETS || req->cmd == PROTO_CMD_GATS,
    };
    job.exptime = job.touch ? cache_realtime(w->srv->cache, req->exptime) : 0;

    uint64_t max_keys = w->srv->set->max_multiget_keys;
    uint64_t nkeys = 0;
    const char *pos = job.pos;
    struct proto_token key;
    while (proto_next_key(&pos, job.end, &key)) {
        if (key.n > PROTO_KEY_MAX)
            return get_bad_key(c, &job);
        if (max_keys > 0 && ++nkeys > max_keys) {
            /* memcached's answer to a get whose reply it cannot build: it
             * drops the replies not yet sent, as for a bad key. */
            SCTR_INC(w->st.get_too_many_keys);
            conn_discard_output(c);
            conn_reply(c, PROTO_R_SERVER_ERROR_OOM_GET);
            return true;
        }
    }

    switch (get_keys(c, &job)) {
    case GET_BUSY:
        return false; /* the whole line runs again; its output so far is dropped */
    case GET_DONE:
        conn_reply(c, PROTO_R_END);
        conn_commit(c); /* memcached sends after every get */
        return true;
    case GET_PAUSED:
        break;
    }
    struct get_job *rest = malloc(sizeof(*rest));
    if (rest == NULL) {
        conn_close_now(c); /* a half-sent get cannot be answered otherwise */
        return true;
    }
    *rest = job;
    conn_commit(c); /* what is queued goes out while the rest is looked up */
    conn_stream(c, get_step, free, rest);
    size_t cap = (size_t)w->srv->set->max_conn_output;
    conn_stream_set_limit(c, cap > 0 ? cap : SIZE_MAX);
    return true;
}

static enum cache_store_op store_op(enum proto_cmd cmd)
{
    switch (cmd) {
    case PROTO_CMD_ADD:
        return CACHE_ADD;
    case PROTO_CMD_REPLACE:
        return CACHE_REPLACE;
    case PROTO_CMD_APPEND:
        return CACHE_APPEND;
    case PROTO_CMD_PREPEND:
        return CACHE_PREPEND;
    case PROTO_CMD_CAS:
        return CACHE_CAS;
    default:
        return CACHE_SET;
    }
}

static bool process_update(struct conn *c, const struct request *req)
{
    struct worker *w = conn_worker(c);
    struct cache *cache = w->srv->cache;
    enum cache_store_op op = store_op(req->cmd);
    struct item *it;
    tc_status_e st = cache_alloc(w->cw, req->key.s, req->key.n, req->flags,
                                 cache_realtime(cache, req->exptime), (uint32_t)req->vlen, &it);
    if (st == TC_BUSY) {
        if (conn_retry_later(c))
            return false; /* the value is not read yet: the line runs again */
        st = TC_NO_MEMORY;
    }
    if (atomic_load_explicit(&w->srv->detail_enabled, memory_order_relaxed))
        prefix_record_set(w->srv->prefix, req->key.s, req->key.n);
    if (st == TC_OK) {
        conn_read_value(c, it, op, req->cas, req->noreply);
        return true;
    }
    reply(c, req->noreply,
          st == TC_TOO_LARGE ? PROTO_R_SERVER_ERROR_TOO_LARGE : PROTO_R_SERVER_ERROR_OOM_STORE);
    conn_swallow(c, (size_t)req->vlen + 2);
    /* A failed set must not leave the old value readable (memcached). */
    if (op == CACHE_SET)
        cache_delete(w->cw, req->key.s, req->key.n);
    return true;
}

bool process_value_read(struct conn *c, struct item *it, enum cache_store_op op, uint64_t cas,
                        bool noreply, bool valid)
{
    struct worker *w = conn_worker(c);
    if (!valid) {
        reply(c, noreply, PROTO_R_CLIENT_ERROR_DATA_CHUNK);
        cache_item_unref(w->srv->cache, it);
        return true;
    }
    tc_status_e st = cache_store(w->cw, it, op, cas, NULL);
    if (st == TC_BUSY && conn_retry_later(c))
        return false;
    cache_item_unref(w->srv->cache, it);
    enum proto_reply r;
    switch (st) {
    case TC_OK:
        r = PROTO_R_STORED;
        break;
    case TC_EXISTS:
        r = PROTO_R_EXISTS;
        break;
    case TC_NOT_FOUND:
        r = PROTO_R_NOT_FOUND;
        break;
    default:
        r = PROTO_R_NOT_STORED; /* incl. append past the size limit, as memcached */
        break;
    }
    reply(c, noreply, r);
    return true;
}

static bool process_arith(struct conn *c, const struct request *req)
{
    struct worker *w = conn_worker(c);
    uint64_t v;
    tc_status_e st = cache_arith(w->cw, req->key.s, req->key.n, req->cmd == PROTO_CMD_INCR,
                                 req->delta, &v, NULL);
    if (st == TC_BUSY && conn_retry_later(c))
        return false;
    switch (st) {
    case TC_OK:
        if (!req->noreply) {
            char buf[24];
            conn_write(c, buf, compose_number(buf, v));
        }
        break;
    case TC_NOT_FOUND:
        reply(c, req->noreply, PROTO_R_NOT_FOUND);
        break;
    case TC_NON_NUMERIC:
        reply(c, req->noreply, PROTO_R_CLIENT_ERROR_NON_NUMERIC);
        break;
    default:
        reply(c, req->noreply, PROTO_R_SERVER_ERROR_OOM);
        break;
    }
    return true;
}

static bool process_touch(struct conn *c, const struct request *req)
{
    struct worker *w = conn_worker(c);
    tc_status_e st =
        cache_touch(w->cw, req->key.s, req->key.n, cache_realtime(w->srv->cache, req->exptime));
    if (st == TC_BUSY && conn_retry_later(c))
        return false;
    reply(c, req->noreply,
          st == TC_OK          ? PROTO_R_TOUCHED
          : st == TC_NOT_FOUND ? PROTO_R_NOT_FOUND
                               : PROTO_R_SERVER_ERROR_OOM);
    return true;
}

static void process_delete(struct conn *c, const struct request *req)
{
    struct worker *w = conn_worker(c);
    if (atomic_load_explicit(&w->srv->detail_enabled, memory_order_relaxed))
        prefix_record_delete(w->srv->prefix, req->key.s, req->key.n);
    tc_status_e st = cache_delete(w->cw, req->key.s, req->key.n);
    reply(c, req->noreply,
          st == TC_OK          ? PROTO_R_DELETED
          : st == TC_NOT_FOUND ? PROTO_R_NOT_FOUND
                               : PROTO_R_SERVER_ERROR_OOM);
}

static void process_flush_all(struct conn *c, const struct request *req)
{
    struct worker *w = conn_worker(c);
    if (req->has_delay && req->exptime > 0) {
        cache_time_t when = cache_realtime(w->srv->cache, req->exptime);
        /* memcached flushes what was stored up to the second before the one
         * given (so "flush_all 1" is immediate); a unix time before its start
         * makes flush_all a no-op. */
        if (when != 1)
            cache_flush(w->cw, when - 1);
    } else {
        cache_flush(w->cw, 0);
    }
    reply(c, req->noreply, PROTO_R_OK);
}

static void process_verbosity(struct conn *c, const struct request *req)
{
    struct server *srv = conn_worker(c)->srv;
    int level = req->level > 2 ? 2 : (int)req->level;
    atomic_store(&srv->verbosity, level);
    tc_log_set_level(TC_LOG_WARN + level);
    reply(c, req->noreply, PROTO_R_OK);
}

static void process_shutdown(struct conn *c, const struct request *req)
{
    struct server *srv = conn_worker(c)->srv;
    if (!srv->set->enable_shutdown) {
        conn_reply(c, PROTO_R_ERROR_SHUTDOWN_DISABLED);
        return;
    }
    if (req->reply != PROTO_R_NONE) {
        conn_reply(c, req->reply);
        return;
    }
    tc_log(TC_LOG_INFO, "shutdown command received");
    conn_close_now(c);
    server_request_stop(srv);
}

bool process_request(struct conn *c, const struct request *req)
{
    switch (req->cmd) {
    case PROTO_CMD_GET:
    case PROTO_CMD_GETS:
    case PROTO_CMD_GAT:
    case PROTO_CMD_GATS:
        return process_get(c, req);
    case PROTO_CMD_SET:
    case PROTO_CMD_ADD:
    case PROTO_CMD_REPLACE:
    case PROTO_CMD_APPEND:
    case PROTO_CMD_PREPEND:
    case PROTO_CMD_CAS:
        return process_update(c, req);
    case PROTO_CMD_INCR:
    case PROTO_CMD_DECR:
        return process_arith(c, req);
    case PROTO_CMD_TOUCH:
        return process_touch(c, req);
    case PROTO_CMD_DELETE:
        process_delete(c, req);
        break;
    case PROTO_CMD_FLUSH_ALL:
        process_flush_all(c, req);
        break;
    case PROTO_CMD_VERSION: {
        static const char v[] = "VERSION " TC_PROTOCOL_VERSION "-tiercache-" TC_VERSION "\r\n";
        conn_write(c, v, sizeof(v) - 1);
        break;
    }
    case PROTO_CMD_VERBOSITY:
        process_verbosity(c, req);
        break;
    case PROTO_CMD_QUIT:
        conn_close_after_write(c);
        break;
    case PROTO_CMD_SHUTDOWN:
        process_shutdown(c, req);
        break;
    case PROTO_CMD_STATS:
        stats_write(c, req->stats);
        break;
    case PROTO_CMD_MN:
        conn_reply(c, PROTO_R_MN);
        conn_commit(c);
        break;
    case PROTO_CMD_REPLY:
        reply(c, req->noreply, req->reply);
        break;
    case PROTO_CMD_CLOSE:
        conn_close_now(c);
        break;
    case PROTO_CMD_NONE:
        conn_reply(c, PROTO_R_ERROR);
        break;
    }
    return true;
}
