/*
 * check_flash_race.c: concurrent clients on overlapping keys while RAM is
 * under constant eviction pressure, so that most reads and changes meet
 * items on flash, on their way to flash, or just promoted back.
 *
 * Eight threads, one connection each, for TC_FLASH_RACE_SECONDS (default
 * 10); 32000 keys of 200 B to 4.4 KB (about 70 MB) against 24 MB of RAM.
 * RAM is 24 MB rather than 4 because these sizes span 18 slab classes of
 * 1 MB pages, and every class gets its first page before the race starts
 * (prewarm()): the race is about staleness; page starvation under a small
 * RAM tier is test_small_ram_every_size's business.
 * Half of each thread's operations go to a small window of keys that moves
 * slowly, and half of the reads go to some owner's window, so that reads
 * and changes of one key really overlap.
 *
 * How staleness is caught. Every key has one owner thread, the only one that
 * changes it. Each change gets the key's next version number, from one
 * counter that never goes back (a delete takes a version too, and a set
 * after a delete a higher one). Values describe themselves: a segment key's
 * value is one or more segments "<key>|<version>|<len>|<payload>" (a set
 * writes one, each append adds one; flash_testlib.h), a counter key's value
 * is its number, which only grows (incr by d is version+d). For each key the
 * owner publishes, with release stores:
 *
 *   started     the version of the change it is about to send
 *   del_started the version of the latest delete it has started
 *   committed   the version (and whether it was a delete) of its last
 *               acknowledged change
 *
 * The owner knows its key's exact state, so its own reads (get, gets, gat,
 * gats, and the checks inside add/replace/cas/append/incr/delete, whose
 * replies it predicts) must match byte for byte: no older version, no
 * resurrected delete, no lost key, same flags, and a CAS that stays the same
 * while the version does (wherever the item lives).
 *
 * Every thread also reads other owners' keys (get, multi-get, gets, gat).
 * It loads `committed` (A) before sending and `started` (B) and
 * `del_started` (D) after the reply, and keeps per key the highest version
 * it has itself seen (S). With L = max(A, S), linearizability demands:
 *
 *   a value of version x:  L <= x <= B    (x < L: stale; x > B: made up)
 *   a miss:                A is a delete and A >= S, or D > L
 *                          (otherwise a key that must exist was not found)
 *
 * and, for gets, the same version always comes with the same CAS and a
 * newer version with a larger CAS. Flags must be the ones the version was
 * stored with. The second test stores values of every size under a 4 MB RAM
 * tier: each must be stored (memcached stores them all).
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

#define NTHREADS      8
#define KEYS_PER      4000 /* keys per owner: 32000 keys, ~70 MB against 24 MB of RAM */
#define MAXSEG        16
#define VAL_MIN       200
#define VAL_MAX       4000
#define TOTAL_MAX     4400 /* appends stop here: values stay in the classes sets use */
#define APPEND_MIN    48
#define APPEND_MAX    200
#define HOT_WINDOW    32
#define MAX_MGET      16
#define COUNTER_FLAGS 0xC0DEu
#define MAX_EXAMPLES  30

/* What goes wrong, by kind. */
enum viol { V_STALE, V_LOST, V_FUTURE, V_CORRUPT, V_FLAGS, V_CAS, V_REPLY, V_NKINDS };
static const char *const viol_names[] = {"stale",       "lost", "made-up",         "corrupt",
                                         "wrong flags", "CAS",  "unexpected reply"};

struct pub {
    _Atomic uint64_t committed; /* version << 1 | deleted */
    _Atomic uint64_t started;
    _Atomic uint64_t del_started;
};

/* The owner's exact knowledge of a key (touched by the owner only, and by
 * the main thread after the owners have stopped). */
struct own {
    uint64_t ver; /* last version used; a counter's number when present */
    uint64_t cas, cas_ver;
    uint32_t flags;
    uint16_t total;
    uint8_t present, nseg;
    uint64_t segv[MAXSEG];
    uint16_t segl[MAXSEG];
};

/* What a reader has seen of a key. */
struct seen {
    uint64_t max_seen;
    uint64_t cas_ver, cas;
};

struct race {
    int port;
    uint32_t nkeys;
    struct pub *pub;
    struct own *own;
    _Atomic uint32_t hot_base[NTHREADS];
    long long end_ms;
    pthread_mutex_t lock;
    uint64_t viol[V_NKINDS];
    int examples;
};

struct tctx {
    struct race *R;
    int t;
    struct ft_conn c;
    struct ft_rng rng;
    struct seen *seen;
    char *buf, *req;
    uint64_t own_ops, read_ops, keys_read;
};

static bool is_counter(uint32_t g)
{
    return g % KEYS_PER % 8 == 0;
}

static void key_name(uint32_t g, char *out)
{
    snprintf(out, 16, "%c%u:%05u", is_counter(g) ? 'c' : 'r', g / KEYS_PER, g % KEYS_PER);
}

static uint32_t seg_flags(uint32_t g, uint64_t first)
{
    return (uint32_t)ft_mix((uint64_t)g * 1000003ULL + first);
}

