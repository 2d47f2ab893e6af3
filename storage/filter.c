/*
 * filter.c: a cuckoo filter (see filter.h).
 *
 * How it works. A key's hash gives a 12-bit fingerprint (its top bits,
 * never 0, since 0 marks an empty slot) and a home bucket i1 (its low 32
 * bits, reduced to [0, n) by multiply-shift). Its other bucket is
 * i2 = (T(fp) - i1) mod n, where T scrambles the fingerprint: applying the
 * same formula to i2 gives back i1, so a fingerprint can move between its
 * two buckets knowing only the bucket it is in. This works for any n, so the
 * filter can grow by small steps instead of doubling.
 *
 * A lookup checks the two buckets (and the one-entry overflow). An insert
 * takes a free slot in either bucket, or evicts a random fingerprint to its
 * other bucket, and so on ("cuckoo" kicks), up to MAX_KICKS; if that fails
 * the last fingerprint in hand goes to the overflow slot and the filter
 * reports itself full.
 *
 * Concurrency: a sequence counter (seqlock). The writer makes it odd before
 * changing buckets and even after; a reader reads the counter, the buckets,
 * and the counter again, and retries if it changed or was odd. Buckets are
 * atomics read and written with relaxed order, the fences order them
 * against the counter.
 */
#include "filter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"

#define FP_BITS      12
#define FP_MASK      ((1ULL << FP_BITS) - 1)
#define MAX_KICKS    500
#define READ_RETRIES 16

struct filter {
    _Atomic uint64_t seq;
    uint64_t n;                /* buckets */
    _Atomic uint64_t *buckets; /* FILTER_SLOTS fingerprints of FP_BITS each */
    _Atomic uint64_t victim;   /* overflow: (bucket << FP_BITS) | fp, 0 if empty */
    _Atomic uint64_t count;
    _Atomic bool full;
    uint64_t rng; /* writer only */
};

static inline uint64_t fingerprint(uint64_t hv)
{
    uint64_t fp = hv >> (64 - FP_BITS);
    return fp != 0 ? fp : 1;
}

/* Map 32 random bits onto [0, n) without a division (multiply-shift). */
static inline uint64_t reduce(uint32_t x, uint64_t n)
{
    return ((uint64_t)x * n) >> 32;
}

static inline uint64_t home(const struct filter *f, uint64_t hv)
{
    return reduce((uint32_t)hv, f->n);
}

static inline uint64_t alt(const struct filter *f, uint64_t i, uint64_t fp)
{
    uint64_t t = reduce((uint32_t)((fp * 0x9E3779B97F4A7C15ULL) >> 32), f->n);
    return t >= i ? t - i : t + f->n - i; /* (t - i) mod n */
}

static inline uint64_t slot_get(uint64_t b, unsigned s)
{
    return (b >> (s * FP_BITS)) & FP_MASK;
}

static inline uint64_t slot_set(uint64_t b, unsigned s, uint64_t fp)
{
    return (b & ~(FP_MASK << (s * FP_BITS))) | (fp << (s * FP_BITS));
}

static bool bucket_has(uint64_t b, uint64_t fp)
{
    for (unsigned s = 0; s < FILTER_SLOTS; s++) {
        if (slot_get(b, s) == fp)
            return true;
    }
    return false;
}

tc_status_e filter_create(uint64_t capacity, struct filter **out)
{
    struct filter *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return TC_NO_MEMORY;
    uint64_t n = (uint64_t)((double)capacity / (FILTER_SLOTS * FILTER_MAX_LOAD)) + 1;
    if (n > 0xffffffffULL)
        n = 0xffffffffULL;
    f->n = n;
    f->buckets = calloc(n, sizeof(*f->buckets));
    if (f->buckets == NULL) {
        free(f);
        return TC_NO_MEMORY;
    }
    f->rng = 0x2545F4914F6CDD1DULL;
    *out = f;
    return TC_OK;
}

void filter_destroy(struct filter **fp)
{
    if (fp == NULL || *fp == NULL)
        return;
    free((*fp)->buckets);
    free(*fp);
    *fp = NULL;
}

