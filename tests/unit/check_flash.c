/*
 * check_flash.c: unit tests for the flash store (storage/flash.h): LMDB
 * environments in fresh temporary directories, written through the writer
 * transaction API and read back through reader handles.
 *
 * What matters: a record comes back exactly as written (key, every byte
 * value, flags, expiry, access time, CAS); overwrites, deletes and keys that
 * share a hash behave; flash eviction drops the oldest batches and reports
 * what it dropped; a full map is recoverable; and a failure at any LMDB call
 * of a transaction leaves nothing half-applied and the store usable.
 *
 * Every test runs in its own directory under one root made by main() (in
 * the parent process), which main() removes at the end, so directories of
 * failed or timed-out tests go too.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_flash.h"
#include "hashtable.h"

char ROOT[64]; /* made by main() */
char DIR_[256];
uint64_t SIZE_; /* of the open store */
struct flash *F;
struct flash_reader *R;
uint64_t next_cas = 1000;

/* ---------------------------------------------------------------------------
 * Directories and the store
 * ------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under ROOT. */
void new_dir(char *out, size_t len)
{
    snprintf(out, len, "%s/f.XXXXXX", ROOT);
    ck_assert_ptr_nonnull(mkdtemp(out));
}

tc_status_e open_at(const char *dir, uint64_t size, struct flash **out)
{
    struct flash_options o = {.dir = dir, .size = size, .sync = 0, .max_readers = 8};
    return flash_open(&o, out);
}

