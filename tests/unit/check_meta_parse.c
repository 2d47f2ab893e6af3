/*
 * check_meta_parse.c: unit tests for src/proto/meta.c, the meta command
 * parser. Every error expectation is what the real memcached 1.6.18 answered
 * to the same line (the probe script is in docs/META.md; each table row
 * below was sent to it, followed by "mn", and its reply is the comment).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static char keybuf[META_KEYBUF_MIN];

static struct meta_request parse_str(const char *line)
{
    struct meta_request r;
    memset(&r, 0xa5, sizeof(r)); /* meta_parse must set every field */
    ck_assert_msg(meta_parse(line, strlen(line), keybuf, sizeof(keybuf), &r), "'%s' not meta",
                  line);
    return r;
}

/* The reply text of each error, exactly as memcached 1.6.18 sends it. */
static const char *const err_text[META_ERR_COUNT] = {
    [META_OK] = "",
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

/* Check that the line parses to the error whose reply text is `reply`
 * ("" for none) and, for ms, whether the data block is swallowed. */
static void check_row(const char *line, const char *reply, bool swallow, int row)
{
    struct meta_request r = parse_str(line);
    ck_assert_msg(r.err < META_ERR_COUNT, "row %d '%s': err %d out of range", row, line,
                  (int)r.err);
    ck_assert_msg(strcmp(err_text[r.err], reply) == 0, "row %d '%s': got '%s' want '%s'", row, line,
                  err_text[r.err], reply);
    ck_assert_msg(r.swallow == swallow, "row %d '%s': swallow %d want %d", row, line, r.swallow,
                  swallow);
}

#define OK   ""
#define BAD  "CLIENT_ERROR bad command line format\r\n"
#define INV  "CLIENT_ERROR invalid flag\r\n"
#define DUP  "CLIENT_ERROR duplicate flag\r\n"
#define IOD  "CLIENT_ERROR invalid or duplicate flag\r\n"
#define TOK  "CLIENT_ERROR bad token in command line format\r\n"
#define DEL  "CLIENT_ERROR invalid numeric delta value\r\n"
#define INI  "CLIENT_ERROR invalid numeric initial value\r\n"
#define MLEN "CLIENT_ERROR incorrect length for M token\r\n"
#define DEC  "CLIENT_ERROR error decoding key\r\n"
#define OPQ  "CLIENT_ERROR opaque token too long\r\n"

struct row {
    const char *line;
    const char *reply;
    bool swallow;
};

static void check_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_row(rows[i].line, rows[i].reply, rows[i].swallow, (int)i);
}

#define CHECK_ROWS(rows) check_rows(rows, sizeof(rows) / sizeof(rows[0]))

/* ---------------------------------------------------------------------------
 * Commands and token counts
 * ------------------------------------------------------------------------- */

START_TEST(test_not_meta)
{
    const char *lines[] = {"", "get foo", "m", "mgx foo", "MG foo", "mg\tfoo v", " x", "mx foo"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct meta_request r;
        ck_assert_msg(!meta_parse(lines[i], strlen(lines[i]), keybuf, sizeof(keybuf), &r),
                      "'%s' taken as meta", lines[i]);
    }
}
END_TEST

START_TEST(test_commands)
{
    static const struct {
        const char *line;
        enum meta_cmd cmd;
    } cases[] = {
        {"mg foo", META_CMD_MG},  {"ms foo 1", META_CMD_MS}, {"md foo", META_CMD_MD},
        {"ma foo", META_CMD_MA},  {"mn", META_CMD_MN},       {"me foo", META_CMD_ME},
        {" mg foo", META_CMD_MG}, /* leading spaces are skipped by the tokenizer */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct meta_request r = parse_str(cases[i].line);
        ck_assert_int_eq(r.cmd, cases[i].cmd);
        ck_assert_int_eq(r.err, META_OK);
    }
}
END_TEST

