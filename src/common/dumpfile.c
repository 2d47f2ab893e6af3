/*
 * dumpfile.c: the native dump file (include/tiercache/dump.h), byte for
 * byte as docs/DUMP_FORMAT.md draws it. Written by tiercache-dump, read by
 * tiercache-restore; libc only, so any tool can link it.
 *
 *   header   magic(8) version(4) created(8) nsource(2) source(n) crc(4)
 *   record   'R' nkey(1) 0(2) nbytes(4) flags(4) exptime(8) cas(8) hcrc(4)
 *            key(nkey) value(nbytes) crc(4)
 *   ...
 *   trailer  'T' 0(3) count(8) sum(4) crc(4)
 *
 * Every integer is little endian. A record carries two CRC32Cs: one over its
 * fixed 28-byte head, so a damaged length is caught before anything is
 * allocated for it, and one over the whole record. The trailer's `sum` is a
 * CRC32C over the records' own CRCs, so a record lost at a boundary (where
 * every remaining record still checks) is still noticed.
 *
 * Both ends stream through a 64 KiB buffer: memory is one record at a time.
 * The reader grows its value buffer as bytes actually arrive (at most about
 * twice what was read), so a length field that lies costs no more memory than
 * the file holds. A handle is used by one thread at a time.
 */
#include <tiercache/dump.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"

/* PNG's trick: a high-bit byte (caught by 7-bit channels), CR LF (caught by
 * line-ending conversion either way), ^Z (stops a DOS `type`), LF. */
static const unsigned char dump_magic[8] = {0x89, 'T', 'C', 'D', '\r', '\n', 0x1a, '\n'};

#define HDR_FIXED    22 /* magic, version, created, nsource */
#define REC_HEAD     28 /* marker .. cas; then the head CRC */
#define TRAILER_SIZE 20
#define MARK_RECORD  0x52 /* 'R' */
#define MARK_TRAILER 0x54 /* 'T' */
#define IOBUF_SIZE   (64 * 1024)

/* ---------------------------------------------------------------- little endian */

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* The running checksum over the records' CRCs (the trailer's `sum`). */
static uint32_t sum_add(uint32_t sum, uint32_t rec_crc)
{
    unsigned char b[4];
    put32(b, rec_crc);
    return tc_crc32c(sum, b, 4);
}

/* ================================================================ writing */

struct tc_dump_writer {
    int fd;
    bool failed; /* a write failed: every later call fails too */
    uint64_t records;
    uint64_t bytes;
    uint32_t sum;
    size_t used;
    unsigned char buf[IOBUF_SIZE];
};

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        c += k;
        n -= (size_t)k;
    }
    return true;
}

static bool wr_flush(struct tc_dump_writer *w)
{
    if (w->failed)
        return false;
    if (w->used > 0 && !write_all(w->fd, w->buf, w->used))
        w->failed = true;
    w->used = 0;
    return !w->failed;
}

/* Buffer n bytes; a block larger than the buffer goes straight to the fd. */
static bool wr_append(struct tc_dump_writer *w, const void *p, size_t n)
{
    if (w->failed)
        return false;
    w->bytes += n;
    if (n > sizeof(w->buf) - w->used) {
        if (!wr_flush(w))
            return false;
        if (n >= sizeof(w->buf)) {
            if (!write_all(w->fd, p, n))
                w->failed = true;
            return !w->failed;
        }
    }
    memcpy(w->buf + w->used, p, n);
    w->used += n;
    return true;
}

tc_status_e tc_dump_writer_open(int fd, const char *source, uint64_t created,
                                struct tc_dump_writer **out)
{
    *out = NULL;
    if (source == NULL)
        source = "";
    size_t ns = strlen(source);
    if (ns > TC_DUMP_SOURCE_MAX || fd < 0)
        return TC_INVALID;
    struct tc_dump_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return TC_NO_MEMORY;
    w->fd = fd;