/* Open F (and its reader R) on a new directory. */
void open_store(uint64_t size)
{
    new_dir(DIR_, sizeof(DIR_));
    SIZE_ = size;
    ck_assert_int_eq(open_at(DIR_, size, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
}

void close_store(void)
{
    flash_reader_destroy(&R);
    flash_close(&F);
    if (DIR_[0] != '\0')
        rm_rf(DIR_);
    DIR_[0] = '\0';
}

static void setup(void)
{
    open_store(64 * MIB);
}

void setup_small(void)
{
    open_store(8 * MIB);
}

void teardown(void)
{
    close_store();
}

/* ---------------------------------------------------------------------------
 * Records: a description from which the value bytes are generated
 * ------------------------------------------------------------------------- */

void value_fill(char *dst, uint32_t n, uint64_t seed)
{
    if (seed == 0) {
        for (uint32_t i = 0; i < n; i++)
            dst[i] = (char)(unsigned char)i;
        return;
    }
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (uint32_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        dst[i] = (char)(x >> 24);
    }
}

/* A record for key (hash: the engine's own) with a fresh CAS. */
struct rec mk(const char *key, uint32_t nbytes)
{
    struct rec r;
    memset(&r, 0, sizeof(r));
    r.nkey = strlen(key);
    memcpy(r.key, key, r.nkey);
    r.hv = ht_hash(key, r.nkey);
    r.nbytes = nbytes;
    r.flags = (uint32_t)r.nkey * 7;
    r.exptime = 0;
    r.atime = 1700000000u;
    r.cas = next_cas++;
    r.vseed = r.cas;
    return r;
}

tc_status_e write_rec(const struct rec *r, bool *skipped)
{
    char *v = malloc(r->nbytes ? r->nbytes : 1);
    ck_assert_ptr_nonnull(v);
    value_fill(v, r->nbytes, r->vseed);
    struct flash_item it = {
        .key = r->key,
        .nkey = r->nkey,
        .value = v,
        .nbytes = r->nbytes,
        .flags = r->flags,
        .exptime = r->exptime,
        .atime = r->atime,
        .cas = r->cas,
    };
    bool sk = false;
    tc_status_e st = flash_write(F, r->hv, &it, &sk);
    free(v);
    if (skipped != NULL)
        *skipped = sk;
    return st;
}

/* Write records in one transaction and commit; every step must succeed. */
void commit_recs(const struct rec *rs, size_t n)
{
    ck_assert_int_eq(flash_begin(F), TC_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(write_rec(&rs[i], NULL), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
}

void commit_one(const struct rec *r)
{
    commit_recs(r, 1);
}

/* NULL if the key reads back exactly as r, else what differs (static). */
const char *differs(struct flash_reader *rd, const struct rec *r)
{
    static char why[512];
    struct flash_item got;
    tc_status_e st = flash_get(rd, r->hv, r->key, r->nkey, &got);
    if (st != TC_OK) {
        snprintf(why, sizeof(why), "'%.*s': %s", (int)r->nkey, r->key, tc_strerror(st));
        return why;
    }
    const char *bad = NULL;
    char *want = malloc(r->nbytes ? r->nbytes : 1);
    value_fill(want, r->nbytes, r->vseed);
    if (got.nkey != r->nkey || memcmp(got.key, r->key, r->nkey) != 0)
        bad = "key";
    else if (got.nbytes != r->nbytes)
        bad = "value length";
    else if (memcmp(got.value, want, r->nbytes) != 0)
        bad = "value bytes";
    else if (got.flags != r->flags)
        bad = "flags";
    else if (got.exptime != r->exptime)
        bad = "exptime";
    else if (got.atime != r->atime)
        bad = "atime";
    else if (got.cas != r->cas)
        bad = "cas";
    if (bad != NULL)
        snprintf(why, sizeof(why),
                 "'%.*s': %s differs (got nbytes %u flags %u exp %u atime %u cas %llu; want "
                 "%u %u %u %u %llu)",
                 (int)r->nkey, r->key, bad, got.nbytes, got.flags, got.exptime, got.atime,
                 (unsigned long long)got.cas, r->nbytes, r->flags, r->exptime, r->atime,
                 (unsigned long long)r->cas);
    free(want);
    flash_reader_end(rd);
    return bad != NULL ? why : NULL;
}

tc_status_e lookup(struct flash_reader *rd, uint64_t hv, const char *key)
{
    struct flash_item got;
    tc_status_e st = flash_get(rd, hv, key, strlen(key), &got);
    if (st == TC_OK)
        flash_reader_end(rd);
    return st;
}

struct flash_stats stats(void)
{
    struct flash_stats s;
    flash_stats_get(F, &s);
    return s;
}

/* The stored size of a record, as flash counts it in live_bytes: measured. */
static uint64_t live_bytes(void)
{
    return stats().live_bytes;
}

/* ---------------------------------------------------------------------------
 * Open and close
 * ------------------------------------------------------------------------- */

START_TEST(test_open_close)
{
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, 0);
    ck_assert_uint_eq(s.live_bytes, 0);
    ck_assert_uint_eq(s.batches, 0);
    ck_assert_uint_eq(s.map_bytes, 64 * MIB);
    ck_assert_uint_eq(s.errors, 0);
    ck_assert_uint_gt(s.filter_bytes, 0);
    ck_assert_int_eq(lookup(R, 1, "nothing"), TC_NOT_FOUND);
    ck_assert(!flash_maybe(R, 1));

    char path[512];
    snprintf(path, sizeof(path), "%s/data.mdb", DIR_);
    ck_assert_int_eq(access(path, F_OK), 0);

    /* More readers come and go in any order. */
    struct flash_reader *r2 = NULL, *r3 = NULL;
    ck_assert_int_eq(flash_reader_create(F, &r2), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &r3), TC_OK);
    flash_reader_destroy(&r2);
    ck_assert_ptr_null(r2);
    ck_assert_int_eq(lookup(r3, 1, "x"), TC_NOT_FOUND);
    flash_reader_destroy(&r3);
    flash_reader_destroy(&r3); /* accepts NULL */

    close_store();
    ck_assert_ptr_null(F);
    flash_close(&F); /* accepts NULL */
    flash_close(NULL);

    /* A directory that does not exist yet is created, parents included. */
    char nested[512];
    new_dir(DIR_, sizeof(DIR_));
    snprintf(nested, sizeof(nested), "%s/a/b/c", DIR_);
    ck_assert_int_eq(open_at(nested, 8 * MIB, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
    struct rec r = mk("nested", 10);
    commit_one(&r);
    ck_rec(&r);
}
END_TEST

START_TEST(test_open_twice_is_busy)
{
    struct rec r = mk("k", 100);
    commit_one(&r);
    struct flash *f2 = NULL;
    ck_assert_int_eq(open_at(DIR_, 64 * MIB, &f2), TC_BUSY);
    ck_assert_ptr_null(f2);
    /* The first one is unharmed. */
    ck_rec(&r);
    struct rec r2 = mk("k2", 100);
    commit_one(&r2);
    ck_rec(&r2);
    /* Once closed, the directory can be opened again. */
    flash_reader_destroy(&R);
    flash_close(&F);
    ck_assert_int_eq(open_at(DIR_, 64 * MIB, &F), TC_OK);
    ck_assert_int_eq(flash_reader_create(F, &R), TC_OK);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------- */

START_TEST(test_round_trip_fields)
{
    struct rec rs[12];
    size_t n = 0;
    rs[n] = mk("a", 0); /* one-byte key, empty value */
    rs[n].flags = 0;
    n++;
    rs[n] = mk("all-bytes", 256); /* every byte value, in order */
    rs[n].vseed = 0;
    rs[n].flags = UINT32_MAX;
    n++;
    rs[n] = mk("all-bytes-x4", 1024);
    rs[n].vseed = 0;
    rs[n].flags = 0x80000000u;
    n++;
    char k250[251], k255[256];
    memset(k250, 'k', 250);
    k250[250] = '\0';
    memset(k255, 'K', 255);
    k255[255] = '\0';
    rs[n] = mk(k250, 3000);
    n++;
    rs[n] = mk(k255, 10);
    n++;
    /* Times and CAS far from the batch's base in both directions. */
    rs[n] = mk("exp-far", 77);
    rs[n].exptime = UINT32_MAX;
    rs[n].atime = 0;
    rs[n].cas = 1;
    n++;
    rs[n] = mk("exp-past", 77);
    rs[n].exptime = 1;
    rs[n].atime = UINT32_MAX;
    rs[n].cas = UINT64_MAX;
    n++;
    rs[n] = mk("exp-near", 77);
    rs[n].exptime = 1700000100u;
    rs[n].atime = 1700000000u;
    rs[n].cas = 1ULL << 40;
    n++;
    rs[n] = mk("big", 1 * MIB + 17); /* its own overflow pages */
    n++;
    rs[n] = mk("bin\r\n key\x01", 5);
    n++;

    ck_assert_int_eq(flash_begin(F), TC_OK);
    for (size_t i = 0; i < n; i++) {
        bool skipped = true;
        ck_assert_int_eq(write_rec(&rs[i], &skipped), TC_OK);
        ck_assert(!skipped);
    }
    /* Not visible to readers before the commit. */
    ck_gone(&rs[0]);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    for (size_t i = 0; i < n; i++)
        ck_rec(&rs[i]);
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, n);
    ck_assert_uint_eq(s.writes, n);
    ck_assert_uint_eq(s.batches, 1);
    ck_assert_uint_eq(s.commits, 1);
    uint64_t payload = 0;
    for (size_t i = 0; i < n; i++)
        payload += rs[i].nkey + rs[i].nbytes;
    ck_assert_uint_ge(s.live_bytes, payload);
    ck_assert_uint_le(s.live_bytes, payload + n * 40);

    /* The same fields again in a later batch (another base time and CAS). */
    struct rec again[3] = {rs[5], rs[6], rs[1]};
    for (int i = 0; i < 3; i++) {
        again[i].cas += 5;
        again[i].vseed = 99 + (uint64_t)i;
    }
    commit_recs(again, 3);
    for (int i = 0; i < 3; i++)
        ck_rec(&again[i]);
    ck_rec(&rs[0]);
    ck_rec(&rs[8]);
    ck_assert_uint_eq(stats().items, n);

    /* A reader's pointers stay valid until flash_reader_end. */
    struct flash_item a, b;
    ck_assert_int_eq(flash_get(R, rs[8].hv, rs[8].key, rs[8].nkey, &a), TC_OK);
    ck_assert_uint_eq(a.nbytes, rs[8].nbytes);
    char *want = malloc(a.nbytes);
    value_fill(want, a.nbytes, rs[8].vseed);
    ck_assert(memcmp(a.value, want, a.nbytes) == 0);
    free(want);
    flash_reader_end(R);
    flash_reader_end(R); /* twice is harmless */
    ck_assert_int_eq(flash_get(R, rs[3].hv, rs[3].key, rs[3].nkey, &b), TC_OK);
    ck_assert_uint_eq(b.nkey, 250);
    flash_reader_end(R);
}
END_TEST

START_TEST(test_write_rejects_bad_sizes)
{
    ck_assert_int_eq(flash_begin(F), TC_OK);
    static const char v[1] = {0};
    struct flash_item it = {.key = "k", .nkey = 1, .value = v, .nbytes = FLASH_VALUE_MAX + 1};
    bool skipped;
    ck_assert_int_eq(flash_write(F, 1, &it, &skipped), TC_TOO_LARGE);
    it.nbytes = 1;
    it.nkey = 0;
    ck_assert_int_eq(flash_write(F, 1, &it, &skipped), TC_TOO_LARGE);
    char k[256];
    memset(k, 'x', sizeof(k));
    it.key = k;
    it.nkey = 256;
    ck_assert_int_eq(flash_write(F, 1, &it, &skipped), TC_TOO_LARGE);
    /* The transaction is still good. */
    struct rec r = mk("fine", 10);
    ck_assert_int_eq(write_rec(&r, NULL), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_rec(&r);
    ck_assert_uint_eq(stats().items, 1);
}
END_TEST

START_TEST(test_overwrite)
{
    struct rec a = mk("key", 500), other = mk("other", 50);
    struct rec pair[2] = {a, other};
    commit_recs(pair, 2);
    uint64_t live = live_bytes();

    /* Same CAS: already current, nothing written, even with other bytes. */
    struct rec same = a;
    same.vseed = 12345;
    same.nbytes = 900;
    bool skipped = false;
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(write_rec(&same, &skipped), TC_OK);
    ck_assert(skipped);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_rec(&a);
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.skipped_clean, 1);
    ck_assert_uint_eq(s.writes, 2);
    ck_assert_uint_eq(s.items, 2);
    ck_assert_uint_eq(s.live_bytes, live);

    /* A new CAS replaces it: one item still, the new bytes counted instead. */
    struct rec b = a;
    b.cas = next_cas++;
    b.vseed = 777;
    b.nbytes = 900;
    b.flags = 3;
    b.exptime = 1800000000u;
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(write_rec(&b, &skipped), TC_OK);
    ck_assert(!skipped);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_rec(&b);
    ck_rec(&other);
    s = stats();
    ck_assert_uint_eq(s.items, 2);
    /* 400 more value bytes; the record header may grow by a few. */
    ck_assert_uint_ge(s.live_bytes, live + 400);
    ck_assert_uint_le(s.live_bytes, live + 410);
    live = s.live_bytes;

    /* Twice in one transaction: the last one wins; the first is not counted. */
    struct rec c1 = b, c2 = b;
    c1.cas = next_cas++;
    c1.vseed = 1;
    c1.nbytes = 100;
    c2.cas = next_cas++;
    c2.vseed = 2;
    c2.nbytes = 200;
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(write_rec(&c1, &skipped), TC_OK);
    ck_assert_int_eq(write_rec(&c2, &skipped), TC_OK);
    ck_assert(!skipped);
    /* Writing c2 again in the same transaction is a no-op. */
    ck_assert_int_eq(write_rec(&c2, &skipped), TC_OK);
    ck_assert(skipped);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_rec(&c2);
    s = stats();
    ck_assert_uint_eq(s.items, 2);
    ck_assert_uint_eq(s.live_bytes, live - 700); /* c2's 200 bytes instead of b's 900 */
    ck_assert(flash_maybe(R, a.hv));
}
END_TEST

START_TEST(test_rewrite_in_one_txn_not_lost)
{
    /* A key written twice in one transaction: the second version must be
     * what flash holds. The first record is in the batch still being built,
     * whose base CAS is not the previous batch's. */
    struct rec first = mk("rw:first", 10);
    first.cas = 5000; /* the base of batch 1 */
    commit_one(&first);

    struct rec y = mk("rw:y", 10), k1 = mk("rw:k", 10), k2;
    y.cas = 3000; /* the base of batch 2: demotion order is not CAS order */
    k1.cas = 3100;
    k2 = k1;
    k2.cas = 5100; /* k1 + (base 1 - base 2) */
    k2.vseed = 77;
    bool skipped = true;
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(write_rec(&y, NULL), TC_OK);
    ck_assert_int_eq(write_rec(&k1, NULL), TC_OK);
    ck_assert_int_eq(write_rec(&k2, &skipped), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_assert_msg(!skipped, "a newer version (CAS 5100) was taken for the record already "
                            "written (CAS 3100) and skipped");
    ck_rec(&k2);
    ck_rec(&y);
    ck_rec(&first);
}
END_TEST

START_TEST(test_delete)
{
    struct rec rs[3] = {mk("d-a", 100), mk("d-b", 200), mk("d-c", 300)};
    commit_recs(rs, 3);
    uint64_t live = live_bytes();

    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, rs[0].hv, rs[0].key, rs[0].nkey), TC_OK);
    /* Not applied before the commit. */
    ck_rec(&rs[0]);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_gone(&rs[0]);
    ck_rec(&rs[1]);
    ck_rec(&rs[2]);
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, 2);
    ck_assert_uint_eq(s.deletes, 1);
    ck_assert_uint_lt(s.live_bytes, live - 100);

    /* Deleting what is not there is fine and changes nothing. */
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, rs[0].hv, rs[0].key, rs[0].nkey), TC_OK);
    ck_assert_int_eq(flash_delete(F, 42, "never", 5), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    s = stats();
    ck_assert_uint_eq(s.items, 2);
    ck_assert_uint_eq(s.deletes, 1);

    /* Written and deleted in one transaction: as if never written. */
    struct rec t = mk("d-temp", 50);
    uint64_t filt = s.filter_items;
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(write_rec(&t, NULL), TC_OK);
    ck_assert_int_eq(flash_delete(F, t.hv, t.key, t.nkey), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_gone(&t);
    s = stats();
    ck_assert_uint_eq(s.items, 2);
    ck_assert_uint_eq(s.filter_items, filt);

    /* Deleted, then written again in one transaction: present. */
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, rs[1].hv, rs[1].key, rs[1].nkey), TC_OK);
    struct rec b2 = rs[1];
    b2.cas = next_cas++;
    b2.vseed = 4242;
    ck_assert_int_eq(write_rec(&b2, NULL), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_rec(&b2);
    ck_assert(flash_maybe(R, b2.hv));
    ck_assert_uint_eq(stats().items, 2);

    /* Everything deleted: empty. */
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, b2.hv, b2.key, b2.nkey), TC_OK);
    ck_assert_int_eq(flash_delete(F, rs[2].hv, rs[2].key, rs[2].nkey), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    s = stats();
    ck_assert_uint_eq(s.items, 0);
    ck_assert_uint_eq(s.live_bytes, 0);
    ck_assert_uint_eq(s.filter_items, 0);
}
END_TEST

