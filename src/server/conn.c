/*
 * conn.c: connection I/O and the per-connection state machine.
 *
 *   CMD ----(storage command)----> VALUE ----(value + "\r\n" read)----> CMD
 *    \---(value too large etc.)--> SWALLOW --(bytes thrown away)------> CMD
 *
 * A read event reads once (16 KiB, like memcached, so a command line split
 * the same way is judged the same way), then up to -R commands are served
 * from the buffered input; their replies go to an evbuffer that is written
 * with one writev. While the output cannot all be written, the connection
 * stops reading: a client that sends but never reads is held to one batch
 * of replies, and TCP pushes back on it. After -R commands with more input
 * buffered the connection yields to the others and resumes on the next loop
 * turn.
 *
 * A streamed reply (conn_stream: lru_crawler metadump) stops reading and
 * serving until it is complete: each event appends slices while the output
 * is under STREAM_OUT_LOW, sends them, and comes back on the next loop turn
 * (or when the socket takes more), so other connections get their turns and
 * a client that does not read holds up only its own stream.
 *
 * Read buffers are taken from a per-worker cache when input arrives and
 * given back when it has all been consumed, so idle connections hold none.
 * A value bigger than what is buffered is read straight into its item.
 *
 * Limits against clients that hold on to the server (checked once a second
 * by each worker's timer, conn_check_timeouts(), except the line limits):
 *
 *   - Idle (--idle-timeout=N, memcached's -o idle_timeout): a connection
 *     that is waiting for a command (CMD state: nothing to send, no busy
 *     retry, no stream), with no complete command line for more than N
 *     seconds (by the engine's one-second clock), is closed without a word
 *     and counted in idle_kicks (TCP connections only, as memcached: not
 *     on a unix socket). A command line that trickles in and never ends
 *     does not count as a command. As memcached kicks only in
 *     conn_read/conn_new_cmd, a connection in the middle of a value (or
 *     swallowing one), or whose replies are waiting for the client to read
 *     them, is never idle; unlike memcached, its idle time starts when its
 *     last reply was sent, not when the command came (a reply that took
 *     longer than N to read does not get the client kicked at once).
 *   - Output (--max-conn-output=SIZE): a get-family command stops looking
 *     up keys while the connection's unsent output is at least SIZE and
 *     goes on as the client reads (it becomes a stream, see below), so a
 *     connection holds at most SIZE plus one value plus one batch of other
 *     replies. A connection whose socket has taken none of its bytes for
 *     the stall limit (the idle timeout if set, else 10 s) while its unsent
 *     output is at least SIZE is closed and counted in conn_output_closes.
 *     The stall limit is measured from the later of the last byte the
 *     socket took and the moment writing blocked, so a client that reads,
 *     however slowly, is never closed; the idle timeout is the operator's
 *     word for how long a connection may do nothing, and without one 10 s
 *     is far beyond any pause of a client that is reading (a stall that
 *     long with SIZE bytes waiting is a client that will not read).
 *   - Lines: a line without a newline is closed at 2048 bytes unless it is
 *     a get/gets (as memcached); a get line may grow to RBUF_MAX, past which
 *     the client gets memcached's "SERVER_ERROR out of memory reading
 *     request" and is closed. The newline search resumes where the last one
 *     stopped, so a line that arrives a byte at a time costs linear time.
 *   - Keys per multiget (--max-multiget-keys, in process.c), and -c in
 *     server.c.
 */
#include "conn.h"

#include <errno.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "compose.h"
#include "log.h"
#include "meta_cmd.h"
#include "metadump.h"
#include "parse.h"
#include "process.h"
#include "server.h"

#define RBUF_SIZE       16384       /* one read, as memcached's */
#define RBUF_MAX        (64u << 20) /* longest multiget line we accept */
#define RBUF_CACHE_MAX  16          /* idle read buffers kept per worker */
#define DIRECT_READ_MIN 4096        /* read a value straight into its item past this */
#define ZERO_COPY_MIN   8192        /* send values from the item itself past this */

#define STREAM_OUT_LOW 65536 /* a stream appends slices while the output holds less */

#define RETRY_DELAY_US   1000 /* pause before running a busy command again */
#define RETRY_GIVE_UP_MS 2000 /* then answer out of memory */

