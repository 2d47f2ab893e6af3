/*
 * check_flash_faults.c: fault injection into the flash store (part of the
 * check_flash executable; see check_flash.h).
 *
 * Each case runs once per N = 1, 2, ...: the Nth LMDB call from the start
 * of the operation fails (flash_fault_inject). The operation must report an
 * error, leave the store exactly as before (records, filter, the statistics
 * that describe what is stored) and work when retried after
 * flash_fault_clear(). The loop ends at the first N the operation does not
 * reach. Every N runs on a store of its own, and all failures are gathered
 * into one report per case.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_flash.h"

struct report {
    char text[3000]; /* Check limits a message to a few KiB */
    size_t len;
    int failures;
};

static void report_add(struct report *rp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report_add(struct report *rp, const char *fmt, ...)
{
    rp->failures++;
    if (rp->len >= sizeof(rp->text) - 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rp->text + rp->len, sizeof(rp->text) - rp->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        rp->len += (size_t)n;
    if (rp->len >= sizeof(rp->text) - 2)
        rp->len = sizeof(rp->text) - 2;
    rp->text[rp->len++] = '\n';
    rp->text[rp->len] = '\0';
}

/* A scenario: the state before (set up on F), the operation, its effect. */
struct scenario {
    const char *name;
    void (*prepare)(void);             /* commits the baseline */
    tc_status_e (*op)(void);           /* the transaction; aborts itself on failure */
    const char *(*check_before)(void); /* NULL if the baseline is intact */
    const char *(*check_after)(void);  /* NULL if the operation's effect is there */
    uint64_t size;                     /* of the store */
};

/* Run op in a thread; false if it did not finish within ms (it is then
 * left blocked: the store it uses must be abandoned, not closed). */
struct op_run {
    tc_status_e (*op)(void);
    tc_status_e st;
};

static void *op_thread(void *arg)
{
    struct op_run *x = arg;
    x->st = x->op();
    return NULL;
}

static bool run_with_timeout(tc_status_e (*op)(void), long ms, tc_status_e *st)
{
    struct op_run *x = calloc(1, sizeof(*x)); /* leaked if the thread hangs */
    x->op = op;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, op_thread, x), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(t, NULL, &until) != 0) {
        pthread_detach(t);
        return false;
    }
    *st = x->st;
    free(x);
    return true;
}

/* Statistics that describe the stored state (not operation counters). */
static const char *stats_differ(const struct flash_stats *a, const struct flash_stats *b)
{
    static char why[256];
#define CMP(field)                                                                                 \
    if (a->field != b->field) {                                                                    \
        snprintf(why, sizeof(why), #field " %llu, was %llu", (unsigned long long)b->field,         \
                 (unsigned long long)a->field);                                                    \
        return why;                                                                                \
    }
    CMP(items)
    CMP(live_bytes)
    CMP(batches)
    CMP(used_bytes)
    CMP(filter_items)
    CMP(evicted_items)
    CMP(evicted_batches)
#undef CMP
    return NULL;
}

/* Consecutive calls whose failure left the same statistic changed: one line. */
struct stat_run {
    char field[32], first_why[256];
    long from, to;
};

static void stat_run_flush(struct stat_run *sr, const char *name, struct report *rp)
{
    if (sr->field[0] == '\0')
        return;
    if (sr->from == sr->to)
        report_add(rp, "%s: call %ld failed: statistics changed: %s", name, sr->from,
                   sr->first_why);
    else
        report_add(rp, "%s: calls %ld to %ld failed: statistics changed: %s (at call %ld: %s)",
                   name, sr->from, sr->to, sr->field, sr->from, sr->first_why);
    sr->field[0] = '\0';
}

static void stat_run_add(struct stat_run *sr, long nth, const char *why, const char *name,
                         struct report *rp)
{
    char field[32];
    snprintf(field, sizeof(field), "%.*s", (int)strcspn(why, " "), why);
    if (sr->field[0] != '\0' && strcmp(field, sr->field) == 0 && sr->to == nth - 1) {
        sr->to = nth;
        return;
    }
    stat_run_flush(sr, name, rp);
    snprintf(sr->field, sizeof(sr->field), "%s", field);
    snprintf(sr->first_why, sizeof(sr->first_why), "%s", why);
    sr->from = sr->to = nth;
}

