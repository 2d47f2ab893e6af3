/*
 * numparse.c: see numparse.h. The core is strto_emul(), a transcription of
 * what glibc's strtoul/strtol do in base 10 (skip isspace, optional sign,
 * digits with overflow detection), followed by memcached's acceptance rule.
 */
#include "numparse.h"

#include <string.h>

static bool is_c_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Parse like strtoull(s, &end, 10) on the token s[0..n): *mag receives the
 * magnitude (saturated on overflow), *neg the sign, *end the index after the
 * last digit (0 when nothing was converted, as strtoul sets endptr = str).
 * Returns false when no digits were found.
 */
static bool strto_emul(const char *s, size_t n, uint64_t *mag, bool *neg, bool *overflow,
                       size_t *end)
{
    size_t i = 0;
    while (i < n && is_c_space(s[i]))
        i++;
    *neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        *neg = s[i] == '-';
        i++;
    }
    size_t digits_start = i;
    uint64_t v = 0;
    *overflow = false;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
        i++;
    }
    if (i == digits_start) {
        *end = 0;
        return false;
    }
    *mag = v;
    *end = i;
    return true;
}

/* memcached's rule: the number must end at whitespace or at the token's end. */
static bool ends_well(const char *s, size_t n, size_t end)
{
    return end == n || is_c_space(s[end]);
}

bool tc_strtoull(const char *s, size_t n, uint64_t *out)
{
    uint64_t mag;
    bool neg, overflow;
    size_t end;
    *out = 0;
    if (!strto_emul(s, n, &mag, &neg, &overflow, &end) || overflow)
        return false;
    if (!ends_well(s, n, end))
        return false;
    uint64_t v = neg ? (uint64_t)0 - mag : mag;
    /* memcached 1.6.18 looks for a '-' in the whole token (strchr), so
     * "18446744073709551615\t-" is refused; the differential test checks it. */
    if ((int64_t)v < 0 && memchr(s, '-', n) != NULL)
        return false;
    *out = v;
    return true;
}

bool tc_strtoul32(const char *s, size_t n, uint32_t *out)
{
    uint64_t v;
    *out = 0;
    if (!tc_strtoull(s, n, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool tc_strtoll(const char *s, size_t n, int64_t *out)
{
    uint64_t mag;
    bool neg, overflow;
    size_t end;
    *out = 0;
    if (!strto_emul(s, n, &mag, &neg, &overflow, &end) || overflow)
        return false;
    /* strtol range: [-2^63, 2^63-1]; outside is ERANGE. */
    if (!neg && mag > (uint64_t)INT64_MAX)
        return false;
    if (neg && mag > (uint64_t)INT64_MAX + 1)
        return false;
    if (!ends_well(s, n, end))
        return false;
    *out = neg ? (int64_t)((uint64_t)0 - mag) : (int64_t)mag;
    return true;
}

bool tc_strtol32(const char *s, size_t n, int32_t *out)
{
    int64_t v;
    *out = 0;
    if (!tc_strtoll(s, n, &v))
        return false;
    *out = (int32_t)(uint32_t)(uint64_t)v; /* memcached: long stored into int32_t */
    return true;
}

size_t tc_u64toa(uint64_t v, char *buf)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

bool tc_parse_size(const char *s, uint64_t unit, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0)
        return false;
    uint64_t mult = unit;
    switch (s[n - 1]) {
    case 'k':
    case 'K':
        mult = 1ULL << 10;
        n--;
        break;
    case 'm':
    case 'M':
        mult = 1ULL << 20;
        n--;
        break;
    case 'g':
    case 'G':
        mult = 1ULL << 30;
        n--;
        break;
    case 't':
    case 'T':
        mult = 1ULL << 40;
        n--;
        break;
    default:
        break;
    }
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (mult != 0 && v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}
