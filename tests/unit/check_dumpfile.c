/*
 * check_dumpfile.c: the native dump file (src/common/dumpfile.c): a round
 * trip of awkward records, and damage of every kind the format promises to
 * catch: a cut at every byte offset, each byte flipped, a missing or lying
 * trailer, a foreign magic, a future version, lengths that ask for
 * gigabytes. The rule checked throughout: the reader returns only records
 * that are exactly what was written, and names where the damage begins.
 */
#include <check.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tiercache/dump.h>

#include "crc32c.h"

#if defined(__SANITIZE_ADDRESS__)
/* From ASan's runtime (its header is not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

/* ---------------------------------------------------------------- helpers */

/* An anonymous in-memory file holding n bytes, positioned at 0. */
static int mem_fd(const void *p, size_t n)
{
    int fd = memfd_create("dump", 0);
    ck_assert_int_ge(fd, 0);
    const char *c = p;
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(fd, c + done, n - done);
        ck_assert_int_gt(k, 0);
        done += (size_t)k;
    }
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* The whole content of fd (from offset 0) into a malloc'd buffer. */
static unsigned char *slurp(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    ck_assert_int_ge(end, 0);
    unsigned char *b = malloc((size_t)end + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(pread(fd, b, (size_t)end, 0), end);
    *n = (size_t)end;
    return b;
}

struct rec {
    char key[TC_DUMP_KEY_MAX + 1];
    size_t nkey;
    char *value;
    uint32_t nbytes;
    uint32_t flags;
    uint64_t exptime, cas;
};

static void rec_make(struct rec *r, const char *key, size_t nkey, size_t nbytes, unsigned seed)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->key, key, nkey);
    r->nkey = nkey;
    r->nbytes = (uint32_t)nbytes;
    r->value = malloc(nbytes + 1);
    ck_assert_ptr_nonnull(r->value);
    for (size_t i = 0; i < nbytes; i++)
        r->value[i] =
            (char)((i * 131 + seed * 7) ^ (i >> 8)); /* every byte value, \0 and \r\n too */
    r->flags = seed * 2654435761u;
    r->exptime = seed % 3 == 0 ? 0 : 1700000000ull + seed;
    r->cas = 0x0123456789abcdefull + seed;
}

/* Write recs as a dump into a fresh memfd; finish (trailer) or abort. */
static unsigned char *dump_bytes(const struct rec *recs, size_t n, bool finish, size_t *len,
                                 size_t *offsets)
{
    int fd = memfd_create("dump", 0);
    ck_assert_int_ge(fd, 0);
    struct tc_dump_writer *w = NULL;
    ck_assert_int_eq(tc_dump_writer_open(fd, "127.0.0.1:11211", 1700000123, &w), TC_OK);
    for (size_t i = 0; i < n; i++) {
        if (offsets != NULL)
            offsets[i] = (size_t)tc_dump_writer_bytes(w);
        struct tc_dump_item it = {
            .key = recs[i].key,
            .nkey = recs[i].nkey,
            .value = recs[i].value,
            .nbytes = recs[i].nbytes,
            .flags = recs[i].flags,
            .exptime = recs[i].exptime,
            .cas = recs[i].cas,
        };
        ck_assert_int_eq(tc_dump_put(w, &it), TC_OK);
    }
    if (offsets != NULL)
        offsets[n] = (size_t)tc_dump_writer_bytes(w); /* where the trailer begins */
    ck_assert_uint_eq(tc_dump_writer_records(w), n);
    uint64_t bytes = tc_dump_writer_bytes(w);
    if (finish) {
        ck_assert_int_eq(tc_dump_writer_finish(&w), TC_OK);
    } else {
        tc_dump_writer_abort(&w);
    }
    ck_assert_ptr_null(w);
    unsigned char *b = slurp(fd, len);
    if (!finish)
        ck_assert_uint_eq(*len, bytes);
    close(fd);
    return b;
}

static bool rec_equal(const struct rec *r, const struct tc_dump_item *it)
{
    return it->nkey == r->nkey && memcmp(it->key, r->key, r->nkey) == 0 &&
           it->nbytes == r->nbytes && memcmp(it->value, r->value, r->nbytes) == 0 &&
           it->flags == r->flags && it->exptime == r->exptime && it->cas == r->cas;
}

/*
 * Read the dump in b[0, n): returns the status of open (if not TC_OK) or of
 * the first tc_dump_next() that is not TC_OK; *good gets how many records
 * came back, each checked against recs (a wrong one fails the test at once);
 * the error text goes to err.
 */
