/*
 * mcconn.h: a small memcached client connection for tiercache-dump: a
 * non-blocking TCP socket with an output buffer (requests queued, sent as
 * the socket takes them) and an input buffer (replies read as they come,
 * parsed by the caller from mc_in()).
 *
 * Both directions move in one poll loop, so any number of requests can be
 * in flight: a pipeline never deadlocks on full socket buffers the way a
 * "send everything, then read" client does when the replies are large.
 *
 * Memory: the output buffer holds the queued requests; the input buffer
 * grows to the largest single reply not yet consumed (one value), never
 * to the whole stream. Single-threaded.
 */
#ifndef TC_MCCONN_H
#define TC_MCCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct mc_conn {
    int fd;
    char name[300]; /* "HOST:PORT", for messages */
    char *in;
    size_t in_cap, in_head, in_tail; /* unread: in[in_head, in_tail) */
    char *out;
    size_t out_cap, out_head, out_tail; /* unsent: out[out_head, out_tail) */
    bool eof;                           /* the server closed the connection */
};

/*
 * Connect to `hostport` ("HOST:PORT", "[V6ADDR]:PORT"), waiting at most
 * timeout_ms. Returns 0, or -1 with a one-line reason naming the server in
 * err. On success c must be closed with mc_close().
 */
int mc_connect(struct mc_conn *c, const char *hostport, int timeout_ms, char *err, size_t errlen);

/* Close the socket and free the buffers; accepts a closed connection. */
void mc_close(struct mc_conn *c);

/* Queue bytes to send. 0, or -1 when out of memory. */
int mc_queue(struct mc_conn *c, const void *p, size_t n);

/* Bytes queued and not yet sent. */
size_t mc_unsent(const struct mc_conn *c);

/* Send what the socket takes now. 0, or -1 (err says why). */
int mc_send_some(struct mc_conn *c, char *err, size_t errlen);

/* Read what the socket has now (sets c->eof on a close). Returns the bytes
 * read (0: none available), or -1 (err says why). */
ssize_t mc_recv_some(struct mc_conn *c, char *err, size_t errlen);

/* The unread input: *len bytes at the returned pointer. */
const char *mc_in(const struct mc_conn *c, size_t *len);

/* Mark n bytes of the unread input as consumed. */
void mc_consume(struct mc_conn *c, size_t n);

/*
 * Send `req` and wait (at most timeout_ms) for one reply line, copied
 * without its line end into line (cap bytes, NUL-terminated). For short
 * exchanges before the pipeline starts. 0, or -1 (err says why: timeout,
 * close, error).
 */
int mc_request_line(struct mc_conn *c, const char *req, char *line, size_t cap, int timeout_ms,
                    char *err, size_t errlen);

#endif
