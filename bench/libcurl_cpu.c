/* libcurl_cpu: an LD_PRELOAD library for bench/libcurl_share.py.
 *
 * It wraps libcurl's multi interface and the easy-handle life cycle, and
 * adds up the CPU time (user + system, of the calling thread) spent inside
 * them: the protocol work that getflags and curl both leave to libcurl.
 * At exit it appends one line to the file named by LIBCURL_CPU_OUT:
 *
 *   libcurl_cpu_ms=<ms> calls=<n> thread_cpu_ms=<ms> process_cpu_ms=<ms>
 *
 * thread_cpu_ms is the CPU of the thread that exits (the one that calls
 * libcurl, in getflags and curl alike), process_cpu_ms that of every
 * thread so far (getflags' file writes run on libuv's threadpool).
 *
 * Nested calls are counted once (depth). getflags ends with _exit(), so
 * that is wrapped too; curl ends with exit(), which runs the destructor.
 * curl_easy_setopt() is not wrapped (its arguments are variadic); it
 * stores options and is cheap next to a transfer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double spent_s;
static long calls;
static int depth;
static int dumped;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        fprintf(stderr, "libcurl_cpu: %s not found\n", name);
        abort();
    }
    return f;
}

#define ENTER()                                                                                    \
    double t0_ = depth++ == 0 ? thread_cpu_s() : 0.0;                                              \
    calls++
#define LEAVE()                                                                                    \
    if (--depth == 0)                                                                              \
    spent_s += thread_cpu_s() - t0_

/* libcurl's prototypes with void * for its handles and int for its codes
 * (the ABI is the same), so that this builds without libcurl's headers. */
#define WRAP(ret, name, params, args)                                                              \
    ret name params;                                                                               \
    ret name params                                                                                \
    {                                                                                              \
        static ret(*real) params;                                                                  \
        if (!real)                                                                                 \
            *(void **)&real = next(#name);                                                         \
        ENTER();                                                                                   \
        ret r_ = real args;                                                                        \
        LEAVE();                                                                                   \
        return r_;                                                                                 \
    }
#define WRAP_VOID(name, params, args)                                                              \
    void name params;                                                                              \
    void name params                                                                               \
    {                                                                                              \
        static void(*real) params;                                                                 \
        if (!real)                                                                                 \
            *(void **)&real = next(#name);                                                         \
        ENTER();                                                                                   \
        real args;                                                                                 \
        LEAVE();                                                                                   \
    }

WRAP(int, curl_multi_socket_action, (void *m, int s, int ev, int *running), (m, s, ev, running))
WRAP(int, curl_multi_perform, (void *m, int *running), (m, running))
WRAP(int, curl_multi_poll, (void *m, void *fds, unsigned n, int ms, int *k), (m, fds, n, ms, k))
WRAP(int, curl_multi_wait, (void *m, void *fds, unsigned n, int ms, int *k), (m, fds, n, ms, k))
WRAP(int, curl_multi_add_handle, (void *m, void *e), (m, e))
WRAP(int, curl_multi_remove_handle, (void *m, void *e), (m, e))
WRAP(void *, curl_multi_info_read, (void *m, int *left), (m, left))
WRAP(void *, curl_easy_init, (void), ())
WRAP_VOID(curl_easy_reset, (void *e), (e))
WRAP_VOID(curl_easy_cleanup, (void *e), (e))

static void dump(void)
{
    const char *path = getenv("LIBCURL_CPU_OUT");
    if (dumped || !path)
        return;
    dumped = 1;
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "libcurl_cpu_ms=%.3f calls=%ld thread_cpu_ms=%.3f process_cpu_ms=%.3f\n",
            spent_s * 1e3, calls, thread_cpu_s() * 1e3,
            ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9) * 1e3);
    fclose(f);
}

__attribute__((destructor)) static void at_exit(void)
{
    dump();
}

void _exit(int status)
{
    static void (*real)(int);
    if (!real)
        *(void **)&real = next("_exit");
    dump();
    real(status);
    abort(); /* not reached */
}