static tc_status_e read_back(const unsigned char *b, size_t n, const struct rec *recs, size_t nrecs,
                             size_t *good, char *err, size_t errlen)
{
    int fd = mem_fd(b, n);
    struct tc_dump_reader *r = NULL;
    struct tc_dump_header h;
    *good = 0;
    tc_status_e st = tc_dump_reader_open(fd, &r, &h, err, errlen);
    if (st != TC_OK) {
        ck_assert_ptr_null(r);
        ck_assert_msg(err[0] != '\0', "open failed without a message");
        close(fd);
        return st;
    }
    ck_assert_uint_eq(h.version, TC_DUMP_VERSION);
    ck_assert_str_eq(h.source, "127.0.0.1:11211");
    ck_assert_uint_eq(h.created, 1700000123);
    struct tc_dump_item it;
    while ((st = tc_dump_next(r, &it)) == TC_OK) {
        ck_assert_msg(*good < nrecs, "more records than were written");
        ck_assert_msg(rec_equal(&recs[*good], &it), "record %zu came back wrong", *good + 1);
        (*good)++;
        ck_assert_uint_eq(tc_dump_reader_records(r), *good);
    }
    snprintf(err, errlen, "%s", tc_dump_reader_error(r));
    /* Sticky: the same answer again. */
    ck_assert_int_eq(tc_dump_next(r, &it), st);
    if (st == TC_NOT_FOUND)
        ck_assert_uint_eq(tc_dump_reader_bytes(r), n);
    tc_dump_reader_close(&r);
    ck_assert_ptr_null(r);
    close(fd);
    return st;
}

/* A few small records for the byte-by-byte damage tests. */
#define NSMALL 5
static void small_set(struct rec *recs)
{
    const char *keys[NSMALL] = {"a", "key:2", "third", "k4", "last-key"};
    const size_t sizes[NSMALL] = {3, 0, 17, 1, 9};
    for (size_t i = 0; i < NSMALL; i++)
        rec_make(&recs[i], keys[i], strlen(keys[i]), sizes[i], (unsigned)i + 1);
}

static void free_recs(struct rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(recs[i].value);
}

/* ---------------------------------------------------------------- round trip */

START_TEST(round_trip)
{
    enum { N = 1200 };
    struct rec *recs = calloc(N, sizeof(*recs));
    ck_assert_ptr_nonnull(recs);
    char key250[TC_DUMP_KEY_MAX];
    memset(key250, 'k', sizeof(key250));
    rec_make(&recs[0], "empty", 5, 0, 0);
    rec_make(&recs[1], "one-mib", 7, 1 << 20, 1);
    rec_make(&recs[2], "binary", 6, 4096, 2);
    rec_make(&recs[3], key250, sizeof(key250), 10, 3);
    recs[3].flags = UINT32_MAX;
    recs[3].exptime = UINT64_MAX;
    recs[3].cas = UINT64_MAX;
    for (unsigned i = 4; i < N; i++) {
        char k[32];
        int nk = snprintf(k, sizeof(k), "item:%u", i);
        rec_make(&recs[i], k, (size_t)nk, i % 300, i);
    }
    size_t len;
    unsigned char *b = dump_bytes(recs, N, true, &len, NULL);
    size_t good;
    char err[256];
    ck_assert_int_eq(read_back(b, len, recs, N, &good, err, sizeof(err)), TC_NOT_FOUND);
    ck_assert_uint_eq(good, N);
    ck_assert_str_eq(err, "");

    /* Through a pipe too (no seeking, short reads): a 1 MiB value crosses
     * many reads. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        size_t off = 0;
        while (off < len) {
            ssize_t k = write(p[1], b + off, len - off > 7777 ? 7777 : len - off);
            if (k <= 0)
                _exit(1);
            off += (size_t)k;
        }
        _exit(0);
    }
    close(p[1]);
    struct tc_dump_reader *r = NULL;
    ck_assert_int_eq(tc_dump_reader_open(p[0], &r, NULL, NULL, 0), TC_OK);
    struct tc_dump_item it;
    size_t n = 0;
    tc_status_e st;
    while ((st = tc_dump_next(r, &it)) == TC_OK) {
        ck_assert(rec_equal(&recs[n], &it));
        n++;
    }
    ck_assert_int_eq(st, TC_NOT_FOUND);
    ck_assert_uint_eq(n, N);
    tc_dump_reader_close(&r);
    close(p[0]);
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    free(b);
    free_recs(recs, N);
    free(recs);
}
END_TEST

START_TEST(writer_refuses_bad_input)
{
    int fd = memfd_create("dump", 0);
    ck_assert_int_ge(fd, 0);
    char longsrc[TC_DUMP_SOURCE_MAX + 2];
    memset(longsrc, 's', sizeof(longsrc) - 1);
    longsrc[sizeof(longsrc) - 1] = '\0';
    struct tc_dump_writer *w = NULL;
    ck_assert_int_eq(tc_dump_writer_open(fd, longsrc, 0, &w), TC_INVALID);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(tc_dump_writer_open(fd, NULL, 0, &w), TC_OK);
    char key[TC_DUMP_KEY_MAX + 1];
    memset(key, 'k', sizeof(key));
    struct tc_dump_item it = {.key = key, .nkey = 0};
    ck_assert_int_eq(tc_dump_put(w, &it), TC_INVALID);
    it.nkey = TC_DUMP_KEY_MAX + 1;
    ck_assert_int_eq(tc_dump_put(w, &it), TC_INVALID);
    it.nkey = 1;
    it.nbytes = TC_DUMP_VALUE_MAX + 1;
    it.value = "";
    ck_assert_int_eq(tc_dump_put(w, &it), TC_INVALID);
    ck_assert_uint_eq(tc_dump_writer_records(w), 0);
    ck_assert_int_eq(tc_dump_writer_finish(&w), TC_OK);
    ck_assert_int_eq(tc_dump_writer_finish(&w), TC_OK); /* NULL is fine */
    close(fd);

    /* A write error is reported, and stays. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(tc_dump_writer_open(p[1], "x", 0, &w), TC_OK); /* buffered */
    it.nbytes = 100000;
    char *big = calloc(1, it.nbytes);
    it.value = big;
    ck_assert_int_eq(tc_dump_put(w, &it), TC_IO_ERROR);
    it.nbytes = 1;
    ck_assert_int_eq(tc_dump_put(w, &it), TC_IO_ERROR);
    ck_assert_int_eq(tc_dump_writer_finish(&w), TC_IO_ERROR);
    ck_assert_ptr_null(w);
    free(big);
    close(p[1]);
}
END_TEST

