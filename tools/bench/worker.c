/*
 * worker.c: see worker.h.
 *
 * Memory of one worker (all allocated at create, nothing on the hot path
 * but buffer growth):
 *
 *   worker
 *    +- clients[connections]
 *    |    +- conns[nservers]    fd, in/out buffers, FIFO of parts awaiting
 *    |    |                     replies (a reply stream is in request order)
 *    |    +- ops[pipeline]      in-flight operations; free slots on a stack
 *    |    +- keys[pipeline * multiget]
 *    +- dirty[]                 connections with output to write
 *
 * The loop, per iteration: issue operations where a client has room (and,
 * in open loop, a send time has come), write every dirty connection, wait
 * in epoll_pwait2 (nanosecond timeout) until a reply, a send time or the
 * phase end, then read and parse each readable connection. Every reply
 * finishes a part of the operation at the head of that connection's FIFO;
 * the operation completes with its last part and its latency goes into the
 * histograms with the time taken right after the read that completed it.
 *
 * Protocols (--protocol): classic sends one "get k1 k2 ..." per part, which
 * END closes. Meta sends one "mg <key> v f" for a single-key get, whose VA
 * or EN closes the part; a multi-get part is one quiet "mg <key> v f q k"
 * per key and an "mn": hits come back as VA naming their key, misses are
 * silent, and MN closes the part. Every request line draws at most one
 * reply line, so a part of n keys ends at MN or at its (n + 1)-th reply
 * line, whichever comes first: a server that rejects every line (ERROR)
 * cannot shift the replies of one part onto the next.
 *
 * A connection is never shared between threads, so nothing here locks.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "mcproto.h"
#include "rng.h"

#define MAX_EVENTS         64
#define READ_CHUNK         65536
#define CONNECT_TIMEOUT_MS 5000
#define MAX_WAIT_NS        100000000ULL /* re-check stop flags at least every 100 ms */
#define MAX_SHOWN_PROBLEMS 3            /* wrong values / error replies printed per worker */

enum op_kind { OP_GET, OP_SET };

struct op {
    uint64_t t_start; /* send time (closed loop) or scheduled time (open loop), ns */
    uint64_t *keys;   /* multiget ids (a set uses keys[0]) */
    uint32_t nkeys;
    uint32_t parts_left; /* connections that still owe a reply */
    uint8_t kind;        /* enum op_kind */
};

struct part {
    uint32_t op;       /* slot in the client's ops */
    uint32_t nkeys;    /* keys of the operation sent on this connection */
    uint32_t seen;     /* VALUE / VA replies received so far */
    uint32_t answered; /* meta batch: mg lines answered so far (VA, EN or an error) */
};

struct client;

struct conn {
    int fd;
    unsigned server;
    struct client *client;
    struct buf in, out;
    struct part *fifo; /* ring of `pipeline` parts */
    unsigned head, count;
    bool want_out; /* EPOLLOUT is registered (a write was short) */
    bool dirty;    /* on the worker's dirty list */
};

struct client {
    struct conn *conns; /* one per server */
    struct op *ops;     /* pipeline slots */
    uint32_t *free_slots;
    unsigned nfree;
    unsigned inflight;
    uint64_t next_due; /* open loop: the next scheduled send time */
};

struct worker {
    const struct bench_config *c;
    const struct verify_pool *pool;
    unsigned index, nworkers;
    unsigned nclients, nservers, depth;
    struct client *clients;
    struct conn **dirty;
    unsigned ndirty;
    int epfd;
    struct rng rng;
    pthread_t thread;
    bool started;
    _Atomic bool finished;

    /* the phase in progress */
    struct bench_phase *phase;
    struct bench_stats stats;
    struct bench_live live;
    unsigned inflight;
    uint64_t interval_ns; /* open loop: between two sends of one client */
    bool budget_exhausted;
    unsigned problems_shown;
    tc_status_e status;
    char error[256];

