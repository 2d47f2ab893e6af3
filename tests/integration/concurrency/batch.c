/*
 * batch.c: building a batch. Each command goes to the thread's output
 * buffer (one send for the whole pipeline) and gets a struct exp saying
 * what it expects, which replies.c checks when its reply is read. Data
 * values and records are generated in place (values.c). Called only by the
 * thread that owns the struct thr.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "concurrency.h"

const char *const sop_name[] = {"set", "add", "replace", "append", "prepend", "cas"};

/* ---------------------------------------------------------------------------
 * Building a batch
 * ------------------------------------------------------------------------- */

void batch_begin(struct thr *t)
{
    t->olen = 0;
    t->nexp = 0;
    t->nkpool = 0;
}

bool batch_full(const struct thr *t)
{
    return t->nexp > MAX_EXPS - 8 || t->nkpool > MAX_KPOOL - 2 * MAX_MGET || t->olen > OUT_SOFT;
}

char *out_reserve(struct thr *t, size_t n)
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

struct exp *add_exp(struct thr *t, int kind)
{
    struct exp *e = &t->exps[t->nexp++];
    memset(e, 0, sizeof(*e));
    e->kind = (uint8_t)kind;
    return e;
}

/* A command line: to the batch, and (shortened) to e->cmd for messages. */
void out_cmd(struct thr *t, struct exp *e, const char *fmt, ...)
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
struct exp *emit_store(struct thr *t, int op, const struct keyref *k, uint32_t flags,
                       int64_t exptime, const char *data, size_t len, uint64_t cas, bool noreply,
                       uint32_t seq)
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

struct exp *store_data(struct thr *t, int op, const struct keyref *k, int64_t exptime, uint64_t cas,
                       bool noreply)
{
    char key[256];
    key_name(k, key, sizeof(key));
    uint32_t seq = next_seq(t);
    size_t len = data_len(key, (unsigned)t->id, seq, policy_of(k));
    return emit_store(t, op, k, data_flags(key, (unsigned)t->id, seq), exptime, NULL, len, cas,
                      noreply, seq);
}

struct exp *store_number(struct thr *t, int op, const struct keyref *k, uint64_t v, uint64_t cas)
{
    char key[256], num[24];
    key_name(k, key, sizeof(key));
    int n = snprintf(num, sizeof(num), "%" PRIu64, v);
    struct exp *e = emit_store(t, op, k, cnt_flags(key), 0, num, (size_t)n, cas, false, 0);
    e->val = v;
    return e;
}

struct exp *store_empty_app(struct thr *t, int op, const struct keyref *k)
{
    char key[256];
    key_name(k, key, sizeof(key));
    return emit_store(t, op, k, app_flags(key), 0, "", 0, 0, false, 0);
}

struct exp *store_rec(struct thr *t, int op, const struct keyref *k, bool noreply)
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

struct exp *emit_get(struct thr *t, const char *verb, bool with_cas, int64_t exptime,
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

void emit_get1(struct thr *t, const struct keyref *k, bool with_cas)
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

void emit_delete(struct thr *t, const struct keyref *k, bool noreply)
{
    emit_simple(t, E_DELETE, "delete", k, NULL, noreply);
}

void emit_touch(struct thr *t, const struct keyref *k, int64_t exptime, bool noreply)
{
    char a[24];
    snprintf(a, sizeof(a), "%lld", (long long)exptime);
    emit_simple(t, E_TOUCH, "touch", k, a, noreply);
    t->exps[t->nexp - 1].exptime = exptime;
}

void emit_arith(struct thr *t, const struct keyref *k, bool incr, uint64_t d, bool noreply)
{
    char a[24];
    snprintf(a, sizeof(a), "%" PRIu64, d);
    emit_simple(t, E_ARITH, incr ? "incr" : "decr", k, a, noreply);
    t->exps[t->nexp - 1].incr = incr;
    t->exps[t->nexp - 1].num = d;
}

int64_t pick_exptime(struct thr *t, bool allow_expired)
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
