/* The body sink: where an HTTP body goes as it arrives.
 *
 * A body is kept in memory up to spill_at bytes; beyond that, what was
 * kept and everything after it goes to a temporary file in the output
 * directory (gf/afile.h), so that no body, however large, is held in
 * memory: with at most GF_BODY_SPILL_AT bytes per body, a run's bodies in
 * memory stay under GF_BODY_SPILL_AT times the number of codes whatever
 * servers send. An image body is walked as a GIF as it comes
 * (gf/gif.h); once it cannot be one, its bytes are counted but no longer
 * kept.
 *
 * One owner at a time: a transfer's body moves to its code by struct
 * copy, after which the old copy is dropped without gf_body_abort(). */
#ifndef GF_BODY_H
#define GF_BODY_H

#include <stddef.h>

#include "gf/afile.h"
#include "gf/gif.h"
#include "gf/saver.h"

/* Flags are a few KiB; 32 KiB keeps each in memory, and at -m 676 (every
 * code at once) bounds the bodies in memory to 21 MiB. */
#define GF_BODY_SPILL_AT (32u * 1024u)

struct gf_body_sink {
    char *data;            /* the body while in memory, NUL-terminated; owned */
    size_t len;            /* bytes taken, in memory or in the file */
    size_t cap;            /* of data */
    size_t limit;          /* a longer body is refused: too_big */
    size_t spill_at;       /* beyond this the body goes to a file; 0: never */
    int dirfd;             /* where the file goes; borrowed */
    int is_gif;            /* walk it as a GIF image */
    int too_big;           /* it went past limit */
    int err;               /* the file failed: a negated errno, step says where */
    const char *step;      /* "create a temporary file", "write" */
    struct gf_afile *file; /* once spilled: the temporary file; owned */
    struct gf_gif gif;
};

/* An empty sink (nothing to free yet). */
void gf_body_init(struct gf_body_sink *s, size_t limit, size_t spill_at, int dirfd, int is_gif);

/* Takes n more bytes. Returns 0, or GF_ETOOBIG (too_big set), GF_ENOMEM,
 * or the file's negated errno (err and step set): the body is then
 * unusable and the caller stops the transfer. */
int gf_body_append(struct gf_body_sink *s, const void *p, size_t n);

/* The body has ended. Returns 0 when it is usable: for an image, a whole
 * GIF; else GF_EGIF with the reason in why (whysz > 0). */
int gf_body_finish(struct gf_body_sink *s, char *why, size_t whysz);

/* Saves the finished body as name through saver: from memory, or by
 * renaming its temporary file. The sink must stay untouched until cb
 * has run; then gf_body_abort() frees it (the file is in place by then,
 * or already removed). cb reports every outcome, as with
 * gf_save_start(). */
void gf_body_save(struct gf_body_sink *s, struct gf_saver *saver, struct gf_save *req,
                  const char *name, gf_save_cb cb);

/* Frees the memory, closes and removes any temporary file, and empties the
 * sink for another body of the same kind (a retry). Safe on a zeroed sink
 * and twice. */
void gf_body_abort(struct gf_body_sink *s);

#endif
