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

#include "gf/afile.h"
#include "gf/alloc.h"
#include "gf/error.h"

int gf_saver_init(struct gf_saver *s, uv_loop_t *loop, int dirfd)
{
    *s = (struct gf_saver){.loop = loop, .dirfd = dirfd};
    /* Neither init can fail (libuv only fills in the handle). */
    uv_check_init(loop, &s->flush);
    uv_idle_init(loop, &s->wake);
    s->flush.data = s;
    s->open = 1;
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
        /* Never started: a streamed body's temporary file goes. */
        if (status != 0 && req->stream)
            gf_afile_abort(req->stream);
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

int gf_save_start_stream(struct gf_saver *s, struct gf_save *req, const char *name,
                         struct gf_afile *a, gf_save_cb cb)
{
    int rc = gf_save_start(s, req, name, NULL, 0, cb);
    req->stream = a;
    return rc;
}

int gf_save_start(struct gf_saver *s, struct gf_save *req, const char *name, const void *data,
                  size_t len, gf_save_cb cb)
{
    req->saver = s;
    req->name = name;
    req->data = data;
    req->len = len;
    req->stream = NULL;
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
    if (s->open) {
        /* The renames themselves, once for the whole run. */
        fsync(s->dirfd);
        uv_close((uv_handle_t *)&s->flush, NULL);
        uv_close((uv_handle_t *)&s->wake, NULL);
    }
    s->open = 0;
}
