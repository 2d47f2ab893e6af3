/*
 * parse.c: the text protocol parser (see parse.h).
 *
 * The structure follows memcached 1.6's proto_text.c so that every error
 * path answers the same: the same token counts are checked in the same
 * order (a wrong count is "ERROR"), "noreply" is recognised only as the last
 * token, numbers are read with memcached's safe_strto* rules (numparse.h),
 * and the line ends at an embedded NUL as memcached's strlen() makes it.
 */
#include "parse.h"

#include <limits.h>
#include <string.h>

#include "numparse.h"

enum proto_line proto_next_line(const char *buf, size_t len, size_t *line_len, size_t *consumed)
{
    const char *el = memchr(buf, '\n', len);
    if (el == NULL) {
        if (len > PROTO_LINE_MAX_NO_NEWLINE) {
            size_t i = 0;
            while (i < len && buf[i] == ' ')
                i++;
            size_t rest = len - i;
            bool get = (rest >= 4 && memcmp(buf + i, "get ", 4) == 0) ||
                       (rest >= 5 && memcmp(buf + i, "gets ", 5) == 0);
            if (i > 100 || !get)
                return PROTO_LINE_CLOSE;
        }
        return PROTO_LINE_NEED_MORE;
    }
    size_t n = (size_t)(el - buf);
    *consumed = n + 1;
    if (n > 1 && buf[n - 1] == '\r')
        n--;
    *line_len = n;
    return PROTO_LINE_OK;
}

size_t proto_tokenize(const char *s, size_t n, struct proto_token *tokens, size_t max)
{
    size_t nt = 0;
    size_t start = 0, i = 0;
    for (; i < n; i++) {
        if (s[i] != ' ')
            continue;
        if (start != i) {
            tokens[nt].s = s + start;
            tokens[nt].n = i - start;
            nt++;
            if (nt == max - 1) {
                i++;
                start = i;
                break;
            }
        }
        start = i + 1;
    }
    if (start != i && i <= n && nt < max - 1) {
        tokens[nt].s = s + start;
        tokens[nt].n = i - start;
        nt++;
    }
    /* The terminal token: NULL if everything was split, else the remainder. */
    tokens[nt].s = i < n ? s + i : NULL;
    tokens[nt].n = 0;
    return nt + 1;
}

int proto_next_key(const char **pos, const char *end, struct proto_token *key)
{
    const char *p = *pos;
    while (p < end && *p == ' ')
        p++;
    if (p >= end) {
        *pos = p;
        return 0;
    }
    const char *k = p;
    while (p < end && *p != ' ')
        p++;
    key->s = k;
    key->n = (size_t)(p - k);
    *pos = p;
    return 1;
}

static bool tok_is(const struct proto_token *t, const char *word)
{
    size_t n = strlen(word);
    return t->s != NULL && t->n == n && memcmp(t->s, word, n) == 0;
}

static void reply(struct request *req, enum proto_reply r)
{
    req->cmd = PROTO_CMD_REPLY;
    req->reply = r;
}

/* memcached's set_noreply_maybe(): "noreply" as the last real token. */
static bool noreply_maybe(const struct proto_token *t, size_t nt)
{
    return tok_is(&t[nt - 2], "noreply");
}

/* process_update_command(): set add replace append prepend cas */
static void parse_update(const struct proto_token *t, size_t nt, struct request *req,
                         enum proto_cmd cmd)
{
    bool with_cas = cmd == PROTO_CMD_CAS;
    if (nt != (with_cas ? 7u : 6u) && nt != (with_cas ? 8u : 7u)) {
        reply(req, PROTO_R_ERROR);
        return;
    }
    req->noreply = noreply_maybe(t, nt);
    if (t[1].n > PROTO_KEY_MAX || !tc_strtoul32(t[2].s, t[2].n, &req->flags) ||
        !tc_strtol32(t[3].s, t[3].n, &req->exptime) || !tc_strtol32(t[4].s, t[4].n, &req->vlen)) {
        reply(req, PROTO_R_CLIENT_ERROR_FORMAT);
        return;
    }
    if (with_cas && !tc_strtoull(t[5].s, t[5].n, &req->cas)) {
        reply(req, PROTO_R_CLIENT_ERROR_FORMAT);
        return;
    }
    if (req->vlen < 0 || req->vlen > INT_MAX - 2) {
        reply(req, PROTO_R_CLIENT_ERROR_FORMAT);
        return;
    }
    req->cmd = cmd;
    req->key = t[1];
}