START_TEST(test_token_counts)
{
    static const struct row rows[] = {
        {"mg", "ERROR\r\n", false},  /* ERROR */
        {"mg ", "ERROR\r\n", false}, /* ERROR */
        {"md", "ERROR\r\n", false},  /* ERROR */
        {"ma", "ERROR\r\n", false},  /* ERROR */
        {"ms", "ERROR\r\n", false},  /* ERROR */
        {"ms foo", BAD, false},      /* no length */
        {"ms foo ", BAD, false},
        {"me", BAD, false},          /* me words it differently */
        {"mn", OK, false},           /* MN */
        {"mn foo bar", OK, false},   /* MN: mn ignores the rest */
        {"mg foo", OK, false},       /* EN */
        {"md foo", OK, false},       /* NF */
        {"ma foo", OK, false},       /* NF */
        {"me foo x y z", OK, false}, /* EN */
        /* Separators: runs of spaces and trailing spaces are fine, a tab is
         * part of a token. */
        {"mg  foo  v ", OK, false},
        {"ms  foo  1  T1 ", OK, false},
        {"mg foo\tv", OK, false}, /* key "foo\tv" */
    };
    CHECK_ROWS(rows);
}
END_TEST

/* 17 flags after mg's key (20 tokens with the terminal one) is the most. */
START_TEST(test_too_many_tokens)
{
    const char *f17 = " b c f h k l q s t u v I L O P T1 N1";
    const char *f16 = " c f h k l q s t u v I L O P T1 N1";
    char line[512];
    snprintf(line, sizeof(line), "mg Zm9v%s", f17);
    check_row(line, OK, false, 0);
    snprintf(line, sizeof(line), "mg Zm9v%s R1", f17);
    check_row(line, "CLIENT_ERROR options flags are too long\r\n", false, 1);
    snprintf(line, sizeof(line), "md Zm9v%s R1", f17);
    check_row(line, "CLIENT_ERROR options flags too long\r\n", false, 2);
    snprintf(line, sizeof(line), "ma Zm9v%s R1", f17);
    check_row(line, "CLIENT_ERROR options flags too long\r\n", false, 3);
    snprintf(line, sizeof(line), "ms Zm9v 1%s", f16);
    check_row(line, OK, false, 4);
    /* Too long is found before the length: the data is not swallowed. */
    snprintf(line, sizeof(line), "ms Zm9v 1%s R1", f16);
    check_row(line, "CLIENT_ERROR options flags too long\r\n", false, 5);
    snprintf(line, sizeof(line), "ms Zm9v x%s R1", f16);
    check_row(line, "CLIENT_ERROR options flags too long\r\n", false, 6);
    /* Far more tokens than the tokenizer splits. */
    snprintf(line, sizeof(line), "mg foo%s%s%s", f17, f17, f17);
    check_row(line, "CLIENT_ERROR options flags are too long\r\n", false, 7);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------------- */

START_TEST(test_key_length)
{
    char k250[251], line[600];
    memset(k250, 'a', 250);
    k250[250] = '\0';
    const char *fmt[] = {"mg %s%s v", "md %s%s", "ma %s%s", "me %s%s", "ms %s%s 1"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(line, sizeof(line), fmt[i], k250, "");
        struct meta_request r = parse_str(line);
        ck_assert_int_eq(r.err, META_OK);
        ck_assert_uint_eq(r.key.n, 250);
        ck_assert_ptr_eq(r.key.s, line + 3);
        snprintf(line, sizeof(line), fmt[i], k250, "a");
        check_row(line, BAD, false, (int)i);
    }
    /* The key is checked before the flag count and the length. */
    snprintf(line, sizeof(line), "mg %sa %s", k250, "b c f h k l q s t u v I L O P T1 N1 R1");
    check_row(line, BAD, false, 10);
    snprintf(line, sizeof(line), "ms %sa x", k250);
    check_row(line, BAD, false, 11);
}
END_TEST

START_TEST(test_key_bytes)
{
    /* memcached checks nothing but length: control bytes are key bytes, and
     * the line ends at a NUL. */
    static const char line[] = "mg fo\x01o v";
    struct meta_request r = parse_str(line);
    ck_assert_int_eq(r.err, META_OK);
    ck_assert_uint_eq(r.key.n, 4);
    ck_assert_mem_eq(r.key.s, "fo\x01o", 4);

    static const char nul[] = "mg foo\0 x";
    ck_assert(meta_parse(nul, sizeof(nul) - 1, keybuf, sizeof(keybuf), &r));
    ck_assert_int_eq(r.err, META_OK);
    ck_assert_uint_eq(r.key.n, 3);
    ck_assert_uint_eq(r.present, 0);
}
END_TEST

START_TEST(test_base64)
{
    static const struct {
        const char *line;
        const char *key; /* decoded, NULL: decode error */
        size_t n;
    } cases[] = {
        {"mg Zm9v b", "foo", 3},        {"mg Zg== b", "f", 1},       {"mg Zm8= b", "fo", 2},
        {"mg Zm8gbw== b", "fo o", 4}, /* a space inside a binary key is fine */
        {"mg AAo= b", "\0\n", 2},       {"mg Zm9v!!!! b", "foo", 3}, /* non-alphabet bytes are
                                                                        skipped */
        {"mg Z=9v b", "d\x0f", 2}, /* '=' counts as a zero digit until the group ends */
        {"mg Zm9vZm9v b", "foofoo", 6}, {"mg Zg==Zm9v b", "f", 1}, /* a padded group ends the key */
        {"mg Zm9v bxyz", "foo", 3}, /* only the first letter of a flag counts */
        {"mg foo b", NULL, 0},      /* 3 digits */
        {"mg Zg b", NULL, 0},           {"mg Zg= b", NULL, 0},       {"mg Zm9v= b", NULL, 0},
        {"mg Zm9vYg b", NULL, 0},       {"mg ==== b", NULL, 0}, /* 4 pads */
        {"mg Z=== b", NULL, 0},                                 /* 3 pads */
        {"mg !!!! b", NULL, 0},                                 /* nothing to decode */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct meta_request r = parse_str(cases[i].line);
        if (cases[i].key == NULL) {
            ck_assert_msg(r.err == META_ERR_KEY_DECODE, "'%s': err %d", cases[i].line, r.err);
            continue;
        }
        ck_assert_msg(r.err == META_OK, "'%s': err %d", cases[i].line, r.err);
        ck_assert(r.key_binary);
        ck_assert_ptr_eq(r.key.s, keybuf);
        ck_assert_uint_eq(r.key.n, cases[i].n);
        ck_assert_mem_eq(r.key.s, cases[i].key, cases[i].n);
        ck_assert_uint_eq(r.key_raw.n, strcspn(cases[i].line + 3, " "));
    }
    static const struct row rows[] = {
        {"ms foo 2 b", DEC, true}, /* swallowed */
        {"md foo b", IOD, false},  {"ma foo b", IOD, false},    {"md Zm9v b", OK, false},
        {"me Zm9v b", OK, false},  {"me foo b", BAD, false}, /* me: a bad key is a bad line */
        {"me foo bb", OK, false},                            /* only a lone "b" asks for base64 */
        {"me foo  b", BAD, false}, {"mg Zm9v b b", DUP, false},
    };
    CHECK_ROWS(rows);

    /* A 250-byte base64 key is allowed and decodes to 186 bytes. */
    char line[300];
    strcpy(line, "mg ");
    for (size_t i = 0; i < 248; i++)
        line[3 + i] = "QUJD"[i % 4];
    strcpy(line + 3 + 248, "!! b"); /* 250 bytes, 248 of them digits */
    struct meta_request r = parse_str(line);
    ck_assert_int_eq(r.err, META_OK);
    ck_assert_uint_eq(r.key.n, 186);
}
END_TEST

START_TEST(test_base64_encode)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"", 0, ""},
        {"f", 1, "Zg=="},
        {"fo", 2, "Zm8="},
        {"foo", 3, "Zm9v"},
        {"\0\n", 2, "AAo="},
        {"\xff\xfe\xfd", 3, "//79"},
        {"foobar", 6, "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16], back[16];
        size_t n = meta_base64_encode(cases[i].in, cases[i].n, out);
        ck_assert_uint_eq(n, META_BASE64_LEN(cases[i].n));
        ck_assert_uint_eq(n, strlen(cases[i].out));
        ck_assert_mem_eq(out, cases[i].out, n);
        if (n > 0) /* and memcached's decoder takes it back */
            ck_assert_uint_eq(meta_base64_decode(out, n, back, sizeof(back)), cases[i].n);
    }
    /* The longest binary key (186 bytes) encodes within 250. */
    char key[186], out[META_BASE64_LEN(186)];
    memset(key, 0xA5, sizeof(key));
    ck_assert_uint_le(meta_base64_encode(key, sizeof(key), out), 250);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Flags
 * ------------------------------------------------------------------------- */

