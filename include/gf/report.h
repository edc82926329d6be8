/* What a run tells its user: the flags2-format text reports, the -v
 * lines, the progress bar and the --json summary. Formatting only: callers
 * pass the FILE and decide whether to print at all. */
#ifndef GF_REPORT_H
#define GF_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "gf/codes.h"
#include "gf/model.h"

/* What connections a run opened. */
struct gf_conn_stats {
    uint64_t opened;         /* new connections (libcurl's CURLINFO_NUM_CONNECTS, summed as made) */
    uint64_t tls_handshakes; /* TLS handshakes completed */
    uint64_t tls_resumed;    /* of them, with a resumed session */
};

struct gf_summary {
    const char *server_label; /* "LOCAL" ... or "URL" */
    const char *base_url;
    unsigned concurrency; /* the number used */
    double elapsed_s;
    size_t ok, not_found, error, unchanged;
    size_t pending, never_started; /* an interrupted run: codes not ended, of them not begun */
    int adaptive;                  /* -m auto: concurrency is the limit it settled on */
    uint64_t requests, bytes;
    unsigned peak_in_flight;   /* most requests at the server at once */
    struct gf_conn_stats conn; /* connections opened, TLS handshakes */
    const struct gf_item *items;
    size_t nitems;
    /* Per-request latencies in milliseconds, for the percentiles. */
    const double *latencies_ms;
    size_t nlatencies;
};

/* "LOCAL site: <url>", "Searching for N flags: ..." and
 * "M concurrent connections will be used." (concurrency 0: "Adaptive
 * concurrency will be used.", for -m auto). */
void gf_report_header(FILE *f, const char *label, const char *base_url, const gf_cc *codes,
                      size_t ncodes, unsigned concurrency);

/* The 20 dashes, counts ("N unchanged." only when non-zero), with -m auto
 * "Concurrency settled at N.", and "Elapsed time: %.2fs". */
void gf_report_footer(FILE *f, const struct gf_summary *s);

/* One -v line: "BR OK", "ZZ not found: <url>", "XX error: <reason>".
 * Server-supplied text is escaped. */
void gf_report_item(FILE *f, const struct gf_item *item);

/* The --json summary as a new NUL-terminated string (caller frees with
 * free()), or NULL when out of memory. */
char *gf_report_json(const struct gf_summary *s);

/* Adds the "connections" object (opened, tls_handshakes, tls_resumed) to
 * a cJSON object (void * to keep cJSON out of this header). Returns 0 or
 * -1 when out of memory. */
int gf_report_add_connections(void *object, const struct gf_conn_stats *c);

/* Nearest-rank percentile p (0..100) of n values; sorts v in place.
 * Returns 0 when n is 0. */
double gf_percentile(double *v, size_t n, double p);

struct gf_latency {
    double p50, p95, p99, max;
};

/* The percentiles of n latencies, from a sorted copy (v is left as it
 * is); all 0 when n is 0. Returns 0, or GF_ENOMEM (out untouched). */
int gf_latency_summary(const double *v, size_t n, struct gf_latency *out);

/* Draws the progress bar on one terminal line (carriage return, no
 * newline): count, percent, rate per second and ETA. width is the
 * terminal's width in columns (0: 80). The rest of the line is erased with
 * ESC[K, or, when TERM is unset, empty or "dumb", overwritten with spaces
 * up to the last column but one. */
void gf_progress_draw(FILE *f, size_t done, size_t total, double elapsed_s, unsigned width);
/* Erases the progress bar line: "\r" ESC[K, or with TERM unset, empty or
 * "dumb" a line of spaces between two carriage returns. */
void gf_progress_clear(FILE *f, unsigned width);

/* Writes s and a newline to out, as puts(3) does for stdout, and keeps the
 * reason of a failure for gf_report_output_check(): a text longer than
 * the stream's buffer is written at once, so by the check nothing is left
 * to flush that could fail again. */
void gf_report_put_line(FILE *out, const char *s);

/* Flushes out and checks that no write to it has failed since it was
 * opened (or its error flag last cleared): a report that did not reach its
 * reader must not end as a clean run. On failure prints one line to err
 * ("getflags: cannot write to <name>: <reason>") unless err is NULL or out
 * itself, clears out's error flag (so one loss is said once) and returns
 * -1; else returns 0. The reason is that of this flush, or of the failed
 * gf_report_put_line(); any other earlier failure is said as "part of the
 * output was lost". */
int gf_report_output_check(FILE *out, const char *name, FILE *err);

#endif
