/*
 * check_slab.c: unit tests for storage/slab.c: class sizes (memcached's
 * progression), chunk allocation and reuse, and the byte budget shared by
 * pages and large allocations, which must never be exceeded.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slab.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* memcached 1.6 with -f 1.25 -n 48 (first chunk 96) and 1 MB pages, from
 * `memcached -vv`: 39 classes, the last one half a page. */
static const uint32_t memcached_sizes[] = {
    96,    120,    152,    192,    240,    304,    384,    480,    600,    752,
    944,   1184,   1480,   1856,   2320,   2904,   3632,   4544,   5680,   7104,
    8880,  11104,  13880,  17352,  21696,  27120,  33904,  42384,  52984,  66232,
    82792, 103496, 129376, 161720, 202152, 252696, 315872, 394840, 524288,
};
#define N_MEMCACHED_SIZES (sizeof(memcached_sizes) / sizeof(memcached_sizes[0]))

/* ---------------------------------------------------------------------------
 * Class sizes
 * ------------------------------------------------------------------------- */

START_TEST(test_sizes_match_memcached)
{
    uint32_t sizes[62];
    memset(sizes, 0, sizeof(sizes));
    unsigned n = slab_class_sizes(96, 1.25, 512 * KIB, MIB, sizes, 62);
    ck_assert_uint_eq(n, N_MEMCACHED_SIZES);
    for (unsigned i = 1; i <= n; i++)
        ck_assert_msg(sizes[i] == memcached_sizes[i - 1], "class %u: %u, memcached %u", i, sizes[i],
                      memcached_sizes[i - 1]);
}
END_TEST

START_TEST(test_sizes_aligned_increasing)
{
    static const double factors[] = {1.05, 1.08, 1.25, 1.5, 2.0, 3.7};
    for (size_t f = 0; f < sizeof(factors) / sizeof(factors[0]); f++) {
        uint32_t sizes[62];
        unsigned n = slab_class_sizes(60, factors[f], 256 * KIB, 512 * KIB, sizes, 62);
        ck_assert_uint_ge(n, 2);
        ck_assert_uint_le(n, 61);
        ck_assert_uint_eq(sizes[1], 64); /* 60 aligned up to 8 */
        for (unsigned i = 1; i <= n; i++) {
            ck_assert_msg(sizes[i] % 8 == 0, "factor %g class %u size %u unaligned", factors[f], i,
                          sizes[i]);
            if (i > 1)
                ck_assert_msg(sizes[i] > sizes[i - 1], "factor %g class %u not increasing",
                              factors[f], i);
        }
        ck_assert_uint_eq(sizes[n], 256 * KIB);
    }
}
END_TEST

START_TEST(test_sizes_factor_two)
{
    /* 100 -> 104 (aligned), then doubling until chunk_max / 2, then chunk_max. */
    uint32_t sizes[62];
    unsigned n = slab_class_sizes(100, 2.0, 4096, 8192, sizes, 62);
    static const uint32_t want[] = {104, 208, 416, 832, 1664, 4096};
    ck_assert_uint_eq(n, 6);
    for (unsigned i = 1; i <= n; i++)
        ck_assert_uint_eq(sizes[i], want[i - 1]);
}
END_TEST

START_TEST(test_sizes_capped_by_max)
{
    /* A factor so small the classes run out: at most max - 1, the last one
     * still chunk_max. */
    uint32_t sizes[10];
    memset(sizes, 0, sizeof(sizes));
    unsigned n = slab_class_sizes(96, 1.05, 512 * KIB, MIB, sizes, 10);
    ck_assert_uint_eq(n, 9);
    ck_assert_uint_eq(sizes[1], 96);
    ck_assert_uint_eq(sizes[n], 512 * KIB);
    for (unsigned i = 2; i < n; i++)
        ck_assert_uint_gt(sizes[i], sizes[i - 1]);
}
END_TEST

