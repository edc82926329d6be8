/* The process around a run, decided before DIR is touched: descriptors
 * 0-2, the threadpool and the open-file limit. Each check ends a
 * run that cannot work with one message and exit status 3 before it
 * starts, instead of an abort or one error per code during it. */
#ifndef GF_PROCSETUP_H
#define GF_PROCSETUP_H

#include <signal.h>
#include <stddef.h>

/* SIGINT, SIGTERM or SIGHUP received before the run's own handlers were
 * in place (see gf_setup_signals()), else 0. */
extern volatile sig_atomic_t gf_early_signal;

/* Catches SIGINT, SIGTERM and SIGHUP from the start of main() until the
 * run installs its handlers: a signal then is recorded in
 * gf_early_signal (and interrupts a wait for the lock), so that the run
 * ends at once as interrupted, with its report and manifest, instead of
 * the process dying half set up. A signal the process started with
 * ignored (nohup, a background job of a script) stays ignored, here and
 * during the run. */
void gf_setup_signals(void);

/* 1 when sig is one of those gf_setup_signals() handles and the process
 * started with it ignored (read by the first gf_setup_signals()). */
int gf_signal_ignored(int sig);

/* Makes descriptors 0, 1 and 2 valid (opening /dev/null on the closed
 * ones) so that no file opened later becomes stdout (a report written
 * into DIR/.getflags/lock) and libuv never gets a descriptor below 3.
 * Call it first. Returns 0, or -1 when /dev/null cannot be opened. */
int gf_setup_std_fds(void);

/* Starts libuv's threadpool now, with as many threads as can be created
 * (UV_THREADPOOL_SIZE, default 4, is lowered when the address space or
 * the process limit allows fewer): libuv aborts when it cannot create a
 * thread, so it is only asked for what a probe could make. Without an
 * address-space limit (and a process limit that applies), nothing is
 * probed and the pool starts on first use. Returns the
 * number of threads (> 0), or a negative error with a message in err,
 * e.g. "cannot start a thread: resource temporarily unavailable ...". */
int gf_setup_threadpool(char *err, size_t errsz);

/* A connection may hold two sockets at once (IPv6 and IPv4 attempts). */
#define GF_FDS_PER_REQUEST 2

/* Descriptors a run of want requests in flight needs beyond those open
 * before it (stdio, inherited ones), with pool_threads save threads. */
unsigned gf_setup_fds_needed(unsigned want, unsigned pool_threads);

/* Raises the soft RLIMIT_NOFILE (up to the hard one) to what want
 * requests at once need, and returns the concurrency that fits: want, or
 * less with msg saying so, or 0 when not even one request fits (msg then
 * says what limit a run needs). msg is "" when want fits. */
unsigned gf_setup_fit_concurrency(unsigned want, unsigned pool_threads, char *msg, size_t msgsz);

#endif
