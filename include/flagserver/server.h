/* The listening side of flagserver: socket, accept pacing, signals, shared
 * state of all connections, and an orderly stop.
 *
 * Lifecycle: fs_server_init() binds and starts listening; uv_run() serves;
 * SIGINT/SIGTERM (or fs_server_stop()) stop accepting and close every
 * connection and handle, so uv_run() returns; fs_server_cleanup() then frees
 * what is left and uv_loop_close() succeeds. */
#ifndef FLAGSERVER_SERVER_H
#define FLAGSERVER_SERVER_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "flagserver/fault.h"
#include "flagserver/options.h"
#include "flagserver/rng.h"

typedef struct fs_conn fs_conn;

/* Fields are shared by server.c and conn.c only. */
typedef struct fs_server {
    uv_loop_t *loop;
    fs_options opt;
    char root[PATH_MAX]; /* real path of the served directory */
    FILE *log;           /* access log, NULL with --quiet */

    int listen_fd;
    uv_poll_t listen_poll;   /* readable listen socket: accept() */
    uv_timer_t accept_timer; /* resumes accepting after EMFILE */
    uv_signal_t sigint, sigterm;
    int accept_paused;
    uint64_t pause_logged_ms;      /* when a pause was last reported */
    unsigned long pauses_unlogged; /* pauses since then */
    int stopping;
    int open_handles; /* server handles not yet closed */
    char url[96];     /* "http://ADDR:PORT" */

    fs_rng rng;
    uint64_t requests; /* requests received, i.e. draws taken */
    unsigned inflight; /* requests in progress */
    unsigned admitted; /* of those, not turned away by --max-inflight */
    unsigned long conns_open;
    unsigned long max_conns; /* descriptor limit less a reserve for files */
    fs_conn *conns;          /* every open connection */

    fs_faults faults;

    char readbuf[65536]; /* every read is parsed at once, so one will do */
} fs_server;

/* Binds opt->bind:opt->port (backlog 4096), starts accepting (pausing while
 * the connections reach the descriptor limit less a reserve, or accept()
 * fails with EMFILE), installs the
 * signal handlers and starts building the gzip bomb on the threadpool. root
 * must be the real path of an existing directory. log is where access lines
 * go (NULL for none). On failure returns a UV_E* code with a message in
 * err, and every handle already opened has been closed (run the loop to
 * finish closing, then call fs_server_cleanup). */
int fs_server_init(fs_server *srv, uv_loop_t *loop, const fs_options *opt, const char *root,
                   FILE *log, char *err, size_t errlen);

/* Stops accepting, closes every connection (logging their unfinished
 * requests) and the server's handles. Idempotent. */
void fs_server_stop(fs_server *srv);

/* Frees memory once uv_run() has returned. */
void fs_server_cleanup(fs_server *srv);

#endif
