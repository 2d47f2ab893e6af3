/*
 * check_differential.c: the differential test. Scripted byte sequences (a
 * cases file: diff_cases/classic.txt, whose top documents the format;
 * lru_crawler.txt; meta.txt for the meta commands) are sent to a real
 * memcached and to tiercached, both started with the same options, and the
 * replies are compared byte for byte after a small normalization (see
 * normalize(): CAS numbers, in VALUE lines, in the meta replies' c flag and
 * in the cas= of `me`, become per-case ordinals; the VERSION line a
 * constant; in `stats-structure` cases the STAT lines are checked for shape
 * and then dropped). Data blocks (after VALUE and VA lines) are compared
 * verbatim.
 *
 * Every case runs on a fresh connection to each server (both servers in
 * lockstep): the case's chunks are written (with its pauses in between),
 * then the connection is half-closed and read to EOF with a bounded timeout.
 * Before each case both servers are emptied with an immediate `flush_all`
 * on a connection of its own.
 *
 * The cases file is DIFF_CASES_FILE (set by differential.cmake), or argv[1],
 * or $DIFF_CASES. Environment knobs for working on the cases:
 *   DIFF_ONLY=substr   run only the cases whose name contains substr
 *   DIFF_DUMP=1        print every case's (normalized) replies on stdout
 *   DIFF_BOTH_MEMCACHED=1  start a second memcached in tiercached's place:
 *                      every case must then pass, which shows that the case
 *                      is deterministic and the normalization enough (how
 *                      new cases are validated before tiercached has them)
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#ifndef DIFF_CASES_FILE
#define DIFF_CASES_FILE "diff_cases/classic.txt"
#endif

#define MAX_VARS        16
#define MAX_PAUSE_MS    200
#define MAX_WAIT_MS     3000
#define MAX_WAIT_CASES  3
#define EOF_TIMEOUT_MS  3000 /* after the half-close, to read a case's replies */
#define STEP_TIMEOUT_MS 3000 /* a capture's "gets" reply */
#define REPLY_CAP       (8u << 20)
#define WATCHDOG_S      110 /* Check's and ctest's limit is 120 s */

static const char *const server_args[] = {"-m", "64", "-t", "2", "-I", "1m", "-c", "4096", NULL};

/* ---------------------------------------------------------------- buffers */

