/*
 * server.c: listener, worker threads and the server's life cycle.
 *
 * The main thread accepts connections and hands each to a worker, round
 * robin, through the worker's queue and eventfd. Past -c connections, a new
 * client gets memcached's "ERROR Too many open connections" and is closed
 * (counted in rejected_connections). At start the open files limit is
 * raised (up to its hard limit) to -c plus what the server itself needs, so
 * that -c, not the limit, turns clients away; when accept() runs out of
 * file descriptors anyway, accepting pauses for 100 ms (counted in
 * listen_disabled_num) instead of spinning.
 *
 * Each worker has a one-second timer for the connection limits that need a
 * clock (--idle-timeout, --max-conn-output: conn_check_timeouts()).
 *
 * Stopping: SIGTERM, SIGINT or the shutdown command (which signals the
 * process, as memcached does) end the main loop; then the listener closes,
 * each worker closes its connections and exits its loop, and the engine is
 * destroyed. Exit code 0. SIGUSR1 does the same; SIGHUP is ignored.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "prefix.h"

#define RBUF_CACHE_MAX 16

struct handoff {
    int fd; /* -1: stop */
    struct handoff *next;
};

static const char too_many[] = "ERROR Too many open connections\r\n";

/* ---------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------- */

static void worker_notify(struct worker *w, int fd)
{
    struct handoff *h = malloc(sizeof(*h));
    if (h == NULL) {
        if (fd >= 0) {
            close(fd);
            atomic_fetch_sub(&w->srv->curr_conns, 1);
        }
        return;
    }
    h->fd = fd;
    h->next = NULL;
    pthread_mutex_lock(&w->queue_lock);
    if (w->queue_tail != NULL)
        w->queue_tail->next = h;
    else
        w->queue_head = h;
    w->queue_tail = h;
    pthread_mutex_unlock(&w->queue_lock);
    uint64_t one = 1;
    ssize_t r = write(w->notify_fd, &one, sizeof(one));
    (void)r;
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&w->queue_lock);
    struct handoff *h = w->queue_head;
    w->queue_head = w->queue_tail = NULL;
    pthread_mutex_unlock(&w->queue_lock);
    while (h != NULL) {
        struct handoff *next = h->next;
        if (h->fd < 0)
            w->stopping = true;
        else if (!w->stopping)
            conn_create(w, h->fd);
        else {
            close(h->fd);
            atomic_fetch_sub(&w->srv->curr_conns, 1);
        }
        free(h);
        h = next;
    }
    if (w->stopping) {
        conn_close_all(w);
        event_base_loopbreak(w->base);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_check_timeouts(arg);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int worker_init(struct server *srv, struct worker *w, unsigned id)
{
    w->srv = srv;
    w->id = id;
    pthread_mutex_init(&w->queue_lock, NULL);
    struct event_config *cfg = event_config_new();
    if (cfg != NULL)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = cfg != NULL ? event_base_new_with_config(cfg) : NULL;
    if (cfg != NULL)
        event_config_free(cfg);
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->rbuf_cache = calloc(RBUF_CACHE_MAX, sizeof(char *));
    if (w->base == NULL || w->notify_fd < 0 || w->rbuf_cache == NULL) {
        tc_log(TC_LOG_ERROR, "cannot set up worker %u: %s", id, strerror(errno));
        return -1;
    }
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, on_notify, w);
    if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) != 0 ||
        cache_worker_create(srv->cache, &w->cw) != TC_OK) {
        tc_log(TC_LOG_ERROR, "cannot set up worker %u: out of memory", id);
        return -1;
    }
    if (srv->set->idle_timeout > 0 || srv->set->max_conn_output > 0) {
        struct timeval second = {1, 0};
        w->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
        if (w->tick_ev == NULL || event_add(w->tick_ev, &second) != 0) {
            tc_log(TC_LOG_ERROR, "cannot set up worker %u: out of memory", id);
            return -1;
        }
    }
    int err = pthread_create(&w->thread, NULL, worker_main, w);
    if (err != 0) {
        tc_log(TC_LOG_ERROR, "cannot start worker %u: %s", id, strerror(err));
        return -1;
    }
    w->running = true;
    return 0;
}

static void worker_deinit(struct worker *w)
{
    cache_worker_destroy(&w->cw);
    if (w->notify_ev != NULL)
        event_free(w->notify_ev);
    if (w->tick_ev != NULL)
        event_free(w->tick_ev);
    if (w->base != NULL)
        event_base_free(w->base);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    for (unsigned i = 0; i < w->rbuf_cached; i++)
        free(w->rbuf_cache[i]);
    free(w->rbuf_cache);
    pthread_mutex_destroy(&w->queue_lock);
}

