/* DIR/.getflags/manifest.json: what the last run did, code by code, for
 * --update (conditional GETs), --retry-failed and scripts.
 *
 * An in-memory model and its file. The file holds state only (what each
 * code's file is and what vouches for it; --json reports timings). It is
 * JSON with keys in a fixed order and one entry per line, sorted by code,
 * so that two runs that did the same thing write the same bytes but for
 * their times; every value is written as cJSON prints it, and read back
 * by cJSON:
 *
 *   {"version": 2, "run_time": "2026-11-21T20:41:03Z",
 *    "base_url": "http://localhost:8001/flags",
 *    "entries": [
 *   {"cc": "BR", "status": "ok", "http_status": 200, "file": "Brazil.gif",
 *    "bytes": 6127, "sha256": "<64 hex digits>",
 *    "meta": {"etag": "\"5f-1a\"", "last_modified": "Sat, ..."},
 *    "image": {...}, "error": null}
 *   ]}
 *
 * Absent values are written as null, and every key is always present.
 * Times are UTC whatever TZ says. Version 1 files (which also held
 * per-request timings) are read too; their timings are ignored.
 *
 * A file may be named by an entry of any status: an error or not_found
 * entry keeps the file an earlier run saved, so that the name stays the
 * code's (see gf/state.h). The file is untrusted when read back (a user may edit it):
 * see gf_manifest_load(). Loop-thread or main-thread use only; nothing
 * here is thread-safe. */
#ifndef GF_MANIFEST_H
#define GF_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gf/codes.h"
#include "gf/model.h"
#include "gf/report.h"

#define GF_MANIFEST_NAME "manifest.json"
#define GF_MANIFEST_VERSION 2
/* The oldest version still read. */
#define GF_MANIFEST_VERSION_MIN 1
/* A larger file is refused unread. */
#define GF_MANIFEST_MAX_BYTES (16 * 1024 * 1024)
/* Most JSON values (roughly: commas and brackets) in a file read back; a
 * full manifest of 676 codes has about 20,000. */
#define GF_MANIFEST_MAX_VALUES 100000
/* "2026-11-21T20:41:03Z" and its NUL. */
#define GF_MANIFEST_TIME_LEN 21

/* One HTTP request of a code (metadata.json or the image). */
struct gf_manifest_request {
    char *etag;          /* the response's ETag, NULL when none */
    char *last_modified; /* its Last-Modified, NULL when none */
};

struct gf_manifest_entry {
    gf_cc cc;              /* "AA".."ZZ" */
    enum gf_status status; /* GF_OK, GF_NOT_FOUND, GF_ERROR or GF_UNCHANGED */
    int http_status;       /* last HTTP status, 0 when none */
    char *file;            /* file name in DIR; NULL when none (required for ok
                            * and unchanged; an error or not_found entry may keep
                            * the file of an earlier run) */
    uint64_t bytes;        /* size of the file, at most 2^53 */
    char sha256[65];       /* lower-case hex SHA-256 of the file, "" when none */
    struct gf_manifest_request meta, image;
    char *error; /* why it ended in error, NULL when it did not */
};

/* A zeroed struct is an empty manifest. Every string in it is owned by
 * the manifest; read them, but change entries only through
 * gf_manifest_set(). */
struct gf_manifest {
    char *run_time;                    /* UTC ISO 8601, NULL when unset */
    char *base_url;                    /* NULL when unset */
    struct gf_manifest_entry *entries; /* sorted by cc, one per code */
    size_t n;
    size_t cap;
    size_t skipped; /* invalid entries gf_manifest_load() dropped */
};

/* Reads DIR/.getflags/manifest.json into m, which is overwritten, not
 * freed: pass a zeroed or freed manifest. Free m after any return.
 *
 * A missing DIR, DIR/.getflags or manifest.json is a first run: returns 0
 * with m empty. Otherwise it returns:
 * - GF_EMETADATA when the file is unusable: larger than
 *   GF_MANIFEST_MAX_BYTES, not a regular file, not valid JSON (raw
 *   control characters included), a string with \u0000 in it, more than
 *   GF_MANIFEST_MAX_VALUES values, or not the
 *   expected shape (not an object, "version" not 1 or 2, "entries" not an
 *   array,
 *   "run_time" not a UTC ISO 8601 time, "base_url" not a string);
 * - a negated errno when it cannot be read, -ELOOP when .getflags or
 *   manifest.json is a symbolic link (neither is followed);
 * - GF_ENOMEM.
 * m is then empty, and err says what is wrong and names the path. The
 * caller decides: --update warns and downloads everything, --retry-failed
 * fails.
 *
 * An entry that is not valid is dropped, not fatal: a code that is not two
 * letters A-Z, a code seen before, an unknown status, a value of the wrong
 * type or range, a file name that is not a plain name in DIR (see
 * gf_manifest_file_ok()), ok or unchanged without a file, a sha256 that is
 * not 64 hex digits, an ETag or Last-Modified that could not be sent back
 * in a header. m->skipped counts them and, when it is not 0, err says how
 * many and why the first one was dropped, for a warning. Unknown keys are
 * ignored. An error text with invalid UTF-8 or control characters is kept
 * with those bytes turned into '?'. */
