/* The saver: writes flag images into the output directory on libuv's
 * threadpool, never on the loop thread.
 *
 * Each save is an atomic file (gf/afile.h): a new temporary file in the
 * directory, every write checked, fdatasync, then a rename over the final
 * name, so a reader only ever sees a complete file and an existing file
 * is replaced atomically. On any failure the temporary file is removed
 * and the final name is left as it was. */
#ifndef GF_SAVER_H
#define GF_SAVER_H

#include <stddef.h>
#include <uv.h>

#include "gf/afile.h"

struct gf_save;

struct gf_saver {
    uv_loop_t *loop;
    int dirfd;        /* the output directory; borrowed from its gf_state */
    int open;         /* between init and close */
    unsigned pending; /* saves queued or running */
};

struct gf_save;
/* Runs on the loop thread when a save has ended: err is 0, a UV_E* code
 * from the failing step (*step names it, e.g. "write"), or UV_ECANCELED
 * when gf_save_cancel() stopped it before it started. */
typedef void (*gf_save_cb)(struct gf_save *req, int err, const char *step);

struct gf_save {
    uv_work_t work; /* private: one threadpool request per save */
    struct gf_saver *saver;
    const char *name; /* final name inside the directory; borrowed */
    const void *data; /* borrowed until the callback */
    size_t len;
    /* A file to remove once name is in place (the code's file from an
     * earlier run, when its country name changed), or NULL; borrowed. */
    const char *replaces;
    /* A body already written to its temporary file as it arrived (see
     * gf_save_start_stream()), or NULL; borrowed until the callback. */
    struct gf_afile *stream;
    char sha256[65]; /* hex SHA-256 of data, filled in on success */
    int err;
    const char *step;
    double seconds; /* time the save took on its thread */
    gf_save_cb cb;
    void *userdata;
};

/* How many threadpool threads saves into dir want, for ncodes codes:
 * never more than one per code; one when dir (or, while it does not exist
 * yet, its nearest parent) is on a file system held in memory (tmpfs,
 * ramfs), where a save never waits for a device (fdatasync returns at
 * once), so more threads would only pass the saves from one to another,
 * at two context switches a hand-off (B1 on tmpfs: 0.9x the CPU with
 * one); else libuv's four, since on a disk each save waits on its
 * fdatasync and four keep four in flight (B1 on ext4: one thread takes
 * 1.7x the wall time). */
unsigned gf_saver_threads(const char *dir, size_t ncodes);

/* Prepares s to save into the directory dirfd (borrowed: it must stay
 * open until gf_saver_close()). Returns 0. */
int gf_saver_init(struct gf_saver *s, uv_loop_t *loop, int dirfd);

/* Queues a save for the threadpool; set req->replaces before (or leave it
 * NULL). cb always runs, never before this returns; whatever goes wrong
 * (even failing to reach the threadpool) is reported through it. A
 * failure to remove req->replaces does not fail the save. */
void gf_save_start(struct gf_saver *s, struct gf_save *req, const char *name, const void *data,
                   size_t len, gf_save_cb cb);

/* Saves a body that was written as it arrived, so that a large image
 * never has to be held in memory: on the loop thread, gf_afile_open(a,
 * s->dirfd) when the body starts (or once it outgrows a memory buffer),
 * gf_afile_write() each piece, then this call, which flushes, renames it
 * to name and removes req->replaces on the threadpool, like
 * gf_save_start(). A save that fails or is cancelled removes the
 * temporary file; req->sha256 is that of everything written. */
void gf_save_start_stream(struct gf_saver *s, struct gf_save *req, const char *name,
                          struct gf_afile *a, gf_save_cb cb);

/* Cancels a save that no thread has started, for an interrupted run: its
 * callback then reports UV_ECANCELED from the loop (not from this call)
 * and nothing was written. A save already running finishes and reports
 * as usual. */
void gf_save_cancel(struct gf_save *req);

/* Syncs the directory (the renames of the run, once). Call once no save
 * is pending. s may be one whose gf_saver_init() failed. */
void gf_saver_close(struct gf_saver *s);

#endif
