/*
 * fuzz.h: what the libFuzzer targets in tests/fuzz share.
 *
 * FUZZ_CHECK is an assert that NDEBUG cannot remove: a broken invariant
 * prints the condition and its place, then aborts, which libFuzzer reports
 * as a crash (and saves the input as crash-*).
 */
#ifndef TC_FUZZ_H
#define TC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* p[0..n) lies inside [lo, hi). */
#define FUZZ_INSIDE(p, n, lo, hi)                                                                  \
    ((const char *)(p) >= (const char *)(lo) && (const char *)(p) <= (const char *)(hi) &&         \
     (size_t)(n) <= (size_t)((const char *)(hi) - (const char *)(p)))

/* A heap copy of exactly n bytes (malloc(0) too: ASan returns a valid
 * pointer to no bytes), so that ASan reports a parser that reads one byte
 * past what it was given. The caller frees it. */
static inline char *fuzz_dup(const char *p, size_t n)
{
    char *c = malloc(n);
    FUZZ_CHECK(c != NULL);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