struct buf {
    char *p;
    size_t n, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---------------------------------------------------------------- cases */

#define SEG_LITERAL (-1)
#define SEG_NOW     (-2) /* ${now}: the unix time when the case started */

/* A piece of a chunk: literal bytes, a captured CAS or the time (plus an offset). */
struct seg {
    int var; /* a capture's index, SEG_LITERAL or SEG_NOW */
    long long add;
    struct buf lit;
};

enum step_kind { STEP_SEND, STEP_PAUSE, STEP_CAPTURE, STEP_WAIT };

struct step {
    enum step_kind kind;
    struct seg *segs; /* STEP_SEND */
    size_t nsegs;
    int ms;         /* STEP_PAUSE, STEP_WAIT */
    int var;        /* STEP_CAPTURE */
    struct buf key; /* STEP_CAPTURE */
};

struct dcase {
    char name[96];
    int line;
    bool stats_structure;
    struct buf src; /* the case's directive lines, for the report */
    struct step *steps;
    size_t nsteps;
    char vars[MAX_VARS][32];
    int nvars;
};

struct suite_cases {
    struct dcase *c;
    size_t n;
};

static char parse_err[512];

static struct step *add_step(struct dcase *dc, enum step_kind kind)
{
    dc->steps = realloc(dc->steps, (dc->nsteps + 1) * sizeof(*dc->steps));
    ck_assert_ptr_nonnull(dc->steps);
    struct step *st = &dc->steps[dc->nsteps++];
    memset(st, 0, sizeof(*st));
    st->kind = kind;
    return st;
}

static int var_index(struct dcase *dc, const char *name, size_t n, bool create)
{
    for (int i = 0; i < dc->nvars; i++)
        if (strlen(dc->vars[i]) == n && memcmp(dc->vars[i], name, n) == 0)
            return i;
    if (!create || dc->nvars == MAX_VARS || n == 0 || n >= sizeof(dc->vars[0]))
        return -1;
    memcpy(dc->vars[dc->nvars], name, n);
    dc->vars[dc->nvars][n] = '\0';
    return dc->nvars++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decode escaped text from *pp up to end (or, when in_repeat, up to an
 * unescaped ']'), appending literal bytes to out. Returns 0 or -1 (parse_err).
 */
static int unescape(const char **pp, const char *end, struct buf *out, bool in_repeat)
{
    const char *p = *pp;
    while (p < end) {
        char c = *p;
        if (in_repeat && c == ']') {
            *pp = p + 1;
            return 0;
        }
        if (c != '\\') {
            buf_addc(out, c);
            p++;
            continue;
        }
        if (p + 1 >= end) {
            snprintf(parse_err, sizeof(parse_err), "a lone backslash at the end of the line");
            return -1;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case 'r':
            buf_addc(out, '\r');
            break;
        case 'n':
            buf_addc(out, '\n');
            break;
        case 't':
            buf_addc(out, '\t');
            break;
        case '0':
            buf_addc(out, '\0');
            break;
        case 's':
            buf_addc(out, ' ');
            break;
        case '\\':
        case ']':
        case '$':
        case '#':
            buf_addc(out, e);
            break;
        case 'x': {
            int h = p + 1 < end ? hexval(p[0]) : -1;
            int l = p + 1 < end ? hexval(p[1]) : -1;
            if (h < 0 || l < 0) {
                snprintf(parse_err, sizeof(parse_err), "\\x needs two hex digits");
                return -1;
            }
            buf_addc(out, (char)(h * 16 + l));
            p += 2;
            break;
        }
        case '[': {
            char *colon;
            unsigned long count = strtoul(p, &colon, 10);
            if (colon == p || colon >= end || *colon != ':' || count > 10000000) {
                snprintf(parse_err, sizeof(parse_err), "\\[N:text] needs a count (<= 1e7)");
                return -1;
            }
            const char *q = colon + 1;
            struct buf unit = {0};
            if (unescape(&q, end, &unit, true) != 0) {
                buf_free(&unit);
                return -1;
            }
            for (unsigned long i = 0; i < count; i++)
                buf_add(out, unit.p, unit.n);
            buf_free(&unit);
            p = q;
            break;
        }
        default:
            snprintf(parse_err, sizeof(parse_err), "unknown escape \\%c", e);
            return -1;
        }
    }
    if (in_repeat) {
        snprintf(parse_err, sizeof(parse_err), "\\[N:text] without its closing ']'");
        return -1;
    }
    *pp = p;
    return 0;
}

/* Append a `send` line's data (escapes, ${var}, ${var+N}, ${var-N}) to step st. */
static int parse_send(struct dcase *dc, struct step *st, const char *p, const char *end)
{
    while (p < end) {
        /* The literal run up to the next "${" that is not escaped. */
        const char *q = p;
        while (q < end && !(q[0] == '$' && q + 1 < end && q[1] == '{')) {
            if (q[0] == '\\' && q + 1 < end)
                q++;
            q++;
        }
        if (q > end)
            q = end;
        if (q > p) {
            st->segs = realloc(st->segs, (st->nsegs + 1) * sizeof(*st->segs));
            ck_assert_ptr_nonnull(st->segs);
            struct seg *s = &st->segs[st->nsegs++];
            memset(s, 0, sizeof(*s));
            s->var = SEG_LITERAL;
            const char *r = p;
            if (unescape(&r, q, &s->lit, false) != 0)
                return -1;
        }
        if (q >= end)
            break;
        const char *close = memchr(q, '}', (size_t)(end - q));
        if (close == NULL) {
            snprintf(parse_err, sizeof(parse_err), "${ without }");
            return -1;
        }
        const char *name = q + 2;
        size_t nlen = 0;
        while (name + nlen < close && (isalnum((unsigned char)name[nlen]) || name[nlen] == '_'))
            nlen++;
        int v =
            nlen == 3 && memcmp(name, "now", 3) == 0 ? SEG_NOW : var_index(dc, name, nlen, false);
        if (v == -1) {
            snprintf(parse_err, sizeof(parse_err), "${%.*s}: no capture of that name before",
                     (int)nlen, name);
            return -1;
        }
        long long add = 0;
        if (name + nlen < close) {
            char *stop;
            add = strtoll(name + nlen, &stop, 10);
            if (stop != close || (name[nlen] != '+' && name[nlen] != '-')) {
                snprintf(parse_err, sizeof(parse_err), "bad ${var+N}");
                return -1;
            }
        }
        st->segs = realloc(st->segs, (st->nsegs + 1) * sizeof(*st->segs));
        ck_assert_ptr_nonnull(st->segs);
        struct seg *s = &st->segs[st->nsegs++];
        memset(s, 0, sizeof(*s));
        s->var = v;
        s->add = add;
        p = close + 1;
    }
    return 0;
}

static bool parse_ms(const char *s, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > max)
        return false;
    *out = (int)v;
    return true;
}

static int load_cases(const char *path, struct suite_cases *sc)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open the cases file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, wait_cases = 0;
    struct dcase *dc = NULL;
    memset(sc, 0, sizeof(*sc));
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *sp = strchr(line, ' ');
        size_t wlen = sp != NULL ? (size_t)(sp - line) : (size_t)len;
        const char *arg = sp != NULL ? sp + 1 : line + len;
        const char *end = line + len;
        parse_err[0] = '\0';
#define IS(w) (wlen == strlen(w) && memcmp(line, w, wlen) == 0)
        if (dc != NULL && !IS("case")) { /* the case as written, for the report */
            buf_add(&dc->src, line, (size_t)len);
            buf_addc(&dc->src, '\n');
        }
        if (IS("case")) {
            sc->c = realloc(sc->c, (sc->n + 1) * sizeof(*sc->c));
            ck_assert_ptr_nonnull(sc->c);
            dc = &sc->c[sc->n++];
            memset(dc, 0, sizeof(*dc));
            dc->line = lineno;
            if (strlen(arg) == 0 || strlen(arg) >= sizeof(dc->name) || strchr(arg, ' ')) {
                snprintf(parse_err, sizeof(parse_err), "a case needs a name without spaces");
            } else {
                strcpy(dc->name, arg);
                for (size_t i = 0; i + 1 < sc->n; i++)
                    if (strcmp(sc->c[i].name, arg) == 0)
                        snprintf(parse_err, sizeof(parse_err), "duplicate case name");
            }
        } else if (dc == NULL) {
            snprintf(parse_err, sizeof(parse_err), "a step before the first `case`");
        } else if (IS("send")) {
            struct step *st = dc->nsteps > 0 && dc->steps[dc->nsteps - 1].kind == STEP_SEND
                                  ? &dc->steps[dc->nsteps - 1]
                                  : add_step(dc, STEP_SEND);
            if (sp == NULL)
                snprintf(parse_err, sizeof(parse_err), "send needs data");
            else
                parse_send(dc, st, arg, end);
        } else if (IS("pause")) {
            if (!parse_ms(arg, MAX_PAUSE_MS, &add_step(dc, STEP_PAUSE)->ms))
                snprintf(parse_err, sizeof(parse_err), "pause needs 1..%d ms", MAX_PAUSE_MS);
        } else if (IS("wait")) {
            if (!parse_ms(arg, MAX_WAIT_MS, &add_step(dc, STEP_WAIT)->ms))
                snprintf(parse_err, sizeof(parse_err), "wait needs 1..%d ms", MAX_WAIT_MS);
            bool first = true;
            for (size_t i = 0; i + 1 < dc->nsteps; i++)
                if (dc->steps[i].kind == STEP_WAIT)
                    first = false;
            if (first && ++wait_cases > MAX_WAIT_CASES)
                snprintf(parse_err, sizeof(parse_err), "more than %d cases wait", MAX_WAIT_CASES);
        } else if (IS("capture")) {
            const char *key = arg != NULL ? strchr(arg, ' ') : NULL;
            int v = key != NULL ? var_index(dc, arg, (size_t)(key - arg), true) : -1;
            if (v < 0) {
                snprintf(parse_err, sizeof(parse_err), "capture VAR KEY");
            } else {
                struct step *st = add_step(dc, STEP_CAPTURE);
                st->var = v;
                const char *k = key + 1;
                if (unescape(&k, end, &st->key, false) != 0 || st->key.n == 0)
                    snprintf(parse_err, sizeof(parse_err), "capture: bad KEY");
            }
        } else if (IS("stats-structure")) {
            dc->stats_structure = true;
        } else {
            snprintf(parse_err, sizeof(parse_err), "unknown directive");
        }
#undef IS
        if (parse_err[0] != '\0') {
            fprintf(stderr, "%s:%d: %s\n", path, lineno, parse_err);
            free(line);
            fclose(f);
            return -1;
        }
    }
    free(line);
    fclose(f);
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->c[i].nsteps == 0) {
            fprintf(stderr, "%s:%d: case %s has no steps\n", path, sc->c[i].line, sc->c[i].name);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- I/O */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One server's side of a case in progress. */
struct side {
    int fd;
    bool send_failed; /* the server closed (or reset) while we were writing */
    bool eof;         /* read to EOF (or reset) */
    bool timed_out;
    struct buf reply;
    unsigned long long cas[MAX_VARS];
    bool have_cas[MAX_VARS];
    char note[256]; /* anything odd about this side, for the report */
};

/* Read what is there without blocking; false once the peer closed. */
static bool drain(struct side *sd)
{
    for (;;) {
        if (sd->reply.n >= REPLY_CAP) {
            sd->eof = true;
            snprintf(sd->note, sizeof(sd->note), "reply over %u bytes, cut", REPLY_CAP);
            return false;
        }
        buf_reserve(&sd->reply, 65536);
        ssize_t r = recv(sd->fd, sd->reply.p + sd->reply.n, 65536, MSG_DONTWAIT);
        if (r > 0) {
            sd->reply.n += (size_t)r;
            sd->reply.p[sd->reply.n] = '\0';
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        sd->eof = true; /* 0: EOF; other errors (ECONNRESET): the server is gone too */
        return false;
    }
}

/* Write all bytes, reading replies meanwhile (a big pipeline must not deadlock). */
static void side_send(struct side *sd, const char *p, size_t n)
{
    long long deadline = ts_now_ms() + 10000;
    while (n > 0 && !sd->send_failed) {
        struct pollfd pf = {.fd = sd->fd, .events = POLLOUT | (sd->eof ? 0 : POLLIN)};
        int left = (int)(deadline - ts_now_ms());
        if (left <= 0) {
            sd->send_failed = true;
            snprintf(sd->note, sizeof(sd->note), "could not write the request within 10 s");
            return;
        }
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (pf.revents & POLLIN)
            drain(sd);
        if (pf.revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w = send(sd->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (w <= 0) {
                sd->send_failed = true; /* memcached closed: the rest is not sent */
                return;
            }
            p += w;
            n -= (size_t)w;
        }
    }
}

/* Read into the reply until what came after offset `from` ends with term, or the deadline. */
static void side_read(struct side *sd, size_t from, const char *term, long long deadline)
{
    size_t tn = strlen(term);
    while (!sd->eof) {
        if (sd->reply.n >= from + tn && memcmp(sd->reply.p + sd->reply.n - tn, term, tn) == 0)
            return;
        int left = (int)(deadline - ts_now_ms());
        if (left <= 0) {
            sd->timed_out = true;
            return;
        }
        struct pollfd pf = {.fd = sd->fd, .events = POLLIN};
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0)
            drain(sd);
    }
}

/* Both sides to EOF, in parallel, with one deadline. */
static void read_both_to_eof(struct side *sd, int nsides, long long deadline)
{
    for (;;) {
        struct pollfd pf[2];
        int map[2], np = 0;
        for (int i = 0; i < nsides; i++) {
            if (!sd[i].eof) {
                pf[np] = (struct pollfd){.fd = sd[i].fd, .events = POLLIN};
                map[np++] = i;
            }
        }
        if (np == 0)
            return;
        int left = (int)(deadline - ts_now_ms());
        if (left <= 0) {
            for (int i = 0; i < np; i++)
                sd[map[i]].timed_out = true;
            return;
        }
        int r = poll(pf, (nfds_t)np, left);
        if (r < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < np && r > 0; i++)
            if (pf[i].revents != 0)
                drain(&sd[map[i]]);
    }
}

/* An immediate flush_all on a connection of its own; 0 once "OK\r\n" came. */
static int flush_server(struct tserver *s)
{
    int fd = ts_connect(s->port);
    if (fd < 0)
        return -1;
    char out[64];
    ssize_t n = ts_request(fd, "flush_all\r\n", out, sizeof(out) - 1, "OK\r\n");
    close(fd);
    return n == 4 ? 0 : -1;
}

/* ---------------------------------------------------------------- normalization */

static bool line_starts(const char *p, size_t n, const char *w)
{
    size_t wn = strlen(w);
    return n >= wn && memcmp(p, w, wn) == 0;
}

/* The CAS numbers of one reply in order of first appearance: the first is CAS1. */
struct cas_table {
    unsigned long long seen[256];
    size_t n;
};

/* The ordinal (1, 2, ...) of cas in t, adding it if new (past 256: all 257). */
static size_t cas_ordinal(struct cas_table *t, unsigned long long cas)
{
    size_t k;
    for (k = 0; k < t->n && t->seen[k] != cas; k++)
        ;
    if (k == t->n && t->n < sizeof(t->seen) / sizeof(t->seen[0]))
        t->seen[t->n++] = cas;
    return k + 1;
}

/* Whether p[0..n) is one or more decimal digits and nothing else; the number in *v. */
static bool all_digits(const char *p, size_t n, unsigned long long *v)
{
    unsigned long long x = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            return false;
        x = x * 10 + (unsigned long long)(p[k] - '0'); /* wraps past 2^64: still one number */
    }
    *v = x;
    return n > 0;
}

/* The length of a line without its "\r\n" (or lone "\n"); ll counts the '\n'. */
static size_t line_body(const char *l, size_t ll)
{
    return ll >= 2 && l[ll - 2] == '\r' ? ll - 2 : ll - 1;
}

/*
 * Whether a line is a meta reply: one of the codes HD VA EN NF NS EX,
 * followed by ' ' or "\r\n" (so "END", "EXISTS" and "NOT_FOUND" are not).
 */
static bool meta_reply_line(const char *l, size_t ll)
{
    static const char codes[][3] = {"HD", "VA", "EN", "NF", "NS", "EX"};
    bool code = false;
    for (size_t c = 0; ll >= 3 && c < sizeof(codes) / sizeof(codes[0]); c++)
        code = code || memcmp(l, codes[c], 2) == 0;
    return code && (l[2] == ' ' || (ll >= 4 && l[2] == '\r' && l[3] == '\n'));
}

/*
 * Copy one line to out, space-separated tokens from the index `first` on
 * that are `prefix` followed by digits only getting CAS<n> (from t) in
 * place of the digits: "c123" -> "cCAS1", "cas=123" -> "cas=CAS1". With
 * `mask`, tokens that are mask followed by digits get "<n>" for the digits
 * ("size=57" -> "size=<n>"). Every other byte (spaces, the line end) is
 * copied as it is.
 */
static void rewrite_cas_tokens(const char *l, size_t ll, int first, const char *prefix,
                               const char *mask, struct cas_table *t, struct buf *out)
{
    size_t body = line_body(l, ll), pn = strlen(prefix), k = 0;
    int index = 0;
    while (k < body) {
        if (l[k] == ' ') {
            buf_addc(out, ' ');
            k++;
            continue;
        }
        const char *sp = memchr(l + k, ' ', body - k);
        size_t tn = sp != NULL ? (size_t)(sp - (l + k)) : body - k;
        unsigned long long cas;
        size_t mn = mask != NULL ? strlen(mask) : 0;
        if (index >= first && tn > pn && memcmp(l + k, prefix, pn) == 0 &&
            all_digits(l + k + pn, tn - pn, &cas))
            buf_printf(out, "%sCAS%zu", prefix, cas_ordinal(t, cas));
        else if (index >= first && mn > 0 && tn > mn && memcmp(l + k, mask, mn) == 0 &&
                 all_digits(l + k + mn, tn - mn, &cas))
            buf_printf(out, "%s<n>", mask);
        else
            buf_add(out, l + k, tn);
        index++;
        k += tn;
    }
    buf_add(out, l + body, ll - body);
}

/*
 * Walk a reply as the protocol frames it, so that data blocks are copied
 * verbatim and never read as lines:
 *   - "VALUE key flags bytes [cas]" lines are followed by a data block; the
 *     cas becomes an ordinal: the first CAS number seen in this reply is
 *     CAS1, the next new one CAS2, ...
 *   - meta replies (a line starting with HD VA EN NF NS or EX, then ' ' or
 *     "\r\n"): every token "c<digits>" (the c flag) becomes "cCAS<n>" with
 *     the same ordinals (so "VALUE k 0 1 CAS1" and "HD cCAS1" name the same
 *     CAS); other flag tokens are left alone. "VA <bytes> <flags>*" lines
 *     are followed by a data block of <bytes> bytes and "\r\n".
 *   - "ME <key> exp=.. la=.. cas=<n> ..." (meta debug): cas=<n> becomes
 *     cas=CAS<n>, the same ordinals again; size=<n> becomes size=<n>
 *     literally: it is each server's own item size (tiercached's items are
 *     5 to 9 bytes smaller, docs/META.md), so only its presence is compared.
 *   - "VERSION ..." becomes "VERSION <v>".
 *   - with stats_structure, "STAT name value" lines are checked and dropped
 *     (a malformed one is kept, prefixed with "BADSTAT:").
 * A header whose data block would run past the end of the reply is copied
 * as a plain line.
 */
static void normalize(const struct buf *in, bool stats_structure, struct buf *out)
{
    struct cas_table cas = {.n = 0};
    size_t i = 0;
    out->n = 0;
    buf_reserve(out, in->n);
    while (i < in->n) {
        const char *l = in->p + i;
        const char *nl = memchr(l, '\n', in->n - i);
        size_t ll = nl != NULL ? (size_t)(nl - l) + 1 : in->n - i; /* with the \n */
        size_t left = in->n - i - ll;                              /* after this line */
        if (nl != NULL && line_starts(l, ll, "VALUE ")) {
            /* VALUE <key> <flags> <bytes> [<cas>]\r\n */
            char tmp[600];
            size_t body = line_body(l, ll);
            if (body < sizeof(tmp)) {
                memcpy(tmp, l, body);
                tmp[body] = '\0';
                char *tok[6];
                int nt = 0;
                for (char *s = strtok(tmp, " "); s != NULL && nt < 6; s = strtok(NULL, " "))
                    tok[nt++] = s;
                unsigned long long bytes = 0, v = 0;
                bool ok = (nt == 4 || nt == 5) && all_digits(tok[3], strlen(tok[3]), &bytes);
                if (ok && nt == 5)
                    ok = all_digits(tok[4], strlen(tok[4]), &v);
                if (ok && left >= 2 && bytes <= left - 2) {
                    if (nt == 5) {
                        buf_printf(out, "VALUE %s %s %s CAS%zu", tok[1], tok[2], tok[3],
                                   cas_ordinal(&cas, v));
                        buf_add(out, l + body, ll - body);
                    } else {
                        buf_add(out, l, ll);
                    }
                    buf_add(out, in->p + i + ll, bytes + 2);
                    i += ll + bytes + 2;
                    continue;
                }
            }
        } else if (nl != NULL && meta_reply_line(l, ll)) {
            rewrite_cas_tokens(l, ll, 1, "c", NULL, &cas, out);
            i += ll;
            /* VA <bytes> <flags>*\r\n, then the data block */
            size_t body = line_body(l, ll);
            if (!line_starts(l, ll, "VA ") || body <= 3)
                continue;
            const char *sp = memchr(l + 3, ' ', body - 3);
            size_t tn = sp != NULL ? (size_t)(sp - (l + 3)) : body - 3;
            unsigned long long bytes;
            if (all_digits(l + 3, tn, &bytes) && left >= 2 && bytes <= left - 2) {
                buf_add(out, in->p + i, bytes + 2);
                i += bytes + 2;
            }
            continue;
        } else if (nl != NULL && line_starts(l, ll, "ME ")) {
            rewrite_cas_tokens(l, ll, 2, "cas=", "size=", &cas, out);
            i += ll;
            continue;
        } else if (nl != NULL && line_starts(l, ll, "VERSION ")) {
            buf_puts(out, "VERSION <v>\r\n");
            i += ll;
            continue;
        } else if (stats_structure && line_starts(l, ll, "STAT ")) {
            /* STAT <name> <value>\r\n: name without spaces, value not empty */
            const char *name = l + 5;
            const char *sp = memchr(name, ' ', ll - 5);
            bool ok =
                ll >= 2 && l[ll - 2] == '\r' && sp != NULL && sp > name && sp + 1 < l + ll - 2;
            for (const char *c = name; ok && c < l + ll - 2; c++)
                ok = *c >= 0x20 && *c < 0x7f;
            if (ok) {
                i += ll;
                continue;
            }
            buf_puts(out, "BADSTAT:");
        }
        buf_add(out, l, ll);
        i += ll;
    }
}

/* ---------------------------------------------------------------- reporting */

/* Escape bytes for the report: \r \n \t \\ \xHH, runs of 8+ equal bytes as \[N:c]. */
static void escape_into(struct buf *out, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = 1;
        while (i + run < n && p[i + run] == p[i])
            run++;
        if (run >= 8)
            buf_printf(out, "\\[%zu:", run);
        else
            run = 1;
        unsigned char c = (unsigned char)p[i];
        if (c == '\r')
            buf_puts(out, "\\r");
        else if (c == '\n')
            buf_puts(out, "\\n");
        else if (c == '\t')
            buf_puts(out, "\\t");
        else if (c == '\\')
            buf_puts(out, "\\\\");
        else if (c == ']' && run > 1)
            buf_puts(out, "\\]");
        else if (c >= 0x20 && c < 0x7f)
            buf_addc(out, (char)c);
        else
            buf_printf(out, "\\x%02x", c);
        if (run > 1)
            buf_addc(out, ']');
        i += run;
    }
}

