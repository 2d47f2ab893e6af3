/*
 * check_flash_larger.c: a data set several times larger than RAM.
 *
 * tiercached runs with 64 MB of RAM and a 2 GB flash tier; the test writes
 * TC_FLASH_LARGE_MB (default 600) MB of 1 KiB values over four pipelined
 * connections. Each value is a self-describing segment (flash_testlib.h):
 * key, version and a payload derived from both, so a reader can tell a
 * stale version from a corrupt one. Then:
 *
 *   1. the writer drains; `stats tiers` must show the data really went to
 *      flash (flash_items large, ram_items bounded by what 64 MB holds, and
 *      no item lost: ram_items + flash_items >= keys written);
 *   2. every key is read back with multi-key `gets` (pipelined, four
 *      connections): all present, value and flags exact; most reads must
 *      be flash hits. The CAS of every key is remembered;
 *   3. a third of the keys is overwritten with version 2 (other length,
 *      other flags) and a third deleted (each delete must answer DELETED);
 *   4. everything is read back twice, right away (tombstones and new
 *      versions still in RAM, old records still on flash) and after the
 *      writer has drained (flash has applied the deletes): overwritten keys
 *      give exactly version 2 with a larger CAS, deleted keys miss,
 *      untouched keys give version 1 with the CAS they had.
 *
 * A stale version, a resurrected delete, a lost key, a wrong byte or flag,
 * or a changed CAS fails the test with the first examples listed.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flash_testlib.h"

#define VALUE_LEN     1024
#define NCONN         4
#define SET_BATCH     128
#define GET_KEYS      100 /* keys per gets command */
#define GET_DEPTH     4   /* gets commands in flight per connection */
#define RAM_MB        64
#define MAX_EXAMPLES  20
#define DRAIN_TIMEOUT 300000

/* Expected state of key i. */
enum { ST_DELETED = 0, ST_V1 = 1, ST_V2 = 2 };

struct larger {
    int port;
    uint32_t nkeys;
    uint8_t *state;  /* ST_* per key */
    uint64_t *cas;   /* CAS seen in the first full read */
    bool record_cas; /* the read being run records (rather than checks) CAS */
    const char *phase;

    pthread_mutex_t lock;
    uint64_t missing, stale, resurrected, corrupt, wrong_flags, cas_changed, protocol;
    int examples;
};

static void key_of(uint32_t i, char *out)
{
    snprintf(out, 16, "lg:%08" PRIu32, i);
}

static size_t len_of(uint32_t i, int version)
{
    return version == ST_V1 ? VALUE_LEN : 800 + (size_t)(ft_mix(i) % 449);
}

static uint32_t flags_of(uint32_t i, int version)
{
    return (uint32_t)ft_mix((uint64_t)i * 4 + (uint64_t)version);
}

__attribute__((format(printf, 3, 4))) static void report(struct larger *L, uint64_t *counter,
                                                         const char *fmt, ...)
{
    pthread_mutex_lock(&L->lock);
    (*counter)++;
    if (L->examples++ < MAX_EXAMPLES) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[%s] ", L->phase);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    pthread_mutex_unlock(&L->lock);
}

/* ---------------------------------------------------------------- writing */

struct job {
    struct larger *L;
    uint32_t from, to; /* keys [from, to) */
    int what;          /* 0: write version 1 everywhere; 1: overwrite/delete */
    long long done;    /* operations acknowledged */
};

