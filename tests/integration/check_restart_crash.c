/*
 * check_restart_crash.c: a crash loop (SPEC §5, "Crash"): the server is
 * SIGKILLed at random moments while a client sets, overwrites and deletes,
 * and restarted on the same data dir, TC_RESTART_CRASH_CYCLES times
 * (default 20); then once more with a graceful stop.
 *
 * The server runs with --flash-sync=always and -m 4 (so items go to flash
 * all the time) on TC_RESTART_CRASH_KEYS keys (default 3000, values of 200
 * to 4000 bytes). Every value is self-describing (key, version, payload
 * derived from both: flash_testlib's segments), and every change of a key
 * takes the next number of that key, never reused, a delete too. Each
 * cycle changes a random half of the keys (the other half must survive the
 * crash as it was). The writer thread pipelines windows of 16 changes, each
 * set followed by a `gets` that records the CAS the set was given. The kill
 * comes after a random delay from a seeded PRNG (the seed is printed;
 * TC_RESTART_CRASH_SEED repeats the choices, not the server's timing).
 *
 * Known committed points. Every few hundred milliseconds the writer thread
 * pauses and waits until `stats tiers` shows writer_queue_ops 0 and
 * heap_items 0 in one snapshot. Every delete of a key that may be on flash,
 * and every overwrite of one, queues a flash delete before it is answered,
 * and the heap item that carries it (tombstone or carrier) lives until the
 * writer has committed it; so at that snapshot every older version of every
 * key changed before the pause is gone from flash for good (with
 * --flash-sync=always a commit is on disk; for a SIGKILL, in the page cache
 * is enough). It does not say that the newest versions are on flash: those
 * may still be in RAM only, which a crash may lose.
 *
 * The rules checked after each restart, per key (a pass of `gets` over all
 * keys; "base" is what the previous pass read, "changes" those made since):
 *
 *   1. no corrupt value (every byte is the key's, of a version's payload);
 *   2. no change since the last pass: exactly the base (value, flags and
 *      CAS), or still missing: flash held it and nothing removed it;
 *   3. changes since: missing, or the version of a set made at or after the
 *      last change acknowledged before the last committed point, or (no
 *      such point since the first change) the base. Never a version that
 *      was overwritten or deleted before a committed point ("stale"), never
 *      a version that was never written;
 *   4. CAS: a CAS value names one (key, version) for the whole test, and
 *      one (key, version) keeps its CAS (as read after its set) for the
 *      whole test, across crashes;
 *   5. every start succeeds, says "unclean stop" after a kill, and never
 *      moves the data dir aside;
 *   6. while running: each set is read back at once (its version), each
 *      delete finds the key exactly when the model says it is there, no set
 *      is refused.
 *
 * Rule 2 assumes flash never evicted: the budget (2g) is far above what the
 * test writes; a cycle whose data file passed 70% of it is reported and
 * rule 2 relaxed to "missing or exactly the base".
 *
 * The final graceful cycle: the writer stops (every change acknowledged),
 * SIGTERM (exit 0), restart: every key must be exactly its last
 * acknowledged state, CAS included.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flash_testlib.h"

#define WINDOW      16    /* changes per pipelined window */
#define GETS_BATCH  100   /* keys per verification gets */
#define SYNC_WAIT   30000 /* ms a committed point may take */
#define STOP_MS     60000 /* a graceful stop writes RAM to flash */
#define BUDGET      (2048LL << 20)
#define SHOW_MAX    5
#define KILL_MIN_MS 100
#define KILL_MAX_MS 1400

/* ---------------------------------------------------------------- servers */

/* As in check_restart.c: a server on the test's data dir (flash_testlib's
 * ft_dir_*, a guard for every server process). */

static const char *const server_opts[] = {
    "-v", "-m", "4", "-t", "2", "--flash-size=2g", "--flash-sync=always", NULL,
};

/* Start on a free port (-p 0, every time: one attempt, so a start that
 * fails is never retried into success). */
static void rs_start(struct ft_server *s)
{
    ck_assert_msg(ft_dir_start(s, server_opts) == 0, "tiercached did not start on %s (log %s)",
                  s->dir, s->ts.log_path);
}

/* A log of a server that has exited: no sanitizer report in it; removed. */
static void log_retire(char *path)
{
    ck_assert_msg(ft_log_retire(path), "a sanitizer report in %s", path);
}