/* Every letter and a few other bytes, alone, for each command: the known
 * set is the same for all four (memcached 1.6.18, see docs/META.md). */
START_TEST(test_each_flag_alone)
{
    const char *cmds[] = {"mg", "md", "ma", "ms"};
    for (size_t ci = 0; ci < 4; ci++) {
        for (int c = 1; c < 256; c++) {
            if (c == ' ')
                continue;
            char line[64];
            if (ci == 3)
                snprintf(line, sizeof(line), "ms Zm9v 1 %c", c);
            else
                snprintf(line, sizeof(line), "%s Zm9v %c", cmds[ci], c);
            struct meta_request r = parse_str(line);
            bool known = strchr(META_FLAGS_KNOWN, c) != NULL;
            /* Flags that need a number fail with nothing after them. */
            bool needs_token = strchr("CDFJMNRT", c) != NULL;
            enum meta_err want;
            if (c >= 127)
                want = META_ERR_DUPLICATE_FLAG;
            else if (!known)
                want = META_ERR_INVALID_FLAG;
            else if (!needs_token)
                want = META_OK;
            else if (c == 'D')
                want = META_ERR_BAD_DELTA;
            else if (c == 'J')
                want = META_ERR_BAD_INITIAL;
            else if (c == 'M')
                want = META_ERR_M_LENGTH;
            else if (c == 'F')
                want = META_ERR_BAD_FORMAT;
            else
                want = META_ERR_BAD_TOKEN;
            if (want != META_OK && (ci == 1 || ci == 2))
                want = META_ERR_INVALID_OR_DUP;
            ck_assert_msg(r.err == want, "'%s' (0x%02x): err %d want %d", line, c, r.err, want);
            if (want == META_OK)
                ck_assert_uint_eq(r.present, META_FLAG(c));
            ck_assert_int_eq(r.swallow, ci == 3 && want != META_OK);
        }
    }
}
END_TEST