/* ---------------------------------------------------------------- damage */

START_TEST(truncated_at_every_byte)
{
    struct rec recs[NSMALL];
    small_set(recs);
    size_t off[NSMALL + 1], len;
    unsigned char *b = dump_bytes(recs, NSMALL, true, &len, off);
    for (size_t cut = 0; cut < len; cut++) {
        size_t good;
        char err[256];
        tc_status_e st = read_back(b, cut, recs, NSMALL, &good, err, sizeof(err));
        ck_assert_msg(st == TC_INVALID, "cut at %zu: status %d (%s)", cut, st, err);
        if (cut < off[0]) {
            ck_assert_uint_eq(good, 0);
            continue;
        }
        /* Every record that ends before the cut, and no other. */
        size_t whole = 0;
        while (whole < NSMALL && off[whole + 1] <= cut)
            whole++;
        ck_assert_msg(good == whole, "cut at %zu: %zu records back, %zu expected", cut, good,
                      whole);
        char want[64];
        if (cut == off[whole])
            snprintf(want, sizeof(want), "truncated after record %zu", whole);
        else
            snprintf(want, sizeof(want), "record %zu:", whole + 1);
        ck_assert_msg(strstr(err, want) != NULL, "cut at %zu: \"%s\" does not say \"%s\"", cut, err,
                      want);
    }
    free(b);
    free_recs(recs, NSMALL);
}
END_TEST

START_TEST(each_byte_flipped)
{
    static const unsigned char masks[] = {0x01, 0x80, 0xff, 0x06};
    struct rec recs[NSMALL];
    small_set(recs);
    size_t off[NSMALL + 1], len;
    unsigned char *b = dump_bytes(recs, NSMALL, true, &len, off);
    for (size_t m = 0; m < sizeof(masks); m++) {
        for (size_t pos = 0; pos < len; pos++) {
            b[pos] ^= masks[m];
            size_t good;
            char err[256];
            tc_status_e st = read_back(b, len, recs, NSMALL, &good, err, sizeof(err));
            b[pos] ^= masks[m];
            ck_assert_msg(st == TC_INVALID, "byte %zu ^ 0x%02x: status %d", pos, masks[m], st);
            if (pos < off[0]) {
                ck_assert_uint_eq(good, 0);
                continue;
            }
            size_t in = 0; /* the record holding pos; NSMALL: the trailer */
            while (in < NSMALL && off[in + 1] <= pos)
                in++;
            ck_assert_msg(good == in, "byte %zu ^ 0x%02x: %zu records back, %zu expected", pos,
                          masks[m], good, in);
            char want[64];
            snprintf(want, sizeof(want), "record %zu:", in + 1);
            ck_assert_msg(strstr(err, want) != NULL ||
                              (in == NSMALL && strstr(err, "trailer") != NULL),
                          "byte %zu ^ 0x%02x: \"%s\" does not name %s", pos, masks[m], err, want);
        }
    }
    free(b);
    free_recs(recs, NSMALL);
}
END_TEST

