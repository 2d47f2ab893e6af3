/*
 * datadir.h: a stopped tiercached's data dir, read without a server
 * (tiercache-inspect, tiercache-dump --data-dir).
 *
 * Opening takes the data dir's lock the way a server does, shared: while a
 * tiercached holds the dir, opening fails with TC_BUSY (and a server will
 * not start on a dir being read). Nothing is ever written: the environment
 * is opened read-only, without LMDB's lock file, and a damaged dir is
 * reported, never moved aside.
 *
 * After a graceful stop the data dir holds every item that was live,
 * RAM's included (the server writes RAM to flash when it stops). After a
 * crash it holds what was on flash at the last sync.
 *
 * Implemented in storage/datadir.c (tc_storage).
 */
#ifndef TIERCACHE_DATADIR_H
#define TIERCACHE_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/dump.h>
#include <tiercache/status.h>

struct tc_datadir;

struct tc_datadir_info {
    uint32_t format_version; /* of the data dir (the state record) */
    bool clean;              /* the last stop was clean (graceful) */
    bool deletes_pending;    /* deletes were held at the last stop: a server drops the data */
    uint64_t items, bytes;   /* live records and their bytes, per the state record */
    uint64_t cas_high;       /* every CAS the server handed out is below this */
    uint64_t flush_cas;      /* items with a smaller CAS were flushed (flush_all) */
    uint64_t flush_at;       /* a pending delayed flush_all, unix time; 0 if none */
    uint64_t stopped_at;     /* unix time of the last stop (clean), or 0 */
    uint64_t batches;        /* write batches on file */
    uint64_t oldest, newest; /* unix time of the oldest and newest batch; 0 if none */
    uint64_t file_bytes;     /* data file length */
    uint64_t disk_bytes;     /* blocks the data dir's files take on disk */
};

/*
 * Open a data dir read-only. TC_OK; TC_BUSY (a server holds it); TC_NOT_FOUND
 * (no such dir, or no data in it); TC_INVALID (not a tiercache data dir,
 * another format version, or too damaged to open); TC_IO_ERROR. err (may be
 * NULL) gets a one-line reason on failure.
 */
tc_status_e tc_datadir_open(const char *dir, struct tc_datadir **out, char *err, size_t errlen);

void tc_datadir_info(struct tc_datadir *d, struct tc_datadir_info *out);

/* Called for each item; return false to stop the walk. */
typedef bool (*tc_datadir_item_fn)(void *arg, const struct tc_dump_item *it);

/*
 * Every live item: its current record (not superseded by a later one, not
 * deleted), not flushed, not expired as of `now` (unix time), oldest batch
 * first. Expiry is given as absolute unix time (0: never). TC_OK (also
 * when cb stopped the walk), TC_INVALID (a damaged batch: err says which;
 * the items before it were given), TC_IO_ERROR.
 */
tc_status_e tc_datadir_walk(struct tc_datadir *d, uint64_t now, tc_datadir_item_fn cb, void *arg,
                            char *err, size_t errlen);

/* What a full check found. */
struct tc_datadir_check {
    uint64_t batches, records; /* read */
    uint64_t live, superseded; /* records the index points at, and older versions */
    uint64_t bad_batches;      /* wrong magic or checksum */
    uint64_t bad_records;      /* do not parse inside a batch that checks out */
    uint64_t bad_index;        /* index entries pointing at no record of their key */
    char first_problem[256];   /* "" if none */
};

/* Read every batch and record and every index entry, and verify them.
 * TC_OK if the walk could be made (damage is counted in *out, not an
 * error), TC_IO_ERROR. */
tc_status_e tc_datadir_check(struct tc_datadir *d, struct tc_datadir_check *out);

/* Accepts NULL; sets *d to NULL. */
void tc_datadir_close(struct tc_datadir **d);

#endif
