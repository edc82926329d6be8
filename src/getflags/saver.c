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

#include "gf/alloc.h"
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
    /* Neither init can fail (libuv only fills in the handle). */
    uv_check_init(loop, &s->flush);
    uv_idle_init(loop, &s->wake);
    s->flush.data = s;
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
        static long pid;
        if (!pid)
            pid = (long)getpid();
        snprintf(name, namesz, TMP_PREFIX "%ld-%llu", pid, (unsigned long long)next_tmp_id());
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

/* Runs on a threadpool thread: one file, start to finish. */
static void save_one(struct gf_save *req)
{
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

struct gf_save_batch {
    uv_work_t work;
    struct gf_save *first;
};

static void batch_work(uv_work_t *work)
{
    struct gf_save_batch *b = work->data;
    for (struct gf_save *req = b->first; req; req = req->next)
        save_one(req);
}

/* Reports every save of a list; a callback may queue new saves. */
static void report(struct gf_save *req, int status)
{
    while (req) {
        struct gf_save *next = req->next;
        req->next = NULL;
        req->batch = NULL;
        req->saver->pending--;
        if (status != 0)
            req->cb(req, status, status == UV_ECANCELED ? "start" : "queue");
        else
            req->cb(req, req->err, req->step);
        req = next;
    }
}

static void after_batch(uv_work_t *work, int status)
{
    struct gf_save_batch *b = work->data;
    struct gf_save *first = b->first;
    gf_free(b);
    report(first, status);
}

static void on_wake(uv_idle_t *idle)
{
    (void)idle;
}

static void on_flush(uv_check_t *check)
{
    struct gf_saver *s = check->data;
    struct gf_save *first = s->queued;
    uv_check_stop(check);
    uv_idle_stop(&s->wake);
    s->queued = s->queued_tail = NULL;
    if (!first)
        return;
    struct gf_save_batch *b = gf_malloc(sizeof *b);
    if (!b) {
        report(first, UV_ENOMEM);
        return;
    }
    b->first = first;
    b->work.data = b;
    for (struct gf_save *req = first; req; req = req->next)
        req->batch = b;
    int err = uv_queue_work(s->loop, &b->work, batch_work, after_batch);
    if (err) {
        gf_free(b);
        report(first, err);
    }
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
    req->next = NULL;
    req->batch = NULL;
    if (s->queued_tail)
        s->queued_tail->next = req;
    else
        s->queued = req;
    s->queued_tail = req;
    s->pending++;
    if (!uv_is_active((uv_handle_t *)&s->flush)) {
        uv_check_start(&s->flush, on_flush);
        uv_idle_start(&s->wake, on_wake);
    }
    return 0;
}

void gf_save_cancel(struct gf_save *req)
{
    struct gf_saver *s = req->saver;
    if (req->batch) {
        uv_cancel((uv_req_t *)&req->batch->work);
        return;
    }
    struct gf_save *prev = NULL;
    for (struct gf_save *it = s->queued; it; prev = it, it = it->next) {
        if (it != req)
            continue;
        if (prev)
            prev->next = req->next;
        else
            s->queued = req->next;
        if (s->queued_tail == req)
            s->queued_tail = prev;
        req->next = NULL;
        report(req, UV_ECANCELED);
        return;
    }
}

void gf_saver_close(struct gf_saver *s)
{
    if (s->dirfd >= 0) {
        /* The renames themselves, once for the whole run. */
        fsync(s->dirfd);
        close(s->dirfd);
        uv_close((uv_handle_t *)&s->flush, NULL);
        uv_close((uv_handle_t *)&s->wake, NULL);
    }
    s->dirfd = -1;
}
