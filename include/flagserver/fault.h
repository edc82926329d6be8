/* Test-only misbehaviour, chosen by the request path.
 *
 * "/fault/<name>/rest" serves "/rest" but misbehaves as <name> says (see
 * src/flagserver/README.md for the list). Anything else is an ordinary
 * request. */
#ifndef FLAGSERVER_FAULT_H
#define FLAGSERVER_FAULT_H

#include <stddef.h>

typedef enum fs_fault {
    FS_FAULT_NONE = 0,
    FS_FAULT_REFUSE,
    FS_FAULT_RESET,
    FS_FAULT_SHORT,
    FS_FAULT_BADCHUNK,
    FS_FAULT_SILENCE,
    FS_FAULT_TRICKLE,
    FS_FAULT_LOOP,
    FS_FAULT_REDIRECT_FILE,
    FS_FAULT_REDIRECT_FTP,
    FS_FAULT_REDIRECT_OK,
    FS_FAULT_429,
    FS_FAULT_503,
    FS_FAULT_418,
    FS_FAULT_500,
    FS_FAULT_HTML,
    FS_FAULT_HUGEHEADERS,
    FS_FAULT_ENDLESS,
    FS_FAULT_GZIPBOMB,
    FS_FAULT_GZIPBOMB_TE,
    FS_FAULT_GZIP,
    FS_FAULT_BADGZIP,
    FS_FAULT_UNKNOWN, /* "/fault/<unknown name>": answer 404 */
} fs_fault;

/* Classifies a raw request target. Returns FS_FAULT_NONE with *rest_off 0
 * for an ordinary target; otherwise the fault and in *rest_off the offset of
 * "/rest" in target (== len when nothing follows the name). */
fs_fault fs_fault_parse(const char *target, size_t len, size_t *rest_off);

/* The name used in paths ("reset", "gzipbomb-te", ...), static; "" for NONE. */
const char *fs_fault_name(fs_fault f);

/* A 200 answer with fixed content. */
typedef struct fs_fault_answer {
    const char *ctype;  /* NULL: the type of the rest path */
    const char *header; /* header line ending in CRLF, or NULL */
    const char *body;   /* static */
    size_t len;
    int chunked; /* announce no Content-Length */
    int close;   /* the connection closes after the body */
} fs_fault_answer;

/* Fills *a and returns 1 for the faults whose answer is fixed (badchunk,
 * html, badgzip); returns 0 for the others. */
int fs_fault_fixed_answer(fs_fault f, fs_fault_answer *a);

/* For the redirect faults (loop, redirect-file, redirect-ftp, redirect-ok)
 * sets *loc and *loc_len to the Location (pointing into target or static)
 * and returns 1; returns 0 for the others. target[0..len) is the request
 * target and rest_off what fs_fault_parse returned. */
int fs_fault_redirect(fs_fault f, const char *target, size_t len, size_t rest_off, const char **loc,
                      size_t *loc_len);

/* Remembers which (fault, path) pairs were already seen, for the faults that
 * misbehave only on the first request of each path. */
typedef struct fs_fault_seen fs_fault_seen;

/* Returns an empty set, or NULL when out of memory. */
fs_fault_seen *fs_fault_seen_new(void);

/* Records (f, path[0..len)). Returns 1 when the pair is new, 0 when it was
 * seen before, -1 when out of memory (nothing recorded). */
int fs_fault_seen_first(fs_fault_seen *set, fs_fault f, const char *path, size_t len);

/* Frees the set; NULL is allowed. */
void fs_fault_seen_free(fs_fault_seen *set);

#endif
