/*
 * ops_internal.h: the pieces of a key operation (ops.c) that the meta
 * operations (meta_ops.c) are built from. Every function here runs with
 * the key's hash stripe held.
 */
#ifndef TC_STORAGE_OPS_INTERNAL_H
#define TC_STORAGE_OPS_INTERNAL_H

#include "cache_internal.h"

#define REFCOUNT_LIMIT 60000

/* What a lookup found. */
struct found {
    struct item *it;    /* live RAM item, or NULL */
    struct item *entry; /* the key's table entry to replace on a store (item or tombstone) */
    bool on_flash;      /* rec is a live flash record (reader open until found_end) */
    bool flash_error;   /* the filter said maybe but flash could not be read */
    struct flash_item rec;
};

/* The key's current state in either tier (RAM only if !look_on_flash).
 * An expired or flushed item met on the way is reclaimed. */
void find_in(struct cache_worker *w, uint64_t hv, const char *key, size_t nkey, struct found *f,
             bool look_on_flash);
void find_key(struct cache_worker *w, uint64_t hv, const char *key, size_t nkey, struct found *f);
/* Close the flash read a lookup left open (before changing anything). */
void found_end(struct cache_worker *w, struct found *f);
bool found_any(const struct found *f);
uint64_t found_cas(const struct found *f);
void found_fields(const struct found *f, const char **value, uint32_t *nbytes, uint32_t *flags,
                  uint32_t *exptime);

/* A new unlinked RAM item: TC_OK, TC_BUSY (retry), TC_NO_MEMORY. */
tc_status_e alloc_item(struct cache_worker *w, const char *key, size_t nkey, uint32_t flags,
                       cache_time_t exptime, uint32_t nbytes, struct item **out);
/* alloc_item() for a new value, held to -I: or TC_TOO_LARGE. */
tc_status_e new_item(struct cache_worker *w, const char *key, size_t nkey, uint32_t flags,
                     cache_time_t exptime, uint32_t nbytes, struct item **out);
/* Bring the flash record found into RAM, linked, with `exptime`; clean if
 * it matches flash. The reference is the caller's. NULL if RAM has no room. */
struct item *materialize(struct cache_worker *w, uint64_t hv, const struct found *f,
                         cache_time_t exptime, bool clean);
/* An unlinked heap copy of a flash record, for a reader. */
struct item *heap_copy(struct cache *c, const struct flash_item *r);

/* A use of a live item: fetched, active, access time now. */
void item_bump(struct cache_worker *w, struct item *it);
/* The item changed in place: flash's copy of it is no longer current. */
void changed_in_place(struct cache *c, struct item *it, uint64_t hv);
void set_exptime(struct cache *c, struct item *it, uint64_t hv, cache_time_t exptime);
/* Count a get (or touch) hit in the item's class. */
void count_hit(struct cache_worker *w, const struct item *it, bool touch);

/* cache_store, and with `invalidate` memcached's ms I: a CAS older than the
 * item's stores the value as stale instead of failing. */
tc_status_e ops_store(struct cache_worker *w, struct item *it, enum cache_store_op op, uint64_t cas,
                      bool invalidate, uint64_t *cas_out);

/* incr/decr with the meta protocol's extras (cache_arith is the plain case). */
struct arith_req {
    bool incr;
    uint64_t delta;
    uint64_t cas;     /* nonzero: only if the item's CAS is this (else TC_EXISTS) */
    bool set_exptime; /* an existing item takes `exptime` */
    cache_time_t exptime;
    bool vivify; /* a missing key is created with `initial` ... */
    uint64_t initial;
    cache_time_t vivify_exptime; /* ... and this expiry */
};

struct arith_res {
    uint64_t value, cas;
    bool created;
    cache_time_t exptime_before; /* the expiry before set_exptime (0 if created) */
};

tc_status_e ops_arith(struct cache_worker *w, const char *key, size_t nkey,
                      const struct arith_req *a, struct arith_res *r);

#endif