enum conn_state { CONN_CMD, CONN_VALUE, CONN_SWALLOW, CONN_STORE_RETRY };

struct conn {
    int fd;
    struct worker *w;
    struct conn *next, *prev;
    struct event *rev;
    struct event *wev;
    char *rbuf;
    size_t rsize, rstart, rend;
    struct evbuffer *out;
    enum conn_state state;

    /* CONN_VALUE */
    struct item *item;
    size_t vpos; /* value bytes read so far */
    size_t crlf; /* of the 2 trailing bytes, how many read */
    char tail[2];
    enum cache_store_op op;
    uint64_t cas;
    bool noreply;
    bool meta_value;       /* an ms: mset says what to do with the value */
    struct meta_set *mset; /* made on the connection's first ms */

    size_t swallow; /* CONN_SWALLOW: bytes left to discard */

    bool blocked;         /* waiting for the socket to take our output */
    bool waiting;         /* paused before retrying a busy command */
    struct event *tev;    /* the retry timer, made on first use */
    long long busy_since; /* ms, when the current command first got TC_BUSY */
    bool yielded;         /* stopped after -R commands with input left */
    size_t committed;     /* output bytes that go out even if the client then closes */
    bool close_after_write;
    bool closing;
    char addr[64];
    cache_time_t last_cmd;   /* when the last complete command line arrived */
    cache_time_t idle_since; /* ... or, if later, its reply was sent (the idle clock) */
    long long out_moving;    /* ms (mono_ms): the socket last took bytes, or writing blocked */
    size_t scanned;          /* input from rstart known to hold no newline */

    /* a streamed reply in progress (conn_stream), NULL step if none */
    conn_stream_fn stream_step;
    void (*stream_release)(void *arg);
    void *stream_arg;
    size_t stream_limit; /* step is called while the output holds less */
    struct event *sev;   /* runs the next slices on a later loop turn */
};

struct item_ref {
    struct cache *cache;
    struct item *it;
};

static void on_event(evutil_socket_t fd, short what, void *arg);
static bool flush(struct conn *c);
static void on_stream(evutil_socket_t fd, short what, void *arg);
static void pause_for_retry(struct conn *c);

struct worker *conn_worker(struct conn *c)
{
    return c->w;
}

static void describe_peer(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(buf, len, "unknown");
        return;
    }
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(buf, len, "tcp:%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "tcp6:[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        snprintf(buf, len, "unix");
    }
}

void conn_create(struct worker *w, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        atomic_fetch_sub(&w->srv->curr_conns, 1);
        return;
    }
    c->fd = fd;
    c->w = w;
    c->out = evbuffer_new();
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_event, c);
    c->wev = event_new(w->base, fd, EV_WRITE, on_event, c);
    if (c->out == NULL || c->rev == NULL || c->wev == NULL || event_add(c->rev, NULL) != 0) {
        tc_log(TC_LOG_WARN, "cannot set up a connection: out of memory");
        if (c->out != NULL)
            evbuffer_free(c->out);
        if (c->rev != NULL)
            event_free(c->rev);
        if (c->wev != NULL)
            event_free(c->wev);
        free(c);
        close(fd);
        atomic_fetch_sub(&w->srv->curr_conns, 1);
        return;
    }
    describe_peer(fd, c->addr, sizeof(c->addr));
    c->last_cmd = c->idle_since = cache_now(w->srv->cache);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    if (tc_log_get_level() >= TC_LOG_DEBUG)
        tc_log(TC_LOG_DEBUG, "<%d new client connection from %s", fd, c->addr);
}

/* ---------------------------------------------------------------------------
 * Read buffers
 * ------------------------------------------------------------------------- */

static bool rbuf_get(struct conn *c)
{
    if (c->rbuf != NULL)
        return true;
    struct worker *w = c->w;
    if (w->rbuf_cached > 0) {
        c->rbuf = w->rbuf_cache[--w->rbuf_cached];
    } else {
        c->rbuf = malloc(RBUF_SIZE);
        if (c->rbuf == NULL)
            return false;
        SCTR_INC(w->st.read_buf_count);
    }
    c->rsize = RBUF_SIZE;
    c->rstart = c->rend = 0;
    return true;
}

