/*
 * check_settings.c: unit tests for src/server/settings.c, tiercached's
 * option table: the connection limits of issue 8 (--idle-timeout and
 * memcached's -o idle_timeout, --max-conn-output, --max-multiget-keys),
 * their defaults, bounds and messages, the stall limit derived from them,
 * and how `stats settings` reports them. (The generic parser is
 * check_options.c's.)
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"

#define MIB (1ULL << 20)

/* Parse the arguments after "tiercached"; the message printed on stderr
 * (if any) goes to err. Returns settings_parse()'s result. */
static int parse(struct server_settings *s, char *err, size_t errlen, ...)
{
    /* Writable copies that outlive the parse (settings may point into argv). */
    static char pool[32][128];
    char *argv[32] = {"tiercached"};
    int argc = 1;
    va_list ap;
    va_start(ap, errlen);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 31; argc++) {
        snprintf(pool[argc], sizeof(pool[argc]), "%s", a);
        argv[argc] = pool[argc];
    }
    va_end(ap);

    fflush(stderr);
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int r = settings_parse(s, argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, errlen - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return r;
}

#define PARSE_OK(s, ...)                                                                           \
    do {                                                                                           \
        char e_[512];                                                                              \
        int r_ = parse(s, e_, sizeof(e_), __VA_ARGS__, NULL);                                      \
        ck_assert_msg(r_ == 0, "parse failed: %s", e_);                                            \
    } while (0)

#define PARSE_ERR(s, want, ...)                                                                    \
    do {                                                                                           \
        char e_[512];                                                                              \
        int r_ = parse(s, e_, sizeof(e_), __VA_ARGS__, NULL);                                      \
        ck_assert_int_eq(r_, -1);                                                                  \
        ck_assert_msg(strstr(e_, want) != NULL, "message \"%s\" lacks \"%s\"", e_, want);          \
    } while (0)

START_TEST(test_defaults)
{
    struct server_settings s;
    char e[512];
    ck_assert_int_eq(parse(&s, e, sizeof(e), NULL), 0);
    ck_assert_uint_eq(s.idle_timeout, 0); /* memcached's default: off */
    ck_assert_uint_eq(s.max_conn_output, 64 * MIB);
    ck_assert_uint_eq(s.max_multiget_keys, 100000);
    ck_assert_uint_eq(s.conn_limit, 1024);
    /* Without an idle timeout a stalled non-reader gets 10 s. */
    ck_assert_uint_eq(settings_output_stall_secs(&s), 10);
}
END_TEST

START_TEST(test_idle_timeout_spellings)
{
    struct server_settings s;
    PARSE_OK(&s, "-o", "idle_timeout=5"); /* memcached's */
    ck_assert_uint_eq(s.idle_timeout, 5);
    ck_assert_uint_eq(settings_output_stall_secs(&s), 5);
    PARSE_OK(&s, "--idle-timeout=7");
    ck_assert_uint_eq(s.idle_timeout, 7);
    PARSE_OK(&s, "--idle-timeout", "8");
    ck_assert_uint_eq(s.idle_timeout, 8);
    PARSE_OK(&s, "-o", "idle-timeout=9");
    ck_assert_uint_eq(s.idle_timeout, 9);
    PARSE_OK(&s, "--idle-timeout=0");
    ck_assert_uint_eq(s.idle_timeout, 0);
    /* A list of suboptions, memcached-style, mixing the new limits. */
    PARSE_OK(&s, "-o", "idle_timeout=3,max_conn_output=2m,max_multiget_keys=9", "-c", "10");
    ck_assert_uint_eq(s.idle_timeout, 3);
    ck_assert_uint_eq(s.max_conn_output, 2 * MIB);
    ck_assert_uint_eq(s.max_multiget_keys, 9);
    ck_assert_uint_eq(s.conn_limit, 10);
}
END_TEST

START_TEST(test_limits_values)
{
    struct server_settings s;
    PARSE_OK(&s, "--max-conn-output=0");
    ck_assert_uint_eq(s.max_conn_output, 0);
    PARSE_OK(&s, "--max-conn-output=1k");
    ck_assert_uint_eq(s.max_conn_output, 1024);
    PARSE_OK(&s, "--max-conn-output=123456");
    ck_assert_uint_eq(s.max_conn_output, 123456); /* plain numbers are bytes */
    PARSE_OK(&s, "--max-conn-output=1g");
    ck_assert_uint_eq(s.max_conn_output, 1ULL << 30);
    PARSE_OK(&s, "--max-multiget-keys=0");
    ck_assert_uint_eq(s.max_multiget_keys, 0);
    PARSE_OK(&s, "--max-multiget-keys=1");
    ck_assert_uint_eq(s.max_multiget_keys, 1);
}
END_TEST

