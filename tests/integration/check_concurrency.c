/*
 * check_concurrency.c: 8 client threads hammer overlapping keys with mixed,
 * pipelined commands against the real tiercached (-t 4), and every reply is
 * checked: its syntax for the command, and its content.
 *
 * Every value says what it is, so any hit can be checked on its own:
 *
 *   data keys (s:N shared, some of them 250 bytes long; p:T:N private to
 *     thread T; f:T:N fill; big:N large items only): the flags name the
 *     writer and its sequence number (xor a hash of the key); those fix the
 *     length (0 bytes to -I, edges like 8191/8192 included) and every byte:
 *     "key|writer|seq|len|" then any bytes, with "\r\nEND\r\n" and the like
 *     strewn in. A torn value, a value of another key, a wrong length or
 *     wrong flags is an error; so is a sequence number the writer has not
 *     sent yet.
 *   append keys (sa:N shared, pa:T private): a run of records
 *     "<A|P><writer:1x><seq:7x><len:2x><payload>.", each checked byte for
 *     byte; prepended records must all come before appended ones, each
 *     writer's appends in increasing and prepends in decreasing order.
 *   counters (sc:incr, sc:cas, pc:T): decimal, maybe space padded.
 *   nx:N and x:T are never stored: any hit is an error.
 *
 * A thread knows the exact state of its private keys (present or not,
 * which value, the CAS unique it last saw, the counter value, the append
 * content), so any read of them is checked exactly, across its two
 * connections (round robin puts them, mostly, on two server workers). On a
 * roomy server (nothing may be evicted) a miss of a key that must exist is
 * an error, the
 * shared incr counter must equal the sum of acknowledged deltas, the shared
 * CAS counter the number of STORED cas replies, and each shared append key
 * must hold exactly the acknowledged records. On a small server (evictions
 * and "SERVER_ERROR out of memory" are expected) misses are allowed but a
 * hit must still be right. The roomy case also inserts >100k small keys
 * halfway through, so the hash table grows while the others work, and
 * checks every one of them.
 *
 * Commands: set add replace append prepend cas (valid and stale uniques)
 * get gets gat gats (1 to 30 keys) delete incr decr (with 64-bit wrap and
 * clamp at 0) touch, noreply variants, negative and absolute exptimes,
 * stats, version, mn, and errors on purpose (unknown command, incr of a
 * non-number, a value one byte over -I), pipelined 1 to 45 at a time.
 *
 * Cases: roomy (-m 256), small (-m 16 -I 1m -f 4, laid out by setup so
 * that slab classes and large items evict and one class is always out of
 * memory: both required), and many connections (200 slots over -c 180,
 * opened, used and closed in several ways: quit, close, reset, close with
 * replies unread, with a value or a command line half sent; turned-away
 * connections must get "ERROR Too many open connections"). At the end: the
 * server's connection count drops back to 1, its log has no sanitizer
 * report, and it exits 0 on SIGTERM.
 *
 * Every wait is bounded (poll with a deadline). TC_CONCURRENCY_SECONDS sets
 * the length of each case (default 5), TC_CONCURRENCY_SEED the seed.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define NTHREADS   8
#define NPRIV      24 /* private data keys per thread */
#define NSAPP      8  /* shared append keys */
#define NMISS      64 /* never stored keys */
#define NBIG       4  /* shared keys of large items only */
#define MAX_ERRORS 5  /* stop the run after this many */
#define MAX_MGET   30
#define MAX_EXPS   256
#define MAX_KPOOL  4096
#define REPLY_MS   20000 /* longest wait for the replies of one batch */
#define IN_CAP_MAX (64u << 20)
#define OUT_SOFT   (4u << 20) /* stop adding to a batch past this */
#define SEQ_BITS   28
#define SEQ_MASK   ((1u << SEQ_BITS) - 1)
#define FILL_BATCH 200
#define FILL_TOTAL 104000 /* > 1.5 * 2^16: the table must grow once */
#define PAPP_RESET 16384  /* private append value reset past this */
#define REC_HDR    11
#define REC_MAX    (REC_HDR + 40 + 1)

/* ---------------------------------------------------------------------------
 * Cases and global state
 * ------------------------------------------------------------------------- */

struct ccase {
    const char *name;
    const char *args[16];
    bool roomy;          /* nothing may be evicted: exact checks */
    unsigned nshared;    /* shared data keys */
    uint32_t item_max;   /* -I */
    bool large;          /* some values above 512 KiB (own mappings) */
    bool fill;           /* insert FILL_TOTAL keys: hash table growth */
    bool churn;          /* connections opened and closed all the time */
    unsigned slots;      /* connections per thread */
    unsigned conn_limit; /* -c given: rejections allowed at connect */
    bool want_evictions; /* and out-of-memory replies */
};

static const struct ccase case_roomy = {
    .name = "roomy",
    .args = {"-t", "4", "-m", "256", NULL},
    .roomy = true,
    .nshared = 300,
    .item_max = 1u << 20,
    .large = true,
    .fill = true,
    .slots = 2,
};

static const struct ccase case_small = {
    .name = "small",
    /* -f 4: few slab classes; setup gives each but one a page, and two large
     * items their mappings, then fills the rest (see setup_keys()). */
    .args = {"-t", "4", "-m", "16", "-I", "1m", "-f", "4", NULL},
    .roomy = false,
    .nshared = 1500,
    .item_max = 1u << 20,
    .large = true,
    .slots = 2,
    .want_evictions = true,
};

static const struct ccase case_conns = {
    .name = "conns",
    .args = {"-t", "4", "-m", "256", "-c", "180", NULL},
    .roomy = true,
    .nshared = 300,
    .item_max = 1u << 20,
    .churn = true,
    .slots = 25,
    .conn_limit = 180,
};

static struct {
    const struct ccase *cc;
    int port;
    long long t0, t_end, duration_ms;
    atomic_bool stop;
    pthread_mutex_t lock;
    int nerrors;
    char msgs[MAX_ERRORS][3072];
    _Atomic uint32_t maxseq[NTHREADS];
    _Atomic uint32_t fill_done[NTHREADS];
    _Atomic uint64_t sinc_sent; /* sum of every delta sent to sc:incr */
    _Atomic uint64_t scas_sent; /* cas commands sent to sc:cas */
    _Atomic uint64_t scas_stored;
} G;

/* ---------------------------------------------------------------------------
 * Keys, hashes, values
 * ------------------------------------------------------------------------- */

enum kkind {
    K_SHARED,
    K_PRIV,
    K_SAPP,
    K_PAPP,
    K_SINC,
    K_SCAS,
    K_PCNT,
    K_FILL,
    K_MISS,
    K_X,
    K_WARM,
    K_BIG
};

struct keyref {
    uint8_t kind;
    uint8_t owner;
    uint32_t idx;
};

