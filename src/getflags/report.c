/* Text reports in the format of Fluent Python's flags2 scripts, the -v
 * lines, the progress bar and the --json summary. */
#include "gf/alloc.h"
#include "gf/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gf/error.h"
#include "gf/text.h"

/* Server-supplied text escaped into a buffer: malloc'd when it fits the
 * worst case (every byte becoming \xHH), else a cut copy in fallback. */
struct escaped {
    char *text;
    char *owned;
};

static void escape_text(struct escaped *e, const char *s, char *fallback, size_t fallbacksz)
{
    size_t len = s != NULL ? strlen(s) : 0;

    e->owned = NULL;
    if (len < (SIZE_MAX - 1) / 4)
        e->owned = gf_malloc(4 * len + 1);
    if (e->owned != NULL)
        e->text = gf_escape_for_print(s, len, e->owned, 4 * len + 1);
    else
        e->text = gf_escape_for_print(s, len, fallback, fallbacksz);
}

void gf_report_header(FILE *f, const char *label, const char *base_url, const gf_cc *codes,
                      size_t ncodes, unsigned concurrency)
{
    char fallback[256];
    struct escaped url;
    size_t i;

    escape_text(&url, base_url, fallback, sizeof fallback);
    fprintf(f, "%s site: %s\n", label, url.text);
    gf_free(url.owned);

    fprintf(f, "Searching for %zu flag%s: ", ncodes, ncodes == 1 ? "" : "s");
    if (ncodes <= 10) {
        for (i = 0; i < ncodes; i++)
            fprintf(f, "%s%s", i > 0 ? ", " : "", codes[i]);
    } else {
        fprintf(f, "from %s to %s", codes[0], codes[ncodes - 1]);
    }
    fputc('\n', f);

    if (concurrency == 0)
        fputs("Adaptive concurrency will be used.\n", f);
    else if (concurrency == 1)
        fputs("1 connection will be used.\n", f);
    else
        fprintf(f, "%u concurrent connections will be used.\n", concurrency);
}

void gf_report_footer(FILE *f, const struct gf_summary *s)
{
    fputs("--------------------\n", f);
    fprintf(f, "%3zu flag%s downloaded.\n", s->ok, s->ok == 1 ? "" : "s");
    if (s->unchanged != 0)
        fprintf(f, "%3zu unchanged.\n", s->unchanged);
    if (s->not_found != 0)
        fprintf(f, "%3zu not found.\n", s->not_found);
    if (s->error != 0)
        fprintf(f, "%3zu error%s.\n", s->error, s->error == 1 ? "" : "s");
    if (s->pending != 0)
        fprintf(f, "%3zu not finished (interrupted); %zu of them never started.\n", s->pending,
                s->never_started);
    if (s->adaptive)
        fprintf(f, "Concurrency settled at %u.\n", s->concurrency);
    fprintf(f, "Elapsed time: %.2fs\n", s->elapsed_s);
}

