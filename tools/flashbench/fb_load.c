/*
 * fb_load.c: groups of load threads for tiercache-flashbench (see fb.h).
 *
 * A group is n threads running one job (store a range of keys, read a range
 * once, or read a range over and over, each pass in a new random order),
 * each with its own engine worker handle. The threads take positions from
 * a shared counter, CHUNK at a time: a key's index then follows the time it
 * was stored (the newest keys are the highest) however the threads are
 * scheduled, and all threads read in the same random pass. Threads keep
 * their counts locally and publish them every PUBLISH_EVERY operations into
 * relaxed atomics that only they write, so the main thread can sample rates
 * while they run without slowing them.
 *
 * A store answered TC_BUSY (RAM has nothing it can drop until the flash
 * writer catches up) is retried after FB_BUSY_US microseconds, as the
 * server retries a command; the retries and the time spent pausing are
 * counted, since they are how a writer falling behind shows.
 *
 * Locking: the group's stop flag and the published counts are atomics; the
 * main thread starts, samples, stops and joins.
 */
#include "fb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PUBLISH_EVERY 256
#define CHUNK         64 /* indexes a thread takes at a time: key order follows time order */

struct fb_thread {
    struct fb_group *g;
    unsigned t;
    pthread_t tid;
    bool started;
    _Atomic uint64_t ops, hits, misses, wrong, busy, busy_ns, errors, cpu_ns, next;
    atomic_bool done;
} __attribute__((aligned(64)));

struct fb_group {
    struct cache *c;
    struct fb_job job;
    unsigned n;
    atomic_bool stop;
    _Atomic uint64_t cursor; /* the next position to hand out (see next_chunk) */
    struct fb_thread *th;
};

