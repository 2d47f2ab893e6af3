/*
 * values.c: what the concurrency test stores and how it recognises it.
 * Every key name, data value, append record and counter is a function of
 * (key, writer, sequence number), so a reply can be verified on its own:
 * check_data(), check_records() and check_counter() rebuild what must have
 * been stored and compare byte for byte. Pure functions, except the checks,
 * which read G.maxseq and report() through the calling thread.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "concurrency.h"

/* ---------------------------------------------------------------------------
 * Keys, hashes, values
 * ------------------------------------------------------------------------- */

int key_name(const struct keyref *k, char *buf, size_t cap)
{
    switch (k->kind) {
    case K_SHARED:
        if (k->idx % 37 == 5) {
            /* Some keys of the longest length, 250 bytes. */
            int n = snprintf(buf, cap, "s:%" PRIu32 ":", k->idx);
            if (cap < 251)
                abort();
            memset(buf + n, 'L', (size_t)(250 - n));
            buf[250] = '\0';
            return 250;
        }
        return snprintf(buf, cap, "s:%" PRIu32, k->idx);
    case K_PRIV:
        return snprintf(buf, cap, "p:%u:%" PRIu32, k->owner, k->idx);
    case K_SAPP:
        return snprintf(buf, cap, "sa:%" PRIu32, k->idx);
    case K_PAPP:
        return snprintf(buf, cap, "pa:%u", k->owner);
    case K_SINC:
        return snprintf(buf, cap, "sc:incr");
    case K_SCAS:
        return snprintf(buf, cap, "sc:cas");
    case K_PCNT:
        return snprintf(buf, cap, "pc:%u", k->owner);
    case K_FILL:
        return snprintf(buf, cap, "f:%u:%" PRIu32, k->owner, k->idx);
    case K_MISS:
        return snprintf(buf, cap, "nx:%" PRIu32, k->idx);
    case K_WARM:
        return snprintf(buf, cap, "w:%" PRIu32, k->idx);
    case K_BIG:
        return snprintf(buf, cap, "big:%" PRIu32, k->idx);
    default:
        return snprintf(buf, cap, "x:%u", k->owner);
    }
}

uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

uint32_t key_h32(const char *key)
{
    return (uint32_t)(hash_str(key) >> 17);
}

uint32_t app_flags(const char *key)
{
    return key_h32(key) ^ 0xA5A5A5A5u;
}

uint32_t cnt_flags(const char *key)
{
    return key_h32(key) ^ 0x5A5A5A5Au;
}

uint32_t data_flags(const char *key, unsigned w, uint32_t seq)
{
    return (((uint32_t)w << SEQ_BITS) | (seq & SEQ_MASK)) ^ key_h32(key);
}

