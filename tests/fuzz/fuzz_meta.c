/*
 * fuzz_meta.c: libFuzzer target for the meta-command parser
 * (src/proto/meta.h) and its base64 codec.
 *
 * The input is a client's byte stream, cut into lines with proto_next_line()
 * as src/server/conn.c's serve() does; each line goes to meta_parse() with a
 * key buffer of META_KEYBUF_MIN bytes, as serve() gives it. After an ms line
 * the data block (vlen + 2 bytes) is skipped when the server reads or
 * swallows it; otherwise those bytes are parsed as commands, as memcached
 * does. Lines and key buffers are exact-size heap copies, so ASan sees any
 * read or write past them. Checked besides memory safety: what meta.h
 * promises (see check_request), and that base64 round-trips.
 */
#include <limits.h>

#include "fuzz.h"
#include "meta.h"
#include "parse.h"

/* encode(decode(x)) decodes back to the same bytes: a binary key is echoed
 * ('k' with 'b') with meta_base64_encode and must read back as the key. */
static void check_base64(const char *key, size_t n)
{
    FUZZ_CHECK(n <= META_KEYBUF_MIN);
    char *enc = malloc(META_BASE64_LEN(n));
    size_t ne = meta_base64_encode(key, n, enc);
    FUZZ_CHECK(ne == META_BASE64_LEN(n));
    /* The decoder wants room for 3 bytes per group, padded ones too. */
    char *dec = malloc(ne / 4 * 3);
    size_t nd = meta_base64_decode(enc, ne, dec, ne / 4 * 3);
    FUZZ_CHECK(nd == n && memcmp(dec, key, n) == 0);
    free(enc);
    free(dec);
}

/* Decode raw bytes into an exact-size buffer: never more than out_len. */
static void fuzz_decode(const char *s, size_t n)
{
    size_t cap = n / 4 * 3;
    char *out = malloc(cap);
    size_t nd = meta_base64_decode(s, n, out, cap);
    FUZZ_CHECK(nd <= cap);
    if (nd > 0 && nd <= META_KEYBUF_MIN)
        check_base64(out, nd);
    free(out);
}

static void check_request(const struct meta_request *r, const char *line, size_t len,
                          const char *keybuf)
{
    const char *end = line + len;
    FUZZ_CHECK(r->cmd >= META_CMD_MG && r->cmd <= META_CMD_ME);
    FUZZ_CHECK(r->err < META_ERR_COUNT);
    FUZZ_CHECK(!r->swallow || (r->cmd == META_CMD_MS && r->err != META_OK));
    /* flags..flags_end: the flag tokens, inside the line. */
    FUZZ_CHECK(r->flags >= line && r->flags <= r->flags_end && r->flags_end <= end);
    /* The key: the token on the line, or the decoded bytes in keybuf. */
    if (r->key_raw.s != NULL)
        FUZZ_CHECK(FUZZ_INSIDE(r->key_raw.s, r->key_raw.n, line, end));
    if (r->key_binary) {
        FUZZ_CHECK(r->key.s == keybuf && r->key.n >= 1 && r->key.n <= META_KEYBUF_MIN);
        check_base64(r->key.s, r->key.n);
    } else {
        FUZZ_CHECK(r->key.s == r->key_raw.s && r->key.n == r->key_raw.n);
    }
    /* present: only letters memcached 1.6.18 knows. */
    uint64_t known = 0;
    for (const char *f = META_FLAGS_KNOWN; *f != '\0'; f++)
        known |= META_FLAG(*f);
    FUZZ_CHECK((r->present & ~known) == 0);
    if (r->err != META_OK || r->cmd == META_CMD_MN)
        return;

    /* A request to run: a key of 1..250 bytes on the line, an opaque of at
     * most 31 bytes on the line, a known mode, a sane length. */
    FUZZ_CHECK(r->key_raw.n >= 1 && r->key_raw.n <= PROTO_KEY_MAX);
    if (r->present & META_FLAG('O'))
        FUZZ_CHECK(FUZZ_INSIDE(r->opaque.s, r->opaque.n, line, end) &&
                   r->opaque.n + 1 <= META_OPAQUE_MAX);
    if (r->cmd == META_CMD_MS)
        FUZZ_CHECK(r->vlen <= INT_MAX - 2 && (r->mode == 0 || strchr("EAPRS", r->mode)));
    if (r->cmd == META_CMD_MA)
        FUZZ_CHECK(r->mode == 0 || strchr("I+D-", r->mode));
    /* The flag tokens walk as replies walk them: forward, inside the span. */
    const char *pos = r->flags;
    struct proto_token t;
    while (proto_next_key(&pos, r->flags_end, &t))
        FUZZ_CHECK(FUZZ_INSIDE(t.s, t.n, r->flags, r->flags_end) && t.n >= 1);
}

/* Parse one line as serve() does; returns the data bytes that follow it. */
static size_t parse_line(const char *line, size_t len)
{
    char *keybuf = malloc(META_KEYBUF_MIN);
    struct meta_request req;
    size_t skip = 0;
    if (meta_parse(line, len, keybuf, META_KEYBUF_MIN, &req)) {
        /* Only meta commands are taken: the first token is one of them. */
        size_t i = 0;
        while (i < len && line[i] == ' ')
            i++;
        FUZZ_CHECK(len - i >= 2 && line[i] == 'm' && strchr("gsdane", line[i + 1]) != NULL);
        FUZZ_CHECK(len - i == 2 || line[i + 2] == ' ' || line[i + 2] == '\0');
        check_request(&req, line, len, keybuf);
        if (req.cmd == META_CMD_MS && (req.err == META_OK || req.swallow))
            skip = (size_t)req.vlen + 2;
    }
    free(keybuf);
    fuzz_decode(line, len);
    return skip;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;
    while (off < size) {
        size_t line_len = 0, consumed = 0;
        if (proto_next_line(buf + off, size - off, &line_len, &consumed) != PROTO_LINE_OK)
            break; /* fuzz_parse checks the line splitter itself */
        char *line = fuzz_dup(buf + off, line_len);
        off += consumed;
        size_t skip = parse_line(line, line_len);
        off += skip < size - off ? skip : size - off;
        free(line);
    }
    return 0;
}
