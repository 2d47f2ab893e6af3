/*
 * damage.c: damage a data dir the way a disk fault would, for tests that
 * must show it is found (see damage.h).
 */
#include "damage.h"

#include <check.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Flip a byte 100 bytes into the first batch of the data dir. The batch is
 * found by its first 64 bytes (header and first record) as LMDB reads them,
 * and the byte is flipped in every copy of them in data.mdb: freed pages may
 * hold stale copies, and the live one is among them.
 */
void td_flip_first_batch(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    char head[64], path[300];
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "batches", MDB_INTEGERKEY, &dbi), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    ck_assert_int_eq(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    ck_assert_uint_gt(v.mv_size, 200);
    memcpy(head, v.mv_data, sizeof(head));
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    int copies = 0;
    for (char *p = map; (p = memmem(p, (size_t)(map + st.st_size - p), head, sizeof(head))) != NULL;
         p += sizeof(head)) {
        p[100] ^= 0x10;
        copies++;
    }
    ck_assert_int_gt(copies, 0);
    ck_assert_int_eq(msync(map, (size_t)st.st_size, MS_SYNC), 0);
    munmap(map, (size_t)st.st_size);
    close(fd);
}
