/*
 * keyspace.c: see keyspace.h.
 */
#include "keyspace.h"

#include <string.h>

#include "numparse.h"

const char *const keyspace_pattern_names[] = {"uniform", "zipf", "sequential", NULL};

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

tc_status_e keyspace_init(struct keyspace *ks, uint64_t n, enum keyspace_pattern pattern,
                          double alpha, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (n == 0 || plen >= sizeof(ks->prefix))
        return TC_INVALID;
    for (size_t i = 0; i < plen; i++) {
        if ((unsigned char)prefix[i] <= ' ' || prefix[i] == 0x7f)
            return TC_INVALID;
    }
    memset(ks, 0, sizeof(*ks));
    ks->n = n;
    ks->pattern = pattern;
    memcpy(ks->prefix, prefix, plen + 1);
    ks->prefix_len = plen;
    atomic_init(&ks->next, 0);
    if (pattern == KEYSPACE_ZIPF && zipf_init(&ks->zipf, n, alpha) != TC_OK)
        return TC_INVALID;
    /* A multiplier near n / golden ratio, coprime with n, scatters consecutive ranks. */
    uint64_t m = (uint64_t)((double)n * 0.6180339887) | 1;
    while (n > 1 && gcd(m % n, n) != 1)
        m++;
    ks->scramble = n > 1 ? m % n : 0;
    return TC_OK;
}

uint64_t keyspace_next(struct keyspace *ks, struct rng *r)
{
    switch (ks->pattern) {
    case KEYSPACE_UNIFORM:
        return rng_below(r, ks->n);
    case KEYSPACE_ZIPF: {
        uint64_t rank = zipf_sample(&ks->zipf, r) - 1;
        return (uint64_t)(((unsigned __int128)rank * ks->scramble) % ks->n);
    }
    case KEYSPACE_SEQUENTIAL:
        return atomic_fetch_add_explicit(&ks->next, 1, memory_order_relaxed) % ks->n;
    }
    return 0;
}

size_t keyspace_format(const struct keyspace *ks, uint64_t id, char *buf)
{
    memcpy(buf, ks->prefix, ks->prefix_len);
    return ks->prefix_len + tc_u64toa(id, buf + ks->prefix_len);
}

bool keyspace_parse(const struct keyspace *ks, const char *key, size_t len, uint64_t *id)
{
    if (len <= ks->prefix_len || len > ks->prefix_len + 20 ||
        memcmp(key, ks->prefix, ks->prefix_len) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = ks->prefix_len; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return false;
        uint64_t d = (uint64_t)(key[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v >= ks->n)
        return false;
    *id = v;
    return true;
}
