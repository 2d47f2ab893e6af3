/*
 * check_options.c: unit tests for src/common/options.c, the table-driven
 * command-line parser: every option type, every spelling, the bounds and
 * their messages, -o name=value lists, errors, and the generated --help.
 */
#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define MIB (1ULL << 20)

/* ---------------------------------------------------------------------------
 * The table under test
 * ------------------------------------------------------------------------- */

static bool enable_shutdown;
static bool lru_crawler;
static int verbose;
static uint64_t port;
static uint64_t conn_limit;
static uint64_t memory_limit;
static uint64_t flash_size;
static uint64_t min_ttl;
static double factor;
static const char *listen_addr;
static const char *data_dir;
static int flash_sync;

static const char *const sync_names[] = {"none", "interval", "always", NULL};

static const struct tc_option table[] = {
    {.short_name = 'A',
     .long_name = "enable-shutdown",
     .type = TC_OPT_FLAG,
     .help = "allow the shutdown command",
     .dest = &enable_shutdown},
    {.short_name = 'v',
     .long_name = "verbose",
     .type = TC_OPT_COUNT,
     .help = "more log output",
     .dest = &verbose},
    {.short_name = 'p',
     .long_name = "port",
     .type = TC_OPT_UINT,
     .arg_name = "N",
     .help = "TCP port to listen on",
     .dest = &port,
     .min = 0,
     .max = 65535,
     .default_text = "11211"},
    {.short_name = 'c',
     .long_name = "conn-limit",
     .type = TC_OPT_UINT,
     .arg_name = "N",
     .help = "most simultaneous client connections",
     .dest = &conn_limit,
     .min = 1,
     .max = 1000},
    {.short_name = 'm',
     .long_name = "memory-limit",
     .type = TC_OPT_SIZE,
     .arg_name = "MB",
     .help = "RAM budget in megabytes",
     .dest = &memory_limit,
     .min = MIB,
     .max = 1ULL << 40,
     .unit = MIB,
     .default_text = "64"},
    {.short_name = 'f',
     .long_name = "factor",
     .type = TC_OPT_DOUBLE,
     .arg_name = "F",
     .help = "chunk size growth factor",
     .dest = &factor,
     .dmin = 1.0,
     .dmax = 10.0},
    {.short_name = 'l',
     .long_name = "listen",
     .type = TC_OPT_STRING,
     .arg_name = "ADDR",
     .help = "address to bind",
     .dest = &listen_addr},
    {.long_name = "data-dir",
     .type = TC_OPT_STRING,
     .arg_name = "DIR",
     .help = "flash tier directory",
     .dest = &data_dir},
    {.long_name = "flash-size",
     .type = TC_OPT_SIZE,
     .arg_name = "SIZE",
     .help = "flash tier budget",
     .dest = &flash_size,
     .min = 0,
     .max = 1ULL << 50,
     .unit = 1},
    {.long_name = "flash-sync",
     .type = TC_OPT_ENUM,
     .arg_name = "MODE",
     .help = "when flash writes are synced",
     .dest = &flash_sync,
     .choices = sync_names,
     .default_text = "interval"},
    {.long_name = "flash-min-ttl",
     .type = TC_OPT_UINT,
     .arg_name = "SEC",
     .help = "items expiring sooner are dropped",
     .dest = &min_ttl,
     .min = 0,
     .max = 3600},
    {.long_name = "lru-crawler",
     .type = TC_OPT_FLAG,
     .help = "run the LRU crawler",
     .dest = &lru_crawler},
};
#define NOPTS (sizeof(table) / sizeof(table[0]))

static void reset(void)
{
    enable_shutdown = false;
    lru_crawler = false;
    verbose = 0;
    port = 11211;
    conn_limit = 1024;
    memory_limit = 64 * MIB;
    flash_size = 1ULL << 30;
    min_ttl = 10;
    factor = 1.25;
    listen_addr = "127.0.0.1";
    data_dir = "./data";
    flash_sync = 1;
}

/* ---------------------------------------------------------------------------
 * Running the parser: argv is "prog" and the arguments, NULL-terminated.
 * Every string stays allocated until the test ends, so TC_OPT_STRING results
 * (pointers into argv) stay valid and parses never see freed memory.
 * ------------------------------------------------------------------------- */

