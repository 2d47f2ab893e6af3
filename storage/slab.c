/*
 * slab.c: size classes, pages and the memory budget (see slab.h).
 *
 * Pages and large items are anonymous mappings: exact sizes, page aligned,
 * faulted in only when touched, and returned to the system when unmapped.
 * The budget is reserved with a compare-and-swap loop before mapping, so the
 * item memory never exceeds mem_limit, whatever the threads do, with one
 * exception taken from memcached: a class's first page is granted even over
 * the budget, so that a small -m still serves every item size (memcached -m 4
 * stores values of every class). At most one page per class goes over.
 *
 * Who calls: cache.c, with the class lock held for every function taking a
 * struct slab_class.
 */
#include "slab.h"

#include <stdlib.h>
#include <sys/mman.h>

#define CHUNK_ALIGN 8
#define OS_PAGE     4096

unsigned slab_class_sizes(uint32_t min_size, double factor, uint32_t chunk_max, uint32_t page_size,
                          uint32_t *sizes, unsigned max)
{
    (void)page_size;
    unsigned i = 0;
    uint32_t size = min_size;
    /* Same progression as memcached's slabs_init(): the size is truncated to
     * an integer after each multiplication, then aligned. */
    while (++i < max - 1) {
        if ((double)size >= (double)chunk_max / factor)
            break;
        if (size % CHUNK_ALIGN)
            size += CHUNK_ALIGN - (size % CHUNK_ALIGN);
        sizes[i] = size;
        size = (uint32_t)((double)size * factor);
    }
    sizes[i] = chunk_max;
    return i;
}

void slab_class_init(struct slab_class *sc, uint32_t size, uint32_t page_size)
{
    *sc = (struct slab_class){0};
    sc->size = size;
    sc->perslab = size != 0 ? page_size / size : 0;
}

void slab_class_deinit(struct slab_class *sc)
{
    for (uint64_t i = 0; i < sc->npages; i++)
        munmap(sc->pages[i], (size_t)sc->size * sc->perslab);
    free(sc->pages);
    *sc = (struct slab_class){0};
}

static bool reserve(struct slab_pool *pool, uint64_t bytes, bool first_page)
{
    if (first_page) {
        atomic_fetch_add_explicit(&pool->mem_used, bytes, memory_order_relaxed);
        return true;
    }
    uint64_t used = atomic_load_explicit(&pool->mem_used, memory_order_relaxed);
    do {
        if (used + bytes > pool->mem_limit)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&pool->mem_used, &used, used + bytes,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

static void refund(struct slab_pool *pool, uint64_t bytes)
{
    atomic_fetch_sub_explicit(&pool->mem_used, bytes, memory_order_relaxed);
}

bool slab_pool_has_room(struct slab_pool *pool, uint64_t bytes)
{
    return atomic_load_explicit(&pool->mem_used, memory_order_relaxed) + bytes <= pool->mem_limit;
}

static void *map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Add a page to the class. The page holds perslab chunks; the tail beyond
 * them (page_size % size bytes) is never touched. */
static bool grow(struct slab_pool *pool, struct slab_class *sc)
{
    if (sc->npages == sc->pages_cap) {
        uint64_t cap = sc->pages_cap ? sc->pages_cap * 2 : 16;
        void **pages = realloc(sc->pages, cap * sizeof(void *));
        if (pages == NULL) {
            atomic_fetch_add_explicit(&pool->malloc_fails, 1, memory_order_relaxed);
            return false;
        }
        sc->pages = pages;
        sc->pages_cap = cap;
    }
    size_t len = (size_t)sc->size * sc->perslab;
    if (!reserve(pool, pool->page_size, sc->npages == 0))
        return false;
    void *page = map(len);
    if (page == NULL) {
        refund(pool, pool->page_size);
        atomic_fetch_add_explicit(&pool->malloc_fails, 1, memory_order_relaxed);
        return false;
    }
    sc->pages[sc->npages++] = page;
    sc->end_page = page;
    sc->end_free = sc->perslab;
    return true;
}

void *slab_chunk_alloc(struct slab_pool *pool, struct slab_class *sc)
{
    if (sc->freelist != NULL) {
        void *p = sc->freelist;
        sc->freelist = *(void **)p;
        sc->nfree--;
        return p;
    }
    if (sc->end_free == 0 && !grow(pool, sc))
        return NULL;
    void *p = sc->end_page;
    sc->end_page += sc->size;
    sc->end_free--;
    return p;
}

void slab_chunk_free(struct slab_class *sc, void *chunk)
{
    *(void **)chunk = sc->freelist;
    sc->freelist = chunk;
    sc->nfree++;
}

void slab_freelist_drop_range(struct slab_class *sc, const char *lo, const char *hi)
{
    void **link = &sc->freelist;
    while (*link != NULL) {
        char *p = *link;
        if (p >= lo && p < hi) {
            *link = *(void **)p;
            sc->nfree--;
        } else {
            link = (void **)p;
        }
    }
}

void slab_page_release(struct slab_pool *pool, struct slab_class *sc, char *page)
{
    for (uint64_t i = 0; i < sc->npages; i++) {
        if (sc->pages[i] != page)
            continue;
        munmap(page, (size_t)sc->size * sc->perslab);
        sc->pages[i] = sc->pages[--sc->npages];
        refund(pool, pool->page_size);
        return;
    }
}

static size_t large_len(size_t size)
{
    return (size + OS_PAGE - 1) & ~(size_t)(OS_PAGE - 1);
}

void *slab_large_alloc(struct slab_pool *pool, struct slab_class *large, size_t size)
{
    size_t len = large_len(size);
    /* Like a first page: the first large item (up to a page) may pass the budget. */
    if (!reserve(pool, len, large->nlarge_bytes == 0 && len <= pool->page_size))
        return NULL;
    void *p = map(len);
    if (p == NULL) {
        refund(pool, len);
        atomic_fetch_add_explicit(&pool->malloc_fails, 1, memory_order_relaxed);
        return NULL;
    }
    large->nlarge_bytes += len;
    return p;
}

void slab_large_free(struct slab_pool *pool, struct slab_class *large, void *p, size_t size)
{
    size_t len = large_len(size);
    munmap(p, len);
    large->nlarge_bytes -= len;
    refund(pool, len);
}