START_TEST(test_class_init_perslab)
{
    struct slab_class sc;
    slab_class_init(&sc, 96, MIB);
    ck_assert_uint_eq(sc.size, 96);
    ck_assert_uint_eq(sc.perslab, MIB / 96);
    ck_assert_uint_eq(sc.npages, 0);
    ck_assert_ptr_null(sc.freelist);
    slab_class_deinit(&sc);
    slab_class_init(&sc, 524288, MIB);
    ck_assert_uint_eq(sc.perslab, 2);
    slab_class_deinit(&sc);
    slab_class_init(&sc, 394840, MIB);
    ck_assert_uint_eq(sc.perslab, 2);
    slab_class_deinit(&sc);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Chunks
 * ------------------------------------------------------------------------- */

static struct slab_pool make_pool(uint64_t limit, uint32_t page_size)
{
    struct slab_pool p;
    memset(&p, 0, sizeof(p));
    p.mem_limit = limit;
    p.page_size = page_size;
    p.chunk_max = page_size / 2;
    return p;
}

static uint64_t used(struct slab_pool *p)
{
    return atomic_load(&p->mem_used);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_chunks_fill_budget)
{
    const uint32_t page = 64 * KIB, size = 96;
    struct slab_pool pool = make_pool(2 * page, page);
    struct slab_class sc;
    slab_class_init(&sc, size, page);
    const uint32_t per = page / size;
    void **chunks = calloc(3 * per, sizeof(void *));

    size_t n = 0;
    for (; n < 3 * per; n++) {
        chunks[n] = slab_chunk_alloc(&pool, &sc);
        if (chunks[n] == NULL)
            break;
        ck_assert_uint_le(used(&pool), pool.mem_limit);
        /* A new page is taken only when the previous one is used up. */
        ck_assert_uint_eq(used(&pool), ((n / per) + 1) * (uint64_t)page);
        ck_assert_uint_eq((uintptr_t)chunks[n] % 8, 0);
        memset(chunks[n], (int)(n & 0xff), size); /* the whole chunk is writable */
    }
    ck_assert_uint_eq(n, 2 * per);
    ck_assert_uint_eq(sc.npages, 2);
    ck_assert_uint_eq(used(&pool), 2 * (uint64_t)page);
    ck_assert_ptr_null(slab_chunk_alloc(&pool, &sc));
    ck_assert_uint_eq(used(&pool), 2 * (uint64_t)page);

    /* Chunks never overlap and keep what was written. */
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = chunks[i];
        for (uint32_t b = 0; b < size; b += 19)
            ck_assert_uint_eq(c[b], i & 0xff);
    }
    qsort(chunks, n, sizeof(void *), cmp_ptr);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_ge((uintptr_t)chunks[i] - (uintptr_t)chunks[i - 1], size);

    free(chunks);
    slab_class_deinit(&sc);
}
END_TEST

START_TEST(test_chunk_free_and_reuse)
{
    const uint32_t page = 64 * KIB, size = 120;
    struct slab_pool pool = make_pool(page, page);
    struct slab_class sc;
    slab_class_init(&sc, size, page);
    const uint32_t per = page / size;
    void **chunks = calloc(per, sizeof(void *));
    for (uint32_t i = 0; i < per; i++)
        ck_assert_ptr_nonnull(chunks[i] = slab_chunk_alloc(&pool, &sc));
    ck_assert_ptr_null(slab_chunk_alloc(&pool, &sc));

    /* A freed chunk comes back (last freed first), without a new page. */
    slab_chunk_free(&sc, chunks[10]);
    ck_assert_uint_eq(sc.nfree, 1);
    slab_chunk_free(&sc, chunks[20]);
    ck_assert_uint_eq(sc.nfree, 2);
    ck_assert_ptr_eq(slab_chunk_alloc(&pool, &sc), chunks[20]);
    ck_assert_ptr_eq(slab_chunk_alloc(&pool, &sc), chunks[10]);
    ck_assert_uint_eq(sc.nfree, 0);
    ck_assert_ptr_null(slab_chunk_alloc(&pool, &sc));
    ck_assert_uint_eq(sc.npages, 1);

    /* Free everything and take it all again: still one page. */
    for (uint32_t i = 0; i < per; i++)
        slab_chunk_free(&sc, chunks[i]);
    ck_assert_uint_eq(sc.nfree, per);
    for (uint32_t i = 0; i < per; i++)
        ck_assert_ptr_nonnull(slab_chunk_alloc(&pool, &sc));
    ck_assert_ptr_null(slab_chunk_alloc(&pool, &sc));
    ck_assert_uint_eq(used(&pool), page);
    ck_assert_uint_eq(sc.npages, 1);
    free(chunks);
    slab_class_deinit(&sc);
}
END_TEST

