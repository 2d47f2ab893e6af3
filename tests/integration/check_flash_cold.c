/*
 * check_flash_cold.c: every command on a cold item (one that lives on flash
 * only) answers byte for byte as on a hot one (in RAM), table-driven.
 *
 * For each case of the table: a key is set up (value, flags, expiry), its
 * CAS read with `gets` (S), then the command under test is sent, then the
 * follow-up commands that show what it did (usually a `gets`). That runs
 * twice on one server:
 *
 *   hot   on key "h:<case>", right after its setup; the command must not
 *         touch flash (flash_hits unchanged);
 *   cold  on key "c:<case>", set up together with every other case's cold
 *         key, then pushed out of RAM by filler that RAM drops rather than
 *         demotes (its TTL is under --flash-min-ttl), so that the command
 *         under test is the first access since the key went to flash: it
 *         must be a flash hit (flash_hits grows). `set` does not read flash,
 *         so for it a twin key ("t:<case>", set up and read the same way) is
 *         checked cold just before.
 *
 * The transcripts (everything the server answered, the key replaced by
 * <KEY>, and each CAS by "S" if it is the setup CAS or C1, C2, ... in order
 * of appearance; each new CAS must be above S) must be identical for hot and
 * cold, and equal to the case's expected transcript, which is memcached
 * 1.6's answer. Among the things this pins down: a cold item keeps its CAS
 * (gets after demotion returns S; cas with S succeeds), its flags and its
 * bytes; a delete, an expiring set or touch of a cold key does not let the
 * flash copy come back; incr/decr rewrite a cold number as memcached
 * rewrites a hot one (in place, space padded, when the result is shorter);
 * the meta commands' state (a won recache, a stale item) is the same for a
 * cold item as for a hot one. Meta replies are normalized like VALUE lines
 * (c<cas> by S/C1... except c0, k<key> by k%K).
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flash_testlib.h"

#define BIG_LEN     102400
#define FILL_SMALL  20 /* filler value length: the small cases' slab class */
#define TRANSCRIPT  (1 << 20)
#define NO_EXPECTED NULL

struct ccase {
    const char *name;   /* at most 14 characters: keys stay in the smallest class */
    const char *value;  /* setup value; "%V" = the big value */
    uint32_t flags;     /* setup flags */
    const char *exp;    /* setup exptime */
    bool no_lookup;     /* the command does not read flash (set): check a twin */
    const char *cmd;    /* %K key, %S setup CAS, %X a CAS above S, %Y one below */
    const char *follow; /* commands that show the effect */
    const char *expect; /* the normalized transcript of cmd + follow (%K, %V) */
};