START_TEST(test_same_hash_different_keys)
{
    /* The caller gives the hash: two keys with the same one on purpose. */
    const uint64_t hv = 0x5A5A5A5A12345678ULL;
    struct rec a = mk("alpha", 100), b = mk("beta", 200), c = mk("gamma", 300);
    a.hv = b.hv = c.hv = hv;
    commit_one(&a);
    commit_one(&b); /* another batch */
    ck_rec(&a);
    ck_rec(&b);
    ck_gone(&c); /* same hash, other key */
    ck_assert_uint_eq(stats().items, 2);
    ck_assert_uint_eq(stats().filter_items, 2);

    /* A third one in the same transaction as an overwrite of the first. */
    struct rec a2 = a;
    a2.cas = next_cas++;
    a2.vseed = 31337;
    struct rec two[2] = {c, a2};
    commit_recs(two, 2);
    ck_rec(&a2);
    ck_rec(&b);
    ck_rec(&c);
    ck_assert_uint_eq(stats().items, 3);

    /* Deleting one leaves the others. */
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, hv, "beta", 4), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_gone(&b);
    ck_rec(&a2);
    ck_rec(&c);
    ck_assert(flash_maybe(R, hv));

    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, hv, "gamma", 5), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_gone(&c);
    ck_rec(&a2);
    ck_assert_msg(flash_maybe(R, hv), "alpha is still on flash: the filter must say maybe");

    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, hv, "alpha", 5), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_gone(&a2);
    ck_assert_uint_eq(stats().items, 0);
    ck_assert_uint_eq(stats().filter_items, 0);
    ck_assert(!flash_maybe(R, hv));
}
END_TEST

