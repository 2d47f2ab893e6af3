/*
 * sizedist.h: value-size distributions for the bench's sets.
 *
 * A spec is a comma-separated list of entries, each a size or a range with
 * an optional weight (sizes take k/m suffixes, powers of 1024):
 *
 *   100                      every value 100 bytes
 *   64-4096                  uniform in [64, 4096]
 *   100:70,1k:25,10k-20k:5   100 B with weight 70, 1 KiB with 25,
 *                            uniform in [10 KiB, 20 KiB] with 5
 *
 * A parsed `struct sizedist` is read-only: threads may sample from a shared
 * one, each with its own rng.
 */
#ifndef TC_BENCH_SIZEDIST_H
#define TC_BENCH_SIZEDIST_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "tiercache/status.h"

#define SIZEDIST_MAX_ENTRIES 64

struct sizedist {
    unsigned n; /* entries */
    struct {
        uint32_t lo, hi; /* inclusive range; lo == hi for a fixed size */
        double cum;      /* cumulative probability up to and including this entry */
    } e[SIZEDIST_MAX_ENTRIES];
    uint32_t min, max; /* smallest and largest size the spec can produce */
    double mean;       /* expected size in bytes */
};

/*
 * Parse `spec` into *d; every size must lie in [1, limit]. Returns TC_OK,
 * or TC_INVALID with a one-line reason in err (errlen bytes).
 */
tc_status_e sizedist_parse(struct sizedist *d, const char *spec, uint32_t limit, char *err,
                           size_t errlen);

/* Draw one size. */
uint32_t sizedist_sample(const struct sizedist *d, struct rng *r);

#endif