/* ---------------------------------------------------------------- the model */

struct op {
    uint64_t ver; /* this change's number for the key */
    uint64_t cas; /* a set's CAS as read right after it (if has_cas) */
    uint32_t len, flags;
    bool del;
    bool acked;
    bool has_cas;
};

struct kst {
    /* what the last verification pass read */
    bool base_present;
    uint64_t base_ver, base_cas;
    uint32_t base_len, base_flags;
    /* changes since, in order; synced: the last one acknowledged before the
     * last committed point (-1: none) */
    struct op *ops;
    size_t nops, cap;
    long synced;
    uint64_t next_ver; /* never reused, across cycles */
};

static struct kst *keys;
static long nkeys;

static void key_name(char *out, long k)
{
    snprintf(out, 32, "cr:%06ld", k);
}

static struct op *op_push(struct kst *k)
{
    if (k->nops == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 8;
        k->ops = realloc(k->ops, k->cap * sizeof(*k->ops));
        ck_assert_ptr_nonnull(k->ops);
    }
    struct op *o = &k->ops[k->nops++];
    memset(o, 0, sizeof(*o));
    o->ver = ++k->next_ver;
    return o;
}

/* Whether the key is there right now, as far as acknowledged changes say
 * (valid while only the writer thread changes keys and all its earlier
 * changes are answered). */
static bool model_present(const struct kst *k)
{
    if (k->nops == 0)
        return k->base_present;
    return !k->ops[k->nops - 1].del;
}

/* ---------------------------------------------------------------- CAS map */

/* cas -> (key, version), open addressing; 0 is never a CAS. */
struct cas_slot {
    uint64_t cas, ver;
    long key;
};
static struct cas_slot *cas_tab;
static size_t cas_cap, cas_n;

static size_t cas_home(uint64_t cas)
{
    return (size_t)(ft_mix(cas) & (cas_cap - 1));
}

static void cas_grow(void)
{
    size_t old_cap = cas_cap;
    struct cas_slot *old = cas_tab;
    cas_cap = old_cap ? 2 * old_cap : 1 << 16;
    cas_tab = calloc(cas_cap, sizeof(*cas_tab));
    ck_assert_ptr_nonnull(cas_tab);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].cas == 0)
            continue;
        size_t h = cas_home(old[i].cas);
        while (cas_tab[h].cas != 0)
            h = (h + 1) & (cas_cap - 1);
        cas_tab[h] = old[i];
    }
    free(old);
}

/* Record that `cas` was read for (key, ver). Returns false (with the other
 * owner in *other_key and *other_ver) if it already named something else. */
static bool cas_note(uint64_t cas, long key, uint64_t ver, long *other_key, uint64_t *other_ver)
{
    if (2 * (cas_n + 1) > cas_cap)
        cas_grow();
    size_t h = cas_home(cas);
    while (cas_tab[h].cas != 0 && cas_tab[h].cas != cas)
        h = (h + 1) & (cas_cap - 1);
    if (cas_tab[h].cas == cas) {
        *other_key = cas_tab[h].key;
        *other_ver = cas_tab[h].ver;
        return cas_tab[h].key == key && cas_tab[h].ver == ver;
    }
    cas_tab[h] = (struct cas_slot){cas, ver, key};
    cas_n++;
    return true;
}

/* ---------------------------------------------------------------- errors */

enum err_kind {
    E_CORRUPT,
    E_STALE,
    E_NEVER,
    E_LOST,
    E_CAS_REUSE,
    E_CAS_CHANGED,
    E_OWN_READ,
    E_DELETE,
    E_REFUSED,
    E_CONN,
    E_SYNC,
    E_GRACEFUL,
    E_KINDS
};

static const char *const err_names[E_KINDS] = {
    "corrupt values",
    "stale versions (overwritten or deleted before a committed point or the last pass)",
    "versions never written",
    "unchanged keys lost or changed",
    "CAS values reused for another key or version",
    "CAS values changed for the same version",
    "sets not read back at once",
    "deletes that disagree with the model",
    "sets refused",
    "connection failures while the server was up",
    "committed points never reached",
    "keys not exactly as acknowledged after the graceful stop",
};

