/*
 * concurrency.h: the private header of the concurrency stress test
 * (tests/integration/check_concurrency.c and the files next to this one):
 * the limits, the case description, the state shared by all threads (G),
 * the per-thread model of what the server holds (struct thr), and each
 * file's functions.
 *
 * Files: check_concurrency.c runs the cases (setup, threads, final checks);
 * values.c makes and verifies keys, values and append records; client.c is
 * the buffered, bounded-wait protocol client; batch.c writes pipelined
 * commands with what each expects; replies.c reads every reply and checks it
 * against the model; workload.c is the command mix and the client threads.
 *
 * Threads: each struct thr belongs to its one thread; G is written before
 * the threads start and after they end, except its atomics and what
 * report() changes under G.lock.
 */
#ifndef TC_TESTS_CONCURRENCY_H
#define TC_TESTS_CONCURRENCY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* The case being run, shared by every thread (check_concurrency.c). */
struct run_state {
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
};

extern struct run_state G;

/* ---------------------------------------------------------------------------
 * Keys, commands, per-thread state
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

enum len_policy { LEN_ANY, LEN_TINY, LEN_BIG };

enum ekind { E_STORE, E_GET, E_DELETE, E_ARITH, E_TOUCH, E_VERSION, E_MN, E_ERROR, E_STATS };
enum sop { OP_SET, OP_ADD, OP_REPLACE, OP_APPEND, OP_PREPEND, OP_CAS };
extern const char *const sop_name[]; /* indexed by enum sop */
enum rep { R_NONE, R_STORED, R_NOT_STORED, R_EXISTS, R_NOT_FOUND, R_OOM, R_TOO_LARGE };

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

/* Connection reads: RD_OK, or why there is no more. */
enum { RD_OK = 0, RD_TIMEOUT = -1, RD_EOF = -2, RD_ERR = -3 };

/* ---------------------------------------------------------------------------
 * check_concurrency.c
 * ------------------------------------------------------------------------- */

/* Record a failure of thread t (NULL: of the run) with the connection and
 * command being checked; stops the run after MAX_ERRORS. Returns -1. */
