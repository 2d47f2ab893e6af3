/*
 * options.c: see options.h. Builds getopt_long tables from the option table,
 * then converts and range-checks each value in apply().
 */
#include "options.h"
#include "numparse.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define OPT_HELP      0x1000
#define OPT_VERSION   0x1001
#define OPT_LONG_BASE 0x2000 /* long-only options: OPT_LONG_BASE + table index */

static bool names_equal(const char *a, const char *b, size_t blen)
{
    size_t i = 0;
    for (; a[i] != '\0' && i < blen; i++) {
        char x = a[i] == '_' ? '-' : a[i];
        char y = b[i] == '_' ? '-' : b[i];
        if (x != y)
            return false;
    }
    return a[i] == '\0' && i == blen;
}

static void opt_name(const struct tc_option *o, char *buf, size_t len)
{
    if (o->long_name != NULL)
        snprintf(buf, len, "--%s", o->long_name);
    else
        snprintf(buf, len, "-%c", o->short_name);
}

/* A plain decimal number: digits only, no sign, no space. */
static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

/* Convert and store one value. Returns false with `err` filled. */
static bool apply(const struct tc_option *o, const char *arg, char *err, size_t errlen)
{
    char name[64];
    opt_name(o, name, sizeof(name));

    switch (o->type) {
    case TC_OPT_FLAG:
        *(bool *)o->dest = true;
        return true;
    case TC_OPT_COUNT:
        (*(int *)o->dest)++;
        return true;
    case TC_OPT_UINT: {
        uint64_t v;
        if (!all_digits(arg) || !tc_strtoull(arg, strlen(arg), &v)) {
            snprintf(err, errlen, "%s: '%s' is not a non-negative integer", name, arg);
            return false;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: %s is out of range [%llu, %llu]", name, arg,
                     (unsigned long long)o->min, (unsigned long long)o->max);
            return false;
        }
        *(uint64_t *)o->dest = v;
        return true;
    }
    case TC_OPT_SIZE: {
        uint64_t v;
        if (!tc_parse_size(arg, o->unit, &v)) {
            snprintf(err, errlen, "%s: '%s' is not a size (a number with an optional k/m/g/t)",
                     name, arg);
            return false;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: %s is out of range [%llu, %llu] bytes", name, arg,
                     (unsigned long long)o->min, (unsigned long long)o->max);
            return false;
        }
        *(uint64_t *)o->dest = v;
        return true;
    }
    case TC_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(arg, &end);
        if (errno != 0 || end == arg || *end != '\0') {
            snprintf(err, errlen, "%s: '%s' is not a number", name, arg);
            return false;
        }
        if (!(v >= o->dmin && v <= o->dmax)) {
            snprintf(err, errlen, "%s: %s is out of range [%g, %g]", name, arg, o->dmin, o->dmax);
            return false;
        }
        *(double *)o->dest = v;
        return true;
    }
    case TC_OPT_STRING:
        *(const char **)o->dest = arg;
        return true;
    case TC_OPT_ENUM:
        for (int i = 0; o->choices[i] != NULL; i++) {
            if (strcmp(o->choices[i], arg) == 0) {
                *(int *)o->dest = i;
                return true;
            }
        }
        snprintf(err, errlen, "%s: '%s' is not one of the accepted values", name, arg);
        return false;
    }
    snprintf(err, errlen, "%s: unknown option type", name);
    return false;
}

/* -o name=value[,name=value...] */
static bool apply_extended(const struct tc_option *opts, size_t nopts, const char *arg, char *err,
                           size_t errlen)
{
    char *copy = strdup(arg);
    if (copy == NULL) {
        snprintf(err, errlen, "-o: out of memory");
        return false;
    }
    bool ok = true;
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv != NULL && ok; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        size_t klen = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
        const struct tc_option *found = NULL;
        for (size_t i = 0; i < nopts; i++) {
            if (opts[i].long_name != NULL && names_equal(opts[i].long_name, kv, klen)) {
                found = &opts[i];
                break;
            }
        }
        if (found == NULL) {
            snprintf(err, errlen, "-o: unknown option '%.*s'", (int)klen, kv);
            ok = false;
        } else if (found->type == TC_OPT_FLAG || found->type == TC_OPT_COUNT) {
            ok = apply(found, "", err, errlen);
        } else if (eq == NULL) {
            snprintf(err, errlen, "-o: option '%.*s' needs a value (name=value)", (int)klen, kv);
            ok = false;
        } else if (found->type != TC_OPT_STRING) {
            ok = apply(found, eq + 1, err, errlen);
        } else if (save != NULL && *save != '\0') {
            snprintf(err, errlen, "-o: a text option must come last");
            ok = false;
        } else {
            /* The value must outlive this call: point into argv, not the
             * copy, and end it where the copy ends it (a trailing comma). */
            char *v = (char *)arg + (eq + 1 - copy);
            v[strlen(eq + 1)] = '\0';
            ok = apply(found, v, err, errlen);
        }
    }
    free(copy);
    return ok;
}