static long errs[E_KINDS];
static char first_err[E_KINDS][700];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 2, 3))) static void fail_note(enum err_kind e, const char *fmt, ...)
{
    pthread_mutex_lock(&err_lock);
    if (errs[e]++ < SHOW_MAX) {
        char msg[700];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "  %s: %s\n", err_names[e], msg);
        if (errs[e] == 1)
            snprintf(first_err[e], sizeof(first_err[e]), "%s", msg);
    }
    pthread_mutex_unlock(&err_lock);
}

static long total_errors(void)
{
    long n = 0;
    for (int e = 0; e < E_KINDS; e++)
        n += errs[e];
    return n;
}

/* ---------------------------------------------------------------- the writer */

struct writer {
    int port;
    struct ft_rng rng;
    long lo, span;       /* this cycle changes keys lo .. lo + span - 1 (mod nkeys) only */
    atomic_bool stop;    /* finish the window and leave (graceful end) */
    atomic_bool killing; /* the server is being killed: failures are expected */
    long sent, acked, syncs;
};

/* Wait for a committed point (see the top of the file). */
static bool wait_committed(struct writer *w)
{
    struct ft_stats *st = malloc(sizeof(*st));
    if (st == NULL)
        return false;
    long long deadline = ts_now_ms() + SYNC_WAIT;
    bool ok = false;
    while (!ok && ts_now_ms() < deadline && !atomic_load(&w->killing)) {
        if (ft_stats_get(w->port, "stats tiers", st) == 0)
            ok = ft_stats_num(st, "writer_queue_ops") == 0 && ft_stats_num(st, "heap_items") == 0;
        if (!ok)
            ft_pause_ms(5);
    }
    free(st);
    if (!ok && !atomic_load(&w->killing))
        fail_note(E_SYNC, "no writer_queue_ops 0 with heap_items 0 within %d ms", SYNC_WAIT);
    return ok;
}

/* Send one window of changes and read its replies. false: the connection
 * is gone (unacknowledged changes stay so). */