static void *writer_thread(void *arg)
{
    struct job *j = arg;
    struct larger *L = j->L;
    struct ft_conn c;
    if (ft_open(&c, L->port) != 0) {
        report(L, &L->protocol, "cannot connect");
        return NULL;
    }
    size_t cap = SET_BATCH * (VALUE_LEN + 600);
    char *buf = malloc(cap);
    uint32_t batch[SET_BATCH];
    int kinds[SET_BATCH];
    for (uint32_t i = j->from; i < j->to && buf != NULL;) {
        size_t n = 0;
        int nb = 0;
        for (; i < j->to && nb < SET_BATCH; i++) {
            char key[16];
            key_of(i, key);
            int kind = j->what == 0 ? ST_V1 : (i % 3 == 0 ? ST_V2 : i % 3 == 1 ? ST_DELETED : -1);
            if (kind < 0)
                continue; /* untouched */
            if (kind == ST_DELETED) {
                n += (size_t)snprintf(buf + n, cap - n, "delete %s\r\n", key);
            } else {
                size_t len = len_of(i, kind);
                n += (size_t)snprintf(buf + n, cap - n, "set %s %" PRIu32 " 0 %zu\r\n", key,
                                      flags_of(i, kind), len);
                ft_seg_make(buf + n, key, strlen(key), (uint64_t)kind, len);
                n += len;
                memcpy(buf + n, "\r\n", 2);
                n += 2;
            }
            batch[nb] = i;
            kinds[nb++] = kind;
        }
        if (nb == 0)
            continue;
        if (ft_send(&c, buf, n) != 0) {
            report(L, &L->protocol, "send: %s", c.err);
            break;
        }
        bool ok = true;
        for (int b = 0; b < nb && ok; b++) {
            const char *want = kinds[b] == ST_DELETED ? "DELETED" : "STORED";
            if (ft_expect(&c, want) != 0) {
                report(L, &L->protocol, "key %" PRIu32 ": %s", batch[b], c.err);
                ok = false;
            }
        }
        if (!ok)
            break;
        j->done += nb;
    }
    free(buf);
    ft_close(&c);
    return NULL;
}

/* ---------------------------------------------------------------- reading */

/* Check one returned value against key i's expected state. */
static void check_value(struct larger *L, uint32_t i, const struct ft_value *v)
{
    int st = L->state[i];
    if (st == ST_DELETED) {
        report(L, &L->resurrected, "key %s was deleted but is returned (%zu bytes)", v->key, v->n);
        return;
    }
    uint64_t first, last;
    char err[256];
    if (ft_value_check(v->data, v->n, v->key, v->nkey, &first, &last, err, sizeof(err)) != 1) {
        report(L, &L->corrupt, "key %s: corrupt value (%zu bytes): %s", v->key, v->n, err);
        return;
    }
    if (last != (uint64_t)st) {
        report(L, last < (uint64_t)st ? &L->stale : &L->corrupt,
               "key %s: version %" PRIu64 " returned, version %d expected", v->key, last, st);
        return;
    }
    if (v->n != len_of(i, st)) {
        report(L, &L->corrupt, "key %s: %zu bytes, %zu expected", v->key, v->n, len_of(i, st));
        return;
    }
    if (v->flags != flags_of(i, st))
        report(L, &L->wrong_flags, "key %s: flags %" PRIu32 ", %" PRIu32 " expected", v->key,
               v->flags, flags_of(i, st));
    if (!v->has_cas) {
        report(L, &L->protocol, "key %s: gets without a CAS", v->key);
    } else if (L->record_cas) {
        L->cas[i] = v->cas;
    } else if (st == ST_V1 && v->cas != L->cas[i]) {
        report(L, &L->cas_changed, "key %s: untouched, CAS %" PRIu64 " became %" PRIu64, v->key,
               L->cas[i], v->cas);
    } else if (st == ST_V2 && v->cas <= L->cas[i]) {
        report(L, &L->cas_changed, "key %s: overwritten, CAS %" PRIu64 " is not above %" PRIu64,
               v->key, v->cas, L->cas[i]);
    }
}

/* Read the reply to a gets of keys [from, from+n). Returns false on a protocol failure. */
static bool read_gets_reply(struct larger *L, struct ft_conn *c, uint32_t from, uint32_t n)
{
    uint32_t next = from; /* the next key a VALUE may be for */
    for (;;) {
        struct ft_value v;
        int r = ft_next_value(c, &v);
        if (r < 0) {
            report(L, &L->protocol, "gets of keys %" PRIu32 "..: %s", from, c->err);
            return false;
        }
        uint32_t stop = r == 0 ? from + n : 0;
        if (r == 1) {
            /* Values come in request order: find this one among the keys asked. */
            char key[16];
            uint32_t i = next;
            for (; i < from + n; i++) {
                key_of(i, key);
                if (strcmp(key, v.key) == 0)
                    break;
            }
            if (i == from + n) {
                report(L, &L->protocol, "gets returned key \"%s\", not asked for (or out of order)",
                       v.key);
                return false;
            }
            stop = i;
        }
        for (; next < stop; next++) {
            if (L->state[next] != ST_DELETED) {
                char key[16];
                key_of(next, key);
                report(L, &L->missing, "key %s (state %d) is missing", key, L->state[next]);
            }
        }
        if (r == 0)
            return true;
        check_value(L, next, &v);
        next++;
    }
}