    unsigned char h[HDR_FIXED + TC_DUMP_SOURCE_MAX + 4];
    memcpy(h, dump_magic, 8);
    put32(h + 8, TC_DUMP_VERSION);
    put64(h + 12, created);
    put16(h + 20, (uint16_t)ns);
    memcpy(h + HDR_FIXED, source, ns);
    put32(h + HDR_FIXED + ns, tc_crc32c(0, h, HDR_FIXED + ns));
    if (!wr_append(w, h, HDR_FIXED + ns + 4)) {
        free(w);
        return TC_IO_ERROR;
    }
    *out = w;
    return TC_OK;
}

tc_status_e tc_dump_put(struct tc_dump_writer *w, const struct tc_dump_item *it)
{
    if (it->nkey == 0 || it->nkey > TC_DUMP_KEY_MAX || it->key == NULL ||
        it->nbytes > TC_DUMP_VALUE_MAX || (it->nbytes > 0 && it->value == NULL))
        return TC_INVALID;
    if (w->failed)
        return TC_IO_ERROR;

    unsigned char head[REC_HEAD + 4];
    head[0] = MARK_RECORD;
    head[1] = (unsigned char)it->nkey;
    put16(head + 2, 0);
    put32(head + 4, it->nbytes);
    put32(head + 8, it->flags);
    put64(head + 12, it->exptime);
    put64(head + 20, it->cas);
    put32(head + REC_HEAD, tc_crc32c(0, head, REC_HEAD));

    uint32_t crc = tc_crc32c(0, head, sizeof(head));
    crc = tc_crc32c(crc, it->key, it->nkey);
    if (it->nbytes > 0)
        crc = tc_crc32c(crc, it->value, it->nbytes);
    unsigned char tail[4];
    put32(tail, crc);

    if (!wr_append(w, head, sizeof(head)) || !wr_append(w, it->key, it->nkey) ||
        (it->nbytes > 0 && !wr_append(w, it->value, it->nbytes)) ||
        !wr_append(w, tail, sizeof(tail)))
        return TC_IO_ERROR;
    w->records++;
    w->sum = sum_add(w->sum, crc);
    return TC_OK;
}

uint64_t tc_dump_writer_records(const struct tc_dump_writer *w)
{
    return w->records;
}

uint64_t tc_dump_writer_bytes(const struct tc_dump_writer *w)
{
    return w->bytes;
}

tc_status_e tc_dump_writer_finish(struct tc_dump_writer **wp)
{
    struct tc_dump_writer *w = *wp;
    if (w == NULL)
        return TC_OK;
    *wp = NULL;
    unsigned char t[TRAILER_SIZE] = {MARK_TRAILER};
    put64(t + 4, w->records);
    put32(t + 12, w->sum);
    put32(t + 16, tc_crc32c(0, t, 16));
    bool ok = wr_append(w, t, sizeof(t)) && wr_flush(w);
    free(w);
    return ok ? TC_OK : TC_IO_ERROR;
}

void tc_dump_writer_abort(struct tc_dump_writer **wp)
{
    if (*wp == NULL)
        return;
    /* What was buffered goes out, so the reader reports the damage where the
     * dump really stopped rather than some 64 KiB earlier. */
    wr_flush(*wp);
    free(*wp);
    *wp = NULL;
}

/* ================================================================ reading */

struct tc_dump_reader {
    int fd;
    tc_status_e sticky; /* TC_OK while reading; then the status every call repeats */
    uint64_t records;
    uint64_t bytes;
    uint32_t sum;
    char key[TC_DUMP_KEY_MAX + 1];
    char *value; /* grows as value bytes arrive */
    size_t value_cap;
    size_t head, tail; /* unread bytes: buf[head, tail) */
    unsigned char buf[IOBUF_SIZE];
    char err[256];
};

/*
 * Read up to n bytes into dst (NULL: discard). Returns how many arrived
 * (fewer than n only at end of file), or -1 if read() failed (errno kept).
 */