static bool run_window(struct writer *w, struct ft_conn *c, char *buf)
{
    long who[WINDOW];
    size_t at[WINDOW];           /* the change's index in its key's ops (they may move) */
    bool present_before[WINDOW]; /* what a delete must answer, from the model */
    size_t n = 0;
    for (int i = 0; i < WINDOW; i++) {
        long k = (w->lo + (long)ft_range(&w->rng, 0, (uint64_t)w->span - 1)) % nkeys;
        struct kst *ks = &keys[k];
        char name[32];
        key_name(name, k);
        present_before[i] = model_present(ks);
        struct op *o = op_push(ks);
        who[i] = k;
        at[i] = ks->nops - 1;
        if (ft_range(&w->rng, 0, 99) < 20) {
            o->del = true;
            n += (size_t)sprintf(buf + n, "delete %s\r\n", name);
        } else {
            o->len = (uint32_t)ft_range(&w->rng, 200, 4000);
            o->flags = (uint32_t)ft_mix(o->ver ^ (uint64_t)k);
            n += (size_t)sprintf(buf + n, "set %s %" PRIu32 " 0 %" PRIu32 "\r\n", name, o->flags,
                                 o->len);
            ft_seg_make(buf + n, name, strlen(name), o->ver, o->len);
            n += o->len;
            n += (size_t)sprintf(buf + n, "\r\ngets %s\r\n", name);
        }
    }
    w->sent += WINDOW;
    if (ft_send(c, buf, n) != 0)
        return false;
    for (int i = 0; i < WINDOW; i++) {
        struct op *o = &keys[who[i]].ops[at[i]];
        char name[32];
        key_name(name, who[i]);
        const char *line;
        size_t ln;
        if (ft_line(c, &line, &ln) != 0)
            return false;
        if (o->del) {
            bool deleted = ln == 7 && memcmp(line, "DELETED", 7) == 0;
            bool missing = ln == 9 && memcmp(line, "NOT_FOUND", 9) == 0;
            if (!deleted && !missing)
                fail_note(E_DELETE, "delete %s: \"%.*s\"", name, (int)(ln > 100 ? 100 : ln), line);
            else if (deleted != present_before[i])
                fail_note(E_DELETE, "delete %s answered %s, but the key %s", name,
                          deleted ? "DELETED" : "NOT_FOUND",
                          present_before[i] ? "was set and acknowledged" : "was not there");
            o->acked = true;
            w->acked++;
            continue;
        }
        if (ln != 6 || memcmp(line, "STORED", 6) != 0) {
            fail_note(E_REFUSED, "set %s (%" PRIu32 " bytes): \"%.*s\"", name, o->len,
                      (int)(ln > 100 ? 100 : ln), line);
            if (ft_expect(c, "END") != 0)
                return false;
            o->acked = true; /* what it did is unknown; the test fails anyway */
            w->acked++;
            continue;
        }
        o->acked = true;
        w->acked++;
        struct ft_value v;
        int r = ft_next_value(c, &v);
        if (r < 0)
            return false;
        uint64_t first, last;
        char err[200];
        if (r == 0 ||
            ft_value_check(v.data, v.n, name, strlen(name), &first, &last, err, sizeof(err)) != 1 ||
            last != o->ver || v.flags != o->flags || !v.has_cas) {
            fail_note(E_OWN_READ, "gets %s right after setting version %" PRIu64 ": %s", name,
                      o->ver, r == 0 ? "missing" : "another value");
        } else {
            o->cas = v.cas;
            o->has_cas = true;
            long ok_key;
            uint64_t ok_ver;
            if (!cas_note(v.cas, who[i], o->ver, &ok_key, &ok_ver))
                fail_note(E_CAS_REUSE,
                          "set %s version %" PRIu64 " got CAS %" PRIu64
                          ", which was cr:%06ld version %" PRIu64 "'s",
                          name, o->ver, v.cas, ok_key, ok_ver);
        }
        if (r == 1 && ft_expect(c, "END") != 0)
            return false;
    }
    return true;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct ft_conn c;
    if (ft_open(&c, w->port) != 0) {
        if (!atomic_load(&w->killing))
            fail_note(E_CONN, "connect: %s", c.err);
        return NULL;
    }
    char *buf = malloc(WINDOW * 4200);
    if (buf == NULL) {
        ft_close(&c);
        return NULL;
    }
    while (!atomic_load(&w->stop)) {
        long long until = ts_now_ms() + (long long)ft_range(&w->rng, 30, 250);
        bool up = true;
        while (up && ts_now_ms() < until && !atomic_load(&w->stop))
            up = run_window(w, &c, buf);
        if (!up) {
            if (!atomic_load(&w->killing))
                fail_note(E_CONN, "%s", c.err);
            break;
        }
        /* Every change so far is acknowledged: a committed point. */
        if (!wait_committed(w))
            break;
        for (long k = 0; k < nkeys; k++)
            keys[k].synced = (long)keys[k].nops - 1;
        w->syncs++;
    }
    free(buf);
    ft_close(&c);
    return NULL;
}

/* ---------------------------------------------------------------- verification */

struct seen {
    bool present, corrupt;
    uint64_t ver, cas;
    uint32_t flags, len;
};

/* Read every key (gets, batches). */
static void read_all(int port, struct seen *out)
{
    struct ft_conn c;
    ck_assert_msg(ft_open(&c, port) == 0, "%s", c.err);
    char req[GETS_BATCH * 16 + 16];
    for (long k = 0; k < nkeys; k += GETS_BATCH) {
        long nb = nkeys - k < GETS_BATCH ? nkeys - k : GETS_BATCH;
        size_t n = (size_t)sprintf(req, "gets");
        for (long b = 0; b < nb; b++) {
            char name[32];
            key_name(name, k + b);
            n += (size_t)sprintf(req + n, " %s", name);
            memset(&out[k + b], 0, sizeof(out[k + b]));
        }
        n += (size_t)sprintf(req + n, "\r\n");
        ck_assert_msg(ft_send(&c, req, n) == 0, "%s", c.err);
        for (;;) {
            struct ft_value v;
            int r = ft_next_value(&c, &v);
            ck_assert_msg(r >= 0, "gets: %s", c.err);
            if (r == 0)
                break;
            long idx = strncmp(v.key, "cr:", 3) == 0 ? atol(v.key + 3) : -1;
            ck_assert_msg(idx >= k && idx < k + nb, "gets answered key %s", v.key);
            struct seen *s = &out[idx];
            uint64_t first, last;
            char err[200];
            int segs = ft_value_check(v.data, v.n, v.key, v.nkey, &first, &last, err, sizeof(err));
            *s = (struct seen){true, segs != 1, last, v.cas, v.flags, (uint32_t)v.n};
            if (segs != 1)
                fail_note(E_CORRUPT, "%s: %s", v.key, segs < 0 ? err : "several segments");
        }
    }
    ft_close(&c);
}