/* Give the buffer back if nothing is left in it. */
static void rbuf_put(struct conn *c)
{
    if (c->rbuf == NULL || c->rstart != c->rend)
        return;
    struct worker *w = c->w;
    if (c->rsize == RBUF_SIZE && w->rbuf_cached < RBUF_CACHE_MAX) {
        w->rbuf_cache[w->rbuf_cached++] = c->rbuf;
    } else {
        free(c->rbuf);
        SCTR_ADD(w->st.read_buf_count, (uint64_t)-1);
    }
    c->rbuf = NULL;
    c->rsize = c->rstart = c->rend = 0;
}

/* ---------------------------------------------------------------------------
 * Closing
 * ------------------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    if (tc_log_get_level() >= TC_LOG_DEBUG)
        tc_log(TC_LOG_DEBUG, "<%d connection closed", c->fd);
    if (c->item != NULL)
        cache_item_unref(w->srv->cache, c->item);
    event_free(c->rev);
    event_free(c->wev);
    if (c->tev != NULL)
        event_free(c->tev);
    if (c->stream_release != NULL)
        c->stream_release(c->stream_arg); /* closed mid-stream: the walk goes too */
    if (c->sev != NULL)
        event_free(c->sev);
    evbuffer_free(c->out); /* releases item references still queued */
    free(c->mset);
    c->rstart = c->rend;
    rbuf_put(c);
    free(c->rbuf);
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    atomic_fetch_sub(&w->srv->curr_conns, 1);
    free(c);
}

void conn_close_all(struct worker *w)
{
    while (w->conns != NULL) {
        flush(w->conns); /* replies already final go out if the socket takes them */
        conn_free(w->conns);
    }
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool conn_retry_later(struct conn *c)
{
    long long now = mono_ms();
    if (c->busy_since == 0)
        c->busy_since = now;
    return now - c->busy_since < RETRY_GIVE_UP_MS;
}

void conn_close_after_write(struct conn *c)
{
    c->close_after_write = true;
}

void conn_close_now(struct conn *c)
{
    c->closing = true; /* on_event() frees it, dropping unsent output */
}

/* ---------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------- */

void conn_write(struct conn *c, const void *data, size_t n)
{
    if (evbuffer_add(c->out, data, n) != 0)
        c->closing = true; /* out of memory: nothing sensible to send */
}

size_t conn_pending_output(struct conn *c)
{
    return evbuffer_get_length(c->out) - c->committed;
}

size_t conn_output_queued(struct conn *c)
{
    return evbuffer_get_length(c->out);
}

void conn_reply(struct conn *c, enum proto_reply r)
{
    struct proto_str s = compose_reply(r);
    conn_write(c, s.s, s.n);
}

static void unref_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    struct item_ref *ref = arg;
    cache_item_unref(ref->cache, ref->it);
    free(ref);
}

void conn_write_value(struct conn *c, struct item *it, bool with_cas)
{
    char hdr[COMPOSE_VALUE_HEADER_MAX];
    size_t hn = compose_value_header(hdr, item_key(it), item_nkey(it), item_flags(it),
                                     item_nbytes(it), with_cas, item_cas(it));
    conn_write_item(c, hdr, hn, it);
}

void conn_write_item(struct conn *c, const char *hdr, size_t hn, struct item *it)
{
    struct cache *cache = c->w->srv->cache;
    uint32_t nbytes = item_nbytes(it);

    if (nbytes < ZERO_COPY_MIN) {
        /* Small: one contiguous copy, header, value and "\r\n". */
        struct evbuffer_iovec v;
        size_t need = hn + nbytes + 2;
        if (evbuffer_reserve_space(c->out, (ev_ssize_t)need, &v, 1) < 1 || v.iov_len < need) {
            c->closing = true;
        } else {
            char *p = v.iov_base;
            memcpy(p, hdr, hn);
            memcpy(p + hn, item_value(it), nbytes);
            p[hn + nbytes] = '\r';
            p[hn + nbytes + 1] = '\n';
            v.iov_len = need;
            evbuffer_commit_space(c->out, &v, 1);
        }
        cache_item_unref(cache, it);
        return;
    }

    /* Large: the value goes out from the item; the reference is dropped
     * when libevent is done with those bytes. */
    struct item_ref *ref = malloc(sizeof(*ref));
    if (ref == NULL) {
        cache_item_unref(cache, it);
        c->closing = true;
        return;
    }
    ref->cache = cache;
    ref->it = it;
    conn_write(c, hdr, hn);
    if (evbuffer_add_reference(c->out, item_value(it), nbytes, unref_cleanup, ref) != 0) {
        unref_cleanup(NULL, 0, ref);
        c->closing = true;
        return;
    }
    conn_write(c, "\r\n", 2);
}

