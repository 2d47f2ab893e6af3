/*
 * meta_cmd.h: memcached's meta commands (mg, ms, md, ma, mn, me) run
 * against the engine, their replies byte for byte as memcached 1.6.18
 * writes them. The line is parsed by meta_parse() (src/proto/meta.h).
 *
 * Called on the connection's worker thread only.
 */
#ifndef TC_SERVER_META_CMD_H
#define TC_SERVER_META_CMD_H

#include <stdbool.h>

#include <tiercache/engine.h>

#include "meta.h"

struct conn;

/*
 * What an ms needs once its data has been read: the reply's code depends on
 * the store, its flags (O, k, c) come from the command line, which is gone
 * by then. One per connection (conn_meta_set()).
 */
struct meta_set {
    enum cache_store_op op;
    uint64_t cas;
    bool invalidate, key_binary, quiet;
    size_t nret;
    char
        ret[META_MAX_TOKENS * (META_OPAQUE_MAX + 1)]; /* "O..." tokens, 'k', 'c', space separated */
};

/*
 * Run one parsed meta command. Returns false when it must be run again
 * later (the engine was busy; nothing was answered), as process_request().
 */
bool process_meta(struct conn *c, const struct meta_request *req);

/* An ms's data has been read (see process_value_read()). */
bool process_meta_value_read(struct conn *c, struct item *it, const struct meta_set *ms,
                             bool valid);

#endif