#define POOL_MAX 1024
static void *pool[POOL_MAX];
static int npool;
static char **argv_store; /* the last parse's argv */
static int argc_store;
static char err[256];

static void *keep(void *p)
{
    ck_assert_int_lt(npool, POOL_MAX);
    pool[npool++] = p;
    return p;
}

static enum tc_options_result parse_v(const char *first, va_list ap)
{
    argv_store = keep(calloc(64, sizeof(char *)));
    argc_store = 0;
    argv_store[argc_store++] = keep(strdup("prog"));
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        argv_store[argc_store++] = keep(strdup(a));
    argv_store[argc_store] = NULL;
    memset(err, 0, sizeof(err));
    return tc_options_parse(table, NOPTS, argc_store, argv_store, err, sizeof(err));
}

/* parse(arg, ..., NULL) */
static enum tc_options_result parse(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    enum tc_options_result r = parse_v(first, ap);
    va_end(ap);
    return r;
}

#define ck_parse_ok(...)                                                                           \
    do {                                                                                           \
        enum tc_options_result r_ = parse(__VA_ARGS__, NULL);                                      \
        ck_assert_msg(r_ == TC_OPTIONS_OK, "parse failed (%d): %s", (int)r_, err);                 \
    } while (0)

/* The parse must fail with exactly this message. */
#define ck_parse_err(msg, ...)                                                                     \
    do {                                                                                           \
        enum tc_options_result r_ = parse(__VA_ARGS__, NULL);                                      \
        ck_assert_int_eq(r_, TC_OPTIONS_ERROR);                                                    \
        ck_assert_str_eq(err, msg);                                                                \
    } while (0)

/* The parse must fail with a message containing this text. */
#define ck_parse_err_has(text, ...)                                                                \
    do {                                                                                           \
        enum tc_options_result r_ = parse(__VA_ARGS__, NULL);                                      \
        ck_assert_int_eq(r_, TC_OPTIONS_ERROR);                                                    \
        ck_assert_msg(strstr(err, text) != NULL, "error '%s' lacks '%s'", err, text);              \
    } while (0)

static void teardown(void)
{
    for (int i = 0; i < npool; i++)
        free(pool[i]);
    npool = 0;
}

/* ---------------------------------------------------------------------------
 * Each type
 * ------------------------------------------------------------------------- */

START_TEST(test_no_arguments_keeps_defaults)
{
    enum tc_options_result r = parse(NULL);
    ck_assert_int_eq(r, TC_OPTIONS_OK);
    ck_assert(!enable_shutdown);
    ck_assert_int_eq(verbose, 0);
    ck_assert_uint_eq(port, 11211);
    ck_assert_uint_eq(memory_limit, 64 * MIB);
    ck_assert_str_eq(listen_addr, "127.0.0.1");
    ck_assert_int_eq(flash_sync, 1);
}
END_TEST

START_TEST(test_flag)
{
    ck_parse_ok("-A");
    ck_assert(enable_shutdown);
    reset();
    ck_parse_ok("--enable-shutdown");
    ck_assert(enable_shutdown);
    ck_assert(!lru_crawler);
    ck_parse_ok("--lru-crawler");
    ck_assert(lru_crawler);
}
END_TEST

START_TEST(test_flag_refuses_a_value)
{
    ck_assert_int_eq(parse("--enable-shutdown=yes", NULL), TC_OPTIONS_ERROR);
    ck_assert(!enable_shutdown);
    ck_assert_int_eq(parse("--lru-crawler=1", NULL), TC_OPTIONS_ERROR);
    ck_assert(!lru_crawler);
    ck_assert_msg(strstr(err, "lru-crawler") != NULL, "error '%s' does not name the option", err);
}
END_TEST

START_TEST(test_count_vv)
{
    ck_parse_ok("-v");
    ck_assert_int_eq(verbose, 1);
    reset();
    ck_parse_ok("-vv");
    ck_assert_int_eq(verbose, 2);
    reset();
    ck_parse_ok("-vvv");
    ck_assert_int_eq(verbose, 3);
    reset();
    ck_parse_ok("-v", "-vv");
    ck_assert_int_eq(verbose, 3);
    reset();
    ck_parse_ok("--verbose", "--verbose");
    ck_assert_int_eq(verbose, 2);
    reset();
    ck_parse_ok("-vA", "-v");
    ck_assert_int_eq(verbose, 2);
    ck_assert(enable_shutdown);
}
END_TEST

