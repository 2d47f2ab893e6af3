/*
 * crc32c.c: see crc32c.h. The table version is the classic byte-at-a-time
 * reflected algorithm (polynomial 0x82F63B78); the hardware version feeds
 * 8 bytes at a time to the crc32 instruction. The choice is made once.
 */
#include "crc32c.h"

#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static uint32_t table[256];

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78U : c >> 1;
        table[i] = c;
    }
}

static uint32_t crc_table(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t n)
{
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

static bool have_sse42(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    return (c & bit_SSE4_2) != 0;
}
#endif

static uint32_t (*impl)(uint32_t, const unsigned char *, size_t);

__attribute__((constructor)) static void crc32c_init(void)
{
    table_init();
    impl = crc_table;
#if defined(__x86_64__)
    if (have_sse42())
        impl = crc_hw;
#endif
}

uint32_t tc_crc32c(uint32_t crc, const void *data, size_t n)
{
    return impl(crc, data, n);
}
