/*
 * check_flash.h: what the two halves of the check_flash executable share:
 * check_flash.c (opening, round trips, space), check_flash_restart.c
 * (restarts, damaged directories, the record format) and
 * check_flash_faults.c (fault injection at every LMDB call).
 *
 * One store at a time: F with its reader R, in the directory DIR_ under the
 * run's root (made and removed by main()).
 */
#ifndef TC_TESTS_CHECK_FLASH_H
#define TC_TESTS_CHECK_FLASH_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flash.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

#define ERR_MAP_FULL (-30792) /* MDB_MAP_FULL, as engine.h documents it */

extern char ROOT[64];  /* the run's root directory */
extern char DIR_[256]; /* the store's directory */
extern uint64_t SIZE_; /* the store's size */
extern struct flash *F;
extern struct flash_reader *R;
extern uint64_t next_cas; /* mk() hands out CAS values from here */

/* A fresh directory under the run's root. */
void new_dir(char *out, size_t len);
void rm_rf(const char *path);
tc_status_e open_at(const char *dir, uint64_t size, struct flash **out);
/* Open F (and R) on a new directory of `size` bytes; close and remove it. */
void open_store(uint64_t size);
void close_store(void);
void setup_small(void); /* open_store(8 MiB) */
void teardown(void);    /* close_store() */

/* A record described by its fields; the value bytes are generated from vseed
 * (0: the 256 byte values in order, repeated). */
struct rec {
    char key[256];
    size_t nkey;
    uint64_t hv;
    uint32_t nbytes, flags, exptime, atime;
    uint64_t cas;
    uint64_t vseed;
};

void value_fill(char *dst, uint32_t n, uint64_t seed);
/* A record for key (the engine's hash) with a fresh CAS. */
struct rec mk(const char *key, uint32_t nbytes);
tc_status_e write_rec(const struct rec *r, bool *skipped);
/* Write the records in one transaction and commit; every step must succeed. */
void commit_recs(const struct rec *rs, size_t n);
void commit_one(const struct rec *r);
/* NULL if the key reads back through rd exactly as r, else what differs. */
const char *differs(struct flash_reader *rd, const struct rec *r);
/* flash_get's status, the read ended. */
tc_status_e lookup(struct flash_reader *rd, uint64_t hv, const char *key);
struct flash_stats stats(void);
/* Commit nb batches of per records of val bytes, keyed prefix:b:i (malloc'd). */
struct rec *fill_batches(const char *prefix, int nb, int per, uint32_t val);

/* Records reported by flash_drain_evicted. */
struct evlist {
    size_t n, cap;
    struct evrec {
        char key[256];
        size_t nkey;
        uint64_t hv, cas;
    } * v;
};
void on_evicted(void *arg, uint64_t hv, const char *key, size_t nkey, uint64_t cas);

#define ck_rec(r)                                                                                  \
    do {                                                                                           \
        const char *why_ = differs(R, (r));                                                        \
        ck_assert_msg(why_ == NULL, "%s", why_);                                                   \
    } while (0)

#define ck_gone(r)                                                                                 \
    do {                                                                                           \
        tc_status_e st_ = lookup(R, (r)->hv, (r)->key);                                            \
        ck_assert_msg(st_ == TC_NOT_FOUND, "'%s' is %s, want not found", (r)->key,                 \
                      tc_strerror(st_));                                                           \
    } while (0)

/* check_flash_faults.c */
TCase *flash_fault_tcase(void);
/* check_flash_restart.c */
TCase *flash_restart_tcase(void);
TCase *flash_record_tcase(void);

#endif
