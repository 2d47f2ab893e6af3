/*
 * fuzz_parse.c: libFuzzer target for the classic text-protocol parser
 * (src/proto/parse.h).
 *
 * The input is what a client sends on one connection. It is cut into lines
 * with proto_next_line() as src/server/conn.c's serve() cuts them; each line
 * goes to proto_parse_lru() and, if that declines it, to proto_parse(); a
 * storage command's data block (vlen bytes and "\r\n") is then skipped as
 * the server reads it. Meta commands (mg, ms, ...) are fuzz_meta's.
 *
 * Each line is parsed from its own heap copy of exactly its length, so ASan
 * reports any read past the line. Checked besides memory safety: the
 * promises of parse.h and request.h, listed at each check below.
 */
#include <limits.h>

#include "fuzz.h"
#include "parse.h"

/* proto_next_line(): a line ends at the first '\n' and drops one '\r'. */
static void check_line(const char *buf, size_t len, enum proto_line st, size_t line_len,
                       size_t consumed)
{
    const char *nl = memchr(buf, '\n', len);
    if (st != PROTO_LINE_OK) {
        FUZZ_CHECK(st == PROTO_LINE_NEED_MORE || st == PROTO_LINE_CLOSE);
        FUZZ_CHECK(nl == NULL);
        FUZZ_CHECK(st != PROTO_LINE_CLOSE || len > PROTO_LINE_MAX_NO_NEWLINE);
        return;
    }
    FUZZ_CHECK(nl != NULL && consumed == (size_t)(nl - buf) + 1 && consumed <= len);
    FUZZ_CHECK(line_len == consumed - 1 || (line_len == consumed - 2 && buf[line_len] == '\r'));
}

/* A key token: 1..250 bytes inside the line, no space, before any NUL. */
static void check_key(const struct proto_token *k, const char *line, size_t len, size_t max)
{
    FUZZ_CHECK(k->s != NULL && k->n >= 1 && k->n <= max);
    FUZZ_CHECK(FUZZ_INSIDE(k->s, k->n, line, line + len));
    FUZZ_CHECK(memchr(k->s, ' ', k->n) == NULL && memchr(k->s, '\0', k->n) == NULL);
}

/* The parse of one line; len stops at the first NUL, as the parser's does. */
static void check_request(const struct request *req, const char *line, size_t len)
{
    FUZZ_CHECK(req->cmd <= PROTO_CMD_CLOSE);
    FUZZ_CHECK(req->reply < PROTO_R_COUNT);
    FUZZ_CHECK(req->cmd != PROTO_CMD_REPLY || req->reply != PROTO_R_NONE);
    FUZZ_CHECK(req->stats <= PROTO_STATS_DETAIL_DUMP);
    /* "noreply" is only ever a token of the line. */
    FUZZ_CHECK(!req->noreply || memmem(line, len, "noreply", 7) != NULL);

    switch (req->cmd) {
    case PROTO_CMD_SET:
    case PROTO_CMD_ADD:
    case PROTO_CMD_REPLACE:
    case PROTO_CMD_APPEND:
    case PROTO_CMD_PREPEND:
    case PROTO_CMD_CAS:
        FUZZ_CHECK(req->vlen >= 0 && req->vlen <= INT_MAX - 2);
        /* fall through */
    case PROTO_CMD_DELETE:
    case PROTO_CMD_INCR:
    case PROTO_CMD_DECR:
    case PROTO_CMD_TOUCH:
        check_key(&req->key, line, len, PROTO_KEY_MAX);
        break;
    case PROTO_CMD_GET:
    case PROTO_CMD_GETS:
    case PROTO_CMD_GAT:
    case PROTO_CMD_GATS: {
        /* [keys, keys_end) inside the line; proto_next_key() walks it in
         * tokens that move forward and end. Keys may exceed 250 bytes
         * (process.c answers those), never the line. */
        FUZZ_CHECK(req->keys >= line && req->keys <= req->keys_end);
        FUZZ_CHECK(req->keys_end <= line + len);
        const char *pos = req->keys, *prev = req->keys;
        struct proto_token key;
        size_t nkeys = 0, span = (size_t)(req->keys_end - req->keys);
        while (proto_next_key(&pos, req->keys_end, &key)) {
            check_key(&key, line, len, len);
            FUZZ_CHECK(key.s >= prev && pos == key.s + key.n && pos <= req->keys_end);
            prev = pos;
            FUZZ_CHECK(++nkeys <= (span + 1) / 2);
        }
        FUZZ_CHECK(pos == req->keys_end);
        break;
    }
    default:
        FUZZ_CHECK(req->key.s == NULL && req->keys == NULL);
        break;
    }
}

/* proto_parse_lru(): its sub-command, reply and class set are consistent. */
static void check_lru(const struct proto_lru *lru, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && line[i] == ' ')
        i++;
    FUZZ_CHECK(len - i >= 11 && memcmp(line + i, "lru_crawler", 11) == 0);
    FUZZ_CHECK(lru->sub <= PROTO_LRU_TOCRAWL && lru->reply < PROTO_LRU_R_COUNT);
    bool classes = lru->sub == PROTO_LRU_CRAWL || lru->sub == PROTO_LRU_METADUMP;
    FUZZ_CHECK((lru->classes & 1) == 0); /* class ids are 1..63 */
    FUZZ_CHECK(classes || (lru->classes == 0 && !lru->all));
    FUZZ_CHECK(lru->reply == PROTO_LRU_R_NONE || lru->classes == 0); /* an error starts nothing */
    FUZZ_CHECK(!lru->all || lru->classes == 0);
    FUZZ_CHECK(lru->sub != PROTO_LRU_SLEEP || lru->reply != PROTO_LRU_R_NONE ||
               lru->value <= 1000000);
}

/* Parse one line as serve() does; returns the bytes of data that follow it
 * (a storage command's value and its "\r\n"), 0 for other lines. */
static size_t parse_line(const char *line, size_t len)
{
    struct proto_lru lru;
    if (proto_parse_lru(line, len, &lru)) {
        check_lru(&lru, line, len);
        return 0;
    }
    struct request req, again;
    proto_parse(line, len, &req);
    const char *nul = memchr(line, '\0', len);
    size_t n = nul != NULL ? (size_t)(nul - line) : len;
    check_request(&req, line, n);
    /* Pure: the same line parses the same, and so does the line cut at
     * its first NUL (memcached's strlen()). Both structs are memset first,
     * so padding compares too. */
    proto_parse(line, n, &again);
    FUZZ_CHECK(memcmp(&req, &again, sizeof(req)) == 0);
    if (req.cmd >= PROTO_CMD_SET && req.cmd <= PROTO_CMD_CAS)
        return (size_t)req.vlen + 2;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;
    while (off < size) {
        size_t line_len = 0, consumed = 0;
        enum proto_line st = proto_next_line(buf + off, size - off, &line_len, &consumed);
        check_line(buf + off, size - off, st, line_len, consumed);
        if (st != PROTO_LINE_OK)
            break; /* need more, or close: the connection waits or ends */
        char *line = fuzz_dup(buf + off, line_len);
        off += consumed;
        size_t skip = parse_line(line, line_len);
        off += skip < size - off ? skip : size - off;
        free(line);
    }
    return 0;
}