void conn_commit(struct conn *c)
{
    c->committed = evbuffer_get_length(c->out);
}

/* Drop what was added to the output after `mark` bytes. */
static void truncate_output(struct conn *c, size_t mark)
{
    size_t len = evbuffer_get_length(c->out);
    if (len <= mark)
        return;
    if (mark == 0) {
        evbuffer_drain(c->out, len);
        return;
    }
    struct evbuffer *keep = evbuffer_new();
    if (keep == NULL || evbuffer_remove_buffer(c->out, keep, mark) != (int)mark) {
        if (keep != NULL)
            evbuffer_free(keep);
        c->closing = true;
        return;
    }
    evbuffer_free(c->out); /* the dropped tail's item references go with it */
    c->out = keep;
}

void conn_discard_output(struct conn *c)
{
    truncate_output(c, c->committed);
}

static void on_retry(evutil_socket_t fd, short what, void *arg);

void conn_stream(struct conn *c, conn_stream_fn step, void (*release)(void *arg), void *arg)
{
    if (c->sev == NULL)
        c->sev = event_new(c->w->base, -1, 0, on_stream, c);
    if (c->sev == NULL) {
        release(arg);
        c->closing = true;
        return;
    }
    c->stream_step = step;
    c->stream_release = release;
    c->stream_arg = arg;
    c->stream_limit = STREAM_OUT_LOW;
    event_del(c->rev); /* input waits until the stream is done */
}

void conn_stream_set_limit(struct conn *c, size_t bytes)
{
    c->stream_limit = bytes;
}

static void end_stream(struct conn *c)
{
    void (*release)(void *) = c->stream_release;
    void *arg = c->stream_arg;
    c->stream_step = NULL;
    c->stream_release = NULL;
    c->stream_arg = NULL;
    c->idle_since = cache_now(c->w->srv->cache);
    release(arg);
    if (!c->blocked && !c->waiting)
        event_add(c->rev, NULL);
}

/*
 * Append slices while the output is short. Returns true when the stream is
 * complete, false when it must go on later (output full enough, or the
 * step asked to wait).
 */
static bool run_stream(struct conn *c)
{
    while (evbuffer_get_length(c->out) < c->stream_limit && !c->closing) {
        enum conn_stream_state st = c->stream_step(c, c->stream_arg);
        if (st == CONN_STREAM_WAIT) {
            pause_for_retry(c);
            return false;
        }
        c->busy_since = 0; /* the step got on: a later TC_BUSY starts its own 2 s */
        if (st == CONN_STREAM_DONE) {
            end_stream(c);
            return true;
        }
        if (st == CONN_STREAM_YIELD)
            return false; /* on_event() sends what there is and comes back next turn */
    }
    return false;
}

/* Pause before running the busy command again; input is not read meanwhile. */
static void pause_for_retry(struct conn *c)
{
    if (c->tev == NULL)
        c->tev = evtimer_new(c->w->base, on_retry, c);
    if (c->tev == NULL) {
        c->closing = true;
        return;
    }
    struct timeval tv = {0, RETRY_DELAY_US};
    c->waiting = true;
    event_del(c->rev);
    evtimer_add(c->tev, &tv);
}

/* Write what we can. Returns true when the output is empty (or the
 * connection is broken and being closed), false when the socket is full. */