static const struct ccase cases[] = {
    {"get", "hello", 5, "0", false, "get %K\r\n", "get %K\r\n",
     "VALUE %K 5 5\r\nhello\r\nEND\r\nVALUE %K 5 5\r\nhello\r\nEND\r\n"},
    {"get_multi", "hello", 5, "0", false, "get %K no:such:key %K\r\n", "get %K\r\n",
     "VALUE %K 5 5\r\nhello\r\nVALUE %K 5 5\r\nhello\r\nEND\r\nVALUE %K 5 5\r\nhello\r\nEND\r\n"},
    {"gets", "hello", 5, "0", false, "gets %K\r\n", "gets %K\r\n",
     "VALUE %K 5 5 S\r\nhello\r\nEND\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"gat", "hello", 5, "0", false, "gat 200000 %K\r\n", "gets %K\r\n",
     "VALUE %K 5 5\r\nhello\r\nEND\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"gats", "hello", 5, "0", false, "gats 0 %K\r\n", "gets %K\r\n",
     "VALUE %K 5 5 S\r\nhello\r\nEND\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"gat_expire", "hello", 5, "0", false, "gat -1 %K\r\n", "get %K\r\n",
     "VALUE %K 5 5\r\nhello\r\nEND\r\nEND\r\n"},
    {"touch", "hello", 5, "0", false, "touch %K 200000\r\n", "gets %K\r\n",
     "TOUCHED\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"touch_noreply", "hello", 5, "0", false, "touch %K 0 noreply\r\n", "gets %K\r\n",
     "VALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"touch_expire", "hello", 5, "0", false, "touch %K -1\r\n", "get %K\r\n", "TOUCHED\r\nEND\r\n"},
    {"set", "hello", 5, "0", true, "set %K 9 0 3\r\nnew\r\n", "gets %K\r\n",
     "STORED\r\nVALUE %K 9 3 C1\r\nnew\r\nEND\r\n"},
    {"set_noreply", "hello", 5, "0", true, "set %K 9 0 3 noreply\r\nnew\r\n", "gets %K\r\n",
     "VALUE %K 9 3 C1\r\nnew\r\nEND\r\n"},
    {"set_expired", "hello", 5, "0", true, "set %K 0 -1 1\r\nx\r\n", "get %K\r\n",
     "STORED\r\nEND\r\n"},
    {"add", "hello", 5, "0", false, "add %K 9 0 3\r\nnew\r\n", "gets %K\r\n",
     "NOT_STORED\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"replace", "hello", 5, "0", false, "replace %K 9 0 3\r\nnew\r\n", "gets %K\r\n",
     "STORED\r\nVALUE %K 9 3 C1\r\nnew\r\nEND\r\n"},
    {"append", "hello", 5, "0", false, "append %K 9 0 4\r\n-app\r\n", "gets %K\r\n",
     "STORED\r\nVALUE %K 5 9 C1\r\nhello-app\r\nEND\r\n"},
    {"append_noreply", "hello", 5, "0", false, "append %K 9 0 4 noreply\r\n-app\r\n", "gets %K\r\n",
     "VALUE %K 5 9 C1\r\nhello-app\r\nEND\r\n"},
    {"prepend", "hello", 5, "0", false, "prepend %K 9 0 4\r\npre-\r\n", "gets %K\r\n",
     "STORED\r\nVALUE %K 5 9 C1\r\npre-hello\r\nEND\r\n"},
    {"append_empty", "", 0, "0", false, "append %K 7 0 2\r\nab\r\n", "gets %K\r\n",
     "STORED\r\nVALUE %K 0 2 C1\r\nab\r\nEND\r\n"},
    {"cas_match", "hello", 5, "0", false, "cas %K 9 0 3 %S\r\nnew\r\n", "gets %K\r\n",
     "STORED\r\nVALUE %K 9 3 C1\r\nnew\r\nEND\r\n"},
    {"cas_mismatch", "hello", 5, "0", false, "cas %K 9 0 3 %X\r\nnew\r\n", "gets %K\r\n",
     "EXISTS\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"cas_twice", "hello", 5, "0", false, "cas %K 9 0 3 %S\r\nnew\r\ncas %K 9 0 3 %S\r\nxyz\r\n",
     "gets %K\r\n", "STORED\r\nEXISTS\r\nVALUE %K 9 3 C1\r\nnew\r\nEND\r\n"},
    {"cas_noreply", "hello", 5, "0", false, "cas %K 9 0 3 %S noreply\r\nnew\r\n", "gets %K\r\n",
     "VALUE %K 9 3 C1\r\nnew\r\nEND\r\n"},
    {"incr", "41", 3, "0", false, "incr %K 1\r\n", "gets %K\r\n",
     "42\r\nVALUE %K 3 2 C1\r\n42\r\nEND\r\n"},
    {"incr_grow", "99", 3, "0", false, "incr %K 1\r\n", "gets %K\r\n",
     "100\r\nVALUE %K 3 3 C1\r\n100\r\nEND\r\n"},
    {"incr_noreply", "41", 3, "0", false, "incr %K 5 noreply\r\n", "gets %K\r\n",
     "VALUE %K 3 2 C1\r\n46\r\nEND\r\n"},
    {"incr_wrap", "18446744073709551615", 3, "0", false, "incr %K 2\r\n", "gets %K\r\n",
     "1\r\nVALUE %K 3 20 C1\r\n1                   \r\nEND\r\n"},
    {"decr", "100", 3, "0", false, "decr %K 7\r\n", "gets %K\r\n",
     "93\r\nVALUE %K 3 3 C1\r\n93 \r\nEND\r\n"},
    {"decr_floor", "5", 3, "0", false, "decr %K 10\r\n", "gets %K\r\n",
     "0\r\nVALUE %K 3 1 C1\r\n0\r\nEND\r\n"},
    {"incr_text", "hello", 5, "0", false, "incr %K 1\r\n", "gets %K\r\n",
     "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
     "VALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"delete", "hello", 5, "0", false, "delete %K\r\n", "get %K\r\ndelete %K\r\n",
     "DELETED\r\nEND\r\nNOT_FOUND\r\n"},
    {"delete_noreply", "hello", 5, "0", false, "delete %K noreply\r\n", "get %K\r\n", "END\r\n"},
    {"delete_add", "hello", 5, "0", false, "delete %K\r\nadd %K 1 0 2\r\nhi\r\n", "gets %K\r\n",
     "DELETED\r\nSTORED\r\nVALUE %K 1 2 C1\r\nhi\r\nEND\r\n"},
    {"ttl_kept", "hello", 5, "200000", false, "get %K\r\n", "gets %K\r\n",
     "VALUE %K 5 5\r\nhello\r\nEND\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"binary", "a\r\nEND\r\nb", 4294967295u, "0", false, "get %K\r\n", "gets %K\r\n",
     "VALUE %K 4294967295 9\r\na\r\nEND\r\nb\r\nEND\r\nVALUE %K 4294967295 9 S\r\na\r\nEND\r\nb\r\n"
     "END\r\n"},
    {"big_get", "%V", 7, "0", false, "get %K\r\n", "gets %K\r\n",
     "VALUE %K 7 102400\r\n%V\r\nEND\r\nVALUE %K 7 102400 S\r\n%V\r\nEND\r\n"},
    {"big_append", "%V", 7, "0", false, "append %K 0 0 5\r\n12345\r\n", "get %K\r\n",
     "STORED\r\nVALUE %K 7 102405\r\n%V12345\r\nEND\r\n"},
    /* The meta commands (docs/META.md); their W/X/Z state goes to flash too. */
    {"mg", "hello", 5, "0", false, "mg %K v f c s t k\r\n", "gets %K\r\n",
     "VA 5 f5 cS s5 t-1 k%K\r\nhello\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"mg_hd_nobump", "hello", 5, "0", false, "mg %K u\r\n", "mg %K O1 q\r\nmn\r\n",
     "HD\r\nHD O1\r\nMN\r\n"},
    {"mg_hit_before", "hello", 5, "0", false, "mg %K h\r\n", "mg %K h\r\n", "HD h1\r\nHD h1\r\n"},
    {"mg_big", "%V", 7, "0", false, "mg %K s v\r\n", "gets %K\r\n",
     "VA 102400 s102400\r\n%V\r\nVALUE %K 7 102400 S\r\n%V\r\nEND\r\n"},
    {"mg_touch", "hello", 5, "200000", false, "mg %K T0 t\r\n", "mg %K t v\r\n",
     "HD t-1\r\nVA 5 t-1\r\nhello\r\n"},
    {"mg_recache", "hello", 5, "150000", false, "mg %K R200000 c\r\nmg %K R200000 c\r\n",
     "mg %K c\r\n", "HD cS W\r\nHD cS Z\r\nHD cS Z\r\n"},
    {"md", "hello", 5, "0", false, "md %K q\r\nmn\r\n", "mg %K v\r\nmd %K\r\n",
     "MN\r\nEN\r\nNF\r\n"},
    {"md_cas_mismatch", "hello", 5, "0", false, "md %K C%X\r\n", "gets %K\r\n",
     "EX\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"md_invalidate", "hello", 5, "0", false, "md %K I\r\n", "mg %K c v\r\nmg %K c v\r\n",
     "HD\r\nVA 5 cC1 X W\r\nhello\r\nVA 5 cC1 Z X\r\nhello\r\n"},
    {"ms_invalidate", "hello", 5, "0", false, "ms %K 3 I C%Y c\r\nnew\r\n", "mg %K c t v f\r\n",
     "HD cC1\r\nVA 3 cC1 t-1 f0 X W\r\nnew\r\n"},
    {"ms_cas", "hello", 5, "0", false, "ms %K 3 C%S T0 F9\r\nnew\r\n", "gets %K\r\n",
     "HD\r\nVALUE %K 9 3 C1\r\nnew\r\nEND\r\n"},
    {"ms_append", "hello", 5, "0", false, "ms %K 4 MA\r\n-app\r\n", "gets %K\r\n",
     "HD\r\nVALUE %K 5 9 C1\r\nhello-app\r\nEND\r\n"},
    {"ms_add", "hello", 5, "0", false, "ms %K 3 ME c\r\nnew\r\n", "gets %K\r\n",
     "NS c0\r\nVALUE %K 5 5 S\r\nhello\r\nEND\r\n"},
    {"ma", "41", 3, "0", false, "ma %K v c\r\n", "gets %K\r\n",
     "VA 2 cC1\r\n42\r\nVALUE %K 3 2 C1\r\n42\r\nEND\r\n"},
    {"ma_decr_cas", "100", 3, "0", false, "ma %K C%S MD D7 v\r\nma %K C%S\r\n", "gets %K\r\n",
     "VA 2\r\n93\r\nEX\r\nVALUE %K 3 3 C1\r\n93 \r\nEND\r\n"},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static char big_value[BIG_LEN + 1];

struct buf {
    char *p;
    size_t n, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        ck_assert_ptr_nonnull(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Expand %K, %S, %X, %V in a template. */
static void expand(struct buf *out, const char *tpl, const char *key, uint64_t cas)
{
    out->n = 0;
    buf_add(out, "", 0);
    for (const char *p = tpl; *p != '\0'; p++) {
        if (*p != '%' || p[1] == '\0') {
            buf_add(out, p, 1);
            continue;
        }
        char num[32];
        switch (*++p) {
        case 'K':
            buf_puts(out, key);
            break;
        case 'S':
            snprintf(num, sizeof(num), "%" PRIu64, cas);
            buf_puts(out, num);
            break;
        case 'X':
            snprintf(num, sizeof(num), "%" PRIu64, cas + 1);
            buf_puts(out, num);
            break;
        case 'Y':
            snprintf(num, sizeof(num), "%" PRIu64, cas - 1);
            buf_puts(out, num);
            break;
        case 'V':
            buf_add(out, big_value, BIG_LEN);
            break;
        default:
            buf_add(out, p - 1, 2);
            break;
        }
    }
}

struct normalizer {
    uint64_t s;        /* the setup CAS */
    uint64_t seen[16]; /* other CAS values, in order of appearance */
    int nseen;
    char why[256]; /* a CAS rule broken, if any */
};

static void cas_token(struct normalizer *nz, uint64_t cas, char *out)
{
    if (cas == nz->s) {
        strcpy(out, "S");
        return;
    }
    if (cas < nz->s && nz->why[0] == '\0')
        snprintf(nz->why, sizeof(nz->why), "CAS %" PRIu64 " is below the setup CAS %" PRIu64, cas,
                 nz->s);
    int i = 0;
    while (i < nz->nseen && nz->seen[i] != cas)
        i++;
    if (i == nz->nseen && nz->nseen < 16)
        nz->seen[nz->nseen++] = cas;
    sprintf(out, "C%d", i + 1);
}

/* A meta reply line: a two-letter code alone or before a space. */
static bool is_meta_reply(const char *line, size_t n)
{
    static const char codes[][3] = {"VA", "HD", "EN", "NF", "NS", "EX"};
    if (n < 2 || (n > 2 && line[2] != ' '))
        return false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (memcmp(line, codes[i], 2) == 0)
            return true;
    return false;
}

/*
 * Normalize a meta reply line into out: c<cas> as the CAS tokens of VALUE
 * lines, k<key> as k%K. *bytes gets a VA's value length (SIZE_MAX if none).
 */
static int meta_line(const char *line, size_t n, const char *key, struct normalizer *nz,
                     struct buf *out, size_t *bytes)
{
    char tmp[600];
    if (n >= sizeof(tmp))
        return -1;
    memcpy(tmp, line, n);
    tmp[n] = '\0';
    *bytes = SIZE_MAX;
    int i = 0;
    for (char *save, *t = strtok_r(tmp, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        char tok[300];
        if (i == 1 && memcmp(line, "VA", 2) == 0) {
            char *end;
            *bytes = strtoull(t, &end, 10);
            if (*end != '\0')
                return -1;
            snprintf(tok, sizeof(tok), "%s", t);
        } else if (t[0] == 'c' && t[1] >= '1' && t[1] <= '9') { /* "c0": nothing stored */
            tok[0] = 'c';
            cas_token(nz, strtoull(t + 1, NULL, 10), tok + 1);
        } else if (t[0] == 'k' && strcmp(t + 1, key) == 0) {
            strcpy(tok, "k%K");
        } else {
            snprintf(tok, sizeof(tok), "%s", t);
        }
        if (i++ > 0)
            buf_puts(out, " ");
        buf_puts(out, tok);
    }
    buf_puts(out, "\r\n");
    return 0;
}

/*
 * Send `req` then "version", and read structurally up to the VERSION line:
 * the replies, normalized, are appended to out. Returns 0 or -1 (c->err).
 */
static int transcript(struct ft_conn *c, const char *req, size_t reqlen, const char *key,
                      struct normalizer *nz, struct buf *out)
{
    if (ft_send(c, req, reqlen) != 0 || ft_send(c, "version\r\n", 9) != 0)
        return -1;
    for (;;) {
        const char *line;
        size_t n;
        if (ft_line(c, &line, &n) != 0)
            return -1;
        if (n >= 8 && memcmp(line, "VERSION ", 8) == 0)
            return 0;
        if (is_meta_reply(line, n)) {
            size_t bytes;
            if (meta_line(line, n, key, nz, out, &bytes) != 0) {
                snprintf(c->err, sizeof(c->err), "malformed line \"%.*s\"", (int)n, line);
                return -1;
            }
            if (bytes != SIZE_MAX) {
                const char *data;
                if (ft_block(c, bytes, &data) != 0)
                    return -1;
                buf_add(out, data, bytes);
                buf_puts(out, "\r\n");
            }
            continue;
        }
        if (n < 6 || memcmp(line, "VALUE ", 6) != 0) {
            buf_add(out, line, n);
            buf_puts(out, "\r\n");
            continue;
        }
        char tmp[600], k[256], tok[32];
        unsigned long flags;
        unsigned long long bytes, cas;
        snprintf(tmp, sizeof(tmp), "%.*s", (int)n, line);
        int f = sscanf(tmp + 6, "%255s %lu %llu %llu", k, &flags, &bytes, &cas);
        if (f < 3) {
            snprintf(c->err, sizeof(c->err), "malformed line \"%.300s\"", tmp);
            return -1;
        }
        char norm[700];
        const char *kname = strcmp(k, key) == 0 ? "%K" : k;
        if (f == 4) {
            cas_token(nz, cas, tok);
            snprintf(norm, sizeof(norm), "VALUE %s %lu %llu %s\r\n", kname, flags, bytes, tok);
        } else {
            snprintf(norm, sizeof(norm), "VALUE %s %lu %llu\r\n", kname, flags, bytes);
        }
        buf_puts(out, norm);
        const char *data;
        if (ft_block(c, (size_t)bytes, &data) != 0)
            return -1;
        buf_add(out, data, (size_t)bytes);
        buf_puts(out, "\r\n");
    }
}

/* `set` a case's key with its setup value and read its CAS with gets. */
static void setup_send(struct ft_conn *c, const struct ccase *k, const char *key)
{
    struct buf v = {0};
    expand(&v, k->value, key, 0);
    char hdr[128];
    int h = snprintf(hdr, sizeof(hdr), "set %s %" PRIu32 " %s %zu\r\n", key, k->flags, k->exp, v.n);
    ck_assert_int_eq(ft_send(c, hdr, (size_t)h), 0);
    ck_assert_int_eq(ft_send(c, v.p, v.n), 0);
    ck_assert_int_eq(ft_send(c, "\r\n", 2), 0);
    ck_assert_msg(ft_expect(c, "STORED") == 0, "setup of %s: %s", key, c->err);
    free(v.p);
}

static uint64_t read_cas(struct ft_conn *c, const char *key)
{
    ck_assert_int_eq(ft_sendf(c, "gets %s\r\n", key), 0);
    struct ft_value v;
    ck_assert_msg(ft_next_value(c, &v) == 1, "gets %s after setup: %s", key, c->err);
    ck_assert(v.has_cas);
    uint64_t cas = v.cas;
    ck_assert_msg(ft_expect(c, "END") == 0, "%s", c->err);
    return cas;
}

/* The whole normalized transcript of a case on key `key` with setup CAS s.
 * *hits is the flash_hits growth across the command under test. */
static void run_case(int port, struct ft_conn *c, const struct ccase *k, const char *key,
                     uint64_t s, long long *hits, struct buf *out, struct normalizer *nz)
{
    struct buf req = {0};
    *nz = (struct normalizer){.s = s};
    out->n = 0;
    buf_add(out, "", 0);
    expand(&req, k->cmd, key, s);
    long long h0 = ft_tier(port, "flash_hits");
    ck_assert_msg(transcript(c, req.p, req.n, key, nz, out) == 0, "%s on %s: %s", k->name, key,
                  c->err);
    *hits = ft_tier(port, "flash_hits") - h0;
    expand(&req, k->follow, key, s);
    ck_assert_msg(transcript(c, req.p, req.n, key, nz, out) == 0, "%s follow-up on %s: %s", k->name,
                  key, c->err);
    free(req.p);
}

/* Printable form of a transcript for a failure message (big values cut). */
static void show(const struct buf *b, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < b->n && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)b->p[i];
        if (i == 300 && b->n > 400) {
            o += (size_t)snprintf(out + o, cap - o, "...(%zu bytes)...", b->n - 400);
            i = b->n - 100;
            continue;
        }
        if (ch == '\r')
            o += (size_t)snprintf(out + o, cap - o, "\\r");
        else if (ch == '\n')
            o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (ch < 32 || ch > 126)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/*
 * Push the cold keys out of RAM: filler in their slab classes that RAM drops
 * when it evicts it (its TTL is under --flash-min-ttl). The setup `gets`
 * made the cold keys ACTIVE, which earns them a place in the WARM segment of
 * the LRU, and WARM only shrinks when it holds more than its share: so the
 * filler is read once too, to become ACTIVE and crowd WARM.
 */
static void fill(struct ft_conn *c, size_t len, int count)
{
    enum { BATCH = 128 };
    char *buf = malloc(BATCH * (len + 64));
    ck_assert_ptr_nonnull(buf);
    static int seq;
    for (int i = 0; i < count; i += BATCH) {
        size_t n = 0;
        int nb = count - i < BATCH ? count - i : BATCH, first = seq;
        for (int b = 0; b < nb; b++) {
            n += (size_t)sprintf(buf + n, "set f:%07d 0 3600 %zu\r\n", seq++, len);
            memset(buf + n, 'f', len);
            memcpy(buf + n + len, "\r\n", 2);
            n += len + 2;
        }
        ck_assert_int_eq(ft_send(c, buf, n), 0);
        for (int b = 0; b < nb; b++)
            ck_assert_msg(ft_expect(c, "STORED") == 0, "filler: %s", c->err);
        n = (size_t)sprintf(buf, "get");
        for (int b = 0; b < nb; b++)
            n += (size_t)sprintf(buf + n, " f:%07d", first + b);
        n += (size_t)sprintf(buf + n, "\r\n");
        ck_assert_int_eq(ft_send(c, buf, n), 0);
        struct ft_value v;
        int r;
        while ((r = ft_next_value(c, &v)) == 1)
            ;
        ck_assert_msg(r == 0, "filler: %s", c->err);
    }
    free(buf);
}

START_TEST(test_cold_equals_hot)
{
    for (size_t i = 0; i < BIG_LEN; i++)
        big_value[i] = (char)('A' + (ft_mix(i) % 26));
    struct ft_server s;
    ck_assert_int_eq(
        ft_start(&s, NULL,
                 (const char *const[]){"-m", "8", "-t", "2", "--flash-min-ttl", "100000", NULL}),
        0);
    int port = s.ts.port;
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, port), 0);
    struct buf hot[NCASES], cold = {0}, want = {0};
    memset(hot, 0, sizeof(hot));
    long long hits;
    struct normalizer nz;
    char key[32], twin[32];
    int failures = 0;

    /* Hot: each case right after its setup. */
    for (size_t i = 0; i < NCASES; i++) {
        snprintf(key, sizeof(key), "h:%s", cases[i].name);
        setup_send(&c, &cases[i], key);
        uint64_t cas = read_cas(&c, key);
        run_case(port, &c, &cases[i], key, cas, &hits, &hot[i], &nz);
        ck_assert_msg(hits == 0, "hot %s: the command read flash (%lld flash hits)", cases[i].name,
                      hits);
        ck_assert_msg(nz.why[0] == '\0', "hot %s: %s", cases[i].name, nz.why);
    }

    /* Cold: set every case's key and twin, then push them out of RAM. */
    uint64_t setup_cas[NCASES];
    for (size_t i = 0; i < NCASES; i++) {
        snprintf(key, sizeof(key), "c:%s", cases[i].name);
        snprintf(twin, sizeof(twin), "t:%s", cases[i].name);
        setup_send(&c, &cases[i], key);
        setup_send(&c, &cases[i], twin);
        setup_cas[i] = read_cas(&c, key);
        read_cas(&c, twin);
    }
    /* ~31 MB of small items and ~20 MB of big ones through 8 MB, in rounds
     * that leave the maintainer time to rebalance the LRU segments. */
    for (int round = 0; round < 8; round++) {
        fill(&c, FILL_SMALL, 40000);
        fill(&c, BIG_LEN, 25);
        ft_pause_ms(150);
    }
    ck_assert_msg(ft_wait_writer_idle(port, 30000), "the flash writer did not drain");
    long long on_flash = ft_tier(port, "flash_items");
    ck_assert_msg(on_flash >= (long long)(2 * NCASES),
                  "flash_items %lld: the cold keys did not all reach flash", on_flash);

    for (size_t i = 0; i < NCASES; i++) {
        const struct ccase *k = &cases[i];
        snprintf(key, sizeof(key), "c:%s", k->name);
        snprintf(twin, sizeof(twin), "t:%s", k->name);
        if (k->no_lookup) {
            long long h0 = ft_tier(port, "flash_hits");
            ck_assert_int_eq(ft_sendf(&c, "get %s\r\n", twin), 0);
            struct ft_value v;
            ck_assert_msg(ft_next_value(&c, &v) == 1, "twin %s: %s", twin, c.err);
            ck_assert_int_eq(ft_expect(&c, "END"), 0);
            ck_assert_msg(ft_tier(port, "flash_hits") > h0,
                          "cold %s: its twin %s is still in RAM: the test did not make it cold",
                          k->name, twin);
        }
        run_case(port, &c, k, key, setup_cas[i], &hits, &cold, &nz);
        if (!k->no_lookup)
            ck_assert_msg(hits >= 1,
                          "cold %s: the command did not read flash: the key was not cold", k->name);
        expand(&want, k->expect, "%K", 0);
        bool same = cold.n == hot[i].n && memcmp(cold.p, hot[i].p, cold.n) == 0;
        bool hot_ok = hot[i].n == want.n && memcmp(hot[i].p, want.p, want.n) == 0;
        bool cold_ok = cold.n == want.n && memcmp(cold.p, want.p, want.n) == 0;
        if (!same || !hot_ok || !cold_ok || nz.why[0] != '\0') {
            char a[2048], b[2048], w[2048];
            show(&hot[i], a, sizeof(a));
            show(&cold, b, sizeof(b));
            show(&want, w, sizeof(w));
            fprintf(stderr,
                    "case %s: %s%s\n  expected: %s\n  hot:      %s\n  cold:     %s\n  "
                    "command:  %s\n",
                    k->name, same ? "hot and cold agree" : "COLD DIFFERS FROM HOT",
                    nz.why[0] != '\0' ? nz.why : "", w, a, b, k->cmd);
            failures++;
        }
    }
    ft_close(&c);
    int status = ft_stop(&s);
    for (size_t i = 0; i < NCASES; i++)
        free(hot[i].p);
    free(cold.p);
    free(want.p);
    ck_assert_msg(failures == 0, "%d of %zu cases answer differently (details on stderr)", failures,
                  NCASES);
    char status_text[80];
    ck_assert_msg(ft_exited_zero(status), "tiercached did not exit 0 on SIGTERM (%s)",
                  ft_status_text(status, status_text, sizeof(status_text)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flash_cold");
    TCase *tc = tcase_create("cold_equals_hot");
    tcase_add_test(tc, test_cold_equals_hot);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