/* Whether s is exactly the set op o. */
static bool seen_is_op(const struct seen *s, const struct op *o)
{
    return s->present && !s->corrupt && !o->del && s->ver == o->ver && s->len == o->len &&
           s->flags == o->flags && (!o->has_cas || s->cas == o->cas);
}

static bool seen_is_base(const struct seen *s, const struct kst *k)
{
    if (!k->base_present)
        return !s->present;
    return s->present && !s->corrupt && s->ver == k->base_ver && s->len == k->base_len &&
           s->flags == k->base_flags && s->cas == k->base_cas;
}

/* The key's changes since the last pass, e.g. "4:set 5:del 6:set|c 7:set?"
 * (| = the last committed point, ? = not acknowledged). */
static void history(const struct kst *k, char *out, size_t cap)
{
    size_t off = 0, from = k->synced > 4 ? (size_t)k->synced - 4 : 0;
    out[0] = '\0';
    if (from > 0)
        off += (size_t)snprintf(out, cap, "... ");
    for (size_t i = from; i < k->nops && off + 40 < cap; i++) {
        const struct op *o = &k->ops[i];
        off += (size_t)snprintf(out + off, cap - off, "%s%" PRIu64 ":%s%s", i > from ? " " : "",
                                o->ver, o->del ? "del" : "set", o->acked ? "" : "?");
        if ((long)i == k->synced)
            off += (size_t)snprintf(out + off, cap - off, "|c");
    }
    if (off + 40 >= cap)
        snprintf(out + off, cap - off, " ...");
}

struct tally {
    long present, changed, lost_new, base_kept;
};

/*
 * Check one key's state after a restart against rules 1-4 (graceful: the
 * last acknowledged state exactly), then make it the new base.
 */
static void check_key(long kidx, const struct seen *s, bool graceful, bool may_evict,
                      struct tally *t)
{
    struct kst *k = &keys[kidx];
    char name[32];
    key_name(name, kidx);
    t->present += s->present;
    if (s->present && !s->corrupt) {
        long ok_key;
        uint64_t ok_ver;
        if (!cas_note(s->cas, kidx, s->ver, &ok_key, &ok_ver))
            fail_note(E_CAS_REUSE,
                      "%s version %" PRIu64 " reads CAS %" PRIu64
                      ", which was cr:%06ld version %" PRIu64 "'s",
                      name, s->ver, s->cas, ok_key, ok_ver);
    }
    if (s->corrupt) {
        /* counted when read */
    } else if (graceful) {
        bool ok = k->nops == 0 ? seen_is_base(s, k)
                               : (k->ops[k->nops - 1].del ? !s->present
                                                          : seen_is_op(s, &k->ops[k->nops - 1]));
        if (!ok) {
            const struct op *last = k->nops > 0 ? &k->ops[k->nops - 1] : NULL;
            char got[80], want[80];
            if (s->present)
                snprintf(got, sizeof(got), "version %" PRIu64 " CAS %" PRIu64, s->ver, s->cas);
            else
                snprintf(got, sizeof(got), "missing");
            if (last == NULL && !k->base_present)
                snprintf(want, sizeof(want), "missing (as before)");
            else if (last == NULL)
                snprintf(want, sizeof(want), "version %" PRIu64 " CAS %" PRIu64 " (as before)",
                         k->base_ver, k->base_cas);
            else if (last->del)
                snprintf(want, sizeof(want), "missing (deleted)");
            else
                snprintf(want, sizeof(want), "version %" PRIu64 " CAS %" PRIu64 " (last set)",
                         last->ver, last->cas);
            fail_note(E_GRACEFUL, "%s: %s, expected %s", name, got, want);
        }
    } else if (k->nops == 0) {
        t->base_kept += s->present;
        if (!seen_is_base(s, k) && !(may_evict && !s->present))
            fail_note(E_LOST,
                      "%s: unchanged since the last pass (%s version %" PRIu64 " CAS %" PRIu64
                      "), now %s version %" PRIu64 " CAS %" PRIu64,
                      name, k->base_present ? "present" : "missing", k->base_ver, k->base_cas,
                      s->present ? "present" : "missing", s->ver, s->cas);
    } else if (s->present) {
        t->changed++;
        long from = k->synced < 0 ? 0 : k->synced;
        bool ok = k->synced < 0 && seen_is_base(s, k);
        bool stale = false, cas_changed = false;
        for (size_t i = 0; i < k->nops && !ok; i++) {
            const struct op *o = &k->ops[i];
            if (o->del || o->ver != s->ver)
                continue;
            if ((long)i < from)
                stale = true;
            else if (seen_is_op(s, o))
                ok = true;
            else
                cas_changed = o->has_cas && s->cas != o->cas && s->len == o->len;
        }
        if (!ok && k->base_present && s->ver == k->base_ver) {
            if (k->synced >= 0)
                stale = true; /* the base, after a committed change */
            else
                cas_changed = true; /* the base's version, not exactly the base */
        }
        if (ok) {
            /* fine */
        } else if (stale) {
            char hist[300];
            history(k, hist, sizeof(hist));
            fail_note(E_STALE,
                      "%s reads version %" PRIu64 " after %s version %" PRIu64
                      " had been acknowledged before a committed point (base %s, changes %s)",
                      name, s->ver, k->ops[k->synced].del ? "the delete" : "the set of",
                      k->ops[k->synced].ver, k->base_present ? "present" : "missing", hist);
        } else if (cas_changed) {
            fail_note(E_CAS_CHANGED,
                      "%s version %" PRIu64 " reads CAS %" PRIu64 ", was set with another", name,
                      s->ver, s->cas);
        } else if (s->ver <= k->next_ver) {
            /* An intact value of a version from before the last pass:
             * written once, then overwritten or deleted, now back. */
            fail_note(E_STALE,
                      "%s reads version %" PRIu64 ", older than this cycle's changes (base %s "
                      "version %" PRIu64 ", first change %" PRIu64 ")",
                      name, s->ver, k->base_present ? "present" : "missing", k->base_ver,
                      k->ops[0].ver);
        } else {
            fail_note(E_NEVER,
                      "%s reads version %" PRIu64 " (%" PRIu32 " bytes, flags %" PRIu32
                      "), above every version written (%" PRIu64 ")",
                      name, s->ver, s->len, s->flags, k->next_ver);
        }
    } else {
        t->changed++;
        t->lost_new += !k->ops[k->nops - 1].del;
    }
    /* The new base. */
    k->base_present = s->present && !s->corrupt;
    k->base_ver = s->ver;
    k->base_cas = s->cas;
    k->base_len = s->len;
    k->base_flags = s->flags;
    k->nops = 0;
    k->synced = -1;
}