bool filter_maybe(const struct filter *f, uint64_t hv)
{
    uint64_t fp = fingerprint(hv);
    uint64_t i1 = home(f, hv);
    uint64_t i2 = alt(f, i1, fp);
    struct filter *mf = (struct filter *)f; /* atomics are read-only here */
    for (int tries = 0; tries < READ_RETRIES; tries++) {
        uint64_t s1 = atomic_load_explicit(&mf->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        uint64_t b1 = atomic_load_explicit(&mf->buckets[i1], memory_order_relaxed);
        uint64_t b2 = atomic_load_explicit(&mf->buckets[i2], memory_order_relaxed);
        uint64_t v = atomic_load_explicit(&mf->victim, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&mf->seq, memory_order_relaxed) != s1)
            continue;
        if (bucket_has(b1, fp) || bucket_has(b2, fp))
            return true;
        return v != 0 && (v & FP_MASK) == fp && ((v >> FP_BITS) == i1 || (v >> FP_BITS) == i2);
    }
    return true; /* overlapped the writer too often: "maybe" is always safe */
}

static void write_begin(struct filter *f)
{
    uint64_t s = atomic_load_explicit(&f->seq, memory_order_relaxed);
    atomic_store_explicit(&f->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void write_end(struct filter *f)
{
    uint64_t s = atomic_load_explicit(&f->seq, memory_order_relaxed);
    atomic_store_explicit(&f->seq, s + 1, memory_order_release);
}

/* Put fp in a free slot of bucket i. Writer, inside write_begin/end. */
static bool place(struct filter *f, uint64_t i, uint64_t fp)
{
    uint64_t b = atomic_load_explicit(&f->buckets[i], memory_order_relaxed);
    for (unsigned s = 0; s < FILTER_SLOTS; s++) {
        if (slot_get(b, s) == 0) {
            atomic_store_explicit(&f->buckets[i], slot_set(b, s, fp), memory_order_relaxed);
            return true;
        }
    }
    return false;
}

static uint64_t next_random(struct filter *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

bool filter_insert(struct filter *f, uint64_t hv)
{
    if (atomic_load_explicit(&f->full, memory_order_relaxed))
        return false;
    uint64_t fp = fingerprint(hv);
    uint64_t i = home(f, hv);
    bool ok = true;

    write_begin(f);
    if (!place(f, i, fp)) {
        i = alt(f, i, fp);
        if (!place(f, i, fp)) {
            ok = false;
            if (next_random(f) & 1)
                i = alt(f, i, fp);
            for (int k = 0; k < MAX_KICKS; k++) {
                /* Evict a random fingerprint of bucket i to its other bucket. */
                unsigned s = (unsigned)(next_random(f) % FILTER_SLOTS);
                uint64_t b = atomic_load_explicit(&f->buckets[i], memory_order_relaxed);
                uint64_t out = slot_get(b, s);
                atomic_store_explicit(&f->buckets[i], slot_set(b, s, fp), memory_order_relaxed);
                fp = out;
                i = alt(f, i, fp);
                if (place(f, i, fp)) {
                    ok = true;
                    break;
                }
            }
            if (!ok) {
                atomic_store_explicit(&f->victim, (i << FP_BITS) | fp, memory_order_relaxed);
                atomic_store_explicit(&f->full, true, memory_order_relaxed);
            }
        }
    }
    atomic_fetch_add_explicit(&f->count, 1, memory_order_relaxed);
    write_end(f);
    return ok;
}

/* Clear fp from bucket i. Writer, inside write_begin/end. */
static bool take(struct filter *f, uint64_t i, uint64_t fp)
{
    uint64_t b = atomic_load_explicit(&f->buckets[i], memory_order_relaxed);
    for (unsigned s = 0; s < FILTER_SLOTS; s++) {
        if (slot_get(b, s) == fp) {
            atomic_store_explicit(&f->buckets[i], slot_set(b, s, 0), memory_order_relaxed);
            return true;
        }
    }
    return false;
}

bool filter_remove(struct filter *f, uint64_t hv)
{
    uint64_t fp = fingerprint(hv);
    uint64_t i1 = home(f, hv);
    uint64_t i2 = alt(f, i1, fp);
    write_begin(f);
    bool ok = take(f, i1, fp) || take(f, i2, fp);
    if (!ok) {
        uint64_t v = atomic_load_explicit(&f->victim, memory_order_relaxed);
        if (v != 0 && (v & FP_MASK) == fp && ((v >> FP_BITS) == i1 || (v >> FP_BITS) == i2)) {
            atomic_store_explicit(&f->victim, 0, memory_order_relaxed);
            atomic_store_explicit(&f->full, false, memory_order_relaxed);
            ok = true;
        }
    }
    if (ok)
        atomic_fetch_sub_explicit(&f->count, 1, memory_order_relaxed);
    write_end(f);
    return ok;
}

uint64_t filter_count(const struct filter *f)
{
    return atomic_load_explicit(&((struct filter *)f)->count, memory_order_relaxed);
}

uint64_t filter_capacity(const struct filter *f)
{
    return (uint64_t)((double)f->n * FILTER_SLOTS * FILTER_MAX_LOAD);
}

bool filter_full(const struct filter *f)
{
    return atomic_load_explicit(&((struct filter *)f)->full, memory_order_relaxed);
}

size_t filter_bytes(const struct filter *f)
{
    return sizeof(*f) + f->n * sizeof(uint64_t);
}

/* ---------------------------------------------------------------------------
 * Snapshots
 *
 *   "TCFS" | u32 version | u64 tag | u64 buckets | u64 count | u64 victim |
 *   u32 crc32c(buckets) | u32 0 | buckets (u64 each)          (little endian)
 * ------------------------------------------------------------------------- */

#define SNAP_MAGIC   0x53464354U /* "TCFS" */
#define SNAP_VERSION 2

struct snap_header {
    uint32_t magic, version;
    uint64_t tag, n, count, victim;
    uint32_t crc, pad; /* crc32c of the fields above, then of the buckets */
};

static uint32_t snap_crc(const struct snap_header *h, const void *buckets, size_t bytes)
{
    return tc_crc32c(tc_crc32c(0, h, offsetof(struct snap_header, crc)), buckets, bytes);
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

tc_status_e filter_save(const struct filter *f, const char *path, uint64_t tag)
{
    struct filter *mf = (struct filter *)f;
    size_t bytes = f->n * sizeof(uint64_t);
    uint64_t *copy = malloc(bytes ? bytes : 1);
    if (copy == NULL)
        return TC_NO_MEMORY;
    for (uint64_t i = 0; i < f->n; i++)
        copy[i] = atomic_load_explicit(&mf->buckets[i], memory_order_relaxed);
    struct snap_header h = {
        .magic = SNAP_MAGIC,
        .version = SNAP_VERSION,
        .tag = tag,
        .n = f->n,
        .count = atomic_load(&mf->count),
        .victim = atomic_load(&mf->victim),
    };
    h.crc = snap_crc(&h, copy, bytes);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok =
        fd >= 0 && write_all(fd, &h, sizeof(h)) && write_all(fd, copy, bytes) && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    free(copy);
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        unlink(tmp);
        return TC_IO_ERROR;
    }
    /* Make the rename itself durable. */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return TC_OK;
}

tc_status_e filter_load(const char *path, uint64_t tag, struct filter **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return TC_NOT_FOUND;
    struct snap_header h;
    struct stat st;
    if (!read_all(fd, &h, sizeof(h)) || fstat(fd, &st) != 0 || h.magic != SNAP_MAGIC ||
        h.version != SNAP_VERSION || h.n == 0 || h.n > 0xffffffffULL ||
        (uint64_t)st.st_size != sizeof(h) + h.n * sizeof(uint64_t)) {
        close(fd);
        return TC_INVALID;
    }
    if (h.tag != tag) {
        close(fd);
        return TC_NOT_FOUND;
    }
    struct filter *f = calloc(1, sizeof(*f));
    uint64_t *raw = malloc(h.n * sizeof(uint64_t));
    f = f != NULL && raw != NULL ? f : (free(f), NULL);
    if (f == NULL) {
        free(raw);
        close(fd);
        return TC_NO_MEMORY;
    }
    bool ok = read_all(fd, raw, h.n * sizeof(uint64_t)) &&
              snap_crc(&h, raw, h.n * sizeof(uint64_t)) == h.crc;
    close(fd);
    f->buckets = (_Atomic uint64_t *)raw; /* same size and layout as the array of atomics */
    if (!ok) {
        free(raw);
        free(f);
        return TC_INVALID;
    }
    f->n = h.n;
    atomic_init(&f->count, h.count);
    atomic_init(&f->victim, h.victim);
    atomic_init(&f->full, h.victim != 0);
    f->rng = 0x2545F4914F6CDD1DULL;
    *out = f;
    return TC_OK;
}
