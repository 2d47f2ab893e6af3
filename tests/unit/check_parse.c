/*
 * check_parse.c: unit tests for src/proto/parse.c, the text protocol
 * parser. Every expectation is what memcached 1.6's try_read_command_ascii()
 * and process_command_ascii() do with the same bytes: line framing, the
 * tokenizer, each command's token counts, numbers, noreply, and every error
 * branch.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static struct request parse_str(const char *line)
{
    struct request r;
    memset(&r, 0xa5, sizeof(r)); /* proto_parse must set every field */
    proto_parse(line, strlen(line), &r);
    return r;
}

/* The line must be answered with the fixed reply `rep` (noreply as given). */
#define ck_reply(line, rep, nr)                                                                    \
    do {                                                                                           \
        struct request r_ = parse_str(line);                                                       \
        ck_assert_msg(r_.cmd == PROTO_CMD_REPLY && r_.reply == (rep) && r_.noreply == (nr),        \
                      "'%s': cmd %d reply %d noreply %d, want reply %d noreply %d", line,          \
                      (int)r_.cmd, (int)r_.reply, (int)r_.noreply, (int)(rep), (int)(nr));         \
    } while (0)

#define ck_error(line) ck_reply(line, PROTO_R_ERROR, false)

#define ck_key(tok, want)                                                                          \
    do {                                                                                           \
        ck_assert_uint_eq((tok).n, strlen(want));                                                  \
        ck_assert_mem_eq((tok).s, want, strlen(want));                                             \
    } while (0)