static void run_fault_loop(const struct scenario *sc, int err, tc_status_e want, int min_sites,
                           struct report *rp)
{
    int fired = 0;
    struct stat_run sr = {.field = ""};
    for (long nth = 1; nth < 400; nth++) {
        open_store(sc->size);
        sc->prepare();
        struct evlist ev0 = {0};
        flash_drain_evicted(F, on_evicted, &ev0);
        free(ev0.v);
        struct flash_stats before = stats();

        flash_fault_inject(F, nth, err, 1);
        tc_status_e st = sc->op();
        flash_fault_clear(F);
        if (st == TC_OK) {
            /* The fault never fired: past the operation's last call. */
            const char *why = sc->check_after();
            if (why != NULL)
                report_add(rp, "%s: unfaulted run: %s", sc->name, why);
            close_store();
            break;
        }
        fired++;
        if (st != want)
            report_add(rp, "%s: call %ld failing with %d gave %s, want %s", sc->name, nth, err,
                       tc_strerror(st), tc_strerror(want));
        const char *why = sc->check_before();
        if (why != NULL)
            report_add(rp, "%s: call %ld failed: half-applied: %s", sc->name, nth, why);
        struct flash_stats after = stats();
        if ((why = stats_differ(&before, &after)) != NULL)
            stat_run_add(&sr, nth, why, sc->name, rp);
        struct evlist ev = {0};
        flash_drain_evicted(F, on_evicted, &ev);
        if (ev.n != 0)
            report_add(rp,
                       "%s: call %ld failed: %zu evictions of the aborted transaction "
                       "reported",
                       sc->name, nth, ev.n);
        free(ev.v);

        /* Retry without the fault: it must work (in a thread: it may hang). */
        tc_status_e st2 = TC_OK;
        if (!run_with_timeout(sc->op, 300, &st2)) {
            report_add(rp, "%s: call %ld failed: the retry hung (a transaction left open?)",
                       sc->name, nth);
            /* Abandon this store: a thread is blocked in it. */
            F = NULL;
            R = NULL;
            DIR_[0] = '\0';
            continue;
        }
        if (st2 != TC_OK) {
            report_add(rp, "%s: call %ld failed: the retry gave %s", sc->name, nth,
                       tc_strerror(st2));
        } else if ((why = sc->check_after()) != NULL) {
            report_add(rp, "%s: call %ld failed: after the retry: %s", sc->name, nth, why);
        }
        close_store();
    }
    stat_run_flush(&sr, sc->name, rp);
    if (fired < min_sites)
        report_add(rp, "%s: only %d call sites failed, want at least %d", sc->name, fired,
                   min_sites);
}

/* --- scenario: a mixed write transaction -------------------------------- */

static struct rec S_a, S_b, S_c, S_d, S_s1, S_s2; /* baseline */
static struct rec S_a2, S_n1, S_n2;               /* the transaction's */

static void mixed_prepare(void)
{
    next_cas = 1000;
    S_a = mk("A", 100);
    S_b = mk("B", 200);
    S_c = mk("C", 300);
    S_s1 = mk("S1", 50);
    S_s2 = mk("S2", 60);
    S_s2.hv = S_s1.hv; /* same hash */
    struct rec base[5] = {S_a, S_b, S_c, S_s1, S_s2};
    commit_recs(base, 5);
    S_d = mk("D", 400);
    commit_one(&S_d);
    S_a2 = S_a;
    S_a2.cas = 5000;
    S_a2.vseed = 5000;
    S_a2.nbytes = 150;
    S_n1 = mk("N1", 70);
    S_n2 = mk("N2", 80);
    S_n2.hv = S_s1.hv; /* a third key on that hash */
}

/* As the writer does it: abort after any failure before the commit. */
static tc_status_e mixed_op(void)
{
    tc_status_e st = flash_begin(F);
    bool skipped = false;
    if (st == TC_OK)
        st = write_rec(&S_n1, &skipped); /* new key */
    if (st == TC_OK)
        st = write_rec(&S_a2, &skipped); /* overwrite */
    if (st == TC_OK)
        st = write_rec(&S_n2, &skipped); /* new key on a shared hash */
    if (st == TC_OK)
        st = flash_delete(F, S_b.hv, S_b.key, S_b.nkey);
    if (st == TC_OK)
        st = write_rec(&S_c, &skipped); /* already current: skipped */
    if (st == TC_OK && !skipped)
        return TC_INVALID;
    if (st == TC_OK)
        return flash_commit(F);
    flash_abort(F);
    return st;
}

static const char *state_check(const struct rec *present, size_t np, const struct rec *absent,
                               size_t na)
{
    for (size_t i = 0; i < np; i++) {
        const char *why = differs(R, &present[i]);
        if (why != NULL)
            return why;
        if (!flash_maybe(R, present[i].hv))
            return "a present key is not in the filter";
    }
    static char why[128];
    for (size_t i = 0; i < na; i++) {
        tc_status_e st = lookup(R, absent[i].hv, absent[i].key);
        if (st != TC_NOT_FOUND) {
            snprintf(why, sizeof(why), "'%.64s' should be absent: %s", absent[i].key,
                     tc_strerror(st));
            return why;
        }
    }
    return NULL;
}

