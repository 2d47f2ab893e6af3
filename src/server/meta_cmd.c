/*
 * meta_cmd.c: the meta commands against the engine (see meta_cmd.h).
 *
 * memcached 1.6.18 (proto_text.c) is the reference, quirks included:
 *   - reply flags come in the order of the request's flags; T and N (and
 *     for mg, R) act at their place in that order, so "t T30" shows the old
 *     TTL and "T30 t" the new one;
 *   - q hides only the nominal reply: EN for mg, HD for ms, md and ma;
 *     errors are always sent;
 *   - a win (W) goes to the client that vivified the item (N), to the
 *     first R whose threshold the TTL is under, and to the first reader of
 *     a stale item; later readers see Z (and X while it is stale);
 *   - an opaque token longer than 31 bytes is found while the reply is
 *     built: mg and ma have done their work by then (the item is touched,
 *     created, incremented) and only then answer the error;
 *   - 'k' echoes a key stored with 'b' in base64 with a " b" after it, and
 *     a key created by mg N or ma N as the raw bytes (memcached does not
 *     mark those as binary).
 */
#include "meta_cmd.h"

#include <stdio.h>
#include <string.h>

#include "compose.h"
#include "conn.h"
#include "numparse.h"
#include "parse.h"
#include "prefix.h"
#include "process.h"
#include "server.h"

#define META_LINE_MAX 1024 /* longest reply line: every flag once, a 250-byte key */

/* The exact bytes of each parse error (docs/META.md). */
static const char *const meta_errors[META_ERR_COUNT] = {
    [META_ERR_ERROR] = "ERROR\r\n",
    [META_ERR_BAD_FORMAT] = "CLIENT_ERROR bad command line format\r\n",
    [META_ERR_FLAGS_TOO_LONG] = "CLIENT_ERROR options flags are too long\r\n",
    [META_ERR_FLAGS_TOO_LONG2] = "CLIENT_ERROR options flags too long\r\n",
    [META_ERR_INVALID_FLAG] = "CLIENT_ERROR invalid flag\r\n",
    [META_ERR_DUPLICATE_FLAG] = "CLIENT_ERROR duplicate flag\r\n",
    [META_ERR_INVALID_OR_DUP] = "CLIENT_ERROR invalid or duplicate flag\r\n",
    [META_ERR_BAD_TOKEN] = "CLIENT_ERROR bad token in command line format\r\n",
    [META_ERR_BAD_DELTA] = "CLIENT_ERROR invalid numeric delta value\r\n",
    [META_ERR_BAD_INITIAL] = "CLIENT_ERROR invalid numeric initial value\r\n",
    [META_ERR_M_LENGTH] = "CLIENT_ERROR incorrect length for M token\r\n",
    [META_ERR_KEY_DECODE] = "CLIENT_ERROR error decoding key\r\n",
    [META_ERR_MS_MODE] = "CLIENT_ERROR invalid mode for ms M token\r\n",
    [META_ERR_MA_MODE] = "CLIENT_ERROR invalid mode for ma M token\r\n",
    [META_ERR_OPAQUE_TOO_LONG] = "CLIENT_ERROR opaque token too long\r\n",
};

static void write_str(struct conn *c, const char *s)
{
    conn_write(c, s, strlen(s));
}

/* ---------------------------------------------------------------------------
 * Reply lines
 * ------------------------------------------------------------------------- */

struct rline {
    size_t n;
    char b[META_LINE_MAX];
};

