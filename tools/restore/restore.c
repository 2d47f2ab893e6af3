/*
 * restore.c: tiercache-restore, which loads a native dump
 * (docs/DUMP_FORMAT.md) into any memcached-protocol server, or straight into
 * a stopped tiercached's data dir through the engine (--data-dir).
 *
 * Over the network, `set` commands are pipelined: up to --window requests
 * are in flight, the socket is non-blocking and one poll() loop writes
 * requests while it reads replies as they come, so neither side's socket
 * buffer can fill up and stall the other. Replies arrive in request order
 * (memcached answers each set with one line), so a ring of the keys in
 * flight tells which record a failure belongs to.
 *
 * Expiry: a dump holds absolute unix times. Records already expired are
 * skipped; the rest are sent as memcached reads exptime: the remaining
 * seconds when at most 30 days, else the absolute time.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tiercache/dump.h>
#include <tiercache/engine.h>

#include "options.h"

#define PROG        "tiercache-restore"
#define MIB         (1ULL << 20)
#define GIB         (1ULL << 30)
#define MAXDELTA    2592000   /* 30 days: memcached reads larger exptimes as unix times */
#define OUT_HIGH    (4 * MIB) /* stop composing requests past this much unsent */
#define FAIL_REPORT 10        /* failures named one by one; the rest are counted */

struct restore {
    /* options */
    const char *server;
    const char *input;
    const char *data_dir;
    uint64_t flash_size;
    uint64_t memory_limit;
    uint64_t item_size_max;
    uint64_t window;
    /* the dump */
    int fd;
    const char *input_name;
    struct tc_dump_reader *reader;
    uint64_t file_size; /* 0: unknown (a pipe) */
    bool damaged;
    /* counts */
    uint64_t restored, expired, failed;
    /* progress */
    bool progress;
    struct timespec started, last_progress;
};

/* ---------------------------------------------------------------- progress */

static double elapsed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Once a second, when stderr is a terminal: items, MB, rate, ETA. */
static void progress(struct restore *rs, bool final)
{
    if (!rs->progress || (!final && elapsed(&rs->last_progress) < 1.0))
        return;
    clock_gettime(CLOCK_MONOTONIC, &rs->last_progress);
    double t = elapsed(&rs->started);
    uint64_t items = tc_dump_reader_records(rs->reader);
    double mb = (double)tc_dump_reader_bytes(rs->reader) / (double)MIB;
    double rate = t > 0 ? (double)items / t : 0;
    char eta[32] = "";
    if (rs->file_size > 0 && mb > 0 && !final) {
        double left = ((double)rs->file_size / (double)MIB - mb) / (mb / t);
        snprintf(eta, sizeof(eta), ", ETA %.0f s", left > 0 ? left : 0);
    }
    fprintf(stderr, "\r%llu items, %.1f MB, %.0f items/s%s   %s", (unsigned long long)items, mb,
            rate, eta, final ? "\n" : "");
}

/* What to send as a memcached exptime for an absolute expiry, or -1 if it
 * has expired already. */
static int64_t protocol_exptime(uint64_t exptime, uint64_t now)
{
    if (exptime == 0)
        return 0;
    if (exptime <= now)
        return -1;
    if (exptime - now <= MAXDELTA)
        return (int64_t)(exptime - now);
    return exptime > INT64_MAX ? INT64_MAX : (int64_t)exptime;
}

/* Keys the text protocol can carry: no spaces, no control characters. */
static bool key_sendable(const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= ' ' || k[i] == 0x7f)
            return false;
    return true;
}

static void report_failure(struct restore *rs, uint64_t no, const char *key, size_t nkey,
                           const char *why, size_t nwhy)
{
    rs->failed++;
    if (rs->failed <= FAIL_REPORT)
        fprintf(stderr, PROG ": record %llu (key %.*s): %.*s\n", (unsigned long long)no, (int)nkey,
                key, (int)nwhy, why);
    else if (rs->failed == FAIL_REPORT + 1)
        fprintf(stderr, PROG ": more failures: counted, not shown\n");
}