START_TEST(test_many_items_over_commits)
{
    enum { BATCHES = 6, PER = 1000, N = BATCHES * PER };
    struct rec *rs = malloc(N * sizeof(*rs));
    bool *live = calloc(N, sizeof(bool));
    ck_assert_ptr_nonnull(rs);
    for (int b = 0; b < BATCHES; b++) {
        ck_assert_int_eq(flash_begin(F), TC_OK);
        for (int i = 0; i < PER; i++) {
            int k = b * PER + i;
            char key[32];
            snprintf(key, sizeof(key), "many:%d", k);
            rs[k] = mk(key, (uint32_t)(k % 700));
            ck_assert_int_eq(write_rec(&rs[k], NULL), TC_OK);
            live[k] = true;
        }
        /* Delete a few from earlier batches as we go. */
        for (int k = b; k < b * PER; k += 97) {
            if (live[k]) {
                ck_assert_int_eq(flash_delete(F, rs[k].hv, rs[k].key, rs[k].nkey), TC_OK);
                live[k] = false;
            }
        }
        ck_assert_int_eq(flash_commit(F), TC_OK);
    }
    uint64_t nlive = 0;
    for (int k = 0; k < N; k++) {
        if (live[k]) {
            nlive++;
            const char *why = differs(R, &rs[k]);
            ck_assert_msg(why == NULL, "%s", why);
            ck_assert(flash_maybe(R, rs[k].hv));
        } else {
            ck_gone(&rs[k]);
        }
    }
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, nlive);
    ck_assert_uint_eq(s.filter_items, nlive);
    ck_assert_uint_eq(s.batches, BATCHES);
    ck_assert_uint_eq(s.commits, BATCHES);
    ck_assert_uint_eq(s.writes, N);
    ck_assert_uint_eq(s.deletes, N - nlive);
    ck_assert_uint_gt(s.used_bytes, s.live_bytes);
    ck_assert_uint_le(s.used_bytes, s.map_bytes);
    ck_assert_uint_eq(s.evicted_items, 0);
    free(rs);
    free(live);
}
END_TEST

