/*
 * dump.c: tiercache-dump, every live item of a server into a dump file
 * (SPEC section 6).
 *
 * Online (-s HOST:PORT), against tiercached or any memcached 1.6:
 *
 *   listing conn:  lru_crawler metadump all  ->  key=... exp=... \n ... END
 *                        |  one key per line, read only as fast as the
 *                        v  pipeline below has room (the server waits)
 *   pending ring:  keys asked for, not yet answered (at most --window)
 *                        |
 *   fetch conn:    mg <key> s v f t c   (meta protocol: mn answers MN)
 *                  gets k1 k2 ... k100  (otherwise; expiry from the listing)
 *                        |  replies matched to the ring in order
 *                        v
 *   output:        native records or `set` commands (dumpout.c)
 *
 * Both connections are watched by one poll loop, so listing, requests and
 * replies all move at once and memory stays bounded by the window and the
 * largest value: 10 million keys stream through. Each item comes from one
 * reply, so it is one version of that item, never torn; the dump as a
 * whole is not a point-in-time snapshot (the server keeps serving). A key
 * gone by the time it is fetched is skipped and counted.
 *
 * Offline (--data-dir=DIR): a stopped server's data dir through datadir.h.
 *
 * Exit codes (SPEC section 1): 0 done; 1 a runtime failure (server
 * unreachable or refusing, protocol error, write error, interrupted);
 * 2 bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tiercache/datadir.h>
#include <tiercache/dump.h>

#include "dumpout.h"
#include "dumpproto.h"
#include "mcconn.h"
#include "options.h"

#define PROG          "tiercache-dump"
#define GETS_BATCH    100  /* keys per gets line */
#define CONNECT_MS    5000 /* connecting and the mn probe */
#define LIST_LINE_MAX (3 * DP_KEY_MAX + 512)

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ counts and progress */

struct tally {
    uint64_t listed; /* keys the listing gave */
    uint64_t gone;   /* listed, but missing when fetched */
    uint64_t badkey; /* keys the chosen path or format cannot carry */
    uint64_t errors; /* per-key error replies */
    long long start_ms, next_tick_ms;
    uint64_t last_items;
    bool progress; /* stderr is a terminal */
    bool online;
};

static void progress_tick(struct tally *t, const struct dumpout *o)
{
    long long now = now_ms();
    if (!t->progress || now < t->next_tick_ms)
        return;
    uint64_t items = dumpout_items(o);
    double rate = (double)(items - t->last_items) * 1000.0 / (double)(now - t->next_tick_ms + 1000);
    char listed[64] = "";
    if (t->online)
        snprintf(listed, sizeof(listed), "%" PRIu64 " keys listed, ", t->listed);
    fprintf(stderr, "\r" PROG ": %s%" PRIu64 " items, %.1f MB, %.0f items/s   ", listed, items,
            (double)dumpout_bytes(o) / 1e6, rate);
    t->last_items = items;
    t->next_tick_ms = now + 1000;
}

static void summary(const struct tally *t, const struct dumpout *o, uint64_t items, uint64_t bytes,
                    const char *dest)
{
    (void)o;
    if (t->progress && now_ms() >= t->start_ms + 1000)
        fputc('\n', stderr); /* end the progress line */
    uint64_t skipped = t->gone + t->badkey + t->errors;
    fprintf(stderr,
            PROG ": %" PRIu64 " items, %" PRIu64 " bytes written to %s; %" PRIu64
                 " skipped (%" PRIu64 " gone, %" PRIu64 " keys the format cannot carry, %" PRIu64
                 " errors); %.2f s\n",
            items, bytes, dest, skipped, t->gone, t->badkey, t->errors,
            (double)(now_ms() - t->start_ms) / 1000.0);
}

/* ------------------------------------------------------------------ online */

struct pend {
    char key[DP_KEY_MAX];
    uint8_t nkey;
    int64_t exp;    /* from the listing: unix time, -1 never */
    uint64_t batch; /* gets: which gets line asked for it */
    bool got;       /* gets: its VALUE came */
};

