/* One run per output directory: an flock(2) on DIR/.getflags/lock.
 *
 * The kernel drops the lock when the process ends, however it ends, so a
 * crashed run never leaves a stale lock behind. The lock file itself stays
 * in place: unlinking it would let two runs lock two different files of
 * the same name. It holds the pid of the last run that took it, for the
 * message a second run prints. */
#ifndef GF_LOCK_H
#define GF_LOCK_H

#include <stddef.h>

#define GF_LOCK_NAME "lock"

/* gf_lock_acquire()'s positive return: another process holds the lock. */
#define GF_LOCK_BUSY 1

/* The exit status for a run refused because of GF_LOCK_BUSY (EX_TEMPFAIL
 * of sysexits.h: try again later). */
#define GF_LOCK_EXIT_BUSY 75

struct gf_lock {
    int fd; /* the open lock file while held, else -1 */
};

/* Takes the lock of dir. Creates dir (one level) and dir/.getflags when
 * missing (see src/getflags/statedir.h: a symbolic link at .getflags is
 * refused), then opens dir/.getflags/lock (created mode 0666 less the umask, never
 * through a symbolic link, close-on-exec) and locks it exclusively.
 *
 * When another process holds it: with wait 0, returns GF_LOCK_BUSY at
 * once with a message in err such as "another getflags run (pid 4242) is
 * using out (lock out/.getflags/lock)"; with wait 1, blocks the calling
 * thread until that run ends. Call it before the loop starts, since it
 * does block. To tell the user why nothing happens, try with wait 0 first,
 * print the message, then call again with wait 1.
 *
 * Returns 0 with lk held, GF_LOCK_BUSY, or a negative error (a negated
 * errno, or UV_EINVAL when the lock path is not a regular file) with a
 * message in err naming the path. On any return but 0, lk->fd is -1.
 * A second gf_lock_acquire() on the same dir in the same process is BUSY
 * too: flock locks belong to the open file, not to the process. */
int gf_lock_acquire(const char *dir, int wait, struct gf_lock *lk, char *err, size_t errsz);

/* The same in sfd, an open DIR/.getflags (dir only names it in messages).
 * A lock file with more than one link is refused (-EMLINK): it may be a
 * hard link to a file outside DIR, which writing the pid would truncate. */
int gf_lock_acquire_at(int sfd, const char *dir, int wait, struct gf_lock *lk, char *err,
                       size_t errsz);

/* Releases the lock and closes the file; the file stays. Safe on NULL, on a
 * lock that failed to be acquired, and when called twice. */
void gf_lock_release(struct gf_lock *lk);

#endif
