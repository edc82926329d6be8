/* flagserver: a local HTTP server of country flags for getflags' tests and
 * benchmarks, with optional delays, errors and test-only faults. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "flagserver/options.h"
#include "flagserver/server.h"

#ifndef FS_SOURCE_DATA_DIR
#define FS_SOURCE_DATA_DIR "flags_data"
#endif
#ifndef FS_DATA_FROM_BIN
#define FS_DATA_FROM_BIN "../share/getflags/flags_data"
#endif

enum { EXIT_USAGE = 2 };

/* Too large for the stack (the read buffer lives in it). */
static fs_server server;

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* <exe dir>/../share/getflags/flags_data serves an installed or extracted
 * package; the source tree's copy, compiled in, serves a build tree. */
static const char *default_directory(char *buf, size_t len)
{
    char exe[PATH_MAX];
    size_t n = sizeof(exe);

    if (uv_exepath(exe, &n) == 0) {
        char *slash = strrchr(exe, '/');

        if (slash != NULL) {
            *slash = '\0';
            if ((size_t)snprintf(buf, len, "%s/%s", exe, FS_DATA_FROM_BIN) < len && is_dir(buf))
                return buf;
        }
    }
    return FS_SOURCE_DATA_DIR;
}

/* 2,000 connections need more descriptors than the usual soft limit. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "flagserver: getrlimit: %s\n", strerror(errno));
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "flagserver: cannot raise the open file limit: %s\n", strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2100)
        fprintf(stderr, "flagserver: only %llu file descriptors: fewer than 2000 clients fit\n",
                (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    fs_options opt;
    char err[512], dirbuf[PATH_MAX], root[PATH_MAX];
    const char *dir;
    uv_loop_t loop;
    int rc;

    rc = fs_options_parse(&opt, argc, argv, err, sizeof(err));
    if (rc == FS_OPTIONS_HELP) {
        fputs(fs_options_usage(), stdout);
        return 0;
    }
    if (rc != FS_OPTIONS_OK) {
        fprintf(stderr, "flagserver: %s\nTry 'flagserver --help'.\n", err);
        return EXIT_USAGE;
    }
    /* A client that vanishes must turn into EPIPE, not kill the server. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "flagserver: cannot ignore SIGPIPE\n");
        return 1;
    }
    raise_nofile();

    dir = opt.directory ? opt.directory : default_directory(dirbuf, sizeof(dirbuf));
    if (realpath(dir, root) == NULL || !is_dir(root)) {
        fprintf(stderr, "flagserver: cannot serve directory %s: %s\n", dir,
                errno ? strerror(errno) : "not a directory");
        return opt.directory ? EXIT_USAGE : 1;
    }
    if (!opt.seed_set)
        opt.seed = uv_hrtime() ^ ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() << 40);

    rc = uv_loop_init(&loop);
    if (rc != 0) {
        fprintf(stderr, "flagserver: uv_loop_init: %s\n", uv_strerror(rc));
        return 1;
    }
    rc = fs_server_init(&server, &loop, &opt, root, opt.quiet ? NULL : stdout, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "flagserver: %s\n", err);
        /* Let the handles opened so far finish closing. */
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        fs_server_cleanup(&server);
        (void)uv_loop_close(&loop);
        return 1;
    }
    printf("listening on %s\n", server.url);
    fflush(stdout);
    fprintf(stderr,
            "flagserver: serving %s (preset %s, delay %.3f-%.3f s, error rate %.3f, seed %" PRIu64
            ")\n",
            root, opt.preset, opt.delay_min, opt.delay_max, opt.error_rate, opt.seed);

    rc = uv_run(&loop, UV_RUN_DEFAULT);
    fs_server_cleanup(&server);
    rc = uv_loop_close(&loop);
    if (rc != 0) {
        fprintf(stderr, "flagserver: handles left open at exit: %s\n", uv_strerror(rc));
        return 1;
    }
    return 0;
}
