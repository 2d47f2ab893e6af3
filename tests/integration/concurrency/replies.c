/*
 * replies.c: reading and checking replies. run_batch() sends a batch and
 * reads every reply in order; each must have the syntax its command allows
 * and a content that fits what the thread knows: any hit is verified
 * (values.c), and the thread's model of its private keys, counters and
 * append value (struct thr) is checked against the reply, then updated by
 * it. On a roomy server a miss or refusal that contradicts the model is an
 * error; on a small one it is taken as an eviction. Called only by the
 * thread that owns the struct thr.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concurrency.h"
#include "testutil.h"

static const char *const rep_name[] = {"(noreply)",
                                       "STORED",
                                       "NOT_STORED",
                                       "EXISTS",
                                       "NOT_FOUND",
                                       "SERVER_ERROR out of memory",
                                       "SERVER_ERROR object too large"};

/* ---------------------------------------------------------------------------
 * Checking hits and misses
 * ------------------------------------------------------------------------- */

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
int run_batch(struct thr *t, struct conn *c)
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