static ssize_t rd_read(struct tc_dump_reader *r, void *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (r->head == r->tail) {
            ssize_t k = read(r->fd, r->buf, sizeof(r->buf));
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            if (k == 0)
                break;
            r->head = 0;
            r->tail = (size_t)k;
        }
        size_t m = r->tail - r->head;
        if (m > n - got)
            m = n - got;
        if (dst != NULL)
            memcpy((char *)dst + got, r->buf + r->head, m);
        r->head += m;
        got += m;
    }
    r->bytes += got;
    return (ssize_t)got;
}

/* Make the reader fail from now on with `st` and a message. Returns st. */
__attribute__((format(printf, 3, 4))) static tc_status_e
rd_fail(struct tc_dump_reader *r, tc_status_e st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    r->sticky = st;
    return st;
}

static tc_status_e rd_io_fail(struct tc_dump_reader *r, const char *where)
{
    return rd_fail(r, TC_IO_ERROR, "%s: read failed: %s", where, strerror(errno));
}

/* Why the first eight bytes are not our magic, in words. */
static const char *magic_diagnosis(const unsigned char *m, size_t n)
{
    if (n >= 4 && memcmp(m, "set ", 4) == 0)
        return "this is a text dump (memcached set commands), not a native one";
    if (n >= 4 && m[0] == (dump_magic[0] & 0x7f) && memcmp(m + 1, dump_magic + 1, 3) == 0)
        return "not a tiercache dump: the top bit of each byte was lost (a 7-bit transfer)";
    if (n >= 5 && memcmp(m, dump_magic, 4) == 0 && (m[4] == '\n' || (n >= 6 && m[5] == '\r')))
        return "not a tiercache dump: its line endings were converted (a text-mode transfer)";
    if (n >= 4 && memcmp(m, dump_magic, 4) == 0)
        return "not a tiercache dump: its magic is damaged";
    return "not a tiercache dump (wrong magic)";
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

tc_status_e tc_dump_reader_open(int fd, struct tc_dump_reader **out, struct tc_dump_header *hdr,
                                char *err, size_t errlen)
{
    *out = NULL;
    set_err(err, errlen, "");
    struct tc_dump_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        set_err(err, errlen, "out of memory");
        return TC_NO_MEMORY;
    }
    r->fd = fd;

    unsigned char h[HDR_FIXED + TC_DUMP_SOURCE_MAX + 4];
    tc_status_e st = TC_INVALID;
    const char *msg = NULL;
    ssize_t k = rd_read(r, h, 8);
    if (k < 0)
        goto io_error;
    if (k == 0)
        msg = "empty file: not a tiercache dump";
    else if (k < 8 && memcmp(h, dump_magic, (size_t)k) == 0)
        msg = "the file ends inside the dump header";
    else if (k < 8 || memcmp(h, dump_magic, 8) != 0)
        msg = magic_diagnosis(h, (size_t)k);
    if (msg != NULL)
        goto fail;

    /* Magic and version sit at the same offsets in every version: check the
     * version before reading fields whose layout it decides. */
    if ((k = rd_read(r, h + 8, 4)) < 0)
        goto io_error;
    if (k < 4) {
        msg = "the file ends inside the dump header";
        goto fail;
    }
    uint32_t version = get32(h + 8);
    if (version != TC_DUMP_VERSION) {
        if (err != NULL)
            snprintf(err, errlen,
                     "dump format version %u is not supported (this build reads version %u)",
                     (unsigned)version, (unsigned)TC_DUMP_VERSION);
        free(r);
        return TC_INVALID;
    }
    if ((k = rd_read(r, h + 12, HDR_FIXED - 12)) < 0)
        goto io_error;
    size_t ns = k == HDR_FIXED - 12 ? get16(h + 20) : 0;
    if (k < HDR_FIXED - 12) {
        msg = "the file ends inside the dump header";
        goto fail;
    }
    if (ns > TC_DUMP_SOURCE_MAX) {
        msg = "damaged dump header (source longer than 255 bytes)";
        goto fail;
    }
    if ((k = rd_read(r, h + HDR_FIXED, ns + 4)) < 0)
        goto io_error;
    if ((size_t)k < ns + 4) {
        msg = "the file ends inside the dump header";
        goto fail;
    }
    if (get32(h + HDR_FIXED + ns) != tc_crc32c(0, h, HDR_FIXED + ns)) {
        msg = "damaged dump header (checksum mismatch)";
        goto fail;
    }
    if (hdr != NULL) {
        hdr->version = version;
        hdr->created = get64(h + 12);
        memcpy(hdr->source, h + HDR_FIXED, ns);
        hdr->source[ns] = '\0';
    }
    *out = r;
    return TC_OK;

io_error:
    if (err != NULL)
        snprintf(err, errlen, "reading the dump header: %s", strerror(errno));
    st = TC_IO_ERROR;
    free(r);
    return st;
fail:
    set_err(err, errlen, msg);
    free(r);
    return st;
}

