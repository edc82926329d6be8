/* LD_PRELOAD shim for the signal-watch failure test: uv_signal_start()
 * fails with UV_EINVAL for the signal number in GF_FAIL_SIGNAL, so the
 * run's set-up must undo the handles it has already started. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <uv.h>

int uv_signal_start(uv_signal_t *handle, uv_signal_cb cb, int signum)
{
    static int (*real_start)(uv_signal_t *, uv_signal_cb, int);
    const char *fail = getenv("GF_FAIL_SIGNAL");
    if (fail && atoi(fail) == signum)
        return UV_EINVAL;
    if (!real_start)
        real_start = (int (*)(uv_signal_t *, uv_signal_cb, int))dlsym(RTLD_NEXT, "uv_signal_start");
    return real_start(handle, cb, signum);
}