/* Pages are taken lazily: a class that allocates nothing costs nothing. */
START_TEST(test_pages_are_lazy)
{
    const uint32_t page = 64 * KIB;
    struct slab_pool pool = make_pool(10 * page, page);
    struct slab_class a, b;
    slab_class_init(&a, 96, page);
    slab_class_init(&b, 4096, page);
    ck_assert_uint_eq(used(&pool), 0);
    ck_assert_ptr_nonnull(slab_chunk_alloc(&pool, &a));
    ck_assert_uint_eq(used(&pool), page);
    ck_assert_uint_eq(b.npages, 0);
    ck_assert_uint_eq(a.end_free, page / 96 - 1);
    slab_class_deinit(&a);
    slab_class_deinit(&b);
}
END_TEST

START_TEST(test_budget_shared_between_classes)
{
    const uint32_t page = 64 * KIB;
    struct slab_pool pool = make_pool(3 * page, page);
    struct slab_class a, b;
    slab_class_init(&a, 1024, page);
    slab_class_init(&b, 8192, page);
    size_t na = 0, nb = 0;
    /* Interleave until both are refused. */
    bool more_a = true, more_b = true;
    while (more_a || more_b) {
        if (more_a && (more_a = slab_chunk_alloc(&pool, &a) != NULL))
            na++;
        if (more_b && (more_b = slab_chunk_alloc(&pool, &b) != NULL))
            nb++;
        ck_assert_uint_le(used(&pool), pool.mem_limit);
    }
    ck_assert_uint_eq(a.npages + b.npages, 3);
    ck_assert_uint_eq(na, a.npages * (page / 1024));
    ck_assert_uint_eq(nb, b.npages * (page / 8192));
    ck_assert_uint_eq(used(&pool), 3 * (uint64_t)page);
    slab_class_deinit(&a);
    slab_class_deinit(&b);
}
END_TEST

START_TEST(test_budget_smaller_than_a_page)
{
    /* memcached's rule: each class's first page, even over the budget; never a second. */
    const uint32_t page = 64 * KIB;
    struct slab_pool pool = make_pool(page - 1, page);
    struct slab_class a, b;
    slab_class_init(&a, 96, page);
    slab_class_init(&b, 1024, page);
    size_t n = 0;
    while (slab_chunk_alloc(&pool, &a) != NULL)
        n++;
    ck_assert_uint_eq(n, page / 96);
    ck_assert_uint_eq(a.npages, 1);
    ck_assert_ptr_nonnull(slab_chunk_alloc(&pool, &b));
    ck_assert_uint_eq(used(&pool), 2 * (uint64_t)page);
    ck_assert_uint_eq(b.npages, 1);
    slab_class_deinit(&a);
    slab_class_deinit(&b);
}
END_TEST

START_TEST(test_has_room)
{
    struct slab_pool pool = make_pool(100 * KIB, 64 * KIB);
    ck_assert(slab_pool_has_room(&pool, 100 * KIB));
    ck_assert(!slab_pool_has_room(&pool, 100 * KIB + 1));
    atomic_store(&pool.mem_used, 64 * KIB);
    ck_assert(slab_pool_has_room(&pool, 36 * KIB));
    ck_assert(!slab_pool_has_room(&pool, 64 * KIB));
}
END_TEST

/* ---------------------------------------------------------------------------
 * Large allocations
 * ------------------------------------------------------------------------- */

START_TEST(test_large_alloc_free_refunds)
{
    const uint32_t page = 64 * KIB;
    struct slab_pool pool = make_pool(MIB, page);
    struct slab_class large;
    slab_class_init(&large, 0, page);

    const size_t sz = 300000, rounded = 303104; /* up to 4 KiB */
    void *p[4];
    for (int i = 0; i < 3; i++) {
        p[i] = slab_large_alloc(&pool, &large, sz);
        ck_assert_ptr_nonnull(p[i]);
        memset(p[i], 0x5a, sz); /* the whole size is usable */
        ck_assert_uint_eq(used(&pool), (uint64_t)(i + 1) * rounded);
        ck_assert_uint_eq(large.nlarge_bytes, (uint64_t)(i + 1) * rounded);
    }
    /* A fourth does not fit 1 MiB: refused, nothing charged, no malloc failure. */
    ck_assert_ptr_null(slab_large_alloc(&pool, &large, sz));
    ck_assert_uint_eq(used(&pool), 3 * (uint64_t)rounded);
    ck_assert_uint_eq(atomic_load(&pool.malloc_fails), 0);

    /* Freeing refunds exactly what was charged. */
    slab_large_free(&pool, &large, p[1], sz);
    ck_assert_uint_eq(used(&pool), 2 * (uint64_t)rounded);
    ck_assert_uint_eq(large.nlarge_bytes, 2 * (uint64_t)rounded);
    ck_assert_ptr_nonnull(p[1] = slab_large_alloc(&pool, &large, sz));
    for (int i = 0; i < 3; i++)
        slab_large_free(&pool, &large, p[i], sz);
    ck_assert_uint_eq(used(&pool), 0);
    ck_assert_uint_eq(large.nlarge_bytes, 0);
    slab_class_deinit(&large);
}
END_TEST

