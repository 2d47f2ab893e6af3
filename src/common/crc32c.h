/*
 * crc32c.h: CRC-32C (Castagnoli), the checksum of flash batches and dump
 * records. Uses the SSE4.2 instruction when the CPU has it, a table
 * otherwise; both give the same values. Thread-safe.
 */
#ifndef TC_CRC32C_H
#define TC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) over n bytes. crc32c("123456789") == 0xE3069283. */
uint32_t tc_crc32c(uint32_t crc, const void *data, size_t n);

#endif
