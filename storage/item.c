/*
 * item.c: item initialisation and the public accessors of engine.h.
 * The accessors read fields that never change while a reference is held.
 */
#include "item.h"

#include <string.h>

void item_init(struct item *it, uint8_t clsid, const char *key, size_t nkey, uint32_t flags,
               uint32_t exptime, uint32_t nbytes, uint32_t now)
{
    it->h_next = it->prev = it->next = NULL;
    it->cas = 0;
    atomic_store_explicit(&it->exptime, exptime, memory_order_relaxed);
    atomic_store_explicit(&it->atime, now, memory_order_relaxed);
    it->nbytes = nbytes;
    it->flags = flags;
    atomic_store_explicit(&it->refcount, 1, memory_order_relaxed);
    atomic_store_explicit(&it->iflags, 0, memory_order_relaxed);
    it->clsid = clsid;
    it->nkey = (uint8_t)nkey;
    memcpy(it->data, key, nkey);
}

const char *item_key(const struct item *it)
{
    return it->data;
}

size_t item_nkey(const struct item *it)
{
    return it->nkey;
}

const char *item_value(const struct item *it)
{
    return it->data + it->nkey;
}

char *item_value_mut(struct item *it)
{
    return it->data + it->nkey;
}

uint32_t item_nbytes(const struct item *it)
{
    return it->nbytes;
}

uint32_t item_flags(const struct item *it)
{
    return it->flags;
}

uint64_t item_cas(const struct item *it)
{
    return it->cas;
}

cache_time_t item_exptime(const struct item *it)
{
    return item_get_exptime(it);
}