START_TEST(test_uint_spellings)
{
    ck_parse_ok("-p", "1");
    ck_assert_uint_eq(port, 1);
    ck_parse_ok("-p2");
    ck_assert_uint_eq(port, 2);
    ck_parse_ok("--port=3");
    ck_assert_uint_eq(port, 3);
    ck_parse_ok("--port", "4");
    ck_assert_uint_eq(port, 4);
    ck_parse_ok("--flash-min-ttl=3600");
    ck_assert_uint_eq(min_ttl, 3600);
    ck_parse_ok("--flash-min-ttl", "0");
    ck_assert_uint_eq(min_ttl, 0);
    /* A later occurrence wins. */
    ck_parse_ok("-p", "5", "--port=6");
    ck_assert_uint_eq(port, 6);
    /* Bounds are inclusive. */
    ck_parse_ok("-p", "0");
    ck_assert_uint_eq(port, 0);
    ck_parse_ok("-p", "65535");
    ck_assert_uint_eq(port, 65535);
    ck_parse_ok("-c", "1");
    ck_assert_uint_eq(conn_limit, 1);
}
END_TEST

START_TEST(test_uint_bounds)
{
    ck_parse_err("--port: 65536 is out of range [0, 65535]", "-p", "65536");
    ck_assert_uint_eq(port, 11211);
    ck_parse_err("--conn-limit: 0 is out of range [1, 1000]", "-c", "0");
    ck_assert_uint_eq(conn_limit, 1024);
    ck_parse_err("--conn-limit: 1001 is out of range [1, 1000]", "--conn-limit=1001");
    ck_parse_err("--flash-min-ttl: 3601 is out of range [0, 3600]", "--flash-min-ttl", "3601");
}
END_TEST

START_TEST(test_uint_junk)
{
    ck_parse_err("--port: 'abc' is not a non-negative integer", "-p", "abc");
    ck_parse_err("--port: '-1' is not a non-negative integer", "-p", "-1");
    ck_parse_err("--port: '+5' is not a non-negative integer", "-p", "+5");
    ck_parse_err("--port: '' is not a non-negative integer", "--port=");
    ck_parse_err("--port: ' 5' is not a non-negative integer", "-p", " 5");
    ck_parse_err("--port: '5 ' is not a non-negative integer", "-p", "5 ");
    ck_parse_err("--port: '5x' is not a non-negative integer", "-p", "5x");
    ck_parse_err("--port: '\t5' is not a non-negative integer", "-p", "\t5");
    ck_parse_err("--port: '5\n' is not a non-negative integer", "-p", "5\n");
    ck_parse_err("--port: '5\tx' is not a non-negative integer", "-p", "5\tx");
    ck_parse_err("--port: '99999999999999999999' is not a non-negative integer", "-p",
                 "99999999999999999999");
    ck_assert_uint_eq(port, 11211);
}
END_TEST

START_TEST(test_size)
{
    ck_parse_ok("-m", "128");
    ck_assert_uint_eq(memory_limit, 128 * MIB);
    ck_parse_ok("-m", "1g");
    ck_assert_uint_eq(memory_limit, 1ULL << 30);
    ck_parse_ok("--memory-limit=1024k");
    ck_assert_uint_eq(memory_limit, MIB);
    ck_parse_ok("--flash-size", "0");
    ck_assert_uint_eq(flash_size, 0);
    ck_parse_ok("--flash-size=4096");
    ck_assert_uint_eq(flash_size, 4096);
    ck_parse_ok("--flash-size=2T");
    ck_assert_uint_eq(flash_size, 2ULL << 40);
}
END_TEST

START_TEST(test_size_bounds_and_junk)
{
    ck_parse_err("--memory-limit: 512k is out of range [1048576, 1099511627776] bytes", "-m",
                 "512k");
    ck_parse_err("--memory-limit: 2t is out of range [1048576, 1099511627776] bytes", "-m", "2t");
    ck_parse_err("--memory-limit: 0 is out of range [1048576, 1099511627776] bytes", "-m", "0");
    ck_parse_err("--memory-limit: '12q' is not a size (a number with an optional k/m/g/t)", "-m",
                 "12q");
    ck_parse_err("--memory-limit: '' is not a size (a number with an optional k/m/g/t)",
                 "--memory-limit=");
    ck_parse_err("--memory-limit: '1.5g' is not a size (a number with an optional k/m/g/t)", "-m",
                 "1.5g");
    /* An overflowing product is junk, not a wrapped small number. */
    ck_parse_err("--memory-limit: '17592186044416' is not a size (a number with an optional "
                 "k/m/g/t)",
                 "-m", "17592186044416");
    ck_assert_uint_eq(memory_limit, 64 * MIB);
}
END_TEST

