/*
 * conn.h: one client connection: its socket, its input buffer, its output
 * buffer and its state (reading a command, reading a value, swallowing a
 * value that cannot be stored).
 *
 * Only the owning worker thread touches a connection. process.c drives the
 * protocol through the functions below; conn.c does the I/O.
 */
#ifndef TC_SERVER_CONN_H
#define TC_SERVER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/engine.h>

#include "request.h"

struct conn;
struct worker;

/* Take over an accepted socket on the worker's thread. Closes fd on failure. */
void conn_create(struct worker *w, int fd);

/* Close every connection of a worker (at shutdown). */
void conn_close_all(struct worker *w);

struct worker *conn_worker(struct conn *c);

/* Append bytes to the output (copied). */
void conn_write(struct conn *c, const void *data, size_t n);

/* Bytes of replies queued since the last commit: those memcached would
 * still hold unsent (it sends after get-family commands and mn). */
size_t conn_pending_output(struct conn *c);

/* Bytes of replies queued and not yet written to the socket, committed or
 * not (what --max-conn-output caps). */
size_t conn_output_queued(struct conn *c);

/* Append a fixed reply line. */
void conn_reply(struct conn *c, enum proto_reply r);

/*
 * Append "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n" for an item and
 * take over the caller's reference (released once the bytes are out).
 */
void conn_write_value(struct conn *c, struct item *it, bool with_cas);

/* Append the header line `hdr` (its "\r\n" included), the item's value and
 * "\r\n" (a meta VA reply); takes over the caller's reference. */
void conn_write_item(struct conn *c, const char *hdr, size_t hn, struct item *it);

/*
 * The replies so far are final: they are sent even if the connection then
 * closes. memcached sends after each get-family command, after mn, and when
 * it runs out of complete commands; replies queued meanwhile are lost if the
 * client disconnects in the middle of a value, and dropped by a multiget
 * with a bad key. We keep the same points, so clients see the same bytes.
 */
void conn_commit(struct conn *c);

/* Drop the replies queued since the last commit (a multiget with a bad key). */
void conn_discard_output(struct conn *c);

/*
 * The next item_nbytes(it) + 2 bytes of input are the value of a storage
 * command: read them into `it`, then call process_value_read(). Takes over
 * the caller's reference to `it`.
 */
void conn_read_value(struct conn *c, struct item *it, enum cache_store_op op, uint64_t cas,
                     bool noreply);

/* As conn_read_value, for an ms: process_meta_value_read() gets the value
 * with the connection's meta_set (conn_meta_set()). */
void conn_read_meta_value(struct conn *c, struct item *it);

/* The connection's pending-ms state (made on first use; NULL if no memory). */
struct meta_set *conn_meta_set(struct conn *c);

/* The next n bytes of input are a value to throw away. */
void conn_swallow(struct conn *c, size_t n);

/*
 * The engine had no room yet (TC_BUSY). Returns true while the command may
 * be retried: the caller returns "not done" and the connection pauses a
 * millisecond, then runs the same command again (input stays unread
 * meanwhile, so the client is slowed, not failed). Returns false after two
 * seconds of retries: the caller answers with an error instead.
 */
bool conn_retry_later(struct conn *c);

/* Close once the output written so far has been sent (quit). */
void conn_close_after_write(struct conn *c);

/* Close without sending anything more. */
void conn_close_now(struct conn *c);

/* For `stats conns`: call emit for each connection of the worker. */
typedef void (*conn_stats_fn)(void *arg, int fd, const char *addr, const char *state,
                              uint32_t idle_secs);
void conn_foreach(struct worker *w, conn_stats_fn emit, void *arg);

/*
 * Streamed replies (lru_crawler metadump): a reply too long to build at
 * once is produced by `step` in slices. While a stream is set the
 * connection neither reads nor runs further commands; whenever its output
 * holds less than a few tens of KiB, it calls step, which appends one slice
 * and says whether it is finished. A client that stops reading therefore
 * stalls only its own stream, and a stream never buffers more than its
 * threshold plus one slice. When step finishes (or the connection closes)
 * `release(arg)` is called once, and the commands that followed the
 * streamed one are served.
 */
enum conn_stream_state {
    CONN_STREAM_MORE,  /* appended a slice; call again */
    CONN_STREAM_YIELD, /* appended a slice; call again after the worker's other connections */
    CONN_STREAM_WAIT,  /* nothing to append yet: call again in a moment */
    CONN_STREAM_DONE,  /* the reply is complete */
};
typedef enum conn_stream_state (*conn_stream_fn)(struct conn *c, void *arg);
void conn_stream(struct conn *c, conn_stream_fn step, void (*release)(void *arg), void *arg);

/*
 * After conn_stream(): call step while the output holds less than `bytes`
 * (instead of a few tens of KiB; SIZE_MAX: whatever it holds). The step
 * itself should stop appending once the output reaches it. A multiget
 * streams with the --max-conn-output cap as its limit.
 */
void conn_stream_set_limit(struct conn *c, size_t bytes);

/*
 * Once a second, on the worker's thread (its timer, see server.c): close
 * the connections that have been idle longer than --idle-timeout, and
 * those whose unsent output has reached --max-conn-output while the client
 * took no byte of it for the stall limit (settings_output_stall_secs()).
 * The exact rules are at the top of conn.c.
 */
void conn_check_timeouts(struct worker *w);

#endif
