/*
 * flash_record.h: the on-disk format of flash batches and records. Pure
 * functions, no LMDB: the flash module writes and reads with them, and the
 * offline tools can parse a data dir with them.
 *
 *   batch:   u32 magic "TCB3" | u32 count | u32 crc32c(count, bytes 12..end) |
 *            u32 base_time | u64 base_cas | records...        (little endian)
 *   record:  u8 nkey | varint vlen | varint flags << 4 | mbits | varint exp |
 *            varint atime | varint cas | key | value
 *            mbits: the item's meta-protocol state (FREC_META_MASK) and
 *            its fetched mark (FREC_FETCHED), four bits beside the client
 *            flags so that the common flags < 8 still take one byte. "TCB2" batches (written before
 * the meta commands) have plain flags and read with mbits 0. exp: 0 never, else zigzag(exptime -
 * base_time) + 1; atime, cas: zigzag(x - base). Items of one batch are close in time and CAS, so a
 * 100-byte value's record header is ~8 bytes instead of 19. location of a record: seq << 24 | byte
 * offset in its batch
 */
#ifndef TC_STORAGE_FLASH_RECORD_H
#define TC_STORAGE_FLASH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FREC_BATCH_MAGIC     0x33424354U /* "TCB3" little endian */
#define FREC_BATCH_MAGIC_V2  0x32424354U /* "TCB2": no meta bits; still read */
#define FREC_BATCH_HDR       24
#define FREC_LOC_OFFSET_BITS 24
#define FREC_BATCH_MAX       ((1U << FREC_LOC_OFFSET_BITS) - 1)

/* A record as read from flash (pointers into the batch) or to be written. */
struct flash_item {
    const char *key;
    size_t nkey;
    const char *value;
    uint32_t nbytes;
    uint32_t flags;
    uint32_t exptime;
    uint32_t atime;
    uint64_t cas;
    uint8_t mbits; /* CACHE_META_* | FREC_FETCHED */
};

/* Meta-protocol state kept with a record (the engine's CACHE_META_*). */
#define FREC_META_MASK 7u /* CACHE_META_* */
#define FREC_FETCHED   8u /* read since stored (memcached's ITEM_FETCHED) */
#define FREC_BITS_MASK 15u
#define FREC_BITS      4 /* width of the bits beside the client flags */

/* A record's fields encoded against its batch's base time and CAS. */
struct frec_packed {
    uint64_t exp, atime, cas;
};

struct frec_packed frec_pack(const struct flash_item *it, uint32_t base_time, uint64_t base_cas);

/* Bytes the record takes. */
size_t frec_size(const struct flash_item *it, const struct frec_packed *p);

/* Write the record at dst (frec_size() bytes); returns the size. */
size_t frec_put(char *dst, const struct flash_item *it, const struct frec_packed *p);

/*
 * Parse the record at `off` of a batch of `len` bytes. False if it does not
 * fit in the batch (a damaged batch never reads out of bounds).
 */
bool frec_get(const char *batch, size_t len, size_t off, struct flash_item *it, size_t *size);

/* Start a batch: its base time and CAS, against which records are encoded. */
void frec_batch_start(char *batch, uint32_t base_time, uint64_t base_cas);

/* Fill a batch's header (count, base values, checksum) once its records are in. */
void frec_batch_seal(char *batch, size_t len, uint32_t count, uint32_t base_time,
                     uint64_t base_cas);

/* Check a batch's magic and checksum; *count gets its record count. */
bool frec_batch_check(const char *batch, size_t len, uint32_t *count);

static inline uint64_t frec_loc(uint64_t seq, size_t off)
{
    return seq << FREC_LOC_OFFSET_BITS | off;
}

static inline uint64_t frec_loc_seq(uint64_t loc)
{
    return loc >> FREC_LOC_OFFSET_BITS;
}

static inline size_t frec_loc_off(uint64_t loc)
{
    return (size_t)(loc & FREC_BATCH_MAX);
}

#endif