void gf_report_item(FILE *f, const struct gf_item *item)
{
    char fallback[256];
    struct escaped e;

    switch (item->status) {
    case GF_OK:
        fprintf(f, "%s OK\n", item->cc);
        break;
    case GF_UNCHANGED:
        fprintf(f, "%s unchanged\n", item->cc);
        break;
    case GF_NOT_FOUND:
        escape_text(&e, item->url, fallback, sizeof fallback);
        fprintf(f, "%s not found: %s\n", item->cc, e.text);
        gf_free(e.owned);
        break;
    case GF_ERROR:
        escape_text(&e, item->error != NULL ? item->error : "unknown error", fallback,
                    sizeof fallback);
        fprintf(f, "%s error: %s\n", item->cc, e.text);
        gf_free(e.owned);
        break;
    case GF_PENDING:
    default:
        fprintf(f, "%s not finished\n", item->cc);
        break;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    /* NaN sorts last so that it cannot break qsort's ordering. */
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

double gf_percentile(double *v, size_t n, double p)
{
    double rank;
    size_t k;

    if (n == 0 || v == NULL)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    if (!(p > 0)) /* also NaN */
        return v[0];
    if (p >= 100)
        return v[n - 1];
    /* Nearest rank: the smallest value with at least p% of values at or
     * below it, i.e. the ceil(p/100 * n)-th one. */
    rank = ceil(p / 100.0 * (double)n);
    k = rank < 1 ? 1 : (size_t)rank;
    if (k > n)
        k = n;
    return v[k - 1];
}

/* Adds a string escaped as for a terminal: error texts may carry server
 * bytes, and invalid UTF-8 must never reach a JSON string. NULL becomes
 * null. */
static int add_text(cJSON *obj, const char *key, const char *s)
{
    char fallback[256];
    struct escaped e;
    cJSON *item;

    if (s == NULL)
        return cJSON_AddNullToObject(obj, key) != NULL ? 0 : -1;
    escape_text(&e, s, fallback, sizeof fallback);
    item = cJSON_AddStringToObject(obj, key, e.text);
    gf_free(e.owned);
    return item != NULL ? 0 : -1;
}

/* Seconds, or null when unknown (negative or not finite). */
static int add_seconds(cJSON *obj, const char *key, double v)
{
    if (v >= 0 && isfinite(v))
        return cJSON_AddNumberToObject(obj, key, v) != NULL ? 0 : -1;
    return cJSON_AddNullToObject(obj, key) != NULL ? 0 : -1;
}

static int add_phases(cJSON *obj, const char *key, const struct gf_phases *ph)
{
    cJSON *o = cJSON_AddObjectToObject(obj, key);

    if (o == NULL)
        return -1;
    if (add_seconds(o, "sem_wait", ph->sem_wait) || add_seconds(o, "dns", ph->dns) ||
        add_seconds(o, "connect", ph->connect) || add_seconds(o, "tls", ph->tls) ||
        add_seconds(o, "first_byte", ph->first_byte) || add_seconds(o, "transfer", ph->transfer) ||
        add_seconds(o, "total", ph->total))
        return -1;
    return 0;
}

static int add_item(cJSON *array, const struct gf_item *it)
{
    cJSON *o = cJSON_CreateObject(), *phases;

    if (o == NULL)
        return -1;
    if (!cJSON_AddItemToArray(array, o)) {
        cJSON_Delete(o);
        return -1;
    }
    if (cJSON_AddStringToObject(o, "cc", it->cc) == NULL ||
        cJSON_AddStringToObject(o, "status", gf_status_name(it->status)) == NULL ||
        add_text(o, "file", it->file) != 0)
        return -1;
    if (it->http_status != 0) {
        if (cJSON_AddNumberToObject(o, "http_status", it->http_status) == NULL)
            return -1;
    } else if (cJSON_AddNullToObject(o, "http_status") == NULL) {
        return -1;
    }
    if (add_text(o, "http_version", it->http_version[0] ? it->http_version : NULL) != 0 ||
        add_text(o, "error", it->error) != 0 ||
        cJSON_AddNumberToObject(o, "bytes", (double)it->bytes) == NULL ||
        cJSON_AddNumberToObject(o, "requests", it->requests) == NULL)
        return -1;
    phases = cJSON_AddObjectToObject(o, "phases");
    if (phases == NULL || add_phases(phases, "meta", &it->meta) != 0 ||
        add_phases(phases, "image", &it->image) != 0 ||
        add_seconds(phases, "save_s", it->save_s) != 0)
        return -1;
    return 0;
}

int gf_latency_summary(const double *v, size_t n, struct gf_latency *out)
{
    struct gf_latency l = {0, 0, 0, 0};
    if (n > 0 && v != NULL) {
        /* gf_percentile sorts; the caller's array stays as it is. */
        double *copy = gf_malloc(n * sizeof *copy);
        if (copy == NULL)
            return GF_ENOMEM;
        memcpy(copy, v, n * sizeof *copy);
        l.p50 = gf_percentile(copy, n, 50);
        l.p95 = gf_percentile(copy, n, 95);
        l.p99 = gf_percentile(copy, n, 99);
        l.max = gf_percentile(copy, n, 100);
        gf_free(copy);
    }
    *out = l;
    return 0;
}

static int add_latencies(cJSON *root, const struct gf_summary *s)
{
    struct gf_latency l;
    cJSON *o;

    if (gf_latency_summary(s->latencies_ms, s->nlatencies, &l) != 0)
        return -1;
    o = cJSON_AddObjectToObject(root, "latency_ms");
    if (o == NULL || cJSON_AddNumberToObject(o, "p50", l.p50) == NULL ||
        cJSON_AddNumberToObject(o, "p95", l.p95) == NULL ||
        cJSON_AddNumberToObject(o, "p99", l.p99) == NULL ||
        cJSON_AddNumberToObject(o, "max", l.max) == NULL)
        return -1;
    return 0;
}

int gf_report_add_connections(void *object, const struct gf_conn_stats *c)
{
    cJSON *o = cJSON_AddObjectToObject(object, "connections");
    if (o == NULL || cJSON_AddNumberToObject(o, "opened", (double)c->opened) == NULL ||
        cJSON_AddNumberToObject(o, "tls_handshakes", (double)c->tls_handshakes) == NULL ||
        cJSON_AddNumberToObject(o, "tls_resumed", (double)c->tls_resumed) == NULL)
        return -1;
    return 0;
}

char *gf_report_json(const struct gf_summary *s)
{
    cJSON *root = cJSON_CreateObject(), *counts, *items;
    char *text = NULL;
    size_t i;

    if (root == NULL)
        return NULL;
    if (add_text(root, "server", s->server_label) != 0 ||
        add_text(root, "base_url", s->base_url) != 0 ||
        cJSON_AddNumberToObject(root, "concurrency", s->concurrency) == NULL ||
        cJSON_AddNumberToObject(root, "elapsed_s", s->elapsed_s) == NULL)
        goto out;
    counts = cJSON_AddObjectToObject(root, "counts");
    if (counts == NULL ||
        cJSON_AddNumberToObject(counts, gf_status_name(GF_OK), (double)s->ok) == NULL ||
        cJSON_AddNumberToObject(counts, gf_status_name(GF_NOT_FOUND), (double)s->not_found) ==
            NULL ||
        cJSON_AddNumberToObject(counts, gf_status_name(GF_ERROR), (double)s->error) == NULL ||
        cJSON_AddNumberToObject(counts, gf_status_name(GF_UNCHANGED), (double)s->unchanged) ==
            NULL ||
        /* An interrupted run's codes that did not end: the counts add up to
         * the items, and never_started tells how many were never begun. */
        cJSON_AddNumberToObject(counts, gf_status_name(GF_PENDING), (double)s->pending) == NULL ||
        cJSON_AddNumberToObject(root, "never_started", (double)s->never_started) == NULL)
        goto out;
    if (cJSON_AddNumberToObject(root, "requests", (double)s->requests) == NULL ||
        cJSON_AddNumberToObject(root, "bytes", (double)s->bytes) == NULL ||
        cJSON_AddNumberToObject(root, "peak_in_flight", s->peak_in_flight) == NULL ||
        gf_report_add_connections(root, &s->conn) != 0 || add_latencies(root, s) != 0)
        goto out;
    items = cJSON_AddArrayToObject(root, "items");
    if (items == NULL)
        goto out;
    for (i = 0; i < s->nitems; i++)
        if (add_item(items, &s->items[i]) != 0)
            goto out;
    text = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return text;
}

/* "2m03s" style, short enough for a status line. */
static void format_eta(char *buf, size_t bufsz, double seconds)
{
    unsigned long long t;

    if (!(seconds >= 0) || seconds > 359999) {
        snprintf(buf, bufsz, "--");
        return;
    }
    t = (unsigned long long)floor(seconds + 0.5);
    if (t < 60)
        snprintf(buf, bufsz, "%llus", t);
    else if (t < 3600)
        snprintf(buf, bufsz, "%llum%02llus", t / 60, t % 60);
    else
        snprintf(buf, bufsz, "%lluh%02llum", t / 3600, t % 3600 / 60);
}

/* Longest progress line drawn, '\r' and NUL included. */
#define PROGRESS_LINE_MAX 512

/* ESC[K (erase to the end of the line) only where TERM names a terminal
 * that has it: with TERM unset, empty or "dumb" (Emacs shell buffers, some
 * CI logs) it shows as garbage, so lines are redrawn over with spaces. */
static int can_erase(void)
{
    const char *term = getenv("TERM");

    return term != NULL && term[0] != '\0' && strcmp(term, "dumb") != 0;
}

void gf_progress_draw(FILE *f, size_t done, size_t total, double elapsed_s, unsigned width)
{
    char counts[96], eta[32], total_text[32], line[PROGRESS_LINE_MAX];
    double rate = 0, frac;
    size_t cols, text_len, bar, filled, i, n = 0;
    unsigned pct;
    int digits;

    if (done > total)
        done = total;
    frac = total > 0 ? (double)done / (double)total : 1.0;
    pct = (unsigned)(frac * 100.0);
    if (elapsed_s > 0 && done > 0)
        rate = (double)done / elapsed_s;
    if (done == total)
        format_eta(eta, sizeof eta, 0);
    else if (rate > 0)
        format_eta(eta, sizeof eta, (double)(total - done) / rate);
    else
        format_eta(eta, sizeof eta, -1);
    digits = snprintf(total_text, sizeof total_text, "%zu", total);
    snprintf(counts, sizeof counts, " %*zu/%s %3u%% %.1f/s ETA %s", digits, done, total_text, pct,
             rate, eta);

    /* Stay off the last column: writing there makes some terminals wrap. */
    cols = (width == 0 ? 80 : width) - 1;
    if (cols > sizeof line - 1)
        cols = sizeof line - 1;
    text_len = strlen(counts);
    line[n++] = '\r';
    if (cols >= text_len + 2 + 5) {
        bar = cols - text_len - 2;
        if (bar > 50)
            bar = 50;
        filled = (size_t)(frac * (double)bar);
        line[n++] = '[';
        for (i = 0; i < bar; i++)
            line[n++] = i < filled ? '#' : '.';
        line[n++] = ']';
        memcpy(line + n, counts, text_len);
        n += text_len;
    } else {
        /* Too narrow for a bar: the numbers alone, cut to fit. */
        size_t k = text_len - 1 < cols ? text_len - 1 : cols;
        memcpy(line + n, counts + 1, k);
        n += k;
    }
    if (can_erase()) {
        line[n] = '\0';
        fputs(line, f);
        fputs("\x1b[K", f);
    } else {
        /* Spaces to the end of the usable width hide a longer line drawn
         * before this one. */
        while (n < cols + 1 && n < sizeof line - 1)
            line[n++] = ' ';
        line[n] = '\0';
        fputs(line, f);
    }
    fflush(f);
}

void gf_progress_clear(FILE *f, unsigned width)
{
    size_t cols = (width == 0 ? 80 : width) - 1, i;

    if (can_erase()) {
        fputs("\r\x1b[K", f);
    } else {
        if (cols > PROGRESS_LINE_MAX - 1)
            cols = PROGRESS_LINE_MAX - 1;
        fputc('\r', f);
        for (i = 0; i < cols; i++)
            fputc(' ', f);
        fputc('\r', f);
    }
    fflush(f);
}

/* The stream and reason of the last failed gf_report_put_line(). */
static FILE *put_failed_on;
static int put_failed_errno;

void gf_report_put_line(FILE *out, const char *s)
{
    errno = 0;
    if ((fputs(s, out) == EOF || fputc('\n', out) == EOF) && errno != 0) {
        put_failed_on = out;
        put_failed_errno = errno;
    }
}

int gf_report_output_check(FILE *out, const char *name, FILE *err)
{
    int failed, saved = 0;

    errno = 0;
    failed = fflush(out) != 0;
    if (failed)
        saved = errno;
    failed = failed || ferror(out);
    if (!failed)
        return 0;
    if (saved == 0 && put_failed_on == out)
        saved = put_failed_errno;
    if (put_failed_on == out)
        put_failed_on = NULL;
    /* Said once: a later check of the same stream stays quiet unless
     * another write fails. */
    clearerr(out);
    if (err != NULL && err != out) {
        if (saved != 0)
            fprintf(err, "getflags: cannot write to %s: %s\n", name, strerror(saved));
        else
            fprintf(err, "getflags: cannot write to %s: part of the output was lost\n", name);
        fflush(err);
    }
    return -1;
}
