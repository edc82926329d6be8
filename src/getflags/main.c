/* getflags: downloads country flags concurrently. See README.md. */
#include <cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "gf/cli.h"
#include "gf/error.h"
#include "gf/report.h"
#include "gf/run.h"

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

int main(int argc, char **argv)
{
    static struct gf_options opts; /* large: keep it off the stack */
    char err[512];

    /* A closed stdout (| head -c1) must not kill a run half-way. */
    signal(SIGPIPE, SIG_IGN);

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
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "getflags: cannot initialise libcurl\n");
        gf_options_free(&opts);
        return GF_EXIT_CANNOT_START;
    }

    unsigned want = opts.concurrency < opts.ncodes ? opts.concurrency : (unsigned)opts.ncodes;
    if (want == 0)
        want = 1;
    unsigned concurrency = gf_run_fit_concurrency(want, err, sizeof err);
    if (err[0])
        fputs(err, stderr);

    int text = !opts.quiet && !opts.json;
    if (text) {
        gf_report_header(stdout, opts.server_label, opts.base_url, opts.codes, opts.ncodes,
                         concurrency);
        fflush(stdout);
    }

    struct gf_run_config cfg = {
        .opts = &opts,
        .concurrency = concurrency,
        .verbose = opts.verbose ? (opts.json ? stderr : stdout) : NULL,
        .errors = stderr,
        .progress = !opts.verbose && !opts.quiet && isatty(STDERR_FILENO),
    };
    struct gf_run_result res;
    int rc = gf_run(&cfg, &res, err, sizeof err);
    if (rc != 0) {
        fputs(err, stderr);
        curl_global_cleanup();
        gf_options_free(&opts);
        return GF_EXIT_CANNOT_START;
    }

    struct gf_summary sum = gf_run_summary(&res, &opts, concurrency);
    if (opts.json) {
        char *json = gf_report_json(&sum);
        if (json) {
            puts(json);
            free(json);
        } else {
            fprintf(stderr, "getflags: out of memory while writing the JSON summary\n");
        }
    } else if (!opts.quiet) {
        gf_report_footer(stdout, &sum);
    }
    fflush(stdout);
    int status = exit_status(&res);
    gf_run_result_free(&res);
    curl_global_cleanup();
    gf_options_free(&opts);
    return status;
}