/* Read the value of record `no` into r->value, growing the buffer only as
 * bytes arrive, so a lying length costs at most about twice the file. */
static tc_status_e rd_value(struct tc_dump_reader *r, uint64_t no, uint32_t nbytes)
{
    size_t got = 0;
    while (got < nbytes) {
        if (got == r->value_cap) {
            size_t step = r->value_cap > IOBUF_SIZE ? r->value_cap : IOBUF_SIZE;
            size_t cap = got + (nbytes - got < step ? nbytes - got : step);
            char *v = realloc(r->value, cap);
            if (v == NULL)
                return rd_fail(r, TC_NO_MEMORY, "record %llu: no memory for a %u-byte value",
                               (unsigned long long)no, (unsigned)nbytes);
            r->value = v;
            r->value_cap = cap;
        }
        size_t want = (r->value_cap < nbytes ? r->value_cap : nbytes) - got;
        ssize_t k = rd_read(r, r->value + got, want);
        if (k < 0)
            return rd_io_fail(r, "value");
        got += (size_t)k;
        if ((size_t)k < want)
            return rd_fail(r, TC_INVALID, "record %llu: the file ends inside the record",
                           (unsigned long long)no);
    }
    return TC_OK;
}

/* After the marker 'T': check the trailer against what was read. */
static tc_status_e rd_trailer(struct tc_dump_reader *r, const unsigned char *mark)
{
    uint64_t no = r->records + 1;
    unsigned char t[TRAILER_SIZE];
    t[0] = *mark;
    ssize_t k = rd_read(r, t + 1, sizeof(t) - 1);
    if (k < 0)
        return rd_io_fail(r, "trailer");
    if ((size_t)k < sizeof(t) - 1)
        return rd_fail(r, TC_INVALID,
                       "record %llu: the file ends inside the trailer (or a damaged record)",
                       (unsigned long long)no);
    if (get32(t + 16) != tc_crc32c(0, t, 16) || t[1] != 0 || t[2] != 0 || t[3] != 0)
        return rd_fail(r, TC_INVALID,
                       "record %llu: damaged: neither a valid record nor a valid trailer",
                       (unsigned long long)no);
    uint64_t count = get64(t + 4);
    if (count != r->records)
        return rd_fail(r, TC_INVALID,
                       "trailer: it counts %llu records but the file holds %llu (records "
                       "were lost or added)",
                       (unsigned long long)count, (unsigned long long)r->records);
    if (get32(t + 12) != r->sum)
        return rd_fail(r, TC_INVALID,
                       "trailer: the checksum over the records does not match (records were "
                       "lost or reordered)");
    unsigned char extra;
    if ((k = rd_read(r, &extra, 1)) < 0)
        return rd_io_fail(r, "after the trailer");
    if (k > 0)
        return rd_fail(r, TC_INVALID, "trailer: unexpected bytes after the trailer");
    r->sticky = TC_NOT_FOUND;
    return TC_NOT_FOUND;
}