static off_t data_size(const struct ft_server *s)
{
    char path[300];
    struct stat st;
    snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
    return stat(path, &st) == 0 ? st.st_size : 0;
}

static void verify(struct ft_server *s, bool graceful, const char *what)
{
    struct seen *seen = calloc((size_t)nkeys, sizeof(*seen));
    ck_assert_ptr_nonnull(seen);
    bool may_evict = data_size(s) > BUDGET / 10 * 7;
    if (may_evict)
        fprintf(stderr, "  %s: data.mdb passed 70%% of the budget: flash may have evicted\n", what);
    read_all(s->ts.port, seen);
    struct tally t = {0};
    for (long k = 0; k < nkeys; k++)
        check_key(k, &seen[k], graceful, may_evict, &t);
    fprintf(stderr,
            "  %s: %ld of %ld keys present; %ld changed since the last pass (%ld newest sets "
            "lost), %ld unchanged present\n",
            what, t.present, nkeys, t.changed, t.lost_new, t.base_kept);
    free(seen);
}

static void report_and_assert(long cycle, uint64_t seed)
{
    long n = total_errors();
    if (n == 0)
        return;
    char msg[8192];
    size_t off = (size_t)snprintf(msg, sizeof(msg), "cycle %ld (seed %" PRIu64 "):", cycle, seed);
    for (int e = 0; e < E_KINDS && off < sizeof(msg); e++) {
        if (errs[e] > 0)
            off += (size_t)snprintf(msg + off, sizeof(msg) - off, " %ld %s (first: %s);", errs[e],
                                    err_names[e], first_err[e]);
    }
    ck_abort_msg("%s", msg);
}