static int key_name(const struct keyref *k, char *buf, size_t cap)
{
    switch (k->kind) {
    case K_SHARED:
        if (k->idx % 37 == 5) {
            /* Some keys of the longest length, 250 bytes. */
            int n = snprintf(buf, cap, "s:%" PRIu32 ":", k->idx);
            if (cap < 251)
                abort();
            memset(buf + n, 'L', (size_t)(250 - n));
            buf[250] = '\0';
            return 250;
        }
        return snprintf(buf, cap, "s:%" PRIu32, k->idx);
    case K_PRIV:
        return snprintf(buf, cap, "p:%u:%" PRIu32, k->owner, k->idx);
    case K_SAPP:
        return snprintf(buf, cap, "sa:%" PRIu32, k->idx);
    case K_PAPP:
        return snprintf(buf, cap, "pa:%u", k->owner);
    case K_SINC:
        return snprintf(buf, cap, "sc:incr");
    case K_SCAS:
        return snprintf(buf, cap, "sc:cas");
    case K_PCNT:
        return snprintf(buf, cap, "pc:%u", k->owner);
    case K_FILL:
        return snprintf(buf, cap, "f:%u:%" PRIu32, k->owner, k->idx);
    case K_MISS:
        return snprintf(buf, cap, "nx:%" PRIu32, k->idx);
    case K_WARM:
        return snprintf(buf, cap, "w:%" PRIu32, k->idx);
    case K_BIG:
        return snprintf(buf, cap, "big:%" PRIu32, k->idx);
    default:
        return snprintf(buf, cap, "x:%u", k->owner);
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

static uint32_t key_h32(const char *key)
{
    return (uint32_t)(hash_str(key) >> 17);
}

static uint32_t app_flags(const char *key)
{
    return key_h32(key) ^ 0xA5A5A5A5u;
}

static uint32_t cnt_flags(const char *key)
{
    return key_h32(key) ^ 0x5A5A5A5Au;
}

static uint32_t data_flags(const char *key, unsigned w, uint32_t seq)
{
    return (((uint32_t)w << SEQ_BITS) | (seq & SEQ_MASK)) ^ key_h32(key);
}

static const char charset[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

static void fill_chars(char *dst, size_t n, uint64_t s)
{
    size_t i = 0;
    while (i < n) {
        s = mix64(s + 0x9e3779b97f4a7c15ULL);
        uint64_t r = s;
        for (int j = 0; j < 8 && i < n; j++, i++) {
            dst[i] = charset[r & 63];
            r >>= 6;
        }
    }
}

/* Data value padding: any byte, and now and then protocol text, so that a
 * value is only ever delimited by its length. */
static void fill_bytes(char *dst, size_t n, uint64_t s)
{
    static const char *const traps[] = {"\r\nEND\r\n", "\r\nVALUE x 0 1\r\n", "\r\n", "\0"};
    size_t i = 0;
    while (i < n) {
        s = mix64(s + 0x9e3779b97f4a7c15ULL);
        if ((s & 0xff) < 6) {
            const char *tr = traps[(s >> 8) % 4];
            size_t tl = (s >> 8) % 4 == 3 ? 1 : strlen(tr);
            for (size_t j = 0; j < tl && i < n; j++, i++)
                dst[i] = tr[j];
            continue;
        }
        uint64_t r = s;
        for (int j = 0; j < 8 && i < n; j++, i++) {
            dst[i] = (char)(r & 0xff);
            r >>= 8;
        }
    }
}

enum len_policy { LEN_ANY, LEN_TINY, LEN_BIG };

static enum len_policy policy_of(const struct keyref *k)
{
    return k->kind == K_FILL ? LEN_TINY : k->kind == K_BIG ? LEN_BIG : LEN_ANY;
}

/* The length of writer w's value number seq for this key. */
static size_t data_len(const char *key, unsigned w, uint32_t seq, enum len_policy pol)
{
    uint64_t h = mix64(hash_str(key) ^ ((uint64_t)w << 32) ^ seq);
    if (pol == LEN_TINY)
        return (size_t)(h % 25);
    if (pol == LEN_BIG) /* just past the largest slab chunk: a mapping of its own */
        return (512u << 10) + h % 40000;
    size_t max = G.cc->item_max;
    unsigned r = (unsigned)(h % 1000);
    h /= 1000;
    if (r < 25) {
        /* Edges: empty, one byte, direct reads, zero copy, read buffer. */
        static const size_t edge[] = {0,    1,    2,    4095,  4096,  4097,
                                      8191, 8192, 8193, 16383, 16384, 16385};
        return edge[h % (sizeof(edge) / sizeof(edge[0]))];
    }
    if (r == 25)
        return h % 2 ? max : max - 1;
    if (r < 100)
        return 1 + h % 16;
    if (r < 500)
        return 17 + h % 496;
    if (r < 780)
        return 513 + h % 3584;
    if (r < 900)
        return 4097 + h % 4095;
    if (r < 998 || !G.cc->large)
        return 8192 + h % 12289;
    return (512u << 10) + h % (max - (512u << 10) + 1);
}

static void make_data(char *dst, const char *key, unsigned w, uint32_t seq, size_t len)
{
    char hdr[320];
    int hn = snprintf(hdr, sizeof(hdr), "%s|%u|%" PRIu32 "|%zu|", key, w, seq, len);
    size_t n = (size_t)hn < len ? (size_t)hn : len;
    memcpy(dst, hdr, n);
    fill_bytes(dst + n, len - n, hash_str(key) ^ ((uint64_t)w << 40) ^ ((uint64_t)seq << 1));
}

static size_t make_rec(char *dst, char type, const char *key, unsigned w, uint32_t seq)
{
    uint64_t h = mix64(hash_str(key) ^ ((uint64_t)w << 40) ^ ((uint64_t)seq << 2) ^
                       (uint64_t)(unsigned char)type);
    unsigned plen = (unsigned)(h % 41);
    char hdr[24];
    snprintf(hdr, sizeof(hdr), "%c%x%07" PRIx32 "%02x", type, w, seq, plen);
    memcpy(dst, hdr, REC_HDR);
    fill_chars(dst + REC_HDR, plen, h);
    dst[REC_HDR + plen] = '.';
    return REC_HDR + plen + 1;
}

/* Printable rendering of bytes for messages, shortened in the middle. */
static const char *esc(char *buf, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        if (n > 200 && i == 120) {
            o += (size_t)snprintf(buf + o, cap - o, "...(%zu bytes)...", n);
            i = n - 60;
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r')
            o += (size_t)snprintf(buf + o, cap - o, "\\r");
        else if (ch == '\n')
            o += (size_t)snprintf(buf + o, cap - o, "\\n");
        else if (ch < 32 || ch > 126 || ch == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

/* ---------------------------------------------------------------------------
 * Per-thread state
 * ------------------------------------------------------------------------- */

enum ekind { E_STORE, E_GET, E_DELETE, E_ARITH, E_TOUCH, E_VERSION, E_MN, E_ERROR, E_STATS };
enum sop { OP_SET, OP_ADD, OP_REPLACE, OP_APPEND, OP_PREPEND, OP_CAS };
static const char *const sop_name[] = {"set", "add", "replace", "append", "prepend", "cas"};
enum rep { R_NONE, R_STORED, R_NOT_STORED, R_EXISTS, R_NOT_FOUND, R_OOM, R_TOO_LARGE };
static const char *const rep_name[] = {"(noreply)",
                                       "STORED",
                                       "NOT_STORED",
                                       "EXISTS",
                                       "NOT_FOUND",
                                       "SERVER_ERROR out of memory",
                                       "SERVER_ERROR object too large"};

/* What a command expects, checked when its reply is read. */
struct exp {
    uint8_t kind, op;
    bool noreply, with_cas, too_large, incr;
    char rtype; /* record type of an append/prepend */
    int64_t exptime;
    struct keyref key; /* single-key commands */
    uint32_t seq;      /* of the value or record stored */
    uint64_t num;      /* cas unique sent, or arith delta */
    uint64_t val;      /* counter value stored */
    uint32_t fill_upto;
    unsigned nkeys;
    struct keyref *keys; /* get family */
    char cmd[120];
};

struct pkey {
    bool present; /* stored and not deleted (on a small server: maybe evicted) */
    uint32_t seq;
    bool cas_valid; /* cas is the key's current CAS unique */
    uint64_t cas, stale_cas;
};

struct rec {
    uint8_t key, w;
    char type;
    uint32_t seq;
};

struct recvec {
    struct rec *v;
    size_t n, cap;
};

struct conn {
    int fd;
    int id;
    char *in;
    size_t cap, len, pos;
    int err;
};

struct thr {
    int id;
    pthread_t th;
    uint64_t rng;
    uint32_t seq;
    struct conn conns[32];
    unsigned nconns;
    struct conn *cc;      /* connection in use, for messages */
    const struct exp *ce; /* command whose reply is being checked */
    char *out;
    size_t olen, ocap;
    struct exp exps[MAX_EXPS];
    int nexp;
    struct keyref kpool[MAX_KPOOL];
    int nkpool;
    char *scratch;

    struct pkey priv[NPRIV];
    bool pc_present;
    uint64_t pc_val;
    bool pa_present, pa_recreate;
    char *pa;
    size_t pa_len, pa_cap;
    uint64_t sinc_last, sinc_acked;
    bool sinc_recreate;
    uint64_t scas_last;
    bool scas_pending, scas_recreate;
    uint64_t scas_val, scas_cas;
    struct {
        uint32_t idx;
        uint64_t cas;
    } pend[4];
    unsigned npend;
    bool sapp_reset[NSAPP];
    uint32_t sapp_n[NSAPP];
    struct recvec recs; /* acknowledged records on shared append keys */
    uint32_t fill_next;

    long n_batches, n_cmds, n_hits, n_misses, n_oom, n_connects, n_rejected, n_closes;
};

static uint64_t rnd(struct thr *t)
{
    t->rng = t->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return mix64(t->rng);
}

static unsigned rn(struct thr *t, unsigned n)
{
    return (unsigned)(rnd(t) % n);
}

static uint32_t next_seq(struct thr *t)
{
    t->seq++;
    atomic_store_explicit(&G.maxseq[t->id], t->seq, memory_order_release);
    return t->seq;
}

static void recvec_push(struct recvec *rv, struct rec r)
{
    if (rv->n == rv->cap) {
        rv->cap = rv->cap ? rv->cap * 2 : 1024;
        rv->v = realloc(rv->v, rv->cap * sizeof(*rv->v));
        if (rv->v == NULL)
            abort();
    }
    rv->v[rv->n++] = r;
}

/* ---------------------------------------------------------------------------
 * Failures
 * ------------------------------------------------------------------------- */

static int report(struct thr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int report(struct thr *t, const char *fmt, ...)
{
    char msg[3072];
    size_t n = (size_t)snprintf(msg, sizeof(msg), "[%s] ", G.cc->name);
    if (t != NULL)
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "thread %d ", t->id);
    if (t != NULL && t->cc != NULL && n < sizeof(msg))
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "conn %d ", t->cc->id);
    if (t != NULL && t->ce != NULL && n < sizeof(msg))
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "reply to '%s' ", t->ce->cmd);
    if (n < sizeof(msg))
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, ": ");
    if (n < sizeof(msg)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
        va_end(ap);
    }
    /* Long keys (s:N:LLL...) would drown the message: shorten the runs. */
    size_t o = 0;
    for (size_t i = 0; msg[i] != '\0'; o++) {
        size_t run = 0;
        while (msg[i + run] == 'L')
            run++;
        if (run > 12) {
            o += (size_t)snprintf(msg + o, 24, "L{%zu}", run) - 1;
            i += run;
        } else {
            msg[o] = msg[i++];
        }
    }
    msg[o] = '\0';
    pthread_mutex_lock(&G.lock);
    int k = G.nerrors++;
    if (k < MAX_ERRORS)
        memcpy(G.msgs[k], msg, sizeof(msg));
    if (G.nerrors >= MAX_ERRORS)
        atomic_store(&G.stop, true);
    pthread_mutex_unlock(&G.lock);
    if (k < 2 * MAX_ERRORS)
        fprintf(stderr, "FAIL %s\n", msg);
    return -1;
}

/* ---------------------------------------------------------------------------
 * Connections: buffered, non-blocking, every wait bounded
 * ------------------------------------------------------------------------- */

enum { RD_OK = 0, RD_TIMEOUT = -1, RD_EOF = -2, RD_ERR = -3 };

static int in_space(struct conn *c)
{
    if (c->pos == c->len) {
        c->pos = c->len = 0;
    } else if (c->pos > 0 && c->len == c->cap) {
        memmove(c->in, c->in + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len < c->cap)
        return 0;
    if (c->cap >= IN_CAP_MAX) {
        c->err = ENOBUFS;
        return -1;
    }
    size_t nc = c->cap ? c->cap * 2 : 65536;
    char *p = realloc(c->in, nc);
    if (p == NULL) {
        c->err = ENOMEM;
        return -1;
    }
    c->in = p;
    c->cap = nc;
    return 0;
}

/* One recv of what is there. RD_OK, RD_EOF, RD_ERR, or 1 for nothing yet. */
static int recv_some(struct conn *c)
{
    if (in_space(c) != 0)
        return RD_ERR;
    ssize_t n = recv(c->fd, c->in + c->len, c->cap - c->len, MSG_DONTWAIT);
    if (n > 0) {
        c->len += (size_t)n;
        return RD_OK;
    }
    if (n == 0)
        return RD_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 1;
    c->err = errno;
    return RD_ERR;
}

/* Wait for more input, until deadline. */
static int conn_fill(struct conn *c, long long deadline)
{
    for (;;) {
        long long left = deadline - ts_now_ms();
        if (left <= 0)
            return RD_TIMEOUT;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            c->err = errno;
            return RD_ERR;
        }
        if (r == 0)
            return RD_TIMEOUT;
        r = recv_some(c);
        if (r <= 0)
            return r;
    }
}

/* Send everything, reading replies meanwhile so neither side can block the other. */
static int conn_send(struct conn *c, const char *p, size_t n, long long deadline)
{
    while (n > 0) {
        long long left = deadline - ts_now_ms();
        if (left <= 0)
            return RD_TIMEOUT;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN | POLLOUT};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            c->err = errno;
            return RD_ERR;
        }
        if (r == 0)
            return RD_TIMEOUT;
        if (pf.revents & POLLIN) {
            r = recv_some(c);
            if (r < 0)
                return r;
        }
        if (pf.revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                c->err = errno;
                return RD_ERR;
            }
        }
    }
    return RD_OK;
}

/* The next line, without its "\r\n"; valid until the next conn_ call. */
static int conn_line(struct conn *c, char **line, size_t *n, long long deadline)
{
    size_t scanned = 0;
    for (;;) {
        char *s = c->in + c->pos;
        size_t avail = c->len - c->pos;
        size_t from = scanned > 0 ? scanned - 1 : 0;
        char *nl = avail > from ? memmem(s + from, avail - from, "\r\n", 2) : NULL;
        if (nl != NULL) {
            *line = s;
            *n = (size_t)(nl - s);
            c->pos += *n + 2;
            return RD_OK;
        }
        if (avail > 65536) {
            c->err = EPROTO;
            return RD_ERR;
        }
        scanned = avail;
        int r = conn_fill(c, deadline);
        if (r != RD_OK)
            return r;
    }
}

/* n bytes of value and their "\r\n". 1 if the "\r\n" is missing. */
static int conn_value(struct conn *c, size_t n, char **data, long long deadline)
{
    while (c->len - c->pos < n + 2) {
        int r = conn_fill(c, deadline);
        if (r != RD_OK)
            return r;
    }
    *data = c->in + c->pos;
    c->pos += n + 2;
    return memcmp(*data + n, "\r\n", 2) == 0 ? RD_OK : 1;
}

static int rd_fail(struct thr *t, struct conn *c, int r)
{
    char b[400];
    size_t have = c->len - c->pos;
    esc(b, sizeof(b), c->in + c->pos, have);
    if (r == RD_TIMEOUT)
        return report(t, "no complete reply within %d ms (have %zu bytes: \"%s\")", REPLY_MS, have,
                      b);
    if (r == RD_EOF)
        return report(t, "the server closed the connection (have %zu bytes: \"%s\")", have, b);
    return report(t, "connection error: %s (have %zu bytes: \"%s\")", strerror(c->err), have, b);
}

static void conn_drop(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->pos = c->len = 0;
}

/* ---------------------------------------------------------------------------
 * Building a batch
 * ------------------------------------------------------------------------- */

static void batch_begin(struct thr *t)
{
    t->olen = 0;
    t->nexp = 0;
    t->nkpool = 0;
}

static bool batch_full(const struct thr *t)
{
    return t->nexp > MAX_EXPS - 8 || t->nkpool > MAX_KPOOL - 2 * MAX_MGET || t->olen > OUT_SOFT;
}

static char *out_reserve(struct thr *t, size_t n)
{
    if (t->olen + n > t->ocap) {
        size_t nc = t->ocap ? t->ocap : 65536;
        while (nc < t->olen + n)
            nc *= 2;
        char *p = realloc(t->out, nc);
        if (p == NULL)
            abort();
        t->out = p;
        t->ocap = nc;
    }
    char *p = t->out + t->olen;
    t->olen += n;
    return p;
}

static struct exp *add_exp(struct thr *t, int kind)
{
    struct exp *e = &t->exps[t->nexp++];
    memset(e, 0, sizeof(*e));
    e->kind = (uint8_t)kind;
    return e;
}

