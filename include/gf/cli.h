/* The command line: getopt_long over argv into a gf_options value.
 * Nothing here touches the network or the disk. */
#ifndef GF_CLI_H
#define GF_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "gf/codes.h"

#define GF_DEFAULT_CONCURRENCY 5
#define GF_DEFAULT_TIMEOUT_MS 10000
#define GF_DEFAULT_RETRIES 2
#define GF_DEFAULT_MAX_SIZE (10u * 1024 * 1024)
#define GF_DEFAULT_OUTDIR "./downloaded"
#define GF_SWEEP_MAX 32
#define GF_RATE_MAX 100000.0

enum gf_http_version { GF_HTTP_AUTO = 0, GF_HTTP_1_1, GF_HTTP_2 };

struct gf_options {
    /* "LOCAL", "REMOTE", "DELAY", "ERROR", or "URL" for a base URL given
     * with -s. Points to static storage. */
    const char *server_label;
    /* Base URL without trailing '/', as requests use it: with any
     * credentials. Both URLs are owned by the options (see gf_options_free). */
    char *base_url;
    char *base_url_display; /* base_url without its password: for messages, reports, JSON and the
                               manifest */

    unsigned concurrency;         /* -m as given; at least 1 */
    int concurrency_auto;         /* -m auto: adaptive, concurrency is then the upper bound */
    size_t limit;                 /* -l; 0 when not given */
    int verbose;                  /* -v */
    int quiet;                    /* -q */
    int json;                     /* --json */
    int show_help;                /* -h: print help, exit 0 */
    int show_version;             /* --version: print versions, exit 0 */
    const char *outdir;           /* -o; points into argv or to GF_DEFAULT_OUTDIR */
    uint64_t timeout_ms;          /* --timeout, per request */
    const char *cacert;           /* --cacert; NULL when not given */
    unsigned retries;             /* --retries */
    uint64_t max_size;            /* --max-size in bytes: cap on one image */
    unsigned sweep[GF_SWEEP_MAX]; /* --sweep m1,m2,...: concurrency levels */
    size_t nsweep;                /* 0 when --sweep is not given */
    double rate;                  /* --rate: request starts per second; 0 = no limit */
    int update;                   /* --update: conditional GETs from the manifest */
    int retry_failed;             /* --retry-failed: the codes that failed last time */
    int wait_lock;                /* --wait-lock: wait for another run on DIR */
    gf_cc codes[GF_CODES_MAX];    /* selected codes, sorted, after -l */
    size_t ncodes;

    enum gf_http_version http_version; /* --http1.1 / --http2; GF_HTTP_AUTO: ALPN decides */
};

/* Parses argv. On success returns 0 with *opts filled in (free it with
 * gf_options_free). On a usage error returns GF_EUSAGE with a one-line
 * description in err (without the "*** Usage error: " prefix) and leaves
 * nothing to free. Resets getopt's state, so it may be called repeatedly. */
int gf_cli_parse(int argc, char **argv, struct gf_options *opts, char *err, size_t errsz);

/* Frees what gf_cli_parse() allocated in opts. Safe on NULL and twice. */
void gf_options_free(struct gf_options *opts);

/* The one-line "usage: getflags [-h] ..." text, with a trailing newline. */
const char *gf_cli_usage(void);
/* The full --help text. */
const char *gf_cli_help(void);

#endif