/* process_get_command(): get gets gat gats bget */
static void parse_get(const char *line, size_t len, const struct proto_token *t, size_t nt,
                      struct request *req, enum proto_cmd cmd)
{
    if (nt < 3) {
        reply(req, PROTO_R_ERROR);
        return;
    }
    size_t first = 1;
    if (cmd == PROTO_CMD_GAT || cmd == PROTO_CMD_GATS) {
        if (!tc_strtol32(t[1].s, t[1].n, &req->exptime)) {
            reply(req, PROTO_R_CLIENT_ERROR_EXPTIME);
            return;
        }
        first = 2;
    }
    req->cmd = cmd;
    req->keys = t[first].s != NULL ? t[first].s : line + len;
    req->keys_end = line + len;
}

static void parse_arith(const struct proto_token *t, size_t nt, struct request *req,
                        enum proto_cmd cmd)
{
    if (nt != 4 && nt != 5) {
        reply(req, PROTO_R_ERROR);
        return;
    }
    req->noreply = noreply_maybe(t, nt);
    if (t[1].n > PROTO_KEY_MAX) {
        reply(req, PROTO_R_CLIENT_ERROR_FORMAT);
        return;
    }
    if (!tc_strtoull(t[2].s, t[2].n, &req->delta)) {
        reply(req, PROTO_R_CLIENT_ERROR_DELTA);
        return;
    }
    req->cmd = cmd;
    req->key = t[1];
}

static void parse_touch(const struct proto_token *t, size_t nt, struct request *req)
{
    if (nt != 4 && nt != 5) {
        reply(req, PROTO_R_ERROR);
        return;
    }
    req->noreply = noreply_maybe(t, nt);
    if (t[1].n > PROTO_KEY_MAX) {
        reply(req, PROTO_R_CLIENT_ERROR_FORMAT);
        return;
    }
    if (!tc_strtol32(t[2].s, t[2].n, &req->exptime)) {
        reply(req, PROTO_R_CLIENT_ERROR_EXPTIME);
        return;
    }
    req->cmd = PROTO_CMD_TOUCH;
    req->key = t[1];
}

static void parse_delete(const struct proto_token *t, size_t nt, struct request *req)
{
    if (nt < 3 || nt > 5) {
        reply(req, PROTO_R_ERROR);
        return;
    }
    if (nt > 3) {
        bool hold_is_zero = tok_is(&t[2], "0");
        req->noreply = noreply_maybe(t, nt);
        bool valid = (nt == 4 && (hold_is_zero || req->noreply)) ||
                     (nt == 5 && hold_is_zero && req->noreply);
        if (!valid) {
            reply(req, PROTO_R_CLIENT_ERROR_DELETE_USAGE);
            return;
        }
    }
    if (t[1].n > PROTO_KEY_MAX) {
        reply(req, PROTO_R_CLIENT_ERROR_FORMAT);
        return;
    }
    req->cmd = PROTO_CMD_DELETE;
    req->key = t[1];
}

static void parse_flush_all(const struct proto_token *t, size_t nt, struct request *req)
{
    if (nt < 2 || nt > 4) {
        reply(req, PROTO_R_ERROR);
        return;
    }
    req->noreply = noreply_maybe(t, nt);
    req->cmd = PROTO_CMD_FLUSH_ALL;
    if (nt != (req->noreply ? 3u : 2u)) {
        if (!tc_strtol32(t[1].s, t[1].n, &req->exptime)) {
            reply(req, PROTO_R_CLIENT_ERROR_EXPTIME);
            return;
        }
        req->has_delay = true;
    }
}

static void parse_verbosity(const struct proto_token *t, size_t nt, struct request *req)
{
    if (nt != 3 && nt != 4) {
        reply(req, PROTO_R_ERROR);
        return;
    }
    req->noreply = noreply_maybe(t, nt);
    if (!tc_strtoul32(t[1].s, t[1].n, &req->level)) {
        reply(req, PROTO_R_CLIENT_ERROR_FORMAT);
        return;
    }
    req->cmd = PROTO_CMD_VERBOSITY;
}

