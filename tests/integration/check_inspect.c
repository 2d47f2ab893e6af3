/*
 * check_inspect.c: tiercache-inspect on the data dir of the real tiercached
 * (SPEC §1, §6).
 *
 *   usage        --help and --version exit 0; a bad option or a missing
 *                --data-dir exit 2 with one line;
 *   lifecycle    a server with -m 2 filled well beyond RAM, stopped with
 *                SIGTERM: inspect reports every item and a clean stop, and
 *                --check finds nothing wrong; while a server runs on the
 *                dir, inspect exits 1 saying the dir is in use; after a
 *                SIGKILL it reports an unclean stop; the server still
 *                starts on the dir afterwards (inspect left it as it was);
 *   damaged      a byte flipped inside a batch: --check exits 1 and says
 *                which batch.
 *
 * The tool runs as a child process with its output in files; every wait is
 * bounded.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "damage.h"
#include "flash_testlib.h"

#ifndef TIERCACHE_INSPECT_BIN
#error "TIERCACHE_INSPECT_BIN must be defined by the build"
#endif

#define NITEMS  6000 /* ~6 MB of values: far more than -m 2 holds */
#define VLEN    1000
#define STOP_MS 60000

struct run {
    int status;      /* exit code, or -1 if it did not exit normally in time */
    char out[16384]; /* stdout */
    char err[4096];  /* stderr */
};

static void read_file(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run tiercache-inspect with `args` (NULL-terminated), at most 30 s. */
static void inspect(struct run *r, const char *const *args)
{
    char outp[64], errp[64];
    snprintf(outp, sizeof(outp), "/tmp/tc-inspect-%d.out", (int)getpid());
    snprintf(errp, sizeof(errp), "/tmp/tc-inspect-%d.err", (int)getpid());
    const char *argv[16];
    size_t n = 0;
    argv[n++] = TIERCACHE_INSPECT_BIN;
    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    pid_t got = 0;
    for (int waited = 0; waited < 30000; waited += 10) {
        got = waitpid(pid, &st, WNOHANG);
        if (got != 0)
            break;
        ft_pause_ms(10);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    r->status = got == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_file(outp, r->out, sizeof(r->out));
    read_file(errp, r->err, sizeof(r->err));
    unlink(outp);
    unlink(errp);
}

static void inspect_dir(struct run *r, const char *dir, const char *extra)
{
    char opt[300];
    snprintf(opt, sizeof(opt), "--data-dir=%s", dir);
    const char *args[] = {opt, extra, NULL};
    inspect(r, args);
}

/* Fill keys 0..NITEMS-1 with VLEN-byte values, pipelined, every one STORED. */
static void fill(int port)
{
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, port), 0);
    static char val[VLEN];
    memset(val, 'v', sizeof(val));
    for (int base = 0; base < NITEMS; base += 200) {
        for (int i = base; i < base + 200 && i < NITEMS; i++) {
            ck_assert_int_eq(ft_sendf(&c, "set key%05d %d 0 %d\r\n", i, i, VLEN), 0);
            ck_assert_int_eq(ft_send(&c, val, VLEN), 0);
            ck_assert_int_eq(ft_send(&c, "\r\n", 2), 0);
        }
        for (int i = base; i < base + 200 && i < NITEMS; i++)
            ck_assert_msg(ft_expect(&c, "STORED") == 0, "set key%05d: %s", i, c.err);
    }
    ft_close(&c);
}

static void start(struct ft_server *s)
{
    const char *args[] = {"-v", "-m", "2", "--flash-size=64m", NULL};
    ck_assert_msg(ft_dir_start(s, args) == 0, "tiercached did not start on %s", s->dir);
}

static void term(struct ft_server *s)
{
    int st = ft_signal(s, SIGTERM, STOP_MS);
    char why[80];
    ck_assert_msg(ft_exited_zero(st), "tiercached on %s: %s after SIGTERM (log %s)", s->dir,
                  ft_status_text(st, why, sizeof(why)), s->ts.log_path);
}

static void dir_init(struct ft_server *s, const char *tag)
{
    char dir[200];
    snprintf(dir, sizeof(dir), "/tmp/tc-inspect-%d-%s", (int)getpid(), tag);
    ft_dir_init(s, dir);
}

START_TEST(usage)
{
    struct run r;
    const char *help[] = {"--help", NULL};
    inspect(&r, help);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out, "--data-dir") != NULL, "help: %s", r.out);
    const char *version[] = {"--version", NULL};
    inspect(&r, version);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out, "tiercache-inspect ") == r.out, "version: %s", r.out);
    const char *bad[] = {"--no-such-option", NULL};
    inspect(&r, bad);
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "not one line: %s", r.err);
    const char *none[] = {"--check", NULL};
    inspect(&r, none);
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "--data-dir") != NULL, "stderr: %s", r.err);
    inspect_dir(&r, "/tmp/tc-inspect-no-such-dir", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "no such") != NULL, "stderr: %s", r.err);
}
END_TEST