/* The next record to restore: TC_OK (*it, *no set), TC_NOT_FOUND at the
 * end of the dump or at damage (reported, rs->damaged set). Counts and skips
 * expired records. */
static tc_status_e next_record(struct restore *rs, struct tc_dump_item *it, uint64_t *no,
                               int64_t *exptime)
{
    for (;;) {
        tc_status_e st = tc_dump_next(rs->reader, it);
        if (st == TC_NOT_FOUND)
            return TC_NOT_FOUND;
        if (st != TC_OK) {
            fprintf(stderr, PROG ": %s: %s\n", rs->input_name, tc_dump_reader_error(rs->reader));
            rs->damaged = true;
            return TC_NOT_FOUND;
        }
        *no = tc_dump_reader_records(rs->reader);
        *exptime = protocol_exptime(it->exptime, (uint64_t)time(NULL));
        if (*exptime < 0) {
            rs->expired++;
            continue;
        }
        return TC_OK;
    }
}

/* ================================================================ network */

struct inflight {
    uint64_t no;
    size_t nkey;
    char key[TC_DUMP_KEY_MAX];
};

struct net {
    int fd;
    char *out; /* unsent requests: out[out_head, out_len) */
    size_t out_head, out_len, out_cap;
    char in[4096]; /* reply bytes not yet parsed: in[0, in_len) */
    size_t in_len;
    struct inflight *ring;
    size_t ring_cap, ring_head, ring_count;
};

static bool out_reserve(struct net *n, size_t more)
{
    if (n->out_head > 0 && n->out_head == n->out_len)
        n->out_head = n->out_len = 0;
    if (n->out_len + more <= n->out_cap)
        return true;
    if (n->out_head > 0) { /* move the unsent part down before growing */
        memmove(n->out, n->out + n->out_head, n->out_len - n->out_head);
        n->out_len -= n->out_head;
        n->out_head = 0;
        if (n->out_len + more <= n->out_cap)
            return true;
    }
    size_t cap = n->out_cap ? n->out_cap : 64 * 1024;
    while (cap < n->out_len + more)
        cap *= 2;
    char *p = realloc(n->out, cap);
    if (p == NULL)
        return false;
    n->out = p;
    n->out_cap = cap;
    return true;
}