struct online {
    const char *server;
    struct mc_conn list, fetch;
    bool mg;           /* fetch with mg (the server speaks meta) */
    bool text;         /* --format=text: skip keys it cannot carry before fetching */
    struct pend *ring; /* pending keys, oldest at head */
    size_t cap, head, count;
    uint64_t batch_seq; /* gets: the line being built */
    size_t open_keys;   /* gets: keys on the line being built */
    bool listed_all;    /* END seen */
    uint64_t rate;      /* --rate: keys per second at most, 0: no limit */
    long long start_ms; /* of the listing, for the rate */
    struct dumpout *out;
    struct tally *t;
    char err[1024];
};

static struct pend *ring_at(struct online *on, size_t i)
{
    return &on->ring[(on->head + i) % on->cap];
}

static void ring_pop(struct online *on)
{
    on->head = (on->head + 1) % on->cap;
    on->count--;
}

static int queue_str(struct online *on, const char *s, size_t n)
{
    if (mc_queue(&on->fetch, s, n) != 0) {
        snprintf(on->err, sizeof(on->err), "out of memory queueing requests");
        return -1;
    }
    return 0;
}

/* End the gets line being built, so the server answers it. */
static int close_gets(struct online *on)
{
    if (on->mg || on->open_keys == 0)
        return 0;
    on->open_keys = 0;
    on->batch_seq++;
    return queue_str(on, "\r\n", 2);
}

/* Ask for one listed key (or skip it), and remember it in the ring. */
static int request_key(struct online *on, const struct dp_meta *m)
{
    bool text_ok = dp_key_text_ok(m->key, m->nkey);
    if (!text_ok && (on->text || !on->mg)) {
        on->t->badkey++;
        return 0;
    }
    struct pend *p = ring_at(on, on->count);
    memcpy(p->key, m->key, m->nkey);
    p->nkey = (uint8_t)m->nkey;
    p->exp = m->exp;
    p->batch = on->batch_seq;
    p->got = false;
    on->count++;
    if (on->mg) {
        char req[DP_KEY_MAX * 2 + 64];
        int n;
        if (text_ok) {
            n = snprintf(req, sizeof(req), "mg %.*s s v f t c\r\n", (int)m->nkey, m->key);
        } else {
            /* A binary-protocol key (spaces, control bytes): base64 with b. */
            char b64[DP_KEY_MAX * 2];
            dp_base64_encode(m->key, m->nkey, b64);
            n = snprintf(req, sizeof(req), "mg %s b s v f t c\r\n", b64);
        }
        return queue_str(on, req, (size_t)n);
    }
    if (on->open_keys == 0 && queue_str(on, "gets", 4) != 0)
        return -1;
    if (queue_str(on, " ", 1) != 0 || queue_str(on, m->key, m->nkey) != 0)
        return -1;
    if (++on->open_keys == GETS_BATCH)
        return close_gets(on);
    return 0;
}

/* Take whole listing lines while the ring has room. 0, or -1 (on->err). */
/*
 * --rate: milliseconds until the next key may be asked for (0: now). The
 * budget is rate * elapsed time, so a stall is made up for, not lost.
 */
static long long rate_wait_ms(const struct online *on)
{
    if (on->rate == 0)
        return 0;
    long long elapsed = now_ms() - on->start_ms;
    uint64_t allowed = on->rate * (uint64_t)elapsed / 1000 + 1;
    if (on->t->listed < allowed)
        return 0;
    long long due = (long long)((on->t->listed + 1) * 1000 / on->rate);
    long long wait = due - elapsed;
    return wait < 1 ? 1 : wait > 1000 ? 1000 : wait;
}

static int take_listing(struct online *on)
{
    while (!on->listed_all && on->count < on->cap && rate_wait_ms(on) == 0) {
        size_t len;
        const char *in = mc_in(&on->list, &len);
        const char *nl = len > 0 ? memchr(in, '\n', len) : NULL;
        if (nl == NULL) {
            if (len > LIST_LINE_MAX) {
                snprintf(on->err, sizeof(on->err),
                         "server %s: protocol error: a metadump line longer than %d bytes",
                         on->server, LIST_LINE_MAX);
                return -1;
            }
            return 0;
        }
        size_t l = (size_t)(nl - in), ll = l > 0 && in[l - 1] == '\r' ? l - 1 : l;
        enum dp_meta_kind kind;
        struct dp_meta m;
        if (dp_parse_meta_line(in, ll, &kind, &m) != 0) {
            snprintf(on->err, sizeof(on->err),
                     "server %s: protocol error: not a metadump line: \"%.*s\"", on->server,
                     (int)(ll < 120 ? ll : 120), in);
            return -1;
        }
        if (kind == DP_META_ERROR) {
            if (ll == 5 && memcmp(in, "ERROR", 5) == 0)
                snprintf(on->err, sizeof(on->err),
                         "server %s does not support `lru_crawler metadump all` (it answered "
                         "ERROR)",
                         on->server);
            else
                snprintf(on->err, sizeof(on->err),
                         "server %s refused `lru_crawler metadump all`: %.*s", on->server,
                         (int)(ll < 200 ? ll : 200), in);
            return -1;
        }
        if (kind == DP_META_END) {
            on->listed_all = true;
        } else {
            on->t->listed++;
            if (request_key(on, &m) != 0)
                return -1;
        }
        mc_consume(&on->list, l + 1);
    }
    return 0;
}