static bool stopping(struct fb_group *g)
{
    return atomic_load_explicit(&g->stop, memory_order_relaxed) ||
           atomic_load_explicit(&fb_interrupted, memory_order_relaxed);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void publish(struct fb_thread *th, const struct fb_counts *l, uint64_t cpu0)
{
    atomic_store_explicit(&th->ops, l->ops, memory_order_relaxed);
    atomic_store_explicit(&th->hits, l->hits, memory_order_relaxed);
    atomic_store_explicit(&th->misses, l->misses, memory_order_relaxed);
    atomic_store_explicit(&th->wrong, l->wrong, memory_order_relaxed);
    atomic_store_explicit(&th->busy, l->busy, memory_order_relaxed);
    atomic_store_explicit(&th->busy_ns, l->busy_ns, memory_order_relaxed);
    atomic_store_explicit(&th->errors, l->errors, memory_order_relaxed);
    atomic_store_explicit(&th->next, l->next, memory_order_relaxed);
    atomic_store_explicit(&th->cpu_ns, thread_cpu_ns() - cpu0, memory_order_relaxed);
}

/* Store key idx with the value in `val` (a template, restamped). False if it failed. */
static bool store_one(struct fb_group *g, struct cache_worker *w, uint64_t idx, const char *val,
                      struct fb_counts *l)
{
    char key[FB_NKEY];
    uint32_t vsize = g->job.vsize;
    fb_key(key, idx);
    struct item *it;
    tc_status_e st;
    while ((st = cache_alloc(w, key, FB_NKEY, 0, 0, vsize, &it)) == TC_BUSY) {
        l->busy++;
        uint64_t t0 = fb_now_ns();
        struct timespec pause = {0, FB_BUSY_US * 1000L};
        nanosleep(&pause, NULL);
        l->busy_ns += fb_now_ns() - t0;
        if (stopping(g))
            return false;
    }
    if (st != TC_OK) {
        l->errors++;
        return false;
    }
    char *dst = item_value_mut(it);
    memcpy(dst, val, vsize);
    fb_value_stamp(dst, vsize, idx);
    st = cache_store(w, it, CACHE_SET, 0, NULL);
    cache_item_unref(g->c, it);
    if (st != TC_OK) {
        l->errors++;
        return false;
    }
    l->ops++;
    return true;
}

int fb_get_one(struct cache *c, struct cache_worker *w, uint64_t idx, uint32_t vsize)
{
    char key[FB_NKEY];
    fb_key(key, idx);
    struct item *it;
    if (cache_get(w, key, FB_NKEY, &it) != TC_OK)
        return 0;
    int r = fb_value_ok(item_value(it), item_nbytes(it), vsize, idx) ? 1 : -1;
    cache_item_unref(c, it);
    return r;
}

static void count_get(struct fb_counts *l, int r)
{
    l->ops++;
    if (r > 0)
        l->hits++;
    else if (r == 0)
        l->misses++;
    else
        l->wrong++;
}

/*
 * A permutation of [0, n) chosen by `seed`: a 3-round Feistel network on
 * the smallest even number of bits that covers n (multiply-shift rounds),
 * walking the cycle until the result falls below n (under 4 steps on
 * average). A few nanoseconds: small next to a RAM hit.
 */
uint64_t fb_perm(uint64_t i, uint64_t n, uint64_t seed)
{
    unsigned half = 1;
    while ((1ULL << (2 * half)) < n)
        half++;
    uint64_t mask = (1ULL << half) - 1;
    uint64_t k = (seed + 1) * 0x9E3779B97F4A7C15ULL;
    do {
        uint64_t l = i >> half, r = i & mask;
        for (uint64_t round = 0; round < 3; round++) {
            uint64_t f = ((r + k + round) * 0xD6E8FEB86659FD93ULL) >> (64 - half);
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        i = l << half | r;
    } while (i >= n);
    return i;
}

/*
 * The next chunk [*from, *to) of the group's shared sequence of positions
 * (0, 1, 2, ...): false when the job's range is used up. FB_GET_PERM's
 * sequence has no end (position q is pass q / span, place q % span).
 */
static bool next_chunk(struct fb_group *g, uint64_t *from, uint64_t *to)
{
    const struct fb_job *j = &g->job;
    uint64_t q = atomic_fetch_add_explicit(&g->cursor, CHUNK, memory_order_relaxed);
    bool endless = j->op == FB_GET_PERM || (j->op == FB_STORE && j->hi == 0);
    uint64_t end = endless ? UINT64_MAX : j->hi - j->lo;
    if (q >= end)
        return false;
    *from = q;
    *to = end - q < CHUNK ? end : q + CHUNK;
    return true;
}

static void run_job(struct fb_thread *th, struct cache_worker *w, const char *val,
                    struct fb_counts *l, uint64_t cpu0)
{
    struct fb_group *g = th->g;
    const struct fb_job *j = &g->job;
    uint64_t span = j->hi > j->lo ? j->hi - j->lo : 1;
    uint64_t q = 0, to = 0;     /* this thread's chunk of positions */
    uint64_t pass = 0, pos = 0; /* FB_GET_PERM: q / span and q % span */
    for (uint64_t k = 0;; k++) {
        if (k % PUBLISH_EVERY == 0) {
            publish(th, l, cpu0);
            if (stopping(g))
                return;
        }
        if (q == to) {
            if (!next_chunk(g, &q, &to))
                return;
            pass = q / span;
            pos = q % span;
        }
        switch (j->op) {
        case FB_STORE:
            if (store_one(g, w, j->lo + q, val, l))
                l->next = j->lo + q + 1 > l->next ? j->lo + q + 1 : l->next;
            else if (stopping(g))
                return;
            break;
        case FB_GET_SEQ:
            count_get(l, fb_get_one(g->c, w, j->lo + q, j->vsize));
            break;
        case FB_GET_PERM:
            count_get(l, fb_get_one(g->c, w, j->lo + fb_perm(pos, span, j->seed + pass), j->vsize));
            if (++pos == span) {
                pos = 0;
                pass++;
            }
            break;
        }
        q++;
    }
}

static void *thread_main(void *arg)
{
    struct fb_thread *th = arg;
    struct fb_group *g = th->g;
    uint64_t cpu0 = thread_cpu_ns();
    struct fb_counts l = {0};
    struct cache_worker *w = NULL;
    char *val = NULL;
    if (cache_worker_create(g->c, &w) != TC_OK ||
        (g->job.op == FB_STORE && (val = malloc(g->job.vsize + 1)) == NULL)) {
        l.errors++;
    } else {
        if (val != NULL)
            fb_value(val, g->job.vsize, 0);
        run_job(th, w, val, &l, cpu0);
    }
    publish(th, &l, cpu0);
    free(val);
    cache_worker_destroy(&w);
    atomic_store(&th->done, true);
    return NULL;
}

struct fb_group *fb_group_start(struct cache *c, unsigned n, const struct fb_job *job)
{
    struct fb_group *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->th = aligned_alloc(64, sizeof(*g->th) * n)) == NULL) {
        free(g);
        fprintf(stderr, "tiercache-flashbench: out of memory\n");
        return NULL;
    }
    memset(g->th, 0, sizeof(*g->th) * n);
    g->c = c;
    g->job = *job;
    g->n = n;
    for (unsigned i = 0; i < n; i++) {
        g->th[i].g = g;
        g->th[i].t = i;
        if (pthread_create(&g->th[i].tid, NULL, thread_main, &g->th[i]) != 0) {
            fprintf(stderr, "tiercache-flashbench: cannot start a thread\n");
            fb_group_join(&g, NULL);
            return NULL;
        }
        g->th[i].started = true;
    }
    return g;
}