tc_status_e tc_dump_next(struct tc_dump_reader *r, struct tc_dump_item *it)
{
    if (r->sticky != TC_OK)
        return r->sticky;
    uint64_t no = r->records + 1;
    unsigned char head[REC_HEAD + 4];
    ssize_t k = rd_read(r, head, 1);
    if (k < 0)
        return rd_io_fail(r, "record");
    if (k == 0)
        return rd_fail(r, TC_INVALID, "no trailer: the file is truncated after record %llu",
                       (unsigned long long)r->records);
    if (head[0] == MARK_TRAILER)
        return rd_trailer(r, head);
    if (head[0] != MARK_RECORD)
        return rd_fail(r, TC_INVALID,
                       "record %llu: damaged: marker 0x%02x is neither a record nor the trailer",
                       (unsigned long long)no, head[0]);

    if ((k = rd_read(r, head + 1, sizeof(head) - 1)) < 0)
        return rd_io_fail(r, "record");
    if ((size_t)k < sizeof(head) - 1)
        return rd_fail(r, TC_INVALID, "record %llu: the file ends inside the record",
                       (unsigned long long)no);
    if (get32(head + REC_HEAD) != tc_crc32c(0, head, REC_HEAD))
        return rd_fail(r, TC_INVALID, "record %llu: checksum mismatch (record head)",
                       (unsigned long long)no);
    size_t nkey = head[1];
    uint32_t nbytes = get32(head + 4);
    /* The head checked, so these are what the writer wrote: out-of-range
     * values mean a foreign or hostile writer, never a flipped bit. */
    if (nkey == 0 || nkey > TC_DUMP_KEY_MAX || get16(head + 2) != 0)
        return rd_fail(r, TC_INVALID, "record %llu: key length %zu is out of range 1..%d",
                       (unsigned long long)no, nkey, TC_DUMP_KEY_MAX);
    if (nbytes > TC_DUMP_VALUE_MAX)
        return rd_fail(r, TC_INVALID, "record %llu: value length %u is above the limit %u",
                       (unsigned long long)no, (unsigned)nbytes, (unsigned)TC_DUMP_VALUE_MAX);

    if ((k = rd_read(r, r->key, nkey)) < 0)
        return rd_io_fail(r, "record");
    if ((size_t)k < nkey)
        return rd_fail(r, TC_INVALID, "record %llu: the file ends inside the record",
                       (unsigned long long)no);
    r->key[nkey] = '\0';
    tc_status_e st = rd_value(r, no, nbytes);
    if (st != TC_OK)
        return st;
    unsigned char tail[4];
    if ((k = rd_read(r, tail, 4)) < 0)
        return rd_io_fail(r, "record");
    if (k < 4)
        return rd_fail(r, TC_INVALID, "record %llu: the file ends inside the record",
                       (unsigned long long)no);
    uint32_t crc = tc_crc32c(0, head, sizeof(head));
    crc = tc_crc32c(crc, r->key, nkey);
    if (nbytes > 0)
        crc = tc_crc32c(crc, r->value, nbytes);
    if (get32(tail) != crc)
        return rd_fail(r, TC_INVALID, "record %llu: checksum mismatch", (unsigned long long)no);

    r->records++;
    r->sum = sum_add(r->sum, crc);
    *it = (struct tc_dump_item){
        .key = r->key,
        .nkey = nkey,
        .value = nbytes > 0 ? r->value : "",
        .nbytes = nbytes,
        .flags = get32(head + 8),
        .exptime = get64(head + 12),
        .cas = get64(head + 20),
    };
    return TC_OK;
}

uint64_t tc_dump_reader_records(const struct tc_dump_reader *r)
{
    return r->records;
}

uint64_t tc_dump_reader_bytes(const struct tc_dump_reader *r)
{
    return r->bytes;
}

const char *tc_dump_reader_error(const struct tc_dump_reader *r)
{
    return r->err;
}

void tc_dump_reader_close(struct tc_dump_reader **r)
{
    if (*r == NULL)
        return;
    free((*r)->value);
    free(*r);
    *r = NULL;
}
