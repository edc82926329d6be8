/* Command-line options of flagserver.
 *
 * Presets fill in every setting that was not given explicitly, whatever the
 * order of the arguments, so `--delay 0 --preset delay` keeps delay 0. */
#ifndef FLAGSERVER_OPTIONS_H
#define FLAGSERVER_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

enum {
    FS_OPTIONS_OK = 0,
    FS_OPTIONS_HELP = 1,   /* -h/--help: print fs_options_usage() and exit 0 */
    FS_OPTIONS_ERROR = -1, /* bad command line: message in errbuf, exit 2 */
};

typedef struct fs_options {
    const char *preset;    /* "local", "delay" or "error" (static string) */
    int port;              /* 0..65535, 0 = ephemeral */
    const char *bind;      /* IPv4 or IPv6 literal; points into argv or static */
    const char *directory; /* NULL = the default flags_data directory */
    double delay_min;      /* seconds, 0 <= delay_min <= delay_max */
    double delay_max;
    double error_rate; /* probability of a 418 answer, 0..1 */
    uint64_t seed;     /* PRNG seed, meaningful when seed_set */
    int seed_set;
    int quiet;             /* no access log */
    unsigned max_inflight; /* 0 = unlimited */
    double idle_timeout;   /* seconds a connection may wait for a request; 0 = forever */
} fs_options;

/* Parses argv with getopt_long (resetting getopt's state first, so it may be
 * called repeatedly). Fills *opt completely on success. On FS_OPTIONS_ERROR a
 * one-line message (without the program name) is written to errbuf. Strings
 * stored in *opt point into argv or at static storage. */
int fs_options_parse(fs_options *opt, int argc, char **argv, char *errbuf, size_t errlen);

/* Usage text for --help, static. */
const char *fs_options_usage(void);

#endif
