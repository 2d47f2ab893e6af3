/*
 * sizedist.c: see sizedist.h. Sampling picks an entry by a linear walk of
 * cumulative weights (specs are short, the walk is a few compares), then a
 * uniform size inside the entry's range.
 */
#include "sizedist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numparse.h"

/* Parse one size token [s, s+n) with k/m/g suffixes into *out. */
static bool parse_size_token(const char *s, size_t n, uint64_t *out)
{
    char tmp[32];
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return tc_parse_size(tmp, 1, out);
}

/* Parse one entry "SIZE[-SIZE][:WEIGHT]" of length n. */
static bool parse_entry(const char *s, size_t n, uint64_t *lo, uint64_t *hi, double *weight)
{
    const char *colon = memchr(s, ':', n);
    size_t range_len = colon != NULL ? (size_t)(colon - s) : n;
    *weight = 1.0;
    if (colon != NULL) {
        char tmp[32], *end;
        size_t wlen = n - range_len - 1;
        if (wlen == 0 || wlen >= sizeof(tmp))
            return false;
        memcpy(tmp, colon + 1, wlen);
        tmp[wlen] = '\0';
        *weight = strtod(tmp, &end);
        if (*end != '\0' || !(*weight > 0.0 && *weight < 1e12))
            return false;
    }
    const char *dash = memchr(s, '-', range_len);
    if (dash == NULL) {
        if (!parse_size_token(s, range_len, lo))
            return false;
        *hi = *lo;
        return true;
    }
    return parse_size_token(s, (size_t)(dash - s), lo) &&
           parse_size_token(dash + 1, range_len - (size_t)(dash - s) - 1, hi) && *lo <= *hi;
}

tc_status_e sizedist_parse(struct sizedist *d, const char *spec, uint32_t limit, char *err,
                           size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->min = UINT32_MAX;
    double total = 0.0, weighted_mean = 0.0;
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        uint64_t lo, hi;
        double w;
        if (d->n == SIZEDIST_MAX_ENTRIES) {
            snprintf(err, errlen, "value size '%s': more than %d entries", spec,
                     SIZEDIST_MAX_ENTRIES);
            return TC_INVALID;
        }
        if (!parse_entry(p, n, &lo, &hi, &w)) {
            snprintf(err, errlen,
                     "value size '%s': '%.*s' is not SIZE, LO-HI or either with :WEIGHT", spec,
                     (int)n, p);
            return TC_INVALID;
        }
        if (lo < 1 || hi > limit) {
            snprintf(err, errlen, "value size '%s': sizes must lie in [1, %u] bytes", spec,
                     (unsigned)limit);
            return TC_INVALID;
        }
        d->e[d->n].lo = (uint32_t)lo;
        d->e[d->n].hi = (uint32_t)hi;
        total += w;
        d->e[d->n].cum = total;
        weighted_mean += w * ((double)lo + (double)hi) / 2.0;
        if (lo < d->min)
            d->min = (uint32_t)lo;
        if (hi > d->max)
            d->max = (uint32_t)hi;
        d->n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    for (unsigned i = 0; i < d->n; i++)
        d->e[i].cum /= total;
    d->e[d->n - 1].cum = 1.0; /* no rounding gap at the top */
    d->mean = weighted_mean / total;
    return TC_OK;
}

uint32_t sizedist_sample(const struct sizedist *d, struct rng *r)
{
    unsigned i = 0;
    if (d->n > 1) {
        double u = rng_double(r);
        while (i + 1 < d->n && u >= d->e[i].cum)
            i++;
    }
    uint32_t lo = d->e[i].lo, hi = d->e[i].hi;
    return lo == hi ? lo : lo + (uint32_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}