START_TEST(test_flag_values)
{
    struct meta_request r = parse_str("mg foo T30 N-5 R+7 C18446744073709551615 F4294967295 "
                                      "D18446744073709551615 J42 MX Oabc k v q");
    ck_assert_int_eq(r.err, META_OK);
    ck_assert_int_eq(r.ttl, 30);
    ck_assert_int_eq(r.vivify_ttl, -5);
    ck_assert_int_eq(r.recache_ttl, 7);
    ck_assert_uint_eq(r.compare_cas, UINT64_MAX);
    ck_assert_uint_eq(r.client_flags, UINT32_MAX);
    ck_assert_uint_eq(r.delta, UINT64_MAX);
    ck_assert_uint_eq(r.initial, 42);
    ck_assert_int_eq(r.mode, 'X'); /* mg takes any mode letter */
    ck_assert_uint_eq(r.opaque.n, 3);
    ck_assert_mem_eq(r.opaque.s, "abc", 3);
    ck_assert_uint_eq(r.present, META_FLAG('T') | META_FLAG('N') | META_FLAG('R') | META_FLAG('C') |
                                     META_FLAG('F') | META_FLAG('D') | META_FLAG('J') |
                                     META_FLAG('M') | META_FLAG('O') | META_FLAG('k') |
                                     META_FLAG('v') | META_FLAG('q'));
    ck_assert_ptr_nonnull(strstr(r.flags, "T30 "));
    ck_assert_uint_eq((size_t)(r.flags_end - r.flags), strlen(r.flags));

    r = parse_str("ma foo");
    ck_assert_uint_eq(r.delta, 1); /* the defaults */
    ck_assert_uint_eq(r.initial, 0);
    ck_assert_int_eq(r.mode, 0);
    ck_assert_ptr_eq(r.flags, r.flags_end);

    r = parse_str("ms foo 5 T0 F+7");
    ck_assert_int_eq(r.err, META_OK);
    ck_assert_uint_eq(r.vlen, 5);
    ck_assert_uint_eq(r.client_flags, 7);
    ck_assert_uint_eq(r.present, META_FLAG('T') | META_FLAG('F'));
    ck_assert_ptr_nonnull(r.flags);
    ck_assert_str_eq(r.flags, "T0 F+7");

    /* memcached's number quirks: a tab ends the number, 32-bit flags keep
     * the low bits, T takes the low 32 bits of a 64-bit number. */
    r = parse_str("mg foo T5\tx F4294967297 N2147483648 R-2147483649 C-0 D-18446744073709551615");
    ck_assert_int_eq(r.err, META_OK);
    ck_assert_int_eq(r.ttl, 5);
    ck_assert_uint_eq(r.client_flags, 1);
    ck_assert_int_eq(r.vivify_ttl, INT32_MIN);
    ck_assert_int_eq(r.recache_ttl, INT32_MAX);
    ck_assert_uint_eq(r.compare_cas, 0);
    ck_assert_uint_eq(r.delta, 1);

    r = parse_str("mg foo O");
    ck_assert_int_eq(r.err, META_OK); /* an empty opaque is echoed as "O" */
    ck_assert_uint_eq(r.opaque.n, 0);
    ck_assert(r.present & META_FLAG('O'));
}
END_TEST