static void out_cmd(struct thr *t, struct exp *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A command line: to the batch, and (shortened) to e->cmd for messages. */
static void out_cmd(struct thr *t, struct exp *e, const char *fmt, ...)
{
    char line[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        abort();
    char *p = out_reserve(t, (size_t)n + 2);
    memcpy(p, line, (size_t)n);
    memcpy(p + n, "\r\n", 2);
    if (e != NULL) {
        size_t m = (size_t)n < sizeof(e->cmd) - 1 ? (size_t)n : sizeof(e->cmd) - 1;
        memcpy(e->cmd, line, m);
        e->cmd[m] = '\0';
        if ((size_t)n > m && m > 4)
            memcpy(e->cmd + m - 3, "...", 3);
    }
}

/* A storage command; data NULL means writer t's data value number seq. */
static struct exp *emit_store(struct thr *t, int op, const struct keyref *k, uint32_t flags,
                              int64_t exptime, const char *data, size_t len, uint64_t cas,
                              bool noreply, uint32_t seq)
{
    char key[256];
    key_name(k, key, sizeof(key));
    struct exp *e = add_exp(t, E_STORE);
    e->op = (uint8_t)op;
    e->key = *k;
    e->exptime = exptime;
    e->noreply = noreply;
    e->num = cas;
    e->seq = seq;
    if (op == OP_CAS)
        out_cmd(t, e, "cas %s %" PRIu32 " %lld %zu %" PRIu64 "%s", key, flags, (long long)exptime,
                len, cas, noreply ? " noreply" : "");
    else
        out_cmd(t, e, "%s %s %" PRIu32 " %lld %zu%s", sop_name[op], key, flags, (long long)exptime,
                len, noreply ? " noreply" : "");
    char *p = out_reserve(t, len + 2);
    if (data != NULL)
        memcpy(p, data, len);
    else
        make_data(p, key, (unsigned)t->id, seq, len);
    memcpy(p + len, "\r\n", 2);
    return e;
}

static struct exp *store_data(struct thr *t, int op, const struct keyref *k, int64_t exptime,
                              uint64_t cas, bool noreply)
{
    char key[256];
    key_name(k, key, sizeof(key));
    uint32_t seq = next_seq(t);
    size_t len = data_len(key, (unsigned)t->id, seq, policy_of(k));
    return emit_store(t, op, k, data_flags(key, (unsigned)t->id, seq), exptime, NULL, len, cas,
                      noreply, seq);
}

static struct exp *store_number(struct thr *t, int op, const struct keyref *k, uint64_t v,
                                uint64_t cas)
{
    char key[256], num[24];
    key_name(k, key, sizeof(key));
    int n = snprintf(num, sizeof(num), "%" PRIu64, v);
    struct exp *e = emit_store(t, op, k, cnt_flags(key), 0, num, (size_t)n, cas, false, 0);
    e->val = v;
    return e;
}

static struct exp *store_empty_app(struct thr *t, int op, const struct keyref *k)
{
    char key[256];
    key_name(k, key, sizeof(key));
    return emit_store(t, op, k, app_flags(key), 0, "", 0, 0, false, 0);
}

static struct exp *store_rec(struct thr *t, int op, const struct keyref *k, bool noreply)
{
    char key[256], rec[REC_MAX];
    key_name(k, key, sizeof(key));
    uint32_t seq = next_seq(t);
    char type = op == OP_APPEND ? 'A' : 'P';
    size_t n = make_rec(rec, type, key, (unsigned)t->id, seq);
    /* Flags and exptime of append/prepend are ignored: send anything. */
    static const int64_t exps[] = {0, 3600, -1};
    struct exp *e = emit_store(t, op, k, (uint32_t)rnd(t), exps[rn(t, 3)], rec, n, 0, noreply, seq);
    e->rtype = type;
    return e;
}

static struct exp *emit_get(struct thr *t, const char *verb, bool with_cas, int64_t exptime,
                            const struct keyref *keys, unsigned n)
{
    if (n > MAX_MGET)
        abort();
    struct exp *e = add_exp(t, E_GET);
    e->with_cas = with_cas;
    e->exptime = exptime;
    e->keys = &t->kpool[t->nkpool];
    e->nkeys = n;
    memcpy(e->keys, keys, n * sizeof(*keys));
    t->nkpool += (int)n;
    char line[16384];
    size_t o = (size_t)snprintf(line, sizeof(line), "%s", verb);
    if (strncmp(verb, "gat", 3) == 0)
        o += (size_t)snprintf(line + o, sizeof(line) - o, " %lld", (long long)exptime);
    for (unsigned i = 0; i < n; i++) {
        char key[256];
        key_name(&keys[i], key, sizeof(key));
        o += (size_t)snprintf(line + o, sizeof(line) - o, " %s", key);
    }
    out_cmd(t, e, "%s", line);
    return e;
}

static void emit_get1(struct thr *t, const struct keyref *k, bool with_cas)
{
    emit_get(t, with_cas ? "gets" : "get", with_cas, 0, k, 1);
}

static void emit_simple(struct thr *t, int kind, const char *verb, const struct keyref *k,
                        const char *arg, bool noreply)
{
    char key[256];
    key_name(k, key, sizeof(key));
    struct exp *e = add_exp(t, kind);
    e->key = *k;
    e->noreply = noreply;
    out_cmd(t, e, "%s %s%s%s%s", verb, key, arg ? " " : "", arg ? arg : "",
            noreply ? " noreply" : "");
}

static void emit_delete(struct thr *t, const struct keyref *k, bool noreply)
{
    emit_simple(t, E_DELETE, "delete", k, NULL, noreply);
}

static void emit_touch(struct thr *t, const struct keyref *k, int64_t exptime, bool noreply)
{
    char a[24];
    snprintf(a, sizeof(a), "%lld", (long long)exptime);
    emit_simple(t, E_TOUCH, "touch", k, a, noreply);
    t->exps[t->nexp - 1].exptime = exptime;
}

static void emit_arith(struct thr *t, const struct keyref *k, bool incr, uint64_t d, bool noreply)
{
    char a[24];
    snprintf(a, sizeof(a), "%" PRIu64, d);
    emit_simple(t, E_ARITH, incr ? "incr" : "decr", k, a, noreply);
    t->exps[t->nexp - 1].incr = incr;
    t->exps[t->nexp - 1].num = d;
}

static int64_t pick_exptime(struct thr *t, bool allow_expired)
{
    unsigned r = rn(t, 100);
    if (r < 70)
        return 0;
    if (r < 85)
        return 3600;
    if (r < 95 || !allow_expired)
        return (int64_t)time(NULL) + 7200; /* absolute */
    return -1;                             /* expired at once */
}

/* ---------------------------------------------------------------------------
 * Checking hits
 * ------------------------------------------------------------------------- */

static int check_data(struct thr *t, const struct keyref *k, const char *key, uint32_t flags,
                      const char *v, size_t n)
{
    uint32_t x = flags ^ key_h32(key);
    unsigned w = x >> SEQ_BITS;
    uint32_t seq = x & SEQ_MASK;
    bool tiny = k->kind == K_FILL;
    enum len_policy pol = policy_of(k);
    char b1[400], b2[400];
    if (w >= NTHREADS)
        return report(t, "%s: flags %" PRIu32 " name no writer (value \"%s\")", key, flags,
                      esc(b1, sizeof(b1), v, n));
    if (k->kind == K_FILL && (w != k->owner || seq != k->idx))
        return report(
            t, "%s: flags %" PRIu32 " name writer %u value %" PRIu32 ", not fill value %u/%" PRIu32,
            key, flags, w, seq, k->owner, k->idx);
    if (k->kind == K_PRIV && w != k->owner)
        return report(t, "%s: flags %" PRIu32 " name writer %u, but only %u writes this key", key,
                      flags, w, k->owner);
    if (!tiny && (seq == 0 || seq > atomic_load_explicit(&G.maxseq[w], memory_order_acquire)))
        return report(t,
                      "%s: flags %" PRIu32 " name writer %u seq %" PRIu32
                      ", which it has not sent (value \"%s\")",
                      key, flags, w, seq, esc(b1, sizeof(b1), v, n));
    size_t len = data_len(key, w, seq, pol);
    make_data(t->scratch, key, w, seq, len);
    if (n != len)
        return report(t, "%s: writer %u seq %" PRIu32 " stored %zu bytes, got %zu: \"%s\"", key, w,
                      seq, len, n, esc(b1, sizeof(b1), v, n));
    if (memcmp(t->scratch, v, n) != 0) {
        size_t i = 0;
        while (v[i] == t->scratch[i])
            i++;
        size_t from = i > 40 ? i - 40 : 0;
        size_t m = n - from < 100 ? n - from : 100;
        return report(t,
                      "%s: %zu-byte value of writer %u seq %" PRIu32
                      " differs at byte %zu: expected \"%s\", got \"%s\" (from byte %zu)",
                      key, n, w, seq, i, esc(b1, sizeof(b1), t->scratch + from, m),
                      esc(b2, sizeof(b2), v + from, m), from);
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static bool parse_hex(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

/* A run of records; with collect, they are added to it (key index kidx). */
static int check_records(struct thr *t, const char *key, const char *v, size_t n,
                         struct recvec *collect, unsigned kidx)
{
    uint32_t last_a[NTHREADS] = {0};
    uint32_t last_p[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        last_p[i] = UINT32_MAX;
    bool seen_a = false;
    size_t pos = 0;
    char b1[400], b2[400];
    while (pos < n) {
        const char *r = v + pos;
        uint32_t w, seq, plen;
        if (n - pos < REC_HDR + 1 || (r[0] != 'A' && r[0] != 'P') || !parse_hex(r + 1, 1, &w) ||
            !parse_hex(r + 2, 7, &seq) || !parse_hex(r + 9, 2, &plen) || w >= NTHREADS)
            return report(t, "%s: bad record at byte %zu of %zu: \"%s\" (whole value \"%s\")", key,
                          pos, n, esc(b1, sizeof(b1), r, n - pos < 60 ? n - pos : 60),
                          esc(b2, sizeof(b2), v, n));
        if (seq == 0 || seq > atomic_load_explicit(&G.maxseq[w], memory_order_acquire))
            return report(t,
                          "%s: record at byte %zu names writer %" PRIu32 " seq %" PRIu32
                          ", which it has not sent",
                          key, pos, w, seq);
        char want[REC_MAX];
        size_t rl = make_rec(want, r[0], key, w, seq);
        if (n - pos < rl || memcmp(r, want, rl) != 0)
            return report(t,
                          "%s: record at byte %zu (writer %" PRIu32 " seq %" PRIu32
                          ") corrupt: expected \"%s\", got \"%s\"",
                          key, pos, w, seq, esc(b1, sizeof(b1), want, rl),
                          esc(b2, sizeof(b2), r, n - pos < rl ? n - pos : rl));
        if (r[0] == 'A') {
            if (seq <= last_a[w])
                return report(t,
                              "%s: appended record of writer %" PRIu32 " seq %" PRIu32
                              " at byte %zu after its seq %" PRIu32 " (out of order or twice)",
                              key, w, seq, pos, last_a[w]);
            last_a[w] = seq;
            seen_a = true;
        } else {
            if (seen_a)
                return report(t,
                              "%s: prepended record (writer %" PRIu32 " seq %" PRIu32
                              ") at byte %zu after an appended one",
                              key, w, seq, pos);
            if (seq >= last_p[w])
                return report(t,
                              "%s: prepended record of writer %" PRIu32 " seq %" PRIu32
                              " at byte %zu before its seq %" PRIu32 " (out of order or twice)",
                              key, w, seq, pos, last_p[w]);
            last_p[w] = seq;
        }
        if (collect != NULL)
            recvec_push(
                collect,
                (struct rec){.key = (uint8_t)kidx, .w = (uint8_t)w, .type = r[0], .seq = seq});
        pos += rl;
    }
    return 0;
}

static bool parse_counter(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i = 0;
    if (n == 0 || v[0] < '0' || v[0] > '9')
        return false;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    while (i < n && v[i] == ' ')
        i++;
    *out = x;
    return i == n;
}

static int check_counter(struct thr *t, const char *key, uint32_t flags, const char *v, size_t n,
                         uint64_t *out)
{
    char b[400];
    if (flags != cnt_flags(key))
        return report(t, "%s: flags %" PRIu32 ", stored with %" PRIu32, key, flags, cnt_flags(key));
    if (!parse_counter(v, n, out))
        return report(t, "%s: counter value is not a number: \"%s\"", key, esc(b, sizeof(b), v, n));
    return 0;
}

static int check_hit(struct thr *t, const struct exp *e, const struct keyref *k, const char *key,
                     uint32_t flags, const char *v, size_t n, uint64_t cas)
{
    const bool roomy = G.cc->roomy;
    bool own = k->owner == t->id;
    char b1[400], b2[400];
    uint64_t x;
    if (e->with_cas && cas == 0)
        return report(t, "%s: CAS unique 0", key);
    switch (k->kind) {
    case K_MISS:
    case K_X:
        return report(t, "%s: hit on a key that is never stored: flags %" PRIu32 " \"%s\"", key,
                      flags, esc(b1, sizeof(b1), v, n));
    case K_SHARED:
        if (check_data(t, k, key, flags, v, n) != 0)
            return -1;
        if (e->with_cas) {
            if (t->npend == 4)
                memmove(t->pend, t->pend + 1, 3 * sizeof(t->pend[0]));
            else
                t->npend++;
            t->pend[t->npend - 1].idx = k->idx;
            t->pend[t->npend - 1].cas = cas;
        }
        return 0;
    case K_FILL:
    case K_BIG:
        return check_data(t, k, key, flags, v, n);
    case K_PRIV: {
        if (check_data(t, k, key, flags, v, n) != 0)
            return -1;
        if (!own)
            return 0;
        struct pkey *st = &t->priv[k->idx];
        uint32_t seq = (flags ^ key_h32(key)) & SEQ_MASK;
        if (!st->present)
            return report(t,
                          "%s: hit (seq %" PRIu32 ") on own key that was deleted/expired/"
                          "never stored",
                          key, seq);
        if (seq != st->seq)
            return report(t, "%s: got seq %" PRIu32 ", but the last value stored is seq %" PRIu32,
                          key, seq, st->seq);
        if (e->with_cas) {
            if (st->cas_valid && st->cas != cas)
                return report(t,
                              "%s: CAS unique %" PRIu64 ", was %" PRIu64
                              " and the key was not written since",
                              key, cas, st->cas);
            st->cas = cas;
            st->cas_valid = true;
        }
        return 0;
    }
    case K_SAPP:
    case K_PAPP:
        if (flags != app_flags(key))
            return report(t,
                          "%s: flags %" PRIu32 ", created with %" PRIu32 " (append must keep them)",
                          key, flags, app_flags(key));
        if (check_records(t, key, v, n, NULL, 0) != 0)
            return -1;
        if (k->kind == K_PAPP && own) {
            if (!t->pa_present)
                return report(t, "%s: hit on own append key that does not exist", key);
            if (n != t->pa_len || (n > 0 && memcmp(v, t->pa, n) != 0))
                return report(t, "%s: expected %zu bytes \"%s\", got %zu bytes \"%s\"", key,
                              t->pa_len, esc(b1, sizeof(b1), t->pa, t->pa_len), n,
                              esc(b2, sizeof(b2), v, n));
        }
        return 0;
    case K_SINC:
        if (check_counter(t, key, flags, v, n, &x) != 0)
            return -1;
        if (roomy && x < t->sinc_last)
            return report(t,
                          "%s: %" PRIu64 " after this thread saw %" PRIu64
                          " (incr-only counter went back)",
                          key, x, t->sinc_last);
        if (x > atomic_load(&G.sinc_sent))
            return report(t, "%s: %" PRIu64 " is more than all increments ever sent (%" PRIu64 ")",
                          key, x, atomic_load(&G.sinc_sent));
        t->sinc_last = x;
        return 0;
    case K_SCAS:
        if (check_counter(t, key, flags, v, n, &x) != 0)
            return -1;
        if (roomy && x < t->scas_last)
            return report(t,
                          "%s: %" PRIu64 " after this thread saw %" PRIu64
                          " (cas-increment-only counter went back)",
                          key, x, t->scas_last);
        if (x > atomic_load(&G.scas_sent))
            return report(t,
                          "%s: %" PRIu64 " is more than the cas commands ever sent (%" PRIu64 ")",
                          key, x, atomic_load(&G.scas_sent));
        t->scas_last = x;
        if (e->with_cas) {
            t->scas_pending = true;
            t->scas_val = x;
            t->scas_cas = cas;
        }
        return 0;
    case K_PCNT:
        if (check_counter(t, key, flags, v, n, &x) != 0)
            return -1;
        if (own && !t->pc_present)
            return report(t, "%s: hit (%" PRIu64 ") on own counter that does not exist", key, x);
        if (own && x != t->pc_val)
            return report(t, "%s: counter is %" PRIu64 ", expected %" PRIu64 " (value \"%s\")", key,
                          x, t->pc_val, esc(b1, sizeof(b1), v, n));
        return 0;
    }
    return 0;
}

static int check_miss(struct thr *t, const struct keyref *k, const char *key)
{
    const bool roomy = G.cc->roomy;
    bool own = k->owner == t->id;
    switch (k->kind) {
    case K_PRIV:
        if (own && t->priv[k->idx].present) {
            if (roomy)
                return report(t,
                              "%s: miss, but seq %" PRIu32 " was stored and nothing may be "
                              "evicted",
                              key, t->priv[k->idx].seq);
            t->priv[k->idx].present = false; /* evicted */
            t->priv[k->idx].cas_valid = false;
        }
        return 0;
    case K_PAPP:
        if (own && t->pa_present) {
            if (roomy)
                return report(t, "%s: miss on own append key (%zu bytes expected)", key, t->pa_len);
            t->pa_present = false;
        }
        return 0;
    case K_PCNT:
        if (own && t->pc_present) {
            if (roomy)
                return report(t, "%s: miss on own counter (%" PRIu64 " expected)", key, t->pc_val);
            t->pc_present = false;
        }
        return 0;
    case K_SAPP:
    case K_SINC:
    case K_SCAS:
    case K_FILL:
        if (roomy)
            return report(t, "%s: miss on a key that is never deleted", key);
        return 0;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------------
 * Reading and checking replies
 * ------------------------------------------------------------------------- */

static bool line_is(const char *line, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(line, s, n) == 0;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    return n > 0 && n <= 20 && parse_counter(s, n, out) && s[n - 1] != ' ';
}

/* "VALUE <key> <flags> <bytes>[ <cas>]" exactly. */
static bool parse_value_line(const char *line, size_t n, bool with_cas, char *key, uint32_t *flags,
                             uint64_t *bytes, uint64_t *cas)
{
    const char *tok[6];
    size_t tl[6];
    size_t nt = 0, i = 0;
    while (i < n && nt < 6) {
        size_t j = i;
        while (j < n && line[j] != ' ')
            j++;
        if (j == i)
            return false; /* empty token: double space */
        tok[nt] = line + i;
        tl[nt++] = j - i;
        i = j < n ? j + 1 : j;
        if (j < n && i == n)
            return false; /* trailing space */
    }
    uint64_t f;
    if (i != n || nt != (with_cas ? 5u : 4u) || !line_is(tok[0], tl[0], "VALUE") || tl[1] > 250 ||
        !parse_u64(tok[2], tl[2], &f) || f > UINT32_MAX || !parse_u64(tok[3], tl[3], bytes))
        return false;
    if (with_cas && !parse_u64(tok[4], tl[4], cas))
        return false;
    memcpy(key, tok[1], tl[1]);
    key[tl[1]] = '\0';
    *flags = (uint32_t)f;
    return true;
}

static int handle_get(struct thr *t, struct conn *c, struct exp *e, long long deadline)
{
    bool got[MAX_MGET] = {false};
    unsigned cursor = 0;
    char b[400];
    for (;;) {
        char *line;
        size_t ln;
        int r = conn_line(c, &line, &ln, deadline);
        if (r != RD_OK)
            return rd_fail(t, c, r);
        if (line_is(line, ln, "END"))
            break;
        char key[256];
        uint32_t flags;
        uint64_t bytes, cas = 0;
        if (!parse_value_line(line, ln, e->with_cas, key, &flags, &bytes, &cas))
            return report(t, "expected a VALUE line or END, got \"%s\"",
                          esc(b, sizeof(b), line, ln));
        unsigned j;
        for (j = cursor; j < e->nkeys; j++) {
            char name[256];
            key_name(&e->keys[j], name, sizeof(name));
            if (strcmp(name, key) == 0)
                break;
        }
        if (j == e->nkeys)
            return report(t, "VALUE for key %s, which was not asked for (or out of order)", key);
        cursor = j + 1;
        if (bytes > G.cc->item_max)
            return report(t, "%s: %" PRIu64 " bytes, more than -I", key, bytes);
        char *v;
        r = conn_value(c, (size_t)bytes, &v, deadline);
        if (r == 1)
            return report(t, "%s: the %" PRIu64 "-byte value is not followed by \\r\\n", key,
                          bytes);
        if (r != RD_OK)
            return rd_fail(t, c, r);
        t->n_hits++;
        if (check_hit(t, e, &e->keys[j], key, flags, v, (size_t)bytes, cas) != 0)
            return -1;
        got[j] = true;
    }
    for (unsigned j = 0; j < e->nkeys; j++) {
        if (got[j])
            continue;
        char name[256];
        key_name(&e->keys[j], name, sizeof(name));
        t->n_misses++;
        if (check_miss(t, &e->keys[j], name) != 0)
            return -1;
    }
    return 0;
}

static void pa_apply(struct thr *t, const struct exp *e)
{
    char key[256], rec[REC_MAX];
    key_name(&e->key, key, sizeof(key));
    size_t n = make_rec(rec, e->rtype, key, (unsigned)t->id, e->seq);
    if (t->pa_len + n > t->pa_cap) {
        t->pa_cap = (t->pa_len + n) * 2;
        t->pa = realloc(t->pa, t->pa_cap);
        if (t->pa == NULL)
            abort();
    }
    if (e->op == OP_APPEND) {
        memcpy(t->pa + t->pa_len, rec, n);
    } else {
        memmove(t->pa + n, t->pa, t->pa_len);
        memcpy(t->pa, rec, n);
    }
    t->pa_len += n;
}

/* State changes and checks of a storage reply (r == R_NONE: noreply). */
static int apply_store(struct thr *t, struct exp *e, enum rep r)
{
    const bool roomy = G.cc->roomy;
    char key[256];
    key_name(&e->key, key, sizeof(key));
    if (e->too_large || r == R_TOO_LARGE) {
        if (e->too_large && r == R_TOO_LARGE)
            return 0;
        return report(t, "%s: got %s, expected %s", key, rep_name[r],
                      e->too_large ? rep_name[R_TOO_LARGE] : "a storage reply");
    }
    if (r == R_OOM) {
        t->n_oom++;
        if (roomy)
            return report(t, "%s: out of memory on a server with room to spare", key);
    } else if (r != R_NONE) {
        bool ok;
        switch (e->op) {
        case OP_SET:
            ok = r == R_STORED;
            break;
        case OP_CAS:
            ok = r == R_STORED || r == R_EXISTS || r == R_NOT_FOUND;
            break;
        default:
            ok = r == R_STORED || r == R_NOT_STORED;
            break;
        }
        if (!ok)
            return report(t, "%s: %s is not a reply %s can give", key, rep_name[r],
                          sop_name[e->op]);
    }
    bool stored = r == R_STORED || r == R_NONE;
    bool expired = e->exptime < 0;

    switch (e->key.kind) {
    case K_PRIV: {
        struct pkey *st = &t->priv[e->key.idx];
        bool valid = st->cas_valid && e->num == st->cas;
        switch (e->op) {
        case OP_SET:
            break;
        case OP_ADD:
            if (r == R_STORED && st->present && roomy)
                return report(t, "%s: add stored over the existing seq %" PRIu32, key, st->seq);
            if (r == R_NOT_STORED && !st->present)
                return report(t, "%s: add refused, but the key does not exist", key);
            break;
        case OP_REPLACE:
            if (r == R_STORED && !st->present)
                return report(t, "%s: replace stored, but the key does not exist", key);
            if (r == R_NOT_STORED && st->present) {
                if (roomy)
                    return report(t, "%s: replace refused, but seq %" PRIu32 " is stored", key,
                                  st->seq);
                st->present = false; /* evicted */
            }
            break;
        case OP_CAS:
            if (r == R_STORED && !st->present)
                return report(t, "%s: cas stored, but the key does not exist", key);
            if (r == R_STORED && !valid)
                return report(t,
                              "%s: cas stored with unique %" PRIu64
                              ", which is stale (the key was written since; current unique "
                              "%s%" PRIu64 ")",
                              key, e->num, st->cas_valid ? "" : "unknown, last seen ", st->cas);
            if (r == R_EXISTS && !st->present)
                return report(t, "%s: cas says EXISTS, but the key does not exist", key);
            if (r == R_EXISTS && valid)
                return report(t, "%s: cas refused (EXISTS) with the current unique %" PRIu64, key,
                              e->num);
            if (r == R_NOT_FOUND && st->present) {
                if (roomy)
                    return report(t, "%s: cas says NOT_FOUND, but seq %" PRIu32 " is stored", key,
                                  st->seq);
                st->present = false;
            }
            break;
        }
        if (stored) {
            if (st->cas_valid)
                st->stale_cas = st->cas;
            st->cas_valid = false;
            st->present = !expired;
            st->seq = e->seq;
        } else if (r == R_OOM && e->op == OP_SET) {
            st->present = false; /* a failed set removes the old value */
            st->cas_valid = false;
        }
        return 0;
    }
    case K_PAPP:
        if (e->op == OP_SET || e->op == OP_ADD) {
            if (e->op == OP_ADD && r == R_STORED && t->pa_present && roomy)
                return report(t, "%s: add stored over an existing key", key);
            if (e->op == OP_ADD && r == R_NOT_STORED && !t->pa_present)
                return report(t, "%s: add refused, but the key does not exist", key);
            if (stored) {
                t->pa_present = true;
                t->pa_len = 0;
            } else if (r == R_OOM && e->op == OP_SET) {
                t->pa_present = false;
            }
            return 0;
        }
        if (stored && !t->pa_present)
            return report(t, "%s: %s stored, but the key does not exist", key, sop_name[e->op]);
        if (stored) {
            pa_apply(t, e);
        } else if (r == R_NOT_STORED && t->pa_present) {
            if (roomy)
                return report(t, "%s: %s refused on an existing %zu-byte value", key,
                              sop_name[e->op], t->pa_len);
            t->pa_recreate = true; /* evicted, or no memory for the longer value */
        }
        return 0;
    case K_SAPP:
        if (e->op == OP_APPEND || e->op == OP_PREPEND) {
            if (stored)
                recvec_push(&t->recs, (struct rec){.key = (uint8_t)e->key.idx,
                                                   .w = (uint8_t)t->id,
                                                   .type = e->rtype,
                                                   .seq = e->seq});
            else if (r == R_NOT_STORED && roomy)
                return report(t, "%s: %s refused on a key that always exists", key,
                              sop_name[e->op]);
            else if (r == R_NOT_STORED)
                t->sapp_reset[e->key.idx] = true;
        }
        return 0;
    case K_SCAS:
        if (e->op == OP_CAS) {
            if (r == R_STORED) {
                atomic_fetch_add(&G.scas_stored, 1);
                if (roomy && e->val <= t->scas_last)
                    return report(t, "%s: cas of %" PRIu64 " stored after this thread saw %" PRIu64,
                                  key, e->val, t->scas_last);
                t->scas_last = e->val;
            } else if (r == R_NOT_FOUND) {
                if (roomy)
                    return report(t, "%s: NOT_FOUND on a key that is never deleted", key);
                t->scas_recreate = true;
            }
        }
        return 0;
    case K_PCNT:
        if (stored) {
            t->pc_present = true;
            t->pc_val = e->val;
        } else if (r == R_OOM) {
            t->pc_present = false;
        }
        return 0;
    default:
        return 0;
    }
}

static enum rep classify(const char *line, size_t n)
{
    static const struct {
        const char *s;
        enum rep r;
    } map[] = {{"STORED", R_STORED},
               {"NOT_STORED", R_NOT_STORED},
               {"EXISTS", R_EXISTS},
               {"NOT_FOUND", R_NOT_FOUND},
               {"SERVER_ERROR out of memory storing object", R_OOM},
               {"SERVER_ERROR object too large for cache", R_TOO_LARGE}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (line_is(line, n, map[i].s))
            return map[i].r;
    }
    return R_NONE;
}

static int handle_store(struct thr *t, struct conn *c, struct exp *e, long long deadline)
{
    if (e->noreply)
        return apply_store(t, e, R_NONE);
    char *line;
    size_t ln;
    char b[400];
    int r = conn_line(c, &line, &ln, deadline);
    if (r != RD_OK)
        return rd_fail(t, c, r);
    enum rep rp = classify(line, ln);
    if (rp == R_NONE)
        return report(t, "unexpected reply \"%s\"", esc(b, sizeof(b), line, ln));
    return apply_store(t, e, rp);
}

static int handle_arith(struct thr *t, struct conn *c, struct exp *e, long long deadline)
{
    const bool roomy = G.cc->roomy;
    char key[256], b[400];
    key_name(&e->key, key, sizeof(key));
    enum { A_NUM, A_NOT_FOUND, A_NON_NUMERIC, A_OOM, A_NONE } a = A_NONE;
    uint64_t v = 0;
    if (!e->noreply) {
        char *line;
        size_t ln;
        int r = conn_line(c, &line, &ln, deadline);
        if (r != RD_OK)
            return rd_fail(t, c, r);
        if (parse_u64(line, ln, &v))
            a = A_NUM;
        else if (line_is(line, ln, "NOT_FOUND"))
            a = A_NOT_FOUND;
        else if (line_is(line, ln, "CLIENT_ERROR cannot increment or decrement non-numeric value"))
            a = A_NON_NUMERIC;
        else if (line_is(line, ln, "SERVER_ERROR out of memory") && !roomy)
            a = A_OOM;
        else
            return report(t, "unexpected reply \"%s\"", esc(b, sizeof(b), line, ln));
    }
    if (a == A_OOM)
        t->n_oom++;
    switch (e->key.kind) {
    case K_SHARED:
        if (a == A_NUM)
            return report(t, "%s: %s of a data value answered %" PRIu64, key,
                          e->incr ? "incr" : "decr", v);
        return 0;
    case K_SINC:
        if (a == A_NON_NUMERIC)
            return report(t, "%s: the counter is not numeric", key);
        if (a == A_NOT_FOUND) {
            if (roomy)
                return report(t, "%s: NOT_FOUND on a counter that is never deleted", key);
            t->sinc_recreate = true;
        }
        if (a == A_NUM) {
            if (roomy && v < t->sinc_last + e->num)
                return report(t,
                              "%s: incr by %" PRIu64 " gave %" PRIu64
                              ", but this thread already saw %" PRIu64,
                              key, e->num, v, t->sinc_last);
            if (v > atomic_load(&G.sinc_sent))
                return report(t,
                              "%s: %" PRIu64 " is more than all increments ever sent (%" PRIu64 ")",
                              key, v, atomic_load(&G.sinc_sent));
            t->sinc_last = v;
        }
        if (a == A_NUM || a == A_NONE)
            t->sinc_acked += e->num;
        return 0;
    case K_PCNT: {
        uint64_t want =
            e->incr ? t->pc_val + e->num : (e->num > t->pc_val ? 0 : t->pc_val - e->num);
        if (a == A_NON_NUMERIC)
            return report(t, "%s: the counter is not numeric", key);
        if (a == A_NUM && !t->pc_present)
            return report(t, "%s: %s answered %" PRIu64 " on a counter that does not exist", key,
                          e->incr ? "incr" : "decr", v);
        if (a == A_NUM && v != want)
            return report(
                t, "%s: %s %" PRIu64 " of %" PRIu64 " answered %" PRIu64 ", expected %" PRIu64, key,
                e->incr ? "incr" : "decr", e->num, t->pc_val, v, want);
        if (a == A_NOT_FOUND && t->pc_present) {
            if (roomy)
                return report(t, "%s: NOT_FOUND on own counter (%" PRIu64 " expected)", key,
                              t->pc_val);
            t->pc_present = false;
        }
        if (a == A_NUM || a == A_NONE)
            t->pc_val = want;
        return 0;
    }
    default:
        return 0;
    }
}

static int handle_simple(struct thr *t, struct conn *c, struct exp *e, long long deadline)
{
    const bool roomy = G.cc->roomy;
    char key[256], b[400];
    key_name(&e->key, key, sizeof(key));
    const char *yes = e->kind == E_DELETE ? "DELETED" : "TOUCHED";
    int hit = -1; /* unknown (noreply) */
    if (!e->noreply) {
        char *line;
        size_t ln;
        int r = conn_line(c, &line, &ln, deadline);
        if (r != RD_OK)
            return rd_fail(t, c, r);
        if (line_is(line, ln, yes))
            hit = 1;
        else if (line_is(line, ln, "NOT_FOUND"))
            hit = 0;
        else
            return report(t, "unexpected reply \"%s\"", esc(b, sizeof(b), line, ln));
    }
    if (e->key.kind != K_PRIV)
        return 0;
    struct pkey *st = &t->priv[e->key.idx];
    if (hit == 1 && !st->present)
        return report(t, "%s: %s, but the key does not exist", key, yes);
    if (hit == 0 && st->present) {
        if (roomy)
            return report(t, "%s: NOT_FOUND, but seq %" PRIu32 " is stored", key, st->seq);
        st->present = false;
    }
    if (e->kind == E_DELETE || e->exptime < 0) {
        st->present = false;
        st->cas_valid = false;
    }
    return 0;
}

static int handle_misc(struct thr *t, struct conn *c, struct exp *e, long long deadline)
{
    char *line;
    size_t ln;
    char b[400];
    int r = conn_line(c, &line, &ln, deadline);
    if (r != RD_OK)
        return rd_fail(t, c, r);
    switch (e->kind) {
    case E_VERSION:
        if (ln < 9 || memcmp(line, "VERSION ", 8) != 0)
            return report(t, "unexpected reply \"%s\"", esc(b, sizeof(b), line, ln));
        return 0;
    case E_MN:
        if (!line_is(line, ln, "MN"))
            return report(t, "unexpected reply \"%s\"", esc(b, sizeof(b), line, ln));
        if (e->fill_upto > 0)
            atomic_store(&G.fill_done[t->id], e->fill_upto);
        return 0;
    case E_ERROR:
        if (!line_is(line, ln, "ERROR"))
            return report(t, "unexpected reply \"%s\"", esc(b, sizeof(b), line, ln));
        return 0;
    default: /* E_STATS */
        for (int lines = 0;; lines++) {
            if (line_is(line, ln, "END"))
                return 0;
            const char *sp = ln > 5 ? memchr(line + 5, ' ', ln - 5) : NULL;
            if (ln < 8 || memcmp(line, "STAT ", 5) != 0 || sp == NULL || sp == line + 5 ||
                sp == line + ln - 1 || lines > 5000)
                return report(t, "bad stats line \"%s\"", esc(b, sizeof(b), line, ln));
            r = conn_line(c, &line, &ln, deadline);
            if (r != RD_OK)
                return rd_fail(t, c, r);
        }
    }
}

/* Send the batch, check every reply in order. */
static int run_batch(struct thr *t, struct conn *c)
{
    if (t->nexp == 0)
        return 0;
    if (t->exps[t->nexp - 1].noreply) {
        struct exp *e = add_exp(t, E_MN);
        out_cmd(t, e, "mn");
    }
    t->cc = c;
    t->ce = NULL;
    long long deadline = ts_now_ms() + REPLY_MS;
    int r = conn_send(c, t->out, t->olen, deadline);
    if (r != RD_OK) {
        t->ce = &t->exps[0];
        return report(t, "sending a batch of %d commands (%zu bytes) failed: %s", t->nexp, t->olen,
                      r == RD_TIMEOUT ? "timeout"
                      : r == RD_EOF   ? "closed by the server"
                                      : strerror(c->err));
    }
    for (int i = 0; i < t->nexp; i++) {
        struct exp *e = &t->exps[i];
        t->ce = e;
        t->n_cmds++;
        switch (e->kind) {
        case E_STORE:
            r = handle_store(t, c, e, deadline);
            break;
        case E_GET:
            r = handle_get(t, c, e, deadline);
            break;
        case E_ARITH:
            r = handle_arith(t, c, e, deadline);
            break;
        case E_DELETE:
        case E_TOUCH:
            r = handle_simple(t, c, e, deadline);
            break;
        default:
            r = handle_misc(t, c, e, deadline);
            break;
        }
        if (r != 0)
            return -1;
    }
    t->ce = NULL;
    if (c->pos != c->len) {
        char b[400];
        return report(t, "%zu bytes after the last reply of the batch: \"%s\"", c->len - c->pos,
                      esc(b, sizeof(b), c->in + c->pos, c->len - c->pos));
    }
    t->n_batches++;
    return 0;
}

/* ---------------------------------------------------------------------------
 * The command mix
 * ------------------------------------------------------------------------- */

static void pick_any_key(struct thr *t, struct keyref *k)
{
    unsigned r = rn(t, 100);
    *k = (struct keyref){.kind = K_SHARED, .idx = rn(t, G.cc->nshared)};
    if (r < 60) {
        return;
    } else if (r < 68) {
        *k = (struct keyref){K_PRIV, (uint8_t)t->id, rn(t, NPRIV)};
    } else if (r < 74) {
        *k = (struct keyref){K_PRIV, (uint8_t)rn(t, NTHREADS), rn(t, NPRIV)};
    } else if (r < 80) {
        unsigned o = rn(t, NTHREADS);
        uint32_t done = atomic_load(&G.fill_done[o]);
        if (G.cc->fill && done > 0)
            *k = (struct keyref){K_FILL, (uint8_t)o, rn(t, done)};
    } else if (r < 84) {
        *k = (struct keyref){K_MISS, 0, rn(t, NMISS)};
    } else if (r < 86) {
        *k = (struct keyref){K_X, (uint8_t)rn(t, NTHREADS), 0};
    } else if (r < 90) {
        *k = (struct keyref){K_SAPP, 0, rn(t, NSAPP)};
    } else if (r < 93) {
        *k = (struct keyref){K_PAPP, (uint8_t)rn(t, NTHREADS), 0};
    } else if (r < 95) {
        *k = (struct keyref){K_SINC, 0, 0};
    } else if (r < 97) {
        *k = (struct keyref){K_SCAS, 0, 0};
    } else {
        *k = (struct keyref){K_PCNT, (uint8_t)rn(t, NTHREADS), 0};
    }
}

static bool same_key(const struct keyref *a, const struct keyref *b)
{
    return a->kind == b->kind && a->owner == b->owner && a->idx == b->idx;
}

static void op_read(struct thr *t)
{
    struct keyref keys[MAX_MGET];
    unsigned n = rn(t, 100) < 40 ? 1 : 10 + rn(t, MAX_MGET - 9);
    unsigned got = 0;
    while (got < n) {
        pick_any_key(t, &keys[got]);
        bool dup = false;
        for (unsigned i = 0; i < got && !dup; i++)
            dup = same_key(&keys[i], &keys[got]);
        if (!dup)
            got++;
    }
    unsigned r = rn(t, 100);
    if (r < 40)
        emit_get(t, "get", false, 0, keys, n);
    else if (r < 65)
        emit_get(t, "gets", true, 0, keys, n);
    else if (r < 85)
        emit_get(t, "gat", false, rn(t, 2) ? 0 : 3600, keys, n);
    else
        emit_get(t, "gats", true, rn(t, 2) ? 0 : (int64_t)time(NULL) + 7200, keys, n);
}

static void op_shared_write(struct thr *t)
{
    struct keyref k = {K_SHARED, 0, rn(t, G.cc->nshared)};
    unsigned r = rn(t, 100);
    bool nr = rn(t, 100) < 12;
    if (r < 40) {
        store_data(t, OP_SET, &k, pick_exptime(t, true), 0, nr);
    } else if (r < 52) {
        store_data(t, OP_ADD, &k, pick_exptime(t, true), 0, nr);
    } else if (r < 64) {
        store_data(t, OP_REPLACE, &k, pick_exptime(t, true), 0, nr);
    } else if (r < 76) {
        emit_delete(t, &k, nr);
    } else if (r < 86) {
        emit_touch(t, &k, pick_exptime(t, true), nr);
    } else if (t->npend > 0) {
        t->npend--;
        k.idx = t->pend[t->npend].idx;
        store_data(t, OP_CAS, &k, pick_exptime(t, false), t->pend[t->npend].cas, nr);
    } else {
        emit_get1(t, &k, true);
    }
}

static void op_priv(struct thr *t)
{
    const bool roomy = G.cc->roomy;
    unsigned i = rn(t, NPRIV);
    struct keyref k = {K_PRIV, (uint8_t)t->id, i};
    struct pkey *st = &t->priv[i];
    unsigned r = rn(t, 100);
    if (r < 20) {
        store_data(t, OP_SET, &k, pick_exptime(t, true), 0, roomy && rn(t, 100) < 15);
    } else if (r < 30) {
        store_data(t, OP_ADD, &k, pick_exptime(t, true), 0, false);
    } else if (r < 40) {
        store_data(t, OP_REPLACE, &k, pick_exptime(t, true), 0, false);
    } else if (r < 48) {
        emit_delete(t, &k, roomy && rn(t, 100) < 15);
    } else if (r < 56) {
        emit_touch(t, &k, pick_exptime(t, true), false);
    } else if (r < 64) {
        emit_get1(t, &k, false);
    } else if (r < 70) {
        emit_get(t, "gat", false, rn(t, 2) ? 0 : 3600, &k, 1);
    } else if (r < 80) {
        emit_get1(t, &k, true);
    } else if (r < 92) {
        if (st->cas_valid)
            store_data(t, OP_CAS, &k, pick_exptime(t, false), st->cas, false);
        else if (st->stale_cas != 0)
            store_data(t, OP_CAS, &k, 0, st->stale_cas, false);
        else
            emit_get1(t, &k, true);
    } else {
        /* Read your own write, pipelined. */
        store_data(t, OP_SET, &k, 0, 0, false);
        emit_get1(t, &k, rn(t, 2));
    }
}

static void op_pcnt(struct thr *t)
{
    const bool roomy = G.cc->roomy;
    struct keyref k = {K_PCNT, (uint8_t)t->id, 0};
    unsigned r = rn(t, 100);
    if (!t->pc_present || r < 6) {
        uint64_t v = rn(t, 4) == 0 ? UINT64_MAX - rn(t, 1000) : rn(t, 100000);
        store_number(t, OP_SET, &k, v, 0);
        return;
    }
    uint64_t d = rn(t, 2) ? 1 + rn(t, 100) : rnd(t) >> rn(t, 64);
    if (r < 45)
        emit_arith(t, &k, true, d, roomy && rn(t, 100) < 15);
    else if (r < 75)
        emit_arith(t, &k, false, d, false);
    else
        emit_get1(t, &k, rn(t, 2));
}

static void op_sinc(struct thr *t)
{
    struct keyref k = {K_SINC, 0, 0};
    if (t->sinc_recreate) {
        store_number(t, OP_ADD, &k, 0, 0);
        t->sinc_recreate = false;
    }
    if (rn(t, 100) < 70) {
        uint64_t d = 1 + rn(t, 1000);
        atomic_fetch_add(&G.sinc_sent, d);
        emit_arith(t, &k, true, d, G.cc->roomy && rn(t, 100) < 10);
    } else {
        emit_get1(t, &k, rn(t, 2));
    }
}

static void op_scas(struct thr *t)
{
    struct keyref k = {K_SCAS, 0, 0};
    if (t->scas_recreate) {
        store_number(t, OP_ADD, &k, 0, 0);
        t->scas_recreate = false;
    }
    if (t->scas_pending) {
        atomic_fetch_add(&G.scas_sent, 1);
        store_number(t, OP_CAS, &k, t->scas_val + 1, t->scas_cas);
        t->scas_pending = false;
    } else {
        emit_get1(t, &k, true);
    }
}

static void op_sapp(struct thr *t)
{
    const bool roomy = G.cc->roomy;
    unsigned i = rn(t, NSAPP);
    struct keyref k = {K_SAPP, 0, i};
    /* On a roomy server the keys never reach -I: each thread's share is capped. */
    uint32_t cap = (uint32_t)(G.cc->item_max / 2 / REC_MAX / NTHREADS);
    if (t->sapp_reset[i]) {
        store_empty_app(t, OP_SET, &k);
        t->sapp_reset[i] = false;
    }
    unsigned r = rn(t, 100);
    if (r >= 85 || (roomy && t->sapp_n[i] >= cap)) {
        emit_get1(t, &k, rn(t, 2));
        return;
    }
    t->sapp_n[i]++;
    store_rec(t, r < 60 ? OP_APPEND : OP_PREPEND, &k, roomy && rn(t, 100) < 10);
}

static void op_papp(struct thr *t)
{
    const bool roomy = G.cc->roomy;
    struct keyref k = {K_PAPP, (uint8_t)t->id, 0};
    if (!t->pa_present || t->pa_recreate || t->pa_len > PAPP_RESET) {
        store_empty_app(t, roomy && !t->pa_present ? OP_ADD : OP_SET, &k);
        t->pa_recreate = false;
        return;
    }
    unsigned r = rn(t, 100);
    if (r < 50)
        store_rec(t, OP_APPEND, &k, false);
    else if (r < 75)
        store_rec(t, OP_PREPEND, &k, false);
    else
        emit_get1(t, &k, rn(t, 2));
}

static void op_misc(struct thr *t)
{
    static const char *const stats[] = {"stats", "stats items", "stats slabs", "stats settings",
                                        "stats conns"};
    unsigned r = rn(t, 100);
    if (r < 40) {
        struct exp *e = add_exp(t, E_STATS);
        out_cmd(t, e, "%s", stats[rn(t, 5)]);
    } else if (r < 55) {
        struct exp *e = add_exp(t, E_VERSION);
        out_cmd(t, e, "version");
    } else if (r < 65) {
        struct exp *e = add_exp(t, E_MN);
        out_cmd(t, e, "mn");
    } else if (r < 80) {
        /* On purpose: arithmetic on a data value. */
        struct keyref k = {K_SHARED, 0, rn(t, G.cc->nshared)};
        emit_arith(t, &k, rn(t, 2), 1, false);
    } else if (r < 98) {
        struct exp *e = add_exp(t, E_ERROR);
        out_cmd(t, e, "no_such_command %u", rn(t, 1000));
    } else {
        /* On purpose: one byte over -I; the value must be swallowed. */
        struct keyref k = {K_X, (uint8_t)t->id, 0};
        size_t n = (size_t)G.cc->item_max + 1;
        char key[256];
        key_name(&k, key, sizeof(key));
        struct exp *e = add_exp(t, E_STORE);
        e->op = OP_SET;
        e->key = k;
        e->too_large = true;
        out_cmd(t, e, "set %s 0 0 %zu", key, n);
        char *p = out_reserve(t, n + 2);
        memset(p, 'z', n);
        memcpy(p + n, "\r\n", 2);
    }
}

/* Large items (own mappings): on the small server each store evicts one,
 * while other threads are sending them from the item (zero copy). */
static void op_big(struct thr *t)
{
    struct keyref keys[NBIG];
    unsigned first = rn(t, NBIG);
    if (rn(t, 100) < 35) {
        keys[0] = (struct keyref){K_BIG, 0, first};
        store_data(t, OP_SET, &keys[0], 0, 0, false);
        return;
    }
    unsigned n = 1 + rn(t, NBIG);
    for (unsigned i = 0; i < n; i++)
        keys[i] = (struct keyref){K_BIG, 0, (first + i) % NBIG};
    bool with_cas = rn(t, 2);
    emit_get(t, with_cas ? "gets" : "get", with_cas, 0, keys, n);
}

static void gen_op(struct thr *t)
{
    unsigned r = rn(t, 1000);
    if (r < 250)
        op_read(t);
    else if (r < 420)
        op_shared_write(t);
    else if (r < 560)
        op_priv(t);
    else if (r < 630)
        op_pcnt(t);
    else if (r < 690)
        op_sinc(t);
    else if (r < 750)
        op_scas(t);
    else if (r < 850)
        op_sapp(t);
    else if (r < 930)
        op_papp(t);
    else if (r < 960)
        op_misc(t);
    else if (r < 966)
        op_big(t);
    else
        op_read(t);
}

/* FILL_BATCH small keys, noreply, then "mn": the hash table grows mid-run. */
static void op_fill(struct thr *t, uint32_t target)
{
    uint32_t end = t->fill_next + FILL_BATCH < target ? t->fill_next + FILL_BATCH : target;
    for (uint32_t n = t->fill_next; n < end; n++) {
        struct keyref k = {K_FILL, (uint8_t)t->id, n};
        char key[256];
        key_name(&k, key, sizeof(key));
        size_t len = data_len(key, (unsigned)t->id, n, LEN_TINY);
        out_cmd(t, NULL, "set %s %" PRIu32 " 0 %zu noreply", key,
                data_flags(key, (unsigned)t->id, n), len);
        char *p = out_reserve(t, len + 2);
        make_data(p, key, (unsigned)t->id, n, len);
        memcpy(p + len, "\r\n", 2);
    }
    struct exp *e = add_exp(t, E_MN);
    out_cmd(t, e, "mn");
    e->fill_upto = end;
    t->fill_next = end;
}

/* ---------------------------------------------------------------------------
 * Connections opened and closed
 * ------------------------------------------------------------------------- */

/* 0: open; 1: turned away (past -c); -1: failed. */
static int conn_open(struct thr *t, struct conn *c)
{
    c->pos = c->len = 0;
    c->fd = ts_connect(G.port);
    t->cc = c;
    t->ce = NULL;
    if (c->fd < 0)
        return report(t, "cannot connect to port %d: %s", G.port, strerror(errno));
    t->n_connects++;
    if (G.cc->conn_limit == 0)
        return 0;
    /* Past -c the server answers "ERROR Too many open connections" and closes. */
    long long deadline = ts_now_ms() + REPLY_MS;
    char *line = NULL;
    size_t ln = 0;
    int r = conn_send(c, "version\r\n", 9, deadline);
    if (r == RD_OK)
        r = conn_line(c, &line, &ln, deadline);
    char b[400];
    if (r == RD_OK && ln > 8 && memcmp(line, "VERSION ", 8) == 0)
        return 0;
    if (r == RD_OK && !line_is(line, ln, "ERROR Too many open connections"))
        return report(t, "first reply on a new connection: \"%s\"", esc(b, sizeof(b), line, ln));
    if (r == RD_OK) {
        r = conn_fill(c, deadline);
        if (r == RD_OK)
            return report(t, "bytes after \"ERROR Too many open connections\": \"%s\"",
                          esc(b, sizeof(b), c->in + c->pos, c->len - c->pos));
    }
    if (r == RD_TIMEOUT)
        return rd_fail(t, c, r);
    if (r == RD_ERR && c->err != ECONNRESET && c->err != EPIPE)
        return rd_fail(t, c, r);
    conn_drop(c);
    t->n_rejected++;
    return 1;
}

static void conn_close_some_way(struct thr *t, struct conn *c)
{
    long long deadline = ts_now_ms() + REPLY_MS;
    char buf[20100];
    t->n_closes++;
    switch (rn(t, 6)) {
    case 0: { /* quit: the server closes */
        int r = conn_send(c, "quit\r\n", 6, deadline);
        while (r == RD_OK)
            r = conn_fill(c, deadline);
        if (c->pos != c->len) {
            char b[400];
            report(t, "bytes after quit: \"%s\"",
                   esc(b, sizeof(b), c->in + c->pos, c->len - c->pos));
        } else if (r == RD_TIMEOUT) {
            report(t, "the server did not close the connection after quit within %d ms", REPLY_MS);
        }
        break;
    }
    case 1: /* plain close */
        break;
    case 2: { /* reset */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        break;
    }
    case 3: { /* a multiget whose replies are never read */
        size_t o = (size_t)snprintf(buf, sizeof(buf), "get");
        for (int i = 0; i < 20; i++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, " s:%u", rn(t, G.cc->nshared));
        memcpy(buf + o, "\r\n", 2);
        conn_send(c, buf, o + 2, deadline);
        if (rn(t, 2)) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        break;
    }
    case 4: { /* a value cut short (never stored: x: keys must never hit) */
        size_t n = 1000 + rn(t, 19000);
        size_t o = (size_t)snprintf(buf, sizeof(buf), "set x:%d 0 0 %zu\r\n", t->id, n);
        size_t part = rn(t, (unsigned)n);
        memset(buf + o, 'y', part);
        conn_send(c, buf, o + part, deadline);
        break;
    }
    default: { /* a command line cut short */
        int n = snprintf(buf, sizeof(buf), "get s:%u s:", rn(t, G.cc->nshared));
        conn_send(c, buf, (size_t)n, deadline);
        break;
    }
    }
    conn_drop(c);
}

/* ---------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct thr *t = arg;
    const struct ccase *cc = G.cc;
    t->nconns = cc->slots;
    for (unsigned i = 0; i < t->nconns; i++) {
        t->conns[i].fd = -1;
        t->conns[i].id = (int)i;
    }
    for (unsigned i = 0; i < t->nconns && !cc->churn; i++) {
        if (conn_open(t, &t->conns[i]) != 0)
            goto out;
    }
    uint32_t fill_target = (FILL_TOTAL + NTHREADS - 1) / NTHREADS;
    while (!atomic_load(&G.stop)) {
        long long now = ts_now_ms();
        /* Fill keys at a pace that crosses the growth threshold halfway (and
         * all of them even if the time is up: the table must grow). */
        bool fill = cc->fill && t->fill_next < fill_target &&
                    (now >= G.t_end || (long long)t->fill_next * G.duration_ms / 2 <
                                           (long long)fill_target * (now - G.t0));
        if (now >= G.t_end && !fill)
            break;
        batch_begin(t);
        struct conn *c = &t->conns[rn(t, t->nconns)];
        if (fill) {
            op_fill(t, fill_target);
        } else {
            if (c->fd < 0) {
                int r = conn_open(t, c);
                if (r < 0)
                    break;
                if (r > 0)
                    continue;
            }
            unsigned r = rn(t, 100);
            unsigned nops = r < 65 ? 1 + rn(t, 4) : r < 93 ? 5 + rn(t, 11) : 21 + rn(t, 25);
            for (unsigned i = 0; i < nops && !batch_full(t); i++)
                gen_op(t);
        }
        if (run_batch(t, c) != 0)
            break;
        if (cc->churn && rn(t, 100) < 12)
            conn_close_some_way(t, c);
    }
out:
    for (unsigned i = 0; i < t->nconns; i++)
        conn_drop(&t->conns[i]);
    return NULL;
}

static struct thr *thr_new(int id, uint64_t seed)
{
    struct thr *t = calloc(1, sizeof(*t));
    if (t == NULL)
        abort();
    t->id = id;
    t->rng = mix64(seed + (uint64_t)id * 0x9e3779b97f4a7c15ULL);
    t->scratch = malloc((size_t)G.cc->item_max + 64);
    if (t->scratch == NULL)
        abort();
    for (unsigned i = 0; i < 32; i++)
        t->conns[i].fd = -1;
    return t;
}

static void thr_free(struct thr *t)
{
    for (unsigned i = 0; i < 32; i++) {
        conn_drop(&t->conns[i]);
        free(t->conns[i].in);
    }
    free(t->out);
    free(t->scratch);
    free(t->pa);
    free(t->recs.v);
    free(t);
}

/* ---------------------------------------------------------------------------
 * Setup and final checks
 * ------------------------------------------------------------------------- */

/* A connection for the main thread, retried while the server is at -c. */
static int verify_conn(struct thr *t, struct conn *c)
{
    long long deadline = ts_now_ms() + 10000;
    for (;;) {
        int r = conn_open(t, c);
        if (r <= 0)
            return r;
        if (ts_now_ms() > deadline)
            return report(t, "turned away (past -c) for 10 s after every client closed");
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int setup_keys(struct thr *t)
{
    struct conn *c = &t->conns[0];
    if (verify_conn(t, c) != 0)
        return -1;
    batch_begin(t);
    for (uint32_t i = 0; i < NSAPP; i++)
        store_empty_app(t, OP_SET, &(struct keyref){K_SAPP, 0, i});
    store_number(t, OP_SET, &(struct keyref){K_SINC, 0, 0}, 0, 0);
    store_number(t, OP_SET, &(struct keyref){K_SCAS, 0, 0}, 0, 0);
    if (G.cc->want_evictions) {
        /* With -f 4 the slab classes are 96, 384, 1536, 6144, 24576, 98304,
         * 393216 and 524288 bytes; past that items are large (a mapping
         * each). Every class but 6144 gets its page now (items of 1 byte to
         * 390 KiB, skipping 2 and 4 KiB), two 1 MiB items their mappings,
         * then 16 KiB items take the rest of the 16 MiB: from then on values
         * of about 1.5 to 6 KiB can never be stored (SERVER_ERROR out of
         * memory), a large value only in place of evicted large ones, and
         * the other classes evict. w: keys are never read. */
        static char v[1 << 20];
        memset(v, 'w', sizeof(v));
        uint32_t w = 0;
        static const size_t warm[] = {1,     2,      4,      8,      16,      32,     64,
                                      128,   256,    512,    1024,   8192,    16384,  32768,
                                      65536, 131072, 262144, 400000, 1 << 20, 1 << 20};
        for (size_t i = 0; i < sizeof(warm) / sizeof(warm[0]); i++)
            emit_store(t, OP_SET, &(struct keyref){K_WARM, 0, w++}, 0, 0, v, warm[i], 0, false, 0);
        for (int i = 0; i < 12 * 42; i++) {
            if (batch_full(t)) {
                if (run_batch(t, c) != 0)
                    return -1;
                batch_begin(t);
            }
            emit_store(t, OP_SET, &(struct keyref){K_WARM, 0, w++}, 0, 0, v, 16384, 0, false, 0);
        }
    }
    int r = run_batch(t, c);
    conn_drop(c);
    return r;
}

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->w != y->w)
        return x->w < y->w ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->type < y->type ? -1 : x->type > y->type;
}

/* The value of one key on c (into *v, malloc'd), or 0 bytes and found false. */
static int fetch(struct thr *t, struct conn *c, const char *key, bool *found, char **v, size_t *n,
                 uint32_t *flags)
{
    char req[128];
    int rl = snprintf(req, sizeof(req), "get %s\r\n", key);
    long long deadline = ts_now_ms() + REPLY_MS;
    char *line, b[400];
    size_t ln;
    *found = false;
    *v = NULL;
    *n = 0;
    int r = conn_send(c, req, (size_t)rl, deadline);
    if (r == RD_OK)
        r = conn_line(c, &line, &ln, deadline);
    if (r != RD_OK)
        return rd_fail(t, c, r);
    if (line_is(line, ln, "END"))
        return 0;
    char k[256];
    uint64_t bytes, cas;
    if (!parse_value_line(line, ln, false, k, flags, &bytes, &cas) || strcmp(k, key) != 0)
        return report(t, "get %s: unexpected reply \"%s\"", key, esc(b, sizeof(b), line, ln));
    char *d;
    r = conn_value(c, (size_t)bytes, &d, deadline);
    if (r != RD_OK)
        return r == 1 ? report(t, "get %s: value not followed by \\r\\n", key) : rd_fail(t, c, r);
    *v = malloc(bytes + 1);
    if (*v == NULL)
        abort();
    memcpy(*v, d, (size_t)bytes);
    *n = (size_t)bytes;
    *found = true;
    r = conn_line(c, &line, &ln, deadline);
    if (r != RD_OK)
        return rd_fail(t, c, r);
    if (!line_is(line, ln, "END"))
        return report(t, "get %s: expected END, got \"%s\"", key, esc(b, sizeof(b), line, ln));
    return 0;
}

/* Roomy server: everything acknowledged must be there, exactly. */
static int final_checks(struct thr **th)
{
    /* Each thread's private keys, counter and append key, with its own state. */
    for (int i = 0; i < NTHREADS; i++) {
        struct thr *t = th[i];
        struct conn *c = &t->conns[0];
        if (verify_conn(t, c) != 0)
            return -1;
        batch_begin(t);
        struct keyref keys[NPRIV];
        for (uint32_t j = 0; j < NPRIV; j++)
            keys[j] = (struct keyref){K_PRIV, (uint8_t)t->id, j};
        emit_get(t, "gets", true, 0, keys, NPRIV);
        emit_get1(t, &(struct keyref){K_PCNT, (uint8_t)t->id, 0}, false);
        emit_get1(t, &(struct keyref){K_PAPP, (uint8_t)t->id, 0}, false);
        if (run_batch(t, c) != 0)
            return -1;
        /* Every fill key (the hash table grew meanwhile). */
        uint32_t done = atomic_load(&G.fill_done[i]);
        for (uint32_t n = 0; n < done;) {
            batch_begin(t);
            while (n < done && t->nexp < 40) {
                struct keyref fk[MAX_MGET];
                unsigned m = 0;
                for (; m < MAX_MGET && n < done; m++, n++)
                    fk[m] = (struct keyref){K_FILL, (uint8_t)i, n};
                emit_get(t, "get", false, 0, fk, m);
            }
            if (run_batch(t, c) != 0)
                return -1;
        }
        conn_drop(c);
    }

    struct thr *t = th[0];
    struct conn *c = &t->conns[0];
    if (verify_conn(t, c) != 0)
        return -1;
    t->ce = NULL;
    bool found;
    char *v;
    size_t n;
    uint32_t flags;
    uint64_t x;
    int rc = 0;

    /* sc:incr: every acknowledged delta, exactly. */
    uint64_t acked = 0;
    for (int i = 0; i < NTHREADS; i++)
        acked += th[i]->sinc_acked;
    if (fetch(t, c, "sc:incr", &found, &v, &n, &flags) != 0)
        return -1;
    if (!found || !parse_counter(v, n, &x))
        rc = report(t, "sc:incr: %s at the end", found ? "not a number" : "missing");
    else if (x != acked || x != atomic_load(&G.sinc_sent))
        rc = report(t,
                    "sc:incr is %" PRIu64 ", but the acknowledged increments add up to %" PRIu64
                    " (sent: %" PRIu64 ")",
                    x, acked, atomic_load(&G.sinc_sent));
    free(v);

    /* sc:cas: one per STORED cas reply. */
    if (fetch(t, c, "sc:cas", &found, &v, &n, &flags) != 0)
        return -1;
    if (!found || !parse_counter(v, n, &x))
        rc = report(t, "sc:cas: %s at the end", found ? "not a number" : "missing");
    else if (x != atomic_load(&G.scas_stored))
        rc = report(t, "sc:cas is %" PRIu64 ", but %" PRIu64 " cas increments were STORED", x,
                    atomic_load(&G.scas_stored));
    free(v);

    /* Shared append keys: exactly the acknowledged records. */
    struct recvec want = {0}, have = {0};
    for (int i = 0; i < NTHREADS; i++) {
        for (size_t j = 0; j < th[i]->recs.n; j++)
            recvec_push(&want, th[i]->recs.v[j]);
    }
    for (unsigned k = 0; k < NSAPP && rc == 0; k++) {
        char key[16];
        snprintf(key, sizeof(key), "sa:%u", k);
        if (fetch(t, c, key, &found, &v, &n, &flags) != 0) {
            rc = -1;
            break;
        }
        if (!found)
            rc = report(t, "%s missing at the end", key);
        else if (flags != app_flags(key))
            rc = report(t, "%s: flags %" PRIu32 " at the end, created with %" PRIu32, key, flags,
                        app_flags(key));
        else
            rc = check_records(t, key, v, n, &have, k);
        free(v);
    }
    if (rc == 0) {
        if (want.n > 0)
            qsort(want.v, want.n, sizeof(*want.v), cmp_rec);
        if (have.n > 0)
            qsort(have.v, have.n, sizeof(*have.v), cmp_rec);
        size_t i = 0;
        while (i < want.n && i < have.n && cmp_rec(&want.v[i], &have.v[i]) == 0)
            i++;
        if (i < want.n || i < have.n) {
            const struct rec *w = i < want.n ? &want.v[i] : NULL;
            const struct rec *h = i < have.n ? &have.v[i] : NULL;
            if (w != NULL && (h == NULL || cmp_rec(w, h) < 0))
                rc = report(t,
                            "sa:%u: acknowledged %s of writer %u seq %" PRIu32
                            " is missing (%zu records acknowledged, %zu found)",
                            w->key, w->type == 'A' ? "append" : "prepend", w->w, w->seq, want.n,
                            have.n);
            else
                rc = report(t,
                            "sa:%u: %s of writer %u seq %" PRIu32
                            " was never acknowledged (%zu records acknowledged, %zu found)",
                            h->key, h->type == 'A' ? "append" : "prepend", h->w, h->seq, want.n,
                            have.n);
        }
    }
    fprintf(stderr, "[%s] shared append keys hold %zu records, all acknowledged ones\n", G.cc->name,
            have.n);
    free(want.v);
    free(have.v);
    conn_drop(c);
    return rc;
}

static long long stat_of(const char *name)
{
    return ts_stat(G.port, "stats", name);
}

/* Lines of the server log worth showing: sanitizer reports and what follows. */
static void show_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[1024];
    int shown = 0, from = -1, no = 0;
    while (fgets(line, sizeof(line), f) != NULL && shown < 80) {
        no++;
        if (from < 0 &&
            (strstr(line, "ERROR: ") != NULL || strstr(line, "runtime error:") != NULL ||
             strstr(line, "WARNING: ") != NULL))
            from = no;
        if (from >= 0) {
            fprintf(stderr, "  log: %s", line);
            shown++;
        }
    }
    fclose(f);
}

static void run_case(const struct ccase *cc)
{
    memset(&G, 0, sizeof(G));
    G.cc = cc;
    pthread_mutex_init(&G.lock, NULL);
    const char *env = getenv("TC_CONCURRENCY_SECONDS");
    int secs = env != NULL && atoi(env) > 0 ? atoi(env) : 5;
    env = getenv("TC_CONCURRENCY_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : 20240611;
    G.duration_ms = secs * 1000LL;

    struct tserver s;
    ck_assert_int_eq(ts_start_tiercached(&s, cc->args), 0);
    G.port = s.port;
    fprintf(stderr, "[%s] tiercached on port %d, log %s, %d s, seed %" PRIu64 "\n", cc->name,
            s.port, s.log_path, secs, seed);

    struct thr *th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        th[i] = thr_new(i, seed);
    struct thr *setup = thr_new(0, seed ^ 1);
    setup->id = 0;
    /* Setup writes no data values: thread 0's sequence numbers stay its own. */
    long long ev0 = 0;
    if (setup_keys(setup) == 0) {
        ev0 = stat_of("evictions");
        G.t0 = ts_now_ms();
        G.t_end = G.t0 + G.duration_ms;
        for (int i = 0; i < NTHREADS; i++)
            ck_assert_int_eq(pthread_create(&th[i]->th, NULL, worker_main, th[i]), 0);
        for (int i = 0; i < NTHREADS; i++)
            pthread_join(th[i]->th, NULL);
    }
    long long elapsed = ts_now_ms() - G.t0;

    long sum[8] = {0};
    for (int i = 0; i < NTHREADS; i++) {
        sum[0] += th[i]->n_batches;
        sum[1] += th[i]->n_cmds;
        sum[2] += th[i]->n_hits;
        sum[3] += th[i]->n_misses;
        sum[4] += th[i]->n_oom;
        sum[5] += th[i]->n_connects;
        sum[6] += th[i]->n_rejected;
        sum[7] += th[i]->n_closes;
    }
    fprintf(stderr,
            "[%s] %lld ms: %ld batches, %ld commands, %ld hits, %ld misses, %ld out-of-memory, "
            "%ld connects, %ld turned away, %ld closes\n",
            cc->name, elapsed, sum[0], sum[1], sum[2], sum[3], sum[4], sum[5], sum[6], sum[7]);

    if (G.nerrors == 0 && cc->roomy)
        final_checks(th);

    if (G.nerrors == 0) {
        /* Every client is gone: the server must count only the stats connection. */
        long long deadline = ts_now_ms() + 10000, conns = -1;
        while (ts_now_ms() < deadline && (conns = stat_of("curr_connections")) != 1) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (conns != 1)
            report(NULL, "curr_connections is %lld 10 s after every client closed (expected 1)",
                   conns);
        long long ev = stat_of("evictions");
        long long hp = stat_of("hash_power_level");
        long long items = stat_of("curr_items");
        long long rejected = stat_of("rejected_connections");
        fprintf(stderr,
                "[%s] server: evictions %lld, curr_items %lld, hash_power_level %lld, "
                "rejected_connections %lld\n",
                cc->name, ev, items, hp, rejected);
        if (cc->roomy && ev != 0)
            report(NULL, "%lld evictions on the roomy server (the test needs none)", ev);
        if (cc->want_evictions) {
            char per[512] = "";
            size_t o = 0;
            for (int id = 1; id <= 12 && o < sizeof(per); id++) {
                char name[32];
                snprintf(name, sizeof(name), "items:%d:evicted", id);
                long long n = ts_stat(G.port, "stats items", name);
                if (n > 0)
                    o += (size_t)snprintf(per + o, sizeof(per) - o, " class %d: %lld", id, n);
            }
            fprintf(stderr, "[%s] evictions during setup %lld, per class:%s\n", cc->name, ev0, per);
        }
        if (cc->want_evictions && ev <= ev0)
            report(NULL, "no evictions during the run on the small server: the case did not "
                         "test them");
        if (cc->want_evictions && sum[4] == 0)
            report(NULL, "no out-of-memory reply on the small server: the case did not test them");
        if (cc->fill && hp < 17)
            report(NULL, "hash_power_level %lld: the table did not grow during the run", hp);
    }

    int st = ts_stop(&s);
    bool asan = ts_file_contains(s.log_path, "ERROR: AddressSanitizer");
    bool lsan = ts_file_contains(s.log_path, "ERROR: LeakSanitizer");
    bool ubsan = ts_file_contains(s.log_path, "runtime error:");
    if (asan || lsan || ubsan)
        report(NULL, "sanitizer report in the server log %s", s.log_path);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        report(NULL, "tiercached did not exit 0 on SIGTERM: %s %d (log %s)",
               st == -1          ? "not stopped within 10 s, killed"
               : WIFSIGNALED(st) ? "killed by signal"
                                 : "exit status",
               st == -1          ? 0
               : WIFSIGNALED(st) ? WTERMSIG(st)
                                 : WEXITSTATUS(st),
               s.log_path);
    if (G.nerrors > 0)
        show_log(s.log_path);
    else
        unlink(s.log_path);

    char all[MAX_ERRORS * 3072 + 64];
    size_t o = (size_t)snprintf(all, sizeof(all), "%d error(s):", G.nerrors);
    for (int i = 0; i < G.nerrors && i < MAX_ERRORS && o < sizeof(all); i++)
        o += (size_t)snprintf(all + o, sizeof(all) - o, "\n  %s", G.msgs[i]);
    int nerr = G.nerrors;
    for (int i = 0; i < NTHREADS; i++)
        thr_free(th[i]);
    thr_free(setup);
    pthread_mutex_destroy(&G.lock);
    ck_assert_msg(nerr == 0, "%s", all);
}

START_TEST(test_roomy)
{
    run_case(&case_roomy);
}
END_TEST

START_TEST(test_small)
{
    run_case(&case_small);
}
END_TEST

START_TEST(test_conns)
{
    run_case(&case_conns);
}
END_TEST

int main(void)
{
    const char *env = getenv("TC_CONCURRENCY_SECONDS");
    int secs = env != NULL && atoi(env) > 0 ? atoi(env) : 5;
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("concurrency");
    tcase_set_timeout(tc, secs * 3 + 90);
    tcase_add_test(tc, test_roomy);
    tcase_add_test(tc, test_small);
    tcase_add_test(tc, test_conns);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