__attribute__((format(printf, 3, 4))) static void violation(struct race *R, enum viol k,
                                                            const char *fmt, ...)
{
    pthread_mutex_lock(&R->lock);
    R->viol[k]++;
    if (R->examples++ < MAX_EXAMPLES) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", viol_names[k]);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    pthread_mutex_unlock(&R->lock);
}

/* ---------------------------------------------------------------- publishing */

static void begin(struct race *R, uint32_t g, uint64_t v, bool del)
{
    if (del)
        atomic_store_explicit(&R->pub[g].del_started, v, memory_order_release);
    atomic_store_explicit(&R->pub[g].started, v, memory_order_release);
}

static void commit(struct race *R, uint32_t g, uint64_t v, bool del)
{
    atomic_store_explicit(&R->pub[g].committed, v << 1 | (del ? 1 : 0), memory_order_release);
}

/* ---------------------------------------------------------------- values */

/* The owner's expected value of a present key into buf; returns its length. */
static size_t expected_value(const struct own *o, uint32_t g, char *buf)
{
    char key[16];
    key_name(g, key);
    if (is_counter(g))
        return (size_t)sprintf(buf, "%" PRIu64, o->ver);
    size_t n = 0;
    for (int i = 0; i < o->nseg; i++) {
        ft_seg_make(buf + n, key, strlen(key), o->segv[i], o->segl[i]);
        n += o->segl[i];
    }
    return n;
}

/* Parse a counter value (digits, maybe space padded, as memcached leaves
 * them after an in-place decrement). */
static bool parse_counter(const char *p, size_t n, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0)
        return false;
    while (i < n && p[i] == ' ')
        i++;
    *out = v;
    return i == n;
}

/*
 * The version a returned value stands for, after checking its integrity and
 * flags. Returns false (and reports) if it is corrupt.
 */
static bool value_version(struct tctx *x, uint32_t g, const struct ft_value *v, uint64_t *ver)
{
    if (is_counter(g)) {
        if (!parse_counter(v->data, v->n, ver)) {
            violation(x->R, V_CORRUPT, "%s: counter value \"%.*s\"", v->key,
                      (int)(v->n > 40 ? 40 : v->n), v->data);
            return false;
        }
        if (v->flags != COUNTER_FLAGS) {
            violation(x->R, V_FLAGS, "%s: flags %" PRIu32 ", expected %u", v->key, v->flags,
                      COUNTER_FLAGS);
        }
        return true;
    }
    uint64_t first;
    char err[256];
    if (ft_value_check(v->data, v->n, v->key, v->nkey, &first, ver, err, sizeof(err)) < 0) {
        violation(x->R, V_CORRUPT, "%s (%zu bytes): %s", v->key, v->n, err);
        return false;
    }
    if (v->flags != seg_flags(g, first))
        violation(x->R, V_FLAGS, "%s: flags %" PRIu32 ", stored with %" PRIu32, v->key, v->flags,
                  seg_flags(g, first));
    return true;
}

/* ---------------------------------------------------------------- the owner */

/* Read a retrieval reply that the owner predicts exactly. */
static void owner_check_read(struct tctx *x, uint32_t g, bool with_cas, const char *what)
{
    struct race *R = x->R;
    struct own *o = &R->own[g];
    char key[16];
    key_name(g, key);
    struct ft_value v;
    int r = ft_next_value(&x->c, &v);
    if (r < 0) {
        violation(R, V_REPLY, "%s %s: %s", what, key, x->c.err);
        return;
    }
    if (r == 0) {
        if (o->present)
            violation(R, V_LOST, "%s %s: miss, but the owner's version %" PRIu64 " is stored", what,
                      key, o->ver);
        return;
    }
    if (!o->present) {
        uint64_t ver = 0;
        if (value_version(x, g, &v, &ver))
            violation(R, V_STALE,
                      "%s %s: version %" PRIu64 " returned after delete (version %" PRIu64 ")",
                      what, key, ver, o->ver);
    } else {
        size_t n = expected_value(o, g, x->buf + (1 << 16));
        const char *want = x->buf + (1 << 16);
        if (v.n != n || memcmp(v.data, want, n) != 0) {
            uint64_t ver = 0;
            if (value_version(x, g, &v, &ver))
                violation(R, ver < o->ver ? V_STALE : V_CORRUPT,
                          "%s %s: version %" PRIu64 " (%zu bytes) returned, owner's is %" PRIu64
                          " (%zu bytes)",
                          what, key, ver, v.n, o->ver, n);
        } else if (v.flags != o->flags) {
            violation(R, V_FLAGS, "%s %s: flags %" PRIu32 ", stored %" PRIu32, what, key, v.flags,
                      o->flags);
        }
        if (with_cas) {
            if (!v.has_cas)
                violation(R, V_REPLY, "%s %s: no CAS", what, key);
            else if (o->cas_ver == o->ver && o->cas != v.cas)
                violation(R, V_CAS,
                          "%s %s: CAS %" PRIu64 " for version %" PRIu64 ", which had CAS %" PRIu64
                          " before",
                          what, key, v.cas, o->ver, o->cas);
            o->cas = v.cas;
            o->cas_ver = o->ver;
        }
    }
    if (ft_expect(&x->c, "END") != 0)
        violation(R, V_REPLY, "%s %s: %s", what, key, x->c.err);
}

