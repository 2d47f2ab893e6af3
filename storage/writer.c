/*
 * writer.c: the flash writer thread (see writer.h).
 *
 * Loop: wait for operations (or a sync deadline); take a batch; apply it in
 * one transaction; on a full map, evict 20% of the budget and retry (up to
 * three times); report results. In interval mode the environment is synced
 * about once a second when something was committed since the last sync.
 *
 * Degraded mode: after a failure, writes are answered "failed" at once
 * (their items stay dirty in RAM) and deletes are held, in order, until a
 * retry succeeds; retries back off from 1 s to 30 s.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_internal.h"
#include "flash.h"
#include "log.h"

#define CAS_LEASE_AHEAD (1ULL << 32) /* CAS values persisted ahead of use */
#define REBUILD_SLICE   65536        /* index keys per filter rebuild step */
#define RETRY_MIN_MS    1000
#define RETRY_MAX_MS    30000

struct ring {
    struct wop *v;
    size_t head, n, cap;
};

struct writer {
    struct cache *c;
    struct flash *f;
    int sync_mode;
    uint64_t queue_max;
    size_t txn_ops, txn_bytes; /* per transaction, from flash_txn_limits */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    struct ring q;           /* guarded by lock */
    uint64_t enqueued, done; /* operations queued / finished, guarded by lock */
    size_t inflight;         /* taken from the queue, not yet finished; guarded by lock */
    pthread_cond_t drained;  /* signalled when done catches up */
    uint64_t q_bytes;        /* bytes of queued writes, guarded by lock */
    _Atomic bool degraded;
    struct ring held; /* deletes waiting for flash to come back (writer thread) */
    long long retry_at_ms;
    long retry_ms;
    bool dirty_since_sync;
    bool unsafe_marked; /* the data dir carries the deletes-pending mark */
    bool delete_lost;   /* a delete could not even be held */
    long long next_sync_ms;

    _Atomic uint64_t s_ops, s_bytes, s_held;
    _Atomic uint64_t batches, batch_ops, batch_max, written, skipped, deleted, failed, retries,
        map_full;
};

static bool state_wanted(struct writer *w);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool ring_push(struct ring *r, struct wop op)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        struct wop *nv = malloc(cap * sizeof(*nv));
        if (nv == NULL)
            return false;
        for (size_t i = 0; i < r->n; i++)
            nv[i] = r->v[(r->head + i) % r->cap];
        free(r->v);
        r->v = nv;
        r->head = 0;
        r->cap = cap;
    }
    r->v[(r->head + r->n) % r->cap] = op;
    r->n++;
    return true;
}

static struct wop ring_pop(struct ring *r)
{
    struct wop op = r->v[r->head];
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return op;
}

static uint64_t op_bytes(const struct wop *op)
{
    return op->type == WOP_WRITE ? item_ntotal(op->it->nkey, op->it->nbytes) : 0;
}

/* Queue figures for stats; an op counts until its batch is done with. */
static void publish(struct writer *w)
{
    atomic_store_explicit(&w->s_ops, w->q.n + w->inflight, memory_order_relaxed);
    atomic_store_explicit(&w->s_bytes, w->q_bytes, memory_order_relaxed);
}

bool writer_degraded(struct writer *w)
{
    return atomic_load_explicit(&w->degraded, memory_order_relaxed);
}

bool writer_accepts(struct writer *w)
{
    return !atomic_load_explicit(&w->degraded, memory_order_relaxed) &&
           atomic_load_explicit(&w->s_bytes, memory_order_relaxed) < w->queue_max;
}