START_TEST(test_double)
{
    ck_parse_ok("-f", "1.5");
    ck_assert(factor == 1.5);
    ck_parse_ok("--factor=2");
    ck_assert(factor == 2.0);
    ck_parse_ok("-f1.0");
    ck_assert(factor == 1.0);
    ck_parse_ok("--factor", "10");
    ck_assert(factor == 10.0);
}
END_TEST

START_TEST(test_double_bounds_and_junk)
{
    ck_parse_err("--factor: 0.5 is out of range [1, 10]", "-f", "0.5");
    ck_parse_err("--factor: 10.01 is out of range [1, 10]", "-f", "10.01");
    ck_parse_err("--factor: 'abc' is not a number", "-f", "abc");
    ck_parse_err("--factor: '1.5x' is not a number", "-f", "1.5x");
    ck_parse_err("--factor: '' is not a number", "--factor=");
    ck_parse_err("--factor: '1e999' is not a number", "-f", "1e999");
    /* NaN compares false with both bounds: out of range. */
    ck_parse_err("--factor: nan is out of range [1, 10]", "-f", "nan");
    ck_assert(factor == 1.25);
}
END_TEST

START_TEST(test_string)
{
    ck_parse_ok("-l", "0.0.0.0");
    ck_assert_str_eq(listen_addr, "0.0.0.0");
    ck_parse_ok("-l::1");
    ck_assert_str_eq(listen_addr, "::1");
    ck_parse_ok("--listen=10.0.0.1");
    ck_assert_str_eq(listen_addr, "10.0.0.1");
    ck_parse_ok("--data-dir", "/tmp/a b");
    ck_assert_str_eq(data_dir, "/tmp/a b");
    ck_parse_ok("--data-dir=/x=y,z");
    ck_assert_str_eq(data_dir, "/x=y,z");
    /* The value points into argv (documented), not into a copy. */
    ck_assert_ptr_eq(data_dir, argv_store[1] + strlen("--data-dir="));
    ck_parse_ok("--data-dir=");
    ck_assert_str_eq(data_dir, "");
}
END_TEST

START_TEST(test_enum)
{
    ck_parse_ok("--flash-sync=none");
    ck_assert_int_eq(flash_sync, 0);
    ck_parse_ok("--flash-sync", "always");
    ck_assert_int_eq(flash_sync, 2);
    ck_parse_ok("--flash-sync=interval");
    ck_assert_int_eq(flash_sync, 1);
    reset();
    ck_parse_err("--flash-sync: 'bogus' is not one of the accepted values", "--flash-sync=bogus");
    ck_parse_err("--flash-sync: 'Always' is not one of the accepted values", "--flash-sync",
                 "Always");
    ck_parse_err("--flash-sync: 'alway' is not one of the accepted values", "--flash-sync=alway");
    ck_parse_err("--flash-sync: '' is not one of the accepted values", "--flash-sync=");
    ck_assert_int_eq(flash_sync, 1);
}
END_TEST

START_TEST(test_many_options_together)
{
    ck_parse_ok("-p", "11311", "-vv", "-m", "2g", "--data-dir=/var/tc", "-A", "-f", "1.08",
                "--flash-sync", "none", "-c", "10");
    ck_assert_uint_eq(port, 11311);
    ck_assert_int_eq(verbose, 2);
    ck_assert_uint_eq(memory_limit, 2ULL << 30);
    ck_assert_str_eq(data_dir, "/var/tc");
    ck_assert(enable_shutdown);
    ck_assert(factor == 1.08);
    ck_assert_int_eq(flash_sync, 0);
    ck_assert_uint_eq(conn_limit, 10);
}
END_TEST

/* ---------------------------------------------------------------------------
 * -o name=value[,name=value]
 * ------------------------------------------------------------------------- */