START_TEST(missing_trailer)
{
    struct rec recs[NSMALL];
    small_set(recs);
    size_t len;
    unsigned char *b = dump_bytes(recs, 3, false, &len, NULL);
    size_t good;
    char err[256];
    ck_assert_int_eq(read_back(b, len, recs, NSMALL, &good, err, sizeof(err)), TC_INVALID);
    ck_assert_uint_eq(good, 3);
    ck_assert_str_eq(err, "no trailer: the file is truncated after record 3");
    free(b);
    free_recs(recs, NSMALL);
}
END_TEST

/* Rewrite the trailer at t (20 bytes) with a count, keeping it self-consistent. */
static void retrailer(unsigned char *t, uint64_t count)
{
    for (int i = 0; i < 8; i++)
        t[4 + i] = (unsigned char)(count >> (8 * i));
    uint32_t crc = tc_crc32c(0, t, 16);
    for (int i = 0; i < 4; i++)
        t[16 + i] = (unsigned char)(crc >> (8 * i));
}

START_TEST(trailer_lies)
{
    struct rec recs[NSMALL];
    small_set(recs);
    size_t off[NSMALL + 1], len;
    unsigned char *b = dump_bytes(recs, NSMALL, true, &len, off);
    size_t good;
    char err[256];

    /* A wrong count, with a trailer checksum that matches it. */
    retrailer(b + off[NSMALL], NSMALL + 1);
    ck_assert_int_eq(read_back(b, len, recs, NSMALL, &good, err, sizeof(err)), TC_INVALID);
    ck_assert_uint_eq(good, NSMALL);
    ck_assert_msg(strstr(err, "trailer: it counts 6 records but the file holds 5") != NULL, "%s",
                  err);

    /* A whole record cut out at its boundaries, and the count fixed up:
     * every remaining record checks, only the records' checksum tells. */
    retrailer(b + off[NSMALL], NSMALL);
    size_t cut0 = off[2], cut1 = off[3];
    unsigned char *c = malloc(len);
    ck_assert_ptr_nonnull(c);
    memcpy(c, b, cut0);
    memcpy(c + cut0, b + cut1, len - cut1);
    size_t clen = len - (cut1 - cut0);
    retrailer(c + clen - 20, NSMALL - 1);
    struct rec shifted[NSMALL - 1] = {recs[0], recs[1], recs[3], recs[4]};
    ck_assert_int_eq(read_back(c, clen, shifted, NSMALL - 1, &good, err, sizeof(err)), TC_INVALID);
    ck_assert_uint_eq(good, NSMALL - 1);
    ck_assert_msg(strstr(err, "checksum over the records") != NULL, "%s", err);

    /* Bytes after a good trailer. */
    unsigned char *d = malloc(len + 1);
    ck_assert_ptr_nonnull(d);
    memcpy(d, b, len);
    d[len] = '\n';
    ck_assert_int_eq(read_back(d, len + 1, recs, NSMALL, &good, err, sizeof(err)), TC_INVALID);
    ck_assert_uint_eq(good, NSMALL);
    ck_assert_msg(strstr(err, "after the trailer") != NULL, "%s", err);
    free(d);
    free(c);
    free(b);
    free_recs(recs, NSMALL);
}
END_TEST

static void expect_open_fails(const void *p, size_t n, const char *want)
{
    int fd = mem_fd(p, n);
    struct tc_dump_reader *r = (void *)1;
    char err[256];
    ck_assert_int_eq(tc_dump_reader_open(fd, &r, NULL, err, sizeof(err)), TC_INVALID);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, want) != NULL, "\"%s\" does not say \"%s\"", err, want);
    close(fd);
}