static const char *mixed_before(void)
{
    struct rec p[] = {S_a, S_b, S_c, S_d, S_s1, S_s2};
    struct rec a[] = {S_n1, S_n2};
    return state_check(p, 6, a, 2);
}

static const char *mixed_after(void)
{
    struct rec p[] = {S_a2, S_c, S_d, S_s1, S_s2, S_n1, S_n2};
    struct rec a[] = {S_b};
    const char *why = state_check(p, 7, a, 1);
    if (why == NULL && stats().items != 7)
        why = "items is not 7";
    return why;
}

static const struct scenario MIXED = {
    "mixed write transaction", mixed_prepare, mixed_op, mixed_before, mixed_after, 8 * MIB};

START_TEST(test_fault_write_txn_eio)
{
    close_store(); /* the loop opens its own */
    struct report rp = {.len = 0};
    run_fault_loop(&MIXED, EIO, TC_IO_ERROR, 20, &rp);
    ck_assert_msg(rp.failures == 0, "%d failures:\n%s", rp.failures, rp.text);
}
END_TEST

START_TEST(test_fault_write_txn_map_full)
{
    close_store();
    struct report rp = {.len = 0};
    run_fault_loop(&MIXED, ERR_MAP_FULL, TC_NO_MEMORY, 20, &rp);
    ck_assert_msg(rp.failures == 0, "%d failures:\n%s", rp.failures, rp.text);
}
END_TEST

/* --- scenario: a commit that evicts --------------------------------------- */

enum { EV_PER = 4, EV_VAL = 20000, EV_NEW = 3, EV_NEW_VAL = 3 * EV_PER * EV_VAL / EV_NEW };
static struct rec *E_base;
static int E_nbase;
static struct rec E_new[EV_NEW]; /* as many bytes as 3 batches, in few records */

/* Fill until the transaction (3 batches' worth) will pass the eviction mark,
 * by up to one batch (so that it still fits in the map). */
static void evict_prepare(void)
{
    next_cas = 1000;
    free(E_base);
    E_base = malloc(200 * EV_PER * sizeof(*E_base));
    E_nbase = 0;
    for (int b = 0; b < 200; b++) {
        struct flash_stats s = stats();
        if (s.used_bytes + (uint64_t)EV_NEW * EV_NEW_VAL > s.evict_above + 80 * KIB)
            break;
        ck_assert_int_eq(flash_begin(F), TC_OK);
        for (int i = 0; i < EV_PER; i++) {
            char key[32];
            snprintf(key, sizeof(key), "base:%d:%d", b, i);
            E_base[E_nbase] = mk(key, EV_VAL);
            ck_assert_int_eq(write_rec(&E_base[E_nbase], NULL), TC_OK);
            E_nbase++;
        }
        ck_assert_int_eq(flash_commit(F), TC_OK);
    }
    ck_assert_uint_eq(stats().evicted_batches, 0);
    for (int i = 0; i < EV_NEW; i++) {
        char key[32];
        snprintf(key, sizeof(key), "new:%d", i);
        E_new[i] = mk(key, EV_NEW_VAL);
    }
}

static tc_status_e evict_op(void)
{
    tc_status_e st = flash_begin(F);
    for (int i = 0; st == TC_OK && i < EV_NEW; i++)
        st = write_rec(&E_new[i], NULL);
    /* Also delete a key of the oldest batch: eviction must not count it. */
    if (st == TC_OK)
        st = flash_delete(F, E_base[1].hv, E_base[1].key, E_base[1].nkey);
    if (st == TC_OK)
        return flash_commit(F);
    flash_abort(F);
    return st;
}

static const char *evict_before(void)
{
    return state_check(E_base, (size_t)E_nbase, E_new, EV_NEW);
}

/*
 * How many of rs[0..n) are gone from the front: the oldest batches (of
 * `per` records) must have gone whole and everything after them stayed;
 * `deleted` (an index or -1) is absent anyway. -1 if the pattern is wrong.
 */
static int gone_prefix(const struct rec *rs, int n, int per, int deleted)
{
    int g = 0;
    while (g < n && (g == deleted || lookup(R, rs[g].hv, rs[g].key) == TC_NOT_FOUND))
        g++;
    if (g % per != 0)
        return -1;
    for (int i = g; i < n; i++) {
        if (differs(R, &rs[i]) != NULL)
            return -1;
    }
    return g;
}

