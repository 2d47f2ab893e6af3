/*
 * workload.c: what each client thread does. A thread owns its struct thr
 * (random state, connections, model of its private keys); worker_main()
 * builds batches from the command mix (reads of up to 30 keys, writes to
 * shared and private keys, counters, append keys, misc and deliberate
 * errors, large items), paces the fill keys so the hash table grows halfway
 * through, and churns connections in the conns case, until the case's time
 * is up or G.stop is set.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "concurrency.h"
#include "testutil.h"

uint64_t rnd(struct thr *t)
{
    t->rng = t->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return mix64(t->rng);
}

unsigned rn(struct thr *t, unsigned n)
{
    return (unsigned)(rnd(t) % n);
}

uint32_t next_seq(struct thr *t)
{
    t->seq++;
    atomic_store_explicit(&G.maxseq[t->id], t->seq, memory_order_release);
    return t->seq;
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
 * Threads
 * ------------------------------------------------------------------------- */

void *worker_main(void *arg)
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

struct thr *thr_new(int id, uint64_t seed)
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

void thr_free(struct thr *t)
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
