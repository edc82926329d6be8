#include "flagserver/fileload.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "flagserver/path.h"

/* Larger files are not what this server is for; refusing them keeps one
 * request from taking the memory of thousands. */
#define MAX_FILE_BYTES (256u * 1024 * 1024)

struct fs_file_job {
    uv_work_t work;
    const char *root;
    fs_file_cb cb;
    void *arg;
    int abandoned;
    int want_body;
    fs_file_result res;
    char path[PATH_MAX];
};

/* The status for a failed call: errno as a UV_E* code in res.err. */
static int failed(fs_file_result *res, int err)
{
    res->err = err;
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

/* Reads the whole file; a file that shrank since fstat ends early, one that
 * grew is cut at the size its stat (and so its ETag) announced. */
static int read_body(int fd, fs_file_result *res)
{
    size_t cap = (size_t)res->st.st_size;

    res->body = malloc(cap);
    if (res->body == NULL)
        return failed(res, UV_ENOMEM);
    while (res->len < cap) {
        ssize_t n = read(fd, res->body + res->len, cap - res->len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return failed(res, -errno);
        if (n == 0)
            break;
        res->len += (size_t)n;
    }
    return 200;
}

/* Threadpool: resolve, check, open, stat and read, with plain blocking
 * calls. The result stays in job->res. */
static int load(fs_file_job *job)
{
    fs_file_result *res = &job->res;
    char real[PATH_MAX];
    int fd, status;

    if (realpath(job->path, real) == NULL)
        return failed(res, -errno);
    if (!fs_path_is_within(job->root, real))
        return failed(res, UV_EACCES);
    /* The resolved path has no links left; O_NOFOLLOW guards its last part
     * against a swap in between, and O_NONBLOCK keeps a FIFO from hanging a
     * threadpool thread (fstat then refuses it). */
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return failed(res, -errno);
    if (fstat(fd, &res->st) != 0)
        status = failed(res, -errno);
    else if (!S_ISREG(res->st.st_mode))
        status = failed(res, UV_EISDIR);
    else if (res->st.st_size > MAX_FILE_BYTES)
        status = failed(res, UV_EFBIG);
    else if (job->want_body && res->st.st_size > 0)
        status = read_body(fd, res);
    else
        status = 200;
    close(fd);
    return status;
}

static void on_work(uv_work_t *w)
{
    fs_file_job *job = w->data;

    job->res.status = load(job);
}

/* Hands the result over (or drops it) and frees the job. */
static void on_done(uv_work_t *w, int status)
{
    fs_file_job *job = w->data;

    if (job->res.status != 200 || job->abandoned) {
        free(job->res.body);
        job->res.body = NULL;
        job->res.len = 0;
    }
    if (!job->abandoned)
        job->cb(&job->res, job->arg);
    free(job);
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
    job->root = root;
    job->cb = cb;
    job->arg = arg;
    job->want_body = want_body;
    job->work.data = job;
    rc = uv_queue_work(loop, &job->work, on_work, on_done);
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
