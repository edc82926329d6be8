/* The command line: getopt_long over argv into a gf_options value. */
#include "gf/alloc.h"
#include "gf/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gf/error.h"
#include "gf/names.h"

#define GF_CONCURRENCY_MAX 100000u
#define GF_LIMIT_MAX 1000000u
#define GF_RETRIES_MAX 100u
#define GF_TIMEOUT_MAX_S 86400u
#define GF_MAX_SIZE_MAX (4ull * 1024 * 1024 * 1024)

#define USAGE_TEXT                                                                                 \
    "usage: getflags [-h] [-a] [-e] [-l N] [-m CONCURRENT] [-s LABEL|URL] [-v] [-q] [-o DIR] "     \
    "[--timeout SECONDS] [--cacert FILE] [--json] [--version] [--retries N] [--max-size BYTES] "   \
    "[--sweep LIST] [--rate N] [--update] [--retry-failed] [--wait-lock] [CC ...]\n"

static const struct {
    const char *label;
    const char *url;
} servers[] = {
    {"LOCAL", "http://localhost:8000/flags"},
    {"REMOTE", "https://www.fluentpython.com/data/flags"},
    {"DELAY", "http://localhost:8001/flags"},
    {"ERROR", "http://localhost:8002/flags"},
};

/* Long-only options get values past any char, so that getopt's optopt
 * tells them apart from short options in error reports. */
enum {
    OPT_HELP = 256,
    OPT_VERSION,
    OPT_TIMEOUT,
    OPT_CACERT,
    OPT_JSON,
    OPT_RETRIES,
    OPT_MAX_SIZE,
    OPT_SWEEP,
    OPT_RATE,
    OPT_UPDATE,
    OPT_RETRY_FAILED,
    OPT_WAIT_LOCK,
};

static const struct option long_options[] = {
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"json", no_argument, NULL, OPT_JSON},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
    {"sweep", required_argument, NULL, OPT_SWEEP},
    {"rate", required_argument, NULL, OPT_RATE},
    {"update", no_argument, NULL, OPT_UPDATE},
    {"retry-failed", no_argument, NULL, OPT_RETRY_FAILED},
    {"wait-lock", no_argument, NULL, OPT_WAIT_LOCK},
    {NULL, 0, NULL, 0},
};

/* Leading '-': non-options come back in order as option 1, so argv is
 * never permuted and POSIXLY_CORRECT changes nothing. ':' makes a missing
 * value return ':' instead of '?', and silences getopt. */
static const char short_options[] = "-:hael:m:s:vqo:";

/* Parsing goes on after an error so that a later -h still wins; only the
 * first error is reported. */
struct parse_state {
    char *err;
    size_t errsz;
    int failed;
};

