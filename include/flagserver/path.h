/* Maps a request target to a file under the served directory.
 *
 * Mapping is purely lexical and refuses anything that could name a file
 * outside the root: `.` and `..` segments (also percent-encoded), encoded
 * slashes, backslashes, NUL and control bytes. Symbolic links are handled
 * separately: the caller resolves the joined path with realpath and checks it
 * with fs_path_is_within(). */
#ifndef FLAGSERVER_PATH_H
#define FLAGSERVER_PATH_H

#include <stddef.h>

enum {
    FS_PATH_OK = 0,
    FS_PATH_BAD = -1,     /* malformed target: answer 400 */
    FS_PATH_REFUSED = -2, /* traversal attempt or unservable name: answer 404 */
    FS_PATH_TOOLONG = -3, /* does not fit in out: answer 404 */
};

/* Decodes target (origin-form "/a/b?q" or absolute-form "http://h/a/b"; the
 * query and fragment are ignored) into a relative path "a/b" written to out
 * (NUL-terminated, no leading slash; "" for the root). Empty segments are
 * dropped. Returns FS_PATH_OK or one of the errors above; out is then
 * unspecified. */
int fs_path_map(const char *target, size_t len, char *out, size_t outlen);

/* Returns 1 when the absolute, symlink-free path real is root itself or lies
 * below it, 0 otherwise. root has no trailing slash (except "/"). */
int fs_path_is_within(const char *root, const char *real);

/* Content-Type for a file name, from its extension (case-insensitive):
 * image/gif, application/json, text/plain, else application/octet-stream.
 * Returns a static string. */
const char *fs_path_mime_type(const char *name);

#endif