/* Send a storage command with the given value and check the one-line reply. */
static bool store(struct tctx *x, const char *cmd, uint32_t g, uint32_t flags, const char *val,
                  size_t n, uint64_t cas, const char *want)
{
    char key[16], hdr[128];
    key_name(g, key);
    int h = cas != 0
                ? snprintf(hdr, sizeof(hdr), "%s %s %" PRIu32 " 0 %zu %" PRIu64 "\r\n", cmd, key,
                           flags, n, cas)
                : snprintf(hdr, sizeof(hdr), "%s %s %" PRIu32 " 0 %zu\r\n", cmd, key, flags, n);
    if (ft_send(&x->c, hdr, (size_t)h) != 0 || ft_send(&x->c, val, n) != 0 ||
        ft_send(&x->c, "\r\n", 2) != 0 || ft_expect(&x->c, want) != 0) {
        violation(x->R, V_REPLY, "%s %s (owner's version %" PRIu64 ", %s): %s", cmd, key,
                  x->R->own[g].ver, x->R->own[g].present ? "present" : "deleted", x->c.err);
        return false;
    }
    return true;
}

/* After a surprise the owner no longer knows the state: delete to resync. */
static void resync(struct tctx *x, uint32_t g)
{
    struct race *R = x->R;
    struct own *o = &R->own[g];
    char key[16];
    key_name(g, key);
    uint64_t v = o->ver + 1;
    begin(R, g, v, true);
    const char *line;
    size_t n;
    if (ft_sendf(&x->c, "delete %s\r\n", key) != 0 || ft_line(&x->c, &line, &n) != 0) {
        violation(R, V_REPLY, "resync delete %s: %s", key, x->c.err);
        return;
    }
    o->ver = v;
    o->present = 0;
    o->cas_ver = 0;
    commit(R, g, v, true);
}

/* A new single-segment value (set, add, replace, cas) of the next version. */
static size_t new_segment_value(struct tctx *x, uint32_t g, uint64_t v, char *val)
{
    char key[16];
    key_name(g, key);
    size_t len = (size_t)ft_range(&x->rng, VAL_MIN, VAL_MAX);
    ft_seg_make(val, key, strlen(key), v, len);
    return len;
}

static void took_segment_value(struct own *o, uint32_t g, uint64_t v, size_t len)
{
    o->ver = v;
    o->present = 1;
    o->nseg = 1;
    o->segv[0] = v;
    o->segl[0] = (uint16_t)len;
    o->total = (uint16_t)len;
    o->flags = seg_flags(g, v);
}

/* Replace the value (by set, add, replace or cas): expects `want`. */
static void owner_store(struct tctx *x, uint32_t g, const char *cmd, uint64_t cas, bool will_store)
{
    struct race *R = x->R;
    struct own *o = &R->own[g];
    char *val = x->buf;
    uint64_t v = is_counter(g) ? o->ver + 1 + ft_range(&x->rng, 0, 99) : o->ver + 1;
    size_t n;
    uint32_t flags;
    if (is_counter(g)) {
        n = (size_t)sprintf(val, "%" PRIu64, v);
        flags = COUNTER_FLAGS;
    } else {
        n = new_segment_value(x, g, v, val);
        flags = seg_flags(g, v);
    }
    const char *want = will_store                ? "STORED"
                       : strcmp(cmd, "cas") == 0 ? (o->present ? "EXISTS" : "NOT_FOUND")
                                                 : "NOT_STORED";
    /* A refused store must leave no trace: the value it carries is of a
     * version nobody started, which readers would call made-up. */
    if (will_store)
        begin(R, g, v, false);
    if (!store(x, cmd, g, flags, val, n, cas, want)) {
        resync(x, g);
        return;
    }
    if (!will_store)
        return;
    if (is_counter(g)) {
        o->ver = v;
        o->present = 1;
        o->flags = COUNTER_FLAGS;
    } else {
        took_segment_value(o, g, v, n);
    }
    commit(R, g, v, false);
}

static void owner_append(struct tctx *x, uint32_t g)
{
    struct race *R = x->R;
    struct own *o = &R->own[g];
    char key[16];
    key_name(g, key);
    size_t len = (size_t)ft_range(&x->rng, APPEND_MIN, APPEND_MAX);
    if (o->present && (o->nseg == MAXSEG || o->total + len > TOTAL_MAX)) {
        owner_store(x, g, "set", 0, true);
        return;
    }
    uint64_t v = o->ver + 1;
    ft_seg_make(x->buf, key, strlen(key), v, len);
    if (o->present)
        begin(R, g, v, false);
    if (!store(x, "append", g, 0, x->buf, len, 0, o->present ? "STORED" : "NOT_STORED")) {
        resync(x, g);
        return;
    }
    if (!o->present)
        return;
    o->ver = v;
    o->segv[o->nseg] = v;
    o->segl[o->nseg++] = (uint16_t)len;
    o->total = (uint16_t)(o->total + len);
    commit(R, g, v, false);
}

