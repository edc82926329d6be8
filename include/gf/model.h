/* The data model every module shares: what became of one code (gf_item),
 * its status and the timings of its requests, and the one table of status
 * names used by the reports, the --json output and the manifest. */
#ifndef GF_MODEL_H
#define GF_MODEL_H

#include <stdint.h>

#include "gf/codes.h"

enum gf_status {
    GF_PENDING = 0, /* not ended (an interrupted run) */
    GF_OK,
    GF_NOT_FOUND,
    GF_ERROR,
    GF_UNCHANGED, /* --update: the server answered 304, the file is untouched */
};

/* Timings of one HTTP request, in seconds (negative when unknown). */
struct gf_phases {
    double sem_wait, dns, connect, tls, first_byte, transfer, total;
};

/* What became of one code. Owned by the run; strings may be NULL. */
struct gf_item {
    gf_cc cc;
    enum gf_status status;
    int http_status;   /* last HTTP status seen, 0 when none */
    char *file;        /* file name inside the output directory (OK only) */
    char *error;       /* reason (ERROR only), e.g. "HTTP error 418 - I'm a teapot" */
    char *url;         /* last URL requested (for "not found: <url>") */
    uint64_t bytes;    /* body bytes received for this code */
    unsigned requests; /* HTTP requests sent for this code */
    unsigned begun;    /* requests begun (sent or not) */
    struct gf_phases meta, image;
    double save_s; /* time the save took on the threadpool, or -1 */
    /* Validators of the last answers (for the manifest); NULL when none. */
    char *meta_etag, *meta_last_modified, *image_etag, *image_last_modified;
    char sha256[65];      /* of the saved (or unchanged) file, "" when none */
    char http_version[4]; /* of the last answer: "1.0", "1.1", "2", "3"; "" when none */
    uint64_t file_bytes;  /* size of that file */
};

/* The status's name in --json and the manifest: "pending", "ok",
 * "not_found", "error", "unchanged"; "pending" for a value out of range. */
const char *gf_status_name(enum gf_status st);

/* The status named name (one of the above). Returns 0, or -1 with *st
 * untouched when name is none of them. */
int gf_status_parse(const char *name, enum gf_status *st);

/* 1 for the statuses whose code has its file in DIR (ok, unchanged). */
int gf_status_has_file(enum gf_status st);

#endif
