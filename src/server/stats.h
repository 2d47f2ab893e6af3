/*
 * stats.h: the `stats` command family: server counters (connections,
 * bytes, threads) and engine statistics, with memcached's names.
 */
#ifndef TC_SERVER_STATS_H
#define TC_SERVER_STATS_H

#include "request.h"

struct conn;

/* Write the reply to `stats [kind]` on the connection (worker thread). */
void stats_write(struct conn *c, enum proto_stats_kind kind);

#endif