/* Write the item one reply gave for ring entry p. 0 or -1. */
static int emit(struct online *on, const struct pend *p, const struct dp_reply *r)
{
    uint64_t exptime;
    if (on->mg && r->has_ttl)
        exptime = r->ttl < 0 ? 0 : (uint64_t)time(NULL) + (uint64_t)r->ttl;
    else
        exptime = p->exp <= 0 ? 0 : (uint64_t)p->exp;
    if (r->ndata > UINT32_MAX) {
        snprintf(on->err, sizeof(on->err), "server %s: a value of %zu bytes is too large",
                 on->server, r->ndata);
        return -1;
    }
    struct tc_dump_item it = {.key = p->key,
                              .nkey = p->nkey,
                              .value = r->data,
                              .nbytes = (uint32_t)r->ndata,
                              .flags = r->flags,
                              .exptime = exptime,
                              .cas = r->cas};
    int rc = dumpout_put(on->out, &it, on->err, sizeof(on->err));
    if (rc == 1)
        on->t->badkey++;
    return rc < 0 ? -1 : 0;
}

static int protocol_error(struct online *on, const char *what, const struct dp_reply *r)
{
    if (r != NULL && r->msg != NULL)
        snprintf(on->err, sizeof(on->err), "server %s: protocol error: %s: \"%.*s\"", on->server,
                 what, (int)(r->nmsg < 200 ? r->nmsg : 200), r->msg);
    else
        snprintf(on->err, sizeof(on->err), "server %s: protocol error: %s", on->server, what);
    return -1;
}

/* One reply to mg, for the ring's head. */
static int on_mg_reply(struct online *on, const struct dp_reply *r)
{
    struct pend *p = ring_at(on, 0);
    switch (r->kind) {
    case DP_VALUE:
        if (emit(on, p, r) != 0)
            return -1;
        break;
    case DP_MISS:
        on->t->gone++;
        break;
    case DP_CLIENT_ERROR:
    case DP_SERVER_ERROR:
        /* About this key only (a key mg cannot take, no memory for it):
         * the stream goes on. Counted, and said once. */
        if (on->t->errors++ == 0)
            fprintf(stderr, PROG ": server %s: %.*s (for key \"%.*s\"; such keys are skipped)\n",
                    on->server, (int)r->nmsg, r->msg, (int)p->nkey, p->key);
        break;
    default:
        return protocol_error(on, "unexpected reply to mg", r);
    }
    ring_pop(on);
    return 0;
}

/*
 * One reply to gets: a VALUE for a key of the head batch, or the batch's
 * END. Entries leave the ring only at END (the END is the batch's last
 * reply); a key without a VALUE by then was gone. Values are matched by
 * key, not position, so the order within a batch does not matter.
 */
static int on_gets_reply(struct online *on, const struct dp_reply *r)
{
    uint64_t batch = ring_at(on, 0)->batch;
    if (r->kind == DP_END) {
        while (on->count > 0 && ring_at(on, 0)->batch == batch) {
            if (!ring_at(on, 0)->got)
                on->t->gone++;
            ring_pop(on);
        }
        return 0;
    }
    if (r->kind != DP_VALUE)
        return protocol_error(on, "unexpected reply to gets", r);
    for (size_t i = 0; i < on->count && ring_at(on, i)->batch == batch; i++) {
        struct pend *p = ring_at(on, i);
        if (!p->got && p->nkey == r->nkey && memcmp(p->key, r->key, r->nkey) == 0) {
            p->got = true;
            return emit(on, p, r);
        }
    }
    snprintf(on->err, sizeof(on->err),
             "server %s: protocol error: gets returned key \"%.*s\", which was not asked for",
             on->server, (int)(r->nkey < 250 ? r->nkey : 250), r->key);
    return -1;
}