static void owner_delete(struct tctx *x, uint32_t g)
{
    struct race *R = x->R;
    struct own *o = &R->own[g];
    char key[16];
    key_name(g, key);
    uint64_t v = o->ver + 1;
    bool was = o->present;
    if (was)
        begin(R, g, v, true);
    if (ft_sendf(&x->c, "delete %s\r\n", key) != 0 ||
        ft_expect(&x->c, was ? "DELETED" : "NOT_FOUND") != 0) {
        violation(R, was ? V_LOST : V_STALE, "delete %s (owner's version %" PRIu64 ", %s): %s", key,
                  o->ver, was ? "present" : "deleted", x->c.err);
        resync(x, g);
        return;
    }
    if (!was)
        return;
    o->ver = v;
    o->present = 0;
    o->cas_ver = 0;
    commit(R, g, v, true);
}

static void owner_incr(struct tctx *x, uint32_t g)
{
    struct race *R = x->R;
    struct own *o = &R->own[g];
    char key[16], want[32];
    key_name(g, key);
    uint64_t d = ft_range(&x->rng, 1, 1000), v = o->ver + d;
    if (o->present) {
        begin(R, g, v, false);
        snprintf(want, sizeof(want), "%" PRIu64, v);
    } else {
        snprintf(want, sizeof(want), "NOT_FOUND");
    }
    if (ft_sendf(&x->c, "incr %s %" PRIu64 "\r\n", key, d) != 0 || ft_expect(&x->c, want) != 0) {
        violation(R, V_REPLY, "incr %s by %" PRIu64 " (owner's value %" PRIu64 ", %s): %s", key, d,
                  o->ver, o->present ? "present" : "deleted", x->c.err);
        resync(x, g);
        return;
    }
    if (!o->present)
        return;
    o->ver = v;
    commit(R, g, v, false);
}

/* gets, then a cas with the CAS it returned (or, sometimes, a wrong one). */
static void owner_gets_cas(struct tctx *x, uint32_t g)
{
    struct race *R = x->R;
    struct own *o = &R->own[g];
    char key[16];
    key_name(g, key);
    if (ft_sendf(&x->c, "gets %s\r\n", key) != 0) {
        violation(R, V_REPLY, "gets %s: %s", key, x->c.err);
        return;
    }
    owner_check_read(x, g, true, "gets");
    if (!o->present) {
        owner_store(x, g, "cas", 12345, false);
        return;
    }
    if (o->cas_ver != o->ver)
        return; /* the read failed */
    bool wrong = ft_range(&x->rng, 0, 3) == 0;
    owner_store(x, g, "cas", wrong ? o->cas + 1 : o->cas, !wrong);
}

static void owner_read(struct tctx *x, uint32_t g, int how)
{
    char key[16];
    key_name(g, key);
    static const char *const cmds[] = {"get %s\r\n", "gets %s\r\n", "gat 0 %s\r\n",
                                       "gats 0 %s\r\n"};
    static const char *const names[] = {"get", "gets", "gat", "gats"};
    if (ft_sendf(&x->c, cmds[how], key) != 0) {
        violation(x->R, V_REPLY, "%s %s: %s", names[how], key, x->c.err);
        return;
    }
    owner_check_read(x, g, how == 1 || how == 3, names[how]);
}

static void owner_touch(struct tctx *x, uint32_t g)
{
    struct own *o = &x->R->own[g];
    char key[16];
    key_name(g, key);
    if (ft_sendf(&x->c, "touch %s 0\r\n", key) != 0 ||
        ft_expect(&x->c, o->present ? "TOUCHED" : "NOT_FOUND") != 0)
        violation(x->R, o->present ? V_LOST : V_STALE,
                  "touch %s (owner's version %" PRIu64 ", %s): %s", key, o->ver,
                  o->present ? "present" : "deleted", x->c.err);
}

static void owner_op(struct tctx *x, uint32_t g)
{
    struct own *o = &x->R->own[g];
    unsigned r = (unsigned)ft_range(&x->rng, 0, 99);
    if (is_counter(g)) {
        if (r < 35)
            owner_incr(x, g);
        else if (r < 50)
            owner_store(x, g, "set", 0, true);
        else if (r < 58)
            owner_delete(x, g);
        else if (r < 63)
            owner_store(x, g, "add", 0, !o->present);
        else if (r < 70)
            owner_gets_cas(x, g);
        else if (r < 75)
            owner_touch(x, g);
        else
            owner_read(x, g, (int)(r % 4));
        return;
    }
    if (r < 22)
        owner_store(x, g, "set", 0, true);
    else if (r < 32)
        owner_append(x, g);
    else if (r < 40)
        owner_delete(x, g);
    else if (r < 45)
        owner_store(x, g, "add", 0, !o->present);
    else if (r < 50)
        owner_store(x, g, "replace", 0, o->present);
    else if (r < 62)
        owner_gets_cas(x, g);
    else if (r < 66)
        owner_touch(x, g);
    else
        owner_read(x, g, (int)(r % 4));
}

