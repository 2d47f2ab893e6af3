/*
 * metadump.h: the `lru_crawler` commands, and `lru_crawler metadump`'s
 * streamed listing of every live key of both tiers (src/server/metadump.c).
 */
#ifndef TC_SERVER_METADUMP_H
#define TC_SERVER_METADUMP_H

#include "parse.h"

struct conn;

/*
 * Answer a parsed lru_crawler command on the connection's worker thread: a
 * fixed reply, or for metadump a stream (conn_stream) that lists the keys
 * and ends with "END". Never fails: out of memory closes the connection.
 */
void metadump_command(struct conn *c, const struct proto_lru *lru);

#endif