    /* scratch for splitting a multi-get by server */
    char (*key_text)[KEYSPACE_MAX_KEY];
    size_t *key_len;
    unsigned *key_server;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Record a fatal failure of the phase (first one wins) and ask every worker to stop. */
static void fail(struct worker *w, const struct conn *cn, const char *what)
{
    if (w->status == TC_OK) {
        w->status = TC_IO_ERROR;
        snprintf(w->error, sizeof(w->error), "%s: %s",
                 cn != NULL ? w->c->servers.servers[cn->server].name : "bench", what);
    }
    atomic_store(&w->phase->stop, true);
}

/* --- connections ------------------------------------------------------------ */

/* A connected, non-blocking TCP socket to server s, or -1 with err set. */
static int dial(const struct dist_server *s, char *err, size_t errlen)
{
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", s->name, strerror(errno));
        return -1;
    }
    int rc = connect(fd, (const struct sockaddr *)&s->addr, s->addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        rc = poll(&p, 1, CONNECT_TIMEOUT_MS);
        if (rc == 0) {
            errno = ETIMEDOUT;
            rc = -1;
        } else if (rc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0) {
            errno = soerr;
            rc = soerr == 0 ? 0 : -1;
        } else {
            rc = -1;
        }
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", s->name, strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void mark_dirty(struct worker *w, struct conn *cn)
{
    if (!cn->dirty) {
        cn->dirty = true;
        w->dirty[w->ndirty++] = cn;
    }
}

static bool set_events(struct worker *w, struct conn *cn, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = cn};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, cn->fd, &ev) != 0) {
        fail(w, cn, "epoll_ctl failed");
        return false;
    }
    cn->want_out = want_out;
    return true;
}

