#include "gf/saver.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "gf/afile.h"
#include "gf/alloc.h"
#include "gf/error.h"

/* 1 when dir, or the nearest of its parents that exists, is on a file
 * system held in memory. */
static int in_memory(const char *dir)
{
    char path[4096];
    struct statfs sf;
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return 0;
    for (;;) {
        if (statfs(path, &sf) == 0)
            return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
        if (errno != ENOENT || strcmp(path, ".") == 0 || strcmp(path, "/") == 0)
            return 0;
        char *slash = strrchr(path, '/');
        if (slash == NULL)
            strcpy(path, ".");
        else if (slash == path)
            path[1] = '\0';
        else
            *slash = '\0';
    }
}

unsigned gf_saver_threads(const char *dir, size_t ncodes)
{
    size_t n = in_memory(dir) ? 1 : 4;
    if (n > ncodes)
        n = ncodes > 0 ? ncodes : 1;
    return (unsigned)n;
}

int gf_saver_init(struct gf_saver *s, uv_loop_t *loop, int dirfd)
{
    *s = (struct gf_saver){.loop = loop, .dirfd = dirfd, .open = 1};
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
    struct gf_afile a = {0}; /* set up by gf_afile_open */
    double t0 = now_s();

    struct gf_afile *f = req->stream ? req->stream : &a;
    if (req->stream) {
        req->err = gf_afile_commit(f, req->name, 0);
    } else {
        req->err = gf_afile_open(f, req->saver->dirfd);
        if (req->err == 0) {
            gf_afile_write(f, req->data, req->len);
            req->err = gf_afile_commit(f, req->name, 0);
        }
    }
    if (req->err != 0) {
        req->step = f->step;
    } else {
        memcpy(req->sha256, f->sha256, sizeof req->sha256);
        if (req->replaces && strcmp(req->replaces, req->name) != 0)
            unlinkat(req->saver->dirfd, req->replaces, 0);
    }
    req->seconds = now_s() - t0;
}

static void on_work(uv_work_t *work)
{
    save_one(work->data);
}

static void after_work(uv_work_t *work, int status)
{
    struct gf_save *req = work->data;
    req->saver->pending--;
    if (status != 0) {
        /* Cancelled before it started: a streamed body's temporary file
         * goes, and the name was never touched. */
        if (req->stream)
            gf_afile_abort(req->stream);
        req->cb(req, status, "start");
        return;
    }
    req->cb(req, req->err, req->step);
}

/* A thread may take the work as soon as it is queued: every field it
 * reads is set before. */
static void queue(struct gf_saver *s, struct gf_save *req, const char *name, const void *data,
                  size_t len, struct gf_afile *stream, gf_save_cb cb)
{
    req->saver = s;
    req->name = name;
    req->data = data;
    req->len = len;
    req->stream = stream;
    req->cb = cb;
    req->sha256[0] = '\0';
    req->err = 0;
    req->step = NULL;
    req->seconds = -1;
    req->work.data = req;
    s->pending++;
    /* Cannot fail: libuv refuses only a NULL work callback. */
    (void)uv_queue_work(s->loop, &req->work, on_work, after_work);
}

void gf_save_start(struct gf_saver *s, struct gf_save *req, const char *name, const void *data,
                   size_t len, gf_save_cb cb)
{
    queue(s, req, name, data, len, NULL, cb);
}

void gf_save_start_stream(struct gf_saver *s, struct gf_save *req, const char *name,
                          struct gf_afile *a, gf_save_cb cb)
{
    queue(s, req, name, NULL, 0, a, cb);
}

void gf_save_cancel(struct gf_save *req)
{
    /* UV_EBUSY when it already runs or ran: it then reports as usual. */
    (void)uv_cancel((uv_req_t *)&req->work);
}

void gf_saver_close(struct gf_saver *s)
{
    if (s->open) {
        /* The renames themselves, once for the whole run. */
        fsync(s->dirfd);
    }
    s->open = 0;
}
