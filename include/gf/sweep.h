/* --sweep: the same download once per concurrency level, and the table
 * (or JSON array) that compares the levels. Formatting only; main.c runs
 * the downloads. */
#ifndef GF_SWEEP_H
#define GF_SWEEP_H

#include <stddef.h>
#include <stdio.h>

#include "gf/report.h"

struct gf_sweep_row {
    unsigned m; /* concurrency used */
    double elapsed_s;
    double requests_per_s;
    double p50_ms, p95_ms, p99_ms, max_ms; /* per HTTP request */
    size_t ok, not_found, error, unchanged;
    size_t pending; /* codes not finished: the level was interrupted */
    size_t requests;
    unsigned peak_in_flight;   /* most requests at the server at once */
    struct gf_conn_stats conn; /* connections opened, TLS handshakes */
};

/* Fills a row from one run's summary. Sorts a copy of the latencies;
 * returns GF_ENOMEM (row untouched) when that copy cannot be made. */
int gf_sweep_row_from(struct gf_sweep_row *row, const struct gf_summary *s);

/* The table: a header line, then one aligned line per row, and a line
 * under it for a level that was interrupted. */
void gf_sweep_table(FILE *f, const struct gf_sweep_row *rows, size_t n);

/* The rows as a JSON array, a new string the caller frees, or NULL when
 * out of memory. */
char *gf_sweep_json(const struct gf_sweep_row *rows, size_t n);

#endif
