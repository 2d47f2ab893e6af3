/*
 * hist.h: a latency histogram with log-linear buckets, HdrHistogram-style.
 *
 * Values (nanoseconds, or any unit) are counted in buckets whose width is
 * at most 1/128 of their lower bound, so any percentile is reported with a
 * relative error below 2^-HIST_SUB_BITS (0.78 %), from 1 to 2^40 - 1
 * (18 minutes of nanoseconds) in 4,352 fixed counters: recording is a
 * count-leading-zeros, a shift and an increment, with no allocation.
 * Larger values are clamped to HIST_MAX_VALUE (min/max/sum stay exact).
 *
 * A histogram is plain data with no locking: each worker thread records
 * into its own and the reporter merges them after the threads stop.
 */
#ifndef TC_BENCH_HIST_H
#define TC_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  7                  /* 128 sub-buckets per power of two */
#define HIST_MAX_VALUE ((1ULL << 40) - 1) /* larger values are clamped */
#define HIST_BUCKETS   ((40 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

struct hist {
    uint64_t count;
    uint64_t min, max; /* exact; min is UINT64_MAX while empty */
    uint64_t sum;      /* for the mean; overflows only after 584 years of latency */
    uint64_t counts[HIST_BUCKETS];
};

/* Empty the histogram (in place; no allocation, nothing to free). */
void hist_init(struct hist *h);

/* Add every count of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at percentile p (0..100): the highest value that falls in the
 * same bucket as the true percentile (so never below it, and above it by
 * less than 2^-HIST_SUB_BITS of it), clamped to [min, max]. p <= 0 gives the
 * minimum, p >= 100 the maximum; 0 for an empty histogram.
 */
uint64_t hist_percentile(const struct hist *h, double p);

/* The mean of the recorded values (0 when empty). */
double hist_mean(const struct hist *h);

/* The bucket index of value v (exposed for tests). */
static inline unsigned hist_index(uint64_t v)
{
    if (v > HIST_MAX_VALUE)
        v = HIST_MAX_VALUE;
    int msb = 63 - __builtin_clzll(v | 1);
    int shift = msb > HIST_SUB_BITS ? msb - HIST_SUB_BITS : 0;
    return ((unsigned)shift << HIST_SUB_BITS) + (unsigned)(v >> shift);
}

/* The lowest and highest values of bucket `index` (exposed for tests). */
void hist_bucket_range(unsigned index, uint64_t *lo, uint64_t *hi);

/* Count one value (the hot path: no branch but the min/max updates). */
static inline void hist_record(struct hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

#endif
