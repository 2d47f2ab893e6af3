/*
 * flash_record.c: the flash record and batch format (see flash_record.h).
 */
#include "flash_record.h"

#include <string.h>

#include "crc32c.h"

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (char)v;
    return n;
}

static bool get_varint(const unsigned char *p, size_t avail, uint64_t *v, size_t *used)
{
    uint64_t r = 0;
    for (size_t i = 0; i < avail && i < 10; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            *v = r;
            *used = i + 1;
            return true;
        }
    }
    return false;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* TCB3: the client flags and the item's bits in one varint. */
static inline uint64_t flags_field(const struct flash_item *it)
{
    return (uint64_t)it->flags << FREC_BITS | (it->mbits & FREC_BITS_MASK);
}

struct frec_packed frec_pack(const struct flash_item *it, uint32_t base_time, uint64_t base_cas)
{
    struct frec_packed p;
    p.exp = it->exptime == 0 ? 0 : zigzag((int64_t)it->exptime - base_time) + 1;
    p.atime = zigzag((int64_t)it->atime - base_time);
    p.cas = zigzag((int64_t)(it->cas - base_cas));
    return p;
}

size_t frec_size(const struct flash_item *it, const struct frec_packed *p)
{
    return 1 + varint_len(it->nbytes) + varint_len(flags_field(it)) + varint_len(p->exp) +
           varint_len(p->atime) + varint_len(p->cas) + it->nkey + it->nbytes;
}

size_t frec_put(char *dst, const struct flash_item *it, const struct frec_packed *p)
{
    size_t n = 0;
    dst[n++] = (char)it->nkey;
    n += put_varint(dst + n, it->nbytes);
    n += put_varint(dst + n, flags_field(it));
    n += put_varint(dst + n, p->exp);
    n += put_varint(dst + n, p->atime);
    n += put_varint(dst + n, p->cas);
    memcpy(dst + n, it->key, it->nkey);
    n += it->nkey;
    memcpy(dst + n, it->value, it->nbytes);
    return n + it->nbytes;
}

bool frec_get(const char *batch, size_t len, size_t off, struct flash_item *it, size_t *size)
{
    if (len < FREC_BATCH_HDR || off < FREC_BATCH_HDR || off >= len)
        return false;
    uint32_t base_time;
    uint64_t base_cas;
    memcpy(&base_time, batch + 12, 4);
    memcpy(&base_cas, batch + 16, 8);
    uint32_t magic;
    memcpy(&magic, batch, 4);
    const unsigned char *p = (const unsigned char *)batch + off;
    size_t avail = len - off, n = 1, used;
    uint64_t f[5]; /* vlen, flags, exp, atime, cas */
    it->nkey = p[0];
    for (int i = 0; i < 5; i++) {
        if (n >= avail || !get_varint(p + n, avail - n, &f[i], &used))
            return false;
        n += used;
    }
    it->mbits = 0;
    if (magic != FREC_BATCH_MAGIC_V2) {
        it->mbits = (uint8_t)(f[1] & FREC_BITS_MASK);
        f[1] >>= FREC_BITS;
    }
    if (f[0] > UINT32_MAX || f[1] > UINT32_MAX)
        return false;
    it->nbytes = (uint32_t)f[0];
    it->flags = (uint32_t)f[1];
    it->exptime = f[2] == 0 ? 0 : (uint32_t)((int64_t)base_time + unzigzag(f[2] - 1));
    it->atime = (uint32_t)((int64_t)base_time + unzigzag(f[3]));
    it->cas = base_cas + (uint64_t)unzigzag(f[4]);
    if (it->nkey == 0 || avail - n < it->nkey || avail - n - it->nkey < it->nbytes)
        return false;
    it->key = (const char *)p + n;
    it->value = (const char *)p + n + it->nkey;
    *size = n + it->nkey + it->nbytes;
    return true;
}

void frec_batch_start(char *batch, uint32_t base_time, uint64_t base_cas)
{
    memcpy(batch + 12, &base_time, 4);
    memcpy(batch + 16, &base_cas, 8);
}

static uint32_t batch_crc(const char *batch, size_t len)
{
    return tc_crc32c(tc_crc32c(0, batch + 4, 4), batch + 12, len - 12);
}

void frec_batch_seal(char *batch, size_t len, uint32_t count, uint32_t base_time, uint64_t base_cas)
{
    uint32_t magic = FREC_BATCH_MAGIC;
    memcpy(batch, &magic, 4);
    memcpy(batch + 4, &count, 4);
    frec_batch_start(batch, base_time, base_cas);
    uint32_t crc = batch_crc(batch, len);
    memcpy(batch + 8, &crc, 4);
}

bool frec_batch_check(const char *batch, size_t len, uint32_t *count)
{
    if (len < FREC_BATCH_HDR)
        return false;
    uint32_t magic, crc;
    memcpy(&magic, batch, 4);
    memcpy(count, batch + 4, 4);
    memcpy(&crc, batch + 8, 4);
    return (magic == FREC_BATCH_MAGIC || magic == FREC_BATCH_MAGIC_V2) &&
           crc == batch_crc(batch, len);
}