START_TEST(lifecycle)
{
    struct ft_server s;
    dir_init(&s, "life");
    start(&s);
    fill(s.ts.port);

    /* While it runs: refused, and the server is not disturbed. */
    struct run r;
    inspect_dir(&r, s.dir, NULL);
    ck_assert_msg(r.status == 1, "inspect on a running server's dir: exit %d\n%s%s", r.status,
                  r.out, r.err);
    ck_assert_msg(strstr(r.err, "in use") != NULL, "stderr: %s", r.err);
    ck_assert(ft_alive(&s));

    term(&s);
    inspect_dir(&r, s.dir, "--check");
    ck_assert_msg(r.status == 0, "exit %d\n%s%s", r.status, r.out, r.err);
    char want[64];
    snprintf(want, sizeof(want), "items:           %d ", NITEMS);
    ck_assert_msg(strstr(r.out, want) != NULL, "no '%s' in:\n%s", want, r.out);
    ck_assert_msg(strstr(r.out, "last stop:       clean") != NULL, "output:\n%s", r.out);
    ck_assert_msg(strstr(r.out, "format version:  1") != NULL, "output:\n%s", r.out);
    snprintf(want, sizeof(want), "check:           ok: ");
    ck_assert_msg(strstr(r.out, want) != NULL, "output:\n%s", r.out);
    snprintf(want, sizeof(want), "(%d live, 0 superseded)", NITEMS);
    ck_assert_msg(strstr(r.out, want) != NULL, "no '%s' in:\n%s", want, r.out);

    inspect_dir(&r, s.dir, "--json");
    ck_assert_int_eq(r.status, 0);
    snprintf(want, sizeof(want), "\"items\":%d,", NITEMS);
    ck_assert_msg(r.out[0] == '{' && strstr(r.out, want) != NULL &&
                      strstr(r.out, "\"clean\":true") != NULL,
                  "json: %s", r.out);

    /* A crash: the next look says so. */
    ck_assert_msg(
        ft_restart(&s, (const char *const[]){"-v", "-m", "2", "--flash-size=64m", NULL}) == 0,
        "tiercached did not restart on %s", s.dir);
    int st = ft_signal(&s, SIGKILL, 10000);
    ck_assert_msg(st != -1 && WIFSIGNALED(st), "tiercached did not die of SIGKILL");
    inspect_dir(&r, s.dir, NULL);
    ck_assert_msg(r.status == 0, "exit %d\n%s%s", r.status, r.out, r.err);
    ck_assert_msg(strstr(r.out, "last stop:       unclean") != NULL, "output:\n%s", r.out);

    /* The server still takes the dir, with its data. */
    ck_assert_msg(
        ft_restart(&s, (const char *const[]){"-v", "-m", "2", "--flash-size=64m", NULL}) == 0,
        "tiercached did not restart on %s after inspect", s.dir);
    struct ft_conn c;
    ck_assert_int_eq(ft_open(&c, s.ts.port), 0);
    ck_assert_int_eq(ft_sendf(&c, "get key00001\r\n"), 0);
    struct ft_value v;
    ck_assert_msg(ft_next_value(&c, &v) == 1, "key00001 lost: %s", c.err);
    ck_assert_uint_eq(v.n, VLEN);
    ft_close(&c);
    term(&s);
    ft_dir_deinit(&s);
    ck_assert(ft_log_retire(s.ts.log_path));
}
END_TEST

START_TEST(damaged)
{
    struct ft_server s;
    dir_init(&s, "damaged");
    start(&s);
    fill(s.ts.port);
    term(&s);

    td_flip_first_batch(s.dir);

    struct run r;
    inspect_dir(&r, s.dir, "--check");
    ck_assert_msg(r.status == 1, "--check on a damaged dir: exit %d\n%s%s", r.status, r.out, r.err);
    ck_assert_msg(strstr(r.out, "DAMAGED") != NULL && strstr(r.out, "1 bad batches") != NULL,
                  "output:\n%s", r.out);
    ck_assert_msg(strstr(r.err, "batch") != NULL && strstr(r.err, s.dir) != NULL, "stderr: %s",
                  r.err);
    ft_dir_deinit(&s);
    ck_assert(ft_log_retire(s.ts.log_path));
}
END_TEST

static Suite *inspect_suite(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("inspect");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, usage);
    tcase_add_test(tc, lifecycle);
    tcase_add_test(tc, damaged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(inspect_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