int report(struct thr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------
 * values.c: keys, hashes, values, records, and their verification
 * ------------------------------------------------------------------------- */

/* The name of k into buf (cap >= 251); its length. */
int key_name(const struct keyref *k, char *buf, size_t cap);
uint64_t mix64(uint64_t x);
/* A 32-bit hash of key, and the flags of append keys and counters. */
uint32_t key_h32(const char *key);
uint32_t app_flags(const char *key);
uint32_t cnt_flags(const char *key);
/* The flags of writer w's data value number seq for key. */
uint32_t data_flags(const char *key, unsigned w, uint32_t seq);
enum len_policy policy_of(const struct keyref *k);
/* The length of writer w's value number seq for this key. */
size_t data_len(const char *key, unsigned w, uint32_t seq, enum len_policy pol);
/* Writer w's data value number seq for key, len bytes, into dst. */
void make_data(char *dst, const char *key, unsigned w, uint32_t seq, size_t len);
/* Writer w's append ('A') or prepend ('P') record seq into dst (REC_MAX); its length. */
size_t make_rec(char *dst, char type, const char *key, unsigned w, uint32_t seq);
/* Printable rendering of bytes for messages, shortened in the middle. */
const char *esc(char *buf, size_t cap, const char *s, size_t n);
void recvec_push(struct recvec *rv, struct rec r);
/* Check a data value got for k (0 or report()). */
int check_data(struct thr *t, const struct keyref *k, const char *key, uint32_t flags,
               const char *v, size_t n);
/* Check a run of records; with collect, add them to it (key index kidx). */
int check_records(struct thr *t, const char *key, const char *v, size_t n, struct recvec *collect,
                  unsigned kidx);
/* A decimal counter, maybe space padded. */
bool parse_counter(const char *v, size_t n, uint64_t *out);
int check_counter(struct thr *t, const char *key, uint32_t flags, const char *v, size_t n,
                  uint64_t *out);

/* ---------------------------------------------------------------------------
 * client.c: connections, buffered, non-blocking, every wait bounded
 * ------------------------------------------------------------------------- */

/* Send everything, reading replies meanwhile so neither side can block the other. */
int conn_send(struct conn *c, const char *p, size_t n, long long deadline);
/* The next line, without its "\r\n"; valid until the next conn_ call. */
int conn_line(struct conn *c, char **line, size_t *n, long long deadline);
/* n bytes of value and their "\r\n". 1 if the "\r\n" is missing. */
int conn_value(struct conn *c, size_t n, char **data, long long deadline);
/* report() a failed read r on c. */
int rd_fail(struct thr *t, struct conn *c, int r);
void conn_drop(struct conn *c);
bool line_is(const char *line, size_t n, const char *s);
bool parse_u64(const char *s, size_t n, uint64_t *out);
/* "VALUE <key> <flags> <bytes>[ <cas>]" exactly. */
bool parse_value_line(const char *line, size_t n, bool with_cas, char *key, uint32_t *flags,
                      uint64_t *bytes, uint64_t *cas);
/* 0: open; 1: turned away (past -c); -1: failed. */
int conn_open(struct thr *t, struct conn *c);
/* Close c in one of several ways (quit, reset, replies unread, cut short). */
void conn_close_some_way(struct thr *t, struct conn *c);

/* ---------------------------------------------------------------------------
 * batch.c: building a batch of pipelined commands and what they expect
 * ------------------------------------------------------------------------- */

void batch_begin(struct thr *t);
bool batch_full(const struct thr *t);
/* n more bytes at the end of the batch. */
char *out_reserve(struct thr *t, size_t n);
struct exp *add_exp(struct thr *t, int kind);
/* A command line: to the batch, and (shortened) to e->cmd for messages. */
void out_cmd(struct thr *t, struct exp *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A storage command; data NULL means writer t's data value number seq. */
struct exp *emit_store(struct thr *t, int op, const struct keyref *k, uint32_t flags,
                       int64_t exptime, const char *data, size_t len, uint64_t cas, bool noreply,
                       uint32_t seq);
struct exp *store_data(struct thr *t, int op, const struct keyref *k, int64_t exptime, uint64_t cas,
                       bool noreply);
struct exp *store_number(struct thr *t, int op, const struct keyref *k, uint64_t v, uint64_t cas);
struct exp *store_empty_app(struct thr *t, int op, const struct keyref *k);
struct exp *store_rec(struct thr *t, int op, const struct keyref *k, bool noreply);
struct exp *emit_get(struct thr *t, const char *verb, bool with_cas, int64_t exptime,
                     const struct keyref *keys, unsigned n);
void emit_get1(struct thr *t, const struct keyref *k, bool with_cas);
void emit_delete(struct thr *t, const struct keyref *k, bool noreply);
void emit_touch(struct thr *t, const struct keyref *k, int64_t exptime, bool noreply);
void emit_arith(struct thr *t, const struct keyref *k, bool incr, uint64_t d, bool noreply);
int64_t pick_exptime(struct thr *t, bool allow_expired);

/* ---------------------------------------------------------------------------
 * replies.c: reading and checking replies
 * ------------------------------------------------------------------------- */

/* Send the batch, check every reply in order. 0 or -1 (reported). */
int run_batch(struct thr *t, struct conn *c);

/* ---------------------------------------------------------------------------
 * workload.c: the command mix and the client threads
 * ------------------------------------------------------------------------- */

uint64_t rnd(struct thr *t);
unsigned rn(struct thr *t, unsigned n);
/* Writer t's next sequence number, published in G.maxseq. */
uint32_t next_seq(struct thr *t);
/* A client thread: batches of the command mix until the time is up. */
void *worker_main(void *arg);
struct thr *thr_new(int id, uint64_t seed);
void thr_free(struct thr *t);

#endif
