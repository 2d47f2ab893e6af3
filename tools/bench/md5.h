/*
 * md5.h: MD5 (RFC 1321), one-shot, for ketama key distribution (dist.c).
 *
 * Ketama (libmemcached, twemproxy) hashes server names and keys with MD5;
 * the bench needs the same digests to send a key where they send it. Not
 * for anything that needs a secure hash. Thread-safe (no state).
 */
#ifndef TC_BENCH_MD5_H
#define TC_BENCH_MD5_H

#include <stddef.h>
#include <stdint.h>

/* The 16-byte MD5 digest of data[0..len) into out. */
void md5_digest(const void *data, size_t len, uint8_t out[16]);

#endif