START_TEST(test_extended_single)
{
    ck_parse_ok("-o", "flash_min_ttl=7");
    ck_assert_uint_eq(min_ttl, 7);
    ck_parse_ok("-o", "flash-min-ttl=8");
    ck_assert_uint_eq(min_ttl, 8);
    ck_parse_ok("-oflash_min_ttl=9");
    ck_assert_uint_eq(min_ttl, 9);
    /* Options with a letter have a long name too. */
    ck_parse_ok("-o", "port=80");
    ck_assert_uint_eq(port, 80);
    ck_parse_ok("-o", "memory_limit=2");
    ck_assert_uint_eq(memory_limit, 2 * MIB);
    ck_parse_ok("-o", "flash_sync=always");
    ck_assert_int_eq(flash_sync, 2);
    ck_parse_ok("-o", "factor=1.5");
    ck_assert(factor == 1.5);
}
END_TEST

START_TEST(test_extended_list)
{
    ck_parse_ok("-o", "flash_min_ttl=5,port=81,conn_limit=7");
    ck_assert_uint_eq(min_ttl, 5);
    ck_assert_uint_eq(port, 81);
    ck_assert_uint_eq(conn_limit, 7);
    /* Several -o accumulate. */
    ck_parse_ok("-o", "port=82", "-o", "flash-size=1k");
    ck_assert_uint_eq(port, 82);
    ck_assert_uint_eq(flash_size, 1024);
    /* Empty items between commas are skipped. */
    ck_parse_ok("-o", "port=83,,conn-limit=8,");
    ck_assert_uint_eq(port, 83);
    ck_assert_uint_eq(conn_limit, 8);
}
END_TEST

START_TEST(test_extended_underscore_dash_equivalent)
{
    /* Both spellings, in every position of a multi-dash name. */
    ck_parse_ok("-o", "flash_min-ttl=1");
    ck_assert_uint_eq(min_ttl, 1);
    ck_parse_ok("-o", "flash-min_ttl=2");
    ck_assert_uint_eq(min_ttl, 2);
    ck_parse_ok("-o", "enable_shutdown,lru_crawler");
    ck_assert(enable_shutdown);
    ck_assert(lru_crawler);
}
END_TEST

START_TEST(test_extended_flags_and_counts)
{
    ck_parse_ok("-o", "enable-shutdown");
    ck_assert(enable_shutdown);
    ck_parse_ok("-o", "verbose,verbose", "-v");
    ck_assert_int_eq(verbose, 3);
}
END_TEST

START_TEST(test_extended_string_last)
{
    ck_parse_ok("-o", "port=84,data_dir=/srv/tc");
    ck_assert_uint_eq(port, 84);
    ck_assert_str_eq(data_dir, "/srv/tc");
    /* The value must outlive the parse: it points into argv. */
    ck_assert_ptr_eq(data_dir, argv_store[2] + strlen("port=84,data_dir="));
    ck_parse_ok("-o", "data-dir=/a=b");
    ck_assert_str_eq(data_dir, "/a=b");
    ck_parse_err("-o: a text option must come last", "-o", "data_dir=/x,port=1");
}
END_TEST

/* A trailing comma ends the list like any other separator: it is not part
 * of the last value (as it is not for numbers: "port=83," is 83). */
START_TEST(test_extended_string_trailing_comma)
{
    ck_parse_ok("-o", "data_dir=/srv/tc,");
    ck_assert_str_eq(data_dir, "/srv/tc");
}
END_TEST