static const char charset[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

static void fill_chars(char *dst, size_t n, uint64_t s)
{
    size_t i = 0;
    while (i < n) {
        s = mix64(s + 0x9e3779b97f4a7c15ULL);
        uint64_t r = s;
        for (int j = 0; j < 8 && i < n; j++, i++) {
            dst[i] = charset[r & 63];
            r >>= 6;
        }
    }
}

/* Data value padding: any byte, and now and then protocol text, so that a
 * value is only ever delimited by its length. */
static void fill_bytes(char *dst, size_t n, uint64_t s)
{
    static const char *const traps[] = {"\r\nEND\r\n", "\r\nVALUE x 0 1\r\n", "\r\n", "\0"};
    size_t i = 0;
    while (i < n) {
        s = mix64(s + 0x9e3779b97f4a7c15ULL);
        if ((s & 0xff) < 6) {
            const char *tr = traps[(s >> 8) % 4];
            size_t tl = (s >> 8) % 4 == 3 ? 1 : strlen(tr);
            for (size_t j = 0; j < tl && i < n; j++, i++)
                dst[i] = tr[j];
            continue;
        }
        uint64_t r = s;
        for (int j = 0; j < 8 && i < n; j++, i++) {
            dst[i] = (char)(r & 0xff);
            r >>= 8;
        }
    }
}

enum len_policy policy_of(const struct keyref *k)
{
    return k->kind == K_FILL ? LEN_TINY : k->kind == K_BIG ? LEN_BIG : LEN_ANY;
}

/* The length of writer w's value number seq for this key. */
size_t data_len(const char *key, unsigned w, uint32_t seq, enum len_policy pol)
{
    uint64_t h = mix64(hash_str(key) ^ ((uint64_t)w << 32) ^ seq);
    if (pol == LEN_TINY)
        return (size_t)(h % 25);
    if (pol == LEN_BIG) /* just past the largest slab chunk: a mapping of its own */
        return (512u << 10) + h % 40000;
    size_t max = G.cc->item_max;
    unsigned r = (unsigned)(h % 1000);
    h /= 1000;
    if (r < 25) {
        /* Edges: empty, one byte, direct reads, zero copy, read buffer. */
        static const size_t edge[] = {0,    1,    2,    4095,  4096,  4097,
                                      8191, 8192, 8193, 16383, 16384, 16385};
        return edge[h % (sizeof(edge) / sizeof(edge[0]))];
    }
    if (r == 25)
        return h % 2 ? max : max - 1;
    if (r < 100)
        return 1 + h % 16;
    if (r < 500)
        return 17 + h % 496;
    if (r < 780)
        return 513 + h % 3584;
    if (r < 900)
        return 4097 + h % 4095;
    if (r < 998 || !G.cc->large)
        return 8192 + h % 12289;
    return (512u << 10) + h % (max - (512u << 10) + 1);
}

void make_data(char *dst, const char *key, unsigned w, uint32_t seq, size_t len)
{
    char hdr[320];
    int hn = snprintf(hdr, sizeof(hdr), "%s|%u|%" PRIu32 "|%zu|", key, w, seq, len);
    size_t n = (size_t)hn < len ? (size_t)hn : len;
    memcpy(dst, hdr, n);
    fill_bytes(dst + n, len - n, hash_str(key) ^ ((uint64_t)w << 40) ^ ((uint64_t)seq << 1));
}

size_t make_rec(char *dst, char type, const char *key, unsigned w, uint32_t seq)
{
    uint64_t h = mix64(hash_str(key) ^ ((uint64_t)w << 40) ^ ((uint64_t)seq << 2) ^
                       (uint64_t)(unsigned char)type);
    unsigned plen = (unsigned)(h % 41);
    char hdr[24];
    snprintf(hdr, sizeof(hdr), "%c%x%07" PRIx32 "%02x", type, w, seq, plen);
    memcpy(dst, hdr, REC_HDR);
    fill_chars(dst + REC_HDR, plen, h);
    dst[REC_HDR + plen] = '.';
    return REC_HDR + plen + 1;
}

/* Printable rendering of bytes for messages, shortened in the middle. */
const char *esc(char *buf, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        if (n > 200 && i == 120) {
            o += (size_t)snprintf(buf + o, cap - o, "...(%zu bytes)...", n);
            i = n - 60;
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r')
            o += (size_t)snprintf(buf + o, cap - o, "\\r");
        else if (ch == '\n')
            o += (size_t)snprintf(buf + o, cap - o, "\\n");
        else if (ch < 32 || ch > 126 || ch == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

void recvec_push(struct recvec *rv, struct rec r)
{
    if (rv->n == rv->cap) {
        rv->cap = rv->cap ? rv->cap * 2 : 1024;
        rv->v = realloc(rv->v, rv->cap * sizeof(*rv->v));
        if (rv->v == NULL)
            abort();
    }
    rv->v[rv->n++] = r;
}

/* ---------------------------------------------------------------------------
 * Checking values
 * ------------------------------------------------------------------------- */

int check_data(struct thr *t, const struct keyref *k, const char *key, uint32_t flags,
               const char *v, size_t n)
{
    uint32_t x = flags ^ key_h32(key);
    unsigned w = x >> SEQ_BITS;
    uint32_t seq = x & SEQ_MASK;
    bool tiny = k->kind == K_FILL;
    enum len_policy pol = policy_of(k);
    char b1[400], b2[400];
    if (w >= NTHREADS)
        return report(t, "%s: flags %" PRIu32 " name no writer (value \"%s\")", key, flags,
                      esc(b1, sizeof(b1), v, n));
    if (k->kind == K_FILL && (w != k->owner || seq != k->idx))
        return report(
            t, "%s: flags %" PRIu32 " name writer %u value %" PRIu32 ", not fill value %u/%" PRIu32,
            key, flags, w, seq, k->owner, k->idx);
    if (k->kind == K_PRIV && w != k->owner)
        return report(t, "%s: flags %" PRIu32 " name writer %u, but only %u writes this key", key,
                      flags, w, k->owner);
    if (!tiny && (seq == 0 || seq > atomic_load_explicit(&G.maxseq[w], memory_order_acquire)))
        return report(t,
                      "%s: flags %" PRIu32 " name writer %u seq %" PRIu32
                      ", which it has not sent (value \"%s\")",
                      key, flags, w, seq, esc(b1, sizeof(b1), v, n));
    size_t len = data_len(key, w, seq, pol);
    make_data(t->scratch, key, w, seq, len);
    if (n != len)
        return report(t, "%s: writer %u seq %" PRIu32 " stored %zu bytes, got %zu: \"%s\"", key, w,
                      seq, len, n, esc(b1, sizeof(b1), v, n));
    if (memcmp(t->scratch, v, n) != 0) {
        size_t i = 0;
        while (v[i] == t->scratch[i])
            i++;
        size_t from = i > 40 ? i - 40 : 0;
        size_t m = n - from < 100 ? n - from : 100;
        return report(t,
                      "%s: %zu-byte value of writer %u seq %" PRIu32
                      " differs at byte %zu: expected \"%s\", got \"%s\" (from byte %zu)",
                      key, n, w, seq, i, esc(b1, sizeof(b1), t->scratch + from, m),
                      esc(b2, sizeof(b2), v + from, m), from);
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static bool parse_hex(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

/* A run of records; with collect, they are added to it (key index kidx). */
int check_records(struct thr *t, const char *key, const char *v, size_t n, struct recvec *collect,
                  unsigned kidx)
{
    uint32_t last_a[NTHREADS] = {0};
    uint32_t last_p[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        last_p[i] = UINT32_MAX;
    bool seen_a = false;
    size_t pos = 0;
    char b1[400], b2[400];
    while (pos < n) {
        const char *r = v + pos;
        uint32_t w, seq, plen;
        if (n - pos < REC_HDR + 1 || (r[0] != 'A' && r[0] != 'P') || !parse_hex(r + 1, 1, &w) ||
            !parse_hex(r + 2, 7, &seq) || !parse_hex(r + 9, 2, &plen) || w >= NTHREADS)
            return report(t, "%s: bad record at byte %zu of %zu: \"%s\" (whole value \"%s\")", key,
                          pos, n, esc(b1, sizeof(b1), r, n - pos < 60 ? n - pos : 60),
                          esc(b2, sizeof(b2), v, n));
        if (seq == 0 || seq > atomic_load_explicit(&G.maxseq[w], memory_order_acquire))
            return report(t,
                          "%s: record at byte %zu names writer %" PRIu32 " seq %" PRIu32
                          ", which it has not sent",
                          key, pos, w, seq);
        char want[REC_MAX];
        size_t rl = make_rec(want, r[0], key, w, seq);
        if (n - pos < rl || memcmp(r, want, rl) != 0)
            return report(t,
                          "%s: record at byte %zu (writer %" PRIu32 " seq %" PRIu32
                          ") corrupt: expected \"%s\", got \"%s\"",
                          key, pos, w, seq, esc(b1, sizeof(b1), want, rl),
                          esc(b2, sizeof(b2), r, n - pos < rl ? n - pos : rl));
        if (r[0] == 'A') {
            if (seq <= last_a[w])
                return report(t,
                              "%s: appended record of writer %" PRIu32 " seq %" PRIu32
                              " at byte %zu after its seq %" PRIu32 " (out of order or twice)",
                              key, w, seq, pos, last_a[w]);
            last_a[w] = seq;
            seen_a = true;
        } else {
            if (seen_a)
                return report(t,
                              "%s: prepended record (writer %" PRIu32 " seq %" PRIu32
                              ") at byte %zu after an appended one",
                              key, w, seq, pos);
            if (seq >= last_p[w])
                return report(t,
                              "%s: prepended record of writer %" PRIu32 " seq %" PRIu32
                              " at byte %zu before its seq %" PRIu32 " (out of order or twice)",
                              key, w, seq, pos, last_p[w]);
            last_p[w] = seq;
        }
        if (collect != NULL)
            recvec_push(
                collect,
                (struct rec){.key = (uint8_t)kidx, .w = (uint8_t)w, .type = r[0], .seq = seq});
        pos += rl;
    }
    return 0;
}

bool parse_counter(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i = 0;
    if (n == 0 || v[0] < '0' || v[0] > '9')
        return false;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    while (i < n && v[i] == ' ')
        i++;
    *out = x;
    return i == n;
}

int check_counter(struct thr *t, const char *key, uint32_t flags, const char *v, size_t n,
                  uint64_t *out)
{
    char b[400];
    if (flags != cnt_flags(key))
        return report(t, "%s: flags %" PRIu32 ", stored with %" PRIu32, key, flags, cnt_flags(key));
    if (!parse_counter(v, n, out))
        return report(t, "%s: counter value is not a number: \"%s\"", key, esc(b, sizeof(b), v, n));
    return 0;
}