START_TEST(test_maybe_through_reader)
{
    enum { N = 2000 };
    struct rec rs[N];
    ck_assert_int_eq(flash_begin(F), TC_OK);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "maybe:%d", i);
        rs[i] = mk(key, 20);
        ck_assert_int_eq(write_rec(&rs[i], NULL), TC_OK);
    }
    /* The filter changes only at the commit. */
    int early = 0;
    for (int i = 0; i < N; i++)
        early += flash_maybe(R, rs[i].hv);
    ck_assert_msg(early < N / 50, "%d of %d uncommitted keys already in the filter", early, N);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    for (int i = 0; i < N; i++)
        ck_assert_msg(flash_maybe(R, rs[i].hv), "committed key %d not in the filter", i);

    /* Absent keys: mostly "no", and each "no" is counted. */
    uint64_t neg0 = stats().filter_negatives;
    int maybes = 0;
    for (int i = 0; i < 10000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "absent:%d", i);
        maybes += flash_maybe(R, ht_hash(key, strlen(key)));
    }
    ck_assert_msg(maybes < 100, "%d of 10000 absent keys answered maybe", maybes);
    ck_assert_uint_eq(stats().filter_negatives - neg0, (uint64_t)(10000 - maybes));

    /* Deletes leave the filter at the commit, not before. */
    ck_assert_int_eq(flash_begin(F), TC_OK);
    for (int i = 0; i < N; i += 2)
        ck_assert_int_eq(flash_delete(F, rs[i].hv, rs[i].key, rs[i].nkey), TC_OK);
    for (int i = 0; i < N; i += 2)
        ck_assert_msg(flash_maybe(R, rs[i].hv), "key %d left the filter before the commit", i);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    int still = 0;
    for (int i = 0; i < N; i++) {
        if (i % 2 == 1)
            ck_assert_msg(flash_maybe(R, rs[i].hv), "kept key %d left the filter", i);
        else
            still += flash_maybe(R, rs[i].hv);
    }
    ck_assert_msg(still < N / 2 / 50, "%d of %d deleted keys still in the filter", still, N / 2);
    ck_assert_uint_eq(stats().filter_items, N / 2);

    /* An aborted transaction changes nothing, filter included. */
    ck_assert_int_eq(flash_begin(F), TC_OK);
    ck_assert_int_eq(flash_delete(F, rs[1].hv, rs[1].key, rs[1].nkey), TC_OK);
    struct rec x = mk("aborted", 10);
    ck_assert_int_eq(write_rec(&x, NULL), TC_OK);
    flash_abort(F);
    ck_rec(&rs[1]);
    ck_gone(&x);
    ck_assert(flash_maybe(R, rs[1].hv));
    ck_assert_uint_eq(stats().filter_items, N / 2);
    ck_assert_uint_eq(stats().items, N / 2);
    /* And the next transaction works. */
    commit_one(&x);
    ck_rec(&x);
}
END_TEST