START_TEST(test_numbers)
{
    static const struct row rows[] = {
        {"mg foo T2147483647", OK, false},
        {"mg foo T2147483648", OK, false},
        {"mg foo T-2147483649", OK, false},
        {"mg foo T99999999999999999999", TOK, false},
        {"mg foo N99999999999999999999", TOK, false},
        {"mg foo R0x10", TOK, false},
        {"mg foo T010", OK, false},
        {"mg foo Ttt5", TOK, false},
        {"mg foo T+5", OK, false},
        {"mg foo T 5", INV, false}, /* "5" is a flag */
        {"mg foo C18446744073709551615", OK, false},
        {"mg foo C18446744073709551616", TOK, false},
        {"mg foo C-1", TOK, false},
        {"mg foo D18446744073709551616", DEL, false},
        {"mg foo D-1", DEL, false},
        {"mg foo J18446744073709551616", INI, false},
        {"mg foo J-1", INI, false},
        {"mg foo F18446744073709551616", BAD, false},
        {"mg foo F-1", BAD, false},
        {"mg foo F4294967296", OK, false},
        {"mg foo F-18446744073709551615", OK, false},
        {"ma foo D18446744073709551616", IOD, false},
        {"ma foo Jx", IOD, false},
    };
    CHECK_ROWS(rows);
}
END_TEST