/* "HOST:PORT" or "[V6]:PORT" to a connected, non-blocking socket; -1 with a message. */
static int connect_server(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(host) ||
        colon[1] == '\0') {
        fprintf(stderr, PROG ": server %s: expected HOST:PORT\n", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, PROG ": server %s: %s\n", spec, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fprintf(stderr, PROG ": cannot connect to %s: %s\n", spec, strerror(err));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        fprintf(stderr, PROG ": %s: fcntl: %s\n", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Queue one set command. false: out of memory. */
static bool queue_set(struct net *n, const struct tc_dump_item *it, uint64_t no, int64_t exptime)
{
    /* memcached parses exptime as a 32-bit number: a later time would be a
     * CLIENT_ERROR, and the value would then be read as commands. */
    if (exptime > INT32_MAX)
        exptime = INT32_MAX;
    char line[TC_DUMP_KEY_MAX + 80];
    int ll = snprintf(line, sizeof(line), "set %.*s %u %lld %u\r\n", (int)it->nkey, it->key,
                      (unsigned)it->flags, (long long)exptime, (unsigned)it->nbytes);
    if (!out_reserve(n, (size_t)ll + it->nbytes + 2))
        return false;
    memcpy(n->out + n->out_len, line, (size_t)ll);
    memcpy(n->out + n->out_len + ll, it->value, it->nbytes);
    memcpy(n->out + n->out_len + ll + it->nbytes, "\r\n", 2);
    n->out_len += (size_t)ll + it->nbytes + 2;
    struct inflight *f = &n->ring[(n->ring_head + n->ring_count) % n->ring_cap];
    f->no = no;
    f->nkey = it->nkey;
    memcpy(f->key, it->key, it->nkey);
    n->ring_count++;
    return true;
}

/* Match every complete reply line with the oldest request in flight.
 * false: a reply nobody asked for (the stream is out of step). */
static bool parse_replies(struct restore *rs, struct net *n)
{
    size_t pos = 0;
    for (;;) {
        char *nl = memchr(n->in + pos, '\n', n->in_len - pos);
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - (n->in + pos));
        const char *line = n->in + pos;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (n->ring_count == 0) {
            fprintf(stderr, PROG ": %s: unexpected reply \"%.*s\"\n", rs->server, (int)len, line);
            return false;
        }
        struct inflight *f = &n->ring[n->ring_head];
        if (len == 6 && memcmp(line, "STORED", 6) == 0)
            rs->restored++;
        else
            report_failure(rs, f->no, f->key, f->nkey, line, len);
        n->ring_head = (n->ring_head + 1) % n->ring_cap;
        n->ring_count--;
        pos = (size_t)(nl - n->in) + 1;
    }
    memmove(n->in, n->in + pos, n->in_len - pos);
    n->in_len -= pos;
    if (n->in_len == sizeof(n->in)) {
        fprintf(stderr, PROG ": %s: a reply line longer than %zu bytes\n", rs->server,
                sizeof(n->in));
        return false;
    }
    return true;
}

/* Pipelined restore over one connection. 0, or 1 on a connection failure. */
static int restore_net(struct restore *rs)
{
    struct net n = {.fd = connect_server(rs->server), .ring_cap = rs->window};
    if (n.fd < 0)
        return 1;
    n.ring = calloc(n.ring_cap, sizeof(*n.ring));
    int rc = 1;
    if (n.ring == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    bool eof = false;
    for (;;) {
        /* Compose while the window and the send buffer have room. */
        while (!eof && n.ring_count < n.ring_cap && n.out_len - n.out_head < OUT_HIGH) {
            struct tc_dump_item it;
            uint64_t no;
            int64_t exptime;
            if (next_record(rs, &it, &no, &exptime) != TC_OK) {
                eof = true;
                break;
            }
            if (!key_sendable(it.key, it.nkey)) {
                const char *why = "key has spaces or control characters: not sendable as text";
                report_failure(rs, no, "(binary)", 8, why, strlen(why));
                continue;
            }
            if (!queue_set(&n, &it, no, exptime)) {
                fprintf(stderr, PROG ": record %llu: out of memory\n", (unsigned long long)no);
                goto out;
            }
        }
        progress(rs, false);
        if (eof && n.ring_count == 0 && n.out_head == n.out_len)
            break;
        struct pollfd p = {.fd = n.fd, .events = POLLIN};
        if (n.out_head < n.out_len)
            p.events |= POLLOUT;
        if (poll(&p, 1, 1000) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
            goto out;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = recv(n.fd, n.in + n.in_len, sizeof(n.in) - n.in_len, 0);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, PROG ": %s closed the connection%s%s (%llu replies missing)\n",
                        rs->server, k < 0 ? ": " : "", k < 0 ? strerror(errno) : "",
                        (unsigned long long)n.ring_count);
                rs->failed += n.ring_count;
                goto out;
            }
            if (k > 0) {
                n.in_len += (size_t)k;
                if (!parse_replies(rs, &n))
                    goto out;
            }
        }
        if ((p.revents & POLLOUT) && n.out_head < n.out_len) {
            ssize_t k = send(n.fd, n.out + n.out_head, n.out_len - n.out_head, MSG_NOSIGNAL);
            if (k < 0 && errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, PROG ": sending to %s: %s\n", rs->server, strerror(errno));
                rs->failed += n.ring_count;
                goto out;
            }
            if (k > 0)
                n.out_head += (size_t)k;
        }
    }
    rc = 0;
out:
    free(n.ring);
    free(n.out);
    close(n.fd);
    return rc;
}