/* Match every complete reply to the ring. 0, or -1 (on->err). */
static int take_replies(struct online *on)
{
    while (on->count > 0) {
        size_t len;
        const char *in = mc_in(&on->fetch, &len);
        struct dp_reply r;
        ssize_t n = dp_parse_reply(in, len, on->mg, &r);
        if (n == 0)
            return 0;
        if (n < 0)
            return protocol_error(on, on->mg ? "malformed reply to mg" : "malformed reply to gets",
                                  NULL);
        if ((on->mg ? on_mg_reply(on, &r) : on_gets_reply(on, &r)) != 0)
            return -1;
        mc_consume(&on->fetch, (size_t)n);
    }
    size_t len;
    mc_in(&on->fetch, &len);
    if (len > 0)
        return protocol_error(on, "a reply to nothing that was asked", NULL);
    return 0;
}

/* The loop: listing, requests and replies until END and every answer. */
static int pump(struct online *on, int timeout_s)
{
    long long last_io = now_ms();
    for (;;) {
        if (interrupted) {
            snprintf(on->err, sizeof(on->err), "interrupted");
            return -1;
        }
        if (take_replies(on) != 0 || take_listing(on) != 0 || close_gets(on) != 0)
            return -1;
        if (mc_send_some(&on->fetch, on->err, sizeof(on->err)) != 0)
            return -1;
        if (on->listed_all && on->count == 0 && mc_unsent(&on->fetch) == 0)
            return 0;
        progress_tick(on->t, on->out);

        struct pollfd pf[2];
        int np = 0, ilist = -1, ifetch = -1;
        long long paced = on->listed_all ? 0 : rate_wait_ms(on);
        if (!on->listed_all && on->count < on->cap && paced == 0) {
            ilist = np;
            pf[np++] = (struct pollfd){.fd = on->list.fd, .events = POLLIN};
        }
        short ev =
            (short)((on->count > 0 ? POLLIN : 0) | (mc_unsent(&on->fetch) > 0 ? POLLOUT : 0));
        if (ev != 0) {
            ifetch = np;
            pf[np++] = (struct pollfd){.fd = on->fetch.fd, .events = ev};
        }
        if (np == 0 && paced == 0)
            return protocol_error(on, "nothing to wait for (internal error)", NULL);
        int rc = poll(np > 0 ? pf : NULL, (nfds_t)np, paced > 0 ? (int)paced : 1000);
        if (rc < 0 && errno != EINTR) {
            snprintf(on->err, sizeof(on->err), "poll failed: %s", strerror(errno));
            return -1;
        }
        bool moved = false;
        if (ilist >= 0 && pf[ilist].revents != 0) {
            ssize_t n = mc_recv_some(&on->list, on->err, sizeof(on->err));
            if (n < 0)
                return -1;
            if (on->list.eof) {
                snprintf(on->err, sizeof(on->err),
                         "server %s closed the connection before the end of the key listing",
                         on->server);
                return -1;
            }
            moved |= n > 0;
        }
        if (ifetch >= 0 && pf[ifetch].revents != 0) {
            size_t before = mc_unsent(&on->fetch);
            if (mc_send_some(&on->fetch, on->err, sizeof(on->err)) != 0)
                return -1;
            ssize_t n = (pf[ifetch].revents & (POLLIN | POLLHUP | POLLERR)) != 0
                            ? mc_recv_some(&on->fetch, on->err, sizeof(on->err))
                            : 0;
            if (n < 0)
                return -1;
            if (on->fetch.eof) {
                snprintf(on->err, sizeof(on->err),
                         "server %s closed the connection with %zu values still to come",
                         on->server, on->count);
                return -1;
            }
            moved |= n > 0 || mc_unsent(&on->fetch) != before;
        }
        if (moved || paced > 0) {
            last_io = now_ms(); /* waiting on --rate is not the server's silence */
        } else if (now_ms() - last_io > (long long)timeout_s * 1000) {
            snprintf(on->err, sizeof(on->err), "server %s: no reply for %d s", on->server,
                     timeout_s);
            return -1;
        }
    }
}