static bool enqueue(struct writer *w, enum wop_type type, struct item *it, uint64_t hv,
                    uint64_t limit)
{
    struct wop op = {.it = it, .hv = hv, .type = (uint8_t)type};
    pthread_mutex_lock(&w->lock);
    if (type == WOP_WRITE &&
        (w->q_bytes >= limit || atomic_load_explicit(&w->degraded, memory_order_relaxed))) {
        pthread_mutex_unlock(&w->lock);
        return false;
    }
    bool ok = ring_push(&w->q, op);
    if (ok) {
        w->enqueued++;
        w->q_bytes += op_bytes(&op);
        publish(w);
        if (w->q.n == 1 || w->q.n == w->txn_ops)
            pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    if (!ok && type == WOP_DELETE) {
        /* Out of memory for the queue itself: nothing sane is left to do
         * but keep the tombstone forever (correct, if a little leaky). */
        TC_LOG_ONCE(TC_LOG_ERROR, "flash: cannot queue a delete: out of memory");
        return true;
    }
    return ok;
}

bool writer_enqueue(struct writer *w, enum wop_type type, struct item *it, uint64_t hv)
{
    return enqueue(w, type, it, hv, w->queue_max);
}

bool writer_enqueue_spill(struct writer *w, struct item *it, uint64_t hv)
{
    return enqueue(w, WOP_WRITE, it, hv, 2 * w->queue_max);
}

bool writer_drain(struct writer *w, long timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    uint64_t target = w->enqueued;
    pthread_cond_signal(&w->cond);
    /* Queued operations, and the engine state (a flush_all just before a
     * stop must reach flash too). */
    bool ok;
    int err = 0;
    while (!(ok = w->done >= target && (atomic_load(&w->degraded) || !state_wanted(w))) && err == 0)
        err = pthread_cond_timedwait(&w->drained, &w->lock, &until);
    pthread_mutex_unlock(&w->lock);
    return ok;
}

void writer_kick(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void on_evicted(void *arg, uint64_t hv, const char *key, size_t nkey, uint64_t cas)
{
    struct writer *w = arg;
    cache_flash_evicted(w->c, hv, key, nkey, cas);
}

/*
 * The engine state each commit persists: a CAS lease comfortably above
 * every CAS handed out (so a restart after a crash never repeats one), the
 * flush boundary and a pending delayed flush. Returns the lease.
 */
static uint64_t engine_state(struct writer *w)
{
    struct cache *c = w->c;
    atomic_store(&c->state_dirty, false);
    uint64_t next = atomic_load(&c->next_cas);
    uint64_t lease = atomic_load(&c->cas_lease);
    if (next + CAS_LEASE_AHEAD / 2 > lease)
        lease = next + CAS_LEASE_AHEAD;
    flash_set_engine_state(w->f, lease, atomic_load(&c->flush_cas), atomic_load(&c->flush_at));
    return lease;
}

/* Whether the engine state needs a commit even with nothing queued. */
static bool state_wanted(struct writer *w)
{
    struct cache *c = w->c;
    return atomic_load(&c->state_dirty) ||
           atomic_load(&c->next_cas) + CAS_LEASE_AHEAD / 2 > atomic_load(&c->cas_lease);
}

/* Apply ops in one transaction. Returns TC_OK, TC_NO_MEMORY or TC_IO_ERROR;
 * skipped[i]/failed[i] say what happened to each op on TC_OK. */
static tc_status_e apply(struct writer *w, struct wop *ops, size_t n, bool *skipped, bool *failed)
{
    struct flash *f = w->f;
    uint64_t lease = engine_state(w);
    tc_status_e st = flash_begin(f);
    for (size_t i = 0; st == TC_OK && i < n; i++) {
        struct item *it = ops[i].it;
        skipped[i] = failed[i] = false;
        if (ops[i].type == WOP_DELETE) {
            st = flash_delete(f, ops[i].hv, it->data, it->nkey);
            continue;
        }
        struct flash_item fi = {
            .key = it->data,
            .nkey = it->nkey,
            .value = it->data + it->nkey,
            .nbytes = it->nbytes,
            .flags = it->flags,
            .exptime = item_get_exptime(it),
            .atime = item_get_atime(it),
            .cas = it->cas,
            .mbits = item_frec_bits(it),
        };
        st = flash_write(f, ops[i].hv, &fi, &skipped[i]);
        if (st == TC_TOO_LARGE) {
            failed[i] = true;
            st = TC_OK;
        }
    }
    if (st != TC_OK) {
        flash_abort(f);
        return st;
    }
    st = flash_commit(f); /* aborts by itself on failure */
    if (st == TC_OK)
        atomic_store(&w->c->cas_lease, lease);
    return st;
}

static void enter_degraded(struct writer *w)
{
    if (!atomic_load(&w->degraded)) {
        tc_log(TC_LOG_ERROR, "flash: writes failing; serving from RAM, retrying flash later");
        w->retry_ms = RETRY_MIN_MS;
    } else {
        w->retry_ms = w->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->retry_ms * 2;
    }
    atomic_store(&w->degraded, true);
    w->retry_at_ms = now_ms() + w->retry_ms;
}

/*
 * A delete that cannot reach flash now: held, in order, until flash comes
 * back. Meanwhile flash holds a key that was deleted, so the data dir is
 * marked (flash_mark_unsafe) for as long as any delete is held or was lost.
 */
static void hold(struct writer *w, struct wop op)
{
    if (!w->unsafe_marked) {
        w->unsafe_marked = true;
        flash_mark_unsafe(w->f, true);
    }
    if (!ring_push(&w->held, op)) {
        TC_LOG_ONCE(TC_LOG_ERROR, "flash: cannot hold a delete: out of memory");
        w->delete_lost = true; /* the mark stays: this key may come back */
        cache_flash_done(w->c, &op, false);
    }
}

/* The held deletes are on flash: once synced, the mark can go. */
static void release_mark(struct writer *w)
{
    if (!w->unsafe_marked || w->held.n > 0 || w->delete_lost)
        return;
    if (w->sync_mode != CACHE_FLASH_SYNC_ALWAYS && flash_sync(w->f) != TC_OK)
        return;
    w->dirty_since_sync = false;
    if (flash_mark_unsafe(w->f, false) == TC_OK)
        w->unsafe_marked = false;
}

/* Run one batch; on success report every op, else hold deletes and fail writes. */
static void run_batch(struct writer *w, struct wop *ops, size_t n)
{
    bool *skipped = calloc(n ? n : 1, sizeof(bool));
    bool *failed = calloc(n ? n : 1, sizeof(bool));
    tc_status_e st = TC_NO_MEMORY;
    if (skipped != NULL && failed != NULL) {
        for (int attempt = 0; attempt < 4; attempt++) {
            st = apply(w, ops, n, skipped, failed);
            if (st != TC_NO_MEMORY)
                break;
            atomic_fetch_add(&w->map_full, 1);
            if (flash_make_room(w->f, 20) != TC_OK) {
                st = TC_IO_ERROR;
                break;
            }
        }
    }
    if (st == TC_OK) {
        /* Before the ops are reported: whoever sees a held delete done (or
         * degraded mode over) must not then read it as still held. */
        atomic_store(&w->s_held, w->held.n);
        w->dirty_since_sync = true;
        atomic_fetch_add(&w->batches, 1);
        atomic_fetch_add(&w->batch_ops, n);
        if (n > atomic_load(&w->batch_max))
            atomic_store(&w->batch_max, n);
        for (size_t i = 0; i < n; i++) {
            if (ops[i].type == WOP_DELETE)
                atomic_fetch_add(&w->deleted, 1);
            else if (failed[i])
                atomic_fetch_add(&w->failed, 1);
            else if (skipped[i])
                atomic_fetch_add(&w->skipped, 1);
            else
                atomic_fetch_add(&w->written, 1);
            cache_flash_done(w->c, &ops[i], !failed[i]);
        }
        if (atomic_load(&w->degraded) && w->held.n == 0) {
            tc_log(TC_LOG_WARN, "flash: writes work again");
            atomic_store(&w->degraded, false);
        }
        release_mark(w);
    } else {
        enter_degraded(w);
        for (size_t i = 0; i < n; i++) {
            if (ops[i].type == WOP_DELETE) {
                hold(w, ops[i]);
            } else {
                atomic_fetch_add(&w->failed, 1);
                cache_flash_done(w->c, &ops[i], false);
            }
        }
    }
    atomic_store(&w->s_held, w->held.n);
    /* After the items of this batch were marked clean: records that flash
     * eviction dropped make their RAM copies dirty again. */
    flash_drain_evicted(w->f, on_evicted, w);
    free(skipped);
    free(failed);
}

/* Degraded: fail writes at once, hold deletes. */
static void refuse_batch(struct writer *w, struct wop *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type == WOP_DELETE) {
            hold(w, ops[i]);
        } else {
            atomic_fetch_add(&w->failed, 1);
            cache_flash_done(w->c, &ops[i], false);
        }
    }
    atomic_store(&w->s_held, w->held.n);
}