static void *reader_thread(void *arg)
{
    struct job *j = arg;
    struct larger *L = j->L;
    struct ft_conn c;
    if (ft_open(&c, L->port) != 0) {
        report(L, &L->protocol, "cannot connect");
        return NULL;
    }
    char *req = malloc(GET_KEYS * 16 + 16);
    uint32_t inflight[GET_DEPTH];
    int nin = 0, head = 0;
    bool ok = req != NULL;
    for (uint32_t i = j->from; ok && (i < j->to || nin > 0);) {
        if (i < j->to && nin < GET_DEPTH) {
            size_t n = (size_t)sprintf(req, "gets");
            uint32_t k = 0;
            for (; k < GET_KEYS && i + k < j->to; k++) {
                char key[16];
                key_of(i + k, key);
                n += (size_t)sprintf(req + n, " %s", key);
            }
            n += (size_t)sprintf(req + n, "\r\n");
            if (ft_send(&c, req, n) != 0) {
                report(L, &L->protocol, "send: %s", c.err);
                break;
            }
            inflight[(head + nin) % GET_DEPTH] = i;
            nin++;
            i += k;
            continue;
        }
        uint32_t from = inflight[head];
        uint32_t cnt = from + GET_KEYS <= j->to ? GET_KEYS : j->to - from;
        ok = read_gets_reply(L, &c, from, cnt);
        j->done += cnt;
        head = (head + 1) % GET_DEPTH;
        nin--;
    }
    free(req);
    ft_close(&c);
    return NULL;
}

/* Run NCONN threads over the key range. Returns the seconds taken. */
static double run_phase(struct larger *L, const char *phase, void *(*fn)(void *), int what)
{
    L->phase = phase;
    pthread_t th[NCONN];
    struct job jobs[NCONN];
    long long t0 = ts_now_ms();
    for (int t = 0; t < NCONN; t++) {
        jobs[t] = (struct job){
            .L = L,
            .from = (uint32_t)((uint64_t)L->nkeys * (uint64_t)t / NCONN),
            .to = (uint32_t)((uint64_t)L->nkeys * (uint64_t)(t + 1) / NCONN),
            .what = what,
        };
        ck_assert_int_eq(pthread_create(&th[t], NULL, fn, &jobs[t]), 0);
    }
    long long done = 0;
    for (int t = 0; t < NCONN; t++) {
        pthread_join(th[t], NULL);
        done += jobs[t].done;
    }
    double s = (double)(ts_now_ms() - t0) / 1000.0;
    fprintf(stderr, "%-28s %8lld ops in %6.1f s\n", phase, done, s);
    return s;
}

static uint64_t problems(const struct larger *L)
{
    return L->missing + L->stale + L->resurrected + L->corrupt + L->wrong_flags + L->cas_changed +
           L->protocol;
}

static void assert_clean(struct larger *L, struct ft_server *s)
{
    uint64_t p = problems(L);
    if (p != 0) {
        ft_dump_log(s, L->phase);
        ft_stop(s);
    }
    ck_assert_msg(p == 0,
                  "after \"%s\": %" PRIu64 " missing, %" PRIu64 " stale, %" PRIu64
                  " resurrected, %" PRIu64 " corrupt, %" PRIu64 " wrong flags, %" PRIu64
                  " CAS changes, %" PRIu64 " protocol failures (first examples on stderr)",
                  L->phase, L->missing, L->stale, L->resurrected, L->corrupt, L->wrong_flags,
                  L->cas_changed, L->protocol);
}

static void print_tiers(int port, const char *when, struct ft_stats *st)
{
    ck_assert_int_eq(ft_stats_get(port, "stats tiers", st), 0);
    fprintf(stderr,
            "%s: ram_items %lld flash_items %lld flash_hits %lld demotions %lld promotions %lld "
            "tombstones %lld flash_deletes %lld flash_disk_bytes %lld ram_busy %lld\n",
            when, ft_stats_num(st, "ram_items"), ft_stats_num(st, "flash_items"),
            ft_stats_num(st, "flash_hits"), ft_stats_num(st, "demotions"),
            ft_stats_num(st, "promotions"), ft_stats_num(st, "tombstones"),
            ft_stats_num(st, "flash_deletes"), ft_stats_num(st, "flash_disk_bytes"),
            ft_stats_num(st, "ram_busy"));
}

