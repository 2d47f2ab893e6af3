/*
 * report.c: see report.h. Latencies are recorded in nanoseconds and shown
 * in microseconds. The hit ratio is hits / keys requested, so a multi-get
 * of 10 keys with 9 found counts 0.9, and a wrong value counts against it.
 */
#include "report.h"

#include <stddef.h>
#include <string.h>

#include "bench_config.h"
#include "mcproto.h"

void report_stats_init(struct bench_stats *s, const char *name)
{
    memset(s, 0, offsetof(struct bench_stats, lat_all));
    hist_init(&s->lat_all);
    hist_init(&s->lat_get);
    hist_init(&s->lat_set);
    hist_init(&s->send_lag);
    s->seconds = s->cpu_seconds = 0.0;
    s->name = name;
}

void report_stats_merge(struct bench_stats *dst, const struct bench_stats *src)
{
    dst->ops += src->ops;
    dst->gets += src->gets;
    dst->sets += src->sets;
    dst->keys_requested += src->keys_requested;
    dst->hits += src->hits;
    dst->misses += src->misses;
    dst->wrong += src->wrong;
    dst->errors += src->errors;
    dst->bytes_out += src->bytes_out;
    dst->bytes_in += src->bytes_in;
    dst->unsent += src->unsent;
    hist_merge(&dst->lat_all, &src->lat_all);
    hist_merge(&dst->lat_get, &src->lat_get);
    hist_merge(&dst->lat_set, &src->lat_set);
    hist_merge(&dst->send_lag, &src->send_lag);
}

void report_publish(struct bench_live *live, const struct bench_stats *s)
{
    atomic_store_explicit(&live->ops, s->ops, memory_order_relaxed);
    atomic_store_explicit(&live->keys, s->keys_requested, memory_order_relaxed);
    atomic_store_explicit(&live->hits, s->hits, memory_order_relaxed);
    atomic_store_explicit(&live->errors, s->errors, memory_order_relaxed);
    atomic_store_explicit(&live->wrong, s->wrong, memory_order_relaxed);
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static double hit_ratio(const struct bench_stats *s)
{
    return s->keys_requested == 0 ? 0.0 : (double)s->hits / (double)s->keys_requested;
}

void report_header(FILE *out, const struct bench_config *c)
{
    char workload[512];
    bench_config_describe(c, workload, sizeof(workload));
    fprintf(out, "tiercache-bench %s: %u server%s (", TC_VERSION, c->servers.n,
            c->servers.n == 1 ? "" : "s");
    for (unsigned i = 0; i < c->servers.n; i++)
        fprintf(out, "%s%s", i ? " " : "", c->servers.servers[i].name);
    if (c->servers.n > 1)
        fprintf(out, ", %s", dist_mode_names[c->distribution]);
    fprintf(out, "), %llu thread%s x %llu connection%s per server, pipeline %llu, ",
            (unsigned long long)c->threads, c->threads == 1 ? "" : "s",
            (unsigned long long)c->connections, c->connections == 1 ? "" : "s",
            (unsigned long long)c->pipeline);
    if (c->rate > 0)
        fprintf(out, "open loop at %.0f ops/s\n", c->rate);
    else
        fprintf(out, "closed loop\n");
    fprintf(out, "workload: %s\n\n", workload);
    fprintf(out, "%-8s %7s %10s %10s %7s %7s %6s %9s %9s %9s %9s %9s\n", "phase", "secs", "ops",
            "ops/s", "hit%", "errors", "wrong", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us");
}

static void row(FILE *out, const char *name, double secs, uint64_t ops, const struct hist *h,
                const char *hit, uint64_t errors, uint64_t wrong)
{
    fprintf(out, "%-8s %7.2f %10llu %10.0f %7s %7llu %6llu %9.1f %9.1f %9.1f %9.1f %9.1f\n", name,
            secs, (unsigned long long)ops, secs > 0 ? (double)ops / secs : 0.0, hit,
            (unsigned long long)errors, (unsigned long long)wrong, us(hist_percentile(h, 50)),
            us(hist_percentile(h, 90)), us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)),
            us(h->max == 0 && h->count == 0 ? 0 : h->max));
}

void report_phase(FILE *out, const struct bench_stats *s, double rate)
{
    char hit[16] = "-";
    if (s->keys_requested > 0)
        snprintf(hit, sizeof(hit), "%.2f", 100.0 * hit_ratio(s));
    row(out, s->name, s->seconds, s->ops, &s->lat_all, hit, s->errors, s->wrong);
    if (s->gets > 0 && s->sets > 0) {
        row(out, "  get", s->seconds, s->gets, &s->lat_get, hit, 0, s->wrong);
        row(out, "  set", s->seconds, s->sets, &s->lat_set, "-", 0, 0);
    }
    fprintf(out, "%-8s client cpu %.0f%% of one core, %.1f MB/s out, %.1f MB/s in", "",
            s->seconds > 0 ? 100.0 * s->cpu_seconds / s->seconds : 0.0,
            s->seconds > 0 ? (double)s->bytes_out / s->seconds / 1e6 : 0.0,
            s->seconds > 0 ? (double)s->bytes_in / s->seconds / 1e6 : 0.0);
    if (rate > 0) {
        fprintf(out, "\n%-8s offered %.0f ops/s; client send lag p50 %.1f us, p99 %.1f us", "",
                rate, us(hist_percentile(&s->send_lag, 50)), us(hist_percentile(&s->send_lag, 99)));
        fprintf(out, "; %llu never sent", (unsigned long long)s->unsent);
    }
    fprintf(out, "\n");
}

