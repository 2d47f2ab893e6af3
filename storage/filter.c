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

#include <stdatomic.h>
#include <stdlib.h>

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
