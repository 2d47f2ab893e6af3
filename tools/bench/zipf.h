/*
 * zipf.h: Zipf-distributed ranks for skewed key popularity.
 *
 * Rank k in [1, n] is drawn with probability k^-alpha / H(n, alpha), where
 * H(n, alpha) = sum over i in [1, n] of i^-alpha. Setup is O(1) and each
 * draw costs O(1) expected time whatever n is (rejection-inversion, see
 * zipf.c), so a key space of a billion keys costs nothing to set up.
 *
 * A `struct zipf` is read-only after zipf_init(): any number of threads may
 * draw from the same one, each with its own struct rng.
 */
#ifndef TC_BENCH_ZIPF_H
#define TC_BENCH_ZIPF_H

#include <stdint.h>

#include "rng.h"
#include "tiercache/status.h"

struct zipf {
    uint64_t n;       /* ranks are 1..n */
    double alpha;     /* the exponent (skew); 0.99 is the classic cache workload */
    double h_int_x1;  /* H(1.5) - 1: lower end of the inversion interval */
    double h_int_n;   /* H(n + 0.5): upper end */
    double threshold; /* accept without the second test when k - x <= threshold */
};

/*
 * Prepare a generator of ranks in [1, n] with exponent alpha.
 * Returns TC_OK, or TC_INVALID if n == 0 or alpha is not in (0, 100].
 */
tc_status_e zipf_init(struct zipf *z, uint64_t n, double alpha);

/* Draw one rank in [1, n]. Thread-safe for a shared z (r is the caller's). */
uint64_t zipf_sample(const struct zipf *z, struct rng *r);

#endif
