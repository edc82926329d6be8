/* DIR's state across runs: the one owner of the output directory, its
 * lock, its manifest, and which file belongs to which code.
 *
 * A run goes through it in this order:
 *
 *   gf_state_open()      opens DIR once as a directory descriptor
 *                        (creating it and its parents), takes the lock,
 *                        removes temporary files of runs no longer alive,
 *                        loads the manifest and checks every file it names
 *                        against its recorded size and SHA-256;
 *   gf_state_select_failed(), gf_state_prevs()
 *                        what --retry-failed and --update need;
 *   gf_state_begin()     once the run is set up: a manifest in which the
 *                        run's codes are not finished, in case the run
 *                        never writes another (SIGKILL, a power cut);
 *   gf_state_claim()     during the run, the file name a code may write;
 *   gf_state_record()    each code's outcome after the run;
 *   gf_state_save()      writes the manifest;
 *   gf_state_next_run()  (--sweep) the next run starts from it: back to
 *                        gf_state_prevs();
 *   gf_state_close().
 *
 * The guarantees it keeps:
 * - a file named by the manifest belongs to its code: no other code of a
 *   later run writes it (gf_state_claim() refuses, and the code takes the
 *   "<name>_<CC>.gif" form), and a code keeps the name it had;
 * - after gf_state_save(), every ok or unchanged entry names an existing
 *   regular file of the recorded size and SHA-256, and no two entries
 *   name one file;
 * - a file that no longer matches its entry is never vouched for by a
 *   304 (--update fetches it unconditionally);
 * - a code that did not finish (an interrupted run) is recorded as an
 *   error, so --retry-failed fetches it.
 *
 * Main-thread and loop-thread use only. */
#ifndef GF_STATE_H
#define GF_STATE_H

#include <stddef.h>
#include <stdio.h>

#include "gf/codes.h"
#include "gf/fetch.h"
#include "gf/manifest.h"
#include "gf/report.h"

struct gf_state_config {
    const char *dir;      /* DIR as the user gave it (also in messages) */
    const char *base_url; /* this run's server, as stored */
    int update;           /* --update: build the conditional-request data */
    int retry_failed;     /* --retry-failed: a manifest is required */
    int wait_lock;        /* wait for a busy lock instead of failing */
    int quiet;
    FILE *warn; /* warnings and "waiting for" lines; NULL for none */
};

struct gf_claim {
    gf_cc cc;
    char *name;
};

/* The fields are private to state.c; read them through the functions. */
struct gf_state {
    char *dir;
    int dirfd;  /* DIR, open for the whole run */
    int sfd;    /* DIR/.getflags */
    int lockfd; /* DIR/.getflags/lock while held */
    int update;
    int same_server;
    struct gf_manifest m;
    struct gf_prev *prev_store; /* per manifest entry: .file set when usable */
    const struct gf_prev **prevs;
    struct gf_prev *file_only; /* per code of a run without --update: .file only */
    struct gf_claim *claims;   /* names claimed in this run */
    size_t nclaims, claims_cap;
    unsigned swept; /* temporary files removed at open */
    int reserved;   /* GF_RESERVE_NAME holds the final manifest's space */
};

/* In DIR/.getflags, from gf_state_begin() to gf_state_save(): space kept
 * for the manifest that ends the run, so that flags filling the disk do
 * not leave the manifest of its start in place. */
#define GF_RESERVE_NAME "manifest.reserve"
/* What the reservation allows for each entry of the final manifest, more
 * than a typical one takes (about 300 bytes). */
#define GF_RESERVE_PER_ENTRY 1024

/* gf_state_open()'s positive return: another process holds the lock. */
#define GF_STATE_BUSY 1

/* Opens DIR (created with its parents when missing, mode 0777 less the
 * umask) as a directory descriptor, then DIR/.getflags, the lock
 * (GF_STATE_BUSY when another run holds it and wait_lock is 0), sweeps
 * stale temporary files, and loads and checks the manifest. A manifest
 * that cannot be used is a warning (the run starts afresh), except for
 * --retry-failed, which needs it: an error. Returns 0, GF_STATE_BUSY, or
 * a negative error; err then holds one message naming the path (e.g. "the
 * output directory out is a dangling symbolic link (to gone)"). On any
 * return but 0 nothing is held; s needs no close. */
int gf_state_open(struct gf_state *s, const struct gf_state_config *cfg, char *err, size_t errsz);

/* The directory descriptor of DIR, for the saver. */
int gf_state_dirfd(const struct gf_state *s);

/* --retry-failed: replaces codes[0..*n) by the codes whose entry is an
 * error, in code order, at most max. */
void gf_state_select_failed(const struct gf_state *s, gf_cc *codes, size_t *n, size_t max);

/* Per code of codes[0..n), what the last run recorded of it, or NULL
 * where nothing can vouch for the local file (no entry, the file missing
 * or changed). With --update against the same server, everything a
 * conditional request needs; else only the file, so that a country saved
 * under a new name replaces its old file in any run. Returns an array
 * owned by s, NULL when the manifest names no file, or NULL with *nomem
 * set. Valid until gf_state_record() or gf_state_close(). */
const struct gf_prev *const *gf_state_prevs(struct gf_state *s, const gf_cc *codes, size_t n,
                                            int *nomem);

/* Claims name for code cc in this run. Returns 1 when cc may write it: it
 * is not claimed by another code of this run, it is not the file of
 * another code's entry, and it is not "<stem>.gif" when cc's own file is
 * "<stem>_<CC>.gif" (a code keeps the name it had). Else 0, and the code
 * tries the "_<CC>" form. Out of memory is 0, the safe answer. */
int gf_state_claim(struct gf_state *s, const char *cc, const char *name);

/* Writes the manifest as it stands, but with codes[0..n) recorded as
 * unfinished errors (each keeping its file), so that a run that is killed
 * before gf_state_save() leaves them to --retry-failed; before that, it
 * reserves the final manifest's space (GF_RESERVE_NAME), where the file
 * system can. Returns 0, or a negative error with err saying why (the
 * manifest is then unchanged). */
int gf_state_begin(struct gf_state *s, const gf_cc *codes, size_t n, const char *base_url,
                   char *err, size_t errsz);

/* Records what became of one code. An ok or unchanged code names its
 * file; an error, not_found or unfinished code (GF_PENDING, recorded as
 * an error) keeps the file, size, hash and validators its entry had. A
 * file an entry of another code named is taken from it. Returns 0,
 * UV_EINVAL (the item breaks a rule of the manifest) or GF_ENOMEM. */
int gf_state_record(struct gf_state *s, const struct gf_item *it);

/* Sets the run's time and server and writes the manifest. Returns 0, or
 * a negative error with err saying why. */
int gf_state_save(struct gf_state *s, const char *base_url, char *err, size_t errsz);

/* Between two runs of one process that keeps the lock (the levels of
 * --sweep), after gf_state_save(): the manifest as recorded becomes what
 * the next run starts from, as if gf_state_open() had just loaded it. The
 * files it names are checked again, and the names claimed by this run are
 * forgotten. Call gf_state_prevs() again afterwards. Returns 0, or a
 * negative error with err saying why. */
int gf_state_next_run(struct gf_state *s, char *err, size_t errsz);

/* The manifest as it stands (for tests and scripts). */
const struct gf_manifest *gf_state_manifest(const struct gf_state *s);

/* Releases the lock and closes everything. Safe twice and on a state
 * whose open failed. */
void gf_state_close(struct gf_state *s);

#endif