/* ---------------------------------------------------------------- readers */

struct asked {
    uint32_t g;
    uint64_t a; /* committed, loaded before sending */
};

/* Judge a reader's observation of key g (value v, or a miss if v is NULL). */
static void judge(struct tctx *x, const struct asked *q, const struct ft_value *v)
{
    struct race *R = x->R;
    struct seen *s = &x->seen[q->g];
    uint64_t b = atomic_load_explicit(&R->pub[q->g].started, memory_order_acquire);
    uint64_t d = atomic_load_explicit(&R->pub[q->g].del_started, memory_order_acquire);
    uint64_t a = q->a >> 1;
    bool a_del = q->a & 1;
    uint64_t lower = a > s->max_seen ? a : s->max_seen;
    char key[16];
    key_name(q->g, key);
    if (v == NULL) {
        if (!((a_del && a >= s->max_seen) || d > lower))
            violation(R, V_LOST,
                      "%s: miss, but version >= %" PRIu64 " exists (acknowledged %" PRIu64
                      "%s before the read, seen %" PRIu64 ", latest delete %" PRIu64 ")",
                      key, lower, a, a_del ? " delete" : "", s->max_seen, d);
        return;
    }
    uint64_t x_ver;
    if (!value_version(x, q->g, v, &x_ver))
        return;
    if (x_ver < lower || (x_ver == a && a_del)) {
        violation(R, V_STALE,
                  "%s: version %" PRIu64 " returned, but %" PRIu64 " was %s before the read", key,
                  x_ver, lower, lower == a ? "acknowledged" : "seen by this reader");
    } else if (x_ver > b) {
        violation(R, V_FUTURE, "%s: version %" PRIu64 " returned, only %" PRIu64 " was started",
                  key, x_ver, b);
    }
    if (x_ver > s->max_seen)
        s->max_seen = x_ver;
    if (v->has_cas) {
        if (s->cas_ver != 0 && x_ver == s->cas_ver && v->cas != s->cas)
            violation(R, V_CAS, "%s: version %" PRIu64 " came with CAS %" PRIu64 " and %" PRIu64,
                      key, x_ver, s->cas, v->cas);
        else if (s->cas_ver != 0 && x_ver > s->cas_ver && v->cas <= s->cas)
            violation(R, V_CAS,
                      "%s: version %" PRIu64 " has CAS %" PRIu64 ", older version %" PRIu64
                      " had CAS %" PRIu64,
                      key, x_ver, v->cas, s->cas_ver, s->cas);
        if (x_ver >= s->cas_ver) {
            s->cas_ver = x_ver;
            s->cas = v->cas;
        }
    }
}

static uint32_t pick_any(struct tctx *x)
{
    struct race *R = x->R;
    if (ft_range(&x->rng, 0, 1) == 0) {
        /* Some owner's hot window: where its changes happen now. */
        uint32_t t = (uint32_t)ft_range(&x->rng, 0, NTHREADS - 1);
        uint32_t base = atomic_load_explicit(&R->hot_base[t], memory_order_relaxed);
        return t * KEYS_PER + (base + (uint32_t)ft_range(&x->rng, 0, HOT_WINDOW - 1)) % KEYS_PER;
    }
    return (uint32_t)ft_range(&x->rng, 0, R->nkeys - 1);
}

static void reader_op(struct tctx *x)
{
    struct race *R = x->R;
    unsigned r = (unsigned)ft_range(&x->rng, 0, 99);
    const char *cmd = r < 35 ? "get" : r < 65 ? "get" : r < 90 ? "gets" : "gat 0";
    int nkeys = r < 35 || r >= 90 ? 1 : (int)ft_range(&x->rng, 2, r < 65 ? MAX_MGET : 8);
    struct asked q[MAX_MGET];
    size_t n = (size_t)sprintf(x->req, "%s", cmd);
    for (int i = 0; i < nkeys; i++) {
        q[i].g = pick_any(x);
        q[i].a = atomic_load_explicit(&R->pub[q[i].g].committed, memory_order_acquire);
        char key[16];
        key_name(q[i].g, key);
        n += (size_t)sprintf(x->req + n, " %s", key);
    }
    n += (size_t)sprintf(x->req + n, "\r\n");
    if (ft_send(&x->c, x->req, n) != 0) {
        violation(R, V_REPLY, "%s: %s", cmd, x->c.err);
        return;
    }
    int next = 0;
    for (;;) {
        struct ft_value v;
        int rr = ft_next_value(&x->c, &v);
        if (rr < 0) {
            violation(R, V_REPLY, "%s of %d keys: %s", cmd, nkeys, x->c.err);
            return;
        }
        int stop = nkeys;
        if (rr == 1) {
            int i = next;
            for (; i < nkeys; i++) {
                char key[16];
                key_name(q[i].g, key);
                if (strcmp(key, v.key) == 0)
                    break;
            }
            if (i == nkeys) {
                violation(R, V_REPLY, "%s returned key %s, not asked for (or out of order)", cmd,
                          v.key);
                return;
            }
            stop = i;
        }
        for (; next < stop; next++)
            judge(x, &q[next], NULL);
        if (rr == 0)
            break;
        judge(x, &q[next++], &v);
    }
    x->keys_read += (uint64_t)nkeys;
}

