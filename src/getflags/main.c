/* getflags: downloads country flags concurrently. See README.md. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "gf/alloc.h"
#include "gf/cli.h"
#include "gf/error.h"
#include "gf/report.h"
#include "gf/run.h"
#include "gf/sweep.h"

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
    return res->error > 0 ? GF_EXIT_ERRORS : GF_EXIT_OK;
}

/* The concurrency to use for a level: at most one request per code, and
 * what the open-file limit allows. */
static unsigned concurrency_for(const struct gf_options *o, unsigned m)
{
    char msg[256];
    unsigned want = m < o->ncodes ? m : (unsigned)o->ncodes;
    if (want == 0)
        want = 1;
    unsigned fit = gf_run_fit_concurrency(want, msg, sizeof msg);
    if (msg[0])
        fputs(msg, stderr);
    return fit;
}

struct header_args {
    const struct gf_options *o;
    unsigned concurrency;
};

static void print_header(void *arg)
{
    const struct header_args *h = arg;
    const struct gf_options *o = h->o;
    if (o->quiet || o->json)
        return;
    gf_report_header(stdout, o->server_label, o->base_url, o->codes, o->ncodes, h->concurrency);
    fflush(stdout);
}

static int run_once(const struct gf_options *o, unsigned concurrency, int header, int progress,
                    struct gf_run_result *res)
{
    char err[512];
    struct header_args h = {o, concurrency};
    struct gf_run_config cfg = {
        .on_start = header ? print_header : NULL,
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
    return rc;
}

static int download(const struct gf_options *o)
{
    unsigned concurrency = concurrency_for(o, o->concurrency);
    struct gf_run_result res;
    if (run_once(o, concurrency, 1, 1, &res) != 0)
        return GF_EXIT_CANNOT_START;

    struct gf_summary sum = gf_run_summary(&res, o, concurrency);
    if (o->json) {
        char *json = gf_report_json(&sum);
        if (json) {
            puts(json);
            gf_free(json);
        } else {
            fprintf(stderr, "getflags: out of memory while writing the JSON summary\n");
        }
    } else if (!o->quiet) {
        gf_report_footer(stdout, &sum);
    }
    fflush(stdout);
    int status = exit_status(&res);
    gf_run_result_free(&res);
    return status;
}

/* --sweep: one full run per level, each with a fresh loop and so a fresh
 * connection pool, then one table. */
static int sweep(const struct gf_options *o)
{
    struct gf_sweep_row rows[GF_SWEEP_MAX];
    size_t n = 0;
    int status = GF_EXIT_OK;
    for (size_t i = 0; i < o->nsweep; i++) {
        unsigned concurrency = concurrency_for(o, o->sweep[i]);
        struct gf_run_result res;
        if (run_once(o, concurrency, 0, 0, &res) != 0)
            return GF_EXIT_CANNOT_START;
        struct gf_summary sum = gf_run_summary(&res, o, concurrency);
        if (gf_sweep_row_from(&rows[n], &sum) == 0)
            n++;
        int st = exit_status(&res);
        gf_run_result_free(&res);
        if (st != GF_EXIT_OK)
            status = st;
        if (st == GF_EXIT_SIGINT || st == GF_EXIT_SIGTERM)
            break;
    }
    if (o->json) {
        char *json = gf_sweep_json(rows, n);
        if (json) {
            puts(json);
            gf_free(json);
        }
    } else if (!o->quiet) {
        gf_sweep_table(stdout, rows, n);
    }
    fflush(stdout);
    return status;
}

int main(int argc, char **argv)
{
    static struct gf_options opts; /* large: keep it off the stack */
    char err[512];

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
    if (opts.show_help) {
        fputs(gf_cli_help(), stdout);
        gf_options_free(&opts);
        return GF_EXIT_OK;
    }
    if (opts.show_version) {
        print_version();
        gf_options_free(&opts);
        return GF_EXIT_OK;
    }
    if (gf_alloc_install(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "getflags: cannot initialise libcurl\n");
        gf_options_free(&opts);
        return GF_EXIT_CANNOT_START;
    }

    int status = opts.nsweep > 0 ? sweep(&opts) : download(&opts);
    if (gf_alloc_failures() > 0) {
        /* Whatever was lost to it, a run that ran out of memory is not a
         * clean run. */
        fprintf(stderr, "getflags: out of memory during the run\n");
        if (status == GF_EXIT_OK)
            status = GF_EXIT_ERRORS;
    }
#ifdef GF_TORTURE
    fprintf(stderr, "torture: %lu allocations, %lu failed\n", gf_alloc_count(),
            gf_alloc_failures());
#endif
    curl_global_cleanup();
    gf_options_free(&opts);
    return status;
}