/* ================================================================ data dir */

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One record into the engine; retries while the flash writer makes room. */
static void store_one(struct restore *rs, struct cache *c, struct cache_worker *w,
                      const struct tc_dump_item *it, uint64_t no, int64_t exptime)
{
    struct item *item = NULL;
    tc_status_e st;
    for (int tries = 0;; tries++) {
        st = cache_alloc(w, it->key, it->nkey, it->flags, cache_realtime(c, exptime), it->nbytes,
                         &item);
        if (st != TC_BUSY || tries >= 60000)
            break;
        pause_ms(1); /* the writer is still moving items to flash */
    }
    if (st == TC_OK) {
        memcpy(item_value_mut(item), it->value, it->nbytes);
        st = cache_store(w, item, CACHE_SET, 0, NULL);
        cache_item_unref(c, item);
    }
    if (st == TC_OK) {
        rs->restored++;
        return;
    }
    const char *why = st == TC_TOO_LARGE ? "too large for --max-item-size" : tc_strerror(st);
    report_failure(rs, no, it->key, it->nkey, why, strlen(why));
}

static int restore_dir(struct restore *rs)
{
    struct cache_options co;
    cache_options_default(&co);
    co.mem_limit = rs->memory_limit;
    co.item_size_max = (uint32_t)rs->item_size_max;
    co.flash_dir = rs->data_dir;
    co.flash_size = rs->flash_size;
    struct cache *c = NULL;
    tc_status_e st = cache_create(&co, &c);
    if (st == TC_BUSY) {
        fprintf(stderr, PROG ": %s is in use (a tiercached holds it; stop it first)\n",
                rs->data_dir);
        return 1;
    }
    if (st != TC_OK) {
        fprintf(stderr, PROG ": cannot open the data dir %s: %s\n", rs->data_dir, tc_strerror(st));
        return 1;
    }
    struct cache_worker *w = NULL;
    if (cache_worker_create(c, &w) != TC_OK) {
        fprintf(stderr, PROG ": out of memory\n");
        cache_destroy(&c);
        return 1;
    }
    struct tc_dump_item it;
    uint64_t no;
    int64_t exptime;
    while (next_record(rs, &it, &no, &exptime) == TC_OK) {
        store_one(rs, c, w, &it, no, exptime);
        progress(rs, false);
    }
    cache_worker_destroy(&w);
    uint64_t written = 0;
    st = cache_persist(c, 600000, &written);
    cache_destroy(&c);
    if (st != TC_OK) {
        fprintf(stderr, PROG ": %s: writing the items to flash failed: %s\n", rs->data_dir,
                tc_strerror(st));
        return 1;
    }
    return 0;
}

/* ================================================================ main */

#define OPT(sn, ln, ty, an, hl, dst, ...)                                                          \
    (struct tc_option)                                                                             \
    {                                                                                              \
        .short_name = (sn), .long_name = (ln), .type = (ty), .arg_name = (an), .help = (hl),       \
        .dest = (dst), __VA_ARGS__                                                                 \
    }

