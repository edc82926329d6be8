/* Atomic files: the one way getflags writes a file into DIR or
 * DIR/.getflags (flag images and the manifest alike).
 *
 * A new file is written under a temporary name in the target directory
 * (exclusive creation, never through a link, never blocking on a FIFO),
 * every write checked, then flushed to disk (fdatasync), renamed over its
 * final name and, when asked, the directory synced, so that a reader, a
 * crash or a power cut leaves either the old file or the new one, never a
 * torn one. On any failure the temporary file is removed.
 *
 * Temporary names are GF_TMP_PREFIX "<pid>-<n>". Only a process holding
 * DIR's lock writes them, so the holder knows that every such file it
 * finds belongs to a run that is no longer alive: gf_afile_sweep(). */
#ifndef GF_AFILE_H
#define GF_AFILE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/sha.h>

#define GF_TMP_PREFIX ".getflags-tmp-"
/* Room for a SHA-256 in lower-case hex and its NUL. */
#define GF_SHA256_HEX_LEN 65

struct gf_afile {
    int dirfd;                      /* borrowed */
    int fd;                         /* the temporary file while open, else -1 */
    int err;                        /* first failure, a negated errno; sticky */
    const char *step;               /* what failed: "create a temporary file", "write"... */
    uint64_t bytes;                 /* written so far */
    char tmp[64];                   /* its temporary name */
    SHA256_CTX sha;                 /* SHA-256 of everything written, when digesting */
    int digesting;                  /* sha is in use: opened by gf_afile_open */
    char sha256[GF_SHA256_HEX_LEN]; /* that digest in hex, once committed */
};

/* Writes all of p, retrying short writes and EINTR. Returns 0 or a
 * negated errno. */
int gf_write_all(int fd, const void *p, size_t len);

/* Creates a temporary file in dirfd and starts its SHA-256 (libcrypto).
 * Returns 0, or a negated errno with a->step set (a is then closed:
 * nothing to abort). A file that is not a fresh regular file with one
 * link is refused (-EMLINK). */
int gf_afile_open(struct gf_afile *a, int dirfd);

/* gf_afile_open() without the SHA-256, for a file that nothing compares
 * with a digest (the manifest): a->sha256 stays "" after commit. */
int gf_afile_open_nodigest(struct gf_afile *a, int dirfd);

/* Appends len bytes. Returns 0, or the first error (then every later
 * call fails the same way, and commit removes the file). */
int gf_afile_write(struct gf_afile *a, const void *p, size_t len);

/* Flushes, closes and renames the file to name in the same directory,
 * then syncs the directory when sync_dir is set (a caller that renames
 * many files may sync it once at the end). Returns 0 with a->sha256 set,
 * or a negated errno with a->step naming the failed step ("write",
 * "sync", "close", "rename"); the temporary file is then gone and name
 * untouched. */
int gf_afile_commit(struct gf_afile *a, const char *name, int sync_dir);

/* Removes the temporary file of an unfinished a. Safe after commit, after
 * a failed open and twice. */
void gf_afile_abort(struct gf_afile *a);

/* Writes the SHA-256 of everything left to read from fd as hex into out.
 * Returns 0, or a negated errno. */
int gf_sha256_fd(int fd, char out[GF_SHA256_HEX_LEN]);

/* Removes every temporary file in dirfd. Call it holding DIR's lock and
 * before this process writes any: no live run can be writing them, and
 * one whose pid is this process's comes from a killed run whose pid was
 * given again (a container's init is always 1). Returns how many were
 * removed. */
unsigned gf_afile_sweep(int dirfd);

#endif