/* Degraded and the retry time has come: apply the held deletes. */
static void retry_held(struct writer *w)
{
    atomic_fetch_add(&w->retries, 1);
    size_t n = w->held.n;
    struct wop *ops = malloc((n ? n : 1) * sizeof(*ops));
    if (ops == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        ops[i] = ring_pop(&w->held);
    run_batch(w, ops, n); /* leaves degraded mode if it works */
    free(ops);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct wop *batch = malloc(w->txn_ops * sizeof(*batch));
    if (batch == NULL) {
        tc_log(TC_LOG_ERROR, "flash: the writer cannot start: out of memory");
        atomic_store(&w->degraded, true);
        return NULL;
    }
    bool final_retry = false;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        long long now = now_ms();
        bool degraded = atomic_load(&w->degraded);
        if (degraded && now >= w->retry_at_ms) {
            pthread_mutex_unlock(&w->lock);
            retry_held(w);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        if (w->q.n == 0) {
            if (!degraded && state_wanted(w)) {
                /* A flush or the CAS lease must reach flash (before a stop
                 * too): an empty commit. */
                pthread_mutex_unlock(&w->lock);
                run_batch(w, batch, 0);
                pthread_mutex_lock(&w->lock);
                pthread_cond_broadcast(&w->drained);
                continue;
            }
            if (w->stop) {
                if (degraded && w->held.n > 0 && !final_retry) {
                    final_retry = true; /* one last chance for the held deletes */
                    pthread_mutex_unlock(&w->lock);
                    retry_held(w);
                    pthread_mutex_lock(&w->lock);
                    continue;
                }
                break;
            }
            if (!degraded && flash_rebuilding(w->f)) {
                pthread_mutex_unlock(&w->lock);
                flash_rebuild_step(w->f, REBUILD_SLICE);
                pthread_mutex_lock(&w->lock);
                continue;
            }
            if (w->sync_mode == CACHE_FLASH_SYNC_INTERVAL && w->dirty_since_sync &&
                now >= w->next_sync_ms) {
                pthread_mutex_unlock(&w->lock);
                if (flash_sync(w->f) == TC_OK)
                    w->dirty_since_sync = false;
                w->next_sync_ms = now_ms() + 1000;
                pthread_mutex_lock(&w->lock);
                continue;
            }
            long long until = now + 1000;
            if (w->dirty_since_sync && w->next_sync_ms < until)
                until = w->next_sync_ms;
            if (degraded && w->retry_at_ms < until)
                until = w->retry_at_ms;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long long wait = until - now > 0 ? until - now : 0;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->cond, &w->lock, &ts);
            continue;
        }
        size_t n = 0;
        uint64_t bytes = 0;
        while (w->q.n > 0 && n < w->txn_ops && bytes < w->txn_bytes) {
            batch[n] = ring_pop(&w->q);
            bytes += op_bytes(&batch[n]);
            n++;
        }
        w->q_bytes -= bytes;
        w->inflight = n;
        publish(w);
        pthread_mutex_unlock(&w->lock);
        if (degraded) {
            refuse_batch(w, batch, n);
        } else {
            run_batch(w, batch, n);
            if (flash_rebuilding(w->f))
                flash_rebuild_step(w->f, REBUILD_SLICE / 4); /* keep rebuilding under load */
        }
        if (w->sync_mode == CACHE_FLASH_SYNC_INTERVAL && w->dirty_since_sync &&
            now_ms() >= w->next_sync_ms) {
            if (flash_sync(w->f) == TC_OK)
                w->dirty_since_sync = false;
            w->next_sync_ms = now_ms() + 1000;
        }
        pthread_mutex_lock(&w->lock);
        w->done += n;
        w->inflight = 0;
        publish(w);
        pthread_cond_broadcast(&w->drained);
    }
    pthread_mutex_unlock(&w->lock);
    if (w->dirty_since_sync)
        flash_sync(w->f);
    free(batch);
    return NULL;
}

