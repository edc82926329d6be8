#include "flagserver/fileload.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flagserver/path.h"

/* Larger files are not what this server is for; refusing them keeps one
 * request from taking the memory of thousands. */
#define MAX_FILE_BYTES (256u * 1024 * 1024)

struct fs_file_job {
    uv_fs_t fs;
    uv_loop_t *loop;
    const char *root;
    fs_file_cb cb;
    void *arg;
    int abandoned;
    int want_body;
    uv_file fd;
    size_t cap;
    fs_file_result res;
    char path[PATH_MAX];
};

static void on_realpath(uv_fs_t *req);
static void on_open(uv_fs_t *req);
static void on_fstat(uv_fs_t *req);
static void on_read(uv_fs_t *req);
static void on_close(uv_fs_t *req);

static int status_of(int err)
{
    switch (err) {
    case UV_ENOENT:
    case UV_ENOTDIR:
    case UV_ELOOP:
    case UV_EACCES:
    case UV_EPERM:
    case UV_ENAMETOOLONG:
    case UV_EISDIR:
    case UV_ENXIO:
        return 404;
    case UV_EMFILE:
    case UV_ENFILE:
        return 503;
    default:
        return 500;
    }
}

/* Hands the result over (or drops it) and frees the job. */
static void deliver(fs_file_job *job)
{
    if (job->res.status != 200) {
        free(job->res.body);
        job->res.body = NULL;
        job->res.len = 0;
    }
    if (job->abandoned)
        free(job->res.body);
    else
        job->cb(&job->res, job->arg);
    free(job);
}

static void finish_with(fs_file_job *job, int status, int err)
{
    job->res.status = status;
    job->res.err = err;
    if (job->fd < 0) {
        deliver(job);
        return;
    }
    if (uv_fs_close(job->loop, &job->fs, job->fd, on_close) != 0)
        deliver(job); /* the descriptor leaks only if libuv cannot queue work */
}

static void fail_uv(fs_file_job *job, int err)
{
    finish_with(job, status_of(err), err);
}

int fs_file_load(uv_loop_t *loop, const char *root, const char *rel, int want_body, fs_file_cb cb,
                 void *arg, fs_file_job **out)
{
    fs_file_job *job = calloc(1, sizeof(*job));
    int n, rc;

    if (job == NULL)
        return UV_ENOMEM;
    n = snprintf(job->path, sizeof(job->path), "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof(job->path)) {
        free(job);
        return UV_ENAMETOOLONG;
    }
    job->loop = loop;
    job->root = root;
    job->cb = cb;
    job->arg = arg;
    job->want_body = want_body;
    job->fd = -1;
    job->fs.data = job;
    rc = uv_fs_realpath(loop, &job->fs, job->path, on_realpath);
    if (rc != 0) {
        free(job);
        return rc;
    }
    *out = job;
    return 0;
}

void fs_file_abandon(fs_file_job *job)
{
    job->abandoned = 1;
}

static void on_realpath(uv_fs_t *req)
{
    fs_file_job *job = req->data;
    ssize_t result = req->result;
    int rc;

    if (result < 0) {
        uv_fs_req_cleanup(req);
        fail_uv(job, (int)result);
        return;
    }
    if (!fs_path_is_within(job->root, req->ptr) || strlen(req->ptr) >= sizeof(job->path)) {
        uv_fs_req_cleanup(req);
        finish_with(job, 404, UV_EACCES);
        return;
    }
    strcpy(job->path, req->ptr);
    uv_fs_req_cleanup(req);
    if (job->abandoned) {
        deliver(job);
        return;
    }
    /* The resolved path has no links left; O_NOFOLLOW guards its last part
     * against a swap in between, and O_NONBLOCK keeps a FIFO from hanging a
     * threadpool thread (fstat then refuses it). */
    rc = uv_fs_open(job->loop, req, job->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0,
                    on_open);
    if (rc != 0)
        fail_uv(job, rc);
}

static void on_open(uv_fs_t *req)
{
    fs_file_job *job = req->data;
    ssize_t result = req->result;
    int rc;

    uv_fs_req_cleanup(req);
    if (result < 0) {
        fail_uv(job, (int)result);
        return;
    }
    job->fd = (uv_file)result;
    if (job->abandoned) {
        finish_with(job, 500, UV_ECANCELED);
        return;
    }
    rc = uv_fs_fstat(job->loop, req, job->fd, on_fstat);
    if (rc != 0)
        fail_uv(job, rc);
}

static void start_read(fs_file_job *job)
{
    uv_buf_t buf = uv_buf_init(job->res.body + job->res.len, (unsigned)(job->cap - job->res.len));
    int rc = uv_fs_read(job->loop, &job->fs, job->fd, &buf, 1, (int64_t)job->res.len, on_read);

    if (rc != 0)
        fail_uv(job, rc);
}

static void on_fstat(uv_fs_t *req)
{
    fs_file_job *job = req->data;
    ssize_t result = req->result;

    if (result < 0) {
        uv_fs_req_cleanup(req);
        fail_uv(job, (int)result);
        return;
    }
    job->res.st = req->statbuf;
    uv_fs_req_cleanup(req);
    if (job->abandoned) {
        finish_with(job, 500, UV_ECANCELED);
        return;
    }
    if (!S_ISREG(job->res.st.st_mode)) {
        finish_with(job, 404, UV_EISDIR);
        return;
    }
    if (job->res.st.st_size > MAX_FILE_BYTES) {
        finish_with(job, 500, UV_EFBIG);
        return;
    }
    job->cap = (size_t)job->res.st.st_size;
    if (!job->want_body || job->cap == 0) {
        finish_with(job, 200, 0);
        return;
    }
    job->res.body = malloc(job->cap);
    if (job->res.body == NULL) {
        finish_with(job, 500, UV_ENOMEM);
        return;
    }
    start_read(job);
}

static void on_read(uv_fs_t *req)
{
    fs_file_job *job = req->data;
    ssize_t result = req->result;

    uv_fs_req_cleanup(req);
    if (result < 0) {
        fail_uv(job, (int)result);
        return;
    }
    job->res.len += (size_t)result;
    /* A file that shrank since fstat ends early; one that grew is cut at
     * the size its stat (and so its ETag) announced. */
    if (result == 0 || job->res.len == job->cap || job->abandoned) {
        finish_with(job, 200, 0);
        return;
    }
    start_read(job);
}

static void on_close(uv_fs_t *req)
{
    fs_file_job *job = req->data;

    uv_fs_req_cleanup(req);
    deliver(job);
}