/* 0: go on; otherwise 1 + the exit code. */
static int parse_args(struct restore *rs, int argc, char **argv)
{
    *rs = (struct restore){
        .flash_size = 1 * GIB,
        .memory_limit = 64 * MIB,
        .item_size_max = 1 * MIB,
        .window = 1024,
        .fd = -1,
    };
    struct tc_option t[16];
    size_t n = 0;
    t[n++] = OPT('s', "server", TC_OPT_STRING, "HOST:PORT", "the server to load into", &rs->server,
                 .default_text = "127.0.0.1:11211");
    t[n++] = OPT('i', "input", TC_OPT_STRING, "FILE", "the dump to read ('-': standard input)",
                 &rs->input);
    t[n++] = OPT(0, "data-dir", TC_OPT_STRING, "DIR",
                 "load into a stopped tiercached's data dir instead of a server", &rs->data_dir);
    t[n++] =
        OPT(0, "flash-size", TC_OPT_SIZE, "SIZE", "with --data-dir: flash tier budget (k/m/g/t)",
            &rs->flash_size, .min = 8 * MIB, .max = 1ULL << 50, .unit = 1, .default_text = "1g");
    t[n++] =
        OPT('m', "memory-limit", TC_OPT_SIZE, "MB",
            "with --data-dir: RAM used while loading, in megabytes (or k/m/g)", &rs->memory_limit,
            .min = 1 * MIB, .max = 1ULL << 40, .unit = MIB, .default_text = "64");
    t[n++] = OPT('I', "max-item-size", TC_OPT_SIZE, "SIZE",
                 "with --data-dir: largest value (as tiercached -I)", &rs->item_size_max,
                 .min = 1024, .max = 1 * GIB, .unit = 1, .default_text = "1m");
    t[n++] = OPT('w', "window", TC_OPT_UINT, "N", "set requests in flight at once", &rs->window,
                 .min = 1, .max = 1 << 20, .default_text = "1024");
    char err[256] = "";
    switch (tc_options_parse(t, n, argc, argv, err, sizeof(err))) {
    case TC_OPTIONS_HELP:
        tc_options_help(t, n, PROG " [-s HOST:PORT | --data-dir=DIR] -i FILE|-", stdout);
        return 1;
    case TC_OPTIONS_VERSION:
        printf(PROG " %s\n", TC_VERSION);
        return 1;
    case TC_OPTIONS_ERROR:
        fprintf(stderr, PROG ": %s (see --help)\n", err);
        return 3;
    case TC_OPTIONS_OK:
        break;
    }
    if (rs->input == NULL) {
        fprintf(stderr, PROG ": no dump to read: give -i FILE or -i - (see --help)\n");
        return 3;
    }
    if (rs->data_dir != NULL && rs->server != NULL) {
        fprintf(stderr, PROG ": -s and --data-dir exclude each other (see --help)\n");
        return 3;
    }
    if (rs->data_dir == NULL && rs->server == NULL)
        rs->server = "127.0.0.1:11211";
    if (rs->item_size_max > rs->memory_limit / 2) {
        fprintf(stderr, PROG ": --max-item-size is more than half of --memory-limit\n");
        return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct restore rs;
    int r = parse_args(&rs, argc, argv);
    if (r != 0)
        return r - 1;

    if (strcmp(rs.input, "-") == 0) {
        rs.fd = STDIN_FILENO;
        rs.input_name = "standard input";
    } else {
        rs.fd = open(rs.input, O_RDONLY | O_CLOEXEC);
        rs.input_name = rs.input;
        if (rs.fd < 0) {
            fprintf(stderr, PROG ": cannot open %s: %s\n", rs.input, strerror(errno));
            return 1;
        }
    }
    struct stat sb;
    if (fstat(rs.fd, &sb) == 0 && S_ISREG(sb.st_mode))
        rs.file_size = (uint64_t)sb.st_size;

    char err[256];
    struct tc_dump_header hdr;
    tc_status_e st = tc_dump_reader_open(rs.fd, &rs.reader, &hdr, err, sizeof(err));
    if (st != TC_OK) {
        fprintf(stderr, PROG ": %s: %s\n", rs.input_name, err);
        if (rs.fd != STDIN_FILENO)
            close(rs.fd);
        return 1;
    }
    rs.progress = isatty(STDERR_FILENO);
    clock_gettime(CLOCK_MONOTONIC, &rs.started);
    rs.last_progress = rs.started;

    int rc = rs.data_dir != NULL ? restore_dir(&rs) : restore_net(&rs);
    progress(&rs, true);
    printf("restored %llu, expired %llu, failed %llu (%s: dump of %s)\n",
           (unsigned long long)rs.restored, (unsigned long long)rs.expired,
           (unsigned long long)rs.failed, rs.input_name, hdr.source[0] ? hdr.source : "?");
    fflush(stdout);
    tc_dump_reader_close(&rs.reader);
    if (rs.fd != STDIN_FILENO)
        close(rs.fd);
    return rc != 0 || rs.damaged || rs.failed > 0 ? 1 : 0;
}