static void parse_stats(const struct proto_token *t, size_t nt, struct request *req)
{
    req->cmd = PROTO_CMD_STATS;
    if (nt == 2) {
        req->stats = PROTO_STATS_GENERAL;
        return;
    }
    const struct proto_token *sub = &t[1];
    if (tok_is(sub, "reset")) {
        req->stats = PROTO_STATS_RESET;
    } else if (tok_is(sub, "detail")) {
        if (nt < 4)
            reply(req, PROTO_R_CLIENT_ERROR_STATS_DETAIL);
        else if (tok_is(&t[2], "on"))
            req->stats = PROTO_STATS_DETAIL_ON;
        else if (tok_is(&t[2], "off"))
            req->stats = PROTO_STATS_DETAIL_OFF;
        else if (tok_is(&t[2], "dump"))
            req->stats = PROTO_STATS_DETAIL_DUMP;
        else
            reply(req, PROTO_R_CLIENT_ERROR_STATS_DETAIL);
    } else if (tok_is(sub, "settings")) {
        req->stats = PROTO_STATS_SETTINGS;
    } else if (tok_is(sub, "items")) {
        req->stats = PROTO_STATS_ITEMS;
    } else if (tok_is(sub, "slabs")) {
        req->stats = PROTO_STATS_SLABS;
    } else if (tok_is(sub, "sizes")) {
        req->stats = PROTO_STATS_SIZES;
    } else if (tok_is(sub, "conns")) {
        req->stats = PROTO_STATS_CONNS;
    } else if (tok_is(sub, "tiers")) {
        req->stats = PROTO_STATS_TIERS;
    } else {
        reply(req, PROTO_R_ERROR);
    }
}

static void parse_shutdown(const struct proto_token *t, size_t nt, struct request *req)
{
    /* Whether shutdown is enabled is checked first by the server; the mode
     * error is only given when it is. */
    req->cmd = PROTO_CMD_SHUTDOWN;
    if (nt == 3 && tok_is(&t[1], "graceful"))
        req->graceful = true;
    else if (nt != 2)
        req->reply = PROTO_R_CLIENT_ERROR_SHUTDOWN_MODE;
}

void proto_parse(const char *line, size_t len, struct request *req)
{
    memset(req, 0, sizeof(*req));
    const char *nul = memchr(line, '\0', len);
    if (nul != NULL)
        len = (size_t)(nul - line);

    struct proto_token t[PROTO_MAX_TOKENS];
    size_t nt = proto_tokenize(line, len, t, PROTO_MAX_TOKENS);
    if (nt < 2 || t[0].n < 2) {
        reply(req, PROTO_R_ERROR);
        return;
    }

    const struct proto_token *c = &t[0];
    char first = c->s[0];
    if (first == 'm' && c->n == 2) {
        if (c->s[1] == 'n')
            req->cmd = PROTO_CMD_MN;
        else
            reply(req, PROTO_R_ERROR); /* meta commands: not yet */
    } else if (first == 'g') {
        if (nt < 3)
            reply(req, PROTO_R_ERROR);
        else if (tok_is(c, "get"))
            parse_get(line, len, t, nt, req, PROTO_CMD_GET);
        else if (tok_is(c, "gets"))
            parse_get(line, len, t, nt, req, PROTO_CMD_GETS);
        else if (tok_is(c, "gat"))
            parse_get(line, len, t, nt, req, PROTO_CMD_GAT);
        else if (tok_is(c, "gats"))
            parse_get(line, len, t, nt, req, PROTO_CMD_GATS);
        else
            reply(req, PROTO_R_ERROR);
    } else if (first == 's') {
        if (tok_is(c, "set"))
            parse_update(t, nt, req, PROTO_CMD_SET);
        else if (tok_is(c, "stats"))
            parse_stats(t, nt, req);
        else if (tok_is(c, "shutdown"))
            parse_shutdown(t, nt, req);
        else
            reply(req, PROTO_R_ERROR);
    } else if (first == 'a') {
        if (tok_is(c, "add"))
            parse_update(t, nt, req, PROTO_CMD_ADD);
        else if (tok_is(c, "append"))
            parse_update(t, nt, req, PROTO_CMD_APPEND);
        else
            reply(req, PROTO_R_ERROR);
    } else if (first == 'c') {
        if (tok_is(c, "cas"))
            parse_update(t, nt, req, PROTO_CMD_CAS);
        else
            reply(req, PROTO_R_ERROR);
    } else if (first == 'i') {
        if (tok_is(c, "incr"))
            parse_arith(t, nt, req, PROTO_CMD_INCR);
        else
            reply(req, PROTO_R_ERROR);
    } else if (first == 'd') {
        if (tok_is(c, "delete"))
            parse_delete(t, nt, req);
        else if (tok_is(c, "decr"))
            parse_arith(t, nt, req, PROTO_CMD_DECR);
        else
            reply(req, PROTO_R_ERROR);
    } else if (first == 't') {
        if (tok_is(c, "touch"))
            parse_touch(t, nt, req);
        else
            reply(req, PROTO_R_ERROR);
    } else if (tok_is(c, "replace")) {
        parse_update(t, nt, req, PROTO_CMD_REPLACE);
    } else if (tok_is(c, "prepend")) {
        parse_update(t, nt, req, PROTO_CMD_PREPEND);
    } else if (tok_is(c, "bget")) {
        parse_get(line, len, t, nt, req, PROTO_CMD_GET);
    } else if (tok_is(c, "flush_all")) {
        parse_flush_all(t, nt, req);
    } else if (tok_is(c, "version")) {
        req->cmd = PROTO_CMD_VERSION;
    } else if (tok_is(c, "quit")) {
        req->cmd = PROTO_CMD_QUIT;
    } else if (tok_is(c, "verbosity")) {
        parse_verbosity(t, nt, req);
    } else if (t[nt - 2].n >= 5 && memcmp(t[nt - 2].s, "HTTP/", 5) == 0) {
        req->cmd = PROTO_CMD_CLOSE; /* someone speaks HTTP to us: hang up, as memcached */
    } else {
        reply(req, PROTO_R_ERROR);
    }
}

