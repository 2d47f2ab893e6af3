/*
 * options.h: command-line options described by a table.
 *
 * A program declares its options once, as an array of struct tc_option;
 * tc_options_parse() fills the destinations and checks bounds, and
 * tc_options_help() prints --help from the same table, so the two never
 * disagree. Accepted spellings: -p 11211, -p11211, --port=11211,
 * --port 11211, repeated -v/-vv for counters, and memcached's extended
 * form -o name=value[,name=value] for any long option ('_' and '-' are the
 * same in names). Not thread-safe (getopt); call from main() only.
 */
#ifndef TC_OPTIONS_H
#define TC_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tc_opt_type {
    TC_OPT_FLAG,   /* no argument; dest is bool*, set to true */
    TC_OPT_COUNT,  /* no argument, repeatable (-v, -vv); dest is int*, incremented */
    TC_OPT_UINT,   /* decimal integer in [min, max]; dest is uint64_t* */
    TC_OPT_SIZE,   /* size with k/m/g/t suffix, plain numbers times `unit`; dest is uint64_t* */
    TC_OPT_DOUBLE, /* decimal number in [dmin, dmax]; dest is double* */
    TC_OPT_STRING, /* dest is const char** (points into argv) */
    TC_OPT_ENUM,   /* one of `choices`; dest is int* (the index) */
};

struct tc_option {
    char short_name;       /* 0 if none */
    const char *long_name; /* e.g. "port" */
    enum tc_opt_type type;
    const char *arg_name; /* for --help: "N", "SIZE", "DIR" */
    const char *help;     /* one line */
    void *dest;
    uint64_t min, max;          /* TC_OPT_UINT, TC_OPT_SIZE bounds (bytes for SIZE) */
    uint64_t unit;              /* TC_OPT_SIZE: multiplier for a number without suffix */
    double dmin, dmax;          /* TC_OPT_DOUBLE bounds */
    const char *const *choices; /* TC_OPT_ENUM: NULL-terminated */
    const char *default_text;   /* for --help, e.g. "11211" */
};

enum tc_options_result {
    TC_OPTIONS_OK,      /* parsed; continue */
    TC_OPTIONS_HELP,    /* --help was given */
    TC_OPTIONS_VERSION, /* --version was given */
    TC_OPTIONS_ERROR,   /* bad usage; err holds a one-line reason */
};

/*
 * Parse argv against the table (--help and --version are built in). On
 * TC_OPTIONS_ERROR, `err` (errlen bytes) names the offending option.
 * Positional arguments are an error.
 */
enum tc_options_result tc_options_parse(const struct tc_option *opts, size_t nopts, int argc,
                                        char **argv, char *err, size_t errlen);

/* Print "Usage: <usage>" and one aligned line per option to `out`. */
void tc_options_help(const struct tc_option *opts, size_t nopts, const char *usage, FILE *out);

#endif
