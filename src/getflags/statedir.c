#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gf/alloc.h"
#include "gf/error.h"

static int fail(int err, char *buf, size_t bufsz, const char *what, const char *dir,
                const char *sub)
{
    /* A link at .getflags comes back as ELOOP; say what it means. */
    const char *why = err == -ELOOP && *sub ? "it is a symbolic link (not followed)"
                      : err == -ENOTDIR     ? "it is not a directory"
                                            : gf_strerror(err);
    gf_errorf(buf, bufsz, "cannot %s %s%s: %s", what, dir, sub, why);
    return err;
}

int gf_statedir_open_at(int dfd, const char *dir, int create, char *err, size_t errsz)
{
    /* mkdirat never follows a link at the name: EEXIST, then the open
     * below refuses it. */
    if (create && mkdirat(dfd, GF_STATEDIR_NAME, 0777) != 0 && errno != EEXIST)
        return fail(-errno, err, errsz, "create", dir, "/" GF_STATEDIR_NAME);
    int fd = openat(dfd, GF_STATEDIR_NAME, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = fd < 0 ? -errno : 0;
    /* Linux says ENOTDIR, not ELOOP, for a link when O_DIRECTORY is set:
     * look, so that the message names the real problem. */
    struct stat st;
    if (e == -ENOTDIR && fstatat(dfd, GF_STATEDIR_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        e = -ELOOP;
    if (fd >= 0)
        return fd;
    return e == -ENOENT && !create ? e : fail(e, err, errsz, "open", dir, "/" GF_STATEDIR_NAME);
}

int gf_statedir_open(const char *dir, int create, char *err, size_t errsz)
{
    if (create && mkdir(dir, 0777) != 0 && errno != EEXIST)
        return fail(-errno, err, errsz, "create", dir, "");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = -errno;
        return e == -ENOENT && !create ? e : fail(e, err, errsz, "open", dir, "");
    }
    int fd = gf_statedir_open_at(dfd, dir, create, err, errsz);
    close(dfd);
    return fd;
}