/* All keys of a get-family request, space-joined, into buf. */
static const char *keys_of(const struct request *r, char *buf, size_t cap)
{
    const char *pos = r->keys;
    struct proto_token k;
    size_t n = 0;
    buf[0] = '\0';
    while (proto_next_key(&pos, r->keys_end, &k)) {
        ck_assert_uint_gt(k.n, 0);
        ck_assert_uint_lt(n + k.n + 2, cap);
        if (n > 0)
            buf[n++] = ' ';
        memcpy(buf + n, k.s, k.n);
        n += k.n;
        buf[n] = '\0';
    }
    ck_assert_ptr_eq(pos, r->keys_end);
    return buf;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---------------------------------------------------------------------------
 * proto_next_line
 * ------------------------------------------------------------------------- */

static enum proto_line next_line(const char *buf, size_t len, size_t *ll, size_t *used)
{
    *ll = 12345;
    *used = 12345;
    return proto_next_line(buf, len, ll, used);
}

START_TEST(test_line_crlf)
{
    size_t ll, used;
    ck_assert_int_eq(next_line("get a\r\n", 7, &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 5);
    ck_assert_uint_eq(used, 7);
}
END_TEST

START_TEST(test_line_bare_lf)
{
    size_t ll, used;
    ck_assert_int_eq(next_line("get a\n", 6, &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 5);
    ck_assert_uint_eq(used, 6);
    ck_assert_int_eq(next_line("\n", 1, &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 0);
    ck_assert_uint_eq(used, 1);
}
END_TEST

/* memcached strips the '\r' only when the line has more than it: a lone
 * "\r\n" is the one-byte line "\r" (then ERROR). */
START_TEST(test_line_lone_crlf)
{
    size_t ll, used;
    ck_assert_int_eq(next_line("\r\n", 2, &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 1);
    ck_assert_uint_eq(used, 2);
    ck_error("\r");
    /* "a\r\n" is "a". */
    ck_assert_int_eq(next_line("a\r\n", 3, &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 1);
    /* Only one '\r' goes. */
    ck_assert_int_eq(next_line("ab\r\r\n", 5, &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 3);
    ck_assert_uint_eq(used, 5);
}
END_TEST

START_TEST(test_line_first_of_several)
{
    size_t ll, used;
    const char *buf = "get a\r\nget b\nver";
    ck_assert_int_eq(next_line(buf, strlen(buf), &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 5);
    ck_assert_uint_eq(used, 7);
    buf += used;
    ck_assert_int_eq(next_line(buf, strlen(buf), &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 5);
    ck_assert_uint_eq(used, 6);
    buf += used;
    ck_assert_int_eq(next_line(buf, strlen(buf), &ll, &used), PROTO_LINE_NEED_MORE);
}
END_TEST

START_TEST(test_line_need_more)
{
    size_t ll, used;
    ck_assert_int_eq(next_line("", 0, &ll, &used), PROTO_LINE_NEED_MORE);
    ck_assert_int_eq(next_line("get a\r", 6, &ll, &used), PROTO_LINE_NEED_MORE);
    /* Only len bytes are looked at: the '\n' after them does not count. */
    ck_assert_int_eq(next_line("get a\r\n", 6, &ll, &used), PROTO_LINE_NEED_MORE);
    char *x = repeat('x', 2048);
    ck_assert_int_eq(next_line(x, 2048, &ll, &used), PROTO_LINE_NEED_MORE);
    free(x);
}
END_TEST

START_TEST(test_line_too_long_closes)
{
    size_t ll, used;
    char *x = repeat('x', 2049);
    ck_assert_int_eq(next_line(x, 2049, &ll, &used), PROTO_LINE_CLOSE);
    memcpy(x, "set ", 4);
    ck_assert_int_eq(next_line(x, 2049, &ll, &used), PROTO_LINE_CLOSE);
    memcpy(x, "gat ", 4);
    ck_assert_int_eq(next_line(x, 2049, &ll, &used), PROTO_LINE_CLOSE);
    memcpy(x, "GET ", 4);
    ck_assert_int_eq(next_line(x, 2049, &ll, &used), PROTO_LINE_CLOSE);
    memcpy(x, "getx", 4);
    ck_assert_int_eq(next_line(x, 2049, &ll, &used), PROTO_LINE_CLOSE);
    memcpy(x, "gets", 4); /* "getsx": not "gets " */
    ck_assert_int_eq(next_line(x, 2049, &ll, &used), PROTO_LINE_CLOSE);
    /* With a newline it is a line, however long. */
    x[2048] = '\n';
    ck_assert_int_eq(next_line(x, 2049, &ll, &used), PROTO_LINE_OK);
    ck_assert_uint_eq(ll, 2048);
    free(x);
}
END_TEST

START_TEST(test_line_long_get_may_grow)
{
    size_t ll, used;
    char *x = repeat('k', 5000);
    memcpy(x, "get ", 4);
    ck_assert_int_eq(next_line(x, 5000, &ll, &used), PROTO_LINE_NEED_MORE);
    memcpy(x, "gets ", 5);
    ck_assert_int_eq(next_line(x, 5000, &ll, &used), PROTO_LINE_NEED_MORE);
    free(x);
}
END_TEST

START_TEST(test_line_long_get_after_spaces)
{
    size_t ll, used;
    /* Up to 100 leading spaces are skipped. */
    char *x = repeat('k', 3000);
    memset(x, ' ', 100);
    memcpy(x + 100, "get ", 4);
    ck_assert_int_eq(next_line(x, 3000, &ll, &used), PROTO_LINE_NEED_MORE);
    memset(x, ' ', 100);
    memcpy(x + 100, "gets ", 5);
    ck_assert_int_eq(next_line(x, 3000, &ll, &used), PROTO_LINE_NEED_MORE);
    /* 101 is too many. */
    memset(x, ' ', 101);
    memcpy(x + 101, "get ", 4);
    ck_assert_int_eq(next_line(x, 3000, &ll, &used), PROTO_LINE_CLOSE);
    /* All spaces: close. */
    memset(x, ' ', 3000);
    ck_assert_int_eq(next_line(x, 3000, &ll, &used), PROTO_LINE_CLOSE);
    free(x);
}
END_TEST

/* ---------------------------------------------------------------------------
 * proto_tokenize
 * ------------------------------------------------------------------------- */

START_TEST(test_tokenize_single_spaces)
{
    struct proto_token t[PROTO_MAX_TOKENS];
    const char *s = "set k 0 0 5";
    size_t n = proto_tokenize(s, strlen(s), t, PROTO_MAX_TOKENS);
    ck_assert_uint_eq(n, 6);
    ck_key(t[0], "set");
    ck_key(t[1], "k");
    ck_key(t[2], "0");
    ck_key(t[3], "0");
    ck_key(t[4], "5");
    ck_assert_ptr_eq(t[0].s, s);
    ck_assert_ptr_eq(t[4].s, s + 10);
    ck_assert_ptr_null(t[5].s);
    ck_assert_uint_eq(t[5].n, 0);
}
END_TEST

START_TEST(test_tokenize_runs_of_spaces)
{
    struct proto_token t[PROTO_MAX_TOKENS];
    const char *s = "   get   a  b   ";
    size_t n = proto_tokenize(s, strlen(s), t, PROTO_MAX_TOKENS);
    ck_assert_uint_eq(n, 4);
    ck_key(t[0], "get");
    ck_key(t[1], "a");
    ck_key(t[2], "b");
    ck_assert_ptr_null(t[3].s);
    ck_assert_uint_eq(t[3].n, 0);
}
END_TEST

START_TEST(test_tokenize_only_spaces_are_separators)
{
    struct proto_token t[PROTO_MAX_TOKENS];
    const char *s = "a\tb\rc\nd e";
    size_t n = proto_tokenize(s, strlen(s), t, PROTO_MAX_TOKENS);
    ck_assert_uint_eq(n, 3);
    ck_key(t[0], "a\tb\rc\nd");
    ck_key(t[1], "e");
}
END_TEST

START_TEST(test_tokenize_empty)
{
    struct proto_token t[PROTO_MAX_TOKENS];
    ck_assert_uint_eq(proto_tokenize("", 0, t, PROTO_MAX_TOKENS), 1);
    ck_assert_ptr_null(t[0].s);
    ck_assert_uint_eq(t[0].n, 0);
    ck_assert_uint_eq(proto_tokenize("     ", 5, t, PROTO_MAX_TOKENS), 1);
    ck_assert_ptr_null(t[0].s);
    /* Only n bytes count. */
    ck_assert_uint_eq(proto_tokenize("abc def", 3, t, PROTO_MAX_TOKENS), 2);
    ck_key(t[0], "abc");
    ck_assert_ptr_null(t[1].s);
}
END_TEST

/* Builds "t0 t1 ... t<n-1>" (with `tail` appended) into buf. */
static size_t words(char *buf, size_t cap, int n, const char *tail)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%st%d", i ? " " : "", i);
    len += (size_t)snprintf(buf + len, cap - len, "%s", tail);
    return len;
}

START_TEST(test_tokenize_cap)
{
    struct proto_token t[PROTO_MAX_TOKENS];
    char buf[512];
    char name[8];

    /* 30 words: 23 tokens, then the terminal token holds the rest. */
    size_t len = words(buf, sizeof(buf), 30, "");
    size_t n = proto_tokenize(buf, len, t, PROTO_MAX_TOKENS);
    ck_assert_uint_eq(n, PROTO_MAX_TOKENS);
    for (int i = 0; i < PROTO_MAX_TOKENS - 1; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        ck_key(t[i], name);
    }
    ck_assert_ptr_nonnull(t[23].s);
    ck_assert_uint_eq(t[23].n, 0);
    ck_assert_str_eq(t[23].s, "t23 t24 t25 t26 t27 t28 t29");

    /* Exactly 23 words: all split, terminal NULL. */
    len = words(buf, sizeof(buf), 23, "");
    ck_assert_uint_eq(proto_tokenize(buf, len, t, PROTO_MAX_TOKENS), PROTO_MAX_TOKENS);
    ck_key(t[22], "t22");
    ck_assert_ptr_null(t[23].s);

    /* 23 words and a trailing space: nothing is left after the space. */
    len = words(buf, sizeof(buf), 23, " ");
    ck_assert_uint_eq(proto_tokenize(buf, len, t, PROTO_MAX_TOKENS), PROTO_MAX_TOKENS);
    ck_assert_ptr_null(t[23].s);

    /* 23 words and two spaces: the remainder is the second space. */
    len = words(buf, sizeof(buf), 23, "  ");
    ck_assert_uint_eq(proto_tokenize(buf, len, t, PROTO_MAX_TOKENS), PROTO_MAX_TOKENS);
    ck_assert_ptr_eq(t[23].s, buf + len - 1);

    /* 24 words: the 24th is the remainder. */
    len = words(buf, sizeof(buf), 24, "");
    ck_assert_uint_eq(proto_tokenize(buf, len, t, PROTO_MAX_TOKENS), PROTO_MAX_TOKENS);
    ck_assert_str_eq(t[23].s, "t23");

    /* 22 words: 23 tokens. */
    len = words(buf, sizeof(buf), 22, "");
    ck_assert_uint_eq(proto_tokenize(buf, len, t, PROTO_MAX_TOKENS), 23);
    ck_assert_ptr_null(t[22].s);
}
END_TEST

START_TEST(test_tokenize_small_max)
{
    struct proto_token t[3];
    const char *s = "a b c";
    ck_assert_uint_eq(proto_tokenize(s, strlen(s), t, 2), 2);
    ck_key(t[0], "a");
    ck_assert_ptr_eq(t[1].s, s + 2);
    ck_assert_uint_eq(t[1].n, 0);
    ck_assert_uint_eq(proto_tokenize(s, strlen(s), t, 3), 3);
    ck_key(t[1], "b");
    ck_assert_ptr_eq(t[2].s, s + 4);
}
END_TEST

/* ---------------------------------------------------------------------------
 * proto_next_key
 * ------------------------------------------------------------------------- */

START_TEST(test_next_key)
{
    const char *s = "  a bb   ccc ";
    const char *pos = s;
    const char *end = s + strlen(s);
    struct proto_token k;
    ck_assert_int_eq(proto_next_key(&pos, end, &k), 1);
    ck_key(k, "a");
    ck_assert_int_eq(proto_next_key(&pos, end, &k), 1);
    ck_key(k, "bb");
    ck_assert_int_eq(proto_next_key(&pos, end, &k), 1);
    ck_key(k, "ccc");
    ck_assert_int_eq(proto_next_key(&pos, end, &k), 0);
    ck_assert_ptr_eq(pos, end);
    ck_assert_int_eq(proto_next_key(&pos, end, &k), 0);

    /* The range is honoured: "dd" is cut to "d". */
    s = "x dd";
    pos = s;
    ck_assert_int_eq(proto_next_key(&pos, s + 3, &k), 1);
    ck_key(k, "x");
    ck_assert_int_eq(proto_next_key(&pos, s + 3, &k), 1);
    ck_key(k, "d");
    ck_assert_int_eq(proto_next_key(&pos, s + 3, &k), 0);

    /* Empty and all-space ranges. */
    pos = s;
    ck_assert_int_eq(proto_next_key(&pos, s, &k), 0);
    s = "    ";
    pos = s;
    ck_assert_int_eq(proto_next_key(&pos, s + 4, &k), 0);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Get family
 * ------------------------------------------------------------------------- */

START_TEST(test_get)
{
    char buf[1024];
    struct request r = parse_str("get a");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert(!r.noreply);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a");

    r = parse_str("get a bb ccc");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a bb ccc");

    r = parse_str("  get   a    b  ");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a b");

    r = parse_str("gets a b");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GETS);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a b");

    r = parse_str("bget a b");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a b");

    /* "noreply" is just a key for get. */
    r = parse_str("get a noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert(!r.noreply);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a noreply");
}
END_TEST

START_TEST(test_get_many_keys)
{
    /* More keys than tokens: every key is still there. */
    char line[2048], want[2048];
    size_t n = (size_t)snprintf(line, sizeof(line), "get");
    size_t w = 0;
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, " key%d", i);
        w += (size_t)snprintf(want + w, sizeof(want) - w, "%skey%d", i ? " " : "", i);
    }
    char buf[2048];
    struct request r = parse_str(line);
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), want);
    /* Long keys are the server's business: the parser hands them over. */
    char *longkey = repeat('k', 300);
    snprintf(line, sizeof(line), "get %s", longkey);
    r = parse_str(line);
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), longkey);
    free(longkey);
}
END_TEST

START_TEST(test_get_errors)
{
    ck_error("get");
    ck_error("get ");
    ck_error("gets   ");
    ck_error("gat");
    ck_error("bget");
    ck_error("gex a");
    ck_error("getx a");
    ck_error("GET a");
    ck_error("Get a");
    ck_error("g a");
}
END_TEST

START_TEST(test_gat)
{
    char buf[256];
    struct request r = parse_str("gat 10 a b");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GAT);
    ck_assert_int_eq(r.exptime, 10);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a b");

    r = parse_str("gats -1 a");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GATS);
    ck_assert_int_eq(r.exptime, -1);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a");

    /* 32-bit truncation, as safe_strtol into an int32_t. */
    r = parse_str("gat 4294967297 a");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GAT);
    ck_assert_int_eq(r.exptime, 1);

    /* An exptime and no key: nothing to look up (memcached answers END). */
    r = parse_str("gat 10");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GAT);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "");
    r = parse_str("gats 10   ");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GATS);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "");
}
END_TEST