/* The escaped text of a reply, cut to a window around offset `at` if long. */
static void show(struct buf *out, const char *label, const struct buf *b, size_t at)
{
    const size_t window = 1500;
    size_t from = 0, to = b->n;
    if (b->n > 2 * window) {
        from = at > window / 2 ? at - window / 2 : 0;
        to = from + window < b->n ? from + window : b->n;
    }
    buf_printf(out, "    %s (%zu bytes%s):\n      ", label, b->n, b->n ? "" : ", nothing");
    if (from > 0)
        buf_printf(out, "[... %zu bytes ...]", from);
    struct buf esc = {0};
    escape_into(&esc, b->p + from, to - from);
    /* one reply line per report line, for reading */
    for (size_t i = 0; i < esc.n; i++) {
        buf_addc(out, esc.p[i]);
        if (i >= 1 && esc.p[i - 1] == '\\' && esc.p[i] == 'n' && (i < 2 || esc.p[i - 2] != '\\') &&
            i + 1 < esc.n)
            buf_puts(out, "\n      ");
    }
    buf_free(&esc);
    if (to < b->n)
        buf_printf(out, "[... %zu bytes ...]", b->n - to);
    buf_addc(out, '\n');
}

/* The case as written in the cases file (its directive lines), long lines cut. */
static void show_request(struct buf *out, const struct dcase *dc)
{
    const size_t max = 1200;
    buf_puts(out, "    sent (the case's lines in the cases file):\n");
    const char *p = dc->src.p, *end = dc->src.p + dc->src.n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);
        buf_puts(out, "      ");
        if (n > max) {
            buf_add(out, p, max / 2);
            buf_printf(out, "[... %zu chars ...]", n - max);
            buf_add(out, p + n - max / 2, max / 2);
        } else {
            buf_add(out, p, n);
        }
        buf_addc(out, '\n');
        p = nl + 1;
    }
}