void fb_group_counts(struct fb_group *g, struct fb_counts *o)
{
    memset(o, 0, sizeof(*o));
    for (unsigned i = 0; i < g->n; i++) {
        struct fb_thread *th = &g->th[i];
        o->ops += atomic_load_explicit(&th->ops, memory_order_relaxed);
        o->hits += atomic_load_explicit(&th->hits, memory_order_relaxed);
        o->misses += atomic_load_explicit(&th->misses, memory_order_relaxed);
        o->wrong += atomic_load_explicit(&th->wrong, memory_order_relaxed);
        o->busy += atomic_load_explicit(&th->busy, memory_order_relaxed);
        o->busy_ns += atomic_load_explicit(&th->busy_ns, memory_order_relaxed);
        o->errors += atomic_load_explicit(&th->errors, memory_order_relaxed);
        o->cpu_ns += atomic_load_explicit(&th->cpu_ns, memory_order_relaxed);
        uint64_t next = atomic_load_explicit(&th->next, memory_order_relaxed);
        if (next > o->next)
            o->next = next;
    }
}

bool fb_group_done(struct fb_group *g)
{
    for (unsigned i = 0; i < g->n; i++) {
        if (g->th[i].started && !atomic_load(&g->th[i].done))
            return false;
    }
    return true;
}

void fb_group_stop(struct fb_group *g)
{
    atomic_store(&g->stop, true);
}

void fb_group_join(struct fb_group **gp, struct fb_counts *out)
{
    if (gp == NULL || *gp == NULL)
        return;
    struct fb_group *g = *gp;
    fb_group_stop(g);
    for (unsigned i = 0; i < g->n; i++) {
        if (g->th[i].started)
            pthread_join(g->th[i].tid, NULL);
    }
    if (out != NULL)
        fb_group_counts(g, out);
    free(g->th);
    free(g);
    *gp = NULL;
}

void fb_group_wait(struct fb_group *g, double secs)
{
    uint64_t end = fb_now_ns() + (uint64_t)(secs * 1e9);
    while (!fb_group_done(g) && !atomic_load(&fb_interrupted) && (secs <= 0 || fb_now_ns() < end))
        fb_sleep_ms(5);
}

bool fb_ram_full(struct cache *c)
{
    struct cache_stats s;
    struct cache_tier_stats t;
    cache_stats_get(c, &s);
    cache_tier_stats_get(c, &t);
    return s.evictions > 0 || t.dropped_clean > 0 || t.dropped_dirty > 0;
}

bool fb_fill_ram(struct cache *c, unsigned n, uint64_t lo, uint32_t vsize, double limit_s,
                 uint64_t *next, struct fb_counts *out)
{
    struct fb_job job = {.op = FB_STORE, .lo = lo, .hi = 0, .vsize = vsize};
    struct fb_group *g = fb_group_start(c, n, &job);
    if (g == NULL)
        return false;
    uint64_t end = fb_now_ns() + (uint64_t)(limit_s * 1e9);
    bool full = false;
    while (!(full = fb_ram_full(c)) && !fb_group_done(g) && !atomic_load(&fb_interrupted) &&
           fb_now_ns() < end)
        fb_sleep_ms(5);
    struct fb_counts cnt;
    fb_group_join(&g, &cnt);
    if (out != NULL)
        *out = cnt;
    *next = cnt.next > lo ? cnt.next : lo;
    if (!full)
        fprintf(stderr, "tiercache-flashbench: RAM did not fill (%llu stores, %llu errors)\n",
                (unsigned long long)cnt.ops, (unsigned long long)cnt.errors);
    return full;
}

bool fb_fill(struct cache *c, unsigned n, uint64_t lo, uint64_t hi, uint32_t vsize,
             struct fb_counts *out)
{
    struct fb_job job = {.op = FB_STORE, .lo = lo, .hi = hi, .vsize = vsize};
    struct fb_group *g = fb_group_start(c, n, &job);
    if (g == NULL)
        return false;
    fb_group_wait(g, 0);
    struct fb_counts cnt;
    fb_group_join(&g, &cnt);
    if (out != NULL)
        *out = cnt;
    if (cnt.errors > 0 || cnt.ops != hi - lo) {
        fprintf(stderr, "tiercache-flashbench: fill stored %llu of %llu items (%llu errors)\n",
                (unsigned long long)cnt.ops, (unsigned long long)(hi - lo),
                (unsigned long long)cnt.errors);
        return false;
    }
    return true;
}