START_TEST(test_extended_errors)
{
    ck_parse_err("-o: unknown option 'nope'", "-o", "nope=1");
    ck_parse_err("-o: unknown option 'por'", "-o", "por=1");
    ck_parse_err("-o: unknown option 'port_x'", "-o", "port_x=1");
    ck_parse_err("-o: unknown option 'help'", "-o", "help");
    ck_parse_err("-o: option 'port' needs a value (name=value)", "-o", "port");
    ck_parse_err("-o: option 'data_dir' needs a value (name=value)", "-o", "data_dir");
    ck_parse_err("--port: 99999 is out of range [0, 65535]", "-o", "port=99999");
    ck_parse_err("--port: 'x' is not a non-negative integer", "-o", "port=x");
    ck_parse_err("--flash-sync: 'x' is not one of the accepted values", "-o", "flash_sync=x");
    ck_parse_err("option -o needs a value", "-o");
    /* An error stops the list: nothing after it is applied. */
    ck_parse_err("-o: unknown option 'bogus'", "-o", "bogus=1,port=85");
    ck_assert_uint_eq(port, 11211);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Errors of usage
 * ------------------------------------------------------------------------- */

START_TEST(test_unknown_options)
{
    ck_parse_err("unknown option -z", "-z");
    ck_parse_err("unknown option --bogus", "--bogus");
    ck_parse_err_has("--bogus", "--bogus=1");
    ck_parse_err("unknown option -z", "-vz");
    ck_parse_err("unknown option -z", "-p", "1", "-z", "-v");
}
END_TEST

START_TEST(test_missing_values)
{
    ck_parse_err("option -p needs a value", "-p");
    ck_parse_err("option -l needs a value", "-v", "-l");
    ck_parse_err_has("needs a value", "--port");
    ck_parse_err_has("needs a value", "--listen");
    ck_parse_err("option --data-dir needs a value", "--data-dir");
    ck_parse_err("option --flash-min-ttl needs a value", "--flash-min-ttl");
}
END_TEST

/* The next word is taken as the value, even if it looks like an option. */
START_TEST(test_value_may_look_like_an_option)
{
    ck_parse_ok("-l", "-v");
    ck_assert_str_eq(listen_addr, "-v");
    ck_assert_int_eq(verbose, 0);
    ck_parse_ok("--data-dir", "--port");
    ck_assert_str_eq(data_dir, "--port");
}
END_TEST

START_TEST(test_positional_rejected)
{
    ck_parse_err("unexpected argument 'extra'", "extra");
    ck_parse_err("unexpected argument 'extra'", "-p", "1", "extra");
    ck_parse_err("unexpected argument 'extra'", "extra", "-p", "1");
    ck_parse_err("unexpected argument 'b'", "--", "b");
    ck_parse_err("unexpected argument '-'", "-");
    ck_parse_ok("--");
}
END_TEST

START_TEST(test_help_and_version)
{
    ck_assert_int_eq(parse("--help", NULL), TC_OPTIONS_HELP);
    ck_assert_int_eq(parse("--version", NULL), TC_OPTIONS_VERSION);
    ck_assert_int_eq(parse("-p", "1", "--help", NULL), TC_OPTIONS_HELP);
    ck_assert_int_eq(parse("-v", "--version", "-v", NULL), TC_OPTIONS_VERSION);
    /* The first one met decides. */
    ck_assert_int_eq(parse("--version", "--help", NULL), TC_OPTIONS_VERSION);
}
END_TEST

/* Calls are independent: nothing of a previous parse leaks into the next. */
START_TEST(test_parse_twice_no_stale_state)
{
    ck_parse_err("unknown option -z", "-zv");
    reset();
    ck_parse_ok("-p", "7");
    ck_assert_int_eq(verbose, 0);
    ck_assert_uint_eq(port, 7);

    ck_assert_int_eq(parse("-Av", "--help", NULL), TC_OPTIONS_HELP);
    reset();
    ck_assert_int_eq(parse(NULL), TC_OPTIONS_OK);
    ck_assert(!enable_shutdown);
    ck_assert_int_eq(verbose, 0);
}
END_TEST

/*
 * A caller may free its argv after a parse (settings are copied out); the
 * next parse must not look at the old strings. (Under ASan a read of the
 * freed strings is reported as heap-use-after-free.)
 */
START_TEST(test_parse_after_argv_freed)
{
    for (int round = 0; round < 3; round++) {
        char *args[3] = {strdup("prog"), strdup(round % 2 ? "-vA" : "-A"), NULL};
        reset();
        ck_assert_int_eq(tc_options_parse(table, NOPTS, 2, args, err, sizeof(err)), TC_OPTIONS_OK);
        ck_assert(enable_shutdown);
        free(args[0]);
        free(args[1]);
        /* Same-sized strings: malloc is likely to hand back the same memory. */
        char *next[3] = {strdup("prog"), strdup("--lru-crawler"), NULL};
        reset();
        enum tc_options_result r = tc_options_parse(table, NOPTS, 2, next, err, sizeof(err));
        ck_assert_msg(r == TC_OPTIONS_OK, "round %d: parse failed: %s", round, err);
        ck_assert(lru_crawler);
        ck_assert(!enable_shutdown);
        ck_assert_int_eq(verbose, 0);
        free(next[0]);
        free(next[1]);
    }
}
END_TEST

/* ---------------------------------------------------------------------------
 * --help text
 * ------------------------------------------------------------------------- */

static char *help_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    tc_options_help(table, NOPTS, "prog [options]", f);
    fclose(f);
    return buf;
}

