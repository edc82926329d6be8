/* Loads one file below the served root on libuv's threadpool.
 *
 * realpath, a check that the result stays below the root (symbolic links
 * leaving it are refused), open, fstat (only regular files are served), read
 * and close run as one uv_queue_work item, so the loop never blocks on disk. */
#ifndef FLAGSERVER_FILELOAD_H
#define FLAGSERVER_FILELOAD_H

#include <stddef.h>
#include <sys/stat.h>

#include <uv.h>

typedef struct fs_file_result {
    int status;     /* 200, 404 (missing, not regular, outside root), 503 (out of
                       descriptors) or 500 */
    int err;        /* the UV_E* code behind a non-200 status, else 0 */
    struct stat st; /* stat of the opened file when status is 200 */
    char *body;     /* malloc'd contents (NULL when empty or not asked for);
                       owned by the callback, which must free it */
    size_t len;     /* bytes in body */
} fs_file_result;

typedef void (*fs_file_cb)(fs_file_result *res, void *arg);
typedef struct fs_file_job fs_file_job;

/* Starts loading root/rel (rel as made by fs_path_map). root must be an
 * absolute real path and outlive the job. When want_body is 0 the file is
 * only stat'ed. cb fires exactly once, later, from the loop, unless the job
 * is abandoned first. Returns 0 and the job in *out, or a UV_E* error (then
 * cb never fires). */
int fs_file_load(uv_loop_t *loop, const char *root, const char *rel, int want_body, fs_file_cb cb,
                 void *arg, fs_file_job **out);

/* Withdraws interest: cb will not fire, and the job frees itself (and any
 * body read) once its threadpool work is over. */
void fs_file_abandon(fs_file_job *job);

#endif