static const char *evict_after(void)
{
    static char why[160];
    const char *w = state_check(E_new, EV_NEW, NULL, 0);
    if (w != NULL)
        return w;
    int gone = gone_prefix(E_base, E_nbase, EV_PER, 1);
    if (gone < 0)
        return "eviction did not drop whole batches, oldest first";
    if (gone == 0)
        return "the commit evicted nothing";
    uint64_t want = (uint64_t)(E_nbase - gone + EV_NEW);
    if (stats().items != want) {
        snprintf(why, sizeof(why), "items %llu, want %llu", (unsigned long long)stats().items,
                 (unsigned long long)want);
        return why;
    }
    struct evlist ev = {0};
    flash_drain_evicted(F, on_evicted, &ev);
    size_t n = ev.n;
    free(ev.v);
    if (n != (size_t)gone - 1) { /* the deleted one is not an eviction */
        snprintf(why, sizeof(why), "%zu evictions reported for %d records", n, gone - 1);
        return why;
    }
    return NULL;
}

static const struct scenario EVICT = {"commit with eviction", evict_prepare, evict_op,
                                      evict_before,           evict_after,   3 * MIB};

START_TEST(test_fault_commit_with_eviction)
{
    close_store();
    struct report rp = {.len = 0};
    run_fault_loop(&EVICT, EIO, TC_IO_ERROR, 25, &rp);
    free(E_base);
    E_base = NULL;
    ck_assert_msg(rp.failures == 0, "%d failures:\n%s", rp.failures, rp.text);
}
END_TEST

/* --- scenario: flash_make_room ---------------------------------------------- */

static struct rec *M_base;
enum { M_NB = 5, M_PER = 4 };

static void room_prepare(void)
{
    next_cas = 1000;
    free(M_base);
    M_base = fill_batches("room", M_NB, M_PER, 100000);
}

static uint64_t M_used; /* used bytes before make_room */

static tc_status_e room_op(void)
{
    M_used = stats().used_bytes;
    return flash_make_room(F, 50); /* frees half of what is used: ~2 MB, 5 batches of 400 KB */
}

static const char *room_before(void)
{
    return state_check(M_base, M_NB * M_PER, NULL, 0);
}

static const char *room_after(void)
{
    struct flash_stats s = stats();
    if (s.used_bytes > M_used / 2)
        return "make_room left more than half of what was used";
    int gone = gone_prefix(M_base, M_NB * M_PER, M_PER, -1);
    if (gone < 0)
        return "make_room did not drop whole batches, oldest first";
    if (gone == 0 || gone >= M_NB * M_PER)
        return "make_room evicted nothing or everything";
    if (s.items != (uint64_t)(M_NB * M_PER - gone))
        return "items does not match what is left";
    struct evlist ev = {0};
    flash_drain_evicted(F, on_evicted, &ev);
    size_t n = ev.n;
    free(ev.v);
    return n == (size_t)gone ? NULL : "the evicted records are not reported";
}

static const struct scenario ROOM = {"flash_make_room", room_prepare, room_op,
                                     room_before,       room_after,   8 * MIB};

START_TEST(test_fault_make_room)
{
    close_store();
    struct report rp = {.len = 0};
    run_fault_loop(&ROOM, EIO, TC_IO_ERROR, 10, &rp);
    free(M_base);
    M_base = NULL;
    ck_assert_msg(rp.failures == 0, "%d failures:\n%s", rp.failures, rp.text);
}
END_TEST

/* --- explicit regressions -------------------------------------------------- */

START_TEST(test_abort_after_failed_begin)
{
    /* writer.c's apply() calls flash_abort() after any failure, a failed
     * flash_begin() included. The next transaction must still work. */
    struct rec a = mk("one", 10), b = mk("two", 10);
    commit_one(&a);
    flash_fault_inject(F, 1, EIO, 1);
    ck_assert_int_eq(flash_begin(F), TC_IO_ERROR);
    flash_abort(F);
    flash_fault_clear(F);
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(write_rec(&b, NULL), TC_OK);
    tc_status_e st = flash_commit(F);
    ck_assert_msg(st == TC_OK,
                  "after a failed flash_begin + flash_abort, the next commit gave %s "
                  "(flash_abort rewound the batch sequence to an already used number?)",
                  tc_strerror(st));
    ck_rec(&a);
    ck_rec(&b);
}
END_TEST

