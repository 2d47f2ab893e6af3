/*
 * dumpout.c: see dumpout.h. The native format is the dump.h writer's job;
 * the text format is buffered here (256 KiB) and written with write(2), a
 * value larger than the buffer going out directly after the buffer is
 * flushed.
 *
 * A file's life: open FILE.tmp.<pid> -> items -> trailer -> fsync ->
 * rename to FILE -> fsync(directory). Standard output is only flushed.
 */
#include "dumpout.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dumpproto.h"

#define TEXT_BUF (256 * 1024)

struct dumpout {
    enum dumpout_format format;
    int fd;
    bool is_file;             /* false: standard output */
    char path[4096];          /* the final name */
    char tmp[4096];           /* the name written to until finish */
    struct tc_dump_writer *w; /* native */
    char *buf;                /* text: pending output */
    size_t nbuf;
    uint64_t items, bytes;
};

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *out_name(const struct dumpout *o)
{
    return o->is_file ? o->path : "standard output";
}

int dumpout_open(const char *path, enum dumpout_format format, const char *source,
                 struct dumpout **out, char *err, size_t errlen)
{
    struct dumpout *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    o->format = format;
    o->fd = STDOUT_FILENO;
    o->is_file = strcmp(path, "-") != 0;
    if (o->is_file) {
        if (strlen(path) + 32 >= sizeof(o->tmp)) {
            snprintf(err, errlen, "output file name too long: %.64s...", path);
            free(o);
            return -1;
        }
        snprintf(o->path, sizeof(o->path), "%s", path);
        snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.%ld", path, (long)getpid());
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o->fd < 0) {
            snprintf(err, errlen, "cannot create %s: %s", o->tmp, strerror(errno));
            free(o);
            return -1;
        }
    }
    if (format == DUMPOUT_NATIVE) {
        char src[TC_DUMP_SOURCE_MAX + 1];
        snprintf(src, sizeof(src), "%s", source); /* a longer name is cut, not refused */
        tc_status_e st = tc_dump_writer_open(o->fd, src, (uint64_t)time(NULL), &o->w);
        if (st != TC_OK) {
            snprintf(err, errlen, "cannot start the dump in %s: %s", out_name(o), tc_strerror(st));
            dumpout_abort(&o);
            return -1;
        }
    } else {
        o->buf = malloc(TEXT_BUF);
        if (o->buf == NULL) {
            snprintf(err, errlen, "out of memory");
            dumpout_abort(&o);
            return -1;
        }
    }
    *out = o;
    return 0;
}

static int text_flush(struct dumpout *o, char *err, size_t errlen)
{
    if (o->nbuf > 0 && write_all(o->fd, o->buf, o->nbuf) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", out_name(o), strerror(errno));
        return -1;
    }
    o->nbuf = 0;
    return 0;
}

/* Append to the text buffer, flushing or writing through as needed. */
static int text_add(struct dumpout *o, const char *p, size_t n, char *err, size_t errlen)
{
    if (o->nbuf + n > TEXT_BUF && text_flush(o, err, errlen) != 0)
        return -1;
    if (n > TEXT_BUF) {
        if (write_all(o->fd, p, n) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", out_name(o), strerror(errno));
            return -1;
        }
    } else {
        memcpy(o->buf + o->nbuf, p, n);
        o->nbuf += n;
    }
    o->bytes += n;
    return 0;
}

int dumpout_put(struct dumpout *o, const struct tc_dump_item *it, char *err, size_t errlen)
{
    if (o->format == DUMPOUT_NATIVE) {
        tc_status_e st = tc_dump_put(o->w, it);
        if (st == TC_INVALID)
            return 1; /* a key the format cannot hold (empty or too long) */
        if (st != TC_OK) {
            snprintf(err, errlen, "cannot write %s: %s", out_name(o), tc_strerror(st));
            return -1;
        }
        o->items++;
        o->bytes = tc_dump_writer_bytes(o->w);
        return 0;
    }
    if (!dp_key_text_ok(it->key, it->nkey))
        return 1;
    /* "set " key " " flags " " exptime " " bytes "\r\n": 4 + 250 + 3 * 21 + 2 */
    char hdr[DP_KEY_MAX + 96];
    int h = snprintf(hdr, sizeof(hdr), "set %.*s %u %llu %u\r\n", (int)it->nkey, it->key, it->flags,
                     (unsigned long long)it->exptime, it->nbytes);
    if (h < 0 || (size_t)h >= sizeof(hdr)) {
        snprintf(err, errlen, "internal error formatting a set command");
        return -1;
    }
    if (text_add(o, hdr, (size_t)h, err, errlen) != 0 ||
        text_add(o, it->value, it->nbytes, err, errlen) != 0 ||
        text_add(o, "\r\n", 2, err, errlen) != 0)
        return -1;
    o->items++;
    return 0;
}

uint64_t dumpout_items(const struct dumpout *o)
{
    return o->items;
}

uint64_t dumpout_bytes(const struct dumpout *o)
{
    return o->bytes;
}

/* fsync the directory holding path, so the rename survives a crash. */
static int sync_dir(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

int dumpout_finish(struct dumpout **op, char *err, size_t errlen)
{
    struct dumpout *o = *op;
    int rc = 0;
    if (o->format == DUMPOUT_NATIVE) {
        tc_status_e st = tc_dump_writer_finish(&o->w);
        if (st != TC_OK) {
            snprintf(err, errlen, "cannot write %s: %s", out_name(o), tc_strerror(st));
            rc = -1;
        }
    } else {
        rc = text_flush(o, err, errlen);
    }
    if (rc == 0 && o->is_file) {
        if (fsync(o->fd) != 0) {
            snprintf(err, errlen, "cannot sync %s: %s", o->tmp, strerror(errno));
            rc = -1;
        } else if (close(o->fd) != 0) {
            o->fd = -1;
            snprintf(err, errlen, "cannot write %s: %s", o->tmp, strerror(errno));
            rc = -1;
        } else {
            o->fd = -1;
            if (rename(o->tmp, o->path) != 0) {
                snprintf(err, errlen, "cannot rename %s to %s: %s", o->tmp, o->path,
                         strerror(errno));
                rc = -1;
            } else {
                o->tmp[0] = '\0'; /* nothing left to remove */
                if (sync_dir(o->path) != 0) {
                    snprintf(err, errlen, "cannot sync the directory of %s: %s", o->path,
                             strerror(errno));
                    rc = -1;
                }
            }
        }
    }
    if (rc != 0) {
        dumpout_abort(op);
        return -1;
    }
    free(o->buf);
    free(o);
    *op = NULL;
    return 0;
}

void dumpout_abort(struct dumpout **op)
{
    struct dumpout *o = *op;
    if (o == NULL)
        return;
    tc_dump_writer_abort(&o->w);
    if (o->is_file) {
        if (o->fd >= 0)
            close(o->fd);
        if (o->tmp[0] != '\0')
            unlink(o->tmp);
    }
    free(o->buf);
    free(o);
    *op = NULL;
}
