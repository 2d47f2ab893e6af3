/*
 * fuzz_dumpfile.c: libFuzzer target for the dump-file reader
 * (include/tiercache/dump.h, src/common/dumpfile.c; docs/DUMP_FORMAT.md).
 *
 * The input is a dump file. It is put in an in-memory file (memfd) and read
 * with tc_dump_reader_open() and tc_dump_next() to the end or the first
 * error. Errors are the reader's job, so they are never failures here; what
 * is checked (besides memory safety, and hangs and memory blow-ups through
 * libFuzzer's -timeout and -rss_limit_mb):
 *   - a returned record is exactly the bytes of the file at that place
 *     ("a record returned is exactly what was written");
 *   - the end (TC_NOT_FOUND) comes only after the whole file was consumed;
 *   - an error has a message, and every later call repeats the status.
 *
 * Random bytes rarely carry valid CRC32Cs, so each input is read twice: as
 * it is, and "repaired": every CRC the layout puts where the input has
 * enough bytes is recomputed (header, record heads and records, trailer),
 * which lets mutations of the lengths and fields reach the code behind the
 * checksums. The trailer's count and sum are left as they are.
 */
#include <sys/mman.h>
#include <unistd.h>

#include <tiercache/dump.h>

#include "crc32c.h"
#include "fuzz.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recompute the CRCs of d[0..n) where the layout of DUMP_FORMAT.md puts them. */
static void repair(uint8_t *d, size_t n)
{
    if (n < 22)
        return;
    size_t ns = (size_t)d[20] | (size_t)d[21] << 8;
    size_t off = 22 + ns;
    if (off + 4 > n)
        return;
    put32(d + off, tc_crc32c(0, d, off));
    off += 4;
    while (off < n) {
        if (d[off] == 'T' && off + 20 <= n) {
            put32(d + off + 16, tc_crc32c(0, d + off, 16));
            return;
        }
        if (d[off] != 'R' || off + 32 > n)
            return;
        put32(d + off + 28, tc_crc32c(0, d + off, 28));
        size_t len = 32 + (size_t)d[off + 1] + get32(d + off + 4);
        if (len + 4 > n - off)
            return;
        put32(d + off + len, tc_crc32c(0, d + off, len));
        off += len + 4;
    }
}

/* Read the dump in fd (the bytes d[0..n)) to its end or first error. */
static void read_dump(int fd, const uint8_t *d, size_t n)
{
    struct tc_dump_reader *r = NULL;
    struct tc_dump_header hdr;
    char err[256];
    tc_status_e st = tc_dump_reader_open(fd, &r, &hdr, err, sizeof(err));
    if (st != TC_OK) {
        FUZZ_CHECK(r == NULL && err[0] != '\0');
        FUZZ_CHECK(st == TC_INVALID || st == TC_IO_ERROR || st == TC_NO_MEMORY);
        return;
    }
    FUZZ_CHECK(hdr.version == TC_DUMP_VERSION && strlen(hdr.source) <= TC_DUMP_SOURCE_MAX);
    struct tc_dump_item it;
    for (;;) {
        uint64_t at = tc_dump_reader_bytes(r), records = tc_dump_reader_records(r);
        st = tc_dump_next(r, &it);
        if (st != TC_OK)
            break;
        /* The record is the file's bytes [at, at + 36 + nkey + nbytes). */
        FUZZ_CHECK(it.nkey >= 1 && it.nkey <= TC_DUMP_KEY_MAX && it.nbytes <= TC_DUMP_VALUE_MAX);
        FUZZ_CHECK(it.key != NULL && it.value != NULL);
        FUZZ_CHECK(tc_dump_reader_records(r) == records + 1);
        FUZZ_CHECK(tc_dump_reader_bytes(r) == at + 36 + it.nkey + it.nbytes);
        FUZZ_CHECK(tc_dump_reader_bytes(r) <= n);
        const uint8_t *rec = d + at;
        FUZZ_CHECK(rec[0] == 'R' && rec[1] == it.nkey && get32(rec + 4) == it.nbytes);
        FUZZ_CHECK(get32(rec + 8) == it.flags);
        FUZZ_CHECK(memcmp(it.key, rec + 32, it.nkey) == 0);
        FUZZ_CHECK(memcmp(it.value, rec + 32 + it.nkey, it.nbytes) == 0);
    }
    const char *msg = tc_dump_reader_error(r);
    if (st == TC_NOT_FOUND) {
        FUZZ_CHECK(tc_dump_reader_bytes(r) == n && msg[0] == '\0');
    } else {
        FUZZ_CHECK(st == TC_INVALID || st == TC_IO_ERROR || st == TC_NO_MEMORY);
        FUZZ_CHECK(msg[0] != '\0');
    }
    FUZZ_CHECK(tc_dump_next(r, &it) == st); /* sticky */
    tc_dump_reader_close(&r);
    FUZZ_CHECK(r == NULL);
}

/* Put d[0..n) in the memory file and read it from the start. */
static void run(int fd, const uint8_t *d, size_t n)
{
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(pwrite(fd, d, n, 0) == (ssize_t)n);
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
    read_dump(fd, d, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0)
        fd = memfd_create("fuzz_dumpfile", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    run(fd, data, size);

    uint8_t *fixed = malloc(size);
    if (size > 0)
        memcpy(fixed, data, size);
    repair(fixed, size);
    if (size > 0 && memcmp(fixed, data, size) != 0)
        run(fd, fixed, size);
    free(fixed);
    return 0;
}