static void *race_thread(void *arg)
{
    struct tctx *x = arg;
    struct race *R = x->R;
    uint32_t base = 0;
    uint64_t n = 0;
    while (ts_now_ms() < R->end_ms) {
        if (++n % 256 == 0) {
            base = (base + HOT_WINDOW / 2) % KEYS_PER;
            atomic_store_explicit(&R->hot_base[x->t], base, memory_order_relaxed);
        }
        if (ft_range(&x->rng, 0, 99) < 55) {
            uint32_t j = ft_range(&x->rng, 0, 1) == 0
                             ? (base + (uint32_t)ft_range(&x->rng, 0, HOT_WINDOW - 1)) % KEYS_PER
                             : (uint32_t)ft_range(&x->rng, 0, KEYS_PER - 1);
            owner_op(x, (uint32_t)x->t * KEYS_PER + j);
            x->own_ops++;
        } else {
            reader_op(x);
            x->read_ops++;
        }
        if (x->c.broken) {
            violation(R, V_REPLY, "thread %d stops: its connection is out of step: %s", x->t,
                      x->c.err);
            break;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- final checks */

/* Read every key with multi-gets and compare with the owners' knowledge. */
static uint64_t verify_all(struct race *R, const char *when)
{
    struct tctx x = {.R = R, .t = -1};
    ck_assert_int_eq(ft_open(&x.c, R->port), 0);
    x.buf = malloc(1 << 17);
    x.req = malloc(64 * 16 + 16);
    ck_assert(x.buf != NULL && x.req != NULL);
    uint64_t before = 0;
    for (int k = 0; k < V_NKINDS; k++)
        before += R->viol[k];
    uint64_t present = 0;
    for (uint32_t g0 = 0; g0 < R->nkeys; g0 += 64) {
        uint32_t n = R->nkeys - g0 < 64 ? R->nkeys - g0 : 64;
        size_t len = (size_t)sprintf(x.req, "gets");
        for (uint32_t i = 0; i < n; i++) {
            char key[16];
            key_name(g0 + i, key);
            len += (size_t)sprintf(x.req + len, " %s", key);
        }
        len += (size_t)sprintf(x.req + len, "\r\n");
        ck_assert_int_eq(ft_send(&x.c, x.req, len), 0);
        uint32_t next = g0;
        for (;;) {
            struct ft_value v;
            int r = ft_next_value(&x.c, &v);
            ck_assert_msg(r >= 0, "%s: %s", when, x.c.err);
            uint32_t stop = g0 + n;
            if (r == 1) {
                uint32_t i = next;
                for (; i < g0 + n; i++) {
                    char key[16];
                    key_name(i, key);
                    if (strcmp(key, v.key) == 0)
                        break;
                }
                ck_assert_msg(i < g0 + n, "%s: unexpected key %s", when, v.key);
                stop = i;
            }
            for (; next < stop; next++) {
                if (R->own[next].present) {
                    char key[16];
                    key_name(next, key);
                    violation(R, V_LOST, "%s: %s (version %" PRIu64 ") is missing", when, key,
                              R->own[next].ver);
                }
            }
            if (r == 0)
                break;
            struct own *o = &R->own[next];
            if (!o->present) {
                violation(R, V_STALE, "%s: %s was deleted (version %" PRIu64 ") but is returned",
                          when, v.key, o->ver);
            } else {
                size_t en = expected_value(o, next, x.buf);
                if (en != v.n || memcmp(x.buf, v.data, en) != 0 || v.flags != o->flags)
                    violation(R, V_STALE,
                              "%s: %s differs from the owner's version %" PRIu64
                              " (%zu bytes, got %zu)",
                              when, v.key, o->ver, en, v.n);
                else if (o->cas_ver == o->ver && v.cas != o->cas)
                    violation(R, V_CAS, "%s: %s CAS %" PRIu64 ", was %" PRIu64, when, v.key, v.cas,
                              o->cas);
                present++;
            }
            next++;
        }
    }
    ft_close(&x.c);
    free(x.buf);
    free(x.req);
    uint64_t after = 0;
    for (int k = 0; k < V_NKINDS; k++)
        after += R->viol[k];
    fprintf(stderr, "%s: %" PRIu64 " keys present, %" PRIu64 " new problems\n", when, present,
            after - before);
    return present;
}

/* Write `mb` MB of values of every size that expire before they may be
 * demoted (TTL under --flash-min-ttl): RAM drops the owners' items. */
static void push_out(int port, int mb)
{
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, port), 0);
    char *buf = malloc(64 * (VAL_MAX + 100));
    ck_assert_ptr_nonnull(buf);
    struct ft_rng rng = {42};
    long long bytes = 0;
    for (uint32_t i = 0; bytes < (long long)mb << 20; i += 64) {
        size_t n = 0;
        for (int b = 0; b < 64; b++) {
            size_t len = (size_t)ft_range(&rng, VAL_MIN, TOTAL_MAX);
            n += (size_t)sprintf(buf + n, "set pushout:%u 0 30 %zu\r\n", i + (uint32_t)b, len);
            memset(buf + n, 'p', len);
            memcpy(buf + n + len, "\r\n", 2);
            n += len + 2;
            bytes += (long long)len;
        }
        ck_assert_int_eq(ft_send(&c, buf, n), 0);
        for (int b = 0; b < 64; b++)
            ck_assert_msg(ft_expect(&c, "STORED") == 0, "filler: %s", c.err);
    }
    free(buf);
    ft_close(&c);
}

/*
 * Give every slab class the race uses its first RAM page while RAM is still
 * empty, so that no class starts the race without memory of its own.
 */
static void prewarm(int port)
{
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, port), 0);
    char *buf = malloc(TOTAL_MAX + 100);
    ck_assert_ptr_nonnull(buf);
    int n = 0;
    for (size_t len = 1; len <= TOTAL_MAX; len += 16, n++) {
        int h = sprintf(buf, "set warm:%zu 0 30 %zu\r\n", len, len);
        memset(buf + h, 'w', len);
        memcpy(buf + h + len, "\r\n", 2);
        ck_assert_int_eq(ft_send(&c, buf, (size_t)h + len + 2), 0);
    }
    for (int i = 0; i < n; i++)
        ck_assert_msg(ft_expect(&c, "STORED") == 0, "prewarm: %s", c.err);
    free(buf);
    ft_close(&c);
}

