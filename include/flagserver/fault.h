/* Test-only misbehaviour, chosen by the request path.
 *
 * "/fault/<name>/rest" serves "/rest" but misbehaves as <name> says (see
 * src/flagserver/README.md for the list). Anything else is an ordinary
 * request. */
#ifndef FLAGSERVER_FAULT_H
#define FLAGSERVER_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "flagserver/gz.h"

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
    FS_FAULT_LONGHEADER,
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

/* What the connection does once an answer's head and body are written. */
typedef enum fs_after {
    FS_AFTER_KEEP,    /* done; the connection stays if the request allows it */
    FS_AFTER_CLOSE,   /* done; close (gracefully) */
    FS_AFTER_RESET,   /* done; close with an RST (SO_LINGER 0) */
    FS_AFTER_REFUSE,  /* send nothing at all; close */
    FS_AFTER_SILENCE, /* head only, then nothing until the client goes */
    FS_AFTER_TRICKLE, /* one body byte every 2 s */
    FS_AFTER_ENDLESS, /* zero bytes until the client goes */
} fs_after;

/* An answer as conn.c writes it. Pointers need to live only until conn.c
 * takes the answer, except body, which stays until the answer is over:
 * static, the bomb or owned. */
typedef struct fs_answer {
    int status;
    int text;           /* the body is "<status> <reason>\n" (body unused) */
    const char *ctype;  /* NULL: no Content-Type */
    const char *extra;  /* header lines ending in CRLF, or NULL */
    const char *extra2; /* more of them (validators), or NULL */
    const char *loc;    /* Location (loc_len bytes), or NULL */
    size_t loc_len;
    int64_t clen; /* -1: no Content-Length */
    const unsigned char *body;
    size_t len;
    unsigned char *owned; /* malloc'd storage freed with the answer; may be body */
    fs_after after;
} fs_answer;

/* Remembers which (fault, path) pairs were already seen, for the faults that
 * misbehave only on the first request of each path. */
typedef struct fs_fault_seen fs_fault_seen;

enum { FS_BOMB_NONE, FS_BOMB_BUILDING, FS_BOMB_READY };

/* What the fault paths keep for the server's life. */
typedef struct fs_faults {
    fs_fault_seen *seen;
    fs_bytes bomb;         /* gzip of 50 MiB of zeros, once built */
    fs_bytes bomb_chunked; /* the same in chunked framing */
    int bomb_state;        /* FS_BOMB_*; NONE also when building failed */
    uv_work_t bomb_work;
    char *filler;   /* 200 KiB of header lines for hugeheaders */
    char *longline; /* one 200 KiB header line for longheader */
} fs_faults;

/* Makes the first-request memory and the header fillers, and starts
 * building the bomb on loop's threadpool (it takes a fraction of a second;
 * if it cannot start, the bomb faults answer 500). *f must be zeroed.
 * Returns 0, or UV_ENOMEM (then fs_faults_free what was made). */
int fs_faults_init(fs_faults *f, uv_loop_t *loop);

/* Cancels the bomb if it has not started yet; otherwise the loop waits for
 * it to end. */
void fs_faults_stop(fs_faults *f);

/* Frees everything once the loop is over; f is then zeroed. */
void fs_faults_free(fs_faults *f);

/* What fs_fault_answer decided. */
enum {
    FS_FAULT_SERVE,    /* serve the file, then pass its answer to fs_fault_shape */
    FS_FAULT_ANSWERED, /* *a is the whole answer */
    FS_FAULT_WAIT,     /* the bomb is still being built: ask again shortly */
};

/* The answer to fault f for the request target[0..len) (rest_off as
 * fs_fault_parse gave it), before any file is read. ctype is the type of the
 * rest path. 429 and 503 remember the rest path in st->seen. */
int fs_fault_answer(fs_faults *st, fs_fault f, const char *target, size_t len, size_t rest_off,
                    const char *ctype, fs_answer *a);

/* Reshapes the file's 200 answer *a (body owned, clen its size) as the file
 * faults ask (reset, short, silence, trickle, hugeheaders, gzip). Returns 1
 * when it did, 0 when f leaves the file as it is (conditional requests then
 * apply), -1 when out of memory (*a unchanged). */
int fs_fault_shape(const fs_faults *st, fs_fault f, fs_answer *a);

/* Returns an empty set, or NULL when out of memory. */
fs_fault_seen *fs_fault_seen_new(void);

/* Records (f, path[0..len)). Returns 1 when the pair is new, 0 when it was
 * seen before, -1 when out of memory (nothing recorded). */
int fs_fault_seen_first(fs_fault_seen *set, fs_fault f, const char *path, size_t len);

/* Frees the set; NULL is allowed. */
void fs_fault_seen_free(fs_fault_seen *set);

#endif