/* Write what is pending; a short write registers EPOLLOUT. False on failure. */
static bool conn_flush(struct worker *w, struct conn *cn)
{
    while (buf_pending(&cn->out) > 0) {
        ssize_t n = send(cn->fd, cn->out.data + cn->out.off, buf_pending(&cn->out), MSG_NOSIGNAL);
        if (n > 0) {
            w->stats.bytes_out += (uint64_t)n;
            buf_consume(&cn->out, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return cn->want_out || set_events(w, cn, true);
        } else {
            char what[128];
            snprintf(what, sizeof(what), "write: %s", strerror(errno));
            fail(w, cn, what);
            return false;
        }
    }
    return !cn->want_out || set_events(w, cn, false);
}

/* --- operations -------------------------------------------------------------- */

static bool claim(struct worker *w)
{
    const struct bench_phase *ph = w->phase;
    if (ph->max_ops == 0)
        return true;
    return atomic_fetch_add_explicit(&w->phase->claimed, 1, memory_order_relaxed) < ph->max_ops;
}

static void push_part(struct worker *w, struct conn *cn, uint32_t slot, uint32_t nkeys)
{
    cn->fifo[(cn->head + cn->count) % w->depth] = (struct part){slot, nkeys, 0, 0};
    cn->count++;
    mark_dirty(w, cn);
}

static void issue_get(struct worker *w, struct client *cl, uint32_t slot)
{
    struct op *op = &cl->ops[slot];
    const struct keyspace *ks = w->phase->keys;
    bool meta = w->c->protocol == MCPROTO_META;
    op->kind = OP_GET;
    op->nkeys = (uint32_t)w->c->multiget;
    op->parts_left = 0;
    bool quiet = op->nkeys > 1; /* meta: a batch of quiet mg closed by mn */
    for (uint32_t i = 0; i < op->nkeys; i++) {
        op->keys[i] = keyspace_next(w->phase->keys, &w->rng);
        w->key_len[i] = keyspace_format(ks, op->keys[i], w->key_text[i]);
        w->key_server[i] = dist_pick(&w->c->servers, w->key_text[i], w->key_len[i]);
    }
    for (unsigned s = 0; s < w->nservers; s++) {
        struct conn *cn = &cl->conns[s];
        uint32_t n = 0;
        for (uint32_t i = 0; i < op->nkeys; i++) {
            if (w->key_server[i] != s)
                continue;
            if (meta) {
                mcproto_meta_get(&cn->out, w->key_text[i], w->key_len[i], quiet);
                n++;
                continue;
            }
            if (n++ == 0)
                mcproto_begin_get(&cn->out);
            mcproto_add_key(&cn->out, w->key_text[i], w->key_len[i]);
        }
        if (n > 0) {
            if (!meta)
                mcproto_end_line(&cn->out);
            else if (quiet)
                mcproto_meta_noop(&cn->out);
            push_part(w, cn, slot, n);
            op->parts_left++;
        }
    }
}

static void issue_set(struct worker *w, struct client *cl, uint32_t slot)
{
    struct op *op = &cl->ops[slot];
    char key[KEYSPACE_MAX_KEY];
    op->kind = OP_SET;
    op->nkeys = 1;
    op->parts_left = 1;
    op->keys[0] = keyspace_next(w->phase->keys, &w->rng);
    size_t klen = keyspace_format(w->phase->keys, op->keys[0], key);
    struct conn *cn = &cl->conns[dist_pick(&w->c->servers, key, klen)];
    uint32_t len = sizedist_sample(&w->c->sizes, &w->rng);
    uint32_t version = (uint32_t)rng_next(&w->rng);
    char *value = w->c->protocol == MCPROTO_META
                      ? mcproto_meta_begin_set(&cn->out, key, klen, version, w->c->ttl, len)
                      : mcproto_begin_set(&cn->out, key, klen, version, w->c->ttl, len);
    verify_fill(w->pool, key, klen, version, value, len);
    push_part(w, cn, slot, 1);
}

static void issue(struct worker *w, struct client *cl, uint64_t t_start)
{
    uint32_t slot = cl->free_slots[--cl->nfree];
    cl->ops[slot].t_start = t_start;
    double g = w->phase->get_fraction;
    if (g >= 1.0 || (g > 0.0 && rng_double(&w->rng) < g))
        issue_get(w, cl, slot);
    else
        issue_set(w, cl, slot);
    cl->inflight++;
    w->inflight++;
}

/*
 * Issue what the client may send now: closed loop, until the pipeline is
 * full; open loop, every operation scheduled before now (and before the
 * phase end) while the pipeline has room. Returns the next time the client
 * will want to send (open loop, room left), or UINT64_MAX.
 */
static uint64_t fill_client(struct worker *w, struct client *cl, uint64_t now, uint64_t end)
{
    while (cl->inflight < w->depth && !w->budget_exhausted) {
        uint64_t t = now;
        if (w->interval_ns > 0) {
            if (cl->next_due >= end)
                return UINT64_MAX;
            if (cl->next_due > now)
                return cl->next_due;
            t = cl->next_due;
            hist_record(&w->stats.send_lag, now - t);
        } else if (now >= end) {
            return UINT64_MAX;
        }
        if (!claim(w)) {
            w->budget_exhausted = true;
            break;
        }
        issue(w, cl, t);
        cl->next_due += w->interval_ns;
    }
    return UINT64_MAX;
}

static void complete(struct worker *w, struct client *cl, uint32_t slot, uint64_t now)
{
    struct op *op = &cl->ops[slot];
    uint64_t lat = now > op->t_start ? now - op->t_start : 0;
    struct bench_stats *s = &w->stats;
    s->ops++;
    hist_record(&s->lat_all, lat);
    if (op->kind == OP_GET) {
        s->gets++;
        s->keys_requested += op->nkeys;
        hist_record(&s->lat_get, lat);
    } else {
        s->sets++;
        hist_record(&s->lat_set, lat);
    }
    cl->free_slots[cl->nfree++] = slot;
    cl->inflight--;
    w->inflight--;
}

/* --- replies ----------------------------------------------------------------- */

static void show_problem(struct worker *w, const struct conn *cn, const char *fmt, const char *a,
                         size_t alen)
{
    if (w->problems_shown >= MAX_SHOWN_PROBLEMS)
        return;
    w->problems_shown++;
    fprintf(stderr, "%stiercache-bench: %s: ", isatty(2) ? "\r\033[K" : "",
            w->c->servers.servers[cn->server].name);
    fprintf(stderr, fmt, (int)(alen > 120 ? 120 : alen), a);
    fprintf(stderr, "%s\n",
            w->problems_shown == MAX_SHOWN_PROBLEMS ? " (further ones are counted, not shown)"
                                                    : "");
}

/*
 * A VALUE or VA reply of a get: a hit if the key was asked for here and the
 * bytes verify. A VA that names no key answers a single-key mg: its key is
 * the one asked for; in a multi-get it cannot be told apart, so it is wrong.
 */
static void check_value(struct worker *w, struct conn *cn, const struct op *op,
                        const struct mcproto_reply *r)
{
    char own[KEYSPACE_MAX_KEY];
    const char *key = r->key;
    size_t key_len = r->key_len;
    uint64_t id;
    bool asked = false;
    if (key == NULL && op->nkeys == 1) {
        key_len = keyspace_format(w->phase->keys, op->keys[0], own);
        key = own;
        asked = true;
    } else if (key != NULL && keyspace_parse(&w->c->keys, key, key_len, &id)) {
        for (uint32_t i = 0; i < op->nkeys && !asked; i++)
            asked = op->keys[i] == id;
    }
    if (asked && verify_check(w->pool, key, key_len, r->flags, r->data, r->data_len)) {
        w->stats.hits++;
        return;
    }
    w->stats.wrong++;
    if (key == NULL)
        show_problem(w, cn, "a value that names no key in a multi-get%.*s", "", 0);
    else
        show_problem(
            w, cn, asked ? "wrong value for key %.*s" : "a value for key %.*s, which was not asked",
            key, key_len);
}

/* The length of the first line of data[0..len), without its line end (for quoting it). */
static size_t line_length(const char *data, size_t len)
{
    size_t n = 0;
    while (n < len && data[n] != '\r' && data[n] != '\n')
        n++;
    return n;
}

/* What a reply does to the part at the head of a connection's FIFO. */
enum verdict {
    PART_OPEN,  /* the part expects more replies */
    PART_DONE,  /* the part is complete */
    PART_FATAL, /* the reply makes no sense here; the phase has failed */
};

static bool is_error(const struct mcproto_reply *r)
{
    return r->type == MCPROTO_ERROR || r->type == MCPROTO_CLIENT_ERROR ||
           r->type == MCPROTO_SERVER_ERROR;
}

/* Count an error reply (the line starts at data) and show the first few. */
static void error_reply(struct worker *w, const struct conn *cn, const char *data, size_t used)
{
    w->stats.errors++;
    show_problem(w, cn, "error reply '%.*s'", data, line_length(data, used));
}

/* A get part is over: the keys that got no value are misses. */
static void count_misses(struct worker *w, const struct part *p)
{
    w->stats.misses += p->nkeys > p->seen ? p->nkeys - p->seen : 0;
}

static enum verdict unexpected(struct worker *w, const struct conn *cn, const struct op *op,
                               const struct mcproto_reply *r)
{
    char what[128];
    snprintf(what, sizeof(what), "reply %s to a %s", mcproto_reply_name(r->type),
             op->kind == OP_GET ? "get" : "set");
    fail(w, cn, what);
    return PART_FATAL;
}

/* A classic reply: VALUE* END to a get, STORED to a set; anything else is an error. */
static enum verdict classic_reply(struct worker *w, struct conn *cn, struct part *p,
                                  const struct op *op, const struct mcproto_reply *r,
                                  const char *data, size_t used)
{
    if (op->kind == OP_GET && r->type == MCPROTO_VALUE) {
        check_value(w, cn, op, r);
        p->seen++;
        return PART_OPEN;
    }
    if (op->kind == OP_GET && r->type == MCPROTO_END) {
        count_misses(w, p);
        return PART_DONE;
    }
    if (op->kind == OP_SET && r->type == MCPROTO_STORED)
        return PART_DONE;
    if (is_error(r) || (op->kind == OP_SET && r->type != MCPROTO_VALUE && r->type != MCPROTO_END)) {
        error_reply(w, cn, data, used);
        if (op->kind == OP_GET)
            count_misses(w, p);
        return PART_DONE;
    }
    return unexpected(w, cn, op, r);
}

/*
 * A meta reply. A set: HD, else NS / EX / NF / an error line, counted as
 * errors like classic NOT_STORED. A single-key get: VA or EN (or an error)
 * is the whole part. A multi-get batch (see the top of the file): VA, EN
 * or an error answers one mg, MN or the line after the last mg's answer
 * closes the batch.
 */
static enum verdict meta_reply(struct worker *w, struct conn *cn, struct part *p,
                               const struct op *op, const struct mcproto_reply *r, const char *data,
                               size_t used)
{
    if (op->kind == OP_SET) {
        if (r->type == MCPROTO_HD)
            return PART_DONE;
        if (!is_error(r) && r->type != MCPROTO_NS && r->type != MCPROTO_EX && r->type != MCPROTO_NF)
            return unexpected(w, cn, op, r);
        error_reply(w, cn, data, used);
        return PART_DONE;
    }
    bool batch = op->nkeys > 1;
    if (batch && (r->type == MCPROTO_MN || p->answered == p->nkeys)) {
        if (r->type != MCPROTO_MN && !is_error(r))
            return unexpected(w, cn, op, r);
        if (r->type != MCPROTO_MN)
            error_reply(w, cn, data, used);
        count_misses(w, p);
        return PART_DONE;
    }
    if (r->type == MCPROTO_VA) {
        check_value(w, cn, op, r);
        p->seen++;
    } else if (is_error(r)) {
        error_reply(w, cn, data, used);
    } else if (r->type != MCPROTO_EN) {
        return unexpected(w, cn, op, r);
    }
    p->answered++;
    if (batch)
        return PART_OPEN;
    count_misses(w, p);
    return PART_DONE;
}

/* Parse every complete reply in cn's input. False on a fatal protocol failure. */
static bool conn_parse(struct worker *w, struct conn *cn, uint64_t now)
{
    struct client *cl = cn->client;
    bool meta = w->c->protocol == MCPROTO_META;
    while (buf_pending(&cn->in) > 0) {
        const char *data = cn->in.data + cn->in.off;
        if (cn->count == 0) {
            fail(w, cn, "sent bytes nobody asked for");
            return false;
        }
        struct mcproto_reply r;
        ssize_t used = meta ? mcproto_parse_meta_reply(data, buf_pending(&cn->in), &r)
                            : mcproto_parse_reply(data, buf_pending(&cn->in), &r);
        if (used == 0)
            return true;
        if (used < 0) {
            char what[160];
            size_t n = line_length(data, buf_pending(&cn->in));
            snprintf(what, sizeof(what), "malformed reply '%.*s'", (int)(n > 80 ? 80 : n), data);
            fail(w, cn, what);
            return false;
        }
        struct part *p = &cn->fifo[cn->head];
        struct op *op = &cl->ops[p->op];
        enum verdict v = meta ? meta_reply(w, cn, p, op, &r, data, (size_t)used)
                              : classic_reply(w, cn, p, op, &r, data, (size_t)used);
        if (v == PART_FATAL)
            return false;
        buf_consume(&cn->in, (size_t)used);
        if (v == PART_DONE) {
            uint32_t slot = p->op;
            cn->head = (cn->head + 1) % w->depth;
            cn->count--;
            if (--op->parts_left == 0)
                complete(w, cl, slot, now);
        }
    }
    return true;
}

/* Read what the socket has and parse it. False on failure (closed, error, garbage). */
static bool conn_read(struct worker *w, struct conn *cn, uint64_t *last_reply)
{
    for (;;) {
        buf_reserve(&cn->in, READ_CHUNK);
        size_t room = cn->in.cap - cn->in.len;
        ssize_t n = read(cn->fd, cn->in.data + cn->in.len, room);
        if (n > 0) {
            uint64_t now = now_ns();
            cn->in.len += (size_t)n;
            w->stats.bytes_in += (uint64_t)n;
            *last_reply = now;
            if (!conn_parse(w, cn, now))
                return false;
            if ((size_t)n < room)
                return true;
        } else if (n == 0) {
            fail(w, cn, "connection closed by the server");
            return false;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return true;
        } else {
            char what[128];
            snprintf(what, sizeof(what), "read: %s", strerror(errno));
            fail(w, cn, what);
            return false;
        }
    }
}

/* --- the phase loop ------------------------------------------------------------ */

/* epoll_pwait2 where the kernel has it (5.11+), else epoll_wait rounded up to 1 ms. */
static int wait_events(int epfd, struct epoll_event *ev, uint64_t timeout_ns)
{
    static _Atomic bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {(time_t)(timeout_ns / 1000000000ULL),
                              (long)(timeout_ns % 1000000000ULL)};
        int n = epoll_pwait2(epfd, ev, MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store(&no_pwait2, true);
    }
    return epoll_wait(epfd, ev, MAX_EVENTS, (int)((timeout_ns + 999999) / 1000000));
}

static void setup_phase(struct worker *w, struct bench_phase *ph)
{
    w->phase = ph;
    report_stats_init(&w->stats, ph->name);
    w->budget_exhausted = false;
    w->status = TC_OK;
    w->error[0] = '\0';
    w->problems_shown = 0;
    w->interval_ns = 0;
    if (ph->rate > 0) {
        /* every client sends at rate / total_clients, their schedules evenly staggered */
        double total = (double)w->nworkers * (double)w->nclients;
        double interval = total * 1e9 / ph->rate;
        w->interval_ns = interval < 1.0 ? 1 : (uint64_t)interval;
        for (unsigned i = 0; i < w->nclients; i++) {
            double g = (double)(w->index * w->nclients + i);
            w->clients[i].next_due = ph->start_ns + (uint64_t)(interval * g / total);
        }
    }
}

/* Open loop: count the sends that were due before the end but never made. */
static void count_unsent(struct worker *w, uint64_t end)
{
    if (w->interval_ns == 0 || end == UINT64_MAX)
        return;
    for (unsigned i = 0; i < w->nclients; i++) {
        uint64_t due = w->clients[i].next_due;
        if (due < end)
            w->stats.unsent += (end - due + w->interval_ns - 1) / w->interval_ns;
    }
}

/* A connection that owes replies (to name the server that stopped answering). */
static const struct conn *silent_conn(const struct worker *w)
{
    for (unsigned i = 0; i < w->nclients; i++) {
        for (unsigned s = 0; s < w->nservers; s++) {
            if (w->clients[i].conns[s].count > 0)
                return &w->clients[i].conns[s];
        }
    }
    return NULL;
}

static void run_phase(struct worker *w)
{
    struct bench_phase *ph = w->phase;
    struct epoll_event ev[MAX_EVENTS];
    bool stopping = false;
    uint64_t last_reply = now_ns();
    while (w->status == TC_OK) {
        uint64_t now = now_ns();
        uint64_t wake = now + MAX_WAIT_NS;
        if (!stopping && atomic_load_explicit(&ph->stop, memory_order_relaxed)) {
            stopping = true;
            count_unsent(w, now < ph->end_ns ? now : ph->end_ns);
        }
        if (!stopping) {
            for (unsigned i = 0; i < w->nclients; i++) {
                uint64_t due = fill_client(w, &w->clients[i], now, ph->end_ns);
                if (due < wake)
                    wake = due;
            }
            if (ph->end_ns < wake)
                wake = ph->end_ns;
            if (now >= ph->end_ns || w->budget_exhausted) {
                stopping = true;
                count_unsent(w, ph->end_ns);
            }
        }
        for (unsigned i = 0; i < w->ndirty; i++) {
            w->dirty[i]->dirty = false;
            if (!conn_flush(w, w->dirty[i]))
                break;
        }
        w->ndirty = 0;
        report_publish(&w->live, &w->stats);
        if (w->status != TC_OK || (stopping && w->inflight == 0))
            break;
        if (w->inflight == 0)
            last_reply = now;
        else if (now - last_reply >= WORKER_REPLY_TIMEOUT_NS)
            fail(w, silent_conn(w), "no reply for 10 s");
        else if (last_reply + WORKER_REPLY_TIMEOUT_NS < wake)
            wake = last_reply + WORKER_REPLY_TIMEOUT_NS;
        if (w->status != TC_OK)
            break;
        int n = wait_events(w->epfd, ev, wake > now ? wake - now : 0);
        if (n < 0 && errno != EINTR) {
            fail(w, NULL, "epoll_wait failed");
            break;
        }
        for (int i = 0; i < n && w->status == TC_OK; i++) {
            struct conn *cn = ev[i].data.ptr;
            if ((ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !conn_read(w, cn, &last_reply))
                break;
            if ((ev[i].events & EPOLLOUT) && !conn_flush(w, cn))
                break;
        }
    }
    report_publish(&w->live, &w->stats);
}

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    /* Wake-ups on time: the default 50 us timer slack would delay open-loop sends. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    run_phase(w);
    atomic_store(&w->finished, true);
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------------ */

tc_status_e worker_create(const struct bench_config *config, const struct verify_pool *pool,
                          unsigned index, unsigned nworkers, struct worker **out, char *err,
                          size_t errlen)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return TC_NO_MEMORY;
    w->c = config;
    w->pool = pool;
    w->index = index;
    w->nworkers = nworkers;
    rng_seed(&w->rng, config->seed * 0x9e3779b97f4a7c15ULL + index + 1);
    w->nclients = (unsigned)config->connections;
    w->nservers = config->servers.n;
    w->depth = (unsigned)config->pipeline;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->clients = calloc(w->nclients, sizeof(*w->clients));
    w->dirty = calloc((size_t)w->nclients * w->nservers, sizeof(*w->dirty));
    w->key_text = calloc(config->multiget, sizeof(*w->key_text));
    w->key_len = calloc(config->multiget, sizeof(*w->key_len));
    w->key_server = calloc(config->multiget, sizeof(*w->key_server));
    if (w->epfd < 0 || w->clients == NULL || w->dirty == NULL || w->key_text == NULL ||
        w->key_len == NULL || w->key_server == NULL) {
        snprintf(err, errlen, "out of memory or file descriptors");
        worker_destroy(&w);
        return TC_NO_MEMORY;
    }
    for (unsigned i = 0; i < w->nclients; i++) {
        struct client *cl = &w->clients[i];
        cl->conns = calloc(w->nservers, sizeof(*cl->conns));
        cl->ops = calloc(w->depth, sizeof(*cl->ops));
        cl->free_slots = calloc(w->depth, sizeof(*cl->free_slots));
        uint64_t *keys = calloc((size_t)w->depth * config->multiget, sizeof(*keys));
        if (cl->conns == NULL || cl->ops == NULL || cl->free_slots == NULL || keys == NULL) {
            free(keys);
            snprintf(err, errlen, "out of memory");
            worker_destroy(&w);
            return TC_NO_MEMORY;
        }
        for (unsigned d = 0; d < w->depth; d++) {
            cl->ops[d].keys = keys + (size_t)d * config->multiget;
            cl->free_slots[d] = w->depth - 1 - d;
        }
        cl->nfree = w->depth;
        for (unsigned s = 0; s < w->nservers; s++)
            cl->conns[s].fd = -1;
        for (unsigned s = 0; s < w->nservers; s++) {
            struct conn *cn = &cl->conns[s];
            cn->server = s;
            cn->client = cl;
            buf_init(&cn->in);
            buf_init(&cn->out);
            cn->fifo = calloc(w->depth, sizeof(*cn->fifo));
            if (cn->fifo == NULL) {
                snprintf(err, errlen, "out of memory");
                worker_destroy(&w);
                return TC_NO_MEMORY;
            }
            cn->fd = dial(&config->servers.servers[s], err, errlen);
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = cn};
            bool ok = cn->fd >= 0;
            if (ok && epoll_ctl(w->epfd, EPOLL_CTL_ADD, cn->fd, &ev) != 0) {
                snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
                ok = false;
            }
            if (!ok) {
                worker_destroy(&w);
                return TC_IO_ERROR;
            }
        }
    }
    *out = w;
    return TC_OK;
}