START_TEST(test_race)
{
    long seconds = ft_env_long("TC_FLASH_RACE_SECONDS", 10);
    struct race R = {.nkeys = NTHREADS * KEYS_PER};
    pthread_mutex_init(&R.lock, NULL);
    R.pub = calloc(R.nkeys, sizeof(*R.pub));
    R.own = calloc(R.nkeys, sizeof(*R.own));
    ck_assert(R.pub != NULL && R.own != NULL);
    for (uint32_t g = 0; g < R.nkeys; g++)
        atomic_init(&R.pub[g].committed, 1); /* version 0, absent */

    struct ft_server s;
    ck_assert_int_eq(ft_start(&s, NULL,
                              (const char *const[]){"-m", "24", "-t", "4", "--flash-size", "512m",
                                                    "--flash-min-ttl", "60", NULL}),
                     0);
    R.port = s.ts.port;
    struct ft_stats *st = malloc(sizeof(*st));
    ck_assert_ptr_nonnull(st);
    prewarm(R.port);

    struct tctx x[NTHREADS];
    pthread_t th[NTHREADS];
    R.end_ms = ts_now_ms() + seconds * 1000;
    for (int t = 0; t < NTHREADS; t++) {
        x[t] = (struct tctx){.R = &R, .t = t, .rng = {0x5eed0000ULL + (uint64_t)t}};
        x[t].seen = calloc(R.nkeys, sizeof(struct seen));
        x[t].buf = malloc(1 << 17);
        x[t].req = malloc(MAX_MGET * 16 + 16);
        ck_assert(x[t].seen != NULL && x[t].buf != NULL && x[t].req != NULL);
        ck_assert_int_eq(ft_open(&x[t].c, R.port), 0);
        x[t].c.timeout_ms = 20000;
    }
    for (int t = 0; t < NTHREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, race_thread, &x[t]), 0);
    uint64_t own_ops = 0, read_ops = 0, keys_read = 0;
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        own_ops += x[t].own_ops;
        read_ops += x[t].read_ops;
        keys_read += x[t].keys_read;
        ft_close(&x[t].c);
        free(x[t].seen);
        free(x[t].buf);
        free(x[t].req);
    }
    ck_assert_int_eq(ft_stats_get(R.port, "stats tiers", st), 0);
    fprintf(stderr,
            "race: %ld s, %" PRIu64 " owner ops, %" PRIu64 " reads of %" PRIu64
            " keys; ram_items %lld flash_items %lld flash_hits %lld demotions %lld promotions "
            "%lld tombstones %lld ram_busy %lld\n",
            seconds, own_ops, read_ops, keys_read, ft_stats_num(st, "ram_items"),
            ft_stats_num(st, "flash_items"), ft_stats_num(st, "flash_hits"),
            ft_stats_num(st, "demotions"), ft_stats_num(st, "promotions"),
            ft_stats_num(st, "tombstones"), ft_stats_num(st, "ram_busy"));
    long long flash_hits = ft_stats_num(st, "flash_hits");

    /* Everything the owners know must be there, before and after the writer
     * drained, and once more after RAM dropped it all (so from flash). */
    verify_all(&R, "after the race");
    ck_assert_msg(ft_wait_writer_idle(R.port, 60000), "the flash writer did not drain");
    verify_all(&R, "after drain");
    long long hits0 = ft_tier(R.port, "flash_hits");
    push_out(R.port, 64);
    ck_assert_msg(ft_wait_writer_idle(R.port, 60000), "the flash writer did not drain");
    uint64_t present = verify_all(&R, "from flash");
    long long hits = ft_tier(R.port, "flash_hits") - hits0;

    uint64_t total = 0;
    for (int k = 0; k < V_NKINDS; k++)
        total += R.viol[k];
    if (total != 0 || !ft_alive(&s))
        ft_dump_log(&s, "race");
    int status = ft_stop(&s);
    ck_assert_msg(total == 0,
                  "%" PRIu64 " violations: %" PRIu64 " stale, %" PRIu64 " lost, %" PRIu64
                  " made-up, %" PRIu64 " corrupt, %" PRIu64 " wrong flags, %" PRIu64
                  " CAS, %" PRIu64 " unexpected replies (examples on stderr)",
                  total, R.viol[V_STALE], R.viol[V_LOST], R.viol[V_FUTURE], R.viol[V_CORRUPT],
                  R.viol[V_FLAGS], R.viol[V_CAS], R.viol[V_REPLY]);
    char status_text[80];
    ck_assert_msg(ft_exited_zero(status), "tiercached did not exit 0 on SIGTERM (%s)",
                  ft_status_text(status, status_text, sizeof(status_text)));
    /* The race must really have gone through flash. */
    ck_assert_msg(flash_hits >= 1000, "only %lld flash hits during the race", flash_hits);
    ck_assert_msg(ft_stats_num(st, "demotions") >= 1000 && ft_stats_num(st, "promotions") >= 1 &&
                      ft_stats_num(st, "tombstones") >= 1,
                  "the race did not exercise demotion, promotion and tombstones");
    ck_assert_msg(hits * 2 >= (long long)present,
                  "after pushing RAM out only %lld of %" PRIu64 " reads were flash hits", hits,
                  present);
    free(st);
    free(R.pub);
    free(R.own);
}
END_TEST

