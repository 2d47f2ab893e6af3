/*
 * zipf.c: Zipf ranks by rejection-inversion (W. Hörmann and G. Derflinger,
 * "Rejection-inversion to generate variates from monotone discrete
 * distributions", ACM TOMACS 6(3), 1996), the method Apache Commons RNG and
 * YCSB's successors use.
 *
 * How it works. Let h(x) = x^-alpha, the unnormalised probability of rank
 * x, and H(x) an antiderivative of h:
 *     H(x) = (x^(1-alpha) - 1) / (1 - alpha)      (log x when alpha = 1).
 * The area under h between k - 1/2 and k + 1/2 is close to h(k) and, since
 * h is convex, never smaller. So draw u uniformly from the area
 * (H(1.5) - h(1), H(n + 0.5)], invert it to x = H^-1(u), round to the rank
 * k nearest x, and accept k when u lies in the part of k's slice whose area
 * is exactly h(k): u >= H(k + 1/2) - h(k). The rejected remainder is small
 * (a few per cent at worst), so the expected cost is a handful of log/exp
 * calls whatever n is; no table of n probabilities is ever built.
 *
 * The quick acceptance test k - x <= threshold skips computing H(k + 1/2)
 * for most draws. helper1/helper2 evaluate log1p(x)/x and expm1(x)/x with
 * a series near 0, so alpha = 1 (where 1 - alpha vanishes) needs no special
 * case and keeps full precision.
 */
#include "zipf.h"

#include <math.h>

/* log1p(x) / x, continuous at 0. */
static double helper1(double x)
{
    if (fabs(x) > 1e-8)
        return log1p(x) / x;
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* expm1(x) / x, continuous at 0. */
static double helper2(double x)
{
    if (fabs(x) > 1e-8)
        return expm1(x) / x;
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

/* h(x) = x^-alpha */
static double h(double alpha, double x)
{
    return exp(-alpha * log(x));
}

/* H(x) = (x^(1-alpha) - 1) / (1 - alpha), written to stay exact at alpha = 1. */
static double h_integral(double alpha, double x)
{
    double log_x = log(x);
    return helper2((1.0 - alpha) * log_x) * log_x;
}

/* The inverse of H. */
static double h_integral_inverse(double alpha, double x)
{
    double t = x * (1.0 - alpha);
    if (t < -1.0)
        t = -1.0; /* rounding can push t just below the domain of log1p */
    return exp(helper1(t) * x);
}

tc_status_e zipf_init(struct zipf *z, uint64_t n, double alpha)
{
    if (n == 0 || !(alpha > 0.0 && alpha <= 100.0))
        return TC_INVALID;
    z->n = n;
    z->alpha = alpha;
    z->h_int_x1 = h_integral(alpha, 1.5) - 1.0;
    z->h_int_n = h_integral(alpha, (double)n + 0.5);
    z->threshold = 2.0 - h_integral_inverse(alpha, h_integral(alpha, 2.5) - h(alpha, 2.0));
    return TC_OK;
}

uint64_t zipf_sample(const struct zipf *z, struct rng *r)
{
    for (;;) {
        /* u is uniform in (h_int_x1, h_int_n] */
        double u = z->h_int_n + rng_double(r) * (z->h_int_x1 - z->h_int_n);
        double x = h_integral_inverse(z->alpha, u);
        double kd = floor(x + 0.5);
        uint64_t k;
        if (kd < 1.0)
            k = 1;
        else if (kd >= (double)z->n)
            k = z->n;
        else
            k = (uint64_t)kd;
        if ((double)k - x <= z->threshold ||
            u >= h_integral(z->alpha, (double)k + 0.5) - h(z->alpha, (double)k))
            return k;
    }
}
