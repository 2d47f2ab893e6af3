/*
 * fb_report.c: tiercache-flashbench's output (see fb.h).
 *
 * Every figure is given once, with a JSON key, a label and a unit; it is
 * printed at once as a table row on stdout and appended to a JSON object
 * that is printed as the last line with --json. Sections of the table can
 * be objects of a JSON array (the space mode's value sizes). Notes
 * (caveats) are printed under the table only.
 *
 * Main thread only (one report per process, file-scope state).
 */
#include "fb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH 8

static struct {
    char *buf;
    size_t len, cap;
    bool need_comma[JSON_DEPTH];
    int depth;
} js;

static void js_append(const char *s, size_t n)
{
    if (js.len + n + 1 > js.cap) {
        size_t cap = js.cap ? js.cap : 4096;
        while (cap < js.len + n + 1)
            cap *= 2;
        char *nb = realloc(js.buf, cap);
        if (nb == NULL)
            return; /* the JSON line is lost; the table is still there */
        js.buf = nb;
        js.cap = cap;
    }
    memcpy(js.buf + js.len, s, n);
    js.len += n;
    js.buf[js.len] = '\0';
}

static void js_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void js_printf(const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        js_append(tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string, escaped. */
static void js_string(const char *s)
{
    js_append("\"", 1);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            js_printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            js_printf("\\u%04x", (unsigned char)*s);
        else
            js_append(s, 1);
    }
    js_append("\"", 1);
}

/* Start a member ("key": or, in an array, nothing) with its comma. */
static void js_member(const char *key)
{
    if (js.need_comma[js.depth])
        js_append(",", 1);
    js.need_comma[js.depth] = true;
    if (key != NULL) {
        js_string(key);
        js_append(":", 1);
    }
}

static void js_open(const char *key, char bracket)
{
    js_member(key);
    js_append(&bracket, 1);
    if (js.depth < JSON_DEPTH - 1)
        js.depth++;
    js.need_comma[js.depth] = false;
}

static void js_close(char bracket)
{
    js_append(&bracket, 1);
    if (js.depth > 0)
        js.depth--;
}

static void row(const char *label, const char *value, const char *unit)
{
    printf("  %-46s %16s %s\n", label, value, unit != NULL ? unit : "");
}

void fb_report_begin(const struct fb_config *cfg)
{
    static const char *const sync_names[] = {"none", "interval", "always"};
    js.len = 0;
    js.depth = 0;
    js.need_comma[0] = false;
    js_open(NULL, '{');
    js_member("mode");
    js_string(cfg->mode);
    js_member("threads");
    js_printf("%llu", (unsigned long long)cfg->threads);
    js_member("ram_bytes");
    js_printf("%llu", (unsigned long long)cfg->ram);
    js_member("flash_size");
    js_printf("%llu", (unsigned long long)cfg->flash_size);
    js_member("flash_sync");
    js_string(sync_names[cfg->sync]);
    js_member("key_bytes");
    js_printf("%d", FB_NKEY);
    js_member("dir");
    js_string(cfg->run_dir);
    printf("tiercache-flashbench %s: RAM %.0f MB, flash budget %.0f MB (sync %s), %llu threads, "
           "%d-byte keys, in %s\n",
           cfg->mode, (double)cfg->ram / FB_MB, (double)cfg->flash_size / FB_MB,
           sync_names[cfg->sync], (unsigned long long)cfg->threads, FB_NKEY, cfg->run_dir);
}

void fb_report_section(const char *title)
{
    printf("\n%s\n", title);
}

void fb_report_u64(const char *key, const char *label, uint64_t v, const char *unit)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    row(label, tmp, unit);
    js_member(key);
    js_append(tmp, strlen(tmp));
}

void fb_report_num(const char *key, const char *label, double v, int decimals, const char *unit)
{
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);
    row(label, tmp, unit);
    js_member(key);
    if (v != v || v > 1e300 || v < -1e300) /* NaN or infinite: not JSON */
        js_append("null", 4);
    else
        js_printf("%.*f", decimals < 6 ? decimals + 2 : decimals, v);
}

void fb_report_str(const char *key, const char *label, const char *v)
{
    row(label, v, "");
    js_member(key);
    js_string(v);
}

void fb_report_array_begin(const char *key)
{
    js_open(key, '[');
}

void fb_report_object_begin(const char *title)
{
    fb_report_section(title);
    js_open(NULL, '{');
}

void fb_report_object_end(void)
{
    js_close('}');
}

void fb_report_array_end(void)
{
    js_close(']');
}

void fb_report_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  note: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

void fb_report_end(const struct fb_config *cfg, bool ok)
{
    js_member("ok");
    js_printf("%s", ok ? "true" : "false");
    js_member("interrupted");
    js_printf("%s", atomic_load(&fb_interrupted) ? "true" : "false");
    while (js.depth > 0)
        js_close('}');
    if (cfg->json && js.buf != NULL)
        printf("%s\n", js.buf);
    fflush(stdout);
    free(js.buf);
    js.buf = NULL;
    js.cap = js.len = 0;
}