static int spool_listing(struct online *on, int timeout_s);

static int dump_online(const char *server, size_t window, uint64_t rate, int timeout_s,
                       struct dumpout *out, struct tally *t, bool text)
{
    struct online on = {
        .server = server, .out = out, .t = t, .text = text, .cap = window, .rate = rate};
    on.list.fd = on.fetch.fd = -1;
    int rc = -1;
    on.ring = calloc(window, sizeof(*on.ring));
    if (on.ring == NULL) {
        snprintf(on.err, sizeof(on.err), "out of memory");
        goto done;
    }
    if (mc_connect(&on.list, server, CONNECT_MS, on.err, sizeof(on.err)) != 0 ||
        mc_connect(&on.fetch, server, CONNECT_MS, on.err, sizeof(on.err)) != 0)
        goto done;
    /* Probe for the meta protocol: mg gives the remaining TTL of the very
     * version it returns; gets needs the listing's expiry. Both mn and mg
     * must answer (a server may know mn before it knows mg). */
    char line[256];
    if (mc_request_line(&on.fetch, "mn\r\n", line, sizeof(line), CONNECT_MS, on.err,
                        sizeof(on.err)) != 0)
        goto done;
    if (strcmp(line, "MN") == 0) {
        if (mc_request_line(&on.fetch, "mg tiercache-dump-probe\r\n", line, sizeof(line),
                            CONNECT_MS, on.err, sizeof(on.err)) != 0)
            goto done;
        on.mg = strcmp(line, "EN") == 0 || strcmp(line, "HD") == 0;
    }
    if (mc_request_line(&on.fetch, "version\r\n", line, sizeof(line), CONNECT_MS, on.err,
                        sizeof(on.err)) != 0)
        goto done;
    bool spool = strstr(line, "tiercache") == NULL; /* see spool_listing() */
    static const char cmd[] = "lru_crawler metadump all\r\n";
    if (mc_queue(&on.list, cmd, sizeof(cmd) - 1) != 0 ||
        mc_send_some(&on.list, on.err, sizeof(on.err)) != 0 || mc_unsent(&on.list) != 0) {
        if (on.err[0] == '\0')
            snprintf(on.err, sizeof(on.err), "server %s: cannot send the metadump request", server);
        goto done;
    }
    if (spool && spool_listing(&on, timeout_s) != 0)
        goto done;
    on.start_ms = now_ms();
    rc = pump(&on, timeout_s);
done:
    if (rc != 0)
        fprintf(stderr, PROG ": %s\n", on.err);
    mc_close(&on.list);
    mc_close(&on.fetch);
    free(on.ring);
    return rc;
}

/*
 * memcached's crawler skips an item whose lock is held as it passes, and
 * our own fetches hold them: listing and fetching at once, a dump of an
 * idle memcached missed an item now and then. So from a server other than
 * tiercached (whose walk waits for a key's lock instead), the whole listing
 * is first spooled to an unlinked temporary file, then replayed from it as
 * if from the connection (mc_recv_some reads with read()). The file holds
 * the keys only: about 100 bytes per item, on disk, not in memory.
 */
