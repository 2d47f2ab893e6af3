/*
 * lru.h: the segmented LRU lists of one slab class.
 *
 * Three doubly linked lists, newest at the head: HOT (just stored), WARM
 * (proven: hit while in HOT or COLD) and COLD (the eviction end). Items move
 * between them in cache.c and maintainer.c; this file only links and
 * unlinks. Every function requires the class lock.
 */
#ifndef TC_STORAGE_LRU_H
#define TC_STORAGE_LRU_H

#include <stdint.h>

#include "item.h"

struct lru {
    struct item *head[LRU_NSEGS];
    struct item *tail[LRU_NSEGS];
    uint64_t count[LRU_NSEGS];
};

/* Put an unlisted item at the head of segment `seg`. */
void lru_link(struct lru *l, struct item *it, enum lru_seg seg);
/* Take an item out of its list. */
void lru_unlink(struct lru *l, struct item *it);
/* Move an item to the head of segment `seg` (possibly its own). */
void lru_move(struct lru *l, struct item *it, enum lru_seg seg);
/* Items in all segments. */
uint64_t lru_total(const struct lru *l);

#endif
