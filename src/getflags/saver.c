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
    struct statfs sf;
    *s = (struct gf_saver){.loop = loop, .dirfd = dirfd, .open = 1};
    s->in_memory =
        fstatfs(dirfd, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
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

/* The callbacks of the saves done on the loop thread, in order, once per
 * loop iteration: never from inside gf_save_start(). */
static void on_idle(uv_idle_t *idle)
{
    struct gf_saver *s = idle->data;
    uv_idle_stop(idle);
    while (s->done != NULL) {
        struct gf_save *req = s->done;
        s->done = req->next_done;
        if (s->done == NULL)
            s->done_tail = NULL;
        s->pending--;
        req->cb(req, req->err, req->step);
    }
}

static void on_idle_closed(uv_handle_t *h)
{
    (void)h; /* the handle is part of its gf_saver: nothing to free */
}

/* In memory, a save never waits for a device (fdatasync returns at once),
 * so it runs here, on the loop thread: handing it to the threadpool would
 * cost more (a thread woken, the loop woken back) than the save itself. */
static void save_here(struct gf_saver *s, struct gf_save *req)
{
    if (!s->idle_ready) {
        /* Cannot fail: uv_idle_init only sets the handle up. */
        uv_idle_init(s->loop, &s->idle);
        s->idle.data = s;
        s->idle_ready = 1;
    }
    save_one(req);
    req->next_done = NULL;
    if (s->done_tail)
        s->done_tail->next_done = req;
    else
        s->done = req;
    s->done_tail = req;
    uv_idle_start(&s->idle, on_idle);
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
    if (s->in_memory) {
        save_here(s, req);
        return;
    }
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
    /* A save done on the loop thread has run: it reports as usual. */
    if (req->saver != NULL && req->saver->in_memory)
        return;
    /* UV_EBUSY when it already runs or ran: it then reports as usual. */
    (void)uv_cancel((uv_req_t *)&req->work);
}

void gf_saver_close(struct gf_saver *s)
{
    if (s->open) {
        /* The renames themselves, once for the whole run. */
        fsync(s->dirfd);
    }
    if (s->idle_ready) {
        /* No save is pending, so no callback is lost. s outlives the
         * loop's last run, which completes the close. */
        uv_close((uv_handle_t *)&s->idle, on_idle_closed);
        s->idle_ready = 0;
    }
    s->open = 0;
}
