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
 * that slab classes and large items evict: required; "SERVER_ERROR out of
 * memory" is allowed but not required, since each class gets a first page
 * over -m as in memcached, and what is left is a matter of timing), and many connections (200 slots
 * over -c 180, opened, used and closed in several ways: quit, close, reset, close with replies
 * unread, with a value or a command line half sent; turned-away connections must get "ERROR Too
 * many open connections"). At the end: the server's connection count drops back to 1, its log has
 * no sanitizer report, and it exits 0 on SIGTERM.
 *
 * Every wait is bounded (poll with a deadline). TC_CONCURRENCY_SECONDS sets
 * the length of each case (default 5), TC_CONCURRENCY_SEED the seed.
 *
 * This file holds the cases and their run (setup, the threads, the final
 * checks); the client, values, batches, replies and workload are in
 * concurrency/ (see concurrency/concurrency.h).
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "concurrency/concurrency.h"
#include "testutil.h"

/* ---------------------------------------------------------------------------
 * Cases and global state
 * ------------------------------------------------------------------------- */

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

struct run_state G;

/* ---------------------------------------------------------------------------
 * Failures
 * ------------------------------------------------------------------------- */

int report(struct thr *t, const char *fmt, ...)
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
         * then 16 KiB items take the rest of the 16 MiB: from then on the
         * 6144 class lives in the one page it gets over -m (memcached's
         * rule), a large value only in place of evicted large ones, and the
         * other classes evict. w: keys are never read. */
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