tc_status_e writer_start(struct cache *c, struct flash *f, uint64_t queue_max, int sync_mode,
                         struct writer **out)
{
    struct writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return TC_NO_MEMORY;
    w->c = c;
    w->f = f;
    w->queue_max = queue_max;
    w->sync_mode = sync_mode;
    flash_txn_limits(f, &w->txn_ops, &w->txn_bytes);
    w->next_sync_ms = now_ms() + 1000;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->drained, NULL);
    int err = pthread_create(&w->thread, NULL, writer_main, w);
    if (err != 0) {
        tc_log(TC_LOG_ERROR, "flash: cannot start the writer thread: %s", strerror(err));
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
        return TC_NO_MEMORY;
    }
    *out = w;
    return TC_OK;
}

void writer_stop(struct writer **wp)
{
    if (wp == NULL || *wp == NULL)
        return;
    struct writer *w = *wp;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    /* Deletes still held (flash never came back): their tombstones go with
     * the engine; drop the queue's references. */
    if (w->held.n > 0)
        tc_log(TC_LOG_ERROR,
               "flash: %zu deletes could not be written; the next start drops the flash "
               "data so that those keys cannot come back",
               w->held.n);
    while (w->held.n > 0) {
        struct wop op = ring_pop(&w->held);
        cache_flash_done(w->c, &op, false);
    }
    free(w->q.v);
    free(w->held.v);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->drained);
    free(w);
    *wp = NULL;
}

void writer_stats_get(struct writer *w, struct writer_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->queue_ops = atomic_load_explicit(&w->s_ops, memory_order_relaxed);
    o->queue_bytes = atomic_load_explicit(&w->s_bytes, memory_order_relaxed);
    o->held_deletes = atomic_load_explicit(&w->s_held, memory_order_relaxed);
    o->batches = atomic_load(&w->batches);
    o->batch_ops = atomic_load(&w->batch_ops);
    o->batch_max = atomic_load(&w->batch_max);
    o->written = atomic_load(&w->written);
    o->skipped_clean = atomic_load(&w->skipped);
    o->deleted = atomic_load(&w->deleted);
    o->failed = atomic_load(&w->failed);
    o->retries = atomic_load(&w->retries);
    o->map_full = atomic_load(&w->map_full);
    o->degraded = atomic_load(&w->degraded);
}
