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

/* 1 when the fault sends (part of) the file named by the rest path, so the
 * file must exist (else 404); 0 when it answers without reading it. */
int fs_fault_reads_file(fs_fault f);

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