START_TEST(test_crash_loop)
{
    long cycles = ft_env_long("TC_RESTART_CRASH_CYCLES", 20);
    nkeys = ft_env_long("TC_RESTART_CRASH_KEYS", 3000);
    uint64_t seed = (uint64_t)ft_env_long("TC_RESTART_CRASH_SEED", 0);
    if (seed == 0)
        seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    fprintf(stderr,
            "crash loop: %ld cycles, %ld keys, seed %" PRIu64 " (TC_RESTART_CRASH_SEED=%" PRIu64
            " repeats the choices)\n",
            cycles, nkeys, seed, seed);
    struct ft_rng rng = {seed};
    keys = calloc((size_t)nkeys, sizeof(*keys));
    ck_assert_ptr_nonnull(keys);
    for (long k = 0; k < nkeys; k++)
        keys[k].synced = -1;

    struct ft_server s;
    char dir[200];
    snprintf(dir, sizeof(dir), "/tmp/tc-restart-crash-%d", (int)getpid());
    ft_dir_init(&s, dir);
    rs_start(&s);
    long long t_all = ts_now_ms();
    char prev_log[256] = ""; /* the logs of the last two servers are kept */

    for (long cycle = 0; cycle <= cycles; cycle++) {
        bool graceful = cycle == cycles;
        long long t0 = ts_now_ms();
        struct writer w = {.port = s.ts.port, .rng = {ft_rand(&rng)}};
        /* Half of the keys change, the other half must survive untouched. */
        w.span = graceful ? nkeys : (nkeys + 1) / 2;
        w.lo = (long)ft_range(&rng, 0, (uint64_t)nkeys - 1);
        log_retire(prev_log);
        snprintf(prev_log, sizeof(prev_log), "%s", s.ts.log_path);
        long delay = (long)ft_range(&rng, KILL_MIN_MS, KILL_MAX_MS);
        pthread_t th;
        ck_assert(pthread_create(&th, NULL, writer_main, &w) == 0);
        ft_pause_ms((int)delay); /* the random moment */
        int st;
        if (graceful) {
            atomic_store(&w.stop, true);
            pthread_join(th, NULL);
            st = ft_signal(&s, SIGTERM, STOP_MS);
            char why[80];
            ck_assert_msg(ft_exited_zero(st), "graceful stop after the crash loop: %s (log %s)",
                          ft_status_text(st, why, sizeof(why)), s.ts.log_path);
        } else {
            atomic_store(&w.killing, true);
            st = ft_signal(&s, SIGKILL, 10000);
            char why[80];
            ck_assert_msg(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                          "cycle %ld: tiercached did not die of SIGKILL but of %s (log %s)", cycle,
                          ft_status_text(st, why, sizeof(why)), s.ts.log_path);
            pthread_join(th, NULL);
        }
        fprintf(stderr,
                "cycle %ld: %s after %ld ms: %ld changes sent, %ld acknowledged, %ld committed "
                "points\n",
                cycle, graceful ? "SIGTERM" : "SIGKILL", delay, w.sent, w.acked, w.syncs);

        rs_start(&s);
        ck_assert_msg(!ts_file_contains(s.ts.log_path, "moved aside"),
                      "cycle %ld: the data dir was moved aside after a %s (log %s)", cycle,
                      graceful ? "graceful stop" : "crash", s.ts.log_path);
        ck_assert_msg(ts_file_contains(s.ts.log_path,
                                       graceful ? "after a clean stop" : "after an unclean stop"),
                      "cycle %ld: the log does not say \"%s stop\" (log %s)", cycle,
                      graceful ? "clean" : "unclean", s.ts.log_path);
        char what[64];
        snprintf(what, sizeof(what), "cycle %ld check", cycle);
        verify(&s, graceful, what);
        fprintf(stderr, "  cycle %ld took %lld ms\n", cycle, ts_now_ms() - t0);
        report_and_assert(cycle, seed);
    }
    fprintf(stderr, "crash loop: %ld cycles in %lld ms, %zu CAS values seen, no error\n", cycles,
            ts_now_ms() - t_all, cas_n);
    int st = ft_signal(&s, SIGTERM, STOP_MS);
    ck_assert(ft_exited_zero(st));
    ft_dir_deinit(&s);
    log_retire(s.ts.log_path);
    log_retire(prev_log);
    for (long k = 0; k < nkeys; k++)
        free(keys[k].ops);
    free(keys);
    free(cas_tab);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("restart_crash");
    TCase *tc = tcase_create("crash_loop");
    tcase_add_test(tc, test_crash_loop);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