/* The latency fields of one histogram: "prefix" + p50_us ... */
static void json_latency(FILE *out, const char *prefix, const struct hist *h)
{
    fprintf(out,
            "\"%sp50_us\":%.1f,\"%sp90_us\":%.1f,\"%sp99_us\":%.1f,\"%sp999_us\":%.1f,"
            "\"%smax_us\":%.1f,\"%smean_us\":%.1f",
            prefix, us(hist_percentile(h, 50)), prefix, us(hist_percentile(h, 90)), prefix,
            us(hist_percentile(h, 99)), prefix, us(hist_percentile(h, 99.9)), prefix,
            us(h->count ? h->max : 0), prefix, hist_mean(h) / 1000.0);
}

/* The measurement fields of one phase, no braces. */
static void json_phase(FILE *out, const struct bench_stats *s)
{
    fprintf(out,
            "\"phase\":\"%s\",\"seconds\":%.3f,\"ops\":%llu,\"ops_per_sec\":%.1f,\"gets\":%llu,"
            "\"sets\":%llu,\"keys_requested\":%llu,\"hits\":%llu,\"misses\":%llu,"
            "\"hit_ratio\":%.4f,\"errors\":%llu,\"wrong_values\":%llu,\"unsent\":%llu,"
            "\"bytes_out\":%llu,\"bytes_in\":%llu,\"client_cpu_pct\":%.1f,",
            s->name, s->seconds, (unsigned long long)s->ops,
            s->seconds > 0 ? (double)s->ops / s->seconds : 0.0, (unsigned long long)s->gets,
            (unsigned long long)s->sets, (unsigned long long)s->keys_requested,
            (unsigned long long)s->hits, (unsigned long long)s->misses, hit_ratio(s),
            (unsigned long long)s->errors, (unsigned long long)s->wrong,
            (unsigned long long)s->unsent, (unsigned long long)s->bytes_out,
            (unsigned long long)s->bytes_in,
            s->seconds > 0 ? 100.0 * s->cpu_seconds / s->seconds : 0.0);
    json_latency(out, "", &s->lat_all);
    fputc(',', out);
    json_latency(out, "get_", &s->lat_get);
    fputc(',', out);
    json_latency(out, "set_", &s->lat_set);
    fprintf(out, ",\"send_lag_p50_us\":%.1f,\"send_lag_p99_us\":%.1f",
            us(hist_percentile(&s->send_lag, 50)), us(hist_percentile(&s->send_lag, 99)));
}

/* A JSON string (the inputs are option values: escape quotes, backslashes, controls). */
static void json_string(FILE *out, const char *s)
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

void report_json(FILE *out, const struct bench_config *c, const struct bench_stats *phases,
                 int nphases)
{
    fprintf(out, "{\"tool\":\"tiercache-bench\",\"version\":\"%s\",\"servers\":[", TC_VERSION);
    for (unsigned i = 0; i < c->servers.n; i++) {
        if (i)
            fputc(',', out);
        json_string(out, c->servers.servers[i].name);
    }
    fprintf(out,
            "],\"distribution\":\"%s\",\"threads\":%llu,\"connections\":%llu,\"pipeline\":%llu,"
            "\"mode\":\"%s\","
            "\"target_rate\":%.1f,\"key_space\":%llu,\"key_pattern\":\"%s\","
            "\"zipf_alpha\":%g,\"value_size\":",
            dist_mode_names[c->distribution], (unsigned long long)c->threads,
            (unsigned long long)c->connections, (unsigned long long)c->pipeline,
            c->rate > 0 ? "open" : "closed", c->rate, (unsigned long long)c->key_space,
            keyspace_pattern_names[c->key_pattern], c->zipf_alpha);
    json_string(out, c->value_size_spec);
    fprintf(out, ",\"ratio\":");
    json_string(out, c->ratio_spec);
    fprintf(out, ",\"multiget\":%llu,\"ttl\":%llu,\"seed\":%llu,\"protocol\":\"%s\",",
            (unsigned long long)c->multiget, (unsigned long long)c->ttl,
            (unsigned long long)c->seed, mcproto_protocol_names[c->protocol]);
    json_phase(out, &phases[nphases - 1]);
    fprintf(out, ",\"phases\":[");
    for (int i = 0; i < nphases; i++) {
        fprintf(out, "%s{", i ? "," : "");
        json_phase(out, &phases[i]);
        fputc('}', out);
    }
    fprintf(out, "]}\n");
}

void report_live_add(struct bench_counts *sum, const struct bench_live *live)
{
    sum->ops += atomic_load_explicit(&live->ops, memory_order_relaxed);
    sum->keys += atomic_load_explicit(&live->keys, memory_order_relaxed);
    sum->hits += atomic_load_explicit(&live->hits, memory_order_relaxed);
    sum->errors += atomic_load_explicit(&live->errors, memory_order_relaxed);
    sum->wrong += atomic_load_explicit(&live->wrong, memory_order_relaxed);
}

void report_progress(FILE *out, const char *phase, double elapsed, const struct bench_counts *now,
                     struct bench_counts *prev, double interval)
{
    uint64_t keys = now->keys - prev->keys;
    uint64_t hits = now->hits - prev->hits;
    char hit[16] = "-";
    if (keys > 0)
        snprintf(hit, sizeof(hit), "%.1f%%", 100.0 * (double)hits / (double)keys);
    fprintf(out, "\r\033[K[%s] %4.0fs %10.0f ops/s  hit %6s  ops %llu  errors %llu  wrong %llu",
            phase, elapsed, interval > 0 ? (double)(now->ops - prev->ops) / interval : 0.0, hit,
            (unsigned long long)now->ops, (unsigned long long)now->errors,
            (unsigned long long)now->wrong);
    fflush(out);
    *prev = *now;
}