#define ck_has(text, needle)                                                                       \
    ck_assert_msg(strstr(text, needle) != NULL, "help text lacks '%s':\n%s", needle, text)

START_TEST(test_help_lists_every_option)
{
    char *h = help_text();
    ck_assert_msg(strncmp(h, "Usage: prog [options]\n", 22) == 0, "help starts '%.40s'", h);
    for (size_t i = 0; i < NOPTS; i++) {
        char name[64];
        snprintf(name, sizeof(name), "--%s", table[i].long_name);
        ck_has(h, name);
        ck_has(h, table[i].help);
        if (table[i].short_name != 0) {
            snprintf(name, sizeof(name), "-%c, --%s", table[i].short_name, table[i].long_name);
            ck_has(h, name);
        }
        if (table[i].arg_name != NULL) {
            snprintf(name, sizeof(name), "--%s=%s", table[i].long_name, table[i].arg_name);
            ck_has(h, name);
        }
    }
    ck_has(h, "--help");
    ck_has(h, "--version");
    ck_has(h, "[default: 11211]");
    ck_has(h, "[default: 64]");
    ck_has(h, "(none, interval, always)");
    /* One line per option plus the header lines and --help/--version. */
    size_t lines = 0;
    for (const char *p = h; *p != '\0'; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, NOPTS + 3 + 2);
    free(h);
}
END_TEST

START_TEST(test_help_line_per_option)
{
    char *h = help_text();
    /* Each option's line carries its name, argument, help and default together. */
    ck_has(h, "-p, --port=N");
    const char *line = strstr(h, "-p, --port=N");
    const char *eol = strchr(line, '\n');
    const char *help = strstr(line, "TCP port to listen on");
    const char *def = strstr(line, "[default: 11211]");
    ck_assert(help != NULL && help < eol);
    ck_assert(def != NULL && def < eol);
    const char *flag = strstr(h, "--lru-crawler");
    ck_assert_ptr_nonnull(flag);
    ck_assert_msg(flag[strlen("--lru-crawler")] == ' ', "a flag shows no argument");
    free(h);
}
END_TEST

static Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("types");
    tcase_add_checked_fixture(tc, reset, teardown);
    tcase_add_test(tc, test_no_arguments_keeps_defaults);
    tcase_add_test(tc, test_flag);
    tcase_add_test(tc, test_flag_refuses_a_value);
    tcase_add_test(tc, test_count_vv);
    tcase_add_test(tc, test_uint_spellings);
    tcase_add_test(tc, test_uint_bounds);
    tcase_add_test(tc, test_uint_junk);
    tcase_add_test(tc, test_size);
    tcase_add_test(tc, test_size_bounds_and_junk);
    tcase_add_test(tc, test_double);
    tcase_add_test(tc, test_double_bounds_and_junk);
    tcase_add_test(tc, test_string);
    tcase_add_test(tc, test_enum);
    tcase_add_test(tc, test_many_options_together);
    suite_add_tcase(s, tc);

    tc = tcase_create("extended");
    tcase_add_checked_fixture(tc, reset, teardown);
    tcase_add_test(tc, test_extended_single);
    tcase_add_test(tc, test_extended_list);
    tcase_add_test(tc, test_extended_underscore_dash_equivalent);
    tcase_add_test(tc, test_extended_flags_and_counts);
    tcase_add_test(tc, test_extended_string_last);
    tcase_add_test(tc, test_extended_string_trailing_comma);
    tcase_add_test(tc, test_extended_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("usage");
    tcase_add_checked_fixture(tc, reset, teardown);
    tcase_add_test(tc, test_unknown_options);
    tcase_add_test(tc, test_missing_values);
    tcase_add_test(tc, test_value_may_look_like_an_option);
    tcase_add_test(tc, test_positional_rejected);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_parse_twice_no_stale_state);
    tcase_add_test(tc, test_parse_after_argv_freed);
    suite_add_tcase(s, tc);

    tc = tcase_create("help");
    tcase_add_test(tc, test_help_lists_every_option);
    tcase_add_test(tc, test_help_line_per_option);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(options_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