/* Drops a UTF-8 sequence left incomplete at the end of s by a cut. */
static void trim_partial_utf8(char *s)
{
    size_t len = strlen(s), start = len, need;
    unsigned char lead;

    while (start > 0 && len - start < 4 && ((unsigned char)s[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    lead = (unsigned char)s[start - 1];
    if (lead < 0xC0)
        return; /* ASCII, or stray continuation bytes: nothing to complete */
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (len - (start - 1) < need)
        s[start - 1] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
fail(struct parse_state *st, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (st->failed)
        return;
    st->failed = 1;
    if (st->err != NULL && st->errsz > 0) {
        va_start(ap, fmt);
        n = vsnprintf(st->err, st->errsz, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n >= st->errsz)
            trim_partial_utf8(st->err);
    }
}

/* User text quoted in a message, with control bytes made visible. */
static const char *shown(const char *s, char *buf, size_t bufsz)
{
    return gf_escape_for_print(s, strlen(s), buf, bufsz);
}

static const char *option_name(int opt, char *buf, size_t bufsz)
{
    size_t i;

    for (i = 0; long_options[i].name != NULL; i++)
        if (long_options[i].val == opt) {
            snprintf(buf, bufsz, "--%s", long_options[i].name);
            return buf;
        }
    if (opt > 0 && opt < 256)
        snprintf(buf, bufsz, "-%c", opt);
    else
        snprintf(buf, bufsz, "(unknown)");
    return buf;
}

/* Strict decimal: digits only, no sign, no white space, no overflow. */
static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned long long d = (unsigned long long)(*s - '0');
        /* v * 10 + d <= max, written so that nothing wraps. */
        if (d > max || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Returns 0 with *out set, or -1 after recording the error. */
static int parse_ranged(struct parse_state *st, const char *name, const char *arg,
                        unsigned long long min, unsigned long long max, unsigned long long *out)
{
    char buf[128];

    if (parse_uint(arg, max, out) == 0 && *out >= min)
        return 0;
    fail(st, "argument %s: must be an integer from %llu to %llu, got '%s'", name, min, max,
         shown(arg, buf, sizeof buf));
    return -1;
}

/* Seconds as digits with an optional fraction ("10", "0.5", ".5"), turned
 * into milliseconds exactly, rounding up so that no positive value
 * becomes 0 ms. strtod is avoided: it takes "inf", "nan", hex and
 * exponents. */
/* A positive decimal number (no sign, no exponent, no hex) of at most max. */
static int parse_positive(const char *s, double max, double *out)
{
    const char *p = s;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        digits++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits++;
    if (*p != '\0' || digits == 0)
        return -1;
    double v = strtod(s, NULL);
    if (!(v > 0) || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_timeout(const char *s, uint64_t *ms)
{
    uint64_t whole = 0, frac = 0, total;
    int digits = 0, nfrac = 0, round_up = 0;

    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        whole = whole * 10 + (uint64_t)(*s - '0');
        if (whole > GF_TIMEOUT_MAX_S)
            return -1;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            if (nfrac < 3) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                nfrac++;
            } else if (*s != '0') {
                round_up = 1;
            }
        }
    }
    if (*s != '\0' || digits == 0)
        return -1;
    for (; nfrac < 3; nfrac++)
        frac *= 10;
    total = whole * 1000 + frac + (uint64_t)round_up;
    if (total == 0 || total > (uint64_t)GF_TIMEOUT_MAX_S * 1000)
        return -1;
    *ms = total;
    return 0;
}

/* Bytes with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
    char digits[32];
    size_t n = strlen(s);
    unsigned long long v, mult = 1;

    if (n > 0) {
        switch (s[n - 1]) {
        case 'K':
        case 'k':
            mult = 1024;
            break;
        case 'M':
        case 'm':
            mult = 1024 * 1024;
            break;
        case 'G':
        case 'g':
            mult = 1024 * 1024 * 1024;
            break;
        }
    }
    if (mult != 1)
        n--;
    if (n == 0 || n >= sizeof digits)
        return -1;
    memcpy(digits, s, n);
    digits[n] = '\0';
    if (parse_uint(digits, GF_MAX_SIZE_MAX / mult, &v) != 0 || v == 0)
        return -1;
    *out = v * mult;
    return 0;
}

static int parse_sweep(const char *s, struct gf_options *opts)
{
    unsigned levels[GF_SWEEP_MAX];
    size_t n = 0;

    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
        char item[16];
        unsigned long long v;

        if (len == 0 || len >= sizeof item || n == GF_SWEEP_MAX)
            return -1;
        memcpy(item, s, len);
        item[len] = '\0';
        if (parse_uint(item, GF_CONCURRENCY_MAX, &v) != 0 || v == 0)
            return -1;
        levels[n++] = (unsigned)v;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    memcpy(opts->sweep, levels, n * sizeof levels[0]);
    opts->nsweep = n;
    return 0;
}

/* An http:// or https:// URL with a host, in printable ASCII (a
 * non-ASCII host can be given in its punycode form). */
static int valid_base_url(const char *s)
{
    const char *host, *p;

    if (strncasecmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return 0;
    if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
        return 0;
    for (p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F)
            return 0;
    return 1;
}

static int set_server(struct gf_options *opts, const char *arg)
{
    size_t i, len;

    for (i = 0; i < sizeof servers / sizeof servers[0]; i++)
        if (strcasecmp(arg, servers[i].label) == 0) {
            gf_free(opts->base_url);
            opts->base_url = gf_strdup(servers[i].url);
            opts->server_label = servers[i].label;
            return opts->base_url != NULL ? 0 : GF_ENOMEM;
        }
    if (!valid_base_url(arg))
        return GF_EUSAGE;
    len = strlen(arg);
    while (len > 0 && arg[len - 1] == '/')
        len--;
    gf_free(opts->base_url);
    opts->base_url = strndup(arg, len);
    opts->server_label = "URL";
    return opts->base_url != NULL ? 0 : GF_ENOMEM;
}

static void set_defaults(struct gf_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->server_label = servers[0].label;
    opts->concurrency = GF_DEFAULT_CONCURRENCY;
    opts->outdir = GF_DEFAULT_OUTDIR;
    opts->timeout_ms = GF_DEFAULT_TIMEOUT_MS;
    opts->retries = GF_DEFAULT_RETRIES;
    opts->max_size = GF_DEFAULT_MAX_SIZE;
}

int gf_cli_parse(int argc, char **argv, struct gf_options *opts, char *err, size_t errsz)
{
    struct parse_state st = {err, errsz, 0};
    struct gf_codeset set;
    int all = 0, every = 0, any_code = 0, opt, rc;
    unsigned long long v;
    char buf[128], name[32];

    set_defaults(opts);
    gf_codeset_clear(&set);
    if (err != NULL && errsz > 0)
        err[0] = '\0';

    /* optind = 0 makes glibc reinitialise getopt completely, including the
     * position inside a group of short options left by an earlier call. */
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        switch (opt) {
        case 1: /* a CC argument */
            any_code = 1;
            if (gf_codeset_add_arg(&set, optarg, buf, sizeof buf) != 0)
                fail(&st, "%s", buf);
            break;
        case 'h':
        case OPT_HELP:
            opts->show_help = 1;
            break;
        case OPT_VERSION:
            opts->show_version = 1;
            break;
        case 'a':
            all = 1;
            break;
        case 'e':
            every = 1;
            break;
        case 'l':
            if (parse_ranged(&st, "-l", optarg, 1, GF_LIMIT_MAX, &v) == 0)
                opts->limit = (size_t)v;
            break;
        case 'm':
            if (strcasecmp(optarg, "auto") == 0) {
                opts->concurrency_auto = 1;
                opts->concurrency = GF_CONCURRENCY_MAX;
            } else if (parse_ranged(&st, "-m", optarg, 1, GF_CONCURRENCY_MAX, &v) == 0) {
                opts->concurrency_auto = 0;
                opts->concurrency = (unsigned)v;
            }
            break;
        case 's':
            rc = set_server(opts, optarg);
            if (rc == GF_ENOMEM) {
                gf_free(opts->base_url);
                opts->base_url = NULL;
                return GF_ENOMEM;
            }
            if (rc != 0)
                fail(&st,
                     "argument -s: must be LOCAL, REMOTE, DELAY, ERROR or an http:// or "
                     "https:// URL, got '%s'",
                     shown(optarg, buf, sizeof buf));
            break;
        case 'v':
            opts->verbose = 1;
            break;
        case 'q':
            opts->quiet = 1;
            break;
        case 'o':
            if (optarg[0] == '\0')
                fail(&st, "argument -o: must not be empty");
            opts->outdir = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_timeout(optarg, &opts->timeout_ms) != 0)
                fail(&st,
                     "argument --timeout: must be a number of seconds above 0 and at most "
                     "%u, got '%s'",
                     GF_TIMEOUT_MAX_S, shown(optarg, buf, sizeof buf));
            break;
        case OPT_CACERT:
            if (optarg[0] == '\0')
                fail(&st, "argument --cacert: must not be empty");
            opts->cacert = optarg;
            break;
        case OPT_JSON:
            opts->json = 1;
            break;
        case OPT_RETRIES:
            if (parse_ranged(&st, "--retries", optarg, 0, GF_RETRIES_MAX, &v) == 0)
                opts->retries = (unsigned)v;
            break;
        case OPT_MAX_SIZE:
            if (parse_size(optarg, &opts->max_size) != 0)
                fail(&st,
                     "argument --max-size: must be a positive number of bytes, optionally "
                     "followed by K, M or G, at most 4G, got '%s'",
                     shown(optarg, buf, sizeof buf));
            break;
        case OPT_RATE:
            if (parse_positive(optarg, GF_RATE_MAX, &opts->rate) != 0)
                fail(&st,
                     "argument --rate: must be a number of requests per second above 0 and at "
                     "most %.0f, got '%s'",
                     GF_RATE_MAX, shown(optarg, buf, sizeof buf));
            break;
        case OPT_UPDATE:
            opts->update = 1;
            break;
        case OPT_RETRY_FAILED:
            opts->retry_failed = 1;
            break;
        case OPT_WAIT_LOCK:
            opts->wait_lock = 1;
            break;
        case OPT_SWEEP:
            if (parse_sweep(optarg, opts) != 0)
                fail(&st,
                     "argument --sweep: must be a comma-separated list of at most %d "
                     "integers from 1 to %u, got '%s'",
                     GF_SWEEP_MAX, GF_CONCURRENCY_MAX, shown(optarg, buf, sizeof buf));
            break;
        case ':':
            fail(&st, "option %s needs a value", option_name(optopt, name, sizeof name));
            break;
        default: /* '?' */
            if (optopt >= 256) {
                /* A long option given a value it does not take. */
                fail(&st, "option %s does not take a value",
                     option_name(optopt, name, sizeof name));
            } else if (optopt != 0) {
                buf[0] = (char)optopt;
                buf[1] = '\0';
                fail(&st, "unknown option '-%s'", shown(buf, name, sizeof name));
            } else {
                /* getopt has moved past the unknown or ambiguous long option. */
                fail(&st, "unknown option '%s'",
                     optind > 0 && optind <= argc ? shown(argv[optind - 1], buf, sizeof buf) : "?");
            }
            break;
        }
    }
    /* Whatever follows "--" is codes too. */
    for (; optind < argc; optind++) {
        any_code = 1;
        if (gf_codeset_add_arg(&set, argv[optind], buf, sizeof buf) != 0)
            fail(&st, "%s", buf);
    }

    if (opts->show_help || opts->show_version) {
        /* Help and version need nothing else to be valid. */
        if (err != NULL && errsz > 0)
            err[0] = '\0';
        st.failed = 0;
    } else if (opts->quiet && opts->verbose) {
        fail(&st, "-q and -v cannot be used together");
    } else if (opts->retry_failed && (any_code || all || every)) {
        fail(&st, "--retry-failed takes its codes from the last run: give no codes, -a or -e");
    } else if (opts->nsweep > 0 && opts->concurrency_auto) {
        fail(&st, "--sweep and -m auto cannot be used together");
    }
    if (st.failed) {
        gf_free(opts->base_url);
        opts->base_url = NULL;
        return GF_EUSAGE;
    }

    if (opts->base_url == NULL) {
        opts->base_url = gf_strdup(servers[0].url);
        if (opts->base_url == NULL)
            return GF_ENOMEM;
    }
    if (all)
        gf_codeset_add_all(&set);
    if (every)
        gf_codeset_add_every(&set);
    if (!any_code && !all && !every)
        gf_codeset_add_default(&set);
    opts->ncodes = gf_codeset_list(&set, opts->limit, opts->codes);
    return 0;
}

void gf_options_free(struct gf_options *opts)
{
    if (opts == NULL)
        return;
    gf_free(opts->base_url);
    opts->base_url = NULL;
}

const char *gf_cli_usage(void)
{
    return USAGE_TEXT;
}

const char *gf_cli_help(void)
{
    return USAGE_TEXT
        "\n"
        "Download flags for country codes. Default: top 20 countries by population.\n"
        "\n"
        "positional arguments:\n"
        "  CC                    country code or first letter (e.g. B for BA...BZ)\n"
        "\n"
        "options:\n"
        "  -h, --help            show this help message and exit\n"
        "  -a                    get all available flags (the 194 of\n"
        "                        flags_data/country_codes.txt)\n"
        "  -e                    get flags for every possible code (AA...ZZ)\n"
        "  -l N                  limit to N first codes\n"
        "  -m CONCURRENT         maximum concurrent requests (default=5), or auto to\n"
        "                        adapt to what the server sustains\n"
        "  -s LABEL|URL          server to hit: one of LOCAL, REMOTE, DELAY, ERROR,\n"
        "                        or a base URL starting with http:// or https://\n"
        "                        (default=LOCAL)\n"
        "  -v                    output detailed progress info\n"
        "  -q                    print only errors (cannot be used with -v)\n"
        "  -o DIR                directory to save flags in (default=./downloaded)\n"
        "  --timeout SECONDS     timeout of one request, fractions allowed, at most\n"
        "                        86400 (default=10)\n"
        "  --cacert FILE         CA certificates to verify HTTPS servers with\n"
        "  --json                print a JSON summary of the run instead of the report\n"
        "  --version             show the versions of getflags and its libraries and exit\n"
        "  --retries N           retries of a failed request, 0 to 100 (default=2)\n"
        "  --max-size BYTES      largest image accepted, with an optional K, M or G\n"
        "                        suffix (default=10M)\n"
        "  --sweep LIST          run once per concurrency level in the comma-separated\n"
        "                        LIST (e.g. 1,5,20) and report each run\n"
        "  --rate N              start at most N requests per second, fractions allowed\n"
        "  --update              send conditional requests for the flags of the last run\n"
        "                        in DIR and leave unchanged ones untouched\n"
        "  --retry-failed        only the codes that ended in error in the last run in DIR\n"
        "  --wait-lock           wait for another run on DIR to end instead of exiting 75\n"
        "\n"
        "servers:\n"
        "  LOCAL                 http://localhost:8000/flags\n"
        "  REMOTE                https://www.fluentpython.com/data/flags\n"
        "  DELAY                 http://localhost:8001/flags\n"
        "  ERROR                 http://localhost:8002/flags\n"
        "\n"
        "exit status:\n"
        "  0                     no code ended in error\n"
        "  1                     at least one code ended in error\n"
        "  2                     usage error\n"
        "  3                     the run cannot start\n"
        "  75                    another run holds DIR's lock (see --wait-lock)\n"
        "  129, 130, 143         interrupted by SIGHUP, SIGINT or SIGTERM\n";
}
