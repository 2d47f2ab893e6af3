/*
 * process.h: the one place that sees both the protocol (struct request,
 * replies) and the engine (engine.h). It runs a parsed command against the
 * engine and composes the reply on the connection.
 *
 * Called on the connection's worker thread only.
 */
#ifndef TC_SERVER_PROCESS_H
#define TC_SERVER_PROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include <tiercache/engine.h>

#include "request.h"

struct conn;

/* The protocol level we answer as (memcached's version, for clients that check). */
#define TC_PROTOCOL_VERSION "1.6.18"

/*
 * Run one command. A storage command leaves the connection reading its
 * value. Returns false when the command must be run again later (the engine
 * was busy, see conn_retry_later()); nothing was answered then.
 */
bool process_request(struct conn *c, const struct request *req);

/*
 * The value of a storage command has been read into `it`. `valid` is false
 * when the value was not followed by "\r\n". Returns true when done (the
 * reference to `it` was dropped), false when the store must be retried
 * later with the same arguments (the caller keeps the reference).
 */
bool process_value_read(struct conn *c, struct item *it, enum cache_store_op op, uint64_t cas,
                        bool noreply, bool valid);

#endif