START_TEST(test_flag_errors)
{
    static const struct row rows[] = {
        {"mg foo v v", DUP, false},
        {"mg foo O1 O2", DUP, false},
        {"mg foo x", INV, false},
        {"mg foo E5", INV, false}, /* E (new cas) came after 1.6.18 */
        {"mg foo S2", INV, false},
        {"mg foo \x80", DUP, false}, /* memcached's table has 127 entries */
        {"mg foo \x7f", DUP, false},
        {"mg foo \x01", INV, false},
        {"md foo \x80", IOD, false},
        /* Unknown and repeated flags stop at once; bad tokens do not, so
         * the last bad token names the error, and F sets no text. */
        {"mg foo Tx Q", INV, false},
        {"mg foo Q Tx", INV, false},
        {"mg foo Tx v v", DUP, false},
        {"mg foo Tx Dx", DEL, false},
        {"mg foo Dx Tx", TOK, false},
        {"mg foo Fx", BAD, false},
        {"mg foo Fx Tx", TOK, false},
        {"mg foo Tx Fx", TOK, false},
        {"mg foo Dx Fx", DEL, false},
        {"mg foo b Tx", TOK, false},
        {"mg foo Tx b", DEC, false},
        {"mg foo M", MLEN, false},
        {"mg foo MXY", MLEN, false},
        {"mg foo Mx Tx", TOK, false},
        {"mg foo Tx MXX", MLEN, false},
        {"md foo Tx", IOD, false},
        {"md foo Q", IOD, false},
        {"md foo Tx b", IOD, false},
        {"ma foo Q", IOD, false},
        {"ma foo MXY", IOD, false},
        {"ms foo 1 v v", DUP, true},
        {"ms foo 1 Q", INV, true},
        {"ms foo 2 Tx", TOK, true},
        {"ms foo 1 MXY", MLEN, true},
    };
    CHECK_ROWS(rows);
}
END_TEST

START_TEST(test_modes)
{
    static const struct row rows[] = {
        {"ms foo 1 ME", OK, false},
        {"ms foo 1 MA", OK, false},
        {"ms foo 1 MP", OK, false},
        {"ms foo 1 MR", OK, false},
        {"ms foo 1 MS", OK, false},
        {"ms foo 1 Ms", "CLIENT_ERROR invalid mode for ms M token\r\n", true},
        {"ms foo 1 Me", "CLIENT_ERROR invalid mode for ms M token\r\n", true},
        {"ms foo 1 MI", "CLIENT_ERROR invalid mode for ms M token\r\n", true},
        {"ms foo 1 MX", "CLIENT_ERROR invalid mode for ms M token\r\n", true},
        {"ms Zm9v 1 b MX", "CLIENT_ERROR invalid mode for ms M token\r\n", true},
        {"ms foo 1 MX Tx", TOK, true}, /* the pre-parse comes first */
        {"ma cnt MI", OK, false},
        {"ma cnt M+", OK, false},
        {"ma cnt MD", OK, false},
        {"ma cnt M-", OK, false},
        {"ma foo Mi", "CLIENT_ERROR invalid mode for ma M token\r\n", false},
        {"ma foo Md", "CLIENT_ERROR invalid mode for ma M token\r\n", false},
        {"ma foo MS", "CLIENT_ERROR invalid mode for ma M token\r\n", false},
        {"ma foo MX Tx", IOD, false},
        {"md foo MX", OK, false}, /* md and mg ignore the mode */
        {"mg foo MX", OK, false},
    };
    CHECK_ROWS(rows);
}
END_TEST