/* ---------------------------------------------------------------------------
 * Listener
 * ------------------------------------------------------------------------- */

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    event_add(srv->listen_ev, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct server *srv = arg;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                TC_LOG_ONCE(TC_LOG_WARN, "out of file descriptors: pausing accept (raise the "
                                         "open files limit or lower -c)");
                atomic_fetch_add(&srv->listen_disabled_num, 1);
                event_del(srv->listen_ev);
                struct timeval tv = {0, 100000};
                event_add(srv->resume_ev, &tv);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                TC_LOG_ONCE(TC_LOG_WARN, "accept failed: %s", strerror(errno));
            }
            return;
        }
        if (atomic_load(&srv->curr_conns) >= srv->set->conn_limit) {
            ssize_t r = write(fd, too_many, sizeof(too_many) - 1);
            (void)r;
            close(fd);
            atomic_fetch_add(&srv->rejected_conns, 1);
            continue;
        }
        atomic_fetch_add(&srv->curr_conns, 1);
        atomic_fetch_add(&srv->total_conns, 1);
        if (srv->set->unix_socket == NULL) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        struct worker *w = &srv->workers[srv->next_worker];
        srv->next_worker = (srv->next_worker + 1) % srv->nworkers;
        worker_notify(w, fd);
    }
}

static int listen_unix(struct server *srv)
{
    const char *path = srv->set->unix_socket;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        tc_log(TC_LOG_ERROR, "unix socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket from an earlier run, as memcached does */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, (int)srv->set->backlog) != 0) {
        tc_log(TC_LOG_ERROR, "cannot listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    srv->listen_fd = fd;
    return 0;
}

static int listen_tcp(struct server *srv)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%llu", (unsigned long long)srv->set->port);
    int err = getaddrinfo(srv->set->listen, port, &hints, &res);
    if (err != 0) {
        tc_log(TC_LOG_ERROR, "cannot resolve listen address %s: %s", srv->set->listen,
               gai_strerror(err));
        return -1;
    }
    int fd = -1;
    int saved = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, (int)srv->set->backlog) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        tc_log(TC_LOG_ERROR, "cannot listen on %s:%llu: %s", srv->set->listen,
               (unsigned long long)srv->set->port, strerror(saved));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    srv->listen_fd = fd;
    if (srv->set->port == 0) {
        bool v6 = strchr(srv->set->listen, ':') != NULL;
        fprintf(stderr, "listening on %s%s%s:%u\n", v6 ? "[" : "", srv->set->listen, v6 ? "]" : "",
                srv->port);
        fflush(stderr);
    } else {
        tc_log(TC_LOG_INFO, "listening on %s:%u", srv->set->listen, srv->port);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *srv = arg;
    tc_log(TC_LOG_INFO, "signal %d: stopping", (int)sig);
    event_base_loopbreak(srv->base);
}

void server_request_stop(struct server *srv)
{
    (void)srv;
    kill(getpid(), SIGINT); /* handled on the main loop, like memcached's shutdown */
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        tc_log(TC_LOG_ERROR, "cannot write pid file %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
    return 0;
}

/*
 * Testing only: TIERCACHE_FLASH_FAULT=<nth>:<error>[:<count>] makes LMDB
 * calls nth .. nth+count-1 fail (count 0 or absent: all from nth on) with
 * <error>: EIO, ENOSPC, MAP_FULL or a number. Lets the integration tests
 * prove each flash failure path on the real binary.
 */
static void inject_faults_from_env(struct server *srv)
{
    const char *spec = getenv("TIERCACHE_FLASH_FAULT");
    if (spec == NULL || *spec == '\0')
        return;
    long nth = 0, count = 0;
    char err_name[32] = "";
    if (sscanf(spec, "%ld:%31[^:]:%ld", &nth, err_name, &count) < 2 || nth <= 0) {
        tc_log(TC_LOG_WARN, "ignoring TIERCACHE_FLASH_FAULT=%s (want nth:error[:count])", spec);
        return;
    }
    int err = strcmp(err_name, "EIO") == 0        ? EIO
              : strcmp(err_name, "ENOSPC") == 0   ? ENOSPC
              : strcmp(err_name, "MAP_FULL") == 0 ? -30792 /* MDB_MAP_FULL */
                                                  : atoi(err_name);
    tc_log(TC_LOG_WARN,
           "TESTING: flash fault injection: LMDB call %ld on fails with %d (%ld times)", nth, err,
           count);
    cache_flash_fault_inject(srv->cache, nth, err, count);
}

/*
 * File descriptors the server uses besides its clients: stdio, the
 * listener, an epoll fd and an eventfd per worker and the main loop's, the
 * data dir (LMDB's data and lock files, our lock, the filter snapshot),
 * the log, and one to accept and turn away a client past -c.
 */
static uint64_t fds_needed(const struct server_settings *set)
{
    return set->conn_limit + 2 * set->threads + 64;
}

/* Raise the soft open-files limit so that -c connections fit (memcached
 * sets it to -c, and exits if it cannot; we warn and go on, as the accept
 * pause above still keeps the server up). */
static void raise_fd_limit(const struct server_settings *set)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)fds_needed(set);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        tc_log(TC_LOG_WARN,
               "the open files limit (%llu) is below what -c %llu needs (%llu): clients past "
               "it will wait to be accepted rather than be turned away",
               (unsigned long long)rl.rlim_cur, (unsigned long long)set->conn_limit,
               (unsigned long long)want);
}

