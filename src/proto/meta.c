/*
 * meta.c: the meta command parser (see meta.h).
 *
 * The order of the checks is memcached 1.6.18's, because a line with two
 * problems must get the reply memcached gives:
 *   1. token count (no key: ERROR) and key length (> 250: bad format);
 *   2. ms: no length token: bad format; too many tokens: "too long";
 *   3. ms: the data length (from here on an error means "swallow the data");
 *   4. the flag pre-parse, one pass over the flag tokens: an unknown or
 *      repeated flag stops at once, a bad token is remembered and the loop
 *      goes on, so the last bad token names the error (and F, which sets no
 *      text of its own, leaves the previous one or "bad command line
 *      format"); md and ma answer every pre-parse error with one text;
 *   5. the mode letter (ms, ma), then the opaque length.
 * Tokens are split as memcached's tokenize_command() (proto_tokenize).
 */
#include "meta.h"

#include <limits.h>
#include <string.h>

#include "numparse.h"
#include "parse.h"

/* memcached's MFLAG_MAX_OPT_LENGTH: more tokens (with the terminal one) is
 * "options flags too long". */
#define META_MAX_NTOKENS (META_MAX_TOKENS + 1)

static const signed char b64_value[256] = {
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,  ['H'] = 7,
    ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15,
    ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31,
    ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
    ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
    ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['+'] = 62, ['/'] = 63,
    ['='] = 0,
};

static bool b64_in_alphabet(unsigned char c)
{
    /* 'A' maps to 0 like '=', so membership is tested apart from the value. */
    return c == 'A' || c == '=' || b64_value[c] != 0;
}

size_t meta_base64_decode(const char *src, size_t len, char *out, size_t out_len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (b64_in_alphabet((unsigned char)src[i]))
            count++;
    if (count == 0 || count % 4 != 0 || count / 4 * 3 > out_len)
        return 0;

    unsigned char block[4];
    size_t o = 0, n = 0;
    int pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (!b64_in_alphabet(c))
            continue;
        if (c == '=')
            pad++;
        block[n++] = (unsigned char)b64_value[c];
        if (n < 4)
            continue;
        out[o++] = (char)((block[0] << 2) | (block[1] >> 4));
        out[o++] = (char)((block[1] << 4) | (block[2] >> 2));
        out[o++] = (char)((block[2] << 6) | block[3]);
        n = 0;
        if (pad > 0) {
            /* A padded group ends the input, whatever follows it. */
            if (pad > 2)
                return 0;
            o -= (size_t)pad;
            break;
        }
    }
    return o;
}

/*
 * _meta_flag_preparse(): every flag token from t[first] on. Returns META_OK
 * or the error memcached's loop ends with.
 */
static enum meta_err preparse(const struct proto_token *t, size_t first, size_t ntok, char *keybuf,
                              size_t keybuf_len, struct meta_request *req)
{
    bool seen[128] = {false};
    bool failed = false;
    enum meta_err err = META_ERR_BAD_FORMAT; /* memcached's default errstr */
    for (size_t i = first; i < ntok; i++) {
        const char *arg = t[i].s + 1;
        size_t narg = t[i].n - 1;
        unsigned char c = (unsigned char)t[i].s[0];
        /* memcached indexes a 127-entry table: 127 and up count as seen. */
        if (c >= 127 || seen[c])
            return META_ERR_DUPLICATE_FLAG;
        seen[c] = true;
        if (strchr(META_FLAGS_KNOWN, c) == NULL || c == '\0')
            return META_ERR_INVALID_FLAG;
        req->present |= META_FLAG(c);
        bool ok = true;
        switch (c) {
        case 'b': {
            /* memcached decodes in place, so the output may not exceed the
             * encoded length; it never does for valid input. */
            size_t cap = req->key_raw.n < keybuf_len ? req->key_raw.n : keybuf_len;
            size_t n = meta_base64_decode(req->key_raw.s, req->key_raw.n, keybuf, cap);
            if (n == 0) {
                err = META_ERR_KEY_DECODE;
                failed = true;
            } else {
                req->key.s = keybuf;
                req->key.n = n;
                req->key_binary = true;
            }
            break;
        }
        case 'T':
            ok = tc_strtol32(arg, narg, &req->ttl);
            break;
        case 'N':
            ok = tc_strtol32(arg, narg, &req->vivify_ttl);
            break;
        case 'R':
            ok = tc_strtol32(arg, narg, &req->recache_ttl);
            break;
        case 'C':
            ok = tc_strtoull(arg, narg, &req->compare_cas);
            break;
        case 'F':
            /* memcached sets no text for F: the last one set, or the default. */
            if (!tc_strtoul32(arg, narg, &req->client_flags))
                failed = true;
            break;
        case 'M':
            if (t[i].n != 2) {
                err = META_ERR_M_LENGTH;
                failed = true;
            } else {
                req->mode = arg[0];
            }
            break;
        case 'J':
            if (!tc_strtoull(arg, narg, &req->initial)) {
                err = META_ERR_BAD_INITIAL;
                failed = true;
            }
            break;
        case 'D':
            if (!tc_strtoull(arg, narg, &req->delta)) {
                err = META_ERR_BAD_DELTA;
                failed = true;
            }
            break;
        case 'O':
            req->opaque.s = arg;
            req->opaque.n = narg;
            break;
        default: /* flags without a token; only the presence bit matters */
            break;
        }
        if (!ok) {
            err = META_ERR_BAD_TOKEN;
            failed = true;
        }
    }
    return failed ? err : META_OK;
}