/* How many of n keys never written the filter answers "maybe" for. */
static int absent_maybes_n(int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "never:%d", i);
        m += flash_maybe(R, ht_hash(key, strlen(key)));
    }
    return m;
}

START_TEST(test_filter_grows)
{
    /* More keys than the first filter holds: it is rebuilt bigger from the
     * index, and forgets nothing on the way. */
    uint64_t bytes0 = stats().filter_bytes;
    enum { N = 66000, PER = 16500 };
    static struct rec rs[N];
    for (int b = 0; b < N / PER; b++) {
        ck_assert_int_eq(flash_begin(F), TC_OK);
        for (int i = b * PER; i < (b + 1) * PER; i++) {
            char key[16];
            snprintf(key, sizeof(key), "g%d", i);
            rs[i] = mk(key, 1);
            ck_assert_int_eq(write_rec(&rs[i], NULL), TC_OK);
        }
        ck_assert_int_eq(flash_commit(F), TC_OK);
    }
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, N);
    ck_assert_uint_eq(s.filter_items, N);
    ck_assert_msg(s.filter_bytes > bytes0, "the filter did not grow (%llu bytes)",
                  (unsigned long long)s.filter_bytes);
    for (int i = 0; i < N; i++)
        ck_assert_msg(flash_maybe(R, rs[i].hv), "'%s' lost when the filter grew", rs[i].key);
    ck_assert_int_lt(absent_maybes_n(10000), 100);
    /* Deletes reach the new filter. */
    ck_assert_int_eq(flash_begin(F), TC_OK);
    for (int i = 0; i < N; i += 2)
        ck_assert_int_eq(flash_delete(F, rs[i].hv, rs[i].key, rs[i].nkey), TC_OK);
    ck_assert_int_eq(flash_commit(F), TC_OK);
    ck_assert_uint_eq(stats().filter_items, N / 2);
    for (int i = 1; i < N; i += 2)
        ck_assert(flash_maybe(R, rs[i].hv));
    ck_rec(&rs[N - 1]);
    ck_gone(&rs[0]);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Space: flash eviction, make_room, a full map
 * ------------------------------------------------------------------------- */

void on_evicted(void *arg, uint64_t hv, const char *key, size_t nkey, uint64_t cas)
{
    struct evlist *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        ck_assert_ptr_nonnull(l->v);
    }
    ck_assert_uint_le(nkey, 255);
    memcpy(l->v[l->n].key, key, nkey);
    l->v[l->n].nkey = nkey;
    l->v[l->n].hv = hv;
    l->v[l->n].cas = cas;
    l->n++;
}

static int find_rec(const struct rec *rs, size_t n, const char *key, size_t nkey)
{
    for (size_t i = 0; i < n; i++) {
        if (rs[i].nkey == nkey && memcmp(rs[i].key, key, nkey) == 0)
            return (int)i;
    }
    return -1;
}