START_TEST(test_large_exact_page_multiple)
{
    struct slab_pool pool = make_pool(MIB, 64 * KIB);
    struct slab_class large;
    slab_class_init(&large, 0, 64 * KIB);
    void *p = slab_large_alloc(&pool, &large, MIB);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(used(&pool), MIB);
    ck_assert_ptr_null(slab_large_alloc(&pool, &large, 1));
    slab_large_free(&pool, &large, p, MIB);
    ck_assert_uint_eq(used(&pool), 0);
    p = slab_large_alloc(&pool, &large, 4097);
    ck_assert_uint_eq(used(&pool), 8192);
    slab_large_free(&pool, &large, p, 4097);
    ck_assert_uint_eq(used(&pool), 0);
    slab_class_deinit(&large);
}
END_TEST

START_TEST(test_pages_and_large_share_budget)
{
    const uint32_t page = 64 * KIB;
    struct slab_pool pool = make_pool(4 * page, page);
    struct slab_class sc, large;
    slab_class_init(&sc, 96, page);
    slab_class_init(&large, 0, page);

    /* 200000 bytes (200704 charged) leave less than a page: the class gets
     * its first page (over the budget, as in memcached) and no second. */
    void *big = slab_large_alloc(&pool, &large, 200000);
    ck_assert_ptr_nonnull(big);
    size_t n = 0;
    while (slab_chunk_alloc(&pool, &sc) != NULL)
        n++;
    ck_assert_uint_eq(n, page / 96);
    ck_assert_uint_eq(used(&pool), 200704 + (uint64_t)page);
    ck_assert_ptr_null(slab_large_alloc(&pool, &large, 4096)); /* not the first large one */
    slab_large_free(&pool, &large, big, 200000);

    /* Now the pages take the room. */
    while (slab_chunk_alloc(&pool, &sc) != NULL)
        n++;
    ck_assert_uint_eq(n, 4 * (page / 96));
    ck_assert_uint_eq(used(&pool), 4 * (uint64_t)page);
    /* The first large item passes the budget only if it is at most a page. */
    ck_assert_ptr_null(slab_large_alloc(&pool, &large, page + 1));
    void *p = slab_large_alloc(&pool, &large, 4096);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(slab_large_alloc(&pool, &large, 4096));
    slab_large_free(&pool, &large, p, 4096);
    slab_class_deinit(&sc);
    slab_class_deinit(&large);
}
END_TEST

static Suite *slab_suite(void)
{
    Suite *s = suite_create("slab");
    TCase *tc = tcase_create("sizes");
    tcase_add_test(tc, test_sizes_match_memcached);
    tcase_add_test(tc, test_sizes_aligned_increasing);
    tcase_add_test(tc, test_sizes_factor_two);
    tcase_add_test(tc, test_sizes_capped_by_max);
    tcase_add_test(tc, test_class_init_perslab);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunks");
    tcase_add_test(tc, test_chunks_fill_budget);
    tcase_add_test(tc, test_chunk_free_and_reuse);
    tcase_add_test(tc, test_pages_are_lazy);
    tcase_add_test(tc, test_budget_shared_between_classes);
    tcase_add_test(tc, test_budget_smaller_than_a_page);
    tcase_add_test(tc, test_has_room);
    suite_add_tcase(s, tc);

    tc = tcase_create("large");
    tcase_add_test(tc, test_large_alloc_free_refunds);
    tcase_add_test(tc, test_large_exact_page_multiple);
    tcase_add_test(tc, test_pages_and_large_share_budget);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(slab_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
