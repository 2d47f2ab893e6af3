/*
 * tier.c: see tier.h.
 */
#include "tier.h"

bool tier_admit(uint32_t exptime, uint32_t now, uint32_t min_ttl, uint32_t nbytes,
                uint32_t max_bytes)
{
    if (nbytes > max_bytes)
        return false;
    if (exptime == 0)
        return true;
    return exptime > now && exptime - now >= min_ttl;
}

bool tier_promote(struct tier_sketch *s, uint64_t hv)
{
    /* Slot from the middle bits, tag from the top ones (never 0: 0 is empty). */
    uint32_t slot = (uint32_t)(hv >> 24) & (TIER_SKETCH_SIZE - 1);
    uint16_t tag = (uint16_t)(hv >> 48) | 1;
    uint16_t seen = atomic_load_explicit(&s->tag[slot], memory_order_relaxed);
    if (seen == tag) {
        atomic_store_explicit(&s->tag[slot], 0, memory_order_relaxed);
        return true;
    }
    atomic_store_explicit(&s->tag[slot], tag, memory_order_relaxed);
    return false;
}