static void put(struct rline *l, const char *s, size_t n)
{
    if (n > sizeof(l->b) - l->n)
        n = sizeof(l->b) - l->n; /* cannot happen: every flag appears once */
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

static void put_s(struct rline *l, const char *s)
{
    put(l, s, strlen(s));
}

/* " <c><number>" */
static void put_flag_u64(struct rline *l, char c, uint64_t v)
{
    char buf[24] = {' ', c};
    size_t n = tc_u64toa(v, buf + 2);
    put(l, buf, n + 2);
}

/* " t<seconds left>", " t-1" for no expiry (unsigned, as memcached prints it). */
static void put_ttl(struct rline *l, cache_time_t exptime, cache_time_t now)
{
    if (exptime == 0)
        put_s(l, " t-1");
    else
        put_flag_u64(l, 't', (uint32_t)(exptime - now));
}

/* " k<key>", or " k<base64> b" for a binary key. */
static void put_key(struct rline *l, const char *key, size_t nkey, bool binary)
{
    put_s(l, " k");
    if (!binary) {
        put(l, key, nkey);
        return;
    }
    char enc[META_BASE64_LEN(PROTO_KEY_MAX)];
    put(l, enc, meta_base64_encode(key, nkey, enc));
    put_s(l, " b");
}

/* The flag tokens of the request, in order; false at the end. */
static bool next_flag(const char **pos, const char *end, struct proto_token *t)
{
    return proto_next_key(pos, end, t) != 0;
}

static bool opaque_too_long(const struct proto_token *t)
{
    return t->n > META_OPAQUE_MAX;
}

static void send_line(struct conn *c, struct rline *l)
{
    put(l, "\r\n", 2);
    conn_write(c, l->b, l->n);
}

/* ---------------------------------------------------------------------------
 * Expiry in flag order
 * ------------------------------------------------------------------------- */

/*
 * T, N and R act at their place among the flags, and only up to a too-long
 * opaque token, where memcached stops building the reply (and answers the
 * error): this is where they stop acting.
 */
static const char *acting_end(const struct meta_request *req)
{
    if (req->err != META_ERR_OPAQUE_TOO_LONG)
        return req->flags_end;
    const char *pos = req->flags;
    struct proto_token t;
    while (next_flag(&pos, req->flags_end, &t))
        if (t.s[0] == 'O' && opaque_too_long(&t))
            return t.s;
    return req->flags_end;
}

/* The place of flag f among the flags before `end`, or -1. */
static int flag_pos(const struct meta_request *req, const char *end, char f)
{
    const char *pos = req->flags;
    struct proto_token t;
    for (int i = 0; next_flag(&pos, end, &t); i++)
        if (t.s[0] == f)
            return i;
    return -1;
}

/* How T and N set the expiry, in their order. */
struct ttl_plan {
    bool touch;               /* T acts: an existing item takes t_exp */
    cache_time_t t_exp;       /* T's expiry */
    cache_time_t n_exp;       /* N's expiry */
    cache_time_t created_exp; /* what a created item ends with (it starts at 0) */
    int t_pos;
};

static struct ttl_plan plan_ttl(struct cache *cache, const struct meta_request *req,
                                const char *end)
{
    struct ttl_plan p = {0};
    p.t_pos = flag_pos(req, end, 'T');
    int n_pos = flag_pos(req, end, 'N');
    p.touch = p.t_pos >= 0;
    if (p.touch)
        p.t_exp = cache_realtime(cache, req->ttl);
    if (n_pos >= 0)
        p.n_exp = cache_realtime(cache, req->vivify_ttl);
    if (p.touch && (n_pos < 0 || p.t_pos > n_pos))
        p.created_exp = p.t_exp;
    else if (n_pos >= 0)
        p.created_exp = p.n_exp;
    return p;
}

static bool has(const struct meta_request *req, char f)
{
    return (req->present & META_FLAG(f)) != 0;
}

/* ---------------------------------------------------------------------------
 * mg
 * ------------------------------------------------------------------------- */

static bool meta_get(struct conn *c, const struct meta_request *req)
{
    struct worker *w = conn_worker(c);
    struct cache *cache = w->srv->cache;
    struct cache_mget m = {0};
    const char *end = acting_end(req);
    bool late = end != req->flags_end; /* the reply will be an error */
    struct ttl_plan p = plan_ttl(cache, req, end);
    cache_time_t t_exp = p.t_exp, n_exp = p.n_exp;
    m.touch = p.touch;
    m.touch_exptime = p.t_exp;
    m.vivify = has(req, 'N'); /* before the flags act: wherever N is */
    m.vivify_exptime = p.created_exp;
    int r_pos = flag_pos(req, end, 'R');
    if (r_pos >= 0) {
        m.recache = true;
        m.recache_time = cache_realtime(cache, req->recache_ttl);
        m.recache_after_touch = p.touch && p.t_pos < r_pos;
    }
    /* With T, N, R, l or h memcached bumps the item after the reply, so a
     * failed reply leaves it unbumped; and a win is never recorded then. */
    m.no_bump = has(req, 'u') ||
                (late && (req->present & (META_FLAG('T') | META_FLAG('N') | META_FLAG('R') |
                                          META_FLAG('l') | META_FLAG('h'))) != 0);
    m.no_win = late;

    struct item *it = NULL;
    tc_status_e st = cache_mget(w->cw, req->key.s, req->key.n, &m, &it);
    if (st == TC_BUSY && conn_retry_later(c))
        return false;
    if (atomic_load_explicit(&w->srv->detail_enabled, memory_order_relaxed))
        prefix_record_get(w->srv->prefix, req->key.s, req->key.n, st == TC_OK);
    if (st == TC_BUSY || st == TC_NO_MEMORY) {
        write_str(c, "SERVER_ERROR out of memory\r\n");
        return true;
    }

    struct rline l = {0};
    const char *pos = req->flags;
    struct proto_token t;
    if (it == NULL) {
        put_s(&l, "EN");
        while (next_flag(&pos, req->flags_end, &t)) {
            if (t.s[0] == 'O') {
                if (opaque_too_long(&t)) {
                    write_str(c, meta_errors[META_ERR_OPAQUE_TOO_LONG]);
                    return true;
                }
                put(&l, " ", 1);
                put(&l, t.s, t.n);
            } else if (t.s[0] == 'k') {
                put_key(&l, req->key.s, req->key.n, req->key_binary);
            }
        }
        if (!has(req, 'q'))
            send_line(c, &l);
        return true;
    }

    cache_time_t now = cache_now(cache);
    cache_time_t exptime = m.created ? 0 : m.old_exptime; /* as the loop sees it */
    bool value = has(req, 'v');
    if (value) {
        char len[24];
        put_s(&l, "VA ");
        put(&l, len, tc_u64toa(item_nbytes(it), len));
    } else {
        put_s(&l, "HD");
    }
    while (next_flag(&pos, req->flags_end, &t)) {
        switch (t.s[0]) {
        case 'T':
            exptime = t_exp;
            break;
        case 'N':
            if (m.created)
                exptime = n_exp;
            break;
        case 's':
            put_flag_u64(&l, 's', item_nbytes(it));
            break;
        case 't':
            put_ttl(&l, exptime, now);
            break;
        case 'c':
            put_flag_u64(&l, 'c', item_cas(it));
            break;
        case 'f':
            put_flag_u64(&l, 'f', item_flags(it));
            break;
        case 'l':
            put_flag_u64(&l, 'l', (uint32_t)(now - m.atime));
            break;
        case 'h':
            put_s(&l, m.fetched ? " h1" : " h0");
            break;
        case 'O':
            if (opaque_too_long(&t)) {
                cache_item_unref(cache, it);
                write_str(c, meta_errors[META_ERR_OPAQUE_TOO_LONG]);
                return true;
            }
            put(&l, " ", 1);
            put(&l, t.s, t.n);
            break;
        case 'k':
            put_key(&l, item_key(it), item_nkey(it), (m.meta & CACHE_META_KEY_BINARY) != 0);
            break;
        }
    }
    /* Z before X before W, and never W with Z. */
    if (m.meta & CACHE_META_WIN_SENT)
        put_s(&l, " Z");
    if (m.meta & CACHE_META_STALE)
        put_s(&l, " X");
    if (m.win)
        put_s(&l, " W");
    put(&l, "\r\n", 2);
    if (value) {
        conn_write_item(c, l.b, l.n, it); /* the value, "\r\n", and drops the reference */
    } else {
        conn_write(c, l.b, l.n);
        cache_item_unref(cache, it);
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * ms
 * ------------------------------------------------------------------------- */

static enum cache_store_op ms_op(const struct meta_request *req)
{
    enum cache_store_op op;
    switch (req->mode) {
    case 'E':
        op = CACHE_ADD;
        break;
    case 'A':
        op = CACHE_APPEND;
        break;
    case 'P':
        op = CACHE_PREPEND;
        break;
    case 'R':
        op = CACHE_REPLACE;
        break;
    default:
        op = CACHE_SET;
        break;
    }
    /* memcached: a CAS makes set and replace a compare-and-swap. */
    if (has(req, 'C') && (op == CACHE_SET || op == CACHE_REPLACE))
        op = CACHE_CAS;
    return op;
}

static bool meta_set(struct conn *c, const struct meta_request *req)
{
    struct worker *w = conn_worker(c);
    struct cache *cache = w->srv->cache;
    struct meta_set *ms = conn_meta_set(c);
    if (ms == NULL) {
        write_str(c, "SERVER_ERROR out of memory storing object\r\n");
        conn_swallow(c, (size_t)req->vlen + 2);
        return true;
    }
    cache_time_t exptime = has(req, 'T') ? cache_realtime(cache, req->ttl) : 0;
    struct item *it;
    tc_status_e st =
        cache_alloc(w->cw, req->key.s, req->key.n, req->client_flags, exptime, req->vlen, &it);
    if (st == TC_BUSY) {
        if (conn_retry_later(c))
            return false; /* the data is not read yet: the line runs again */
        st = TC_NO_MEMORY;
    }
    if (atomic_load_explicit(&w->srv->detail_enabled, memory_order_relaxed))
        prefix_record_set(w->srv->prefix, req->key.s, req->key.n);
    if (st != TC_OK) {
        write_str(c, st == TC_TOO_LARGE ? "SERVER_ERROR object too large for cache\r\n"
                                        : "SERVER_ERROR out of memory storing object\r\n");
        conn_swallow(c, (size_t)req->vlen + 2);
        /* memcached drops the old value whatever the mode. */
        cache_delete(w->cw, req->key.s, req->key.n);
        return true;
    }

    ms->op = ms_op(req);
    ms->cas = req->compare_cas;
    ms->invalidate = has(req, 'I');
    ms->key_binary = req->key_binary;
    ms->quiet = has(req, 'q');
    ms->nret = 0;
    const char *pos = req->flags;
    struct proto_token t;
    while (next_flag(&pos, req->flags_end, &t)) {
        if (t.s[0] == 'O') { /* the parser has checked its length */
            memcpy(ms->ret + ms->nret, t.s, t.n);
            ms->nret += t.n;
            ms->ret[ms->nret++] = ' ';
        } else if (t.s[0] == 'k' || t.s[0] == 'c') {
            ms->ret[ms->nret++] = t.s[0];
            ms->ret[ms->nret++] = ' ';
        }
    }
    conn_read_meta_value(c, it);
    return true;
}

bool process_meta_value_read(struct conn *c, struct item *it, const struct meta_set *ms, bool valid)
{
    struct worker *w = conn_worker(c);
    struct cache *cache = w->srv->cache;
    if (!valid) {
        write_str(c, "CLIENT_ERROR bad data chunk\r\n"); /* even with q */
        cache_item_unref(cache, it);
        return true;
    }
    uint64_t cas = 0;
    tc_status_e st =
        cache_store_meta(w->cw, it, ms->op, ms->cas, ms->invalidate, ms->key_binary, &cas);
    if (st == TC_BUSY && conn_retry_later(c))
        return false;
    const char *code;
    switch (st) {
    case TC_OK:
        code = "HD";
        break;
    case TC_EXISTS:
        code = "EX";
        break;
    case TC_NOT_FOUND:
        code = "NF";
        break;
    default:
        code = "NS"; /* incl. append past the size limit, as memcached */
        cas = 0;
        break;
    }
    if (st == TC_OK && ms->quiet) {
        cache_item_unref(cache, it);
        return true;
    }
    struct rline l = {0};
    put_s(&l, code);
    for (size_t i = 0; i < ms->nret;) {
        const char *tok = ms->ret + i;
        const char *sp = memchr(tok, ' ', ms->nret - i);
        size_t n = (size_t)(sp - tok);
        if (tok[0] == 'O') {
            put(&l, " ", 1);
            put(&l, tok, n);
        } else if (tok[0] == 'k') {
            put_key(&l, item_key(it), item_nkey(it), ms->key_binary);
        } else {
            put_flag_u64(&l, 'c', cas);
        }
        i += n + 1;
    }
    cache_item_unref(cache, it);
    send_line(c, &l);
    return true;
}

/* ---------------------------------------------------------------------------
 * md
 * ------------------------------------------------------------------------- */

/* " O..." and " k..." of a reply that has no item (md, ma misses). */
static bool put_echo(struct rline *l, const struct meta_request *req)
{
    const char *pos = req->flags;
    struct proto_token t;
    while (next_flag(&pos, req->flags_end, &t)) {
        if (t.s[0] == 'O') {
            if (opaque_too_long(&t))
                return false;
            put(l, " ", 1);
            put(l, t.s, t.n);
        } else if (t.s[0] == 'k') {
            put_key(l, req->key.s, req->key.n, req->key_binary);
        }
    }
    return true;
}

static void meta_delete(struct conn *c, const struct meta_request *req)
{
    struct worker *w = conn_worker(c);
    struct rline l = {.n = 2};
    /* memcached builds the flags before it looks the key up. */
    if (!put_echo(&l, req)) {
        write_str(c, meta_errors[META_ERR_OPAQUE_TOO_LONG]);
        return;
    }
    if (atomic_load_explicit(&w->srv->detail_enabled, memory_order_relaxed))
        prefix_record_delete(w->srv->prefix, req->key.s, req->key.n);
    struct cache_mdelete d = {.has_cas = has(req, 'C'),
                              .cas = req->compare_cas,
                              .invalidate = has(req, 'I'),
                              .touch = has(req, 'T')};
    if (d.touch)
        d.exptime = cache_realtime(w->srv->cache, req->ttl);
    tc_status_e st = cache_mdelete(w->cw, req->key.s, req->key.n, &d);
    switch (st) {
    case TC_OK:
        if (has(req, 'q'))
            return;
        memcpy(l.b, "HD", 2);
        break;
    case TC_EXISTS:
        memcpy(l.b, "EX", 2);
        break;
    case TC_NOT_FOUND:
        memcpy(l.b, "NF", 2);
        break;
    default:
        write_str(c, "SERVER_ERROR out of memory\r\n");
        return;
    }
    send_line(c, &l);
}

/* ---------------------------------------------------------------------------
 * ma
 * ------------------------------------------------------------------------- */

static bool meta_arith(struct conn *c, const struct meta_request *req)
{
    struct worker *w = conn_worker(c);
    struct cache *cache = w->srv->cache;
    struct cache_marith m = {0};
    m.incr = req->mode != 'D' && req->mode != '-';
    m.delta = req->delta;
    m.cas = has(req, 'C') ? req->compare_cas : 0;
    struct ttl_plan p = plan_ttl(cache, req, acting_end(req));
    cache_time_t t_exp = p.t_exp, n_exp = p.n_exp;
    m.touch = p.touch;
    m.touch_exptime = p.t_exp;
    m.vivify = has(req, 'N');
    m.initial = req->initial;
    m.vivify_exptime = p.created_exp;
    tc_status_e st = cache_marith(w->cw, req->key.s, req->key.n, &m);
    if (st == TC_BUSY && conn_retry_later(c))
        return false;

    struct rline l = {0};
    switch (st) {
    case TC_OK:
        break;
    case TC_NON_NUMERIC:
        write_str(c, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        return true;
    case TC_NOT_FOUND:
    case TC_EXISTS:
        put_s(&l, st == TC_EXISTS ? "EX" : "NF");
        if (!put_echo(&l, req))
            write_str(c, meta_errors[META_ERR_OPAQUE_TOO_LONG]);
        else
            send_line(c, &l);
        return true;
    default:
        write_str(c, m.vivify ? "SERVER_ERROR Out of memory allocating new item\r\n"
                              : "SERVER_ERROR out of memory\r\n");
        return true;
    }

    char num[24];
    size_t nlen = tc_u64toa(m.value, num);
    bool value = has(req, 'v');
    if (value) {
        put_s(&l, "VA ");
        char len[24];
        put(&l, len, tc_u64toa(nlen, len));
    } else {
        put_s(&l, "HD");
    }
    cache_time_t now = cache_now(cache);
    cache_time_t exptime = m.created ? 0 : m.old_exptime; /* as the loop sees it */
    const char *pos = req->flags;
    struct proto_token t;
    while (next_flag(&pos, req->flags_end, &t)) {
        switch (t.s[0]) {
        case 'c':
            put_flag_u64(&l, 'c', m.cas_out);
            break;
        case 't':
            put_ttl(&l, exptime, now);
            break;
        case 'T':
            exptime = t_exp;
            break;
        case 'N':
            if (m.created)
                exptime = n_exp;
            break;
        case 'O':
            if (opaque_too_long(&t)) {
                write_str(c, meta_errors[META_ERR_OPAQUE_TOO_LONG]);
                return true;
            }
            put(&l, " ", 1);
            put(&l, t.s, t.n);
            break;
        case 'k':
            put_key(&l, req->key.s, req->key.n, req->key_binary);
            break;
        }
    }
    if (has(req, 'q') && !m.created) /* memcached sends a vivify's reply even then */
        return true;
    if (value) {
        put(&l, "\r\n", 2);
        put(&l, num, nlen);
    }
    send_line(c, &l);
    return true;
}

/* ---------------------------------------------------------------------------
 * me
 * ------------------------------------------------------------------------- */

static void meta_debug(struct conn *c, const struct meta_request *req)
{
    struct worker *w = conn_worker(c);
    struct cache_walk_entry e;
    unsigned meta;
    SCTR_INC(w->st.cmd_meta);
    if (cache_peek(w->cw, req->key.s, req->key.n, &e, &meta) != TC_OK) {
        write_str(c, "EN\r\n");
        return;
    }
    cache_time_t now = cache_now(w->srv->cache);
    struct rline l = {0};
    put_s(&l, "ME ");
    if (meta & CACHE_META_KEY_BINARY) {
        char enc[META_BASE64_LEN(PROTO_KEY_MAX)];
        put(&l, enc, meta_base64_encode(e.key, e.nkey, enc));
    } else {
        put(&l, e.key, e.nkey);
    }
    /* memcached prints exp as now - exptime: minus the seconds left. */
    char buf[160];
    int n = snprintf(buf, sizeof(buf), " exp=%d la=%u cas=%llu fetch=%s cls=%u size=%u",
                     e.exptime == 0 ? -1 : (int)(int32_t)(now - e.exptime),
                     (unsigned)(now - e.atime), (unsigned long long)e.cas, e.fetched ? "yes" : "no",
                     (unsigned)e.clsid, (unsigned)e.size);
    put(&l, buf, (size_t)n);
    send_line(c, &l);
}

/* ---------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------- */

bool process_meta(struct conn *c, const struct meta_request *req)
{
    /* mg and ma meet a long opaque only while building their reply, once
     * their work is done: they run and answer the error themselves. */
    bool late = req->err == META_ERR_OPAQUE_TOO_LONG &&
                (req->cmd == META_CMD_MG || req->cmd == META_CMD_MA);
    if (req->err != META_OK && !late) {
        write_str(c, meta_errors[req->err]);
        if (req->swallow)
            conn_swallow(c, (size_t)req->vlen + 2);
        return true;
    }
    switch (req->cmd) {
    case META_CMD_MG:
        return meta_get(c, req);
    case META_CMD_MS:
        return meta_set(c, req);
    case META_CMD_MD:
        meta_delete(c, req);
        return true;
    case META_CMD_MA:
        return meta_arith(c, req);
    case META_CMD_ME:
        meta_debug(c, req);
        return true;
    case META_CMD_MN:
        conn_reply(c, PROTO_R_MN);
        conn_commit(c);
        return true;
    }
    return true;
}
