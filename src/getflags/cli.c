/* The command line: getopt_long over argv into a gf_options value. */
#include "gf/alloc.h"
#include "gf/cli.h"

#include <ctype.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gf/error.h"
#include "gf/text.h"
#include "gf/ratelimit.h"

#define GF_CONCURRENCY_MAX 100000u
#define GF_LIMIT_MAX 1000000u
#define GF_RETRIES_MAX 100u
#define GF_TIMEOUT_MAX_S 86400u
#define GF_MAX_SIZE_MAX (4ull * 1024 * 1024 * 1024)

#define USAGE_TEXT                                                                                 \
    "usage: getflags [-h] [-a] [-e] [-l N] [-m CONCURRENT] [-s LABEL|URL] [-v] [-q] [-o DIR] "     \
    "[--timeout SECONDS] [--cacert FILE] [--json] [--version] [--retries N] [--max-size BYTES] "   \
    "[--sweep LIST] [--rate N] [--update] [--retry-failed] [--wait-lock] [--http1.1] [--http2] "   \
    "[CC ...]\n"

static const struct {
    const char *label;
    const char *url;
} servers[] = {
    {"LOCAL", "http://localhost:8000/flags"},
    {"REMOTE", "https://www.fluentpython.com/data/flags"},
    {"DELAY", "http://localhost:8001/flags"},
    {"ERROR", "http://localhost:8002/flags"},
};

/* Long-only options get values past any char. Each value has one long
 * name at most, so that a value names its option in messages. */
enum {
    OPT_VERSION = 256,
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
    OPT_HTTP1_1,
    OPT_HTTP2,
};

/* The long names of the flags2 scripts (argparse: -a/--all, -m/--max_req...)
 * and getflags' own. getopt_long takes any unambiguous prefix and an exact
 * name before a prefix; no name here is a prefix of another. */
static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"all", no_argument, NULL, 'a'},
    {"every", no_argument, NULL, 'e'},
    {"limit", required_argument, NULL, 'l'},
    {"max_req", required_argument, NULL, 'm'},
    {"server", required_argument, NULL, 's'},
    {"verbose", no_argument, NULL, 'v'},
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
    {"http1.1", no_argument, NULL, OPT_HTTP1_1},
    {"http2", no_argument, NULL, OPT_HTTP2},
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

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
fail(struct parse_state *st, const char *fmt, ...)
{
    va_list ap;

    if (st->failed)
        return;
    st->failed = 1;
    va_start(ap, fmt);
    gf_verrorf(st->err, st->errsz, fmt, ap);
    va_end(ap);
}

/* User text quoted in a message, with control bytes made visible. */
static const char *shown(const char *s, char *buf, size_t bufsz)
{
    return gf_escape_for_print(s, strlen(s), buf, bufsz);
}

static const char *long_name(int opt)
{
    for (size_t i = 0; long_options[i].name != NULL; i++)
        if (long_options[i].val == opt)
            return long_options[i].name;
    return NULL;
}

/* An option in a value's error message, both forms as argparse shows
 * them: "-l/--limit", "--timeout", "-o". */
static const char *arg_name(int opt, char *buf, size_t bufsz)
{
    const char *name = long_name(opt);

    if (opt < 256 && name != NULL)
        snprintf(buf, bufsz, "-%c/--%s", opt, name);
    else if (name != NULL)
        snprintf(buf, bufsz, "--%s", name);
    else
        snprintf(buf, bufsz, "-%c", opt);
    return buf;
}

/* Records the error of a long option getopt_long did not accept: typed is
 * the argument as given ("--re=5"). Ambiguity is decided as getopt_long
 * decides it: an exact name wins, otherwise more than one name starting
 * with what was typed is ambiguous. */
