/* Bodies in memory, or in a temporary file once they grow.
 *
 * The file is written here, on the loop thread, as curl hands over each
 * piece (at most CURL_MAX_WRITE_SIZE, 16 KiB): such a write only copies
 * into the page cache, as cheap as the memcpy it replaces, and a large
 * body is a rare case. What can block for long, the fdatasync before the
 * rename, runs on the threadpool in the saver's commit. */
#include "gf/body.h"

#include <string.h>

#include "gf/alloc.h"
#include "gf/error.h"

void gf_body_init(struct gf_body_sink *s, size_t limit, size_t spill_at, int dirfd, int is_gif)
{
    memset(s, 0, sizeof *s);
    s->limit = limit;
    s->spill_at = spill_at;
    s->dirfd = dirfd;
    s->is_gif = is_gif;
    gf_gif_init(&s->gif);
}

static void drop(struct gf_body_sink *s)
{
    if (s->file) {
        gf_afile_abort(s->file);
        gf_free(s->file);
        s->file = NULL;
    }
    gf_free(s->data);
    s->data = NULL;
    s->cap = 0;
}

void gf_body_abort(struct gf_body_sink *s)
{
    drop(s);
    s->len = 0;
    s->too_big = 0;
    s->err = 0;
    s->step = NULL;
    gf_gif_init(&s->gif);
}

static int file_failed(struct gf_body_sink *s, int err, const char *step)
{
    s->err = err;
    s->step = step;
    drop(s);
    return err;
}

/* Moves what memory holds to a new temporary file. */
static int spill(struct gf_body_sink *s)
{
    s->file = gf_malloc(sizeof *s->file);
    if (!s->file)
        return GF_ENOMEM;
    int rc = gf_afile_open(s->file, s->dirfd);
    if (rc != 0) {
        /* A failed open leaves nothing to remove. */
        const char *step = s->file->step;
        gf_free(s->file);
        s->file = NULL;
        return file_failed(s, rc, step);
    }
    if (s->len > 0 && (rc = gf_afile_write(s->file, s->data, s->len)) != 0)
        return file_failed(s, rc, s->file->step);
    gf_free(s->data);
    s->data = NULL;
    s->cap = 0;
    return 0;
}

int gf_body_append(struct gf_body_sink *s, const void *p, size_t n)
{
    int rc;

    if (n > s->limit - s->len) {
        s->too_big = 1;
        return GF_ETOOBIG;
    }
    if (s->err != 0)
        return s->err;
    if (s->is_gif && gf_gif_feed(&s->gif, p, n) != 0) {
        /* Never to be saved: counted for the message, not kept. */
        drop(s);
        s->len += n;
        return 0;
    }
    if (!s->file && s->spill_at > 0 && n > s->spill_at - s->len && (rc = spill(s)) != 0)
        return rc;
    if (s->file) {
        if ((rc = gf_afile_write(s->file, p, n)) != 0)
            return file_failed(s, rc, s->file->step);
        s->len += n;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t max = s->spill_at > 0 && s->spill_at < s->limit ? s->spill_at : s->limit;
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *d = gf_realloc(s->data, cap);
        if (!d)
            return GF_ENOMEM;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = '\0';
    return 0;
}

int gf_body_finish(struct gf_body_sink *s, char *why, size_t whysz)
{
    if (s->is_gif)
        return gf_gif_finish(&s->gif, why, whysz);
    if (whysz > 0)
        why[0] = '\0';
    return 0;
}

void gf_body_save(struct gf_body_sink *s, struct gf_saver *saver, struct gf_save *req,
                  const char *name, gf_save_cb cb)
{
    if (s->file)
        gf_save_start_stream(saver, req, name, s->file, cb);
    else
        gf_save_start(saver, req, name, s->data, s->len, cb);
}
