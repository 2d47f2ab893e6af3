/*
 * fb_util.c: keys, values, clocks, process memory, directories and engine
 * set-up for tiercache-flashbench (see fb.h).
 *
 * Everything here is called from the main thread, except the key and value
 * helpers, which the load threads use (pure functions).
 */
#include "fb.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * Keys and values
 * ------------------------------------------------------------------------- */

void fb_key(char *buf, uint64_t idx)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    memcpy(buf, "fb:", 3);
    int i = FB_NKEY - 2; /* digits 3..15, two at a time from the right */
    for (; i >= 4; i -= 2) {
        memcpy(buf + i, pairs + 2 * (idx % 100), 2);
        idx /= 100;
    }
    buf[3] = (char)('0' + idx % 10);
}

/* The filler after the index: printable, the same for every value. */
static char pattern_byte(uint32_t i)
{
    return (char)('a' + i % 26);
}

void fb_value_stamp(char *dst, uint32_t n, uint64_t idx)
{
    uint32_t head = n < 8 ? n : 8;
    for (uint32_t i = 0; i < head; i++)
        dst[i] = (char)(idx >> (8 * i));
}

void fb_value(char *dst, uint32_t n, uint64_t idx)
{
    for (uint32_t i = 0; i < n; i++)
        dst[i] = pattern_byte(i);
    fb_value_stamp(dst, n, idx);
}

bool fb_value_ok(const char *v, uint32_t n, uint32_t want_n, uint64_t idx)
{
    if (n != want_n)
        return false;
    uint32_t head = n < 8 ? n : 8;
    for (uint32_t i = 0; i < head; i++) {
        if (v[i] != (char)(idx >> (8 * i)))
            return false;
    }
    /* The last byte too: catches a value cut short or shifted. */
    return n <= 8 || v[n - 1] == pattern_byte(n - 1);
}

/* ---------------------------------------------------------------------------
 * Clocks and memory
 * ------------------------------------------------------------------------- */

uint64_t fb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

double fb_secs(uint64_t from_ns, uint64_t to_ns)
{
    return (double)(to_ns - from_ns) / 1e9;
}

void fb_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !atomic_load(&fb_interrupted))
        ;
}

double fb_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void fb_rss_get(struct fb_rss *out)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long kb;
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            out->vm_rss = kb * 1024;
        else if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
            out->rss_anon = kb * 1024;
        else if (sscanf(line, "RssFile: %llu kB", &kb) == 1)
            out->rss_file = kb * 1024;
    }
    fclose(f);
}

/* ---------------------------------------------------------------------------
 * Directories
 * ------------------------------------------------------------------------- */

int fb_dir_setup(struct fb_config *cfg)
{
    const char *parent = cfg->parent != NULL ? cfg->parent : "/tmp";
    if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "tiercache-flashbench: cannot make %s: %s\n", parent, strerror(errno));
        return -1;
    }
    int n = snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s/tcfb.XXXXXX", parent);
    if (n < 0 || (size_t)n >= sizeof(cfg->run_dir) - 64 || mkdtemp(cfg->run_dir) == NULL) {
        fprintf(stderr, "tiercache-flashbench: cannot make a directory in %s: %s\n", parent,
                strerror(errno));
        cfg->run_dir[0] = '\0';
        return -1;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void fb_dir_remove(const char *path)
{
    if (path != NULL && path[0] != '\0')
        nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void fb_path(const struct fb_config *cfg, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", cfg->run_dir, name);
}

static _Thread_local uint64_t du_sum;

static int du_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F)
        du_sum += (uint64_t)st->st_blocks * 512;
    return 0;
}

uint64_t fb_dir_disk_bytes(const char *path)
{
    du_sum = 0;
    nftw(path, du_one, 16, FTW_PHYS);
    return du_sum;
}

static int uncache_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type != FTW_F)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    fdatasync(fd); /* dirty pages cannot be dropped */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return 0;
}

void fb_dir_uncache(const char *path)
{
    nftw(path, uncache_one, 16, FTW_PHYS);
}

/* ---------------------------------------------------------------------------
 * Engines
 * ------------------------------------------------------------------------- */

struct cache *fb_open(const struct fb_config *cfg, const char *dir, uint64_t ram)
{
    struct cache_options o;
    cache_options_default(&o);
    o.mem_limit = ram;
    o.flash_dir = dir;
    o.flash_size = cfg->flash_size;
    o.flash_sync = cfg->sync;
    struct cache *c = NULL;
    tc_status_e st = cache_create(&o, &c);
    if (st != TC_OK) {
        fprintf(stderr, "tiercache-flashbench: cannot create the engine on %s: %s\n", dir,
                tc_strerror(st));
        return NULL;
    }
    return c;
}

void fb_wait_hash(struct cache *c)
{
    for (int i = 0; i < 6000; i++) {
        struct cache_stats s;
        cache_stats_get(c, &s);
        if (!s.hash_is_expanding)
            return;
        fb_sleep_ms(10);
    }
}

bool fb_drain(struct cache *c, double secs)
{
    if (cache_flash_drain(c, (long)(secs * 1000)))
        return true;
    fprintf(stderr, "tiercache-flashbench: the flash writer did not catch up within %.0f s\n",
            secs);
    return false;
}