static void bad_long_option(struct parse_state *st, const char *typed)
{
    const char *name = typed + 2;
    size_t len = strcspn(name, "="), n = 0, i;
    char list[512] = "", buf[128];
    size_t used = 0;

    for (i = 0; long_options[i].name != NULL; i++) {
        if (strncmp(long_options[i].name, name, len) != 0)
            continue;
        if (long_options[i].name[len] == '\0') {
            n = 0; /* an exact name is never ambiguous */
            break;
        }
        int k = snprintf(list + used, sizeof list - used, "%s--%s", n > 0 ? ", " : "",
                         long_options[i].name);
        if (k > 0 && (size_t)k < sizeof list - used)
            used += (size_t)k;
        n++;
    }
    if (n > 1) {
        char prefix[64];
        /* What was typed without its value, which is not the problem. */
        snprintf(prefix, sizeof prefix, "%.*s", (int)(len + 2 < sizeof prefix ? len + 2 : 60),
                 typed);
        fail(st, "ambiguous option '%s' (could be %s)", shown(prefix, buf, sizeof buf), list);
    } else {
        fail(st, "unknown option '%s'", shown(typed, buf, sizeof buf));
    }
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
static int parse_ranged(struct parse_state *st, int opt, const char *arg, unsigned long long min,
                        unsigned long long max, unsigned long long *out)
{
    char buf[128], name[64];

    if (parse_uint(arg, max, out) == 0 && *out >= min)
        return 0;
    fail(st, "argument %s: must be an integer from %llu to %llu, got '%s'",
         arg_name(opt, name, sizeof name), min, max, shown(arg, buf, sizeof buf));
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

/* What keeps s from being an http:// or https:// URL with a host, in
 * printable ASCII: NULL when nothing does. */
static const char *base_url_problem(const char *s)
{
    static const char not_url[] = "must be LOCAL, REMOTE, DELAY, ERROR or an http:// or https:// "
                                  "URL";
    const char *host, *p;
    size_t len = strlen(s);

    if (len > 0 && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[len - 1]))) {
        while (isspace((unsigned char)*s))
            s++;
        return strncasecmp(s, "http", 4) == 0 ? "a base URL cannot start or end with spaces"
                                              : not_url;
    }
    if (strncasecmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return not_url;
    if (*host == '\0' || *host == '/' || *host == '?' || *host == '#')
        return "a base URL needs a host after '//'";
    for (p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F)
            return "a base URL cannot have spaces, control characters or non-ASCII bytes "
                   "(percent-encode them, e.g. %20; a non-ASCII host in its punycode form, "
                   "xn--...)";
    return NULL;
}

/* Copies url into out (at least strlen(url) + 1 bytes) without the
 * password of its userinfo: "http://user:pw@host/x" becomes
 * "http://user@host/x", and "http://:pw@host/x" "http://host/x". The
 * userinfo is taken up to the last '@' before the first '/' after "://",
 * so that even a URL libcurl refuses is shown without what looks like a
 * password. For a URL libcurl accepts this is its own cut (its host cannot
 * hold an '@'), which check_url makes sure of. */
static void strip_password(const char *url, char *out)
{
    const char *auth = strstr(url, "://"), *at = NULL, *colon, *p;
    size_t len = strlen(url);

    memcpy(out, url, len + 1);
    if (auth == NULL)
        return;
    auth += 3;
    for (p = auth; *p != '\0' && *p != '/'; p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return;
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL)
        return;
    if (colon == auth) /* no user name: drop the whole userinfo */
        at++;
    memcpy(out + (colon - url), at, len - (size_t)(at - url) + 1);
}

/* For a usage error: arg without its password, control bytes escaped.
 * An '@' left past the authority may end a password that holds a '/'
 * (a URL libcurl refuses): then all before the last '@' is hidden. */
static const char *shown_url(const char *arg, char *buf, size_t bufsz)
{
    char plain[1024];
    const char *auth, *slash, *at;

    if (strlen(arg) + 3 >= sizeof plain) { /* room for the "..." */
        snprintf(buf, bufsz, "(a URL of %zu bytes)", strlen(arg));
        return buf;
    }
    strip_password(arg, plain);
    auth = strstr(plain, "://");
    slash = auth != NULL ? strchr(auth + 3, '/') : NULL;
    at = strrchr(plain, '@');
    if (slash != NULL && at != NULL && at > slash) {
        size_t keep = (size_t)(auth + 3 - plain);
        memmove(plain + keep + 3, at, strlen(at) + 1);
        memcpy(plain + keep, "...", 3);
    }
    return shown(plain, buf, bufsz);
}

/* Gets part of h, or NULL when it is not there (or memory ran out, which
 * the caller finds out by a mismatch and no harm done). */
static char *url_part(CURLU *h, CURLUPart part)
{
    char *v = NULL;
    if (curl_url_get(h, part, &v, 0) != CURLUE_OK)
        return NULL;
    return v;
}

/* Scheme and host name in lower case, as they compare (RFC 3986 6.2.2.1):
 * "HTTP://Example.org/flags" is the server of the last run's
 * "http://example.org/flags". The user name and password stay as given. */
static void lower_scheme_and_host(char *url)
{
    char *p = strstr(url, "://");
    if (!p)
        return;
    for (char *c = url; c < p; c++)
        *c = (char)tolower((unsigned char)*c);
    char *host = p + 3;
    char *end = host + strcspn(host, "/");
    for (char *at = host; at < end; at++)
        if (*at == '@')
            host = at + 1;
    for (char *c = host; c < end; c++)
        *c = (char)tolower((unsigned char)*c);
}

/* Checks base (arg without trailing '/') as libcurl will read it, and sets
 * *display to base without its password. Returns 0, GF_EUSAGE after
 * recording the error, or GF_ENOMEM. Requests are base + "/cc/...", so a
 * query or fragment would swallow the path, and a path libcurl rewrites
 * (dot segments) would not be the one shown. */
static int check_url(struct parse_state *st, const char *arg, const char *base, char **display)
{
    static const char prefix[] = "argument -s/--server: ";
    CURLU *h = NULL, *d = NULL;
    CURLUcode uc;
    char buf[300], *path = NULL, *pass = NULL, *user = NULL, *want = NULL, *got = NULL;
    char *port = NULL;
    const char *written;
    int rc = GF_EUSAGE;

    *display = NULL;
    if (strchr(arg, '#') != NULL) {
        fail(st, "%sa base URL cannot have a #fragment (libcurl never sends it), got '%s'", prefix,
             shown_url(arg, buf, sizeof buf));
        return GF_EUSAGE;
    }
    if (strchr(arg, '?') != NULL) {
        fail(st, "%sa base URL cannot have a ?query (the flag paths would go into it), got '%s'",
             prefix, shown_url(arg, buf, sizeof buf));
        return GF_EUSAGE;
    }
    *display = gf_malloc(strlen(base) + 1);
    h = curl_url();
    if (*display == NULL || h == NULL) {
        rc = GF_ENOMEM;
        goto out;
    }
    strip_password(base, *display);
    uc = curl_url_set(h, CURLUPART_URL, base, 0);
    if (uc == CURLUE_OUT_OF_MEMORY) {
        rc = GF_ENOMEM;
        goto out;
    }
    if (uc != CURLUE_OK) {
        fail(st, "%snot a URL libcurl accepts (%s), got '%s'", prefix, curl_url_strerror(uc),
             shown_url(arg, buf, sizeof buf));
        goto out;
    }
    port = url_part(h, CURLUPART_PORT);
    if (port != NULL && strtol(port, NULL, 10) == 0) {
        fail(st, "%sport 0 is no port a server can be reached on, got '%s'", prefix,
             shown_url(arg, buf, sizeof buf));
        goto out;
    }
    path = url_part(h, CURLUPART_PATH);
    written = strchr(strstr(base, "://") + 3, '/');
    if (path == NULL || strcmp(path, written != NULL ? written : "/") != 0) {
        fail(st, "%slibcurl would ask for the path '%s' instead (no . or .. segments), got '%s'",
             prefix, path != NULL ? path : "?", shown_url(arg, buf, sizeof buf));
        goto out;
    }
    pass = url_part(h, CURLUPART_PASSWORD);
    if (pass == NULL) {
        rc = 0;
        goto out;
    }
    /* The shown URL must be the same URL less its password. */
    user = url_part(h, CURLUPART_USER);
    d = curl_url();
    if (d == NULL || curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        (user != NULL && user[0] == '\0' &&
         curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK)) {
        rc = GF_ENOMEM;
        goto out;
    }
    if (curl_url_set(d, CURLUPART_URL, *display, 0) == CURLUE_OK) {
        want = url_part(h, CURLUPART_URL);
        got = url_part(d, CURLUPART_URL);
    }
    if (want == NULL || got == NULL || strcmp(want, got) != 0) {
        fail(st, "%sthe password cannot be told apart from the rest of the URL, got '%s'", prefix,
             shown_url(arg, buf, sizeof buf));
        goto out;
    }
    rc = 0;
out:
    curl_free(port);
    curl_free(path);
    curl_free(pass);
    curl_free(user);
    curl_free(want);
    curl_free(got);
    curl_url_cleanup(h);
    curl_url_cleanup(d);
    if (rc != 0) {
        gf_free(*display);
        *display = NULL;
    }
    return rc;
}

static void drop_urls(struct gf_options *opts)
{
    gf_free(opts->base_url);
    gf_free(opts->base_url_display);
    opts->base_url = NULL;
    opts->base_url_display = NULL;
}

/* -s: a label or a URL. Returns 0, GF_EUSAGE after recording the error, or
 * GF_ENOMEM. */
static int set_server(struct parse_state *st, struct gf_options *opts, const char *arg)
{
    char buf[300], *base, *display;
    size_t i, len;
    int rc;

    for (i = 0; i < sizeof servers / sizeof servers[0]; i++)
        if (strcasecmp(arg, servers[i].label) == 0) {
            drop_urls(opts);
            opts->base_url = gf_strdup(servers[i].url);
            opts->base_url_display = gf_strdup(servers[i].url);
            opts->server_label = servers[i].label;
            return opts->base_url != NULL && opts->base_url_display != NULL ? 0 : GF_ENOMEM;
        }
    const char *problem = base_url_problem(arg);
    if (problem != NULL) {
        fail(st, "argument -s/--server: %s, got '%s'", problem, shown_url(arg, buf, sizeof buf));
        return GF_EUSAGE;
    }
    len = strlen(arg);
    while (len > 0 && arg[len - 1] == '/')
        len--;
    base = gf_malloc(len + 1);
    if (base == NULL)
        return GF_ENOMEM;
    memcpy(base, arg, len);
    base[len] = '\0';
    lower_scheme_and_host(base);
    rc = check_url(st, arg, base, &display);
    if (rc != 0) {
        gf_free(base);
        return rc;
    }
    drop_urls(opts);
    opts->base_url = base;
    opts->base_url_display = display;
    opts->server_label = "URL";
    return 0;
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
    int all = 0, every = 0, any_code = 0, opt;
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
            if (parse_ranged(&st, 'l', optarg, 1, GF_LIMIT_MAX, &v) == 0)
                opts->limit = (size_t)v;
            break;
        case 'm':
            if (strcasecmp(optarg, "auto") == 0) {
                opts->concurrency_auto = 1;
                opts->concurrency = GF_CONCURRENCY_MAX;
            } else if (parse_ranged(&st, 'm', optarg, 1, GF_CONCURRENCY_MAX, &v) == 0) {
                opts->concurrency_auto = 0;
                opts->concurrency = (unsigned)v;
            }
            break;
        case 's':
            if (set_server(&st, opts, optarg) == GF_ENOMEM) {
                drop_urls(opts);
                if (err != NULL && errsz > 0)
                    gf_errorf(err, errsz, "out of memory");
                return GF_ENOMEM;
            }
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
                     "argument --timeout: must be seconds in digits with an optional "
                     "fraction (10, 0.5), above 0 and at most %u, got '%s'",
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
            if (parse_ranged(&st, OPT_RETRIES, optarg, 0, GF_RETRIES_MAX, &v) == 0)
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
            /* The limiter refuses a slower rate (its delays must fit a
             * uv_timer): say so here rather than run without a limit. The
             * minimum is shown rounded up, so that it is accepted. */
            if (parse_positive(optarg, GF_RATE_MAX, &opts->rate) != 0 ||
                opts->rate < GF_RATELIMIT_MIN_RATE)
                fail(&st,
                     "argument --rate: must be a number of requests per second from %.7f (one a "
                     "day) to %.0f, got '%s'",
                     GF_RATELIMIT_MIN_RATE, GF_RATE_MAX, shown(optarg, buf, sizeof buf));
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
        case OPT_HTTP1_1: /* as with curl, the last of the two wins */
            opts->http_version = GF_HTTP_1_1;
            break;
        case OPT_HTTP2:
            opts->http_version = GF_HTTP_2;
            break;
        case OPT_SWEEP:
            if (parse_sweep(optarg, opts) != 0)
                fail(&st,
                     "argument --sweep: must be a comma-separated list of at most %d "
                     "integers from 1 to %u, got '%s'",
                     GF_SWEEP_MAX, GF_CONCURRENCY_MAX, shown(optarg, buf, sizeof buf));
            break;
        case ':':
            /* A value is missing only at the end of argv, so the last
             * argument says which form was used: "--lim" or "-vl". */
            if (argc > 0 && strncmp(argv[argc - 1], "--", 2) == 0 && long_name(optopt) != NULL)
                fail(&st, "option --%s needs a value", long_name(optopt));
            else
                fail(&st, "option -%c needs a value", optopt);
            break;
        default: /* '?' */
            if (optopt != 0 && long_name(optopt) != NULL) {
                /* A known value: only a long option given a value it does
                 * not take ("--all=1") gets here, as a short option is
                 * either known or not. */
                fail(&st, "option --%s does not take a value", long_name(optopt));
            } else if (optopt != 0) {
                buf[0] = (char)optopt;
                buf[1] = '\0';
                fail(&st, "unknown option '-%s'", shown(buf, name, sizeof name));
            } else if (optind > 0 && optind <= argc) {
                /* getopt has moved past the unknown or ambiguous long option. */
                bad_long_option(&st, argv[optind - 1]);
            } else {
                fail(&st, "unknown option");
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
        drop_urls(opts);
        return GF_EUSAGE;
    }

    if (opts->base_url == NULL) {
        opts->base_url = gf_strdup(servers[0].url);
        opts->base_url_display = gf_strdup(servers[0].url);
        if (opts->base_url == NULL || opts->base_url_display == NULL) {
            drop_urls(opts);
            if (err != NULL && errsz > 0)
                gf_errorf(err, errsz, "out of memory");
            return GF_ENOMEM;
        }
    }
    /* libcurl before 8.0 fails the second stream of a reused h2c
     * connection, and opening one per request still races: refuse rather
     * than end a run in "Error in the HTTP2 framing layer". */
    if (opts->http_version == GF_HTTP_2 && strncasecmp(opts->base_url, "http://", 7) == 0 &&
        curl_version_info(CURLVERSION_NOW)->version_num < 0x080000) {
        fail(&st,
             "--http2 over plain http (h2c) needs libcurl 8.0 or later, this is %s: use an "
             "https base URL or leave --http2 out",
             curl_version_info(CURLVERSION_NOW)->version);
        drop_urls(opts);
        return GF_EUSAGE;
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
    drop_urls(opts);
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
        "  -a, --all             get all available flags (the 194 of\n"
        "                        flags_data/country_codes.txt)\n"
        "  -e, --every           get flags for every possible code (AA...ZZ)\n"
        "  -l N, --limit N       limit to N first codes\n"
        "  -m CONCURRENT, --max_req CONCURRENT\n"
        "                        maximum concurrent requests (default=5), or auto to\n"
        "                        adapt to what the server sustains\n"
        "  -s LABEL|URL, --server LABEL|URL\n"
        "                        server to hit: one of LOCAL, REMOTE, DELAY, ERROR,\n"
        "                        or a base URL starting with http:// or https://\n"
        "                        (default=LOCAL)\n"
        "  -v, --verbose         output detailed progress info\n"
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
        "  --rate N              start at most N requests per second, fractions allowed,\n"
        "                        at least one a day (0.0000116)\n"
        "  --update              send conditional requests for the flags of the last run\n"
        "                        in DIR and leave unchanged ones untouched\n"
        "  --retry-failed        only the codes that ended in error in the last run in DIR\n"
        "  --wait-lock           wait for another run on DIR to end instead of exiting 75\n"
        "  --http1.1             use HTTP/1.1 only\n"
        "  --http2               ask for HTTP/2: in the TLS handshake (ALPN) over\n"
        "                        https://, with prior knowledge (h2c) over http://;\n"
        "                        the last of --http1.1 and --http2 wins (default: the\n"
        "                        server's choice in the TLS handshake)\n"
        "\n"
        "Long options may be shortened to any unambiguous prefix (--lim 3), and a\n"
        "value may follow an '=' (--limit=3).\n"
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