/* A few escaped bytes either side of the first difference. */
static void show_context(struct buf *out, const char *label, const struct buf *b, size_t at)
{
    size_t from = at > 40 ? at - 40 : 0;
    size_t to = at + 40 < b->n ? at + 40 : b->n;
    buf_printf(out, "      %-11s ", label);
    if (from > 0)
        buf_puts(out, "...");
    escape_into(out, b->p + from, at > b->n ? 0 : (at < b->n ? at : b->n) - from);
    buf_puts(out, " >>>");
    if (at < b->n)
        escape_into(out, b->p + at, to - at);
    else
        buf_puts(out, "(end)");
    if (to < b->n)
        buf_puts(out, "...");
    buf_addc(out, '\n');
}

/* ---------------------------------------------------------------- running */

struct servers {
    struct tserver s[2]; /* 0: memcached, 1: tiercached (or memcached again) */
};

/* DIFF_BOTH_MEMCACHED=1: side 1 is a second memcached (set up in main). */
static bool both_memcached;
static const char *side_name[2] = {"memcached", "tiercached"};

static int start_server(struct servers *sv, int i)
{
    return i == 0 || both_memcached ? ts_start_memcached(&sv->s[i], server_args)
                                    : ts_start_tiercached(&sv->s[1], server_args);
}