START_TEST(test_gat_bad_exptime)
{
    ck_reply("gat x a", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_reply("gats 1x a", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_reply("gat 9223372036854775808 a", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_reply("gat x", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_reply("gat noreply a noreply", PROTO_R_CLIENT_ERROR_EXPTIME, false);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Storage commands
 * ------------------------------------------------------------------------- */

START_TEST(test_set)
{
    struct request r = parse_str("set foo 5 100 3");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_key(r.key, "foo");
    ck_assert_uint_eq(r.flags, 5);
    ck_assert_int_eq(r.exptime, 100);
    ck_assert_int_eq(r.vlen, 3);
    ck_assert(!r.noreply);

    r = parse_str("set foo 0 0 3 noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert(r.noreply);

    /* A sixth argument that is not "noreply" is ignored. */
    r = parse_str("set foo 0 0 3 whatever");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert(!r.noreply);
    ck_assert_int_eq(r.vlen, 3);

    r = parse_str("set foo 4294967295 -1 0");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert_uint_eq(r.flags, 4294967295u);
    ck_assert_int_eq(r.exptime, -1);
    ck_assert_int_eq(r.vlen, 0);

    r = parse_str("  set   foo  1  2  3  ");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_key(r.key, "foo");
    ck_assert_int_eq(r.vlen, 3);
}
END_TEST

START_TEST(test_storage_commands_map)
{
    static const struct {
        const char *line;
        enum proto_cmd cmd;
    } cases[] = {
        {"set k 1 2 3", PROTO_CMD_SET},         {"add k 1 2 3", PROTO_CMD_ADD},
        {"replace k 1 2 3", PROTO_CMD_REPLACE}, {"append k 1 2 3", PROTO_CMD_APPEND},
        {"prepend k 1 2 3", PROTO_CMD_PREPEND}, {"cas k 1 2 3 4", PROTO_CMD_CAS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct request r = parse_str(cases[i].line);
        ck_assert_msg(r.cmd == cases[i].cmd, "'%s': cmd %d", cases[i].line, (int)r.cmd);
        ck_key(r.key, "k");
        ck_assert_uint_eq(r.flags, 1);
        ck_assert_int_eq(r.exptime, 2);
        ck_assert_int_eq(r.vlen, 3);
        ck_assert(!r.noreply);

        /* With noreply. */
        char line[64];
        snprintf(line, sizeof(line), "%s noreply", cases[i].line);
        r = parse_str(line);
        ck_assert_msg(r.cmd == cases[i].cmd && r.noreply, "'%s'", line);

        /* One token short, and two too many: ERROR. */
        snprintf(line, sizeof(line), "%.*s", (int)(strrchr(cases[i].line, ' ') - cases[i].line),
                 cases[i].line);
        ck_error(line);
        snprintf(line, sizeof(line), "%s noreply x", cases[i].line);
        ck_error(line);
        snprintf(line, sizeof(line), "%s x noreply", cases[i].line);
        ck_error(line);
    }
}
END_TEST

START_TEST(test_storage_token_counts)
{
    ck_error("set");
    ck_error("set k");
    ck_error("set k 0");
    ck_error("set k 0 0");
    ck_error("add k 0 0");
    ck_error("replace k 0 0");
    ck_error("append k 0 0");
    ck_error("prepend k 0 0");
    ck_error("cas k 0 0 1");
    ck_error("cas k 0 0 1 2 noreply x");
    ck_error("set k 0 0 1 noreply extra");
    /* Far too many tokens (past the 24-token cap). */
    char line[512];
    size_t n = (size_t)snprintf(line, sizeof(line), "set k 0 0 1");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " x");
    ck_error(line);
    /* Unknown commands sharing a first letter. */
    ck_error("sett k 0 0 1");
    ck_error("adds k 0 0 1");
    ck_error("appendx k 0 0 1");
    ck_error("replac k 0 0 1");
    ck_error("prepen k 0 0 1");
    ck_error("cass k 0 0 1 1");
    ck_error("SET k 0 0 1");
}
END_TEST

START_TEST(test_storage_key_length)
{
    char *key = repeat('k', 250);
    char line[400];
    snprintf(line, sizeof(line), "set %s 0 0 1", key);
    struct request r = parse_str(line);
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert_uint_eq(r.key.n, 250);
    free(key);

    key = repeat('k', 251);
    snprintf(line, sizeof(line), "set %s 0 0 1", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, false);
    snprintf(line, sizeof(line), "cas %s 0 0 1 1 noreply", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, true);
    snprintf(line, sizeof(line), "append %s 0 0 1", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, false);
    free(key);
}
END_TEST

START_TEST(test_storage_flags)
{
    ck_reply("set k -1 0 1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k x 0 1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k 1x 0 1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k 18446744073709551616 0 1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    /* Truncated to 32 bits, as memcached's safe_strtoul into a uint32_t. */
    struct request r = parse_str("set k 4294967296 0 1");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert_uint_eq(r.flags, 0);
    r = parse_str("set k 4294967297 0 1");
    ck_assert_uint_eq(r.flags, 1);
    r = parse_str("set k +7 0 1");
    ck_assert_uint_eq(r.flags, 7);
    r = parse_str("set k -0 0 1");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert_uint_eq(r.flags, 0);
}
END_TEST

START_TEST(test_storage_exptime)
{
    ck_reply("set k 0 x 1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k 0 1.5 1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k 0 9223372036854775808 1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    struct request r = parse_str("set k 0 -100 1");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert_int_eq(r.exptime, -100);
    r = parse_str("set k 0 4294967297 1");
    ck_assert_int_eq(r.exptime, 1);
    r = parse_str("set k 0 2147483648 1");
    ck_assert_int_eq(r.exptime, INT32_MIN);
}
END_TEST

START_TEST(test_storage_vlen)
{
    ck_reply("set k 0 0 -1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k 0 0 x", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k 0 0 2147483646", PROTO_R_CLIENT_ERROR_FORMAT, false); /* > INT_MAX - 2 */
    ck_reply("set k 0 0 2147483647", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("set k 0 0 4294967295", PROTO_R_CLIENT_ERROR_FORMAT, false); /* -1 in 32 bits */
    ck_reply("set k 0 0 -1 noreply", PROTO_R_CLIENT_ERROR_FORMAT, true);
    ck_reply("set k 0 0 9223372036854775808", PROTO_R_CLIENT_ERROR_FORMAT, false);
    struct request r = parse_str("set k 0 0 2147483645");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert_int_eq(r.vlen, 2147483645);
    /* Truncated to 32 bits first: 2^32 + 5 is 5. */
    r = parse_str("set k 0 0 4294967301");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert_int_eq(r.vlen, 5);
}
END_TEST

START_TEST(test_cas)
{
    struct request r = parse_str("cas k 1 2 3 99");
    ck_assert_int_eq(r.cmd, PROTO_CMD_CAS);
    ck_assert_uint_eq(r.cas, 99);
    ck_assert(!r.noreply);
    r = parse_str("cas k 1 2 3 18446744073709551615 noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_CAS);
    ck_assert_uint_eq(r.cas, UINT64_MAX);
    ck_assert(r.noreply);
    r = parse_str("cas k 1 2 3 0");
    ck_assert_int_eq(r.cmd, PROTO_CMD_CAS);
    ck_assert_uint_eq(r.cas, 0);

    ck_reply("cas k 1 2 3 x", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("cas k 1 2 3 -1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("cas k 1 2 3 18446744073709551616", PROTO_R_CLIENT_ERROR_FORMAT, false);
    /* "noreply" in the CAS position is both noreply and a bad number. */
    ck_reply("cas k 1 2 3 noreply", PROTO_R_CLIENT_ERROR_FORMAT, true);
    ck_reply("cas k 1 2 -3 4 noreply", PROTO_R_CLIENT_ERROR_FORMAT, true);
}
END_TEST

START_TEST(test_storage_error_keeps_noreply)
{
    ck_reply("set k x 0 1 noreply", PROTO_R_CLIENT_ERROR_FORMAT, true);
    ck_reply("add k 0 x 1 noreply", PROTO_R_CLIENT_ERROR_FORMAT, true);
    ck_reply("prepend k 0 0 x noreply", PROTO_R_CLIENT_ERROR_FORMAT, true);
}
END_TEST

/* ---------------------------------------------------------------------------
 * delete
 * ------------------------------------------------------------------------- */

START_TEST(test_delete)
{
    struct request r = parse_str("delete k");
    ck_assert_int_eq(r.cmd, PROTO_CMD_DELETE);
    ck_key(r.key, "k");
    ck_assert(!r.noreply);
    r = parse_str("delete k noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_DELETE);
    ck_assert(r.noreply);
    r = parse_str("delete k 0");
    ck_assert_int_eq(r.cmd, PROTO_CMD_DELETE);
    ck_assert(!r.noreply);
    r = parse_str("delete k 0 noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_DELETE);
    ck_assert(r.noreply);
}
END_TEST

START_TEST(test_delete_usage_errors)
{
    ck_reply("delete k 1", PROTO_R_CLIENT_ERROR_DELETE_USAGE, false);
    ck_reply("delete k 00", PROTO_R_CLIENT_ERROR_DELETE_USAGE, false);
    ck_reply("delete k x", PROTO_R_CLIENT_ERROR_DELETE_USAGE, false);
    ck_reply("delete k 0 x", PROTO_R_CLIENT_ERROR_DELETE_USAGE, false);
    ck_reply("delete k 1 noreply", PROTO_R_CLIENT_ERROR_DELETE_USAGE, true);
    ck_reply("delete k noreply 0", PROTO_R_CLIENT_ERROR_DELETE_USAGE, false);
    ck_reply("delete k noreply noreply", PROTO_R_CLIENT_ERROR_DELETE_USAGE, true);
    ck_error("delete");
    ck_error("delete k 0 noreply x");
    ck_error("deletex k");
    ck_error("del k");
}
END_TEST

START_TEST(test_delete_key_length)
{
    char *key = repeat('d', 251);
    char line[300];
    snprintf(line, sizeof(line), "delete %s", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, false);
    snprintf(line, sizeof(line), "delete %s noreply", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, true);
    /* The usage check comes first. */
    snprintf(line, sizeof(line), "delete %s 1", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_DELETE_USAGE, false);
    key[250] = '\0';
    snprintf(line, sizeof(line), "delete %s", key);
    struct request r = parse_str(line);
    ck_assert_int_eq(r.cmd, PROTO_CMD_DELETE);
    ck_assert_uint_eq(r.key.n, 250);
    free(key);
}
END_TEST

/* ---------------------------------------------------------------------------
 * incr, decr, touch
 * ------------------------------------------------------------------------- */

START_TEST(test_arith)
{
    struct request r = parse_str("incr k 5");
    ck_assert_int_eq(r.cmd, PROTO_CMD_INCR);
    ck_key(r.key, "k");
    ck_assert_uint_eq(r.delta, 5);
    ck_assert(!r.noreply);
    r = parse_str("decr k 18446744073709551615 noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_DECR);
    ck_assert_uint_eq(r.delta, UINT64_MAX);
    ck_assert(r.noreply);
    r = parse_str("incr k 0 whatever");
    ck_assert_int_eq(r.cmd, PROTO_CMD_INCR);
    ck_assert(!r.noreply);

    ck_reply("incr k x", PROTO_R_CLIENT_ERROR_DELTA, false);
    ck_reply("incr k -1", PROTO_R_CLIENT_ERROR_DELTA, false);
    ck_reply("decr k 18446744073709551616", PROTO_R_CLIENT_ERROR_DELTA, false);
    ck_reply("decr k 1.0 noreply", PROTO_R_CLIENT_ERROR_DELTA, true);
    ck_reply("incr k noreply", PROTO_R_CLIENT_ERROR_DELTA, true);
    /* noreply counts only as the last token. */
    ck_reply("incr k noreply 5", PROTO_R_CLIENT_ERROR_DELTA, false);
    ck_error("incr");
    ck_error("incr k");
    ck_error("decr k");
    ck_error("incr k 1 noreply x");
    ck_error("incrx k 1");
    ck_error("decrx k 1");

    char *key = repeat('i', 251);
    char line[300];
    snprintf(line, sizeof(line), "incr %s 1", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, false);
    snprintf(line, sizeof(line), "decr %s x noreply", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, true); /* the key is checked first */
    free(key);
}
END_TEST

START_TEST(test_touch)
{
    struct request r = parse_str("touch k 10");
    ck_assert_int_eq(r.cmd, PROTO_CMD_TOUCH);
    ck_key(r.key, "k");
    ck_assert_int_eq(r.exptime, 10);
    ck_assert(!r.noreply);
    r = parse_str("touch k -1 noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_TOUCH);
    ck_assert_int_eq(r.exptime, -1);
    ck_assert(r.noreply);

    ck_reply("touch k x", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_reply("touch k x noreply", PROTO_R_CLIENT_ERROR_EXPTIME, true);
    ck_reply("touch k noreply 5", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_error("touch");
    ck_error("touch k");
    ck_error("touch k 1 noreply x");
    ck_error("touchx k 1");

    char *key = repeat('t', 251);
    char line[300];
    snprintf(line, sizeof(line), "touch %s 1", key);
    ck_reply(line, PROTO_R_CLIENT_ERROR_FORMAT, false);
    free(key);
}
END_TEST

/* ---------------------------------------------------------------------------
 * flush_all, version, verbosity, quit, shutdown, stats, mn
 * ------------------------------------------------------------------------- */

START_TEST(test_flush_all)
{
    struct request r = parse_str("flush_all");
    ck_assert_int_eq(r.cmd, PROTO_CMD_FLUSH_ALL);
    ck_assert(!r.has_delay);
    ck_assert(!r.noreply);

    r = parse_str("flush_all noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_FLUSH_ALL);
    ck_assert(!r.has_delay);
    ck_assert(r.noreply);

    r = parse_str("flush_all 10");
    ck_assert_int_eq(r.cmd, PROTO_CMD_FLUSH_ALL);
    ck_assert(r.has_delay);
    ck_assert_int_eq(r.exptime, 10);
    ck_assert(!r.noreply);

    r = parse_str("flush_all 10 noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_FLUSH_ALL);
    ck_assert(r.has_delay);
    ck_assert_int_eq(r.exptime, 10);
    ck_assert(r.noreply);

    r = parse_str("flush_all 0");
    ck_assert_int_eq(r.cmd, PROTO_CMD_FLUSH_ALL);
    ck_assert(r.has_delay);
    ck_assert_int_eq(r.exptime, 0);

    r = parse_str("flush_all -1");
    ck_assert_int_eq(r.cmd, PROTO_CMD_FLUSH_ALL);
    ck_assert(r.has_delay);
    ck_assert_int_eq(r.exptime, -1);

    /* Three tokens without noreply: the second is the delay, the third ignored. */
    r = parse_str("flush_all 7 junk");
    ck_assert_int_eq(r.cmd, PROTO_CMD_FLUSH_ALL);
    ck_assert(r.has_delay);
    ck_assert_int_eq(r.exptime, 7);
    ck_assert(!r.noreply);
}
END_TEST

START_TEST(test_flush_all_errors)
{
    ck_reply("flush_all x", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_reply("flush_all x noreply", PROTO_R_CLIENT_ERROR_EXPTIME, true);
    /* noreply must be last: here it is taken as the delay. */
    ck_reply("flush_all noreply 10", PROTO_R_CLIENT_ERROR_EXPTIME, false);
    ck_reply("flush_all noreply noreply", PROTO_R_CLIENT_ERROR_EXPTIME, true);
    ck_error("flush_all 1 2 3");
    ck_error("flush_all 1 noreply x");
    ck_error("flush_allx");
    ck_error("flush");
}
END_TEST

START_TEST(test_version_quit)
{
    ck_assert_int_eq(parse_str("version").cmd, PROTO_CMD_VERSION);
    ck_assert_int_eq(parse_str("version extra args").cmd, PROTO_CMD_VERSION);
    ck_assert_int_eq(parse_str("quit").cmd, PROTO_CMD_QUIT);
    ck_assert_int_eq(parse_str("quit now").cmd, PROTO_CMD_QUIT);
    ck_error("versions");
    ck_error("quitx");
    ck_error("VERSION");
}
END_TEST

START_TEST(test_verbosity)
{
    struct request r = parse_str("verbosity 1");
    ck_assert_int_eq(r.cmd, PROTO_CMD_VERBOSITY);
    ck_assert_uint_eq(r.level, 1);
    ck_assert(!r.noreply);
    r = parse_str("verbosity 5 noreply");
    ck_assert_int_eq(r.cmd, PROTO_CMD_VERBOSITY);
    ck_assert_uint_eq(r.level, 5);
    ck_assert(r.noreply);
    r = parse_str("verbosity 4294967297");
    ck_assert_int_eq(r.cmd, PROTO_CMD_VERBOSITY);
    ck_assert_uint_eq(r.level, 1);

    ck_reply("verbosity x", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("verbosity -1", PROTO_R_CLIENT_ERROR_FORMAT, false);
    ck_reply("verbosity noreply", PROTO_R_CLIENT_ERROR_FORMAT, true);
    ck_reply("verbosity noreply 1", PROTO_R_CLIENT_ERROR_FORMAT, false); /* it is the level */
    ck_error("verbosity");
    ck_error("verbosity 1 2 3");
    ck_error("verbosityx 1");
}
END_TEST

START_TEST(test_stats)
{
    static const struct {
        const char *line;
        enum proto_stats_kind kind;
    } cases[] = {
        {"stats", PROTO_STATS_GENERAL},
        {"stats ", PROTO_STATS_GENERAL},
        {"stats reset", PROTO_STATS_RESET},
        {"stats reset extra", PROTO_STATS_RESET},
        {"stats settings", PROTO_STATS_SETTINGS},
        {"stats items", PROTO_STATS_ITEMS},
        {"stats slabs", PROTO_STATS_SLABS},
        {"stats sizes", PROTO_STATS_SIZES},
        {"stats conns", PROTO_STATS_CONNS},
        {"stats tiers", PROTO_STATS_TIERS},
        {"stats detail on", PROTO_STATS_DETAIL_ON},
        {"stats detail off", PROTO_STATS_DETAIL_OFF},
        {"stats detail dump", PROTO_STATS_DETAIL_DUMP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct request r = parse_str(cases[i].line);
        ck_assert_msg(r.cmd == PROTO_CMD_STATS && r.stats == cases[i].kind, "'%s': cmd %d stats %d",
                      cases[i].line, (int)r.cmd, (int)r.stats);
    }
}
END_TEST

START_TEST(test_stats_errors)
{
    ck_reply("stats detail", PROTO_R_CLIENT_ERROR_STATS_DETAIL, false);
    ck_reply("stats detail x", PROTO_R_CLIENT_ERROR_STATS_DETAIL, false);
    ck_reply("stats detail ON", PROTO_R_CLIENT_ERROR_STATS_DETAIL, false);
    ck_error("stats bogus");
    ck_error("stats Items");
    ck_error("statsx");
}
END_TEST

START_TEST(test_shutdown)
{
    struct request r = parse_str("shutdown");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SHUTDOWN);
    ck_assert(!r.graceful);
    ck_assert_int_eq(r.reply, PROTO_R_NONE);
    r = parse_str("shutdown graceful");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SHUTDOWN);
    ck_assert(r.graceful);
    ck_assert_int_eq(r.reply, PROTO_R_NONE);
    /* A bad mode is still a shutdown command: the server first checks that
     * shutdown is enabled, and only then gives the mode error. */
    r = parse_str("shutdown now");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SHUTDOWN);
    ck_assert(!r.graceful);
    ck_assert_int_eq(r.reply, PROTO_R_CLIENT_ERROR_SHUTDOWN_MODE);
    r = parse_str("shutdown graceful now");
    ck_assert_int_eq(r.cmd, PROTO_CMD_SHUTDOWN);
    ck_assert(!r.graceful);
    ck_assert_int_eq(r.reply, PROTO_R_CLIENT_ERROR_SHUTDOWN_MODE);
    ck_error("shutdownx");
}
END_TEST

START_TEST(test_mn_and_meta)
{
    ck_assert_int_eq(parse_str("mn").cmd, PROTO_CMD_MN);
    ck_assert_int_eq(parse_str("mn extra").cmd, PROTO_CMD_MN);
    ck_error("mg k");
    ck_error("ms k 1");
    ck_error("m");
    ck_error("mnx");
}
END_TEST

/* ---------------------------------------------------------------------------
 * Odd lines
 * ------------------------------------------------------------------------- */

START_TEST(test_empty_and_short_lines)
{
    ck_error("");
    ck_error(" ");
    ck_error("     ");
    ck_error("x");
    ck_error("g");
    ck_error("s");
    ck_error("bogus");
    ck_error("xx yy");
}
END_TEST

START_TEST(test_http_closes)
{
    ck_assert_int_eq(parse_str("GET / HTTP/1.1").cmd, PROTO_CMD_CLOSE);
    ck_assert_int_eq(parse_str("POST /x HTTP/1.0").cmd, PROTO_CMD_CLOSE);
    ck_assert_int_eq(parse_str("HEAD / HTTP/").cmd, PROTO_CMD_CLOSE);
    ck_assert_int_eq(parse_str("OPTIONS * HTTP/2").cmd, PROTO_CMD_CLOSE);
    ck_assert_int_eq(parse_str("HTTP/1.1").cmd, PROTO_CMD_CLOSE);
    /* Only the last token counts. */
    ck_error("GET / HTTP");
    ck_error("GET HTTP/1.1 /");
    ck_error("GET / http/1.1");
    /* A known command is that command, whatever follows. */
    char buf[64];
    struct request r = parse_str("get / HTTP/1.1");
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "/ HTTP/1.1");
    ck_reply("delete / HTTP/1.1", PROTO_R_CLIENT_ERROR_DELETE_USAGE, false);
    ck_error("set / HTTP/1.1");
}
END_TEST

START_TEST(test_nul_truncates)
{
    char buf[64];
    struct request r;
    static const char l1[] = "get a\0b";
    proto_parse(l1, sizeof(l1) - 1, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a");

    static const char l2[] = "version\0junk";
    proto_parse(l2, sizeof(l2) - 1, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_VERSION);

    static const char l3[] = "\0get a";
    proto_parse(l3, sizeof(l3) - 1, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_REPLY);
    ck_assert_int_eq(r.reply, PROTO_R_ERROR);

    static const char l4[] = "delete k\0 0 noreply";
    proto_parse(l4, sizeof(l4) - 1, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_DELETE);
    ck_assert(!r.noreply);

    static const char l5[] = "set k 0 0 5\0 noreply";
    proto_parse(l5, sizeof(l5) - 1, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert(!r.noreply);

    static const char l6[] = "set k 0 0\0 5";
    proto_parse(l6, sizeof(l6) - 1, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_REPLY);
    ck_assert_int_eq(r.reply, PROTO_R_ERROR);

    static const char l7[] = "incr k 1\0"
                             "2";
    proto_parse(l7, sizeof(l7) - 1, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_INCR);
    ck_assert_uint_eq(r.delta, 1);
}
END_TEST

/* Only len bytes of the line are used: the parser never reads past it. */
START_TEST(test_parse_respects_length)
{
    struct request r;
    const char *s = "get a b c";
    char buf[64];
    proto_parse(s, 5, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    ck_assert_str_eq(keys_of(&r, buf, sizeof(buf)), "a");

    /* A heap copy without a terminator (ASan checks the bounds). */
    const char *line = "set k 1 2 3 noreply";
    size_t n = strlen(line);
    char *h = malloc(n);
    memcpy(h, line, n);
    proto_parse(h, n, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert(r.noreply);
    proto_parse(h, n - 8, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert(!r.noreply);
    free(h);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Whole lines through both steps
 * ------------------------------------------------------------------------- */

START_TEST(test_line_then_parse)
{
    const char *stream = "set k 1 0 2 noreply\r\nget k\ndelete k\r\n\r\n";
    size_t len = strlen(stream);
    size_t ll, used, off = 0;
    struct request r;

    ck_assert_int_eq(proto_next_line(stream + off, len - off, &ll, &used), PROTO_LINE_OK);
    proto_parse(stream + off, ll, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_SET);
    ck_assert(r.noreply);
    ck_assert_int_eq(r.vlen, 2);
    off += used;

    ck_assert_int_eq(proto_next_line(stream + off, len - off, &ll, &used), PROTO_LINE_OK);
    proto_parse(stream + off, ll, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_GET);
    off += used;

    ck_assert_int_eq(proto_next_line(stream + off, len - off, &ll, &used), PROTO_LINE_OK);
    proto_parse(stream + off, ll, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_DELETE);
    ck_key(r.key, "k");
    off += used;

    ck_assert_int_eq(proto_next_line(stream + off, len - off, &ll, &used), PROTO_LINE_OK);
    proto_parse(stream + off, ll, &r);
    ck_assert_int_eq(r.cmd, PROTO_CMD_REPLY);
    ck_assert_int_eq(r.reply, PROTO_R_ERROR);
    off += used;
    ck_assert_uint_eq(off, len);
}
END_TEST

static Suite *parse_suite(void)
{
    Suite *s = suite_create("parse");
    TCase *tc = tcase_create("lines");
    tcase_add_test(tc, test_line_crlf);
    tcase_add_test(tc, test_line_bare_lf);
    tcase_add_test(tc, test_line_lone_crlf);
    tcase_add_test(tc, test_line_first_of_several);
    tcase_add_test(tc, test_line_need_more);
    tcase_add_test(tc, test_line_too_long_closes);
    tcase_add_test(tc, test_line_long_get_may_grow);
    tcase_add_test(tc, test_line_long_get_after_spaces);
    suite_add_tcase(s, tc);

    tc = tcase_create("tokens");
    tcase_add_test(tc, test_tokenize_single_spaces);
    tcase_add_test(tc, test_tokenize_runs_of_spaces);
    tcase_add_test(tc, test_tokenize_only_spaces_are_separators);
    tcase_add_test(tc, test_tokenize_empty);
    tcase_add_test(tc, test_tokenize_cap);
    tcase_add_test(tc, test_tokenize_small_max);
    tcase_add_test(tc, test_next_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("commands");
    tcase_add_test(tc, test_get);
    tcase_add_test(tc, test_get_many_keys);
    tcase_add_test(tc, test_get_errors);
    tcase_add_test(tc, test_gat);
    tcase_add_test(tc, test_gat_bad_exptime);
    tcase_add_test(tc, test_set);
    tcase_add_test(tc, test_storage_commands_map);
    tcase_add_test(tc, test_storage_token_counts);
    tcase_add_test(tc, test_storage_key_length);
    tcase_add_test(tc, test_storage_flags);
    tcase_add_test(tc, test_storage_exptime);
    tcase_add_test(tc, test_storage_vlen);
    tcase_add_test(tc, test_cas);
    tcase_add_test(tc, test_storage_error_keeps_noreply);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_delete_usage_errors);
    tcase_add_test(tc, test_delete_key_length);
    tcase_add_test(tc, test_arith);
    tcase_add_test(tc, test_touch);
    tcase_add_test(tc, test_flush_all);
    tcase_add_test(tc, test_flush_all_errors);
    tcase_add_test(tc, test_version_quit);
    tcase_add_test(tc, test_verbosity);
    tcase_add_test(tc, test_stats);
    tcase_add_test(tc, test_stats_errors);
    tcase_add_test(tc, test_shutdown);
    tcase_add_test(tc, test_mn_and_meta);
    suite_add_tcase(s, tc);

    tc = tcase_create("odd");
    tcase_add_test(tc, test_empty_and_short_lines);
    tcase_add_test(tc, test_http_closes);
    tcase_add_test(tc, test_nul_truncates);
    tcase_add_test(tc, test_parse_respects_length);
    tcase_add_test(tc, test_line_then_parse);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
