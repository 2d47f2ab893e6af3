/*
 * inspect.c: tiercache-inspect, an offline look at a stopped tiercached's
 * data dir: format version, how the last run ended, item count and bytes,
 * CAS high-water mark, flush state, batches and the age of the oldest and
 * newest, file and disk bytes; with --check, a full integrity check (every
 * batch checksum, every record, every index entry).
 *
 * It reads through include/tiercache/datadir.h, which takes the dir's lock
 * shared: a running server's dir is refused (exit 1), and a server cannot
 * start on the dir while this runs. Nothing is written.
 *
 * Exit: 0 all is well; 1 the dir is in use, unreadable, not ours, or --check
 * found damage; 2 bad usage.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tiercache/datadir.h>

#include "options.h"

#define PROG "tiercache-inspect"

struct args {
    const char *data_dir;
    bool check;
    bool json;
};

/* "3 h 12 min ago" for a unix time `t` seen at `now`. */
static const char *age(uint64_t t, uint64_t now, char *buf, size_t cap)
{
    if (t == 0) {
        snprintf(buf, cap, "-");
        return buf;
    }
    if (t > now) {
        snprintf(buf, cap, "%" PRIu64 " s in the future (clock skew?)", t - now);
        return buf;
    }
    uint64_t s = now - t;
    if (s < 60)
        snprintf(buf, cap, "%" PRIu64 " s ago", s);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRIu64 " min ago", s / 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRIu64 " h %" PRIu64 " min ago", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, cap, "%" PRIu64 " d %" PRIu64 " h ago", s / 86400, s % 86400 / 3600);
    return buf;
}

/* A unix time as UTC "2024-05-01 12:00:00 UTC". */
static const char *when(uint64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, cap, "-");
    return buf;
}

/* The directory name as a JSON string body (quotes, backslashes, controls escaped). */
static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static bool check_ok(const struct tc_datadir_check *c)
{
    return c->bad_batches == 0 && c->bad_records == 0 && c->bad_index == 0;
}

static void print_text(const struct args *a, const struct tc_datadir_info *i,
                       const struct tc_datadir_check *c, uint64_t now)
{
    char b1[96], b2[96];
    printf("data dir:        %s\n", a->data_dir);
    printf("format version:  %" PRIu32 "\n", i->format_version);
    if (i->clean)
        printf("last stop:       clean (%s, %s)\n", when(i->stopped_at, b1, sizeof(b1)),
               age(i->stopped_at, now, b2, sizeof(b2)));
    else
        printf("last stop:       unclean (crashed or killed: what was synced to flash "
               "survives)\n");
    printf("deletes pending: %s\n",
           i->deletes_pending ? "yes (a server starting here drops this data)" : "no");
    printf("items:           %" PRIu64 " (%" PRIu64 " bytes)\n", i->items, i->bytes);
    printf("CAS high-water:  %" PRIu64 "\n", i->cas_high);
    if (i->flush_at != 0)
        printf("flush:           flush_all pending at %s; CAS below %" PRIu64 " flushed\n",
               when(i->flush_at, b1, sizeof(b1)), i->flush_cas);
    else if (i->flush_cas > 1)
        printf("flush:           CAS below %" PRIu64 " flushed\n", i->flush_cas);
    else
        printf("flush:           none\n");
    printf("batches:         %" PRIu64 "\n", i->batches);
    printf("oldest item:     %s\n", age(i->oldest, now, b1, sizeof(b1)));
    printf("newest item:     %s\n", age(i->newest, now, b1, sizeof(b1)));
    printf("file:            %" PRIu64 " bytes (%" PRIu64 " on disk)\n", i->file_bytes,
           i->disk_bytes);
    if (c == NULL)
        return;
    printf("check:           %s: %" PRIu64 " batches, %" PRIu64 " records (%" PRIu64
           " live, %" PRIu64 " superseded)\n",
           check_ok(c) ? "ok" : "DAMAGED", c->batches, c->records, c->live, c->superseded);
    if (!check_ok(c))
        printf("damage:          %" PRIu64 " bad batches, %" PRIu64 " bad records, %" PRIu64
               " bad index entries; first: %s\n",
               c->bad_batches, c->bad_records, c->bad_index, c->first_problem);
}