/* Build a send step's bytes for one side (captured CAS substituted). */
static void build_chunk(const struct step *st, const struct side *sd, long long now,
                        struct buf *out, bool *ok)
{
    out->n = 0;
    for (size_t g = 0; g < st->nsegs; g++) {
        const struct seg *s = &st->segs[g];
        if (s->var == SEG_LITERAL) {
            buf_add(out, s->lit.p, s->lit.n);
        } else if (s->var == SEG_NOW) {
            buf_printf(out, "%lld", now + s->add);
        } else if (!sd->have_cas[s->var]) {
            *ok = false;
            buf_puts(out, "0");
        } else {
            buf_printf(out, "%llu", sd->cas[s->var] + (unsigned long long)s->add);
        }
    }
}

/* Find the CAS of the last "VALUE <key> <flags> <bytes> <cas>\r\n" from offset `from`. */
static bool find_cas(const struct buf *b, size_t from, const struct buf *key,
                     unsigned long long *cas)
{
    bool found = false;
    for (size_t i = from; i + 6 + key->n < b->n; i++) {
        if ((i == from || b->p[i - 1] == '\n') && memcmp(b->p + i, "VALUE ", 6) == 0 &&
            memcmp(b->p + i + 6, key->p, key->n) == 0 && b->p[i + 6 + key->n] == ' ') {
            const char *p = b->p + i + 6 + key->n + 1;
            unsigned long long v[3];
            int k;
            for (k = 0; k < 3; k++) {
                char *e;
                v[k] = strtoull(p, &e, 10);
                if (e == p)
                    break;
                p = e;
                if (*p == ' ')
                    p++;
            }
            if (k == 3) {
                *cas = v[2];
                found = true;
            }
        }
    }
    return found;
}

