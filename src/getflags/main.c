/* getflags: downloads country flags concurrently. See README.md. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "gf/afile.h"
#include "gf/alloc.h"
#include "gf/cli.h"
#include "gf/error.h"
#include "gf/fetch.h"
#include "gf/lock.h"
#include "gf/procsetup.h"
#include "gf/report.h"
#include "gf/run.h"
#include "gf/saver.h"
#include "gf/state.h"
#include "gf/sweep.h"
#include "transfer.h"

/* libcurl's LDAP and RTMP libraries load GnuTLS, whose constructor sets
 * itself up in every process (about 1.3 ms of CPU per start here). getflags
 * never uses GnuTLS, and a libcurl built on it initialises it explicitly in
 * curl_global_init(). GnuTLS asks the program through this hook
 * (GNUTLS_SKIP_GLOBAL_INIT in gnutls.h); the link exports it. */
int _gnutls_global_init_skip(void); /* NOLINT(bugprone-reserved-identifier) */
int _gnutls_global_init_skip(void)  /* NOLINT(bugprone-reserved-identifier) */
{
    return 1;
}

static void print_version(void)
{
    printf("getflags %s\n", GF_VERSION);
    printf("libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("libuv %s\n", uv_version_string());
    printf("cJSON %s\n", cJSON_Version());
}

static int exit_status(const struct gf_run_result *res)
{
    if (res->signal == SIGINT)
        return GF_EXIT_SIGINT;
    if (res->signal == SIGTERM)
        return GF_EXIT_SIGTERM;
    if (res->signal == SIGHUP)
        return GF_EXIT_SIGHUP;
    return res->error > 0 ? GF_EXIT_ERRORS : GF_EXIT_OK;
}

/* The most requests at once the open-file limit allows, as preflight()
 * found it. */
static unsigned fd_fit = 1;
/* --cacert, read once in preflight() for every run of the process. */
static struct gf_tls tls;

/* The concurrency to use for a level: at most one request per code, and
 * what the open-file limit allows. */
static unsigned concurrency_for(const struct gf_options *o, unsigned m)
{
    unsigned want = m < o->ncodes ? m : (unsigned)o->ncodes;
    if (want > fd_fit)
        want = fd_fit;
    return want > 0 ? want : 1;
}

struct header_args {
    const struct gf_options *o;
    struct gf_state *st;
    unsigned concurrency;
    int header;
};

static int on_run_start(void *arg)
{
    const struct header_args *h = arg;
    const struct gf_options *o = h->o;
    char msg[2 * PATH_MAX + 512]; /* room for two paths and the reason */
    /* A stop asked for while the run was being set up: the run's own
     * handler is in place now, so it ends the run as usual. */
    if (gf_early_signal)
        raise(gf_early_signal);
    /* Set up, not yet started: should the run be killed, its codes are
     * left to --retry-failed. A run that cannot write this cannot record
     * what it changes either (a full disk, a read-only DIR/.getflags), and
     * would leave a manifest that no longer matches DIR: it stops before
     * any file is written. */
    if (gf_state_begin(h->st, (const gf_cc *)o->codes, o->ncodes, o->base_url_display, msg,
                       sizeof msg) != 0) {
        fprintf(stderr, "getflags: %s; no flag and no manifest in %s was changed\n", msg,
                o->outdir);
        return -1;
    }
    if (!h->header || o->quiet || o->json)
        return 0;
    gf_report_header(stdout, o->server_label, o->base_url_display, o->codes, o->ncodes,
                     o->concurrency_auto ? 0 : h->concurrency);
    fflush(stdout);
    return 0;
}

static int run_once(const struct gf_options *o, struct gf_state *st, unsigned concurrency,
                    int header, int progress, const struct gf_prev *const *prev,
                    struct gf_run_result *res)
{
    char err[512];
    struct header_args h = {o, st, concurrency, header};
    struct gf_run_config cfg = {
        .tls = &tls,
        .prev = prev,
        .state = st,
        .on_start = on_run_start,
        .arg = &h,
        .opts = o,
        .concurrency = concurrency,
        .verbose = o->verbose ? (o->json ? stderr : stdout) : NULL,
        .errors = stderr,
        .progress = progress && !o->verbose && !o->quiet && isatty(STDERR_FILENO),
    };
    int rc = gf_run(&cfg, res, err, sizeof err);
    if (rc != 0)
        fputs(err, stderr);
    /* The run's signal handles are closed, which leaves the default action:
     * a signal now (a second Ctrl-C, or one while the report waits on a
     * pipe) would kill the process before the manifest is written. Until
     * the process ends, a signal is only recorded, and ends it with the
     * status of the signal; one the run took is in res->signal. */
    if (rc == 0)
        gf_early_signal = 0;
    gf_setup_signals();
    return rc;
}

/* Opens DIR's state (gf/state.h) and prepares the codes of the run:
 * --retry-failed's selection and --update's conditional-request data.
 * Returns -1 to go on, else the exit status to stop with. */
static int state_open(struct gf_options *o, struct gf_state *st, const struct gf_prev *const **prev)
{
    char msg[2 * PATH_MAX + 512]; /* room for two paths and the reason */
    struct gf_state_config cfg = {
        .dir = o->outdir,
        .base_url = o->base_url_display,
        .update = o->update,
        .retry_failed = o->retry_failed,
        .wait_lock = o->wait_lock,
        .quiet = o->quiet,
        .warn = stderr,
    };
    int rc = gf_state_open(st, &cfg, msg, sizeof msg);
    if (rc != 0) {
        fprintf(stderr, "getflags: %s\n", msg);
        return rc == GF_STATE_BUSY ? GF_LOCK_EXIT_BUSY : GF_EXIT_CANNOT_START;
    }
    if (o->retry_failed) {
        gf_state_select_failed(st, o->codes, &o->ncodes, GF_CODES_MAX);
        if (o->limit > 0 && o->ncodes > o->limit)
            o->ncodes = o->limit;
    }
    int nomem;
    *prev = gf_state_prevs(st, (const gf_cc *)o->codes, o->ncodes, &nomem);
    if (nomem) {
        fprintf(stderr, "getflags: out of memory\n");
        gf_state_close(st);
        return GF_EXIT_CANNOT_START;
    }
    return -1;
}

/* Records every code of the run and writes the manifest. Codes this run
 * did not include keep their entries. Returns 0, or 1 after saying why
 * the manifest could not be written. */
static int state_save(const struct gf_options *o, struct gf_state *st,
                      const struct gf_run_result *res)
{
    char msg[2 * PATH_MAX + 512]; /* room for two paths and the reason */
    int rc = 0;
    for (size_t i = 0; i < res->nitems && rc == 0; i++)
        rc = gf_state_record(st, &res->items[i]);
    if (rc != 0) {
        fprintf(stderr, "getflags: cannot record the run in the manifest: %s\n", gf_strerror(rc));
        return 1;
    }
    if (gf_state_save(st, o->base_url_display, msg, sizeof msg) != 0) {
        fprintf(stderr, "getflags: %s\n", msg);
        return 1;
    }
    return 0;
}

/* --retry-failed after a run without errors: one line, not the report
 * of a run of no codes (nor a sweep of such runs); DIR and its manifest
 * stay as they are. --json still prints its (empty) summary, for scripts.
 * Returns 1, st closed, when that is all there is to do. */
static int nothing_to_retry(const struct gf_options *o, struct gf_state *st)
{
    if (!o->retry_failed || o->ncodes > 0 || o->json)
        return 0;
    if (!o->quiet)
        printf("Nothing to retry: no code ended in error in the last run in %s.\n", o->outdir);
    gf_state_close(st);
    return 1;
}

/* Every code asked for answered 404: most likely a base URL with a typo
 * (the exit status stays 0, as for any not found), so a cron job hears of
 * it even under -q. */
static void warn_if_nothing_found(const struct gf_options *o, const struct gf_summary *sum)
{
    if (o->ncodes == 0 || sum->not_found != o->ncodes)
        return;
    /* Only when no metadata was there: images missing under metadata that
     * was found say the server is inconsistent, not the URL wrong. */
    static const char meta[] = "/metadata.json";
    for (size_t i = 0; i < sum->nitems; i++) {
        const char *url = sum->items[i].url;
        size_t n = url ? strlen(url) : 0;
        if (n < sizeof meta - 1 || strcmp(url + n - (sizeof meta - 1), meta) != 0)
            return;
    }
    if (o->ncodes == 1)
        fprintf(stderr,
                "getflags: warning: the one code asked for was not found (404) under %s: is the "
                "base URL right?\n",
                o->base_url_display);
    else
        fprintf(stderr,
                "getflags: warning: none of the %zu codes was found (404) under %s: is the base "
                "URL right?\n",
                o->ncodes, o->base_url_display);
}

static int download(struct gf_options *o)
{
    struct gf_state st;
    const struct gf_prev *const *prev;
    int rc = state_open(o, &st, &prev);
    if (rc >= 0)
        return rc;
    if (nothing_to_retry(o, &st))
        return GF_EXIT_OK;
    unsigned concurrency = concurrency_for(o, o->concurrency);
    struct gf_run_result res;
    if (run_once(o, &st, concurrency, 1, 1, prev, &res) != 0) {
        gf_state_close(&st);
        return GF_EXIT_CANNOT_START;
    }
    if (res.not_started) {
        gf_run_result_free(&res);
        gf_state_close(&st);
        return GF_EXIT_CANNOT_START;
    }

    /* The manifest first: the report may wait on a pipe that nobody reads
     * yet, and DIR must not wait with it. */
    int status = exit_status(&res);
    if (state_save(o, &st, &res) != 0 && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
    struct gf_summary sum = gf_run_summary(&res, o, concurrency);
    if (o->json) {
        char *json = gf_report_json(&sum);
        if (json) {
            gf_report_put_line(stdout, json);
            gf_free(json);
        } else {
            fprintf(stderr, "getflags: out of memory while writing the JSON summary\n");
        }
    } else if (!o->quiet) {
        gf_report_footer(stdout, &sum);
    }
    int lost = gf_report_output_check(stdout, "standard output", stderr) != 0;
    warn_if_nothing_found(o, &sum);
    if (lost && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
    gf_run_result_free(&res);
    gf_state_close(&st);
    return status;
}

/* Between two levels of --sweep: the next starts from the manifest the
 * last one saved. Returns 0, or 1 after saying why it cannot. */
static int next_level(const struct gf_options *o, struct gf_state *st,
                      const struct gf_prev *const **prev)
{
    char msg[2 * PATH_MAX + 512]; /* room for two paths and the reason */
    int nomem = 0;
    if (gf_state_next_run(st, msg, sizeof msg) != 0) {
        fprintf(stderr, "getflags: %s\n", msg);
        return 1;
    }
    *prev = gf_state_prevs(st, (const gf_cc *)o->codes, o->ncodes, &nomem);
    if (nomem) {
        fprintf(stderr, "getflags: out of memory\n");
        return 1;
    }
    return 0;
}

/* --sweep: one full run per level, each with a fresh loop and so a fresh
 * connection pool, then one table. Each level is recorded in the manifest
 * and the next starts from DIR as it left it, as separate runs would: a
 * file a level wrote stays its code's, and a name it gave up is removed. */
static int sweep(struct gf_options *o)
{
    struct gf_sweep_row rows[GF_SWEEP_MAX];
    size_t n = 0;
    struct gf_state ses;
    const struct gf_prev *const *prev;
    int status = state_open(o, &ses, &prev);
    if (status >= 0)
        return status;
    if (nothing_to_retry(o, &ses))
        return GF_EXIT_OK;
    status = GF_EXIT_OK;
    for (size_t i = 0; i < o->nsweep; i++) {
        unsigned concurrency = concurrency_for(o, o->sweep[i]);
        struct gf_run_result res;
        if (run_once(o, &ses, concurrency, 0, 0, prev, &res) != 0) {
            gf_state_close(&ses);
            return GF_EXIT_CANNOT_START;
        }
        if (res.not_started) {
            gf_run_result_free(&res);
            status = GF_EXIT_CANNOT_START;
            break;
        }
        struct gf_summary sum = gf_run_summary(&res, o, concurrency);
        if (gf_sweep_row_from(&rows[n], &sum) == 0)
            n++;
        int st = exit_status(&res);
        int stopped = st == GF_EXIT_SIGINT || st == GF_EXIT_SIGTERM || st == GF_EXIT_SIGHUP;
        int last = i + 1 == o->nsweep || stopped;
        /* A level whose manifest cannot be written (a full disk) ends the
         * sweep: the next one would change what it does not record. */
        int unsaved = state_save(o, &ses, &res) != 0;
        if (unsaved && st == GF_EXIT_OK)
            st = GF_EXIT_ERRORS;
        gf_run_result_free(&res);
        if (st != GF_EXIT_OK)
            status = st;
        if (stopped || unsaved)
            break;
        if (!last && next_level(o, &ses, &prev) != 0) {
            status = GF_EXIT_ERRORS;
            break;
        }
    }
    gf_state_close(&ses);
    if (o->json) {
        char *json = gf_sweep_json(rows, n);
        if (json) {
            gf_report_put_line(stdout, json);
            gf_free(json);
        }
    } else if (!o->quiet) {
        gf_sweep_table(stdout, rows, n);
    }
    return status; /* main() flushes stdout, and says if that fails */
}

/* libuv's threadpool does the saves: unless the user set
 * UV_THREADPOOL_SIZE, it gets the threads they want (gf/saver.h). */
static void size_threadpool(const struct gf_options *o)
{
    const char *env = getenv("UV_THREADPOOL_SIZE");
    if (env && *env)
        return;
    char v[16];
    snprintf(v, sizeof v, "%u", gf_saver_threads(o->outdir, o->ncodes));
    setenv("UV_THREADPOOL_SIZE", v, 1);
}

/* What the run needs of the process, decided before DIR is touched: a
 * threadpool that can start, room for at least one request under the
 * open-file limit, and a usable --cacert (read once, for every run).
 * Returns -1 to go on, else the exit status. */
static int preflight(const struct gf_options *o)
{
    char msg[PATH_MAX + 512];
    if (gf_tls_init(&tls, o->cacert, NULL, msg, sizeof msg) != 0) {
        fputs(msg, stderr);
        return GF_EXIT_CANNOT_START;
    }
    size_threadpool(o);
    int n = gf_setup_threadpool(msg, sizeof msg);
    if (n < 0) {
        fprintf(stderr, "getflags: %s\n", msg);
        return GF_EXIT_CANNOT_START;
    }
    /* The largest level this run will ask for. --retry-failed picks its
     * codes later, from the manifest: up to every code there can be (or
     * -l), not the 20 of the default list. */
    unsigned want = o->concurrency;
    for (size_t i = 0; i < o->nsweep; i++)
        if (o->sweep[i] > want || i == 0)
            want = o->sweep[i];
    size_t ncodes = o->ncodes;
    if (o->retry_failed)
        ncodes = o->limit > 0 && o->limit < GF_CODES_MAX ? o->limit : GF_CODES_MAX;
    if (want > ncodes)
        want = (unsigned)ncodes;
    fd_fit = gf_setup_fit_concurrency(want > 0 ? want : 1, (unsigned)n, msg, sizeof msg);
    if (msg[0])
        fputs(msg, stderr);
    if (fd_fit == 0)
        return GF_EXIT_CANNOT_START;
    return -1;
}

int main(int argc, char **argv)
{
    static struct gf_options opts; /* large: keep it off the stack */
    char err[512];

    /* Before anything opens a file: with stdout closed, the lock file
     * would become descriptor 1 and receive the report. */
    if (gf_setup_std_fds() != 0)
        return GF_EXIT_CANNOT_START;
    gf_setup_signals();

    /* A closed stdout (| head -c1) must not kill a run half-way. */
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must fail one save (EFBIG), not kill the run. */
    signal(SIGXFSZ, SIG_IGN);

#ifdef GF_TORTURE
    /* Test build only: GF_FAIL_ALLOC_AT=N fails the Nth allocation. */
    const char *fail_at = getenv("GF_FAIL_ALLOC_AT");
    if (fail_at)
        gf_alloc_fail_at(strtoul(fail_at, NULL, 10));
#endif
    if (gf_cli_parse(argc, argv, &opts, err, sizeof err) != 0) {
        fprintf(stderr, "*** Usage error: %s\n%s", err, gf_cli_usage());
        return GF_EXIT_USAGE;
    }
    if (opts.show_help || opts.show_version) {
        if (opts.show_help)
            fputs(gf_cli_help(), stdout);
        else
            print_version();
        gf_options_free(&opts);
        /* As for a report: text that did not reach its reader is an error. */
        return gf_report_output_check(stdout, "standard output", stderr) == 0 ? GF_EXIT_OK
                                                                              : GF_EXIT_ERRORS;
    }
    if (gf_alloc_install(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "getflags: cannot initialise libcurl\n");
        gf_options_free(&opts);
        return GF_EXIT_CANNOT_START;
    }

    int status = preflight(&opts);
    if (status < 0)
        status = opts.nsweep > 0 ? sweep(&opts) : download(&opts);
    /* Stopped before a run could start (e.g. while waiting for the lock),
     * or after it ended (while its report or manifest was written). */
    if (gf_early_signal && status != GF_EXIT_SIGINT && status != GF_EXIT_SIGTERM &&
        status != GF_EXIT_SIGHUP)
        status = gf_early_signal == SIGINT    ? GF_EXIT_SIGINT
                 : gf_early_signal == SIGTERM ? GF_EXIT_SIGTERM
                                              : GF_EXIT_SIGHUP;
    if (gf_alloc_failures() > 0) {
        /* Whatever was lost to it, a run that ran out of memory is not a
         * clean run. */
        fprintf(stderr, "getflags: out of memory during the run\n");
        if (status == GF_EXIT_OK)
            status = GF_EXIT_ERRORS;
    }
    /* A report or summary lost to a full disk or a broken pipe is not a
     * clean run; stderr is checked too, for the lines -v --json sends it. */
    if (gf_report_output_check(stdout, "standard output", stderr) != 0 && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
    if (gf_report_output_check(stderr, "standard error", NULL) != 0 && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
#ifdef GF_TORTURE
    fprintf(stderr, "torture: %lu allocations, %lu failed\n", gf_alloc_count(),
            gf_alloc_failures());
#endif
    gf_tls_free(&tls);
    curl_global_cleanup();
    gf_options_free(&opts);
#ifndef __SANITIZE_ADDRESS__
    /* Every file is closed and in place, and the reports are flushed and
     * checked above. What exit() would still do is the libraries' own
     * cleanup: OpenSSL freeing its tables, libuv waking and joining its
     * idle threadpool threads, the destructors of some thirty libraries.
     * The kernel takes all of that back anyway, and it costs about 1.5 ms
     * of every run (bench B1). AddressSanitizer builds exit normally, for
     * LeakSanitizer's check at exit. */
    _exit(status);
#else
    return status;
#endif
}