int server_init(struct server *srv, struct server_settings *set)
{
    memset(srv, 0, sizeof(*srv));
    srv->set = set;
    srv->listen_fd = -1;
    srv->verbosity = set->verbose > 2 ? 2 : set->verbose;
    pthread_mutex_init(&srv->base_lock, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A hangup (a closed terminal, a mistaken `kill -HUP`) must not kill the
     * server without its graceful stop: memcached does not die of it either. */
    signal(SIGHUP, SIG_IGN);
    raise_fd_limit(set);

    struct cache_options co;
    cache_options_default(&co);
    co.mem_limit = set->memory_limit;
    co.item_size_max = (uint32_t)set->item_size_max;
    co.growth_factor = set->growth_factor;
    co.chunk_min = (uint32_t)set->chunk_min;
    co.no_rebalance = set->slab_automove == 0;
    if (set->flash_size > 0) {
        co.flash_dir = set->data_dir;
        co.flash_size = set->flash_size;
        co.flash_sync = set->flash_sync;
        co.flash_min_ttl = (uint32_t)set->flash_min_ttl;
    }
    tc_status_e st = cache_create(&co, &srv->cache);
    if (st == TC_BUSY) {
        fprintf(stderr,
                "tiercached: data dir %s is in use by another process (a tiercached, or a "
                "tiercache tool reading it)\n",
                set->data_dir);
        return 1;
    }
    if (st != TC_OK) {
        tc_log(TC_LOG_ERROR, "cannot create the cache: %s", tc_strerror(st));
        return 1;
    }
    srv->started = cache_now(srv->cache);
    inject_faults_from_env(srv);
    srv->prefix = prefix_stats_create();
    if (srv->prefix == NULL)
        return 1;

    srv->base = event_base_new();
    if (srv->base == NULL) {
        tc_log(TC_LOG_ERROR, "cannot create the event loop");
        return 1;
    }
    if ((set->unix_socket != NULL ? listen_unix(srv) : listen_tcp(srv)) != 0)
        return 1;
    if (set->pid_file != NULL && write_pid_file(set->pid_file) != 0)
        return 1;

    srv->nworkers = (unsigned)set->threads;
    srv->workers = calloc(srv->nworkers, sizeof(struct worker));
    if (srv->workers == NULL)
        return 1;
    for (unsigned i = 0; i < srv->nworkers; i++)
        srv->workers[i].notify_fd = -1;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (worker_init(srv, &srv->workers[i], i) != 0)
            return 1;
    }

    srv->listen_ev = event_new(srv->base, srv->listen_fd, EV_READ | EV_PERSIST, on_accept, srv);
    srv->resume_ev = evtimer_new(srv->base, on_resume, srv);
    srv->sig_ev[0] = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sig_ev[1] = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->sig_ev[2] = evsignal_new(srv->base, SIGUSR1, on_signal, srv);
    if (srv->listen_ev == NULL || srv->resume_ev == NULL || event_add(srv->listen_ev, NULL) != 0)
        return 1;
    for (int i = 0; i < 3; i++) {
        if (srv->sig_ev[i] == NULL || event_add(srv->sig_ev[i], NULL) != 0)
            return 1;
    }
    return 0;
}

int server_run(struct server *srv)
{
    event_base_dispatch(srv->base);

    /* Stop accepting, then let each worker close its connections. */
    event_del(srv->listen_ev);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    if (srv->set->unix_socket != NULL)
        unlink(srv->set->unix_socket);
    for (unsigned i = 0; i < srv->nworkers; i++)
        worker_notify(&srv->workers[i], -1);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        pthread_join(srv->workers[i].thread, NULL);
        srv->workers[i].running = false;
    }

    /* Warm restart: everything live in RAM goes to flash before we exit. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t written = 0;
    tc_status_e st = cache_persist(srv->cache, 600000, &written);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    if (st == TC_OK && srv->set->flash_size > 0)
        tc_log(TC_LOG_INFO, "stopping: %llu items written to flash in %ld ms",
               (unsigned long long)written, ms);
    return 0;
}

void server_deinit(struct server *srv)
{
    if (srv->workers != NULL) {
        for (unsigned i = 0; i < srv->nworkers; i++) {
            struct worker *w = &srv->workers[i];
            if (w->running) {
                worker_notify(w, -1);
                pthread_join(w->thread, NULL);
                w->running = false;
            }
            worker_deinit(w);
        }
        free(srv->workers);
    }
    if (srv->listen_ev != NULL)
        event_free(srv->listen_ev);
    if (srv->resume_ev != NULL)
        event_free(srv->resume_ev);
    for (int i = 0; i < 3; i++) {
        if (srv->sig_ev[i] != NULL)
            event_free(srv->sig_ev[i]);
    }
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->base != NULL)
        event_base_free(srv->base);
    cache_destroy(&srv->cache);
    prefix_stats_destroy(&srv->prefix);
    if (srv->set->pid_file != NULL)
        unlink(srv->set->pid_file);
    pthread_mutex_destroy(&srv->base_lock);
}
