#include "gf/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "gf/alloc.h"
#include "gf/error.h"
#include "gf/procsetup.h"
#include "statedir.h"

#define LOCK_SUB "/" GF_STATEDIR_NAME "/" GF_LOCK_NAME

static int fail(int err, char *buf, size_t bufsz, const char *what, const char *dir)
{
    const char *why = err == -ELOOP      ? "it is a symbolic link (not followed)"
                      : err == UV_EINVAL ? "it is not a regular file"
                      : err == -EMLINK   ? "it has more than one link (a hard link is not followed)"
                                         : gf_strerror(err);
    gf_errorf(buf, bufsz, "cannot %s %s" LOCK_SUB ": %s", what, dir, why);
    return err;
}

/* The command name of a process ("getflags"), "" when unknown. */
static void comm_of(const char *pid, char *out, size_t outsz)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/%s/comm", pid);
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, outsz - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

/* Whether pid is a live process of the same program as this one. Without
 * /proc, whether it is alive at all. */
static int is_same_program(long pid)
{
    char self[32], other[32], id[24];
    comm_of("self", self, sizeof self);
    if (self[0] == '\0')
        return kill((pid_t)pid, 0) == 0 || errno == EPERM;
    snprintf(id, sizeof id, "%ld", pid);
    comm_of(id, other, sizeof other);
    return strcmp(self, other) == 0;
}

/* The pid the holder wrote, or 0 when the file holds none (it may not have
 * written it yet) or names no running process of this program: the lock
 * may be held by another program (flock(1)), the pid left by a run that
 * was killed. Only for the message. */
static long holder_pid(int fd)
{
    char buf[24];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    if (pid <= 0 || end == buf || (*end != '\n' && *end != '\0'))
        return 0;
    return is_same_program(pid) ? pid : 0;
}

/* Records our pid for the message of a run that finds the lock busy. A
 * failure costs only that detail, so it is not an error. */
static void write_pid(int fd)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* diagnostic only */
    }
}

int gf_lock_acquire(const char *dir, int wait, struct gf_lock *lk, char *err, size_t errsz)
{
    lk->fd = -1;
    int sfd = gf_statedir_open(dir, 1, err, errsz);
    if (sfd < 0)
        return sfd;
    int rc = gf_lock_acquire_at(sfd, dir, wait, lk, err, errsz);
    close(sfd);
    return rc;
}

int gf_lock_acquire_at(int sfd, const char *dir, int wait, struct gf_lock *lk, char *err,
                       size_t errsz)
{
    lk->fd = -1;
    /* O_NONBLOCK: a FIFO planted at the name must not hang the open. */
    int fd =
        openat(sfd, GF_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
    int e = fd < 0 ? -errno : 0;
    if (fd < 0)
        return fail(e, err, errsz, "open", dir);
    struct stat st;
    if (fstat(fd, &st) != 0)
        e = -errno;
    else if (!S_ISREG(st.st_mode))
        e = UV_EINVAL;
    else if (st.st_nlink > 1)
        e = -EMLINK; /* writing our pid would truncate the other name's file */
    if (e != 0) {
        close(fd);
        return fail(e, err, errsz, "use", dir);
    }

    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            e = -errno;
            close(fd);
            return fail(e, err, errsz, "lock", dir);
        }
        if (!wait) {
            long pid = holder_pid(fd);
            if (errsz > 0) {
                char who[40] = " (or another program)";
                if (pid > 0)
                    snprintf(who, sizeof who, " (pid %ld)", pid);
                gf_errorf(err, errsz, "another getflags run%s is using %s (lock %s" LOCK_SUB ")",
                          who, dir, dir);
            }
            close(fd);
            return GF_LOCK_BUSY;
        }
        /* Blocks until the holder ends; a signal that interrupts it and
         * returns (a stop, a handler) only makes us wait again. */
        while (flock(fd, LOCK_EX) != 0) {
            /* A stop signal ends the wait; any other only resumes it. */
            if (errno != EINTR || gf_early_signal) {
                e = -errno;
                close(fd);
                if (e == -EINTR) {
                    gf_errorf(err, errsz, "interrupted while waiting for another run on %s to end",
                              dir);
                    return e;
                }
                return fail(e, err, errsz, "lock", dir);
            }
        }
        break;
    }
    write_pid(fd);
    lk->fd = fd;
    return 0;
}

void gf_lock_release(struct gf_lock *lk)
{
    if (lk == NULL || lk->fd < 0)
        return;
    /* The pid goes first, so that a later holder that writes none (another
     * program) is not taken for this run; then closing the only descriptor
     * of the open file releases the lock. */
    if (ftruncate(lk->fd, 0) != 0) {
        /* diagnostic only */
    }
    close(lk->fd);
    lk->fd = -1;
}