static void print_json(const struct args *a, const struct tc_datadir_info *i,
                       const struct tc_datadir_check *c)
{
    printf("{\"data_dir\":");
    json_str(stdout, a->data_dir);
    printf(",\"format_version\":%" PRIu32 ",\"clean\":%s,\"deletes_pending\":%s"
           ",\"items\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"cas_high\":%" PRIu64
           ",\"flush_cas\":%" PRIu64 ",\"flush_at\":%" PRIu64 ",\"stopped_at\":%" PRIu64
           ",\"batches\":%" PRIu64 ",\"oldest\":%" PRIu64 ",\"newest\":%" PRIu64
           ",\"file_bytes\":%" PRIu64 ",\"disk_bytes\":%" PRIu64,
           i->format_version, i->clean ? "true" : "false", i->deletes_pending ? "true" : "false",
           i->items, i->bytes, i->cas_high, i->flush_cas, i->flush_at, i->stopped_at, i->batches,
           i->oldest, i->newest, i->file_bytes, i->disk_bytes);
    if (c != NULL) {
        printf(",\"check\":{\"ok\":%s,\"batches\":%" PRIu64 ",\"records\":%" PRIu64
               ",\"live\":%" PRIu64 ",\"superseded\":%" PRIu64 ",\"bad_batches\":%" PRIu64
               ",\"bad_records\":%" PRIu64 ",\"bad_index\":%" PRIu64 ",\"first_problem\":",
               check_ok(c) ? "true" : "false", c->batches, c->records, c->live, c->superseded,
               c->bad_batches, c->bad_records, c->bad_index);
        json_str(stdout, c->first_problem);
        printf("}");
    }
    printf("}\n");
}

/* 0 to go on, else the exit status (help and version print and exit 0). */
static int parse(struct args *a, int argc, char **argv)
{
    struct tc_option table[] = {
        {.long_name = "data-dir",
         .type = TC_OPT_STRING,
         .arg_name = "DIR",
         .help = "the data dir of a stopped tiercached (required)",
         .dest = &a->data_dir},
        {.long_name = "check",
         .type = TC_OPT_FLAG,
         .help = "also read and verify every batch, record and index entry",
         .dest = &a->check},
        {.long_name = "json",
         .type = TC_OPT_FLAG,
         .help = "print one JSON object instead of text",
         .dest = &a->json},
    };
    size_t n = sizeof(table) / sizeof(table[0]);
    char err[256] = "";
    switch (tc_options_parse(table, n, argc, argv, err, sizeof(err))) {
    case TC_OPTIONS_HELP:
        tc_options_help(table, n, PROG " --data-dir=DIR [--check] [--json]", stdout);
        return -1;
    case TC_OPTIONS_VERSION:
        printf(PROG " %s\n", TC_VERSION);
        return -1;
    case TC_OPTIONS_ERROR:
        fprintf(stderr, PROG ": %s (see --help)\n", err);
        return 2;
    case TC_OPTIONS_OK:
        break;
    }
    if (a->data_dir == NULL || a->data_dir[0] == '\0') {
        fprintf(stderr, PROG ": --data-dir=DIR is required (see --help)\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    int rc = parse(&a, argc, argv);
    if (rc != 0)
        return rc < 0 ? 0 : rc;

    struct tc_datadir *d;
    char err[512];
    tc_status_e st = tc_datadir_open(a.data_dir, &d, err, sizeof(err));
    if (st != TC_OK) {
        fprintf(stderr, PROG ": %s\n", err[0] != '\0' ? err : tc_strerror(st));
        return 1;
    }
    struct tc_datadir_info info;
    tc_datadir_info(d, &info);
    struct tc_datadir_check chk, *c = NULL;
    int status = 0;
    if (a.check) {
        st = tc_datadir_check(d, &chk);
        c = &chk;
        if (st != TC_OK) {
            fprintf(stderr, PROG ": %s: the check could not be completed: %s\n", a.data_dir,
                    chk.first_problem[0] != '\0' ? chk.first_problem : tc_strerror(st));
            status = 1;
        } else if (!check_ok(&chk)) {
            fprintf(stderr, PROG ": %s is damaged: %s\n", a.data_dir, chk.first_problem);
            status = 1;
        }
    }
    tc_datadir_close(&d);
    if (a.json)
        print_json(&a, &info, c);
    else
        print_text(&a, &info, c, (uint64_t)time(NULL));
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror(PROG ": writing the report");
        return 1;
    }
    return status;
}
