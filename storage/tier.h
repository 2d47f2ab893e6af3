/*
 * tier.h: the tier policy, as pure functions over an item's metadata and a
 * small sketch of recent flash hits. No locks, no I/O: unit-testable alone.
 *
 *   admit:    may an item go to flash at all? Not if it expires within
 *             --flash-min-ttl (it would be dead before it is read) nor if it
 *             is larger than a flash record holds.
 *   promote:  should a flash hit come back to RAM? On the second hit within
 *             the sketch's memory (about the last 64 K distinct flash hits),
 *             so a key read once from flash does not push a RAM item out.
 */
#ifndef TC_STORAGE_TIER_H
#define TC_STORAGE_TIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TIER_SKETCH_SIZE 65536

struct tier_sketch {
    _Atomic uint16_t tag[TIER_SKETCH_SIZE];
};

/* Whether an item expiring at `exptime` (0: never) of `nbytes` may be demoted at `now`. */
bool tier_admit(uint32_t exptime, uint32_t now, uint32_t min_ttl, uint32_t nbytes,
                uint32_t max_bytes);

/*
 * Record a flash hit for hash hv; true if it is the second one (promote).
 * Any thread; races only blur the memory, never corrupt it.
 */
bool tier_promote(struct tier_sketch *s, uint64_t hv);

#endif