START_TEST(test_opaque)
{
    char o31[32], line[128];
    memset(o31, 'o', 31);
    o31[31] = '\0';
    const char *fmt[] = {"mg foo O%s%s", "md foo O%s%s", "ma foo O%s%s", "ms foo 1 O%s%s"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(line, sizeof(line), fmt[i], o31, "");
        struct meta_request r = parse_str(line);
        ck_assert_int_eq(r.err, META_OK);
        ck_assert_uint_eq(r.opaque.n, 31);
        snprintf(line, sizeof(line), fmt[i], o31, "o");
        check_row(line, OPQ, i == 3, (int)i);
    }
    static const struct row rows[] = {
        /* The pre-parse and the mode come before the opaque length. */
        {"mg foo Ooooooooooooooooooooooooooooooooo Q", INV, false},
        {"mg foo Q Ooooooooooooooooooooooooooooooooo", INV, false},
        {"mg foo Ooooooooooooooooooooooooooooooooo Tx", TOK, false},
        {"md foo Ooooooooooooooooooooooooooooooooo Q", IOD, false},
        {"md foo MX Ooooooooooooooooooooooooooooooooo", OPQ, false},
        {"ms foo 1 Q Ooooooooooooooooooooooooooooooooo", INV, true},
        {"ms foo 1 MX Ooooooooooooooooooooooooooooooooo",
         "CLIENT_ERROR invalid mode for ms M token\r\n", true},
        {"ma foo MX Ooooooooooooooooooooooooooooooooo",
         "CLIENT_ERROR invalid mode for ma M token\r\n", false},
    };
    CHECK_ROWS(rows);
}
END_TEST

/* ---------------------------------------------------------------------------
 * ms data length
 * ------------------------------------------------------------------------- */

START_TEST(test_ms_length)
{
    static const struct row rows[] = {
        /* All "bad command line format", none swallowed: memcached reads the
         * data block as the next command ("ERROR"). */
        {"ms foo -1", BAD, false},
        {"ms foo x", BAD, false},
        {"ms foo 1x", BAD, false},
        {"ms foo 2147483646", BAD, false},
        {"ms foo 2147483648", BAD, false},
        {"ms foo x Q", BAD, false},
        {"ms foo +1", OK, false},
        {"ms foo 1\tx", OK, false},
        {"ms foo 0", OK, false},
        {"ms foo 2147483645", OK, false}, /* memcached waits for the data: too large is the engine's
                                             call */
    };
    CHECK_ROWS(rows);
    ck_assert_uint_eq(parse_str("ms foo 2147483645").vlen, 2147483645u);
    ck_assert_uint_eq(parse_str("ms foo +1").vlen, 1);
}
END_TEST

/* No input crashes: every prefix of some nasty lines, under ASan. */
START_TEST(test_prefixes)
{
    const char *lines[] = {
        "ms Zm9v 123 b c f h k l q s t u v I L O P T1 N1 R1 C1 D1",
        "mg Zg==Zm9v b Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx MXY F-1",
        "me Zm9v b b b b b b b b b b b b b b b b b b b b b b b b b b",
        "ma \x80\x81 \xff \x01 D J M N",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        size_t n = strlen(lines[i]);
        for (size_t k = 0; k <= n; k++) {
            char *copy = malloc(k ? k : 1); /* exact size: ASan sees overreads */
            ck_assert_ptr_nonnull(copy);
            memcpy(copy, lines[i], k);
            struct meta_request r;
            char kb[META_KEYBUF_MIN];
            (void)meta_parse(copy, k, kb, sizeof(kb), &r);
            free(copy);
        }
    }
}
END_TEST

static Suite *meta_suite(void)
{
    Suite *s = suite_create("meta_parse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_not_meta);
    tcase_add_test(tc, test_commands);
    tcase_add_test(tc, test_token_counts);
    tcase_add_test(tc, test_too_many_tokens);
    tcase_add_test(tc, test_key_length);
    tcase_add_test(tc, test_key_bytes);
    tcase_add_test(tc, test_base64);
    tcase_add_test(tc, test_base64_encode);
    tcase_add_test(tc, test_each_flag_alone);
    tcase_add_test(tc, test_flag_values);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_flag_errors);
    tcase_add_test(tc, test_modes);
    tcase_add_test(tc, test_opaque);
    tcase_add_test(tc, test_ms_length);
    tcase_add_test(tc, test_prefixes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(meta_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