START_TEST(foreign_files)
{
    struct rec recs[NSMALL];
    small_set(recs);
    size_t len;
    unsigned char *b = dump_bytes(recs, NSMALL, true, &len, NULL);

    expect_open_fails("", 0, "empty file");
    expect_open_fails("hello, world\n", 13, "not a tiercache dump");
    expect_open_fails("set a 0 0 1\r\nx\r\n", 16, "text dump");
    expect_open_fails(b, 5, "ends inside the dump header");

    /* Line endings converted both ways, and the top bit stripped. */
    unsigned char *m = malloc(2 * len);
    ck_assert_ptr_nonnull(m);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (b[i] == '\r' && i + 1 < len && b[i + 1] == '\n')
            continue;
        m[n++] = b[i];
    }
    expect_open_fails(m, n, "line endings were converted");
    n = 0;
    for (size_t i = 0; i < len; i++) {
        if (b[i] == '\n')
            m[n++] = '\r';
        m[n++] = b[i];
    }
    expect_open_fails(m, n, "line endings were converted");
    memcpy(m, b, len);
    m[0] &= 0x7f;
    expect_open_fails(m, len, "7-bit");

    /* A future version is refused by its number, whatever follows. */
    memcpy(m, b, len);
    m[8] = 2;
    expect_open_fails(m, len, "dump format version 2 is not supported");
    free(m);
    free(b);
    free_recs(recs, NSMALL);
}
END_TEST

/* A record head with the given key and value lengths and a valid head CRC. */
static size_t forged_head(unsigned char *p, unsigned nkey, uint32_t nbytes)
{
    memset(p, 0, 32);
    p[0] = 'R';
    p[1] = (unsigned char)nkey;
    for (int i = 0; i < 4; i++)
        p[4 + i] = (unsigned char)(nbytes >> (8 * i));
    uint32_t crc = tc_crc32c(0, p, 28);
    for (int i = 0; i < 4; i++)
        p[28 + i] = (unsigned char)(crc >> (8 * i));
    return 32;
}

START_TEST(absurd_lengths)
{
    struct rec recs[1];
    rec_make(&recs[0], "k", 1, 1, 1);
    size_t off[2], len;
    unsigned char *b = dump_bytes(recs, 1, true, &len, off);
    unsigned char f[4096];
    memcpy(f, b, off[0]); /* just the header */
    size_t n = off[0];

    /* 1 GiB promised, a few bytes there: fails as a truncation, having
     * allocated about what the file held, not the gigabyte. */
    size_t m = n + forged_head(f + n, 3, TC_DUMP_VALUE_MAX);
    memset(f + m, 'v', 1000);
    m += 1000;
    int fd = mem_fd(f, m);
    struct tc_dump_reader *r = NULL;
    char err[256];
    ck_assert_int_eq(tc_dump_reader_open(fd, &r, NULL, err, sizeof(err)), TC_OK);
    size_t before = heap_in_use();
    struct tc_dump_item it;
    ck_assert_int_eq(tc_dump_next(r, &it), TC_INVALID);
    size_t after = heap_in_use();
    ck_assert_msg(after < before + (4u << 20), "reader holds %zu bytes more after a lying length",
                  after - before);
    ck_assert_str_eq(tc_dump_reader_error(r), "record 1: the file ends inside the record");
    tc_dump_reader_close(&r);
    close(fd);

    /* Above the limit, or a key length out of range: refused outright. */
    const struct {
        unsigned nkey;
        uint32_t nbytes;
        const char *want;
    } cases[] = {
        {3, UINT32_MAX, "record 1: value length 4294967295 is above the limit"},
        {3, TC_DUMP_VALUE_MAX + 1, "above the limit"},
        {0, 1, "record 1: key length 0 is out of range"},
        {251, 1, "record 1: key length 251 is out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        m = n + forged_head(f + n, cases[i].nkey, cases[i].nbytes);
        memset(f + m, 'v', 300);
        m += 300;
        fd = mem_fd(f, m);
        ck_assert_int_eq(tc_dump_reader_open(fd, &r, NULL, err, sizeof(err)), TC_OK);
        ck_assert_int_eq(tc_dump_next(r, &it), TC_INVALID);
        ck_assert_msg(strstr(tc_dump_reader_error(r), cases[i].want) != NULL, "\"%s\"",
                      tc_dump_reader_error(r));
        tc_dump_reader_close(&r);
        close(fd);
    }
    free(b);
    free_recs(recs, 1);
}
END_TEST

static Suite *dumpfile_suite(void)
{
    Suite *s = suite_create("dumpfile");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, writer_refuses_bad_input);
    tcase_add_test(tc, truncated_at_every_byte);
    tcase_add_test(tc, each_byte_flipped);
    tcase_add_test(tc, missing_trailer);
    tcase_add_test(tc, trailer_lies);
    tcase_add_test(tc, foreign_files);
    tcase_add_test(tc, absurd_lengths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dumpfile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
