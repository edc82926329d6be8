#include "flagserver/options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define MAX_DELAY_SECONDS 3600.0
#define DEFAULT_IDLE_SECONDS 60.0

enum {
    OPT_PRESET = 256,
    OPT_PORT,
    OPT_BIND,
    OPT_DIRECTORY,
    OPT_DELAY,
    OPT_ERROR_RATE,
    OPT_SEED,
    OPT_QUIET,
    OPT_MAX_INFLIGHT,
    OPT_IDLE_TIMEOUT,
};

/* Which settings were given explicitly; presets only fill the others. */
enum {
    SET_PORT = 1 << 0,
    SET_DELAY = 1 << 1,
    SET_ERROR_RATE = 1 << 2,
};

typedef struct preset {
    const char *name;
    int port;
    double delay_min, delay_max, error_rate;
} preset;

static const preset presets[] = {
    {"local", 8000, 0.0, 0.0, 0.0},
    {"delay", 8001, 0.5, 5.0, 0.0},
    {"error", 8002, 0.5, 5.0, 0.25},
};

static const struct option long_options[] = {
    {"preset", required_argument, NULL, OPT_PRESET},
    {"port", required_argument, NULL, OPT_PORT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"directory", required_argument, NULL, OPT_DIRECTORY},
    {"delay", required_argument, NULL, OPT_DELAY},
    {"error-rate", required_argument, NULL, OPT_ERROR_RATE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

const char *fs_options_usage(void)
{
    return "usage: flagserver [--preset local|delay|error] [--port N] [--bind ADDR]\n"
           "                  [--directory DIR] [--delay MIN[:MAX]] [--error-rate P]\n"
           "                  [--seed N] [--max-inflight N] [--idle-timeout S] [--quiet]\n"
           "                  [-h|--help]\n"
           "\n"
           "Serves DIR (default: flags_data) over HTTP/1.1 for getflags tests.\n"
           "  --preset NAME      local: port 8000, no delay (default)\n"
           "                     delay: port 8001, delay 0.5:5 s\n"
           "                     error: port 8002, delay 0.5:5 s, error rate 0.25\n"
           "  --port N           TCP port, 0 for an ephemeral one\n"
           "  --bind ADDR        IPv4 or IPv6 address (default 127.0.0.1)\n"
           "  --directory DIR    directory to serve\n"
           "  --delay MIN[:MAX]  delay each answer by a uniform draw, in seconds\n"
           "  --error-rate P     answer 418 with probability P (0..1)\n"
           "  --seed N           seed of the delay/error draws (default: clock)\n"
           "  --max-inflight N   answer 503 when N requests are already in progress\n"
           "  --idle-timeout S   close a connection that sends no request for S\n"
           "                     seconds (default 60, 0 for never)\n"
           "  --quiet            no access log on stdout\n"
           "Explicit options override the preset, in any order.\n";
}

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return FS_OPTIONS_ERROR;
}

/* strtod that accepts only a whole, finite, non-negative number. */
static int parse_seconds(const char *s, const char *end, double *out)
{
    char buf[64];
    char *stop;
    size_t n = (size_t)(end - s);
    double v;

    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (buf[0] == '-' || buf[0] == '+' || buf[0] == ' ')
        return -1;
    errno = 0;
    v = strtod(buf, &stop);
    if (errno != 0 || *stop != '\0' || !isfinite(v) || v < 0.0 || v > MAX_DELAY_SECONDS)
        return -1;
    *out = v;
    return 0;
}

static int parse_delay(const char *arg, double *min, double *max)
{
    const char *colon = strchr(arg, ':');
    const char *end = arg + strlen(arg);

    if (colon == NULL) {
        if (parse_seconds(arg, end, min) != 0)
            return -1;
        *max = *min;
        return 0;
    }
    if (parse_seconds(arg, colon, min) != 0 || parse_seconds(colon + 1, end, max) != 0)
        return -1;
    return *min <= *max ? 0 : -1;
}

static int parse_unsigned(const char *arg, unsigned long long maxval, unsigned long long *out)
{
    char *stop;
    unsigned long long v;

    if (arg[0] < '0' || arg[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(arg, &stop, 10);
    if (errno != 0 || *stop != '\0' || v > maxval)
        return -1;
    *out = v;
    return 0;
}

static int valid_address(const char *addr)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (strchr(addr, ':') != NULL)
        return uv_inet_pton(AF_INET6, addr, buf) == 0;
    return uv_inet_pton(AF_INET, addr, buf) == 0;
}

int fs_options_parse(fs_options *opt, int argc, char **argv, char *errbuf, size_t errlen)
{
    const preset *p = &presets[0];
    unsigned set = 0;
    unsigned long long u;
    double d;
    int c;

    memset(opt, 0, sizeof(*opt));
    opt->bind = "127.0.0.1";
    opt->idle_timeout = DEFAULT_IDLE_SECONDS;
    errbuf[0] = '\0';

    /* optind = 0 makes glibc reinitialise getopt fully, so tests can call
     * this more than once; opterr = 0 because the messages are ours. */
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            return FS_OPTIONS_HELP;
        case OPT_PRESET: {
            size_t i;

            p = NULL;
            for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
                if (strcmp(optarg, presets[i].name) == 0)
                    p = &presets[i];
            if (p == NULL)
                return fail(errbuf, errlen, "unknown preset '%s' (expected local, delay or error)",
                            optarg);
            break;
        }
        case OPT_PORT:
            if (parse_unsigned(optarg, 65535, &u) != 0)
                return fail(errbuf, errlen, "bad --port '%s' (expected 0..65535)", optarg);
            opt->port = (int)u;
            set |= SET_PORT;
            break;
        case OPT_BIND:
            if (!valid_address(optarg))
                return fail(errbuf, errlen, "bad --bind '%s' (expected an IPv4 or IPv6 address)",
                            optarg);
            opt->bind = optarg;
            break;
        case OPT_DIRECTORY:
            if (optarg[0] == '\0')
                return fail(errbuf, errlen, "empty --directory");
            opt->directory = optarg;
            break;
        case OPT_DELAY:
            if (parse_delay(optarg, &opt->delay_min, &opt->delay_max) != 0)
                return fail(errbuf, errlen,
                            "bad --delay '%s' (expected seconds MIN or MIN:MAX, 0 <= MIN <= "
                            "MAX <= %.0f)",
                            optarg, MAX_DELAY_SECONDS);
            set |= SET_DELAY;
            break;
        case OPT_ERROR_RATE: {
            const char *a = optarg;

            if (parse_seconds(a, a + strlen(a), &d) != 0 || d > 1.0)
                return fail(errbuf, errlen, "bad --error-rate '%s' (expected 0..1)", optarg);
            opt->error_rate = d;
            set |= SET_ERROR_RATE;
            break;
        }
        case OPT_SEED:
            if (parse_unsigned(optarg, UINT64_MAX, &u) != 0)
                return fail(errbuf, errlen, "bad --seed '%s' (expected an unsigned integer)",
                            optarg);
            opt->seed = (uint64_t)u;
            opt->seed_set = 1;
            break;
        case OPT_QUIET:
            opt->quiet = 1;
            break;
        case OPT_MAX_INFLIGHT:
            if (parse_unsigned(optarg, 10000000, &u) != 0)
                return fail(errbuf, errlen, "bad --max-inflight '%s' (expected 0..10000000)",
                            optarg);
            opt->max_inflight = (unsigned)u;
            break;
        case OPT_IDLE_TIMEOUT: {
            const char *a = optarg;

            if (parse_seconds(a, a + strlen(a), &opt->idle_timeout) != 0)
                return fail(errbuf, errlen, "bad --idle-timeout '%s' (expected seconds, 0..%.0f)",
                            optarg, MAX_DELAY_SECONDS);
            break;
        }
        case ':':
            return fail(errbuf, errlen, "option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt != 0 && optopt < 256)
                return fail(errbuf, errlen, "unknown option '-%c'", optopt);
            return fail(errbuf, errlen, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail(errbuf, errlen, "unexpected argument '%s'", argv[optind]);

    opt->preset = p->name;
    if (!(set & SET_PORT))
        opt->port = p->port;
    if (!(set & SET_DELAY)) {
        opt->delay_min = p->delay_min;
        opt->delay_max = p->delay_max;
    }
    if (!(set & SET_ERROR_RATE))
        opt->error_rate = p->error_rate;
    return FS_OPTIONS_OK;
}