static bool flush(struct conn *c)
{
    while (c->committed > 0) {
        int n = evbuffer_write_atmost(c->out, c->fd, (ev_ssize_t)c->committed);
        if (n > 0) {
            SCTR_ADD(c->w->st.bytes_written, (uint64_t)n);
            c->committed -= (size_t)n;
            c->out_moving = mono_ms();
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n < 0 && errno == EINTR)
            continue;
        c->closing = true; /* peer gone */
        c->committed = 0;
        conn_discard_output(c);
        return true;
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * Input
 * ------------------------------------------------------------------------- */

void conn_read_value(struct conn *c, struct item *it, enum cache_store_op op, uint64_t cas,
                     bool noreply)
{
    c->state = CONN_VALUE;
    c->item = it;
    c->vpos = 0;
    c->crlf = 0;
    c->op = op;
    c->cas = cas;
    c->noreply = noreply;
    c->meta_value = false;
}

void conn_read_meta_value(struct conn *c, struct item *it)
{
    conn_read_value(c, it, CACHE_SET, 0, false);
    c->meta_value = true;
}

struct meta_set *conn_meta_set(struct conn *c)
{
    if (c->mset == NULL)
        c->mset = malloc(sizeof(*c->mset));
    return c->mset;
}

void conn_swallow(struct conn *c, size_t n)
{
    c->state = CONN_SWALLOW;
    c->swallow = n;
}

/* Move buffered bytes into the value being read. Returns true when done. */
static bool fill_value(struct conn *c)
{
    size_t need = item_nbytes(c->item) - c->vpos;
    size_t avail = c->rend - c->rstart;
    size_t n = need < avail ? need : avail;
    if (n > 0) {
        memcpy(item_value_mut(c->item) + c->vpos, c->rbuf + c->rstart, n);
        c->vpos += n;
        c->rstart += n;
        avail -= n;
    }
    while (c->vpos == item_nbytes(c->item) && c->crlf < 2 && avail > 0) {
        c->tail[c->crlf++] = c->rbuf[c->rstart++];
        avail--;
    }
    return c->crlf == 2;
}

/* Store the value just read (or retry a busy store). False: retry later. */
static bool finish_value(struct conn *c)
{
    bool valid = c->tail[0] == '\r' && c->tail[1] == '\n';
    bool done = c->meta_value ? process_meta_value_read(c, c->item, c->mset, valid)
                              : process_value_read(c, c->item, c->op, c->cas, c->noreply, valid);
    if (!done) {
        c->state = CONN_STORE_RETRY; /* c->item stays ours */
        return false;
    }
    c->item = NULL;
    c->state = CONN_CMD;
    c->busy_since = 0;
    return true;
}

/*
 * Serve buffered commands, at most -R of them. Stops early when input runs
 * out, the connection must close, or a value is still incomplete.
 */
static void serve(struct conn *c)
{
    /* memcached serves the command that woke it, then -R more. */
    unsigned budget = (unsigned)c->w->srv->set->reqs_per_event + 1;
    unsigned served = 0;
    while (!c->closing && !c->close_after_write && !c->waiting) {
        if (c->stream_step != NULL) {
            if (!run_stream(c))
                return;
            continue;
        }
        if (c->state == CONN_STORE_RETRY || c->state == CONN_VALUE) {
            if (c->state == CONN_VALUE && (c->rbuf == NULL || !fill_value(c)))
                return;
            if (!finish_value(c))
                pause_for_retry(c);
            continue;
        }
        if (c->rbuf == NULL)
            return;
        if (c->state == CONN_SWALLOW) {
            size_t avail = c->rend - c->rstart;
            size_t n = c->swallow < avail ? c->swallow : avail;
            c->rstart += n;
            c->swallow -= n;
            if (c->swallow > 0)
                return;
            c->state = CONN_CMD;
            continue;
        }
        if (c->rstart == c->rend)
            return;
        if (served == budget) {
            c->yielded = true;
            return;
        }
        size_t line_len, consumed;
        const char *line = c->rbuf + c->rstart;
        size_t avail = c->rend - c->rstart;
        /* Only the bytes that arrived since the last look can hold the
         * newline; past 2048 bytes the line was judged already. */
        if (c->scanned > PROTO_LINE_MAX_NO_NEWLINE &&
            (c->scanned >= avail || memchr(line + c->scanned, '\n', avail - c->scanned) == NULL)) {
            c->scanned = avail;
            return;
        }
        enum proto_line st = proto_next_line(line, avail, &line_len, &consumed);
        if (st == PROTO_LINE_NEED_MORE) {
            c->scanned = avail;
            return;
        }
        c->scanned = 0;
        if (st == PROTO_LINE_CLOSE) {
            if (tc_log_get_level() >= TC_LOG_DEBUG)
                tc_log(TC_LOG_DEBUG, "<%d line too long without a newline: closing", c->fd);
            c->closing = true;
            return;
        }
        size_t line_start = c->rstart;
        size_t out_mark = evbuffer_get_length(c->out);
        c->rstart += consumed;
        served++;
        c->last_cmd = c->idle_since = cache_now(c->w->srv->cache);
        if (tc_log_get_level() >= TC_LOG_DEBUG)
            tc_log(TC_LOG_DEBUG, "<%d %.*s", c->fd, (int)(line_len > 200 ? 200 : line_len), line);
        struct proto_lru lru;
        if (proto_parse_lru(line, line_len, &lru)) {
            metadump_command(c, &lru); /* may start a stream, served at the loop's top */
            continue;
        }
        struct meta_request mreq;
        char keybuf[META_KEYBUF_MIN];
        struct request req;
        bool done;
        if (meta_parse(line, line_len, keybuf, sizeof(keybuf), &mreq)) {
            done = process_meta(c, &mreq);
        } else {
            proto_parse(line, line_len, &req);
            done = process_request(c, &req);
        }
        if (!done) {
            /* Busy: run this very line again in a moment. */
            c->rstart = line_start;
            truncate_output(c, out_mark);
            pause_for_retry(c);
            return;
        }
        c->busy_since = 0;
    }
}

/* One read. Returns 1 on data, 0 on nothing (EAGAIN), -1 on EOF or error,
 * -2 when a command line outgrew RBUF_MAX. */
static int read_input(struct conn *c)
{
    if (!rbuf_get(c)) {
        tc_log(TC_LOG_WARN, "cannot allocate a read buffer: closing a connection");
        return -1;
    }
    /* A value larger than what is buffered is read straight into its item. */
    if (c->state == CONN_VALUE && c->rstart == c->rend) {
        size_t need = item_nbytes(c->item) - c->vpos;
        if (need >= DIRECT_READ_MIN) {
            ssize_t n = read(c->fd, item_value_mut(c->item) + c->vpos, need);
            if (n > 0) {
                c->vpos += (size_t)n;
                SCTR_ADD(c->w->st.bytes_read, (uint64_t)n);
                return 1;
            }
            if (n == 0)
                return -1;
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
        }
    }
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    if (c->rend == c->rsize) {
        /* A full buffer without a complete line: only multigets get here. */
        if (c->rsize >= RBUF_MAX) {
            tc_log(TC_LOG_INFO, "<%d command line longer than %u bytes: closing", c->fd, RBUF_MAX);
            return -2;
        }
        char *nb = realloc(c->rbuf, c->rsize * 2);
        if (nb == NULL)
            return -1;
        c->rbuf = nb;
        c->rsize *= 2;
    }
    size_t space = c->rsize - c->rend;
    ssize_t n = read(c->fd, c->rbuf + c->rend, space);
    if (n > 0) {
        c->rend += (size_t)n;
        SCTR_ADD(c->w->st.bytes_read, (uint64_t)n);
        return 1;
    }
    if (n == 0)
        return -1;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct conn *c = arg;

    if (what & EV_WRITE) {
        if (flush(c)) {
            c->blocked = false;
            c->idle_since = cache_now(c->w->srv->cache); /* waiting for a command from now */
            if (!c->closing && !c->close_after_write && !c->waiting && c->stream_step == NULL)
                event_add(c->rev, NULL);
        }
    } else if (what & EV_READ) {
        int r = read_input(c);
        if (r == -2) {
            /* What memcached answers when its buffer for a multiget line
             * cannot grow; then it closes. */
            conn_reply(c, PROTO_R_SERVER_ERROR_OOM_READ);
            conn_commit(c);
            c->closing = true;
        } else if (r < 0) {
            conn_free(c);
            return;
        }
    }
    /* EV_TIMEOUT: resuming after a yield; nothing new to read. */

    if (!c->blocked && !c->waiting) {
        c->yielded = false;
        serve(c);
        /* Out of complete commands (or yielding): memcached sends what it
         * has. In the middle of a value it holds its replies, and loses
         * them if the client goes away before the value is complete. */
        if (c->state == CONN_CMD && !c->closing)
            conn_commit(c);
    } else if (c->blocked && c->stream_step != NULL && c->stream_limit != SIZE_MAX && !c->waiting &&
               !c->closing) {
        /* The socket is full, but a stream goes on filling the output up
         * to its limit (a slice per loop turn): a client that reads,
         * however slowly, always has bytes waiting, and one that does not
         * read reaches the limit (for a multiget, --max-conn-output, where
         * conn_check_timeouts() closes it). Without a limit it waits for
         * the socket instead. Commands after the stream wait. */
        run_stream(c);
        if (c->state == CONN_CMD && !c->closing)
            conn_commit(c);
    }
    if (c->closing) {
        /* As memcached: replies not yet sent are dropped with the connection. */
        flush(c);
        conn_free(c);
        return;
    }
    if (!flush(c)) {
        if (!c->blocked) {
            c->blocked = true;
            c->out_moving = mono_ms(); /* the stall starts now */
            event_del(c->rev);
        }
        event_add(c->wev, NULL);
        if (c->stream_step != NULL && c->stream_limit != SIZE_MAX && !c->waiting &&
            evbuffer_get_length(c->out) < c->stream_limit)
            event_active(c->sev, EV_TIMEOUT, 1); /* fill up further on the next turn */
        return;
    }
    if (c->closing || c->close_after_write) {
        conn_free(c);
        return;
    }
    if (c->yielded) {
        SCTR_INC(c->w->st.conn_yields);
        event_active(c->rev, EV_TIMEOUT, 1);
        return;
    }
    if (c->stream_step != NULL && !c->waiting) {
        /* Sent all we had: the next slices on the next loop turn. */
        event_active(c->sev, EV_TIMEOUT, 1);
        return;
    }
    if (c->state == CONN_CMD && !c->waiting && c->stream_step == NULL)
        rbuf_put(c); /* (a multiget stream reads its keys from the buffer) */
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    c->waiting = false;
    if (!c->blocked && c->stream_step == NULL)
        event_add(c->rev, NULL);
    on_event(fd, EV_TIMEOUT, c);
}

static void on_stream(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    on_event(fd, EV_TIMEOUT, arg);
}

void conn_foreach(struct worker *w, conn_stats_fn emit, void *arg)
{
    cache_time_t now = cache_now(w->srv->cache);
    for (struct conn *c = w->conns; c != NULL; c = c->next) {
        const char *state = c->blocked                 ? "conn_mwrite"
                            : c->state == CONN_VALUE   ? "conn_nread"
                            : c->state == CONN_SWALLOW ? "conn_swallow"
                                                       : "conn_waiting";
        emit(arg, c->fd, c->addr, state, now > c->last_cmd ? now - c->last_cmd : 0);
    }
}

/* Waiting for the client's next command, as memcached's conn_read and
 * conn_new_cmd: nothing to send, no value arriving, no retry, no stream. */
static bool waits_for_command(const struct conn *c)
{
    return c->state == CONN_CMD && !c->blocked && !c->waiting && c->stream_step == NULL &&
           !c->close_after_write && !c->closing;
}

void conn_check_timeouts(struct worker *w)
{
    const struct server_settings *set = w->srv->set;
    cache_time_t now = cache_now(w->srv->cache);
    uint64_t idle = set->unix_socket == NULL ? set->idle_timeout : 0; /* TCP only, as memcached */
    uint64_t cap = set->max_conn_output;
    long long stall_ms = (long long)settings_output_stall_secs(set) * 1000;
    long long now_ms = mono_ms();
    struct conn *next;
    for (struct conn *c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (idle > 0 && waits_for_command(c) && now > c->idle_since && now - c->idle_since > idle) {
            if (tc_log_get_level() >= TC_LOG_DEBUG)
                tc_log(TC_LOG_DEBUG, "<%d idle for %u s: closing", c->fd,
                       (unsigned)(now - c->idle_since));
            SCTR_INC(w->st.idle_kicks);
            conn_free(c);
            continue;
        }
        size_t queued = evbuffer_get_length(c->out);
        if (cap > 0 && c->blocked && queued >= cap && now_ms - c->out_moving >= stall_ms) {
            tc_log(TC_LOG_INFO,
                   "<%d %s has taken none of its %zu queued reply bytes for %lld ms: closing",
                   c->fd, c->addr, queued, now_ms - c->out_moving);
            SCTR_INC(w->st.conn_output_closes);
            /* Reset, not FIN: what the kernel holds for this client is
             * freed now rather than offered to it for minutes. */
            struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
            conn_free(c);
        }
    }
}