void worker_destroy(struct worker **pw)
{
    if (pw == NULL || *pw == NULL)
        return;
    struct worker *w = *pw;
    if (w->started)
        pthread_join(w->thread, NULL);
    for (unsigned i = 0; w->clients != NULL && i < w->nclients; i++) {
        struct client *cl = &w->clients[i];
        for (unsigned s = 0; cl->conns != NULL && s < w->nservers; s++) {
            struct conn *cn = &cl->conns[s];
            if (cn->fd >= 0)
                close(cn->fd);
            buf_deinit(&cn->in);
            buf_deinit(&cn->out);
            free(cn->fifo);
        }
        free(cl->conns);
        if (cl->ops != NULL)
            free(cl->ops[0].keys);
        free(cl->ops);
        free(cl->free_slots);
    }
    free(w->clients);
    free(w->dirty);
    free(w->key_text);
    free(w->key_len);
    free(w->key_server);
    if (w->epfd >= 0)
        close(w->epfd);
    free(w);
    *pw = NULL;
}

tc_status_e worker_start(struct worker *w, struct bench_phase *phase)
{
    setup_phase(w, phase);
    atomic_store(&w->finished, false);
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        snprintf(w->error, sizeof(w->error), "cannot create a thread");
        atomic_store(&w->finished, true);
        return TC_IO_ERROR;
    }
    w->started = true;
    return TC_OK;
}

bool worker_finished(const struct worker *w)
{
    return atomic_load(&w->finished);
}

tc_status_e worker_join(struct worker *w)
{
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = false;
    }
    return w->status;
}

const struct bench_stats *worker_stats(const struct worker *w)
{
    return &w->stats;
}

const struct bench_live *worker_live(const struct worker *w)
{
    return &w->live;
}

const char *worker_error(const struct worker *w)
{
    return w->error;
}