int gf_manifest_load(const char *dir, struct gf_manifest *m, char *err, size_t errsz);

/* The same through sfd, an open DIR/.getflags; label is what messages call
 * the directory DIR. A missing manifest.json is a first run. A
 * manifest.json with more than one link is refused (-EMLINK). */
int gf_manifest_load_at(int sfd, const char *label, struct gf_manifest *m, char *err, size_t errsz);

/* Forgets every entry's ETag and Last-Modified: what another server said
 * proves nothing about the copy this one serves. */
void gf_manifest_drop_validators(struct gf_manifest *m);

/* The entry of code cc ("BR"), or NULL. The pointer is valid until the
 * next gf_manifest_set() or gf_manifest_free(). */
const struct gf_manifest_entry *gf_manifest_find(const struct gf_manifest *m, const char *cc);

/* Adds the entry for e->cc, or replaces the one already there, copying
 * every string of e (the caller keeps e). Returns 0; UV_EINVAL when e
 * breaks the rules gf_manifest_load() enforces on a file (cc, status,
 * file name, file present for ok and unchanged, sha256, http_status,
 * bytes), so that what is saved always loads back; or GF_ENOMEM. On error
 * m is unchanged. Values copied with a change rather than refused,
 * because they come from a server: an ETag or Last-Modified that could not
 * be sent back in a header (gf_header_value_ok()) is not stored, so the
 * next --update does a plain GET; invalid UTF-8 and control characters in error become '?'. */
int gf_manifest_set(struct gf_manifest *m, const struct gf_manifest_entry *e);

/* Sets the run's time (a gf_manifest_time() string, or NULL) and base URL
 * (or NULL), copying both. Returns 0, UV_EINVAL when run_time is not in
 * that form, or GF_ENOMEM (m unchanged). */
int gf_manifest_set_run(struct gf_manifest *m, const char *run_time, const char *base_url);

/* Writes m to DIR/.getflags/manifest.json as an atomic file (gf/afile.h):
 * creates DIR (one level) and DIR/.getflags when missing (mode 0777 less
 * the umask; a symbolic link at .getflags is refused), writes a temporary
 * file in DIR/.getflags, then renames it over manifest.json and syncs the
 * directory. On any failure the temporary file is removed, manifest.json
 * is left as it was, and the return is a negated errno (or GF_ENOMEM) with
 * err naming the path and the reason, e.g. "cannot write
 * out/.getflags/.getflags-tmp-4242-0: no space left on device". Hold the
 * run's lock (gf/lock.h). */
int gf_manifest_save(const char *dir, const struct gf_manifest *m, char *err, size_t errsz);

/* The same through sfd, an open DIR/.getflags; label names DIR in
 * messages. */
int gf_manifest_save_at(int sfd, const char *label, const struct gf_manifest *m, char *err,
                        size_t errsz);

/* Frees every string and the entries, and leaves m empty and reusable.
 * Safe on NULL and twice. */
void gf_manifest_free(struct gf_manifest *m);

/* Formats t as UTC ISO 8601, "2026-11-21T20:41:03Z", whatever TZ is (pass
 * time(NULL) for now). Returns 0, or UV_EINVAL when t is outside years
 * 0..9999. */
int gf_manifest_time(time_t t, char out[GF_MANIFEST_TIME_LEN]);

/* 1 when name is safe to join to DIR, and to unlink there, as a flag file:
 * valid UTF-8 of at most GF_NAME_MAX bytes ending in ".gif" with something
 * before it, not starting with '.', without '/', '\\' or control
 * characters. Else 0. */
int gf_manifest_file_ok(const char *name);

#endif