/* A crawl/metadump class list: memcached's lru_crawler_crawl(). */
static void parse_lru_classes(const struct proto_token *arg, bool hash_ok, struct proto_lru *out)
{
    if (tok_is(arg, "all") || (hash_ok && tok_is(arg, "hash"))) {
        out->all = true;
        return;
    }
    if (tok_is(arg, "hash")) {
        out->reply = PROTO_LRU_R_UNKNOWN_ERROR; /* memcached: crawl cannot walk the hash */
        return;
    }
    /* strtok_r(",") skips empty items; each is read with safe_strtoul. */
    const char *p = arg->s, *end = arg->s + arg->n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma != NULL ? comma : end;
        if (stop > p) {
            uint32_t id;
            if (!tc_strtoul32(p, (size_t)(stop - p), &id) || id == 0 || id > PROTO_LRU_MAX_CLASS) {
                out->reply = PROTO_LRU_R_BADCLASS;
                out->classes = 0;
                return;
            }
            out->classes |= 1ULL << id;
        }
        p = stop + (comma != NULL);
    }
    if (out->classes == 0)
        out->reply = PROTO_LRU_R_NOTSTARTED; /* only commas: no class to crawl */
}

bool proto_parse_lru(const char *line, size_t len, struct proto_lru *out)
{
    /* Cheap rejection first: this runs on every command line. */
    size_t i = 0;
    while (i < len && line[i] == ' ')
        i++;
    if (len - i < 11 || memcmp(line + i, "lru_crawler", 11) != 0)
        return false;
    const char *nul = memchr(line, '\0', len);
    if (nul != NULL)
        len = (size_t)(nul - line);
    struct proto_token t[PROTO_MAX_TOKENS];
    size_t nt = proto_tokenize(line, len, t, PROTO_MAX_TOKENS);
    if (nt < 2 || !tok_is(&t[0], "lru_crawler"))
        return false;
    memset(out, 0, sizeof(*out));
    const struct proto_token *sub = &t[1];
    if (nt == 4 && tok_is(sub, "crawl")) {
        out->sub = PROTO_LRU_CRAWL;
        parse_lru_classes(&t[2], false, out);
    } else if (nt == 4 && tok_is(sub, "metadump")) {
        out->sub = PROTO_LRU_METADUMP;
        parse_lru_classes(&t[2], true, out);
    } else if (nt == 4 && tok_is(sub, "tocrawl")) {
        out->sub = PROTO_LRU_TOCRAWL;
        if (!tc_strtoul32(t[2].s, t[2].n, &out->value))
            out->reply = PROTO_LRU_R_BAD_FORMAT;
    } else if (nt == 4 && tok_is(sub, "sleep")) {
        out->sub = PROTO_LRU_SLEEP;
        if (!tc_strtoul32(t[2].s, t[2].n, &out->value))
            out->reply = PROTO_LRU_R_BAD_FORMAT;
        else if (out->value > 1000000)
            out->reply = PROTO_LRU_R_SLEEP_TOO_LONG;
    } else if (nt == 3 && tok_is(sub, "enable")) {
        out->sub = PROTO_LRU_ENABLE;
    } else if (nt == 3 && tok_is(sub, "disable")) {
        out->sub = PROTO_LRU_DISABLE;
    } else {
        out->reply = PROTO_LRU_R_ERROR;
    }
    return true;
}
