/*
 * request.h: a parsed text-protocol command (struct request) and the replies
 * the protocol can give (enum proto_reply).
 *
 * A request points into the caller's buffer (tokens are not copied): it is
 * valid as long as the command line it was parsed from.
 */
#ifndef TC_PROTO_REQUEST_H
#define TC_PROTO_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_TOKENS          24 /* memcached's MAX_TOKENS: 23 tokens and a terminal one */
#define PROTO_KEY_MAX             250
#define PROTO_LINE_MAX_NO_NEWLINE 2048 /* memcached closes a non-get line this long */

struct proto_token {
    const char *s; /* NULL for the terminal token when the line was fully split */
    size_t n;
};

enum proto_cmd {
    PROTO_CMD_NONE = 0,
    PROTO_CMD_GET,
    PROTO_CMD_GETS,
    PROTO_CMD_GAT,
    PROTO_CMD_GATS,
    PROTO_CMD_SET,
    PROTO_CMD_ADD,
    PROTO_CMD_REPLACE,
    PROTO_CMD_APPEND,
    PROTO_CMD_PREPEND,
    PROTO_CMD_CAS,
    PROTO_CMD_DELETE,
    PROTO_CMD_INCR,
    PROTO_CMD_DECR,
    PROTO_CMD_TOUCH,
    PROTO_CMD_FLUSH_ALL,
    PROTO_CMD_VERSION,
    PROTO_CMD_VERBOSITY,
    PROTO_CMD_QUIT,
    PROTO_CMD_SHUTDOWN,
    PROTO_CMD_STATS,
    PROTO_CMD_MN,
    PROTO_CMD_REPLY, /* nothing to do but send req->reply (errors, fixed answers) */
    PROTO_CMD_CLOSE, /* close the connection without a reply (memcached does for HTTP) */
};

/* Every reply that is a fixed line. The texts live in compose.c. */
enum proto_reply {
    PROTO_R_NONE = 0,
    PROTO_R_STORED,
    PROTO_R_NOT_STORED,
    PROTO_R_EXISTS,
    PROTO_R_NOT_FOUND,
    PROTO_R_DELETED,
    PROTO_R_TOUCHED,
    PROTO_R_OK,
    PROTO_R_END,
    PROTO_R_RESET,
    PROTO_R_MN,
    PROTO_R_ERROR,
    PROTO_R_CLIENT_ERROR_FORMAT,
    PROTO_R_CLIENT_ERROR_BAD_COMMAND_LINE,
    PROTO_R_CLIENT_ERROR_DATA_CHUNK,
    PROTO_R_CLIENT_ERROR_EXPTIME,
    PROTO_R_CLIENT_ERROR_DELTA,
    PROTO_R_CLIENT_ERROR_NON_NUMERIC,
    PROTO_R_CLIENT_ERROR_DELETE_USAGE,
    PROTO_R_CLIENT_ERROR_SHUTDOWN_MODE,
    PROTO_R_CLIENT_ERROR_STATS_DETAIL,
    PROTO_R_ERROR_SHUTDOWN_DISABLED,
    PROTO_R_SERVER_ERROR_TOO_LARGE,
    PROTO_R_SERVER_ERROR_OOM_STORE,
    PROTO_R_SERVER_ERROR_OOM,
    PROTO_R_SERVER_ERROR_LINE_TOO_LONG,
    PROTO_R_SERVER_ERROR_OOM_GET,  /* a get's reply cannot be built (too many keys) */
    PROTO_R_SERVER_ERROR_OOM_READ, /* a command line too long to buffer (then close) */
    PROTO_R_COUNT
};

enum proto_stats_kind {
    PROTO_STATS_GENERAL,
    PROTO_STATS_RESET,
    PROTO_STATS_SETTINGS,
    PROTO_STATS_ITEMS,
    PROTO_STATS_SLABS,
    PROTO_STATS_SIZES,
    PROTO_STATS_CONNS,
    PROTO_STATS_TIERS,
    PROTO_STATS_DETAIL_ON,
    PROTO_STATS_DETAIL_OFF,
    PROTO_STATS_DETAIL_DUMP,
};

struct request {
    enum proto_cmd cmd;
    enum proto_reply reply; /* PROTO_CMD_REPLY: what to answer */
    bool noreply;           /* suppress this command's reply, errors included */

    struct proto_token key; /* single-key commands */

    /* get/gets/gat/gats: the keys are the space-separated tokens of
     * [keys, keys_end); iterate with proto_next_key(). */
    const char *keys;
    const char *keys_end;

    uint32_t flags;  /* storage */
    int32_t exptime; /* storage, touch, gat, flush_all delay */
    int32_t vlen;    /* storage: value length (without "\r\n") */
    uint64_t cas;    /* cas */
    uint64_t delta;  /* incr/decr */
    uint32_t level;  /* verbosity */
    bool has_delay;  /* flush_all with a delay argument */
    bool graceful;   /* shutdown graceful */
    enum proto_stats_kind stats;
};

#endif