START_TEST(test_eviction_fifo)
{
    /* 8 MiB budget; 60 batches of 20 x 10 KB: 12 MB written. */
    enum { NB = 60, PER = 20, VAL = 10000, N = NB * PER };
    struct rec *rs = calloc(N, sizeof(*rs));
    bool *live = calloc(N, sizeof(bool));
    struct evlist ev = {0};
    uint64_t map_full = 0;
    for (int b = 0; b < NB; b++) {
        for (;;) {
            ck_assert_int_eq(flash_begin(F), TC_OK);
            for (int i = 0; i < PER; i++) {
                int k = b * PER + i;
                char key[32];
                snprintf(key, sizeof(key), "ev:%03d:%02d", b, i);
                if (rs[k].nkey == 0)
                    rs[k] = mk(key, VAL);
                ck_assert_int_eq(write_rec(&rs[k], NULL), TC_OK);
            }
            if (b == 5) {
                /* Rewrite two keys of batch 0 (new CAS) and delete a third:
                 * dropping batch 0 must neither lose nor report them. */
                for (int k = 0; k < 2; k++) {
                    rs[k].cas = next_cas++;
                    rs[k].vseed = rs[k].cas;
                    ck_assert_int_eq(write_rec(&rs[k], NULL), TC_OK);
                }
                ck_assert_int_eq(flash_delete(F, rs[2].hv, rs[2].key, rs[2].nkey), TC_OK);
            }
            tc_status_e st = flash_commit(F);
            if (st == TC_OK)
                break;
            /* The writer's answer to a full map: make room, retry. */
            ck_assert_int_eq(st, TC_NO_MEMORY);
            map_full++;
            ck_assert_int_eq(flash_make_room(F, 20), TC_OK);
        }
        for (int i = 0; i < PER; i++)
            live[b * PER + i] = true;
        if (b == 5)
            live[2] = false;
        struct evlist one = {0};
        flash_drain_evicted(F, on_evicted, &one);
        for (size_t e = 0; e < one.n; e++) {
            int k = find_rec(rs, N, one.v[e].key, one.v[e].nkey);
            ck_assert_msg(k >= 0, "evicted an unknown key '%.*s'", (int)one.v[e].nkey,
                          one.v[e].key);
            ck_assert_msg(live[k], "evicted '%s' twice or after its delete", rs[k].key);
            ck_assert_msg(one.v[e].cas == rs[k].cas, "'%s' evicted with CAS %llu, want %llu",
                          rs[k].key, (unsigned long long)one.v[e].cas,
                          (unsigned long long)rs[k].cas);
            ck_assert_uint_eq(one.v[e].hv, rs[k].hv);
            live[k] = false;
            on_evicted(&ev, one.v[e].hv, one.v[e].key, one.v[e].nkey, one.v[e].cas);
        }
        free(one.v);
        struct flash_stats s = stats();
        ck_assert_msg(s.used_bytes <= s.evict_above, "batch %d: %llu bytes used of %llu", b,
                      (unsigned long long)s.used_bytes, (unsigned long long)s.map_bytes);
    }
    struct flash_stats s = stats();
    ck_assert_uint_gt(s.evicted_batches, 0);
    ck_assert_uint_gt(s.evicted_items, 0);
    ck_assert_uint_eq(s.evicted_items, ev.n);
    ck_assert_uint_lt(s.batches, NB);
    ck_assert_uint_le(s.file_bytes, s.map_bytes);
    uint64_t nlive = 0;
    for (int k = 0; k < N; k++) {
        if (live[k]) {
            nlive++;
            const char *why = differs(R, &rs[k]);
            ck_assert_msg(why == NULL, "%s", why);
        } else {
            ck_gone(&rs[k]);
        }
    }
    ck_assert_uint_eq(s.items, nlive);
    /* FIFO: the oldest batches went, the newest are whole. */
    for (int i = 2; i < PER; i++)
        ck_assert_msg(!live[i], "'%s' of the oldest batch survived", rs[i].key);
    for (int k = (NB - 5) * PER; k < N; k++)
        ck_assert_msg(live[k], "'%s' of the newest batches was evicted", rs[k].key);
    /* The two keys rewritten in batch 5 lived as long as batch 5 did. */
    ck_assert_int_eq(live[0], live[5 * PER]);
    ck_assert_int_eq(live[1], live[5 * PER]);
    /* Report each record once; drained means forgotten. */
    struct evlist again = {0};
    flash_drain_evicted(F, on_evicted, &again);
    ck_assert_uint_eq(again.n, 0);
    ck_assert_msg(map_full == 0, "a steady FIFO workload hit a full map %llu times",
                  (unsigned long long)map_full);
    free(ev.v);
    free(rs);
    free(live);
}
END_TEST

/* Commit `nb` batches of `per` records of `val` bytes named prefix:b:i. */
struct rec *fill_batches(const char *prefix, int nb, int per, uint32_t val)
{
    struct rec *rs = malloc((size_t)nb * per * sizeof(*rs));
    ck_assert_ptr_nonnull(rs);
    for (int b = 0; b < nb; b++) {
        ck_assert_int_eq(flash_begin(F), TC_OK);
        for (int i = 0; i < per; i++) {
            char key[64];
            snprintf(key, sizeof(key), "%s:%d:%d", prefix, b, i);
            rs[b * per + i] = mk(key, val);
            ck_assert_int_eq(write_rec(&rs[b * per + i], NULL), TC_OK);
        }
        ck_assert_int_eq(flash_commit(F), TC_OK);
    }
    return rs;
}

START_TEST(test_make_room)
{
    /* Nothing to evict: fine. */
    ck_assert_int_eq(flash_make_room(F, 50), TC_OK);
    ck_assert_uint_eq(stats().evicted_batches, 0);

    /* 6 batches of 500 KB in an 8 MiB budget: ~37% used. */
    enum { NB = 6, PER = 10 };
    struct rec *rs = fill_batches("room", NB, PER, 50000);
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.evicted_batches, 0);
    ck_assert_uint_gt(s.used_bytes, s.map_bytes / 4);

    /* Make 80% free: at most 20% used, oldest first. */
    ck_assert_int_eq(flash_make_room(F, 80), TC_OK);
    s = stats();
    ck_assert_msg(s.used_bytes <= s.map_bytes / 100 * 20, "%llu of %llu used",
                  (unsigned long long)s.used_bytes, (unsigned long long)s.map_bytes);
    ck_assert_uint_gt(s.evicted_batches, 0);
    ck_assert_uint_lt(s.evicted_batches, NB);
    uint64_t gone_batches = s.evicted_batches;
    ck_assert_uint_eq(s.evicted_items, gone_batches * PER);
    ck_assert_uint_eq(s.items, (NB - gone_batches) * PER);
    ck_assert_uint_eq(s.batches, NB - gone_batches);
    for (int k = 0; k < NB * PER; k++) {
        if ((uint64_t)(k / PER) < gone_batches) {
            ck_gone(&rs[k]);
        } else {
            const char *why = differs(R, &rs[k]);
            ck_assert_msg(why == NULL, "%s", why);
        }
    }
    struct evlist ev = {0};
    flash_drain_evicted(F, on_evicted, &ev);
    ck_assert_uint_eq(ev.n, gone_batches * PER);
    for (size_t e = 0; e < ev.n; e++) {
        int k = find_rec(rs, NB * PER, ev.v[e].key, ev.v[e].nkey);
        ck_assert_int_ge(k, 0);
        ck_assert_int_lt(k, (int)(gone_batches * PER));
        ck_assert_uint_eq(ev.v[e].cas, rs[k].cas);
    }
    /* The filter forgot them too. */
    ck_assert_uint_eq(s.filter_items, s.items);

    /* Everything: 100% free is not possible, but every batch goes. */
    ck_assert_int_eq(flash_make_room(F, 100), TC_OK);
    s = stats();
    ck_assert_uint_eq(s.items, 0);
    ck_assert_uint_eq(s.batches, 0);
    ck_assert_uint_eq(s.live_bytes, 0);
    /* And writing goes on. */
    struct rec r = mk("after", 100);
    commit_one(&r);
    ck_rec(&r);
    free(ev.v);
    free(rs);
}
END_TEST