/* Run one case on both servers; appends to `report` and returns false on a mismatch. */
static bool run_case(struct servers *sv, const struct dcase *dc, struct buf *report, bool dump)
{
    struct side sd[2];
    memset(sd, 0, sizeof(sd));
    bool ok = true;
    long long now = (long long)time(NULL); /* ${now}: the same for both servers */
    struct buf why = {0}, chunk = {0};
    struct buf norm[2] = {{0}, {0}};
    for (int i = 0; i < 2; i++) {
        sd[i].fd = -1;
        if (flush_server(&sv->s[i]) != 0) {
            buf_printf(&why, "    %s: the reset flush_all got no OK (server down?)\n",
                       side_name[i]);
            ok = false;
            continue;
        }
        sd[i].fd = ts_connect(sv->s[i].port);
        if (sd[i].fd < 0) {
            buf_printf(&why, "    %s: cannot connect\n", side_name[i]);
            ok = false;
        }
    }
    if (!ok)
        goto out;

    for (size_t s = 0; s < dc->nsteps; s++) {
        const struct step *st = &dc->steps[s];
        switch (st->kind) {
        case STEP_SEND:
            for (int i = 0; i < 2; i++) {
                bool subst = true;
                build_chunk(st, &sd[i], now, &chunk, &subst);
                if (!subst)
                    snprintf(sd[i].note, sizeof(sd[i].note), "a CAS used before its capture");
                side_send(&sd[i], chunk.p, chunk.n);
            }
            break;
        case STEP_PAUSE:
        case STEP_WAIT:
            sleep_ms(st->ms);
            break;
        case STEP_CAPTURE:
            for (int i = 0; i < 2; i++) {
                chunk.n = 0;
                buf_puts(&chunk, "gets ");
                buf_add(&chunk, st->key.p, st->key.n);
                buf_puts(&chunk, "\r\n");
                size_t from = sd[i].reply.n;
                side_send(&sd[i], chunk.p, chunk.n);
                side_read(&sd[i], from, "END\r\n", ts_now_ms() + STEP_TIMEOUT_MS);
                sd[i].timed_out = false;
                sd[i].have_cas[st->var] =
                    find_cas(&sd[i].reply, from, &st->key, &sd[i].cas[st->var]);
                if (!sd[i].have_cas[st->var])
                    snprintf(sd[i].note, sizeof(sd[i].note), "capture %s: no CAS for the key",
                             dc->vars[st->var]);
            }
            break;
        }
    }
    for (int i = 0; i < 2; i++)
        shutdown(sd[i].fd, SHUT_WR);
    read_both_to_eof(sd, 2, ts_now_ms() + EOF_TIMEOUT_MS);

    for (int i = 0; i < 2; i++) {
        normalize(&sd[i].reply, dc->stats_structure, &norm[i]);
        if (sd[i].timed_out)
            buf_printf(&why, "    %s: no EOF within %d ms of the half-close\n", side_name[i],
                       EOF_TIMEOUT_MS);
        if (sd[i].note[0] != '\0')
            buf_printf(&why, "    %s: %s\n", side_name[i], sd[i].note);
    }
    /* a note (capture failure, ...) only fails the case if the sides differ in it */
    bool same_notes = strcmp(sd[0].note, sd[1].note) == 0 && sd[0].timed_out == sd[1].timed_out;
    size_t at = 0;
    while (at < norm[0].n && at < norm[1].n && norm[0].p[at] == norm[1].p[at])
        at++;
    bool same = norm[0].n == norm[1].n && at == norm[0].n;
    if (dump) {
        struct buf d = {0};
        buf_printf(&d, "--- %s (line %d)%s\n", dc->name, dc->line, same ? "" : "  ** DIFFERS **");
        show(&d, "memcached", &norm[0], 0);
        if (!same)
            show(&d, side_name[1], &norm[1], at);
        if (why.n)
            buf_add(&d, why.p, why.n);
        fputs(d.p, stdout);
        fflush(stdout);
        buf_free(&d);
    }
    ok = same && same_notes && !sd[0].timed_out;
    if (!ok) {
        buf_printf(report, "=== case %s (line %d): replies differ at byte %zu (normalized)\n",
                   dc->name, dc->line, at);
        show_request(report, dc);
        buf_printf(report, "    first difference at byte %zu:\n", at);
        show_context(report, "memcached:", &norm[0], at);
        show_context(report, both_memcached ? "memcached#2:" : "tiercached:", &norm[1], at);
        show(report, "memcached", &norm[0], at);
        show(report, side_name[1], &norm[1], at);
        if (why.n)
            buf_add(report, why.p, why.n);
        why.n = 0;
    }
out:
    if (!ok && why.n) {
        buf_printf(report, "=== case %s (line %d): not run\n", dc->name, dc->line);
        buf_add(report, why.p, why.n);
    }
    buf_free(&norm[0]);
    buf_free(&norm[1]);
    buf_free(&chunk);
    buf_free(&why);
    for (int i = 0; i < 2; i++) {
        if (sd[i].fd >= 0)
            close(sd[i].fd);
        buf_free(&sd[i].reply);
    }
    return ok;
}

