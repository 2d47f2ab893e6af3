/*
 * dumpout.h: where tiercache-dump writes its items: a native dump
 * (include/tiercache/dump.h) or plain memcached `set` commands (--format=
 * text), to a file or to standard output.
 *
 * A file is written under a temporary name next to it (FILE.tmp.<pid>) and
 * renamed over FILE only once complete and synced, so a failed or
 * interrupted dump never leaves something that looks like a good one.
 * Single-threaded.
 */
#ifndef TC_DUMPOUT_H
#define TC_DUMPOUT_H

#include <stddef.h>
#include <stdint.h>

#include <tiercache/dump.h>

enum dumpout_format {
    DUMPOUT_NATIVE,
    DUMPOUT_TEXT,
};

struct dumpout;

/*
 * Start writing to `path` ("-": standard output). `source` (the server or
 * data dir) goes into a native dump's header. Returns 0, or -1 with a
 * one-line reason naming the file in err.
 */
int dumpout_open(const char *path, enum dumpout_format format, const char *source,
                 struct dumpout **out, char *err, size_t errlen);

/*
 * Write one item. Returns 0 (written), 1 (skipped: the text format cannot
 * carry this key), or -1 (write error; err names the file and why; the
 * caller should dumpout_abort()).
 */
int dumpout_put(struct dumpout *o, const struct tc_dump_item *it, char *err, size_t errlen);

/* Items written and bytes of output so far. */
uint64_t dumpout_items(const struct dumpout *o);
uint64_t dumpout_bytes(const struct dumpout *o);

/*
 * Complete the output: the trailer (native), flush, fsync and rename into
 * place (a file). Returns 0, or -1 with err filled (the temporary file is
 * removed). Frees *o and sets it to NULL either way.
 */
int dumpout_finish(struct dumpout **o, char *err, size_t errlen);

/* Give up: remove the temporary file, free *o, set it to NULL. Accepts NULL. */
void dumpout_abort(struct dumpout **o);

#endif
