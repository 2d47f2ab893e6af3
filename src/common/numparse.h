/*
 * numparse.h: number parsing and printing with memcached's exact semantics.
 *
 * memcached parses protocol numbers with strtoul/strtol/strtoull on a
 * NUL-terminated token and accepts the result when the number is followed by
 * whitespace or the end of the token (util.c, safe_strto*). These functions
 * reproduce that on a (pointer, length) token without copying, quirks
 * included, because byte-identical replies depend on them:
 *   - leading whitespace and a sign are accepted ("+5", "\t5");
 *   - the first whitespace after the digits ends the number ("5\tx" is 5);
 *   - a 32-bit result is the low 32 bits of the 64-bit value (memcached
 *     stores strtoul's unsigned long into a uint32_t): "4294967297" is 1;
 *   - a value that only fits negated ("-1" read as unsigned) is rejected.
 * All are pure and thread-safe.
 */
#ifndef TC_NUMPARSE_H
#define TC_NUMPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* memcached safe_strtoul: unsigned, truncated to 32 bits. */
bool tc_strtoul32(const char *s, size_t n, uint32_t *out);

/* memcached safe_strtol: signed (64-bit range checked), truncated to 32 bits. */
bool tc_strtol32(const char *s, size_t n, int32_t *out);

/* memcached safe_strtoull: unsigned 64-bit. */
bool tc_strtoull(const char *s, size_t n, uint64_t *out);

/* memcached safe_strtoll: signed 64-bit. */
bool tc_strtoll(const char *s, size_t n, int64_t *out);

/* Decimal text of v into buf (at least 21 bytes); returns the length, no NUL. */
size_t tc_u64toa(uint64_t v, char *buf);

/*
 * A size with an optional k/m/g/t suffix (powers of 1024, either case);
 * a plain number is multiplied by `unit`. Returns false on junk or overflow.
 */
bool tc_parse_size(const char *s, uint64_t unit, uint64_t *out);

#endif