static int spool_listing(struct online *on, int timeout_s)
{
    FILE *tmp = tmpfile();
    if (tmp == NULL) {
        snprintf(on->err, sizeof(on->err), "cannot create a temporary file for the key listing: %s",
                 strerror(errno));
        return -1;
    }
    char tail[5] = {0}; /* the last bytes seen: the listing ends with "END\r\n" */
    size_t seen = 0;
    bool keys = false, done = false;
    long long last_io = now_ms();
    while (!done) {
        if (interrupted) {
            snprintf(on->err, sizeof(on->err), "interrupted");
            fclose(tmp);
            return -1;
        }
        struct pollfd pf = {.fd = on->list.fd, .events = POLLIN};
        if (poll(&pf, 1, 1000) < 0 && errno != EINTR) {
            snprintf(on->err, sizeof(on->err), "poll failed: %s", strerror(errno));
            fclose(tmp);
            return -1;
        }
        ssize_t n = mc_recv_some(&on->list, on->err, sizeof(on->err));
        if (n < 0 || (n == 0 && on->list.eof)) {
            if (n == 0)
                snprintf(on->err, sizeof(on->err),
                         "server %s closed the connection before the end of the key listing",
                         on->server);
            fclose(tmp);
            return -1;
        }
        if (n == 0) {
            if (now_ms() - last_io > (long long)timeout_s * 1000) {
                snprintf(on->err, sizeof(on->err), "server %s: no reply for %d s", on->server,
                         timeout_s);
                fclose(tmp);
                return -1;
            }
            continue;
        }
        last_io = now_ms();
        size_t len;
        const char *in = mc_in(&on->list, &len);
        if (seen == 0)
            keys = len >= 4 && memcmp(in, "key=", 4) == 0;
        if (fwrite(in, 1, len, tmp) != len) {
            snprintf(on->err, sizeof(on->err), "cannot write the key listing to a temporary file");
            fclose(tmp);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            memmove(tail, tail + 1, 4);
            tail[4] = in[i];
        }
        seen += len;
        mc_consume(&on->list, len);
        /* The end: "END\r\n" after key lines (which end in a bare \n), or
         * the first \r\n of anything else (END alone, or an error). */
        done = keys ? seen >= 5 && memcmp(tail, "END\r\n", 5) == 0
                    : seen >= 2 && memcmp(tail + 3, "\r\n", 2) == 0;
        progress_tick(on->t, on->out);
    }
    if (fflush(tmp) != 0 || fseek(tmp, 0, SEEK_SET) != 0) {
        snprintf(on->err, sizeof(on->err), "cannot read back the key listing: %s", strerror(errno));
        fclose(tmp);
        return -1;
    }
    int fd = dup(fileno(tmp));
    fclose(tmp);
    if (fd < 0) {
        snprintf(on->err, sizeof(on->err), "cannot read back the key listing: %s", strerror(errno));
        return -1;
    }
    close(on->list.fd); /* the listing connection is done with */
    on->list.fd = fd;
    on->list.eof = false;
    return 0;
}

/* ------------------------------------------------------------------ offline */

struct walk_ctx {
    struct dumpout *out;
    struct tally *t;
    bool failed;
    char err[1024];
};

static bool walk_item(void *arg, const struct tc_dump_item *it)
{
    struct walk_ctx *w = arg;
    if (interrupted) {
        snprintf(w->err, sizeof(w->err), "interrupted");
        w->failed = true;
        return false;
    }
    int rc = dumpout_put(w->out, it, w->err, sizeof(w->err));
    if (rc < 0) {
        w->failed = true;
        return false;
    }
    if (rc == 1)
        w->t->badkey++;
    if ((dumpout_items(w->out) & 1023) == 0)
        progress_tick(w->t, w->out);
    return true;
}