START_TEST(test_larger_than_ram)
{
    long mb = ft_env_long("TC_FLASH_LARGE_MB", 600);
    if (mb < 2 * RAM_MB)
        mb = 2 * RAM_MB;
    struct larger L = {.nkeys = (uint32_t)(mb * 1024 * 1024 / VALUE_LEN)};
    pthread_mutex_init(&L.lock, NULL);
    L.state = calloc(L.nkeys, 1);
    L.cas = calloc(L.nkeys, sizeof(uint64_t));
    ck_assert(L.state != NULL && L.cas != NULL);
    fprintf(stderr, "larger than RAM: %ld MB, %" PRIu32 " keys of %d bytes, -m %d\n", mb, L.nkeys,
            VALUE_LEN, RAM_MB);

    struct ft_server s;
    ck_assert_int_eq(
        ft_start(&s, NULL,
                 (const char *const[]){"-m", "64", "--flash-size", "2g", "-t", "4", NULL}),
        0);
    L.port = s.ts.port;
    struct ft_stats *st = malloc(sizeof(*st));
    ck_assert_ptr_nonnull(st);

    /* 1. Write everything (version 1). */
    memset(L.state, ST_V1, L.nkeys);
    run_phase(&L, "write version 1", writer_thread, 0);
    assert_clean(&L, &s);
    ck_assert_msg(ft_wait_writer_idle(L.port, DRAIN_TIMEOUT), "the flash writer did not drain");
    print_tiers(L.port, "after writing", st);
    long long ram = ft_stats_num(st, "ram_items"), flash = ft_stats_num(st, "flash_items");
    /* 64 MB holds fewer than 64 K items of 1 KiB (each also has its header). */
    ck_assert_msg(ram >= 0 && ram < 64 * 1024, "ram_items %lld: more than 64 MB can hold", ram);
    ck_assert_msg(flash >= (long long)L.nkeys - ram,
                  "flash_items %lld + ram_items %lld < %" PRIu32 " keys written: items were lost",
                  flash, ram, L.nkeys);
    ck_assert_msg(flash >= (long long)L.nkeys / 2, "flash_items %lld: most data should be on flash",
                  flash);
    ck_assert_msg(ft_stats_num(st, "flash_disk_bytes") <= 2LL << 30,
                  "the data file is larger than --flash-size");

    /* 2. Read everything back; remember each key's CAS. */
    long long hits0 = ft_stats_num(st, "flash_hits");
    L.record_cas = true;
    run_phase(&L, "read all (version 1)", reader_thread, 0);
    L.record_cas = false;
    assert_clean(&L, &s);
    print_tiers(L.port, "after reading", st);
    long long hits = ft_stats_num(st, "flash_hits") - hits0;
    ck_assert_msg(hits >= (long long)L.nkeys / 2,
                  "only %lld of %" PRIu32 " reads were flash hits: the data was not on flash", hits,
                  L.nkeys);

    /* 3. Overwrite a third, delete a third. */
    for (uint32_t i = 0; i < L.nkeys; i++)
        L.state[i] = i % 3 == 0 ? ST_V2 : i % 3 == 1 ? ST_DELETED : ST_V1;
    run_phase(&L, "overwrite 1/3, delete 1/3", writer_thread, 1);
    assert_clean(&L, &s);

    /* 4. Read back, before and after the writer applied it all to flash. */
    run_phase(&L, "read all (right after)", reader_thread, 0);
    assert_clean(&L, &s);
    ck_assert_msg(ft_wait_writer_idle(L.port, DRAIN_TIMEOUT), "the flash writer did not drain");
    print_tiers(L.port, "after drain", st);
    ck_assert_msg(ft_stats_num(st, "tombstones") > 0,
                  "no tombstone: deletes of flash-resident keys were not shadowed");
    ck_assert_msg(ft_stats_num(st, "flash_deletes") > 0, "no delete reached flash");
    run_phase(&L, "read all (after drain)", reader_thread, 0);
    assert_clean(&L, &s);

    int status = ft_stop(&s);
    char text[80];
    ck_assert_msg(ft_exited_zero(status), "tiercached did not exit 0 on SIGTERM (%s)",
                  ft_status_text(status, text, sizeof(text)));
    free(st);
    free(L.state);
    free(L.cas);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flash_larger");
    TCase *tc = tcase_create("larger_than_ram");
    tcase_add_test(tc, test_larger_than_ram);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