/*
 * Values of 200 B to 4 KB through a 4 MB RAM tier: more slab classes than
 * RAM has 1 MB pages. Every set must be stored (RAM demotes to flash; memcached
 * itself stores all of them with -m 4), and the last ones must read back.
 */
START_TEST(test_small_ram_every_size)
{
    struct ft_server s;
    ck_assert_int_eq(ft_start(&s, NULL, (const char *const[]){"-m", "4", "-t", "2", NULL}), 0);
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, s.ts.port), 0);
    char *buf = malloc(100 * (VAL_MAX + 100));
    ck_assert_ptr_nonnull(buf);
    struct ft_rng rng = {7};
    enum { N = 20000, BATCH = 100 };
    int refused = 0;
    char first_refusal[256] = "";
    for (uint32_t i = 0; i < N; i += BATCH) {
        size_t n = 0;
        for (uint32_t b = 0; b < BATCH; b++) {
            char key[32];
            snprintf(key, sizeof(key), "sz:%06u", i + b);
            size_t len = (size_t)ft_range(&rng, VAL_MIN, VAL_MAX);
            n += (size_t)sprintf(buf + n, "set %s 0 0 %zu\r\n", key, len);
            ft_seg_make(buf + n, key, strlen(key), 1, len);
            memcpy(buf + n + len, "\r\n", 2);
            n += len + 2;
        }
        ck_assert_int_eq(ft_send(&c, buf, n), 0);
        for (uint32_t b = 0; b < BATCH; b++) {
            const char *line;
            size_t ln;
            ck_assert_msg(ft_line(&c, &line, &ln) == 0, "%s", c.err);
            if (ln != 6 || memcmp(line, "STORED", 6) != 0) {
                if (refused++ == 0)
                    snprintf(first_refusal, sizeof(first_refusal), "sz:%06u: %.*s", i + b,
                             (int)(ln > 200 ? 200 : ln), line);
            }
        }
    }
    long long flash = ft_tier(s.ts.port, "flash_items");
    /* The most recent keys that were stored read back intact. */
    int bad = 0;
    for (uint32_t i = N - 500; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "sz:%06u", i);
        ck_assert_int_eq(ft_sendf(&c, "get %s\r\n", key), 0);
        struct ft_value v;
        int r = ft_next_value(&c, &v);
        ck_assert_msg(r >= 0, "%s", c.err);
        if (r == 1) {
            uint64_t f, l;
            char err[256];
            if (ft_value_check(v.data, v.n, key, strlen(key), &f, &l, err, sizeof(err)) != 1)
                bad++;
            ck_assert_int_eq(ft_expect(&c, "END"), 0);
        }
    }
    ft_close(&c);
    free(buf);
    int status = ft_stop(&s);
    ck_assert_msg(refused == 0,
                  "%d of %d sets of 200-4000 byte values were refused with -m 4 (flash_items "
                  "%lld); the first: %s",
                  refused, N, flash, first_refusal);
    ck_assert_int_eq(bad, 0);
    char status_text[80];
    ck_assert_msg(ft_exited_zero(status), "tiercached did not exit 0 on SIGTERM (%s)",
                  ft_status_text(status, status_text, sizeof(status_text)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flash_race");
    TCase *tc = tcase_create("race");
    tcase_add_test(tc, test_race);
    suite_add_tcase(s, tc);
    tc = tcase_create("small_ram");
    tcase_add_test(tc, test_small_ram_every_size);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
