/* DIR/.getflags: the one directory getflags keeps its own files in (the
 * manifest and the lock). Private to state.c, manifest.c and lock.c.
 *
 * DIR itself may be a symbolic link (the user chose it), but .getflags
 * inside it never is followed: it is opened with O_NOFOLLOW | O_DIRECTORY
 * and everything in it is reached with *at() calls on that descriptor, so
 * a link planted there cannot send writes elsewhere. */
#ifndef GF_STATEDIR_H
#define GF_STATEDIR_H

#include <stddef.h>

#define GF_STATEDIR_NAME ".getflags"

/* Opens DIR/.getflags and returns its descriptor (O_CLOEXEC; the caller
 * closes it). With create set, makes DIR (one level) and DIR/.getflags
 * first if they are missing, mode 0777 less the umask.
 * Returns the descriptor (>= 0) or a negated errno: -ENOENT when create is
 * 0 and either is missing (err is then left alone), -ELOOP when
 * .getflags is a symbolic link, -ENOTDIR when it is not a directory. On
 * error other than that -ENOENT, err holds a message naming the path, e.g.
 * "cannot open out/.getflags: it is a symbolic link (not followed)". */
int gf_statedir_open(const char *dir, int create, char *err, size_t errsz);

/* The same inside dfd, an open DIR (dir only names it in messages). */
int gf_statedir_open_at(int dfd, const char *dir, int create, char *err, size_t errsz);

#endif
