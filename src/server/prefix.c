/*
 * prefix.c: see prefix.h.
 */
#include "prefix.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_BUCKETS   256
#define PREFIX_DELIMITER ':'

struct prefix {
    struct prefix *next;
    unsigned long long gets, hits, sets, dels;
    size_t len;
    char name[];
};

struct prefix_stats {
    pthread_mutex_t lock;
    struct prefix *bucket[PREFIX_BUCKETS];
};

/* MurmurHash3_x86_32 with seed 0: memcached's default key hash. */
static uint32_t murmur3_32(const char *key, size_t len)
{
    const uint8_t *data = (const uint8_t *)key;
    const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
    uint32_t h = 0;
    size_t nblocks = len / 4;
    for (size_t i = 0; i < nblocks; i++) {
        uint32_t k;
        memcpy(&k, data + i * 4, 4);
        k *= c1;
        k = (k << 15) | (k >> 17);
        k *= c2;
        h ^= k;
        h = (h << 13) | (h >> 19);
        h = h * 5 + 0xe6546b64;
    }
    const uint8_t *tail = data + nblocks * 4;
    uint32_t k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = (k << 15) | (k >> 17);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

struct prefix_stats *prefix_stats_create(void)
{
    struct prefix_stats *ps = calloc(1, sizeof(*ps));
    if (ps != NULL)
        pthread_mutex_init(&ps->lock, NULL);
    return ps;
}

void prefix_clear(struct prefix_stats *ps)
{
    pthread_mutex_lock(&ps->lock);
    for (int i = 0; i < PREFIX_BUCKETS; i++) {
        struct prefix *p = ps->bucket[i];
        while (p != NULL) {
            struct prefix *next = p->next;
            free(p);
            p = next;
        }
        ps->bucket[i] = NULL;
    }
    pthread_mutex_unlock(&ps->lock);
}

void prefix_stats_destroy(struct prefix_stats **psp)
{
    if (psp == NULL || *psp == NULL)
        return;
    prefix_clear(*psp);
    pthread_mutex_destroy(&(*psp)->lock);
    free(*psp);
    *psp = NULL;
}

/* The entry for a key's prefix (created if new), or NULL. Lock held. */
static struct prefix *find(struct prefix_stats *ps, const char *key, size_t nkey)
{
    const char *d = memchr(key, PREFIX_DELIMITER, nkey);
    if (d == NULL)
        return NULL;
    size_t len = (size_t)(d - key);
    uint32_t b = murmur3_32(key, len) % PREFIX_BUCKETS;
    for (struct prefix *p = ps->bucket[b]; p != NULL; p = p->next) {
        if (p->len == len && memcmp(p->name, key, len) == 0)
            return p;
    }
    struct prefix *p = calloc(1, sizeof(*p) + len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p->name, key, len);
    p->len = len;
    p->next = ps->bucket[b];
    ps->bucket[b] = p;
    return p;
}

void prefix_record_get(struct prefix_stats *ps, const char *key, size_t nkey, bool hit)
{
    pthread_mutex_lock(&ps->lock);
    struct prefix *p = find(ps, key, nkey);
    if (p != NULL) {
        p->gets++;
        if (hit)
            p->hits++;
    }
    pthread_mutex_unlock(&ps->lock);
}

void prefix_record_set(struct prefix_stats *ps, const char *key, size_t nkey)
{
    pthread_mutex_lock(&ps->lock);
    struct prefix *p = find(ps, key, nkey);
    if (p != NULL)
        p->sets++;
    pthread_mutex_unlock(&ps->lock);
}

void prefix_record_delete(struct prefix_stats *ps, const char *key, size_t nkey)
{
    pthread_mutex_lock(&ps->lock);
    struct prefix *p = find(ps, key, nkey);
    if (p != NULL)
        p->dels++;
    pthread_mutex_unlock(&ps->lock);
}

void prefix_dump(struct prefix_stats *ps, prefix_emit_fn emit, void *arg)
{
    pthread_mutex_lock(&ps->lock);
    for (int i = 0; i < PREFIX_BUCKETS; i++) {
        for (struct prefix *p = ps->bucket[i]; p != NULL; p = p->next) {
            char line[512];
            int n =
                snprintf(line, sizeof(line), "PREFIX %.*s get %llu hit %llu set %llu del %llu\r\n",
                         (int)p->len, p->name, p->gets, p->hits, p->sets, p->dels);
            if (n > 0)
                emit(arg, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        }
    }
    pthread_mutex_unlock(&ps->lock);
}
