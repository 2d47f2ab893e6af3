/*
 * dump.h: tiercache's native dump file (docs/DUMP_FORMAT.md), written by
 * tiercache-dump and read by tiercache-restore: a header with magic and
 * version, one record per item (key, flags, absolute expiry, CAS, value),
 * each with its own CRC32C, and a trailer with the record count and a
 * checksum over the records. Streaming both ways: a dump of any size needs
 * memory for one record at a time.
 *
 * A reader reports damage (a truncated file, a flipped byte, a missing or
 * wrong trailer) with the number of the first bad record; every record
 * before it was checked and may be used.
 *
 * Implemented in src/common/dumpfile.c (tc_common: libc only).
 */
#ifndef TIERCACHE_DUMP_H
#define TIERCACHE_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/status.h>

#define TC_DUMP_VERSION    1
#define TC_DUMP_KEY_MAX    250
#define TC_DUMP_SOURCE_MAX 255
#define TC_DUMP_VALUE_MAX  (1U << 30) /* 1 GiB: a longer value field is damage */

/* One item, as written or as read (pointers valid until the next call). */
struct tc_dump_item {
    const char *key;
    size_t nkey; /* 1 .. TC_DUMP_KEY_MAX */
    const char *value;
    uint32_t nbytes;
    uint32_t flags;
    uint64_t exptime; /* absolute unix time in seconds; 0: never expires */
    uint64_t cas;     /* the source's CAS unique (restoring cannot set it) */
};

/* What the header says. */
struct tc_dump_header {
    uint32_t version;
    uint64_t created;                    /* unix time the dump began */
    char source[TC_DUMP_SOURCE_MAX + 1]; /* e.g. "127.0.0.1:11211" or a data dir */
};

/* ---- writing ---- */

struct tc_dump_writer;

/* Start a dump on fd (a file or a pipe; not closed by the writer): writes
 * the header. TC_OK, TC_INVALID (source too long), TC_IO_ERROR, TC_NO_MEMORY. */
tc_status_e tc_dump_writer_open(int fd, const char *source, uint64_t created,
                                struct tc_dump_writer **out);

/* Append one record. TC_OK, TC_INVALID (empty or too long key, value above
 * TC_DUMP_VALUE_MAX), TC_IO_ERROR (sticky: every later call fails too). */
tc_status_e tc_dump_put(struct tc_dump_writer *w, const struct tc_dump_item *it);

/* Records and bytes written so far (header included in bytes). */
uint64_t tc_dump_writer_records(const struct tc_dump_writer *w);
uint64_t tc_dump_writer_bytes(const struct tc_dump_writer *w);

/* Write the trailer and flush. TC_OK or TC_IO_ERROR. Frees the writer
 * either way (accepts NULL) and sets *w to NULL. */
tc_status_e tc_dump_writer_finish(struct tc_dump_writer **w);

/* Abandon a dump without a trailer (a reader will call it truncated). */
void tc_dump_writer_abort(struct tc_dump_writer **w);

/* ---- reading ---- */

struct tc_dump_reader;

/* Open a dump on fd and read its header. TC_OK; TC_INVALID if it is not a
 * tiercache dump, or of another version (err says which); TC_IO_ERROR;
 * TC_NO_MEMORY. err may be NULL. */
tc_status_e tc_dump_reader_open(int fd, struct tc_dump_reader **out, struct tc_dump_header *hdr,
                                char *err, size_t errlen);

/*
 * The next record: TC_OK (*it filled; valid until the next call), TC_NOT_FOUND
 * at the end (the trailer was found and its count and checksum match), or
 * TC_INVALID / TC_IO_ERROR: the file is damaged or unreadable from record
 * tc_dump_reader_records() + 1 on; tc_dump_reader_error() says how. Also
 * TC_NO_MEMORY if a value's buffer cannot grow (it grows only as the value's
 * bytes arrive, so a damaged length never allocates more than about twice
 * the file). After an error, every further call returns the same error.
 */
tc_status_e tc_dump_next(struct tc_dump_reader *r, struct tc_dump_item *it);

/* Records returned with TC_OK so far. */
uint64_t tc_dump_reader_records(const struct tc_dump_reader *r);

/* Bytes consumed so far (for progress). */
uint64_t tc_dump_reader_bytes(const struct tc_dump_reader *r);

/* "record 1234: checksum mismatch", "record 1234: file ends inside the record",
 * "no trailer: the file is truncated after record 1233", ...; "" if none. */
const char *tc_dump_reader_error(const struct tc_dump_reader *r);

/* Accepts NULL; sets *r to NULL. Does not close the fd. */
void tc_dump_reader_close(struct tc_dump_reader **r);

#endif