START_TEST(test_map_full_then_make_room)
{
    /* One 4.5 MB batch, then a 4 MB one: together more than the 8 MiB map. */
    enum { PER1 = 45, PER2 = 40, VAL = 100000 };
    struct rec *first = fill_batches("first", 1, PER1, VAL);
    struct flash_stats before = stats();
    ck_assert_uint_lt(before.used_bytes, before.evict_above); /* no eviction yet */

    struct rec *second = malloc(PER2 * sizeof(*second));
    ck_assert_int_eq(flash_begin(F), TC_OK);
    tc_status_e st = TC_OK;
    for (int i = 0; i < PER2 && st == TC_OK; i++) {
        char key[32];
        snprintf(key, sizeof(key), "second:%d", i);
        second[i] = mk(key, VAL);
        st = write_rec(&second[i], NULL);
    }
    if (st == TC_OK)
        st = flash_commit(F);
    else
        flash_abort(F);
    ck_assert_msg(st == TC_NO_MEMORY, "a transaction larger than the free map gave %s",
                  tc_strerror(st));

    /* Nothing of it is visible; the first batch is intact. */
    struct flash_stats s = stats();
    ck_assert_uint_eq(s.items, before.items);
    ck_assert_uint_eq(s.live_bytes, before.live_bytes);
    ck_assert_uint_eq(s.batches, before.batches);
    ck_assert_uint_eq(s.filter_items, before.filter_items);
    ck_assert_uint_eq(s.evicted_items, 0);
    for (int i = 0; i < PER2; i++)
        ck_gone(&second[i]);
    for (int i = 0; i < PER1; i++)
        ck_rec(&first[i]);

    /* Make room, retry: it fits now. */
    ck_assert_int_eq(flash_make_room(F, 60), TC_OK);
    commit_recs(second, PER2);
    for (int i = 0; i < PER2; i++)
        ck_rec(&second[i]);
    for (int i = 0; i < PER1; i++)
        ck_gone(&first[i]);
    s = stats();
    ck_assert_uint_eq(s.items, PER2);
    ck_assert_uint_eq(s.evicted_items, PER1);
    struct evlist ev = {0};
    flash_drain_evicted(F, on_evicted, &ev);
    ck_assert_uint_eq(ev.n, PER1);
    free(ev.v);
    free(first);
    free(second);
}
END_TEST

static Suite *flash_suite(void)
{
    Suite *s = suite_create("flash");
    TCase *tc = tcase_create("basics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_open_close);
    tcase_add_test(tc, test_open_twice_is_busy);
    tcase_add_test(tc, test_round_trip_fields);
    tcase_add_test(tc, test_write_rejects_bad_sizes);
    tcase_add_test(tc, test_overwrite);
    tcase_add_test(tc, test_rewrite_in_one_txn_not_lost);
    tcase_add_test(tc, test_delete);
    tcase_add_test(tc, test_same_hash_different_keys);
    tcase_add_test(tc, test_many_items_over_commits);
    tcase_add_test(tc, test_maybe_through_reader);
    tcase_add_test(tc, test_filter_grows);
    suite_add_tcase(s, tc);

    tc = tcase_create("space");
    tcase_add_checked_fixture(tc, setup_small, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_eviction_fifo);
    tcase_add_test(tc, test_make_room);
    tcase_add_test(tc, test_map_full_then_make_room);
    suite_add_tcase(s, tc);

    suite_add_tcase(s, flash_restart_tcase());
    suite_add_tcase(s, flash_record_tcase());
    suite_add_tcase(s, flash_fault_tcase());
    return s;
}

int main(void)
{
    snprintf(ROOT, sizeof(ROOT), "/tmp/check_flash.XXXXXX");
    if (mkdtemp(ROOT) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(flash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    rm_rf(ROOT);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