enum tc_options_result tc_options_parse(const struct tc_option *opts, size_t nopts, int argc,
                                        char **argv, char *err, size_t errlen)
{
    struct option *longopts = calloc(nopts + 3, sizeof(*longopts));
    char *shortopts = calloc(nopts * 2 + 8, 1);
    if (longopts == NULL || shortopts == NULL) {
        free(longopts);
        free(shortopts);
        snprintf(err, errlen, "out of memory");
        return TC_OPTIONS_ERROR;
    }

    size_t nl = 0, ns = 0;
    shortopts[ns++] = ':'; /* report a missing argument as ':' */
    bool has_o = false;
    for (size_t i = 0; i < nopts; i++) {
        const struct tc_option *o = &opts[i];
        bool takes_arg = o->type != TC_OPT_FLAG && o->type != TC_OPT_COUNT;
        if (o->short_name == 'o')
            has_o = true;
        if (o->short_name != 0) {
            shortopts[ns++] = o->short_name;
            if (takes_arg)
                shortopts[ns++] = ':';
        }
        if (o->long_name != NULL) {
            longopts[nl].name = o->long_name;
            longopts[nl].has_arg = takes_arg ? required_argument : no_argument;
            longopts[nl].val = o->short_name != 0 ? o->short_name : OPT_LONG_BASE + (int)i;
            nl++;
        }
    }
    if (!has_o) {
        shortopts[ns++] = 'o';
        shortopts[ns++] = ':';
    }
    longopts[nl++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[nl++] = (struct option){"version", no_argument, NULL, OPT_VERSION};

    enum tc_options_result result = TC_OPTIONS_OK;
    opterr = 0;
    optind = 0; /* 0, not 1: glibc then forgets its place in an earlier argv */
    int c;
    while (result == TC_OPTIONS_OK &&
           (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            result = TC_OPTIONS_HELP;
        } else if (c == OPT_VERSION) {
            result = TC_OPTIONS_VERSION;
        } else if (c == '?') {
            if (optopt != 0 && optopt < OPT_HELP)
                snprintf(err, errlen, "unknown option -%c", optopt);
            else
                snprintf(err, errlen, "unknown option %s", argv[optind - 1]);
            result = TC_OPTIONS_ERROR;
        } else if (c == ':') {
            if (optopt != 0 && optopt < OPT_HELP)
                snprintf(err, errlen, "option -%c needs a value", optopt);
            else
                snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
            result = TC_OPTIONS_ERROR;
        } else if (c == 'o' && !has_o) {
            if (!apply_extended(opts, nopts, optarg, err, errlen))
                result = TC_OPTIONS_ERROR;
        } else {
            const struct tc_option *o = NULL;
            if (c >= OPT_LONG_BASE) {
                o = &opts[c - OPT_LONG_BASE];
            } else {
                for (size_t i = 0; i < nopts; i++) {
                    if (opts[i].short_name == c) {
                        o = &opts[i];
                        break;
                    }
                }
            }
            if (o == NULL) {
                snprintf(err, errlen, "unknown option");
                result = TC_OPTIONS_ERROR;
            } else if (!apply(o, optarg != NULL ? optarg : "", err, errlen)) {
                result = TC_OPTIONS_ERROR;
            }
        }
    }
    if (result == TC_OPTIONS_OK && optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        result = TC_OPTIONS_ERROR;
    }
    free(longopts);
    free(shortopts);
    return result;
}

void tc_options_help(const struct tc_option *opts, size_t nopts, const char *usage, FILE *out)
{
    fprintf(out, "Usage: %s\n\nOptions:\n", usage);
    for (size_t i = 0; i < nopts; i++) {
        const struct tc_option *o = &opts[i];
        char left[80];
        int n = 0;
        if (o->short_name != 0)
            n += snprintf(left + n, sizeof(left) - (size_t)n, "-%c", o->short_name);
        else
            n += snprintf(left + n, sizeof(left) - (size_t)n, "  ");
        if (o->long_name != NULL)
            n += snprintf(left + n, sizeof(left) - (size_t)n, "%s--%s",
                          o->short_name != 0 ? ", " : "  ", o->long_name);
        if (o->arg_name != NULL && n < (int)sizeof(left))
            snprintf(left + n, sizeof(left) - (size_t)n, "%s%s", o->long_name != NULL ? "=" : " ",
                     o->arg_name);
        fprintf(out, "  %-30s %s", left, o->help);
        if (o->type == TC_OPT_ENUM) {
            fprintf(out, " (");
            for (int k = 0; o->choices[k] != NULL; k++)
                fprintf(out, "%s%s", k ? ", " : "", o->choices[k]);
            fprintf(out, ")");
        }
        if (o->default_text != NULL)
            fprintf(out, " [default: %s]", o->default_text);
        fprintf(out, "\n");
    }
    fprintf(out, "  %-30s %s\n", "    --help", "print this help and exit");
    fprintf(out, "  %-30s %s\n", "    --version", "print the version and exit");
}