START_TEST(test_errors)
{
    struct server_settings s;
    /* An unknown suboption stops the start, naming it. */
    PARSE_ERR(&s, "-o: unknown option 'bogus'", "-o", "bogus=1");
    PARSE_ERR(&s, "-o: unknown option 'idle_timeot'", "-o", "idle_timeot=1");
    PARSE_ERR(&s, "-o: unknown option 'bogus'", "-o", "idle_timeout=1,bogus=2");
    PARSE_ERR(&s, "option 'idle_timeout' needs a value", "-o", "idle_timeout");
    PARSE_ERR(&s, "--idle-timeout: 'x' is not a non-negative integer", "-o", "idle_timeout=x");
    PARSE_ERR(&s, "--idle-timeout: '-1' is not a non-negative integer", "--idle-timeout=-1");
    PARSE_ERR(&s, "--idle-timeout: 4294967296 is out of range", "--idle-timeout=4294967296");
    PARSE_ERR(&s, "--max-conn-output: 'lots' is not a size", "--max-conn-output=lots");
    PARSE_ERR(&s, "--max-multiget-keys: '1k' is not a non-negative integer",
              "--max-multiget-keys=1k");
    /* One line, naming the option, and where to look. */
    char e[512];
    ck_assert_int_eq(parse(&s, e, sizeof(e), "-o", "bogus=1", NULL), -1);
    ck_assert_str_eq(e, "tiercached: -o: unknown option 'bogus' (see --help)\n");
}
END_TEST

struct report {
    char idle[32], output[32], keys[32];
};

static void collect(void *arg, const char *name, const char *value)
{
    struct report *r = arg;
    if (strcmp(name, "idle_timeout") == 0)
        snprintf(r->idle, sizeof(r->idle), "%s", value);
    else if (strcmp(name, "max_conn_output") == 0)
        snprintf(r->output, sizeof(r->output), "%s", value);
    else if (strcmp(name, "max_multiget_keys") == 0)
        snprintf(r->keys, sizeof(r->keys), "%s", value);
}

START_TEST(test_stats_settings)
{
    struct server_settings s;
    PARSE_OK(&s, "-o", "idle_timeout=4", "--max-conn-output=3m", "--max-multiget-keys=77");
    struct report r = {"", "", ""};
    settings_report(&s, 0, 11211, collect, &r);
    ck_assert_str_eq(r.idle, "4"); /* memcached's line, now the real value */
    ck_assert_str_eq(r.output, "3145728");
    ck_assert_str_eq(r.keys, "77");
}
END_TEST

START_TEST(test_help_lists_the_limits)
{
    struct server_settings s;
    fflush(stdout);
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int saved = dup(1);
    dup2(fileno(tmp), 1);
    char *argv[] = {"tiercached", "--help", NULL};
    int r = settings_parse(&s, 2, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    ck_assert_int_eq(r, 1);
    static char help[65536];
    rewind(tmp);
    size_t n = fread(help, 1, sizeof(help) - 1, tmp);
    help[n] = '\0';
    fclose(tmp);
    ck_assert_ptr_nonnull(strstr(help, "--idle-timeout=SEC"));
    ck_assert_ptr_nonnull(strstr(help, "-o idle_timeout=SEC"));
    ck_assert_ptr_nonnull(strstr(help, "--max-conn-output=SIZE"));
    ck_assert_ptr_nonnull(strstr(help, "[default: 64m]"));
    ck_assert_ptr_nonnull(strstr(help, "--max-multiget-keys=N"));
    ck_assert_ptr_nonnull(strstr(help, "[default: 100000]"));
}
END_TEST

static Suite *settings_suite(void)
{
    Suite *s = suite_create("settings");
    TCase *tc = tcase_create("limits");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_idle_timeout_spellings);
    tcase_add_test(tc, test_limits_values);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_stats_settings);
    tcase_add_test(tc, test_help_lists_the_limits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(settings_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
