/*
 * lru.c: list operations for the segmented LRU (see lru.h). The caller holds
 * the class lock.
 */
#include "lru.h"

#include <stddef.h>

void lru_link(struct lru *l, struct item *it, enum lru_seg seg)
{
    item_set_lru(it, seg);
    it->prev = NULL;
    it->next = l->head[seg];
    if (it->next != NULL)
        it->next->prev = it;
    l->head[seg] = it;
    if (l->tail[seg] == NULL)
        l->tail[seg] = it;
    l->count[seg]++;
}

void lru_unlink(struct lru *l, struct item *it)
{
    enum lru_seg seg = item_lru(it);
    if (l->head[seg] == it)
        l->head[seg] = it->next;
    if (l->tail[seg] == it)
        l->tail[seg] = it->prev;
    if (it->next != NULL)
        it->next->prev = it->prev;
    if (it->prev != NULL)
        it->prev->next = it->next;
    it->prev = it->next = NULL;
    item_clear_iflag(it, ITEM_IN_LRU);
    l->count[seg]--;
}

void lru_move(struct lru *l, struct item *it, enum lru_seg seg)
{
    lru_unlink(l, it);
    lru_link(l, it, seg);
}

uint64_t lru_total(const struct lru *l)
{
    return l->count[LRU_HOT] + l->count[LRU_WARM] + l->count[LRU_COLD];
}