static int dump_datadir(const char *dir, struct dumpout *out, struct tally *t)
{
    char err[512] = "";
    struct tc_datadir *d = NULL;
    tc_status_e st = tc_datadir_open(dir, &d, err, sizeof(err));
    if (st != TC_OK) {
        fprintf(stderr, PROG ": %s\n", err[0] != '\0' ? err : tc_strerror(st));
        return -1;
    }
    struct walk_ctx w = {.out = out, .t = t};
    st = tc_datadir_walk(d, (uint64_t)time(NULL), walk_item, &w, err, sizeof(err));
    tc_datadir_close(&d);
    if (w.failed) {
        fprintf(stderr, PROG ": %s\n", w.err);
        return -1;
    }
    if (st != TC_OK) {
        fprintf(stderr, PROG ": data dir %s: %s\n", dir, err[0] != '\0' ? err : tc_strerror(st));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ main */

static const char *const format_names[] = {"native", "text", NULL};

static const char consistency_help[] =
    "\n"
    "Online (-s), the server keeps serving while it is dumped. The dump is not a\n"
    "point-in-time snapshot: an item written during the dump may or may not be in\n"
    "it, one deleted during the dump is skipped (counted as gone), one overwritten\n"
    "or moved between tiers while keys are listed may be missed or listed twice\n"
    "(memcached's crawler has the same limits). Each item in it\n"
    "is one version of that item: key, value, flags and CAS from a single reply,\n"
    "never torn. With the meta protocol (mg) the expiry is that version's too; a\n"
    "server without it is read with gets, and the expiry comes from the key listing.\n"
    "--data-dir reads a stopped server's data dir (refused while a server holds it).\n"
    "--format=text writes `set KEY FLAGS EXPTIME BYTES` commands (EXPTIME absolute),\n"
    "for `nc HOST PORT < FILE`; keys the text protocol cannot carry are skipped.\n"
    "Exit: 0 done, 1 runtime failure, 2 bad usage.\n";

#define OPT(sn, ln, ty, an, hl, dst, ...)                                                          \
    (struct tc_option)                                                                             \
    {                                                                                              \
        .short_name = (sn), .long_name = (ln), .type = (ty), .arg_name = (an), .help = (hl),       \
        .dest = (dst), __VA_ARGS__                                                                 \
    }

int main(int argc, char **argv)
{
    const char *server = NULL, *output = NULL, *data_dir = NULL;
    int format = DUMPOUT_NATIVE;
    uint64_t window = 512, timeout_s = 30, rate = 0;
    struct tc_option opts[] = {
        OPT('s', "server", TC_OPT_STRING, "HOST:PORT", "the running server to dump", &server,
            .default_text = "127.0.0.1:11211"),
        OPT('o', "output", TC_OPT_STRING, "FILE",
            "where to write the dump (- for stdout); required", &output),
        OPT(0, "format", TC_OPT_ENUM, "FMT",
            "native (for tiercache-restore) or text (set commands)", &format,
            .choices = format_names, .default_text = "native"),
        OPT(0, "data-dir", TC_OPT_STRING, "DIR", "dump a stopped server's data dir instead",
            &data_dir),
        OPT(0, "window", TC_OPT_UINT, "N", "values asked for ahead of the replies", &window,
            .min = 1, .max = 65536, .default_text = "512"),
        OPT(0, "rate", TC_OPT_UINT, "N",
            "online: fetch at most N items per second, to spare the server's other traffic "
            "(0: as fast as it answers)",
            &rate, .min = 0, .max = 100000000, .default_text = "0"),
        OPT(0, "timeout", TC_OPT_UINT, "SEC", "give up when the server says nothing this long",
            &timeout_s, .min = 1, .max = 86400, .default_text = "30"),
    };
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    char err[256] = "";
    switch (tc_options_parse(opts, nopts, argc, argv, err, sizeof(err))) {
    case TC_OPTIONS_HELP:
        tc_options_help(opts, nopts, PROG " [-s HOST:PORT | --data-dir=DIR] -o FILE|- [OPTIONS]",
                        stdout);
        fputs(consistency_help, stdout);
        return 0;
    case TC_OPTIONS_VERSION:
        printf(PROG " %s\n", TC_VERSION);
        return 0;
    case TC_OPTIONS_ERROR:
        fprintf(stderr, PROG ": %s (see --help)\n", err);
        return 2;
    case TC_OPTIONS_OK:
        break;
    }
    if (output == NULL) {
        fprintf(stderr, PROG ": -o FILE (or -o - for standard output) is required (see --help)\n");
        return 2;
    }
    if (server != NULL && data_dir != NULL) {
        fprintf(stderr, PROG ": -s and --data-dir exclude each other (see --help)\n");
        return 2;
    }
    if (data_dir == NULL && server == NULL)
        server = "127.0.0.1:11211";

    /* A reader that goes away makes write() fail with EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        fprintf(stderr, PROG ": cannot install signal handlers: %s\n", strerror(errno));
        return 1;
    }

    struct tally t = {
        .start_ms = now_ms(), .progress = isatty(STDERR_FILENO) == 1, .online = server != NULL};
    t.next_tick_ms = t.start_ms + 1000;
    struct dumpout *out = NULL;
    const char *source = server != NULL ? server : data_dir;
    if (dumpout_open(output, (enum dumpout_format)format, source, &out, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    int rc = server != NULL ? dump_online(server, (size_t)window, rate, (int)timeout_s, out, &t,
                                          format == DUMPOUT_TEXT)
                            : dump_datadir(data_dir, out, &t);
    uint64_t items = dumpout_items(out), bytes = dumpout_bytes(out);
    if (rc != 0) {
        dumpout_abort(&out);
        if (t.progress)
            fputc('\n', stderr);
        return 1;
    }
    if (dumpout_finish(&out, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    summary(&t, NULL, items, bytes, strcmp(output, "-") == 0 ? "standard output" : output);
    return 0;
}
