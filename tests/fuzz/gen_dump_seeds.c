/*
 * gen_dump_seeds.c: writes the seed corpus of fuzz_dumpfile with the
 * project's own dump writer (tc_dump_writer_*), so every seed is a real
 * dump or a real dump damaged in one of the ways docs/DUMP_FORMAT.md lists.
 * Run by tests/fuzz/make_seeds.sh: gen_dump_seeds DIR (DIR exists).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <tiercache/dump.h>

static const char *dir;

static void save(const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A dump of `count` varied items (the first with a vbytes value) in a
 * malloc'd buffer with 16 bytes to spare; finish: with its trailer. */
static unsigned char *make(const char *source, size_t count, size_t vbytes, bool finish,
                           size_t *len)
{
    int fd = memfd_create("seed", 0);
    struct tc_dump_writer *w;
    if (fd < 0 || tc_dump_writer_open(fd, source, 1700000000, &w) != TC_OK)
        exit(1);
    char *value = malloc(vbytes + 1);
    for (size_t i = 0; i < vbytes; i++)
        value[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < count; i++) {
        char key[TC_DUMP_KEY_MAX];
        size_t nkey;
        if (i % 3 == 2) { /* every third key binary, the first of them 250 bytes */
            nkey = i == 2 ? TC_DUMP_KEY_MAX : 5;
            for (size_t k = 0; k < nkey; k++)
                key[k] = (char)(i * 31 + k);
        } else {
            nkey = (size_t)snprintf(key, sizeof(key), "key:%zu", i);
        }
        struct tc_dump_item it = {
            .key = key,
            .nkey = nkey,
            .value = value,
            .nbytes = (uint32_t)(i == 0       ? vbytes
                                 : i % 4 == 1 ? 0
                                              : 3 + i),
            .flags = (uint32_t)i * 7,
            .exptime = i % 2 ? 0 : 1700003600 + i,
            .cas = 42 + i,
        };
        if (it.nbytes > vbytes)
            it.nbytes = (uint32_t)vbytes;
        if (tc_dump_put(w, &it) != TC_OK)
            exit(1);
    }
    free(value);
    if (finish)
        tc_dump_writer_finish(&w);
    else
        tc_dump_writer_abort(&w);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    unsigned char *buf = malloc(*len + 16);
    if (pread(fd, buf, *len, 0) != (ssize_t)*len)
        exit(1);
    close(fd);
    return buf;
}

/* The example of docs/DUMP_FORMAT.md, byte for byte (103 bytes). */
static unsigned char *example(size_t *len)
{
    int fd = memfd_create("seed", 0);
    struct tc_dump_writer *w;
    struct tc_dump_item it = {.key = "foo",
                              .nkey = 3,
                              .value = "bar",
                              .nbytes = 3,
                              .flags = 5,
                              .exptime = 1700003600,
                              .cas = 42};
    if (fd < 0 || tc_dump_writer_open(fd, "127.0.0.1:11211", 1700000000, &w) != TC_OK ||
        tc_dump_put(w, &it) != TC_OK || tc_dump_writer_finish(&w) != TC_OK)
        exit(1);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    unsigned char *buf = malloc(*len + 16);
    if (pread(fd, buf, *len, 0) != (ssize_t)*len)
        exit(1);
    close(fd);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_dump_seeds DIR\n");
        return 2;
    }
    dir = argv[1];
    size_t n;
    unsigned char *d;

    d = make("", 0, 0, true, &n);
    save("empty.tcd", d, n);
    save("header_cut.tcd", d, 15);
    save("magic_only.tcd", d, 8);
    d[8] = 2; /* version 2 */
    save("version2.tcd", d, n);
    free(d);

    d = example(&n);
    save("one.tcd", d, n);
    save("one_no_trailer.tcd", d, n - 20);
    save("one_cut_in_record.tcd", d, n - 25);
    d[n] = 'x';
    save("one_extra_byte.tcd", d, n + 1);
    d[50] ^= 1;
    save("one_flipped.tcd", d, n);
    free(d);

    d = make("/var/lib/tiercache", 7, 20, true, &n);
    save("seven.tcd", d, n);
    save("seven_cut.tcd", d, n / 2);
    free(d);

    d = make("src", 3, 70000, true, &n); /* a value larger than the 64 KiB buffer */
    save("big_value.tcd", d, n);
    free(d);

    d = make("aborted", 2, 10, false, &n);
    save("aborted.tcd", d, n);
    free(d);

    /* Mangled in transit: line endings converted, top bits lost; a text dump. */
    d = make("x", 1, 3, true, &n);
    memmove(d + 5, d + 4, n - 4); /* \r\n -> \r\r\n */
    d[4] = '\r';
    save("crlf_converted.tcd", d, n + 1);
    free(d);
    d = make("x", 1, 3, true, &n);
    d[0] &= 0x7f;
    save("seven_bit.tcd", d, n);
    free(d);
    const char text[] = "set foo 5 0 3\r\nbar\r\n";
    save("text_dump.txt", text, sizeof(text) - 1);
    return 0;
}
