/* One download run: owns the loop, the engine, the semaphore, the saver,
 * the signal handlers and one state machine per code, and returns what
 * became of every code. Printing the header and the summary is the
 * caller's; the run prints only what happens as it goes (-v lines, error
 * lines, the progress bar). */
#ifndef GF_RUN_H
#define GF_RUN_H

#include <stdio.h>

#include "gf/cli.h"
#include "gf/report.h"

struct gf_prev;
struct gf_state;

struct gf_tls;

struct gf_run_config {
    const struct gf_options *opts;
    /* The CA set-up (--cacert read once, before DIR was touched); the run
     * points its TLS counters at its result. Borrowed. */
    struct gf_tls *tls;
    unsigned concurrency; /* requests in flight at most (with -m auto, the cap) */
    /* DIR, open and locked: saves go into its directory descriptor, and
     * it decides which file names a code may write. */
    struct gf_state *state;
    /* --update: per code (in opts->codes order) what the last run recorded,
     * or NULL entries; NULL for none at all. */
    const struct gf_prev *const *prev;
    FILE *verbose; /* per-code lines as codes end, or NULL */
    FILE *errors;  /* per-code error lines when verbose is NULL, or NULL */
    int progress;  /* draw the progress bar on stderr */
    /* Called once everything is set up and before the first request, so
     * a run that cannot start prints nothing but its error: while the
     * first connection is being set up (its round trips overlap this
     * call's work), and before any code is reported. Nonzero stops the
     * run before any answer is taken (the result's not_started). May be
     * NULL. */
    int (*on_start)(void *arg);
    void *arg;
};

struct gf_run_result {
    struct gf_item *items; /* one per code, in code order; owned */
    size_t nitems;
    size_t ok, not_found, error, unchanged, pending;
    size_t never_started; /* pending codes that made no request at all */
    uint64_t requests, bytes;
    double elapsed_s;
    double *latencies_ms; /* one per HTTP request; owned */
    size_t nlatencies;
    unsigned peak_in_flight; /* most requests at the server at once */
    struct gf_conn_stats conn;
    unsigned concurrency; /* the limit in force at the end (-m auto: settled on) */
    int signal;           /* SIGINT, SIGTERM or SIGHUP when interrupted, else 0 */
    int not_started;      /* on_start refused the run: no code got an answer */
};

/* Runs the download to the end (or to an interrupt). Returns 0 with *res
 * filled in (free it with gf_run_result_free), or, when the run cannot
 * start, a negative error with a message in msg and nothing to free. */
int gf_run(const struct gf_run_config *cfg, struct gf_run_result *res, char *msg, size_t msgsz);

void gf_run_result_free(struct gf_run_result *res);

/* Summary view of a result, for gf_report_footer and gf_report_json. */
struct gf_summary gf_run_summary(const struct gf_run_result *res, const struct gf_options *opts,
                                 unsigned concurrency);

#endif