static const char *cases_path;
static struct servers *watchdog_servers;

/* A last resort before Check's own timeout: no server outlives the test. */
static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "differential: watchdog expired, killing the servers\n";
    for (int i = 0; i < 2; i++)
        if (watchdog_servers != NULL && watchdog_servers->s[i].pid > 0)
            kill(watchdog_servers->s[i].pid, SIGKILL);
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(3);
    _exit(3);
}

static void free_cases(struct suite_cases *sc)
{
    for (size_t i = 0; i < sc->n; i++) {
        for (size_t s = 0; s < sc->c[i].nsteps; s++) {
            struct step *st = &sc->c[i].steps[s];
            for (size_t g = 0; g < st->nsegs; g++)
                buf_free(&st->segs[g].lit);
            free(st->segs);
            buf_free(&st->key);
        }
        free(sc->c[i].steps);
        buf_free(&sc->c[i].src);
    }
    free(sc->c);
    memset(sc, 0, sizeof(*sc));
}

/* normalize() on a string: what a case's reply becomes before comparing. */
static void check_normalized(const char *in, const char *want)
{
    struct buf b = {0}, out = {0};
    buf_puts(&b, in);
    normalize(&b, false, &out);
    struct buf esc_got = {0}, esc_want = {0};
    escape_into(&esc_got, out.p, out.n);
    escape_into(&esc_want, want, strlen(want));
    ck_assert_msg(out.n == strlen(want) && memcmp(out.p, want, out.n) == 0,
                  "normalize(%s)\n  got  %s\n  want %s", in, esc_got.p, esc_want.p);
    buf_free(&esc_got);
    buf_free(&esc_want);
    buf_free(&b);
    buf_free(&out);
}