START_TEST(test_fault_count_and_clear)
{
    struct rec a = mk("x", 10);
    commit_one(&a);
    /* count 2: the next two calls fail, then it works by itself. */
    flash_fault_inject(F, 1, EIO, 2);
    ck_assert_int_eq(lookup(R, a.hv, a.key), TC_IO_ERROR); /* call 1 */
    ck_assert_int_eq(lookup(R, a.hv, a.key), TC_IO_ERROR); /* call 2 (renew or begin) */
    ck_rec(&a);
    /* count 0: every call fails until cleared. */
    flash_fault_inject(F, 1, EIO, 0);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(lookup(R, a.hv, a.key), TC_IO_ERROR);
    ck_assert_int_eq(flash_begin(F), TC_IO_ERROR);
    ck_assert_int_eq(flash_make_room(F, 50), TC_IO_ERROR);
    flash_fault_clear(F);
    ck_rec(&a);
    /* nth 3: two calls succeed first. */
    flash_fault_inject(F, 3, EIO, 1);
    ck_assert_int_eq(flash_begin(F), TC_OK); /* calls 1, 2 */
    struct rec b = mk("y", 10);
    ck_assert_int_eq(write_rec(&b, NULL), TC_IO_ERROR); /* call 3: the lookup */
    flash_abort(F);
    flash_fault_clear(F);
    ck_assert_uint_ge(stats().errors, 24);
}
END_TEST

/* --- readers ---------------------------------------------------------------- */

START_TEST(test_fault_reader)
{
    struct rec x = mk("rx", 300), s1 = mk("rs1", 100), s2 = mk("rs2", 200);
    s2.hv = s1.hv;
    commit_one(&s1);
    commit_one(&s2); /* another batch: s2 is the second duplicate of the hash */
    commit_one(&x);
    struct {
        const char *what;
        const struct rec *r;
        bool fresh;   /* a new reader handle (begin) or a used one (renew) */
        bool present; /* else: an absent key on the shared hash */
    } cases[] = {
        {"fresh reader", &x, true, true},
        {"used reader", &x, false, true},
        {"second duplicate", &s2, false, true},
        {"absent key on a shared hash", NULL, false, false},
    };
    struct rec absent = mk("rs3", 1);
    absent.hv = s1.hv;
    struct report rp = {.len = 0};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const struct rec *r = cases[c].present ? cases[c].r : &absent;
        int fired = 0;
        for (long nth = 1; nth < 50; nth++) {
            struct flash_reader *rd = NULL;
            ck_assert_int_eq(flash_reader_create(F, &rd), TC_OK);
            if (!cases[c].fresh)
                ck_assert_int_eq(lookup(rd, x.hv, x.key), TC_OK);
            uint64_t errs = stats().errors;
            flash_fault_inject(F, nth, EIO, 1);
            struct flash_item got;
            tc_status_e st = flash_get(rd, r->hv, r->key, r->nkey, &got);
            flash_fault_clear(F);
            tc_status_e clean = cases[c].present ? TC_OK : TC_NOT_FOUND;
            if (st == clean) {
                if (st == TC_OK)
                    flash_reader_end(rd);
                flash_reader_destroy(&rd);
                break;
            }
            fired++;
            if (st != TC_IO_ERROR)
                report_add(&rp, "%s: call %ld failing gave %s", cases[c].what, nth,
                           tc_strerror(st));
            if (stats().errors != errs + 1)
                report_add(&rp, "%s: call %ld: errors went from %llu to %llu", cases[c].what, nth,
                           (unsigned long long)errs, (unsigned long long)stats().errors);
            /* The same handle works again, and so do the others. */
            const char *why = cases[c].present ? differs(rd, r) : NULL;
            if (why != NULL)
                report_add(&rp, "%s: call %ld: then: %s", cases[c].what, nth, why);
            if ((why = differs(R, &x)) != NULL)
                report_add(&rp, "%s: call %ld: another reader: %s", cases[c].what, nth, why);
            flash_reader_destroy(&rd);
        }
        if (fired < 4)
            report_add(&rp, "%s: only %d call sites failed", cases[c].what, fired);
    }
    ck_assert_msg(rp.failures == 0, "%d failures:\n%s", rp.failures, rp.text);
    /* A write transaction next to it is unaffected. */
    struct rec y = mk("ry", 10);
    commit_one(&y);
    ck_rec(&y);
}
END_TEST

TCase *flash_fault_tcase(void)
{
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup_small, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fault_write_txn_eio);
    tcase_add_test(tc, test_fault_write_txn_map_full);
    tcase_add_test(tc, test_fault_commit_with_eviction);
    tcase_add_test(tc, test_fault_make_room);
    tcase_add_test(tc, test_abort_after_failed_begin);
    tcase_add_test(tc, test_fault_count_and_clear);
    tcase_add_test(tc, test_fault_reader);
    return tc;
}