static bool cmd_of(const struct proto_token *t, enum meta_cmd *cmd)
{
    static const struct {
        char name[3];
        enum meta_cmd cmd;
    } cmds[] = {
        {"mg", META_CMD_MG}, {"ms", META_CMD_MS}, {"md", META_CMD_MD},
        {"ma", META_CMD_MA}, {"mn", META_CMD_MN}, {"me", META_CMD_ME},
    };
    if (t->s == NULL || t->n != 2)
        return false;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (memcmp(t->s, cmds[i].name, 2) == 0) {
            *cmd = cmds[i].cmd;
            return true;
        }
    }
    return false;
}

/* process_meta_command(): only a "b" third token means anything. */
static void parse_me(const struct proto_token *t, size_t nt, char *keybuf, size_t keybuf_len,
                     struct meta_request *req)
{
    if (nt < 3 || t[1].n > PROTO_KEY_MAX) {
        req->err = META_ERR_BAD_FORMAT;
        return;
    }
    req->key_raw = req->key = t[1];
    if (nt >= 4 && t[2].n == 1 && t[2].s[0] == 'b') {
        size_t cap = t[1].n < keybuf_len ? t[1].n : keybuf_len;
        size_t n = meta_base64_decode(t[1].s, t[1].n, keybuf, cap);
        if (n == 0) {
            /* me words a bad key as a bad line, unlike mg. */
            req->err = META_ERR_BAD_FORMAT;
            return;
        }
        req->key.s = keybuf;
        req->key.n = n;
        req->key_binary = true;
    }
}

/* The checks after the pre-parse: the mode letter, then the opaque length. */
static enum meta_err check_mode_opaque(const struct meta_request *req)
{
    if (req->cmd == META_CMD_MS && req->mode != 0 && strchr("EAPRS", req->mode) == NULL)
        return META_ERR_MS_MODE;
    if (req->cmd == META_CMD_MA && req->mode != 0 && strchr("I+D-", req->mode) == NULL)
        return META_ERR_MA_MODE;
    if ((req->present & META_FLAG('O')) && req->opaque.n + 1 > META_OPAQUE_MAX)
        return META_ERR_OPAQUE_TOO_LONG;
    return META_OK;
}

bool meta_parse(const char *line, size_t len, char *keybuf, size_t keybuf_len,
                struct meta_request *req)
{
    /* Most lines are classic commands: turn them away before tokenizing. */
    size_t lead = 0;
    while (lead < len && line[lead] == ' ')
        lead++;
    if (len - lead < 2 || line[lead] != 'm')
        return false;

    const char *nul = memchr(line, '\0', len);
    if (nul != NULL)
        len = (size_t)(nul - line);

    struct proto_token t[PROTO_MAX_TOKENS];
    size_t nt = proto_tokenize(line, len, t, PROTO_MAX_TOKENS);
    enum meta_cmd cmd;
    if (!cmd_of(&t[0], &cmd))
        return false;

    memset(req, 0, sizeof(*req));
    req->cmd = cmd;
    req->delta = 1;
    req->flags = req->flags_end = line + len;
    if (cmd == META_CMD_MN)
        return true;
    if (cmd == META_CMD_ME) {
        parse_me(t, nt, keybuf, keybuf_len, req);
        return true;
    }

    if (nt < 3) {
        req->err = META_ERR_ERROR;
        return true;
    }
    req->key_raw = req->key = t[1];
    if (t[1].n > PROTO_KEY_MAX || (cmd == META_CMD_MS && nt == 3)) {
        req->err = META_ERR_BAD_FORMAT;
        return true;
    }
    if (nt > META_MAX_NTOKENS) {
        req->err = cmd == META_CMD_MG ? META_ERR_FLAGS_TOO_LONG : META_ERR_FLAGS_TOO_LONG2;
        return true;
    }
    /* From here on every token but the terminal one is a real token. */
    size_t first = 2;
    if (cmd == META_CMD_MS) {
        int32_t vlen;
        if (!tc_strtol32(t[2].s, t[2].n, &vlen) || vlen < 0 || vlen > INT_MAX - 2) {
            req->err = META_ERR_BAD_FORMAT;
            return true;
        }
        req->vlen = (uint32_t)vlen;
        first = 3;
    }
    if (first < nt - 1)
        req->flags = t[first].s;

    enum meta_err err = preparse(t, first, nt - 1, keybuf, keybuf_len, req);
    if (err != META_OK && (cmd == META_CMD_MD || cmd == META_CMD_MA))
        err = META_ERR_INVALID_OR_DUP;
    if (err == META_OK)
        err = check_mode_opaque(req);
    req->err = err;
    req->swallow = err != META_OK && cmd == META_CMD_MS;
    return true;
}

size_t meta_base64_encode(const char *src, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}