START_TEST(test_normalize)
{
    /* classic: VALUE CAS ordinals, data blocks verbatim, VERSION */
    check_normalized("VALUE k 0 1 77\r\nx\r\nVALUE j 0 1 78\r\ny\r\nVALUE k 0 1 77\r\nx\r\nEND\r\n",
                     "VALUE k 0 1 CAS1\r\nx\r\nVALUE j 0 1 CAS2\r\ny\r\nVALUE k 0 1 CAS1\r\nx\r\n"
                     "END\r\n");
    check_normalized("VALUE k 0 8\r\nVERSION \r\nEND\r\nVERSION 1.6.18\r\n",
                     "VALUE k 0 8\r\nVERSION \r\nEND\r\nVERSION <v>\r\n");
    /* meta c tokens, sharing the ordinals with VALUE lines and me's cas= */
    check_normalized("HD c12345\r\n", "HD cCAS1\r\n");
    check_normalized(
        "VALUE k 0 1 9\r\nx\r\nEND\r\nHD t-1 c9 O1\r\nNS c0\r\nEX c9\r\nNF c0 kk\r\n"
        "EN c10\r\nME k exp=-1 la=0 cas=9 fetch=no cls=1 size=61\r\n",
        "VALUE k 0 1 CAS1\r\nx\r\nEND\r\nHD t-1 cCAS1 O1\r\nNS cCAS2\r\nEX cCAS1\r\n"
        "NF cCAS2 kk\r\nEN cCAS3\r\nME k exp=-1 la=0 cas=CAS1 fetch=no cls=1 size=<n>\r\n");
    /* only c<digits> tokens change; other flags, and other lines, stay */
    check_normalized("HD c kc5 Oc5 c5x c-1 s5 t5 W\r\n", "HD c kc5 Oc5 c5x c-1 s5 t5 W\r\n");
    check_normalized("END c5\r\nEXISTS c5\r\nHDc5\r\nENx c5\r\nMN c5\r\nHD\tc5\r\n",
                     "END c5\r\nEXISTS c5\r\nHDc5\r\nENx c5\r\nMN c5\r\nHD\tc5\r\n");
    check_normalized("ME cas=5 exp=-1 la=0 cas=6\r\n", "ME cas=5 exp=-1 la=0 cas=CAS1\r\n");
    check_normalized("EN\r\nHD  c7 \r\n", "EN\r\nHD  cCAS1 \r\n");
    /* VA: the data block is copied verbatim, never read as reply lines */
    check_normalized("VA 9 c5 s9\r\nHD c1\r\nEN\r\nHD c5\r\n",
                     "VA 9 cCAS1 s9\r\nHD c1\r\nEN\r\nHD cCAS1\r\n");
    check_normalized("VA 0\r\n\r\nVA 2\r\nhi\r\nMN\r\n", "VA 0\r\n\r\nVA 2\r\nhi\r\nMN\r\n");
    /* a VA whose block runs past the end of the reply: lines again */
    check_normalized("VA 50 c3\r\nHD c4\r\n", "VA 50 cCAS1\r\nHD cCAS2\r\n");
    check_normalized("VA x c3\r\nHD c4\r\n", "VA x cCAS1\r\nHD cCAS2\r\n");
}
END_TEST

START_TEST(test_differential)
{
    struct suite_cases sc;
    ck_assert_msg(load_cases(cases_path, &sc) == 0, "cannot load the cases from %s", cases_path);
    ck_assert_msg(sc.n > 0, "no cases in %s", cases_path);

    struct servers sv;
    memset(&sv, 0, sizeof(sv));
    watchdog_servers = &sv;
    signal(SIGALRM, on_watchdog);
    alarm(WATCHDOG_S);
    bool started = start_server(&sv, 0) == 0 && start_server(&sv, 1) == 0;

    const char *only = getenv("DIFF_ONLY");
    bool dump = getenv("DIFF_DUMP") != NULL && getenv("DIFF_DUMP")[0] == '1';
    struct buf report = {0}, names = {0};
    size_t run = 0, failed = 0;
    long long t0 = ts_now_ms();
    for (size_t i = 0; started && i < sc.n; i++) {
        if (only != NULL && strstr(sc.c[i].name, only) == NULL)
            continue;
        run++;
        if (!run_case(&sv, &sc.c[i], &report, dump)) {
            failed++;
            buf_printf(&names, "  %s\n", sc.c[i].name);
        }
        /* A server that died (or stopped answering) is restarted for the next cases. */
        for (int s = 0; s < 2 && started; s++) {
            if (flush_server(&sv.s[s]) != 0) {
                buf_printf(&report, "=== after case %s: %s stopped answering; restarted\n",
                           sc.c[i].name, side_name[s]);
                ts_stop(&sv.s[s]);
                started = start_server(&sv, s) == 0;
            }
        }
    }
    long long took = ts_now_ms() - t0;
    ts_stop(&sv.s[0]);
    ts_stop(&sv.s[1]);
    alarm(0);
    free_cases(&sc);
    fprintf(stderr, "differential: %zu cases run, %zu differ, %lld ms%s\n", run, failed, took,
            both_memcached ? " (DIFF_BOTH_MEMCACHED: memcached against memcached)" : "");
    if (failed > 0) {
        fprintf(stderr, "%s\ndifferential: cases where %s differs from memcached:\n%s", report.p,
                side_name[1], names.p);
        fflush(stderr);
    }
    buf_free(&report);
    buf_free(&names);
    ck_assert_msg(started, "a server did not start (see stderr)");
    ck_assert_msg(failed == 0, "%zu of %zu cases differ from memcached (listed on stderr)", failed,
                  run);
}
END_TEST

int main(int argc, char **argv)
{
    cases_path = argc > 1 ? argv[1] : getenv("DIFF_CASES") ? getenv("DIFF_CASES") : DIFF_CASES_FILE;
    both_memcached =
        getenv("DIFF_BOTH_MEMCACHED") != NULL && getenv("DIFF_BOTH_MEMCACHED")[0] == '1';
    if (both_memcached)
        side_name[1] = "memcached#2";
    Suite *s = suite_create("differential");
    TCase *tn = tcase_create("normalize");
    tcase_add_test(tn, test_normalize);
    suite_add_tcase(s, tn);
    TCase *tc = tcase_create("classic");
    tcase_set_timeout(tc, 120); /* also when run by hand, without ctest's CK_DEFAULT_TIMEOUT */
    tcase_add_test(tc, test_differential);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
