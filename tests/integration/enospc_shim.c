/* LD_PRELOAD shim for the disk-full tests: every write() to one of
 * getflags's temporary files for an image fails with ENOSPC, and the
 * manifest's pass (a run that cannot write its manifest does not start).
 * With GF_ENOSPC_MANIFEST set, the manifest's fail instead. Other writes
 * pass. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t count)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    char link[64], target[4096];
    if (!real_write)
        real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
        target[n] = '\0';
        const char *base = strrchr(target, '/');
        int in_state_dir = strstr(target, "/.getflags/") != NULL;
        if (base && strncmp(base + 1, ".getflags-tmp-", 14) == 0 &&
            in_state_dir == (getenv("GF_ENOSPC_MANIFEST") != NULL)) {
            errno = ENOSPC;
            return -1;
        }
    }
    return real_write(fd, buf, count);
}
