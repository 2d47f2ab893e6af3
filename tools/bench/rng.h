/*
 * rng.h: the bench's pseudo-random numbers: xoshiro256** seeded through
 * splitmix64 (both public-domain algorithms by Vigna and Blackman).
 *
 * Each worker thread owns one `struct rng`; nothing here is shared, so there
 * is no locking. Everything is static inline: the generators sit on the hot
 * path of every operation (key choice, op choice, value size, version).
 */
#ifndef TC_BENCH_RNG_H
#define TC_BENCH_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
};

/* One step of splitmix64: a good 64-bit mix of *state, which it advances. */
static inline uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seed a generator; equal seeds give equal sequences. Any seed is valid. */
static inline void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix64(&seed);
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits. */
static inline uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* A double uniformly distributed in [0, 1), 53 bits of precision. */
static inline double rng_double(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* A number uniformly distributed in [0, n); n > 0 (Lemire's multiply-shift, bias < 2^-64 * n). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

#endif
