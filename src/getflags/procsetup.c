#include "gf/procsetup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "gf/error.h"

volatile sig_atomic_t gf_early_signal;

static void on_early_signal(int sig)
{
    gf_early_signal = sig;
}

static const int run_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NRUN_SIGNALS (sizeof run_signals / sizeof run_signals[0])
/* Which of run_signals the process started with ignored: nohup ignores
 * SIGHUP, and a shell script ignores SIGINT in the jobs it puts in the
 * background. Read once, before getflags sets any handler. */
static int started_ignored[NRUN_SIGNALS];
static int started_read;

int gf_signal_ignored(int sig)
{
    for (size_t i = 0; i < NRUN_SIGNALS; i++)
        if (run_signals[i] == sig)
            return started_read && started_ignored[i];
    return 0;
}

void gf_setup_signals(void)
{
    struct sigaction sa;
    if (!started_read) {
        for (size_t i = 0; i < NRUN_SIGNALS; i++)
            started_ignored[i] =
                sigaction(run_signals[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
        started_read = 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_early_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking wait for the lock returns EINTR. */
    for (size_t i = 0; i < NRUN_SIGNALS; i++)
        if (!started_ignored[i])
            sigaction(run_signals[i], &sa, NULL);
}

int gf_setup_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        /* The lowest free descriptor is fd, since those below are open. */
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n != fd) {
            if (n >= 0)
                close(n);
            return -1;
        }
    }
    return 0;
}

#define POOL_MAX 1024

struct probe {
    uv_sem_t go;
};

static void probe_thread(void *arg)
{
    struct probe *p = arg;
    uv_sem_wait(&p->go);
}

static void no_work(uv_work_t *w)
{
    (void)w;
}

static void after_no_work(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

int gf_setup_threadpool(char *err, size_t errsz)
{
    unsigned want = 4;
    const char *env = getenv("UV_THREADPOOL_SIZE");
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        want = v < 1 ? 1 : v > POOL_MAX ? POOL_MAX : (unsigned)v;
    }
    /* Without an address-space or process limit there is nothing to
     * probe for, and the pool starts as libuv likes (on first use). */
    struct rlimit as, np;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur == RLIM_INFINITY &&
        getrlimit(RLIMIT_NPROC, &np) == 0 && (np.rlim_cur == RLIM_INFINITY || geteuid() == 0))
        return (int)want;
    /* All at once, with libuv's own thread creation (and so its stack
     * size), as its pool will hold them. */
    static uv_thread_t tids[POOL_MAX];
    struct probe p;
    if (uv_sem_init(&p.go, 0) != 0) {
        gf_errorf(err, errsz, "cannot start the thread pool: cannot create a semaphore");
        return UV_ENOMEM;
    }
    unsigned made = 0;
    int e = 0;
    while (made < want && (e = uv_thread_create(&tids[made], probe_thread, &p)) == 0)
        made++;
    for (unsigned i = 0; i < made; i++)
        uv_sem_post(&p.go);
    for (unsigned i = 0; i < made; i++)
        uv_thread_join(&tids[i]);
    uv_sem_destroy(&p.go);
    if (made == 0) {
        gf_errorf(err, errsz,
                  "cannot start a thread: %s (the address space or process limit is too low: "
                  "see ulimit -v and ulimit -u)",
                  uv_strerror(e));
        return e;
    }
    if (made < want) {
        char v[16];
        snprintf(v, sizeof v, "%u", made);
        setenv("UV_THREADPOOL_SIZE", v, 1);
    }
    /* Start the pool now, while the probe's threads are known to fit. */
    uv_loop_t loop;
    uv_work_t w;
    if ((e = uv_loop_init(&loop)) != 0) {
        gf_errorf(err, errsz, "cannot start the thread pool: %s", uv_strerror(e));
        return e;
    }
    /* Queueing the first work item creates the pool's threads; the item
     * itself is cancelled when it can be, so as not to wait for a thread
     * to wake up and run it. */
    e = uv_queue_work(&loop, &w, no_work, after_no_work);
    if (e == 0) {
        uv_cancel((uv_req_t *)&w);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    if (e != 0) {
        gf_errorf(err, errsz, "cannot start the thread pool: %s", uv_strerror(e));
        return e;
    }
    return (int)made;
}

/* Descriptors open now: stdio, and whatever the parent left open. */
static unsigned open_now(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 3;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* less the one reading the list */
}

unsigned gf_setup_fds_needed(unsigned want, unsigned pool_threads)
{
    /* Held through the run: DIR, DIR/.getflags and the lock; the loop's
     * epoll, wake-up eventfd, signal pipe and spare /dev/null; libuv's
     * global signal pipe is open already (the pool's start made it).
     * libcurl's multi wake-up pair. One file at a time for the manifest
     * or a check of DIR's files, and one spare for libcurl's transient
     * files (CA store, /etc/hosts). A temporary file per save running at
     * once: at most one per save thread, and with few requests in flight
     * no more than those can have produced. Measured with ls
     * /proc/PID/fd during runs. */
    unsigned saves = want + 1 < pool_threads ? want + 1 : pool_threads;
    return 3 + 5 + 2 + 2 + saves + want * GF_FDS_PER_REQUEST;
}

unsigned gf_setup_fit_concurrency(unsigned want, unsigned pool_threads, char *msg, size_t msgsz)
{
    struct rlimit rl;
    msg[0] = '\0';
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    rlim_t now = open_now();
    rlim_t need = now + gf_setup_fds_needed(want, pool_threads);
    if (rl.rlim_cur < need) {
        rlim_t soft = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        struct rlimit nl = {soft, rl.rlim_max};
        if (soft > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl.rlim_cur = soft;
    }
    if (rl.rlim_cur >= need)
        return want;
    unsigned fit = 0;
    while (fit < want && now + gf_setup_fds_needed(fit + 1, pool_threads) <= rl.rlim_cur)
        fit++;
    if (fit == 0) {
        unsigned long long one = (unsigned long long)(now + gf_setup_fds_needed(1, pool_threads));
        snprintf(msg, msgsz,
                 "getflags: the open-file limit (%llu) is too low: a run needs at least %llu "
                 "(ulimit -n %llu)\n",
                 (unsigned long long)rl.rlim_cur, one, one);
        return 0;
    }
    snprintf(msg, msgsz,
             "getflags: %u concurrent requests need about %llu open files but the limit is "
             "%llu (ulimit -n); using %u concurrent request%s\n",
             want, (unsigned long long)need, (unsigned long long)rl.rlim_cur, fit,
             fit == 1 ? "" : "s");
    return fit;
}
