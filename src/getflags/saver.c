#include "gf/saver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gf/error.h"
#include "gf/sha256.h"

/* Temporary names start with this prefix; they are never left behind. */
#define TMP_PREFIX ".getflags-tmp-"

static int open_checked(const char *dir, const char **what)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        *what = "create";
        return -errno;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *what = "open";
        return -errno;
    }
    /* Fail the run at the start, not once per code, when the directory
     * cannot take files. */
    if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        int err = -errno;
        close(fd);
        *what = "write to";
        return err;
    }
    return fd;
}

int gf_outdir_prepare(const char *dir, const char **what)
{
    int fd = open_checked(dir, what);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

int gf_saver_init(struct gf_saver *s, uv_loop_t *loop, const char *dir, const char **what)
{
    *s = (struct gf_saver){.loop = loop, .dirfd = -1};
    int fd = open_checked(dir, what);
    if (fd < 0)
        return fd;
    s->dirfd = fd;
    return 0;
}

static uint64_t next_tmp_id(void)
{
    static atomic_uint_fast64_t counter;
    return atomic_fetch_add(&counter, 1);
}

/* Creates a fresh temporary file: exclusive, never through a link, never
 * blocking on a FIFO someone planted at that name. */
static int open_tmp(int dirfd, char *name, size_t namesz)
{
    for (int tries = 0; tries < 100; tries++) {
        snprintf(name, namesz, TMP_PREFIX "%ld-%llu", (long)getpid(),
                 (unsigned long long)next_tmp_id());
        int fd = openat(dirfd, name,
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void save_work(uv_work_t *work)
{
    struct gf_save *req = work->data;
    int dirfd = req->saver->dirfd;
    char tmp[64];
    double t0 = now_s();

    req->err = 0;
    int fd = open_tmp(dirfd, tmp, sizeof tmp);
    if (fd < 0) {
        req->err = -errno;
        req->step = "create a temporary file";
        goto done;
    }
    if (write_all(fd, req->data, req->len) != 0) {
        req->err = -errno;
        req->step = "write";
    } else if (fdatasync(fd) != 0) {
        /* On disk before the rename makes it visible: a crash leaves the
         * old file or the new one, never an empty one. */
        req->err = -errno;
        req->step = "sync";
    }
    if (close(fd) != 0 && req->err == 0) {
        req->err = -errno;
        req->step = "close";
    }
    if (req->err == 0 && renameat(dirfd, tmp, dirfd, req->name) != 0) {
        req->err = -errno;
        req->step = "rename";
    }
    if (req->err != 0) {
        unlinkat(dirfd, tmp, 0);
    } else {
        unsigned char digest[GF_SHA256_LEN];
        gf_sha256(req->data, req->len, digest);
        gf_sha256_hex(digest, req->sha256);
        if (req->replaces && strcmp(req->replaces, req->name) != 0)
            unlinkat(dirfd, req->replaces, 0);
    }
done:
    req->seconds = now_s() - t0;
}

static void after_save(uv_work_t *work, int status)
{
    struct gf_save *req = work->data;
    req->saver->pending--;
    if (status == UV_ECANCELED)
        req->cb(req, UV_ECANCELED, "start");
    else
        req->cb(req, req->err, req->step);
}

int gf_save_start(struct gf_saver *s, struct gf_save *req, const char *name, const void *data,
                  size_t len, gf_save_cb cb)
{
    req->saver = s;
    req->name = name;
    req->data = data;
    req->len = len;
    req->cb = cb;
    req->sha256[0] = '\0';
    req->err = 0;
    req->step = NULL;
    req->seconds = -1;
    req->work.data = req;
    int err = uv_queue_work(s->loop, &req->work, save_work, after_save);
    if (err == 0)
        s->pending++;
    return err;
}

void gf_save_cancel(struct gf_save *req)
{
    uv_cancel((uv_req_t *)&req->work);
}

void gf_saver_close(struct gf_saver *s)
{
    if (s->dirfd >= 0) {
        /* The renames themselves, once for the whole run. */
        fsync(s->dirfd);
        close(s->dirfd);
    }
    s->dirfd = -1;
}
