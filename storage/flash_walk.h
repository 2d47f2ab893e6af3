/*
 * flash_walk.h: reading the flash log in write order, for the engine's walk
 * over every live key (walk.c, `lru_crawler metadump`).
 *
 * A slice reads a bounded number of records in one short read transaction,
 * so a walk over millions of records never pins LMDB pages for long (a
 * long reader keeps the writer from reusing freed pages, and the file
 * grows). The position is a record location (seq << 24 | offset): batches
 * never change once written and are dropped whole, so a walk resumes at the
 * same place, or at the next batch if its batch was evicted meanwhile.
 *
 * Threads: the caller's own flash reader (one per worker thread), between
 * lookups: neither function may run while a flash_get() result is in use.
 */
#ifndef TC_STORAGE_FLASH_WALK_H
#define TC_STORAGE_FLASH_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tiercache/status.h>

#include "flash.h"

/* A record the index still points at; `it` points into the map and is
 * valid during the call only. */
typedef void (*flash_walk_fn)(void *arg, uint64_t hv, uint64_t loc, const struct flash_item *it);

/*
 * Look at up to `max` records from location *pos on, in one read
 * transaction, and pass each one that is its key's current record (as of
 * that transaction) to fn. *pos advances past them; *done is set when no
 * record is left. Returns TC_OK or TC_IO_ERROR (logged; *pos unchanged).
 */
tc_status_e flash_walk_slice(struct flash_reader *r, uint64_t *pos, size_t max, flash_walk_fn fn,
                             void *arg, bool *done);

/*
 * In a fresh read transaction: is the record at `loc` still the current
 * one of its key (hash hv)? Called with the key's stripe held, after RAM
 * was seen to hold nothing for the key: flash's latest commit is then the
 * key's current version. TC_OK (answer in *current) or TC_IO_ERROR.
 */
tc_status_e flash_walk_current(struct flash_reader *r, uint64_t hv, uint64_t loc, bool *current);

#endif
