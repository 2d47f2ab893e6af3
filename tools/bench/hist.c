/*
 * hist.c: see hist.h.
 *
 * Bucket layout, with S = HIST_SUB_BITS:
 *
 *   value v                     shift k            index
 *   [0, 2^(S+1))                0                  v            (exact)
 *   [2^(S+k), 2^(S+k+1)), k>=1  msb(v) - S         k*2^S + (v >> k)
 *
 * In the second row v >> k lies in [2^S, 2^(S+1)), so each power of two
 * above 2^S gets 2^S buckets of width 2^k, and consecutive rows are
 * contiguous in index. A bucket of width 2^k starts at >= 2^(S+k), hence
 * the relative error bound 2^-S.
 */
#include "hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

void hist_bucket_range(unsigned index, uint64_t *lo, uint64_t *hi)
{
    if (index < (2u << HIST_SUB_BITS)) {
        *lo = *hi = index;
        return;
    }
    unsigned shift = (index >> HIST_SUB_BITS) - 1;
    uint64_t mantissa = index - ((uint64_t)shift << HIST_SUB_BITS);
    *lo = mantissa << shift;
    *hi = *lo + (1ULL << shift) - 1;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0.0)
        return h->min;
    if (p >= 100.0)
        return h->max;
    /* the rank of the percentile: the smallest r with r >= p% of count */
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            hist_bucket_range(i, &lo, &hi);
            if (hi > h->max)
                hi = h->max;
            if (hi < h->min)
                hi = h->min;
            return hi;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count == 0 ? 0.0 : (double)h->sum / (double)h->count;
}
